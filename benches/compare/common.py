"""Shared helpers for the comparison benchmarks in benches/compare/.

Every tool runs in its own process (the blockwise binary, or a fresh
``python -c`` for a Python peer), so wall time and peak RSS are measured the
same way for all of them:

* wall time: ``time.perf_counter`` around the child process;
* CPU time (user + system) and peak RSS: GNU ``/usr/bin/time -f "%e %M %U %S"`` (max resident set size in KiB, from
  ``wait4``'s rusage, i.e. the largest RSS of the process and any descendant it
  waited for).  When ``/usr/bin/time`` is missing (``apt-get install -y time``),
  we fall back to polling the process tree with psutil every 20 ms, summing the
  RSS of all live processes in the tree.

Each tool runs once as a warm-up (page cache warm, binaries and Python modules
loaded), then all tools run round-robin ``N`` times (env ``BENCH_N``, default 3),
so background load on a shared machine spreads over all of them; the table shows
the median and minimum wall time, the largest peak RSS of the measured runs and
the median CPU time (user + system).  The page cache
is never dropped (it can't be, without root on a shared machine), so all
figures are warm-cache figures.

Environment:
  BLOCKWISE   path of the blockwise binary (default: <repo>/target/release/blockwise)
  BENCH_N     measured runs per tool (default 3)
  BENCH_DIR   scratch directory for data and outputs (default /tmp/blockwise-bench)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TIME_BIN = "/usr/bin/time"
# Keys of blockwise's --stats JSON echoed in the run log (a script may extend the list).
STATS_KEYS = ["wall_s", "peak_rss_bytes", "read_bytes", "written_bytes"]


def blockwise_bin() -> str:
    path = os.environ.get("BLOCKWISE", str(REPO / "target" / "release" / "blockwise"))
    if not Path(path).exists():
        sys.exit(f"blockwise binary not found at {path}: run `cargo build --release` "
                 "or set BLOCKWISE=/path/to/blockwise")
    return path


def bench_dir() -> Path:
    d = Path(os.environ.get("BENCH_DIR", "/tmp/blockwise-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def repeats() -> int:
    return int(os.environ.get("BENCH_N", "3"))


def remove(path: str | Path) -> None:
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


@dataclass
class Run:
    wall_s: float
    peak_rss_bytes: int
    returncode: int
    cpu_s: float  # user + system CPU seconds (0 if unknown)
    stdout: str
    stderr: str
    stats: dict | None = None  # blockwise --stats JSON line, if any


def _parse_stats(stderr: str) -> dict | None:
    """Last stderr line that parses as a JSON object (blockwise --stats)."""
    for line in reversed(stderr.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line[: line.rfind("}") + 1])
            except ValueError:
                continue
    return None


def _run_with_time(cmd: list[str], env: dict | None) -> Run:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [TIME_BIN, "-f", "%e %M %U %S", "-o", tf.name, *cmd]
        t0 = time.perf_counter()
        p = subprocess.run(full, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        tf.seek(0)
        lines = [ln for ln in tf.read().splitlines() if ln.strip()]
    # With a non-zero exit GNU time writes "Command exited with non-zero status N" first.
    fields = lines[-1].split() if lines else ["0", "0", "0", "0"]
    rss_kib, cpu = int(fields[1]), float(fields[2]) + float(fields[3])
    return Run(wall, rss_kib * 1024, p.returncode, cpu, p.stdout, p.stderr, _parse_stats(p.stderr))


def _run_with_psutil(cmd: list[str], env: dict | None) -> Run:
    import psutil  # only needed when /usr/bin/time is absent

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        root = psutil.Process(p.pid)
        peak = 0
        cpu = 0.0
        while p.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                cpu_now = 0.0
                for pr in procs:
                    try:
                        total += pr.memory_info().rss
                        t = pr.cpu_times()
                        cpu_now += t.user + t.system
                    except psutil.Error:
                        pass
                peak = max(peak, total)
                cpu = max(cpu, cpu_now)
            except psutil.Error:
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        so, se = out.read(), err.read()
    return Run(wall, peak, p.returncode, cpu, so, se, _parse_stats(se))


def run_once(cmd: list[str], env: dict | None = None) -> Run:
    if os.path.exists(TIME_BIN):
        return _run_with_time(cmd, env)
    return _run_with_psutil(cmd, env)


def duckdb_copy_cmd(query: str, dst: str | Path, copy_options: str, threads: int = 2) -> list[str]:
    """A command running DuckDB's ``COPY (query) TO dst (copy_options)`` on ``threads``
    threads in a fresh interpreter."""
    return python_cmd(f"""
        import duckdb
        con = duckdb.connect()
        con.execute("SET threads={threads}")
        con.execute({f"COPY ({query}) TO '{dst}' ({copy_options})"!r})
        """)


def python_cmd(code: str) -> list[str]:
    """A command running ``code`` (dedented) in a fresh interpreter."""
    return [PYTHON, "-c", textwrap.dedent(code)]


@dataclass
class Result:
    name: str
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def min_wall_s(self) -> float:
        return min(r.wall_s for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_bytes for r in self.runs) / 1e6

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)


def _run_and_log(res: Result, cmd: list[str], tag: str, before, env) -> bool:
    if before is not None:
        before()
    r = run_once(cmd, env)
    line = (f"   {res.name} {tag}: {r.wall_s:7.2f} s  {r.peak_rss_bytes / 1e6:8.1f} MB"
            f"  cpu {r.cpu_s:6.2f} s ({r.cpu_s / max(r.wall_s, 1e-9):.0%})  load {os.getloadavg()[0]:.1f}")
    if r.stats:
        line += "  stats=" + json.dumps({k: r.stats[k] for k in STATS_KEYS if k in r.stats})
    print(line, flush=True)
    if r.returncode != 0:
        res.error = f"exit {r.returncode}: {r.stderr.strip()[-2000:]}"
        print(f"   FAILED {res.error}", flush=True)
        return False
    if tag != "warm-up":
        res.runs.append(r)
    return True


def bench(cases: list[tuple], n: int | None = None, env: dict | None = None) -> list[Result]:
    """Benchmark ``cases`` = [(name, cmd, before), ...] (``before()`` runs before
    each run, e.g. to delete the previous output; may be None).

    Each tool runs once as a warm-up, then the tools run round-robin ``n`` times
    (round 1: every tool, round 2: every tool, ...), so that load from other
    processes on a shared machine spreads over all tools rather than hitting one.
    A tool that fails is dropped from later rounds."""
    n = repeats() if n is None else n
    results = []
    for name, cmd, before in cases:
        res = Result(name)
        shown = " ".join(cmd) if cmd[0] != PYTHON else "python -c ..."
        print(f"-- {name}: {shown}", flush=True)
        _run_and_log(res, cmd, "warm-up", before, env)
        results.append(res)
    for i in range(n):
        for (name, cmd, before), res in zip(cases, results):
            if res.error is None:
                _run_and_log(res, cmd, f"run {i + 1}/{n}", before, env)
    return results


def print_table(title: str, results: list[Result], baseline: str = "blockwise") -> str:
    """Print (and return, as Markdown) a table of median wall time, peak RSS and
    the ratio blockwise time / tool time (< 1 means blockwise is faster)."""
    base = next((r for r in results if r.name == baseline and r.ok), None)
    rows = ["| tool | median wall s | min wall s | peak RSS MB | CPU s (util) | blockwise time / tool time | blockwise RSS / tool RSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        if not r.ok:
            rows.append(f"| {r.name} | FAILED | | | | | |")
            continue
        t_ratio = f"{base.wall_s / r.wall_s:.2f}" if base else "n/a"
        m_ratio = f"{base.peak_rss_mb / r.peak_rss_mb:.2f}" if base else "n/a"
        util = f"{r.cpu_s:.1f} ({r.cpu_s / r.wall_s:.0%})"
        rows.append(f"| {r.name} | {r.wall_s:.2f} | {r.min_wall_s:.2f} | {r.peak_rss_mb:.0f} | {util} "
                    f"| {t_ratio} | {m_ratio} |")
    text = (f"\n### {title}\n\n{repeats()} interleaved runs after 1 warm-up; ratios use medians; "
            f"peak RSS = largest of the runs; CPU = median user+sys (util = CPU / wall).\n\n") + "\n".join(rows) + "\n"
    print(text, flush=True)
    for r in results:
        if r.error:
            print(f"{r.name} FAILED: {r.error}\n", flush=True)
    return text
