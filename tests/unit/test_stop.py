"""A stop asked for by a signal ends a wait wherever the signal lands, and the handler never hangs."""

from __future__ import annotations

import itertools
import signal
import sys
import threading
import time
from typing import Any

from ecom_pipeline.stop import StopRequest


def _signal_at(stop: StopRequest, bytecode: int, wait_s: float) -> dict[str, Any]:
    """``stop.wait(wait_s)`` in a thread of its own, with the handler called at its ``bytecode``-th bytecode: in
    the waiting thread, between two bytecodes, which is where CPython runs a signal's handler. Times are
    seconds from the wait's start."""
    count = itertools.count()
    seen: dict[str, Any] = {"called_at": None, "returned": False, "result": None, "ended_at": None}
    started = time.monotonic()

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        if event == "opcode" and next(count) == bytecode:
            seen["called_at"] = time.monotonic() - started
            stop(signal.SIGTERM)
            seen["returned"] = True
        return tracer

    def waits() -> None:
        sys.settrace(tracer)
        try:
            seen["result"] = stop.wait(wait_s)
        finally:
            sys.settrace(None)
            seen["ended_at"] = time.monotonic() - started

    thread = threading.Thread(target=waits, daemon=True)  # daemon: a hung handler must not hang the test run
    thread.start()
    thread.join(wait_s + 5)
    return seen


def test_a_signal_at_any_bytecode_of_a_wait_ends_it_and_its_handler_returns():
    """threading.Event failed this: Event.set() from a handler that lands while Event.wait() holds the event's
    lock never returns (the scheduler then hung on SIGTERM instead of stopping)."""
    wait_s, early = 0.6, 0.3
    before_select = 0
    for bytecode in itertools.count():
        stop = StopRequest()
        seen = _signal_at(stop, bytecode, wait_s)
        assert seen["ended_at"] is not None, f"a signal at bytecode {bytecode} hung the wait"
        stop.close()
        if seen["called_at"] is None:  # past the wait's last bytecode: every one of them was tried
            break
        assert seen["returned"], (bytecode, seen)
        if seen["called_at"] < early:  # before the wait slept: it must not sleep
            assert seen["result"] is True and seen["ended_at"] < early, (bytecode, seen)
            before_select += 1
        else:  # as the wait ran out: too late for this wait, not for the next
            assert stop.is_set(), (bytecode, seen)
    assert before_select > 10  # the socket pair's making and the flag's reading among them


def test_a_real_signal_ends_a_long_wait_at_once_and_a_stop_asked_before_needs_no_wait():
    stop = StopRequest()
    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        started = time.monotonic()
        assert stop.wait(30) is True
        assert time.monotonic() - started < 10 and stop.signum == signal.SIGALRM
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        stop.close()

    early = StopRequest()
    early(signal.SIGTERM)  # before any wait: no socket pair yet, the flag alone
    started = time.monotonic()
    assert early.wait(30) is True and time.monotonic() - started < 10
    early.close()
    idle = StopRequest()
    assert idle.wait(0) is False  # nothing asked: the wait runs out
    idle.close()
