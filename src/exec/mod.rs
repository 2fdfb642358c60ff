//! Executors: running a plan's tasks on the local thread pool, with the memory gate,
//! cancellation, progress and statistics. Every conversion, sort and rechunk is a
//! plan run here.

mod context;
#[cfg(test)]
mod gate_tests;
mod local;
mod progress;
pub mod report;
mod run;
mod store;

pub use crate::memory::{Admission, MemoryGate};
pub use crate::plan::{Event, Observer};
pub use crate::sys::{interrupted, CancelToken};
pub use context::{JobContext, JobOptions, JobStats};
pub use local::{thread_pool, LocalExecutor, RunReport, TaskContext};
pub use progress::Progress;
pub use report::{Recorder, ReportFile};
pub use run::{needed_tasks, run_task, Environment, SharedStore, TaskReport};
pub use store::{DirStore, MemoryStore};
