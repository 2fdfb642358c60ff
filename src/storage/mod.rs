//! Storage: one module per format, the traits they share, and telling a path's
//! format from its name or contents.

pub mod array;
pub mod atomic;
pub mod csv;
pub mod distinct;
pub mod frame;
pub mod ipc;
pub mod npy;
pub mod npy_stack;
pub mod ordinal;
pub mod parquet;
pub mod zarr;

use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;

use self::array::ArraySource;
use self::frame::{FrameReadOptions, FrameSource};
use crate::error::{Error, Result};

/// Whether a dataset is a table or an n-dimensional array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Rows and named, typed columns.
    Frame,
    /// An n-dimensional array of one dtype.
    Array,
}

/// A storage format blockwise reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma- (or otherwise) separated values.
    Csv,
    /// Apache Parquet (a file or a directory of parts).
    Parquet,
    /// Apache Parquet written as a directory of part files, `part.0.parquet`,
    /// `part.1.parquet`, … (as Dask writes them), each written by its own task. Read
    /// as [`Format::Parquet`], which reads directories.
    ParquetDir,
    /// Arrow IPC file (`.arrow`, `.feather` v2).
    Ipc,
    /// A numpy `.npy` file.
    Npy,
    /// A Dask npy stack directory.
    NpyStack,
    /// A Zarr array (v3 written, v2 and v3 read).
    Zarr,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 6] = [
        Format::Csv,
        Format::Parquet,
        Format::Ipc,
        Format::Npy,
        Format::NpyStack,
        Format::Zarr,
    ];

    /// The name used by `--to` and `info`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::ParquetDir => "parquet-dir",
            Format::Ipc => "ipc",
            Format::Npy => "npy",
            Format::NpyStack => "npy-stack",
            Format::Zarr => "zarr",
        }
    }

    /// Parses a `--to` value; a few common aliases are accepted.
    ///
    /// # Errors
    /// [`Error::Usage`] listing the formats.
    pub fn parse(name: &str) -> Result<Format> {
        let f = match name.to_ascii_lowercase().as_str() {
            "csv" => Format::Csv,
            "parquet" | "pq" => Format::Parquet,
            "parquet-dir" | "parquet_dir" => Format::ParquetDir,
            "ipc" | "arrow" | "feather" => Format::Ipc,
            "npy" => Format::Npy,
            "npy-stack" | "npy_stack" | "npystack" => Format::NpyStack,
            "zarr" => Format::Zarr,
            _ => {
                return Err(Error::UnknownName {
                    what: "format",
                    name: name.to_string(),
                    known: Format::ALL.map(Format::name).join(", "),
                })
            }
        };
        Ok(f)
    }

    /// Table or array.
    pub fn kind(self) -> Kind {
        match self {
            Format::Csv | Format::Parquet | Format::ParquetDir | Format::Ipc => Kind::Frame,
            Format::Npy | Format::NpyStack | Format::Zarr => Kind::Array,
        }
    }

    /// The format a file name's extension says, if any.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" | "tsv" | "txt" => Format::Csv,
            "parquet" | "pq" | "parq" => Format::Parquet,
            "arrow" | "feather" | "ipc" => Format::Ipc,
            "npy" => Format::Npy,
            "zarr" => Format::Zarr,
            _ => return None,
        })
    }
}

/// The formats a source can be named with, for messages.
const FORMAT_NAMES: &str = "csv, parquet, ipc, npy, npy-stack, zarr";

/// What a path with glob characters names.
pub enum GlobDir {
    /// The path has none: it is itself.
    NotGlob,
    /// `dir/*.parquet` or `dir/*`: every part of the directory.
    Dir(PathBuf),
    /// Any other glob, which is not read.
    Unsupported,
}

/// `dir/*.parquet` (or `dir/*`) as the directory `dir`, which the Parquet reader
/// reads part by part; any other glob is refused.
pub fn glob_dir(path: &Path) -> GlobDir {
    let text = path.to_string_lossy();
    if !text.contains(['*', '?', '[']) {
        return GlobDir::NotGlob;
    }
    let (Some(parent), Some(pattern)) = (path.parent(), path.file_name()) else {
        return GlobDir::Unsupported;
    };
    let parent_text = parent.to_string_lossy();
    let pattern = pattern.to_string_lossy();
    if parent_text.contains(['*', '?', '[']) || !matches!(&*pattern, "*.parquet" | "*") {
        return GlobDir::Unsupported;
    }
    let dir = if parent_text.is_empty() {
        PathBuf::from(".")
    } else {
        parent.to_path_buf()
    };
    GlobDir::Dir(dir)
}

/// Tells the format of an existing path from its contents, then its name.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::UnknownFormat`] when nothing tells.
pub fn detect(path: &Path) -> Result<Format> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    check_input_kind(path, &meta)?;
    if meta.is_dir() {
        if zarr::is_zarr(path) {
            return Ok(Format::Zarr);
        }
        if npy_stack::is_npy_stack(path) {
            return Ok(Format::NpyStack);
        }
        if !parquet::list_parts(path)?.is_empty() {
            return Ok(Format::Parquet);
        }
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            hint: "a directory must hold zarr.json or .zarray (Zarr), info (npy stack) or \
                   .parquet parts (Hive key=value subdirectories included)"
                .into(),
        });
    }
    let mut head = [0u8; 8];
    let n = std::io::Read::read(
        &mut std::fs::File::open(path).map_err(|e| Error::io(path, e))?,
        &mut head,
    )
    .map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    // Feather v1 is told apart here so that the IPC reader can say what it is and
    // how to rewrite it, whatever the file is called.
    if head.starts_with(b"ARROW1") || head.starts_with(ipc::FEATHER_V1_MAGIC) {
        return Ok(Format::Ipc);
    }
    // An Arrow IPC stream starts with a message: the continuation marker.
    if head.starts_with(&[0xff, 0xff, 0xff, 0xff]) && n == 8 {
        return Ok(Format::Ipc);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    Format::from_extension(path).ok_or_else(|| Error::UnknownFormat {
        path: path.to_path_buf(),
        hint: format!(
            "name the source's format ({FORMAT_NAMES}) or give it an extension \
             (.csv, .parquet, .arrow, .feather, .npy, .zarr)"
        ),
    })
}

/// Column names made unique: the first of equal names keeps it, the next become
/// `a_1`, `a_2`, ... (skipping names already taken), so that a table with duplicate
/// names (pyarrow writes them; so do spreadsheets' CSV) reads and writes cleanly.
pub fn unique_column_names(names: &[String]) -> Vec<String> {
    use std::collections::HashSet;
    let original: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut taken: HashSet<String> = HashSet::with_capacity(names.len());
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut unique = name.clone();
        if taken.contains(&unique) {
            // A later column literally named `a_1` keeps its name: skip such names.
            let mut k = 1u64;
            loop {
                let candidate = format!("{name}_{k}");
                if !taken.contains(&candidate) && !original.contains(candidate.as_str()) {
                    unique = candidate;
                    break;
                }
                k += 1;
            }
        }
        taken.insert(unique.clone());
        out.push(unique);
    }
    out
}

/// The schema with its field names made unique by [`unique_column_names`], or
/// `None` when they already are.
pub fn unique_schema(schema: &arrow::datatypes::Schema) -> Option<arrow::datatypes::SchemaRef> {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let unique = unique_column_names(&names);
    if unique == names {
        return None;
    }
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .zip(unique)
        .map(|(f, name)| f.as_ref().clone().with_name(name))
        .collect();
    Some(std::sync::Arc::new(
        arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()),
    ))
}

/// A third-party decoder's error (arrow, parquet, flatbuffers) as a message for a
/// user: their errors often embed Rust's debug formatting of internal values
/// (`RangeOutOfBounds { range: 2..3, error_trace: .. }`, `Field { "a": .. }`,
/// `Some(3)`), which names nothing a user knows. A debug structure becomes the words
/// of its name ("range out of bounds"), `Some(x)` becomes `x`, a range `2..3` or
/// `2..=3` becomes "2 to 3", and escaped quotes lose their backslashes; the rest is
/// kept as the decoder wrote it.
pub fn decoder_detail(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // `Ident { ... }`: a CamelCase name, a space and a brace.
        if c.is_ascii_uppercase() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let end = (i..chars.len())
                .find(|&j| !chars[j].is_ascii_alphanumeric() && chars[j] != '_')
                .unwrap_or(chars.len());
            let ident: String = chars[i..end].iter().collect();
            if chars[end..].starts_with(&[' ', '{']) {
                if let Some(close) = matching(&chars, end + 1, '{', '}') {
                    out.push_str(&camel_words(&ident));
                    i = close + 1;
                    continue;
                }
            }
            if ident == "Some" && chars.get(end) == Some(&'(') {
                if let Some(close) = matching(&chars, end, '(', ')') {
                    out.push_str(&decoder_detail(
                        &chars[end + 1..close].iter().collect::<String>(),
                    ));
                    i = close + 1;
                    continue;
                }
            }
        }
        if c == '.' && chars.get(i + 1) == Some(&'.') && i > 0 && chars[i - 1].is_ascii_digit() {
            let after = if chars.get(i + 2) == Some(&'=') {
                i + 3
            } else {
                i + 2
            };
            if chars
                .get(after)
                .is_some_and(|d| d.is_ascii_digit() || *d == '-')
            {
                out.push_str(" to ");
                i = after;
                continue;
            }
        }
        if c == '\\' && chars.get(i + 1) == Some(&'"') {
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The index of the `close` that balances the `open` at `chars[start]`.
fn matching(chars: &[char], start: usize, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &c) in chars.iter().enumerate().skip(start) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// `RangeOutOfBounds` as "range out of bounds".
fn camel_words(ident: &str) -> String {
    let mut words = String::new();
    for (k, c) in ident.chars().enumerate() {
        if c.is_ascii_uppercase() && k > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

thread_local! {
    /// How many [`guard_decoder`] calls this thread is inside.
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `decode`, a call into a third-party decoder (arrow, parquet) on bytes from a
/// file, turning a panic into [`Error::Corrupt`].
///
/// Those decoders check most of what a file claims, but some corrupt offsets still
/// reach an `assert!`. A file must never crash the process, so every such call goes
/// through here. The panic's own report is silenced on this thread while inside (the
/// error says it instead); panics elsewhere are reported as before.
///
/// # Errors
/// `decode`'s error, or [`Error::Corrupt`] naming `path`, `format` and the panic.
pub fn guard_decoder<T>(
    path: &Path,
    format: &'static str,
    decode: impl FnOnce() -> Result<T>,
) -> Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(|g| g.get()) == 0 {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    GUARDED.with(|g| g.set(g.get().saturating_sub(1)));
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("the decoder failed");
            Err(Error::corrupt(
                path,
                format,
                format!("invalid data ({})", decoder_detail(&what)),
            ))
        }
    }
}

/// Refuses an input that is neither a regular file nor a directory (a FIFO, a
/// device, a socket): opening or reading one may wait for a writer forever, and the
/// readers seek (ranges read in parallel, footers at the end).
///
/// # Errors
/// [`Error::Unsupported`] naming what the path is.
pub fn check_input_kind(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    let found = if ft.is_file() || ft.is_dir() {
        return Ok(());
    } else if ft.is_fifo() {
        "a FIFO (a pipe)"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Err(Error::Unsupported {
        path: path.to_path_buf(),
        what: "input",
        found: found.into(),
        supported: "; blockwise reads regular files and directories (it seeks in them): \
                    write the stream to a file first"
            .into(),
    })
}

/// Opens a table for reading.
///
/// # Errors
/// The format's open errors; [`Error::Usage`] when `format` is an array format.
pub fn open_frame(
    path: &Path,
    format: Format,
    options: &FrameReadOptions,
) -> Result<Box<dyn FrameSource>> {
    let (inner, position) = ordinal::split_ordinal(options)?;
    with_ordinals(open_format(path, format, &inner)?, position, options)
}

/// `source` with its rows' ordinals at `position` when they are asked for
/// ([`FrameReadOptions::row_ordinal`]).
fn with_ordinals(
    source: Box<dyn FrameSource>,
    position: Option<usize>,
    options: &FrameReadOptions,
) -> Result<Box<dyn FrameSource>> {
    Ok(match (position, &options.row_ordinal) {
        (Some(position), Some(name)) => {
            Box::new(ordinal::WithOrdinals::new(source, name, position, options)?)
        }
        _ => source,
    })
}

/// [`open_frame`] without the row ordinals.
fn open_format(
    path: &Path,
    format: Format,
    options: &FrameReadOptions,
) -> Result<Box<dyn FrameSource>> {
    // `--from` skips `detect`, which would have refused a FIFO before it is opened.
    check_input_kind(
        path,
        &std::fs::metadata(path).map_err(|e| Error::io(path, e))?,
    )?;
    Ok(match format {
        Format::Csv => Box::new(csv::CsvSource::open(path, options)?),
        Format::Parquet | Format::ParquetDir => {
            Box::new(parquet::ParquetSource::open(path, options)?)
        }
        Format::Ipc => Box::new(ipc::IpcSource::open(path, options)?),
        other => {
            return Err(Error::WrongKind {
                format: other.name(),
                is: "an array format",
                wanted: "a table format",
            })
        }
    })
}

/// A table source as a plan's input dataset carries it in its `meta`: what a worker
/// needs to open it and find the same partitions, without scanning it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceMeta {
    /// The columns read, in this order (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Rows per record batch.
    pub batch_rows: usize,
    /// Parquet: the row groups read (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_groups: Option<Vec<usize>>,
    /// Parquet: the row ranges read of each row group read (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_ranges: Option<Vec<Vec<(u64, u64)>>>,
    /// The column of the rows' ordinals, when read ([`FrameReadOptions::row_ordinal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_ordinal: Option<String>,
    /// CSV: the partitions' byte ranges, the types and the quote state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<csv::CsvLayout>,
}

/// Opens a table for reading as [`open_frame`] does, and describes it for a plan.
///
/// # Errors
/// As [`open_frame`].
pub fn open_frame_described(
    path: &Path,
    format: Format,
    options: &FrameReadOptions,
) -> Result<(Box<dyn FrameSource>, SourceMeta)> {
    let mut meta = SourceMeta {
        columns: options.columns.clone(),
        batch_rows: options.batch_rows,
        row_groups: options.row_groups.clone(),
        row_ranges: options.row_ranges.clone(),
        row_ordinal: options.row_ordinal.clone(),
        csv: None,
    };
    if format != Format::Csv {
        return Ok((open_frame(path, format, options)?, meta));
    }
    check_input_kind(
        path,
        &std::fs::metadata(path).map_err(|e| Error::io(path, e))?,
    )?;
    let (inner, position) = ordinal::split_ordinal(options)?;
    let source = csv::CsvSource::open(path, &inner)?;
    meta.csv = Some(source.layout());
    Ok((with_ordinals(Box::new(source), position, options)?, meta))
}

/// Opens the table a plan describes (see [`open_frame_described`]): a CSV file is
/// neither split nor sampled again.
///
/// # Errors
/// As [`open_frame`]; [`Error::BadPlan`] for a CSV source without its layout.
pub fn open_frame_meta(
    path: &Path,
    format: Format,
    meta: &SourceMeta,
) -> Result<Box<dyn FrameSource>> {
    let options = FrameReadOptions {
        columns: meta.columns.clone(),
        batch_rows: meta.batch_rows,
        row_groups: meta.row_groups.clone(),
        row_ranges: meta.row_ranges.clone(),
        row_ordinal: meta.row_ordinal.clone(),
        ..FrameReadOptions::default()
    };
    if format == Format::Csv {
        let layout = meta.csv.as_ref().ok_or_else(|| Error::BadPlan {
            reason: format!(
                "the CSV source {} has no layout in its meta",
                path.display()
            ),
        })?;
        let (_, position) = ordinal::split_ordinal(&options)?;
        let source = csv::CsvSource::from_layout(path, layout)?;
        return with_ordinals(Box::new(source), position, &options);
    }
    open_frame(path, format, &options)
}

/// Opens an array for reading.
///
/// # Errors
/// The format's open errors; [`Error::Usage`] when `format` is a table format.
pub fn open_array(path: &Path, format: Format) -> Result<Box<dyn ArraySource>> {
    check_input_kind(
        path,
        &std::fs::metadata(path).map_err(|e| Error::io(path, e))?,
    )?;
    Ok(match format {
        Format::Npy => Box::new(npy::NpySource::open(path)?),
        Format::NpyStack => Box::new(npy_stack::NpyStackSource::open(path)?),
        Format::Zarr => Box::new(zarr::ZarrSource::open(path)?),
        other => {
            return Err(Error::WrongKind {
                format: other.name(),
                is: "a table format",
                wanted: "an array format",
            })
        }
    })
}

/// The name blockwise uses for an Arrow type in messages, `info` and `--dtype`.
pub fn type_name(dtype: &DataType) -> String {
    match dtype {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "utf8".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "float16".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(unit, None) => format!("timestamp[{}]", unit_name(unit)),
        DataType::Timestamp(unit, Some(tz)) => format!("timestamp[{}, {tz}]", unit_name(unit)),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Dictionary(_, value) => type_name(value),
        // Nested types as pyarrow prints them: list<int64>, struct<a: int64, b: utf8>.
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => format!("list<{}>", type_name(item.data_type())),
        DataType::FixedSizeList(item, n) => {
            format!("fixed_size_list<{}>[{n}]", type_name(item.data_type()))
        }
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{}, {}>",
                type_name(kv[0].data_type()),
                type_name(kv[1].data_type())
            ),
            other => format!("map<{}>", type_name(other)),
        },
        DataType::Union(fields, _) => format!(
            "union<{}>",
            fields
                .iter()
                .map(|(_, f)| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::RunEndEncoded(_, values) => type_name(values.data_type()),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        DataType::Null => "null".into(),
        other => other.to_string().to_lowercase(),
    }
}

fn unit_name(unit: &arrow::datatypes::TimeUnit) -> &'static str {
    use arrow::datatypes::TimeUnit::*;
    match unit {
        Second => "s",
        Millisecond => "ms",
        Microsecond => "us",
        Nanosecond => "ns",
    }
}

/// Parses a `--dtype` type name: the names [`type_name`] prints, plus a few aliases.
///
/// # Errors
/// [`Error::Usage`] listing the names.
pub fn parse_type_name(name: &str) -> Result<DataType> {
    use arrow::datatypes::TimeUnit;
    Ok(match name.to_ascii_lowercase().as_str() {
        "utf8" | "str" | "string" | "text" | "varchar" => DataType::Utf8,
        "bool" | "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" | "int" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" | "float" | "double" => DataType::Float64,
        "date" | "date32" => DataType::Date32,
        "timestamp" | "datetime" | "timestamp[us]" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        "timestamp[ms]" => DataType::Timestamp(TimeUnit::Millisecond, None),
        "timestamp[s]" => DataType::Timestamp(TimeUnit::Second, None),
        "timestamp[ns]" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        _ => {
            return Err(Error::UnknownName {
                what: "type",
                name: name.to_string(),
                known: "utf8, bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, \
                        float32, float64, date, timestamp"
                    .into(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn duplicate_names_get_suffixes() {
        assert_eq!(
            unique_column_names(&names(&["a", "b", "a", "a"])),
            names(&["a", "b", "a_1", "a_2"])
        );
        // A literal `a_1` later on keeps its name.
        assert_eq!(
            unique_column_names(&names(&["a", "a", "a_1"])),
            names(&["a", "a_2", "a_1"])
        );
        assert_eq!(unique_column_names(&names(&["x", "y"])), names(&["x", "y"]));
    }

    #[test]
    fn a_decoder_panic_is_a_corrupt_error() {
        let e = guard_decoder(Path::new("f.arrow"), "arrow ipc", || -> Result<()> {
            panic!("slice out of bounds")
        })
        .unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }));
        assert!(e.to_string().contains("slice out of bounds"));
    }

    #[test]
    fn decoder_details_lose_debug_formatting() {
        let flatbuffers = "Unable to get root as message stored in ARROW:schema: \
            RangeOutOfBounds { range: 2..3, error_trace: ErrorTrace([TableField { \
            field_name: \"children\", position: 528 }]) }";
        assert_eq!(
            decoder_detail(&flatbuffers),
            "Unable to get root as message stored in ARROW:schema: range out of bounds"
        );
        assert_eq!(
            decoder_detail(&"Invalid UTF8 sequence at string index 655 (2510..2514): bad"),
            "Invalid UTF8 sequence at string index 655 (2510 to 2514): bad"
        );
        assert_eq!(
            decoder_detail(&"Field { \"a\": nullable Int64 } refers to node not found"),
            "field refers to node not found"
        );
        assert_eq!(
            decoder_detail(&"level Some(-1) in -131072..=22"),
            "level -1 in -131072 to 22"
        );
        assert_eq!(
            decoder_detail(&"EOF: file too small"),
            "EOF: file too small"
        );
        // Unbalanced text is kept as it is.
        assert_eq!(
            decoder_detail(&"Oops { never closed"),
            "Oops { never closed"
        );
    }

    #[test]
    fn nested_types_are_named_like_pyarrow() {
        use arrow::datatypes::Field;
        let list = DataType::List(std::sync::Arc::new(Field::new(
            "item",
            DataType::Int64,
            true,
        )));
        assert_eq!(type_name(&list), "list<int64>");
    }
}
