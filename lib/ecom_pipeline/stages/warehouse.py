"""Production to the warehouse star schema: SCD2 dimensions, point-in-time facts, aggregates.

All batches cleaned since the last load are taken in one transaction:

1. ``dim_status`` and ``dim_payment_method`` from the catalogue, ``dim_date`` over
   every order date plus a horizon (with a country's public holidays);
2. ``dim_customer`` and ``dim_product`` as slowly changing dimensions (type 2),
   from the versions production took (``production.*_changes``), so loading
   days one at a time or all at once gives the same history;
3. ``fact_sales`` rows for the lines and orders the batches touched, keyed to
   the dimension versions valid at the order's time;
4. the aggregates, recomputed for the dates, products and customers whose facts
   this load wrote (``fact_sales.loaded_at``, the transaction's time, given to every statement as a value).

Then ``ANALYZE`` for the BI access paths.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from ecom_pipeline import catalogue, db, distribution, runs, tables
from ecom_pipeline.params import WarehouseParams
from ecom_pipeline.stages import session

log = logging.getLogger(__name__)


# Type 2 dimensions and their natural keys: sql/warehouse/<dimension>.sql selects the versions
# production took into changes_<name>; sql/warehouse/scd2.sql turns them into history.
SCD2_KEYS = {"dim_customer": "customer_id", "dim_product": "product_id"}

# What the steps' SQL files make in the schema work and pass on to each other (each file's header says which it
# reads); dropped before the load commits.
WORK_TABLES = (
    *(f"{kind}_{d.removeprefix('dim_')}" for d in SCD2_KEYS for kind in ("changes", "scd")),
    "touched_orders",
    "known_lines",
    "touched_dates",
    "touched_products",
    "touched_customers",
)

PENDING_BATCHES = """
select c.batch_id
from production.clean_log as c
left join warehouse.load_log as w on w.batch_id = c.batch_id
group by c.batch_id, w.loaded_at
having w.loaded_at is null or max(c.cleaned_at) > w.loaded_at
order by c.batch_id
"""


def pending_batches(conn: psycopg.Connection) -> list[str]:
    """Cleaned batches the warehouse has not taken in (or that were cleaned again since)."""
    return [row[0] for row in conn.execute(PENDING_BATCHES)]


def _holidays(country: str, first: dt.date, last: dt.date) -> list[tuple[str, str]]:
    import holidays

    days = holidays.country_holidays(country, years=range(first.year, last.year + 1))
    return [(str(day), name) for day, name in sorted(days.items()) if first <= day <= last]


def _date_range(conn: psycopg.Connection, horizon_days: int) -> tuple[dt.date, dt.date] | None:
    first, last = conn.execute(
        "select min(order_date at time zone 'UTC')::date, max(order_date at time zone 'UTC')::date "
        "from production.orders"
    ).fetchone()
    if first is None:
        return None
    return first, last + dt.timedelta(days=horizon_days)


def load(url: str, run_id: str, p: WarehouseParams) -> dict[str, Any]:
    """Load every pending batch; return what was done (batches, step timings, table sizes)."""
    timings: dict[str, float] = {}
    with session.connection(url, "warehouse") as conn:
        batches = pending_batches(conn)
        if batches:
            with conn.transaction():
                if distribution.schema_distributed(conn):
                    # Work tables placed beside the facts mid-load are then joined to them: over one connection
                    # per node (Citus refuses a join to placements that were written over several).
                    conn.execute("set local citus.multi_shard_modify_mode = 'sequential'")
                    conn.execute("set local citus.max_adaptive_executor_pool_size = 1")
                span = _date_range(conn, p.date_horizon_days)
                params: dict[str, Any] = {
                    "batch_ids": batches,
                    # The load's time, as a value: on a Citus cluster the workers' own now() differs.
                    "loaded_at": conn.execute("select now()").fetchone()[0],
                    "statuses": list(catalogue.ORDER_STATUSES),
                    "revenue_statuses": list(catalogue.REVENUE_STATUSES),
                    "payment_methods": list(catalogue.PAYMENT_METHODS),
                    "first_date": span[0] if span else dt.date.today(),
                    "last_date": span[1] if span else dt.date.today(),
                    "holidays": json.dumps(_holidays(p.holiday_country, *span) if span else []),
                }
                # Row locks and new row versions only: BI readers keep reading the last load until this commits.
                for step in tables.WAREHOUSE:
                    started = time.perf_counter()
                    db.run_sql_file(conn, f"warehouse/{step}.sql", params)
                    if step in SCD2_KEYS:
                        slowly_changing(conn, step, SCD2_KEYS[step])
                    timings[step] = round(time.perf_counter() - started, 3)
                started = time.perf_counter()
                db.run_sql_file(conn, "warehouse/indexes.sql")
                timings["indexes"] = round(time.perf_counter() - started, 3)
                db.run_sql_file(conn, "warehouse/load_log.sql", {**params, "run_id": run_id})
                db.drop_work_tables(conn, WORK_TABLES)
            started = time.perf_counter()
            conn.execute("analyze " + ", ".join(tables.qualified("warehouse", tables.WAREHOUSE)))
            timings["analyze"] = round(time.perf_counter() - started, 3)
        publish_personal_data(conn, p.bi_personal_data)
        sizes = {t: conn.execute(f"select count(*) from warehouse.{t}").fetchone()[0] for t in tables.WAREHOUSE}
    log.info("warehouse loaded batches %s in %s", batches, timings)
    return {"batches": batches, "timings": timings, "rows": sizes}


def slowly_changing(conn: psycopg.Connection, dimension: str, key: str) -> None:
    """The type 2 history of ``dimension`` from the changes its own SQL file selected (into scd_<name>).

    Each version keeps the columns of changes_<name>: that file is the one place they are listed.
    """
    name = dimension.removeprefix("dim_")
    columns = [c.name for c in conn.execute(f"select * from work.changes_{name} limit 0").description]
    attributes = [c for c in columns if c not in ("row_hash", "updated_at")]
    db.run_sql_file(
        conn,
        "warehouse/scd2.sql",
        {
            "changes": sql.Identifier("work", f"changes_{name}"),
            "versions": sql.Identifier("work", f"scd_{name}"),
            "versions_name": f"work.scd_{name}",
            "dimension": sql.Identifier("warehouse", dimension),
            "key": sql.Identifier(key),
            "columns": sql.SQL(", ").join(map(sql.Identifier, attributes)),
        },
    )


def publish_personal_data(conn: psycopg.Connection, on: bool) -> None:
    """Make or drop ``bi.customer_personal_data`` as ``warehouse.bi_personal_data`` says (only on a change:
    a view's DDL waits for BI readers' locks)."""
    present = conn.execute("select to_regclass('bi.customer_personal_data') is not null").fetchone()[0]
    if on == present:
        return
    with conn.transaction():
        if on:
            db.run_sql_file(conn, "warehouse/bi_personal_data.sql")
        else:
            conn.execute("drop view bi.customer_personal_data")
    log.info("warehouse: personal data %s bi", "published in" if on else "removed from")


def run_stage(p: WarehouseParams, run_id: str) -> pd.DataFrame:
    """The warehouse stage: load what is pending and record the stage's row counts."""
    result = load(session.database(), run_id, p)
    runs.save_stage_result(run_id, "warehouse", {"batches": len(result["batches"]), **result["rows"]})
    return pd.DataFrame({"table": list(result["rows"]), "rows": list(result["rows"].values())})


def reconciliation(url: str | None = None) -> pd.DataFrame:
    """Revenue, quantity and profit in production, fact_sales and each aggregate (they must agree)."""
    with session.connection(url, "warehouse", part="reconciliation") as conn:
        rows = db.query_file(conn, "warehouse/reconciliation.sql")
    return pd.DataFrame(rows, columns=["source", "revenue", "quantity", "profit"])
