"""Staging to production in set-based SQL, with a quarantine that explains every rejected row.

Batches are cleaned one at a time, in batch order, each in one transaction
that covers all four tables (parents first, so references see this batch's
customers and products). The batch's orders and order lines are typed and
checked row by row first (``sql/clean/<table>_rows.sql``, into
``work.<table>_rows``); a large batch's in parallel slices split by a hash of
the row's key, each slice on a connection of its own, while the transaction
cleans the customers and products, which need none of it. For each table,
``sql/clean/<table>.sql`` builds a work table (``work.clean_<table>``, dropped
before the transaction commits) giving every staged row exactly one action:

======================  ==========================================================
``duplicate``           an exact copy of an earlier line of the batch (collapsed)
``quarantined``         failed a rule; kept in ``production.quarantine`` with reasons
``stale``               older than (or as old as, but different from) what production
                        has, or superseded by a newer row of the same key in the batch
``insert`` / ``update`` written to production
``unchanged``           production already holds exactly this
======================  ==========================================================

The counts are reconciled against the staged rows and stored in
``production.clean_log`` (a CHECK constraint enforces the sum). A batch whose
staging has not changed since it was cleaned is not cleaned again.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from ecom_pipeline import catalogue, contract, db, distribution, runs
from ecom_pipeline.params import CleanParams
from ecom_pipeline.stages import ingest, session

log = logging.getLogger(__name__)

ACTIONS = {
    "insert": "inserted",
    "update": "updated",
    "unchanged": "unchanged",
    "stale": "stale",
    "duplicate": "duplicates",
    "quarantined": "quarantined",
}
COUNT_COLUMNS = ["staged", *ACTIONS.values()]

# Tables whose foreign keys and indexes a large batch rebuilds in one pass at the end (db.bulk_load); order
# lines are only ever inserted, so their primary key too.
BULK_TABLES = ["production.orders", "production.order_items"]
BULK_KEYS = ["production.order_items"]
# Tables whose rows are typed and checked on their own first, in slices (sql/clean/<table>_rows.sql).
# order_items before orders: an order's total is checked against its typed lines.
SLICED_TABLES = ("order_items", "orders")


class CleanError(RuntimeError):
    """The clean stage could not account for every staged row."""


PENDING_BATCHES = """
select b.batch_id
from staging.batches as b
left join (select batch_id, min(cleaned_at) as cleaned_at from production.clean_log group by batch_id) as c
    on c.batch_id = b.batch_id
where b.status = 'loaded'
  and (c.cleaned_at is null
       or c.cleaned_at < (select max(i.started_at) from staging.ingestion_log as i where i.batch_id = b.batch_id))
order by b.batch_id
"""


def pending_batches(conn: psycopg.Connection) -> list[str]:
    """Loaded batches not cleaned yet, or re-staged since they were cleaned, in batch order."""
    return [row[0] for row in conn.execute(PENDING_BATCHES)]


def _staged_rows(conn: psycopg.Connection, batch_id: str) -> int:
    return conn.execute(
        "select coalesce(sum(rows_staged), 0) from staging.ingestion_log where batch_id = %s", (batch_id,)
    ).fetchone()[0]


def _analyze_staged(conn: psycopg.Connection, batch_id: str) -> None:
    """Fresh statistics of the batch's staging partitions (ingest makes all four; autovacuum leaves them alone),
    or the planner takes just-loaded rows for none and nests loops. Not the staging tables: ANALYZE of a
    partitioned table samples every batch's partition again."""
    partitions = [sql.Identifier("staging", ingest.partition_name(table, batch_id)) for table in contract.TABLE_ORDER]
    conn.execute(sql.SQL("analyze {}").format(sql.SQL(", ").join(partitions)))


def _type_rows(
    conn: psycopg.Connection, batch_id: str, params: dict[str, Any], tables: tuple[str, ...] = SLICED_TABLES
) -> None:
    """Type and check the batch's rows of ``tables`` on their own, into ``work.<table>_rows``, in one slice on
    ``conn`` (inside its transaction if it has one)."""
    _Typing(conn, None, batch_id, params, 1, tables)


class _Typing:
    """The batch's rows of ``tables`` typed and checked on their own, into ``work.<table>_rows``.

    With one slice (a small batch), at once, on ``conn``. With more, each slice (the rows whose key hashes to
    it) on a connection of its own to ``url``, while the transaction cleans the customers and products, which
    read none of them: the slices' connections and the transaction's then share the cores. The slices read
    only staging, which no one writes while the pipeline lock is held. :meth:`done` waits for them.

    Used as a context manager around the transaction: its end waits for every slice, so that none is left
    writing, whatever happened in the block."""

    def __init__(
        self,
        conn: psycopg.Connection,
        url: str | None,
        batch_id: str,
        params: dict[str, Any],
        slices: int,
        tables: tuple[str, ...] = SLICED_TABLES,
    ) -> None:
        self.conn, self.tables, self.slices, self.started = conn, tables, slices, time.perf_counter()
        for table in tables:
            conn.execute(f"delete from work.{table}_rows where batch_id = %s", (batch_id,))
        self.analyzed, self.pool, self.running = False, None, []
        if slices == 1:
            _type_slice(conn, params, 1, 0, tables)
            self.done()
        else:
            self.pool = ThreadPoolExecutor(max_workers=slices)
            self.running = [self.pool.submit(_type_apart, url, params, slices, i, tables) for i in range(slices)]

    def done(self) -> None:
        """Wait for the slices (raising the first one's error), then take the typed rows' statistics; once."""
        if self.analyzed:
            return
        for slice_ in self.running:
            slice_.result()
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        for table in self.tables:
            self.conn.execute(f"analyze work.{table}_rows")
        self.analyzed = True
        log.debug("rows typed in %d slice(s) in %.2fs", self.slices, time.perf_counter() - self.started)

    def __enter__(self) -> _Typing:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _type_slice(
    conn: psycopg.Connection, params: dict[str, Any], slices: int, index: int, tables: tuple[str, ...]
) -> None:
    for table in tables:
        db.run_sql_file(conn, f"clean/{table}_rows.sql", {**params, "slices": slices, "slice": index})


def _type_apart(url: str | None, params: dict[str, Any], slices: int, index: int, tables: tuple[str, ...]) -> None:
    """:func:`_type_slice` on a connection of its own."""
    with session.connection(url, "clean", part=f"slice {index}") as conn:
        _type_slice(conn, params, slices, index, tables)


def _run_clean_sql(conn: psycopg.Connection, table: str, params: dict[str, Any]) -> None:
    """``clean/<table>.sql`` (the rows' actions into ``work.clean_<table>``, and the writes to production), then
    the quarantine of the rows it rejected, by the one ``clean/quarantine.sql`` every table shares."""
    db.run_sql_file(conn, f"clean/{table}.sql", params)
    db.run_sql_file(
        conn,
        "clean/quarantine.sql",
        {
            **params,
            "source_table": table,
            "actions": sql.Identifier("work", f"clean_{table}"),
            "staged": sql.Identifier("staging", table),
            "key_column": sql.Identifier(contract.key_column(table)),
        },
    )


def _clean_table(
    conn: psycopg.Connection, table: str, batch_id: str, run_id: str, params: dict[str, Any]
) -> dict[str, int]:
    """Clean one table of a batch and record its reconciled counts."""
    started = time.perf_counter()
    _run_clean_sql(conn, table, params)
    conn.execute("select production.analyze_local(%s)", (f"production.{table}",))
    log.debug("batch %s, %s: %.2fs", batch_id, table, time.perf_counter() - started)
    by_action = dict(conn.execute(f"select action, count(*) from work.clean_{table} group by action").fetchall())
    staged = conn.execute(f"select count(*) from staging.{table} where batch_id = %s", (batch_id,)).fetchone()[0]
    row = {"staged": staged, **{name: by_action.pop(action, 0) for action, name in ACTIONS.items()}}
    if by_action or staged != sum(row[name] for name in ACTIONS.values()):
        raise CleanError(f"batch {batch_id}, {table}: {staged} rows staged but counted {row} {by_action}")
    conn.execute(
        """
        insert into production.clean_log (batch_id, table_name, staged, inserted, updated, unchanged, stale,
                                          duplicates, quarantined, run_id)
        values (%(batch_id)s, %(table)s, %(staged)s, %(inserted)s, %(updated)s, %(unchanged)s, %(stale)s,
                %(duplicates)s, %(quarantined)s, %(run_id)s)
        on conflict (batch_id, table_name) do update set
            staged = excluded.staged, inserted = excluded.inserted, updated = excluded.updated,
            unchanged = excluded.unchanged, stale = excluded.stale, duplicates = excluded.duplicates,
            quarantined = excluded.quarantined, run_id = excluded.run_id, cleaned_at = now()
        """,
        {"batch_id": batch_id, "table": table, "run_id": run_id, **row},
    )
    return row


# Reasons that only say a parent was missing: such rows are retried when a later batch brings the parent.
PARENT_REASONS = {
    "orders": ["ORPHAN_CUSTOMER", "CUSTOMER_QUARANTINED"],
    "order_items": ["ORPHAN_ORDER", "ORDER_QUARANTINED", "ORPHAN_PRODUCT", "PRODUCT_QUARANTINED"],
}


def _release_late_rows(
    conn: psycopg.Connection, table: str, batch_id: str, run_id: str, params: dict[str, Any], window_days: int
) -> int:
    """Clean again the rows of earlier batches held only for a parent that production now has.

    Each is cleaned by its table's own SQL, as the line of its own batch it is, but written to production
    as part of ``batch_id`` (the batch that let it in, so the warehouse takes it with that batch). Its
    source batch's clean_log moves it from quarantined to released; ``production.released`` keeps the
    record. A row that still fails another rule goes back to the quarantine. Returns the rows released.
    """
    db.run_sql_file(
        conn,
        "clean/release_candidates.sql",
        {
            "table": table,
            "batch_id": batch_id,
            "parent_reasons": PARENT_REASONS[table],
            "release_window_days": window_days,
        },
    )
    held = conn.execute(
        "select batch_id, array_agg(source_line order by source_line) from work.release_candidates "
        "group by batch_id order by batch_id"
    ).fetchall()
    released = 0
    for source_batch, lines in held:
        retry = {**params, "batch_id": source_batch, "write_batch_id": batch_id, "retry_lines": lines}
        if table == "orders":  # an order's total is checked against all lines of its batch
            _type_rows(conn, source_batch, {**params, "batch_id": source_batch}, ("order_items",))
        _type_rows(conn, source_batch, retry, (table,))
        conn.execute(f"drop table if exists work.clean_{table}")
        _run_clean_sql(conn, table, retry)
        moved = conn.execute(
            f"""
            insert into production.released (batch_id, source_table, source_line, natural_key, reasons,
                                             quarantined_at, released_batch_id, run_id)
            select r.batch_id, r.source_table, r.source_line, r.natural_key, r.reasons, r.quarantined_at, %s, %s
            from work.release_candidates as r
            join work.clean_{table} as c on c.source_line = r.source_line
            where r.batch_id = %s and c.action <> 'quarantined'
            on conflict (batch_id, source_table, source_line) do update set
                released_batch_id = excluded.released_batch_id, released_at = now(), run_id = excluded.run_id
            """,
            (batch_id, run_id, source_batch),
        ).rowcount
        conn.execute(
            "update production.clean_log set quarantined = quarantined - %s, released = released + %s "
            "where batch_id = %s and table_name = %s",
            (moved, moved, source_batch, table),
        )
        released += moved
    if released:
        log.info("batch %s released %d %s row(s) of earlier batches whose parents arrived", batch_id, released, table)
    return released


def clean_batch(
    conn: psycopg.Connection, url: str, batch_id: str, run_id: str, p: CleanParams
) -> dict[str, dict[str, int]]:
    """Clean one batch in one transaction (a large batch's orders and lines typed in slices meanwhile); return the
    reconciled counts per table."""
    params: dict[str, Any] = {
        "batch_id": batch_id,
        "run_id": run_id,
        "email_pattern": contract.EMAIL_PATTERN,
        "categories": list(catalogue.CATEGORIES),
        "statuses": list(catalogue.ORDER_STATUSES),
        "payment_methods": list(catalogue.PAYMENT_METHODS),
        "tolerance": p.tolerance,
        "future_tolerance_hours": p.future_tolerance_hours,
        "earliest_date": p.earliest_date,
        "max_key_length": p.max_key_length,
        "write_batch_id": batch_id,
        "retry_lines": None,
    }
    counts: dict[str, dict[str, int]] = {}
    staged = _staged_rows(conn, batch_id)
    slices = (p.slices or os.cpu_count() or 1) if staged >= p.slice_rows else 1
    _analyze_staged(conn, batch_id)
    with _Typing(conn, url, batch_id, params, slices) as typing, conn.transaction():
        for log_table in ("quarantine", "customer_changes", "product_changes"):  # a batch cleaned again
            conn.execute(f"delete from production.{log_table} where batch_id = %s", (batch_id,))
        # Not on the tables a Citus cluster holds: a load may not change their constraints or indexes.
        bulk = distribution.local_tables(conn, BULK_TABLES) if staged >= p.bulk_rows else []
        with db.bulk_load(conn, bulk, [t for t in BULK_KEYS if t in bulk]) if bulk else nullcontext():
            for table in contract.TABLE_ORDER:
                if table in SLICED_TABLES:
                    typing.done()
                counts[table] = _clean_table(conn, table, batch_id, run_id, params)
                if table in PARENT_REASONS:
                    _release_late_rows(conn, table, batch_id, run_id, params, p.release_window_days)
        db.drop_work_tables(conn, [*(f"clean_{table}" for table in contract.TABLE_ORDER), "release_candidates"])
    log.info("cleaned batch %s: %s", batch_id, {t: c["quarantined"] for t, c in counts.items()})
    return counts


def clean(url: str, run_id: str, p: CleanParams) -> pd.DataFrame:
    """Clean every pending batch; one row of counts per batch and table."""
    rows = []
    with session.connection(url, "clean") as conn:
        for batch_id in pending_batches(conn):
            for table, counts in clean_batch(conn, url, batch_id, run_id, p).items():
                rows.append({"batch_id": batch_id, "table": table, **counts})
        conn.execute("truncate " + ", ".join(f"work.{table}_rows" for table in SLICED_TABLES))
    return pd.DataFrame(rows, columns=["batch_id", "table", *COUNT_COLUMNS])


def run_stage(p: CleanParams, run_id: str) -> pd.DataFrame:
    """The clean stage: clean what is pending and record the stage's row counts."""
    frame = clean(session.database(), run_id, p)
    totals = frame[COUNT_COLUMNS].sum()
    runs.save_stage_result(
        run_id, "clean", {"batches": int(frame["batch_id"].nunique()), **{k: int(v) for k, v in totals.items()}}
    )
    return frame


def quarantine_summary(run_id: str) -> pd.DataFrame:
    """Quarantined rows of this run by table and reason."""
    with session.connection(None, "clean", part="summary") as conn:
        rows = db.query(
            conn,
            """
            select source_table as table, reason, count(*) as rows
            from production.quarantine, unnest(reasons) as reason
            where run_id = :run_id
            group by source_table, reason
            order by source_table, reason
        """,
            {"run_id": run_id},
        )
    return pd.DataFrame(rows, columns=["table", "reason", "rows"])
