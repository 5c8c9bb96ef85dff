"""The dashboard in a real browser: headless Chromium, network off, every chart drawn, no console error.

Screenshots of each page are written to the test's folder, or to ``DASHBOARD_SCREENSHOTS`` when set
(``DASHBOARD_SCREENSHOTS=docs/images pytest tests/browser`` refreshes the ones in docs/dashboard_guide.md).
"""

import json
import os
import re
from pathlib import Path

import pytest
from cdp import Browser, chromium_path

from ecom_pipeline import dashboard, db, migrations
from ecom_pipeline.params import AnalyticsParams, CleanParams, GenerateParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import analytics, clean, generate, ingest, warehouse

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (Debian: apt-get install chromium)"),
]

STORE = GenerateParams(orders=20_000, customers=4000, products=200, days=365, seed=7)


@pytest.fixture(scope="module")
def page_file(server_url, tmp_path_factory) -> Path:
    """A dashboard built by the analytics stage over a generated year of store data."""
    folder = tmp_path_factory.mktemp("dashboard")
    batch = generate.generate_next_batch(STORE, folder / "raw")
    with db.scratch_database(server_url) as url:
        migrations.ensure_migrated(url)
        ingest.ingest(batch.path, "browser", IngestParams(), url)
        clean.clean(url, "browser", CleanParams())
        warehouse.load(url, "browser", WarehouseParams())
        result = analytics.run_analyses(url, AnalyticsParams())
    return dashboard.write_dashboard(folder / "dashboard.html", "browser", result)


def test_dashboard_is_self_contained(page_file):
    text = page_file.read_text()
    assert page_file.stat().st_size < 10_000_000
    assert len(re.findall(r"\* plotly\.js v\d", text)) == 1  # plotly.js embedded once, not per figure
    assert not re.search(r"<script[^>]+src=", text)  # nothing fetched from elsewhere


def test_every_chart_renders_offline_without_console_errors(page_file, tmp_path):
    shots = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with Browser() as browser:
        page = browser.page
        page.open(page_file)
        meta = json.loads(page.evaluate("document.getElementById('dashboard-meta').textContent"))
        assert meta["charts"] == {p: [c.__name__ for c in charts] for p, charts in dashboard.CHARTS.items()}
        insights = page.evaluate("document.querySelectorAll('.insights li').length")
        assert insights >= 8
        for name, _ in dashboard.PAGES:
            page.click(f"nav button[data-page='{name}']")
            expected = len(meta["charts"][name])
            # Each chart is a Plotly div holding its drawn SVG, laid out at a real size on the shown page.
            drawn = page.wait_for(f"""(() => {{
                const plots = [...document.querySelectorAll('#{name} .js-plotly-plot')];
                const fits = p => {{  // drawn at the width of its box on the shown page, not wider
                    const svg = p.querySelector('svg.main-svg'), box = p.parentElement.getBoundingClientRect();
                    const drawn = svg && svg.getBoundingClientRect();
                    return drawn && drawn.width > 300 && drawn.right <= box.right;
                }};
                const ok = plots.filter(fits);
                return ok.length === {expected} ? ok.map(p => p.id) : null;
            }})()""")
            assert drawn == [f"{name}-{chart}" for chart in meta["charts"][name]]
            hidden = page.evaluate(
                "[...document.querySelectorAll('section.page')].filter(s => !s.hidden).map(s => s.id)"
            )
            assert hidden == [name]
            page.screenshot(shots / f"dashboard_{name}.png")
            assert (shots / f"dashboard_{name}.png").stat().st_size > 20_000
        assert page.console_errors() == []
        assert [url for url in page.requests() if not url.startswith(("file:", "data:"))] == []


def test_category_selector_switches_the_trend(page_file):
    with Browser() as browser:
        page = browser.page
        page.open(page_file)
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
