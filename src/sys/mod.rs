//! What blockwise asks of the operating system beyond `std`, shared by the layers
//! that clean up after processes killed outright: whether a process still exists,
//! how many bytes a tree holds, and the account of what was reclaimed.
//!
//! Below every other layer: it knows nothing of formats, memory or plans.

mod cancel;

pub use cancel::{interrupted, CancelToken};

use std::path::{Path, PathBuf};

/// False only when no process `pid` exists. A process of another user (`EPERM`)
/// counts as alive, and so does any PID this process cannot ask about: reclaiming
/// must never remove what a live process is writing.
pub fn process_alive(pid: u32) -> bool {
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
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Bytes of the regular files under `path` (a file or a directory tree; symbolic
/// links are not followed, and what cannot be read counts as nothing).
pub fn tree_bytes(path: &Path) -> u64 {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| tree_bytes(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

/// Removes a file or a directory tree, ignoring a path that is already gone.
pub fn remove_path(path: &Path) {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => {
            // When a signal handler removes an output that worker threads are still
            // writing, a file can appear between the listing and the last rmdir
            // (`ENOTEMPTY`): try again, a few times.
            for _ in 0..4 {
                if std::fs::remove_dir_all(path).is_ok() || !path.exists() {
                    break;
                }
            }
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Temporaries that processes no longer running left in one directory, and what
/// reclaiming them did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// The directory they were in.
    pub dir: PathBuf,
    /// Temporaries (files or directories) removed.
    pub entries: u64,
    /// Bytes they held.
    pub bytes: u64,
    /// The PIDs of the processes that left them, ascending, without repeats.
    pub pids: Vec<u32>,
    /// Old outputs put back at their name, because a replacement stopped after
    /// moving them aside and before the new output took their place.
    pub restored: u64,
}

impl Reclaimed {
    /// Nothing reclaimed yet in `dir`.
    pub fn new(dir: &Path) -> Self {
        Reclaimed {
            dir: dir.to_path_buf(),
            ..Reclaimed::default()
        }
    }

    /// Counts one removed temporary of process `pid` that held `bytes`.
    pub fn removed(&mut self, pid: u32, bytes: u64) {
        self.entries += 1;
        self.bytes += bytes;
        self.note_pid(pid);
    }

    /// Counts one old output of process `pid` put back at its name.
    pub fn restored(&mut self, pid: u32) {
        self.restored += 1;
        self.note_pid(pid);
    }

    fn note_pid(&mut self, pid: u32) {
        if let Err(at) = self.pids.binary_search(&pid) {
            self.pids.insert(at, pid);
        }
    }

    /// The one line a front end prints about it: "reclaimed N bytes of stale
    /// temporaries left by process(es) P in DIR" (and the old outputs put back).
    /// `None` when nothing was reclaimed.
    pub fn message(&self) -> Option<String> {
        if self.entries == 0 && self.restored == 0 {
            return None;
        }
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        let mut line = format!(
            "reclaimed {} bytes of stale temporaries left by process(es) {} in {}",
            self.bytes,
            pids.join(", "),
            self.dir.display()
        );
        if self.restored > 0 {
            line.push_str(&format!(
                "; put back {} old output(s) that an interrupted --overwrite had moved aside",
                self.restored
            ));
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_impossible_pid_is_not() {
        assert!(process_alive(std::process::id()));
        // Above the kernel's largest pid_max (2^22).
        assert!(!process_alive(1 << 23));
    }

    #[test]
    fn tree_bytes_counts_files_not_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "12345").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/b"), "123").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l")).unwrap();
        assert_eq!(tree_bytes(dir.path()), 8);
        assert_eq!(tree_bytes(&dir.path().join("a")), 5);
        assert_eq!(tree_bytes(&dir.path().join("missing")), 0);
    }

    #[test]
    fn message_names_bytes_processes_and_directory() {
        let mut r = Reclaimed::new(Path::new("/tmp/x"));
        assert_eq!(r.message(), None);
        r.removed(7, 10);
        r.removed(3, 5);
        r.removed(7, 1);
        assert_eq!(
            r.message().unwrap(),
            "reclaimed 16 bytes of stale temporaries left by process(es) 3, 7 in /tmp/x"
        );
    }
}
