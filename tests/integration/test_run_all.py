"""run_all.py end to end: runs, records, failures, resume, locks and secrets."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ecom_pipeline import db
from ecom_pipeline.stages import STAGE_NAMES, STAGES
from helpers import HANDWRITTEN, REPO, run_pipeline


def _runs(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select run_id, status, stages from monitoring.pipeline_runs order by started_at"
        ).fetchall()


@pytest.mark.slow
def test_run_all_twice_records_both_runs(fresh_db, outputs):
    first = run_pipeline("--params", "params/small.yaml")
    assert first.returncode == 0, first.stderr
    second = run_pipeline("--params", "params/small.yaml")
    assert second.returncode == 0, second.stderr

    runs = _runs(fresh_db)
    assert [r[1] for r in runs] == ["success", "success"]
    batches = sorted(p.name for p in (outputs / "raw").iterdir() if not p.name.startswith("_"))
    assert batches == ["2025-03-01", "2025-03-02"]  # the second run is the next day's batch
    summary = json.loads((outputs / "runs" / runs[1][0] / "run_summary.json").read_text())
    assert summary["status"] == "success"
    assert [s["stage"] for s in summary["stages"]] == STAGE_NAMES
    ingest = summary["stages"][1]["row_counts"]
    assert ingest["files_loaded"] == 4 and ingest["files_skipped"] == 4
    with psycopg.connect(fresh_db) as conn:
        stage_rows = conn.execute(
            "select stage, status, duration_s, row_counts from monitoring.stage_runs "
            "where run_id = %s order by started_at",
            (runs[1][0],),
        ).fetchall()
    assert [(name, status) for name, status, _, _ in stage_rows] == [(name, "success") for name in STAGE_NAMES]
    # One record, three places: the database rows and the summary agree, durations are papermill's own.
    assert [(d, c) for _, _, d, c in stage_rows] == [(s["duration_s"], s["row_counts"]) for s in summary["stages"]]
    assert all(counts for _, _, _, counts in stage_rows)
    for stage, (_, _, duration, _) in zip(STAGES, stage_rows):
        notebook = nbformat.read(outputs / "runs" / runs[1][0] / stage.notebook, as_version=4)
        assert round(notebook.metadata.papermill.duration, 3) == duration > 0
        counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
        # Cells count from [1]: the imports a kernel ran while the stage before it ran are not a cell.
        assert counts == list(range(1, len(counts) + 1)), stage.notebook
    assert [p.name for p in (REPO / "notebooks").iterdir() if p.name.startswith("kernel")] == []  # no sockets


def _kernel_files(runtime: Path) -> set[Path]:
    """Connection files and sockets of the kernels alive in a Jupyter runtime folder (removed at shutdown)."""
    return set(runtime.glob("kernel-*"))


def test_run_all_refuses_unknown_parameter(outputs):
    done = run_pipeline("--params", "params/small.yaml", "--set", "generate.oders=5")
    assert done.returncode == 2
    assert "generate.oders: unknown parameter" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ops:topsecret@127.0.0.1:1/shop",
        "host=127.0.0.1 port=1 dbname=shop user=ops password=topsecret",
        "postgresql+psycopg2://ops:topsecret@127.0.0.1:1/shop",
        "postgresql://ops:top#secret@127.0.0.1:1/shop",
    ],
)
def test_run_all_reports_unreachable_database(outputs, url):
    done = run_pipeline("--params", "params/small.yaml", env={"DATABASE_URL": url})
    assert done.returncode == 3
    assert "cannot connect to the database postgresql://ops@127.0.0.1:1/shop" in done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
    for path in outputs.rglob("*"):
        if path.is_file():
            assert "secret" not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(
    "url, message",
    [
        ("host=db.example.org port=99999 password=topsecret", "invalid port '99999'"),
        ("this is not a url password=topsecret", "not a PostgreSQL connection string"),
    ],
)
def test_run_all_refuses_an_unusable_connection_string_in_one_line(outputs, url, message):
    done = run_pipeline("--params", "params/small.yaml", env={"DATABASE_URL": url})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert message in line and "secret" not in line


def test_run_all_exits_when_lock_is_held(migrated_db, outputs):
    with db.pipeline_lock(migrated_db):
        done = run_pipeline("--params", "params/small.yaml")
    assert done.returncode == 3
    assert "another pipeline run is already running" in done.stderr
    assert not (outputs / "raw").exists()  # nothing was done


@pytest.mark.slow
def test_failed_stage_names_cell_and_resume_finishes(fresh_db, outputs, tmp_path):
    source = tmp_path / "export"
    shutil.copytree(HANDWRITTEN, source)
    orders = source / "2025-03-01" / "orders.csv"
    good = orders.read_text()
    orders.write_text(good.replace("order_id,customer_id", "order_no,customer_id", 1))  # a header ingest refuses
    # A runtime folder of the test's own (short: kernels put their sockets there), so that kernels of other
    # tests running at the same time are not counted.
    with tempfile.TemporaryDirectory(prefix="jr") as runtime:
        done = run_pipeline(
            "--params", "params/small.yaml", "--input", str(source), env={"JUPYTER_RUNTIME_DIR": runtime}
        )
        assert done.returncode == 1
        assert _kernel_files(Path(runtime)) == set()  # the kernel started ahead for the next stage was shut down too
    run_id = _runs(fresh_db)[0][0]
    message = done.stderr
    assert "stage:    ingest" in message
    assert "IngestError: batch 2025-03-01: orders.csv lacks required column(s) order_id" in message
    assert "cell" in message and "02_ingest_raw.ipynb" in message
    assert f"python run_all.py --resume {run_id}" in message

    orders.write_text(good)
    resumed = run_pipeline("--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((outputs / "runs" / run_id / "run_summary.json").read_text())
    assert [(s["stage"], s["status"]) for s in summary["stages"]] == [(name, "success") for name in STAGE_NAMES]
    with psycopg.connect(fresh_db) as conn:
        attempts = conn.execute(
            "select stage, attempt, status from monitoring.stage_runs where run_id = %s order by stage, attempt",
            (run_id,),
        ).fetchall()
        assert conn.execute("select count(*) from staging.orders").fetchone()[0] == 3
    # Stages before the failure ran once; the failed stage twice; the ones after it once, on resume.
    expected = [(name, 1, "success") for name in STAGE_NAMES if name != "ingest"]
    assert sorted(attempts) == sorted([*expected, ("ingest", 1, "failed"), ("ingest", 2, "success")])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: None, "--input: input path does not exist"),
        (lambda path: path.mkdir(), "holds no batch: a batch is a folder with any of customers.csv"),
        (lambda path: path.write_text("x"), "--input: input path is not a folder"),
    ],
)
def test_unusable_input_is_refused_before_anything_runs(fresh_db, outputs, tmp_path, make, message):
    source = tmp_path / "export"
    make(source)
    done = run_pipeline("--params", "params/small.yaml", "--input", str(source))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert message in line and str(source) in line
    assert not (outputs / "runs").exists()  # no run folder, no run record, no migration
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select to_regclass('monitoring.pipeline_runs')").fetchone()[0] is None


def test_no_run_folder_when_the_database_does_not_answer(outputs):
    done = run_pipeline("--params", "params/small.yaml", env={"DATABASE_URL": "postgresql://ops@127.0.0.1:1/shop"})
    assert done.returncode == 3
    assert not (outputs / "runs").exists()


@pytest.mark.slow
def test_paths_given_by_the_user_are_relative_to_the_current_folder(fresh_db, outputs, tmp_path):
    shutil.copytree(HANDWRITTEN, tmp_path / "export")
    shutil.copy(REPO / "params" / "small.yaml", tmp_path / "mine.yaml")
    done = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--params", "mine.yaml", "--input", "export", "--to", "clean"],
        cwd=tmp_path,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select count(*) from production.orders").fetchone()[0] == 3
        assert conn.execute("select stages from monitoring.pipeline_runs").fetchone()[0] == [
            "generate",
            "ingest",
            "clean",
        ]
    refused = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--params", "params/small.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert f"params file not found: {tmp_path}/params/small.yaml" in refused.stderr
    assert f"did you mean {REPO}/params/small.yaml?" in refused.stderr


@pytest.mark.slow
def test_only_from_and_to_select_stages(fresh_db, outputs):
    done = run_pipeline("--params", "params/small.yaml", "--only", "generate")
    assert done.returncode == 0, done.stderr
    assert _runs(fresh_db)[0][2] == ["generate"]
    done = run_pipeline("--params", "params/small.yaml", "--from", "ingest", "--to", "clean")
    assert done.returncode == 0, done.stderr
    assert _runs(fresh_db)[1][2] == ["ingest", "clean"]
    done = run_pipeline("--params", "params/small.yaml", "--only", "quality", "--only", "warehouse")
    assert done.returncode == 0, done.stderr
    assert _runs(fresh_db)[2][2] == ["warehouse", "quality"]  # pipeline order, whatever the order given
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select count(distinct batch_id) from staging.orders").fetchone()[0] == 1
        assert conn.execute("select count(*) from warehouse.load_log").fetchone()[0] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "clean", "--from", "ingest"], "--only cannot be combined with --from or --to"),
        (["--from", "warehouse", "--to", "ingest"], "--to ingest comes before --from warehouse"),
    ],
)
def test_contradictory_stage_selection_is_refused(outputs, args, message):
    done = run_pipeline("--params", "params/small.yaml", *args)
    assert done.returncode == 2 and message in done.stderr


def test_dry_run_prints_the_plan_and_touches_nothing(fresh_db, outputs):
    done = run_pipeline(
        "--params",
        "params/small.yaml",
        "--input",
        str(HANDWRITTEN),
        "--from",
        "ingest",
        "--to",
        "warehouse",
        "--dry-run",
        env={"DATABASE_URL": make_conninfo(fresh_db, password="pw!")},
    )
    assert done.returncode == 0, done.stderr
    plan = done.stdout
    assert "dry run: nothing was started or written" in plan
    assert [
        line.split(".", 1)[1].split(":")[0].strip()
        for line in plan.splitlines()
        if line.startswith("    ") and ":" in line
    ] == ["ingest", "clean", "warehouse"]
    assert "batches:  1 in " in plan and "    2025-03-01" in plan and "pw!" not in plan + done.stderr
    assert db.describe(fresh_db) in plan
    assert not outputs.exists() or not any(outputs.iterdir())
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select to_regclass('monitoring.pipeline_runs')").fetchone()[0] is None


@pytest.mark.slow
def test_password_never_reaches_notebooks_reports_or_logs(server_url, outputs):
    password = "Pw never#printed'7f3a"
    user = "pipeline_secret_user"
    name = f"secret_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"drop role if exists {user}")
        conn.execute(
            sql.SQL("create role {} login superuser password {}").format(sql.Identifier(user), sql.Literal(password))
        )
        conn.execute(f'create database "{name}" owner {user}')
    # The key=value form, with characters a URL would need encoded.
    url = make_conninfo(db.with_database(server_url, name), user=user, password=password)
    try:
        done = run_pipeline("--params", "params/small.yaml", env={"DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        assert password not in done.stdout + done.stderr
        for path in outputs.rglob("*"):
            if path.is_file() and path.suffix in {".ipynb", ".json", ".yaml", ".html", ".log", ".csv"}:
                assert password not in path.read_text(errors="replace"), path
        with psycopg.connect(url) as conn:
            stored = conn.execute(
                "select params::text || coalesce(error, '') from monitoring.pipeline_runs"
            ).fetchone()[0]
        assert password not in stored
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f"drop role if exists {user}")


@pytest.mark.slow
def test_killed_run_leaves_no_lock_and_next_run_finishes(fresh_db, outputs):
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run_all.py"), "--params", "params/small.yaml"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until a stage is running
        try:
            with psycopg.connect(fresh_db) as conn:
                if conn.execute("select count(*) from monitoring.stage_runs where status = 'running'").fetchone()[0]:
                    break
        except psycopg.Error:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the run never started a stage")
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    done = run_pipeline("--params", "params/small.yaml")
    assert done.returncode == 0, done.stderr
    statuses = [r[1] for r in _runs(fresh_db)]
    assert statuses == ["failed", "success"]  # the killed run is marked, not left "running"
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select count(*) from staging.ingestion_log").fetchone()[0] >= 4
        assert (
            conn.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and database = "
                "(select oid from pg_database where datname = current_database())"
            ).fetchone()[0]
            == 0
        )


@pytest.mark.slow
def test_resume_reads_a_fixed_input_file_again(fresh_db, outputs, tmp_path):
    source = tmp_path / "export"
    shutil.copytree(HANDWRITTEN, source)
    orders = source / "2025-03-01" / "orders.csv"
    good = orders.read_text()
    orders.write_text(good.replace("ORD-2,CUST-2", 'ORD-2,"CUST-2', 1))  # one of three lines lost: over the share
    done = run_pipeline("--params", "params/small.yaml", "--input", str(source))
    assert done.returncode == 1
    assert "staging_file_rejected_share" in done.stderr and "2025-03-01/orders.csv: 1 of 3 lines" in done.stderr
    run_id = _runs(fresh_db)[0][0]
    orders.write_text(good)  # the export is fixed, then the printed command is run
    resumed = run_pipeline("--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select count(*) from production.orders").fetchone()[0] == 3
        assert conn.execute("select count(*) from staging.rejected_lines").fetchone()[0] == 0
