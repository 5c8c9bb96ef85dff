"""Recovery: a run killed in each stage, or whose database stops during a stage, is resumed to the same
result as an uninterrupted run.

Each test interrupts one run over and over, once in every stage in turn, resuming it after each
interruption; the finished run's production and warehouse must equal those of a run that was never
interrupted.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from ecom_pipeline import db
from ecom_pipeline.stages import STAGE_NAMES
from helpers import REPO
from layers import comparable_warehouse, production

pytestmark = pytest.mark.slow
RUN_ID = "interrupted"


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_all.py"), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_stage(summary: Path, stage: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = json.loads(summary.read_text())
            if state["status"] == "running" and state["current_stage"] == stage:
                return
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            pytest.fail(f"the run ended before stage {stage}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"stage {stage} never started")


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process; its notebook kernel dies with it (it polls its parent)."""
    kernels = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(kernels, timeout=15)
    assert not alive, f"orphaned kernels still running: {alive}"


def _result(url: str) -> tuple[dict, dict]:
    return production(url), comparable_warehouse(url)


@pytest.fixture(scope="module")
def uninterrupted(server_url, tmp_path_factory):
    """Production and warehouse after a run that nothing interrupted."""
    outputs = tmp_path_factory.mktemp("reference")
    with db.scratch_database(server_url, "reference") as url:
        env = {**os.environ, "CI": "true", "DATABASE_URL": url, "PIPELINE_OUTPUTS": str(outputs)}
        done = subprocess.run(
            [sys.executable, str(REPO / "run_all.py"), "--params", "params/small.yaml"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        yield _result(url)


def _assert_same_result(url: str, expected: tuple[dict, dict]) -> None:
    production, warehouse = _result(url)
    for table in expected[0]:
        assert production[table] == expected[0][table], table
    for table in expected[1]:
        assert warehouse[table] == expected[1][table], table


def test_run_killed_in_every_stage_resumes_to_the_same_result(fresh_db, outputs, uninterrupted):
    env = {**os.environ, "CI": "true"}
    summary = outputs / "runs" / RUN_ID / "run_summary.json"
    for stage in STAGE_NAMES:
        args = ("--resume", RUN_ID) if summary.exists() else ("--params", "params/small.yaml", "--run-id", RUN_ID)
        proc = _start(*args, env=env)
        _wait_for_stage(summary, stage, proc)
        _kill_tree(proc)
    done = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--resume", RUN_ID],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(fresh_db) as conn:
        status = conn.execute("select status from monitoring.pipeline_runs").fetchall()
        attempts = dict(conn.execute("select stage, max(attempt) from monitoring.stage_runs group by 1").fetchall())
        running = conn.execute("select count(*) from monitoring.stage_runs where status = 'running'").fetchone()[0]
    assert status == [("success",)]
    assert all(attempts[stage] >= 2 for stage in STAGE_NAMES)  # every stage was interrupted once
    assert running == 0  # no killed attempt is left marked running
    _assert_same_result(fresh_db, uninterrupted)


def _stop_database(pgdata: Path) -> None:
    """Stop the embedded server the way a crash or an operator would: immediate shutdown of the postmaster."""
    pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(pid, signal.SIGQUIT)
    psutil.wait_procs([psutil.Process(pid)], timeout=30)


DATABASE_STAGES = ("ingest", "clean", "warehouse", "quality", "analytics")


def test_database_stopped_during_a_stage_resumes_to_the_same_result(outputs, tmp_path, uninterrupted):
    pgdata = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CI="true", PIPELINE_PGDATA=str(pgdata))
    summary = outputs / "runs" / RUN_ID / "run_summary.json"
    for stage in DATABASE_STAGES:
        args = ("--resume", RUN_ID) if summary.exists() else ("--params", "params/small.yaml", "--run-id", RUN_ID)
        proc = _start(*args, env=env)
        _wait_for_stage(summary, stage, proc)
        time.sleep(1.0)  # into the stage's work, past its kernel start
        _stop_database(pgdata)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (1, 3), err  # the stage fails, or the run loses its own connection first
        assert "Traceback" not in err and f"--resume {RUN_ID}" in err
    done = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--resume", RUN_ID],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr

    from ecom_pipeline import embedded

    url = embedded.start(pgdata)
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("select status from monitoring.pipeline_runs").fetchall() == [("success",)]
        _assert_same_result(url, uninterrupted)
        report = json.loads((outputs / "runs" / RUN_ID / "reports" / "monitoring_report.json").read_text())
        assert report["status"] in ("healthy", "degraded")
    finally:
        embedded.release(pgdata)
