//! How spill files are compressed: [`SpillCompression`], as `--spill-compression`
//! takes it.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How spill files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillCompression {
    /// Bytes are written as they are (fastest when the disk is faster than zstd).
    None,
    /// zstd at the given level (1 by default: about 0.3–0.5 GB/s a core, and most
    /// columnar data still shrinks by half or more).
    Zstd(i32),
}

impl Default for SpillCompression {
    fn default() -> Self {
        SpillCompression::Zstd(1)
    }
}

impl SpillCompression {
    /// Parses `none`, `zstd` (level 1) or `zstd:LEVEL`, as `--spill-compression` takes it.
    ///
    /// # Errors
    /// [`Error::Usage`] for any other value or a level zstd does not have.
    ///
    /// # Examples
    /// ```
    /// use blockwise::memory::spill::SpillCompression;
    /// assert_eq!(SpillCompression::parse("zstd:3")?, SpillCompression::Zstd(3));
    /// assert_eq!(SpillCompression::parse("none")?, SpillCompression::None);
    /// # Ok::<(), blockwise::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::InvalidOption {
            option: "spill_compression",
            value: s.to_string(),
            reason: format!(
                "expected none, zstd or zstd:LEVEL with LEVEL from {} to {}",
                zstd::compression_level_range().start(),
                zstd::compression_level_range().end()
            ),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SpillCompression::None),
            "zstd" => Ok(SpillCompression::default()),
            other => {
                let level = other
                    .strip_prefix("zstd:")
                    .and_then(|l| l.trim().parse::<i32>().ok())
                    .ok_or_else(bad)?;
                if zstd::compression_level_range().contains(&level) {
                    Ok(SpillCompression::Zstd(level))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl FromStr for SpillCompression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        SpillCompression::parse(s)
    }
}

impl fmt::Display for SpillCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpillCompression::None => f.write_str("none"),
            SpillCompression::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::spill::test_support::ALL;

    #[test]
    fn compression_parses_none_zstd_and_levels() {
        assert_eq!(SpillCompression::default(), SpillCompression::Zstd(1));
        assert_eq!(
            SpillCompression::parse("none").unwrap(),
            SpillCompression::None
        );
        assert_eq!(
            SpillCompression::parse("zstd").unwrap(),
            SpillCompression::Zstd(1)
        );
        assert_eq!(
            SpillCompression::parse("ZSTD:7").unwrap(),
            SpillCompression::Zstd(7)
        );
        assert_eq!(
            "zstd:-3".parse::<SpillCompression>().unwrap(),
            SpillCompression::Zstd(-3)
        );
        for bad in ["gzip", "zstd:", "zstd:x", "zstd:99", ""] {
            assert!(
                matches!(
                    SpillCompression::parse(bad),
                    Err(Error::InvalidOption { .. })
                ),
                "{bad:?} parsed"
            );
        }
        for c in ALL {
            assert_eq!(SpillCompression::parse(&c.to_string()).unwrap(), c);
        }
    }
}
