//! What an outside review found by running the release binary as a hostile user,
//! one test per class it fixed: a hard link to the source as DST, names and paths
//! longer than a filesystem takes, an `--overwrite` of what cannot be removed (a
//! read-only file, a dataset holding a read-only directory), `--columns` naming a
//! column twice, a tiny `--blocksize` on a larger CSV, decoder errors and option
//! values shown with Rust's debug formatting, Hive directories with no key or a `+`
//! value, and parts whose schemas differ.
//!
//! Each asserts the exit code, the message's facts, no panic, no temporary left and
//! an existing DST unchanged.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{blockwise, convert, entries, python_eval, stderr};

fn small_csv(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "a,b\n1,x\n3,y\n5,z\n").unwrap();
    path
}

/// Exit 2, every fact in stderr, no panic, no debug formatting, no temporary left.
fn refused(out: &Output, facts: &[&str], dir: &Path) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for fact in facts {
        assert!(err.contains(fact), "{fact:?} not in: {err}");
    }
    assert_clean(&err);
    common::assert_no_temps(dir);
}

/// No panic and none of Rust's debug formatting in a message.
fn assert_clean(err: &str) {
    assert!(!err.contains("panicked"), "{err}");
    for debug in ["Some(", "\\\"", "..", " { ", "os error"] {
        assert!(!err.contains(debug), "{debug:?} in: {err}");
    }
}

/// The binary, as an unprivileged user when the tests run as root (for whom no
/// permission bit means anything).
fn unprivileged() -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_blockwise"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_blockwise"))
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// Destinations.

#[test]
fn a_hard_link_to_the_source_is_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let link = dir.path().join("b.csv");
    std::fs::hard_link(&src, &link).unwrap();
    for extra in [&["--to", "csv"][..], &["--to", "csv", "--overwrite"]] {
        let out = convert(&src, &link, extra);
        refused(&out, &["b.csv", "is the input"], dir.path());
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&link).unwrap().nlink(), 2);
    assert_eq!(entries(dir.path()), vec!["a.csv", "b.csv"]);
}

#[test]
fn the_longest_legal_name_converts_and_longer_ones_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    // 255 bytes: the longest name Linux filesystems take. The temporary name next
    // to it must fit too.
    for (name, to) in [("y".repeat(255), "parquet"), ("é".repeat(127), "zarr")] {
        let dst = dir.path().join(&name);
        let out = convert(&src, &dst, &["--to", to]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(dst.exists());
        common::assert_no_temps(dir.path());
        // And replacing it, which moves the old output aside under another name.
        let out = convert(&src, &dst, &["--to", to, "--overwrite"]);
        assert!(out.status.success(), "{}", stderr(&out));
        common::assert_no_temps(dir.path());
    }
    let too_long = dir.path().join("x".repeat(256));
    refused(
        &convert(&src, &too_long, &["--to", "csv"]),
        &["too long", "255"],
        dir.path(),
    );
    let deep = dir.path().join(vec!["z".repeat(200); 25].join("/"));
    refused(
        &convert(&src, &deep, &["--to", "csv"]),
        &["too long", "4096"],
        dir.path(),
    );
}

#[test]
fn overwrite_of_what_cannot_be_removed_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o777);
    let src = small_csv(dir.path(), "a.csv");
    chmod(&src, 0o644);
    // A dataset directory holding a directory the user cannot empty.
    let zarr = dir.path().join("old.zarr");
    std::fs::create_dir_all(zarr.join("c/0")).unwrap();
    std::fs::write(zarr.join("zarr.json"), r#"{"node_type":"array"}"#).unwrap();
    std::fs::write(zarr.join("c/0/0"), "chunk").unwrap();
    for d in ["", "c"] {
        chmod(&zarr.join(d), 0o777);
    }
    chmod(&zarr.join("c/0"), 0o555);
    // A read-only file.
    let ro = dir.path().join("keep.csv");
    std::fs::write(&ro, "old\n").unwrap();
    chmod(&ro, 0o444);
    for (dst, to, fact) in [(&zarr, "csv", "c/0"), (&ro, "parquet", "keep.csv")] {
        let out = unprivileged()
            .arg("convert")
            .arg(&src)
            .arg(dst)
            .args(["--to", to, "--overwrite"])
            .env_remove("BLOCKWISE_MEMORY_LIMIT")
            .output()
            .unwrap();
        refused(&out, &["permission denied", fact], dir.path());
    }
    assert!(zarr.join("c/0/0").is_file() && zarr.join("zarr.json").is_file());
    assert_eq!(std::fs::read_to_string(&ro).unwrap(), "old\n");
    chmod(&zarr.join("c/0"), 0o755);
}

// Options.

#[test]
fn a_column_named_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    for to in ["out.parquet", "out.arrow", "out.csv"] {
        let out = convert(&src, &dir.path().join(to), &["--columns", "a,b,a"]);
        refused(&out, &["--columns", "\"a\" twice"], dir.path());
    }
    assert_eq!(entries(dir.path()), vec!["a.csv"]);
}

#[test]
fn a_one_byte_blocksize_does_not_make_a_partition_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.csv");
    let mut text = String::from("a,b\n");
    for i in 0..40_000 {
        text.push_str(&format!("{i},{}\n", i % 7));
    }
    std::fs::write(&src, &text).unwrap();
    let dst = dir.path().join("out.parquet");
    let started = std::time::Instant::now();
    let out = convert(
        &src,
        &dst,
        &["--blocksize", "1", "--stats", "--no-progress"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_str(
        stderr(&out)
            .lines()
            .rfind(|l| l.starts_with('{'))
            .expect("a --stats line"),
    )
    .unwrap();
    // About four tasks a partition, and at most 2^12 partitions (a 250 KB file
    // would make 250,000 at one byte each).
    assert!(stats["tasks"].as_u64().unwrap() <= 5 << 12, "{stats}");
    assert_eq!(stats["rows"].as_u64(), Some(40_000));
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn option_values_are_quoted_without_rust_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let dst = dir.path().join("out.parquet");
    let out = convert(&src, &dst, &["--delimiter", "\""]);
    refused(&out, &["--delimiter '\"'", "quote"], dir.path());
    let out = convert(&src, &dst, &["--delimiter", "\n"]);
    refused(&out, &["--delimiter \"\\n\"", "line break"], dir.path());
}

#[test]
fn bad_row_group_indices_name_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("t.parquet");
    python_eval(&format!(
        "import pyarrow as pa, pyarrow.parquet as pq\n\
         pq.write_table(pa.table({{'a': list(range(10))}}), {:?}, row_group_size=5)",
        src.display().to_string()
    ));
    for bad in ["-1", "a", "99999999999999999999999", "0,", ""] {
        let out = convert(
            &src,
            &dir.path().join("out.csv"),
            &[&format!("--row-groups={bad}")],
        );
        refused(&out, &["--row-groups", "row group index"], dir.path());
        assert!(!stderr(&out).contains("invalid digit"), "{}", stderr(&out));
    }
}

// Tables.

#[test]
fn decoder_errors_are_told_without_debug_formatting() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("t.arrow");
    python_eval(&format!(
        "import pyarrow as pa, pyarrow.feather as f\n\
         f.write_feather(pa.table({{'s': [f'v{{i}}' for i in range(100)]}}), {:?}, \
         compression='uncompressed')",
        src.display().to_string()
    ));
    // Byte surgery: an invalid UTF-8 byte inside the string data, which arrow reports
    // with a byte range.
    let mut bytes = std::fs::read(&src).unwrap();
    let at = bytes
        .windows(3)
        .position(|w| w == b"v50")
        .expect("the string data");
    bytes[at] = 0xff;
    std::fs::write(&src, &bytes).unwrap();
    for cmd in [
        vec!["convert".into(), src.clone(), dir.path().join("o.parquet")],
        vec!["head".into(), src.clone()],
    ] {
        let out = blockwise(&cmd);
        refused(&out, &["t.arrow", "corrupt", "UTF8"], dir.path());
    }
    assert_eq!(entries(dir.path()), vec!["t.arrow"]);
}

/// Writes a one-row Parquet part at `dir/rel`, with `v` as its column.
fn part(dir: &Path, rel: &str, v: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    python_eval(&format!(
        "import pyarrow as pa, pyarrow.parquet as pq\n\
         pq.write_table(pa.table({{'v': {v}}}), {:?})",
        path.display().to_string()
    ));
}

#[test]
fn hive_directories_without_a_key_are_refused_and_plus_values_stay_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("nokey");
    part(&d, "=x/p.parquet", "[1]");
    part(&d, "=y/p.parquet", "[2]");
    refused(
        &convert(&d, &dir.path().join("o.csv"), &[]),
        &["=x", "Hive partition directory", "KEY=VALUE"],
        dir.path(),
    );
    let d = dir.path().join("plus");
    part(&d, "k=+2/p.parquet", "[1]");
    part(&d, "k=1/p.parquet", "[2]");
    let dst = dir.path().join("plus.parquet");
    let out = convert(&d, &dst, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = python_eval(&format!(
        "import pyarrow.parquet as pq\n\
         t = pq.read_table({:?})\n\
         print(t.schema.field('k').type, sorted(t.column('k').to_pylist()))",
        dst.display().to_string()
    ));
    assert_eq!(got.trim(), "string ['+2', '1']");
}

#[test]
fn parts_with_different_schemas_name_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("parts");
    part(&d, "part-0.parquet", "pa.array([1], pa.int64())");
    part(&d, "part-1.parquet", "pa.array([1], pa.int32())");
    refused(
        &convert(&d, &dir.path().join("o.csv"), &[]),
        &[
            "part-1.parquet",
            "column \"v\" is int32 here and int64 there",
        ],
        dir.path(),
    );
    let d = dir.path().join("mixed");
    part(&d, "k=1/p.parquet", "[1]");
    part(&d, "p.parquet", "[2]");
    let out = convert(&d, &dir.path().join("o.csv"), &[]);
    refused(
        &out,
        &["partition directories none where it has k"],
        dir.path(),
    );
}

#[test]
fn blocksize_on_input_that_is_not_csv_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let pq = dir.path().join("a.parquet");
    assert!(convert(&src, &pq, &[]).status.success());
    let out = convert(&pq, &dir.path().join("o.csv"), &["--blocksize", "1MiB"]);
    refused(&out, &["--blocksize", "CSV input", "parquet"], dir.path());
    assert_eq!(entries(dir.path()), vec!["a.csv", "a.parquet"]);
}

// Signals.

#[test]
fn a_second_signal_keeps_the_first_signals_exit_code_and_leaves_nothing() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        writeln!(f, "a,b,c").unwrap();
        for i in 0..1_500_000u64 {
            writeln!(f, "{i},text number {i},{}.25", i % 1000).unwrap();
        }
    }
    let out_dir = dir.path().join("out");
    let spill = dir.path().join("spill");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::create_dir(&spill).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .arg("convert")
        .arg(&src)
        .arg(out_dir.join("out.zarr"))
        .args(["--threads", "1", "--blocksize", "1MiB", "--no-progress"])
        .arg("--spill-dir")
        .arg(&spill)
        .env_remove("BLOCKWISE_MEMORY_LIMIT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the output exists, SIGINT, then SIGTERM while it is being cleaned up.
    let started = std::time::Instant::now();
    while entries(&out_dir).is_empty() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill has no memory preconditions; `pid` is our child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(30));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    if out.status.code() == Some(0) {
        return; // finished before the signals: nothing to check
    }
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(entries(&out_dir).is_empty(), "{:?}", entries(&out_dir));
    assert!(entries(&spill).is_empty(), "{:?}", entries(&spill));
}
