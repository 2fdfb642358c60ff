//! Classes found by an outside review of the hostile-array work, each through the
//! binary: a header dict read by search, a zero-length axis hiding an overflowing
//! shape, zstd chunks that claim terabytes, a stack part that is a directory, npy
//! stacks and tables with zero-length axes, table columns that need promotion, and
//! Zarr metadata fields of the wrong type. Inputs come from
//! `fixtures/hostile/arrays.py` (numpy, zarr-python, dask, pyarrow and byte surgery).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{blockwise, entries, python_eval, stderr};

/// Writes the named cases of `fixtures/hostile/arrays.py` into a fresh directory.
fn generate(cases: &[&str]) -> tempfile::TempDir {
    common::hostile_fixtures("arrays.py", cases)
}

/// Asserts exit 2 with every needle in stderr, no panic and no debug formatting.
fn assert_exit_2(out: &Output, needles: &[&str]) {
    let err = common::assert_refused(out, 2, needles);
    assert!(!err.contains("os error"), "raw OS error in: {err}");
}

/// `convert SRC DIR/dst` fails with exit 2 and `needles`, leaving DIR empty.
fn convert_fails(src: &Path, dst_name: &str, needles: &[&str]) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = blockwise([
        Path::new("convert"),
        src,
        &out_dir.path().join(dst_name),
        Path::new("--no-progress"),
    ]);
    assert_exit_2(&out, needles);
    assert!(
        entries(out_dir.path()).is_empty(),
        "left behind: {:?}",
        entries(out_dir.path())
    );
}

#[test]
fn npy_header_dicts_are_parsed_so_duplicate_and_unknown_keys_are_refused() {
    let dir = generate(&["npy_header_keys"]);
    // numpy reads shape (1,) from this header (the last key wins); reading (6, 10)
    // with exit 0 would be a different array.
    let dup = dir.path().join("dup_keys.npy");
    assert_exit_2(
        &blockwise([Path::new("info"), &dup]),
        &["dup_keys.npy", "'shape' twice"],
    );
    convert_fails(&dup, "out.npy", &["'shape' twice"]);
    let extra = dir.path().join("extra_key.npy");
    assert_exit_2(
        &blockwise([Path::new("head"), &extra]),
        &["extra_key.npy", "'foo'"],
    );
}

#[test]
fn a_zero_length_axis_does_not_hide_an_axis_past_numpys_limit() {
    let dir = generate(&["npy_header_keys"]);
    let src = dir.path().join("zero_then_huge.npy");
    let needles = ["[0, 9223372036854775808]", "no array can be that large"];
    assert_exit_2(&blockwise([Path::new("info"), &src]), &needles);
    convert_fails(&src, "out.zarr", &needles);
}

#[test]
fn compressed_chunks_that_expand_past_their_size_are_refused_not_decoded() {
    let dir = generate(&["decoder_bombs"]);
    for (name, needles) in [
        (
            "gzip_expands_100mib.zarr",
            ["chunk c/0/0", "gzip", "more than 24 bytes"],
        ),
        (
            "zstd_claims_1tib.zarr",
            ["chunk c/0/0", "1099511627776", "24 bytes"],
        ),
        (
            "shard_zstd_claims_1tib.zarr",
            ["inner chunk of shard c/0/0", "1099511627776", "24 bytes"],
        ),
    ] {
        let src = dir.path().join(name);
        // info reads metadata only and succeeds; reading the chunk must neither
        // abort on the zstd claim nor expand the gzip stream (100 MiB) in memory.
        assert!(blockwise([Path::new("info"), &src]).status.success());
        let (out, peak_kib) = blockwise_peak(&[Path::new("head"), &src]);
        assert_exit_2(&out, &needles);
        assert!(peak_kib < 80 << 10, "{name}: head peaked at {peak_kib} KiB");
        convert_fails(&src, "out.npy", &needles);
    }
}

/// Runs `blockwise` with `args` and returns its output and its own peak RSS in
/// KiB, from `wait4` (the rusage of that one child, not of every child).
// The child is reaped by wait4, which std's `wait` cannot report rusage from.
#[allow(clippy::zombie_processes)]
fn blockwise_peak(args: &[&Path]) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .args(args)
        .env_remove("BLOCKWISE_MEMORY_LIMIT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run blockwise");
    let mut status = 0;
    // SAFETY: wait4 writes into the status and rusage we own; the child is ours and
    // is reaped here (its output is small enough to sit in the pipes meanwhile).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout,
        stderr,
    };
    (out, usage.ru_maxrss as u64)
}

#[test]
fn a_stack_part_that_is_a_directory_or_an_empty_chunk_tuple_is_exit_2() {
    let dir = generate(&["stack_part_dir"]);
    let src = dir.path().join("stack_part_dir");
    assert_exit_2(
        &blockwise([Path::new("info"), &src]),
        &["1.npy", "a directory"],
    );
    convert_fails(&src, "out.zarr", &["1.npy", "a directory"]);
    // dask refuses `()` for an axis; an empty axis is `(0,)`.
    let src = dir.path().join("stack_empty_axis");
    assert_exit_2(&blockwise([Path::new("info"), &src]), &["info", "(0,)"]);
}

#[test]
fn npy_stack_info_with_numpy_integers_reads_as_dask_reads_it() {
    let dir = generate(&["stack_numpy_ints"]);
    for protocol in [0, 4] {
        let src = dir.path().join(format!("stack_np_ints_p{protocol}"));
        let dst = dir.path().join(format!("np_ints_p{protocol}.npy"));
        let out = blockwise([Path::new("convert"), &src, &dst, Path::new("--no-progress")]);
        assert!(out.status.success(), "p{protocol}: {}", stderr(&out));
        let got = python_eval(&format!(
            "import dask.array as da, numpy as np\n\
             print(np.array_equal(np.load({dst:?}), da.from_npy_stack({src:?}).compute()))",
            dst = dst.display().to_string(),
            src = src.display().to_string(),
        ));
        assert_eq!(got.trim(), "True", "protocol {protocol}");
    }
    // A float size is refused, printed as Python prints it.
    let src = dir.path().join("stack_float_chunk");
    assert_exit_2(
        &blockwise([Path::new("info"), &src]),
        &["chunk size 4.0 is not"],
    );
}

#[test]
fn npy_stacks_with_a_zero_length_axis_are_read_back_by_dask() {
    let dir = generate(&["zero_length"]);
    for shape in ["0x5", "5x0", "3x0x2"] {
        let src = dir.path().join(format!("zero_{shape}.npy"));
        let dst = dir.path().join(format!("zero_{shape}_stack"));
        let out = blockwise([
            Path::new("convert"),
            &src,
            &dst,
            Path::new("--to"),
            Path::new("npy-stack"),
            Path::new("--no-progress"),
        ]);
        assert!(out.status.success(), "{shape}: {}", stderr(&out));
        let got = python_eval(&format!(
            "import dask.array as da, numpy as np\n\
             a = da.from_npy_stack({dst:?}).compute()\n\
             e = np.load({src:?})\n\
             print(a.shape == e.shape and a.dtype == e.dtype)",
            dst = dst.display().to_string(),
            src = src.display().to_string(),
        ));
        assert_eq!(got.trim(), "True", "{shape}");
    }
}

#[test]
fn an_array_with_no_columns_is_refused_as_a_table() {
    let dir = generate(&["zero_length"]);
    let src = dir.path().join("zero_5x0.npy");
    for dst in ["out.parquet", "out.csv", "out.arrow"] {
        convert_fails(&src, dst, &["zero_5x0.npy", "[5, 0]", "no columns"]);
    }
}

#[test]
fn table_columns_become_an_array_without_losing_values() {
    let dir = generate(&["table_columns"]);
    // uint64 beside int64: no integer type holds both, so float64 (numpy's choice);
    // an int64 array would hold garbage where 2^64 - 1 overflowed.
    let src = dir.path().join("u64_i64.parquet");
    let dst = dir.path().join("u64_i64.npy");
    let out = blockwise([Path::new("convert"), &src, &dst, Path::new("--no-progress")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = python_eval(&format!(
        "import numpy as np\n\
         a = np.load({dst:?})\n\
         print(a.dtype, a.tolist() == [[float(2**64 - 1), -1.0], [1.0, 2.0]])",
        dst = dst.display().to_string()
    ));
    assert_eq!(got.trim(), "float64 True");
    // Nulls in an integer column: the advice fits the input (--dtype is CSV's).
    let src = dir.path().join("int_nulls.parquet");
    convert_fails(&src, "out.npy", &["\"a\"", "int32", "nulls", "--columns"]);
    let out = blockwise([
        Path::new("convert"),
        &src,
        &dir.path().join("x.npy"),
        Path::new("--no-progress"),
    ]);
    assert!(!stderr(&out).contains("--dtype"), "{}", stderr(&out));
    convert_fails(
        &dir.path().join("strings.parquet"),
        "out.zarr",
        &["strings.parquet", "numeric"],
    );
}

#[test]
fn zarr_metadata_fields_of_the_wrong_type_are_named() {
    let dir = generate(&["zarr_wrong_types"]);
    for (field, found) in [
        ("shape", "null"),
        ("data_type", "1"),
        ("codecs", "{}"),
        ("attributes", "\"x\""),
        ("node_type", "5"),
        ("zarr_format", "\"3\""),
    ] {
        let src = dir.path().join(format!("wrong_{field}.zarr"));
        let needle = format!("zarr.json: '{field}' is {found}; expected");
        assert_exit_2(
            &blockwise([Path::new("info"), &src]),
            &[&format!("wrong_{field}.zarr"), &needle],
        );
    }
}

#[test]
fn a_scalar_as_an_npy_stack_names_the_destination() {
    let dir = generate(&["scalars"]);
    let out_dir = tempfile::tempdir().unwrap();
    let dst = out_dir.path().join("s.stack");
    let out = blockwise([
        Path::new("convert"),
        &dir.path().join("scalar.npy"),
        &dst,
        Path::new("--to"),
        Path::new("npy-stack"),
    ]);
    assert_exit_2(&out, &["s.stack", "zero-dimensional", "npy or zarr"]);
    assert!(entries(out_dir.path()).is_empty());
}

/// Runs `blockwise` with `args`, killing it and failing the test after 30 s: a
/// read that waits on a FIFO must not hang the command.
fn blockwise_within(args: &[&Path]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run blockwise");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("blockwise {args:?} still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Replaces `path` with a FIFO.
fn make_fifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn fifos_in_place_of_array_files_are_refused_without_waiting() {
    let dir = generate(&["zarr_corrupt_chunk", "stack_protocols"]);
    let fifo = dir.path().join("fifo.npy");
    make_fifo(&fifo);
    let out = blockwise_within(&[
        Path::new("info"),
        Path::new("--from"),
        Path::new("npy"),
        &fifo,
    ]);
    assert_exit_2(&out, &["fifo.npy", "regular file"]);
    // A part of a stack, the info of a stack, a Zarr chunk and zarr.json.
    let stack = dir.path().join("stack_p4");
    make_fifo(&stack.join("1.npy"));
    let out = blockwise_within(&[Path::new("head"), &stack]);
    assert_exit_2(&out, &["1.npy", "regular file"]);
    make_fifo(&stack.join("info"));
    let out = blockwise_within(&[
        Path::new("info"),
        Path::new("--from"),
        Path::new("npy-stack"),
        &stack,
    ]);
    assert_exit_2(&out, &["info", "regular file"]);
    let zarr = dir.path().join("corrupt_chunk.zarr");
    make_fifo(&zarr.join("c").join("0").join("1"));
    let out = blockwise_within(&[Path::new("convert"), &zarr, &dir.path().join("o.npy")]);
    assert_exit_2(&out, &["chunk c/0/1", "regular file"]);
    assert!(!dir.path().join("o.npy").exists());
    make_fifo(&zarr.join("zarr.json"));
    let out = blockwise_within(&[
        Path::new("info"),
        Path::new("--from"),
        Path::new("zarr"),
        &zarr,
    ]);
    assert_exit_2(&out, &["zarr.json", "regular file"]);
}

#[test]
fn zarr_v2_codecs_without_a_v3_counterpart_are_named_with_the_v2_list() {
    let dir = generate(&["zarr_v2_codecs"]);
    for codec in ["crc32c", "lz4"] {
        let src = dir.path().join(format!("v2_{codec}.zarr"));
        let out = blockwise([Path::new("info"), &src]);
        assert_exit_2(
            &out,
            &[
                &format!("zarr v2 codec \"{codec}\""),
                "zstd, blosc, gzip or zlib",
            ],
        );
        // The v3 list names crc32c, which would contradict the refusal.
        assert!(!stderr(&out).contains("transpose"), "{}", stderr(&out));
    }
}
