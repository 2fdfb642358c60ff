//! What happens while a plan runs, as executors and operations report it.

use super::TaskId;

/// Something that happened while a plan ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A task started.
    TaskStarted(TaskId),
    /// A task finished successfully.
    TaskFinished(TaskId),
    /// A task was not run because its output was already published (a resumed run).
    TaskSkipped(TaskId),
    /// A task read this many bytes of input.
    BytesRead(u64),
    /// A task wrote this many bytes of output.
    BytesWritten(u64),
    /// This many rows were written to the output.
    RowsWritten(u64),
    /// This many bytes were spilled to disk.
    BytesSpilled(u64),
    /// The memory gate started holding new tasks back (the pause threshold);
    /// running tasks go on.
    Paused,
    /// New tasks may start again after a pause.
    Resumed,
    /// Something the user should know that does not stop the job (e.g. an output of
    /// more than a million chunk files); front ends print it.
    Warning(String),
}

/// Receives events as they happen (the progress bar, `--stats`, tests).
pub trait Observer: Send + Sync {
    /// Called from whichever thread the event happened on.
    fn on_event(&self, event: &Event);
}
