//! Chunks of the commonest Zarr v3 codec chain, `bytes` (little-endian) then
//! optionally `zstd`, encoded and decoded here rather than through zarrs.
//!
//! A conversion's time is almost all zstd. zarrs makes a new zstd context for every
//! chunk (a compressor's tables are zeroed and a megabyte of workspace is mapped
//! each time) and decodes into a buffer of its own that the caller then copies;
//! here each thread keeps its contexts, a chunk decodes straight into the caller's
//! buffer, and the chunk file is read once. Any other chain (sharding, crc32c,
//! transpose, gzip, big-endian bytes, v2 arrays) goes through zarrs. What this
//! writes is exactly what zarrs writes for the same chain: one zstd frame of the
//! chunk's little-endian bytes.

use std::cell::RefCell;

use zarrs::array::ArrayMetadata;

/// The chain `bytes` (little-endian, or without an endian for one-byte types),
/// then zstd or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DirectCodec {
    /// Only `bytes`: a chunk's file is its bytes.
    Raw,
    /// `bytes` then `zstd` at `level` (the level matters to encoding only).
    Zstd {
        /// The compression level written.
        level: i32,
    },
}

/// Why a chunk did not decode.
#[derive(Debug)]
pub(super) enum DecodeError {
    /// The zstd stream is broken, or holds more than the chunk's bytes.
    Zstd(std::io::Error),
    /// The stream decoded to `found` bytes, not the chunk's size.
    Size {
        /// Decoded bytes.
        found: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Zstd(e) => write!(f, "zstd: {e}"),
            DecodeError::Size { found } => write!(f, "it decodes to {found} bytes"),
        }
    }
}

thread_local! {
    /// This thread's compressor and the level it was made for.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// This thread's decompressor.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

impl DirectCodec {
    /// The direct codec of an array with this metadata, when its chain is one this
    /// module handles and the machine is little-endian (so that a chunk's bytes
    /// are the array's in-memory bytes).
    pub(super) fn of(metadata: &ArrayMetadata) -> Option<Self> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let ArrayMetadata::V3(v3) = metadata else {
            return None;
        };
        if !v3.storage_transformers.is_empty() {
            return None;
        }
        let codecs = serde_json::to_value(&v3.codecs).ok()?;
        let codecs = codecs.as_array()?;
        let config =
            |c: &serde_json::Value, key: &str| c.pointer(&format!("/configuration/{key}")).cloned();
        let name = |c: &serde_json::Value| c.get("name").and_then(|n| n.as_str()).map(String::from);
        let (first, rest) = codecs.split_first()?;
        let little = match config(first, "endian") {
            None => true,
            Some(e) => e.as_str() == Some("little"),
        };
        if name(first).as_deref() != Some("bytes") || !little {
            return None;
        }
        match rest {
            [] => Some(DirectCodec::Raw),
            [zstd] if name(zstd).as_deref() == Some("zstd") => {
                // The level only matters when encoding; a level this crate's zstd
                // would refuse sends the array to zarrs, which reports it.
                let level = config(zstd, "level")?.as_i64()?;
                let level = i32::try_from(level).ok()?;
                zstd::compression_level_range()
                    .contains(&level)
                    .then_some(DirectCodec::Zstd { level })
            }
            _ => None,
        }
    }

    /// The bytes stored for a chunk whose little-endian bytes are `data`.
    ///
    /// # Errors
    /// zstd's (only for a level it refuses, which [`DirectCodec::of`] keeps out).
    pub(super) fn encode<'a>(&self, data: &'a [u8]) -> std::io::Result<std::borrow::Cow<'a, [u8]>> {
        match *self {
            DirectCodec::Raw => Ok(std::borrow::Cow::Borrowed(data)),
            DirectCodec::Zstd { level } => COMPRESSOR.with(|cell| {
                let mut slot = cell.borrow_mut();
                let compressor = match &mut *slot {
                    Some((l, c)) if *l == level => c,
                    other => &mut other.insert((level, zstd::bulk::Compressor::new(level)?)).1,
                };
                compressor.compress(data).map(std::borrow::Cow::Owned)
            }),
        }
    }

    /// Decodes a chunk's stored bytes into `out` (cleared first), which must come
    /// out holding exactly `expected` bytes. `out` is written in its spare capacity
    /// and never zeroed; it grows to `expected` bytes at most, whatever the stream
    /// claims.
    ///
    /// # Errors
    /// [`DecodeError`] for a broken stream or one of another size.
    pub(super) fn decode_into(
        &self,
        encoded: &[u8],
        out: &mut Vec<u8>,
        expected: usize,
    ) -> std::result::Result<(), DecodeError> {
        out.clear();
        match self {
            DirectCodec::Raw => {
                if encoded.len() != expected {
                    return Err(DecodeError::Size {
                        found: encoded.len(),
                    });
                }
                out.extend_from_slice(encoded);
            }
            DirectCodec::Zstd { .. } => {
                // One byte more than the chunk: a stream that fills it is too long.
                // zstd writes into the spare capacity only, so whatever the frame
                // claims, nothing grows past what is reserved here.
                out.reserve_exact(expected.saturating_add(1));
                DECOMPRESSOR.with(|cell| {
                    let mut slot = cell.borrow_mut();
                    let decompressor = match &mut *slot {
                        Some(d) => d,
                        None => {
                            slot.insert(zstd::bulk::Decompressor::new().map_err(DecodeError::Zstd)?)
                        }
                    };
                    decompressor
                        .decompress_to_buffer(encoded, out)
                        .map_err(DecodeError::Zstd)
                })?;
                if out.len() != expected {
                    return Err(DecodeError::Size { found: out.len() });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(codecs: serde_json::Value) -> ArrayMetadata {
        serde_json::from_value(serde_json::json!({
            "zarr_format": 3, "node_type": "array", "shape": [4, 4], "data_type": "float64",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0.0, "codecs": codecs
        }))
        .unwrap()
    }

    #[test]
    fn only_bytes_and_zstd_chains_are_direct() {
        use serde_json::json;
        let bytes = json!({"name": "bytes", "configuration": {"endian": "little"}});
        let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}});
        let crc = json!({"name": "crc32c"});
        let big = json!({"name": "bytes", "configuration": {"endian": "big"}});
        assert_eq!(
            DirectCodec::of(&metadata(json!([bytes]))),
            Some(DirectCodec::Raw)
        );
        assert_eq!(
            DirectCodec::of(&metadata(json!([bytes, zstd]))),
            Some(DirectCodec::Zstd { level: 3 })
        );
        assert_eq!(DirectCodec::of(&metadata(json!([bytes, zstd, crc]))), None);
        assert_eq!(DirectCodec::of(&metadata(json!([big, zstd]))), None);
    }

    #[test]
    fn zstd_chunks_round_trip_and_other_sizes_are_refused() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i / 7).to_le_bytes())
            .collect();
        let codec = DirectCodec::Zstd { level: 3 };
        let encoded = codec.encode(&data).unwrap().into_owned();
        // One zstd frame of the bytes, as any zstd decoder reads it.
        assert_eq!(zstd::decode_all(&encoded[..]).unwrap(), data);
        let mut out = vec![9u8; 10];
        codec.decode_into(&encoded, &mut out, data.len()).unwrap();
        assert_eq!(out, data);
        // A stream longer or shorter than the chunk is refused, and the buffer never
        // grows past one byte more than the chunk.
        let mut out = Vec::new();
        assert!(codec
            .decode_into(&encoded, &mut out, data.len() - 8)
            .is_err());
        assert!(out.capacity() <= data.len());
        assert!(matches!(
            codec.decode_into(&encoded, &mut out, data.len() + 8),
            Err(DecodeError::Size { found }) if found == data.len()
        ));
        assert!(codec.decode_into(b"not zstd", &mut out, 8).is_err());
        // Raw chunks are their bytes.
        let raw = DirectCodec::Raw;
        raw.decode_into(&data, &mut out, data.len()).unwrap();
        assert_eq!(out, data);
        assert!(raw.decode_into(&data[1..], &mut out, data.len()).is_err());
    }
}
