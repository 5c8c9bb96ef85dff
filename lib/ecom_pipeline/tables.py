"""The pipeline's tables, named once, layer by layer: the stages, cleanup, quality and the export read them here.

Staging and production hold one table per CSV file of the contract (parents first); the warehouse is
built in the order below, each step from ``sql/warehouse/<table>.sql``: dimensions first (the facts look
up their keys), then the facts, then the aggregates (which read the facts).
"""

from __future__ import annotations

from ecom_pipeline import contract

STAGING: tuple[str, ...] = contract.TABLE_ORDER
PRODUCTION: tuple[str, ...] = contract.TABLE_ORDER

DIMENSIONS = ("dim_status", "dim_payment_method", "dim_date", "dim_customer", "dim_product")
FACTS = ("fact_sales",)
AGGREGATES = ("agg_daily_sales", "agg_product_performance", "agg_customer_metrics")
WAREHOUSE: tuple[str, ...] = DIMENSIONS + FACTS + AGGREGATES


def qualified(schema: str, names: tuple[str, ...]) -> list[str]:
    """``schema.name`` for each of ``names``."""
    return [f"{schema}.{name}" for name in names]
