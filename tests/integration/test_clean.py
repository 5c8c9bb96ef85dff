"""Clean: every rule, every repair, exact manifest outcomes, idempotency and incremental upserts."""

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecom_pipeline import contract
from ecom_pipeline.params import CleanParams, GenerateParams, IngestParams
from ecom_pipeline.stages import clean, generate, ingest
from helpers import HANDWRITTEN_BATCH
from layers import edit, rows

PARAMS = CleanParams()


def _stage_and_clean(url: str, source: Path, run_id: str = "r1", p: CleanParams = PARAMS):
    ingest.ingest(source, run_id, IngestParams(), url)
    return clean.clean(url, run_id, p)


def _quarantine(url: str) -> dict[tuple[str, str], list[str]]:
    return {
        (t, k): sorted(r)
        for t, k, r in rows(url, "select source_table, natural_key, reasons from production.quarantine")
    }


def _snapshot(url: str) -> dict[str, list[tuple]]:
    tables = [f"production.{t}" for t in contract.TABLE_ORDER]
    out = {t: rows(url, f"select * from {t} order by 1") for t in tables}
    out["quarantine"] = rows(
        url,
        "select batch_id, source_table, source_line, natural_key, reasons, raw_values "
        "from production.quarantine order by 1, 2, 3",
    )
    return out


@pytest.fixture
def batch(tmp_path) -> Path:
    folder = tmp_path / "in" / "2025-03-01"
    shutil.copytree(HANDWRITTEN_BATCH, folder)
    return folder


def test_clean_handwritten_batch_is_all_clean(migrated_db, batch):
    counts = _stage_and_clean(migrated_db, batch.parent)
    assert counts.set_index("table")["inserted"].to_dict() == {
        "customers": 3,
        "products": 2,
        "orders": 3,
        "order_items": 3,
    }
    assert counts[["quarantined", "duplicates", "stale", "updated"]].to_numpy().sum() == 0
    assert rows(migrated_db, "select first_name, address from production.customers where customer_id = 'CUST-2'") == [
        ("Jürgen", "7 Elm Rd")
    ]
    assert rows(
        migrated_db, "select order_date::text, total_amount::text from production.orders where order_id = 'ORD-3'"
    ) == [("2025-03-01 08:00:00+00", "80.91")]


@pytest.mark.parametrize(
    "table, key, values, reasons",
    [
        ("customers", "CUST-1", {"email": "ana.souza(at)example.com"}, ["INVALID_EMAIL"]),
        ("customers", "CUST-1", {"email": "ana@.example.com"}, ["INVALID_EMAIL"]),
        ("customers", "CUST-1", {"registration_date": "2024-02-30"}, ["MALFORMED_DATE"]),
        ("customers", "CUST-1", {"updated_at": "2024-11-02T25:00:00"}, ["MALFORMED_DATE"]),
        ("customers", "CUST-1", {"first_name": "   "}, ["MISSING_VALUE"]),
        ("customers", "CUST-9", {"email": " Chloe@Example.COM "}, ["DUPLICATE_EMAIL"]),
        ("products", "SKU-A", {"price": "89,90"}, ["MALFORMED_NUMBER"]),
        ("products", "SKU-A", {"cost": "95.00"}, ["COST_ABOVE_PRICE"]),
        ("products", "SKU-A", {"price": "0", "cost": "0"}, ["NEGATIVE_AMOUNT"]),
        ("products", "SKU-A", {"stock_quantity": "many"}, ["MALFORMED_NUMBER"]),
        ("orders", "ORD-1", {"status": "lost"}, ["INVALID_STATUS"]),
        ("orders", "ORD-1", {"payment_method": "bitcoin"}, ["INVALID_PAYMENT_METHOD"]),
        ("orders", "ORD-1", {"customer_id": "CUST-404"}, ["ORPHAN_CUSTOMER"]),
        ("orders", "ORD-1", {"order_date": "2099-01-01T00:00:00"}, ["FUTURE_DATE"]),
        ("orders", "ORD-3", {"order_date": "2025-01-02T00:00:00"}, ["BEFORE_REGISTRATION"]),
        ("orders", "ORD-1", {"total_amount": "170.00"}, ["TOTAL_MISMATCH"]),
        ("orders", "ORD-1", {"order_date": "27/02/2025"}, ["MALFORMED_DATE"]),
        ("orders", "ORD-1", {"total_amount": "-179.80"}, ["NEGATIVE_AMOUNT", "TOTAL_MISMATCH"]),
        ("order_items", "ITEM-1", {"quantity": "0"}, ["INVALID_QUANTITY", "LINE_TOTAL_MISMATCH"]),
        ("order_items", "ITEM-3", {"discount_percentage": "150"}, ["INVALID_DISCOUNT", "LINE_TOTAL_MISMATCH"]),
        ("order_items", "ITEM-1", {"product_id": "SKU-X"}, ["ORPHAN_PRODUCT"]),
        ("order_items", "ITEM-9", {"order_id": "ORD-X"}, ["ORPHAN_ORDER"]),
        ("order_items", "ITEM-2", {"unit_price": "1O9.00"}, ["MALFORMED_NUMBER"]),
        # Text a loose pattern would pass but PostgreSQL's casts (or the column's precision) refuse.
        ("orders", "ORD-1", {"order_date": "2025-02-27T14:03:00+99:99"}, ["MALFORMED_DATE"]),
        ("orders", "ORD-1", {"order_date": "2025-02-27T14:03:00-16:00"}, ["MALFORMED_DATE"]),
        ("orders", "ORD-1", {"updated_at": "0000-02-28T10:00:00"}, ["MALFORMED_DATE"]),
        ("customers", "CUST-1", {"registration_date": "0000-01-01"}, ["MALFORMED_DATE"]),
        ("order_items", "ITEM-3", {"discount_percentage": "1000"}, ["MALFORMED_NUMBER"]),
        ("order_items", "ITEM-1", {"quantity": "\u0662"}, ["MALFORMED_NUMBER"]),  # an Arabic-Indic 2
        ("order_items", "ITEM-1", {"quantity": "2147483648"}, ["MALFORMED_NUMBER"]),
        ("products", "SKU-A", {"stock_quantity": "9999999999"}, ["MALFORMED_NUMBER"]),
        # Every date and timestamp column is judged against now and the earliest accepted date.
        ("customers", "CUST-1", {"updated_at": "9999-12-31T00:00:00"}, ["FUTURE_DATE"]),
        ("customers", "CUST-1", {"registration_date": "2099-01-01"}, ["FUTURE_DATE"]),
        ("products", "SKU-A", {"updated_at": "9999-12-31T23:59:59"}, ["FUTURE_DATE"]),
        ("orders", "ORD-1", {"updated_at": "9999-12-31T00:00:00"}, ["FUTURE_DATE"]),
        ("orders", "ORD-1", {"order_date": "1969-12-31T00:00:00"}, ["BEFORE_REGISTRATION", "DATE_TOO_EARLY"]),
        ("products", "SKU-A", {"updated_at": "1900-01-01T00:00:00Z"}, ["DATE_TOO_EARLY"]),
        # Values too long for a key (an index entry holds about 2,700 bytes).
        ("products", "SKU-A", {"category": "x" * 101}, ["VALUE_TOO_LONG"]),
        ("orders", "ORD-1", {"customer_id": "C" * 3000}, ["ORPHAN_CUSTOMER", "VALUE_TOO_LONG"]),
        ("customers", "CUST-1", {"email": "a@b.c" + "d" * 300}, ["INVALID_EMAIL"]),
    ],
)
def test_clean_rule_quarantines_breaking_row_only(migrated_db, batch, table, key, values, reasons):
    edit(batch, table, key, **values)
    counts = _stage_and_clean(migrated_db, batch.parent).set_index("table")
    quarantine = _quarantine(migrated_db)
    assert quarantine[(table, key)] == reasons
    # Only that row (and for an order, its lines) is quarantined; all others arrive.
    others = {k: v for k, v in quarantine.items() if k != (table, key)}
    cascades = {"ORDER_QUARANTINED", "CUSTOMER_QUARANTINED", "PRODUCT_QUARANTINED"}
    assert all(set(v) <= cascades for v in others.values()), others
    staged = counts["staged"].sum()
    assert counts[["inserted", "quarantined"]].to_numpy().sum() == staged


def test_clean_repairs_case_and_white_space(migrated_db, batch):
    edit(
        batch,
        "customers",
        "CUST-1",
        first_name=" ANA ",
        email=" Ana.Souza@EXAMPLE.com",
        state=" il",
        city="springfield",
    )
    edit(batch, "products", "SKU-A", category="  sports &  OUTDOORS ")
    edit(batch, "orders", "ORD-1", status=" Delivered ", payment_method="Credit Card")
    edit(batch, "orders", "ORD-2", payment_method="\tNET-BANKING")
    _stage_and_clean(migrated_db, batch.parent)
    assert _quarantine(migrated_db) == {}
    assert rows(
        migrated_db, "select first_name, email, state, city from production.customers where customer_id = 'CUST-1'"
    ) == [("Ana", "ana.souza@example.com", "IL", "Springfield")]
    assert rows(migrated_db, "select category from production.products where product_id = 'SKU-A'") == [
        ("Sports & Outdoors",)
    ]
    assert rows(migrated_db, "select order_id, status, payment_method from production.orders order by 1")[:2] == [
        ("ORD-1", "delivered", "credit_card"),
        ("ORD-2", "shipped", "net_banking"),
    ]


def test_clean_row_with_several_problems_lists_them_all(migrated_db, batch):
    edit(batch, "customers", "CUST-7", last_name="", email="nobody", registration_date="2025-13-01")
    _stage_and_clean(migrated_db, batch.parent)
    assert _quarantine(migrated_db)[("customers", "CUST-7")] == ["INVALID_EMAIL", "MALFORMED_DATE", "MISSING_VALUE"]
    raw = rows(migrated_db, "select raw_values, source_line from production.quarantine")[0]
    assert raw[0]["email"] == "nobody" and raw[1] == 5


def test_clean_quarantined_order_takes_its_lines_and_not_the_reverse(migrated_db, batch):
    edit(batch, "orders", "ORD-2", customer_id="CUST-404")
    edit(batch, "order_items", "ITEM-1", product_id="SKU-X")
    _stage_and_clean(migrated_db, batch.parent)
    assert _quarantine(migrated_db) == {
        ("orders", "ORD-2"): ["ORPHAN_CUSTOMER"],
        ("order_items", "ITEM-2"): ["ORDER_QUARANTINED"],
        ("order_items", "ITEM-1"): ["ORPHAN_PRODUCT"],
    }
    # ORD-1 stays although its line was quarantined (docs/csv_contract.md).
    assert rows(migrated_db, "select order_id from production.orders order by 1") == [("ORD-1",), ("ORD-3",)]


def test_clean_exact_duplicates_collapse_and_are_counted(migrated_db, batch):
    items = batch / "order_items.csv"
    items.write_text(items.read_text() + items.read_text().splitlines()[1] + "\n")
    counts = _stage_and_clean(migrated_db, batch.parent).set_index("table")
    assert counts.loc["order_items", ["staged", "inserted", "duplicates"]].tolist() == [4, 3, 1]
    assert _quarantine(migrated_db) == {}


SLICED = CleanParams(slices=3, slice_rows=0)  # every batch typed in three slices, on three connections at once
BULK = CleanParams(bulk_rows=0)  # every batch written with production's keys, indexes and foreign keys rebuilt


@pytest.mark.parametrize("p", [PARAMS, SLICED, BULK], ids=["one slice", "three slices", "bulk"])
def test_clean_generated_batch_gives_each_defect_its_outcome(migrated_db, tmp_path, p):
    params = GenerateParams(orders=3000, customers=600, products=80, days=90, seed=11)
    folder = generate.generate_next_batch(params, tmp_path / "raw").path
    counts = _stage_and_clean(migrated_db, folder.parent, p=p).set_index("table")
    manifest = json.loads((folder / "manifest.json").read_text())
    expected = {
        (d["table"], d["key"]): sorted(d["reasons"]) for d in manifest["defects"] if d["outcome"] == "quarantined"
    }
    assert _quarantine(migrated_db) == expected  # exactly these rows, with exactly these reasons
    for table in contract.TABLE_ORDER:
        collapsed = sum(1 for d in manifest["defects"] if d["table"] == table and d["outcome"] == "collapsed")
        assert counts.loc[table, "duplicates"] == collapsed
    for defect in (d for d in manifest["defects"] if d["outcome"] == "repaired"):
        table, key = defect["table"], defect["key"]
        columns = ", ".join(defect["expected"])
        got = rows(
            migrated_db, f"select {columns} from production.{table} where {contract.key_column(table)} = %s", key
        )
        assert got == [tuple(defect["expected"].values())], defect
    # Every clean row arrived.
    assert counts["staged"].sum() == (counts["inserted"] + counts["duplicates"] + counts["quarantined"]).sum()


@pytest.mark.parametrize("p", [PARAMS, SLICED], ids=["one slice", "three slices"])
def test_clean_ranks_each_key_over_all_its_rows_however_they_are_written(migrated_db, batch, p):
    # Three rows of ORD-2 whose raw ids fall in three different slices (hashed as written), and an item
    # whose first row is an orphan: whatever slice typed them, a key's rows are ranked together, and only
    # the rows valid with their parents count. The newest ORD-2 is wrong against its line; the next wins.
    with (batch / "orders.csv").open("a") as f:
        f.write("ORD-2 ,CUST-2,2025-02-28T19:45:10,delivered,upi,7 Elm Rd,150.00,2025-03-01T10:00:00\n")
        f.write("  ORD-2,CUST-2,2025-02-28T19:45:10,delivered,upi,7 Elm Rd,149.00,2025-03-01T09:00:00\n")
        f.write("ORD-4,CUST-1,2025-03-01T07:00:00,pending,wallet,12 Main St,20.00,2025-03-01T07:00:00\n")
    with (batch / "order_items.csv").open("a") as f:
        f.write("ITEM-9,ORD-404,SKU-B,1,20.00,0,20.00\n")
        f.write(" ITEM-9,ORD-4,SKU-A,1,20.00,0,20.00\n")
    raw_slices = rows(
        migrated_db,
        "select distinct mod(hashtext(v) & 2147483647, 3) from unnest(array['ORD-2', 'ORD-2 ', '  ORD-2']) v",
    )
    assert len(raw_slices) == 3  # the test's premise: as written, the three would be split

    counts = _stage_and_clean(migrated_db, batch.parent, p=p).set_index("table")

    assert counts.loc["orders", ["inserted", "stale", "quarantined"]].tolist() == [4, 1, 1]
    assert counts.loc["order_items", ["inserted", "quarantined"]].tolist() == [4, 1]
    assert _quarantine(migrated_db) == {
        ("orders", "ORD-2"): ["TOTAL_MISMATCH"],
        ("order_items", "ITEM-9"): ["ORPHAN_ORDER"],
    }
    assert rows(
        migrated_db,
        "select status, total_amount::text, updated_at::text from production.orders where order_id = 'ORD-2'",
    ) == [("delivered", "149.00", "2025-03-01 09:00:00+00")]
    assert rows(migrated_db, "select order_id from production.order_items where order_item_id = 'ITEM-9'") == [
        ("ORD-4",)
    ]


def test_clean_analyses_the_batch_partitions_and_not_every_batch(migrated_db, batch):
    # Statistics exact for the batch's own partitions; the partitioned tables themselves never analysed
    # (that would sample every batch's partition again, night after night).
    counts = _stage_and_clean(migrated_db, batch.parent).set_index("table")
    for table in contract.TABLE_ORDER:
        partition = f"staging.{ingest.partition_name(table, batch.name)}"
        got = rows(
            migrated_db,
            "select (select reltuples from pg_class where oid = %s::regclass), "
            "(select reltuples from pg_class where oid = %s::regclass)",
            partition,
            f"staging.{table}",
        )
        assert got == [(counts.loc[table, "staged"], -1)], table


def test_clean_twice_changes_nothing(migrated_db, tmp_path):
    params = GenerateParams(orders=500, customers=150, products=30, days=20)
    folder = generate.generate_next_batch(params, tmp_path / "raw").path
    _stage_and_clean(migrated_db, folder.parent)
    before = _snapshot(migrated_db)
    assert clean.clean(migrated_db, "r2", PARAMS).empty  # nothing pending
    # Re-staging the same batch and cleaning it again changes nothing either.
    with psycopg.connect(migrated_db) as conn:
        conn.execute("delete from staging.ingestion_log")
    counts = _stage_and_clean(migrated_db, folder.parent, run_id="r3").set_index("table")
    assert counts["inserted"].sum() == counts["updated"].sum() == 0
    after = _snapshot(migrated_db)
    assert after == before


@pytest.mark.parametrize("p", [PARAMS, BULK], ids=["row by row", "bulk"])
def test_clean_incremental_updates_and_late_rows(migrated_db, batch, p):
    _stage_and_clean(migrated_db, batch.parent, p=p)
    day2 = batch.parent / "2025-03-02"
    day2.mkdir()
    for table in contract.TABLE_ORDER:  # header-only files
        (day2 / contract.file_name(table)).write_text(
            (batch / contract.file_name(table)).read_text().splitlines()[0] + "\n"
        )
    edit(
        day2,
        "customers",
        "CUST-2",
        first_name="Jürgen",
        last_name="Müller",
        email="jurgen.m@example.com",
        city="Salem",
        state="OR",
        registration_date="2024-12-15",
        updated_at="2025-03-02T07:00:00",
        country="US",
    )
    edit(
        day2,
        "orders",
        "ORD-2",
        customer_id="CUST-2",
        order_date="2025-02-28T19:45:10",
        status="delivered",
        payment_method="upi",
        total_amount="149.00",
        updated_at="2025-03-02T10:00:00",
        shipping_address="7 Elm Rd",
    )
    counts = _stage_and_clean(migrated_db, batch.parent, run_id="r2", p=p).set_index("table")
    assert counts.loc["customers", "updated"] == 1 and counts.loc["orders", "updated"] == 1
    assert rows(migrated_db, "select city, batch_id from production.customers where customer_id = 'CUST-2'") == [
        ("Salem", "2025-03-02")
    ]

    day3 = batch.parent / "2025-03-03"
    shutil.copytree(day2, day3)
    # A late, older status row must not win; an identical repeat changes nothing.
    edit(day3, "orders", "ORD-2", status="processing", updated_at="2025-03-01T12:00:00")
    counts = _stage_and_clean(migrated_db, batch.parent, run_id="r3", p=p).set_index("table")
    assert counts.loc["orders", "stale"] == 1
    assert counts.loc["customers", "unchanged"] == 1
    assert rows(migrated_db, "select status from production.orders where order_id = 'ORD-2'") == [("delivered",)]
    log = rows(
        migrated_db,
        "select batch_id, table_name, staged, inserted + updated + unchanged + stale + "
        "duplicates + quarantined from production.clean_log order by 1, 2",
    )
    assert all(row[2] == row[3] for row in log) and len(log) == 12


def test_clean_bulk_batch_leaves_every_key_index_and_foreign_key_as_it_was(migrated_db, batch):
    schema = (
        "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint "
        "where connamespace = 'production'::regnamespace union all "
        "select tablename, indexname, indexdef from pg_indexes where schemaname = 'production' order by 1, 2"
    )
    before = rows(migrated_db, schema)
    assert ("production.order_items", "order_items_pkey", "PRIMARY KEY (order_item_id)") in before
    _stage_and_clean(migrated_db, batch.parent, p=BULK)
    assert rows(migrated_db, schema) == before
    with pytest.raises(psycopg.errors.UniqueViolation), psycopg.connect(migrated_db) as conn:
        conn.execute("insert into production.order_items select * from production.order_items limit 1")


def test_clean_changed_order_line_is_quarantined(migrated_db, batch):
    _stage_and_clean(migrated_db, batch.parent)
    day2 = batch.parent / "2025-03-02"
    shutil.copytree(batch, day2)
    edit(day2, "order_items", "ITEM-1", quantity="3", line_total="269.70")
    _stage_and_clean(migrated_db, batch.parent, run_id="r2")
    assert _quarantine(migrated_db)[("order_items", "ITEM-1")] == ["ITEM_CHANGED"]


def _fail_sql_file(monkeypatch, fails, message: str):
    """Make clean's ``db.run_sql_file`` raise ``message`` where ``fails(name, params)``; return the real one."""
    real = clean.db.run_sql_file

    def failing(conn, name, params=None):
        if fails(name, params):
            raise RuntimeError(message)
        return real(conn, name, params)

    monkeypatch.setattr(clean.db, "run_sql_file", failing)
    return real


def test_clean_failure_leaves_no_half_written_batch(migrated_db, batch, monkeypatch):
    ingest.ingest(batch.parent, "r1", IngestParams(), migrated_db)
    real = _fail_sql_file(monkeypatch, lambda name, params: name == "clean/order_items.sql", "database went away")
    with pytest.raises(RuntimeError, match="went away"):
        clean.clean(migrated_db, "r1", PARAMS)
    for table in ("customers", "products", "orders", "quarantine", "clean_log"):
        assert rows(migrated_db, f"select count(*) from production.{table}") == [(0,)]
    monkeypatch.setattr(clean.db, "run_sql_file", real)
    assert clean.clean(migrated_db, "r2", PARAMS)["inserted"].sum() == 11


def test_clean_failing_slice_stops_the_batch_before_production(migrated_db, batch, monkeypatch):
    ingest.ingest(batch.parent, "r1", IngestParams(), migrated_db)
    real = _fail_sql_file(
        monkeypatch,
        lambda name, params: name == "clean/orders_rows.sql" and params["slice"] == 1,
        "slice lost its connection",
    )
    with pytest.raises(RuntimeError, match="slice lost"):
        clean.clean(migrated_db, "r1", SLICED)
    for table in ("customers", "orders", "order_items", "quarantine", "clean_log"):
        assert rows(migrated_db, f"select count(*) from production.{table}") == [(0,)]
    monkeypatch.setattr(clean.db, "run_sql_file", real)
    counts = clean.clean(migrated_db, "r2", SLICED)
    assert counts["inserted"].sum() == 11
    # (Had a row been typed by two slices, or by none, the reconciled counts would have stopped the batch.)
    # The work tables are emptied after the stage.
    assert rows(migrated_db, "select count(*) from work.orders_rows") == [(0,)]


def test_clean_log_refuses_counts_that_do_not_add_up(migrated_db):
    with pytest.raises(psycopg.errors.CheckViolation):
        rows(migrated_db, "insert into production.clean_log values ('b', 'orders', 10, 5, 0, 0, 0, 0, 4, 'r', now())")


def test_squish_trims_white_space_and_never_a_letter(migrated_db):
    # PostgreSQL 15 reads E'\v' as the letter v: trimming must not eat the v of "vanessa".
    with psycopg.connect(migrated_db) as conn:
        trimmed = conn.execute(
            "select production.squish(%s), production.squish(%s), production.squish(%s)",
            ("vanessa.v@example.org v", "\x0b\t Ana \r\n\x0c\x0b", " \x0b "),
        ).fetchone()
    assert trimmed == ("vanessa.v@example.org v", "Ana", None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet="0123456789+-.eE N", max_size=9) | st.decimals(places=3).map(str))
def test_is_decimal_accepts_only_what_casts_without_rounding_or_overflow(migrated_db, value):
    # numeric(5, 2): three integer digits, two decimals. With constant digits, as the clean SQL calls it, the
    # planner folds the pattern; with digits from a column it cannot: the two must agree.
    with psycopg.connect(migrated_db) as conn:
        folded, computed = conn.execute(
            "select production.is_decimal(%(v)s, 3, 2), production.is_decimal(%(v)s, d, s) "
            "from (values (3, 2)) as digits (d, s)",
            {"v": value},
        ).fetchone()
        assert folded == computed, value
        if folded:  # accepted: the cast neither fails nor rounds
            assert conn.execute("select %(v)s::numeric(5, 2) = %(v)s::numeric", {"v": value}).fetchone()[0], value


def test_is_decimal_refuses_what_looks_numeric_but_does_not_fit(migrated_db):
    values = ["-999.99", "+0.5", "7", "1000", "100.001", "1e2", "NaN", " 1", "1.", ".5", ""]
    with psycopg.connect(migrated_db) as conn:
        got = [conn.execute("select production.is_decimal(%s, 3, 2)", (v,)).fetchone()[0] for v in values]
    assert got == [True, True, True, False, False, False, False, False, False, False, False]
