"""The layers as the invariant tests read and compare them: loading a folder through ingest, clean and the
warehouse, the warehouse's invariants, and production and warehouse contents without surrogate keys."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import psycopg

from ecom_pipeline import contract
from ecom_pipeline.params import CleanParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import clean, ingest, warehouse


def load(url: str, source: Path, run_id: str = "r1") -> dict:
    ingest.ingest(source, run_id, IngestParams(), url)
    clean.clean(url, run_id, CleanParams())
    return warehouse.load(url, run_id, WarehouseParams())


def rows(url: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def assert_invariants(url: str) -> None:
    recon = warehouse.reconciliation(url).set_index("source")
    for column in ("revenue", "quantity", "profit"):
        values = recon[column].dropna()
        assert values.nunique() == 1, recon  # to the cent: numeric values compared exactly
    assert rows(url, "select count(*) from warehouse.fact_sales where customer_key = -1 or product_key = -1") == [(0,)]
    overlaps = rows(
        url,
        """
        select a.customer_id from warehouse.dim_customer a join warehouse.dim_customer b
          on a.customer_id = b.customer_id and a.customer_key < b.customer_key
         and a.valid_from < b.valid_to and b.valid_from < a.valid_to
        union all
        select a.product_id from warehouse.dim_product a join warehouse.dim_product b
          on a.product_id = b.product_id and a.product_key < b.product_key
         and a.valid_from < b.valid_to and b.valid_from < a.valid_to""",
    )
    assert overlaps == []
    assert rows(
        url,
        "select count(*) from (select customer_id from warehouse.dim_customer group by 1 "
        "having count(*) filter (where is_current) <> 1) x",
    ) == [(0,)]
    # Every fact points at the version valid at its order's time.
    assert rows(
        url,
        """
        select count(*) from warehouse.fact_sales f
        join warehouse.dim_customer c on c.customer_key = f.customer_key
        join warehouse.dim_product p on p.product_key = f.product_key
        where not (f.order_ts >= c.valid_from and f.order_ts < c.valid_to
                   and f.order_ts >= p.valid_from and f.order_ts < p.valid_to)""",
    ) == [(0,)]
    # Facts match production line for line (status included).
    assert rows(
        url,
        """
        select count(*) from production.order_items i
        join production.orders o on o.order_id = i.order_id
        full join (warehouse.fact_sales f join warehouse.dim_status s on s.status_key = f.status_key)
          on f.order_id = i.order_id and f.order_item_id = i.order_item_id  -- a line's key on a Citus cluster
        where f.order_item_id is null or i.order_item_id is null or s.status <> o.status
           or f.line_total <> i.line_total""",
    ) == [(0,)]


def comparable_warehouse(url: str) -> dict[str, list[tuple]]:
    """The warehouse without surrogate key values and load timestamps."""
    return {
        "dim_customer": rows(
            url,
            "select customer_id, full_name, email, city, state, segment, valid_from, valid_to, "
            "is_current from warehouse.dim_customer order by 1, valid_from",
        ),
        "dim_product": rows(
            url,
            "select product_id, product_name, category, price, cost, price_band, valid_from, "
            "valid_to, is_current from warehouse.dim_product order by 1, valid_from",
        ),
        "fact_sales": rows(
            url,
            """
            select f.order_item_id, f.order_id, f.date_key, c.customer_id, c.valid_from, p.product_id, p.valid_from,
                   s.status, m.payment_method, f.quantity, f.unit_price, f.discount_amount, f.line_total,
                   f.cost_amount, f.profit
            from warehouse.fact_sales f
            join warehouse.dim_customer c on c.customer_key = f.customer_key
            join warehouse.dim_product p on p.product_key = f.product_key
            join warehouse.dim_status s on s.status_key = f.status_key
            join warehouse.dim_payment_method m on m.payment_method_key = f.payment_method_key
            order by 1""",
        ),
        **{
            t: rows(url, f"select * from warehouse.{t} order by 1")
            for t in ("dim_date", "agg_daily_sales", "agg_product_performance", "agg_customer_metrics")
        },
    }


def edit(folder: Path, table: str, key: str, **values: str) -> None:
    """Change columns of the row whose first column is ``key`` (or append it as a new row)."""
    path = folder / contract.file_name(table)
    reader = csv.DictReader(io.StringIO(path.read_text()))
    rows = list(reader)
    found = [r for r in rows if r[contract.key_column(table)] == key]
    if found:
        found[0].update(values)
    else:  # a copy of the first row (or an empty one) under the new key
        template = rows[0] if rows else dict.fromkeys(reader.fieldnames, "")
        rows.append({**template, contract.key_column(table): key, **values})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())


PRODUCTION = {
    "customers": "select customer_id, first_name, last_name, email, phone, address, city, state, country, "
    "registration_date, updated_at, batch_id from production.customers order by 1",
    "products": "select product_id, product_name, category, sub_category, brand, price, cost, stock_quantity, "
    "profit_margin, price_band, updated_at, batch_id from production.products order by 1",
    "orders": "select order_id, customer_id, order_date, status, payment_method, shipping_address, total_amount, "
    "updated_at, batch_id from production.orders order by 1",
    "order_items": "select order_item_id, order_id, product_id, quantity, unit_price, discount_percentage, "
    "line_total, batch_id from production.order_items order by 1",
    "quarantine": "select batch_id, source_table, natural_key, reasons from production.quarantine order by 1, 2, 3, 4",
    # By their keys: "order by 1, 2" sorted versions by name, leaving a product's versions of the same name
    # in whatever order the plan read them (a seq scan, or the primary key after autovacuum's analyze).
    "customer_changes": "select * from production.customer_changes order by customer_id, updated_at",
    "product_changes": "select * from production.product_changes order by product_id, updated_at",
}


def production(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in PRODUCTION.items()}
