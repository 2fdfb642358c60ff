//! The aggregation as tasks of a plan: a `group_partial` a partition of the input,
//! then a `group_final` a bucket, whose entries are the result's parts in order.
//!
//! Budgets: the partial tasks on every thread hold a quarter of the limit together
//! in tables (their flushed states as much again); a final task holds its bucket's
//! groups within half the limit shared by the threads, and the buckets are as many
//! as that takes when every input row is its own group.

use arrow::datatypes::SchemaRef;

use super::{GroupBy, GroupFinal, GroupPartial};
use crate::error::Result;
use crate::plan::{DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskId, TaskKind};

/// The intermediate dataset of partial states.
pub const PARTIALS: &str = "partials";
/// The intermediate dataset of finished buckets.
pub const GROUPS: &str = "groups";

/// Bytes a group's keys, table slot and states take, per byte of the input it
/// came from, when every row is its own group (db-benchmark's q10: a 51-byte CSV
/// row becomes about 110 bytes of keys, hash, slots and two states).
const GROUP_BYTES_PER_INPUT_BYTE: u64 = 3;

/// Buckets at most: each is a task reading a slice of every partial.
const MAX_BUCKETS: u64 = 4096;

/// What an aggregation's plan is sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSizing {
    /// Tasks running at once.
    pub threads: usize,
    /// The memory budget in bytes.
    pub memory_limit: u64,
}

impl GroupSizing {
    /// What one partial task's table may hold before it flushes.
    pub fn table_bytes(&self) -> u64 {
        (self.memory_limit / (4 * self.threads.max(1) as u64)).max(1)
    }

    /// What one final task may hold.
    pub fn final_bytes(&self) -> u64 {
        (self.memory_limit / (2 * self.threads.max(1) as u64)).max(1)
    }

    /// Buckets for `input_bytes` of input: enough that a bucket of all-distinct
    /// rows fits a final task, and two a thread at least, so every thread
    /// finishes some.
    pub fn buckets(&self, input_bytes: u64) -> u32 {
        let by_size = input_bytes
            .saturating_mul(GROUP_BYTES_PER_INPUT_BYTE)
            .div_ceil(self.final_bytes());
        by_size
            .max(2 * self.threads.max(1) as u64)
            .clamp(1, MAX_BUCKETS) as u32
    }
}

/// Adds to `plan` the aggregation `spec` of the table dataset `src` (listed, its
/// meta a [`crate::storage::SourceMeta`] reading the columns `spec` uses, whose
/// schema is `input`), whose partitions cover `units` bytes of input each. Returns
/// the result's parts, in order: each bucket's entry and the task that publishes
/// it.
///
/// # Errors
/// What [`GroupBy::check`] finds wrong with `spec` over `input`.
pub fn add_group_by(
    plan: &mut Plan,
    src: &str,
    units: &[u64],
    input: &SchemaRef,
    spec: &GroupBy,
    sizing: GroupSizing,
) -> Result<Vec<(DataRef, TaskId)>> {
    spec.check(input)?;
    for id in [PARTIALS, GROUPS] {
        plan.datasets
            .push(Dataset::new(id, "", "memory", DatasetRole::Intermediate));
    }
    let input_bytes: u64 = units.iter().sum();
    // Without keys there is one group: one bucket.
    let buckets = if spec.keys.is_empty() {
        1
    } else {
        sizing.buckets(input_bytes)
    };
    let table_bytes = sizing.table_bytes();
    let partial = GroupPartial {
        spec: spec.clone(),
        buckets,
        table_bytes,
    };
    // An empty table still makes one partial, which carries the schema.
    let partials: Vec<(DataRef, TaskId)> = (0..units.len().max(1))
        .map(|i| {
            let unit = units.get(i).copied().unwrap_or(0);
            let output = DataRef::partition(PARTIALS, i as u64);
            let id = plan.push(Task {
                inputs: vec![DataRef::partition(src, i as u64)],
                memory_bytes: 2 * table_bytes,
                unit_bytes: unit,
                ..Task::new(OpSpec::of(&partial), output.clone(), TaskKind::Load)
            });
            (output, id)
        })
        .collect();
    let per_bucket = input_bytes / u64::from(buckets);
    Ok((0..buckets)
        .map(|b| {
            let op = GroupFinal {
                spec: spec.clone(),
                source: src.to_string(),
                bucket: b,
            };
            let output = DataRef::partition(GROUPS, u64::from(b));
            let id = plan.push(Task {
                inputs: partials.iter().map(|(r, _)| r.clone()).collect(),
                deps: partials.iter().map(|(_, t)| *t).collect(),
                memory_bytes: sizing
                    .final_bytes()
                    .min(per_bucket.saturating_mul(GROUP_BYTES_PER_INPUT_BYTE)),
                unit_bytes: per_bucket,
                ..Task::new(OpSpec::of(&op), output.clone(), TaskKind::Compute)
            });
            (output, id)
        })
        .collect())
}
