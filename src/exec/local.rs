//! The local executor: runs a plan's tasks on a rayon thread pool, each task as soon
//! as its dependencies are done.
//!
//! Ready tasks are ordered so that work which releases memory (writes, merges,
//! finished reductions) starts before work which loads more: loading never runs far
//! ahead of consuming, which is Dask's "root task overproduction" failure. Rayon has
//! no priorities, so the pool does not queue tasks itself: one long-lived worker loop
//! a pool thread takes the best ready task from a shared heap each time it is free.
//! That also bounds the tasks running at once to the pool's size, which the plan's
//! memory projection counts on, while rayon's work stealing still spreads a task's
//! own parallel loops over the pool (an idle worker loop helps with them).
//!
//! The memory gate is asked at every task boundary whether a new task may start
//! (pause) and whether the job must stop (terminate). The first error cancels the
//! job: no new task starts, and running tasks see the cancel token at their next
//! chunk boundary.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::CancelToken;
use crate::error::{Error, Result};
use crate::memory::{Admission, MemoryGate};
use crate::plan::{Event, Observer};
use crate::plan::{Plan, Task, TaskId, TaskKind};

/// How long an idle worker sleeps before looking for stolen work again; task ends
/// wake it sooner.
const IDLE_WAIT: Duration = Duration::from_millis(2);

/// A rayon pool of `threads` threads named `blockwise-N`.
///
/// # Errors
/// [`Error::ThreadsRefused`] when the operating system refuses the threads.
pub fn thread_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("blockwise-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::ThreadsRefused {
            threads,
            reason: e.to_string(),
        })
}

/// What a running task may use: the cancel token, and a way to report bytes.
pub struct TaskContext<'a> {
    /// Checked by long tasks at chunk boundaries.
    pub cancel: &'a CancelToken,
    observers: &'a [Arc<dyn Observer>],
}

impl<'a> TaskContext<'a> {
    /// The observers events go to.
    pub fn observers(&self) -> &'a [Arc<dyn Observer>] {
        self.observers
    }

    /// Reports an event to the observers.
    pub fn emit(&self, event: Event) {
        for o in self.observers {
            o.on_event(&event);
        }
    }
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Tasks that ran to completion.
    pub tasks: u64,
    /// Milliseconds during which the memory gate held new tasks back.
    pub paused_ms: u64,
    /// Tasks not run because their outputs were already published.
    pub skipped: u64,
}

/// How the scheduler runs one task: the one implementation outside tests is the
/// registry's dispatch under [`LocalExecutor::execute`], which looks the task's
/// operation up by name and version. The scheduler itself knows only dependencies,
/// priorities, the memory gate and cancellation.
pub(crate) trait Dispatch: Sync {
    /// Runs `task` to completion on the calling thread, or finds it need not run.
    ///
    /// # Errors
    /// The task's error; it cancels the job.
    fn run_task(&self, task: &Task, ctx: &TaskContext<'_>) -> Result<Outcome>;
}

/// What became of a task the scheduler handed to its [`Dispatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It ran to completion.
    Ran,
    /// Its output was published already (a resumed run): it did not run.
    Skipped,
}

/// Runs plans on a rayon thread pool.
pub struct LocalExecutor {
    pool: Arc<rayon::ThreadPool>,
    cancel: CancelToken,
    gate: Option<Arc<dyn MemoryGate>>,
    observers: Vec<Arc<dyn Observer>>,
}

/// Ready-queue entry: releasing work first, then compute, then loads; lower ids first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    kind: TaskKind,
    order: std::cmp::Reverse<TaskId>,
}

struct State {
    ready: BinaryHeap<Ready>,
    waiting: Vec<u32>,
    running: usize,
    done: usize,
    error: Option<Error>,
    paused_since: Option<Instant>,
    paused: Duration,
}

impl LocalExecutor {
    /// An executor on a new pool of `threads` threads.
    ///
    /// # Errors
    /// [`Error::ThreadsRefused`] when the operating system refuses the threads.
    pub fn new(threads: usize, cancel: CancelToken) -> Result<Self> {
        Ok(Self::on_pool(thread_pool(threads)?, cancel))
    }

    /// An executor on an existing pool (a job's, shared with its other parallel work).
    pub fn on_pool(pool: Arc<rayon::ThreadPool>, cancel: CancelToken) -> Self {
        LocalExecutor {
            pool,
            cancel,
            gate: None,
            observers: Vec::new(),
        }
    }

    /// Threads of the executor's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Asks `gate` at every task boundary whether tasks may start.
    pub fn with_gate(mut self, gate: Arc<dyn MemoryGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Sends events to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Schedules every task of `plan`, respecting dependencies, and has `dispatch`
    /// run each: the scheduling core under [`LocalExecutor::execute`], which is how
    /// plans run.
    ///
    /// # Errors
    /// The first task error, the memory gate's error, or [`Error::Cancelled`]; the
    /// plan's own validation errors.
    pub(crate) fn schedule<D: Dispatch + ?Sized>(
        &self,
        plan: &Plan,
        dispatch: &D,
    ) -> Result<RunReport> {
        plan.validate()?;
        let n = plan.tasks.len();
        let dependents = plan.dependents();
        let waiting: Vec<u32> = plan.tasks.iter().map(|t| t.deps.len() as u32).collect();
        let ready = plan
            .tasks
            .iter()
            .filter(|t| t.deps.is_empty())
            .map(|t| Ready {
                kind: t.kind,
                order: std::cmp::Reverse(t.id),
            })
            .collect();
        let state = Mutex::new(State {
            ready,
            waiting,
            running: 0,
            done: 0,
            error: None,
            paused_since: None,
            paused: Duration::ZERO,
        });
        let wake = Condvar::new();
        let lock = || state.lock().unwrap_or_else(|e| e.into_inner());

        let finished = AtomicBool::new(false);
        let worker = || loop {
            // Pick the next task, or leave when there is nothing more to do.
            let id = {
                let mut s = lock();
                loop {
                    if s.error.is_none() {
                        if let Err(e) = self.cancel.check() {
                            s.error = Some(e);
                        }
                    }
                    if s.error.is_some() || s.done == n {
                        wake.notify_all();
                        return;
                    }
                    if !s.ready.is_empty() {
                        // Asked without the lock: the gate may trim the heap and
                        // spill store entries first, which takes a while, and a
                        // worker ending its task must not wait on that to say so
                        // (at 1e8 rows under 1 GiB, both threads stood idle for
                        // 8-15 s in all).
                        drop(s);
                        let answer = self.gate.as_ref().map(|gate| gate.admit());
                        s = lock();
                        match self.admission(&mut s, answer) {
                            Ok(Admission::Run) => break,
                            // Nothing runs that could free memory: start one task
                            // alone rather than wait forever.
                            Ok(Admission::Pause) if s.running == 0 => break,
                            Ok(Admission::Pause) => {}
                            Err(e) => {
                                s.error = Some(e);
                                self.cancel.cancel();
                                continue;
                            }
                        }
                    }
                    // Idle: help with the running tasks' parallel loops, or sleep
                    // until a task ends (briefly, since stolen work arrives unseen).
                    drop(s);
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        let s = lock();
                        drop(
                            wake.wait_timeout(s, IDLE_WAIT)
                                .unwrap_or_else(|e| e.into_inner()),
                        );
                    }
                    s = lock();
                }
                let Some(next) = s.ready.pop() else { continue };
                s.running += 1;
                next.order.0
            };

            let task = &plan.tasks[id as usize];
            let ctx = TaskContext {
                cancel: &self.cancel,
                observers: &self.observers,
            };
            ctx.emit(Event::TaskStarted(id));
            // A panicking task must not leave the others waiting for it forever.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dispatch.run_task(task, &ctx)
            }))
            .unwrap_or_else(|panic| Err(panicked(task, panic.as_ref())));
            // A skipped task is said once, as skipped: counted as finished too, it
            // would count twice in the statistics and the progress.
            match result {
                Ok(Outcome::Ran) => ctx.emit(Event::TaskFinished(id)),
                Ok(Outcome::Skipped) => ctx.emit(Event::TaskSkipped(id)),
                Err(_) => {}
            }

            let mut s = lock();
            s.running -= 1;
            match result {
                Ok(_) => {
                    s.done += 1;
                    for &d in &dependents[id as usize] {
                        s.waiting[d as usize] -= 1;
                        if s.waiting[d as usize] == 0 {
                            let kind = plan.tasks[d as usize].kind;
                            s.ready.push(Ready {
                                kind,
                                order: std::cmp::Reverse(d),
                            });
                        }
                    }
                }
                Err(e) => {
                    if s.error.is_none() {
                        s.error = Some(e);
                    }
                    self.cancel.cancel();
                }
            }
            drop(s);
            wake.notify_all();
        };

        std::thread::scope(|scope| {
            // Between task boundaries, the gate is still asked every 50 ms, so a task
            // that runs long cannot carry the process past the terminate threshold
            // (the gate also spills while it is asked). This watcher is not task
            // work, so it has its own thread rather than a pool thread.
            if let Some(gate) = &self.gate {
                let (state, finished, wake) = (&state, &finished, &wake);
                scope.spawn(move || loop {
                    {
                        let s = state.lock().unwrap_or_else(|e| e.into_inner());
                        if s.error.is_some() || s.done == n {
                            return;
                        }
                        // Workers notify on every task end, so the last one wakes us.
                        let _ = wake.wait_timeout(s, Duration::from_millis(50));
                    }
                    if finished.load(Ordering::Acquire) {
                        return;
                    }
                    if let Err(e) = gate.admit() {
                        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                        if s.error.is_none() {
                            s.error = Some(e);
                        }
                        self.cancel.cancel();
                        wake.notify_all();
                        return;
                    }
                });
            }
            // `in_place_scope` waits on the calling thread, which runs pool work
            // meanwhile when it is one of the pool's own threads.
            let loops = self.pool.current_num_threads().min(n.max(1));
            self.pool.in_place_scope(|pool_scope| {
                for _ in 0..loops {
                    pool_scope.spawn(|_| worker());
                }
            });
            finished.store(true, Ordering::Release);
            wake.notify_all();
        });

        let s = state.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.error {
            return Err(e);
        }
        Ok(RunReport {
            tasks: s.done as u64,
            paused_ms: s.paused.as_millis() as u64,
            skipped: 0,
        })
    }

    /// The gate's answer (`None` without a gate: run), keeping the paused-time
    /// account.
    fn admission(&self, s: &mut State, answer: Option<Result<Admission>>) -> Result<Admission> {
        let Some(answer) = answer else {
            return Ok(Admission::Run);
        };
        let answer = answer?;
        let change = match (answer, s.paused_since) {
            (Admission::Pause, None) => {
                s.paused_since = Some(Instant::now());
                Some(Event::Paused)
            }
            (Admission::Run, Some(since)) => {
                s.paused += since.elapsed();
                s.paused_since = None;
                Some(Event::Resumed)
            }
            _ => None,
        };
        // Only the changes are told (a report draws the paused intervals).
        if let Some(event) = change {
            for o in &self.observers {
                o.on_event(&event);
            }
        }
        Ok(answer)
    }
}

/// The error of a task that panicked, with the panic's message.
fn panicked(task: &Task, panic: &(dyn std::any::Any + Send)) -> Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    Error::TaskPanicked {
        task: task.id,
        op: task.op.name.clone(),
        message,
    }
}

/// A test's dispatch: runs every task with a closure, in place of the registry's
/// (tests schedule plans of placeholder tasks).
#[cfg(test)]
pub(crate) struct TestDispatch<F>(F);

/// The dispatch that runs every task with `f`.
#[cfg(test)]
pub(crate) fn test_dispatch<F>(f: F) -> TestDispatch<F>
where
    F: Fn(&Task, &TaskContext<'_>) -> Result<()> + Sync,
{
    TestDispatch(f)
}

#[cfg(test)]
impl<F> Dispatch for TestDispatch<F>
where
    F: Fn(&Task, &TaskContext<'_>) -> Result<()> + Sync,
{
    fn run_task(&self, task: &Task, ctx: &TaskContext<'_>) -> Result<Outcome> {
        (self.0)(task, ctx).map(|()| Outcome::Ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn plan(specs: &[(TaskKind, Vec<TaskId>)]) -> Plan {
        Plan::placeholders("noop", specs)
    }

    #[test]
    fn dependencies_run_first_and_every_task_runs_once() {
        // A diamond: 0 -> {1, 2} -> 3.
        let p = plan(&[
            (TaskKind::Load, vec![]),
            (TaskKind::Compute, vec![0]),
            (TaskKind::Compute, vec![0]),
            (TaskKind::Release, vec![1, 2]),
        ]);
        let order = Mutex::new(Vec::new());
        let report = LocalExecutor::new(2, CancelToken::new())
            .unwrap()
            .schedule(
                &p,
                &test_dispatch(|t, _| {
                    order.lock().unwrap().push(t.id);
                    Ok(())
                }),
            )
            .unwrap();
        let order = order.into_inner().unwrap();
        assert_eq!(report.tasks, 4);
        assert_eq!(order.len(), 4);
        assert_eq!(order[0], 0);
        assert_eq!(order[3], 3);
    }

    #[test]
    fn releasing_tasks_go_before_new_loads() {
        // Loads 0..4, each followed by a write that depends on it. With one thread a
        // write must run as soon as its load is done, before the next load.
        let mut specs = Vec::new();
        for i in 0..4 {
            specs.push((TaskKind::Load, vec![]));
            specs.push((TaskKind::Release, vec![2 * i]));
        }
        let p = plan(&specs);
        let order = Mutex::new(Vec::new());
        LocalExecutor::new(1, CancelToken::new())
            .unwrap()
            .schedule(
                &p,
                &test_dispatch(|t, _| {
                    order.lock().unwrap().push(t.kind);
                    Ok(())
                }),
            )
            .unwrap();
        let kinds = order.into_inner().unwrap();
        let expected: Vec<TaskKind> = (0..4)
            .flat_map(|_| [TaskKind::Load, TaskKind::Release])
            .collect();
        assert_eq!(kinds, expected);
    }

    #[test]
    fn the_first_error_stops_the_job() {
        let p = plan(&vec![(TaskKind::Load, vec![]); 100]);
        let ran = AtomicUsize::new(0);
        let err = LocalExecutor::new(2, CancelToken::new())
            .unwrap()
            .schedule(
                &p,
                &test_dispatch(|t, _| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    if t.id == 3 {
                        Err(Error::bug("task 3 failed", ""))
                    } else {
                        Ok(())
                    }
                }),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "internal error: task 3 failed");
        assert!(ran.load(Ordering::SeqCst) < 100);
    }

    #[test]
    fn a_panicking_task_fails_the_job_instead_of_hanging_it() {
        let p = plan(&vec![(TaskKind::Load, vec![]); 20]);
        let err = LocalExecutor::new(2, CancelToken::new())
            .unwrap()
            .schedule(
                &p,
                &test_dispatch(|t, _| {
                    if t.id == 5 {
                        panic!("bad index");
                    }
                    Ok(())
                }),
            )
            .unwrap_err();
        assert!(matches!(err, Error::TaskPanicked { task: 5, .. }));
        assert!(
            err.to_string()
                .contains("task 5 (noop) panicked: bad index"),
            "{err}"
        );
    }

    #[test]
    fn cancelling_stops_new_tasks() {
        let p = plan(&vec![(TaskKind::Load, vec![]); 1000]);
        let cancel = CancelToken::new();
        let ran = AtomicUsize::new(0);
        let err = LocalExecutor::new(2, cancel.clone())
            .unwrap()
            .schedule(
                &p,
                &test_dispatch(|_, _| {
                    if ran.fetch_add(1, Ordering::SeqCst) == 10 {
                        cancel.cancel();
                    }
                    Ok(())
                }),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
        assert!(ran.load(Ordering::SeqCst) < 20);
    }
}
