"""One batch: the world advanced to the next days, its rows with their defects, the folder written."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecom_pipeline import config
from ecom_pipeline.params import GenerateParams
from ecom_pipeline.stages.generate.defects import (
    Defects,
    inject_customer_defects,
    inject_order_defects,
    inject_product_defects,
)
from ecom_pipeline.stages.generate.orders import make_orders
from ecom_pipeline.stages.generate.world import (
    DAY_S,
    STATE_DIR_NAME,
    Pools,
    World,
    daily_weights,
    day_number,
    fmt_ts,
    is_open,
    new_customers,
    new_products,
    status_at,
)
from ecom_pipeline.stages.generate.writer import (
    OrderWriter,
    build_manifest,
    customer_rows,
    product_rows,
    write_csv,
)

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    batch_id: str
    path: Path
    row_counts: dict[str, int]
    defects: int


def generate_next_batch(p: GenerateParams, raw: Path | None = None) -> BatchResult:
    """Write the next batch folder under ``raw`` (default ``outputs/raw``) and return what it holds."""
    raw = raw or config.raw_dir()
    state_dir = raw / STATE_DIR_NAME
    world = World.load(state_dir)
    first = world is None
    start_day = day_number(p.start_date)
    if first:
        days = np.arange(start_day, start_day + p.days)
    else:
        days = np.arange(world.last_day + 1, world.last_day + 1 + p.next_days)
    end_day = int(days[-1])
    batch_id = str(dt.date(1970, 1, 1) + dt.timedelta(days=end_day))
    # Each batch has its own stream of randomness, derived from the seed and the batch date; the steps
    # below draw from it in a fixed order, so a batch is the same whenever it is made.
    rng = np.random.default_rng([p.seed, end_day])
    defects = Defects(p.defect_rate, np.random.default_rng([p.seed, end_day, 1]))
    pools = Pools.build(p.seed)
    as_of_s = (end_day + 1) * DAY_S - 1
    if first:
        world = first_world(p, rng, pools, start_day, end_day)
        customers, products = world.customers, world.products
    else:
        customers, products = advance_world(world, p, rng, pools, days)

    folder = raw / batch_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rows = write_parties(folder, world, customers, products, defects)
    new_order_days = order_days(p, rng, days, start_day, first)
    writer = OrderWriter(folder)
    write_status_changes(writer, world, rng, as_of_s)  # first in the file: they are about earlier orders
    write_new_orders(writer, world, p, rng, defects, new_order_days, as_of_s)
    rows.update(writer.rows)
    world.batches.append(batch_id)

    manifest = build_manifest(p, batch_id, days, first, folder, rows, defects)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    world.save(state_dir)
    log.info("generated batch %s: %s (%d defects)", batch_id, rows, len(defects.entries))
    return BatchResult(batch_id, folder, rows, len(defects.entries))


def first_world(p: GenerateParams, rng: np.random.Generator, pools: Pools, start_day: int, end_day: int) -> World:
    """The world of the first batch: the whole catalogue; customers registered before it and during it."""
    n_before = int(p.customers * 0.6)
    reg = np.concatenate(
        [
            rng.integers(start_day - 730, start_day, n_before),
            rng.integers(start_day, end_day + 1, p.customers - n_before),
        ]
    )
    return World(
        customers=new_customers(rng, pools, 1, np.sort(reg), p.effects),
        products=new_products(rng, p.products, 1, (start_day - 30) * DAY_S),
        open_orders=pd.DataFrame(),
        last_day=end_day,
        next_ids={"customer": p.customers + 1, "product": p.products + 1, "order": 1, "item": 1},
    )


def advance_world(
    world: World, p: GenerateParams, rng: np.random.Generator, pools: Pools, days: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The world moved on to ``days``: new customers, customers who moved, repriced products.

    Returns the customers and the products the batch sends: the new and the changed ones.
    """
    new = new_customers(
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
    world.last_day = int(days[-1])
    return pd.concat([moved, new]), repriced


def write_parties(
    folder: Path, world: World, customers: pd.DataFrame, products: pd.DataFrame, defects: Defects
) -> dict[str, int]:
    """customers.csv and products.csv, with their defects; returns the rows of each."""
    customers_csv = customer_rows(customers).reset_index(drop=True)
    customers_csv, world.next_ids["customer"] = inject_customer_defects(
        customers_csv, len(customers_csv), defects, world.next_ids["customer"]
    )
    write_csv(customers_csv, None, folder / "customers.csv", "customers").close()
    products_csv = product_rows(products).reset_index(drop=True)
    products_csv, world.next_ids["product"] = inject_product_defects(
        products_csv, len(products_csv), defects, world.next_ids["product"]
    )
    write_csv(products_csv, None, folder / "products.csv", "products").close()
    return {"customers": len(customers_csv), "products": len(products_csv)}


def order_days(
    p: GenerateParams, rng: np.random.Generator, days: np.ndarray, start_day: int, first: bool
) -> np.ndarray:
    """The day of each new order: volume per day from the effects, scaled so the first batch holds p.orders."""
    first_days = np.arange(start_day, start_day + p.days)
    scale = p.orders / daily_weights(first_days, start_day, p.effects).sum()
    expected = daily_weights(days, start_day, p.effects) * scale
    per_day = rng.multinomial(p.orders, expected / expected.sum()) if first else rng.poisson(expected)
    return np.repeat(days, per_day)


def write_status_changes(writer: OrderWriter, world: World, rng: np.random.Generator, as_of_s: int) -> None:
    """A line for each earlier order whose status moved on; orders that reached their end leave the world."""
    if world.open_orders.empty:
        return
    oo = world.open_orders
    status, since = status_at(as_of_s - oo["order_s"].to_numpy(), oo["fate"].to_numpy())
    changed = status != oo["status"].to_numpy()
    moved_on = oo[changed].copy()
    moved_on["status"] = status[changed]
    delay = rng.integers(0, 6 * 3600, changed.sum())
    moved_on["updated_s"] = np.minimum(moved_on["order_s"].to_numpy() + since[changed] + delay, as_of_s)
    if len(moved_on):
        writer.write(
            "orders",
            pd.DataFrame(
                {
                    "order_id": moved_on["order_id"],
                    "customer_id": moved_on["customer_id"],
                    "order_date": fmt_ts(moved_on["order_s"].to_numpy()).to_numpy(zero_copy_only=False),
                    "status": moved_on["status"],
                    "payment_method": moved_on["payment_method"],
                    "shipping_address": moved_on["shipping_address"],
                    "total_amount": moved_on["total_amount"],
                    "updated_at": fmt_ts(moved_on["updated_s"].to_numpy()).to_numpy(zero_copy_only=False),
                }
            ),
        )
    oo = oo.assign(status=status)
    world.open_orders = oo[is_open(status, oo["fate"].to_numpy())]


def write_new_orders(
    writer: OrderWriter,
    world: World,
    p: GenerateParams,
    rng: np.random.Generator,
    defects: Defects,
    days_of_orders: np.ndarray,
    as_of_s: int,
) -> None:
    """The new orders and their lines, chunk by chunk, with their defects; the open ones join the world."""
    open_parts = [world.open_orders]
    for chunk in np.array_split(days_of_orders, max(1, -(-len(days_of_orders) // p.chunk_orders))):
        if len(chunk) == 0:
            continue
        orders, items, life = make_orders(rng, p, world, world.customers, chunk, as_of_s)
        orders, items, bad = inject_order_defects(
            orders,
            items,
            life["registration_s"].to_numpy(),
            defects,
            (writer.rows["orders"], writer.rows["order_items"]),
        )
        still_open = is_open(life["status"].to_numpy(), life["fate"].to_numpy()) & ~life["order_id"].isin(bad)
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
