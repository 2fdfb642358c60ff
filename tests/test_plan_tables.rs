//! Table conversions as plans, run task by task: the plan `plan_convert` builds runs
//! wave by wave through `run_task` against a directory store (what `blockwise
//! run-task` and a remote worker do), some tasks twice, and gives what `blockwise
//! convert` gives, as pyarrow reads both.

mod common;

use std::path::{Path, PathBuf};

use blockwise::convert::{plan_convert, ConvertOptions, PlanSizing};
use blockwise::memory::SpillCompression;
use blockwise::storage::frame::FrameReadOptions;
use blockwise::storage::Format;

use common::{assert_same, convert_ok, python_eval, run_by_tasks};

/// A CSV of `rows` rows with ints, floats, text with quotes, commas and line
/// breaks, empty fields and dates.
fn write_csv(path: &Path, rows: usize) {
    let mut text = String::from("id,x,name,day\n");
    for i in 0..rows {
        let name = match i % 5 {
            0 => String::new(),
            1 => format!("\"a, \"\"quoted\"\"\n{i}\""),
            _ => format!("n{}", i % 97),
        };
        let x = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}", i as f64 / 8.0)
        };
        text.push_str(&format!("{i},{x},{name},2024-01-{:02}\n", 1 + i % 28));
    }
    std::fs::write(path, text).unwrap();
}

fn options(to: Option<Format>) -> ConvertOptions {
    ConvertOptions {
        to,
        read: FrameReadOptions {
            // Small partitions: several parts, several chain links.
            blocksize: 16 << 10,
            ..FrameReadOptions::default()
        },
        ..ConvertOptions::default()
    }
}

const SIZING: PlanSizing = PlanSizing {
    threads: 2,
    memory_limit: 1 << 30,
};

/// Converts `src` to `dst` by a plan run task by task, and to `reference` with
/// `blockwise convert` and the same options (`extra`).
fn both_ways(src: &Path, dst: &Path, reference: &Path, to: Option<Format>, extra: &[&str]) {
    let plan = plan_convert(src, dst, &options(to), SIZING).unwrap();
    assert!(
        plan.tasks
            .iter()
            .filter(|t| t.op.name.contains("table"))
            .count()
            > 4,
        "the plan has several parts"
    );
    run_by_tasks(&plan, 1 << 30, SpillCompression::None);
    assert!(dst.exists(), "the output is published");
    let mut args = Vec::new();
    if src.extension().is_some_and(|e| e == "csv") {
        args.extend(["--blocksize", "16KiB"]);
    }
    args.extend_from_slice(extra);
    convert_ok(src, reference, &args);
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.csv");
    write_csv(&src, 3000);
    (dir, src)
}

#[test]
fn csv_to_parquet_by_tasks_equals_convert() {
    let (dir, src) = tmp();
    let dst = dir.path().join("out.parquet");
    let reference = dir.path().join("ref.parquet");
    both_ways(&src, &dst, &reference, None, &[]);
    assert_same("frame", &dst, &reference, &[]);
    assert_same("frame", &src, &dst, &[]);
}

#[test]
fn parquet_to_csv_by_tasks_equals_convert() {
    let (dir, src) = tmp();
    let parquet = dir.path().join("mid.parquet");
    convert_ok(&src, &parquet, &["--row-group-size", "100"]);
    let dst = dir.path().join("out.csv");
    let reference = dir.path().join("ref.csv");
    both_ways(&parquet, &dst, &reference, None, &[]);
    assert_eq!(
        std::fs::read(&dst).unwrap(),
        std::fs::read(&reference).unwrap()
    );
    assert_same("frame", &parquet, &dst, &[]);
}

#[test]
fn csv_to_ipc_by_tasks_equals_convert() {
    let (dir, src) = tmp();
    let dst = dir.path().join("out.arrow");
    let reference = dir.path().join("ref.arrow");
    both_ways(&src, &dst, &reference, None, &[]);
    assert_same("frame", &dst, &reference, &[]);
    assert_same("frame", &src, &dst, &[]);
}

#[test]
fn csv_to_a_parquet_directory_by_tasks_reads_as_one_dataset() {
    let (dir, src) = tmp();
    let dst = dir.path().join("out.pq");
    let reference = dir.path().join("ref.pq");
    both_ways(
        &src,
        &dst,
        &reference,
        Some(Format::ParquetDir),
        &["--to", "parquet-dir"],
    );
    let parts = common::entries(&dst);
    assert!(parts.len() > 2, "{parts:?}");
    assert!(parts
        .iter()
        .all(|p| p.starts_with("part.") && p.ends_with(".parquet")));
    assert_same("frame", &src, &dst, &[]);
    assert_same("frame", &dst, &reference, &[]);
    // pyarrow reads the directory as one dataset, in part order.
    let got = python_eval(&format!(
        "import pyarrow.dataset as ds, pyarrow.parquet as pq\n\
         t = pq.read_table({0:?})\n\
         d = ds.dataset({0:?}, format='parquet').to_table()\n\
         print(t.num_rows, d.num_rows, t.column('id').to_pylist() == list(range(3000)))",
        dst.display().to_string()
    ));
    assert_eq!(got.trim(), "3000 3000 True");
    // And blockwise reads it back.
    let back = dir.path().join("back.csv");
    convert_ok(&dst, &back, &[]);
    assert_same("frame", &src, &back, &[]);
}

#[test]
fn a_destination_ending_in_a_slash_is_a_parquet_directory() {
    let (dir, src) = tmp();
    let dst = dir.path().join("parts");
    let named = format!("{}/", dst.display());
    convert_ok(&src, Path::new(&named), &["--to", "parquet"]);
    assert!(dst.is_dir());
    assert_same("frame", &src, &dst, &[]);
}
