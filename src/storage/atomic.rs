//! Atomic outputs: everything is written under a temporary sibling name and renamed
//! into place at the end, so a failure or Ctrl-C never leaves half a file and never
//! touches an existing output.
//!
//! Outputs are not fsynced: the guarantee is against the process failing (an error,
//! Ctrl-C, a kill), as with DuckDB's and Polars' outputs; an fsync of every output
//! would cost a conversion a sixth of its time, and a power loss can still lose the
//! most recent writes.
//!
//! Temporary paths are also registered process-wide, so the Ctrl-C handler can
//! remove them if the process must exit before the owners' destructors run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, IoResultExt, Result};

static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// An output being written under a temporary name next to its final path.
#[derive(Debug)]
pub struct AtomicOutput {
    final_path: PathBuf,
    temp_path: PathBuf,
    done: bool,
}

impl AtomicOutput {
    /// Prepares to write `dst`. Nothing is created yet: the caller creates a file or a
    /// directory at [`AtomicOutput::path`].
    ///
    /// # Errors
    /// [`Error::OutputExists`] when `dst` exists and `overwrite` is false;
    /// [`Error::NotFound`] when the parent directory does not exist.
    pub fn new(dst: &Path, overwrite: bool) -> Result<Self> {
        if dst.symlink_metadata().is_ok() && !overwrite {
            return Err(Error::OutputExists {
                path: dst.to_path_buf(),
            });
        }
        let name = dst
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{} is not a file name", dst.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::NotFound { path: parent });
        }
        let temp_path = parent.join(temp_name(&name, "tmp"));
        LIVE_TEMPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(temp_path.clone());
        Ok(AtomicOutput {
            final_path: dst.to_path_buf(),
            temp_path,
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

    /// Moves the finished output into place, replacing an old one if there is one.
    ///
    /// # Errors
    /// When a rename fails; the temporary output is then removed.
    pub fn commit(mut self) -> Result<()> {
        let old = self.final_path.symlink_metadata().is_ok().then(|| {
            let parent = self.temp_path.parent().unwrap_or(Path::new("."));
            let name = self
                .final_path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            parent.join(temp_name(&name, "old"))
        });
        if let Some(old) = &old {
            // Two renames, not one: rename(2) cannot replace a non-empty directory.
            std::fs::rename(&self.final_path, old).at(&self.final_path)?;
        }
        if let Err(e) = std::fs::rename(&self.temp_path, &self.final_path) {
            if let Some(old) = &old {
                let _ = std::fs::rename(old, &self.final_path);
            }
            return Err(Error::io(&self.final_path, e));
        }
        self.done = true;
        forget_temp(&self.temp_path);
        if let Some(old) = old {
            remove_path(&old);
        }
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

fn temp_name(name: &str, kind: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.blockwise-{kind}-{}-{n}", std::process::id())
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

/// Removes every temporary output still registered: the last resort of a Ctrl-C
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

    #[test]
    fn dropped_output_leaves_nothing_and_old_output_survives() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.txt");
        std::fs::write(&dst, "old").unwrap();
        assert!(matches!(
            AtomicOutput::new(&dst, false),
            Err(Error::OutputExists { .. })
        ));
        {
            let out = AtomicOutput::new(&dst, true).unwrap();
            std::fs::write(out.path(), "half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&dst).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_replaces_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.zarr");
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(dst.join("old"), "x").unwrap();
        let out = AtomicOutput::new(&dst, true).unwrap();
        std::fs::create_dir(out.path()).unwrap();
        std::fs::write(out.path().join("new"), "y").unwrap();
        out.commit().unwrap();
        assert!(dst.join("new").exists() && !dst.join("old").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
