//! The threshold monitor: the four memory thresholds of DESIGN.md, applied at task
//! boundaries and at most every 50 ms in between.
//!
//! | threshold | measured on | action |
//! |---|---|---|
//! | target (0.60) | reserved bytes | spill least recently used spillable blocks |
//! | spill (0.70) | process RSS | the same, driven by RSS |
//! | pause (0.80) | process RSS | no new task starts beside running ones |
//! | terminate (0.95) | process RSS | the job is cancelled cleanly |
//!
//! "RSS" here is the resident memory the kernel cannot drop ([`unreclaimable_rss_bytes`]:
//! anonymous and shared pages): the binary's code and the clean pages of mapped spill
//! files are resident too, but they are the binary's constant or reclaimable, and
//! counting them cancelled jobs that were within their limit.
//!
//! RSS is counted from a baseline taken when the job starts ([`MemoryMonitor::with_baseline`]):
//! what the job added to the process, so that a host process's own memory (a Python
//! interpreter embedding blockwise, a Dask worker) does not count against the job's
//! limit. The pause and terminate thresholds also leave a fixed allowance per worker thread
//! ([`RUNTIME_ALLOWANCE_PER_THREAD`], [`MemoryMonitor::with_allowance`]) for what a
//! thread needs whatever the data: its stack, its allocator arena, codec contexts.
//! Without it, a limit of a few MiB was passed by the threads starting, and jobs
//! that reserved kilobytes were cancelled. RSS is read through a seam ([`MemoryMonitor::with_rss_source`]) so tests can drive
//! every threshold without allocating gigabytes.
//!
//! Memory a task frees stays in RSS until the allocator hands it back, so the heap
//! is trimmed ([`release_free_heap`], through the seam
//! [`MemoryMonitor::with_heap_release`]): at a check past spill (at most once a
//! second), after every entry the monitor spills (else RSS never shows what the
//! spill freed, and entry after entry goes to disk), and when a reservation grows
//! while RSS is past pause (at most once a second: a task runs for seconds between
//! two checks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::spill::{SpillStore, Spillable};
use super::{unreclaimable_rss_bytes, MemoryPool};
use super::{Admission, MemoryGate};
use crate::error::{Error, Result};

/// What a worker thread holds resident that no reservation covers: its stack, its
/// allocator arena, a zstd context (about 1.3 MiB at level 3 for 8 MiB inputs).
pub const RUNTIME_ALLOWANCE_PER_THREAD: u64 = 4 << 20;

/// How often RSS is sampled between task boundaries, at most.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// The four thresholds, as fractions of the memory limit. A threshold can be turned
/// off (as Dask's `memory.terminate: false`): it is then infinite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Reserved bytes above which spillable blocks are spilled.
    pub target: f64,
    /// RSS above which spillable blocks are spilled.
    pub spill: f64,
    /// RSS above which no new task starts.
    pub pause: f64,
    /// RSS at which the job is cancelled.
    pub terminate: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            target: 0.60,
            spill: 0.70,
            pause: 0.80,
            terminate: 0.95,
        }
    }
}

impl Thresholds {
    /// These thresholds with any `BLOCKWISE_MEMORY_TARGET`, `_SPILL`, `_PAUSE` or
    /// `_TERMINATE` environment variable applied.
    ///
    /// # Errors
    /// [`Error::Usage`] for a value that is not a fraction, or thresholds out of order.
    pub fn with_env(mut self) -> Result<Self> {
        for (name, field) in [
            ("BLOCKWISE_MEMORY_TARGET", &mut self.target),
            ("BLOCKWISE_MEMORY_SPILL", &mut self.spill),
            ("BLOCKWISE_MEMORY_PAUSE", &mut self.pause),
            ("BLOCKWISE_MEMORY_TERMINATE", &mut self.terminate),
        ] {
            if let Ok(text) = std::env::var(name) {
                *field = parse_threshold(&text).map_err(|reason| Error::InvalidOption {
                    option: name,
                    value: text.clone(),
                    reason,
                })?;
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks that each threshold is in (0, 1] or off, and that spill ≤ pause ≤
    /// terminate.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the offending values.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("memory_target", self.target),
            ("memory_spill", self.spill),
            ("memory_pause", self.pause),
            ("memory_terminate", self.terminate),
        ] {
            if !(v > 0.0 && v <= 1.0 || v == f64::INFINITY) {
                return Err(Error::InvalidOption {
                    option: name,
                    value: v.to_string(),
                    reason: "must be a fraction in (0, 1], or off".into(),
                });
            }
        }
        if !(self.spill <= self.pause && self.pause <= self.terminate) {
            return Err(Error::InvalidOption {
                option: "memory_pause",
                value: self.pause.to_string(),
                reason: format!(
                    "the thresholds must satisfy spill ≤ pause ≤ terminate; got {} ≤ {} ≤ {}",
                    self.spill, self.pause, self.terminate
                ),
            });
        }
        Ok(())
    }
}

/// Parses a threshold: a fraction in (0, 1], or `off` / `false` to turn it off.
///
/// # Errors
/// A message naming the value.
pub fn parse_threshold(text: &str) -> std::result::Result<f64, String> {
    let bad = || "is not a fraction in (0, 1] like 0.7, or off".to_string();
    match text.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "none" => Ok(f64::INFINITY),
        // `inf` and `nan` parse as floats; only `off` turns a threshold off.
        t => match t.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
            _ => Err(bad()),
        },
    }
}

/// Returns memory the allocator holds but no one uses to the operating system
/// (glibc's `malloc_trim`; elsewhere nothing to do).
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no
    // preconditions and no effect on live allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the memory layer tells a listener as it happens: the readings and the
/// spills a job's report (`--report`) draws. Nothing is sent unless a listener is
/// set ([`SpillStore::listen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryEvent {
    /// The monitor read the job's RSS (above its baseline) while this many bytes
    /// were reserved on the pool.
    Sample {
        /// The job's RSS, as the thresholds see it.
        rss_bytes: u64,
        /// Bytes reserved on the pool.
        reserved_bytes: u64,
    },
    /// Bytes moved to disk for want of memory: an operator's spill file, or a
    /// store entry the monitor spilled (counted by the reservation it freed).
    Spilled(u64),
    /// Bytes of spilled data read back (a chunk file, or a batch of a batch file).
    ReadBack(u64),
}

/// Receives [`MemoryEvent`]s on whichever thread they happen; it must be cheap.
#[derive(Clone)]
pub struct MemoryListener(Arc<dyn Fn(MemoryEvent) + Send + Sync>);

impl MemoryListener {
    /// A listener calling `f` with every event.
    pub fn new(f: impl Fn(MemoryEvent) + Send + Sync + 'static) -> Self {
        MemoryListener(Arc::new(f))
    }

    /// Hands it `event`.
    pub fn send(&self, event: MemoryEvent) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for MemoryListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryListener")
    }
}

/// Reads the process RSS in bytes.
pub type RssSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Hands the allocator's free memory back to the operating system
/// ([`release_free_heap`] unless a test sets its own).
pub type HeapRelease = Arc<dyn Fn() + Send + Sync>;

struct Entry {
    id: u64,
    item: Weak<Mutex<dyn Spillable>>,
    last_used: u64,
}

/// Watches memory and applies the thresholds.
pub struct MemoryMonitor {
    pool: MemoryPool,
    thresholds: Thresholds,
    rss: RssSource,
    release_heap: HeapRelease,
    store: Option<SpillStore>,
    entries: Mutex<Vec<Entry>>,
    clock: AtomicU64,
    last_sample: Mutex<Option<(Instant, u64)>>,
    spilled_bytes: AtomicU64,
    baseline: u64,
    allowance: u64,
    last_trim: Mutex<Option<Instant>>,
}

impl MemoryMonitor {
    /// A monitor of `pool` with `thresholds`, reading this process's anonymous and
    /// shared resident memory.
    pub fn new(pool: MemoryPool, thresholds: Thresholds) -> Self {
        MemoryMonitor {
            pool,
            thresholds,
            rss: Arc::new(unreclaimable_rss_bytes),
            release_heap: Arc::new(release_free_heap),
            store: None,
            entries: Mutex::new(Vec::new()),
            clock: AtomicU64::new(0),
            last_sample: Mutex::new(None),
            spilled_bytes: AtomicU64::new(0),
            baseline: 0,
            allowance: 0,
            last_trim: Mutex::new(None),
        }
    }

    /// Counts RSS above `bytes` (the process's RSS when the job started).
    pub fn with_baseline(mut self, bytes: u64) -> Self {
        self.baseline = bytes;
        self
    }

    /// Raises the pause and terminate thresholds by `bytes`: what the job's threads
    /// hold resident whatever the data (see [`RUNTIME_ALLOWANCE_PER_THREAD`]).
    pub fn with_allowance(mut self, bytes: u64) -> Self {
        self.allowance = bytes;
        self
    }

    /// Reads RSS from `source` instead of `/proc/self/statm` (the seam tests use).
    pub fn with_rss_source(mut self, source: RssSource) -> Self {
        self.rss = source;
        self
    }

    /// Trims the heap with `release` instead of [`release_free_heap`] (the seam
    /// tests use to see when RSS falls).
    pub fn with_heap_release(mut self, release: HeapRelease) -> Self {
        self.release_heap = release;
        self
    }

    /// Spills through `store` when a spill threshold is passed.
    pub fn with_spill_store(mut self, store: SpillStore) -> Self {
        self.store = Some(store);
        self
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Tells the job's memory listener, if any, of `event` (what a spillable
    /// outside the spill store wrote or read back).
    pub(crate) fn notify(&self, event: MemoryEvent) {
        if let Some(store) = &self.store {
            store.notify(event);
        }
    }

    /// Whether reserved bytes are past the target threshold: what the monitor
    /// spills entries for, at its next check.
    pub fn over_target(&self) -> bool {
        self.pool.reserved() as f64 > self.thresholds.target * self.pool.limit() as f64
    }

    /// Bytes this monitor has spilled.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Makes `item` a candidate for spilling; returns its id for [`Self::touch`]. The
    /// monitor holds it weakly: dropping the item unregisters it.
    pub fn register(&self, item: &Arc<Mutex<dyn Spillable>>) -> u64 {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| e.item.strong_count() > 0);
        let id = self.clock.fetch_add(1, Ordering::Relaxed);
        entries.push(Entry {
            id,
            item: Arc::downgrade(item),
            last_used: id,
        });
        id
    }

    /// Marks item `id` as just used, so it is spilled after older ones.
    pub fn touch(&self, id: u64) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
            e.last_used = now;
        }
    }

    /// The job's RSS (process RSS above the baseline): a fresh reading when `fresh`
    /// or when the last one is older than 50 ms, else the last one.
    pub fn rss(&self, fresh: bool) -> u64 {
        let mut last = self.last_sample.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some((at, value)) if !fresh && at.elapsed() < SAMPLE_INTERVAL => value,
            _ => {
                let value = (self.rss)().saturating_sub(self.baseline);
                *last = Some((Instant::now(), value));
                value
            }
        }
    }

    /// Applies the thresholds now: spills if past target or spill, and says whether
    /// new tasks may start.
    ///
    /// # Errors
    /// [`Error::MemoryTerminated`] past the terminate threshold; spill errors.
    pub fn check(&self) -> Result<Admission> {
        let mut rss = self.rss(true);
        // Spilling starts at the bare fraction: trimming the heap and spilling early
        // costs little, and keeps RSS near the limit. Only pausing and terminating,
        // which stop work, leave the threads their allowance.
        let spill = self.spill_threshold();
        // Past the terminate threshold, the heap is trimmed and the store spilled
        // before the job is given up: RSS past it is often freed memory the
        // allocator still holds (at 1e8 rows under 1 GiB, q10's final tasks met
        // the threshold with 0.46 GB reserved and nothing left to spill).
        let terminating = rss >= self.rss_threshold(self.thresholds.terminate);
        if rss > spill && (self.may_trim() || terminating) {
            // Memory the pool cannot see is often the allocator holding freed pages;
            // hand them back before spilling anything.
            (self.release_heap)();
            rss = self.rss(true);
        }
        while self.over_target() || rss > spill {
            if self.spill_least_recently_used()? == 0 {
                break;
            }
            // What the spilled entry held is free heap now (its batches are
            // allocations below the mmap threshold), which RSS does not show
            // until it is handed back. Without that, RSS stayed put entry after
            // entry and the loop spilled them all, for seconds, while the tasks
            // went on allocating: at 1e8 rows under 1 GiB, q10 spilled five
            // entries in a row (455 MB, 2 s) with RSS climbing from 0.7 to 0.89
            // of the limit, and 0.46 GB of it was freed at the next trim.
            (self.release_heap)();
            rss = self.rss(true);
        }
        if let Some(store) = &self.store {
            store.notify(MemoryEvent::Sample {
                rss_bytes: rss,
                reserved_bytes: self.pool.reserved(),
            });
        }
        if rss >= self.rss_threshold(self.thresholds.terminate) {
            return Err(self.terminated(rss));
        }
        Ok(if rss > self.rss_threshold(self.thresholds.pause) {
            Admission::Pause
        } else {
            Admission::Run
        })
    }

    /// The RSS in bytes past which memory is handed back and entries spill: the
    /// bare fraction (trimming the heap and spilling early costs little, and keeps
    /// RSS near the limit; only pausing and terminating, which stop work, leave the
    /// threads their allowance).
    fn spill_threshold(&self) -> u64 {
        self.rss_threshold(self.thresholds.spill)
            .saturating_sub(self.allowance)
    }

    /// An RSS threshold in bytes: its fraction of the limit, plus the threads'
    /// allowance (`u64::MAX` for a threshold turned off).
    fn rss_threshold(&self, fraction: f64) -> u64 {
        let bytes = fraction * self.pool.limit() as f64 + self.allowance as f64;
        if bytes >= u64::MAX as f64 {
            u64::MAX
        } else {
            bytes as u64
        }
    }

    /// Grows `reservation` by `bytes`, spilling least recently used blocks first if
    /// the pool has no room: the way an operator asks for memory it must have.
    ///
    /// # Errors
    /// [`Error::MemoryLimit`] when nothing is left to spill and it still does not fit.
    pub fn grow_or_spill(&self, reservation: &mut super::Reservation, bytes: u64) -> Result<()> {
        let mut spilled = false;
        loop {
            match reservation.try_grow(bytes) {
                Ok(()) => break,
                Err(e) => {
                    if self.spill_least_recently_used()? == 0 {
                        return Err(e);
                    }
                    spilled = true;
                }
            }
        }
        // What the spilled entries held is free heap now, which the grower (a
        // table, growing in blocks of its own) does not reuse: handed back, it
        // does not count twice in RSS. So is what a task freed since the last
        // admission, which the monitor would see only at the next one: a final
        // task of q10 at 1e8 rows runs for seconds, and between admissions RSS
        // reached 0.9 of the limit (once past terminate) while every sample the
        // monitor took stayed at the spill threshold. Only past the pause
        // threshold: each trim makes the pages it hands back fault in again when
        // reused; trimming past the spill threshold made q10 about a tenth
        // slower.
        let pause = self.rss_threshold(self.thresholds.pause);
        if (spilled || self.rss(false) > pause) && self.may_trim() {
            (self.release_heap)();
        }
        Ok(())
    }

    /// Trimming the heap walks it and makes later allocations fault pages in again:
    /// at most once a second.
    fn may_trim(&self) -> bool {
        let mut last = self.last_trim.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if at.elapsed() < Duration::from_secs(1) => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    fn terminated(&self, rss: u64) -> Error {
        Error::MemoryTerminated {
            rss,
            threshold: self.rss_threshold(self.thresholds.terminate),
            fraction: self.thresholds.terminate,
            allowance: self.allowance,
            limit: self.pool.limit(),
            top: self.pool.top_consumers(),
        }
    }

    /// Spills the least recently used item that is not spilled yet; returns the bytes
    /// it freed (0 when nothing is left to spill).
    fn spill_least_recently_used(&self) -> Result<u64> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut candidates: Vec<(u64, Arc<Mutex<dyn Spillable>>)> = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.retain(|e| e.item.strong_count() > 0);
            entries
                .iter()
                .filter_map(|e| Some((e.last_used, e.item.upgrade()?)))
                .collect()
        };
        candidates.sort_by_key(|(used, _)| *used);
        for (_, item) in candidates {
            // An item busy in a task is skipped rather than waited for.
            let Ok(mut guard) = item.try_lock() else {
                continue;
            };
            if guard.is_spilled() {
                continue;
            }
            // The spilled entry says what it wrote (`notify`): what it frees here
            // can differ from its bytes on disk.
            let freed = guard.spill(store)?;
            if freed > 0 {
                self.spilled_bytes.fetch_add(freed, Ordering::Relaxed);
                return Ok(freed);
            }
        }
        Ok(0)
    }
}

impl MemoryGate for MemoryMonitor {
    fn admit(&self) -> Result<Admission> {
        self.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{DiskManager, SpillCompression, SpillableChunk};

    /// A monitor over a 1000-byte limit whose RSS reading is `rss`.
    fn monitor(rss: &Arc<AtomicU64>, dir: &std::path::Path) -> (MemoryMonitor, SpillStore) {
        let disk = DiskManager::new(dir, None).unwrap();
        let store = SpillStore::new(disk, SpillCompression::Zstd(1));
        let reading = rss.clone();
        let m = MemoryMonitor::new(MemoryPool::new(1000), Thresholds::default())
            .with_rss_source(Arc::new(move || reading.load(Ordering::SeqCst)))
            .with_spill_store(store.clone());
        (m, store)
    }

    fn chunk(fill: u8) -> Arc<Mutex<dyn Spillable>> {
        Arc::new(Mutex::new(SpillableChunk::new(vec![fill; 100])))
    }

    #[test]
    fn spill_threshold_spills_least_recently_used_first_and_reads_back_identical_data() {
        let dir = tempfile::tempdir().unwrap();
        let rss = Arc::new(AtomicU64::new(100));
        let (m, store) = monitor(&rss, dir.path());
        let b_data = Arc::new(Mutex::new(SpillableChunk::new(vec![2; 100])));
        let (a, b): (_, Arc<Mutex<dyn Spillable>>) = (chunk(1), b_data.clone());
        let (ida, _idb) = (m.register(&a), m.register(&b));
        m.touch(ida); // `b` is now the least recently used
        assert_eq!(m.check().unwrap(), Admission::Run);
        assert!(!b.lock().unwrap().is_spilled());

        // Above spill (0.70), below pause: one block goes to disk per reading, until
        // RSS falls; here RSS stays up through the heap trim (the first two
        // readings) and falls after the first spill.
        let readings = Arc::new(AtomicU64::new(0));
        let m = m.with_rss_source(Arc::new(move || {
            if readings.fetch_add(1, Ordering::SeqCst) < 2 {
                750
            } else {
                100
            }
        }));
        assert_eq!(m.check().unwrap(), Admission::Run);
        assert!(b.lock().unwrap().is_spilled() && !a.lock().unwrap().is_spilled());
        assert_eq!(m.spilled_bytes(), 100);
        assert_eq!(store.spill_files(), 1);

        let mut back = b_data.lock().unwrap();
        back.unspill(&store).unwrap();
        assert_eq!(back.data().unwrap(), &[2u8; 100][..]);
    }

    #[test]
    fn after_each_spill_the_heap_is_trimmed_so_that_rss_shows_what_the_spill_freed() {
        let dir = tempfile::tempdir().unwrap();
        let rss = Arc::new(AtomicU64::new(0));
        let (m, store) = monitor(&rss, dir.path());
        let items: Vec<_> = (1..=3).map(chunk).collect();
        for item in &items {
            m.register(item);
        }
        // RSS past spill (0.70 of 1000) until the heap is trimmed once more after
        // the first trim: the spilled entry's memory is freed heap, which leaves
        // RSS only when handed back.
        let trims = Arc::new(AtomicU64::new(0));
        let seen = trims.clone();
        let m = m
            .with_rss_source(Arc::new(move || {
                if seen.load(Ordering::SeqCst) < 2 {
                    750
                } else {
                    100
                }
            }))
            .with_heap_release(Arc::new(move || {
                trims.fetch_add(1, Ordering::SeqCst);
            }));
        assert_eq!(m.check().unwrap(), Admission::Run);
        let spilled = items
            .iter()
            .filter(|i| i.lock().unwrap().is_spilled())
            .count();
        assert_eq!(spilled, 1, "one spill was enough once its memory went back");
        assert_eq!(store.spill_files(), 1);
    }

    #[test]
    fn a_reservation_growing_past_the_pause_threshold_in_rss_trims_the_heap() {
        let dir = tempfile::tempdir().unwrap();
        let rss = Arc::new(AtomicU64::new(100));
        let (m, _store) = monitor(&rss, dir.path());
        let trims = Arc::new(AtomicU64::new(0));
        let counted = trims.clone();
        let m = m.with_heap_release(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        let mut held = m.pool.reserve("table");
        // RSS below pause (0.80 of 1000): the pool has room, nothing to do.
        rss.store(750, Ordering::SeqCst);
        m.grow_or_spill(&mut held, 10).unwrap();
        assert_eq!(trims.load(Ordering::SeqCst), 0);
        // Past it with no spill needed: the heap is handed back all the same.
        rss.store(850, Ordering::SeqCst);
        std::thread::sleep(SAMPLE_INTERVAL);
        m.grow_or_spill(&mut held, 10).unwrap();
        assert_eq!(trims.load(Ordering::SeqCst), 1);
        assert_eq!(held.size(), 20);
    }

    #[test]
    fn past_terminate_the_heap_is_trimmed_and_read_again_before_giving_up() {
        let dir = tempfile::tempdir().unwrap();
        let rss = Arc::new(AtomicU64::new(0));
        let (m, _store) = monitor(&rss, dir.path());
        // Past terminate (0.95 of 1000) at the first reading, below spill at the
        // next: what the allocator held went back when the heap was trimmed.
        let readings = Arc::new(AtomicU64::new(0));
        let m = m.with_rss_source(Arc::new(move || {
            if readings.fetch_add(1, Ordering::SeqCst) == 0 {
                990
            } else {
                100
            }
        }));
        assert_eq!(m.check().unwrap(), Admission::Run);
        // Still past it after the trim and with nothing to spill: the job ends.
        let m = m.with_rss_source(Arc::new(|| 990));
        assert!(matches!(
            m.check().unwrap_err(),
            Error::MemoryTerminated { .. }
        ));
    }

    #[test]
    fn target_threshold_is_measured_on_reserved_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let rss = Arc::new(AtomicU64::new(0));
        let (m, _store) = monitor(&rss, dir.path());
        let item = chunk(7);
        m.register(&item);
        let mut held = m.pool.reserve("sort");
        held.grow(650); // above target (0.60) of 1000, RSS low
        m.check().unwrap();
        assert!(item.lock().unwrap().is_spilled());
    }

    #[test]
    fn thresholds_come_from_the_environment_and_are_validated() {
        assert!(Thresholds::default().validate().is_ok());
        let bad = Thresholds {
            pause: 0.5,
            ..Thresholds::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("spill ≤ pause"));
        assert!(Thresholds {
            target: 1.5,
            ..Thresholds::default()
        }
        .validate()
        .is_err());
    }
}
