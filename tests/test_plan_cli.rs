//! The same plans run three ways: `blockwise convert`, `blockwise run PLAN`, and a
//! plain shell loop of `blockwise run-task` over `blockwise tasks`' waves; and a
//! `blockwise run` killed with SIGKILL part way, run again, resumes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_no_temps, assert_refused, assert_same, blockwise, blockwise_ok, python_eval};

/// `blockwise plan convert SRC DST FLAGS -o PLAN`; returns the plan's path and JSON.
fn plan(src: &Path, dst: &Path, flags: &[&str], plan: &Path) -> serde_json::Value {
    let mut args: Vec<String> = vec![
        "plan".into(),
        "convert".into(),
        src.display().to_string(),
        dst.display().to_string(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend(["-o".into(), plan.display().to_string()]);
    blockwise_ok(&args);
    serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap()
}

/// Runs every task of `plan` from a shell: one `blockwise run-task` process a task,
/// wave after wave, as a job array would.
fn shell_loop(plan: &Path) {
    let script = r#"
        set -e
        "$BW" tasks "$PLAN" | while read -r wave; do
            for id in $wave; do
                "$BW" run-task "$PLAN" "$id" > /dev/null
            done
        done
    "#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("BW", env!("CARGO_BIN_EXE_blockwise"))
        .env("PLAN", plan)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shell loop failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Converts `src` three ways into `dir` (names `convert.EXT`, `run.EXT`, `loop.EXT`)
/// and asserts the three outputs equal (compared by the reference libraries in
/// `mode`), and that no working directory or temporary is left.
fn three_ways(src: &Path, dir: &Path, ext: &str, flags: &[&str], mode: &str) -> PathBuf {
    let converted = dir.join(format!("convert.{ext}"));
    common::convert_ok(src, &converted, flags);

    let ran = dir.join(format!("run.{ext}"));
    let plan_run = dir.join("run-plan.json");
    let json = plan(src, &ran, flags, &plan_run);
    let tasks = json["tasks"].as_array().unwrap().len() as u64;
    let out = blockwise_ok([
        "run".as_ref(),
        plan_run.as_os_str(),
        "--stats".as_ref(),
        "--no-progress".as_ref(),
    ]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(stats["tasks"].as_u64(), Some(tasks), "{stats}");
    assert_eq!(stats["skipped_tasks"].as_u64(), Some(0), "{stats}");

    let looped = dir.join(format!("loop.{ext}"));
    let plan_loop = dir.join("loop-plan.json");
    let json = plan(src, &looped, flags, &plan_loop);
    shell_loop(&plan_loop);
    let workdir = PathBuf::from(json["workdir"].as_str().unwrap());
    assert!(!workdir.exists(), "{} left", workdir.display());

    assert_same(mode, &converted, &ran, &[]);
    assert_same(mode, &converted, &looped, &[]);
    assert_no_temps(dir);
    // Running a finished plan again does nothing and changes nothing.
    let out = blockwise_ok(["run".as_ref(), plan_run.as_os_str(), "--stats".as_ref()]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(stats["skipped_tasks"].as_u64(), Some(tasks), "{stats}");
    assert_same(mode, &converted, &ran, &[]);
    converted
}

#[test]
fn csv_to_parquet_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 20_000);
    three_ways(
        &csv,
        dir.path(),
        "parquet",
        &["--blocksize", "64KiB"],
        "frame",
    );
}

#[test]
fn parquet_to_csv_and_csv_to_ipc_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 20_000);
    let parquet = dir.path().join("t.parquet");
    common::convert_ok(&csv, &parquet, &["--row-group-size", "3000"]);
    let out = tempfile::tempdir().unwrap();
    three_ways(&parquet, out.path(), "csv", &[], "frame");
    let out = tempfile::tempdir().unwrap();
    three_ways(
        &csv,
        out.path(),
        "arrow",
        &["--blocksize", "64KiB"],
        "frame",
    );
}

#[test]
fn zarr_v2_to_v3_and_npy_stack_to_zarr_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.zarr");
    let stack = dir.path().join("stack");
    python_eval(&format!(
        "import numpy as np, zarr, dask.array as da\n\
         a = np.random.default_rng(3).standard_normal((300, 200))\n\
         z = zarr.create_array({v2:?}, shape=a.shape, chunks=(64, 64), dtype='f8', zarr_format=2)\n\
         z[...] = a\n\
         da.to_npy_stack({stack:?}, da.from_array(a, chunks=(70, 200)))"
    ));
    let out = tempfile::tempdir().unwrap();
    three_ways(&v2, out.path(), "zarr", &["--chunks", "100,50"], "array");
    let out = tempfile::tempdir().unwrap();
    three_ways(&stack, out.path(), "zarr", &["--chunks", "64,64"], "array");
}

#[test]
fn a_spilling_sort_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 60_000);
    let out = tempfile::tempdir().unwrap();
    let mut flags = vec!["--sort-by", "id4,v3", "--memory-limit", "2MiB"];
    flags.extend(common::RSS_THRESHOLDS_OFF);
    let sorted = three_ways(&csv, out.path(), "parquet", &flags, "frame");
    let check = python_eval(&format!(
        "import pyarrow.parquet as pq\n\
         t = pq.read_table({sorted:?})\n\
         k = list(zip(t.column('id4').to_pylist(), t.column('v3').to_pylist()))\n\
         print(len(k), k == sorted(k))"
    ));
    assert_eq!(check.trim(), "60000 True");
}

#[test]
fn a_staged_rechunk_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let tall = rechunk_source(dir.path(), 400);
    let out = tempfile::tempdir().unwrap();
    let mut flags = vec!["--chunks", "5,400", "--memory-limit", "160000"];
    flags.extend(common::RSS_THRESHOLDS_OFF);
    three_ways(&tall, out.path(), "zarr", &flags, "array");
}

/// An `n`×`n` float64 Zarr array in tall chunks (`n`, 5).
fn rechunk_source(dir: &Path, n: usize) -> PathBuf {
    let npy = dir.join("a.npy");
    python_eval(&format!(
        "import numpy as np; np.save({npy:?}, np.random.default_rng(1).standard_normal(({n}, {n})))"
    ));
    let tall = dir.join("tall.zarr");
    common::convert_ok(&npy, &tall, &["--chunks", &format!("{n},5")]);
    tall
}

/// Files under `dir`, recursively.
fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Plans `src` → `dst` with `flags`, starts `blockwise run` on one thread, kills it
/// with SIGKILL once `enough` files are published in its working directory, runs it
/// again to the end, and checks the output equals `expected` and some tasks were
/// skipped.
fn kill_and_resume(
    src: &Path,
    dst: &Path,
    flags: &[&str],
    enough: usize,
    expected: &Path,
    mode: &str,
) {
    // The runs get the plan's memory limit, so that they spill as it was sized for.
    let limit: Vec<&str> = flags
        .windows(2)
        .find(|w| w[0] == "--memory-limit")
        .map(|w| w.to_vec())
        .unwrap_or_default();
    let plan_path = dst.with_extension("plan.json");
    let json = plan(src, dst, flags, &plan_path);
    let workdir = PathBuf::from(json["workdir"].as_str().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .args([
            "run".as_ref(),
            plan_path.as_os_str(),
            "--threads".as_ref(),
            "1".as_ref(),
        ])
        .args(common::RSS_THRESHOLDS_OFF)
        .args(&limit)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while files(&workdir) < enough {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed; make the input larger"
        );
        assert!(
            Instant::now() < deadline,
            "no progress in {}",
            workdir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!dst.exists(), "a killed run published its output");
    assert!(workdir.exists(), "the finished work is kept");

    let mut args: Vec<&std::ffi::OsStr> =
        vec!["run".as_ref(), plan_path.as_os_str(), "--stats".as_ref()];
    args.extend(common::RSS_THRESHOLDS_OFF.iter().map(std::ffi::OsStr::new));
    args.extend(limit.iter().map(std::ffi::OsStr::new));
    let out = blockwise_ok(args);
    // With --stats, stderr is the one JSON line (what was reclaimed is in it).
    let stats: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(stats["skipped_tasks"].as_u64().unwrap() > 0, "{stats}");
    // Every task once: run now, or skipped as the killed run had done it.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    let all = plan["tasks"].as_array().unwrap().len() as u64;
    assert_eq!(
        stats["tasks"].as_u64().unwrap() + stats["skipped_tasks"].as_u64().unwrap(),
        all,
        "{stats}"
    );
    assert_same(mode, expected, dst, &[]);
    assert!(!workdir.exists(), "{} left", workdir.display());
    assert_no_temps(dst.parent().unwrap());
}

#[test]
fn a_killed_spilling_sort_resumes_to_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 300_000);
    let mut flags = vec![
        "--sort-by",
        "v3",
        "--memory-limit",
        "4MiB",
        "--blocksize",
        "256KiB",
    ];
    flags.extend(common::RSS_THRESHOLDS_OFF);
    let expected = dir.path().join("expected.parquet");
    common::convert_ok(&csv, &expected, &flags);
    kill_and_resume(
        &csv,
        &dir.path().join("sorted.parquet"),
        &flags,
        8,
        &expected,
        "frame",
    );
}

#[test]
fn a_killed_staged_rechunk_resumes_to_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let tall = rechunk_source(dir.path(), 1200);
    let mut flags = vec!["--chunks", "5,1200", "--memory-limit", "400000"];
    flags.extend(common::RSS_THRESHOLDS_OFF);
    let expected = dir.path().join("expected.zarr");
    common::convert_ok(&tall, &expected, &flags);
    kill_and_resume(
        &tall,
        &dir.path().join("wide.zarr"),
        &flags,
        40,
        &expected,
        "array",
    );
}

#[test]
fn plans_that_are_not_plans_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    for (text, fact) in [
        ("not json", "not a valid blockwise plan"),
        ("  [1, 2]", "a plan is a JSON object"),
        (r#"{"version": 1, "tasks": []}"#, "version 1"),
        (
            r#"{"version": 2, "workdir": "/tmp/.x.blockwise-plan-test", "datasets": [{"id": "../x", "path": "", "format": "x", "role": "input"}], "tasks": []}"#,
            "dataset id",
        ),
        (
            r#"{"version": 2, "workdir": "/tmp/.x.blockwise-plan-test", "datasets": [{"id": "x", "path": "", "format": "x", "role": "output"}], "tasks": [{"id": 0, "op": {"name": "launch_rockets", "version": 1}, "output": {"type": "whole", "dataset": "x"}, "memory_bytes": 0, "kind": "load"}]}"#,
            "unknown operation \"launch_rockets\"",
        ),
    ] {
        std::fs::write(&bad, text).unwrap();
        for cmd in [&["run"][..], &["tasks"], &["run-task"]] {
            let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|s| s.as_ref()).collect();
            args.push(bad.as_os_str());
            if cmd[0] == "run-task" {
                args.push("0".as_ref());
            }
            let out = blockwise(&args);
            if cmd[0] == "tasks" && fact.starts_with("unknown operation") {
                // `tasks` only orders the graph.
                assert!(out.status.success());
                continue;
            }
            assert_refused(&out, 2, &[fact]);
        }
    }
    let workdir = Path::new("/tmp/.x.blockwise-plan-test");
    assert!(!workdir.exists() || files(workdir) == 0);
    let out = blockwise(["run".as_ref(), dir.path().join("missing.json").as_os_str()]);
    assert_refused(&out, 2, &["missing.json", "no such file"]);
}
