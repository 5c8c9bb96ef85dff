"""The run's dashboard: one self-contained HTML file that opens offline.

Four pages (executive, products, customers, trends) as tabs, each with the insight sentences about
it on top, and KPI tiles on the executive page (totals, and the month so far against the same days of
the month before). Months the data covers only partly are hatched and named under the chart. Amounts
are in ``analytics.currency``. Every chart is a Plotly figure drawn from the analytics frames (already
aggregated, so the file stays small at any volume); plotly.js is loaded from beside the page.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ecom_pipeline import reports

if TYPE_CHECKING:
    from ecom_pipeline.stages.analytics import Analytics

PAGES = (("executive", "Executive"), ("products", "Products"), ("customers", "Customers"), ("trends", "Trends"))
# Which page shows each insight (by its key); one not listed shows on the executive page.
INSIGHT_PAGES = {
    "top_categories": "products",
    "discount_impact": "products",
    "customer_concentration": "customers",
    "rfm_segment": "customers",
    "weekend_vs_weekday": "trends",
    "seasonal_peak": "trends",
    "forecast": "trends",
}
HEIGHT = reports.HEIGHT
MONTHS = dict(dtick="M1", tickformat="%b<br>%Y")  # an axis of months, one tick each
PALETTE = reports.PALETTE


@dataclass(frozen=True)
class Context:
    """What every chart needs besides its frames: the currency, and which months the data covers only partly."""

    money: reports.Money
    first_date: dt.date | None
    last_date: dt.date | None

    def partial(self, months: pd.Series) -> pd.Series:
        """True for each month (a first-of-month date) the data does not cover whole."""
        if self.first_date is None or self.last_date is None:
            return pd.Series(False, index=months.index)
        first = pd.Timestamp(self.first_date)
        last = pd.Timestamp(self.last_date)
        starts = pd.to_datetime(months)
        ends = starts + pd.offsets.MonthEnd(0)
        return (starts < first) | (ends > last)

    def partial_note(self, months: pd.Series) -> str:
        flagged = [pd.Timestamp(m) for m, p in zip(months, self.partial(months)) if p]
        if not flagged:
            return ""

        def covered(month: pd.Timestamp) -> str:
            start = max(month, pd.Timestamp(self.first_date))
            end = min(month + pd.offsets.MonthEnd(0), pd.Timestamp(self.last_date))
            return f"{month:%b %Y} ({(end - start).days + 1} of {month.days_in_month} days)"

        return "Hatched: partial month, " + ", ".join(covered(m) for m in flagged) + "."


_layout = reports.layout


# -- executive -----------------------------------------------------------------


def _hatched(partial: pd.Series) -> dict:
    """A bar marker with the partial months hatched."""
    return dict(pattern=dict(shape=["/" if p else "" for p in partial], fillmode="overlay", solidity=0.4))


def _open(partial: pd.Series) -> dict:
    """A line's marker, open on the partial months."""
    return dict(symbol=["circle-open" if p else "circle" for p in partial], size=8)


def _first_days(month: str, days: int) -> str:
    """The first ``days`` days of ``month``, as the KPI tiles name them ("Jan 1", "Jan 1-4" with an en dash)."""
    return f"{pd.Timestamp(month):%b} 1" + (f"–{days}" if days > 1 else "")


def monthly_trend(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    """Monthly revenue (bars) and orders (line), with a selector for one category's revenue."""
    months, by_category = frames["monthly_trend"], frames["category_monthly"]
    partial = ctx.partial(months["month"])
    money = ctx.money.hover("y")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(
        x=months["month"],
        y=months["revenue"],
        name="Revenue",
        marker=_hatched(partial),
        customdata=["partial month" if p else "" for p in partial],
        hovertemplate=f"%{{x|%b %Y}}: {money} %{{customdata}}<extra>Revenue</extra>",
    )
    fig.add_scatter(
        x=months["month"],
        y=months["orders"],
        name="Orders",
        mode="lines+markers",
        marker=_open(partial),
        hovertemplate="%{x|%b %Y}: %{y:,} orders<extra></extra>",
        secondary_y=True,
    )
    categories = sorted(by_category["category"].unique())
    for category in categories:
        rows = by_category[by_category["category"] == category]
        fig.add_bar(
            x=rows["month"],
            y=rows["revenue"],
            name=f"Revenue: {category}",
            visible=False,
            marker=_hatched(ctx.partial(rows["month"])),
            hovertemplate=f"%{{x|%b %Y}}: {money}<extra>{category}</extra>",
        )
    buttons = [
        dict(label="All categories", method="update", args=[{"visible": [True, True] + [False] * len(categories)}])
    ]
    for i, category in enumerate(categories):
        visible = [False, False] + [j == i for j in range(len(categories))]
        buttons.append(dict(label=category, method="update", args=[{"visible": visible}]))
    fig.update_layout(updatemenus=[dict(buttons=buttons, x=0, xanchor="left", y=1.0, yanchor="bottom")])
    fig.update_yaxes(title_text=f"revenue ({ctx.money.currency})", secondary_y=False, **ctx.money.axis())
    fig.update_yaxes(title_text="orders", secondary_y=True, showgrid=False, tickformat="~s")
    fig.update_xaxes(**MONTHS)
    _layout(fig, "Monthly revenue and orders", note=ctx.partial_note(months["month"]))
    fig.update_layout(margin=dict(t=50))
    return fig


def categories(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    cats = frames["category_performance"].sort_values("revenue")
    fig = go.Figure(
        go.Bar(
            x=cats["revenue"],
            y=cats["category"],
            orientation="h",
            text=[
                f"{s:.0%} · margin {m:.0%}" for s, m in zip(cats["revenue_share"].fillna(0), cats["margin"].fillna(0))
            ],
            textposition="auto",
            hovertemplate=f"%{{y}}: {ctx.money.hover('x')}<extra></extra>",
        )
    )
    fig.update_xaxes(**ctx.money.axis())
    return _layout(fig, "Revenue by category", note="Label: share of revenue and margin.")


def payment_mix(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    mix = frames["payment_mix"]
    fig = go.Figure(
        go.Pie(
            labels=mix["display_name"],
            values=mix["orders_placed"],
            hole=0.45,
            sort=False,
            hovertemplate="%{label}: %{value:,} orders (%{percent})<extra></extra>",
        )
    )
    return _layout(fig, "Orders by payment method")


def regions(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    states = frames["region_revenue"].head(15).iloc[::-1]
    fig = go.Figure()
    for region in sorted(states["region"].unique()):
        rows = states[states["region"] == region]
        fig.add_bar(
            x=rows["revenue"],
            y=rows["state"],
            orientation="h",
            name=region,
            hovertemplate=f"%{{y}}: {ctx.money.hover('x')}<extra>{region}</extra>",
        )
    fig.update_layout(barmode="stack", yaxis=dict(categoryorder="total ascending"))
    fig.update_xaxes(**ctx.money.axis())
    return _layout(fig, "Top states by revenue, by region", height=420)


# -- products --------------------------------------------------------------------


def top_products(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    top = frames["top_products"].iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=top["revenue"],
            y=top["product_name"] + " (" + top["product_id"] + ")",
            orientation="h",
            customdata=top[["category", "margin"]],
            hovertemplate=f"%{{y}}<br>%{{customdata[0]}}<br>revenue {ctx.money.hover('x', 2)}"
            "<br>margin %{customdata[1]:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(**ctx.money.axis())
    return _layout(fig, f"Top {len(top)} products by revenue", height=max(HEIGHT, 22 * len(top) + 80))


def profitability(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    products = frames["product_profitability"]
    fig = go.Figure()
    for category in sorted(products["category"].unique()):
        rows = products[products["category"] == category]
        fig.add_scatter(
            x=rows["revenue"],
            y=rows["margin"],
            mode="markers",
            name=category,
            text=rows["product_name"],
            hovertemplate=f"%{{text}}<br>revenue {ctx.money.hover('x')}<br>margin %{{y:.1%}}<extra></extra>",
        )
    fig.update_xaxes(title_text=f"revenue ({ctx.money.currency}, log scale)", type="log", **ctx.money.axis())
    fig.update_yaxes(title_text="margin", tickformat=".0%")
    return _layout(fig, "Product profitability: revenue against margin", height=420)


def discounts(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    lines = frames["discount_impact"]
    labels = lines["discount_pct"].astype(str) + "%"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(
        x=labels, y=lines["units_per_line"], name="Units per line", hovertemplate="%{y:.2f} units<extra></extra>"
    )
    fig.add_scatter(
        x=labels,
        y=lines["margin"],
        name="Margin",
        mode="lines+markers",
        secondary_y=True,
        hovertemplate="margin %{y:.1%}<extra></extra>",
    )
    fig.update_yaxes(title_text="units per line", secondary_y=False)
    fig.update_yaxes(title_text="margin", tickformat=".0%", secondary_y=True, showgrid=False, rangemode="tozero")
    fig.update_xaxes(title_text="discount")
    return _layout(fig, "Discount impact on volume and margin")


# -- customers --------------------------------------------------------------------


def spend_bands(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    bands = frames["spend_bands"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(
        x=bands["spend_band"], y=bands["customers"], name="Customers", hovertemplate="%{y:,} customers<extra></extra>"
    )
    fig.add_scatter(
        x=bands["spend_band"],
        y=bands["revenue_share"],
        name="Share of revenue",
        mode="lines+markers",
        secondary_y=True,
        hovertemplate="%{y:.1%} of revenue<extra></extra>",
    )
    fig.update_yaxes(title_text="customers", secondary_y=False, tickformat="~s")
    fig.update_yaxes(title_text="share of revenue", tickformat=".0%", secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text=f"total spend ({ctx.money.currency})")
    return _layout(fig, "Customers by total spend")


def rfm(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    seg = frames["rfm_segments"]
    fig = go.Figure(
        [
            go.Bar(x=seg["rfm_segment"], y=seg["customer_share"], name="Share of customers"),
            go.Bar(x=seg["rfm_segment"], y=seg["revenue_share"], name="Share of revenue"),
        ]
    )
    fig.update_traces(hovertemplate="%{x}: %{y:.1%}<extra>%{fullData.name}</extra>")
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "RFM segments")


def pareto(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    curve = frames["customer_pareto"]
    x = [0.0, *curve["customer_share"]]
    fig = go.Figure(
        [
            go.Scatter(x=x, y=[0.0, *curve["revenue_share"]], mode="lines+markers", name="Customers"),
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Equal spend", line=dict(dash="dot")),
        ]
    )
    fig.update_traces(hovertemplate="top %{x:.0%} of customers: %{y:.0%} of revenue<extra></extra>")
    fig.update_xaxes(title_text="top share of customers", tickformat=".0%")
    fig.update_yaxes(title_text="share of revenue", tickformat=".0%")
    return _layout(fig, "Customer value: Pareto curve")


def cohorts(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    table = frames["cohort_retention"]
    grid = table.pivot(index="cohort_month", columns="months_since", values="retention") if len(table) else table
    labels = [str(m)[:7] for m in grid.index]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[str(c) for c in grid.columns],
            y=labels,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar=dict(tickformat=".0%"),
            hovertemplate="cohort %{y}, month +%{x}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="months since first purchase")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Cohort retention by first-purchase month", height=460)


def lifetime_value(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    deciles = frames["customer_lifetime_value"]
    fig = go.Figure(
        go.Bar(
            x=deciles["decile"].astype(str),
            y=deciles["avg_value"],
            text=[f"{s:.0%}" for s in deciles["revenue_share"]],
            textposition="auto",
            hovertemplate=f"decile %{{x}}: {ctx.money.hover('y')} a customer<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="decile (1 = most valuable tenth of customers)")
    fig.update_yaxes(title_text=f"average lifetime value ({ctx.money.currency})", **ctx.money.axis())
    return _layout(fig, "Customer lifetime value by decile", note="Label: the decile's share of revenue.")


# -- trends -------------------------------------------------------------------------


def daily_revenue(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    days = frames["daily_sales"]
    fig = go.Figure(
        go.Scatter(
            x=days["full_date"],
            y=days["revenue"],
            mode="lines",
            name="Revenue",
            hovertemplate=f"%{{x|%a %d %b %Y}}: {ctx.money.hover('y')}<extra></extra>",
        )
    )
    fig.update_xaxes(
        rangeslider=dict(visible=True),
        rangeselector=dict(
            buttons=[
                dict(count=1, label="1m", step="month", stepmode="backward"),
                dict(count=6, label="6m", step="month", stepmode="backward"),
                dict(count=1, label="YTD", step="year", stepmode="todate"),
                dict(count=1, label="1y", step="year", stepmode="backward"),
                dict(step="all", label="all"),
            ]
        ),
    )
    fig.update_yaxes(**ctx.money.axis())
    return _layout(fig, "Daily revenue", height=420)


def forecast(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    """The last 16 weeks and the next days' forecast with its 80% interval, revenue above and orders below;
    each panel's title gives the forecast's error on the backtest beside the seasonal-naive one."""
    days, ahead, tested = frames["daily_sales"].tail(16 * 7), frames["forecast"], frames["forecast_backtest"]
    metrics = {"revenue": ctx.money, "orders": lambda v: f"{v:,.0f} orders"}  # orders placed, as daily sales count
    titles = []
    for metric, show in metrics.items():
        score = ""
        for _, row in tested[(tested["metric"] == metric) & (tested["days"] > 0)].iterrows():
            score = f" · backtest error {show(row['mae'])} a day (repeating the last week: {show(row['naive_mae'])})"
        titles.append({"revenue": "Revenue", "orders": "Orders placed"}[metric] + score)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.14, subplot_titles=titles)
    for row, metric in enumerate(metrics, start=1):
        own = ahead[ahead["metric"] == metric]
        value = ctx.money.hover("y") if metric == "revenue" else "%{y:,.0f}"
        first = row == 1
        band = dict(mode="lines", line=dict(width=0), legendgroup="interval", row=row, col=1)
        fig.add_scatter(
            x=days["full_date"],
            y=days[metric],
            mode="lines",
            name="Actual",
            line=dict(color=PALETTE[0]),
            legendgroup="actual",
            showlegend=first,
            hovertemplate=f"%{{x|%d %b}}: {value}<extra>actual</extra>",
            row=row,
            col=1,
        )
        fig.add_scatter(x=own["date"], y=own["upper"], hoverinfo="skip", showlegend=False, **band)
        fig.add_scatter(
            x=own["date"],
            y=own["lower"],
            fill="tonexty",
            fillcolor="rgba(224,123,57,0.2)",
            name="80% interval",
            showlegend=first,
            hoverinfo="skip",
            **band,
        )
        fig.add_scatter(
            x=own["date"],
            y=own["forecast"],
            mode="lines",
            name="Forecast",
            line=dict(color=PALETTE[1], dash="dot"),
            legendgroup="forecast",
            showlegend=first,
            hovertemplate=f"%{{x|%d %b}}: {value}<extra>forecast</extra>",
            row=row,
            col=1,
        )
    fig.update_yaxes(row=1, col=1, **ctx.money.axis())
    fig.update_yaxes(row=2, col=1, tickformat="~s")
    fig.update_annotations(font_size=12, x=0, xanchor="left")
    _layout(
        fig,
        f"Forecast: the next {len(ahead) // 2} days" if len(ahead) else "Forecast (needs four weeks of history)",
        height=540,
        note="Backtest: the model fitted up to eight weeks ago, its mean absolute error over those weeks.",
    )
    fig.update_layout(margin=dict(t=40))
    return fig


def weekdays(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    days = frames["day_of_week"]
    colors = [PALETTE[1] if weekend else PALETTE[0] for weekend in days["is_weekend"]]
    fig = go.Figure(
        go.Bar(
            x=days["day_name"],
            y=days["revenue_per_day"],
            marker_color=colors,
            customdata=days["orders_per_day"],
            hovertemplate=f"%{{x}}: {ctx.money.hover('y')} a day, %{{customdata:,.0f}} orders<extra></extra>",
        )
    )
    fig.update_yaxes(title_text=f"revenue per day ({ctx.money.currency})", **ctx.money.axis())
    return _layout(fig, "Weekday and weekend: the average day", note="Weekend days in orange.")


def seasonality(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    months = frames["seasonality"]
    mean = months["revenue_per_day"].mean() if len(months) else 0
    fig = go.Figure(
        go.Bar(
            x=months["month_name"],
            y=months["revenue_per_day"],
            name="Revenue per day",
            hovertemplate=f"%{{x}}: {ctx.money.hover('y')} a day<extra></extra>",
        )
    )
    # The average as a line in the legend, not a label that lands on a bar.
    fig.add_scatter(
        x=months["month_name"],
        y=[mean] * len(months),
        mode="lines",
        name="Average month",
        line=dict(dash="dot", color=PALETTE[3]),
        hovertemplate=f"average month: {ctx.money.hover('y')} a day<extra></extra>",
    )
    fig.update_yaxes(title_text=f"revenue per day ({ctx.money.currency})", **ctx.money.axis())
    return _layout(fig, "Seasonality: revenue per day by calendar month")


def order_value(frames: dict[str, pd.DataFrame], ctx: Context) -> go.Figure:
    months = frames["monthly_trend"]
    partial = ctx.partial(months["month"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(
        x=months["month"],
        y=months["avg_order_value"],
        name="Average order value",
        mode="lines+markers",
        marker=_open(partial),
        hovertemplate=f"%{{x|%b %Y}}: {ctx.money.hover('y', 2)}<extra></extra>",
    )
    fig.add_scatter(
        x=months["month"],
        y=months["customers"],
        name="Buying customers",
        mode="lines+markers",
        marker=_open(partial),
        hovertemplate="%{x|%b %Y}: %{y:,} customers<extra></extra>",
        secondary_y=True,
    )
    fig.update_yaxes(title_text=f"average order value ({ctx.money.currency})", secondary_y=False, **ctx.money.axis())
    fig.update_yaxes(title_text="customers", secondary_y=True, showgrid=False, tickformat="~s")
    fig.update_xaxes(**MONTHS)
    note = ctx.partial_note(months["month"]).replace("Hatched", "Open markers")
    return _layout(fig, "Average order value and buying customers per month", note=note)


CHARTS = {
    "executive": (monthly_trend, categories, payment_mix, regions),
    "products": (top_products, profitability, discounts),
    "customers": (spend_bands, rfm, pareto, cohorts, lifetime_value),
    "trends": (daily_revenue, forecast, weekdays, seasonality, order_value),
}

SCRIPT = """
function showPage(page) {
  document.querySelectorAll('section.page').forEach(function (s) { s.hidden = s.id !== page; });
  document.querySelectorAll('nav button').forEach(function (b) {
    b.classList.toggle('active', b.dataset.page === page);
  });
  document.querySelectorAll('#' + page + ' .js-plotly-plot').forEach(function (p) { Plotly.Plots.resize(p); });
}
document.querySelectorAll('nav button').forEach(function (b) {
  b.addEventListener('click', function () {
    showPage(b.dataset.page);
    history.replaceState(null, '', '#' + b.dataset.page);  // a reload or a shared link opens this page
  });
});
showPage(document.getElementById((location.hash || '#').slice(1)) ? location.hash.slice(1) : 'executive');
"""


def _change(now: float | None, before: float | None) -> str:
    if not now or not before:
        return ""
    return f"{now / before - 1:+.0%}"


def _kpi_tiles(kpis: dict, money: reports.Money) -> str:
    """Totals to date, then this month so far against the same days of the month before."""
    tiles = [
        ("Revenue to date", money(kpis.get("revenue")), ""),
        ("Orders to date", f"{kpis.get('orders') or 0:,}", ""),
        ("Average order value", money(kpis.get("avg_order_value"), 2), ""),
        ("Margin", f"{kpis['margin']:.1%}" if kpis.get("margin") is not None else "–", ""),
        ("Buying customers", f"{kpis.get('customers') or 0:,}", ""),
        ("Profit to date", money(kpis.get("profit")), ""),
    ]
    mtd = kpis.get("month_to_date")
    if mtd:
        label = "month" if mtd["complete"] else f"month to date ({_first_days(mtd['month'], mtd['days'])})"
        before = _first_days(mtd["previous_month"], mtd["previous_days"]) if mtd["previous_month"] else ""
        for name, value, earlier, show in (
            ("Revenue", mtd["revenue"], mtd["previous_revenue"], money),
            ("Orders placed", mtd["orders_placed"], mtd["previous_orders_placed"], lambda v: f"{v:,.0f}"),
        ):
            change = _change(value, earlier)
            versus = f"{change} on {before} ({show(earlier)})" if change else "no earlier month to compare"
            tiles.append((f"{name}, {label}", show(value), versus))
    return (
        "<div class='kpis'>"
        + "".join(
            f"<div class='kpi'><div class='label'>{html.escape(label)}</div>"
            f"<div class='value'>{html.escape(value)}</div>"
            + (f"<div class='change'>{html.escape(change)}</div>" if change else "")
            + "</div>"
            for label, value, change in tiles
        )
        + "</div>"
    )


def _insights(found: list[dict], page: str) -> str:
    mine = [i for i in found if INSIGHT_PAGES.get(i["key"], "executive") == page]
    if not mine:
        return ""
    return "<ul class='insights'>" + "".join(f"<li>{html.escape(i['text'])}</li>" for i in mine) + "</ul>"


def _context(result: Analytics) -> Context:
    kpis = result.kpis
    return Context(
        reports.Money(result.currency),
        dt.date.fromisoformat(kpis["first_date"]) if kpis.get("first_date") else None,
        dt.date.fromisoformat(kpis["last_date"]) if kpis.get("last_date") else None,
    )


@reports.look()
def build_html(path: Path, run_id: str, result: Analytics) -> Path:
    """Write the dashboard page to ``path`` (plotly.js beside it); each chart's div id is ``<page>-<chart>``."""
    kpis = result.kpis
    ctx = _context(result)
    sections = []
    for page, title in PAGES:
        figures = [(f"{page}-{chart.__name__}", chart(result.frames, ctx)) for chart in CHARTS[page]]
        top = _kpi_tiles(kpis, ctx.money) if page == "executive" else ""
        empty = "" if result.insights else "<ul class='insights'><li>No data yet.</li></ul>"
        sections.append(
            f"<section class='page' id='{page}'><h2>{title}</h2>{_insights(result.insights, page) or empty}{top}"
            f"{reports.charts(figures)}</section>"
        )
    nav = "".join(f"<button data-page='{page}'>{title}</button>" for page, title in PAGES)
    meta = json.dumps({"run_id": run_id, "charts": {p: [c.__name__ for c in CHARTS[p]] for p, _ in PAGES}})
    span = f"{ctx.first_date or '–'} to {ctx.last_date or '–'}"
    mtd = kpis.get("month_to_date")
    status = "no data" if ctx.last_date is None else "complete" if not mtd or mtd["complete"] else "partial month"
    facts = {
        "run": run_id,
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "orders": span,
        "currency": ctx.money.currency,
        "status": status + (f" ({mtd['days']} of {mtd['days_in_month']} days)" if status == "partial month" else ""),
    }
    return reports.page(
        path,
        "Store dashboard",
        facts,
        f"<nav>{nav}</nav><main>{''.join(sections)}</main>",
        head=f"<script type='application/json' id='dashboard-meta'>{meta}</script>",
        script=SCRIPT,
    )


class InlineFigure:
    """A chart in an executed notebook. JupyterLab draws its Plotly JSON; nbconvert's HTML and the classic
    notebook its HTML, which loads plotly.js from the run's reports folder (beside the executed notebook)."""

    def __init__(self, div_id: str, fig: go.Figure) -> None:
        meta = fig.layout.meta or {}
        self.div_id, self.title = div_id, meta.get("title") or ""
        note = meta.get("note") or ""
        self.fig = go.Figure(fig).update_layout(
            title=dict(text=self.title + (f"<br><sub>{html.escape(note)}</sub>" if note else "")),
            margin=dict(t=130 if fig.layout.updatemenus else 90),  # room for a selector under the title
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, object]:
        figure = json.loads(pio.to_json(self.fig))
        page = pio.to_html(
            self.fig,
            full_html=False,
            include_plotlyjs=f"reports/{reports.PLOTLY_JS}",
            div_id=self.div_id,
            config={"displaylogo": False},
        )
        return {
            "application/vnd.plotly.v1+json": {**figure, "config": {"displaylogo": False}},
            "text/html": page,
            "text/plain": f"<chart: {self.title}>",
        }


NOTEBOOK_CHARTS = (monthly_trend, categories, forecast)  # the analytics notebook's main charts


@reports.look()
def notebook_charts(result: Analytics) -> list[InlineFigure]:
    """The main charts of the dashboard, for the analytics notebook to show inline."""
    ctx = _context(result)
    return [InlineFigure(f"notebook-{chart.__name__}", chart(result.frames, ctx)) for chart in NOTEBOOK_CHARTS]


def write_dashboard(path: Path, run_id: str, result: Analytics) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return build_html(path, run_id, result)
