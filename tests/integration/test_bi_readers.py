"""A BI user reading the bi views during a run gets the last published state, and never waits on a lock.

A reader polls the bi views, giving up on any lock it cannot get within a second, while clean (on its bulk
path) and the warehouse load a large first batch and then a large second one. Every answer must be one of
the published states, never a half-written warehouse, and no query may have waited for a lock.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from ecom_pipeline.params import CleanParams, GenerateParams, IngestParams, WarehouseParams
from ecom_pipeline.stages import clean, generate, ingest, warehouse

STORE = GenerateParams(orders=12_000, customers=1_500, products=80, days=60, next_days=30, seed=5)
READ = """
select (select count(*) from bi.sales), (select coalesce(sum(revenue), 0) from bi.daily_sales),
       (select count(*) from bi.customers)
"""


class Reader(threading.Thread):
    """Polls READ on its own connection until stopped; keeps every answer and every error."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.errors = url, [], []
        self.stopping = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("set lock_timeout = '1s'")
            conn.execute("set statement_timeout = '10s'")
            while not self.stopping.is_set():
                try:
                    self.answers.append(conn.execute(READ).fetchone())
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                self.stopping.wait(0.05)


def _published(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(READ).fetchone()


def _load_while_reading(url: str, folder) -> tuple[Reader, tuple, tuple]:
    before = _published(url)
    reader = Reader(url)
    reader.start()
    try:
        ingest.ingest(folder, "r", IngestParams(), url)
        clean.clean(url, "r", CleanParams(bulk_rows=0))  # the bulk path: indexes and foreign keys rebuilt
        warehouse.load(url, "r", WarehouseParams())
    finally:
        reader.stopping.set()
        reader.join(timeout=30)
    return reader, before, _published(url)


@pytest.mark.slow
def test_bi_readers_see_the_last_published_state_and_never_wait(migrated_db, tmp_path):
    raw = tmp_path / "raw"
    for _ in range(2):  # a large first batch, then a large second one
        folder = generate.generate_next_batch(STORE, raw).path
        reader, before, after = _load_while_reading(migrated_db, folder)
        assert reader.errors == [], reader.errors
        assert len(reader.answers) >= 5  # the reader really read while the stages ran
        assert set(reader.answers) <= {before, after}, set(reader.answers) - {before, after}
        assert after != before and after[0] > 0
