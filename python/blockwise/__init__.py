"""blockwise: an out-of-core engine for chunked arrays and data frames.

Conversions and plans from Python, with the same options as the command line
(``chunks="100,100"`` is ``--chunks 100,100``)::

    import blockwise as bw

    bw.convert("data.csv", "data.parquet", sort_by="id", memory_limit="1GiB")

    plan = bw.Plan.convert("a.zarr", "b.zarr", chunks="1000,1000")
    plan.run(threads=4)                      # here, or task by task:
    for wave in plan.waves():
        for task in wave:
            bw.run_task(plan, task)          # in any process that sees the paths

    from distributed import Client
    bw.DaskExecutor(Client("tcp://scheduler:8786")).run(plan)

The GIL is released while Rust runs; Ctrl-C cancels a job cleanly. Errors carry
blockwise's messages: ``ValueError`` for bad input, ``BlockwiseMemoryError`` (a
``MemoryError``) for a job the memory limit stopped, ``OSError`` and its subclasses
for files.
"""

from __future__ import annotations

import json
import operator
import os
from typing import Any, Iterable

from . import _blockwise, _progress, _report
from ._config import config
from ._report import performance_report
from ._blockwise import BlockwiseMemoryError
from . import array as _array
from .frame import (
    Column, Frame, GroupBy, from_arrow, from_pandas, read_csv, read_ipc, read_parquet, sql,
)
from .array import (
    Array,
    from_array,
    from_npy,
    from_npy_stack,
    from_zarr,
    random,
)

__all__ = [
    "Array",
    "Column",
    "Frame",
    "GroupBy",
    "from_arrow",
    "from_pandas",
    "read_csv",
    "read_ipc",
    "read_parquet",
    "sql",
    "BlockwiseMemoryError",
    "DaskExecutor",
    "Plan",
    "config",
    "convert",
    "from_array",
    "from_npy",
    "from_npy_stack",
    "from_zarr",
    "performance_report",
    "random",
    "run_task",
    "__version__",
]

__version__ = _blockwise.version()


def _flags(options: dict[str, Any]) -> list[str]:
    """Command-line flags for keyword options: ``sort_by="a"`` is ``--sort-by a``,
    ``overwrite=True`` is ``--overwrite``, lists are comma-separated, ``dtype`` is a
    mapping of column to type."""
    flags: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if name == "progress":
            if not value:
                flags.append("--no-progress")
            continue
        # `--flag=value`, one argument: a value starting with "-" (memory_limit=-1)
        # stays a value, to be refused by its option's parser with its name.
        if value is True:
            flags.append(flag)
        elif name == "dtype" and isinstance(value, dict):
            for column, dtype in value.items():
                flags.append(f"--dtype={column}={dtype}")
        elif isinstance(value, (list, tuple)):
            flags.append(flag + "=" + ",".join(str(v) for v in value))
        elif isinstance(value, os.PathLike):
            flags.append(f"{flag}={os.fspath(value)}")
        else:
            flags.append(f"{flag}={value}")
    return flags


def _task_id(task_id: Any, tasks: int | None) -> int:
    """``task_id`` as an int, refused unless it is a whole number naming one of the
    ``tasks`` (any u32 when the count is not known here)."""
    try:
        task_id = operator.index(task_id)
    except TypeError:
        raise TypeError(f"a task id is a whole number, not {task_id!r}") from None
    limit = tasks if tasks is not None else 2**32
    if not 0 <= task_id < limit:
        known = f" (its tasks are 0 to {tasks - 1})" if tasks else ""
        raise ValueError(f"the plan has no task {task_id}{known}")
    return task_id


def _with_config(options: dict[str, Any]) -> dict[str, Any]:
    merged = config.job_options()
    merged.update(options)
    return merged


def convert(src: str | os.PathLike, dst: str | os.PathLike, **options: Any) -> dict:
    """Converts ``src`` to ``dst``; returns the job's statistics (rows, bytes, peak
    memory...). Options are ``blockwise convert``'s flags with underscores."""
    show = options.pop("progress", None)
    flags = _flags(_with_config(options))
    report = _report.active()
    if report is not None:
        report.check(paths=(src, dst))
    text = _progress.run(
        "convert",
        lambda progress: _blockwise.convert(os.fspath(src), os.fspath(dst), flags, progress, report),
        show,
    )
    return json.loads(text)


class Plan:
    """A plan: a graph of chunk tasks that runs here, task by task anywhere, or on a
    Dask cluster. Build one with :meth:`Plan.convert` or :meth:`Plan.from_json`."""

    def __init__(self, text: str):
        self._waves = _blockwise.plan_waves(text)  # checks the plan
        self._text = text
        self._data = json.loads(text)

    @classmethod
    def convert(cls, src: str | os.PathLike, dst: str | os.PathLike, **options: Any) -> "Plan":
        """The plan of ``convert(src, dst, **options)``, sized for the memory limit and
        threads given (or configured)."""
        flags = _flags(_with_config(options))
        return cls(_blockwise.plan_convert(os.fspath(src), os.fspath(dst), flags))

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """A plan from its JSON (as ``blockwise plan`` writes it)."""
        return cls(text)

    def to_json(self) -> str:
        return self._text

    def waves(self) -> list[list[int]]:
        """Task ids in waves: every task's dependencies are in earlier waves."""
        return [list(w) for w in self._waves]

    def deps(self, task_id: int) -> list[int]:
        """The tasks task ``task_id`` waits for."""
        try:
            task_id = _task_id(task_id, len(self))
        except ValueError as e:
            raise IndexError(str(e)) from None
        return list(self._data["tasks"][task_id].get("deps", []))

    @property
    def workdir(self) -> str:
        """The plan's working directory (intermediates and the output being written)."""
        return self._data.get("workdir", "")

    def __len__(self) -> int:
        return len(self._data["tasks"])

    def __repr__(self) -> str:
        return f"<blockwise.Plan: {len(self)} tasks in {len(self._waves)} waves, workdir {self.workdir!r}>"

    def run(self, **options: Any) -> dict:
        """Runs the plan here (``blockwise run``); a rerun after a failure resumes.
        Options: ``threads``, ``memory_limit``, ``spill_dir``, ... Returns statistics."""
        show = options.pop("progress", None)
        flags = _flags(_with_config(options))
        report = _report.active()
        if report is not None:
            report.check(plan=self._text)
        text = _progress.run(
            "run", lambda progress: _blockwise.run_plan(self._text, flags, progress, report), show
        )
        return json.loads(text)


def run_task(plan: Plan | str, task_id: int, **options: Any) -> dict:
    """Runs task ``task_id`` of ``plan`` in this process against the plan's working
    directory (``blockwise run-task``); returns ``{id, op, seconds, read_bytes,
    written_bytes, peak_reserved_bytes, skipped}``."""
    if isinstance(plan, Plan):
        text, task_id = plan.to_json(), _task_id(task_id, len(plan))
    else:
        text, task_id = plan, _task_id(task_id, None)
    return json.loads(_blockwise.run_task(text, task_id, _flags(_with_config(options))))


def __getattr__(name: str) -> Any:
    # `distributed` is imported only by those who use the Dask executor.
    if name == "DaskExecutor":
        from .dask import DaskExecutor

        return DaskExecutor
    # numpy's functions on lazy arrays: bw.arcsin(x), bw.sum(x, axis=0), bw.zeros(...).
    if not name.startswith("_"):
        try:
            return getattr(_array, name)
        except AttributeError:
            pass
    raise AttributeError(f"module 'blockwise' has no attribute {name!r}")
