//! The memory gate: what the executor asks the memory monitor at every task
//! boundary.

use crate::error::Result;

/// What the memory monitor says at a task boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New tasks may start.
    Run,
    /// No new task may start while others are running.
    Pause,
}

/// The executor's view of the memory monitor: asked at every task boundary.
pub trait MemoryGate: Send + Sync {
    /// Whether new tasks may start; an error (terminate) stops the job.
    ///
    /// # Errors
    /// When the job must stop to keep the process alive.
    fn admit(&self) -> Result<Admission>;
}
