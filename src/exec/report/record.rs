//! The recorder: what a job's report draws, kept as the job runs. It observes the
//! executor's task events (on the thread that runs each task, so bytes and spills
//! are charged to the task running on the thread they happen on) and the memory
//! layer's readings and spills. One lock, taken for a few hundred nanoseconds an
//! event: a task emits a handful of events and the monitor reads memory at task
//! boundaries and at most every 50 ms, so the cost is far below the tasks' own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime};

use crate::memory::{MemoryEvent, MemoryPool};
use crate::plan::{Event, Observer, Plan, TaskId};

/// Readings closer together than this are merged into one (keeping the highest),
/// so that a pause, when the gate is asked every few milliseconds, does not grow
/// the log without bound.
const MIN_SAMPLE_GAP: Duration = Duration::from_millis(5);

/// One task of the plan, as the report names it.
#[derive(Debug, Clone)]
pub(super) struct PlanTask {
    /// Index into [`Log::ops`].
    pub op: usize,
    pub inputs: Vec<String>,
    pub output: String,
}

/// What one task did.
#[derive(Debug, Clone, Default)]
pub(super) struct TaskRun {
    pub row: usize,
    pub start: Duration,
    pub end: Option<Duration>,
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub spilled_bytes: u64,
    pub read_back_bytes: u64,
    pub peak_reserved_bytes: u64,
    pub skipped: bool,
}

/// A memory reading.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    pub at: Duration,
    pub rss_bytes: u64,
    pub reserved_bytes: u64,
    /// Bytes spilled and read back so far.
    pub spilled_bytes: u64,
    pub read_back_bytes: u64,
}

/// A spill or a read back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    pub at: Duration,
    pub bytes: u64,
    pub row: Option<usize>,
    pub task: Option<TaskId>,
}

/// Everything recorded, behind the recorder's lock.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// Operation names, in order of first appearance in the plan.
    pub ops: Vec<String>,
    /// The plan's tasks by id (empty until [`Recorder::plan`]).
    pub plan: Vec<PlanTask>,
    /// Row labels: an executor thread (a task started inside another task's wait on
    /// the same thread gets a row of its own, so bars on a row never overlap).
    pub rows: Vec<String>,
    row_of: HashMap<(ThreadId, usize), usize>,
    /// Tasks running on each thread, innermost last.
    running: HashMap<ThreadId, Vec<TaskId>>,
    pub tasks: HashMap<TaskId, TaskRun>,
    pub readings: Vec<Reading>,
    /// Paused intervals; the last may still be open.
    pub pauses: Vec<(Duration, Option<Duration>)>,
    pub spills: Vec<Mark>,
    pub read_backs: Vec<Mark>,
    spilled_total: u64,
    read_back_total: u64,
    /// The plan's stages as `explain` projects them.
    pub summary: Option<crate::plan::PlanSummary>,
    /// What the log holds, reserved on the job's pool before it grows (none for a
    /// log built from reports that exist already: Dask's task results).
    held: Option<crate::memory::Reservation>,
    /// The pool had no room for more: details recorded since were dropped.
    pub truncated: bool,
    /// The pool had no room for the plan's names: tasks are known by their
    /// operation alone.
    pub names_dropped: bool,
}

/// Bytes a task's record takes in the log, with its map slot.
const TASK_RECORD_BYTES: u64 = std::mem::size_of::<TaskRun>() as u64 + 32;
/// Bytes a reading or a mark takes.
const SAMPLE_BYTES: u64 = std::mem::size_of::<Reading>() as u64;

impl Log {
    /// Reserves `bytes` more for the log before it grows; false (and the log marked
    /// truncated) when the pool has no room: the job comes first.
    fn admit(&mut self, bytes: u64) -> bool {
        if self.truncated {
            return false;
        }
        let ok = self.reserve(bytes);
        self.truncated = !ok;
        ok
    }

    /// Reserves `bytes` more for the log; false when the pool has no room.
    fn reserve(&mut self, bytes: u64) -> bool {
        self.held
            .as_mut()
            .is_none_or(|held| held.try_grow(bytes).is_ok())
    }

    /// The row labelled `label`, added when new.
    pub(super) fn row(&mut self, label: &str) -> usize {
        match self.rows.iter().position(|r| r == label) {
            Some(i) => i,
            None => {
                self.rows.push(label.to_string());
                self.rows.len() - 1
            }
        }
    }

    /// The index of operation `name`, added when new.
    pub(super) fn op(&mut self, name: &str) -> usize {
        match self.ops.iter().position(|o| o == name) {
            Some(i) => i,
            None => {
                self.ops.push(name.to_string());
                self.ops.len() - 1
            }
        }
    }

    /// Appends `other`, which started `offset` after this log's start: its times
    /// move by `offset`, its task ids follow this log's, its rows and operations
    /// join this log's by name, and its spilled totals add to this log's.
    pub(super) fn append(&mut self, other: Log, offset: Duration) {
        let first_id = self.plan.len() as TaskId;
        let ops: Vec<usize> = other.ops.iter().map(|o| self.op(o)).collect();
        let rows: Vec<usize> = other.rows.iter().map(|r| self.row(r)).collect();
        let row = |r: usize| rows.get(r).copied().unwrap_or(r);
        self.plan.extend(other.plan.into_iter().map(|t| PlanTask {
            op: ops.get(t.op).copied().unwrap_or(t.op),
            ..t
        }));
        for (id, run) in other.tasks {
            self.tasks.insert(
                first_id + id,
                TaskRun {
                    row: row(run.row),
                    start: run.start + offset,
                    end: run.end.map(|e| e + offset),
                    ..run
                },
            );
        }
        let (spilled, read_back) = (self.spilled_total, self.read_back_total);
        self.readings
            .extend(other.readings.into_iter().map(|r| Reading {
                at: r.at + offset,
                spilled_bytes: r.spilled_bytes + spilled,
                read_back_bytes: r.read_back_bytes + read_back,
                ..r
            }));
        self.pauses.extend(
            other
                .pauses
                .into_iter()
                .map(|(a, b)| (a + offset, b.map(|b| b + offset))),
        );
        let mark = |m: Mark| Mark {
            at: m.at + offset,
            row: m.row.map(row),
            task: m.task.map(|t| first_id + t),
            ..m
        };
        self.spills.extend(other.spills.into_iter().map(mark));
        self.read_backs
            .extend(other.read_backs.into_iter().map(mark));
        self.spilled_total += other.spilled_total;
        self.read_back_total += other.read_back_total;
        self.summary = self.summary.take().or(other.summary);
        self.truncated |= other.truncated;
        self.names_dropped |= other.names_dropped;
    }

    /// Readings, pauses and marks in time order (parts merged side by side
    /// interleave).
    pub(super) fn sort_by_time(&mut self) {
        self.readings.sort_by_key(|r| r.at);
        self.pauses.sort_by_key(|p| p.0);
        self.spills.sort_by_key(|m| m.at);
        self.read_backs.sort_by_key(|m| m.at);
    }

    /// The task running on this thread, if any, and its row.
    fn current(&self, thread: ThreadId) -> Option<(TaskId, usize)> {
        let id = *self.running.get(&thread)?.last()?;
        Some((id, self.tasks.get(&id)?.row))
    }

    fn mark(&mut self, at: Duration, bytes: u64, spill: bool) {
        let current = self.current(std::thread::current().id());
        if let Some((id, _)) = current {
            if let Some(task) = self.tasks.get_mut(&id) {
                if spill {
                    task.spilled_bytes += bytes;
                } else {
                    task.read_back_bytes += bytes;
                }
            }
        }
        let mark = Mark {
            at,
            bytes,
            row: current.map(|(_, row)| row),
            task: current.map(|(id, _)| id),
        };
        // Totals are kept whatever happens; a mark only with room for it.
        let keep = self.admit(SAMPLE_BYTES);
        if spill {
            self.spilled_total += bytes;
            if keep {
                self.spills.push(mark);
            }
        } else {
            self.read_back_total += bytes;
            if keep {
                self.read_backs.push(mark);
            }
        }
    }

    fn reading(&mut self, at: Duration, rss_bytes: u64, reserved_bytes: u64) {
        for stack in self.running.values() {
            for id in stack {
                if let Some(task) = self.tasks.get_mut(id) {
                    task.peak_reserved_bytes = task.peak_reserved_bytes.max(reserved_bytes);
                }
            }
        }
        let (spilled_bytes, read_back_bytes) = (self.spilled_total, self.read_back_total);
        if let Some(last) = self.readings.last_mut() {
            if at.saturating_sub(last.at) < MIN_SAMPLE_GAP {
                last.rss_bytes = last.rss_bytes.max(rss_bytes);
                last.reserved_bytes = last.reserved_bytes.max(reserved_bytes);
                last.spilled_bytes = spilled_bytes;
                last.read_back_bytes = read_back_bytes;
                return;
            }
        }
        if !self.admit(SAMPLE_BYTES) {
            return;
        }
        self.readings.push(Reading {
            at,
            rss_bytes,
            reserved_bytes,
            spilled_bytes,
            read_back_bytes,
        });
    }
}

/// Records a job for its report: an [`Observer`] of the executor, and the
/// listener of the job's memory events ([`Recorder::on_memory`]).
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    /// The same moment on the wall clock: parts of a report recorded apart (several
    /// jobs, Dask workers) are placed on one time line by it.
    started_at: SystemTime,
    pool: MemoryPool,
    log: Mutex<Log>,
}

impl Recorder {
    /// A recorder of a job whose clock starts now, reading reserved bytes from `pool`.
    pub fn new(pool: MemoryPool) -> Self {
        let log = Log {
            held: Some(pool.reserve("report recorder")),
            ..Log::default()
        };
        Recorder {
            started: Instant::now(),
            started_at: SystemTime::now(),
            pool,
            log: Mutex::new(log),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Learns the plan the job runs: each task's operation, inputs and output.
    pub fn plan(&self, plan: &Plan) {
        let mut log = self.lock();
        let mut index: HashMap<String, usize> = log
            .ops
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        // The plan's names, reserved first: without room, tasks are known by their
        // operation alone.
        let names: u64 = plan
            .tasks
            .iter()
            .map(|t| {
                let refs = t.inputs.iter().chain(std::iter::once(&t.output));
                refs.map(|r| 24 + r.store_name().len() as u64).sum::<u64>() + 32
            })
            .sum();
        let detailed = log.reserve(names);
        log.names_dropped = !detailed;
        let mut tasks = Vec::with_capacity(plan.tasks.len());
        for task in &plan.tasks {
            let next = index.len();
            let op = *index.entry(task.op.name.clone()).or_insert(next);
            if op == log.ops.len() {
                log.ops.push(task.op.name.clone());
            }
            tasks.push(PlanTask {
                op,
                inputs: if detailed {
                    task.inputs.iter().map(|r| r.store_name()).collect()
                } else {
                    Vec::new()
                },
                output: if detailed {
                    task.output.store_name()
                } else {
                    String::new()
                },
            });
        }
        log.plan = tasks;
    }

    /// Keeps the plan's summary (`explain`'s stages), shown beside the job.
    pub fn summary(&self, summary: crate::plan::PlanSummary) {
        self.lock().summary = Some(summary);
    }

    /// Records that every task of the plan was skipped (a plan that had run to the
    /// end already).
    pub fn skip_all(&self) {
        let mut log = self.lock();
        let n = log.plan.len() as TaskId;
        for id in 0..n {
            log.tasks.insert(
                id,
                TaskRun {
                    skipped: true,
                    ..TaskRun::default()
                },
            );
        }
    }

    /// Takes a memory event (the listener set on the job's spill store).
    pub fn on_memory(&self, event: MemoryEvent) {
        let mut log = self.lock();
        let at = self.started.elapsed();
        match event {
            MemoryEvent::Sample {
                rss_bytes,
                reserved_bytes,
            } => log.reading(at, rss_bytes, reserved_bytes),
            MemoryEvent::Spilled(bytes) => log.mark(at, bytes, true),
            MemoryEvent::ReadBack(bytes) => log.mark(at, bytes, false),
        }
    }

    /// A last reading at the end of the job, and what was recorded, with the time
    /// it covers; open pauses and tasks end now.
    pub(super) fn finish(&self, rss_bytes: u64) -> (Log, Duration, SystemTime) {
        let mut log = self.lock();
        let now = self.started.elapsed();
        log.reading(now + MIN_SAMPLE_GAP, rss_bytes, self.pool.reserved());
        if let Some((_, end @ None)) = log.pauses.last_mut() {
            *end = Some(now);
        }
        (std::mem::take(&mut *log), now, self.started_at)
    }
}

impl Observer for Recorder {
    fn on_event(&self, event: &Event) {
        let thread = std::thread::current().id();
        match event {
            Event::TaskStarted(id) => {
                let reserved = self.pool.reserved();
                let mut log = self.lock();
                let at = self.started.elapsed();
                let depth = log.running.get(&thread).map_or(0, Vec::len);
                let next = log.rows.len();
                let row = *log.row_of.entry((thread, depth)).or_insert(next);
                if row == next {
                    let name = std::thread::current()
                        .name()
                        .map_or_else(|| format!("thread {next}"), str::to_string);
                    log.rows.push(if depth == 0 {
                        name
                    } else {
                        format!("{name} (nested {depth})")
                    });
                }
                log.running.entry(thread).or_default().push(*id);
                if !log.admit(TASK_RECORD_BYTES) {
                    return;
                }
                log.tasks.insert(
                    *id,
                    TaskRun {
                        row,
                        start: at,
                        peak_reserved_bytes: reserved,
                        ..TaskRun::default()
                    },
                );
            }
            Event::TaskFinished(id) => {
                let reserved = self.pool.reserved();
                let mut log = self.lock();
                let at = self.started.elapsed();
                if let Some(stack) = log.running.get_mut(&thread) {
                    stack.retain(|t| t != id);
                }
                if let Some(task) = log.tasks.get_mut(id) {
                    task.end = Some(at);
                    task.peak_reserved_bytes = task.peak_reserved_bytes.max(reserved);
                }
            }
            Event::TaskSkipped(id) => {
                let mut log = self.lock();
                if let Some(stack) = log.running.get_mut(&thread) {
                    stack.retain(|t| t != id);
                }
                if let Some(task) = log.tasks.get_mut(id) {
                    task.skipped = true;
                }
            }
            Event::BytesRead(n) | Event::BytesWritten(n) => {
                let mut log = self.lock();
                if let Some((id, _)) = log.current(thread) {
                    if let Some(task) = log.tasks.get_mut(&id) {
                        if matches!(event, Event::BytesRead(_)) {
                            task.read_bytes += n;
                        } else {
                            task.written_bytes += n;
                        }
                    }
                }
            }
            Event::BytesSpilled(n) => {
                let mut log = self.lock();
                let at = self.started.elapsed();
                log.mark(at, *n, true);
            }
            Event::Paused => {
                let mut log = self.lock();
                let at = self.started.elapsed();
                log.pauses.push((at, None));
            }
            Event::Resumed => {
                let mut log = self.lock();
                let at = self.started.elapsed();
                if let Some((_, end @ None)) = log.pauses.last_mut() {
                    *end = Some(at);
                }
            }
            _ => {}
        }
    }
}
