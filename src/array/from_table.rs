//! A table's numeric columns as the columns of a rows × columns array, as a chain
//! whose state is in the store (the rows of a CSV partition are known only once it
//! is read):
//!
//! - `table_rows` (one a partition): reads the partition, casts its columns to the
//!   array's dtype, and publishes its rows, row-major, as a bytes entry;
//! - `place_rows` (one a partition, each after the one before): cuts the rows carried
//!   from the previous partitions and this partition's into whole row blocks one
//!   chunk tall, writes them as chunks, and publishes the rows left over (fewer than
//!   a block) with the count so far as the next one's carry;
//! - `finish_rows`: writes the last, partial block and the array's metadata with its
//!   true first axis.
//!
//! Producer `i` also waits for `place_rows` `i - window`, so only a few partitions'
//! rows are held ahead of the chain.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::layout::{mark_written, open_sink, ArrayLayout};
use crate::error::{Error, Result};
use crate::grid::{copy_region, Subset};
use crate::plan::{DataRef, Entry, Event, Operation, Task, TaskEnv};
use crate::storage::array::{ArraySink, DType};
use crate::storage::frame::FrameSource;
use crate::storage::{open_frame_meta, type_name, Format, SourceMeta};

/// The table dataset `id` opened for reading, once a process: its meta is a
/// [`SourceMeta`] (for a CSV, the partitions' byte ranges and types found when the
/// plan was made, so no worker scans it again).
fn open_table(env: &TaskEnv<'_>, id: &str) -> Result<Arc<Box<dyn FrameSource>>> {
    env.resources
        .get_or_open(&format!("table-source/{id}"), || {
            let dataset = env.dataset(id)?;
            let meta: SourceMeta =
                serde_json::from_value(dataset.meta.clone()).map_err(|e| Error::BadPlan {
                    reason: format!("dataset {id:?} does not describe a table source: {e}"),
                })?;
            let format = Format::parse(&dataset.format)?;
            open_frame_meta(Path::new(&dataset.path), format, &meta)
        })
}

/// The array dtype of a numeric or bool column type.
pub fn dtype_of(t: &DataType) -> Option<DType> {
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
pub fn common_dtype(dtypes: &[DType]) -> DType {
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

fn nan_bytes(dtype: DType) -> Vec<u8> {
    match dtype {
        DType::Float16 => 0x7e00u16.to_ne_bytes().to_vec(),
        DType::Float32 => f32::NAN.to_ne_bytes().to_vec(),
        _ => f64::NAN.to_ne_bytes().to_vec(),
    }
}

/// The rows of `batch` as array elements of `dtype`, row-major, appended to `out`.
/// `names` name the columns and `formats` the input and output formats, for
/// messages.
fn append_rows(
    batch: &RecordBatch,
    names: &[String],
    dtype: DType,
    formats: (Format, Format),
    out: &mut Vec<u8>,
) -> Result<()> {
    let target = arrow_type(dtype);
    let item = dtype.size();
    let (from, to) = formats;
    let unsupported = |j: usize, column: &ArrayRef, why: String| Error::UnsupportedColumn {
        column: names.get(j).cloned().unwrap_or_default(),
        dtype: type_name(column.data_type()),
        format: to.name(),
        hint: why,
    };
    let mut cast_columns: Vec<ArrayRef> = Vec::with_capacity(names.len());
    for (j, column) in batch.columns().iter().enumerate() {
        if column.null_count() > 0
            && !matches!(dtype, DType::Float16 | DType::Float32 | DType::Float64)
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
                     (this array is {dtype}): {fix}leave it out with --columns"
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
                format!("; some of its values do not fit the array's dtype {dtype}"),
            ));
        }
        cast_columns.push(converted);
    }
    let ncols = cast_columns.len();
    let start = out.len();
    out.resize(start + batch.num_rows() * ncols * item, 0);
    let rows = &mut out[start..];
    for (j, column) in cast_columns.iter().enumerate() {
        let data = column.to_data();
        let values = &data.buffers()[0].as_slice()[data.offset() * item..];
        for r in 0..batch.num_rows() {
            let dst = (r * ncols + j) * item;
            if column.is_null(r) {
                rows[dst..dst + item].copy_from_slice(&nan_bytes(dtype));
            } else {
                rows[dst..dst + item].copy_from_slice(&values[r * item..(r + 1) * item]);
            }
        }
    }
    Ok(())
}

/// Reads the table partition its input names and publishes its rows as elements of
/// `dtype`, row-major (a bytes entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    /// The columns read, which become the array's columns in this order.
    pub columns: Vec<String>,
    /// The array's dtype, every column is cast to.
    pub dtype: DType,
    /// The output's format name, for messages about a column.
    pub to: String,
}

impl Operation for TableRows {
    const NAME: &'static str = "table_rows";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let Some(DataRef::Partition { dataset, index }) = task.inputs.first() else {
            return Err(Error::BadPlan {
                reason: format!("task {} (table_rows) reads no table partition", task.id),
            });
        };
        let source = open_table(env, dataset)?;
        let from = Format::parse(&env.dataset(dataset)?.format).unwrap_or(Format::Parquet);
        let to = Format::parse(&self.to).unwrap_or(Format::Zarr);
        let partition = usize::try_from(*index)
            .ok()
            .filter(|&i| i < source.num_partitions())
            .ok_or_else(|| Error::BadPlan {
                reason: format!(
                    "task {}: the table has {} partitions, not {}",
                    task.id,
                    source.num_partitions(),
                    index + 1
                ),
            })?;
        let mut reservation = env.pool.reserve("rows of a table partition");
        let mut rows = Vec::new();
        for batch in source.read_partition(partition)? {
            env.cancel.check()?;
            let batch = batch?;
            let before = rows.len();
            append_rows(&batch, &self.columns, self.dtype, (from, to), &mut rows)?;
            env.reserve(&mut reservation, (rows.len() - before) as u64)?;
        }
        env.emit(Event::BytesRead(source.partition_bytes(partition)));
        env.store.put(&task.output, Entry::Bytes(rows.into()))
    }
}

/// The state a `place_rows` task hands the next: the rows placed or carried so far,
/// and the rows of the block not yet full.
struct Carry {
    rows: u64,
    tail: Vec<u8>,
}

impl Carry {
    fn read(env: &TaskEnv<'_>, key: Option<&DataRef>) -> Result<Self> {
        let Some(key) = key else {
            return Ok(Carry {
                rows: 0,
                tail: Vec::new(),
            });
        };
        let entry = env.store.get(key)?;
        let bad = || Error::Corrupt {
            path: env.store.dir().join(key.store_name()),
            format: "row carry",
            detail: "it is not 8 bytes of row count and whole rows".into(),
        };
        let Entry::Bytes(bytes) = entry.as_ref() else {
            return Err(bad());
        };
        let (count, tail) = bytes.split_first_chunk::<8>().ok_or_else(bad)?;
        Ok(Carry {
            rows: u64::from_le_bytes(*count),
            tail: tail.to_vec(),
        })
    }

    fn entry(&self) -> Entry {
        let mut bytes = Vec::with_capacity(8 + self.tail.len());
        bytes.extend_from_slice(&self.rows.to_le_bytes());
        bytes.extend_from_slice(&self.tail);
        Entry::Bytes(bytes.into())
    }
}

/// The output's row blocks: one chunk tall, as wide as the array.
struct Blocks {
    layout: ArrayLayout,
    ncols: u64,
    block_rows: u64,
    item: usize,
}

impl Blocks {
    fn of(env: &TaskEnv<'_>, dst: &str) -> Result<Self> {
        let layout = ArrayLayout::of(env.dataset(dst)?)?;
        let (Some(&ncols), Some(&block_rows)) = (layout.shape.get(1), layout.chunks.first()) else {
            return Err(Error::BadPlan {
                reason: format!("dataset {dst:?} is not a 2-D array"),
            });
        };
        let item = layout.dtype.size();
        Ok(Blocks {
            layout,
            ncols,
            block_rows,
            item,
        })
    }

    fn row_bytes(&self) -> usize {
        self.ncols as usize * self.item
    }

    fn block_bytes(&self) -> usize {
        self.block_rows as usize * self.row_bytes()
    }

    /// Writes `block` (whole rows, padded with zeros to a full block) as the chunks of
    /// chunk row `index`.
    fn write(&self, sink: &dyn ArraySink, index: u64, block: &[u8]) -> Result<()> {
        let width = self
            .layout
            .chunks
            .get(1)
            .copied()
            .unwrap_or(self.ncols)
            .max(1);
        let col_chunks = self.ncols.div_ceil(width);
        if col_chunks == 1 {
            return sink.write_chunk(&[index, 0], block);
        }
        let block_shape = [self.block_rows, self.ncols];
        for c in 0..col_chunks {
            let start = c * width;
            let mut chunk = vec![0u8; (self.block_rows * width) as usize * self.item];
            let region = Subset::new(
                vec![0, start],
                vec![self.block_rows, width.min(self.ncols - start)],
            );
            copy_region(
                block,
                &block_shape,
                &region,
                &mut chunk,
                &[self.block_rows, width],
                &[0, 0],
                self.item,
            );
            sink.write_chunk(&[index, c], &chunk)?;
        }
        Ok(())
    }
}

/// Places the rows of the partition its first input names after the rows carried
/// from the ones before (its second input, absent for the first partition): every
/// block that fills is written to the output (the dataset `dst` names); the rest is
/// published as the carry for the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceRows {
    /// The array written.
    pub dst: String,
}

impl Operation for PlaceRows {
    const NAME: &'static str = "place_rows";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let blocks = Blocks::of(env, &self.dst)?;
        let rows_ref = task.inputs.first().ok_or_else(|| Error::BadPlan {
            reason: format!("task {} (place_rows) reads no rows", task.id),
        })?;
        let carry = Carry::read(env, task.inputs.get(1))?;
        let entry = env.store.get(rows_ref)?;
        let Entry::Bytes(rows) = entry.as_ref() else {
            return Err(Error::Corrupt {
                path: env.store.dir().join(rows_ref.store_name()),
                format: "table rows",
                detail: format!("it holds {}, not bytes", entry.kind()),
            });
        };
        let row_bytes = blocks.row_bytes();
        if row_bytes == 0 || rows.len() % row_bytes != 0 || carry.tail.len() % row_bytes != 0 {
            return Err(Error::Corrupt {
                path: env.store.dir().join(rows_ref.store_name()),
                format: "table rows",
                detail: format!("its length is not a multiple of a row's {row_bytes} bytes"),
            });
        }
        // The block being filled holds at most a block, and no more than the rows
        // carried and read (a small table under large chunks holds only its rows).
        let held = blocks.block_bytes().min(carry.tail.len() + rows.len());
        let mut reservation = env.pool.reserve("row block of an array chunk");
        env.reserve(&mut reservation, held as u64)?;
        let sink = open_sink(env, &self.dst)?;
        let carried = (carry.tail.len() / row_bytes) as u64;
        let placed = carry
            .rows
            .checked_sub(carried)
            .ok_or_else(|| Error::Corrupt {
                path: env
                    .store
                    .dir()
                    .join(task.inputs.get(1).unwrap_or(rows_ref).store_name()),
                format: "row carry",
                detail: format!("it carries {carried} rows of {} in all", carry.rows),
            })?;
        let mut index = placed / blocks.block_rows.max(1);
        let mut pending: Vec<u8> = carry.tail;
        let mut rest: &[u8] = rows;
        let block_bytes = blocks.block_bytes();
        while pending.len() + rest.len() >= block_bytes {
            env.cancel.check()?;
            let take = block_bytes - pending.len();
            if pending.is_empty() {
                // A whole block straight from the partition's rows.
                blocks.write(sink.as_ref().as_ref(), index, &rest[..take])?;
            } else {
                pending.extend_from_slice(&rest[..take]);
                blocks.write(sink.as_ref().as_ref(), index, &pending)?;
                pending.clear();
            }
            rest = &rest[take..];
            index += 1;
        }
        pending.extend_from_slice(rest);
        let next = Carry {
            rows: carry.rows + (rows.len() / row_bytes) as u64,
            tail: pending,
        };
        env.store.put(&task.output, next.entry())
    }
}

/// Writes the last, partial block (from the carry its input names, if any) padded
/// with zeros, then the array's metadata with the rows counted; reports the rows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FinishRows {}

impl Operation for FinishRows {
    const NAME: &'static str = "finish_rows";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let dst = task.output.dataset();
        let blocks = Blocks::of(env, dst)?;
        let carry = Carry::read(env, task.inputs.first())?;
        let dataset = env.dataset(dst)?;
        if !carry.tail.is_empty() {
            let index = carry.rows / blocks.block_rows.max(1);
            let sink = open_sink(env, dst)?;
            if dataset.format == Format::Npy.name() {
                // An `.npy` takes the rows as they are: the file ends after them.
                sink.write_chunk(&[index, 0], &carry.tail)?;
            } else {
                // A Zarr chunk is stored whole, padded with the fill value.
                let mut reservation = env.pool.reserve("row block of an array chunk");
                env.reserve(&mut reservation, blocks.block_bytes() as u64)?;
                let mut block = carry.tail;
                block.resize(blocks.block_bytes(), 0);
                blocks.write(sink.as_ref().as_ref(), index, &block)?;
            }
        }
        blocks
            .layout
            .sink(&dataset.format, Path::new(&dataset.path))?
            .finish(Some(carry.rows))?;
        env.emit(Event::RowsWritten(carry.rows));
        mark_written(task, env, 0)
    }
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

    #[test]
    fn params_round_trip() {
        let rows = TableRows {
            columns: vec!["a".into(), "b".into()],
            dtype: DType::Float64,
            to: "zarr".into(),
        };
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json["dtype"], "float64");
        assert_eq!(serde_json::from_value::<TableRows>(json).unwrap(), rows);
        let place = PlaceRows { dst: "dst".into() };
        let json = serde_json::to_value(&place).unwrap();
        assert_eq!(serde_json::from_value::<PlaceRows>(json).unwrap(), place);
        let json = serde_json::to_value(FinishRows {}).unwrap();
        assert_eq!(
            serde_json::from_value::<FinishRows>(json).unwrap(),
            FinishRows {}
        );
    }

    #[test]
    fn rows_are_row_major_with_nan_for_nulls() {
        use arrow::array::{Float64Array, Int32Array};
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("a", DataType::Int32, false),
            arrow::datatypes::Field::new("b", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(Float64Array::from(vec![Some(0.5), None])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        let names = vec!["a".to_string(), "b".to_string()];
        append_rows(
            &batch,
            &names,
            DType::Float64,
            (Format::Parquet, Format::Zarr),
            &mut out,
        )
        .unwrap();
        let v: Vec<f64> = out
            .chunks(8)
            .map(|b| f64::from_ne_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(&v[..3], &[1.0, 0.5, 2.0]);
        assert!(v[3].is_nan());
    }
}
