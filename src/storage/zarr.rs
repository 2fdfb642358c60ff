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
use crate::grid::{copy_region, ChunkGrid, Subset};
use crate::storage::array::{ArrayMeta, ArraySink, ArraySource, DType};

/// True when `dir` holds Zarr array metadata (v3 `zarr.json` or v2 `.zarray`).
pub fn is_zarr(dir: &Path) -> bool {
    dir.join("zarr.json").is_file() || dir.join(".zarray").is_file()
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
            supported: "; blockwise reads bool, integer, float and complex arrays".into(),
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
        let grid = ChunkGrid::regular(&shape, &chunk_shape)?;
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
        E::DataTypeCreateError(_) => Error::Unsupported {
            path: path.to_path_buf(),
            what: "zarr data type",
            found: text
                .trim_start_matches("data type ")
                .trim_end_matches(" is not supported")
                .to_string(),
            supported: "; blockwise reads bool, integer, float and complex arrays".into(),
        },
        E::MissingMetadata => Error::UnknownFormat {
            path: path.to_path_buf(),
            hint: "no zarr.json or .zarray found".into(),
        },
        _ => Error::corrupt(path, "zarr", text),
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
        let region =
            ArraySubset::new_with_start_shape(subset.start().to_vec(), subset.shape().to_vec())
                .map_err(|e| Error::Internal(e.to_string()))?;
        let bytes: ArrayBytes<'static> = self
            .array
            .retrieve_array_subset_opt(&region, &single_task_codec_options())
            .map_err(|e| Error::corrupt(&self.path, "zarr", e))?;
        let raw = bytes
            .into_fixed()
            .map_err(|e| Error::corrupt(&self.path, "zarr", e))?;
        Ok(raw.into_owned())
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
            shape[0] = rows;
            self.array
                .set_shape(shape)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        self.array
            .store_metadata()
            .map_err(|e| storage_error(&self.path, e))
    }
}

/// Maps a zarrs write error, recognising a full disk in its I/O cause.
fn storage_error(path: &Path, e: impl std::error::Error + 'static) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Error::io(path, std::io::Error::from_raw_os_error(code));
            }
        }
        cause = c.source();
    }
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}
