//! What every table format shares: read options, the source trait each format
//! implements, and the schema as plans carry it.
//!
//! A source is cut into partitions (CSV byte ranges, Parquet row groups, IPC
//! batches) that can be read independently and in parallel; each partition yields
//! Arrow record batches in order. Writing is a plan's business (see
//! [`crate::frame::write`]); each format encodes parts of its output.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

/// Default size of a CSV partition, as Dask's `read_csv(blocksize=...)`.
pub const DEFAULT_BLOCKSIZE: u64 = 64 << 20;
/// Default number of rows per record batch.
pub const DEFAULT_BATCH_ROWS: usize = 64 * 1024;

/// How to read a table: which columns, which types, how to cut it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameReadOptions {
    /// Read only these columns, in this order (all when `None`).
    pub columns: Option<Vec<String>>,
    /// Types forced for named columns instead of inferring them (CSV).
    pub dtypes: Vec<(String, DataType)>,
    /// Field delimiter (CSV).
    pub delimiter: u8,
    /// Whether the first row names the columns (CSV); without it they are
    /// `column0`, `column1`, ... as DuckDB names them.
    pub header: bool,
    /// Target bytes per partition (CSV).
    pub blocksize: u64,
    /// Rows per record batch.
    pub batch_rows: usize,
    /// Rows sampled to infer CSV column types.
    pub infer_rows: usize,
    /// Read only these row groups (Parquet).
    pub row_groups: Option<Vec<usize>>,
    /// Parquet: of each partition (each row group read), only these row ranges
    /// (`start..end` within the row group, in order), from its page index.
    pub row_ranges: Option<Vec<Vec<(u64, u64)>>>,
    /// Parquet: load the page index, for [`FrameSource::page_stats`].
    pub page_index: bool,
    /// Adds a column of this name (`Int64`, never NULL) numbering the rows in
    /// the file's order (see [`super::ordinal`]), where `columns` puts it (last
    /// without `columns`; not read when `columns` leaves it out).
    pub row_ordinal: Option<String>,
}

impl Default for FrameReadOptions {
    fn default() -> Self {
        FrameReadOptions {
            columns: None,
            dtypes: Vec::new(),
            delimiter: b',',
            header: true,
            blocksize: DEFAULT_BLOCKSIZE,
            batch_rows: DEFAULT_BATCH_ROWS,
            infer_rows: 1000,
            row_groups: None,
            row_ranges: None,
            page_index: false,
            row_ordinal: None,
        }
    }
}

impl FrameReadOptions {
    /// Reads only `columns`.
    pub fn with_columns(mut self, columns: Vec<String>) -> Self {
        self.columns = Some(columns);
        self
    }

    /// Forces the type of a column.
    pub fn with_dtype(mut self, column: impl Into<String>, dtype: DataType) -> Self {
        self.dtypes.push((column.into(), dtype));
        self
    }

    /// Sets the CSV delimiter.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets the target partition size in bytes.
    pub fn with_blocksize(mut self, blocksize: u64) -> Self {
        self.blocksize = blocksize.max(1);
        self
    }
}

/// An iterator over one partition's record batches.
pub type BatchIter<'a> = Box<dyn Iterator<Item = Result<RecordBatch>> + Send + 'a>;

/// A readable table in some format.
pub trait FrameSource: Send + Sync {
    /// The format's name, as `info` reports it ("csv", "parquet", "ipc").
    fn format(&self) -> &'static str;

    /// The schema of the batches this source yields (after projection).
    fn schema(&self) -> SchemaRef;

    /// Number of partitions.
    fn num_partitions(&self) -> usize;

    /// Number of rows, when the format records it (Parquet, IPC); `None` for CSV.
    fn num_rows(&self) -> Option<u64>;

    /// Bytes of input the partition covers (for progress and statistics).
    fn partition_bytes(&self, partition: usize) -> u64;

    /// About what the partition's rows take decoded, in Arrow's layout: what the
    /// tasks holding them are sized by. The bytes read, unless the format
    /// compresses or encodes them (Parquet).
    fn partition_memory_bytes(&self, partition: usize) -> u64 {
        self.partition_bytes(partition)
    }

    /// Reads partition `partition`'s batches in order.
    ///
    /// # Errors
    /// The iterator yields an error for data that cannot be read or decoded; opening
    /// the partition fails when its file cannot be opened.
    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>>;

    /// Bytes a reader of one partition holds whatever the data, beyond the
    /// batches it yields: its read buffer and its decoder's. Bounded by
    /// construction, they are not refused, but a task reading a partition
    /// reserves them (past the limit if need be) so that what it buffers beside
    /// them spills sooner, and the process's memory stays near the pool's.
    fn reader_bytes(&self) -> u64 {
        0
    }

    /// Reads partition `partition` as [`FrameSource::read_partition`] does, but
    /// the string or binary columns `dictionaries` (indices into
    /// [`FrameSource::schema`]) come as Arrow dictionaries of their type
    /// (`Int32` keys) wherever the partition stores them dictionary-encoded:
    /// a grouping then reads each distinct value once, not once a row. The
    /// batches' schema has the dictionary types of the columns that came so.
    /// Formats without dictionaries read as `read_partition`.
    ///
    /// # Errors
    /// As [`FrameSource::read_partition`].
    fn read_partition_as(&self, partition: usize, dictionaries: &[usize]) -> Result<BatchIter<'_>> {
        let _ = dictionaries;
        self.read_partition(partition)
    }

    /// Extra facts for `info` (row groups, ...), as key and JSON value.
    fn details(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }

    /// What the file's statistics say of `column` in each partition (Parquet's
    /// row-group statistics): bounds a filter can be tested against before the
    /// partition is read. `None` when the format or the file keeps none.
    fn column_stats(&self, _column: &str) -> Option<ColumnStats> {
        None
    }

    /// What the file's page index says of `column` in partition `partition`:
    /// a [`ColumnStats`] entry a page, and where each page's rows start in the
    /// partition. `None` when the file has no page index for it, or the source
    /// was opened without loading it ([`FrameReadOptions::page_index`]).
    fn page_stats(&self, _column: &str, _partition: usize) -> Option<PageStats> {
        None
    }
}

/// A column's pages in one partition.
#[derive(Debug, Clone)]
pub struct PageStats {
    /// A page an entry (its `rows` are the page's rows).
    pub stats: ColumnStats,
    /// The row of the partition each page starts at.
    pub first_rows: Vec<u64>,
}

/// A column's statistics, one entry a partition, in partition order.
#[derive(Debug, Clone)]
pub struct ColumnStats {
    /// The smallest value (NULL when unknown), of the column's type.
    pub mins: arrow::array::ArrayRef,
    /// The largest value (NULL when unknown); NaN is not counted (Parquet's
    /// statistics leave it out).
    pub maxes: arrow::array::ArrayRef,
    /// NULLs in the partition, when known.
    pub null_counts: Vec<Option<u64>>,
    /// Rows in the partition.
    pub rows: Vec<u64>,
}

/// The index of column `name` in `schema`.
///
/// # Errors
/// [`Error::NoSuchColumn`] listing the columns of `path`.
pub fn column_index(path: &Path, schema: &Schema, name: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| Error::NoSuchColumn {
        path: path.to_path_buf(),
        column: name.to_string(),
        available: schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Resolves a `--columns` projection against `full`: the column indices (or `None`
/// for all columns) and the projected schema, in the order asked for.
///
/// # Errors
/// [`Error::NoSuchColumn`] for a name not in `full`.
pub fn project(
    path: &Path,
    full: &SchemaRef,
    columns: Option<&[String]>,
) -> Result<(Option<Vec<usize>>, SchemaRef)> {
    match columns {
        None => Ok((None, full.clone())),
        Some(cols) => {
            let indices = cols
                .iter()
                .map(|c| column_index(path, full, c))
                .collect::<Result<Vec<_>>>()?;
            let schema = Arc::new(full.project(&indices)?);
            Ok((Some(indices), schema))
        }
    }
}

/// A schema as a plan carries it: the Arrow IPC encoding of the schema (field names,
/// types, nullability and metadata exactly), as hex digits in JSON, so that a worker
/// in another process rebuilds the very same schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SerializedSchema(String);

impl SerializedSchema {
    /// The serialized form of `schema`.
    pub fn new(schema: &Schema) -> Self {
        // Dictionary fields need ids; the tracker hands them out in field order.
        let mut tracker = arrow::ipc::writer::DictionaryTracker::new(false);
        let fbb = arrow::ipc::convert::IpcSchemaEncoder::new()
            .with_dictionary_tracker(&mut tracker)
            .schema_to_fb(schema);
        SerializedSchema(to_hex(fbb.finished_data()))
    }

    /// The schema again.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the text is not a serialized schema.
    pub fn decode(&self) -> Result<SchemaRef> {
        let bad = |detail: String| Error::BadPlan {
            reason: format!("a table schema in the plan does not decode: {detail}"),
        };
        let bytes = from_hex(&self.0).ok_or_else(|| bad("not hex digits".into()))?;
        let fb = arrow::ipc::root_as_schema(&bytes).map_err(|e| bad(e.to_string()))?;
        let schema = arrow::ipc::convert::try_fb_to_schema(fb).map_err(|e| bad(e.to_string()))?;
        Ok(Arc::new(schema))
    }
}

/// `bytes` as lowercase hex digits.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
    text
}

/// The bytes `text` spells in hex digits, or `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}
