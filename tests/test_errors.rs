//! Bad input: one clear paragraph on stderr, exit code 2, no panic, no output left
//! behind (and an existing output untouched).

mod common;

use std::path::Path;
use std::process::Output;

use common::{blockwise, entries, fixture, stderr};

/// Converts `src` into a fresh directory and checks the failure: exit code 2, every
/// `needle` in stderr, no panic, and nothing left in the output directory.
fn fails_cleanly(src: &Path, dst_name: &str, extra: &[&str], needles: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(dst_name);
    let mut args: Vec<std::ffi::OsString> = vec!["convert".into(), src.into(), dst.clone().into()];
    args.extend(extra.iter().map(Into::into));
    let out = blockwise(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for {}: {err}",
        src.display()
    );
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        entries(dir.path()).is_empty(),
        "left behind: {:?}",
        entries(dir.path())
    );
    out
}

#[test]
fn csv_row_with_wrong_field_count_names_file_line_and_counts() {
    fails_cleanly(
        &fixture("csv/bad_fields.csv"),
        "out.parquet",
        &[],
        &["bad_fields.csv", "line 12", "expected 3 fields", "found 2"],
    );
}

#[test]
fn csv_field_count_error_is_found_in_later_partitions_too() {
    // A tiny blocksize puts the bad row in a partition that does not start the file.
    fails_cleanly(
        &fixture("csv/bad_fields.csv"),
        "out.parquet",
        &["--blocksize", "20"],
        &["line 12", "expected 3 fields", "found 2"],
    );
}

#[test]
fn csv_value_that_does_not_parse_names_line_column_and_value() {
    let out = fails_cleanly(
        &fixture("csv/bad_value.csv"),
        "out.parquet",
        &["--blocksize", "4KiB"],
        &[
            "bad_value.csv",
            "line 3002",
            "column \"b\"",
            "\"12x\"",
            "int64",
            "--dtype b=utf8",
        ],
    );
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one paragraph: {}",
        stderr(&out)
    );
}

#[test]
fn forced_type_that_does_not_parse_is_reported() {
    fails_cleanly(
        &fixture("csv/basic.csv"),
        "out.arrow",
        &["--dtype", "name=int64"],
        &["line 2", "column \"name\"", "int64"],
    );
}

#[test]
fn truncated_parquet_is_reported() {
    fails_cleanly(
        &fixture("parquet/truncated.parquet"),
        "out.csv",
        &[],
        &["truncated.parquet", "parquet", "corrupt"],
    );
}

#[test]
fn corrupt_npy_header_is_reported() {
    fails_cleanly(
        &fixture("npy/corrupt_header.npy"),
        "out.zarr",
        &[],
        &["corrupt_header.npy", "npy", "corrupt"],
    );
}

#[test]
fn zarr_with_unknown_codec_names_it() {
    fails_cleanly(
        &fixture("zarr/v3_bad_codec.zarr"),
        "out.npy",
        &[],
        &["unsupported zarr codec", "numcodecs.notacodec"],
    );
    fails_cleanly(
        &fixture("zarr/v2_bad_codec.zarr"),
        "out.npy",
        &[],
        &["unsupported zarr v2 codec", "lzma"],
    );
}

#[test]
fn missing_input_is_reported() {
    fails_cleanly(
        Path::new("/no/such/input.csv"),
        "out.parquet",
        &[],
        &["/no/such/input.csv", "no such file"],
    );
}

#[test]
fn existing_output_is_kept_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.parquet");
    std::fs::write(&dst, b"precious").unwrap();
    let out = blockwise([
        "convert".as_ref(),
        fixture("csv/basic.csv").as_os_str(),
        dst.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already exists; pass --overwrite"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"precious");
    assert_eq!(entries(dir.path()), vec!["out.parquet"]);
}

#[test]
fn failed_overwrite_keeps_the_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.parquet");
    std::fs::write(&dst, b"precious").unwrap();
    let out = blockwise([
        "convert".as_ref(),
        fixture("csv/bad_value.csv").as_os_str(),
        dst.as_os_str(),
        "--overwrite".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read(&dst).unwrap(), b"precious");
    assert_eq!(entries(dir.path()), vec!["out.parquet"]);
}

#[test]
fn bad_flags_are_usage_errors() {
    fails_cleanly(
        &fixture("npy/float64.npy"),
        "out.zarr",
        &["--chunks", "10,x"],
        &["--chunks", "not a positive integer"],
    );
    fails_cleanly(
        &fixture("npy/float64.npy"),
        "out.zarr",
        &["--chunks", "10"],
        &["1 dimensions", "shape [37, 23]"],
    );
    fails_cleanly(
        &fixture("csv/basic.csv"),
        "out.parquet",
        &["--columns", "nope"],
        &["no column named \"nope\"", "id, x"],
    );
    fails_cleanly(
        &fixture("csv/basic.csv"),
        "out.unknown",
        &[],
        &["pass --to"],
    );
}

/// Mounts a 64 KiB tmpfs (needs root); the test is meaningless without it.
fn small_filesystem(dir: &Path) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn full_disk_is_reported_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let dst = mnt.join("out.parquet");
    let args: Vec<std::ffi::OsString> = vec![
        "convert".into(),
        fixture("csv/big_quoted.csv").into(),
        dst.clone().into(),
        "--compression".into(),
        "none".into(),
    ];
    let out = if small_filesystem(&mnt) {
        let out = blockwise(&args);
        let left = entries(&mnt);
        let _ = std::process::Command::new("umount").arg(&mnt).status();
        assert!(left.is_empty(), "left behind: {left:?}");
        out
    } else {
        // Without root: a file size limit makes writes fail the same way (EFBIG), with
        // SIGXFSZ ignored so the write returns an error instead of killing us.
        let script = "trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\"";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_blockwise"))
            .args(&args)
            .output()
            .unwrap();
        assert!(entries(&mnt).is_empty(), "left behind: {:?}", entries(&mnt));
        out
    };
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no space left on device"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_memory_limit_smaller_than_one_chunk_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.npy");
    // One 32 MiB chunk against the smallest limit accepted (64 KiB).
    common::python_eval(&format!(
        "import numpy as np; np.save({:?}, np.zeros((2048, 2048)))",
        src
    ));
    let dst = dir.path().join("a.zarr");
    let out = blockwise([
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--chunks".as_ref(),
        "2048,2048".as_ref(),
        "--memory-limit".as_ref(),
        "64KiB".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("memory limit"), "{}", stderr(&out));
    assert_eq!(entries(dir.path()), vec!["a.npy"]);
}
