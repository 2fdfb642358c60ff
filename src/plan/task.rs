//! One chunk task: what it runs, what it reads, what it writes.

use serde::{Deserialize, Serialize};

/// A task's index in its plan.
pub type TaskId = u32;

/// An operation and its parameters, versioned so that a worker running an older or
/// newer blockwise refuses what it does not understand instead of guessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSpec {
    /// The operation's name, e.g. `"copy_block"` or `"sort_run"`.
    pub name: String,
    /// The version of the operation's parameters.
    pub version: u32,
    /// Operation-specific parameters.
    #[serde(default)]
    pub params: serde_json::Value,
}

impl OpSpec {
    /// An operation at version 1 with `params`.
    pub fn new(name: impl Into<String>, params: serde_json::Value) -> Self {
        OpSpec {
            name: name.into(),
            version: 1,
            params,
        }
    }
}

/// A piece of a dataset that a task reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DataRef {
    /// One chunk of an array, by its grid index.
    Chunk {
        /// The dataset's id in the plan.
        dataset: String,
        /// The chunk's index in the chunk grid.
        key: Vec<u64>,
    },
    /// One partition of a table.
    Partition {
        /// The dataset's id in the plan.
        dataset: String,
        /// The partition's index.
        index: u64,
    },
    /// A whole dataset (metadata, or a small result).
    Whole {
        /// The dataset's id in the plan.
        dataset: String,
    },
}

impl DataRef {
    /// The id of the dataset it belongs to.
    pub fn dataset(&self) -> &str {
        match self {
            DataRef::Chunk { dataset, .. }
            | DataRef::Partition { dataset, .. }
            | DataRef::Whole { dataset } => dataset,
        }
    }

    /// A partition of `dataset`.
    pub fn partition(dataset: &str, index: u64) -> Self {
        DataRef::Partition {
            dataset: dataset.into(),
            index,
        }
    }

    /// A chunk of `dataset`.
    pub fn chunk(dataset: &str, key: Vec<u64>) -> Self {
        DataRef::Chunk {
            dataset: dataset.into(),
            key,
        }
    }

    /// The whole of `dataset`.
    pub fn whole(dataset: &str) -> Self {
        DataRef::Whole {
            dataset: dataset.into(),
        }
    }

    /// The entry's name inside the store's directory, without extension:
    /// `runs/3`, `chunks/0.2`, `fences/whole`.
    pub fn store_name(&self) -> String {
        match self {
            DataRef::Partition { dataset, index } => format!("{dataset}/{index}"),
            DataRef::Chunk { dataset, key } => {
                let parts: Vec<String> = key.iter().map(u64::to_string).collect();
                format!("{dataset}/c{}", parts.join("."))
            }
            DataRef::Whole { dataset } => format!("{dataset}/whole"),
        }
    }
}

impl std::fmt::Display for DataRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataRef::Partition { dataset, index } => write!(f, "partition {index} of {dataset:?}"),
            DataRef::Chunk { dataset, key } => write!(f, "chunk {key:?} of {dataset:?}"),
            DataRef::Whole { dataset } => write!(f, "dataset {dataset:?}"),
        }
    }
}

/// What a task does to memory, which the executor uses to order ready tasks: work
/// that releases memory goes before work that loads more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Reads new data into memory (a scan, a chunk load).
    Load,
    /// Transforms data already loaded.
    Compute,
    /// Frees memory: writes an output, finishes a reduction, merges runs.
    Release,
}

/// One unit of work in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Index of this task in the plan.
    pub id: TaskId,
    /// What to run.
    pub op: OpSpec,
    /// What it reads.
    #[serde(default)]
    pub inputs: Vec<DataRef>,
    /// The one output it publishes (atomically: temporary name, then rename).
    pub output: DataRef,
    /// Tasks that must finish first.
    #[serde(default)]
    pub deps: Vec<TaskId>,
    /// Projected peak memory in bytes.
    pub memory_bytes: u64,
    /// Bytes of the unit of work the memory projection scales with (one chunk, one
    /// partition); used to suggest a size that fits.
    #[serde(default)]
    pub unit_bytes: u64,
    /// Load, compute or release.
    pub kind: TaskKind,
}

impl Task {
    /// A task of `kind` running `op` into `output`, with no inputs, no dependencies
    /// and no projected memory yet; `Plan::push` sets its id.
    pub fn new(op: OpSpec, output: DataRef, kind: TaskKind) -> Self {
        Task {
            id: 0,
            op,
            inputs: Vec::new(),
            output,
            deps: Vec::new(),
            memory_bytes: 0,
            unit_bytes: 0,
            kind,
        }
    }
}
