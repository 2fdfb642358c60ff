//! Memory: the pool that every structure growing with the data reserves from, and
//! the readings of process memory the thresholds are measured on.

mod disk;
mod pool;
mod rss;
pub mod spill;

pub use pool::{human_bytes, MemoryPool, Reservation};
pub use rss::{current_rss_bytes, peak_rss_bytes, physical_memory_bytes};

/// The default memory limit: 80% of physical memory (or of the cgroup limit).
pub fn default_memory_limit() -> u64 {
    physical_memory_bytes() / 10 * 8
}
