//! Table to 2-D array, as a plan: numeric columns, cast to one common dtype, become
//! the columns of a rows × columns array. Each partition's rows are published by a
//! `table_rows` task; a chain of `place_rows` tasks cuts them into row blocks one
//! chunk tall and writes them as whole chunks; `finish_rows` writes the last block
//! and the metadata with the row count, known only then (see
//! [`crate::array::from_table`]).

use super::job::Conversion;
use super::{sinks, ChunkSpec, AUTO_CHUNK_BYTES};
use crate::array::from_table::{common_dtype, dtype_of, FinishRows, PlaceRows, TableRows};
use crate::array::CreateArray;
use crate::error::{Error, Result};
use crate::plan::{DataRef, Dataset, DatasetRole, Plan, Task, TaskId, TaskKind};
use crate::storage::{open_frame, open_frame_described, type_name};

use super::job::op_spec;

/// Placeholder length of the first axis while the row count is unknown; large
/// enough for any table, small enough that chunk arithmetic cannot overflow.
const UNKNOWN_ROWS: u64 = 1 << 48;

/// The route as a plan (see [`super::job`]).
///
/// # Errors
/// What opening the source fails with; a table with no numeric column, or a column
/// an array cannot hold; chunks or options that do not fit the output.
pub(super) fn plan(c: &Conversion<'_>) -> Result<Option<Plan>> {
    let (src, from, to, options) = (c.src, c.from, c.to, c.options);
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
    let (source, src_meta) = open_frame_described(src, from, &read)?;
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
        // About 64 MiB blocks, smaller under a small memory limit so that a block
        // task fits (a row block is held whole while it fills).
        _ => {
            let block = AUTO_CHUNK_BYTES.min(c.sizing.memory_limit / 8);
            vec![(block / (ncols * item)).max(1), ncols]
        }
    };
    if chunk_shape.len() != 2 {
        return Err(Error::InvalidOption {
            option: "chunks",
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
    // The chunk height comes from the user: a row block's byte size must be a
    // number before it is projected, reserved and allocated.
    let block_bytes =
        crate::grid::checked_nbytes(&[chunk_shape[0], ncols], item).ok_or_else(|| {
            Error::InvalidOption {
                option: "chunks",
                value: format!("{},{ncols}", chunk_shape[0]),
                reason: "a chunk that large does not fit in 64 bits".into(),
            }
        })?;
    let layout = sinks::array_layout(
        to,
        c.dst,
        dtype,
        &[UNKNOWN_ROWS, ncols],
        &chunk_shape,
        options,
        true,
    )?;

    let mut plan = Plan::new();
    let stage_dir = c.staged.parent().unwrap_or(&c.staged);
    plan.datasets = vec![
        c.src_dataset(serde_json::to_value(src_meta).unwrap_or_default()),
        Dataset::new(
            "rows",
            stage_dir.join("rows").display(),
            "bytes",
            DatasetRole::Intermediate,
        ),
        Dataset::new(
            "carry",
            stage_dir.join("carry").display(),
            "bytes",
            DatasetRole::Intermediate,
        ),
        c.dst_dataset(layout.to_meta()),
    ];
    let create = plan.push(Task::new(
        op_spec(&CreateArray { warning: None }),
        DataRef::whole("dst"),
        TaskKind::Compute,
    ));
    let rows_op = op_spec(&TableRows {
        columns,
        dtype,
        to: to.name().into(),
    });
    let place_op = op_spec(&PlaceRows { dst: "dst".into() });
    // Only a few partitions are read ahead of the chain that places them.
    let window = c.sizing.threads + 1;
    let mut places: Vec<TaskId> = Vec::with_capacity(source.num_partitions());
    for i in 0..source.num_partitions() {
        // A partition's rows as array elements are about as large as its input
        // (numbers as text take a few bytes each); they are reserved as they grow.
        let unit = source.partition_memory_bytes(i);
        let produce = plan.push(Task {
            inputs: vec![DataRef::partition("src", i as u64)],
            deps: i
                .checked_sub(window)
                .map(|back| vec![places[back]])
                .unwrap_or_default(),
            memory_bytes: unit,
            unit_bytes: unit,
            ..Task::new(
                rows_op.clone(),
                DataRef::partition("rows", i as u64),
                TaskKind::Load,
            )
        });
        let mut inputs = vec![DataRef::partition("rows", i as u64)];
        let mut deps = vec![produce, create];
        if let Some(&before) = places.last() {
            inputs.push(DataRef::partition("carry", i as u64 - 1));
            deps.push(before);
        }
        places.push(plan.push(Task {
            inputs,
            deps,
            // The block being filled, beside the rows read and the carry.
            memory_bytes: block_bytes + unit,
            unit_bytes: block_bytes,
            ..Task::new(
                place_op.clone(),
                DataRef::partition("carry", i as u64),
                TaskKind::Release,
            )
        }));
    }
    let mut deps = vec![create];
    let mut inputs = Vec::new();
    if let Some(&last) = places.last() {
        deps.push(last);
        inputs.push(DataRef::partition("carry", places.len() as u64 - 1));
    }
    plan.push(Task {
        inputs,
        deps,
        memory_bytes: block_bytes,
        unit_bytes: block_bytes,
        ..Task::new(
            op_spec(&FinishRows {}),
            DataRef::partition("dst", 0),
            TaskKind::Release,
        )
    });
    c.finish(&mut plan);
    Ok(Some(plan))
}
