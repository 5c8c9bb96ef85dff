"""Synthetic store data: deterministic, vectorised, with known effects and known defects.

A call to :func:`generate_next_batch` writes one batch folder in the CSV
contract plus ``manifest.json``. The first batch covers ``days`` days from
``start_date`` with the whole catalogue; each later batch covers the next
``next_days`` days as deltas: new customers, customers who moved, repriced
products, new orders and status changes of earlier orders. The generator's
own world (current customers, products and open orders) is kept in
``<raw>/_state`` so the next batch continues it.

Speed comes from numpy: Faker only fills small pools of names, streets and
cities, and every row is built by indexing those pools. Money is handled in
integer cents and formatted by Arrow, which also writes the CSV.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ecom_pipeline import catalogue, config, contract
from ecom_pipeline.params import GenerateParams

log = logging.getLogger(__name__)

STATE_DIR_NAME = "_state"
DAY_S = 86_400
EPOCH = dt.datetime(1970, 1, 1)
# Days after the order at which each status is reached (hours added per order).
LIFECYCLE_DAYS = {"processing": 1, "shipped": 3, "delivered": 6, "cancelled": 1, "returned": 20}
ITEM_COUNT_P = (0.45, 0.25, 0.15, 0.10, 0.05)
QUANTITY_P = (0.70, 0.20, 0.07, 0.03)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "proton.me", "example.com", "mail.com")
NAME_LOCALES = (("en_US", 0.9), ("de_DE", 0.04), ("fr_FR", 0.03), ("es_ES", 0.03))


# -- small helpers -------------------------------------------------------------


def _fmt_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _fmt_money(cents: np.ndarray) -> pa.Array:
    cents = pa.array(cents, pa.int64())
    whole = pc.cast(pc.divide(cents, 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pc.remainder(cents, 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _fmt_ts(seconds: np.ndarray) -> pa.Array:
    ts = pa.array(np.asarray(seconds, dtype="int64"), pa.timestamp("s"))
    return pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S")


def _fmt_date(days: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(days, dtype="int32"), pa.date32()), pa.string())


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


# -- pools ---------------------------------------------------------------------


@dataclass
class Pools:
    """Small Faker-made pools that rows index into."""

    first_names: np.ndarray
    last_names: np.ndarray
    streets: np.ndarray
    cities: np.ndarray
    states: np.ndarray

    @classmethod
    def build(cls, seed: int, size: int = 600) -> Pools:
        from faker import Faker

        first, last = [], []
        for locale, share in NAME_LOCALES:
            fake = Faker(locale)
            fake.seed_instance(seed)
            n = max(10, int(size * share))
            first += [fake.first_name() for _ in range(n)]
            last += [fake.last_name() for _ in range(n)]
        fake = Faker("en_US")
        fake.seed_instance(seed + 1)
        streets = [fake.street_address() for _ in range(size * 2)]
        places = sorted({(fake.city(), fake.state_abbr(include_territories=False)) for _ in range(size // 2)})
        return cls(
            np.array(first, dtype=object),
            np.array(last, dtype=object),
            np.array(streets, dtype=object),
            np.array([p[0] for p in places], dtype=object),
            np.array([p[1] for p in places], dtype=object),
        )


# -- the generator's world -----------------------------------------------------


@dataclass
class World:
    """What the store looks like after the last batch; saved under ``_state``."""

    customers: pd.DataFrame
    products: pd.DataFrame
    open_orders: pd.DataFrame
    last_day: int  # day number of the last generated day
    next_ids: dict[str, int]
    batches: list[str] = field(default_factory=list)

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        for name in ("customers", "products", "open_orders"):
            getattr(self, name).to_parquet(state_dir / f"{name}.parquet", index=False)
        (state_dir / "state.json").write_text(
            json.dumps({"last_day": self.last_day, "next_ids": self.next_ids, "batches": self.batches}, indent=2)
        )

    @classmethod
    def load(cls, state_dir: Path) -> World | None:
        if not (state_dir / "state.json").exists():
            return None
        meta = json.loads((state_dir / "state.json").read_text())
        frames = {n: pd.read_parquet(state_dir / f"{n}.parquet") for n in ("customers", "products", "open_orders")}
        return cls(**frames, last_day=meta["last_day"], next_ids=meta["next_ids"], batches=meta["batches"])


def _daily_weights(days: np.ndarray, start_day: int, effects) -> np.ndarray:
    """Relative order volume per day: weekday/weekend, seasonal peak, growth trend."""
    dates = pd.to_datetime(days, unit="D")
    weekend = np.where(dates.day_of_week >= 5, effects.weekend_uplift, 1.0)
    peak = np.where(np.isin(dates.month, effects.peak_months), effects.peak_uplift, 1.0)
    trend = 1.0 + effects.yearly_growth * (days - start_day) / 365.0
    return weekend * peak * trend


def _new_customers(
    rng: np.random.Generator, pools: Pools, first_number: int, reg_days: np.ndarray, effects
) -> pd.DataFrame:
    n = len(reg_days)
    numbers = np.arange(first_number, first_number + n)
    fi = rng.integers(0, len(pools.first_names), n)
    li = rng.integers(0, len(pools.last_names), n)
    place = rng.integers(0, len(pools.cities), n)
    first, last = pools.first_names[fi], pools.last_names[li]
    folded_first = np.array([_ascii_fold(x) for x in pools.first_names], dtype=object)[fi]
    folded_last = np.array([_ascii_fold(x) for x in pools.last_names], dtype=object)[li]
    domain = np.array(EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(EMAIL_DOMAINS), n)]
    email = folded_first + "." + folded_last + "." + numbers.astype(str).astype(object) + "@" + domain
    phone = (
        "+1-"
        + rng.integers(200, 999, n).astype(str).astype(object)
        + "-555-"
        + pd.Series(rng.integers(0, 9999, n)).astype(str).str.zfill(4).to_numpy(dtype=object)
    )
    reg_seconds = reg_days.astype(np.int64) * DAY_S + rng.integers(0, DAY_S, n)
    return pd.DataFrame(
        {
            "customer_id": _fmt_ids("C", numbers, 7).to_numpy(zero_copy_only=False),
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "address": pools.streets[rng.integers(0, len(pools.streets), n)],
            "city": pools.cities[place],
            "state": pools.states[place],
            "country": "US",
            "registration_day": reg_days.astype(np.int32),
            "updated_s": reg_seconds,
            # Purchase propensity: a Pareto tail gives the "top 20% bring most revenue" effect.
            "weight": rng.pareto(effects.pareto_alpha, n) + 1.0,
        }
    )


def _new_products(rng: np.random.Generator, n: int, first_number: int, updated_s: int) -> pd.DataFrame:
    names = list(catalogue.CATEGORIES)
    category = np.array(names, dtype=object)[np.arange(n) % len(names)]
    rows = []
    for name in names:
        cat = catalogue.CATEGORIES[name]
        idx = np.flatnonzero(category == name)
        lo, hi = cat.price_range
        price = np.exp(rng.uniform(np.log(lo), np.log(hi), len(idx)))
        margin = rng.uniform(*cat.margin_range, len(idx))
        sub = np.array(cat.sub_categories, dtype=object)[rng.integers(0, len(cat.sub_categories), len(idx))]
        brand = np.array(cat.brands, dtype=object)[rng.integers(0, len(cat.brands), len(idx))]
        word = np.array(catalogue.PRODUCT_WORDS, dtype=object)[rng.integers(0, len(catalogue.PRODUCT_WORDS), len(idx))]
        rows.append(
            pd.DataFrame(
                {
                    "position": idx,
                    "category": name,
                    "sub_category": sub,
                    "brand": brand,
                    "product_name": brand
                    + " "
                    + sub
                    + " "
                    + word
                    + " "
                    + (idx + first_number).astype(str).astype(object),
                    "price_cents": np.round(price * 100).astype(np.int64),
                    "margin": margin,
                }
            )
        )
    frame = pd.concat(rows).sort_values("position").reset_index(drop=True)
    frame["cost_cents"] = np.round(frame["price_cents"] * (1 - frame["margin"])).astype(np.int64)
    frame.insert(
        0, "product_id", _fmt_ids("P", np.arange(first_number, first_number + n), 5).to_numpy(zero_copy_only=False)
    )
    frame["stock_quantity"] = rng.integers(0, 500, n)
    frame["updated_s"] = updated_s
    # Popularity within a category (Zipf-like), so some products sell far more than others.
    frame["popularity"] = 1.0 / (1.0 + rng.permutation(n) % 50)
    return frame.drop(columns=["position", "margin"])


def _status_at(age_s: np.ndarray, fate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Status of each order at an age, and the age (seconds) at which that status began."""
    d = LIFECYCLE_DAYS
    steps = [
        (fate == "cancelled") & (age_s >= d["cancelled"] * DAY_S),
        "cancelled",
        d["cancelled"],
        (fate == "returned") & (age_s >= d["returned"] * DAY_S),
        "returned",
        d["returned"],
        age_s >= d["delivered"] * DAY_S,
        "delivered",
        d["delivered"],
        age_s >= d["shipped"] * DAY_S,
        "shipped",
        d["shipped"],
        age_s >= d["processing"] * DAY_S,
        "processing",
        d["processing"],
    ]
    conds, statuses, since = steps[0::3], steps[1::3], steps[2::3]
    status = np.select(conds, statuses, "pending").astype(object)
    since_s = np.select(conds, [s * DAY_S for s in since], 0)
    return status, since_s


def _is_open(status: np.ndarray, fate: np.ndarray) -> np.ndarray:
    return ~((status == "cancelled") | (status == "returned") | ((status == "delivered") & (fate == "delivered")))


# -- defects -------------------------------------------------------------------


@dataclass
class Defects:
    """Injected defects of one batch, and the outcome the clean stage must give each."""

    rate: float
    rng: np.random.Generator
    entries: list[dict[str, Any]] = field(default_factory=list)

    def count(self, rows: int, kinds: int) -> int:
        """How many rows get one kind of defect: the expected number, stochastically rounded."""
        expected = self.rate * rows / kinds
        return int(np.floor(expected + self.rng.random()))

    def pick(self, candidates: np.ndarray, n: int) -> np.ndarray:
        n = min(n, len(candidates))
        return np.sort(self.rng.choice(candidates, n, replace=False)) if n else np.array([], dtype=int)

    def add(
        self,
        table: str,
        key: str,
        row: int,
        defect: str,
        outcome: str,
        reasons: list[str] | None = None,
        expected: dict[str, str] | None = None,
    ) -> None:
        entry = {
            "table": table,
            "key": key,
            "row": int(row),
            "defect": defect,
            "outcome": outcome,
            "reasons": reasons or [],
        }
        if expected:
            entry["expected"] = expected
        self.entries.append(entry)


def _spoil_case(value: str, rng: np.random.Generator) -> str:
    styles = (f"  {value.upper()} ", f" {value.lower()}", f"{value.title()}  ", f"\t{value.swapcase()}")
    return styles[int(rng.integers(0, len(styles)))]


def _append_rows(table: pd.DataFrame, extra: list, name: str, key: str, d: Defects, offset: int = 0) -> pd.DataFrame:
    """Append extra defective rows after ``table`` and list them; ``offset`` is the table's first row in its file."""
    if not extra:
        return table
    start = offset + len(table)
    for k, (defect, outcome, reasons, row) in enumerate(extra):
        d.add(name, row[key], start + k, defect, outcome, reasons)
    return pd.concat([table, pd.DataFrame([row for *_, row in extra], dtype=object)], ignore_index=True)


def _inject_customer_defects(table: pd.DataFrame, real: int, d: Defects, next_number: int) -> tuple[pd.DataFrame, int]:
    """Customers: extra bad rows (never referenced by orders) and repairable real rows."""
    kinds = 6
    n = d.count(real, kinds)
    extra = []
    base = table.iloc[:real]

    def new_row(src: pd.Series) -> dict[str, Any]:
        nonlocal next_number
        row = src.to_dict()
        row["customer_id"] = f"C{next_number:07d}"
        local, domain = row["email"].split("@")
        row["email"] = f"{local.rsplit('.', 1)[0]}.{next_number}@{domain}"
        next_number += 1
        return row

    for i in d.pick(np.arange(real), n):  # exact duplicate line
        extra.append(("duplicate_row", "collapsed", [], base.iloc[i].to_dict()))
    for i in d.pick(np.arange(real), n):  # another id, same email after normalising
        row = new_row(base.iloc[i])
        row["email"] = _spoil_case(base.iloc[i]["email"], d.rng)
        extra.append(("duplicate_email", "quarantined", ["DUPLICATE_EMAIL"], row))
    for i in d.pick(np.arange(real), n):
        row = new_row(base.iloc[i])
        row["email"] = row["email"].replace("@", d.rng.choice(["@@", " at ", "@."]))
        extra.append(("invalid_email", "quarantined", ["INVALID_EMAIL"], row))
    for i in d.pick(np.arange(real), n):
        row = new_row(base.iloc[i])
        row["last_name"] = ""
        extra.append(("missing_value", "quarantined", ["MISSING_VALUE"], row))
    for i in d.pick(np.arange(real), n):
        row = new_row(base.iloc[i])
        row["registration_date"] = d.rng.choice(["2024-02-30", "31/12/2024", "yesterday"])
        extra.append(("malformed_date", "quarantined", ["MALFORMED_DATE"], row))
    for i in d.pick(np.arange(real), n):  # repairable: stray space and case
        state, email = table.at[i, "state"], table.at[i, "email"]
        table.at[i, "state"] = _spoil_case(state, d.rng)
        table.at[i, "email"] = f" {email.upper()}"
        d.add(
            "customers",
            table.at[i, "customer_id"],
            i,
            "whitespace_case",
            "repaired",
            expected={"state": state, "email": email},
        )
    return _append_rows(table, extra, "customers", "customer_id", d), next_number


def _inject_product_defects(table: pd.DataFrame, real: int, d: Defects, next_number: int) -> tuple[pd.DataFrame, int]:
    n = d.count(real, 5)
    extra = []
    base = table.iloc[:real]

    def new_row(src: pd.Series) -> dict[str, Any]:
        nonlocal next_number
        row = src.to_dict()
        row["product_id"] = f"P{next_number:05d}"
        next_number += 1
        return row

    for i in d.pick(np.arange(real), n):
        extra.append(("duplicate_row", "collapsed", [], base.iloc[i].to_dict()))
    for i in d.pick(np.arange(real), n):
        row = new_row(base.iloc[i])
        row["cost"], row["price"] = row["price"], row["cost"]
        extra.append(("cost_above_price", "quarantined", ["COST_ABOVE_PRICE"], row))
    for i in d.pick(np.arange(real), n):
        row = new_row(base.iloc[i])
        row["price"] = d.rng.choice([row["price"].replace(".", ","), "N/A", row["price"] + ".99"])
        extra.append(("malformed_number", "quarantined", ["MALFORMED_NUMBER"], row))
    for i in d.pick(np.arange(real), n):
        row = new_row(base.iloc[i])
        row["product_name"] = "   "
        extra.append(("missing_value", "quarantined", ["MISSING_VALUE"], row))
    for i in d.pick(np.arange(real), n):
        category = table.at[i, "category"]
        table.at[i, "category"] = _spoil_case(category, d.rng)
        d.add("products", table.at[i, "product_id"], i, "whitespace_case", "repaired", expected={"category": category})
    return _append_rows(table, extra, "products", "product_id", d), next_number


def _inject_order_defects(
    orders: pd.DataFrame, items: pd.DataFrame, registration_s: np.ndarray, d: Defects, row_offset: tuple[int, int]
) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """Orders and their items, one defect per order at most. Returns ids of orders to be quarantined."""
    n_orders = len(orders)
    n = d.count(n_orders, 8)
    free = np.ones(n_orders, dtype=bool)
    order_row, item_row = row_offset

    def take(k: int) -> np.ndarray:
        chosen = d.pick(np.flatnonzero(free), k)
        free[chosen] = False
        return chosen

    quarantined: dict[int, str] = {}
    for i in take(n):
        orders.at[i, "customer_id"] = f"C9{int(d.rng.integers(0, 10**6)):06d}X"
        quarantined[i] = "ORPHAN_CUSTOMER"
    for i in take(n):
        orders.at[i, "order_date"] = f"2099-{int(d.rng.integers(1, 13)):02d}-15T12:00:00"
        quarantined[i] = "FUTURE_DATE"
    for i in take(n):
        before = registration_s[i] - int(d.rng.integers(2, 60)) * DAY_S
        orders.at[i, "order_date"] = _fmt_ts(np.array([before]))[0].as_py()
        orders.at[i, "updated_at"] = orders.at[i, "order_date"]
        quarantined[i] = "BEFORE_REGISTRATION"
    for i in take(n):
        cents = round(float(orders.at[i, "total_amount"]) * 100) + int(d.rng.integers(100, 5000))
        orders.at[i, "total_amount"] = f"{cents // 100}.{cents % 100:02d}"
        quarantined[i] = "TOTAL_MISMATCH"
    for i in take(n):
        orders.at[i, "order_date"] = d.rng.choice(["2025-13-01T10:00:00", "15/06/2025 10:00", "not a date"])
        quarantined[i] = "MALFORMED_DATE"
    for i in take(n):
        orders.at[i, "payment_method"] = ""
        quarantined[i] = "MISSING_VALUE"
    for i, reason in quarantined.items():
        d.add("orders", orders.at[i, "order_id"], order_row + i, reason.lower(), "quarantined", [reason])
    for i in take(n):  # repairable
        status, method = orders.at[i, "status"], orders.at[i, "payment_method"]
        orders.at[i, "status"] = _spoil_case(status, d.rng)
        orders.at[i, "payment_method"] = _spoil_case(method, d.rng)
        d.add(
            "orders",
            orders.at[i, "order_id"],
            order_row + i,
            "whitespace_case",
            "repaired",
            expected={"status": status, "payment_method": method},
        )
    dup_orders = take(n)

    # Items: defects only in orders that have none.
    bad_orders = set(orders.loc[list(quarantined), "order_id"])
    in_bad = items["order_id"].isin(bad_orders).to_numpy()
    for i in np.flatnonzero(in_bad):
        d.add(
            "order_items",
            items.at[i, "order_item_id"],
            item_row + i,
            "parent_order_quarantined",
            "quarantined",
            ["ORDER_QUARANTINED"],
        )
    touched = (
        items["order_id"]
        .isin(set(orders.loc[np.concatenate([list(quarantined), dup_orders]).astype(int), "order_id"]))
        .to_numpy()
    )
    item_free = np.flatnonzero(~touched)
    n_items = d.count(len(items), 5)
    chosen_items = d.pick(item_free, n_items * 4)
    # One item per order at most, so each order's own total still matches its lines.
    chosen_items = chosen_items[~pd.Series(items["order_id"].to_numpy()[chosen_items]).duplicated().to_numpy()]
    groups = np.array_split(chosen_items, 4)
    for i in groups[0]:
        items.at[i, "quantity"] = d.rng.choice(["0", "-1", "-3"])
        d.add(
            "order_items",
            items.at[i, "order_item_id"],
            item_row + i,
            "bad_quantity",
            "quarantined",
            ["INVALID_QUANTITY", "LINE_TOTAL_MISMATCH"],
        )
    for i in groups[1]:
        items.at[i, "product_id"] = f"P9{int(d.rng.integers(0, 10**5)):05d}X"
        d.add(
            "order_items",
            items.at[i, "order_item_id"],
            item_row + i,
            "orphan_product",
            "quarantined",
            ["ORPHAN_PRODUCT"],
        )
    for i in groups[2]:
        items.at[i, "unit_price"] = d.rng.choice(["12.3.4", "abc", "$19.99"])
        d.add(
            "order_items",
            items.at[i, "order_item_id"],
            item_row + i,
            "malformed_number",
            "quarantined",
            ["MALFORMED_NUMBER"],
        )
    extra_items = []
    for i in groups[3]:  # extra line pointing at no order
        row = items.iloc[i].to_dict()
        row["order_item_id"] = row["order_item_id"] + "X"
        row["order_id"] = f"O9{int(d.rng.integers(0, 10**7)):07d}X"
        extra_items.append(("orphan_order", "quarantined", ["ORPHAN_ORDER"], row))
    for i in d.pick(item_free, n_items):
        extra_items.append(("duplicate_row", "collapsed", [], items.iloc[i].to_dict()))
    extra_orders = [("duplicate_row", "collapsed", [], orders.iloc[i].to_dict()) for i in dup_orders]

    orders = _append_rows(orders, extra_orders, "orders", "order_id", d, order_row)
    items = _append_rows(items, extra_items, "order_items", "order_item_id", d, item_row)
    return orders, items, bad_orders


# -- the batch -----------------------------------------------------------------


@dataclass
class BatchResult:
    batch_id: str
    path: Path
    row_counts: dict[str, int]
    defects: int


def _customer_rows(c: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        dtype=object,
        data={
            "customer_id": c["customer_id"],
            "first_name": c["first_name"],
            "last_name": c["last_name"],
            "email": c["email"],
            "phone": c["phone"],
            "address": c["address"],
            "city": c["city"],
            "state": c["state"],
            "country": c["country"],
            "registration_date": _fmt_date(c["registration_day"].to_numpy()).to_numpy(zero_copy_only=False),
            "updated_at": _fmt_ts(c["updated_s"].to_numpy()).to_numpy(zero_copy_only=False),
        },
    )


def _product_rows(p: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        dtype=object,
        data={
            "product_id": p["product_id"],
            "product_name": p["product_name"],
            "category": p["category"],
            "sub_category": p["sub_category"],
            "brand": p["brand"],
            "price": _fmt_money(p["price_cents"].to_numpy()).to_numpy(zero_copy_only=False),
            "cost": _fmt_money(p["cost_cents"].to_numpy()).to_numpy(zero_copy_only=False),
            "stock_quantity": p["stock_quantity"].astype(str),
            "updated_at": _fmt_ts(p["updated_s"].to_numpy()).to_numpy(zero_copy_only=False),
        },
    )


def _write_csv(frame: pd.DataFrame, writer: pacsv.CSVWriter | None, path: Path, table: str):
    data = pa.Table.from_pandas(
        frame, preserve_index=False, schema=pa.schema([(c, pa.string()) for c in contract.columns(table)])
    )
    if writer is None:
        writer = pacsv.CSVWriter(path, data.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
    writer.write_table(data)
    return writer


class _OrderWriter:
    """Streams orders and their items to CSV chunk by chunk, tracking row positions."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[str, pacsv.CSVWriter | None] = {"orders": None, "order_items": None}
        self.rows = {"orders": 0, "order_items": 0}

    def write(self, table: str, frame: pd.DataFrame) -> None:
        self.writers[table] = _write_csv(frame, self.writers[table], self.folder / contract.file_name(table), table)
        self.rows[table] += len(frame)

    def close(self) -> None:
        for table, writer in self.writers.items():
            if writer is None:  # no rows at all: a header-only file
                _write_csv(
                    pd.DataFrame(columns=contract.columns(table)), None, self.folder / contract.file_name(table), table
                ).close()
            else:
                writer.close()


def _make_orders(
    rng: np.random.Generator,
    p: GenerateParams,
    world: World,
    customers: pd.DataFrame,
    order_days: np.ndarray,
    as_of_s: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Orders on the given days (one entry per order), their items, and their lifecycle state."""
    n = len(order_days)
    effects = p.effects
    order_s = order_days.astype(np.int64) * DAY_S + rng.integers(7 * 3600, 23 * 3600, n)
    # Customers registered by the order's day, chosen in proportion to their propensity.
    by_reg = customers.sort_values("registration_day", kind="stable")
    reg_days = by_reg["registration_day"].to_numpy()
    cum = np.cumsum(by_reg["weight"].to_numpy())
    eligible = np.searchsorted(reg_days, order_days, side="right")
    eligible = np.maximum(eligible, 1)
    pick = np.searchsorted(cum, rng.random(n) * cum[eligible - 1], side="right")
    pick = np.minimum(pick, eligible - 1)
    cust = by_reg.iloc[pick]
    order_numbers = np.arange(world.next_ids["order"], world.next_ids["order"] + n)
    world.next_ids["order"] += n

    n_items = rng.choice(np.arange(1, 6), n, p=ITEM_COUNT_P)
    owner = np.repeat(np.arange(n), n_items)
    m = len(owner)
    cat_names = list(effects.category_weights)
    cat_of_line = rng.choice(len(cat_names), m, p=list(effects.category_weights.values()))
    products = world.products
    product_idx = np.empty(m, dtype=np.int64)
    for c, name in enumerate(cat_names):
        lines = np.flatnonzero(cat_of_line == c)
        members = np.flatnonzero(products["category"].to_numpy() == name)
        if len(members) == 0:
            members = np.arange(len(products))
        pop = products["popularity"].to_numpy()[members]
        product_idx[lines] = members[rng.choice(len(members), len(lines), p=pop / pop.sum())]
    quantity = rng.choice(np.arange(1, 5), m, p=QUANTITY_P)
    discount = rng.choice(list(effects.discount_mix), m, p=list(effects.discount_mix.values()))
    unit_cents = products["price_cents"].to_numpy()[product_idx]
    line_cents = np.floor(quantity * unit_cents * (100 - discount) / 100 + 0.5).astype(np.int64)
    total_cents = np.bincount(owner, weights=line_cents, minlength=n).astype(np.int64)

    fate = rng.choice(
        ["delivered", "cancelled", "returned"],
        n,
        p=[1 - effects.cancel_rate - effects.return_rate, effects.cancel_rate, effects.return_rate],
    )
    status, since = _status_at(as_of_s - order_s, fate)
    updated_s = order_s + np.where(since > 0, since + rng.integers(0, 6 * 3600, n), 0)
    updated_s = np.minimum(updated_s, as_of_s)
    method = np.array(list(effects.payment_mix), dtype=object)[
        rng.choice(len(effects.payment_mix), n, p=list(effects.payment_mix.values()))
    ]

    order_ids = _fmt_ids("O", order_numbers, 8).to_numpy(zero_copy_only=False)
    orders = pd.DataFrame(
        dtype=object,
        data={
            "order_id": order_ids,
            "customer_id": cust["customer_id"].to_numpy(),
            "order_date": _fmt_ts(order_s).to_numpy(zero_copy_only=False),
            "status": status,
            "payment_method": method,
            "shipping_address": cust["address"].to_numpy(),
            "total_amount": _fmt_money(total_cents).to_numpy(zero_copy_only=False),
            "updated_at": _fmt_ts(updated_s).to_numpy(zero_copy_only=False),
        },
    )
    item_numbers = np.arange(world.next_ids["item"], world.next_ids["item"] + m)
    world.next_ids["item"] += m
    items = pd.DataFrame(
        dtype=object,
        data={
            "order_item_id": _fmt_ids("OI", item_numbers, 9).to_numpy(zero_copy_only=False),
            "order_id": order_ids[owner],
            "product_id": products["product_id"].to_numpy()[product_idx],
            "quantity": quantity.astype(str).astype(object),
            "unit_price": _fmt_money(unit_cents).to_numpy(zero_copy_only=False),
            "discount_percentage": discount.astype(str).astype(object),
            "line_total": _fmt_money(line_cents).to_numpy(zero_copy_only=False),
        },
    )
    lifecycle = pd.DataFrame(
        {
            "order_id": order_ids,
            "order_s": order_s,
            "fate": fate,
            "status": status,
            "registration_s": cust["registration_day"].to_numpy().astype(np.int64) * DAY_S,
        }
    )
    return orders, items, lifecycle


def generate_next_batch(p: GenerateParams, raw: Path | None = None) -> BatchResult:
    """Write the next batch folder under ``raw`` (default ``outputs/raw``) and return what it holds."""
    raw = raw or config.raw_dir()
    state_dir = raw / STATE_DIR_NAME
    world = World.load(state_dir)
    first = world is None
    start_day = _day_number(p.start_date)
    if first:
        days = np.arange(start_day, start_day + p.days)
    else:
        days = np.arange(world.last_day + 1, world.last_day + 1 + p.next_days)
    end_day = int(days[-1])
    batch_id = str(dt.date(1970, 1, 1) + dt.timedelta(days=end_day))
    # Each batch has its own stream of randomness, derived from the seed and the batch date.
    rng = np.random.default_rng([p.seed, end_day])
    defects = Defects(p.defect_rate, np.random.default_rng([p.seed, end_day, 1]))
    pools = Pools.build(p.seed)
    as_of_s = (end_day + 1) * DAY_S - 1

    if first:
        n_before = int(p.customers * 0.6)
        reg = np.concatenate(
            [
                rng.integers(start_day - 730, start_day, n_before),
                rng.integers(start_day, end_day + 1, p.customers - n_before),
            ]
        )
        world = World(
            customers=_new_customers(rng, pools, 1, np.sort(reg), p.effects),
            products=_new_products(rng, p.products, 1, (start_day - 30) * DAY_S),
            open_orders=pd.DataFrame(),
            last_day=end_day,
            next_ids={"customer": p.customers + 1, "product": p.products + 1, "order": 1, "item": 1},
        )
        customer_out, product_out = world.customers, world.products
    else:
        new = _new_customers(
            rng,
            pools,
            world.next_ids["customer"],
            np.sort(rng.choice(days, p.new_customers_per_day * len(days))),
            p.effects,
        )
        world.next_ids["customer"] += len(new)
        moved = world.customers.sample(frac=p.customer_change_rate, random_state=rng).copy()
        place = rng.integers(0, len(pools.cities), len(moved))
        moved["city"], moved["state"] = pools.cities[place], pools.states[place]
        moved["address"] = pools.streets[rng.integers(0, len(pools.streets), len(moved))]
        moved["updated_s"] = days[0] * DAY_S + rng.integers(0, 6 * 3600, len(moved))
        world.customers = pd.concat([world.customers.drop(moved.index), moved, new]).sort_values("customer_id")
        world.customers = world.customers.reset_index(drop=True)
        repriced = world.products.sample(frac=p.price_change_rate, random_state=rng).copy()
        factor = rng.choice([0.85, 0.9, 0.95, 1.05, 1.1, 1.2], len(repriced))
        repriced["price_cents"] = np.round(repriced["price_cents"] * factor).astype(np.int64)
        repriced["cost_cents"] = np.minimum(repriced["cost_cents"], repriced["price_cents"])
        repriced["updated_s"] = days[0] * DAY_S + rng.integers(0, 3600, len(repriced))
        world.products.loc[repriced.index] = repriced
        customer_out, product_out = pd.concat([moved, new]), repriced
        world.last_day = end_day

    folder = raw / batch_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    tmp_rows = {}

    customers_csv = _customer_rows(customer_out).reset_index(drop=True)
    customers_csv, world.next_ids["customer"] = _inject_customer_defects(
        customers_csv, len(customers_csv), defects, world.next_ids["customer"]
    )
    _write_csv(customers_csv, None, folder / "customers.csv", "customers").close()
    tmp_rows["customers"] = len(customers_csv)
    products_csv = _product_rows(product_out).reset_index(drop=True)
    products_csv, world.next_ids["product"] = _inject_product_defects(
        products_csv, len(products_csv), defects, world.next_ids["product"]
    )
    _write_csv(products_csv, None, folder / "products.csv", "products").close()
    tmp_rows["products"] = len(products_csv)

    # Orders: volume per day from the effects, scaled so the first batch holds p.orders.
    first_days = np.arange(start_day, start_day + p.days)
    scale = p.orders / _daily_weights(first_days, start_day, p.effects).sum()
    expected = _daily_weights(days, start_day, p.effects) * scale
    per_day = rng.multinomial(p.orders, expected / expected.sum()) if first else rng.poisson(expected)
    order_days = np.repeat(days, per_day)
    writer = _OrderWriter(folder)

    # Status changes of earlier, still open orders come first in the file.
    if not world.open_orders.empty:
        oo = world.open_orders
        status, since = _status_at(as_of_s - oo["order_s"].to_numpy(), oo["fate"].to_numpy())
        changed = status != oo["status"].to_numpy()
        moved_on = oo[changed].copy()
        moved_on["status"] = status[changed]
        moved_on["updated_s"] = (
            moved_on["order_s"].to_numpy() + since[changed] + rng.integers(0, 6 * 3600, changed.sum())
        )
        moved_on["updated_s"] = np.minimum(moved_on["updated_s"], as_of_s)
        if len(moved_on):
            writer.write(
                "orders",
                pd.DataFrame(
                    {
                        "order_id": moved_on["order_id"],
                        "customer_id": moved_on["customer_id"],
                        "order_date": _fmt_ts(moved_on["order_s"].to_numpy()).to_numpy(zero_copy_only=False),
                        "status": moved_on["status"],
                        "payment_method": moved_on["payment_method"],
                        "shipping_address": moved_on["shipping_address"],
                        "total_amount": moved_on["total_amount"],
                        "updated_at": _fmt_ts(moved_on["updated_s"].to_numpy()).to_numpy(zero_copy_only=False),
                    }
                ),
            )
        oo = oo.assign(status=status)
        world.open_orders = oo[_is_open(status, oo["fate"].to_numpy())]

    open_parts = [world.open_orders]
    for chunk in np.array_split(order_days, max(1, -(-len(order_days) // p.chunk_orders))):
        if len(chunk) == 0:
            continue
        orders, items, life = _make_orders(rng, p, world, world.customers, chunk, as_of_s)
        orders, items, bad = _inject_order_defects(
            orders,
            items,
            life["registration_s"].to_numpy(),
            defects,
            (writer.rows["orders"], writer.rows["order_items"]),
        )
        still_open = _is_open(life["status"].to_numpy(), life["fate"].to_numpy()) & ~life["order_id"].isin(bad)
        keep = orders.iloc[: len(life)][still_open.to_numpy()]
        open_parts.append(
            life[still_open.to_numpy()]
            .assign(
                customer_id=keep["customer_id"].to_numpy(),
                payment_method=keep["payment_method"].to_numpy(),
                shipping_address=keep["shipping_address"].to_numpy(),
                total_amount=keep["total_amount"].to_numpy(),
            )
            .drop(columns=["registration_s"])
        )
        writer.write("orders", orders)
        writer.write("order_items", items)
    writer.close()
    world.open_orders = pd.concat(
        [part for part in open_parts if not part.empty] or [pd.DataFrame()], ignore_index=True
    )
    tmp_rows.update(writer.rows)
    world.batches.append(batch_id)

    manifest = _manifest(p, batch_id, days, first, folder, tmp_rows, defects)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    world.save(state_dir)
    log.info("generated batch %s: %s (%d defects)", batch_id, tmp_rows, len(defects.entries))
    return BatchResult(batch_id, folder, tmp_rows, len(defects.entries))


def _manifest(
    p: GenerateParams,
    batch_id: str,
    days: np.ndarray,
    first: bool,
    folder: Path,
    rows: dict[str, int],
    defects: Defects,
) -> dict[str, Any]:
    entries = []
    for e in defects.entries:
        entry = {k: v for k, v in e.items() if k != "row"}
        entry["line"] = e["row"] + 2  # line 1 is the header; no field holds a line break
        entries.append(entry)
    files = {}
    for table in contract.TABLE_ORDER:
        path = folder / contract.file_name(table)
        files[table] = {"file": path.name, "rows": rows[table], "sha256": contract.file_sha256(path)}
    return {
        "batch_id": batch_id,
        "kind": "initial" if first else "incremental",
        "first_day": str(dt.date(1970, 1, 1) + dt.timedelta(days=int(days[0]))),
        "last_day": batch_id,
        "seed": p.seed,
        "parameters": p.model_dump(mode="json", exclude={"effects"}),
        "effects": p.effects.model_dump(mode="json"),
        "files": files,
        "defects": entries,
    }


def run_stage(p: GenerateParams, run_id: str, raw: Path | None = None) -> dict[str, Any]:
    """The generate stage: one new batch (or nothing when the input is the user's own files)."""
    from ecom_pipeline import runs

    if not p.enabled:
        result: dict[str, Any] = {"skipped": "input comes from --input"}
    else:
        batch = generate_next_batch(p, raw)
        result = {"batch_id": batch.batch_id, **batch.row_counts, "defects": batch.defects}
    runs.save_stage_result(run_id, "generate", result)
    return result


def defect_summary(result: dict[str, Any], raw: Path | None = None) -> pd.DataFrame:
    """Injected defects of the stage's batch, counted by table, defect and expected outcome."""
    columns = ["table", "defect", "outcome"]
    if "batch_id" not in result:
        return pd.DataFrame(columns=[*columns, "rows"])
    manifest = json.loads(((raw or config.raw_dir()) / result["batch_id"] / "manifest.json").read_text())
    frame = pd.DataFrame(manifest["defects"], columns=columns)
    return frame.value_counts().rename("rows").reset_index().sort_values(columns[:2], ignore_index=True)
