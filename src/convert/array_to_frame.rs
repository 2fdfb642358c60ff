//! 1-D or 2-D array to table: each array column becomes a table column `c0, c1, …`;
//! row blocks are read in parallel and written in order.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{make_array, ArrayData, ArrayRef, BooleanArray};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::{sinks, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::JobContext;
use crate::grid::Subset;
use crate::storage::array::DType;
use crate::storage::{open_array, Format};

/// Bytes per row block read from the array.
const BLOCK_BYTES: u64 = 16 << 20;

/// Converts the array at `src` into a `to` table at `dst`; returns the row count.
pub(super) fn run(
    src: &Path,
    from: Format,
    dst: &Path,
    to: Format,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    let source = open_array(src, from)?;
    let meta = source.meta().clone();
    let shape = meta.shape();
    let (rows, ncols) = match shape.as_slice() {
        [n] => (*n, 1),
        [n, m] => (*n, *m),
        other => {
            return Err(Error::Usage(format!(
                "only 1-D and 2-D arrays convert to tables; {} has shape {} ({} dimensions)",
                src.display(),
                crate::grid::shape_text(other),
                other.len()
            )))
        }
    };
    if ncols == 0 {
        // A table's rows live in its columns: five rows of nothing cannot be written
        // (Arrow, Parquet and CSV all lose the row count), so refuse rather than
        // write a table that reads back empty.
        return Err(Error::Unsupported {
            path: src.to_path_buf(),
            what: "array shape for a table",
            found: crate::grid::shape_text(&shape),
            supported: "; its second axis has length zero, so the table would have no \
                        columns to hold its rows"
                .into(),
        });
    }
    let column_type = arrow_type(meta.dtype).ok_or_else(|| Error::Unsupported {
        path: src.to_path_buf(),
        what: "dtype for a table column",
        found: meta.dtype.name().into(),
        supported: "; tables take bool, integer and float arrays".into(),
    })?;
    let schema = Arc::new(Schema::new(
        (0..ncols)
            .map(|j| Field::new(format!("c{j}"), column_type.clone(), false))
            .collect::<Vec<_>>(),
    ));
    let mut sink = sinks::frame_sink(to, dst, schema.clone(), options, ctx, ctx.threads + 1)?;
    let item = meta.dtype.size() as u64;
    // Whole source chunks per block where they are small, so each chunk is decoded once.
    let chunk_rows = meta
        .grid
        .max_chunk_shape()
        .first()
        .copied()
        .unwrap_or(1)
        .max(1);
    let target = (BLOCK_BYTES / (ncols * item).max(1)).max(1);
    let block_rows = if chunk_rows <= target {
        target / chunk_rows * chunk_rows
    } else {
        target
    };
    let nblocks = rows.div_ceil(block_rows) as usize;
    let block_bytes = block_rows * ncols * item;
    let units: Vec<u64> = (0..nblocks as u64)
        .map(|i| block_bytes.min((rows - i * block_rows) * ncols * item))
        .collect();
    super::stream_partitions(
        &super::Route::new(src, from, dst, to),
        "read_row_block",
        &units,
        ctx,
        |batch: &RecordBatch| batch.get_array_memory_size() as u64,
        |i, emit| {
            let start = i as u64 * block_rows;
            let n = block_rows.min(rows - start);
            let region = if shape.len() == 1 {
                Subset::new(vec![start], vec![n])
            } else {
                Subset::new(vec![start, 0], vec![n, ncols])
            };
            let data = source.read(&region)?;
            source.release(&region);
            let columns = (0..ncols as usize)
                .map(|j| {
                    column(
                        &data,
                        meta.dtype,
                        &column_type,
                        ncols as usize,
                        j,
                        n as usize,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            emit(RecordBatch::try_new(schema.clone(), columns)?)
        },
        |batch| sink.write(&batch),
    )?;
    sink.finish()?;
    Ok(rows)
}

fn arrow_type(dtype: DType) -> Option<DataType> {
    Some(match dtype {
        DType::Bool => DataType::Boolean,
        DType::Int8 => DataType::Int8,
        DType::Int16 => DataType::Int16,
        DType::Int32 => DataType::Int32,
        DType::Int64 => DataType::Int64,
        DType::UInt8 => DataType::UInt8,
        DType::UInt16 => DataType::UInt16,
        DType::UInt32 => DataType::UInt32,
        DType::UInt64 => DataType::UInt64,
        DType::Float16 => DataType::Float16,
        DType::Float32 => DataType::Float32,
        DType::Float64 => DataType::Float64,
        DType::Complex64 | DType::Complex128 => return None,
    })
}

/// Column `j` of a row-major block of `rows` × `ncols` elements.
fn column(
    data: &[u8],
    dtype: DType,
    arrow_type: &DataType,
    ncols: usize,
    j: usize,
    rows: usize,
) -> Result<ArrayRef> {
    let item = dtype.size();
    if dtype == DType::Bool {
        return Ok(Arc::new(BooleanArray::from_iter(
            (0..rows).map(|r| Some(data[r * ncols + j] != 0)),
        )));
    }
    let mut values = Vec::with_capacity(rows * item);
    if ncols == 1 {
        values.extend_from_slice(&data[..rows * item]);
    } else {
        for r in 0..rows {
            let at = (r * ncols + j) * item;
            values.extend_from_slice(&data[at..at + item]);
        }
    }
    let built = ArrayData::builder(arrow_type.clone())
        .len(rows)
        .add_buffer(Buffer::from_vec(values))
        .build()?;
    Ok(make_array(built))
}

/// The route as a plan (see [`super::job`]); `None` while it still runs by closures.
///
/// # Errors
/// What opening the source and checking the options fail with.
pub(super) fn plan(_c: &super::job::Conversion<'_>) -> Result<Option<crate::plan::Plan>> {
    Ok(None)
}
