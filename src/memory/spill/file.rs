//! One file in the spill directory: the [`SpillFile`] that removes it when dropped,
//! the writer that counts its bytes against the quota, and the memory map it is read
//! back from. What the bytes mean is the business of `chunk` and `ipc`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, IoResultExt, Result};
use crate::memory::disk::DiskManager;

/// The name `Error::Corrupt` gives spill files.
pub(super) const FORMAT_NAME: &str = "blockwise spill";

/// What a spill file holds, which decides how it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SpillKind {
    /// Record batches in the Arrow IPC file format.
    IpcFile,
    /// Record batches in the Arrow IPC stream format: used when the schema has a
    /// dictionary column, because the file format cannot hold a dictionary that changes
    /// from batch to batch (every Parquet row group brings its own).
    IpcStream,
    /// A raw chunk file.
    Chunk,
}

/// One file in the spill directory; removed, and its bytes given back to the quota,
/// when dropped.
#[derive(Debug)]
pub struct SpillFile {
    pub(super) path: PathBuf,
    pub(super) disk: Arc<DiskManager>,
    pub(super) kind: SpillKind,
    pub(super) disk_bytes: u64,
    pub(super) uncompressed_bytes: u64,
}

impl SpillFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size on disk (what it counts against the quota).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// The size of the data before compression: a chunk's length, or the Arrow memory
    /// size of the batches.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.uncompressed_bytes
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        // A batch read back without compression still maps the file; unlinking is
        // safe then (the pages live until the last batch goes), only the quota stops
        // counting them.
        let _ = std::fs::remove_file(&self.path);
        self.disk.release(self.disk_bytes);
    }
}

/// A file writer that counts every buffer against the quota before writing it.
pub(super) struct QuotaWriter<'a> {
    pub(super) file: File,
    pub(super) disk: &'a DiskManager,
    pub(super) written: &'a mut u64,
}

impl Write for QuotaWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let asked = buf.len() as u64;
        // Carried inside the io::Error so it survives Arrow's and zstd's error
        // wrapping; `io_error` takes it out again.
        self.disk.reserve(asked).map_err(std::io::Error::other)?;
        match self.file.write(buf) {
            Ok(n) => {
                self.disk.release(asked - n as u64);
                *self.written += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.disk.release(asked);
                // The disk filled before the quota did: still the quota's error (exit
                // 2, with the numbers), not a raw "No space left on device".
                if is_full_disk(&e) {
                    return Err(std::io::Error::other(self.disk.full_error(asked)));
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// ENOSPC, EDQUOT or EFBIG: the bytes did not fit on the spill disk.
pub(super) fn is_full_disk(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

pub(super) fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).at(path)?;
    // SAFETY: spill files live in this process's private spill directory and are never
    // written again after `write_*` returns, so the mapped bytes cannot change under
    // the reader. (Removing the file, as Ctrl-C does, leaves the mapping valid.)
    let map = unsafe { Mmap::map(&file) }.at(path)?;
    #[cfg(unix)]
    {
        // Spill files are read front to back once: read ahead, then let pages go.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(map)
}

/// Turns a writer's I/O error into ours, taking out a quota refusal carried inside it.
pub(super) fn io_error(path: &Path, e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(Ok(ours)) = e.into_inner().map(|inner| inner.downcast::<Error>()) {
            return *ours;
        }
        return Error::bug("a spill write lost its quota error", "");
    }
    Error::io(path, e)
}

pub(super) fn kind_error(path: &Path, is: &str, read_as: &str) -> Error {
    Error::bug(
        "a spill file read as another kind",
        format!("{} is {is} file, read as {read_as}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::spill::test_support::{files_in, pseudo_random, sample_batches, store, ALL};
    use crate::memory::spill::{SpillCompression, CHUNK_HEADER_LEN};

    #[test]
    fn quota_exceeded_gives_spill_quota_and_leaves_no_file() {
        let (schema, batches) = sample_batches();
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), Some(10_000), compression);
            let kept = store.write_chunk(&[1u8; 1000]).unwrap();
            let used = store.disk().used();
            assert_eq!(used, kept.disk_bytes());
            for result in [
                store.write_chunk(&pseudo_random(400_000, 4)),
                store.write_batches(&schema, &batches),
            ] {
                match result {
                    Err(Error::SpillQuota { quota, dir, .. }) => {
                        assert_eq!(quota, 10_000);
                        assert_eq!(dir, store.disk().dir());
                    }
                    other => panic!("expected SpillQuota with {compression}, got {other:?}"),
                }
                assert_eq!(files_in(store.disk().dir()), 1, "{compression}");
                assert_eq!(store.disk().used(), used);
            }
            assert_eq!(store.spill_files(), 1);
        }
    }

    #[test]
    fn a_full_disk_under_the_quota_is_the_quota_error() {
        let root = tempfile::tempdir().unwrap();
        let disk = DiskManager::new(root.path(), Some(1 << 40)).unwrap();
        disk.reserve(100).unwrap();
        // /dev/full answers every write with ENOSPC.
        let Ok(file) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut written = 0;
        let mut writer = QuotaWriter {
            file,
            disk: &disk,
            written: &mut written,
        };
        let err = writer.write_all(&[0u8; 4096]).unwrap_err();
        match io_error(Path::new("/dev/full"), err) {
            Error::SpillQuota {
                requested, used, ..
            } => assert_eq!((requested, used), (4096, 100)),
            other => panic!("expected SpillQuota, got {other:?}"),
        }
        assert_eq!(disk.used(), 100, "the refused write is not counted");
    }

    #[test]
    fn dropping_a_spill_file_frees_its_quota_and_removes_it() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::None);
        let a = store.write_chunk(&[3u8; 5000]).unwrap();
        let b = store.write_chunk(&[4u8; 100]).unwrap();
        assert_eq!(a.disk_bytes(), 5000 + CHUNK_HEADER_LEN as u64);
        assert_eq!(store.disk().used(), a.disk_bytes() + b.disk_bytes());
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        assert_eq!(store.disk().used(), b.disk_bytes());
        drop(b);
        assert_eq!(store.disk().used(), 0);
        assert_eq!(files_in(store.disk().dir()), 0);
    }

    #[test]
    fn the_directory_goes_with_the_last_store_and_file() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::default());
        let dir = store.disk().dir().to_path_buf();
        let file = store.write_chunk(b"abc").unwrap();
        drop(store);
        // The file holds the directory's manager: reading it must still work.
        assert!(dir.is_dir() && file.path().exists());
        drop(file);
        assert!(!dir.exists());
        assert_eq!(files_in(root.path()), 0);
    }
}
