//! Creating the output of a conversion in the destination format.

use std::path::Path;

use arrow::datatypes::SchemaRef;

use super::{Compression, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::JobContext;
use crate::storage::array::{ArraySink, DType};
use crate::storage::csv::CsvSink;
use crate::storage::frame::FrameSink;
use crate::storage::ipc::{IpcCompression, IpcSink};
use crate::storage::npy::NpySink;
use crate::storage::npy_stack::NpyStackSink;
use crate::storage::parquet::{ParquetSink, ParquetWriteOptions, DEFAULT_ROW_GROUP_ROWS};
use crate::storage::zarr::{ZarrCompression, ZarrSink};
use crate::storage::Format;

/// Creates a table writer for `format` at `path`. Up to `held_row_groups` Parquet
/// row groups may be in memory at once (being encoded or waiting to be written),
/// which sizes each.
pub(super) fn frame_sink(
    format: Format,
    path: &Path,
    schema: SchemaRef,
    options: &ConvertOptions,
    ctx: &JobContext,
    held_row_groups: usize,
) -> Result<Box<dyn FrameSink>> {
    super::frame_to_frame::check_output_holds(format, &schema)?;
    Ok(match format {
        Format::Csv => {
            if options.compression.is_some_and(|c| c != Compression::None) {
                return Err(Error::Usage(
                    "--compression does not apply to CSV output".into(),
                ));
            }
            Box::new(CsvSink::create(path, schema, options.read.delimiter)?)
        }
        Format::Parquet => {
            let zstd_level = match options.compression {
                None => Some(3),
                Some(Compression::Zstd(l)) => Some(l),
                Some(Compression::None) => None,
                Some(Compression::Lz4) => {
                    return Err(Error::Usage(
                        "Parquet output takes --compression zstd[:LEVEL] or none".into(),
                    ))
                }
            };
            let opts = ParquetWriteOptions {
                zstd_level,
                row_group_rows: options.row_group_rows.unwrap_or(DEFAULT_ROW_GROUP_ROWS),
            };
            Box::new(
                ParquetSink::create(path, schema, opts)?
                    .with_memory_pool(&ctx.pool, held_row_groups),
            )
        }
        Format::Ipc => {
            let compression = match options.compression {
                None | Some(Compression::None) => IpcCompression::None,
                Some(Compression::Lz4) => IpcCompression::Lz4,
                Some(Compression::Zstd(3)) => IpcCompression::Zstd,
                Some(Compression::Zstd(_)) => {
                    return Err(Error::Usage(
                        "Arrow IPC output takes zstd without a level, lz4 or none".into(),
                    ))
                }
            };
            Box::new(IpcSink::create(path, schema, compression)?)
        }
        other => {
            return Err(Error::Internal(format!(
                "{} is not a table format",
                other.name()
            )))
        }
    })
}

/// Creates an array writer for `format` at `path`. With `rows_unknown`, the first
/// axis of `shape` is a placeholder set when the sink finishes.
pub(super) fn array_sink(
    format: Format,
    path: &Path,
    dtype: DType,
    shape: &[u64],
    chunk_shape: &[u64],
    options: &ConvertOptions,
    rows_unknown: bool,
) -> Result<Box<dyn ArraySink>> {
    if chunk_shape.len() != shape.len() {
        return Err(Error::Usage(format!(
            "--chunks has {} dimensions but the array has {} (shape {shape:?})",
            chunk_shape.len(),
            shape.len()
        )));
    }
    let compression = options.compression.unwrap_or(Compression::Zstd(3));
    Ok(match format {
        Format::Zarr => {
            let c = match compression {
                Compression::None => ZarrCompression::None,
                Compression::Zstd(l) => ZarrCompression::Zstd(l),
                Compression::Lz4 => {
                    return Err(Error::Usage(
                        "Zarr output takes --compression zstd[:LEVEL] or none".into(),
                    ))
                }
            };
            Box::new(ZarrSink::create(path, dtype, shape, chunk_shape, c)?)
        }
        Format::Npy | Format::NpyStack
            if options.compression.is_some_and(|c| c != Compression::None) =>
        {
            return Err(Error::Usage(format!(
                "--compression does not apply to {} output",
                format.name()
            )))
        }
        Format::Npy => Box::new(NpySink::create(
            path,
            dtype,
            shape,
            chunk_shape.first().copied().unwrap_or(1),
            rows_unknown,
        )?),
        Format::NpyStack => {
            if rows_unknown {
                return Err(Error::Usage(
                    "a table converts to zarr or npy; convert that to an npy stack in a second step".into(),
                ));
            }
            Box::new(NpyStackSink::create(
                path,
                dtype,
                shape,
                0,
                chunk_shape.first().copied().unwrap_or(1),
            )?)
        }
        other => {
            return Err(Error::Internal(format!(
                "{} is not an array format",
                other.name()
            )))
        }
    })
}
