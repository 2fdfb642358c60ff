//! The spill store: the one place spill I/O lives.
//!
//! Operators decide what their bytes mean and when to spill them; this module only
//! writes them to the job's spill directory and reads them back. Frame blocks are
//! written as Arrow IPC files and read back zero-copy from a memory map; array chunks
//! are written as raw chunk files (a 32-byte header, then the bytes, zstd-compressed
//! or not) and decompressed straight from a memory map. The layouts are specified in
//! `formats/spill-v1.md`.
//!
//! Every byte is counted against the [`DiskManager`]'s quota *before* it is written,
//! one buffer at a time, so a spill that would pass the quota fails with
//! [`Error::SpillQuota`] and never fills the disk; the partial file is removed. A
//! [`SpillFile`] removes its file and gives its bytes back to the quota when dropped.
//!
//! The [`Spillable`] trait and its two implementations, [`SpillableBatches`] and
//! [`SpillableChunk`], are what the memory monitor moves to disk under pressure.
//! Choosing *which* blocks to spill is the monitor's business, not this module's.
//!
//! [`Error::SpillQuota`]: crate::error::Error::SpillQuota

// One file per role: the store's batch methods live in `ipc`, its chunk methods in
// `chunk`, the file handle and its quota-counting writer in `file`.
mod chunk;
mod compression;
mod file;
mod ipc;
mod spillable;
#[cfg(test)]
mod test_support;

use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::disk::DiskManager;
use super::monitor::{MemoryEvent, MemoryListener};
use crate::error::{Error, Result};
use file::SpillKind;

pub use chunk::{CHUNK_HEADER_LEN, CHUNK_MAGIC};
pub use compression::SpillCompression;
pub use file::SpillFile;
pub use ipc::SpillBatchReader;
pub use spillable::{Spillable, SpillableBatches, SpillableChunk};

#[derive(Debug)]
struct Inner {
    disk: Arc<DiskManager>,
    compression: SpillCompression,
    spilled_bytes: AtomicU64,
    spill_files: AtomicU64,
    disk_bytes_written: AtomicU64,
    /// Told of spills and reads back (and, through the monitor, of its readings):
    /// set only when a job records a report.
    listener: OnceLock<MemoryListener>,
}

/// Writes spill files to one job's spill directory and reads them back. Cheap to
/// clone; clones share the directory, the quota and the counters.
#[derive(Debug, Clone)]
pub struct SpillStore {
    inner: Arc<Inner>,
}

impl SpillStore {
    /// A store writing to `disk`'s directory with `compression`.
    pub fn new(disk: Arc<DiskManager>, compression: SpillCompression) -> SpillStore {
        SpillStore {
            inner: Arc::new(Inner {
                disk,
                compression,
                spilled_bytes: AtomicU64::new(0),
                spill_files: AtomicU64::new(0),
                disk_bytes_written: AtomicU64::new(0),
                listener: OnceLock::new(),
            }),
        }
    }

    /// The spill directory and its quota.
    pub fn disk(&self) -> &Arc<DiskManager> {
        &self.inner.disk
    }

    /// The compression asked for (it may be [`SpillCompression::Auto`]).
    pub fn compression(&self) -> SpillCompression {
        self.inner.compression
    }

    /// The compression of a file written now: [`SpillCompression::Auto`] decided by
    /// what the spill directory holds against its quota.
    pub fn compression_now(&self) -> SpillCompression {
        let disk = &self.inner.disk;
        self.inner.compression.resolve(disk.used(), disk.quota())
    }

    /// Uncompressed bytes ever spilled through this store (and its clones).
    pub fn spilled_bytes(&self) -> u64 {
        self.inner.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Spill files ever written.
    pub fn spill_files(&self) -> u64 {
        self.inner.spill_files.load(Ordering::Relaxed)
    }

    /// Bytes ever written to disk (after compression).
    pub fn disk_bytes_written(&self) -> u64 {
        self.inner.disk_bytes_written.load(Ordering::Relaxed)
    }

    /// Sends this store's (and its clones', and its monitor's) [`MemoryEvent`]s to
    /// `listener` from now on. One listener a store: returns false, and changes
    /// nothing, when one is set already.
    pub fn listen(&self, listener: MemoryListener) -> bool {
        self.inner.listener.set(listener).is_ok()
    }

    /// Tells the listener, if any, of `event`.
    pub(crate) fn notify(&self, event: MemoryEvent) {
        if let Some(listener) = self.inner.listener.get() {
            listener.send(event);
        }
    }

    /// The listener, for a reader that outlives its borrow of the store.
    fn listener(&self) -> Option<MemoryListener> {
        self.inner.listener.get().cloned()
    }

    /// Creates an empty spill file, already owned by a [`SpillFile`] so that every
    /// error after this point removes it.
    fn create(&self, kind: SpillKind, ext: &str, uncompressed: u64) -> Result<(File, SpillFile)> {
        let disk = &self.inner.disk;
        let path = disk
            .new_path(if kind == SpillKind::Chunk {
                "chunk"
            } else {
                "batches"
            })
            .with_extension(ext);
        let out = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(out) => out,
            // Out of inodes, or of blocks for the directory entry.
            Err(e) if file::is_full_disk(&e) => return Err(disk.full_error(0)),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let spill = SpillFile {
            path,
            disk: disk.clone(),
            kind,
            disk_bytes: 0,
            uncompressed_bytes: uncompressed,
        };
        Ok((out, spill))
    }

    fn count(&self, file: &SpillFile) {
        let inner = &self.inner;
        inner
            .spilled_bytes
            .fetch_add(file.uncompressed_bytes, Ordering::Relaxed);
        inner.spill_files.fetch_add(1, Ordering::Relaxed);
        inner
            .disk_bytes_written
            .fetch_add(file.disk_bytes, Ordering::Relaxed);
        self.notify(MemoryEvent::Spilled(file.uncompressed_bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::spill::test_support::{pseudo_random, store};

    #[test]
    fn counters_add_up_across_clones() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::Zstd(1));
        let clone = store.clone();
        let a = store.write_chunk(&vec![0u8; 10_000]).unwrap();
        let b = clone.write_chunk(&pseudo_random(2000, 5)).unwrap();
        assert_eq!(store.spill_files(), 2);
        assert_eq!(clone.spilled_bytes(), 12_000);
        assert_eq!(store.disk_bytes_written(), a.disk_bytes() + b.disk_bytes());
        assert!(a.disk_bytes() < 1000);
        drop((a, b));
        // Counters are history: removing files does not lower them.
        assert_eq!(store.spill_files(), 2);
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SpillStore>();
        check::<SpillFile>();
        check::<SpillableBatches>();
        check::<SpillableChunk>();
    }
}
