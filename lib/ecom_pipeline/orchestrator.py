"""Runs the stage notebooks in order with Papermill and records every run.

``run_all.py`` is a thin wrapper around :func:`main`. One process executes all
notebooks (Papermill's Python API, one kernel per stage), holds the
pipeline's advisory lock for the whole run, and owns the embedded database if
one is used. The database URL reaches the kernels through the environment
(``DATABASE_URL``), never as a notebook parameter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ecom_pipeline import config, db, kernels, logs, migrations, runs
from ecom_pipeline.exits import Exit
from ecom_pipeline.params import OperationsParams, ParamsError, PipelineParams, dump_params, load_params, params_file

log = logging.getLogger("ecom_pipeline.run")


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str
    purpose: str


STAGES: tuple[Stage, ...] = (
    Stage("generate", "01_generate_data.ipynb", "synthetic store data"),
    Stage("ingest", "02_ingest_raw.ipynb", "raw CSV into staging"),
    Stage("clean", "03_clean_production.ipynb", "staging into production, with quarantine"),
    Stage("warehouse", "04_build_warehouse.ipynb", "star schema with SCD2 dimensions and aggregates"),
    Stage("quality", "05_check_quality.ipynb", "declared checks over every layer, score and gate"),
    Stage("analytics", "06_analytics.ipynb", "analyses, insights, dashboard and BI export"),
    Stage("monitoring", "07_monitoring.ipynb", "health, freshness, volumes, quality trend, alerts"),
)
STAGE_NAMES = [s.name for s in STAGES]


class RunFailed(RuntimeError):
    pass


@dataclass
class StageOutcome:
    stage: str
    status: str
    duration_s: float
    notebook: Path
    row_counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


# -- arguments ---------------------------------------------------------------


def build_parser(prog: str = "run_all.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the e-commerce pipeline: " + " -> ".join(STAGE_NAMES) + ".",
        epilog="Exit codes: " + ", ".join(f"{c.value} {c.name.lower()}" for c in Exit) + " (docs/operations.md).",
    )
    parser.add_argument(
        "--params", help="params file, relative to the current folder (default: the project's params/default.yaml)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one parameter, e.g. --set generate.orders=5000 (repeatable)",
    )
    parser.add_argument(
        "--input",
        metavar="PATH",
        help="run on your own CSV export (a batch folder or a folder of batch folders); skips generation",
    )
    parser.add_argument("--from", dest="from_stage", choices=STAGE_NAMES, help="start at this stage")
    parser.add_argument("--to", dest="to_stage", choices=STAGE_NAMES, help="stop after this stage")
    parser.add_argument(
        "--only", action="append", choices=STAGE_NAMES, help="run this stage (repeatable; stages run in pipeline order)"
    )
    parser.add_argument("--resume", metavar="RUN_ID", help="re-run a failed run from the stage that failed")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan (stages, batches, database) and exit, touching nothing"
    )
    parser.add_argument(
        "--schedule",
        metavar="CRON",
        help='keep running: one run per fire time of the cron expression, e.g. "0 2 * * *", '
        "catching up missed ones after downtime (docs/operations.md)",
    )
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    return parser


def select_stages(
    from_stage: str | None = None, to_stage: str | None = None, only: list[str] | None = None
) -> list[Stage]:
    """The stages to run, in pipeline order."""
    if only and (from_stage or to_stage):
        raise ParamsError("--only cannot be combined with --from or --to")
    if only:
        return [s for s in STAGES if s.name in only]
    start = STAGE_NAMES.index(from_stage) if from_stage else 0
    stop = STAGE_NAMES.index(to_stage) if to_stage else len(STAGES) - 1
    if stop < start:
        raise ParamsError(f"--to {to_stage} comes before --from {from_stage}")
    return list(STAGES[start : stop + 1])


# -- progress ----------------------------------------------------------------


class Progress:
    """One line per stage: redrawn in place on a terminal, plain log lines otherwise (or under CI)."""

    def __init__(self, stages: list[Stage]) -> None:
        self.total = len(stages)
        self.live = sys.stderr.isatty() and not os.environ.get("CI")

    def started(self, index: int, stage: Stage) -> None:
        text = f"[{index}/{self.total}] {stage.name}: {stage.purpose} ..."
        if self.live:
            print(text, end="\r", file=sys.stderr, flush=True)
        else:
            log.info(text)

    def finished(self, index: int, outcome: StageOutcome) -> None:
        mark = "ok" if outcome.status == "success" else "FAILED"
        counts = ", ".join(
            f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}"
            for k, v in outcome.row_counts.items()
            if not isinstance(v, dict)
        )
        text = f"[{index}/{self.total}] {outcome.stage}: {mark} in {outcome.duration_s:.1f}s" + (
            f" ({counts})" if counts else ""
        )
        if self.live:
            print("\x1b[2K" + text, file=sys.stderr, flush=True)
        else:
            log.info(text)


# -- monitoring records --------------------------------------------------------


def _record_run_start(conn, run_id: str, stages: list[Stage], params: PipelineParams, params_file: str) -> None:
    # The lock is ours: any other run still marked running died without saying so.
    conn.execute(
        "update monitoring.pipeline_runs set status = 'failed', error = 'interrupted (process ended without "
        "finishing)' where status = 'running' and run_id <> %s",
        (run_id,),
    )
    # So did any stage still marked running, this run's own killed attempt (before a resume) included.
    conn.execute("update monitoring.stage_runs set status = 'failed', error = 'interrupted' where status = 'running'")
    conn.execute(
        """
        insert into monitoring.pipeline_runs (run_id, status, started_at, stages, params, params_file, code_version)
        values (%s, 'running', now(), %s, %s, %s, %s)
        on conflict (run_id) do update set status = 'running', finished_at = null, duration_s = null,
            error = null, stages = excluded.stages
        """,
        (
            run_id,
            [s.name for s in stages],
            json.dumps(params.model_dump(mode="json")),
            params_file,
            runs.code_version(),
        ),
    )


def _record_run_end(conn, run_id: str, status: str, error: str | None) -> None:
    conn.execute(
        """
        update monitoring.pipeline_runs
        set status = %s, finished_at = now(), error = %s,
            duration_s = extract(epoch from now() - started_at)
        where run_id = %s
        """,
        (status, error, run_id),
    )


def _record_stage_start(conn, run_id: str, stage: Stage, notebook: Path) -> int:
    attempt = conn.execute(
        "select coalesce(max(attempt), 0) + 1 from monitoring.stage_runs where run_id = %s and stage = %s",
        (run_id, stage.name),
    ).fetchone()[0]
    conn.execute(
        "insert into monitoring.stage_runs (run_id, stage, attempt, status, started_at, notebook) "
        "values (%s, %s, %s, 'running', now(), %s)",
        (run_id, stage.name, attempt, str(notebook)),
    )
    return attempt


def _record_stage_end(conn, run_id: str, attempt: int, outcome: StageOutcome) -> None:
    conn.execute(
        """
        update monitoring.stage_runs
        set status = %s, finished_at = now(), duration_s = %s, row_counts = %s, error = %s
        where run_id = %s and stage = %s and attempt = %s
        """,
        (
            outcome.status,
            outcome.duration_s,
            json.dumps(outcome.row_counts, default=str),
            outcome.error,
            run_id,
            outcome.stage,
            attempt,
        ),
    )


# -- executing notebooks -------------------------------------------------------


def _failure_text(exc: Exception) -> tuple[str, str]:
    """(short error, failing cell description) from a Papermill exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first_line = next((ln for ln in exc.source.splitlines() if ln.strip()), "")
        return f"{exc.ename}: {exc.evalue}", f"cell {exc.cell_index} ([{exc.exec_count}]) `{first_line.strip()}`"
    return f"{type(exc).__name__}: {exc}", "before the first cell (kernel did not start)"


def _start_ahead(kernel_name: str) -> list[kernels.Kernel]:
    """The next stage's kernel, started now; none if it cannot start (its stage then says why)."""
    try:
        return [kernels.start(kernel_name, config.NOTEBOOKS_DIR)]
    except Exception as exc:  # jupyter_client raises many kinds; the stage's own start reports it
        log.debug("kernel not started ahead: %s", exc)
        return []


def execute_stage(
    stage: Stage, run_id: str, params_path: Path, params: PipelineParams, kernel: kernels.Kernel | None = None
) -> StageOutcome:
    """Execute the stage's notebook into the run folder, on ``kernel`` if one was started for it."""
    output = config.run_dir(run_id) / stage.notebook
    started = time.perf_counter()
    try:
        kernels.execute_notebook(
            kernel or kernels.start(params.run.kernel, config.NOTEBOOKS_DIR),
            config.NOTEBOOKS_DIR / stage.notebook,
            output,
            parameters={"run_id": run_id, "params_file": str(params_path)},
            kernel_name=params.run.kernel,
            cwd=str(config.NOTEBOOKS_DIR),
            progress_bar=False,
            request_save_on_cell_execute=True,
            execution_timeout=params.run.cell_timeout_s,
        )
    except Exception as exc:  # papermill raises many kinds; each is reported the same way
        error, cell = _failure_text(exc)
        return StageOutcome(stage.name, "failed", time.perf_counter() - started, output, error=f"{error} (at {cell})")
    return StageOutcome(
        stage.name,
        "success",
        time.perf_counter() - started,
        output,
        row_counts=runs.load_stage_result(run_id, stage.name),
    )


# -- the run -------------------------------------------------------------------


@dataclass
class RunPlan:
    run_id: str
    stages: list[Stage]
    params: PipelineParams
    params_path: Path
    params_source: str


def plan_run(args: argparse.Namespace) -> RunPlan:
    if args.resume:
        run_path = config.run_dir(args.resume)
        summary_path = run_path / "run_summary.json"
        if not summary_path.exists():
            raise ParamsError(f"no run {args.resume} to resume (looked for {summary_path})")
        summary = json.loads(summary_path.read_text())
        done = {s["stage"] for s in summary["stages"] if s["status"] == "success"}
        todo = [STAGES[STAGE_NAMES.index(name)] for name in summary["planned_stages"] if name not in done]
        if not todo:
            raise ParamsError(f"run {args.resume} has no failed or pending stage to resume")
        if "ingest" in summary["planned_stages"] and STAGE_NAMES.index(todo[0].name) > STAGE_NAMES.index("ingest"):
            # From ingest again: it skips the files it has (same sha256) and re-stages any fixed since the
            # failure, which clean and warehouse then take in (with nothing new they have nothing to do).
            todo = [
                s
                for s in STAGES
                if s.name in summary["planned_stages"] and STAGE_NAMES.index(s.name) >= STAGE_NAMES.index("ingest")
            ]
        params_path = run_path / "params.yaml"
        return RunPlan(args.resume, todo, load_params(params_path), params_path, summary["params_source"])

    params = load_params(params_file(args.params), _overrides(args))
    if params.ingest.input_path and not Path(params.ingest.input_path).is_absolute():
        absolute = str(config.user_path(params.ingest.input_path))
        params = params.model_copy(update={"ingest": params.ingest.model_copy(update={"input_path": absolute})})
    stages = select_stages(args.from_stage, args.to_stage, args.only)
    if "ingest" in {s.name for s in stages} and not (
        "generate" in {s.name for s in stages} and params.generate.enabled
    ):
        input_batches(params)  # refused now, not by ingest after the migrations
    run_id = args.run_id or runs.new_run_id()
    return RunPlan(
        run_id,
        stages,
        params,
        config.run_dir(run_id) / "params.yaml",
        str(args.params or config.DEFAULT_PARAMS_FILE.relative_to(config.PROJ_ROOT)),
    )


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.input:
        overrides += [f"ingest.input_path={config.user_path(args.input)}", "generate.enabled=false"]
    return overrides


def input_batches(params: PipelineParams) -> list[Path]:
    """The batch folders ingest will read; ParamsError if there are none (or no such folder)."""
    from ecom_pipeline import contract
    from ecom_pipeline.stages.ingest import IngestError, discover_batches

    source = Path(params.ingest.input_path) if params.ingest.input_path else config.raw_dir()
    try:
        batches = discover_batches(source)
    except IngestError as exc:
        raise ParamsError(f"--input: {exc}") from None
    if not batches:
        names = ", ".join(contract.file_name(t) for t in contract.TABLE_ORDER)
        raise ParamsError(
            f"--input: {source} holds no batch: a batch is a folder with any of {names} (docs/csv_contract.md)"
        )
    return batches


def _open_run_folder(plan: RunPlan) -> None:
    """The run folder and its resolved parameters: made once the database has answered."""
    plan.params_path.parent.mkdir(parents=True, exist_ok=True)
    if not plan.params_path.exists():
        dump_params(plan.params, plan.params_path)
    logs.write_embedded_log(plan.params_path.parent)


def describe_plan(plan: RunPlan) -> str:
    """What ``--dry-run`` prints: the stages, the batches to load and the database, nothing touched."""
    url = db.database_url(start_embedded=False)
    if url:
        target = db.describe(url)
    else:
        from ecom_pipeline import embedded

        target = f"the embedded server (data in {embedded.default_pgdata()}; started by the run)"
    lines = [
        f"run {plan.run_id} (dry run: nothing was started or written)",
        f"  params:   {plan.params_source}",
        f"  database: {target}",
        "  stages:",
    ]
    lines += [f"    {i}. {s.name}: {s.purpose}" for i, s in enumerate(plan.stages, start=1)]
    names = {s.name for s in plan.stages}
    if "ingest" in names:
        if "generate" in names and plan.params.generate.enabled:
            lines.append(f"  batches:  the next batch, generated into {config.raw_dir()}")
        else:
            batches = input_batches(plan.params)
            lines.append(
                f"  batches:  {len(batches)} in {batches[0].parent if len(batches) > 1 else batches[0]} "
                "(files already loaded, same sha256, are skipped)"
            )
            lines += [f"    {b.name}" for b in batches]
    return "\n".join(lines)


def _write_summary(
    plan: RunPlan,
    status: str,
    started: dt.datetime,
    outcomes: list[StageOutcome],
    database: str,
    previous: list[dict[str, Any]],
    current: str | None = None,
) -> Path:
    finished = dt.datetime.now(dt.timezone.utc)
    redone = {o.stage for o in outcomes}
    stage_rows = [s for s in previous if s["stage"] not in redone] + [
        {
            "stage": o.stage,
            "status": o.status,
            "duration_s": round(o.duration_s, 3),
            "row_counts": o.row_counts,
            "notebook": str(o.notebook),
            "error": o.error,
        }
        for o in outcomes
    ]
    stage_rows.sort(key=lambda s: STAGE_NAMES.index(s["stage"]))
    path = config.run_dir(plan.run_id) / "run_summary.json"
    runs.write_json(
        path,
        {
            "run_id": plan.run_id,
            "status": status,
            "current_stage": current,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat() if status != "running" else None,
            "duration_s": round((finished - started).total_seconds(), 3),
            "params_source": plan.params_source,
            "planned_stages": sorted(
                {*(s["stage"] for s in previous), *(s.name for s in plan.stages)}, key=STAGE_NAMES.index
            ),
            "code_version": runs.code_version(),
            "database": database,
            "stages": stage_rows,
        },
    )
    return path


def execute_run(plan: RunPlan, url: str) -> int:
    """Run the planned stages under the pipeline lock; return the process exit code."""
    started = dt.datetime.now(dt.timezone.utc)
    summary_path = config.run_dir(plan.run_id) / "run_summary.json"
    previous = json.loads(summary_path.read_text())["stages"] if summary_path.exists() else []
    database = db.describe(url)
    outcomes: list[StageOutcome] = []
    status, error = "failed", "interrupted"
    # The first stage's kernel boots while the lock is taken and the migrations are checked; each later
    # stage's while the stage before it runs.
    upcoming: list[kernels.Kernel] = _start_ahead(plan.params.run.kernel)
    try:
        with db.pipeline_lock(url), db.connection(url, autocommit=True, application="ecom_pipeline run_all") as conn:
            _open_run_folder(plan)
            migrations.apply_migrations(conn)
            _record_run_start(conn, plan.run_id, plan.stages, plan.params, plan.params_source)
            log.info("run %s on %s: %s", plan.run_id, database, " -> ".join(s.name for s in plan.stages))
            progress = Progress(plan.stages)
            try:
                for index, stage in enumerate(plan.stages, start=1):
                    # The summary is kept current, so a run killed outright (SIGKILL, power loss) can be resumed.
                    _write_summary(plan, "running", started, outcomes, database, previous, current=stage.name)
                    progress.started(index, stage)
                    attempt = _record_stage_start(
                        conn, plan.run_id, stage, config.run_dir(plan.run_id) / stage.notebook
                    )
                    kernel = upcoming.pop(0) if upcoming else None  # shut down by its notebook's execution
                    if index < len(plan.stages):
                        upcoming.extend(_start_ahead(plan.params.run.kernel))
                    outcome = execute_stage(stage, plan.run_id, plan.params_path, plan.params, kernel)
                    outcome.error = db.redact(outcome.error, url) if outcome.error else None
                    outcomes.append(outcome)
                    progress.finished(index, outcome)
                    _record_stage_end(conn, plan.run_id, attempt, outcome)
                    if outcome.status != "success":
                        error = f"stage {stage.name} failed: {outcome.error}"
                        raise RunFailed(error)
                status, error = "success", None
            except RunFailed:
                pass
            finally:
                # The database record first: a summary that cannot be written (a full disk) must not leave
                # the run marked running.
                _record_run_end(conn, plan.run_id, status, error)
                _write_summary(plan, status, started, outcomes, database, previous)
    except psycopg.OperationalError as exc:
        # The database went away mid-run: the summary on disk says how far the run got.
        _write_summary(plan, "failed", started, outcomes, database, previous)
        _report_failure(plan, url)
        lost = db.error_line(exc, url)
        raise db.DatabaseUnavailable(
            f"run {plan.run_id} lost its database ({lost}); when it is back, resume with: "
            f"python run_all.py --resume {plan.run_id}"
        ) from None
    finally:
        for kernel in upcoming:  # started for a stage that will not run
            kernels.shutdown(kernel)
    if status != "success":
        _report_failure(plan, url)
    _print_summary(plan, status, outcomes, started)
    return Exit.OK if status == "success" else Exit.FAILED


def _report_failure(plan: RunPlan, url: str) -> None:
    """A failed run never reaches the monitoring notebook: write its report and send its alerts here."""
    from ecom_pipeline import monitoring

    try:
        monitoring.monitor(plan.params.monitoring, plan.run_id, url)
    except Exception as exc:  # the run's own failure is what must be reported; never hide it behind this one
        log.error("the monitoring report of the failed run could not be written: %s", db.redact(str(exc), url))


def _print_summary(plan: RunPlan, status: str, outcomes: list[StageOutcome], started: dt.datetime) -> None:
    elapsed = (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
    run_path = config.run_dir(plan.run_id)
    if status == "success":
        log.info("run %s succeeded in %.1fs; records in %s", plan.run_id, elapsed, run_path)
        return
    failed = outcomes[-1] if outcomes else None
    lines = [f"run {plan.run_id} FAILED after {elapsed:.1f}s"]
    if failed:
        lines += [
            f"  stage:    {failed.stage}",
            f"  error:    {failed.error}",
            f"  notebook: {failed.notebook}",
        ]
    lines.append(f"  resume:   python run_all.py --resume {plan.run_id}")
    log.error("\n".join(lines))


def _terminate_cleanly(signum: int, frame: Any) -> None:
    # Turn SIGTERM into an exception so that finally-blocks record the failure,
    # release the lock and stop the embedded server.
    raise KeyboardInterrupt(f"signal {signum}")


def check_schedule(args: argparse.Namespace) -> OperationsParams:
    """``--schedule``'s arguments and parameters, refused (ParamsError) before anything starts."""
    from ecom_pipeline import schedule

    if args.resume or args.only or args.from_stage or args.to_stage or args.run_id or args.dry_run:
        raise ParamsError(
            "--schedule runs whole runs: it cannot be combined with --resume, --only, --from, --to or --dry-run"
        )
    try:
        schedule.check_cron(args.schedule)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    return load_params(params_file(args.params), _overrides(args)).operations


def run_scheduled(args: argparse.Namespace, url: str, operations: OperationsParams) -> int:
    """``--schedule``: one run per cron slot, then the retention cleanup after each success."""
    from ecom_pipeline import cleanup, schedule

    def run_slot(slot: dt.datetime) -> int:
        try:
            plan = plan_run(args)
            code = execute_run(plan, url)
        except db.PipelineLocked as exc:
            log.error("%s", exc)
            return Exit.UNAVAILABLE
        if code == Exit.OK and operations.retention_days:
            try:
                cleanup.cleanup(url, operations.retention_days)
            except Exception as exc:  # a failed cleanup must not stop the nightly runs
                log.error("retention cleanup failed: %s", db.redact(str(exc), url))
        return code

    return schedule.serve(args.schedule, run_slot, operations.max_catch_up)


def _pipeline_url() -> str:
    url = db.database_url()
    os.environ["DATABASE_URL"] = url  # inherited by the notebook kernels, never a parameter
    return url


def main(argv: list[str] | None = None, prog: str = "run_all.py") -> int:
    logs.configure()
    args = build_parser(prog).parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate_cleanly)
    plan: RunPlan | None = None
    try:
        # Bad arguments, parameters and input are refused before the database is touched.
        if args.schedule:
            operations = check_schedule(args)
            return run_scheduled(args, _pipeline_url(), operations)
        plan = plan_run(args)
        if args.dry_run:
            print(describe_plan(plan))
            return Exit.OK
        return execute_run(plan, _pipeline_url())
    except (ParamsError, migrations.MigrationError, db.BadConnectionString) as exc:
        log.error("%s", exc)
        return Exit.USAGE
    except OSError as exc:  # the run's records cannot be written (a full disk, a read-only outputs folder)
        log.error("cannot write the run's records: %s", exc)
        return Exit.FAILED
    except (db.DatabaseUnavailable, db.PipelineLocked) as exc:
        log.error("%s", exc)
        return Exit.UNAVAILABLE
    except KeyboardInterrupt:
        log.error("interrupted; resume with: python run_all.py --resume %s", plan.run_id if plan else "<run_id>")
        return Exit.INTERRUPTED
