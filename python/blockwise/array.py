"""Lazy chunked arrays: numpy's operations, computed block by block in Rust.

An :class:`Array` is an expression of blockwise's array language (the one
``blockwise array EXPR`` evaluates) and the array files its names are bound to.
Operators, ufuncs (also through numpy's ``__array_ufunc__`` and
``__array_function__``), methods and indexing build a longer expression; nothing
runs until ``compute()`` or ``to_zarr()``. Shape, dtype and chunks are known
before: Rust evaluates the expression's types and shapes without computing it::

    import blockwise as bw
    x = bw.random.random((10000, 10000, 10), chunks=(1000, 1000, 5), seed=1)
    y = bw.random.random((10000, 10000, 10), chunks=(1000, 1000, 5), seed=2)
    (bw.arcsin(x) + bw.arccos(y)).sum(axis=(1, 2)).compute()
"""

from __future__ import annotations

import itertools
import json
import numbers
import os
import secrets
import tempfile
import weakref
from typing import Any

import numpy as np

from . import _blockwise, _progress, _report

_names = itertools.count()

# Expressions longer than this are bound to a name (`--let`) when built.
_BIND_LONGER_THAN = 200

# numpy ufuncs blockwise computes, by name (the language's names).
_UNARY = {
    "negative", "absolute", "sign", "floor", "ceil", "trunc", "rint", "isnan", "isinf",
    "isfinite", "sqrt", "cbrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin",
    "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "invert",
    "logical_not",
}
_BINARY = {
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder",
    "mod", "power", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "bitwise_and", "bitwise_or", "bitwise_xor", "maximum", "minimum", "arctan2", "hypot",
    "logical_and", "logical_or", "logical_xor",
}
_REDUCTIONS = {
    "sum", "prod", "min", "max", "any", "all", "mean", "std", "var", "nansum", "nanprod",
    "nanmin", "nanmax", "nanmean", "nanstd", "nanvar", "argmin", "argmax",
}
# numpy functions (``__array_function__``) blockwise computes, by numpy's name.
_SHAPE = {"concatenate", "stack", "swapaxes", "moveaxis", "expand_dims", "squeeze",
          "broadcast_to", "cumsum", "cumprod", "matmul", "dot", "reshape", "ravel", "sort",
          "argsort", "tensordot", "einsum", "pad", "diff", "convolve", "correlate", "bincount"}
# numpy functions that return tuples of arrays, served by this module's own.
_TUPLE_FUNCTIONS = {"histogram", "gradient", "unique"}
_FUNCTIONS = _REDUCTIONS | _SHAPE | {"amin", "amax", "where", "clip", "transpose", "round", "around"}


def _literal(value: Any) -> str:
    """``value`` in the expression language."""
    if isinstance(value, Array):
        return value._expr
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        # A numpy scalar has its own dtype (it is not weak as a Python number is).
        return f"full((), {_literal(value.item())}, dtype={json.dumps(value.dtype.name)})"
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "(-inf)"
        return repr(v)
    if isinstance(value, numbers.Complex):
        z = complex(value)
        if not (np.isfinite(z.real) and np.isfinite(z.imag)):
            raise TypeError("a complex number with an infinite or NaN part in an expression")
        return f"({_literal(z.real)} + {z.imag!r}j)"
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "None"
    if value is Ellipsis:
        return "..."
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return json.dumps(np.dtype(value).name)
    if isinstance(value, slice):
        start, stop = ("" if p is None else _literal(p) for p in (value.start, value.stop))
        step = "" if value.step is None else ":" + _literal(value.step)
        return f"{start}:{stop}{step}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, np.ndarray):
        raise TypeError("a numpy array in an expression: wrap it with bw.from_array(a, chunks=...)")
    raise TypeError(f"{type(value).__name__} cannot be part of a blockwise array expression")


# An index array up to this many values is written into the expression.
_LITERAL_INDEX = 65536


def _index_operand(i: Any) -> Any:
    """An index as the expression language takes it: numpy arrays and lists of
    indices or of booleans become arrays."""
    if isinstance(i, (list, np.ndarray)) and not isinstance(i, Array):
        a = np.asarray(i)
        if a.dtype.kind not in "biu" and a.size:
            raise IndexError("arrays used as indices must be of integer (or boolean) type")
        if a.size == 0:
            a = a.astype(np.int64)
        return _array_operand(a)
    return i


def _array_operand(a: np.ndarray) -> "Array":
    """A numpy array as an operand: written into the expression when small (and
    not complex, which the language's lists do not hold), stored otherwise."""
    if a.size <= _LITERAL_INDEX and a.dtype.kind in "biuf":
        return _call("array", a.tolist(), dtype=a.dtype.name)
    return from_array(a)


def _call_index(a: "Array", index: tuple) -> "Array":
    """``a[index]`` as an expression, the index's arrays' inputs joined."""
    inputs = dict(a._inputs)
    keep = list(a._keep)
    lets = dict(a._lets)
    for i in index:
        for x in _arrays_in(i):
            inputs.update(x._inputs)
            keep.extend(x._keep)
            lets.update(x._lets)
    parts = ", ".join(_literal(i) for i in index)
    return Array(f"{a._expr}[{parts}]", inputs, keep, lets)


def _arrays_in(value: Any):
    """The Arrays in ``value``, however nested in tuples and lists."""
    if isinstance(value, Array):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _arrays_in(v)


def _call(name: str, *args: Any, **kwargs: Any) -> "Array":
    inputs: dict[str, str] = {}
    keep: list[Any] = []
    lets: dict[str, str] = {}
    for v in itertools.chain(args, kwargs.values()):
        for a in _arrays_in(v):
            inputs.update(a._inputs)
            keep.extend(a._keep)
            lets.update(a._lets)
    parts = [_literal(a) for a in args] + [f"{k}={_literal(v)}" for k, v in kwargs.items()]
    return Array(f"{name}({', '.join(parts)})", inputs, keep, lets)


class Array:
    """A lazy n-dimensional array (see the module's documentation)."""

    __array_priority__ = 100

    def __init__(self, expr: str, inputs: dict[str, str] | None = None, keep: list | None = None,
                 lets: dict[str, str] | None = None):
        self._lets = dict(lets or {})
        if len(expr) > _BIND_LONGER_THAN:
            # A long expression is bound to a name once, and the name is used: an
            # operand used several times (a loop's `z`) would otherwise copy its text
            # at each use, and the text would grow exponentially.
            name = f"_e{next(_names)}"
            self._lets[name] = expr
            expr = name
        self._expr = expr
        self._inputs = dict(inputs or {})
        # Objects that must live as long as the expression (temporary files).
        self._keep = list(keep or [])
        self._info_cache: dict | None = None

    # What the array is, without computing it.
    def _info(self) -> dict:
        if self._info_cache is None:
            self._info_cache = json.loads(_blockwise.array_info(self._expr, list(self._inputs.items()), list(self._lets.items())))
        return self._info_cache

    @property
    def shape(self) -> tuple:
        """The shape; ``nan`` for the length of a boolean selection (``x[mask]``),
        known only once computed, as in Dask."""
        return tuple(float("nan") if n is None else n for n in self._info()["shape"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._info()["dtype"])

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Chunk lengths along each axis, as Dask gives them (``nan`` where unknown)."""
        return tuple(tuple(float("nan") if n is None else n for n in c) for c in self._info()["chunks"])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Any:
        if self._unknown():
            return float("nan")
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> Any:
        n = self._info()["nbytes"]
        return float("nan") if n is None else int(n)

    def _unknown(self) -> bool:
        """Whether a length is known only once computed (a boolean selection)."""
        return None in self._info()["shape"]

    @property
    def expr(self) -> str:
        """The expression, in blockwise's array language."""
        return self._expr

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        if self._unknown():
            raise ValueError("cannot call len() on an array of unknown length (a boolean "
                             "selection): compute it, or persist() it to know its length")
        return self.shape[0]

    def __repr__(self) -> str:
        info = self._info()
        chunk = tuple(float("nan") if any(n != n for n in c) else (max(c) if c else 0)
                      for c in self.chunks)
        nbytes = "unknown" if info["nbytes"] is None else _bytes_text(info["nbytes"])
        return (f"blockwise.Array<shape={self.shape}, dtype={info['dtype']}, chunksize={chunk}, "
                f"nbytes={nbytes}, tasks={info['tasks']}>")

    # Computing.
    def compute(self, executor: Any = None, **options: Any) -> np.ndarray:
        """The array, computed, as a numpy array. ``options`` are job flags
        (``memory_limit="1GiB"``, ``threads=4``, ``progress=False``).
        ``executor=bw.DaskExecutor(client)`` runs the plan on a Dask cluster."""
        from . import _flags, _with_config

        if executor is not None:
            return self._compute_on(executor, **options)
        _stats, buffer, shape, dtype, _counts = self._compute_here(options)
        return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape)

    def _compute_here(self, options: dict) -> tuple:
        from . import _flags, _with_config

        show = options.pop("progress", None)
        flags = _flags(_with_config(options))
        report = _report.active()
        return _progress.run(
            "compute",
            lambda progress: _blockwise.array_compute(
                self._expr, list(self._inputs.items()), list(self._lets.items()), flags, progress, report
            ),
            show,
        )

    def _compute_on(self, executor: Any, **options: Any) -> np.ndarray:
        """Runs the plan of writing the array to a temporary ``.npy`` on
        ``executor`` (whose workers must see the temporary directory), then loads it."""
        from . import Plan, _flags, _with_config

        if self._unknown():
            raise NotImplementedError(
                "a boolean selection (x[mask]) is laid out where it is computed: call "
                ".compute() without an executor, or reduce it (x[mask].sum()) to run on "
                "the cluster")
        with tempfile.TemporaryDirectory(prefix="blockwise-array-") as d:
            out = os.path.join(d, "result.npy")
            flags = _flags(_with_config(options))
            text = _blockwise.plan_array(self._expr, list(self._inputs.items()), list(self._lets.items()), out, flags)
            executor.run(Plan(text))
            return np.load(out)

    def to_zarr(self, path: str | os.PathLike, **options: Any) -> dict:
        """Writes the array to a Zarr v3 array (zstd by default), one task a chunk;
        returns the job's statistics. ``options``: ``chunks``, ``compression``,
        ``overwrite`` and job flags."""
        return self.to_file(path, to="zarr", **options)

    def to_npy_stack(self, path: str | os.PathLike, **options: Any) -> dict:
        """Writes the array to an npy stack directory (Dask's layout)."""
        return self.to_file(path, to="npy-stack", **options)

    def to_file(self, path: str | os.PathLike, **options: Any) -> dict:
        """Writes the array to ``path`` (``.zarr``, ``.npy``, or ``to=...``)."""
        from . import _flags, _with_config

        show = options.pop("progress", None)
        flags = _flags(_with_config(options))
        report = _report.active()
        text = _progress.run(
            "write",
            lambda progress: _blockwise.array_write(
                self._expr, list(self._inputs.items()), list(self._lets.items()), os.fspath(path), flags, progress, report
            ),
            show,
        )
        return json.loads(text)

    def persist(self, **options: Any) -> "Array":
        """The array computed once into a temporary Zarr array (zstd level 1, its
        own chunks) and read back: what uses it later reads the stored values
        instead of computing them again (Dask's ``persist``, on disk rather than in
        workers' memory, so it may be larger than memory). The store lives as long
        as the expressions using it. ``options``: job flags (``memory_limit``,
        ``threads``, ``progress``, ``executor``)."""
        d = tempfile.TemporaryDirectory(prefix="blockwise-persist-")
        path = os.path.join(d.name, "a.zarr")
        executor = options.pop("executor", None)
        if self._unknown():
            # A boolean selection: its length is known once written (Dask's
            # compute_chunk_sizes); it is laid out in memory, so runs here.
            if executor is not None:
                raise NotImplementedError("persist() of a boolean selection runs locally")
            self.to_zarr(path, compression="zstd:1", **options)
            arr = _input(path)
            arr._keep.append(d)
            return arr
        chunks = ",".join(str(max(c) if c else 1) for c in self.chunks)
        if executor is not None:
            executor.run(self.plan(path, chunks=chunks, compression="zstd:1", **options))
        else:
            self.to_zarr(path, chunks=chunks, compression="zstd:1", **options)
        arr = _input(path, self.chunks)
        arr._keep.append(d)
        return arr

    def compute_chunk_sizes(self) -> "Array":
        """Dask's ``compute_chunk_sizes``: a boolean selection computed once (into a
        temporary store, as ``persist``) so that its length is known."""
        return self.persist() if self._unknown() else self

    def plan(self, path: str | os.PathLike, **options: Any):
        """The plan of writing the array to ``path``, to run anywhere."""
        from . import Plan, _flags, _with_config

        flags = _flags(_with_config(options))
        return Plan(_blockwise.plan_array(self._expr, list(self._inputs.items()), list(self._lets.items()), os.fspath(path), flags))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.compute()
        return a if dtype is None else a.astype(dtype)

    # Building expressions.
    def _binary(self, op: str, other: Any, reflected: bool = False) -> "Array":
        if isinstance(other, np.ndarray):
            # A small one is written into the expression; a larger one is stored.
            other = _array_operand(other) if other.ndim else other[()]
        try:
            lit = _literal(other)
        except TypeError:
            return NotImplemented
        inputs = dict(self._inputs)
        keep = list(self._keep)
        lets = dict(self._lets)
        if isinstance(other, Array):
            inputs.update(other._inputs)
            keep.extend(other._keep)
            lets.update(other._lets)
        a, b = (lit, self._expr) if reflected else (self._expr, lit)
        return Array(f"({a} {op} {b})", inputs, keep, lets)

    def __add__(self, o): return self._binary("+", o)
    def __radd__(self, o): return self._binary("+", o, True)
    def __sub__(self, o): return self._binary("-", o)
    def __rsub__(self, o): return self._binary("-", o, True)
    def __mul__(self, o): return self._binary("*", o)
    def __rmul__(self, o): return self._binary("*", o, True)
    def __truediv__(self, o): return self._binary("/", o)
    def __rtruediv__(self, o): return self._binary("/", o, True)
    def __floordiv__(self, o): return self._binary("//", o)
    def __rfloordiv__(self, o): return self._binary("//", o, True)
    def __mod__(self, o): return self._binary("%", o)
    def __rmod__(self, o): return self._binary("%", o, True)
    def __pow__(self, o): return self._binary("**", o)
    def __rpow__(self, o): return self._binary("**", o, True)
    def __and__(self, o): return self._binary("&", o)
    def __rand__(self, o): return self._binary("&", o, True)
    def __or__(self, o): return self._binary("|", o)
    def __ror__(self, o): return self._binary("|", o, True)
    def __xor__(self, o): return self._binary("^", o)
    def __rxor__(self, o): return self._binary("^", o, True)
    def __lt__(self, o): return self._binary("<", o)
    def __le__(self, o): return self._binary("<=", o)
    def __gt__(self, o): return self._binary(">", o)
    def __ge__(self, o): return self._binary(">=", o)
    def __eq__(self, o): return self._binary("==", o)  # type: ignore[override]
    def __ne__(self, o): return self._binary("!=", o)  # type: ignore[override]
    def __neg__(self): return Array(f"(-{self._expr})", self._inputs, self._keep, self._lets)
    def __pos__(self): return self
    def __invert__(self): return Array(f"(~{self._expr})", self._inputs, self._keep, self._lets)
    def __abs__(self): return _call("abs", self)

    __hash__ = None  # type: ignore[assignment]  # == builds an array, as numpy's does

    def __bool__(self) -> bool:
        raise ValueError("the truth value of a blockwise Array is ambiguous; compute() it first")

    def __getitem__(self, index: Any) -> "Array":
        """numpy's indexing: integers, slices, ``None``, ``...``, one list or integer
        array of indices, or one boolean mask (whose result has a length known only
        once computed: ``nan`` in its shape, as in Dask)."""
        index = index if isinstance(index, tuple) else (index,)
        index = tuple(_index_operand(i) for i in index)
        for i in index:
            if isinstance(i, numbers.Integral) and self.ndim and index[0] is i and len(index) == 1:
                if not -self.shape[0] <= int(i) < self.shape[0]:
                    raise IndexError(f"index {int(i)} is out of bounds for axis 0 with size {self.shape[0]}")
        out = _call_index(self, index)
        if any(isinstance(i, Array) for i in index):
            try:
                out._info()  # numpy refuses a bad index array at once; so do we
            except ValueError as e:
                raise IndexError(str(e)) from None
        return out

    @property
    def T(self) -> "Array":
        return Array(f"{self._expr}.T", self._inputs, self._keep, self._lets)

    def transpose(self, *axes: Any) -> "Array":
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _call("transpose", self, *((axes,) if axes else ()))

    def __matmul__(self, o): return self._binary("@", o)
    def __rmatmul__(self, o): return self._binary("@", o, True)

    def cumsum(self, axis: Any = None) -> "Array":
        return _call("cumsum", self, *(() if axis is None else (axis,)))

    def cumprod(self, axis: Any = None) -> "Array":
        return _call("cumprod", self, *(() if axis is None else (axis,)))

    def dot(self, other: Any) -> "Array":
        return _call("dot", self, other)

    def squeeze(self, axis: Any = None) -> "Array":
        return _call("squeeze", self, *(() if axis is None else (axis,)))

    def swapaxes(self, a: int, b: int) -> "Array":
        return _call("swapaxes", self, a, b)

    def astype(self, dtype: Any) -> "Array":
        return _call("astype", self, np.dtype(dtype).name)

    def reshape(self, *shape: Any, order: str = "C") -> "Array":
        """numpy's ``reshape`` (one length may be -1); blocks hold whole rows of the
        result, so the input is rechunked where it must be."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _call("reshape", self, tuple(shape), order=order)

    def ravel(self) -> "Array":
        """The array flattened in C order."""
        return _call("ravel", self)

    flatten = ravel

    def argsort(self, axis: int = -1, kind: Any = None) -> "Array":
        """The indices that sort each row along ``axis`` (stable)."""
        return _call("argsort", self, axis=axis)

    def rechunk(self, chunks: Any) -> "Array":
        return _call("rechunk", self, chunks)

    def __setitem__(self, index: Any, value: Any) -> None:
        """Assignment as Dask allows it, lazily: ``x[mask] = v`` (a boolean array of
        x's shape) and ``x[2:5, ::2] = v`` (basic indices) with ``v`` a number, or an
        array broadcast to x's shape under a mask. This name then refers to a new
        expression; other references to the old array keep seeing it."""
        if isinstance(index, (list, np.ndarray)) and np.asarray(index).dtype == np.bool_:
            index = _index_operand(index)
        if isinstance(index, Array) and index.dtype == np.bool_:
            if index.shape != self.shape[:index.ndim]:
                raise IndexError(
                    f"boolean index of shape {index.shape} did not match the indexed array "
                    f"of shape {self.shape}")
            # A mask of the leading axes selects whole rows.
            extra = self.ndim - index.ndim
            mask = index[(Ellipsis,) + (None,) * extra] if extra > 0 else index
        else:
            index = index if isinstance(index, tuple) else (index,)
            mask = self._region_mask(index)
            listed = any(isinstance(i, (list, np.ndarray)) for i in index)
            if listed and isinstance(value, (Array, np.ndarray)) and np.ndim(value) > 0:
                raise NotImplementedError(
                    "assigning an array through a list of indices is not supported; assign a "
                    "number, or an array through slices")
            if isinstance(value, Array) and value.shape != self.shape:
                value = self._placed(index, value)
        if self.dtype.kind != "c" and (
                isinstance(value, complex) and not isinstance(value, (float, int))
                or getattr(value, "dtype", np.dtype("f8")).kind == "c"):
            raise TypeError(f"cannot assign complex values into a {self.dtype} array")
        new = where(mask, value, self).astype(self.dtype)
        self.__dict__.update(new.__dict__)

    def _placed(self, index: tuple, value: "Array") -> "Array":
        """``value``, broadcast to the region the basic index ``index`` selects, laid
        out in this array's shape: along each axis, element ``i`` takes the region's
        element ``(i - start) // step`` (clipped; outside the region the mask hides
        it), so ``x[2:5, ::2] = y`` needs no scatter."""
        if len(index) == 1 and index[0] is Ellipsis:
            index = ()
        axes = []  # (start, step, length, integer) for each axis
        for axis, n in enumerate(self.shape):
            i = index[axis] if axis < len(index) else slice(None)
            if isinstance(i, slice):
                start, stop, step = i.indices(n)
                axes.append((start, step, len(range(start, stop, step)), False))
            else:
                j = int(i) + n if int(i) < 0 else int(i)
                axes.append((j, 1, 1, True))
        region = tuple(length for _, _, length, integer in axes if not integer)
        try:
            v = _call("broadcast_to", value, region)
            v.shape
        except ValueError as e:
            raise ValueError(
                f"could not broadcast input array from shape {value.shape} into shape {region}"
            ) from e
        for axis, (_, _, _, integer) in enumerate(axes):
            if integer:
                v = expand_dims_(v, axis)
        for axis, (start, step, length, _) in enumerate(axes):
            n = self.shape[axis]
            if length == 0:
                return v
            if (start, step, length) == (0, 1, n):
                continue
            pos = arange(n).rechunk((self.chunks[axis],))
            idx = _call("clip", (pos - start) // step, 0, length - 1)
            v = _call("take", v, idx, axis=axis)
        return v

    def _region_mask(self, index: tuple) -> "Array":
        """A boolean array of this shape, true inside the basic index ``index``."""
        if any(i is None or i is Ellipsis for i in index) or len(index) > self.ndim:
            if not (len(index) == 1 and index[0] is Ellipsis):
                raise NotImplementedError("assignment with None or ... in the index is not implemented yet")
            index = ()
        mask: Any = True
        for axis, n in enumerate(self.shape):
            i = index[axis] if axis < len(index) else slice(None)
            shape = [1] * self.ndim
            shape[axis] = n
            pos = arange(n).rechunk((self.chunks[axis],))
            for _ in range(axis):
                pos = expand_dims_(pos, 0)
            for _ in range(self.ndim - axis - 1):
                pos = expand_dims_(pos, -1)
            if isinstance(i, slice):
                start, stop, step = i.indices(n)
                inside = (pos - start) % step == 0
                if step > 0:
                    inside = inside & (pos >= start) & (pos < stop)
                else:
                    inside = inside & (pos <= start) & (pos > stop)
            elif isinstance(i, numbers.Integral):
                j = int(i) + n if int(i) < 0 else int(i)
                if not 0 <= j < n:
                    raise IndexError(f"index {int(i)} is out of bounds for axis {axis} with size {n}")
                inside = pos == j
            elif isinstance(i, (list, np.ndarray)) and np.asarray(i).ndim == 1:
                # Rows named by a list of indices or a 1-d mask along this axis.
                picked = np.asarray(i)
                if picked.dtype == np.bool_:
                    if picked.shape != (n,):
                        raise IndexError(f"boolean index did not match indexed array along axis "
                                         f"{axis}; size of axis is {n} but size of corresponding "
                                         f"boolean axis is {picked.shape[0]}")
                    rows = picked
                else:
                    rows = np.zeros(n, dtype=bool)
                    rows[picked.astype(np.int64) if picked.size else []] = True
                inside = _array_operand(rows).rechunk((self.chunks[axis],))
                for _ in range(axis):
                    inside = expand_dims_(inside, 0)
                for _ in range(self.ndim - axis - 1):
                    inside = expand_dims_(inside, -1)
            else:
                raise TypeError(f"{type(i).__name__} cannot index an assignment yet")
            mask = inside if mask is True else (mask & inside)
        if mask is True:
            return full(self.shape, True, chunks=self.chunks)
        return mask

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        for i in range(self.shape[0]):
            yield self[i]

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any):
        # `out`, `dtype`, `where`, `casting`... change the answer: not supported yet,
        # and never silently ignored.
        if method != "__call__" or kwargs:
            return NotImplemented
        name = ufunc.__name__
        if name in _UNARY | _BINARY:
            if any(isinstance(i, np.ndarray) for i in inputs):
                return NotImplemented
            return _call(name, *inputs)
        return NotImplemented

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any):
        name = func.__name__
        if any(isinstance(a, np.ndarray) for a in args):
            return NotImplemented
        if name in _TUPLE_FUNCTIONS:
            return globals()[name](*args, **kwargs)
        if name in _FUNCTIONS:
            return _call({"around": "round", "amin": "min", "amax": "max"}.get(name, name), *args, **kwargs)
        return NotImplemented


def _reduction(name: str):
    def method(self: Array, axis: Any = None, keepdims: bool = False, **kwargs: Any) -> Array:
        kw: dict[str, Any] = {}
        if axis is not None:
            kw["axis"] = axis
        if keepdims:
            kw["keepdims"] = True
        for key in ("ddof", "split_every"):
            if key in kwargs:
                kw[key] = kwargs.pop(key)
        if kwargs:
            raise TypeError(f"{name}() got unexpected keyword arguments {sorted(kwargs)}")
        return _call(name, self, **kw)

    method.__name__ = name
    method.__doc__ = f"numpy's ``{name}`` over ``axis`` (all axes when None)."
    return method


for _name in _REDUCTIONS:
    setattr(Array, _name, _reduction(_name))


def _bytes_text(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"


def _input(path: str | os.PathLike, chunks: Any = None) -> Array:
    name = f"_in{next(_names)}"
    a = Array(name, {name: os.fspath(path)})
    return a.rechunk(chunks) if chunks is not None else a


def from_zarr(path: str | os.PathLike, chunks: Any = None) -> Array:
    """A Zarr array (v2 or v3), in its own chunks unless ``chunks`` says otherwise."""
    return _input(path, chunks)


def from_npy(path: str | os.PathLike, chunks: Any = None) -> Array:
    """An ``.npy`` file, read in place (memory-mapped), cut into ``chunks``."""
    return _input(path, chunks)


def from_npy_stack(path: str | os.PathLike, chunks: Any = None) -> Array:
    """An npy stack directory (Dask's ``to_npy_stack`` layout)."""
    return _input(path, chunks)


def from_array(a: Any, chunks: Any = "auto") -> Array:
    """An in-memory array. It is written once to a temporary ``.npy`` that lives as
    long as the expressions using it (not yet read from memory in place)."""
    a = np.require(np.asarray(a), requirements="C")
    d = tempfile.TemporaryDirectory(prefix="blockwise-from-array-")
    path = os.path.join(d.name, "a.npy")
    np.save(path, a)
    arr = _input(path, chunks)
    arr._keep.append(d)
    weakref.finalize(arr, lambda: None)
    return arr


def _constructor(name: str):
    def build(*args: Any, **kwargs: Any) -> Array:
        if name.startswith("random.") and kwargs.get("seed") is None:
            # Drawn once, when the array is made: it is the same array at every
            # compute, and two arrays made alike differ (as Dask's do).
            kwargs["seed"] = secrets.randbits(63)
        return _call(name, *args, **kwargs)

    build.__name__ = name.replace(".", "_")
    build.__doc__ = f"numpy's ``{name}`` as a lazy array (``chunks=`` as in Dask)."
    return build


zeros = _constructor("zeros")
ones = _constructor("ones")
empty = _constructor("empty")
full = _constructor("full")
zeros_like = _constructor("zeros_like")
ones_like = _constructor("ones_like")
empty_like = _constructor("empty_like")
full_like = _constructor("full_like")
arange = _constructor("arange")
linspace = _constructor("linspace")
eye = _constructor("eye")
where = _constructor("where")
expand_dims_ = _constructor("expand_dims")


def meshgrid(*xs: Array, indexing: str = "xy") -> tuple:
    """numpy's ``meshgrid`` of 1-d arrays: the coordinate arrays, lazy."""
    grid = _call("meshgrid", *xs, indexing=indexing)
    return tuple(Array(f"{grid._expr}[{i}]", grid._inputs, grid._keep, grid._lets)
                 for i in range(len(xs)))
clip = _constructor("clip")


def _items(tuple_array: Array, n: int) -> tuple:
    """The ``n`` arrays of an expression whose value is a tuple."""
    return tuple(Array(f"{tuple_array._expr}[{i}]", tuple_array._inputs, tuple_array._keep,
                       tuple_array._lets) for i in range(n))


def histogram(a: Array, bins: Any = 10, range: Any = None, weights: Any = None,
              density: Any = None) -> tuple:
    """numpy's ``histogram``: ``(counts, edges)``. With a number of bins, ``range``
    is required (as in Dask): the edges must be known before the data are read."""
    h = _call("histogram", a, bins, range=range, weights=weights, density=bool(density))
    counts, edges = _items(h, 2)
    counts.shape  # a bad argument is an error here, not at compute
    return counts, edges


def gradient(f: Array, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """numpy's ``gradient`` with scalar spacings: an array for one axis, else a tuple."""
    g = _call("gradient", f, *varargs, axis=axis, edge_order=edge_order)
    if isinstance(axis, int) or (axis is None and f.ndim == 1):
        return g
    n = f.ndim if axis is None else len(axis)
    return g if n == 1 else _items(g, n)


def topk(a: Array, k: int, axis: int = -1) -> Array:
    """Dask's ``topk``: the ``k`` largest along ``axis`` in descending order, or the
    ``-k`` smallest in ascending order; a tree of partial tops, never a full sort."""
    return _call("topk", a, k, axis=axis)


class Unique:
    """numpy's ``unique`` of a lazy array: its distinct values in order (NaNs as
    one, last), and with ``return_counts`` how often each occurs. How many there
    are is known only once it has run, so it is not an ``Array``: ``compute()``
    runs it (a tree of merges of each chunk's distinct values)."""

    def __init__(self, a: Array, return_counts: bool = False):
        self._a = a
        self._counts = bool(return_counts)

    def compute(self, **options: Any) -> Any:
        a = self._a
        call = Array(f"unique({a._expr}, return_counts=True)", a._inputs, a._keep, a._lets)
        _stats, buffer, _shape, dtype, counts = call._compute_here(options)
        values = np.frombuffer(buffer, dtype=np.dtype(dtype))
        if self._counts:
            return values, np.asarray(counts, dtype=np.int64)
        return values

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._counts:
            raise TypeError("unique with counts is two arrays: use .compute()")
        out = self.compute(progress=False)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        counts = ", return_counts=True" if self._counts else ""
        return f"blockwise.Unique({self._a.expr}{counts}; length known once computed)"


def unique(ar: Array, return_counts: bool = False, **kwargs: Any) -> Unique:
    """numpy's ``unique`` (flattened), run by ``.compute()`` (see :class:`Unique`)."""
    for key in ("return_index", "return_inverse"):
        if kwargs.pop(key, False):
            raise NotImplementedError(f"unique with {key}=True is not supported")
    if kwargs.get("axis") is not None:
        raise NotImplementedError("unique with axis= is not supported: it flattens")
    return Unique(ar, return_counts)


class _NDImage:
    """scipy.ndimage's filters with a small kernel, n-d, with its boundary modes
    (``reflect``, ``constant`` with ``cval``, ``nearest``, ``mirror``, ``wrap``)."""

    convolve = staticmethod(_constructor("ndimage.convolve"))
    correlate = staticmethod(_constructor("ndimage.correlate"))


ndimage = _NDImage()


class _Random:
    """Counter-based random arrays: an element depends on the seed and its index
    only, never on the chunks or the threads. ``random`` is numpy's
    ``Generator(Philox(key=seed)).random`` bit for bit."""

    random = staticmethod(_constructor("random.random"))
    normal = staticmethod(_constructor("random.normal"))
    uniform = staticmethod(_constructor("random.uniform"))
    integers = staticmethod(_constructor("random.integers"))


random = _Random()

# The ufuncs and reductions as functions (`bw.arcsin(x)`, `bw.sum(x, axis=0)`),
# served by `__getattr__` rather than bound here: `sum`, `any`, `abs` would shadow
# Python's own inside this module.
_FUNCTION_TABLE = {
    name: _constructor(name)
    for name in _UNARY | _BINARY | _REDUCTIONS | _SHAPE | {"abs", "round", "transpose"}
}


def __getattr__(name: str) -> Any:
    try:
        return _FUNCTION_TABLE[name]
    except KeyError:
        raise AttributeError(f"module 'blockwise.array' has no attribute {name!r}") from None
