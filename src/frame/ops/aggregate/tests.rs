//! Groupings against DuckDB: the db-benchmark questions and the aggregates' edge
//! cases over a small generated table (nulls in keys and values, NaN), through the
//! whole plan (partials, buckets, finals) under a budget that makes partial tables
//! flush, compared row by row after sorting by the keys.

use super::{AggCall, AggFunc, GroupBy};
use crate::convert::query;
use crate::frame::expr::Expr;
use crate::frame::logical::{AggExpr, LogicalPlan, Source};
use crate::storage::frame::FrameReadOptions;

/// `spec` over the rows of `source`, as a query.
fn grouping(source: &Source, spec: &GroupBy) -> LogicalPlan {
    LogicalPlan::Aggregate {
        input: Box::new(LogicalPlan::Scan(source.clone())),
        keys: spec
            .keys
            .iter()
            .map(|k| (Expr::col(k), k.clone()))
            .collect(),
        aggs: spec
            .aggs
            .iter()
            .map(|a| AggExpr {
                func: a.func.clone(),
                args: a.args.iter().map(|c| Expr::col(c)).collect(),
                distinct: false,
                name: a.name.clone(),
            })
            .collect(),
    }
}

fn call(func: AggFunc, args: &[&str], name: &str) -> AggCall {
    AggCall {
        func,
        args: args.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
    }
}

fn spec(keys: &[&str], aggs: Vec<AggCall>) -> GroupBy {
    GroupBy {
        keys: keys.iter().map(|s| s.to_string()).collect(),
        aggs,
    }
}

/// Each grouping and the SQL DuckDB answers it with.
fn cases() -> Vec<(&'static str, GroupBy, &'static str)> {
    use AggFunc as F;
    vec![
        (
            "q1",
            spec(&["id1"], vec![call(F::Sum, &["v1"], "v1")]),
            "select id1, sum(v1) from t group by id1",
        ),
        (
            "q2",
            spec(&["id1", "id2"], vec![call(F::Sum, &["v1"], "v1")]),
            "select id1, id2, sum(v1) from t group by id1, id2",
        ),
        (
            "q3",
            spec(
                &["id3"],
                vec![call(F::Sum, &["v1"], "v1"), call(F::Mean, &["v3"], "v3")],
            ),
            "select id3, sum(v1), avg(v3) from t group by id3",
        ),
        (
            "q4",
            spec(
                &["id4"],
                vec![
                    call(F::Mean, &["v1"], "v1"),
                    call(F::Mean, &["v2"], "v2"),
                    call(F::Mean, &["v3"], "v3"),
                ],
            ),
            "select id4, avg(v1), avg(v2), avg(v3) from t group by id4",
        ),
        (
            "q5",
            spec(
                &["id6"],
                vec![
                    call(F::Sum, &["v1"], "v1"),
                    call(F::Sum, &["v2"], "v2"),
                    call(F::Sum, &["v3"], "v3"),
                ],
            ),
            "select id6, sum(v1), sum(v2), sum(v3) from t group by id6",
        ),
        (
            "q6",
            spec(
                &["id4", "id5"],
                vec![
                    call(F::Median, &["v3"], "median_v3"),
                    call(F::Std { ddof: 1 }, &["v3"], "sd_v3"),
                ],
            ),
            "select id4, id5, median(v3), stddev(v3) from t group by id4, id5",
        ),
        (
            "q7",
            spec(
                &["id3"],
                vec![
                    call(F::Max, &["v1"], "max_v1"),
                    call(F::Min, &["v2"], "min_v2"),
                ],
            ),
            "select id3, max(v1), min(v2) from t group by id3",
        ),
        (
            "q9",
            spec(&["id2", "id4"], vec![call(F::Corr, &["v1", "v2"], "r")]),
            "select id2, id4, corr(v1, v2) from t group by id2, id4",
        ),
        (
            "q10",
            spec(
                &["id1", "id2", "id3", "id4", "id5", "id6"],
                vec![call(F::Sum, &["v3"], "v3"), call(F::Size, &[], "count")],
            ),
            "select id1, id2, id3, id4, id5, id6, sum(v3), count(*) from t \
             group by id1, id2, id3, id4, id5, id6",
        ),
        (
            "whole",
            spec(
                &[],
                vec![
                    call(F::Size, &[], "n"),
                    call(F::Count, &["v1"], "c"),
                    call(F::Sum, &["v1"], "s"),
                    call(F::Min, &["id1"], "lo"),
                    call(F::Max, &["id3"], "hi"),
                    call(F::Var { ddof: 0 }, &["v3"], "vp"),
                    call(F::Quantile { q: 0.9 }, &["v2"], "p90"),
                    call(F::Cov { ddof: 1 }, &["v2", "v3"], "cov"),
                ],
            ),
            "select count(*), count(v1), sum(v1), min(id1), max(id3), var_pop(v3), \
             quantile_cont(v2, 0.9), covar_samp(v2, v3) from t",
        ),
        (
            "sparse",
            spec(
                &["id6", "id5"],
                vec![
                    call(F::Var { ddof: 1 }, &["v1"], "v"),
                    call(F::Count, &["v1"], "c"),
                    call(F::Max, &["id1"], "m"),
                ],
            ),
            "select id6, id5, var_samp(v1), count(v1), max(id1) from t group by id6, id5",
        ),
    ]
}

#[test]
fn the_db_benchmark_questions_equal_duckdbs_from_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let cases = cases();
    // A limit small enough that the partial tables flush and the buckets are many.
    for (source, limit) in [("t.csv", 4u64 << 20), ("t.parquet", 64 << 20)] {
        let ctx = crate::reference::context(limit);
        let mut queries = serde_json::Map::new();
        for (name, spec, sql) in &cases {
            let read = FrameReadOptions::default().with_blocksize(64 << 10);
            let table = Source::open(dir.path().join(source), None, read).unwrap();
            let (schema, batches) = query(&grouping(&table, spec), &ctx)
                .unwrap_or_else(|e| panic!("{name} from {source}: {e}"));
            crate::reference::write_parquet(
                &dir.path().join(format!("{name}.parquet")),
                &batches,
                schema,
            );
            queries.insert(name.to_string(), (*sql).into());
        }
        let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
        assert_eq!(bad, serde_json::json!({}), "from {source}");
    }
}

/// A directory of Parquet parts whose string columns are stored every way a
/// grouping meets them: dictionary-encoded over several row groups (a
/// dictionary each), plain, and a chunk whose dictionary overflowed into plain
/// pages midway; `whole.parquet` holds the same rows in one file, for DuckDB.
const STORED_EVERY_WAY: &str = r#"
import os, sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
out = sys.argv[1]
rng = np.random.default_rng(5)
n = 9000
def ids(k, fmt):
    return pa.array([fmt % v for v in rng.integers(1, k + 1, n)])
def nulled(a, every):
    mask = np.zeros(n, bool); mask[::every] = True
    return pa.array(a.to_pylist(), mask=mask, type=a.type)
t = pa.table({
    "id1": nulled(ids(15, "id%03d"), 41),
    "id2": ids(12, "x%d"),
    "id3": ids(3000, "key-%012d"),
    "id4": nulled(pa.array(rng.integers(1, 11, n)), 37),
    "v1": nulled(pa.array(rng.integers(1, 6, n)), 13),
    "v3": pa.array(np.round(rng.random(n) * 100, 6)),
})
os.makedirs(f"{out}/parts")
pq.write_table(t.slice(0, 3000), f"{out}/parts/p0.parquet", row_group_size=1000)
pq.write_table(t.slice(3000, 3000), f"{out}/parts/p1.parquet", use_dictionary=False)
pq.write_table(t.slice(6000, 3000), f"{out}/parts/p2.parquet",
               dictionary_pagesize_limit=4000, data_page_size=2000)
pq.write_table(t, f"{out}/whole.parquet")
print("{}")
"#;

/// String keys are read as dictionaries exactly where every page of their
/// chunk is dictionary-encoded, and a grouping on them (alone, in pairs, beside
/// an integer key, also read by an aggregate, or too many to pack) equals
/// DuckDB's under a budget that flushes the partial tables.
#[test]
fn string_keys_read_as_dictionaries_group_as_duckdb_does() {
    use crate::storage::frame::FrameSource;
    use crate::storage::parquet::ParquetSource;
    use arrow::datatypes::DataType;
    use std::collections::BTreeMap;
    use AggFunc as F;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(STORED_EVERY_WAY, &[&d]);
    let parts = dir.path().join("parts");

    // Which chunks come as dictionaries: p0's three row groups, p2's id1 only.
    let source = ParquetSource::open(&parts, &FrameReadOptions::default()).unwrap();
    let (id1, id3) = (0, 2);
    let mut seen = Vec::new();
    for partition in 0..source.num_partitions() {
        let batch = source
            .read_partition_as(partition, &[id1, id3])
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let dictionary =
            |c: usize| matches!(batch.column(c).data_type(), DataType::Dictionary(_, _));
        seen.push((dictionary(id1), dictionary(id3)));
        // The values are the planned type's.
        let plain = source
            .read_partition(partition)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        for c in [id1, id3] {
            let decoded = arrow::compute::cast(batch.column(c), &DataType::Utf8).unwrap();
            assert_eq!(decoded.as_ref(), plain.column(c).as_ref());
        }
    }
    assert_eq!(
        seen,
        [
            (true, true),
            (true, true),
            (true, true),
            (false, false),
            (true, false)
        ]
    );

    let cases: Vec<(&str, GroupBy, &str)> = vec![
        (
            "one",
            spec(
                &["id1"],
                vec![call(F::Sum, &["v1"], "s"), call(F::Size, &[], "n")],
            ),
            "select id1, sum(v1), count(*) from t group by id1",
        ),
        (
            "two",
            spec(&["id1", "id2"], vec![call(F::Mean, &["v3"], "m")]),
            "select id1, id2, avg(v3) from t group by id1, id2",
        ),
        (
            "with_int",
            spec(&["id2", "id4"], vec![call(F::Corr, &["v1", "v3"], "r")]),
            "select id2, id4, corr(v1, v3) from t group by id2, id4",
        ),
        (
            "many_values",
            spec(&["id3"], vec![call(F::Max, &["v3"], "m")]),
            "select id3, max(v3) from t group by id3",
        ),
        (
            "many_values_and_few",
            spec(&["id4", "id3", "id1"], vec![call(F::Count, &["v1"], "c")]),
            "select id4, id3, id1, count(v1) from t group by id4, id3, id1",
        ),
        (
            "key_aggregated",
            spec(
                &["id2"],
                vec![call(F::Max, &["id2"], "m"), call(F::Count, &["id1"], "c")],
            ),
            "select id2, max(id2), count(id1) from t group by id2",
        ),
        (
            "five_keys",
            spec(
                &["id1", "id2", "id4", "id3", "v1"],
                vec![call(F::Sum, &["v3"], "s")],
            ),
            "select id1, id2, id4, id3, v1, sum(v3) from t group by id1, id2, id4, id3, v1",
        ),
    ];
    let ctx = crate::reference::context(4 << 20);
    let mut queries = serde_json::Map::new();
    let mut groups = BTreeMap::new();
    for (name, spec, sql) in &cases {
        let table = Source::open(parts.clone(), None, FrameReadOptions::default()).unwrap();
        let (schema, batches) =
            query(&grouping(&table, spec), &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The key columns come back as the planned strings, not dictionaries.
        assert!(schema
            .fields()
            .iter()
            .all(|f| !matches!(f.data_type(), DataType::Dictionary(_, _))));
        groups.insert(*name, batches.iter().map(|b| b.num_rows()).sum::<usize>());
        crate::reference::write_parquet(
            &dir.path().join(format!("{name}.parquet")),
            &batches,
            schema,
        );
        queries.insert(name.to_string(), sql.replace(" t ", " whole ").into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["whole"]);
    assert_eq!(bad, serde_json::json!({}));
    // The cases are not trivial: many groups where there should be.
    assert!(
        groups["many_values"] > 2500 && groups["two"] > 100,
        "{groups:?}"
    );
}

#[test]
fn bad_groupings_are_refused_naming_the_column_or_type() {
    let schema = arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Utf8, true),
        arrow::datatypes::Field::new("v", arrow::datatypes::DataType::Float64, true),
    ]);
    let e = spec(&["idx"], vec![])
        .check(&schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"idx\"") && e.contains("id, v"), "{e}");
    let e = spec(&["id"], vec![call(AggFunc::Sum, &["id"], "s")])
        .check(&schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sum") && e.contains("utf8"), "{e}");
    let e = spec(&["id"], vec![call(AggFunc::Corr, &["v"], "r")])
        .check(&schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 arguments"), "{e}");
    let e = spec(&["id"], vec![call(AggFunc::Sum, &["v"], "id")])
        .check(&schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("two columns named \"id\""), "{e}");
}

#[test]
fn a_grouping_of_distinct_keys_under_a_tenth_of_its_data_spills_and_equals_duckdbs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let all = cases();
    let picked: Vec<_> = all
        .iter()
        .filter(|(name, ..)| ["q10", "q3", "sparse"].contains(name))
        .collect();
    // The table is about 1.4 MB of CSV; its groups' states about 2 MB.
    let limit = 160 << 10;
    let ctx = crate::reference::context(limit);
    let mut queries = serde_json::Map::new();
    for (name, spec, sql) in picked {
        let read = FrameReadOptions::default().with_blocksize(32 << 10);
        let table = Source::open(dir.path().join("t.csv"), None, read).unwrap();
        // The result is as large as the table: it is written, not held.
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&grouping(&table, spec), &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name} under {limit} bytes: {e}"));
        queries.insert(name.to_string(), (*sql).into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
    let peak = ctx.pool.peak_reserved();
    assert!(peak <= limit, "peak reserved {peak} > {limit}");
    assert!(ctx.spill.spilled_bytes() > 0, "nothing was spilled");
}

#[test]
fn windows_and_distinct_counts_equal_duckdbs() {
    use crate::frame::logical::{SortExpr, WindowExpr, WindowFunc};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let ctx = crate::reference::context(8 << 20);
    let read = FrameReadOptions::default().with_blocksize(64 << 10);
    let table = Source::open(dir.path().join("t.csv"), None, read).unwrap();
    let scan = || Box::new(LogicalPlan::Scan(table.clone()));
    let by = |c: &str, descending: bool| SortExpr {
        expr: Expr::col(c),
        descending,
        nulls_first: descending,
    };
    let window = |func, part: &[&str], order: Vec<SortExpr>, name: &str| WindowExpr {
        func,
        partition_by: part.iter().map(|c| Expr::col(c)).collect(),
        order_by: order,
        name: name.into(),
    };
    // db-benchmark's q8: the two largest v3 of each id6.
    let q8 = LogicalPlan::Project {
        input: Box::new(LogicalPlan::Filter {
            input: Box::new(LogicalPlan::Window {
                input: Box::new(LogicalPlan::Filter {
                    input: scan(),
                    predicate: Expr::col("v3").is_not_null(),
                }),
                windows: vec![window(
                    WindowFunc::RowNumber,
                    &["id6"],
                    vec![by("v3", true)],
                    "order_v3",
                )],
            }),
            predicate: Expr::col("order_v3").lt_eq(Expr::lit(2i64)),
        }),
        exprs: vec![
            (Expr::col("id6"), "id6".into()),
            (Expr::col("v3"), "largest2_v3".into()),
        ],
    };
    // Ties: ranks over a few small values, nulls among the keys and values.
    let ranks = LogicalPlan::Window {
        input: scan(),
        windows: vec![
            window(
                WindowFunc::Rank,
                &["id1", "id4"],
                vec![by("v1", false)],
                "r",
            ),
            window(
                WindowFunc::DenseRank,
                &["id1", "id4"],
                vec![by("v1", true)],
                "dr",
            ),
            window(
                WindowFunc::RowNumber,
                &["id1", "id4"],
                vec![by("v1", false), by("v3", false)],
                "rn",
            ),
        ],
    };
    let distinct = LogicalPlan::Aggregate {
        input: scan(),
        keys: vec![(Expr::col("id4"), "id4".into())],
        aggs: ["n1", "n2"]
            .iter()
            .map(|name| AggExpr {
                func: AggFunc::Count,
                args: vec![Expr::col("id1")],
                distinct: true,
                name: name.to_string(),
            })
            .collect(),
    };
    let cases = [
        (
            "distinct",
            distinct,
            "select id4, count(distinct id1), count(distinct id1) from t group by id4",
        ),
        (
            "q8",
            q8,
            "select id6, largest2_v3 from (select id6, v3 as largest2_v3, row_number() \
             over (partition by id6 order by v3 desc) as order_v3 from t where v3 is not \
             null) sub where order_v3 <= 2",
        ),
        (
            "ranks",
            ranks,
            "select *, rank() over (partition by id1, id4 order by v1 asc nulls last) as r, \
             dense_rank() over (partition by id1, id4 order by v1 desc nulls first) as dr, \
             row_number() over (partition by id1, id4 order by v1 asc nulls last, v3) as rn \
             from t",
        ),
    ];
    let mut queries = serde_json::Map::new();
    for (name, plan, sql) in cases {
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&plan, &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        queries.insert(name.to_string(), sql.into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
}

#[test]
fn sorts_equal_duckdbs_in_order_and_spill_under_a_small_budget() {
    use crate::frame::logical::SortExpr;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    // About a tenth of the table's decoded rows.
    let limit = 1 << 20;
    let ctx = crate::reference::context(limit);
    let read = FrameReadOptions::default().with_blocksize(64 << 10);
    let table = Source::open(dir.path().join("t.csv"), None, read).unwrap();
    let key = |c: &str, descending: bool, nulls_first: bool| SortExpr {
        expr: Expr::col(c),
        descending,
        nulls_first,
    };
    let sorted = |keys: Vec<SortExpr>, fetch: Option<u64>, offset: u64| {
        let sort = LogicalPlan::Sort {
            input: Box::new(LogicalPlan::Filter {
                input: Box::new(LogicalPlan::Scan(table.clone())),
                predicate: Expr::col("v2").gt(Expr::lit(3i64)),
            }),
            keys,
        };
        if fetch.is_none() && offset == 0 {
            sort
        } else {
            LogicalPlan::Limit {
                input: Box::new(sort),
                offset,
                fetch,
            }
        }
    };
    let cases = [
        (
            "o_all",
            sorted(
                vec![
                    key("id4", false, true),
                    key("v1", true, false),
                    key("v3", false, false),
                ],
                None,
                0,
            ),
            "select * from t where v2 > 3 order by id4 asc nulls first, v1 desc nulls last, v3",
        ),
        (
            "o_top",
            sorted(
                vec![key("v3", true, false), key("id3", false, false)],
                Some(25),
                10,
            ),
            "select * from t where v2 > 3 order by v3 desc, id3 limit 25 offset 10",
        ),
    ];
    let mut queries = serde_json::Map::new();
    for (name, plan, sql) in cases {
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&plan, &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        queries.insert(name.to_string(), sql.into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
    let peak = ctx.pool.peak_reserved();
    assert!(peak <= limit, "peak reserved {peak} > {limit}");
    assert!(ctx.spill.spilled_bytes() > 0, "nothing was spilled");
}

#[test]
fn windows_larger_than_memory_are_sorted_externally_and_equal_duckdbs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    // About a tenth of the table's decoded rows: no bucket fits.
    let limit = 1 << 20;
    let ctx = crate::reference::context(limit);
    let cases = [
        (
            // Two window partitions, one of 29 rows in 30: its bucket holds
            // nearly the whole table.
            "skewed",
            "select id3, id5, v1, v3, row_number() over (partition by id5 < 30 \
             order by v3 desc nulls first, id3) as rn from T",
        ),
        (
            // Ties, a NULL partition key and NULLs first, the columns sharing one
            // order.
            "ranks",
            "select id1, id4, v1, v2, rank() over (partition by id4 > 1 \
             order by v1 nulls first, v2 desc) as r, dense_rank() over (partition by id4 > 1 \
             order by v1 nulls first, v2 desc) as dr from T",
        ),
        (
            // No partition: sorted by the external merge sort, then numbered a
            // key range after another.
            "whole",
            "select id3, v1, v3, row_number() over (order by v3 desc nulls first, id3) as rn, \
             dense_rank() over (order by v3 desc nulls first, id3) as dr from T",
        ),
        (
            "whole_ties",
            "select id4, v1, rank() over (order by v1 nulls first, id4 desc) as r from T",
        ),
        (
            // No order: every row of a partition ties.
            "unordered",
            "select id3, id5, v3, rank() over (partition by id5 < 30) as r from T",
        ),
    ];
    let csv = dir.path().join("t.csv");
    let mut queries = serde_json::Map::new();
    for (name, sql) in cases {
        let ours = sql.replace(
            " T",
            &format!(" read_csv('{}', blocksize=65536)", csv.display()),
        );
        let plan = crate::sql::plan_query(&ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.starts_with("whole") {
            let sizing = crate::convert::PlanSizing {
                threads: 2,
                memory_limit: limit,
            };
            let (tasks, _) = crate::convert::plan_query(&plan, sizing).unwrap();
            let links = tasks
                .tasks
                .iter()
                .filter(|t| t.op.name == "frame_number")
                .count();
            assert!(links > 1, "{name}: {links} numbering tasks");
        }
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&plan, &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name} under {limit} bytes: {e}"));
        queries.insert(name.to_string(), sql.replace(" T", " t").into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
    let peak = ctx.pool.peak_reserved();
    assert!(peak <= limit, "peak reserved {peak} > {limit}");
    assert!(ctx.spill.spilled_bytes() > 0, "nothing was spilled");
}

#[test]
fn sql_queries_equal_duckdbs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let ctx = crate::reference::context(16 << 20);
    // Each is DuckDB's over the view `t`, ours over the CSV file (`T`).
    let cases = [
        (
            "mixed_distinct",
            "select id4, count(*) as n, count(distinct id1) as d, avg(v3) as m, sum(v1) as s, \
             min(id2) as lo, max(v2) as hi from T group by id4",
        ),
        (
            "whole_distinct",
            "select count(distinct id3) as d, count(v1) as c, avg(v1) as m from T where v2 > 3",
        ),
        (
            "having",
            "select id1, id2, sum(v3) as s from T where id5 < 20 group by id1, id2 \
             having count(*) > 40 and sum(v1) > 100",
        ),
        (
            "o_ordered",
            "select id2, avg(v3) as m, max(v1) - min(v2) as r from T group by id2 \
             order by m desc, id2 limit 7 offset 2",
        ),
        (
            "expressions",
            "select id1, lower(id2) || '-' || cast(id4 as varchar) as k, v3 * 2 + v2 as w, \
             case when v1 is null then 'none' when v1 > 3 then 'big' else 'small' end as c \
             from T where id1 like 'id00%' and v3 between 10 and 20",
        ),
        (
            "distinct_rows",
            "select distinct id1, id4 from T where id4 is not null",
        ),
        (
            "with",
            "with a as (select id1, sum(v1) as s from T group by id1), \
             b as (select * from a where s > 0) select id1, s * 2 as s2 from b",
        ),
        (
            "qualify",
            "select id2, v3, rank() over (partition by id2 order by v1 desc, v3) as r from T \
             qualify r <= 3",
        ),
        (
            "top_per_group",
            "select id6, largest2_v3 from (select id6, v3 as largest2_v3, row_number() over \
             (partition by id6 order by v3 desc) as order_v3 from T where v3 is not null) \
             sub_query where order_v3 < 3",
        ),
        (
            "top_qualified",
            "select id2, id4, v3 from T \
             qualify row_number() over (partition by id2, id4 order by v3 desc) <= 2",
        ),
    ];
    let csv = dir.path().join("t.csv");
    let mut queries = serde_json::Map::new();
    for (name, sql) in cases {
        let ours = sql.replace(" T", &format!(" '{}'", csv.display()));
        let plan = crate::sql::plan_query(&ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.starts_with("top_") {
            // Each part keeps its first rows of every window partition before the
            // shuffle.
            let sizing = crate::convert::PlanSizing {
                threads: 2,
                memory_limit: 16 << 20,
            };
            let (tasks, _) = crate::convert::plan_query(&plan, sizing).unwrap();
            assert!(
                tasks
                    .tasks
                    .iter()
                    .any(|t| t.op.name == "frame_shuffle" && t.op.params["top"]["k"] == 2),
                "no shuffle keeps the top rows"
            );
        }
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&plan, &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        queries.insert(name.to_string(), sql.replace(" T", " t").into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
}

/// `sql` over the table at `path` (named `T` in it) planned, and what its plan
/// says of the input under `key` (`row_groups`, `row_ranges`).
fn planned_read(
    sql: &str,
    path: &std::path::Path,
    key: &str,
) -> (
    crate::frame::logical::LogicalPlan,
    Option<serde_json::Value>,
) {
    let ours = sql.replace(" T", &format!(" '{}'", path.display()));
    let plan = crate::sql::plan_query(&ours).unwrap();
    let sizing = crate::convert::PlanSizing {
        threads: 2,
        memory_limit: 64 << 20,
    };
    let (tasks, _) = crate::convert::plan_query(&plan, sizing).unwrap();
    let read = tasks
        .datasets
        .iter()
        .find(|d| d.role == crate::plan::DatasetRole::Input)
        .and_then(|d| d.meta.get(key).cloned());
    (plan, read)
}

#[test]
fn row_groups_the_statistics_rule_out_are_not_read_and_the_answer_is_duckdbs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    // The table sorted by id4 and v3, in row groups of 1000 rows; NaN in some v3.
    crate::reference::json(
        r#"
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
out = sys.argv[1]
t = pq.read_table(f"{out}/t.parquet").sort_by([("id4", "ascending"), ("v3", "ascending")])
v3 = t.column("v3").to_numpy(zero_copy_only=False).copy()
v3[::997] = np.nan
t = t.set_column(t.schema.get_field_index("v3"), "v3", pa.array(v3))
pq.write_table(t, f"{out}/sorted.parquet", row_group_size=1000)
print("{}")
"#,
        &[&d],
    );
    let ctx = crate::reference::context(64 << 20);
    let cases = [
        (
            "by_key",
            "select id4, count(*) as n, sum(v1) as s from T where id4 = 7 group by id4",
        ),
        (
            "range",
            "select count(*) as n from T where id4 between 3 and 4 and v2 > 2",
        ),
        ("nan", "select count(*) as n from T where v3 > 99.5"),
        ("flipped", "select count(*) as n from T where 18 <= id4"),
        ("none", "select count(*) as n from T where id4 > 1000"),
    ];
    let path = dir.path().join("sorted.parquet");
    let mut queries = serde_json::Map::new();
    for (name, sql) in cases {
        let (plan, read) = planned_read(sql, &path, "row_groups");
        match name {
            // id4 = 7 is a twentieth of the rows: most groups are left out.
            "by_key" | "range" | "flipped" | "none" => {
                let groups = read.unwrap_or_else(|| panic!("{name}: nothing pruned"));
                assert!(groups.as_array().unwrap().len() < 10, "{name}: {groups}");
            }
            _ => {}
        }
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&plan, &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // DuckDB's own Parquet pruning drops NaN rows that its comparison counts
        // as larger than 99.5 (even with `or isnan(v3)`): behind a LIMIT it reads
        // every row group.
        let table = if name == "nan" {
            format!(
                " (select * from read_parquet('{}') limit 1000000000)",
                path.display()
            )
        } else {
            format!(" read_parquet('{}')", path.display())
        };
        let duck = sql.replace(" T", &table);
        queries.insert(name.to_string(), duck.into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
}

/// Keys that are nearly all distinct make the partial tasks flush after every
/// batch (their tables would not reduce anything); the keys that do repeat, in
/// other batches and other parts, still meet in the final tasks.
#[test]
fn nearly_distinct_keys_flush_partial_tables_and_still_meet_in_the_final_ones() {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("distinct.csv");
    let keys = 150_000i64;
    let mut text = String::from("k,v\n");
    // Every key twice, a table apart: in other batches, most in other parts.
    for round in 0..2 {
        for k in 0..keys {
            text.push_str(&format!("{k},{}\n", k * 10 + round));
        }
    }
    std::fs::write(&csv, text).unwrap();
    let sql = format!(
        "select k, count(*) as n, sum(v) as s from '{}' group by k",
        csv.display()
    );
    let plan = crate::sql::plan_query(&sql).unwrap();
    let (_, batches) = crate::convert::query(&plan, &crate::reference::context(256 << 20)).unwrap();
    let mut seen = vec![false; keys as usize];
    for b in &batches {
        let k = b.column(0).as_primitive::<Int64Type>();
        let n = b.column(1).as_primitive::<Int64Type>();
        let s = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            let key = k.value(i);
            assert!(!seen[key as usize], "key {key} twice in the result");
            seen[key as usize] = true;
            assert_eq!((n.value(i), s.value(i)), (2, key * 20 + 1), "key {key}");
        }
    }
    assert!(seen.iter().all(|&s| s), "keys missing");
}

/// A file with one row group and a page index (as arrow-rs and Spark write
/// them): the pages whose bounds rule a filter out are skipped, the rows read
/// are fewer, and the answers are DuckDB's.
#[test]
fn pages_the_page_index_rules_out_are_not_read_and_the_answer_is_duckdbs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    crate::reference::json(
        r#"
import sys, pyarrow.parquet as pq
out = sys.argv[1]
t = pq.read_table(f"{out}/t.parquet").sort_by([("id4", "ascending"), ("v2", "ascending")])
pq.write_table(t, f"{out}/paged.parquet", row_group_size=len(t), data_page_size=2048,
               write_page_index=True, use_dictionary=False)
m = pq.ParquetFile(f"{out}/paged.parquet").metadata
assert m.num_row_groups == 1, m.num_row_groups
print("{}")
"#,
        &[&d],
    );
    let path = dir.path().join("paged.parquet");
    let ctx = crate::reference::context(64 << 20);
    let cases = [
        (
            "by_key",
            "select id4, count(*) as n, sum(v1) as s from T where id4 = 7 group by id4",
        ),
        (
            "two_columns",
            "select count(*) as n, sum(v3) as s from T where id4 between 3 and 4 and v2 >= 9",
        ),
        ("nulls", "select count(*) as n from T where id4 is null"),
        (
            "rows",
            "select id4, v2, v1 from T where id4 = 12 and v2 < 3 order by all",
        ),
    ];
    let mut queries = serde_json::Map::new();
    for (name, sql) in cases {
        let (plan, ranges) = planned_read(sql, &path, "row_ranges");
        let ranges = ranges.unwrap_or_else(|| panic!("{name}: no page pruned"));
        let kept: u64 = ranges[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[1].as_u64().unwrap() - r[0].as_u64().unwrap())
            .sum();
        assert!(kept < 20_000 / 2, "{name}: {kept} rows of 20000 read");
        // The reader yields only those rows.
        let read = crate::storage::frame::FrameReadOptions {
            row_ranges: Some(serde_json::from_value(ranges.clone()).unwrap()),
            ..Default::default()
        };
        let source =
            crate::storage::open_frame(&path, crate::storage::Format::Parquet, &read).unwrap();
        let rows: usize = source
            .read_partition(0)
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows as u64, kept, "{name}");
        let dst = dir.path().join(format!("{name}.parquet"));
        crate::convert::write_query(&plan, &dst, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let duck = sql.replace(" T", &format!(" read_parquet('{}')", path.display()));
        queries.insert(name.to_string(), duck.into());
    }
    let bad = crate::reference::duckdb_mismatches(&d, queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
}

/// A task reading a CSV partition reserves its reader's buffers: the
/// grouping of 20,000 rows reserves little itself, the reader tens of MB.
#[test]
fn a_csv_partitions_reader_holds_a_reservation() {
    use crate::storage::frame::FrameSource;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    crate::reference::json(crate::reference::GROUPBY_TABLE, &[&d]);
    let path = dir.path().join("t.csv");
    let reader = crate::storage::csv::CsvSource::open(&path, &FrameReadOptions::default())
        .unwrap()
        .reader_bytes();
    assert!(reader > 8 << 20, "{reader}");
    let ctx = crate::reference::context(1 << 30);
    let table = Source::open(path, None, FrameReadOptions::default()).unwrap();
    let q1 = spec(&["id1"], vec![call(AggFunc::Sum, &["v1"], "v1")]);
    query(&grouping(&table, &q1), &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(peak >= reader, "peak {peak}, reader {reader}");
}

#[test]
fn a_finished_table_gives_its_results_a_batch_at_a_time_as_finish_does_at_once() {
    use std::sync::Arc;

    use arrow::array::{Float64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::Grouping;

    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Float64, true),
    ]));
    let keys: Vec<Option<String>> = (0..1000)
        .map(|i| (i % 7 != 0).then(|| format!("key {}", i % 300)))
        .collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(keys)),
            Arc::new(Float64Array::from_iter((0..1000).map(|i| Some(i as f64)))),
        ],
    )
    .unwrap();
    let aggs = vec![
        call(AggFunc::Sum, &["v"], "s"),
        call(AggFunc::Size, &[], "n"),
        call(AggFunc::Median, &["v"], "m"),
    ];
    for keyed in [true, false] {
        let spec = spec(if keyed { &["k"] } else { &[] }, aggs.clone());
        for input in [Some(&batch), None] {
            let grouped = || {
                let mut g = Grouping::new(&spec, &schema).unwrap();
                if let Some(b) = input {
                    g.update(b).unwrap();
                }
                g
            };
            let whole = grouped().finish().unwrap();
            let parts: Vec<RecordBatch> = grouped()
                .finish_in_batches(37)
                .unwrap()
                .collect::<crate::Result<_>>()
                .unwrap();
            assert!(parts.iter().all(|p| p.num_rows() <= 37));
            // No rows still give a batch: one row without keys, none with them.
            assert!(!parts.is_empty());
            let joined = arrow::compute::concat_batches(&whole.schema(), &parts).unwrap();
            assert_eq!(joined, whole, "keyed {keyed}, input {}", input.is_some());
        }
    }
}
