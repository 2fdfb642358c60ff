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
