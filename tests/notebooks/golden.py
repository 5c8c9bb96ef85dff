"""Golden executed notebooks: how they are made and how they are re-executed.

Regenerate them after changing a notebook or what it shows:

    python tests/notebooks/golden.py

They come from ``run_all.py --params params/small.yaml`` on a fresh database
and an empty outputs folder; the injected parameters are rewritten to the
stable ``run_id = "golden"`` and ``params_file = "params/small.yaml"``, which
is what the re-execution under nbval uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from ecom_pipeline import config, db
from ecom_pipeline.stages import STAGES

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
SANITIZE = Path(__file__).resolve().parent / "sanitize.cfg"
INJECTED = 'run_id = "golden"\nparams_file = "params/small.yaml"\n'


def make_golden() -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp, db.scratch_database(db.database_url(), "golden") as url:
        env = {**os.environ, "DATABASE_URL": url, "PIPELINE_OUTPUTS": tmp, "CI": "true"}
        subprocess.run(
            [
                sys.executable,
                str(config.PROJ_ROOT / "run_all.py"),
                "--params",
                "params/small.yaml",
                "--run-id",
                "golden",
            ],
            env=env,
            check=True,
        )
        written = []
        for stage in STAGES:
            nb = nbformat.read(Path(tmp) / "runs" / "golden" / stage.notebook, as_version=4)
            for cell in nb.cells:
                if "injected-parameters" in cell.metadata.get("tags", []):
                    cell.source = INJECTED
                    cell.id = "injected-parameters"  # papermill gives it a random id
            nb.metadata.pop("papermill", None)
            for cell in nb.cells:
                cell.metadata.pop("papermill", None)
                cell.metadata.pop("execution", None)
            target = GOLDEN_DIR / stage.notebook
            nbformat.write(nb, target)
            written.append(target)
        return written


def reexecute(database_url: str, outputs: Path) -> subprocess.CompletedProcess:
    """Re-run the golden notebooks in order under nbval and compare their outputs."""
    env = {**os.environ, "DATABASE_URL": database_url, "PIPELINE_OUTPUTS": str(outputs)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "0",  # the notebooks run in order, in one process: each stage reads what the one before wrote
            "--nbval",
            "--nbval-sanitize-with",
            str(SANITIZE),
            "-p",
            "no:cacheprovider",
            "-q",
            *sorted(str(p) for p in GOLDEN_DIR.glob("*.ipynb")),
        ],
        cwd=config.PROJ_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


if __name__ == "__main__":
    for path in make_golden():
        print(f"wrote {path.relative_to(config.PROJ_ROOT)}")
