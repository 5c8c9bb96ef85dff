"""Hostile exports: a stray quote, ragged lines, odd line ends, huge fields. Each bad line costs itself only.

Every case checks the same ledger: the file's physical data lines are all
accounted for, as rows staged (and the lines their quoted line breaks
continue) or as rejected lines, each kept whole with its number and reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecom_pipeline.params import IngestParams
from ecom_pipeline.stages import ingest
from helpers import HANDWRITTEN_BATCH

ORDERS_HEADER = "order_id,customer_id,order_date,status,payment_method,shipping_address,total_amount,updated_at"


def _order(n: int, address: str = "7 Elm Rd") -> str:
    return f"ORD-{n},CUST-1,2025-02-27T14:03:00,delivered,credit_card,{address},179.80,2025-03-01T09:00:00"


@pytest.fixture
def batch(tmp_path) -> Path:
    folder = tmp_path / "in" / "2025-03-01"
    shutil.copytree(HANDWRITTEN_BATCH, folder)
    return folder


def _orders_file(batch: Path, lines: list[str], end: str = "\n") -> Path:
    path = batch / "orders.csv"
    path.write_bytes((end.join([ORDERS_HEADER, *lines]) + end).encode())
    return path


def _ingest(url: str, batch: Path, **params) -> dict[str, ingest.FileResult]:
    return {r.table: r for r in ingest.ingest(batch.parent, "r1", IngestParams(**params), url)}


def _rows(url: str, query: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def _ledger(url: str, table: str = "orders") -> tuple[int, int, int, int]:
    """(lines read, rows staged, lines continued, lines rejected) as the ingestion log holds them."""
    return _rows(
        url,
        "select lines_read, rows_staged, continued_lines, lines_rejected from staging.ingestion_log "
        "where table_name = %s",
        table,
    )[0]


def _staged_ids(url: str) -> list[str]:
    return [r[0] for r in _rows(url, "select order_id from staging.orders order by source_line")]


def _rejected(url: str) -> list[tuple]:
    return _rows(
        url,
        "select source_line, reason, raw_line, line_length from staging.rejected_lines "
        "where table_name = 'orders' order by source_line",
    )


def test_stray_quote_costs_its_own_line_only(migrated_db, batch):
    lines = [_order(n) for n in range(1, 200)]
    lines[1] = lines[1].replace("7 Elm Rd", '"7 Elm Rd')  # line 3 of the file opens a quote it never closes
    _orders_file(batch, lines)
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (199, 198, 0, 1)
    [(line, reason, raw, length)] = _rejected(migrated_db)
    assert (line, raw, length) == (3, lines[1], len(lines[1]))  # the line, whole
    assert reason.startswith("unbalanced_quote")
    assert _staged_ids(migrated_db) == [f"ORD-{n}" for n in range(1, 200) if n != 2]


def test_stray_quote_closed_by_a_later_quoted_field_costs_one_line(migrated_db, batch):
    lines = [_order(n) for n in range(1, 20)]
    lines[2] = lines[2].replace("7 Elm Rd", '"7 Elm Rd')
    lines[9] = _order(10, '"12 Main St, Apt 4"')  # its quotes would close line 4's
    _orders_file(batch, lines)
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (19, 18, 0, 1)
    assert [r[0] for r in _rejected(migrated_db)] == [4]
    assert "ORD-10" in _staged_ids(migrated_db)


def test_ragged_lines_and_an_unterminated_quote_in_customers(migrated_db, batch):
    path = batch / "customers.csv"
    good = "CUST-{n},Ian,Kerr,ian{n}@example.com,,1 High St,Leeds,,UK,2025-01-02,2025-01-02T00:00:00"
    lines = [good.format(n=n) for n in range(10, 24)]
    lines[2] = lines[2] + ",surplus"  # line 4: one field too many
    lines[5] = lines[5].replace("1 High St", '"1 High St')  # line 7: unterminated quote
    lines[8] = "CUST-18,Ian"  # line 10: too few
    path.write_text(path.read_text().splitlines()[0] + "\n" + "\n".join(lines) + "\n")
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db, "customers") == (14, 11, 0, 3)
    rejected = _rows(
        migrated_db, "select source_line, split_part(reason, ':', 1) from staging.rejected_lines order by 1"
    )
    assert rejected == [(4, "wrong_field_count"), (7, "unbalanced_quote"), (10, "wrong_field_count")]


def test_quoted_line_breaks_still_load_and_are_counted(migrated_db, batch):
    lines = [_order(1), _order(2, '"Flat 2\nHigh St\nLeeds"'), _order(3)]
    _orders_file(batch, lines)
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (5, 3, 2, 0)
    assert _rows(migrated_db, "select source_line, shipping_address from staging.orders where order_id = 'ORD-2'") == [
        (3, "Flat 2\nHigh St\nLeeds")
    ]


def test_quote_at_the_last_line_rejects_only_that_line(migrated_db, batch):
    lines = [_order(1), _order(2), _order(3, '"no end')]
    _orders_file(batch, lines)
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (3, 2, 0, 1)
    assert _rejected(migrated_db)[0][:2] == (
        4,
        "unbalanced_quote: a quoted field opened on this line is not closed before the end of file",
    )


def test_a_quote_left_open_for_more_lines_than_a_record_may_span(migrated_db, batch):
    lines = [_order(1), _order(2, '"open'), *(f"continued line {n}" for n in range(10)), _order(3)]
    _orders_file(batch, lines)
    _ingest(migrated_db, batch, max_record_lines=5)
    read, staged, continued, rejected = _ledger(migrated_db)
    assert (read, staged, continued) == (13, 2, 0) and rejected == 11
    assert (
        _rejected(migrated_db)[0][1] == "unbalanced_quote: a quoted field opened on this line is not closed "
        "within 5 lines"
    )
    assert _staged_ids(migrated_db) == ["ORD-1", "ORD-3"]


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_carriage_return_line_ends_load_every_row(migrated_db, batch, end):
    _orders_file(batch, [_order(n) for n in range(1, 6)], end=end)
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (5, 5, 0, 0)
    assert _rows(migrated_db, "select updated_at from staging.orders where order_id = 'ORD-5'") == [
        ("2025-03-01T09:00:00",)
    ]


def test_ten_megabyte_field_is_field_too_long_and_kept_up_to_the_cap(migrated_db, batch):
    huge = "x" * 10_000_000
    lines = [_order(1), _order(2, huge), _order(3)]
    _orders_file(batch, lines)
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (3, 2, 0, 1)
    [(line, reason, raw, length)] = _rejected(migrated_db)
    assert (line, reason) == (3, "field_too_long: over 10000 characters")
    assert length == len(lines[1]) and len(raw) == ingest.REJECTED_LINE_CAP and lines[1].startswith(raw)


def test_long_rejected_line_is_kept_whole(migrated_db, batch):
    ragged = _order(2, "y" * 5_000) + ",surplus," + "z" * 15_000
    _orders_file(batch, [_order(1), ragged])
    _ingest(migrated_db, batch)
    assert _rejected(migrated_db)[0][2:] == (ragged, len(ragged))


def test_file_losing_more_than_the_allowed_share_stops_the_gate_and_monitoring_warns(migrated_db, batch):
    from ecom_pipeline import db, monitoring
    from ecom_pipeline.params import MonitoringParams, QualityParams
    from ecom_pipeline.stages import quality

    lines = [_order(n) for n in range(1, 101)]
    lines[10] = lines[10].replace("7 Elm Rd", '"7 Elm Rd')
    lines[20] += ",surplus"
    _orders_file(batch, lines)
    _ingest(migrated_db, batch)
    [check] = [c for c in quality.load_checks() if c.name == "staging_file_rejected_share"]
    strict, lenient = (quality.check_values(QualityParams(max_rejected_share=s)) for s in (0.01, 0.05))
    [result] = quality.run_checks(migrated_db, [check], 1, strict)
    assert (result.rows_checked, result.rows_failing) == (4, 1)
    with pytest.raises(quality.QualityGateError, match=r"2025-03-01/orders\.csv: 2 of 100 lines rejected"):
        quality.gate([result], ["error"])
    assert quality.run_checks(migrated_db, [check], 1, lenient)[0].passed
    with db.connection(migrated_db) as conn:
        _, alerts = monitoring.check_volumes(conn, MonitoringParams())
    assert [(a.severity, a.check, a.subject) for a in alerts] == [("warning", "rejected_lines", "orders")]
    assert "2 of 100 lines of orders.csv" in alerts[0].message


hostile_line = st.one_of(
    st.binary(max_size=60),
    st.text(alphabet=st.sampled_from(list(',"\r\x00ab1 é')), max_size=40).map(str.encode),
    st.sampled_from([b'"', b'""', b'a,"b', b'"a"b', b",,,,,,,", b"\xff\xfe", b"\r", b'x,"y\r\nz"']),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inserts=st.lists(st.tuples(st.integers(0, 30), hostile_line), min_size=1, max_size=6))
def test_any_bytes_between_good_lines_never_break_the_ledger(migrated_db, tmp_path_factory, inserts):
    folder = tmp_path_factory.mktemp("any") / "2025-03-01"
    shutil.copytree(HANDWRITTEN_BATCH, folder)
    lines = [_order(n).encode() for n in range(1, 31)]
    for position, line in sorted(inserts, reverse=True):
        lines.insert(position, line.replace(b"\n", b" "))
    data = b"\n".join([ORDERS_HEADER.encode(), *lines]) + b"\n"
    (folder / "orders.csv").write_bytes(data)
    ingest.ingest(folder, "any", IngestParams(), migrated_db)
    read, staged, continued, rejected = _ledger(migrated_db)
    assert read == data.count(b"\n") - 1 == staged + continued + rejected
    assert _rows(migrated_db, "select count(*) from staging.orders where batch_id = '2025-03-01'")[0][0] == staged
    # Every good line whose neighbours are good too arrives.
    hostile = {position for position, _ in inserts}
    safe = {f"ORD-{n}" for n in range(1, 31) if n - 1 not in hostile and n - 2 not in hostile}
    assert safe <= set(_staged_ids(migrated_db))


@pytest.mark.parametrize(
    "header, message",
    [
        (ORDERS_HEADER.encode().replace(b"status", b"st\xe4tus"), "orders.csv: the header line is not valid UTF-8"),
        (ORDERS_HEADER.encode() + b",order_id", "orders.csv repeats column(s) order_id"),
    ],
    ids=["latin1_header", "repeated_column"],
)
def test_a_header_that_cannot_be_read_rejects_the_batch_and_stages_nothing(migrated_db, batch, header, message):
    (batch / "orders.csv").write_bytes(header + b"\n" + _order(1).encode() + b"\n")
    with pytest.raises(ingest.IngestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _ingest(migrated_db, batch)
    [(status, recorded)] = _rows(migrated_db, "select status, message from staging.batches")
    assert status == "rejected" and message in recorded
    assert _rows(migrated_db, "select count(*) from staging.ingestion_log") == [(0,)]  # no file of it staged


def test_a_file_cut_in_the_middle_of_a_character_loses_only_its_last_line(migrated_db, batch):
    lines = [_order(n) for n in range(1, 4)]
    path = _orders_file(batch, lines)
    path.write_bytes(path.read_bytes() + _order(4).encode() + "é".encode()[:1])  # the file ends in an é's first byte
    _ingest(migrated_db, batch)
    assert _ledger(migrated_db) == (4, 3, 0, 1)
    assert _staged_ids(migrated_db) == ["ORD-1", "ORD-2", "ORD-3"]
    [(line, reason, raw, _)] = _rejected(migrated_db)
    assert (line, reason) == (5, "invalid_utf8 at byte 90")
    assert raw == _order(4) + "\\xc3"  # kept whole, the stray byte escaped
