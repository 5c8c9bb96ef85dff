"""Monitoring: each check healthy and alerting, the report's schema, the standalone command, the sinks.

The base state is real: a generated batch taken through ingest, clean and the warehouse, then ten
earlier daily batches and eleven runs recorded around it. Each test works on a copy of it.
"""

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import jsonschema
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ecom_pipeline import alerts, db, migrations, monitoring
from ecom_pipeline.params import CleanParams, GenerateParams, IngestParams, MonitoringParams, WarehouseParams
from ecom_pipeline.stages import clean, generate, ingest, warehouse
from helpers import REPO

SMALL = GenerateParams(orders=600, customers=150, products=40, days=30, seed=5)
STAGES = ["generate", "ingest", "clean", "warehouse", "quality", "analytics", "monitoring"]
EARLIER = 10  # earlier batches and runs


def _seed_history(url: str, newest: str) -> None:
    """Ten earlier daily batches like the newest one, and eleven successful nightly runs, the last an hour ago."""
    day = dt.date.fromisoformat(newest)
    with psycopg.connect(url) as conn:
        for k in range(1, EARLIER + 1):
            batch, ago = str(day - dt.timedelta(days=k)), f"{k} days"
            conn.execute(
                "insert into staging.batches (batch_id, source_path, status, run_id, loaded_at) "
                "values (%s, 'history', 'loaded', %s, now() - %s::interval)",
                (batch, f"r{k:02}", ago),
            )
            # Volumes within a few percent of the newest batch's.
            conn.execute(
                """
                insert into staging.ingestion_log (batch_id, table_name, source_file, sha256, size_bytes, lines_read,
                    rows_staged, lines_rejected, load_path, started_at, duration_s, run_id)
                select %s, table_name, source_file, 'x', size_bytes, rows_staged * (1 + %s), rows_staged * (1 + %s), 0,
                       load_path, now() - %s::interval, duration_s, %s
                from staging.ingestion_log where batch_id = %s""",
                (batch, (k % 3 - 1) * 0.02, (k % 3 - 1) * 0.02, ago, f"r{k:02}", newest),
            )
            conn.execute(
                """
                insert into warehouse.load_log (batch_id, customer_versions, product_versions, facts_inserted,
                    facts_updated, run_id, loaded_at)
                select %s, customer_versions, product_versions, round(facts_inserted * (1 + %s)), 0, %s,
                       now() - %s::interval
                from warehouse.load_log where batch_id = %s""",
                (batch, (k % 3 - 1) * 0.02, f"r{k:02}", ago, newest),
            )
        for k in range(EARLIER, -1, -1):  # r10 ten days ago ... r00 an hour ago, the current run
            run_id = f"r{k:02}"
            conn.execute(
                """
                insert into monitoring.pipeline_runs (run_id, status, started_at, finished_at, duration_s, stages,
                    params, params_file, code_version)
                values (%(r)s, 'success', now() - %(ago)s::interval - interval '1 hour',
                        now() - %(ago)s::interval - interval '1 hour' + %(d)s * interval '1 second', %(d)s,
                        %(stages)s, '{}', 'params/default.yaml', 'test')""",
                {"r": run_id, "ago": f"{k} days", "d": 60 + k % 3, "stages": STAGES},
            )
            conn.execute(
                "insert into monitoring.stage_runs (run_id, stage, attempt, status, started_at, finished_at, "
                "duration_s, notebook) select %s, s, 1, 'success', now(), now(), 8, 'x' "
                "from unnest(%s::text[]) as s",
                (run_id, STAGES),
            )
            conn.execute(
                "insert into monitoring.quality_scores (run_id, overall, grade, dimensions, scored_at) "
                "values (%s, 99.9, 'A', '{}', now() - %s::interval - interval '50 minutes')",
                (run_id, f"{k} days"),
            )


@pytest.fixture(scope="module")
def base(server_url, tmp_path_factory):
    batch = generate.generate_next_batch(SMALL, tmp_path_factory.mktemp("raw"))
    with db.scratch_database(server_url, "monbase") as url:
        migrations.ensure_migrated(url)
        ingest.ingest(batch.path, "r00", IngestParams(), url)
        clean.clean(url, "r00", CleanParams())
        warehouse.load(url, "r00", WarehouseParams())
        _seed_history(url, batch.batch_id)
        yield url, batch.batch_id


@pytest.fixture
def state(base, server_url, outputs, monkeypatch):
    """A copy of the base state for one test; DATABASE_URL points at it; no alert sink configured."""
    for name in alerts.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    with db.scratch_database(server_url, "mon", template=conninfo_to_dict(base[0])["dbname"]) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


def _sql(url: str, statement: str, *args) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement, args)


def _report(url: str, run_id: str | None = None, **params) -> dict:
    return monitoring.monitor(MonitoringParams(**params), run_id, url)


def _alerts(report: dict) -> dict[str, str]:
    return {a["key"]: a["severity"] for a in report["alerts"]}


def _validate(report: dict) -> None:
    jsonschema.validate(report, json.loads(monitoring.SCHEMA_FILE.read_text()))


def test_healthy_state_has_no_alert(state, outputs):
    report = _report(state)
    assert report["alerts"] == [] and report["status"] == "healthy" and report["health_score"] == 100
    health = report["pipeline_health"]
    assert health["last_run"]["run_id"] == "r00" and health["hours_since_success"] < 1
    assert health["duration"]["runs_compared"] == EARLIER and 0.9 < health["duration"]["ratio"] < 1.1
    fresh = report["data_freshness"]["layers"]
    assert all(0 <= fresh[layer]["event_lag_hours"] < 24 for layer in ("staging", "production", "warehouse"))
    assert all(fresh[layer]["load_lag_hours"] < 1 for layer in fresh)
    volumes = {t["table"]: t for t in report["volume_anomalies"]["tables"]}
    assert set(volumes) == {
        "staging.customers",
        "staging.products",
        "staging.orders",
        "staging.order_items",
        "warehouse.fact_sales",
    }
    assert all(t["status"] == "ok" and t["history_batches"] == EARLIER for t in volumes.values())
    assert (
        volumes["staging.orders"]["expected_min"]
        < volumes["staging.orders"]["rows"]
        < volumes["staging.orders"]["expected_max"]
    )
    assert report["quality_trend"]["drop"] == 0
    assert report["database"]["reachable"] and report["database"]["latency_ms"] > 0
    assert report["database"]["server_version"] and report["database"]["size_bytes"] > 0
    _validate(report)
    written = json.loads((outputs / "latest" / "monitoring_report.json").read_text())
    assert written["generated_at"] == report["generated_at"]
    assert "No alert." in (outputs / "latest" / "monitoring_report.html").read_text()


def test_locks_held_by_a_running_stage_are_reported_not_waited_for(state):
    # What clean and warehouse hold while they rebuild indexes and foreign keys of a large batch.
    with psycopg.connect(state) as holder:
        holder.execute(
            "lock table production.orders, warehouse.fact_sales, staging.ingestion_log in access exclusive mode"
        )
        report = _report(state)  # returns while the locks are still held: it gave up on them
    waiting = {a["key"]: a["message"] for a in report["alerts"] if a["check"] == "check_waiting"}
    assert "check_waiting:data_freshness" in waiting and "lock timeout" in waiting["check_waiting:data_freshness"]
    assert report["data_freshness"] is None and report["status"] == "degraded"
    _validate(report)


def test_failed_run_is_critical_and_the_command_exits_1(state, outputs):
    _sql(
        state,
        "insert into monitoring.pipeline_runs (run_id, status, started_at, finished_at, duration_s, stages, "
        "params, params_file, code_version, error) values ('r-failed', 'failed', now(), now(), 5, '{}', '{}', "
        "'x', 'test', 'stage clean failed: ZeroDivisionError')",
    )
    _sql(
        state,
        "insert into monitoring.stage_runs (run_id, stage, attempt, status, started_at, notebook) "
        "values ('r-failed', 'clean', 1, 'failed', now(), 'x'), ('r-failed', 'ingest', 2, 'success', now(), 'x')",
    )
    done = subprocess.run(
        [sys.executable, "-m", "ecom_pipeline.monitoring", "--no-alerts"],
        cwd=REPO,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads((outputs / "latest" / "monitoring_report.json").read_text())
    _validate(report)
    assert _alerts(report) == {"pipeline_failed": "critical"}
    assert report["status"] == "critical" and report["health_score"] == 60
    assert report["pipeline_health"]["failed_stages"] == ["clean"]
    assert report["pipeline_health"]["retried_stages"] == ["ingest"]
    assert "ZeroDivisionError" in report["alerts"][0]["message"]
    assert "CRITICAL: pipeline_failed" in done.stderr


def test_run_marked_running_without_the_lock_is_stopped(state):
    _sql(
        state,
        "insert into monitoring.pipeline_runs (run_id, status, started_at, stages, params, params_file, "
        "code_version) values ('r-killed', 'running', now() - interval '10 minutes', '{}', '{}', 'x', 'test')",
    )
    assert _alerts(_report(state)) == {"pipeline_stopped": "critical"}
    with db.pipeline_lock(state):  # a run that really is running is not stopped
        assert "pipeline_stopped" not in _alerts(_report(state))


def test_delayed_and_slow_runs_warn(state):
    _sql(
        state,
        "update monitoring.pipeline_runs set finished_at = finished_at - interval '30 hours', "
        "started_at = started_at - interval '30 hours'",
    )
    assert _alerts(_report(state)) == {"pipeline_delayed": "warning"}
    _sql(state, "update monitoring.pipeline_runs set duration_s = 200 where run_id = 'r00'")
    report = _report(state)
    assert _alerts(report) == {"pipeline_delayed": "warning", "slow_run": "warning"}
    assert report["status"] == "degraded" and report["health_score"] == 80
    assert report["pipeline_health"]["duration"]["ratio"] == pytest.approx(200 / 61, abs=0.01)


def test_stale_data_by_event_time_and_by_load_time(state, base):
    # A newer batch arrived, but no order in any layer reaches its day: the data is three days behind.
    newer = str(dt.date.fromisoformat(base[1]) + dt.timedelta(days=3))
    _sql(
        state,
        "insert into staging.batches (batch_id, source_path, status, run_id) values (%s, 'x', 'loaded', 'r')",
        newer,
    )
    report = _report(state)
    assert _alerts(report) == {"stale_data:production": "warning", "stale_data:warehouse": "warning"}
    lag = report["data_freshness"]["layers"]["production"]["event_lag_hours"]
    assert 72 <= lag < 96
    assert report["data_freshness"]["layers"]["staging"]["event_lag_hours"] is None  # the batch staged no order
    # Load time: nothing loaded for 40 hours in any layer.
    _sql(state, "delete from staging.batches where batch_id = %s", newer)
    _sql(state, "update staging.batches set loaded_at = loaded_at - interval '40 hours'")
    _sql(state, "update production.clean_log set cleaned_at = cleaned_at - interval '40 hours'")
    _sql(state, "update warehouse.load_log set loaded_at = loaded_at - interval '40 hours'")
    assert _alerts(_report(state)) == {
        f"load_delayed:{layer}": "warning" for layer in ("staging", "production", "warehouse")
    }
    assert all(v["event_lag_hours"] < 24 for v in _report(state)["data_freshness"]["layers"].values())


@pytest.mark.parametrize("factor, status", [(8, "spike"), (0.1, "drop")])
def test_volume_spike_and_drop_against_the_history(state, base, factor, status):
    _sql(
        state,
        "update staging.ingestion_log set rows_staged = round(rows_staged * %s), "
        "lines_read = round(rows_staged * %s) + lines_rejected where batch_id = %s and table_name = 'orders'",
        factor,
        factor,
        base[1],
    )
    report = _report(state)
    assert _alerts(report) == {"volume_" + status + ":staging.orders": "warning"}
    orders = next(t for t in report["volume_anomalies"]["tables"] if t["table"] == "staging.orders")
    assert orders["status"] == status and not orders["expected_min"] <= orders["rows"] <= orders["expected_max"]
    _validate(report)


def test_volume_with_too_little_history_says_so(state, base):
    _sql(state, "delete from staging.ingestion_log where batch_id::date < %s::date - 2", base[1])
    _sql(
        state,
        "update staging.ingestion_log set rows_staged = rows_staged * 8, lines_read = lines_read * 8 "
        "where batch_id = %s",
        base[1],
    )
    report = _report(state)
    orders = next(t for t in report["volume_anomalies"]["tables"] if t["table"] == "staging.orders")
    assert orders["status"] == "insufficient_history" and orders["history_batches"] == 2
    assert "no judgement" in orders["note"] and orders["expected_max"] is None
    assert not any(key.startswith("volume_") for key in _alerts(report))


def test_zero_orders_is_critical(state, base):
    _sql(
        state,
        "update staging.ingestion_log set rows_staged = 0, lines_read = lines_rejected "
        "where batch_id = %s and table_name in ('orders', 'order_items')",
        base[1],
    )
    assert _alerts(_report(state)) == {
        "zero_records:staging.orders": "critical",
        "zero_records:staging.order_items": "critical",
    }


def test_quality_drop_is_degradation(state):
    _sql(state, "update monitoring.quality_scores set overall = 80 where run_id = 'r00'")
    _sql(
        state,
        "insert into monitoring.check_results (run_id, check_name, kind, layer, table_name, dimension, "
        "severity, description, rows_checked, rows_failing, duration_s, passed) values ('r00', "
        "'production_order_total_matches_lines', 'sql', 'production', 'production.orders', 'consistency', "
        "'warn', 'x', 100, 20, 0.1, false)",
    )
    report = _report(state)
    assert _alerts(report) == {"quality_degradation": "warning"}
    trend = report["quality_trend"]
    assert (trend["score"], trend["baseline"], trend["drop"]) == (80.0, 99.9, 19.9)
    assert trend["new_failures"] == ["production_order_total_matches_lines"]


def test_unreachable_database_is_reported_not_crashed(outputs, tmp_path):
    secret = "s3cret-pw"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres:{secret}@127.0.0.1:1/shop",
        "PIPELINE_OUTPUTS": str(outputs),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ecom_pipeline.monitoring"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert "Traceback" not in done.stderr and secret not in done.stderr
    report = json.loads((outputs / "latest" / "monitoring_report.json").read_text())
    _validate(report)
    assert _alerts(report) == {"database_unreachable": "critical"}
    assert report["database"]["reachable"] is False and "127.0.0.1" in report["database"]["target"]
    assert report["pipeline_health"] is None and report["volume_anomalies"] is None
    assert secret not in (outputs / "latest" / "monitoring_report.json").read_text()
    assert secret not in (outputs / "latest" / "monitoring_report.html").read_text()


# -- sinks ---------------------------------------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/alerts", _Webhook.received
    server.shutdown()


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    class Inbox:
        messages: ClassVar[list] = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd checks its own port after starting, so it needs a real one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox.messages
    controller.stop()


def test_alerts_reach_the_webhook_and_the_mailbox_once_while_they_persist(state, webhook, smtp, monkeypatch):
    url, posts = webhook
    port, mails = smtp
    monkeypatch.setenv("ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ALERT_SMTP_PORT", str(port))
    monkeypatch.setenv("ALERT_EMAIL_TO", "oncall@example.com,data@example.com")
    _sql(state, "update monitoring.quality_scores set overall = 80 where run_id = 'r00'")

    report = _report(state)
    assert [(n["sink"], n["status"]) for n in report["notifications"]] == [("webhook", "sent"), ("email", "sent")]
    content_type, payload = posts[0]
    assert content_type == "application/json"
    assert payload["text"].startswith("ecom-pipeline is DEGRADED (health 90)")  # Slack shows `text`
    assert "quality score 80.00 is 19.90 points below" in payload["text"]
    assert [a["check"] for a in payload["alerts"]] == ["quality_degradation"]
    recipients, mail = mails[0]
    assert recipients == ["oncall@example.com", "data@example.com"]
    assert mail["Subject"] == "[ecom-pipeline] DEGRADED: 1 alert"
    assert "quality_degradation" in mail.get_payload()

    # The same alert on the next report is not sent again...
    again = _report(state)
    assert [n["status"] for n in again["notifications"]] == ["not_due", "not_due"]
    assert len(posts) == 1 and len(mails) == 1
    # ...unless it got worse (a new, critical alert joins: only what is due is sent)...
    _sql(
        state,
        "update staging.ingestion_log set rows_staged = 0, lines_read = lines_rejected "
        "where table_name = 'orders' and batch_id = (select max(batch_id) from staging.batches)",
    )
    worse = _report(state)
    assert worse["notifications"][0]["alerts"] == ["zero_records:staging.orders"]
    assert len(posts) == 2 and posts[1][1]["status"] == "critical"
    # ...or the resend interval has passed.
    _report(state, resend_after_hours=0)
    assert len(posts) == 3 and {a["check"] for a in posts[2][1]["alerts"]} == {"quality_degradation", "zero_records"}
    _validate(worse)


def test_a_failing_sink_is_logged_and_retried_never_raised(state, monkeypatch, caplog, webhook):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "http://127.0.0.1:1/nothing-listens-here")
    _sql(state, "update monitoring.quality_scores set overall = 80 where run_id = 'r00'")
    report = _report(state)
    assert report["notifications"][0]["status"] == "failed"
    assert "URLError" in report["notifications"][0]["error"]
    assert "alert sink webhook failed" in caplog.text
    _validate(report)
    # Nothing reached anyone, so the alert is still due for the next report (to a sink that works).
    monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook[0])
    assert _report(state)["notifications"][0]["status"] == "sent"
    assert len(webhook[1]) == 1


def test_repeat_rule_on_its_own():
    p = MonitoringParams(resend_after_hours=24)
    now = dt.datetime(2026, 1, 2, 3, tzinfo=dt.timezone.utc)
    warn = {"key": "slow_run", "severity": "warning"}
    due, state = alerts.due([warn], {}, p, now)
    assert due == [warn]
    due, state = alerts.due([warn], state, p, now + dt.timedelta(hours=23))
    assert due == []
    due, _ = alerts.due([warn], state, p, now + dt.timedelta(hours=24))
    assert due == [warn]
    due, _ = alerts.due([{**warn, "severity": "critical"}], state, p, now + dt.timedelta(hours=1))
    assert len(due) == 1
    assert alerts.due([], state, p, now)[1] == {}  # a resolved alert is forgotten


@pytest.mark.slow
def test_failed_pipeline_run_writes_its_report(fresh_db, outputs):
    from helpers import run_pipeline

    done = run_pipeline("--params", "params/small.yaml", "--only", "warehouse", "--run-id", "r-nothing")
    assert done.returncode == 0
    _sql(fresh_db, "drop table warehouse.load_log cascade")
    done = run_pipeline("--params", "params/small.yaml", "--only", "warehouse", "--run-id", "r-broken")
    assert done.returncode == 1
    report = json.loads((outputs / "runs" / "r-broken" / "reports" / "monitoring_report.json").read_text())
    _validate(report)
    assert report["run_id"] == "r-broken" and "pipeline_failed" in _alerts(report)
    assert report["pipeline_health"]["failed_stages"] == ["warehouse"]


def test_monitoring_command_refuses_unusable_parameters(outputs):
    done = subprocess.run(
        [sys.executable, "-m", "ecom_pipeline.monitoring", "--set", "monitoring.quality_drop=-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--set monitoring.quality_drop" in done.stderr
    assert not (outputs / "latest" / "monitoring_report.json").exists()  # nothing judged on bad thresholds
