//! Keeping the allocator from holding memory the job has freed.
//!
//! glibc's malloc does two things that make a process's RSS outgrow what it uses: it
//! raises its mmap threshold to the size of any large block freed (up to 32 MiB), so
//! later batch-sized buffers come from the heap, where a freed one stays resident
//! until the heap's top is free; and it gives each thread its own arena (up to eight a
//! core), each retaining its own freed memory. Under a spilling sort at a 32 MiB limit
//! that doubled the peak RSS (86 MB against a 30 MB peak of live heap). A fixed
//! threshold returns every large buffer to the kernel when it is freed, and a few
//! arenas keep the retained small blocks few; both cost a little speed (page faults
//! for fresh mappings) and hold the memory limit.
//!
//! The cost is not small on a fast path: a 500 MB CSV to Parquet spends about 1.5 s
//! more in the kernel (15-20% of its wall time) mapping and unmapping batch buffers.
//! So the settings apply only under a tight limit, where a few tens of MB retained
//! are a large share of the budget; under a limit of [`TIGHT_LIMIT`] or more, what
//! glibc retains is small beside it and the job keeps glibc's defaults.

use std::sync::Once;

/// Blocks of at least this many bytes are mapped and unmapped on their own.
///
/// A final grouping task reads its bucket's share of each partial entry as a
/// batch of a few tens of thousands of rows, whose buffers are 100-250 KB: at a
/// 256 KiB threshold they came from the heap, and db-benchmark's q10 at 1e8 rows
/// under a 1 GiB limit peaked at 1.02 GB of RSS with 0.5-0.7 GB of it freed but
/// retained; at 128 KiB it peaked at 0.94 GB, for 1-2% more system time.
const MMAP_THRESHOLD: i32 = 128 << 10;

/// Memory limits from this size up keep glibc's defaults (see the module docs).
pub const TIGHT_LIMIT: u64 = 2 << 30;

/// Sets glibc's mmap threshold and arena count for a job of `threads` threads under
/// a memory limit of `memory_limit` bytes, once per process, when the limit is below
/// [`TIGHT_LIMIT`] and the user did not set either through `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` (then their choice stands). Elsewhere than
/// glibc, nothing to do.
///
/// This is process-wide: a host embedding blockwise gets the same settings, which are
/// harmless to it (the defaults glibc recommends for long-lived servers).
pub fn bound_allocator_retention(threads: usize, memory_limit: u64) {
    if memory_limit >= TIGHT_LIMIT {
        return;
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let set_by_user = [
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_ARENA_MAX",
            "GLIBC_TUNABLES",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
        if !set_by_user {
            apply(threads);
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply(threads: usize) {
    // The job's workers, the main thread and a writer thread: more arenas would only
    // hold more freed memory; fewer would make the workers contend for one lock.
    let arenas = i32::try_from(threads.saturating_add(1))
        .unwrap_or(i32::MAX)
        .max(2);
    // SAFETY: mallopt only changes allocator parameters; it may be called at any time
    // and leaves live allocations alone.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply(_threads: usize) {}
