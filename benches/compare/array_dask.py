#!/usr/bin/env python3
"""The tutorial example on a Dask cluster: blockwise's plan run by its DaskExecutor
against plain dask.array, both on the same LocalCluster (2 workers, 1 thread each,
on 127.0.0.1), in the same process, interleaved.

    .venv/bin/python benches/compare/array_dask.py [--scale F] [--runs N]

`(arcsin(x) + arccos(y)).sum(axis=(1, 2))`, x and y random (10000, 10000, 10) in
(1000, 1000, 5) chunks (--scale shrinks the first axis). Prints each run's wall time
and the medians, and checks that blockwise's result equals its local run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    import blockwise as bw

    n = int(10000 * args.scale)
    shape, chunks = (n, 10000, 10), (1000, 1000, 5)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
        def run_blockwise():
            x = bw.random.random(shape, chunks=chunks, seed=1)
            y = bw.random.random(shape, chunks=chunks, seed=2)
            r = (bw.arcsin(x) + bw.arccos(y)).sum(axis=(1, 2))
            return r.compute(executor=bw.DaskExecutor(client), threads=1)

        def run_dask():
            x = da.random.random(shape, chunks=chunks)
            y = da.random.random(shape, chunks=chunks)
            return (da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2)).compute()

        times = {"blockwise on dask": [], "dask.array": []}
        tools = {"blockwise on dask": run_blockwise, "dask.array": run_dask}
        for name, f in tools.items():  # warm-up
            f()
        for i in range(args.runs):
            for name, f in tools.items():
                t = time.perf_counter()
                result = f()
                times[name].append(time.perf_counter() - t)
                print(f"{name} run {i + 1}: {times[name][-1]:.2f} s", flush=True)
        local = None
        with dask.config.set(scheduler="threads"):
            x = bw.random.random(shape, chunks=chunks, seed=1)
            y = bw.random.random(shape, chunks=chunks, seed=2)
            local = (bw.arcsin(x) + bw.arccos(y)).sum(axis=(1, 2)).compute(progress=False)
        same = np.array_equal(run_blockwise(), local)
        bw_t = statistics.median(times["blockwise on dask"])
        dk_t = statistics.median(times["dask.array"])
        print(f"\n| tool | median wall s |\n| --- | ---: |\n| blockwise on dask | {bw_t:.2f} |"
              f"\n| dask.array | {dk_t:.2f} |\n\nblockwise / dask.array = {bw_t / dk_t:.2f}; "
              f"result {'equals' if same else 'DIFFERS FROM'} the local run")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
