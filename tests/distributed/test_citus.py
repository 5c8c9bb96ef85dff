"""The pipeline on a Citus cluster: the schema distributed as ``distribution.PLACEMENTS`` states, and the same
answers as on one server (every production and warehouse table, the quarantine, every aggregate to the cent,
the quality checks), for generated days loaded one by one and a hand-written export; and the quality gate
stops a run there as on one server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ecom_pipeline import checksums, db, distribution, migrations
from ecom_pipeline.params import WarehouseParams
from ecom_pipeline.stages import quality, warehouse
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


def _pipeline(url: str, outputs: Path, *args: str) -> subprocess.CompletedProcess:
    """``run_all.py ARGS`` on the database ``url``, its records under ``outputs``."""
    return run_pipeline(*args, env={"DATABASE_URL": url, "PIPELINE_OUTPUTS": str(outputs)})


def _run(url: str, outputs: Path, *args: str) -> int:
    """:func:`_pipeline`, which must end done (0) or degraded (4, warnings); its exit code."""
    done = _pipeline(url, outputs, *args)
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


@pytest.mark.slow
def test_the_quality_gate_stops_a_run_on_the_cluster(cluster_db, tmp_path):
    """An order line changed by hand on its shard (its total no longer follows from quantity, price and
    discount) fails an error check as on one server: the run stops at the gate, naming the check and its
    table, and the result is kept with the one failing row."""
    _run(cluster_db, tmp_path, "--params", SMALL, "--to", "warehouse")
    with psycopg.connect(cluster_db) as conn:
        order_id, item_id = conn.execute(
            "select order_id, order_item_id from production.order_items order by order_item_id limit 1"
        ).fetchone()
        conn.execute(
            "update production.order_items set line_total = line_total + 1 where order_id = %s and order_item_id = %s",
            (order_id, item_id),
        )
    done = _pipeline(cluster_db, tmp_path, "--params", SMALL, "--only", "quality")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "QualityGateError" in done.stderr, done.stderr[-3000:]
    assert "production_line_total_formula on production.order_items" in done.stderr, done.stderr[-3000:]
    with psycopg.connect(cluster_db) as conn:
        stored = conn.execute(
            "select rows_failing, passed from monitoring.check_results where check_name = %s",
            ("production_line_total_formula",),
        ).fetchall()
    assert stored == [(1, False)]


def _made_by(path: str, table: str) -> str:
    """The select of ``create ... table <table> ... as <select>;`` in one of the project's SQL files."""
    text = db.read_sql(path)
    return re.search(rf"create (?:temp|unlogged) table {table}[^\n]* as\n(.*?);", text, re.S)[1]


def _decisions(table: str) -> sql.Composed:
    """The select of clean/<table>.sql that decides each staged row's action, for a batch."""
    create = f"create unlogged table work.clean_{table} as\n"
    made = next(s for s in _statements(db.read_sql(f"clean/{table}.sql")) if s.lstrip().startswith(create))
    select = made.lstrip().removeprefix(create).rstrip().removesuffix(";")
    return db.with_literals(select, {"batch_id": "2025-01-01", "retry_lines": None, "tolerance": 0.01})


def _tables_pulled_whole(plan: str) -> list[str]:
    """The intermediate results of a plan that scan shards of orders or lines with no keys sent to them:
    a table of the cluster brought to the coordinator whole."""
    before_own_tasks = re.split(r"^  Task Count: ", plan, flags=re.M)[0]
    subplans = re.split(r"^  ->  Distributed Subplan ", before_own_tasks, flags=re.M)[1:]
    shards = re.compile(r" on (?:orders|order_items)_\d+ ")
    return [p.split()[0] for p in subplans if shards.search(p) and "read_intermediate_result" not in p]


class _Abandon(Exception):
    """Ends the load whose writes were explained, before it commits."""


def _statements(script: str) -> list[str]:
    """The statements of one of the project's SQL scripts (each ends a line with ``;``), comments left out."""
    statements, lines = [], []
    for line in script.splitlines(keepends=True):
        if not line.lstrip().startswith("--"):
            lines.append(line)
            if line.rstrip().endswith(";"):
                statements.append("".join(lines))
                lines = []
    return statements


def _warehouse_write_plans(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The plan of every statement of a warehouse load that writes to a table the cluster distributes, by
    table. The load runs as it would, statement by statement, and is rolled back at its end: each write is
    explained there, with the work tables it reads still in place (an EXPLAIN in mid-load reaches the nodes
    over connections of its own, after which Citus no longer lets the load join them to the coordinator's
    uncommitted work tables)."""
    execute_sql, writes = db.execute_sql, []

    def statement_by_statement(conn, text, params=None):
        for statement in _statements(text):
            composed, values = db._compose(conn, statement, params)
            bound = psycopg.ClientCursor(conn).mogrify(db._bind(composed, values), values or None)
            target = re.match(r"\s*(?:with\b.*?\)\s*)?(?:insert into|update|delete from) ([\w.]+)", bound, re.S)
            if target:
                writes.append((target[1], bound))
            if not bound.lstrip().startswith("drop view work."):  # read by writes explained at the end
                execute_sql(conn, statement, params)

    def explain_and_abandon(conn, names):
        split = "select logicalrelid::regclass::text from pg_dist_partition where partmethod = 'h'"
        distributed = {row[0] for row in conn.execute(split)}
        for table, statement in writes:
            if table in distributed:
                plan = "\n".join(row[0] for row in conn.execute("explain " + statement))
                plans.setdefault(table, []).append(plan)
        raise _Abandon

    plans: dict[str, list[str]] = {}
    monkeypatch.setattr(db, "execute_sql", statement_by_statement)
    monkeypatch.setattr(db, "drop_work_tables", explain_and_abandon)
    with pytest.raises(_Abandon):
        warehouse.load(url, "plans", WarehouseParams())
    monkeypatch.undo()
    return plans


def _per_shard(plan: str, shards: int) -> bool:
    """The plan's distributed scan runs one task per shard, and nothing is repartitioned or pulled to the
    coordinator (a grouping above the scan combines the shards' groups there)."""
    distributed = plan[plan.find("Custom Scan (Citus Adaptive)") :]
    count = re.search(r"Task Count: (\d+)", distributed)
    return (
        count is not None and count[1] == str(shards) and not re.search("repartition|pull to coordinator", plan, re.I)
    )


def _on_the_shards(plan: str, shards: int) -> bool:
    """Moreover the statement is all on the shards: no intermediate result made on the coordinator first."""
    return (
        plan.startswith("Custom Scan (Citus Adaptive)")
        and "Distributed Subplan" not in plan
        and _per_shard(plan, shards)
    )


@pytest.mark.slow
def test_the_big_statements_run_on_every_shard(cluster_db, tmp_path, monkeypatch):
    """The warehouse's writes to the fact table and the customer metrics, the analytics' scans of the fact
    table and the check of each order's total against its lines: one task per shard, nothing repartitioned.
    The one regrouping through the coordinator is stated: new customer metrics (an order's shard is not its
    customer's), from per-shard partial sums of the touched customers only."""
    _run(cluster_db, tmp_path, "--params", SMALL, "--to", "clean")
    with psycopg.connect(cluster_db) as conn:
        shards = conn.execute(
            "select count(*) from pg_dist_shard where logicalrelid = 'warehouse.fact_sales'::regclass"
        ).fetchone()[0]
        assert shards > 1
        # Clean's decisions read production for the batch's keys: each shard is sent the keys and looks its
        # own up; no table of the cluster comes to the coordinator whole.
        for table in ("orders", "order_items"):
            plan = "\n".join(row[0] for row in conn.execute("explain " + _decisions(table).as_string(conn)))
            assert f"Task Count: {shards}" in plan and _tables_pulled_whole(plan) == [], (table, plan)
    plans = _warehouse_write_plans(cluster_db, monkeypatch)
    assert len(plans["warehouse.fact_sales"]) == 4  # the two dimension re-keyings, changed facts, new facts
    assert all(_on_the_shards(plan, shards) for plan in plans["warehouse.fact_sales"]), plans["warehouse.fact_sales"]
    # Customer metrics: the touched customers are sent to every shard; their new rows are summed per shard
    # and then per customer on the coordinator; the RFM scores rank all customers there (one row each).
    delete, insert, scores = plans["warehouse.agg_customer_metrics"]
    assert _per_shard(delete, shards) and delete.count("Distributed Subplan") == 1, delete
    assert "INSERT/SELECT method: pull to coordinator" in insert and f"Task Count: {shards}" in insert, insert
    assert re.search(rf"^  Task Count: {shards}$", scores, re.M), scores

    _run(cluster_db, tmp_path, "--params", SMALL, "--from", "warehouse")
    check = next(c for c in quality.load_checks() if c.name == "production_order_total_matches_lines")
    statements = {
        "analytics_orders": _made_by("analytics/orders.sql", "analytics_orders"),
        "analytics_lines": _made_by("analytics/orders.sql", "analytics_lines"),
        check.name: db.with_literals(check.failing, {"tolerance": 0.01}),
    }
    with psycopg.connect(cluster_db) as conn:
        for name, statement in statements.items():
            query = statement.as_string(conn) if isinstance(statement, sql.Composable) else statement
            plan = "\n".join(row[0] for row in conn.execute("explain " + query))
            assert _per_shard(plan, shards), (name, plan)
