"""Interrupting a run and resuming it: what the recovery tests share.

Each recovery test interrupts one run over and over, once in every stage in turn, resuming it after each
interruption; the finished run's production and warehouse must equal those of a run that was never
interrupted (the ``uninterrupted`` fixture, imported by each test module).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecom_pipeline import db
from helpers import REPO, run_pipeline
from layers import comparable_warehouse, production

RUN_ID = "interrupted"


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_all.py"), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_stage(summary: Path, stage: str, proc: subprocess.Popen, timeout: float = 180) -> None:
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


def finish(env: dict[str, str]) -> None:
    """Resume the interrupted run once more, to its end (in exactly ``env``: a test may take a name out of it)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--resume", RUN_ID],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def result(url: str) -> tuple[dict, dict]:
    return production(url), comparable_warehouse(url)


@pytest.fixture(scope="module")
def uninterrupted(server_url, tmp_path_factory):
    """Production and warehouse after a run that nothing interrupted."""
    outputs = tmp_path_factory.mktemp("reference")
    with db.scratch_database(server_url, "reference") as url:
        done = run_pipeline(
            "--params", "params/small.yaml", env={"DATABASE_URL": url, "PIPELINE_OUTPUTS": str(outputs)}
        )
        assert done.returncode == 0, done.stderr
        yield result(url)


def assert_same_result(url: str, expected: tuple[dict, dict]) -> None:
    tables, warehouse_tables = result(url)
    for table in expected[0]:
        assert tables[table] == expected[0][table], table
    for table in expected[1]:
        assert warehouse_tables[table] == expected[1][table], table
