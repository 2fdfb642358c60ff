"""The Python API fed what a careless or hostile caller passes: wrong types, negative
or huge numbers, plans that are not plans. Each must raise a Python exception that
names the argument, with nothing written."""

from __future__ import annotations

import os

import pytest

import blockwise as bw
from conftest import leftovers


def test_negative_numbers_are_values_not_flags(array_npy, tmp_path):
    # As separate arguments, "-1" would be read as a flag of the command line.
    with pytest.raises(ValueError, match='chunks="-1"'):
        bw.convert(array_npy, tmp_path / "x.zarr", chunks=-1)
    with pytest.raises(ValueError, match='chunks="-5,10"'):
        bw.convert(array_npy, tmp_path / "x.zarr", chunks=[-5, 10])
    with pytest.raises(ValueError, match='memory_limit="-1"'):
        bw.convert(array_npy, tmp_path / "x.zarr", memory_limit=-1)
    with pytest.raises(ValueError, match='threads="-3"'):
        bw.Plan.convert(array_npy, tmp_path / "x.zarr", threads=-3)
    with pytest.raises(ValueError, match="chunks"):
        bw.convert(array_npy, tmp_path / "x.zarr", chunks=[0])
    assert not os.path.exists(tmp_path / "x.zarr")
    assert leftovers(tmp_path) == []


def test_task_ids_must_be_whole_numbers_of_the_plan(array_npy, tmp_path):
    plan = bw.Plan.convert(array_npy, tmp_path / "b.zarr", chunks="64,64")
    with pytest.raises(TypeError, match="task id"):
        bw.run_task(plan, 1.7)
    with pytest.raises(TypeError, match="task id"):
        bw.run_task(plan, "0")
    for bad in (-1, len(plan), 2**40):
        with pytest.raises(ValueError, match=f"no task {bad}"):
            bw.run_task(plan, bad)
        with pytest.raises(IndexError, match=f"no task {bad}"):
            plan.deps(bad)
    with pytest.raises(ValueError, match=f"no task {2**40}"):
        bw.run_task(plan.to_json(), 2**40)
    assert not os.path.exists(tmp_path / "b.zarr")


def test_plans_that_are_not_plans(tmp_path):
    for text in ("garbage", "[]", "{}", '{"version": 2}', "[" * 100_000):
        with pytest.raises(ValueError, match="not a valid blockwise plan"):
            bw.Plan.from_json(text)
    for text in (None, 3, {"version": 2}, b"{}"):
        with pytest.raises(TypeError):
            bw.Plan.from_json(text)
    # A plan with no working directory is refused when it would run.
    empty = bw.Plan.from_json('{"version": 2, "tasks": []}')
    assert empty.workdir == ""
    with pytest.raises(ValueError, match="working directory"):
        empty.run()


def test_a_dask_executor_needs_a_client():
    with pytest.raises(TypeError, match="Client"):
        bw.DaskExecutor(None)
