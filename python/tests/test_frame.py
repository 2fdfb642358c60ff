"""Frames and SQL from Python, against DuckDB on the same files: the db-benchmark
questions through ``bw.sql`` and the pandas-style API, results as pyarrow tables."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import blockwise as bw


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A db-benchmark-like table of 5000 rows, with NULLs, as CSV and Parquet."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(3)
    n = 5000
    v1 = rng.integers(1, 6, n).astype(float)
    v1[::17] = np.nan
    t = pa.table({
        "id1": [f"id{v:03d}" for v in rng.integers(1, 11, n)],
        "id2": [f"id{v:03d}" for v in rng.integers(1, 21, n)],
        "id4": rng.integers(1, 11, n),
        "id6": rng.integers(1, 300, n),
        "v1": pa.array(v1, mask=np.isnan(v1)).cast(pa.int64()),
        "v2": rng.integers(1, 16, n),
        "v3": np.round(rng.random(n) * 100, 6),
    })
    pacsv.write_csv(t, root / "t.csv")
    pq.write_table(t, root / "t.parquet")
    return root


def rows(t: pa.Table, sort: bool = True) -> list[tuple]:
    out = [tuple(r.values()) for r in t.to_pylist()]
    return sorted(out, key=lambda r: tuple((x is None, str(x)) for x in r)) if sort else out


def same(a: list[tuple], b: list[tuple]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, float) or isinstance(v, float):
                if u is None or v is None:
                    if u is not v:
                        return False
                elif not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif u != v:
                return False
    return True


QUESTIONS = {
    "q1": "SELECT id1, sum(v1) AS v1 FROM '{f}' GROUP BY id1",
    "q2": "SELECT id1, id2, sum(v1) AS v1 FROM '{f}' GROUP BY id1, id2",
    "q3": "SELECT id6, sum(v1) AS v1, avg(v3) AS v3 FROM '{f}' GROUP BY id6",
    "q5": "SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM '{f}' GROUP BY id6",
    "q4": "SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM '{f}' GROUP BY id4",
    "q6": "SELECT id4, id2, median(v3) AS median_v3, stddev(v3) AS sd_v3 FROM '{f}' GROUP BY id4, id2",
    "q7": "SELECT id2, max(v1) - min(v2) AS range_v1_v2 FROM '{f}' GROUP BY id2",
    "q8": "SELECT id6, largest2_v3 FROM (SELECT id6, v3 AS largest2_v3, row_number() OVER "
          "(PARTITION BY id6 ORDER BY v3 DESC) AS order_v3 FROM '{f}' WHERE v3 IS NOT NULL) "
          "sub_query WHERE order_v3 <= 2",
    "q9": "SELECT id2, id4, pow(corr(v1, v2), 2) AS r2 FROM '{f}' GROUP BY id2, id4",
    "q10": "SELECT id1, id2, id4, id6, sum(v3) AS v3, count(*) AS count FROM '{f}' "
           "GROUP BY id1, id2, id4, id6",
}


@pytest.mark.parametrize("question", sorted(QUESTIONS))
@pytest.mark.parametrize("source", ["t.csv", "t.parquet"])
def test_sql_answers_the_db_benchmark_questions_as_duckdb(table, question, source):
    query = QUESTIONS[question].format(f=table / source)
    ours = bw.sql(query, memory_limit="64MiB")
    assert isinstance(ours, pa.Table)
    want = duckdb.sql(query).arrow()
    if hasattr(want, "read_all"):
        want = want.read_all()
    assert ours.column_names == want.column_names
    assert same(rows(ours), rows(want))


def test_an_ordered_query_keeps_duckdbs_order(table):
    query = f"SELECT id1, v3 FROM '{table / 't.parquet'}' WHERE v2 > 10 ORDER BY v3 DESC LIMIT 7"
    want = duckdb.sql(query).fetchall()
    assert same(rows(bw.sql(query), sort=False), want)


def test_the_pandas_api_equals_duckdb(table):
    df = bw.read_csv(table / "t.csv")
    assert df.columns == ["id1", "id2", "id4", "id6", "v1", "v2", "v3"]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_csv('{table / 't.csv'}')")

    got = df[df.v1 > 2].groupby("id1").agg({"v1": "sum"}).compute()
    want = con.execute("SELECT id1, sum(v1) FROM t WHERE v1 > 2 GROUP BY id1 ORDER BY id1").fetchall()
    assert same(rows(got, sort=False), want)

    got = df.groupby(["id1", "id4"]).v3.mean().compute()
    want = con.execute("SELECT id1, id4, avg(v3) FROM t GROUP BY id1, id4 ORDER BY 1, 2").fetchall()
    assert same(rows(got, sort=False), want)

    got = df.assign(w=df.v3 * 2 + df["v2"]).nlargest(5, "w")[["id1", "w"]].compute()
    want = con.execute("SELECT id1, v3 * 2 + v2 AS w FROM t ORDER BY w DESC LIMIT 5").fetchall()
    assert same(rows(got, sort=False), want)

    got = df[(df.id1.isin(["id001", "id002"])) & ~df.v1.isna()].sort_values(["v3"], ascending=False).head(4)
    want = con.execute(
        "SELECT * FROM t WHERE id1 IN ('id001', 'id002') AND v1 IS NOT NULL ORDER BY v3 DESC LIMIT 4"
    ).fetchall()
    assert same(rows(got, sort=False), want)

    got = df.groupby("id6").nlargest(2, "v3").compute()
    want = con.execute(
        "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY id6 ORDER BY v3 DESC) <= 2"
    ).fetchall()
    assert same(rows(got), sorted(want, key=lambda r: tuple((x is None, str(x)) for x in r)))

    assert len(df) == 5000
    assert df.v2.sum() == con.execute("SELECT sum(v2) FROM t").fetchone()[0]
    assert df.id2.nunique() == 20
    described = df.describe()
    assert described.column("statistic").to_pylist()[0] == "count"
    assert math.isclose(
        described.column("v3")[1].as_py(), con.execute("SELECT avg(v3) FROM t").fetchone()[0]
    )
    # pandas takes the result without a copy through the Arrow interface.
    assert df.head(3).to_pandas().shape == (3, 7)


def test_frames_write_files_that_duckdb_reads(table, tmp_path):
    df = bw.read_parquet(table / "t.parquet", columns=["id1", "v3"], filters=[("v3", ">", 50.0)])
    out = tmp_path / "out.parquet"
    df.groupby("id1").agg(total=("v3", "sum"), n=("v3", "size")).to_parquet(out)
    got = duckdb.sql(f"SELECT * FROM '{out}' ORDER BY id1").fetchall()
    want = duckdb.sql(
        f"SELECT id1, sum(v3), count(*) FROM '{table / 't.parquet'}' WHERE v3 > 50 GROUP BY id1 ORDER BY id1"
    ).fetchall()
    assert same(got, want)
    assert "partitions" in repr(df)


def test_bad_frames_raise_clear_errors(table):
    df = bw.read_csv(table / "t.csv")
    with pytest.raises(AttributeError, match="no column 'v9'"):
        df.v9
    with pytest.raises(KeyError):
        df[["id1", "nope"]]
    with pytest.raises(ValueError, match="unknown aggregation"):
        df.groupby("id1").agg({"v1": "total"})
    with pytest.raises(TypeError, match="truth value"):
        if df.v1 > 2:
            pass
    with pytest.raises(ValueError, match="unknown column"):
        bw.sql(f"SELECT v9 FROM '{table / 't.csv'}'")
    with pytest.raises(ValueError, match="syntax"):
        bw.sql("SELEC 1")
    with pytest.raises(FileNotFoundError):
        bw.sql("SELECT * FROM 'no/such/file.csv'")


def test_read_csv_blocksize_cuts_the_file_into_partitions(table):
    path = table / "t.csv"
    size = path.stat().st_size
    whole = bw.read_csv(path)
    assert whole.npartitions == 1
    cut = bw.read_csv(path, blocksize=size // 8)
    # Row starts every few dozen bytes: each block of size // 8 bytes holds one.
    assert cut.npartitions in (8, 9)
    assert bw.read_csv(path, blocksize="32KiB").npartitions == -(-size // (32 << 10))
    assert bw.read_csv(path, blocksize="32KiB").npartitions > 1
    # The same rows, in the same order, however the file is cut.
    assert cut.compute().equals(whole.compute())
    # SQL takes it too.
    info = bw.Frame(f"SELECT * FROM read_csv('{path}', blocksize={size // 8})")
    assert info.npartitions == cut.npartitions


def test_read_csv_dtypes_change_the_schema_and_values_as_duckdb(table):
    path = table / "t.csv"
    df = bw.read_csv(path, dtypes={"v1": "float64", "id4": "VARCHAR", "v2": np.int32})
    assert df.dtypes["v1"] == "float64" and df.dtypes["id4"] == "utf8"
    assert df.dtypes["v2"] == "int32" and df.dtypes["v3"] == "float64"
    ours = df.compute()
    want = duckdb.sql(
        f"SELECT * FROM read_csv('{path}', types={{'v1': 'DOUBLE', 'id4': 'VARCHAR', "
        f"'v2': 'INTEGER'}})"
    ).arrow()
    want = want.read_all() if hasattr(want, "read_all") else want
    assert ours.schema.field("v1").type == pa.float64() == want.schema.field("v1").type
    assert ours.schema.field("id4").type == pa.string()
    assert ours.schema.field("v2").type == pa.int32() == want.schema.field("v2").type
    assert same(rows(ours), rows(want))
    # pandas' spelling, and SQL's three names of the map.
    assert bw.read_csv(path, dtype={"v1": float}).dtypes["v1"] == "float64"
    for key in ("types", "dtypes", "column_types"):
        got = bw.sql(f"SELECT sum(v1) AS s FROM read_csv('{path}', {key}={{'v1': 'DOUBLE'}})")
        assert got.schema.field("s").type == pa.float64()
        assert got.column(0)[0].as_py() == duckdb.sql(f"SELECT sum(v1) FROM '{path}'").fetchall()[0][0]


def test_read_csv_refuses_hostile_arguments_cleanly(table, tmp_path):
    path = table / "t.csv"
    for blocksize, message in [(0, "must be at least 1 byte"), (-5, "must be at least 1 byte"),
                               ("12XB", 'unknown unit "XB"'), ("lots", "not a size"),
                               ("99999999TiB", "larger than 2")]:
        with pytest.raises(ValueError, match=message):
            bw.read_csv(path, blocksize=blocksize).npartitions
    with pytest.raises(TypeError, match="blocksize"):
        bw.read_csv(path, blocksize=1.5)
    with pytest.raises(ValueError, match="nope"):
        bw.read_csv(path, dtypes={"nope": "float64"}).columns
    with pytest.raises(ValueError, match="'DOUBL' is not a type blockwise reads"):
        bw.read_csv(path, dtypes={"v1": "DOUBL"}).columns
    with pytest.raises(ValueError, match=r"unknown option buffer_size; .* blocksize, types"):
        bw.sql(f"SELECT * FROM read_csv('{path}', buffer_size=100)")
    # A value that is not of the forced type: the file, line, column, value and type.
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n2,y\n3.5,z\n")
    frame = bw.read_csv(bad, dtypes={"a": "int64"})
    assert frame.dtypes["a"] == "int64"
    with pytest.raises(ValueError) as e:
        frame.compute()
    message = str(e.value)
    for part in ["bad.csv", "line 4", '"a"', "3.5", "int64"]:
        assert part in message, (part, message)
    # The type was forced: no advice to force another.
    assert "inferred" not in message, message


def _temp_dir_of(frame) -> "Path":
    from pathlib import Path

    (directory,) = frame._keep
    return Path(directory.name)


def test_from_arrow_frames_equal_duckdb_and_keep_their_file_while_used(table):
    import gc

    t = pq.read_table(table / "t.parquet")
    one = t.slice(0, 999).to_batches()[0]
    for data, want in [(t, t), (t.to_batches(max_chunksize=700), t),
                       (t.to_reader(max_chunksize=1000), t), (one, pa.Table.from_batches([one])),
                       (t.select(["id1", "v3"]), t.select(["id1", "v3"]))]:
        got = bw.from_arrow(data).compute()
        # The same rows in the same order, of the same types.
        assert got.schema == want.schema
        assert got.equals(want), type(data)
    frame = bw.from_arrow(t)
    got = frame[frame.v2 > 10].groupby("id1").agg({"v3": "sum", "v1": "max"}).compute()
    con = duckdb.connect()
    con.register("t", t)
    want = con.execute(
        "SELECT id1, sum(v3), max(v1) FROM t WHERE v2 > 10 GROUP BY id1 ORDER BY id1"
    ).fetchall()
    assert same(rows(got, sort=False), want)
    # The file lives as long as a frame uses it, the first one or one derived.
    directory = _temp_dir_of(frame)
    derived = frame[frame.v1 > 2].groupby("id1").v3
    del frame
    gc.collect()
    assert directory.exists()
    assert derived.sum().compute().num_rows == 10
    del derived
    gc.collect()
    assert not directory.exists()


def test_from_arrow_refuses_what_is_not_arrow_data():
    with pytest.raises(TypeError, match="from_arrow takes"):
        bw.from_arrow({"a": [1, 2]})
    with pytest.raises(ValueError, match="no record batch"):
        bw.from_arrow([])
    with pytest.raises(TypeError, match="RecordBatch, not of int"):
        bw.from_arrow([1, 2])
    with pytest.raises(TypeError, match="pandas.DataFrame"):
        bw.from_pandas(pa.table({"a": [1]}))


def test_from_pandas_frames_equal_pandas(table):
    import gc

    import pandas as pd

    pdf = pd.read_parquet(table / "t.parquet")
    frame = bw.from_pandas(pdf)
    assert frame.columns == list(pdf.columns)
    got = frame.groupby(["id1", "id4"]).agg({"v3": "mean", "v2": "sum"}).to_pandas()
    want = pdf.groupby(["id1", "id4"]).agg({"v3": "mean", "v2": "sum"}).reset_index()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert frame.v1.sum() == pdf.v1.sum()
    assert frame.v1.count() == pdf.v1.count()
    # An index that is not a RangeIndex comes along as a column, as pyarrow keeps it.
    indexed = bw.from_pandas(pdf.set_index("id6"))
    assert indexed.columns[-1] == "id6"
    assert sorted(indexed.id6.compute().to_pylist()) == sorted(pdf.id6.tolist())
    directory = _temp_dir_of(frame)
    del frame, indexed
    gc.collect()
    assert not directory.exists()


@pytest.fixture(scope="module")
def pdf(table):
    return pq.read_table(table / "t.parquet").to_pandas()


@pytest.mark.parametrize("blocksize", [None, "8KiB"])
def test_tail_is_the_last_rows_in_file_order_as_pandas(table, pdf, blocksize):
    import pandas as pd

    df = bw.read_csv(table / "t.csv", blocksize=blocksize)
    if blocksize:
        assert df.npartitions > 10

    def check(got, want):
        pd.testing.assert_frame_equal(got.to_pandas(), want.reset_index(drop=True),
                                      check_dtype=False)

    check(df.tail(7), pdf.tail(7))
    check(df.tail(), pdf.tail())
    check(df.tail(0), pdf.tail(0))
    check(df.tail(6000), pdf.tail(6000))
    check(df.tail(-4990), pdf.tail(-4990))
    check(df[df.v2 > 10].tail(9), pdf[pdf.v2 > 10].tail(9))
    check(df.sort_values("v3").tail(4), pdf.sort_values("v3").tail(4))


def test_quantiles_equal_pandas_linear_interpolation(table, pdf):
    import pandas as pd

    df = bw.read_csv(table / "t.csv")
    for q in (0, 0.1, 0.5, 0.9, 1):
        assert math.isclose(df.v3.quantile(q), pdf.v3.quantile(q), rel_tol=1e-12)
    assert math.isclose(df.v1.quantile(), pdf.v1.quantile())  # NULLs left out
    pd.testing.assert_series_equal(df.v3.quantile([0.25, 0.75]), pdf.v3.quantile([0.25, 0.75]))
    got = df.groupby("id1").v3.quantile(0.3).to_pandas()
    want = pdf.groupby("id1").v3.quantile(0.3).reset_index()
    pd.testing.assert_frame_equal(got, want)
    got = df[["id4", "v1", "v3"]].groupby("id4").quantile(0.8).to_pandas()
    want = pdf[["id4", "v1", "v3"]].groupby("id4").quantile(0.8).reset_index()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    for bad in (1.5, -0.1, "0.5", True):
        with pytest.raises(ValueError, match="q must be a number from 0 to 1"):
            df.v3.quantile(bad)
        with pytest.raises(ValueError, match="q must be a number from 0 to 1"):
            df.groupby("id1").quantile(bad)


def test_any_and_all_equal_pandas(table, pdf):
    import pandas as pd

    df = bw.read_csv(table / "t.csv")
    for col, p in [(df.v2 > 14, pdf.v2 > 14), (df.v2 > 15, pdf.v2 > 15), (df.v2 > 0, pdf.v2 > 0),
                   (df.v2 % 3, pdf.v2 % 3), (df.v1, pdf.v1), (df.v3 * 0, pdf.v3 * 0)]:
        assert col.any() is bool(p.any()) and col.all() is bool(p.all()), col
    frame = df.assign(b=df.v2 > 13, z=df.v2 % 4)[["id1", "b", "z", "v1"]]
    pframe = pdf.assign(b=pdf.v2 > 13, z=pdf.v2 % 4)[["id1", "b", "z", "v1"]]
    for how in ("any", "all"):
        got = getattr(frame.groupby("id1"), how)().to_pandas()
        want = getattr(pframe.groupby("id1"), how)().reset_index()
        pd.testing.assert_frame_equal(got, want)
        got = frame.groupby("id1").agg({"z": how}).to_pandas()
        pd.testing.assert_frame_equal(got, want[["id1", "z"]])


def test_any_and_all_of_no_rows_are_pandas_false_and_true(table):
    df = bw.read_csv(table / "t.csv")
    empty = df[df.v2 > 99]
    assert empty.v2.any() is False and empty.v2.all() is True


def test_whole_frame_reductions_are_pandas_series(table, pdf):
    import pandas as pd

    df = bw.read_csv(table / "t.csv")
    for how in ("sum", "mean", "std", "var", "median", "min", "max", "count"):
        got = getattr(df, how)(numeric_only=True)
        want = getattr(pdf, how)(numeric_only=True)
        assert isinstance(got, pd.Series)
        pd.testing.assert_series_equal(got, want, check_dtype=False, rtol=1e-9)
    # Strings have a min, a max and a count, and no sum.
    for how in ("min", "max", "count"):
        pd.testing.assert_series_equal(getattr(df, how)(), getattr(pdf, how)(), check_dtype=False)
    for how in ("sum", "mean", "std"):
        with pytest.raises(TypeError, match=r"non-numeric columns id1 \(utf8\), id2 \(utf8\)"):
            getattr(df, how)()
    flags = df.assign(b=df.v2 > 10)[["b", "v2"]]
    pflags = pdf.assign(b=pdf.v2 > 10)[["b", "v2"]]
    for how in ("sum", "mean", "min", "max", "count"):
        pd.testing.assert_series_equal(getattr(flags, how)(), getattr(pflags, how)(),
                                       check_dtype=False)
    want = duckdb.sql(f"SELECT sum(v3), count(v1) FROM '{table / 't.csv'}'").fetchall()[0]
    assert math.isclose(df.sum(numeric_only=True)["v3"], want[0]) and df.count()["v1"] == want[1]


def test_drop_duplicates_equals_pandas_or_refuses_what_needs_file_order(table, pdf):
    df = bw.read_csv(table / "t.csv")

    def as_set(t) -> set:
        """The rows of a table or a pandas frame, NaN as None: the order is not kept."""
        records = t.to_pylist() if isinstance(t, pa.Table) else t.to_dict("records")
        return {tuple(None if isinstance(v, float) and v != v else v for v in r.values())
                for r in records}

    keys = ["id1", "id4", "v2"]
    got = df.drop_duplicates(subset=keys, keep=False).compute()
    want = pdf.drop_duplicates(subset=keys, keep=False)
    assert 0 < len(want) < len(pdf)
    assert got.column_names == list(pdf.columns)
    assert as_set(got) == as_set(want)
    got = df[["id1", "id4"]].drop_duplicates().compute()
    assert as_set(got) == as_set(pdf[["id1", "id4"]].drop_duplicates()) and got.num_rows == 100
    got = df[["id1", "id4", "v2"]].drop_duplicates(keep=False).compute()
    assert as_set(got) == as_set(pdf[keys].drop_duplicates(keep=False))
    # The whole row as the subset: any duplicate is the same row.
    assert df[["id1", "id4"]].drop_duplicates(subset=["id4", "id1"], keep="last").compute().num_rows == 100
    # A subset keeps the first (last) row of each key in the file's order, from
    # byte ranges of the CSV file and from Parquet.
    for source in (bw.read_csv(table / "t.csv", blocksize=20_000), bw.read_parquet(table / "t.parquet")):
        for subset, keep in (("id1", "first"), (["id4", "id1"], "last"), (["id6", "v2"], "first")):
            got = source.drop_duplicates(subset=subset, keep=keep).compute()
            want = pdf.drop_duplicates(subset=subset, keep=keep)
            assert got.column_names == list(pdf.columns)
            assert as_set(got) == as_set(want), (subset, keep)
    with pytest.raises(Exception, match="after a sort"):
        df.sort_values("v3").drop_duplicates(subset="id1").compute()
    with pytest.raises(ValueError, match="keep is 'first', 'last' or False"):
        df.drop_duplicates(keep="middle")
    with pytest.raises(KeyError, match="nope"):
        df.drop_duplicates(subset=["nope"], keep=False)


def test_first_and_last_equal_pandas_in_the_files_order(table, pdf):
    for source in (bw.read_csv(table / "t.csv", blocksize=20_000), bw.read_parquet(table / "t.parquet")):
        got = source.groupby("id4").agg({"v1": "first", "v3": "last", "id1": "last"}).to_pandas()
        want = pdf.groupby("id4").agg({"v1": "first", "v3": "last", "id1": "last"}).reset_index()
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        got = source.groupby(["id1", "id2"]).v1.last().to_pandas()
        want = pdf.groupby(["id1", "id2"]).v1.last().reset_index()
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_a_seeded_sample_is_the_same_whatever_runs_it(table, pdf):
    everything = set(rows(pa.Table.from_pandas(pdf, preserve_index=False)))
    df = bw.read_parquet(table / "t.parquet")
    a = df.sample(n=40, random_state=5).compute()
    b = df.sample(n=40, random_state=5).compute(threads=1, memory_limit="64MiB")
    assert rows(a, sort=False) == rows(b, sort=False) and a.num_rows == 40
    assert set(rows(a)) <= everything and len(set(rows(a))) == 40
    assert rows(df.sample(n=40, random_state=6).compute()) != rows(a)
    assert df.sample(n=10**6, random_state=1).compute().num_rows == 5000
    assert df.sample(random_state=1).compute().num_rows == 1
    # A fraction: about that many, in the file's order.
    kept = df.sample(frac=0.3, random_state=-7).compute()
    assert abs(kept.num_rows - 1500) < 5 * math.sqrt(5000 * 0.3 * 0.7)
    order = {r: i for i, r in enumerate(rows(pa.Table.from_pandas(pdf, preserve_index=False), sort=False))}
    places = [order[r] for r in rows(kept, sort=False)]
    assert places == sorted(places)
    assert rows(df.sample(frac=0.3, random_state=-7).compute(), sort=False) == rows(kept, sort=False)
    for bad in (dict(frac=1.5), dict(n=-1), dict(n=2, frac=0.1), dict(n=2.5), dict(random_state="x")):
        with pytest.raises(ValueError):
            df.sample(**bad)
    with pytest.raises(NotImplementedError):
        df.sample(n=3, replace=True)


def test_corr_and_cov_equal_pandas_and_duckdb(table, pdf):
    df = bw.read_csv(table / "t.csv")
    duck = duckdb.sql(
        f"SELECT corr(v1, v3), covar_samp(v1, v3), covar_pop(v2, v3) FROM '{table / 't.csv'}'"
    ).fetchall()[0]
    assert math.isclose(df.v1.corr(df.v3), pdf.v1.corr(pdf.v3), rel_tol=1e-9)
    assert math.isclose(df.v1.corr(df.v3), duck[0], rel_tol=1e-9)
    assert math.isclose(df.v1.cov(df.v3), pdf.v1.cov(pdf.v3), rel_tol=1e-9)
    assert math.isclose(df.v1.cov(df.v3), duck[1], rel_tol=1e-9)
    assert math.isclose(df.v2.cov(df.v3, ddof=0), pdf.v2.cov(pdf.v3, ddof=0), rel_tol=1e-9)
    assert math.isclose(df.v2.cov(df.v3, ddof=0), duck[2], rel_tol=1e-9)
    assert math.isclose((df.v3 * 2).corr(df.v3), 1.0)
    with pytest.raises(ValueError, match="only 'pearson'"):
        df.v1.corr(df.v3, method="spearman")
    with pytest.raises(ValueError, match="ddof is 1"):
        df.v1.cov(df.v3, ddof=2)
    with pytest.raises(ValueError, match="same frame"):
        df.v1.corr(df[df.v2 > 3].v3)
    with pytest.raises(TypeError, match="column of the frame"):
        df.v1.corr([1, 2, 3])


def test_nsmallest_per_group_equals_duckdb(table, pdf):
    df = bw.read_csv(table / "t.csv")
    got = df.groupby("id6").nsmallest(2, "v3").compute()
    want = duckdb.sql(
        f"SELECT * FROM '{table / 't.csv'}' "
        "QUALIFY row_number() OVER (PARTITION BY id6 ORDER BY v3 ASC) <= 2"
    ).fetchall()
    assert same(rows(got), sorted(want, key=lambda r: tuple((x is None, str(x)) for x in r)))
    smallest = pdf.sort_values("v3").groupby("id6").head(2)
    assert sorted(got.column("v3").to_pylist()) == sorted(smallest.v3.tolist())


@pytest.mark.parametrize("blocksize", [None, "16KiB"])
def test_read_csv_without_a_header_equals_duckdb_and_pandas(table, tmp_path, blocksize):
    import pandas as pd

    t = pq.read_table(table / "t.parquet")
    path = tmp_path / "headerless.csv"
    pacsv.write_csv(t, path, pacsv.WriteOptions(include_header=False))
    df = bw.read_csv(path, header=False, blocksize=blocksize)
    if blocksize:
        assert df.npartitions > 5
    assert df.columns == [f"column{i}" for i in range(7)]
    got = df.compute()
    want = duckdb.sql(f"SELECT * FROM read_csv('{path}', header=false)").arrow()
    want = want.read_all() if hasattr(want, "read_all") else want
    assert got.column_names == want.column_names
    assert same(rows(got, sort=False), rows(want, sort=False))
    assert got.num_rows == t.num_rows == len(df)
    pdf = pd.read_csv(path, header=None)
    assert got.column("column6").to_pylist() == pdf[6].tolist()
    # Forced types and headerless names together.
    typed = bw.read_csv(path, header=False, dtypes={"column2": "VARCHAR"})
    assert typed.dtypes["column2"] == "utf8"
