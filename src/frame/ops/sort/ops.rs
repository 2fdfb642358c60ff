//! The external sort's operations: `sort_run` (a partition into a sorted run),
//! `cut_ranges` (the key ranges the merge is cut into) and `merge_range` (the rows of
//! one key range, merged). Each reads only its task's refs and the plan; what one
//! hands the next is a store entry.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::stored::{open_runs, run_info, RunInfo};
use super::{ExternalSort, KeyRange, Run, RunData, SortKey};
use crate::error::{Error, Result};
use crate::frame::read::open_source;
use crate::plan::{DataRef, DatasetRole, Entry, Event, Operation, Task, TaskEnv};

/// The key ranges of a sort's merge: the `cut_ranges` entry (JSON). One unbounded
/// range means one merge of everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fences {
    /// The ranges, in key order.
    pub ranges: Vec<KeyRange>,
}

/// A sorter for the task's rows, making room by spilling the store's entries.
fn sorter<'e>(
    schema: SchemaRef,
    keys: &[SortKey],
    run_bytes: u64,
    batch_rows: usize,
    merge_bytes: u64,
    env: &TaskEnv<'e>,
) -> Result<ExternalSort<'e>> {
    Ok(
        ExternalSort::new(schema, keys, env.pool.clone(), env.spill.clone(), run_bytes)?
            .with_merge_bytes(merge_bytes)
            .with_batch_rows(batch_rows)
            .with_monitor(env.monitor),
    )
}

/// The one input `task` must have at `i`.
fn input(task: &Task, i: usize) -> Result<&DataRef> {
    task.inputs.get(i).ok_or_else(|| Error::BadPlan {
        reason: format!(
            "task {} ({}) has {} inputs; it reads input {i}",
            task.id,
            task.op.name,
            task.inputs.len()
        ),
    })
}

/// Sorts one partition of a table into a run: reads partition `i` of its input (a
/// table source the plan describes), sorts it within the run budget, and publishes
/// the sorted rows as one record-batch entry with its description
/// ([`RunInfo`]). A partition larger than the budget makes several runs, merged
/// into one before they are published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortRun {
    /// The sort keys.
    pub keys: Vec<SortKey>,
    /// Bytes a run may hold while it is made (input, sorted copy, keys).
    pub run_bytes: u64,
    /// Rows per batch of the run, at most.
    pub batch_rows: usize,
    /// Bytes one merge may hold (its batches are sized so a few runs fit it).
    pub merge_bytes: u64,
    /// Fences the run keeps at most (every merge holds every run's).
    pub max_fences: usize,
}

impl Operation for SortRun {
    const NAME: &'static str = "sort_run";
    const VERSION: u32 = 1;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let part = input(task, 0)?;
        if env.dataset(part.dataset())?.role != DatasetRole::Input {
            // An earlier task's rows (a query's filtered and projected input).
            let (schema, batches) = env.store.batches(part)?;
            let sorter = sorter(
                schema,
                &self.keys,
                self.run_bytes,
                self.batch_rows,
                self.merge_bytes,
                env,
            )?;
            let runs = sorter.make_runs(
                batches.map(|b| {
                    env.cancel.check()?;
                    b
                }),
                true,
            )?;
            sorter.publish_runs(env.store, &task.output, runs, self.max_fences)?;
            return Ok(());
        }
        let source = open_source(env, part.dataset())?;
        let DataRef::Partition { index, .. } = part else {
            return Err(Error::BadPlan {
                reason: format!("task {} reads {part}, not a table partition", task.id),
            });
        };
        let sorter = sorter(
            source.schema(),
            &self.keys,
            self.run_bytes,
            self.batch_rows,
            self.merge_bytes,
            env,
        )?;
        // A source with no partition at all (an empty table) still makes one run,
        // empty, so that the merge knows the schema.
        let index = *index as usize;
        let runs = if index < source.num_partitions() {
            let batches = source.read_partition(index)?.map(|b| {
                env.cancel.check()?;
                b
            });
            sorter.make_runs(batches, true)?
        } else {
            Vec::new()
        };
        if index < source.num_partitions() {
            env.emit(Event::BytesRead(source.partition_bytes(index)));
        }
        sorter.publish_runs(env.store, &task.output, runs, self.max_fences)?;
        Ok(())
    }
}

/// Cuts the merge of every run into key ranges of about equal size, at keys sampled
/// from the runs' batch boundaries (keys of any columns: compared as bytes), and
/// publishes them ([`Fences`], JSON). One range when no run has a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutRanges {
    /// The sort keys.
    pub keys: Vec<SortKey>,
    /// Ranges wanted.
    pub ranges: usize,
}

impl Operation for CutRanges {
    const NAME: &'static str = "cut_ranges";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let mut schema = None;
        let mut runs = Vec::with_capacity(task.inputs.len());
        for key in &task.inputs {
            let (s, info) = run_info(env.store, key)?;
            schema.get_or_insert(s);
            runs.push(described(info));
        }
        let ranges = match schema {
            None => vec![KeyRange::all()],
            Some(schema) => sorter(schema, &self.keys, 1, 1, 1, env)?.split(&runs, self.ranges)?,
        };
        let fences = serde_json::to_value(Fences { ranges })
            .map_err(|e| Error::bug("sort fences to JSON", e))?;
        env.store.put(&task.output, Entry::Json(fences))
    }
}

/// A run known by its description alone, to cost and cut a merge (never merged).
fn described(info: RunInfo) -> Run {
    Run {
        data: RunData::Memory(Vec::new()),
        rows: info.rows as usize,
        bytes: info.bytes,
        max_batch: info.max_batch,
        fences: info.fences,
        fence_stride: info.fence_stride,
        _held: None,
    }
}

/// Merges the rows of every run whose keys fall in range `range` of the fences
/// (input 0; the runs follow) and publishes them as one record-batch entry, written
/// to disk as it is produced when it outgrows memory. A range past the fences'
/// publishes an empty entry. When the runs are too many to merge within
/// `merge_bytes`, their rows in the range are merged in passes through spill files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRange {
    /// The sort keys.
    pub keys: Vec<SortKey>,
    /// Which range.
    pub range: usize,
    /// Rows per merged batch, at most.
    pub batch_rows: usize,
    /// Bytes the merge may hold.
    pub merge_bytes: u64,
}

impl Operation for MergeRange {
    const NAME: &'static str = "merge_range";
    const VERSION: u32 = 1;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let fences = input(task, 0)?;
        let runs = task.inputs.get(1..).unwrap_or_default();
        let first = input(task, 1)?;
        let fences: Fences = match env.store.get(fences)?.as_ref() {
            Entry::Json(v) => serde_json::from_value(v.clone()).map_err(|e| Error::Corrupt {
                path: fences.store_name().into(),
                format: "sort fences",
                detail: e.to_string(),
            })?,
            other => {
                return Err(Error::Corrupt {
                    path: fences.store_name().into(),
                    format: "sort fences",
                    detail: format!("it holds {}", other.kind()),
                })
            }
        };
        let Some(range) = fences.ranges.get(self.range) else {
            let (schema, _) = run_info(env.store, first)?;
            return env.store.put(
                &task.output,
                Entry::Batches {
                    schema,
                    batches: Vec::new(),
                },
            );
        };
        let (schema, runs) = open_runs(env.store, runs)?;
        let sorter = sorter(
            schema.clone(),
            &self.keys,
            1,
            self.batch_rows,
            self.merge_bytes,
            env,
        )?;
        let publish = |stream: super::MergeStream<'_>| {
            let mut batches = stream.map(|b: Result<RecordBatch>| {
                env.cancel.check()?;
                b
            });
            env.store
                .put_batches(&task.output, schema.clone(), &mut batches)
        };
        sorter.with_merge(runs, range, publish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Operation;

    fn keys() -> Vec<SortKey> {
        vec![
            SortKey {
                column: "x".into(),
                descending: true,
            },
            SortKey {
                column: "name".into(),
                descending: false,
            },
        ]
    }

    fn round_trip<O: Operation + PartialEq + std::fmt::Debug>(op: O) {
        let spec = super::super::plan::op_spec(&op);
        assert_eq!(spec.name, O::NAME);
        let text = serde_json::to_string(&spec).unwrap();
        let back: crate::plan::OpSpec = serde_json::from_str(&text).unwrap();
        let decoded: O = serde_json::from_value(back.params).unwrap();
        assert_eq!(decoded, op);
    }

    #[test]
    fn parameters_round_trip_through_json() {
        round_trip(SortRun {
            keys: keys(),
            run_bytes: 1 << 26,
            batch_rows: 8192,
            merge_bytes: 1 << 25,
            max_fences: 100,
        });
        round_trip(CutRanges {
            keys: keys(),
            ranges: 16,
        });
        round_trip(MergeRange {
            keys: keys(),
            range: 3,
            batch_rows: 4096,
            merge_bytes: 1 << 25,
        });
        let cut = super::super::KeyBytes(vec![0, 1, 0xfe, 0x7f]);
        let fences = Fences {
            ranges: vec![
                KeyRange {
                    lower: None,
                    upper: Some(cut.clone()),
                },
                KeyRange {
                    lower: Some(cut),
                    upper: None,
                },
            ],
        };
        let json = serde_json::to_value(&fences).unwrap();
        assert_eq!(json["ranges"][0]["upper"], "0001fe7f");
        assert_eq!(serde_json::from_value::<Fences>(json).unwrap(), fences);
    }

    #[test]
    fn a_key_without_a_direction_is_ascending() {
        let key: SortKey = serde_json::from_str(r#"{"column": "id"}"#).unwrap();
        assert!(!key.descending);
    }
}
