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
    style = ("body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}"
             ".fail{color:#b00020}.pass{color:#1b7f3b}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>")


def figures_html(figures: list[tuple[str, go.Figure]]) -> list[str]:
    """Each figure as a div with a stable id; plotly.js is embedded with the first one only."""
    return [pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), div_id=div_id)
            for i, (div_id, fig) in enumerate(figures)]


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0)


def quality_report_html(path: Path, results: list["CheckResult"], scores: dict[str, Any],
                        history: pd.DataFrame) -> None:
    dims = scores["dimensions"]
    by_dimension = go.Figure(go.Bar(x=list(dims), y=list(dims.values()), text=[f"{v:.2f}" for v in dims.values()]))
    by_dimension.update_layout(title="Score by dimension", yaxis_range=[0, 100], height=380)
    trend = go.Figure(go.Scatter(x=history["run_id"], y=history["overall"].astype(float), mode="lines+markers"))
    trend.update_layout(title="Overall score by run", yaxis_range=[0, 100], height=320)
    failed = pd.DataFrame([{"check": r.check_name, "table": r.table_name, "severity": r.severity,
                            "failing": r.rows_failing, "checked": r.rows_checked,
                            "examples": ", ".join(map(str, r.failing_sample))} for r in results if not r.passed])
    summary = (f"<p>Overall <b>{scores['overall']:.2f}</b>, grade <b>{scores['grade']}</b>; "
               f"{len(results) - len(failed)} of {len(results)} checks pass.</p>")
    failing = ("<h2>Failing checks</h2>" + _table(failed)) if len(failed) else "<p class='pass'>No check fails.</p>"
    parts = [summary, *figures_html([("quality-by-dimension", by_dimension), ("quality-trend", trend)]), failing]
    path.write_text(_page("Data quality report", parts))
