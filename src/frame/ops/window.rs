//! Window functions (`row_number`, `rank`, `dense_rank` over `PARTITION BY ...
//! ORDER BY ...`): the rows are shuffled by the partition keys' hash into
//! buckets (`frame_shuffle`, a task a part, spilling what does not fit), then each
//! bucket's rows are sorted by partition and order and numbered (`frame_window`,
//! a task a bucket). Every row of a window partition lands in one bucket, so a
//! bucket is numbered alone.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, lexsort_to_indices, SortColumn, SortOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};

use super::aggregate::buckets::Buckets;
use super::aggregate::keys::{GroupKeys, KeyHasher};
use super::aggregate::ops::{bucket_batches, with_buckets};
use super::pipeline::Pipeline;
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

impl TopPerGroup {
    /// The rows of `batches` among the first `k` of their partition (by `keys`),
    /// without sorting them: a table of partitions, each keeping its k best rows'
    /// order keys as row-format bytes (compared as bytes, as sorted).
    fn keep(
        &self,
        schema: &SchemaRef,
        keys: &[Expr],
        batches: &[RecordBatch],
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
        // Per partition, its best rows so far: (order bytes, batch, row).
        let mut best: Vec<Vec<(Vec<u8>, usize, usize)>> = Vec::new();
        let mut ids = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let n = batch.num_rows();
            match &mut groups {
                Some(g) => {
                    let cols = keys
                        .iter()
                        .map(|k| k.evaluate(batch))
                        .collect::<Result<Vec<ArrayRef>>>()?;
                    g.intern(&cols, &mut ids)?;
                }
                None => {
                    ids.clear();
                    ids.resize(n, 0);
                }
            }
            let order = self
                .order_by
                .iter()
                .map(|s| s.expr.evaluate(batch))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let encoded = if order.is_empty() {
                None
            } else {
                Some(order_rows.convert_columns(&order)?)
            };
            for (row, &g) in ids.iter().enumerate() {
                let g = g as usize;
                if g >= best.len() {
                    best.resize_with(g + 1, Vec::new);
                }
                let row_key = encoded.as_ref().map(|r| r.row(row));
                let key: &[u8] = row_key.as_ref().map_or(&[], |r| r.as_ref());
                let kept = &mut best[g];
                if kept.len() < self.k {
                    kept.push((key.to_vec(), b, row));
                } else if let Some(worst) = kept
                    .iter()
                    .enumerate()
                    .max_by(|x, y| x.1 .0.cmp(&y.1 .0))
                    .map(|(i, _)| i)
                {
                    // A later row replaces the worst only when strictly better:
                    // ties keep the rows that came first. Only a row kept is copied.
                    if key < kept[worst].0.as_slice() {
                        kept[worst] = (key.to_vec(), b, row);
                    }
                }
            }
        }
        let picks: Vec<(usize, usize)> =
            best.into_iter().flatten().map(|(_, b, r)| (b, r)).collect();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        Ok(arrow::compute::interleave_record_batch(&refs, &picks)?)
    }
}

impl Operation for FrameShuffle {
    const NAME: &'static str = "frame_shuffle";
    const VERSION: u32 = 1;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let reading = reading(env, task, &self.pre)?;
        let input = reading.only_input(task)?;
        let schema = self.schema.decode()?;
        let types = self
            .keys
            .iter()
            .map(|k| k.data_type(&schema))
            .collect::<Result<Vec<DataType>>>()?;
        let hasher = KeyHasher::new(&types)?;
        let mut out = Buckets::new(
            env,
            format!("frame_shuffle {}", task.id),
            schema.clone(),
            self.buckets.max(1) as usize,
        );
        if let Some(top) = &self.top {
            // The part's rows are held, then only each window partition's first k
            // go on.
            let mut held = env.pool.reserve(format!("frame_shuffle {} rows", task.id));
            let mut rows = Vec::new();
            for_each_batch(env, input, |batch| {
                let batch = reading.pre.apply(batch, &schema)?;
                env.reserve(&mut held, batch_memory(&batch))?;
                rows.push(batch);
                Ok(true)
            })?;
            let kept = top.keep(&schema, &self.keys, &rows)?;
            drop(rows);
            drop(held);
            let keys = self
                .keys
                .iter()
                .map(|k| k.evaluate(&kept))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let of = if keys.is_empty() {
                vec![0; kept.num_rows()]
            } else {
                hasher.buckets(&keys, 0, self.buckets.max(1))?
            };
            out.add(env, &kept, &of)?;
        } else {
            for_each_batch(env, input, |batch| {
                let batch = reading.pre.apply(batch, &schema)?;
                let keys = self
                    .keys
                    .iter()
                    .map(|k| k.evaluate(&batch))
                    .collect::<Result<Vec<ArrayRef>>>()?;
                let of = if keys.is_empty() {
                    vec![0; batch.num_rows()]
                } else {
                    hasher.buckets(&keys, 0, self.buckets.max(1))?
                };
                out.add(env, &batch, &of)?;
                Ok(true)
            })?;
        }
        let published = with_buckets(&schema, &out.counts())?;
        let mut batches = out.into_batches(env).map(|b| {
            Ok(RecordBatch::try_new(
                published.clone(),
                b?.columns().to_vec(),
            )?)
        });
        env.store
            .put_batches(&task.output, published.clone(), &mut batches)
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
    fn number(
        &self,
        batch: &RecordBatch,
        keys: &[ArrayRef],
        window: &WindowColumn,
    ) -> Result<ArrayRef> {
        let n = batch.num_rows();
        let mut sort: Vec<SortColumn> = keys
            .iter()
            .map(|k| SortColumn {
                values: k.clone(),
                options: Some(SortOptions::default()),
            })
            .collect();
        let order = window
            .order_by
            .iter()
            .map(|s| s.expr.evaluate(batch))
            .collect::<Result<Vec<ArrayRef>>>()?;
        for (o, s) in order.iter().zip(&window.order_by) {
            sort.push(SortColumn {
                values: o.clone(),
                options: Some(SortOptions {
                    descending: s.descending,
                    nulls_first: s.nulls_first,
                }),
            });
        }
        let perm = if sort.is_empty() {
            UInt32Array::from_iter_values(0..n as u32)
        } else {
            lexsort_to_indices(&sort, None)?
        };
        // Partition and order keys compared as row bytes, in the sorted order.
        let encode = |cols: &[ArrayRef]| -> Result<Option<arrow::row::Rows>> {
            if cols.is_empty() {
                return Ok(None);
            }
            let taken = cols
                .iter()
                .map(|c| Ok(arrow::compute::take(c, &perm, None)?))
                .collect::<Result<Vec<_>>>()?;
            let fields = taken
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect();
            Ok(Some(RowConverter::new(fields)?.convert_columns(&taken)?))
        };
        let part_rows = encode(keys)?;
        let order_rows = encode(&order)?;
        let mut values = vec![0i64; n];
        let (mut number, mut rank, mut dense) = (0i64, 0i64, 0i64);
        for i in 0..n {
            let new_partition =
                i == 0 || part_rows.as_ref().is_some_and(|r| r.row(i) != r.row(i - 1));
            if new_partition {
                number = 0;
                rank = 0;
                dense = 0;
            }
            number += 1;
            let tie =
                !new_partition && order_rows.as_ref().is_none_or(|r| r.row(i) == r.row(i - 1));
            if !tie {
                rank = number;
                dense += 1;
            }
            values[perm.value(i) as usize] = match window.func {
                WindowFuncName::RowNumber => number,
                WindowFuncName::Rank => rank,
                WindowFuncName::DenseRank => dense,
            };
        }
        Ok(Arc::new(Int64Array::from(values)))
    }
}

impl Operation for FrameWindow {
    const NAME: &'static str = "frame_window";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let schema = self.schema.decode()?;
        let mut held = env.pool.reserve(format!("frame_window {}", task.id));
        let mut rows = Vec::new();
        for key in &task.inputs {
            for batch in bucket_batches(env.store, key, self.bucket)? {
                env.cancel.check()?;
                env.reserve(&mut held, batch_memory(&batch))?;
                rows.push(RecordBatch::try_new(
                    schema.clone(),
                    batch.columns().to_vec(),
                )?);
            }
        }
        let batch = concat_batches(&schema, &rows)?;
        drop(rows);
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
