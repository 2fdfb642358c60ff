//! Writing CSV: a header row, RFC 4180 quoting where needed, ISO-8601 dates and
//! timestamps, nulls as empty fields.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::csv::WriterBuilder;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::{BatchIter, EncodedPiece, FrameSink, PartitionEncoder};

/// A CSV file being written.
///
/// The header is written when the file is created, so a table with no rows still
/// has one; each batch is formatted into text by [`CsvEncoder`], on the sink's
/// thread or, through the sink's partition encoder, on the threads that decode the
/// input, where formatting numbers and dates is most of the work.
pub struct CsvSink {
    path: PathBuf,
    encoder: Arc<CsvEncoder>,
    out: Option<BufWriter<File>>,
}

/// Formats batches as CSV text without a header.
pub struct CsvEncoder {
    delimiter: u8,
}

impl CsvEncoder {
    /// The text of `batch`'s rows.
    ///
    /// # Errors
    /// When a value cannot be formatted.
    fn encode(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        // Formatted text is about as large as the decoded numbers it came from.
        let mut text = Vec::with_capacity(batch.get_array_memory_size());
        self.encode_into(batch, &mut text)?;
        Ok(text)
    }

    /// Appends the text of `batch`'s rows to `text`.
    fn encode_into(&self, batch: &RecordBatch, text: &mut Vec<u8>) -> Result<()> {
        text.reserve(batch.get_array_memory_size());
        WriterBuilder::new()
            .with_header(false)
            .with_delimiter(self.delimiter)
            .build(text)
            .write(batch)?;
        Ok(())
    }
}

impl PartitionEncoder for CsvEncoder {
    fn encode_partition(
        &self,
        batches: BatchIter<'_>,
        emit: &mut dyn FnMut(EncodedPiece) -> Result<()>,
    ) -> Result<u64> {
        let mut rows = 0u64;
        for batch in batches {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            let text = self.encode(&batch)?;
            emit(EncodedPiece {
                bytes: text.capacity() as u64,
                data: Box::new(text),
            })?;
        }
        Ok(rows)
    }
}

impl CsvSink {
    /// Creates `path` for rows of `schema`, and writes the header.
    ///
    /// # Errors
    /// When the file cannot be created or written.
    pub fn create(path: &Path, schema: SchemaRef, delimiter: u8) -> Result<Self> {
        let file = File::create(path).at(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let header: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| quote(f.name(), delimiter))
            .collect();
        let separator = (delimiter as char).to_string();
        writeln!(out, "{}", header.join(&separator)).at(path)?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            encoder: Arc::new(CsvEncoder { delimiter }),
            out: Some(out),
        })
    }

    fn append(&mut self, text: &[u8]) -> Result<()> {
        self.out
            .as_mut()
            .ok_or_else(|| Error::Internal("csv sink used after finish".into()))?
            .write_all(text)
            .at(&self.path)
    }
}

impl FrameSink for CsvSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let text = self.encoder.encode(batch)?;
        self.append(&text)
    }

    fn partition_encoder(&self) -> Option<Arc<dyn PartitionEncoder>> {
        Some(self.encoder.clone())
    }

    fn write_encoded(&mut self, piece: EncodedPiece) -> Result<()> {
        let text = piece
            .data
            .downcast::<Vec<u8>>()
            .map_err(|_| Error::Internal("csv sink was handed another format's data".into()))?;
        self.append(&text)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let mut out = self
            .out
            .take()
            .ok_or_else(|| Error::Internal("csv sink finished twice".into()))?;
        out.flush().at(&self.path)?;
        out.into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        Ok(())
    }
}

/// The header row of a CSV file of `schema`, line break included.
pub fn header_line(schema: &arrow::datatypes::Schema, delimiter: u8) -> Vec<u8> {
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| quote(f.name(), delimiter))
        .collect();
    let mut line = header.join(&(delimiter as char).to_string()).into_bytes();
    line.push(b'\n');
    line
}

/// The CSV text (no header) of `batches`' rows, and how many rows they hold.
///
/// # Errors
/// The batches' errors; a value that cannot be formatted.
pub fn encode_part(
    delimiter: u8,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
) -> Result<(bytes::Bytes, u64)> {
    let encoder = CsvEncoder { delimiter };
    let mut text = Vec::new();
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        encoder.encode_into(&batch, &mut text)?;
    }
    Ok((bytes::Bytes::from(text), rows))
}

/// A header field, quoted when it holds the delimiter, a quote or a line break.
fn quote(name: &str, delimiter: u8) -> String {
    if name.contains([delimiter as char, '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}
