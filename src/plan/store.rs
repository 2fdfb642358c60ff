//! The data store: where a task finds its inputs and publishes its output, addressed
//! by [`DataRef`]. The operations see only this trait; the executor chooses the store
//! (in memory with spill for the local executor, a shared directory for `run-task` and
//! remote workers), so an operation runs the same on either.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::DataRef;
use crate::error::Result;

/// One intermediate value.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Record batches of one schema (a decoded partition, a sorted run); stored as an
    /// Arrow IPC file.
    Batches {
        /// The batches' schema (kept for an empty list).
        schema: SchemaRef,
        /// The batches, in order.
        batches: Vec<RecordBatch>,
    },
    /// Raw bytes (an array chunk in C order, an encoded part of an output file);
    /// stored as they are.
    Bytes(bytes::Bytes),
    /// A small value (sort fences, a chain's state, a completion marker); stored as
    /// JSON.
    Json(serde_json::Value),
}

impl Entry {
    /// Bytes the entry holds in memory.
    pub fn memory_bytes(&self) -> u64 {
        match self {
            Entry::Batches { batches, .. } => {
                batches.iter().map(crate::memory::batch_memory).sum::<u64>()
            }
            Entry::Bytes(b) => b.len() as u64,
            Entry::Json(v) => v.to_string().len() as u64,
        }
    }

    /// What kind of entry this is, as messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Batches { .. } => "record batches",
            Entry::Bytes(_) => "bytes",
            Entry::Json(_) => "a JSON value",
        }
    }
}

/// A stream of record batches read from an entry, without holding them all.
pub type BatchStream = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// A record-batch entry being written: batches go in one at a time, as a task
/// makes them, and [`BatchWriter::finish`] publishes the entry. Dropped
/// unfinished, it publishes nothing and leaves no file.
pub trait BatchWriter {
    /// Appends `batch` (of the entry's schema, whatever its metadata).
    ///
    /// # Errors
    /// I/O errors writing it (a full disk, a spill quota).
    fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// Publishes the entry, its schema's metadata extended by `metadata`: what is
    /// known only once every batch is written (which batches each bucket has).
    ///
    /// # Errors
    /// As [`BatchWriter::write`].
    fn finish(self: Box<Self>, metadata: HashMap<String, String>) -> Result<()>;
}

/// `schema` with `extra` added to its metadata (the same schema when there is
/// nothing to add): how an entry's schema reads once its writer's late metadata
/// ([`BatchWriter::finish`]) is known.
pub fn with_metadata(schema: &SchemaRef, extra: &HashMap<String, String>) -> SchemaRef {
    if extra.is_empty() {
        return schema.clone();
    }
    let mut meta = schema.metadata().clone();
    meta.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    Arc::new(schema.as_ref().clone().with_metadata(meta))
}

/// Where intermediates live while a plan runs.
///
/// Every method takes `&self` and may be called from any thread. Publishing is
/// atomic and idempotent: a reader sees a whole entry or none, and two tasks
/// publishing the same key (a retried or duplicated task) leave one whole entry and
/// no error.
pub trait DataStore: Send + Sync {
    /// Publishes `entry` at `key`.
    ///
    /// # Errors
    /// I/O errors writing it (a full disk, a spill quota).
    fn put(&self, key: &DataRef, entry: Entry) -> Result<()>;

    /// A writer of an [`Entry::Batches`] of `schema` at `key`, published when it
    /// finishes, that need not hold its batches: an entry too large to keep in
    /// memory is written to disk as it arrives, and one `expected_bytes` says
    /// will be (the caller knows more are coming) from its first batch.
    ///
    /// # Errors
    /// As [`DataStore::put`].
    fn batch_writer<'s>(
        &'s self,
        key: &DataRef,
        schema: SchemaRef,
        expected_bytes: u64,
    ) -> Result<Box<dyn BatchWriter + 's>>;

    /// Publishes the batches `batches` yields, of `schema`, at `key` as one
    /// [`Entry::Batches`], through [`DataStore::batch_writer`].
    ///
    /// # Errors
    /// The iterator's errors (nothing is published then); as [`DataStore::put`].
    fn put_batches(
        &self,
        key: &DataRef,
        schema: SchemaRef,
        batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        let mut writer = self.batch_writer(key, schema, 0)?;
        for batch in batches {
            writer.write(batch?)?;
        }
        writer.finish(HashMap::new())
    }

    /// The entry at `key`.
    ///
    /// # Errors
    /// [`Error::MissingEntry`](crate::Error::MissingEntry) when nothing is published
    /// there; I/O and decoding errors reading it.
    fn get(&self, key: &DataRef) -> Result<Arc<Entry>>;

    /// The batches of the entry at `key`, one at a time: an entry on disk is read as
    /// the stream advances, not all at once.
    ///
    /// # Errors
    /// As [`DataStore::get`]; [`Error::WrongEntry`](crate::Error::WrongEntry) when
    /// the entry is not record batches.
    fn batches(&self, key: &DataRef) -> Result<(SchemaRef, BatchStream)>;

    /// Whether an entry is published at `key` (in memory or on disk).
    fn contains(&self, key: &DataRef) -> bool;

    /// Forgets the entry at `key` (its last consumer finished); nothing happens when
    /// there is none.
    fn release(&self, key: &DataRef);

    /// The directory entries are published in.
    fn dir(&self) -> &Path;
}

/// The file of the record-batch entry `key` in `store`'s directory, if it is there:
/// `NAME.arrow` under the directory, as every store names it
/// ([`DataRef::store_name`]). An operation that reads part of a large entry opens
/// it directly, at the batch it needs, rather than streaming it from the start.
pub fn entry_file(store: &dyn DataStore, key: &DataRef) -> Option<std::path::PathBuf> {
    let path = store.dir().join(format!("{}.arrow", key.store_name()));
    path.is_file().then_some(path)
}
