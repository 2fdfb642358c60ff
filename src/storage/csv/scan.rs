//! The quote state of CSV bytes, exactly as the parser (csv-core, under both the
//! `csv` crate and Arrow's decoder) sees it.
//!
//! A quote opens a quoted field only at the start of a field (after a delimiter, a
//! line break, or at the start of the data); anywhere else it is a literal byte
//! (`5" tall`). Inside a quoted field, `""` is an escaped quote and a lone quote
//! closes the field. Record terminators are `\n` and `\r` outside quotes. Counting
//! quote parity, as a naive splitter does, goes wrong on literal quotes; this state
//! machine does not, and it still runs on `memchr` between the bytes that matter.
//!
//! It serves three callers: the splitter (row starts at block boundaries, and
//! whether the file ends inside a quoted field), the partition reader (row
//! boundaries, to cut batches by bytes and rows), and the header and sample readers.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, IoResultExt, Result};

/// Where the parser is between two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// At the start of a field (or of a record): a quote here opens a quoted field.
    FieldStart,
    /// Inside an unquoted field: quotes are literal.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: a second quote escapes it, anything
    /// else means the field closed.
    QuoteInQuoted,
}

impl State {
    /// Every state, for summaries that must hold whatever state a block starts in.
    pub(super) const ALL: [State; 4] = [
        State::FieldStart,
        State::Unquoted,
        State::Quoted,
        State::QuoteInQuoted,
    ];

    pub(super) fn index(self) -> usize {
        match self {
            State::FieldStart => 0,
            State::Unquoted => 1,
            State::Quoted => 2,
            State::QuoteInQuoted => 3,
        }
    }
}

/// Follows the quote state through consecutive buffers of one file.
#[derive(Clone, Debug)]
pub(super) struct RowScanner {
    /// The state after the last byte scanned.
    pub state: State,
    /// File offset of the quote that opened the most recent quoted field, if any
    /// opened since the scanner was made or this was last cleared.
    pub open_at: Option<u64>,
    delimiter: u8,
    quote: u8,
}

impl RowScanner {
    /// A scanner at the start of a record.
    pub(super) fn new(delimiter: u8, quote: u8) -> Self {
        Self::with_state(delimiter, quote, State::FieldStart)
    }

    /// A scanner in `state`.
    pub(super) fn with_state(delimiter: u8, quote: u8, state: State) -> Self {
        RowScanner {
            state,
            open_at: None,
            delimiter,
            quote,
        }
    }

    fn ends_field(&self, b: u8) -> bool {
        b == self.delimiter || b == b'\n' || b == b'\r'
    }

    /// The state after a quote inside a quoted field followed by `b`.
    fn after_closing_quote(&self, b: u8) -> State {
        if b == self.quote {
            State::Quoted
        } else if self.ends_field(b) {
            State::FieldStart
        } else {
            State::Unquoted
        }
    }

    /// The state just before `buf[p]`, when `buf[from..p]` holds no quote or line
    /// break and the state at `from` was `FieldStart` or `Unquoted`.
    fn outside_state_at(&self, buf: &[u8], from: usize, p: usize) -> State {
        if p > from {
            if self.ends_field(buf[p - 1]) {
                State::FieldStart
            } else {
                State::Unquoted
            }
        } else {
            self.state
        }
    }

    /// Scans `buf[from..]` (where `buf[0]` is at file offset `base`) up to and
    /// including the first record terminator outside quotes, and returns its index;
    /// `None` when there is none, with the whole rest scanned.
    pub(super) fn next_terminator(&mut self, buf: &[u8], from: usize, base: u64) -> Option<usize> {
        let mut i = from;
        loop {
            match self.state {
                State::Quoted => match memchr::memchr(self.quote, buf.get(i..)?) {
                    None => return None,
                    Some(k) => {
                        i += k + 1;
                        self.state = State::QuoteInQuoted;
                    }
                },
                State::QuoteInQuoted => {
                    let b = *buf.get(i)?;
                    self.state = self.after_closing_quote(b);
                    if b == b'\n' || b == b'\r' {
                        return Some(i);
                    }
                    i += 1;
                }
                State::FieldStart | State::Unquoted => {
                    let rest = buf.get(i..)?;
                    match memchr::memchr3(self.quote, b'\n', b'\r', rest) {
                        None => {
                            if let Some(&last) = rest.last() {
                                self.state = if self.ends_field(last) {
                                    State::FieldStart
                                } else {
                                    State::Unquoted
                                };
                            }
                            return None;
                        }
                        Some(k) => {
                            let p = i + k;
                            let before = self.outside_state_at(buf, i, p);
                            if buf[p] == self.quote {
                                if before == State::FieldStart {
                                    self.state = State::Quoted;
                                    self.open_at = Some(base + p as u64);
                                } else {
                                    self.state = State::Unquoted;
                                }
                                i = p + 1;
                            } else {
                                self.state = State::FieldStart;
                                return Some(p);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Scans `buf[from..]` for row terminators outside quotes, as repeated calls to
    /// [`RowScanner::next_terminator`] would, until `max_rows` are found or one ends
    /// at or past `max_end` (however far `from` already is: a long quoted field
    /// scanned before does not stop the search for its row's end). Returns how many were found, the index just past the
    /// last one (`from` when none), and how far the scanner has passed: that index
    /// when a limit was reached, else all of `buf`.
    ///
    /// The reader calls this once a buffer, not once a row: outside quotes one
    /// `memchr3` iterator runs over the whole buffer, so a row costs one match, not
    /// one search set up from scratch.
    pub(super) fn scan_rows(
        &mut self,
        buf: &[u8],
        from: usize,
        base: u64,
        max_rows: usize,
        max_end: usize,
    ) -> (usize, usize, usize) {
        let (mut rows, mut end) = (0usize, from);
        let mut i = from;
        while rows < max_rows && i < buf.len() {
            if matches!(self.state, State::FieldStart | State::Unquoted) {
                // Runs of unquoted fields: terminators and literal quotes come from
                // one iterator; only a quote at a field start leaves this loop.
                let mut leave_at = None;
                for k in memchr::memchr3_iter(self.quote, b'\n', b'\r', &buf[i..]) {
                    let p = i + k;
                    if buf[p] != self.quote {
                        rows += 1;
                        end = p + 1;
                        if rows >= max_rows || end >= max_end {
                            self.state = State::FieldStart;
                            return (rows, end, end);
                        }
                        continue;
                    }
                    // Before the quote: the state where the scan started, else
                    // the previous byte says.
                    let at_field_start = if p == i {
                        self.state == State::FieldStart
                    } else {
                        self.ends_field(buf[p - 1])
                    };
                    if at_field_start {
                        leave_at = Some(p);
                        break;
                    }
                }
                match leave_at {
                    Some(p) => {
                        self.state = State::Quoted;
                        self.open_at = Some(base + p as u64);
                        i = p + 1;
                    }
                    None => {
                        if let Some(&last) = buf.last() {
                            self.state = if self.ends_field(last) {
                                State::FieldStart
                            } else {
                                State::Unquoted
                            };
                        }
                        return (rows, end, buf.len());
                    }
                }
            } else {
                match self.next_terminator(buf, i, base) {
                    Some(p) => {
                        rows += 1;
                        end = p + 1;
                        i = p + 1;
                        if end >= max_end {
                            break;
                        }
                    }
                    None => return (rows, end, buf.len()),
                }
            }
        }
        (rows, end, i.min(buf.len()))
    }

    /// Scans all of `buf[from..]`, following quotes only (faster than
    /// [`RowScanner::next_terminator`] when row boundaries do not matter).
    pub(super) fn advance(&mut self, buf: &[u8], from: usize, base: u64) {
        let mut i = from;
        while i < buf.len() {
            match self.state {
                State::Quoted => match memchr::memchr(self.quote, &buf[i..]) {
                    None => return,
                    Some(k) => {
                        i += k + 1;
                        self.state = State::QuoteInQuoted;
                    }
                },
                State::QuoteInQuoted => {
                    self.state = self.after_closing_quote(buf[i]);
                    i += 1;
                }
                State::FieldStart | State::Unquoted => {
                    match memchr::memchr(self.quote, &buf[i..]) {
                        None => {
                            if let Some(&last) = buf.last() {
                                self.state = if self.ends_field(last) {
                                    State::FieldStart
                                } else {
                                    State::Unquoted
                                };
                            }
                            return;
                        }
                        Some(k) => {
                            let p = i + k;
                            if self.outside_state_at(buf, i, p) == State::FieldStart {
                                self.state = State::Quoted;
                                self.open_at = Some(base + p as u64);
                            } else {
                                self.state = State::Unquoted;
                            }
                            i = p + 1;
                        }
                    }
                }
            }
        }
    }
}

/// The 1-based line holding file offset `offset` (the number of `\n` before it,
/// plus one), as pandas and DuckDB number lines in their messages.
///
/// # Errors
/// When the file cannot be read.
pub(super) fn line_of(path: &Path, offset: u64) -> Result<u64> {
    let file = File::open(path).at(path)?;
    let mut buf = vec![0u8; offset.min(1 << 20) as usize];
    let (mut pos, mut count) = (0u64, 0u64);
    while pos < offset {
        let n = usize::try_from(offset - pos).map_or(buf.len(), |r| r.min(buf.len()));
        let got = file.read_at(&mut buf[..n], pos).at(path)?;
        if got == 0 {
            break;
        }
        count += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        pos += got as u64;
    }
    Ok(count + 1)
}

/// The error for a quoted field opened at file offset `open_at` and never closed.
///
/// # Errors
/// Returns the error itself, or an I/O error when the line cannot be counted.
pub(super) fn unterminated(path: &Path, open_at: Option<u64>) -> Error {
    match line_of(path, open_at.unwrap_or(0)) {
        Ok(line) => Error::UnterminatedQuote {
            path: path.to_path_buf(),
            line,
        },
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminators(text: &str) -> (Vec<usize>, State, Option<u64>) {
        let mut s = RowScanner::new(b',', b'"');
        let mut found = Vec::new();
        let mut i = 0;
        while let Some(p) = s.next_terminator(text.as_bytes(), i, 0) {
            found.push(p);
            i = p + 1;
        }
        (found, s.state, s.open_at)
    }

    #[test]
    fn quotes_open_only_at_field_start() {
        // A literal quote mid-field does not open anything.
        let (t, st, _) = terminators("a,5\" tall\nb,c\n");
        assert_eq!(t, vec![9, 13]);
        assert_eq!(st, State::FieldStart);
        // A quoted field with an escaped quote and a newline.
        let (t, st, _) = terminators("a,\"x\"\"\ny\"\nb\n");
        assert_eq!(t, vec![9, 11]);
        assert_eq!(st, State::FieldStart);
        // Bytes after a closing quote are literal.
        let (t, _, _) = terminators("\"ab\"c\"d\ne\n");
        assert_eq!(t, vec![7, 9]);
    }

    #[test]
    fn unterminated_quote_is_visible_at_the_end() {
        let (t, st, open) = terminators("a,b\n1,\"x\n2,y\n");
        assert_eq!(t, vec![3]);
        assert_eq!(st, State::Quoted);
        assert_eq!(open, Some(6));
        // A quote closed by the last byte is fine.
        let (_, st, _) = terminators("a\n\"x\"");
        assert_eq!(st, State::QuoteInQuoted);
    }

    #[test]
    fn scan_rows_agrees_with_next_terminator_for_any_limits() {
        let texts: [&[u8]; 4] = [
            b"a,\"b\"\"c\nd\",e\nf\"g,\"h\"i\n\"j\"\r\n,\"k",
            b"\"x\"\n\"y\r\"\r\"\"\n5\" in,\"q\"\n\n\r\n1,2",
            b"\",\",\"\n\"\n\"\"\"\"\nab\"\"\n",
            b"plain,row\nno,quotes\r\nat,all",
        ];
        for text in texts {
            // The reference: one terminator at a time.
            let mut reference = Vec::new();
            let mut s = RowScanner::new(b',', b'"');
            let mut i = 0;
            while let Some(p) = s.next_terminator(text, i, 0) {
                reference.push(p + 1);
                i = p + 1;
            }
            let end_state = s.state;
            for max_rows in 1..6 {
                for max_end in 1..=text.len() + 1 {
                    // Repeated calls, as the reader makes them, and the buffer
                    // growing a byte at a time.
                    for grow in [1, text.len()] {
                        let mut s = RowScanner::new(b',', b'"');
                        let (mut ends, mut scanned, mut have) = (Vec::new(), 0, 0);
                        let (mut batch, mut total) = ((0, 0), 0);
                        while have < text.len() || scanned < have {
                            have = (have + grow).min(text.len());
                            let (n, end, passed) = s.scan_rows(
                                &text[..have],
                                scanned,
                                0,
                                max_rows - batch.0,
                                batch.1 + max_end,
                            );
                            if n > 0 {
                                ends.push(end);
                                batch.0 += n;
                                total += n;
                            }
                            scanned = passed;
                            if batch.0 >= max_rows || (n > 0 && end >= batch.1 + max_end) {
                                batch = (0, end);
                            }
                        }
                        assert_eq!(s.state, end_state, "{text:?} {max_rows} {max_end}");
                        // Every batch end is a row end, and the last is the last.
                        for e in &ends {
                            assert!(reference.contains(e), "{text:?}: {e} {reference:?}");
                        }
                        assert_eq!(ends.last(), reference.last(), "{text:?}");
                        assert_eq!(total, reference.len(), "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn advance_agrees_with_next_terminator_across_any_cut() {
        let text = b"a,\"b\"\"c\nd\",e\nf\"g,\"h\"i\n\"j\"\r\n,\"k";
        let mut whole = RowScanner::new(b',', b'"');
        let mut i = 0;
        while let Some(p) = whole.next_terminator(text, i, 0) {
            i = p + 1;
        }
        for cut in 0..=text.len() {
            let mut s = RowScanner::new(b',', b'"');
            s.advance(&text[..cut], 0, 0);
            s.advance(&text[cut..], 0, cut as u64);
            assert_eq!(s.state, whole.state, "cut {cut}");
            assert_eq!(s.open_at, whole.open_at, "cut {cut}");
        }
    }
}
