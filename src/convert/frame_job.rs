//! Frame queries as jobs: a [`LogicalPlan`] lowered to tasks
//! ([`crate::frame::physical`]) and run, its result either held on the pool and
//! handed back as record batches, or written to a table file, published
//! atomically.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::array_job::scratch_workdir;
use super::job::{finish_with_publish, run_plan_then, OnFailure, PlanSizing, STAGED_OUTPUT};
use super::{output_spec, sinks, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::{JobContext, JobStats};
use crate::frame::logical::LogicalPlan;
use crate::frame::ops::aggregate::write_in_finals;
use crate::frame::physical::{lower, Lowered, QuerySizing};
use crate::frame::write::{add_published_output, add_table_output, read_window, OUTPUT};
use crate::plan::{check_memory, Entry, Plan};
use crate::storage::atomic::{plan_workdir, AtomicOutput};
use crate::storage::Format;

fn sizing(s: PlanSizing) -> QuerySizing {
    QuerySizing {
        threads: s.threads,
        memory_limit: s.memory_limit,
    }
}

/// The plan computing `query` into the store, and its result's parts.
///
/// # Errors
/// As [`lower`].
pub fn plan_query(query: &LogicalPlan, s: PlanSizing) -> Result<(Plan, Lowered)> {
    let mut plan = Plan::new();
    let lowered = lower(&mut plan, query, sizing(s))?;
    Ok((plan, lowered))
}

/// `query`'s rows, computed into memory: at most half the memory limit.
///
/// # Errors
/// As [`plan_query`]; [`Error::PlanTooLarge`]; the run's errors; a result that
/// does not fit ([`Error::MemoryLimit`]: write it to a file instead).
pub fn query(query: &LogicalPlan, ctx: &JobContext) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let (mut plan, lowered) = plan_query(query, PlanSizing::of(ctx))?;
    plan.workdir = scratch_workdir(ctx).display().to_string();
    check_memory(&plan, ctx.pool.limit())?;
    std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
    let mut held = ctx.pool.reserve("query result");
    let (_, batches) = run_plan_then(&plan, ctx, OnFailure::RemoveAll, |store| {
        let mut out = Vec::new();
        for part in &lowered.parts {
            match store.get(&part.data)?.as_ref() {
                Entry::Batches { batches, .. } => {
                    for b in batches {
                        held.try_grow(crate::memory::batch_memory(b))?;
                        out.push(b.clone());
                    }
                }
                other => {
                    return Err(Error::WrongEntry {
                        key: part.data.to_string(),
                        holds: other.kind(),
                        wanted: "record batches",
                    })
                }
            }
        }
        Ok(out)
    })?;
    drop(held);
    Ok((lowered.schema, batches))
}

/// The table format of `dst`: as `options.to` says, or by its extension.
fn output_format(dst: &Path, options: &ConvertOptions) -> Result<Format> {
    let to = match options.to {
        Some(f) => f,
        None => Format::from_extension(dst).ok_or_else(|| Error::UnknownFormat {
            path: dst.to_path_buf(),
            hint: "name it .parquet, .csv or .arrow, or pass --to FORMAT".into(),
        })?,
    };
    if !matches!(
        to,
        Format::Parquet | Format::ParquetDir | Format::Csv | Format::Ipc
    ) {
        return Err(Error::WrongKind {
            format: to.name(),
            is: "an array format",
            wanted: "a table format (.parquet, .csv, .arrow)",
        });
    }
    Ok(to)
}

/// The plan writing `query`'s rows to `dst` (staged at `staged`, published at the
/// end).
fn plan_write(
    query: &LogicalPlan,
    dst: &Path,
    to: Format,
    staged: &Path,
    options: &ConvertOptions,
    s: PlanSizing,
) -> Result<Plan> {
    let (mut plan, lowered) = plan_query(query, s)?;
    let output = sinks::table_output(to, staged, &lowered.schema, options)?;
    let parts: Vec<_> = lowered
        .parts
        .iter()
        .map(|p| {
            p.task
                .map(|t| (p.data.clone(), t))
                .ok_or_else(|| Error::bug("a query's part without a task", &p.data))
        })
        .collect::<Result<_>>()?;
    let window = read_window(s.threads);
    if to != Format::ParquetDir && write_in_finals(&mut plan, &parts, OUTPUT)? {
        add_published_output(&mut plan, &output, &parts, window)?;
    } else {
        add_table_output(&mut plan, &output, &parts, window)?;
    }
    finish_with_publish(&mut plan, staged, dst, to, options.overwrite);
    Ok(plan)
}

/// The plan writing `query`'s rows to `dst`, in a fresh working directory beside
/// it: what `blockwise plan sql` writes.
///
/// # Errors
/// As [`write_query`], before anything runs.
pub fn plan_query_file(
    query: &LogicalPlan,
    dst: &Path,
    options: &ConvertOptions,
    s: PlanSizing,
) -> Result<Plan> {
    let to = output_format(dst, options)?;
    let paths = query.inputs();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    drop(AtomicOutput::new(dst, &output_spec(&refs, to, options))?);
    let dst = &std::path::absolute(dst).map_err(|e| Error::io(dst, e))?;
    let workdir = plan_workdir(dst, &super::fresh_plan_id())?;
    let mut plan = plan_write(query, dst, to, &workdir.join(STAGED_OUTPUT), options, s)?;
    plan.workdir = workdir.display().to_string();
    Ok(plan)
}

/// Writes `query`'s rows to `dst` (its format from the name or `options.to`),
/// atomically; returns the bytes written.
///
/// # Errors
/// As [`plan_query`]; the destination's checks, made before anything runs; the
/// run's errors.
pub fn write_query(
    query: &LogicalPlan,
    dst: &Path,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    let to = output_format(dst, options)?;
    let paths = query.inputs();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = AtomicOutput::new(dst, &output_spec(&refs, to, options))?;
    ctx.note_reclaimed(out.reclaimed());
    let staged = out.path().join(STAGED_OUTPUT);
    let mut plan = plan_write(query, dst, to, &staged, options, PlanSizing::of(ctx))?;
    plan.workdir = out.path().display().to_string();
    check_memory(&plan, ctx.pool.limit())?;
    std::fs::create_dir(out.path()).map_err(|e| Error::io(out.path(), e))?;
    run_plan_then(&plan, ctx, OnFailure::RemoveAll, |_| Ok(()))?;
    let written = crate::sys::tree_bytes(dst);
    JobStats::add(&ctx.stats.written_bytes, written);
    Ok(written)
}
