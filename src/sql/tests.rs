//! The SQL front end against DuckDB 2.0: result names and types of planned queries
//! compared with `DESCRIBE` in the reference environment, the plans' shapes, and
//! hostile input, each answered with a plan or an error that says what and where.

use arrow::datatypes::DataType;
use serde_json::Value as Json;

use super::SqlPlanner;
use crate::frame::logical::LogicalPlan;
use crate::frame::ops::aggregate::AggFunc;

/// Writes the fixtures into `sys.argv[1]`: `x.csv` (nulls in every column but v2),
/// `y.csv` (`;`-separated), `h.csv` (no header), `x.parquet` (with a date and a timestamp), `parts/`
/// (two Parquet parts), `x.arrow` (Arrow IPC), an empty directory `empty/`.
const FIXTURES: &str = r#"
import sys, os, datetime
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
d = sys.argv[1]
t = pa.table({
    'id1': ['a', 'b', 'a', None, 'c', 'b'],
    'id6': pa.array([1, 2, 1, 3, None, 2], pa.int64()),
    'v1': pa.array([1, 2, 3, None, 5, 6], pa.int64()),
    'v2': pa.array([5, 4, 3, 2, 1, 0], pa.int64()),
    'v3': [1.5, None, 2.5, 3.5, 0.5, 4.0],
})
pc.write_csv(t, os.path.join(d, 'x.csv'))
pc.write_csv(t, os.path.join(d, 'y.csv'), pc.WriteOptions(delimiter=';'))
pc.write_csv(t, os.path.join(d, 'h.csv'), pc.WriteOptions(include_header=False))
p = t.append_column('d', pa.array([datetime.date(2020, 1, i + 1) for i in range(6)]))
p = p.append_column('ts', pa.array([datetime.datetime(2020, 1, 1, i) for i in range(6)], pa.timestamp('us')))
pq.write_table(p, os.path.join(d, 'x.parquet'))
os.makedirs(os.path.join(d, 'parts'))
pq.write_table(p.slice(0, 3), os.path.join(d, 'parts', 'part.0.parquet'))
pq.write_table(p.slice(3), os.path.join(d, 'parts', 'part.1.parquet'))
with pa.ipc.new_file(os.path.join(d, 'x.arrow'), t.schema) as w:
    w.write_table(t)
os.makedirs(os.path.join(d, 'empty'))
import json; print(json.dumps(True))
"#;

/// DuckDB's `DESCRIBE` of each query of `sys.argv[2]` (JSON), run in `sys.argv[1]`:
/// `[[name, type], ...]`, or `{"error": message}`.
const DESCRIBE: &str = r#"
import sys, os, json, duckdb
os.chdir(sys.argv[1])
con = duckdb.connect()
out = []
for q in json.loads(sys.argv[2]):
    try:
        out.append([[r[0], r[1]] for r in con.sql('DESCRIBE ' + q).fetchall()])
    except Exception as e:
        out.append({'error': str(e)})
print(json.dumps(out))
"#;

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::reference::json(FIXTURES, &[dir.path().to_str().unwrap()]);
    dir
}

fn planner(dir: &tempfile::TempDir) -> SqlPlanner {
    SqlPlanner::new().with_base_dir(dir.path())
}

/// Whether blockwise's type is DuckDB's, or the one blockwise computes in its
/// place (integers as BIGINT, decimals as DOUBLE, HUGEINT sums as BIGINT).
fn same_type(ours: &DataType, duck: &str) -> bool {
    let theirs = match duck {
        "BOOLEAN" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INTEGER" => return matches!(ours, DataType::Int32 | DataType::Int64),
        "BIGINT" | "HUGEINT" => DataType::Int64,
        "FLOAT" => DataType::Float32,
        "DOUBLE" => DataType::Float64,
        "VARCHAR" => {
            return matches!(
                ours,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        }
        "DATE" => DataType::Date32,
        "TIMESTAMP" => {
            return matches!(
                ours,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
            )
        }
        "INTERVAL" => return matches!(ours, DataType::Interval(_)),
        d if d.starts_with("DECIMAL") => DataType::Float64,
        _ => return false,
    };
    *ours == theirs
}

#[test]
fn names_and_types_match_duckdb() {
    let dir = fixture();
    let queries = [
        "SELECT * FROM 'x.csv'",
        "SELECT id1, v1 + 1, v1 % 2, v1 // 2, v3 * 2, -v1, v1 ^ 2, v1 ** 2, v1 / 2 FROM 'x.csv'",
        "SELECT id1 AS k, sum(v1) AS s FROM 'x.csv' GROUP BY k",
        "SELECT id1, sum(v1), count(*), count(v1), count(DISTINCT v1), avg(v3), min(v3), max(id1) \
         FROM 'x.csv' GROUP BY 1",
        "SELECT max(v1) - min(v2), corr(v1, v2)^2, pow(corr(v1, v2), 2), sum(v1 * 2) FROM 'x.csv'",
        "SELECT median(v3), quantile_cont(v3, 0.9), stddev(v3), stddev_samp(v3), stddev_pop(v3), \
         variance(v3), var_samp(v3), var_pop(v3), covar_samp(v1, v3), covar_pop(v1, v3), \
         bool_or(v1 > 1), bool_and(v1 > 1), mean(v1), COUNT(*), Sum(v1) FROM 'x.csv'",
        "SELECT id1, id6, sum(v3) FROM 'x.csv' GROUP BY id1, id6 HAVING sum(v3) > 1 \
         ORDER BY 3 DESC LIMIT 2",
        "SELECT id6, largest2_v3 FROM (SELECT id6, v3 AS largest2_v3, row_number() OVER \
         (PARTITION BY id6 ORDER BY v3 DESC) AS order_v3 FROM 'x.csv' WHERE v3 IS NOT NULL) \
         sub_query WHERE order_v3 <= 2",
        "WITH t AS (SELECT id1, v1 FROM 'x.csv' WHERE v1 > 1) SELECT t.id1, count(*) FROM t \
         GROUP BY t.id1",
        "WITH a AS (SELECT v1 FROM 'x.csv'), b AS (SELECT v1 * 2 AS w FROM a) SELECT w FROM b",
        "SELECT DISTINCT id1 FROM 'x.csv' ORDER BY id1",
        "SELECT id1, first(v1), last(id1), any_value(v3), arbitrary(v2), first(id1) FROM 'x.csv' \
         GROUP BY id1",
        "SELECT * FROM read_csv('y.csv', delim=';', header=true)",
        "SELECT * FROM read_csv_auto('x.csv')",
        "SELECT * FROM read_csv('x.csv', types={'v1': 'DOUBLE', 'id6': 'VARCHAR'})",
        "SELECT * FROM read_csv('x.csv', dtypes={'v2': 'INTEGER', 'v3': 'FLOAT'})",
        "SELECT * FROM read_csv('x.csv', column_types={'v1': 'INT8', 'v2': 'REAL'})",
        "SELECT * FROM read_csv('x.csv', types=['VARCHAR', 'DOUBLE'])",
        "SELECT * FROM read_csv('h.csv', header=false)",
        "SELECT * FROM read_csv('x.csv', header=false)",
        "SELECT column2 + 1 FROM read_csv('h.csv', header=false, types={'column4': 'VARCHAR'})",
        "SELECT * FROM 'x.parquet'",
        "SELECT * FROM read_parquet('x.parquet')",
        "SELECT * FROM 'parts/*.parquet'",
        "SELECT CAST(v1 AS VARCHAR), v1::DOUBLE, v3::INTEGER, TRY_CAST(id1 AS BIGINT), \
         v1::BOOLEAN FROM 'x.csv'",
        "SELECT v1 BETWEEN 1 AND 2, id1 LIKE 'a%', id1 ILIKE 'A%', v1 IN (1, 2), v1 NOT IN (1), \
         id1 NOT LIKE 'a', v1 NOT BETWEEN 1 AND 2, CASE WHEN v1 > 1 THEN 'big' ELSE 'small' END, \
         CASE v1 WHEN 1 THEN 'one' END, v1 IS NULL, v1 IS NOT NULL, id1 || 'x', NOT (v1 > 1), \
         v1 = 1 AND v2 <> 2 OR v3 >= 1 FROM 'x.csv'",
        "SELECT d, DATE '2020-01-01', TIMESTAMP '2020-01-01 10:00:00', ts, year(d), \
         d + 1, INTERVAL '3 days' FROM 'x.parquet'",
        "SELECT v1 FROM 'x.csv' ORDER BY v2",
        "SELECT id1, sum(v1) FROM 'x.csv' GROUP BY id1 ORDER BY sum(v3), id1",
        "SELECT v1 + 1 AS a, a * 2 AS b FROM 'x.csv' WHERE a > 1",
        "SELECT * EXCLUDE (v2) FROM 'x.csv'",
        "SELECT t.* FROM 'x.csv' t",
        "SELECT id1, rank() OVER (ORDER BY v3 DESC), dense_rank() OVER (PARTITION BY id1 \
         ORDER BY v1 ASC NULLS FIRST) FROM 'x.csv' QUALIFY rank() OVER (ORDER BY v3 DESC) <= 3",
        "SELECT a, b FROM 'x.csv' t(a, b)",
        "SELECT x.v1, x.v3 FROM 'x.csv'",
        "SELECT count(*) FROM 'x.csv'",
        "SELECT quantile_disc(v1, 0.5), quantile(v3, 0.25), quantile_disc(v3, 1), \
         quantile(id6, 0) FROM 'x.csv'",
        "SELECT v1, id1 FROM 'x.csv' UNION ALL SELECT v3, v2 FROM 'x.csv' UNION ALL \
         SELECT NULL, d FROM 'x.parquet'",
        "SELECT v1 AS a FROM 'x.csv' UNION SELECT v2 FROM 'x.csv' ORDER BY a",
        "SELECT v1, (SELECT max(v3) FROM 'x.csv') AS m, v1 + (SELECT min(v2) FROM 'x.csv') AS s, \
         v1 IN (SELECT v2 FROM 'x.csv') AS i, v3 NOT IN (SELECT v1 FROM 'x.csv') AS n, \
         (SELECT max(id1) FROM 'x.csv') AS t FROM 'x.csv' WHERE v1 > (SELECT avg(v1) FROM 'x.csv')",
        "SELECT id1, count(*) AS n FROM 'x.csv' GROUP BY ALL ORDER BY n DESC, id1 NULLS FIRST",
        "SELECT v1 + 1 FROM 'x.csv' GROUP BY v1",
        "SELECT \"V1\", V3 FROM 'x.csv'",
        "SELECT lower(id1), coalesce(v1, 0), abs(v1), round(v3, 1), upper(id1) FROM 'x.csv'",
        "SELECT * FROM 'x.csv' LIMIT 2 OFFSET 1",
        "FROM 'x.csv' SELECT v1",
        "SELECT 1.5 + v3, 10000000000, 'abc', true, NULL::INTEGER, -2 FROM 'x.csv'",
        "SELECT id1, max(v3) - min(v3) AS range_v3 FROM 'x.csv' GROUP BY id1",
        "SELECT id6, v1 FROM (SELECT * FROM 'x.csv') ORDER BY ALL",
        "SELECT sub.s FROM (SELECT sum(v1) AS s FROM 'x.csv') AS sub",
        "SELECT id1, sum(v1) AS s FROM 'x.csv' GROUP BY id1 HAVING s > 2 ORDER BY s DESC",
        "SELECT v1 FROM 'x.csv' t WHERE t.v1 > 1 ORDER BY t.v3 DESC NULLS LAST",
        "SELECT v1, v1 FROM 'x.csv' ORDER BY 1",
        "SELECT count(*) AS n FROM 'x.csv' WHERE id1 IN ('a', 'b') AND v3 BETWEEN 1 AND 3",
        "SELECT year(d), month(d), day(d), hour(ts), second(ts), trim(id1), substring(id1, 1, 2), \
         nullif(v1, 1), replace(id1, 'a', 'b'), ltrim(id1), ceil(v3), least(v1, 2), \
         v1 AS \"year\", \"year\" + 1, floor(v3), TRIM(id1), EXTRACT(year FROM d), \
         SUBSTRING(id1 FROM 2), abs(\"V1\") FROM 'x.parquet'",
    ];
    let duck = crate::reference::json(
        DESCRIBE,
        &[
            dir.path().to_str().unwrap(),
            &serde_json::to_string(&queries[..]).unwrap(),
        ],
    );
    let planner = planner(&dir);
    let mut failures = Vec::new();
    for (q, d) in queries.iter().zip(duck.as_array().unwrap()) {
        let Json::Array(cols) = d else {
            failures.push(format!("{q}\n  DuckDB refuses it: {d}"));
            continue;
        };
        let schema = match planner.plan(q).and_then(|p| p.schema()) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{q}\n  blockwise: {e}"));
                continue;
            }
        };
        let ours: Vec<(String, DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let theirs: Vec<(&str, &str)> = cols
            .iter()
            .map(|c| (c[0].as_str().unwrap(), c[1].as_str().unwrap()))
            .collect();
        let agree = ours.len() == theirs.len()
            && ours
                .iter()
                .zip(&theirs)
                .all(|((n, t), (dn, dt))| n == dn && same_type(t, dt));
        if !agree {
            failures.push(format!(
                "{q}\n  blockwise: {ours:?}\n  DuckDB:    {theirs:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The operators of a plan, top down: `Project(Filter(Scan))`.
fn shape(plan: &LogicalPlan) -> String {
    let (name, input) = match plan {
        LogicalPlan::Scan(_) => return "Scan".into(),
        LogicalPlan::Filter { input, .. } => ("Filter", input),
        LogicalPlan::Project { input, .. } => ("Project", input),
        LogicalPlan::Aggregate { input, .. } => ("Aggregate", input),
        LogicalPlan::Window { input, .. } => ("Window", input),
        LogicalPlan::Sort { input, .. } => ("Sort", input),
        LogicalPlan::Limit { input, .. } => ("Limit", input),
        LogicalPlan::Distinct { input } => ("Distinct", input),
        LogicalPlan::WithSubqueries { input, subqueries } => {
            let inner: Vec<String> = subqueries.iter().map(|s| shape(&s.plan)).collect();
            return format!("With[{}]({})", inner.join(", "), shape(input));
        }
        LogicalPlan::Union { inputs } => {
            let inner: Vec<String> = inputs.iter().map(shape).collect();
            return format!("Union({})", inner.join(", "));
        }
    };
    format!("{name}({})", shape(input))
}

#[test]
fn plans_have_the_expected_shape() {
    let dir = fixture();
    let p = planner(&dir);
    let cases = [
        ("SELECT * FROM 'x.csv'", "Project(Scan)"),
        (
            "SELECT id1, sum(v1) FROM 'x.csv' WHERE v2 > 0 GROUP BY id1 HAVING count(*) > 1 \
             ORDER BY 2 DESC LIMIT 3",
            "Limit(Sort(Project(Filter(Aggregate(Filter(Scan))))))",
        ),
        (
            "SELECT v1 FROM 'x.csv' QUALIFY row_number() OVER (ORDER BY v1) = 1",
            "Project(Filter(Window(Scan)))",
        ),
        (
            "SELECT v1 FROM 'x.csv' ORDER BY v3",
            "Project(Sort(Project(Scan)))",
        ),
        (
            "SELECT DISTINCT id1 FROM 'x.csv'",
            "Distinct(Project(Scan))",
        ),
        (
            "WITH t AS (SELECT v1 FROM 'x.csv') SELECT * FROM t",
            "Project(Project(Scan))",
        ),
        // One union of any number of queries; a query whose types differ is cast.
        (
            "SELECT v1 FROM 'x.csv' UNION ALL SELECT v2 FROM 'x.csv' UNION ALL SELECT v3 FROM \
             'x.csv' ORDER BY 1 LIMIT 2",
            "Limit(Sort(Union(Project(Project(Scan)), Project(Project(Scan)), Project(Project(Scan)))))",
        ),
        (
            "SELECT v1 FROM 'x.csv' UNION SELECT v1 FROM 'x.csv' UNION ALL SELECT v1 FROM 'x.csv'",
            "Union(Distinct(Union(Project(Scan), Project(Scan))), Project(Scan))",
        ),
        (
            "SELECT v1 FROM 'x.csv' UNION ALL SELECT v1 FROM 'x.csv' UNION SELECT v1 FROM 'x.csv'",
            "Distinct(Union(Project(Scan), Project(Scan), Project(Scan)))",
        ),
        // The subqueries listed at the top, inner ones first.
        (
            "SELECT v1 FROM 'x.csv' WHERE v1 > (SELECT avg(v1) FROM 'x.csv' WHERE v2 IN \
             (SELECT v2 FROM 'x.csv'))",
            "With[Project(Scan), Project(Aggregate(Filter(Scan)))](Project(Filter(Scan)))",
        ),
    ];
    for (q, want) in cases {
        let plan = p.plan(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(shape(&plan), want, "{q}");
    }
}

/// The Aggregate node of a plan.
fn aggregate(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::Aggregate { .. } => plan,
        LogicalPlan::Scan(_) => panic!("no aggregate"),
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Project { input, .. }
        | LogicalPlan::Window { input, .. }
        | LogicalPlan::Sort { input, .. }
        | LogicalPlan::Limit { input, .. }
        | LogicalPlan::Distinct { input }
        | LogicalPlan::WithSubqueries { input, .. } => aggregate(input),
        LogicalPlan::Union { .. } => panic!("no aggregate above a union"),
    }
}

#[test]
fn each_aggregate_is_computed_once_and_keys_are_group_exprs() {
    let dir = fixture();
    let plan = planner(&dir)
        .plan(
            "SELECT id1, sum(v1), sum(v1) + 1, count(DISTINCT v2), quantile_cont(v3, 0.25) \
             FROM 'x.csv' GROUP BY id1 HAVING sum(v1) > 0 ORDER BY sum(v1)",
        )
        .unwrap();
    let LogicalPlan::Aggregate { keys, aggs, .. } = aggregate(&plan) else {
        unreachable!()
    };
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].1, "id1");
    let names: Vec<&str> = aggs.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["sum(v1)", "count(DISTINCT v2)", "quantile_cont(v3, 0.25)"]
    );
    assert!(aggs[1].distinct && aggs[1].func == AggFunc::Count);
    assert_eq!(aggs[2].func, AggFunc::Quantile { q: 0.25 });
}

#[test]
fn sort_defaults_put_nulls_last_both_ways_as_duckdb_2() {
    let dir = fixture();
    let plan = planner(&dir)
        .plan("SELECT v1 FROM 'x.csv' ORDER BY v1 DESC, v2, v3 DESC NULLS FIRST")
        .unwrap();
    // v2 and v3 are not selected: they are sorted on as hidden columns, which the
    // top Project drops.
    let LogicalPlan::Project { input, .. } = &plan else {
        panic!("{plan:?}")
    };
    let LogicalPlan::Sort { keys, .. } = &**input else {
        panic!("{plan:?}")
    };
    let flags: Vec<(bool, bool)> = keys.iter().map(|k| (k.descending, k.nulls_first)).collect();
    assert_eq!(flags, [(true, false), (false, false), (true, true)]);
    let duck = crate::reference::json(
        "import duckdb, json; print(json.dumps(duckdb.sql(\
         'select x from (values (1),(null),(2)) t(x) order by x desc').fetchall()))",
        &[],
    );
    assert_eq!(duck, serde_json::json!([[2], [1], [null]]));
    let plan = planner(&dir)
        .plan("SELECT v1 FROM 'x.csv' ORDER BY v1 DESC, v1 NULLS FIRST")
        .unwrap();
    let LogicalPlan::Sort { keys, .. } = &plan else {
        panic!("{plan:?}")
    };
    assert_eq!(
        keys.iter()
            .map(|k| (k.descending, k.nulls_first))
            .collect::<Vec<_>>(),
        [(true, false), (false, true)]
    );
}

/// An error's whole message, with its place and caret.
fn error_of(p: &SqlPlanner, q: &str) -> String {
    match p.plan(q) {
        Ok(plan) => panic!("{q:?} planned: {}", shape(&plan)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_say_what_and_where() {
    let dir = fixture();
    let p = planner(&dir);
    let cases: &[(&str, &[&str])] = &[
        ("SELECT v1 FROM 'x.csv' WHER v1 > 1", &["syntax error: expected end of statement, found 'v1'", "line 1, column 29", "^"]),
        ("SELECT (v1 + FROM 'x.csv'", &["syntax error: expected", "line 1"]),
        ("SELECT vv1 FROM 'x.csv'", &["unknown column \"vv1\"", "did you mean", "v1", "column 8", "\n       ^^^"]),
        ("SELECT v1\nFROM 'x.csv'\nWHERE idd1 = 'a'", &["unknown column \"idd1\"", "id1", "line 3, column 7"]),
        ("SELECT sum_(v1) FROM 'x.csv'", &["unknown function \"sum_\"", "sum", "column 8"]),
        ("SELECT lowr(id1) FROM 'x.csv'", &["unknown function \"lowr\"", "lower"]),
        ("SELECT v1 + id1 FROM 'x.csv'", &["int64", "utf8", "column 8"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1", &["WHERE", "not BOOLEAN", "column 30"]),
        ("SELECT v1 FROM 'missing.csv'", &["missing.csv", "no such file", "column 16"]),
        ("SELECT * FROM 'x.csv' JOIN 'y.csv' ON x.v1 = y.v1", &["JOIN is not supported yet", "column 23"]),
        ("SELECT * FROM 'x.csv', 'y.csv'", &["cross join", "not supported"]),
        ("SELECT v1 FROM 'x.csv' UNION SELECT v1, v2 FROM 'x.csv'", &["set operations can only apply to expressions with the same number of result columns", "UNION of 1 and 2 columns", "column 30"]),
        ("SELECT v1, v2 FROM 'x.csv' UNION ALL SELECT v1, v2 FROM 'x.csv'\nUNION ALL SELECT v1, v2, v3 FROM 'x.csv'", &["UNION ALL of 2 and 3 columns", "line 2, column 11"]),
        ("SELECT v1 FROM 'x.csv' UNION ALL SELECT d FROM 'x.parquet'", &["UNION", "column 1 is int64 in one query and date in another", "column 34"]),
        ("SELECT v1 FROM 'x.csv' EXCEPT SELECT v1 FROM 'x.csv'", &["EXCEPT is not supported yet"]),
        ("SELECT * FROM 'x.csv' TABLESAMPLE (200 PERCENT)", &["TABLESAMPLE: a percentage must be from 0 to 100, not 200", "column 36"]),
        ("SELECT * FROM 'x.csv' TABLESAMPLE (2.5 ROWS)", &["a number of rows must be a whole number below 2^64, not 2.5"]),
        ("SELECT * FROM 'x.csv' TABLESAMPLE (1e30 ROWS)", &["below 2^64, not 1e30"]),
        ("SELECT * FROM 'x.csv' TABLESAMPLE (v1 ROWS)", &["the size must be a number of at least 0, not v1"]),
        ("SELECT * FROM 'x.csv' TABLESAMPLE (1 ROWS) REPEATABLE (1.5)", &["the seed must be an integer of 64 bits, not 1.5", "column 56"]),
        ("SELECT * FROM (SELECT * FROM 'x.csv' ORDER BY v1) TABLESAMPLE (5 ROWS)", &["a sample after a sort", "column 64"]),
        ("SELECT id1, first(v1) FROM (SELECT * FROM 'x.csv' ORDER BY v1) GROUP BY id1", &["first after a sort is not supported yet", "row_number()", "column 13"]),
        ("SELECT last(v1) FROM (SELECT id1, max(v1) AS v1 FROM 'x.csv' GROUP BY id1)", &["last after a grouping"]),
        ("SELECT sum(v1) IGNORE NULLS FROM 'x.csv'", &["IGNORE NULLS in sum(...) is not supported yet", "first, last and any_value"]),
        ("SELECT v1 FROM 'x.csv' UNION BY NAME SELECT v1 FROM 'x.csv'", &["UNION BY NAME is not supported yet"]),
        ("SELECT v1 FROM 'x.csv' UNION ALL SELECT vv FROM 'x.csv'", &["unknown column \"vv\"", "column 41"]),
        ("SELECT v1 FROM 'x.csv' UNION ALL SELECT v1 FROM 'nope.csv'", &["nope.csv", "no such file"]),
        ("SELECT v1 FROM 'x.csv' UNION ALL SELECT v1 FROM 'x.csv' ORDER BY v9", &["unknown column \"v9\""]),
        ("SELECT id1, v1 FROM 'x.csv' GROUP BY id1", &["column \"v1\" must appear in the GROUP BY clause or be used in an aggregate function", "column 13"]),
        ("SELECT id1 FROM 'x.csv' GROUP BY id1 HAVING v1 > 1", &["column \"v1\" must appear in the GROUP BY"]),
        ("SELECT v1 + sum(v1) FROM 'x.csv'", &["column \"v1\" must appear in the GROUP BY"]),
        ("SELECT sum(sum(v1)) FROM 'x.csv'", &["aggregate functions are not allowed in an aggregate's arguments"]),
        ("SELECT v1 FROM 'x.csv' WHERE sum(v1) > 1", &["aggregate functions are not allowed in WHERE"]),
        ("SELECT sum(v1) FROM 'x.csv' GROUP BY 1", &["not allowed in GROUP BY"]),
        ("SELECT v1 FROM 'x.csv' ORDER BY 2", &["ORDER BY position 2 is not in the select list (1 to 1)"]),
        ("SELECT v1 FROM 'x.csv' GROUP BY 0", &["GROUP BY position 0"]),
        ("SELECT v1 FROM 'x.csv' LIMIT -1", &["LIMIT must be a non-negative integer"]),
        ("SELECT v1 FROM 'x.csv' LIMIT v1", &["LIMIT must be a non-negative integer"]),
        ("SELECT u.v1 FROM 'x.csv' t", &["table \"u\" is not in the FROM clause", "\"t\""]),
        ("SELECT v1 FROM t", &["\"t\" is not a file, a CTE or a table function"]),
        ("SELECT quantile_disc(v1, [0.5, 0.9]) FROM 'x.csv'", &["a list of quantiles in quantile_disc is not supported yet", "once for each fraction", "column 27"]),
        ("SELECT quantile(v1) FROM 'x.csv'", &["quantile: takes 2 arguments (x, q), not 1"]),
        ("SELECT quantile_disc(v1, 1.5) FROM 'x.csv'", &["quantile must be a number from 0 to 1, not 1.5", "column 26"]),
        ("SELECT quantile_disc(id1, 0.5) FROM 'x.csv'", &["quantile_disc", "utf8"]),
        ("SELECT quantile_disc(v1, v2) FROM 'x.csv'", &["quantile must be a number from 0 to 1, not v2"]),
        ("SELECT quantile_cont(v1, 2) FROM 'x.csv'", &["quantile must be a number from 0 to 1"]),
        ("SELECT sum(v1) OVER (PARTITION BY id1) FROM 'x.csv'", &["over a window is not supported"]),
        ("SELECT row_number() OVER (ORDER BY v1 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM 'x.csv'", &["window frame"]),
        ("SELECT row_number() FROM 'x.csv'", &["OVER"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 > (SELECT v1, v2 FROM 'x.csv')", &["subquery returns 2 columns - expected 1", "column 36"]),
        ("SELECT v1 FROM 'x.csv'\nWHERE v1 IN (SELECT * FROM 'x.csv')", &["subquery returns 5 columns - expected 1", "line 2, column 7"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 IN (SELECT d FROM 'x.parquet')", &["cannot compare int64 column \"v1\" with the subquery's date column", "column 30"]),
        ("SELECT v1 + (SELECT max(id1) FROM 'x.csv') FROM 'x.csv'", &["int64", "utf8", "column 8"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 > (SELECT avg(v1) FROM 'nope.csv')", &["nope.csv", "no such file", "column 56"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 > (SELECT avg(v1) FROM 'x.csv' WHERE v2 IN (SELECT vv FROM 'x.csv'))", &["unknown column \"vv\"", "column 84"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 > (SELECT avg(v1) FROM 'x.csv' WHERE v2 > (SELECT v1, v2 FROM 'x.csv'))", &["subquery returns 2 columns", "column 76"]),
        ("SELECT v1 FROM 'x.csv' t WHERE v1 > (SELECT avg(v3) FROM 'x.csv' u WHERE u.id1 = t.id1)", &["a correlated subquery (one naming the table \"t\" of the query around it) is not supported yet", "column 82"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 IN (SELECT a FROM 'x.csv' t(a, b, c, e, f) WHERE a = v2)", &["a correlated subquery (one naming the column \"v2\" of the query around it)", "column 86"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 IN (SELECT zz FROM 'x.csv')", &["unknown column \"zz\"", "column 44"]),
        ("SELECT v1 FROM 'x.csv' WHERE EXISTS (SELECT v1 FROM 'x.csv')", &["EXISTS (subquery) is not supported yet", "count(*)"]),
        ("SELECT v1 FROM 'x.csv' GROUP BY (SELECT 1 FROM 'x.csv')", &["a subquery in GROUP BY is not supported yet"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 IN UNNEST([1])", &["IN UNNEST"]),
        ("SELECT DATE 'not a date' FROM 'x.csv'", &["'not a date' is not a valid DATE"]),
        ("SELECT v1::BLOB FROM 'x.csv'", &["type BLOB is not supported"]),
        ("SELECT * FROM 'x*.csv'", &["glob", "not supported yet"]),
        ("SELECT * FROM read_csv('x.csv', delim=';;')", &["delimiter must be one ASCII character"]),
        ("SELECT * FROM read_csv('x.csv', header='no')", &["header must be true or false, not 'no'"]),
        ("SELECT * FROM read_csv('x.csv', nosuch=1)", &["unknown option nosuch", "blocksize", "types (or dtypes, column_types)", "sample_size"]),
        ("SELECT * FROM read_csv('x.csv', blocksize=0)", &["blocksize 0 must be at least 1 byte", "column 43"]),
        ("SELECT * FROM read_csv('x.csv', blocksize=-5)", &["blocksize -5 must be at least 1 byte"]),
        ("SELECT * FROM read_csv('x.csv', blocksize='12XB')", &["blocksize '12XB' unknown unit \"XB\"", "'64MiB'"]),
        ("SELECT * FROM read_csv('x.csv', blocksize='0KiB')", &["must be at least 1 byte"]),
        ("SELECT * FROM read_csv('x.csv', blocksize=1.5)", &["blocksize 1.5"]),
        ("SELECT * FROM read_csv('x.csv', blocksize='99999999TiB')", &["larger than 2^64 bytes"]),
        ("SELECT * FROM read_parquet('x.parquet', blocksize=10)", &["unknown option blocksize", "the options read are none"]),
        ("SELECT * FROM read_csv('x.csv', types={'nope': 'DOUBLE'})", &["nope", "x.csv"]),
        ("SELECT * FROM read_csv('x.csv', types={'v1': 'DOUBL'})", &["'DOUBL' is not a type blockwise reads", "BIGINT", "column 46"]),
        ("SELECT * FROM read_csv('x.csv', types={'v1': 'DOUBLE PRECISION x'})", &["is not a type blockwise reads"]),
        ("SELECT * FROM read_csv('x.csv', types={'v1': 'BLOB'})", &["'BLOB' is not a type blockwise reads"]),
        ("SELECT * FROM read_csv('x.csv', types={'v1': 3})", &["a type is a name in single quotes, not 3"]),
        ("SELECT * FROM read_csv('x.csv', types='DOUBLE')", &["types is a struct of column names and types"]),
        ("SELECT * FROM read_csv('x.csv', types={'v1': 'DOUBLE', 'v1': 'BIGINT'})", &["the column v1 is given twice"]),
        ("SELECT * FROM read_csv('x.csv', types={'v1': 'DOUBLE'}, dtypes={'v2': 'DOUBLE'})", &["the column types are given twice"]),
        ("SELECT * FROM read_csv('x.csv', types=['VARCHAR', 'BIGINT', 'BIGINT', 'BIGINT', 'BIGINT', 'DOUBLE'])", &["6 column types given by position, but the file has 5 columns (id1, id6, v1, v2, v3)"]),
        ("SELECT * FROM read_csvv('x.csv')", &["unknown function \"read_csvv\"", "read_csv"]),
        ("SELECT * FROM 'empty'", &["empty", "cannot tell the format"]),
        ("SELECT DISTINCT id1 FROM 'x.csv' ORDER BY v1", &["SELECT DISTINCT, ORDER BY expressions must appear in the select list"]),
        ("WITH t AS (FROM 'x.csv'), t AS (FROM 'x.csv') SELECT * FROM t", &["defines \"t\" more than once"]),
        ("INSERT INTO t VALUES (1)", &["INSERT INTO is not supported"]),
        ("SELECT v1 FROM 'x.csv'; SELECT v1 FROM 'x.csv'", &["expected one statement, found 2"]),
        ("", &["the query is empty"]),
        (";;", &["the query is empty"]),
        ("SELECT", &["syntax error", "the end of the query"]),
        ("SELECT 1", &["a SELECT without FROM is not supported yet"]),
        ("SELECT 'unterminated FROM 'x.csv'", &["syntax error", "nterminated"]),
        ("SELECT (((v1) FROM 'x.csv'", &["syntax error"]),
        ("SELECT v1) FROM 'x.csv'", &["syntax error", "')'"]),
        ("SELECT a, b, c FROM 'x.csv' t(a, b, c, d, e, f, g)", &["names 7 columns, but the table has 5"]),
        ("SELECT \"my col\" FROM 'x.csv'", &["unknown column \"my col\""]),
        ("SELECT ñandú FROM 'x.csv'", &["unknown column \"ñandú\"", "column 8"]),
        ("SELECT v1 FROM 'x.csv' WHERE v1 IS DISTINCT FROM 2", &["IS [NOT] DISTINCT FROM is not supported yet"]),
        ("SELECT count(*) FILTER (WHERE v1 > 1) FROM 'x.csv'", &["FILTER"]),
        ("SELECT sum(DISTINCT v1) FROM 'x.csv'", &["DISTINCT in sum"]),
    ];
    let mut failures = Vec::new();
    for (q, wants) in cases {
        let message = match p.plan(q) {
            Ok(plan) => {
                failures.push(format!("{q:?}: planned {}", shape(&plan)));
                continue;
            }
            Err(e) => e.to_string(),
        };
        for w in *wants {
            if !message.contains(w) {
                failures.push(format!("{q:?}: {message:?} lacks {w:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_input_never_panics_nor_overflows() {
    let dir = fixture();
    let p = planner(&dir);
    let deep_parens = format!(
        "SELECT {}v1{} FROM 'x.csv'",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let long_chain = format!("SELECT v1{} FROM 'x.csv'", " + v1".repeat(10_000));
    let many_nots = format!("SELECT {}true FROM 'x.csv'", "NOT ".repeat(10_000));
    let many_casts = format!("SELECT v1{} FROM 'x.csv'", "::BIGINT".repeat(10_000));
    let deep_subqueries = format!(
        "SELECT * FROM {}'x.csv'{}",
        "(SELECT * FROM ".repeat(200),
        ")".repeat(200)
    );
    let huge = format!(
        "SELECT v1 FROM 'x.csv' WHERE v1 IN ({})",
        vec!["1"; 60_000].join(",")
    );
    let unclosed = "(".repeat(100_000);
    for q in [
        deep_parens.as_str(),
        &long_chain,
        &many_nots,
        &many_casts,
        &deep_subqueries,
        &huge,
        &unclosed,
    ] {
        let e = p.plan(q).expect_err("too deep or too long");
        let m = e.to_string();
        assert!(
            m.contains("nested too deeply") || m.contains("tokens") || m.contains("syntax error"),
            "{}: {m}",
            &q[..40]
        );
    }
    // Odd but valid: DuckDB plans these.
    for q in [
        "select V1 from 'x.csv'",
        "SeLeCt v1 FrOm 'x.csv' -- a comment",
        "SELECT /* a */ v1 FROM 'x.csv';",
        "\n\n  SELECT\tv1\r\n FROM 'x.csv'  ;  ",
        "SELECT v1 AS \"my col\" FROM 'x.csv' ORDER BY \"my col\"",
        "SELECT v1 AS ñandú FROM 'x.csv' WHERE ñandú > 1",
        "SELECT \"x\".\"v1\" FROM \"x.csv\"",
        "SELECT v1 FROM 'x.csv' LIMIT 0",
        "SELECT v1 FROM 'x.csv' LIMIT 18446744073709551615",
        "SELECT -9223372036854775808, 18446744073709551615 FROM 'x.csv'",
        "SELECT * FROM 'parts'",
        "SELECT * FROM 'x.arrow'",
        "SELECT count(*) FROM 'x.csv' HAVING count(*) > 0",
        "SELECT 1 FROM 'x.csv' GROUP BY ()",
        "WITH t AS (SELECT * FROM 'x.csv') SELECT a.v1 FROM t AS a WHERE a.v1 IN (SELECT_1, 2)",
    ] {
        let r = p.plan(q);
        if q.contains("SELECT_1") {
            assert!(r.is_err(), "{q}");
            continue;
        }
        assert!(r.is_ok(), "{q}: {}", r.unwrap_err());
    }
}

#[test]
fn error_carets_point_at_the_place() {
    let dir = fixture();
    let p = planner(&dir);
    let m = error_of(&p, "SELECT id1,\n       vv1 + 1\nFROM 'x.csv'");
    assert!(
        m.contains("(line 2, column 8)\n       vv1 + 1\n       ^^^"),
        "{m}"
    );
    let m = error_of(&p, "SELECT * FROM 'x.csv' JOIN 'y.csv' ON true");
    assert!(
        m.ends_with(
            "SELECT * FROM 'x.csv' JOIN 'y.csv' ON true\n                      ^^^^^^^^^^^^"
        ),
        "{m}"
    );
}

#[test]
fn keywords_are_duckdbs() {
    let duck = crate::reference::json(
        "import duckdb, json; print(json.dumps(sorted(r[0] for r in duckdb.sql(\
         'select keyword_name from duckdb_keywords()').fetchall())))",
        &[],
    );
    let ours: Vec<&str> = super::keywords::KEYWORDS.to_vec();
    assert_eq!(duck, serde_json::json!(ours));
}

#[test]
fn problems_are_typed_sql_errors_placed_at_their_line_and_column() {
    use crate::error::{Error, SqlProblem};
    let dir = fixture();
    let p = planner(&dir);
    type Is = fn(&SqlProblem) -> bool;
    let cases: Vec<(&str, Is)> = vec![
        (
            "SELECT v1 FROM 'x.csv' EXCEPT SELECT v1 FROM 'x.csv'",
            |p| matches!(p, SqlProblem::Unsupported { construct, .. } if construct == "EXCEPT"),
        ),
        (
            "SELECT v1 FROM 'x.csv' WHERE v1 > (SELECT v1, v2 FROM 'x.csv')",
            |p| matches!(p, SqlProblem::SubqueryColumns { count: 2 }),
        ),
        (
            "SELECT v1 FROM 'x.csv' UNION SELECT v1, v2 FROM 'x.csv'",
            |p| {
                matches!(
                    p,
                    SqlProblem::SetColumns {
                        left: 1,
                        right: 2,
                        ..
                    }
                )
            },
        ),
        (
            "SELECT lowr(id1) FROM 'x.csv'",
            |p| matches!(p, SqlProblem::UnknownFunction { name, .. } if name == "lowr"),
        ),
        ("SELECT FROM WHERE", |p| {
            matches!(
                p,
                SqlProblem::Syntax { .. } | SqlProblem::SyntaxOther { .. }
            )
        }),
    ];
    for (q, is) in cases {
        let e = p.plan(q).expect_err(q);
        assert_eq!(e.exit_code(), 2, "{q}");
        let Error::InExpression { error, line, .. } = &e else {
            panic!("{q}: not placed: {e:?}");
        };
        assert_eq!(*line, 1, "{q}");
        match error.as_ref() {
            Error::Sql(problem) => assert!(is(problem), "{q}: {problem:?}"),
            other => panic!("{q}: not a SQL problem: {other:?}"),
        }
        // The message is the problem's, placed.
        assert!(e.to_string().starts_with(&error.to_string()), "{q}: {e}");
    }
    // Those without a place are typed too.
    let e = p.plan("").expect_err("empty");
    assert!(matches!(e, Error::Sql(SqlProblem::Empty)), "{e:?}");
}

#[test]
fn read_csv_blocksize_and_types_reach_the_scan() {
    let dir = fixture();
    let p = planner(&dir);
    let scan = |q: &str| {
        let mut plan = p.plan(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        loop {
            plan = match plan {
                LogicalPlan::Scan(source) => return source,
                LogicalPlan::Project { input, .. } => *input,
                other => panic!("{q}: planned {}", shape(&other)),
            }
        }
    };
    let parts = |source: &crate::frame::logical::Source| {
        crate::storage::open_frame(&source.path, source.format, &source.read)
            .unwrap()
            .num_partitions()
    };
    let whole = scan("SELECT * FROM read_csv('x.csv')");
    assert_eq!(parts(&whole), 1);
    for (arg, bytes) in [("40", 40), ("'40'", 40), ("'1KiB'", 1024), ("'0.5kb'", 500)] {
        let source = scan(&format!("SELECT * FROM read_csv('x.csv', blocksize={arg})"));
        assert_eq!(source.read.blocksize, bytes, "blocksize={arg}");
    }
    // 74 bytes of rows after the header, a row start in every 20 bytes.
    let cut = scan("SELECT * FROM read_csv('x.csv', blocksize=40)");
    assert_eq!(parts(&cut), 2);
    let cut = scan("SELECT * FROM read_csv('x.csv', blocksize='20B')");
    assert_eq!(parts(&cut), 4);
    let typed = scan("SELECT * FROM read_csv('x.csv', types={'v1': 'DOUBLE', 'id6': 'VARCHAR'})");
    assert_eq!(
        typed.schema.field_with_name("v1").unwrap().data_type(),
        &DataType::Float64
    );
    assert_eq!(
        typed.schema.field_with_name("id6").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        typed.schema.field_with_name("v2").unwrap().data_type(),
        &DataType::Int64
    );
    let by_position = scan("SELECT * FROM read_csv('x.csv', types=['VARCHAR', 'INTEGER'])");
    assert_eq!(by_position.schema.field(1).data_type(), &DataType::Int32);
    assert_eq!(by_position.schema.field(2).data_type(), &DataType::Int64);
}
