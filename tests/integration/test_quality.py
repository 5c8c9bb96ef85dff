"""Quality: every check kind passes and fails, the score is proportional, the gate stops the run."""

import json

import psycopg
import pytest

from ecom_pipeline.params import CleanParams, QualityParams
from ecom_pipeline.stages import quality
from ecom_pipeline.stages.quality import Check, CheckResult
from helpers import run_pipeline

BASE = {"layer": "production", "dimension": "validity", "severity": "error", "description": "test"}


@pytest.fixture
def toy(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("""
            create schema toy;
            create table toy.parent (id text primary key);
            create table toy.child (id text, parent_id text, amount numeric, status text, seen_at timestamptz);
            insert into toy.parent values ('p1'), ('p2');
            insert into toy.child values ('c1', 'p1', 10, 'ok', now()), ('c2', 'p2', 20, 'ok', now());
        """)
    return migrated_db


CASES = [
    (
        {"kind": "not_null", "key": "id", "column": "amount"},
        "insert into toy.child values ('c3', 'p1', null, 'ok', now())",
        "c3",
    ),
    ({"kind": "unique", "columns": ["id"]}, "insert into toy.child values ('c1', 'p1', 1, 'ok', now())", "c1"),
    (
        {"kind": "relationships", "column": "parent_id", "to": "toy.parent", "field": "id"},
        "insert into toy.child values ('c3', 'p9', 1, 'ok', now())",
        "p9",
    ),
    (
        {"kind": "accepted_values", "key": "id", "column": "status", "values": ["ok"]},
        "insert into toy.child values ('c3', 'p1', 1, 'lost', now())",
        "c3",
    ),
    (
        {"kind": "range", "key": "id", "column": "amount", "min": 0, "max": 100},
        "insert into toy.child values ('c3', 'p1', 101, 'ok', now())",
        "c3",
    ),
    (
        {"kind": "expression", "key": "id", "expression": "amount > 0 and status is not null"},
        "insert into toy.child values ('c3', 'p1', 5, null, now())",
        "c3",
    ),
    (
        {"kind": "freshness", "column": "seen_at", "max_age_hours": 1},
        "update toy.child set seen_at = now() - interval '2 hours'",
        None,
    ),
    ({"kind": "row_count", "min": 1, "max": 2}, "insert into toy.child values ('c3', 'p1', 1, 'ok', now())", "3"),
    (
        {"kind": "sql", "failing": "select id as key from toy.child where amount > 15 and status = 'bad'"},
        "update toy.child set status = 'bad' where id = 'c2'",
        "c2",
    ),
]


@pytest.mark.parametrize("spec, spoil, key", CASES, ids=[c[0]["kind"] for c in CASES])
def test_check_kind_passes_then_fails(toy, spec, spoil, key):
    check = Check(name=f"toy_{spec['kind']}", table="toy.child", **BASE, **spec)
    with psycopg.connect(toy, autocommit=True) as conn:
        passing = quality.run_check(conn, check)
        assert passing.passed and passing.rows_checked >= 1
        conn.execute(spoil)
        failing = quality.run_check(conn, check)
    assert not failing.passed
    assert failing.rows_failing >= 1
    if key:
        assert key in failing.failing_sample


def test_row_count_against_history(toy):
    check = Check(name="toy_history", kind="row_count", table="toy.child", history=3, max_change=0.5, **BASE)
    with psycopg.connect(toy, autocommit=True) as conn:
        for run in ("r1", "r2", "r3"):
            result = quality.run_check(conn, check)
            assert result.passed  # too little history: only the range applies
            quality.store(conn, run, [result], quality.score([result]))
        conn.execute("insert into toy.child select 'x' || g, 'p1', 1, 'ok', now() from generate_series(1, 5) as g")
        spike = quality.run_check(conn, check)
        conn.execute("delete from toy.child")
        drop = quality.run_check(conn, check)
    assert (spike.rows_failing, spike.observed_value, spike.failing_sample) == (1, 7, ["7"])
    assert (drop.rows_failing, drop.failing_sample) == (1, ["0"])


def test_check_declaration_is_validated(tmp_path):
    with pytest.raises(ValueError, match="needs column"):
        Check(name="x", kind="not_null", table="a.b", key="id", **BASE)
    with pytest.raises(ValueError, match=r"check x \(range\) needs min or max"):
        Check(name="x", kind="range", table="a.b", key="id", column="amount", **BASE)
    with pytest.raises(ValueError, match=r"check x \(row_count\) needs min, max or history"):
        Check(name="x", kind="row_count", table="a.b", **BASE)
    twice = tmp_path / "checks.yaml"
    twice.write_text(json.dumps([{"name": "x", "kind": "row_count", "table": "a.b", "min": 1, **BASE}] * 2))
    with pytest.raises(ValueError, match="duplicate check names"):
        quality.load_checks(twice)
    assert len(quality.load_checks()) >= 20


def test_checks_name_catalogue_lists_and_parameters_instead_of_copying_them(toy):
    """``values: :order_statuses`` is the catalogue's list; ``:tolerance`` is clean's parameter of the run."""
    statuses = Check(name="toy_status", kind="accepted_values", table="toy.child", key="id", column="status",
                     values=":order_statuses", **BASE)  # fmt: skip
    within = Check(name="toy_within", kind="expression", table="toy.child", key="id",
                   expression="abs(amount - round(amount)) <= :tolerance", **BASE)  # fmt: skip
    strict, lenient = (quality.check_values(QualityParams(), CleanParams(tolerance=t)) for t in (0.01, 0.5))
    with psycopg.connect(toy, autocommit=True) as conn:
        conn.execute("update toy.child set status = 'shipped', amount = 10.2 where id = 'c1'")
        named = quality.run_check(conn, statuses, strict)
        assert (
            quality.run_check(conn, within, strict).rows_failing,
            quality.run_check(conn, within, lenient).passed,
        ) == (1, True)
    assert named.failing_sample == ["c2"]  # 'ok' is not an order status; 'shipped' is
    unknown = Check(**{**statuses.model_dump(), "values": ":order_colours"})
    with pytest.raises(ValueError, match=r"values :order_colours is not a known list \(one of :order_statuses"):
        quality.compile_check(unknown, strict)
    checks = quality.load_checks()
    assert {c.values for c in checks if c.kind == "accepted_values"} == {":order_statuses"}
    assert all("0.01" not in (c.expression or "") + (c.failing or "") for c in checks)


def _result(dimension: str, checked: int, failing: int, severity: str = "warn") -> CheckResult:
    return CheckResult("c", "expression", "staging", "t.t", dimension, severity, "d", checked, failing, ["k"], 0.0)


def test_score_is_proportional_to_failing_rows():
    scores = quality.score(
        [_result("validity", 1000, 10), _result("validity", 1000, 0), _result("completeness", 500, 0)]
    )
    assert scores["dimensions"] == {"completeness": 100.0, "validity": 99.5}
    assert scores["overall"] == 99.75 and scores["grade"] == "A"
    assert quality.score([_result("accuracy", 100, 40)])["grade"] == "F"


def test_gate_stops_on_chosen_severities_only():
    warn, error = _result("validity", 10, 1), _result("accuracy", 10, 2, severity="error")
    quality.gate([warn], ["error"])  # a warning alone does not stop
    with pytest.raises(quality.QualityGateError, match=r"c on t\.t: 2 of 10 rows fail .* e\.g\. k"):
        quality.gate([warn, error], ["error"])
    with pytest.raises(quality.QualityGateError):
        quality.gate([warn], ["error", "warn"])


def _score(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute("select overall, dimensions from monitoring.quality_scores").fetchone()


@pytest.mark.slow
def test_clean_generated_run_scores_100(fresh_db, outputs):
    done = run_pipeline("--params", "params/small.yaml", "--set", "generate.defect_rate=0")
    assert done.returncode == 0, done.stderr
    overall, dimensions = _score(fresh_db)
    assert float(overall) == 100.0 and set(dimensions.values()) == {100.0}
    report = json.loads(next(outputs.glob("runs/*/reports/quality_report.json")).read_text())
    assert report["failed"] == [] and report["score"]["grade"] == "A"
    html = next(outputs.glob("runs/*/reports/quality_report.html")).read_text()
    assert 'id="quality-by-dimension"' in html and "No check fails." in html and "Nothing quarantined." in html
    assert "status</dt><dd class='status-passed'>passed</dd>" in html


@pytest.mark.slow
def test_known_defects_lower_staging_scores_by_their_share(fresh_db, outputs):
    done = run_pipeline("--params", "params/small.yaml")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(fresh_db) as conn:
        failed = dict(
            conn.execute("select check_name, rows_failing from monitoring.check_results where not passed").fetchall()
        )
        quarantined_items = conn.execute(
            "select count(*) from production.quarantine where source_table = "
            "'order_items' and 'INVALID_QUANTITY' = any (reasons)"
        ).fetchone()[0]
    # Only staging (warn) checks fail, each by exactly the injected defects.
    assert set(failed) <= {
        "staging_customer_email_valid",
        "staging_order_item_quantity_positive",
        "staging_order_unique_per_batch",
        "staging_order_total_is_money",
    }
    assert failed["staging_order_item_quantity_positive"] == quarantined_items
    _, dimensions = _score(fresh_db)
    assert 99 < dimensions["validity"] < 100


@pytest.mark.slow
def test_error_failure_stops_the_run_and_keeps_results(fresh_db, outputs):
    assert run_pipeline("--params", "params/small.yaml").returncode == 0
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            "update warehouse.agg_daily_sales set revenue = revenue + 1 "
            "where date_key = (select min(date_key) from warehouse.agg_daily_sales)"
        )
    done = run_pipeline("--params", "params/small.yaml", "--only", "quality")
    assert done.returncode == 1
    assert (
        "QualityGateError" in done.stderr
        and "warehouse_daily_sales_reconcile on warehouse.agg_daily_sales" in done.stderr
    )
    with psycopg.connect(fresh_db) as conn:
        stored = conn.execute(
            "select rows_failing, passed from monitoring.check_results "
            "where check_name = 'warehouse_daily_sales_reconcile' order by checked_at"
        ).fetchall()
    assert stored == [(0, True), (1, False)]
