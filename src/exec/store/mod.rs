//! The data stores of [`DataStore`](crate::plan::DataStore): [`DirStore`] (a shared
//! directory, for `run-task` and remote workers) and [`MemoryStore`] (in memory,
//! reserved and spillable, for the local executor).

mod dir;
mod memory;

pub use dir::DirStore;
pub use memory::MemoryStore;
