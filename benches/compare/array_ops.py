#!/usr/bin/env python3
"""Array expressions: blockwise vs dask.array (threads scheduler, 2 workers).

    .venv/bin/python benches/compare/array_ops.py [--only NAME] [--scale F]

Cases (issue 10's benchmarks 1-3), each an expression over random arrays that both
tools generate themselves (blockwise's counter-based Philox, Dask's per-chunk
RandomState), reduced to a small result:

  tutorial   (arcsin(x) + arccos(y)).sum(axis=(1, 2)), x and y random
             (10000, 10000, 10) in (1000, 1000, 5) chunks (Dask's tutorial example)
  transpose  (x + x.T)[::2, 5000:].mean(axis=1), x random (10000, 10000) in (1000, 1000)
  mean       x.mean(), x as above
  std0       x.std(axis=0), x as above
  matmul     (x @ x.T).sum(), x random (8000, 8000) in (2000, 2000) chunks, against
             Dask and numpy's BLAS on the whole array (all threads it wants)
  center     x - x.mean(axis=0) written to a new Zarr array (zstd level 3), x a
             (16384, 16384) float64 Zarr array on disk (2 GiB, chunks (1024, 1024),
             zstd level 3) written by zarr-python: Dask reads it with from_zarr and
             stores into an array created the same way

--scale shrinks the first axis of every array (0.1 for a quick look).
Env: BLOCKWISE / BENCH_N / BENCH_DIR (see common.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def cases(scale: float) -> dict[str, tuple[str, str]]:
    """name -> (blockwise expression, dask code computing `r`)."""
    n = int(10000 * scale)
    big = f"({n}, 10000, 10)"
    sq = f"({n}, 10000)" if scale != 1 else "(10000, 10000)"
    half = n // 2
    return {
        "tutorial": (
            f"(arcsin(random.random({big}, chunks=(1000, 1000, 5), seed=1)) + "
            f"arccos(random.random({big}, chunks=(1000, 1000, 5), seed=2))).sum(axis=(1, 2))",
            f"x = da.random.random({big}, chunks=(1000, 1000, 5))\n"
            f"y = da.random.random({big}, chunks=(1000, 1000, 5))\n"
            "r = (da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))",
        ),
        "transpose": (
            # x + x.T needs a square x.
            f"(lambda_x + lambda_x.T)[::2, {half}:].mean(axis=1)",
            f"x = da.random.random(({n}, {n}), chunks=(1000, 1000))\n"
            f"r = (x + x.T)[::2, {half}:].mean(axis=1)",
        ),
        "mean": (
            f"random.random({sq}, chunks=(1000, 1000), seed=1).mean()",
            f"x = da.random.random({sq}, chunks=(1000, 1000))\nr = x.mean()",
        ),
        "std0": (
            f"random.random({sq}, chunks=(1000, 1000), seed=1).std(axis=0)",
            f"x = da.random.random({sq}, chunks=(1000, 1000))\nr = x.std(axis=0)",
        ),
        "matmul": (
            f"(lambda_m @ lambda_m.T).sum()",
            f"x = da.random.random(({int(8000 * scale)}, 8000), chunks=(2000, 2000))\n"
            "r = (x @ x.T).sum()",
        ),
        "center": ("", ""),
    }


def zarr_input(scale: float) -> str:
    """The 2 GiB Zarr array of the `center` case (made once, by zarr-python)."""
    n = int(16384 * scale)
    path = common.bench_dir() / f"center_{n}.zarr"
    if not path.exists():
        import numpy as np
        import zarr
        from zarr.codecs import ZstdCodec

        tmp = path.with_name(path.name + ".tmp")
        common.remove(tmp)
        z = zarr.create_array(store=str(tmp), shape=(n, n), chunks=(1024, 1024), dtype="f8",
                              compressors=ZstdCodec(level=3), zarr_format=3)
        rng = np.random.default_rng(7)
        for r0 in range(0, n, 1024):
            rows = min(1024, n - r0)
            # Rounded to 2^-10 so that zstd finds something to compress, as zarr_rw.py's.
            z[r0:r0 + rows] = np.round(rng.standard_normal((rows, n)) * 1024) / 1024
        tmp.rename(path)
    return str(path)


def blockwise_expr(name: str, expr: str, scale: float) -> str:
    if name == "matmul":
        x = f"random.random(({int(8000 * scale)}, 8000), chunks=(2000, 2000), seed=1)"
        return expr.replace("lambda_m", x)
    if name == "transpose":
        n = int(10000 * scale)
        x = f"random.random(({n}, {n}), chunks=(1000, 1000), seed=1)"
        return expr.replace("lambda_x", x)
    return expr


def center(bw: str, scale: float) -> list:
    src = zarr_input(scale)
    out = str(common.bench_dir() / "center_out.zarr")
    dask = common.python_cmd(f"""
        import dask, dask.array as da, zarr
        from zarr.codecs import ZstdCodec
        dask.config.set(scheduler='threads', num_workers=2)
        x = da.from_zarr({src!r})
        r = x - x.mean(axis=0)
        z = zarr.create_array(store={out!r}, shape=r.shape, chunks=(1024, 1024), dtype=r.dtype,
                              compressors=ZstdCodec(level=3), zarr_format=3, overwrite=True)
        da.store(r, z, lock=False)
        """)
    return common.bench([
        ("blockwise", [bw, "array", "x - x.mean(axis=0)", "-i", f"x={src}", "-o", out,
                       "--overwrite", "--threads", "2", "--no-progress", "--stats"],
         lambda: common.remove(out)),
        ("dask", dask, lambda: common.remove(out)),
    ])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", action="append")
    p.add_argument("--scale", type=float, default=1.0)
    args = p.parse_args()
    bw = common.blockwise_bin()
    tables = []
    for name, (expr, dask_code) in cases(args.scale).items():
        if args.only and name not in args.only:
            continue
        expr = blockwise_expr(name, expr, args.scale)
        if name == "center":
            results = center(bw, args.scale)
            tables.append(common.print_table(f"{name}: x - x.mean(axis=0) to Zarr", results))
            continue
        dask = common.python_cmd(
            "import dask, dask.array as da, numpy as np\n"
            "dask.config.set(scheduler='threads', num_workers=2)\n"
            + dask_code
            + "\nv = r.compute()\nprint(np.asarray(v).ravel()[:3])\n"
        )
        cases_run = [
            ("blockwise", [bw, "array", expr, "--threads", "2", "--no-progress", "--stats"], None),
            ("dask", dask, None),
        ]
        if name == "matmul":
            n = int(8000 * args.scale)
            cases_run.append(("numpy", common.python_cmd(
                "import numpy as np\n"
                f"x = np.random.Generator(np.random.Philox(key=1)).random(({n}, 8000))\n"
                "print((x @ x.T).sum())\n"), None))
        results = common.bench(cases_run)
        tables.append(common.print_table(f"{name}: {expr}", results))
    print("\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
