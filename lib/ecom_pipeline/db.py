"""Connections, SQL files, COPY and locks: the one module that talks to PostgreSQL.

The database is chosen once, in this order: ``DATABASE_URL`` in the
environment, ``DATABASE_URL`` in a git-ignored ``.env`` at the repository
root, otherwise the embedded server (``ecom_pipeline.embedded``).
``run_all.py`` resolves it and exports ``DATABASE_URL`` to the notebook
kernels through the environment: it is never a notebook parameter, so it never
lands in an executed notebook.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ecom_pipeline import config

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy

log = logging.getLogger(__name__)

# pg_try_advisory_lock key of a pipeline run: "ecom" as a 32-bit integer.
PIPELINE_LOCK_KEY = 0x65636F6D
# JIT compilation costs a second or more per large statement and gains less than that on the pipeline's
# one-pass batch queries: with it off, cleaning 1,000,000 orders on PostgreSQL 15 went from 72 s to 61 s.
SESSION_OPTIONS = "-c jit=off"
CONNECT_TIMEOUT_S = 5


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message is safe to show (no password).

    ``reason`` is the driver's own first line, redacted, without the target.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class PipelineLocked(RuntimeError):
    """Another pipeline run holds the lock on this database."""


class BadConnectionString(ValueError):
    """DATABASE_URL is not a connection string libpq accepts; the message never repeats its text."""


def database_url(start_embedded: bool = True) -> str | None:
    """The pipeline's connection string, checked, starting the embedded server if none is configured."""
    url = config.env_setting("DATABASE_URL")
    if url:
        return normalise(url)
    if not start_embedded:
        return None
    from ecom_pipeline import embedded

    return embedded.start()


def normalise(url: str) -> str:
    """``url`` as libpq takes it, checked: a URL, key=value pairs, or SQLAlchemy's ``postgresql+driver://``.

    BadConnectionString (with libpq's reason, values blanked out) if libpq cannot read it or the port
    is not a port.
    """
    url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url.strip())
    try:
        fields = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        # libpq quotes pieces of the string in its message: keep only one-character ones ("=").
        reason = re.sub(r'"([^"]*)"', lambda m: m[0] if len(m[1]) <= 1 else '"..."', str(exc).strip().splitlines()[0])
        raise BadConnectionString(
            f"DATABASE_URL is not a PostgreSQL connection string ({reason}); use a URL such as "
            "postgresql://user@host:5432/dbname (percent-encode special characters in the password) "
            "or key=value pairs such as 'host=... dbname=... user=...'"
        ) from None
    for port in str(fields.get("port") or "5432").split(","):
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise BadConnectionString(f"DATABASE_URL has an invalid port {port!r}: a number from 1 to 65535")
    return url


def _fields(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return {}


def redact(text: str, url: str | None = None) -> str:
    """Hide passwords: of ``url`` wherever it appears in ``text``, and any in a URL or key=value pair."""
    password = _fields(url).get("password") if url else None
    if password:
        text = text.replace(str(password), "***")
    text = re.sub(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def describe(url: str) -> str:
    """The target as a libpq URL that works from a shell (psql "..."): user, host, port, database; no password."""
    fields = _fields(url)
    host = str(fields.get("host") or fields.get("hostaddr") or "")
    user = quote(str(fields["user"]), safe="") + "@" if fields.get("user") else ""
    port = str(fields.get("port") or "")
    dbname = quote(str(fields.get("dbname") or ""), safe="")
    if host.startswith("/"):  # a socket folder: a query parameter, as libpq reads it
        query = f"?host={quote(host, safe='/')}" + (f"&port={port}" if port else "")
        return f"postgresql://{user}/{dbname}{query}"
    return f"postgresql://{user}{host}{':' + port if port else ''}/{dbname}"


def error_line(exc: BaseException, url: str | None = None) -> str:
    """The first line of a driver error (or its type), with passwords redacted: safe to log and report."""
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__, url)


def connect(
    url: str | None = None,
    *,
    autocommit: bool = False,
    application: str = "ecom_pipeline",
    connect_timeout: int = CONNECT_TIMEOUT_S,
    settings: Mapping[str, str] | None = None,
) -> psycopg.Connection:
    """A connection to ``url`` (the pipeline's database by default); ``settings`` are set from its start."""
    url = url or database_url()
    options = " ".join(
        [SESSION_OPTIONS, *(f"-c {name}={_option_value(value)}" for name, value in (settings or {}).items())]
    )
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=application,
            options=options,
        )
    except psycopg.OperationalError as exc:
        reason = error_line(exc, url)
        raise DatabaseUnavailable(f"cannot connect to the database {describe(url)}: {reason}", reason) from None


def _option_value(value: str) -> str:
    """A setting's value as libpq's ``options`` takes it: spaces and backslashes escaped by a backslash."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


@contextmanager
def connection(url: str | None = None, **kwargs: Any) -> Iterator[psycopg.Connection]:
    conn = connect(url, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


# -- SQL files -------------------------------------------------------------


def read_sql(name: str) -> str:
    """Text of ``lib/ecom_pipeline/sql/<name>``."""
    return (config.SQL_DIR / name).read_text()


def _bind(text: str, params: Mapping[str, Any] | None) -> str:
    """Turn ``:name`` placeholders for the given params into psycopg's ``%(name)s``.

    Only names present in ``params`` are replaced, so casts (``::date``) and
    literals such as ``'HH24:MI'`` are left alone.
    """
    if not params:
        return text
    return _placeholders(params).sub(r"%(\1)s", text.replace("%", "%%"))


def _placeholders(names: Iterable[str]) -> re.Pattern[str]:
    """``:name`` for the given names, longest first, never the second colon of a ``::cast``."""
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.compile(rf"(?<![:\w]):({alternatives})\b")


def with_literals(text: str, values: Mapping[str, Any]) -> sql.Composed:
    """``text`` as SQL with each ``:name`` of ``values`` replaced by that value as a quoted literal."""
    parts = _placeholders(values).split(text)
    return sql.Composed([sql.SQL(part) if i % 2 == 0 else sql.Literal(values[part]) for i, part in enumerate(parts)])


def _compose(conn: psycopg.Connection, text: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Write the params that are SQL (``sql.Identifier`` and other ``sql.Composable``) into the text, quoted
    as SQL; the others stay values to bind. One file can then serve several tables."""
    params = dict(params or {})
    parts = {name: value for name, value in params.items() if isinstance(value, sql.Composable)}
    if parts:
        text = _placeholders(parts).sub(lambda m: parts[m.group(1)].as_string(conn), text)
    return text, {name: value for name, value in params.items() if name not in parts}


def execute_sql(conn: psycopg.Connection, text: str, params: Mapping[str, Any] | None = None) -> None:
    """Run a script of one or more statements with client-side bound parameters (and SQL parts, such as
    table names, given as ``sql.Identifier``)."""
    text, values = _compose(conn, text, params)
    with psycopg.ClientCursor(conn) as cur:
        cur.execute(_bind(text, values), values or None)


def run_sql_file(conn: psycopg.Connection, name: str, params: Mapping[str, Any] | None = None) -> None:
    execute_sql(conn, read_sql(name), params)


def drop_work_tables(conn: psycopg.Connection, names: Iterable[str]) -> None:
    """Drop the stage's tables in the schema ``work`` (scratch tables that SQL files pass on to each other:
    regular tables, not temporary ones, which a Citus cluster cannot join to its tables)."""
    tables = sql.SQL(", ").join(sql.Identifier("work", name) for name in names)
    conn.execute(sql.SQL("drop table if exists {}").format(tables))


def query(conn: psycopg.Connection, text: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of one statement as dicts."""
    with psycopg.ClientCursor(conn, row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(_bind(text, params), params or None)
        return cur.fetchall()


def query_file(conn: psycopg.Connection, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return query(conn, read_sql(name), params)


def read_frame(conn: sqlalchemy.Connection, text: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows of one statement (``:name`` placeholders) as a DataFrame, by pandas' own reader over a connection
    of :func:`engine`; its columns even when there is no row. Values stay as the driver loads them
    (``numeric`` as exact ``Decimal``, unless the connection was given a float loader)."""
    import pandas as pd

    # As a plain string pandas hands it to the driver (exec_driver_sql), with the placeholders this module
    # binds everywhere: ``:name`` before a cast (``:ids::text[]``) included, which SQLAlchemy's text() skips.
    return pd.read_sql(_bind(text, params), conn, params=dict(params) if params else None, coerce_float=False)


def engine(
    url: str | None = None, application: str = "ecom_pipeline notebook", settings: Mapping[str, str] | None = None
) -> sqlalchemy.Engine:
    """A SQLAlchemy 2 engine over psycopg 3 for pandas and notebooks: ``pd.read_sql(query, db.engine())``.

    Its connections are this module's (:func:`connect`): the same database, session options, timeout and
    application name, and the same clear error when the database cannot be reached. pandas takes only
    SQLAlchemy connectables (or sqlite3) in ``read_sql``; this is the one to use.
    """
    import sqlalchemy

    url = url or database_url()
    return sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: connect(url, application=application, settings=settings)
    )


# -- bulk loads --------------------------------------------------------------


@contextmanager
def bulk_load(conn: psycopg.Connection, tables: list[str], keys_too: Sequence[str] = ()) -> Iterator[None]:
    """Drop the foreign keys and secondary indexes of ``tables`` (and the primary keys of ``keys_too``);
    re-create them when the block ends.

    For a large load inside a transaction. PostgreSQL checks a foreign key and
    maintains each index row by row, which costs more than the load itself;
    re-adding a constraint validates every row in one set-based pass and
    building an index is one sort. A violation raises and aborts the
    transaction, so nothing invalid is ever committed. Primary keys and unique
    constraints stay, so upserts keep working; except those of ``keys_too``,
    tables the block only inserts into (2M order lines: 5.7 s inserted under
    their key, 3.3 s inserted and then keyed).
    """
    # Foreign keys first, then primary keys: dropped in that order, re-added in the reverse one.
    constraints = conn.execute(
        """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        from pg_constraint
        where (contype = 'f' and conrelid = any (%s::regclass[]))
           or (contype = 'p' and conrelid = any (%s::regclass[]))
        order by contype = 'p', 1, 2
        """,
        (tables, list(keys_too)),
    ).fetchall()
    indexes = conn.execute(
        """
        select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        from pg_index as i
        where i.indrelid = any (%s::regclass[]) and not i.indisprimary and not i.indisunique
        order by 1
        """,
        (tables,),
    ).fetchall()
    for table, name, _ in constraints:
        conn.execute(sql.SQL("alter table {} drop constraint {}").format(sql.SQL(table), sql.Identifier(name)))
    for index, _ in indexes:
        conn.execute(sql.SQL("drop index {}").format(sql.SQL(index)))
    yield
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))
    for table, name, definition in reversed(constraints):
        conn.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                sql.SQL(table), sql.Identifier(name), sql.SQL(definition)
            )
        )


# -- scratch databases (tests, benchmarks, golden notebooks) ---------------


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(url, dbname=name)


@contextmanager
def scratch_database(server_url: str, prefix: str = "t", template: str | None = None) -> Iterator[str]:
    """Create a database on the server of ``server_url`` (empty, or a copy of ``template``); drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


# -- locks -----------------------------------------------------------------


@contextmanager
def pipeline_lock(url: str) -> Iterator[psycopg.Connection]:
    """Hold the pipeline's advisory lock for the duration of a run.

    The lock lives in its own session: if the process dies, PostgreSQL ends the
    session and the lock goes with it, so a crash never leaves one behind.
    """
    conn = connect(url, autocommit=True, application="ecom_pipeline lock")
    try:
        got = conn.execute("select pg_try_advisory_lock(%s)", (PIPELINE_LOCK_KEY,)).fetchone()[0]
        if not got:
            holder = conn.execute(
                """
                select a.pid, a.application_name, a.backend_start
                from pg_locks l join pg_stat_activity a on a.pid = l.pid
                where l.locktype = 'advisory' and l.objid = %s and l.granted
                """,
                (PIPELINE_LOCK_KEY,),
            ).fetchone()
            since = f" (backend pid {holder[0]}, since {holder[2]:%Y-%m-%d %H:%M:%S})" if holder else ""
            raise PipelineLocked(f"another pipeline run is already running against {describe(url)}{since}")
        yield conn
    finally:
        conn.close()
