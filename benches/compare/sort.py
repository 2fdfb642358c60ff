#!/usr/bin/env python3
"""Out-of-core sort, CSV -> Parquet (zstd), 256 MiB budget, 2 threads:
blockwise vs DuckDB vs Polars (streaming engine) on G1_1e7_1e2 sorted by v3.

    .venv/bin/python benches/compare/sort.py [--extra] [--only blockwise,duckdb] [--by v3]

blockwise: `blockwise convert in.csv out.parquet --sort-by v3 --memory-limit 256MiB
           --no-progress --overwrite --stats` (2 threads = all cores of this machine)
DuckDB:    SET memory_limit='256MB'; SET threads=2; SET temp_directory='<dir>/duck_tmp';
           COPY (SELECT * FROM read_csv('in.csv') ORDER BY v3) TO 'out.parquet'
           (FORMAT parquet, COMPRESSION zstd)
Polars:    POLARS_MAX_THREADS=2; pl.scan_csv('in.csv').sort('v3')
           .sink_parquet('out.parquet', compression='zstd', engine='streaming')
           (polars has no memory limit setting: its peak RSS is whatever it needs)

--extra adds diagnostic blockwise rows: no --memory-limit (default 80 % of RAM, i.e.
an in-memory sort), and --spill-compression none.

Checks, for every output: 1e7 rows, no nulls, the sort column non-decreasing across
the whole file, sums of v1, v2 and v3 equal to the input's (v3 summed exactly, as
integer micro-units and with math.fsum), a row checksum that ties columns of the same
row together (sum of v1*id4 + v2*id6 + v1*v3[micro-units], wrapping uint64), and the
sorted v3 column identical across tools.

Env: BENCH_DATA (CSV, default $BENCH_DIR/G1_1e7_1e2.csv), BENCH_ROWS (expected rows,
default 1e7), plus BLOCKWISE / BENCH_N / BENCH_DIR (see common.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.STATS_KEYS += ["peak_reserved_bytes", "spilled_bytes", "spill_files", "paused_ms", "threads"]
MEMORY_LIMIT_BW = "256MiB"
MEMORY_LIMIT_DUCK = "256MB"
THREADS = 2
SUM_COLS = ["id4", "id6", "v1", "v2", "v3"]


def _summarise_columns(cols: dict, acc: dict) -> None:
    """Accumulate sums and the row checksum of one batch (numpy arrays)."""
    import numpy as np

    id4, id6 = cols["id4"].astype(np.uint64), cols["id6"].astype(np.uint64)
    v1, v2 = cols["v1"].astype(np.int64), cols["v2"].astype(np.int64)
    v3 = cols["v3"].astype(np.float64)
    v3u = np.rint(v3 * 1e6).astype(np.int64)  # v3 has 6 decimals: exact integers
    acc["rows"] += len(v1)
    acc["v1"] += int(v1.sum())
    acc["v2"] += int(v2.sum())
    acc["v3_micro"] += int(v3u.sum())
    acc["v3_parts"].append(math.fsum(v3))
    with np.errstate(over="ignore"):
        h = v1.astype(np.uint64) * id4 + v2.astype(np.uint64) * id6 + v1.astype(np.uint64) * v3u.astype(np.uint64)
        acc["row_hash"] = (acc["row_hash"] + int(h.sum(dtype=np.uint64))) % 2**64


def _new_acc() -> dict:
    return {"rows": 0, "v1": 0, "v2": 0, "v3_micro": 0, "v3_parts": [], "row_hash": 0}


def _finish(acc: dict) -> dict:
    parts = acc.pop("v3_parts")
    acc["v3_fsum"] = math.fsum(parts)  # fsum of per-batch fsums: not exact, close to it
    return acc


def input_summary(data: Path) -> dict:
    """Sums of the input CSV (streamed with pyarrow), cached next to the CSV."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    st = data.stat()
    cache = data.with_name(data.name + ".sums.json")
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if cache.exists():
        c = json.loads(cache.read_text())
        if c.get("key") == key:
            return c["summary"]
    acc = _new_acc()
    types = {"id4": pa.int64(), "id6": pa.int64(), "v1": pa.int64(), "v2": pa.int64(), "v3": pa.float64()}
    conv = pacsv.ConvertOptions(include_columns=SUM_COLS, column_types=types)
    with pacsv.open_csv(data, convert_options=conv) as reader:
        for batch in reader:
            _summarise_columns({c: batch.column(c).to_numpy() for c in SUM_COLS}, acc)
    summary = _finish(acc)
    cache.write_text(json.dumps({"key": key, "summary": summary}))
    return summary


def check(label: str, path: Path, by: str, ref: dict, n: int):
    """Verify one output; returns (ok, sorted column as numpy) or (False, None)."""
    import numpy as np
    import pyarrow.parquet as pq

    if not path.exists():
        print(f"verify {label}: {path} missing", flush=True)
        return False, None
    pf = pq.ParquetFile(path)
    acc = _new_acc()
    nulls, order_ok, last, breaks = 0, True, None, 0
    keys = []
    cols = sorted(set(SUM_COLS) | {by})
    for batch in pf.iter_batches(batch_size=1 << 20, columns=cols):
        nulls += sum(batch.column(c).null_count for c in cols)
        arrs = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in cols}
        _summarise_columns(arrs, acc)
        k = arrs[by]
        if len(k):
            d = np.diff(k)
            bad = int(np.count_nonzero(d < 0)) + (1 if last is not None and k[0] < last else 0)
            if bad:
                order_ok = False
                breaks += bad
            last = k[-1]
            keys.append(k)
    s = _finish(acc)
    sums_ok = (s["rows"] == ref["rows"] == n and s["v1"] == ref["v1"] and s["v2"] == ref["v2"]
               and s["v3_micro"] == ref["v3_micro"] and math.isclose(s["v3_fsum"], ref["v3_fsum"], rel_tol=1e-13))
    hash_ok = s["row_hash"] == ref["row_hash"]
    ok = sums_ok and hash_ok and order_ok and nulls == 0
    meta = pf.metadata
    codecs = {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} if meta.num_row_groups else set()
    print(f"verify {label}: rows={s['rows']} sum(v1)={s['v1']} sum(v2)={s['v2']} sum(v3)={s['v3_fsum']:.6f} "
          f"(micro {s['v3_micro']}) row-hash {'=' if hash_ok else '!='} input, nulls={nulls}, "
          f"{by} non-decreasing: {'yes' if order_ok else f'NO ({breaks} breaks)'}; "
          f"{meta.num_row_groups} row groups, {','.join(sorted(codecs))}, {path.stat().st_size / 1e6:.0f} MB "
          f"-> {'OK' if ok else 'MISMATCH'}", flush=True)
    return ok, (np.concatenate(keys) if keys else np.array([]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extra", action="store_true", help="add diagnostic blockwise rows")
    ap.add_argument("--only", help="comma-separated tool names to run (default: all)")
    ap.add_argument("--by", default="v3", help="sort column (default v3)")
    args = ap.parse_args()

    n = int(float(os.environ.get("BENCH_ROWS", "1e7")))
    data = Path(os.environ.get("BENCH_DATA", str(common.bench_dir() / "G1_1e7_1e2.csv")))
    if not data.exists():
        sys.exit(f"{data} not found: run csv_to_parquet.py once to generate it")
    out = common.bench_dir() / "sort"
    out.mkdir(parents=True, exist_ok=True)
    duck_tmp = common.bench_dir() / "duck_tmp"
    bw = common.blockwise_bin()
    src, by = str(data), args.by

    def bw_case(name, extra):
        dst = out / (name.replace(" ", "_").replace("-", "").replace("=", "") + ".parquet")
        cmd = [bw, "convert", src, str(dst), "--sort-by", by, "--no-progress", "--overwrite", "--stats", *extra]
        return name, cmd, dst, lambda d=dst: common.remove(d)

    cases = [bw_case("blockwise", ["--memory-limit", MEMORY_LIMIT_BW])]
    if args.extra:
        cases += [bw_case("blockwise no --memory-limit", []),
                  bw_case("blockwise --spill-compression none",
                          ["--memory-limit", MEMORY_LIMIT_BW, "--spill-compression", "none"])]
    duck_out = out / "duckdb.parquet"

    def duck_before():
        common.remove(duck_out)
        common.remove(duck_tmp)
        duck_tmp.mkdir(parents=True)

    cases.append(("duckdb", common.python_cmd(f"""
        import duckdb
        con = duckdb.connect()
        con.execute("SET memory_limit='{MEMORY_LIMIT_DUCK}'")
        con.execute("SET threads={THREADS}")
        con.execute("SET temp_directory='{duck_tmp}'")
        con.execute("COPY (SELECT * FROM read_csv({src!r}) ORDER BY {by}) TO {str(duck_out)!r} "
                    "(FORMAT parquet, COMPRESSION zstd)")
        """), duck_out, duck_before))
    polars_out = out / "polars.parquet"
    cases.append(("polars", common.python_cmd(f"""
        import os
        os.environ["POLARS_MAX_THREADS"] = "{THREADS}"  # read when polars is imported
        import polars as pl
        assert pl.thread_pool_size() == {THREADS}, pl.thread_pool_size()
        pl.scan_csv({src!r}).sort({by!r}).sink_parquet({str(polars_out)!r}, compression="zstd",
                                                       engine="streaming")
        """), polars_out, lambda: common.remove(polars_out)))
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]

    ref = input_summary(data)
    print(f"input {data.name}: rows={ref['rows']} sum(v1)={ref['v1']} sum(v2)={ref['v2']} "
          f"sum(v3)={ref['v3_fsum']:.6f} (micro {ref['v3_micro']}) row-hash {ref['row_hash']:#018x}", flush=True)

    results = common.bench([(name, cmd, before) for name, cmd, _, before in cases])

    import numpy as np

    ok = all(r.ok for r in results)
    keys = {}
    for (name, _, dst, _), r in zip(cases, results):
        if r.ok:
            good, k = check(name, dst, by, ref, n)
            ok &= good
            if k is not None:
                keys[name] = k
    names = list(keys)
    for other in names[1:]:
        same = np.array_equal(keys[names[0]], keys[other])
        ok &= same
        print(f"verify sorted {by}: {names[0]} {'==' if same else '!='} {other}", flush=True)

    common.print_table(f"sort by {by}, CSV -> Parquet zstd, {data.name} ({data.stat().st_size / 1e6:.0f} MB), "
                       f"memory limit 256 MiB / 256 MB, {THREADS} threads", results)
    for r in results:
        if r.ok and r.runs and r.runs[0].stats:
            st = [x.stats for x in r.runs if x.stats]
            print(f"{r.name} --stats (median run): " + json.dumps(
                {k: sorted(s.get(k, 0) for s in st)[len(st) // 2] for k in
                 ("wall_s", "peak_rss_bytes", "peak_reserved_bytes", "spilled_bytes", "spill_files", "paused_ms")}),
                flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
