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

use arrow::array::ArrayRef;
use arrow::compute::{interleave_record_batch, SortOptions};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

mod keys;
mod merge;
pub use self::keys::Key;
use self::keys::{BatchKeys, KeyEncoder};
pub use self::merge::{KeyRange, MergeStream};

use crate::error::{Error, Result};
use crate::memory::{MemoryPool, SpillFile, SpillStore};

/// Rows per batch written to a run and per merged output batch, unless the input's
/// batches are smaller: small enough that a merge of hundreds of runs holds little,
/// large enough to amortize per-batch work.
const RUN_BATCH_ROWS: usize = 8192;

/// Bytes a row costs while a run is sorted, beyond its data and its sorted copy: its
/// fixed-width key (16), its place in the sort order (24) and, once the keys are
/// dropped, its pick for the gather (16) beside the order. Row-format keys cost their
/// encoded width instead of the 16, reserved apart.
const SORT_BYTES_PER_ROW: u64 = 40;

/// Bytes a row costs while merged, beyond its batch: its fixed-width key, and its
/// pick for the output gather.
const MERGE_BYTES_PER_ROW: u64 = 32;

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

/// A sorted run: in memory when the whole input fit, else in the spill store (as
/// one or more files read one after another).
pub struct Run {
    data: RunData,
    rows: usize,
    bytes: u64,
    /// The key of the first row of each batch (one fixed-width key column only),
    /// to split a merge into key ranges and to seek into a run.
    fences: Vec<Key>,
    /// What an in-memory run holds of the pool.
    _held: Option<crate::memory::Reservation>,
}

enum RunData {
    Memory(Vec<RecordBatch>),
    Spilled(Vec<SpillFile>),
}

impl Run {
    fn spilled(files: Vec<SpillFile>, rows: usize, bytes: u64, fences: Vec<Key>) -> Self {
        Run {
            data: RunData::Spilled(files),
            rows,
            bytes,
            fences,
            _held: None,
        }
    }
}

/// Sorts batches of one schema by keys, spilling sorted runs.
pub struct ExternalSort {
    schema: SchemaRef,
    columns: Vec<usize>,
    keys: KeyEncoder,
    pool: MemoryPool,
    store: SpillStore,
    run_bytes: u64,
    batch_rows: usize,
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
        let types: Vec<DataType> = columns
            .iter()
            .map(|&i| schema.field(i).data_type().clone())
            .collect();
        let descending = keys.first().is_some_and(|k| k.descending);
        let keys = KeyEncoder::new(&types, descending, RowConverter::new(fields)?);
        Ok(ExternalSort {
            schema,
            columns,
            keys,
            pool,
            store,
            run_bytes: run_bytes.max(1),
            batch_rows: RUN_BATCH_ROWS,
        })
    }

    /// The schema of the rows sorted.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Writes runs and merged output in batches of at most `rows` rows (the input's
    /// batch size, when memory is tight).
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.clamp(1, RUN_BATCH_ROWS);
        self
    }

    fn key_rows(&self, batch: &RecordBatch) -> Result<BatchKeys> {
        let cols: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        self.keys.encode(&cols)
    }

    /// Sorts `batches` (stable) into one batch, gathering rows straight from the
    /// input batches (no concatenated copy: the input plus the output at most).
    fn sort_batches(&self, batches: &[RecordBatch]) -> Result<RecordBatch> {
        if batches.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let rows: Vec<BatchKeys> = batches
            .iter()
            .map(|b| self.key_rows(b))
            .collect::<Result<_>>()?;
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        if let Some(fixed) = rows
            .iter()
            .map(|r| match r {
                BatchKeys::Fixed(keys) => Some(keys),
                BatchKeys::Rows(_) => None,
            })
            .collect::<Option<Vec<_>>>()
        {
            // One fixed-width key: sort the keys themselves beside their positions,
            // which is several times faster than comparing through the batches.
            let mut order: Vec<(Key, u32, u32)> = fixed
                .iter()
                .enumerate()
                .flat_map(|(b, keys)| {
                    keys.iter()
                        .enumerate()
                        .map(move |(r, k)| (*k, b as u32, r as u32))
                })
                .collect();
            // The keys are in `order` now: free them before the gather's picks are
            // made, so that at most two of the three per-row vectors live at once
            // (what SORT_BYTES_PER_ROW reserves).
            drop(rows);
            order.sort_unstable();
            let picks: Vec<(usize, usize)> = order
                .into_iter()
                .map(|(_, b, r)| (b as usize, r as usize))
                .collect();
            return Ok(interleave_record_batch(&refs, &picks)?);
        }
        let mut order: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(i, b)| (0..b.num_rows()).map(move |r| (i, r)))
            .collect();
        // Ties are broken by input position, so the sort is stable even unstably
        // sorted (which is faster).
        order.sort_unstable_by(|a, b| rows[a.0].cmp_at(a.1, &rows[b.0], b.1).then(a.cmp(b)));
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
        // Room for the next batch the reader decodes, reserved before it is read: the
        // reader allocates it without asking the pool. The size of the batch before
        // is the estimate (the reader's batches are bounded by construction, a few MB
        // at most whatever the rows).
        let mut ahead = self.pool.reserve("sort read-ahead");
        for batch in batches {
            let batch = batch?;
            let need = self.sort_bytes(&batch);
            let full = held.size() + 2 * need > self.run_bytes;
            if !buffer.is_empty() && (full || held.try_grow(2 * need).is_err()) {
                runs.push(self.spill_sorted(std::mem::take(&mut buffer))?);
                held.resize(0);
                held.grow(need);
            } else if buffer.is_empty() {
                held.grow(need);
            } else {
                // try_grow above took this batch and the next one's room together.
                held.shrink(need);
            }
            // The batch is in `held` now; reserve the next one's room (its data and
            // its share of the per-row cost). A refusal only means the run spills
            // sooner.
            ahead.resize(0);
            let _ = ahead.try_grow(need / 2);
            buffer.push(batch);
        }
        drop(ahead);
        if !buffer.is_empty() {
            if keep_in_memory && runs.is_empty() {
                let sorted = self.sort_batches(&buffer)?;
                let (rows, bytes) = (sorted.num_rows(), sorted.get_array_memory_size() as u64);
                let fences = self.fences(&sorted)?;
                runs.push(Run {
                    data: RunData::Memory(self.slices(&sorted)),
                    rows,
                    bytes,
                    fences,
                    _held: Some(held),
                });
                return Ok(runs);
            } else {
                runs.push(self.spill_sorted(buffer)?);
            }
        }
        Ok(runs)
    }

    /// What sorting `batch` with others holds: the batch, its sorted copy, and the
    /// sort's per-row working set (keys, order, picks).
    fn sort_bytes(&self, batch: &RecordBatch) -> u64 {
        let data = batch.get_array_memory_size() as u64;
        let keys = match self.keys {
            KeyEncoder::Fixed { .. } => 0,
            // Row-format keys take about the key columns' width, and a length each.
            KeyEncoder::Rows(_) => self
                .columns
                .iter()
                .map(|&i| {
                    batch.column(i).get_array_memory_size() as u64 + 8 * batch.num_rows() as u64
                })
                .sum(),
        };
        2 * data + keys + SORT_BYTES_PER_ROW * batch.num_rows() as u64
    }

    fn spill_sorted(&self, buffer: Vec<RecordBatch>) -> Result<Run> {
        let sorted = self.sort_batches(&buffer)?;
        drop(buffer);
        let rows = sorted.num_rows();
        let pieces = self.slices(&sorted);
        let fences = self.fences(&sorted)?;
        let file = self.store.write_batches(&self.schema, &pieces)?;
        let bytes = file.uncompressed_bytes();
        Ok(Run::spilled(vec![file], rows, bytes, fences))
    }

    /// The first key of each `batch_rows` slice of a sorted batch (fixed keys only).
    fn fences(&self, sorted: &RecordBatch) -> Result<Vec<Key>> {
        match self.key_rows(sorted)? {
            BatchKeys::Fixed(keys) => Ok(keys.iter().step_by(self.batch_rows).copied().collect()),
            BatchKeys::Rows(_) => Ok(Vec::new()),
        }
    }

    fn slices(&self, batch: &RecordBatch) -> Vec<RecordBatch> {
        (0..batch.num_rows())
            .step_by(self.batch_rows)
            .map(|start| batch.slice(start, self.batch_rows.min(batch.num_rows() - start)))
            .collect()
    }

    /// How many runs one merge may read at once: each holds one decoded batch, and
    /// the output batch being built holds as much again. The batch size is measured
    /// on a spilled run's first batch, since decoded buffers are padded and aligned
    /// beyond the bytes that were spilled.
    fn fan_in(&self, runs: &[Run]) -> Result<usize> {
        let mut batch_bytes = 1u64;
        if let Some(Run {
            data: RunData::Spilled(files),
            ..
        }) = runs.first()
        {
            if let Some(file) = files.first() {
                if let Some(batch) = self.store.batch_reader(file)?.next() {
                    batch_bytes = crate::memory::batch_memory(&batch?);
                }
            }
        }
        let (rows, bytes) = runs
            .iter()
            .fold((0usize, 0u64), |(r, b), run| (r + run.rows, b + run.bytes));
        let estimated = (bytes / rows.max(1) as u64).max(1) * self.batch_rows as u64;
        let per_run = batch_bytes.max(estimated);
        Ok(((self.run_bytes / (2 * per_run)) as usize).max(2))
    }

    /// Bytes one merge of `runs` holds: one batch per run.
    ///
    /// # Errors
    /// Read errors of the first spilled run (its first batch is measured).
    pub fn merge_bytes(&self, runs: &[Run]) -> Result<u64> {
        let fan_in = self.fan_in(runs)? as u64;
        // fan_in = run_bytes / (2 * per_run), so per_run is recovered from it.
        let per_run = self.run_bytes / (2 * fan_in.max(1));
        Ok(per_run * runs.len() as u64)
    }

    /// Merges `runs` (in input order) and hands the sorted output to `emit` in
    /// batches. When there are more runs than fit in memory at once, consecutive
    /// groups are merged into longer spilled runs first (which keeps the sort stable).
    ///
    /// # Errors
    /// Read errors of spilled runs; `emit`'s errors.
    pub fn merge(
        &self,
        mut runs: Vec<Run>,
        emit: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let fan_in = self.fan_in(&runs)?;
        while runs.len() > fan_in {
            let mut merged = Vec::with_capacity(runs.len().div_ceil(fan_in));
            let mut rest = runs.into_iter().peekable();
            while rest.peek().is_some() {
                let group: Vec<Run> = rest.by_ref().take(fan_in).collect();
                merged.push(self.merge_to_spill(group)?);
            }
            runs = merged;
        }
        self.merge_pass(runs, emit)
    }

    /// Merges a group of runs into one spilled run, written as several files of at
    /// most a quarter of the run budget each so no file is held whole in memory.
    fn merge_to_spill(&self, group: Vec<Run>) -> Result<Run> {
        let (rows, bytes) = group
            .iter()
            .fold((0usize, 0u64), |(r, b), run| (r + run.rows, b + run.bytes));
        let mut files = Vec::new();
        let mut pending: Vec<RecordBatch> = Vec::new();
        // What waits to be written is on the pool: merged batches are new memory.
        let mut held = self.pool.reserve("sort merge output");
        let limit = (self.run_bytes / 4).max(1);
        self.merge_pass(group, |batch| {
            held.grow(batch.get_array_memory_size() as u64);
            pending.push(batch);
            if held.size() >= limit {
                files.push(
                    self.store
                        .write_batches(&self.schema, &std::mem::take(&mut pending))?,
                );
                held.resize(0);
            }
            Ok(())
        })?;
        if !pending.is_empty() {
            files.push(self.store.write_batches(&self.schema, &pending)?);
        }
        Ok(Run::spilled(files, rows, bytes, Vec::new()))
    }

    /// One k-way merge of `runs` into `emit`.
    fn merge_pass(
        &self,
        runs: Vec<Run>,
        mut emit: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        for batch in MergeStream::new(self, &runs, None, None)? {
            emit(batch?)?;
        }
        Ok(())
    }

    /// Key ranges that split the merge of `runs` into `parts` independent merges of
    /// about equal size, cut at keys sampled from the runs' batch boundaries. One
    /// unbounded range when the runs carry no samples (keys other than one
    /// fixed-width column) or when they are too many to hold open per range.
    pub fn split(&self, runs: &[Run], parts: usize) -> Result<Vec<KeyRange>> {
        let whole = vec![KeyRange {
            lower: None,
            upper: None,
        }];
        if parts < 2
            || runs.len() > self.fan_in(runs)?
            || runs.iter().any(|r| r.rows > 0 && r.fences.is_empty())
        {
            return Ok(whole);
        }
        let mut fences: Vec<Key> = runs.iter().flat_map(|r| r.fences.iter().copied()).collect();
        if fences.is_empty() {
            return Ok(whole);
        }
        fences.sort_unstable();
        let mut splitters: Vec<Key> = (1..parts)
            .map(|p| fences[p * fences.len() / parts])
            .collect();
        splitters.dedup();
        if splitters.is_empty() {
            return Ok(whole);
        }
        let mut ranges = Vec::with_capacity(splitters.len() + 1);
        let mut lower = None;
        for s in splitters {
            ranges.push(KeyRange {
                lower,
                upper: Some(s),
            });
            lower = Some(s);
        }
        ranges.push(KeyRange { lower, upper: None });
        Ok(ranges)
    }

    /// The merged rows of `runs` whose keys fall in `range`, in batches.
    ///
    /// # Errors
    /// Read errors of spilled runs.
    pub fn merge_range<'a>(&'a self, runs: &'a [Run], range: &KeyRange) -> Result<MergeStream<'a>> {
        MergeStream::new(self, runs, range.lower, range.upper)
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
        .unwrap()
        // Budgeted sorts also use tiny batches, so runs span many of them.
        .with_batch_rows(if limit < 1 << 40 { 64 } else { 8192 });
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
        let push = |out: &mut Vec<(Option<i64>, usize)>, b: &RecordBatch| {
            let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let v = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    k.is_valid(i).then(|| k.value(i)),
                    v.value(i).parse::<usize>().unwrap(),
                ));
            }
        };
        // Split into key ranges merged one by one: concatenated, they must give
        // exactly the single merge.
        let mut by_ranges = Vec::new();
        for range in sorter.split(&runs, 3).unwrap() {
            for b in sorter.merge_range(&runs, &range).unwrap() {
                push(&mut by_ranges, &b.unwrap());
            }
        }
        let mut out = Vec::new();
        sorter
            .merge(runs, |b| {
                push(&mut out, &b);
                Ok(())
            })
            .unwrap();
        assert_eq!(by_ranges, out, "key-range merges differ from one merge");
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
            prop_assert!(peak <= 50_000, "peak {}", peak);
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
