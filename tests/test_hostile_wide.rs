//! Wide tables: a CSV with tens of thousands of columns and one row converts to
//! Parquet in memory that follows the data, not the column count.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A one-row CSV of `columns` columns: integers, floats and strings in turn.
fn wide_csv(dir: &Path, columns: usize) -> PathBuf {
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let row: Vec<String> = (0..columns)
        .map(|i| match i % 3 {
            0 => format!("{}", i * 7),
            1 => format!("{}.25", i),
            _ => format!("s{}", i % 97),
        })
        .collect();
    let path = dir.join(format!("wide{columns}.csv"));
    std::fs::write(&path, format!("{}\n{}\n", header.join(","), row.join(","))).unwrap();
    path
}

#[test]
fn fifty_thousand_columns_and_one_row_convert_to_parquet_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = wide_csv(d, 50_000);
    let dst = d.join("wide.parquet");
    let out = convert_ok(&csv, &dst, &["--stats"]);
    assert!(!stderr(&out).contains("panicked"));
    // With a column writer per column for the whole row group this peaked at 1.5 GB
    // (release build). Writers now exist for one slice of columns at a time; what
    // remains grows with the column count but not per writer: the input batch, the
    // schemas, the closed chunks' metadata (~1 KB a column, as in the footer): about
    // 240 MB in release and 250 MB in a debug build.
    let rss = common::peak_rss(&out);
    assert!(rss < 320 << 20, "peak RSS {rss} bytes for a 650 KB CSV");
    assert_same("frame", &csv, &dst, &[]);
    let meta = python_eval(&format!(
        "import pyarrow.parquet as pq\nm = pq.ParquetFile({:?}).metadata\nprint(m.num_rows, m.num_columns)",
        dst.display().to_string()
    ));
    assert_eq!(meta.trim(), "1 50000");
    let mut names = entries(d);
    names.retain(|n| n.starts_with(".blockwise-"));
    assert!(names.is_empty(), "temporaries left: {names:?}");
}

#[test]
fn a_thousand_columns_of_many_rows_read_back_equal_through_column_slices() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let columns = 1000;
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let mut text = header.join(",") + "\n";
    for r in 0..300 {
        let row: Vec<String> = (0..columns)
            .map(|i| match (i + r) % 4 {
                0 => String::new(),
                _ if i % 2 == 0 => format!("{}", i * r),
                _ => format!("{}.5", r),
            })
            .collect();
        text += &(row.join(",") + "\n");
    }
    let csv = d.join("w.csv");
    std::fs::write(&csv, text).unwrap();
    let dst = d.join("w.parquet");
    // Small row groups, so that several of them go through the sliced writer.
    convert_ok(&csv, &dst, &["--row-group-size", "70"]);
    assert_same("frame", &csv, &dst, &[]);
}
