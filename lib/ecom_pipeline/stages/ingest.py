"""Raw CSV batches into ``staging`` with PostgreSQL COPY, lineage and nothing lost.

Each file of a batch is loaded in its own transaction, files in parallel:

* the header is checked first for every pending batch (a missing file or a
  missing required column stops the stage before anything of that batch is
  loaded);
* each batch has its own partition of each staging table, whose column
  defaults are the file's lineage (batch, run, file; the line number comes
  from a sequence), so replacing a batch is a TRUNCATE and needs no index;
* the fast path streams the file's bytes straight into ``COPY ... FROM STDIN``
  while checking them (valid UTF-8, no NUL byte, no over-long line, one record
  per physical line), so COPY does all the work;
* if the file breaks any of those, or COPY refuses a line, the transaction
  rolls back to a savepoint and the parsed path takes over: Python's csv
  module reads the file record by record, good records are COPYed row by row
  and every bad line goes to ``staging.rejected_lines`` with its line number
  and reason;
* either way, lines read = rows staged + lines rejected is recorded in
  ``staging.ingestion_log`` (a CHECK constraint) and verified against the
  table.

A file already loaded for its batch with the same sha256 is skipped; a changed
file replaces that batch's rows of its table.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from ecom_pipeline import config, contract, db, runs
from ecom_pipeline.params import IngestParams
from ecom_pipeline.stages import session

log = logging.getLogger(__name__)

BLOCK = 8 << 20
REJECTED_LINE_CAP = 100_000  # characters of a rejected line kept for review (its full length is kept too)


class IngestError(RuntimeError):
    """A batch cannot be loaded at all (missing file or required column)."""


@dataclass(frozen=True)
class SourceFile:
    batch_id: str
    table: str
    path: Path
    header: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        """Header columns that staging keeps, in file order."""
        return [c for c in self.header if c in contract.TABLES[self.table]]

    @property
    def extra_columns(self) -> list[str]:
        return [c for c in self.header if c not in contract.TABLES[self.table]]


@dataclass
class FileResult:
    batch_id: str
    table: str
    status: str  # loaded, skipped
    load_path: str = ""
    lines_read: int = 0
    rows_staged: int = 0
    lines_rejected: int = 0
    extra_columns: list[str] = field(default_factory=list)
    duration_s: float = 0.0


# -- discovering and checking batches ----------------------------------------------


def discover_batches(source: Path) -> list[Path]:
    """A batch folder, or the batch folders inside a folder, in name (date) order."""
    if not source.exists():
        raise IngestError(f"input path does not exist: {source}")
    if not source.is_dir():
        raise IngestError(f"input path is not a folder: {source}")
    names = {contract.file_name(t) for t in contract.TABLE_ORDER}
    if any((source / n).exists() for n in names):
        return [source]
    return sorted(
        p
        for p in source.iterdir()
        if p.is_dir() and not p.name.startswith(("_", ".")) and any((p / n).exists() for n in names)
    )


def read_header(path: Path) -> tuple[str, ...]:
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    first = head.split(line_terminator(head), 1)[0]
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the header line is not valid UTF-8") from None
    if not text.strip():
        return ()
    return tuple(name.strip() for name in next(csv.reader([text.rstrip("\r\n")])))


def check_batch(folder: Path) -> list[SourceFile]:
    """The batch's four files with their headers; IngestError naming the file and column if unusable."""
    files = []
    for table in contract.TABLE_ORDER:
        path = folder / contract.file_name(table)
        if not path.is_file():
            raise IngestError(f"batch {folder.name}: file {path.name} is missing (expected in {folder})")
        header = read_header(path)
        if header:
            missing = [c for c in contract.required_columns(table) if c not in header]
            if missing:
                raise IngestError(f"batch {folder.name}: {path.name} lacks required column(s) {', '.join(missing)}")
            duplicated = sorted({c for c in header if header.count(c) > 1})
            if duplicated:
                raise IngestError(f"batch {folder.name}: {path.name} repeats column(s) {', '.join(duplicated)}")
        files.append(SourceFile(folder.name, table, path, header))
    return files


# -- loading one file --------------------------------------------------------------


class _SlowPath(Exception):
    """The file needs record-by-record parsing."""


def partition_name(table: str, batch_id: str) -> str:
    """The name of the staging partition of ``table`` for one batch (in schema ``staging``)."""
    return f"{table}_{hashlib.sha1(batch_id.encode()).hexdigest()[:16]}"


def batch_partition(conn: psycopg.Connection, table: str, batch_id: str) -> sql.Composed:
    """The staging partition of ``table`` for one batch, created if missing; its name as SQL."""
    target = sql.Identifier("staging", partition_name(table, batch_id))
    # Written once, read once by clean (which analyzes it), dropped by retention: autovacuum would only
    # compete with the clean stage for the machine right after a large load.
    conn.execute(
        sql.SQL(
            "create table if not exists {} partition of {} for values in ({}) with (autovacuum_enabled = false)"
        ).format(target, sql.Identifier("staging", table), sql.Literal(batch_id))
    )
    return target


def _prepare_partition(conn: psycopg.Connection, source: SourceFile, run_id: str) -> sql.Composed:
    """Empty the batch's partition and make its lineage the column defaults, so COPY fills them."""
    target = batch_partition(conn, source.table, source.batch_id)
    conn.execute(sql.SQL("truncate {}").format(target))
    conn.execute(
        sql.SQL(
            "alter table {} alter column batch_id set default {}, alter column run_id set default {}, "
            "alter column source_file set default {}"
        ).format(target, sql.Literal(source.batch_id), sql.Literal(run_id), sql.Literal(source.path.name))
    )
    conn.execute("select setval(%s, 2, false)", (f"staging.{source.table}_line_seq",))
    return target


def _copy_fast(conn: psycopg.Connection, source: SourceFile, target: sql.Composed, max_field: int) -> int:
    """COPY the file's bytes as they are; _SlowPath if anything about them needs parsing."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, last_byte, longest, carry = 0, b"\n", 0, 0
    columns = ", ".join(source.columns)
    with conn.cursor() as cur:
        statement = sql.SQL("copy {} ({}) from stdin (format csv, header true)").format(target, sql.SQL(columns))
        with cur.copy(statement) as copy:
            with source.path.open("rb") as fh:
                for block in iter(lambda: fh.read(BLOCK), b""):
                    if b"\x00" in block:
                        raise _SlowPath("NUL byte")
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        raise _SlowPath("invalid UTF-8") from None
                    # Line lengths from the newline positions, without splitting the block into objects.
                    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                    if len(ends):
                        gaps = np.diff(ends, prepend=-1) - 1
                        gaps[0] += carry
                        longest = max(longest, int(gaps.max()))
                        carry = len(block) - 1 - int(ends[-1])
                    else:
                        carry += len(block)
                    if max(longest, carry) > max_field:
                        raise _SlowPath("over-long line")
                    newlines += len(ends)
                    last_byte = block[-1:]
                    copy.write(block)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise _SlowPath("truncated UTF-8 at end of file") from None
        staged = cur.rowcount
    physical_lines = newlines + (0 if last_byte == b"\n" else 1)
    if staged != physical_lines - 1:
        raise _SlowPath("records span lines")
    return staged


class _LineFeed:
    """Feeds physical lines to csv.reader, remembering which ones each record used.

    A record may span at most ``max_lines`` lines (a quoted field with line
    breaks); lines handed back (``give_back``) are read again before the
    rest of the file, so a record that turns out malformed costs only its
    first line: the lines after it are parsed afresh.
    """

    def __init__(self, lines: Iterator[tuple[int, str]], max_lines: int) -> None:
        self.lines = lines
        self.max_lines = max_lines
        self.pending: deque[tuple[int, str]] = deque()
        self.used: list[tuple[int, str]] = []
        self.cut_short: str | None = None  # "limit" or "end": the record wanted more lines than it may have

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if len(self.used) >= self.max_lines:
            self.cut_short = "limit"
            raise StopIteration
        try:
            item = self.pending.popleft() if self.pending else next(self.lines)
        except StopIteration:
            self.cut_short = "end" if self.used else None
            raise
        self.used.append(item)
        return item[1]

    def take(self) -> tuple[list[tuple[int, str]], str | None]:
        """The lines of the record just read, and why it ended inside a quoted field (None if it did not)."""
        used, cut_short = self.used, self.cut_short
        self.used, self.cut_short = [], None
        return used, cut_short

    def give_back(self, lines: list[tuple[int, str]]) -> None:
        self.pending.extendleft(reversed(lines))


def line_terminator(head: bytes) -> bytes:
    """The line end of a file starting with ``head``, judged by its header line as COPY does: a lone CR, or LF."""
    cr, lf = head.find(b"\r"), head.find(b"\n")
    return b"\r" if cr >= 0 and (lf < 0 or cr + 1 < lf) else b"\n"


def _split_lines(fh: BinaryIO, terminator: bytes) -> Iterator[bytes]:
    """Physical lines with their terminator."""
    if terminator == b"\n":
        yield from fh
        return
    rest = b""
    for block in iter(lambda: fh.read(BLOCK), b""):
        *lines, rest = (rest + block).split(terminator)
        for line in lines:
            yield line + terminator
    if rest:
        yield rest


class _LineSource:
    """Decoded data lines with their numbers; undecodable lines and NUL bytes are rejected on the way."""

    def __init__(self, path: Path, rejects: list[tuple[int, str, str]]) -> None:
        self.path = path
        self.rejects = rejects
        self.count = 0  # data lines read, the header excluded

    def __iter__(self) -> Iterator[tuple[int, str]]:
        with self.path.open("rb") as fh:
            terminator = line_terminator(fh.read(1 << 16))
            fh.seek(0)
            for number, raw in enumerate(_split_lines(fh, terminator), start=1):
                if number == 1:
                    continue  # header, checked already
                self.count += 1
                if b"\x00" in raw:
                    self.rejects.append((number, "nul_byte", raw.replace(b"\x00", b"\\0").decode("utf-8", "replace")))
                    continue
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.rejects.append(
                        (number, f"invalid_utf8 at byte {exc.start}", raw.decode("utf-8", "backslashreplace"))
                    )


def _copy_parsed(
    conn: psycopg.Connection, source: SourceFile, target: sql.Composed, p: IngestParams
) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Parse record by record; COPY the good ones; return (rows staged, lines they continued, rejected lines).

    Every physical line ends up in exactly one staged record or one rejected line. A record that spans
    several lines is staged only if it is well formed; otherwise its first line is rejected (that is
    where the stray quote is) and the following lines are parsed again on their own.
    """
    rejects: list[tuple[int, str, str]] = []
    lines = _LineSource(source.path, rejects)
    feed = _LineFeed(iter(lines), p.max_record_lines)
    # Not strict: a quote inside a field is read the way PostgreSQL's COPY reads it, so both paths agree.
    # Field sizes are judged below (field_too_long), not by the csv module's own 128 KiB limit.
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(feed)
    width = len(source.header)
    keep = [i for i, c in enumerate(source.header) if c in contract.TABLES[source.table]]
    staged = continued = 0
    columns = ", ".join(["source_line", *source.columns])
    statement = sql.SQL("copy {} ({}) from stdin").format(target, sql.SQL(columns))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        while True:
            fields: list[str] = []
            try:
                fields, error = next(reader), None
            except StopIteration:
                break
            except csv.Error as exc:
                error = f"malformed_csv: {exc}"
            used, cut_short = feed.take()
            if not used:
                continue
            line, raw = used[0][0], "".join(t for _, t in used)
            if error is None and cut_short:
                error = "unbalanced_quote: a quoted field opened on this line is not closed " + (
                    f"within {p.max_record_lines} lines" if cut_short == "limit" else "before the end of file"
                )
            elif error is None and len(used) > 1 and len(fields) != width:
                error = (
                    f"unbalanced_quote: a quoted field opened on this line spans {len(used)} lines and gives "
                    f"{len(fields)} fields, expected {width}"
                )
            if error is not None:
                rejects.append((line, error, used[0][1]))
                feed.give_back(used[1:])
                reader = csv.reader(feed)  # parse what follows afresh
            elif not fields:
                rejects.append((line, "blank_line", raw))
            elif len(fields) != width:
                rejects.append((line, f"wrong_field_count: expected {width}, got {len(fields)}", raw))
            elif any(len(f) > p.max_field_length for f in fields):
                rejects.append((line, f"field_too_long: over {p.max_field_length} characters", raw))
                feed.give_back(used[1:])
                reader = csv.reader(feed)
            else:
                # An empty field is NULL, as COPY reads an unquoted empty field.
                copy.write_row([line, *(fields[i] or None for i in keep)])
                staged += 1
                continued += len(used) - 1
    if staged + continued + len(rejects) != lines.count:
        raise IngestError(
            f"{source.batch_id}/{source.path.name}: read {lines.count} lines but accounted for "
            f"{staged + continued + len(rejects)}; nothing of this file was kept"
        )
    return staged, continued, sorted(rejects)


def load_file(url: str, source: SourceFile, run_id: str, p: IngestParams) -> FileResult:
    """Load one file in one transaction (replacing the batch's earlier rows of that table)."""
    started = time.perf_counter()
    digest, size = contract.file_sha256(source.path), source.path.stat().st_size
    with session.connection(url, "ingest", autocommit=False) as conn, conn.transaction():
        done = conn.execute(
            "select sha256 from staging.ingestion_log where batch_id = %s and table_name = %s",
            (source.batch_id, source.table),
        ).fetchone()
        if done and done[0] == digest:
            return FileResult(source.batch_id, source.table, "skipped")
        conn.execute(
            "delete from staging.rejected_lines where batch_id = %s and table_name = %s",
            (source.batch_id, source.table),
        )
        target = _prepare_partition(conn, source, run_id)
        rejects: list[tuple[int, str, str]] = []
        continued = 0
        if not source.header:
            staged, path = 0, "empty"
        else:
            try:
                with conn.transaction():
                    staged, path = _copy_fast(conn, source, target, p.max_field_length), "copy"
            except (_SlowPath, psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as why:
                log.info(
                    "%s/%s: parsing record by record (%s)", source.batch_id, source.path.name, str(why).splitlines()[0]
                )
                conn.execute("select setval(%s, 2, false)", (f"staging.{source.table}_line_seq",))
                staged, continued, rejects = _copy_parsed(conn, source, target, p)
                path = "parsed"
        if rejects:
            with (
                conn.cursor() as cur,
                cur.copy(
                    "copy staging.rejected_lines (batch_id, table_name, source_file, source_line, reason, raw_line, "
                    "line_length, run_id) from stdin"
                ) as copy,
            ):
                for line, reason, raw in rejects:
                    raw = raw.rstrip("\r\n")
                    copy.write_row(
                        [
                            source.batch_id,
                            source.table,
                            source.path.name,
                            line,
                            reason,
                            raw[:REJECTED_LINE_CAP],
                            len(raw),
                            run_id,
                        ]
                    )
        in_table = conn.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()[0]
        if in_table != staged:
            raise IngestError(
                f"{source.batch_id}/{source.path.name}: staged {staged} rows but the table holds "
                f"{in_table}; nothing of this file was kept"
            )
        duration = time.perf_counter() - started
        result = FileResult(
            source.batch_id,
            source.table,
            "loaded",
            path,
            staged + continued + len(rejects),
            staged,
            len(rejects),
            source.extra_columns,
            duration,
        )
        conn.execute(
            """
            insert into staging.ingestion_log (batch_id, table_name, source_file, sha256, size_bytes, lines_read,
                rows_staged, continued_lines, lines_rejected, extra_columns, load_path, started_at, duration_s,
                run_id)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s, %s)
            on conflict (batch_id, table_name) do update set
                source_file = excluded.source_file, sha256 = excluded.sha256, size_bytes = excluded.size_bytes,
                lines_read = excluded.lines_read, rows_staged = excluded.rows_staged,
                continued_lines = excluded.continued_lines,
                lines_rejected = excluded.lines_rejected, extra_columns = excluded.extra_columns,
                load_path = excluded.load_path, started_at = excluded.started_at,
                duration_s = excluded.duration_s, run_id = excluded.run_id
            """,
            (
                source.batch_id,
                source.table,
                source.path.name,
                digest,
                size,
                result.lines_read,
                staged,
                continued,
                len(rejects),
                source.extra_columns,
                path,
                duration,
                run_id,
            ),
        )
    if source.extra_columns:
        log.warning(
            "%s/%s: ignored extra column(s) %s", source.batch_id, source.path.name, ", ".join(source.extra_columns)
        )
    return result


# -- the stage ---------------------------------------------------------------------


def ingest(source: Path, run_id: str, p: IngestParams, url: str | None = None) -> list[FileResult]:
    """Load every batch folder under ``source``, in date order; return one result per file."""
    url = url or db.database_url()
    batches = discover_batches(source)
    checked = []
    for folder in batches:
        try:
            checked.append(check_batch(folder))
        except IngestError as exc:
            with session.connection(url, "ingest") as conn:
                conn.execute(
                    "insert into staging.batches (batch_id, source_path, status, message, run_id) "
                    "values (%s, %s, 'rejected', %s, %s) on conflict (batch_id) do update set "
                    "status = 'rejected', message = excluded.message, run_id = excluded.run_id, loaded_at = now()",
                    (folder.name, str(folder), str(exc), run_id),
                )
            raise
    results: list[FileResult] = []
    with ThreadPoolExecutor(max_workers=p.parallel) as pool:
        for files in checked:
            loaded = list(pool.map(lambda f: load_file(url, f, run_id, p), files))
            results += loaded
            if all(r.status == "skipped" for r in loaded):
                continue
            with session.connection(url, "ingest") as conn:
                conn.execute(
                    "insert into staging.batches (batch_id, source_path, status, message, run_id) "
                    "values (%s, %s, 'loaded', null, %s) on conflict (batch_id) do update set "
                    "status = 'loaded', message = null, source_path = excluded.source_path, "
                    "run_id = excluded.run_id, loaded_at = now()",
                    (files[0].batch_id, str(files[0].path.parent), run_id),
                )
    return results


def run_stage(p: IngestParams, run_id: str) -> pd.DataFrame:
    """The ingest stage: load what is pending and record the stage's row counts."""
    source = config.resolve_path(p.input_path) if p.input_path else config.raw_dir()
    results = ingest(source, run_id, p, session.database())
    frame = pd.DataFrame([r.__dict__ for r in results], columns=list(FileResult.__dataclass_fields__))
    frame = frame.drop(columns="duration_s")  # timings are in staging.ingestion_log
    loaded = frame[frame["status"] == "loaded"]
    runs.save_stage_result(
        run_id,
        "ingest",
        {
            "batches": int(frame["batch_id"].nunique()),
            "files_loaded": len(loaded),
            "files_skipped": int((frame["status"] == "skipped").sum()),
            "rows_staged": int(loaded["rows_staged"].sum()),
            "lines_rejected": int(loaded["lines_rejected"].sum()),
        },
    )
    return frame


def rejected_lines(run_id: str, limit: int = 20) -> pd.DataFrame:
    """Lines this run could not stage, with their reasons."""
    with session.connection(None, "ingest", part="summary") as conn:
        rows = db.query(
            conn,
            """
            select batch_id, source_file, source_line, reason, left(raw_line, 120) as raw_line
            from staging.rejected_lines where run_id = :run_id
            order by batch_id, source_file, source_line limit :limit
        """,
            {"run_id": run_id, "limit": limit},
        )
    return pd.DataFrame(rows, columns=["batch_id", "source_file", "source_line", "reason", "raw_line"])
