//! Atomic outputs: everything is written under a temporary sibling name and renamed
//! into place at the end, so a failure or Ctrl-C never leaves half a file and never
//! touches an existing output.
//!
//! Every output goes through [`AtomicOutput`], which is therefore where the rules
//! that protect the user's data live, checked before anything is written:
//! - the output may not be, contain or sit inside an input (canonical paths);
//! - only a regular file or a directory holding a dataset blockwise writes (a Zarr
//!   array, a Parquet directory, an npy stack) is ever replaced, and only when asked;
//!   a symbolic link, FIFO, device or socket never is;
//! - publishing never replaces what appeared at the destination during the run
//!   (`renameat2` with `RENAME_NOREPLACE`), and a replaced output is swapped out
//!   only once the new one is complete (`RENAME_EXCHANGE`).
//!
//! Temporary names are `.NAME.blockwise-tmp-PID-N-HOST` (and `-old-` for an output
//! being replaced; HOST is a hash of the host name, since directories on a shared
//! filesystem hold temporaries of processes on other machines, whose PIDs mean
//! nothing here); those of this host's processes that no longer exist are reclaimed
//! by the next output into the same directory (see [`reclaim_stale_temps`]).
//!
//! Outputs are not fsynced: the guarantee is against the process failing (an error,
//! Ctrl-C, a kill), as with DuckDB's and Polars' outputs; an fsync of every output
//! would cost a conversion a sixth of its time, and a power loss can still lose the
//! most recent writes.
//!
//! Temporary paths are also registered process-wide, so the signal handler can
//! remove them if the process must exit before the owners' destructors run.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::storage::{npy_stack, parquet, zarr};

static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What is about to be written, for the checks made before writing it.
#[derive(Debug, Clone, Copy)]
pub struct OutputSpec<'a> {
    /// The output format's name, for messages.
    pub format: &'static str,
    /// True when the output is one file; false when it is a directory.
    pub single_file: bool,
    /// Replace an existing output (a regular file or a dataset directory).
    pub overwrite: bool,
    /// The job's inputs: the output may not be, contain or sit inside any of them.
    pub inputs: &'a [&'a Path],
}

/// Stale temporaries removed from an output's directory (see [`reclaim_stale_temps`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Temporaries removed.
    pub entries: u64,
    /// Bytes they held.
    pub bytes: u64,
    /// Old outputs put back at their name, because a replacement stopped after
    /// moving them aside and before the new output took their place.
    pub restored: u64,
}

/// An output being written under a temporary name next to its final path.
#[derive(Debug)]
pub struct AtomicOutput {
    final_path: PathBuf,
    temp_path: PathBuf,
    overwrite: bool,
    reclaimed: Reclaimed,
    done: bool,
}

impl AtomicOutput {
    /// Prepares to write `dst`, after checking that writing it is safe (see the
    /// module's documentation) and reclaiming stale temporaries in its directory.
    /// Nothing is created: the caller creates a file or a directory at
    /// [`AtomicOutput::path`].
    ///
    /// # Errors
    /// [`Error::TrailingSlash`] for a one-file output named with a trailing slash;
    /// [`Error::NotFound`] or [`Error::NotADirectory`] when the parent is missing or
    /// a file; [`Error::PermissionDenied`] when it cannot be written;
    /// [`Error::OverlapsInput`]; [`Error::WillNotReplace`] for an existing path that
    /// is not a regular file or a dataset directory; [`Error::OutputExists`] when
    /// `dst` exists and `spec.overwrite` is false.
    pub fn new(dst: &Path, spec: &OutputSpec<'_>) -> Result<Self> {
        if spec.single_file && dst.as_os_str().as_bytes().ends_with(b"/") {
            return Err(Error::TrailingSlash {
                path: dst.to_path_buf(),
                format: spec.format,
            });
        }
        let name = dst
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{} is not a file name", dst.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = parent_dir(dst);
        check_parent(&parent)?;
        check_overlap(dst, &parent, spec.inputs)?;
        // Before looking at `dst`: reclaiming may put back an old output there.
        let reclaimed = reclaim_stale_temps(&parent);
        check_existing(dst, spec.overwrite)?;
        // After the checks above, so that a device or FIFO in a directory the user
        // cannot write (`/dev`) is named for what it is.
        check_writable(&parent)?;
        let temp_path = parent.join(temp_name(&name, "tmp"));
        LIVE_TEMPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(temp_path.clone());
        Ok(AtomicOutput {
            final_path: dst.to_path_buf(),
            temp_path,
            overwrite: spec.overwrite,
            reclaimed,
            done: false,
        })
    }

    /// Where to write: a sibling of the final path that does not exist yet.
    pub fn path(&self) -> &Path {
        &self.temp_path
    }

    /// The final path.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// What [`AtomicOutput::new`] reclaimed from earlier runs that were killed.
    pub fn reclaimed(&self) -> Reclaimed {
        self.reclaimed
    }

    /// Moves the finished output into place. Without `overwrite`, a destination
    /// that appeared during the run is left as it is and the run fails; with it,
    /// the old output (checked again) is swapped out in one step and then removed.
    ///
    /// # Errors
    /// [`Error::OutputExists`] or [`Error::WillNotReplace`] for a destination that
    /// appeared or changed during the run; the rename's I/O error. The temporary
    /// output is then removed and the destination is as it was.
    pub fn commit(mut self) -> Result<()> {
        let dst = self.final_path.clone();
        // Twice at most: with `overwrite`, a destination that appears between the
        // look and the rename is handled as one that was there.
        for _ in 0..2 {
            match dst.symlink_metadata() {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match publish_new(&self.temp_path, &dst) {
                        Ok(()) => return self.published(),
                        Err(e) if is_exists(&e) && self.overwrite => continue,
                        Err(e) if is_exists(&e) => return Err(existing_error(&dst)),
                        Err(e) => return Err(Error::io(&dst, e)),
                    }
                }
                Err(e) => return Err(Error::io(&dst, e)),
                Ok(_) if !self.overwrite => return Err(existing_error(&dst)),
                Ok(_) => {
                    // It may have been swapped for something else since the start.
                    check_existing(&dst, true)?;
                    self.replace(&dst)?;
                    return self.published();
                }
            }
        }
        Err(existing_error(&dst))
    }

    /// Puts the temporary output at `dst` in place of what is there.
    fn replace(&mut self, dst: &Path) -> Result<()> {
        match rename2(&self.temp_path, dst, Rename2::Exchange) {
            Ok(()) => {
                // The temporary name now holds the old output.
                remove_path(&self.temp_path);
                return Ok(());
            }
            Err(e) if !unsupported(&e) => return Err(Error::io(dst, e)),
            Err(_) => {}
        }
        let both_files = !self.temp_path.is_dir() && !dst.is_dir();
        if both_files {
            // rename(2) replaces a file in one step.
            return std::fs::rename(&self.temp_path, dst).map_err(|e| Error::io(dst, e));
        }
        // rename(2) cannot replace a non-empty directory: move the old one aside
        // first, under a name the next run restores if this process dies here.
        let name = dst.file_name().unwrap_or_default().to_string_lossy();
        let old = parent_dir(dst).join(temp_name(&name, "old"));
        std::fs::rename(dst, &old).map_err(|e| Error::io(dst, e))?;
        if let Err(e) = std::fs::rename(&self.temp_path, dst) {
            let _ = std::fs::rename(&old, dst);
            return Err(Error::io(dst, e));
        }
        remove_path(&old);
        Ok(())
    }

    fn published(mut self) -> Result<()> {
        self.done = true;
        forget_temp(&self.temp_path);
        Ok(())
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if !self.done {
            remove_path(&self.temp_path);
            forget_temp(&self.temp_path);
        }
    }
}

/// The directory `path` is in ("." for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The output's directory must exist and be a directory.
fn check_parent(parent: &Path) -> Result<()> {
    match std::fs::metadata(parent) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::NotADirectory {
                path: parent.to_path_buf(),
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            // Name the component that is a file, which is what the user must fix.
            let file = parent
                .ancestors()
                .skip(1)
                .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
                .unwrap_or(parent);
            return Err(Error::NotADirectory {
                path: file.to_path_buf(),
            });
        }
        Err(e) => return Err(Error::io(parent, e)),
    }
    Ok(())
}

/// The output's directory must be writable (`EACCES`, `EROFS`: permission denied).
fn check_writable(parent: &Path) -> Result<()> {
    let c_parent = c_path(parent).map_err(|e| Error::io(parent, e))?;
    let mode = libc::W_OK | libc::X_OK;
    // The effective IDs (AT_EACCESS) are the ones that will create the files.
    // SAFETY: `c_parent` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c_parent.as_ptr(), mode, libc::AT_EACCESS) };
    if rc != 0 {
        return Err(Error::io(parent, io::Error::last_os_error()));
    }
    Ok(())
}

/// Refuses a destination that is, contains or sits inside one of `inputs`,
/// comparing canonical paths (symbolic links followed).
fn check_overlap(dst: &Path, parent: &Path, inputs: &[&Path]) -> Result<()> {
    let canonical_dst = match std::fs::canonicalize(dst) {
        Ok(p) => p,
        // Not there yet (or a dangling link): where it would be created.
        Err(_) => match (std::fs::canonicalize(parent), dst.file_name()) {
            (Ok(p), Some(name)) => p.join(name),
            _ => return Ok(()),
        },
    };
    for &src in inputs {
        let Ok(canonical_src) = std::fs::canonicalize(src) else {
            continue;
        };
        let relation = if canonical_dst == canonical_src {
            "is"
        } else if canonical_src.starts_with(&canonical_dst) {
            "contains"
        } else if canonical_dst.starts_with(&canonical_src) {
            "is inside"
        } else {
            continue;
        };
        return Err(Error::OverlapsInput {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            relation,
        });
    }
    Ok(())
}

/// What an existing path is, as far as replacing it goes.
enum Existing {
    Absent,
    /// A regular file or a dataset directory: replaced when asked.
    Replaceable,
    /// Never replaced; the error says what it is.
    Refused(Error),
}

fn classify(path: &Path) -> Result<Existing> {
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(Error::io(path, e)),
    };
    let ft = meta.file_type();
    let what = if ft.is_file() {
        return Ok(Existing::Replaceable);
    } else if ft.is_dir() {
        if is_dataset_dir(path) {
            return Ok(Existing::Replaceable);
        }
        "a directory that is not a Zarr array, a Parquet directory or an npy stack"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Ok(Existing::Refused(Error::WillNotReplace {
        path: path.to_path_buf(),
        what: what.into(),
    }))
}

/// Checks that `dst` is absent, or replaceable and `overwrite` is set.
fn check_existing(dst: &Path, overwrite: bool) -> Result<()> {
    match classify(dst)? {
        Existing::Absent => Ok(()),
        Existing::Replaceable if overwrite => Ok(()),
        Existing::Replaceable => Err(Error::OutputExists {
            path: dst.to_path_buf(),
        }),
        Existing::Refused(e) => Err(e),
    }
}

/// The error for a destination found in the way: [`Error::OutputExists`] only when
/// `--overwrite` could replace it.
fn existing_error(dst: &Path) -> Error {
    match classify(dst) {
        Ok(Existing::Refused(e)) | Err(e) => e,
        Ok(Existing::Absent | Existing::Replaceable) => Error::OutputExists {
            path: dst.to_path_buf(),
        },
    }
}

/// True when `dir` holds only a dataset blockwise would write, so replacing it loses
/// nothing else: a Zarr array (not a group, whose arrays may be anyone's), a
/// Parquet directory (parts plus dot-files and `_SUCCESS`-like metadata files), an
/// npy stack (`info` and `N.npy`), or nothing at all.
fn is_dataset_dir(dir: &Path) -> bool {
    if zarr::is_zarr(dir) {
        return is_zarr_array(dir);
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut names = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { return false };
        // Subdirectories are none of these layouts.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            return false;
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let metadata = |n: &str| n.starts_with('.') || n.starts_with('_');
    if npy_stack::is_npy_stack(dir) {
        let is_part = |n: &str| {
            n.strip_suffix(".npy")
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        };
        return names
            .iter()
            .all(|n| n == "info" || is_part(n) || n.starts_with('.'));
    }
    let parts = parquet::list_parts(dir).unwrap_or_default();
    if parts.is_empty() {
        return names.is_empty();
    }
    let part_names: Vec<String> = parts
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.iter().all(|n| metadata(n) || part_names.contains(n))
}

/// A Zarr v2 array, or a v3 node whose `zarr.json` says it is an array.
fn is_zarr_array(dir: &Path) -> bool {
    if dir.join(".zarray").is_file() {
        return true;
    }
    std::fs::read(dir.join("zarr.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|meta| meta.get("node_type").and_then(|t| t.as_str()) == Some("array"))
}

fn temp_name(name: &str, kind: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        ".{name}.blockwise-{kind}-{}-{n}-{}",
        std::process::id(),
        host_tag()
    )
}

/// This machine's tag in temporary names: 16 hex digits of an FNV-1a hash of the
/// host name (a host name may hold any character; the tag is safe in a file name).
fn host_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for its length; the name is NUL-terminated when
        // it fits, and an error leaves it zeroed.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let len = if rc == 0 {
            buf.iter().position(|&b| b == 0).unwrap_or(buf.len())
        } else {
            0
        };
        let hash = buf[..len].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{hash:016x}")
    })
}

/// A temporary name, parsed.
#[derive(Debug, PartialEq, Eq)]
struct TempName<'a> {
    /// The output's name.
    output: &'a str,
    /// An old output moved aside (`-old-`) rather than a new one being written.
    old: bool,
    /// The writer's PID.
    pid: u32,
    /// The writer's host tag (absent in names written before tags existed).
    host: Option<&'a str>,
}

fn parse_temp_name(name: &str) -> Option<TempName<'_>> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".blockwise-")?;
    let (output, tail) = (&rest[..at], &rest[at + ".blockwise-".len()..]);
    let (old, tail) = if let Some(t) = tail.strip_prefix("tmp-") {
        (false, t)
    } else {
        (true, tail.strip_prefix("old-")?)
    };
    let mut fields = tail.split('-');
    let (pid, n, host) = (fields.next()?, fields.next()?, fields.next());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if output.is_empty() || !digits(pid) || !digits(n) || fields.next().is_some() {
        return None;
    }
    if host.is_some_and(|h| !hex(h)) {
        return None;
    }
    Some(TempName {
        output,
        old,
        pid: pid.parse().ok()?,
        host,
    })
}

/// False only when no process `pid` exists. A process of another user (`EPERM`)
/// counts as alive, and so does any PID this process cannot ask about.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the temporaries in `dir` left by blockwise processes that no longer
/// exist (killed, or crashed), never those of a live process. An old output moved
/// aside by a replacement that died before the new output took its place is put
/// back at its name when nothing is there, and removed otherwise. Errors are
/// ignored: reclaiming is housekeeping, and what cannot be removed stays.
///
/// A PID is checked in this process's PID namespace: directories shared with
/// containers that have their own should not hold temporaries of both.
pub fn reclaim_stale_temps(dir: &Path) -> Reclaimed {
    let mut reclaimed = Reclaimed::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return reclaimed;
    };
    let own = std::process::id();
    for entry in entries.filter_map(|e| e.ok()) {
        let file_name = entry.file_name();
        let Some(temp) = file_name.to_str().and_then(parse_temp_name) else {
            continue;
        };
        let other_host = temp.host.is_some_and(|h| h != host_tag());
        if other_host || temp.pid == own || process_alive(temp.pid) {
            continue;
        }
        let TempName { output, old, .. } = temp;
        let path = entry.path();
        if old {
            let original = dir.join(output);
            if original.symlink_metadata().is_err() && std::fs::rename(&path, &original).is_ok() {
                reclaimed.restored += 1;
                continue;
            }
        }
        let bytes = tree_bytes(&path);
        remove_path(&path);
        if path.symlink_metadata().is_err() {
            reclaimed.entries += 1;
            reclaimed.bytes += bytes;
        }
    }
    reclaimed
}

/// Bytes of the files under `path` (a file or a directory tree; links not followed).
fn tree_bytes(path: &Path) -> u64 {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| tree_bytes(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[derive(Clone, Copy)]
enum Rename2 {
    /// Fail with `EEXIST` when the target exists.
    NoReplace,
    /// Swap the two paths in one step.
    Exchange,
}

/// `renameat2(2)`; `EINVAL` where the filesystem or the OS cannot do it.
fn rename2(from: &Path, to: &Path, mode: Rename2) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let flags = match mode {
            Rename2::NoReplace => libc::RENAME_NOREPLACE,
            Rename2::Exchange => libc::RENAME_EXCHANGE,
        };
        let (c_from, c_to) = (c_path(from)?, c_path(to)?);
        // SAFETY: both are valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                c_from.as_ptr(),
                libc::AT_FDCWD,
                c_to.as_ptr(),
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (from, to, mode);
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// Moves `from` to `to`, failing with `EEXIST` if `to` exists, even if it appeared
/// a moment ago.
fn publish_new(from: &Path, to: &Path) -> io::Result<()> {
    match rename2(from, to, Rename2::NoReplace) {
        Err(e) if unsupported(&e) => publish_new_without_rename2(from, to),
        other => other,
    }
}

/// [`publish_new`] where `renameat2` is not supported.
fn publish_new_without_rename2(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        // mkdir(2) fails if `to` exists; rename(2) then replaces only that empty
        // directory, and fails if anything was put into it meanwhile.
        std::fs::create_dir(to)?;
        if let Err(e) = std::fs::rename(from, to) {
            let _ = std::fs::remove_dir(to);
            return Err(e);
        }
        return Ok(());
    }
    // link(2) fails if `to` exists.
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            let _ = std::fs::remove_file(from);
            Ok(())
        }
        Err(e) if is_exists(&e) => Err(e),
        Err(_) => {
            // No hard links here either: a checked rename, the best left.
            if to.symlink_metadata().is_ok() {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            std::fs::rename(from, to)
        }
    }
}

/// `renameat2` flags the filesystem does not support (or a kernel without it).
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

/// The target is in the way (`EEXIST`, or `ENOTEMPTY` for a directory).
fn is_exists(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ENOTEMPTY)
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn forget_temp(path: &Path) {
    LIVE_TEMPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}

/// Removes a file or a directory tree, ignoring a path that is already gone.
pub fn remove_path(path: &Path) {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Removes every temporary output still registered: the last resort of a signal
/// handler about to exit the process.
pub fn remove_all_temps() {
    let temps = std::mem::take(&mut *LIVE_TEMPS.lock().unwrap_or_else(|e| e.into_inner()));
    for path in temps {
        remove_path(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(overwrite: bool) -> OutputSpec<'static> {
        OutputSpec {
            format: "csv",
            single_file: true,
            overwrite,
            inputs: &[],
        }
    }

    #[test]
    fn dropped_output_leaves_nothing_and_old_output_survives() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.txt");
        std::fs::write(&dst, "old").unwrap();
        assert!(matches!(
            AtomicOutput::new(&dst, &spec(false)),
            Err(Error::OutputExists { .. })
        ));
        {
            let out = AtomicOutput::new(&dst, &spec(true)).unwrap();
            std::fs::write(out.path(), "half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&dst).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_replaces_a_dataset_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.zarr");
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(dst.join("zarr.json"), r#"{"node_type": "array"}"#).unwrap();
        let spec = OutputSpec {
            single_file: false,
            ..spec(true)
        };
        let out = AtomicOutput::new(&dst, &spec).unwrap();
        std::fs::create_dir(out.path()).unwrap();
        std::fs::write(out.path().join("new"), "y").unwrap();
        out.commit().unwrap();
        assert!(dst.join("new").exists() && !dst.join("zarr.json").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_does_not_replace_what_appeared_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.txt");
        let out = AtomicOutput::new(&dst, &spec(false)).unwrap();
        std::fs::write(out.path(), "new").unwrap();
        std::fs::write(&dst, "theirs").unwrap();
        assert!(matches!(out.commit(), Err(Error::OutputExists { .. })));
        assert_eq!(std::fs::read_to_string(&dst).unwrap(), "theirs");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn publish_new_fallbacks_refuse_an_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        assert!(is_exists(&publish_new(&a, &b).unwrap_err()));
        assert!(is_exists(&publish_new_without_rename2(&a, &b).unwrap_err()));
        std::fs::remove_file(&b).unwrap();
        publish_new_without_rename2(&a, &b).unwrap();
        assert!(!a.exists() && std::fs::read_to_string(&b).unwrap() == "a");
        // Directories: the target appearing, empty or not, stops the rename.
        let (c, d) = (dir.path().join("c"), dir.path().join("d"));
        std::fs::create_dir(&c).unwrap();
        std::fs::write(c.join("part"), "c").unwrap();
        std::fs::create_dir(&d).unwrap();
        assert!(is_exists(&publish_new_without_rename2(&c, &d).unwrap_err()));
        std::fs::remove_dir(&d).unwrap();
        publish_new_without_rename2(&c, &d).unwrap();
        assert!(!c.exists() && d.join("part").exists());
    }

    #[test]
    fn only_datasets_are_replaceable_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = |name: &str, files: &[&str]| {
            let p = dir.path().join(name);
            std::fs::create_dir(&p).unwrap();
            for f in files {
                std::fs::write(p.join(f), "x").unwrap();
            }
            p
        };
        assert!(is_dataset_dir(&d("empty", &[])));
        assert!(is_dataset_dir(&d(
            "pq",
            &["part-0.parquet", "_SUCCESS", ".x.crc"]
        )));
        assert!(!is_dataset_dir(&d(
            "pq_more",
            &["part-0.parquet", "notes.txt"]
        )));
        assert!(is_dataset_dir(&d("stack", &["info", "0.npy", "1.npy"])));
        assert!(!is_dataset_dir(&d(
            "stack_more",
            &["info", "0.npy", "a.csv"]
        )));
        assert!(!is_dataset_dir(&d("home", &["src.csv"])));
        let group = d("group.zarr", &[]);
        std::fs::write(group.join("zarr.json"), r#"{"node_type":"group"}"#).unwrap();
        assert!(!is_dataset_dir(&group));
        assert!(is_dataset_dir(&d("v2.zarr", &[".zarray"])));
        let nested = d("nested", &["part-0.parquet"]);
        std::fs::create_dir(nested.join("sub")).unwrap();
        assert!(!is_dataset_dir(&nested));
    }

    #[test]
    fn temp_names_parse() {
        let name = temp_name("out.csv", "tmp");
        let parsed = parse_temp_name(&name).unwrap();
        assert_eq!((parsed.output, parsed.old), ("out.csv", false));
        assert_eq!(
            (parsed.pid, parsed.host),
            (std::process::id(), Some(host_tag()))
        );
        assert_eq!(
            parse_temp_name(".out.csv.blockwise-tmp-123-4"),
            Some(TempName {
                output: "out.csv",
                old: false,
                pid: 123,
                host: None
            })
        );
        assert_eq!(parse_temp_name(".o.blockwise-tmp-1-4-xyz"), None);
        assert_eq!(
            parse_temp_name(".a.blockwise-x.blockwise-old-7-0"),
            Some(TempName {
                output: "a.blockwise-x",
                old: true,
                pid: 7,
                host: None
            })
        );
        assert_eq!(parse_temp_name(".out.csv.blockwise-tmp-12x-4"), None);
        assert_eq!(parse_temp_name("out.csv.blockwise-tmp-1-4"), None);
        assert_eq!(parse_temp_name("..blockwise-tmp-1-4"), None);
    }

    #[test]
    fn reclaims_dead_temps_only_and_restores_a_moved_aside_output() {
        let dir = tempfile::tempdir().unwrap();
        // A PID that cannot be running: above the kernel's pid_max (at most 2^22).
        let dead = 1 << 23;
        let live = std::process::id();
        std::fs::write(
            dir.path()
                .join(format!(".a.csv.blockwise-tmp-{dead}-0-{}", host_tag())),
            "12345",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!(".b.csv.blockwise-tmp-{live}-0")),
            "x",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!(".c.csv.blockwise-old-{dead}-1")),
            "old",
        )
        .unwrap();
        // Another machine's process, on a shared filesystem: its PID means nothing here.
        std::fs::write(
            dir.path()
                .join(format!(".d.csv.blockwise-tmp-{dead}-0-0123456789abcdef")),
            "x",
        )
        .unwrap();
        std::fs::write(dir.path().join("keep.csv"), "k").unwrap();
        let r = reclaim_stale_temps(dir.path());
        assert_eq!(
            r,
            Reclaimed {
                entries: 1,
                bytes: 5,
                restored: 1
            }
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.csv")).unwrap(),
            "old"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn overlap_is_refused_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        let src = d.join("src.csv");
        std::fs::write(&src, "a\n1\n").unwrap();
        let inputs = [src.as_path()];
        let spec = OutputSpec {
            inputs: &inputs,
            ..spec(true)
        };
        let relation = |dst: &Path| match AtomicOutput::new(dst, &spec) {
            Err(Error::OverlapsInput { relation, .. }) => relation,
            other => panic!("{other:?}"),
        };
        assert_eq!(relation(&d), "contains");
        assert_eq!(relation(&src), "is");
        assert_eq!(relation(&d.join(".").join("src.csv")), "is");
        // Refused before anything was written.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }
}
