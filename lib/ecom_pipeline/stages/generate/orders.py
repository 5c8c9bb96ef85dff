"""Orders and their lines for a span of days, vectorised over pools and the world's customers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ecom_pipeline.params import GenerateParams
from ecom_pipeline.stages.generate.world import (
    DAY_S,
    ITEM_COUNT_P,
    QUANTITY_P,
    World,
    fmt_ids,
    fmt_money,
    fmt_ts,
    status_at,
)

log = logging.getLogger(__name__)


def make_orders(
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
    status, since = status_at(as_of_s - order_s, fate)
    updated_s = order_s + np.where(since > 0, since + rng.integers(0, 6 * 3600, n), 0)
    updated_s = np.minimum(updated_s, as_of_s)
    method = np.array(list(effects.payment_mix), dtype=object)[
        rng.choice(len(effects.payment_mix), n, p=list(effects.payment_mix.values()))
    ]

    order_ids = fmt_ids("O", order_numbers, 8).to_numpy(zero_copy_only=False)
    orders = pd.DataFrame(
        dtype=object,
        data={
            "order_id": order_ids,
            "customer_id": cust["customer_id"].to_numpy(),
            "order_date": fmt_ts(order_s).to_numpy(zero_copy_only=False),
            "status": status,
            "payment_method": method,
            "shipping_address": cust["address"].to_numpy(),
            "total_amount": fmt_money(total_cents).to_numpy(zero_copy_only=False),
            "updated_at": fmt_ts(updated_s).to_numpy(zero_copy_only=False),
        },
    )
    item_numbers = np.arange(world.next_ids["item"], world.next_ids["item"] + m)
    world.next_ids["item"] += m
    items = pd.DataFrame(
        dtype=object,
        data={
            "order_item_id": fmt_ids("OI", item_numbers, 9).to_numpy(zero_copy_only=False),
            "order_id": order_ids[owner],
            "product_id": products["product_id"].to_numpy()[product_idx],
            "quantity": quantity.astype(str).astype(object),
            "unit_price": fmt_money(unit_cents).to_numpy(zero_copy_only=False),
            "discount_percentage": discount.astype(str).astype(object),
            "line_total": fmt_money(line_cents).to_numpy(zero_copy_only=False),
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
