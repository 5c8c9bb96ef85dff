"""Is the pipeline well? Health, freshness, volumes, quality trend and the database, with alerts.

The report (``monitoring_report.json``, schema in ``monitoring_report.schema.json``,
documented in docs/monitoring.md) is written by the last notebook of every run,
by ``run_all.py`` when a run fails, and by the standalone command::

    python -m ecom_pipeline.monitoring [--params FILE] [--set monitoring.KEY=VALUE] [--no-alerts]

which works when the database is unreachable (the report then says so and is
critical). Its exit code follows the monitoring-plugin convention (Nagios,
Icinga), so cron and CI can act on it: 0 healthy, 1 degraded, 2 critical,
3 unusable parameters. Alerts go to the log always, and to a webhook and e-mail when
configured (:mod:`ecom_pipeline.alerts`).

Health score: 100, minus 40 per critical alert and 10 per warning, never
below 0. Status: ``critical`` with any critical alert, ``degraded`` with any
warning, ``healthy`` otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ecom_pipeline import config, db, runs
from ecom_pipeline.params import MonitoringParams, ParamsError, load_params, params_file

log = logging.getLogger("ecom_pipeline.monitoring")

SCHEMA_FILE = config.PACKAGE_DIR / "monitoring_report.schema.json"
SCHEMA_VERSION = 1
CRITICAL_PENALTY, WARNING_PENALTY = 40, 10
LAYERS = ("staging", "production", "warehouse")
ZERO_IS_CRITICAL = ("staging.orders", "staging.order_items")  # a batch without orders is not a day of trade
MAD_TO_SIGMA = 1.4826  # scales the median absolute deviation to a standard deviation for normal data


@dataclass
class Alert:
    severity: str  # "critical" or "warning"
    check: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # what the alert is about, when a check can alert for several things (a table)

    @property
    def key(self) -> str:
        return f"{self.check}:{self.subject}" if self.subject else self.check

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "check": self.check,
            "key": self.key,
            "message": self.message,
            "values": self.values,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _hours(delta: dt.timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds() / 3600, 2)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- checks: each returns its report section and its alerts -------------------------------------


def check_database(
    url: str | None,
    p: MonitoringParams,
    problem: str | None = None,
) -> tuple[dict[str, Any], list[Alert], psycopg.Connection | None]:
    """Reachable or not, round-trip latency, version, connections, size. Returns the open connection.

    ``problem`` says why there is no ``url`` (a connection string that cannot be used, say).
    """
    section: dict[str, Any] = {
        "reachable": False,
        "target": db.describe(url) if url else None,
        "latency_ms": None,
        "server_version": None,
        "connections": None,
        "active_connections": None,
        "size_bytes": None,
        "error": None,
    }
    try:
        if not url:
            raise db.DatabaseUnavailable(problem or "no database configured and the embedded server did not start")
        conn = db.connect(
            url, autocommit=True, application="ecom_pipeline monitoring", connect_timeout=p.connect_timeout_s
        )
    except db.DatabaseUnavailable as exc:
        section["error"] = exc.reason
        return (
            section,
            [
                Alert(
                    "critical",
                    "database_unreachable",
                    f"the database {section['target'] or ''} cannot be reached: {section['error']}",
                    {"error": section["error"]},
                )
            ],
            None,
        )
    # Monitoring never queues behind a running stage's locks, nor runs long: it reports instead.
    conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(f"{p.lock_timeout_ms}ms")))
    conn.execute(sql.SQL("set statement_timeout = {}").format(sql.Literal(f"{p.statement_timeout_s}s")))
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        conn.execute("select 1").fetchone()
        rounds.append((time.perf_counter() - started) * 1000)
    info = db.query_file(conn, "monitoring/database.sql")[0]
    section.update(
        reachable=True,
        latency_ms=round(statistics.median(rounds), 2),
        server_version=info["server_version"],
        connections=info["connections"],
        active_connections=info["active_connections"],
        size_bytes=info["size_bytes"],
    )
    return section, [], conn


def check_pipeline(
    conn: psycopg.Connection, run_id: str | None, p: MonitoringParams, now: dt.datetime
) -> tuple[dict[str, Any], list[Alert]]:
    """The last run's status, hours since the last success, this run's duration against the history."""
    recent = db.query_file(conn, "monitoring/runs.sql", {"limit": p.history_runs + 1})
    state = db.query_file(conn, "monitoring/last_success.sql", {"lock_key": db.PIPELINE_LOCK_KEY})[0]
    alerts: list[Alert] = []
    current = next((r for r in recent if r["run_id"] == run_id), None) if run_id else None
    current = current or (recent[0] if recent else None)
    earlier = [
        r["duration_s"]
        for r in recent
        if current
        and r["run_id"] != current["run_id"]
        and r["status"] == "success"
        and r["started_at"] < current["started_at"]
    ]
    section: dict[str, Any] = {
        "last_run": None,
        "last_success_at": _iso(state["last_success_at"]),
        "hours_since_success": _hours(now - state["last_success_at"]) if state["last_success_at"] else None,
        "duration": None,
        "failed_stages": [],
        "retried_stages": [],
        "runs_considered": len(recent),
        "history": [
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "started_at": _iso(r["started_at"]),
                "duration_s": round(r["duration_s"], 1),
            }
            for r in recent
        ],
    }
    if run_id and not any(r["run_id"] == run_id for r in recent):
        section["note"] = f"run {run_id} is not recorded: its notebooks were run outside run_all.py"
    if current is None:
        if not run_id:
            alerts.append(Alert("critical", "pipeline_never_ran", "no pipeline run is recorded in this database"))
        return section, alerts
    in_this_run = current["run_id"] == run_id
    section["last_run"] = {
        "run_id": current["run_id"],
        "status": current["status"],
        "started_at": _iso(current["started_at"]),
        "finished_at": _iso(current["finished_at"]),
        "duration_s": round(current["duration_s"], 1),
        "error": current["error"],
    }
    section["failed_stages"] = list(current["failed_stages"])
    section["retried_stages"] = list(current["retried_stages"])

    if current["status"] == "failed":
        alerts.append(
            Alert(
                "critical",
                "pipeline_failed",
                f"run {current['run_id']} failed: {current['error']}",
                {"run_id": current["run_id"], "failed_stages": section["failed_stages"]},
            )
        )
    elif current["status"] == "running" and not in_this_run and not state["lock_held"]:  # not alive
        alerts.append(
            Alert(
                "critical",
                "pipeline_stopped",
                f"run {current['run_id']} is marked running but no process holds the pipeline lock: "
                "it was killed or the machine stopped",
                {"run_id": current["run_id"]},
            )
        )
    hours = section["hours_since_success"]
    if hours is not None and hours > p.max_hours_since_success:
        alerts.append(
            Alert(
                "warning",
                "pipeline_delayed",
                f"the last successful run finished {hours:.1f} h ago (threshold {p.max_hours_since_success:g} h)",
                {"hours_since_success": hours},
            )
        )
    elif hours is None and not in_this_run and current["status"] != "failed":
        alerts.append(Alert("warning", "pipeline_delayed", "the pipeline has never finished successfully"))

    alive = current["status"] == "running" and (in_this_run or state["lock_held"])
    if current["status"] != "success" and not alive:
        section["duration"] = None  # a failed or stopped run's duration says nothing about speed
    elif len(earlier) >= p.min_history:
        median = statistics.median(earlier)
        ratio = current["duration_s"] / median if median else None
        section["duration"] = {
            "duration_s": round(current["duration_s"], 1),
            "median_s": round(median, 1),
            "ratio": round(ratio, 2) if ratio else None,
            "runs_compared": len(earlier),
        }
        if ratio and ratio > p.duration_factor:
            alerts.append(
                Alert(
                    "warning",
                    "slow_run",
                    f"run {current['run_id']} took {ratio:.1f}x the median of the last {len(earlier)} "
                    f"successful runs ({current['duration_s']:.0f} s against {median:.0f} s)",
                    section["duration"],
                )
            )
    else:
        section["duration"] = {
            "duration_s": round(current["duration_s"], 1),
            "median_s": None,
            "ratio": None,
            "runs_compared": len(earlier),
            "note": f"fewer than {p.min_history} earlier successful runs to compare with",
        }
    return section, alerts


def _batch_day_end(batch_id: str | None) -> dt.datetime | None:
    """Batch folders are named by the day they hold (YYYY-MM-DD): their data should reach that day's end."""
    try:
        day = dt.date.fromisoformat(batch_id or "")
    except ValueError:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def check_freshness(
    conn: psycopg.Connection, p: MonitoringParams, now: dt.datetime
) -> tuple[dict[str, Any], list[Alert]]:
    """Per layer: event time (newest order against the batch's day) and load time (newest load against now)."""
    rows = {r["layer"]: r for r in db.query_file(conn, "monitoring/freshness.sql")}
    newest_batch = rows["staging"]["batch_id"]
    expected = _batch_day_end(newest_batch)
    alerts: list[Alert] = []
    layers = {}
    for layer in LAYERS:
        row = rows[layer]
        event_lag = _hours(expected - row["newest_event"]) if expected and row["newest_event"] else None
        load_lag = _hours(now - row["newest_load"]) if row["newest_load"] else None
        layers[layer] = {
            "newest_event": _iso(row["newest_event"]),
            "event_lag_hours": event_lag,
            "newest_load": _iso(row["newest_load"]),
            "load_lag_hours": load_lag,
            "batch_id": row["batch_id"],
        }
        if event_lag is not None and event_lag > p.max_event_lag_hours:
            alerts.append(
                Alert(
                    "warning",
                    "stale_data",
                    f"{layer}: the newest order is {event_lag:.0f} h older than the end of batch "
                    f"{newest_batch} (threshold {p.max_event_lag_hours:g} h)",
                    {"layer": layer, "event_lag_hours": event_lag},
                    subject=layer,
                )
            )
        if load_lag is not None and load_lag > p.max_load_lag_hours:
            alerts.append(
                Alert(
                    "warning",
                    "load_delayed",
                    f"{layer}: nothing loaded for {load_lag:.0f} h (threshold {p.max_load_lag_hours:g} h)",
                    {"layer": layer, "load_lag_hours": load_lag},
                    subject=layer,
                )
            )
    if rows["production"]["newest_event"] is None:
        alerts.append(Alert("critical", "zero_records", "production holds no orders"))
    section = {
        "newest_batch": newest_batch,
        "expected_until": _iso(expected),
        "layers": layers,
        "note": None
        if expected or newest_batch is None
        else f"batch {newest_batch} is not named by its day (YYYY-MM-DD): event-time lag is not measured",
    }
    return section, alerts


def robust_range(history: list[int], threshold: float) -> tuple[float, float, float]:
    """(median, scale, allowed distance): scale is the MAD as a standard deviation, at least 5% of the median."""
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history) * MAD_TO_SIGMA
    scale = max(mad, 0.05 * median, 1.0)
    return median, scale, threshold * scale


def check_volumes(conn: psycopg.Connection, p: MonitoringParams) -> tuple[dict[str, Any], list[Alert]]:
    """Rows of the newest batch per table against the earlier batches (median and MAD)."""
    rows = db.query_file(conn, "monitoring/volumes.sql", {"limit": p.history_runs + 1})
    by_table: dict[str, list[tuple[str, int]]] = {}
    for row in rows:  # newest batch first
        by_table.setdefault(row["table_name"], []).append((row["batch_id"], int(row["row_count"])))
    alerts: list[Alert] = []
    tables = []
    for table, series in sorted(by_table.items()):
        (batch, count), history = series[0], [c for _, c in series[1:]]
        entry: dict[str, Any] = {
            "table": table,
            "batch_id": batch,
            "rows": count,
            "history_batches": len(history),
            "median": None,
            "expected_min": None,
            "expected_max": None,
            "score": None,
            "status": "ok",
        }
        if count == 0 and table in ZERO_IS_CRITICAL:
            entry["status"] = "zero"
            alerts.append(
                Alert(
                    "critical",
                    "zero_records",
                    f"batch {batch} brought 0 rows into {table}",
                    {"table": table, "batch_id": batch},
                    subject=table,
                )
            )
        elif len(history) < p.min_history:
            entry["status"] = "insufficient_history"
            entry["note"] = f"{len(history)} earlier batches, {p.min_history} needed: no judgement yet"
        else:
            median, scale, distance = robust_range(history, p.volume_threshold)
            score = (count - median) / scale
            entry.update(
                median=median,
                expected_min=max(0.0, round(median - distance, 1)),
                expected_max=round(median + distance, 1),
                score=round(score, 2),
            )
            if abs(score) > p.volume_threshold:
                entry["status"] = "spike" if score > 0 else "drop"
                alerts.append(
                    Alert(
                        "warning",
                        f"volume_{entry['status']}",
                        f"batch {batch}: {count:,} rows in {table}, expected {entry['expected_min']:,.0f}"
                        f" to {entry['expected_max']:,.0f} (median of {len(history)} earlier batches "
                        f"{median:,.0f})",
                        {
                            k: entry[k]
                            for k in ("table", "batch_id", "rows", "median", "expected_min", "expected_max", "score")
                        },
                        subject=table,
                    )
                )
        tables.append(entry)
    for row in db.query_file(conn, "monitoring/rejected_lines.sql"):
        alerts.append(
            Alert(
                "warning",
                "rejected_lines",
                f"batch {row['batch_id']}: {row['lines_rejected']:,} of {row['lines_read']:,} lines of "
                f"{row['source_file']} could not be staged (see staging.rejected_lines)",
                {k: row[k] for k in ("batch_id", "table_name", "source_file", "lines_rejected", "lines_read")},
                subject=row["table_name"],
            )
        )
    history = [
        {"batch_id": r["batch_id"], "table_name": r["table_name"], "row_count": int(r["row_count"])} for r in rows
    ]
    return {"tables": tables, "threshold": p.volume_threshold, "min_history": p.min_history, "history": history}, alerts


def check_quality(
    conn: psycopg.Connection, run_id: str | None, p: MonitoringParams
) -> tuple[dict[str, Any], list[Alert]]:
    """This run's quality score and failing checks against the earlier runs."""
    history = db.query_file(conn, "monitoring/quality_history.sql", {"limit": p.history_runs + 1})
    if not history:
        return {"score": None, "note": "no quality score recorded yet", "history": []}, []
    current = next((h for h in history if h["run_id"] == run_id), history[0])
    earlier = [h for h in history if h["scored_at"] < current["scored_at"]]
    section: dict[str, Any] = {
        "run_id": current["run_id"],
        "score": float(current["overall"]),
        "grade": current["grade"],
        "failing_checks": list(current["failing_checks"]),
        "baseline": None,
        "drop": None,
        "new_failures": [],
        "runs_compared": len(earlier),
        "history": [
            {"run_id": h["run_id"], "overall": float(h["overall"]), "scored_at": _iso(h["scored_at"])} for h in history
        ],
    }
    if not earlier:
        section["note"] = "no earlier score to compare with"
        return section, []
    baseline = statistics.median(float(h["overall"]) for h in earlier)
    before = set(earlier[0]["failing_checks"])
    section.update(
        baseline=round(baseline, 2),
        drop=round(baseline - section["score"], 2),
        new_failures=sorted(set(section["failing_checks"]) - before),
    )
    alerts = []
    if section["drop"] > p.quality_drop:
        alerts.append(
            Alert(
                "warning",
                "quality_degradation",
                f"quality score {section['score']:.2f} is {section['drop']:.2f} points below the median "
                f"of the last {len(earlier)} runs ({baseline:.2f})",
                {k: section[k] for k in ("score", "baseline", "drop", "new_failures")},
            )
        )
    return section, alerts


# -- the report ----------------------------------------------------------------------------------


def overall(alerts: list[Alert]) -> tuple[str, int]:
    critical = sum(a.severity == "critical" for a in alerts)
    warnings = sum(a.severity == "warning" for a in alerts)
    score = max(0, 100 - CRITICAL_PENALTY * critical - WARNING_PENALTY * warnings)
    return ("critical" if critical else "degraded" if warnings else "healthy"), score


def build_report(
    url: str | None, p: MonitoringParams, run_id: str | None = None, problem: str | None = None
) -> dict[str, Any]:
    """Every check; a section whose data cannot be read (database down) is null, with the reason in alerts."""
    now = _now()
    started = time.perf_counter()
    database, alerts, conn = check_database(url, p, problem)
    sections: dict[str, Any] = {
        "pipeline_health": None,
        "data_freshness": None,
        "volume_anomalies": None,
        "quality_trend": None,
    }
    if conn is not None:
        with conn:
            for name, check in (
                ("pipeline_health", lambda: check_pipeline(conn, run_id, p, now)),
                ("data_freshness", lambda: check_freshness(conn, p, now)),
                ("volume_anomalies", lambda: check_volumes(conn, p)),
                ("quality_trend", lambda: check_quality(conn, run_id, p)),
            ):
                try:
                    sections[name], found = check()
                except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
                    # A running stage holds a lock (or the server is slow): report it rather than wait.
                    sections[name], found = (
                        None,
                        [
                            Alert(
                                "warning",
                                "check_waiting",
                                f"{name} was not read: {str(exc).splitlines()[0]} "
                                f"(a running stage may hold a lock; it is read again next time)",
                                subject=name,
                            )
                        ],
                    )
                except psycopg.Error as exc:  # e.g. a database the pipeline never migrated: say so, go on
                    sections[name], found = (
                        None,
                        [
                            Alert(
                                "critical",
                                "check_failed",
                                f"{name} could not be read: {str(exc).splitlines()[0]}",
                                subject=name,
                            )
                        ],
                    )
                alerts.extend(found)
    status, score = overall(alerts)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now.isoformat(timespec="seconds"),
        "run_id": run_id,
        "status": status,
        "health_score": score,
        "thresholds": p.model_dump(mode="json"),
        "database": database,
        **sections,
        "alerts": [a.as_dict() for a in sorted(alerts, key=lambda a: (a.severity != "critical", a.check))],
        "duration_s": round(time.perf_counter() - started, 3),
    }


def validate(report: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if the report does not match the published schema."""
    import jsonschema

    # As jsonschema.validate, without checking the schema itself on every report (0.7 s); its test does that.
    schema = json.loads(SCHEMA_FILE.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(report))
    if error is not None:
        raise error


def write_report(report: dict[str, Any], run_id: str | None) -> list[Path]:
    """JSON and HTML into the run's reports folder (when there is a run), copied to outputs/latest/."""
    from ecom_pipeline.reports import monitoring_report_html

    folder = config.run_dir(run_id) / "reports" if run_id else config.outputs_dir() / "latest"
    files = [folder / "monitoring_report.json", folder / "monitoring_report.html"]
    runs.write_json(files[0], report)
    monitoring_report_html(files[1], report)
    if run_id:
        runs.publish_latest(files)
    return files


def monitor(
    p: MonitoringParams, run_id: str | None = None, url: str | None = None, send_alerts: bool = True
) -> dict[str, Any]:
    """Build, validate, write and alert. Never raises for an unwell pipeline: that is what the report says."""
    from ecom_pipeline import alerts

    problem = None
    if url is None:
        try:
            url = db.database_url()
        except (db.DatabaseUnavailable, db.BadConnectionString) as exc:
            log.error("%s", exc)
            problem = str(exc)
    report = build_report(url, p, run_id, problem)
    report["notifications"] = alerts.dispatch(report, p, external=send_alerts)
    validate(report)
    write_report(report, run_id)
    return report


def run_stage(p: MonitoringParams, run_id: str) -> dict[str, Any]:
    """The monitoring stage of a run: the report for this run (stage counts recorded for run_all.py)."""
    report = monitor(p, run_id)
    runs.save_stage_result(
        run_id,
        "monitoring",
        {"status": report["status"], "health_score": report["health_score"], "alerts": len(report["alerts"])},
    )
    return report


def alert_table(report: dict[str, Any]):
    import pandas as pd

    return pd.DataFrame(report["alerts"], columns=["severity", "check", "message"])


def main(argv: list[str] | None = None, prog: str = "python -m ecom_pipeline.monitoring") -> int:
    from ecom_pipeline import logs
    from ecom_pipeline.exits import Exit

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write the monitoring report. Exit code: 0 healthy, "
        "4 degraded, 1 critical, 3 database unreachable, "
        "2 unusable parameters.",
    )
    parser.add_argument(
        "--params", help="params file, relative to the current folder (default: the project's params/default.yaml)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="monitoring.KEY=VALUE")
    parser.add_argument("--run-id", help="report on this run (default: the newest)")
    parser.add_argument(
        "--no-alerts",
        action="store_true",
        help="write the report and log the alerts, send nothing to the webhook or e-mail",
    )
    args = parser.parse_args(argv)
    logs.configure()
    try:
        p = load_params(params_file(args.params), args.overrides).monitoring
    except ParamsError as exc:
        log.error("%s", exc)
        return Exit.USAGE
    report = monitor(p, args.run_id, send_alerts=not args.no_alerts)
    log.info(
        "monitoring: %s (health %d), %d alerts; report in %s",
        report["status"],
        report["health_score"],
        len(report["alerts"]),
        config.outputs_dir() / "latest" / "monitoring_report.json",
    )
    return exit_code(report)


def exit_code(report: dict[str, Any]) -> int:
    """The command's exit code (docs/operations.md): 3 when the database could not be reached."""
    from ecom_pipeline.exits import Exit

    if any(a["check"] == "database_unreachable" for a in report["alerts"]):
        return Exit.UNAVAILABLE
    return {"healthy": Exit.OK, "degraded": Exit.DEGRADED, "critical": Exit.FAILED}[report["status"]]


if __name__ == "__main__":
    sys.exit(main())
