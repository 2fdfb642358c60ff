"""Running a blockwise plan on a Dask cluster.

Every task is submitted with ``client.submit``, its dependencies passed as futures,
so Dask's own dependency tracking orders them (no stage barriers). What crosses the
network is a scattered copy of the plan's JSON and task ids; data stays in the plan's
working directory, which every worker must see (a shared file system, or one machine).
Results are the small dicts of :func:`blockwise.run_task`. A task whose worker dies is
retried elsewhere; tasks that had finished are not redone (their outputs are published
in the working directory), which Dask alone would recompute.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import _blockwise, _flags, Plan


def _run_on_worker(plan_text: str, task_id: int, *_deps: Any) -> dict:
    """One task on a Dask worker, under the worker's memory limit divided by its
    threads (the tasks running beside it each get as much)."""
    flags = ["--threads", "1", "--no-progress"]
    try:
        from distributed import get_worker

        worker = get_worker()
        limit = worker.memory_manager.memory_limit
        threads = max(1, worker.state.nthreads)
        if limit:
            flags += ["--memory-limit", str(max(int(limit) // threads, 64 << 20))]
    except (ImportError, ValueError, AttributeError):
        pass  # not on a worker (a local client): blockwise's defaults apply
    return json.loads(_blockwise.run_task(plan_text, int(task_id), flags))


class DaskExecutor:
    """Runs plans on the workers of a ``distributed.Client``."""

    def __init__(self, client: Any, retries: int = 3):
        if not all(hasattr(client, m) for m in ("scatter", "submit", "gather")):
            raise TypeError(f"DaskExecutor needs a distributed.Client, not {client!r}")
        self.client = client
        self.retries = retries

    def run(self, plan: Plan | str, **options: Any) -> dict:
        """Submits every task of ``plan`` and waits for all of them; returns
        ``{"tasks": N, "skipped_tasks": K, "reports": [...]}``. Raises the first task's
        error (as the local executor would)."""
        if not isinstance(plan, Plan):
            plan = Plan.from_json(plan)
        text = plan.to_json()
        if options:
            raise TypeError(f"unexpected options {sorted(options)}; job options are the workers'")
        token = hashlib.sha256(text.encode()).hexdigest()[:16]
        [plan_ref] = self.client.scatter([text], broadcast=True, hash=False)
        futures: dict[int, Any] = {}
        for wave in plan.waves():
            for task_id in wave:
                deps = [futures[d] for d in plan.deps(task_id)]
                futures[task_id] = self.client.submit(
                    _run_on_worker,
                    plan_ref,
                    task_id,
                    *deps,
                    key=f"blockwise-{token}-{task_id}",
                    retries=self.retries,
                    pure=False,
                )
        ordered = [futures[t] for t in sorted(futures)]
        reports = self.client.gather(ordered)
        return {
            "tasks": sum(1 for r in reports if not r["skipped"]),
            "skipped_tasks": sum(1 for r in reports if r["skipped"]),
            "reports": reports,
        }
