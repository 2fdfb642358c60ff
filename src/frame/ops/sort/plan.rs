//! The external sort as tasks of a plan: one `sort_run` a partition of the input,
//! one `cut_ranges` once every run exists, and `merge_range` tasks, one a key range,
//! whose entries are the sorted output's parts in order.
//!
//! Budgets: runs being made on every thread hold half the limit together; range
//! merges on every thread hold a third of it together (the runs' batches are sized
//! so that every run fits one merge; a merge the pool refuses, others holding the
//! rest, merges in smaller passes through spill files), and a sixteenth of the
//! input at most goes to one range, so that the output's tasks encode parts of
//! bounded size. What the entries hold between tasks is the store's (reserved,
//! spilled least recently used first).

use arrow::datatypes::SchemaRef;

use super::ops::{CutRanges, MergeRange, SortRun};
use super::{merge_batch_rows, SortKey};
use crate::error::Result;
use crate::frame::ops::Part;
use crate::plan::{DataRef, Dataset, DatasetRole, OpSpec, Operation, Plan, Task, TaskId, TaskKind};

/// Key ranges a thread at least: small ranges keep what waits for the output small
/// while every thread merges.
const RANGES_PER_THREAD: usize = 8;

/// A range's input is at most the limit divided by this: the output's tasks hold a
/// part's rows and its encoding.
const RANGE_SHARE: u64 = 16;

/// Bytes a run holds while it is made, per byte of CSV input it covers: its decoded
/// batches (1.7 times the text of db-benchmark's table), their sorted copy, the
/// keys and order, and the next batch read (measured: 5.8). A partition of the run
/// budget divided by this makes one run; a larger one makes several, merged before
/// they are published.
const RUN_BYTES_PER_INPUT_BYTE: u64 = 7;

/// Bytes of input a row takes at least, to count a run's batches (and fences).
const INPUT_BYTES_PER_ROW: u64 = 8;

/// Bytes a task reading the runs holds a run besides its fences: its description.
const BYTES_PER_RUN: u64 = 64;

/// Bytes a fence takes where it is read: a key of a few columns, its list slot and
/// its text in the run's description.
const BYTES_PER_FENCE: u64 = 96;

/// The runs' fences take at most the limit divided by this, together: every merge
/// holds them all.
const FENCE_SHARE: u64 = 32;

/// The [`OpSpec`] of `op`.
pub(super) fn op_spec<O: Operation>(op: &O) -> OpSpec {
    OpSpec {
        name: O::NAME.into(),
        version: O::VERSION,
        // Parameters are plain structs of numbers, strings and lists: they always
        // serialize.
        params: serde_json::to_value(op).unwrap_or_default(),
    }
}

/// What a sort's plan is sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortSizing {
    /// Tasks running at once.
    pub threads: usize,
    /// The memory budget in bytes.
    pub memory_limit: u64,
}

impl SortSizing {
    /// Bytes one run may hold while it is made: half the limit, shared by the
    /// threads.
    pub fn run_bytes(&self) -> u64 {
        (self.memory_limit / (2 * self.threads.max(1) as u64)).max(1)
    }

    /// Bytes of CSV input a partition of `input_bytes` should cover: what makes one
    /// run, unless the runs would be so many that their descriptions pass an eighth
    /// of the limit (tiny limits): then fewer, larger partitions, each making
    /// several runs merged into one.
    pub fn partition_bytes(&self, input_bytes: u64) -> u64 {
        let most = (self.memory_limit / (8 * (BYTES_PER_RUN + BYTES_PER_FENCE))).max(1);
        (self.run_bytes() / RUN_BYTES_PER_INPUT_BYTE)
            .max(input_bytes.div_ceil(most))
            .max(1)
    }

    /// The most one range merge may hold: a third of the limit shared by the
    /// threads (every thread merges a range at once), less what the runs'
    /// `descriptions` take.
    fn merge_bytes(&self, descriptions: u64) -> u64 {
        let share = self.memory_limit / (3 * self.threads.max(1) as u64);
        share.saturating_sub(descriptions).max(share / 2).max(1)
    }

    /// Fences a run keeps, at most, when there are `runs` of partitions of
    /// `largest` bytes of input at most, in batches of `batch_rows`: one a batch,
    /// within a share of the limit.
    fn max_fences(&self, runs: usize, largest: u64, batch_rows: usize) -> usize {
        let share = self.memory_limit / (FENCE_SHARE * BYTES_PER_FENCE * runs.max(1) as u64);
        let batches = largest / (INPUT_BYTES_PER_ROW * batch_rows.max(1) as u64) + 1;
        usize::try_from(share.min(batches))
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// What a merge pass holds of merged rows before writing them out.
    fn pass_bytes(&self) -> u64 {
        self.memory_limit / 8
    }

    /// Key ranges the merge of `input_bytes` of input is cut into, at most.
    fn ranges(&self, input_bytes: u64) -> usize {
        let by_size = input_bytes
            .saturating_mul(RANGE_SHARE)
            .div_ceil(self.memory_limit.max(1));
        (RANGES_PER_THREAD * self.threads.max(1))
            .max(usize::try_from(by_size).unwrap_or(usize::MAX))
    }
}

/// Adds to `plan` the sort by `keys` of the rows of `inputs` (partitions of a
/// table source the plan lists, or entries of earlier tasks), of `schema`, read in
/// batches of `read_rows` rows; adds the intermediate datasets `runs`, `fences`
/// and `ranges`. Returns the sorted output's parts, in order: each range's entry
/// and the task that publishes it.
///
/// # Errors
/// Usage errors for unknown key columns; keys the row format cannot order.
pub fn add_sort(
    plan: &mut Plan,
    inputs: &[Part],
    schema: &SchemaRef,
    keys: &[SortKey],
    read_rows: usize,
    sizing: SortSizing,
) -> Result<Vec<(DataRef, TaskId)>> {
    // Fresh ids: a plan may sort twice (a sorted subquery sorted again), and two
    // sorts' runs under one name would be one set of entries.
    let [runs_id, fences_id, ranges_id] = ["runs", "fences", "ranges"].map(|base| {
        let id = plan.fresh_id(base);
        plan.datasets
            .push(Dataset::new(&id, &id, "entries", DatasetRole::Intermediate));
        id
    });
    let run_bytes = sizing.run_bytes();
    let units: Vec<u64> = inputs.iter().map(|p| p.bytes).collect();
    let partitions = inputs.len();
    let largest = units.iter().copied().max().unwrap_or(0);
    let max_fences = sizing.max_fences(partitions, largest, read_rows);
    // What the runs' descriptions take where they are all read.
    let descriptions = partitions as u64 * (BYTES_PER_RUN + BYTES_PER_FENCE * max_fences as u64);
    let merge_bytes = sizing.merge_bytes(descriptions);
    // Batches small enough that every run fits one merge.
    let input_bytes: u64 = units.iter().sum();
    let ranges = sizing.ranges(input_bytes);
    let batch_rows = merge_batch_rows(
        schema,
        keys,
        merge_bytes,
        partitions,
        ranges,
        input_bytes,
        read_rows,
    )?;
    let sort_run = SortRun {
        keys: keys.to_vec(),
        run_bytes,
        batch_rows,
        merge_bytes,
        max_fences,
    };
    let runs: Vec<(DataRef, TaskId)> = inputs
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let unit = part.bytes;
            let output = DataRef::partition(&runs_id, i as u64);
            let id = plan.push(Task {
                inputs: vec![part.data.clone()],
                deps: part.task.into_iter().collect(),
                memory_bytes: run_bytes,
                unit_bytes: unit,
                ..Task::new(op_spec(&sort_run), output.clone(), TaskKind::Load)
            });
            (output, id)
        })
        .collect();
    let cut = CutRanges {
        keys: keys.to_vec(),
        ranges,
    };
    let cut = plan.push(Task {
        inputs: runs.iter().map(|(r, _)| r.clone()).collect(),
        deps: runs.iter().map(|(_, t)| *t).collect(),
        memory_bytes: descriptions,
        ..Task::new(op_spec(&cut), DataRef::whole(&fences_id), TaskKind::Compute)
    });
    // What a range's part takes, when the keys spread evenly.
    let range_bytes = input_bytes / ranges as u64;
    Ok((0..ranges)
        .map(|p| {
            let merge = MergeRange {
                keys: keys.to_vec(),
                range: p,
                batch_rows,
                merge_bytes,
            };
            let output = DataRef::partition(&ranges_id, p as u64);
            let id = plan.push(Task {
                inputs: std::iter::once(DataRef::whole(&fences_id))
                    .chain(runs.iter().map(|(r, _)| r.clone()))
                    .collect(),
                deps: vec![cut],
                memory_bytes: merge_bytes + sizing.pass_bytes() + descriptions,
                unit_bytes: range_bytes,
                ..Task::new(op_spec(&merge), output.clone(), TaskKind::Compute)
            });
            (output, id)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_merge_reads_the_fences_and_every_run() {
        let mut plan = Plan::new();
        plan.datasets
            .push(Dataset::new("src", "/in.csv", "csv", DatasetRole::Input));
        let sizing = SortSizing {
            threads: 2,
            memory_limit: 256 << 20,
        };
        let keys = vec![SortKey {
            column: "id".into(),
            descending: false,
        }];
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, true),
        ]));
        let inputs: Vec<Part> = [10, 20, 30]
            .iter()
            .enumerate()
            .map(|(i, &b)| Part::source("src", i as u64, b))
            .collect();
        let parts = add_sort(&mut plan, &inputs, &schema, &keys, 1024, sizing).unwrap();
        plan.validate().unwrap();
        assert_eq!(parts.len(), 16);
        assert_eq!(plan.tasks.len(), 3 + 1 + 16);
        let merge = &plan.tasks[parts[5].1 as usize];
        assert_eq!(merge.inputs.len(), 4);
        assert_eq!(merge.deps, vec![3]);
        assert_eq!(parts[5].0, DataRef::partition("ranges", 5));
        let largest = plan.tasks.iter().map(|t| t.memory_bytes).max().unwrap();
        assert!(largest <= sizing.memory_limit / 2, "{largest}");
        assert_eq!(
            plan.waves().unwrap().len(),
            3,
            "runs, the cut, the merges: {:?}",
            plan.waves()
        );
    }
}
