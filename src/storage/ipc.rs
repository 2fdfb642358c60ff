//! Arrow IPC files (`.arrow`, `.feather` v2): each record batch is a partition. The
//! IPC stream format (no footer) is read too, as one sequential partition.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use arrow::ipc::CompressionType;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::{project, BatchIter, FrameReadOptions, FrameSink, FrameSource};

const FILE_MAGIC: &[u8] = b"ARROW1";

/// An Arrow IPC file or stream opened for reading.
pub struct IpcSource {
    path: PathBuf,
    stream: bool,
    batches: usize,
    rows: Option<u64>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    len: u64,
}

fn corrupt(path: &Path, e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(_, io) => Error::io(path, io),
        other => Error::corrupt(path, "arrow ipc", other),
    }
}

impl IpcSource {
    /// Opens `path`, reading the footer (file format) or the schema (stream format).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a file that is neither; [`Error::NoSuchColumn`].
    pub fn open(path: &Path, options: &FrameReadOptions) -> Result<Self> {
        let mut file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let mut magic = [0u8; 6];
        let stream = file.read_exact(&mut magic).is_err() || magic != FILE_MAGIC;
        let file = File::open(path).at(path)?;
        let (full, batches, rows): (SchemaRef, usize, Option<u64>) = if stream {
            let reader =
                StreamReader::try_new(BufReader::new(file), None).map_err(|e| corrupt(path, e))?;
            (reader.schema(), 1, None)
        } else {
            let reader = FileReader::try_new_buffered(file, None).map_err(|e| corrupt(path, e))?;
            let schema = reader.schema();
            let n = reader.num_batches();
            let rows = count_rows(path)?;
            (schema, n, Some(rows))
        };
        let (projection, schema) = project(path, &full, options.columns.as_deref())?;
        Ok(IpcSource {
            path: path.to_path_buf(),
            stream,
            batches,
            rows,
            projection,
            schema,
            len,
        })
    }
}

/// Rows in an IPC file: the sum of its batches' lengths, read from the footer's
/// blocks one message header at a time.
fn count_rows(path: &Path) -> Result<u64> {
    let file = File::open(path).at(path)?;
    let reader = FileReader::try_new_buffered(file, Some(vec![])).map_err(|e| corrupt(path, e))?;
    let mut rows = 0u64;
    for batch in reader {
        rows += batch.map_err(|e| corrupt(path, e))?.num_rows() as u64;
    }
    Ok(rows)
}

impl FrameSource for IpcSource {
    fn format(&self) -> &'static str {
        "ipc"
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn num_partitions(&self) -> usize {
        self.batches
    }

    fn num_rows(&self) -> Option<u64> {
        self.rows
    }

    fn partition_bytes(&self, _partition: usize) -> u64 {
        self.len / self.batches.max(1) as u64
    }

    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>> {
        let path = self.path.clone();
        let file = File::open(&path).at(&path)?;
        if self.stream {
            let reader = StreamReader::try_new(BufReader::new(file), self.projection.clone())
                .map_err(|e| corrupt(&path, e))?;
            return Ok(Box::new(
                reader.map(move |b| b.map_err(|e| corrupt(&path, e))),
            ));
        }
        let mut reader = FileReader::try_new_buffered(file, self.projection.clone())
            .map_err(|e| corrupt(&path, e))?;
        reader.set_index(partition).map_err(|e| corrupt(&path, e))?;
        let batch = reader.next();
        Ok(Box::new(
            batch
                .into_iter()
                .map(move |b| b.map_err(|e| corrupt(&path, e))),
        ))
    }

    fn details(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("batches", self.batches.into())]
    }
}

/// Compression of the buffers in a written IPC file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpcCompression {
    /// Uncompressed (so readers can memory-map it).
    #[default]
    None,
    /// LZ4 frames (pyarrow's feather default).
    Lz4,
    /// zstd.
    Zstd,
}

/// An Arrow IPC file being written.
pub struct IpcSink {
    path: PathBuf,
    writer: FileWriter<BufWriter<File>>,
}

impl IpcSink {
    /// Creates `path` for rows of `schema`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, schema: SchemaRef, compression: IpcCompression) -> Result<Self> {
        let file = File::create(path).at(path)?;
        let codec = match compression {
            IpcCompression::None => None,
            IpcCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
            IpcCompression::Zstd => Some(CompressionType::ZSTD),
        };
        let options = IpcWriteOptions::default().try_with_compression(codec)?;
        let writer = FileWriter::try_new_with_options(
            BufWriter::with_capacity(1 << 20, file),
            &schema,
            options,
        )
        .map_err(|e| corrupt(path, e))?;
        Ok(IpcSink {
            path: path.to_path_buf(),
            writer,
        })
    }
}

impl FrameSink for IpcSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| corrupt(&self.path, e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.writer.finish().map_err(|e| corrupt(&self.path, e))?;
        let inner = self
            .writer
            .into_inner()
            .map_err(|e| corrupt(&self.path, e))?;
        inner
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        Ok(())
    }
}
