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

The package's parts: :mod:`.world` (pools, customers, products, lifecycle), :mod:`.orders`,
:mod:`.defects` (the known defects), :mod:`.writer` (CSV and manifest) and :mod:`.batch`, which puts one
batch together.
"""

from ecom_pipeline.stages.generate.batch import BatchResult, defect_summary, generate_next_batch, run_stage

__all__ = ["BatchResult", "defect_summary", "generate_next_batch", "run_stage"]
