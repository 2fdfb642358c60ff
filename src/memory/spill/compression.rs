//! How spill files are compressed: [`SpillCompression`], as `--spill-compression`
//! takes it.

use std::fmt;
use std::str::FromStr;

use arrow::ipc::writer::IpcWriteOptions;
use arrow::ipc::CompressionType;

use crate::error::{Error, Result};

/// How spill files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpillCompression {
    /// Uncompressed while the job's spill files hold less than a quarter of its spill
    /// quota (by default most of the disk's free space), zstd level 1 past that.
    /// Spilled data is read back within the same job, usually from the page cache:
    /// compressing it cost a spilling sort 26% (LZ4) to 35% (zstd level 1) more CPU,
    /// so only a spill large enough to threaten the disk pays for it.
    #[default]
    Auto,
    /// Bytes are written as they are (fastest when the disk is faster than zstd).
    None,
    /// zstd at the given level (1 by default: about 0.3–0.5 GB/s a core, and most
    /// columnar data still shrinks by half or more).
    Zstd(i32),
}

/// The zstd level of `zstd` without a level, and of [`SpillCompression::Auto`] past
/// its threshold: about 0.3–0.5 GB/s a core, and columnar data shrinks 2–4×.
const ZSTD_LEVEL: i32 = 1;

impl SpillCompression {
    /// The compression of a file written now, when the spill files hold `used` bytes
    /// of a `quota`: [`SpillCompression::Auto`] decided, any other unchanged.
    pub fn resolve(self, used: u64, quota: u64) -> SpillCompression {
        match self {
            SpillCompression::Auto if used < quota / 4 => SpillCompression::None,
            SpillCompression::Auto => SpillCompression::Zstd(ZSTD_LEVEL),
            other => other,
        }
    }

    /// Arrow IPC write options with this compression ([`SpillCompression::Auto`] as
    /// written now is for the caller to [`resolve`](Self::resolve); unresolved, it
    /// writes uncompressed).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a zstd level arrow's IPC writer refuses.
    pub fn ipc_write_options(self) -> Result<IpcWriteOptions> {
        let options = IpcWriteOptions::default();
        match self {
            SpillCompression::Auto | SpillCompression::None => Ok(options),
            // arrow-ipc would otherwise use its own default level (3), three times
            // slower than the level 1 spills are meant to run at.
            SpillCompression::Zstd(level) => options
                .try_with_compression(Some(CompressionType::ZSTD))
                .and_then(|o| o.try_with_compression_level(Some(level)))
                .map_err(|e| Error::InvalidOption {
                    option: "spill_compression",
                    value: format!("zstd:{level}"),
                    reason: e.to_string(),
                }),
        }
    }

    /// Parses `auto`, `none`, `zstd` (level 1) or `zstd:LEVEL`, as
    /// `--spill-compression` takes it.
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
                "expected auto, none, zstd or zstd:LEVEL with LEVEL from {} to {}",
                zstd::compression_level_range().start(),
                zstd::compression_level_range().end()
            ),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SpillCompression::Auto),
            "none" => Ok(SpillCompression::None),
            "zstd" => Ok(SpillCompression::Zstd(ZSTD_LEVEL)),
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
            SpillCompression::Auto => f.write_str("auto"),
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
        assert_eq!(SpillCompression::default(), SpillCompression::Auto);
        assert_eq!(
            SpillCompression::parse("auto").unwrap(),
            SpillCompression::Auto
        );
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

    #[test]
    fn auto_compresses_only_past_a_quarter_of_the_quota() {
        let auto = SpillCompression::Auto;
        assert_eq!(auto.resolve(0, 1000), SpillCompression::None);
        assert_eq!(auto.resolve(249, 1000), SpillCompression::None);
        assert_eq!(auto.resolve(250, 1000), SpillCompression::Zstd(1));
        assert_eq!(auto.resolve(0, 0), SpillCompression::Zstd(1));
        for fixed in [SpillCompression::None, SpillCompression::Zstd(5)] {
            assert_eq!(fixed.resolve(0, 1000), fixed);
            assert_eq!(fixed.resolve(1000, 1000), fixed);
        }
    }
}
