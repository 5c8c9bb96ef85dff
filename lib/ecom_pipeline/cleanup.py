"""Retention: remove what a pipeline run every night piles up, and say what was removed.

    python -m ecom_pipeline.cleanup --retention-days N [--dry-run]

Older than N days:

- run folders under ``outputs/runs/`` (by when the run started);
- raw batch folders under ``outputs/raw/`` that staging has loaded and
  production has cleaned (by when they were loaded);
- staging rows of those batches (their partitions are dropped);
- detailed monitoring rows: stage runs and check results.

Never touched: production and the warehouse, the quarantine and rejected lines
(the evidence of bad input), the run summaries behind the trends
(``monitoring.pipeline_runs``, ``quality_scores``), batch and ingestion
logs, the generator's state, a batch not yet cleaned, a run still running,
and anything of the latest successful run. A scheduled run calls this after
each success with ``operations.retention_days``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ecom_pipeline import config, db, migrations, tables

log = logging.getLogger("ecom_pipeline.cleanup")


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _protected(conn: psycopg.Connection) -> tuple[str | None, set[str], set[str]]:
    """The latest successful run, its batches, and every run still running."""
    latest = conn.execute(
        "select run_id from monitoring.pipeline_runs where status = 'success' order by started_at desc limit 1"
    ).fetchone()
    latest_run = latest[0] if latest else None
    batches = {
        r[0]
        for r in conn.execute(
            "select batch_id from staging.batches where run_id = %s union select batch_id from production.clean_log "
            "where run_id = %s union select batch_id from warehouse.load_log where run_id = %s",
            (latest_run, latest_run, latest_run),
        )
    }
    running = {r[0] for r in conn.execute("select run_id from monitoring.pipeline_runs where status = 'running'")}
    return latest_run, batches, running


def plan(conn: psycopg.Connection, retention_days: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """What a cleanup would remove, without removing anything."""
    from ecom_pipeline.stages.ingest import partition_name

    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = now - dt.timedelta(days=retention_days)
    latest_run, latest_batches, running = _protected(conn)
    keep_runs = running | ({latest_run} if latest_run else set())

    started = dict(conn.execute("select run_id, started_at from monitoring.pipeline_runs").fetchall())
    run_folders = []
    for folder in sorted(config.runs_dir().iterdir()) if config.runs_dir().exists() else []:
        if folder.is_dir() and folder.name not in keep_runs:
            # A run the database does not know (e.g. a notebook run by hand) is aged by its folder.
            when = started.get(folder.name) or dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.timezone.utc)
            if when < cutoff:
                run_folders.append(folder)

    # Batches loaded before the cutoff and already cleaned (their rows live on in production).
    old_batches = [
        batch
        for (batch,) in conn.execute(
            """
        select b.batch_id from staging.batches as b
        where b.loaded_at < %s and b.status = 'loaded'
          and exists (select 1 from production.clean_log as c where c.batch_id = b.batch_id)
        order by b.batch_id
        """,
            (cutoff,),
        )
        if batch not in latest_batches
    ]
    # The partitions that still exist, and their rows as ingestion recorded them (not counted again).
    names = [partition_name(table, batch) for batch in old_batches for table in tables.STAGING]
    partitions = [
        name
        for (name,) in conn.execute(
            "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
            "where n.nspname = 'staging' and c.relname = any (%s) order by c.relname",
            (names,),
        )
    ]
    staged_rows = sum(
        rows
        for batch, table, rows in conn.execute(
            "select batch_id, table_name, rows_staged from staging.ingestion_log where batch_id = any (%s)",
            (old_batches,),
        )
        if partition_name(table, batch) in partitions
    )
    raw_folders = [config.raw_dir() / b for b in old_batches if (config.raw_dir() / b).is_dir()]

    detail = {
        table: conn.execute(
            sql.SQL("select count(*) from monitoring.{} where {} < %s and run_id <> all (%s)").format(
                sql.Identifier(table), sql.Identifier(column)
            ),
            (cutoff, sorted(keep_runs)),
        ).fetchone()[0]
        for table, column in DETAIL_TABLES.items()
    }
    return {
        "retention_days": retention_days,
        "cutoff": cutoff.isoformat(timespec="seconds"),
        "kept": {"latest_successful_run": latest_run, "running": sorted(running)},
        "run_folders": {
            "count": len(run_folders),
            "bytes": sum(_folder_size(f) for f in run_folders),
            "names": [f.name for f in run_folders],
        },
        "raw_batches": {
            "count": len(raw_folders),
            "bytes": sum(_folder_size(f) for f in raw_folders),
            "names": [f.name for f in raw_folders],
        },
        "staging": {"batches": old_batches, "partitions": partitions, "rows": staged_rows},
        "monitoring_rows": detail,
        "_run_folders": run_folders,
        "_raw_folders": raw_folders,
        "_keep_runs": sorted(keep_runs),
    }


DETAIL_TABLES = {"stage_runs": "started_at", "check_results": "checked_at"}


def cleanup(url: str, retention_days: int, dry_run: bool = False) -> dict[str, Any]:
    """Remove (or, with ``dry_run``, only list) what is older than the retention; return the report."""
    with db.connection(url, application="ecom_pipeline cleanup") as conn, conn.transaction():
        todo = plan(conn, retention_days)
        if not dry_run:
            for name in todo["staging"]["partitions"]:
                conn.execute(sql.SQL("drop table {}").format(sql.Identifier("staging", name)))
            for table, column in DETAIL_TABLES.items():
                conn.execute(
                    sql.SQL("delete from monitoring.{} where {} < %s and run_id <> all (%s)").format(
                        sql.Identifier(table), sql.Identifier(column)
                    ),
                    (todo["cutoff"], todo["_keep_runs"]),
                )
    if not dry_run:  # files after the database: a failed transaction leaves the files that describe it
        for folder in todo["_run_folders"] + todo["_raw_folders"]:
            shutil.rmtree(folder, ignore_errors=True)
    report = {k: v for k, v in todo.items() if not k.startswith("_")}
    report["dry_run"] = dry_run
    verb = "would remove" if dry_run else "removed"
    log.info(
        "cleanup (older than %d days) %s: %d run folders (%.1f MB), %d raw batches (%.1f MB), "
        "%d staging partitions (%d rows), monitoring detail %s",
        retention_days,
        verb,
        report["run_folders"]["count"],
        report["run_folders"]["bytes"] / 1e6,
        report["raw_batches"]["count"],
        report["raw_batches"]["bytes"] / 1e6,
        len(report["staging"]["partitions"]),
        report["staging"]["rows"],
        report["monitoring_rows"],
    )
    return report


def main(argv: list[str] | None = None, prog: str = "python -m ecom_pipeline.cleanup") -> int:
    from ecom_pipeline import logs
    from ecom_pipeline.exits import Exit

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--retention-days", type=int, required=True, metavar="N")
    parser.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    args = parser.parse_args(argv)
    if args.retention_days < 1:
        parser.error("--retention-days must be at least 1")
    logs.configure()
    try:
        url = migrations.ensure_migrated(db.database_url())
        report = cleanup(url, args.retention_days, args.dry_run)
    except (db.BadConnectionString, migrations.MigrationError) as exc:
        log.error("%s", exc)
        return Exit.USAGE
    except db.DatabaseUnavailable as exc:
        log.error("%s", exc)
        return Exit.UNAVAILABLE
    print(json.dumps(report, indent=2))
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
