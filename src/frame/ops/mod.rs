//! Streaming and blocking operators over record batches.

pub mod aggregate;
pub mod pipeline;
pub mod sort;
pub mod stream;
pub mod window;

use crate::plan::{DataRef, TaskId};

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
