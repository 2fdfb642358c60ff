//! Sizes computed from untrusted metadata: element counts and byte sizes of shapes,
//! in checked arithmetic, and the comparison with what a file or a reader can hold.
//!
//! Every reader takes its shapes from a file it does not trust (an `.npy` header, a
//! Zarr `zarr.json`, an npy-stack `info` pickle). Each size goes through these
//! helpers before anything is allocated or mapped, so an overflowing or lying shape
//! becomes [`Error::SizeMismatch`] instead of a wrapped product, an abort on a huge
//! allocation, or a panic.

use std::path::Path;

use crate::error::{Error, Result};

/// The largest decoded chunk a reader accepts, in bytes (4 GiB).
///
/// A chunk is decoded whole into memory, so a chunk shape from metadata is a
/// request for that much memory at once. Blosc, the most common Zarr compressor,
/// cannot hold a buffer of 2 GiB or more, and no Zarr writer chooses chunks this
/// large by default; a larger chunk is refused when the array is opened rather than
/// when the allocation fails.
pub const MAX_CHUNK_BYTES: u64 = 1 << 32;

/// The largest number of chunks an array may have (2^32).
///
/// Every chunk of a conversion is at least one task and one entry of its plan, whose
/// ids are 32 bits; an array with more chunks than that cannot be planned.
pub const MAX_CHUNKS: u64 = 1 << 32;

/// More output files than this draws a warning: file systems, backups and `ls` slow
/// down past a million files in one tree.
pub const MANY_FILES: u64 = 1_000_000;

/// A warning that an output will be written as very many files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManyFiles {
    /// How many files the output will have.
    pub files: u64,
    /// The output's chunk shape.
    pub chunk_shape: Vec<u64>,
}

impl std::fmt::Display for ManyFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the output will be {} files (chunk shape {}), more than {MANY_FILES}; \
             larger chunks make fewer files",
            self.files,
            shape_text(&self.chunk_shape)
        )
    }
}

/// The warning for an output of `files` files, if they are more than [`MANY_FILES`].
pub fn many_files(files: u64, chunk_shape: &[u64]) -> Option<ManyFiles> {
    (files > MANY_FILES).then(|| ManyFiles {
        files,
        chunk_shape: chunk_shape.to_vec(),
    })
}

/// Number of elements of `shape` (1 for a scalar), or `None` when the product does
/// not fit in 64 bits.
pub fn checked_num_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &n| acc.checked_mul(n))
}

/// Bytes of an array of `shape` with `item`-byte elements, or `None` on overflow.
pub fn checked_nbytes(shape: &[u64], item: u64) -> Option<u64> {
    checked_num_elements(shape)?.checked_mul(item)
}

/// A shape as a user reads it: `[1000, 1000]`, `[]` for a scalar.
pub fn shape_text(shape: &[u64]) -> String {
    let parts: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// A shape as a Python tuple, as numpy prints one: `(3, 4)`, `(5,)`, `()`.
pub fn tuple_text(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// The largest byte size numpy allows an array (`npy_intp::MAX`, 2^63 - 1).
pub const MAX_ARRAY_BYTES: u64 = i64::MAX as u64;

/// The bytes an array of `shape` would span with every zero-length axis counted as
/// one, or `None` when that exceeds [`MAX_ARRAY_BYTES`].
///
/// This is numpy's own rule ("array is too big"): a zero-length axis makes the array
/// empty, but it must not hide axes whose product overflows, because every chunk
/// grid, chunk-shape choice and index computed from the other axes would overflow.
pub fn checked_extent_bytes(shape: &[u64], item: u64) -> Option<u64> {
    shape
        .iter()
        .try_fold(item.max(1), |acc, &n| acc.checked_mul(n.max(1)))
        .filter(|&n| n <= MAX_ARRAY_BYTES)
}

/// The error for a shape past [`MAX_ARRAY_BYTES`], zero-length axes counted as one.
/// `held` is what the file holds, when there is a file to speak of.
fn too_large(
    path: &Path,
    what: &'static str,
    shape: &[u64],
    item: u64,
    held: Option<u64>,
) -> Error {
    Error::SizeMismatch {
        path: path.to_path_buf(),
        what,
        shape: shape_text(shape),
        needed: match checked_nbytes(shape, item) {
            None => needed_text(None),
            Some(0) => "no data, yet its other axes span more than 2^63".into(),
            Some(n) => n.to_string(),
        },
        present: format!(
            "no array can be that large (numpy's limit is 2^63 - 1 bytes, zero-length axes \
             counted as one){}",
            held.map_or_else(String::new, |n| format!("; the file holds {n} data bytes"))
        ),
    }
}

/// The words for a byte count that does not fit in 64 bits, or the count.
fn needed_text(needed: Option<u64>) -> String {
    match needed {
        Some(n) => n.to_string(),
        None => "more than 2^64".into(),
    }
}

/// The bytes of `shape` with `item`-byte elements, checked: an overflowing product
/// is [`Error::SizeMismatch`] naming `what` (e.g. "shape") at `path`.
///
/// # Errors
/// [`Error::SizeMismatch`] when the byte size does not fit in 64 bits.
pub fn nbytes_or_error(path: &Path, what: &'static str, shape: &[u64], item: u64) -> Result<u64> {
    checked_extent_bytes(shape, item).ok_or_else(|| too_large(path, what, shape, item, None))?;
    checked_nbytes(shape, item).ok_or_else(|| too_large(path, what, shape, item, None))
}

/// Checks that `shape` with `item`-byte elements fits in the `present` bytes a file
/// holds after its header; returns the bytes needed.
///
/// # Errors
/// [`Error::SizeMismatch`] naming the shape, the bytes it needs (or "more than
/// 2^64") and the bytes the file holds.
pub fn require_bytes(
    path: &Path,
    what: &'static str,
    shape: &[u64],
    item: u64,
    present: u64,
) -> Result<u64> {
    if checked_extent_bytes(shape, item).is_none() {
        return Err(too_large(path, what, shape, item, Some(present)));
    }
    match checked_nbytes(shape, item) {
        Some(needed) if needed <= present => Ok(needed),
        needed => Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            what,
            shape: shape_text(shape),
            needed: needed_text(needed),
            present: format!("the file holds {present} data bytes"),
        }),
    }
}

/// Checks that a chunk of `chunk_shape` with `item`-byte elements is at most
/// [`MAX_CHUNK_BYTES`]; returns its bytes.
///
/// # Errors
/// [`Error::SizeMismatch`] naming the chunk shape and its bytes.
pub fn require_chunk_bytes(path: &Path, chunk_shape: &[u64], item: u64) -> Result<u64> {
    match checked_nbytes(chunk_shape, item) {
        Some(n) if n <= MAX_CHUNK_BYTES => Ok(n),
        needed => Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            what: "chunk shape",
            shape: shape_text(chunk_shape),
            needed: needed_text(needed),
            present: format!(
                "blockwise decodes chunks of at most {MAX_CHUNK_BYTES} bytes (4 GiB); \
                 rechunk the array with smaller chunks"
            ),
        }),
    }
}

/// Checks that a grid of `grid_shape` chunks has at most [`MAX_CHUNKS`]; returns the
/// count.
///
/// # Errors
/// [`Error::Unsupported`] naming the number of chunks and the grid.
pub fn require_chunk_count(path: &Path, grid_shape: &[u64]) -> Result<u64> {
    match checked_num_elements(grid_shape) {
        Some(n) if n <= MAX_CHUNKS => Ok(n),
        n => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "number of chunks",
            found: format!(
                "{} (a grid of {})",
                n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                shape_text(grid_shape)
            ),
            supported: format!("; blockwise handles at most {MAX_CHUNKS} chunks an array"),
        }),
    }
}

/// An empty buffer with room for exactly a region of `shape` with `item`-byte
/// elements, for a reader that fills all of it (nothing is zeroed first), allocated
/// fallibly as [`alloc_zeroed`] is.
///
/// # Errors
/// [`Error::SizeMismatch`] naming the region's shape and bytes.
pub fn alloc_empty(path: &Path, shape: &[u64], item: u64) -> Result<Vec<u8>> {
    let bytes = checked_nbytes(shape, item).and_then(|n| usize::try_from(n).ok());
    let mut buf = Vec::new();
    match bytes {
        Some(n) if buf.try_reserve_exact(n).is_ok() => Ok(buf),
        _ => Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            what: "region",
            shape: shape_text(shape),
            needed: needed_text(checked_nbytes(shape, item)),
            present: "that much memory could not be allocated".into(),
        }),
    }
}

/// A zeroed buffer for a region of `shape` with `item`-byte elements, allocated
/// fallibly: a size that overflows or that the allocator refuses is an error, never
/// an abort.
///
/// # Errors
/// [`Error::SizeMismatch`] naming the region's shape and bytes.
// `vec![0; n]` would abort when the allocation fails; reserving first is the point.
#[allow(clippy::slow_vector_initialization)]
pub fn alloc_zeroed(path: &Path, shape: &[u64], item: u64) -> Result<Vec<u8>> {
    let bytes = checked_nbytes(shape, item).and_then(|n| usize::try_from(n).ok());
    let mut buf = Vec::new();
    match bytes {
        Some(n) if buf.try_reserve_exact(n).is_ok() => {
            buf.resize(n, 0);
            Ok(buf)
        }
        _ => Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            what: "region",
            shape: shape_text(shape),
            needed: needed_text(checked_nbytes(shape, item)),
            present: "that much memory could not be allocated".into(),
        }),
    }
}

/// Parses a byte size: `1024`, `64KiB`, `256MiB`, `2GiB`, `1.5GB`, `512M`. Zero, a
/// negative or non-finite number, and a size past 2^64 bytes are refused.
///
/// # Errors
/// What is wrong and the accepted forms, as a reason for [`Error::InvalidOption`].
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| "not a size; write e.g. 512MiB or 2GB".to_string())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit \"{}\"; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB",
                unit.trim()
            ))
        }
    };
    let bytes = value * scale as f64;
    // `as u64` would saturate a huge value and turn NaN into 0: check first.
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("is larger than 2^64 bytes".into());
    }
    let bytes = bytes as u64;
    if bytes == 0 {
        return Err("must be at least 1 byte".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_checked() {
        assert_eq!(checked_num_elements(&[]), Some(1));
        assert_eq!(checked_num_elements(&[3, 0, u64::MAX]), Some(0));
        assert_eq!(checked_nbytes(&[1 << 62], 8), None);
        assert_eq!(checked_nbytes(&[2, 3], 8), Some(48));
        assert_eq!(shape_text(&[2, 3]), "[2, 3]");
        assert_eq!(shape_text(&[]), "[]");
    }

    #[test]
    fn a_shape_the_file_cannot_hold_names_both_sizes() {
        let e = require_bytes(Path::new("a.npy"), "shape", &[10, 10], 8, 100).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(text.contains("[10, 10]") && text.contains("800") && text.contains("100"));
        let e =
            require_bytes(Path::new("a.npy"), "shape", &[1 << 40, 1 << 40], 8, 100).unwrap_err();
        assert!(e.to_string().contains("more than 2^64"), "{e}");
        assert_eq!(
            require_bytes(Path::new("a"), "shape", &[2], 4, 8).unwrap(),
            8
        );
    }

    #[test]
    fn a_zero_length_axis_does_not_hide_an_overflowing_shape() {
        // numpy refuses np.empty((0, 2**62)): the other axes still overflow.
        for shape in [
            vec![0, 1 << 62],
            vec![1 << 63, 0, 1 << 63],
            vec![0, u64::MAX],
        ] {
            let e = require_bytes(Path::new("a.npy"), "shape", &shape, 8, 0).unwrap_err();
            assert!(e.to_string().contains("no array can be that large"), "{e}");
            assert!(nbytes_or_error(Path::new("z"), "shape", &shape, 8).is_err());
        }
        assert_eq!(
            require_bytes(Path::new("a.npy"), "shape", &[0, 1 << 40], 8, 0).unwrap(),
            0
        );
        assert_eq!(checked_extent_bytes(&[], 8), Some(8));
        assert_eq!(checked_extent_bytes(&[1 << 60], 8), None);
    }

    #[test]
    fn huge_chunks_and_grids_are_refused() {
        assert!(require_chunk_bytes(Path::new("z"), &[1 << 30], 8).is_err());
        assert!(require_chunk_bytes(Path::new("z"), &[1 << 20], 8).is_ok());
        assert!(require_chunk_count(Path::new("z"), &[1 << 40]).is_err());
        assert_eq!(require_chunk_count(Path::new("z"), &[5]).unwrap(), 5);
    }

    #[test]
    fn a_million_files_is_fine_one_more_is_a_warning() {
        assert_eq!(many_files(MANY_FILES, &[1]), None);
        let w = many_files(MANY_FILES + 1, &[1, 1]).unwrap();
        let text = w.to_string();
        assert!(
            text.contains("1000001 files") && text.contains("[1, 1]"),
            "{text}"
        );
    }
}
