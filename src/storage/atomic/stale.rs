//! Temporary names (`.NAME.blockwise-tmp-PID-N-HOST`, `-old-` for an output moved
//! aside), and reclaiming those that processes killed or crashed left behind.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::remove_path;
pub use crate::sys::Reclaimed;
use crate::sys::{process_alive, tree_bytes};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name for the output `name` (`kind` is `tmp` or `old`), no longer than
/// a file name may be. When `name` is too long to fit whole, it is cut, and an `old`
/// name says so (`oldcut`): such a name cannot tell which output to restore, so it
/// is never reclaimed (it holds the only copy of an old output).
pub(super) fn temp_name(name: &str, kind: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tail = |kind: &str| {
        format!(
            ".blockwise-{kind}-{}-{n}-{}",
            std::process::id(),
            host_tag()
        )
    };
    let room = super::destination::NAME_MAX - 1 - tail(kind).len();
    if name.len() <= room {
        return format!(".{name}{}", tail(kind));
    }
    let kind = if kind == "old" { "oldcut" } else { kind };
    let room = super::destination::NAME_MAX - 1 - tail(kind).len();
    let mut cut = room.min(name.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}{}", &name[..cut], tail(kind))
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

/// Removes the temporaries in `dir` left by blockwise processes that no longer
/// exist (killed, or crashed), never those of a live process. An old output moved
/// aside by a replacement that died before the new output took its place is put
/// back at its name when nothing is there, and removed otherwise. Errors are
/// ignored: reclaiming is housekeeping, and what cannot be removed stays.
///
/// A PID is checked in this process's PID namespace: directories shared with
/// containers that have their own should not hold temporaries of both.
pub fn reclaim_stale_temps(dir: &Path) -> Reclaimed {
    let mut reclaimed = Reclaimed::new(dir);
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
        let TempName {
            output, old, pid, ..
        } = temp;
        let path = entry.path();
        if old {
            let original = dir.join(output);
            if original.symlink_metadata().is_err() && std::fs::rename(&path, &original).is_ok() {
                reclaimed.restored(pid);
                continue;
            }
        }
        let bytes = tree_bytes(&path);
        remove_path(&path);
        if path.symlink_metadata().is_err() {
            reclaimed.removed(pid, bytes);
        }
    }
    reclaimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_of_long_names_fit_a_file_name() {
        let long = "é".repeat(127); // 254 bytes: a legal name
        for kind in ["tmp", "old"] {
            let name = temp_name(&long, kind);
            assert!(name.len() <= 255, "{}", name.len());
        }
        let tmp = temp_name(&long, "tmp");
        assert!(!parse_temp_name(&tmp).unwrap().old);
        // A cut old name never parses, so it is never reclaimed or removed.
        assert_eq!(parse_temp_name(&temp_name(&long, "old")), None);
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
                dir: dir.path().to_path_buf(),
                entries: 1,
                bytes: 5,
                pids: vec![dead],
                restored: 1
            }
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.csv")).unwrap(),
            "old"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}
