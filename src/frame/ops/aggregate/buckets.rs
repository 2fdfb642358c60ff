//! Rows cut into buckets and held until read back in bucket order, in memory
//! while the pool has room and in spill files when it has not: what a partial
//! task flushes, and what a final task whose bucket does not fit partitions again.

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::memory::{batch_memory, Reservation, SpillFile};
use crate::plan::TaskEnv;

/// What a bucket holds, in order.
enum Held {
    Memory(Vec<RecordBatch>),
    Spilled(SpillFile),
}

/// Batches by bucket.
pub struct Buckets {
    schema: SchemaRef,
    buckets: Vec<Vec<Held>>,
    /// Bytes each bucket holds in memory.
    in_memory: Vec<u64>,
    held: Reservation,
}

impl Buckets {
    /// `n` empty buckets of batches of `schema`, reserving from the job's pool as
    /// `name`.
    pub fn new(env: &TaskEnv<'_>, name: String, schema: SchemaRef, n: usize) -> Buckets {
        Buckets {
            schema,
            buckets: (0..n).map(|_| Vec::new()).collect(),
            in_memory: vec![0; n],
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
        // A counting sort of the rows by bucket, then one slice a bucket.
        let mut starts = vec![0usize; n + 1];
        for &b in of {
            starts[b as usize + 1] += 1;
        }
        for b in 0..n {
            starts[b + 1] += starts[b];
        }
        let sorted = if n == 1 {
            batch.clone()
        } else {
            let mut next = starts.clone();
            let mut order = vec![0u32; of.len()];
            for (row, &b) in of.iter().enumerate() {
                order[next[b as usize]] = row as u32;
                next[b as usize] += 1;
            }
            take_record_batch(batch, &UInt32Array::from(order))?
        };
        let bytes = batch_memory(&sorted);
        // Entries of the store go to disk first: each is written once and read
        // once, where buckets spilled here would be written again when the task
        // publishes them.
        if env.reserve(&mut self.held, bytes).is_err() {
            self.spill(env)?;
            env.reserve(&mut self.held, bytes)?;
        }
        for b in 0..n {
            let rows = starts[b + 1] - starts[b];
            if rows == 0 {
                continue;
            }
            let slice = sorted.slice(starts[b], rows);
            // The slices share the sorted batch: a bucket's share is counted.
            self.in_memory[b] += bytes * rows as u64 / sorted.num_rows() as u64;
            match self.buckets[b].last_mut() {
                Some(Held::Memory(list)) => list.push(slice),
                _ => self.buckets[b].push(Held::Memory(vec![slice])),
            }
        }
        Ok(())
    }

    /// Writes every bucket's batches in memory to spill files.
    fn spill(&mut self, env: &TaskEnv<'_>) -> Result<()> {
        for (b, bucket) in self.buckets.iter_mut().enumerate() {
            let Some(Held::Memory(list)) = bucket.last_mut() else {
                continue;
            };
            let list = std::mem::take(list);
            let file = env.spill.write_batches(&self.schema, &list)?;
            bucket.pop();
            bucket.push(Held::Spilled(file));
            self.in_memory[b] = 0;
        }
        self.held.resize(0);
        Ok(())
    }

    /// Batches each bucket holds (a spill file counting as one).
    pub fn counts(&self) -> Vec<usize> {
        self.buckets
            .iter()
            .map(|b| {
                b.iter()
                    .map(|h| match h {
                        Held::Memory(list) => usize::from(!list.is_empty()),
                        Held::Spilled(_) => 1,
                    })
                    .sum()
            })
            .collect()
    }

    /// Every bucket's batches, in bucket order, read back from the spill files as
    /// the iterator goes; what a bucket holds in memory and each spill file come
    /// as one batch each (so that [`Buckets::counts`] describes what it yields).
    /// A bucket's slices of many batches are small: whole, a reader of the bucket
    /// reads a few large batches, not thousands of small ones (which cost it a
    /// message each, and fragment the heap).
    pub fn into_batches<'e>(
        self,
        env: &'e TaskEnv<'_>,
    ) -> impl Iterator<Item = Result<RecordBatch>> + 'e {
        let schema = self.schema.clone();
        let held = self.held;
        self.buckets.into_iter().flatten().flat_map(move |h| {
            let _ = &held;
            let out: Vec<Result<RecordBatch>> = match h {
                Held::Memory(list) if list.is_empty() => Vec::new(),
                Held::Memory(list) => {
                    vec![arrow::compute::concat_batches(&schema, &list).map_err(Into::into)]
                }
                Held::Spilled(file) => vec![env
                    .spill
                    .read_batches(&file)
                    .and_then(|b| Ok(arrow::compute::concat_batches(&schema, &b)?))],
            };
            out
        })
    }

    /// The batches of each bucket in turn: what a final task re-partitioning its
    /// bucket finishes one part at a time.
    pub fn into_buckets(self) -> (Vec<Vec<BucketPart>>, Reservation) {
        let parts = self
            .buckets
            .into_iter()
            .map(|bucket| {
                bucket
                    .into_iter()
                    .map(|h| match h {
                        Held::Memory(list) => BucketPart::Memory(list),
                        Held::Spilled(file) => BucketPart::Spilled(file),
                    })
                    .collect()
            })
            .collect();
        (parts, self.held)
    }
}

/// Part of one bucket's batches.
pub enum BucketPart {
    /// Batches in memory.
    Memory(Vec<RecordBatch>),
    /// Batches in a spill file.
    Spilled(SpillFile),
}
