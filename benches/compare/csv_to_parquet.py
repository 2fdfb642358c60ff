#!/usr/bin/env python3
"""CSV -> Parquet (zstd): blockwise vs DuckDB vs Polars on the db-benchmark
'groupby' table G1_1e7_1e2 (1e7 rows, K=100, ~510 MB).

    .venv/bin/python benches/compare/csv_to_parquet.py [--extra] [--regenerate]

--extra adds diagnostic blockwise rows (--threads 1, --compression none,
--threads 1 --compression none) to see whether parsing or encoding dominates.
Env: BENCH_DATA (CSV path, default /tmp/blockwise-bench/G1_1e7_1e2.csv),
BENCH_ROWS (default 1e7), plus BLOCKWISE / BENCH_N / BENCH_DIR (see common.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

K = 100
SEED = 108


def generate(path: Path, n: int) -> None:
    """db-benchmark groupby data (same column recipe as groupby-datagen.R), seeded."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    nk = max(n // K, 1)
    small = pa.array([f"id{i:03d}" for i in range(1, K + 1)])
    large = pa.array([f"id{i:010d}" for i in range(1, nk + 1)])
    schema = pa.schema([("id1", pa.string()), ("id2", pa.string()), ("id3", pa.string()),
                        ("id4", pa.int64()), ("id5", pa.int64()), ("id6", pa.int64()),
                        ("v1", pa.int64()), ("v2", pa.int64()), ("v3", pa.float64())])
    tmp = path.with_suffix(".csv.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    # pyarrow quotes header names even with quoting_style="none": write it by hand.
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    step = 1_000_000
    with open(tmp, "wb") as f, pacsv.CSVWriter(f, schema, write_options=opts) as w:
        f.write((",".join(schema.names) + "\n").encode())
        f.flush()
        for start in range(0, n, step):
            m = min(step, n - start)
            cols = [
                pc.take(small, pa.array(rng.integers(0, K, m))),
                pc.take(small, pa.array(rng.integers(0, K, m))),
                pc.take(large, pa.array(rng.integers(0, nk, m))),
                pa.array(rng.integers(1, K + 1, m)),
                pa.array(rng.integers(1, K + 1, m)),
                pa.array(rng.integers(1, nk + 1, m)),
                pa.array(rng.integers(1, 6, m)),
                pa.array(rng.integers(1, 16, m)),
                pa.array(np.round(rng.uniform(0, 100, m), 6)),
            ]
            w.write_table(pa.Table.from_arrays(cols, schema=schema))
    os.replace(tmp, path)
    print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB, {n} rows) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


def check(bw_out: Path, ref_out: Path, n: int, label: str) -> bool:
    """Row count and sums of v1, v2, v3 of blockwise's Parquet vs the reference."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def summary(p):
        t = pq.read_table(p, columns=["v1", "v2", "v3"])
        return (t.num_rows, pc.sum(t["v1"]).as_py(), pc.sum(t["v2"]).as_py(),
                pc.sum(t["v3"]).as_py(), {f.name: str(f.type) for f in t.schema})

    b, r = summary(bw_out), summary(ref_out)
    ok = (b[0] == r[0] == n and b[1] == r[1] and b[2] == r[2]
          and math.isclose(b[3], r[3], rel_tol=1e-12))
    meta = pq.ParquetFile(bw_out).metadata
    print(f"verify {label}: blockwise rows={b[0]} sum(v1)={b[1]} sum(v2)={b[2]} sum(v3)={b[3]:.6f} "
          f"types={b[4]}; row groups={meta.num_row_groups}, size={bw_out.stat().st_size / 1e6:.0f} MB", flush=True)
    print(f"       reference rows={r[0]} sum(v1)={r[1]} sum(v2)={r[2]} sum(v3)={r[3]:.6f} "
          f"types={r[4]} -> {'OK' if ok else 'MISMATCH'}", flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extra", action="store_true", help="add diagnostic blockwise rows")
    ap.add_argument("--regenerate", action="store_true", help="rewrite the CSV even if present")
    ap.add_argument("--only", help="comma-separated tool names to run (default: all)")
    args = ap.parse_args()

    n = int(float(os.environ.get("BENCH_ROWS", "1e7")))
    data = Path(os.environ.get("BENCH_DATA", str(common.bench_dir() / "G1_1e7_1e2.csv")))
    if args.regenerate or not data.exists():
        generate(data, n)
    out = common.bench_dir() / "csv2pq"
    out.mkdir(parents=True, exist_ok=True)
    bw = common.blockwise_bin()
    src = str(data)

    def bw_case(name, extra):
        dst = out / (name.replace(" ", "_").replace("-", "").replace("=", "") + ".parquet")
        cmd = [bw, "convert", src, str(dst), "--no-progress", "--overwrite", "--stats", *extra]
        return name, cmd, dst

    cases = [bw_case("blockwise", []),
             bw_case("blockwise --memory-limit 256MiB", ["--memory-limit", "256MiB"])]
    if args.extra:
        cases += [bw_case("blockwise --threads 1", ["--threads", "1"]),
                  bw_case("blockwise --compression none", ["--compression", "none"]),
                  bw_case("blockwise --threads 1 --compression none",
                          ["--threads", "1", "--compression", "none"])]
    duck_out = out / "duckdb.parquet"
    cases.append(("duckdb", common.duckdb_copy_cmd(f"SELECT * FROM read_csv('{src}')", duck_out,
                                                  "FORMAT parquet, COMPRESSION zstd"), duck_out))
    polars_out = out / "polars.parquet"
    cases.append(("polars", common.python_cmd(f"""
        import polars as pl
        pl.scan_csv({src!r}).sink_parquet({str(polars_out)!r}, compression='zstd')
        """), polars_out))
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]

    results = common.bench([(name, cmd, lambda d=dst: common.remove(d)) for name, cmd, dst in cases])

    ok = True
    names = {name: dst for name, _, dst in cases}
    res_by = {r.name: r for r in results}
    ref = next((names[x] for x in ("duckdb", "polars") if x in names and res_by[x].ok), None)
    if ref is not None:
        for r in results:
            if r.name.startswith("blockwise") and r.ok:
                ok &= check(names[r.name], ref, n, r.name)
    else:
        print("verify: no reference output (duckdb/polars did not run)")

    common.print_table(f"CSV -> Parquet zstd, {data.name} ({data.stat().st_size / 1e6:.0f} MB)", results)
    if any(not r.ok for r in results):
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
