"""The pipeline's stages, in order: one notebook each, its code in the module of the same name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str
    purpose: str

    @property
    def module(self) -> str:
        """The stage's code, which its notebook calls (monitoring's is a command of its own too)."""
        return "ecom_pipeline.monitoring" if self.name == "monitoring" else f"ecom_pipeline.stages.{self.name}"


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


def stage_named(name: str) -> Stage:
    return STAGES[STAGE_NAMES.index(name)]


def select(from_stage: str | None = None, to_stage: str | None = None, only: list[str] | None = None) -> list[Stage]:
    """The stages to run, in pipeline order (ValueError for a range that is empty or mixed with ``only``)."""
    if only and (from_stage or to_stage):
        raise ValueError("--only cannot be combined with --from or --to")
    if only:
        return [s for s in STAGES if s.name in only]
    start = STAGE_NAMES.index(from_stage) if from_stage else 0
    stop = STAGE_NAMES.index(to_stage) if to_stage else len(STAGES) - 1
    if stop < start:
        raise ValueError(f"--to {to_stage} comes before --from {from_stage}")
    return list(STAGES[start : stop + 1])
