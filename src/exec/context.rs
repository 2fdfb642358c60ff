//! What every job carries: its thread count, memory pool and monitor, spill store,
//! cancellation flag, progress bar and statistics, and the recorder of its report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{CancelToken, Event, Observer, Progress, Recorder};
use crate::error::{Error, Result};
use crate::memory::{
    default_memory_limit, unreclaimable_rss_bytes, DiskManager, MemoryListener, MemoryMonitor,
    MemoryPool, SpillCompression, SpillStore, Thresholds,
};
use crate::sys::Reclaimed;

/// Counters a job accumulates; read at the end for `--stats`.
#[derive(Debug, Default)]
pub struct JobStats {
    /// Bytes read from inputs.
    pub read_bytes: AtomicU64,
    /// Bytes written to outputs.
    pub written_bytes: AtomicU64,
    /// Units of work (tasks, partitions or chunks) completed.
    pub tasks: AtomicU64,
    /// Milliseconds new tasks were held back by the pause threshold.
    pub paused_ms: AtomicU64,
    /// Bytes written to disk for want of memory: intermediates of the plan (staged
    /// rechunks, store entries spilled); the spill store counts operators' own.
    pub spilled_bytes: AtomicU64,
    /// Tasks not run because their outputs were already published (a resumed run).
    pub skipped_tasks: AtomicU64,
    /// Rows written to table outputs (or along the first axis of array outputs).
    pub rows: AtomicU64,
    /// Bytes of stale temporaries left by killed processes that this job removed
    /// (spill directories, temporary outputs beside a destination).
    pub reclaimed_bytes: AtomicU64,
}

impl JobStats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl Observer for JobStats {
    fn on_event(&self, event: &Event) {
        match event {
            Event::TaskFinished(_) => JobStats::add(&self.tasks, 1),
            Event::BytesRead(n) => JobStats::add(&self.read_bytes, *n),
            Event::BytesWritten(n) => JobStats::add(&self.written_bytes, *n),
            Event::RowsWritten(n) => JobStats::add(&self.rows, *n),
            Event::BytesSpilled(n) => JobStats::add(&self.spilled_bytes, *n),
            Event::TaskStarted(_)
            | Event::TaskSkipped(_)
            | Event::Warning(_)
            | Event::Paused
            | Event::Resumed => {}
        }
    }
}

/// How to set up a job; every field has the documented default.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Worker threads (default: all cores).
    pub threads: usize,
    /// Memory limit in bytes (default: 80% of physical or cgroup memory).
    pub memory_limit: u64,
    /// The four memory thresholds.
    pub thresholds: Thresholds,
    /// Where spill files go (default: the system temp dir).
    pub spill_dir: PathBuf,
    /// How spill files are compressed (default: `auto`, see [`SpillCompression`]).
    pub spill_compression: SpillCompression,
    /// Spill disk quota in bytes (default: 90% of the free space in `spill_dir`).
    pub spill_quota: Option<u64>,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
    /// Print one line on stderr when creating the spill directory reclaimed stale
    /// ones left by killed processes (default: on, as the command line wants it; an
    /// embedding host may turn it off and read [`JobContext::reclaimed`] instead).
    pub report_reclaimed: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_limit: default_memory_limit(),
            thresholds: Thresholds::default(),
            spill_dir: std::env::temp_dir(),
            spill_compression: SpillCompression::default(),
            spill_quota: None,
            progress: false,
            report_reclaimed: true,
        }
    }
}

/// The environment a job runs in.
#[derive(Clone)]
pub struct JobContext {
    /// Worker threads.
    pub threads: usize,
    /// The job's thread pool: the executor's tasks and every parallel loop run here.
    pub workers: Arc<rayon::ThreadPool>,
    /// The memory budget.
    pub pool: MemoryPool,
    /// Applies the thresholds; the executor asks it at task boundaries.
    pub monitor: Arc<MemoryMonitor>,
    /// Where blocking operators spill.
    pub spill: SpillStore,
    /// Set to stop the job at the next chunk boundary.
    pub cancel: CancelToken,
    /// The progress display.
    pub progress: Progress,
    /// Counters for `--stats`.
    pub stats: Arc<JobStats>,
    /// Stale spill directories of killed processes removed when this job created its
    /// own.
    pub reclaimed: Reclaimed,
    /// Whether [`JobContext::note_reclaimed`] prints (see [`JobOptions`]).
    report_reclaimed: bool,
    /// Records the job for its report (`--report`); nothing is recorded without one.
    recorder: Option<Arc<Recorder>>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("threads", &self.threads)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The spill quota set by `BLOCKWISE_SPILL_QUOTA` (bytes, a plain integer), if set: a
/// hidden knob for tests and for shared machines where 90% of the free space is too
/// generous.
///
/// # Errors
/// [`Error::InvalidOption`] for a value that is not a whole number of bytes.
fn spill_quota_from_env() -> Result<Option<u64>> {
    const NAME: &str = "BLOCKWISE_SPILL_QUOTA";
    let Ok(text) = std::env::var(NAME) else {
        return Ok(None);
    };
    text.trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| Error::InvalidOption {
            option: NAME,
            value: text.clone(),
            reason: "must be a whole number of bytes, such as 1048576".into(),
        })
}

impl JobContext {
    /// Sets up a job: the pool, the monitor, and a fresh spill directory (removed
    /// when the last clone of the context is dropped).
    ///
    /// # Errors
    /// Invalid thresholds; a spill directory that cannot be created.
    pub fn new(options: &JobOptions, cancel: CancelToken) -> Result<Self> {
        options.thresholds.validate()?;
        // Operators reserve up to the pause threshold: past it RSS nears the
        // terminate threshold, and what no reservation sees (freed pages the
        // allocator holds, buffers in flight) needs room below it. At 1e7 rows
        // under 256 MiB, q10 reserved 89% of the limit and was terminated.
        let pool = MemoryPool::new(options.memory_limit).with_capacity(
            (options.thresholds.pause.min(1.0) * options.memory_limit as f64) as u64,
        );
        crate::memory::bound_allocator_retention(options.threads, options.memory_limit);
        let quota = match options.spill_quota {
            Some(q) => Some(q),
            None => spill_quota_from_env()?,
        };
        let disk = DiskManager::new(&options.spill_dir, quota)?;
        let reclaimed = disk.reclaimed().clone();
        let spill = SpillStore::new(disk, options.spill_compression);
        let monitor = MemoryMonitor::new(pool.clone(), options.thresholds)
            .with_spill_store(spill.clone())
            .with_baseline(unreclaimable_rss_bytes())
            .with_allowance(
                crate::memory::RUNTIME_ALLOWANCE_PER_THREAD * options.threads.max(1) as u64,
            );
        let ctx = JobContext {
            threads: options.threads.max(1),
            workers: super::thread_pool(options.threads)?,
            pool,
            monitor: Arc::new(monitor),
            spill,
            cancel,
            progress: Progress::new(options.progress),
            stats: Arc::default(),
            reclaimed,
            report_reclaimed: options.report_reclaimed,
            recorder: None,
        };
        ctx.note_reclaimed(&ctx.reclaimed);
        Ok(ctx)
    }

    /// Says on stderr what was reclaimed from processes killed outright (spill
    /// directories, or temporary outputs beside a destination), when the job's
    /// options ask for it and there was anything.
    pub fn note_reclaimed(&self, reclaimed: &Reclaimed) {
        JobStats::add(&self.stats.reclaimed_bytes, reclaimed.bytes);
        if let (true, Some(line)) = (self.report_reclaimed, reclaimed.message()) {
            eprintln!("blockwise: {line}");
        }
    }

    /// The same job, recorded for a report from now on: the executor's events and
    /// the memory layer's readings and spills go to a [`Recorder`].
    pub fn with_recorder(mut self) -> Self {
        let recorder = Arc::new(Recorder::new(self.pool.clone()));
        // A first reading, so the memory chart starts where the job did.
        recorder.on_memory(crate::memory::MemoryEvent::Sample {
            rss_bytes: self.monitor.rss(true),
            reserved_bytes: self.pool.reserved(),
        });
        let listener = recorder.clone();
        self.spill
            .listen(MemoryListener::new(move |event| listener.on_memory(event)));
        self.recorder = Some(recorder);
        self
    }

    /// The job's recorder, when it is recorded for a report.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.recorder.as_ref()
    }

    /// A job with the default options.
    ///
    /// # Errors
    /// As [`JobContext::new`].
    pub fn with_defaults() -> Result<Self> {
        Self::new(&JobOptions::default(), CancelToken::new())
    }

    /// The environment of a plan run by this job over `store`: its pool, monitor
    /// and spill store.
    pub fn environment<'a>(
        &'a self,
        store: &'a dyn crate::plan::DataStore,
        resources: &'a crate::plan::Resources,
    ) -> super::Environment<'a> {
        super::Environment::new(store, &self.pool, &self.spill, resources)
            .with_monitor(&self.monitor)
    }

    /// Runs `f` on the job's thread pool, so its parallel loops use the job's threads.
    ///
    /// # Errors
    /// `f`'s error.
    pub fn install<T: Send>(
        &self,
        f: impl FnOnce() -> crate::Result<T> + Send,
    ) -> crate::Result<T> {
        self.workers.install(f)
    }

    /// The executor for this job: its threads, its cancel token, its memory monitor
    /// as the gate, and its statistics as an observer.
    pub fn executor(&self) -> super::LocalExecutor {
        let executor = super::LocalExecutor::on_pool(self.workers.clone(), self.cancel.clone())
            .with_gate(self.monitor.clone())
            .with_observer(self.stats.clone())
            .with_observer(Arc::new(self.progress.clone()));
        match &self.recorder {
            Some(recorder) => executor.with_observer(recorder.clone()),
            None => executor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_pool_lends_up_to_the_pause_threshold() {
        let job = |pause: f64| {
            let options = JobOptions {
                threads: 1,
                memory_limit: 1000,
                thresholds: Thresholds {
                    pause,
                    terminate: f64::INFINITY,
                    ..Thresholds::default()
                },
                ..JobOptions::default()
            };
            let ctx = JobContext::new(&options, CancelToken::new()).unwrap();
            (ctx.pool.limit(), ctx.pool.capacity())
        };
        assert_eq!(job(0.8), (1000, 800));
        // Pausing turned off: the whole limit.
        assert_eq!(job(f64::INFINITY), (1000, 1000));
    }
}
