"""What every HTML report shares: one Plotly template, one page layout headed with the run's facts, and
plotly.js written once per folder (the reports of a run load it from beside them, so they open offline).

A chart's title is the card's heading, not the figure's: Plotly's toolbar, top right, then never covers it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ecom_pipeline.runs import PLOTLY_JS

if TYPE_CHECKING:
    from ecom_pipeline.stages.quality import CheckResult

PALETTE = ["#2f6fb0", "#e07b39", "#3f9b62", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974"]
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}
HEIGHT = 360

_OWN = go.layout.Template(
    layout=dict(
        colorway=PALETTE,
        font=dict(family="system-ui, -apple-system, Segoe UI, sans-serif", size=12, color="#1f2933"),
        margin=dict(l=60, r=20, t=30, b=40),
        legend=dict(orientation="h", y=-0.18, x=0),
        hoverlabel=dict(namelength=-1),
        separators=".,",
    )
)
TEMPLATE = "ecom"  # plotly_white with the above, merged once
pio.templates[TEMPLATE] = pio.templates.merge_templates(pio.templates["plotly_white"], _OWN)


@contextlib.contextmanager
def look() -> Iterator[None]:
    """Figures made inside take the reports' template, as Plotly's default. Given to each figure instead, the
    template is validated and copied every time: a second of the dashboard's 17 figures."""
    before = pio.templates.default
    pio.templates.default = TEMPLATE
    try:
        yield
    finally:
        pio.templates.default = before


STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.4rem}
header dl{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;margin:.4rem 0 0;font-size:.9rem}
header dt{opacity:.7}header dd{margin:0 0 0 .35rem;font-weight:600}header .fact{display:flex}
.status-healthy,.status-passed,.status-complete{color:#9be7b0}.status-degraded,.status-warn{color:#ffd479}
.status-critical,.status-failed{color:#ffa3a3}
nav{display:flex;gap:.25rem;padding:0 2rem;background:#fff;border-bottom:1px solid #d9e2ec}
nav button{border:0;background:none;padding:.8rem 1rem;font-size:1rem;cursor:pointer;color:#486581}
nav button.active{color:#1f3a5f;border-bottom:3px solid #2f6fb0;font-weight:600}
main{padding:1rem 2rem;max-width:1800px}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.note{color:#52606d;font-size:.9rem}.fail{color:#b00020}.pass{color:#1b7f3b}.warn{color:#9a6700}
.insights{background:#fff;border-left:4px solid #2f6fb0;padding:.5rem 1.5rem;margin:1rem 0}
.insights li{margin:.3rem 0}.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:1rem}
.kpi{background:#fff;padding:1rem;border-radius:6px;box-shadow:0 1px 2px #0002}
.kpi .label{font-size:.8rem;color:#627d98;text-transform:uppercase}.kpi .value{font-size:1.6rem;font-weight:600}
.kpi .change{font-size:.85rem;color:#52606d}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1rem;margin-top:1rem}
.chart{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;padding:.5rem .75rem;min-width:0}
.chart h3{font-size:1rem;margin:.25rem 0 0;font-weight:600}.chart p.note{margin:.1rem 0 0}
table{border-collapse:collapse;background:#fff;font-size:.9rem;margin:.5rem 0}
td,th{border:1px solid #d9e2ec;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef2f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
"""


@dataclass(frozen=True)
class Money:
    """Amounts in one currency (an ISO code): tiles, axes, hovers and sentences say which."""

    currency: str = "USD"

    @property
    def symbol(self) -> str | None:
        return CURRENCY_SYMBOLS.get(self.currency)

    def __call__(self, value: float | None, decimals: int = 0) -> str:
        if value is None or value != value:
            return "–"
        number = f"{abs(value):,.{decimals}f}"
        sign = "-" if value < 0 else ""
        return f"{sign}{self.symbol}{number}" if self.symbol else f"{sign}{number} {self.currency}"

    def axis(self) -> dict:
        """A Plotly axis in this currency: 1.2M, not 1200000, with the symbol or code."""
        affix = {"tickprefix": self.symbol} if self.symbol else {"ticksuffix": f" {self.currency}"}
        return {"tickformat": "~s", **affix}

    def hover(self, field: str, decimals: int = 0) -> str:
        """A hover template fragment showing ``field`` (e.g. ``%{y}``'s ``y``) in this currency."""
        number = f"%{{{field}:,.{decimals}f}}"
        return f"{self.symbol}{number}" if self.symbol else f"{number} {self.currency}"


def size(n_bytes: float | None) -> str:
    """A size as people read it: 189.2 MB, 1.4 GB."""
    if n_bytes is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{int(n_bytes)} B"


def layout(fig: go.Figure, title: str, height: int = HEIGHT, note: str = "") -> go.Figure:
    """The shared look; ``title`` (and ``note``, a line under it) become the chart card's heading."""
    if pio.templates.default != TEMPLATE:  # made outside look()
        fig.update_layout(template=TEMPLATE)
    fig.update_layout(height=height, meta={"title": title, "note": note})
    fig.update_yaxes(rangemode="tozero", automargin=True)
    # A right-hand axis gets ticks of its own (round numbers), not the left one's grid (3.72k, 7.44k, ...).
    fig.for_each_yaxis(lambda axis: axis.update(tickmode="auto", nticks=6) if axis.overlaying else None)
    fig.update_xaxes(automargin=True)
    return fig


def chart(div_id: str, fig: go.Figure) -> str:
    """A chart card: its heading, then the figure (plotly.js is loaded once by :func:`page`)."""
    meta = fig.layout.meta or {}
    title, note = meta.get("title") or "", meta.get("note") or ""
    body = pio.to_html(
        fig, full_html=False, include_plotlyjs=False, div_id=div_id, config={"responsive": True, "displaylogo": False}
    )
    heading = f"<h3>{html.escape(title)}</h3>" + (f"<p class='note'>{html.escape(note)}</p>" if note else "")
    return f"<div class='chart' data-chart='{div_id}'>{heading}{body}</div>"


def charts(figures: Iterable[tuple[str, go.Figure]]) -> str:
    return "<div class='grid'>" + "".join(chart(div_id, fig) for div_id, fig in figures) + "</div>"


RUNS_AXIS = dict(type="category", tickangle=-30)  # one tick per run or batch, not a time axis
SCORE_AXIS = dict(range=[0, 105], rangemode=None)  # a score out of 100, not stretched to the points shown


def score_by_run(run_ids: Iterable[str], scores: Iterable[float], title: str, height: int, note: str) -> go.Figure:
    """The overall quality score of each run, oldest first (the quality and the monitoring report)."""
    fig = go.Figure(
        go.Scatter(
            x=list(run_ids), y=list(scores), mode="lines+markers", hovertemplate="run %{x}: %{y:.2f}<extra></extra>"
        )
    )
    layout(fig, title, height=height, note=note)
    fig.update_xaxes(**RUNS_AXIS)
    fig.update_yaxes(**SCORE_AXIS)
    return fig


def table(frame: pd.DataFrame, numeric: Iterable[str] = ()) -> str:
    """A table of already formatted values; ``numeric`` columns are right-aligned."""
    right = set(numeric)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td class='num'>{html.escape(str(v))}</td>" if c in right else f"<td>{html.escape(str(v))}</td>"
            for c, v in zip(frame.columns, row)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def plotly_script(folder: Path) -> str:
    """plotly.js, written into ``folder`` unless it is there already, and the tag that loads it from there."""
    source = get_plotlyjs().encode()
    target = folder / PLOTLY_JS
    if not target.exists() or target.stat().st_size != len(source):
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".tmp")
        partial.write_bytes(source)
        partial.replace(target)
    return f"<script src='{PLOTLY_JS}'></script>"


# A chart is drawn at its card's width when its script runs, before the cards after it are on the page;
# each is drawn again whenever its card changes width (the grid filled, a tab shown, the window resized).
RESIZE = """
const resized = new ResizeObserver(function (cards) {
  cards.forEach(function (card) {
    const plot = card.target.querySelector('.js-plotly-plot');
    if (plot && card.contentRect.width > 0) { Plotly.Plots.resize(plot); }
  });
});
document.querySelectorAll('.chart').forEach(function (card) { resized.observe(card); });
"""


def page(path: Path, title: str, facts: dict[str, str], body: str, *, head: str = "", script: str = "") -> Path:
    """Write a report: the shared header (title and facts: run, time, data, status), then ``body``.

    A fact named ``status`` is coloured by its value's first word (healthy, degraded, failed, ...).
    """

    def fact(name: str, value: str) -> str:
        kind = f" class='status-{html.escape(value.split()[0].lower())}'" if name == "status" and value else ""
        return f"<div class='fact'><dt>{html.escape(name)}</dt><dd{kind}>{html.escape(value)}</dd></div>"

    text = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>{plotly_script(path.parent)}{head}</head><body>"
        f"<header><h1>{html.escape(title)}</h1><dl>{''.join(fact(k, v) for k, v in facts.items())}</dl></header>"
        f"{body}<script>{RESIZE}{script}</script></body></html>"
    )
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


# -- the quality report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityContext:
    """What the quality report tells beside the checks: the run's facts, the data's range, the quarantine
    of this run's batches and how each check fared in the run before."""

    run_id: str
    data_range: str
    rows_staged: int
    rows_quarantined: int
    quarantine: pd.DataFrame  # source_table, reason, rows (a row under each of its reasons), examples
    previous_failing: dict[str, int]  # check name -> rows failing in the run before (absent: not run then)


SCORE_EXPLAINED = (
    "Each dimension scores the share of checked rows that pass (a table with 1% bad rows scores 99 on the "
    "dimensions those rows fail); the overall score is the mean of the dimensions checked, each weighing the "
    "same; grade A from 95, B from 90, C from 80, D from 70, else F. Rows quarantined by the clean stage never "
    "reach production, so the production and warehouse checks grade what was kept: the quarantine below is "
    "what was held back."
)


def _examples(sample: list) -> str:
    return ", ".join(dict.fromkeys(map(str, sample)))  # each key once, in the order found


@look()
def quality_report_html(
    path: Path, results: list[CheckResult], scores: dict[str, Any], history: pd.DataFrame, ctx: QualityContext
) -> Path:
    """Every check with its result (failures first, with what is new since the run before), the score
    explained, the quarantine of this run's batches by table and reason, and the score's history."""
    failed = [r for r in results if not r.passed]
    stopping = [r for r in failed if r.severity == "error"]
    status = (
        f"failed ({len(stopping)} stopping)" if stopping else f"warn ({len(failed)} failing)" if failed else "passed"
    )
    quarantined = ctx.rows_quarantined
    held = (
        f"{quarantined:,} of {ctx.rows_staged:,} rows staged by this run ({quarantined / ctx.rows_staged:.1%})"
        if (ctx.rows_staged)
        else f"{quarantined:,} rows"
    )
    summary = (
        f"<div class='kpis'>"
        f"<div class='kpi'><div class='label'>Score</div><div class='value'>{scores['overall']:.2f}</div>"
        f"<div class='change'>grade {html.escape(scores['grade'])}</div></div>"
        f"<div class='kpi'><div class='label'>Checks passing</div>"
        f"<div class='value'>{len(results) - len(failed)} of {len(results)}</div>"
        f"<div class='change'>{len(stopping)} failing that stop the run</div></div>"
        f"<div class='kpi'><div class='label'>Quarantined this run</div><div class='value'>{quarantined:,}</div>"
        f"<div class='change'>{html.escape(held)}</div></div></div>"
        f"<p class='note'>{html.escape(SCORE_EXPLAINED)}</p>"
    )

    def row(r: CheckResult) -> dict[str, Any]:
        before = ctx.previous_failing.get(r.check_name)
        new = "–" if before is None else f"{max(r.rows_failing - before, 0):,}"
        return {
            "result": "pass" if r.passed else ("fail" if r.severity == "error" else "warn"),
            "check": r.check_name,
            "table": r.table_name,
            "dimension": r.dimension.replace("_", " "),
            "failing": f"{r.rows_failing:,}",
            "checked": f"{r.rows_checked:,}",
            "new since last run": new,
            "examples": _examples(r.failing_sample) if not r.passed else "",
            "what it checks": r.description,
        }

    ordered = sorted(results, key=lambda r: (r.passed, r.severity != "error", r.layer, r.check_name))
    checks = pd.DataFrame([row(r) for r in ordered])
    numbers = ("failing", "checked", "new since last run")
    failing_part = (
        "<h2>Failing in this run</h2><p class='note'>Staging checks read every batch staged so far; "
        "<i>new since last run</i> is what this run added to them.</p>"
        + table(checks[checks["result"] != "pass"], numbers)
        if failed
        else "<h2>Failing in this run</h2><p class='pass'>No check fails.</p>"
    )
    passing_part = "<h2>Passing</h2>" + table(checks[checks["result"] == "pass"].drop(columns="examples"), numbers)
    if len(ctx.quarantine):
        shown = ctx.quarantine.assign(rows=ctx.quarantine["rows"].map("{:,}".format))
        quarantine_part = (
            "<h2>Quarantine of this run's batches</h2><p class='note'>By table and reason (a row can have several "
            "reasons); the rows are in <code>production.quarantine</code> with their raw values.</p>"
            + table(shown.rename(columns={"source_table": "table"}), ("rows",))
        )
    else:
        quarantine_part = "<h2>Quarantine of this run's batches</h2><p class='pass'>Nothing quarantined.</p>"
    dims = scores["dimensions"]
    by_dimension = go.Figure(
        go.Bar(
            x=[d.replace("_", " ") for d in dims],
            y=list(dims.values()),
            text=[f"{v:.2f}" for v in dims.values()],
            hovertemplate="%{x}: %{y:.2f}<extra></extra>",
        )
    )
    layout(by_dimension, "Score by dimension", height=340)
    by_dimension.update_yaxes(**SCORE_AXIS)
    trend = score_by_run(
        history["run_id"],
        history["overall"].astype(float),
        "Overall score by run",
        340,
        "One point per run, oldest first.",
    )
    facts = {
        "run": ctx.run_id,
        "generated": _now(),
        "data": ctx.data_range,
        "status": status,
        "grade": f"{scores['grade']} ({scores['overall']:.2f})",
    }
    body = (
        f"<main>{summary}{failing_part}{quarantine_part}"
        f"{charts([('quality-by-dimension', by_dimension), ('quality-trend', trend)])}{passing_part}</main>"
    )
    return page(path, "Data quality report", facts, body)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- the monitoring report ------------------------------------------------------------------------------


def _when(iso: str | None) -> str:
    return "–" if not iso else pd.Timestamp(iso).strftime("%Y-%m-%d %H:%M UTC")


@look()
def monitoring_report_html(path: Path, report: dict[str, Any]) -> Path:
    """Alerts first; then the runs, the freshness of each layer, rows per batch, the quality trend and the
    database, each in words and units (MB, hours, seconds), batches and runs as categories."""
    alerts = pd.DataFrame(report["alerts"], columns=["severity", "check", "message"])
    alerts_part = "<h2>Alerts</h2>" + (table(alerts) if len(alerts) else "<p class='pass'>No alert.</p>")
    figures = []
    health = report.get("pipeline_health") or {}
    history = health.get("history") or []
    if history:
        runs = pd.DataFrame(history).iloc[::-1]
        fig = go.Figure(
            go.Bar(
                x=runs["run_id"],
                y=runs["duration_s"],
                marker_color=[PALETTE[3] if s == "failed" else PALETTE[0] for s in runs["status"]],
                customdata=runs["status"],
                hovertemplate="run %{x}: %{y:,.1f} s, %{customdata}<extra></extra>",
            )
        )
        layout(fig, "Run durations", height=320, note="Seconds per run, oldest first; failed runs in red.")
        fig.update_xaxes(**RUNS_AXIS)
        fig.update_yaxes(title_text="seconds")
        figures.append(("monitoring-durations", fig))
    volumes = (report.get("volume_anomalies") or {}).get("history") or []
    if volumes:
        rows = pd.DataFrame(volumes).sort_values("batch_id")
        fig = go.Figure(
            [
                go.Scatter(
                    x=g["batch_id"],
                    y=g["row_count"],
                    mode="lines+markers",
                    name=table_name,
                    hovertemplate="batch %{x}: %{y:,} rows<extra>" + table_name + "</extra>",
                )
                for table_name, g in rows.groupby("table_name")
            ]
        )
        layout(fig, "Rows per batch and table", height=360, note="Log scale; one point per batch.")
        fig.update_xaxes(type="category", title_text="batch")
        fig.update_yaxes(type="log", title_text="rows", rangemode=None)
        figures.append(("monitoring-volumes", fig))
    quality = (report.get("quality_trend") or {}).get("history") or []
    if quality:
        scores = pd.DataFrame(quality).iloc[::-1]
        fig = score_by_run(scores["run_id"], scores["overall"], "Quality score by run", 320, "Oldest first.")
        figures.append(("monitoring-quality", fig))
    freshness = report.get("data_freshness") or {}
    layers = freshness.get("layers") or {}
    if layers:
        fig = go.Figure(
            [
                go.Bar(x=list(layers), y=[v["event_lag_hours"] for v in layers.values()], name="newest order's age"),
                go.Bar(x=list(layers), y=[v["load_lag_hours"] for v in layers.values()], name="time since last load"),
            ]
        )
        fig.update_traces(hovertemplate="%{x}: %{y:,.1f} h<extra>%{fullData.name}</extra>")
        layout(fig, "Freshness by layer", height=320, note="Hours.")
        fig.update_yaxes(title_text="hours")
        figures.append(("monitoring-freshness", fig))
    database = report["database"]
    facts_table = pd.DataFrame(
        [
            ("reachable", "yes" if database["reachable"] else "no"),
            ("database", database.get("target") or "–"),
            ("server", database.get("server_version") or "–"),
            ("latency", "–" if database.get("latency_ms") is None else f"{database['latency_ms']:,.1f} ms"),
            ("connections", _count(database.get("connections"))),
            ("active connections", _count(database.get("active_connections"))),
            ("size", size(database.get("size_bytes"))),
        ]
        + ([("error", database["error"])] if database.get("error") else []),
        columns=["", "value"],
    )
    last = health.get("last_run") or {}
    runs_part = ""
    if last:
        runs_part = "<h2>Last run</h2>" + table(
            pd.DataFrame(
                [
                    {
                        "run": last.get("run_id") or "–",
                        "status": last.get("status") or "–",
                        "started": _when(last.get("started_at")),
                        "duration": "–" if last.get("duration_s") is None else f"{last['duration_s']:,.1f} s",
                        "last success": _when(health.get("last_success_at")),
                        "failed stages": ", ".join(map(str, health.get("failed_stages") or [])) or "none",
                    }
                ]
            ),
        )
    facts = {
        "run": report.get("run_id") or "none (run on its own)",
        "generated": _when(report["generated_at"]),
        "data": f"newest batch {freshness.get('newest_batch') or '–'}",
        "status": report["status"],
        "health": f"{report['health_score']} of 100",
    }
    body = (
        f"<main>{alerts_part}{runs_part}{charts(figures) if figures else ''}"
        f"<h2>Database</h2>{table(facts_table)}</main>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return page(path, "Pipeline monitoring", facts, body)


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"
