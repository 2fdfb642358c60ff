//! CSV: a header row (or none: the columns are then `column0`, `column1`, ... as
//! DuckDB names them), a chosen delimiter, RFC 4180 quoting (commas, quotes and
//! newlines inside quoted fields), empty fields read as null.
//!
//! Types are inferred from a sample of rows (int64, float64, bool, utf8, date,
//! timestamp) and can be forced per column. The file is cut into byte ranges aligned
//! to row starts (see [`split`]) that are decoded in parallel: rows without a
//! quote by `plain`, found by their delimiters and line feeds alone, and the
//! rest by Arrow's decoder.

mod diagnose;
mod header;
mod infer;
mod plain;
mod reader;
mod scan;
pub mod split;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub use self::writer::{encode_part, header_line};
use crate::error::{IoResultExt, Result};
use crate::storage::frame::SerializedSchema;
use crate::storage::frame::{column_index, BatchIter, FrameReadOptions, FrameSource};

/// Most partitions a CSV file is cut into, whatever blocksize is asked for: at 16
/// MiB a partition, a 64 GiB file (larger ones get larger partitions). Each costs
/// tasks and their bookkeeping; one-byte partitions of a 200 MB file once grew past
/// 23 GB.
pub const MAX_PARTITIONS: u64 = 1 << 12;

/// Bytes of CSV text a batch holds at most (a single longer row excepted).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Bytes of CSV text a batch may hold at least, however small `batch_rows` is.
const MIN_BATCH_BYTES: usize = 256 << 10;
/// What a batch costs per row and column beyond its text: Arrow's decoder reserves
/// an 8-byte field offset and 8 bytes of text for every row and every column of a
/// batch before it sees any data, and the arrays it builds take about 8 more.
const BYTES_PER_VALUE: usize = 24;

/// How much one batch may hold: the rows and the bytes of text, whichever is
/// reached first.
///
/// The memory pool does not reach a source (sources are opened by plans that
/// reserve per partition); the bound is by construction instead: a batch holds at
/// most `bytes` of text plus `rows` × columns × [`BYTES_PER_VALUE`], a few MB,
/// whatever the width of the rows. A fixed row count would not do: at 65,536 rows a
/// 50,000-column file would ask Arrow's decoder for 26 GB up front.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchBudget {
    /// Most rows in a batch.
    pub rows: usize,
    /// Most bytes of text in a batch.
    pub bytes: usize,
}

impl BatchBudget {
    /// The budget for rows of `columns` columns, given the caller's `batch_rows`
    /// (which the conversion sets from the memory limit): bytes scale with it, 128
    /// bytes a row, within [`MIN_BATCH_BYTES`] and [`MAX_BATCH_BYTES`]; rows are as
    /// many as fit in those bytes at [`BYTES_PER_VALUE`] a value.
    pub(crate) fn new(batch_rows: usize, columns: usize) -> Self {
        let batch_rows = batch_rows.max(1);
        let bytes = batch_rows
            .saturating_mul(128)
            .clamp(MIN_BATCH_BYTES, MAX_BATCH_BYTES);
        let per_row = columns.max(1).saturating_mul(BYTES_PER_VALUE);
        BatchBudget {
            rows: (bytes / per_row).clamp(1, batch_rows),
            bytes,
        }
    }
}

/// A CSV file opened for reading.
pub struct CsvSource {
    path: PathBuf,
    options: FrameReadOptions,
    /// Every column, with its inferred or forced type.
    full_schema: SchemaRef,
    /// What Arrow's decoder is asked for: `full_schema`, with text for the types
    /// [`infer::convert`] parses itself.
    decode_schema: SchemaRef,
    /// Every column as text, for the slow path.
    text_schema: SchemaRef,
    /// Indices of the columns read, in output order.
    projection: Vec<usize>,
    schema: SchemaRef,
    ranges: Vec<(u64, u64)>,
    /// Whether splitting followed the quotes of the whole file (so every quoted
    /// field closes, and partition readers need not check it again).
    quotes_checked: bool,
    budget: BatchBudget,
}

impl CsvSource {
    /// Opens `path`: reads the header, cuts the file into ranges of about
    /// `options.blocksize` bytes at row starts, infers the types from the first
    /// `options.infer_rows` rows, and applies forced types and the projection.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::error::Error::NotFound);
    /// [`Error::Corrupt`](crate::error::Error::Corrupt) for a file with no header;
    /// [`Error::Unsupported`](crate::error::Error::Unsupported) for UTF-16;
    /// [`Error::UnterminatedQuote`](crate::error::Error::UnterminatedQuote) for a
    /// quote never closed (here when the file spans several ranges or the sample
    /// reaches its end; otherwise when the range is read);
    /// [`Error::NoSuchColumn`](crate::error::Error::NoSuchColumn) for a forced type
    /// or projected column that is not in the header;
    /// [`Error::CsvFieldCount`](crate::error::Error::CsvFieldCount) when a sampled
    /// row has the wrong number of fields.
    pub fn open(path: &Path, options: &FrameReadOptions) -> Result<Self> {
        let len = std::fs::metadata(path).at(path)?.len();
        let header = header::read_header(path, len, options.delimiter, options.header)?;
        // Splitting first: it proves every quote closes before a sample is parsed.
        let ranges = split::split_ranges(
            path,
            header.data_start,
            len,
            options.blocksize,
            options.delimiter,
            b'"',
        )?;
        let mut full_schema = infer::infer_schema(
            path,
            len,
            header.data_start,
            options.delimiter,
            &header.names,
            options.infer_rows,
        )?;
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
        let quotes_checked = split::quotes_checked(header.data_start, len, options.blocksize);
        Self::assemble(
            path,
            options.clone(),
            full_schema,
            projection,
            ranges,
            quotes_checked,
        )
    }

    /// A source from what [`CsvSource::open`] found: no I/O.
    fn assemble(
        path: &Path,
        options: FrameReadOptions,
        full_schema: Schema,
        projection: Vec<usize>,
        ranges: Vec<(u64, u64)>,
        quotes_checked: bool,
    ) -> Result<Self> {
        let schema = Arc::new(full_schema.project(&projection)?);
        let with_types = |text: &dyn Fn(&DataType) -> bool| {
            Arc::new(Schema::new(
                full_schema
                    .fields()
                    .iter()
                    .map(|f| {
                        if text(f.data_type()) {
                            Field::new(f.name(), DataType::Utf8, true)
                        } else {
                            f.as_ref().clone()
                        }
                    })
                    .collect::<Vec<_>>(),
            ))
        };
        let decode_schema = with_types(&infer::decoded_as_text);
        let text_schema = with_types(&|_| true);
        let budget = BatchBudget::new(options.batch_rows, full_schema.fields().len());
        Ok(CsvSource {
            path: path.to_path_buf(),
            options,
            full_schema: Arc::new(full_schema),
            decode_schema,
            text_schema,
            projection,
            schema,
            quotes_checked,
            ranges,
            budget,
        })
    }

    /// What a worker needs to read any partition of this source without splitting
    /// the file or inferring its types again.
    pub fn layout(&self) -> CsvLayout {
        CsvLayout {
            delimiter: self.options.delimiter,
            batch_rows: self.options.batch_rows,
            full_schema: SerializedSchema::new(&self.full_schema),
            projection: self.projection.clone(),
            ranges: self.ranges.clone(),
            quotes_checked: self.quotes_checked,
            forced: self.options.dtypes.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// The source [`CsvSource::layout`] describes, at `path`.
    ///
    /// # Errors
    /// [`Error::BadPlan`](crate::error::Error::BadPlan) for a layout whose schema
    /// does not decode or whose projection names columns it has not.
    pub fn from_layout(path: &Path, layout: &CsvLayout) -> Result<Self> {
        let full_schema = layout.full_schema.decode()?;
        if let Some(&bad) = layout
            .projection
            .iter()
            .find(|&&i| i >= full_schema.fields().len())
        {
            return Err(crate::error::Error::BadPlan {
                reason: format!(
                    "a CSV layout projects column {bad} of {}",
                    full_schema.fields().len()
                ),
            });
        }
        check_ranges(path, &layout.ranges)?;
        let dtypes = full_schema
            .fields()
            .iter()
            .filter(|f| layout.forced.contains(f.name()))
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let options = FrameReadOptions {
            delimiter: layout.delimiter,
            batch_rows: layout.batch_rows,
            dtypes,
            ..FrameReadOptions::default()
        };
        Self::assemble(
            path,
            options,
            full_schema.as_ref().clone(),
            layout.projection.clone(),
            layout.ranges.clone(),
            layout.quotes_checked,
        )
    }
}

/// Checks a layout's byte ranges: each in order and within the file as it is now
/// (a file that shrank since the plan was made would be read short).
fn check_ranges(path: &Path, ranges: &[(u64, u64)]) -> Result<()> {
    use crate::error::{Error, IoResultExt};
    let len = std::fs::metadata(path).at(path)?.len();
    let mut previous_end = 0;
    for (i, &(start, end)) in ranges.iter().enumerate() {
        if start > end || start < previous_end {
            return Err(Error::BadPlan {
                reason: format!(
                    "the CSV layout of {} gives partition {i} the byte range {start} to \
                     {end}, which does not follow the one before (ending at {previous_end})",
                    path.display()
                ),
            });
        }
        if end > len {
            return Err(Error::BadPlan {
                reason: format!(
                    "{} is now {len} bytes, but the plan reads its partition {i} up to \
                     byte {end}: it changed since the plan was made; make the plan again",
                    path.display()
                ),
            });
        }
        previous_end = end;
    }
    Ok(())
}

/// A CSV source as a plan carries it (see [`CsvSource::layout`]): its partitions'
/// byte ranges, every column's type, the projection, and whether splitting already
/// proved every quote closes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CsvLayout {
    /// The field delimiter.
    pub delimiter: u8,
    /// Rows per record batch.
    pub batch_rows: usize,
    /// Every column of the file, with its inferred or forced type.
    pub full_schema: SerializedSchema,
    /// The columns read, in output order.
    pub projection: Vec<usize>,
    /// Each partition's byte range, at row starts.
    pub ranges: Vec<(u64, u64)>,
    /// Whether every quoted field is known to close.
    pub quotes_checked: bool,
    /// The columns whose type was forced rather than inferred: a value that does
    /// not parse is then the file's fault, and its error gives no advice to force
    /// another type. Absent (no column) in plans written before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<String>,
}

/// The name blockwise uses for a column type in messages and `info`.
pub fn type_name(dtype: &DataType) -> String {
    crate::storage::type_name(dtype)
}

impl FrameSource for CsvSource {
    fn format(&self) -> &'static str {
        "csv"
    }

    fn reader_bytes(&self) -> u64 {
        // The text read and not yet decoded (a batch's, and a read ahead), the
        // decoder's offsets and copy of the text, and the batch it builds.
        let text = self.budget.bytes as u64;
        let values = (self.budget.rows * self.full_schema.fields().len() * BYTES_PER_VALUE) as u64;
        2 * text + reader::READ + values
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::record_batch::RecordBatch;

    #[test]
    fn batch_budget_follows_the_row_width() {
        // Narrow rows: the caller's row count decides.
        let narrow = BatchBudget::new(65536, 3);
        assert_eq!((narrow.rows, narrow.bytes), (65536, MAX_BATCH_BYTES));
        // 50,000 columns: a handful of rows, so the decoder's up-front buffers
        // (rows × columns × 16 bytes) stay within a few MB instead of 26 GB.
        let wide = BatchBudget::new(65536, 50_000);
        assert!(wide.rows >= 1 && wide.rows * 50_000 * BYTES_PER_VALUE <= MAX_BATCH_BYTES);
        // More columns than the budget holds even for one row: still one row.
        assert_eq!(BatchBudget::new(65536, 10_000_000).rows, 1);
        // A small memory limit (small batch_rows) shrinks the bytes too.
        let small = BatchBudget::new(1024, 3);
        assert_eq!((small.rows, small.bytes), (1024, MIN_BATCH_BYTES));
        assert_eq!(BatchBudget::new(0, 0).rows, 1);
    }

    #[test]
    fn rows_after_a_field_longer_than_a_batch_are_still_batched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long.csv");
        // A quoted field past the batch's byte budget, with line breaks inside,
        // then many short rows: they must not all land in one batch.
        let long = "x\n".repeat(300 << 10);
        let mut text = format!("a,b\n1,\"{long}\"\n");
        for i in 0..5000 {
            text.push_str(&format!("{i},y\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let options = FrameReadOptions {
            batch_rows: 1024,
            ..FrameReadOptions::default()
        };
        let source = CsvSource::open(&p, &options).unwrap();
        let mut rows = 0;
        for batch in source.read_partition(0).unwrap() {
            let batch = batch.unwrap();
            assert!(
                batch.num_rows() <= source.budget.rows + 1,
                "{}",
                batch.num_rows()
            );
            rows += batch.num_rows();
        }
        assert_eq!(rows, 5001);
    }

    #[test]
    fn long_rows_cut_by_bytes_read_the_same_in_one_range_or_many() {
        use arrow::array::{Array, Int64Array, StringArray};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long_rows.csv");
        // Rows of 1 to 6 KB with quoted commas, quotes and line breaks, CRLF and LF
        // endings: the byte budget (256 KB) cuts batches mid-stream, at row ends
        // the reader must find itself.
        let mut text = String::from("id,text\r\n");
        let mut expected = Vec::new();
        for i in 0..2000i64 {
            let body = format!("r{i},\"q\"\"\n").repeat(1 + (i as usize * 7) % 6 * 100);
            expected.push(body.clone());
            let quoted = body.replace('"', "\"\"");
            let end = if i % 3 == 0 { "\r\n" } else { "\n" };
            text.push_str(&format!("{i},\"{quoted}\"{end}"));
        }
        std::fs::write(&p, &text).unwrap();
        for blocksize in [u64::MAX, 1 << 20, 300 << 10] {
            let mut options = FrameReadOptions::default().with_blocksize(blocksize);
            options.batch_rows = 1024;
            let source = CsvSource::open(&p, &options).unwrap();
            assert_eq!(source.quotes_checked, blocksize != u64::MAX);
            let (mut ids, mut texts) = (Vec::new(), Vec::new());
            for part in 0..source.num_partitions() {
                for batch in source.read_partition(part).unwrap() {
                    let batch = batch.unwrap();
                    let id = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap();
                    let t = batch
                        .column(1)
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap();
                    // At most the byte budget plus the row that crosses it.
                    let bytes: usize = (0..t.len()).map(|k| t.value(k).len()).sum();
                    assert!(bytes <= source.budget.bytes + (8 << 10), "{bytes}");
                    ids.extend(id.iter().map(Option::unwrap));
                    texts.extend((0..t.len()).map(|k| t.value(k).to_string()));
                }
            }
            assert_eq!(ids, (0..2000).collect::<Vec<_>>(), "blocksize {blocksize}");
            assert_eq!(texts, expected, "blocksize {blocksize}");
        }
    }

    /// Every row of `path` read by `source`, as one batch.
    fn read_whole(source: &CsvSource) -> Result<RecordBatch> {
        let mut batches = Vec::new();
        for part in 0..source.num_partitions() {
            for batch in source.read_partition(part)? {
                batches.push(batch?);
            }
        }
        Ok(arrow::compute::concat_batches(&source.schema, &batches)?)
    }

    #[test]
    fn plain_and_quoted_rows_read_as_arrows_reader_reads_them() {
        // Plain rows (the plain decoder's), then quoted ones with delimiters and
        // line breaks inside (Arrow's decoder's), then plain again, with CRLF
        // rows, NULLs, and no line break after the last row: every cutting of
        // ranges and batches gives what Arrow's reader gives for the whole file.
        let mut text = String::from("s,i,f,t\n");
        for k in 0..3000 {
            let s = match k % 7 {
                0 => String::new(),
                3 => format!("\"q,{k}\n\"\"x\"\"\""),
                _ => format!("v{k}"),
            };
            let s = if (1000..1500).contains(&k) || k % 7 != 3 {
                s
            } else {
                format!("w{k}")
            };
            let i = if k % 11 == 0 {
                String::new()
            } else {
                (k as i64 * 37 - 500).to_string()
            };
            let end = if k % 5 == 0 { "\r\n" } else { "\n" };
            text.push_str(&format!(
                "{s},{i},{}.25,{}{end}",
                k % 13,
                ["a", "", "c"][k % 3]
            ));
        }
        text.push_str("last,1,2.5,z");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mixed.csv");
        std::fs::write(&p, &text).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("t", DataType::Utf8, true),
        ]));
        let mut arrow_reader = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .build(std::fs::File::open(&p).unwrap())
            .unwrap();
        let want: Vec<RecordBatch> = arrow_reader.by_ref().map(|b| b.unwrap()).collect();
        let want = arrow::compute::concat_batches(&schema, &want).unwrap();
        assert_eq!(want.num_rows(), 3001);
        for (blocksize, batch_rows) in [(u64::MAX, 65536), (16 << 10, 100), (1000, 7)] {
            let mut options = FrameReadOptions::default().with_blocksize(blocksize);
            options.batch_rows = batch_rows;
            let source = CsvSource::open(&p, &options).unwrap();
            assert_eq!(source.schema, schema);
            let got = read_whole(&source).unwrap();
            assert_eq!(
                got, want,
                "blocksize {blocksize}, {batch_rows} rows a batch"
            );
            // Only some columns, in another order.
            let mut options = options.clone();
            options.columns = Some(vec!["t".into(), "i".into()]);
            let source = CsvSource::open(&p, &options).unwrap();
            let got = read_whole(&source).unwrap();
            assert_eq!(
                got.columns(),
                &[want.column(3).clone(), want.column(1).clone()]
            );
        }
    }

    #[test]
    fn rows_the_plain_decoder_refuses_fail_as_before() {
        // A row short of a field after plain rows: Arrow's decoder's error, with
        // its line; a value that does not parse, likewise.
        let dir = tempfile::tempdir().unwrap();
        for (bad, line) in [("1,2\n3\n", 203), ("1,2\nx,4\n", 203)] {
            let p = dir.path().join("bad.csv");
            let text = format!("a,b\n{}{bad}", "5,6\n".repeat(200));
            std::fs::write(&p, &text).unwrap();
            let options = FrameReadOptions {
                columns: Some(vec!["a".into()]),
                infer_rows: 10,
                ..Default::default()
            };
            let source = CsvSource::open(&p, &options).unwrap();
            let err = read_whole(&source).unwrap_err().to_string();
            assert!(err.contains(&format!("line {line}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn wide_rows_read_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.csv");
        let columns = 20_000;
        let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
        let row: Vec<String> = (0..columns).map(|i| i.to_string()).collect();
        let mut text = header.join(",") + "\n";
        for _ in 0..50 {
            text.push_str(&(row.join(",") + "\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let source = CsvSource::open(&p, &FrameReadOptions::default()).unwrap();
        let mut rows = 0;
        for batch in source.read_partition(0).unwrap() {
            let batch = batch.unwrap();
            assert!(batch.num_rows() <= source.budget.rows + 1);
            rows += batch.num_rows();
        }
        assert_eq!(rows, 50);
    }

    #[test]
    fn a_forced_type_travels_with_the_layout_and_its_error_gives_no_inference_advice() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, "a,b\n1,x\n2,y\n3.5,z\n").unwrap();
        let first_error = |source: &CsvSource| {
            source
                .read_partition(0)
                .unwrap()
                .find_map(|b| b.err())
                .unwrap()
                .to_string()
        };
        let forced = FrameReadOptions::default().with_dtype("a", DataType::Int64);
        let here = CsvSource::open(&p, &forced).unwrap();
        let layout = here.layout();
        assert_eq!(layout.forced, vec!["a".to_string()]);
        let json = serde_json::to_string(&layout).unwrap();
        let there = CsvSource::from_layout(&p, &serde_json::from_str(&json).unwrap()).unwrap();
        for source in [&here, &there] {
            let message = first_error(source);
            assert!(
                message.contains("line 4") && message.contains("3.5"),
                "{message}"
            );
            assert!(!message.contains("inferred"), "{message}");
        }
        // A plan written before `forced`: no column forced, as it was read then.
        let mut old: serde_json::Value = serde_json::to_value(&layout).unwrap();
        old.as_object_mut().unwrap().remove("forced");
        let old: CsvLayout = serde_json::from_value(old).unwrap();
        assert!(old.forced.is_empty());
        // Nothing forced: nothing written.
        let inferred = CsvSource::open(&p, &FrameReadOptions::default()).unwrap();
        assert!(!serde_json::to_string(&inferred.layout())
            .unwrap()
            .contains("forced"));
    }
}
