"""Self-contained HTML reports built with Plotly (plotly.js embedded once per file, so they open offline)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

if TYPE_CHECKING:
    from ecom_pipeline.stages.quality import CheckResult


def _page(title: str, parts: list[str]) -> str:
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}"
        ".fail{color:#b00020}.pass{color:#1b7f3b}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>"
    )


def figures_html(figures: list[tuple[str, go.Figure]]) -> list[str]:
    """Each figure as a div with a stable id; plotly.js is embedded with the first one only."""
    return [
        pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), div_id=div_id)
        for i, (div_id, fig) in enumerate(figures)
    ]


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0)


def quality_report_html(path: Path, results: list[CheckResult], scores: dict[str, Any], history: pd.DataFrame) -> None:
    dims = scores["dimensions"]
    by_dimension = go.Figure(go.Bar(x=list(dims), y=list(dims.values()), text=[f"{v:.2f}" for v in dims.values()]))
    by_dimension.update_layout(title="Score by dimension", yaxis_range=[0, 100], height=380)
    trend = go.Figure(go.Scatter(x=history["run_id"], y=history["overall"].astype(float), mode="lines+markers"))
    trend.update_layout(title="Overall score by run", yaxis_range=[0, 100], height=320)
    failed = pd.DataFrame(
        [
            {
                "check": r.check_name,
                "table": r.table_name,
                "severity": r.severity,
                "failing": r.rows_failing,
                "checked": r.rows_checked,
                "examples": ", ".join(map(str, r.failing_sample)),
            }
            for r in results
            if not r.passed
        ]
    )
    summary = (
        f"<p>Overall <b>{scores['overall']:.2f}</b>, grade <b>{scores['grade']}</b>; "
        f"{len(results) - len(failed)} of {len(results)} checks pass.</p>"
    )
    failing = ("<h2>Failing checks</h2>" + _table(failed)) if len(failed) else "<p class='pass'>No check fails.</p>"
    parts = [summary, *figures_html([("quality-by-dimension", by_dimension), ("quality-trend", trend)]), failing]
    path.write_text(_page("Data quality report", parts))


def monitoring_report_html(path: Path, report: dict[str, Any]) -> None:
    """Alerts on top; freshness lags, rows per batch and the quality trend below."""
    colour = {"healthy": "pass", "degraded": "fail", "critical": "fail"}[report["status"]]
    parts = [
        f"<p class='{colour}'>Status <b>{report['status']}</b>, health score <b>{report['health_score']}</b>"
        f" · {html.escape(report['generated_at'])}"
        + (f" · run {html.escape(report['run_id'])}" if report.get("run_id") else "")
        + "</p>"
    ]
    alerts = pd.DataFrame(report["alerts"], columns=["severity", "check", "message"])
    parts.append("<h2>Alerts</h2>" + (_table(alerts) if len(alerts) else "<p class='pass'>No alert.</p>"))
    figures = []
    health = report.get("pipeline_health") or {}
    history = health.get("history") or []
    if history:
        runs = pd.DataFrame(history).iloc[::-1]
        fig = go.Figure(
            go.Bar(
                x=runs["run_id"],
                y=runs["duration_s"],
                marker_color=["#c44e52" if s == "failed" else "#2f6fb0" for s in runs["status"]],
            )
        )
        fig.update_layout(title="Run durations (s), failed runs in red", height=320)
        figures.append(("monitoring-durations", fig))
    volumes = (report.get("volume_anomalies") or {}).get("history") or []
    if volumes:
        rows = pd.DataFrame(volumes).sort_values("batch_id")
        fig = go.Figure(
            [
                go.Scatter(x=g["batch_id"], y=g["row_count"], mode="lines+markers", name=table)
                for table, g in rows.groupby("table_name")
            ]
        )
        fig.update_layout(title="Rows per batch and table", height=360, yaxis_type="log")
        figures.append(("monitoring-volumes", fig))
    quality = (report.get("quality_trend") or {}).get("history") or []
    if quality:
        scores = pd.DataFrame(quality).iloc[::-1]
        fig = go.Figure(go.Scatter(x=scores["run_id"], y=scores["overall"], mode="lines+markers"))
        fig.update_layout(title="Quality score by run", height=320, yaxis_range=[0, 100])
        figures.append(("monitoring-quality", fig))
    layers = (report.get("data_freshness") or {}).get("layers") or {}
    if layers:
        fig = go.Figure(
            [
                go.Bar(x=list(layers), y=[v["event_lag_hours"] for v in layers.values()], name="event time lag (h)"),
                go.Bar(x=list(layers), y=[v["load_lag_hours"] for v in layers.values()], name="load time lag (h)"),
            ]
        )
        fig.update_layout(title="Freshness lag by layer (hours)", height=320)
        figures.append(("monitoring-freshness", fig))
    database = report["database"]
    parts.append(
        "<h2>Database</h2>"
        + _table(
            pd.DataFrame(
                [
                    {
                        k: database[k]
                        for k in (
                            "reachable",
                            "target",
                            "latency_ms",
                            "server_version",
                            "active_connections",
                            "size_bytes",
                            "error",
                        )
                    }
                ]
            )
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page("Pipeline monitoring", parts + figures_html(figures)))
