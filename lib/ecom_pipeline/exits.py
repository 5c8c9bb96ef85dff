"""Exit codes: one table for every command (``run_all.py``, ``ecom-pipeline ...``, ``python -m ...``).

A scheduler or a shell script can tell from the code alone whether to retry:
``2`` fails the same way until someone fixes the command, ``3`` is worth
trying again later. ``docs/operations.md`` shows the same table (a test keeps
them equal).
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    DEGRADED = 4
    INTERRUPTED = 130


MEANING = {
    Exit.OK: "done: the run succeeded, the command did what it says; `monitor`: healthy",
    Exit.FAILED: "the work failed: a stage, the quality gate, or writing the run's records; `monitor`: critical",
    Exit.USAGE: "refused before anything ran: arguments, parameters, input folder, connection string, "
    "migrations the role may not apply",
    Exit.UNAVAILABLE: "the database cannot be reached, or another run holds the pipeline's lock: try again later",
    Exit.DEGRADED: "`monitor`: finished with warnings, nothing critical",
    Exit.INTERRUPTED: "Ctrl-C or SIGTERM: a run is recorded as failed and can be resumed",
}


def table() -> str:
    """The table as Markdown."""
    rows = [f"| {code.value} | `{code.name.lower()}` | {MEANING[code]} |" for code in Exit]
    return "| code | name | meaning |\n|---:|---|---|\n" + "\n".join(rows)
