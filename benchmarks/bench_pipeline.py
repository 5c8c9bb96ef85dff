"""Stage-by-stage wall time and peak memory of ``run_all.py`` at a given size, beside the plain-SQL floor.

    python benchmarks/bench_pipeline.py [--params params/default.yaml params/large.yaml] [--repeat 3] [--floor]

Each params file runs once, from scratch: a new outputs folder and a new
database on the server of ``DATABASE_URL`` (or the embedded server; on a Citus
coordinator, on every node of its cluster, the schema distributed). Stage
times come from the run's ``run_summary.json`` and include each notebook's
kernel start; peak memory is the largest resident size of any process of the
run (run_all.py or a kernel), sampled every 0.2 s.

With ``--floor``, each repetition also runs ``floor.py`` (the same size, plain
SQL) right before the pipeline, so the two are measured in the same minutes;
the table gives medians over the repetitions and the pipeline's ratio to the
floor. The load average is printed before and after: on a shared machine,
compare ratios, not seconds from different sittings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from ecom_pipeline import config, db, distribution

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor


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
    with db.connection(server, autocommit=True) as conn:  # a Citus coordinator: a database on every node
        scratch = distribution.scratch_database if distribution.citus_installed(conn) else db.scratch_database
    with tempfile.TemporaryDirectory(prefix="bench-") as outputs, scratch(server, "bench") as url:
        env = {**os.environ, "DATABASE_URL": url, "PIPELINE_OUTPUTS": outputs, "CI": "true"}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(config.PROJ_ROOT / "run_all.py"), "--params", params, "--run-id", "bench"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = {"rss": 0}
        watcher = threading.Thread(target=_watch_peak, args=(proc, peak), daemon=True)
        watcher.start()
        _, err = proc.communicate()
        watcher.join()
        wall = time.perf_counter() - started
        if proc.returncode:
            raise RuntimeError(err[-3000:])
        summary = json.loads((Path(outputs) / "runs" / "bench" / "run_summary.json").read_text())
    return {
        "params": params,
        "wall_s": wall,
        "peak_mb": peak["rss"] / 2**20,
        "stages": {s["stage"]: s["duration_s"] for s in summary["stages"]},
        "orders": summary["stages"][0]["row_counts"].get("orders"),
    }


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r["stages"].get(key, 0.0) if key != "total" else r["wall_s"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", nargs="+", default=["params/default.yaml", "params/large.yaml"])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each size (medians are reported)")
    parser.add_argument("--floor", action="store_true", help="run the plain-SQL floor before each pipeline run")
    args = parser.parse_args()
    server = db.database_url()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for params in args.params:
        runs, floors = [], []
        for _ in range(args.repeat):
            if args.floor:
                floors.append(floor.run(params, server))
                floors[-1]["wall_s"] = floors[-1]["stages"]["total"]
            runs.append(run(params, server))
        stages = list(runs[0]["stages"])
        print(
            f"\n{params}: {runs[0]['orders'] or 0:,} orders, medians of {args.repeat}, "
            f"peak memory {max(r['peak_mb'] for r in runs):.0f} MB"
        )
        print(f"{'':10} " + " ".join(f"{s:>10}" for s in [*stages, "total"]))
        print(f"{'pipeline':10} " + " ".join(f"{_median(runs, s):>9.1f}s" for s in [*stages, "total"]))
        if floors:
            print(
                f"{'floor':10} "
                + " ".join(
                    f"{_median(floors, s):>9.1f}s" if s in floors[0]["stages"] else f"{'':>10}"
                    for s in [*stages, "total"]
                )
            )
            ratio = _median(runs, "total") / _median(floors, "total")
            print(
                f"pipeline / floor: {ratio:.2f}x  (each run: "
                + ", ".join(f"{r['wall_s']:.1f}/{f['wall_s']:.1f}" for r, f in zip(runs, floors))
                + ")"
            )
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {sys.version.split()[0]}, database {db.describe(server)}"
    )


if __name__ == "__main__":
    main()
