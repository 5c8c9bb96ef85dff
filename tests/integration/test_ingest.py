"""Ingest: every kind of bad input gives a clear error or a rejected line, and every other row arrives."""

import shutil
from pathlib import Path

import psycopg
import pytest

from ecom_pipeline import contract
from ecom_pipeline.params import GenerateParams, IngestParams
from ecom_pipeline.stages import generate, ingest
from helpers import HANDWRITTEN_BATCH

PARAMS = IngestParams()


@pytest.fixture
def batch(tmp_path) -> Path:
    """A copy of the hand-written batch to spoil."""
    folder = tmp_path / "in" / "2025-03-01"
    shutil.copytree(HANDWRITTEN_BATCH, folder)
    return folder


def _ingest(url: str, source: Path, run_id: str = "r1", p: IngestParams = PARAMS) -> dict[str, ingest.FileResult]:
    return {r.table: r for r in ingest.ingest(source, run_id, p, url)}


def _rows(url: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def _count(url: str, table: str) -> int:
    return _rows(url, f"select count(*) from staging.{table}")[0][0]


def _rejected(url: str) -> list[tuple]:
    return _rows(url, "select table_name, source_line, reason from staging.rejected_lines order by 1, 2")


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def test_ingest_handwritten_batch_with_lineage(migrated_db, batch):
    results = _ingest(migrated_db, batch.parent)
    assert {t: r.rows_staged for t, r in results.items()} == {
        "customers": 3,
        "products": 2,
        "orders": 3,
        "order_items": 3,
    }
    assert all(r.load_path == "copy" for r in results.values())
    rows = _rows(
        migrated_db,
        "select customer_id, first_name, address, batch_id, run_id, source_file, source_line "
        "from staging.customers order by source_line",
    )
    assert rows[1][:2] == ("CUST-2", "Jürgen")  # non-ASCII survives
    assert rows[2][2] == '"The Old Mill", 3 River Ln'  # quoted quotes and commas survive
    assert [r[3:] for r in rows] == [("2025-03-01", "r1", "customers.csv", n) for n in (2, 3, 4)]
    log = _rows(
        migrated_db,
        "select table_name, lines_read, rows_staged, lines_rejected, length(sha256) "
        "from staging.ingestion_log order by 1",
    )
    assert log == [
        ("customers", 3, 3, 0, 64),
        ("order_items", 3, 3, 0, 64),
        ("orders", 3, 3, 0, 64),
        ("products", 2, 2, 0, 64),
    ]


def test_ingest_columns_in_any_order_and_optional_missing(migrated_db, batch):
    (batch / "products.csv").write_text(
        "price,product_id,category,product_name,cost,updated_at\n5.00,SKU-Z,Books,Atlas,2.00,2024-10-01T00:00:00\n"
    )
    _ingest(migrated_db, batch.parent)
    assert _rows(migrated_db, "select product_id, price, brand from staging.products") == [("SKU-Z", "5.00", None)]


def test_ingest_missing_required_column_rejects_batch(migrated_db, batch):
    text = (batch / "orders.csv").read_text().replace("total_amount", "amount")
    (batch / "orders.csv").write_text(text)
    with pytest.raises(ingest.IngestError, match=r"orders\.csv lacks required column\(s\) total_amount"):
        _ingest(migrated_db, batch.parent)
    assert sum(_count(migrated_db, t) for t in contract.TABLE_ORDER) == 0  # nothing of the batch loaded
    assert _rows(migrated_db, "select status from staging.batches") == [("rejected",)]


def test_ingest_missing_file_is_a_clear_error(migrated_db, batch):
    (batch / "products.csv").unlink()
    with pytest.raises(ingest.IngestError, match=r"file products\.csv is missing"):
        _ingest(migrated_db, batch.parent)


def test_ingest_missing_input_path_is_a_clear_error(migrated_db, tmp_path):
    with pytest.raises(ingest.IngestError, match="input path does not exist"):
        _ingest(migrated_db, tmp_path / "nowhere")


def test_ingest_extra_columns_are_ignored_and_reported(migrated_db, batch):
    lines = (batch / "customers.csv").read_text().splitlines()
    lines = [lines[0] + ",loyalty_tier"] + [line + ",gold" for line in lines[1:]]
    (batch / "customers.csv").write_text("\n".join(lines) + "\n")
    results = _ingest(migrated_db, batch.parent)
    assert results["customers"].extra_columns == ["loyalty_tier"]
    assert results["customers"].rows_staged == 3
    assert _rows(migrated_db, "select extra_columns from staging.ingestion_log where table_name = 'customers'") == [
        (["loyalty_tier"],)
    ]


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        (b"ITEM-9,ORD-1,SKU-A,1\n", "wrong_field_count: expected 7, got 4"),
        (b"ITEM-9,ORD-1,SKU-A,1,2.00,0,2.00,surplus\n", "wrong_field_count: expected 7, got 8"),
        (b"ITEM-9,ORD-1,SKU-\xff\xfeA,1,2.00,0,2.00\n", "invalid_utf8"),
        (b"ITEM-9,ORD-1,SKU-\x00A,1,2.00,0,2.00\n", "nul_byte"),
        (b"\n", "blank_line"),
    ],
)
def test_ingest_malformed_line_is_rejected_and_the_rest_loads(migrated_db, batch, bad_line, reason):
    items = batch / "order_items.csv"
    _append(items, bad_line)
    _append(items, b"ITEM-10,ORD-2,SKU-A,1,89.90,0,89.90\n")
    results = _ingest(migrated_db, batch.parent)
    assert results["order_items"].load_path == "parsed"
    assert results["order_items"].rows_staged == 4
    assert results["order_items"].lines_read == 5
    rejected = _rejected(migrated_db)
    assert [(t, line) for t, line, _ in rejected] == [("order_items", 5)]
    assert rejected[0][2].startswith(reason)
    assert _rows(migrated_db, "select order_item_id, source_line from staging.order_items order by source_line") == [
        ("ITEM-1", 2),
        ("ITEM-2", 3),
        ("ITEM-3", 4),
        ("ITEM-10", 6),
    ]


def test_ingest_unterminated_quote_rejects_only_what_it_swallows(migrated_db, batch):
    items = batch / "order_items.csv"
    _append(items, b'ITEM-9,ORD-1,"SKU-A,1,2.00,0,2.00\n')
    results = _ingest(migrated_db, batch.parent)
    assert results["order_items"].rows_staged == 3
    assert results["order_items"].lines_read == 4
    assert _rejected(migrated_db)[0][:2] == ("order_items", 5)


def test_ingest_field_longer_than_limit_is_rejected(migrated_db, batch):
    _append(
        batch / "customers.csv", f"CUST-9,{'A' * 500},B,x@example.com,,,,,,2025-01-01,2025-01-01T00:00:00\n".encode()
    )
    results = _ingest(migrated_db, batch.parent, p=IngestParams(max_field_length=200))
    assert results["customers"].rows_staged == 3
    assert _rejected(migrated_db)[0][2] == "field_too_long: over 200 characters"


def test_ingest_multiline_field_keeps_true_line_numbers(migrated_db, batch):
    _append(
        batch / "customers.csv",
        b'CUST-4,Ian,Kerr,ian@example.com,,"Flat 2\nHigh St",Leeds,,UK,2025-01-02,2025-01-02T00:00:00\n'
        b"CUST-5,Eve,Lamb,eve@example.com,,,York,,UK,2025-01-03,2025-01-03T00:00:00\n",
    )
    results = _ingest(migrated_db, batch.parent)
    assert results["customers"].load_path == "parsed" and results["customers"].rows_staged == 5
    assert _rows(
        migrated_db,
        "select customer_id, source_line, address from staging.customers "
        "where customer_id in ('CUST-4', 'CUST-5') order by 1",
    ) == [("CUST-4", 5, "Flat 2\nHigh St"), ("CUST-5", 7, None)]


def test_ingest_empty_and_header_only_files_load_zero_rows(migrated_db, batch):
    (batch / "products.csv").write_text("")
    (batch / "order_items.csv").write_text((batch / "order_items.csv").read_text().splitlines()[0] + "\n")
    results = _ingest(migrated_db, batch.parent)
    assert (results["products"].load_path, results["products"].lines_read) == ("empty", 0)
    assert (results["order_items"].rows_staged, results["order_items"].lines_rejected) == (0, 0)
    assert results["orders"].rows_staged == 3


def test_ingest_bom_and_crlf_are_accepted(migrated_db, batch):
    text = (batch / "orders.csv").read_text()
    (batch / "orders.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    results = _ingest(migrated_db, batch.parent)
    assert results["orders"].rows_staged == 3
    assert _rows(migrated_db, "select updated_at from staging.orders where order_id = 'ORD-3'") == [
        ("2025-03-01T08:00:00",)
    ]


def test_ingest_twice_skips_loaded_files_and_changes_nothing(migrated_db, batch):
    _ingest(migrated_db, batch.parent)
    snapshot = _rows(migrated_db, "select * from staging.orders order by order_id")
    again = _ingest(migrated_db, batch.parent, run_id="r2")
    assert {r.status for r in again.values()} == {"skipped"}
    assert _rows(migrated_db, "select * from staging.orders order by order_id") == snapshot


def test_ingest_changed_file_replaces_that_batch_rows(migrated_db, batch):
    _ingest(migrated_db, batch.parent)
    _append(batch / "orders.csv", b"ORD-4,CUST-1,2025-03-01T09:00:00,pending,upi,,0.00,2025-03-01T09:00:00\n")
    again = _ingest(migrated_db, batch.parent, run_id="r2")
    assert again["orders"].status == "loaded" and again["customers"].status == "skipped"
    assert _count(migrated_db, "orders") == 4
    assert _rows(migrated_db, "select distinct run_id from staging.orders") == [("r2",)]


def test_ingest_batches_in_date_order_and_only_new_ones_later(migrated_db, tmp_path):
    raw = tmp_path / "raw"
    params = GenerateParams(orders=300, customers=100, products=20, days=10)
    generate.generate_next_batch(params, raw)
    generate.generate_next_batch(params, raw)
    first = ingest.ingest(raw, "r1", PARAMS, migrated_db)
    assert [r.batch_id for r in first] == ["2025-01-10"] * 4 + ["2025-01-11"] * 4
    generate.generate_next_batch(params, raw)
    later = ingest.ingest(raw, "r2", PARAMS, migrated_db)
    assert [(r.batch_id, r.status) for r in later if r.status == "loaded"] == [("2025-01-12", "loaded")] * 4
    # Nothing lost: every line of every file is staged or rejected.
    for folder in sorted(p for p in raw.iterdir() if not p.name.startswith("_")):
        for table in contract.TABLE_ORDER:
            lines = len((folder / contract.file_name(table)).read_bytes().splitlines()) - 1
            staged = _rows(migrated_db, f"select count(*) from staging.{table} where batch_id = %s", folder.name)
            assert staged[0][0] == lines, (folder.name, table)


def test_ingest_reconciliation_is_enforced_by_the_log(migrated_db):
    with pytest.raises(psycopg.errors.CheckViolation):
        _rows(
            migrated_db,
            "insert into staging.ingestion_log values ('b', 'orders', 'orders.csv', 'x', 1, 10, 8, 1, "
            "'{}', 'copy', now(), 0.1, 'r')",
        )
