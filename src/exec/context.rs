//! What every job carries: its thread count, memory pool, cancellation flag,
//! progress bar and statistics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{CancelToken, Progress};
use crate::memory::MemoryPool;

/// Counters a job accumulates; read at the end for `--stats`.
#[derive(Debug, Default)]
pub struct JobStats {
    /// Bytes read from inputs.
    pub read_bytes: AtomicU64,
    /// Bytes written to outputs.
    pub written_bytes: AtomicU64,
    /// Units of work (partitions or chunks) completed.
    pub tasks: AtomicU64,
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

/// The environment a job runs in.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Worker threads.
    pub threads: usize,
    /// The memory budget.
    pub pool: MemoryPool,
    /// Set to stop the job at the next chunk boundary.
    pub cancel: CancelToken,
    /// The progress display.
    pub progress: Progress,
    /// Counters for `--stats`.
    pub stats: Arc<JobStats>,
}

impl JobContext {
    /// A context with `threads` workers and a `memory_limit`-byte pool, no progress bar.
    pub fn new(threads: usize, memory_limit: u64) -> Self {
        JobContext {
            threads: threads.max(1),
            pool: MemoryPool::new(memory_limit),
            cancel: CancelToken::new(),
            progress: Progress::hidden(),
            stats: Arc::default(),
        }
    }

    /// Runs `f` on a rayon pool of this job's size.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] when the pool cannot be built, or `f`'s error.
    pub fn install<T: Send>(
        &self,
        f: impl FnOnce() -> crate::Result<T> + Send,
    ) -> crate::Result<T> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("blockwise-{i}"))
            .build()
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        pool.install(f)
    }
}

impl Default for JobContext {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        JobContext::new(threads, crate::memory::default_memory_limit())
    }
}
