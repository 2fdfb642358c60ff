//! Operations over a query's rows that hold little: a part's rows through a
//! pipeline (`frame_pipeline`), the first rows of the parts in order
//! (`frame_limit`), every part's rows in one entry as they come (`frame_concat`),
//! and every part's rows sorted in memory, or their first rows in order
//! (`frame_sort`).

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn, SortOptions,
};
use serde::{Deserialize, Serialize};

use super::pipeline::Pipeline;
use crate::error::{Error, Result};
use crate::frame::logical::SortExpr;
use crate::frame::read::{for_each_batch, open_source, reading};
use crate::memory::batch_memory;
use crate::plan::{DataRef, DatasetRole, Entry, Operation, Task, TaskEnv};
use crate::storage::frame::SerializedSchema;

/// The rows of one input through `pre`, published as they come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FramePipeline {
    /// The steps.
    pub pre: Pipeline,
    /// The schema the steps yield.
    pub schema: SerializedSchema,
    /// Rows a published batch holds at most, each batch compact (its own
    /// buffers): what a sort run sizes its work by. As they come when `None`.
    #[serde(default)]
    pub batch_rows: Option<usize>,
}

/// `batch` cut into compact batches of at most `rows` rows: copies, so that
/// what each holds is its own rows (a slice would hold the whole batch's buffers).
fn compact(batch: &RecordBatch, rows: usize) -> Result<Vec<RecordBatch>> {
    let n = batch.num_rows();
    (0..n)
        .step_by(rows.max(1))
        .map(|start| {
            let end = (start + rows.max(1)).min(n);
            let picks = UInt32Array::from_iter_values(start as u32..end as u32);
            Ok(take_record_batch(batch, &picks)?)
        })
        .collect()
}

impl Operation for FramePipeline {
    const NAME: &'static str = "frame_pipeline";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let reading = reading(env, task, &self.pre)?;
        let input = reading.only_input(task)?;
        let schema = self.schema.decode()?;
        let mut held = env.pool.reserve(format!("frame_pipeline {}", task.id));
        let mut out = Vec::new();
        for_each_batch(env, input, |batch| {
            let batch = reading.pre.apply(batch, &schema)?;
            if batch.num_rows() == 0 {
                return Ok(true);
            }
            let pieces = match self.batch_rows {
                Some(rows) => compact(&batch, rows)?,
                None => vec![batch],
            };
            for piece in pieces {
                env.reserve(&mut held, batch_memory(&piece))?;
                out.push(piece);
            }
            Ok(true)
        })?;
        // The store takes over what was held.
        drop(held);
        env.store.put(
            &task.output,
            Entry::Batches {
                schema,
                batches: out,
            },
        )
    }
}

/// Every input's rows through `pre`, in order, published as one entry as they
/// come (the store writes an entry too large for memory to disk as it arrives):
/// the rows of an `IN` subquery gathered for the tasks that bind them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameConcat {
    /// The steps.
    pub pre: Pipeline,
    /// The schema the steps yield.
    pub schema: SerializedSchema,
}

impl Operation for FrameConcat {
    const NAME: &'static str = "frame_concat";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let reading = reading(env, task, &self.pre)?;
        let schema = self.schema.decode()?;
        // The sources are opened first: their partitions' readers borrow them.
        let sources = reading
            .inputs
            .iter()
            .map(|r| {
                Ok(match env.dataset(r.dataset())?.role {
                    DatasetRole::Input => Some(open_source(env, r.dataset())?),
                    _ => None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch>> + 'a>;
        let streams = reading.inputs.iter().zip(&sources).map(|(r, source)| {
            let stream: Result<Batches<'_>> = match (source, r) {
                (Some(source), DataRef::Partition { index, .. }) => {
                    // A table without partitions (an empty file) is one empty one.
                    match usize::try_from(*index) {
                        Ok(i) if i < source.num_partitions() => {
                            source.read_partition(i).map(|b| Box::new(b) as Batches<'_>)
                        }
                        _ => Ok(Box::new(std::iter::empty())),
                    }
                }
                (Some(_), other) => Err(Error::BadPlan {
                    reason: format!("{other} is not a partition of the table it names"),
                }),
                (None, r) => env
                    .store
                    .batches(r)
                    .map(|(_, b)| Box::new(b) as Batches<'_>),
            };
            match stream {
                Ok(s) => s,
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        });
        let mut batches = streams.flatten().map(|b| {
            env.cancel.check()?;
            reading.pre.apply(b?, &schema)
        });
        env.store
            .put_batches(&task.output, schema.clone(), &mut batches)
    }
}

/// The first `fetch` rows after `offset` of the inputs read in order through
/// `pre`; reading stops once they are found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameLimit {
    /// The steps before the limit.
    pub pre: Pipeline,
    /// The schema the steps yield.
    pub schema: SerializedSchema,
    /// Rows skipped.
    pub offset: u64,
    /// Rows kept (all when `None`).
    pub fetch: Option<u64>,
}

impl Operation for FrameLimit {
    const NAME: &'static str = "frame_limit";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let schema = self.schema.decode()?;
        let mut skip = self.offset as usize;
        let mut left = self.fetch.map_or(usize::MAX, |f| f as usize);
        let reading = reading(env, task, &self.pre)?;
        let mut held = env.pool.reserve(format!("frame_limit {}", task.id));
        let mut out = Vec::new();
        for input in reading.inputs {
            if left == 0 {
                break;
            }
            for_each_batch(env, input, |batch| {
                let batch = reading.pre.apply(batch, &schema)?;
                let n = batch.num_rows();
                if skip >= n {
                    skip -= n;
                    return Ok(true);
                }
                let kept = batch.slice(skip, (n - skip).min(left));
                skip = 0;
                left -= kept.num_rows();
                env.reserve(&mut held, batch_memory(&kept))?;
                out.push(kept);
                Ok(left > 0)
            })?;
        }
        drop(held);
        env.store.put(
            &task.output,
            Entry::Batches {
                schema,
                batches: out,
            },
        )
    }
}

/// Every input's rows through `pre`, sorted by `keys` in memory (held on the
/// pool: a result larger than the budget is refused), then `offset` and `fetch`
/// applied. With `fetch`, only that many rows are kept at any time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameSort {
    /// The steps before the sort.
    pub pre: Pipeline,
    /// The schema the steps yield.
    pub schema: SerializedSchema,
    /// The sort keys.
    pub keys: Vec<SortExpr>,
    /// Rows skipped after sorting.
    pub offset: u64,
    /// Rows kept (all when `None`).
    pub fetch: Option<u64>,
}

impl FrameSort {
    /// `batch` sorted, cut to `limit` rows.
    fn sort(&self, batch: &RecordBatch, limit: Option<usize>) -> Result<RecordBatch> {
        let columns = self
            .keys
            .iter()
            .map(|k| {
                Ok(SortColumn {
                    values: k.expr.evaluate(batch)?,
                    options: Some(SortOptions {
                        descending: k.descending,
                        nulls_first: k.nulls_first,
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let order = lexsort_to_indices(&columns, limit)?;
        Ok(take_record_batch(batch, &order)?)
    }
}

impl Operation for FrameSort {
    const NAME: &'static str = "frame_sort";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let schema = self.schema.decode()?;
        let limit = self
            .fetch
            .map(|f| usize::try_from(f.saturating_add(self.offset)).unwrap_or(usize::MAX));
        let reading = reading(env, task, &self.pre)?;
        let mut held = env.pool.reserve(format!("frame_sort {}", task.id));
        let mut rows: Vec<RecordBatch> = Vec::new();
        for input in reading.inputs {
            for_each_batch(env, input, |batch| {
                let batch = reading.pre.apply(batch, &schema)?;
                env.reserve(&mut held, batch_memory(&batch))?;
                rows.push(batch);
                // With a limit, what is held is cut back to it as it grows.
                if let Some(limit) = limit {
                    let n: usize = rows.iter().map(RecordBatch::num_rows).sum();
                    if n > limit.saturating_mul(2).max(8192) {
                        let all = concat_batches(&schema, &rows)?;
                        rows = vec![self.sort(&all, Some(limit))?];
                        let kept = batch_memory(&rows[0]);
                        if kept <= held.size() {
                            held.resize(kept);
                        } else {
                            let more = kept - held.size();
                            env.reserve(&mut held, more)?;
                        }
                    }
                }
                Ok(true)
            })?;
        }
        let all = concat_batches(&schema, &rows)?;
        drop(rows);
        // The sorted copy is held beside the rows until they go.
        env.reserve(&mut held, batch_memory(&all))?;
        let sorted = self.sort(&all, limit)?;
        drop(all);
        let skip = usize::try_from(self.offset)
            .unwrap_or(usize::MAX)
            .min(sorted.num_rows());
        let kept = sorted.slice(skip, sorted.num_rows() - skip);
        drop(held);
        env.store.put(
            &task.output,
            Entry::Batches {
                schema,
                batches: vec![kept],
            },
        )
    }
}
