//! Rows cut into buckets and held until read back a bucket at a time, in memory
//! while the pool has room and in spill files when it has not: what a final task
//! whose bucket does not fit partitions again. (What a task publishes cut into
//! buckets goes through [`super::bucketed`] instead.)
//!
//! Each batch added is sorted by bucket once, and each bucket keeps a slice of
//! it. Slices share their batch, so no bucket's rows could be freed before every
//! bucket's were: every few megabytes, each bucket's slices are copied into one
//! chunk of its own ([`Buckets::compact`]).

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::memory::{batch_memory, Reservation, SpillFile};
use crate::plan::TaskEnv;

/// Bytes of fresh slices a bucket gathers, on average, before they are copied
/// into a chunk: a reader of the bucket then reads batches of about this size,
/// a message each.
const CHUNK_BYTES: u64 = 256 << 10;

/// Bounds on the bytes of fresh slices held before compacting: the copy holds
/// them twice for a moment.
const COMPACT_MIN: u64 = 4 << 20;
const COMPACT_MAX: u64 = 32 << 20;

/// What a bucket holds, in order.
enum Held {
    /// Chunks: batches of this bucket's rows alone.
    Memory(Vec<RecordBatch>),
    Spilled(SpillFile),
}

/// Batches by bucket.
pub struct Buckets {
    schema: SchemaRef,
    buckets: Vec<Vec<Held>>,
    /// Each bucket's slices of the batches added since the last compaction
    /// (which they share, so that none is freed before all are).
    fresh: Vec<Vec<RecordBatch>>,
    /// Bytes of the batches the fresh slices share.
    fresh_bytes: u64,
    /// Fresh bytes that start a compaction.
    compact_at: u64,
    /// Everything held in memory: chunks and the fresh batches.
    held: Reservation,
}

impl Buckets {
    /// `n` empty buckets of batches of `schema`, reserving from the job's pool as
    /// `name`.
    pub fn new(env: &TaskEnv<'_>, name: String, schema: SchemaRef, n: usize) -> Buckets {
        Buckets {
            schema,
            buckets: (0..n).map(|_| Vec::new()).collect(),
            fresh: (0..n).map(|_| Vec::new()).collect(),
            fresh_bytes: 0,
            compact_at: (n as u64 * CHUNK_BYTES).clamp(COMPACT_MIN, COMPACT_MAX),
            held: env.pool.reserve(name),
        }
    }

    /// Adds `batch`'s rows to the buckets `of` names, one a row (rows keep their
    /// order within a bucket). When the pool has no room for these, spills the
    /// store's least recently used entries, then the buckets' batches.
    ///
    /// # Errors
    /// Spill errors (a full disk, the quota).
    pub fn add(&mut self, env: &TaskEnv<'_>, batch: &RecordBatch, of: &[u32]) -> Result<()> {
        let n = self.buckets.len();
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (sorted, starts) = sort_by_bucket(batch, of, n)?;
        let bytes = batch_memory(&sorted);
        self.make_room(env, bytes)?;
        for b in 0..n {
            let rows = (starts[b + 1] - starts[b]) as usize;
            if rows > 0 {
                self.fresh[b].push(sorted.slice(starts[b] as usize, rows));
            }
        }
        self.fresh_bytes += bytes;
        if self.fresh_bytes >= self.compact_at {
            self.compact(env)?;
        }
        Ok(())
    }

    /// Reserves `bytes` more, spilling the buckets' batches when the pool has
    /// no room even after the monitor spilled the store's entries (each of them
    /// is written and read once, where a bucket spilled is read back again
    /// within the task).
    fn make_room(&mut self, env: &TaskEnv<'_>, bytes: u64) -> Result<()> {
        if env.reserve(&mut self.held, bytes).is_err() {
            self.spill(env)?;
            env.reserve(&mut self.held, bytes)?;
        }
        Ok(())
    }

    /// Copies each bucket's fresh slices into a chunk of its own, freeing the
    /// batches they shared; spills instead when the pool has no room for the
    /// copy.
    fn compact(&mut self, env: &TaskEnv<'_>) -> Result<()> {
        if self.fresh_bytes == 0 {
            return Ok(());
        }
        if env.reserve(&mut self.held, self.fresh_bytes).is_err() {
            return self.spill(env);
        }
        for (bucket, fresh) in self.buckets.iter_mut().zip(&mut self.fresh) {
            if fresh.is_empty() {
                continue;
            }
            let chunk = concat_batches(&self.schema, fresh.iter())?;
            fresh.clear();
            match bucket.last_mut() {
                Some(Held::Memory(chunks)) => chunks.push(chunk),
                _ => bucket.push(Held::Memory(vec![chunk])),
            }
        }
        self.held.shrink(self.fresh_bytes);
        self.fresh_bytes = 0;
        Ok(())
    }

    /// Writes every bucket's batches in memory to spill files.
    fn spill(&mut self, env: &TaskEnv<'_>) -> Result<()> {
        for (bucket, fresh) in self.buckets.iter_mut().zip(&mut self.fresh) {
            let mut list = match bucket.last_mut() {
                Some(Held::Memory(chunks)) => std::mem::take(chunks),
                _ => Vec::new(),
            };
            list.append(fresh);
            if list.is_empty() {
                continue;
            }
            let file = env.spill.write_batches(&self.schema, &list)?;
            if matches!(bucket.last(), Some(Held::Memory(_))) {
                bucket.pop();
            }
            bucket.push(Held::Spilled(file));
        }
        self.fresh_bytes = 0;
        self.held.resize(0);
        Ok(())
    }

    /// The batches of each bucket in turn: what a final task re-partitioning its
    /// bucket finishes one part at a time.
    pub fn into_buckets(self) -> (Vec<Vec<BucketPart>>, Reservation) {
        let parts = self
            .buckets
            .into_iter()
            .zip(self.fresh)
            .map(|(bucket, fresh)| {
                let mut parts: Vec<BucketPart> = bucket
                    .into_iter()
                    .map(|h| match h {
                        Held::Memory(list) => BucketPart::Memory(list),
                        Held::Spilled(file) => BucketPart::Spilled(file),
                    })
                    .collect();
                if !fresh.is_empty() {
                    parts.push(BucketPart::Memory(fresh));
                }
                parts
            })
            .collect();
        (parts, self.held)
    }
}

/// `batch`'s rows sorted by the bucket `of` names for each (of `n`), in their
/// order within a bucket (a counting sort), and where each bucket's rows start
/// in the result (and where the last one's end): each bucket is a slice.
///
/// # Errors
/// Arrow's, taking the rows.
pub(super) fn sort_by_bucket(
    batch: &RecordBatch,
    of: &[u32],
    n: usize,
) -> Result<(RecordBatch, Vec<u32>)> {
    let mut starts = vec![0u32; n + 1];
    for &b in of {
        starts[b as usize + 1] += 1;
    }
    for b in 0..n {
        starts[b + 1] += starts[b];
    }
    if n == 1 {
        return Ok((batch.clone(), starts));
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; of.len()];
    for (row, &b) in of.iter().enumerate() {
        order[next[b as usize] as usize] = row as u32;
        next[b as usize] += 1;
    }
    Ok((take_record_batch(batch, &UInt32Array::from(order))?, starts))
}

/// Part of one bucket's batches.
pub enum BucketPart {
    /// Batches in memory.
    Memory(Vec<RecordBatch>),
    /// Batches in a spill file.
    Spilled(SpillFile),
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;
    use crate::exec::{DirStore, Environment};
    use crate::memory::{DiskManager, MemoryPool, SpillCompression, SpillStore};
    use crate::plan::{Plan, Resources};
    use crate::sys::CancelToken;

    /// The rows cut in these tests: an id and a name (so a chunk has string
    /// bytes too).
    pub(in crate::frame::ops::aggregate) fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]))
    }

    /// 60 batches of 20,000 rows (ids 0 to 1.2 million), each with its rows'
    /// buckets: the id modulo 5.
    pub(in crate::frame::ops::aggregate) fn batches(
        schema: &SchemaRef,
    ) -> impl Iterator<Item = (RecordBatch, Vec<u32>)> + '_ {
        (0..60i64).map(move |i| {
            let from = i * 20_000;
            let ids = Int64Array::from_iter_values(from..from + 20_000);
            let names =
                StringArray::from_iter_values((from..from + 20_000).map(|i| format!("r{i}")));
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(names)]).unwrap();
            let of = (from..from + 20_000).map(|r| (r % 5) as u32).collect();
            (batch, of)
        })
    }

    /// Each bucket's ids, in the order added.
    pub(in crate::frame::ops::aggregate) fn expected() -> Vec<Vec<i64>> {
        (0..5)
            .map(|b| (0..1_200_000).filter(|i| i % 5 == b).collect())
            .collect()
    }

    /// Cuts 60 batches of 20,000 rows into 5 buckets (by id modulo 5) under a pool
    /// of `limit` bytes, then reads them back a bucket at a time; returns each
    /// bucket's ids, in the order read, and whether anything spilled.
    fn cut(limit: u64) -> (Vec<Vec<i64>>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema();
        let store = DirStore::new(&dir.path().join("work")).unwrap();
        let pool = MemoryPool::new(limit);
        let spill = SpillStore::new(
            DiskManager::new(dir.path(), None).unwrap(),
            SpillCompression::None,
        );
        let (resources, cancel, plan) = (Resources::default(), CancelToken::new(), Plan::new());
        let env = Environment::new(&store, &pool, &spill, &resources);
        let env = env.task_env(&plan, &cancel, 1, &[]);
        let mut buckets = Buckets::new(&env, "cut".into(), schema.clone(), 5);
        let mut added = 0;
        for (b, of) in batches(&schema) {
            added += batch_memory(&b);
            buckets.add(&env, &b, &of).unwrap();
            // The rows are held once, and the fresh slices' batches at most once
            // more while they are copied into chunks.
            assert!(
                pool.reserved() <= added + COMPACT_MIN,
                "{}",
                pool.reserved()
            );
            assert!(pool.peak_reserved() <= limit);
        }
        let spilled = spill.spill_files() > 0;
        let (parts, held) = buckets.into_buckets();
        assert_eq!(parts.len(), 5);
        let mut read: Vec<Vec<i64>> = vec![Vec::new(); 5];
        for (bucket, parts) in parts.into_iter().enumerate() {
            for part in parts {
                let list = match part {
                    BucketPart::Memory(list) => list,
                    BucketPart::Spilled(file) => env.spill.read_batches(&file).unwrap(),
                };
                for b in list {
                    let ids = b.column(0).as_primitive::<Int64Type>();
                    read[bucket].extend(ids.values().iter());
                }
            }
        }
        drop(held);
        assert_eq!(pool.reserved(), 0);
        (read, spilled)
    }

    #[test]
    fn buckets_hold_rows_once_and_give_them_back_a_bucket_at_a_time() {
        let expected = expected();
        // In memory: compacted into chunks several times over (about 19 MB of rows).
        let (read, spilled) = cut(1 << 30);
        assert!(!spilled);
        assert_eq!(read, expected, "rows in bucket order, in the order added");
        // Under a tenth of the rows: spilled, and read back the same.
        let (read, spilled) = cut(2 << 20);
        assert!(spilled);
        assert_eq!(read, expected);
    }
}
