"""Recovery: a run whose database stops during a stage is resumed to the same result as an uninterrupted run.

A module of its own so that it runs beside the killed-run test on another worker.
"""

import json
import os
import signal
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from interrupted import RUN_ID, assert_same_result, finish, start, uninterrupted, wait_for_stage

pytestmark = pytest.mark.slow
__all__ = ["uninterrupted"]  # a fixture: imported for the test below, which takes it by name


def _stop_database(pgdata: Path) -> None:
    """Stop the embedded server the way a crash or an operator would: immediate shutdown of the postmaster."""
    pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(pid, signal.SIGQUIT)
    psutil.wait_procs([psutil.Process(pid)], timeout=30)


DATABASE_STAGES = ("ingest", "clean", "warehouse", "quality", "analytics")


def _wait_for_its_session(pgdata: Path, stage: str, proc) -> None:
    """Wait until ``stage`` has a database session of its own open: the stage is into its work (a fixed wait
    could outlast a small stage, and the run would go on or end before the database stopped)."""
    pid_file = (pgdata / "postmaster.pid").read_text().splitlines()  # its port and socket folder: lines 4 and 5
    with psycopg.connect(host=pid_file[4], port=pid_file[3], user="postgres", dbname="ecom", autocommit=True) as conn:
        while not conn.execute(
            "select exists (select from pg_stat_activity where application_name like %s)", (f"ecom_pipeline {stage}%",)
        ).fetchone()[0]:
            if proc.poll() is not None:
                pytest.fail(f"the run ended before stage {stage} opened a session: {proc.stderr.read()[-2000:]}")
            time.sleep(0.005)


def test_database_stopped_during_a_stage_resumes_to_the_same_result(outputs, tmp_path, uninterrupted):
    pgdata = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CI="true", PIPELINE_PGDATA=str(pgdata))
    summary = outputs / "runs" / RUN_ID / "run_summary.json"
    for stage in DATABASE_STAGES:
        args = ("--resume", RUN_ID) if summary.exists() else ("--params", "params/small.yaml", "--run-id", RUN_ID)
        proc = start(*args, env=env)
        wait_for_stage(summary, stage, proc)
        _wait_for_its_session(pgdata, stage, proc)
        _stop_database(pgdata)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (1, 3), err  # the stage fails, or the run loses its own connection first
        assert "Traceback" not in err and f"--resume {RUN_ID}" in err
        assert f"{stage}: ok" not in err, err  # stopped in that stage, not after it
    finish(env)

    from ecom_pipeline import embedded

    url = embedded.start(pgdata)
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("select status from monitoring.pipeline_runs").fetchall() == [("success",)]
        assert_same_result(url, uninterrupted)
        report = json.loads((outputs / "runs" / RUN_ID / "reports" / "monitoring_report.json").read_text())
        assert report["status"] in ("healthy", "degraded")
    finally:
        embedded.release(pgdata)
