//! The aggregation as tasks of a plan: a `group_partial` a partition of the input,
//! then a `group_final` a bucket, whose entries are the result's parts in order.
//!
//! Budgets: the partial tasks on every thread hold a quarter of the limit together
//! in tables (their flushed states as much again); a final task holds its bucket's
//! groups within half the limit shared by the threads, and the buckets are as many
//! as that takes when every input row is its own group.

use arrow::datatypes::SchemaRef;

use super::{GroupBy, GroupFinal, GroupPartial};
use crate::error::{Error, Result};
use crate::frame::ops::pipeline::Pipeline;
use crate::frame::ops::{gather_evenly, partial_runs, reading_inputs, Part};
use crate::plan::Operation;
use crate::plan::{DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskId, TaskKind};
use crate::storage::frame::SerializedSchema;

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

/// What the final task of an aggregation without keys yields (one row), and
/// holds when no state grows with the rows (one group, merged from one state
/// row a partial).
const ONE_GROUP_BYTES: u64 = 4 << 10;

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
    /// rows fits a final task, two a thread at least, so every thread finishes
    /// some, and a multiple of the threads, so none finishes the last bucket
    /// alone: q10 at 1e7 rows had 9 buckets of 0.7 s each on 2 threads, and
    /// one thread sat idle for the last (a tenth of the job).
    pub fn buckets(&self, input_bytes: u64) -> u32 {
        let threads = self.threads.max(1) as u64;
        let by_size = input_bytes
            .saturating_mul(GROUP_BYTES_PER_INPUT_BYTE)
            .div_ceil(self.final_bytes());
        let buckets = by_size.max(2 * threads).next_multiple_of(threads);
        let most = MAX_BUCKETS - MAX_BUCKETS % threads.min(MAX_BUCKETS);
        buckets.clamp(1, most.max(1)) as u32
    }
}

/// An aggregation whose partial tasks are in a plan and whose final tasks are
/// not yet: what reads its result adds them ([`Partials::finals`]), with its own
/// row-wise steps as their `post`, so that a projection or a filter after the
/// grouping costs no stage (and no copy of the groups) of its own.
#[derive(Debug, Clone)]
pub struct Partials {
    spec: GroupBy,
    grouped: SchemaRef,
    partials: Vec<(DataRef, TaskId)>,
    buckets: u32,
    per_bucket: u64,
    sizing: GroupSizing,
}

impl Partials {
    /// The schema of the groups' results, before any `post`.
    ///
    /// # Errors
    /// None in practice: the spec was checked over the schema when planned.
    pub fn output_schema(&self) -> Result<SchemaRef> {
        self.spec.output_schema(&self.grouped)
    }

    /// Adds the final tasks, one a bucket, whose results pass through `post`.
    /// Returns the result's parts, in order: each bucket's entry and the task
    /// that publishes it.
    ///
    /// # Errors
    /// Steps of `post` that do not type over the groups' results.
    pub fn finals(&self, plan: &mut Plan, post: &Pipeline) -> Result<Vec<Part>> {
        post.schema(&self.output_schema()?)?;
        // A dataset of its own each time: rows read twice (a query used twice)
        // get finals twice, never two tasks publishing one entry.
        let groups_id = intermediate(plan, GROUPS);
        // What a bucket's final task holds, and the part it yields (what a
        // task writing that part sizes itself by). Without keys the result is
        // one row whatever the input's size: sized as the input, `SELECT
        // count(*)` of a 5 GB file was refused under a 1 GiB limit.
        let keyless = self.spec.keys.is_empty();
        let part_bytes = match keyless {
            true => ONE_GROUP_BYTES.min(self.sizing.final_bytes()),
            false => self.per_bucket,
        };
        let memory_bytes = match keyless && !self.spec.aggs.iter().any(|a| a.func.state_grows()) {
            true => part_bytes,
            false => self
                .sizing
                .final_bytes()
                .min(self.per_bucket.saturating_mul(GROUP_BYTES_PER_INPUT_BYTE)),
        };
        Ok((0..self.buckets)
            .map(|b| {
                let op = GroupFinal {
                    spec: self.spec.clone(),
                    input: SerializedSchema::new(&self.grouped),
                    bucket: b,
                    post: post.clone(),
                    table_bytes: self.sizing.final_bytes(),
                    sink: None,
                };
                let output = DataRef::partition(&groups_id, u64::from(b));
                let id = plan.push(Task {
                    inputs: self.partials.iter().map(|(r, _)| r.clone()).collect(),
                    deps: self.partials.iter().map(|(_, t)| *t).collect(),
                    memory_bytes,
                    unit_bytes: part_bytes,
                    ..Task::new(OpSpec::of(&op), output.clone(), TaskKind::Compute)
                });
                Part {
                    data: output,
                    task: Some(id),
                    bytes: part_bytes,
                }
            })
            .collect())
    }
}

/// Makes the tasks that publish `parts` write them as parts of the table output
/// `output` themselves ([`crate::frame::write::ops::publish_part`]) when every one
/// is a grouping's final task; returns whether they were. A bucket's groups then go
/// out encoded: at 1e8 nearly distinct groups (db-benchmark's q10), handing them
/// to encoding tasks through the store wrote every group to the spill file and read
/// it back once more.
///
/// # Errors
/// [`Error::BadPlan`] when a producer is not a task of `plan`, or its operation
/// does not decode.
pub fn write_in_finals(plan: &mut Plan, parts: &[(DataRef, TaskId)], output: &str) -> Result<bool> {
    let task = |plan: &Plan, id: TaskId| {
        plan.tasks
            .get(id as usize)
            .cloned()
            .ok_or_else(|| Error::BadPlan {
                reason: format!("part producer {id} is not a task of the plan"),
            })
    };
    for &(_, id) in parts {
        if task(plan, id)?.op.name != GroupFinal::NAME {
            return Ok(false);
        }
    }
    for &(_, id) in parts {
        let mut op: GroupFinal =
            serde_json::from_value(task(plan, id)?.op.params).map_err(|e| Error::BadPlan {
                reason: format!("task {id}'s group_final does not decode: {e}"),
            })?;
        op.sink = Some(output.to_string());
        plan.tasks[id as usize].op = OpSpec::of(&op);
    }
    Ok(!parts.is_empty())
}

/// Adds to `plan` the partial tasks of the aggregation `spec` of the rows of
/// `inputs`, each part passed through its pipeline (the parts of a union's
/// queries have their own) to rows of schema `grouped`. The final tasks come
/// from [`Partials::finals`].
///
/// # Errors
/// What [`GroupBy::check`] finds wrong with `spec` over `grouped`.
pub fn add_partials(
    plan: &mut Plan,
    inputs: &[(Part, Pipeline)],
    grouped: &SchemaRef,
    spec: &GroupBy,
    sizing: GroupSizing,
) -> Result<Partials> {
    let grouped = grouped.clone();
    spec.check(&grouped)?;
    let partials_id = intermediate(plan, PARTIALS);
    let input_bytes: u64 = inputs.iter().map(|(p, _)| p.bytes).sum();
    // Without keys there is one group: one bucket.
    let buckets = if spec.keys.is_empty() {
        1
    } else {
        sizing.buckets(input_bytes)
    };
    let table_bytes = sizing.table_bytes();
    let growing = spec.aggs.iter().any(|a| a.func.state_grows());
    let runs = partial_runs(input_bytes, sizing.threads, growing);
    let partials: Vec<(DataRef, TaskId)> = gather_evenly(inputs.to_vec(), runs)
        .iter()
        .enumerate()
        .map(|(i, (run, pre))| {
            let partial = GroupPartial {
                spec: spec.clone(),
                pre: pre.clone(),
                input: SerializedSchema::new(&grouped),
                buckets,
                table_bytes,
            };
            let output = DataRef::partition(&partials_id, i as u64);
            let (inputs, deps) = reading_inputs(run, pre);
            let id = plan.push(Task {
                inputs,
                deps,
                memory_bytes: 2 * table_bytes,
                unit_bytes: run.iter().map(|p| p.bytes).sum(),
                ..Task::new(OpSpec::of(&partial), output.clone(), TaskKind::Load)
            });
            (output, id)
        })
        .collect();
    Ok(Partials {
        spec: spec.clone(),
        grouped,
        partials,
        buckets,
        per_bucket: input_bytes / u64::from(buckets),
        sizing,
    })
}

/// A fresh intermediate dataset of `plan`, named after `name`.
fn intermediate(plan: &mut Plan, name: &str) -> String {
    let id = plan.fresh_id(name);
    plan.datasets
        .push(Dataset::new(&id, "", "memory", DatasetRole::Intermediate));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fit_a_final_task_and_are_a_multiple_of_the_threads() {
        let two = GroupSizing {
            threads: 2,
            memory_limit: 1 << 30,
        };
        // Nine buckets' worth of distinct groups: ten, five a thread.
        assert_eq!(two.buckets(3 * two.final_bytes()), 10);
        assert_eq!(two.buckets(4 * two.final_bytes()), 12);
        // A small input: two a thread.
        assert_eq!(two.buckets(1), 4);
        let seven = GroupSizing {
            threads: 7,
            memory_limit: 1 << 30,
        };
        assert_eq!(seven.buckets(1), 14);
        // The most a multiple of the threads too.
        assert_eq!(seven.buckets(u64::MAX), 4095);
        assert_eq!(two.buckets(u64::MAX), 4096);
    }
}
