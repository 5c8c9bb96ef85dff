"""Alert sinks: the log always; a webhook and e-mail when configured.

Sinks are configured in the environment (or the git-ignored ``.env``), never
in params files, because webhook URLs and SMTP passwords are secrets and
params are saved with every run:

- ``ALERT_WEBHOOK_URL``: JSON POST, Slack-compatible (``text`` plus the alerts);
- ``ALERT_SMTP_HOST`` (and ``ALERT_SMTP_PORT``, default 25; ``ALERT_SMTP_USER`` /
  ``ALERT_SMTP_PASSWORD``; ``ALERT_SMTP_STARTTLS=true``), ``ALERT_EMAIL_FROM``,
  ``ALERT_EMAIL_TO`` (comma-separated).

Repeats: an alert is identified by its key (check, and subject such as the
table). It is sent when it first appears, again when its severity rises, and
again every ``monitoring.resend_after_hours`` while it persists; an alert that
has gone is forgotten, so its return is news again. The state lives in
``outputs/monitoring/alert_state.json`` (not in the database, which may be
the thing that is down). A failing sink is logged and recorded in the
report's ``notifications``; it never breaks the run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import urllib.request
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ecom_pipeline import config, db, runs
from ecom_pipeline.params import MonitoringParams

log = logging.getLogger("ecom_pipeline.alerts")

SEVERITY_RANK = {"warning": 1, "critical": 2}
SETTINGS = (
    "ALERT_WEBHOOK_URL",
    "ALERT_SMTP_HOST",
    "ALERT_SMTP_PORT",
    "ALERT_SMTP_USER",
    "ALERT_SMTP_PASSWORD",
    "ALERT_SMTP_STARTTLS",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TO",
)


def settings() -> dict[str, str]:
    """Sink settings from the environment, then ``.env``."""
    return {name: value for name in SETTINGS if (value := config.env_setting(name))}


def state_path() -> Path:
    return config.outputs_dir() / "monitoring" / "alert_state.json"


def _load_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}  # a damaged state file only means some alerts are sent again


def due(
    alerts: list[dict[str, Any]], state: dict[str, Any], p: MonitoringParams, now: dt.datetime
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The alerts to send now (see the module's repeat rule), and the state once they are sent."""
    fresh: dict[str, Any] = {}
    to_send = []
    for alert in alerts:
        seen = state.get(alert["key"])
        send = (
            seen is None
            or SEVERITY_RANK[alert["severity"]] > SEVERITY_RANK.get(seen["severity"], 0)
            or now - dt.datetime.fromisoformat(seen["last_sent"]) >= dt.timedelta(hours=p.resend_after_hours)
        )
        if send:
            to_send.append(alert)
        fresh[alert["key"]] = {
            "severity": alert["severity"],
            "first_seen": seen["first_seen"] if seen else now.isoformat(),
            "last_sent": now.isoformat() if send else seen["last_sent"],
        }
    return to_send, fresh


def _summary(report: dict[str, Any], alerts: list[dict[str, Any]]) -> str:
    head = f"ecom-pipeline is {report['status'].upper()} (health {report['health_score']})" + (
        f", run {report['run_id']}" if report.get("run_id") else ""
    )
    return "\n".join([head, *(f"[{a['severity']}] {a['check']}: {a['message']}" for a in alerts)])


def send_webhook(url: str, report: dict[str, Any], alerts: list[dict[str, Any]], timeout: float) -> None:
    body = {
        "text": _summary(report, alerts),
        "status": report["status"],
        "health_score": report["health_score"],
        "run_id": report.get("run_id"),
        "generated_at": report["generated_at"],
        "alerts": alerts,
    }
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status >= 300:
            raise RuntimeError(f"webhook answered HTTP {response.status}")


def send_email(cfg: dict[str, str], report: dict[str, Any], alerts: list[dict[str, Any]], timeout: float) -> None:
    message = EmailMessage()
    message["Subject"] = (
        f"[ecom-pipeline] {report['status'].upper()}: {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    )
    message["From"] = cfg.get("ALERT_EMAIL_FROM", "ecom-pipeline@localhost")
    message["To"] = cfg["ALERT_EMAIL_TO"]
    message.set_content(_summary(report, alerts) + "\n\nThe full report: outputs/latest/monitoring_report.json\n")
    with smtplib.SMTP(cfg["ALERT_SMTP_HOST"], int(cfg.get("ALERT_SMTP_PORT", 25)), timeout=timeout) as smtp:
        if cfg.get("ALERT_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"):
            smtp.starttls()
        if cfg.get("ALERT_SMTP_USER"):
            smtp.login(cfg["ALERT_SMTP_USER"], cfg.get("ALERT_SMTP_PASSWORD", ""))
        smtp.send_message(message)


def dispatch(report: dict[str, Any], p: MonitoringParams, external: bool = True) -> list[dict[str, Any]]:
    """Log every alert; send the due ones to the configured sinks (unless not ``external``).

    Returns what happened, per sink."""
    for alert in report["alerts"]:
        log.log(
            logging.ERROR if alert["severity"] == "critical" else logging.WARNING,
            "%s: %s: %s",
            alert["severity"].upper(),
            alert["check"],
            alert["message"],
        )
    if not external:
        return []
    cfg = settings()
    sinks = []
    if cfg.get("ALERT_WEBHOOK_URL"):
        sinks.append(("webhook", lambda a: send_webhook(cfg["ALERT_WEBHOOK_URL"], report, a, p.sink_timeout_s)))
    if cfg.get("ALERT_SMTP_HOST") and cfg.get("ALERT_EMAIL_TO"):
        sinks.append(("email", lambda a: send_email(cfg, report, a, p.sink_timeout_s)))
    if not sinks or not report["alerts"]:
        return []
    path = state_path()
    state = _load_state(path)
    to_send, sent_state = due(report["alerts"], state, p, dt.datetime.fromisoformat(report["generated_at"]))
    outcomes = []
    for name, send in sinks:
        outcome: dict[str, Any] = {"sink": name, "alerts": [a["key"] for a in to_send], "status": "sent", "error": None}
        if not to_send:
            outcome["status"] = "not_due"
        else:
            try:
                send(to_send)
            except Exception as exc:  # any failure of a sink is reported, never raised
                outcome.update(status="failed", error=db.redact(f"{type(exc).__name__}: {exc}"))
                log.error("alert sink %s failed: %s", name, outcome["error"])
        outcomes.append(outcome)
    if to_send and all(o["status"] == "failed" for o in outcomes):
        # Nothing reached anyone: keep these alerts due, so the next report tries again.
        for alert in to_send:
            if alert["key"] in state:
                sent_state[alert["key"]] = state[alert["key"]]
            else:
                del sent_state[alert["key"]]
    try:
        runs.write_json(path, sent_state)
    except OSError as exc:
        log.error("alert state could not be saved in %s: %s", path, exc)
    return outcomes
