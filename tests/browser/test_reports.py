"""The three HTML reports in a real browser: headless Chromium, network off, at a desktop's 1400 px and a
laptop's 1280 x 800. Every chart is drawn inside its card, nothing covers a chart's title, no console error.

The reports are a real run's: two runs of the pipeline over a generated year and the day after it (so
the newest month is partial, and the quality and monitoring reports have a run before to compare with).
A screenshot of each page is kept in that run's ``reports/screenshots/`` folder, and copied to
``DASHBOARD_SCREENSHOTS`` when it is set (``DASHBOARD_SCREENSHOTS=docs/images pytest tests/browser``
refreshes the ones in docs/dashboard_guide.md).
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from cdp import Browser, chromium_path

from ecom_pipeline import dashboard, db, reports
from helpers import run_pipeline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (Debian: apt-get install chromium)"),
]

STORE = ["generate.orders=20000", "generate.customers=4000", "generate.products=200", "generate.days=365"]
SIZES = {"desktop": (1400, 1000), "laptop": (1280, 800)}
REPORTS = ("dashboard", "quality_report", "monitoring_report")


@pytest.fixture(scope="module")
def run(server_url, tmp_path_factory) -> Path:
    """The reports folder of the second of two runs: a generated year of 20,000 orders, then the next day."""
    outputs = tmp_path_factory.mktemp("outputs")
    with db.scratch_database(server_url) as url:
        env = {"DATABASE_URL": url, "PIPELINE_OUTPUTS": str(outputs)}
        for _ in range(2):
            done = run_pipeline("--params", "params/default.yaml", *(f"--set={s}" for s in STORE), env=env)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return max((outputs / "runs").iterdir()) / "reports"  # run ids begin with their start time


def test_plotly_js_is_written_once_beside_the_reports(run):
    for name in REPORTS:
        text = (run / f"{name}.html").read_text()
        assert not re.search(r"\* plotly\.js v\d", text)  # not embedded in the page
        assert re.findall(r"<script[^>]+src=[^>]+>", text) == [f"<script src='{reports.PLOTLY_JS}'>"]
        assert (run / f"{name}.html").stat().st_size < 1_000_000
    assert re.search(r"\* plotly\.js v\d", (run / reports.PLOTLY_JS).read_text()[:400])
    latest = run.parents[2] / "latest"
    assert (latest / reports.PLOTLY_JS).read_bytes() == (run / reports.PLOTLY_JS).read_bytes()
    assert len(list(run.parent.rglob("plotly*.js"))) == 1


CHARTS_DRAWN = """(() => {
    const plots = [...document.querySelectorAll('%(scope)s .js-plotly-plot')];
    const fits = p => {  // drawn at the width of its card, not wider
        const svg = p.querySelector('svg.main-svg'), card = p.closest('.chart').getBoundingClientRect();
        const drawn = svg && svg.getBoundingClientRect();
        return drawn && drawn.width > 300 && drawn.left >= card.left - 1 && drawn.right <= card.right + 1;
    };
    const ok = plots.filter(fits);
    return ok.length === plots.length && plots.length > 0 ? ok.map(p => p.id) : null;
})()"""

# Points across each shown chart's title: the topmost element at each must be the title itself.
TITLES_COVERED = """(() => {
    const covered = [];
    for (const title of document.querySelectorAll('%(scope)s .chart h3')) {
        title.scrollIntoView({block: 'center'});
        const r = title.getBoundingClientRect();
        for (let i = 1; i < 10; i++) {
            const x = r.left + (r.width * i) / 10, y = r.top + r.height / 2;
            const top = document.elementFromPoint(x, y);
            if (top && top !== title && !title.contains(top)) {
                covered.push([title.textContent, String(top.className.baseVal ?? top.className)]);
            }
        }
    }
    return covered;
})()"""


def _check_shown(page, scope: str) -> list[str]:
    drawn = page.wait_for(CHARTS_DRAWN % {"scope": scope})
    assert page.evaluate(f"document.querySelectorAll('{scope} .chart h3').length") == len(drawn)  # a title each
    assert page.evaluate(TITLES_COVERED % {"scope": scope}) == []
    return drawn


def _keep(shot: Path, size: str) -> None:
    """Check the screenshot has content; the desktop ones go to the docs when asked for."""
    assert shot.stat().st_size > 20_000
    if os.environ.get("DASHBOARD_SCREENSHOTS") and size == "desktop":
        target = Path(os.environ["DASHBOARD_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target / shot.name)


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_every_dashboard_page_renders_offline_without_overlaps(run, size):
    shots = run / "screenshots"
    shots.mkdir(exist_ok=True)
    with Browser(*SIZES[size]) as browser:
        page = browser.page
        page.open(run / "dashboard.html")
        meta = json.loads(page.evaluate("document.getElementById('dashboard-meta').textContent"))
        assert meta["charts"] == {p: [c.__name__ for c in charts] for p, charts in dashboard.CHARTS.items()}
        for name, _ in dashboard.PAGES:
            page.click(f"nav button[data-page='{name}']")
            assert _check_shown(page, f"#{name}") == [f"{name}-{chart}" for chart in meta["charts"][name]]
            shown = page.evaluate(
                "[...document.querySelectorAll('section.page')].filter(s => !s.hidden).map(s => s.id)"
            )
            assert shown == [name]
            insights = page.evaluate(
                f"[...document.querySelectorAll('#{name} .insights li')].map(li => li.textContent)"
            )
            assert insights, name  # every page says something about its own charts
            shot = shots / (f"dashboard_{name}.png" if size == "desktop" else f"dashboard_{name}_{size}.png")
            page.screenshot(shot)
            _keep(shot, size)
        everything = page.evaluate("[...document.querySelectorAll('.insights li')].map(li => li.textContent)")
        assert len(everything) == len(set(everything)) >= 8  # each insight on one page only
        assert page.console_errors() == []
        assert [url for url in page.requests() if not url.startswith(("file:", "data:"))] == []


@pytest.mark.parametrize("name", ["quality_report", "monitoring_report"])
@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_the_quality_and_monitoring_reports_render_offline_without_overlaps(run, name, size):
    shots = run / "screenshots"
    shots.mkdir(exist_ok=True)
    with Browser(*SIZES[size]) as browser:
        page = browser.page
        page.open(run / f"{name}.html")
        assert len(_check_shown(page, "main")) >= 2
        header = page.evaluate("document.querySelector('header dl').textContent")
        assert "run" in header and "generated" in header and "status" in header and "data" in header
        shot = shots / (f"{name}.png" if size == "desktop" else f"{name}_{size}.png")
        page.screenshot(shot)
        _keep(shot, size)
        assert page.console_errors() == []
        assert [url for url in page.requests() if not url.startswith(("file:", "data:"))] == []


def test_the_partial_month_is_marked_and_compared_with_the_same_days(run):
    """The second run adds 2026-01-01: January holds one day, which the chart hatches and the tiles compare
    with December 1st, not with the whole of December."""
    with Browser() as browser:
        page = browser.page
        page.open(run / "dashboard.html")
        page.wait_for("document.querySelector('#executive-monthly_trend svg.main-svg') !== null")
        shapes = page.evaluate("document.getElementById('executive-monthly_trend').data[0].marker.pattern.shape")
        assert shapes[-1] == "/" and set(shapes[:-1]) == {""}
        note = page.evaluate("document.querySelector('[data-chart=executive-monthly_trend] p.note').textContent")
        assert "Jan 2026 (1 of 31 days)" in note
        tiles = page.evaluate(
            "[...document.querySelectorAll('.kpi')].map(k => [k.querySelector('.label').textContent,"
            " k.querySelector('.value').textContent, (k.querySelector('.change') || {}).textContent || ''])"
        )
        month = [t for t in tiles if "month to date" in t[0]]
        assert [t[0] for t in month] == ["Revenue, month to date (Jan 1)", "Orders placed, month to date (Jan 1)"]
        assert all(" on Dec 1 (" in t[2] for t in month), month
        assert all(t[1].startswith("$") for t in tiles if "Revenue" in t[0] or "Profit" in t[0]), tiles
        header = page.evaluate("document.querySelector('header dl').textContent")
        assert "partial month (1 of 31 days)" in header and "currency" in header


def test_category_selector_switches_the_trend(run):
    with Browser() as browser:
        page = browser.page
        page.open(run / "dashboard.html")
        page.wait_for("document.querySelector('#executive-monthly_trend svg.main-svg') !== null")
        visible = (
            "document.getElementById('executive-monthly_trend').data.filter(t => t.visible !== false).map(t => t.name)"
        )
        assert page.evaluate(visible) == ["Revenue", "Orders"]
        page.click("#executive-monthly_trend .updatemenu-header-group")
        page.click("#executive-monthly_trend .updatemenu-dropdown-button:nth-of-type(2)")
        page.wait_for(f"{visible}.length === 1")
        assert page.evaluate(visible) == ["Revenue: Beauty"]
        assert page.console_errors() == []
