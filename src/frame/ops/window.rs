//! Window functions (`row_number`, `rank`, `dense_rank` over `PARTITION BY ...
//! ORDER BY ...`): the rows are shuffled by the partition keys' hash into
//! buckets (`frame_shuffle`, a task a part, spilling what does not fit), then each
//! bucket's rows are sorted by partition and order and numbered (`frame_window`,
//! a task a bucket). Every row of a window partition lands in one bucket, so a
//! bucket is numbered alone.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::compute::{concat_batches, SortOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use serde::{Deserialize, Serialize};

use super::aggregate::bucketed::{bucket_batches, BucketWriter};
use super::aggregate::keys::{estimated_keys, expected_distinct, GroupKeys, KeyHasher};
use super::pipeline::Pipeline;
use super::sort::{ExternalSort, KeyRange, SortKey};
use crate::error::Result;
use crate::frame::expr::Expr;
use crate::frame::logical::{SortExpr, WindowFunc};
use crate::frame::read::{for_each_batch, reading};
use crate::memory::batch_memory;
use crate::plan::{Operation, Task, TaskEnv};
use crate::storage::frame::SerializedSchema;

/// A window column as a task computes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowColumn {
    /// The function.
    pub func: WindowFuncName,
    /// The order within a partition.
    pub order_by: Vec<SortExpr>,
    /// The output column's name.
    pub name: String,
}

/// [`WindowFunc`] as plans spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowFuncName {
    /// `row_number()`.
    RowNumber,
    /// `rank()`.
    Rank,
    /// `dense_rank()`.
    DenseRank,
}

impl From<WindowFunc> for WindowFuncName {
    fn from(f: WindowFunc) -> Self {
        match f {
            WindowFunc::RowNumber => WindowFuncName::RowNumber,
            WindowFunc::Rank => WindowFuncName::Rank,
            WindowFunc::DenseRank => WindowFuncName::DenseRank,
        }
    }
}

/// Cuts one input's rows (through `pre`) into `buckets` by the hash of the
/// partition keys, and publishes them in bucket order (as the aggregation's
/// partial entries are: the batches a bucket has in the schema's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameShuffle {
    /// The steps before the shuffle.
    pub pre: Pipeline,
    /// The schema the steps yield.
    pub schema: SerializedSchema,
    /// The partition keys.
    pub keys: Vec<Expr>,
    /// Buckets.
    pub buckets: u32,
    /// Keep only the first rows of each window partition (a `row_number() <= k`
    /// filter follows): what the shuffle moves is then k rows a partition a part.
    #[serde(default)]
    pub top: Option<TopPerGroup>,
}

/// The first `k` rows by `order_by` of each window partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopPerGroup {
    /// The order within a partition.
    pub order_by: Vec<SortExpr>,
    /// Rows kept a partition.
    pub k: usize,
}

/// Rows a shuffle groups to tell whether its part's top k per group pays.
const PROBE_ROWS: usize = 100_000;

/// A top k in a shuffle task pays when it keeps at most this share of the part's
/// rows. db-benchmark's q8 at 1e8 rows (1e6 groups, k = 2, parts of 4 million
/// rows) keeps half: the table of a million groups' best rows misses the cache on
/// every row, and cost 18 s of the shuffle's 31 s, where the window tasks finish
/// the same rows in a few seconds a bucket at a time.
const TOP_PAYS_SHARE: f64 = 1.0 / 3.0;

impl TopPerGroup {
    /// Whether keeping each partition's first k rows of the part `batches`
    /// (before the shuffle) is worth it: at most [`TOP_PAYS_SHARE`] of its rows
    /// expected to be kept, the groups estimated from its first rows.
    fn pays(&self, schema: &SchemaRef, keys: &[Expr], batches: &[RecordBatch]) -> Result<bool> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if keys.is_empty() || rows == 0 {
            return Ok(true);
        }
        let types = keys
            .iter()
            .map(|k| k.data_type(schema))
            .collect::<Result<Vec<_>>>()?;
        let mut groups = GroupKeys::new(&types)?;
        let (mut probed, mut ids) = (0, Vec::new());
        for batch in batches {
            if probed >= PROBE_ROWS {
                break;
            }
            let batch = batch.slice(0, batch.num_rows().min(PROBE_ROWS - probed));
            let cols = keys
                .iter()
                .map(|k| k.evaluate(&batch))
                .collect::<Result<Vec<ArrayRef>>>()?;
            groups.intern(&cols, &mut ids)?;
            probed += batch.num_rows();
        }
        let expected = expected_distinct(estimated_keys(groups.len(), probed), rows);
        Ok(expected * self.k as f64 <= TOP_PAYS_SHARE * rows as f64)
    }

    /// The rows of `batches` among the first `k` of their partition (by `keys`),
    /// without sorting them: a table of partitions, each keeping its k best rows'
    /// order keys as row-format bytes (compared as bytes, as sorted).
    fn keep(
        &self,
        schema: &SchemaRef,
        keys: &[Expr],
        batches: &[RecordBatch],
        reserve: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<RecordBatch> {
        let key_types = keys
            .iter()
            .map(|k| k.data_type(schema))
            .collect::<Result<Vec<_>>>()?;
        let mut groups = if key_types.is_empty() {
            None
        } else {
            Some(GroupKeys::new(&key_types)?)
        };
        let order_fields = self
            .order_by
            .iter()
            .map(|s| {
                Ok(SortField::new_with_options(
                    s.expr.data_type(schema)?,
                    SortOptions {
                        descending: s.descending,
                        nulls_first: s.nulls_first,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let order_rows = RowConverter::new(order_fields)?;
        // Every batch's group ids and order keys (row-format bytes, compared as
        // sorted), kept while the best rows are chosen: a best row is then just
        // its (batch, row), and nothing is allocated a row.
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(batches.len());
        let mut encoded: Vec<Option<Rows>> = Vec::with_capacity(batches.len());
        for batch in batches {
            let mut batch_ids = Vec::new();
            match &mut groups {
                Some(g) => {
                    let cols = keys
                        .iter()
                        .map(|k| k.evaluate(batch))
                        .collect::<Result<Vec<ArrayRef>>>()?;
                    g.intern(&cols, &mut batch_ids)?;
                }
                None => batch_ids.resize(batch.num_rows(), 0),
            }
            ids.push(batch_ids);
            let order = self
                .order_by
                .iter()
                .map(|s| s.expr.evaluate(batch))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let rows = if order.is_empty() {
                None
            } else {
                Some(order_rows.convert_columns(&order)?)
            };
            reserve(
                rows.as_ref().map_or(0, Rows::size) + ids.last().map_or(0, |i| i.capacity() * 4),
            )?;
            encoded.push(rows);
        }
        let key = |b: u32, r: u32| -> &[u8] {
            encoded[b as usize]
                .as_ref()
                .map_or(&[], |rows| rows.row(r as usize).data())
        };
        // Group g's best rows, best first, are slots[g * k ..][..k], each with its
        // key's prefix (most comparisons are of two integers), the unused ones
        // marked EMPTY: a row touches its group's slots only (for k = 2, one
        // cache line), not a count kept apart.
        const EMPTY: u32 = u32::MAX;
        let k = self.k.max(1);
        let mut slots: Vec<(u128, u32, u32)> = Vec::new();
        for (b, batch_ids) in ids.iter().enumerate() {
            let b = b as u32;
            for (r, &g) in batch_ids.iter().enumerate() {
                let (g, r) = (g as usize, r as u32);
                if (g + 1) * k > slots.len() {
                    slots.resize((g + 1) * k, (0, EMPTY, 0));
                }
                let data = key(b, r);
                let row = (key_prefix(data), b, r);
                let kept = &mut slots[g * k..(g + 1) * k];
                // Most rows of a full group are no better than its last kept
                // row: one comparison sends them on (q8 at 1e7 rows: a hundred
                // rows a group, of which a handful ever enter its top two).
                let (lp, lb, lr) = kept[k - 1];
                if lb != EMPTY && cmp_keys(lp, || key(lb, lr), row.0, || data) != Ordering::Greater
                {
                    continue;
                }
                let count = kept.partition_point(|&(_, kb, _)| kb != EMPTY);
                // After every kept row at least as good: ties keep the rows that
                // came first.
                let at = kept[..count].partition_point(|&(p, kb, kr)| {
                    cmp_keys(p, || key(kb, kr), row.0, || data) != Ordering::Greater
                });
                if at == k {
                    continue;
                }
                let end = count.min(k - 1);
                kept.copy_within(at..end, at + 1);
                kept[at] = row;
            }
        }
        let picks: Vec<(usize, usize)> = slots
            .iter()
            .filter(|&&(_, b, _)| b != EMPTY)
            .map(|&(_, b, r)| (b as usize, r as usize))
            .collect();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        Ok(arrow::compute::interleave_record_batch(&refs, &picks)?)
    }
}

impl Operation for FrameShuffle {
    const NAME: &'static str = "frame_shuffle";
    // 2: the entry is written in rounds, with its index at the end.
    const VERSION: u32 = 2;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let reading = reading(env, task, &self.pre)?;
        let schema = self.schema.decode()?;
        let types = self
            .keys
            .iter()
            .map(|k| k.data_type(&schema))
            .collect::<Result<Vec<DataType>>>()?;
        let hasher = KeyHasher::new(&types)?;
        let mut out = BucketWriter::new(
            env,
            format!("frame_shuffle {}", task.id),
            &task.output,
            schema.clone(),
            self.buckets.max(1) as usize,
        );
        // Each row's bucket, by the hash of its partition keys.
        let bucket_of = |batch: &RecordBatch| -> Result<Vec<u32>> {
            if self.keys.is_empty() {
                return Ok(vec![0; batch.num_rows()]);
            }
            let keys = self
                .keys
                .iter()
                .map(|k| k.evaluate(batch))
                .collect::<Result<Vec<ArrayRef>>>()?;
            hasher.buckets(&keys, 0, self.buckets.max(1))
        };
        if let Some(top) = &self.top {
            // The part's rows are held, then only each window partition's first k
            // go on.
            let mut held = env.pool.reserve(format!("frame_shuffle {} rows", task.id));
            let mut rows = Vec::new();
            for input in reading.inputs {
                for_each_batch(env, input, |batch| {
                    let batch = reading.pre.apply(batch, &schema)?;
                    env.reserve(&mut held, batch_memory(&batch))?;
                    rows.push(batch);
                    Ok(true)
                })?;
            }
            let kept = if top.pays(&schema, &self.keys, &rows)? {
                let kept = top.keep(&schema, &self.keys, &rows, &mut |bytes| {
                    env.reserve(&mut held, bytes as u64)
                })?;
                drop(rows);
                held.resize(batch_memory(&kept).min(held.size()));
                vec![kept]
            } else {
                rows
            };
            // Each batch's reservation passes to the buckets as it goes into them.
            for batch in kept {
                out.add(env, &batch, &bucket_of(&batch)?)?;
                held.shrink(batch_memory(&batch));
            }
            drop(held);
        } else {
            let mut shuffle = |batch: RecordBatch| -> Result<bool> {
                let batch = reading.pre.apply(batch, &schema)?;
                out.add(env, &batch, &bucket_of(&batch)?)?;
                Ok(true)
            };
            for input in reading.inputs {
                for_each_batch(env, input, &mut shuffle)?;
            }
        }
        out.finish(env)
    }
}

/// Numbers one bucket's rows: gathers the bucket from every shuffled input
/// (held on the pool), and appends each window column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameWindow {
    /// The schema of the shuffled rows.
    pub schema: SerializedSchema,
    /// The partition keys.
    pub keys: Vec<Expr>,
    /// The window columns.
    pub windows: Vec<WindowColumn>,
    /// The bucket.
    pub bucket: u32,
    /// Only the first rows of each window partition are wanted (the one window
    /// is a `row_number()` filtered by `<= k`): the bucket keeps those before it
    /// is sorted, so a top k per group never sorts everything.
    #[serde(default)]
    pub top: Option<TopPerGroup>,
}

impl FrameWindow {
    /// The schema of the output: the rows' columns, then the window columns.
    pub fn output_schema(input: &Schema, windows: &[WindowColumn]) -> SchemaRef {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        for w in windows {
            fields.push(Field::new(&w.name, DataType::Int64, false));
        }
        Arc::new(Schema::new(fields))
    }

    /// `batch`'s rows numbered by `window`, in the batch's row order.
    ///
    /// The partition and order keys are encoded once in Arrow's row format and
    /// the row indices sorted by those bytes: comparing bytes is several times
    /// faster than a lexicographic sort's per-column comparators, and the same
    /// bytes then find the partitions' starts and the ties. The sort is stable,
    /// so tied rows are numbered in the order the bucket gathered them, the same
    /// in every run.
    fn number(
        &self,
        batch: &RecordBatch,
        keys: &[ArrayRef],
        window: &WindowColumn,
    ) -> Result<ArrayRef> {
        let n = batch.num_rows();
        let order = window
            .order_by
            .iter()
            .map(|s| s.expr.evaluate(batch))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let encode = |cols: &[ArrayRef], options: &[SortOptions]| -> Result<Option<Rows>> {
            if cols.is_empty() {
                return Ok(None);
            }
            let fields = cols
                .iter()
                .zip(options)
                .map(|(c, &o)| SortField::new_with_options(c.data_type().clone(), o))
                .collect();
            Ok(Some(RowConverter::new(fields)?.convert_columns(cols)?))
        };
        let part_rows = encode(keys, &vec![SortOptions::default(); keys.len()])?;
        let order_options: Vec<SortOptions> = window
            .order_by
            .iter()
            .map(|s| SortOptions {
                descending: s.descending,
                nulls_first: s.nulls_first,
            })
            .collect();
        let order_rows = encode(&order, &order_options)?;
        let same = |rows: &Option<Rows>, a: usize, b: usize| {
            rows.as_ref().is_none_or(|r| r.row(a) == r.row(b))
        };
        let mut all: Vec<ArrayRef> = keys.to_vec();
        all.extend(order.iter().cloned());
        let mut options = vec![SortOptions::default(); keys.len()];
        options.extend(&order_options);
        let perm: Vec<u32> = match encode(&all, &options)? {
            Some(rows) => sorted_by_rows(&rows),
            None => (0..n as u32).collect(),
        };
        let mut values = vec![0i64; n];
        let (mut number, mut rank, mut dense) = (0i64, 0i64, 0i64);
        for (i, &row) in perm.iter().enumerate() {
            let row = row as usize;
            let previous = i.checked_sub(1).map(|p| perm[p] as usize);
            let new_partition = previous.is_none_or(|p| !same(&part_rows, row, p));
            if new_partition {
                number = 0;
                rank = 0;
                dense = 0;
            }
            number += 1;
            let tie = !new_partition && previous.is_some_and(|p| same(&order_rows, row, p));
            if !tie {
                rank = number;
                dense += 1;
            }
            values[row] = match window.func {
                WindowFuncName::RowNumber => number,
                WindowFuncName::Rank => rank,
                WindowFuncName::DenseRank => dense,
            };
        }
        Ok(Arc::new(Int64Array::from(values)))
    }
}

/// The row indices in the order of `rows`' bytes, ties by index (so the order
/// is the same in every run).
///
/// Each row is sorted by its first 16 bytes as one integer, and only rows whose
/// first 16 bytes are equal compare the rest: most keys (an integer and a float
/// of a window's partition and order) fit in them, and comparing integers is
/// far cheaper than `memcmp` calls on short slices (DuckDB sorts normalized key
/// prefixes for the same reason).
fn sorted_by_rows(rows: &Rows) -> Vec<u32> {
    let mut keyed: Vec<(u128, u32)> = (0..rows.num_rows())
        .map(|i| (key_prefix(rows.row(i).data()), i as u32))
        .collect();
    keyed.sort_unstable_by(|a, b| {
        let (x, y) = (
            || rows.row(a.1 as usize).data(),
            || rows.row(b.1 as usize).data(),
        );
        cmp_keys(a.0, x, b.0, y).then(a.1.cmp(&b.1))
    });
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Bytes of a row-format key compared as one integer.
const PREFIX: usize = 16;

/// The first [`PREFIX`] bytes of a row-format key as one big-endian integer,
/// zero-padded: ordered as the bytes are, up to ties.
fn key_prefix(data: &[u8]) -> u128 {
    let mut prefix = [0u8; PREFIX];
    let len = data.len().min(PREFIX);
    prefix[..len].copy_from_slice(&data[..len]);
    u128::from_be_bytes(prefix)
}

/// Two row-format keys in the order of their bytes, given their prefixes
/// ([`key_prefix`]): the rest of the bytes are compared only on a tie.
fn cmp_keys<'a>(
    pa: u128,
    a: impl FnOnce() -> &'a [u8],
    pb: u128,
    b: impl FnOnce() -> &'a [u8],
) -> Ordering {
    pa.cmp(&pb).then_with(|| {
        let (a, b) = (a(), b());
        if a.len() <= PREFIX && b.len() <= PREFIX {
            // Equal prefixes of whole keys: the shorter (padded) key first, as
            // comparing the bytes would put it.
            a.len().cmp(&b.len())
        } else {
            a[PREFIX.min(a.len())..].cmp(&b[PREFIX.min(b.len())..])
        }
    })
}

impl Operation for FrameWindow {
    const NAME: &'static str = "frame_window";
    const VERSION: u32 = 1;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let schema = self.schema.decode()?;
        let mut held = env.pool.reserve(format!("frame_window {}", task.id));
        let mut batches = task
            .inputs
            .iter()
            .flat_map(|key| match bucket_batches(env.store, key, self.bucket) {
                Ok(list) => list.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
            .map(|batch| {
                env.cancel.check()?;
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    batch?.columns().to_vec(),
                )?)
            });
        let mut rows = Vec::new();
        while let Some(batch) = batches.next() {
            let batch = batch?;
            if let Err(e) = env.reserve(&mut held, batch_memory(&batch)) {
                if !self.sorts_externally() {
                    return Err(e);
                }
                // The bucket does not fit: sorted by the external merge sort
                // and numbered as the sorted rows stream by.
                drop(held);
                let rest = rows.into_iter().map(Ok).chain([Ok(batch)]).chain(batches);
                return self.run_sorted(task, env, &schema, rest);
            }
            rows.push(batch);
        }
        // The bucket as one batch: a copy, held beside the pieces until they go.
        let gathered = held.size();
        if let Err(e) = env.reserve(&mut held, gathered) {
            if !self.sorts_externally() {
                return Err(e);
            }
            drop(held);
            return self.run_sorted(task, env, &schema, rows.into_iter().map(Ok));
        }
        let batch = match &self.top {
            // Ties keep the rows gathered first, as the stable sort numbers them.
            Some(top) => top.keep(&schema, &self.keys, &rows, &mut |bytes| {
                env.reserve(&mut held, bytes as u64)
            })?,
            None => concat_batches(&schema, &rows)?,
        };
        drop(rows);
        held.shrink(gathered);
        let keys = self
            .keys
            .iter()
            .map(|k| k.evaluate(&batch))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let mut columns = batch.columns().to_vec();
        for w in &self.windows {
            columns.push(self.number(&batch, &keys, w)?);
        }
        let output = Self::output_schema(&schema, &self.windows);
        let result = RecordBatch::try_new(output.clone(), columns)?;
        drop(held);
        env.store.put(
            &task.output,
            crate::plan::Entry::Batches {
                schema: output,
                batches: vec![result],
            },
        )
    }
}

impl FrameWindow {
    /// Whether a bucket too large for memory can be numbered in sorted order: its
    /// window columns share one order (a sort serves them all), and it is not a
    /// top k (whose table of best rows holds little).
    fn sorts_externally(&self) -> bool {
        self.top.is_none()
            && self
                .windows
                .iter()
                .all(|w| w.order_by == self.windows[0].order_by)
    }

    /// Numbers the bucket's `batches` (of `schema`) through the external merge
    /// sort: the partition and order keys computed into columns of their own
    /// (NULLS FIRST as a key of whether there is a value, false first; the sort
    /// puts NULLs last), sorted runs spilled, then merged, each merged batch
    /// numbered where the last one stopped and published as it comes. The
    /// bucket's rows come out in window order.
    fn run_sorted(
        &self,
        task: &Task,
        env: &TaskEnv<'_>,
        schema: &SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        let order = self.windows.first().map_or(&[][..], |w| &w.order_by[..]);
        let mut keys: Vec<(Expr, bool)> = self.keys.iter().map(|k| (k.clone(), false)).collect();
        for o in order {
            if o.nulls_first {
                keys.push((o.expr.clone().is_not_null(), false));
            }
            keys.push((o.expr.clone(), o.descending));
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut sort_keys = Vec::new();
        for (i, (e, descending)) in keys.iter().enumerate() {
            let name = format!("#w{i}");
            fields.push(Field::new(&name, e.data_type(schema)?, true));
            sort_keys.push(SortKey {
                column: name,
                descending: *descending,
            });
        }
        let keyed_schema = Arc::new(Schema::new(fields));
        let sorter = ExternalSort::new(
            keyed_schema.clone(),
            &sort_keys,
            env.pool.clone(),
            env.spill.clone(),
            (env.pool.limit() / 4).max(1),
        )?
        .with_monitor(env.monitor);
        let keyed = batches.map(|batch| {
            let batch = batch?;
            let mut columns = batch.columns().to_vec();
            for (e, _) in &keys {
                columns.push(e.evaluate(&batch)?);
            }
            Ok(RecordBatch::try_new(keyed_schema.clone(), columns)?)
        });
        let runs = sorter.make_runs(keyed, true)?;
        let width = schema.fields().len();
        let partition = width..width + self.keys.len();
        let ordered = partition.end..width + keys.len();
        let output = Self::output_schema(schema, &self.windows);
        let mut numbering = Numbering::default();
        sorter.with_merge(runs, &KeyRange::all(), |stream| {
            let mut numbered = stream.map(|batch| {
                let batch = batch?;
                let numbers = numbering.next(
                    &batch.columns()[partition.clone()],
                    &batch.columns()[ordered.clone()],
                    batch.num_rows(),
                )?;
                let mut columns = batch.columns()[..width].to_vec();
                columns.extend(numbers.columns(&self.windows));
                Ok(RecordBatch::try_new(output.clone(), columns)?)
            });
            env.store
                .put_batches(&task.output, output.clone(), &mut numbered)
        })
    }
}

/// The schema metadata key under which a [`FrameNumber`] entry carries where its
/// numbering stopped (JSON, [`NumberingState`]).
pub const NUMBERING: &str = "blockwise.window.numbering";

/// Numbers one range of rows already sorted in window order, for window
/// functions without `PARTITION BY` over more rows than one task holds: the
/// external merge sort cuts the rows into key ranges, and a chain of these tasks
/// numbers them one range after the other, each going on where the range before
/// it stopped. Its inputs are the range and, but for the first, the previous
/// link's entry, whose schema carries that state.
///
/// The state at the range's end goes into the entry's schema before its rows,
/// so the range is read twice: once to find it (keys only), once to number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameNumber {
    /// The sorted rows' schema (with the sort's key columns).
    pub input: SerializedSchema,
    /// The steps from the sorted rows to the rows numbered (the key columns
    /// dropped).
    pub pre: Pipeline,
    /// The window columns, all of one order.
    pub windows: Vec<WindowColumn>,
}

/// Where a numbering stopped: the last row's order key (row format, hex) and
/// its numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct NumberingState {
    last: Option<String>,
    number: i64,
    rank: i64,
    dense: i64,
}

impl Numbering {
    fn state(&self) -> NumberingState {
        NumberingState {
            last: self
                .last
                .as_ref()
                .map(|(_, o)| o.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            number: self.number,
            rank: self.rank,
            dense: self.dense,
        }
    }

    fn from_state(state: &NumberingState) -> Result<Numbering> {
        let last = match &state.last {
            None => None,
            Some(hex) => {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| crate::error::Error::BadPlan {
                        reason: format!("a window numbering's state {hex:?} is not hex"),
                    })?;
                Some((Vec::new(), bytes))
            }
        };
        Ok(Numbering {
            last,
            number: state.number,
            rank: state.rank,
            dense: state.dense,
            ..Numbering::default()
        })
    }
}

impl Operation for FrameNumber {
    const NAME: &'static str = "frame_number";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let input = self.input.decode()?;
        let rows_schema = self.pre.schema(&input)?;
        let Some(range) = task.inputs.first() else {
            return Err(crate::error::Error::BadPlan {
                reason: format!("task {}: {} reads a range of rows", task.id, Self::NAME),
            });
        };
        let start = match task.inputs.get(1) {
            None => NumberingState::default(),
            Some(previous) => {
                let (schema, _) = env.store.batches(previous)?;
                let text = schema.metadata().get(NUMBERING).ok_or_else(|| {
                    crate::error::Error::BadPlan {
                        reason: format!("{previous} does not say where its numbering stopped"),
                    }
                })?;
                serde_json::from_str(text).map_err(|e| crate::error::Error::BadPlan {
                    reason: format!("{previous}: the numbering state does not decode: {e}"),
                })?
            }
        };
        let order = self.windows.first().map_or(&[][..], |w| &w.order_by[..]);
        let rows = |batch: Result<RecordBatch>| -> Result<(RecordBatch, Vec<ArrayRef>)> {
            env.cancel.check()?;
            let batch = self.pre.apply(batch?, &rows_schema)?;
            let keys = order
                .iter()
                .map(|o| o.expr.evaluate(&batch))
                .collect::<Result<Vec<ArrayRef>>>()?;
            Ok((batch, keys))
        };
        // Where this range stops, for the next link.
        let mut ahead = Numbering::from_state(&start)?;
        for batch in env.store.batches(range)?.1 {
            let (batch, keys) = rows(batch)?;
            ahead.next(&[], &keys, batch.num_rows())?;
        }
        let state = serde_json::to_string(&ahead.state())
            .map_err(|e| crate::error::Error::bug("window numbering state", e))?;
        let plain = FrameWindow::output_schema(&rows_schema, &self.windows);
        let mut metadata = plain.metadata().clone();
        metadata.insert(NUMBERING.to_string(), state);
        let output = Arc::new(Schema::new_with_metadata(plain.fields().clone(), metadata));
        let mut numbering = Numbering::from_state(&start)?;
        let mut numbered = env.store.batches(range)?.1.map(|batch| {
            let (batch, keys) = rows(batch)?;
            let numbers = numbering.next(&[], &keys, batch.num_rows())?;
            let mut columns = batch.columns().to_vec();
            columns.extend(numbers.columns(&self.windows));
            Ok(RecordBatch::try_new(output.clone(), columns)?)
        });
        env.store
            .put_batches(&task.output, output.clone(), &mut numbered)
    }
}

impl Numbers {
    /// The column of each window function, in order.
    fn columns(&self, windows: &[WindowColumn]) -> Vec<ArrayRef> {
        windows
            .iter()
            .map(|w| -> ArrayRef {
                Arc::new(Int64Array::from(match w.func {
                    WindowFuncName::RowNumber => self.number.clone(),
                    WindowFuncName::Rank => self.rank.clone(),
                    WindowFuncName::DenseRank => self.dense.clone(),
                }))
            })
            .collect()
    }
}

/// The numbers of rows in window order, batch after batch: where a batch's first
/// rows continue the last batch's partition, they go on counting.
#[derive(Default)]
struct Numbering {
    /// The last row's partition and order keys, in the row format (empty for
    /// no keys: every row in one partition, every row a tie).
    last: Option<(Vec<u8>, Vec<u8>)>,
    converters: [Option<RowConverter>; 2],
    number: i64,
    rank: i64,
    dense: i64,
}

/// One batch's `row_number`, `rank` and `dense_rank`.
struct Numbers {
    number: Vec<i64>,
    rank: Vec<i64>,
    dense: Vec<i64>,
}

/// The key of row `i` in the row format, empty for no key columns.
fn key_of(rows: &Option<Rows>, i: usize) -> &[u8] {
    rows.as_ref().map_or(&[][..], |r| r.row(i).data())
}

impl Numbering {
    /// The numbers of the `n` rows whose partition keys are `partition` and
    /// order keys `order` (columns of one batch; either may be none).
    fn next(&mut self, partition: &[ArrayRef], order: &[ArrayRef], n: usize) -> Result<Numbers> {
        let mut encoded = [None, None];
        for (slot, cols) in [partition, order].into_iter().enumerate() {
            if cols.is_empty() {
                continue;
            }
            if self.converters[slot].is_none() {
                self.converters[slot] = Some(RowConverter::new(
                    cols.iter()
                        .map(|c| SortField::new(c.data_type().clone()))
                        .collect(),
                )?);
            }
            if let Some(c) = &self.converters[slot] {
                encoded[slot] = Some(c.convert_columns(cols)?);
            }
        }
        let [parts, orders] = encoded;
        let mut out = Numbers {
            number: Vec::with_capacity(n),
            rank: Vec::with_capacity(n),
            dense: Vec::with_capacity(n),
        };
        for i in 0..n {
            let (p, o) = (key_of(&parts, i), key_of(&orders, i));
            let before = match i {
                0 => self
                    .last
                    .as_ref()
                    .map(|(lp, lo)| (lp.as_slice(), lo.as_slice())),
                _ => Some((key_of(&parts, i - 1), key_of(&orders, i - 1))),
            };
            let (new_partition, tie) = match before {
                None => (true, false),
                Some((lp, lo)) => (lp != p, lp == p && lo == o),
            };
            if new_partition {
                (self.number, self.rank, self.dense) = (0, 0, 0);
            }
            self.number += 1;
            if !tie {
                self.rank = self.number;
                self.dense += 1;
            }
            out.number.push(self.number);
            out.rank.push(self.rank);
            out.dense.push(self.dense);
        }
        if n > 0 {
            self.last = Some((
                key_of(&parts, n - 1).to_vec(),
                key_of(&orders, n - 1).to_vec(),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` rows whose key `g` cycles through `keys` values, and an order column.
    fn part(rows: i64, keys: i64) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let g = Int64Array::from_iter_values((0..rows).map(|i| (i * 7919) % keys));
        let v = Int64Array::from_iter_values(0..rows);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(g), Arc::new(v)]).unwrap();
        let batches = (0..rows as usize)
            .step_by(10_000)
            .map(|at| batch.slice(at, 10_000.min(rows as usize - at)))
            .collect();
        (schema, batches)
    }

    #[test]
    fn numbering_goes_on_across_batches_with_or_without_keys() {
        let col = |v: &[i64]| -> ArrayRef { Arc::new(Int64Array::from(v.to_vec())) };
        let all = |n: Numbers| (n.number, n.rank, n.dense);
        // One partition ordered 1 1 2 | 2 3: ties across the batches' edge.
        let mut n = Numbering::default();
        let a = all(n.next(&[], &[col(&[1, 1, 2])], 3).unwrap());
        assert_eq!(a, (vec![1, 2, 3], vec![1, 1, 3], vec![1, 1, 2]));
        let b = all(n.next(&[], &[col(&[2, 3])], 2).unwrap());
        assert_eq!(b, (vec![4, 5], vec![3, 5], vec![2, 3]));
        // Partitions without an order: every row of a partition ties.
        let mut m = Numbering::default();
        let c = all(m.next(&[col(&[7, 7, 8])], &[], 3).unwrap());
        assert_eq!(c, (vec![1, 2, 1], vec![1, 1, 1], vec![1, 1, 1]));
        let d = all(m.next(&[col(&[8, 9])], &[], 2).unwrap());
        assert_eq!(d, (vec![2, 1], vec![1, 1], vec![1, 1]));
    }

    #[test]
    fn a_shuffles_top_k_runs_only_where_it_keeps_few_of_its_rows() {
        let top = TopPerGroup {
            order_by: vec![SortExpr::desc(Expr::col("v"))],
            k: 2,
        };
        let keys = [Expr::col("g")];
        // 300,000 rows of 100 keys: 200 kept.
        let (schema, few) = part(300_000, 100);
        assert!(top.pays(&schema, &keys, &few).unwrap());
        // Of 1e6 keys: each row nearly its own group, all kept.
        let (schema, many) = part(300_000, 1_000_000);
        assert!(!top.pays(&schema, &keys, &many).unwrap());
        // 150,000 keys over 300,000 rows: 130,000 groups seen, 87% of the rows kept.
        let (schema, half) = part(300_000, 150_000);
        assert!(!top.pays(&schema, &keys, &half).unwrap());
        // Without keys, one partition: always.
        assert!(top.pays(&schema, &[], &half).unwrap());
    }
}
