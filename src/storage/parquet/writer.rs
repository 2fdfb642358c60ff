//! Writing Parquet.
//!
//! Batches are encoded straight into an open row group's column writers, so what is
//! buffered is encoded pages, not Arrow arrays; each batch's columns are encoded in
//! parallel. A plan's table output encodes each part as a small file this way (see
//! [`super::parts`]), on the thread of the part's task.
//!
//! Every open column writer holds a zstd context and encoder state (about 40 KB even
//! for one value), so a schema with tens of thousands of columns would need gigabytes
//! for a few KB of data. Schemas with more than [`WIDE_LEAVES`] leaf columns therefore
//! buffer a row group's batches (bounded in bytes) and encode them in slices of about
//! [`SLICE_LEAVES`] leaves: writers exist for one slice at a time, each built by a
//! factory for the slice's top-level fields alone, whose leaves describe themselves
//! exactly as in the whole schema, so the closed chunks append to the real row group.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
    InMemoryPageStore, PageKey, PageStore, PageStoreArgs, PageStoreFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type as ParquetType;
use rayon::prelude::*;

use super::parquet_error;
use crate::error::{Error, Result};
use crate::storage::distinct::{distinct_values, estimated_keys, expected_distinct};

/// The row-group row limit used when none is given (pyarrow's default).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 20;
/// Row groups are also cut at this many buffered bytes, so wide rows stay bounded.
pub const ROW_GROUP_BYTES: usize = 128 << 20;

/// Schemas with more leaf columns than this are encoded in column slices.
pub const WIDE_LEAVES: usize = 256;
/// Leaf columns encoded at once in a wide schema: at about 40 KB of writer state a
/// column (zstd contexts, encoders), a slice holds a few MB on each encoding thread.
pub const SLICE_LEAVES: usize = 64;
/// Arrow bytes a wide schema's row group buffers before it is encoded.
pub const WIDE_ROW_GROUP_BYTES: usize = 32 << 20;

/// How to write Parquet.
#[derive(Debug, Clone, Copy)]
pub struct ParquetWriteOptions {
    /// zstd level, or `None` for no compression.
    pub zstd_level: Option<i32>,
    /// Rows per row group at most.
    pub row_group_rows: usize,
}

impl Default for ParquetWriteOptions {
    fn default() -> Self {
        ParquetWriteOptions {
            zstd_level: Some(3),
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }
}

/// What every encoding thread shares: the schema, the column writer factory, limits.
struct Shared {
    path: PathBuf,
    schema: SchemaRef,
    factory: ArrowRowGroupWriterFactory,
    row_group_rows: usize,
    /// Encoded bytes a row group may buffer before it is closed.
    row_group_bytes: usize,
    /// For wide schemas, the column slices encoded one at a time; empty otherwise.
    slices: Vec<ColumnSlice>,
    /// Leaf columns of the schema.
    leaves: usize,
    /// The file's writer properties, for the writers of wide schemas' slices.
    props: WriterProperties,
}

/// Some consecutive top-level fields of a wide schema.
///
/// Its writer factory is built each time a row group is encoded rather than kept:
/// factories for every slice would hold a second copy of the whole Parquet schema,
/// and building one for ~64 columns is cheap beside encoding them.
struct ColumnSlice {
    fields: Range<usize>,
}

impl ColumnSlice {
    /// A writer factory for the slice's fields alone.
    ///
    /// It comes from a writer over `io::sink` for those fields: the Arrow-to-Parquet
    /// conversion of a top-level field does not depend on its neighbours, so its
    /// leaves (path, type, levels) equal those in the whole file's schema, as
    /// `append_to_row_group` checks.
    fn factory(&self, shared: &Shared) -> Result<ArrowRowGroupWriterFactory> {
        let fields = shared.schema.fields()[self.fields.clone()].to_vec();
        // The sink's footer is never written, so the Arrow schema it would carry is
        // not worth encoding.
        let options = ArrowWriterOptions::new()
            .with_properties(shared.props.clone())
            .with_skip_arrow_metadata(true);
        let writer = ArrowWriter::try_new_with_options(
            std::io::sink(),
            Arc::new(Schema::new(fields)),
            options,
        )
        .map_err(|e| parquet_error(&shared.path, e))?;
        let (_, factory) = writer
            .into_serialized_writer()
            .map_err(|e| parquet_error(&shared.path, e))?;
        Ok(factory.with_page_store_factory(Arc::new(CompactPageStoreFactory)))
    }
}

/// A finished row group: its column chunks, ready to append.
struct EncodedRowGroup {
    chunks: Vec<ArrowColumnChunk>,
}

/// A row group being encoded.
struct OpenRowGroup {
    /// Narrow schemas: the column writers, fed as batches arrive.
    writers: Vec<ArrowColumnWriter>,
    /// Wide schemas: the batches, encoded slice by slice when the group closes.
    batches: Vec<RecordBatch>,
    /// Estimated Arrow bytes of `batches`.
    batch_bytes: usize,
    rows: usize,
}

impl Shared {
    fn is_wide(&self) -> bool {
        !self.slices.is_empty()
    }

    fn open(&self) -> Result<OpenRowGroup> {
        // The index only matters for encrypted files, which we do not write.
        let writers = if self.is_wide() {
            Vec::new()
        } else {
            self.factory
                .create_column_writers(0)
                .map_err(|e| parquet_error(&self.path, e))?
        };
        Ok(OpenRowGroup {
            writers,
            batches: Vec::new(),
            batch_bytes: 0,
            rows: 0,
        })
    }

    /// Buffered bytes at which a row group is closed.
    fn byte_cap(&self) -> usize {
        if self.is_wide() {
            self.row_group_bytes.min(WIDE_ROW_GROUP_BYTES)
        } else {
            self.row_group_bytes
        }
    }

    /// Encodes `batch` (which fits the open row group) into `group`; a wide schema's
    /// group keeps it (`bytes` of it) for [`Shared::close`].
    fn encode(
        &self,
        group: &mut OpenRowGroup,
        batch: &RecordBatch,
        bytes: usize,
        parallel: bool,
    ) -> Result<()> {
        if self.is_wide() {
            group.batches.push(batch.clone());
            group.batch_bytes += bytes;
            group.rows += batch.num_rows();
            return Ok(());
        }
        let mut leaves = Vec::with_capacity(group.writers.len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column).map_err(|e| parquet_error(&self.path, e))?);
        }
        let result = if parallel {
            group
                .writers
                .par_iter_mut()
                .zip(leaves.into_par_iter())
                .try_for_each(|(w, leaf)| w.write(&leaf))
        } else {
            group
                .writers
                .iter_mut()
                .zip(leaves)
                .try_for_each(|(w, leaf)| w.write(&leaf))
        };
        result.map_err(|e| parquet_error(&self.path, e))?;
        group.rows += batch.num_rows();
        Ok(())
    }

    fn is_full(&self, group: &OpenRowGroup) -> bool {
        group.rows >= self.row_group_rows || buffered(group) >= self.byte_cap()
    }

    fn close(&self, group: OpenRowGroup, parallel: bool) -> Result<EncodedRowGroup> {
        if self.is_wide() {
            return self.close_wide(&group.batches, parallel);
        }
        let chunks = if parallel {
            group
                .writers
                .into_par_iter()
                .map(ArrowColumnWriter::close)
                .collect::<std::result::Result<Vec<_>, ParquetError>>()
        } else {
            group
                .writers
                .into_iter()
                .map(ArrowColumnWriter::close)
                .collect()
        };
        Ok(EncodedRowGroup {
            chunks: chunks.map_err(|e| parquet_error(&self.path, e))?,
        })
    }

    /// Encodes a wide schema's buffered `batches` one column slice at a time (slices
    /// in parallel when `parallel`), so only one slice's writers exist per thread.
    fn close_wide(&self, batches: &[RecordBatch], parallel: bool) -> Result<EncodedRowGroup> {
        let encode_slice = |slice: &ColumnSlice| -> Result<Vec<ArrowColumnChunk>> {
            let mut writers = slice
                .factory(self)?
                .create_column_writers(0)
                .map_err(|e| parquet_error(&self.path, e))?;
            for batch in batches {
                let mut next = writers.iter_mut();
                for i in slice.fields.clone() {
                    let leaves = compute_leaves(&self.schema.fields()[i], batch.column(i))
                        .map_err(|e| parquet_error(&self.path, e))?;
                    for leaf in leaves {
                        let writer = next.next().ok_or_else(|| {
                            Error::bug("a Parquet slice has fewer writers than leaves", "")
                        })?;
                        writer
                            .write(&leaf)
                            .map_err(|e| parquet_error(&self.path, e))?;
                    }
                }
            }
            // Into a new vector: collecting in place would keep the writers' larger
            // allocation (about twice a chunk's size) for every column of the group.
            let mut chunks = Vec::with_capacity(writers.len());
            for writer in writers {
                chunks.push(writer.close().map_err(|e| parquet_error(&self.path, e))?);
            }
            Ok(chunks)
        };
        let mut chunks = Vec::with_capacity(self.leaves);
        if parallel {
            let slices = self
                .slices
                .par_iter()
                .map(encode_slice)
                .collect::<Result<Vec<_>>>()?;
            for slice in slices {
                chunks.extend(slice);
            }
        } else {
            for slice in &self.slices {
                chunks.extend(encode_slice(slice)?);
            }
        }
        Ok(EncodedRowGroup { chunks })
    }

    /// Feeds `batch` into `open` (opening groups as needed), handing every group that
    /// fills up to `done`.
    fn push(
        &self,
        open: &mut Option<OpenRowGroup>,
        batch: &RecordBatch,
        parallel: bool,
        done: &mut dyn FnMut(EncodedRowGroup) -> Result<()>,
    ) -> Result<()> {
        // A wide group holds Arrow data, so it is cut by bytes too; the bytes of a row
        // are estimated once per batch (slices share their parent's buffers).
        let row_bytes = if self.is_wide() && batch.num_rows() > 0 {
            batch
                .get_array_memory_size()
                .div_ceil(batch.num_rows())
                .max(1)
        } else {
            0
        };
        let mut offset = 0;
        while offset < batch.num_rows() {
            let group = match open {
                Some(g) => g,
                None => open.insert(self.open()?),
            };
            let mut take = (self.row_group_rows - group.rows).min(batch.num_rows() - offset);
            if let Some(room) = self
                .byte_cap()
                .saturating_sub(group.batch_bytes)
                .checked_div(row_bytes)
            {
                take = take.min(room.max(1));
            }
            self.encode(
                group,
                &batch.slice(offset, take),
                take * row_bytes,
                parallel,
            )?;
            offset += take;
            if self.is_full(group) {
                if let Some(full) = open.take() {
                    done(self.close(full, parallel)?)?;
                }
            }
        }
        Ok(())
    }
}

fn buffered(group: &OpenRowGroup) -> usize {
    group
        .writers
        .iter()
        .map(ArrowColumnWriter::memory_size)
        .sum::<usize>()
        + group.batch_bytes
}

/// Blobs shorter than this are copied when a wide schema's column chunk keeps them.
const COMPACT_BLOB_BYTES: usize = 4096;

/// Keeps a column chunk's pages in memory like the parquet crate's default store, but
/// copies short blobs: every page header is serialized into a 1 KB buffer that the
/// default store keeps whole, so a wide row group's closed chunks (a few bytes of
/// header each) would hold 2 KB a column until they are appended.
struct CompactPageStore(InMemoryPageStore);

impl PageStore for CompactPageStore {
    fn put(&mut self, value: Bytes) -> parquet::errors::Result<PageKey> {
        let value = if value.len() < COMPACT_BLOB_BYTES {
            Bytes::copy_from_slice(&value)
        } else {
            value
        };
        self.0.put(value)
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        self.0.take(key)
    }

    fn memory_size(&self) -> usize {
        self.0.memory_size()
    }
}

/// Makes a [`CompactPageStore`] for every column chunk of a wide schema's slice.
#[derive(Debug)]
struct CompactPageStoreFactory;

impl PageStoreFactory for CompactPageStoreFactory {
    fn create(&self, _args: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        Ok(Box::new(CompactPageStore(InMemoryPageStore::default())))
    }
}

/// Leaf columns under a Parquet schema node.
fn leaf_count(node: &ParquetType) -> usize {
    if node.is_primitive() {
        1
    } else {
        node.get_fields().iter().map(|f| leaf_count(f)).sum()
    }
}

/// Splits a wide schema's top-level fields into slices of about [`SLICE_LEAVES`]
/// leaves; none for a narrow schema.
fn column_slices<W: Write + Send>(
    schema: &SchemaRef,
    file: &SerializedFileWriter<W>,
) -> Vec<ColumnSlice> {
    let descr = file.schema_descr();
    let top = descr.root_schema().get_fields();
    if descr.num_columns() <= WIDE_LEAVES || top.len() != schema.fields().len() {
        return Vec::new();
    }
    let mut slices = Vec::new();
    let mut start = 0;
    let mut leaves = 0;
    for (i, node) in top.iter().enumerate() {
        leaves += leaf_count(node);
        if leaves >= SLICE_LEAVES || i + 1 == top.len() {
            slices.push(ColumnSlice {
                fields: start..i + 1,
            });
            start = i + 1;
            leaves = 0;
        }
    }
    slices
}

/// A Parquet file being written, into a file or (for the parts of an assembled
/// output) into memory.
pub struct ParquetSink<W: Write + Send> {
    shared: Arc<Shared>,
    writer: SerializedFileWriter<W>,
    open: Option<OpenRowGroup>,
}

/// parquet-rs's limit on a column chunk's dictionary page: past it, the chunk
/// goes on in plain encoding, its dictionary and the values interned into it
/// so far wasted.
const DICTIONARY_PAGE_BYTES: f64 = (1 << 20) as f64;

/// Rows of a sample a column's dictionary is judged by, at most and at least.
const SAMPLE_ROWS: usize = 16 << 10;
const MIN_SAMPLE_ROWS: usize = 4 << 10;

/// The columns (indices) of `sample`, a file's first rows, whose dictionary
/// would outgrow its page in a row group of `group_rows` rows, judged from the
/// distinct values of its first rows: the values a row group holds, from the
/// domain that many distinct in that many rows implies. Interning them until
/// the page is full cost a part of q10's output (a million groups a part, a
/// million distinct `id3` and `id6`) a tenth of its encoding. Clustered values
/// (a sorted column) look fewer than they are, and keep their dictionary, as
/// without a sample.
fn overflowing_dictionaries(sample: &RecordBatch, group_rows: usize) -> Vec<usize> {
    let rows = sample.num_rows().min(SAMPLE_ROWS);
    if rows < MIN_SAMPLE_ROWS {
        return Vec::new();
    }
    let in_group = group_rows.max(rows);
    sample
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, column)| {
            let Some((distinct, bytes)) = distinct_values(&column.slice(0, rows)) else {
                return false;
            };
            let per_value = bytes as f64 / distinct.max(1) as f64;
            let domain = estimated_keys(distinct, rows);
            expected_distinct(domain, in_group) * per_value > DICTIONARY_PAGE_BYTES
        })
        .map(|(i, _)| i)
        .collect()
}

/// The writer properties of every Parquet file blockwise writes.
///
/// Statistics are kept per column chunk, not per page, and no page index is written:
/// a file assembled from parts (see [`super::parts`]) copies column chunks verbatim
/// and rewrites only the footer, where a page index would point into the parts.
/// Floating-point columns are written plain: their values rarely repeat, so a
/// dictionary only adds pages that are later abandoned (15% larger than plain on
/// db-benchmark's `v3`). So are the columns `plain` names (their indices), whose
/// dictionary a sample says would be abandoned ([`overflowing_dictionaries`]).
fn writer_properties(
    schema: &Schema,
    options: &ParquetWriteOptions,
    plain: &[usize],
) -> Result<WriterProperties> {
    let compression = match options.zstd_level {
        Some(level) => {
            Compression::ZSTD(ZstdLevel::try_new(level).map_err(|e| Error::InvalidOption {
                option: "compression",
                value: format!("zstd:{level}"),
                reason: e.to_string(),
            })?)
        }
        None => Compression::UNCOMPRESSED,
    };
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true);
    // (Per-column properties are looked up for every column of every slice a wide
    // schema is encoded in, so wide schemas keep the default.)
    for (i, field) in schema
        .fields()
        .iter()
        .enumerate()
        .filter(|_| schema.fields().len() <= WIDE_LEAVES)
    {
        if field.data_type().is_floating() || plain.contains(&i) {
            builder = builder.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(field.name().as_str()),
                false,
            );
        }
    }
    Ok(builder.build())
}

impl<W: Write + Send> ParquetSink<W> {
    /// A Parquet file for rows of `schema` written into `out`; `path` names it in
    /// messages.
    ///
    /// # Errors
    /// When the options are invalid or `out` cannot be written.
    pub fn create_in(
        out: W,
        path: &Path,
        schema: SchemaRef,
        options: ParquetWriteOptions,
    ) -> Result<Self> {
        Self::create_sampled(out, path, schema, options, None)
    }

    /// [`ParquetSink::create_in`] for rows whose first batch is `sample`: the
    /// columns whose dictionary it says would outgrow its page are written
    /// plain from the start ([`overflowing_dictionaries`]).
    ///
    /// # Errors
    /// As [`ParquetSink::create_in`].
    pub fn create_sampled(
        out: W,
        path: &Path,
        schema: SchemaRef,
        options: ParquetWriteOptions,
        sample: Option<&RecordBatch>,
    ) -> Result<Self> {
        let plain = sample.map_or_else(Vec::new, |s| {
            overflowing_dictionaries(s, options.row_group_rows)
        });
        let props = writer_properties(&schema, &options, &plain)?;
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props.clone()))
            .map_err(|e| parquet_error(path, e))?;
        let (writer, factory) = writer
            .into_serialized_writer()
            .map_err(|e| parquet_error(path, e))?;
        let slices = column_slices(&schema, &writer);
        let shared = Shared {
            path: path.to_path_buf(),
            schema,
            factory,
            row_group_rows: options.row_group_rows.max(1),
            row_group_bytes: ROW_GROUP_BYTES,
            slices,
            leaves: writer.schema_descr().num_columns(),
            props,
        };
        Ok(ParquetSink {
            shared: Arc::new(shared),
            writer,
            open: None,
        })
    }

    /// Caps each row group at `bytes` of encoded pages (at least 4 KiB), so that an
    /// encoder holds about that much.
    pub fn with_row_group_bytes(mut self, bytes: usize) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.row_group_bytes = bytes.clamp(4096, ROW_GROUP_BYTES);
        }
        self
    }

    fn append(&mut self, group: EncodedRowGroup) -> Result<()> {
        let path = &self.shared.path;
        let mut row_group = self
            .writer
            .next_row_group()
            .map_err(|e| parquet_error(path, e))?;
        for chunk in group.chunks {
            chunk
                .append_to_row_group(&mut row_group)
                .map_err(|e| parquet_error(path, e))?;
        }
        row_group.close().map_err(|e| parquet_error(path, e))?;
        Ok(())
    }

    /// Writes the last row group and the footer, and hands back the output.
    ///
    /// # Errors
    /// When the data cannot be encoded or written.
    pub fn into_inner(mut self) -> Result<W> {
        if let Some(group) = self.open.take() {
            let encoded = self.shared.close(group, !self.shared.is_wide())?;
            self.append(encoded)?;
        }
        let path = self.shared.path.clone();
        self.writer
            .into_inner()
            .map_err(|e| parquet_error(&path, e))
    }
}

impl<W: Write + Send> ParquetSink<W> {
    /// Appends a batch (of the sink's schema).
    ///
    /// # Errors
    /// When the data cannot be encoded or written.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let shared = self.shared.clone();
        let mut open = self.open.take();
        let mut finished = Vec::new();
        // A wide schema's slices are encoded one after another: in parallel, every
        // slice's closed chunks (hundreds of bytes a column) would be held twice
        // while they are gathered. Parts are encoded in parallel anyway.
        let parallel = !shared.is_wide();
        shared.push(&mut open, batch, parallel, &mut |group| {
            finished.push(group);
            Ok(())
        })?;
        for group in finished {
            self.append(group)?;
        }
        self.open = open;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, Int64Array, ListArray, StringArray, StructArray};
    use arrow::datatypes::{DataType, Field, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A schema past [`WIDE_LEAVES`] with nested columns (a list, a struct of two
    /// leaves) placed so that they fall inside slices and across a slice boundary.
    fn wide_batch(rows: usize, offset: i64) -> RecordBatch {
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for i in 0..300 {
            match i {
                5 | 63 | 200 => {
                    let list = ListArray::from_iter_primitive::<Int64Type, _, _>(
                        (0..rows as i64).map(|r| {
                            (r % 3 != 0)
                                .then(|| (0..r % 4).map(|v| Some(v + offset)).collect::<Vec<_>>())
                        }),
                    );
                    fields.push(Field::new(format!("l{i}"), list.data_type().clone(), true));
                    columns.push(Arc::new(list));
                }
                62 | 64 | 150 => {
                    let a: ArrayRef = Arc::new(Int64Array::from_iter(
                        (0..rows as i64).map(|r| (r % 5 != 0).then_some(r + offset)),
                    ));
                    let b: ArrayRef = Arc::new(StringArray::from_iter_values(
                        (0..rows).map(|r| format!("s{r}")),
                    ));
                    let s = StructArray::from(vec![
                        (Arc::new(Field::new("a", DataType::Int64, true)), a),
                        (Arc::new(Field::new("b", DataType::Utf8, false)), b),
                    ]);
                    fields.push(Field::new(format!("s{i}"), s.data_type().clone(), false));
                    columns.push(Arc::new(s));
                }
                _ => {
                    let v = Int64Array::from_iter_values((0..rows as i64).map(|r| r * i + offset));
                    fields.push(Field::new(format!("c{i}"), DataType::Int64, false));
                    columns.push(Arc::new(v));
                }
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn read_back(bytes: Vec<u8>) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_wide_schema_with_nested_columns_is_written_in_slices_and_reads_back_equal() {
        let path = Path::new("wide.parquet");
        let batches = [wide_batch(100, 0), wide_batch(37, 1000)];
        let schema = batches[0].schema();
        let options = ParquetWriteOptions {
            row_group_rows: 60,
            ..Default::default()
        };
        let mut sink = ParquetSink::create_in(Vec::new(), path, schema.clone(), options).unwrap();
        assert!(sink.shared.slices.len() > 1, "the schema is sliced");
        for b in &batches {
            sink.write(b).unwrap();
        }
        let got = read_back(sink.into_inner().unwrap());
        let got = arrow::compute::concat_batches(&schema, &got).unwrap();
        let want = arrow::compute::concat_batches(&schema, &batches).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn a_narrow_schema_is_not_sliced() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let sink = ParquetSink::create_in(
            Vec::new(),
            Path::new("n.parquet"),
            schema,
            ParquetWriteOptions::default(),
        )
        .unwrap();
        assert!(sink.shared.slices.is_empty());
    }

    /// The encodings of each column's first chunk in the Parquet file `bytes`.
    fn encodings(bytes: Vec<u8>) -> Vec<Vec<parquet::basic::Encoding>> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let group = reader.metadata().row_group(0).clone();
        group
            .columns()
            .iter()
            .map(|c| c.encodings().collect())
            .collect()
    }

    #[test]
    fn columns_whose_dictionary_would_overflow_are_written_plain_from_the_start() {
        use parquet::basic::Encoding;
        let rows = 200_000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("distinct", DataType::Utf8, false),
            Field::new("few", DataType::Utf8, false),
            Field::new("ids", DataType::Int64, false),
            Field::new("small", DataType::Int64, false),
        ]));
        // Strings from a domain of a million, 100 strings, integers all
        // distinct, integers from a domain of 50,000 (their dictionary, 400 KB,
        // fits its page).
        let spread = |r: i64| (r * 7_919) % 1_000_000;
        // Uniform draws (splitmix64), as the sample's estimate assumes.
        let draw = |r: i64, keys: u64| {
            let mut x = (r as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((x ^ (x >> 31)) % keys) as i64
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|r| format!("id{:010}", spread(r))),
                )),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|r| format!("id{:03}", r % 100)),
                )),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|r| r * 3))),
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|r| draw(r, 50_000)),
                )),
            ],
        )
        .unwrap();
        assert_eq!(overflowing_dictionaries(&batch, 1 << 20), vec![0, 2]);
        // A sample too small to judge: parquet's own rule.
        assert!(overflowing_dictionaries(&batch.slice(0, 1000), 1 << 20).is_empty());
        let write = |sample: Option<&RecordBatch>| {
            let path = Path::new("d.parquet");
            let mut sink = ParquetSink::create_sampled(
                Vec::new(),
                path,
                schema.clone(),
                ParquetWriteOptions::default(),
                sample,
            )
            .unwrap();
            sink.write(&batch).unwrap();
            sink.into_inner().unwrap()
        };
        let dictionary = |e: &Vec<Encoding>| {
            e.contains(&Encoding::RLE_DICTIONARY) || e.contains(&Encoding::PLAIN_DICTIONARY)
        };
        let sampled = encodings(write(Some(&batch)));
        assert_eq!(
            sampled.iter().map(dictionary).collect::<Vec<_>>(),
            [false, true, false, true]
        );
        // Without the sample, parquet starts both on a dictionary it abandons.
        let unsampled = encodings(write(None));
        assert!(unsampled.iter().all(dictionary), "{unsampled:?}");
    }
}
