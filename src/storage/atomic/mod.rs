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

mod destination;
mod rename;
mod stale;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use self::destination::{
    check_existing, check_overlap, check_parent, check_writable, existing_error, name_too_long,
    parent_dir, NAME_MAX, PATH_MAX,
};
use self::rename::{is_exists, publish_new, rename2, unsupported, Rename2};
use self::stale::temp_name;
pub use self::stale::{reclaim_stale_temps, Reclaimed};
use crate::error::{Error, Result};
pub use crate::sys::remove_path;

static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Bytes of path kept free below `PATH_MAX` for what an output holds inside.
const PATH_ROOM: usize = 256;

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
        if dst.file_name().is_none() {
            // `.`, `..` or `/`: a directory that exists, which may hold the input.
            check_overlap(dst, &parent_dir(dst), spec.inputs)?;
        }
        let name = dst
            .file_name()
            .ok_or_else(|| Error::NoFileName {
                path: dst.to_path_buf(),
            })?
            .to_string_lossy()
            .into_owned();
        if name.len() > NAME_MAX {
            return Err(name_too_long(dst));
        }
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
        // Outputs that are directories hold a few levels of their own (Zarr's
        // `c/0/0`): leave them room under the kernel's path limit.
        if temp_path.as_os_str().len() + PATH_ROOM >= PATH_MAX {
            return Err(name_too_long(dst));
        }
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
    pub fn reclaimed(&self) -> &Reclaimed {
        &self.reclaimed
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
        self.publish_temp()?;
        self.done = true;
        forget_temp(&self.temp_path);
        Ok(())
    }

    /// Moves the temporary output into place (see [`AtomicOutput::commit`]).
    fn publish_temp(&mut self) -> Result<()> {
        let dst = self.final_path.clone();
        // Twice at most: with `overwrite`, a destination that appears between the
        // look and the rename is handled as one that was there.
        for _ in 0..2 {
            match dst.symlink_metadata() {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match publish_new(&self.temp_path, &dst) {
                        Ok(()) => return Ok(()),
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
                    return self.replace(&dst);
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
}

/// Publishes `staged`, a finished output written by a plan, at `dst` with the same
/// rules as [`AtomicOutput::commit`] (no-clobber, or an exchange with `overwrite`).
/// Unlike a failed commit, a failed publish leaves `staged` where it is: it is the
/// finished work of a plan, which a rerun can publish once `dst` is cleared.
///
/// # Errors
/// As [`AtomicOutput::commit`].
pub fn publish(staged: &Path, dst: &Path, overwrite: bool) -> Result<()> {
    let mut out = AtomicOutput {
        final_path: dst.to_path_buf(),
        temp_path: staged.to_path_buf(),
        overwrite,
        reclaimed: Reclaimed::default(),
        done: false,
    };
    let result = out.publish_temp();
    out.done = true;
    result
}

/// The working directory of a plan whose output is `dst`, beside it (so that the
/// output, staged inside, is published by a rename on the same file system):
/// `.NAME.blockwise-plan-ID`. Not a temporary name: no later run reclaims it, since
/// a plan may be resumed by another process at any time.
///
/// # Errors
/// [`Error::NameTooLong`] when the name does not fit.
pub fn plan_workdir(dst: &Path, id: &str) -> Result<PathBuf> {
    let name = dst
        .file_name()
        .ok_or_else(|| Error::NoFileName {
            path: dst.to_path_buf(),
        })?
        .to_string_lossy();
    let tail = format!(".blockwise-plan-{id}");
    let room = NAME_MAX.saturating_sub(1 + tail.len());
    let mut cut = room.min(name.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    Ok(parent_dir(dst).join(format!(".{}{tail}", &name[..cut])))
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if !self.done {
            remove_path(&self.temp_path);
            forget_temp(&self.temp_path);
        }
    }
}

fn forget_temp(path: &Path) {
    LIVE_TEMPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
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
        assert_eq!(relation(&d.join("..").join("d").join("..")), "contains");
        // Refused before anything was written.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }
}
