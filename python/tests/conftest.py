"""Fixtures of the Python tests: a real Dask cluster on loopback (one scheduler, two
single-threaded workers with a 1 GiB limit each, started as the `dask` command
starts them), and small datasets written by the reference libraries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

BIN = Path(sys.executable).parent


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A scheduler and two workers on 127.0.0.1; yields a connected Client."""
    from distributed import Client

    root = tmp_path_factory.mktemp("cluster")
    scheduler_file = root / "scheduler.json"
    procs = [
        _start(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            root / "scheduler.log",
        )
    ]
    deadline = time.time() + 60
    while not scheduler_file.exists():
        if time.time() > deadline:
            raise RuntimeError((root / "scheduler.log").read_text())
        time.sleep(0.1)
    for i in range(2):
        procs.append(
            _start(
                [str(BIN / "dask"), "worker", "--scheduler-file", str(scheduler_file),
                 "--nthreads", "1", "--memory-limit", "1GiB", "--host", "127.0.0.1",
                 "--no-dashboard", "--local-directory", str(root / f"w{i}")],
                root / f"worker{i}.log",
            )
        )
    client = Client(scheduler_file=str(scheduler_file), timeout=60)
    client.wait_for_workers(2, timeout=120)
    try:
        yield client
    finally:
        client.close()
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def write_table_csv(path: Path, rows: int, seed: int = 0) -> pa.Table:
    """A db-benchmark-like table (string ids, integers, floats) as a CSV file."""
    rng = np.random.default_rng(seed)
    table = pa.table({
        "id1": [f"id{v:03d}" for v in rng.integers(1, 100, rows)],
        "id4": rng.integers(1, 1000, rows),
        "v1": rng.integers(1, 6, rows),
        "v3": np.round(rng.random(rows) * 100, 6),
    })
    pacsv.write_csv(table, path)
    return table


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "t.csv"
    write_table_csv(path, 20_000)
    return path


@pytest.fixture
def array_npy(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(200 * 300, dtype="float64").reshape(200, 300))
    return path


def leftovers(*dirs: Path) -> list[str]:
    """Temporary files or working directories of blockwise under `dirs`."""
    found = []
    for d in dirs:
        for p in Path(d).rglob("*"):
            if ".blockwise-" in p.name or ".tmp-" in p.name:
                found.append(str(p))
    return found
