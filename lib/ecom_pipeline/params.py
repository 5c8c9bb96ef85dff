"""Typed, validated pipeline parameters.

A params file (``params/*.yaml``) has one section per stage. Every model
forbids unknown keys, so a misspelt parameter is refused with its name
instead of being ignored; ``--set section.key=value`` overrides are parsed as
YAML scalars and validated the same way.
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecom_pipeline import config


class ParamsError(ValueError):
    """A params file or override is wrong; the message names the parameter."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Effects(Strict):
    """Business effects the generator puts into the data (and lists in the manifest)."""

    weekend_uplift: float = Field(1.3, gt=0, description="orders on Sat/Sun relative to a weekday")
    peak_months: tuple[int, ...] = Field((11, 12), description="months of the seasonal peak")
    peak_uplift: float = Field(1.6, gt=0, description="orders in peak months relative to other months")
    yearly_growth: float = Field(0.2, gt=-1, description="growth of daily orders over a year")
    pareto_alpha: float = Field(1.2, gt=0, description="shape of customer purchase frequency (smaller = more skewed)")
    category_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "Electronics": 0.30,
            "Home & Kitchen": 0.22,
            "Fashion": 0.16,
            "Sports & Outdoors": 0.10,
            "Beauty": 0.08,
            "Books": 0.07,
            "Toys & Games": 0.07,
        },
        description="share of order lines per category",
    )
    payment_mix: dict[str, float] = Field(
        default_factory=lambda: {
            "credit_card": 0.40,
            "upi": 0.20,
            "debit_card": 0.15,
            "wallet": 0.10,
            "net_banking": 0.08,
            "cash_on_delivery": 0.07,
        },
        description="share of orders per payment method",
    )
    discount_mix: dict[int, float] = Field(
        default_factory=lambda: {0: 0.55, 5: 0.15, 10: 0.15, 15: 0.10, 20: 0.05},
        description="share of order lines per discount percentage",
    )
    cancel_rate: float = Field(0.05, ge=0, le=1)
    return_rate: float = Field(0.04, ge=0, le=1)

    @model_validator(mode="after")
    def _mixes_are_distributions(self) -> Effects:
        for name in ("category_weights", "payment_mix", "discount_mix"):
            mix = getattr(self, name)
            if not mix or any(v < 0 for v in mix.values()) or abs(sum(mix.values()) - 1) > 1e-6:
                raise ValueError(f"{name} must be non-negative shares summing to 1")
        if self.cancel_rate + self.return_rate >= 1:
            raise ValueError("cancel_rate + return_rate must be below 1")
        return self


class GenerateParams(Strict):
    enabled: bool = Field(True, description="false when the input comes from --input")
    seed: int = 42
    start_date: dt.date = dt.date(2025, 1, 1)
    days: int = Field(365, ge=1, description="days covered by the first batch")
    customers: int = Field(20_000, ge=10)
    products: int = Field(500, ge=10)
    orders: int = Field(100_000, ge=10, description="orders in the first batch")
    next_days: int = Field(1, ge=1, description="days covered by each later batch")
    new_customers_per_day: int = Field(20, ge=0)
    customer_change_rate: float = Field(0.002, ge=0, le=1, description="share of customers moving per batch")
    price_change_rate: float = Field(0.02, ge=0, le=1, description="share of products repriced per batch")
    status_change_rate: float = Field(0.3, ge=0, le=1, description="share of open orders advancing per batch")
    defect_rate: float = Field(0.01, ge=0, le=0.1, description="share of rows given a defect, 0 for clean data")
    chunk_orders: int = Field(200_000, ge=1000, description="orders generated per chunk (bounds memory)")
    effects: Effects = Effects()


class IngestParams(Strict):
    input_path: str | None = Field(None, description="batch folder or folder of batch folders; default outputs/raw")
    max_field_length: int = Field(10_000, ge=100, description="longer fields reject their line")
    max_record_lines: int = Field(50, ge=1, description="lines one record may span (quoted line breaks)")
    parallel: int = Field(2, ge=1, le=8, description="files loaded at once")


class CleanParams(Strict):
    tolerance: float = Field(0.01, ge=0, description="allowed difference of line_total and total_amount")
    future_tolerance_hours: int = Field(
        24, ge=0, description="dates and timestamps this far past now are still accepted"
    )
    earliest_date: dt.date = Field(dt.date(1970, 1, 1), description="dates and timestamps before this are quarantined")
    max_key_length: int = Field(100, ge=10, le=1000, description="longer ids (and categories) are quarantined")
    release_window_days: int = Field(30, ge=0, description="rows held for a missing parent are retried this long")
    bulk_rows: int = Field(50_000, ge=0, description="batches this large re-validate foreign keys in one pass")
    slices: int | None = Field(
        None,
        ge=1,
        le=64,
        description="parallel slices that type and check a large batch's rows; default: the machine's cores",
    )
    slice_rows: int = Field(100_000, ge=0, description="batches with fewer staged rows are checked in one slice")


class WarehouseParams(Strict):
    holiday_country: str = Field("US", min_length=2, description="public holidays in dim_date (ISO country code)")
    date_horizon_days: int = Field(365, ge=0, description="days dim_date reaches past the newest order")
    bulk_rows: int = Field(
        50_000,
        ge=0,
        description="unused since the warehouse keeps no foreign keys to drop "
        "(readers never wait); accepted so earlier params files load",
    )
    bi_personal_data: bool = Field(
        False,
        description="customers' names and e-mail in bi.customer_personal_data, "
        "readable by the BI role; off: not in bi at all",
    )


class QualityParams(Strict):
    fail_on: list[Literal["error", "warn"]] = Field(["error"], description="severities whose failures stop the run")
    workers: int = Field(2, ge=1, le=8, description="checks run at once, each on a connection of its own")
    max_rejected_share: float = Field(
        0.01, ge=0, le=1, description="a file of the latest load with more of its lines rejected stops the run"
    )


class AnalyticsParams(Strict):
    top_products: int = Field(20, ge=1, description="products in the top-products analysis")
    currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the amounts, shown in every money figure"
    )
    export_formats: list[Literal["csv", "parquet"]] = Field(
        ["csv", "parquet"], description="formats of the warehouse export for BI tools; [] turns it off"
    )


class MonitoringParams(Strict):
    history_runs: int = Field(30, ge=1, description="earlier runs and batches compared with")
    min_history: int = Field(5, ge=1, description="earlier runs or batches needed before judging durations and volumes")
    max_hours_since_success: float = Field(26.0, gt=0, description="warning when the last success is older")
    duration_factor: float = Field(2.0, gt=1, description="warning when a run takes this many times the median")
    max_event_lag_hours: float = Field(48.0, gt=0, description="newest order against the end of its batch's day")
    max_load_lag_hours: float = Field(26.0, gt=0, description="newest load of each layer against now")
    volume_threshold: float = Field(
        3.5, gt=0, description="robust z-score (median, MAD) beyond which rows are anomalous"
    )
    quality_drop: float = Field(5.0, gt=0, description="points below the median score that count as degradation")
    connect_timeout_s: int = Field(5, ge=1)
    lock_timeout_ms: int = Field(
        500, ge=1, description="a section waiting longer for a lock is reported, not waited for"
    )
    statement_timeout_s: float = Field(
        10.0, gt=0, description="a section query running longer is cancelled and reported"
    )
    resend_after_hours: float = Field(24.0, ge=0, description="a persisting alert is sent again after this long")
    sink_timeout_s: float = Field(10.0, gt=0, description="per webhook or SMTP attempt")


class OperationsParams(Strict):
    retention_days: int | None = Field(30, ge=1, description="a scheduled run removes older records; null keeps all")
    max_catch_up: int = Field(31, ge=1, description="missed schedule slots run after downtime, newest first kept")


class DatabaseParams(Strict):
    distributed: bool = Field(
        True, description="on a database with the citus extension, distribute the schema over its workers"
    )


class RunParams(Strict):
    kernel: str = Field("python3", description="Jupyter kernel that executes the notebooks")
    cell_timeout_s: int = Field(3600, ge=10)


class PipelineParams(Strict):
    run: RunParams = RunParams()
    database: DatabaseParams = DatabaseParams()
    generate: GenerateParams = GenerateParams()
    ingest: IngestParams = IngestParams()
    clean: CleanParams = CleanParams()
    warehouse: WarehouseParams = WarehouseParams()
    quality: QualityParams = QualityParams()
    analytics: AnalyticsParams = AnalyticsParams()
    monitoring: MonitoringParams = MonitoringParams()
    operations: OperationsParams = OperationsParams()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ParamsError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``generate.orders=5000`` -> ("generate.orders", 5000)."""
    if "=" not in text:
        raise ParamsError(f"override must look like section.key=value: {text!r}")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ParamsError(f"override has no parameter name: {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ParamsError(f"--set {key}: the value is not valid YAML: {raw!r}") from None
    except ValueError as exc:  # YAML reads 2025-02-30 as a date, then the calendar refuses it
        raise ParamsError(f"--set {key}: {raw.strip()!r} is not a valid value ({exc})") from None
    return key.strip(), value


def parameter_names(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every settable dotted name (``generate.orders``, ``generate.effects.cancel_rate``, ...)."""
    names = []
    for name, field in (model or PipelineParams).model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += parameter_names(annotation, f"{prefix}{name}.")
        else:
            names.append(prefix + name)
    return names


def suggest(name: str, known: list[str]) -> str:
    """`` (did you mean X?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:  # a right key in the wrong section, or without one
        leaves = difflib.get_close_matches(
            name.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in known], n=1, cutoff=0.8
        )
        close = [k for k in known if k.rsplit(".", 1)[-1] == leaves[0]][:1] if leaves else []
    return f" (did you mean {close[0]}?)" if close else ""


def _describe_errors(exc: ValidationError, source: str, overridden: dict[str, str]) -> str:
    """One line per problem, naming where the value came from: ``--set NAME`` or the params file."""
    known = parameter_names()
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        key = next(
            (k for k in overridden if k == where or k.startswith(where + ".") or where.startswith(k + ".")), None
        )
        origin = f"--set {key}" if key else f"{source}: {where}"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {origin}: unknown parameter{suggest(key or where, known)}")
        else:
            lines.append(f"  {origin}: {err['msg']} (got {err.get('input')!r})")
    return "invalid parameters:\n" + "\n".join(lines)


def load_params(path: str | Path = config.DEFAULT_PARAMS_FILE, overrides: list[str] | None = None) -> PipelineParams:
    """Read, override and validate a params file (a relative path is the repository's: notebooks run elsewhere)."""
    path = config.resolve_path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, ValueError) as exc:
        raise ParamsError(f"params file {path} is not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ParamsError(f"params file {path} must be a mapping of sections")
    overridden = {}
    for override in overrides or []:
        key, value = parse_override(override)
        _set_dotted(tree, key, value)
        overridden[key] = override
    try:
        return PipelineParams.model_validate(tree)
    except ValidationError as exc:
        raise ParamsError(_describe_errors(exc, path.name, overridden)) from None


def params_file(given: str | None) -> Path:
    """The params file a command was given (relative to the current folder), else the project's default."""
    if not given:
        return config.DEFAULT_PARAMS_FILE
    path = config.user_path(given)
    if not path.is_file():
        hint = config.resolve_path(given)
        also = f" (paths are relative to the current folder; did you mean {hint}?)" if hint.is_file() else ""
        raise ParamsError(f"params file not found: {path}{also}")
    return path


def dump_params(params: PipelineParams, path: Path) -> None:
    """Write fully resolved parameters (defaults filled in) as YAML."""
    path.write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
