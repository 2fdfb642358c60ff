//! Renames that never clobber: `renameat2(2)` with `RENAME_NOREPLACE` or
//! `RENAME_EXCHANGE`, and fallbacks (`link(2)`, `mkdir(2)`) where the filesystem
//! cannot do them.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How [`rename2`] treats an existing target.
#[derive(Clone, Copy)]
pub(super) enum Rename2 {
    /// Fail with `EEXIST` when the target exists.
    NoReplace,
    /// Swap the two paths in one step.
    Exchange,
}

/// `renameat2(2)`; `EINVAL` where the filesystem or the OS cannot do it.
pub(super) fn rename2(from: &Path, to: &Path, mode: Rename2) -> io::Result<()> {
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
pub(super) fn publish_new(from: &Path, to: &Path) -> io::Result<()> {
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
pub(super) fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

/// The target is in the way (`EEXIST`, or `ENOTEMPTY` for a directory).
pub(super) fn is_exists(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ENOTEMPTY)
}

pub(super) fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
