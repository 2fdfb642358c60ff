//! Helpers shared by the integration tests: the binary, the fixtures, the reference
//! Python environment (numpy, pyarrow, zarr-python, dask) and its comparison script.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path, relative to `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// Runs `blockwise` with `args`.
pub fn blockwise<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .args(args)
        .env_remove("BLOCKWISE_MEMORY_LIMIT")
        .output()
        .expect("run blockwise")
}

/// Runs `blockwise` and asserts it succeeded.
pub fn blockwise_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = blockwise(args);
    assert!(
        out.status.success(),
        "blockwise failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The reference Python: `$BLOCKWISE_PYTHON`, else `.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BLOCKWISE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the interop tests need the reference Python environment: run scripts/test.sh, which creates .venv"
    );
    venv
}

/// Runs `tests/py/compare.py MODE A B EXTRA...` and asserts the data are equal.
pub fn assert_same(mode: &str, a: &Path, b: &Path, extra: &[&str]) {
    let out = Command::new(python())
        .arg(root().join("tests/py/compare.py"))
        .arg(mode)
        .arg(a)
        .arg(b)
        .args(extra)
        .output()
        .expect("run compare.py");
    assert!(
        out.status.success(),
        "{mode} {} vs {} differ:\n{}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Python snippet with the reference environment; returns its stdout.
pub fn python_eval(code: &str) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names of the entries of `dir`.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The arguments of `blockwise convert SRC DST EXTRA...`.
fn convert_args(src: &Path, dst: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["convert".into(), src.into(), dst.into()];
    args.extend(extra.iter().map(Into::into));
    args
}

/// Runs `blockwise convert SRC DST EXTRA...`, whatever its outcome.
pub fn convert(src: &Path, dst: &Path, extra: &[&str]) -> Output {
    blockwise(convert_args(src, dst, extra))
}

/// Runs `blockwise convert SRC DST EXTRA...` and asserts it succeeded.
pub fn convert_ok(src: &Path, dst: &Path, extra: &[&str]) -> Output {
    blockwise_ok(convert_args(src, dst, extra))
}

/// Flags that turn the RSS thresholds off: a test process's own few MB of RSS dwarf
/// the tiny limits that tests use to make operators spill, and these tests are about
/// reservations and plans.
pub const RSS_THRESHOLDS_OFF: [&str; 6] = [
    "--memory-spill",
    "off",
    "--memory-pause",
    "off",
    "--memory-terminate",
    "off",
];

/// Text that no message for a user may hold: a panic, an allocation abort, or Rust's
/// debug formatting (`Some(..)`, escaped quotes, ranges, serde's enum wording).
pub const LEAKS: [&str; 8] = [
    "panicked",
    "memory allocation",
    "Some(",
    "\\\"",
    "..=",
    "untagged enum",
    "Int(",
    "Seq(",
];

/// Asserts that `out` failed with exit `code`, that its message names every one of
/// `facts`, and that it holds none of [`LEAKS`]. Returns stderr.
pub fn assert_refused(out: &Output, code: i32, facts: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    for fact in facts {
        assert!(err.contains(fact), "{fact:?} missing from: {err}");
    }
    for leak in LEAKS {
        assert!(!err.contains(leak), "{leak:?} leaked into: {err}");
    }
    err
}

/// Asserts that no temporary output (a `.blockwise-` name) is left anywhere under
/// `dir`.
pub fn assert_no_temps(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".blockwise-"), "left behind: {name}");
        if entry.file_type().unwrap().is_dir() {
            assert_no_temps(&entry.path());
        }
    }
}

/// The `peak_rss_bytes` of the `--stats` line on stderr.
pub fn peak_rss(out: &Output) -> u64 {
    let err = stderr(out);
    err.split("\"peak_rss_bytes\":")
        .nth(1)
        .and_then(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no peak_rss_bytes in: {err}"))
}

/// Runs `fixtures/hostile/SCRIPT` with the reference Python, writing the named
/// `cases` into a fresh directory.
pub fn hostile_fixtures(script: &str, cases: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(python())
        .arg(root().join("fixtures/hostile").join(script))
        .arg(dir.path())
        .args(cases)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Caps this test process's address space at `bytes`, so that a reader's huge
/// allocation fails loudly (an abort) instead of succeeding lazily and passing
/// unnoticed. Best effort: without the cap, panics are still caught.
pub fn cap_address_space(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct, which outlives the call.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
}

/// Runs `plan` task by task in wave order through `run_task` against its directory
/// store, after a round trip through its JSON, as separate processes would: each
/// task with a fresh process cache, a pool of `limit` bytes and a spill store
/// compressed with `compression`. Every third task before the last wave runs again
/// once it finished and must be skipped; no task may leave memory reserved.
pub fn run_by_tasks(
    plan: &blockwise::plan::Plan,
    limit: u64,
    compression: blockwise::memory::SpillCompression,
) {
    use blockwise::convert::{directory_store, registry};
    use blockwise::exec::{run_task, CancelToken, Environment};
    use blockwise::memory::{DiskManager, MemoryPool, SpillStore};
    use blockwise::plan::{Plan, Resources};

    let plan = Plan::from_json(&plan.to_json().unwrap()).unwrap();
    let store = directory_store(&plan).unwrap();
    let spill_dir = tempfile::tempdir().unwrap();
    let pool = MemoryPool::new(limit);
    let spill = SpillStore::new(
        DiskManager::new(spill_dir.path(), None).unwrap(),
        compression,
    );
    let cancel = CancelToken::new();
    let waves = plan.waves().unwrap();
    let mut ran = 0;
    for (w, wave) in waves.iter().enumerate() {
        for &id in wave {
            // A fresh cache each task: as if every task ran in its own process.
            let resources = Resources::default();
            let env = Environment::new(&store, &pool, &spill, &resources);
            let report = run_task(&plan, registry(), id, &env, &cancel, &[]).unwrap();
            assert!(!report.skipped, "task {id} skipped on its first run");
            ran += 1;
            if w + 1 < waves.len() {
                // Once more through the operation itself, past the executor's skip:
                // an operation must be harmless when repeated (a retried task).
                let task = &plan.tasks[id as usize];
                let op = registry().prepare_task(task).unwrap();
                op.run(task, &env.task_env(&plan, &cancel, 1, &[])).unwrap();
            }
            if id % 3 == 0 && w + 1 < waves.len() {
                let again = run_task(&plan, registry(), id, &env, &cancel, &[]).unwrap();
                assert!(again.skipped, "a finished task runs again: {again:?}");
            }
            assert_eq!(pool.reserved(), 0, "task {id} left memory reserved");
        }
    }
    assert_eq!(ran, plan.tasks.len());
}

/// A CSV of `rows` rows like db-benchmark's (strings, integers, floats).
pub fn table_csv(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("t.csv");
    python_eval(&format!(
        "import numpy as np, pyarrow as pa, pyarrow.csv as c\n\
         r = np.random.default_rng(7)\n\
         n = {rows}\n\
         t = pa.table({{'id1': [f'id{{v:03d}}' for v in r.integers(1, 100, n)],\n\
                        'id4': r.integers(1, 1000, n), 'v1': r.integers(1, 6, n),\n\
                        'v3': np.round(r.random(n) * 100, 6)}})\n\
         c.write_csv(t, {path:?})"
    ));
    path
}
