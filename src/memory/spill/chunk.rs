//! Raw chunk files: a 32-byte header, then the bytes, zstd-compressed or not, as
//! `formats/spill-v1.md` specifies; written by [`SpillStore::write_chunk`] and
//! decompressed straight from a memory map by [`SpillStore::read_chunk`].

use std::io::{Seek, SeekFrom, Write};

use super::file::{io_error, kind_error, map_file, QuotaWriter, SpillKind, FORMAT_NAME};
use super::{SpillCompression, SpillFile, SpillStore};
use crate::error::{Error, IoResultExt, Result};

/// The magic that starts every raw chunk file; the trailing digit is the layout version.
pub const CHUNK_MAGIC: &[u8; 8] = b"BWSPILL1";
/// Bytes of a raw chunk file's header, before the payload.
pub const CHUNK_HEADER_LEN: usize = 32;
const CODEC_NONE: u8 = 0;
const CODEC_ZSTD: u8 = 1;

impl SpillStore {
    /// Writes one array chunk to a new raw chunk file.
    ///
    /// # Errors
    /// [`Error::SpillQuota`] when the file would pass the quota (the partial file is
    /// removed); [`Error::Io`] or [`Error::DiskFull`] on a failed write.
    pub fn write_chunk(&self, data: &[u8]) -> Result<SpillFile> {
        let (out, mut spill) = self.create(SpillKind::Chunk, "bwchunk", data.len() as u64)?;
        let SpillFile {
            path,
            disk,
            disk_bytes,
            ..
        } = &mut spill;
        let mut writer = QuotaWriter {
            file: out,
            disk,
            written: disk_bytes,
        };
        let compression = self.compression_now();
        let (codec, level) = match compression {
            SpillCompression::Zstd(level) => (CODEC_ZSTD, level),
            _ => (CODEC_NONE, 0),
        };
        let mut header = [0u8; CHUNK_HEADER_LEN];
        header[..8].copy_from_slice(CHUNK_MAGIC);
        header[8] = codec;
        header[12..16].copy_from_slice(&level.to_le_bytes());
        header[16..24].copy_from_slice(&(data.len() as u64).to_le_bytes());
        // The stored length (24..32) is patched in below once the payload is written:
        // zstd's output size is known only at the end.
        writer.write_all(&header).map_err(|e| io_error(path, e))?;
        let writer = match compression {
            SpillCompression::Zstd(level) => {
                zstd_encode(writer, data, level).map_err(|e| io_error(path, e))?
            }
            _ => {
                writer.write_all(data).map_err(|e| io_error(path, e))?;
                writer
            }
        };
        let stored = *writer.written - CHUNK_HEADER_LEN as u64;
        let mut out = writer.file;
        out.seek(SeekFrom::Start(24)).at(&*path)?;
        out.write_all(&stored.to_le_bytes()).at(&*path)?;
        self.count(&spill);
        Ok(spill)
    }

    /// Reads back a chunk written by [`SpillStore::write_chunk`], decompressing straight
    /// from the file's memory map.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the header, the lengths or the zstd frame (and its
    /// checksum) do not hold up; [`Error::Bug`] when it is a batch file;
    /// [`Error::Io`] when the file cannot be opened or mapped.
    pub fn read_chunk(&self, file: &SpillFile) -> Result<Vec<u8>> {
        let path = &file.path;
        let corrupt = |detail: String| Error::corrupt(path, FORMAT_NAME, detail);
        if file.kind != SpillKind::Chunk {
            return Err(kind_error(path, "a batch", "a chunk"));
        }
        let map = map_file(path)?;
        let header = ChunkHeader::parse(&map).map_err(corrupt)?;
        let payload = &map[CHUNK_HEADER_LEN..];
        if payload.len() as u64 != header.stored {
            return Err(corrupt(format!(
                "the header says {} payload bytes, the file has {}",
                header.stored,
                payload.len()
            )));
        }
        let len = usize::try_from(header.uncompressed)
            .map_err(|_| corrupt(format!("length {} is too large", header.uncompressed)))?;
        let data = match header.codec {
            CODEC_NONE if header.stored == header.uncompressed => payload.to_vec(),
            CODEC_NONE => {
                return Err(corrupt(format!(
                    "uncompressed chunk of {} bytes stored in {}",
                    header.uncompressed, header.stored
                )))
            }
            _ => zstd::bulk::decompress(payload, len).map_err(|e| corrupt(e.to_string()))?,
        };
        if data.len() != len {
            return Err(corrupt(format!(
                "the header says {len} bytes, zstd gave {}",
                data.len()
            )));
        }
        self.notify(super::MemoryEvent::ReadBack(data.len() as u64));
        Ok(data)
    }
}

/// The fields of a raw chunk file's header.
struct ChunkHeader {
    codec: u8,
    uncompressed: u64,
    stored: u64,
}

impl ChunkHeader {
    fn parse(bytes: &[u8]) -> std::result::Result<ChunkHeader, String> {
        let header = bytes
            .get(..CHUNK_HEADER_LEN)
            .ok_or_else(|| format!("{} bytes, shorter than the header", bytes.len()))?;
        if &header[..8] != CHUNK_MAGIC {
            return Err(format!("magic {:?} is not BWSPILL1", &header[..8]));
        }
        let codec = header[8];
        if codec != CODEC_NONE && codec != CODEC_ZSTD {
            return Err(format!("unknown codec id {codec}"));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Ok(ChunkHeader {
            codec,
            uncompressed: u64_at(16),
            stored: u64_at(24),
        })
    }
}

fn zstd_encode<'a>(
    writer: QuotaWriter<'a>,
    data: &[u8],
    level: i32,
) -> std::io::Result<QuotaWriter<'a>> {
    // Streaming, not bulk: the compressed copy never has to fit in memory, which is
    // short when spilling.
    let mut encoder = zstd::stream::Encoder::new(writer, level)?;
    encoder.include_checksum(true)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(data.len() as u64))?;
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::spill::test_support::{pseudo_random, sample_batches, store, ALL};

    #[test]
    fn chunks_round_trip_with_every_compression() {
        let chunks = [
            Vec::new(),
            vec![7u8],
            pseudo_random(1 << 20, 1),
            vec![0u8; 300_000],
        ];
        for compression in ALL {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            for data in &chunks {
                let file = store.write_chunk(data).unwrap();
                assert_eq!(file.uncompressed_bytes(), data.len() as u64);
                assert_eq!(
                    std::fs::metadata(file.path()).unwrap().len(),
                    file.disk_bytes()
                );
                assert_eq!(&store.read_chunk(&file).unwrap(), data, "{compression}");
            }
        }
    }

    #[test]
    fn chunk_file_layout_is_as_specified() {
        let data = pseudo_random(100_000, 2);
        for (compression, codec, level) in [
            (SpillCompression::None, 0u8, 0i32),
            (SpillCompression::Zstd(3), 1, 3),
        ] {
            let root = tempfile::tempdir().unwrap();
            let store = store(root.path(), None, compression);
            let file = store.write_chunk(&data).unwrap();
            let bytes = std::fs::read(file.path()).unwrap();
            assert_eq!(&bytes[..8], b"BWSPILL1");
            assert_eq!(bytes[8], codec);
            assert_eq!(&bytes[9..12], &[0, 0, 0]);
            assert_eq!(i32::from_le_bytes(bytes[12..16].try_into().unwrap()), level);
            assert_eq!(
                u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
                100_000
            );
            let stored = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
            assert_eq!(stored as usize, bytes.len() - 32);
            let payload = &bytes[32..];
            if codec == 0 {
                assert_eq!(payload, &data[..]);
            } else {
                // A plain zstd frame: any zstd tool reads it.
                assert_eq!(zstd::decode_all(payload).unwrap(), data);
                assert!(payload.len() < data.len());
            }
        }
    }

    #[test]
    fn damaged_chunk_files_are_corrupt_errors() {
        let root = tempfile::tempdir().unwrap();
        let store = store(root.path(), None, SpillCompression::Zstd(1));
        let file = store.write_chunk(&pseudo_random(50_000, 3)).unwrap();
        let mut bytes = std::fs::read(file.path()).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(file.path(), &bytes).unwrap();
        assert!(matches!(
            store.read_chunk(&file),
            Err(Error::Corrupt { .. })
        ));
        std::fs::write(file.path(), &bytes[..mid]).unwrap();
        assert!(matches!(
            store.read_chunk(&file),
            Err(Error::Corrupt { .. })
        ));
        std::fs::write(file.path(), b"NOTSPILL").unwrap();
        assert!(matches!(
            store.read_chunk(&file),
            Err(Error::Corrupt { .. })
        ));

        let (schema, batches) = sample_batches();
        let batch_file = store.write_batches(&schema, &batches).unwrap();
        assert!(matches!(
            store.read_chunk(&batch_file),
            Err(Error::Bug { .. })
        ));
        assert!(matches!(store.read_batches(&file), Err(Error::Bug { .. })));
        let len = std::fs::metadata(batch_file.path()).unwrap().len();
        let truncated = std::fs::read(batch_file.path()).unwrap()[..len as usize - 20].to_vec();
        std::fs::write(batch_file.path(), truncated).unwrap();
        assert!(matches!(
            store.read_batches(&batch_file),
            Err(Error::Corrupt { .. })
        ));
    }
}
