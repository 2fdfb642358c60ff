//! Table to 2-D array: numeric columns, cast to one common dtype, become the columns
//! of a rows × columns array. Rows are gathered into row blocks of one chunk height
//! and written as whole chunks; the row count is set when the table ends.

use std::path::Path;

use arrow::array::{Array, ArrayRef};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::{sinks, ChunkSpec, ConvertOptions, AUTO_CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::exec::JobContext;
use crate::grid::{copy_region, Subset};
use crate::memory::{MemoryPool, Reservation};
use crate::storage::array::{ArraySink, DType};
use crate::storage::{open_frame, type_name, Format};

/// Placeholder length of the first axis while the row count is unknown; large
/// enough for any table, small enough that chunk arithmetic cannot overflow.
const UNKNOWN_ROWS: u64 = 1 << 48;

/// Converts the table at `src` into a 2-D `to` array at `dst`; returns the row count.
pub(super) fn run(
    src: &Path,
    from: Format,
    dst: &Path,
    to: Format,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    let mut read = options.read.clone();
    let schema = open_frame(src, from, &read)?.schema();
    let columns: Vec<String> = match &read.columns {
        Some(cols) => cols.clone(),
        None => schema
            .fields()
            .iter()
            .filter(|f| dtype_of(f.data_type()).is_some())
            .map(|f| f.name().clone())
            .collect(),
    };
    if columns.is_empty() {
        return Err(Error::Unsupported {
            path: src.to_path_buf(),
            what: "table for an array",
            found: format!("{} columns", schema.fields().len()),
            supported: "; none of its columns is numeric or bool, and an array holds only \
                        those"
                .into(),
        });
    }
    read.columns = Some(columns.clone());
    let source = open_frame(src, from, &read)?;
    let mut dtypes = Vec::new();
    for field in source.schema().fields() {
        dtypes.push(
            dtype_of(field.data_type()).ok_or_else(|| Error::UnsupportedColumn {
                column: field.name().clone(),
                dtype: type_name(field.data_type()),
                format: to.name(),
                hint: "; arrays take numeric and bool columns: pick them with --columns".into(),
            })?,
        );
    }
    let dtype = common_dtype(&dtypes);
    let ncols = columns.len() as u64;
    let item = dtype.size() as u64;
    let chunk_shape = match &options.chunks {
        Some(ChunkSpec::Shape(s)) => s.clone(),
        _ => vec![(AUTO_CHUNK_BYTES / (ncols * item)).max(1), ncols],
    };
    if chunk_shape.len() != 2 {
        return Err(Error::InvalidOption {
            option: "--chunks",
            value: chunk_shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            reason: format!(
                "a table becomes a 2-D array (rows, columns), so give 2 sizes, not {}",
                chunk_shape.len()
            ),
        });
    }
    // Columns beyond the table's are clamped, as zarr-python clamps chunks.
    let chunk_shape = vec![chunk_shape[0].max(1), chunk_shape[1].clamp(1, ncols.max(1))];
    let sink = sinks::array_sink(
        to,
        dst,
        dtype,
        &[UNKNOWN_ROWS, ncols],
        &chunk_shape,
        options,
        true,
    )?;
    let mut blocks = RowBlocks::new(&*sink, dtype, ncols, chunk_shape[0], &ctx.pool)?;
    blocks.formats = (from, to);
    let route = super::Route::new(src, from, dst, to);
    super::stream_frame(source.as_ref(), &route, ctx, |batch| {
        blocks.push(&batch, &columns)
    })?;
    let rows = blocks.finish()?;
    sink.finish(Some(rows))?;
    Ok(rows)
}

/// The array dtype of a numeric or bool column type.
fn dtype_of(t: &DataType) -> Option<DType> {
    Some(match t {
        DataType::Boolean => DType::Bool,
        DataType::Int8 => DType::Int8,
        DataType::Int16 => DType::Int16,
        DataType::Int32 => DType::Int32,
        DataType::Int64 => DType::Int64,
        DataType::UInt8 => DType::UInt8,
        DataType::UInt16 => DType::UInt16,
        DataType::UInt32 => DType::UInt32,
        DataType::UInt64 => DType::UInt64,
        DataType::Float16 => DType::Float16,
        DataType::Float32 => DType::Float32,
        DataType::Float64 => DType::Float64,
        DataType::Dictionary(_, v) => return dtype_of(v),
        _ => return None,
    })
}

/// One dtype for all columns, as numpy promotes them where it matters for values:
/// their own when they agree; float64 when any is a float, or when uint64 meets a
/// signed type (no integer type holds both, numpy makes the same choice); uint64
/// when all are unsigned; int64 otherwise.
fn common_dtype(dtypes: &[DType]) -> DType {
    let Some(&first) = dtypes.first() else {
        return DType::Float64;
    };
    if dtypes.iter().all(|&d| d == first) {
        return first;
    }
    let is_float = |d: &DType| matches!(d, DType::Float16 | DType::Float32 | DType::Float64);
    let is_unsigned = |d: &DType| {
        matches!(
            d,
            DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64
        )
    };
    let signed = |d: &DType| matches!(d, DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64);
    if dtypes.iter().any(is_float) || (dtypes.contains(&DType::UInt64) && dtypes.iter().any(signed))
    {
        DType::Float64
    } else if dtypes.iter().all(is_unsigned) {
        DType::UInt64
    } else {
        DType::Int64
    }
}

/// The Arrow type a column is cast to before its bytes are copied: bools become
/// one byte each, as numpy stores them.
fn arrow_type(dtype: DType) -> DataType {
    match dtype {
        DType::Bool | DType::UInt8 => DataType::UInt8,
        DType::Int8 => DataType::Int8,
        DType::Int16 => DataType::Int16,
        DType::Int32 => DataType::Int32,
        DType::Int64 => DataType::Int64,
        DType::UInt16 => DataType::UInt16,
        DType::UInt32 => DataType::UInt32,
        DType::UInt64 => DataType::UInt64,
        DType::Float16 => DataType::Float16,
        DType::Float32 => DataType::Float32,
        DType::Float64 | DType::Complex64 | DType::Complex128 => DataType::Float64,
    }
}

/// Gathers rows into a row-major block one chunk tall and writes it out as chunks.
struct RowBlocks<'a> {
    _reservation: Reservation,
    sink: &'a dyn ArraySink,
    dtype: DType,
    ncols: u64,
    block_rows: u64,
    block: Vec<u8>,
    filled: u64,
    block_index: u64,
    rows: u64,
    /// The input and output formats, for messages about a column.
    formats: (Format, Format),
}

impl<'a> RowBlocks<'a> {
    /// A block buffer of `block_rows` rows, reserved from `pool` before it is allocated.
    fn new(
        sink: &'a dyn ArraySink,
        dtype: DType,
        ncols: u64,
        block_rows: u64,
        pool: &MemoryPool,
    ) -> Result<Self> {
        // The chunk height comes from the user: its byte size is checked, reserved on
        // the pool, then allocated fallibly.
        let bytes = crate::grid::checked_nbytes(&[block_rows, ncols], dtype.size() as u64)
            .ok_or_else(|| Error::InvalidOption {
                option: "--chunks",
                value: format!("{block_rows},{ncols}"),
                reason: "a chunk that large does not fit in 64 bits".into(),
            })?;
        let mut reservation = pool.reserve("row block of an array chunk");
        reservation.try_grow(bytes)?;
        let block = crate::grid::size::alloc_zeroed(
            std::path::Path::new("row block"),
            &[block_rows, ncols],
            dtype.size() as u64,
        )?;
        Ok(RowBlocks {
            _reservation: reservation,
            sink,
            dtype,
            ncols,
            block_rows,
            block,
            filled: 0,
            block_index: 0,
            rows: 0,
            formats: (Format::Parquet, Format::Npy),
        })
    }

    fn push(&mut self, batch: &RecordBatch, names: &[String]) -> Result<()> {
        let target = arrow_type(self.dtype);
        let item = self.dtype.size();
        let mut cast_columns: Vec<ArrayRef> = Vec::with_capacity(names.len());
        let (from, to) = self.formats;
        let unsupported = |j: usize, column: &ArrayRef, why: String| Error::UnsupportedColumn {
            column: names[j].clone(),
            dtype: type_name(column.data_type()),
            format: to.name(),
            hint: why,
        };
        for (j, column) in batch.columns().iter().enumerate() {
            if column.null_count() > 0
                && !matches!(self.dtype, DType::Float16 | DType::Float32 | DType::Float64)
            {
                let fix = if from == Format::Csv {
                    format!("make it float64 with --dtype {}=float64, or ", names[j])
                } else {
                    String::new()
                };
                return Err(unsupported(
                    j,
                    column,
                    format!(
                        "; it has nulls, and only a float array has NaN to hold them \
                         (this array is {}): {fix}leave it out with --columns",
                        self.dtype
                    ),
                ));
            }
            // A value the common dtype cannot hold would become a null here (Arrow's
            // safe cast), and a null in an integer array has no value: refuse it.
            let converted =
                cast(column, &target).map_err(|e| unsupported(j, column, format!("; {e}")))?;
            if converted.null_count() != column.null_count() {
                return Err(unsupported(
                    j,
                    column,
                    format!(
                        "; some of its values do not fit the array's dtype {}",
                        self.dtype
                    ),
                ));
            }
            cast_columns.push(converted);
        }
        let mut offset = 0usize;
        while offset < batch.num_rows() {
            let take = ((self.block_rows - self.filled) as usize).min(batch.num_rows() - offset);
            for (j, column) in cast_columns.iter().enumerate() {
                let data = column.to_data();
                let values = &data.buffers()[0].as_slice()[(data.offset() + offset) * item..];
                for r in 0..take {
                    let dst = (((self.filled + r as u64) * self.ncols + j as u64) as usize) * item;
                    if column.is_null(offset + r) {
                        self.block[dst..dst + item].copy_from_slice(&nan_bytes(self.dtype));
                    } else {
                        self.block[dst..dst + item]
                            .copy_from_slice(&values[r * item..(r + 1) * item]);
                    }
                }
            }
            self.filled += take as u64;
            offset += take;
            if self.filled == self.block_rows {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the block as the chunks of one chunk row, padding unfilled rows with
    /// zeros (the fill value).
    fn flush(&mut self) -> Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let chunk_shape = self.sink.grid().max_chunk_shape();
        let block_shape = [self.block_rows, self.ncols];
        let item = self.dtype.size();
        let zero_from = (self.filled * self.ncols) as usize * item;
        self.block[zero_from..].fill(0);
        let col_chunks = self.ncols.div_ceil(chunk_shape[1]);
        for c in 0..col_chunks {
            let col_start = c * chunk_shape[1];
            let width = chunk_shape[1].min(self.ncols - col_start);
            if col_chunks == 1 {
                self.sink.write_chunk(&[self.block_index, 0], &self.block)?;
            } else {
                let mut chunk = vec![0u8; (self.block_rows * chunk_shape[1]) as usize * item];
                let region = Subset::new(vec![0, col_start], vec![self.block_rows, width]);
                copy_region(
                    &self.block,
                    &block_shape,
                    &region,
                    &mut chunk,
                    &[self.block_rows, chunk_shape[1]],
                    &[0, 0],
                    item,
                );
                self.sink.write_chunk(&[self.block_index, c], &chunk)?;
            }
        }
        self.rows += self.filled;
        self.filled = 0;
        self.block_index += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.rows)
    }
}

fn nan_bytes(dtype: DType) -> Vec<u8> {
    match dtype {
        DType::Float16 => 0x7e00u16.to_ne_bytes().to_vec(),
        DType::Float32 => f32::NAN.to_ne_bytes().to_vec(),
        _ => f64::NAN.to_ne_bytes().to_vec(),
    }
}


/// The route as a plan (see [`super::job`]); `None` while it still runs by closures.
///
/// # Errors
/// What opening the source and checking the options fail with.
pub(super) fn plan(_c: &super::job::Conversion<'_>) -> Result<Option<crate::plan::Plan>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_dtype_rules() {
        assert_eq!(common_dtype(&[DType::Int32, DType::Int32]), DType::Int32);
        assert_eq!(
            common_dtype(&[DType::Int32, DType::Float32]),
            DType::Float64
        );
        assert_eq!(common_dtype(&[DType::UInt8, DType::UInt32]), DType::UInt64);
        assert_eq!(common_dtype(&[DType::Bool, DType::Int8]), DType::Int64);
        // No integer type holds every uint64 and every int64.
        assert_eq!(common_dtype(&[DType::UInt64, DType::Int64]), DType::Float64);
        assert_eq!(common_dtype(&[DType::UInt32, DType::Int8]), DType::Int64);
    }
}
