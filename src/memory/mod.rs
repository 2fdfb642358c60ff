//! Memory: the pool that every structure growing with the data reserves from, the
//! readings of process memory, the threshold monitor, and the spill store with the
//! disk manager that owns its directory.

mod disk;
mod monitor;
mod pool;
mod rss;
pub mod spill;

pub use disk::{remove_all_spill_dirs, DiskManager};
pub use monitor::{parse_threshold, MemoryMonitor, RssSource, Thresholds};
pub use pool::{human_bytes, MemoryPool, Reservation};
pub use rss::{current_rss_bytes, peak_rss_bytes, physical_memory_bytes};
pub use spill::{
    SpillBatchReader, SpillCompression, SpillFile, SpillStore, Spillable, SpillableBatches,
    SpillableChunk,
};

/// The default memory limit: 80% of physical memory (or of the cgroup limit).
pub fn default_memory_limit() -> u64 {
    physical_memory_bytes() / 10 * 8
}
