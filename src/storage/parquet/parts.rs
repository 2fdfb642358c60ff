//! One Parquet file assembled from parts encoded apart.
//!
//! Each part is a small, complete Parquet file in memory ([`encode_part`]), written
//! with the same properties as the whole, so encoding runs wherever the part is made.
//! Assembling copies each part's column chunks verbatim, behind the ones before
//! ([`PartLayout::data`]), and keeps the part's footer; [`write_footer`] then writes one
//! footer whose row groups are the parts' with their offsets shifted. No value is
//! decoded or encoded again, and no page index is written (parts carry none: see
//! the writer's properties).

use std::io::Write;
use std::ops::Range;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::file::metadata::{
    FileMetaData, ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter, RowGroupMetaData,
};

use super::{parquet_error, ParquetSink, ParquetWriteOptions};
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"PAR1";

/// Encodes `batches` as one complete Parquet file in memory, in row groups of at
/// most `options.row_group_rows` rows and about `row_group_bytes` encoded bytes.
/// Returns the file and its rows. `path` names the output in messages.
///
/// # Errors
/// The batches' errors; encoding errors.
pub fn encode_part(
    path: &Path,
    schema: SchemaRef,
    options: ParquetWriteOptions,
    row_group_bytes: usize,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
) -> Result<(Bytes, u64)> {
    let mut batches = batches.peekable();
    let sample = match batches.peek() {
        Some(Ok(first)) => Some(first.clone()),
        _ => None,
    };
    let mut sink = ParquetSink::create_sampled(Vec::new(), path, schema, options, sample.as_ref())?
        .with_row_group_bytes(row_group_bytes);
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        sink.write(&batch)?;
    }
    Ok((Bytes::from(sink.into_inner()?), rows))
}

/// Where a part's pieces lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLayout {
    /// The column chunks: what is copied into the assembled file.
    pub data: Range<usize>,
    /// The footer's metadata (Thrift), kept for [`write_footer`].
    pub footer: Range<usize>,
}

/// The layout of `part`, a file made by [`encode_part`].
///
/// # Errors
/// [`Error::Corrupt`] when it is not a whole Parquet file.
pub fn part_layout(path: &Path, part: &[u8]) -> Result<PartLayout> {
    let bad = || {
        Error::corrupt(
            path,
            "parquet",
            "an encoded part is not a whole Parquet file",
        )
    };
    let len = part.len();
    if len < 12 || &part[..4] != MAGIC || &part[len - 4..] != MAGIC {
        return Err(bad());
    }
    let footer_len =
        u32::from_le_bytes([part[len - 8], part[len - 7], part[len - 6], part[len - 5]]) as usize;
    let footer_start = (len - 8)
        .checked_sub(footer_len)
        .filter(|&s| s >= 4)
        .ok_or_else(bad)?;
    Ok(PartLayout {
        data: 4..footer_start,
        footer: footer_start..len - 8,
    })
}

/// The bytes an assembled file starts with.
pub fn header() -> &'static [u8] {
    MAGIC
}

/// One part placed in the assembled file: its footer, and how far its column chunks
/// moved (their offset in the file minus their offset in the part).
pub struct PlacedPart<'a> {
    /// The part's footer metadata (see [`PartLayout::footer`]).
    pub footer: &'a [u8],
    /// Bytes the part's offsets shift by.
    pub shift: i64,
}

/// Writes to `out` the footer of a file whose parts are `parts`, in order: every
/// part's row groups with their offsets shifted, the schema and key-value metadata
/// of the first part, then the footer length and magic.
///
/// # Errors
/// [`Error::Corrupt`] for a footer that does not decode; I/O errors of `out`.
pub fn write_footer(path: &Path, parts: &[PlacedPart<'_>], out: &mut dyn Write) -> Result<()> {
    let mut first: Option<FileMetaData> = None;
    let mut row_groups = Vec::new();
    let mut rows = 0i64;
    // Each part's metadata is taken apart and moved, not copied: a wide table's
    // footer holds a few hundred bytes a column.
    for part in parts {
        let mut meta = ParquetMetaDataReader::decode_metadata(part.footer)
            .map_err(|e| parquet_error(path, e))?
            .into_builder();
        for group in meta.take_row_groups() {
            rows += group.num_rows();
            let ordinal = row_groups.len();
            row_groups.push(shifted(path, group, part.shift, ordinal)?);
        }
        if first.is_none() {
            first = Some(meta.build().file_metadata().clone());
        }
    }
    // Only a plan edited by hand assembles a file of no part.
    let file = first.ok_or_else(|| Error::BadPlan {
        reason: "a Parquet output is assembled from no part".into(),
    })?;
    let file_meta = FileMetaData::new(
        file.version(),
        rows,
        file.created_by().map(str::to_string),
        file.key_value_metadata().cloned(),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    let meta = ParquetMetaData::new(file_meta, row_groups);
    ParquetMetaDataWriter::new(out, &meta)
        .finish()
        .map_err(|e| parquet_error(path, e))
}

/// `group` with every offset moved by `shift`, as row group `ordinal`.
fn shifted(
    path: &Path,
    group: RowGroupMetaData,
    shift: i64,
    ordinal: usize,
) -> Result<RowGroupMetaData> {
    let file_offset = group.file_offset();
    let mut builder = group.into_builder();
    let columns = builder
        .take_columns()
        .into_iter()
        .map(|c| {
            let (data, dictionary, index) = (
                c.data_page_offset(),
                c.dictionary_page_offset(),
                c.index_page_offset(),
            );
            c.into_builder()
                .set_data_page_offset(data + shift)
                .set_dictionary_page_offset(dictionary.map(|o| o + shift))
                .set_index_page_offset(index.map(|o| o + shift))
                .build()
        })
        .collect::<parquet::errors::Result<Vec<_>>>()
        .map_err(|e| parquet_error(path, e))?;
    builder = builder
        .set_column_metadata(columns)
        .set_ordinal(i32::try_from(ordinal).unwrap_or(i32::MAX));
    if let Some(offset) = file_offset {
        builder = builder.set_file_offset(offset + shift);
    }
    builder.build().map_err(|e| parquet_error(path, e))
}

/// Writes an empty Parquet file of `schema` (no row group) into `out`.
///
/// # Errors
/// Encoding or I/O errors.
pub fn write_empty(
    path: &Path,
    schema: SchemaRef,
    options: ParquetWriteOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let (bytes, _) = encode_part(path, schema, options, usize::MAX, &mut std::iter::empty())?;
    out.write_all(&bytes).map_err(|e| Error::io(path, e))
}

/// Every batch of a Parquet file's bytes, for tests.
#[cfg(test)]
fn read_all(bytes: Bytes) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(schema: &SchemaRef, start: i64, n: i64) -> RecordBatch {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(start..start + n)),
                Arc::new(StringArray::from_iter_values(
                    (start..start + n).map(|i| format!("s{}", i % 7)),
                )),
                Arc::new(Float64Array::from_iter(
                    (start..start + n).map(|i| (i % 5 != 0).then_some(i as f64 / 3.0)),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn parts_assemble_into_one_file_that_reads_back_equal() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
            Field::new("f", DataType::Float64, true),
        ]));
        let path = Path::new("t.parquet");
        let options = ParquetWriteOptions {
            row_group_rows: 300,
            ..Default::default()
        };
        let inputs = [
            batch(&schema, 0, 1000),
            batch(&schema, 1000, 5),
            batch(&schema, 1005, 0),
        ];
        let mut file = header().to_vec();
        let mut footers = Vec::new();
        for b in &inputs {
            let (part, rows) = encode_part(
                path,
                schema.clone(),
                options,
                usize::MAX,
                &mut std::iter::once(Ok(b.clone())),
            )
            .unwrap();
            assert_eq!(rows, b.num_rows() as u64);
            let layout = part_layout(path, &part).unwrap();
            let shift = file.len() as i64 - layout.data.start as i64;
            file.extend_from_slice(&part[layout.data.clone()]);
            footers.push((part.slice(layout.footer), shift));
        }
        let placed: Vec<PlacedPart<'_>> = footers
            .iter()
            .map(|(f, shift)| PlacedPart {
                footer: f,
                shift: *shift,
            })
            .collect();
        write_footer(path, &placed, &mut file).unwrap();
        let got = read_all(Bytes::from(file.clone()));
        let got = arrow::compute::concat_batches(&schema, &got).unwrap();
        let want = arrow::compute::concat_batches(&schema, &inputs).unwrap();
        assert_eq!(got, want);
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&Bytes::from(file))
            .unwrap();
        let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, vec![300, 300, 300, 100, 5]);
    }

    #[test]
    fn an_empty_file_has_the_schema() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let mut out = Vec::new();
        write_empty(
            Path::new("e.parquet"),
            schema.clone(),
            Default::default(),
            &mut out,
        )
        .unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            Bytes::from(out),
        )
        .unwrap();
        assert_eq!(reader.schema().fields(), schema.fields());
    }

    #[test]
    fn a_truncated_part_is_refused() {
        let e = part_layout(Path::new("p"), b"PAR1xxxxPAR1").unwrap_err();
        assert!(e.to_string().contains("not a whole Parquet file"), "{e}");
    }
}
