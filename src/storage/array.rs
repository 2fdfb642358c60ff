//! What every array format shares: element types, metadata, and the source and sink
//! traits each format implements.
//!
//! Array data moves between layers as C-order byte buffers in the machine's native
//! byte order; each format converts at its boundary (a big-endian `.npy`, say).

use crate::error::Result;
use crate::grid::{ChunkGrid, Subset};

/// An array element type. In a plan it is written by its numpy name
/// (`"float64"`), as [`DType::name`] spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)] // the names say it
pub enum DType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float16,
    Float32,
    Float64,
    Complex64,
    Complex128,
}

impl DType {
    /// Every dtype, for tests and for listing what is supported.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Int16 | DType::UInt16 | DType::Float16 => 2,
            DType::Int32 | DType::UInt32 | DType::Float32 => 4,
            DType::Int64 | DType::UInt64 | DType::Float64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
        }
    }

    /// The numpy / Zarr v3 name: `"float64"`, `"int32"`, `"bool"`, ...
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
        }
    }

    /// Parses a name as [`DType::name`] writes it.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The numpy type character and size, as in a `descr` like `<f8`: `"f8"`.
    pub fn numpy_code(self) -> &'static str {
        match self {
            DType::Bool => "b1",
            DType::Int8 => "i1",
            DType::Int16 => "i2",
            DType::Int32 => "i4",
            DType::Int64 => "i8",
            DType::UInt8 => "u1",
            DType::UInt16 => "u2",
            DType::UInt32 => "u4",
            DType::UInt64 => "u8",
            DType::Float16 => "f2",
            DType::Float32 => "f4",
            DType::Float64 => "f8",
            DType::Complex64 => "c8",
            DType::Complex128 => "c16",
        }
    }

    /// Parses a numpy code as [`DType::numpy_code`] writes it (also `?` for bool).
    pub fn from_numpy_code(code: &str) -> Option<DType> {
        if code == "?" {
            return Some(DType::Bool);
        }
        DType::ALL.into_iter().find(|d| d.numpy_code() == code)
    }

    /// The size of one scalar component: the element size, or half of it for complex
    /// types. Byte swapping works on components.
    pub fn component_size(self) -> usize {
        match self {
            DType::Complex64 | DType::Complex128 => self.size() / 2,
            _ => self.size(),
        }
    }

    /// True for the integer and floating types whose values can become a table column
    /// or be cast to another numeric type.
    pub fn is_real_numeric(self) -> bool {
        !matches!(self, DType::Complex64 | DType::Complex128)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reverses the byte order of every `component`-byte value in `data`, in place.
pub fn swap_bytes(data: &mut [u8], component: usize) {
    if component > 1 {
        for value in data.chunks_exact_mut(component) {
            value.reverse();
        }
    }
}

/// What a reader knows about an array before reading any data.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayMeta {
    /// Element type.
    pub dtype: DType,
    /// How the array is stored in chunks (one chunk for a plain `.npy`).
    pub grid: ChunkGrid,
    /// Name of the compression ("zstd", "blosc", "none", ...).
    pub compression: String,
}

impl ArrayMeta {
    /// The array's shape.
    pub fn shape(&self) -> Vec<u64> {
        self.grid.shape()
    }

    /// Uncompressed size in bytes. Readers check at open that it fits in 64 bits
    /// (see [`crate::grid::size`]); it saturates rather than wrap if one did not.
    pub fn nbytes(&self) -> u64 {
        crate::grid::checked_nbytes(&self.shape(), self.dtype.size() as u64).unwrap_or(u64::MAX)
    }
}

/// Writes `bytes` to `path` under a temporary name beside it, then renames it into
/// place: a reader (or a second writer of the same bytes) sees the whole file or
/// none. The temporary name carries `.tmp-PID-` as the plan store's temporaries do,
/// so a failed run's cleanup finds it.
///
/// # Errors
/// I/O errors ([`crate::Error::DiskFull`] among them); the temporary is removed.
pub fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use crate::error::IoResultExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let temp = std::path::PathBuf::from(format!(
        "{}.tmp-{}-{}",
        path.display(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::write(&temp, bytes)
        .at(&temp)
        .and_then(|()| std::fs::rename(&temp, path).at(path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// A readable array in some format.
pub trait ArraySource: Send + Sync {
    /// The format's name, as `info` reports it ("npy", "zarr", ...).
    fn format(&self) -> &'static str;

    /// Shape, dtype, chunking and compression.
    fn meta(&self) -> &ArrayMeta;

    /// Reads `subset` into a C-order buffer in native byte order.
    ///
    /// # Errors
    /// When the underlying storage cannot be read or decoded.
    fn read(&self, subset: &Subset) -> Result<Vec<u8>>;

    /// A hint that the data of `subset` will not be read again, so a memory-mapped
    /// source can let go of its pages. The default does nothing.
    fn release(&self, _subset: &Subset) {}
}

/// A writable array in some format, described by its shape, dtype and chunk grid.
///
/// Chunks may be written from several threads or processes at once, each chunk by
/// one task; writing a chunk again with the same bytes is harmless, so a retried
/// task is too.
pub trait ArraySink: Send + Sync {
    /// The chunk grid the sink expects writes in.
    fn grid(&self) -> &ChunkGrid;

    /// Writes the chunk at `index` from a C-order native-endian buffer holding exactly
    /// that chunk's elements.
    ///
    /// # Errors
    /// When the data cannot be written.
    fn write_chunk(&self, index: &[u64], data: &[u8]) -> Result<()>;

    /// True when the sink can write any region of the array in place, not only
    /// whole chunks (an `.npy` file, with positioned writes): a copy then need not
    /// gather a whole chunk of the sink's grid before writing.
    fn writes_any_region(&self) -> bool {
        false
    }

    /// Writes `region` (any box inside the array) from a C-order native-endian
    /// buffer holding exactly its elements. Only for a sink that
    /// [`ArraySink::writes_any_region`]; regions written by different tasks must not
    /// overlap.
    ///
    /// # Errors
    /// When the data cannot be written; [`crate::Error::Bug`] from a sink that
    /// writes whole chunks only.
    fn write_region(&self, region: &crate::grid::Subset, _data: &[u8]) -> Result<()> {
        Err(crate::Error::bug(
            "a region written to a sink that writes whole chunks only",
            format!("{region:?}"),
        ))
    }

    /// Completes the array. `rows` replaces the length of the first axis when it was
    /// only known at the end (a table streamed into an array).
    ///
    /// # Errors
    /// When the metadata cannot be written.
    fn finish(self: Box<Self>, rows: Option<u64>) -> Result<()>;
}
