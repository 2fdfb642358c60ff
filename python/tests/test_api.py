"""The Python API on the local executor: conversions, plans, run_task, config,
errors as Python exceptions, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr

import blockwise as bw
from conftest import leftovers


def test_convert_returns_statistics_and_writes_what_zarr_reads(array_npy, tmp_path):
    stats = bw.convert(array_npy, tmp_path / "a.zarr", chunks=[50, 100])
    assert stats["from"] == "npy" and stats["to"] == "zarr"
    assert stats["tasks"] > 0
    z = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert z.chunks == (50, 100)
    np.testing.assert_array_equal(z[...], np.load(array_npy))


def test_a_plan_round_trips_and_runs_here_or_task_by_task(array_npy, tmp_path):
    plan = bw.Plan.convert(array_npy, tmp_path / "b.zarr", chunks="64,64")
    again = bw.Plan.from_json(plan.to_json())
    assert again.waves() == plan.waves()
    assert len(plan) == sum(len(w) for w in plan.waves())
    reports = [bw.run_task(plan, t) for wave in plan.waves() for t in wave]
    assert {"id", "op", "seconds", "read_bytes", "written_bytes",
            "peak_reserved_bytes", "skipped"} <= set(reports[0])
    assert not any(r["skipped"] for r in reports)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "b.zarr", mode="r")[...],
                                  np.load(array_npy))
    # Done: the working directory is gone, and every task is now skipped.
    assert not os.path.exists(plan.workdir)
    assert bw.run_task(plan, 0)["skipped"]
    assert leftovers(tmp_path) == []

    local = bw.Plan.convert(array_npy, tmp_path / "c.zarr", chunks="64,64")
    stats = local.run(threads=1)
    assert stats["tasks"] == len(local) and stats["skipped_tasks"] == 0
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "c.zarr", mode="r")[...],
                                  np.load(array_npy))


def test_bad_input_raises_value_error_and_files_raise_os_errors(array_npy, tmp_path):
    with pytest.raises(ValueError, match='chunks="0,5"'):
        bw.convert(array_npy, tmp_path / "x.zarr", chunks="0,5")
    with pytest.raises(FileNotFoundError, match="no such file"):
        bw.convert(tmp_path / "missing.npy", tmp_path / "x.zarr")
    bw.convert(array_npy, tmp_path / "x.zarr")
    with pytest.raises(FileExistsError, match="already exists"):
        bw.convert(array_npy, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="not a valid blockwise plan"):
        bw.Plan.from_json('{"version": 1, "tasks": []}')
    with pytest.raises(TypeError, match="unknown blockwise setting"):
        bw.config.set(memory=1)


def test_a_task_that_cannot_fit_raises_a_memory_error(array_npy, tmp_path):
    with pytest.raises(bw.BlockwiseMemoryError) as info:
        bw.convert(array_npy, tmp_path / "y.zarr", chunks="200,300", memory_limit="64KiB")
    assert isinstance(info.value, MemoryError)


def test_config_applies_to_every_job_and_restores_on_exit(array_npy, tmp_path):
    with bw.config.set(threads=1, memory_limit="512MiB"):
        stats = bw.convert(array_npy, tmp_path / "z.zarr")
        assert stats["threads"] == 1
        assert stats["memory_limit_bytes"] == 512 << 20
    assert bw.config.job_options() == {}
    stats = bw.convert(array_npy, tmp_path / "z2.zarr", threads=2)
    assert stats["threads"] == 2


def test_ctrl_c_cancels_the_job_and_leaves_nothing(tmp_path):
    src = tmp_path / "big.npy"
    np.save(src, np.random.default_rng(0).random((4000, 2000)))
    script = textwrap.dedent(f"""
        import blockwise as bw, sys
        print("started", flush=True)
        try:
            bw.convert({str(src)!r}, {str(tmp_path / "out.zarr")!r}, chunks="10,10",
                       compression="zstd:19", threads=1)
        except KeyboardInterrupt as e:
            print("interrupted:", e, flush=True)
            sys.exit(7)
    """)
    # A shell that starts a job in the background ignores SIGINT, and children inherit
    # that: the child gets the default action back, so Python installs its handler.
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 7, out
    assert "interrupted" in out
    assert not (tmp_path / "out.zarr").exists()
    assert leftovers(tmp_path) == []
