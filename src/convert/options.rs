//! Conversion options, and the parsers for their command-line spellings.

use crate::error::{Error, Result};
use crate::storage::frame::FrameReadOptions;
use crate::storage::Format;

/// How to chunk an output array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkSpec {
    /// About [`super::AUTO_CHUNK_BYTES`] per chunk, close to square.
    Auto,
    /// An explicit chunk shape.
    Shape(Vec<u64>),
}

impl ChunkSpec {
    /// Parses `auto` or `1000,1000`.
    ///
    /// # Errors
    /// [`Error::Usage`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ChunkSpec::Auto);
        }
        text.split(',')
            .map(|p| match p.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::Usage(format!(
                    "--chunks {text:?}: {p:?} is not a positive integer; write e.g. 1000,1000 or auto"
                ))),
            })
            .collect::<Result<Vec<_>>>()
            .map(ChunkSpec::Shape)
    }
}

/// Output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// None.
    None,
    /// zstd at a level (1-22).
    Zstd(i32),
    /// LZ4 (Arrow IPC only).
    Lz4,
}

impl Compression {
    /// Parses `none`, `zstd`, `zstd:LEVEL` or `lz4`.
    ///
    /// # Errors
    /// [`Error::Usage`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let lower = text.to_ascii_lowercase();
        let (name, level) = match lower.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (lower.as_str(), None),
        };
        let bad = || {
            Error::Usage(format!(
                "--compression {text:?}: use none, zstd, zstd:LEVEL (1-22) or lz4"
            ))
        };
        match (name, level) {
            ("none" | "uncompressed", None) => Ok(Compression::None),
            ("lz4", None) => Ok(Compression::Lz4),
            ("zstd", None) => Ok(Compression::Zstd(3)),
            ("zstd", Some(l)) => match l.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => Ok(Compression::Zstd(l)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// Everything `convert` can be told.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Output format; from the destination's extension when `None`.
    pub to: Option<Format>,
    /// Output chunking (arrays).
    pub chunks: Option<ChunkSpec>,
    /// Output compression; each format's default when `None` (zstd level 3 for
    /// Parquet and Zarr, none for Arrow IPC).
    pub compression: Option<Compression>,
    /// How to read a table (columns, types, delimiter, blocksize).
    pub read: FrameReadOptions,
    /// Rows per Parquet row group.
    pub row_group_rows: Option<usize>,
    /// Replace an existing destination.
    pub overwrite: bool,
    /// Sort a table by these keys (an external merge sort that spills when the
    /// memory limit is short).
    pub sort_by: Option<Vec<crate::frame::ops::sort::SortKey>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(ChunkSpec::parse("auto").unwrap(), ChunkSpec::Auto);
        assert_eq!(
            ChunkSpec::parse("10, 20").unwrap(),
            ChunkSpec::Shape(vec![10, 20])
        );
        assert!(ChunkSpec::parse("10,0").is_err());
        assert_eq!(Compression::parse("zstd:7").unwrap(), Compression::Zstd(7));
        assert_eq!(Compression::parse("NONE").unwrap(), Compression::None);
        assert!(Compression::parse("zstd:99").is_err());
        assert!(Compression::parse("gzip").is_err());
    }
}
