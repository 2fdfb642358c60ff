//! Zarr arrays through `zarrs`: v3 read and write, v2 read.
//!
//! Reads decode whole chunks (zarrs does that for any subset); missing chunks read as
//! the fill value. Writes store whole chunks, each chunk written by exactly one task,
//! as zarrs requires; all-fill chunks are skipped, as zarr-python does. Codec
//! parallelism is turned off inside a chunk task because blockwise already runs one
//! task per core: two levels of parallelism on two cores only oversubscribe them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::array::codec::ZstdCodec;
use zarrs::array::{
    Array, ArrayBuilder, ArrayBytes, ArrayMetadata, ArraySubset, CodecOptions, DataType, FillValue,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::plugin::ExtensionName;

use crate::error::{Error, Result};
use crate::grid::size::{alloc_zeroed, nbytes_or_error, require_chunk_bytes, require_chunk_count};
use crate::grid::{copy_region, shape_text, ChunkGrid, Subset};
use crate::storage::array::{ArrayMeta, ArraySink, ArraySource, DType};

/// True when `dir` holds Zarr metadata: v3 `zarr.json` (an array or a group), v2
/// `.zarray` or `.zgroup`. A group is recognised so that opening it can say it is a
/// group and name its arrays.
pub fn is_zarr(dir: &Path) -> bool {
    ["zarr.json", ".zarray", ".zgroup"]
        .iter()
        .any(|name| dir.join(name).is_file())
}

/// The largest `zarr.json` read to tell a group from an array. Group metadata is a
/// few hundred bytes (consolidated metadata can be more); past this it is not read.
const MAX_NODE_METADATA_BYTES: u64 = 64 << 20;

/// What kind of Zarr node `dir` holds, from its metadata alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Array,
    Group,
    None,
}

fn node_kind(dir: &Path) -> Node {
    let v3 = dir.join("zarr.json");
    if v3.is_file() {
        let small = std::fs::metadata(&v3).is_ok_and(|m| m.len() <= MAX_NODE_METADATA_BYTES);
        let node_type = small
            .then(|| std::fs::read(&v3).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.get("node_type")
                    .and_then(|t| t.as_str().map(String::from))
            });
        // Anything but an explicit group goes to zarrs, which reports what is wrong.
        return match node_type.as_deref() {
            Some("group") => Node::Group,
            _ => Node::Array,
        };
    }
    if dir.join(".zarray").is_file() {
        Node::Array
    } else if dir.join(".zgroup").is_file() {
        Node::Group
    } else {
        Node::None
    }
}

/// The arrays inside the group `dir`, as paths relative to it: its children, and the
/// children of its subgroups, up to a few levels and a few hundred names.
fn group_arrays(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            if out.len() >= 200 {
                return;
            }
            let child = dir.join(&name);
            match node_kind(&child) {
                Node::Array => out.push(format!("{prefix}{name}")),
                Node::Group if depth < 4 => {
                    walk(&child, &format!("{prefix}{name}/"), depth + 1, out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", 0, &mut out);
    out
}

/// Compression of a new Zarr array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZarrCompression {
    /// No bytes-to-bytes codec.
    None,
    /// zstd at a level.
    Zstd(i32),
}

impl Default for ZarrCompression {
    fn default() -> Self {
        ZarrCompression::Zstd(3)
    }
}

fn single_task_codec_options() -> CodecOptions {
    CodecOptions::default().with_concurrent_target(1)
}

/// A Zarr array opened for reading.
pub struct ZarrSource {
    path: PathBuf,
    array: Array<FilesystemStore>,
    meta: ArrayMeta,
}

impl ZarrSource {
    /// Opens the array stored in the directory `path`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming a codec or data type zarrs cannot decode;
    /// [`Error::Corrupt`] for unreadable metadata.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        if node_kind(path) == Node::Group {
            let arrays = group_arrays(path);
            return Err(match arrays.first() {
                Some(first) => Error::ZarrGroup {
                    path: path.to_path_buf(),
                    example: path.join(first),
                    arrays: arrays.join(", "),
                },
                None => Error::Unsupported {
                    path: path.to_path_buf(),
                    what: "zarr node",
                    found: "group".into(),
                    supported: "; it is a Zarr group holding no arrays: pass the path of an array"
                        .into(),
                },
            });
        }
        let store = FilesystemStore::new(path).map_err(|e| Error::corrupt(path, "zarr", e))?;
        let array = Array::open(Arc::new(store), "/").map_err(|e| open_error(path, e))?;
        let dtype = dtype_of(array.data_type()).ok_or_else(|| Error::Unsupported {
            path: path.to_path_buf(),
            what: "zarr data type",
            found: array
                .data_type()
                .name_v3()
                .map(|c| c.into_owned())
                .unwrap_or_else(|| "unnamed".into()),
            supported: data_type_advice(
                &array
                    .data_type()
                    .name_v3()
                    .map(|c| c.into_owned())
                    .unwrap_or_default(),
            ),
        })?;
        let shape = array.shape().to_vec();
        let chunk_shape: Vec<u64> = array
            .chunk_shape(&vec![0; shape.len()])
            .map_err(|e| Error::Unsupported {
                path: path.to_path_buf(),
                what: "zarr chunk grid",
                found: e.to_string(),
                supported: "; blockwise reads regular chunk grids".into(),
            })?
            .iter()
            .map(|n| n.get())
            .collect();
        // The metadata is untrusted: the array's byte size must fit in 64 bits, one
        // chunk must fit in memory (chunks decode whole), and the number of chunks
        // must be one a plan can hold. Missing chunks read as the fill value, so the
        // array may legitimately be larger than its files.
        let item = dtype.size() as u64;
        nbytes_or_error(path, "shape", &shape, item)?;
        require_chunk_bytes(path, &chunk_shape, item)?;
        let grid = ChunkGrid::regular(&shape, &chunk_shape)?;
        require_chunk_count(path, &grid.grid_shape())?;
        let meta = ArrayMeta {
            dtype,
            grid,
            compression: compression_name(&array),
        };
        Ok(ZarrSource {
            path: path.to_path_buf(),
            array,
            meta,
        })
    }

    /// The Zarr format version, 2 or 3.
    pub fn zarr_format(&self) -> u8 {
        match self.array.metadata() {
            ArrayMetadata::V2(_) => 2,
            _ => 3,
        }
    }
}

fn open_error(path: &Path, e: zarrs::array::ArrayCreateError) -> Error {
    use zarrs::array::ArrayCreateError as E;
    let text = e.to_string();
    match e {
        E::CodecsCreateError(_) if text.starts_with("configuration is unsupported: ") => {
            Error::corrupt(
                path,
                "zarr",
                format!(
                    "a codec's configuration is invalid: {}",
                    text.trim_start_matches("configuration is unsupported: ")
                ),
            )
        }
        E::CodecsCreateError(_) | E::UnsupportedZarrV2Array(_) => Error::Unsupported {
            path: path.to_path_buf(),
            what: "zarr codec",
            found: text
                .trim_start_matches("unsupported Zarr V2 array: ")
                .trim_start_matches("codec ")
                .trim_end_matches(" is not supported")
                .to_string(),
            supported: "; blockwise reads zstd, blosc, gzip, zlib, crc32c, transpose and sharding"
                .into(),
        },
        E::DataTypeCreateError(_) => {
            let found = text
                .trim_start_matches("data type ")
                .trim_end_matches(" is not supported")
                .to_string();
            Error::Unsupported {
                path: path.to_path_buf(),
                what: "zarr data type",
                supported: data_type_advice(&found),
                found,
            }
        }
        E::MissingMetadata => Error::UnknownFormat {
            path: path.to_path_buf(),
            hint: "no zarr.json or .zarray found".into(),
        },
        _ => Error::corrupt(path, "zarr", text),
    }
}

/// Advice for an unsupported Zarr data type: strings get a plain sentence.
fn data_type_advice(name: &str) -> String {
    let is_string = ["string", "utf", "bytes", "|S", "<U", ">U", "|U"]
        .iter()
        .any(|k| name.contains(k));
    if is_string {
        "; it is a string data type, and string data types are not supported for arrays; \
         blockwise reads bool, integer, float and complex arrays"
            .into()
    } else {
        "; blockwise reads bool, integer, float and complex arrays".into()
    }
}

/// The first compressing codec's name, or "none".
fn compression_name(array: &Array<FilesystemStore>) -> String {
    array
        .codecs()
        .bytes_to_bytes_codecs()
        .iter()
        .filter_map(|c| c.name_v3().map(|n| n.into_owned()))
        .find(|n| n != "crc32c")
        .map(|n| n.trim_start_matches("numcodecs.").to_string())
        .unwrap_or_else(|| "none".into())
}

fn dtype_of(dt: &DataType) -> Option<DType> {
    let name = dt.name_v3()?;
    DType::from_name(&name)
}

fn zarr_dtype(dtype: DType) -> DataType {
    use zarrs::array::data_type as d;
    match dtype {
        DType::Bool => d::bool(),
        DType::Int8 => d::int8(),
        DType::Int16 => d::int16(),
        DType::Int32 => d::int32(),
        DType::Int64 => d::int64(),
        DType::UInt8 => d::uint8(),
        DType::UInt16 => d::uint16(),
        DType::UInt32 => d::uint32(),
        DType::UInt64 => d::uint64(),
        DType::Float16 => d::float16(),
        DType::Float32 => d::float32(),
        DType::Float64 => d::float64(),
        DType::Complex64 => d::complex64(),
        DType::Complex128 => d::complex128(),
    }
}

impl ArraySource for ZarrSource {
    fn format(&self) -> &'static str {
        "zarr"
    }

    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read(&self, subset: &Subset) -> Result<Vec<u8>> {
        if !subset.fits_in(&self.meta.shape()) {
            return Err(Error::Internal(format!(
                "read of {} outside the array's shape {}",
                shape_text(subset.shape()),
                shape_text(&self.meta.shape())
            )));
        }
        // Chunk by chunk, so that a chunk that fails to decode is named by its key.
        let item = self.meta.dtype.size();
        let ranges = self.meta.grid.overlapping(subset);
        let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
        let mut out: Option<Vec<u8>> = None;
        for offset in crate::grid::indices_c_order(&extents) {
            let index: Vec<u64> = offset
                .iter()
                .zip(&ranges)
                .map(|(o, r)| r.start + o)
                .collect();
            let chunk = self.meta.grid.chunk_subset(&index);
            let Some(overlap) = subset.intersect(&chunk).or_else(|| {
                // Zero-dimensional arrays: the one chunk is the whole (empty) region.
                (subset.shape().is_empty()).then(|| subset.clone())
            }) else {
                continue;
            };
            let local = overlap.relative_to(chunk.start());
            let region =
                ArraySubset::new_with_start_shape(local.start().to_vec(), local.shape().to_vec())
                    .map_err(|e| Error::Internal(e.to_string()))?;
            let bytes: ArrayBytes<'static> = self
                .array
                .retrieve_chunk_subset_opt(&index, &region, &single_task_codec_options())
                .map_err(|e| self.chunk_error(&index, e))?;
            let raw = bytes
                .into_fixed()
                .map_err(|e| self.chunk_error(&index, e.into()))?;
            if &overlap == subset {
                return Ok(raw.into_owned());
            }
            if raw.len() as u64 != overlap.num_elements() * item as u64 {
                return Err(self.chunk_error(
                    &index,
                    zarrs::array::ArrayError::Other("decoded chunk has the wrong size".into()),
                ));
            }
            let buf = match &mut out {
                Some(b) => b,
                None => out.insert(alloc_zeroed(&self.path, subset.shape(), item as u64)?),
            };
            let at = overlap.relative_to(subset.start());
            copy_region(
                &raw,
                overlap.shape(),
                &Subset::full(overlap.shape()),
                buf,
                subset.shape(),
                at.start(),
                item,
            );
        }
        match out {
            Some(b) => Ok(b),
            // An empty region (a zero-length axis) has no chunks to read.
            None => alloc_zeroed(&self.path, subset.shape(), item as u64),
        }
    }
}

impl ZarrSource {
    /// The error for chunk `index`: named by its key (`c/0/1`) inside the array.
    fn chunk_error(&self, index: &[u64], e: zarrs::array::ArrayError) -> Error {
        use zarrs::array::ArrayError as A;
        use zarrs::array::CodecError;
        // An error of the operating system (permissions, a vanished file) is about
        // the path; decoders also report through io::Error, and those are corruption.
        if let Some(code) = io_cause(&e).and_then(std::io::Error::raw_os_error) {
            return Error::io(&self.path, std::io::Error::from_raw_os_error(code));
        }
        let key = self.array.chunk_key(index).to_string();
        let chunk_shape = self.meta.grid.max_chunk_shape();
        match &e {
            A::CodecError(CodecError::UnexpectedChunkDecodedSize(_)) => Error::SizeMismatch {
                path: self.path.clone(),
                what: "chunk",
                shape: format!("{key} of shape {}", shape_text(&chunk_shape)),
                needed: crate::grid::num_elements(&chunk_shape)
                    .saturating_mul(self.meta.dtype.size() as u64)
                    .to_string(),
                present: format!("it does not decode to that: {e}"),
            },
            _ => Error::corrupt(&self.path, "zarr", format!("chunk {key}: {e}")),
        }
    }
}

/// A Zarr v3 array being written.
pub struct ZarrSink {
    path: PathBuf,
    array: Array<FilesystemStore>,
    dtype: DType,
    grid: ChunkGrid,
    chunk_shape: Vec<u64>,
}

impl ZarrSink {
    /// Creates a v3 array in the new directory `path`.
    ///
    /// # Errors
    /// When the directory or the metadata cannot be created.
    pub fn create(
        path: &Path,
        dtype: DType,
        shape: &[u64],
        chunk_shape: &[u64],
        compression: ZarrCompression,
    ) -> Result<Self> {
        let grid = ChunkGrid::regular(shape, chunk_shape)?;
        std::fs::create_dir(path).map_err(|e| Error::io(path, e))?;
        let store = FilesystemStore::new(path).map_err(|e| Error::Internal(e.to_string()))?;
        let dt = zarr_dtype(dtype);
        let fill = FillValue::new(vec![0u8; dtype.size()]);
        let mut builder = ArrayBuilder::new(shape.to_vec(), chunk_shape.to_vec(), dt, fill);
        if let ZarrCompression::Zstd(level) = compression {
            builder.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(level, false))]);
        }
        let mut array = builder
            .build(Arc::new(store), "/")
            .map_err(|e| Error::Internal(e.to_string()))?;
        array.set_metadata_options(
            zarrs::array::ArrayMetadataOptions::default().with_include_zarrs_metadata(false),
        );
        Ok(ZarrSink {
            path: path.to_path_buf(),
            array,
            dtype,
            grid,
            chunk_shape: chunk_shape.to_vec(),
        })
    }
}

impl ZarrSink {
    /// Stores the array metadata now, so readers can open the array while chunks are
    /// still being written (an intermediate array of a staged rechunk).
    ///
    /// # Errors
    /// When the metadata cannot be written.
    pub fn store_metadata(&self) -> Result<()> {
        self.array
            .store_metadata()
            .map_err(|e| storage_error(&self.path, e))
    }
}

impl ArraySink for ZarrSink {
    fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    fn write_chunk(&self, index: &[u64], data: &[u8]) -> Result<()> {
        let region = self.grid.chunk_subset(index);
        let item = self.dtype.size();
        let full: usize = self.chunk_shape.iter().product::<u64>() as usize * item;
        let bytes = if data.len() == full {
            ArrayBytes::new_flen(data)
        } else {
            // Zarr stores every chunk at its nominal shape: pad edge chunks with the
            // fill value (zero).
            let mut padded = vec![0u8; full];
            let zero = vec![0; region.shape().len()];
            copy_region(
                data,
                region.shape(),
                &Subset::full(region.shape()),
                &mut padded,
                &self.chunk_shape,
                &zero,
                item,
            );
            ArrayBytes::new_flen(padded)
        };
        self.array
            .store_chunk_opt(index, bytes, &single_task_codec_options())
            .map_err(|e| storage_error(&self.path, e))
    }

    fn finish(mut self: Box<Self>, rows: Option<u64>) -> Result<()> {
        if let Some(rows) = rows {
            let mut shape = self.array.shape().to_vec();
            let first = shape
                .first_mut()
                .ok_or_else(|| Error::Internal("a row count for a scalar array".into()))?;
            *first = rows;
            self.array
                .set_shape(shape)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        self.array
            .store_metadata()
            .map_err(|e| storage_error(&self.path, e))
    }
}

/// The I/O error inside a zarrs error, if there is one.
///
/// zarrs wraps I/O errors as `Arc<std::io::Error>` behind `#[error(transparent)]`
/// variants, which forward `source()` past them: walking the source chain never
/// reaches the `io::Error`, so the variants are matched one by one.
fn io_cause(e: &zarrs::array::ArrayError) -> Option<&std::io::Error> {
    use zarrs::array::ArrayError as A;
    use zarrs::array::CodecError;
    let from_storage = storage_io_cause;
    match e {
        A::StorageError(s) => from_storage(s),
        A::CodecError(CodecError::IOError(io)) => Some(&**io),
        A::CodecError(CodecError::StorageError(s)) => from_storage(s),
        _ => None,
    }
}

/// The I/O error inside a zarrs storage error, if there is one.
fn storage_io_cause(e: &zarrs::storage::StorageError) -> Option<&std::io::Error> {
    match e {
        zarrs::storage::StorageError::IOError(io) => Some(&**io),
        _ => None,
    }
}

/// A zarrs error that may hold an I/O error.
trait IoCause: std::fmt::Display {
    fn io(&self) -> Option<&std::io::Error>;
}

impl IoCause for zarrs::array::ArrayError {
    fn io(&self) -> Option<&std::io::Error> {
        io_cause(self)
    }
}

impl IoCause for zarrs::storage::StorageError {
    fn io(&self) -> Option<&std::io::Error> {
        storage_io_cause(self)
    }
}

/// Maps a zarrs write error, recognising a full disk (and the other I/O errors a
/// user can fix) in its I/O cause.
fn storage_error(path: &Path, e: impl IoCause) -> Error {
    match e.io() {
        Some(io) => match io.raw_os_error() {
            Some(code) => Error::io(path, std::io::Error::from_raw_os_error(code)),
            None => Error::io(path, std::io::Error::new(io.kind(), io.to_string())),
        },
        None => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_full_disk_inside_zarrs_errors_is_disk_full() {
        // zarrs wraps I/O errors in Arc'd, transparent variants; the mapping must
        // still find ENOSPC.
        let io = Arc::new(std::io::Error::from_raw_os_error(28));
        let storage = zarrs::storage::StorageError::IOError(io.clone());
        let e = storage_error(Path::new("out.zarr"), storage.clone());
        assert!(matches!(e, Error::DiskFull { .. }), "{e}");
        assert_eq!(e.exit_code(), 2);
        let array = zarrs::array::ArrayError::StorageError(storage);
        assert!(matches!(
            storage_error(Path::new("out.zarr"), array),
            Error::DiskFull { .. }
        ));
        let codec = zarrs::array::ArrayError::CodecError(zarrs::array::CodecError::IOError(io));
        assert!(matches!(
            storage_error(Path::new("out.zarr"), codec),
            Error::DiskFull { .. }
        ));
    }
}
