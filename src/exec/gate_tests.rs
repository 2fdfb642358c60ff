//! The memory gate at work in the executor: pause, terminate, and a model-based test
//! of plans whose intermediates pass the memory target and spill through the monitor.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::local::test_dispatch;
use super::{DirStore, Environment, LocalExecutor, MemoryStore};
use crate::error::{Error, Result};
use crate::memory::{
    DiskManager, MemoryMonitor, MemoryPool, SpillCompression, SpillStore, Thresholds,
};
use crate::plan::{
    DataRef, Dataset, DatasetRole, Entry, OpSpec, Operation, Plan, Registry, Resources, Task,
    TaskEnv, TaskKind,
};
use crate::sys::CancelToken;

/// A monitor of `pool` whose RSS reading is the returned cell.
fn watched(pool: MemoryPool) -> (Arc<AtomicU64>, Arc<MemoryMonitor>) {
    let rss = Arc::new(AtomicU64::new(0));
    let reading = rss.clone();
    let m = MemoryMonitor::new(pool, Thresholds::default())
        .with_rss_source(Arc::new(move || reading.load(Ordering::SeqCst)));
    (rss, Arc::new(m))
}

#[test]
fn pause_starts_no_task_while_above_and_resumes_below() {
    let (rss, m) = watched(MemoryPool::new(1000));
    let plan = Plan::placeholders("noop", &vec![(TaskKind::Load, vec![]); 6]);
    let log = Mutex::new(Vec::new());
    let raised = std::sync::atomic::AtomicBool::new(false);
    let report = LocalExecutor::new(2, CancelToken::new())
        .unwrap()
        .with_gate(m.clone())
        .schedule(
            &plan,
            &test_dispatch(|t, _| {
                match t.id {
                    0 => {
                        // Memory rises past pause while this task runs, then falls.
                        rss.store(850, Ordering::SeqCst);
                        raised.store(true, Ordering::SeqCst);
                        log.lock().unwrap().push(("pause", t.id));
                        std::thread::sleep(Duration::from_millis(60));
                        log.lock().unwrap().push(("resume", t.id));
                        rss.store(100, Ordering::SeqCst);
                    }
                    // The other thread's first task ends only once memory is up, so
                    // that thread's next start must wait for the fall: without this,
                    // it could run every other task before task 0 raised anything.
                    1 => {
                        let waited = Instant::now();
                        while !raised.load(Ordering::SeqCst)
                            && waited.elapsed() < Duration::from_secs(5)
                        {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    _ => log.lock().unwrap().push(("start", t.id)),
                }
                Ok(())
            }),
        )
        .unwrap();
    assert_eq!(report.tasks, 6);
    let log = log.into_inner().unwrap();
    let resumed_at = log.iter().position(|e| e.0 == "resume").unwrap();
    assert!(
        log[..resumed_at].iter().all(|e| e.0 != "start"),
        "a task started while paused: {log:?}"
    );
    assert_eq!(log.len(), 6, "{log:?}");
    assert!(report.paused_ms >= 20, "paused {} ms", report.paused_ms);
}

#[test]
fn terminate_cancels_the_job_names_consumers_and_leaves_the_process_alive() {
    let pool = MemoryPool::new(1000);
    let mut held = pool.reserve("hash aggregate");
    held.grow(300);
    let (rss, m) = watched(pool);
    let plan = Plan::placeholders("noop", &vec![(TaskKind::Load, vec![]); 50]);
    let cancel = CancelToken::new();
    let ran = AtomicU64::new(0);
    let err = LocalExecutor::new(2, cancel.clone())
        .unwrap()
        .with_gate(m)
        .schedule(
            &plan,
            &test_dispatch(|_, _| {
                if ran.fetch_add(1, Ordering::SeqCst) == 3 {
                    rss.store(960, Ordering::SeqCst);
                }
                Ok(())
            }),
        )
        .unwrap_err();
    assert!(matches!(err, Error::MemoryTerminated { .. }), "{err}");
    assert!(err.to_string().contains("hash aggregate 300 B"), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert!(cancel.is_cancelled());
    assert!(ran.load(Ordering::SeqCst) < 50);
}

#[test]
fn terminate_reaches_a_task_that_runs_long() {
    let (rss, m) = watched(MemoryPool::new(1000));
    let plan = Plan::placeholders("long", &[(TaskKind::Load, vec![])]);
    let started = Instant::now();
    let err = LocalExecutor::new(1, CancelToken::new())
        .unwrap()
        .with_gate(m)
        .schedule(
            &plan,
            &test_dispatch(|_, ctx| {
                // Memory climbs inside the one task; only the 50 ms watch can see it.
                rss.store(990, Ordering::SeqCst);
                while started.elapsed() < Duration::from_secs(5) {
                    ctx.cancel.check()?;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(())
            }),
        )
        .unwrap_err();
    assert!(matches!(err, Error::MemoryTerminated { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

/// Makes `size` bytes from its seed and its inputs' bytes, publishes them, and notes
/// its checksum in `log/ID`.
#[derive(Debug, Serialize, Deserialize)]
struct Mix {
    size: usize,
    log: PathBuf,
}

impl Operation for Mix {
    const NAME: &'static str = "test_mix";
    const VERSION: u32 = 1;
    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let mut acc = u64::from(task.id) * 7919;
        for r in &task.inputs {
            match &*env.store.get(r)? {
                Entry::Bytes(b) => {
                    acc = b
                        .iter()
                        .fold(acc, |a, &x| a.wrapping_mul(31).wrapping_add(u64::from(x)));
                }
                other => {
                    return Err(Error::WrongEntry {
                        key: r.to_string(),
                        holds: other.kind(),
                        wanted: "bytes",
                    })
                }
            }
        }
        // The output is reserved before it is made (the store's reservation takes
        // over when it is published).
        let mut making = env.pool.reserve("making");
        env.reserve(&mut making, self.size as u64)?;
        let data: Vec<u8> = (0..self.size)
            .map(|k| (acc.wrapping_add(k as u64) % 251) as u8)
            .collect();
        drop(making);
        std::fs::write(self.log.join(task.id.to_string()), acc.to_string())
            .map_err(|e| Error::io(&self.log, e))?;
        env.store.put(&task.output, Entry::Bytes(data.into()))
    }
}

/// Runs the plan of `sizes` and `deps` under `limit`, the target threshold at 0.6
/// of it (measured on reserved bytes) and the RSS thresholds off; returns every
/// task's checksum, the peak reserved bytes and the bytes spilled.
fn run_model(
    sizes: &[usize],
    deps: &[Vec<u32>],
    limit: u64,
    threads: usize,
) -> (Vec<u64>, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir(&log).unwrap();
    let spill = SpillStore::new(
        DiskManager::new(dir.path(), None).unwrap(),
        SpillCompression::Zstd(1),
    );
    let pool = MemoryPool::new(limit);
    let off = f64::INFINITY;
    let monitor = Arc::new(
        MemoryMonitor::new(
            pool.clone(),
            Thresholds {
                target: 0.6,
                spill: off,
                pause: off,
                terminate: off,
            },
        )
        .with_spill_store(spill.clone()),
    );
    let mut plan = Plan::new();
    plan.workdir = dir.path().join("work").display().to_string();
    plan.datasets = vec![Dataset::new("x", "", "memory", DatasetRole::Intermediate)];
    for (i, d) in deps.iter().enumerate() {
        plan.push(Task {
            inputs: d
                .iter()
                .map(|&j| DataRef::partition("x", u64::from(j)))
                .collect(),
            deps: d.clone(),
            ..Task::new(
                OpSpec {
                    name: "test_mix".into(),
                    version: 1,
                    params: serde_json::json!({"size": sizes[i], "log": log}),
                },
                DataRef::partition("x", i as u64),
                TaskKind::Compute,
            )
        });
    }
    let mut registry = Registry::new();
    registry.register::<Mix>();
    let disk = Arc::new(DirStore::new(Path::new(&plan.workdir)).unwrap());
    let store = MemoryStore::new(disk, pool.clone(), Some(monitor.clone()), HashSet::new());
    let resources = Resources::default();
    let env = Environment::new(&store, &pool, &spill, &resources).with_monitor(&monitor);
    LocalExecutor::new(threads, CancelToken::new())
        .unwrap()
        .with_gate(monitor.clone())
        .execute(&plan, &registry, &env)
        .unwrap();
    let sums = (0..sizes.len())
        .map(|i| {
            std::fs::read_to_string(log.join(i.to_string()))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    (sums, pool.peak_reserved(), store.spilled_bytes())
}

fn plans() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<u32>>)> {
    (1usize..25).prop_flat_map(|n| {
        let sizes = proptest::collection::vec(1usize..3000, n);
        let deps = (0..n)
            .map(|i| {
                proptest::collection::vec(0..i.max(1) as u32, if i == 0 { 0..1 } else { 0..4 })
            })
            .collect::<Vec<_>>();
        (sizes, deps).prop_map(|(sizes, deps)| {
            let deps = deps
                .into_iter()
                .enumerate()
                .map(|(i, mut d)| {
                    d.retain(|&x| (x as usize) < i);
                    d.sort_unstable();
                    d.dedup();
                    d
                })
                .collect();
            (sizes, deps)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Random plans whose intermediates pass the target under a tiny budget give
    /// exactly what they give with no budget, reserved bytes never pass the limit,
    /// and entries really went to disk and came back.
    #[test]
    fn intermediates_past_the_target_spill_and_read_back_unchanged(
        (sizes, deps) in plans(),
        threads in 1usize..3,
    ) {
        // Room for a task's inputs and output at once, and not much more.
        let limit = (3 * 3000 + 4 * 3000) as u64;
        let (budgeted, peak, spilled) = run_model(&sizes, &deps, limit, threads);
        let (free, _, free_spilled) = run_model(&sizes, &deps, u64::MAX / 4, threads);
        prop_assert_eq!(budgeted, free);
        prop_assert_eq!(free_spilled, 0);
        prop_assert!(peak <= limit, "peak {} > limit {}", peak, limit);
        // Entries of tasks nothing reads stay to the end: past the target, some
        // must have spilled.
        let kept: usize = (0..sizes.len())
            .filter(|i| !deps.iter().any(|d| d.contains(&(*i as u32))))
            .map(|i| sizes[i])
            .sum();
        if kept as f64 > 0.6 * limit as f64 + 3000.0 {
            prop_assert!(spilled > 0, "kept {} bytes, spilled none", kept);
        }
    }
}
