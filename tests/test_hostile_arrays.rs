//! Hostile array inputs through the binary: headers whose sizes lie, zero-dimensional
//! arrays, chunk requests, full disks, and messages a user recognises. Inputs are
//! written by numpy, zarr-python and dask, with byte surgery, by
//! `fixtures/hostile/arrays.py` into a temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{blockwise, entries, python_eval, stderr};

/// Writes the named cases of `fixtures/hostile/arrays.py` into a fresh directory.
fn generate(cases: &[&str]) -> tempfile::TempDir {
    common::hostile_fixtures("arrays.py", cases)
}

/// Asserts a failed run: exit 2, every needle in stderr, none of the debug-format
/// leaks, no panic.
fn assert_fails(out: &Output, needles: &[&str]) {
    common::assert_refused(out, 2, needles);
}

/// `info SRC` fails with `needles`, then `convert SRC` into an empty directory fails
/// the same way and leaves nothing there.
fn info_and_convert_fail(src: &Path, dst_name: &str, needles: &[&str]) {
    assert_fails(&blockwise([Path::new("info"), src]), needles);
    let out_dir = tempfile::tempdir().unwrap();
    let dst = out_dir.path().join(dst_name);
    let out = blockwise([PathBuf::from("convert"), src.to_path_buf(), dst.clone()]);
    assert_fails(&out, needles);
    assert!(
        entries(out_dir.path()).is_empty(),
        "left behind: {:?}",
        entries(out_dir.path())
    );
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    blockwise(args.iter().map(|a| a.as_ref().to_owned()))
}

#[test]
fn truncated_npy_names_shape_bytes_needed_and_present() {
    let dir = generate(&["npy_truncated"]);
    info_and_convert_fail(
        &dir.path().join("truncated.npy"),
        "out.zarr",
        &["truncated.npy", "[100, 10]", "8000 bytes", "4000"],
    );
}

#[test]
fn npy_shapes_that_overflow_or_exceed_the_file_are_size_mismatches() {
    let dir = generate(&["npy_overflow", "npy_huge"]);
    info_and_convert_fail(
        &dir.path().join("overflow.npy"),
        "out.zarr",
        &[
            "[4294967296, 4294967296]",
            "more than 2^64",
            "64 data bytes",
        ],
    );
    info_and_convert_fail(
        &dir.path().join("huge.npy"),
        "out.npy",
        &["[1000000, 1000000]", "8000000000000", "64 data bytes"],
    );
    assert_fails(
        &run(&[&"head", &dir.path().join("huge.npy")]),
        &["8000000000000"],
    );
}

#[test]
fn zarr_metadata_with_huge_sizes_is_refused_before_reading() {
    let dir = generate(&["zarr_huge_shape"]);
    info_and_convert_fail(
        &dir.path().join("overflow_shape.zarr"),
        "out.npy",
        &["overflow_shape.zarr", "more than 2^64"],
    );
    info_and_convert_fail(
        &dir.path().join("huge_chunk.zarr"),
        "out.npy",
        &["chunk shape [1099511627776, 3]", "13194139533312", "4 GiB"],
    );
    info_and_convert_fail(
        &dir.path().join("many_chunks.zarr"),
        "out.zarr",
        &["number of chunks", "1152921504606846976"],
    );
}

#[test]
fn zero_dimensional_arrays_convert_to_npy_and_zarr_and_are_refused_elsewhere() {
    let dir = generate(&["scalars"]);
    let npy = dir.path().join("scalar.npy");
    let zarr = dir.path().join("scalar.zarr");
    let out = tempfile::tempdir().unwrap();
    for (src, dst) in [
        (&npy, out.path().join("a.zarr")),
        (&npy, out.path().join("b.npy")),
        (&zarr, out.path().join("c.npy")),
        (&zarr, out.path().join("d.zarr")),
    ] {
        let o = run(&[&"convert", src, &dst]);
        assert!(o.status.success(), "{}: {}", dst.display(), stderr(&o));
    }
    let got = python_eval(&format!(
        "import numpy as np, zarr\n\
         a = zarr.open_array({a:?})[...]; b = np.load({b:?}); c = np.load({c:?}); d = zarr.open_array({d:?})[...]\n\
         print(a.shape, float(a), b.shape, float(b), float(c), float(d))",
        a = out.path().join("a.zarr"),
        b = out.path().join("b.npy"),
        c = out.path().join("c.npy"),
        d = out.path().join("d.zarr"),
    ));
    assert_eq!(got.trim(), "() 3.5 () 3.5 2.5 2.5");
    let info = run(&[&"info", &npy]);
    assert!(info.status.success());
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("nbytes: 8"), "{text}");
    let head = run(&[&"head", &zarr]);
    assert!(String::from_utf8_lossy(&head.stdout).contains("2.5"));
    // An npy stack is cut along an axis; a table needs rows.
    for (dst, needle) in [
        ("stack", "zero-dimensional"),
        ("t.csv", "shape for a table \"[]\""),
        ("t.parquet", "0 dimensions"),
    ] {
        let o = tempfile::tempdir().unwrap();
        let d = o.path().join(dst);
        let args: Vec<&dyn AsRef<std::ffi::OsStr>> = if dst == "stack" {
            vec![&"convert", &npy, &d, &"--to", &"npy-stack"]
        } else {
            vec![&"convert", &npy, &d]
        };
        assert_fails(&run(&args), &[needle]);
        assert!(entries(o.path()).is_empty(), "{:?}", entries(o.path()));
    }
}

#[test]
fn chunks_larger_than_the_array_are_clamped_and_wrong_ranks_refused() {
    let dir = generate(&["zarr_corrupt_chunk"]);
    // corrupt_chunk.zarr is (4, 6) in chunks of (2, 3); its chunk c/0/1 is broken, so
    // use an npy made from the good part.
    let src = dir.path().join("a.npy");
    python_eval(&format!(
        "import numpy as np; np.save({src:?}, np.arange(24, dtype='i4').reshape(4, 6))"
    ));
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("big.zarr");
    let o = run(&[&"convert", &src, &dst, &"--chunks", &"1000,1000000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = python_eval(&format!(
        "import zarr, numpy as np; z = zarr.open_array({dst:?}); \
         print(z.chunks, bool((z[:] == np.arange(24).reshape(4, 6)).all()))"
    ));
    assert_eq!(got.trim(), "(4, 6) True");
    let dst = out.path().join("rank.zarr");
    assert_fails(
        &run(&[&"convert", &src, &dst, &"--chunks", &"2,2,2"]),
        &["--chunks", "2,2,2", "3 dimensions", "[4, 6]"],
    );
    assert!(!dst.exists());
}

#[test]
fn corrupt_zarr_chunks_are_named_by_key() {
    let dir = generate(&["zarr_corrupt_chunk", "zarr_short_chunk"]);
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        &"convert",
        &dir.path().join("corrupt_chunk.zarr"),
        &out.path().join("o.npy"),
    ]);
    assert_fails(&o, &["corrupt_chunk.zarr", "chunk c/0/1"]);
    let o = run(&[
        &"convert",
        &dir.path().join("short_chunk.zarr"),
        &out.path().join("o.npy"),
    ]);
    assert_fails(
        &o,
        &["short_chunk.zarr", "chunk c/1/0", "[2, 3]", "24 bytes"],
    );
    assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));
}

#[test]
fn zarr_groups_name_their_arrays() {
    let dir = generate(&["zarr_group"]);
    info_and_convert_fail(
        &dir.path().join("group.zarr"),
        "out.npy",
        &[
            "group.zarr is a Zarr group holding arrays a, b",
            "pass one of them",
        ],
    );
    info_and_convert_fail(
        &dir.path().join("group_v2.zarr"),
        "out.npy",
        &["is a Zarr group holding arrays x"],
    );
}

#[test]
fn structured_and_string_dtypes_say_what_they_are() {
    let dir = generate(&["npy_dtypes"]);
    info_and_convert_fail(
        &dir.path().join("structured.npy"),
        "out.zarr",
        &["structured dtype with fields a (<i4), b (<f8)"],
    );
    info_and_convert_fail(
        &dir.path().join("bytes3.npy"),
        "out.zarr",
        &["\"|S3\"", "string dtype", "not supported for arrays"],
    );
    info_and_convert_fail(
        &dir.path().join("unicode5.npy"),
        "out.zarr",
        &["\"<U5\"", "string dtype", "not supported for arrays"],
    );
}

#[test]
fn invalid_codec_configuration_reads_as_a_sentence() {
    let dir = generate(&["zarr_bad_level"]);
    info_and_convert_fail(
        &dir.path().join("bad_level.zarr"),
        "out.npy",
        &["codec's configuration is invalid", "between -131072 and 22"],
    );
}

#[test]
fn npy_stack_info_of_every_pickle_protocol_reads_as_dask_reads_it() {
    let dir = generate(&["stack_protocols"]);
    let out = tempfile::tempdir().unwrap();
    for protocol in 0..=5 {
        let src = dir.path().join(format!("stack_p{protocol}"));
        let dst = out.path().join(format!("p{protocol}.npy"));
        let o = run(&[&"convert", &src, &dst]);
        assert!(o.status.success(), "protocol {protocol}: {}", stderr(&o));
        let same = python_eval(&format!(
            "import numpy as np, dask.array as da\n\
             print(np.array_equal(np.load({dst:?}), da.from_npy_stack({src:?}).compute()))"
        ));
        assert_eq!(same.trim(), "True", "protocol {protocol}");
    }
}

#[test]
fn npy_stack_info_that_is_not_dasks_dict_is_a_clear_error() {
    let dir = generate(&["stack_bad_info"]);
    info_and_convert_fail(
        &dir.path().join("stack_list"),
        "out.npy",
        &["info", "not the dict with chunks, dtype and axis"],
    );
    info_and_convert_fail(
        &dir.path().join("stack_axis"),
        "out.npy",
        &["'axis' is -1, expected a non-negative int"],
    );
    info_and_convert_fail(
        &dir.path().join("stack_overflow"),
        "out.npy",
        &["add up to more than 2^64"],
    );
    info_and_convert_fail(
        &dir.path().join("stack_mismatch"),
        "out.npy",
        &["1.npy", "shape [4, 6] does not match [5, 6]"],
    );
}

/// Mounts a 1 MiB tmpfs at a new directory, or returns `None` when this process may
/// not mount (not root, or no mount namespace permission).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1M", "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?
            .status
            .success();
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).output();
    }
}

#[test]
fn a_full_disk_while_writing_arrays_is_exit_2() {
    let Some(disk) = SmallDisk::mount() else {
        // The mapping itself is tested without a mount in
        // storage::zarr::tests::a_full_disk_inside_zarrs_errors_is_disk_full.
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("noise.npy");
    // 4 MB of noise: incompressible, four times the disk.
    python_eval(&format!(
        "import numpy as np; np.save({src:?}, np.random.default_rng(1).random((512, 1024)))"
    ));
    for (name, extra) in [
        ("out.zarr", vec!["--chunks", "64,1024"]),
        ("out.npy", vec![]),
        ("stack", vec!["--to", "npy-stack", "--chunks", "64,1024"]),
    ] {
        let dst = disk.0.path().join(name);
        let mut args: Vec<std::ffi::OsString> = vec!["convert".into(), (&src).into(), dst.into()];
        args.extend(extra.iter().map(Into::into));
        let o = blockwise(args);
        assert_fails(&o, &["no space left on device"]);
        assert!(
            entries(disk.0.path()).is_empty(),
            "{name}: left behind {:?}",
            entries(disk.0.path())
        );
    }
}

#[test]
fn chunk_requests_that_cannot_be_planned_or_parsed_are_refused() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("v.npy");
    python_eval(&format!(
        "import numpy as np; np.save({src:?}, np.arange(100000, dtype='u1'))"
    ));
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("x.zarr");
    // 100,000 one-element chunks: a plan of 100,000 tasks does not fit 64 MiB.
    assert_fails(
        &run(&[
            &"convert",
            &src,
            &dst,
            &"--chunks",
            &"1",
            &"--memory-limit",
            &"64MiB",
        ]),
        &["--chunks", "100000 blocks", "choose larger chunks"],
    );
    for bad in ["0", "-3", "10,x", "99999999999999999999999"] {
        assert_fails(
            &run(&[&"convert", &src, &dst, &format!("--chunks={bad}")]),
            &["--chunks", "is not a positive integer"],
        );
    }
    assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));
}
