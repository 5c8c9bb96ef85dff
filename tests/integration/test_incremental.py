"""Fourteen nightly runs one at a time give the same production and warehouse as one run over the 14 days.

Each night is what a run does with the day's batch (ingest, clean, warehouse), with the warehouse's
invariants checked after every night; customers move, prices change and orders change status along the way.
"""

import psycopg
import pytest

from ecom_pipeline import db, migrations
from ecom_pipeline.params import GenerateParams
from ecom_pipeline.stages import generate
from layers import PRODUCTION, assert_invariants, comparable_warehouse, load, production

pytestmark = pytest.mark.slow  # whole-pipeline runs: the full suite, not the everyday loop

NIGHTS = 14
STORE = GenerateParams(
    orders=800,
    customers=200,
    products=50,
    days=30,
    seed=21,
    customer_change_rate=0.05,
    price_change_rate=0.1,
    status_change_rate=0.4,
    new_customers_per_day=4,
)


def test_fourteen_nights_one_by_one_equal_one_run_over_the_same_days(server_url, tmp_path):
    raw = tmp_path / "raw"
    batches = [generate.generate_next_batch(STORE, raw).path for _ in range(NIGHTS)]
    with db.scratch_database(server_url) as nightly, db.scratch_database(server_url) as at_once:
        for url in (nightly, at_once):
            migrations.ensure_migrated(url)
        for night, folder in enumerate(batches):
            load(nightly, folder, run_id=f"night{night:02}")
            assert_invariants(nightly)
        load(at_once, raw, run_id="all")
        assert_invariants(at_once)

        with psycopg.connect(nightly) as conn:  # the history really moved along the way
            moved = conn.execute(
                "select count(*) from (select customer_id from warehouse.dim_customer group by 1 having count(*) > 1) x"
            ).fetchone()[0]
            repriced = conn.execute(
                "select count(*) from (select product_id from warehouse.dim_product group by 1 having count(*) > 1) x"
            ).fetchone()[0]
            restated = conn.execute(
                "select count(*) from production.orders where batch_id <> "
                "(select min(batch_id) from staging.batches) and created_at < changed_at"
            ).fetchone()[0]
        assert moved > 10 and repriced > 5 and restated > 20

        production_nightly, production_at_once = production(nightly), production(at_once)
        for table in PRODUCTION:
            assert production_nightly[table] == production_at_once[table], table
        warehouse_nightly, warehouse_at_once = comparable_warehouse(nightly), comparable_warehouse(at_once)
        for table in warehouse_at_once:
            assert warehouse_nightly[table] == warehouse_at_once[table], table
