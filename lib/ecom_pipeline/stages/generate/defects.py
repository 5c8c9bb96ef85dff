"""Known defects, injected into a batch's rows at ``defect_rate`` and listed in its manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ecom_pipeline.stages.generate.world import DAY_S, fmt_ts

log = logging.getLogger(__name__)


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


def spoil_case(value: str, rng: np.random.Generator) -> str:
    styles = (f"  {value.upper()} ", f" {value.lower()}", f"{value.title()}  ", f"\t{value.swapcase()}")
    return styles[int(rng.integers(0, len(styles)))]


def append_rows(table: pd.DataFrame, extra: list, name: str, key: str, d: Defects, offset: int = 0) -> pd.DataFrame:
    """Append extra defective rows after ``table`` and list them; ``offset`` is the table's first row in its file."""
    if not extra:
        return table
    start = offset + len(table)
    for k, (defect, outcome, reasons, row) in enumerate(extra):
        d.add(name, row[key], start + k, defect, outcome, reasons)
    return pd.concat([table, pd.DataFrame([row for *_, row in extra], dtype=object)], ignore_index=True)


def inject_customer_defects(table: pd.DataFrame, real: int, d: Defects, next_number: int) -> tuple[pd.DataFrame, int]:
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
        row["email"] = spoil_case(base.iloc[i]["email"], d.rng)
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
        table.at[i, "state"] = spoil_case(state, d.rng)
        table.at[i, "email"] = f" {email.upper()}"
        d.add(
            "customers",
            table.at[i, "customer_id"],
            i,
            "whitespace_case",
            "repaired",
            expected={"state": state, "email": email},
        )
    return append_rows(table, extra, "customers", "customer_id", d), next_number


def inject_product_defects(table: pd.DataFrame, real: int, d: Defects, next_number: int) -> tuple[pd.DataFrame, int]:
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
        table.at[i, "category"] = spoil_case(category, d.rng)
        d.add("products", table.at[i, "product_id"], i, "whitespace_case", "repaired", expected={"category": category})
    return append_rows(table, extra, "products", "product_id", d), next_number


def inject_order_defects(
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
        orders.at[i, "order_date"] = fmt_ts(np.array([before]))[0].as_py()
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
        orders.at[i, "status"] = spoil_case(status, d.rng)
        orders.at[i, "payment_method"] = spoil_case(method, d.rng)
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

    orders = append_rows(orders, extra_orders, "orders", "order_id", d, order_row)
    items = append_rows(items, extra_items, "order_items", "order_item_id", d, item_row)
    return orders, items, bad_orders
