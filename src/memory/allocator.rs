//! Keeping the allocator from holding memory the job has freed, and asking
//! for huge pages for large blocks ([`HugePageAlloc`]).
//!
//! glibc's malloc does two things that make a process's RSS outgrow what it uses: it
//! raises its mmap threshold to the size of any large block freed (up to 32 MiB), so
//! later batch-sized buffers come from the heap, where a freed one stays resident
//! until the heap's top is free; and it gives each thread its own arena (up to eight a
//! core), each retaining its own freed memory. Under a spilling sort at a 32 MiB limit
//! that doubled the peak RSS (86 MB against a 30 MB peak of live heap). A fixed
//! threshold, a small share of the limit, returns every larger buffer to the kernel
//! when it is freed, and a few arenas keep the retained small blocks few; both cost
//! some speed (page faults for fresh mappings: see [`mmap_threshold`]) and hold the
//! memory limit.
//!
//! The cost is not small on a fast path: a 500 MB CSV to Parquet spends about 1.5 s
//! more in the kernel (15-20% of its wall time) mapping and unmapping batch buffers.
//! So the settings apply only under a tight limit, where a few tens of MB retained
//! are a large share of the budget; under a limit of [`TIGHT_LIMIT`] or more, what
//! glibc retains is small beside it and the job keeps glibc's defaults.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Once;

/// The smallest and largest mmap threshold, and the share of the memory limit it
/// is between them.
///
/// A block at or above the threshold is mapped when allocated and unmapped when
/// freed, so the kernel hands out fresh zeroed pages every time: at 128 KiB the
/// batch buffers (128 KiB-4 MiB) of db-benchmark's q1 from the 1e8-row CSV took
/// 1.03 million page faults and 11.6 s; at 4 MiB, 0.27 million and 8.2 s (glibc's
/// own, growing threshold: 7.2 s). Below it, freed blocks stay in the heap for the
/// next batch, and the monitor's `malloc_trim` hands back what is retained when the
/// RSS nears the limit. The largest retained block is then the threshold, so it
/// grows with the limit: 128 KiB under a 32 MiB limit (where a sort's RSS had
/// doubled with glibc's defaults), 4 MiB from a 1 GiB limit up (q10 at 1e8 rows
/// under 1 GiB peaked at 0.95 GB of RSS at 128 KiB, 1.11 GB at 4 MiB).
const MMAP_THRESHOLD_MIN: u64 = 128 << 10;
const MMAP_THRESHOLD_MAX: u64 = 4 << 20;
const MMAP_THRESHOLD_SHARE: u64 = 256;

/// The mmap threshold under a memory limit of `memory_limit` bytes.
fn mmap_threshold(memory_limit: u64) -> u64 {
    (memory_limit / MMAP_THRESHOLD_SHARE).clamp(MMAP_THRESHOLD_MIN, MMAP_THRESHOLD_MAX)
}

/// Memory limits from this size up keep glibc's defaults (see the module docs).
pub const TIGHT_LIMIT: u64 = 2 << 30;

/// Sets glibc's mmap threshold (see [`mmap_threshold`]), its trim threshold (twice
/// that) and arena count for a job of `threads` threads under
/// a memory limit of `memory_limit` bytes, once per process, when the limit is below
/// [`TIGHT_LIMIT`] and the user did not set any through `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`, `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` (then their
/// choice stands). Elsewhere than
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
            "MALLOC_TRIM_THRESHOLD_",
            "MALLOC_ARENA_MAX",
            "GLIBC_TUNABLES",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
        if !set_by_user {
            apply(threads, mmap_threshold(memory_limit));
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply(threads: usize, mmap_threshold: u64) {
    // The job's workers, the main thread and a writer thread: more arenas would only
    // hold more freed memory; fewer would make the workers contend for one lock.
    let arenas = i32::try_from(threads.saturating_add(1))
        .unwrap_or(i32::MAX)
        .max(2);
    // SAFETY: mallopt only changes allocator parameters; it may be called at any time
    // and leaves live allocations alone.
    unsafe {
        libc::mallopt(
            libc::M_MMAP_THRESHOLD,
            i32::try_from(mmap_threshold).unwrap_or(i32::MAX),
        );
        // A fixed mmap threshold stops glibc adjusting its trim threshold, which
        // stays at 128 KiB: each free at a heap's top then hands its pages back,
        // and the next batch faults them in again, zeroed. Twice the mmap
        // threshold is glibc's own rule when it adjusts them: reading 3 columns
        // of the 1e8-row Parquet file took 2.4 s of system time, 0.3 s with it
        // (wall 3.3-3.7 s, 2.4 s).
        libc::mallopt(
            libc::M_TRIM_THRESHOLD,
            i32::try_from(2 * mmap_threshold).unwrap_or(i32::MAX),
        );
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply(_threads: usize, _mmap_threshold: u64) {}

/// Blocks from this size up are asked to be backed by transparent huge pages.
///
/// A group table of a million keys (db-benchmark's `id3` at 1e8 rows: 64-128
/// MB of slots, 24 MB of states) is probed at random, and with 4 KiB pages
/// nearly every probe misses the TLB as well as the caches: its reach is a few
/// MB. With 2 MiB pages it covers gigabytes, and faulting a table in takes a
/// five-hundredth of the faults. From the 1e8-row Parquet file under 1 GiB,
/// three runs of each interleaved, medians: q3 9.36 s to 8.82 s, q7 7.56 s to
/// 7.05 s; q10 (one run) 64.9 s to 56.1 s, its system time 40 s to 30 s.
/// Smaller blocks are mostly batch buffers, read through once.
const HUGE_BLOCK: usize = 4 << 20;

/// The size of a transparent huge page on x86-64 and (4 KiB-page) arm64.
const HUGE_PAGE: usize = 2 << 20;

/// The system allocator, asking the kernel for transparent huge pages for large
/// blocks (see [`HUGE_BLOCK`]) where it only gives them on request (the
/// `madvise` setting of `/sys/kernel/mm/transparent_hugepage/enabled`, Debian's
/// default). Under `always` the advice changes nothing, under `never` it is
/// ignored; elsewhere than Linux this is the system allocator.
///
/// Only whole 2 MiB pages inside a block are advised, so no memory outside it
/// changes; a huge page is resident whole once touched, which a block this
/// large is anyway (its reservation counts it all).
pub struct HugePageAlloc;

// SAFETY: every call is passed to `System` unchanged; the advice only changes
// how the kernel backs pages of the block just returned, never its contents.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        advise_huge_pages(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise_huge_pages(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if new_size > layout.size() {
            advise_huge_pages(p, new_size);
        }
        p
    }
}

/// Advises the whole huge pages of the block of `size` bytes at `p` (nothing
/// for a null pointer or a block under [`HUGE_BLOCK`]).
fn advise_huge_pages(p: *mut u8, size: usize) {
    if p.is_null() || size < HUGE_BLOCK {
        return;
    }
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize + size) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        advise(start, end - start);
    }
}

#[cfg(target_os = "linux")]
fn advise(start: usize, len: usize) {
    // SAFETY: the range lies inside a block just allocated, owned by the
    // caller; MADV_HUGEPAGE changes how its pages are backed, not what they
    // hold. A failure (a kernel without THP) leaves the block as it was.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mmap_threshold_grows_with_the_limit_between_its_bounds() {
        assert_eq!(mmap_threshold(8 << 20), 128 << 10);
        assert_eq!(mmap_threshold(32 << 20), 128 << 10);
        assert_eq!(mmap_threshold(256 << 20), 1 << 20);
        assert_eq!(mmap_threshold(1 << 30), 4 << 20);
        assert_eq!(mmap_threshold(TIGHT_LIMIT - 1), 4 << 20);
    }

    #[test]
    fn blocks_keep_their_contents_whatever_the_advice() {
        let alloc = HugePageAlloc;
        for size in [64, HUGE_BLOCK - 1, HUGE_BLOCK, 3 * HUGE_BLOCK + 4097] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: a non-zero size; the block is written within its size and
            // freed with its layout.
            unsafe {
                let p = alloc.alloc_zeroed(layout);
                assert!(!p.is_null());
                let block = std::slice::from_raw_parts_mut(p, size);
                assert!(block.iter().all(|&b| b == 0), "zeroed, size {size}");
                block.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
                let q = alloc.realloc(p, layout, 2 * size);
                let grown = std::slice::from_raw_parts(q, size);
                assert!(
                    grown.iter().enumerate().all(|(i, &b)| b == i as u8),
                    "size {size}"
                );
                alloc.dealloc(q, Layout::from_size_align(2 * size, 64).unwrap());
            }
        }
    }
}
