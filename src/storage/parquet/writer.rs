//! Writing Parquet.
//!
//! Batches are encoded straight into an open row group's column writers, so what is
//! buffered is encoded pages, not Arrow arrays. Two ways in:
//! - [`ParquetSink::write`] takes batches in order on one thread and encodes each
//!   batch's columns in parallel;
//! - the sink's [`PartitionEncoder`] encodes whole row groups on the threads that
//!   decode the input partitions, and the sink only appends the finished column
//!   chunks in partition order. Encoding is then as parallel as decoding; row groups
//!   end at `row_group_rows` or at the end of a partition, whichever comes first.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use super::parquet_error;
use crate::error::{Error, IoResultExt, Result};
use crate::memory::{MemoryPool, Reservation};
use crate::storage::frame::{BatchIter, EncodedPiece, FrameSink, PartitionEncoder};

/// The row-group row limit used when none is given (pyarrow's default).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 20;
/// Row groups are also cut at this many buffered bytes, so wide rows stay bounded.
pub const ROW_GROUP_BYTES: usize = 128 << 20;

/// How to write Parquet.
#[derive(Debug, Clone, Copy)]
pub struct ParquetWriteOptions {
    /// zstd level, or `None` for no compression.
    pub zstd_level: Option<i32>,
    /// Rows per row group at most.
    pub row_group_rows: usize,
}

impl Default for ParquetWriteOptions {
    fn default() -> Self {
        ParquetWriteOptions {
            zstd_level: Some(3),
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }
}

/// What every encoding thread shares: the schema, the column writer factory, limits.
struct Shared {
    path: PathBuf,
    schema: SchemaRef,
    factory: ArrowRowGroupWriterFactory,
    row_group_rows: usize,
    /// Encoded bytes a row group may buffer before it is closed.
    row_group_bytes: usize,
    /// Where buffered row groups are accounted, if anywhere.
    pool: Option<MemoryPool>,
}

/// A finished row group: its column chunks, ready to append.
struct EncodedRowGroup {
    chunks: Vec<ArrowColumnChunk>,
}

impl EncodedRowGroup {
    /// Bytes of encoded pages the group holds.
    fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.close().bytes_written).sum()
    }
}

/// A row group being encoded.
struct OpenRowGroup {
    writers: Vec<ArrowColumnWriter>,
    rows: usize,
}

impl Shared {
    fn open(&self) -> Result<OpenRowGroup> {
        // The index only matters for encrypted files, which we do not write.
        let writers = self
            .factory
            .create_column_writers(0)
            .map_err(|e| parquet_error(&self.path, e))?;
        Ok(OpenRowGroup { writers, rows: 0 })
    }

    /// Encodes `batch` (which fits the open row group) into `group`.
    fn encode(&self, group: &mut OpenRowGroup, batch: &RecordBatch, parallel: bool) -> Result<()> {
        let mut leaves = Vec::with_capacity(group.writers.len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column).map_err(|e| parquet_error(&self.path, e))?);
        }
        let result = if parallel {
            group
                .writers
                .par_iter_mut()
                .zip(leaves.into_par_iter())
                .try_for_each(|(w, leaf)| w.write(&leaf))
        } else {
            group
                .writers
                .iter_mut()
                .zip(leaves)
                .try_for_each(|(w, leaf)| w.write(&leaf))
        };
        result.map_err(|e| parquet_error(&self.path, e))?;
        group.rows += batch.num_rows();
        Ok(())
    }

    fn is_full(&self, group: &OpenRowGroup) -> bool {
        group.rows >= self.row_group_rows || buffered(group) >= self.row_group_bytes
    }

    fn close(&self, group: OpenRowGroup, parallel: bool) -> Result<EncodedRowGroup> {
        let chunks = if parallel {
            group
                .writers
                .into_par_iter()
                .map(ArrowColumnWriter::close)
                .collect::<std::result::Result<Vec<_>, ParquetError>>()
        } else {
            group
                .writers
                .into_iter()
                .map(ArrowColumnWriter::close)
                .collect()
        };
        Ok(EncodedRowGroup {
            chunks: chunks.map_err(|e| parquet_error(&self.path, e))?,
        })
    }

    /// Feeds `batch` into `open` (opening groups as needed), handing every group that
    /// fills up to `done`.
    fn push(
        &self,
        open: &mut Option<OpenRowGroup>,
        batch: &RecordBatch,
        parallel: bool,
        done: &mut dyn FnMut(EncodedRowGroup) -> Result<()>,
    ) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let group = match open {
                Some(g) => g,
                None => open.insert(self.open()?),
            };
            let take = (self.row_group_rows - group.rows).min(batch.num_rows() - offset);
            self.encode(group, &batch.slice(offset, take), parallel)?;
            offset += take;
            if self.is_full(group) {
                if let Some(full) = open.take() {
                    done(self.close(full, parallel)?)?;
                }
            }
        }
        Ok(())
    }
}

fn buffered(group: &OpenRowGroup) -> usize {
    group
        .writers
        .iter()
        .map(ArrowColumnWriter::memory_size)
        .sum()
}

impl PartitionEncoder for Shared {
    fn encode_partition(
        &self,
        batches: BatchIter<'_>,
        emit: &mut dyn FnMut(EncodedPiece) -> Result<()>,
    ) -> Result<u64> {
        let mut reservation = self
            .pool
            .as_ref()
            .map(|p| p.reserve("parquet row group encoder"));
        let mut open = None;
        let mut rows = 0u64;
        let mut done = |group: EncodedRowGroup| {
            emit(EncodedPiece {
                bytes: group.bytes(),
                data: Box::new(group),
            })
        };
        for batch in batches {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            self.push(&mut open, &batch, false, &mut done)?;
            if let Some(r) = &mut reservation {
                r.resize(open.as_ref().map_or(0, buffered) as u64);
            }
        }
        if let Some(group) = open {
            done(self.close(group, false)?)?;
        }
        Ok(rows)
    }
}

/// A Parquet file being written.
pub struct ParquetSink {
    shared: Arc<Shared>,
    writer: SerializedFileWriter<BufWriter<File>>,
    open: Option<OpenRowGroup>,
    reservation: Option<Reservation>,
}

impl ParquetSink {
    /// Creates `path` for rows of `schema`.
    ///
    /// # Errors
    /// When the file cannot be created or the options are invalid.
    pub fn create(path: &Path, schema: SchemaRef, options: ParquetWriteOptions) -> Result<Self> {
        let compression = match options.zstd_level {
            Some(level) => Compression::ZSTD(
                ZstdLevel::try_new(level)
                    .map_err(|e| Error::Usage(format!("--compression: {e}")))?,
            ),
            None => Compression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
            .build();
        let file = File::create(path).at(path)?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            Some(props),
        )
        .map_err(|e| parquet_error(path, e))?;
        let (writer, factory) = writer
            .into_serialized_writer()
            .map_err(|e| parquet_error(path, e))?;
        let shared = Shared {
            path: path.to_path_buf(),
            schema,
            factory,
            row_group_rows: options.row_group_rows.max(1),
            row_group_bytes: ROW_GROUP_BYTES,
            pool: None,
        };
        Ok(ParquetSink {
            shared: Arc::new(shared),
            writer,
            open: None,
            reservation: None,
        })
    }

    /// Accounts buffered row groups against `pool`, and caps each so that `held` of
    /// them (open or finished, on every thread) fit a quarter of its limit.
    pub fn with_memory_pool(mut self, pool: &MemoryPool, held: usize) -> Self {
        let cap = (pool.limit() / (4 * held.max(1) as u64)) as usize;
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.row_group_bytes = cap.clamp(4096, ROW_GROUP_BYTES);
            shared.pool = Some(pool.clone());
        }
        self.reservation = Some(pool.reserve("parquet writer"));
        self
    }

    fn append(&mut self, group: EncodedRowGroup) -> Result<()> {
        let path = &self.shared.path;
        let mut row_group = self
            .writer
            .next_row_group()
            .map_err(|e| parquet_error(path, e))?;
        for chunk in group.chunks {
            chunk
                .append_to_row_group(&mut row_group)
                .map_err(|e| parquet_error(path, e))?;
        }
        row_group.close().map_err(|e| parquet_error(path, e))?;
        Ok(())
    }
}

impl FrameSink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let shared = self.shared.clone();
        let mut open = self.open.take();
        let mut finished = Vec::new();
        shared.push(&mut open, batch, true, &mut |group| {
            finished.push(group);
            Ok(())
        })?;
        for group in finished {
            self.append(group)?;
        }
        if let Some(r) = &mut self.reservation {
            r.resize(open.as_ref().map_or(0, buffered) as u64);
        }
        self.open = open;
        Ok(())
    }

    fn partition_encoder(&self) -> Option<Arc<dyn PartitionEncoder>> {
        Some(self.shared.clone())
    }

    fn write_encoded(&mut self, piece: EncodedPiece) -> Result<()> {
        let group = piece
            .data
            .downcast::<EncodedRowGroup>()
            .map_err(|_| Error::Internal("parquet sink was handed another format's data".into()))?;
        self.append(*group)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        if let Some(group) = self.open.take() {
            let encoded = self.shared.close(group, true)?;
            self.append(encoded)?;
        }
        let path = self.shared.path.clone();
        let inner = self
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&path, e))?;
        inner
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        Ok(())
    }
}
