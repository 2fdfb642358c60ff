//! Whole queries against DuckDB 2.0's answers: subqueries (scalar and `IN`), set
//! operations and quantiles, each run from CSV and from Parquet over a small
//! generated table (NULL in every column, NaN among the floats) and compared row
//! by row; and the run-time errors they may end in.

use std::path::Path;

use crate::convert::query;

/// Writes `t` (CSV and Parquet) and `s` (a small table of keys, one NULL) into
/// `argv[1]`; results are compared with DuckDB's over them by
/// [`crate::reference::duckdb_mismatches`] (results named `o_...` in order).
const SCRIPT: &str = r#"
import sys
import numpy as np, pyarrow as pa, pyarrow.csv, pyarrow.parquet as pq
out = sys.argv[1]
rng = np.random.default_rng(5)
n = 6000
def nulled(a, every, t=None):
    mask = np.zeros(n, bool); mask[::every] = True
    return pa.array(list(a), mask=mask, type=t)
v = np.round(rng.random(n) * 100, 3)
v[::53] = np.nan
t = pa.table({
    "id1": nulled(["id%02d" % x for x in rng.integers(1, 31, n)], 37),
    "k": nulled(rng.integers(1, 51, n), 29, pa.int64()),
    "v": nulled(v, 41, pa.float64()),
    "w": pa.array(rng.integers(0, 10, n)),
})
pq.write_table(t, f"{out}/t.parquet", row_group_size=1000)
pa.csv.write_csv(t, f"{out}/t.csv")
s = pa.table({
    "sk": pa.array([3, 7, None, 11, 3, 49], pa.int64()),
    "sid": pa.array(["id01", "id05", None, "id07", "zz", "id01"]),
    "sv": pa.array([1.5, 2.0, 7.25, None, 3.0, 2.0]),
})
pq.write_table(s, f"{out}/s.parquet")
pa.csv.write_csv(s, f"{out}/s.csv")
print("{}")
"#;

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::reference::json(SCRIPT, &[dir.path().to_str().unwrap()]);
    dir
}

/// `sql` (over `T` and `S`) with the tables read from `ext` files in `dir`.
fn ours(sql: &str, dir: &Path, ext: &str) -> String {
    sql.replace(
        " T",
        &format!(" '{}'", dir.join(format!("t.{ext}")).display()),
    )
    .replace(
        " S",
        &format!(" '{}'", dir.join(format!("s.{ext}")).display()),
    )
}

/// Runs each case from CSV and from Parquet and asserts DuckDB's answers.
fn equal_duckdbs(cases: &[(&str, &str)]) {
    let dir = fixture();
    let d = dir.path().display().to_string();
    let ctx = crate::reference::context(64 << 20);
    for ext in ["csv", "parquet"] {
        let mut queries = serde_json::Map::new();
        for (name, sql) in cases {
            let text = ours(sql, dir.path(), ext);
            let plan =
                crate::sql::plan_query(&text).unwrap_or_else(|e| panic!("{name} from {ext}: {e}"));
            let (schema, batches) =
                query(&plan, &ctx).unwrap_or_else(|e| panic!("{name} from {ext}: {e}"));
            let path = dir.path().join(format!("{name}.parquet"));
            crate::reference::write_parquet(&path, &batches, schema);
            let duck = sql.replace(" T", " t").replace(" S", " s");
            queries.insert(name.to_string(), duck.into());
        }
        let bad = crate::reference::duckdb_mismatches(&d, queries, &["t", "s"]);
        assert_eq!(bad, serde_json::json!({}), "from {ext}");
    }
}

/// The message of the error `sql` (over `T` and `S`, from CSV) ends in when run.
fn run_error(dir: &Path, sql: &str, limit: u64) -> crate::Error {
    let plan = crate::sql::plan_query(&ours(sql, dir, "csv")).unwrap();
    match query(&plan, &crate::reference::context(limit)) {
        Ok(_) => panic!("{sql} ran"),
        Err(e) => e,
    }
}

#[test]
fn scalar_subqueries_equal_duckdbs() {
    equal_duckdbs(&[
        (
            "where_avg",
            "select id1, k, v from T where v > (select avg(v) from T where v < 50)",
        ),
        (
            "select_list",
            "select k, (select max(k) from T) as m, k * 2 + (select min(sk) from S) as x \
             from T where w = 3",
        ),
        // No row: NULL, so the comparison keeps nothing; the value itself is NULL.
        (
            "empty",
            "select k, (select sk from S where sk > 100) as e from T where w = 1",
        ),
        (
            "empty_filter",
            "select k from T where k = (select sk from S where sk > 100)",
        ),
        (
            "having",
            "select id1, count(*) as n from T group by id1 \
             having count(*) > (select count(*) from T) / 40",
        ),
        (
            "nested",
            "select k from T where k = (select max(sk) from S where sk < \
             (select avg(k) from T))",
        ),
        (
            "in_aggregate",
            "select w, sum(v - (select avg(v) from T)) as d from T group by w",
        ),
        (
            "o_sorted",
            "select id1, k from T where k >= (select max(k) from T) - 1 and id1 is not null \
             order by id1, k limit 20",
        ),
        (
            "string",
            "select id1, count(*) as n from T where id1 = (select min(sid) from S) group by id1",
        ),
        // The first row of a sorted, limited subquery.
        (
            "top",
            "select k, w from T where k = (select k from T where w = 9 order by k desc \
             limit 1)",
        ),
        (
            "cte",
            "with m as (select avg(k) as a from T) \
             select w, count(*) as n from T where k > (select a from m) group by w",
        ),
    ]);
}

#[test]
fn in_subqueries_equal_duckdbs() {
    equal_duckdbs(&[
        (
            "in_ints",
            "select id1, k from T where k in (select sk from S)",
        ),
        // The set holds a NULL: NOT IN keeps no row (NULL, not true).
        (
            "not_in_null",
            "select k from T where k not in (select sk from S)",
        ),
        (
            "not_in",
            "select k, w from T where k not in (select sk from S where sk is not null)",
        ),
        (
            "values",
            "select k, k in (select sk from S) as a, k not in (select sk from S) as b, \
             v in (select sv from S) as c from T where w < 3",
        ),
        (
            "strings",
            "select id1, w from T where id1 in (select sid from S)",
        ),
        // Ints looked up among floats: the set is converted once.
        ("wider", "select k from T where k in (select sv from S)"),
        (
            "float_ints",
            "select v from T where v in (select sk from S)",
        ),
        (
            "empty_set",
            "select k, k in (select sk from S where sk > 100) as a from T where w = 2",
        ),
        (
            "many",
            "select count(*) as n from T where k in (select k from T where w = 4)",
        ),
        (
            "grouped",
            "select id1, sum(v) as s from T where id1 not in (select sid from S where sid \
             is not null) group by id1",
        ),
        (
            "nested_in",
            "select k from T where k in (select sk from S where sk in \
             (select k from T where w = 5))",
        ),
    ]);
}

#[test]
fn a_scalar_subquery_of_several_rows_fails_as_duckdb_does() {
    let dir = fixture();
    for sql in [
        "select k from T where k = (select sk from S)",
        "select (select k from T where w = 3) as x from S",
    ] {
        let e = run_error(dir.path(), sql, 64 << 20);
        assert!(matches!(e, crate::Error::SubqueryRows { .. }), "{sql}: {e}");
        let text = e.to_string();
        assert!(text.contains("more than one row"), "{text}");
        assert!(text.contains("(SELECT "), "{text}");
    }
}

#[test]
fn an_in_set_larger_than_the_memory_left_says_its_size_and_the_way_out() {
    let dir = fixture();
    // The set of `k` from 6000 rows needs a few hundred KiB.
    let e = run_error(
        dir.path(),
        "select count(*) from S where sk in (select k from T)",
        96 << 10,
    );
    let text = e.to_string();
    assert!(matches!(e, crate::Error::SubqueryTooLarge { .. }), "{text}");
    assert!(text.contains("6000 rows"), "{text}");
    assert!(text.contains("join"), "{text}");
    assert_eq!(e.exit_code(), 3);
}

#[test]
fn unions_equal_duckdbs() {
    equal_duckdbs(&[
        (
            "all",
            "select k, v from T where w = 1 union all select sk, sv from S",
        ),
        (
            "three",
            "select k from T where w = 2 union all select sk from S union all \
             select w from T where w = 9",
        ),
        // Types unified by position: int and float give float, int and string a
        // string; the names are the first query's.
        (
            "widened",
            "select k as a, id1 as b from T union all select sv, sk from S",
        ),
        (
            "distinct",
            "select id1, w from T union select sid, sk from S",
        ),
        // A boolean beside numbers is a number.
        (
            "booleans",
            "select w > 4 as a, k > 10 as b from T where w = 1 union all \
             select sk, sv from S",
        ),
        (
            "distinct_nan",
            "select v from T where w = 3 union select v from T where w = 4",
        ),
        (
            "o_ordered",
            "select k, id1 from T where w = 5 union all select sk, sid from S \
             order by k desc nulls first, id1 limit 15 offset 3",
        ),
        (
            "grouped",
            "select w, count(*) as n, sum(k) as s from (select w, k from T where w < 5 \
             union all select w, k from T where w > 6) u group by w",
        ),
        (
            "mixed",
            "select w from T where w < 3 union select sk from S union all select w from T \
             where w = 8",
        ),
        (
            "with_subquery",
            "select k from T where k > (select avg(k) from T) and w = 1 \
             union all select sk from S where sk in (select k from T)",
        ),
        (
            "in_union",
            "select k, w from T where k in (select sk from S union all select 50 from S)",
        ),
    ]);
}

#[test]
fn discrete_quantiles_equal_duckdbs() {
    equal_duckdbs(&[
        (
            "whole",
            "select quantile_disc(k, 0) as a, quantile_disc(k, 0.5) as b, \
             quantile_disc(k, 1) as c, quantile(v, 0) as d, quantile(v, 0.5) as e, \
             quantile(v, 1) as f, quantile_disc(w, 0.3) as g, quantile_cont(k, 0.5) as h \
             from T",
        ),
        (
            "grouped",
            "select w, quantile_disc(k, 0.5) as a, quantile(v, 0.9) as b, \
             quantile_disc(v, 0.99) as c, median(v) as d from T group by w",
        ),
        // Groups of NULLs only, and groups without NaN.
        (
            "sparse",
            "select id1, quantile_disc(case when w = 0 then k end, 0.5) as a, \
             quantile(case when v < 50 then v end, 0.25) as b from T group by id1",
        ),
        (
            "none",
            "select quantile_disc(k, 0.5) as a from T where w > 100",
        ),
        (
            "small",
            "select quantile_disc(sk, 0) as a, quantile_disc(sk, 0.5) as b, \
             quantile_disc(sk, 1) as c, quantile(sv, 0.5) as d, quantile(sv, 0.75) as e \
             from S",
        ),
    ]);
}

#[test]
fn a_union_goes_straight_into_the_tasks_that_read_it() {
    let dir = fixture();
    let sql = "select w, count(*) as n from (select w, k from T where w < 5 union all \
               select sk, sk * 2 from S) u group by w";
    let plan = crate::sql::plan_query(&ours(sql, dir.path(), "parquet")).unwrap();
    let sizing = crate::convert::PlanSizing {
        threads: 2,
        memory_limit: 64 << 20,
    };
    let (tasks, _) = crate::convert::plan_query(&plan, sizing).unwrap();
    let partials: Vec<_> = tasks
        .tasks
        .iter()
        .filter(|t| t.op.name == "group_partial")
        .collect();
    // `t` has 6 row groups, `s` one: read by the grouping tasks (two runs of
    // the input, one a thread; `s` in a run of its own, as its steps differ),
    // each through its own query's steps, with no task copying the rows first.
    assert_eq!(partials.len(), 3);
    for t in &partials {
        let dataset = tasks.dataset(t.inputs[0].dataset()).unwrap();
        assert_eq!(dataset.role, crate::plan::DatasetRole::Input, "{t:?}");
    }
    let steps: std::collections::BTreeSet<String> = partials
        .iter()
        .map(|t| t.op.params["pre"].to_string())
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(!tasks.tasks.iter().any(|t| t.op.name == "frame_pipeline"
        && tasks
            .tasks
            .iter()
            .any(|g| g.op.name == "group_partial" && g.deps.contains(&t.id))));
}

#[test]
fn steps_after_a_grouping_run_in_its_final_tasks() {
    let cases = [
        (
            "renamed",
            "select id1 as key, k, sum(v) as total, count(*) as n from T group by id1, k",
        ),
        (
            "having_and_expressions",
            "select k, sum(v) / count(*) as ratio, max(w) - min(w) as spread from T \
             group by k having count(*) > 100 and sum(v) is not null",
        ),
        (
            "o_sorted_after",
            "select w, count(*) as n from T group by w order by n desc, w",
        ),
    ];
    let dir = fixture();
    let sizing = crate::convert::PlanSizing {
        threads: 2,
        memory_limit: 64 << 20,
    };
    for (name, sql) in &cases[..2] {
        let plan = crate::sql::plan_query(&ours(sql, dir.path(), "parquet")).unwrap();
        let (tasks, lowered) = crate::convert::plan_query(&plan, sizing).unwrap();
        // No task copies the groups through the steps: the final tasks apply
        // them, and publish the result's parts.
        assert!(
            !tasks.tasks.iter().any(|t| t.op.name == "frame_pipeline"),
            "{name}"
        );
        for part in &lowered.parts {
            let t = &tasks.tasks[part.task.unwrap() as usize];
            assert_eq!(t.op.name, "group_final", "{name}");
            assert_ne!(
                t.op.params["post"]["steps"],
                serde_json::json!([]),
                "{name}"
            );
        }
    }
    equal_duckdbs(&cases);
}

/// The rows of a table file read back by our own reader, each as text, sorted.
fn sorted_rows(path: &Path) -> Vec<String> {
    let format = crate::storage::detect(path).unwrap();
    let frame = crate::storage::open_frame(path, format, &Default::default()).unwrap();
    let mut rows = Vec::new();
    let batches = (0..frame.num_partitions()).flat_map(|p| frame.read_partition(p).unwrap());
    for batch in batches {
        let batch = batch.unwrap();
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c, &Default::default()).unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            let row: Vec<String> = columns.iter().map(|c| c.value(r).to_string()).collect();
            rows.push(row.join("|"));
        }
    }
    rows.sort();
    rows
}

#[test]
fn a_grouping_written_to_a_file_encodes_its_parts_in_its_final_tasks() {
    // Nearly distinct groups (15,000 possible keys, 6,000 rows): every bucket
    // holds more than a quarter of a 1,000-row row group, and is encoded by its
    // final task. Ten groups: each bucket a few rows, gathered into one row group.
    // About 510 groups: buckets gathered into row groups of at least a quarter.
    let cases = [
        (
            "many",
            "select id1, k, w, sum(v) as v, count(*) as n from T group by id1, k, w",
        ),
        (
            "few",
            "select w, count(*) as n, min(id1) as lo from T group by w",
        ),
        ("some", "select k, w, count(*) as n from T group by k, w"),
    ];
    let dir = fixture();
    let d = dir.path();
    let ctx = crate::reference::context(64 << 20);
    let options = crate::convert::ConvertOptions {
        row_group_rows: Some(1000),
        ..Default::default()
    };
    let mut queries = serde_json::Map::new();
    for (name, sql) in cases {
        let plan = crate::sql::plan_query(&ours(sql, d, "parquet")).unwrap();
        let dst = d.join(format!("{name}.parquet"));
        let tasks = crate::convert::plan_query_file(
            &plan,
            &d.join(format!("planned-{name}.parquet")),
            &options,
            crate::convert::PlanSizing::of(&ctx),
        )
        .unwrap();
        // The finals publish the output's parts; only the chain copies them.
        let ops: Vec<&str> = tasks.tasks.iter().map(|t| t.op.name.as_str()).collect();
        assert!(
            !ops.iter()
                .any(|o| ["encode_table_part", "regroup_rows"].contains(o)),
            "{name}: {ops:?}"
        );
        let finals: Vec<_> = tasks
            .tasks
            .iter()
            .filter(|t| t.op.name == "group_final")
            .collect();
        assert!(finals.len() >= 4, "{name}: {} buckets", finals.len());
        assert!(
            finals.iter().all(|t| t.op.params["sink"] == "dst"),
            "{name}"
        );

        crate::convert::write_query(&plan, &dst, &options, &ctx).unwrap();
        let file =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&dst).unwrap())
                .unwrap();
        let groups: Vec<i64> = parquet::file::reader::FileReader::metadata(&file)
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        match name {
            "few" => assert_eq!(groups, [10], "{name}"),
            // Buckets of about 130 groups: gathered until they are a quarter of
            // a row group, then written, not carried to the last task.
            "some" => {
                assert_eq!(groups.len(), 2, "{name}: {groups:?}");
                assert!(groups[0] >= 250, "{name}: {groups:?}");
            }
            _ => {
                assert!(groups.len() > finals.len(), "{name}: {groups:?}");
                assert!(groups.iter().all(|&n| n <= 1000), "{name}: {groups:?}");
            }
        }
        // The other single-file formats hold the same rows.
        let want = sorted_rows(&dst);
        for ext in ["csv", "arrow"] {
            let other = d.join(format!("{name}.{ext}"));
            crate::convert::write_query(&plan, &other, &options, &ctx).unwrap();
            assert_eq!(sorted_rows(&other), want, "{name}.{ext}");
        }
        queries.insert(name.into(), sql.replace(" T", " t").into());
    }
    let bad = crate::reference::duckdb_mismatches(&d.display().to_string(), queries, &["t"]);
    assert_eq!(bad, serde_json::json!({}));
}
