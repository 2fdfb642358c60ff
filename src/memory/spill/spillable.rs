//! What the memory monitor moves to disk under pressure: the [`Spillable`] trait and
//! its two implementations, [`SpillableBatches`] and [`SpillableChunk`]. Choosing
//! *which* blocks to spill is the monitor's business, not this module's.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{SpillFile, SpillStore};
use crate::error::{Error, Result};

/// A block of data the memory monitor can move to disk and back.
pub trait Spillable: Send {
    /// Bytes the block holds in memory now (0 once spilled).
    fn estimated_bytes(&self) -> u64;

    /// Whether the data is on disk only.
    fn is_spilled(&self) -> bool;

    /// Moves the data to `store` and frees its memory; does nothing when already
    /// spilled. Returns the bytes freed.
    ///
    /// # Errors
    /// What [`SpillStore`]'s writes return, such as [`Error::SpillQuota`]; the data
    /// then stays in memory.
    fn spill(&mut self, store: &SpillStore) -> Result<u64>;

    /// Loads the data back into memory; does nothing when it is there.
    ///
    /// # Errors
    /// What [`SpillStore`]'s reads return, such as [`Error::Corrupt`].
    fn unspill(&mut self, store: &SpillStore) -> Result<()>;
}

/// Builds the error of reading data that is on disk.
fn spilled_error(what: &str) -> Error {
    Error::bug(
        "spilled data read without unspilling it",
        format!("{what} are spilled; call unspill before reading them"),
    )
}

/// Record batches of one schema, in memory or in a spill file.
///
/// After [`Spillable::unspill`] the spill file is kept until the block is dropped or
/// taken apart: the data cannot change, so spilling it again is free, and batches
/// read back without compression map that file anyway.
#[derive(Debug)]
pub struct SpillableBatches {
    schema: SchemaRef,
    batches: Option<Vec<RecordBatch>>,
    file: Option<SpillFile>,
    memory_bytes: u64,
}

impl SpillableBatches {
    /// Batches of `schema`, in memory.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let memory_bytes = batches
            .iter()
            .map(|b| b.get_array_memory_size() as u64)
            .sum();
        SpillableBatches {
            schema,
            batches: Some(batches),
            file: None,
            memory_bytes,
        }
    }

    /// The schema of the batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches, when they are in memory.
    ///
    /// # Errors
    /// [`Error::Bug`] when they are spilled: reading them is I/O, so the caller
    /// asks for it with [`Spillable::unspill`] or [`SpillableBatches::into_batches`].
    pub fn batches(&self) -> Result<&[RecordBatch]> {
        self.batches
            .as_deref()
            .ok_or_else(|| spilled_error("record batches"))
    }

    /// The batches, read back from disk if they are spilled.
    ///
    /// # Errors
    /// What [`SpillStore::read_batches`] returns.
    pub fn into_batches(mut self, store: &SpillStore) -> Result<Vec<RecordBatch>> {
        self.unspill(store)?;
        self.batches
            .take()
            .ok_or_else(|| spilled_error("record batches"))
    }

    /// The spill file, when the batches have been spilled.
    pub fn spill_file(&self) -> Option<&SpillFile> {
        self.file.as_ref()
    }
}

impl Spillable for SpillableBatches {
    fn estimated_bytes(&self) -> u64 {
        if self.batches.is_some() {
            self.memory_bytes
        } else {
            0
        }
    }

    fn is_spilled(&self) -> bool {
        self.batches.is_none()
    }

    fn spill(&mut self, store: &SpillStore) -> Result<u64> {
        let Some(batches) = &self.batches else {
            return Ok(0);
        };
        if self.file.is_none() {
            self.file = Some(store.write_batches(&self.schema, batches)?);
        }
        self.batches = None;
        Ok(self.memory_bytes)
    }

    fn unspill(&mut self, store: &SpillStore) -> Result<()> {
        if let (None, Some(file)) = (&self.batches, &self.file) {
            self.batches = Some(store.read_batches(file)?);
        }
        Ok(())
    }
}

/// The bytes of one array chunk, in memory or in a spill file.
///
/// As with [`SpillableBatches`], the spill file outlives an unspill, so spilling the
/// same bytes again costs nothing.
#[derive(Debug)]
pub struct SpillableChunk {
    data: Option<Vec<u8>>,
    file: Option<SpillFile>,
    len: u64,
}

impl SpillableChunk {
    /// A chunk's bytes, in memory.
    pub fn new(data: Vec<u8>) -> Self {
        let len = data.len() as u64;
        SpillableChunk {
            data: Some(data),
            file: None,
            len,
        }
    }

    /// The chunk's length in bytes, spilled or not.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the chunk has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, when they are in memory.
    ///
    /// # Errors
    /// [`Error::Bug`] when they are spilled: reading them is I/O, so the caller
    /// asks for it with [`Spillable::unspill`] or [`SpillableChunk::into_data`].
    pub fn data(&self) -> Result<&[u8]> {
        self.data
            .as_deref()
            .ok_or_else(|| spilled_error("chunk bytes"))
    }

    /// The bytes, read back from disk if they are spilled.
    ///
    /// # Errors
    /// What [`SpillStore::read_chunk`] returns.
    pub fn into_data(mut self, store: &SpillStore) -> Result<Vec<u8>> {
        self.unspill(store)?;
        self.data.take().ok_or_else(|| spilled_error("chunk bytes"))
    }

    /// The spill file, when the chunk has been spilled.
    pub fn spill_file(&self) -> Option<&SpillFile> {
        self.file.as_ref()
    }
}

impl Spillable for SpillableChunk {
    fn estimated_bytes(&self) -> u64 {
        if self.data.is_some() {
            self.len
        } else {
            0
        }
    }

    fn is_spilled(&self) -> bool {
        self.data.is_none()
    }

    fn spill(&mut self, store: &SpillStore) -> Result<u64> {
        let Some(data) = &self.data else {
            return Ok(0);
        };
        if self.file.is_none() {
            self.file = Some(store.write_chunk(data)?);
        }
        self.data = None;
        Ok(self.len)
    }

    fn unspill(&mut self, store: &SpillStore) -> Result<()> {
        if let (None, Some(file)) = (&self.data, &self.file) {
            self.data = Some(store.read_chunk(file)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::spill::test_support::{files_in, pseudo_random, sample_batches, store, ALL};
    use crate::memory::spill::SpillCompression;

    #[test]
    fn spillable_batches_round_trip_gives_identical_data() {
        let (schema, batches) = sample_batches();
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            let mut block = SpillableBatches::new(schema.clone(), batches.clone());
            let bytes = block.estimated_bytes();
            assert!(bytes > 0 && !block.is_spilled());
            assert_eq!(block.spill(&store).unwrap(), bytes);
            assert!(block.is_spilled());
            assert_eq!(block.estimated_bytes(), 0);
            assert!(matches!(block.batches(), Err(Error::Bug { .. })));
            assert_eq!(block.spill(&store).unwrap(), 0);
            block.unspill(&store).unwrap();
            assert_eq!(block.batches().unwrap(), &batches[..]);
            assert_eq!(block.estimated_bytes(), bytes);
            // Spilling the same batches again reuses the file.
            assert_eq!(block.spill(&store).unwrap(), bytes);
            assert_eq!(store.spill_files(), 1);
            assert_eq!(block.into_batches(&store).unwrap(), batches);
            assert_eq!(files_in(store.disk().dir()), 0);
            assert_eq!(store.disk().used(), 0);
        }
    }

    #[test]
    fn spillable_chunk_round_trip_gives_identical_data() {
        let data = pseudo_random(123_457, 6);
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            let mut chunk = SpillableChunk::new(data.clone());
            assert_eq!(chunk.estimated_bytes(), data.len() as u64);
            assert_eq!(chunk.spill(&store).unwrap(), data.len() as u64);
            assert!(chunk.is_spilled() && chunk.spill_file().is_some());
            assert!(matches!(chunk.data(), Err(Error::Bug { .. })));
            assert_eq!(chunk.len(), data.len() as u64);
            chunk.unspill(&store).unwrap();
            assert_eq!(chunk.data().unwrap(), &data[..]);
            chunk.spill(&store).unwrap();
            assert_eq!(store.spill_files(), 1);
            assert_eq!(chunk.into_data(&store).unwrap(), data);
            assert_eq!(files_in(store.disk().dir()), 0);
        }
    }

    #[test]
    fn a_refused_spill_keeps_the_data_in_memory() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), Some(100), SpillCompression::None);
        let mut chunk = SpillableChunk::new(vec![9u8; 1000]);
        assert!(matches!(chunk.spill(&store), Err(Error::SpillQuota { .. })));
        assert!(!chunk.is_spilled());
        assert_eq!(chunk.data().unwrap(), &[9u8; 1000][..]);
    }
}
