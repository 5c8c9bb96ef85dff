"""Stage-by-stage wall time and peak memory of ``run_all.py`` at a given size.

    python benchmarks/bench_pipeline.py [--params params/default.yaml params/large.yaml]

Each params file runs once, from scratch: a new outputs folder and a new
database on the server of ``DATABASE_URL`` (or the embedded server). Stage
times come from the run's ``run_summary.json`` and include each notebook's
kernel start; peak memory is the largest resident size of any process of the
run (run_all.py or a kernel), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from ecom_pipeline import config, db


def _watch_peak(proc: subprocess.Popen, peak: dict[str, int]) -> None:
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                peak["rss"] = max(peak["rss"], p.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.2)


def run(params: str, server: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as outputs, db.scratch_database(server, "bench") as url:
        env = {**os.environ, "DATABASE_URL": url, "PIPELINE_OUTPUTS": outputs, "CI": "true"}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(config.PROJ_ROOT / "run_all.py"), "--params", params,
                                 "--run-id", "bench"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        peak = {"rss": 0}
        watcher = threading.Thread(target=_watch_peak, args=(proc, peak), daemon=True)
        watcher.start()
        _, err = proc.communicate()
        watcher.join()
        wall = time.perf_counter() - started
        if proc.returncode:
            raise RuntimeError(err[-3000:])
        summary = json.loads((Path(outputs) / "runs" / "bench" / "run_summary.json").read_text())
    return {"params": params, "wall_s": wall, "peak_mb": peak["rss"] / 2**20,
            "stages": {s["stage"]: s["duration_s"] for s in summary["stages"]},
            "orders": summary["stages"][0]["row_counts"].get("orders")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", nargs="+", default=["params/default.yaml", "params/large.yaml"])
    args = parser.parse_args()
    server = db.database_url()
    results = [run(p, server) for p in args.params]
    stages = list(results[0]["stages"])
    print(f"\n{'params':22} {'orders':>10} " + " ".join(f"{s:>10}" for s in stages) + f" {'total':>8} {'peak MB':>8}")
    for r in results:
        print(f"{r['params']:22} {r['orders'] or 0:>10,} " + " ".join(f"{r['stages'][s]:>9.1f}s" for s in stages)
              + f" {r['wall_s']:>7.1f}s {r['peak_mb']:>8.0f}")
    print(f"\nmachine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {sys.version.split()[0]}, database {db.describe(server)}")


if __name__ == "__main__":
    main()
