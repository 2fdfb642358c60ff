//! The header row: where the data starts and what the columns are called.
//!
//! Checked before anything else is read: a file that is empty or holds only blank
//! lines has no header (an error, not a table with no columns); a UTF-16 file (by
//! its byte-order mark, or by NUL bytes at every other position) is refused with
//! advice to re-encode it, since read as UTF-8 it would be garbage; a UTF-8
//! byte-order mark is skipped so it does not end up in the first column's name.
//!
//! Column names are made unique the way DuckDB does (`a`, `a_1`, `a_2`), and an
//! empty name becomes `column_N` (N the 1-based position, as Arrow names the
//! columns of a headerless file): Parquet and Arrow IPC files with duplicate or
//! empty names are files pyarrow refuses or mangles.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::scan::{self, RowScanner, State};
use crate::error::{Error, IoResultExt, Result};

/// A header row longer than this is taken for a file that is not CSV (or whose
/// header quote never closes) rather than read into memory whole.
pub(super) const HEADER_MAX: u64 = 64 << 20;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header of a CSV file.
#[derive(Debug, Clone)]
pub(super) struct Header {
    /// File offset just after the header's terminator: the first data byte.
    pub data_start: u64,
    /// Column names, unique and non-empty.
    pub names: Vec<String>,
}

/// Reads the header of the `len`-byte file at `path`: its first row, which names
/// the columns when `header`; otherwise the first row is data, the columns are
/// named `column0`, `column1`, ... as DuckDB names them, and the data starts at
/// that row.
///
/// # Errors
/// [`Error::Corrupt`] for an empty file or one with no header row;
/// [`Error::Unsupported`] for UTF-16; [`Error::UnterminatedQuote`] when a quote in
/// the header never closes; I/O errors.
pub(super) fn read_header(path: &Path, len: u64, delimiter: u8, header: bool) -> Result<Header> {
    let file = File::open(path).at(path)?;
    let mut head = vec![0u8; len.min(4096) as usize];
    file.read_exact_at(&mut head, 0).at(path)?;
    if let Some(which) = utf16(&head) {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "text encoding",
            found: which.into(),
            supported: "; blockwise reads CSV as UTF-8: re-encode the file \
                        (for example `iconv -f UTF-16 -t UTF-8`)"
                .into(),
        });
    }
    // Collect the header bytes up to the first terminator outside quotes, skipping
    // blank lines before it as the parser does.
    let mut scanner = RowScanner::new(delimiter, b'"');
    let mut bytes: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; len.min(64 * 1024) as usize];
    let mut pos = if head.starts_with(UTF8_BOM) { 3 } else { 0 };
    let mut end = None;
    let mut row_start = None;
    while pos < len && end.is_none() {
        let n = (len - pos).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos).at(path)?;
        let mut chunk = &buf[..n];
        if bytes.is_empty() {
            let blank = chunk
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            chunk = &chunk[blank..];
            pos += blank as u64;
            if chunk.is_empty() {
                continue;
            }
        }
        let base = pos - bytes.len() as u64;
        row_start.get_or_insert(base);
        let from = bytes.len();
        bytes.extend_from_slice(chunk);
        if let Some(p) = scanner.next_terminator(&bytes, from, base) {
            bytes.truncate(p);
            end = Some(base + p as u64 + 1);
        }
        pos += chunk.len() as u64;
        if bytes.len() as u64 > HEADER_MAX {
            return Err(Error::corrupt(
                path,
                "csv",
                format!("the header row does not end within its first {HEADER_MAX} bytes"),
            ));
        }
    }
    if bytes.is_empty() {
        return Err(Error::corrupt(
            path,
            "csv",
            if len == 0 {
                "the file is empty: no header row"
            } else {
                "the file holds no header row (only blank lines)"
            },
        ));
    }
    if end.is_none() && scanner.state == State::Quoted {
        return Err(scan::unterminated(path, scanner.open_at));
    }
    let names = parse_names(path, &bytes, delimiter)?;
    if !header {
        return Ok(Header {
            data_start: row_start.unwrap_or(0),
            names: (0..names.len()).map(|i| format!("column{i}")).collect(),
        });
    }
    Ok(Header {
        data_start: end.unwrap_or(len),
        names: unique_names(names),
    })
}

/// `Some(name)` when `head` (a file's first bytes) is UTF-16 text.
fn utf16(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\xFF\xFE") {
        return Some("UTF-16 (little-endian, with a byte-order mark)");
    }
    if head.starts_with(b"\xFE\xFF") {
        return Some("UTF-16 (big-endian, with a byte-order mark)");
    }
    // Without a mark: ASCII text in UTF-16 has a NUL in every other byte.
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut nul_odd, mut nul_even) = (0, 0);
    for pair in head.chunks_exact(2) {
        nul_even += usize::from(pair[0] == 0);
        nul_odd += usize::from(pair[1] == 0);
    }
    if nul_odd * 2 >= pairs && nul_even == 0 {
        Some("UTF-16 (little-endian)")
    } else if nul_even * 2 >= pairs && nul_odd == 0 {
        Some("UTF-16 (big-endian)")
    } else {
        None
    }
}

/// The fields of one header record.
fn parse_names(path: &Path, record: &[u8], delimiter: u8) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(record);
    let mut fields = csv::ByteRecord::new();
    reader
        .read_byte_record(&mut fields)
        .map_err(|e| super::split::csv_error(path, e))?;
    Ok(fields
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect())
}

/// Names made unique and non-empty: an empty name becomes `column_N` (1-based); a
/// repeated name gets the first free suffix `_1`, `_2`, ... that no other column
/// uses.
pub(super) fn unique_names(names: Vec<String>) -> Vec<String> {
    let originals: HashSet<String> = names.iter().cloned().collect();
    let mut taken: HashSet<String> = HashSet::with_capacity(names.len());
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let base = if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name
        };
        let mut candidate = base.clone();
        let mut k = 1u64;
        // A suffixed name must not take a later column's own name either.
        while taken.contains(&candidate) || (candidate != base && originals.contains(&candidate)) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        unique_names(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn duplicates_get_suffixes_that_collide_with_nothing() {
        assert_eq!(names(&["a", "a", "a"]), ["a", "a_1", "a_2"]);
        assert_eq!(names(&["a", "a", "a_1"]), ["a", "a_2", "a_1"]);
        assert_eq!(names(&["", "b", ""]), ["column_1", "b", "column_3"]);
        assert_eq!(names(&["column_2", ""]), ["column_2", "column_2_1"]);
    }

    fn header_of(bytes: &[u8]) -> Result<Header> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.csv");
        std::fs::write(&p, bytes).unwrap();
        read_header(&p, bytes.len() as u64, b',', true)
    }

    #[test]
    fn bom_blank_lines_and_quoted_newlines() {
        let h = header_of(b"\xEF\xBB\xBFa,b\n1,2\n").unwrap();
        assert_eq!(h.names, ["a", "b"]);
        assert_eq!(h.data_start, 7);
        let h = header_of(b"\n\r\n\"a\nb\",c\n1,2\n").unwrap();
        assert_eq!(h.names, ["a\nb", "c"]);
        assert_eq!(h.data_start, 11);
        let h = header_of(b"a,b").unwrap();
        assert_eq!((h.data_start, h.names.len()), (3, 2));
    }

    #[test]
    fn a_headerless_file_starts_at_its_first_row_with_duckdbs_names() {
        let dir = tempfile::tempdir().unwrap();
        for (text, start) in [
            (&b"1,\"x\ny\",3\n4,5,6\n"[..], 0),
            (b"\xEF\xBB\xBF\n\n1,2,3\n", 5),
            (b"a,a,\n", 0),
        ] {
            let p = dir.path().join("n.csv");
            std::fs::write(&p, text).unwrap();
            let h = read_header(&p, text.len() as u64, b',', false).unwrap();
            assert_eq!(h.names, ["column0", "column1", "column2"]);
            assert_eq!(h.data_start, start);
        }
    }

    #[test]
    fn no_header_utf16_and_open_quotes_are_errors() {
        assert!(matches!(header_of(b""), Err(Error::Corrupt { .. })));
        assert!(matches!(header_of(b"\n\n"), Err(Error::Corrupt { .. })));
        assert!(matches!(
            header_of(b"\xFF\xFEa\0,\0b\0"),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            header_of(b"a\0,\0b\0\n\x001\0"),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            header_of(b"a,\"b\n1,2\n"),
            Err(Error::UnterminatedQuote { line: 1, .. })
        ));
    }
}
