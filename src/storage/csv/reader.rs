//! Reading CSV partitions in batches bounded by rows and by bytes.
//!
//! Batches end at row ends, where a batch reaches its row or byte budget (see
//! [`super::BatchBudget`]), so a batch never holds more than its budget whatever the
//! row width, a row is never split between batches, and a quote that is never closed
//! is seen for what it is instead of swallowing the rest of the range into one field.
//!
//! Two ways to find those row ends. The fast one lets Arrow's decoder find them (it
//! stops at its batch size, at a row end, and it splits rows anyway) while the
//! reader follows only the quotes ([`super::scan`]), which is cheap: to know whether
//! the range ends inside a quoted field, and, when a batch reaches its byte budget,
//! to find where the row in progress ends. The careful one finds every row end
//! itself and hands the decoder whole batches of rows; the reader switches to it,
//! from the start of the batch at hand, as soon as the fast one fails, so that the
//! slow decoding below sees exactly that batch's rows.
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

use super::plain::PlainDecoder;
use super::scan::{self, RowScanner, State};
use super::{diagnose, infer, CsvSource};
use crate::error::{IoResultExt, Result};

/// Bytes read from the file at a time.
pub(super) const READ: u64 = 1 << 20;

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
    /// Careful mode: how much of `pending` the scanner has passed.
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
    /// Fast mode: how much of `pending` the fast decoder (and the scanner, quotes
    /// only) has consumed.
    fed: usize,
    /// Rows a batch of this range can hold: the budget's, or fewer for a range too
    /// short to hold that many.
    max_rows: usize,
    /// Whether the careful mode has taken over for the rest of the range.
    careful: bool,
    /// The plain mode's decoder, tried first (see [`PlainDecoder`]): `None` for
    /// the rest of the range once it gives up, and for columns it does not
    /// parse.
    plain: Option<PlainDecoder>,
    /// Plain mode: how much of `pending` was searched for line feeds, how many
    /// it holds, and where the last one counted ends.
    plain_searched: usize,
    plain_rows: usize,
    plain_end: usize,
    /// Fast mode: whether the scanner follows every byte fed. Not needed when the
    /// splitter has already followed the quotes of the whole file (it refuses a
    /// quote that never closes): then the scanner is brought to `fed` only when a
    /// batch must be cut at a row end, and `synced` says whether it stands there.
    track: bool,
    synced: bool,
    done: bool,
}

/// What the fast mode did.
enum Fast {
    Batch(RecordBatch),
    End,
    /// It failed in the batch at hand: the careful mode takes it from its start.
    Fallback,
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
            fed: 0,
            max_rows: source.budget.rows.min(
                usize::try_from(range.1.saturating_sub(range.0))
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            ),
            careful: false,
            plain: PlainDecoder::new(
                &source.decode_schema,
                &source.projection,
                source.options.delimiter,
                b'"',
            ),
            plain_searched: 0,
            plain_rows: 0,
            plain_end: 0,
            track: !source.quotes_checked,
            synced: true,
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.plain.is_some() {
            match self.next_plain()? {
                Some(batch) => return Ok(batch),
                // `pending` starts at a row start, as the fast mode starts.
                None => self.plain = None,
            }
        }
        if !self.careful {
            match self.next_fast()? {
                Fast::Batch(batch) => return Ok(Some(batch)),
                Fast::End => return Ok(None),
                Fast::Fallback => {
                    // `pending` starts at the batch's first row: start over from
                    // there, in careful mode.
                    self.careful = true;
                    self.fast = None;
                    self.scanner = RowScanner::new(self.source.options.delimiter, b'"');
                    self.checked_open = None;
                    self.scanned = 0;
                    self.rows = 0;
                    self.rows_end = 0;
                }
            }
        }
        self.next_careful()
    }

    /// The next batch in plain mode (`Some(None)` at the end of the range), or
    /// `None` when the plain decoder gives up on the rows at hand.
    fn next_plain(&mut self) -> Result<Option<Option<RecordBatch>>> {
        let budget = self.source.budget;
        loop {
            let full = |rows: usize, end: usize| {
                rows >= self.max_rows || (rows > 0 && end >= budget.bytes)
            };
            if !full(self.plain_rows, self.plain_end) {
                let from = self.plain_searched;
                for p in memchr::memchr_iter(b'\n', &self.pending[from..self.filled]) {
                    self.plain_rows += 1;
                    self.plain_end = from + p + 1;
                    if full(self.plain_rows, self.plain_end) {
                        break;
                    }
                }
                self.plain_searched = if full(self.plain_rows, self.plain_end) {
                    self.plain_end
                } else {
                    self.filled
                };
            }
            let at_end = self.pos >= self.range.1;
            if full(self.plain_rows, self.plain_end) || at_end {
                let (cut, rows) = match at_end && !full(self.plain_rows, self.plain_end) {
                    true => (
                        self.filled,
                        self.plain_rows + usize::from(self.plain_end < self.filled),
                    ),
                    false => (self.plain_end, self.plain_rows),
                };
                if cut == 0 {
                    return Ok(Some(None));
                }
                let last = cut == self.filled && at_end;
                let Some(decoder) = &self.plain else {
                    return Ok(None);
                };
                let Some(batch) = decoder
                    .decode(&self.pending[..cut], rows, last)
                    .and_then(|b| to_schema(self.source, &b))
                else {
                    return Ok(None);
                };
                self.consume(cut);
                (self.plain_searched, self.plain_rows, self.plain_end) = (0, 0, 0);
                return Ok(Some(Some(batch)));
            }
            // A row far longer than a batch's bytes: Arrow's decoder and its
            // checks take it from here.
            if self.filled > 2 * budget.bytes {
                return Ok(None);
            }
            self.read_more()?;
        }
    }

    /// The next batch in fast mode: the decoder finds the rows.
    fn next_fast(&mut self) -> Result<Fast> {
        let budget = self.source.budget;
        loop {
            if self.fed < self.filled {
                let decoder = self.fast.get_or_insert_with(|| {
                    new_decoder(self.source, &self.source.decode_schema, self.max_rows)
                });
                // Past the byte budget, feed only up to the end of the row in
                // progress, found by the scanner (which stands at `fed`).
                let cut = self.fed >= budget.bytes;
                if cut && !self.synced {
                    // `pending` starts at a row start.
                    self.scanner = RowScanner::new(self.source.options.delimiter, b'"');
                    self.scanner
                        .advance(&self.pending[..self.fed], 0, self.pending_at);
                    self.synced = true;
                }
                let row_end = if cut {
                    self.scanner.next_terminator(
                        &self.pending[..self.filled],
                        self.fed,
                        self.pending_at,
                    )
                } else {
                    None
                };
                // Below the budget, feed no further than it; past it, to the row end.
                let upto = match row_end {
                    Some(p) => p + 1,
                    None if cut => self.filled,
                    None => self.filled.min(budget.bytes),
                };
                let Ok(n) = decoder.decode(&self.pending[self.fed..upto]) else {
                    return Ok(Fast::Fallback);
                };
                if n == 0 && decoder.capacity() > 0 {
                    // No progress with room left: never loop on it.
                    return Ok(Fast::Fallback);
                }
                if !cut && self.track {
                    self.scanner
                        .advance(&self.pending[..self.fed + n], self.fed, self.pending_at);
                } else if !cut {
                    self.synced = false;
                } else if n != upto - self.fed {
                    // The scanner and the decoder disagree on a row end: let the
                    // careful mode decide.
                    return Ok(Fast::Fallback);
                }
                self.fed += n;
                if decoder.capacity() == 0 || row_end.is_some() {
                    match self.emit_fast(false) {
                        Some(Some(batch)) => return Ok(Fast::Batch(batch)),
                        Some(None) => {}
                        None => return Ok(Fast::Fallback),
                    }
                }
                continue;
            }
            if self.pos >= self.range.1 {
                if self.track && self.scanner.state == State::Quoted {
                    return Err(scan::unterminated(&self.source.path, self.scanner.open_at));
                }
                if self.filled == 0 {
                    return Ok(Fast::End);
                }
                // The rest, maybe with a last row that has no line break.
                return Ok(match self.emit_fast(true) {
                    Some(Some(batch)) => Fast::Batch(batch),
                    Some(None) => Fast::End,
                    None => Fast::Fallback,
                });
            }
            if self.track
                && self.scanner.state == State::Quoted
                && self.filled > LOOKAHEAD_AFTER
                && self.checked_open != self.scanner.open_at
            {
                self.check_quote_closes()?;
            }
            self.read_more()?;
        }
    }

    /// Flushes the fast decoder, which holds the rows of `pending[..fed]`, and
    /// drops those bytes: the batch, if any rows; `None` when decoding failed (the
    /// bytes are kept for the careful mode).
    fn emit_fast(&mut self, end_of_input: bool) -> Option<Option<RecordBatch>> {
        let max_rows = self.max_rows;
        let decoder = self
            .fast
            .get_or_insert_with(|| new_decoder(self.source, &self.source.decode_schema, max_rows));
        let flushed = if end_of_input {
            decoder.decode(&[]).and_then(|_| decoder.flush())
        } else {
            decoder.flush()
        };
        if end_of_input {
            // Told the input ended, the decoder reads nothing more.
            self.fast = None;
        }
        let batch = match flushed.ok()? {
            Some(b) => Some(to_schema(self.source, &b)?),
            None => None,
        };
        self.consume(self.fed);
        self.fed = 0;
        Some(batch)
    }

    /// Drops the decoded `pending[..end]`: the rest moves to the buffer's start.
    fn consume(&mut self, end: usize) {
        self.pending.copy_within(end..self.filled, 0);
        self.filled -= end;
        self.pending_at += end as u64;
    }

    fn read_more(&mut self) -> Result<()> {
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
        Ok(())
    }

    /// The next batch in careful mode: the scanner finds the rows.
    fn next_careful(&mut self) -> Result<Option<RecordBatch>> {
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
            self.read_more()?;
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
            self.max_rows,
        );
        self.consume(end);
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
    max_rows: usize,
) -> Result<Option<RecordBatch>> {
    let located = |e: &dyn std::fmt::Display| diagnose::locate(source, range, &e.to_string());
    let decoder = fast.get_or_insert_with(|| new_decoder(source, &source.decode_schema, max_rows));
    let decoded = match decode_with(source, decoder, &source.decode_schema, bytes, last) {
        Ok(batch) if !last => batch,
        Ok(batch) => {
            // Told the input ended, the decoder reads nothing more.
            *fast = None;
            batch
        }
        Err(_) => {
            *fast = None;
            let mut slow = new_decoder(source, &source.text_schema, max_rows.min(bytes.len() + 1));
            match decode_with(source, &mut slow, &source.text_schema, bytes, true) {
                Ok(batch) => batch,
                Err(e) => return Err(located(&e)),
            }
        }
    };
    let Some(batch) = decoded else {
        return Ok(None);
    };
    match to_schema(source, &batch) {
        Some(batch) => Ok(Some(batch)),
        None => Err(located(&"a value does not parse as its column's type")),
    }
}

/// `batch` with its text columns parsed into the source's types by
/// [`infer::convert`]; `None` when a value does not parse.
fn to_schema(source: &CsvSource, batch: &RecordBatch) -> Option<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(source.schema.fields()) {
        if column.data_type() == field.data_type() {
            columns.push(column.clone());
            continue;
        }
        let text = column.as_any().downcast_ref::<StringArray>()?;
        columns.push(infer::convert(text, field.data_type())?);
    }
    RecordBatch::try_new(source.schema.clone(), columns).ok()
}

/// Arrow's decoder for batches of up to `rows` rows of `schema` (all columns),
/// projected. It allocates offsets for every row of a batch up front, so `rows` is
/// the smaller of the budget and what the bytes at hand can hold (a row takes at
/// least its line break): thousands of tiny partitions do not each zero buffers for
/// a full batch.
fn new_decoder(source: &CsvSource, schema: &SchemaRef, rows: usize) -> Decoder {
    // One more row than the budget: a last row without a line break is not counted.
    ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_delimiter(source.options.delimiter)
        .with_batch_size(rows + 1)
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
