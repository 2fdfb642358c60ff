//! The quote state of CSV bytes, exactly as the parser (csv-core, under both the
//! `csv` crate and Arrow's decoder) sees it.
//!
//! A quote opens a quoted field only at the start of a field (after a delimiter, a
//! line break, or at the start of the data); anywhere else it is a literal byte
//! (`5" tall`). Inside a quoted field, `""` is an escaped quote and a lone quote
//! closes the field. Record terminators are `\n` and `\r` outside quotes. Counting
//! quote parity, as a naive splitter does, goes wrong on literal quotes; this state
//! machine does not, and it runs on bit masks of the bytes that matter, found 64
//! at a time.
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

    /// Scans `buf[from..]` (where `buf[0]` is at file offset `base`) up to and
    /// including the first record terminator outside quotes, and returns its index;
    /// `None` when there is none, with the whole rest scanned.
    pub(super) fn next_terminator(&mut self, buf: &[u8], from: usize, base: u64) -> Option<usize> {
        match self.scan_rows(buf, from, base, 1, usize::MAX) {
            (1, end, _) => Some(end - 1),
            _ => None,
        }
    }

    /// Scans `buf[from..]` for row terminators outside quotes, as repeated calls to
    /// [`RowScanner::next_terminator`] would, until `max_rows` are found or one ends
    /// at or past `max_end` (however far `from` already is: a long quoted field
    /// scanned before does not stop the search for its row's end). Returns how many
    /// were found, the index just past the last one (`from` when none), and how far
    /// the scanner has passed: that index when a limit was reached, else all of
    /// `buf`.
    ///
    /// The bytes that matter are found 64 at a time as bit masks ([`Hits`]), inside
    /// quoted fields and out: a row costs a fraction of a nanosecond a byte plus a
    /// few bit operations for its quotes and its line break.
    pub(super) fn scan_rows(
        &mut self,
        buf: &[u8],
        from: usize,
        base: u64,
        max_rows: usize,
        max_end: usize,
    ) -> (usize, usize, usize) {
        let hits = Hits::new(buf, from, [self.quote, b'\n', b'\r']);
        self.follow(buf, from, base, hits, max_rows, max_end)
    }

    /// Scans all of `buf[from..]`, following quotes only (faster than
    /// [`RowScanner::scan_rows`] when row boundaries do not matter).
    pub(super) fn advance(&mut self, buf: &[u8], from: usize, base: u64) {
        let rest = buf.get(from..).unwrap_or_default();
        if memchr::memchr(self.quote, rest).is_none() {
            // No quote (most files have none): only the last byte can change
            // the state, as `follow` finds it, and `memchr` finds that there is
            // none several times faster than the masks would.
            if let (Some(&last), false) = (rest.last(), self.state == State::Quoted) {
                self.state = match self.ends_field(last) {
                    true => State::FieldStart,
                    false => State::Unquoted,
                };
            }
            return;
        }
        let hits = Hits::new(buf, from, [self.quote; 3]);
        self.follow(buf, from, base, hits, usize::MAX, usize::MAX);
    }

    /// The state machine, driven by `hits`: the indices, in order, of every byte
    /// of `buf[from..]` that may change the state other than a delimiter or a
    /// plain byte (every quote, and every line break when rows are counted).
    ///
    /// Between two hits there are only delimiters and plain bytes, so outside
    /// quotes the state before a hit is told by the byte just before it (a field
    /// ends there or not), and inside quotes nothing changes. Row limits as in
    /// [`RowScanner::scan_rows`].
    fn follow(
        &mut self,
        buf: &[u8],
        from: usize,
        base: u64,
        hits: impl Iterator<Item = usize>,
        max_rows: usize,
        max_end: usize,
    ) -> (usize, usize, usize) {
        let (mut rows, mut end) = (0usize, from);
        if max_rows == 0 {
            return (0, from, from);
        }
        let mut state = self.state;
        // Index of the first byte not yet accounted for.
        let mut cur = from;
        for p in hits {
            let b = buf[p];
            if p > cur && state != State::Quoted {
                state = if self.ends_field(buf[p - 1]) {
                    State::FieldStart
                } else {
                    State::Unquoted
                };
            }
            cur = p + 1;
            if b == self.quote {
                state = match state {
                    State::Quoted => State::QuoteInQuoted,
                    State::QuoteInQuoted => State::Quoted,
                    State::FieldStart => {
                        self.open_at = Some(base + p as u64);
                        State::Quoted
                    }
                    State::Unquoted => State::Unquoted,
                };
            } else if state != State::Quoted {
                // A line break outside quotes (just after a closing quote
                // included): a row ends here.
                state = State::FieldStart;
                rows += 1;
                end = p + 1;
                if rows >= max_rows || end >= max_end {
                    self.state = state;
                    return (rows, end, end);
                }
            }
        }
        if cur < buf.len() && state != State::Quoted {
            state = if self.ends_field(buf[buf.len() - 1]) {
                State::FieldStart
            } else {
                State::Unquoted
            };
        }
        self.state = state;
        (rows, end, buf.len().max(from))
    }
}

/// The indices of the bytes equal to one of three `needles` in `buf[from..]`,
/// in order: the quotes (and, when rows are counted, the line breaks), or a plain
/// row's delimiters and line feeds. A needle repeated looks for fewer bytes.
///
/// Found 64 bytes at a time as a bit mask, then read off bit by bit: on dense
/// CSV (a quote or line break every few bytes) this costs a small fraction of a
/// `memchr` call per hit, and the mask loop compiles to vector compares.
pub(super) struct Hits<'a> {
    buf: &'a [u8],
    /// Index of the 64-byte window `mask` describes.
    at: usize,
    /// Where the next window starts.
    next_at: usize,
    mask: u64,
    needles: [u8; 3],
}

impl<'a> Hits<'a> {
    pub(super) fn new(buf: &'a [u8], from: usize, needles: [u8; 3]) -> Self {
        Hits {
            buf,
            at: from,
            next_at: from,
            mask: 0,
            needles,
        }
    }

    /// Bit j set when `window[j]` is one of `needles`.
    #[inline]
    fn window_mask(window: &[u8], needles: [u8; 3]) -> u64 {
        let mut mask = 0u64;
        for (j, &b) in window.iter().enumerate() {
            let hit = b == needles[0] || b == needles[1] || b == needles[2];
            mask |= u64::from(hit) << j;
        }
        mask
    }

    /// [`Hits::window_mask`] of a whole window, with SSE2 (part of every x86-64
    /// CPU): four 16-byte compares and a movemask each, instead of a loop a byte.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn full_mask(window: &[u8; 64], needles: [u8; 3]) -> u64 {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut mask = 0u64;
        // SAFETY: SSE2 is in the x86-64 baseline, so these intrinsics exist on every
        // CPU this code runs on; each unaligned load reads the 16 bytes at offset
        // 16 * k < 64 of `window`, all inside it.
        unsafe {
            let [a, b, c] = needles.map(|n| _mm_set1_epi8(n as i8));
            for k in 0..4 {
                let v = _mm_loadu_si128(window.as_ptr().add(16 * k).cast::<__m128i>());
                let hit = _mm_or_si128(
                    _mm_cmpeq_epi8(v, a),
                    _mm_or_si128(_mm_cmpeq_epi8(v, b), _mm_cmpeq_epi8(v, c)),
                );
                mask |= u64::from(_mm_movemask_epi8(hit) as u16) << (16 * k);
            }
        }
        mask
    }

    /// [`Hits::window_mask`] of a whole window.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    fn full_mask(window: &[u8; 64], needles: [u8; 3]) -> u64 {
        Self::window_mask(window, needles)
    }
}

impl Iterator for Hits<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            if self.next_at >= self.buf.len() {
                return None;
            }
            let end = self.next_at.saturating_add(64).min(self.buf.len());
            let window = &self.buf[self.next_at..end];
            self.mask = match <&[u8; 64]>::try_from(window) {
                Ok(full) => Self::full_mask(full, self.needles),
                Err(_) => Self::window_mask(window, self.needles),
            };
            self.at = self.next_at;
            self.next_at = end;
        }
        let j = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.at + j)
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

    /// The state machine one byte at a time, as csv-core runs it: the reference.
    fn bytewise(text: &[u8]) -> (Vec<usize>, State, Option<u64>) {
        let (mut state, mut open, mut ends) = (State::FieldStart, None, Vec::new());
        for (p, &b) in text.iter().enumerate() {
            let term = b == b'\n' || b == b'\r';
            state = match (state, b) {
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, b'"') => State::Quoted,
                (State::FieldStart, b'"') => {
                    open = Some(p as u64);
                    State::Quoted
                }
                (_, b',') => State::FieldStart,
                (_, _) if term => {
                    ends.push(p + 1);
                    State::FieldStart
                }
                _ => State::Unquoted,
            };
        }
        (ends, state, open)
    }

    #[test]
    fn every_scan_agrees_with_the_bytewise_machine_on_random_text() {
        // A small deterministic generator: no dependency, same cases every run.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"a,\"\n\r\"x";
        for _ in 0..3000 {
            let len = (next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let (ends, state, open) = bytewise(&text);
            let cut = (next() as usize) % (len + 1);
            // scan_rows, one row at a time, over a buffer arriving in two pieces.
            let mut s = RowScanner::new(b',', b'"');
            let (mut got, mut scanned) = (Vec::new(), 0);
            for have in [cut, len] {
                loop {
                    let (n, end, passed) = s.scan_rows(&text[..have], scanned, 0, 1, usize::MAX);
                    scanned = passed;
                    if n == 0 {
                        break;
                    }
                    got.push(end);
                }
            }
            assert_eq!((&got, s.state, s.open_at), (&ends, state, open), "{text:?}");
            // advance, cut anywhere.
            let mut a = RowScanner::new(b',', b'"');
            a.advance(&text[..cut], 0, 0);
            a.advance(&text, cut, 0);
            assert_eq!((a.state, a.open_at), (state, open), "{text:?} cut {cut}");
        }
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
