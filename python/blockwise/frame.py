"""Lazy data frames over CSV, Parquet and Arrow IPC files, pandas-style.

A :class:`Frame` is a SQL query (DuckDB's dialect, as ``blockwise sql`` runs
it): each method wraps the frame's query in another, so nothing is read until
``compute()``, ``to_parquet()`` or ``head()``. The query runs as a plan of
tasks under the memory limit: group-bys and sorts spill rather than fail.
Results come back as ``pyarrow.Table`` objects, which pandas, Polars and DuckDB
take through the Arrow PyCapsule interface without a copy. With
``executor=bw.DaskExecutor(client)``, ``compute()`` and the writers run the
query's plan on a Dask cluster instead.

    >>> df = bw.read_csv("data.csv")
    >>> df[df.v1 > 2].groupby("id1").agg({"v1": "sum"}).compute()
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Iterable

from . import _blockwise

__all__ = [
    "Column", "Frame", "GroupBy", "from_arrow", "from_pandas", "read_csv", "read_ipc",
    "read_parquet", "sql",
]


def _flags(options: dict[str, Any]) -> list[str]:
    from . import _flags as flags, _with_config

    return flags(_with_config(options))


def _quote_name(name: str) -> str:
    """A column name as a SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _literal(value: Any) -> str:
    """A Python value as a SQL literal."""
    if isinstance(value, Column):
        return value._sql
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "CAST('nan' AS DOUBLE)"
        if value in (float("inf"), float("-inf")):
            return f"CAST('{'-' if value < 0 else ''}inf' AS DOUBLE)"
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return _literal(value.item())
    except ImportError:  # pragma: no cover - numpy is a dependency of the tests
        pass
    raise TypeError(f"cannot use a {type(value).__name__} as a value in a frame expression")


# numpy's and pandas' type names and the DuckDB types they are.
_SQL_TYPES = {
    "int64": "BIGINT", "int32": "INTEGER", "int16": "SMALLINT", "int8": "TINYINT",
    "uint64": "UBIGINT", "uint32": "UINTEGER", "uint16": "USMALLINT", "uint8": "UTINYINT",
    "float64": "DOUBLE", "float32": "FLOAT", "str": "VARCHAR", "string": "VARCHAR",
    "object": "VARCHAR", "bool": "BOOLEAN", "boolean": "BOOLEAN", "date": "DATE",
    "datetime64[ns]": "TIMESTAMP", "datetime64[us]": "TIMESTAMP",
}


def _sql_type(dtype: Any) -> str:
    """A numpy or pandas dtype (or a Python type: ``float``, ``str``) as a DuckDB
    type name; any other text is taken as a DuckDB type name already."""
    if isinstance(dtype, str):
        return _SQL_TYPES.get(dtype.lower(), dtype)
    if dtype is str:
        return "VARCHAR"
    try:
        import numpy as np

        return _SQL_TYPES.get(np.dtype(dtype).name, str(dtype))
    except TypeError:
        return _SQL_TYPES.get(str(dtype).lower(), str(dtype))


def _path_literal(path: str | os.PathLike) -> str:
    return _literal(os.fspath(path))


def sql(query: str, **options: Any):
    """Runs a SQL query over table files and returns its rows as a
    ``pyarrow.Table``. ``options`` are the job's (``memory_limit="1GiB"``,
    ``threads=2``, ...); ``executor=bw.DaskExecutor(client)`` runs it on Dask
    workers, as ``Frame.compute`` does."""
    import pyarrow as pa

    if options.get("executor") is not None:
        return Frame(query).compute(**options)
    options.pop("executor", None)

    _, data = _blockwise.sql_compute(query, _flags(options))
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


class Column:
    """An expression over a frame's columns: arithmetic, comparisons, ``&``,
    ``|``, ``~``, and methods; used to filter, assign and aggregate."""

    def __init__(self, frame: "Frame", sql_text: str, name: str | None = None):
        self._frame = frame
        self._sql = sql_text
        self._name = name

    def __repr__(self) -> str:
        return f"Column({self._sql})"

    def __bool__(self):
        raise TypeError(
            "a frame column has no single truth value: combine conditions with & and |, "
            "not `and` and `or`"
        )

    def _binary(self, op: str, other: Any, reverse: bool = False) -> "Column":
        a, b = self._sql, _literal(other)
        if reverse:
            a, b = b, a
        return Column(self._frame, f"({a} {op} {b})")

    def __add__(self, o):
        return self._binary("+", o)

    def __radd__(self, o):
        return self._binary("+", o, True)

    def __sub__(self, o):
        return self._binary("-", o)

    def __rsub__(self, o):
        return self._binary("-", o, True)

    def __mul__(self, o):
        return self._binary("*", o)

    def __rmul__(self, o):
        return self._binary("*", o, True)

    def __truediv__(self, o):
        return self._binary("/", o)

    def __rtruediv__(self, o):
        return self._binary("/", o, True)

    def __floordiv__(self, o):
        return Column(self._frame, f"floor({self._sql} / {_literal(o)})")

    def __mod__(self, o):
        return self._binary("%", o)

    def __pow__(self, o):
        return Column(self._frame, f"power({self._sql}, {_literal(o)})")

    def __neg__(self):
        return Column(self._frame, f"(-{self._sql})")

    def __abs__(self):
        return Column(self._frame, f"abs({self._sql})")

    def __eq__(self, o):  # type: ignore[override]
        if o is None:
            return self.isna()
        return self._binary("=", o)

    def __ne__(self, o):  # type: ignore[override]
        if o is None:
            return self.notna()
        return self._binary("<>", o)

    def __lt__(self, o):
        return self._binary("<", o)

    def __le__(self, o):
        return self._binary("<=", o)

    def __gt__(self, o):
        return self._binary(">", o)

    def __ge__(self, o):
        return self._binary(">=", o)

    def __and__(self, o):
        return self._binary("AND", o)

    def __or__(self, o):
        return self._binary("OR", o)

    def __invert__(self):
        return Column(self._frame, f"(NOT {self._sql})")

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Any]) -> "Column":
        """Whether each value is one of ``values`` (SQL ``IN``)."""
        values = list(values)
        if not values:
            return Column(self._frame, "FALSE")
        return Column(self._frame, f"({self._sql} IN ({', '.join(_literal(v) for v in values)}))")

    def isna(self) -> "Column":
        """Whether each value is NULL (pandas' NA)."""
        return Column(self._frame, f"({self._sql} IS NULL)")

    isnull = is_null = isna

    def notna(self) -> "Column":
        """Whether each value is not NULL."""
        return Column(self._frame, f"({self._sql} IS NOT NULL)")

    notnull = is_not_null = notna

    def between(self, low: Any, high: Any) -> "Column":
        """Whether each value is from ``low`` to ``high``, both included."""
        return Column(self._frame, f"({self._sql} BETWEEN {_literal(low)} AND {_literal(high)})")

    def fillna(self, value: Any) -> "Column":
        """The values with NULLs replaced by ``value`` (``coalesce``)."""
        return Column(self._frame, f"coalesce({self._sql}, {_literal(value)})")

    fill_null = fillna

    def astype(self, dtype: Any) -> "Column":
        """The column cast to ``dtype``: a numpy or pandas dtype (``"int64"``,
        ``float``, ``"string"``) or a DuckDB type name (``"DOUBLE"``)."""
        return Column(self._frame, f"CAST({self._sql} AS {_sql_type(dtype)})")

    def round(self, decimals: int = 0) -> "Column":
        """The values rounded to ``decimals`` places."""
        return Column(self._frame, f"round({self._sql}, {int(decimals)})")

    @property
    def str(self) -> "_Strings":
        """String methods (pandas' ``.str``): ``contains``, ``lower``, ``slice``, ..."""
        return _Strings(self)

    @property
    def dt(self) -> "_Dates":
        """Date parts (pandas' ``.dt``): ``year``, ``month``, ``dayofweek``, ..."""
        return _Dates(self)

    def _aggregate(self, func: str, raw: bool = False) -> Any:
        expr = func if raw else f"{func}({self._sql})"
        frame = self._frame._wrap(f"SELECT {expr} AS x FROM ({self._frame._query}) AS t")
        return frame.compute().column(0)[0].as_py()

    def sum(self):
        """The sum of the non-NULL values, computed now."""
        return self._aggregate("sum")

    def mean(self):
        """The mean of the non-NULL values, computed now."""
        return self._aggregate("avg")

    def min(self):
        """The smallest value, computed now."""
        return self._aggregate("min")

    def max(self):
        """The largest value, computed now."""
        return self._aggregate("max")

    def count(self):
        """The number of non-NULL values, computed now."""
        return self._aggregate("count")

    def std(self):
        """The sample standard deviation (ddof=1), computed now."""
        return self._aggregate("stddev_samp")

    def var(self):
        """The sample variance (ddof=1), computed now."""
        return self._aggregate("var_samp")

    def median(self):
        """The median (interpolated between the middle two values), computed now."""
        return self._aggregate("median")

    def quantile(self, q: float | Iterable[float] = 0.5):
        """pandas' ``Series.quantile`` (linear interpolation: ``quantile_cont``):
        a number for one ``q``, a ``pandas.Series`` indexed by ``q`` for a list."""
        if isinstance(q, (int, float)):
            return self._aggregate(f"quantile_cont({self._sql}, {_quantile(q)})", raw=True)
        qs = [_quantile(x) for x in q]
        items = ", ".join(
            f"quantile_cont({self._sql}, {x}) AS {_quote_name(str(i))}" for i, x in enumerate(qs)
        )
        row = self._frame._wrap(f"SELECT {items} FROM ({self._frame._query}) AS t").compute()
        import pandas as pd

        return pd.Series([c[0].as_py() for c in row.columns], index=qs, name=self._name)

    def any(self):
        """Whether any value is true (non-zero), NULLs left out; ``False`` when there
        is none, as pandas."""
        return self._aggregate(f"coalesce(bool_or(CAST({self._sql} AS BOOLEAN)), FALSE)", raw=True)

    def all(self):
        """Whether every value is true (non-zero), NULLs left out; ``True`` when there
        is none, as pandas."""
        return self._aggregate(f"coalesce(bool_and(CAST({self._sql} AS BOOLEAN)), TRUE)", raw=True)

    def corr(self, other: "Column", method: str = "pearson"):
        """Pearson's correlation with ``other``, a column of the same frame, over
        the rows where both are not NULL (pandas' ``Series.corr``)."""
        if method != "pearson":
            raise ValueError(f"corr: method {method!r}; only 'pearson' is computed")
        return self._aggregate(f"corr({self._sql}, {self._same_frame(other, 'corr')})", raw=True)

    def cov(self, other: "Column", ddof: int = 1):
        """The covariance with ``other``, a column of the same frame, over the rows
        where both are not NULL; ``ddof=1`` (pandas' default) is the sample one."""
        funcs = {1: "covar_samp", 0: "covar_pop"}
        if ddof not in funcs:
            raise ValueError(f"cov: ddof={ddof!r}; ddof is 1 (sample) or 0 (population)")
        return self._aggregate(
            f"{funcs[ddof]}({self._sql}, {self._same_frame(other, 'cov')})", raw=True
        )

    def _same_frame(self, other: Any, what: str) -> str:
        if not isinstance(other, Column):
            raise TypeError(f"{what}: the other column is a column of the frame, not {other!r}")
        if other._frame._query != self._frame._query:
            raise ValueError(f"{what}: both columns must be of the same frame")
        return other._sql

    def nunique(self):
        """The number of distinct non-NULL values, computed now."""
        frame = self._frame._wrap(
            f"SELECT count(DISTINCT {self._sql}) AS x FROM ({self._frame._query}) AS t"
        )
        return frame.compute().column(0)[0].as_py()

    def compute(self):
        """The column's values, as a ``pyarrow.ChunkedArray``."""
        name = self._name or "value"
        return self._frame._wrap(
            f"SELECT {self._sql} AS {_quote_name(name)} FROM ({self._frame._query}) AS t"
        ).compute().column(0)


class _Strings:
    def __init__(self, col: Column):
        self._c = col

    def _call(self, func: str, *args: Any) -> Column:
        rest = "".join(", " + _literal(a) for a in args)
        return Column(self._c._frame, f"{func}({self._c._sql}{rest})")

    def contains(self, pat: str, regex: bool = True) -> Column:
        """Whether each string matches ``pat`` (a regular expression unless ``regex=False``)."""
        return self._call("regexp_matches", pat) if regex else self._call("contains", pat)

    def startswith(self, prefix: str) -> Column:
        """Whether each string starts with ``prefix``."""
        return self._call("starts_with", prefix)

    def endswith(self, suffix: str) -> Column:
        """Whether each string ends with ``suffix``."""
        return self._call("ends_with", suffix)

    def lower(self) -> Column:
        """The strings in lower case."""
        return self._call("lower")

    def upper(self) -> Column:
        """The strings in upper case."""
        return self._call("upper")

    def len(self) -> Column:
        """The strings' lengths in characters."""
        return self._call("length")

    def strip(self) -> Column:
        """The strings without leading and trailing spaces."""
        return self._call("trim")

    def replace(self, old: str, new: str) -> Column:
        """The strings with every ``old`` replaced by ``new``."""
        return self._call("replace", old, new)

    def slice(self, start: int = 0, stop: int | None = None) -> Column:
        """The characters from ``start`` to ``stop`` (Python's slice, 0-based)."""
        if stop is None:
            return self._call("substr", start + 1)
        return self._call("substr", start + 1, max(stop - start, 0))


class _Dates:
    def __init__(self, col: Column):
        self._c = col

    def _part(self, func: str) -> Column:
        return Column(self._c._frame, f"{func}({self._c._sql})")

    @property
    def year(self):
        """The year."""
        return self._part("year")

    @property
    def month(self):
        """The month, 1 to 12."""
        return self._part("month")

    @property
    def day(self):
        """The day of the month."""
        return self._part("day")

    @property
    def hour(self):
        """The hour."""
        return self._part("hour")

    @property
    def minute(self):
        """The minute."""
        return self._part("minute")

    @property
    def second(self):
        """The second."""
        return self._part("second")

    @property
    def dayofweek(self):
        # pandas: Monday=0; DuckDB's isodow: Monday=1.
        """The day of the week, Monday 0 to Sunday 6 (pandas')."""
        return Column(self._c._frame, f"(isodow({self._c._sql}) - 1)")

    @property
    def dayofyear(self):
        """The day of the year, from 1."""
        return self._part("dayofyear")


# pandas' aggregation names and the SQL functions they are.
_AGGREGATES = {
    "sum": "sum", "mean": "avg", "count": "count", "min": "min", "max": "max",
    "std": "stddev_samp", "var": "var_samp", "median": "median", "any": "bool_or",
    "all": "bool_and", "nunique": "count_distinct", "size": "count_star",
    "first": "first", "last": "last",
}


def _quantile(q: Any) -> float:
    """``q`` as a quantile, refused unless a number from 0 to 1."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 1:
        raise ValueError(f"quantile: q must be a number from 0 to 1, not {q!r}")
    return float(q)


def _aggregate_sql(func: str, column: str | None) -> str:
    try:
        sql_func = _AGGREGATES[func]
    except KeyError:
        raise ValueError(
            f"unknown aggregation {func!r}; the aggregations are {', '.join(_AGGREGATES)}"
        ) from None
    if sql_func == "count_star":
        return "count(*)"
    if column is None:
        raise ValueError(f"{func} needs a column")
    if sql_func == "count_distinct":
        return f"count(DISTINCT {_quote_name(column)})"
    if sql_func in ("first", "last"):
        # pandas' first and last skip NULLs; in the file's order.
        return f"{sql_func}({_quote_name(column)}) IGNORE NULLS"
    if sql_func in ("bool_or", "bool_and"):
        # pandas' truth of numbers: non-zero.
        return f"{sql_func}(CAST({_quote_name(column)} AS BOOLEAN))"
    return f"{sql_func}({_quote_name(column)})"


class GroupBy:
    """A frame grouped by key columns: ``agg``, and pandas' aggregation methods."""

    def __init__(self, frame: "Frame", keys: list[str], column: str | None = None):
        self._frame = frame
        self._keys = keys
        self._column = column

    def __getitem__(self, column: str) -> "GroupBy":
        return GroupBy(self._frame, self._keys, column)

    def __getattr__(self, name: str) -> "GroupBy":
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._frame.columns:
            return GroupBy(self._frame, self._keys, name)
        raise AttributeError(name)

    def agg(self, spec: Any = None, **named: Any) -> "Frame":
        """``agg({"v1": "sum", "v3": ["mean", "max"]})``, ``agg("sum")`` on a
        selected column, or ``agg(total=("v1", "sum"))``."""
        items: list[tuple[str, str]] = []  # (sql, output name)
        if isinstance(spec, str):
            if self._column is None:
                columns = [c for c in self._frame.columns if c not in self._keys]
            else:
                columns = [self._column]
            items = [(_aggregate_sql(spec, c), c) for c in columns]
        elif isinstance(spec, dict):
            for column, funcs in spec.items():
                funcs = [funcs] if isinstance(funcs, str) else list(funcs)
                for f in funcs:
                    name = column if len(funcs) == 1 else f"{column}_{f}"
                    items.append((_aggregate_sql(f, column), name))
        for name, value in named.items():
            column, func = value
            items.append((_aggregate_sql(func, column), name))
        if not items:
            raise ValueError("agg: give the aggregations, e.g. agg({'v1': 'sum'})")
        keys = ", ".join(_quote_name(k) for k in self._keys)
        select = ", ".join([keys] + [f"{s} AS {_quote_name(n)}" for s, n in items])
        return self._frame._wrap(
            f"SELECT {select} FROM ({self._frame._query}) AS t GROUP BY {keys} ORDER BY {keys}"
        )

    def _one(self, func: str) -> "Frame":
        if func == "size":
            keys = ", ".join(_quote_name(k) for k in self._keys)
            return self._frame._wrap(
                f"SELECT {keys}, count(*) AS size FROM ({self._frame._query}) AS t "
                f"GROUP BY {keys} ORDER BY {keys}"
            )
        return self.agg(func)

    def sum(self):
        """The sum of each group's values, a frame sorted by the keys."""
        return self._one("sum")

    def mean(self):
        """The mean of each group's values, a frame sorted by the keys."""
        return self._one("mean")

    def count(self):
        """The non-NULL values of each group, a frame sorted by the keys."""
        return self._one("count")

    def min(self):
        """The smallest value of each group, a frame sorted by the keys."""
        return self._one("min")

    def max(self):
        """The largest value of each group, a frame sorted by the keys."""
        return self._one("max")

    def std(self):
        """The sample standard deviation of each group, a frame sorted by the keys."""
        return self._one("std")

    def var(self):
        """The sample variance of each group, a frame sorted by the keys."""
        return self._one("var")

    def median(self):
        """The median of each group, a frame sorted by the keys."""
        return self._one("median")

    def nunique(self):
        """The distinct non-NULL values of each group, a frame sorted by the keys."""
        return self._one("nunique")

    def size(self):
        """The rows of each group (column ``size``), a frame sorted by the keys."""
        return self._one("size")

    def any(self):
        """Whether any value of each group is true (non-zero), NULLs left out."""
        return self._one("any")

    def first(self):
        """Each group's first non-NULL value in the file's order, a frame sorted by
        the keys."""
        return self._one("first")

    def last(self):
        """Each group's last non-NULL value in the file's order, a frame sorted by
        the keys."""
        return self._one("last")

    def all(self):
        """Whether every value of each group is true (non-zero), NULLs left out."""
        return self._one("all")

    def quantile(self, q: float = 0.5) -> "Frame":
        """The ``q`` quantile of each group (pandas' default linear interpolation:
        ``quantile_cont``), of the selected column or of every other column."""
        q = _quantile(q)
        columns = self._value_columns()
        items = [(f"quantile_cont({_quote_name(c)}, {q})", c) for c in columns]
        return self._grouped(items)

    def _value_columns(self) -> list[str]:
        if self._column is not None:
            return [self._column]
        return [c for c in self._frame.columns if c not in self._keys]

    def _grouped(self, items: list[tuple[str, str]]) -> "Frame":
        keys = ", ".join(_quote_name(k) for k in self._keys)
        select = ", ".join([keys] + [f"{e} AS {_quote_name(n)}" for e, n in items])
        return self._frame._wrap(
            f"SELECT {select} FROM ({self._frame._query}) AS t GROUP BY {keys} ORDER BY {keys}"
        )

    def nlargest(self, n: int, column: str | None = None) -> "Frame":
        """The ``n`` rows with the largest ``column`` in each group (a top k per
        group: never a sort of everything)."""
        return self._top(n, column, "DESC")

    def nsmallest(self, n: int, column: str | None = None) -> "Frame":
        """The ``n`` rows with the smallest ``column`` in each group (a top k per
        group: never a sort of everything)."""
        return self._top(n, column, "ASC")

    def _top(self, n: int, column: str | None, order: str) -> "Frame":
        column = column or self._column
        if column is None:
            raise ValueError("nlargest: name the column")
        keys = ", ".join(_quote_name(k) for k in self._keys)
        cols = ", ".join(_quote_name(c) for c in self._frame.columns)
        return self._frame._wrap(
            f"SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} "
            f"ORDER BY {_quote_name(column)} {order}) AS \"#rank\" FROM ({self._frame._query}) AS t) "
            f"AS r WHERE \"#rank\" <= {int(n)}"
        )


class Frame:
    """A lazy table: a query over files, computed on demand."""

    def __init__(self, query: str, **options: Any):
        self._query = query
        self._options = options
        self._info: dict | None = None
        # What the query's files need kept alive (from_arrow's temporary
        # directory): shared with every frame derived from this one.
        self._keep: list[Any] = []

    def _describe(self) -> dict:
        if self._info is None:
            self._info = json.loads(_blockwise.sql_info(self._query, _flags(self._options)))
        return self._info

    @property
    def columns(self) -> list[str]:
        """The column names, read from the files' metadata (nothing is computed)."""
        return [c for c, _ in self._describe()["columns"]]

    @property
    def dtypes(self) -> dict[str, str]:
        """Each column's type (blockwise's names: ``int64``, ``utf8``, ...)."""
        return {c: t for c, t in self._describe()["columns"]}

    @property
    def npartitions(self) -> int:
        """The partitions the first step of the plan reads."""
        return self._describe()["partitions"]

    def __repr__(self) -> str:
        info = self._describe()
        cols = ", ".join(f"{c}: {t}" for c, t in info["columns"])
        return (
            f"blockwise.Frame<{len(info['columns'])} columns ({cols}); "
            f"{info['partitions']} partitions, {info['tasks']} tasks>"
        )

    def _wrap(self, query: str) -> "Frame":
        """A frame of ``query`` over this one: its options, and what it keeps alive."""
        frame = Frame(query, **self._options)
        frame._keep = self._keep
        return frame

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self.columns:
                raise KeyError(key)
            return Column(self, _quote_name(key), key)
        if isinstance(key, Column):
            return self._wrap(f"SELECT * FROM ({self._query}) AS t WHERE {key._sql}")
        if isinstance(key, (list, tuple)):
            missing = [k for k in key if k not in self.columns]
            if missing:
                raise KeyError(f"no columns {missing}; the columns are {self.columns}")
            cols = ", ".join(_quote_name(k) for k in key)
            return self._wrap(f"SELECT {cols} FROM ({self._query}) AS t")
        raise TypeError(f"a frame is indexed by a column name, a list of names or a condition, not {key!r}")

    def __getattr__(self, name: str) -> Column:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.columns:
            return Column(self, _quote_name(name), name)
        raise AttributeError(f"the frame has no column {name!r}; its columns are {self.columns}")

    def filter(self, condition: Column) -> "Frame":
        """The rows where ``condition`` holds (``df[condition]``)."""
        return self[condition]

    def select(self, *columns: str) -> "Frame":
        """Only ``columns``, in that order."""
        return self[list(columns)]

    def assign(self, **columns: Any) -> "Frame":
        """New or replaced columns, computed from the frame's."""
        items = []
        for c in self.columns:
            if c in columns:
                items.append(f"{_literal(columns[c])} AS {_quote_name(c)}")
            else:
                items.append(_quote_name(c))
        for name, value in columns.items():
            if name not in self.columns:
                items.append(f"{_literal(value)} AS {_quote_name(name)}")
        return self._wrap(f"SELECT {', '.join(items)} FROM ({self._query}) AS t")

    with_columns = assign

    def rename(self, columns: dict[str, str]) -> "Frame":
        """The columns renamed by the mapping ``columns``."""
        items = [
            f"{_quote_name(c)} AS {_quote_name(columns.get(c, c))}" for c in self.columns
        ]
        return self._wrap(f"SELECT {', '.join(items)} FROM ({self._query}) AS t")

    def drop(self, columns: str | list[str]) -> "Frame":
        """The frame without ``columns``."""
        drop = {columns} if isinstance(columns, str) else set(columns)
        return self[[c for c in self.columns if c not in drop]]

    def groupby(self, by: str | list[str]) -> GroupBy:
        """The frame grouped by the key columns ``by``."""
        keys = [by] if isinstance(by, str) else list(by)
        missing = [k for k in keys if k not in self.columns]
        if missing:
            raise KeyError(f"no columns {missing}; the columns are {self.columns}")
        return GroupBy(self, keys)

    def sort_values(self, by: str | list[str], ascending: bool | list[bool] = True,
                    na_position: str = "last") -> "Frame":
        """The rows sorted by ``by`` (an external sort: larger than memory is fine)."""
        keys = [by] if isinstance(by, str) else list(by)
        asc = [ascending] * len(keys) if isinstance(ascending, bool) else list(ascending)
        nulls = "NULLS FIRST" if na_position == "first" else "NULLS LAST"
        order = ", ".join(
            f"{_quote_name(k)} {'ASC' if a else 'DESC'} {nulls}" for k, a in zip(keys, asc)
        )
        return self._wrap(f"SELECT * FROM ({self._query}) AS t ORDER BY {order}")

    def nlargest(self, n: int, columns: str | list[str]) -> "Frame":
        """The ``n`` rows with the largest ``columns`` (a top k, not a sort)."""
        cols = [columns] if isinstance(columns, str) else list(columns)
        order = ", ".join(f"{_quote_name(c)} DESC" for c in cols)
        return self._wrap(f"SELECT * FROM ({self._query}) AS t ORDER BY {order} LIMIT {int(n)}")

    def nsmallest(self, n: int, columns: str | list[str]) -> "Frame":
        """The ``n`` rows with the smallest ``columns`` (a top k, not a sort)."""
        cols = [columns] if isinstance(columns, str) else list(columns)
        order = ", ".join(f"{_quote_name(c)} ASC" for c in cols)
        return self._wrap(f"SELECT * FROM ({self._query}) AS t ORDER BY {order} LIMIT {int(n)}")

    def drop_duplicates(self, subset: str | list[str] | None = None,
                        keep: str | bool = "first") -> "Frame":
        """The rows without duplicates, as pandas' ``drop_duplicates``, except
        that the rows' order is not kept (as SQL's ``DISTINCT``).

        ``subset`` names the columns compared (all by default). ``keep="first"``
        keeps the first row of each set of duplicates in the file's order,
        ``"last"`` the last, ``False`` drops every row that has a duplicate. The
        file's order is lost after a sort or a grouping: ``first`` and ``last``
        are refused there."""
        if keep not in ("first", "last", False):
            raise ValueError(f"drop_duplicates: keep is 'first', 'last' or False, not {keep!r}")
        columns = self.columns
        keys = columns if subset is None else [subset] if isinstance(subset, str) else list(subset)
        missing = [k for k in keys if k not in columns]
        if missing:
            raise KeyError(f"no columns {missing}; the columns are {columns}")
        group = ", ".join(_quote_name(k) for k in keys)
        if keep is not False:
            if set(keys) == set(columns):
                # The whole row as the key: every duplicate is the same row.
                return self._wrap(f"SELECT DISTINCT * FROM ({self._query}) AS t")
            # The other values of each key's first (last) row, NULLs included.
            items = [
                _quote_name(c) if c in keys else f"{keep}({_quote_name(c)}) AS {_quote_name(c)}"
                for c in columns
            ]
            return self._wrap(
                f"SELECT {', '.join(items)} FROM ({self._query}) AS t GROUP BY {group}"
            )
        # Keys seen once: their group's one row, its other values as min() of one.
        items = [
            _quote_name(c) if c in keys else f"min({_quote_name(c)}) AS {_quote_name(c)}"
            for c in columns
        ]
        return self._wrap(
            f"SELECT {', '.join(items)} FROM ({self._query}) AS t GROUP BY {group} "
            f"HAVING count(*) = 1"
        )

    # Whole-frame reductions: (SQL function, whether it needs numbers).
    _REDUCTIONS = {
        "sum": ("sum", True), "mean": ("avg", True), "std": ("stddev_samp", True),
        "var": ("var_samp", True), "median": ("median", True), "min": ("min", False),
        "max": ("max", False), "count": ("count", False),
    }

    def _reduce(self, name: str, numeric_only: bool):
        """One value a column, as pandas' ``DataFrame.sum()`` and its kin: a
        ``pandas.Series`` indexed by the column names."""
        import pandas as pd

        func, needs_numbers = self._REDUCTIONS[name]
        numeric = ("int", "uint", "float", "double", "decimal")
        items, names, refused = [], [], []
        for c, t in self.dtypes.items():
            q = _quote_name(c)
            if t == "bool":
                if name in ("min", "max"):
                    expr = f"{'bool_and' if name == 'min' else 'bool_or'}({q})"
                elif name == "count":
                    expr = f"count({q})"
                else:  # pandas counts True as 1
                    expr = f"{func}(CAST({q} AS BIGINT))"
            elif needs_numbers and not t.startswith(numeric):
                if numeric_only:
                    continue
                refused.append(f"{c} ({t})")
                continue
            elif numeric_only and not t.startswith(numeric):
                continue
            else:
                expr = f"{func}({q})"
            items.append(f"{expr} AS {_quote_name(str(len(names)))}")
            names.append(c)
        if refused:
            raise TypeError(
                f"{name}() of the non-numeric columns {', '.join(refused)}: pass "
                "numeric_only=True to leave them out, or select the columns first"
            )
        if not items:
            return pd.Series([], dtype="float64")
        row = self._wrap(f"SELECT {', '.join(items)} FROM ({self._query}) AS t").compute()
        return pd.Series([col[0].as_py() for col in row.columns], index=names)

    def sum(self, numeric_only: bool = False):
        """The sum of each column, as a ``pandas.Series`` indexed by column name
        (pandas' ``DataFrame.sum()``); NULLs are left out. Non-numeric columns
        are refused unless ``numeric_only=True`` leaves them out."""
        return self._reduce("sum", numeric_only)

    def mean(self, numeric_only: bool = False):
        """The mean of each column, as ``sum()`` returns it."""
        return self._reduce("mean", numeric_only)

    def std(self, numeric_only: bool = False):
        """The sample standard deviation (ddof=1) of each column, as ``sum()``."""
        return self._reduce("std", numeric_only)

    def var(self, numeric_only: bool = False):
        """The sample variance (ddof=1) of each column, as ``sum()``."""
        return self._reduce("var", numeric_only)

    def median(self, numeric_only: bool = False):
        """The median of each column, as ``sum()``."""
        return self._reduce("median", numeric_only)

    def min(self, numeric_only: bool = False):
        """The smallest value of each column (strings and dates too), as a
        ``pandas.Series`` indexed by column name."""
        return self._reduce("min", numeric_only)

    def max(self, numeric_only: bool = False):
        """The largest value of each column, as ``min()``."""
        return self._reduce("max", numeric_only)

    def count(self, numeric_only: bool = False):
        """The non-NULL values of each column, as a ``pandas.Series`` of ints."""
        return self._reduce("count", numeric_only)

    def value_counts(self, column: str) -> "Frame":
        """How often each value of ``column`` occurs, most frequent first."""
        c = _quote_name(column)
        return self._wrap(
            f"SELECT {c}, count(*) AS count FROM ({self._query}) AS t GROUP BY {c} "
            f"ORDER BY count DESC, {c}"
        )

    def describe(self):
        """count, mean, std, min, quartiles and max of each numeric column, as a
        ``pyarrow.Table`` with a ``statistic`` column (as pandas' ``describe``)."""
        import pyarrow as pa

        numeric = [
            c for c, t in self.dtypes.items()
            if t.startswith(("int", "uint", "float", "double", "decimal"))
        ]
        if not numeric:
            raise ValueError("describe: the frame has no numeric column")
        stats = [("count", "count"), ("mean", "avg"), ("std", "stddev_samp"), ("min", "min"),
                 ("25%", "q25"), ("50%", "median"), ("75%", "q75"), ("max", "max")]
        items = []
        for c in numeric:
            q = _quote_name(c)
            for label, f in stats:
                if f == "q25":
                    e = f"quantile_cont({q}, 0.25)"
                elif f == "q75":
                    e = f"quantile_cont({q}, 0.75)"
                else:
                    e = f"{f}({q})"
                items.append(f"CAST({e} AS DOUBLE) AS {_quote_name(c + '|' + label)}")
        row = self._wrap(f"SELECT {', '.join(items)} FROM ({self._query}) AS t").compute()
        columns = {"statistic": [label for label, _ in stats]}
        for c in numeric:
            columns[c] = [row.column(f"{c}|{label}")[0].as_py() for label, _ in stats]
        return pa.table(columns)

    def tail(self, n: int = 5):
        """The last ``n`` rows in the frame's order (the file's, for a frame that
        does not sort), as a ``pyarrow.Table``. It counts the rows first, then
        skips all but the last ``n``: two passes over the data, the second read
        in order by one task. A negative ``n`` gives every row but the first
        ``-n``, as pandas. On a sorted frame the rows skipped are sorted too, in
        one task's memory: ``sort_values`` the other way round and ``head(n)``
        cost only ``n`` rows a partition."""
        n = int(n)
        if n < 0:
            return self._wrap(f"SELECT * FROM ({self._query}) AS t OFFSET {-n}").compute()
        skip = max(len(self) - n, 0)
        return self._wrap(
            f"SELECT * FROM ({self._query}) AS t LIMIT {n} OFFSET {skip}"
        ).compute()

    def sample(self, n: int | None = None, frac: float | None = None,
               replace: bool = False, random_state: int | None = None) -> "Frame":
        """A random sample of the rows, as pandas' ``sample``: ``n`` rows (all when
        there are fewer; 1 when neither ``n`` nor ``frac`` is given), in random
        order, or each row kept with probability ``frac`` (about that fraction,
        in the frame's order, as Dask's ``sample(frac=...)``). The same
        ``random_state`` gives the same rows, whatever the threads or memory;
        without it each call draws another seed. Sampling with replacement is not
        built, and the file's order it draws from is lost after a sort or a
        grouping (refused there)."""
        if replace:
            raise NotImplementedError("sample(replace=True) is not supported")
        if n is not None and frac is not None:
            raise ValueError("sample: give n or frac, not both")
        if random_state is None:
            import random
            random_state = random.getrandbits(63)
        if isinstance(random_state, bool) or not isinstance(random_state, int) \
                or not -2**63 <= random_state < 2**64:
            raise ValueError(f"sample: random_state must be a 64-bit integer, not {random_state!r}")
        if frac is not None:
            if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
                raise ValueError(f"sample: frac must be a number from 0 to 1, not {frac!r}")
            size = f"{float(frac) * 100!r} PERCENT"
        else:
            n = 1 if n is None else n
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"sample: n must be an integer of at least 0, not {n!r}")
            size = f"{n} ROWS"
        # SQL's seed is written unsigned: the same 64 bits.
        seed = random_state % 2**64
        return self._wrap(
            f"SELECT * FROM ({self._query}) AS t TABLESAMPLE ({size}) REPEATABLE ({seed})"
        )

    def head(self, n: int = 5):
        """The first ``n`` rows, as a ``pyarrow.Table`` (only they are read when the
        query allows it)."""
        return self._wrap(f"SELECT * FROM ({self._query}) AS t LIMIT {int(n)}").compute()

    def __len__(self) -> int:
        return int(
            self._wrap(f"SELECT count(*) AS n FROM ({self._query}) AS t").compute().column(0)[0].as_py()
        )

    def compute(self, **options: Any):
        """The rows, as a ``pyarrow.Table`` (it must fit half the memory limit;
        write larger results with ``to_parquet``).

        ``executor=bw.DaskExecutor(client)`` runs the query's plan on a Dask
        cluster instead: the rows are written to an Arrow IPC file in a temporary
        directory (which the workers must see, as for arrays: one machine or a
        shared file system), read back, and the directory removed. ``options``:
        job flags (``memory_limit``, ``threads``, ...); on an executor they size
        the plan, and each worker runs its tasks under its own memory limit."""
        merged = dict(self._options)
        merged.update(options)
        executor = merged.pop("executor", None)
        if executor is not None:
            return self._compute_on(executor, merged)
        return sql(self._query, **merged)

    collect = compute

    def _compute_on(self, executor: Any, options: dict[str, Any]):
        """The rows computed by ``executor`` into a temporary Arrow IPC file, read
        back into memory before the file is removed."""
        import pyarrow as pa

        with tempfile.TemporaryDirectory(prefix="blockwise-frame-",
                                         ignore_cleanup_errors=True) as d:
            out = os.path.join(d, "result.arrow")
            self._run_on(executor, out, "ipc", options)
            with pa.OSFile(out, "rb") as f:
                # Read, not mapped: the file goes with the directory.
                return pa.ipc.open_file(f).read_all()

    def _run_on(self, executor: Any, path: str | os.PathLike, to: str | None,
                options: dict[str, Any]) -> dict:
        """Plans writing the rows to ``path`` and runs the plan on ``executor``;
        returns what the executor's ``run`` returns."""
        from . import Plan

        options = dict(options)
        options.pop("progress", None)  # an executor reports its own progress
        if to is not None:
            options["to"] = to
        text = _blockwise.plan_sql(self._query, os.fspath(path), _flags(options))
        return executor.run(Plan(text))

    def to_pandas(self, **options: Any):
        """The rows as a ``pandas.DataFrame`` (``compute()``, then pyarrow's
        conversion); ``options`` as for ``compute``."""
        return self.compute(**options).to_pandas()

    def _write(self, path: str | os.PathLike, to: str | None, options: dict[str, Any]) -> dict:
        merged = dict(self._options)
        merged.update(options)
        executor = merged.pop("executor", None)
        if executor is not None:
            return self._run_on(executor, path, to, merged)
        if to is not None:
            merged["to"] = to
        stats = _blockwise.sql_write(self._query, os.fspath(path), _flags(merged))
        return json.loads(stats)

    def to_parquet(self, path: str | os.PathLike, **options: Any) -> dict:
        """Writes the rows to a Parquet file (or a directory of parts with
        ``to="parquet-dir"``), atomically; returns the job's statistics.
        ``options``: ``compression``, ``overwrite`` and job flags;
        ``executor=bw.DaskExecutor(client)`` runs the plan on Dask workers (which
        must see ``path``) and returns the executor's report instead."""
        return self._write(path, None, options)

    def to_csv(self, path: str | os.PathLike, **options: Any) -> dict:
        """Writes the rows to a CSV file, as ``to_parquet`` does."""
        return self._write(path, "csv", options)

    def to_ipc(self, path: str | os.PathLike, **options: Any) -> dict:
        """Writes the rows to an Arrow IPC file, as ``to_parquet`` does."""
        return self._write(path, "ipc", options)


def read_csv(path: str | os.PathLike, delimiter: str = ",", header: bool = True,
             blocksize: int | str | None = None, dtypes: dict[str, Any] | None = None,
             **options: Any) -> Frame:
    """A CSV file as a lazy frame: ``read_csv('path', ...)`` in SQL.

    Types are inferred from a sample of rows; ``dtypes={"v1": "float64"}``
    overrides them by column name (numpy or pandas dtypes, Python types, or
    DuckDB type names such as ``"DOUBLE"``; ``dtype=`` is taken too, as pandas
    spells it). A value that does not parse as its column's type fails the
    computation with an error naming the file, line, column, value and type.
    ``blocksize`` (bytes, or a size such as ``"64MiB"``) is the size of the
    partitions the file is cut into (64 MiB by default; a file is cut into at
    most 4096). With ``header=False`` the first row is data and the columns are
    named ``column0``, ``column1``, ... as DuckDB names them. ``options``: job
    flags (``memory_limit``, ``threads``, ...)."""
    if "dtype" in options:
        if dtypes is not None:
            raise TypeError("read_csv: give dtypes or dtype, not both")
        dtypes = options.pop("dtype")
    args = [_path_literal(path), f"delim={_literal(delimiter)}",
            f"header={'true' if header else 'false'}"]
    if blocksize is not None:
        if isinstance(blocksize, bool) or not isinstance(blocksize, (int, str)):
            raise TypeError(
                f"read_csv: blocksize is bytes or a size such as '64MiB', not {blocksize!r}"
            )
        args.append(f"blocksize={_literal(blocksize)}")
    if dtypes:
        if not isinstance(dtypes, dict):
            raise TypeError(f"read_csv: dtypes maps column names to types, not {dtypes!r}")
        items = ", ".join(
            f"{_literal(str(c))}: {_literal(_sql_type(t))}" for c, t in dtypes.items()
        )
        args.append(f"types={{{items}}}")
    return Frame(f"SELECT * FROM read_csv({', '.join(args)})", **options)


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None,
                 filters: list[tuple[str, str, Any]] | None = None, **options: Any) -> Frame:
    """A Parquet file (or a directory of parts) as a lazy frame; ``columns`` and
    ``filters`` (``[("v1", ">", 2)]``, as pyarrow's) are applied as it is read."""
    select = "*" if not columns else ", ".join(_quote_name(c) for c in columns)
    query = f"SELECT {select} FROM read_parquet({_path_literal(path)})"
    if filters:
        ops = {"=": "=", "==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
               "in": "IN", "not in": "NOT IN"}
        conds = []
        for column, op, value in filters:
            if op not in ops:
                raise ValueError(f"filter operator {op!r}; the operators are {', '.join(ops)}")
            if ops[op] in ("IN", "NOT IN"):
                vals = ", ".join(_literal(v) for v in value)
                conds.append(f"{_quote_name(column)} {ops[op]} ({vals})")
            else:
                conds.append(f"{_quote_name(column)} {ops[op]} {_literal(value)}")
        query += " WHERE " + " AND ".join(conds)
    return Frame(query, **options)


def read_ipc(path: str | os.PathLike, **options: Any) -> Frame:
    """An Arrow IPC file as a lazy frame."""
    return Frame(f"SELECT * FROM {_path_literal(path)}", **options)


# Rows a record batch of from_arrow's file holds at most: the IPC reader's
# partitions are made of whole batches.
_FROM_ARROW_BATCH_ROWS = 1 << 16


def from_arrow(data: Any, **options: Any) -> Frame:
    """A frame of in-memory Arrow data: a ``pyarrow.Table``, a ``RecordBatch``, a
    list of record batches, a ``RecordBatchReader``, or anything with
    ``__arrow_c_stream__`` (a Polars frame, a DuckDB result).

    The data is written once to an Arrow IPC file in a temporary directory
    (``tempfile``'s, or ``TMPDIR``'s), which the frame reads as it reads any
    file: so it must fit on disk, and workers of a Dask executor must see that
    directory (one machine, or a ``TMPDIR`` on a shared file system). The
    directory belongs to the frame and to every frame derived from it, and is
    removed when the last of them is garbage-collected. A stream is written batch
    by batch, never held whole. ``options``: job flags, as ``read_csv``'s."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        reader = data.to_reader(max_chunksize=_FROM_ARROW_BATCH_ROWS)
    elif isinstance(data, pa.RecordBatch):
        reader = pa.Table.from_batches([data]).to_reader(max_chunksize=_FROM_ARROW_BATCH_ROWS)
    elif isinstance(data, pa.RecordBatchReader):
        reader = data
    elif hasattr(data, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(data)
    elif isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("from_arrow: no record batch, so no schema: give a pyarrow.Table")
        if not all(isinstance(b, pa.RecordBatch) for b in data):
            kinds = sorted({type(b).__name__ for b in data})
            raise TypeError(f"from_arrow: a list of pyarrow.RecordBatch, not of {', '.join(kinds)}")
        reader = pa.Table.from_batches(list(data)).to_reader(max_chunksize=_FROM_ARROW_BATCH_ROWS)
    else:
        raise TypeError(
            "from_arrow takes a pyarrow Table, RecordBatch, list of RecordBatches, "
            f"RecordBatchReader or an object with __arrow_c_stream__, not {type(data).__name__}"
        )
    directory = tempfile.TemporaryDirectory(prefix="blockwise-frame-")
    path = os.path.join(directory.name, "data.arrow")
    try:
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    except BaseException:
        directory.cleanup()
        raise
    frame = Frame(f"SELECT * FROM read_arrow({_path_literal(path)})", **options)
    frame._keep = [directory]
    return frame


def from_pandas(df: Any, preserve_index: bool | None = None, **options: Any) -> Frame:
    """A frame of a ``pandas.DataFrame``: converted by ``pyarrow.Table.from_pandas``
    (``preserve_index`` as there: by default a RangeIndex is dropped and any
    other index becomes columns), then written as :func:`from_arrow` writes it,
    to a temporary file that lives as long as the frames using it."""
    import pyarrow as pa

    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the test environment
        raise TypeError("from_pandas needs pandas installed") from None
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_pandas takes a pandas.DataFrame, not {type(df).__name__}")
    table = pa.Table.from_pandas(df, preserve_index=preserve_index)
    # pandas' own metadata would come back on compute() and rebuild its index.
    return from_arrow(table.replace_schema_metadata(None), **options)
