//! Hostile destinations: a DST that is, holds or sits inside the source; a directory
//! that is not a dataset; FIFOs, devices, sockets and symbolic links; a DST that
//! appears during the run; two conversions into one DST; a parent that is a file; a
//! read-only directory; a trailing slash on a one-file output.
//!
//! Every refusal is exit 2 with the path and the reason, before anything is written:
//! no panic, no temporary left, the existing DST and the source unchanged.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{convert, entries, stderr};

/// A small numeric CSV at `dir/name`.
fn small_csv(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "a,b\n1,2\n3,4\n5,6\n").unwrap();
    path
}

/// Asserts a clean refusal: exit 2, every fact in the message, no panic, and no
/// temporary output anywhere in `dir` (recursively).
fn refused(out: &Output, facts: &[&str], dir: &Path) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for fact in facts {
        assert!(err.contains(fact), "{fact:?} not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    common::assert_no_temps(dir);
}

// 1. The destination is, holds or sits inside the source.

#[test]
fn dst_holding_the_source_is_refused_even_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let src = small_csv(&d, "src.csv");
    std::fs::write(d.join("other.txt"), "mine").unwrap();
    let out = convert(&src, &d, &["--to", "parquet", "--overwrite"]);
    refused(&out, &["contains the input", "src.csv"], dir.path());
    assert_eq!(entries(&d), vec!["other.txt", "src.csv"]);
    assert_eq!(
        std::fs::read_to_string(d.join("other.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn zarr_dst_holding_the_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let z = dir.path().join("d.zarr");
    common::convert_ok(&src, &z, &[]);
    let inner = small_csv(&z, "src.csv");
    let out = convert(&inner, &z, &["--overwrite"]);
    refused(&out, &["contains the input"], dir.path());
    assert!(inner.exists() && z.join("zarr.json").exists());
}

#[test]
fn dst_that_is_the_source_directly_or_through_a_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let out = convert(&src, &src, &["--overwrite"]);
    refused(&out, &["is the input"], dir.path());
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&src, &link).unwrap();
    let out = convert(&src, &link, &["--overwrite"]);
    refused(&out, &["is the input"], dir.path());
    assert_eq!(
        std::fs::read_to_string(&src).unwrap(),
        "a,b\n1,2\n3,4\n5,6\n"
    );
}

#[test]
fn dst_inside_a_source_directory_is_refused_through_links_too() {
    let dir = tempfile::tempdir().unwrap();
    let csv = small_csv(dir.path(), "a.csv");
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    common::convert_ok(&csv, &parts.join("part-0.parquet"), &[]);
    let out = convert(&parts, &parts.join("out.csv"), &[]);
    refused(&out, &["is inside the input"], dir.path());
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&parts, &alias).unwrap();
    let out = convert(&parts, &alias.join("out.csv"), &[]);
    refused(&out, &["is inside the input"], dir.path());
    assert_eq!(entries(&parts), vec!["part-0.parquet"]);
}

// 2. --overwrite replaces only a file or a dataset blockwise writes.

#[test]
fn directory_that_is_not_a_dataset_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep me").unwrap();
    for extra in [
        &["--to", "parquet"][..],
        &["--to", "parquet", "--overwrite"],
    ] {
        let out = convert(&src, &notes, extra);
        refused(
            &out,
            &["a directory that is not a Zarr array", "notes"],
            dir.path(),
        );
        assert!(!stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    }
    // A Parquet directory with something else in it, and a Zarr group.
    std::fs::write(notes.join("part-0.parquet"), "x").unwrap();
    let out = convert(&src, &notes, &["--to", "parquet", "--overwrite"]);
    refused(&out, &["a directory that is not a Zarr array"], dir.path());
    let group = dir.path().join("g.zarr");
    std::fs::create_dir(&group).unwrap();
    std::fs::write(
        group.join("zarr.json"),
        r#"{"zarr_format":3,"node_type":"group"}"#,
    )
    .unwrap();
    let out = convert(&src, &group, &["--overwrite"]);
    refused(&out, &["a directory that is not a Zarr array"], dir.path());
    assert_eq!(entries(&notes), vec!["part-0.parquet", "todo.txt"]);
    assert_eq!(entries(&group), vec!["zarr.json"]);
}

#[test]
fn datasets_blockwise_writes_are_replaced_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    // A Zarr array, replaced by a new one.
    let z = dir.path().join("out.zarr");
    common::convert_ok(&src, &z, &[]);
    let out = convert(&src, &z, &[]);
    refused(&out, &["already exists; pass --overwrite"], dir.path());
    common::convert_ok(&src, &z, &["--overwrite"]);
    assert!(z.join("zarr.json").is_file());
    // A Parquet directory (parts and _SUCCESS), replaced by a Parquet file.
    let pq = dir.path().join("pq");
    std::fs::create_dir(&pq).unwrap();
    common::convert_ok(&src, &pq.join("part-0.parquet"), &[]);
    std::fs::write(pq.join("_SUCCESS"), "").unwrap();
    common::convert_ok(&src, &pq, &["--to", "parquet", "--overwrite"]);
    assert!(pq.is_file());
    common::assert_no_temps(dir.path());
}

// 3. Non-regular destinations: never replaced, never --overwrite advice.

fn never_replaced(dst: &Path, what: &str, dir: &Path, src: &Path) {
    for extra in [&["--to", "csv"][..], &["--to", "csv", "--overwrite"]] {
        let out = convert(src, dst, extra);
        refused(&out, &[what, &dst.display().to_string()], dir);
        assert!(!stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    }
}

#[test]
fn fifo_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    never_replaced(&fifo, "a FIFO", dir.path(), &src);
    use std::os::unix::fs::FileTypeExt;
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
}

#[test]
fn symlink_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let target = dir.path().join("target.csv");
    std::fs::write(&target, "precious").unwrap();
    let link = dir.path().join("out.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    never_replaced(&link, "a symbolic link", dir.path(), &src);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
}

#[test]
fn socket_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    never_replaced(&sock, "a socket", dir.path(), &src);
}

#[test]
fn device_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let null = Path::new("/dev/null");
    for extra in [&["--to", "csv"][..], &["--to", "csv", "--overwrite"]] {
        let out = convert(&src, null, extra);
        refused(&out, &["a character device", "/dev/null"], dir.path());
        assert!(!stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(null.metadata().unwrap().file_type().is_char_device());
}

// 4. Publishing without clobbering.

/// A CSV large enough that a debug build converts it for a few seconds.
fn big_csv(dir: &Path, rows: u64) -> PathBuf {
    let src = dir.join("big.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
    writeln!(f, "a,b,c,d").unwrap();
    for i in 0..rows {
        writeln!(f, "{i},{},text number {i},{}.25", i * 7, i % 1000).unwrap();
    }
    src
}

fn spawn_convert(src: &Path, dst: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .arg("convert")
        .arg(src)
        .arg(dst)
        .args(["--threads", "1", "--blocksize", "1MiB", "--no-progress"])
        .args(extra)
        .env_remove("BLOCKWISE_MEMORY_LIMIT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `dir` holds an entry whose name contains `part`.
fn wait_for_entry(dir: &Path, part: &str, child: &mut Child) {
    let started = Instant::now();
    while !entries(dir).iter().any(|n| n.contains(part)) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {part} appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "conversion finished too soon; make the input larger"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn file_created_at_dst_during_the_run_survives() {
    let dir = tempfile::tempdir().unwrap();
    let src = big_csv(dir.path(), 1_000_000);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dst = out_dir.join("big.parquet");
    let mut child = spawn_convert(&src, &dst, &[]);
    wait_for_entry(&out_dir, ".blockwise-tmp-", &mut child);
    std::fs::write(&dst, "theirs").unwrap();
    let out = child.wait_with_output().unwrap();
    refused(&out, &["already exists", "big.parquet"], &out_dir);
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "theirs");
    assert_eq!(entries(&out_dir), vec!["big.parquet"]);
}

#[test]
fn fifo_created_at_dst_during_an_overwrite_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = big_csv(dir.path(), 1_000_000);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dst = out_dir.join("big.csv");
    let mut child = spawn_convert(&src, &dst, &["--overwrite"]);
    wait_for_entry(&out_dir, ".blockwise-tmp-", &mut child);
    assert!(Command::new("mkfifo").arg(&dst).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    refused(&out, &["a FIFO"], &out_dir);
    assert!(!stderr(&out).contains("--overwrite"));
    assert_eq!(entries(&out_dir), vec!["big.csv"]);
}

#[test]
fn two_conversions_into_one_dst_exactly_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let src = big_csv(dir.path(), 300_000);
    for (name, to) in [("out.parquet", "parquet"), ("out.zarr", "zarr")] {
        let out_dir = dir.path().join(format!("into-{to}"));
        std::fs::create_dir(&out_dir).unwrap();
        let dst = out_dir.join(name);
        // Zarr takes the numeric columns only.
        let extra: &[&str] = if to == "zarr" {
            &["--columns", "a,b,d"]
        } else {
            &[]
        };
        let first = spawn_convert(&src, &dst, extra);
        let second = spawn_convert(&src, &dst, extra);
        let outs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
        let won = codes.iter().filter(|c| **c == Some(0)).count();
        let lost: Vec<_> = outs.iter().filter(|o| o.status.code() != Some(0)).collect();
        assert_eq!(
            won,
            1,
            "{codes:?}: {}",
            outs.iter().map(stderr).collect::<String>()
        );
        refused(lost[0], &["already exists"], &out_dir);
        assert_eq!(entries(&out_dir), vec![name.to_string()]);
        // The winner's output is whole.
        let info = common::blockwise_ok(["info".as_ref(), dst.as_os_str()]);
        assert!(String::from_utf8_lossy(&info.stdout).contains("300000"));
    }
}

// 5. Parents that are files, read-only directories, trailing slashes.

#[test]
fn parent_that_is_a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "x").unwrap();
    for dst in [
        file.join("out.parquet"),
        file.join("sub").join("out.parquet"),
    ] {
        let out = convert(&src, &dst, &[]);
        refused(&out, &["f.txt: is not a directory"], dir.path());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn read_only_destination_directory_is_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Readable by the unprivileged user the test switches to when run as root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = small_csv(dir.path(), "a.csv");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let dst = ro.join("out.parquet");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        // Root writes anywhere: run as nobody, for whom 0555 means read-only.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_blockwise"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_blockwise"))
    };
    let out = cmd
        .arg("convert")
        .arg(&src)
        .arg(&dst)
        .env_remove("BLOCKWISE_MEMORY_LIMIT")
        .output()
        .unwrap();
    refused(&out, &["permission denied", "ro"], dir.path());
    assert!(entries(&ro).is_empty());
}

#[test]
fn trailing_slash_on_a_file_destination_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_csv(dir.path(), "a.csv");
    for (dst, extra) in [("out.csv/", &[][..]), ("out/", &["--to", "ipc"][..])] {
        let dst = format!("{}/{dst}", dir.path().display());
        let out = convert(&src, Path::new(&dst), extra);
        refused(&out, &[&dst, "trailing slash", "single file"], dir.path());
    }
    assert_eq!(entries(dir.path()), vec!["a.csv"]);
    // A directory output may be named with one; Parquet then is a directory of
    // parts, as `--to parquet-dir` writes.
    let dst = format!("{}/out.zarr/", dir.path().display());
    common::convert_ok(&src, Path::new(&dst), &[]);
    assert!(dir.path().join("out.zarr/zarr.json").is_file());
    let dst = format!("{}/out.parquet/", dir.path().display());
    common::convert_ok(&src, Path::new(&dst), &[]);
    assert!(dir.path().join("out.parquet/part.0.parquet").is_file());
}
