"""Content checksums of production, the quarantine and the warehouse: two runs gave the same answers.

    python benchmarks/checksums.py URL [URL ...]     (or: python -m ecom_pipeline.checksums URL [URL ...])

Prints, per table, the row count and an md5 over its rows (sorted), leaving out what differs between
runs by nature: run ids, the times rows were written, and surrogate keys that a sequence numbers in insert
order (the keys the facts hold are compared). With several URLs it compares them and exits 1
on any difference; e.g. the same params run by two versions of the code, each into a database of its own,
or on a Citus cluster and on a single server (the distributed tests do).
"""

from __future__ import annotations

import sys

import psycopg
from psycopg import sql

SCHEMAS = ("production", "warehouse")
# Different in every run by nature: which run wrote a row, and when.
RUN_COLUMNS = {
    "run_id",
    "created_at",
    "loaded_at",
    "changed_at",
    "cleaned_at",
    "quarantined_at",
    "released_at",
    "checked_at",
}


def checksums(url: str) -> dict[str, tuple[int, str]]:
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema = any (%s) and table_type = 'BASE TABLE' order by 1, 2",
            (list(SCHEMAS),),
        ).fetchall()
        result = {}
        for schema, table in tables:
            columns = [
                name
                for (name,) in conn.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = %s and table_name = %s and is_identity = 'NO' "
                    "and coalesce(column_default, '') not like 'nextval(%%' order by ordinal_position",
                    (schema, table),
                )
                if name not in RUN_COLUMNS
            ]
            row = sql.SQL("md5(row({})::text)").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
            count, digest = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(h, '' order by h), '')) from "
                    "(select {} as h from {}) as t"
                ).format(row, sql.Identifier(schema, table))
            ).fetchone()
            result[f"{schema}.{table}"] = (count, digest)
    return result


def main(urls: list[str]) -> int:
    sums = [checksums(url) for url in urls]
    names = sorted(set().union(*sums))
    differ = 0
    for name in names:
        values = [s.get(name) for s in sums]
        same = all(v == values[0] for v in values)
        differ += not same
        print(
            f"{name:45} {values[0][0] if values[0] else '-':>10}  {'same' if same else 'DIFFERENT: ' + str(values)}"
            if len(urls) > 1
            else f"{name:45} {values[0][0]:>10}  {values[0][1]}"
        )
    if len(urls) > 1:
        print(f"{len(names) - differ} of {len(names)} tables the same")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
