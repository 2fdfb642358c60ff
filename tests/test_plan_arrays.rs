//! Array routes as plans run task by task: the plan `blockwise plan convert` would
//! write, run one task at a time against the directory store in wave order (what a
//! shell loop of `blockwise run-task` does), gives the output `blockwise convert`
//! gives; running tasks twice changes nothing.

mod common;

use std::path::Path;

use blockwise::convert::{
    directory_store, plan_convert, registry, ChunkSpec, ConvertOptions, PlanSizing,
};
use blockwise::exec::{run_task, CancelToken, Environment, JobContext};
use blockwise::memory::{default_memory_limit, SpillCompression};
use blockwise::plan::{Plan, Resources};
use common::{fixture, run_by_tasks};

fn sizing(threads: usize, memory_limit: u64) -> PlanSizing {
    PlanSizing {
        threads,
        memory_limit,
    }
}

/// Plans `src` → `dst` with `options`, runs it task by task, converts the same with
/// `blockwise convert ARGS` into a sibling, and compares both with the reference
/// readers; returns the plan.
fn check(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
    sizing: PlanSizing,
    args: &[&str],
) -> Plan {
    let plan = plan_convert(src, dst, options, sizing).unwrap();
    let json = plan.to_json().unwrap();
    // What a worker gets: the plan from its JSON.
    let plan = Plan::from_json(&json).unwrap();
    run_by_tasks(&plan, default_memory_limit(), SpillCompression::None);
    assert!(dst.exists(), "{} not published", dst.display());
    let by_cli = dst.with_file_name(format!(
        "cli-{}",
        dst.file_name().unwrap().to_string_lossy()
    ));
    common::convert_ok(src, &by_cli, args);
    common::assert_same("array", &by_cli, dst, &["--strict-dtype"]);
    common::assert_same("array", src, dst, &[]);
    plan
}

#[test]
fn npy_stack_to_zarr_task_by_task_equals_convert() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("a.zarr");
    let options = ConvertOptions {
        chunks: Some(ChunkSpec::Shape(vec![7, 11])),
        ..ConvertOptions::default()
    };
    let plan = check(
        &fixture("npy_stack/axis0"),
        &dst,
        &options,
        sizing(2, 1 << 30),
        &["--chunks", "7,11"],
    );
    assert!(plan.tasks.iter().any(|t| t.op.name == "copy_block"));
    let chunks = common::python_eval(&format!(
        "import zarr; a = zarr.open_array({dst:?}, mode='r'); print(a.metadata.zarr_format, a.chunks)"
    ));
    assert_eq!(chunks.trim(), "3 (7, 11)");
}

#[test]
fn zarr_v2_to_v3_and_to_npy_and_stack_task_by_task_equal_convert() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("zarr/v2_blosc.zarr");
    check(
        &src,
        &dir.path().join("v3.zarr"),
        &ConvertOptions::default(),
        sizing(2, 1 << 30),
        &[],
    );
    check(
        &src,
        &dir.path().join("a.npy"),
        &ConvertOptions::default(),
        sizing(1, 1 << 30),
        &[],
    );
    let options = ConvertOptions {
        to: Some(blockwise::storage::Format::NpyStack),
        chunks: Some(ChunkSpec::Shape(vec![13, 5])),
        ..ConvertOptions::default()
    };
    check(
        &src,
        &dir.path().join("stack"),
        &options,
        sizing(2, 1 << 30),
        &["--to", "npy-stack", "--chunks", "13,5"],
    );
}

#[test]
fn a_staged_rechunk_task_by_task_equals_convert() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    common::python_eval(&format!(
        "import numpy as np; np.save({npy:?}, np.random.default_rng(1).standard_normal((400, 400)))"
    ));
    let tall = dir.path().join("tall.zarr");
    common::convert_ok(&npy, &tall, &["--chunks", "400,5"]);
    let wide = dir.path().join("wide.zarr");
    let options = ConvertOptions {
        chunks: Some(ChunkSpec::Shape(vec![5, 400])),
        ..ConvertOptions::default()
    };
    let args = [
        &[
            "--chunks",
            "5,400",
            "--memory-limit",
            "128000",
            "--threads",
            "1",
        ][..],
        &common::RSS_THRESHOLDS_OFF,
    ]
    .concat();
    let plan = check(&tall, &wide, &options, sizing(1, 128_000), &args);
    // Through an intermediate array in the working directory, made by a task.
    let stage = plan
        .datasets
        .iter()
        .find(|d| d.id == "stage1")
        .expect("a stage");
    assert!(stage.path.starts_with(&plan.workdir), "{}", stage.path);
    assert!(plan
        .tasks
        .iter()
        .any(|t| t.op.name == "create_array" && t.output.dataset() == "stage1"));
    assert!(plan.tasks.iter().all(|t| t.memory_bytes <= 64_000));
    common::assert_same("array", &npy, &wide, &[]);
}

#[test]
fn planning_writes_nothing_but_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr");
    let plan = plan_convert(
        &fixture("zarr/v3_zstd.zarr"),
        &dst,
        &ConvertOptions::default(),
        sizing(2, 1 << 30),
    )
    .unwrap();
    assert!(!Path::new(&plan.workdir).exists());
    assert!(common::entries(dir.path()).is_empty());
}

#[test]
fn a_csv_in_many_partitions_becomes_the_same_array_task_by_task() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    common::python_eval(&format!(
        "import numpy as np\n\
         rng = np.random.default_rng(2); a = rng.integers(-1000, 1000, (3000, 3))\n\
         np.savetxt({csv:?}, a, fmt='%d', delimiter=',', header='a,b,c', comments='')"
    ));
    let mut options = ConvertOptions {
        chunks: Some(ChunkSpec::Shape(vec![64, 2])),
        ..ConvertOptions::default()
    };
    options.read.blocksize = 4096;
    let dst = dir.path().join("t.zarr");
    let plan = plan_convert(&csv, &dst, &options, sizing(2, 1 << 30)).unwrap();
    let chain = plan
        .tasks
        .iter()
        .filter(|t| t.op.name == "place_rows")
        .count();
    assert!(chain > 3, "{chain} partitions");
    run_by_tasks(&plan, default_memory_limit(), SpillCompression::None);
    common::assert_same("frame-array", &csv, &dst, &[]);
    let npy = dir.path().join("t.npy");
    let plan = plan_convert(&csv, &npy, &options, sizing(1, 1 << 30)).unwrap();
    run_by_tasks(&plan, default_memory_limit(), SpillCompression::None);
    common::assert_same("frame-array", &csv, &npy, &[]);
}

#[test]
fn two_copies_of_every_task_at_once_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    common::python_eval(&format!(
        "import numpy as np; np.save({npy:?}, np.arange(200 * 120, dtype='i4').reshape(200, 120))"
    ));
    for (name, chunks, limit) in [("a.zarr", "50,7", 60_000u64), ("b.npy", "9,120", 1 << 30)] {
        let dst = dir.path().join(name);
        let options = ConvertOptions {
            chunks: Some(ChunkSpec::Shape(
                chunks.split(',').map(|c| c.parse().unwrap()).collect(),
            )),
            ..ConvertOptions::default()
        };
        let plan = plan_convert(&npy, &dst, &options, sizing(2, limit)).unwrap();
        let store = directory_store(&plan).unwrap();
        let ctx = JobContext::with_defaults().unwrap();
        let cancel = CancelToken::new();
        for wave in plan.waves().unwrap() {
            std::thread::scope(|s| {
                for &id in &wave {
                    for _ in 0..2 {
                        let (plan, store, ctx, cancel) = (&plan, &store, &ctx, &cancel);
                        s.spawn(move || {
                            let resources = Resources::default();
                            let env = Environment::new(store, &ctx.pool, &ctx.spill, &resources);
                            // The second copy of `publish_output` finds the output
                            // published by the first: the refusal to replace it is
                            // what it must say, and nothing else.
                            if let Err(e) = run_task(plan, registry(), id, &env, cancel, &[]) {
                                assert_eq!(
                                    plan.tasks[id as usize].op.name, "publish_output",
                                    "{e}"
                                );
                            }
                        });
                    }
                }
            });
        }
        common::assert_same("array", &npy, &dst, &["--strict-dtype"]);
        // No temporary is left in the output.
        let leftovers = walk(&dst);
        assert!(
            leftovers.iter().all(|p| !p.contains(".tmp-")),
            "{leftovers:?}"
        );
    }
}

/// Every path under `p` (or `p` itself, a file).
fn walk(p: &Path) -> Vec<String> {
    let mut out = vec![p.display().to_string()];
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
