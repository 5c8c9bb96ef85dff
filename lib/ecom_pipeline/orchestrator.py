"""Runs the stage notebooks in order with Papermill and records every run.

``run_all.py`` is a thin wrapper around :func:`main`. One process executes all
notebooks (Papermill's Python API, one kernel per stage), holds the
pipeline's advisory lock for the whole run, and owns the embedded database if
one is used. The database URL reaches the kernels through the environment
(``DATABASE_URL``), never as a notebook parameter.

This module holds the command line and the loop; the stages are listed in
:mod:`ecom_pipeline.stages` and the run's records are kept by :class:`ecom_pipeline.runs.RunRecorder`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ecom_pipeline import config, db, kernels, logs, migrations, runs
from ecom_pipeline.exits import Exit
from ecom_pipeline.params import OperationsParams, ParamsError, PipelineParams, dump_params, load_params, params_file
from ecom_pipeline.stages import STAGE_NAMES, STAGES, Stage, select, stage_named

log = logging.getLogger("ecom_pipeline.run")
# Kernels started ahead of their stage: forked from the kernel server, each costs little but starting IPython.
KERNELS_AHEAD = 2


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
    try:
        return select(from_stage, to_stage, only)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None


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

    def finished(self, index: int, outcome: runs.StageOutcome) -> None:
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


# -- executing notebooks -------------------------------------------------------


def _failure_text(exc: Exception) -> tuple[str, str]:
    """(short error, failing cell description) from a Papermill exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first_line = next((ln for ln in exc.source.splitlines() if ln.strip()), "")
        return f"{exc.ename}: {exc.evalue}", f"cell {exc.cell_index} ([{exc.exec_count}]) `{first_line.strip()}`"
    return f"{type(exc).__name__}: {exc}", "before the first cell (kernel did not start)"


def _start_ahead(kernel_name: str, stages: list[Stage], upcoming: dict[int, kernels.Kernel], first: int) -> None:
    """Start the kernels of the next ``KERNELS_AHEAD`` stages from ``first`` that have none; a kernel that cannot
    start is left to its stage, which starts its own and says why it cannot."""
    for index in range(first, min(first + KERNELS_AHEAD, len(stages))):
        if index in upcoming:
            continue
        try:
            upcoming[index] = kernels.start(kernel_name, config.NOTEBOOKS_DIR, stages[index].module)
        except Exception as exc:  # jupyter_client raises many kinds; the stage's own start reports it
            log.debug("kernel not started ahead: %s", exc)


def execute_stage(
    stage: Stage, run_id: str, params_path: Path, params: PipelineParams, kernel: kernels.Kernel | None = None
) -> tuple[Path, float, str | None]:
    """Execute the stage's notebook into the run folder, on ``kernel`` if one was started for it.

    Returns the executed notebook, the wall time and the error (None if every cell ran)."""
    output = config.run_dir(run_id) / stage.notebook
    output.unlink(missing_ok=True)  # an earlier attempt's, before a resume: its duration is not this one's
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
        return output, time.perf_counter() - started, f"{error} (at {cell})"
    return output, time.perf_counter() - started, None


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
        summary = runs.read_summary(args.resume)
        if summary is None:
            raise ParamsError(f"no run {args.resume} to resume (looked for {runs.summary_path(args.resume)})")
        done = {s["stage"] for s in summary["stages"] if s["status"] == "success"}
        todo = [stage_named(name) for name in summary["planned_stages"] if name not in done]
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
        params_path = config.run_dir(args.resume) / "params.yaml"
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


def execute_run(plan: RunPlan, url: str) -> int:
    """Run the planned stages under the pipeline lock; return the process exit code."""
    recorder = runs.RunRecorder(plan.run_id, plan.stages, plan.params_source, db.describe(url))
    progress = Progress(plan.stages)
    # The database answers and the lock is held before any kernel starts: a run that cannot go on says so at
    # once. The first stages' kernels start while the migrations are checked; each later stage's while the
    # stages before it run (KERNELS_AHEAD).
    status, error = "failed", "interrupted"
    upcoming: dict[int, kernels.Kernel] = {}  # by stage index, until the stage takes its kernel
    try:
        with (
            db.pipeline_lock(url),
            db.connection(url, autocommit=True, application="ecom_pipeline run_all") as conn,
            kernels.forked([stage.module for stage in plan.stages]),
        ):
            _start_ahead(plan.params.run.kernel, plan.stages, upcoming, 0)
            try:
                _open_run_folder(plan)
                migrations.apply_migrations(conn, distributed=plan.params.database.distributed)
                recorder.start(conn, plan.params)
                log.info("run %s on %s: %s", plan.run_id, recorder.database, " -> ".join(s.name for s in plan.stages))
                try:
                    for index, stage in enumerate(plan.stages, start=1):
                        progress.started(index, stage)
                        recorder.stage_started(stage, config.run_dir(plan.run_id) / stage.notebook)
                        kernel = upcoming.pop(index - 1, None)  # shut down by its notebook's execution
                        _start_ahead(plan.params.run.kernel, plan.stages, upcoming, index)
                        notebook, wall_s, failure = execute_stage(
                            stage, plan.run_id, plan.params_path, plan.params, kernel
                        )
                        outcome = recorder.stage_finished(
                            stage, notebook, wall_s, db.redact(failure, url) if failure else None
                        )
                        progress.finished(index, outcome)
                        if outcome.error:
                            error = f"stage {stage.name} failed: {outcome.error}"
                            break
                    else:
                        status, error = "success", None
                finally:
                    recorder.finish(status, error)
            finally:
                for kernel in upcoming.values():  # started for a stage that will not run
                    kernels.shutdown(kernel)
    except psycopg.OperationalError as exc:
        # The database went away mid-run: the summary on disk says how far the run got.
        recorder.write_summary("failed")
        _report_failure(plan, url)
        lost = db.error_line(exc, url)
        raise db.DatabaseUnavailable(
            f"run {plan.run_id} lost its database ({lost}); when it is back, resume with: "
            f"python run_all.py --resume {plan.run_id}"
        ) from None
    if status != "success":
        _report_failure(plan, url)
    _print_summary(plan, status, recorder.outcomes, recorder.started)
    return Exit.OK if status == "success" else Exit.FAILED


def _report_failure(plan: RunPlan, url: str) -> None:
    """A failed run never reaches the monitoring notebook: write its report and send its alerts here."""
    from ecom_pipeline import monitoring

    try:
        monitoring.monitor(plan.params.monitoring, plan.run_id, url)
    except Exception as exc:  # the run's own failure is what must be reported; never hide it behind this one
        log.error("the monitoring report of the failed run could not be written: %s", db.redact(str(exc), url))


def _print_summary(plan: RunPlan, status: str, outcomes: list[runs.StageOutcome], started: dt.datetime) -> None:
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
