"""Plans on a real Dask cluster (scheduler and two workers on 127.0.0.1): the same
output as the local executor, and a worker killed mid-run loses no finished work."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr

import blockwise as bw
from conftest import leftovers, write_table_csv


#: RSS thresholds off: the tiny limits here (2 and 8 MiB) size the plans. RSS is the
#: whole process's, and this one runs a Dask client's threads beside the job. At 8 MiB
#: a local sort alone peaks at 0.85-0.9 of the limit: two Parquet encoders' zstd
#: contexts and dictionaries (about 7 MB at the peak, a cost per column, not per row)
#: are most of it, and with this process's other allocations it passed the terminate
#: threshold (9.6 MB); at 2 MiB what any job adds beside its reservations (thread
#: stacks, allocator arenas, those contexts) passes it alone.
RSS_OFF = {"memory_spill": "off", "memory_pause": "off", "memory_terminate": "off"}


def run_both(client, src: Path, dst_local: Path, dst_dask: Path, **options) -> dict:
    bw.convert(src, dst_local, **options)
    plan = bw.Plan.convert(src, dst_dask, **options)
    result = bw.DaskExecutor(client).run(plan)
    assert result["tasks"] + result["skipped_tasks"] == len(plan)
    assert not os.path.exists(plan.workdir)
    return result


def test_csv_to_parquet_on_dask_equals_the_local_run(cluster, table_csv, tmp_path):
    run_both(cluster, table_csv, tmp_path / "local.parquet", tmp_path / "dask.parquet",
             blocksize="64KiB")
    assert pq.read_table(tmp_path / "dask.parquet").equals(pq.read_table(tmp_path / "local.parquet"))
    assert leftovers(tmp_path) == []


def test_a_spilling_sort_on_dask_equals_the_local_run(cluster, table_csv, tmp_path):
    # The limit sizes the plan; the RSS thresholds would act on this test process.
    run_both(cluster, table_csv, tmp_path / "local.parquet", tmp_path / "dask.parquet",
             sort_by="id4,v3", memory_limit="2MiB", **RSS_OFF)
    local = pq.read_table(tmp_path / "local.parquet")
    assert local.column("id4").to_pylist() == sorted(local.column("id4").to_pylist())
    assert pq.read_table(tmp_path / "dask.parquet").equals(local)
    assert leftovers(tmp_path) == []


def test_a_staged_rechunk_on_dask_equals_the_local_run(cluster, tmp_path):
    src = tmp_path / "a.zarr"
    data = np.random.default_rng(1).random((400, 400))
    z = zarr.create_array(src, shape=data.shape, chunks=(400, 5), dtype="f8")
    z[...] = data
    # 1.28 MB of data under a 160 KB limit: no task may hold a source column band and
    # a target row band at once, so the plan goes through an intermediate array.
    # (RSS thresholds off: the limit is for the plan's sizing, not this process.)
    plan = bw.Plan.convert(src, tmp_path / "probe.zarr", chunks="5,400", memory_limit="160000")
    assert any(t["op"]["name"] == "create_array" for t in plan._data["tasks"][:-1])
    assert len([d for d in plan._data["datasets"] if d["role"] == "intermediate"]) >= 1
    os.rmdir(plan.workdir)  # made with the plan (empty); this probe never runs
    run_both(cluster, src, tmp_path / "local.zarr", tmp_path / "dask.zarr",
             chunks="5,400", memory_limit="160000", memory_spill="off", memory_pause="off",
             memory_terminate="off")
    got = zarr.open_array(tmp_path / "dask.zarr", mode="r")
    assert got.chunks == (5, 400)
    np.testing.assert_array_equal(got[...], data)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "local.zarr", mode="r")[...], data)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("victims", [1, 2], ids=["one worker", "every worker"])
def test_a_worker_killed_during_a_sort_loses_no_finished_work(cluster, tmp_path, victims):
    # Every worker at once too: the plan is read from its working directory, so no
    # Dask data a retry needs dies with them (a scattered plan did: "already forgotten").
    src = tmp_path / "big.csv"
    write_table_csv(src, 300_000, seed=3)
    bw.convert(src, tmp_path / "local.parquet", sort_by="v3", memory_limit="8MiB", **RSS_OFF)
    plan = bw.Plan.convert(src, tmp_path / "dask.parquet", sort_by="v3", memory_limit="8MiB",
                           blocksize="256KiB")
    pids = cluster.run(os.getpid)
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = bw.DaskExecutor(cluster).run(plan)
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    # Kill one worker once some tasks have published their output.
    workdir = Path(plan.workdir)
    deadline = time.time() + 120
    while time.time() < deadline and thread.is_alive():
        published = [p for p in workdir.rglob("*") if p.is_file() and ".tmp-" not in p.name]
        if len(published) >= 3:
            break
        time.sleep(0.02)
    assert thread.is_alive(), "the sort finished before a worker could be killed"
    for victim in sorted(pids.values())[:victims]:
        os.kill(victim, signal.SIGKILL)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    assert pq.read_table(tmp_path / "dask.parquet").equals(pq.read_table(tmp_path / "local.parquet"))
    assert leftovers(tmp_path) == []
    cluster.wait_for_workers(2, timeout=120)


def test_a_dask_run_in_a_performance_report_has_a_row_a_worker_thread(cluster, table_csv, tmp_path):
    plan = bw.Plan.convert(table_csv, tmp_path / "d.parquet", sort_by="id4",
                           memory_limit="8MiB", **RSS_OFF)
    report = tmp_path / "dask.html"
    with bw.performance_report(report):
        result = bw.DaskExecutor(cluster).run(plan)
    html = report.read_text()
    data = json.loads(re.search(
        r'<script type="application/json" id="blockwise-report-data">(.*?)</script>',
        html, re.S).group(1))
    ran = [t for t in data["tasks"] if not t.get("skipped")]
    assert len(ran) == result["tasks"] and len(data["tasks"]) == len(plan)
    workers = set(cluster.scheduler_info()["workers"])
    # Each row is one worker's thread (single-threaded workers: one row each).
    assert data["rows"] and all(any(w in row for w in workers) for row in data["rows"])
    assert len(data["rows"]) <= len(workers)
    by_row = {}
    for t in ran:
        by_row.setdefault(t["thread"], []).append((t["start_s"], t["end_s"]))
    for bars in by_row.values():
        bars.sort()
        for (_, end), (start, _) in zip(bars, bars[1:]):
            assert end <= start + 1e-3, bars
    assert sum(o["tasks"] for o in data["ops"]) == result["tasks"]


# Frames on the cluster: the same rows as the local compute() and as DuckDB.

def _duck(query: str):
    import duckdb

    got = duckdb.sql(query).arrow()
    return got.read_all() if hasattr(got, "read_all") else got


def _close(got, want) -> bool:
    """Tables equal in names, order and values, floats to 1e-9 (DuckDB sums in
    another order)."""
    if got.column_names != want.column_names or got.num_rows != want.num_rows:
        return False
    for a, b in zip(got.columns, want.columns):
        a, b = a.to_pylist(), b.to_pylist()
        if any(isinstance(x, float) for x in a + b):
            if not np.allclose(np.array(a, float), np.array(b, float), rtol=1e-9, equal_nan=True):
                return False
        elif a != b:
            return False
    return True


def _frame_cases(path: Path) -> dict:
    df = bw.read_parquet(path)
    f = f"'{path}'"
    return {
        "group-by": (
            df.groupby("id1").agg({"v1": "sum", "v3": "mean"}),
            f"SELECT id1, sum(v1) AS v1, avg(v3) AS v3 FROM {f} GROUP BY id1 ORDER BY id1",
        ),
        # Few groups, many buckets: sorted runs of no rows on the workers' disk.
        "group-by, sorted": (
            df.groupby("v1").agg({"v3": "sum"}).sort_values("v3", ascending=False),
            f"SELECT v1, sum(v3) AS v3 FROM {f} GROUP BY v1 ORDER BY v3 DESC",
        ),
        "sort": (
            df.sort_values(["v3", "id4"], ascending=[False, True]),
            f"SELECT * FROM {f} ORDER BY v3 DESC, id4 ASC",
        ),
        "top-k": (
            df.nsmallest(25, "v3"),
            f"SELECT * FROM {f} ORDER BY v3 ASC LIMIT 25",
        ),
        "filter": (
            df[(df.v1 > 3) & (df.id4 < 500)],
            f"SELECT * FROM {f} WHERE v1 > 3 AND id4 < 500",
        ),
    }


@pytest.fixture
def frame_parquet(tmp_path):
    """The db-benchmark-like table in Parquet with small row groups: a frame of many
    partitions."""
    table = write_table_csv(tmp_path / "t.csv", 20_000, seed=5)
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=2_000)
    return path


@pytest.mark.parametrize("case", ["group-by", "group-by, sorted", "sort", "top-k", "filter"])
def test_a_frame_on_dask_equals_the_local_compute_and_duckdb(cluster, frame_parquet, case,
                                                             monkeypatch):
    import tempfile

    frame, query = _frame_cases(frame_parquet)[case]
    # The result's temporary directory goes where this test can look for it.
    temp = frame_parquet.parent / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    local = frame.compute()
    remote = frame.compute(executor=bw.DaskExecutor(cluster))
    assert remote.equals(local), (remote.slice(0, 5), local.slice(0, 5))
    assert bw.sql(frame._query, executor=bw.DaskExecutor(cluster)).equals(local)
    want = _duck(query)
    assert remote.column_names == want.column_names
    if case == "filter":  # no order asked: compared as sets, and in file order
        assert remote.num_rows > 0
        key = [(c, "ascending") for c in remote.column_names]
        assert _close(remote.sort_by(key), want.sort_by(key))
    else:
        assert _close(remote, want)
    assert list(temp.iterdir()) == []
    assert leftovers(frame_parquet.parent) == []


def test_a_frame_written_on_dask_equals_the_local_file(cluster, frame_parquet, tmp_path):
    df = bw.read_parquet(frame_parquet)
    grouped = df[df.v1 >= 2].groupby(["id1", "v1"]).agg(total=("v3", "sum"), n=("v3", "size"))
    executor = bw.DaskExecutor(cluster)
    for writer, read in [("to_parquet", pq.read_table),
                         ("to_ipc", lambda p: __import__("pyarrow").ipc.open_file(p).read_all()),
                         ("to_csv", lambda p: __import__("pyarrow.csv").csv.read_csv(p))]:
        ext = {"to_parquet": "parquet", "to_ipc": "arrow", "to_csv": "csv"}[writer]
        local, remote = tmp_path / f"local.{ext}", tmp_path / f"dask.{ext}"
        getattr(grouped, writer)(local)
        result = getattr(grouped, writer)(remote, executor=executor)
        assert result["tasks"] > 1
        assert read(remote).equals(read(local)), writer
    want = _duck(f"SELECT id1, v1, sum(v3) AS total, count(*) AS n FROM '{frame_parquet}' "
                 "WHERE v1 >= 2 GROUP BY id1, v1 ORDER BY id1, v1")
    assert _close(pq.read_table(tmp_path / "dask.parquet"), want)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", ["missing column", "run time"])
def test_a_failing_frame_raises_the_same_error_on_dask(cluster, frame_parquet, failure,
                                                        monkeypatch):
    import tempfile

    df = bw.read_parquet(frame_parquet)
    if failure == "missing column":
        frame = bw.Frame(f"SELECT v9 FROM '{frame_parquet}'")
    else:  # refused only when the rows are read: a string that is no integer
        frame = df.assign(x=df.id1.astype("int64")).groupby("id4").x.sum()
    temp = frame_parquet.parent / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with pytest.raises(Exception) as here:
        frame.compute()
    with pytest.raises(Exception) as there:
        frame.compute(executor=bw.DaskExecutor(cluster))
    assert type(there.value) is type(here.value) is ValueError
    if failure == "missing column":
        assert "v9" in str(there.value) and str(there.value) == str(here.value)
    else:
        assert "cannot cast" in str(there.value) and "id1" in str(there.value)
    # At once: the tasks running when the first one failed were waited for.
    assert list(temp.rglob("*")) == []
    assert leftovers(frame_parquet.parent) == []


def test_a_frame_from_memory_runs_on_dask(cluster, tmp_path):
    import pandas as pd

    table = write_table_csv(tmp_path / "t.csv", 5_000, seed=7)
    frame = bw.from_pandas(table.to_pandas())
    got = frame.groupby("id1").agg({"v3": "max"}).compute(executor=bw.DaskExecutor(cluster))
    want = table.to_pandas().groupby("id1").agg({"v3": "max"}).reset_index()
    pd.testing.assert_frame_equal(got.to_pandas(), want)


def test_a_frame_written_on_dask_refuses_an_existing_output_unless_overwrite(cluster, frame_parquet,
                                                                            tmp_path):
    df = bw.read_parquet(frame_parquet)
    out = tmp_path / "exists.parquet"
    out.write_bytes(b"keep me")
    executor = bw.DaskExecutor(cluster)
    with pytest.raises(FileExistsError):
        df.to_parquet(out, executor=executor)
    assert out.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []
    df[df.v1 > 4].to_parquet(out, executor=executor, overwrite=True)
    assert pq.read_table(out).num_rows == duckdb_count(frame_parquet, "v1 > 4")
    assert leftovers(tmp_path) == []


def duckdb_count(path: Path, where: str) -> int:
    return _duck(f"SELECT count(*) AS n FROM '{path}' WHERE {where}").column(0)[0].as_py()
