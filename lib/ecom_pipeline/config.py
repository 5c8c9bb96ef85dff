"""Every path the project uses, in one place.

Paths are derived from the repository root so that notebooks (which run with
``notebooks/`` as their working directory), ``run_all.py`` and the tests all
agree. ``PIPELINE_OUTPUTS`` moves the outputs folder (the tests use it to keep
each run in a temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

PROJ_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = PACKAGE_DIR / "sql"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
PARAMS_DIR = PROJ_ROOT / "params"
DEFAULT_PARAMS_FILE = PARAMS_DIR / "default.yaml"
ENV_FILE = PROJ_ROOT / ".env"


def outputs_dir() -> Path:
    """Root of everything a run leaves behind (git-ignored)."""
    return Path(os.environ.get("PIPELINE_OUTPUTS", PROJ_ROOT / "outputs")).resolve()


def runs_dir() -> Path:
    return outputs_dir() / "runs"


def run_dir(run_id: str) -> Path:
    return runs_dir() / run_id


def raw_dir() -> Path:
    """Where the generator writes batch folders and ingest looks for them by default."""
    return outputs_dir() / "raw"


def env_setting(name: str) -> str | None:
    """A setting from the environment, else from the git-ignored ``.env`` at the repository root."""
    return os.environ.get(name) or (dotenv_values(ENV_FILE).get(name) if ENV_FILE.exists() else None)


def resolve_path(path: str | Path) -> Path:
    """Resolve a user-given path: absolute as is, relative to the repository root otherwise.

    Notebooks run with ``notebooks/`` as their working directory, so a relative
    ``params/default.yaml`` must not depend on the current directory.
    """
    path = Path(path).expanduser()
    return path if path.is_absolute() else (PROJ_ROOT / path).resolve()


def user_path(path: str | Path) -> Path:
    """A path typed by the user (a command-line option, a params file entry): relative to the current folder."""
    return Path(path).expanduser().resolve()
