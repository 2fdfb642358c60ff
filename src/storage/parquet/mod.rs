//! Parquet: a single file or a directory of part files, read by row group (each row
//! group of each file is a partition), written with zstd in row groups bounded by
//! both a row count and a byte size.
//!
//! Writing encodes each batch's columns in parallel (one column per task) into the
//! open row group and appends the column chunks in order, so a wide table keeps both
//! cores busy while the output stays what a sequential writer would produce.

mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;

pub use self::writer::{ParquetSink, ParquetWriteOptions, DEFAULT_ROW_GROUP_ROWS, ROW_GROUP_BYTES};
use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::{project, BatchIter, FrameReadOptions, FrameSource};

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

/// Maps a parquet error on `path`, keeping an I/O cause (a full disk) recognisable.
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
