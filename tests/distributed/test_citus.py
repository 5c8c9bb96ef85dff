"""The pipeline on a Citus cluster: the schema distributed as ``distribution.PLACEMENTS`` states, and the same
answers as on one server (every production and warehouse table, the quarantine, every aggregate to the cent,
the quality checks), for generated days loaded one by one and a hand-written export."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ecom_pipeline import checksums, db, distribution, migrations
from ecom_pipeline.stages import quality
from helpers import HANDWRITTEN, REPO, run_pipeline
from layers import assert_invariants, comparable_warehouse, production

SMALL = "params/small.yaml"


def _placements(url: str) -> dict[str, tuple[str | None, int]]:
    """Table -> (distribution column, colocation group) of what Citus has placed (column None: reference)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey), colocationid "
            "from pg_dist_partition where partmethod = 'h' or repmodel = 't'"
        ).fetchall()
    return {table: (column, group) for table, column, group in rows}


def test_the_schema_is_distributed_as_stated_once(cluster_db):
    with db.connection(cluster_db, autocommit=True) as conn:
        migrations.apply_migrations(conn, distributed=True)
        placed = _placements(cluster_db)
        assert {t: c for t, (c, _) in placed.items()} == {p.table: p.column for p in distribution.PLACEMENTS}
        orders_group = placed["production.orders"][1]
        for p in distribution.PLACEMENTS:
            if p.colocate_with:
                assert placed[p.table][1] == orders_group, p.table
        # Every unique key of a distributed table holds its distribution column.
        keys = conn.execute(
            """
            select i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            from pg_index as i join pg_dist_partition as d on d.logicalrelid = i.indrelid
            where i.indisunique and d.partmethod = 'h'
              and not column_to_column_name(d.logicalrelid, d.partkey) = any (
                  select a.attname from pg_attribute as a
                  where a.attrelid = i.indrelid and a.attnum = any (i.indkey))
            """
        ).fetchall()
        assert keys == []
        # The foreign key between the colocated tables was made again after they were placed.
        assert (
            conn.execute(
                "select count(*) from pg_constraint where conrelid = 'production.order_items'::regclass "
                "and confrelid = 'production.orders'::regclass and contype = 'f'"
            ).fetchone()[0]
            == 1
        )
        assert distribution.distribute(conn) == []  # once only


def test_nothing_is_distributed_when_turned_off(cluster_db):
    with db.connection(cluster_db, autocommit=True) as conn:
        migrations.apply_migrations(conn)
        assert distribution.local_tables(conn, ["production.orders"]) == ["production.orders"]
    assert _placements(cluster_db) == {}


def _quality(url: str) -> list[tuple]:
    """Each check of the last run: whether it passed and how many rows failed it."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select check_name, passed, rows_checked, rows_failing from monitoring.check_results "
            "where run_id = (select max(run_id) from monitoring.check_results) order by check_name"
        ).fetchall()


def _run(url: str, outputs: Path, *args: str) -> int:
    done = run_pipeline(*args, env={"DATABASE_URL": url, "PIPELINE_OUTPUTS": str(outputs)})
    assert done.returncode in (0, 4), done.stderr[-3000:]
    return done.returncode


def _assert_same(cluster_url: str, server_url: str) -> None:
    on_cluster, on_server = checksums.checksums(cluster_url), checksums.checksums(server_url)
    assert on_cluster.keys() == on_server.keys()
    differ = {t: (on_cluster[t], on_server[t]) for t in on_cluster if on_cluster[t] != on_server[t]}
    assert differ == {}
    assert _quality(cluster_url) == _quality(server_url)


@pytest.mark.slow
def test_days_loaded_one_by_one_give_the_same_answers_and_equal_all_at_once(cluster_db, server_url, tmp_path):
    """Three runs of the small parameters on the cluster (a first batch, then a day each): the same as the same
    three batches run one by one on one server, and as all three at once (the invariant of
    test_incremental.py); then the same files again on the cluster change nothing."""
    on_cluster = tmp_path / "cluster"
    codes = [_run(cluster_db, on_cluster, "--params", SMALL) for _ in range(3)]
    raw = on_cluster / "raw"
    batches = sorted(batch for batch in raw.iterdir() if not batch.name.startswith("_"))
    assert len(batches) == 3
    with db.scratch_database(server_url) as nightly, db.scratch_database(server_url) as at_once:
        server_codes = [_run(nightly, tmp_path / "n", "--params", SMALL, "--input", str(b)) for b in batches]
        assert server_codes == codes
        _assert_same(cluster_db, nightly)
        with psycopg.connect(cluster_db) as conn:  # defects were generated, and quarantined alike
            assert conn.execute("select count(*) from production.quarantine").fetchone()[0] > 0
            for table in ("production.order_items", "warehouse.fact_sales"):  # unique without a key saying so
                assert (
                    conn.execute(
                        f"select count(*) from (select order_item_id from {table} group by 1 having count(*) > 1) as x"
                    ).fetchone()[0]
                    == 0
                )
        _run(at_once, tmp_path / "a", "--params", SMALL, "--input", str(raw))
        assert production(cluster_db) == production(at_once)
        assert comparable_warehouse(cluster_db) == comparable_warehouse(at_once)
    assert_invariants(cluster_db)
    before = checksums.checksums(cluster_db)
    _run(cluster_db, on_cluster, "--params", SMALL, "--input", str(raw))
    assert checksums.checksums(cluster_db) == before
    assert set(_placements(cluster_db)) == {p.table for p in distribution.PLACEMENTS}


@pytest.mark.slow
def test_a_handwritten_export_gives_the_same_answers(cluster_db, server_url, tmp_path):
    source = tmp_path / "export"
    shutil.copytree(HANDWRITTEN, source)
    with db.scratch_database(server_url) as single:
        codes = {_run(url, tmp_path / name, "--input", str(source)) for name, url in [("c", cluster_db), ("s", single)]}
        assert len(codes) == 1
        _assert_same(cluster_db, single)
        with psycopg.connect(cluster_db) as conn:
            assert conn.execute("select count(*) from warehouse.fact_sales").fetchone()[0] > 0


@pytest.mark.slow
def test_the_default_parameters_give_the_same_answers(cluster_db, server_url, tmp_path):
    with db.scratch_database(server_url) as single:
        for name, url in [("c", cluster_db), ("s", single)]:
            _run(url, tmp_path / name, "--params", str(REPO / "params" / "default.yaml"))
        _assert_same(cluster_db, single)


def _made_by(path: str, table: str) -> str:
    """The select of ``create ... table <table> ... as <select>;`` in one of the project's SQL files."""
    text = db.read_sql(path)
    return re.search(rf"create (?:temp|unlogged) table {table}[^\n]* as\n(.*?);", text, re.S)[1]


@pytest.mark.slow
def test_the_big_reads_run_on_every_shard(cluster_db, tmp_path):
    """The analytics' scans of the fact table and the check of each order's total against its lines: one task
    per shard, grouped there, nothing repartitioned."""
    _run(cluster_db, tmp_path, "--params", SMALL)
    check = next(c for c in quality.load_checks() if c.name == "production_order_total_matches_lines")
    statements = {
        "analytics_orders": _made_by("analytics/orders.sql", "analytics_orders"),
        "analytics_lines": _made_by("analytics/orders.sql", "analytics_lines"),
        check.name: db.with_literals(check.failing, {"tolerance": 0.01}),
    }
    with psycopg.connect(cluster_db) as conn:
        shards = conn.execute(
            "select count(*) from pg_dist_shard where logicalrelid = 'warehouse.fact_sales'::regclass"
        ).fetchone()[0]
        assert shards > 1
        for name, statement in statements.items():
            query = statement.as_string(conn) if isinstance(statement, sql.Composable) else statement
            plan = "\n".join(row[0] for row in conn.execute("explain " + query))
            assert "Custom Scan (Citus Adaptive)" in plan, name
            assert f"Task Count: {shards}" in plan, (name, plan)
            assert "repartition" not in plan.lower() and "Pull to coordinator" not in plan, (name, plan)
