//! Streaming and blocking operators over record batches.

pub mod sort;
