//! Signals during a conversion: SIGTERM and SIGHUP stop it like Ctrl-C (exit 143 and
//! 129), leaving no output, no temporary and no spill file; a second signal stops it
//! at once, cleaned up; after a SIGKILL, the next run into the same directory
//! reclaims what the killed one left and says how many bytes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{entries, stderr};

/// A conversion in progress, with its own output and spill directories.
struct Run {
    _dir: tempfile::TempDir,
    src: PathBuf,
    out_dir: PathBuf,
    spill: PathBuf,
    child: Child,
}

/// Starts converting a generated CSV (about 45 MB) with `extra` flags and returns
/// once its temporary output exists, so that a signal lands mid-write.
fn start(extra: &[&str]) -> Run {
    start_with(extra, None)
}

/// [`start`], with `old` written at the destination first when given.
fn start_with(extra: &[&str], old: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        writeln!(f, "a,b,c,d").unwrap();
        for i in 0..1_500_000u64 {
            writeln!(f, "{i},{},text number {i},{}.25", i * 7, i % 1000).unwrap();
        }
    }
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    if let Some(old) = old {
        std::fs::write(out_dir.join("big.parquet"), old).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .arg("convert")
        .arg(&src)
        .arg(out_dir.join("big.parquet"))
        .args(["--threads", "1", "--blocksize", "1MiB", "--no-progress"])
        .args(extra)
        .arg("--spill-dir")
        .arg(&spill)
        .env_remove("BLOCKWISE_MEMORY_LIMIT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !entries(&out_dir)
        .iter()
        .any(|n| n.contains(".blockwise-tmp-"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no temporary output appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "conversion finished before the signal; make the input larger"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Run {
        _dir: dir,
        src,
        out_dir,
        spill,
        child,
    }
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the run and checks its exit code, its message and that neither the
/// output directory nor the spill directory holds anything.
fn stopped_cleanly(run: Run, code: i32, message: &str) -> Output {
    let Run {
        _dir,
        out_dir,
        spill,
        child,
        ..
    } = run;
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(message), "{message:?} not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        entries(&out_dir).is_empty(),
        "left behind: {:?}",
        entries(&out_dir)
    );
    assert!(
        entries(&spill).is_empty(),
        "spill left behind: {:?}",
        entries(&spill)
    );
    out
}

#[test]
fn sigterm_stops_a_conversion_with_143_and_leaves_nothing() {
    let run = start(&[]);
    send(&run.child, "TERM");
    stopped_cleanly(run, 143, "interrupted by SIGTERM");
}

#[test]
fn sighup_stops_a_conversion_with_129_and_leaves_nothing() {
    let run = start(&[]);
    send(&run.child, "HUP");
    stopped_cleanly(run, 129, "interrupted by SIGHUP");
}

#[test]
fn sigterm_during_a_spilling_sort_leaves_no_spill_files() {
    let mut flags = vec!["--sort-by", "c", "--memory-limit", "32MiB"];
    flags.extend(common::RSS_THRESHOLDS_OFF);
    let mut run = start(&flags);
    // Wait for the first spilled run, so that the signal finds spill files to remove.
    let started = Instant::now();
    while dir_bytes(&run.spill) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing spilled"
        );
        assert!(run.child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(5));
    }
    send(&run.child, "TERM");
    stopped_cleanly(run, 143, "");
}

#[test]
fn a_second_signal_stops_at_once_and_cleans_up() {
    let run = start(&[]);
    send(&run.child, "TERM");
    send(&run.child, "TERM");
    // Either the first signal's orderly stop or the second's immediate one: both
    // exit 143 and remove everything.
    stopped_cleanly(run, 143, "");
}

#[test]
fn sigkill_leftovers_are_reclaimed_by_the_next_run() {
    // Said in a line of its own, or with `--stats` counted in the one JSON line.
    for stats in [false, true] {
        let mut run = start(&[]);
        // Some bytes written first, so that there is something to reclaim.
        let started = Instant::now();
        while dir_bytes(&run.out_dir) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "nothing written"
            );
            assert!(run.child.try_wait().unwrap().is_none(), "finished too soon");
            std::thread::sleep(Duration::from_millis(5));
        }
        send(&run.child, "KILL");
        run.child.wait().unwrap();
        let left = entries(&run.out_dir);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0].starts_with(".big.parquet.blockwise-tmp-"),
            "{left:?}"
        );
        let left_bytes = dir_bytes(&run.out_dir);
        assert!(left_bytes > 0);

        // The next run into the same directory, of another output.
        let small = run.src.with_file_name("small.csv");
        std::fs::write(&small, "a,b\n1,2\n").unwrap();
        // A spill directory of its own: other tests' killed processes leave theirs
        // in the shared temporary directory.
        let spill = tempfile::tempdir().unwrap();
        let spill = spill.path().to_str().unwrap();
        let flags: &[&str] = if stats {
            &["--stats", "--spill-dir", spill]
        } else {
            &["--spill-dir", spill]
        };
        let out = common::convert_ok(&small, &run.out_dir.join("small.parquet"), flags);
        let err = stderr(&out);
        if stats {
            let json: serde_json::Value = serde_json::from_str(&err)
                .unwrap_or_else(|e| panic!("not one JSON line ({e}): {err}"));
            assert_eq!(json["reclaimed_bytes"].as_u64(), Some(left_bytes), "{err}");
        } else {
            assert!(
                err.contains(&format!("reclaimed {left_bytes} bytes")),
                "{left_bytes} bytes not reported: {err}"
            );
            assert_eq!(err.lines().filter(|l| l.contains("reclaimed")).count(), 1);
        }
        assert_eq!(entries(&run.out_dir), vec!["small.parquet"]);
    }
}

#[test]
fn temporaries_of_a_live_process_are_not_reclaimed() {
    let run = start(&[]);
    let theirs = entries(&run.out_dir);
    let small = run.src.with_file_name("small.csv");
    std::fs::write(&small, "a,b\n1,2\n").unwrap();
    let out = common::convert_ok(&small, &run.out_dir.join("small.parquet"), &[]);
    assert!(!stderr(&out).contains("reclaimed"), "{}", stderr(&out));
    // The running conversion's temporary is still there.
    assert!(entries(&run.out_dir).contains(&theirs[0]));
    send(&run.child, "INT");
    std::fs::remove_file(run.out_dir.join("small.parquet")).unwrap();
    stopped_cleanly(run, 130, "interrupted by SIGINT");
}

#[test]
fn sigterm_during_an_overwrite_keeps_the_old_output() {
    let run = start_with(&["--overwrite"], Some("old output"));
    send(&run.child, "TERM");
    let out_dir = run.out_dir.clone();
    let out = run.child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert_eq!(entries(&out_dir), vec!["big.parquet"]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("big.parquet")).unwrap(),
        "old output"
    );
    drop(run._dir);
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
