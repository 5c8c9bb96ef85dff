"""The embedded server's traps: killed owners, stale pid files, warnings at import."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from ecom_pipeline import embedded

START_AND_WAIT = """
import sys, time
from ecom_pipeline import embedded
print(embedded.start(), flush=True)
time.sleep(float(sys.argv[1]))
"""
START_AND_QUERY = """
import psycopg
from ecom_pipeline import embedded
with psycopg.connect(embedded.start()) as conn:
    print(conn.execute("select 41 + 1").fetchone()[0])
"""

# The server ends on its own (a crash, an operator) while the run's exit stops it: still running when the
# package looks, gone when pg_ctl and then the package's own signal reach it. The package's exit handler then
# raised NoSuchProcess, and a run that had lost its database ended with a traceback.
ENDS_AS_THE_RUN_EXITS = """
import os, signal, psutil
from pathlib import Path
from ecom_pipeline import embedded
embedded.start()
pid = int((Path(os.environ["PIPELINE_PGDATA"]) / "postmaster.pid").read_text().split(chr(10), 1)[0])
os.kill(pid, signal.SIGQUIT)
psutil.wait_procs([psutil.Process(pid)], timeout=30)
psutil.Process.is_running = lambda self: True  # as the package saw it an instant before
"""


def _python(code: str, pgdata: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PIPELINE_PGDATA": str(pgdata)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _server_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text().split("\n", 1)[0])
    return pid if embedded._is_postmaster_of(pid, pgdata) else None


def test_embedded_server_recovers_from_killed_owner_and_stale_pid_file(tmp_path):
    pgdata = tmp_path / "pgdata"
    owner = _python(START_AND_WAIT, pgdata, "120")
    url = owner.stdout.readline().strip()
    assert url.startswith("postgresql://"), owner.stderr.read() if owner.poll() is not None else url
    server = _server_pid(pgdata)
    assert server is not None
    pid_file_text = (pgdata / "postmaster.pid").read_text()

    owner.send_signal(signal.SIGKILL)
    owner.wait()
    # The killed owner never stopped the server and its pid stays in the handle list.
    assert _server_pid(pgdata) == server
    assert owner.pid in json.loads((pgdata / ".handle_pids.json").read_text())

    # A normal user of the server cleans the dead handle and, as the last one, stops the server.
    second = _python(START_AND_QUERY, pgdata)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.strip() == "42"
    assert not psutil.pid_exists(server) or not embedded._is_postmaster_of(server, pgdata)
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []

    # After a crash and reboot, postmaster.pid may name an unrelated live process.
    lines = pid_file_text.split("\n")
    lines[0] = str(os.getpid())
    (pgdata / "postmaster.pid").write_text("\n".join(lines))
    third = _python(START_AND_QUERY, pgdata)
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert out.strip() == "42"
    assert "stale postmaster.pid" in err


def test_prune_dead_handles_keeps_live_ones(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".handle_pids.json").write_text(json.dumps([os.getpid(), dead.pid]))
    assert embedded.prune_dead_handles(tmp_path) == [dead.pid]
    assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [os.getpid()]


def test_remove_stale_postmaster_pid_ignores_missing_file(tmp_path):
    assert embedded.remove_stale_postmaster_pid(tmp_path) is False


def test_a_standalone_backend_s_negated_pid_is_kept_while_it_runs(tmp_path):
    """initdb's bootstrap backend writes its pid negated: while it runs, the folder is in use."""
    backend_binary = tmp_path / "postgres"  # a process named as PostgreSQL's is
    shutil.copy("/bin/sleep", backend_binary)
    pidfile = tmp_path / "postmaster.pid"
    with subprocess.Popen([str(backend_binary), "30"]) as backend:
        try:
            pidfile.write_text(f"-{backend.pid}\n{tmp_path}\n")
            assert embedded.remove_stale_postmaster_pid(tmp_path) is False
            assert pidfile.exists()
        finally:
            backend.kill()
    assert embedded.remove_stale_postmaster_pid(tmp_path) is True  # ended: the file is stale
    assert not pidfile.exists()


def test_pgserver_import_survives_warnings_as_errors():
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", "from ecom_pipeline import embedded; embedded._import_pgserver()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("euid, expected_parent", [(0, embedded.ROOT_DATA_PARENT), (1000, None)])
def test_default_pgdata_keeps_root_out_of_private_homes(monkeypatch, euid, expected_parent):
    monkeypatch.delenv("PIPELINE_PGDATA", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    pgdata = embedded.default_pgdata()
    if expected_parent is None:
        assert pgdata == embedded.config.PROJ_ROOT / ".pgdata"
    else:
        assert pgdata.parent == expected_parent


def test_default_pgdata_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_PGDATA", str(tmp_path / "x"))
    assert embedded.default_pgdata() == tmp_path / "x"


def test_lock_and_runtime_files_are_per_data_folder(tmp_path):
    # The package would lock one file for every server of the user (here the runtime folder's), which
    # another user's /tmp/.lockfile can make unusable; the pipeline's lock lives beside its data folder.
    runtime = tmp_path / "xdg"
    (runtime / "python_PostgresServer").mkdir(parents=True)
    pgdata = tmp_path / "pgdata"
    env = {**os.environ, "PIPELINE_PGDATA": str(pgdata), "XDG_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([sys.executable, "-c", START_AND_QUERY], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    assert (tmp_path / "pgdata.run" / ".lockfile").is_file()
    assert not (runtime / "python_PostgresServer" / ".lockfile").exists()


def test_a_server_that_ends_as_the_run_exits_leaves_no_traceback(tmp_path):
    done = _python(ENDS_AS_THE_RUN_EXITS, tmp_path / "pgdata")
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0 and "Traceback" not in err, err
