"""Declared quality checks over every layer, a gate, a proportional score and its history.

Checks are declared in ``checks.yaml`` and compiled to SQL that returns the
failing rows (zero rows = pass), in the spirit of dbt's generic tests. Every
result is stored in ``monitoring.check_results``; the run's score in
``monitoring.quality_scores``. A failing check whose severity is in
``quality.fail_on`` stops the run, after its results are stored, with a
message naming the check, the table, the count and a few failing keys.

Score: per dimension, the share of checked rows that pass (a table with 1% bad
rows scores 99 on the dimensions those rows fail); overall, the mean of the
dimensions present (each dimension weighs the same); grade A >= 95,
B >= 90, C >= 80, D >= 70, else F.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import psycopg
import yaml
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ecom_pipeline import catalogue, config, contract, db, runs
from ecom_pipeline.params import CleanParams, QualityParams
from ecom_pipeline.stages import session

if TYPE_CHECKING:  # the reports module loads plotly: imported where a report is written
    from ecom_pipeline.reports import QualityContext

log = logging.getLogger(__name__)

CHECKS_FILE = config.PACKAGE_DIR / "checks.yaml"
DIMENSIONS = (
    "completeness",
    "uniqueness",
    "validity",
    "consistency",
    "referential_integrity",
    "timeliness",
    "accuracy",
    "volume",
)
GRADES = ((95, "A"), (90, "B"), (80, "C"), (70, "D"), (0, "F"))
SAMPLE_SIZE = 5


class QualityGateError(RuntimeError):
    """A check whose severity stops the run failed."""


class Check(BaseModel):
    """One declared check; which fields it needs depends on its kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal[
        "not_null", "unique", "relationships", "accepted_values", "range", "expression", "freshness", "row_count", "sql"
    ]
    layer: Literal["staging", "production", "warehouse"]
    table: str = Field(pattern=r"^\w+\.\w+$")
    dimension: Literal[DIMENSIONS]  # type: ignore[valid-type]
    severity: Literal["error", "warn"]
    description: str
    key: str | None = None
    column: str | None = None
    columns: list[str] | None = None
    to: str | None = Field(None, pattern=r"^\w+\.\w+$")
    field: str | None = None
    values: list[str] | str | None = None  # accepted_values: a list, or ``:name`` of a catalogue list
    min: float | None = None
    max: float | None = None
    expression: str | None = None
    max_age_hours: float | None = None
    failing: str | None = None
    checked: str | None = None
    where: str | None = None  # row_count: which rows to count
    history: int | None = Field(None, ge=3)  # row_count: compare with the median of this many earlier runs
    max_change: float = Field(0.5, gt=0)  # row_count: allowed relative distance from that median

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Check:
        needs = {
            "not_null": ("key", "column"),
            "unique": ("columns",),
            "relationships": ("column", "to", "field"),
            "accepted_values": ("key", "column", "values"),
            "range": ("key", "column"),
            "expression": ("key", "expression"),
            "freshness": ("column", "max_age_hours"),
            "row_count": (),
            "sql": ("failing",),
        }[self.kind]
        missing = [f for f in needs if getattr(self, f) is None]
        if missing:
            raise ValueError(f"check {self.name} ({self.kind}) needs {', '.join(missing)}")
        if self.kind == "range" and self.min is None and self.max is None:
            raise ValueError(f"check {self.name} (range) needs min or max")
        if self.kind == "row_count" and self.min is None and self.max is None and self.history is None:
            raise ValueError(f"check {self.name} (row_count) needs min, max or history")
        return self


def load_checks(path: Path = CHECKS_FILE) -> list[Check]:
    checks = [Check.model_validate(item) for item in yaml.safe_load(path.read_text())]
    names = [c.name for c in checks]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate check names in {path}")
    return checks


def _table(name: str) -> sql.Composed:
    schema, table = name.split(".")
    return sql.Identifier(schema, table)


def check_values(p: QualityParams, clean: CleanParams | None = None) -> dict[str, Any]:
    """The values that ``:name`` placeholders of checks stand for: the catalogue's lists, the contract's
    e-mail pattern, and the parameters the checks hold the data to (clean's own tolerance among them)."""
    return {
        "email_pattern": contract.EMAIL_PATTERN,
        "max_rejected_share": p.max_rejected_share,
        "tolerance": (clean or CleanParams()).tolerance,
        "order_statuses": list(catalogue.ORDER_STATUSES),
        "payment_methods": list(catalogue.PAYMENT_METHODS),
        "categories": list(catalogue.CATEGORIES),
    }


def _accepted(check: Check, values: dict[str, Any]) -> list[str]:
    if not isinstance(check.values, str):
        return check.values
    name = check.values.removeprefix(":")
    if not isinstance(values.get(name), list):
        lists = ", ".join(f":{k}" for k, v in values.items() if isinstance(v, list))
        raise ValueError(f"check {check.name}: values {check.values} is not a known list (one of {lists})")
    return values[name]


def compile_check(check: Check, values: dict[str, Any] | None = None) -> tuple[sql.Composable, sql.Composable]:
    """(query of the failing rows' keys as column ``key``, query of the number of rows checked)."""
    values = values if values is not None else check_values(QualityParams())
    t = _table(check.table)
    col = sql.Identifier(check.column) if check.column else None
    key = sql.Identifier(check.key) if check.key else None
    count_all = sql.SQL("select count(*) from {}").format(t)
    one = sql.SQL("select 1")
    if check.kind == "not_null":
        failing = sql.SQL("select {}::text as key from {} where {} is null").format(key, t, col)
    elif check.kind == "unique":
        cols = sql.SQL(", ").join(map(sql.Identifier, check.columns))
        failing = sql.SQL(
            "select key from (select concat_ws('|', {cols}) as key, count(*) over (partition by {cols}) as copies "
            "from {t}) as counted where copies > 1"
        ).format(cols=cols, t=t)
    elif check.kind == "relationships":
        failing = sql.SQL(
            "select child.{col}::text as key from {t} as child where child.{col} is not null and not exists "
            "(select from {to} as parent where parent.{field} = child.{col})"
        ).format(col=col, t=t, to=_table(check.to), field=sql.Identifier(check.field))
    elif check.kind == "accepted_values":
        failing = sql.SQL("select {}::text as key from {} where {}::text <> all ({})").format(
            key, t, col, sql.Literal(_accepted(check, values))
        )
    elif check.kind == "range":
        low = sql.Literal(check.min if check.min is not None else float("-inf"))
        high = sql.Literal(check.max if check.max is not None else float("inf"))
        failing = sql.SQL("select {}::text as key from {} where {} < {} or {} > {}").format(key, t, col, low, col, high)
    elif check.kind == "expression":
        failing = sql.SQL("select {}::text as key from {} where not coalesce(({}), false)").format(
            key, t, db.with_literals(check.expression, values)
        )
    elif check.kind == "freshness":
        failing = sql.SQL(
            "select coalesce(max({col})::text, 'no rows') as key from {t} having max({col}) is null "
            "or max({col}) < now() - make_interval(secs => {age})"
        ).format(col=col, t=t, age=sql.Literal(check.max_age_hours * 3600))
        return failing, one
    elif check.kind == "row_count":
        return row_count_query(check, values), one
    else:
        failing = db.with_literals(check.failing, values)
        return failing, db.with_literals(check.checked, values) if check.checked else count_all
    return failing, count_all


def _where(check: Check, values: dict[str, Any]) -> sql.Composable:
    """``where`` and the check's condition (its placeholders as literals), or nothing."""
    return sql.SQL(" where {}").format(db.with_literals(check.where, values)) if check.where else sql.SQL("")


def row_count_query(check: Check, values: dict[str, Any]) -> sql.Composable:
    """The count (as ``key``) when it is out of its range, or too far from the median of earlier runs.

    With fewer earlier runs than ``history`` it says so rather than guessing:
    only the range applies.
    """
    return sql.SQL(
        """
        with counted as (select count(*) as n from {t}{where}),
        earlier as (
            select observed_value from monitoring.check_results
            where check_name = {name} and observed_value is not null
            order by checked_at desc limit {runs}
        ),
        expected as (
            select percentile_cont(0.5) within group (order by observed_value) as median, count(*) as runs
            from earlier
        )
        select counted.n::text as key from counted, expected
        where counted.n < {low} or counted.n > {high}
           or (expected.runs >= {runs} and abs(counted.n - expected.median) > {change} * expected.median)
        """
    ).format(
        t=_table(check.table),
        where=_where(check, values),
        name=sql.Literal(check.name),
        runs=sql.Literal(check.history or 0),
        low=sql.Literal(check.min if check.min is not None else 0),
        high=sql.Literal(check.max if check.max is not None else 2**62),
        change=sql.Literal(check.max_change),
    )


@dataclass
class CheckResult:
    check_name: str
    kind: str
    layer: str
    table_name: str
    dimension: str
    severity: str
    description: str
    rows_checked: int
    rows_failing: int
    failing_sample: list[str]
    duration_s: float
    observed_value: float | None = None

    @property
    def passed(self) -> bool:
        return self.rows_failing == 0


def run_check(conn: psycopg.Connection, check: Check, values: dict[str, Any] | None = None) -> CheckResult:
    failing, checked = compile_check(check, values)
    started = time.perf_counter()
    query = sql.SQL(
        "with failing as ({failing}) select (select count(*) from failing), ({checked}), "
        "(select coalesce(json_agg(key), '[]') from (select key from failing limit {n}) as sample)"
    ).format(failing=failing, checked=checked, n=sql.Literal(SAMPLE_SIZE))
    rows_failing, rows_checked, sample = conn.execute(query).fetchone()
    observed = None
    if check.kind == "row_count":
        counted = sql.SQL("select count(*) from {}{}").format(_table(check.table), _where(check, values))
        observed = conn.execute(counted).fetchone()[0]
    return CheckResult(
        check.name,
        check.kind,
        check.layer,
        check.table,
        check.dimension,
        check.severity,
        check.description,
        int(rows_checked or 0),
        int(rows_failing),
        sample,
        round(time.perf_counter() - started, 4),
        observed,
    )


def run_checks(
    url: str,
    checks: list[Check],
    workers: int,
    values: dict[str, Any] | None = None,
) -> list[CheckResult]:
    """Every check, ``workers`` at a time, each worker on a connection of its own; results in check order.

    Checks are independent read-only queries, so on a server with several cores they overlap well.
    """
    local, opened = threading.local(), []

    def run(check: Check) -> CheckResult:
        if not hasattr(local, "conn"):
            local.conn = session.connect(url, "quality", part=threading.current_thread().name)
            opened.append(local.conn)
        return run_check(local.conn, check, values)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            return list(pool.map(run, checks))
    finally:
        for conn in opened:
            conn.close()


def score(results: list[CheckResult]) -> dict[str, Any]:
    """Per-dimension share of checked rows that pass, their mean, and a grade."""
    dimensions = {}
    for dimension in DIMENSIONS:
        mine = [r for r in results if r.dimension == dimension and r.rows_checked > 0]
        if mine:
            checked = sum(r.rows_checked for r in mine)
            failing = sum(min(r.rows_failing, r.rows_checked) for r in mine)
            dimensions[dimension] = round(100 * (checked - failing) / checked, 2)
    overall = round(sum(dimensions.values()) / len(dimensions), 2) if dimensions else 0.0
    grade = next(letter for bound, letter in GRADES if overall >= bound)
    return {"overall": overall, "grade": grade, "dimensions": dimensions}


def store(conn: psycopg.Connection, run_id: str, results: list[CheckResult], scores: dict[str, Any]) -> None:
    with conn.transaction():
        conn.execute("delete from monitoring.check_results where run_id = %s", (run_id,))
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy monitoring.check_results (run_id, check_name, kind, layer, table_name, dimension, severity, "
                "description, rows_checked, rows_failing, failing_sample, duration_s, passed, observed_value) "
                "from stdin"
            ) as copy,
        ):
            for r in results:
                copy.write_row(
                    [
                        run_id,
                        r.check_name,
                        r.kind,
                        r.layer,
                        r.table_name,
                        r.dimension,
                        r.severity,
                        r.description,
                        r.rows_checked,
                        r.rows_failing,
                        json.dumps(r.failing_sample),
                        r.duration_s,
                        r.passed,
                        r.observed_value,
                    ]
                )
        conn.execute(
            "insert into monitoring.quality_scores (run_id, overall, grade, dimensions) values (%s, %s, %s, %s) "
            "on conflict (run_id) do update set overall = excluded.overall, grade = excluded.grade, "
            "dimensions = excluded.dimensions, scored_at = now()",
            (run_id, scores["overall"], scores["grade"], json.dumps(scores["dimensions"])),
        )


def score_history(conn: psycopg.Connection, limit: int = 30) -> pd.DataFrame:
    rows = conn.execute(
        "select run_id, scored_at, overall, grade from monitoring.quality_scores order by scored_at desc limit %s",
        (limit,),
    ).fetchall()
    return pd.DataFrame(rows[::-1], columns=["run_id", "scored_at", "overall", "grade"])


def gate(results: list[CheckResult], fail_on: list[str]) -> None:
    """Raise QualityGateError naming every stopping failure."""
    stopping = [r for r in results if not r.passed and r.severity in fail_on]
    if stopping:
        lines = [
            f"{r.check_name} on {r.table_name}: {r.rows_failing:,} of {r.rows_checked:,} rows fail "
            f"({r.description}); e.g. {', '.join(map(str, r.failing_sample))}"
            for r in stopping
        ]
        raise QualityGateError(f"{len(stopping)} quality check(s) stop the run:\n  " + "\n  ".join(lines))


def report_context(conn: psycopg.Connection, run_id: str) -> QualityContext:
    """What the HTML report tells beside the checks."""
    from ecom_pipeline.reports import QualityContext

    facts = db.query_file(conn, "quality/context.sql", {"run_id": run_id})[0]
    quarantine = pd.DataFrame(
        db.query_file(conn, "quality/quarantine.sql", {"run_id": run_id}),
        columns=["source_table", "reason", "rows", "examples"],
    )
    span = f"orders {facts['first_date']} to {facts['last_date']}" if facts["last_date"] else "no orders yet"
    return QualityContext(
        run_id,
        span,
        int(facts["rows_staged"]),
        int(facts["rows_quarantined"]),
        quarantine,
        dict(facts["previous_failing"]),
    )


def write_reports(
    run_id: str, results: list[CheckResult], scores: dict[str, Any], history: pd.DataFrame, context: QualityContext
) -> Path:
    """quality_report.json and quality_report.html in the run's reports folder."""
    from ecom_pipeline.reports import quality_report_html

    folder = config.run_dir(run_id) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    runs.write_json(
        folder / "quality_report.json",
        {
            "run_id": run_id,
            "score": scores,
            "checks": [{**asdict(r), "passed": r.passed} for r in results],
            "failed": [r.check_name for r in results if not r.passed],
        },
    )
    quality_report_html(folder / "quality_report.html", results, scores, history, context)
    return folder


def run_stage(p: QualityParams, run_id: str, clean: CleanParams | None = None) -> pd.DataFrame:
    """Run every check (held to ``clean``'s tolerance), store results and score, write the reports, then
    apply the gate."""
    url = session.database()
    results = run_checks(url, load_checks(), p.workers, check_values(p, clean))
    with session.connection(url, "quality") as conn:
        scores = score(results)
        store(conn, run_id, results, scores)
        history = score_history(conn)
        context = report_context(conn, run_id)
    write_reports(run_id, results, scores, history, context)
    failed = [r for r in results if not r.passed]
    runs.save_stage_result(
        run_id,
        "quality",
        {"checks": len(results), "failed": len(failed), "score": scores["overall"], "grade": scores["grade"]},
    )
    gate(results, p.fail_on)
    frame = pd.DataFrame([asdict(r) for r in results])
    return frame[["check_name", "layer", "dimension", "severity", "rows_checked", "rows_failing"]]


def score_table(run_id: str) -> pd.DataFrame:
    """This run's score by dimension."""
    with session.connection(None, "quality", part="summary") as conn:
        row = conn.execute(
            "select overall, grade, dimensions from monitoring.quality_scores where run_id = %s", (run_id,)
        ).fetchone()
    dims = row[2] if row else {}
    return pd.DataFrame(
        {
            "dimension": [*dims, "overall"],
            "score": [*dims.values(), float(row[0]) if row else None],
            "grade": [""] * len(dims) + [row[1] if row else ""],
        }
    )
