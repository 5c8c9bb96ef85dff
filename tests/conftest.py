"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is ``DATABASE_URL`` when set (CI runs the suite once that way
against a PostgreSQL server), otherwise the project's embedded server. Each
test (or module) gets a database of its own, created fresh and dropped after.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from ecom_pipeline import db, migrations

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


@pytest.fixture(scope="session")
def migrated_template(server_url: str):
    """A database migrated once per session, copied by ``migrated_db`` (never used directly)."""
    with db.scratch_database(server_url, prefix="template") as url:
        with db.connection(url, autocommit=True) as conn:
            migrations.apply_migrations(conn)
        yield psycopg.conninfo.conninfo_to_dict(url)["dbname"]


@pytest.fixture
def migrated_db(server_url: str, migrated_template: str, monkeypatch: pytest.MonkeyPatch):
    """A new database with every migration applied (a copy of the session's migrated template)."""
    with db.scratch_database(server_url, template=migrated_template) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private outputs folder for the test."""
    out = tmp_path / "outputs"
    out.mkdir()
    monkeypatch.setenv("PIPELINE_OUTPUTS", str(out))
    return out


# The longest modules first, so that the two workers finish together (each module stays on one worker,
# and a long one started last runs on alone). Only a scheduling hint: a module not named keeps its place.
LONGEST_FIRST = (
    "distributed/test_citus.py",
    "integration/test_run_all.py",
    "browser/test_reports.py",
    "integration/test_operations.py",
    "integration/test_recovery.py",
    "integration/test_recovery_database.py",
    "integration/test_clean.py",
    "integration/test_quality.py",
    "integration/test_monitoring.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith(name)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the tests of a module, and the other modules, keep their order
