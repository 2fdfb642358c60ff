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
pub mod ops;
pub mod plan;
mod stored;
use self::keys::{BatchKeys, KeyEncoder};
pub use self::keys::{Key, KeyBytes};
pub use self::merge::{KeyRange, MergeStream};
pub use self::ops::{CutRanges, MergeRange, SortRun};
pub use self::plan::{add_sort, SortSizing};
pub use self::stored::RunInfo;

use crate::error::{Error, Result};
use crate::memory::{MemoryMonitor, MemoryPool, SpillFile, SpillStore};

/// Rows per batch written to a run and per merged output batch, unless the input's
/// batches are smaller: small enough that a merge of hundreds of runs holds little,
/// large enough to amortize per-batch work.
const RUN_BATCH_ROWS: usize = 8192;

/// Bytes a row costs while a run is sorted, beyond its data and its sorted copy: its
/// fixed-width key (16), its place in the sort order (24) and, once the keys are
/// dropped, its pick for the gather (16) beside the order. Row-format keys cost their
/// encoded width instead of the 16, reserved apart.
const SORT_BYTES_PER_ROW: u64 = 40;

/// Bytes an output row costs while merged, beyond its data: its pick, and its slot.
const MERGE_BYTES_PER_ROW: u64 = 24;

/// Runs a merge should read at once at least, when batches are sized from the budget
/// (`ExternalSort::budget_batch_rows`): fewer would take many passes.
const MIN_FAN_IN: u64 = 8;

/// Input batches a run should hold at least, when read batches are sized from the
/// budget ([`ExternalSort::read_batch_rows`]).
const MIN_RUN_BATCHES: u64 = 4;

/// Rows per batch of a run at least when batches are sized from the ranges
/// (`merge_batch_rows`): fewer would cost more per batch than they save.
const MIN_RANGE_BATCH_ROWS: u64 = 512;

/// Bytes a batch may take read back from a spill file beyond what it took written,
/// per column and per batch (measured: none; IPC pads buffers to 8 bytes).
const READ_PADDING: u64 = 8;

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// Column name.
    pub column: String,
    /// Largest first.
    #[serde(default)]
    pub descending: bool,
}

/// Parses `col[:desc][,col2[:asc]...]`.
///
/// # Errors
/// [`Error::BadSortKey`] for an empty key or an unknown direction.
pub fn parse_sort_keys(text: &str) -> Result<Vec<SortKey>> {
    text.split(',')
        .map(|part| {
            let (column, dir) = match part.rsplit_once(':') {
                Some((c, d)) => (c.trim(), Some(d.trim().to_ascii_lowercase())),
                None => (part.trim(), None),
            };
            let bad = |problem| Error::BadSortKey {
                keys: Some(text.to_string()),
                problem,
            };
            if column.is_empty() {
                return Err(bad(crate::error::SortKeyProblem::EmptyColumn));
            }
            let descending = match dir.as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(bad(crate::error::SortKeyProblem::Direction {
                        found: other.to_string(),
                    }))
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
    /// The most one of its batches takes read back, with its keys: what a merge
    /// reserves for it.
    max_batch: u64,
    /// The key of the first row of each batch, to split a merge into key ranges
    /// and to seek into a run.
    fences: Vec<KeyBytes>,
    /// Batches from one fence to the next (fences are thinned to bound their
    /// memory when a run is published).
    fence_stride: usize,
    /// What an in-memory run holds of the pool.
    _held: Option<crate::memory::Reservation>,
}

enum RunData {
    Memory(Vec<RecordBatch>),
    Spilled(Vec<SpillFile>),
    /// Read from elsewhere (a store entry's file), opened at a batch index.
    Opened(Box<dyn Fn(usize) -> Result<merge::Source<'static>> + Send + Sync>),
}

impl Run {
    fn spilled(
        files: Vec<SpillFile>,
        rows: usize,
        bytes: u64,
        max_batch: u64,
        fences: Vec<KeyBytes>,
    ) -> Self {
        Run {
            data: RunData::Spilled(files),
            rows,
            bytes,
            max_batch,
            fences,
            fence_stride: 1,
            _held: None,
        }
    }
}

/// The key columns of `keys` in `schema`, and the encoder that orders them.
///
/// # Errors
/// [`Error::BadSortKey`] for unknown key columns; types the row format cannot order.
fn key_layout(schema: &SchemaRef, keys: &[SortKey]) -> Result<(Vec<usize>, KeyEncoder)> {
    let mut columns = Vec::with_capacity(keys.len());
    let mut fields = Vec::with_capacity(keys.len());
    for key in keys {
        let index = schema
            .index_of(&key.column)
            .map_err(|_| Error::BadSortKey {
                keys: None,
                problem: crate::error::SortKeyProblem::NoSuchColumn {
                    column: key.column.clone(),
                    available: schema.fields().iter().map(|f| f.name().clone()).collect(),
                },
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
    Ok((columns, keys))
}

/// A guess, from the schema alone, of the bytes a row's data takes in Arrow and of
/// its sort key (text and binary values taken as 16 bytes): batches are sized from
/// it before any is seen; what they take is measured once they exist.
fn row_guess(schema: &SchemaRef, columns: &[usize], keys: &KeyEncoder) -> (u64, u64) {
    let width = |t: &DataType| match t {
        DataType::Boolean => 1,
        DataType::Utf8 | DataType::Binary => 4 + 16,
        t => t.primitive_width().map_or(32, |w| w as u64),
    };
    // Values and a validity bit (a byte, rounding generously).
    let data = schema
        .fields()
        .iter()
        .map(|f| width(f.data_type()) + 1)
        .sum();
    let keys = match keys {
        KeyEncoder::Fixed { .. } => std::mem::size_of::<Key>() as u64,
        // Row format: a null byte and the value (text in blocks, about twice its
        // width when short), and the row's offset.
        KeyEncoder::Rows(_) => {
            8 + columns
                .iter()
                .map(|&i| 2 * width(schema.field(i).data_type()) + 2)
                .sum::<u64>()
        }
    };
    (data, keys)
}

/// Rows per batch to read so that a run of `run_bytes` holds `MIN_RUN_BATCHES` at
/// least, each with its sorted copy, keys and order, and the next batch's room;
/// `guess` is [`row_guess`]'s.
fn read_rows((data, keys): (u64, u64), run_bytes: u64) -> usize {
    let per_row = 3 * data + keys + SORT_BYTES_PER_ROW;
    (run_bytes / (MIN_RUN_BATCHES * per_row)).clamp(1, 8 * RUN_BATCH_ROWS as u64) as usize
}

/// Rows per batch a sort of `schema` by `keys`, with runs of `run_bytes`, reads its
/// input in (what [`ExternalSort::read_batch_rows`] says, before any sorter
/// exists): what a plan puts in its source's read options.
///
/// # Errors
/// As [`ExternalSort::new`]: unknown key columns, keys the row format cannot order.
pub fn read_batch_rows(schema: &SchemaRef, keys: &[SortKey], run_bytes: u64) -> Result<usize> {
    let (columns, encoder) = key_layout(schema, keys)?;
    Ok(read_rows(
        row_guess(schema, &columns, &encoder),
        run_bytes.max(1),
    ))
}

/// Rows per batch of the runs of a sort of `schema` by `keys` (at most `rows`):
/// small enough that a merge of `runs` runs fits `merge_bytes` (it holds about two
/// batches a run, `ExternalSort::merge_cost`), and that a range merge, one of
/// `ranges` over `input_bytes` of input, reads little of the batches it starts and
/// ends in beyond its range (a quarter of what it merges of each run).
///
/// # Errors
/// As [`ExternalSort::new`].
pub fn merge_batch_rows(
    schema: &SchemaRef,
    keys: &[SortKey],
    merge_bytes: u64,
    runs: usize,
    ranges: usize,
    input_bytes: u64,
    rows: usize,
) -> Result<usize> {
    let (columns, encoder) = key_layout(schema, keys)?;
    let (data, key) = row_guess(schema, &columns, &encoder);
    let padding = READ_PADDING * (schema.fields().len() as u64 + 1);
    let per_run = merge_bytes / (2 * runs as u64 + 1);
    let fit = per_run.saturating_sub(padding) / (data + key);
    // Decoded, a table takes about twice its text (1.7 times, db-benchmark's).
    let table_rows = input_bytes.saturating_mul(2) / data.max(1);
    let in_range = table_rows / (4 * (ranges.max(1) * runs.max(1)) as u64);
    let wanted = in_range.max(MIN_RANGE_BATCH_ROWS).min(fit);
    Ok((wanted as usize).clamp(1, rows.clamp(1, RUN_BATCH_ROWS)))
}

/// The output of a merge written to spill files.
#[derive(Default)]
struct SpilledMerge {
    files: Vec<SpillFile>,
    rows: usize,
    /// Bytes of the batches written, before compression.
    bytes: u64,
    max_batch: u64,
    /// The first key of every batch, across the files.
    fences: Vec<KeyBytes>,
}

impl SpilledMerge {
    fn push(&mut self, file: SpillFile) {
        self.bytes += file.uncompressed_bytes();
        self.files.push(file);
    }
}

/// Sorts batches of one schema by keys, spilling sorted runs.
///
/// With a memory monitor (`'m`), memory it must have is made by spilling the
/// monitor's least recently used entries first (a task's sorted runs waiting in the
/// store for the merges), before the sort gives up or spills its own run.
pub struct ExternalSort<'m> {
    schema: SchemaRef,
    columns: Vec<usize>,
    keys: KeyEncoder,
    pool: MemoryPool,
    store: SpillStore,
    run_bytes: u64,
    batch_rows: usize,
    /// What one merge may hold, when not the default share of the limit.
    merge_bytes: Option<u64>,
    monitor: Option<&'m MemoryMonitor>,
}

impl<'m> ExternalSort<'m> {
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
        let (columns, keys) = key_layout(&schema, keys)?;
        Ok(ExternalSort {
            schema,
            columns,
            keys,
            pool,
            store,
            run_bytes: run_bytes.max(1),
            batch_rows: RUN_BATCH_ROWS,
            merge_bytes: None,
            monitor: None,
        }
        .with_batch_rows(RUN_BATCH_ROWS))
    }

    /// The same sorter, making room through `monitor` when the pool is short.
    pub fn with_monitor<'n>(self, monitor: Option<&'n MemoryMonitor>) -> ExternalSort<'n> {
        ExternalSort {
            schema: self.schema,
            columns: self.columns,
            keys: self.keys,
            pool: self.pool,
            store: self.store,
            run_bytes: self.run_bytes,
            batch_rows: self.batch_rows,
            merge_bytes: self.merge_bytes,
            monitor,
        }
    }

    /// Grows `held` by `bytes`, spilling the monitor's entries first if the pool
    /// has no room.
    fn grow(&self, held: &mut crate::memory::Reservation, bytes: u64) -> Result<()> {
        match self.monitor {
            Some(m) => m.grow_or_spill(held, bytes),
            None => held.try_grow(bytes),
        }
    }

    /// The schema of the rows sorted.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Merges at most `bytes` at once (instead of three eighths of the limit): what
    /// one of several merges running at once may take. Set it before
    /// [`ExternalSort::with_batch_rows`], which sizes batches from it.
    pub fn with_merge_bytes(mut self, bytes: u64) -> Self {
        self.merge_bytes = Some(bytes.max(1));
        self
    }

    /// Writes runs and merged output in batches of at most `rows` rows, and fewer
    /// when the budget asks for it (`ExternalSort::budget_batch_rows`).
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.min(self.budget_batch_rows()).clamp(1, RUN_BATCH_ROWS);
        self
    }

    fn row_guess(&self) -> (u64, u64) {
        row_guess(&self.schema, &self.columns, &self.keys)
    }

    /// Rows per batch to read, so that a run holds `MIN_RUN_BATCHES` at least:
    /// each with its sorted copy, keys and order, and the next batch's room.
    pub fn read_batch_rows(&self) -> usize {
        read_rows(self.row_guess(), self.run_bytes)
    }

    /// Rows per batch of a run and of merged output, so that [`MIN_FAN_IN`] runs
    /// merge within the merge budget (`ExternalSort::merge_cost`: about two of a
    /// run's batches each).
    fn budget_batch_rows(&self) -> usize {
        let (data, keys) = self.row_guess();
        let per_run = self.merge_budget() / (2 * MIN_FAN_IN + 1);
        let rows = per_run.saturating_sub(self.read_padding()) / (data + keys);
        rows.clamp(1, RUN_BATCH_ROWS as u64) as usize
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
    /// Everything a run holds is reserved before it is allocated, within `run_bytes`:
    /// the batches with what sorting them takes (`ExternalSort::sort_bytes`), and
    /// room for the next batch, which the reader decodes before the sort sees it. A
    /// refusal of the pool spills the run sooner; it is an error only when there is
    /// nothing left to spill.
    ///
    /// # Errors
    /// Batch errors, spill errors (the quota); [`Error::PlanTooLarge`] when a row is
    /// too wide for the run budget; [`Error::MemoryLimit`] when the pool has no room
    /// even for one batch (others hold it).
    pub fn make_runs(
        &self,
        batches: impl Iterator<Item = Result<RecordBatch>>,
        keep_in_memory: bool,
    ) -> Result<Vec<Run>> {
        let mut runs = Vec::new();
        let mut buffer: Vec<RecordBatch> = Vec::new();
        let mut held = self.pool.reserve("sort run");
        let mut ahead = self.pool.reserve("sort read-ahead");
        for batch in batches {
            let batch = batch?;
            // The batch is here: its room becomes part of the run's reservation below.
            ahead.shrink(ahead.size());
            let data = batch.get_array_memory_size() as u64;
            let need = self.sort_bytes(&batch);
            // The batch joins the run if the run still has room for the next one.
            if !buffer.is_empty()
                && (held.size() + need + data > self.run_bytes
                    || self.grow(&mut held, need).is_err())
            {
                runs.push(self.spill_sorted(std::mem::take(&mut buffer))?);
                held.shrink(held.size());
            }
            if buffer.is_empty() {
                if need + data > self.run_bytes {
                    // Wider rows than the batches were sized for: sorted on its own,
                    // a slice at a time.
                    runs.extend(self.spill_in_slices(&batch, need, &mut held)?);
                    held.shrink(held.size());
                    drop(batch);
                    self.grow(&mut ahead, data)?;
                    continue;
                }
                self.grow(&mut held, need)?;
            }
            buffer.push(batch);
            // Room for the next batch; when the pool has none, spilling the run
            // makes it.
            if self.grow(&mut ahead, data).is_err() {
                runs.push(self.spill_sorted(std::mem::take(&mut buffer))?);
                held.shrink(held.size());
                self.grow(&mut ahead, data)?;
            }
        }
        drop(ahead);
        if !buffer.is_empty() {
            if keep_in_memory && runs.is_empty() {
                let sorted = self.sort_batches(&buffer)?;
                drop(buffer);
                // Only the sorted batch stays.
                let sorted_bytes = sorted.get_array_memory_size() as u64;
                held.shrink(held.size().saturating_sub(sorted_bytes));
                let (rows, bytes) = (sorted.num_rows(), sorted_bytes);
                let (fences, max_batch) = self.describe(&sorted)?;
                runs.push(Run {
                    data: RunData::Memory(self.slices(&sorted)),
                    rows,
                    bytes,
                    max_batch,
                    fences,
                    fence_stride: 1,
                    _held: Some(held),
                });
                return Ok(runs);
            } else {
                runs.push(self.spill_sorted(buffer)?);
            }
        }
        Ok(runs)
    }

    /// Sorts one batch too large for the run budget into runs of slices that fit
    /// (`held` reserves the batch, the next one's room and a slice's working set).
    ///
    /// # Errors
    /// [`Error::PlanTooLarge`] when not even one row fits the limit, naming what a
    /// sort needs; [`Error::MemoryLimit`] when the pool refuses; spill errors.
    fn spill_in_slices(
        &self,
        batch: &RecordBatch,
        need: u64,
        held: &mut crate::memory::Reservation,
    ) -> Result<Vec<Run>> {
        let rows = batch.num_rows().max(1) as u64;
        let data = batch.get_array_memory_size() as u64;
        // A row's sorted copy, key and place in the order.
        let per_row = need.saturating_sub(data).div_ceil(rows).max(1);
        // The batch and the next one's room are held all along.
        let room = self.run_bytes.saturating_sub(2 * data);
        // The run budget is a thread's share; a row that passes it alone is still
        // sorted when the pool has room for it.
        let slice_rows = (room / per_row).clamp(1, rows) as usize;
        let single = 2 * data + per_row;
        if let Err(refused) = self.grow(held, data + slice_rows as u64 * per_row) {
            if single <= self.pool.limit() {
                return Err(refused);
            }
            // Not even one row of this batch fits the limit, whatever else runs:
            // refused before it is sorted. Runs take half the limit on every thread,
            // so a limit of twice `projected` would do.
            let threads = (self.pool.limit() / (2 * self.run_bytes).max(1)).max(1);
            return Err(Error::PlanTooLarge {
                op: "sort_run".into(),
                projected: threads * single,
                limit: self.pool.limit(),
                suggested_unit_bytes: 0,
            });
        }
        (0..batch.num_rows())
            .step_by(slice_rows)
            .map(|start| {
                let len = slice_rows.min(batch.num_rows() - start);
                self.spill_sorted(vec![batch.slice(start, len)])
            })
            .collect()
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
        let (fences, max_batch) = self.describe(&sorted)?;
        let file = self.store.write_batches(&self.schema, &pieces)?;
        let bytes = file.uncompressed_bytes();
        Ok(Run::spilled(vec![file], rows, bytes, max_batch, fences))
    }

    /// The first key of each `batch_rows` slice of a sorted batch, and the most a
    /// slice takes read back with its keys.
    fn describe(&self, sorted: &RecordBatch) -> Result<(Vec<KeyBytes>, u64)> {
        let keys = self.key_rows(sorted)?;
        let n = sorted.num_rows();
        let max_batch = (0..n)
            .step_by(self.batch_rows)
            .map(|start| {
                let end = (start + self.batch_rows).min(n);
                crate::memory::batch_memory(&sorted.slice(start, end - start))
                    + keys.size_of(start, end)
            })
            .max()
            .unwrap_or(0)
            + self.read_padding();
        let fences = (0..n)
            .step_by(self.batch_rows)
            .map(|i| keys.key_bytes(i))
            .collect();
        Ok((fences, max_batch))
    }

    /// Bytes a batch may take read back beyond what it took written.
    fn read_padding(&self) -> u64 {
        READ_PADDING * (self.schema.fields().len() as u64 + 1)
    }

    fn slices(&self, batch: &RecordBatch) -> Vec<RecordBatch> {
        (0..batch.num_rows())
            .step_by(self.batch_rows)
            .map(|start| batch.slice(start, self.batch_rows.min(batch.num_rows() - start)))
            .collect()
    }

    /// The bytes one merge may take: three eighths of the limit. Merges run once
    /// every run is made, one at a time (several, in key ranges, only when they fit
    /// a third of the limit together), beside what a pass writes out (an eighth,
    /// [`ExternalSort::pass_output_bytes`]) or the output of the last one.
    fn merge_budget(&self) -> u64 {
        self.merge_bytes.unwrap_or(self.pool.limit() / 8 * 3)
    }

    /// The bytes a merge pass holds of merged batches before writing them out.
    fn pass_output_bytes(&self) -> u64 {
        (self.pool.limit() / 8).max(1)
    }

    /// Bytes a merge of `runs` holds at most, reserved before it reads anything:
    /// per run, its widest batch with keys and that batch's share of the output
    /// (whose rows are copied from the runs' current batches, so it is at most as
    /// large as they are); the keys of one more batch (a cursor moving on holds
    /// both), and the output's picks.
    pub(super) fn merge_cost(&self, runs: &[Run]) -> u64 {
        let widest = runs.iter().map(|r| r.max_batch).max().unwrap_or(0);
        2 * runs.iter().map(|r| r.max_batch).sum::<u64>()
            + widest
            + MERGE_BYTES_PER_ROW * self.batch_rows as u64
    }

    /// Bytes one merge of `runs` holds (`ExternalSort::merge_cost`).
    pub fn merge_bytes(&self, runs: &[Run]) -> u64 {
        self.merge_cost(runs)
    }

    /// Merges `runs` (in input order) and hands the sorted output to `emit` in
    /// batches (see [`ExternalSort::with_merge`]).
    ///
    /// # Errors
    /// Read errors of spilled runs; `emit`'s errors; [`Error::MemoryLimit`] when not
    /// even two runs can be merged.
    pub fn merge(
        &self,
        runs: Vec<Run>,
        mut emit: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.with_merge(runs, &KeyRange::all(), |stream| {
            for batch in stream {
                emit(batch?)?;
            }
            Ok(())
        })
    }

    /// Hands `f` the merge of the rows of `runs` (in input order) whose keys fall in
    /// `range`, as a stream. When their merge would take more than the merge
    /// budget, consecutive groups that fit are merged (their rows in `range`) into
    /// longer spilled runs first (which keeps the sort stable); so too when the pool
    /// refuses the merge's reservation.
    ///
    /// # Errors
    /// Read errors of spilled runs; `f`'s errors; [`Error::MemoryLimit`] when not
    /// even two runs can be merged.
    pub fn with_merge<R>(
        &self,
        mut runs: Vec<Run>,
        range: &KeyRange,
        f: impl FnOnce(MergeStream<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut budget = self.merge_budget();
        let mut range = range;
        let all = KeyRange::all();
        loop {
            if runs.len() <= 1 || self.merge_cost(&runs) <= budget {
                match MergeStream::new(self, &runs, range) {
                    Ok(stream) => return f(stream),
                    // Others hold part of the pool: merge in more, smaller passes.
                    Err(Error::MemoryLimit { .. }) if runs.len() > 2 => {
                        budget = self.merge_cost(&runs) / 2;
                    }
                    Err(e) => return Err(e),
                }
            }
            runs = self.merge_groups(runs, budget, range)?;
            // The merged runs hold only rows of the range.
            range = &all;
        }
    }

    /// One pass: consecutive groups of `runs` whose merge fits `budget` (two at
    /// least) merged into spilled runs.
    fn merge_groups(&self, runs: Vec<Run>, budget: u64, range: &KeyRange) -> Result<Vec<Run>> {
        let mut merged = Vec::new();
        let mut group: Vec<Run> = Vec::new();
        for run in runs {
            group.push(run);
            if group.len() > 2 && self.merge_cost(&group) > budget {
                let last = group.pop();
                merged.push(self.merge_to_spill(std::mem::take(&mut group), range)?);
                group.extend(last);
            }
        }
        if group.len() > 1 || (range.lower.is_some() || range.upper.is_some()) {
            // (A run alone is merged too when only its rows in the range are wanted.)
            merged.push(self.merge_to_spill(group, range)?);
        } else {
            merged.extend(group);
        }
        Ok(merged)
    }

    /// Merges the rows of a group of runs in `range` into one spilled run.
    fn merge_to_spill(&self, group: Vec<Run>, range: &KeyRange) -> Result<Run> {
        let mut stream = MergeStream::new(self, &group, range)?;
        let out = self.spill_stream(&mut stream)?;
        // Fences index batches of one file only (see MergeStream::new).
        let fences = if out.files.len() == 1 {
            out.fences
        } else {
            Vec::new()
        };
        Ok(Run::spilled(
            out.files,
            out.rows,
            out.bytes,
            out.max_batch,
            fences,
        ))
    }

    /// Merges every run of `runs` into one sequence of spill files, with the first
    /// key of each batch across them all (one fixed-width key only): a partition
    /// that made several runs, published as one.
    fn merge_into_one(&self, runs: Vec<Run>) -> Result<SpilledMerge> {
        self.with_merge(runs, &KeyRange::all(), |mut stream| {
            self.spill_stream(&mut stream)
        })
    }

    /// Writes the batches of `stream` to spill files of at most
    /// [`ExternalSort::pass_output_bytes`] each, so no file is held whole in memory.
    fn spill_stream(&self, stream: &mut MergeStream<'_>) -> Result<SpilledMerge> {
        let mut out = SpilledMerge::default();
        let mut pending: Vec<RecordBatch> = Vec::new();
        // What waits to be written is new memory, reserved; a refusal writes it out
        // sooner.
        let mut held = self.pool.reserve("sort merge output");
        let cap = self.pass_output_bytes();
        while let Some((batch, key_bytes)) = stream.next_with_key_bytes()? {
            out.max_batch = out
                .max_batch
                .max(crate::memory::batch_memory(&batch) + key_bytes + self.read_padding());
            out.rows += batch.num_rows();
            if batch.num_rows() > 0 {
                out.fences
                    .push(self.key_rows(&batch.slice(0, 1))?.key_bytes(0));
            }
            let size = batch.get_array_memory_size() as u64;
            if !pending.is_empty()
                && (held.size() + size > cap || self.grow(&mut held, size).is_err())
            {
                out.push(
                    self.store
                        .write_batches(&self.schema, &std::mem::take(&mut pending))?,
                );
                held.shrink(held.size());
            }
            if pending.is_empty() {
                self.grow(&mut held, size)?;
            }
            pending.push(batch);
        }
        if !pending.is_empty() {
            out.push(self.store.write_batches(&self.schema, &pending)?);
        }
        Ok(out)
    }

    /// Key ranges that split the merge of `runs` into `parts` independent merges of
    /// about equal size, cut at keys sampled from the runs' batch boundaries. One
    /// unbounded range when a run carries no samples.
    pub fn split(&self, runs: &[Run], parts: usize) -> Result<Vec<KeyRange>> {
        let whole = vec![KeyRange::all()];
        if parts < 2 || runs.iter().any(|r| r.rows > 0 && r.fences.is_empty()) {
            return Ok(whole);
        }
        let mut fences: Vec<&KeyBytes> = runs.iter().flat_map(|r| r.fences.iter()).collect();
        if fences.is_empty() {
            return Ok(whole);
        }
        fences.sort_unstable();
        let mut splitters: Vec<&KeyBytes> = (1..parts)
            .map(|p| fences[p * fences.len() / parts])
            .collect();
        splitters.dedup();
        // Keys equal to a splitter all go to the range above it, so a run's ties
        // stay in one range, in run order.
        let mut ranges = Vec::with_capacity(splitters.len() + 1);
        let mut lower: Option<KeyBytes> = None;
        for s in splitters {
            ranges.push(KeyRange {
                lower: lower.take(),
                upper: Some(s.clone()),
            });
            lower = Some(s.clone());
        }
        ranges.push(KeyRange { lower, upper: None });
        Ok(ranges)
    }

    /// The merged rows of `runs` whose keys fall in `range`, in batches.
    ///
    /// # Errors
    /// Read errors of spilled runs.
    pub fn merge_range<'a>(&'a self, runs: &'a [Run], range: &KeyRange) -> Result<MergeStream<'a>> {
        MergeStream::new(self, runs, range)
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

    fn sorter(
        limit: u64,
        run_bytes: u64,
        dir: &std::path::Path,
    ) -> (ExternalSort<'static>, MemoryPool) {
        let store = SpillStore::new(
            DiskManager::new(dir, None).unwrap(),
            SpillCompression::Zstd(1),
        );
        let pool = MemoryPool::new(limit);
        let key = SortKey {
            column: "k".into(),
            descending: false,
        };
        let sorter = ExternalSort::new(schema(), &[key], pool.clone(), store, run_bytes).unwrap();
        (sorter, pool)
    }

    #[test]
    fn a_batch_wider_than_the_run_budget_is_sorted_in_slices_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (sorter, pool) = sorter(40_000, 20_000, dir.path());
        let keys: Vec<Option<i64>> = (0..600).map(|i| Some((i * 37) % 600)).collect();
        // One batch of 600 rows: far more than a run of 20 kB sorts at once.
        let runs = sorter
            .make_runs(batches(&keys, 600).into_iter().map(Ok), false)
            .unwrap();
        assert!(runs.len() > 1, "{}", runs.len());
        let mut out = Vec::new();
        sorter
            .merge(runs, |b| {
                let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                out.extend(k.values().iter().copied());
                Ok(())
            })
            .unwrap();
        assert_eq!(out, (0..600).collect::<Vec<i64>>());
        assert!(pool.peak_reserved() <= 40_000, "{}", pool.peak_reserved());
    }

    #[test]
    fn a_row_wider_than_the_limit_allows_is_refused_before_it_is_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let (sorter, pool) = sorter(20_000, 10_000, dir.path());
        let wide = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1)])),
                Arc::new(StringArray::from(vec!["x".repeat(30_000)])),
            ],
        )
        .unwrap();
        match sorter.make_runs(std::iter::once(Ok(wide)), false) {
            Err(Error::PlanTooLarge {
                projected, limit, ..
            }) => assert!(limit == 20_000 && 2 * projected > 60_000, "{projected}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("sorted a row wider than the limit"),
        }
        assert_eq!(pool.peak_reserved(), 0);
    }

    #[test]
    fn keys_of_several_columns_of_text_are_cut_into_ranges_that_merge_to_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = SpillStore::new(
            DiskManager::new(dir.path(), None).unwrap(),
            SpillCompression::Zstd(1),
        );
        let keys = [
            SortKey {
                column: "v".into(),
                descending: true,
            },
            SortKey {
                column: "k".into(),
                descending: false,
            },
        ];
        let sorter = ExternalSort::new(schema(), &keys, MemoryPool::new(1 << 30), store, 4096)
            .unwrap()
            .with_batch_rows(16);
        let values: Vec<Option<i64>> = (0..500).map(|i| Some((i * 31) % 97)).collect();
        let mut runs = Vec::new();
        for part in values.chunks(250) {
            runs.extend(
                sorter
                    .make_runs(batches(part, 7).into_iter().map(Ok), false)
                    .unwrap(),
            );
        }
        assert!(runs.len() > 2, "{}", runs.len());
        let rows = |b: &RecordBatch| -> Vec<(String, Option<i64>)> {
            let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let v = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            (0..b.num_rows())
                .map(|i| (v.value(i).to_string(), k.is_valid(i).then(|| k.value(i))))
                .collect()
        };
        let ranges = sorter.split(&runs, 5).unwrap();
        assert!(ranges.len() > 2, "{ranges:?}");
        // Bounds round-trip through JSON as a worker reads them.
        let ranges: Vec<KeyRange> =
            serde_json::from_value(serde_json::to_value(&ranges).unwrap()).unwrap();
        let mut by_ranges = Vec::new();
        for range in &ranges {
            for b in sorter.merge_range(&runs, range).unwrap() {
                by_ranges.extend(rows(&b.unwrap()));
            }
        }
        let mut whole = Vec::new();
        sorter
            .merge(runs, |b| {
                whole.extend(rows(&b));
                Ok(())
            })
            .unwrap();
        assert_eq!(by_ranges, whole);
        assert_eq!(whole.len(), 500);
        assert!(whole
            .windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1)));
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
