//! Executors: running a plan's tasks on the local thread pool, with the memory gate,
//! cancellation, progress and statistics. Every conversion, sort and rechunk is a
//! plan run here.

mod cancel;
mod context;
mod local;
mod progress;

pub use cancel::{interrupted, CancelToken};
pub use context::{JobContext, JobOptions, JobStats};
pub use local::{
    thread_pool, Admission, Event, LocalExecutor, MemoryGate, Observer, RunReport, TaskContext,
};
pub use progress::Progress;
