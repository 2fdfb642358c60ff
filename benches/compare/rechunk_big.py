#!/usr/bin/env python3
"""Issue 10, benchmark 5: rechunk a 2 GiB Zarr array on disk, blockwise vs Dask and rechunker.

    .venv/bin/python benches/compare/rechunk_big.py [--only blockwise,dask-tasks,...] [--timeout 600]

Source: a (16384, 16384) float64 Zarr v3 array (2 GiB raw), chunks (1024, 1024), codecs
bytes + zstd level 3, made once with zarr-python (data as zarr_rw.py's: sums of sines
+ 0.05 noise, quantised to 2**-10, seed 7). Every tool rechunks it in two steps, each a
separate timed process: source -> "tall" (16384, 64) chunks -> "wide" (64, 16384) chunks,
each output written with zstd level 3; the final array is checked against the source.

Tools (each runs both steps):
  blockwise            `blockwise convert SRC DST --chunks C --memory-limit 512MiB --compression zstd:3`
  dask-tasks           `da.from_zarr(SRC).rechunk(C, method="tasks").to_zarr(z)`, threads scheduler, 2 workers
  dask-p2p-cluster     same with method="p2p" on LocalCluster(n_workers=2, threads_per_worker=1,
                       memory_limit="256MiB") (512 MiB in all)
  dask-tasks-cluster   method="tasks" on that same LocalCluster
  (--worker-memory 1GiB etc. gives the cluster runs more memory per worker.)
  rechunker            rechunker 0.5.4 `rechunk(src, C, max_mem="256MB", target_store, temp_store)`
                       executed by dask threads (2 workers). rechunker 0.5.4 requires zarr < 3, so it
                       runs in its own venv (env RECHUNKER_PYTHON, default $BENCH_DIR/venv-rk/bin/python;
                       `python3 -m venv $BENCH_DIR/venv-rk && $BENCH_DIR/venv-rk/bin/pip install
                       rechunker==0.5.4 zarr==2.18.7 numcodecs==0.15.2 dask==2026.8.0`), on a
                       Zarr v2 copy of the same source (same chunks, numcodecs Zstd level 3).

Measurement: wall time around the child; peak RSS = the larger of GNU time's %M (largest
single process) and the sum of RSS over the whole process tree polled with psutil every
50 ms (needed for the LocalCluster runs: scheduler + 2 nanny/worker processes); CPU =
user + sys of the waited-for tree (GNU time). No warm-up run (the source is in the page
cache after generation); tools run round-robin BENCH_N times (default 3). The load
average (1 min) is printed with every run.

Env: BLOCKWISE / BENCH_N / BENCH_DIR (see common.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

N = 16384
CHUNK = 1024
TALL = (N, 64)
WIDE = (64, N)
SEED = 7
WORKER_MEMORY = "256MiB"  # per LocalCluster worker (--worker-memory)
TOOLS = ["blockwise", "dask-tasks", "dask-p2p-cluster", "dask-tasks-cluster", "rechunker"]


def make_data(z) -> None:
    import numpy as np

    rng = np.random.default_rng(SEED)
    x = np.linspace(0, 40 * np.pi, N)
    sx1, sx2 = np.sin(x), np.sin(3.7 * x + 0.5)
    for r0 in range(0, N, CHUNK):
        y = np.linspace(0, 40 * np.pi, N)[r0:r0 + CHUNK, None]
        slab = 10 * np.sin(0.5 * y) * sx1 + 3 * np.cos(y) * sx2 + 0.05 * rng.standard_normal((CHUNK, N))
        for zz in z:
            zz[r0:r0 + CHUNK] = np.round(slab * 1024) / 1024


def generate(d: Path, want_v2: bool) -> tuple[Path, Path]:
    """The v3 source (and its v2 copy for rechunker), made once."""
    import numcodecs
    import zarr
    from zarr.codecs import ZstdCodec

    v3, v2 = d / "src.zarr", d / "src_v2.zarr"
    todo = []
    if not v3.exists():
        todo.append((v3, dict(zarr_format=3, compressors=ZstdCodec(level=3))))
    if want_v2 and not v2.exists():
        todo.append((v2, dict(zarr_format=2, compressors=numcodecs.Zstd(level=3))))
    if todo:
        t0 = time.perf_counter()
        arrs = []
        for path, kw in todo:
            common.remove(path.with_name(path.name + ".tmp"))
            arrs.append(zarr.create_array(store=str(path.with_name(path.name + ".tmp")), shape=(N, N),
                                          chunks=(CHUNK, CHUNK), dtype="<f8", **kw))
        make_data(arrs)
        for path, _ in todo:
            os.replace(path.with_name(path.name + ".tmp"), path)
        print(f"generated {[str(p) for p, _ in todo]} in {time.perf_counter() - t0:.1f} s", flush=True)
    return v3, v2


def du(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in Path(path).rglob("*") if f.is_file())


def sample_hash(a) -> str:
    import numpy as np

    return hashlib.sha1(np.ascontiguousarray(a[::61, ::61]).tobytes()).hexdigest()


def reference(src: Path) -> dict:
    """Samples of the source the outputs are compared with (cached next to it)."""
    import numpy as np
    import zarr

    cache = src.with_name(src.name + ".ref.npz")
    if cache.exists():
        r = np.load(cache)
        return {k: r[k] for k in r.files}
    a = zarr.open_array(str(src), mode="r")
    ref = {"rows": np.stack([a[i, :] for i in (0, 1024, 7777, N - 1)]),
           "cols": np.stack([a[:, j] for j in (0, 63, 64, 9001, N - 1)]),
           "block": a[5000:5300, 12000:12300],
           "sha1": np.array(sample_hash(a))}
    np.savez(cache, **ref)
    return ref


def check(path: Path, chunks: tuple, ref: dict, full: bool) -> str | None:
    """None if the array at `path` has `chunks`, zstd level 3 and equals the source."""
    import numpy as np
    import zarr

    a = zarr.open_array(str(path), mode="r")
    if a.shape != (N, N) or a.chunks != chunks or a.dtype != np.dtype("<f8"):
        return f"{path}: shape {a.shape} chunks {a.chunks} dtype {a.dtype}"
    meta = json.dumps(a.metadata.to_dict())
    if '"zstd"' not in meta or ('"level": 3' not in meta):
        return f"{path}: not zstd level 3: {meta[:400]}"
    if not np.array_equal(np.stack([a[i, :] for i in (0, 1024, 7777, N - 1)]), ref["rows"]):
        return f"{path}: sample rows differ"
    if not np.array_equal(np.stack([a[:, j] for j in (0, 63, 64, 9001, N - 1)]), ref["cols"]):
        return f"{path}: sample columns differ"
    if not np.array_equal(a[5000:5300, 12000:12300], ref["block"]):
        return f"{path}: sample block differs"
    if full and sample_hash(a) != str(ref["sha1"]):
        return f"{path}: SHA-1 of [::61, ::61] differs"
    return None


# --- the commands --------------------------------------------------------------------

def blockwise_cmd(bw: str, src: Path, dst: Path, chunks: tuple, spill: Path) -> list[str]:
    return [bw, "convert", str(src), str(dst), "--chunks", ",".join(map(str, chunks)),
            "--memory-limit", "512MiB", "--compression", "zstd:3", "--spill-dir", str(spill),
            "--no-progress", "--stats"]


DASK_HEAD = """
    import dask, dask.array as da, zarr
    from zarr.codecs import ZstdCodec
    """


def dask_cmd(src: Path, dst: Path, chunks: tuple, method: str, cluster: bool) -> list[str]:
    if cluster:
        # Workers' scratch (p2p shards, spilled data) next to the data, as blockwise's --spill-dir.
        setup = f"""
        from distributed import LocalCluster, Client
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit={WORKER_MEMORY!r},
                               processes=True, dashboard_address=None,
                               local_directory={str(src.parent / "dask-scratch")!r})
        client = Client(cluster)
        """
    else:
        setup = """
        dask.config.set(scheduler="threads", num_workers=2)
        """
    body = f"""
        x = da.from_zarr({str(src)!r})
        y = x.rechunk({chunks!r}, method={method!r})
        z = zarr.create_array(store={str(dst)!r}, shape=y.shape, chunks={chunks!r}, dtype=y.dtype,
                              compressors=ZstdCodec(level=3), zarr_format=3)
        y.to_zarr(z)
        """
    tail = """
        client.close(); cluster.close()
        """ if cluster else ""
    return [common.PYTHON, "-c", textwrap.dedent(DASK_HEAD) + textwrap.dedent(setup)
            + textwrap.dedent(body) + textwrap.dedent(tail)]


def rechunker_cmd(py: str, src: Path, dst: Path, chunks: tuple, tmp: Path) -> list[str]:
    code = f"""
        import dask, numcodecs, zarr
        from rechunker import rechunk
        dask.config.set(scheduler="threads", num_workers=2)
        src = zarr.open_array({str(src)!r}, mode="r")
        plan = rechunk(src, target_chunks={chunks!r}, max_mem="256MB",
                       target_store={str(dst)!r}, temp_store={str(tmp)!r},
                       target_options={{"compressor": numcodecs.Zstd(level=3)}},
                       temp_options={{"compressor": numcodecs.Zstd(level=3)}})
        plan.execute()
        """
    return [py, "-c", textwrap.dedent(code)]


# --- running ---------------------------------------------------------------------------

def run_tree(cmd: list[str], timeout: float) -> dict:
    """Run `cmd` under GNU time, polling the RSS sum of its process tree with psutil."""
    import psutil

    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf, \
            tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        p = subprocess.Popen([common.TIME_BIN, "-f", "%e %M %U %S", "-o", tf.name, *cmd],
                             stdout=out, stderr=err, text=True, start_new_session=True)
        root = psutil.Process(p.pid)
        peak_sum, nprocs, timed_out = 0, 0, False
        while p.poll() is None:
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                os.killpg(p.pid, 9)
                p.wait()
                break
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for pr in procs:
                    try:
                        total += pr.memory_info().rss
                    except psutil.Error:
                        pass
                if total > peak_sum:
                    peak_sum, nprocs = total, len(procs)
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        tf.seek(0)
        lines = [ln for ln in tf.read().splitlines() if ln.strip()]
        out.seek(0)
        err.seek(0)
        so, se = out.read(), err.read()
    fields = lines[-1].split() if lines and not timed_out else ["0", "0", "0", "0"]
    try:
        max1, cpu = int(fields[1]) * 1024, float(fields[2]) + float(fields[3])
    except (ValueError, IndexError):
        max1, cpu = 0, 0.0
    return {"wall_s": wall, "rss_sum": peak_sum, "rss_max1": max1, "rss": max(peak_sum, max1),
            "nprocs": nprocs, "cpu_s": cpu, "rc": "timeout" if timed_out else p.returncode,
            "load0": load0, "load1": os.getloadavg()[0], "stdout": so, "stderr": se,
            "stats": common._parse_stats(se)}


def warnings_of(stderr: str) -> str:
    """Notable lines of a Dask run's stderr (worker restarts, memory warnings)."""
    keys = ("killed", "Worker process", "exceeded", "Restarting", "memory", "Unmanaged", "Error",
            "paused", "KilledWorker", "P2PConsistency", "Traceback")
    hits = [ln.strip() for ln in stderr.splitlines() if any(k in ln for k in keys)]
    if not hits:
        return ""
    uniq = []
    for h in hits:
        short = h[:220]
        if short not in uniq:
            uniq.append(short)
    return f"{len(hits)} notable stderr lines, e.g.: " + " | ".join(uniq[:4])


def table(tools, results, failures) -> None:
    def med(tool, f):
        return statistics.median(f(r) for r in results[tool])

    base = "blockwise" if results.get("blockwise") else None
    rows = ["| tool | runs ok | tall s | wide s | total s (median) | total s (min) | peak RSS MB (max) "
            "| CPU s | load | blockwise time / tool time | blockwise RSS / tool RSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for tool in tools:
        runs = results[tool]
        n_all = len(runs) + len(failures[tool])
        if not runs:
            rows.append(f"| {tool} | 0/{n_all} | FAILED | | | | | | | | |")
            continue
        tot = med(tool, lambda r: sum(s["wall_s"] for s in r["steps"]))
        rss = max(s["rss"] for r in runs for s in r["steps"]) / 1e6
        if base:
            bt = med(base, lambda r: sum(s["wall_s"] for s in r["steps"]))
            brss = max(s["rss"] for r in results[base] for s in r["steps"]) / 1e6
            ratios = f"{bt / tot:.2f} | {brss / rss:.2f}"
        else:
            ratios = "n/a | n/a"
        loads = [s["load0"] for r in runs for s in r["steps"]]
        rows.append(
            f"| {tool} | {len(runs)}/{n_all} | {med(tool, lambda r: r['steps'][0]['wall_s']):.1f} "
            f"| {med(tool, lambda r: r['steps'][1]['wall_s']):.1f} | {tot:.1f} "
            f"| {min(sum(s['wall_s'] for s in r['steps']) for r in runs):.1f} | {rss:.0f} "
            f"| {med(tool, lambda r: sum(s['cpu_s'] for s in r['steps'])):.1f} "
            f"| {min(loads):.1f}–{max(loads):.1f} | {ratios} |")
    print("\n" + "\n".join(rows) + "\n", flush=True)
    for tool in tools:
        for f in failures[tool]:
            print(f"{tool} FAILED {f[:600]}\n", flush=True)


def main() -> int:
    global WORKER_MEMORY
    p = argparse.ArgumentParser()
    p.add_argument("--only", default=",".join(TOOLS))
    p.add_argument("--timeout", type=float, default=600, help="seconds per step before a run is killed")
    p.add_argument("--worker-memory", default=WORKER_MEMORY,
                   help="memory_limit of each of the 2 LocalCluster workers (default 256MiB)")
    p.add_argument("--no-full-check", action="store_true", help="skip the SHA-1 over [::61, ::61]")
    args = p.parse_args()
    WORKER_MEMORY = args.worker_memory
    tools = [t for t in args.only.split(",") if t]
    d = common.bench_dir()
    bw = common.blockwise_bin() if "blockwise" in tools else ""
    rk_py = os.environ.get("RECHUNKER_PYTHON", str(d / "venv-rk" / "bin" / "python"))
    if "rechunker" in tools and not Path(rk_py).exists():
        sys.exit(f"rechunker's python not found at {rk_py} (see the docstring)")
    src, src_v2 = generate(d, "rechunker" in tools)
    ref = reference(src)
    print(f"source {src}: {du(src) / 2**20:.0f} MiB on disk; sha1[::61,::61] {ref['sha1']}", flush=True)

    tall, wide, tmp, spill = d / "tall.zarr", d / "wide.zarr", d / "rk_tmp.zarr", d / "spill"

    def clean():
        for q in (tall, wide, tmp, spill, d / "dask-scratch"):
            common.remove(q)
        spill.mkdir()

    def cmds(tool: str) -> list[list[str]]:
        steps = [(tall, TALL), (wide, WIDE)]
        out, prev = [], (src_v2 if tool == "rechunker" else src)
        for dst, ch in steps:
            if tool == "blockwise":
                out.append(blockwise_cmd(bw, prev, dst, ch, spill))
            elif tool == "rechunker":
                out.append(rechunker_cmd(rk_py, prev, dst, ch, tmp))
            else:
                method = "p2p" if "p2p" in tool else "tasks"
                out.append(dask_cmd(prev, dst, ch, method, tool.endswith("cluster")))
            prev = dst
        return out

    results: dict[str, list[dict]] = {t: [] for t in tools}
    failures: dict[str, list[str]] = {t: [] for t in tools}
    for i in range(common.repeats()):
        for tool in tools:
            clean()
            run = {"steps": []}
            for k, (cmd, (dst, ch)) in enumerate(zip(cmds(tool), [(tall, TALL), (wide, WIDE)])):
                step = "tall" if k == 0 else "wide"
                if k == 1 and tool == "rechunker":
                    common.remove(tmp)
                r = run_tree(cmd, args.timeout)
                line = (f"   {tool} run {i + 1} {step}: {r['wall_s']:7.2f} s  rss {r['rss'] / 1e6:7.0f} MB"
                        f" (tree sum {r['rss_sum'] / 1e6:.0f} MB over {r['nprocs']} procs, max1 {r['rss_max1'] / 1e6:.0f} MB)"
                        f"  cpu {r['cpu_s']:6.1f} s  load {r['load0']:.1f}->{r['load1']:.1f}  rc {r['rc']}")
                if r["stats"]:
                    keys = ["wall_s", "peak_rss_bytes", "tasks", "spilled_bytes", "peak_reserved_bytes"]
                    line += "  stats=" + json.dumps({x: r["stats"][x] for x in keys if x in r["stats"]})
                print(line, flush=True)
                w = warnings_of(r["stderr"]) if tool != "blockwise" else ""
                if w:
                    print(f"      {w}", flush=True)
                if r["rc"] != 0:
                    msg = f"run {i + 1} {step}: rc {r['rc']} after {r['wall_s']:.0f} s: {r['stderr'].strip()[-1500:]}"
                    print(f"   FAILED {tool} {msg}", flush=True)
                    failures[tool].append(msg)
                    break
                err = check(dst, ch, ref, full=(k == 1 and not args.no_full_check))
                if err:
                    print(f"   CHECK FAILED {tool}: {err}", flush=True)
                    failures[tool].append(f"run {i + 1} {step}: {err}")
                    break
                r["disk_mib"] = du(dst) / 2**20
                run["steps"].append(r)
            else:
                print(f"   {tool} run {i + 1}: total {sum(s['wall_s'] for s in run['steps']):.2f} s, "
                      f"outputs {run['steps'][0]['disk_mib']:.0f} / {run['steps'][1]['disk_mib']:.0f} MiB, equal to source",
                      flush=True)
                results[tool].append(run)
        print(f"after round {i + 1}:", flush=True)
        table(tools, results, failures)
    clean()

    return 0 if all(results[t] for t in tools) else 1


if __name__ == "__main__":
    sys.exit(main())
