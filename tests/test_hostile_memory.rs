//! The memory limit and the spill disk as a hostile user meets them: a spilling sort
//! under a small limit stays within it (peak RSS at most the limit plus the binary's
//! own, README "Memory") and gives pyarrow's result; a full spill disk is exit 2 with
//! the quota message and leaves nothing; a SIGKILLed spilling sort leaves a spill
//! directory that the next run reclaims and reports.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{entries, stderr};

/// What the binary itself holds beside the memory limit (code, libraries, the
/// allocator's floor, the thread stacks), as README.md's "Memory" section documents:
/// a job's peak RSS stays within `--memory-limit` plus this.
const BINARY_RSS_BYTES: u64 = 24 << 20;

/// What a sort's code adds to a one-row conversion's RSS (the sort, spill, zstd and
/// IPC paths paged in, the merge's writer thread).
const SORT_CODE_BYTES: u64 = 6 << 20;

/// The input: `fixtures/hostile/memory.py` at `megabytes` (unique shuffled ids).
fn big_csv(dir: &Path, megabytes: f64) -> PathBuf {
    let csv = dir.join("big.csv");
    let out = Command::new(common::python())
        .arg(common::fixture("hostile/memory.py"))
        .arg(&csv)
        .arg(megabytes.to_string())
        .output()
        .expect("run memory.py");
    assert!(out.status.success(), "{}", stderr(&out));
    csv
}

/// `blockwise ARGS` with extra environment variables.
fn run(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_blockwise"));
    cmd.args(args).env_remove("BLOCKWISE_MEMORY_LIMIT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run blockwise")
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn a_spilling_sort_stays_within_the_limit_and_sorts_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path(), 12.0);
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();

    // The binary's own RSS: a one-row conversion.
    let tiny = dir.path().join("tiny.csv");
    std::fs::write(&tiny, "a,b\n1,2\n").unwrap();
    let out = run(
        &[
            os("convert"),
            tiny.as_os_str(),
            dir.path().join("tiny.parquet").as_os_str(),
            os("--stats"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let baseline = common::peak_rss(&out);
    // The constant is the release binary's. A debug binary (what `cargo test` builds)
    // is several times larger: its own one-row peak stands in for the constant, plus
    // the code and thread stacks a sort uses that a one-row conversion does not.
    let binary = if cfg!(debug_assertions) {
        BINARY_RSS_BYTES.max(baseline + SORT_CODE_BYTES)
    } else {
        assert!(
            baseline + SORT_CODE_BYTES <= BINARY_RSS_BYTES,
            "the binary alone peaks at {baseline} bytes, near the documented {BINARY_RSS_BYTES}"
        );
        BINARY_RSS_BYTES
    };

    let limit: u64 = 16 << 20;
    let dst = dir.path().join("sorted.parquet");
    let out = run(
        &[
            os("convert"),
            csv.as_os_str(),
            dst.as_os_str(),
            os("--sort-by"),
            os("id"),
            os("--memory-limit"),
            os("16MiB"),
            os("--spill-dir"),
            spill.as_os_str(),
            os("--stats"),
            os("--no-progress"),
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !err.contains("\"spilled_bytes\":0,"),
        "the sort must spill at this limit: {err}"
    );
    let peak = common::peak_rss(&out);
    assert!(
        peak <= limit + binary,
        "peak RSS {peak} passes the limit {limit} plus the binary's {binary}"
    );
    assert!(entries(&spill).is_empty(), "{:?}", entries(&spill));

    // The reference: pyarrow reads the CSV and sorts it; every row, same order.
    let check = common::python_eval(&format!(
        "import pyarrow.csv as c, pyarrow.parquet as pq\n\
         a = c.read_csv({csv:?}).sort_by('id')\n\
         b = pq.read_table({dst:?})\n\
         assert a.num_rows == b.num_rows, (a.num_rows, b.num_rows)\n\
         for n in a.column_names:\n\
         \x20   assert a.column(n).to_pylist() == b.column(n).to_pylist(), n\n\
         print(a.num_rows)"
    ));
    assert!(check.trim().parse::<u64>().unwrap() > 100_000, "{check}");
}

/// A tmpfs of `size` mounted at `dir` for the test's life, when this process may
/// mount (root in a sandbox); unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Sorts `csv` at a limit that spills into `spill` with `env`; asserts exit 2 with
/// the quota message naming the spill directory, and nothing left.
fn assert_spill_quota(csv: &Path, spill: &Path, env: &[(&str, &str)]) {
    let dst = csv.with_file_name("never.parquet");
    let mut args = vec![
        os("convert"),
        csv.as_os_str(),
        dst.as_os_str(),
        os("--sort-by"),
        os("id"),
        os("--memory-limit"),
        os("8MiB"),
        os("--spill-dir"),
        spill.as_os_str(),
        os("--no-progress"),
    ];
    // About the disk, not RSS: the thresholds stay out of the way.
    args.extend(common::RSS_THRESHOLDS_OFF.iter().map(|s| os(s)));
    let out = run(&args, env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("spill quota: writing")
            && err.contains(&spill.display().to_string())
            && err.contains("would pass the quota of"),
        "{err}"
    );
    assert!(!err.contains("No space left"), "{err}");
    assert!(!dst.exists());
    assert!(entries(spill).is_empty(), "left: {:?}", entries(spill));
    let litter: Vec<String> = entries(csv.parent().unwrap())
        .into_iter()
        .filter(|n| n.contains(".blockwise-"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

#[test]
fn a_spill_quota_too_small_is_exit_2_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path(), 6.0);
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    assert_spill_quota(&csv, &spill, &[("BLOCKWISE_SPILL_QUOTA", "1000000")]);
}

#[test]
fn a_full_spill_disk_is_the_quota_error_not_no_space_left() {
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path(), 6.0);
    let spill = dir.path().join("small-disk");
    let Some(_disk) = Tmpfs::mount(&spill, "1M") else {
        eprintln!("skipped: cannot mount a tmpfs here (the quota test covers the mapping)");
        return;
    };
    // A quota far above the disk: the disk fills first, with ENOSPC.
    assert_spill_quota(&csv, &spill, &[("BLOCKWISE_SPILL_QUOTA", "1000000000")]);
}

/// Whether a file of some bytes (not the `.lock`) lies anywhere under `dir`: spill
/// files, or the sort's runs spilled from the store (`store/`).
fn has_data(dir: &Path) -> bool {
    entries(dir).iter().any(|f| {
        let p = dir.join(f);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => has_data(&p),
            Ok(m) => f != ".lock" && m.len() > 0,
            Err(_) => false,
        }
    })
}

#[test]
fn a_killed_sort_leaves_a_spill_directory_that_the_next_run_reclaims() {
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path(), 12.0);
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .arg("convert")
        .arg(&csv)
        .arg(out_dir.join("sorted.parquet"))
        .args(["--sort-by", "id", "--memory-limit", "8MiB", "--no-progress"])
        .arg("--spill-dir")
        .arg(&spill)
        .args(common::RSS_THRESHOLDS_OFF)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let own = format!("blockwise-spill-{pid}-");
    // Wait for a spill run on disk, then kill without warning.
    let started = Instant::now();
    let has_runs = || {
        entries(&spill)
            .iter()
            .filter(|n| n.starts_with(&own))
            .any(|d| has_data(&spill.join(d)))
    };
    while !has_runs() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no spill file appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before spilling"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = entries(&spill);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(&own));

    // The next run, anything that spills there: it reclaims and says so.
    let tiny = dir.path().join("tiny.csv");
    std::fs::write(&tiny, "a,b\n1,2\n").unwrap();
    let out = run(
        &[
            os("convert"),
            tiny.as_os_str(),
            dir.path().join("tiny.parquet").as_os_str(),
            os("--spill-dir"),
            spill.as_os_str(),
        ],
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let expected_start = "blockwise: reclaimed ";
    let line = err
        .lines()
        .find(|l| l.starts_with(expected_start) && l.contains("stale temporaries"))
        .unwrap_or_else(|| panic!("no reclaim line in: {err}"));
    let bytes: u64 = line[expected_start.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in: {line}"));
    assert!(bytes > 0, "{line}");
    assert!(
        line.ends_with(&format!(
            " bytes of stale temporaries left by process(es) {pid} in {}",
            spill.display()
        )),
        "{line}"
    );
    assert!(entries(&spill).is_empty(), "{:?}", entries(&spill));
}
