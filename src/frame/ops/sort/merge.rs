//! The k-way merge of sorted runs, as an iterator of merged batches, optionally
//! restricted to a key range so that several ranges merge in parallel.

use std::cmp::Ordering;

use arrow::compute::interleave_record_batch;
use arrow::record_batch::RecordBatch;

use super::keys::{BatchKeys, Key};
use super::{ExternalSort, Run, RunData};
use crate::error::Result;
use crate::memory::{batch_memory, Reservation};

/// Keys from `lower` (inclusive) to `upper` (exclusive); `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// Smallest key in the range.
    pub lower: Option<Key>,
    /// First key past the range.
    pub upper: Option<Key>,
}

type Source<'a> = Box<dyn Iterator<Item = Result<RecordBatch>> + Send + 'a>;

/// Merged batches of a set of runs, in key order (ties: earlier run first).
pub struct MergeStream<'a> {
    sort: &'a ExternalSort,
    cursors: Vec<Cursor<'a>>,
    heap: Vec<usize>,
    _held: Reservation,
}

impl<'a> MergeStream<'a> {
    pub(super) fn new(
        sort: &'a ExternalSort,
        runs: &'a [Run],
        lower: Option<Key>,
        upper: Option<Key>,
    ) -> Result<Self> {
        let mut held = sort.pool.reserve("sort merge");
        let mut cursors = Vec::with_capacity(runs.len());
        for run in runs {
            // Start at the last batch whose first key is below `lower`: rows equal to
            // it may end the batch before.
            let first = match lower {
                Some(l) if !run.fences.is_empty() => {
                    run.fences.partition_point(|k| *k < l).saturating_sub(1)
                }
                _ => 0,
            };
            let source: Source<'a> = match &run.data {
                RunData::Memory(slices) => Box::new(slices.iter().skip(first).cloned().map(Ok)),
                RunData::Spilled(files) => {
                    let mut readers = Vec::with_capacity(files.len());
                    for (n, file) in files.iter().enumerate() {
                        // Fences exist only for single-file runs.
                        let start = if n == 0 { first } else { 0 };
                        readers.push(sort.store.batch_reader_from(file, start)?);
                    }
                    Box::new(readers.into_iter().flatten())
                }
            };
            if let Some(c) = Cursor::new(source, sort, lower, upper)? {
                // Bounded by construction (one batch a run, fan-in chosen to fit), and
                // counted so that the pool sees it.
                held.grow(batch_memory(&c.batch) + c.key_bytes());
                cursors.push(c);
            }
        }
        // The output batch being gathered: its picks and, at most, one batch of rows
        // as wide as the widest input batch.
        let widest = cursors
            .iter()
            .map(|c| batch_memory(&c.batch) / c.batch.num_rows().max(1) as u64)
            .max()
            .unwrap_or(0);
        held.grow(sort.batch_rows as u64 * (widest + super::MERGE_BYTES_PER_ROW));
        let mut heap: Vec<usize> = (0..cursors.len()).collect();
        for i in (0..heap.len() / 2).rev() {
            sift_down(&mut heap, i, &cursors);
        }
        Ok(MergeStream {
            sort,
            cursors,
            heap,
            _held: held,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.heap.is_empty() {
            return Ok(None);
        }
        // Output rows are gathered as (batch slot, row) pairs over the batches the
        // cursors held while they were taken, then interleaved in one pass.
        let mut slots: Vec<RecordBatch> = Vec::new();
        let mut slot_of: Vec<usize> = vec![usize::MAX; self.cursors.len()];
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(self.sort.batch_rows);
        while let Some(&top) = self.heap.first() {
            if slot_of[top] == usize::MAX {
                slot_of[top] = slots.len();
                slots.push(self.cursors[top].batch.clone());
            }
            picks.push((slot_of[top], self.cursors[top].pos));
            let more = self.cursors[top].advance(self.sort)?;
            if self.cursors[top].fresh {
                slot_of[top] = usize::MAX;
                self.cursors[top].fresh = false;
            }
            if !more {
                let last = self.heap.len() - 1;
                self.heap.swap(0, last);
                self.heap.pop();
            }
            if !self.heap.is_empty() {
                sift_down(&mut self.heap, 0, &self.cursors);
            }
            if picks.len() == self.sort.batch_rows {
                break;
            }
        }
        let refs: Vec<&RecordBatch> = slots.iter().collect();
        Ok(Some(interleave_record_batch(&refs, &picks)?))
    }
}

impl Iterator for MergeStream<'_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// Whether cursor `a`'s row goes before cursor `b`'s; ties go to the earlier run,
/// which keeps the sort stable.
fn less(cursors: &[Cursor<'_>], a: usize, b: usize) -> bool {
    match cursors[a]
        .rows
        .cmp_at(cursors[a].pos, &cursors[b].rows, cursors[b].pos)
    {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => a < b,
    }
}

fn sift_down(heap: &mut [usize], mut i: usize, cursors: &[Cursor<'_>]) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut best = i;
        if l < heap.len() && less(cursors, heap[l], heap[best]) {
            best = l;
        }
        if r < heap.len() && less(cursors, heap[r], heap[best]) {
            best = r;
        }
        if best == i {
            return;
        }
        heap.swap(i, best);
        i = best;
    }
}

/// A position in one run: its current batch, that batch's keys, the row, and the
/// key the run's part of the merge stops at.
struct Cursor<'a> {
    source: Source<'a>,
    batch: RecordBatch,
    rows: BatchKeys,
    pos: usize,
    upper: Option<Key>,
    /// Set when `advance` moved to a new batch.
    fresh: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first row at or above `lower`, or `None` when the run has no
    /// row in `[lower, upper)`.
    fn new(
        mut source: Source<'a>,
        sort: &ExternalSort,
        lower: Option<Key>,
        upper: Option<Key>,
    ) -> Result<Option<Self>> {
        loop {
            let Some(batch) = source.next() else {
                return Ok(None);
            };
            let batch = batch?;
            let rows = sort.key_rows(&batch)?;
            let pos = match lower {
                Some(l) => {
                    (0..batch.num_rows()).find(|&i| rows.fixed_at(i).is_some_and(|k| k >= l))
                }
                None => (batch.num_rows() > 0).then_some(0),
            };
            if let Some(pos) = pos {
                let cursor = Cursor {
                    source,
                    batch,
                    rows,
                    pos,
                    upper,
                    fresh: false,
                };
                return Ok(cursor.in_range().then_some(cursor));
            }
        }
    }

    /// Bytes the keys of the current batch take.
    fn key_bytes(&self) -> u64 {
        match &self.rows {
            BatchKeys::Fixed(keys) => (keys.len() * std::mem::size_of::<Key>()) as u64,
            BatchKeys::Rows(rows) => rows.size() as u64,
        }
    }

    fn in_range(&self) -> bool {
        match (self.upper, self.rows.fixed_at(self.pos)) {
            (Some(u), Some(k)) => k < u,
            _ => true,
        }
    }

    /// Moves to the next row; false when the run (or its part) is exhausted.
    fn advance(&mut self, sort: &ExternalSort) -> Result<bool> {
        self.pos += 1;
        while self.pos >= self.batch.num_rows() {
            let Some(batch) = self.source.next() else {
                return Ok(false);
            };
            let batch = batch?;
            self.rows = sort.key_rows(&batch)?;
            self.batch = batch;
            self.pos = 0;
            self.fresh = true;
        }
        Ok(self.in_range())
    }
}
