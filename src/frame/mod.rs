//! Frames: expressions, the logical plan, its lowering to tasks, and the
//! operators over streams of Arrow record batches (one operator a file in `ops/`).
//! The SQL front end ([`crate::sql`]) and the lazy `Frame` ([`crate::dataframe`])
//! both build a [`logical::LogicalPlan`].

pub mod expr;
pub mod logical;
pub mod ops;
pub mod optimize;
pub mod physical;
pub mod prune;
pub mod read;
pub mod write;
