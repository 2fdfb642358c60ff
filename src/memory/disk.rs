//! The spill directory of one job: where it is, how much it may hold, and its removal.
//!
//! A [`DiskManager`] creates a fresh directory under the spill root, counts the bytes
//! written there against a quota, and removes the directory when it is dropped. It
//! knows nothing about what the files hold; that is the spill store's business
//! (`spill.rs`). Live directories are also registered process-wide so that the
//! Ctrl-C handler can remove them with [`remove_all_spill_dirs`] when the process
//! exits before destructors run.
//!
//! A process killed outright (SIGKILL, a crash, the OOM killer) runs no handler and
//! leaves its directory behind. Each live directory therefore holds a `.lock` file
//! that its process keeps locked (`flock`, released by the kernel when the process
//! dies, however it dies), and its name carries the PID: when a job creates its
//! directory, it first reclaims the `blockwise-spill-PID-N` directories of the root
//! whose process no longer exists *and* whose lock is free ([`Reclaimed`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::sys::{process_alive, remove_path, tree_bytes, Reclaimed};

/// Spill directories of this process that still exist, for the Ctrl-C handler.
static LIVE_SPILL_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Makes directory names unique within the process (the pid makes them unique across
/// processes sharing a root).
static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The share of the root's free space a job may spill by default: the rest stays for
/// the job's outputs and everyone else on the machine.
const DEFAULT_QUOTA_PERCENT: u64 = 90;

/// The prefix of every spill directory's name: `blockwise-spill-<pid>-<n>`.
const DIR_PREFIX: &str = "blockwise-spill-";
/// The file inside a live spill directory that its process holds locked.
const LOCK_FILE: &str = ".lock";

/// One job's spill directory with a disk quota; removed with everything in it on drop.
#[derive(Debug)]
pub struct DiskManager {
    dir: PathBuf,
    quota: u64,
    used: AtomicU64,
    next_file: AtomicU64,
    reclaimed: Reclaimed,
    /// Held open (and locked) for the directory's life: the lock tells other
    /// processes this directory is in use, whatever its PID says.
    _lock: Option<File>,
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
        let reclaimed = reclaim_stale_spill_dirs(root);
        let dir = create_fresh_dir(root)?;
        LIVE_SPILL_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.clone());
        // Best effort: without the lock (a filesystem without flock) the PID alone
        // protects the directory, as it did before locks existed.
        let lock = lock_dir(&dir);
        Ok(Arc::new(DiskManager {
            dir,
            quota,
            used: AtomicU64::new(0),
            next_file: AtomicU64::new(0),
            reclaimed,
            _lock: lock,
        }))
    }

    /// What creating this directory reclaimed from dead processes in the root.
    pub fn reclaimed(&self) -> &Reclaimed {
        &self.reclaimed
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

    /// The quota error for a write of `requested` bytes that the filesystem refused
    /// (ENOSPC, EDQUOT) before the quota was reached: the disk filled up with other
    /// files, or the quota was set above what the disk holds. The quota it reports is
    /// what the directory could really hold: the bytes used plus the space still free
    /// (never more than the quota set), so "used + requested > quota" holds.
    pub fn full_error(&self, requested: u64) -> Error {
        let used = self.used();
        let free = available_bytes(&self.dir).unwrap_or(0);
        Error::SpillQuota {
            dir: self.dir.clone(),
            requested,
            used,
            quota: self.quota.min(used.saturating_add(free)),
        }
    }

    /// Turns a full-disk error on a path inside this directory into the quota error
    /// for a write of `requested` bytes; other errors are returned unchanged. For
    /// writers that report a full disk as [`Error::DiskFull`] (the Zarr sink of a
    /// staged rechunk) rather than through the spill store.
    pub fn map_full(&self, error: Error, requested: u64) -> Error {
        match &error {
            Error::DiskFull { path } if path.starts_with(&self.dir) => self.full_error(requested),
            _ => error,
        }
    }

    /// A running count of bytes written to this directory by a writer other than the
    /// spill store (a staged rechunk's intermediate arrays), released when dropped.
    pub fn charge(self: &Arc<Self>) -> DiskCharge {
        DiskCharge {
            disk: self.clone(),
            bytes: AtomicU64::new(0),
        }
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
        remove_path(&self.dir);
        LIVE_SPILL_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != &self.dir);
    }
}

/// Bytes of intermediate files in a spill directory counted against its quota; given
/// back when dropped (the files go with the directory, or before).
#[derive(Debug)]
pub struct DiskCharge {
    disk: Arc<DiskManager>,
    bytes: AtomicU64,
}

impl DiskCharge {
    /// Counts `bytes` more, before they are written.
    ///
    /// # Errors
    /// [`Error::SpillQuota`] when they would pass the quota; nothing is counted then.
    pub fn add(&self, bytes: u64) -> Result<()> {
        self.disk.reserve(bytes)?;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for DiskCharge {
    fn drop(&mut self) {
        self.disk.release(self.bytes.load(Ordering::Relaxed));
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
        remove_path(&dir);
    }
}

/// Removes the spill directories in `root` left by processes that no longer exist;
/// never a directory of a live process (its PID answers `kill(pid, 0)`, or its lock
/// is held). Errors are ignored: reclaiming is housekeeping, and what cannot be
/// removed (another user's directory) stays.
///
/// A PID is checked in this process's PID namespace; the lock covers directories of
/// processes in other namespaces sharing the root.
pub fn reclaim_stale_spill_dirs(root: &Path) -> Reclaimed {
    let mut reclaimed = Reclaimed::new(root);
    let Ok(entries) = std::fs::read_dir(root) else {
        return reclaimed;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(spill_dir_pid) else {
            continue;
        };
        // A symlink with a spill directory's name is not ours to follow.
        if pid == me || !entry.file_type().is_ok_and(|t| t.is_dir()) || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        if lock_held(&path) {
            continue;
        }
        let bytes = tree_bytes(&path);
        remove_path(&path);
        if path.symlink_metadata().is_err() {
            reclaimed.removed(pid, bytes);
        }
    }
    reclaimed
}

/// The PID in a spill directory's name `blockwise-spill-<pid>-<n>`.
fn spill_dir_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(DIR_PREFIX)?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// Creates and locks the lock file of a new spill directory.
fn lock_dir(dir: &Path) -> Option<File> {
    let file = File::create(dir.join(LOCK_FILE)).ok()?;
    try_lock(&file).then_some(file)
}

/// Whether another process holds the lock of the spill directory `dir`. A directory
/// without a lock file (written before locks existed, or its process died before
/// creating it) is not locked.
fn lock_held(dir: &Path) -> bool {
    match File::open(dir.join(LOCK_FILE)) {
        // The probe's own lock goes when `file` is dropped.
        Ok(file) => !try_lock(&file),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Takes an exclusive `flock` on `file` without waiting.
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Creates `root/blockwise-spill-<pid>-<n>` with the first `n` not taken: a directory
/// left by an earlier process that had the same pid is skipped, never reused.
fn create_fresh_dir(root: &Path) -> Result<PathBuf> {
    let pid = std::process::id();
    loop {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("{DIR_PREFIX}{pid}-{n}"));
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

    /// The PID of a process that has just exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn stale_directories_of_dead_processes_are_reclaimed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let stale = root.path().join(format!("blockwise-spill-{dead}-0"));
        std::fs::create_dir_all(stale.join("sub")).unwrap();
        std::fs::write(stale.join("batches-000000.arrow"), vec![1u8; 1000]).unwrap();
        std::fs::write(stale.join("sub").join("c"), vec![1u8; 24]).unwrap();
        // Alive: PID 1 (always exists), and this process's parent.
        let init = root.path().join("blockwise-spill-1-0");
        std::fs::create_dir(&init).unwrap();
        // Dead PID but locked (a process in another PID namespace): kept.
        let locked = root.path().join(format!("blockwise-spill-{dead}-1"));
        std::fs::create_dir(&locked).unwrap();
        let lock = lock_dir(&locked).unwrap();
        // Not a spill directory's name, or not a directory: never touched.
        let other = root.path().join(format!("blockwise-spill-{dead}-x"));
        std::fs::create_dir(&other).unwrap();
        std::fs::write(root.path().join(format!("blockwise-spill-{dead}-2")), b"f").unwrap();

        let disk = DiskManager::new(root.path(), Some(100)).unwrap();
        let r = disk.reclaimed();
        assert_eq!((r.entries, r.bytes, r.pids.clone()), (1, 1024, vec![dead]));
        assert_eq!(r.dir, root.path());
        assert!(!stale.exists());
        assert!(init.exists() && locked.exists() && other.exists());
        assert_eq!(
            r.message().unwrap(),
            format!(
                "reclaimed 1024 bytes of stale temporaries left by process(es) {dead} in {}",
                root.path().display()
            )
        );
        // A second job finds nothing more; once the lock goes, the locked one goes too.
        assert_eq!(
            DiskManager::new(root.path(), None)
                .unwrap()
                .reclaimed()
                .message(),
            None
        );
        drop(lock);
        assert_eq!(reclaim_stale_spill_dirs(root.path()).entries, 1);
        assert!(!locked.exists());
    }

    #[test]
    fn a_live_job_directory_is_never_reclaimed() {
        let root = tempfile::tempdir().unwrap();
        let a = DiskManager::new(root.path(), None).unwrap();
        assert!(a.dir().join(LOCK_FILE).is_file());
        // Even renamed to a dead PID, the lock keeps it.
        let moved = root
            .path()
            .join(format!("blockwise-spill-{}-9", dead_pid()));
        std::fs::rename(a.dir(), &moved).unwrap();
        assert_eq!(reclaim_stale_spill_dirs(root.path()).entries, 0);
        assert!(moved.is_dir());
        std::fs::rename(&moved, a.dir()).unwrap();
    }

    #[test]
    fn spill_dir_names_parse() {
        assert_eq!(spill_dir_pid("blockwise-spill-123-4"), Some(123));
        for bad in [
            "blockwise-spill-123",
            "blockwise-spill--4",
            "blockwise-spill-1-2-3",
            "x-1-2",
        ] {
            assert_eq!(spill_dir_pid(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_disk_is_the_quota_error_with_what_the_disk_could_hold() {
        let root = tempfile::tempdir().unwrap();
        let disk = DiskManager::new(root.path(), Some(u64::MAX / 2)).unwrap();
        disk.reserve(500).unwrap();
        match disk.full_error(4096) {
            Error::SpillQuota {
                dir,
                requested,
                used,
                quota,
            } => {
                assert_eq!((dir.as_path(), requested, used), (disk.dir(), 4096, 500));
                // Not the quota set (half of u64): what was used plus what is free.
                assert!((500..u64::MAX / 2).contains(&quota), "{quota}");
            }
            other => panic!("expected SpillQuota, got {other:?}"),
        }
        let inside = Error::DiskFull {
            path: disk.dir().join("rechunk-000001.zarr/c/0/0"),
        };
        assert!(matches!(
            disk.map_full(inside, 7),
            Error::SpillQuota { requested: 7, .. }
        ));
        let outside = Error::DiskFull {
            path: root.path().join("out.zarr"),
        };
        assert!(matches!(disk.map_full(outside, 7), Error::DiskFull { .. }));
    }

    #[test]
    fn charges_count_against_the_quota_until_dropped() {
        let root = tempfile::tempdir().unwrap();
        let disk = DiskManager::new(root.path(), Some(1000)).unwrap();
        let charge = disk.charge();
        charge.add(600).unwrap();
        assert!(matches!(
            charge.add(500),
            Err(Error::SpillQuota { used: 600, .. })
        ));
        assert_eq!((charge.bytes(), disk.used()), (600, 600));
        drop(charge);
        assert_eq!(disk.used(), 0);
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
