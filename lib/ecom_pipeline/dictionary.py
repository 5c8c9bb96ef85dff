"""The data dictionary of the ``bi`` schema, written from the database's own comments.

``COMMENT ON`` is what Power BI, Tableau and Metabase show as descriptions,
so the comments (migration 0013 and ``warehouse/bi_personal_data.sql``) are
the one source; ``docs/data_dictionary.md`` is rendered from them by::

    python -m ecom_pipeline.dictionary

and a test fails when the two drift apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from ecom_pipeline import config, db, migrations

OUTPUT = config.PROJ_ROOT / "docs" / "data_dictionary.md"
STAR = ("fact_sales", "dim_date", "dim_customer", "dim_product", "dim_status", "dim_payment_method")

VIEWS = """
select c.relname as name, obj_description(c.oid, 'pg_class') as note
from pg_class as c
where c.relnamespace = 'bi'::regnamespace and c.relkind = 'v'
"""
COLUMNS = """
select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, col_description(c.oid, a.attnum) as note
from pg_class as c
join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.oid = %s::regclass
order by a.attnum
"""
HEADER = """# Data dictionary: the `bi` schema

What BI tools read (docs/dashboard_guide.md says how to connect). Generated
from the database's comments by `python -m ecom_pipeline.dictionary`; do not
edit by hand. The same descriptions appear in Power BI, Tableau and Metabase.

Money is in the shop's currency; times are UTC. Personal data (names,
e-mail) are only in `bi.customer_personal_data`, which exists only when
`warehouse.bi_personal_data` is on.
"""


def _order(name: str) -> tuple[int, str]:
    return (STAR.index(name), "") if name in STAR else (len(STAR), name)


def render(conn: psycopg.Connection) -> str:
    """The dictionary as Markdown; ``bi.customer_personal_data`` included (made and rolled back here)."""
    parts = [HEADER]
    with conn.transaction(force_rollback=True):
        if conn.execute("select to_regclass('bi.customer_personal_data') is null").fetchone()[0]:
            db.run_sql_file(conn, "warehouse/bi_personal_data.sql")
        views = sorted(db.query(conn, VIEWS), key=lambda v: _order(v["name"]))
        for heading, star in (("## The star", True), ("## Flat views", False)):
            parts.append(heading + "\n")
            for view in (v for v in views if (v["name"] in STAR) == star):
                parts.append(f"### bi.{view['name']}\n\n{view['note'] or '(no description)'}\n")
                rows = ["| column | type | description |", "|---|---|---|"]
                rows += [
                    f"| `{c['name']}` | {c['type']} | {c['note'] or '(no description)'} |"
                    for c in db.query(conn, COLUMNS.replace("%s", ":view"), {"view": f"bi.{view['name']}"})
                ]
                parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    from ecom_pipeline import logs
    from ecom_pipeline.exits import Exit

    parser = argparse.ArgumentParser(prog="python -m ecom_pipeline.dictionary", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(OUTPUT), help="where to write it (default: %(default)s)")
    args = parser.parse_args(argv)
    logs.configure()
    try:
        with db.connection(migrations.ensure_migrated(db.database_url()), autocommit=True) as conn:
            text = render(conn)
    except db.DatabaseUnavailable as exc:
        print(exc, file=sys.stderr)
        return Exit.UNAVAILABLE
    Path(args.output).write_text(text)
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
