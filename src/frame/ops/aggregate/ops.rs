//! The aggregation's operations: `group_partial` (a partition's rows into partial
//! states, cut into buckets) and `group_final` (a bucket's states from every
//! partition, merged into results).
//!
//! A partial entry is one record-batch entry whose batches are in bucket order;
//! how many batches each bucket has travels in the schema's metadata under
//! [`BUCKETS`], so a final task reads its bucket's batches alone (from a file on
//! disk, by seeking to them).

use std::fs::File;
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use serde::{Deserialize, Serialize};

use super::keys::bucket_of;
use super::{GroupBy, Grouping};
use crate::error::{Error, IoResultExt, Result};
use crate::frame::ops::pipeline::Pipeline;
use crate::frame::read::for_each_batch;
use crate::memory::{batch_memory, Reservation};
use crate::plan::{entry_file, DataRef, DataStore, Entry, Operation, Task, TaskEnv};
use crate::storage::frame::SerializedSchema;

/// The schema metadata key of a partial entry's batches a bucket (JSON list).
pub const BUCKETS: &str = "blockwise.group.buckets";

/// Aggregates one part of the input partially: reads its only input (a table
/// source's partition, or an earlier task's entry) through `pre` (the filters and
/// the key and argument columns computed), groups the rows within `table_bytes`,
/// and publishes the groups' states cut into `buckets` by key hash (see the
/// module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPartial {
    /// The grouping, over the columns `pre` yields.
    pub spec: GroupBy,
    /// The row-wise steps before the grouping.
    pub pre: Pipeline,
    /// The schema `pre` yields: the grouping's input.
    pub input: SerializedSchema,
    /// Buckets the states are cut into.
    pub buckets: u32,
    /// Bytes the table of groups may hold before it is flushed.
    pub table_bytes: u64,
}

impl Operation for GroupPartial {
    const NAME: &'static str = "group_partial";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let input = task.inputs.first().ok_or_else(|| Error::BadPlan {
            reason: format!("task {}: {} reads one input", task.id, Self::NAME),
        })?;
        let schema = self.input.decode()?;
        let mut grouping = Grouping::new(&self.spec, &schema)?;
        let buckets = self.buckets.max(1) as usize;
        let mut table = env.pool.reserve(format!("group_partial {}", task.id));
        let mut flushed = Flushed {
            buckets: vec![Vec::new(); buckets],
            held: env
                .pool
                .reserve(format!("group_partial {} states", task.id)),
        };
        for_each_batch(env, input, |batch| {
            let batch = self.pre.apply(batch, &schema)?;
            grouping.update(&batch)?;
            let size = grouping.size() as u64;
            let fits = size <= self.table_bytes
                && table.try_grow(size.saturating_sub(table.size())).is_ok();
            if !fits {
                flushed.add(&mut grouping, self.buckets, env)?;
                table.resize(grouping.size() as u64);
            }
            Ok(true)
        })?;
        flushed.add(&mut grouping, self.buckets, env)?;
        drop(table);
        let counts: Vec<usize> = flushed.buckets.iter().map(Vec::len).collect();
        let schema = with_buckets(grouping.state_schema(), &counts)?;
        let mut batches = flushed
            .buckets
            .into_iter()
            .flatten()
            .map(|b| Ok(RecordBatch::try_new(schema.clone(), b.columns().to_vec())?));
        env.store
            .put_batches(&task.output, schema.clone(), &mut batches)
    }
}

/// States flushed from a partial table, by bucket, held under a reservation.
struct Flushed {
    buckets: Vec<Vec<RecordBatch>>,
    held: Reservation,
}

impl Flushed {
    /// Moves the grouping's states here, cut by bucket.
    fn add(&mut self, grouping: &mut Grouping, buckets: u32, env: &TaskEnv<'_>) -> Result<()> {
        if grouping.is_empty() {
            return Ok(());
        }
        // Counting sort of the groups by bucket.
        let of: Vec<u32> = (0..grouping.len())
            .map(|g| bucket_of(grouping.hash(g), buckets))
            .collect();
        let states = grouping.take_states()?;
        let mut starts = vec![0usize; buckets as usize + 1];
        for &b in &of {
            starts[b as usize + 1] += 1;
        }
        for b in 0..buckets as usize {
            starts[b + 1] += starts[b];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; of.len()];
        for (g, &b) in of.iter().enumerate() {
            order[next[b as usize]] = g as u32;
            next[b as usize] += 1;
        }
        let sorted = if buckets == 1 {
            states
        } else {
            take_record_batch(&states, &UInt32Array::from(order))?
        };
        env.reserve(&mut self.held, batch_memory(&sorted))?;
        for b in 0..buckets as usize {
            let n = starts[b + 1] - starts[b];
            if n > 0 {
                self.buckets[b].push(sorted.slice(starts[b], n));
            }
        }
        Ok(())
    }
}

/// `schema` carrying the batches a bucket has.
fn with_buckets(schema: &SchemaRef, counts: &[usize]) -> Result<SchemaRef> {
    let text = serde_json::to_string(counts).map_err(|e| Error::bug("bucket counts to JSON", e))?;
    let mut meta = schema.metadata().clone();
    meta.insert(BUCKETS.to_string(), text);
    Ok(Arc::new(schema.as_ref().clone().with_metadata(meta)))
}

/// The batches of bucket `bucket` in the partial entry `key`.
///
/// # Errors
/// [`Error::Corrupt`] for an entry without its bucket counts; store and IPC errors.
fn bucket_batches(store: &dyn DataStore, key: &DataRef, bucket: u32) -> Result<Vec<RecordBatch>> {
    let (schema, stream) = store.batches(key)?;
    let counts: Vec<usize> = schema
        .metadata()
        .get(BUCKETS)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| Error::Corrupt {
            path: key.store_name().into(),
            format: "partial aggregate",
            detail: "the entry does not say which batches each bucket has".into(),
        })?;
    let b = bucket as usize;
    let Some(&n) = counts.get(b) else {
        return Err(Error::BadPlan {
            reason: format!("bucket {b} of {} buckets", counts.len()),
        });
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let first: usize = counts[..b].iter().sum();
    // An entry on disk is opened at the bucket's first batch: the others are not
    // read. One in memory is a list of batches already.
    if let Some(path) = entry_file(store, key) {
        drop(stream);
        let file = File::open(&path).at(&path)?;
        let mut reader = FileReader::try_new(file, None).map_err(|e| Error::Corrupt {
            path: path.clone(),
            format: "Arrow IPC",
            detail: e.to_string(),
        })?;
        reader.set_index(first)?;
        return reader.take(n).map(|b| Ok(b?)).collect();
    }
    stream.skip(first).take(n).collect()
}

/// Finishes one bucket of an aggregation: merges the bucket's partial states from
/// every input (the partial entries), and publishes the groups' results through
/// `post` (a `HAVING` filter, the projection of the aggregates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFinal {
    /// The grouping.
    pub spec: GroupBy,
    /// The grouping's input schema.
    pub input: SerializedSchema,
    /// The bucket.
    pub bucket: u32,
    /// The row-wise steps after the grouping.
    pub post: Pipeline,
}

impl Operation for GroupFinal {
    const NAME: &'static str = "group_final";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let input = self.input.decode()?;
        let mut grouping = Grouping::new(&self.spec, &input)?;
        let mut table = env.pool.reserve(format!("group_final {}", task.id));
        for key in &task.inputs {
            for batch in bucket_batches(env.store, key, self.bucket)? {
                env.cancel.check()?;
                grouping.merge(&batch)?;
                let more = (grouping.size() as u64).saturating_sub(table.size());
                env.reserve(&mut table, more)?;
            }
        }
        let result = grouping.finish()?;
        drop(table);
        let schema = self.post.schema(grouping.output_schema())?;
        let result = self.post.apply(result, &schema)?;
        env.store.put(
            &task.output,
            Entry::Batches {
                schema,
                batches: vec![result],
            },
        )
    }
}
