"""The bi schema as BI tools see it: the star, its descriptions, the data dictionary, personal data off."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from ecom_pipeline import db, dictionary
from ecom_pipeline.params import CleanParams, GenerateParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import clean, generate, ingest, session, warehouse
from helpers import REPO

PERSONAL = ("first_name", "last_name", "full_name", "customer_name", "email", "phone", "address", "shipping_address")
BI_COLUMNS = """
select c.relname, a.attname, obj_description(c.oid, 'pg_class'), col_description(c.oid, a.attnum)
from pg_class as c
join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.relnamespace = 'bi'::regnamespace
"""


def _columns(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(BI_COLUMNS).fetchall()


def test_the_data_dictionary_is_the_database_s_comments(migrated_db):
    with db.connection(migrated_db, autocommit=True) as conn:
        rendered = dictionary.render(conn)
    assert rendered == (REPO / "docs" / "data_dictionary.md").read_text(), (
        "docs/data_dictionary.md is out of date: python -m ecom_pipeline.dictionary"
    )


def test_every_bi_view_and_column_is_described_and_none_is_personal(migrated_db):
    rows = _columns(migrated_db)
    assert len({r[0] for r in rows}) == 13
    assert [(view, column) for view, column, view_note, note in rows if not view_note or not note] == []
    assert [(view, column) for view, column, *_ in rows if column in PERSONAL] == []


def _load(url: str, tmp_path, personal: bool) -> None:
    store = GenerateParams(orders=400, customers=80, products=20, days=20, seed=3)
    folder = generate.generate_next_batch(store, tmp_path / "raw").path
    ingest.ingest(folder, "r", IngestParams(), url)
    clean.clean(url, "r", CleanParams())
    warehouse.load(url, "r", WarehouseParams(bi_personal_data=personal))


def test_the_star_joins_on_its_keys_to_the_flat_view_s_numbers(migrated_db, tmp_path):
    _load(migrated_db, tmp_path, personal=False)
    with psycopg.connect(migrated_db) as conn:
        flat = conn.execute("select count(*), sum(revenue), sum(quantity) from bi.sales").fetchone()
        star = conn.execute("""
            select count(*), sum(f.revenue), sum(f.quantity)
            from bi.fact_sales as f
            join bi.dim_date as d using (date_key)
            join bi.dim_customer as c using (customer_key)
            join bi.dim_product as p using (product_key)
            join bi.dim_status as s using (status_key)
            join bi.dim_payment_method as m using (payment_method_key)
        """).fetchone()
        assert flat[0] > 0 and star == flat
        by_region = conn.execute("select region, sum(revenue) from bi.sales group by 1 order by 1").fetchall()
        assert (
            conn.execute("""
            select c.region, sum(f.revenue) from bi.fact_sales as f join bi.dim_customer as c using (customer_key)
            group by 1 order by 1""").fetchall()
            == by_region
        )
        assert conn.execute("select to_regclass('bi.customer_personal_data')").fetchone()[0] is None


def test_personal_data_is_in_bi_only_while_the_parameter_is_on(migrated_db, tmp_path):
    _load(migrated_db, tmp_path, personal=True)
    with psycopg.connect(migrated_db) as conn:
        names = conn.execute("select count(*), count(email) from bi.customer_personal_data").fetchone()
        customers = conn.execute("select count(*) from warehouse.dim_customer where customer_key > 0").fetchone()[0]
        assert names == (customers, customers) and customers > 0
        assert conn.execute("select has_table_privilege('ecom_bi', 'bi.customer_personal_data', 'select')").fetchone()[
            0
        ]
    warehouse.load(migrated_db, "r2", WarehouseParams(bi_personal_data=False))
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("select to_regclass('bi.customer_personal_data')").fetchone()[0] is None
        assert conn.execute("select has_table_privilege('ecom_bi', 'bi.sales', 'select')").fetchone()[0]
        assert not conn.execute("select has_table_privilege('ecom_bi', 'warehouse.dim_customer', 'select')").fetchone()[
            0
        ]


def test_pandas_reads_bi_through_the_project_s_engine(migrated_db, tmp_path):
    import pandas as pd

    _load(migrated_db, tmp_path, personal=False)
    engine = db.engine(migrated_db)
    try:
        frame = pd.read_sql("select * from bi.daily_sales order by sales_date", engine, coerce_float=False)
        settings = pd.read_sql(
            "select current_setting('jit') as jit, current_setting('application_name') as app", engine
        )
    finally:
        engine.dispose()
    with psycopg.connect(migrated_db) as conn:
        days, revenue = conn.execute("select count(*), sum(revenue) from warehouse.agg_daily_sales").fetchone()
    assert len(frame) == days > 0 and frame["revenue"].sum() == revenue  # to the cent: numeric stays Decimal
    assert settings.to_dict("records") == [{"jit": "off", "app": "ecom_pipeline notebook"}]


def test_stage_frames_carry_the_stage_session_and_keep_exact_values(migrated_db):
    """What the notebooks' tables are read through: the stage's settings, exact numerics, columns always."""
    with session.frames(migrated_db, "clean", part="summary") as conn:
        settings = db.read_frame(
            conn,
            "select current_setting('timezone') as tz, current_setting('work_mem') as work_mem, "
            "current_setting('application_name') as app, :amount::numeric(12, 2) as amount",
            {"amount": "0.10"},
        )
        empty = db.read_frame(conn, "select 1 as one, 'x' as two where false")
    assert settings.to_dict("records") == [
        {"tz": "UTC", "work_mem": "256MB", "app": "ecom_pipeline clean summary", "amount": Decimal("0.10")}
    ]
    assert list(empty.columns) == ["one", "two"] and empty.empty


@pytest.mark.parametrize("value", ["UTC", "two words", "a \\ backslash", "trailing space "])
def test_connection_settings_arrive_as_given(migrated_db, value):
    """Settings travel in libpq's options, where a space or a backslash would otherwise split or vanish."""
    with db.connection(migrated_db, settings={"ecom.note": value}) as conn:
        assert conn.execute("select current_setting('ecom.note')").fetchone()[0] == value
