//! The `Frame` API against DuckDB: db-benchmark's ten groupby questions and the
//! pandas-style methods, written as a user of the crate writes them, from CSV and
//! from Parquet, under a budget small enough that groupings flush and spill; and
//! the errors a careless caller meets, each at the call that is wrong.

use std::path::Path;

use super::{Agg, Frame, Keep};
use crate::convert::ConvertOptions;
use crate::frame::expr::Expr;
use crate::frame::logical::SortExpr;
use crate::storage::frame::FrameReadOptions;
use crate::Error;

fn col(name: &str) -> Expr {
    Expr::col(name)
}

fn open(dir: &Path, ext: &str) -> Frame {
    let read = FrameReadOptions::default().with_blocksize(64 << 10);
    let path = dir.join(format!("t.{ext}"));
    match ext {
        "csv" => Frame::read_csv(path, read),
        _ => Frame::read_parquet(path, read),
    }
    .unwrap()
}

/// Each question as frame calls over `t`, and DuckDB's SQL for it (db-benchmark's
/// text).
type Case = (
    &'static str,
    fn(&Frame) -> crate::Result<Frame>,
    &'static str,
);

fn questions() -> Vec<Case> {
    vec![
        (
            "q1",
            |t| t.groupby(["id1"])?.agg([Agg::sum("v1")]),
            "SELECT id1, sum(v1) AS v1 FROM t GROUP BY id1",
        ),
        (
            "q2",
            |t| t.groupby(["id1", "id2"])?.agg([Agg::sum("v1")]),
            "SELECT id1, id2, sum(v1) AS v1 FROM t GROUP BY id1, id2",
        ),
        (
            "q3",
            |t| t.groupby(["id3"])?.agg([Agg::sum("v1"), Agg::mean("v3")]),
            "SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM t GROUP BY id3",
        ),
        (
            "q4",
            |t| {
                t.groupby(["id4"])?
                    .agg([Agg::mean("v1"), Agg::mean("v2"), Agg::mean("v3")])
            },
            "SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM t GROUP BY id4",
        ),
        (
            "q5",
            |t| {
                t.groupby(["id6"])?
                    .agg([Agg::sum("v1"), Agg::sum("v2"), Agg::sum("v3")])
            },
            "SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM t GROUP BY id6",
        ),
        (
            "q6",
            |t| {
                t.groupby(["id4", "id5"])?.agg([
                    Agg::median("v3").alias("median_v3"),
                    Agg::std("v3").alias("sd_v3"),
                ])
            },
            "SELECT id4, id5, quantile_cont(v3, 0.5) AS median_v3, stddev(v3) AS sd_v3 \
             FROM t GROUP BY id4, id5",
        ),
        (
            "q7",
            |t| {
                t.groupby(["id3"])?
                    .agg([Agg::max("v1"), Agg::min("v2")])?
                    .select_exprs([
                        ("id3", col("id3")),
                        ("range_v1_v2", col("v1").sub(col("v2"))),
                    ])
            },
            "SELECT id3, max(v1) - min(v2) AS range_v1_v2 FROM t GROUP BY id3",
        ),
        (
            "q8",
            |t| {
                t.filter(col("v3").is_not_null())?
                    .groupby(["id6"])?
                    .nlargest(2, "v3")?
                    .select(["id6", "v3"])
            },
            "SELECT id6, v3 AS largest2_v3 FROM (SELECT id6, v3, row_number() OVER \
             (PARTITION BY id6 ORDER BY v3 DESC) AS order_v3 FROM t WHERE v3 IS NOT NULL) \
             sub_query WHERE order_v3 <= 2",
        ),
        (
            "q9",
            |t| {
                t.groupby(["id2", "id4"])?
                    .agg([Agg::corr("v1", "v2").alias("r")])?
                    .with_columns([("r", col("r").pow(Expr::lit(2i64)))])
            },
            "SELECT id2, id4, pow(corr(v1, v2), 2) AS r2 FROM t GROUP BY id2, id4",
        ),
        (
            "q10",
            |t| {
                t.groupby(["id1", "id2", "id3", "id4", "id5", "id6"])?
                    .agg([Agg::sum("v3"), Agg::size().alias("count")])
            },
            "SELECT id1, id2, id3, id4, id5, id6, sum(v3) AS v3, count(*) AS count FROM t \
             GROUP BY id1, id2, id3, id4, id5, id6",
        ),
    ]
}

/// The pandas-style methods, and what DuckDB answers (`o_...`: in order).
fn methods() -> Vec<Case> {
    vec![
        (
            "assign_filter_rename_drop",
            |t| {
                t.with_columns([
                    ("v1", col("v1").mul(Expr::lit(10i64))),
                    ("w", col("v2").add(col("v3"))),
                ])?
                .filter(col("w").gt(Expr::lit(50.0)).and(col("id1").is_not_null()))?
                .rename([("id1", "key")])?
                .drop(["id2", "id3", "id5", "id6"])
            },
            "SELECT id1 AS key, id4, v1 * 10 AS v1, v2, v3, v2 + v3 AS w FROM t \
             WHERE v2 + v3 > 50 AND id1 IS NOT NULL",
        ),
        (
            "o_sorted_head",
            |t| {
                Ok(t.select(["id6", "v3", "id2"])?
                    .sort([
                        SortExpr::asc(col("id2")),
                        SortExpr::desc(col("v3")),
                        SortExpr::asc(col("id6")),
                    ])?
                    .head(50))
            },
            "SELECT id6, v3, id2 FROM t ORDER BY id2, v3 DESC, id6 LIMIT 50",
        ),
        (
            "o_nsmallest",
            |t| t.nsmallest(7, ["v2", "v3"]),
            "SELECT * FROM t ORDER BY v2, v3 LIMIT 7",
        ),
        (
            "o_value_counts",
            |t| t.value_counts("id4"),
            "SELECT id4, count(*) AS count FROM t GROUP BY id4 ORDER BY count DESC, id4",
        ),
        (
            "unique_rows",
            |t| t.select(["id1", "id4"])?.drop_duplicates(None, Keep::First),
            "SELECT DISTINCT id1, id4 FROM t",
        ),
        (
            "keys_seen_once",
            |t| t.drop_duplicates(Some(&["id3", "id5"]), Keep::None),
            "SELECT * EXCLUDE (c) FROM (SELECT *, count(*) OVER (PARTITION BY id3, id5) AS c \
             FROM t) WHERE c = 1",
        ),
        (
            "whole",
            |t| {
                t.agg([
                    Agg::size().alias("n"),
                    Agg::quantile("v3", 0.9).alias("p90"),
                    Agg::cov("v2", "v3"),
                    Agg::var("v1"),
                ])
            },
            "SELECT count(*), quantile_cont(v3, 0.9), covar_samp(v2, v3), var_samp(v1) FROM t",
        ),
        (
            "distinct_counts",
            |t| {
                t.groupby(["id4"])?
                    .agg([Agg::nunique("id3"), Agg::sum("v1")])
            },
            "SELECT id4, count(DISTINCT id3), sum(v1) FROM t GROUP BY id4",
        ),
        (
            "concat",
            |t| {
                let a = t
                    .filter(col("v2").lt(Expr::lit(3i64)))?
                    .select(["id4", "v2"])?;
                let b = t
                    .filter(col("v2").gt(Expr::lit(13i64)))?
                    .select(["id5", "v3"])?;
                a.concat([b])
            },
            "SELECT id4, v2 FROM t WHERE v2 < 3 UNION ALL SELECT id5, v3 FROM t WHERE v2 > 13",
        ),
    ]
}

/// Computes `frame` (case `name`, read from `ext`) and writes its rows to
/// `NAME.parquet` in `dir`, for [`crate::reference::duckdb_mismatches`].
fn write_result(dir: &Path, name: &str, ext: &str, frame: &Frame, ctx: &crate::exec::JobContext) {
    let (schema, batches) = frame
        .collect(ctx)
        .unwrap_or_else(|e| panic!("{name} from {ext}: {e}"));
    assert_eq!(&schema, frame.schema(), "{name}: the schema it said it has");
    crate::reference::write_parquet(&dir.join(format!("{name}.parquet")), &batches, schema);
}

#[test]
fn the_db_benchmark_questions_and_pandas_methods_equal_duckdbs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let cases: Vec<Case> = questions().into_iter().chain(methods()).collect();
    // Small enough that partial tables flush and the final buckets are many.
    let ctx = crate::reference::context(4 << 20);
    for ext in ["csv", "parquet"] {
        let t = open(dir.path(), ext);
        let mut queries = serde_json::Map::new();
        for (name, build, sql) in &cases {
            let frame = build(&t).unwrap_or_else(|e| panic!("{name} from {ext}: {e}"));
            write_result(dir.path(), name, ext, &frame, &ctx);
            queries.insert(name.to_string(), (*sql).into());
        }
        // The methods that compute at once.
        let (schema, tail) = t.tail(7, &ctx).unwrap();
        crate::reference::write_parquet(&dir.path().join("o_tail.parquet"), &tail, schema);
        queries.insert(
            "o_tail".into(),
            "SELECT * FROM t LIMIT 7 OFFSET 19993".into(),
        );
        let described = t.describe(&ctx).unwrap();
        let path = dir.path().join("o_describe.parquet");
        crate::reference::write_parquet(
            &path,
            std::slice::from_ref(&described),
            described.schema(),
        );
        queries.insert("o_describe".into(), describe_sql().into());
        let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
        assert_eq!(bad, serde_json::json!({}), "from {ext}");
    }
}

/// pandas' `describe` of `t`'s numeric columns in DuckDB's SQL: a row a
/// statistic, in order.
fn describe_sql() -> String {
    let columns = ["id4", "id5", "id6", "v1", "v2", "v3"];
    let stats = [
        ("count", "count({})"),
        ("mean", "avg({})"),
        ("std", "stddev_samp({})"),
        ("min", "min({})"),
        ("25%", "quantile_cont({}, 0.25)"),
        ("50%", "quantile_cont({}, 0.5)"),
        ("75%", "quantile_cont({}, 0.75)"),
        ("max", "max({})"),
    ];
    let rows = stats
        .iter()
        .enumerate()
        .map(|(i, (label, f))| {
            let values: Vec<String> = columns
                .iter()
                .map(|c| format!("CAST({} AS DOUBLE)", f.replace("{}", c)))
                .collect();
            format!("SELECT {i} AS i, '{label}', {} FROM t", values.join(", "))
        })
        .collect::<Vec<_>>();
    // UNION ALL does not promise its inputs' order: the rows are put in order.
    format!(
        "SELECT * EXCLUDE (i) FROM ({}) ORDER BY i",
        rows.join(" UNION ALL ")
    )
}

/// A frame built from the table `t`.
type Build = fn(&Frame) -> crate::Result<Frame>;

#[test]
fn first_last_and_drop_duplicates_follow_the_files_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    // DuckDB's rows in the file's order: `t.csv` holds `t.parquet`'s rows.
    let r = format!("(SELECT * FROM read_parquet('{d}/t.parquet', file_row_number = true)) AS r");
    let cases: Vec<(&str, Build, String)> = vec![
        (
            "firsts",
            |t| {
                t.groupby(["id4"])?.agg([
                    Agg::first("v1").alias("f1"),
                    Agg::last("v1").alias("l1"),
                    Agg::first("id1").alias("f_id1"),
                    Agg::last("v3").alias("l3"),
                ])
            },
            // pandas' first and last skip NULLs.
            format!(
                "SELECT id4, first(v1 ORDER BY file_row_number) FILTER (WHERE v1 IS NOT NULL), \
                 last(v1 ORDER BY file_row_number) FILTER (WHERE v1 IS NOT NULL), \
                 first(id1 ORDER BY file_row_number) FILTER (WHERE id1 IS NOT NULL), \
                 last(v3 ORDER BY file_row_number) FROM {r} GROUP BY id4"
            ),
        ),
        (
            "whole_first",
            |t| {
                t.filter(col("v2").gt(Expr::lit(7i64)))?
                    .agg([Agg::first("v3"), Agg::last("id3")])
            },
            format!(
                "SELECT first(v3 ORDER BY file_row_number), last(id3 ORDER BY file_row_number) \
                 FROM {r} WHERE v2 > 7"
            ),
        ),
        (
            "keep_first",
            |t| t.drop_duplicates(Some(&["id1", "id4"]), Keep::First),
            format!(
                "SELECT * EXCLUDE (file_row_number, n) FROM (SELECT *, row_number() OVER \
                 (PARTITION BY id1, id4 ORDER BY file_row_number) AS n FROM {r}) WHERE n = 1"
            ),
        ),
        (
            // Nearly every key once: the rows pass the partial tables as their
            // own states.
            "keep_first_distinct",
            |t| {
                t.select(["id3", "id6", "v3", "id1"])?
                    .drop_duplicates(Some(&["id3", "id1"]), Keep::First)
            },
            format!(
                "SELECT id3, id6, v3, id1 FROM (SELECT *, row_number() OVER \
                 (PARTITION BY id3, id1 ORDER BY file_row_number) AS n FROM {r}) WHERE n = 1"
            ),
        ),
        (
            "keep_last",
            |t| {
                t.select(["id6", "v1", "v3"])?
                    .drop_duplicates(Some(&["id6"]), Keep::Last)
            },
            format!(
                "SELECT id6, v1, v3 FROM (SELECT *, row_number() OVER \
                 (PARTITION BY id6 ORDER BY file_row_number DESC) AS n FROM {r}) WHERE n = 1"
            ),
        ),
    ];
    // Small enough that partial tables flush and the final buckets are many.
    let ctx = crate::reference::context(4 << 20);
    for ext in ["csv", "parquet"] {
        let t = open(dir.path(), ext);
        let mut queries = serde_json::Map::new();
        for (name, build, sql) in &cases {
            let frame = build(&t).unwrap_or_else(|e| panic!("{name} from {ext}: {e}"));
            write_result(dir.path(), name, ext, &frame, &ctx);
            queries.insert(name.to_string(), sql.clone().into());
        }
        // SQL's first (NULLs count), last and any_value (NULLs skipped).
        let ours = Frame::sql(&format!(
            "SELECT id5, first(v1), last(id1), any_value(v1), count(*) FROM '{d}/t.{ext}' \
             WHERE v2 > 3 GROUP BY id5"
        ))
        .unwrap();
        write_result(dir.path(), "sql_first", ext, &ours, &ctx);
        queries.insert(
            "sql_first".into(),
            format!(
                "SELECT id5, first(v1 ORDER BY file_row_number), \
                 last(id1 ORDER BY file_row_number), \
                 first(v1 ORDER BY file_row_number) FILTER (WHERE v1 IS NOT NULL), count(*) \
                 FROM {r} WHERE v2 > 3 GROUP BY id5"
            )
            .into(),
        );
        let bad = crate::reference::duckdb_mismatches(&d, queries, &[]);
        assert_eq!(bad, serde_json::json!({}), "from {ext}");
    }
    // After a sort, the file's order is gone: refused when planned.
    let t = open(dir.path(), "parquet");
    let sorted = t
        .sort_values(["v3"], true)
        .unwrap()
        .drop_duplicates(Some(&["id1"]), Keep::First)
        .unwrap();
    let e = error(sorted.collect(&crate::reference::context(64 << 20)));
    assert!(
        matches!(e, Error::NotYet { .. }) && e.to_string().contains("after a sort"),
        "{e}"
    );
}

/// Each row of `batches` as text, a column after another.
fn rows_of(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    use arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let row: Vec<String> = b
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, i).unwrap())
                .collect();
            out.push(row.join("|"));
        }
    }
    out
}

#[test]
fn a_seeded_sample_is_the_same_whatever_runs_it() {
    use super::SampleSize;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    for ext in ["csv", "parquet"] {
        let t = open(dir.path(), ext);
        let all: std::collections::HashSet<String> =
            rows_of(&t.collect(&crate::reference::context(64 << 20)).unwrap().1)
                .into_iter()
                .collect();
        let take = |f: &Frame, limit: u64| {
            let (schema, batches) = f.collect(&crate::reference::context(limit)).unwrap();
            assert_eq!(
                &schema,
                t.schema(),
                "{ext}: a sample has the frame's columns"
            );
            rows_of(&batches)
        };
        // n rows: distinct rows of the table, the same under another budget.
        let n = t.sample(SampleSize::Rows(300), 7).unwrap();
        let rows = take(&n, 64 << 20);
        assert_eq!(rows.len(), 300, "{ext}");
        assert!(
            rows.iter().all(|r| all.contains(r)),
            "{ext}: a row not in the table"
        );
        let distinct: std::collections::HashSet<&String> = rows.iter().collect();
        assert_eq!(distinct.len(), 300, "{ext}: a row taken twice");
        assert_eq!(take(&n, 2 << 20), rows, "{ext}: another budget, other rows");
        // SQL's TABLESAMPLE draws the same rows from the same cutting of the file.
        let from = match ext {
            "csv" => format!("read_csv('{d}/t.csv', blocksize=65536)"),
            _ => format!("'{d}/t.parquet'"),
        };
        let sql = Frame::sql(&format!(
            "SELECT * FROM {from} TABLESAMPLE (300 ROWS) REPEATABLE (7)"
        ))
        .unwrap();
        assert_eq!(take(&sql, 64 << 20), rows, "{ext}: TABLESAMPLE");
        let other = take(&t.sample(SampleSize::Rows(300), 8).unwrap(), 64 << 20);
        assert!(
            other.iter().filter(|r| distinct.contains(r)).count() < 60,
            "{ext}"
        );
        // More rows than there are: all of them.
        assert_eq!(
            take(&t.sample(SampleSize::Rows(50_000), 7).unwrap(), 64 << 20).len(),
            20_000
        );
        // A fraction: about that many, spread over the file, in its order.
        let f = t
            .filter(col("v2").gt(Expr::lit(5i64)))
            .unwrap()
            .sample(SampleSize::Fraction(0.25), 3)
            .unwrap();
        let kept = take(&f, 64 << 20);
        // v2 is the eighth column.
        let eligible = all
            .iter()
            .filter(|r| r.split('|').nth(7).unwrap().parse::<i64>().unwrap() > 5)
            .count();
        let expected = eligible as f64 * 0.25;
        let sd = (eligible as f64 * 0.25 * 0.75).sqrt();
        assert!(
            (kept.len() as f64 - expected).abs() < 5.0 * sd,
            "{ext}: {} of {eligible} kept",
            kept.len()
        );
        assert_eq!(take(&f, 2 << 20), kept, "{ext}: another budget, other rows");
        let first_half: Vec<String> = rows_of(
            &t.head(10_000)
                .collect(&crate::reference::context(64 << 20))
                .unwrap()
                .1,
        );
        let first_half: std::collections::HashSet<String> = first_half.into_iter().collect();
        let early = kept.iter().filter(|r| first_half.contains(*r)).count();
        assert!(
            early > kept.len() / 3 && early < kept.len() * 2 / 3,
            "{ext}: {early} of {} from the first half",
            kept.len()
        );
    }
    let t = open(dir.path(), "parquet");
    assert!(t.sample(SampleSize::Fraction(1.5), 1).is_err());
    let sorted = t.sort_values(["v3"], true).unwrap();
    assert!(matches!(
        error(sorted.sample(SampleSize::Rows(3), 1)),
        Error::NotYet { .. }
    ));
}

#[test]
fn frames_of_batches_in_memory_read_as_files_and_clean_up_after_the_last_frame() {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let batch = |keys: &[&str], values: &[i64]| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(values.to_vec())),
            ],
        )
        .unwrap()
    };
    let t = Frame::from_batches(
        schema.clone(),
        [
            batch(&["a", "b", "a"], &[1, 2, 3]),
            batch(&["b", "c"], &[4, 5]),
        ],
    )
    .unwrap();
    let file = match t.plan() {
        crate::frame::logical::LogicalPlan::Scan(s) => s.path.clone(),
        other => panic!("not a scan: {other:?}"),
    };
    let sums = t
        .groupby(["k"])
        .unwrap()
        .agg([Agg::sum("v"), Agg::first("v").alias("f")])
        .unwrap()
        .sort_values(["k"], true)
        .unwrap();
    let other = Frame::from_batches(schema.clone(), [batch(&["z"], &[9])]).unwrap();
    let both = sums
        .select(["k", "v"])
        .unwrap()
        .concat([other.select(["k", "v"]).unwrap()])
        .unwrap();
    drop((t, sums, other));
    // The frames built on them keep the files.
    let ctx = crate::reference::context(64 << 20);
    let (_, batches) = both.collect(&ctx).unwrap();
    assert_eq!(
        rows_of(&batches),
        ["a|4", "b|6", "c|5", "z|9"],
        "grouped, sorted, then concatenated"
    );
    assert!(file.exists());
    drop(both);
    assert!(
        !file.exists() && !file.parent().unwrap().exists(),
        "left behind"
    );
    // A batch of other columns is refused.
    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    let e = error(Frame::from_batches(schema, [wrong]));
    assert!(
        matches!(e, Error::InvalidOption { .. }) && e.to_string().contains("batch 0"),
        "{e}"
    );
}

#[test]
fn writers_publish_by_format_and_keep_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let ctx = crate::reference::context(64 << 20);
    let q = open(dir.path(), "parquet")
        .groupby(["id4"])
        .unwrap()
        .agg([Agg::sum("v2")])
        .unwrap();
    let plain = ConvertOptions::default();
    let out = |n: &str| dir.path().join(n);
    assert!(q.to_parquet(out("q.parquet"), &plain, &ctx).unwrap() > 0);
    assert!(q.to_csv(out("q.csv"), &plain, &ctx).unwrap() > 0);
    assert!(q.to_ipc(out("q.arrow"), &plain, &ctx).unwrap() > 0);
    // Each reads back as its format, with the grouping's rows.
    for name in ["q.parquet", "q.csv", "q.arrow"] {
        let (_, batches) = Frame::read(out(name), FrameReadOptions::default())
            .unwrap()
            .collect(&ctx)
            .unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 21, "{name}: 20 keys and NULL");
    }
    // An existing file is kept unless replacing it is asked for.
    let before = std::fs::read(out("q.csv")).unwrap();
    let e = q.to_csv(out("q.csv"), &plain, &ctx).unwrap_err();
    assert!(e.to_string().contains("exists"), "{e}");
    assert_eq!(std::fs::read(out("q.csv")).unwrap(), before);
    let overwrite = ConvertOptions {
        overwrite: true,
        ..ConvertOptions::default()
    };
    q.head(3).to_csv(out("q.csv"), &overwrite, &ctx).unwrap();
    assert_ne!(std::fs::read(out("q.csv")).unwrap(), before);
    // A directory of Parquet parts, read back whole and through its glob.
    let parts = ConvertOptions {
        to: Some(crate::storage::Format::ParquetDir),
        ..ConvertOptions::default()
    };
    open(dir.path(), "csv")
        .to_parquet(out("parts"), &parts, &ctx)
        .unwrap();
    assert!(out("parts").is_dir());
    for path in [out("parts"), out("parts").join("*.parquet")] {
        let rows = Frame::read_parquet(&path, FrameReadOptions::default())
            .unwrap()
            .count_rows(&ctx)
            .unwrap();
        assert_eq!(rows, 20_000, "{}", path.display());
    }
}

#[test]
fn a_top_k_per_group_keeps_a_table_of_each_groups_best_rows_and_never_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let sizing = crate::convert::PlanSizing {
        threads: 2,
        memory_limit: 64 << 20,
    };
    let t = open(dir.path(), "parquet");
    // The `top` of each window task: what it keeps instead of sorting.
    let tops = |f: &Frame| -> Vec<serde_json::Value> {
        let (plan, _) = crate::convert::plan_query(f.plan(), sizing).unwrap();
        let windows: Vec<_> = plan
            .tasks
            .iter()
            .filter(|t| t.op.name == "frame_window")
            .map(|t| t.op.params["top"].clone())
            .collect();
        assert!(!windows.is_empty(), "no window tasks");
        windows
    };
    let best = t.groupby(["id6"]).unwrap().nlargest(2, "v3").unwrap();
    assert!(
        tops(&best).iter().all(|top| top["k"] == 2),
        "{:?}",
        tops(&best)
    );
    // A window the frame does not filter to its first rows numbers every row.
    let numbered = Frame::from_plan(crate::frame::logical::LogicalPlan::Window {
        input: Box::new(t.plan().clone()),
        windows: vec![crate::frame::logical::WindowExpr {
            func: crate::frame::logical::WindowFunc::RowNumber,
            partition_by: vec![col("id6")],
            order_by: vec![SortExpr::desc(col("v3"))],
            name: "rn".into(),
        }],
    })
    .unwrap();
    assert!(tops(&numbered).iter().all(serde_json::Value::is_null));
}

/// The error `r` ends in (it must be one).
fn error<T: std::fmt::Debug>(r: crate::Result<T>) -> Error {
    r.expect_err("a careless call must fail")
}

#[test]
fn careless_calls_fail_where_they_are_made_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let t = open(dir.path(), "csv");
    let unknown = |e: Error, close: &str| match e {
        Error::UnknownColumn { close: c, .. } => {
            assert!(c.iter().any(|n| n == close), "{c:?} lacks {close}")
        }
        other => panic!("not an unknown column: {other}"),
    };
    unknown(error(t.filter(col("v4").gt(Expr::lit(1i64)))), "v1");
    unknown(error(t.select(["id7"])), "id1");
    unknown(error(t.groupby(["idd1"])), "id1");
    unknown(error(t.rename([("V1", "x")])), "v1");
    unknown(error(t.drop(["v33"])), "v3");
    unknown(
        error(t.groupby(["id1"]).unwrap().agg([Agg::sum("v9")])),
        "v1",
    );
    unknown(error(t.groupby(["id1"]).unwrap().nlargest(2, "v0")), "v1");
    unknown(error(t.value_counts("id9")), "id1");
    let type_error = |e: Error, what: &str| match &e {
        Error::FrameType { .. } => assert!(e.to_string().contains(what), "{e}"),
        other => panic!("not a type error: {other}"),
    };
    type_error(
        error(t.filter(col("v1").add(Expr::lit(1i64)))),
        "not boolean",
    );
    type_error(error(t.agg([Agg::sum("id1")])), "does not take");
    type_error(error(t.agg([Agg::quantile("v3", 1.5)])), "1.5");
    type_error(error(t.rename([("v1", "v2")])), "\"v2\" is named twice");
    type_error(
        error(t.with_columns([("x", col("v1")), ("x", col("v2"))])),
        "named twice",
    );
    type_error(
        error(
            t.groupby(["id1"])
                .unwrap()
                .agg([Agg::sum("v1"), Agg::mean("v1")]),
        ),
        "\"v1\" is named twice",
    );
    type_error(
        error(t.groupby(["id1"]).unwrap().nlargest(0, "v1")),
        "not 0",
    );
    assert!(matches!(
        error(Frame::read_parquet(
            dir.path().join("t*.parquet"),
            FrameReadOptions::default()
        )),
        Error::NotYet { .. }
    ));
    assert!(error(Frame::read_csv(
        dir.path().join("none.csv"),
        FrameReadOptions::default()
    ))
    .to_string()
    .contains("none.csv"));
    // A frame's helper columns never shadow the user's own.
    let named = t
        .with_columns([("__rank", col("v1"))])
        .unwrap()
        .groupby(["id4"])
        .unwrap()
        .nlargest(1, "v3")
        .unwrap();
    assert!(named.columns().contains(&"__rank".to_string()));
}
