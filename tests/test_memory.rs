//! The memory budget as a user meets it: plans refused before they run with a size
//! that fits, and a spill directory left empty after success, failure and Ctrl-C.

mod common;

use std::path::Path;

use common::{blockwise, convert_ok, entries, fixture, stderr};

/// A 400 x 400 float64 array (1.28 MB) written by numpy.
fn array(dir: &Path) -> std::path::PathBuf {
    let npy = dir.join("a.npy");
    common::python_eval(&format!(
        "import numpy as np; np.save({:?}, np.arange(160000, dtype='f8').reshape(400, 400))",
        npy
    ));
    npy
}

#[test]
fn a_plan_too_large_is_refused_with_a_chunk_size_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let npy = array(dir.path());
    let dst = dir.path().join("out.zarr");
    let limit = "1MB";
    let out = blockwise([
        "convert".as_ref(),
        npy.as_os_str(),
        dst.as_os_str(),
        "--chunks".as_ref(),
        "400,400".as_ref(),
        "--memory-limit".as_ref(),
        limit.as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("plan refused before running") && err.contains("rechunk"),
        "{err}"
    );
    assert!(!dst.exists());
    // The message names a chunk size in bytes; chunks of that size must run.
    let bytes: u64 = err
        .split("at most ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no suggested size in: {err}"));
    let rows = (bytes / (400 * 8)).max(1);
    let chunks = format!("{rows},400");
    let off = common::RSS_THRESHOLDS_OFF;
    let mut args = vec![
        "--chunks",
        &chunks,
        "--memory-limit",
        limit,
        "--threads",
        "1",
    ];
    args.extend(off);
    convert_ok(&npy, &dst, &args);
    common::assert_same("array", &npy, &dst, &[]);
}

fn spill_args<'a>(spill: &'a Path, extra: &[&'a str]) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["--spill-dir".into(), spill.into()];
    v.extend(extra.iter().map(Into::into));
    v
}

#[test]
fn the_spill_directory_is_empty_after_success_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();

    // Success, with spilling: a sort under a small budget.
    let mut args: Vec<std::ffi::OsString> = vec![
        "convert".into(),
        fixture("csv/big_quoted.csv").into(),
        dir.path().join("s.parquet").into(),
    ];
    args.extend(spill_args(
        &spill,
        &[
            &["--sort-by", "id", "--memory-limit", "200KB"][..],
            &common::RSS_THRESHOLDS_OFF,
        ]
        .concat(),
    ));
    let out = blockwise(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        entries(&spill).is_empty(),
        "after success: {:?}",
        entries(&spill)
    );

    // Failure: a bad value partway through a sort.
    let mut args: Vec<std::ffi::OsString> = vec![
        "convert".into(),
        fixture("csv/bad_value.csv").into(),
        dir.path().join("f.parquet").into(),
    ];
    args.extend(spill_args(
        &spill,
        &["--sort-by", "a", "--blocksize", "4KiB"],
    ));
    let out = blockwise(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        entries(&spill).is_empty(),
        "after failure: {:?}",
        entries(&spill)
    );
    assert!(!dir.path().join("f.parquet").exists());
}

#[test]
fn a_table_whose_partitions_cannot_fit_is_refused_before_writing() {
    // One 112 KB row group: reading it needs about that much, over half of 100 KB.
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.csv");
    let out = blockwise([
        "convert".as_ref(),
        fixture("csv/big_quoted.parquet").as_os_str(),
        dst.as_os_str(),
        "--memory-limit".as_ref(),
        "100KB".as_ref(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("plan refused before running") && err.contains("encode_table_part"),
        "{err}"
    );
    assert!(!dst.exists());
    assert_eq!(
        entries(dir.path()),
        vec![] as Vec<String>,
        "nothing left behind"
    );
}
