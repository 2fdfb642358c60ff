//! Running a plan from its data: every task's operation is looked up in a registry
//! and handed its task and the environment; intermediates pass through a data store;
//! tasks whose outputs are already published are skipped (a resumed run); an
//! intermediate is released when its last consumer finishes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::local::{Dispatch, Outcome};
use super::{LocalExecutor, RunReport, TaskContext};
use crate::error::{Error, Result};
use crate::memory::{MemoryMonitor, MemoryPool, SpillStore};
use crate::plan::{
    check_memory, DataRef, DataStore, DatasetRole, Entry, Event, Observer, Plan, PreparedOperation,
    Registry, Resources, Task, TaskEnv,
};
use crate::sys::CancelToken;

/// What the tasks of one run share besides the executor's threads.
pub struct Environment<'a> {
    /// Where intermediates live.
    pub store: &'a dyn DataStore,
    /// The memory budget.
    pub pool: &'a MemoryPool,
    /// The threshold monitor, if any (it spills store entries).
    pub monitor: Option<&'a MemoryMonitor>,
    /// Where operators spill inside a task.
    pub spill: &'a SpillStore,
    /// Objects opened once for the run.
    pub resources: &'a Resources,
}

impl<'a> Environment<'a> {
    /// The environment of tasks over `store`, with `pool`, `spill` and `resources`,
    /// and no threshold monitor: what a worker running single tasks has (entries
    /// in a directory store are not the monitor's to spill).
    pub fn new(
        store: &'a dyn DataStore,
        pool: &'a MemoryPool,
        spill: &'a SpillStore,
        resources: &'a Resources,
    ) -> Self {
        Environment {
            store,
            pool,
            monitor: None,
            spill,
            resources,
        }
    }

    /// The same, with `monitor` spilling store entries when a reservation does not
    /// fit (a job's memory store).
    pub fn with_monitor(mut self, monitor: &'a MemoryMonitor) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// What one task of `plan` gets: this environment, `cancel`, its `threads` and
    /// the `observers` of its events.
    pub fn task_env<'t>(
        &self,
        plan: &'t Plan,
        cancel: &'t CancelToken,
        threads: usize,
        observers: &'t [Arc<dyn Observer>],
    ) -> TaskEnv<'t>
    where
        'a: 't,
    {
        TaskEnv {
            plan,
            store: self.store,
            pool: self.pool,
            monitor: self.monitor,
            spill: self.spill,
            cancel,
            threads,
            resources: self.resources,
            observers,
        }
    }
}

/// Which tasks of `plan` need to run given what `store` holds: see [`Plan::needed`].
/// A task writing into an input or output dataset is done when the store holds its
/// completion mark.
///
/// # Errors
/// [`Error::BadPlan`] for a cyclic plan.
pub fn needed_tasks(plan: &Plan, store: &dyn DataStore) -> Result<Vec<bool>> {
    plan.needed(|task| store.contains(&task.output))
}

/// Whether `r` names an intermediate of `plan` (an entry of the store).
fn is_intermediate(plan: &Plan, r: &DataRef) -> bool {
    plan.dataset(r.dataset())
        .is_ok_and(|d| d.role == DatasetRole::Intermediate)
}

impl LocalExecutor {
    /// Runs `plan`: checks its memory projection against the pool's limit, decodes
    /// every task's operation with `registry` (refusing unknown ones before anything
    /// runs), skips tasks whose outputs `env.store` already holds, and runs the rest
    /// with their dependencies respected.
    ///
    /// # Errors
    /// [`Error::PlanTooLarge`]; the registry's errors; the first task error, the
    /// memory gate's, [`Error::Cancelled`].
    pub fn execute(
        &self,
        plan: &Plan,
        registry: &Registry,
        env: &Environment<'_>,
    ) -> Result<RunReport> {
        plan.validate()?;
        plan.check_inputs()?;
        let ops = registry.prepare(plan)?;
        check_memory(plan, env.pool.limit())?;
        let dispatch = RegistryDispatch::new(plan, ops, env, self.threads())?;
        let mut report = self.schedule(plan, &dispatch)?;
        report.tasks -= dispatch.skipped.min(report.tasks);
        report.skipped = dispatch.skipped;
        Ok(report)
    }
}

/// Runs each task the scheduler hands it through its decoded operation: the one
/// dispatch of plans. It skips tasks whose output is published already, checks that
/// a task made the intermediate it names (or marks a task writing into a dataset as
/// done, for a resumed run), and releases an intermediate when its last consumer
/// finished.
struct RegistryDispatch<'a> {
    plan: &'a Plan,
    /// Every task's operation, decoded by the registry, indexed by task id.
    ops: Vec<Box<dyn PreparedOperation>>,
    /// Which tasks must run (the others' outputs are published).
    needed: Vec<bool>,
    env: &'a Environment<'a>,
    /// The ids of the plan's intermediate datasets (entries of the store).
    intermediates: HashSet<&'a str>,
    /// Consumers still to finish, for each intermediate a needed task reads.
    consumers: HashMap<&'a DataRef, AtomicU32>,
    /// Tasks not run because their outputs were published.
    skipped: u64,
    /// Threads a task's own parallel loops may use.
    threads: usize,
}

impl<'a> RegistryDispatch<'a> {
    /// The dispatch of `plan`'s decoded `ops` in `env`.
    ///
    /// # Errors
    /// [`Error::BadPlan`] for a cyclic plan.
    fn new(
        plan: &'a Plan,
        ops: Vec<Box<dyn PreparedOperation>>,
        env: &'a Environment<'a>,
        threads: usize,
    ) -> Result<Self> {
        let needed = needed_tasks(plan, env.store)?;
        let intermediates: HashSet<&str> = plan
            .datasets
            .iter()
            .filter(|d| d.role == DatasetRole::Intermediate)
            .map(|d| d.id.as_str())
            .collect();
        let mut consumers: HashMap<&DataRef, AtomicU32> = HashMap::new();
        for task in plan.tasks.iter().filter(|t| needed[t.id as usize]) {
            for r in &task.inputs {
                if intermediates.contains(r.dataset()) {
                    consumers
                        .entry(r)
                        .or_insert_with(|| AtomicU32::new(0))
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let skipped = needed.iter().filter(|n| !**n).count() as u64;
        Ok(RegistryDispatch {
            plan,
            ops,
            needed,
            env,
            intermediates,
            consumers,
            skipped,
            threads,
        })
    }
}

impl Dispatch for RegistryDispatch<'_> {
    fn run_task(&self, task: &Task, ctx: &TaskContext<'_>) -> Result<Outcome> {
        if !self.needed[task.id as usize] {
            return Ok(Outcome::Skipped);
        }
        let env = self.env;
        let task_env = env.task_env(self.plan, ctx.cancel, self.threads, ctx.observers());
        self.ops[task.id as usize].run(task, &task_env)?;
        if self.intermediates.contains(task.output.dataset()) {
            if !env.store.contains(&task.output) {
                return Err(unpublished(task));
            }
        } else {
            // Its output is written elsewhere (a chunk of the output array): the
            // mark is what a resumed run looks for.
            env.store
                .put(&task.output, Entry::Json(serde_json::Value::Null))?;
        }
        if !self.consumers.is_empty() {
            for r in &task.inputs {
                if let Some(left) = self.consumers.get(r) {
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        env.store.release(r);
                    }
                }
            }
        }
        Ok(Outcome::Ran)
    }
}

/// The error of `task` having ended without publishing its output entry.
fn unpublished(task: &Task) -> Error {
    Error::Unpublished {
        task: task.id,
        op: task.op.name.clone(),
        output: task.output.to_string(),
    }
}

/// A shared handle on a store, for environments built from owned parts.
pub type SharedStore = Arc<dyn DataStore>;

/// What running one task did: the JSON line of `run-task`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskReport {
    /// The task's id.
    pub id: u32,
    /// Its operation's name.
    pub op: String,
    /// Wall seconds it ran.
    pub seconds: f64,
    /// Bytes of input it read.
    pub read_bytes: u64,
    /// Bytes of output it wrote.
    pub written_bytes: u64,
    /// Most bytes reserved on the pool while it ran.
    pub peak_reserved_bytes: u64,
    /// True when its output was already published and it did not run.
    pub skipped: bool,
}

/// Counts one task's bytes.
#[derive(Default)]
struct TaskCounter {
    read: std::sync::atomic::AtomicU64,
    written: std::sync::atomic::AtomicU64,
}

impl crate::plan::Observer for TaskCounter {
    fn on_event(&self, event: &Event) {
        match event {
            Event::BytesRead(n) => self.read.fetch_add(*n, Ordering::Relaxed),
            Event::BytesWritten(n) => self.written.fetch_add(*n, Ordering::Relaxed),
            _ => 0,
        };
    }
}

/// Runs task `id` of `plan` in this process against `env.store` (a shared directory):
/// what `run-task` and a remote worker do. Its dependencies must have run (anywhere);
/// a task whose output is published already is skipped. When it is the last of the
/// plan's final tasks to finish, the working directory is removed.
///
/// # Errors
/// [`Error::BadPlan`] for an id the plan has not; [`Error::DependencyNotRun`] for
/// a dependency that has not run; the registry's and the task's errors.
pub fn run_task(
    plan: &Plan,
    registry: &Registry,
    id: u32,
    env: &Environment<'_>,
    cancel: &CancelToken,
    observers: &[Arc<dyn Observer>],
) -> Result<TaskReport> {
    let task = plan.tasks.get(id as usize).ok_or_else(|| Error::BadPlan {
        reason: format!(
            "it has no task {id} (tasks are 0 to {})",
            plan.tasks.len().saturating_sub(1)
        ),
    })?;
    let started = std::time::Instant::now();
    let mut report = TaskReport {
        id,
        op: task.op.name.clone(),
        seconds: 0.0,
        read_bytes: 0,
        written_bytes: 0,
        peak_reserved_bytes: 0,
        skipped: true,
    };
    if env.store.contains(&task.output) {
        return Ok(report);
    }
    plan.check_inputs()?;
    let op = registry.prepare_task(task)?;
    for &d in &task.deps {
        let dep = &plan.tasks[d as usize];
        if !env.store.contains(&dep.output) {
            return Err(Error::DependencyNotRun {
                task: id,
                dep: d,
                op: dep.op.name.clone(),
                output: dep.output.to_string(),
                dir: env.store.dir().to_path_buf(),
            });
        }
    }
    let counter = Arc::new(TaskCounter::default());
    let mut all: Vec<Arc<dyn Observer>> = observers.to_vec();
    all.push(counter.clone());
    let before = env.pool.peak_reserved();
    let task_env = env.task_env(plan, cancel, rayon::current_num_threads(), &all);
    op.run(task, &task_env)?;
    if !is_intermediate(plan, &task.output) {
        env.store
            .put(&task.output, Entry::Json(serde_json::Value::Null))?;
    } else if !env.store.contains(&task.output) {
        return Err(unpublished(task));
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.read_bytes = counter.read.load(Ordering::Relaxed);
    report.written_bytes = counter.written.load(Ordering::Relaxed);
    report.peak_reserved_bytes = env.pool.peak_reserved().max(before);
    report.skipped = false;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::exec::{DirStore, MemoryStore};
    use crate::memory::{DiskManager, SpillCompression};
    use crate::plan::{Dataset, OpSpec, Operation, Task, TaskKind};

    /// Publishes `value` as one byte; notes that it ran in `log`.
    #[derive(Debug, Serialize, Deserialize)]
    struct Produce {
        value: u8,
        log: PathBuf,
    }

    /// Publishes the sum of its inputs' bytes; into a file when its output is the
    /// plan's output.
    #[derive(Debug, Serialize, Deserialize)]
    struct Sum {
        log: PathBuf,
        file: Option<PathBuf>,
    }

    fn note(log: &Path, task: &Task) {
        std::fs::write(log.join(task.id.to_string()), b"").unwrap();
    }

    impl Operation for Produce {
        const NAME: &'static str = "test_produce";
        const VERSION: u32 = 1;
        fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
            note(&self.log, task);
            env.store
                .put(&task.output, Entry::Bytes(vec![self.value].into()))
        }
    }

    impl Operation for Sum {
        const NAME: &'static str = "test_sum";
        const VERSION: u32 = 1;
        fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
            note(&self.log, task);
            let mut total = 0u8;
            for r in &task.inputs {
                match &*env.store.get(r)? {
                    Entry::Bytes(b) => total += b[0],
                    other => panic!("{other:?}"),
                }
            }
            match &self.file {
                Some(f) => std::fs::write(f, [total]).map_err(|e| Error::io(f, e)),
                None => env
                    .store
                    .put(&task.output, Entry::Bytes(vec![total].into())),
            }
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register::<Produce>().register::<Sum>();
        r
    }

    /// `a/0 = 1`, `a/1 = 2`, `b = a/0 + a/1`, the output file `= b`.
    fn plan(dir: &Path) -> Plan {
        let log = dir.join("log");
        std::fs::create_dir_all(&log).unwrap();
        let mut plan = Plan::new();
        plan.workdir = dir.join("work").display().to_string();
        plan.datasets = vec![
            Dataset::new("a", "", "memory", DatasetRole::Intermediate),
            Dataset::new("b", "", "memory", DatasetRole::Intermediate),
            Dataset::new("out", dir.join("out").display(), "bin", DatasetRole::Output),
        ];
        let spec = |name: &str, params: serde_json::Value| OpSpec {
            name: name.into(),
            version: 1,
            params,
        };
        for v in [1u8, 2] {
            plan.push(Task::new(
                spec("test_produce", serde_json::json!({"value": v, "log": log})),
                DataRef::partition("a", u64::from(v - 1)),
                TaskKind::Load,
            ));
        }
        plan.push(Task {
            inputs: vec![DataRef::partition("a", 0), DataRef::partition("a", 1)],
            deps: vec![0, 1],
            ..Task::new(
                spec("test_sum", serde_json::json!({"log": log, "file": null})),
                DataRef::whole("b"),
                TaskKind::Compute,
            )
        });
        plan.push(Task {
            inputs: vec![DataRef::whole("b")],
            deps: vec![2],
            ..Task::new(
                spec(
                    "test_sum",
                    serde_json::json!({"log": log, "file": dir.join("out")}),
                ),
                DataRef::whole("out"),
                TaskKind::Release,
            )
        });
        plan
    }

    fn ran(dir: &Path) -> Vec<u32> {
        let mut ids: Vec<u32> = std::fs::read_dir(dir.join("log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
            .collect();
        ids.sort_unstable();
        std::fs::remove_dir_all(dir.join("log")).unwrap();
        std::fs::create_dir(dir.join("log")).unwrap();
        ids
    }

    /// A pool of 1 GiB and a spill store under `dir`.
    fn pool_and_spill(dir: &Path) -> (MemoryPool, SpillStore) {
        let spill = SpillStore::new(DiskManager::new(dir, None).unwrap(), SpillCompression::None);
        (MemoryPool::new(1 << 30), spill)
    }

    fn run(plan: &Plan, dir: &Path) -> Result<RunReport> {
        let (pool, spill) = pool_and_spill(dir);
        let disk = std::sync::Arc::new(DirStore::new(Path::new(&plan.workdir))?);
        let store = MemoryStore::new(disk, pool.clone(), None, HashSet::from(["out".into()]));
        let resources = Resources::default();
        let env = Environment::new(&store, &pool, &spill, &resources);
        let report = LocalExecutor::new(2, CancelToken::new())?.execute(plan, &registry(), &env)?;
        assert_eq!(pool.reserved(), 0, "every intermediate released");
        Ok(report)
    }

    #[test]
    fn a_plan_runs_from_its_data_and_releases_its_intermediates() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let report = run(&plan, dir.path()).unwrap();
        assert_eq!((report.tasks, report.skipped), (4, 0));
        assert_eq!(ran(dir.path()), vec![0, 1, 2, 3]);
        assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), vec![3]);
        // Only the completion mark of the output task is left in the store.
        let disk = DirStore::new(Path::new(&plan.workdir)).unwrap();
        assert!(disk.contains(&DataRef::whole("out")));
        assert!(!disk.contains(&DataRef::whole("b")));

        // Run again: the output is published, nothing runs.
        let report = run(&plan, dir.path()).unwrap();
        assert_eq!((report.tasks, report.skipped), (0, 4));
        assert!(ran(dir.path()).is_empty());
    }

    #[test]
    fn a_resumed_run_does_only_the_work_that_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        // A killed run had published `b` (on disk) but not the output.
        DirStore::new(Path::new(&plan.workdir))
            .unwrap()
            .put(&DataRef::whole("b"), Entry::Bytes(vec![3].into()))
            .unwrap();
        let report = run(&plan, dir.path()).unwrap();
        assert_eq!((report.tasks, report.skipped), (1, 3));
        assert_eq!(
            ran(dir.path()),
            vec![3],
            "a/0 and a/1 were only needed by b"
        );
        assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), vec![3]);
    }

    #[test]
    fn run_task_runs_one_task_against_the_directory_and_checks_its_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let store = DirStore::new(Path::new(&plan.workdir)).unwrap();
        let (pool, spill) = pool_and_spill(dir.path());
        let resources = Resources::default();
        let env = Environment::new(&store, &pool, &spill, &resources);
        let cancel = CancelToken::new();
        let e = run_task(&plan, &registry(), 2, &env, &cancel, &[]).unwrap_err();
        assert!(matches!(e, Error::DependencyNotRun { dep: 0, .. }), "{e}");
        assert!(e.to_string().contains("task 0"), "{e}");
        for wave in plan.waves().unwrap() {
            for id in wave {
                let r = run_task(&plan, &registry(), id, &env, &cancel, &[]).unwrap();
                assert!(!r.skipped);
                assert_eq!(r.op, plan.tasks[id as usize].op.name);
            }
        }
        assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), vec![3]);
        // Twice: skipped.
        assert!(
            run_task(&plan, &registry(), 1, &env, &cancel, &[])
                .unwrap()
                .skipped
        );
        let e = run_task(&plan, &registry(), 9, &env, &cancel, &[]).unwrap_err();
        assert!(e.to_string().contains("no task 9"), "{e}");
    }
}
