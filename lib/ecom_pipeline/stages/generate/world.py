"""The generator's world: constants, formatting in Arrow, the name pools, customers, products and
the order lifecycle, kept between batches in ``<raw>/_state``."""

from __future__ import annotations

import datetime as dt
import json
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecom_pipeline import catalogue

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


def fmt_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def fmt_money(cents: np.ndarray) -> pa.Array:
    cents = pa.array(cents, pa.int64())
    whole = pc.cast(pc.divide(cents, 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pc.remainder(cents, 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def fmt_ts(seconds: np.ndarray) -> pa.Array:
    """ISO 8601 without an offset (2025-06-22T17:07:58). Arrow's cast writes a space where the T goes, and is
    four times faster than its strftime."""
    ts = pa.array(np.asarray(seconds, dtype="int64"), pa.timestamp("s"))
    return pc.replace_substring(pc.cast(ts, pa.string()), " ", "T", max_replacements=1)


def fmt_date(days: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(days, dtype="int32"), pa.date32()), pa.string())


def day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def ascii_fold(text: str) -> str:
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


def daily_weights(days: np.ndarray, start_day: int, effects) -> np.ndarray:
    """Relative order volume per day: weekday/weekend, seasonal peak, growth trend."""
    dates = pd.to_datetime(days, unit="D")
    weekend = np.where(dates.day_of_week >= 5, effects.weekend_uplift, 1.0)
    peak = np.where(np.isin(dates.month, effects.peak_months), effects.peak_uplift, 1.0)
    trend = 1.0 + effects.yearly_growth * (days - start_day) / 365.0
    return weekend * peak * trend


def new_customers(
    rng: np.random.Generator, pools: Pools, first_number: int, reg_days: np.ndarray, effects
) -> pd.DataFrame:
    n = len(reg_days)
    numbers = np.arange(first_number, first_number + n)
    fi = rng.integers(0, len(pools.first_names), n)
    li = rng.integers(0, len(pools.last_names), n)
    place = rng.integers(0, len(pools.cities), n)
    first, last = pools.first_names[fi], pools.last_names[li]
    folded_first = np.array([ascii_fold(x) for x in pools.first_names], dtype=object)[fi]
    folded_last = np.array([ascii_fold(x) for x in pools.last_names], dtype=object)[li]
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
            "customer_id": fmt_ids("C", numbers, 7).to_numpy(zero_copy_only=False),
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


def new_products(rng: np.random.Generator, n: int, first_number: int, updated_s: int) -> pd.DataFrame:
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
        0, "product_id", fmt_ids("P", np.arange(first_number, first_number + n), 5).to_numpy(zero_copy_only=False)
    )
    frame["stock_quantity"] = rng.integers(0, 500, n)
    frame["updated_s"] = updated_s
    # Popularity within a category (Zipf-like), so some products sell far more than others.
    frame["popularity"] = 1.0 / (1.0 + rng.permutation(n) % 50)
    return frame.drop(columns=["position", "margin"])


def status_at(age_s: np.ndarray, fate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def is_open(status: np.ndarray, fate: np.ndarray) -> np.ndarray:
    return ~((status == "cancelled") | (status == "returned") | ((status == "delivered") & (fate == "delivered")))
