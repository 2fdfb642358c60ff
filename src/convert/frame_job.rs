//! Frame jobs computed into memory: a grouping of a table file, its result held on
//! the pool and handed back as record batches.

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::array_job::scratch_workdir;
use super::job::{run_plan_then, OnFailure, PlanSizing};
use crate::error::{Error, Result};
use crate::exec::JobContext;
use crate::frame::ops::aggregate::{add_group_by, GroupBy, GroupSizing};
use crate::plan::{check_memory, DataRef, Dataset, DatasetRole, Entry, Plan};
use crate::storage::frame::FrameReadOptions;
use crate::storage::{detect, open_frame_described};

/// The plan of `spec` over the table at `path` read with `read`, and the entries
/// of its result in order.
///
/// # Errors
/// What opening the table fails with; what [`GroupBy::check`] finds wrong.
pub fn plan_group_table(
    path: &Path,
    spec: &GroupBy,
    read: &FrameReadOptions,
    sizing: PlanSizing,
) -> Result<(Plan, Vec<DataRef>, SchemaRef)> {
    let format = detect(path)?;
    // Only the columns the grouping uses are read.
    let mut read = read.clone();
    let columns = spec.columns();
    read.columns = (!columns.is_empty()).then_some(columns);
    let (mut source, mut meta) = open_frame_described(path, format, &read)?;
    if read.columns.is_none() && source.schema().fields().len() > 1 {
        // A `count(*)` alone reads the first column, for the rows: decoding every
        // column to count them would cost all of them.
        read.columns = Some(vec![source.schema().field(0).name().clone()]);
        (source, meta) = open_frame_described(path, format, &read)?;
    }
    let schema = source.schema();
    let units: Vec<u64> = (0..source.num_partitions())
        .map(|i| source.partition_bytes(i))
        .collect();
    let meta =
        serde_json::to_value(&meta).map_err(|e| Error::bug("source description to JSON", e))?;
    let mut plan = Plan::new();
    plan.datasets.push(
        Dataset::new("src", path.display(), format.name(), DatasetRole::Input).with_meta(meta),
    );
    let sizing = GroupSizing {
        threads: sizing.threads,
        memory_limit: sizing.memory_limit,
    };
    let parts = add_group_by(&mut plan, "src", &units, &schema, spec, sizing)?;
    Ok((
        plan,
        parts.into_iter().map(|(r, _)| r).collect(),
        spec.output_schema(&schema)?,
    ))
}

/// The grouping `spec` of the table at `path`, computed into memory.
///
/// # Errors
/// As [`plan_group_table`]; [`Error::PlanTooLarge`]; the run's errors; the result
/// not fitting half the memory limit.
pub fn group_table(
    path: &Path,
    spec: &GroupBy,
    read: &FrameReadOptions,
    ctx: &JobContext,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let (mut plan, parts, schema) = plan_group_table(path, spec, read, PlanSizing::of(ctx))?;
    plan.workdir = scratch_workdir(ctx).display().to_string();
    check_memory(&plan, ctx.pool.limit())?;
    std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
    let mut held = ctx.pool.reserve("group by result");
    let (_, batches) = run_plan_then(&plan, ctx, OnFailure::RemoveAll, |store| {
        let mut out = Vec::new();
        for part in &parts {
            match store.get(part)?.as_ref() {
                Entry::Batches { batches, .. } => {
                    for b in batches {
                        held.try_grow(crate::memory::batch_memory(b))?;
                        out.push(b.clone());
                    }
                }
                other => {
                    return Err(Error::WrongEntry {
                        key: part.to_string(),
                        holds: other.kind(),
                        wanted: "record batches",
                    })
                }
            }
        }
        Ok(out)
    })?;
    drop(held);
    Ok((schema, batches))
}
