"""Running a blockwise plan on a Dask cluster.

Every task is submitted with ``client.submit``, its dependencies passed as futures,
so Dask's own dependency tracking orders them (no stage barriers). What crosses the
network is the plan's location and task ids: the plan is written once into its
working directory, which every worker must see anyway (a shared file system, or one
machine), since that is where the data stays. Results are the small dicts of
:func:`blockwise.run_task`. A task whose worker dies is retried elsewhere; tasks that
had finished are not redone (their outputs are published in the working directory),
which Dask alone would recompute. Because no worker holds the plan as Dask data, even
the loss of every worker at once loses nothing a retry needs (a scattered copy would
be gone with them).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from . import _blockwise, _report, Plan

# Plans read by this worker process, by path and digest: a task reads its plan once.
_PLANS: dict[tuple[str, str], str] = {}


def _plan_text(path: str, digest: str) -> str:
    """The plan at ``path``, checked against the digest it was submitted with (a plan
    file replaced meanwhile is refused, not run)."""
    key = (path, digest)
    text = _PLANS.get(key)
    if text is None:
        text = Path(path).read_text()
        if hashlib.sha256(text.encode()).hexdigest()[: len(digest)] != digest:
            raise ValueError(f"the plan at {path} is not the one submitted (digest {digest})")
        _PLANS.clear()  # one plan at a time is the usual case: keep memory flat
        _PLANS[key] = text
    return text


def _run_on_worker(plan_path: str, digest: str, task_id: int, *_deps: Any) -> dict:
    """One task on a Dask worker, under the worker's memory limit divided by its
    threads (the tasks running beside it each get as much)."""
    plan_text = _plan_text(plan_path, digest)
    flags = ["--threads", "1", "--no-progress"]
    worker = None
    try:
        from distributed import get_worker

        worker = get_worker()
        limit = worker.memory_manager.memory_limit
        threads = max(1, worker.state.nthreads)
        if limit:
            flags += ["--memory-limit", str(max(int(limit) // threads, 64 << 20))]
    except (ImportError, ValueError, AttributeError):
        pass  # not on a worker (a local client): blockwise's defaults apply
    start = time.time()
    report = json.loads(_blockwise.run_task(plan_text, int(task_id), flags))
    # Where and when it ran, for a performance report's task stream.
    report["start_unix_s"], report["end_unix_s"] = start, time.time()
    where = getattr(worker, "address", None) or f"pid {os.getpid()}"
    report["thread"] = f"{where} {threading.current_thread().name}"
    return report


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
        report = _report.active()
        if report is not None:
            report.check(plan=text)
        token = hashlib.sha256(text.encode()).hexdigest()[:16]
        plan_path = _publish_plan(text, plan.workdir, token)
        futures: dict[int, Any] = {}
        for wave in plan.waves():
            for task_id in wave:
                deps = [futures[d] for d in plan.deps(task_id)]
                futures[task_id] = self.client.submit(
                    _run_on_worker,
                    plan_path,
                    token,
                    task_id,
                    *deps,
                    key=f"blockwise-{token}-{task_id}",
                    retries=self.retries,
                    pure=False,
                )
        ordered = [futures[t] for t in sorted(futures)]
        try:
            reports = self.client.gather(ordered)
        except BaseException:
            # The caller may remove the directories the plan writes in as soon as
            # this raises: what has not started never will, and what runs is
            # waited for (a cancelled Dask task runs on to its end).
            self.client.cancel(ordered)
            self._wait_for_running(f"blockwise-{token}-")
            raise
        if report is not None:
            report.add(_blockwise.report_from_tasks(
                text, json.dumps(reports), f"DaskExecutor.run({len(reports)} tasks)"
            ))
        return {
            "tasks": sum(1 for r in reports if not r["skipped"]),
            "skipped_tasks": sum(1 for r in reports if r["skipped"]),
            "reports": reports,
        }


    def _wait_for_running(self, prefix: str, timeout: float = 120.0) -> None:
        """Waits until no worker runs a task whose key starts with ``prefix`` (or
        ``timeout`` seconds); a worker that cannot be asked is not waited for."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                running = self.client.run(_running_here, prefix)
            except Exception:  # noqa: BLE001 - a lost worker runs nothing of ours
                return
            if not any(running.values()):
                return
            time.sleep(0.05)


def _running_here(prefix: str, dask_worker: Any = None) -> list[str]:
    """The keys starting with ``prefix`` this worker is still running (cancelled
    ones too: their thread goes on until the task returns)."""
    if dask_worker is None:
        return []
    busy = {"executing", "long-running", "cancelled", "resumed"}
    return [
        str(key) for key, ts in dask_worker.state.tasks.items()
        if str(key).startswith(prefix) and ts.state in busy
    ]


def _publish_plan(text: str, workdir: str, token: str) -> str:
    """Writes the plan into its working directory (atomically, once) and returns the
    file's path: what the workers read it from."""
    if not workdir:
        raise ValueError("the plan names no working directory (\"workdir\")")
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f"plan-{token}.json")
    if not os.path.exists(path):
        temp = f"{path}.tmp-{os.getpid()}"
        with open(temp, "w") as f:
            f.write(text)
        os.replace(temp, path)
    return path
