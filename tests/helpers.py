"""What tests share besides fixtures: the repository, and running the pipeline the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from ecom_pipeline import config

REPO = config.PROJ_ROOT
HANDWRITTEN = REPO / "tests" / "data" / "handwritten"  # an export of one batch, written by hand
HANDWRITTEN_BATCH = HANDWRITTEN / "2025-03-01"


def run_pipeline(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python run_all.py ARGS`` in a subprocess with the test's environment."""
    full_env = {**os.environ, "CI": "true", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def still_running(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``processes`` to end; those still running then. An ended process
    that is not this one's child stays a zombie until its new parent (init, a subreaper) reaps it, which
    can take seconds here: it has ended all the same."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
