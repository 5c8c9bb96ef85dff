"""Run identity and the per-run records shared by run_all.py and the stage notebooks."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ecom_pipeline import __version__, config


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
    """Copy a run's reports to ``outputs/latest/`` (each replaced whole, so a reader never sees half a file)."""
    latest = config.outputs_dir() / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    for source in files:
        tmp = latest / (source.name + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(latest / source.name)
    return latest


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
