"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is ``DATABASE_URL`` when set (CI runs the suite once that way
against a PostgreSQL server), otherwise the project's embedded server. Each
test (or module) gets a database of its own, created fresh and dropped after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecom_pipeline import config, db, migrations

REPO = config.PROJ_ROOT
SERVER_URL = os.environ.get("DATABASE_URL")


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL on the test server (its database is only used to create others)."""
    if SERVER_URL:
        return SERVER_URL
    from ecom_pipeline import embedded

    return embedded.start()


@pytest.fixture
def fresh_db(server_url: str, monkeypatch: pytest.MonkeyPatch):
    """A new, empty database; DATABASE_URL points at it for the test."""
    with db.scratch_database(server_url) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


@pytest.fixture
def migrated_db(fresh_db: str) -> str:
    """A fresh database with every migration applied."""
    with db.connection(fresh_db, autocommit=True) as conn:
        migrations.apply_migrations(conn)
    return fresh_db


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private outputs folder for the test."""
    out = tmp_path / "outputs"
    out.mkdir()
    monkeypatch.setenv("PIPELINE_OUTPUTS", str(out))
    return out


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
