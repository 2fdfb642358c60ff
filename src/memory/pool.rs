//! The memory pool: one limit, named consumers holding reservations.
//!
//! A reservation is bookkeeping, not an allocator: an operator grows it before it
//! buffers data and shrinks it when it lets go. The pool refuses growth past its
//! capacity with an error naming the largest consumers, so the failing operation can
//! flush, spill or report instead of the process being killed.
//!
//! The capacity may be less than the limit ([`MemoryPool::with_capacity`]): a job
//! lends its operators up to the pause threshold, and the rest of the limit is
//! headroom for what no reservation sees (the allocator's freed pages, the code,
//! buffers in flight), below the RSS at which the job is terminated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    reserved: u64,
    peak: u64,
    consumers: HashMap<u64, (String, u64)>,
    next_id: u64,
}

/// A shared memory budget.
#[derive(Debug, Clone)]
pub struct MemoryPool {
    limit: u64,
    capacity: u64,
    state: Arc<Mutex<State>>,
}

impl MemoryPool {
    /// A pool that allows `limit` bytes of reservations.
    pub fn new(limit: u64) -> Self {
        MemoryPool {
            limit,
            capacity: limit,
            state: Arc::default(),
        }
    }

    /// This pool lending only `capacity` bytes (at most its limit) of reservations.
    pub fn with_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity.min(self.limit);
        self
    }

    /// The limit in bytes: the job's memory limit, which thresholds and plans
    /// are sized from.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The bytes reservations may hold together.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.lock().reserved
    }

    /// The most bytes ever reserved at once.
    pub fn peak_reserved(&self) -> u64 {
        self.lock().peak
    }

    /// A new, empty reservation for the consumer `name`.
    pub fn reserve(&self, name: impl Into<String>) -> Reservation {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.consumers.insert(id, (name.into(), 0));
        Reservation {
            pool: self.clone(),
            id,
            bytes: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The three largest consumers and their bytes, e.g. "sort 12.0 MiB, parquet writer 3.0 MiB".
    pub fn top_consumers(&self) -> String {
        Self::top_of(&self.lock())
    }

    fn top_of(s: &State) -> String {
        let mut all: Vec<_> = s.consumers.values().filter(|(_, b)| *b > 0).collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.1));
        let top: Vec<String> = all
            .iter()
            .take(3)
            .map(|(n, b)| format!("{n} {}", human_bytes(*b)))
            .collect();
        if top.is_empty() {
            "none".into()
        } else {
            top.join(", ")
        }
    }
}

/// Bytes held by one consumer; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    pool: MemoryPool,
    id: u64,
    bytes: u64,
}

impl Reservation {
    /// Bytes held.
    pub fn size(&self) -> u64 {
        self.bytes
    }

    /// Grows by `bytes` if the pool's capacity has room.
    ///
    /// # Errors
    /// [`Error::MemoryLimit`] naming this consumer, the request and the top consumers.
    pub fn try_grow(&mut self, bytes: u64) -> Result<()> {
        let mut s = lock(&self.pool.state);
        if s.reserved + bytes > self.pool.capacity {
            let name = s
                .consumers
                .get(&self.id)
                .map(|c| c.0.clone())
                .unwrap_or_default();
            return Err(Error::MemoryLimit {
                consumer: name,
                requested: bytes,
                reserved: s.reserved,
                limit: self.pool.capacity,
                top: MemoryPool::top_of(&s),
            });
        }
        apply(&mut s, self.id, &mut self.bytes, bytes as i64);
        Ok(())
    }

    /// Grows by `bytes` even past the capacity (for memory already allocated, which the
    /// pool must know about to report it).
    pub fn grow(&mut self, bytes: u64) {
        let mut s = lock(&self.pool.state);
        apply(&mut s, self.id, &mut self.bytes, bytes as i64);
    }

    /// Shrinks by up to `bytes`.
    pub fn shrink(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        let mut s = lock(&self.pool.state);
        apply(&mut s, self.id, &mut self.bytes, -(bytes as i64));
    }

    /// Sets the held size to `bytes`, growing past the limit if need be.
    pub fn resize(&mut self, bytes: u64) {
        if bytes >= self.bytes {
            self.grow(bytes - self.bytes);
        } else {
            self.shrink(self.bytes - bytes);
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn apply(s: &mut State, id: u64, held: &mut u64, delta: i64) {
    *held = (*held as i64 + delta) as u64;
    s.reserved = (s.reserved as i64 + delta) as u64;
    s.peak = s.peak.max(s.reserved);
    if let Some(c) = s.consumers.get_mut(&id) {
        c.1 = *held;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut s = self.pool.lock();
        s.reserved -= self.bytes;
        s.consumers.remove(&self.id);
    }
}

/// Formats a byte count as people read it: "12.0 MiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_lends_its_capacity_and_keeps_its_limit() {
        let pool = MemoryPool::new(100).with_capacity(80);
        assert_eq!((pool.limit(), pool.capacity()), (100, 80));
        let mut a = pool.reserve("table");
        a.try_grow(80).unwrap();
        match a.try_grow(1).unwrap_err() {
            Error::MemoryLimit {
                limit, reserved, ..
            } => assert_eq!((limit, reserved), (80, 80)),
            other => panic!("{other}"),
        }
        // Memory already allocated is still counted, past the capacity.
        a.grow(30);
        assert_eq!(pool.reserved(), 110);
        assert_eq!(MemoryPool::new(10).with_capacity(20).capacity(), 10);
    }

    #[test]
    fn reservations_count_against_the_limit_and_release_on_drop() {
        let pool = MemoryPool::new(100);
        let mut a = pool.reserve("sort");
        a.try_grow(60).unwrap();
        {
            let mut b = pool.reserve("parquet writer");
            let err = b.try_grow(50).unwrap_err().to_string();
            assert!(
                err.contains("parquet writer") && err.contains("sort 60 B"),
                "{err}"
            );
            b.try_grow(40).unwrap();
            assert_eq!(pool.reserved(), 100);
        }
        assert_eq!(pool.reserved(), 60);
        a.shrink(100);
        assert_eq!(pool.reserved(), 0);
        assert_eq!(pool.peak_reserved(), 100);
    }
}
