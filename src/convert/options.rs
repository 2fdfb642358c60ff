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
    /// [`Error::InvalidOption`] naming `--chunks` for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ChunkSpec::Auto);
        }
        text.split(',')
            .map(|p| match p.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::InvalidOption {
                    option: "chunks",
                    value: text.to_string(),
                    reason: format!(
                        "'{}' is not a positive integer; write one size per axis, e.g. \
                         1000,1000, or auto",
                        p.trim()
                    ),
                }),
            })
            .collect::<Result<Vec<_>>>()
            .map(ChunkSpec::Shape)
    }
}

impl std::fmt::Display for Compression {
    /// As [`Compression::parse`] reads it: `none`, `lz4`, `zstd:3`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Lz4 => f.write_str("lz4"),
            Compression::Zstd(level) => write!(f, "zstd:{level}"),
        }
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
    /// [`Error::InvalidOption`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let lower = text.to_ascii_lowercase();
        let (name, level) = match lower.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (lower.as_str(), None),
        };
        let bad = || Error::InvalidOption {
            option: "compression",
            value: text.to_string(),
            reason: "use none, zstd, zstd:LEVEL (1-22) or lz4".into(),
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
    /// Input format; told from the source's contents and name when `None`.
    pub from: Option<Format>,
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

impl ConvertOptions {
    /// Refuses options that do nothing for a conversion from `from` to `to`, so that
    /// a mistyped command fails instead of silently doing something else.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the option and why it does not apply.
    pub fn check_applies(&self, from: Format, to: Format) -> Result<()> {
        use crate::storage::Kind;
        let refuse = |option: &'static str, value: String, reason: String| {
            Err(Error::InvalidOption {
                option,
                value,
                reason,
            })
        };
        if let Some(chunks) = &self.chunks {
            if to.kind() == Kind::Frame {
                let value = match chunks {
                    ChunkSpec::Auto => "auto".to_string(),
                    ChunkSpec::Shape(s) => join(s),
                };
                return refuse(
                    "chunks",
                    value,
                    format!("chunks shape arrays; {} output is a table", to.name()),
                );
            }
        }
        if let Some(groups) = &self.read.row_groups {
            if from != Format::Parquet {
                return refuse(
                    "row_groups",
                    join(groups),
                    format!("row groups are Parquet's; the input is {}", from.name()),
                );
            }
        }
        if let Some((column, dtype)) = self.read.dtypes.first() {
            if from != Format::Csv {
                return refuse(
                    "dtype",
                    format!("{column}={}", crate::storage::type_name(dtype)),
                    format!(
                        "types are forced on CSV input only; {} input has its own types",
                        from.name()
                    ),
                );
            }
        }
        if self.read.delimiter != b',' && from != Format::Csv && to != Format::Csv {
            return refuse(
                "delimiter",
                (self.read.delimiter as char).to_string(),
                format!(
                    "neither the input ({}) nor the output ({}) is CSV",
                    from.name(),
                    to.name()
                ),
            );
        }
        if let Some(rows) = self.row_group_rows {
            if to != Format::Parquet {
                return refuse(
                    "row_group_size",
                    rows.to_string(),
                    format!("row groups are Parquet's; the output is {}", to.name()),
                );
            }
        }
        if let Some(keys) = &self.sort_by {
            if (from.kind(), to.kind()) != (Kind::Frame, Kind::Frame) {
                let value = keys
                    .iter()
                    .map(|k| k.column.clone())
                    .collect::<Vec<_>>()
                    .join(",");
                return refuse(
                    "sort_by",
                    value,
                    "sorts tables; both the input and the output must be tables".into(),
                );
            }
        }
        if let Some(columns) = &self.read.columns {
            // The same column twice would make a table with two equal names, which
            // pyarrow cannot read back; it is never what was meant.
            if let Some(twice) = columns
                .iter()
                .enumerate()
                .find_map(|(i, c)| columns[..i].contains(c).then_some(c))
            {
                return refuse(
                    "columns",
                    columns.join(","),
                    format!(
                        "names the column {} twice; name each column once",
                        quote(twice)
                    ),
                );
            }
            if from.kind() == Kind::Array {
                return refuse(
                    "columns",
                    columns.join(","),
                    format!(
                        "columns select from tables; {} input is an array",
                        from.name()
                    ),
                );
            }
        }
        Ok(())
    }
}

/// A name in double quotes, as messages show names: a name may hold any character.
fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// `[1, 2]` as `1,2`, the way the option is written.
fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
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
