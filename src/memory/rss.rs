//! Process memory as the kernel sees it: current and peak resident set size.

/// Current resident set size in bytes, from `/proc/self/statm` (0 where unavailable).
pub fn current_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size())
}

/// Resident memory the kernel cannot simply drop, in bytes: anonymous pages (the
/// heap, stacks) and shared memory (a spill file on tmpfs, mapped), from `RssAnon` and
/// `RssShmem` in `/proc/self/status`; the full RSS where those are unavailable.
///
/// File-backed pages are left out: the binary's code and its libraries (the binary's
/// own constant, not the job's data) and the mapped spill files being merged, which
/// are clean and which the kernel reclaims under pressure instead of killing anyone.
pub fn unreclaimable_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    match (field("RssAnon:"), field("RssShmem:")) {
        (Some(anon), shmem) => anon + shmem.unwrap_or(0),
        (None, _) => current_rss_bytes(),
    }
}

/// Peak resident set size in bytes (`VmHWM` in `/proc/self/status`; 0 where unavailable).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

/// Physical memory in bytes, or the cgroup limit when one is set and lower.
pub fn physical_memory_bytes() -> u64 {
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
        })
        .unwrap_or(8 << 30);
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
    cgroup.map_or(physical, |c| c.min(physical))
}

fn page_size() -> u64 {
    // Every Linux platform blockwise targets uses 4 KiB base pages.
    4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_plausible() {
        let rss = current_rss_bytes();
        assert!(rss > 1 << 20, "rss {rss}");
        assert!(peak_rss_bytes() >= rss / 2);
        let held = unreclaimable_rss_bytes();
        assert!(held > 0 && held <= rss + (1 << 20), "{held} of {rss}");
        assert!(physical_memory_bytes() > 64 << 20);
    }
}
