//! The spill directory of one job: where it is, how much it may hold, and its removal.
//!
//! A [`DiskManager`] creates a fresh directory under the spill root, counts the bytes
//! written there against a quota, and removes the directory when it is dropped. It
//! knows nothing about what the files hold; that is the spill store's business
//! (`spill.rs`). Live directories are also registered process-wide so that the
//! Ctrl-C handler can remove them with [`remove_all_spill_dirs`] when the process
//! exits before destructors run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Spill directories of this process that still exist, for the Ctrl-C handler.
static LIVE_SPILL_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Makes directory names unique within the process (the pid makes them unique across
/// processes sharing a root).
static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The share of the root's free space a job may spill by default: the rest stays for
/// the job's outputs and everyone else on the machine.
const DEFAULT_QUOTA_PERCENT: u64 = 90;

/// One job's spill directory with a disk quota; removed with everything in it on drop.
#[derive(Debug)]
pub struct DiskManager {
    dir: PathBuf,
    quota: u64,
    used: AtomicU64,
    next_file: AtomicU64,
}

impl DiskManager {
    /// Creates a fresh directory `root/blockwise-spill-<pid>-<n>`, readable only by
    /// this user, that may hold `quota` bytes (default: 90% of the free space of the
    /// filesystem holding `root`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when `root` does not exist; [`Error::Io`] when the directory
    /// cannot be created or the free space of `root` cannot be read.
    pub fn new(root: &Path, quota: Option<u64>) -> Result<Arc<DiskManager>> {
        if !root.is_dir() {
            return Err(Error::NotFound {
                path: root.to_path_buf(),
            });
        }
        let quota = match quota {
            Some(q) => q,
            None => available_bytes(root)? / 100 * DEFAULT_QUOTA_PERCENT,
        };
        let dir = create_fresh_dir(root)?;
        LIVE_SPILL_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.clone());
        Ok(Arc::new(DiskManager {
            dir,
            quota,
            used: AtomicU64::new(0),
            next_file: AtomicU64::new(0),
        }))
    }

    /// The spill directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The most bytes the directory may hold.
    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// Bytes reserved now: the size of the spill files on disk, plus any write under way.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// A path inside the directory that no other call returns: `<kind>-<n>`, where
    /// `kind` is a plain name such as `batches` or `chunk` (the caller may add an
    /// extension). Nothing is created.
    pub fn new_path(&self, kind: &str) -> PathBuf {
        debug_assert!(
            !kind.contains(std::path::is_separator),
            "spill file kind {kind:?} must be a plain name"
        );
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{kind}-{n:06}"))
    }

    /// Counts `bytes` more against the quota, before they are written.
    ///
    /// # Errors
    /// [`Error::SpillQuota`] when the bytes already used plus `bytes` would pass the
    /// quota; nothing is counted then.
    pub fn reserve(&self, bytes: u64) -> Result<()> {
        // A compare-and-swap loop, not a lock: writers on every thread call this for
        // each buffer they write.
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.quota)
            })
            .map(|_| ())
            .map_err(|used| Error::SpillQuota {
                dir: self.dir.clone(),
                requested: bytes,
                used,
                quota: self.quota,
            })
    }

    /// Gives back `bytes` reserved earlier (a file was removed or a write came out
    /// smaller than reserved).
    pub fn release(&self, bytes: u64) {
        // Saturating: a release past zero is a bookkeeping bug, but it must not wrap
        // around and make every later reservation fail.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

impl Drop for DiskManager {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        LIVE_SPILL_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != &self.dir);
    }
}

/// Removes every spill directory of this process that still exists: the last resort
/// of a Ctrl-C handler about to exit the process. Spill stores still using them fail
/// their next write or read with an I/O error.
pub fn remove_all_spill_dirs() {
    remove_spill_dirs_where(|_| true);
}

/// Removes (and forgets) the registered spill directories that `pick` selects. Tests
/// pick their own: they share the process with other tests' live directories.
fn remove_spill_dirs_where(pick: impl Fn(&Path) -> bool) {
    let picked: Vec<PathBuf> = {
        let mut live = LIVE_SPILL_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        let (picked, kept) = std::mem::take(&mut *live)
            .into_iter()
            .partition(|dir| pick(dir));
        *live = kept;
        picked
    };
    for dir in picked {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Creates `root/blockwise-spill-<pid>-<n>` with the first `n` not taken: a directory
/// left by an earlier process that had the same pid is skipped, never reused.
fn create_fresh_dir(root: &Path) -> Result<PathBuf> {
    let pid = std::process::id();
    loop {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("blockwise-spill-{pid}-{n}"));
        let mut builder = std::fs::DirBuilder::new();
        // Owner only: spill files hold the user's data, and the spill reader trusts
        // their contents (see spill.rs), so nobody else may read or replace them.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
}

/// Bytes an unprivileged user may still write to the filesystem holding `path`.
#[cfg(unix)]
fn available_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;

    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains a NUL byte"),
        )
    })?;
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is a plain struct
    // that statvfs fills in; it is read only when the call succeeds.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    // The casts widen on every platform (the field types differ between them).
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Without statvfs the free space is unknown; the quota is then unlimited unless set.
#[cfg(not(unix))]
fn available_bytes(_path: &Path) -> Result<u64> {
    Ok(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_fresh_directory_and_removes_it_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let a = DiskManager::new(root.path(), Some(100)).unwrap();
        let b = DiskManager::new(root.path(), Some(100)).unwrap();
        assert_ne!(a.dir(), b.dir());
        assert!(a.dir().is_dir() && a.dir().starts_with(root.path()));
        let name = a.dir().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("blockwise-spill-{}-", std::process::id())));
        std::fs::write(a.new_path("chunk"), b"x").unwrap();
        let dir = a.dir().to_path_buf();
        drop(a);
        assert!(!dir.exists());
        assert!(b.dir().is_dir());
    }

    #[test]
    fn missing_root_is_not_found() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("nope");
        assert!(matches!(
            DiskManager::new(&missing, None),
            Err(Error::NotFound { path }) if path == missing
        ));
    }

    #[test]
    fn default_quota_is_most_of_the_free_space() {
        let root = tempfile::tempdir().unwrap();
        let free = available_bytes(root.path()).unwrap();
        let disk = DiskManager::new(root.path(), None).unwrap();
        assert!(disk.quota() <= free);
        assert!(
            disk.quota() >= free / 100 * 80,
            "{} of {free}",
            disk.quota()
        );
    }

    #[test]
    fn reserve_past_the_quota_is_refused_and_counts_nothing() {
        let root = tempfile::tempdir().unwrap();
        let disk = DiskManager::new(root.path(), Some(1000)).unwrap();
        disk.reserve(600).unwrap();
        match disk.reserve(401) {
            Err(Error::SpillQuota {
                dir,
                requested,
                used,
                quota,
            }) => {
                assert_eq!(dir, disk.dir());
                assert_eq!((requested, used, quota), (401, 600, 1000));
            }
            other => panic!("expected SpillQuota, got {other:?}"),
        }
        assert_eq!(disk.used(), 600);
        disk.reserve(400).unwrap();
        disk.release(1000);
        assert_eq!(disk.used(), 0);
        disk.release(5);
        assert_eq!(disk.used(), 0);
    }

    #[test]
    fn new_paths_are_unique_and_inside_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let disk = DiskManager::new(root.path(), None).unwrap();
        let a = disk.new_path("chunk");
        let b = disk.new_path("chunk");
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(disk.dir()));
        assert!(!a.exists());
    }

    #[test]
    fn remove_all_spill_dirs_removes_live_directories() {
        let root = tempfile::tempdir().unwrap();
        let a = DiskManager::new(root.path(), None).unwrap();
        let b = DiskManager::new(root.path(), None).unwrap();
        std::fs::write(a.new_path("chunk"), b"x").unwrap();
        // The same code path as remove_all_spill_dirs, limited to this test's root so
        // that directories of tests running alongside survive.
        remove_spill_dirs_where(|dir| dir.starts_with(root.path()));
        assert!(!LIVE_SPILL_DIRS
            .lock()
            .unwrap()
            .iter()
            .any(|dir| dir.starts_with(root.path())));
        assert!(!a.dir().exists() && !b.dir().exists());
        // Dropping after the handler ran must be harmless.
        drop(a);
        drop(b);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
