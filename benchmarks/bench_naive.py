"""This pipeline against the usual notebook approach, on the same 100,000-order shape, in one sitting.

    pip install -e ".[bench]"
    python benchmarks/bench_naive.py [--orders 100000]

The usual approach, as the projects this one replaces do it: Faker row at a
time into CSV files, ``pandas.read_csv`` + ``DataFrame.to_sql`` into raw
tables, cleaning, dimensions, the fact table and the aggregates in pandas,
each written back with ``to_sql``. Ours: ``python run_all.py`` with the same
volumes (every stage: generate, ingest, clean, warehouse, quality, analytics,
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
import time

import psutil

from ecom_pipeline import config, db

NAIVE = textwrap.dedent("""
    import csv, random, sys, time
    from pathlib import Path
    import pandas as pd
    from faker import Faker
    from sqlalchemy import create_engine

    orders, out, url = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    fake = Faker(); Faker.seed(1); random.seed(1)
    customers, products = orders // 5, 500
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    t0 = time.perf_counter()

    # 1. generate: Faker, one row at a time
    with open(out / "customers.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "first_name", "last_name", "email", "city", "state", "registration_date"])
        for i in range(customers):
            w.writerow([f"C{i}", fake.first_name(), fake.last_name(), fake.email(), fake.city(), fake.state_abbr(),
                        fake.date()])
    with open(out / "products.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["product_id", "product_name", "category", "price", "cost"])
        for i in range(products):
            price = round(random.uniform(5, 1500), 2)
            w.writerow([f"P{i}", fake.catch_phrase(), random.choice(["Electronics", "Home", "Fashion", "Books"]),
                        price, round(price * random.uniform(0.4, 0.9), 2)])
    with open(out / "orders.csv", "w", newline="") as fo, open(out / "order_items.csv", "w", newline="") as fi:
        wo, wi = csv.writer(fo), csv.writer(fi)
        wo.writerow(["order_id", "customer_id", "order_date", "status", "payment_method", "total_amount"])
        wi.writerow(["order_item_id", "order_id", "product_id", "quantity", "unit_price", "discount_percentage"])
        for i in range(orders):
            total = 0.0
            for j in range(random.randint(1, 3)):
                q, p, d = random.randint(1, 4), round(random.uniform(5, 500), 2), random.choice([0, 5, 10, 20])
                total += q * p * (1 - d / 100)
                wi.writerow([f"I{i}-{j}", f"O{i}", f"P{random.randint(0, products - 1)}", q, p, d])
            wo.writerow([f"O{i}", f"C{random.randint(0, customers - 1)}", fake.date_time_this_year().isoformat(),
                         random.choice(["pending", "shipped", "delivered", "cancelled"]),
                         random.choice(["credit_card", "upi", "wallet"]), round(total, 2)])
    t1 = time.perf_counter()

    # 2. load: read_csv + to_sql into raw tables
    raw = {name: pd.read_csv(out / f"{name}.csv") for name in ("customers", "products", "orders", "order_items")}
    for name, frame in raw.items():
        frame.to_sql(f"raw_{name}", engine, if_exists="replace", index=False)
    t2 = time.perf_counter()

    # 3. clean in pandas, written back
    customers_df = raw["customers"].drop_duplicates("customer_id").dropna(subset=["email"])
    customers_df["email"] = customers_df["email"].str.strip().str.lower()
    products_df = raw["products"].drop_duplicates("product_id")
    orders_df = raw["orders"].drop_duplicates("order_id")
    orders_df["order_date"] = pd.to_datetime(orders_df["order_date"])
    items_df = raw["order_items"].drop_duplicates("order_item_id")
    items_df = items_df[items_df["quantity"] > 0]
    for name, frame in (("customers", customers_df), ("products", products_df), ("orders", orders_df),
                        ("order_items", items_df)):
        frame.to_sql(f"clean_{name}", engine, if_exists="replace", index=False)
    t3 = time.perf_counter()

    # 4. warehouse in pandas: dimensions, fact, aggregates, written back
    dim_customer = customers_df.reset_index(drop=True).rename_axis("customer_key").reset_index()
    dim_product = products_df.reset_index(drop=True).rename_axis("product_key").reset_index()
    fact = (items_df.merge(orders_df, on="order_id").merge(dim_customer[["customer_key", "customer_id"]], on="customer_id")
            .merge(dim_product[["product_key", "product_id", "cost", "category"]], on="product_id"))
    fact["line_total"] = (fact["quantity"] * fact["unit_price"] * (1 - fact["discount_percentage"] / 100)).round(2)
    fact["profit"] = fact["line_total"] - fact["quantity"] * fact["cost"]
    revenue = fact[fact["status"] != "cancelled"]
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
    t4 = time.perf_counter()
    print(f"{t1 - t0:.1f} {t2 - t1:.1f} {t3 - t2:.1f} {t4 - t3:.1f} {t4 - t0:.1f}")
""")


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time, peak resident MB of the process tree, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=config.PROJ_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak, root = 0, psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(err[-3000:])
    return time.perf_counter() - started, peak / 2**20, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    server = db.database_url()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        with db.scratch_database(server, "ours") as url:
            env = {**os.environ, "DATABASE_URL": url, "PIPELINE_OUTPUTS": f"{tmp}/outputs", "CI": "true"}
            ours, ours_mb, _ = _timed([sys.executable, "run_all.py", "--set", f"generate.orders={args.orders}",
                                       "--set", f"generate.customers={args.orders // 5}"], env)
        with db.scratch_database(server, "naive") as url:
            naive, naive_mb, out = _timed([sys.executable, "-c", NAIVE, str(args.orders), tmp, url], os.environ)
    generate_s, load_s, clean_s, warehouse_s, _ = out.split()
    print(f"\n{args.orders:,} orders on {db.describe(server)}, {os.cpu_count()} cores")
    print(f"  this pipeline (run_all.py, 7 stages, notebooks and reports): {ours:7.1f} s, peak {ours_mb:,.0f} MB")
    print(f"  usual approach (Faker rows, to_sql, pandas):                 {naive:7.1f} s, peak {naive_mb:,.0f} MB"
          f"  (generate {generate_s} s, load {load_s} s, clean {clean_s} s, warehouse {warehouse_s} s)")
    print(f"  ratio: {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
