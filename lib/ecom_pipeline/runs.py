"""A run's identity and its records, written here and nowhere else.

:class:`RunRecorder` owns the records of a run and of its stages: the rows of
``monitoring.pipeline_runs`` and ``monitoring.stage_runs``, and ``run_summary.json`` in the run
folder (kept current, so a run killed outright can still be resumed). A stage's durations are
papermill's own (the executed notebook's metadata); its row counts are what the stage's code saved with
:func:`save_stage_result` in the same run folder.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecom_pipeline import __version__, config
from ecom_pipeline.stages import STAGE_NAMES, Stage


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def code_version() -> str:
    """The git commit of the checkout (with ``-dirty`` for local changes), else the package version."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(config.PROJ_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(config.PROJ_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return __version__


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str, sort_keys=False) + "\n")
    tmp.replace(path)


def publish_latest(files: list[Path]) -> Path:
    """Copy a run's reports to ``outputs/latest/`` (each replaced whole, so a reader never sees half a file),
    with the plotly.js an HTML report loads from beside it."""
    latest = config.outputs_dir() / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    scripts = {f.parent / PLOTLY_JS for f in files if f.suffix == ".html" and (f.parent / PLOTLY_JS).exists()}
    for source in [*scripts, *files]:
        tmp = latest / (source.name + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(latest / source.name)
    return latest


PLOTLY_JS = "plotly.min.js"  # the HTML reports load plotly.js from this file beside them


def stage_result_path(run_id: str, stage: str) -> Path:
    return config.run_dir(run_id) / "stages" / f"{stage}.json"


def save_stage_result(run_id: str, stage: str, result: dict[str, Any]) -> Path:
    """Called by each stage's lib code: the row counts run_all.py records for the stage."""
    path = stage_result_path(run_id, stage)
    write_json(path, result)
    return path


def load_stage_result(run_id: str, stage: str) -> dict[str, Any]:
    path = stage_result_path(run_id, stage)
    return json.loads(path.read_text()) if path.exists() else {}


def summary_path(run_id: str) -> Path:
    return config.run_dir(run_id) / "run_summary.json"


def read_summary(run_id: str) -> dict[str, Any] | None:
    """The run's ``run_summary.json``, or None if it has none."""
    path = summary_path(run_id)
    return json.loads(path.read_text()) if path.exists() else None


def papermill_duration(notebook: Path) -> float | None:
    """How long papermill says the executed notebook took (written even when a cell failed)."""
    try:
        return float(json.loads(notebook.read_text())["metadata"]["papermill"]["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class StageOutcome:
    stage: str
    status: str
    duration_s: float
    notebook: Path
    row_counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class RunRecorder:
    """The records of one run: its database rows and its summary file, started and ended together.

    The database rows go through the autocommit connection given to :meth:`start`, held (with the
    pipeline lock) for the whole run. A resumed run keeps the stages its earlier attempt finished; each
    stage attempt is a row of its own.
    """

    def __init__(self, run_id: str, stages: list[Stage], params_source: str, database: str) -> None:
        self.run_id, self.stages, self.params_source, self.database = run_id, stages, params_source, database
        self.started = dt.datetime.now(dt.timezone.utc)
        earlier = read_summary(run_id)
        self.previous: list[dict[str, Any]] = earlier["stages"] if earlier else []
        self.planned = sorted({*(s["stage"] for s in self.previous), *(s.name for s in stages)}, key=STAGE_NAMES.index)
        self.outcomes: list[StageOutcome] = []
        self.conn: Any = None
        self._attempt = 0

    # -- the run ---------------------------------------------------------------

    def start(self, conn: Any, params: Any) -> None:
        self.conn = conn
        # The lock is ours: any other run still marked running died without saying so.
        self.conn.execute(
            "update monitoring.pipeline_runs set status = 'failed', error = 'interrupted (process ended without "
            "finishing)' where status = 'running' and run_id <> %s",
            (self.run_id,),
        )
        # So did any stage still marked running, this run's own killed attempt (before a resume) included.
        self.conn.execute(
            "update monitoring.stage_runs set status = 'failed', error = 'interrupted' where status = 'running'"
        )
        self.conn.execute(
            """
            insert into monitoring.pipeline_runs (run_id, status, started_at, stages, params, params_file,
                                                  code_version)
            values (%s, 'running', now(), %s, %s, %s, %s)
            on conflict (run_id) do update set status = 'running', finished_at = null, duration_s = null,
                error = null, stages = excluded.stages
            """,
            (
                self.run_id,
                [s.name for s in self.stages],
                json.dumps(params.model_dump(mode="json")),
                self.params_source,
                code_version(),
            ),
        )

    def finish(self, status: str, error: str | None) -> None:
        """The database record first: a summary that cannot be written (a full disk) must not leave the run
        marked running."""
        self.conn.execute(
            """
            update monitoring.pipeline_runs
            set status = %s, finished_at = now(), error = %s, duration_s = extract(epoch from now() - started_at)
            where run_id = %s
            """,
            (status, error, self.run_id),
        )
        self.write_summary(status)

    # -- its stages ------------------------------------------------------------

    def stage_started(self, stage: Stage, notebook: Path) -> None:
        # The database row first: a run killed once the summary names the stage has its attempt on record.
        self._attempt = self.conn.execute(
            "insert into monitoring.stage_runs (run_id, stage, attempt, status, started_at, notebook) "
            "select %(run)s, %(stage)s, coalesce(max(attempt), 0) + 1, 'running', now(), %(notebook)s "
            "from monitoring.stage_runs where run_id = %(run)s and stage = %(stage)s returning attempt",
            {"run": self.run_id, "stage": stage.name, "notebook": str(notebook)},
        ).fetchone()[0]
        self.write_summary("running", current=stage.name)

    def stage_finished(self, stage: Stage, notebook: Path, wall_s: float, error: str | None) -> StageOutcome:
        """Record the stage's end: papermill's duration (the wall time if the kernel never ran it), and the
        row counts the stage saved if it succeeded."""
        outcome = StageOutcome(
            stage.name,
            "failed" if error else "success",
            round(papermill_duration(notebook) or wall_s, 3),
            notebook,
            row_counts={} if error else load_stage_result(self.run_id, stage.name),
            error=error,
        )
        self.outcomes.append(outcome)
        self.conn.execute(
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
                self.run_id,
                outcome.stage,
                self._attempt,
            ),
        )
        return outcome

    # -- the run folder --------------------------------------------------------

    def write_summary(self, status: str, current: str | None = None) -> Path:
        """``run_summary.json``: the stages done so far (an earlier attempt's too), and where the run is."""
        finished = dt.datetime.now(dt.timezone.utc)
        redone = {o.stage for o in self.outcomes}
        stage_rows = [s for s in self.previous if s["stage"] not in redone] + [
            {
                "stage": o.stage,
                "status": o.status,
                "duration_s": o.duration_s,
                "row_counts": o.row_counts,
                "notebook": str(o.notebook),
                "error": o.error,
            }
            for o in self.outcomes
        ]
        stage_rows.sort(key=lambda s: STAGE_NAMES.index(s["stage"]))
        path = summary_path(self.run_id)
        write_json(
            path,
            {
                "run_id": self.run_id,
                "status": status,
                "current_stage": current,
                "started_at": self.started.isoformat(),
                "finished_at": finished.isoformat() if status != "running" else None,
                "duration_s": round((finished - self.started).total_seconds(), 3),
                "params_source": self.params_source,
                "planned_stages": self.planned,
                "code_version": code_version(),
                "database": self.database,
                "stages": stage_rows,
            },
        )
        return path
