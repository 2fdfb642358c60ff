//! `blockwise sql`, `plan sql`, `explain sql` through the binary: results equal
//! DuckDB's on the same file, a plan run task by task (each task again, as a retried
//! one) writes what the local run writes, and bad queries and outputs are refused
//! with what and where, leaving nothing behind.

mod common;

use std::path::Path;

use common::{
    assert_no_temps, assert_refused, blockwise, blockwise_ok, python_eval, run_by_tasks, table_csv,
};

const QUERY: &str = "SELECT id1, sum(v1) AS s, avg(v3) AS m, count(*) AS n FROM '{t}' \
                     WHERE v3 > 10 GROUP BY id1 HAVING count(*) > 5 ORDER BY s DESC, id1";

fn query(csv: &Path) -> String {
    QUERY.replace("{t}", &csv.display().to_string())
}

/// DuckDB's rows of `sql` against ours in `out` (Parquet), in order: "same" or the
/// first difference.
fn compare(sql: &str, out: &Path) -> String {
    python_eval(&format!(
        "import duckdb, math\n\
         want = duckdb.sql({sql:?}).fetchall()\n\
         got = duckdb.sql(\"select * from '{o}'\").fetchall()\n\
         def same(a, b):\n\
         \x20   if isinstance(a, float) or isinstance(b, float):\n\
         \x20       return math.isclose(a, b, rel_tol=1e-9)\n\
         \x20   return a == b\n\
         ok = len(want) == len(got) and all(all(same(x, y) for x, y in zip(w, g)) for w, g in zip(want, got))\n\
         print('same' if ok else f'ours {{got[:3]}} DuckDB {{want[:3]}}')",
        o = out.display()
    ))
}

#[test]
fn a_query_prints_its_first_rows_and_writes_duckdbs_answer() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 3000);
    let out = dir.path().join("out.parquet");
    blockwise_ok(["sql", &query(&csv), "-o", out.to_str().unwrap()]);
    assert_eq!(compare(&query(&csv), &out).trim(), "same");
    // Printed: a table of the first rows, and a line saying there are more.
    let printed = blockwise_ok(["sql", &query(&csv), "--max-rows", "3"]);
    let text = String::from_utf8_lossy(&printed.stdout).to_string();
    assert!(text.contains("| id1"), "{text}");
    assert_eq!(text.matches("| id0").count(), 3, "{text}");
    assert!(text.contains("the first 3 rows"), "{text}");
    // CSV and IPC by extension.
    for name in ["out.csv", "out.arrow"] {
        let path = dir.path().join(name);
        blockwise_ok(["sql", &query(&csv), "-o", path.to_str().unwrap()]);
        assert!(path.is_file());
    }
    assert_no_temps(dir.path());
}

#[test]
fn a_planned_query_run_task_by_task_writes_what_the_local_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 5000);
    let sql = "SELECT id4, count(DISTINCT id1) AS d, max(v3) AS hi FROM '{t}' GROUP BY id4 \
               ORDER BY id4"
        .replace("{t}", &csv.display().to_string());
    // Through `plan` and `run`, in separate processes.
    let out = dir.path().join("planned.parquet");
    let plan_file = dir.path().join("plan.json");
    blockwise_ok([
        "plan",
        "sql",
        &sql,
        "-o",
        out.to_str().unwrap(),
        "--plan",
        plan_file.to_str().unwrap(),
        "--memory-limit",
        "8MiB",
    ]);
    blockwise_ok(["run", plan_file.to_str().unwrap()]);
    assert_eq!(compare(&sql, &out).trim(), "same");
    // Task by task in this process, each task run twice: the same file.
    let again = dir.path().join("by_tasks.parquet");
    let plan = blockwise::convert::plan_query_file(
        &blockwise::sql::plan_query(&sql).unwrap(),
        &again,
        &Default::default(),
        blockwise::convert::PlanSizing {
            threads: 2,
            memory_limit: 8 << 20,
        },
    )
    .unwrap();
    std::fs::create_dir_all(&plan.workdir).unwrap();
    run_by_tasks(&plan, 8 << 20, blockwise::memory::SpillCompression::None);
    assert_eq!(compare(&sql, &again).trim(), "same");
}

#[test]
fn explain_names_the_stages_and_what_spills() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 1000);
    let out = blockwise_ok(["explain", "sql", &query(&csv)]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for stage in ["group_partial", "group_final", "spill"] {
        assert!(text.contains(stage), "{stage} missing from:\n{text}");
    }
}

#[test]
fn bad_queries_and_outputs_are_refused_with_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 100);
    let c = csv.display().to_string();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (String::new(), vec!["empty"]),
        ("SELECT".into(), vec!["expected", "line 1, column 7"]),
        (
            format!("SELECT v9 FROM '{c}'"),
            vec!["unknown column \"v9\"", "v1"],
        ),
        (format!("SELECT id1 + 1 FROM '{c}'"), vec!["utf8", "int64"]),
        (format!("SELECT sum(id1) FROM '{c}'"), vec!["sum", "utf8"]),
        ("SELECT * FROM 'no/such.csv'".into(), vec!["no/such.csv"]),
        (
            format!("SELECT * FROM '{c}' a JOIN '{c}' b ON a.id1 = b.id1"),
            vec!["JOIN", "not supported"],
        ),
        (
            format!("SELECT id1, v1 FROM '{c}' GROUP BY id1"),
            vec!["GROUP BY", "v1"],
        ),
        (
            format!("SELECT median(id1) FROM '{c}'"),
            vec!["median", "utf8"],
        ),
        (format!("SELECT 1; SELECT 2 FROM '{c}'"), vec!["one"]),
    ];
    for (sql, facts) in cases {
        let out = blockwise(["sql", &sql]);
        assert_refused(&out, 2, &facts);
    }
    // Outputs: not a table format, an existing file, the input itself.
    let q = format!("SELECT * FROM '{c}'");
    let zarr = dir.path().join("o.zarr");
    assert_refused(
        &blockwise(["sql", &q, "-o", zarr.to_str().unwrap()]),
        2,
        &["table format"],
    );
    let existing = dir.path().join("exists.parquet");
    std::fs::write(&existing, b"keep me").unwrap();
    assert_refused(
        &blockwise(["sql", &q, "-o", existing.to_str().unwrap()]),
        2,
        &["exists"],
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    let out = blockwise(["sql", &q, "-o", &c, "--overwrite"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        std::fs::metadata(&csv).unwrap().len() > 100,
        "the input was replaced"
    );
    assert_no_temps(dir.path());
}

#[test]
fn subqueries_run_as_stages_of_their_own_locally_planned_and_task_by_task() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 4000);
    let t = csv.display().to_string();
    let sql = format!(
        "SELECT id1, count(*) AS n, avg(v3) - (SELECT avg(v3) FROM '{t}') AS d FROM '{t}' \
         WHERE v3 > (SELECT avg(v3) FROM '{t}' WHERE v1 IN (SELECT v1 FROM '{t}' WHERE v1 < 3)) \
         AND id4 NOT IN (SELECT id4 FROM '{t}' WHERE v1 = 5) GROUP BY id1 ORDER BY id1"
    );
    // Locally.
    let out = dir.path().join("local.parquet");
    blockwise_ok(["sql", &sql, "-o", out.to_str().unwrap()]);
    assert_eq!(compare(&sql, &out).trim(), "same");
    // Through `plan` and `run`, in separate processes.
    let planned = dir.path().join("planned.parquet");
    let plan_file = dir.path().join("plan.json");
    blockwise_ok([
        "plan",
        "sql",
        &sql,
        "-o",
        planned.to_str().unwrap(),
        "--plan",
        plan_file.to_str().unwrap(),
    ]);
    // The tasks reading rows through a subquery's value list its entry.
    let text = std::fs::read_to_string(&plan_file).unwrap();
    assert!(text.contains("\"scalar\""), "no scalar subquery stage");
    assert!(text.contains("frame_concat"), "no IN subquery stage");
    blockwise_ok(["run", plan_file.to_str().unwrap()]);
    assert_eq!(compare(&sql, &planned).trim(), "same");
    // Task by task in this process, each task run twice.
    let again = dir.path().join("by_tasks.parquet");
    let plan = blockwise::convert::plan_query_file(
        &blockwise::sql::plan_query(&sql).unwrap(),
        &again,
        &Default::default(),
        blockwise::convert::PlanSizing {
            threads: 2,
            memory_limit: 8 << 20,
        },
    )
    .unwrap();
    std::fs::create_dir_all(&plan.workdir).unwrap();
    run_by_tasks(&plan, 8 << 20, blockwise::memory::SpillCompression::None);
    assert_eq!(compare(&sql, &again).trim(), "same");
    // `explain` shows the subqueries' stages and what reads them.
    let shown = blockwise_ok(["explain", "sql", &sql]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    for stage in ["frame_limit", "frame_concat", "scalar", "in_set"] {
        assert!(shown.contains(stage), "{stage} missing from:\n{shown}");
    }
}

#[test]
fn subquery_errors_say_what_and_where_at_plan_and_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 200);
    let c = csv.display().to_string();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("SELECT v1 FROM '{c}' WHERE v1 > (SELECT v1, v3 FROM '{c}')"),
            vec!["subquery returns 2 columns - expected 1", "line 1, column"],
        ),
        (
            format!("SELECT v1 FROM '{c}' WHERE v1 = (SELECT v1 FROM 'no/such.csv')"),
            vec!["no/such.csv", "line 1, column"],
        ),
        (
            format!("SELECT v1 FROM '{c}' WHERE v1 = (SELECT v1 FROM '{c}')"),
            vec!["more than one row returned by the subquery", "single row"],
        ),
        (
            format!("SELECT v1 FROM '{c}' WHERE id1 IN (SELECT v3 FROM '{c}')"),
            vec!["cannot compare utf8 column \"id1\"", "float64 column"],
        ),
    ];
    for (sql, facts) in cases {
        let out = blockwise(["sql", &sql]);
        assert_refused(&out, 2, &facts);
    }
    assert_no_temps(dir.path());
}

#[test]
fn unions_write_duckdbs_answer_and_mismatched_columns_are_refused_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 3000);
    let t = csv.display().to_string();
    // Int and float unified to float, ORDER BY and LIMIT over the whole union.
    let sql = format!(
        "SELECT id1, v1 AS v FROM '{t}' WHERE v1 = 5 UNION ALL SELECT id1, v3 FROM '{t}' \
         WHERE v3 > 99 UNION SELECT id1, id4 FROM '{t}' WHERE id4 < 3 ORDER BY v DESC, id1 \
         LIMIT 40"
    );
    let out = dir.path().join("union.parquet");
    blockwise_ok(["sql", &sql, "-o", out.to_str().unwrap()]);
    assert_eq!(compare(&sql, &out).trim(), "same");
    let shown = blockwise_ok(["explain", "sql", &sql]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("group_partial"), "no distinct in:\n{shown}");
    let bad = format!(
        "SELECT id1, v1 FROM '{t}' UNION ALL SELECT id1, v1 FROM '{t}'\nUNION ALL SELECT id1, \
         v1, v3 FROM '{t}'"
    );
    assert_refused(
        &blockwise(["sql", &bad]),
        2,
        &[
            "same number of result columns",
            "UNION ALL of 2 and 3 columns",
            "line 2, column 11",
        ],
    );
    assert_no_temps(dir.path());
}

#[test]
fn discrete_quantiles_write_duckdbs_answer() {
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 3000);
    let t = csv.display().to_string();
    let sql = format!(
        "SELECT v1, quantile_disc(id4, 0.5) AS a, quantile(v3, 0) AS b, quantile(v3, 1) AS c, \
         quantile_disc(v3, 0.37) AS d, quantile_cont(id4, 0.5) AS e FROM '{t}' GROUP BY v1 \
         ORDER BY v1"
    );
    let out = dir.path().join("q.parquet");
    blockwise_ok(["sql", &sql, "-o", out.to_str().unwrap()]);
    assert_eq!(compare(&sql, &out).trim(), "same");
    assert_refused(
        &blockwise([
            "sql",
            &format!("SELECT quantile(v3, [0.5, 0.9]) FROM '{t}'"),
        ]),
        2,
        &[
            "a list of quantiles in quantile is not supported yet",
            "line 1, column",
        ],
    );
}

#[test]
fn a_whole_table_aggregate_of_an_input_larger_than_the_limit_writes_one_row() {
    // Its one result row was once sized as its input: the task appending it to
    // the output was refused as needing more than half the limit.
    let dir = tempfile::tempdir().unwrap();
    let csv = table_csv(dir.path(), 200_000);
    assert!(std::fs::metadata(&csv).unwrap().len() > 4 << 20);
    let out = dir.path().join("out.parquet");
    let sql = "SELECT count(*) AS n, sum(v1) AS s, max(id1) AS m, avg(v3) AS a FROM '{t}'"
        .replace("{t}", &csv.display().to_string());
    blockwise_ok([
        "sql",
        &sql,
        "-o",
        out.to_str().unwrap(),
        "--memory-limit",
        "4MiB",
    ]);
    assert_eq!(compare(&sql, &out).trim(), "same");
    assert_no_temps(dir.path());
}
