"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is ``DATABASE_URL`` when set (CI runs the suite once that way
against a PostgreSQL server), otherwise the project's embedded server. Each
test (or module) gets a database of its own, created fresh and dropped after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from ecom_pipeline import config, db, migrations

REPO = config.PROJ_ROOT
SERVER_URL = os.environ.get("DATABASE_URL")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL on the test server (its database is only used to create others)."""
    if SERVER_URL:
        return SERVER_URL
    from ecom_pipeline import embedded

    return embedded.start()


def _create_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return with_database(server_url, name)


def _drop_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def fresh_db(server_url: str, monkeypatch: pytest.MonkeyPatch):
    """A new, empty database; DATABASE_URL points at it for the test."""
    url = _create_database(server_url)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    _drop_database(server_url, url)


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
    return subprocess.run([sys.executable, str(REPO / "run_all.py"), *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
