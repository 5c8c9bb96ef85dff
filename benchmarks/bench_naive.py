"""This pipeline against the usual notebook approach, on the same 100,000-order shape, in one sitting.

    pip install -e ".[bench]"
    python benchmarks/bench_naive.py [--orders 100000]

The usual approach, as the projects this one replaces do it: Faker row at a
time into CSV files (the generator baseline of bench_generate_ingest.py),
``pandas.read_csv`` + ``DataFrame.to_sql`` into raw tables, cleaning,
dimensions, the fact table and the aggregates in pandas, each written back
with ``to_sql``. Ours: ``python run_all.py`` with the same volumes (every stage:
generate, ingest, clean, warehouse, quality, analytics,
monitoring; notebooks and reports included). Both run on a new scratch
database of the server of ``DATABASE_URL`` (or the embedded server); the
wall times and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

from bench_generate_ingest import BASELINE
from bench_pipeline import _watch_peak

from ecom_pipeline import config, db

# Step 1 of the usual approach is the Faker row-at-a-time generator of bench_generate_ingest.py (same shape as
# ours: customers with phone and address, one Faker address per order, one to five lines per order).
NAIVE = textwrap.dedent("""
    import random, re, sys, time
    from pathlib import Path
    import pandas as pd
    from faker import Faker
    from sqlalchemy import create_engine

    out, url = Path(sys.argv[1]), sys.argv[2]
    fake = Faker(); Faker.seed(2); random.seed(2)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    t0 = time.perf_counter()

    # 2. load: read_csv + to_sql into raw tables (products come from Faker here, 500 rows)
    raw = {
        "customers": pd.read_csv(out / "customers.csv"),
        "orders": pd.read_csv(out / "orders.csv", header=None, names=["order_id", "customer_id", "order_date",
                              "status", "payment_method", "shipping_address", "total_amount", "updated_at"]),
        "order_items": pd.read_csv(out / "order_items.csv", header=None, names=["order_item_id", "order_id",
                                   "product_id", "quantity", "unit_price", "discount_percentage", "line_total"]),
        "products": pd.DataFrame([{"product_id": f"P{i}", "product_name": fake.catch_phrase(),
                                   "category": random.choice(["Electronics", "Home", "Fashion", "Books"]),
                                   "price": (price := round(random.uniform(5, 1500), 2)),
                                   "cost": round(price * random.uniform(0.4, 0.9), 2)} for i in range(1, 501)]),
    }
    for name, frame in raw.items():
        frame.to_sql(f"raw_{name}", engine, if_exists="replace", index=False)
    t1 = time.perf_counter()

    # 3. clean in pandas (row-wise validation, as usual), written back
    email = re.compile(r"^[^@\\s]+@[^@\\s]+\\.[a-z]+$")
    customers = raw["customers"].drop_duplicates("customer_id")
    customers = customers[customers["email"].apply(lambda e: isinstance(e, str) and bool(email.match(e)))].copy()
    customers["email"] = customers["email"].str.strip().str.lower()
    customers["registration_date"] = pd.to_datetime(customers["registration_date"], errors="coerce")
    products = raw["products"].drop_duplicates("product_id")
    orders = raw["orders"].drop_duplicates("order_id").copy()
    orders["order_date"] = pd.to_datetime(orders["order_date"], errors="coerce")
    orders = orders[orders["customer_id"].isin(customers["customer_id"])]
    items = raw["order_items"].drop_duplicates("order_item_id")
    items = items[(items["quantity"] > 0) & items["order_id"].isin(orders["order_id"])]
    for name, frame in (("customers", customers), ("products", products), ("orders", orders),
                        ("order_items", items)):
        frame.to_sql(f"clean_{name}", engine, if_exists="replace", index=False)
    t2 = time.perf_counter()

    # 4. warehouse in pandas: dimensions, fact, aggregates, written back
    dim_customer = customers.reset_index(drop=True).rename_axis("customer_key").reset_index()
    dim_product = products.reset_index(drop=True).rename_axis("product_key").reset_index()
    fact = (items.merge(orders, on="order_id").merge(dim_customer[["customer_key", "customer_id"]], on="customer_id")
            .merge(dim_product[["product_key", "product_id", "cost", "category"]], on="product_id"))
    fact["profit"] = fact["line_total"] - fact["quantity"] * fact["cost"]
    revenue = fact[~fact["status"].isin(["cancelled", "returned"])]
    daily = revenue.groupby(revenue["order_date"].dt.date).agg(orders=("order_id", "nunique"),
                                                              revenue=("line_total", "sum"), profit=("profit", "sum"))
    product_perf = revenue.groupby("product_id").agg(quantity=("quantity", "sum"), revenue=("line_total", "sum"),
                                                     profit=("profit", "sum"))
    customer_metrics = revenue.groupby("customer_id").agg(orders=("order_id", "nunique"), spent=("line_total", "sum"),
                                                          first=("order_date", "min"), last=("order_date", "max"))
    for name, frame in (("dim_customer", dim_customer), ("dim_product", dim_product), ("fact_sales", fact),
                        ("agg_daily_sales", daily.reset_index()), ("agg_product", product_perf.reset_index()),
                        ("agg_customer", customer_metrics.reset_index())):
        frame.to_sql(name, engine, if_exists="replace", index=False)
    t3 = time.perf_counter()
    print(f"{t1 - t0:.1f} {t2 - t1:.1f} {t3 - t2:.1f}")
""")


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time, peak resident MB of any one process of it, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=config.PROJ_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = {"rss": 0}
    watcher = threading.Thread(target=_watch_peak, args=(proc, peak), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    if proc.returncode:
        raise RuntimeError(err[-3000:])
    return time.perf_counter() - started, peak["rss"] / 2**20, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    server = db.database_url()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        with db.scratch_database(server, "ours") as url:
            env = {**os.environ, "DATABASE_URL": url, "PIPELINE_OUTPUTS": f"{tmp}/outputs", "CI": "true"}
            ours, ours_mb, _ = _timed(
                [
                    sys.executable,
                    "run_all.py",
                    "--set",
                    f"generate.orders={args.orders}",
                    "--set",
                    f"generate.customers={args.orders // 5}",
                ],
                env,
            )
        with db.scratch_database(server, "naive") as url:
            generate_s, generate_mb, _ = _timed(
                [sys.executable, "-c", BASELINE, f"{tmp}/naive", str(args.orders)], os.environ
            )
            rest_s, rest_mb, out = _timed([sys.executable, "-c", NAIVE, f"{tmp}/naive", url], os.environ)
    naive, naive_mb = generate_s + rest_s, max(generate_mb, rest_mb)
    load_s, clean_s, warehouse_s = out.split()
    print(f"\n{args.orders:,} orders on {db.describe(server)}, {os.cpu_count()} cores")
    print(f"  this pipeline (run_all.py, 7 stages, notebooks and reports): {ours:7.1f} s, peak {ours_mb:,.0f} MB")
    print(
        f"  usual approach (Faker rows, to_sql, pandas):                 {naive:7.1f} s, peak {naive_mb:,.0f} MB"
        f"  (generate {generate_s:.1f} s, load {load_s} s, clean {clean_s} s, warehouse {warehouse_s} s)"
    )
    print(f"  ratio: {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
