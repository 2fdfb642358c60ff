//! Reading a table's partitions in a plan: the operation that publishes one
//! partition of an input table as record batches; the batches of any input a
//! task reads (`for_each_batch`); and what a task reading rows through a
//! pipeline reads besides its rows: the entries of the subqueries the pipeline
//! uses, bound into it before it is applied (`reading`).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::expr::in_set::KeySet;
use crate::frame::expr::{Subquery, SubqueryKind, SubqueryValue};
use crate::frame::ops::pipeline::Pipeline;
use crate::memory::Reservation;
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

/// The largest fraction of the pool (one part in this many) a source
/// partition's reader reserves for its own buffers.
const READER_SHARE: u64 = 16;

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
    f: impl FnMut(RecordBatch) -> Result<bool>,
) -> Result<()> {
    for_each_batch_as(env, r, &[], f)
}

/// As [`for_each_batch`], with the string columns named `dictionaries` read
/// as Arrow dictionaries where the source stores them so
/// ([`FrameSource::read_partition_as`]); entries of earlier tasks come as
/// they were published.
///
/// # Errors
/// As [`for_each_batch`].
pub fn for_each_batch_as(
    env: &TaskEnv<'_>,
    r: &DataRef,
    dictionaries: &[String],
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
        // The reader's own buffers, bounded: counted, never refused. A budget
        // of a few MiB cannot make room for them by spilling; of such a pool a
        // reader takes a sixteenth, so that small budgets still run as before.
        let mut reader = env.pool.reserve(format!("{} reader", source.format()));
        reader.grow(source.reader_bytes().min(env.pool.limit() / READER_SHARE));
        let schema = source.schema();
        let dictionaries: Vec<usize> = dictionaries
            .iter()
            .filter_map(|name| schema.index_of(name).ok())
            .collect();
        for batch in source.read_partition_as(index, &dictionaries)? {
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

/// What a task reads rows through: the inputs holding its rows, and its pipeline
/// with the values of the subqueries it uses bound in (the memory their sets
/// hold reserved until it is dropped).
pub struct Reading<'t> {
    /// The inputs holding rows: the task's inputs before the subqueries' entries.
    pub inputs: &'t [DataRef],
    /// The pipeline, ready to apply.
    pub pre: Pipeline,
    _held: Option<Reservation>,
}

impl Reading<'_> {
    /// The one input holding rows.
    ///
    /// # Errors
    /// [`Error::BadPlan`] for a task reading more or fewer.
    pub fn only_input(&self, task: &Task) -> Result<&DataRef> {
        match self.inputs {
            [one] => Ok(one),
            other => Err(Error::BadPlan {
                reason: format!(
                    "task {} ({}) reads {} inputs of rows, not one",
                    task.id,
                    task.op.name,
                    other.len()
                ),
            }),
        }
    }
}

/// How `task` reads its rows through `pre`: the entries of the subqueries `pre`
/// uses are the task's last inputs, in the order [`Pipeline::subqueries`] lists
/// them (the planner puts them there, [`crate::frame::ops::reading_inputs`]); each
/// is read and its value bound into `pre`. A scalar subquery's entry holds at most
/// the two rows that tell one from several; an `IN` subquery's values become a set
/// held on the pool.
///
/// # Errors
/// [`Error::BadPlan`] when the task does not list the entries; the store's errors;
/// [`Error::SubqueryRows`] for a scalar subquery of more than one row;
/// [`Error::SubqueryTooLarge`] when an `IN` subquery's values do not fit.
pub fn reading<'t>(env: &TaskEnv<'_>, task: &'t Task, pre: &Pipeline) -> Result<Reading<'t>> {
    let used = pre.subqueries();
    if used.is_empty() {
        return Ok(Reading {
            inputs: &task.inputs,
            pre: pre.clone(),
            _held: None,
        });
    }
    let rows = task.inputs.len().checked_sub(used.len());
    let listed = rows.is_some_and(|rows| {
        used.iter()
            .zip(&task.inputs[rows..])
            .all(|((_, s), r)| s.entry.as_ref().is_some_and(|e| e.data == *r))
    });
    let (Some(rows), true) = (rows, listed) else {
        return Err(Error::BadPlan {
            reason: format!(
                "task {} ({}) does not list the entries of the {} subqueries it reads",
                task.id,
                task.op.name,
                used.len()
            ),
        });
    };
    let mut held = env
        .pool
        .reserve(format!("{} {} (IN sets)", task.op.name, task.id));
    let mut values = Vec::with_capacity(used.len());
    for (kind, s) in &used {
        let value = match kind {
            SubqueryKind::Scalar => SubqueryValue::Scalar(scalar_value(env, s)?),
            SubqueryKind::Set => {
                SubqueryValue::Set(std::sync::Arc::new(set_value(env, s, &mut held)?))
            }
        };
        values.push((s.id, s.entry.clone(), value));
    }
    let pre = pre.map_subqueries(&mut |s| {
        let (_, _, value) = values
            .iter()
            .find(|(id, entry, _)| *id == s.id && *entry == s.entry)
            .ok_or_else(|| Error::bug("a subquery's value", &s.text))?;
        Ok(Subquery {
            value: Some(value.clone()),
            ..s.clone()
        })
    })?;
    Ok(Reading {
        inputs: &task.inputs[..rows],
        pre,
        _held: Some(held),
    })
}

/// The entry of subquery `s`, which the planner wrote in.
fn entry_of(s: &Subquery) -> Result<&DataRef> {
    s.entry
        .as_ref()
        .map(|e| &e.data)
        .ok_or_else(|| Error::bug("a subquery without its entry", &s.text))
}

/// The one value of scalar subquery `s`: NULL for no row, an error for more.
fn scalar_value(env: &TaskEnv<'_>, s: &Subquery) -> Result<ArrayRef> {
    let (_, batches) = env.store.batches(entry_of(s)?)?;
    let mut first: Option<ArrayRef> = None;
    let mut rows = 0usize;
    for batch in batches {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        rows += batch.num_rows();
        if rows > 1 {
            return Err(Error::SubqueryRows {
                subquery: s.text.clone(),
            });
        }
        first = batch.columns().first().map(|c| c.slice(0, 1));
    }
    let t = &s.data_type.0;
    Ok(match first {
        None => new_null_array(t, 1),
        Some(v) if v.data_type() == t => v,
        Some(v) => arrow::compute::cast(&v, t)?,
    })
}

/// The values of `IN` subquery `s` as a set, reserved on `held` before they are
/// held; when they do not fit, the whole entry is counted for the message.
fn set_value(env: &TaskEnv<'_>, s: &Subquery, held: &mut Reservation) -> Result<KeySet> {
    let (_, batches) = env.store.batches(entry_of(s)?)?;
    let mut columns: Vec<ArrayRef> = Vec::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut refused: Option<Error> = None;
    for batch in batches {
        env.cancel.check()?;
        let batch = batch?;
        let Some(column) = batch.columns().first() else {
            continue;
        };
        // The set, and the column while the batches are joined into one.
        let need = KeySet::bytes_for(column).saturating_add(column.get_array_memory_size() as u64);
        rows += column.len() as u64;
        bytes = bytes.saturating_add(need);
        if refused.is_some() {
            continue;
        }
        match env.reserve(held, need) {
            Ok(()) => columns.push(column.clone()),
            Err(e) => {
                refused = Some(e);
                columns.clear();
            }
        }
    }
    if let Some(e) = refused {
        return Err(Error::SubqueryTooLarge {
            subquery: s.text.clone(),
            rows,
            bytes,
            source: Box::new(e),
        });
    }
    let t = &s.data_type.0;
    let keys = match columns.as_slice() {
        [] => new_null_array(t, 0),
        [one] => one.clone(),
        many => {
            let all: Vec<&dyn Array> = many.iter().map(|c| c.as_ref()).collect();
            arrow::compute::concat(&all)?
        }
    };
    drop(columns);
    let keys = if keys.data_type() == t {
        keys
    } else {
        arrow::compute::cast(&keys, t)?
    };
    KeySet::build(&keys)
}
