//! External merge sort of record batches.
//!
//! Run generation: each partition's batches are gathered while the memory pool has
//! room (and up to a per-run cap), sorted, and written to the spill store as a
//! sorted run. Merge: the runs are read back through memory maps one batch at a time
//! and merged k ways into output batches, so memory holds one batch per run. When
//! everything fits in one run, nothing touches the disk.
//!
//! Keys are compared as Arrow row-format bytes, so any number of key columns of any
//! type compare with one `memcmp`. The sort is stable: ties keep input order (runs
//! are numbered in input order and ties between runs go to the earlier one). Nulls
//! sort last, ascending or descending, as DuckDB does.

use std::cmp::Ordering;

use arrow::array::ArrayRef;
use arrow::compute::{interleave_record_batch, SortOptions};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::{Error, Result};
use crate::memory::{MemoryPool, SpillBatchReader, SpillFile, SpillStore};

/// Rows per batch written to a run and per merged output batch: small enough that
/// a merge of hundreds of runs holds little, large enough to amortize per-batch work.
const RUN_BATCH_ROWS: usize = 8192;

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// Column name.
    pub column: String,
    /// Largest first.
    pub descending: bool,
}

/// Parses `col[:desc][,col2[:asc]...]`.
///
/// # Errors
/// [`Error::Usage`] for an empty key or an unknown direction.
pub fn parse_sort_keys(text: &str) -> Result<Vec<SortKey>> {
    text.split(',')
        .map(|part| {
            let (column, dir) = match part.rsplit_once(':') {
                Some((c, d)) => (c.trim(), Some(d.trim().to_ascii_lowercase())),
                None => (part.trim(), None),
            };
            if column.is_empty() {
                return Err(Error::Usage(format!(
                    "--sort-by {text:?}: empty column name"
                )));
            }
            let descending = match dir.as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(Error::Usage(format!(
                        "--sort-by {text:?}: direction {other:?} is not asc or desc"
                    )))
                }
            };
            Ok(SortKey {
                column: column.to_string(),
                descending,
            })
        })
        .collect()
}

/// A sorted run: in memory when the whole input fit, else in the spill store.
pub enum Run {
    /// Sorted batches held in memory.
    Memory(Vec<RecordBatch>),
    /// A spilled run.
    Spilled(SpillFile),
}

/// Sorts batches of one schema by keys, spilling sorted runs.
pub struct ExternalSort {
    schema: SchemaRef,
    columns: Vec<usize>,
    converter: RowConverter,
    pool: MemoryPool,
    store: SpillStore,
    run_bytes: u64,
}

impl ExternalSort {
    /// A sorter for `schema` by `keys`, reserving from `pool`, spilling to `store`,
    /// with runs of at most `run_bytes` of input.
    ///
    /// # Errors
    /// [`Error::NoSuchColumn`]-like usage errors for unknown key columns; types the
    /// row format cannot order.
    pub fn new(
        schema: SchemaRef,
        keys: &[SortKey],
        pool: MemoryPool,
        store: SpillStore,
        run_bytes: u64,
    ) -> Result<Self> {
        let mut columns = Vec::with_capacity(keys.len());
        let mut fields = Vec::with_capacity(keys.len());
        for key in keys {
            let index = schema.index_of(&key.column).map_err(|_| {
                Error::Usage(format!(
                    "--sort-by: no column named {:?}; the columns are {}",
                    key.column,
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            columns.push(index);
            let options = SortOptions {
                descending: key.descending,
                nulls_first: false,
            };
            fields.push(SortField::new_with_options(
                schema.field(index).data_type().clone(),
                options,
            ));
        }
        let converter = RowConverter::new(fields)?;
        Ok(ExternalSort {
            schema,
            columns,
            converter,
            pool,
            store,
            run_bytes: run_bytes.max(1),
        })
    }

    fn key_rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let cols: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        Ok(self.converter.convert_columns(&cols)?)
    }

    /// Sorts `batches` (stable) into one batch, gathering rows straight from the
    /// input batches (no concatenated copy: the input plus the output at most).
    fn sort_batches(&self, batches: &[RecordBatch]) -> Result<RecordBatch> {
        if batches.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let rows: Vec<Rows> = batches
            .iter()
            .map(|b| self.key_rows(b))
            .collect::<Result<_>>()?;
        let mut order: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(i, b)| (0..b.num_rows()).map(move |r| (i, r)))
            .collect();
        // `sort_by` is stable, and `order` starts in input order: ties keep it.
        order.sort_by(|a, b| rows[a.0].row(a.1).cmp(&rows[b.0].row(b.1)));
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        Ok(interleave_record_batch(&refs, &order)?)
    }

    /// Turns a partition's batches into sorted runs: in memory if `keep_in_memory`
    /// and it all fits one run, else spilled.
    ///
    /// # Errors
    /// Batch errors, spill errors (the quota).
    pub fn make_runs(
        &self,
        batches: impl Iterator<Item = Result<RecordBatch>>,
        keep_in_memory: bool,
    ) -> Result<Vec<Run>> {
        let mut runs = Vec::new();
        let mut buffer: Vec<RecordBatch> = Vec::new();
        let mut held = self.pool.reserve("sort run");
        for batch in batches {
            let batch = batch?;
            // Sorting needs the input and its sorted copy: reserve twice the batch.
            let need = 2 * batch.get_array_memory_size() as u64;
            if !buffer.is_empty()
                && (held.size() + need > self.run_bytes || held.try_grow(need).is_err())
            {
                runs.push(Run::Spilled(
                    self.spill_sorted(std::mem::take(&mut buffer))?,
                ));
                held.resize(0);
                held.grow(need);
            } else if buffer.is_empty() {
                held.grow(need);
            }
            buffer.push(batch);
        }
        if !buffer.is_empty() {
            if keep_in_memory && runs.is_empty() {
                let sorted = self.sort_batches(&buffer)?;
                runs.push(Run::Memory(vec![sorted]));
            } else {
                runs.push(Run::Spilled(self.spill_sorted(buffer)?));
            }
        }
        Ok(runs)
    }

    fn spill_sorted(&self, buffer: Vec<RecordBatch>) -> Result<SpillFile> {
        let sorted = self.sort_batches(&buffer)?;
        drop(buffer);
        let pieces: Vec<RecordBatch> = (0..sorted.num_rows())
            .step_by(RUN_BATCH_ROWS)
            .map(|start| sorted.slice(start, RUN_BATCH_ROWS.min(sorted.num_rows() - start)))
            .collect();
        self.store.write_batches(&self.schema, &pieces)
    }

    /// Merges `runs` (in input order) and hands the sorted output to `emit` in
    /// batches of up to 8192 rows.
    ///
    /// # Errors
    /// Read errors of spilled runs; `emit`'s errors.
    pub fn merge(
        &self,
        runs: Vec<Run>,
        mut emit: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let mut cursors = Vec::with_capacity(runs.len());
        for run in &runs {
            let source: Box<dyn Iterator<Item = Result<RecordBatch>>> = match run {
                Run::Memory(batches) => {
                    let pieces: Vec<RecordBatch> = batches
                        .iter()
                        .flat_map(|b| {
                            (0..b.num_rows())
                                .step_by(RUN_BATCH_ROWS)
                                .map(move |s| b.slice(s, RUN_BATCH_ROWS.min(b.num_rows() - s)))
                        })
                        .collect();
                    Box::new(pieces.into_iter().map(Ok))
                }
                Run::Spilled(file) => Box::new(SpilledRun(self.store.batch_reader(file)?)),
            };
            if let Some(c) = Cursor::new(source, self)? {
                cursors.push(c);
            }
        }
        // A binary heap of cursor indices, ordered by their current row; ties go to
        // the earlier run, which keeps the sort stable.
        let less = |cursors: &[Cursor], a: usize, b: usize| -> bool {
            match cursors[a].current().cmp(&cursors[b].current()) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => a < b,
            }
        };
        let mut heap: Vec<usize> = (0..cursors.len()).collect();
        for i in (0..heap.len() / 2).rev() {
            sift_down(&mut heap, i, &cursors, &less);
        }
        // Output rows are gathered as (batch slot, row) pairs over the batches the
        // cursors held while they were taken, then interleaved in one pass.
        let mut slots: Vec<RecordBatch> = Vec::new();
        let mut slot_of: Vec<usize> = vec![usize::MAX; cursors.len()];
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(RUN_BATCH_ROWS);
        while let Some(&top) = heap.first() {
            if slot_of[top] == usize::MAX {
                slot_of[top] = slots.len();
                slots.push(cursors[top].batch.clone());
            }
            picks.push((slot_of[top], cursors[top].pos));
            let more = cursors[top].advance(self)?;
            if cursors[top].fresh {
                slot_of[top] = usize::MAX;
                cursors[top].fresh = false;
            }
            if !more {
                let last = heap.len() - 1;
                heap.swap(0, last);
                heap.pop();
            }
            if !heap.is_empty() {
                sift_down(&mut heap, 0, &cursors, &less);
            }
            if picks.len() == RUN_BATCH_ROWS || heap.is_empty() {
                let refs: Vec<&RecordBatch> = slots.iter().collect();
                emit(interleave_record_batch(&refs, &picks)?)?;
                picks.clear();
                slots.clear();
                slot_of.iter_mut().for_each(|s| *s = usize::MAX);
            }
        }
        Ok(())
    }
}

fn sift_down(
    heap: &mut [usize],
    mut i: usize,
    cursors: &[Cursor],
    less: &impl Fn(&[Cursor], usize, usize) -> bool,
) {
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

/// A spilled run's batches, with the store's errors.
struct SpilledRun(SpillBatchReader);

impl Iterator for SpilledRun {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// A position in one run: its current batch, that batch's key rows, the row.
struct Cursor {
    source: Box<dyn Iterator<Item = Result<RecordBatch>>>,
    batch: RecordBatch,
    rows: Rows,
    pos: usize,
    /// Set when `advance` moved to a new batch.
    fresh: bool,
}

impl Cursor {
    fn new(
        mut source: Box<dyn Iterator<Item = Result<RecordBatch>>>,
        sort: &ExternalSort,
    ) -> Result<Option<Self>> {
        loop {
            match source.next() {
                None => return Ok(None),
                Some(batch) => {
                    let batch = batch?;
                    if batch.num_rows() > 0 {
                        let rows = sort.key_rows(&batch)?;
                        return Ok(Some(Cursor {
                            source,
                            batch,
                            rows,
                            pos: 0,
                            fresh: false,
                        }));
                    }
                }
            }
        }
    }

    fn current(&self) -> arrow::row::Row<'_> {
        self.rows.row(self.pos)
    }

    /// Moves to the next row; false when the run is exhausted.
    fn advance(&mut self, sort: &ExternalSort) -> Result<bool> {
        self.pos += 1;
        if self.pos < self.batch.num_rows() {
            return Ok(true);
        }
        loop {
            match self.source.next() {
                None => return Ok(false),
                Some(batch) => {
                    let batch = batch?;
                    if batch.num_rows() > 0 {
                        self.rows = sort.key_rows(&batch)?;
                        self.batch = batch;
                        self.pos = 0;
                        self.fresh = true;
                        return Ok(true);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{DiskManager, SpillCompression};
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, false),
        ]))
    }

    fn batches(keys: &[Option<i64>], per_batch: usize) -> Vec<RecordBatch> {
        keys.chunks(per_batch.max(1))
            .enumerate()
            .map(|(b, chunk)| {
                let k = Int64Array::from(chunk.to_vec());
                let v = StringArray::from(
                    (0..chunk.len())
                        .map(|i| format!("{}", b * per_batch + i))
                        .collect::<Vec<_>>(),
                );
                RecordBatch::try_new(schema(), vec![Arc::new(k), Arc::new(v)]).unwrap()
            })
            .collect()
    }

    /// Sorts with a pool of `limit` bytes; returns (key, original position) pairs.
    fn sort(
        keys: &[Option<i64>],
        desc: bool,
        limit: u64,
        run_bytes: u64,
    ) -> (Vec<(Option<i64>, usize)>, u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = SpillStore::new(
            DiskManager::new(dir.path(), None).unwrap(),
            SpillCompression::Zstd(1),
        );
        let pool = MemoryPool::new(limit);
        let sorter = ExternalSort::new(
            schema(),
            &[SortKey {
                column: "k".into(),
                descending: desc,
            }],
            pool.clone(),
            store.clone(),
            run_bytes,
        )
        .unwrap();
        let mut runs = Vec::new();
        // Two partitions, in order.
        let half = keys.len() / 2;
        for part in [&keys[..half], &keys[half..]] {
            runs.extend(
                sorter
                    .make_runs(batches(part, 7).into_iter().map(Ok), false)
                    .unwrap(),
            );
        }
        let mut out = Vec::new();
        sorter
            .merge(runs, |b| {
                let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                let v = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
                for i in 0..b.num_rows() {
                    out.push((
                        k.is_valid(i).then(|| k.value(i)),
                        v.value(i).parse::<usize>().unwrap(),
                    ));
                }
                Ok(())
            })
            .unwrap();
        (out, store.spilled_bytes(), pool.peak_reserved())
    }

    fn reference(keys: &[Option<i64>], desc: bool) -> Vec<(Option<i64>, usize)> {
        // Positions restart per partition in `batches`; rebuild them the same way.
        let half = keys.len() / 2;
        let mut all: Vec<(Option<i64>, usize)> = keys[..half]
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i))
            .chain(keys[half..].iter().enumerate().map(|(i, &k)| (k, i)))
            .collect();
        let rank = |k: &Option<i64>| match k {
            None => (1, 0),
            Some(v) => (0, if desc { -*v } else { *v }),
        };
        all.sort_by_key(|(k, _)| rank(k)); // stable: ties keep input order
        all
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn tiny_budgets_give_exactly_the_unbudgeted_result(
            keys in proptest::collection::vec(proptest::option::of(-20i64..20), 0..300),
            desc in any::<bool>(),
            run_bytes in 1u64..20_000,
        ) {
            let (budgeted, _, peak) = sort(&keys, desc, 50_000, run_bytes);
            let (unbudgeted, _, _) = sort(&keys, desc, u64::MAX / 4, u64::MAX / 4);
            prop_assert_eq!(&budgeted, &unbudgeted);
            prop_assert_eq!(budgeted, reference(&keys, desc));
            prop_assert!(peak <= 50_000 + 2 * 7 * 64 * 4, "peak {}", peak);
        }
    }

    #[test]
    fn small_runs_spill_and_large_budgets_do_not_need_to() {
        let keys: Vec<Option<i64>> = (0..1000).map(|i| Some((i * 7919) % 1000)).collect();
        let (out, spilled, _) = sort(&keys, false, 1 << 30, 4096);
        assert!(spilled > 0);
        assert_eq!(out.len(), 1000);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn keys_parse() {
        let k = parse_sort_keys("v3:desc, id1").unwrap();
        assert_eq!(
            k,
            vec![
                SortKey {
                    column: "v3".into(),
                    descending: true
                },
                SortKey {
                    column: "id1".into(),
                    descending: false
                }
            ]
        );
        assert!(parse_sort_keys("a:sideways").is_err());
        assert!(parse_sort_keys(",").is_err());
    }
}
