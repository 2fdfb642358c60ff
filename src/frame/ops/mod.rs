//! Streaming and blocking operators over record batches.

pub mod aggregate;
pub mod pipeline;
pub mod sort;
pub mod stream;
pub mod window;

use crate::plan::{DataRef, TaskId};
use pipeline::Pipeline;

/// One part of an operator's input as a plan lays it out: a partition of a table
/// source (no task makes it), or the entry an earlier task publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where the rows are.
    pub data: DataRef,
    /// The task that publishes them (`None` for a source partition).
    pub task: Option<TaskId>,
    /// Bytes of input it stands for, as far as the plan knows (a source
    /// partition's; an estimate for an entry).
    pub bytes: u64,
}

impl Part {
    /// Partition `index` of the source dataset `dataset`, covering `bytes`.
    pub fn source(dataset: &str, index: u64, bytes: u64) -> Part {
        Part {
            data: DataRef::partition(dataset, index),
            task: None,
            bytes,
        }
    }
}

/// The inputs and dependencies of a task that reads `parts` through `pre`: the
/// parts, then the entries of the subqueries `pre` uses, in the order
/// [`Pipeline::subqueries`] lists them (what [`crate::frame::read::reading`]
/// expects), so that every executor runs the subqueries first and keeps their
/// entries until the task has read them.
pub fn reading_inputs(parts: &[Part], pre: &Pipeline) -> (Vec<DataRef>, Vec<TaskId>) {
    let mut inputs: Vec<DataRef> = parts.iter().map(|p| p.data.clone()).collect();
    let mut deps: Vec<TaskId> = parts.iter().filter_map(|p| p.task).collect();
    for (_, s) in pre.subqueries() {
        if let Some(e) = &s.entry {
            inputs.push(e.data.clone());
            if !deps.contains(&e.task) {
                deps.push(e.task);
            }
        }
    }
    (inputs, deps)
}

/// Bytes of input a task that reduces its rows (a partial grouping, a top k per
/// group) reads at most when its parts are small: about a CSV block's worth.
pub const GATHER_BYTES: u64 = 64 << 20;

/// Consecutive parts read through the same steps, gathered into runs of about
/// `target` bytes (one part at least, `GATHER_BYTES` at most), each run for one
/// task. A Parquet file's row groups are often a few MB each, and a grouping of
/// a few MB of rows hardly reduces keys of medium cardinality (db-benchmark's
/// `id6`: 100,000 values in a 123,000-row row group); read together, they do.
pub fn gather(parts: Vec<(Part, Pipeline)>, target: u64) -> Vec<(Vec<Part>, Pipeline)> {
    let target = target.clamp(1, GATHER_BYTES);
    let mut runs: Vec<(Vec<Part>, Pipeline, u64)> = Vec::new();
    for (part, pre) in parts {
        match runs.last_mut() {
            Some((run, steps, bytes)) if *steps == pre && *bytes + part.bytes <= target => {
                *bytes += part.bytes;
                run.push(part);
            }
            _ => {
                let bytes = part.bytes;
                runs.push((vec![part], pre, bytes));
            }
        }
    }
    runs.into_iter().map(|(run, pre, _)| (run, pre)).collect()
}

/// The bytes [`gather`] aims at for `total` bytes of input on `threads` threads
/// under `memory_limit`: four runs a thread at least, so that the threads end
/// together, and a run a small part of a task's share of the limit (its rows
/// may be held whole, as a top k's are).
pub fn gather_target(total: u64, threads: usize, memory_limit: u64) -> u64 {
    let threads = threads.max(1) as u64;
    (total / (4 * threads)).min(memory_limit / (8 * threads))
}

#[cfg(test)]
mod gather_tests {
    use super::*;

    fn part(i: u64, bytes: u64) -> (Part, Pipeline) {
        (Part::source("src", i, bytes), Pipeline::default())
    }

    #[test]
    fn consecutive_parts_of_the_same_steps_gather_up_to_the_target() {
        let parts: Vec<_> = (0..10).map(|i| part(i, 3)).collect();
        let runs = gather(parts, 10);
        let sizes: Vec<usize> = runs.iter().map(|(r, _)| r.len()).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        let order: Vec<DataRef> = runs
            .iter()
            .flat_map(|(r, _)| r.iter().map(|p| p.data.clone()))
            .collect();
        let want: Vec<DataRef> = (0..10).map(|i| DataRef::partition("src", i)).collect();
        assert_eq!(order, want);
        // A part larger than the target is a run of its own; other steps never
        // share a run.
        let mut parts = vec![part(0, 50), part(1, 2), part(2, 2)];
        parts[2].1 = Pipeline {
            steps: vec![pipeline::Step::Filter(crate::frame::expr::Expr::col("x"))],
        };
        assert_eq!(gather(parts, 10).len(), 3);
    }

    #[test]
    fn the_target_leaves_every_thread_work_and_fits_the_limit() {
        assert_eq!(gather_target(1 << 30, 2, 64 << 30), 128 << 20);
        assert_eq!(gather_target(1 << 30, 2, 1 << 30), 64 << 20);
        assert_eq!(gather_target(100, 2, 1 << 30), 12);
    }
}
