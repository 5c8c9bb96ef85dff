"""Analytics: each analysis on a hand-made warehouse with known answers, insights against the generator's
effects, the BI views and the CSV/Parquet export."""

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ecom_pipeline import catalogue, db, migrations
from ecom_pipeline.params import AnalyticsParams, CleanParams, GenerateParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import analytics, clean, generate, ingest, warehouse
from helpers import REPO

SMALL_WAREHOUSE = REPO / "tests" / "data" / "small_warehouse.sql"


def build_small_warehouse(url: str) -> None:
    """Dimensions from the warehouse's own SQL, the hand-made rows, then the aggregates as a load builds them."""
    with db.connection(url) as conn, conn.transaction():
        conn.execute("set local timezone to 'UTC'")
        db.run_sql_file(
            conn,
            "warehouse/dim_status.sql",
            {"statuses": list(catalogue.ORDER_STATUSES), "revenue_statuses": list(catalogue.REVENUE_STATUSES)},
        )
        db.run_sql_file(conn, "warehouse/dim_payment_method.sql", {"payment_methods": list(catalogue.PAYMENT_METHODS)})
        db.run_sql_file(
            conn, "warehouse/dim_date.sql", {"first_date": "2025-01-01", "last_date": "2025-03-31", "holidays": "[]"}
        )
        db.execute_sql(conn, SMALL_WAREHOUSE.read_text())
        loaded_at = conn.execute("select now()").fetchone()[0]  # the facts' default: this transaction's time
        for agg in ("agg_daily_sales", "agg_product_performance", "agg_customer_metrics"):
            db.run_sql_file(conn, f"warehouse/{agg}.sql", {"loaded_at": loaded_at})
        db.drop_work_tables(conn, warehouse.WORK_TABLES)


@pytest.fixture(scope="module")
def small(server_url):
    with db.scratch_database(server_url) as url:
        migrations.ensure_migrated(url)
        build_small_warehouse(url)
        yield url, analytics.run_analyses(url, AnalyticsParams(top_products=2))


def _records(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(row) for row in frame[columns].itertuples(index=False)]


def test_kpis(small):
    kpis = small[1].kpis
    assert kpis == {
        "revenue": 1276.0,
        "profit": 303.0,
        "margin": 0.2375,
        "orders": 4,
        "avg_order_value": 319.0,
        "items": 11,
        "customers": 2,
        "orders_placed": 6,
        "cancelled_orders": 1,
        "returned_orders": 1,
        "first_date": "2025-01-04",
        "last_date": "2025-03-03",
        # March so far (revenue: O6 shipped, 5 x 20.00 - 10.00; placed: O5, returned, and O6) against the
        # same three days of February (O3 on the 3rd), not against the whole of February.
        "month_to_date": {
            "month": "2025-03-01",
            "days": 3,
            "days_in_month": 31,
            "complete": False,
            "revenue": 90.0,
            "orders_placed": 2,
            "previous_month": "2025-02-01",
            "previous_days": 3,
            "previous_revenue": 50.0,
            "previous_orders_placed": 1,
        },
    }


def test_top_products_keeps_the_top_n_by_revenue(small):
    top = small[1].frames["top_products"]
    assert _records(top, ["revenue_rank", "product_id", "revenue", "sub_category"]) == [
        (1, "P1", 1000.0, "Laptops"),
        (2, "P3", 150.0, "Shirts"),
    ]


def test_monthly_trend(small):
    months = small[1].frames["monthly_trend"]
    assert _records(
        months, ["orders_placed", "orders", "revenue", "customers", "cancelled_orders", "returned_orders"]
    ) == [(2, 2, 1136.0, 2, 0, 0), (2, 1, 50.0, 1, 1, 0), (2, 1, 90.0, 1, 0, 1)]
    assert [str(m) for m in months["month"]] == ["2025-01-01", "2025-02-01", "2025-03-01"]


def test_category_performance_counts_every_line_and_revenue_statuses_only(small):
    cats = small[1].frames["category_performance"]
    assert _records(cats, ["category", "lines", "quantity", "revenue", "profit", "margin"]) == [
        ("Electronics", 2, 1, 1000.0, 200.0, 0.2),
        ("Fashion", 2, 3, 150.0, 75.0, 0.5),
        ("Books", 3, 7, 126.0, 28.0, 0.2222),
    ]
    assert cats["revenue_share"].tolist() == [0.7837, 0.1176, 0.0987]
    assert cats["line_share"].tolist() == [0.2857, 0.2857, 0.4286]


def test_payment_mix(small):
    mix = small[1].frames["payment_mix"]
    assert _records(mix, ["payment_method", "orders_placed", "order_share", "revenue", "cancel_rate"]) == [
        ("credit_card", 3, 0.5, 1176.0, 0.0),
        ("cash_on_delivery", 1, 0.1667, 0.0, 1.0),
        ("debit_card", 1, 0.1667, 0.0, 0.0),
        ("upi", 1, 0.1667, 100.0, 0.0),
    ]


def test_region_revenue_uses_where_the_customer_lived(small):
    regions = small[1].frames["region_revenue"]
    assert _records(regions, ["region", "state", "customers", "orders", "revenue", "revenue_share"]) == [
        ("Northeast", "NY", 1, 2, 1086.0, 0.8511),
        ("West", "CA", 1, 2, 190.0, 0.1489),
    ]


def test_spend_bands_include_customers_who_never_paid(small):
    bands = small[1].frames["spend_bands"]
    assert _records(bands, ["spend_band", "customers", "revenue"]) == [
        ("no purchase", 2, 0.0),
        ("100 to 500", 1, 190.0),
        ("1,000 to 5,000", 1, 1086.0),
    ]


def test_lifetime_value_deciles_and_pareto_curve(small):
    frames = small[1].frames
    assert _records(frames["customer_lifetime_value"], ["decile", "customers", "avg_value", "cumulative_share"]) == [
        (1, 1, 1086.0, 0.8511),
        (2, 1, 190.0, 1.0),
    ]
    curve = frames["customer_pareto"].set_index("customer_share")
    assert curve.loc[0.5, "top_customers"] == 1 and curve.loc[0.5, "revenue_share"] == 0.8511
    assert curve.loc[0.55, "top_customers"] == 2 and curve.loc[1.0, "revenue_share"] == 1.0


def test_rfm_segments(small):
    segments = small[1].frames["rfm_segments"]
    assert _records(segments, ["rfm_segment", "customers", "revenue"]) == [
        ("Potential", 1, 1086.0),
        ("Champions", 1, 190.0),
    ]


def test_cohort_retention(small):
    cohorts = small[1].frames["cohort_retention"]
    assert _records(cohorts, ["months_since", "customers", "cohort_size", "retention"]) == [
        (0, 2, 2, 1.0),
        (1, 1, 2, 0.5),
        (2, 1, 2, 0.5),
    ]
    assert set(map(str, cohorts["cohort_month"])) == {"2025-01-01"}


def test_product_profitability(small):
    products = small[1].frames["product_profitability"]
    assert _records(products, ["profit_rank", "product_id", "profit", "margin"]) == [
        (1, "P1", 200.0, 0.2),
        (2, "P3", 75.0, 0.5),
        (3, "P2", 28.0, 0.2222),
    ]


def test_discount_impact(small):
    lines = small[1].frames["discount_impact"]
    assert _records(lines, ["discount_pct", "lines", "units_per_line", "discount_given", "revenue", "profit"]) == [
        (0, 3, 1.333, 0.0, 1150.0, 275.0),
        (10, 2, 3.5, 14.0, 126.0, 28.0),
    ]


def test_day_of_week_averages_over_the_days_covered(small):
    days = small[1].frames["day_of_week"].set_index("day_name")
    # 2025-01-04 (Sat) to 2025-03-03 (Mon): 59 days, nine each of Saturday, Sunday and Monday.
    assert days["days"].sum() == 59
    assert days.loc["Saturday", ["days", "orders_placed", "revenue"]].tolist() == [9, 3, 1036.0]
    assert days.loc["Monday", ["days", "orders_placed", "revenue"]].tolist() == [9, 3, 240.0]
    assert days.loc["Tuesday", "days"] == 8 and days.loc["Tuesday", "revenue"] == 0


def test_seasonality_is_per_day_of_each_month(small):
    months = small[1].frames["seasonality"]
    assert _records(months, ["month", "days", "revenue", "revenue_per_day"]) == [
        (1, 28, 1136.0, 40.57),
        (2, 28, 50.0, 1.79),
        (3, 3, 90.0, 30.0),
    ]


def test_insights_are_computed_from_the_results(small):
    found = {i["key"]: i for i in small[1].insights}
    assert found["top_categories"]["text"] == "Electronics and Fashion bring 90% of revenue from 57% of order lines."
    assert found["payment_method"]["text"] == "Credit card pays for 50% of orders."
    assert found["cancellations_and_returns"]["text"] == "16.7% of orders were cancelled and 16.7% returned."
    weekend = found["weekend_vs_weekday"]["values"]
    assert weekend["revenue_ratio"] == pytest.approx((1036 / 18) / (240 / 41), abs=1e-4)
    assert found["seasonal_peak"]["values"]["peak_month"] == 1
    assert "customer_concentration" not in found  # two buying customers are too few for a top 20%


def test_insights_leave_out_what_an_empty_warehouse_cannot_say(migrated_db):
    result = analytics.run_analyses(migrated_db, AnalyticsParams())
    assert result.insights == []
    assert result.kpis["revenue"] == 0 and result.kpis["orders_placed"] == 0
    assert all(frame.empty for name, frame in result.frames.items() if name != "customer_pareto")


def test_bi_views_agree_with_the_warehouse(small):
    url, result = small
    with db.connection(url) as conn:
        revenue, lines = conn.execute("select sum(revenue), count(*) from bi.sales").fetchone()
        customers = conn.execute("select count(*) from bi.customers where orders > 0").fetchone()[0]
        product = conn.execute(
            "select product_name, category, revenue from bi.products where revenue_rank = 1"
        ).fetchone()
        days = conn.execute("select sum(revenue) from bi.daily_sales").fetchone()[0]
    assert (float(revenue), lines, customers, float(days)) == (result.kpis["revenue"], 7, 2, result.kpis["revenue"])
    assert product[:2] == ("Voltix Laptop Pro", "Electronics")


def test_export_writes_csv_and_parquet_with_exact_types(small, tmp_path):
    url, _ = small
    written = analytics.export_warehouse(url, tmp_path, ["csv", "parquet"])
    assert set(written) == set(analytics.EXPORT_TABLES)
    facts = pq.read_table(tmp_path / written["fact_sales"]["parquet"])
    assert facts.num_rows == written["fact_sales"]["rows"] == 7
    assert str(facts.schema.field("line_total").type) == "decimal128(12, 2)"
    assert str(facts.schema.field("order_ts").type) == "timestamp[us, tz=UTC]"
    assert sum(facts.column("line_total").to_pylist()) == Decimal("2296.00")  # every status, to the cent
    dates = pq.read_table(tmp_path / written["dim_date"]["parquet"]).to_pandas()
    assert dates["is_weekend"].dtype == bool and dates["is_weekend"].sum() == 26
    customers = pd.read_csv(tmp_path / written["dim_customer"]["csv"])
    assert len(customers) == written["dim_customer"]["rows"] == 5  # four and the unknown member


def test_export_only_the_formats_asked_for(small, tmp_path):
    written = analytics.export_warehouse(small[0], tmp_path, ["parquet"])
    assert not (tmp_path / "csv").exists()
    assert all("csv" not in entry for entry in written.values())
    assert len(list((tmp_path / "parquet").glob("*.parquet"))) == len(analytics.EXPORT_TABLES)


# -- generated data: the insights find the effects the generator put in ---------------------------------

EFFECTS_DATA = GenerateParams(orders=30_000, customers=5000, products=200, days=365, seed=11, defect_rate=0)


@pytest.fixture(scope="module")
def generated(server_url, tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    batch = generate.generate_next_batch(EFFECTS_DATA, raw)
    with db.scratch_database(server_url) as url:
        migrations.ensure_migrated(url)
        ingest.ingest(batch.path, "effects", IngestParams(), url)
        clean.clean(url, "effects", CleanParams())
        warehouse.load(url, "effects", WarehouseParams())
        manifest = json.loads((batch.path / "manifest.json").read_text())
        yield manifest, analytics.run_analyses(url, AnalyticsParams())


@pytest.mark.slow
def test_insights_recover_the_generators_effects(generated):
    manifest, result = generated
    effects = manifest["effects"]
    found = {i["key"]: i["values"] for i in result.insights}

    for category, share in effects["category_weights"].items():
        assert found["top_categories"]["line_share"][category] == pytest.approx(share, abs=0.02)
    for method, share in effects["payment_mix"].items():
        assert found["payment_method"]["order_shares"][method] == pytest.approx(share, abs=0.02)
    assert found["payment_method"]["payment_method"] == max(effects["payment_mix"], key=effects["payment_mix"].get)

    assert found["weekend_vs_weekday"]["orders_ratio"] == pytest.approx(effects["weekend_uplift"], rel=0.08)
    assert found["cancellations_and_returns"]["cancel_rate"] == pytest.approx(effects["cancel_rate"], abs=0.01)
    assert found["customer_concentration"]["revenue_share"] > 0.5  # Pareto-distributed purchase frequency

    # Seasonality: the busiest month and its height against the average month, as the generator's own
    # daily volume model predicts them over the same days.
    days = pd.date_range(manifest["first_day"], manifest["last_day"])
    weights = generate.world.daily_weights(
        ((days - pd.Timestamp("1970-01-01")).days).to_numpy(),
        int((days[0] - pd.Timestamp("1970-01-01")).days),
        GenerateParams().effects,
    )
    per_month = pd.Series(weights, index=days).groupby(days.month).mean()
    peak = found["seasonal_peak"]["orders_peak_month"]
    assert peak in effects["peak_months"]
    assert per_month[peak] >= 0.95 * per_month.max()  # the model's busiest month, or one within noise of it
    assert found["seasonal_peak"]["orders_ratio"] == pytest.approx(per_month[peak] / per_month.mean(), rel=0.08)
    assert np.isfinite(found["seasonal_peak"]["revenue_ratio"])
