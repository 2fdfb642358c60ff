#!/usr/bin/env python3
"""Parquet -> CSV: blockwise vs DuckDB vs Polars on G1_1e7_1e2 (the Parquet file
DuckDB writes from the CSV of csv_to_parquet.py, made once), 2 threads.

    .venv/bin/python benches/compare/parquet_to_csv.py [--only blockwise,polars]

blockwise: `blockwise convert in.parquet out.csv --no-progress --overwrite --stats`
           (and the same with `--memory-limit 256MiB`)
DuckDB:    SET threads=2; COPY (SELECT * FROM read_parquet('in.parquet')) TO 'out.csv'
           (HEADER, DELIMITER ',')
Polars:    pl.scan_parquet('in.parquet').sink_csv('out.csv')

Check: every output has the input's rows, and the same sums of v1, v2 and v3 (read
back with pyarrow's CSV reader).

Env: BENCH_PARQUET (default $BENCH_DIR/G1_1e7_1e2.parquet), BENCH_DATA (the CSV it
is made from), plus BLOCKWISE / BENCH_N / BENCH_DIR (see common.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def make_parquet(csv: Path, parquet: Path) -> None:
    """The input, written by DuckDB (a third party's file, zstd, its row groups)."""
    import duckdb

    print(f"writing {parquet} from {csv} with DuckDB", flush=True)
    tmp = parquet.with_name(parquet.name + ".tmp")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
    tmp.rename(parquet)


def sums(path: Path, csv: bool) -> tuple[int, int, int, float]:
    """Rows and the sums of v1, v2, v3 of a CSV or Parquet file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows, v1, v2, v3 = 0, 0, 0, []
    if csv:
        types = {"v1": pa.int64(), "v2": pa.int64(), "v3": pa.float64()}
        conv = pacsv.ConvertOptions(include_columns=["v1", "v2", "v3"], column_types=types)
        batches = pacsv.open_csv(path, convert_options=conv)
    else:
        batches = pq.ParquetFile(path).iter_batches(columns=["v1", "v2", "v3"])
    for b in batches:
        rows += b.num_rows
        v1 += int(b.column("v1").to_numpy().sum())
        v2 += int(b.column("v2").to_numpy().sum())
        v3.append(math.fsum(b.column("v3").to_numpy()))
    return rows, v1, v2, math.fsum(v3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated tool names to run (default: all)")
    args = ap.parse_args()

    csv = Path(os.environ.get("BENCH_DATA", str(common.bench_dir() / "G1_1e7_1e2.csv")))
    src = Path(os.environ.get("BENCH_PARQUET", str(common.bench_dir() / "G1_1e7_1e2.parquet")))
    if not src.exists():
        if not csv.exists():
            sys.exit(f"{csv} not found: run csv_to_parquet.py once to generate it")
        make_parquet(csv, src)
    out = common.bench_dir() / "pq2csv"
    out.mkdir(parents=True, exist_ok=True)
    bw = common.blockwise_bin()

    def bw_case(name, extra):
        dst = out / (name.replace(" ", "_").replace("-", "") + ".csv")
        return name, [bw, "convert", str(src), str(dst), "--no-progress", "--overwrite", "--stats", *extra], dst

    cases = [bw_case("blockwise", []), bw_case("blockwise --memory-limit 256MiB", ["--memory-limit", "256MiB"])]
    duck_out = out / "duckdb.csv"
    cases.append(("duckdb", common.duckdb_copy_cmd(f"SELECT * FROM read_parquet('{src}')", duck_out,
                                                  "HEADER, DELIMITER ','"), duck_out))
    polars_out = out / "polars.csv"
    cases.append(("polars", common.python_cmd(f"""
        import polars as pl
        pl.scan_parquet({str(src)!r}).sink_csv({str(polars_out)!r})
        """), polars_out))
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]

    results = common.bench([(name, cmd, lambda d=dst: common.remove(d)) for name, cmd, dst in cases])

    ok = all(r.ok for r in results)
    want = sums(src, csv=False)
    for (name, _, dst), r in zip(cases, results):
        if not r.ok:
            continue
        got = sums(dst, csv=True)
        same = got[:3] == want[:3] and math.isclose(got[3], want[3], rel_tol=1e-12)
        print(f"verify {name}: rows={got[0]} sum(v1)={got[1]} sum(v2)={got[2]} sum(v3)={got[3]:.6f} "
              f"-> {'OK' if same else f'MISMATCH (want {want})'}", flush=True)
        ok &= same

    common.print_table(f"Parquet -> CSV, {src.name} ({src.stat().st_size / 1e6:.0f} MB)", results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
