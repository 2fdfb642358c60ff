//! Reading CSV partitions in batches bounded by rows and by bytes.
//!
//! The reader follows the quote state itself ([`super::scan`]) and hands Arrow's
//! decoder whole rows only, cut where a batch reaches its byte or row budget (see
//! [`super::BatchBudget`]). So a batch never holds more than its budget whatever the
//! row width, a row is never split between batches, and a quote that is never closed
//! is seen for what it is instead of swallowing the rest of the range into one field.
//!
//! Decoding has a fast path (Arrow's decoder straight into the column types) and,
//! when it fails, a slow one for the same bytes: every column decoded as text, then
//! parsed by [`infer::convert`], which also accepts what Arrow's parsers do not
//! (spaces around a number). Only if that fails too is the batch at fault, and
//! [`diagnose`] names the line, column and value.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::concat_batches;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::scan::{self, RowScanner, State};
use super::{diagnose, infer, CsvSource};
use crate::error::{IoResultExt, Result};

/// Bytes read from the file at a time.
const READ: u64 = 1 << 20;

/// A partial row longer than this, inside a quoted field, makes the reader check
/// (by scanning ahead, without buffering) that the field closes before the end of
/// its range, so an unclosed quote costs no more memory than this.
const LOOKAHEAD_AFTER: usize = 16 << 20;

/// Yields the record batches of one byte range.
pub(super) struct PartitionReader<'a> {
    source: &'a CsvSource,
    range: (u64, u64),
    file: File,
    /// Next file offset to read.
    pos: u64,
    /// Bytes read and not yet decoded, from file offset `pending_at`.
    pending: Vec<u8>,
    pending_at: u64,
    /// How much of `pending` the scanner has passed.
    scanned: usize,
    /// End of the last whole row in `pending`, and how many rows end before it (an
    /// upper bound: blank lines count too).
    rows_end: usize,
    rows: usize,
    scanner: RowScanner,
    /// The opening quote whose field was checked to close, by looking ahead.
    checked_open: Option<u64>,
    done: bool,
}

impl<'a> PartitionReader<'a> {
    pub(super) fn new(source: &'a CsvSource, range: (u64, u64)) -> Result<Self> {
        let file = File::open(&source.path).at(&source.path)?;
        Ok(PartitionReader {
            source,
            range,
            file,
            pos: range.0,
            pending: Vec::new(),
            pending_at: range.0,
            scanned: 0,
            rows_end: 0,
            rows: 0,
            scanner: RowScanner::new(source.options.delimiter, b'"'),
            checked_open: None,
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let budget = self.source.budget;
        loop {
            while self.rows < budget.rows
                && self.rows_end < budget.bytes
                && self.scanned < self.pending.len()
            {
                match self
                    .scanner
                    .next_terminator(&self.pending, self.scanned, self.pending_at)
                {
                    Some(p) => {
                        self.scanned = p + 1;
                        self.rows_end = p + 1;
                        self.rows += 1;
                    }
                    None => self.scanned = self.pending.len(),
                }
            }
            if self.rows_end > 0 && (self.rows >= budget.rows || self.rows_end >= budget.bytes) {
                if let Some(batch) = self.emit(self.rows_end)? {
                    return Ok(Some(batch));
                }
                continue;
            }
            if self.pos >= self.range.1 {
                if self.scanner.state == State::Quoted {
                    return Err(scan::unterminated(&self.source.path, self.scanner.open_at));
                }
                // The rest: whole rows within the budget, and maybe a last row with no
                // line break (the decoder's batch has room for it).
                if self.pending.is_empty() {
                    return Ok(None);
                }
                return self.emit(self.pending.len());
            }
            if self.scanner.state == State::Quoted
                && self.pending.len() - self.rows_end > LOOKAHEAD_AFTER
                && self.checked_open != self.scanner.open_at
            {
                self.check_quote_closes()?;
            }
            let n = (self.range.1 - self.pos).min(READ) as usize;
            let old = self.pending.len();
            self.pending.resize(old + n, 0);
            self.file
                .read_exact_at(&mut self.pending[old..], self.pos)
                .at(&self.source.path)?;
            self.pos += n as u64;
        }
    }

    /// Decodes `pending[..end]` (whole rows) and drops it.
    fn emit(&mut self, end: usize) -> Result<Option<RecordBatch>> {
        let at = self.pending_at;
        let batch = decode(self.source, &self.pending[..end], (at, at + end as u64));
        self.pending.drain(..end);
        self.pending_at += end as u64;
        // `end` is the last counted row's end or all of `pending`: what was scanned
        // beyond it holds no terminator, so no row is counted there.
        self.scanned = self.scanned.saturating_sub(end);
        self.rows_end = 0;
        self.rows = 0;
        batch
    }

    /// Scans from the read position to the end of the range without keeping the
    /// bytes: an error if the file ends inside a quoted field.
    fn check_quote_closes(&mut self) -> Result<()> {
        let mut ahead = self.scanner.clone();
        let mut buf = vec![0u8; READ as usize];
        let mut pos = self.pos;
        while pos < self.range.1 {
            let n = (self.range.1 - pos).min(READ) as usize;
            self.file
                .read_exact_at(&mut buf[..n], pos)
                .at(&self.source.path)?;
            ahead.advance(&buf[..n], 0, pos);
            pos += n as u64;
        }
        if ahead.state == State::Quoted {
            return Err(scan::unterminated(&self.source.path, ahead.open_at));
        }
        self.checked_open = self.scanner.open_at;
        Ok(())
    }
}

/// Decodes whole rows `bytes`, which sit at `range` in the file.
fn decode(source: &CsvSource, bytes: &[u8], range: (u64, u64)) -> Result<Option<RecordBatch>> {
    let located = |e: &dyn std::fmt::Display| diagnose::locate(source, range, &e.to_string());
    let decoded = match decode_as(source, &source.decode_schema, bytes) {
        Ok(batch) => batch,
        Err(_) => match decode_as(source, &source.text_schema, bytes) {
            Ok(batch) => batch,
            Err(e) => return Err(located(&e)),
        },
    };
    let Some(batch) = decoded else {
        return Ok(None);
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(source.schema.fields()) {
        if column.data_type() == field.data_type() {
            columns.push(column.clone());
            continue;
        }
        let converted = column
            .as_any()
            .downcast_ref::<StringArray>()
            .and_then(|text| infer::convert(text, field.data_type()));
        match converted {
            Some(c) => columns.push(c),
            None => return Err(located(&"a value does not parse as its column's type")),
        }
    }
    Ok(Some(RecordBatch::try_new(source.schema.clone(), columns)?))
}

/// Arrow's decoder over whole rows, with `schema` for all columns.
fn decode_as(
    source: &CsvSource,
    schema: &SchemaRef,
    bytes: &[u8],
) -> std::result::Result<Option<RecordBatch>, ArrowError> {
    // One more row than the budget: a last row without a line break is not counted.
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_delimiter(source.options.delimiter)
        .with_batch_size(source.budget.rows + 1)
        .with_projection(source.projection.clone())
        .build_decoder();
    let mut out = Vec::new();
    let mut rest = bytes;
    loop {
        let n = decoder.decode(rest)?;
        rest = &rest[n..];
        if rest.is_empty() {
            decoder.decode(&[])?;
            out.extend(decoder.flush()?);
            break;
        }
        if decoder.capacity() == 0 {
            out.extend(decoder.flush()?);
        } else if n == 0 {
            return Err(ArrowError::CsvError("the decoder made no progress".into()));
        }
    }
    match out.len() {
        0 => Ok(None),
        1 => Ok(out.pop()),
        _ => {
            let projected = Arc::new(schema.project(&source.projection)?);
            concat_batches(&projected, &out).map(Some)
        }
    }
}

impl Iterator for PartitionReader<'_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
