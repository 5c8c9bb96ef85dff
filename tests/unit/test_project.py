"""The project's own files: what a new user relies on."""

import re
import shutil
import subprocess

import pytest
import yaml

from ecom_pipeline import config


def test_environment_yml_parses_and_installs_the_project():
    env = yaml.safe_load((config.PROJ_ROOT / "environment.yml").read_text())
    assert any(str(d).startswith("python") for d in env["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[test]" in pip


def test_gitignore_keeps_lib_and_hides_outputs_secrets_and_coverage_data():
    if not (config.PROJ_ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("needs a git clone with git installed: .gitignore means nothing in an unpacked archive")
    ignored = subprocess.run(
        [
            "git",
            "-C",
            str(config.PROJ_ROOT),
            "check-ignore",
            "--no-index",
            "lib/ecom_pipeline/db.py",
            "outputs/runs/x/a.ipynb",
            ".env",
            "outputs/README.md",
            ".coverage",
            ".coverage.host.123.456",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == ["outputs/runs/x/a.ipynb", ".env", ".coverage", ".coverage.host.123.456"]


def test_readme_quick_start_has_the_two_commands():
    readme = (config.PROJ_ROOT / "README.md").read_text()
    assert ".venv/bin/pip install -e . && .venv/bin/python run_all.py" in readme
    assert '.venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest' in readme
    ci = (config.PROJ_ROOT / ".ci" / "run").read_text()
    assert '-m pip install --quiet -e ".[test' in ci and "-m pytest" in ci


def test_sql_files_name_the_work_tables_they_take_from_other_files():
    """A temp table (or a table of the schema work) passes between SQL files only with a header line saying
    where it comes from."""
    from ecom_pipeline.stages import warehouse

    files = {p: p.read_text() for p in config.SQL_DIR.rglob("*.sql") if "migrations" not in p.parts}
    creates = re.compile(r"create (?:temp|unlogged) table (?:work\.)?(\w+)")
    made = {name: path for path, text in files.items() for name in creates.findall(text)}
    made |= {f"scd_{d.removeprefix('dim_')}": config.SQL_DIR / "warehouse/scd2.sql" for d in warehouse.SCD2_KEYS}
    assert {"clean_orders", "analytics_orders", "scd_customer"} <= set(made)
    unsaid = []
    for path, text in files.items():
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("--"))
        for name, maker in made.items():
            if maker != path and re.search(rf"\b{name}\b", text) and not re.search(rf"\b{name}\b", header):
                unsaid.append(f"{path.relative_to(config.SQL_DIR)} reads {name} (made by {maker.name})")
    assert unsaid == []
