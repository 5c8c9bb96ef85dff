"""The generator: deterministic, consistent, with measurable effects and exactly the listed defects."""

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecom_pipeline import catalogue, contract
from ecom_pipeline.params import GenerateParams, load_params
from ecom_pipeline.stages.generate import generate_next_batch
from ecom_pipeline.stages.generate.world import fmt_ts

SMALL = load_params("params/small.yaml").generate
EPOCH = dt.datetime(1970, 1, 1)


def _read(folder: Path, table: str) -> pd.DataFrame:
    frame = pd.read_csv(folder / contract.file_name(table), dtype=str, keep_default_na=False)
    frame.index = frame.index + 2  # index = line number in the file
    return frame


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    return generate_next_batch(SMALL, raw).path


@pytest.fixture(scope="module")
def clean_batch(tmp_path_factory) -> Path:
    """20,000 orders without defects: enough to measure the business effects."""
    params = GenerateParams(orders=20_000, customers=4_000, products=300, days=365, defect_rate=0, seed=3)
    return generate_next_batch(params, tmp_path_factory.mktemp("raw")).path


def test_generate_same_seed_is_byte_identical(tmp_path, small_batch):
    again = generate_next_batch(SMALL, tmp_path / "again").path
    assert _digests(again) == _digests(small_batch)


def test_generate_other_seed_differs(tmp_path, small_batch):
    other = generate_next_batch(SMALL.model_copy(update={"seed": SMALL.seed + 1}), tmp_path / "other").path
    assert _digests(other)["orders.csv"] != _digests(small_batch)["orders.csv"]


def test_generate_volumes_and_manifest_counts(small_batch):
    manifest = _manifest(small_batch)
    duplicates = {
        t: sum(1 for d in manifest["defects"] if d["table"] == t and d["defect"] == "duplicate_row")
        for t in contract.TABLE_ORDER
    }
    orders = _read(small_batch, "orders")
    assert orders["order_id"].nunique() == SMALL.orders
    assert len(orders) == SMALL.orders + duplicates["orders"]
    for table in contract.TABLE_ORDER:
        assert manifest["files"][table]["rows"] == len(_read(small_batch, table))
        assert list(_read(small_batch, table).columns) == contract.columns(table)
    customers = _read(small_batch, "customers")
    assert SMALL.customers <= len(customers) <= SMALL.customers * 1.2


def test_generate_defect_rate_is_about_one_percent(small_batch):
    manifest = _manifest(small_batch)
    rows = sum(f["rows"] for f in manifest["files"].values())
    injected = [d for d in manifest["defects"] if d["defect"] != "parent_order_quarantined"]
    assert 0.005 <= len(injected) / rows <= 0.03


def _as_cleaned(folder: Path, table: str) -> pd.DataFrame:
    """The file as the clean stage must leave it: quarantined and duplicate lines out, repairs applied."""
    frame = _read(folder, table)
    for defect in _manifest(folder)["defects"]:
        if defect["table"] != table:
            continue
        if defect["outcome"] == "repaired":
            for column, value in defect["expected"].items():
                frame.loc[defect["line"], column] = value
        else:
            frame = frame.drop(index=defect["line"])
    return frame


def test_generate_clean_rows_follow_the_contract_rules(small_batch):
    customers, products, orders, items = (_as_cleaned(small_batch, t) for t in contract.TABLE_ORDER)

    assert customers["customer_id"].is_unique and customers["email"].str.lower().is_unique
    assert customers["email"].str.match(contract.EMAIL_PATTERN).all()
    price, cost = products["price"].astype(float), products["cost"].astype(float)
    assert (price > 0).all() and (cost >= 0).all() and (cost <= price).all()
    assert set(products["category"]) <= set(catalogue.CATEGORIES)
    assert set(orders["status"]) <= set(catalogue.ORDER_STATUSES)
    assert set(orders["payment_method"]) <= set(catalogue.PAYMENT_METHODS)

    q, p, d = items["quantity"].astype(int), items["unit_price"].astype(float), items["discount_percentage"].astype(int)
    assert (q > 0).all() and set(d) <= {0, 5, 10, 15, 20}
    assert np.allclose(items["line_total"].astype(float), q * p * (1 - d / 100), atol=0.00501)
    assert items["product_id"].isin(products["product_id"]).all()
    # An order whose line was quarantined keeps its total of the original lines (docs/csv_contract.md).
    lines = items.assign(lt=items["line_total"].astype(float)).groupby("order_id")["lt"].sum().round(2)
    raw_items = _read(small_batch, "order_items")
    touched = set(
        raw_items.loc[[d["line"] for d in _manifest(small_batch)["defects"] if d["table"] == "order_items"], "order_id"]
    )
    lines = lines[~lines.index.isin(touched)]
    totals = orders.set_index("order_id")["total_amount"].astype(float)
    assert len(lines) > 0.9 * len(orders)
    assert np.allclose(totals.loc[lines.index], lines, atol=0.005)
    registered = customers.set_index("customer_id")["registration_date"]
    order_day = orders["order_date"].str[:10]
    assert (order_day.to_numpy() >= registered.loc[orders["customer_id"]].to_numpy()).all()
    assert (orders["updated_at"] >= orders["order_date"]).all()
    assert items["order_id"].isin(orders["order_id"]).all()


def _defect_is_in_the_row(defect: dict, row, frame, frames: dict) -> bool:
    """The manifest's defect can be seen in its line (kinds without a visible mark count as seen)."""
    kind = defect["defect"]
    if kind == "duplicate_row":
        return (frame == row).all(axis=1).sum() == 2
    if kind == "invalid_email":
        return not re.match(contract.EMAIL_PATTERN, row["email"].strip().lower())
    if kind == "future_date":
        return row["order_date"].startswith("2099-")
    if kind == "missing_value":
        return (row.str.strip() == "").any()
    if kind == "bad_quantity":
        return int(row["quantity"]) <= 0
    if kind == "cost_above_price":
        return float(row["cost"]) > float(row["price"])
    if kind.startswith("orphan_"):
        parent = {"orphan_customer": "customers", "orphan_product": "products", "orphan_order": "orders"}[kind]
        key = {"customers": "customer_id", "products": "product_id", "orders": "order_id"}[parent]
        return row[key] not in set(frames[parent][key])
    if kind == "whitespace_case":
        return all(row[c] != v for c, v in defect["expected"].items())
    return True


def test_generate_manifest_defects_are_in_the_files_exactly(small_batch):
    manifest = _manifest(small_batch)
    frames = {t: _read(small_batch, t) for t in contract.TABLE_ORDER}
    kinds = set()
    for defect in manifest["defects"]:
        frame = frames[defect["table"]]
        row = frame.loc[defect["line"]]
        assert row.iloc[0] == defect["key"], defect
        kinds.add((defect["table"], defect["defect"]))
        assert _defect_is_in_the_row(defect, row, frame, frames), defect
        assert defect["outcome"] in {"quarantined", "repaired", "collapsed"}
        assert bool(defect["reasons"]) == (defect["outcome"] == "quarantined")
    # Every kind of defect is present in a small batch.
    assert len(kinds) >= 20, sorted(kinds)
    # Defective rows are never clean elsewhere: no line is listed twice.
    listed = [(d["table"], d["line"]) for d in manifest["defects"]]
    assert len(listed) == len(set(listed))


def test_generate_no_defects_when_rate_is_zero(clean_batch):
    assert _manifest(clean_batch)["defects"] == []


def test_generate_business_effects_are_measurable(clean_batch):
    orders = _read(clean_batch, "orders")
    items = _read(clean_batch, "order_items")
    products = _read(clean_batch, "products").set_index("product_id")
    effects = GenerateParams().effects
    when = pd.to_datetime(orders["order_date"])
    per_day = when.dt.normalize().value_counts()
    weekend = per_day[per_day.index.day_of_week >= 5].mean() / per_day[per_day.index.day_of_week < 5].mean()
    assert weekend == pytest.approx(effects.weekend_uplift, rel=0.08)

    # Seasonality, with the growth trend and the weekend effect taken out of the daily counts.
    day = per_day.index
    trend = 1 + effects.yearly_growth * (day - day.min()).days / 365
    level = per_day / trend / np.where(day.day_of_week >= 5, effects.weekend_uplift, 1.0)
    in_peak = day.month.isin(effects.peak_months)
    assert level[in_peak].mean() / level[~in_peak].mean() == pytest.approx(effects.peak_uplift, rel=0.08)

    h1, h2 = (when.dt.month <= 6).sum(), (when.dt.month.between(7, 10)).sum()
    assert h2 / 123 > h1 / 181  # growth: Jul-Oct busier per day than Jan-Jun

    mix = orders["payment_method"].value_counts(normalize=True)
    for method, share in effects.payment_mix.items():
        assert mix[method] == pytest.approx(share, abs=0.02)

    revenue = orders.assign(t=orders["total_amount"].astype(float)).groupby("customer_id")["t"].sum()
    top = revenue.sort_values(ascending=False)
    assert top.iloc[: int(len(top) * 0.2)].sum() / top.sum() > 0.5  # Pareto of customer value

    category = products.loc[items["product_id"], "category"].to_numpy()
    line_share = pd.Series(category).value_counts(normalize=True)
    for name, share in effects.category_weights.items():
        assert line_share[name] == pytest.approx(share, abs=0.02)

    final = orders[orders["status"].isin(["delivered", "cancelled", "returned"])]
    rates = final["status"].value_counts(normalize=True)
    assert rates["cancelled"] == pytest.approx(effects.cancel_rate, abs=0.01)


def test_generate_consecutive_batches_continue_the_world(tmp_path):
    raw = tmp_path / "raw"
    first = generate_next_batch(SMALL, raw).path
    second = generate_next_batch(SMALL, raw).path
    assert (first.name, second.name) == ("2025-03-01", "2025-03-02")
    assert _manifest(second)["kind"] == "incremental"

    c1, c2 = _read(first, "customers"), _read(second, "customers")
    o1, o2 = _read(first, "orders"), _read(second, "orders")
    i1, i2 = _read(first, "order_items"), _read(second, "order_items")
    p1, p2 = _read(first, "products"), _read(second, "products")
    bad2 = {d["key"] for d in _manifest(second)["defects"]}

    moved = c2[c2["customer_id"].isin(c1["customer_id"])]
    assert len(moved) > 0
    before = c1.drop_duplicates("customer_id").set_index("customer_id").loc[moved["customer_id"]]
    assert (moved["updated_at"].to_numpy() > before["updated_at"].to_numpy()).all()
    assert (
        (moved["city"].to_numpy() != before["city"].to_numpy())
        | (moved["address"].to_numpy() != before["address"].to_numpy())
    ).all()

    repriced = p2[p2["product_id"].isin(p1["product_id"]) & ~p2["product_id"].isin(bad2)]
    old = p1.drop_duplicates("product_id").set_index("product_id").loc[repriced["product_id"]]
    assert (repriced["updated_at"].to_numpy() > old["updated_at"].to_numpy()).all()

    changed = o2[o2["order_id"].isin(o1["order_id"])]
    assert len(changed) > 0  # status changes of earlier orders
    prior = o1.drop_duplicates("order_id").set_index("order_id").loc[changed["order_id"]]
    rank = {s: i for i, s in enumerate(["pending", "processing", "shipped", "delivered", "returned"])}
    rank["cancelled"] = 9
    assert (changed["updated_at"].to_numpy() > prior["updated_at"].to_numpy()).all()
    assert all(rank[a] > rank[b] for a, b in zip(changed["status"], prior["status"]))

    new_orders = o2[~o2["order_id"].isin(o1["order_id"]) & ~o2["order_id"].isin(bad2)]
    assert new_orders["order_date"].str.startswith("2025-03-02").all()
    known = set(c1["customer_id"]) | set(c2["customer_id"])
    assert new_orders["customer_id"].isin(known).all()
    assert not set(i2["order_item_id"]) & set(i1["order_item_id"])
    assert i2["order_id"].isin(set(o2["order_id"])).sum() >= len(i2) - len(bad2)


@given(st.lists(st.integers(min_value=-(10**10), max_value=10**10), min_size=1, max_size=50))
def test_fmt_ts_writes_what_python_writes_for_any_second(seconds):
    expected = [(EPOCH + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S") for s in seconds]
    assert fmt_ts(np.array(seconds)).to_pylist() == expected
