//! Scheduling overhead: a plan of 100,000 tasks of an operation that does nothing but
//! publish an empty entry, run through the registry and the memory store on the local
//! executor (decoding every task's parameters, dispatching by name and version,
//! skipping published outputs, counting consumers, releasing entries).
//!
//! Peers, from their own measurements: Dask's threaded scheduler about 100-200 µs a
//! task, its distributed scheduler about 1 ms. Target here: under 5 µs a task.
//! Run with `cargo bench --bench scheduling`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use blockwise::exec::{CancelToken, DirStore, Environment, LocalExecutor, MemoryStore};
use blockwise::memory::{DiskManager, MemoryPool, SpillCompression, SpillStore};
use blockwise::plan::{
    DataRef, Dataset, DatasetRole, Entry, OpSpec, Operation, Plan, Registry, Resources, Task,
    TaskEnv, TaskKind,
};
use serde::{Deserialize, Serialize};

/// Publishes an empty entry, after reading its inputs.
#[derive(Serialize, Deserialize)]
struct Noop {
    part: u32,
}

impl Operation for Noop {
    const NAME: &'static str = "noop";
    const VERSION: u32 = 1;
    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> blockwise::Result<()> {
        for r in &task.inputs {
            env.store.get(r)?;
        }
        env.store
            .put(&task.output, Entry::Bytes(Default::default()))
    }
}

fn plan(n: u32, chained_every: u32, workdir: &std::path::Path) -> Plan {
    let mut p = Plan::new();
    p.workdir = workdir.display().to_string();
    p.datasets = vec![Dataset::new("x", "", "memory", DatasetRole::Intermediate)];
    for i in 0..n {
        // Every `chained_every`-th task reads the one before it, so the dependency
        // and release bookkeeping is exercised too.
        let chained = chained_every > 0 && i % chained_every == 1;
        let kind = if i % 2 == 0 {
            TaskKind::Load
        } else {
            TaskKind::Release
        };
        let op = OpSpec {
            name: "noop".into(),
            version: 1,
            params: serde_json::json!({"part": i}),
        };
        p.push(Task {
            inputs: if chained {
                vec![DataRef::partition("x", u64::from(i - 1))]
            } else {
                vec![]
            },
            deps: if chained { vec![i - 1] } else { vec![] },
            ..Task::new(op, DataRef::partition("x", u64::from(i)), kind)
        });
    }
    p
}

fn main() {
    let n = 100_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut registry = Registry::new();
    registry.register::<Noop>();
    for (label, chained_every, threads) in [
        ("independent", 0, 2),
        ("half chained", 2, 2),
        ("independent, 1 thread", 0, 1),
    ] {
        let p = plan(n, chained_every, &dir.path().join("work"));
        let mut best = f64::MAX;
        for _ in 0..5 {
            let pool = MemoryPool::new(1 << 40);
            let spill = SpillStore::new(
                DiskManager::new(dir.path(), None).expect("spill"),
                SpillCompression::None,
            );
            let disk = Arc::new(DirStore::new(&dir.path().join("work")).expect("store"));
            let store = MemoryStore::new(disk, pool.clone(), None, HashSet::new());
            let resources = Resources::default();
            let env = Environment::new(&store, &pool, &spill, &resources);
            let start = Instant::now();
            let report = LocalExecutor::new(threads, CancelToken::new())
                .expect("pool")
                .execute(&p, &registry, &env)
                .expect("run");
            assert_eq!(report.tasks, u64::from(n));
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{label:>24}: {n} tasks in {best:.3} s = {:.2} µs a task (best of 5)",
            best * 1e6 / f64::from(n)
        );
    }
}
