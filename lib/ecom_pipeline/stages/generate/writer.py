"""The batch folder: rows as the CSV contract has them, written by Arrow, and ``manifest.json``."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ecom_pipeline import contract
from ecom_pipeline.params import GenerateParams
from ecom_pipeline.stages.generate.defects import Defects
from ecom_pipeline.stages.generate.world import fmt_date, fmt_money, fmt_ts

log = logging.getLogger(__name__)


# -- the batch -----------------------------------------------------------------


def customer_rows(c: pd.DataFrame) -> pd.DataFrame:
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
            "registration_date": fmt_date(c["registration_day"].to_numpy()).to_numpy(zero_copy_only=False),
            "updated_at": fmt_ts(c["updated_s"].to_numpy()).to_numpy(zero_copy_only=False),
        },
    )


def product_rows(p: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        dtype=object,
        data={
            "product_id": p["product_id"],
            "product_name": p["product_name"],
            "category": p["category"],
            "sub_category": p["sub_category"],
            "brand": p["brand"],
            "price": fmt_money(p["price_cents"].to_numpy()).to_numpy(zero_copy_only=False),
            "cost": fmt_money(p["cost_cents"].to_numpy()).to_numpy(zero_copy_only=False),
            "stock_quantity": p["stock_quantity"].astype(str),
            "updated_at": fmt_ts(p["updated_s"].to_numpy()).to_numpy(zero_copy_only=False),
        },
    )


def write_csv(frame: pd.DataFrame, writer: pacsv.CSVWriter | None, path: Path, table: str):
    data = pa.Table.from_pandas(
        frame, preserve_index=False, schema=pa.schema([(c, pa.string()) for c in contract.columns(table)])
    )
    if writer is None:
        writer = pacsv.CSVWriter(path, data.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
    writer.write_table(data)
    return writer


class OrderWriter:
    """Streams orders and their items to CSV chunk by chunk, tracking row positions."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[str, pacsv.CSVWriter | None] = {"orders": None, "order_items": None}
        self.rows = {"orders": 0, "order_items": 0}

    def write(self, table: str, frame: pd.DataFrame) -> None:
        self.writers[table] = write_csv(frame, self.writers[table], self.folder / contract.file_name(table), table)
        self.rows[table] += len(frame)

    def close(self) -> None:
        for table, writer in self.writers.items():
            if writer is None:  # no rows at all: a header-only file
                write_csv(
                    pd.DataFrame(columns=contract.columns(table)), None, self.folder / contract.file_name(table), table
                ).close()
            else:
                writer.close()


def build_manifest(
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
