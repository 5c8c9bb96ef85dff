"""Speed and memory of the generate and ingest stages, next to their baselines.

    python benchmarks/bench_generate_ingest.py [--orders 100000 1000000] [--baseline-orders 100000]

* generate: rows/s and peak memory of ``generate_next_batch``, beside a
  row-at-a-time Faker generator of the same shape (the common approach);
* ingest: the ingest stage's wall time beside ``psql \\copy`` of the same files
  into plain text tables (the physical floor of loading them).

Each measurement runs in a fresh subprocess, so peak memory is its own. The
database is ``DATABASE_URL`` or the embedded server; a scratch database is
created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ecom_pipeline import contract, db

GENERATE = """
import json, resource, sys, time
from pathlib import Path
from ecom_pipeline.params import load_params
from ecom_pipeline.stages.generate import generate_next_batch
orders = int(sys.argv[2])
p = load_params("params/large.yaml", [f"generate.orders={orders}", f"generate.customers={orders // 5}",
                                      f"generate.products={max(500, orders // 200)}"])
t = time.perf_counter()
batch = generate_next_batch(p.generate, Path(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - t, "rows": sum(batch.row_counts.values()),
                  "folder": str(batch.path), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BASELINE = """
import csv, json, random, resource, sys, time
from pathlib import Path
from faker import Faker
fake = Faker(); Faker.seed(1); random.seed(1)
orders, out = int(sys.argv[2]), Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
t = time.perf_counter(); rows = 0
customers = orders // 5
with open(out / "customers.csv", "w", newline="") as fh:
    w = csv.writer(fh); w.writerow(["customer_id", "first_name", "last_name", "email", "phone", "address", "city",
                                    "state", "country", "registration_date", "updated_at"])
    for i in range(customers):
        w.writerow([f"C{i}", fake.first_name(), fake.last_name(), fake.email(), fake.phone_number(),
                    fake.street_address(), fake.city(), fake.state_abbr(), "US", fake.date(), fake.iso8601()])
        rows += 1
with open(out / "orders.csv", "w", newline="") as fo, open(out / "order_items.csv", "w", newline="") as fi:
    wo, wi = csv.writer(fo), csv.writer(fi)
    for i in range(orders):
        total = 0.0
        for j in range(random.randint(1, 5)):
            q, p = random.randint(1, 4), round(random.uniform(5, 500), 2)
            d = random.choice([0, 5, 10, 15, 20]); lt = round(q * p * (1 - d / 100), 2); total += lt
            wi.writerow([f"OI{i}-{j}", f"O{i}", f"P{random.randint(1, 500)}", q, p, d, lt]); rows += 1
        wo.writerow([f"O{i}", f"C{random.randint(0, customers - 1)}", fake.date_time_this_year().isoformat(),
                     random.choice(["pending", "shipped", "delivered"]), random.choice(["upi", "wallet"]),
                     fake.address().replace("\\n", ", "), round(total, 2), fake.iso8601()]); rows += 1
print(json.dumps({"seconds": time.perf_counter() - t, "rows": rows,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

INGEST = """
import json, resource, sys, time
from pathlib import Path
from ecom_pipeline import migrations
from ecom_pipeline.params import IngestParams
from ecom_pipeline.stages import ingest
url = migrations.ensure_migrated(sys.argv[2])
t = time.perf_counter()
results = ingest.ingest(Path(sys.argv[1]), "bench", IngestParams(), url)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": sum(r.rows_staged for r in results),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter and return the JSON it prints (seconds, rows, peak_mb)."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def psql_floor(folder: Path, url: str) -> float:
    """Seconds for ``psql \\copy`` of the four files into text tables without lineage or checks."""
    script = []
    for table in contract.TABLE_ORDER:
        cols = ", ".join(f"{c} text" for c in contract.columns(table))
        script.append(f"create table if not exists floor_{table} ({cols});")
        script.append(
            f"\\copy floor_{table} from '{folder / contract.file_name(table)}' with (format csv, header true)"
        )
    started = time.perf_counter()
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", url],
        input="\n".join(script),
        text=True,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--baseline-orders", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    server = db.database_url()
    rows = []
    try:
        baseline = measure(BASELINE, str(work / "baseline"), str(args.baseline_orders))
        rows.append(("generate, Faker row at a time (baseline)", args.baseline_orders, baseline))
        for orders in sorted(args.orders):
            gen = measure(GENERATE, str(work / f"raw{orders}"), str(orders))
            rows.append(("generate, vectorised", orders, gen))
            with db.scratch_database(server, "bench") as url:
                floor = psql_floor(Path(gen["folder"]), url)
                rows.append(("ingest, psql \\copy (floor)", orders, {"seconds": floor, "rows": gen["rows"]}))
                rows.append(("ingest stage", orders, measure(INGEST, str(Path(gen["folder"])), url)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'step':42} {'orders':>10} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}")
    for name, orders, r in rows:
        peak = f"{r['peak_mb']:8.0f}" if "peak_mb" in r else " " * 8
        print(
            f"{name:42} {orders:>10,} {r['rows']:>10,} {r['seconds']:>8.2f} {r['rows'] / r['seconds']:>10,.0f} {peak}"
        )
    print(f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, database {db.describe(server)}")


if __name__ == "__main__":
    main()
