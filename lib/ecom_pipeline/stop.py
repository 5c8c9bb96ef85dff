"""A stop asked for by a signal (SIGINT, SIGTERM), for a process that waits in between its work.

A Python signal handler runs in the main thread between two bytecodes of whatever the main thread was doing.
When that was ``threading.Event.wait()``, which holds the event's lock on its way in and out, a handler that
calls ``Event.set()`` waits for a lock its own thread holds: the process hangs instead of stopping (the
``signal`` module's documentation warns against locks in handlers). So :class:`StopRequest`, the handler,
takes no lock: it keeps the signal's number and writes a byte to a socket pair that :meth:`StopRequest.wait`
watches, which ends the wait whether the signal came before it or during it.
"""

from __future__ import annotations

import contextlib
import select
import socket


class StopRequest:
    """Install it as the handler (``signal.signal(signal.SIGTERM, stop)``); wait with :meth:`wait`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._pair: tuple[socket.socket, socket.socket] | None = None  # made by the first wait

    def __call__(self, signum: int, frame: object = None) -> None:
        self.signum = signum
        if self._pair is not None:
            with contextlib.suppress(OSError):  # full (a byte is there already) or closed: the flag is enough
                self._pair[1].send(b"\0")

    def is_set(self) -> bool:
        return self.signum is not None

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``, or until a stop is asked for; whether one was."""
        if self._pair is None:  # made before the flag is read: a signal after the read finds it and wakes select
            reader, writer = socket.socketpair()
            writer.setblocking(False)
            self._pair = (reader, writer)
        if self.signum is None:
            select.select([self._pair[0]], [], [], max(0.0, seconds))
        return self.signum is not None

    def close(self) -> None:
        pair, self._pair = self._pair, None
        for end in pair or ():
            end.close()
