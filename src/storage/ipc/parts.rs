//! One Arrow IPC file assembled from parts encoded apart.
//!
//! Each part is a small, complete IPC file in memory ([`encode_part`]); assembling
//! copies its record batch messages verbatim behind the ones before, remembering
//! where each landed ([`PartLayout`]), and [`write_footer`] ends the file with the
//! end-of-stream marker and one footer listing every batch.
//!
//! Dictionary columns are written as their values: every part would carry its own
//! dictionaries under the same ids, and a file may not replace a dictionary.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::convert::IpcSchemaEncoder;
use arrow::ipc::writer::{DictionaryTracker, FileWriter, IpcWriteOptions};
use arrow::ipc::{Block, CompressionType, FooterBuilder, MetadataVersion};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use super::{corrupt, IpcCompression};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"ARROW1";

/// The schema an IPC output is written with: `schema` with dictionary columns as
/// their values.
pub fn output_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) => {
                f.as_ref().clone().with_data_type((**values).clone())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` in `schema` (see [`output_schema`]).
fn unpacked(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn write_options(compression: IpcCompression) -> Result<IpcWriteOptions> {
    let codec = match compression {
        IpcCompression::None => None,
        IpcCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
        IpcCompression::Zstd => Some(CompressionType::ZSTD),
    };
    Ok(IpcWriteOptions::default().try_with_compression(codec)?)
}

/// Encodes `batches` (of `schema`) as one complete IPC file in memory; returns it
/// and its rows. `path` names the output in messages.
///
/// # Errors
/// The batches' errors; encoding errors.
pub fn encode_part(
    path: &Path,
    schema: &Schema,
    compression: IpcCompression,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
) -> Result<(Bytes, u64)> {
    let schema = output_schema(schema);
    let mut writer =
        FileWriter::try_new_with_options(Vec::new(), &schema, write_options(compression)?)
            .map_err(|e| corrupt(path, e))?;
    let mut rows = 0u64;
    for batch in batches {
        let batch = unpacked(&batch?, &schema)?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(|e| corrupt(path, e))?;
    }
    writer.finish().map_err(|e| corrupt(path, e))?;
    let bytes = writer.into_inner().map_err(|e| corrupt(path, e))?;
    Ok((Bytes::from(bytes), rows))
}

/// A record batch's place in a file: offset, metadata length, body length.
pub type BlockPlace = (i64, i32, i64);

/// Where a part's pieces lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLayout {
    /// The leading magic and the schema message: how the assembled file starts.
    pub header: Range<usize>,
    /// The record batch messages: what is copied into the assembled file.
    pub data: Range<usize>,
    /// Each record batch, at its offset in the part.
    pub blocks: Vec<BlockPlace>,
}

/// The layout of `part`, a file made by [`encode_part`].
///
/// # Errors
/// [`Error::Corrupt`] when it is not such a file.
pub fn part_layout(path: &Path, part: &[u8]) -> Result<PartLayout> {
    let bad = |detail: &str| Error::corrupt(path, "ipc", format!("an encoded part {detail}"));
    let len = part.len();
    if len < 8 + 8 + 4 + 6 || &part[..6] != MAGIC || &part[len - 6..] != MAGIC {
        return Err(bad("is not a whole IPC file"));
    }
    let footer_len =
        i32::from_le_bytes([part[len - 10], part[len - 9], part[len - 8], part[len - 7]]);
    let footer_start = usize::try_from(footer_len)
        .ok()
        .and_then(|n| (len - 10).checked_sub(n))
        .filter(|&s| s >= 16)
        .ok_or_else(|| bad("has a footer longer than itself"))?;
    let footer = arrow::ipc::root_as_footer(&part[footer_start..len - 10])
        .map_err(|e| bad(&format!("has a footer that does not decode: {e}")))?;
    if footer.dictionaries().is_some_and(|d| !d.is_empty()) {
        return Err(bad("holds dictionaries"));
    }
    let blocks: Vec<BlockPlace> = footer
        .recordBatches()
        .map(|b| {
            b.iter()
                .map(|b| (b.offset(), b.metaDataLength(), b.bodyLength()))
                .collect()
        })
        .unwrap_or_default();
    // The end-of-stream marker (8 bytes) sits between the messages and the footer.
    let end = footer_start - 8;
    let start = match blocks.iter().map(|b| b.0).min() {
        Some(first) => usize::try_from(first)
            .ok()
            .filter(|&s| s <= end)
            .ok_or_else(|| bad("has a batch outside it"))?,
        None => end,
    };
    Ok(PartLayout {
        header: 0..start,
        data: start..end,
        blocks,
    })
}

/// Writes to `out` the end of a file of rows of `schema` (see [`output_schema`]) whose
/// record batches are `blocks`: the end-of-stream marker, the footer, its length and
/// the magic.
///
/// # Errors
/// I/O errors of `out`.
pub fn write_footer(
    path: &Path,
    schema: &Schema,
    blocks: &[BlockPlace],
    out: &mut dyn Write,
) -> Result<()> {
    let schema = output_schema(schema);
    // A builder of the flatbuffers version arrow uses, emptied.
    let mut fbb = IpcSchemaEncoder::new().schema_to_fb(&Schema::empty());
    fbb.reset();
    let blocks: Vec<Block> = blocks
        .iter()
        .map(|&(offset, meta, body)| Block::new(offset, meta, body))
        .collect();
    let dictionaries = fbb.create_vector::<Block>(&[]);
    let record_batches = fbb.create_vector(&blocks);
    // Nested dictionaries (inside lists or structs) keep their ids, given in field
    // order as the parts' writers gave them.
    let mut tracker = DictionaryTracker::new(false);
    let schema_offset = IpcSchemaEncoder::new()
        .with_dictionary_tracker(&mut tracker)
        .schema_to_fb_offset(&mut fbb, &schema);
    let root = {
        let mut footer = FooterBuilder::new(&mut fbb);
        footer.add_version(MetadataVersion::V5);
        footer.add_schema(schema_offset);
        footer.add_dictionaries(dictionaries);
        footer.add_recordBatches(record_batches);
        footer.finish()
    };
    fbb.finish(root, None);
    let data = fbb.finished_data();
    let len = i32::try_from(data.len())
        .map_err(|_| Error::corrupt(path, "ipc", "a footer past 2 GiB"))?;
    let mut tail = Vec::with_capacity(data.len() + 18);
    tail.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    tail.extend_from_slice(data);
    tail.extend_from_slice(&len.to_le_bytes());
    tail.extend_from_slice(MAGIC);
    out.write_all(&tail).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::Int32Type;

    #[test]
    fn parts_assemble_into_one_file_that_reads_back_equal() {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("d", dict, true),
        ]));
        let batch = |start: i64, n: i64, word: &str| {
            let d: DictionaryArray<Int32Type> =
                (0..n).map(|i| (i % 3 != 0).then_some(word)).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(start..start + n)),
                    Arc::new(d),
                ],
            )
            .unwrap()
        };
        let path = Path::new("t.arrow");
        let inputs = [
            vec![batch(0, 10, "x"), batch(10, 3, "y")],
            vec![],
            vec![batch(13, 4, "z")],
        ];
        let mut file = Vec::new();
        let mut blocks = Vec::new();
        for (k, part) in inputs.iter().enumerate() {
            let (bytes, rows) = encode_part(
                path,
                &schema,
                IpcCompression::Lz4,
                &mut part.iter().cloned().map(Ok),
            )
            .unwrap();
            assert_eq!(rows, part.iter().map(|b| b.num_rows() as u64).sum::<u64>());
            let layout = part_layout(path, &bytes).unwrap();
            if k == 0 {
                file.extend_from_slice(&bytes[layout.header.clone()]);
            }
            let shift = file.len() as i64 - layout.data.start as i64;
            file.extend_from_slice(&bytes[layout.data.clone()]);
            blocks.extend(layout.blocks.iter().map(|b| (b.0 + shift, b.1, b.2)));
        }
        write_footer(path, &schema, &blocks, &mut file).unwrap();
        let reader =
            arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(file), None).unwrap();
        let out = output_schema(&schema);
        assert_eq!(reader.schema(), out);
        let got: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let got = arrow::compute::concat_batches(&out, &got).unwrap();
        assert_eq!(got.num_rows(), 17);
        let d = got
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(d.value(11), "y");
        assert_eq!(d.value(14), "z");
        assert!(d.is_null(13));
    }
}
