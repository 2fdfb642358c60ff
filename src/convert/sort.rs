//! Table to table, sorted (`--sort-by`): an external merge sort run as a plan.
//!
//! - `sort_run` (one a partition) turns a partition into sorted runs, spilled when
//!   the budget is short.
//! - `merge_range` (a few a thread) merges the rows of every run whose keys fall in
//!   one key range and encodes them for the output. The ranges are cut once all runs
//!   exist, at keys sampled from them; when they cannot be cut (keys of several
//!   columns or of variable width), or merging several at once would not fit the
//!   budget, the first range is the whole merge, streamed to the output, and the
//!   others have nothing to do.
//! - `append_range` (one a range, chained) writes a range's output after the range
//!   before it. `merge_range` `p` also depends on `append_range` `p - window`, so
//!   only a few ranges are merged ahead of the writer.
//!
//! A range whose predecessors are all written streams its output straight into the
//! file; the others hold theirs or wait for their turn (see [`OrderedWriter`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;

use super::ordered::OrderedWriter;
use super::{sinks, ConvertOptions, Route};
use crate::error::{Error, Result};
use crate::exec::{CancelToken, Event, JobContext, JobStats, TaskContext};
use crate::frame::ops::sort::{ExternalSort, KeyRange, Run, SortKey};
use crate::memory::Reservation;
use crate::plan::{DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskId, TaskKind};
use crate::storage::frame::{FrameSink, FrameSource};
use crate::storage::parquet::ROW_GROUP_BYTES;
use crate::storage::{open_frame, Format};

/// Key ranges a thread: a range waiting for its turn holds its encoded output, so
/// small ranges keep that small while every thread works.
const RANGES_PER_THREAD: usize = 8;

/// Rows per batch handed to the output writer, at most.
const OUTPUT_BATCH_ROWS: usize = 65_536;

/// How long the merge waits for the output writer to free memory before it looks
/// again (the writer wakes it sooner); cancellation is checked in between.
const OUTPUT_WAIT: Duration = Duration::from_millis(10);

/// Converts the table at `src` into a new `to` file at `dst`, sorted by `keys`;
/// returns the row count.
pub(super) fn run(
    src: &Path,
    from: Format,
    dst: &Path,
    to: Format,
    keys: &[SortKey],
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    // Runs being built on every thread may hold half the limit together.
    let run_bytes = ctx.pool.limit() / (2 * ctx.threads as u64).max(1);
    let sorter_of = |source: &dyn FrameSource| {
        ExternalSort::new(
            source.schema(),
            keys,
            ctx.pool.clone(),
            ctx.spill.clone(),
            run_bytes,
        )
    };
    let mut read = options.read.clone();
    let mut source = open_frame(src, from, &read)?;
    // The reader's batches are part of what a run holds: as many rows as the run
    // budget allows a few of, from the schema's row width. (Reopened to read them so:
    // only under small limits.)
    let rows = sorter_of(source.as_ref())?.read_batch_rows();
    if rows < read.batch_rows {
        read.batch_rows = rows;
        source = open_frame(src, from, &read)?;
    }
    let schema = source.schema();
    let sorter = sorter_of(source.as_ref())?.with_batch_rows(read.batch_rows);
    // In memory at once: a row group being encoded on every thread, and the one
    // being written.
    let held_row_groups = ctx.threads + 1;
    let row_group_cap =
        (ctx.pool.limit() / (4 * held_row_groups as u64)).min(ROW_GROUP_BYTES as u64);
    let sink = sinks::frame_sink(to, dst, schema.clone(), options, ctx, held_row_groups)?;
    let encoder = sink.partition_encoder();
    let n = source.num_partitions();
    let ranges = RANGES_PER_THREAD * ctx.threads;
    let units: Vec<u64> = (0..n).map(|i| source.partition_bytes(i)).collect();
    let plan = sort_plan(
        &Route::new(src, from, dst, to),
        keys,
        &units,
        run_bytes,
        ranges,
        ctx,
    );

    // Keep sorted runs in memory when the whole input, decoded and sorted, fits
    // comfortably; spill only when it does not.
    let input_bytes: u64 = units.iter().sum();
    let in_memory = n == 1 || input_bytes.saturating_mul(4) < ctx.pool.limit() / 2;
    let made: Vec<Mutex<Vec<Run>>> = (0..n).map(|_| Mutex::new(Vec::new())).collect();
    let merge: Mutex<Option<Arc<Merge>>> = Mutex::new(None);
    let writer = OrderedWriter::new(
        sink,
        |sink: &mut Box<dyn FrameSink>, piece| sink.write_encoded(piece),
        ranges,
        ctx.pool.limit() / 6,
    );
    let rows = AtomicU64::new(0);
    ctx.progress
        .start(plan.tasks.len() as u64, false, "sort tasks");
    let report = ctx.executor().run(&plan, |task, tctx| {
        let id = task.id as usize;
        if id < n {
            let runs = sorter.make_runs(source.read_partition(id)?, in_memory)?;
            tctx.emit(Event::BytesRead(units[id]));
            *lock(&made[id]) = runs;
            ctx.progress.advance(1);
            return Ok(());
        }
        let p = (id - n) / 2;
        if task.kind == TaskKind::Release {
            // append_range: whatever is next in line and finished goes out now.
            ctx.progress.advance(1);
            return writer.advance();
        }
        // The first merge task to run cuts the key ranges, once every run exists.
        let merge = {
            let mut slot = lock(&merge);
            match &*slot {
                Some(m) => m.clone(),
                None => {
                    let runs: Vec<Run> = made
                        .iter()
                        .flat_map(|r| std::mem::take(&mut *lock(r)))
                        .collect();
                    let m =
                        Merge::new(&sorter, runs, ranges, encoder.is_some(), row_group_cap, ctx)?;
                    slot.insert(Arc::new(m)).clone()
                }
            }
        };
        let merge = merge.as_ref();
        let result = match (merge.ranges.get(p), &encoder) {
            (None, _) => writer.skip(p),
            (Some(range), Some(encoder)) if merge.ranges.len() > 1 => {
                let runs = merge.shared_runs()?;
                let mut part = writer.part(p, &ctx.pool, format!("sorted range {p}"));
                let merged = encoder.encode_partition(
                    Box::new(sorter.merge_range(&runs, range)?),
                    &mut |piece| {
                        let bytes = piece.bytes;
                        part.emit(piece, bytes, tctx.cancel)
                    },
                )?;
                rows.fetch_add(merged, Ordering::Relaxed);
                part.finish()
            }
            (Some(_), _) => {
                let merged = writer.with_sink(p, |sink| {
                    merge_all(
                        &sorter,
                        merge.take_runs()?,
                        sink.as_mut(),
                        row_group_cap,
                        ctx,
                        tctx,
                    )
                })?;
                rows.fetch_add(merged, Ordering::Relaxed);
                Ok(())
            }
        };
        ctx.progress.advance(1);
        result
    })?;
    JobStats::add(&ctx.stats.paused_ms, report.paused_ms);
    writer.into_sink()?.finish()?;
    Ok(rows.into_inner())
}

/// The plan: `sort_run` `i` is task `i`; `merge_range` `p` is task `n + 2p` and its
/// `append_range` task `n + 2p + 1`.
fn sort_plan(
    route: &Route,
    keys: &[SortKey],
    units: &[u64],
    run_bytes: u64,
    ranges: usize,
    ctx: &JobContext,
) -> Plan {
    let n = units.len();
    let window = ctx.threads + 1;
    let mut plan = Plan::new();
    plan.datasets = vec![
        route.src.clone(),
        Dataset::new(
            "runs",
            ctx.spill.disk().dir().display(),
            "spill",
            DatasetRole::Intermediate,
        ),
        Dataset::new("ranges", "memory", "memory", DatasetRole::Intermediate),
        route.dst.clone(),
    ];
    let keys_json: Vec<_> = keys
        .iter()
        .map(|k| serde_json::json!({"column": k.column, "descending": k.descending}))
        .collect();
    let part = |dataset: &str, i: usize| DataRef::Partition {
        dataset: dataset.into(),
        index: i as u64,
    };
    for (i, &unit) in units.iter().enumerate() {
        plan.push(Task {
            inputs: vec![part("src", i)],
            memory_bytes: run_bytes,
            unit_bytes: unit,
            ..Task::new(
                OpSpec::new("sort_run", serde_json::json!({"keys": keys_json})),
                part("runs", i),
                TaskKind::Load,
            )
        });
    }
    for p in 0..ranges {
        let merge = (n + 2 * p) as TaskId;
        let mut deps: Vec<TaskId> = (0..n as TaskId).collect();
        if p >= window {
            deps.push(merge - 2 * window as TaskId + 1);
        }
        plan.push(Task {
            inputs: (0..n).map(|i| part("runs", i)).collect(),
            deps,
            ..Task::new(
                OpSpec::new(
                    "merge_range",
                    serde_json::json!({"keys": keys_json, "range": p, "ranges": ranges}),
                ),
                part("ranges", p),
                TaskKind::Compute,
            )
        });
        let mut deps = vec![merge];
        if p > 0 {
            deps.push(merge - 1);
        }
        plan.push(Task {
            inputs: vec![part("ranges", p)],
            deps,
            ..Task::new(
                OpSpec::new("append_range", serde_json::json!({"range": p})),
                DataRef::Whole {
                    dataset: "dst".into(),
                },
                TaskKind::Release,
            )
        });
    }
    plan
}

/// The runs of the whole input and the key ranges their merge is cut into.
struct Merge {
    runs: Mutex<Option<Arc<Vec<Run>>>>,
    ranges: Vec<KeyRange>,
}

impl Merge {
    /// Cuts `runs` into up to `parts` key ranges, or one range (the whole merge) when
    /// they cannot be cut or when merging on every thread would not fit a third of
    /// the limit: every thread then holds a batch of every run and a row group.
    fn new(
        sorter: &ExternalSort,
        runs: Vec<Run>,
        parts: usize,
        can_encode: bool,
        row_group_cap: u64,
        ctx: &JobContext,
    ) -> Result<Self> {
        let mut ranges = sorter.split(&runs, if can_encode { parts } else { 1 })?;
        let parallel_bytes = ctx.threads as u64 * (sorter.merge_bytes(&runs) + row_group_cap);
        if parallel_bytes > ctx.pool.limit() / 3 {
            ranges.truncate(1);
            ranges[0] = KeyRange {
                lower: None,
                upper: None,
            };
        }
        Ok(Merge {
            runs: Mutex::new(Some(Arc::new(runs))),
            ranges,
        })
    }

    /// The runs, shared by the range merges.
    fn shared_runs(&self) -> Result<Arc<Vec<Run>>> {
        lock(&self.runs)
            .clone()
            .ok_or_else(|| Error::Internal("sorted runs already merged".into()))
    }

    /// The runs, for the one merge of everything (which may merge them in passes).
    fn take_runs(&self) -> Result<Vec<Run>> {
        lock(&self.runs)
            .take()
            .map(Arc::try_unwrap)
            .transpose()
            .map_err(|_| Error::Internal("sorted runs are still shared".into()))
            .map(Option::unwrap_or_default)
    }
}

/// Merges every run into `sink` on this thread, encoding on another, fed groups of
/// merged batches through a short queue; returns the rows.
///
/// The output path holds at most a third of the limit ([`Outbox`]), all reserved
/// before it is allocated: the group being gathered, one queued, one being written and
/// its concatenated copy, groups of at most a quarter of that (and half a row group,
/// `row_group_cap`). The merge itself holds its own reservation (at most three
/// eighths of the limit, the merge budget of one thread) and the sink its row groups
/// (an eighth at most): together, less than the limit.
fn merge_all(
    sorter: &ExternalSort,
    runs: Vec<Run>,
    sink: &mut dyn FrameSink,
    row_group_cap: u64,
    ctx: &JobContext,
    tctx: &TaskContext<'_>,
) -> Result<u64> {
    let schema = sorter.schema().clone();
    let mut count = 0u64;
    let out = Outbox {
        held: Mutex::new(ctx.pool.reserve("sort output")),
        freed: Condvar::new(),
        cap: ctx.pool.limit() / 3,
    };
    let group_cap = (row_group_cap / 2).min(out.cap / 4).max(1);
    let out = &out;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<RecordBatch>, u64)>(1);
        let writer = scope.spawn(move || -> Result<()> {
            for (group, bytes) in rx {
                // Encoders do better with large batches: one concatenated copy when
                // there is room for it, else the pieces one by one.
                if group.len() > 1 && out.try_take(bytes) {
                    let whole = concat_batches(&schema, &group)?;
                    drop(group);
                    out.give(bytes);
                    sink.write(&whole)?;
                } else {
                    for batch in &group {
                        sink.write(batch)?;
                    }
                }
                out.give(bytes);
            }
            Ok(())
        });
        let mut pending: Vec<RecordBatch> = Vec::new();
        let (mut pending_bytes, mut pending_rows) = (0u64, 0usize);
        let send = |pending: &mut Vec<RecordBatch>, bytes: &mut u64, rows: &mut usize| {
            *rows = 0;
            tx.send((std::mem::take(pending), std::mem::take(bytes)))
                .map_err(|_| Error::Cancelled)
        };
        let merged = sorter.merge(runs, |batch| {
            tctx.cancel.check()?;
            count += batch.num_rows() as u64;
            let bytes = batch.get_array_memory_size() as u64;
            // The merged batch is reserved as the output's before the merge makes
            // the next one: when there is no room, the writer frees some (groups
            // queued or being written), or the group gathered goes to it now.
            loop {
                if out.try_take(bytes) {
                    break;
                }
                if out.size() > pending_bytes {
                    out.wait(tctx.cancel)?;
                } else if !pending.is_empty() {
                    send(&mut pending, &mut pending_bytes, &mut pending_rows)?;
                } else {
                    // Nothing to wait for: the batch alone passes the output's share,
                    // which the pool may still hold; else this is the refusal.
                    out.grow_checked(bytes)?;
                    break;
                }
            }
            pending_bytes += bytes;
            pending_rows += batch.num_rows();
            pending.push(batch);
            if pending_rows >= OUTPUT_BATCH_ROWS || pending_bytes >= group_cap {
                send(&mut pending, &mut pending_bytes, &mut pending_rows)?;
            }
            Ok(())
        });
        let merged = merged.and_then(|()| {
            if pending.is_empty() {
                Ok(())
            } else {
                send(&mut pending, &mut pending_bytes, &mut pending_rows)
            }
        });
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| Error::Internal("sort output writer panicked".into()))?;
        // A writer error closes the queue, which the merge sees as a cancel: report
        // the writer's error, the cause.
        written.and(merged)
    })?;
    Ok(count)
}

/// The memory of a merge's output path: one reservation, checked against its own
/// cap and the pool before anything is added, shrunk by the writer as it writes.
struct Outbox {
    held: Mutex<Reservation>,
    /// Notified whenever the writer frees memory.
    freed: Condvar,
    cap: u64,
}

impl Outbox {
    /// Reserves `bytes` if the cap and the pool have room.
    fn try_take(&self, bytes: u64) -> bool {
        let mut held = lock(&self.held);
        held.size() + bytes <= self.cap && held.try_grow(bytes).is_ok()
    }

    /// Reserves `bytes` past the cap if the pool has room.
    fn grow_checked(&self, bytes: u64) -> Result<()> {
        lock(&self.held).try_grow(bytes)
    }

    /// Releases `bytes` and wakes a waiting merge.
    fn give(&self, bytes: u64) {
        lock(&self.held).shrink(bytes);
        self.freed.notify_all();
    }

    fn size(&self) -> u64 {
        lock(&self.held).size()
    }

    /// Waits a little for the writer to free memory.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when the job is cancelled.
    fn wait(&self, cancel: &CancelToken) -> Result<()> {
        cancel.check()?;
        let held = lock(&self.held);
        drop(
            self.freed
                .wait_timeout(held, OUTPUT_WAIT)
                .map_or_else(|e| e.into_inner().0, |r| r.0),
        );
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The route as a plan (see [`super::job`]); `None` while it still runs by closures.
///
/// # Errors
/// What opening the source and checking the options fail with.
pub(super) fn plan(_c: &super::job::Conversion<'_>) -> Result<Option<crate::plan::Plan>> {
    Ok(None)
}
