//! Streaming and blocking operators over record batches.

pub mod aggregate;
pub mod sort;
