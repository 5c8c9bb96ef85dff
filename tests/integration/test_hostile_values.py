"""Property: no value in any column of any file crashes clean or the warehouse, and no row is lost.

Hypothesis writes batches whose rows are the hand-written ones with some of
their fields replaced by arbitrary text or by text that looks castable but is
not (year 0000, offsets like +99:99, numbers too wide for their column,
digits of other scripts, far-future and far-past dates). Every batch goes
through the real ingest, clean and warehouse code on a real PostgreSQL; after
each one, every staged row is accounted for and the warehouse reconciles.
"""

from __future__ import annotations

import csv
import io
import itertools
import shutil
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecom_pipeline import contract
from ecom_pipeline.params import CleanParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import clean, ingest, warehouse
from helpers import HANDWRITTEN_BATCH

# Text that passes a loose pattern but not PostgreSQL's cast or a column's range.
CAST_TRAPS = [
    "0000-01-01",
    "0000-02-28T10:00:00",
    "2025-02-29",
    "2024-02-30T00:00:00",
    "2025-03-01T10:00:00+99:99",
    "2025-03-01T10:00:00+15:60",
    "2025-03-01T10:00:00-16:00",
    "2025-03-01 24:00:00",
    "9999-12-31T23:59:59",
    "9999-12-31",
    "0001-01-01",
    "1900-01-01T00:00:00Z",
    "2025-13-01",
    "2025-03-01T10:00:00+0530",
    "1000",
    "100.01",
    "-0.01",
    "0",
    "0.00",
    "999999999",
    "9999999999",
    "99999999999",
    "2147483648",
    "-2147483649",
    "9999999999.99",
    "1e3",
    "NaN",
    "Infinity",
    "-Infinity",
    "+5",
    "0x10",
    "1,000.00",
    "١٢٣",
    "２０２５-０３-０１",
    "  12  ",
    "12.345",
    ".5",
    "5.",
    "--1",
    "",
    " ",
    "\t",
    "null",
    "NULL",
    "\\N",
    "x" * 300,
    "a@b.c" + "d" * 300,
    "é" * 2000,
]
hostile_value = st.one_of(
    st.sampled_from(CAST_TRAPS),
    st.text(max_size=40),
    st.from_regex(r"[+-]?\d{1,13}(\.\d{1,3})?", fullmatch=True),
    st.from_regex(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?", fullmatch=True),
)


def _template_rows() -> dict[str, tuple[list[str], list[dict[str, str]]]]:
    out = {}
    for table in contract.TABLE_ORDER:
        reader = csv.DictReader(io.StringIO((HANDWRITTEN_BATCH / contract.file_name(table)).read_text()))
        out[table] = (list(reader.fieldnames or []), list(reader))
    return out


TEMPLATES = _template_rows()


@st.composite
def hostile_batch(draw: st.DrawFn) -> dict[str, list[dict[str, str]]]:
    """The hand-written rows, each table with a few rows whose fields were replaced by hostile values."""
    batch = {}
    for table, (columns, rows) in TEMPLATES.items():
        out = [dict(r) for r in rows]
        for _ in range(draw(st.integers(0, 4))):
            row = dict(draw(st.sampled_from(rows)))
            for column in draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3, unique=True)):
                row[column] = draw(hostile_value)
            out.append(row)
        batch[table] = out
    return batch


def _write_batch(folder: Path, batch: dict[str, list[dict[str, str]]]) -> None:
    folder.mkdir(parents=True)
    for table, rows in batch.items():
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=TEMPLATES[table][0], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (folder / contract.file_name(table)).write_text(out.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def hostile_db(server_url):
    from ecom_pipeline import db, migrations

    with db.scratch_database(server_url, prefix="hostile") as url:
        with db.connection(url, autocommit=True) as conn:
            migrations.apply_migrations(conn)
        yield url


def _one(url: str, query: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchone()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batch=hostile_batch())
@pytest.mark.slow
def test_hostile_values_never_crash_and_every_row_is_accounted_for(hostile_db, tmp_path_factory, batch):
    batch_id = f"2025-03-{next(_BATCH_NUMBERS):06d}"
    root = tmp_path_factory.mktemp("hostile")
    _write_batch(root / batch_id, batch)
    lines = sum(path.read_bytes().count(b"\n") - 1 for path in (root / batch_id).iterdir())
    ingest.ingest(root / batch_id, "hostile", IngestParams(parallel=1), hostile_db)
    clean.clean(hostile_db, "hostile", CleanParams())
    warehouse.load(hostile_db, "hostile", WarehouseParams(date_horizon_days=0))
    shutil.rmtree(root)

    # Every physical data line of every file is staged or rejected with a reason ...
    assert (
        _one(hostile_db, "select sum(lines_read) from staging.ingestion_log where batch_id = %s", batch_id)[0] == lines
    )
    # ... and every staged row is in production, collapsed or superseded, or quarantined with reasons.
    staged, accounted = _one(
        hostile_db,
        """
        select sum(staged), sum(inserted + updated + unchanged + stale + duplicates + quarantined)
        from production.clean_log where batch_id = %s""",
        batch_id,
    )
    assert (
        staged
        == accounted
        == _one(hostile_db, "select sum(rows_staged) from staging.ingestion_log where batch_id = %s", batch_id)[0]
    )
    assert _one(hostile_db, "select count(*) from production.quarantine where reasons = '{}'")[0] == 0
    # The warehouse took the batch and agrees with production to the cent.
    assert _one(hostile_db, "select count(*) from warehouse.load_log where batch_id = %s", batch_id)[0] == 1
    revenue = {r.source: r.revenue for r in warehouse.reconciliation(hostile_db).itertuples()}
    assert len(set(revenue.values())) == 1, revenue


_BATCH_NUMBERS = itertools.count(1)


def test_the_largest_line_production_accepts_fits_the_warehouse(migrated_db, tmp_path):
    """999,999,999 units at 0.01 pass every clean rule; their cost (52.00 each) needs 11 integer digits."""
    batch = {table: [dict(r) for r in rows] for table, (_, rows) in TEMPLATES.items()}
    batch["order_items"][0].update(quantity="999999999", unit_price="0.01", line_total="9999999.99")
    batch["orders"][0].update(total_amount="9999999.99")
    _write_batch(tmp_path / "2025-03-01", batch)
    ingest.ingest(tmp_path, "big", IngestParams(), migrated_db)
    clean.clean(migrated_db, "big", CleanParams())
    for _ in range(2):  # and again: a later load still works
        warehouse.load(migrated_db, "big", WarehouseParams())
    assert _one(
        migrated_db, "select quantity, cost_amount, profit from warehouse.fact_sales where order_item_id = 'ITEM-1'"
    ) == (999_999_999, 51_999_999_948, Decimal("-51989999948.01"))
    revenue = {r.source: r.revenue for r in warehouse.reconciliation(migrated_db).itertuples()}
    assert len(set(revenue.values())) == 1, revenue
