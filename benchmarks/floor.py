"""The plain-SQL floor: the least a pipeline of this shape can do, on the same machine and data size.

    python benchmarks/floor.py --params params/large.yaml

Same data shape as the generator (customers, products, orders and about two
lines per order over the same days), generated vectorised by numpy and written
by Arrow; COPY'd into text tables; then plain SQL into typed production
tables, two dimensions, the fact table and three aggregates. No notebooks,
no quarantine, no SCD2 history, no quality checks, no reports. It is what
``bench_pipeline.py --floor`` runs beside the pipeline, so that the ratio
between the two is measured in one sitting, not remembered.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ecom_pipeline import catalogue, db
from ecom_pipeline.params import load_params

DAY_S = 86_400

TEXT_TABLES = {
    "customers": [
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "city",
        "country",
        "registration_date",
        "updated_at",
    ],
    "products": ["product_id", "product_name", "category", "price", "cost", "updated_at"],
    "orders": ["order_id", "customer_id", "order_date", "status", "payment_method", "total_amount", "updated_at"],
    "order_items": [
        "order_item_id",
        "order_id",
        "product_id",
        "quantity",
        "unit_price",
        "discount_percentage",
        "line_total",
    ],
}

CLEAN = """
create table customers as
select customer_id, first_name, last_name, lower(email) as email, city, country,
       registration_date::date as registration_date, updated_at::timestamptz as updated_at
from raw_customers;
alter table customers add primary key (customer_id);

create table products as
select product_id, product_name, category, price::numeric(12, 2) as price, cost::numeric(12, 2) as cost,
       updated_at::timestamptz as updated_at
from raw_products;
alter table products add primary key (product_id);

create table orders as
select order_id, customer_id, order_date::timestamptz as order_date, status, payment_method,
       total_amount::numeric(12, 2) as total_amount, updated_at::timestamptz as updated_at
from raw_orders;
alter table orders add primary key (order_id);

create table order_items as
select order_item_id, order_id, product_id, quantity::integer as quantity, unit_price::numeric(12, 2) as unit_price,
       discount_percentage::numeric(5, 2) as discount_percentage, line_total::numeric(12, 2) as line_total
from raw_order_items;
alter table order_items add primary key (order_item_id);
"""

WAREHOUSE = """
create table dim_customer as
select row_number() over (order by customer_id) as customer_key, customer_id, first_name || ' ' || last_name as name,
       email, city, country, registration_date
from customers;
create table dim_product as
select row_number() over (order by product_id) as product_key, product_id, product_name, category, price, cost
from products;

create table fact_sales as
select i.order_item_id, o.order_id, to_char(o.order_date at time zone 'UTC', 'YYYYMMDD')::integer as date_key,
       dc.customer_key, dp.product_key, o.status, o.payment_method, i.quantity, i.unit_price,
       i.quantity * i.unit_price - i.line_total as discount_amount, i.line_total,
       i.line_total - i.quantity * dp.cost as profit, o.customer_id, i.product_id
from order_items as i
join orders as o on o.order_id = i.order_id
join dim_customer as dc on dc.customer_id = o.customer_id
join dim_product as dp on dp.product_id = i.product_id;
alter table fact_sales add primary key (order_item_id);

create table agg_daily_sales as
select date_key, count(distinct order_id) as orders, sum(quantity) as items, sum(line_total) as revenue,
       sum(profit) as profit, count(distinct customer_id) as unique_customers
from fact_sales
group by date_key;

create table agg_product_performance as
select product_id, sum(quantity) as quantity, sum(line_total) as revenue, sum(profit) as profit,
       count(distinct order_id) as orders, rank() over (order by sum(line_total) desc) as revenue_rank
from fact_sales
group by product_id;

create table agg_customer_metrics as
select customer_id, count(distinct order_id) as orders, sum(line_total) as revenue, min(date_key) as first_order,
       max(date_key) as last_order
from fact_sales
group by customer_id;
"""


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(numbers, pa.int64()), pa.string()), "")


def _money(cents: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(cents / 100.0), pa.string())


def _ts(seconds: np.ndarray) -> pa.Array:
    return pc.strftime(pa.array(seconds.astype("int64"), pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")


def generate(folder: Path, params_file: str) -> dict[str, int]:
    """Write the four files; return their row counts."""
    p = load_params(params_file).generate
    rng = np.random.default_rng(p.seed)
    start = int(np.datetime64(p.start_date, "s").astype("int64"))
    n_c, n_p, n_o = p.customers, p.products, p.orders
    reg = start - rng.integers(0, 3 * 365 * DAY_S, n_c)
    tables = {
        "customers": {
            "customer_id": _ids("C", np.arange(n_c)),
            "first_name": pa.array(rng.choice(["Ann", "Bo", "Cy"], n_c)),
            "last_name": pa.array(rng.choice(["Smith", "Lee", "Diaz"], n_c)),
            "email": _ids("user", np.arange(n_c)),
            "city": pa.array(rng.choice(["Lyon", "Austin"], n_c)),
            "country": pa.array(rng.choice(["FR", "US"], n_c)),
            "registration_date": _ts(reg),
            "updated_at": _ts(reg),
        },
        "products": {
            "product_id": _ids("P", np.arange(n_p)),
            "product_name": _ids("Product ", np.arange(n_p)),
            "category": pa.array(rng.choice(list(catalogue.CATEGORIES), n_p)),
            "price": _money(rng.integers(500, 50_000, n_p)),
            "cost": _money(rng.integers(200, 20_000, n_p)),
            "updated_at": _ts(np.full(n_p, start)),
        },
    }
    order_ts = start + rng.integers(0, p.days * DAY_S, n_o)
    lines_per_order = rng.choice(np.arange(1, 6), n_o, p=(0.45, 0.25, 0.15, 0.10, 0.05))
    n_l = int(lines_per_order.sum())
    line_order = np.repeat(np.arange(n_o), lines_per_order)
    quantity = rng.integers(1, 5, n_l)
    unit_cents = rng.integers(500, 50_000, n_l)
    line_cents = quantity * unit_cents
    tables["orders"] = {
        "order_id": _ids("O", np.arange(n_o)),
        "customer_id": _ids("C", rng.integers(0, n_c, n_o)),
        "order_date": _ts(order_ts),
        "status": pa.array(rng.choice(list(catalogue.ORDER_STATUSES), n_o)),
        "payment_method": pa.array(rng.choice(list(catalogue.PAYMENT_METHODS), n_o)),
        "total_amount": _money(np.bincount(line_order, weights=line_cents, minlength=n_o)),
        "updated_at": _ts(order_ts),
    }
    tables["order_items"] = {
        "order_item_id": _ids("L", np.arange(n_l)),
        "order_id": _ids("O", line_order),
        "product_id": _ids("P", rng.integers(0, n_p, n_l)),
        "quantity": pa.array(quantity.astype(str)),
        "unit_price": _money(unit_cents),
        "discount_percentage": pa.array(np.zeros(n_l).astype(str)),
        "line_total": _money(line_cents),
    }
    for name, columns in tables.items():
        pacsv.write_csv(pa.table(columns), folder / f"{name}.csv")
    return {name: len(next(iter(columns.values()))) for name, columns in tables.items()}


def load_and_transform(folder: Path, url: str) -> dict[str, float]:
    """COPY the files into text tables, then the plain SQL; return seconds per step."""
    timings: dict[str, float] = {}
    with db.connection(url, autocommit=True, application="floor") as conn:
        started = time.perf_counter()
        for name, columns in TEXT_TABLES.items():
            conn.execute(f"create table raw_{name} ({', '.join(f'{c} text' for c in columns)})")
            with (
                (folder / f"{name}.csv").open("rb") as fh,
                conn.cursor().copy(f"copy raw_{name} from stdin (format csv, header true)") as copy,
            ):
                while block := fh.read(1 << 20):
                    copy.write(block)
        timings["ingest"] = time.perf_counter() - started
        for step, script in (("clean", CLEAN), ("warehouse", WAREHOUSE)):
            started = time.perf_counter()
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            timings[step] = time.perf_counter() - started
    return timings


def run(params_file: str, server: str) -> dict:
    """The floor at one size, on a new database of ``server``: seconds per step and the total."""
    with tempfile.TemporaryDirectory(prefix="floor-") as folder, db.scratch_database(server, "floor") as url:
        started = time.perf_counter()
        rows = generate(Path(folder), params_file)
        timings = {"generate": time.perf_counter() - started, **load_and_transform(Path(folder), url)}
        timings["total"] = time.perf_counter() - started
    return {"params": params_file, "rows": rows, "stages": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params/default.yaml")
    args = parser.parse_args()
    result = run(args.params, db.database_url())
    print(result["rows"])
    print("  ".join(f"{k} {v:.1f}s" for k, v in result["stages"].items()))


if __name__ == "__main__":
    main()
