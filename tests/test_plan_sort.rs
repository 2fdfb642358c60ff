//! The external sort as a plan: under a memory limit an eighth of the data, sorted runs
//! spill through the memory store, and the same output comes from `blockwise
//! convert` and from the plan `plan_convert` builds run task by task through
//! `run_task` against a directory store (what `blockwise run-task` and a remote
//! worker do), some tasks twice; pyarrow's stable sort is the reference.

mod common;

use std::path::Path;

use blockwise::convert::{plan_convert, ConvertOptions, PlanSizing};
use blockwise::frame::ops::sort::parse_sort_keys;
use blockwise::memory::SpillCompression;

use common::{assert_same, convert_ok, python_eval, run_by_tasks};

/// A CSV of `n` rows (ids, floats with NaN and empty fields, repeated names) and
/// pyarrow's stable sort of it by `keys` (pyarrow `sort_by` terms), nulls last, as
/// Parquet at `expected`.
fn write_input(csv: &Path, expected: &Path, n: usize, keys: &str) {
    python_eval(&format!(
        "import numpy as np, pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq\n\
         rng = np.random.default_rng(7); n = {n}\n\
         x = rng.integers(0, 300, n).astype(float) / 4; x[rng.random(n) < 0.05] = np.nan\n\
         t = pa.table({{'id': np.arange(n), 'x': pa.array(x, from_pandas=True), \
                        'name': [f'row{{i % 613}}' for i in range(n)]}})\n\
         pc.write_csv(t, {csv:?})\n\
         t = pc.read_csv({csv:?})\n\
         pq.write_table(t.sort_by({keys}, null_placement='at_end'), {expected:?})"
    ));
}

fn sort_three_ways(keys: &str, pyarrow_keys: &str) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    let expected = dir.path().join("expected.parquet");
    write_input(&csv, &expected, 30_000, pyarrow_keys);
    let limit = std::fs::metadata(&csv).unwrap().len() / 8;

    // `blockwise convert`: the runs do not fit, so the store spills them.
    let out = dir.path().join("convert.parquet");
    let run = convert_ok(
        &csv,
        &out,
        &[
            &[
                "--sort-by",
                keys,
                "--memory-limit",
                &limit.to_string(),
                "--threads",
                "2",
                "--stats",
            ][..],
            &common::RSS_THRESHOLDS_OFF,
        ]
        .concat(),
    );
    assert_same("frame", &expected, &out, &[]);
    let stats: serde_json::Value = serde_json::from_slice(&run.stderr).unwrap();
    assert!(stats["spilled_bytes"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        stats["peak_reserved_bytes"].as_u64().unwrap() <= limit,
        "{stats} vs {limit}"
    );

    // The plan, task by task, as separate processes would run it.
    let by_tasks = dir.path().join("tasks.parquet");
    let options = ConvertOptions {
        sort_by: Some(parse_sort_keys(keys).unwrap()),
        ..ConvertOptions::default()
    };
    let sizing = PlanSizing {
        threads: 2,
        memory_limit: limit,
    };
    let plan = plan_convert(&csv, &by_tasks, &options, sizing).unwrap();
    let count = |name: &str| plan.tasks.iter().filter(|t| t.op.name == name).count();
    assert!(count("sort_run") > 4, "several runs");
    assert_eq!(count("cut_ranges"), 1);
    assert!(count("merge_range") > 4, "several ranges");
    run_by_tasks(&plan, limit, SpillCompression::Zstd(1));
    assert_same("frame", &expected, &by_tasks, &[]);
}

#[test]
fn a_spilling_sort_by_one_number_is_the_same_from_convert_and_from_its_tasks() {
    sort_three_ways("x:desc", "[('x', 'descending')]");
}

#[test]
fn a_spilling_sort_by_two_keys_is_the_same_from_convert_and_from_its_tasks() {
    sort_three_ways(
        "name,x:desc",
        "[('name', 'ascending'), ('x', 'descending')]",
    );
}

#[test]
fn bad_sort_keys_are_refused_with_the_flag_named_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "id,x\n1,2\n").unwrap();
    let dst = dir.path().join("out.parquet");
    for (keys, message) in [
        (
            "id:sideways",
            "--sort-by \"id:sideways\": direction \"sideways\" is not asc or desc",
        ),
        ("id,,x", "--sort-by \"id,,x\": empty column name"),
        (
            "nope",
            "--sort-by: no column named \"nope\"; the columns are id, x",
        ),
    ] {
        let out = common::convert(&csv, &dst, &["--sort-by", keys]);
        common::assert_refused(&out, 2, &[message]);
        assert!(!dst.exists());
    }
}
