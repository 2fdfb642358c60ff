//! One output written in part order by tasks that finish in any order: the partitions
//! of a streaming conversion, the key ranges of a sorted merge.
//!
//! A part whose predecessors are all written streams its items straight into the
//! output. The others hold theirs, reserved on the memory pool, while the writer's
//! hold budget allows, and otherwise wait for their turn. Whoever holds the writer
//! writes every finished part that is next in line, so a waiting part never waits for
//! a task that has no thread to run on.
//!
//! Waiting cannot deadlock as long as parts start in order: the lowest unfinished part
//! has then started, and once the parts before it are finished it is next in line and
//! never waits.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::CancelToken;
use crate::memory::{MemoryPool, Reservation};

/// How long a waiting part sleeps before looking again; finished parts wake it sooner.
const TURN_WAIT: Duration = Duration::from_millis(10);

/// Writes items of type `T` into a sink `S`, part by part in order.
pub(super) struct OrderedWriter<S, T> {
    state: Mutex<State<S, T>>,
    /// Notified whenever a part finishes.
    turn: Condvar,
    hold_budget: u64,
}

struct State<S, T> {
    sink: S,
    write: fn(&mut S, T) -> Result<()>,
    /// The next part to write.
    next: usize,
    /// Finished parts not yet written: their items and the reservation holding them.
    finished: Vec<Option<(Vec<T>, Option<Reservation>)>>,
    /// Bytes all waiting parts hold.
    held_bytes: u64,
}

impl<S, T> State<S, T> {
    /// Writes every finished part that is next in line.
    fn advance(&mut self) -> Result<()> {
        while let Some(slot) = self.finished.get_mut(self.next) {
            let Some((items, reservation)) = slot.take() else {
                break;
            };
            for item in items {
                (self.write)(&mut self.sink, item)?;
            }
            self.held_bytes -= reservation.as_ref().map_or(0, Reservation::size);
            self.next += 1;
        }
        Ok(())
    }
}

/// What one part holds while it waits for its turn.
pub(super) struct Part<'w, S, T> {
    writer: &'w OrderedWriter<S, T>,
    index: usize,
    held: Vec<T>,
    reservation: Reservation,
}

impl<S, T> OrderedWriter<S, T> {
    /// A writer of `parts` parts into `sink` through `write`; waiting parts may hold
    /// `hold_budget` bytes together.
    pub fn new(
        sink: S,
        write: fn(&mut S, T) -> Result<()>,
        parts: usize,
        hold_budget: u64,
    ) -> Self {
        OrderedWriter {
            state: Mutex::new(State {
                sink,
                write,
                next: 0,
                finished: (0..parts).map(|_| None).collect(),
                held_bytes: 0,
            }),
            turn: Condvar::new(),
            hold_budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S, T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts part `index`, reserving what it holds from `pool`.
    pub fn part(&self, index: usize, pool: &MemoryPool, name: String) -> Part<'_, S, T> {
        Part {
            writer: self,
            index,
            held: Vec::new(),
            reservation: pool.reserve(name),
        }
    }

    /// Writes whatever finished parts are next in line.
    ///
    /// # Errors
    /// The sink's write errors.
    pub fn advance(&self) -> Result<()> {
        let result = self.lock().advance();
        self.turn.notify_all();
        result
    }

    /// Runs `f` on the sink (a part that writes everything itself); the part is then
    /// finished with nothing held.
    ///
    /// # Errors
    /// `f`'s errors, and the sink's.
    pub fn with_sink<R>(&self, index: usize, f: impl FnOnce(&mut S) -> Result<R>) -> Result<R> {
        let mut state = self.lock();
        let result = f(&mut state.sink)?;
        if let Some(slot) = state.finished.get_mut(index) {
            *slot = Some((Vec::new(), None));
        }
        state.advance()?;
        drop(state);
        self.turn.notify_all();
        Ok(result)
    }

    /// Marks part `index` as having nothing to write.
    ///
    /// # Errors
    /// The sink's write errors (of the parts this lets through).
    pub fn skip(&self, index: usize) -> Result<()> {
        self.with_sink(index, |_| Ok(()))
    }

    /// The sink, once every part is written.
    ///
    /// # Errors
    /// [`Error::Internal`] when a part was never finished; the sink's write errors.
    pub fn into_sink(self) -> Result<S> {
        let mut state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        state.advance()?;
        if state.next < state.finished.len() {
            return Err(Error::Internal(format!(
                "part {} of the output was never written",
                state.next
            )));
        }
        Ok(state.sink)
    }
}

impl<S, T> Part<'_, S, T> {
    /// Hands `item` (holding `bytes`) to the output: written at once when this part is
    /// next in line, else held within the budget, else after waiting for its turn.
    ///
    /// # Errors
    /// [`Error::Cancelled`] while waiting; the sink's write errors.
    pub fn emit(&mut self, item: T, bytes: u64, cancel: &CancelToken) -> Result<()> {
        let writer = self.writer;
        let mut state = writer.lock();
        loop {
            cancel.check()?;
            state.advance()?;
            if state.next == self.index {
                state.held_bytes -= self.reservation.size();
                self.reservation.resize(0);
                for earlier in self.held.drain(..) {
                    (state.write)(&mut state.sink, earlier)?;
                }
                return (state.write)(&mut state.sink, item);
            }
            if state.held_bytes + bytes <= writer.hold_budget
                && self.reservation.try_grow(bytes).is_ok()
            {
                state.held_bytes += bytes;
                self.held.push(item);
                return Ok(());
            }
            // Nothing to write and no room to hold: the parts before this one are
            // still being produced on other threads.
            state = writer
                .turn
                .wait_timeout(state, TURN_WAIT)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
    }

    /// Finishes the part: what it still holds is written when its turn comes.
    ///
    /// # Errors
    /// The sink's write errors (of the parts this lets through).
    pub fn finish(self) -> Result<()> {
        let writer = self.writer;
        let mut state = writer.lock();
        let slot = state
            .finished
            .get_mut(self.index)
            .ok_or_else(|| Error::Internal(format!("no part {} of the output", self.index)))?;
        *slot = Some((self.held, Some(self.reservation)));
        let result = state.advance();
        drop(state);
        writer.turn.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(out: &mut Vec<u32>, item: u32) -> Result<()> {
        out.push(item);
        Ok(())
    }

    #[test]
    fn parts_finishing_out_of_order_are_written_in_order() {
        let pool = MemoryPool::new(1 << 20);
        let cancel = CancelToken::new();
        let writer = OrderedWriter::new(Vec::new(), push, 3, 1 << 20);
        let mut p2 = writer.part(2, &pool, "p2".into());
        p2.emit(20, 4, &cancel).unwrap();
        p2.emit(21, 4, &cancel).unwrap();
        p2.finish().unwrap();
        assert_eq!(pool.reserved(), 8, "part 2 waits, its items reserved");
        let mut p0 = writer.part(0, &pool, "p0".into());
        p0.emit(0, 4, &cancel).unwrap();
        let mut p1 = writer.part(1, &pool, "p1".into());
        p1.emit(10, 4, &cancel).unwrap();
        p0.finish().unwrap();
        p1.emit(11, 4, &cancel).unwrap();
        p1.finish().unwrap();
        assert_eq!(writer.into_sink().unwrap(), vec![0, 10, 11, 20, 21]);
        assert_eq!(pool.reserved(), 0);
    }

    #[test]
    fn a_part_past_the_budget_waits_for_its_turn() {
        let pool = MemoryPool::new(1 << 20);
        let cancel = CancelToken::new();
        let writer = OrderedWriter::new(Vec::new(), push, 2, 10);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                let mut p1 = writer.part(1, &pool, "p1".into());
                for i in 0..5 {
                    p1.emit(10 + i, 4, &cancel).unwrap();
                }
                p1.finish().unwrap();
            });
            // Part 1 holds two items (8 of 10 bytes), then waits for part 0.
            while pool.reserved() < 8 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(30));
            assert!(!waiting.is_finished());
            let mut p0 = writer.part(0, &pool, "p0".into());
            p0.emit(0, 4, &cancel).unwrap();
            p0.finish().unwrap();
        });
        assert_eq!(writer.into_sink().unwrap(), vec![0, 10, 11, 12, 13, 14]);
    }

    #[test]
    fn a_waiting_part_sees_cancellation() {
        let pool = MemoryPool::new(1 << 20);
        let cancel = CancelToken::new();
        let writer = OrderedWriter::new(Vec::new(), push, 2, 0);
        let mut p1 = writer.part(1, &pool, "p1".into());
        cancel.cancel();
        assert!(matches!(p1.emit(1, 4, &cancel), Err(Error::Cancelled)));
        drop(p1);
        assert!(writer.into_sink().is_err(), "part 0 never came");
    }
}
