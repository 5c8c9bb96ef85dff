"""Recovery: a run killed in each stage is resumed to the same result as an uninterrupted run."""

import os
import signal
import subprocess

import psutil
import psycopg
import pytest

from ecom_pipeline.stages import STAGE_NAMES
from helpers import still_running
from interrupted import RUN_ID, assert_same_result, finish, start, uninterrupted, wait_for_stage

pytestmark = pytest.mark.slow
__all__ = ["uninterrupted"]  # a fixture: imported for the test below, which takes it by name


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process; its kernel server ends with it, and each kernel, its parent gone, stops."""
    kernels = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    alive = still_running(kernels, timeout=15)
    assert not alive, f"orphaned kernels still running: {alive}"


def test_run_killed_in_every_stage_resumes_to_the_same_result(fresh_db, outputs, uninterrupted):
    env = {**os.environ, "CI": "true"}
    summary = outputs / "runs" / RUN_ID / "run_summary.json"
    for stage in STAGE_NAMES:
        args = ("--resume", RUN_ID) if summary.exists() else ("--params", "params/small.yaml", "--run-id", RUN_ID)
        proc = start(*args, env=env)
        wait_for_stage(summary, stage, proc)
        _kill_tree(proc)
    finish(env)
    with psycopg.connect(fresh_db) as conn:
        status = conn.execute("select status from monitoring.pipeline_runs").fetchall()
        attempts = dict(conn.execute("select stage, max(attempt) from monitoring.stage_runs group by 1").fetchall())
        running = conn.execute("select count(*) from monitoring.stage_runs where status = 'running'").fetchone()[0]
    assert status == [("success",)]
    assert all(attempts[stage] >= 2 for stage in STAGE_NAMES)  # every stage was interrupted once
    assert running == 0  # no killed attempt is left marked running
    assert_same_result(fresh_db, uninterrupted)
