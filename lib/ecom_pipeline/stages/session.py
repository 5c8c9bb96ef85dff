"""The database session every stage works in, set up in one place.

A stage notebook may be run on its own (in JupyterLab, say), so entering a stage applies any pending
migration first (cheap when up to date). Every connection a stage opens then starts with the same
settings, sent with the connection request so that no transaction can undo them: timestamps without an
offset are read as UTC and dates cut from timestamps are UTC days; a large batch's sorts and temporary
tables have room in memory. Its application name says which stage (and part of it) it is, for
``pg_stat_activity`` and the server's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import psycopg

from ecom_pipeline import db, migrations

if TYPE_CHECKING:
    import sqlalchemy

SETTINGS = {"timezone": "UTC", "work_mem": "256MB", "temp_buffers": "256MB"}


def database() -> str:
    """The pipeline's database URL, its migrations applied."""
    return migrations.ensure_migrated(db.database_url())


def _application(stage: str, part: str | None) -> str:
    """``ecom_pipeline <stage>``, and the part (a slice, a worker) if there is one."""
    return f"ecom_pipeline {stage}" + (f" {part}" if part else "")


def connect(url: str | None, stage: str, *, part: str | None = None, autocommit: bool = True) -> psycopg.Connection:
    """A connection of ``stage`` (``part`` names a slice or worker of it)."""
    return db.connect(url, autocommit=autocommit, application=_application(stage, part), settings=SETTINGS)


def connection(
    url: str | None, stage: str, *, part: str | None = None, autocommit: bool = True
) -> AbstractContextManager[psycopg.Connection]:
    """:func:`connect` as a context manager that closes the connection."""
    return db.connection(url, autocommit=autocommit, application=_application(stage, part), settings=SETTINGS)


@contextmanager
def frames(
    url: str | None, stage: str, *, part: str | None = None, isolation_level: str | None = None
) -> Iterator[sqlalchemy.Connection]:
    """A SQLAlchemy connection of ``stage`` for reading DataFrames (``db.read_frame``, ``pd.read_sql``);
    its psycopg connection is ``conn.connection.driver_connection``, in the same transaction."""
    engine = db.engine(url, application=_application(stage, part), settings=SETTINGS)
    try:
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level=isolation_level) if isolation_level else conn
    finally:
        engine.dispose()
