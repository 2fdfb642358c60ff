//! Plans as a careless or hostile user hands them over: edited by hand, made in one
//! directory and run in another, naming byte ranges or shapes the files do not have,
//! a working directory that cannot be one. Each must be refused with exit 2 and a
//! message naming what and where, without a panic, and without touching anything
//! outside the plan's working directory and DST.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_no_temps, assert_refused, blockwise, blockwise_ok, fixture};

/// `blockwise plan convert SRC DST FLAGS -o PLAN` run in `cwd`; returns the JSON.
fn plan_in(cwd: &Path, src: &str, dst: &str, flags: &[&str], plan: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .current_dir(cwd)
        .args(["plan", "convert", src, dst])
        .args(flags)
        .arg("-o")
        .arg(plan)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    read(plan)
}

fn read(plan: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap()
}

fn write(plan: &Path, json: &serde_json::Value) {
    std::fs::write(plan, serde_json::to_string_pretty(json).unwrap()).unwrap();
}

/// The dataset `id` of a plan's JSON.
fn dataset<'a>(plan: &'a mut serde_json::Value, id: &str) -> &'a mut serde_json::Value {
    plan["datasets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["id"] == id)
        .unwrap()
}

/// A copy of `fixtures/csv/basic.csv` in `dir`, and the plan of its conversion to
/// `dir/out.parquet` at `dir/plan.json`.
fn csv_plan(dir: &Path) -> (PathBuf, PathBuf, serde_json::Value) {
    let src = dir.join("basic.csv");
    std::fs::copy(fixture("csv/basic.csv"), &src).unwrap();
    let plan = dir.join("plan.json");
    let json = plan_in(
        dir,
        src.to_str().unwrap(),
        dir.join("out.parquet").to_str().unwrap(),
        &[],
        &plan,
    );
    (src, plan, json)
}

/// Asserts that the only blockwise name left in `dir` is the plan's working directory
/// (made with the plan, kept until it finishes), and that it is empty.
fn assert_only_the_plans_workdir(dir: &Path, plan: &serde_json::Value) {
    let workdir = PathBuf::from(plan["workdir"].as_str().unwrap());
    assert!(
        common::entries(&workdir).is_empty(),
        "{}",
        workdir.display()
    );
    let name = workdir.file_name().unwrap().to_string_lossy().into_owned();
    for entry in common::entries(dir) {
        assert!(
            !entry.contains(".blockwise-") || entry == name,
            "left behind: {entry}"
        );
    }
}

fn run(plan: &Path) -> std::process::Output {
    blockwise(["run".as_ref(), plan.as_os_str()])
}

#[test]
fn a_plan_made_from_relative_paths_runs_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("csv/basic.csv"), dir.path().join("basic.csv")).unwrap();
    let plan = dir.path().join("plan.json");
    let json = plan_in(dir.path(), "basic.csv", "out.parquet", &[], &plan);
    for d in json["datasets"].as_array().unwrap() {
        let path = d["path"].as_str().unwrap();
        assert!(path.is_empty() || path.starts_with('/'), "{path}");
    }
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .current_dir(&elsewhere)
        .arg("run")
        .arg(&plan)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(dir.path().join("out.parquet").exists());
    assert!(common::entries(&elsewhere).is_empty());
    assert_eq!(
        common::entries(dir.path()),
        ["basic.csv", "elsewhere", "out.parquet", "plan.json"]
    );
}

#[test]
fn a_hand_edited_relative_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, json) = csv_plan(dir.path());
    let mut edited = json.clone();
    dataset(&mut edited, "src")["path"] = "basic.csv".into();
    write(&plan, &edited);
    assert_refused(&run(&plan), 2, &["\"basic.csv\"", "relative"]);
    let mut edited = json;
    edited["workdir"] = "work".into();
    write(&plan, &edited);
    assert_refused(&run(&plan), 2, &["\"work\"", "relative"]);
    assert!(!dir.path().join("work").exists());
}

#[test]
fn a_staged_output_outside_the_working_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan, mut json) = csv_plan(dir.path());
    let publish = json["tasks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["op"]["name"] == "publish_output")
        .unwrap();
    publish["op"]["params"]["staged"] = src.display().to_string().into();
    write(&plan, &json);
    assert_refused(&run(&plan), 2, &["basic.csv", "working directory"]);
    assert_eq!(
        std::fs::read(&src).unwrap(),
        std::fs::read(fixture("csv/basic.csv")).unwrap()
    );
    assert!(!dir.path().join("out.parquet").exists());
}

#[test]
fn csv_byte_ranges_the_file_has_not_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan, json) = csv_plan(dir.path());
    let len = std::fs::metadata(&src).unwrap().len();
    for (range, facts) in [
        (
            serde_json::json!([[22, len + 1000]]),
            vec!["basic.csv", "make the plan again"],
        ),
        (serde_json::json!([[500, 22]]), vec!["500", "22"]),
    ] {
        let mut edited = json.clone();
        dataset(&mut edited, "src")["meta"]["csv"]["ranges"] = range;
        write(&plan, &edited);
        assert_refused(&run(&plan), 2, &facts);
        assert!(!dir.path().join("out.parquet").exists());
    }
    // The source shrank since the plan was made.
    std::fs::write(&src, b"id\n1\n").unwrap();
    write(&plan, &json);
    assert_refused(&run(&plan), 2, &["basic.csv", "make the plan again"]);
}

#[test]
fn an_array_meta_with_an_overflowing_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let json = plan_in(
        dir.path(),
        fixture("npy/c3d_i2.npy").to_str().unwrap(),
        dir.path().join("out.zarr").to_str().unwrap(),
        &["--chunks", "2,2,2"],
        &plan,
    );
    for (shape, fact) in [
        (serde_json::json!([1u64 << 62, 1u64 << 62, 2]), "overflows"),
        (serde_json::json!([50, 70, 90]), "[50, 70, 90]"),
        (serde_json::json!([5, 7]), "one chunk length an axis"),
    ] {
        let mut edited = json.clone();
        dataset(&mut edited, "dst")["meta"]["shape"] = shape;
        write(&plan, &edited);
        assert_refused(&run(&plan), 2, &["dataset \"dst\"", fact]);
        assert!(!dir.path().join("out.zarr").exists());
    }
}

#[test]
fn a_working_directory_blockwise_did_not_name_is_never_run_nor_removed() {
    // An edited plan pointing its working directory at the user's data: running it
    // would remove that directory at the end.
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, json) = csv_plan(dir.path());
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "mine").unwrap();
    let old = json["workdir"].as_str().unwrap().to_string();
    let text = serde_json::to_string(&json)
        .unwrap()
        .replace(&old, &victim.display().to_string());
    std::fs::write(&plan, text).unwrap();
    assert_refused(&run(&plan), 2, &["victim", "not one blockwise made"]);
    let out = blockwise(["run-task".as_ref(), plan.as_os_str(), "0".as_ref()]);
    assert_refused(&out, 2, &["not one blockwise made"]);
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!dir.path().join("out.parquet").exists());
}

#[test]
fn a_working_directory_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan, json) = csv_plan(dir.path());
    let old = json["workdir"].as_str().unwrap().to_string();
    let text = serde_json::to_string(&json)
        .unwrap()
        .replace(&old, &src.display().to_string());
    std::fs::write(&plan, text).unwrap();
    assert_refused(&run(&plan), 2, &["basic.csv", "not one blockwise made"]);
    let out = blockwise(["run-task".as_ref(), plan.as_os_str(), "0".as_ref()]);
    assert_refused(&out, 2, &["basic.csv", "not one blockwise made"]);
    assert_eq!(
        std::fs::read(&src).unwrap(),
        std::fs::read(fixture("csv/basic.csv")).unwrap()
    );
}

#[test]
fn run_task_before_its_dependencies_is_refused_and_the_plan_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, json) = csv_plan(dir.path());
    let last = json["tasks"].as_array().unwrap().len() - 1;
    let out = blockwise([
        "run-task".as_ref(),
        plan.as_os_str(),
        last.to_string().as_ref(),
    ]);
    assert_refused(&out, 2, &["task 4 waits for task 3", "has not run"]);
    let out = blockwise(["run-task".as_ref(), plan.as_os_str(), "4294967295".as_ref()]);
    assert_refused(&out, 2, &["no task 4294967295"]);
    blockwise_ok(["run".as_ref(), plan.as_os_str()]);
    assert!(dir.path().join("out.parquet").exists());
    assert_no_temps(dir.path());
}

/// A CSV of `rows` rows (about 30 bytes each) in `dir`.
fn big_csv(dir: &Path, rows: usize) -> PathBuf {
    use std::fmt::Write as _;
    let mut text = String::from("a,b,c\n");
    for i in 0..rows {
        writeln!(text, "{i},{}.25,x{}", i * 7, i % 97).unwrap();
    }
    let path = dir.join("big.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_runs_of_one_plan_at_once_both_succeed_with_one_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = big_csv(dir.path(), 400_000);
    let dst = dir.path().join("out.parquet");
    let plan = dir.path().join("plan.json");
    plan_in(
        dir.path(),
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        &["--memory-limit", "64MiB"],
        &plan,
    );
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_blockwise"))
            .args(["run", "--no-progress"])
            .arg(&plan)
            .env_remove("BLOCKWISE_MEMORY_LIMIT")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let rows = common::python_eval(&format!(
        "import pyarrow.parquet as pq; print(pq.read_table({:?}).num_rows)",
        dst.display().to_string()
    ));
    assert_eq!(rows.trim(), "400000");
    assert_no_temps(dir.path());
    assert_eq!(
        common::entries(dir.path()),
        ["big.csv", "out.parquet", "plan.json"]
    );
}

#[test]
fn a_dst_that_appeared_before_the_plan_ran_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, _) = csv_plan(dir.path());
    let dst = dir.path().join("out.parquet");
    std::fs::write(&dst, b"someone else's").unwrap();
    assert_refused(&run(&plan), 2, &["out.parquet", "already exists"]);
    assert_eq!(std::fs::read(&dst).unwrap(), b"someone else's");
    // Once it is moved away, the plan resumes and publishes.
    std::fs::remove_file(&dst).unwrap();
    blockwise_ok(["run".as_ref(), plan.as_os_str()]);
    assert_no_temps(dir.path());
    // Run again after success: nothing to do, said.
    let out = blockwise_ok(["run".as_ref(), plan.as_os_str()]);
    assert!(common::stderr(&out).contains("nothing to do"));
}

#[test]
fn an_overwrite_plan_of_an_existing_dst_replaces_it_run_or_task_by_task() {
    for task_by_task in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("basic.csv");
        std::fs::copy(fixture("csv/basic.csv"), &src).unwrap();
        let dst = dir.path().join("out.parquet");
        std::fs::write(&dst, b"old").unwrap();
        let plan = dir.path().join("plan.json");
        let json = plan_in(
            dir.path(),
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            &["--overwrite"],
            &plan,
        );
        if task_by_task {
            for id in 0..json["tasks"].as_array().unwrap().len() {
                let out = blockwise_ok([
                    "run-task".as_ref(),
                    plan.as_os_str(),
                    id.to_string().as_ref(),
                ]);
                assert!(!String::from_utf8_lossy(&out.stdout).contains("\"skipped\":true"));
            }
        } else {
            blockwise_ok(["run".as_ref(), plan.as_os_str()]);
        }
        assert_eq!(&std::fs::read(&dst).unwrap()[..4], b"PAR1");
        assert_no_temps(dir.path());
    }
}

#[test]
fn a_source_changed_since_the_plan_was_made_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan, _) = csv_plan(dir.path());
    // Same length, other values: the byte ranges still fit, the data does not.
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("true", "yes!");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&src, text).unwrap();
    for cmd in ["run", "run-task"] {
        let mut args = vec![cmd.as_ref(), plan.as_os_str()];
        if cmd == "run-task" {
            args.push("0".as_ref());
        }
        assert_refused(
            &blockwise(&args),
            2,
            &["basic.csv", "changed since the plan was made"],
        );
    }
    assert!(!dir.path().join("out.parquet").exists());
}

#[test]
fn a_working_directory_on_another_file_system_than_dst_is_refused_before_running() {
    let shm = Path::new("/dev/shm");
    let dir = tempfile::tempdir().unwrap();
    let same_fs = |a: &Path, b: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(a).unwrap().dev() == std::fs::metadata(b).unwrap().dev()
    };
    if !shm.is_dir() || same_fs(shm, dir.path()) {
        eprintln!("skipped: no second file system at /dev/shm");
        return;
    }
    let (_, plan, json) = csv_plan(dir.path());
    let old = json["workdir"].as_str().unwrap().to_string();
    let elsewhere = tempfile::tempdir_in(shm).unwrap();
    let new = elsewhere
        .path()
        .join(".out.parquet.blockwise-plan-0")
        .display()
        .to_string();
    let text = serde_json::to_string(&json).unwrap().replace(&old, &new);
    std::fs::write(&plan, text).unwrap();
    assert_refused(&run(&plan), 2, &["another file system", "out.parquet"]);
    let out = blockwise(["run-task".as_ref(), plan.as_os_str(), "0".as_ref()]);
    assert_refused(&out, 2, &["another file system"]);
    assert!(common::entries(elsewhere.path()).is_empty());
    assert!(!dir.path().join("out.parquet").exists());
}

#[test]
fn an_output_written_outside_the_working_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, mut json) = csv_plan(dir.path());
    let elsewhere = dir.path().join("final.parquet");
    dataset(&mut json, "dst")["path"] = elsewhere.display().to_string().into();
    write(&plan, &json);
    assert_refused(
        &run(&plan),
        2,
        &["final.parquet", "outside the plan's working"],
    );
    assert!(!elsewhere.exists());
    assert_only_the_plans_workdir(dir.path(), &json);
}

#[test]
fn task_ids_and_plan_paths_that_are_not_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, json) = csv_plan(dir.path());
    for id in ["-1", "99999999999", "x", "1.5"] {
        let out = blockwise([
            "run-task".as_ref(),
            plan.as_os_str(),
            "--".as_ref(),
            id.as_ref(),
        ]);
        assert_refused(&out, 2, &[id, "not a task id"]);
    }
    for cmd in ["run", "tasks"] {
        let out = blockwise([cmd.as_ref(), dir.path().as_os_str()]);
        assert_refused(&out, 2, &["is a directory, not a plan file"]);
    }
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, &text[..text.len() / 2]).unwrap();
    assert_refused(&run(&plan), 2, &["plan.json", "EOF while parsing"]);
    assert_only_the_plans_workdir(dir.path(), &json);
}

#[test]
fn convert_with_relative_paths_still_runs_in_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("csv/basic.csv"), dir.path().join("basic.csv")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .current_dir(dir.path())
        .args(["convert", "basic.csv", "out.parquet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_no_temps(dir.path());
}
