//! Running a plan from its data: every task's operation is looked up in a registry
//! and handed its task and the environment; intermediates pass through a data store;
//! tasks whose outputs are already published are skipped (a resumed run); an
//! intermediate is released when its last consumer finishes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::{LocalExecutor, RunReport};
use crate::error::{Error, Result};
use crate::memory::{MemoryMonitor, MemoryPool, SpillStore};
use crate::plan::{
    check_memory, DataRef, DataStore, DatasetRole, Entry, Event, Plan, Registry, Resources,
    TaskEnv,
};

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
        let ops = registry.prepare(plan)?;
        check_memory(plan, env.pool.limit())?;
        let needed = needed_tasks(plan, env.store)?;
        // Consumers still to finish, for each intermediate a needed task reads.
        let mut consumers: HashMap<&DataRef, AtomicU32> = HashMap::new();
        for task in plan.tasks.iter().filter(|t| needed[t.id as usize]) {
            for r in task.inputs.iter().filter(|r| is_intermediate(plan, r)) {
                consumers
                    .entry(r)
                    .or_insert_with(|| AtomicU32::new(0))
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let skipped = needed.iter().filter(|n| !**n).count() as u64;
        let mut report = self.run(plan, |task, tctx| {
            if !needed[task.id as usize] {
                tctx.emit(Event::TaskSkipped(task.id));
                return Ok(());
            }
            let task_env = TaskEnv {
                plan,
                store: env.store,
                pool: env.pool,
                monitor: env.monitor,
                spill: env.spill,
                cancel: tctx.cancel,
                threads: self.threads(),
                resources: env.resources,
                observers: tctx.observers(),
            };
            ops[task.id as usize].run(task, &task_env)?;
            if is_intermediate(plan, &task.output) {
                if !env.store.contains(&task.output) {
                    return Err(Error::Internal(format!(
                        "task {} ({}) finished without publishing {}",
                        task.id, task.op.name, task.output
                    )));
                }
            } else {
                // Its output is written elsewhere (a chunk of the output array): the
                // mark is what a resumed run looks for.
                env.store.put(&task.output, Entry::Json(serde_json::Value::Null))?;
            }
            for r in &task.inputs {
                if let Some(left) = consumers.get(r) {
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        env.store.release(r);
                    }
                }
            }
            Ok(())
        })?;
        report.tasks -= skipped.min(report.tasks);
        report.skipped = skipped;
        Ok(report)
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
/// [`Error::BadPlan`] for an id the plan has not; [`Error::MissingEntry`] for a
/// dependency that has not run; the registry's and the task's errors.
pub fn run_task(
    plan: &Plan,
    registry: &Registry,
    id: u32,
    env: &Environment<'_>,
    cancel: &crate::sys::CancelToken,
    observers: &[Arc<dyn crate::plan::Observer>],
) -> Result<TaskReport> {
    let task = plan.tasks.get(id as usize).ok_or_else(|| Error::BadPlan {
        reason: format!("it has no task {id} (tasks are 0 to {})", plan.tasks.len().saturating_sub(1)),
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
    let op = registry.prepare_task(task)?;
    for &d in &task.deps {
        let dep = &plan.tasks[d as usize];
        if !env.store.contains(&dep.output) {
            return Err(Error::MissingEntry {
                key: format!("{} (the output of task {d}, {}, which task {id} waits for)", dep.output, dep.op.name),
                dir: env.store.dir().to_path_buf(),
            });
        }
    }
    let counter = Arc::new(TaskCounter::default());
    let mut all: Vec<Arc<dyn crate::plan::Observer>> = observers.to_vec();
    all.push(counter.clone());
    let before = env.pool.peak_reserved();
    let task_env = TaskEnv {
        plan,
        store: env.store,
        pool: env.pool,
        monitor: env.monitor,
        spill: env.spill,
        cancel,
        threads: rayon::current_num_threads(),
        resources: env.resources,
        observers: &all,
    };
    op.run(task, &task_env)?;
    if !is_intermediate(plan, &task.output) {
        env.store.put(&task.output, Entry::Json(serde_json::Value::Null))?;
    } else if !env.store.contains(&task.output) {
        return Err(Error::Internal(format!(
            "task {id} ({}) finished without publishing {}",
            task.op.name, task.output
        )));
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.read_bytes = counter.read.load(Ordering::Relaxed);
    report.written_bytes = counter.written.load(Ordering::Relaxed);
    report.peak_reserved_bytes = env.pool.peak_reserved().max(before);
    report.skipped = false;
    Ok(report)
}
