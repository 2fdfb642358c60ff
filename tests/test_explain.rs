//! `blockwise explain`: the stage list, the projected memory and the spill column of
//! a sort, a staged rechunk and a conversion, checked against the plan `blockwise
//! plan` writes for the same command (counted here independently).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{assert_refused, blockwise, blockwise_ok, python_eval};

/// The plan of `convert src dst flags` as JSON, and `explain`'s summary of the same
/// command (`--json`), and of the plan file (`explain PLAN.json`), which must agree.
fn plan_and_summary(
    src: &Path,
    dst: &Path,
    flags: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let dir = dst.parent().unwrap();
    let plan_path = dir.join("explained-plan.json");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "plan".as_ref(),
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    args.extend(["-o".as_ref(), plan_path.as_os_str()]);
    blockwise_ok(&args);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();

    let mut args: Vec<&std::ffi::OsStr> = vec![
        "explain".as_ref(),
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    args.push("--json".as_ref());
    let out = blockwise_ok(&args);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The plan file explained with the same sizing says the same.
    let sizing: Vec<&str> = flags
        .windows(2)
        .filter(|w| w[0] == "--memory-limit" || w[0] == "--threads")
        .flatten()
        .copied()
        .collect();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["explain".as_ref(), plan_path.as_os_str(), "--json".as_ref()];
    args.extend(sizing.iter().map(std::ffi::OsStr::new));
    let out = blockwise_ok(&args);
    let from_file: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_file["stages"], summary["stages"]);
    assert_eq!(from_file["critical_path"], summary["critical_path"]);
    (plan, summary)
}

/// Stages as the test counts them from the plan: (operation, output dataset) ->
/// the tasks' projected bytes.
fn stages_of(plan: &serde_json::Value) -> BTreeMap<(String, String), Vec<u64>> {
    let mut stages: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for t in plan["tasks"].as_array().unwrap() {
        let key = (
            t["op"]["name"].as_str().unwrap().to_string(),
            t["output"]["dataset"].as_str().unwrap().to_string(),
        );
        stages
            .entry(key)
            .or_default()
            .push(t["memory_bytes"].as_u64().unwrap());
    }
    stages
}

/// Checks every stage of `summary` against the plan: its task count, its largest
/// task, and that what it projects at once is its `at_once` largest tasks, within
/// the threads. Returns the stages' operations in order.
fn check_stages(
    plan: &serde_json::Value,
    summary: &serde_json::Value,
    threads: u64,
) -> Vec<String> {
    let expected = stages_of(plan);
    let stages = summary["stages"].as_array().unwrap();
    assert_eq!(stages.len(), expected.len(), "{summary:#}");
    let total: u64 = stages.iter().map(|s| s["tasks"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, plan["tasks"].as_array().unwrap().len());
    for s in stages {
        let key = (
            s["op"].as_str().unwrap().to_string(),
            s["output"].as_str().unwrap().to_string(),
        );
        let mut memory = expected[&key].clone();
        assert_eq!(
            s["tasks"].as_u64().unwrap() as usize,
            memory.len(),
            "{key:?}"
        );
        memory.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(s["task_bytes"].as_u64(), Some(memory[0]), "{key:?}");
        let at_once = s["at_once"].as_u64().unwrap();
        assert!((1..=threads).contains(&at_once), "{key:?}: {at_once}");
        let top: u64 = memory.iter().take(at_once as usize).sum();
        assert_eq!(s["projected_bytes"].as_u64(), Some(top), "{key:?}");
    }
    stages
        .iter()
        .map(|s| s["op"].as_str().unwrap().to_string())
        .collect()
}

fn spills(summary: &serde_json::Value) -> BTreeMap<String, bool> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["op"].as_str().unwrap().to_string(),
                s["spills"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_spilling_sort_is_explained_stage_by_stage() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::table_csv(dir.path(), 30_000);
    let dst = dir.path().join("sorted.parquet");
    let flags = [
        "--sort-by",
        "id4",
        "--memory-limit",
        "2MiB",
        "--threads",
        "2",
    ];
    let (plan, summary) = plan_and_summary(&src, &dst, &flags);
    let ops = check_stages(&plan, &summary, 2);
    assert_eq!(
        &ops[..3],
        ["sort_run", "cut_ranges", "merge_range"],
        "{summary:#}"
    );
    assert_eq!(ops.last().map(String::as_str), Some("publish_output"));
    // The sort's own operations spill; nothing else does.
    for (op, spill) in spills(&summary) {
        assert_eq!(spill, op == "sort_run" || op == "merge_range", "{op}");
    }
    assert_eq!(summary["memory_limit_bytes"].as_u64(), Some(2 << 20));
    assert_eq!(summary["task_limit_bytes"].as_u64(), Some(1 << 20));
    for s in summary["stages"].as_array().unwrap() {
        assert!(
            s["task_bytes"].as_u64().unwrap() <= 1 << 20,
            "a task past half the limit: {s}"
        );
    }
    // Runs, fences and ranges wait in the store; the staged output is on disk.
    let place: BTreeMap<&str, &str> = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["output"].as_str().unwrap(),
                s["output_place"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(place["runs"], "store");
    assert_eq!(place["ranges"], "store");
    assert_eq!(place["published"], "disk");
    let read = &summary["reads"][0];
    assert_eq!(read["format"], "csv");
    assert_eq!(
        read["columns"],
        serde_json::json!(["id1", "id4", "v1", "v3"])
    );
    assert!(read["partitions"].as_u64().unwrap() > 1, "{read}");
    assert_eq!(summary["writes"][0]["path"], dst.to_str().unwrap());
    // The longest chain: at least a run, the cut, a merge and the publication.
    assert!(summary["critical_path"].as_u64().unwrap() >= 4);
    // Nothing was written but the plan.
    assert!(!dst.exists());

    // The table says the same.
    let out = blockwise_ok([
        "explain".as_ref(),
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--sort-by".as_ref(),
        "id4".as_ref(),
        "--memory-limit".as_ref(),
        "2MiB".as_ref(),
        "--threads".as_ref(),
        "2".as_ref(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |op: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(op))
            .unwrap_or_else(|| panic!("no {op} row in:\n{text}"))
            .to_string()
    };
    assert!(row("sort_run").trim_end().ends_with("yes"), "{text}");
    assert!(row("merge_range").trim_end().ends_with("yes"), "{text}");
    assert!(
        row("encode_table_part").trim_end().ends_with("no"),
        "{text}"
    );
    assert!(text.contains("memory limit of 2.0 MiB"), "{text}");
}

#[test]
fn a_staged_rechunk_is_explained_with_its_stage_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    python_eval(&format!(
        "import numpy as np; np.save({npy:?}, np.random.default_rng(1).standard_normal((400, 400)))"
    ));
    let tall = dir.path().join("tall.zarr");
    common::convert_ok(&npy, &tall, &["--chunks", "400,5"]);
    let dst = dir.path().join("wide.zarr");
    let flags = [
        "--chunks",
        "5,400",
        "--memory-limit",
        "160000",
        "--threads",
        "2",
    ];
    let (plan, summary) = plan_and_summary(&tall, &dst, &flags);
    let ops = check_stages(&plan, &summary, 2);
    // Through one intermediate array: tall -> stage -> wide.
    let copies: Vec<&serde_json::Value> = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] == "copy_block")
        .collect();
    assert!(copies.len() >= 2, "{ops:?}");
    assert_eq!(copies[0]["inputs"], serde_json::json!(["src"]));
    assert_eq!(copies[0]["output_place"], "disk");
    assert_eq!(copies.last().unwrap()["output"], "dst");
    assert!(spills(&summary).values().all(|s| !s), "{summary:#}");
    let read = &summary["reads"][0];
    assert_eq!(read["chunks"].as_u64(), Some(80), "400x400 in 400x5 chunks");
    assert_eq!(read["shape"], serde_json::json!([400, 400]));
    // Created, copied in, copied out, finished, published.
    assert_eq!(
        summary["critical_path"].as_u64(),
        Some(copies.len() as u64 + 3)
    );
}

#[test]
fn a_conversion_is_explained_and_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::table_csv(dir.path(), 5_000);
    let dst = dir.path().join("t.parquet");
    let flags = [
        "--blocksize",
        "16KiB",
        "--threads",
        "2",
        "--memory-limit",
        "64MiB",
    ];
    let (plan, summary) = plan_and_summary(&src, &dst, &flags);
    let ops = check_stages(&plan, &summary, 2);
    assert_eq!(ops[0], "read_table_partition", "{ops:?}");
    assert!(spills(&summary).values().all(|s| !s));
    let read = &summary["reads"][0];
    let partitions = read["partitions"].as_u64().unwrap();
    assert_eq!(
        summary["stages"][0]["tasks"].as_u64(),
        Some(partitions),
        "a read task a partition"
    );

    // Graphviz: one node a stage and an input, edges between stages.
    let out = blockwise_ok([
        "explain".as_ref(),
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--blocksize".as_ref(),
        "16KiB".as_ref(),
        "--dot".as_ref(),
    ]);
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph plan {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    let nodes = dot
        .lines()
        .filter(|l| l.trim_start().starts_with('s') && l.contains("[shape=box"))
        .count();
    assert_eq!(nodes, ops.len(), "{dot}");
    assert!(dot.contains("in0 -> s0;"), "{dot}");
    assert!(dot.contains("s0 -> s1"), "{dot}");
}

#[test]
fn what_is_not_a_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = blockwise(["explain".as_ref(), missing.as_os_str()]);
    assert_refused(&out, 2, &["missing.json"]);

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"tasks\": 3}").unwrap();
    let out = blockwise(["explain".as_ref(), junk.as_os_str()]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("junk.json"),
        "{}",
        common::stderr(&out)
    );

    // A plan `run` would refuse: an operation version this blockwise does not have.
    let src = common::table_csv(dir.path(), 100);
    let plan_path = dir.path().join("p.json");
    let dst = dir.path().join("p.parquet");
    blockwise_ok([
        "plan".as_ref(),
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "-o".as_ref(),
        plan_path.as_os_str(),
    ]);
    let mut plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    plan["tasks"][0]["op"]["version"] = 99.into();
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, plan.to_string()).unwrap();
    let out = blockwise(["explain".as_ref(), edited.as_os_str()]);
    assert_refused(&out, 2, &["version 99"]);
    // Sizes no task can have are said, not summed past u64.
    plan["tasks"][0]["op"]["version"] = 1.into();
    for task in plan["tasks"].as_array_mut().unwrap() {
        task["memory_bytes"] = u64::MAX.into();
    }
    std::fs::write(&edited, plan.to_string()).unwrap();
    let out = blockwise_ok(["explain".as_ref(), edited.as_os_str(), "--json".as_ref()]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["projected_bytes"].as_u64() == Some(u64::MAX)));

    // One way of printing at a time.
    let out = blockwise([
        "explain".as_ref(),
        junk.as_os_str(),
        "--dot".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    // Neither a plan nor a command.
    let out = blockwise(["explain"]);
    assert_eq!(out.status.code(), Some(2));
}
