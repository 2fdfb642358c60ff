#!/usr/bin/env python3
"""Compare data written/read by blockwise against the reference libraries.

Usage (from the repo root, with the venv from fixtures/requirements.txt):

    .venv/bin/python tests/py/compare.py frame A B [--ignore-types] [--columns a,b]
                                                   [--delimiter ';'] [--rtol R] [--atol T]
    .venv/bin/python tests/py/compare.py array A B [--ignore-dtype] [--strict-dtype]
                                                   [--rtol R] [--atol T]
    .venv/bin/python tests/py/compare.py frame-array A B [--columns a,b] [--rtol R] [--atol T]
    .venv/bin/python tests/py/compare.py zarr-meta PATH [--no-read]

Exit status: 0 = equal (zarr-meta: metadata printed and data readable),
1 = different or unreadable (short diff on stderr), 2 = usage error
(bad arguments, missing path, unknown layout).

Frames are read by format: .csv/.tsv with pyarrow.csv (empty field = null,
quoted newlines allowed), .parquet or a directory of *.parquet parts (natural
sort order, concatenated) with pyarrow.parquet, .arrow/.feather/.ipc with
pyarrow.feather (IPC file) or pyarrow.ipc (IPC stream).

Before comparing, columns are normalized: dictionary -> value type,
large_string/string_view -> string, large_binary/binary_view -> binary,
large_list -> list (recursively); timestamps are cast to the finer of the two
units.  Nulls compare equal to nulls and NaN to NaN.  --ignore-types also lets
types differ: numbers compare as float64, otherwise one side is cast to the
other's type, or both to string.

Arrays are read with numpy.load (.npy), dask.array.from_npy_stack (directory
with an `info` file) or zarr.open_array (directory with zarr.json or .zarray).
Dtypes must match (byte order ignored unless --strict-dtype); --ignore-dtype
compares values as float64 (numeric) or cast to B's dtype.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

MAX_SHOWN = 8


class UsageError(Exception):
    pass


class ReadError(Exception):
    pass


def die(code: int, msg: str) -> "NoReturn":  # type: ignore[name-defined]
    print(msg, file=sys.stderr)
    sys.exit(code)


# --------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------

def natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def read_frame(path_s: str, delimiter: str | None):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    path = Path(path_s)
    if not path.exists():
        raise UsageError(f"no such file or directory: {path}")
    try:
        if path.is_dir():
            parts = sorted(path.glob("*.parquet"), key=natural_key)
            if parts:
                tables = [pq.read_table(p) for p in parts]
                return pa.concat_tables(tables, promote_options="permissive")
            parts = sorted([*path.glob("*.arrow"), *path.glob("*.feather"), *path.glob("*.ipc")],
                           key=natural_key)
            if parts:
                return pa.concat_tables([read_ipc(p) for p in parts], promote_options="permissive")
            parts = sorted(path.glob("*.csv"), key=natural_key)
            if parts:
                return pa.concat_tables([read_frame(str(p), delimiter) for p in parts],
                                        promote_options="permissive")
            raise UsageError(f"directory has no .parquet/.arrow/.csv parts: {path}")
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            delim = delimiter or ("\t" if suffix == ".tsv" else ",")
            return pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            )
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix in (".arrow", ".feather", ".ipc", ".arrows"):
            return read_ipc(path)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ReadError(f"cannot read {path}: {type(e).__name__}: {e}") from e
    raise UsageError(f"unknown frame format (by extension): {path}")


def read_ipc(path: Path):
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    try:
        return feather.read_table(path)
    except Exception:  # noqa: BLE001  - maybe the IPC *stream* format
        with pa.OSFile(str(path), "rb") as f:
            return ipc.open_stream(f).read_all()


def normalize_type(t):
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_dictionary(t):
        return normalize_type(t.value_type)
    if pt.is_large_string(t) or pt.is_string_view(t):
        return pa.string()
    if pt.is_large_binary(t) or pt.is_binary_view(t):
        return pa.binary()
    if pt.is_large_list(t) or pt.is_list_view(t) or pt.is_large_list_view(t) or pt.is_list(t):
        return pa.list_(normalize_type(t.value_type))
    if pt.is_fixed_size_list(t):
        return pa.list_(normalize_type(t.value_type))
    if pt.is_struct(t):
        return pa.struct([pa.field(f.name, normalize_type(f.type), f.nullable) for f in t])
    if pt.is_decimal(t) and t.precision <= 38:
        return pa.decimal128(t.precision, t.scale)
    return t


TS_ORDER = {"s": 0, "ms": 1, "us": 2, "ns": 3}


def unify(a, b, ignore_types: bool):
    """Return (a, b, error) with both arrays of one type, or an error text."""
    import pyarrow as pa
    import pyarrow.compute as pc  # noqa: F401
    import pyarrow.types as pt

    a = a.cast(normalize_type(a.type))
    b = b.cast(normalize_type(b.type))
    ta, tb = a.type, b.type
    if pt.is_timestamp(ta) and pt.is_timestamp(tb) and ta != tb:
        unit = max(ta.unit, tb.unit, key=TS_ORDER.__getitem__)
        if ta.tz == tb.tz or ignore_types:
            a = a.cast(pa.timestamp(unit, ta.tz if ta.tz == tb.tz else None))
            b = b.cast(pa.timestamp(unit, ta.tz if ta.tz == tb.tz else None))
            ta, tb = a.type, b.type
    if ignore_types and pt.is_floating(ta) and pt.is_floating(tb):
        # Text formats disagree on NaN: pyarrow's CSV reader reads "NaN" as null.
        a = pc.if_else(pc.is_nan(a), pa.scalar(None, ta), a)
        b = pc.if_else(pc.is_nan(b), pa.scalar(None, tb), b)
    if ta == tb:
        return a, b, None
    if not ignore_types:
        return a, b, f"type {ta} != {tb}"

    def numeric(t):
        return pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t)

    if pt.is_integer(ta) and pt.is_integer(tb):
        # Exact for every width, unlike float64 past 2**53.
        return a.cast(pa.string()), b.cast(pa.string()), None
    if (pt.is_decimal(ta) and pt.is_floating(tb)) or (pt.is_floating(ta) and pt.is_decimal(tb)):
        # Through text: a decimal's nearest float is what its digits parse to.
        to_float = lambda x: x.cast(pa.string()).cast(pa.float64()) if pt.is_decimal(x.type) else x.cast(pa.float64())
        return to_float(a), to_float(b), None
    if {ta, tb} == {pa.float32(), pa.float64()}:
        # A float32 printed as text reads back as the float64 nearest its shortest
        # decimal form; compare at float32 precision.
        return a.cast(pa.float32(), safe=False), b.cast(pa.float32(), safe=False), None
    if numeric(ta) and numeric(tb):
        return a.cast(pa.float64(), safe=False), b.cast(pa.float64(), safe=False), None
    if pt.is_null(ta):
        return a.cast(tb), b, None
    if pt.is_null(tb):
        return a, b.cast(ta), None
    for src, dst in ((b, a), (a, b)):
        if pt.is_string(src.type) and not pt.is_string(dst.type):
            target = dst.type
            if pt.is_timestamp(target):  # parse any sub-second digits, then unify units
                target = pa.timestamp("ns", target.tz)
            try:
                conv = src.cast(target)
            except Exception:  # noqa: BLE001
                continue
            if src is b:
                return unify(a, conv, ignore_types)
            return unify(conv, b, ignore_types)
    try:
        return a.cast(pa.string()), b.cast(pa.string()), None
    except Exception as e:  # noqa: BLE001
        return a, b, f"cannot compare {ta} with {tb}: {e}"


def diff_arrays(a, b, rtol: float, atol: float):
    """Indices (up to MAX_SHOWN) and count of positions where a != b."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
    b = b.combine_chunks() if isinstance(b, pa.ChunkedArray) else b
    na = a.is_null()
    nb = b.is_null()
    null_mismatch = pc.not_equal(na, nb)
    t = a.type
    try:
        if pt.is_floating(t):
            if rtol or atol:
                da = pc.abs(pc.subtract(a, b))
                tol = pc.add(pc.multiply(pc.abs(b), rtol), atol)
                eq = pc.or_(pc.less_equal(da, tol), pc.equal(a, b))
            else:
                eq = pc.equal(a, b)
            eq = pc.or_(eq, pc.and_(pc.is_nan(a), pc.is_nan(b)))
        else:
            eq = pc.equal(a, b)
        bad = pc.or_(null_mismatch, pc.invert(pc.fill_null(eq, True)))
        bad_np = np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        la, lb = a.to_pylist(), b.to_pylist()
        bad_np = np.array([not py_equal(x, y) for x, y in zip(la, lb)], dtype=bool)
    idx = np.flatnonzero(bad_np)
    return idx[:MAX_SHOWN].tolist(), int(idx.size)


def py_equal(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(py_equal(p, q) for p, q in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(py_equal(x[k], y[k]) for k in x)
    return x == y


def select_columns(ta, tb, columns: list[str] | None):
    if not columns:
        return ta, tb
    missing = [c for c in columns if c not in ta.column_names]
    if missing:
        raise UsageError(f"A has no column(s) {missing}; it has {ta.column_names}")
    ta = ta.select(columns)
    if all(c in tb.column_names for c in columns):
        tb = tb.select(columns)
    elif tb.num_columns == len(columns):
        tb = tb.rename_columns(columns)  # positional match
    else:
        raise UsageError(f"B lacks column(s) {columns} and has {tb.num_columns} columns")
    return ta, tb


def cmd_frame(args) -> int:
    ta = read_frame(args.a, args.delimiter)
    tb = read_frame(args.b, args.delimiter)
    ta, tb = select_columns(ta, tb, parse_columns(args.columns))
    problems = []
    if ta.column_names != tb.column_names:
        problems.append(f"columns differ:\n  A: {ta.column_names}\n  B: {tb.column_names}")
        common = [c for c in ta.column_names if c in tb.column_names]
    else:
        common = ta.column_names
    if ta.num_rows != tb.num_rows:
        problems.append(f"row count differs: A has {ta.num_rows}, B has {tb.num_rows}")
    else:
        for name in common:
            a, b, err = unify(ta.column(name), tb.column(name), args.ignore_types)
            if err:
                problems.append(f"column {name!r}: {err}")
                continue
            idx, count = diff_arrays(a, b, args.rtol, args.atol)
            if count:
                la = a.take(idx).to_pylist()
                lb = b.take(idx).to_pylist()
                shown = "\n".join(f"    row {i}: A={x!r} B={y!r}" for i, x, y in zip(idx, la, lb))
                problems.append(f"column {name!r}: {count} of {len(a)} values differ\n{shown}")
    if problems:
        print(f"frames differ: {args.a} vs {args.b}", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    return 0


def parse_columns(s: str | None) -> list[str] | None:
    if s is None:
        return None
    cols = [c for c in s.split(",") if c != ""]
    if not cols:
        raise UsageError("--columns is empty")
    return cols


# --------------------------------------------------------------------------
# arrays
# --------------------------------------------------------------------------

def read_array(path_s: str):
    import numpy as np

    path = Path(path_s)
    if not path.exists():
        raise UsageError(f"no such file or directory: {path}")
    try:
        if path.is_dir():
            if (path / "info").is_file():
                import dask
                import dask.array as da

                with dask.config.set(scheduler="synchronous"):
                    return np.asarray(da.from_npy_stack(str(path), mmap_mode=None).compute())
            if (path / "zarr.json").is_file() or (path / ".zarray").is_file():
                import zarr

                return np.asarray(zarr.open_array(str(path), mode="r")[...])
            raise UsageError(f"directory is neither an npy stack (info) nor a zarr array: {path}")
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode=None, allow_pickle=False)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ReadError(f"cannot read {path}: {type(e).__name__}: {e}") from e
    raise UsageError(f"unknown array format: {path}")


def compare_ndarrays(a, b, rtol: float, atol: float):
    """Return a list of problem strings (empty when equal)."""
    import numpy as np

    if a.shape != b.shape:
        return [f"shape {a.shape} != {b.shape}"]
    fa = a.dtype.kind in "fc"
    if rtol or atol:
        if a.dtype.kind in "biufc" and b.dtype.kind in "biufc":
            close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        else:
            close = a == b
    else:
        with np.errstate(invalid="ignore"):
            close = a == b
        if fa or b.dtype.kind in "fc":
            close |= both_nan(a, b)
    close = np.asarray(close, dtype=bool)
    if close.all():
        return []
    bad = np.argwhere(~close)
    lines = [f"{len(bad)} of {a.size} values differ"]
    for ix in bad[:MAX_SHOWN]:
        t = tuple(int(i) for i in ix)
        lines.append(f"  at {t}: A={a[t]!r} B={b[t]!r}")
    return lines


def both_nan(a, b):
    import numpy as np

    def nanmask(x):
        if x.dtype.kind == "c":
            return np.isnan(x.real) | np.isnan(x.imag)
        if x.dtype.kind == "f":
            return np.isnan(x)
        return np.zeros(x.shape, dtype=bool)

    return nanmask(a) & nanmask(b)


def cmd_array(args) -> int:
    import numpy as np

    a = read_array(args.a)
    b = read_array(args.b)
    problems = []
    if args.ignore_dtype:
        if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
            a2, b2 = a.astype(np.float64), b.astype(np.float64)
        else:
            try:
                a2, b2 = a.astype(b.dtype), b
            except (TypeError, ValueError) as e:
                print(f"cannot cast A ({a.dtype}) to B's dtype ({b.dtype}): {e}", file=sys.stderr)
                return 1
    else:
        da, db = a.dtype, b.dtype
        if not args.strict_dtype:
            da, db = da.newbyteorder("<"), db.newbyteorder("<")
        if da != db:
            problems.append(f"dtype {a.dtype.str} ({a.dtype}) != {b.dtype.str} ({b.dtype})")
        a2, b2 = a, b
    if not problems:
        problems += compare_ndarrays(a2, b2, args.rtol, args.atol)
    if problems:
        print(f"arrays differ: {args.a} vs {args.b}", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    return 0


def cmd_frame_array(args) -> int:
    import numpy as np
    import pyarrow.types as pt

    t = read_frame(args.a, args.delimiter)
    cols = parse_columns(args.columns)
    if cols:
        missing = [c for c in cols if c not in t.column_names]
        if missing:
            raise UsageError(f"A has no column(s) {missing}; it has {t.column_names}")
    else:
        cols = [f.name for f in t.schema
                if pt.is_integer(normalize_type(f.type)) or pt.is_floating(normalize_type(f.type))
                or pt.is_decimal(normalize_type(f.type)) or pt.is_boolean(normalize_type(f.type))]
        if not cols:
            print(f"{args.a} has no numeric columns", file=sys.stderr)
            return 1
    mats = []
    for c in cols:
        col = t.column(c)
        col = col.cast(normalize_type(col.type))
        try:
            import pyarrow as pa

            if pt.is_boolean(col.type):
                col = col.cast(pa.uint8())
            col = col.cast(pa.float64())
        except Exception as e:  # noqa: BLE001
            print(f"column {c!r} ({col.type}) cannot be cast to float64: {e}", file=sys.stderr)
            return 1
        mats.append(np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64))  # nulls -> NaN
    a = np.column_stack(mats) if mats else np.empty((t.num_rows, 0))
    b = read_array(args.b)
    if b.ndim == 1 and a.shape[1] == 1:
        b = b.reshape(-1, 1)
    if b.dtype.kind not in "biuf":
        print(f"B has non-numeric dtype {b.dtype}", file=sys.stderr)
        return 1
    b = b.astype(np.float64)
    problems = compare_ndarrays(a, b, args.rtol, args.atol)
    if problems:
        print(f"frame columns {cols} differ from array: {args.a} vs {args.b}", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------
# zarr metadata
# --------------------------------------------------------------------------

def jsonable(x):
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "to_dict"):
        try:
            return jsonable(x.to_dict())
        except Exception:  # noqa: BLE001
            pass
    if hasattr(x, "get_config"):
        return jsonable(x.get_config())
    if hasattr(x, "item"):
        try:
            return jsonable(x.item())
        except Exception:  # noqa: BLE001
            pass
    return str(x)


def cmd_zarr_meta(args) -> int:
    import numpy as np
    import zarr

    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"no such file or directory: {path}")
    try:
        z = zarr.open_array(str(path), mode="r")
    except Exception as e:  # noqa: BLE001
        print(f"zarr-python cannot open {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    meta = z.metadata
    out = {
        "zarr_format": z.metadata.zarr_format,
        "shape": list(z.shape),
        "chunks": list(z.chunks),
        "shards": list(z.shards) if getattr(z, "shards", None) else None,
        "dtype": str(np.dtype(z.dtype)) if not hasattr(z.dtype, "to_native_dtype") else str(z.dtype.to_native_dtype()),
        "dtype_str": None,
        "fill_value": jsonable(z.fill_value),
        "order": getattr(z, "order", None),
        "filters": jsonable(list(z.filters)),
        "serializer": jsonable(z.serializer),
        "compressors": jsonable(list(z.compressors)),
        "attributes": jsonable(dict(z.attrs)),
        "nchunks": int(z.nchunks),
        "nchunks_initialized": None,
    }
    try:
        out["dtype_str"] = np.dtype(out["dtype"]).str
    except Exception:  # noqa: BLE001
        pass
    try:
        out["nchunks_initialized"] = int(z.nchunks_initialized)
    except Exception:  # noqa: BLE001
        pass
    if out["zarr_format"] == 3:
        out["codecs"] = jsonable(meta.to_dict().get("codecs"))
        out["dimension_names"] = jsonable(getattr(meta, "dimension_names", None))
    else:
        d = meta.to_dict()
        out["compressor"] = jsonable(d.get("compressor"))
        out["dimension_separator"] = d.get("dimension_separator")
    rc = 0
    if not args.no_read:
        try:
            data = np.asarray(z[...])
            out["read_ok"] = True
            if data.dtype.kind in "biuf" and data.size:
                out["sum"] = jsonable(float(np.nansum(data.astype(np.float64))))
        except Exception as e:  # noqa: BLE001
            out["read_ok"] = False
            out["read_error"] = f"{type(e).__name__}: {e}"
            print(f"zarr-python cannot read data of {path}: {out['read_error']}", file=sys.stderr)
            rc = 1
    print(json.dumps(out, indent=2, sort_keys=True))
    return rc


# --------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 (argparse does this too, but be explicit)
        self.print_usage(sys.stderr)
        die(2, f"{self.prog}: error: {message}")


def main(argv=None) -> int:
    p = Parser(prog="compare.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True, parser_class=Parser)

    def tol(sp):
        sp.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for floats")
        sp.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for floats")

    f = sub.add_parser("frame", help="compare two data frames")
    f.add_argument("a")
    f.add_argument("b")
    f.add_argument("--ignore-types", action="store_true")
    f.add_argument("--columns", help="comma-separated columns of A to compare (B by name or position)")
    f.add_argument("--delimiter", help="CSV delimiter (default ',' or tab for .tsv)")
    tol(f)

    a = sub.add_parser("array", help="compare two n-d arrays")
    a.add_argument("a")
    a.add_argument("b")
    a.add_argument("--ignore-dtype", action="store_true")
    a.add_argument("--strict-dtype", action="store_true", help="also compare byte order")
    tol(a)

    fa = sub.add_parser("frame-array", help="compare numeric frame columns to a 2-D array")
    fa.add_argument("a")
    fa.add_argument("b")
    fa.add_argument("--columns")
    fa.add_argument("--delimiter")
    tol(fa)

    z = sub.add_parser("zarr-meta", help="print zarr-python's view of an array as JSON")
    z.add_argument("path")
    z.add_argument("--no-read", action="store_true", help="do not read the data")

    args = p.parse_args(argv)
    delim = getattr(args, "delimiter", None)
    if delim is not None and len(delim) != 1:
        die(2, "--delimiter must be one character")
    try:
        if args.mode == "frame":
            return cmd_frame(args)
        if args.mode == "array":
            return cmd_array(args)
        if args.mode == "frame-array":
            return cmd_frame_array(args)
        return cmd_zarr_meta(args)
    except UsageError as e:
        die(2, f"usage error: {e}")
    except ReadError as e:
        die(1, str(e))
    return 2


if __name__ == "__main__":
    sys.exit(main())
