//! Table to table, sorted (`--sort-by`): an external merge sort run as a plan. One
//! `sort_run` task per input partition turns it into sorted runs (spilled when the
//! budget is short); one `merge_runs` task, which depends on all of them, streams the
//! k-way merge into the output.

use std::path::Path;
use std::sync::Mutex;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;

use super::{sinks, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::{Event, JobContext, JobStats};
use crate::frame::ops::sort::{ExternalSort, Run, SortKey};
use crate::plan::{DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskKind};
use crate::storage::parquet::ROW_GROUP_BYTES;
use crate::storage::{open_frame, Format};

/// Key ranges a thread, when the merge is split: a range waiting for its turn holds
/// its finished output, so small ranges keep that small while every thread works.
const RANGES_PER_THREAD: usize = 4;

/// Rows per batch handed to the output writer.
const OUTPUT_BATCH_ROWS: usize = 65_536;

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
    let source = open_frame(src, from, &options.read)?;
    let schema = source.schema();
    // Runs being built on every thread may hold half the limit together.
    let run_bytes = ctx.pool.limit() / (2 * ctx.threads as u64).max(1);
    let sorter = ExternalSort::new(
        schema.clone(),
        keys,
        ctx.pool.clone(),
        ctx.spill.clone(),
        run_bytes,
    )?
    .with_batch_rows(options.read.batch_rows);
    let sink = sinks::frame_sink(to, dst, schema.clone(), options, ctx)?;
    let encoder = sink.partition_encoder();
    let sink = Mutex::new(Some(sink));
    let n = source.num_partitions();

    let mut plan = Plan::new();
    let route = super::Route::new(src, from, dst, to);
    plan.datasets = vec![
        route.src,
        Dataset::new(
            "runs",
            ctx.spill.disk().dir().display(),
            "spill",
            DatasetRole::Intermediate,
        ),
        route.dst,
    ];
    let keys_json: Vec<_> = keys
        .iter()
        .map(|k| serde_json::json!({"column": k.column, "descending": k.descending}))
        .collect();
    for i in 0..n {
        plan.push(Task {
            id: 0,
            op: OpSpec::new("sort_run", serde_json::json!({"keys": keys_json})),
            inputs: vec![DataRef::Partition {
                dataset: "src".into(),
                index: i as u64,
            }],
            output: DataRef::Partition {
                dataset: "runs".into(),
                index: i as u64,
            },
            deps: vec![],
            memory_bytes: run_bytes,
            unit_bytes: source.partition_bytes(i),
            kind: TaskKind::Load,
        });
    }
    plan.push(Task {
        id: 0,
        op: OpSpec::new("merge_runs", serde_json::json!({"keys": keys_json})),
        inputs: (0..n)
            .map(|i| DataRef::Partition {
                dataset: "runs".into(),
                index: i as u64,
            })
            .collect(),
        output: DataRef::Whole {
            dataset: "dst".into(),
        },
        deps: (0..n as u32).collect(),
        memory_bytes: 0,
        unit_bytes: 0,
        kind: TaskKind::Release,
    });

    // Keep sorted runs in memory when the whole input, decoded and sorted, fits
    // comfortably; spill only when it does not.
    let input_bytes: u64 = (0..n).map(|i| source.partition_bytes(i)).sum();
    let in_memory = n == 1 || input_bytes.saturating_mul(4) < ctx.pool.limit() / 2;
    let runs: Vec<Mutex<Vec<Run>>> = (0..n).map(|_| Mutex::new(Vec::new())).collect();
    let rows = Mutex::new(0u64);
    ctx.progress
        .start(plan.tasks.len() as u64, false, "sort tasks");
    let report = ctx.executor().run(&plan, |task, tctx| {
        if (task.id as usize) < n {
            let i = task.id as usize;
            let made = sorter.make_runs(source.read_partition(i)?, in_memory)?;
            tctx.emit(Event::BytesRead(source.partition_bytes(i)));
            *runs[i].lock().unwrap_or_else(|e| e.into_inner()) = made;
            return Ok(());
        }
        let all: Vec<Run> = runs
            .iter()
            .flat_map(|r| std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner())))
            .collect();
        let mut guard = sink.lock().unwrap_or_else(|e| e.into_inner());
        let out = guard
            .as_mut()
            .ok_or_else(|| Error::Internal("sort output already finished".into()))?;
        // With a sink that encodes in parallel (Parquet) and runs that can be cut at
        // sampled keys, key ranges merge and encode on every thread, and their row
        // groups are appended in key order.
        // Merging ranges in parallel holds, per thread, every run's current batch, an
        // open row group and a finished one: only when that fits a third of the limit.
        let ranges = sorter.split(&all, RANGES_PER_THREAD * ctx.threads)?;
        let row_group_cap =
            (ctx.pool.limit() / (4 * (ctx.threads as u64 + 1))).min(ROW_GROUP_BYTES as u64);
        let parallel_bytes = ctx.threads as u64 * (sorter.merge_bytes(&all)? + 2 * row_group_cap);
        if let (Some(encoder), true) = (
            &encoder,
            ranges.len() > 1 && parallel_bytes <= ctx.pool.limit() / 3,
        ) {
            let merged_rows = std::sync::atomic::AtomicU64::new(0);
            crate::exec::for_each_ordered_with(
                ranges.len(),
                ctx.threads,
                ctx.threads,
                1,
                tctx.cancel,
                |p, emit| {
                    let stream = sorter.merge_range(&all, &ranges[p])?;
                    let n = encoder.encode_partition(Box::new(stream), emit)?;
                    merged_rows.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                },
                |_, piece| out.write_encoded(piece),
            )?;
            *rows.lock().unwrap_or_else(|e| e.into_inner()) = merged_rows.into_inner();
            return Ok(());
        }
        // Otherwise the merge is one thread's work; encoding the output runs on
        // another, fed through a short queue.
        let mut count = 0u64;
        let schema = &schema;
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(4);
            let writer = scope.spawn(move || -> Result<()> {
                // Merged batches are small; encoders do better with larger ones.
                let mut pending: Vec<RecordBatch> = Vec::new();
                let mut pending_rows = 0usize;
                for batch in rx {
                    pending_rows += batch.num_rows();
                    pending.push(batch);
                    if pending_rows >= OUTPUT_BATCH_ROWS {
                        out.write(&concat_batches(schema, &pending)?)?;
                        pending.clear();
                        pending_rows = 0;
                    }
                }
                if !pending.is_empty() {
                    out.write(&concat_batches(schema, &pending)?)?;
                }
                Ok(())
            });
            let merged = sorter.merge(all, |batch| {
                tctx.cancel.check()?;
                count += batch.num_rows() as u64;
                tx.send(batch).map_err(|_| Error::Cancelled)
            });
            drop(tx);
            let written = writer
                .join()
                .map_err(|_| Error::Internal("sort output writer panicked".into()))?;
            // A writer error closes the queue, which the merge sees as a cancel:
            // report the writer's error, the cause.
            written.and(merged)
        })?;
        *rows.lock().unwrap_or_else(|e| e.into_inner()) = count;
        Ok(())
    })?;
    JobStats::add(&ctx.stats.paused_ms, report.paused_ms);
    let sink = sink
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .ok_or_else(|| Error::Internal("no sort output".into()))?;
    sink.finish()?;
    Ok(rows.into_inner().unwrap_or_else(|e| e.into_inner()))
}
