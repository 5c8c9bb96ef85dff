import datetime as dt

import pytest

from ecom_pipeline import config
from ecom_pipeline.params import ParamsError, load_params, parse_override


def test_load_params_default_file_validates():
    params = load_params()
    assert params.generate.orders == 100_000
    assert params.generate.start_date == dt.date(2025, 1, 1)


def test_load_params_override_is_typed():
    params = load_params("params/small.yaml", ["generate.orders=2500", "generate.start_date=2024-06-01"])
    assert params.generate.orders == 2500
    assert params.generate.start_date == dt.date(2024, 6, 1)


def test_load_params_unknown_parameter_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate:\n  ordres: 10\n")
    with pytest.raises(ParamsError, match=r"generate\.ordres: unknown parameter"):
        load_params(bad)


def test_load_params_unknown_override_is_named():
    with pytest.raises(ParamsError, match=r"ingest\.paralel: unknown parameter"):
        load_params("params/small.yaml", ["ingest.paralel=3"])


def test_load_params_wrong_type_is_named():
    with pytest.raises(ParamsError, match=r"generate\.orders: .*integer"):
        load_params("params/small.yaml", ["generate.orders=many"])


def test_load_params_distributed_switch_takes_only_a_boolean():
    assert load_params("params/small.yaml").database.distributed is True  # detected unless turned off
    assert load_params("params/small.yaml", ["database.distributed=false"]).database.distributed is False
    with pytest.raises(ParamsError, match=r"database\.distributed: .*boolean"):
        load_params("params/small.yaml", ["database.distributed=maybe"])


def test_load_params_out_of_range_is_refused():
    with pytest.raises(ParamsError, match=r"generate\.defect_rate"):
        load_params("params/small.yaml", ["generate.defect_rate=0.5"])


def test_load_params_mix_must_sum_to_one():
    with pytest.raises(ParamsError, match="payment_mix must be non-negative shares summing to 1"):
        load_params("params/small.yaml", ["generate.effects.payment_mix={upi: 0.5}"])


def test_load_params_missing_file_is_clear(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_load_params_invalid_yaml_is_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_load_params_non_mapping_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ParamsError, match="must be a mapping"):
        load_params(bad)


@pytest.mark.parametrize("text", ["generate.orders", "=5"])
def test_parse_override_needs_name_and_value(text):
    with pytest.raises(ParamsError):
        parse_override(text)


def test_parse_override_parses_yaml_scalars():
    assert parse_override("ingest.input_path=null") == ("ingest.input_path", None)
    assert parse_override("generate.defect_rate=0.02") == ("generate.defect_rate", 0.02)


@pytest.mark.parametrize(
    "override, message",
    [
        ("generate.start_date=2025-02-30", "--set generate.start_date: '2025-02-30' is not a valid value"),
        ("generate.orders=[1", "--set generate.orders: the value is not valid YAML"),
    ],
)
def test_override_with_an_impossible_value_names_the_set(override, message):
    with pytest.raises(ParamsError, match=message):
        load_params(config.DEFAULT_PARAMS_FILE, [override])


def test_params_file_with_an_impossible_date_is_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate:\n  start_date: 2025-02-30\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


@pytest.mark.parametrize(
    "override, name",
    [
        ("clean.slices=0", r"clean\.slices"),
        ("clean.slices=two", r"clean\.slices"),
        ("clean.slice_rows=-1", r"clean\.slice_rows"),
    ],
)
def test_load_params_refuses_unusable_slices(override, name):
    with pytest.raises(ParamsError, match=name):
        load_params("params/small.yaml", [override])


@pytest.mark.parametrize("code", ["usd", "US", "DOLLAR", "$", "EU'R"])
def test_the_currency_is_an_iso_code(code):
    with pytest.raises(ParamsError, match=r"analytics\.currency"):
        load_params("params/small.yaml", [f"analytics.currency={code}"])
    assert load_params("params/small.yaml", ["analytics.currency=EUR"]).analytics.currency == "EUR"
