"""The CSV contract: which files a batch folder holds and their columns.

See docs/csv_contract.md. The generator writes it and the ingest stage
accepts any folder that follows it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

TABLES: dict[str, dict[str, bool]] = {
    # column -> required
    "customers": {
        "customer_id": True,
        "first_name": True,
        "last_name": True,
        "email": True,
        "phone": False,
        "address": False,
        "city": False,
        "state": False,
        "country": False,
        "registration_date": True,
        "updated_at": True,
    },
    "products": {
        "product_id": True,
        "product_name": True,
        "category": True,
        "sub_category": False,
        "brand": False,
        "price": True,
        "cost": True,
        "stock_quantity": False,
        "updated_at": True,
    },
    "orders": {
        "order_id": True,
        "customer_id": True,
        "order_date": True,
        "status": True,
        "payment_method": True,
        "shipping_address": False,
        "total_amount": True,
        "updated_at": True,
    },
    "order_items": {
        "order_item_id": True,
        "order_id": True,
        "product_id": True,
        "quantity": True,
        "unit_price": True,
        "discount_percentage": True,
        "line_total": True,
    },
}
# Load order respects references: parents before children.
TABLE_ORDER = ("customers", "products", "orders", "order_items")


def file_name(table: str) -> str:
    return f"{table}.csv"


def columns(table: str) -> list[str]:
    return list(TABLES[table])


def required_columns(table: str) -> list[str]:
    return [c for c, required in TABLES[table].items() if required]


def key_column(table: str) -> str:
    return columns(table)[0]


# A valid e-mail after trimming and lower-casing (PostgreSQL and Python regex syntax alike).
EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"


def file_sha256(path: Path) -> str:
    """The checksum that manifests and the ingestion log record for a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
