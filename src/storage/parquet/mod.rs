//! Parquet: a single file or a directory of part files, read by row group (each row
//! group of each file is a partition), written with zstd in row groups bounded by
//! both a row count and a byte size.
//!
//! Writing encodes each batch's columns in parallel (one column per task) into the
//! open row group and appends the column chunks in order, so a wide table keeps both
//! cores busy while the output stays what a sequential writer would produce.

pub mod parts;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::{Encoding, PageType};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, PageIndexPolicy};

pub use self::writer::{ParquetSink, ParquetWriteOptions, DEFAULT_ROW_GROUP_ROWS, ROW_GROUP_BYTES};
use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::{
    project, BatchIter, ColumnStats, FrameReadOptions, FrameSource, PageStats,
};
use crate::storage::{decoder_detail, guard_decoder, type_name, unique_schema};

/// The value a Hive partition directory holds for a null key (Spark, pyarrow).
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";
/// Deepest directory nesting searched for parts.
const MAX_DEPTH: usize = 64;

struct PartFile {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    /// The Hive partition values of the part (`key=value` directories), one per key;
    /// `None` for a null value.
    values: Vec<Option<String>>,
}

/// A Hive partition key: a column whose value a part's directory names.
struct PartitionKey {
    name: String,
    dtype: DataType,
}

/// A Parquet file or directory of parts, opened for reading.
pub struct ParquetSource {
    files: Vec<PartFile>,
    /// (file, row group) per partition.
    partitions: Vec<(usize, usize)>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    batch_rows: usize,
    /// Columns stored in the files; the partition keys follow them.
    file_columns: usize,
    keys: Vec<PartitionKey>,
    /// Whether batches must be rebuilt (columns renamed, reordered or added) rather
    /// than passed on as the reader yields them.
    rebuild: bool,
    /// Whether columns were renamed to make the names unique: the statistics
    /// are then under other names.
    renamed: bool,
    /// The row ranges read of each partition (all rows when `None`).
    row_ranges: Option<Vec<Vec<(u64, u64)>>>,
}

/// Lists the part files of a directory dataset: `*.parquet` files, in it and in its
/// subdirectories (Hive partitions `key=value/`, at any depth), sorted by path with
/// numbers compared as numbers (`part-2` before `part-10`). Names starting with `.`
/// or `_` (`_SUCCESS`, `_metadata`) are skipped, as pyarrow and Spark skip them.
///
/// # Errors
/// When a directory cannot be read.
pub fn list_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts = Vec::new();
    collect_parts(dir, 0, &mut parts)?;
    parts.sort_by_key(|p| {
        p.strip_prefix(dir)
            .unwrap_or(p)
            .components()
            .map(|c| natural_key(&c.as_os_str().to_string_lossy()))
            .collect::<Vec<_>>()
    });
    Ok(parts)
}

fn collect_parts(dir: &Path, depth: usize, parts: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        // A symbolic link to a directory is not followed (it could loop).
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if depth < MAX_DEPTH {
                collect_parts(&path, depth + 1, parts)?;
            }
        } else if path.is_file()
            && path
                .extension()
                .is_some_and(|x| x == "parquet" || x == "parq")
        {
            parts.push(path);
        }
    }
    Ok(())
}

/// The `key=value` directories between `root` and `part`, values percent-decoded
/// (pyarrow writes `a b` as `a%20b`). Directories without `=` are not partitions.
///
/// # Errors
/// [`Error::Unsupported`] for a directory `=value` with no key: dropping it would
/// merge partitions that differ only there.
fn hive_pairs(root: &Path, part: &Path) -> Result<Vec<(String, String)>> {
    let relative = part.strip_prefix(root).unwrap_or(part);
    let Some(parent) = relative.parent() else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    let mut dir = root.to_path_buf();
    for c in parent.components() {
        dir.push(c);
        let Some((key, value)) = c.as_os_str().to_str().and_then(|t| t.split_once('=')) else {
            continue;
        };
        if key.is_empty() {
            return Err(Error::Unsupported {
                path: dir,
                what: "Hive partition directory",
                found: format!("={value}"),
                supported: "; a partition directory is named KEY=VALUE, with a key".into(),
            });
        }
        pairs.push((percent_decode(key), percent_decode(value)));
    }
    Ok(pairs)
}

/// Partition keys as a message shows them: `k/j`, or "none".
fn key_list(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join("/")
    }
}

/// The first difference between two parts' schemas, in a user's words: a column
/// only one has, or a column whose type (or nullability) differs.
fn schema_difference(first: &Schema, other: &Schema) -> String {
    for f in first.fields() {
        match other.field_with_name(f.name()) {
            Err(_) => return format!("it has no column \"{}\"", f.name()),
            Ok(o) if o.data_type() != f.data_type() => {
                return format!(
                    "column \"{}\" is {} here and {} there",
                    f.name(),
                    type_name(o.data_type()),
                    type_name(f.data_type())
                )
            }
            Ok(o) if o.is_nullable() != f.is_nullable() => {
                return format!(
                    "column \"{}\" is {} here and {} there",
                    f.name(),
                    nullability(o.is_nullable()),
                    nullability(f.is_nullable())
                )
            }
            Ok(_) => {}
        }
    }
    if let Some(extra) = other
        .fields()
        .iter()
        .find(|o| first.field_with_name(o.name()).is_err())
    {
        return format!("it has a column \"{}\" the other has not", extra.name());
    }
    if first.fields().len() != other.fields().len() {
        return "the columns appear a different number of times".into();
    }
    "the columns are in another order, or differ in their metadata".into()
}

fn nullability(nullable: bool) -> &'static str {
    if nullable {
        "nullable"
    } else {
        "not nullable"
    }
}

/// Decodes `%XX` escapes; anything else (and a bad escape) is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The type pyarrow infers for a partition key: int32 when every value is an
/// integer that fits, int64 when they fit that, else utf8. A leading `+` keeps the
/// text (pyarrow's too): `+2` is a name more often than a number.
fn infer_key_type<'a>(values: impl Iterator<Item = &'a str> + Clone) -> DataType {
    if values.clone().any(|v| v.starts_with('+')) {
        DataType::Utf8
    } else if values.clone().all(|v| v.parse::<i32>().is_ok()) {
        DataType::Int32
    } else if values.clone().all(|v| v.parse::<i64>().is_ok()) {
        DataType::Int64
    } else {
        DataType::Utf8
    }
}

fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

/// Maps a parquet error on `path`, keeping an I/O cause (a full disk) recognisable.
fn parquet_error(path: &Path, e: ParquetError) -> Error {
    match e {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => Error::io(path, *io),
            Err(other) => Error::corrupt(path, "parquet", decoder_detail(&other)),
        },
        other => Error::corrupt(path, "parquet", decoder_detail(&other)),
    }
}

/// Checks what the footer says against the file: every column chunk lies inside
/// the file and every count is non-negative. The reader allocates a column chunk's
/// stated length before reading it, so a lie there must stop here.
fn check_footer(path: &Path, meta: &ArrowReaderMetadata, len: u64) -> Result<()> {
    let bad = |detail: String| Error::corrupt(path, "parquet", detail);
    let mut rows = 0u64;
    for (g, group) in meta.metadata().row_groups().iter().enumerate() {
        let n = u64::try_from(group.num_rows())
            .map_err(|_| bad(format!("row group {g} has {} rows", group.num_rows())))?;
        rows = rows
            .checked_add(n)
            .ok_or_else(|| bad("the row groups' row counts overflow".into()))?;
        for (c, column) in group.columns().iter().enumerate() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let size = column.compressed_size();
            let end = u64::try_from(start)
                .ok()
                .zip(u64::try_from(size).ok())
                .and_then(|(s, n)| s.checked_add(n));
            if end.is_none_or(|end| end > len) {
                return Err(Error::SizeMismatch {
                    path: path.to_path_buf(),
                    what: "column chunk",
                    shape: format!("{c} of row group {g} (offset {start}, {size} bytes)"),
                    needed: match end {
                        Some(end) => end.to_string(),
                        None => "an impossible number of".into(),
                    },
                    present: format!("the file holds {len}"),
                });
            }
        }
    }
    Ok(())
}

impl ParquetSource {
    /// Opens a file or a directory of parts, reading only footers.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a truncated or invalid file; [`Error::SizeMismatch`]
    /// for a column chunk past the end of its file; [`Error::Usage`] when the parts
    /// of a directory have different schemas or partition keys;
    /// [`Error::NoSuchColumn`].
    pub fn open(path: &Path, options: &FrameReadOptions) -> Result<Self> {
        let is_dir = path.is_dir();
        let paths = if is_dir {
            list_parts(path)?
        } else {
            vec![path.to_path_buf()]
        };
        if paths.is_empty() {
            return Err(Error::UnknownFormat {
                path: path.to_path_buf(),
                hint: "the directory holds no .parquet files".into(),
            });
        }
        let mut files: Vec<PartFile> = Vec::with_capacity(paths.len());
        let mut key_names: Option<Vec<String>> = None;
        for p in paths {
            let file = File::open(&p).at(&p)?;
            let len = file.metadata().at(&p)?.len();
            // The page index is read only where pages are chosen (when a query
            // is planned) or skipped (by the tasks reading row ranges).
            let policy = if options.page_index || options.row_ranges.is_some() {
                PageIndexPolicy::Optional
            } else {
                PageIndexPolicy::Skip
            };
            let meta = guard_decoder(&p, "parquet", || {
                ArrowReaderMetadata::load(
                    &file,
                    ArrowReaderOptions::new().with_page_index_policy(policy),
                )
                .map_err(|e| parquet_error(&p, e))
            })?;
            check_footer(&p, &meta, len)?;
            if let Some(first) = files.first() {
                if first.meta.schema().fields() != meta.schema().fields() {
                    return Err(Error::InconsistentParts {
                        difference: schema_difference(first.meta.schema(), meta.schema()),
                        path: p,
                        first: first.path.clone(),
                        what: "schema",
                    });
                }
            }
            let pairs = if is_dir {
                hive_pairs(path, &p)?
            } else {
                Vec::new()
            };
            let names: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
            match &key_names {
                None => key_names = Some(names),
                Some(expected) if *expected != names => {
                    return Err(Error::InconsistentParts {
                        difference: format!(
                            "partition directories {} where it has {}",
                            key_list(&names),
                            key_list(expected)
                        ),
                        first: files.first().map_or_else(PathBuf::new, |f| f.path.clone()),
                        path: p,
                        what: "set of partition keys",
                    });
                }
                Some(_) => {}
            }
            let values = pairs
                .into_iter()
                .map(|(_, v)| (v != HIVE_NULL).then_some(v))
                .collect();
            files.push(PartFile {
                path: p,
                meta,
                values,
            });
        }
        let file_schema = files[0].meta.schema().clone();
        let file_columns = file_schema.fields().len();
        let keys: Vec<PartitionKey> = key_names
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(k, name)| {
                let values = files.iter().filter_map(|f| f.values[k].as_deref());
                PartitionKey {
                    name,
                    dtype: infer_key_type(values),
                }
            })
            .collect();
        let mut fields: Vec<Arc<Field>> = file_schema.fields().iter().cloned().collect();
        fields.extend(
            keys.iter()
                .map(|k| Arc::new(Field::new(k.name.clone(), k.dtype.clone(), true))),
        );
        let full = Arc::new(Schema::new_with_metadata(
            fields,
            file_schema.metadata().clone(),
        ));
        let (full, renamed) = match unique_schema(&full) {
            Some(unique) => (unique, true),
            None => (full, false),
        };
        let (projection, schema) = project(path, &full, options.columns.as_deref())?;
        let mut partitions = Vec::new();
        for (f, file) in files.iter().enumerate() {
            for rg in 0..file.meta.metadata().num_row_groups() {
                partitions.push((f, rg));
            }
        }
        if let Some(groups) = &options.row_groups {
            if let Some(&bad) = groups.iter().find(|&&g| g >= partitions.len()) {
                return Err(Error::InvalidOption {
                    option: "row_groups",
                    value: bad.to_string(),
                    reason: format!(
                        "no such row group: {} has {} row groups",
                        path.display(),
                        partitions.len()
                    ),
                });
            }
            partitions = groups.iter().map(|&g| partitions[g]).collect();
        }
        if let Some(ranges) = &options.row_ranges {
            check_row_ranges(path, &files, &partitions, ranges)?;
        }
        let rebuild = renamed || !keys.is_empty() || projection.is_some();
        Ok(ParquetSource {
            row_ranges: options.row_ranges.clone(),
            files,
            partitions,
            projection,
            schema,
            batch_rows: options.batch_rows,
            file_columns,
            keys,
            rebuild,
            renamed,
        })
    }

    /// The reader metadata and output schema of partition `partition` read with
    /// the output columns `dictionaries` as Arrow dictionaries: those of them
    /// that are string or binary columns of the file and whose every data page
    /// in the partition's row group is dictionary-encoded. (A plain page would
    /// make the reader hash every value to build a dictionary, which costs more
    /// than the expansion it spares.) The file's own metadata and the planned
    /// schema when none is.
    fn dictionary_reading(
        &self,
        partition: usize,
        dictionaries: &[usize],
    ) -> (ArrowReaderMetadata, SchemaRef) {
        let (f, rg) = self.partitions[partition];
        let part = &self.files[f];
        let plain = (part.meta.clone(), self.schema.clone());
        let group = part.meta.metadata().row_group(rg);
        if dictionaries.is_empty() || group.num_columns() != self.file_columns {
            return plain;
        }
        let mut file_fields: Vec<Arc<Field>> = part.meta.schema().fields().to_vec();
        let mut out_fields: Vec<Arc<Field>> = self.schema.fields().to_vec();
        let mut any = false;
        for &c in dictionaries {
            let column = match &self.projection {
                Some(p) => p.get(c).copied(),
                None => Some(c),
            };
            let Some(column) = column.filter(|&column| column < self.file_columns) else {
                continue;
            };
            let (Some(field), Some(chunk)) = (out_fields.get(c), group.columns().get(column))
            else {
                continue;
            };
            let bytes = matches!(
                field.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary
            );
            if !bytes
                || file_fields[column].data_type() != field.data_type()
                || !all_dictionary(chunk)
            {
                continue;
            }
            let dictionary = DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(field.data_type().clone()),
            );
            file_fields[column] = Arc::new(
                file_fields[column]
                    .as_ref()
                    .clone()
                    .with_data_type(dictionary.clone()),
            );
            out_fields[c] = Arc::new(field.as_ref().clone().with_data_type(dictionary));
            any = true;
        }
        if !any {
            return plain;
        }
        let hint = Arc::new(Schema::new_with_metadata(
            file_fields,
            part.meta.schema().metadata().clone(),
        ));
        // A hint the reader refuses only costs the saving: read as planned.
        match ArrowReaderMetadata::try_new(
            part.meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(hint),
        ) {
            Ok(meta) => (
                meta,
                Arc::new(Schema::new_with_metadata(
                    out_fields,
                    self.schema.metadata().clone(),
                )),
            ),
            Err(_) => plain,
        }
    }

    /// A column of `rows` copies of part `file`'s value for partition key `key`.
    fn key_column(&self, file: usize, key: usize, rows: usize) -> Result<ArrayRef> {
        let k = &self.keys[key];
        let Some(value) = self.files[file].values[key].as_deref() else {
            return Ok(new_null_array(&k.dtype, rows));
        };
        let bad = || {
            // The key's type was inferred from every value, this one included.
            Error::bug(
                "a partition value does not parse as its inferred type",
                format!("\"{value}\" of key {}", k.name),
            )
        };
        Ok(match k.dtype {
            DataType::Int32 => Arc::new(Int32Array::from_value(
                value.parse().map_err(|_| bad())?,
                rows,
            )),
            DataType::Int64 => Arc::new(Int64Array::from_value(
                value.parse().map_err(|_| bad())?,
                rows,
            )),
            _ => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                value, rows,
            ))),
        })
    }
}

impl FrameSource for ParquetSource {
    fn format(&self) -> &'static str {
        "parquet"
    }

    fn column_stats(&self, column: &str) -> Option<ColumnStats> {
        if self.renamed {
            return None;
        }
        let file_schema = self.files.first()?.meta.schema();
        let (mut mins, mut maxes) = (Vec::new(), Vec::new());
        let (mut null_counts, mut rows) = (Vec::new(), Vec::new());
        for &(f, rg) in &self.partitions {
            let meta = self.files[f].meta.metadata();
            // A partition key, or a column the file lacks, has no statistics.
            let converter = StatisticsConverter::try_new(
                column,
                file_schema.as_ref(),
                meta.file_metadata().schema_descr(),
            )
            .ok()?;
            let group = std::iter::once(meta.row_group(rg));
            mins.push(converter.row_group_mins(group.clone()).ok()?);
            maxes.push(converter.row_group_maxes(group.clone()).ok()?);
            let nulls = converter.row_group_null_counts(group).ok()?;
            null_counts.push(nulls.is_valid(0).then(|| nulls.value(0)));
            rows.push(meta.row_group(rg).num_rows().max(0) as u64);
        }
        let joined = |parts: Vec<ArrayRef>| {
            let refs: Vec<&dyn arrow::array::Array> = parts.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs).ok()
        };
        Some(ColumnStats {
            mins: joined(mins)?,
            maxes: joined(maxes)?,
            null_counts,
            rows,
        })
    }

    fn page_stats(&self, column: &str, partition: usize) -> Option<PageStats> {
        if self.renamed {
            return None;
        }
        let (f, rg) = *self.partitions.get(partition)?;
        let file = &self.files[f];
        let meta = file.meta.metadata();
        let index = meta.page_index()?;
        let converter = StatisticsConverter::try_new(
            column,
            file.meta.schema().as_ref(),
            meta.file_metadata().schema_descr(),
        )
        .ok()?;
        let groups = [rg];
        let mins = converter.data_page_mins(index.as_ref(), &groups).ok()?;
        let maxes = converter.data_page_maxes(index.as_ref(), &groups).ok()?;
        let nulls = converter
            .data_page_null_counts(index.as_ref(), &groups)
            .ok()?;
        let rows = converter
            .data_page_row_counts(index.as_ref(), meta.row_groups(), &groups)
            .ok()??;
        if rows.is_empty() || rows.null_count() > 0 || rows.len() != mins.len() {
            return None;
        }
        let rows: Vec<u64> = rows.values().to_vec();
        let first_rows = rows
            .iter()
            .scan(0u64, |at, &n| {
                let first = *at;
                *at += n;
                Some(first)
            })
            .collect();
        Some(PageStats {
            stats: ColumnStats {
                mins,
                maxes,
                null_counts: (0..nulls.len())
                    .map(|i| nulls.is_valid(i).then(|| nulls.value(i)))
                    .collect(),
                rows,
            },
            first_rows,
        })
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn num_partitions(&self) -> usize {
        self.partitions.len()
    }

    fn num_rows(&self) -> Option<u64> {
        if let Some(ranges) = &self.row_ranges {
            return Some(ranges.iter().flatten().map(|(a, b)| b - a).sum());
        }
        Some(
            self.partitions
                .iter()
                .map(|&(f, rg)| self.files[f].meta.metadata().row_group(rg).num_rows() as u64)
                .sum(),
        )
    }

    fn partition_bytes(&self, partition: usize) -> u64 {
        let (f, rg) = self.partitions[partition];
        let group = self.files[f].meta.metadata().row_group(rg);
        match &self.projection {
            // Only the projected columns' chunks are read (flat schemas: one leaf each).
            Some(cols) if cols.len() < group.num_columns() => cols
                .iter()
                .filter(|&&c| c < self.file_columns)
                .filter_map(|&c| group.columns().get(c))
                .map(|c| c.compressed_size() as u64)
                .sum(),
            _ => group.compressed_size() as u64,
        }
    }

    fn partition_memory_bytes(&self, partition: usize) -> u64 {
        let (f, rg) = self.partitions[partition];
        let group = self.files[f].meta.metadata().row_group(rg);
        let rows = group.num_rows().max(0) as u64;
        let flat = group.num_columns() == self.file_columns;
        let wanted: Vec<usize> = match &self.projection {
            Some(cols) => cols.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        // The schema's fields are the wanted columns, in order.
        wanted
            .iter()
            .zip(self.schema.fields())
            .map(|(&c, field)| {
                let chunk = (flat && c < self.file_columns)
                    .then(|| group.columns().get(c))
                    .flatten();
                decoded_bytes(field.data_type(), rows, chunk)
            })
            .sum::<u64>()
            .max(self.partition_bytes(partition))
    }

    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>> {
        self.read_partition_as(partition, &[])
    }

    fn read_partition_as(&self, partition: usize, dictionaries: &[usize]) -> Result<BatchIter<'_>> {
        let (f, rg) = self.partitions[partition];
        let part = &self.files[f];
        let file = File::open(&part.path).at(&part.path)?;
        let (meta, schema) = self.dictionary_reading(partition, dictionaries);
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
            .with_row_groups(vec![rg])
            .with_batch_size(self.batch_rows);
        if let Some(ranges) = self.row_ranges.as_ref().and_then(|r| r.get(partition)) {
            let rows = part.meta.metadata().row_group(rg).num_rows().max(0) as usize;
            let ranges = ranges.iter().map(|&(a, b)| a as usize..b as usize);
            builder =
                builder.with_row_selection(RowSelection::from_consecutive_ranges(ranges, rows));
        }
        // The output columns, as indices into the full schema (file columns, then
        // partition keys).
        let wanted: Vec<usize> = match &self.projection {
            Some(cols) => cols.clone(),
            None => (0..self.file_columns + self.keys.len()).collect(),
        };
        // The reader yields the file columns read in file order.
        let mut in_file: Vec<usize> = wanted
            .iter()
            .copied()
            .filter(|&c| c < self.file_columns)
            .collect();
        in_file.sort_unstable();
        in_file.dedup();
        if in_file.len() < self.file_columns {
            let mask = ProjectionMask::roots(part.meta.parquet_schema(), in_file.iter().copied());
            builder = builder.with_projection(mask);
        }
        let reader = guard_decoder(&part.path, "parquet", || {
            builder.build().map_err(|e| parquet_error(&part.path, e))
        })?;
        let path = part.path.clone();
        let mut reader = reader;
        let mut failed = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = guard_decoder(&path, "parquet", || {
                reader
                    .next()
                    .transpose()
                    .map_err(|e| Error::corrupt(&path, "parquet", decoder_detail(&e)))
            })
            .transpose()?
            .and_then(|batch| {
                if !self.rebuild {
                    return Ok(batch);
                }
                let rows = batch.num_rows();
                let columns = wanted
                    .iter()
                    .map(|&c| match in_file.binary_search(&c) {
                        Ok(i) if c < self.file_columns => Ok(batch.column(i).clone()),
                        _ => self.key_column(f, c - self.file_columns, rows),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let options = RecordBatchOptions::new().with_row_count(Some(rows));
                Ok(RecordBatch::try_new_with_options(
                    schema.clone(),
                    columns,
                    &options,
                )?)
            });
            failed = next.is_err();
            Some(next)
        })))
    }

    fn details(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut details = vec![
            ("files", self.files.len().into()),
            ("row_groups", self.partitions.len().into()),
        ];
        if !self.keys.is_empty() {
            let names: Vec<String> = self.keys.iter().map(|k| k.name.clone()).collect();
            details.push(("partition_keys", names.into()));
        }
        details
    }
}

/// Whether every data page of a column chunk is dictionary-encoded, by its page
/// encoding statistics where the writer kept them, else by its list of
/// encodings (DuckDB lists only the dictionary's; writers that also list
/// `PLAIN`, for the dictionary page, keep the statistics).
fn all_dictionary(chunk: &ColumnChunkMetaData) -> bool {
    let dictionary =
        |e: Encoding| matches!(e, Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY);
    if chunk.dictionary_page_offset().is_none() {
        return false;
    }
    if let Some(mask) = chunk.page_encoding_stats_mask() {
        return mask.is_only(Encoding::PLAIN_DICTIONARY) || mask.is_only(Encoding::RLE_DICTIONARY);
    }
    if let Some(stats) = chunk.page_encoding_stats() {
        return stats
            .iter()
            .filter(|s| matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2))
            .all(|s| dictionary(s.encoding));
    }
    chunk
        .encodings()
        .all(|e| dictionary(e) || e == Encoding::RLE)
}

/// Row ranges that fit their row groups: one list a partition, each range
/// non-empty, in order and apart from the others (a plan is input like any other).
fn check_row_ranges(
    path: &Path,
    files: &[PartFile],
    partitions: &[(usize, usize)],
    ranges: &[Vec<(u64, u64)>],
) -> Result<()> {
    let bad = |reason: String| Error::InvalidOption {
        option: "row_ranges",
        value: format!("{} lists", ranges.len()),
        reason,
    };
    if ranges.len() != partitions.len() {
        return Err(bad(format!(
            "{} reads {} row groups",
            path.display(),
            partitions.len()
        )));
    }
    for (p, (&(f, rg), list)) in partitions.iter().zip(ranges).enumerate() {
        let rows = files[f].meta.metadata().row_group(rg).num_rows().max(0) as u64;
        let mut end = 0;
        for &(a, b) in list {
            if a < end || b <= a || b > rows {
                return Err(bad(format!(
                    "partition {p}: rows {a}..{b} after row {end}, of {rows} rows"
                )));
            }
            end = b;
        }
    }
    Ok(())
}

/// About what `rows` values of `dtype` take decoded: the fixed width, or for
/// byte arrays the offsets plus the values' bytes (Parquet's unencoded size when
/// the writer recorded it; dictionary pages understate it, so at least 8 a value).
/// Other types count the chunk's uncompressed size.
fn decoded_bytes(
    dtype: &DataType,
    rows: u64,
    chunk: Option<&parquet::file::metadata::ColumnChunkMetaData>,
) -> u64 {
    let uncompressed = chunk.map_or(0, |c| c.uncompressed_size().max(0) as u64);
    let validity = rows.div_ceil(8);
    if let Some(width) = dtype.primitive_width() {
        return rows * width as u64 + validity;
    }
    match dtype {
        DataType::Boolean => 2 * validity,
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => {
            let values = chunk
                .and_then(|c| c.unencoded_byte_array_data_bytes())
                .map_or(0, |b| b.max(0) as u64)
                .max(uncompressed)
                .max(8 * rows);
            let offsets = if matches!(dtype, DataType::Utf8 | DataType::Binary) {
                4
            } else {
                8
            };
            rows * offsets + values + validity
        }
        _ => uncompressed.max(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_values_decode_and_infer_like_pyarrow() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("c%2Fd"), "c/d");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(infer_key_type(["1", "-2"].into_iter()), DataType::Int32);
        assert_eq!(infer_key_type(["3000000000"].into_iter()), DataType::Int64);
        assert_eq!(infer_key_type(["1", "x"].into_iter()), DataType::Utf8);
        let pairs = hive_pairs(
            Path::new("/d"),
            Path::new("/d/year=2020/city=a%20b/p.parquet"),
        )
        .unwrap();
        assert_eq!(infer_key_type(["+2", "1"].into_iter()), DataType::Utf8);
        let e = hive_pairs(Path::new("/d"), Path::new("/d/=x/p.parquet")).unwrap_err();
        assert!(e.to_string().contains("/d/=x"), "{e}");
        assert_eq!(
            pairs,
            vec![
                ("year".into(), "2020".into()),
                ("city".into(), "a b".into())
            ]
        );
    }
}
