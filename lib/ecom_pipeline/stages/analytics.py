"""The questions an e-commerce team asks, answered from the warehouse.

Each analysis is one SQL file under ``sql/analytics/``; its result is saved as
CSV in the run's ``analytics/`` folder. Insights are sentences computed from
those results (never fixed text), each with the values behind it, and go into
``analytics_summary.json`` with the headline figures. The next 30 days of revenue and orders are
forecast from the daily history (:mod:`ecom_pipeline.forecast`), beside the forecast's backtest. The dashboard
(:mod:`ecom_pipeline.dashboard`) shows them; the warehouse is also exported
to CSV and Parquet for BI tools that cannot reach PostgreSQL.

All analyses read one consistent snapshot (one repeatable-read transaction).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy  # noqa: F401  (for session.frames: loaded with this module, ahead of the stage)
from psycopg.types.numeric import FloatLoader

from ecom_pipeline import config, db, forecast, reports, runs, tables
from ecom_pipeline.params import AnalyticsParams
from ecom_pipeline.stages import session

log = logging.getLogger(__name__)

# In the order the analytics summary lists them; each is sql/analytics/<name>.sql.
ANALYSES = (
    "top_products",
    "monthly_trend",
    "category_performance",
    "category_monthly",
    "payment_mix",
    "region_revenue",
    "spend_bands",
    "customer_lifetime_value",
    "customer_pareto",
    "rfm_segments",
    "cohort_retention",
    "product_profitability",
    "discount_impact",
    "day_of_week",
    "seasonality",
    "daily_sales",
)

SNAPSHOT_WAIT_S = 600  # how long the analyses hold their snapshot open for the export to take it

# What the BI export holds: the star schema and the aggregates.
EXPORT_TABLES = tables.WAREHOUSE


@dataclass
class Analytics:
    """The results of one analytics run: headline figures, one frame per analysis, the insights."""

    kpis: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    insights: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    forecast_accuracy: dict[str, Any] = field(default_factory=dict)  # per metric, see forecast.backtest
    currency: str = "USD"


# -- analyses ------------------------------------------------------------------


def run_analyses(
    url: str, p: AnalyticsParams, on_snapshot: Callable[[str], threading.Event] | None = None
) -> Analytics:
    """Every analysis over one snapshot of the warehouse.

    ``on_snapshot`` is given the snapshot's id so that another connection can read the very same
    state (the BI export does, in parallel); it returns an event set once the snapshot is imported,
    and the snapshot is held open until then.
    """
    timings: dict[str, float] = {}
    # One transaction (repeatable read, not read only: the working tables are temp tables) for every frame.
    with session.frames(url, "analytics", isolation_level="REPEATABLE READ") as conn:
        driver = conn.connection.driver_connection  # psycopg, in the same transaction
        # Figures are for reading and charting: numeric comes back as float (the warehouse keeps the cents).
        driver.adapters.register_loader("numeric", FloatLoader)
        imported = on_snapshot(conn.exec_driver_sql("select pg_export_snapshot()").scalar()) if on_snapshot else None
        started = time.perf_counter()
        db.run_sql_file(driver, "analytics/orders.sql")
        timings["working_tables"] = round(time.perf_counter() - started, 3)
        kpis = db.read_frame(conn, db.read_sql("analytics/kpis.sql")).iloc[0].to_dict()
        frames = {}
        for name in ANALYSES:
            started = time.perf_counter()
            frames[name] = db.read_frame(conn, db.read_sql(f"analytics/{name}.sql"), {"top_n": p.top_products})
            timings[name] = round(time.perf_counter() - started, 3)
        if imported is not None:
            imported.wait(SNAPSHOT_WAIT_S)
        conn.rollback()  # the working tables go with the transaction
    started = time.perf_counter()
    ahead = forecast.forecast_daily(frames["daily_sales"])
    frames["forecast"], frames["forecast_backtest"] = ahead.frame, ahead.backtest_frame()
    timings["forecast"] = round(time.perf_counter() - started, 3)
    accuracy = _json_ready(ahead.accuracy)
    kpis["month_to_date"] = month_to_date(frames["daily_sales"])
    kpis = _json_ready(kpis)
    found = insights(kpis, frames, accuracy, reports.Money(p.currency))
    return Analytics(kpis, frames, found, timings, accuracy, p.currency)


def month_to_date(daily: pd.DataFrame) -> dict[str, Any] | None:
    """The newest month so far, and the same days of the month before (like with like, not a part month
    against a whole one): revenue (revenue statuses) and orders placed (every status), as the daily sales
    count them."""
    if daily.empty:
        return None
    dates = pd.to_datetime(daily["full_date"])
    last = dates.max()
    month = last.replace(day=1)
    previous = month - pd.offsets.MonthBegin(1)
    previous_days = min(last.day, previous.days_in_month)
    this = daily[dates >= month]
    before = daily[(dates >= previous) & (dates < previous + pd.Timedelta(days=previous_days))]
    covered = dates.min() <= previous
    return {
        "month": month.date(),
        "days": int(last.day),
        "days_in_month": int(last.days_in_month),
        "complete": bool(last.day == last.days_in_month),
        "revenue": round(float(this["revenue"].sum()), 2),
        "orders_placed": int(this["orders"].sum()),
        "previous_month": previous.date() if covered else None,
        "previous_days": previous_days if covered else None,
        "previous_revenue": round(float(before["revenue"].sum()), 2) if covered else None,
        "previous_orders_placed": int(before["orders"].sum()) if covered else None,
    }


# -- insights --------------------------------------------------------------------


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _more_or_less(ratio: float) -> str:
    return f"{_pct(abs(ratio - 1))} {'more' if ratio >= 1 else 'less'}"


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def category_insight(kpis, frames) -> dict[str, Any] | None:
    cats = frames["category_performance"]
    cats = cats[cats["revenue"] > 0].sort_values("revenue", ascending=False)
    if len(cats) < 2:
        return None
    top = cats.head(2)
    share = float(top["revenue_share"].sum())
    return {
        "key": "top_categories",
        "text": f"{_names(list(top['category']))} bring {_pct(share)} of revenue "
        f"from {_pct(float(top['line_share'].sum()))} of order lines.",
        "values": {
            "categories": list(top["category"]),
            "revenue_share": round(share, 4),
            "line_share": dict(
                zip(frames["category_performance"]["category"], frames["category_performance"]["line_share"].round(4))
            ),
        },
    }


def weekend_insight(kpis, frames) -> dict[str, Any] | None:
    days = frames["day_of_week"]
    weekend, weekday = days[days["is_weekend"]], days[~days["is_weekend"]]
    if weekend["days"].sum() == 0 or weekday["days"].sum() == 0 or weekday["revenue"].sum() == 0:
        return None
    revenue = (weekend["revenue"].sum() / weekend["days"].sum()) / (weekday["revenue"].sum() / weekday["days"].sum())
    orders = (weekend["orders_placed"].sum() / weekend["days"].sum()) / (
        weekday["orders_placed"].sum() / weekday["days"].sum()
    )
    return {
        "key": "weekend_vs_weekday",
        "text": f"Weekend days average {_more_or_less(revenue)} revenue than weekdays "
        f"({_more_or_less(orders)} orders).",
        "values": {"revenue_ratio": round(float(revenue), 4), "orders_ratio": round(float(orders), 4)},
    }


def pareto_insight(kpis, frames) -> dict[str, Any] | None:
    curve = frames["customer_pareto"]
    at = curve[curve["customer_share"] == 0.2]
    if at.empty or curve["customers"].max() < 5:
        return None
    share = float(at["revenue_share"].iloc[0])
    return {
        "key": "customer_concentration",
        "text": f"The top 20% of customers bring {_pct(share)} of revenue.",
        "values": {"customer_share": 0.2, "revenue_share": round(share, 4)},
    }


def payment_insight(kpis, frames) -> dict[str, Any] | None:
    mix = frames["payment_mix"]
    if mix.empty:
        return None
    top = mix.iloc[0]
    return {
        "key": "payment_method",
        "text": f"{top['display_name']} pays for {_pct(top['order_share'])} of orders.",
        "values": {
            "payment_method": top["payment_method"],
            "order_share": round(float(top["order_share"]), 4),
            "order_shares": dict(zip(mix["payment_method"], mix["order_share"].round(4))),
        },
    }


def seasonality_insight(kpis, frames) -> dict[str, Any] | None:
    months = frames["seasonality"]
    if len(months) < 3 or months["revenue_per_day"].mean() == 0:
        return None
    peak = months.loc[months["revenue_per_day"].idxmax()]
    revenue = peak["revenue_per_day"] / months["revenue_per_day"].mean()
    busiest = months.loc[months["orders_per_day"].idxmax()]
    return {
        "key": "seasonal_peak",
        "text": f"Revenue peaks in {peak['month_name']} at {revenue:.1f}x the average month "
        f"(revenue per day); orders peak in {busiest['month_name']}.",
        "values": {
            "peak_month": int(peak["month"]),
            "revenue_ratio": round(float(revenue), 4),
            "orders_peak_month": int(busiest["month"]),
            "orders_ratio": round(float(busiest["orders_per_day"] / months["orders_per_day"].mean()), 4),
        },
    }


def cancellation_insight(kpis, frames) -> dict[str, Any] | None:
    placed = kpis.get("orders_placed") or 0
    if not placed:
        return None
    cancelled, returned = kpis["cancelled_orders"] / placed, kpis["returned_orders"] / placed
    return {
        "key": "cancellations_and_returns",
        "text": f"{100 * cancelled:.1f}% of orders were cancelled and {100 * returned:.1f}% returned.",
        "values": {"cancel_rate": round(cancelled, 4), "return_rate": round(returned, 4)},
    }


def discount_insight(kpis, frames) -> dict[str, Any] | None:
    lines = frames["discount_impact"]
    full, discounted = lines[lines["discount_pct"] == 0], lines[lines["discount_pct"] > 0]
    if full.empty or discounted.empty or full["revenue"].sum() == 0 or discounted["revenue"].sum() == 0:
        return None
    margin_full = full["profit"].sum() / full["revenue"].sum()
    margin_disc = discounted["profit"].sum() / discounted["revenue"].sum()
    units_full = full["units_per_line"].iloc[0]
    units_disc = (discounted["units_per_line"] * discounted["lines"]).sum() / discounted["lines"].sum()
    ratio = units_disc / units_full
    volume = (
        "Discounts do not lift volume (discounted lines sell as many units as full-price ones)"
        if abs(ratio - 1) < 0.05
        else f"Discounted lines sell {_more_or_less(ratio)} units than full-price lines"
    )
    return {
        "key": "discount_impact",
        "text": f"{volume}, at a margin of {_pct(margin_disc)} against {_pct(margin_full)}.",
        "values": {
            "units_ratio": round(float(units_disc / units_full), 4),
            "margin_discounted": round(float(margin_disc), 4),
            "margin_full_price": round(float(margin_full), 4),
        },
    }


def rfm_insight(kpis, frames) -> dict[str, Any] | None:
    segments = frames["rfm_segments"]
    if segments.empty:
        return None
    top = segments.iloc[0]
    return {
        "key": "rfm_segment",
        "text": f"{top['rfm_segment']} are {_pct(top['customer_share'])} of buying customers and bring "
        f"{_pct(top['revenue_share'])} of revenue.",
        "values": {
            "segment": top["rfm_segment"],
            "customer_share": round(float(top["customer_share"]), 4),
            "revenue_share": round(float(top["revenue_share"]), 4),
        },
    }


def region_insight(kpis, frames) -> dict[str, Any] | None:
    states = frames["region_revenue"]
    if states.empty:
        return None
    regions = states.groupby("region")["revenue"].sum().sort_values(ascending=False)
    top = states.iloc[0]
    share = regions.iloc[0] / regions.sum()
    return {
        "key": "top_region",
        "text": f"The {regions.index[0]} brings {_pct(share)} of revenue; {top['state']} is the top state "
        f"with {_pct(top['revenue_share'])}.",
        "values": {
            "region": regions.index[0],
            "region_share": round(float(share), 4),
            "state": top["state"],
            "state_share": round(float(top["revenue_share"]), 4),
        },
    }


INSIGHTS: tuple[Callable[[dict[str, Any], dict[str, pd.DataFrame]], dict[str, Any] | None], ...] = (
    category_insight,
    weekend_insight,
    pareto_insight,
    payment_insight,
    seasonality_insight,
    region_insight,
    rfm_insight,
    discount_insight,
    cancellation_insight,
)


def forecast_insight(
    frames: dict[str, pd.DataFrame], accuracy: dict[str, Any], money: reports.Money
) -> dict[str, Any] | None:
    ahead = frames.get("forecast")
    if ahead is None or ahead.empty:
        return None
    revenue = ahead[ahead["metric"] == "revenue"]
    total = float(revenue["forecast"].sum())
    tested = accuracy.get("revenue") or {}
    text = f"Revenue over the next {len(revenue)} days is forecast at {money(total)}"
    if tested.get("days"):
        text += (
            f"; forecasting the last {tested['days'] // 7} weeks, it was off by {money(tested['mae'])} a day, "
            f"against {money(tested['naive_mae'])} for repeating the week before"
        )
    return {
        "key": "forecast",
        "text": text + ".",
        "values": {"days": len(revenue), "revenue": round(total, 2), "backtest": tested},
    }


def insights(
    kpis: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    accuracy: dict[str, Any] | None = None,
    money: reports.Money | None = None,
) -> list[dict[str, Any]]:
    """Every insight the data supports (one needing data that is not there is left out)."""
    if not kpis.get("orders_placed"):
        return []
    found = [rule(kpis, frames) for rule in INSIGHTS]
    found.append(forecast_insight(frames, accuracy or {}, money or reports.Money()))
    return [_json_ready(i) for i in found if i is not None]


def _json_ready(value: Any) -> Any:
    """Plain JSON values: numpy scalars as Python ones, NaN as null, dates as ISO text."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


# -- BI export -----------------------------------------------------------------------


def export_warehouse(
    url: str, folder: Path, formats: list[str], snapshot: str | None = None, imported: threading.Event | None = None
) -> dict[str, dict[str, Any]]:
    """The star schema and aggregates as CSV (header row, UTF-8) and/or Parquet, one file per table.

    With ``snapshot``, the export reads exactly what the analyses read (``imported`` is set once it has
    taken the snapshot, or failed to).
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    written: dict[str, dict[str, Any]] = {}
    csv_dir = folder / "csv"
    csv_dir.mkdir(parents=True, exist_ok=True)
    try:
        conn = session.connect(url, "analytics", part="export", autocommit=False)
        conn.execute("set transaction isolation level repeatable read, read only")
        if snapshot:
            conn.execute(f"set transaction snapshot '{snapshot}'")
    finally:
        if imported is not None:
            imported.set()
    with conn:
        for table in EXPORT_TABLES:
            path = csv_dir / f"{table}.csv"
            with path.open("wb") as out, conn.cursor() as cur:
                with cur.copy(f"copy (select * from warehouse.{table}) to stdout with (format csv, header)") as copy:
                    for block in copy:
                        out.write(block)
                written[table] = {"rows": cur.rowcount}  # from COPY's own row count, not a second scan
            if "csv" in formats:
                written[table]["csv"] = str(path.relative_to(folder))
            if "parquet" in formats:
                arrow = pacsv.read_csv(path, convert_options=_arrow_types(conn, table))
                target = folder / "parquet" / f"{table}.parquet"
                target.parent.mkdir(exist_ok=True)
                pq.write_table(arrow, target)
                written[table]["parquet"] = str(target.relative_to(folder))
        conn.rollback()
    if "csv" not in formats:
        shutil.rmtree(csv_dir)
    return written


def _arrow_types(conn: psycopg.Connection, table: str):
    """Column types for reading the table's CSV: exact decimals, UTC timestamps, t/f booleans."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrow_types = {
        "integer": pa.int32(),
        "smallint": pa.int16(),
        "bigint": pa.int64(),
        "boolean": pa.bool_(),
        "text": pa.string(),
        "date": pa.date32(),
        "timestamp with time zone": pa.timestamp("us", "UTC"),
    }
    types = {}
    for column, kind, precision, scale in conn.execute(
        "select column_name, data_type, numeric_precision, numeric_scale from information_schema.columns "
        "where table_schema = 'warehouse' and table_name = %s order by ordinal_position",
        (table,),
    ):
        if kind == "numeric":
            types[column] = pa.decimal128(precision or 38, scale or 0)
        else:
            types[column] = arrow_types[kind]
    return pacsv.ConvertOptions(
        column_types=types,
        true_values=["t"],
        false_values=["f"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        timestamp_parsers=["%Y-%m-%d %H:%M:%S%z", pacsv.ISO8601],
    )


# -- the stage -------------------------------------------------------------------------


def write_results(run_id: str, result: Analytics) -> Path:
    """Each analysis as CSV and the summary, in the run's analytics folder."""
    folder = config.run_dir(run_id) / "analytics"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result.frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    summary = folder / "analytics_summary.json"
    runs.write_json(
        summary,
        {
            "run_id": run_id,
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "kpis": result.kpis,
            "insights": result.insights,
            "forecast": {
                "horizon_days": forecast.HORIZON_DAYS,
                "interval": forecast.INTERVAL,
                "file": "analytics/forecast.csv",
                "backtest": result.forecast_accuracy,
            },
            "analyses": {
                name: {"rows": len(frame), "file": f"analytics/{name}.csv"} for name, frame in result.frames.items()
            },
            "timings_s": result.timings,
        },
    )
    return summary


def run_stage(p: AnalyticsParams, run_id: str) -> Analytics:
    """Analyses, insights, dashboard and BI export (in parallel with the analyses) for the current warehouse."""
    from ecom_pipeline import dashboard

    url = session.database()
    folder = config.run_dir(run_id)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export") as pool:
        export = None

        def start_export(snapshot: str) -> threading.Event:
            nonlocal export
            imported = threading.Event()
            export = pool.submit(export_warehouse, url, folder / "export", list(p.export_formats), snapshot, imported)
            return imported

        started = time.perf_counter()
        result = run_analyses(url, p, start_export if p.export_formats else None)
        summary = write_results(run_id, result)
        page = dashboard.write_dashboard(folder / "reports" / "dashboard.html", run_id, result)
        exported = export.result() if export else {}
        result.timings["stage"] = round(time.perf_counter() - started, 3)
    runs.publish_latest([page, summary])
    runs.save_stage_result(
        run_id,
        "analytics",
        {
            "analyses": len(result.frames),
            "insights": len(result.insights),
            "dashboard_mb": round(page.stat().st_size / 1e6, 2),
            "exported_tables": len(exported),
        },
    )
    log.info("analytics: %d analyses, %d insights in %s", len(result.frames), len(result.insights), result.timings)
    return result


def insight_sentences(result: Analytics) -> Any:
    """The insights as a bulleted list of whole sentences, for the notebook."""
    from IPython.display import Markdown

    return Markdown("\n".join(f"- {i['text']}" for i in result.insights) or "No data yet.")


def headline_table(result: Analytics) -> pd.DataFrame:
    """The headline figures, each in its unit, as a small table for the notebook."""
    money, kpis = reports.Money(result.currency), result.kpis

    def count(value: Any) -> str:
        return f"{value or 0:,}"

    rows = [
        ("revenue", money(kpis.get("revenue"))),
        ("orders (revenue statuses)", count(kpis.get("orders"))),
        ("average order value", money(kpis.get("avg_order_value"), 2)),
        ("margin", "–" if kpis.get("margin") is None else f"{kpis['margin']:.1%}"),
        ("profit", money(kpis.get("profit"))),
        ("buying customers", count(kpis.get("customers"))),
        ("orders placed", count(kpis.get("orders_placed"))),
        ("cancelled / returned", f"{count(kpis.get('cancelled_orders'))} / {count(kpis.get('returned_orders'))}"),
        ("orders from", f"{kpis.get('first_date') or '–'} to {kpis.get('last_date') or '–'}"),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"]).set_index("figure")
