"""How the reports write amounts and sizes."""

import pytest

from ecom_pipeline.reports import Money, size


@pytest.mark.parametrize(
    "currency, value, decimals, shown",
    [
        ("USD", 49558335.4, 0, "$49,558,335"),
        ("USD", 547.444, 2, "$547.44"),
        ("EUR", -12.5, 2, "-€12.50"),
        ("CHF", 1234, 0, "1,234 CHF"),  # no symbol known: the code after the amount
        ("USD", None, 0, "–"),
        ("USD", float("nan"), 0, "–"),
    ],
)
def test_money_says_its_currency(currency, value, decimals, shown):
    assert Money(currency)(value, decimals) == shown


def test_money_on_an_axis_and_in_a_hover():
    assert Money("GBP").axis() == {"tickformat": "~s", "tickprefix": "£"}
    assert Money("SEK").axis() == {"tickformat": "~s", "ticksuffix": " SEK"}
    assert Money("USD").hover("y", 2) == "$%{y:,.2f}"
    assert Money("SEK").hover("x") == "%{x:,.0f} SEK"


@pytest.mark.parametrize(
    "n_bytes, shown", [(198358719, "198.4 MB"), (1.7e9, "1.7 GB"), (5602, "5.6 kB"), (12, "12 B"), (None, "–")]
)
def test_sizes_are_written_for_people(n_bytes, shown):
    assert size(n_bytes) == shown


def test_the_quality_report_separates_this_run_and_shows_its_quarantine(tmp_path):
    import pandas as pd

    from ecom_pipeline.reports import QualityContext, quality_report_html
    from ecom_pipeline.stages.quality import CheckResult, score

    def result(name, failing, sample, severity="warn"):
        return CheckResult(
            name,
            "sql",
            "staging",
            "staging.orders",
            "uniqueness",
            severity,
            f"{name} holds",
            1000,
            failing,
            sample,
            0.01,
        )

    results = [result("dupes", 3, ["O1", "O1", "O2"]), result("fine", 0, [])]
    quarantine = pd.DataFrame(  # 13 reasons on 12 rows: one order has two
        [("orders", "MALFORMED_NUMBER", 12, "O7, O9"), ("orders", "BAD_STATUS", 1, "O7")],
        columns=["source_table", "reason", "rows", "examples"],
    )
    context = QualityContext("r2", "orders 2025-01-01 to 2025-01-02", 1000, 12, quarantine, {"dupes": 1})
    history = pd.DataFrame({"run_id": ["r1", "r2"], "overall": [99.0, 99.5]})
    page = quality_report_html(tmp_path / "quality_report.html", results, score(results), history, context)
    text = page.read_text()
    failing, passing = text.split("<h2>Failing in this run</h2>")[1].split("<h2>Passing</h2>")
    assert "dupes" in failing and "fine" not in failing and "fine" in passing
    assert "<td>O1, O2</td>" in failing  # each example key once
    assert "<td class='num'>2</td>" in failing  # 3 failing now, 1 in the run before: 2 new
    assert "12 of 1,000 rows staged by this run (1.2%)" in text  # rows, not reasons
    assert "MALFORMED_NUMBER" in text and "O7, O9" in text
    assert "status</dt><dd class='status-warn'>warn (1 failing)</dd>" in text
    assert (tmp_path / "plotly.min.js").exists() and "<script src='plotly.min.js'>" in text


def test_keys_from_the_input_are_shown_as_text_never_as_markup(tmp_path):
    """A quarantined row's key and a failing example come from the files: they are escaped in the page."""
    import pandas as pd

    from ecom_pipeline.reports import QualityContext, quality_report_html
    from ecom_pipeline.stages.quality import CheckResult, score

    hostile = "<script>alert('x')</script>\"'"
    results = [
        CheckResult("dupes", "sql", "staging", "staging.orders", "uniqueness", "warn", "d", 10, 1, [hostile], 0.0)
    ]
    quarantine = pd.DataFrame(
        [("orders", "MALFORMED_NUMBER", 1, hostile)], columns=["source_table", "reason", "rows", "examples"]
    )
    context = QualityContext("r1", "orders", 10, 1, quarantine, {})
    history = pd.DataFrame({"run_id": ["r1"], "overall": [99.0]})
    text = quality_report_html(tmp_path / "q.html", results, score(results), history, context).read_text()
    assert "<script>alert" not in text
    assert text.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&#x27;") == 2
