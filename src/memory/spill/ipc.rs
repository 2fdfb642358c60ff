//! Record batches in spill files: written in the Arrow IPC file format (the stream
//! format when a column has a dictionary) by [`SpillStore::write_batches`], and read
//! back zero-copy from a memory map by [`SpillBatchReader`].

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::{read_footer_length, FileDecoder, StreamDecoder};
use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow::ipc::Block;
use arrow::record_batch::RecordBatch;

use super::file::{io_error, kind_error, map_file, QuotaWriter, SpillKind, FORMAT_NAME};
use super::{SpillFile, SpillStore};
use crate::error::{Error, Result};
use crate::memory::{MemoryEvent, MemoryListener};

/// Write buffer of IPC spills: large enough that quota bookkeeping and system calls
/// are a rounding error next to encoding.
const WRITE_BUFFER: usize = 256 * 1024;

impl SpillStore {
    /// Writes `batches` (all of `schema`) to a new Arrow IPC file.
    ///
    /// # Errors
    /// [`Error::SpillQuota`] when the file would pass the quota (the partial file is
    /// removed); [`Error::Bug`] when a batch's fields differ from `schema`'s;
    /// [`Error::Io`] or [`Error::DiskFull`] on a failed write; [`Error::Arrow`] when
    /// Arrow cannot encode a batch.
    pub fn write_batches(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<SpillFile> {
        // Types, not fields: a batch whose column happens to have no nulls may say
        // "not nullable" where the schema says "nullable", and IPC does not care.
        let fits = |b: &&RecordBatch| {
            b.num_columns() == schema.fields().len()
                && b.columns()
                    .iter()
                    .zip(schema.fields())
                    .all(|(c, f)| c.data_type().equals_datatype(f.data_type()))
        };
        if let Some(b) = batches.iter().find(|b| !fits(b)) {
            return Err(Error::bug(
                "a spilled batch does not match its spill schema",
                format!(
                    "a batch with fields {:?}, the schema's {:?}",
                    b.schema().fields(),
                    schema.fields()
                ),
            ));
        }
        let options = self.ipc_options()?;
        let uncompressed = batches.iter().map(crate::memory::batch_memory).sum();
        let (kind, ext) = if schema
            .fields()
            .iter()
            .any(|f| has_dictionary(f.data_type()))
        {
            (SpillKind::IpcStream, "arrows")
        } else {
            (SpillKind::IpcFile, "arrow")
        };
        let (out, mut spill) = self.create(kind, ext, uncompressed)?;
        let SpillFile {
            path,
            disk,
            disk_bytes,
            ..
        } = &mut spill;
        let writer = BufWriter::with_capacity(
            WRITE_BUFFER,
            QuotaWriter {
                file: out,
                disk,
                written: disk_bytes,
            },
        );
        write_ipc(writer, schema, batches, options, kind)
            .map_err(|e| arrow_write_error(path, e))?;
        self.count(&spill);
        Ok(spill)
    }

    /// Reads every batch of a file written by [`SpillStore::write_batches`]. Without
    /// compression the batches borrow the file's memory map instead of copying it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the file is damaged; [`Error::Bug`] when it is a
    /// chunk file; [`Error::Io`] when it cannot be opened or mapped.
    pub fn read_batches(&self, file: &SpillFile) -> Result<Vec<RecordBatch>> {
        self.batch_reader(file)?.collect()
    }

    /// Reads the batches of a file written by [`SpillStore::write_batches`] one at a
    /// time, so a merge can stream a spilled run instead of loading it whole.
    ///
    /// # Errors
    /// As [`SpillStore::read_batches`]; the iterator yields [`Error::Corrupt`] for a
    /// damaged batch.
    pub fn batch_reader(&self, file: &SpillFile) -> Result<SpillBatchReader> {
        self.batch_reader_from(file, 0)
    }

    /// Like [`SpillStore::batch_reader`], starting at batch `first` (a file written
    /// in the IPC file format seeks there through its footer; a stream file, written
    /// for dictionary columns, is read from the start).
    ///
    /// # Errors
    /// As [`SpillStore::batch_reader`].
    pub fn batch_reader_from(&self, file: &SpillFile, first: usize) -> Result<SpillBatchReader> {
        let path = file.path.clone();
        let buffer = mmap_buffer(&path)?;
        let corrupt = |detail: &dyn fmt::Display| Error::corrupt(&path, FORMAT_NAME, detail);
        let state = match file.kind {
            SpillKind::IpcFile => {
                let (schema, decoder, blocks) = open_ipc_file(&buffer).map_err(|e| corrupt(&e))?;
                ReaderState::File {
                    schema,
                    decoder,
                    next: first.min(blocks.len()),
                    blocks,
                }
            }
            SpillKind::IpcStream => ReaderState::Stream {
                decoder: StreamDecoder::new(),
            },
            // A caller's mix-up, not a damaged file.
            SpillKind::Chunk => return Err(kind_error(&path, "a chunk", "batches")),
        };
        Ok(SpillBatchReader {
            path,
            buffer,
            state,
            listener: self.listener(),
        })
    }

    fn ipc_options(&self) -> Result<IpcWriteOptions> {
        self.compression_now().ipc_write_options()
    }
}

fn write_ipc<W: Write>(
    writer: W,
    schema: &Schema,
    batches: &[RecordBatch],
    options: IpcWriteOptions,
    kind: SpillKind,
) -> std::result::Result<(), ArrowError> {
    let mut inner = if kind == SpillKind::IpcStream {
        let mut w = StreamWriter::try_new_with_options(writer, schema, options)?;
        for batch in batches {
            w.write(batch)?;
        }
        w.into_inner()?
    } else {
        let mut w = FileWriter::try_new_with_options(writer, schema, options)?;
        for batch in batches {
            w.write(batch)?;
        }
        w.into_inner()?
    };
    // Flushed here, not by BufWriter's drop, which would swallow the error.
    inner.flush()?;
    Ok(())
}

/// The batches of a spill file, read one at a time from its memory map.
#[derive(Debug)]
pub struct SpillBatchReader {
    path: PathBuf,
    buffer: Buffer,
    state: ReaderState,
    /// Told of each batch read back (a job recording a report).
    listener: Option<MemoryListener>,
}

#[derive(Debug)]
enum ReaderState {
    File {
        schema: SchemaRef,
        decoder: FileDecoder,
        blocks: Vec<Block>,
        next: usize,
    },
    Stream {
        decoder: StreamDecoder,
    },
}

impl SpillBatchReader {
    /// The schema of the batches (for a stream file, known once the first batch is read).
    pub fn schema(&self) -> Option<SchemaRef> {
        match &self.state {
            ReaderState::File { schema, .. } => Some(schema.clone()),
            ReaderState::Stream { decoder } => decoder.schema(),
        }
    }

    fn next_batch(&mut self) -> std::result::Result<Option<RecordBatch>, ArrowError> {
        match &mut self.state {
            ReaderState::File {
                decoder,
                blocks,
                next,
                ..
            } => {
                while let Some(block) = blocks.get(*next) {
                    *next += 1;
                    let data = block_data(&self.buffer, block)?;
                    let batch = decoder.read_record_batch(block, &data)?;
                    // Uncompressed batches point into the map, and a reader's caller
                    // may still hold the previous batch or two: release the block
                    // read two steps ago (with `auto` compression, a file's batches
                    // may be either kind; compressed ones are copies).
                    const LAG: usize = 2;
                    if *next > LAG {
                        let old = &blocks[*next - 1 - LAG];
                        release_pages(
                            &self.buffer,
                            old.offset() as usize,
                            old.metaDataLength() as usize + old.bodyLength() as usize,
                        );
                    }
                    if let Some(batch) = batch {
                        return Ok(Some(batch));
                    }
                }
                Ok(None)
            }
            ReaderState::Stream { decoder } => {
                while !self.buffer.is_empty() {
                    if let Some(batch) = decoder.decode(&mut self.buffer)? {
                        return Ok(Some(batch));
                    }
                }
                decoder.finish()?;
                Ok(None)
            }
        }
    }
}

impl Iterator for SpillBatchReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_batch();
        if let (Some(listener), Ok(Some(batch))) = (&self.listener, &next) {
            listener.send(MemoryEvent::ReadBack(crate::memory::batch_memory(batch)));
        }
        next.map_err(|e| Error::corrupt(&self.path, FORMAT_NAME, e))
            .transpose()
    }
}

/// Reads the footer of an IPC file and its dictionaries.
fn open_ipc_file(
    buffer: &Buffer,
) -> std::result::Result<(SchemaRef, FileDecoder, Vec<Block>), ArrowError> {
    let ipc_err = |s: &str| ArrowError::IpcError(s.to_string());
    let trailer_start = buffer
        .len()
        .checked_sub(10)
        .ok_or_else(|| ipc_err("shorter than an Arrow IPC file trailer"))?;
    let mut trailer = [0u8; 10];
    trailer.copy_from_slice(&buffer[trailer_start..]);
    let footer_len = read_footer_length(trailer)?;
    let footer_start = trailer_start
        .checked_sub(footer_len)
        .ok_or_else(|| ipc_err("footer longer than the file"))?;
    let footer = arrow::ipc::root_as_footer(&buffer[footer_start..trailer_start])
        .map_err(|e| ArrowError::IpcError(format!("footer: {e}")))?;
    let schema = footer
        .schema()
        .ok_or_else(|| ipc_err("footer has no schema"))?;
    let schema = Arc::new(arrow::ipc::convert::try_fb_to_schema(schema)?);
    // SAFETY (of skipping validation): this process wrote the file moments ago into a
    // directory only this user can write; re-validating every offset and every UTF-8
    // string would cost a read as much as decoding does (DataFusion makes the same
    // choice for its spill files). The footer above is still verified.
    let mut decoder =
        unsafe { FileDecoder::new(schema.clone(), footer.version()).with_skip_validation(true) };
    for block in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(block, &block_data(buffer, block)?)?;
    }
    let blocks = footer
        .recordBatches()
        .map(|b| b.iter().copied().collect())
        .unwrap_or_default();
    Ok((schema, decoder, blocks))
}

/// The bytes of one IPC block, checked against the file's length.
fn block_data(buffer: &Buffer, block: &Block) -> std::result::Result<Buffer, ArrowError> {
    let start = usize::try_from(block.offset()).ok();
    let len = usize::try_from(block.metaDataLength())
        .ok()
        .zip(usize::try_from(block.bodyLength()).ok())
        .and_then(|(m, b)| m.checked_add(b));
    match (start, len) {
        (Some(start), Some(len)) if start.checked_add(len).is_some_and(|e| e <= buffer.len()) => {
            Ok(buffer.slice_with_length(start, len))
        }
        _ => Err(ArrowError::IpcError(format!(
            "block at {} of {}+{} bytes passes the end of the file ({} bytes)",
            block.offset(),
            block.metaDataLength(),
            block.bodyLength(),
            buffer.len()
        ))),
    }
}

fn has_dictionary(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _)
        | DataType::RunEndEncoded(_, f) => has_dictionary(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| has_dictionary(f.data_type())),
        _ => false,
    }
}

/// Maps `path` as an Arrow buffer that keeps the map alive as long as any array
/// sliced from it.
fn mmap_buffer(path: &Path) -> Result<Buffer> {
    let map = map_file(path)?;
    if map.is_empty() {
        return Err(Error::corrupt(path, FORMAT_NAME, "empty file"));
    }
    let len = map.len();
    let map = Arc::new(map);
    let ptr = NonNull::new(map.as_ptr().cast_mut())
        .ok_or_else(|| Error::bug("a memory map at a null address", path.display()))?;
    // SAFETY: `ptr` points at `len` readable bytes owned by `map`, which the buffer
    // keeps alive; the bytes do not change (see `map_file`).
    Ok(unsafe { Buffer::from_custom_allocation(ptr, len, map) })
}

/// Lets the kernel drop the pages of a consumed range of the map from our resident
/// set. The mapping is a read-only file mapping, so pages touched again are read back
/// from the file: nothing can be lost, and a long merge no longer grows RSS by the
/// size of everything it has read.
fn release_pages(buffer: &Buffer, offset: usize, len: usize) {
    const PAGE: usize = 4096;
    let base = buffer.as_ptr() as usize;
    let start = (base + offset).div_ceil(PAGE) * PAGE;
    let end = (base + offset + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside the live mapping `buffer` owns; MADV_DONTNEED
        // on a read-only file mapping only discards pages the kernel can re-read.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

fn arrow_write_error(path: &Path, e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(_, io) => io_error(path, io),
        other => Error::Arrow(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::spill::test_support::{files_in, sample_batches, store, ALL};
    use crate::memory::spill::SpillCompression;
    use arrow::array::{ArrayRef, DictionaryArray, Int64Array};
    use arrow::datatypes::Int32Type;

    #[test]
    fn batches_round_trip_with_every_compression() {
        let (schema, batches) = sample_batches();
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            let file = store.write_batches(&schema, &batches).unwrap();
            assert_eq!(file.path().extension().unwrap(), "arrow");
            assert_eq!(store.disk().used(), file.disk_bytes());
            assert_eq!(
                std::fs::metadata(file.path()).unwrap().len(),
                file.disk_bytes()
            );
            let back = store.read_batches(&file).unwrap();
            assert_eq!(back, batches, "{compression}");
            assert_eq!(back[0].schema(), schema);
            let reader = store.batch_reader(&file).unwrap();
            assert_eq!(reader.schema(), Some(schema.clone()));
            assert_eq!(reader.count(), batches.len());
        }
    }

    #[test]
    fn zstd_makes_batch_files_smaller() {
        let (schema, batches) = sample_batches();
        let root = tempfile::tempdir().unwrap();
        let plain = store(root.path(), None, SpillCompression::None);
        let zstd = store(root.path(), None, SpillCompression::Zstd(1));
        let a = plain.write_batches(&schema, &batches).unwrap();
        let b = zstd.write_batches(&schema, &batches).unwrap();
        assert!(
            b.disk_bytes() < a.disk_bytes(),
            "{} vs {}",
            b.disk_bytes(),
            a.disk_bytes()
        );
    }

    #[test]
    fn batches_with_changing_dictionaries_round_trip() {
        let dict = |values: Vec<&str>| -> RecordBatch {
            let a: DictionaryArray<Int32Type> = values.into_iter().collect();
            RecordBatch::try_from_iter([("d", Arc::new(a) as ArrayRef)]).unwrap()
        };
        // Different dictionaries in each batch, as separate Parquet row groups give.
        let batches = vec![dict(vec!["a", "b", "a"]), dict(vec!["z", "y", "x", "z"])];
        let schema = batches[0].schema();
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            let file = store.write_batches(&schema, &batches).unwrap();
            assert_eq!(file.path().extension().unwrap(), "arrows");
            assert_eq!(store.read_batches(&file).unwrap(), batches);
        }
    }

    #[test]
    fn empty_batch_list_round_trips() {
        let (schema, _) = sample_batches();
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::default());
        let file = store.write_batches(&schema, &[]).unwrap();
        assert!(store.read_batches(&file).unwrap().is_empty());
    }

    #[test]
    fn a_batch_of_another_schema_is_refused_and_leaves_no_file() {
        let (schema, _) = sample_batches();
        let other =
            RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::default());
        assert!(matches!(
            store.write_batches(&schema, &[other]),
            Err(Error::Bug { .. })
        ));
        assert_eq!(files_in(store.disk().dir()), 0);
    }
}
