//! The k-way merge of sorted runs, as an iterator of merged batches, optionally
//! restricted to a key range so that several ranges merge in parallel.

use std::cmp::Ordering;

use arrow::compute::interleave_record_batch;
use arrow::record_batch::RecordBatch;

use super::keys::{BatchKeys, Bound, KeyBytes};
use super::{ExternalSort, Run, RunData};
use crate::error::Result;
use crate::memory::{batch_memory, Reservation};

/// Keys from `lower` (inclusive) to `upper` (exclusive); `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyRange {
    /// Smallest key in the range.
    pub lower: Option<KeyBytes>,
    /// First key past the range.
    pub upper: Option<KeyBytes>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            lower: None,
            upper: None,
        }
    }
}

/// Batches of one run, in order.
pub(super) type Source<'a> = Box<dyn Iterator<Item = Result<RecordBatch>> + Send + 'a>;

/// Merged batches of a set of runs, in key order (ties: earlier run first).
///
/// What it holds is reserved before it is allocated, from the runs' widest batches
/// (`ExternalSort::merge_cost`): per run, its current batch and keys, and the
/// output, which is at most the batches its rows come from.
pub struct MergeStream<'a> {
    sort: &'a ExternalSort<'a>,
    cursors: Vec<Cursor<'a>>,
    heap: Vec<usize>,
    held: Reservation,
    /// Per cursor, the bytes its batch and keys may take within `held`: the run's
    /// widest batch, or more once a wider one was met (and reserved).
    room: Vec<u64>,
    /// Bytes the keys of the last output batch take once encoded again.
    last_key_bytes: u64,
    /// The heap's first cursor has to move on before the next output.
    deferred: bool,
}

impl<'a> MergeStream<'a> {
    /// # Errors
    /// [`Error::MemoryLimit`](crate::error::Error::MemoryLimit) when the pool has no
    /// room for the merge (`ExternalSort::merge_cost`), before anything is read;
    /// read errors of the runs.
    pub(super) fn new(
        sort: &'a ExternalSort<'a>,
        runs: &'a [Run],
        range: &KeyRange,
    ) -> Result<Self> {
        let lower = range.lower.as_ref().map(|k| Bound::new(k, &sort.keys));
        let upper = range.upper.as_ref().map(|k| Bound::new(k, &sort.keys));
        let mut held = sort.pool.reserve("sort merge");
        sort.grow(&mut held, sort.merge_cost(runs))?;
        let mut cursors = Vec::with_capacity(runs.len());
        let mut room = Vec::with_capacity(runs.len());
        for run in runs {
            // Start at the last batch whose first key is below `lower`: rows equal to
            // it may end the batch before.
            let first = match &range.lower {
                Some(l) if !run.fences.is_empty() => {
                    run.fences.partition_point(|k| k < l).saturating_sub(1) * run.fence_stride
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
                RunData::Opened(open) => open(first)?,
            };
            if let Some(c) = Cursor::new(source, sort, lower.as_ref(), upper.clone())? {
                let mut r = run.max_batch;
                fit(sort, &mut held, &mut r, &c)?;
                cursors.push(c);
                room.push(r);
            }
        }
        let mut heap: Vec<usize> = (0..cursors.len()).collect();
        for i in (0..heap.len() / 2).rev() {
            sift_down(&mut heap, i, &cursors);
        }
        Ok(MergeStream {
            sort,
            cursors,
            heap,
            held,
            room,
            last_key_bytes: 0,
            deferred: false,
        })
    }

    /// The next merged batch and the bytes its keys take encoded again (what a run
    /// made of it holds per batch beside the data).
    pub(super) fn next_with_key_bytes(&mut self) -> Result<Option<(RecordBatch, u64)>> {
        Ok(self.next_batch()?.map(|b| (b, self.last_key_bytes)))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.deferred {
            // The top cursor's batch ended the last output: it moves on now that the
            // output no longer points into that batch.
            self.deferred = false;
            let top = self.heap[0];
            self.step(top)?;
        }
        if self.heap.is_empty() {
            return Ok(None);
        }
        // Output rows are gathered as (batch slot, row) pairs over the cursors'
        // batches, then interleaved in one pass. A cursor never leaves its batch
        // within one output: the output ends there instead, so the merge holds one
        // batch a run.
        let mut slots: Vec<RecordBatch> = Vec::new();
        let mut slot_of: Vec<usize> = vec![usize::MAX; self.cursors.len()];
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(self.sort.batch_rows);
        let mut key_bytes = 0u64;
        while let Some(&top) = self.heap.first() {
            if slot_of[top] == usize::MAX {
                slot_of[top] = slots.len();
                slots.push(self.cursors[top].batch.clone());
            }
            let cursor = &self.cursors[top];
            picks.push((slot_of[top], cursor.pos));
            key_bytes += cursor.rows.row_size(cursor.pos);
            if cursor.pos + 1 >= cursor.batch.num_rows() {
                self.deferred = true;
                break;
            }
            self.step(top)?;
            if picks.len() == self.sort.batch_rows {
                break;
            }
        }
        self.last_key_bytes = key_bytes + 8 + std::mem::size_of::<arrow::row::Rows>() as u64;
        let refs: Vec<&RecordBatch> = slots.iter().collect();
        Ok(Some(interleave_record_batch(&refs, &picks)?))
    }

    /// Moves cursor `top` (the heap's first) to its next row and restores the heap.
    fn step(&mut self, top: usize) -> Result<()> {
        let more = self.cursors[top].advance(self.sort)?;
        if self.cursors[top].fresh {
            self.cursors[top].fresh = false;
            // A batch wider than the run's widest one on record (not expected: the
            // widest is measured when the run is written) is reserved, or the merge
            // stops here.
            fit(
                self.sort,
                &mut self.held,
                &mut self.room[top],
                &self.cursors[top],
            )?;
        }
        if !more {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        if !self.heap.is_empty() {
            sift_down(&mut self.heap, 0, &self.cursors);
        }
        Ok(())
    }
}

impl Iterator for MergeStream<'_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// Makes sure `held` covers cursor `c`'s batch and keys: `room` is what is reserved
/// for them, grown (checked against the limit) when they take more.
fn fit(
    sort: &ExternalSort<'_>,
    held: &mut Reservation,
    room: &mut u64,
    c: &Cursor<'_>,
) -> Result<()> {
    let size = batch_memory(&c.batch) + c.rows.size();
    if size > *room {
        // Twice: the batch and its share of the output (see
        // ExternalSort::merge_cost).
        sort.grow(held, 2 * (size - *room))?;
        *room = size;
    }
    Ok(())
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
    upper: Option<Bound>,
    /// Set when `advance` moved to a new batch.
    fresh: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first row at or above `lower`, or `None` when the run has no
    /// row in `[lower, upper)`.
    fn new(
        mut source: Source<'a>,
        sort: &ExternalSort<'_>,
        lower: Option<&Bound>,
        upper: Option<Bound>,
    ) -> Result<Option<Self>> {
        loop {
            let Some(batch) = source.next() else {
                return Ok(None);
            };
            let batch = batch?;
            let rows = sort.key_rows(&batch)?;
            // The batch is sorted: the first row at or above `lower` is found by
            // bisection.
            let pos = match lower {
                Some(l) => {
                    let (mut lo, mut hi) = (0, batch.num_rows());
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2;
                        if rows.cmp_bound(mid, l) == Ordering::Less {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    (lo < batch.num_rows()).then_some(lo)
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

    fn in_range(&self) -> bool {
        match &self.upper {
            Some(u) => self.rows.cmp_bound(self.pos, u) == Ordering::Less,
            None => true,
        }
    }

    /// Moves to the next row; false when the run (or its part) is exhausted.
    fn advance(&mut self, sort: &ExternalSort<'_>) -> Result<bool> {
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
