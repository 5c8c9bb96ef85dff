"""E-commerce data pipeline: generate, ingest, clean, model and report store data on PostgreSQL."""

__version__ = "0.1.0"
