"""Operations: retention cleanup and the cron schedule with catch-up and clean stops."""

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys

import psycopg
import pytest
from croniter import croniter
from psycopg.conninfo import conninfo_to_dict

from ecom_pipeline import cleanup, config, db
from ecom_pipeline.schedule import Scheduler
from ecom_pipeline.stages import quality
from helpers import REPO, run_pipeline

PROTECTED_COUNTS = """
select (select count(*) from production.orders), (select count(*) from production.order_items),
       (select count(*) from production.quarantine), (select count(*) from staging.rejected_lines),
       (select count(*) from warehouse.fact_sales), (select count(*) from monitoring.pipeline_runs),
       (select count(*) from monitoring.quality_scores), (select count(*) from staging.batches)
"""


def _one(url: str, query: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchone()


def _age_first_run(url: str, days: int = 40) -> tuple[str, str]:
    """Make the first run and its batch look ``days`` old; return (run_id, batch_id)."""
    with psycopg.connect(url) as conn:
        run_id = conn.execute("select run_id from monitoring.pipeline_runs order by started_at limit 1").fetchone()[0]
        batch = conn.execute("select min(batch_id) from staging.batches").fetchone()[0]
        age = f"{days} days"
        conn.execute(
            "update monitoring.pipeline_runs set started_at = started_at - %s::interval, "
            "finished_at = finished_at - %s::interval where run_id = %s",
            (age, age, run_id),
        )
        conn.execute(
            "update monitoring.stage_runs set started_at = started_at - %s::interval where run_id = %s", (age, run_id)
        )
        conn.execute(
            "update monitoring.check_results set checked_at = checked_at - %s::interval where run_id = %s",
            (age, run_id),
        )
        conn.execute(
            "update staging.batches set loaded_at = loaded_at - %s::interval where batch_id = %s", (age, batch)
        )
    return run_id, batch


@pytest.fixture(scope="module")
def two_days_once(server_url, tmp_path_factory):
    """Two nightly runs (the initial batch, then the next day), the first made 40 days old: made once."""
    outputs = tmp_path_factory.mktemp("two_days") / "outputs"
    with db.scratch_database(server_url, prefix="two_days") as url:
        env = {"DATABASE_URL": url, "PIPELINE_OUTPUTS": str(outputs)}
        for _ in range(2):
            done = run_pipeline("--params", "params/small.yaml", env=env)
            assert done.returncode == 0, done.stderr
        run_id, batch = _age_first_run(url)
        yield conninfo_to_dict(url)["dbname"], outputs, run_id, batch


@pytest.fixture
def two_days(two_days_once, server_url, outputs, monkeypatch):
    """A copy of the two nights for one test: its database and its outputs folder."""
    template, made, run_id, batch = two_days_once
    shutil.copytree(made, outputs, dirs_exist_ok=True)  # file times kept
    with db.scratch_database(server_url, template=template) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url, run_id, batch


@pytest.mark.slow
def test_cleanup_dry_run_lists_and_removes_nothing(two_days, outputs):
    url, old_run, old_batch = two_days
    before = _one(url, PROTECTED_COUNTS)
    report = cleanup.cleanup(url, 30, dry_run=True)
    assert report["dry_run"] and report["run_folders"]["names"] == [old_run]
    assert report["raw_batches"]["names"] == [old_batch] and report["raw_batches"]["bytes"] > 0
    assert len(report["staging"]["partitions"]) == 4 and report["staging"]["rows"] > 1000
    assert report["monitoring_rows"] == {"stage_runs": 7, "check_results": len(quality.load_checks())}
    assert (config.run_dir(old_run)).is_dir() and (config.raw_dir() / old_batch).is_dir()
    assert _one(url, "select count(*) from staging.orders where batch_id = %s", old_batch)[0] > 0
    assert _one(url, PROTECTED_COUNTS) == before


@pytest.mark.slow
def test_cleanup_removes_old_records_and_nothing_else(two_days, outputs):
    url, old_run, old_batch = two_days
    before = _one(url, PROTECTED_COUNTS)
    newest = _one(url, "select max(batch_id) from staging.batches")[0]
    staged_newest = _one(url, "select count(*) from staging.orders where batch_id = %s", newest)[0]
    done = subprocess.run(
        [sys.executable, "-m", "ecom_pipeline.cleanup", "--retention-days", "30"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run_folders"]["names"] == [old_run] and report["raw_batches"]["names"] == [old_batch]
    assert not config.run_dir(old_run).exists() and not (config.raw_dir() / old_batch).exists()
    assert (config.raw_dir() / "_state").is_dir() and (config.raw_dir() / newest).is_dir()
    assert _one(url, "select count(*) from staging.orders where batch_id = %s", old_batch)[0] == 0
    assert _one(url, "select count(*) from staging.orders where batch_id = %s", newest)[0] == staged_newest
    assert _one(url, "select count(*) from monitoring.stage_runs where run_id = %s", old_run)[0] == 0
    # Production, the warehouse, quarantine, rejected lines and the run summaries are untouched.
    assert _one(url, PROTECTED_COUNTS) == before
    again = cleanup.cleanup(url, 30)
    assert again["run_folders"]["count"] == again["raw_batches"]["count"] == again["staging"]["rows"] == 0
    # The next night still runs on top of it.
    assert run_pipeline("--params", "params/small.yaml").returncode == 0


@pytest.mark.slow
def test_cleanup_keeps_everything_of_the_latest_successful_run(two_days, outputs):
    url, old_run, old_batch = two_days
    with psycopg.connect(url) as conn:  # the newer run failed: the old one is the latest success
        conn.execute("update monitoring.pipeline_runs set status = 'failed' where run_id <> %s", (old_run,))
    report = cleanup.cleanup(url, 30)
    assert report["kept"]["latest_successful_run"] == old_run
    assert report["run_folders"]["count"] == 0 and report["staging"]["batches"] == []
    assert config.run_dir(old_run).is_dir() and (config.raw_dir() / old_batch).is_dir()
    assert report["monitoring_rows"] == {"stage_runs": 0, "check_results": 0}


# -- schedule ------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_schedule_catches_up_missed_slots_in_order_and_retries_a_failure(tmp_path):
    clock = FakeClock(dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.timezone.utc))
    ran, results = [], {}
    scheduler = Scheduler(
        "0 2 * * *", lambda slot: ran.append(slot) or results.get(slot.day, 0), 31, clock, tmp_path / "state.json"
    )
    assert scheduler.due() == []  # a first start waits for the next fire time
    assert scheduler.next_fire() == dt.datetime(2026, 1, 2, 2, 0, tzinfo=dt.timezone.utc)

    clock.now = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)  # down for three nights and more
    results[3] = 1  # the run of Jan 3 fails
    scheduler.run_due()
    assert [s.day for s in ran] == [2, 3]  # oldest first; a failure stops the catch-up
    assert scheduler.last_done().day == 2
    results.clear()
    scheduler.run_due()
    assert [s.day for s in ran] == [2, 3, 3, 4, 5]  # the failed slot is retried first
    assert scheduler.due() == []


def test_schedule_catch_up_is_capped_to_the_newest_slots(tmp_path, caplog):
    clock = FakeClock(dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.timezone.utc))
    ran = []
    scheduler = Scheduler("0 2 * * *", lambda slot: ran.append(slot.day) or 0, 3, clock, tmp_path / "state.json")
    scheduler.last_done()
    clock.now = dt.datetime(2026, 1, 11, 3, 0, tzinfo=dt.timezone.utc)
    scheduler.run_due()
    assert ran == [9, 10, 11] and "10 slots were missed" in caplog.text


def test_schedule_refuses_a_bad_expression(outputs):
    done = run_pipeline("--schedule", "every night", "--params", "params/small.yaml")
    assert done.returncode == 2 and "not a cron expression: 'every night'" in done.stderr


@pytest.mark.slow
def test_scheduled_process_catches_up_then_stops_cleanly_on_sigterm(fresh_db, outputs):
    cron = "0 2 * * *"
    previous_fire = croniter(cron, dt.datetime.now(dt.timezone.utc)).get_prev(dt.datetime)
    (outputs / "schedule_state.json").write_text(
        json.dumps({"cron": cron, "last_slot": (previous_fire - dt.timedelta(days=2)).isoformat()})
    )  # two nights missed
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run_all.py"), "--schedule", cron, "--params", "params/small.yaml"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stderr:  # wait until it has caught up and is waiting for the next fire time
        lines.append(line)
        if "schedule: next run at" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "schedule: stopped" in log and "cleanup (older than 30 days) removed" in log
    with psycopg.connect(fresh_db) as conn:
        runs = conn.execute("select status from monitoring.pipeline_runs order by started_at").fetchall()
        batches = conn.execute("select batch_id from staging.batches order by batch_id").fetchall()
        locks = conn.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and database = "
            "(select oid from pg_database where datname = current_database())"
        ).fetchone()[0]
    assert runs == [("success",), ("success",)]  # one run per missed night, in order
    assert batches == [("2025-03-01",), ("2025-03-02",)]  # each on the next batch date
    assert locks == 0
    state = json.loads((outputs / "schedule_state.json").read_text())
    assert dt.datetime.fromisoformat(state["last_slot"]) == previous_fire


def test_cleanup_refuses_a_retention_under_one_day(outputs):
    done = subprocess.run(
        [sys.executable, "-m", "ecom_pipeline.cleanup", "--retention-days", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--retention-days must be at least 1" in done.stderr


def test_schedule_refuses_options_that_select_part_of_a_run(outputs):
    done = run_pipeline("--schedule", "0 2 * * *", "--only", "ingest")
    assert done.returncode == 2 and "cannot be combined with --resume, --only, --from" in done.stderr
    done = run_pipeline("--schedule", "0 2 * * *", "--set", "operations.retention_days=0")
    assert done.returncode == 2 and "operations.retention_days" in done.stderr
