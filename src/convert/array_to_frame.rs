//! 1-D or 2-D array to table, as a plan: each array column becomes a table column
//! `c0, c1, …`; one task a block of rows reads it and publishes it as a record
//! batch, and the output's tasks write the blocks in order (see
//! [`crate::frame::write`]).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{make_array, ArrayData, ArrayRef, BooleanArray};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::job::{op_spec, Conversion};
use super::sinks;
use crate::error::{Error, Result};
use crate::frame::write::{add_table_output, read_window};
use crate::grid::Subset;
use crate::plan::{
    DataRef, Dataset, DatasetRole, Entry, Operation, Plan, Task, TaskEnv, TaskId, TaskKind,
};
use crate::storage::array::{ArrayMeta, ArraySource, DType};
use crate::storage::{open_array, Format};

/// Bytes per row block read from the array.
const BLOCK_BYTES: u64 = 16 << 20;

/// The intermediate dataset of row blocks.
const BLOCKS: &str = "blocks";

/// The table's rows, columns, schema, for an array of `meta` at `path`.
///
/// # Errors
/// [`Error::Unsupported`] for an array that is not 1-D or 2-D, has no columns, or
/// has a dtype no table column holds.
fn table_shape(path: &Path, meta: &ArrayMeta) -> Result<(u64, u64, SchemaRef)> {
    let shape = meta.shape();
    let (rows, ncols) = match shape.as_slice() {
        [n] => (*n, 1),
        [n, m] => (*n, *m),
        other => {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: "array shape for a table",
                found: crate::grid::shape_text(other),
                supported: format!(
                    "; only 1-D and 2-D arrays convert to tables, and it has {} dimensions",
                    other.len()
                ),
            })
        }
    };
    if ncols == 0 {
        // A table's rows live in its columns: five rows of nothing cannot be written
        // (Arrow, Parquet and CSV all lose the row count), so refuse rather than
        // write a table that reads back empty.
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "array shape for a table",
            found: crate::grid::shape_text(&shape),
            supported: "; its second axis has length zero, so the table would have no \
                        columns to hold its rows"
                .into(),
        });
    }
    let column_type = arrow_type(meta.dtype).ok_or_else(|| Error::Unsupported {
        path: path.to_path_buf(),
        what: "dtype for a table column",
        found: meta.dtype.name().into(),
        supported: "; tables take bool, integer and float arrays".into(),
    })?;
    let schema = Arc::new(Schema::new(
        (0..ncols)
            .map(|j| Field::new(format!("c{j}"), column_type.clone(), false))
            .collect::<Vec<_>>(),
    ));
    Ok((rows, ncols, schema))
}

/// The route's plan: one task a block of rows, then the output's tasks.
///
/// # Errors
/// What opening the source fails with; an array no table holds
/// ([`table_shape`]); an option the output format does not take.
pub(super) fn plan(c: &Conversion<'_>) -> Result<Option<Plan>> {
    let source = open_array(c.src, c.from)?;
    let meta = source.meta().clone();
    let (rows, ncols, schema) = table_shape(c.src, &meta)?;
    let output = sinks::table_output(c.to, &c.staged, &schema, c.options)?;
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
    let nblocks = rows.div_ceil(block_rows);
    let mut plan = Plan::new();
    plan.datasets.push(c.src_dataset(serde_json::Value::Null));
    plan.datasets.push(Dataset::new(
        BLOCKS,
        "",
        "memory",
        DatasetRole::Intermediate,
    ));
    let parts: Vec<(DataRef, TaskId)> = (0..nblocks)
        .map(|i| {
            let unit = block_rows.min(rows - i * block_rows) * ncols * item;
            let block = DataRef::partition(BLOCKS, i);
            let id = plan.push(Task {
                inputs: vec![DataRef::partition("src", i)],
                // The bytes read, and the columns made of them.
                memory_bytes: 2 * unit,
                unit_bytes: unit,
                ..Task::new(
                    op_spec(&ReadArrayRows { block_rows }),
                    block.clone(),
                    TaskKind::Load,
                )
            });
            (block, id)
        })
        .collect();
    add_table_output(&mut plan, &output, &parts, read_window(c.sizing.threads))?;
    c.finish(&mut plan);
    Ok(Some(plan))
}

/// Reads block K of rows (`block_rows` rows from row K × `block_rows`) of a 1-D or
/// 2-D input array (its only input, `partition K of "src"`) and publishes it as one
/// record batch of columns `c0, c1, …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadArrayRows {
    /// Rows in every block but the last.
    pub block_rows: u64,
}

impl Operation for ReadArrayRows {
    const NAME: &'static str = "read_array_rows";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let Some(DataRef::Partition { dataset, index }) = task.inputs.first() else {
            return Err(Error::BadPlan {
                reason: format!("task {}: {} reads one block of rows", task.id, Self::NAME),
            });
        };
        let input = env.dataset(dataset)?;
        let path = Path::new(&input.path);
        let source = env
            .resources
            .get_or_open(&format!("array-source/{dataset}"), || {
                open_array(path, Format::parse(&input.format)?)
            })?;
        let meta = source.meta();
        let (rows, ncols, schema) = table_shape(path, meta)?;
        let start = index.saturating_mul(self.block_rows);
        if self.block_rows == 0 || start >= rows {
            return Err(Error::BadPlan {
                reason: format!(
                    "task {}: block {index} of {} rows is past the array's {rows} rows",
                    task.id, self.block_rows
                ),
            });
        }
        let n = self.block_rows.min(rows - start);
        let batch = read_block(source.as_ref().as_ref(), &schema, start, n, ncols)?;
        env.emit(crate::plan::Event::BytesRead(
            n * ncols * meta.dtype.size() as u64,
        ));
        env.store.put(
            &task.output,
            Entry::Batches {
                schema,
                batches: vec![batch],
            },
        )
    }
}

/// Rows `start..start + n` of `source` as a record batch of `schema`.
fn read_block(
    source: &dyn ArraySource,
    schema: &SchemaRef,
    start: u64,
    n: u64,
    ncols: u64,
) -> Result<RecordBatch> {
    let meta = source.meta();
    let region = if meta.shape().len() == 1 {
        Subset::new(vec![start], vec![n])
    } else {
        Subset::new(vec![start, 0], vec![n, ncols])
    };
    let data = source.read(&region)?;
    source.release(&region);
    let column_type = schema.field(0).data_type();
    let columns = (0..ncols as usize)
        .map(|j| {
            column(
                &data,
                meta.dtype,
                column_type,
                ncols as usize,
                j,
                n as usize,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
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
