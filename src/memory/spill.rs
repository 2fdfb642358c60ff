//! The spill store: the one place spill I/O lives.
//!
//! Operators decide what their bytes mean and when to spill them; this module only
//! writes them to the job's spill directory and reads them back. Frame blocks are
//! written as Arrow IPC files and read back zero-copy from a memory map; array chunks
//! are written as raw chunk files (a 32-byte header, then the bytes, zstd-compressed
//! or not) and decompressed straight from a memory map. The layouts are specified in
//! `formats/spill-v1.md`.
//!
//! Every byte is counted against the [`DiskManager`]'s quota *before* it is written,
//! one buffer at a time, so a spill that would pass the quota fails with
//! [`Error::SpillQuota`] and never fills the disk; the partial file is removed. A
//! [`SpillFile`] removes its file and gives its bytes back to the quota when dropped.
//!
//! The [`Spillable`] trait and its two implementations, [`SpillableBatches`] and
//! [`SpillableChunk`], are what the memory monitor moves to disk under pressure.
//! Choosing *which* blocks to spill is the monitor's business, not this module's.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::{read_footer_length, FileDecoder, StreamDecoder};
use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow::ipc::{Block, CompressionType};
use arrow::record_batch::RecordBatch;
use memmap2::Mmap;

use super::disk::DiskManager;
use crate::error::{Error, IoResultExt, Result};

/// The magic that starts every raw chunk file; the trailing digit is the layout version.
pub const CHUNK_MAGIC: &[u8; 8] = b"BWSPILL1";
/// Bytes of a raw chunk file's header, before the payload.
pub const CHUNK_HEADER_LEN: usize = 32;
const CODEC_NONE: u8 = 0;
const CODEC_ZSTD: u8 = 1;
/// Write buffer of IPC spills: large enough that quota bookkeeping and system calls
/// are a rounding error next to encoding.
const WRITE_BUFFER: usize = 256 * 1024;
/// The name `Error::Corrupt` gives spill files.
const FORMAT_NAME: &str = "blockwise spill";

/// How spill files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillCompression {
    /// Bytes are written as they are (fastest when the disk is faster than zstd).
    None,
    /// zstd at the given level (1 by default: about 0.3–0.5 GB/s a core, and most
    /// columnar data still shrinks by half or more).
    Zstd(i32),
}

impl Default for SpillCompression {
    fn default() -> Self {
        SpillCompression::Zstd(1)
    }
}

impl SpillCompression {
    /// Parses `none`, `zstd` (level 1) or `zstd:LEVEL`, as `--spill-compression` takes it.
    ///
    /// # Errors
    /// [`Error::Usage`] for any other value or a level zstd does not have.
    ///
    /// # Examples
    /// ```
    /// use blockwise::memory::spill::SpillCompression;
    /// assert_eq!(SpillCompression::parse("zstd:3")?, SpillCompression::Zstd(3));
    /// assert_eq!(SpillCompression::parse("none")?, SpillCompression::None);
    /// # Ok::<(), blockwise::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Usage(format!(
                "spill compression {s:?}: expected none, zstd or zstd:LEVEL with LEVEL in {}..={}",
                zstd::compression_level_range().start(),
                zstd::compression_level_range().end()
            ))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SpillCompression::None),
            "zstd" => Ok(SpillCompression::default()),
            other => {
                let level = other
                    .strip_prefix("zstd:")
                    .and_then(|l| l.trim().parse::<i32>().ok())
                    .ok_or_else(bad)?;
                if zstd::compression_level_range().contains(&level) {
                    Ok(SpillCompression::Zstd(level))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl FromStr for SpillCompression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        SpillCompression::parse(s)
    }
}

impl fmt::Display for SpillCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpillCompression::None => f.write_str("none"),
            SpillCompression::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

/// What a spill file holds, which decides how it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpillKind {
    /// Record batches in the Arrow IPC file format.
    IpcFile,
    /// Record batches in the Arrow IPC stream format: used when the schema has a
    /// dictionary column, because the file format cannot hold a dictionary that changes
    /// from batch to batch (every Parquet row group brings its own).
    IpcStream,
    /// A raw chunk file.
    Chunk,
}

/// One file in the spill directory; removed, and its bytes given back to the quota,
/// when dropped.
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    disk: Arc<DiskManager>,
    kind: SpillKind,
    disk_bytes: u64,
    uncompressed_bytes: u64,
}

impl SpillFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size on disk (what it counts against the quota).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// The size of the data before compression: a chunk's length, or the Arrow memory
    /// size of the batches.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.uncompressed_bytes
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        // A batch read back without compression still maps the file; unlinking is
        // safe then (the pages live until the last batch goes), only the quota stops
        // counting them.
        let _ = std::fs::remove_file(&self.path);
        self.disk.release(self.disk_bytes);
    }
}

#[derive(Debug)]
struct Inner {
    disk: Arc<DiskManager>,
    compression: SpillCompression,
    spilled_bytes: AtomicU64,
    spill_files: AtomicU64,
    disk_bytes_written: AtomicU64,
}

/// Writes spill files to one job's spill directory and reads them back. Cheap to
/// clone; clones share the directory, the quota and the counters.
#[derive(Debug, Clone)]
pub struct SpillStore {
    inner: Arc<Inner>,
}

impl SpillStore {
    /// A store writing to `disk`'s directory with `compression`.
    pub fn new(disk: Arc<DiskManager>, compression: SpillCompression) -> SpillStore {
        SpillStore {
            inner: Arc::new(Inner {
                disk,
                compression,
                spilled_bytes: AtomicU64::new(0),
                spill_files: AtomicU64::new(0),
                disk_bytes_written: AtomicU64::new(0),
            }),
        }
    }

    /// The spill directory and its quota.
    pub fn disk(&self) -> &Arc<DiskManager> {
        &self.inner.disk
    }

    /// The compression new files are written with.
    pub fn compression(&self) -> SpillCompression {
        self.inner.compression
    }

    /// Uncompressed bytes ever spilled through this store (and its clones).
    pub fn spilled_bytes(&self) -> u64 {
        self.inner.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Spill files ever written.
    pub fn spill_files(&self) -> u64 {
        self.inner.spill_files.load(Ordering::Relaxed)
    }

    /// Bytes ever written to disk (after compression).
    pub fn disk_bytes_written(&self) -> u64 {
        self.inner.disk_bytes_written.load(Ordering::Relaxed)
    }

    /// Writes `batches` (all of `schema`) to a new Arrow IPC file.
    ///
    /// # Errors
    /// [`Error::SpillQuota`] when the file would pass the quota (the partial file is
    /// removed); [`Error::Internal`] when a batch's fields differ from `schema`'s;
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
            return Err(Error::Internal(format!(
                "spill: a batch with fields {:?} does not match the spill schema {:?}",
                b.schema().fields(),
                schema.fields()
            )));
        }
        let options = self.ipc_options()?;
        let uncompressed = batches
            .iter()
            .map(|b| b.get_array_memory_size() as u64)
            .sum();
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
    /// [`Error::Corrupt`] when the file is damaged; [`Error::Internal`] when it is a
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
        let path = file.path.clone();
        let buffer = mmap_buffer(&path)?;
        let corrupt = |detail: &dyn fmt::Display| Error::corrupt(&path, FORMAT_NAME, detail);
        let state = match file.kind {
            SpillKind::IpcFile => {
                let (schema, decoder, blocks) = open_ipc_file(&buffer).map_err(|e| corrupt(&e))?;
                ReaderState::File {
                    schema,
                    decoder,
                    blocks,
                    next: 0,
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
        })
    }

    /// Writes one array chunk to a new raw chunk file.
    ///
    /// # Errors
    /// [`Error::SpillQuota`] when the file would pass the quota (the partial file is
    /// removed); [`Error::Io`] or [`Error::DiskFull`] on a failed write.
    pub fn write_chunk(&self, data: &[u8]) -> Result<SpillFile> {
        let (out, mut spill) = self.create(SpillKind::Chunk, "bwchunk", data.len() as u64)?;
        let SpillFile {
            path,
            disk,
            disk_bytes,
            ..
        } = &mut spill;
        let mut writer = QuotaWriter {
            file: out,
            disk,
            written: disk_bytes,
        };
        let (codec, level) = match self.inner.compression {
            SpillCompression::None => (CODEC_NONE, 0),
            SpillCompression::Zstd(level) => (CODEC_ZSTD, level),
        };
        let mut header = [0u8; CHUNK_HEADER_LEN];
        header[..8].copy_from_slice(CHUNK_MAGIC);
        header[8] = codec;
        header[12..16].copy_from_slice(&level.to_le_bytes());
        header[16..24].copy_from_slice(&(data.len() as u64).to_le_bytes());
        // The stored length (24..32) is patched in below once the payload is written:
        // zstd's output size is known only at the end.
        writer.write_all(&header).map_err(|e| io_error(path, e))?;
        let writer = match self.inner.compression {
            SpillCompression::None => {
                writer.write_all(data).map_err(|e| io_error(path, e))?;
                writer
            }
            SpillCompression::Zstd(level) => {
                zstd_encode(writer, data, level).map_err(|e| io_error(path, e))?
            }
        };
        let stored = *writer.written - CHUNK_HEADER_LEN as u64;
        let mut out = writer.file;
        out.seek(SeekFrom::Start(24)).at(&*path)?;
        out.write_all(&stored.to_le_bytes()).at(&*path)?;
        self.count(&spill);
        Ok(spill)
    }

    /// Reads back a chunk written by [`SpillStore::write_chunk`], decompressing straight
    /// from the file's memory map.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the header, the lengths or the zstd frame (and its
    /// checksum) do not hold up; [`Error::Internal`] when it is a batch file;
    /// [`Error::Io`] when the file cannot be opened or mapped.
    pub fn read_chunk(&self, file: &SpillFile) -> Result<Vec<u8>> {
        let path = &file.path;
        let corrupt = |detail: String| Error::corrupt(path, FORMAT_NAME, detail);
        if file.kind != SpillKind::Chunk {
            return Err(kind_error(path, "a batch", "a chunk"));
        }
        let map = map_file(path)?;
        let header = ChunkHeader::parse(&map).map_err(corrupt)?;
        let payload = &map[CHUNK_HEADER_LEN..];
        if payload.len() as u64 != header.stored {
            return Err(corrupt(format!(
                "the header says {} payload bytes, the file has {}",
                header.stored,
                payload.len()
            )));
        }
        let len = usize::try_from(header.uncompressed)
            .map_err(|_| corrupt(format!("length {} is too large", header.uncompressed)))?;
        let data = match header.codec {
            CODEC_NONE if header.stored == header.uncompressed => payload.to_vec(),
            CODEC_NONE => {
                return Err(corrupt(format!(
                    "uncompressed chunk of {} bytes stored in {}",
                    header.uncompressed, header.stored
                )))
            }
            _ => zstd::bulk::decompress(payload, len).map_err(|e| corrupt(e.to_string()))?,
        };
        if data.len() != len {
            return Err(corrupt(format!(
                "the header says {len} bytes, zstd gave {}",
                data.len()
            )));
        }
        Ok(data)
    }

    fn ipc_options(&self) -> Result<IpcWriteOptions> {
        let options = IpcWriteOptions::default();
        match self.inner.compression {
            SpillCompression::None => Ok(options),
            // arrow-ipc would otherwise use its own default level (3), three times
            // slower than the level 1 spills are meant to run at.
            SpillCompression::Zstd(level) => options
                .try_with_compression(Some(CompressionType::ZSTD))
                .and_then(|o| o.try_with_compression_level(Some(level)))
                .map_err(|e| Error::Usage(format!("spill compression zstd:{level}: {e}"))),
        }
    }

    /// Creates an empty spill file, already owned by a [`SpillFile`] so that every
    /// error after this point removes it.
    fn create(&self, kind: SpillKind, ext: &str, uncompressed: u64) -> Result<(File, SpillFile)> {
        let disk = &self.inner.disk;
        let path = disk
            .new_path(if kind == SpillKind::Chunk {
                "chunk"
            } else {
                "batches"
            })
            .with_extension(ext);
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        let spill = SpillFile {
            path,
            disk: disk.clone(),
            kind,
            disk_bytes: 0,
            uncompressed_bytes: uncompressed,
        };
        Ok((out, spill))
    }

    fn count(&self, file: &SpillFile) {
        let inner = &self.inner;
        inner
            .spilled_bytes
            .fetch_add(file.uncompressed_bytes, Ordering::Relaxed);
        inner.spill_files.fetch_add(1, Ordering::Relaxed);
        inner
            .disk_bytes_written
            .fetch_add(file.disk_bytes, Ordering::Relaxed);
    }
}

/// The fields of a raw chunk file's header.
struct ChunkHeader {
    codec: u8,
    uncompressed: u64,
    stored: u64,
}

impl ChunkHeader {
    fn parse(bytes: &[u8]) -> std::result::Result<ChunkHeader, String> {
        let header = bytes
            .get(..CHUNK_HEADER_LEN)
            .ok_or_else(|| format!("{} bytes, shorter than the header", bytes.len()))?;
        if &header[..8] != CHUNK_MAGIC {
            return Err(format!("magic {:?} is not BWSPILL1", &header[..8]));
        }
        let codec = header[8];
        if codec != CODEC_NONE && codec != CODEC_ZSTD {
            return Err(format!("unknown codec id {codec}"));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Ok(ChunkHeader {
            codec,
            uncompressed: u64_at(16),
            stored: u64_at(24),
        })
    }
}

/// A file writer that counts every buffer against the quota before writing it.
struct QuotaWriter<'a> {
    file: File,
    disk: &'a DiskManager,
    written: &'a mut u64,
}

impl Write for QuotaWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let asked = buf.len() as u64;
        // Carried inside the io::Error so it survives Arrow's and zstd's error
        // wrapping; `io_error` takes it out again.
        self.disk.reserve(asked).map_err(std::io::Error::other)?;
        match self.file.write(buf) {
            Ok(n) => {
                self.disk.release(asked - n as u64);
                *self.written += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.disk.release(asked);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
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

fn zstd_encode<'a>(
    writer: QuotaWriter<'a>,
    data: &[u8],
    level: i32,
) -> std::io::Result<QuotaWriter<'a>> {
    // Streaming, not bulk: the compressed copy never has to fit in memory, which is
    // short when spilling.
    let mut encoder = zstd::stream::Encoder::new(writer, level)?;
    encoder.include_checksum(true)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(data.len() as u64))?;
    encoder.write_all(data)?;
    encoder.finish()
}

/// The batches of a spill file, read one at a time from its memory map.
#[derive(Debug)]
pub struct SpillBatchReader {
    path: PathBuf,
    buffer: Buffer,
    state: ReaderState,
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
                    if let Some(batch) = decoder.read_record_batch(block, &data)? {
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
        self.next_batch()
            .map_err(|e| Error::corrupt(&self.path, FORMAT_NAME, e))
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

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).at(path)?;
    // SAFETY: spill files live in this process's private spill directory and are never
    // written again after `write_*` returns, so the mapped bytes cannot change under
    // the reader. (Removing the file, as Ctrl-C does, leaves the mapping valid.)
    let map = unsafe { Mmap::map(&file) }.at(path)?;
    #[cfg(unix)]
    {
        // Spill files are read front to back once: read ahead, then let pages go.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(map)
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
        .ok_or_else(|| Error::Internal("memory map at a null address".into()))?;
    // SAFETY: `ptr` points at `len` readable bytes owned by `map`, which the buffer
    // keeps alive; the bytes do not change (see `map_file`).
    Ok(unsafe { Buffer::from_custom_allocation(ptr, len, map) })
}

/// Turns a writer's I/O error into ours, taking out a quota refusal carried inside it.
fn io_error(path: &Path, e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(Ok(ours)) = e.into_inner().map(|inner| inner.downcast::<Error>()) {
            return *ours;
        }
        return Error::Internal("spill: lost a quota error".into());
    }
    Error::io(path, e)
}

fn arrow_write_error(path: &Path, e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(_, io) => io_error(path, io),
        other => Error::Arrow(other),
    }
}

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

fn kind_error(path: &Path, is: &str, read_as: &str) -> Error {
    Error::Internal(format!(
        "spill: {} is {is} file, read as {read_as}",
        path.display()
    ))
}

/// Builds the error of reading data that is on disk.
fn spilled_error(what: &str) -> Error {
    Error::Internal(format!(
        "{what} are spilled; call unspill before reading them"
    ))
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
    /// [`Error::Internal`] when they are spilled: reading them is I/O, so the caller
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
    /// [`Error::Internal`] when they are spilled: reading them is I/O, so the caller
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
    use arrow::array::{
        ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, ListArray, StringArray,
    };
    use arrow::datatypes::{Field, Int32Type};

    const ALL: [SpillCompression; 3] = [
        SpillCompression::None,
        SpillCompression::Zstd(1),
        SpillCompression::Zstd(3),
    ];

    fn store(root: &Path, quota: Option<u64>, compression: SpillCompression) -> SpillStore {
        SpillStore::new(DiskManager::new(root, quota).unwrap(), compression)
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    /// Bytes that look like data: compressible, but not trivially.
    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 16 == 0 {
                    (x >> 56) as u8
                } else {
                    (i / 7) as u8
                }
            })
            .collect()
    }

    fn sample_batches() -> (SchemaRef, Vec<RecordBatch>) {
        let batch = |offset: i64, n: i64| {
            let ints: ArrayRef = Arc::new(Int64Array::from_iter(
                (offset..offset + n).map(|i| (i % 5 != 0).then_some(i * 3)),
            ));
            let floats: ArrayRef = Arc::new(Float64Array::from_iter_values(
                (offset..offset + n).map(|i| i as f64 / 7.0),
            ));
            let strings: ArrayRef = Arc::new(StringArray::from_iter(
                (offset..offset + n).map(|i| (i % 4 != 1).then(|| format!("name-{i}-é"))),
            ));
            let bools: ArrayRef = Arc::new(BooleanArray::from_iter(
                (offset..offset + n).map(|i| (i % 6 != 2).then_some(i % 2 == 0)),
            ));
            let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                (offset..offset + n).map(|i| {
                    (i % 9 != 0).then(|| (0..(i % 4) as i32).map(Some).collect::<Vec<_>>())
                }),
            ));
            let columns = vec![ints, floats, strings, bools, lists];
            let fields: Vec<Field> = ["i", "f", "s", "b", "l"]
                .iter()
                .zip(&columns)
                .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
                .collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
        };
        let batches = vec![
            batch(0, 1000),
            batch(1000, 1),
            batch(1001, 0),
            batch(5000, 4096),
        ];
        (batches[0].schema(), batches)
    }

    #[test]
    fn compression_parses_none_zstd_and_levels() {
        assert_eq!(SpillCompression::default(), SpillCompression::Zstd(1));
        assert_eq!(
            SpillCompression::parse("none").unwrap(),
            SpillCompression::None
        );
        assert_eq!(
            SpillCompression::parse("zstd").unwrap(),
            SpillCompression::Zstd(1)
        );
        assert_eq!(
            SpillCompression::parse("ZSTD:7").unwrap(),
            SpillCompression::Zstd(7)
        );
        assert_eq!(
            "zstd:-3".parse::<SpillCompression>().unwrap(),
            SpillCompression::Zstd(-3)
        );
        for bad in ["gzip", "zstd:", "zstd:x", "zstd:99", ""] {
            assert!(
                matches!(SpillCompression::parse(bad), Err(Error::Usage(_))),
                "{bad:?} parsed"
            );
        }
        for c in ALL {
            assert_eq!(SpillCompression::parse(&c.to_string()).unwrap(), c);
        }
    }

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
            Err(Error::Internal(_))
        ));
        assert_eq!(files_in(store.disk().dir()), 0);
    }

    #[test]
    fn chunks_round_trip_with_every_compression() {
        let chunks = [
            Vec::new(),
            vec![7u8],
            pseudo_random(1 << 20, 1),
            vec![0u8; 300_000],
        ];
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            for data in &chunks {
                let file = store.write_chunk(data).unwrap();
                assert_eq!(file.uncompressed_bytes(), data.len() as u64);
                assert_eq!(
                    std::fs::metadata(file.path()).unwrap().len(),
                    file.disk_bytes()
                );
                assert_eq!(&store.read_chunk(&file).unwrap(), data, "{compression}");
            }
        }
    }

    #[test]
    fn chunk_file_layout_is_as_specified() {
        let data = pseudo_random(100_000, 2);
        for (compression, codec, level) in [
            (SpillCompression::None, 0u8, 0i32),
            (SpillCompression::Zstd(3), 1, 3),
        ] {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            let file = store.write_chunk(&data).unwrap();
            let bytes = std::fs::read(file.path()).unwrap();
            assert_eq!(&bytes[..8], b"BWSPILL1");
            assert_eq!(bytes[8], codec);
            assert_eq!(&bytes[9..12], &[0, 0, 0]);
            assert_eq!(i32::from_le_bytes(bytes[12..16].try_into().unwrap()), level);
            assert_eq!(
                u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
                100_000
            );
            let stored = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
            assert_eq!(stored as usize, bytes.len() - 32);
            let payload = &bytes[32..];
            if codec == 0 {
                assert_eq!(payload, &data[..]);
            } else {
                // A plain zstd frame: any zstd tool reads it.
                assert_eq!(zstd::decode_all(payload).unwrap(), data);
                assert!(payload.len() < data.len());
            }
        }
    }

    #[test]
    fn damaged_chunk_files_are_corrupt_errors() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::Zstd(1));
        let file = store.write_chunk(&pseudo_random(50_000, 3)).unwrap();
        let mut bytes = std::fs::read(file.path()).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(file.path(), &bytes).unwrap();
        assert!(matches!(
            store.read_chunk(&file),
            Err(Error::Corrupt { .. })
        ));
        std::fs::write(file.path(), &bytes[..mid]).unwrap();
        assert!(matches!(
            store.read_chunk(&file),
            Err(Error::Corrupt { .. })
        ));
        std::fs::write(file.path(), b"NOTSPILL").unwrap();
        assert!(matches!(
            store.read_chunk(&file),
            Err(Error::Corrupt { .. })
        ));

        let (schema, batches) = sample_batches();
        let batch_file = store.write_batches(&schema, &batches).unwrap();
        assert!(matches!(
            store.read_chunk(&batch_file),
            Err(Error::Internal(_))
        ));
        assert!(matches!(store.read_batches(&file), Err(Error::Internal(_))));
        let len = std::fs::metadata(batch_file.path()).unwrap().len();
        let truncated = std::fs::read(batch_file.path()).unwrap()[..len as usize - 20].to_vec();
        std::fs::write(batch_file.path(), truncated).unwrap();
        assert!(matches!(
            store.read_batches(&batch_file),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn quota_exceeded_gives_spill_quota_and_leaves_no_file() {
        let (schema, batches) = sample_batches();
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), Some(10_000), compression);
            let kept = store.write_chunk(&[1u8; 1000]).unwrap();
            let used = store.disk().used();
            assert_eq!(used, kept.disk_bytes());
            for result in [
                store.write_chunk(&pseudo_random(400_000, 4)),
                store.write_batches(&schema, &batches),
            ] {
                match result {
                    Err(Error::SpillQuota { quota, dir, .. }) => {
                        assert_eq!(quota, 10_000);
                        assert_eq!(dir, store.disk().dir());
                    }
                    other => panic!("expected SpillQuota with {compression}, got {other:?}"),
                }
                assert_eq!(files_in(store.disk().dir()), 1, "{compression}");
                assert_eq!(store.disk().used(), used);
            }
            assert_eq!(store.spill_files(), 1);
        }
    }

    #[test]
    fn dropping_a_spill_file_frees_its_quota_and_removes_it() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::None);
        let a = store.write_chunk(&[3u8; 5000]).unwrap();
        let b = store.write_chunk(&[4u8; 100]).unwrap();
        assert_eq!(a.disk_bytes(), 5000 + CHUNK_HEADER_LEN as u64);
        assert_eq!(store.disk().used(), a.disk_bytes() + b.disk_bytes());
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        assert_eq!(store.disk().used(), b.disk_bytes());
        drop(b);
        assert_eq!(store.disk().used(), 0);
        assert_eq!(files_in(store.disk().dir()), 0);
    }

    #[test]
    fn the_directory_goes_with_the_last_store_and_file() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::default());
        let dir = store.disk().dir().to_path_buf();
        let file = store.write_chunk(b"abc").unwrap();
        drop(store);
        // The file holds the directory's manager: reading it must still work.
        assert!(dir.is_dir() && file.path().exists());
        drop(file);
        assert!(!dir.exists());
        assert_eq!(files_in(root.path()), 0);
    }

    #[test]
    fn counters_add_up_across_clones() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::Zstd(1));
        let clone = store.clone();
        let a = store.write_chunk(&vec![0u8; 10_000]).unwrap();
        let b = clone.write_chunk(&pseudo_random(2000, 5)).unwrap();
        assert_eq!(store.spill_files(), 2);
        assert_eq!(clone.spilled_bytes(), 12_000);
        assert_eq!(store.disk_bytes_written(), a.disk_bytes() + b.disk_bytes());
        assert!(a.disk_bytes() < 1000);
        drop((a, b));
        // Counters are history: removing files does not lower them.
        assert_eq!(store.spill_files(), 2);
    }

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
            assert!(matches!(block.batches(), Err(Error::Internal(_))));
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
            assert!(matches!(chunk.data(), Err(Error::Internal(_))));
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

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SpillStore>();
        check::<SpillFile>();
        check::<SpillableBatches>();
        check::<SpillableChunk>();
    }
}
