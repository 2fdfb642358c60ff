//! Zarr arrays through `zarrs`: v3 read and write, v2 read.
//!
//! Reads decode whole chunks (zarrs does that for any subset); missing chunks read as
//! the fill value. Writes store whole chunks, each chunk written by exactly one task,
//! as zarrs requires; all-fill chunks are skipped, as zarr-python does. Codec
//! parallelism is turned off inside a chunk task because blockwise already runs one
//! task per core: two levels of parallelism on two cores only oversubscribe them.
//! The chain `bytes` + `zstd` is encoded and decoded in [`direct`], without zarrs.

mod direct;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::array::codec::ZstdCodec;
use zarrs::array::{
    Array, ArrayBuilder, ArrayBytes, ArrayMetadata, ArraySubset, CodecOptions, DataType, FillValue,
};
use zarrs::filesystem::{FilesystemStore, FilesystemStoreCreateError};
use zarrs::plugin::ExtensionName;

use crate::error::{Error, Result};
use crate::grid::size::{alloc_zeroed, nbytes_or_error, require_chunk_bytes, require_chunk_count};
use crate::grid::{copy_region, shape_text, ChunkGrid, Subset};
use crate::storage::array::{write_file_atomically, ArrayMeta, ArraySink, ArraySource, DType};
use direct::{DecodeError, DirectCodec};

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

/// Compression of a new Zarr array; in a plan, `"none"` or `{"zstd": LEVEL}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    guard: DecodeGuard,
    /// Chunks decoded without zarrs, when the codec chain allows.
    direct: Option<DirectCodec>,
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
        for name in ["zarr.json", ".zarray"] {
            // Reading a FIFO would wait for a writer forever.
            if let Ok(meta) = std::fs::metadata(path.join(name)) {
                if !meta.is_file() {
                    return Err(Error::corrupt(
                        path,
                        "zarr",
                        format!("{name} is not a regular file"),
                    ));
                }
            }
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
        let guard = DecodeGuard::of(&array);
        let direct = DirectCodec::of(array.metadata());
        Ok(ZarrSource {
            path: path.to_path_buf(),
            array,
            meta,
            guard,
            direct,
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
    // zarrs reports a metadata type error as serde does ("invalid type: null,
    // expected a sequence at line 1 column 14"), which does not name the field:
    // look at the fields ourselves first and name the one that is wrong.
    if let Some(problem) = metadata_problem(path) {
        return Error::corrupt(path, "zarr", problem);
    }
    let text = plain_codec_text(&e.to_string());
    match e {
        E::CodecsCreateError(_) | E::UnsupportedZarrV2Array(_)
            if text.contains("configuration is unsupported: ") =>
        {
            Error::corrupt(
                path,
                "zarr",
                format!(
                    "a codec's configuration is invalid: {}",
                    text.split("configuration is unsupported: ")
                        .last()
                        .unwrap_or_default()
                ),
            )
        }
        E::CodecsCreateError(_) | E::UnsupportedZarrV2Array(_) => {
            // Zarr v2 names numcodecs codecs, of which fewer map onto v3: a v2
            // crc32c compressor is not the v3 crc32c codec, so say which list holds.
            let v2 = path.join(".zarray").is_file() && !path.join("zarr.json").is_file();
            Error::Unsupported {
                path: path.to_path_buf(),
                what: if v2 { "zarr v2 codec" } else { "zarr codec" },
                found: text
                    .trim_start_matches("unsupported Zarr V2 array: ")
                    .trim_start_matches("codec ")
                    .trim_end_matches(" is not supported")
                    .to_string(),
                supported: if v2 {
                    "; blockwise reads Zarr v2 arrays compressed with zstd, blosc, gzip or zlib"
                } else {
                    "; blockwise reads zstd, blosc, gzip, zlib, crc32c, transpose and sharding"
                }
                .into(),
            }
        }
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

/// What is wrong with the Zarr metadata in `dir`, field by field, when something is:
/// `zarr.json: 'shape' is null; expected a list of non-negative integers`. `None`
/// when the metadata cannot be read or every field checked has the right type.
fn metadata_problem(dir: &Path) -> Option<String> {
    use serde_json::Value;
    let (file, v3) = if dir.join("zarr.json").is_file() {
        ("zarr.json", true)
    } else {
        (".zarray", false)
    };
    let path = dir.join(file);
    if std::fs::metadata(&path).ok()?.len() > MAX_NODE_METADATA_BYTES {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    let meta: Value = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => return Some(format!("{file} is not valid JSON: {e}")),
    };
    let Some(fields) = meta.as_object() else {
        return Some(format!(
            "{file} holds {}, not a JSON object",
            kind_of(&meta)
        ));
    };
    let count_list = |v: &Value, positive: bool| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .all(|n| n.as_u64().is_some_and(|n| !positive || n > 0))
        })
    };
    let named = |v: &Value| v.is_string() || v.get("name").is_some_and(Value::is_string);
    let named_list = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(named));
    // (field, required, check, what it must be)
    type Check<'a> = (&'a str, bool, Box<dyn Fn(&Value) -> bool + 'a>, &'a str);
    let checks: Vec<Check> = if v3 {
        vec![
            ("zarr_format", true, Box::new(|v| v.as_u64() == Some(3)), "3"),
            ("node_type", true, Box::new(|v| v.as_str() == Some("array")), "\"array\""),
            ("shape", true, Box::new(|v| count_list(v, false)), "a list of non-negative integers"),
            ("data_type", true, Box::new(named), "a data type name such as \"float64\""),
            (
                "chunk_grid",
                true,
                Box::new(|v| {
                    named(v)
                        && v.pointer("/configuration/chunk_shape")
                            .is_none_or(|c| count_list(c, true))
                }),
                "{\"name\": \"regular\", \"configuration\": {\"chunk_shape\": [positive integers]}}",
            ),
            ("chunk_key_encoding", true, Box::new(named), "{\"name\": \"default\"} or {\"name\": \"v2\"}"),
            ("fill_value", true, Box::new(|_| true), "a fill value"),
            ("codecs", true, Box::new(|v| named_list(v) && v.as_array().is_some_and(|a| !a.is_empty())), "a non-empty list of codecs, each {\"name\": ...}"),
            ("attributes", false, Box::new(Value::is_object), "a JSON object"),
            ("storage_transformers", false, Box::new(named_list), "a list of {\"name\": ...} objects"),
            (
                "dimension_names",
                false,
                Box::new(|v| {
                    v.as_array()
                        .is_some_and(|a| a.iter().all(|n| n.is_string() || n.is_null()))
                }),
                "a list of names (strings or null)",
            ),
        ]
    } else {
        vec![
            (
                "zarr_format",
                true,
                Box::new(|v| v.as_u64() == Some(2)),
                "2",
            ),
            (
                "shape",
                true,
                Box::new(|v| count_list(v, false)),
                "a list of non-negative integers",
            ),
            (
                "chunks",
                true,
                Box::new(|v| count_list(v, true)),
                "a list of positive integers",
            ),
            (
                "dtype",
                true,
                Box::new(|v| v.is_string() || v.is_array()),
                "a numpy dtype string such as \"<f8\"",
            ),
            (
                "compressor",
                true,
                Box::new(|v| v.is_null() || v.get("id").is_some_and(Value::is_string)),
                "null or {\"id\": ...}",
            ),
            ("fill_value", true, Box::new(|_| true), "a fill value"),
            (
                "order",
                true,
                Box::new(|v| matches!(v.as_str(), Some("C" | "F"))),
                "\"C\" or \"F\"",
            ),
            (
                "filters",
                true,
                Box::new(|v| {
                    v.is_null()
                        || v.as_array().is_some_and(|a| {
                            a.iter().all(|f| f.get("id").is_some_and(Value::is_string))
                        })
                }),
                "null or a list of {\"id\": ...}",
            ),
            (
                "dimension_separator",
                false,
                Box::new(|v| matches!(v.as_str(), Some("." | "/"))),
                "\".\" or \"/\"",
            ),
        ]
    };
    for (field, required, ok, expected) in &checks {
        match fields.get(*field) {
            None if *required => {
                return Some(format!("{file} has no '{field}'; expected {expected}"))
            }
            Some(v) if !ok(v) => {
                return Some(format!(
                    "{file}: '{field}' is {}; expected {expected}",
                    short_json(v)
                ))
            }
            _ => {}
        }
    }
    // Ranks must agree, or every chunk computation is meaningless.
    let rank = |v: Option<&Value>| v.and_then(Value::as_array).map(Vec::len);
    let shape = rank(fields.get("shape"));
    let chunks = if v3 {
        rank(meta.pointer("/chunk_grid/configuration/chunk_shape"))
    } else {
        rank(fields.get("chunks"))
    };
    let names = rank(fields.get("dimension_names"));
    if let (Some(s), Some(c)) = (shape, chunks) {
        if s != c {
            return Some(format!(
                "{file}: the chunk shape has {c} dimensions but 'shape' has {s}"
            ));
        }
    }
    if let (Some(s), Some(n)) = (shape, names) {
        if s != n {
            return Some(format!(
                "{file}: 'dimension_names' has {n} names but 'shape' has {s} dimensions"
            ));
        }
    }
    None
}

/// "null", "a string", ... for a JSON value, in a message.
fn kind_of(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON value as written, shortened for a message.
fn short_json(v: &serde_json::Value) -> String {
    // A string is shown as written between quotes, not JSON-escaped: `"\"`
    // for a backslash reads as an escape, not as the value.
    let text = match v.as_str() {
        Some(s) => format!("\"{s}\""),
        None => v.to_string(),
    };
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// zarrs's message with serde's words for a configuration that matches none of a
/// codec's forms ("data did not match any variant of untagged enum
/// ZstdCodecConfiguration") put in the user's words, naming the codec.
fn plain_codec_text(text: &str) -> String {
    const SERDE: &str = "data did not match any variant of untagged enum ";
    match text.split_once(SERDE) {
        Some((before, after)) => {
            let type_name = after.split_whitespace().next().unwrap_or_default();
            let codec = type_name
                .trim_end_matches("Configuration")
                .trim_end_matches("Codec")
                .to_ascii_lowercase();
            format!("{before}the {codec} codec's configuration has a missing or wrong-typed field")
        }
        None => text.to_string(),
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
            let detail = format!("{subset:?} in {}", shape_text(&self.meta.shape()));
            return Err(Error::bug("a read outside the Zarr array's shape", detail));
        }
        // Chunk by chunk, so that a chunk that fails to decode is named by its key.
        let item = self.meta.dtype.size();
        let ranges = self.meta.grid.overlapping(subset);
        let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
        let mut out: Option<Vec<u8>> = None;
        let nominal = self.meta.grid.max_chunk_shape();
        let mut scratch = Vec::new();
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
            if let Some(codec) = self.direct {
                // A whole chunk asked for alone is decoded straight into the result.
                let whole = &overlap == subset && overlap.shape() == nominal.as_slice();
                let mut decoded = if whole {
                    Vec::new()
                } else {
                    std::mem::take(&mut scratch)
                };
                if self.decode_direct(&index, codec, &mut decoded)? {
                    if whole {
                        return Ok(decoded);
                    }
                    let buf = match &mut out {
                        Some(b) => b,
                        None => out.insert(alloc_zeroed(&self.path, subset.shape(), item as u64)?),
                    };
                    let at = overlap.relative_to(subset.start());
                    copy_region(
                        &decoded,
                        &nominal,
                        &local,
                        buf,
                        subset.shape(),
                        at.start(),
                        item,
                    );
                    scratch = decoded;
                    continue;
                }
                scratch = decoded;
            }
            let region =
                ArraySubset::new_with_start_shape(local.start().to_vec(), local.shape().to_vec())
                    .map_err(|e| Error::bug("a chunk's region", e))?;
            self.check_encoded(&index)?;
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
    /// Reads and decodes chunk `index` into `out` with the direct codec; false
    /// when the chunk is not there to decode that way (missing: it reads as the fill
    /// value; larger than any encoding of a chunk could be: zarrs reports it), and
    /// zarrs is asked instead.
    fn decode_direct(&self, index: &[u64], codec: DirectCodec, out: &mut Vec<u8>) -> Result<bool> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let key = self.array.chunk_key(index);
        let file = self.path.join(key.as_str());
        // Non-blocking, so that a FIFO in place of a chunk cannot hang the open.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&file);
        let mut f = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let meta = f.metadata().map_err(|e| Error::io(&self.path, e))?;
        if !meta.is_file() {
            return Err(self.not_a_file(index));
        }
        let chunk_bytes = self.chunk_bytes();
        // zstd's bound on a frame of the chunk, and room for a trailing frame
        // zarrs would also read: anything larger is left to zarrs to judge.
        let most = chunk_bytes
            .saturating_add(chunk_bytes / 128)
            .saturating_add(1 << 16);
        let (Ok(expected), true) = (usize::try_from(chunk_bytes), meta.len() <= most) else {
            return Ok(false);
        };
        let mut encoded = Vec::new();
        encoded
            .try_reserve_exact(meta.len() as usize)
            .map_err(|e| Error::bug("room for one encoded chunk", e))?;
        f.read_to_end(&mut encoded)
            .map_err(|e| Error::io(&self.path, e))?;
        self.check_encoded_bytes(index, &encoded)?;
        codec
            .decode_into(&encoded, out, expected)
            .map_err(|e| match e {
                DecodeError::Size { .. } => Error::SizeMismatch {
                    path: self.path.clone(),
                    what: "chunk",
                    shape: format!(
                        "{key} of shape {}",
                        shape_text(&self.meta.grid.max_chunk_shape())
                    ),
                    needed: chunk_bytes.to_string(),
                    present: format!("it does not decode to that: {e}"),
                },
                DecodeError::Zstd(_) => {
                    Error::corrupt(&self.path, "zarr", format!("chunk {key}: {e}"))
                }
            })?;
        Ok(true)
    }
}

/// The largest block of a zstd frame (128 KiB): a frame without a content size is
/// bounded by its block count times this, so a legitimate chunk's bound may exceed
/// its size by up to one block per frame block.
const ZSTD_BLOCK_MAX: u64 = 128 << 10;

/// A compressor whose decoder in zarrs sizes its output from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compressor {
    /// zarrs allocates what the frame claims (content size or block bound) at once.
    Zstd,
    /// zarrs reads a gzip member to its end, however far it expands.
    Gzip,
    /// zarrs reads a zlib stream to its end, however far it expands.
    Zlib,
}

impl Compressor {
    fn name(self) -> &'static str {
        match self {
            Compressor::Zstd => "zstd",
            Compressor::Gzip => "gzip",
            Compressor::Zlib => "zlib",
        }
    }

    /// The first of `names` as a compressor, and how many crc32c checksums follow
    /// it, when the rest are only checksums.
    fn with_checksums(names: &[String]) -> Option<(Compressor, usize)> {
        let (first, rest) = names.split_first()?;
        let codec = match first.trim_start_matches("numcodecs.") {
            "zstd" => Compressor::Zstd,
            "gzip" => Compressor::Gzip,
            "zlib" => Compressor::Zlib,
            _ => return None,
        };
        rest.iter()
            .all(|n| n == "crc32c")
            .then_some((codec, rest.len()))
    }

    /// What `encoded` (this compressor's stream, then `checksums` crc32c
    /// checksums) expands to when that is more than `expected` bytes: a sentence
    /// for the message. `None` when it fits, or when the stream is too broken to
    /// say (zarrs then reports it as corrupt).
    fn excess(self, encoded: &[u8], checksums: usize, expected: u64) -> Option<String> {
        use std::io::Read;
        let data = encoded.get(..encoded.len().checked_sub(4 * checksums)?)?;
        // A reader that stops one byte past `expected`: memory stays bounded by the
        // chunk's own size whatever the stream holds.
        let past = |reader: &mut dyn Read| -> Option<String> {
            let mut sink = std::io::sink();
            let read =
                std::io::copy(&mut reader.take(expected.saturating_add(1)), &mut sink).ok()?;
            (read > expected).then(|| format!("expands to more than {expected} bytes"))
        };
        match self {
            // The same bound zarrs computes and allocates, so no decode is needed.
            Compressor::Zstd => {
                let bound = zstd::bulk::Decompressor::upper_bound(data)? as u64;
                let allowed = expected.div_ceil(ZSTD_BLOCK_MAX).saturating_add(1) * ZSTD_BLOCK_MAX;
                (bound > allowed).then(|| format!("claims to expand to {bound} bytes"))
            }
            // Neither format states its size: decode it once, bounded, to find out.
            Compressor::Gzip => past(&mut flate2::read::GzDecoder::new(data)),
            Compressor::Zlib => past(&mut flate2::read::ZlibDecoder::new(data)),
        }
    }
}

/// How a chunk's encoded bytes are checked before zarrs decodes them.
///
/// zarrs sizes a zstd decode by what the frame says it expands to (its content
/// size, or its block count) and allocates that up front: a chunk of a few bytes
/// that claims a terabyte aborts the process on the allocation. Its gzip and zlib
/// decoders read to the end of the stream: a megabyte of gzip expands to a
/// gigabyte. Each chunk is compared with its known decoded size first.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DecodeGuard {
    /// No codec that trusts a size from the data.
    None,
    /// Each chunk is one compressed stream of the chunk's bytes, then `checksums`
    /// crc32c checksums of 4 bytes each.
    Chunk {
        /// The compressor.
        codec: Compressor,
        /// crc32c codecs after it.
        checksums: usize,
    },
    /// Each chunk is a shard whose inner chunks are compressed streams of
    /// `inner_bytes`.
    Sharded {
        /// The inner chunks' compressor.
        codec: Compressor,
        /// Inner chunks per shard (entries of the index).
        inner_chunks: u64,
        /// Decoded bytes of one inner chunk.
        inner_bytes: u64,
        /// crc32c codecs after the inner compressor.
        inner_checksums: usize,
        /// The index is at the start of the shard, not the end.
        index_at_start: bool,
        /// The index carries a crc32c checksum.
        index_checksum: bool,
    },
}

impl DecodeGuard {
    fn of(array: &Array<FilesystemStore>) -> DecodeGuard {
        let names: Vec<String> = array
            .codecs()
            .bytes_to_bytes_codecs()
            .iter()
            .filter_map(|c| c.name_v3().map(|n| n.into_owned()))
            .collect();
        if let Some((codec, checksums)) = Compressor::with_checksums(&names) {
            return DecodeGuard::Chunk { codec, checksums };
        }
        if !names.is_empty() {
            return DecodeGuard::None;
        }
        // Sharding is the array-to-bytes codec; its inner chain is in the metadata.
        let Ok(meta) = serde_json::to_value(array.metadata()) else {
            return DecodeGuard::None;
        };
        let Some(config) = meta
            .get("codecs")
            .and_then(|c| c.as_array())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("name").and_then(|n| n.as_str()) == Some("sharding_indexed"))
            })
            .and_then(|c| c.get("configuration"))
        else {
            return DecodeGuard::None;
        };
        let codec_names = |key: &str| -> Option<Vec<String>> {
            config.get(key)?.as_array().map(|list| {
                list.iter()
                    .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(String::from))
                    .collect()
            })
        };
        let inner = codec_names("codecs").unwrap_or_default();
        let index = codec_names("index_codecs")
            .unwrap_or_else(|| vec!["bytes".to_string(), "crc32c".to_string()]);
        let inner_shape: Option<Vec<u64>> = config
            .get("chunk_shape")
            .and_then(|s| s.as_array())
            .and_then(|s| s.iter().map(|n| n.as_u64()).collect());
        let item = dtype_of(array.data_type()).map_or(1, |d| d.size() as u64);
        let shard_shape: Vec<u64> = array
            .chunk_shape(&vec![0; array.dimensionality()])
            .map(|c| c.iter().map(|n| n.get()).collect())
            .unwrap_or_default();
        let (Some(inner_shape), Some((codec, inner_checksums))) = (
            inner_shape,
            inner
                .split_first()
                .filter(|(first, _)| first.as_str() == "bytes")
                .and_then(|(_, rest)| Compressor::with_checksums(rest)),
        ) else {
            return DecodeGuard::None;
        };
        let index_checksum = match index.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["bytes"] => false,
            ["bytes", "crc32c"] => true,
            _ => return DecodeGuard::None,
        };
        let inner_chunks = shard_shape
            .iter()
            .zip(&inner_shape)
            .try_fold(1u64, |acc, (&s, &i)| acc.checked_mul(s.div_ceil(i.max(1))));
        match (
            inner_chunks,
            crate::grid::checked_nbytes(&inner_shape, item),
        ) {
            (Some(inner_chunks), Some(inner_bytes)) if shard_shape.len() == inner_shape.len() => {
                DecodeGuard::Sharded {
                    codec,
                    inner_chunks,
                    inner_bytes,
                    inner_checksums,
                    index_at_start: config.get("index_location").and_then(|l| l.as_str())
                        == Some("start"),
                    index_checksum,
                }
            }
            _ => DecodeGuard::None,
        }
    }
}

impl ZarrSource {
    /// Refuses chunk `index` when its encoded bytes expand, or claim to expand, past
    /// its size (see [`DecodeGuard`]); a missing chunk passes (it reads as the fill
    /// value).
    fn check_encoded(&self, index: &[u64]) -> Result<()> {
        // A FIFO in place of a chunk would block the read forever, a directory
        // fails with a message about file sizes: only a regular file is a chunk.
        let key = self.array.chunk_key(index);
        if let Ok(meta) = std::fs::metadata(self.path.join(key.as_str())) {
            if !meta.is_file() {
                return Err(self.not_a_file(index));
            }
        }
        if self.guard == DecodeGuard::None {
            return Ok(());
        }
        let encoded = self
            .array
            .retrieve_encoded_chunk(index)
            .map_err(|e| storage_error(&self.path, e))?;
        match encoded {
            Some(e) => self.check_encoded_bytes(index, &e),
            None => Ok(()),
        }
    }

    fn not_a_file(&self, index: &[u64]) -> Error {
        let key = self.array.chunk_key(index);
        Error::corrupt(
            &self.path,
            "zarr",
            format!("chunk {key} is not a regular file"),
        )
    }

    /// The chunk's decoded size in bytes (its nominal shape's).
    fn chunk_bytes(&self) -> u64 {
        crate::grid::num_elements(&self.meta.grid.max_chunk_shape())
            .saturating_mul(self.meta.dtype.size() as u64)
    }

    /// Refuses the stored bytes `encoded` of chunk `index` when they expand, or
    /// claim to expand, past the chunk's size (see [`DecodeGuard`]).
    fn check_encoded_bytes(&self, index: &[u64], encoded: &[u8]) -> Result<()> {
        let chunk_bytes = || self.chunk_bytes();
        let excess = match &self.guard {
            DecodeGuard::None => None,
            DecodeGuard::Chunk { codec, checksums } => codec
                .excess(encoded, *checksums, chunk_bytes())
                .map(|why| (*codec, why, chunk_bytes(), "chunk")),
            DecodeGuard::Sharded {
                codec,
                inner_chunks,
                inner_bytes,
                inner_checksums,
                index_at_start,
                index_checksum,
            } => Some(encoded).and_then(|shard| {
                let index_len = inner_chunks
                    .checked_mul(16)?
                    .checked_add(if *index_checksum { 4 } else { 0 })?;
                let index_len = usize::try_from(index_len).ok()?;
                let table = if *index_at_start {
                    shard.get(..index_len)?
                } else {
                    shard.get(shard.len().checked_sub(index_len)?..)?
                };
                // Entries the index cannot locate are left to zarrs, which reports
                // them; only a locatable stream is checked here.
                table
                    .chunks_exact(16)
                    .find_map(|entry| {
                        let (offset, len) = entry.split_at(8);
                        let offset =
                            usize::try_from(u64::from_le_bytes(offset.try_into().ok()?)).ok()?;
                        let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
                        let inner = shard.get(offset..offset.checked_add(len)?)?;
                        codec.excess(inner, *inner_checksums, *inner_bytes)
                    })
                    .map(|why| (*codec, why, *inner_bytes, "an inner chunk of shard"))
            }),
        };
        match excess {
            None => Ok(()),
            Some((codec, why, needed, what)) => Err(Error::SizeMismatch {
                path: self.path.clone(),
                what,
                shape: format!(
                    "{} of shape {}",
                    self.array.chunk_key(index),
                    shape_text(&self.meta.grid.max_chunk_shape())
                ),
                needed: needed.to_string(),
                present: format!("its {} data {why}; the chunk is corrupt", codec.name()),
            }),
        }
    }

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

/// A Zarr v3 array being written. It holds no state beyond its description, so any
/// process can open the same array and write its own chunks: each chunk file and
/// the metadata are published atomically (a temporary name, then a rename).
pub struct ZarrSink {
    path: PathBuf,
    array: Array<FilesystemStore>,
    dtype: DType,
    grid: ChunkGrid,
    chunk_shape: Vec<u64>,
    /// Chunks encoded without zarrs, when the codec chain allows.
    direct: Option<DirectCodec>,
}

impl ZarrSink {
    /// Creates a v3 array in the new directory `path` (its metadata is written by
    /// [`ArraySink::finish`] or [`ZarrSink::store_metadata`]).
    ///
    /// # Errors
    /// When the directory exists or cannot be created.
    pub fn create(
        path: &Path,
        dtype: DType,
        shape: &[u64],
        chunk_shape: &[u64],
        compression: ZarrCompression,
    ) -> Result<Self> {
        std::fs::create_dir(path).map_err(|e| Error::io(path, e))?;
        Self::open(path, dtype, shape, chunk_shape, compression)
    }

    /// The v3 array at `path` with this description, for writing: nothing is read,
    /// and the directory is created if missing (by whichever task comes first).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(
        path: &Path,
        dtype: DType,
        shape: &[u64],
        chunk_shape: &[u64],
        compression: ZarrCompression,
    ) -> Result<Self> {
        let grid = ChunkGrid::regular(shape, chunk_shape)?;
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let store = FilesystemStore::new(path).map_err(|e| match e {
            FilesystemStoreCreateError::IOError(io) => Error::io(path, io),
            // zarrs keys are text: a name that is not UTF-8 cannot be one.
            FilesystemStoreCreateError::InvalidBasePath(_) => Error::Unsupported {
                path: path.to_path_buf(),
                what: "Zarr path",
                found: path.display().to_string(),
                supported: "; a Zarr array's path must be UTF-8".into(),
            },
        })?;
        let dt = zarr_dtype(dtype);
        let fill = FillValue::new(vec![0u8; dtype.size()]);
        let mut builder = ArrayBuilder::new(shape.to_vec(), chunk_shape.to_vec(), dt, fill);
        if let ZarrCompression::Zstd(level) = compression {
            builder.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(level, false))]);
        }
        let mut array = builder
            .build(Arc::new(store), "/")
            .map_err(|e| Error::bug("a Zarr array of a checked shape and type", e))?;
        array.set_metadata_options(
            zarrs::array::ArrayMetadataOptions::default().with_include_zarrs_metadata(false),
        );
        let direct = DirectCodec::of(array.metadata());
        Ok(ZarrSink {
            path: path.to_path_buf(),
            array,
            dtype,
            grid,
            chunk_shape: chunk_shape.to_vec(),
            direct,
        })
    }

    /// Writes the array's metadata (`zarr.json`) now, atomically, so readers can open
    /// the array while its chunks are written (an intermediate array of a staged
    /// rechunk); writing it again is harmless.
    ///
    /// # Errors
    /// When the metadata cannot be written.
    pub fn store_metadata(&self) -> Result<()> {
        let options =
            zarrs::array::ArrayMetadataOptions::default().with_include_zarrs_metadata(false);
        let json = match self.array.metadata_opt(&options) {
            ArrayMetadata::V3(m) => serde_json::to_vec_pretty(&m),
            ArrayMetadata::V2(m) => serde_json::to_vec_pretty(&m),
        }
        .map_err(|e| Error::bug("Zarr metadata to JSON", e))?;
        write_file_atomically(&self.path.join("zarr.json"), &json)
    }
}

impl ArraySink for ZarrSink {
    fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    fn write_chunk(&self, index: &[u64], data: &[u8]) -> Result<()> {
        use zarrs::array::ArrayToBytesCodecTraits;
        let region = self.grid.chunk_subset(index);
        let item = self.dtype.size();
        let full: usize = self.chunk_shape.iter().product::<u64>() as usize * item;
        let file = self.path.join(self.array.chunk_key(index).as_str());
        // All-fill chunks are not stored, as zarr-python does (a rerun of the task
        // removes what an earlier run may have left).
        if data.iter().all(|&b| b == 0) {
            return match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&file, e)),
                _ => Ok(()),
            };
        }
        let padded;
        let bytes = if data.len() == full {
            data
        } else {
            // Zarr stores every chunk at its nominal shape: pad edge chunks with the
            // fill value (zero).
            let mut buf = vec![0u8; full];
            let zero = vec![0; region.shape().len()];
            copy_region(
                data,
                region.shape(),
                &Subset::full(region.shape()),
                &mut buf,
                &self.chunk_shape,
                &zero,
                item,
            );
            padded = buf;
            &padded
        };
        let encoded = match self.direct {
            Some(codec) => codec.encode(bytes).map_err(|e| Error::io(&self.path, e))?,
            None => {
                let shape = self
                    .array
                    .chunk_shape(index)
                    .map_err(|e| storage_error(&self.path, e))?;
                self.array
                    .codecs()
                    .encode(
                        ArrayBytes::new_flen(bytes),
                        &shape,
                        self.array.data_type(),
                        self.array.fill_value(),
                        &single_task_codec_options(),
                    )
                    .map_err(|e| {
                        storage_error(&self.path, zarrs::array::ArrayError::CodecError(e))
                    })?
                    .into_owned()
                    .into()
            }
        };
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        write_file_atomically(&file, &encoded)
    }

    fn finish(mut self: Box<Self>, rows: Option<u64>) -> Result<()> {
        if let Some(rows) = rows {
            let mut shape = self.array.shape().to_vec();
            let first = shape
                .first_mut()
                .ok_or_else(|| Error::bug("a row count for a scalar array", rows))?;
            *first = rows;
            self.array
                .set_shape(shape)
                .map_err(|e| Error::bug("a Zarr array's new shape", e))?;
        }
        self.store_metadata()
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
    fn metadata_values_are_shown_as_written() {
        assert_eq!(short_json(&serde_json::json!("\\")), "\"\\\"");
        assert_eq!(short_json(&serde_json::json!([1, 2])), "[1,2]");
        assert!(short_json(&serde_json::json!("x".repeat(100))).ends_with("..."));
    }

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
