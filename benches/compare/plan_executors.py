#!/usr/bin/env python3
"""One plan, three executors: the out-of-core sort of sort.py (G1_1e7_1e2 CSV ->
Parquet sorted by v3, a 256 MiB budget, 2 cores) run by

* local:     `blockwise convert ... --sort-by v3 --memory-limit 256MiB` (the local
             executor, intermediates in memory with spill);
* run-task:  `blockwise plan convert ... -o plan.json`, then for each line of
             `blockwise tasks plan.json`, its ids through `xargs -P 2 -n 1 blockwise
             run-task plan.json --threads 1 --memory-limit 128MiB` (one process a
             task, intermediates as files in the plan's working directory);
* dask:      the same plan through `blockwise.DaskExecutor` on a `dask scheduler` and
             two `dask worker --nthreads 1 --memory-limit 128MiB` on 127.0.0.1. The
             workers' own memory thresholds (target, spill, pause, terminate) are
             off: a worker's Python process holds ~90 MiB before any task runs, so
             at 128 MiB Dask paused it and its nanny restarted it (losing the
             scattered plan) as soon as a task started. The 128 MiB stays each
             task's budget (DaskExecutor passes the worker's limit to run-task,
             which counts RSS above the process's baseline), as in the loop.

    .venv/bin/python benches/compare/plan_executors.py [--by v3]

Prints wall seconds of each and its ratio to the local run; checks that the three
outputs are equal (pyarrow). Needs the Python extension in the venv (scripts/test.sh
builds it; a release build is fairer: `maturin build --release -m python/Cargo.toml`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--by", default="v3")
    args = ap.parse_args()
    bw = common.blockwise_bin()
    data = Path(os.environ.get("BENCH_DATA", common.bench_dir() / "G1_1e7_1e2.csv"))
    if not data.exists():
        sys.exit(f"{data} missing: run sort.py once (it generates it) or set BENCH_DATA")
    out = common.bench_dir() / "plan_executors"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    flags = ["--sort-by", args.by, "--memory-limit", "256MiB", "--threads", "2", "--no-progress"]

    local = out / "local.parquet"
    t_local = timed(lambda: subprocess.run([bw, "convert", str(data), str(local), *flags], check=True))

    looped = out / "loop.parquet"
    plan = out / "loop-plan.json"
    subprocess.run([bw, "plan", "convert", str(data), str(looped), *flags, "-o", str(plan)], check=True)
    script = (
        f'"{bw}" tasks "{plan}" | while read -r wave; do '
        f'printf "%s\\n" $wave | xargs -P 2 -n 1 "{bw}" run-task "{plan}" --threads 1 '
        f'--memory-limit 128MiB > /dev/null || exit 1; done'
    )
    t_loop = timed(lambda: subprocess.run(["bash", "-c", script], check=True))

    import blockwise
    from distributed import Client

    dask_bin = Path(sys.executable).parent / "dask"
    sched_file = out / "scheduler.json"
    # Dask's memory manager off on the workers (see the docstring); logs kept in `out`.
    worker_env = dict(os.environ, **{f"DASK_DISTRIBUTED__WORKER__MEMORY__{k}": "False"
                                     for k in ("TARGET", "SPILL", "PAUSE", "TERMINATE")})
    procs = [subprocess.Popen([str(dask_bin), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=open(out / "scheduler.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)]
    try:
        deadline = time.monotonic() + 120
        while not sched_file.exists():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                sys.exit(f"dask scheduler did not start: see {out / 'scheduler.log'}")
            time.sleep(0.1)
        for i in range(2):
            procs.append(subprocess.Popen([str(dask_bin), "worker", "--scheduler-file", str(sched_file),
                                           "--nthreads", "1", "--memory-limit", "128MiB",
                                           "--no-dashboard", "--local-directory", str(out / f"w{i}")],
                                          stdout=open(out / f"w{i}.log", "w"),
                                          stderr=subprocess.STDOUT, env=worker_env,
                                          start_new_session=True))
        client = Client(scheduler_file=str(sched_file))
        client.wait_for_workers(2, timeout=120)
        dasked = out / "dask.parquet"
        p = blockwise.Plan.convert(data, dasked, sort_by=args.by, memory_limit="256MiB", threads=2)
        t_dask = timed(lambda: blockwise.DaskExecutor(client).run(p))
        client.close()
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)

    import pyarrow.parquet as pq

    ref = pq.read_table(local)
    for other in (looped, dasked):
        if not pq.read_table(other).equals(ref):
            sys.exit(f"{other} differs from {local}")
    print("| executor | wall s | vs local |")
    print("| --- | ---: | ---: |")
    for name, t in [("local (convert)", t_local), ("run-task shell loop, 2 at once", t_loop),
                    ("Dask, 2 workers x 1 thread", t_dask)]:
        print(f"| {name} | {t:.2f} | {t / t_local:.2f}x |")


if __name__ == "__main__":
    main()
