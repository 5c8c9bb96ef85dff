"""Notebook hygiene and regression."""

import json
import re

import pytest
from golden import GOLDEN_DIR, reexecute

from ecom_pipeline import config
from ecom_pipeline.stages import STAGES


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_source_notebook_is_committed_without_outputs(stage):
    nb = json.loads((config.NOTEBOOKS_DIR / stage.notebook).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_source_notebook_parameters_are_literals_without_secrets(stage):
    nb = json.loads((config.NOTEBOOKS_DIR / stage.notebook).read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    lines = [ln for ln in "".join(tagged[0]["source"]).splitlines() if ln and not ln.startswith("#")]
    assert [ln.split(":")[0] for ln in lines] == ["run_id", "params_file"]
    assert all("url" not in ln.lower() and "password" not in ln.lower() for ln in lines)


def test_every_stage_has_a_golden_notebook():
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.ipynb")) == sorted(s.notebook for s in STAGES)


@pytest.mark.slow
def test_golden_notebooks_reexecute_with_the_same_outputs(fresh_db, tmp_path):
    done = reexecute(fresh_db, tmp_path / "outputs")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    cells = sum(
        c["cell_type"] == "code" for p in GOLDEN_DIR.glob("*.ipynb") for c in json.loads(p.read_text())["cells"]
    )
    assert re.search(rf"\b{cells} passed", done.stdout), done.stdout[-2000:]
