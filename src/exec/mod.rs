//! Executors: running a job's work on the local threads, with cancellation, progress
//! and statistics.
//!
//! This session's executor streams partitions through an ordered pipeline and maps
//! chunk tasks over a thread pool; the task-graph executor of DESIGN.md builds on
//! these pieces.

mod cancel;
mod context;
mod local;
mod ordered;
mod progress;

pub use cancel::CancelToken;
pub use context::{JobContext, JobOptions, JobStats};
pub use local::{
    thread_pool, Admission, Event, LocalExecutor, MemoryGate, Observer, RunReport, TaskContext,
};
pub use ordered::{for_each_ordered, for_each_ordered_with};
pub use progress::Progress;
