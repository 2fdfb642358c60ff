//! The checks made on a destination before anything is written: its directory
//! exists and is writable, it does not overlap an input, and whatever is already
//! there is something blockwise may replace (a regular file or a dataset it writes),
//! never a link, a FIFO, a device or an unrelated directory.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::rename::c_path;
use crate::error::{Error, Result};
use crate::storage::{npy_stack, parquet, zarr};

/// The directory `path` is in ("." for a bare name).
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The output's directory must exist and be a directory.
pub(super) fn check_parent(parent: &Path) -> Result<()> {
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
        Err(e) => return Err(io_error(parent, e)),
    }
    Ok(())
}

/// Longest file name Linux filesystems allow (`NAME_MAX`).
pub(super) const NAME_MAX: usize = 255;
/// Longest path the kernel takes (`PATH_MAX`).
pub(super) const PATH_MAX: usize = 4096;

/// [`Error::io`], and [`Error::NameTooLong`] for `ENAMETOOLONG`.
pub(super) fn io_error(path: &Path, e: io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
        return name_too_long(path);
    }
    Error::io(path, e)
}

/// [`Error::NameTooLong`] for `path`.
pub(super) fn name_too_long(path: &Path) -> Error {
    Error::NameTooLong {
        path: path.to_path_buf(),
        name_max: NAME_MAX,
        path_max: PATH_MAX,
    }
}

/// The output's directory must be writable (`EACCES`, `EROFS`: permission denied).
pub(super) fn check_writable(parent: &Path) -> Result<()> {
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
pub(super) fn check_overlap(dst: &Path, parent: &Path, inputs: &[&Path]) -> Result<()> {
    let canonical_dst = match std::fs::canonicalize(dst) {
        Ok(p) => p,
        // Not there yet (or a dangling link): where it would be created.
        Err(_) => match (std::fs::canonicalize(parent), dst.file_name()) {
            (Ok(p), Some(name)) => p.join(name),
            _ => return Ok(()),
        },
    };
    // A hard link is the same file under another name, which no path comparison sees.
    let dst_id = std::fs::metadata(dst).ok().map(|m| (m.dev(), m.ino()));
    for &src in inputs {
        let Ok(canonical_src) = std::fs::canonicalize(src) else {
            continue;
        };
        let same_file =
            dst_id.is_some() && std::fs::metadata(src).ok().map(|m| (m.dev(), m.ino())) == dst_id;
        let relation = if canonical_dst == canonical_src || same_file {
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
        Err(e) => return Err(io_error(path, e)),
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
pub(super) fn check_existing(dst: &Path, overwrite: bool) -> Result<()> {
    match classify(dst)? {
        Existing::Absent => Ok(()),
        Existing::Replaceable if overwrite => check_removable(dst),
        Existing::Replaceable => Err(Error::OutputExists {
            path: dst.to_path_buf(),
        }),
        Existing::Refused(e) => Err(e),
    }
}

/// Checks, before anything is written, that the output `dst` being replaced can be
/// removed once the new one is in place: a read-only file is the user's "keep
/// this" and is not replaced; in a directory dataset every directory must be
/// writable, else the old output would be left, half removed, under a temporary
/// name; and in a sticky directory (`/tmp`) only an owner may replace.
fn check_removable(dst: &Path) -> Result<()> {
    let meta = dst.symlink_metadata().map_err(|e| io_error(dst, e))?;
    if meta.is_dir() {
        return check_tree_writable(dst, 0);
    }
    if !accessible(dst, libc::W_OK) {
        return Err(Error::PermissionDenied {
            path: dst.to_path_buf(),
        });
    }
    let parent = parent_dir(dst);
    if let Ok(parent_meta) = std::fs::metadata(&parent) {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        let sticky = parent_meta.mode() & libc::S_ISVTX != 0;
        if sticky && euid != 0 && meta.uid() != euid && parent_meta.uid() != euid {
            return Err(Error::PermissionDenied {
                path: dst.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Every directory under `dir` (links not followed) can be listed and emptied.
fn check_tree_writable(dir: &Path, depth: usize) -> Result<()> {
    let mode = libc::R_OK | libc::W_OK | libc::X_OK;
    if !accessible(dir, mode) {
        return Err(Error::PermissionDenied {
            path: dir.to_path_buf(),
        });
    }
    if depth >= 64 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            check_tree_writable(&entry.path(), depth + 1)?;
        }
    }
    Ok(())
}

/// Whether this process may access `path` in `mode`, by its effective IDs.
fn accessible(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c) = c_path(path) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

/// The error for a destination found in the way: [`Error::OutputExists`] only when
/// `--overwrite` could replace it.
pub(super) fn existing_error(dst: &Path) -> Error {
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
pub(super) fn is_dataset_dir(dir: &Path) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
