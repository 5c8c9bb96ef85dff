"""The run's dashboard: one self-contained HTML file that opens offline.

Four pages (executive, products, customers, trends) as tabs, with the insight
sentences on top and KPI tiles on the executive page. plotly.js is embedded
once in the page head; every chart is a Plotly figure drawn from the
analytics frames (already aggregated, so the file stays small at any volume).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from ecom_pipeline.stages.analytics import Analytics

PAGES = (("executive", "Executive"), ("products", "Products"), ("customers", "Customers"), ("trends", "Trends"))
PALETTE = ["#2f6fb0", "#e07b39", "#3f9b62", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974"]
HEIGHT = 360


def _layout(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=50, r=20, t=50, b=40),
        colorway=PALETTE,
        template="plotly_white",
        legend=dict(orientation="h", y=-0.15),
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


# -- executive -----------------------------------------------------------------


def monthly_trend(frames: dict[str, pd.DataFrame]) -> go.Figure:
    """Monthly revenue (bars) and orders (line), with a selector for one category's revenue."""
    months, by_category = frames["monthly_trend"], frames["category_monthly"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=months["month"], y=months["revenue"], name="Revenue")
    fig.add_scatter(x=months["month"], y=months["orders"], name="Orders", mode="lines+markers", secondary_y=True)
    categories = sorted(by_category["category"].unique())
    for category in categories:
        rows = by_category[by_category["category"] == category]
        fig.add_bar(x=rows["month"], y=rows["revenue"], name=f"Revenue: {category}", visible=False)
    buttons = [
        dict(label="All categories", method="update", args=[{"visible": [True, True] + [False] * len(categories)}])
    ]
    for i, category in enumerate(categories):
        visible = [False, False] + [j == i for j in range(len(categories))]
        buttons.append(dict(label=category, method="update", args=[{"visible": visible}]))
    # On the left, under the title: the mode bar appears on the right when the pointer is over the chart.
    fig.update_layout(updatemenus=[dict(buttons=buttons, x=0, xanchor="left", y=1.02, yanchor="bottom")])
    fig.update_yaxes(title_text="revenue", secondary_y=False)
    fig.update_yaxes(title_text="orders", secondary_y=True, showgrid=False)
    _layout(fig, "Monthly revenue and orders")
    fig.update_layout(margin=dict(t=90))
    return fig


def categories(frames: dict[str, pd.DataFrame]) -> go.Figure:
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
        )
    )
    return _layout(fig, "Revenue by category")


def payment_mix(frames: dict[str, pd.DataFrame]) -> go.Figure:
    mix = frames["payment_mix"]
    fig = go.Figure(go.Pie(labels=mix["display_name"], values=mix["orders_placed"], hole=0.45, sort=False))
    return _layout(fig, "Orders by payment method")


def regions(frames: dict[str, pd.DataFrame]) -> go.Figure:
    states = frames["region_revenue"].head(15).iloc[::-1]
    fig = go.Figure()
    for region in sorted(states["region"].unique()):
        rows = states[states["region"] == region]
        fig.add_bar(x=rows["revenue"], y=rows["state"], orientation="h", name=region)
    fig.update_layout(barmode="stack", yaxis=dict(categoryorder="total ascending"))
    return _layout(fig, "Top states by revenue, by region", height=420)


# -- products --------------------------------------------------------------------


def top_products(frames: dict[str, pd.DataFrame]) -> go.Figure:
    top = frames["top_products"].iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=top["revenue"],
            y=top["product_name"] + " (" + top["product_id"] + ")",
            orientation="h",
            customdata=top[["category", "margin"]],
            hovertemplate="%{y}<br>%{customdata[0]}<br>revenue %{x:,.2f}<br>margin %{customdata[1]:.1%}<extra></extra>",
        )
    )
    return _layout(fig, f"Top {len(top)} products by revenue", height=max(HEIGHT, 22 * len(top) + 80))


def profitability(frames: dict[str, pd.DataFrame]) -> go.Figure:
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
            hovertemplate="%{text}<br>revenue %{x:,.0f}<br>margin %{y:.1%}<extra></extra>",
        )
    fig.update_xaxes(title_text="revenue", type="log")
    fig.update_yaxes(title_text="margin", tickformat=".0%")
    return _layout(fig, "Product profitability: revenue against margin", height=420)


def discounts(frames: dict[str, pd.DataFrame]) -> go.Figure:
    lines = frames["discount_impact"]
    labels = lines["discount_pct"].astype(str) + "%"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=labels, y=lines["units_per_line"], name="Units per line")
    fig.add_scatter(x=labels, y=lines["margin"], name="Margin", mode="lines+markers", secondary_y=True)
    fig.update_yaxes(title_text="units per line", secondary_y=False)
    fig.update_yaxes(title_text="margin", tickformat=".0%", secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text="discount")
    return _layout(fig, "Discount impact on volume and margin")


# -- customers --------------------------------------------------------------------


def spend_bands(frames: dict[str, pd.DataFrame]) -> go.Figure:
    bands = frames["spend_bands"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=bands["spend_band"], y=bands["customers"], name="Customers")
    fig.add_scatter(
        x=bands["spend_band"], y=bands["revenue_share"], name="Share of revenue", mode="lines+markers", secondary_y=True
    )
    fig.update_yaxes(title_text="share of revenue", tickformat=".0%", secondary_y=True, showgrid=False)
    return _layout(fig, "Customers by total spend")


def rfm(frames: dict[str, pd.DataFrame]) -> go.Figure:
    seg = frames["rfm_segments"]
    fig = go.Figure(
        [
            go.Bar(x=seg["rfm_segment"], y=seg["customer_share"], name="Share of customers"),
            go.Bar(x=seg["rfm_segment"], y=seg["revenue_share"], name="Share of revenue"),
        ]
    )
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "RFM segments")


def pareto(frames: dict[str, pd.DataFrame]) -> go.Figure:
    curve = frames["customer_pareto"]
    x = [0.0, *curve["customer_share"]]
    fig = go.Figure(
        [
            go.Scatter(x=x, y=[0.0, *curve["revenue_share"]], mode="lines+markers", name="Customers"),
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Equal spend", line=dict(dash="dot")),
        ]
    )
    fig.update_xaxes(title_text="top share of customers", tickformat=".0%")
    fig.update_yaxes(title_text="share of revenue", tickformat=".0%")
    return _layout(fig, "Customer value: Pareto curve")


def cohorts(frames: dict[str, pd.DataFrame]) -> go.Figure:
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
            hovertemplate="cohort %{y}, month +%{x}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="months since first purchase")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Cohort retention by first-purchase month", height=460)


def lifetime_value(frames: dict[str, pd.DataFrame]) -> go.Figure:
    deciles = frames["customer_lifetime_value"]
    fig = go.Figure(
        go.Bar(
            x=deciles["decile"].astype(str),
            y=deciles["avg_value"],
            text=[f"{s:.0%}" for s in deciles["revenue_share"]],
            textposition="auto",
        )
    )
    fig.update_xaxes(title_text="decile (1 = most valuable tenth of customers)")
    fig.update_yaxes(title_text="average lifetime value")
    return _layout(fig, "Customer lifetime value by decile (label: share of revenue)")


# -- trends -------------------------------------------------------------------------


def daily_revenue(frames: dict[str, pd.DataFrame]) -> go.Figure:
    days = frames["daily_sales"]
    fig = go.Figure(go.Scatter(x=days["full_date"], y=days["revenue"], mode="lines", name="Revenue"))
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
    return _layout(fig, "Daily revenue", height=420)


def weekdays(frames: dict[str, pd.DataFrame]) -> go.Figure:
    days = frames["day_of_week"]
    colors = [PALETTE[1] if weekend else PALETTE[0] for weekend in days["is_weekend"]]
    fig = go.Figure(
        go.Bar(
            x=days["day_name"],
            y=days["revenue_per_day"],
            marker_color=colors,
            customdata=days["orders_per_day"],
            hovertemplate="%{x}: %{y:,.0f} a day, %{customdata:.0f} orders<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="average revenue per day")
    return _layout(fig, "Weekday and weekend: the average day")


def seasonality(frames: dict[str, pd.DataFrame]) -> go.Figure:
    months = frames["seasonality"]
    mean = months["revenue_per_day"].mean() if len(months) else 0
    fig = go.Figure(go.Bar(x=months["month_name"], y=months["revenue_per_day"], name="Revenue per day"))
    fig.add_hline(y=mean, line_dash="dot", annotation_text="average month")
    fig.update_yaxes(title_text="average revenue per day")
    return _layout(fig, "Seasonality: revenue per day by calendar month")


def order_value(frames: dict[str, pd.DataFrame]) -> go.Figure:
    months = frames["monthly_trend"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=months["month"], y=months["avg_order_value"], name="Average order value", mode="lines+markers")
    fig.add_scatter(
        x=months["month"], y=months["customers"], name="Buying customers", mode="lines+markers", secondary_y=True
    )
    fig.update_yaxes(title_text="customers", secondary_y=True, showgrid=False)
    return _layout(fig, "Average order value and buying customers per month")


def forecast(frames: dict[str, pd.DataFrame]) -> go.Figure:
    """The last 16 weeks and the next days' forecast with its 80% interval, revenue above and orders below;
    each panel's title gives the forecast's error on the backtest beside the seasonal-naive one."""
    days, ahead, tested = frames["daily_sales"].tail(16 * 7), frames["forecast"], frames["forecast_backtest"]
    titles = []
    for metric in ("revenue", "orders"):
        score = ""
        for _, row in tested[(tested["metric"] == metric) & (tested["days"] > 0)].iterrows():
            score = f" · last {row['days'] // 7} weeks' error {row['mae']:,.0f} a day (naive {row['naive_mae']:,.0f})"
        titles.append(metric.capitalize() + score)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=titles)
    for row, metric in enumerate(("revenue", "orders"), start=1):
        own = ahead[ahead["metric"] == metric]
        first = row == 1
        fig.add_scatter(
            x=days["full_date"],
            y=days[metric],
            mode="lines",
            name="Actual",
            line=dict(color=PALETTE[0]),
            legendgroup="actual",
            showlegend=first,
            row=row,
            col=1,
        )
        fig.add_scatter(
            x=own["date"],
            y=own["upper"],
            mode="lines",
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            legendgroup="interval",
            row=row,
            col=1,
        )
        fig.add_scatter(
            x=own["date"],
            y=own["lower"],
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor="rgba(224,123,57,0.2)",
            name="80% interval",
            legendgroup="interval",
            showlegend=first,
            row=row,
            col=1,
        )
        fig.add_scatter(
            x=own["date"],
            y=own["forecast"],
            mode="lines",
            name="Forecast",
            line=dict(color=PALETTE[1], dash="dot"),
            legendgroup="forecast",
            showlegend=first,
            row=row,
            col=1,
        )
    _layout(fig, "Forecast: the next 30 days", height=520)
    fig.update_layout(margin=dict(t=80))
    return fig


CHARTS = {
    "executive": (monthly_trend, categories, payment_mix, regions),
    "products": (top_products, profitability, discounts),
    "customers": (spend_bands, rfm, pareto, cohorts, lifetime_value),
    "trends": (daily_revenue, forecast, weekdays, seasonality, order_value),
}

STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.4rem}
header p{margin:.25rem 0 0;opacity:.8;font-size:.9rem}
nav{display:flex;gap:.25rem;padding:0 2rem;background:#fff;border-bottom:1px solid #d9e2ec}
nav button{border:0;background:none;padding:.8rem 1rem;font-size:1rem;cursor:pointer;color:#486581}
nav button.active{color:#1f3a5f;border-bottom:3px solid #2f6fb0;font-weight:600}
main{padding:1rem 2rem}.insights{background:#fff;border-left:4px solid #2f6fb0;padding:.5rem 1.5rem;margin:1rem 0}
.insights li{margin:.3rem 0}.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:1rem}
.kpi{background:#fff;padding:1rem;border-radius:6px;box-shadow:0 1px 2px #0002}
.kpi .label{font-size:.8rem;color:#627d98;text-transform:uppercase}.kpi .value{font-size:1.6rem;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1rem;margin-top:1rem}
.chart{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;padding:.5rem}
"""

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


def _kpi_tiles(kpis: dict) -> str:
    def money(v):
        return f"{v:,.0f}" if v is not None else "–"

    tiles = [
        ("Revenue", money(kpis.get("revenue"))),
        ("Orders", f"{kpis.get('orders') or 0:,}"),
        ("Average order value", f"{kpis['avg_order_value']:,.2f}" if kpis.get("avg_order_value") else "–"),
        ("Margin", f"{kpis['margin']:.1%}" if kpis.get("margin") is not None else "–"),
        ("Customers", f"{kpis.get('customers') or 0:,}"),
        ("Profit", money(kpis.get("profit"))),
    ]
    return (
        "<div class='kpis'>"
        + "".join(
            f"<div class='kpi'><div class='label'>{html.escape(label)}</div>"
            f"<div class='value'>{html.escape(value)}</div></div>"
            for label, value in tiles
        )
        + "</div>"
    )


def _chart(div_id: str, fig: go.Figure) -> str:
    body = pio.to_html(
        fig, full_html=False, include_plotlyjs=False, div_id=div_id, config={"responsive": True, "displaylogo": False}
    )
    return f"<div class='chart'>{body}</div>"


def build_html(run_id: str, result: Analytics) -> str:
    """The dashboard page; each chart's div id is ``<page>-<chart>``."""
    kpis = result.kpis
    span = f"{kpis.get('first_date') or '–'} to {kpis.get('last_date') or '–'}"
    insights = "".join(f"<li>{html.escape(i['text'])}</li>" for i in result.insights) or "<li>No data yet.</li>"
    sections = []
    for page, title in PAGES:
        charts = "".join(_chart(f"{page}-{chart.__name__}", chart(result.frames)) for chart in CHARTS[page])
        top = _kpi_tiles(kpis) if page == "executive" else ""
        sections.append(
            f"<section class='page' id='{page}'><h2>{title}</h2>{top}<div class='grid'>{charts}</div></section>"
        )
    nav = "".join(f"<button data-page='{page}'>{title}</button>" for page, title in PAGES)
    meta = json.dumps({"run_id": run_id, "charts": {p: [c.__name__ for c in CHARTS[p]] for p, _ in PAGES}})
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Store dashboard · {html.escape(span)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        f"<script type='application/json' id='dashboard-meta'>{meta}</script></head><body>"
        f"<header><h1>Store dashboard</h1><p>Orders from {html.escape(span)} · run {html.escape(run_id)}</p></header>"
        f"<nav>{nav}</nav><main><ul class='insights'>{insights}</ul>{''.join(sections)}</main>"
        f"<script>{SCRIPT}</script></body></html>"
    )


def write_dashboard(path: Path, run_id: str, result: Analytics) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(build_html(run_id, result), encoding="utf-8")
    tmp.replace(path)
    return path
