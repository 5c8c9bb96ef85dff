"""``run_all.py --schedule "0 2 * * *"``: run the pipeline on a cron schedule, catching up after downtime.

Each fire time of the cron expression is a *slot*, and each slot is one run
(which processes the next pending batch: the generator's next day, or the
batch folders that arrived). The last slot done is kept in
``outputs/schedule_state.json``; after downtime, the slots missed since then
are run in order, oldest first (at most ``operations.max_catch_up``; older
ones are skipped with a warning). A failed run stops the catch-up; its slot
stays pending and is retried at the next fire time. After every successful
run the retention cleanup runs with ``operations.retention_days``.

The pipeline's advisory lock prevents overlap with any other run (a manual
one, or a second scheduler): the slot is then retried at the next fire time.
SIGINT or SIGTERM while waiting stops at once (exit 0); during a run, the run
is interrupted and recorded as failed like any interrupted run (exit 130), so
it can be resumed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from croniter import croniter

from ecom_pipeline import config, runs
from ecom_pipeline.stop import StopRequest

log = logging.getLogger("ecom_pipeline.schedule")


def state_path() -> Path:
    return config.outputs_dir() / "schedule_state.json"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_cron(cron: str) -> None:
    """ValueError, with an example, unless ``cron`` is a cron expression."""
    if not croniter.is_valid(cron):
        raise ValueError(f'not a cron expression: {cron!r} (e.g. "0 2 * * *" for 02:00 every day)')


class Scheduler:
    """Slots of a cron expression, the ones due now, and the loop that runs them."""

    def __init__(
        self,
        cron: str,
        run_slot: Callable[[dt.datetime], int],
        max_catch_up: int,
        clock: Callable[[], dt.datetime] = _now,
        state: Path | None = None,
    ) -> None:
        check_cron(cron)
        self.cron, self.run_slot, self.max_catch_up, self.clock = cron, run_slot, max_catch_up, clock
        self.state = state or state_path()
        self.stop = StopRequest()  # set by serve()'s signal handler, which must take no lock

    def last_done(self) -> dt.datetime:
        """The last slot run; on a first start, the fire time just before now (nothing is due yet)."""
        if self.state.exists():
            return dt.datetime.fromisoformat(json.loads(self.state.read_text())["last_slot"])
        last = croniter(self.cron, self.clock()).get_prev(dt.datetime)
        self.mark_done(last)
        return last

    def mark_done(self, slot: dt.datetime) -> None:
        runs.write_json(self.state, {"cron": self.cron, "last_slot": slot.isoformat()})

    def due(self) -> list[dt.datetime]:
        """Slots after the last one done, up to now, oldest first (the newest ``max_catch_up`` of them)."""
        now, it = self.clock(), croniter(self.cron, self.last_done())
        slots = []
        while (slot := it.get_next(dt.datetime)) <= now:
            slots.append(slot)
        if len(slots) > self.max_catch_up:
            log.warning(
                "schedule: %d slots were missed; running the newest %d, skipping %s to %s",
                len(slots),
                self.max_catch_up,
                slots[0],
                slots[-self.max_catch_up - 1],
            )
            slots = slots[-self.max_catch_up :]
        return slots

    def next_fire(self) -> dt.datetime:
        return croniter(self.cron, self.clock()).get_next(dt.datetime)

    def run_due(self) -> None:
        for slot in self.due():
            if self.stop.is_set():
                return
            log.info("schedule: running the slot of %s", slot.isoformat())
            if self.run_slot(slot) != 0:
                log.error("schedule: the run of slot %s failed; it is retried at the next fire time", slot)
                return
            self.mark_done(slot)

    def loop(self) -> None:
        while not self.stop.is_set():
            self.run_due()
            fire = self.next_fire()
            log.info("schedule: next run at %s", fire.isoformat())
            if self.stop.wait((fire - self.clock()).total_seconds()):
                log.info("schedule: signal %d received, stopping", self.stop.signum)


def serve(cron: str, run_slot: Callable[[dt.datetime], int], max_catch_up: int) -> int:
    """The scheduler loop with signal handling; the process's exit code."""
    in_run = False

    def on_signal(signum: int, frame: object) -> None:
        # No lock here, no logging either: this runs between two bytecodes of the main thread, which may hold
        # the very lock a call would wait for (stop.py). The loop says that it stops.
        scheduler.stop(signum)
        if in_run:
            raise KeyboardInterrupt(f"signal {signum}")  # the orchestrator records the run as interrupted

    def guarded(slot: dt.datetime) -> int:
        nonlocal in_run
        in_run = True
        try:
            return run_slot(slot)
        finally:
            in_run = False

    scheduler = Scheduler(cron, guarded, max_catch_up)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        log.info("schedule: %r, state in %s", cron, scheduler.state)
        scheduler.loop()
    except KeyboardInterrupt:
        log.error("schedule: a run was interrupted; it is recorded as failed and can be resumed")
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        scheduler.stop.close()
    log.info("schedule: stopped")
    return 0
