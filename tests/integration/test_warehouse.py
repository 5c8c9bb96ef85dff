"""Warehouse: SCD2 history, point-in-time facts, reconciled aggregates, reruns and incremental = full."""

import shutil
from pathlib import Path

import psycopg

from ecom_pipeline import contract, db, migrations
from ecom_pipeline.params import GenerateParams, WarehouseParams
from ecom_pipeline.stages import generate, warehouse
from helpers import HANDWRITTEN_BATCH
from layers import assert_invariants, comparable_warehouse, edit, load, rows

SMALL = GenerateParams(
    orders=600,
    customers=150,
    products=40,
    days=30,
    seed=5,
    customer_change_rate=0.05,
    price_change_rate=0.1,
    new_customers_per_day=5,
)


def test_warehouse_generated_days_hold_every_invariant(migrated_db, tmp_path):
    raw = tmp_path / "raw"
    for _ in range(3):
        generate.generate_next_batch(SMALL, raw)
        load(migrated_db, raw)
        assert_invariants(migrated_db)
    moved = rows(migrated_db, "select count(distinct customer_id) from warehouse.dim_customer where not is_current")
    assert moved[0][0] > 0
    log = rows(migrated_db, "select batch_id from warehouse.load_log order by 1")
    assert [r[0] for r in log] == ["2025-01-30", "2025-01-31", "2025-02-01"]


def test_warehouse_rerun_changes_nothing(migrated_db, tmp_path):
    raw = tmp_path / "raw"
    generate.generate_next_batch(SMALL, raw)
    load(migrated_db, raw)
    tables = [
        "dim_date",
        "dim_customer",
        "dim_product",
        "agg_daily_sales",
        "agg_product_performance",
        "agg_customer_metrics",
    ]
    before = {t: rows(migrated_db, f"select * from warehouse.{t} order by 1") for t in tables}
    facts = "select order_item_id, customer_key, product_key, status_key, line_total, profit from warehouse.fact_sales"
    before["facts"] = rows(migrated_db, facts + " order by 1")
    assert warehouse.load(migrated_db, "r2", WarehouseParams())["batches"] == []
    with psycopg.connect(migrated_db) as conn:  # force the batch to be loaded again
        conn.execute("delete from warehouse.load_log")
    assert warehouse.load(migrated_db, "r3", WarehouseParams())["batches"] == ["2025-01-30"]
    after = {t: rows(migrated_db, f"select * from warehouse.{t} order by 1") for t in tables}
    after["facts"] = rows(migrated_db, facts + " order by 1")
    assert after == before


def test_warehouse_incremental_equals_full(server_url, tmp_path):
    raw = tmp_path / "raw"
    for _ in range(5):
        generate.generate_next_batch(SMALL, raw)
    batches = sorted(p for p in raw.iterdir() if not p.name.startswith("_"))
    with db.scratch_database(server_url) as one_by_one, db.scratch_database(server_url) as all_at_once:
        for url in (one_by_one, all_at_once):
            migrations.ensure_migrated(url)
        for i, folder in enumerate(batches):
            load(one_by_one, folder, run_id=f"day{i}")
        load(all_at_once, raw)
        incremental, full = comparable_warehouse(one_by_one), comparable_warehouse(all_at_once)
        for table in full:
            assert incremental[table] == full[table], table
        assert_invariants(all_at_once)


def test_warehouse_handwritten_history(migrated_db, tmp_path):
    """A customer who moves twice, a product whose price changes, an order cancelled after delivery."""
    root = tmp_path / "in"
    day1 = root / "2025-03-01"
    shutil.copytree(HANDWRITTEN_BATCH, day1)
    load(migrated_db, root)

    def next_day(name: str) -> Path:
        folder = root / name
        folder.mkdir()
        for table in contract.TABLE_ORDER:
            header = (day1 / contract.file_name(table)).read_text().splitlines()[0]
            (folder / contract.file_name(table)).write_text(header + "\n")
        return folder

    customer = dict(
        first_name="Ana",
        last_name="Souza",
        email="ana.souza@example.com",
        state="IL",
        country="US",
        registration_date="2024-11-02",
    )
    day2 = next_day("2025-03-02")
    edit(day2, "customers", "CUST-1", city="Chicago", updated_at="2025-03-02T06:00:00", **customer)
    edit(
        day2,
        "products",
        "SKU-A",
        product_name="Trail Runner 2",
        category="Sports & Outdoors",
        price="99.90",
        cost="52.00",
        updated_at="2025-03-02T00:00:00",
    )
    edit(
        day2,
        "orders",
        "ORD-4",
        customer_id="CUST-1",
        order_date="2025-03-02T12:00:00",
        status="delivered",
        payment_method="upi",
        total_amount="99.90",
        updated_at="2025-03-02T12:00:00",
    )
    edit(
        day2,
        "order_items",
        "ITEM-4",
        order_id="ORD-4",
        product_id="SKU-A",
        quantity="1",
        unit_price="99.90",
        discount_percentage="0",
        line_total="99.90",
    )
    load(migrated_db, root, run_id="r2")

    day3 = next_day("2025-03-03")
    edit(
        day3,
        "customers",
        "CUST-1",
        city="Denver",
        state="CO",
        updated_at="2025-03-03T06:00:00",
        **{k: v for k, v in customer.items() if k != "state"},
    )
    edit(
        day3,
        "orders",
        "ORD-1",
        customer_id="CUST-1",
        order_date="2025-02-27T14:03:00",
        status="cancelled",
        payment_method="credit_card",
        total_amount="179.80",
        updated_at="2025-03-03T09:00:00",
    )
    load(migrated_db, root, run_id="r3")

    versions = rows(
        migrated_db,
        "select city, segment, valid_from::date::text, valid_to::date::text, is_current "
        "from warehouse.dim_customer where customer_id = 'CUST-1' order by valid_from",
    )
    assert versions == [
        ("Springfield", "Midwest", "1900-01-01", "2025-03-02", False),
        ("Chicago", "Midwest", "2025-03-02", "2025-03-03", False),
        ("Denver", "West", "2025-03-03", "9999-12-31", True),
    ]
    points = rows(
        migrated_db,
        """
        select f.order_id, c.city, p.price, s.status from warehouse.fact_sales f
        join warehouse.dim_customer c on c.customer_key = f.customer_key
        join warehouse.dim_product p on p.product_key = f.product_key
        join warehouse.dim_status s on s.status_key = f.status_key
        where f.order_id in ('ORD-1', 'ORD-4') order by 1""",
    )
    # ORD-1 was placed before the moves and the price change; ORD-4 after the first move and the new price.
    assert [(o, c, float(p), s) for o, c, p, s in points] == [
        ("ORD-1", "Springfield", 89.90, "cancelled"),
        ("ORD-4", "Chicago", 99.90, "delivered"),
    ]
    daily = rows(
        migrated_db,
        "select full_date::text, revenue, cancelled_orders from warehouse.agg_daily_sales "
        "where full_date = '2025-02-27'",
    )
    assert daily == [("2025-02-27", 0, 1)]  # the cancellation took the day's revenue out
    assert_invariants(migrated_db)


def test_warehouse_dim_date_calendar(migrated_db, tmp_path):
    root = tmp_path / "in"
    shutil.copytree(HANDWRITTEN_BATCH, root / "2025-03-01")
    load(migrated_db, root)
    span = rows(migrated_db, "select min(full_date)::text, max(full_date)::text, count(*) from warehouse.dim_date")
    assert span == [("2025-02-27", "2026-03-01", 368)]  # first order to last order + 365 days
    days = dict(
        rows(
            migrated_db,
            "select full_date::text, (day_name, is_weekend, is_holiday, holiday_name, "
            "iso_week, quarter)::text from warehouse.dim_date "
            "where full_date in ('2025-03-01', '2025-12-25', '2025-03-03')",
        )
    )
    assert days == {
        "2025-03-01": "(Saturday,t,f,,9,1)",
        "2025-03-03": "(Monday,f,f,,10,1)",
        "2025-12-25": '(Thursday,f,t,"Christmas Day",52,4)',
    }


def test_warehouse_late_dimension_change_repoints_earlier_facts(migrated_db, tmp_path):
    """A change that arrives after the orders it applies to: their facts move to the new version."""
    root = tmp_path / "in"
    day1 = root / "2025-03-01"
    shutil.copytree(HANDWRITTEN_BATCH, day1)
    load(migrated_db, root)
    day2 = root / "2025-03-02"
    day2.mkdir()
    for table in contract.TABLE_ORDER:  # the parents as they were; no orders
        source = (day1 / contract.file_name(table)).read_text()
        (day2 / contract.file_name(table)).write_text(
            source if table in ("customers", "products") else source.splitlines()[0] + "\n"
        )
    # Both changes took effect before ORD-1 (2025-02-27T14:03), which this batch does not touch.
    edit(day2, "customers", "CUST-1", city="Chicago", updated_at="2025-02-26T00:00:00")
    edit(day2, "products", "SKU-A", cost="60.00", updated_at="2025-02-20T00:00:00")
    load(migrated_db, root, run_id="r2")

    facts = rows(
        migrated_db,
        """
        select f.order_item_id, c.city, p.cost, f.cost_amount, f.profit from warehouse.fact_sales f
        join warehouse.dim_customer c on c.customer_key = f.customer_key
        join warehouse.dim_product p on p.product_key = f.product_key
        where f.order_id = 'ORD-1'""",
    )
    assert [(i, c, float(p), float(a), float(pr)) for i, c, p, a, pr in facts] == [
        ("ITEM-1", "Chicago", 60.0, 120.0, 59.8)
    ]
    assert_invariants(migrated_db)
