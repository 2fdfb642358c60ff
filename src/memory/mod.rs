//! Memory: the pool that every structure growing with the data reserves from, the
//! readings of process memory, the threshold monitor, and the spill store with the
//! disk manager that owns its directory.

mod allocator;
mod disk;
mod gate;
mod monitor;
mod pool;
mod rss;
pub mod spill;

pub use allocator::{bound_allocator_retention, HugePageAlloc};
pub use disk::{reclaim_stale_spill_dirs, remove_all_spill_dirs, DiskCharge, DiskManager};
pub use gate::{Admission, MemoryGate};
pub use monitor::{
    parse_threshold, MemoryEvent, MemoryListener, MemoryMonitor, RssSource, Thresholds,
    RUNTIME_ALLOWANCE_PER_THREAD,
};
pub use pool::{human_bytes, MemoryPool, Reservation};
pub use rss::{current_rss_bytes, peak_rss_bytes, physical_memory_bytes, unreclaimable_rss_bytes};
pub use spill::{
    SpillBatchReader, SpillCompression, SpillFile, SpillStore, Spillable, SpillableBatches,
    SpillableChunk,
};

/// Memory a record batch holds of its own: its slice of each buffer. A slice of a
/// large batch counts only its rows, and a batch read zero-copy from a memory-mapped
/// file counts only its bytes, where `get_array_memory_size` would count the whole
/// underlying buffer (or map) for each of them.
pub fn batch_memory(batch: &arrow::record_batch::RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size()) as u64
        })
        .sum()
}

/// The default memory limit: 80% of physical memory (or of the cgroup limit).
pub fn default_memory_limit() -> u64 {
    physical_memory_bytes() / 10 * 8
}
