"""A full disk: every write of a run can fail, and the run still ends in one line with its records closed.

The disk is made "full" for the run's process tree with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored),
which fails writes the way a full disk does (with EFBIG rather than ENOSPC), at three depths: before the
run is recorded, while its summary is written, and in the middle of a stage.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import psycopg
import pytest

from helpers import REPO


def _with_file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
@pytest.mark.parametrize("limit", [1_500, 4_000, 40_000])
def test_a_full_disk_ends_the_run_in_one_clear_line_and_never_leaves_it_running(fresh_db, outputs, limit):
    # Not measured under `pytest --cov`: coverage could not write its own data on a full disk either (its
    # traceback at exit would be the only one in the output).
    unmeasured = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env = {**unmeasured, "CI": "true", "DATABASE_URL": fresh_db, "PIPELINE_OUTPUTS": str(outputs)}
    done = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--params", "params/small.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_with_file_size_limit(limit),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "File too large" in done.stderr
    with psycopg.connect(fresh_db) as conn:
        recorded = conn.execute("select to_regclass('monitoring.pipeline_runs') is not null").fetchone()[0]
        running = (
            conn.execute("select count(*) from monitoring.pipeline_runs where status = 'running'").fetchone()[0]
            if recorded
            else 0
        )
    assert running == 0
