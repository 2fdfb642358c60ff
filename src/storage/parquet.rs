//! Parquet: a single file or a directory of part files, read by row group (each row
//! group of each file is a partition), written with zstd in row groups bounded by
//! both a row count and a byte size.
//!
//! Writing encodes each batch's columns in parallel (one column per task) into the
//! open row group and appends the column chunks in order, so a wide table keeps both
//! cores busy while the output stays what a sequential writer would produce.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use crate::error::{Error, IoResultExt, Result};
use crate::memory::{MemoryPool, Reservation};
use crate::storage::frame::{project, BatchIter, FrameReadOptions, FrameSink, FrameSource};

/// The row-group row limit used when none is given (pyarrow's default).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 20;
/// Row groups are also cut at this many buffered bytes, so wide rows stay bounded.
pub const ROW_GROUP_BYTES: usize = 128 << 20;

struct PartFile {
    path: PathBuf,
    meta: ArrowReaderMetadata,
}

/// A Parquet file or directory of parts, opened for reading.
pub struct ParquetSource {
    files: Vec<PartFile>,
    /// (file, row group) per partition.
    partitions: Vec<(usize, usize)>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    batch_rows: usize,
}

/// Lists the part files of a directory dataset: `*.parquet` files, sorted by name
/// with numbers compared as numbers (`part-2` before `part-10`).
pub fn list_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "parquet" || x == "parq"))
        .collect();
    parts.sort_by_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    Ok(parts)
}

fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

fn parquet_error(path: &Path, e: ParquetError) -> Error {
    match e {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => Error::io(path, *io),
            Err(other) => Error::corrupt(path, "parquet", other),
        },
        other => Error::corrupt(path, "parquet", other),
    }
}

impl ParquetSource {
    /// Opens a file or a directory of parts, reading only footers.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a truncated or invalid file; [`Error::Usage`] when the
    /// parts of a directory have different schemas; [`Error::NoSuchColumn`].
    pub fn open(path: &Path, options: &FrameReadOptions) -> Result<Self> {
        let paths = if path.is_dir() {
            list_parts(path)?
        } else {
            vec![path.to_path_buf()]
        };
        if paths.is_empty() {
            return Err(Error::UnknownFormat {
                path: path.to_path_buf(),
                hint: "the directory holds no .parquet files".into(),
            });
        }
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let file = File::open(&p).at(&p)?;
            let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                .map_err(|e| parquet_error(&p, e))?;
            if let Some(first) = files.first() {
                let first: &PartFile = first;
                if first.meta.schema().fields() != meta.schema().fields() {
                    return Err(Error::Usage(format!(
                        "{}: its schema differs from {}'s; every part of a dataset must share one schema",
                        p.display(),
                        first.path.display()
                    )));
                }
            }
            files.push(PartFile { path: p, meta });
        }
        let full = files[0].meta.schema().clone();
        let (projection, schema) = project(path, &full, options.columns.as_deref())?;
        let mut partitions = Vec::new();
        for (f, file) in files.iter().enumerate() {
            for rg in 0..file.meta.metadata().num_row_groups() {
                partitions.push((f, rg));
            }
        }
        if let Some(groups) = &options.row_groups {
            if let Some(&bad) = groups.iter().find(|&&g| g >= partitions.len()) {
                return Err(Error::Usage(format!(
                    "row group {bad} does not exist; {} has {} row groups",
                    path.display(),
                    partitions.len()
                )));
            }
            partitions = groups.iter().map(|&g| partitions[g]).collect();
        }
        Ok(ParquetSource {
            files,
            partitions,
            projection,
            schema,
            batch_rows: options.batch_rows,
        })
    }
}

impl FrameSource for ParquetSource {
    fn format(&self) -> &'static str {
        "parquet"
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn num_partitions(&self) -> usize {
        self.partitions.len()
    }

    fn num_rows(&self) -> Option<u64> {
        Some(
            self.partitions
                .iter()
                .map(|&(f, rg)| self.files[f].meta.metadata().row_group(rg).num_rows() as u64)
                .sum(),
        )
    }

    fn partition_bytes(&self, partition: usize) -> u64 {
        let (f, rg) = self.partitions[partition];
        let group = self.files[f].meta.metadata().row_group(rg);
        match &self.projection {
            // Only the projected columns' chunks are read (flat schemas: one leaf each).
            Some(cols) if cols.len() < group.num_columns() => cols
                .iter()
                .filter_map(|&c| group.columns().get(c))
                .map(|c| c.compressed_size() as u64)
                .sum(),
            _ => group.compressed_size() as u64,
        }
    }

    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>> {
        let (f, rg) = self.partitions[partition];
        let part = &self.files[f];
        let file = File::open(&part.path).at(&part.path)?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, part.meta.clone())
                .with_row_groups(vec![rg])
                .with_batch_size(self.batch_rows);
        // The reader yields projected columns in file order; put them back in the
        // order the user asked for.
        let mut reorder = None;
        if let Some(cols) = &self.projection {
            let mut in_file = cols.clone();
            in_file.sort_unstable();
            in_file.dedup();
            let mask = ProjectionMask::roots(part.meta.parquet_schema(), in_file.iter().copied());
            builder = builder.with_projection(mask);
            let order: Vec<usize> = cols
                .iter()
                .map(|c| in_file.binary_search(c).unwrap_or(0))
                .collect();
            reorder = Some(order);
        }
        let reader = builder.build().map_err(|e| parquet_error(&part.path, e))?;
        let path = part.path.clone();
        Ok(Box::new(reader.map(move |b| {
            let batch = b.map_err(|e| Error::corrupt(&path, "parquet", e))?;
            match &reorder {
                Some(order) => Ok(batch.project(order)?),
                None => Ok(batch),
            }
        })))
    }

    fn details(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("files", self.files.len().into()),
            ("row_groups", self.partitions.len().into()),
        ]
    }
}

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

/// A Parquet file being written.
///
/// Each incoming batch is encoded straight into the open row group's column writers
/// (one column per task), so what is buffered is encoded pages, not Arrow arrays.
pub struct ParquetSink {
    path: PathBuf,
    schema: SchemaRef,
    writer: SerializedFileWriter<BufWriter<File>>,
    factory: ArrowRowGroupWriterFactory,
    row_group_rows: usize,
    columns: Option<Vec<ArrowColumnWriter>>,
    rows: usize,
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
        Ok(ParquetSink {
            path: path.to_path_buf(),
            schema,
            writer,
            factory,
            row_group_rows: options.row_group_rows.max(1),
            columns: None,
            rows: 0,
            reservation: None,
        })
    }

    /// Accounts the buffered row group against `pool`.
    pub fn with_memory_pool(mut self, pool: &MemoryPool) -> Self {
        self.reservation = Some(pool.reserve("parquet writer"));
        self
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<()> {
        let path = &self.path;
        if self.columns.is_none() {
            let index = self.writer.flushed_row_groups().len();
            self.columns = Some(
                self.factory
                    .create_column_writers(index)
                    .map_err(|e| parquet_error(path, e))?,
            );
        }
        let mut leaves = Vec::new();
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column).map_err(|e| parquet_error(path, e))?);
        }
        let columns = self
            .columns
            .as_mut()
            .ok_or_else(|| Error::Internal("no open row group".into()))?;
        columns
            .par_iter_mut()
            .zip(leaves.into_par_iter())
            .try_for_each(|(w, leaf)| w.write(&leaf))
            .map_err(|e| parquet_error(path, e))?;
        self.rows += batch.num_rows();
        let buffered: usize = columns.iter().map(ArrowColumnWriter::memory_size).sum();
        if let Some(r) = &mut self.reservation {
            r.resize(buffered as u64);
        }
        if self.rows >= self.row_group_rows || buffered >= ROW_GROUP_BYTES {
            self.close_row_group()?;
        }
        Ok(())
    }

    fn close_row_group(&mut self) -> Result<()> {
        let Some(columns) = self.columns.take() else {
            return Ok(());
        };
        let path = &self.path;
        let chunks: Vec<ArrowColumnChunk> = columns
            .into_par_iter()
            .map(ArrowColumnWriter::close)
            .collect::<std::result::Result<_, ParquetError>>()
            .map_err(|e| parquet_error(path, e))?;
        let mut group = self
            .writer
            .next_row_group()
            .map_err(|e| parquet_error(path, e))?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut group)
                .map_err(|e| parquet_error(path, e))?;
        }
        group.close().map_err(|e| parquet_error(path, e))?;
        self.rows = 0;
        if let Some(r) = &mut self.reservation {
            r.resize(0);
        }
        Ok(())
    }
}

impl FrameSink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (self.row_group_rows - self.rows).min(batch.num_rows() - offset);
            self.encode(&batch.slice(offset, take))?;
            offset += take;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.close_row_group()?;
        let path = self.path.clone();
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
