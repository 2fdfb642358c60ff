//! An entry of rows cut into buckets, and how a reader finds one bucket's rows
//! in it: what a partial aggregation publishes for the final tasks, and what a
//! shuffle publishes for the window tasks.
//!
//! The rows go into the entry in rounds: a [`BucketWriter`] sorts each batch it
//! is given by bucket and holds it until they reach its budget (or the pool's
//! room), then writes each bucket's slices of them on, gathered in batches of a
//! few MB. (Gathering a bucket's rows from unsorted batches instead, one copy
//! fewer, took twice as long: every row was a cache miss in a round of 256 MB.) So the rows are
//! written once, where the task publishes them: a partial aggregation of q10 at
//! 1e8 rows under 1 GiB, which passes 7 GB of states on, had spilled them to
//! files of its own and written them again when it published (13 GB written in
//! 23 s, faster than the disk took them).
//!
//! Which batches a bucket has in each round is known only when the last round
//! is written, so it is the entry's late metadata ([`BatchWriter::finish`]):
//! under [`BUCKETS`], a JSON list of rounds, each the number of batches every
//! bucket has in it, in bucket order.

use std::collections::HashMap;
use std::fs::File;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;

use super::buckets::sort_by_bucket;
use crate::error::{Error, IoResultExt, Result};
use crate::memory::{batch_memory, Reservation};
use crate::plan::{entry_file, with_metadata, BatchWriter, DataRef, DataStore, TaskEnv};

/// The schema metadata key of a bucketed entry's index (see the module).
pub const BUCKETS: &str = "blockwise.group.buckets";

/// Bytes of a batch written for one bucket, about: a bucket's rows of a round
/// go out in batches of this size (a final task merges them a batch at a time).
const PIECE_BYTES: u64 = 1 << 20;

/// Rows cut into buckets and published as one entry, a round at a time (see the
/// module).
pub struct BucketWriter<'s> {
    buckets: usize,
    /// Batches added since the last round, each sorted by bucket, with where
    /// each bucket's rows start in it (and where the last one's end).
    held: Vec<(RecordBatch, Vec<u32>)>,
    /// What `held` takes.
    reservation: Reservation,
    /// Bytes held at most, whatever the pool has.
    budget: u64,
    store: &'s dyn DataStore,
    key: DataRef,
    schema: SchemaRef,
    /// Opened with the first round.
    writer: Option<Box<dyn BatchWriter + 's>>,
    /// Batches each bucket has in each round written.
    rounds: Vec<Vec<u32>>,
}

impl<'s> BucketWriter<'s> {
    /// An entry of `buckets` buckets of rows of `schema`, published at `key`,
    /// reserving from the job's pool as `name`.
    pub fn new(
        env: &TaskEnv<'s>,
        name: String,
        key: &DataRef,
        schema: SchemaRef,
        buckets: usize,
    ) -> Self {
        BucketWriter {
            buckets: buckets.max(1),
            held: Vec::new(),
            reservation: env.pool.reserve(name),
            budget: u64::MAX,
            store: env.store,
            key: key.clone(),
            schema,
            writer: None,
            rounds: Vec::new(),
        }
    }

    /// Holds at most `budget` bytes before writing a round, not only when the
    /// pool is short: tasks running together then each keep their share.
    pub fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
    }

    /// Adds `batch`'s rows to the buckets `of` names, one a row (rows keep their
    /// order within a bucket). Writes a round first when holding them would
    /// pass the budget or the pool's room.
    ///
    /// # Errors
    /// The store's, writing a round; [`Error::MemoryLimit`] when the batch does
    /// not fit the pool even alone.
    pub fn add(&mut self, env: &TaskEnv<'_>, batch: &RecordBatch, of: &[u32]) -> Result<()> {
        let n = self.buckets;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Sorted while the batch is in cache: each bucket is then a slice of
        // it, copied out in bulk in the round.
        let (sorted, starts) = sort_by_bucket(batch, of, n)?;
        let bytes = batch_memory(&sorted);
        // A round written is written once, where the store would write one of
        // its entries to make room and read it back later: the round goes first.
        let over = self.reservation.size().saturating_add(bytes) > self.budget;
        if over || self.reservation.try_grow(bytes).is_err() {
            self.write_round(env, false)?;
            env.reserve(&mut self.reservation, bytes)?;
        }
        self.held.push((sorted, starts));
        Ok(())
    }

    /// The entry's writer, opened now if it is not yet: for an entry of
    /// `expected` bytes at least.
    fn writer(&mut self, expected: u64) -> Result<&mut Box<dyn BatchWriter + 's>> {
        Ok(match &mut self.writer {
            Some(writer) => writer,
            slot @ None => slot.insert(self.store.batch_writer(
                &self.key,
                self.schema.clone(),
                expected,
            )?),
        })
    }

    /// Writes what is held, bucket by bucket, as a round (the `last`, or one of
    /// several): each bucket's slices of the held batches, gathered into batches
    /// of about [`PIECE_BYTES`].
    fn write_round(&mut self, env: &TaskEnv<'_>, last: bool) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        env.cancel.check()?;
        let Some(schema) = self.held.first().map(|(b, _)| b.schema()) else {
            return Ok(());
        };
        // A first round that is not the last: more than the task holds is
        // coming, and the store had best not hold it either.
        let expected = match last {
            true => self.reservation.size(),
            false => u64::MAX,
        };
        self.writer(expected)?;
        let Some(writer) = &mut self.writer else {
            return Err(Error::bug("a round without its entry", &self.key));
        };
        // A slice's bytes, by its share of its batch's rows (a slice's arrays
        // report their whole buffers).
        let row_bytes: Vec<u64> = self
            .held
            .iter()
            .map(|(b, _)| batch_memory(b) / b.num_rows().max(1) as u64)
            .collect();
        let mut counts = vec![0u32; self.buckets];
        let mut piece = Vec::new();
        for (b, count) in counts.iter_mut().enumerate() {
            let mut bytes = 0u64;
            for ((batch, starts), row_bytes) in self.held.iter().zip(&row_bytes) {
                let rows = (starts[b + 1] - starts[b]) as usize;
                if rows == 0 {
                    continue;
                }
                piece.push(batch.slice(starts[b] as usize, rows));
                bytes += rows as u64 * row_bytes;
                if bytes >= PIECE_BYTES {
                    writer.write(concat_batches(&schema, &piece)?)?;
                    *count += 1;
                    piece.clear();
                    bytes = 0;
                }
            }
            if !piece.is_empty() {
                writer.write(concat_batches(&schema, &piece)?)?;
                *count += 1;
                piece.clear();
            }
        }
        self.held.clear();
        self.reservation.resize(0);
        self.rounds.push(counts);
        Ok(())
    }

    /// Writes the last round and publishes the entry with its index.
    ///
    /// # Errors
    /// As [`BucketWriter::add`].
    pub fn finish(mut self, env: &TaskEnv<'_>) -> Result<()> {
        self.write_round(env, true)?;
        let index = serde_json::to_string(&self.rounds)
            .map_err(|e| Error::bug("bucket index to JSON", e))?;
        self.writer(0)?;
        match self.writer {
            Some(writer) => writer.finish(HashMap::from([(BUCKETS.to_string(), index)])),
            None => Err(Error::bug("an entry never opened", &self.key)),
        }
    }
}

/// The batches of bucket `bucket` in the bucketed entry `key`.
///
/// # Errors
/// [`Error::Corrupt`] for an entry without its index; store and IPC errors.
pub fn bucket_batches(
    store: &dyn DataStore,
    key: &DataRef,
    bucket: u32,
) -> Result<Vec<RecordBatch>> {
    // An entry on disk is opened at each round's batches of the bucket: the
    // others are not read. One in memory is a list of batches already.
    if let Some(path) = entry_file(store, key) {
        let file = File::open(&path).at(&path)?;
        let corrupt = |e: arrow::error::ArrowError| Error::Corrupt {
            path: path.clone(),
            format: "Arrow IPC",
            detail: e.to_string(),
        };
        let mut reader = FileReader::try_new(file, None).map_err(corrupt)?;
        let schema = with_metadata(&reader.schema(), reader.custom_metadata());
        let mut out = Vec::new();
        for (first, n) in spans(&schema, key, bucket)? {
            reader.set_index(first).map_err(corrupt)?;
            for _ in 0..n {
                match reader.next() {
                    Some(batch) => out.push(batch.map_err(corrupt)?),
                    None => return Err(truncated(key)),
                }
            }
        }
        return Ok(out);
    }
    let (schema, stream) = store.batches(key)?;
    let spans = spans(&schema, key, bucket)?;
    let mut wanted = spans
        .iter()
        .flat_map(|&(first, n)| first..first + n)
        .peekable();
    let mut out = Vec::new();
    for (i, batch) in stream.enumerate() {
        let Some(&next) = wanted.peek() else { break };
        if i == next {
            out.push(batch?);
            wanted.next();
        }
    }
    if wanted.next().is_some() {
        return Err(truncated(key));
    }
    Ok(out)
}

/// Where bucket `bucket`'s batches are in the entry `key` of `schema`: the
/// first batch and the count, a round each.
fn spans(schema: &SchemaRef, key: &DataRef, bucket: u32) -> Result<Vec<(usize, usize)>> {
    let rounds: Vec<Vec<u32>> = schema
        .metadata()
        .get(BUCKETS)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| Error::Corrupt {
            path: key.store_name().into(),
            format: "bucketed entry",
            detail: "the entry does not say which batches each bucket has".into(),
        })?;
    let b = bucket as usize;
    let mut first = 0usize;
    let mut spans = Vec::with_capacity(rounds.len());
    for round in &rounds {
        let Some(&n) = round.get(b) else {
            return Err(Error::BadPlan {
                reason: format!("bucket {b} of an entry of {} buckets", round.len()),
            });
        };
        let before: usize = round[..b].iter().map(|&c| c as usize).sum();
        if n > 0 {
            spans.push((first + before, n as usize));
        }
        first += round.iter().map(|&c| c as usize).sum::<usize>();
    }
    Ok(spans)
}

/// An entry with fewer batches than its index says.
fn truncated(key: &DataRef) -> Error {
    Error::Corrupt {
        path: key.store_name().into(),
        format: "bucketed entry",
        detail: "the entry has fewer batches than its index says".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use super::super::buckets::tests::{batches, expected, schema};
    use super::*;
    use crate::exec::{DirStore, Environment, MemoryStore};
    use crate::memory::{DiskManager, MemoryPool, SpillCompression, SpillStore};
    use crate::plan::{Plan, Resources};
    use crate::sys::CancelToken;

    /// Publishes 60 batches of 20,000 rows cut into 5 buckets (by id modulo 5)
    /// in `store`, holding at most `budget` bytes; returns each bucket's ids as
    /// `bucket_batches` reads them, and the rounds written.
    fn publish(store: &dyn DataStore, pool: &MemoryPool, budget: u64) -> (Vec<Vec<i64>>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema();
        let spill = SpillStore::new(
            DiskManager::new(dir.path(), None).unwrap(),
            SpillCompression::None,
        );
        let (resources, cancel, plan) = (Resources::default(), CancelToken::new(), Plan::new());
        let env = Environment::new(store, pool, &spill, &resources);
        let env = env.task_env(&plan, &cancel, 1, &[]);
        let key = DataRef::partition("cut", 0);
        let mut out = BucketWriter::new(&env, "cut".into(), &key, schema.clone(), 5);
        out.set_budget(budget);
        for (b, of) in batches(&schema) {
            out.add(&env, &b, &of).unwrap();
            assert!(out.reservation.size() <= budget);
        }
        assert!(
            out.reservation.size() > 0,
            "the last round is held until the end"
        );
        let rounds = out.rounds.len() + 1;
        out.finish(&env).unwrap();
        let read = (0..5)
            .map(|b| {
                let batches = bucket_batches(store, &key, b).unwrap();
                assert!(batches.len() >= rounds, "a batch a round at least");
                batches
                    .iter()
                    .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                    .collect()
            })
            .collect();
        let bad = bucket_batches(store, &key, 5).unwrap_err();
        assert!(matches!(bad, Error::BadPlan { .. }), "{bad}");
        (read, rounds)
    }

    #[test]
    fn a_bucketed_entry_written_in_rounds_gives_each_bucket_its_rows_in_order() {
        let expected = expected();
        let dir = tempfile::tempdir().unwrap();
        // In a directory (run-task, workers): one round, then several.
        let disk = DirStore::new(&dir.path().join("dir")).unwrap();
        let pool = MemoryPool::new(1 << 30);
        assert_eq!(publish(&disk, &pool, u64::MAX), (expected.clone(), 1));
        let disk = DirStore::new(&dir.path().join("dir2")).unwrap();
        let (read, rounds) = publish(&disk, &pool, 4 << 20);
        assert_eq!(read, expected);
        assert!(rounds > 3, "{rounds}");
        assert_eq!(pool.reserved(), 0);
        // In the memory store: held in memory when written in one round, on
        // disk from the first round when there are several.
        let pool = MemoryPool::new(1 << 30);
        let disk = Arc::new(DirStore::new(&dir.path().join("mem")).unwrap());
        let store = MemoryStore::new(disk.clone(), pool.clone(), None, HashSet::new());
        assert_eq!(publish(&store, &pool, u64::MAX), (expected.clone(), 1));
        assert!(!disk.contains(&DataRef::partition("cut", 0)));
        store.release(&DataRef::partition("cut", 0));
        let (read, rounds) = publish(&store, &pool, 4 << 20);
        assert_eq!(read, expected);
        assert!(rounds > 3, "{rounds}");
        assert!(disk.contains(&DataRef::partition("cut", 0)));
        assert_eq!(pool.reserved(), 0);
    }
}
