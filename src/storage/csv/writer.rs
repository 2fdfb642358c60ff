//! Writing CSV: a header row, RFC 4180 quoting where needed, ISO-8601 dates and
//! timestamps, nulls as empty fields. A plan's table output formats each part's
//! text on the thread of the part's task ([`encode_part`]), where formatting numbers
//! and dates is most of the work, and copies the texts in order.

use arrow::csv::WriterBuilder;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;

use crate::error::Result;

/// Formats batches as CSV text without a header.
pub struct CsvEncoder {
    delimiter: u8,
}

impl CsvEncoder {
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

/// The header row of a CSV file of `schema`, line break included.
pub fn header_line(schema: &Schema, delimiter: u8) -> Vec<u8> {
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
