//! Cutting a CSV file into byte ranges that each start at a row start.
//!
//! A naive split (seek, skip to the next newline) breaks on newlines inside quoted
//! fields; Dask documents that its `blocksize` splitting has that flaw. Counting
//! quote parity is not exact either: a quote in the middle of an unquoted field
//! (`5" tall`) is a literal byte. We resolve it exactly with the parser's own state
//! machine ([`super::scan`]), in parallel: each block is scanned from each of the
//! four states it could start in (the runs merge as soon as they agree, which is
//! within a few bytes on almost any data), recording the state it ends in and its
//! first row terminator. Chaining the blocks in order then picks the true state at
//! every block start, the first row start after it, and whether the file ends
//! inside a quoted field, which is an [`Error::UnterminatedQuote`] naming the line
//! where that field opened. So a file with an unclosed quote is refused before any
//! range is read, instead of its rest being swallowed into one field.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use rayon::prelude::*;

use super::scan::{self, RowScanner, State};
use crate::error::{Error, IoResultExt, Result};

const SCAN: usize = 1 << 20;
/// Bytes scanned between two attempts to merge runs.
const MERGE_STEP: usize = 4 << 10;

/// What scanning one block does, for each state it may start in (indexed by
/// [`State::index`]).
struct BlockSummary {
    /// The state after the block's last byte.
    exit: [State; 4],
    /// File offset of the first row terminator outside quotes.
    first_terminator: [Option<u64>; 4],
    /// File offset of the last quote that opened a quoted field.
    last_open: [Option<u64>; 4],
}

/// Byte ranges `[start, end)` covering `[data_start, len)`, each starting at a row
/// start, each about `blocksize` bytes (a row longer than a block makes its range
/// longer). A file that fits one block is one range, not scanned here: its reader
/// sees the whole range and reports an unclosed quote itself.
///
/// # Errors
/// [`Error::UnterminatedQuote`] when the file ends inside a quoted field; I/O
/// errors.
pub fn split_ranges(
    path: &Path,
    data_start: u64,
    len: u64,
    blocksize: u64,
    delimiter: u8,
    quote: u8,
) -> Result<Vec<(u64, u64)>> {
    if data_start >= len {
        return Ok(Vec::new());
    }
    if !quotes_checked(data_start, len, blocksize) {
        return Ok(vec![(data_start, len)]);
    }
    let cut = Cut {
        data_start,
        len,
        blocksize: blocksize.max(1),
        delimiter,
        quote,
    };
    let file = File::open(path).at(path)?;
    let key = SplitKey::of(&file, path, cut)?;
    if let Some(ranges) = key.recalled() {
        return Ok(ranges);
    }
    let ranges = scan_ranges(&file, path, cut)?;
    key.remember(&ranges);
    Ok(ranges)
}

/// How a file is cut: the bytes cut (from `data_start` to `len`), the size
/// of a block, and the characters that delimit fields and quote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    data_start: u64,
    len: u64,
    blocksize: u64,
    delimiter: u8,
    quote: u8,
}

/// What a split depends on: the file (its device, inode, length, and the
/// times of its last change, which no user sets back) and the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SplitKey {
    path: PathBuf,
    file: (u64, u64, Option<SystemTime>, (i64, i64)),
    cut: Cut,
}

/// Splits made in this process, the latest last. A query opens its CSV source
/// twice, to learn its schema and to plan its reading, and a split reads the
/// whole file: 5 GB read again for db-benchmark's 1e8-row table.
static SPLITS: Mutex<Vec<(SplitKey, Ranges)>> = Mutex::new(Vec::new());

/// Byte ranges `[start, end)`.
type Ranges = Vec<(u64, u64)>;

/// Splits remembered at most.
const REMEMBERED: usize = 16;

impl SplitKey {
    fn of(file: &File, path: &Path, cut: Cut) -> Result<SplitKey> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().at(path)?;
        Ok(SplitKey {
            path: path.to_path_buf(),
            file: (
                meta.dev(),
                meta.ino(),
                meta.modified().ok(),
                (meta.ctime(), meta.ctime_nsec()),
            ),
            cut,
        })
    }

    fn recalled(&self) -> Option<Vec<(u64, u64)>> {
        // A poisoned lock only loses the memo: split again.
        let splits = SPLITS.lock().ok()?;
        splits
            .iter()
            .find(|(key, _)| key == self)
            .map(|(_, ranges)| ranges.clone())
    }

    fn remember(self, ranges: &[(u64, u64)]) {
        if let Ok(mut splits) = SPLITS.lock() {
            splits.retain(|(key, _)| key.path != self.path);
            if splits.len() >= REMEMBERED {
                splits.remove(0);
            }
            splits.push((self, ranges.to_vec()));
        }
    }
}

/// The ranges of [`split_ranges`], found by scanning the whole file.
fn scan_ranges(file: &File, path: &Path, cut: Cut) -> Result<Ranges> {
    let Cut {
        data_start,
        len,
        blocksize,
        delimiter,
        quote,
    } = cut;
    let blocks: Vec<(u64, u64)> = (0..(len - data_start).div_ceil(blocksize))
        .map(|k| {
            let s = data_start + k * blocksize;
            (s, s.saturating_add(blocksize).min(len))
        })
        .collect();
    let summaries: Vec<BlockSummary> = blocks
        .par_iter()
        .map(|&(s, e)| summarize(file, s, e, delimiter, quote))
        .collect::<std::io::Result<_>>()
        .at(path)?;
    let mut state = State::FieldStart;
    let mut open = None;
    let mut starts = vec![data_start];
    for (k, summary) in summaries.iter().enumerate() {
        let i = state.index();
        if k > 0 {
            if let Some(t) = summary.first_terminator[i] {
                let row_start = t + 1;
                if row_start > *starts.last().unwrap_or(&0) && row_start < len {
                    starts.push(row_start);
                }
            }
        }
        if summary.last_open[i].is_some() {
            open = summary.last_open[i];
        }
        state = summary.exit[i];
    }
    if state == State::Quoted {
        return Err(scan::unterminated(path, open));
    }
    let mut ranges: Vec<(u64, u64)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    ranges.push((*starts.last().unwrap_or(&data_start), len));
    Ok(ranges)
}

/// Whether [`split_ranges`] follows the quotes of the whole data (and so refuses a
/// quote that never closes) for these arguments: when it cuts the data into more
/// than one block.
pub(super) fn quotes_checked(data_start: u64, len: u64, blocksize: u64) -> bool {
    data_start < len && len - data_start > blocksize.max(1)
}

/// Scans `[start, end)` once, following a run per distinct state.
fn summarize(
    file: &File,
    start: u64,
    end: u64,
    delimiter: u8,
    quote: u8,
) -> std::io::Result<BlockSummary> {
    let mut summary = BlockSummary {
        exit: State::ALL,
        first_terminator: [None; 4],
        last_open: [None; 4],
    };
    // Each run: a scanner and the start states it stands for.
    let mut runs: Vec<(RowScanner, Vec<usize>)> = State::ALL
        .iter()
        .map(|&s| (RowScanner::with_state(delimiter, quote, s), vec![s.index()]))
        .collect();
    let mut buf = vec![0u8; (end - start).min(SCAN as u64) as usize];
    let mut pos = start;
    while pos < end {
        let n = ((end - pos) as usize).min(SCAN);
        file.read_exact_at(&mut buf[..n], pos)?;
        // Runs usually agree within a few bytes: while there are several, go a
        // short step at a time so they merge early; then the rest in one go.
        let mut lo = 0;
        while lo < n {
            let hi = if runs.len() > 1 {
                (lo + MERGE_STEP).min(n)
            } else {
                n
            };
            for (scanner, entries) in &mut runs {
                let mut from = lo;
                // Look for row terminators until every start state of this run has
                // its first one; after that only quotes matter.
                while entries
                    .iter()
                    .any(|&e| summary.first_terminator[e].is_none())
                {
                    match scanner.next_terminator(&buf[..hi], from, pos) {
                        Some(p) => {
                            for &e in entries.iter() {
                                summary.first_terminator[e].get_or_insert(pos + p as u64);
                            }
                            from = p + 1;
                        }
                        None => {
                            from = hi;
                            break;
                        }
                    }
                }
                scanner.advance(&buf[..hi], from, pos);
                if let Some(open) = scanner.open_at.take() {
                    for &e in entries.iter() {
                        summary.last_open[e] = Some(open);
                    }
                }
            }
            // Runs in the same state behave alike from here on: merge them.
            let mut merged: Vec<(RowScanner, Vec<usize>)> = Vec::with_capacity(runs.len());
            for (scanner, entries) in runs {
                match merged.iter_mut().find(|(m, _)| m.state == scanner.state) {
                    Some((_, into)) => into.extend(entries),
                    None => merged.push((scanner, entries)),
                }
            }
            runs = merged;
            lo = hi;
        }
        pos += n as u64;
    }
    for (scanner, entries) in &runs {
        for &e in entries {
            summary.exit[e] = scanner.state;
        }
    }
    Ok(summary)
}

/// Converts a `csv` crate error into ours, keeping its I/O cause.
pub fn csv_error(path: &Path, e: csv::Error) -> Error {
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::corrupt(path, "csv", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, blocksize: u64) -> Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, text).unwrap();
        let h = super::super::header::read_header(&p, text.len() as u64, b',', true).unwrap();
        Ok(
            split_ranges(&p, h.data_start, text.len() as u64, blocksize, b',', b'"')?
                .into_iter()
                .map(|(s, e)| text[s as usize..e as usize].to_string())
                .collect(),
        )
    }

    #[test]
    fn splits_land_on_row_starts_outside_quotes() {
        // Quoted newlines, escaped quotes, and a literal quote mid-field.
        let text = "a,b\n1,\"x\ny\nz\"\n2,\"p,\"\"q\"\"\n\"\n3,5\" r\n4,\"s\ns\"\n";
        for bs in 1..text.len() as u64 {
            let parts = split(text, bs).unwrap();
            assert_eq!(parts.concat(), text["a,b\n".len()..], "blocksize {bs}");
            for p in &parts {
                assert!(
                    ['1', '2', '3', '4'].iter().any(|c| p.starts_with(*c)),
                    "bs {bs}: {parts:?}"
                );
            }
        }
    }

    /// A file split once is not scanned again while it is unchanged; changed
    /// in place, even to the same length, it is split anew.
    #[test]
    fn a_split_is_remembered_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let ranges = |p: &Path| split_ranges(p, 4, 24, 6, b',', b'"').unwrap();
        std::fs::write(&p, "a,b\n1,2\n3,4\n5,6\n7,8\n9,0\n").unwrap();
        let first = ranges(&p);
        assert!(SPLITS
            .lock()
            .unwrap()
            .iter()
            .any(|(key, r)| key.path == p && *r == first));
        assert_eq!(ranges(&p), first);
        // The same length, the rows now cut elsewhere: quoted line breaks.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&p, "a,b\n\"1\n2\n3\",456\n5,6\n7,8\n").unwrap();
        let second = ranges(&p);
        assert_ne!(second, first);
        let text = std::fs::read_to_string(&p).unwrap();
        for (s, _) in &second {
            assert!(["\"1", "5", "7"]
                .iter()
                .any(|r| text[*s as usize..].starts_with(r)));
        }
    }

    #[test]
    fn an_unclosed_quote_names_its_line_whatever_the_blocksize() {
        let text = "a,b\n1,x\n2,\"y\n3,z\n4,w\n";
        for bs in 1..(text.len() as u64 - 4) {
            match split(text, bs) {
                Err(Error::UnterminatedQuote { line, .. }) => assert_eq!(line, 3, "bs {bs}"),
                other => panic!("bs {bs}: {other:?}"),
            }
        }
        // Closed on the last byte: fine.
        assert!(split("a,b\n1,\"x\n\"", 2).is_ok());
    }
}
