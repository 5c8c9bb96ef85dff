"""Versioned schema migrations, applied at the start of every run.

Each ``sql/migrations/NNNN_name.sql`` runs once, in its own transaction,
recorded in ``monitoring.schema_migrations`` with its checksum. PostgreSQL DDL
is transactional, so a migration that fails leaves the database as it was.
An applied migration whose file has since changed is refused: migrations are
append-only.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ecom_pipeline import config, db, distribution

log = logging.getLogger(__name__)

MIGRATIONS_DIR = config.SQL_DIR / "migrations"
# Serialises concurrent "apply" calls (tests, a notebook opened during a run).
MIGRATION_LOCK_KEY = 0x6D696772


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if not match:
            raise MigrationError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


BOOTSTRAP = """
create schema if not exists monitoring;
create table if not exists monitoring.schema_migrations (
    version     integer primary key,
    name        text not null,
    checksum    text not null,
    applied_at  timestamptz not null default now()
);
"""


def apply_migrations(
    conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR, *, distributed: bool = False
) -> list[int]:
    """Apply pending migrations; return the versions applied (empty when up to date). ``distributed``: on a
    database with the citus extension, then distribute the schema (:mod:`ecom_pipeline.distribution`)."""
    try:
        applied = _apply(conn, directory)
        if distributed and distribution.citus_installed(conn):
            distribution.distribute(conn)
        return applied
    except psycopg.errors.InsufficientPrivilege as exc:
        user, dbname = conn.info.user, conn.info.dbname
        raise MigrationError(
            f"the role {user} may not create the pipeline's schemas in database {dbname} "
            f"({db.error_line(exc)}): grant it CREATE on the database (grant create on database {dbname} to "
            f"{user}), or run the pipeline once as the database's owner"
        ) from None


def _apply(conn: psycopg.Connection, directory: Path) -> list[int]:
    migrations = discover(directory)
    applied_now = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        db.execute_sql(conn, BOOTSTRAP)
        applied = {row[0]: row[1] for row in conn.execute("select version, checksum from monitoring.schema_migrations")}
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.path.name} was changed after it was applied; add a new migration instead"
                    )
                continue
            try:
                with conn.transaction():
                    db.execute_sql(conn, migration.sql)
                    conn.execute(
                        "insert into monitoring.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.errors.InsufficientPrivilege:
                raise
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.path.name} failed: {exc}".strip()) from exc
            applied_now.append(migration.version)
            log.info("applied migration %s", migration.path.name)
    return applied_now


def ensure_migrated(url: str) -> str:
    """Apply pending migrations (cheap when up to date); lets a notebook run standalone. Returns ``url``."""
    with db.connection(url, autocommit=True) as conn:
        apply_migrations(conn)
    return url
