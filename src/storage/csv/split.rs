//! Cutting a CSV file into byte ranges that each start at a row start.
//!
//! A naive split (seek, skip to the next newline) breaks on newlines inside quoted
//! fields; Dask documents that its `blocksize` splitting has that flaw. We resolve it
//! exactly: with RFC 4180 quoting (`"` opens and closes, `""` is an escaped quote),
//! a position is inside a quoted field exactly when an odd number of quote bytes
//! precede it since the data start. Counting quotes is a memchr pass that runs per
//! block in parallel; a prefix sum of parities then tells the quote state at each
//! block start, and a short forward scan finds the first newline outside quotes.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{IoResultExt, Result};

const SCAN: usize = 1 << 20;

/// Byte ranges `[start, end)` covering `[data_start, len)`, each starting at a row
/// start, each about `blocksize` bytes (a row longer than a block makes its range
/// longer).
///
/// # Errors
/// When the file cannot be read.
pub fn split_ranges(
    path: &Path,
    data_start: u64,
    len: u64,
    blocksize: u64,
    quote: u8,
) -> Result<Vec<(u64, u64)>> {
    if data_start >= len {
        return Ok(Vec::new());
    }
    let blocks: Vec<(u64, u64)> = (data_start..len)
        .step_by(blocksize.max(1) as usize)
        .map(|s| (s, (s + blocksize).min(len)))
        .collect();
    if blocks.len() == 1 {
        return Ok(blocks);
    }
    let file = File::open(path).at(path)?;
    // Quote parity of each block, then the quote state at each block's start.
    let parities: Vec<bool> = blocks
        .par_iter()
        .map(|&(s, e)| count_quotes(&file, s, e, quote).map(|n| n % 2 == 1))
        .collect::<std::io::Result<_>>()
        .at(path)?;
    let mut inside = false;
    let mut starts = vec![data_start];
    for (k, &(block_start, _)) in blocks.iter().enumerate().skip(1) {
        inside ^= parities[k - 1];
        let row_start = next_row_start(&file, block_start, len, inside, quote).at(path)?;
        if row_start > *starts.last().unwrap_or(&0) && row_start < len {
            starts.push(row_start);
        }
    }
    let mut ranges: Vec<(u64, u64)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    ranges.push((*starts.last().unwrap_or(&data_start), len));
    Ok(ranges)
}

fn count_quotes(file: &File, start: u64, end: u64, quote: u8) -> std::io::Result<u64> {
    let mut buf = vec![0u8; SCAN];
    let mut pos = start;
    let mut count = 0u64;
    while pos < end {
        let n = ((end - pos) as usize).min(SCAN);
        file.read_exact_at(&mut buf[..n], pos)?;
        count += memchr::memchr_iter(quote, &buf[..n]).count() as u64;
        pos += n as u64;
    }
    Ok(count)
}

/// The first position after a newline outside quotes at or after `from`, given
/// whether `from` is inside a quoted field; `len` when there is none.
fn next_row_start(
    file: &File,
    from: u64,
    len: u64,
    mut inside: bool,
    quote: u8,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = from;
    while pos < len {
        let n = ((len - pos) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], pos)?;
        for i in memchr::memchr2_iter(quote, b'\n', &buf[..n]) {
            if buf[i] == quote {
                inside = !inside;
            } else if !inside {
                return Ok(pos + i as u64 + 1);
            }
        }
        pos += n as u64;
    }
    Ok(len)
}

/// The byte offset just after the header record (which may itself hold quoted
/// newlines), and the header's field names.
///
/// # Errors
/// When the file cannot be read or has no header row.
pub fn read_header(path: &Path, delimiter: u8) -> Result<(u64, Vec<String>)> {
    let file = File::open(path).at(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(file.take(u64::MAX));
    let mut record = csv::ByteRecord::new();
    let found = reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?;
    if !found {
        return Ok((0, Vec::new()));
    }
    let names = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    Ok((reader.position().byte(), names))
}

/// Converts a `csv` crate error into ours, keeping its I/O cause.
pub fn csv_error(path: &Path, e: csv::Error) -> crate::error::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => crate::error::Error::io(path, io),
        other => crate::error::Error::corrupt(path, "csv", format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges_of(text: &str, blocksize: u64) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, text).unwrap();
        let (start, _) = read_header(&p, b',').unwrap();
        split_ranges(&p, start, text.len() as u64, blocksize, b'"')
            .unwrap()
            .into_iter()
            .map(|(s, e)| text[s as usize..e as usize].to_string())
            .collect()
    }

    #[test]
    fn splits_land_on_row_starts_outside_quotes() {
        let text = "a,b\n1,\"x\ny\nz\"\n2,\"p,\"\"q\"\"\n\"\n3,r\n";
        for bs in 1..text.len() as u64 {
            let parts = ranges_of(text, bs);
            assert_eq!(parts.concat(), text["a,b\n".len()..], "blocksize {bs}");
            for p in &parts {
                assert!(
                    p.starts_with('1') || p.starts_with('2') || p.starts_with('3'),
                    "bs {bs}: {parts:?}"
                );
            }
        }
    }

    #[test]
    fn header_with_quoted_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.csv");
        std::fs::write(&p, "\"a\nb\",c\n1,2\n").unwrap();
        let (end, names) = read_header(&p, b',').unwrap();
        assert_eq!(end, 8);
        assert_eq!(names, vec!["a\nb", "c"]);
    }
}
