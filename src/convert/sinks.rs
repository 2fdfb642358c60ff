//! Creating the output of a conversion in the destination format.

use std::path::Path;

use super::{Compression, ConvertOptions};
use crate::array::ArrayLayout;
use crate::error::{Error, Result};
use crate::frame::write::{TableFormat, TableOutput, TableWriteOptions};
use crate::grid::shape_text;
use crate::storage::array::DType;
use crate::storage::frame::SerializedSchema;
use crate::storage::ipc::IpcCompression;
use crate::storage::npy_stack::NpyStackSink;
use crate::storage::parquet::DEFAULT_ROW_GROUP_ROWS;
use crate::storage::zarr::ZarrCompression;
use crate::storage::Format;

/// The table output a plan writes for `format` at `path` (the staged output), with
/// rows of `schema`: checks, before anything is written, that the format holds
/// every column and takes the options.
///
/// # Errors
/// [`Error::UnsupportedColumn`] for a column the format cannot hold;
/// [`Error::Usage`] for a compression the format does not take.
pub(super) fn table_output(
    format: Format,
    path: &Path,
    schema: &arrow::datatypes::Schema,
    options: &ConvertOptions,
) -> Result<TableOutput> {
    super::frame_to_frame::check_output_holds(format, schema)?;
    let mut write = TableWriteOptions {
        row_group_rows: options
            .row_group_rows
            .unwrap_or(DEFAULT_ROW_GROUP_ROWS)
            .max(1) as u64,
        delimiter: options.read.delimiter,
        ..TableWriteOptions::default()
    };
    let table_format = match format {
        Format::Csv => {
            if options.compression.is_some_and(|c| c != Compression::None) {
                return Err(compression_refused(options, "does not apply to CSV output"));
            }
            TableFormat::Csv
        }
        Format::Parquet | Format::ParquetDir => {
            write.zstd_level = match options.compression {
                None => Some(3),
                Some(Compression::Zstd(l)) => Some(l),
                Some(Compression::None) => None,
                Some(Compression::Lz4) => {
                    return Err(compression_refused(
                        options,
                        "Parquet output takes zstd, zstd:LEVEL or none",
                    ))
                }
            };
            if format == Format::ParquetDir {
                TableFormat::ParquetDir
            } else {
                TableFormat::Parquet
            }
        }
        Format::Ipc => {
            write.ipc_compression = match options.compression {
                None | Some(Compression::None) => IpcCompression::None,
                Some(Compression::Lz4) => IpcCompression::Lz4,
                Some(Compression::Zstd(3)) => IpcCompression::Zstd,
                Some(Compression::Zstd(_)) => {
                    return Err(compression_refused(
                        options,
                        "Arrow IPC output takes zstd without a level, lz4 or none",
                    ))
                }
            };
            TableFormat::Ipc
        }
        other => {
            return Err(Error::bug(
                "a table output of a format that is not a table's",
                other.name(),
            ))
        }
    };
    Ok(TableOutput {
        format: table_format,
        path: path.display().to_string(),
        schema: SerializedSchema::new(schema),
        options: write,
    })
}

/// The layout of a new `format` array at `path` (the destination, which messages
/// name): its chunks as the format's writer cuts them (whole rows for `.npy`, parts
/// along the first axis for an npy stack) and its write options. With
/// `rows_unknown`, the first axis of `shape` is a placeholder set by the last task.
///
/// # Errors
/// [`Error::InvalidOption`] for chunks of another rank than the shape; options that
/// do not apply to the format; a shape the format cannot hold.
pub(super) fn array_layout(
    format: Format,
    path: &Path,
    dtype: DType,
    shape: &[u64],
    chunk_shape: &[u64],
    options: &ConvertOptions,
    rows_unknown: bool,
) -> Result<ArrayLayout> {
    if chunk_shape.len() != shape.len() {
        return Err(Error::InvalidOption {
            option: "chunks",
            value: chunk_text(chunk_shape),
            reason: format!(
                "it has {} dimensions but the array has {} (shape {}); give one size per axis",
                chunk_shape.len(),
                shape.len(),
                shape_text(shape)
            ),
        });
    }
    // A chunk longer than its axis is clamped to the axis, as zarr-python does: the
    // array is the same, and no chunk buffer is larger than the array itself.
    let chunk_shape = clamp_chunks(shape, chunk_shape);
    let compression = options.compression.unwrap_or(Compression::Zstd(3));
    // Along every axis but the first, `.npy` rows and npy-stack parts are whole.
    let whole_rows = |first: u64| -> Vec<u64> {
        shape
            .iter()
            .enumerate()
            .map(|(a, &len)| if a == 0 { first } else { len.max(1) })
            .collect()
    };
    let first = chunk_shape.first().copied().unwrap_or(1);
    let mut layout = match format {
        Format::Zarr => {
            let mut layout = ArrayLayout::new(shape.to_vec(), dtype, chunk_shape.clone());
            layout.compression = Some(match compression {
                Compression::None => ZarrCompression::None,
                Compression::Zstd(l) => ZarrCompression::Zstd(l),
                Compression::Lz4 => {
                    return Err(compression_refused(
                        options,
                        "Zarr output takes zstd, zstd:LEVEL or none",
                    ))
                }
            });
            layout
        }
        Format::Npy | Format::NpyStack
            if options.compression.is_some_and(|c| c != Compression::None) =>
        {
            return Err(compression_refused(
                options,
                &format!("does not apply to {} output", format.name()),
            ))
        }
        Format::Npy => ArrayLayout::new(shape.to_vec(), dtype, whole_rows(first)),
        Format::NpyStack => {
            if rows_unknown {
                return Err(Error::Unsupported {
                    path: path.to_path_buf(),
                    what: "conversion",
                    found: "table to npy-stack".into(),
                    supported: "; a table converts to zarr or npy: convert that to an npy \
                                stack in a second step"
                        .into(),
                });
            }
            // Refuses what a stack cannot hold (a scalar) now, naming the destination.
            drop(NpyStackSink::open(path, dtype, shape, 0, first)?);
            let mut layout = ArrayLayout::new(shape.to_vec(), dtype, whole_rows(first));
            layout.axis = Some(0);
            layout
        }
        other => {
            return Err(Error::bug(
                "an array output of a format that is not an array's",
                other.name(),
            ))
        }
    };
    if matches!(format, Format::Npy | Format::NpyStack) {
        layout.byte_order = Some(if dtype.size() == 1 { "|" } else { "<" }.into());
    }
    layout.rows_unknown = rows_unknown;
    Ok(layout)
}

/// The refusal of the `compression` option given in `options`, for `reason`.
fn compression_refused(options: &ConvertOptions, reason: &str) -> Error {
    Error::InvalidOption {
        option: "compression",
        value: options
            .compression
            .map_or_else(String::new, |c| c.to_string()),
        reason: reason.to_string(),
    }
}

/// Each chunk size clamped to its axis (at least 1, for axes of length zero).
fn clamp_chunks(shape: &[u64], chunk_shape: &[u64]) -> Vec<u64> {
    shape
        .iter()
        .zip(chunk_shape)
        .map(|(&len, &c)| c.min(len.max(1)).max(1))
        .collect()
}

/// A chunk shape as `--chunks` spells it: `100,100`.
fn chunk_text(chunk_shape: &[u64]) -> String {
    let parts: Vec<String> = chunk_shape.iter().map(u64::to_string).collect();
    parts.join(",")
}

#[cfg(test)]
mod array_sink_tests {
    use super::*;

    #[test]
    fn npy_layouts_hold_whole_rows_and_zarr_layouts_their_chunks() {
        let p = Path::new("/x/out");
        let o = ConvertOptions::default();
        let npy = array_layout(Format::Npy, p, DType::Int16, &[10, 6], &[3, 2], &o, false);
        let npy = npy.unwrap();
        assert_eq!(
            (npy.chunks.clone(), npy.byte_order.as_deref()),
            (vec![3, 6], Some("<"))
        );
        let stack = array_layout(
            Format::NpyStack,
            p,
            DType::Int8,
            &[10, 6],
            &[3, 2],
            &o,
            false,
        );
        assert_eq!(stack.unwrap().axis, Some(0));
        let zarr = array_layout(Format::Zarr, p, DType::Int8, &[10, 6], &[30, 2], &o, true);
        let zarr = zarr.unwrap();
        assert_eq!(zarr.chunks, vec![10, 2]);
        assert!(zarr.rows_unknown && zarr.compression == Some(ZarrCompression::Zstd(3)));
    }

    #[test]
    fn chunks_are_clamped_to_the_shape() {
        assert_eq!(clamp_chunks(&[10, 0, 5], &[100, 3, 5]), vec![10, 1, 5]);
        assert_eq!(chunk_text(&[3, 4]), "3,4");
    }

    #[test]
    fn chunks_of_the_wrong_rank_name_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let e = array_layout(
            Format::Zarr,
            &dir.path().join("a.zarr"),
            DType::Int8,
            &[4, 6],
            &[2, 2, 2],
            &ConvertOptions::default(),
            false,
        )
        .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(text.contains("chunks") && text.contains("[4, 6]"), "{text}");
    }
}
