//! Reading a table's partitions in a plan: the operation that publishes one
//! partition of an input table as record batches.

use std::path::Path;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::{DataRef, DatasetRole, Event, Operation, Task, TaskEnv};
use crate::storage::frame::FrameSource;
use crate::storage::{open_frame_meta, Format, SourceMeta};

/// The input table `id` of the plan (its meta a [`SourceMeta`]), opened once a
/// process.
///
/// # Errors
/// [`Error::BadPlan`] for a dataset that is not a table source; the format's open
/// errors.
pub fn open_source(env: &TaskEnv<'_>, id: &str) -> Result<Arc<Box<dyn FrameSource>>> {
    env.resources
        .get_or_open(&format!("table-source/{id}"), || {
            let dataset = env.dataset(id)?;
            let format = Format::parse(&dataset.format)?;
            let meta: SourceMeta =
                serde_json::from_value(dataset.meta.clone()).map_err(|e| Error::BadPlan {
                    reason: format!("dataset {id:?} does not describe a table source: {e}"),
                })?;
            open_frame_meta(Path::new(&dataset.path), format, &meta)
        })
}

/// Reads partition K of an input table (its only input, `partition K of "src"`: a
/// CSV byte range, a Parquet row group, an IPC record batch) and publishes its
/// record batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadTablePartition {}

impl Operation for ReadTablePartition {
    const NAME: &'static str = "read_table_partition";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let Some(DataRef::Partition { dataset, index }) = task.inputs.first() else {
            return Err(Error::BadPlan {
                reason: format!("task {}: {} reads one table partition", task.id, Self::NAME),
            });
        };
        let source = open_source(env, dataset)?;
        let partition = usize::try_from(*index)
            .ok()
            .filter(|&i| i < source.num_partitions())
            .ok_or_else(|| Error::BadPlan {
                reason: format!(
                    "task {}: the source has {} partitions, not {}",
                    task.id,
                    source.num_partitions(),
                    index + 1
                ),
            })?;
        let mut batches = source.read_partition(partition)?.map(|b| {
            env.cancel.check()?;
            b
        });
        env.store
            .put_batches(&task.output, source.schema(), &mut batches)?;
        env.emit(Event::BytesRead(source.partition_bytes(partition)));
        Ok(())
    }
}

/// Calls `f` on each record batch of the input `r`, in order, while it returns
/// true: partition K of a table source the plan lists as an input, or the
/// record-batch entry an earlier task published. Counts the bytes a source
/// partition covers as read.
///
/// # Errors
/// The source's and the store's errors; `f`'s; [`Error::Cancelled`] when the job
/// is cancelled between batches.
pub fn for_each_batch(
    env: &TaskEnv<'_>,
    r: &DataRef,
    mut f: impl FnMut(RecordBatch) -> Result<bool>,
) -> Result<()> {
    let dataset = env.dataset(r.dataset())?;
    if dataset.role == DatasetRole::Input {
        let DataRef::Partition { index, .. } = r else {
            return Err(Error::BadPlan {
                reason: format!("{r} is not a partition of the table it names"),
            });
        };
        let source = open_source(env, r.dataset())?;
        let index = *index as usize;
        // A table without partitions (an empty file) is read as one empty one.
        if index >= source.num_partitions() {
            return Ok(());
        }
        for batch in source.read_partition(index)? {
            env.cancel.check()?;
            if !f(batch?)? {
                break;
            }
        }
        env.emit(Event::BytesRead(source.partition_bytes(index)));
        return Ok(());
    }
    let (_, batches) = env.store.batches(r)?;
    for batch in batches {
        env.cancel.check()?;
        if !f(batch?)? {
            break;
        }
    }
    Ok(())
}

/// The one input of `task`.
///
/// # Errors
/// [`Error::BadPlan`] for a task with more or fewer inputs.
pub(crate) fn only_input(task: &Task) -> Result<&DataRef> {
    match task.inputs.as_slice() {
        [one] => Ok(one),
        other => Err(Error::BadPlan {
            reason: format!(
                "task {} ({}) reads {} inputs, not one",
                task.id,
                task.op.name,
                other.len()
            ),
        }),
    }
}
