//! Plans: graphs of chunk tasks, their serialization, and the memory projection that
//! refuses a plan before it runs when one of its tasks cannot fit the budget.
//!
//! A plan is data (see `formats/plan-v2.md`): every task names its operation and
//! parameters, the chunks or partitions it reads, the one output it publishes, the
//! tasks it waits for, and the memory it may use at its peak. Nothing here runs a
//! task; `exec` does.

mod event;
mod graph;
mod operation;
mod projection;
mod store;
pub mod summary;
mod task;

pub use event::{Event, Observer};
pub use graph::{Dataset, DatasetRole, FileStamp, Plan, PLAN_FORMAT_VERSION};
pub use operation::{Operation, PreparedOperation, Registry, Resources, TaskEnv};
pub use projection::check_memory;
pub use store::{entry_file, with_metadata, BatchStream, BatchWriter, DataStore, Entry};
pub use summary::PlanSummary;
pub use task::{DataRef, OpSpec, Task, TaskId, TaskKind};
