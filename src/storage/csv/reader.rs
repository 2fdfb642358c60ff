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
use arrow::csv::reader::Decoder;
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
    /// Bytes read and not yet decoded, `pending[..filled]`, from file offset
    /// `pending_at`. The buffer is reused (moved down, not reallocated) so that its
    /// bytes are zeroed once per partition, not once per read.
    pending: Vec<u8>,
    filled: usize,
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
    /// Arrow's decoder for the fast path, kept from batch to batch: a new one per
    /// batch would allocate and zero its buffers (rows × columns offsets and text)
    /// every time. It only ever holds whole rows between batches; `None` after a
    /// failure, which may leave it inside a row.
    fast: Option<Decoder>,
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
            filled: 0,
            pending_at: range.0,
            scanned: 0,
            rows_end: 0,
            rows: 0,
            scanner: RowScanner::new(source.options.delimiter, b'"'),
            checked_open: None,
            fast: None,
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let budget = self.source.budget;
        loop {
            if self.rows < budget.rows && self.rows_end < budget.bytes && self.scanned < self.filled
            {
                let (rows, end, scanned) = self.scanner.scan_rows(
                    &self.pending[..self.filled],
                    self.scanned,
                    self.pending_at,
                    budget.rows - self.rows,
                    budget.bytes,
                );
                if rows > 0 {
                    self.rows += rows;
                    self.rows_end = end;
                }
                self.scanned = scanned;
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
                if self.filled == 0 {
                    return Ok(None);
                }
                return self.emit(self.filled);
            }
            if self.scanner.state == State::Quoted
                && self.filled - self.rows_end > LOOKAHEAD_AFTER
                && self.checked_open != self.scanner.open_at
            {
                self.check_quote_closes()?;
            }
            let n = (self.range.1 - self.pos).min(READ) as usize;
            let old = self.filled;
            if self.pending.len() < old + n {
                self.pending.resize(old + n, 0);
            }
            self.file
                .read_exact_at(&mut self.pending[old..old + n], self.pos)
                .at(&self.source.path)?;
            self.filled += n;
            self.pos += n as u64;
        }
    }

    /// Decodes `pending[..end]` (whole rows, or the rest of the range) and drops it.
    fn emit(&mut self, end: usize) -> Result<Option<RecordBatch>> {
        let at = self.pending_at;
        let last = self.pos >= self.range.1 && end == self.filled;
        let batch = decode(
            self.source,
            &mut self.fast,
            &self.pending[..end],
            (at, at + end as u64),
            last,
        );
        self.pending.copy_within(end..self.filled, 0);
        self.filled -= end;
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

/// Decodes whole rows `bytes`, which sit at `range` in the file, with the fast
/// decoder `fast` (made when `None`, dropped on failure); `last` when they are the
/// rest of the range, which may end without a line break.
fn decode(
    source: &CsvSource,
    fast: &mut Option<Decoder>,
    bytes: &[u8],
    range: (u64, u64),
    last: bool,
) -> Result<Option<RecordBatch>> {
    let located = |e: &dyn std::fmt::Display| diagnose::locate(source, range, &e.to_string());
    let decoder = fast.get_or_insert_with(|| new_decoder(source, &source.decode_schema));
    let decoded = match decode_with(source, decoder, &source.decode_schema, bytes, last) {
        Ok(batch) if !last => batch,
        Ok(batch) => {
            // Told the input ended, the decoder reads nothing more.
            *fast = None;
            batch
        }
        Err(_) => {
            *fast = None;
            let mut slow = new_decoder(source, &source.text_schema);
            match decode_with(source, &mut slow, &source.text_schema, bytes, true) {
                Ok(batch) => batch,
                Err(e) => return Err(located(&e)),
            }
        }
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

/// Arrow's decoder for rows of `schema` (all columns), projected.
fn new_decoder(source: &CsvSource, schema: &SchemaRef) -> Decoder {
    // One more row than the budget: a last row without a line break is not counted.
    ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_delimiter(source.options.delimiter)
        .with_batch_size(source.budget.rows + 1)
        .with_projection(source.projection.clone())
        .build_decoder()
}

/// Decodes `bytes` with `decoder` (for `schema`), which holds no row before and,
/// since `bytes` are whole rows, none after: unless `end_of_input`, the last row
/// ends with its line break, so the decoder is not told the input ended and can
/// decode the next batch.
fn decode_with(
    source: &CsvSource,
    decoder: &mut Decoder,
    schema: &SchemaRef,
    bytes: &[u8],
    end_of_input: bool,
) -> std::result::Result<Option<RecordBatch>, ArrowError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    loop {
        let n = decoder.decode(rest)?;
        rest = &rest[n..];
        if rest.is_empty() {
            if end_of_input {
                decoder.decode(&[])?;
            }
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
