//! CSV: a header row, a chosen delimiter, RFC 4180 quoting (commas, quotes and
//! newlines inside quoted fields), empty fields read as null.
//!
//! Types are inferred from a sample of rows (int64, float64, bool, utf8, date,
//! timestamp) and can be forced per column. The file is cut into byte ranges aligned
//! to row starts (see [`split`]) that are decoded in parallel.

mod diagnose;
mod reader;
pub mod split;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::csv::reader::{Decoder, Format};
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use self::writer::CsvSink;
use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::{column_index, BatchIter, FrameReadOptions, FrameSource};

/// A CSV file opened for reading.
pub struct CsvSource {
    path: PathBuf,
    options: FrameReadOptions,
    /// Every column, with its inferred or forced type.
    full_schema: SchemaRef,
    /// Indices of the columns read, in output order.
    projection: Vec<usize>,
    schema: SchemaRef,
    ranges: Vec<(u64, u64)>,
}

impl CsvSource {
    /// Opens `path`: reads the header, infers the types from the first
    /// `options.infer_rows` rows, applies forced types and the projection, and cuts
    /// the file into ranges of about `options.blocksize` bytes.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::NoSuchColumn`] for a forced type or projected
    /// column that is not in the header; [`Error::CsvFieldCount`] when a sampled row
    /// has the wrong number of fields.
    pub fn open(path: &Path, options: &FrameReadOptions) -> Result<Self> {
        let len = std::fs::metadata(path).at(path)?.len();
        let (data_start, names) = split::read_header(path, options.delimiter)?;
        let mut full_schema = infer_schema(path, options, &names)?;
        for (name, dtype) in &options.dtypes {
            let i = column_index(path, &full_schema, name)?;
            let mut fields: Vec<Field> = full_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields[i] = Field::new(name, dtype.clone(), true);
            full_schema = Schema::new(fields);
        }
        let projection = match &options.columns {
            Some(cols) => cols
                .iter()
                .map(|c| column_index(path, &full_schema, c))
                .collect::<Result<Vec<_>>>()?,
            None => (0..full_schema.fields().len()).collect(),
        };
        let schema = Arc::new(full_schema.project(&projection)?);
        let ranges = split::split_ranges(path, data_start, len, options.blocksize, b'"')?;
        Ok(CsvSource {
            path: path.to_path_buf(),
            options: options.clone(),
            full_schema: Arc::new(full_schema),
            projection,
            schema,
            ranges,
        })
    }

    fn decoder(&self) -> Decoder {
        ReaderBuilder::new(self.full_schema.clone())
            .with_header(false)
            .with_delimiter(self.options.delimiter)
            .with_batch_size(self.options.batch_rows)
            .with_projection(self.projection.clone())
            .build_decoder()
    }
}

/// Infers column types from the first rows. All-empty columns become utf8; timestamps
/// are read at microsecond precision whatever precision the sample showed, so a later
/// value with more fractional digits still parses.
fn infer_schema(path: &Path, options: &FrameReadOptions, names: &[String]) -> Result<Schema> {
    let file = std::fs::File::open(path).at(path)?;
    let format = Format::default()
        .with_header(true)
        .with_delimiter(options.delimiter);
    let (inferred, _) =
        match format.infer_schema(std::io::BufReader::new(file), Some(options.infer_rows)) {
            Ok(r) => r,
            Err(e) => return Err(sample_error(path, options, names.len(), e)),
        };
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .zip(names)
        .map(|(f, name)| {
            let dtype = match f.data_type() {
                DataType::Null => DataType::Utf8,
                DataType::Timestamp(_, tz) => {
                    DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                }
                other => other.clone(),
            };
            Field::new(name, dtype, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// An inference failure is a row of the wrong length in the sample: find it exactly.
fn sample_error(
    path: &Path,
    options: &FrameReadOptions,
    columns: usize,
    e: arrow::error::ArrowError,
) -> Error {
    let mut reader = match csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_path(path)
    {
        Ok(r) => r,
        Err(err) => return split::csv_error(path, err),
    };
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(true) if record.len() != columns => {
                return Error::CsvFieldCount {
                    path: path.to_path_buf(),
                    line,
                    expected: columns,
                    found: record.len(),
                }
            }
            Ok(true) => {}
            Ok(false) => return Error::corrupt(path, "csv", e),
            Err(err) => return split::csv_error(path, err),
        }
    }
}

/// The name blockwise uses for a column type in messages and `info`.
pub fn type_name(dtype: &DataType) -> String {
    crate::storage::type_name(dtype)
}

impl FrameSource for CsvSource {
    fn format(&self) -> &'static str {
        "csv"
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn num_partitions(&self) -> usize {
        self.ranges.len()
    }

    fn num_rows(&self) -> Option<u64> {
        None
    }

    fn partition_bytes(&self, partition: usize) -> u64 {
        let (s, e) = self.ranges[partition];
        e - s
    }

    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>> {
        Ok(Box::new(reader::PartitionReader::new(
            self,
            self.ranges[partition],
        )?))
    }
}
