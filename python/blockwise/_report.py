"""``bw.performance_report``: one self-contained HTML report of every blockwise
computation run inside a ``with`` block, as ``--report`` writes for one command.

Local jobs (``bw.convert``, ``Plan.run``) are recorded in full: the task stream,
progress by operation, memory over time and spills. A plan run through
``bw.DaskExecutor`` contributes its tasks as the workers ran them (one row a worker
thread, with their bytes and times); the workers' memory stays theirs.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional

from . import _blockwise

_local = threading.local()


def active() -> Optional["performance_report"]:
    """The innermost report being recorded on this thread, if any."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


class performance_report:
    """Records the blockwise computations inside ``with`` and writes one report::

        with bw.performance_report("report.html"):
            bw.convert("big.csv", "big.parquet", sort_by="id")
            bw.DaskExecutor(client).run(plan)

    An existing file is refused (``FileExistsError``) before anything runs, unless
    ``overwrite=True``. The report is written on leaving the block, also when it
    raised, if any job finished inside it.
    """

    def __init__(self, filename: str | os.PathLike, overwrite: bool = False):
        self.filename = os.fspath(filename)
        self.overwrite = overwrite
        self._parts: list[Any] = []
        self._lock = threading.Lock()

    def check(self, plan: Optional[str] = None, paths: tuple = ()) -> None:
        """Refuses (``ValueError``), before a job runs, a report that would be or lie
        inside what the job reads or writes."""
        _blockwise.check_report_path(self.filename, plan, [os.fspath(p) for p in paths])

    def add(self, part: Any) -> None:
        """Adds one job's part (what the extension returns when asked to record)."""
        if part is not None:
            with self._lock:
                self._parts.append(part)

    def __enter__(self) -> "performance_report":
        # What can be told now is told now, not after the work.
        if os.path.lexists(self.filename):
            if not self.overwrite:
                raise FileExistsError(
                    f"{self.filename} exists; pass overwrite=True to replace it"
                )
            if not os.path.isfile(self.filename) or os.path.islink(self.filename):
                raise ValueError(
                    f"{self.filename} exists and is not a file; a report replaces only a file"
                )
        parent = os.path.dirname(os.path.abspath(self.filename))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"{parent}: no such directory for the report")
        if any(r.filename == self.filename for r in getattr(_local, "stack", [])):
            raise ValueError(f"a performance report to {self.filename} is already open")
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _local.stack.remove(self)
        with self._lock:
            parts, self._parts = self._parts, []
        if not parts:
            return
        try:
            _blockwise.write_report(parts, self.filename, self.overwrite)
        except Exception as e:
            if exc_type is None:
                raise
            # The block's own exception is what the user must see; the report's
            # failure is said beside it.
            import warnings

            warnings.warn(f"the performance report {self.filename} was not written: {e}")
