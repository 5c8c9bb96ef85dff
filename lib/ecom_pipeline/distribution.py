"""Where each table lives on a Citus cluster, stated once, and the step that puts it there.

When the ``citus`` extension is installed in the pipeline's database (and ``database.distributed`` is not
turned off), the migrations end by distributing the schema (:func:`distribute`, idempotent):

- the tables that grow with the orders are split into shards by ``order_id`` and colocated, so that an
  order, its lines and its facts live on one shard and the joins between them run on each shard;
- the small, slowly growing tables every order line is joined to are reference tables, a copy on every node;
- one row per customer is split by ``customer_id``;
- everything else (staging, the quarantine and logs, run records) stays on the coordinator.

Every unique key of a distributed table must contain its distribution column, so an order line is keyed by
``(order_id, order_item_id)`` there; an order line's id stays unique across orders by clean's own rule (a
second, different row for a loaded line is quarantined as ``ITEM_CHANGED``). ``docs/scale_out.md`` gives
the reasoning.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ecom_pipeline import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    table: str  # schema.name
    column: str | None = None  # distribution column; None: a reference table
    colocate_with: str | None = None
    # A primary key that must gain the distribution column first: its columns on the cluster.
    primary_key: tuple[str, ...] | None = None


REFERENCE = (
    "production.customers",
    "production.products",
    "production.customer_changes",
    "production.product_changes",
    "warehouse.dim_date",
    "warehouse.dim_status",
    "warehouse.dim_payment_method",
    "warehouse.dim_customer",
    "warehouse.dim_product",
    "warehouse.agg_daily_sales",
    "warehouse.agg_product_performance",
)

LINE_KEY = ("order_id", "order_item_id")

PLACEMENTS: tuple[Placement, ...] = (
    *(Placement(table) for table in REFERENCE),
    Placement("production.orders", "order_id"),
    Placement("production.order_items", "order_id", colocate_with="production.orders", primary_key=LINE_KEY),
    Placement("warehouse.fact_sales", "order_id", colocate_with="production.orders", primary_key=LINE_KEY),
    Placement("warehouse.agg_customer_metrics", "customer_id"),
)


def citus_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists (select from pg_extension where extname = 'citus')").fetchone()[0]


def placed(conn: psycopg.Connection) -> dict[str, str | None]:
    """The tables Citus knows as distributed or reference: name -> distribution column (None: reference)."""
    rows = conn.execute(
        "select logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey) "
        "from pg_dist_partition where partmethod = 'h' or repmodel = 't'"
    ).fetchall()
    return dict(rows)


def _foreign_keys_to(conn: psycopg.Connection, table: str) -> list[tuple[str, str, str]]:
    """(referencing table, constraint name, definition) of each foreign key that points at ``table``."""
    return conn.execute(
        "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint "
        "where contype = 'f' and confrelid = %s::regclass and conrelid <> confrelid",
        (table,),
    ).fetchall()


def _swap_primary_key(conn: psycopg.Connection, table: str, columns: tuple[str, ...]) -> None:
    name = conn.execute(
        "select conname from pg_constraint where contype = 'p' and conrelid = %s::regclass", (table,)
    ).fetchone()[0]
    target = _ident(table)
    conn.execute(sql.SQL("alter table {} drop constraint {}").format(target, sql.Identifier(name)))
    conn.execute(
        sql.SQL("alter table {} add constraint {} primary key ({})").format(
            target, sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
    )


def distribute(conn: psycopg.Connection) -> list[str]:
    """Put every table of :data:`PLACEMENTS` where it belongs; return the tables moved now (none when done).

    Runs in one transaction. A foreign key between two tables being placed is dropped first and made again
    afterwards: Citus takes a table that references a reference table for a local table of its own, which
    cannot then become a distributed one."""
    done = placed(conn)
    pending = [p for p in PLACEMENTS if p.table not in done]
    if not pending:
        return []
    names = {p.table for p in pending}
    with conn.transaction():
        # One connection per node: the foreign keys and indexes made below are DDL on shards written by the
        # placing, which Citus runs only over the connection that wrote them.
        conn.execute("set local citus.multi_shard_modify_mode = 'sequential'")
        keys = [fk for p in pending for fk in _foreign_keys_to(conn, p.table) if fk[0] in names]
        for referencing, name, _ in keys:
            conn.execute(sql.SQL("alter table {} drop constraint {}").format(_ident(referencing), sql.Identifier(name)))
        for p in pending:
            if p.primary_key:
                _swap_primary_key(conn, p.table, p.primary_key)
            if p.column is None:
                conn.execute("select create_reference_table(%s)", (p.table,))
            else:
                conn.execute(
                    "select create_distributed_table(%s, %s, colocate_with => %s)",
                    (p.table, p.column, p.colocate_with or "default"),
                )
            log.info("placed %s %s", p.table, f"by {p.column}" if p.column else "as a reference table")
        for referencing, name, definition in keys:
            conn.execute(
                sql.SQL("alter table {} add constraint {} {}").format(
                    _ident(referencing), sql.Identifier(name), sql.SQL(definition)
                )
            )
        # The fact table's indexes from the start: a load may not change a distributed table's indexes once
        # it has read its shards over several connections, as the warehouse stage's loads do.
        # One statement at a time: Citus sends a DDL statement's whole text on to the workers.
        for statement in db.read_sql("warehouse/indexes.sql").split(";"):
            if statement.strip():
                conn.execute(statement)
    return [p.table for p in pending]


def schema_distributed(conn: psycopg.Connection) -> bool:
    """Whether Citus has placed this database's tables: the test ``production.place_work_table`` makes too."""
    return citus_installed(conn) and "production.orders" in placed(conn)


def local_tables(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Those of ``tables`` that Citus has not placed (all of them on a server without Citus)."""
    if not citus_installed(conn):
        return tables
    done = placed(conn)
    return [t for t in tables if t not in done]


def _ident(qualified: str) -> sql.Identifier:
    return sql.Identifier(*qualified.split("."))


@contextmanager
def scratch_database(coordinator_url: str, prefix: str = "t") -> Iterator[str]:
    """A new database on every node of the Citus cluster whose coordinator ``coordinator_url`` names (its
    workers as that database's ``pg_dist_node`` lists them), the extension in each, the workers known to
    the new database's coordinator; dropped on every node afterwards. For tests and benchmarks."""
    with db.connection(coordinator_url, autocommit=True) as conn:
        nodes = conn.execute("select nodename, nodeport, groupid = 0 from pg_dist_node order by groupid").fetchall()
    given = psycopg.conninfo.conninfo_to_dict(coordinator_url)
    host, port = next(((n, p) for n, p, is_coordinator in nodes if is_coordinator), (given["host"], given["port"]))
    workers = [(name, node_port) for name, node_port, is_coordinator in nodes if not is_coordinator]
    urls = [coordinator_url] + [
        psycopg.conninfo.make_conninfo(coordinator_url, host=name, port=node_port) for name, node_port in workers
    ]
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        for url in urls:
            with db.connection(url, autocommit=True) as conn:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            with db.connection(db.with_database(url, name), autocommit=True) as conn:
                conn.execute("create extension citus")
        with db.connection(db.with_database(coordinator_url, name), autocommit=True) as conn:
            conn.execute("select citus_set_coordinator_host(%s, %s)", (host, port))
            for node, node_port in workers:
                conn.execute("select citus_add_node(%s, %s)", (node, node_port))
        yield db.with_database(coordinator_url, name)
    finally:
        for url in urls:
            with db.connection(url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
