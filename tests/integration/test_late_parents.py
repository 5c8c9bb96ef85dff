"""Late-arriving parents: rows held only for a missing parent are released when a later batch brings it.

Day 1 brings order lines before their order, and an order before its customer; day 2 brings the order and
the customer. After day 2 production and the warehouse equal one batch of the same rows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import psycopg
import pytest

from ecom_pipeline import contract, db, migrations
from ecom_pipeline.params import CleanParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import clean, ingest, warehouse
from helpers import HANDWRITTEN_BATCH
from layers import assert_invariants, comparable_warehouse

LATE = {"customers": {"CUST-3"}, "orders": {"ORD-2"}}  # keys that arrive on day 2


def _rows_of(table: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO((HANDWRITTEN_BATCH / contract.file_name(table)).read_text()))
    return list(reader.fieldnames or []), list(reader)


def _write(folder: Path, keep) -> None:
    folder.mkdir(parents=True)
    for table in contract.TABLE_ORDER:
        columns, rows = _rows_of(table)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r for r in rows if keep(table, r[contract.key_column(table)]))
        (folder / contract.file_name(table)).write_text(out.getvalue())


def _load(url: str, source: Path, p: CleanParams | None = None) -> None:
    ingest.ingest(source, "r", IngestParams(), url)
    clean.clean(url, "r", p or CleanParams())
    warehouse.load(url, "r", WarehouseParams())


def _all(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


PRODUCTION = {table: f"select * from production.{table} order by 1" for table in contract.TABLE_ORDER}
WITHOUT_LINEAGE = ("batch_id", "created_at", "changed_at")


def _production(url: str) -> dict[str, list[tuple]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table, query in PRODUCTION.items():
            cur = conn.execute(query)
            keep = [i for i, c in enumerate(cur.description) if c.name not in WITHOUT_LINEAGE]
            out[table] = [tuple(row[i] for i in keep) for row in cur.fetchall()]
    return out


@pytest.fixture
def days(tmp_path) -> tuple[Path, Path, Path]:
    """(a folder of the two days, day 1, day 2) and, beside them, one batch of everything."""
    late = tmp_path / "late"
    _write(late / "2025-03-01", lambda table, key: key not in LATE.get(table, ()))
    _write(late / "2025-03-02", lambda table, key: key in LATE.get(table, ()))
    _write(tmp_path / "once" / "2025-03-01", lambda table, key: True)
    return late, tmp_path / "once"


def test_late_parents_release_their_rows_and_equal_one_batch(server_url, days):
    late, once = days
    with db.scratch_database(server_url) as nightly, db.scratch_database(server_url) as at_once:
        for url in (nightly, at_once):
            migrations.ensure_migrated(url)
        _load(nightly, late / "2025-03-01")
        held = _all(nightly, "select source_table, natural_key, reasons from production.quarantine order by 2")
        assert held == [
            ("order_items", "ITEM-2", ["ORPHAN_ORDER"]),
            ("order_items", "ITEM-3", ["ORDER_QUARANTINED"]),
            ("orders", "ORD-3", ["ORPHAN_CUSTOMER"]),
        ]
        _load(nightly, late / "2025-03-02")
        assert_invariants(nightly)
        _load(at_once, once)

        assert _all(nightly, "select count(*) from production.quarantine") == [(0,)]
        assert _production(nightly) == _production(at_once)
        assert comparable_warehouse(nightly) == comparable_warehouse(at_once)
        # Day 1 still accounts for every row it staged: the released ones are counted as such ...
        assert _all(
            nightly,
            "select table_name, staged, inserted, quarantined, released from production.clean_log "
            "where batch_id = '2025-03-01' order by 1",
        ) == [("customers", 2, 2, 0, 0), ("order_items", 3, 1, 0, 2), ("orders", 2, 1, 0, 1), ("products", 2, 2, 0, 0)]
        # ... and the record says what was held, why, and which batch let it in.
        assert _all(nightly, "select natural_key, reasons, released_batch_id from production.released order by 1") == [
            ("ITEM-2", ["ORPHAN_ORDER"], "2025-03-02"),
            ("ITEM-3", ["ORDER_QUARANTINED"], "2025-03-02"),
            ("ORD-3", ["ORPHAN_CUSTOMER"], "2025-03-02"),
        ]
        revenue = _all(nightly, "select sum(line_total) from warehouse.fact_sales")
        assert revenue == _all(at_once, "select sum(line_total) from warehouse.fact_sales")


def test_rows_held_longer_than_the_window_stay_quarantined(migrated_db, days):
    late, _ = days
    no_window = CleanParams(release_window_days=0)
    _load(migrated_db, late / "2025-03-01", no_window)
    _load(migrated_db, late / "2025-03-02", no_window)
    assert _all(migrated_db, "select natural_key from production.quarantine order by 1") == [
        ("ITEM-2",),
        ("ITEM-3",),
        ("ORD-3",),
    ]
    assert _all(migrated_db, "select count(*) from production.released") == [(0,)]


def test_cleaning_the_releasing_batch_again_changes_nothing(migrated_db, days):
    late, _ = days
    _load(migrated_db, late / "2025-03-01")
    _load(migrated_db, late / "2025-03-02")
    day_one = (
        "select table_name, staged, inserted, quarantined, released from production.clean_log "
        "where batch_id = '2025-03-01' order by 1"
    )
    held = "select batch_id, source_table, source_line, reasons from production.quarantine order by 1, 2, 3"
    released = "select batch_id, source_table, source_line, released_batch_id from production.released order by 1, 2, 3"
    before = [_production(migrated_db), *(_all(migrated_db, q) for q in (day_one, held, released))]
    with psycopg.connect(migrated_db) as conn:  # day 2 is re-staged (a changed file), so cleaned again
        conn.execute("update staging.ingestion_log set started_at = now() where batch_id = '2025-03-02'")
    assert clean.clean(migrated_db, "again", CleanParams())["batch_id"].unique().tolist() == ["2025-03-02"]
    after = [_production(migrated_db), *(_all(migrated_db, q) for q in (day_one, held, released))]
    assert after == before
