"""Monitoring over a database holding a year of daily runs.

    python benchmarks/bench_monitoring.py [--orders 100000] [--days 365]

Builds a new database on the server of ``DATABASE_URL`` (or the embedded
server): one generated batch of ``--orders`` orders taken through ingest,
clean and the warehouse, then a year of history around it: ``--days`` daily
runs of 7 stages, their batches (ingestion, clean and load logs), quality
scores and 24 check results each. Then times ``monitoring.build_report``
(every check, no alert sinks) five times and prints the figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from ecom_pipeline import db, migrations, monitoring
from ecom_pipeline.params import CleanParams, GenerateParams, IngestParams, MonitoringParams, WarehouseParams
from ecom_pipeline.stages import clean, generate, ingest, warehouse

HISTORY = """
with days as (select k from generate_series(1, %(days)s) as k)
insert into staging.batches (batch_id, source_path, status, run_id, loaded_at)
select (%(newest)s::date - k)::text, 'history', 'loaded', 'h' || k, now() - k * interval '1 day' from days;

insert into staging.ingestion_log (batch_id, table_name, source_file, sha256, size_bytes, lines_read, rows_staged,
                                   lines_rejected, load_path, started_at, duration_s, run_id)
select (%(newest)s::date - k)::text, t.table_name, t.source_file, 'x', t.size_bytes,
       t.rows_staged / 365 + k %% 7, t.rows_staged / 365 + k %% 7, 0, 'copy', now() - k * interval '1 day', 1, 'h' || k
from generate_series(1, %(days)s) as k
cross join staging.ingestion_log as t
where t.batch_id = %(newest)s::text;

insert into production.clean_log (batch_id, table_name, staged, inserted, updated, unchanged, stale, duplicates,
                                  quarantined, run_id, cleaned_at)
select (%(newest)s::date - k)::text, c.table_name, c.staged / 365, c.staged / 365, 0, 0, 0, 0, 0, 'h' || k,
       now() - k * interval '1 day'
from generate_series(1, %(days)s) as k
cross join production.clean_log as c
where c.batch_id = %(newest)s::text;

insert into warehouse.load_log (batch_id, customer_versions, product_versions, facts_inserted, facts_updated, run_id,
                                loaded_at)
select (%(newest)s::date - k)::text, 20, 10, w.facts_inserted / 365 + k %% 5, 0, 'h' || k, now() - k * interval '1 day'
from generate_series(1, %(days)s) as k
cross join warehouse.load_log as w
where w.batch_id = %(newest)s::text;

insert into monitoring.pipeline_runs (run_id, status, started_at, finished_at, duration_s, stages, params,
                                      params_file, code_version)
select 'h' || k, case when k %% 50 = 25 then 'failed' else 'success' end, now() - k * interval '1 day',
       now() - k * interval '1 day' + interval '40 seconds', 40 + k %% 9, %(stages)s, '{}', 'params/default.yaml', 'x'
from generate_series(0, %(days)s) as k;

insert into monitoring.stage_runs (run_id, stage, attempt, status, started_at, finished_at, duration_s, notebook)
select 'h' || k, s, 1, 'success', now() - k * interval '1 day', now() - k * interval '1 day', 5, 'x'
from generate_series(0, %(days)s) as k
cross join unnest(%(stages)s::text[]) as s;

insert into monitoring.quality_scores (run_id, overall, grade, dimensions, scored_at)
select 'h' || k, 99.5 + (k %% 5) / 10.0, 'A', '{}', now() - k * interval '1 day' + interval '30 seconds'
from generate_series(0, %(days)s) as k;

insert into monitoring.check_results (run_id, check_name, kind, layer, table_name, dimension, severity, description,
                                      rows_checked, rows_failing, duration_s, passed, checked_at)
select 'h' || k, 'check_' || c, 'sql', 'production', 'production.orders', 'validity', 'warn', 'x', 1000,
       (c = 1)::int, 0.1, c <> 1, now() - k * interval '1 day'
from generate_series(0, %(days)s) as k
cross join generate_series(1, 24) as c;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    server = db.database_url()
    stages = ["generate", "ingest", "clean", "warehouse", "quality", "analytics", "monitoring"]
    with tempfile.TemporaryDirectory() as raw, db.scratch_database(server, "benchmon") as url:
        migrations.ensure_migrated(url)
        batch = generate.generate_next_batch(
            GenerateParams(orders=args.orders, customers=max(100, args.orders // 5)), Path(raw)
        )
        ingest.ingest(batch.path, "h0", IngestParams(), url)
        clean.clean(url, "h0", CleanParams())
        warehouse.load(url, "h0", WarehouseParams())
        with psycopg.connect(url) as conn:
            conn.execute("update staging.ingestion_log set run_id = 'h0'")
            for statement in HISTORY.split(";\n"):
                if statement.strip():
                    conn.execute(statement, {"days": args.days, "newest": batch.batch_id, "stages": stages})
            conn.execute("analyze")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            report = monitoring.build_report(url, MonitoringParams(), "h0")
            timings.append(time.perf_counter() - started)
    print(
        f"monitoring over {args.days} daily runs and {args.orders:,} orders ({db.describe(server)}): "
        f"median {statistics.median(timings):.2f} s, max {max(timings):.2f} s over 5 reports; "
        f"status {report['status']}, {len(report['alerts'])} alerts"
    )


if __name__ == "__main__":
    main()
