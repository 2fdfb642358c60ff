//! Writing a table output from a plan: an ordered sequence of record-batch parts
//! (store entries) becomes one CSV, Parquet or Arrow IPC file, or a directory of
//! Parquet part files.
//!
//! [`add_table_output`] adds the tasks; the operations are in [`ops`]. A single file
//! is assembled from addressed parts by a chain whose state is in the store, never
//! by a writer held in memory:
//!
//! ```text
//!  producer k ──► encode_table_part k ──► append_table_part k ──► … ──► finish_table_output
//!  (batches)      (bytes: a CSV text,     (copies the bytes to         (footer, final length)
//!                  a small Parquet or      the staged file; state
//!                  IPC file)               {start, end, …} as JSON)
//! ```
//!
//! Encoding (formatting CSV text, encoding and compressing Parquet column chunks)
//! runs in the encode tasks, in parallel; the chain only copies bytes, at offsets
//! its state names, so a chain task run twice writes the same bytes at the same
//! place, and a rerun after a crash continues from the last published state. The
//! finishing task writes the footer (Parquet, IPC) and sets the file's length.
//!
//! A producer may encode its part itself ([`publish_part`], as a grouping's final
//! tasks do when the result goes to a file): [`add_published_output`] then adds
//! only the chain, whose links copy encoded parts and gather parts too small for a
//! row group of their own into one.
//!
//! A Parquet directory has no chain: each part is its own file, `part.K.parquet` as
//! Dask names them, written by its own task, fully parallel.

pub mod ops;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::{DataRef, Dataset, DatasetRole, Plan, Task, TaskId, TaskKind};
use crate::storage::frame::SerializedSchema;
use crate::storage::ipc::IpcCompression;
use crate::storage::parquet::{ParquetWriteOptions, DEFAULT_ROW_GROUP_ROWS};

pub use self::ops::{
    publish_part, AppendTablePart, EncodeTablePart, FinishTableOutput, RegroupRows, WriteTablePart,
};

/// The dataset id of the output a plan writes.
pub const OUTPUT: &str = "dst";
/// The intermediate dataset of encoded parts (bytes).
pub const ENCODED: &str = "encoded";
/// The intermediate dataset of the assembling chain's states.
pub const APPENDED: &str = "appended";
/// The intermediate dataset of a Parquet file's regrouped parts (record batches).
pub const GROUPED: &str = "grouped";

/// The layout of a table output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableFormat {
    /// One CSV file with a header row.
    Csv,
    /// One Parquet file.
    Parquet,
    /// A directory of Parquet files `part.0.parquet`, `part.1.parquet`, …, one a
    /// part, read as one dataset by pyarrow, Dask, Spark, DuckDB and blockwise.
    ParquetDir,
    /// One Arrow IPC file.
    Ipc,
}

/// How a table output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWriteOptions {
    /// Parquet: the zstd level, or `None` for no compression.
    pub zstd_level: Option<i32>,
    /// Arrow IPC: buffer compression.
    pub ipc_compression: IpcCompression,
    /// Parquet: rows per row group at most.
    pub row_group_rows: u64,
    /// CSV: the field delimiter.
    pub delimiter: u8,
}

impl Default for TableWriteOptions {
    fn default() -> Self {
        TableWriteOptions {
            zstd_level: Some(3),
            ipc_compression: IpcCompression::None,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS as u64,
            delimiter: b',',
        }
    }
}

impl TableWriteOptions {
    /// The Parquet writer's options.
    pub fn parquet(&self) -> ParquetWriteOptions {
        ParquetWriteOptions {
            zstd_level: self.zstd_level,
            row_group_rows: usize::try_from(self.row_group_rows.max(1)).unwrap_or(usize::MAX),
        }
    }
}

/// A table output, as the plan's output dataset carries it in its `meta`: all a
/// worker needs to write any part of it, or an empty output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableOutput {
    /// The layout.
    pub format: TableFormat,
    /// Where it is written: the staged path (`Conversion::staged`), published later.
    pub path: String,
    /// The rows' schema.
    pub schema: SerializedSchema,
    /// The writer's options.
    pub options: TableWriteOptions,
}

impl TableOutput {
    /// The output described by `dataset`'s meta.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the meta is not a table output.
    pub fn of(dataset: &Dataset) -> Result<Self> {
        serde_json::from_value(dataset.meta.clone()).map_err(|e| Error::BadPlan {
            reason: format!(
                "dataset {:?} does not describe a table output: {e}",
                dataset.id
            ),
        })
    }

    /// The dataset format name this output is listed under in a plan.
    pub fn format_name(&self) -> &'static str {
        match self.format {
            TableFormat::Csv => "csv",
            TableFormat::Parquet => "parquet",
            TableFormat::ParquetDir => "parquet-dir",
            TableFormat::Ipc => "ipc",
        }
    }
}

/// Adds to `plan` the tasks that write `parts`, in order, into `output`, and returns
/// the ids of the tasks that complete it (what the publishing task must wait for).
///
/// `parts[k]` is `(entry, producer)`: a store entry of record batches
/// ([`Entry::Batches`](crate::plan::Entry::Batches), or published by
/// [`DataStore::put_batches`](crate::plan::DataStore::put_batches)) of `output`'s
/// schema, and the task that publishes it. The producer's `unit_bytes` (or else its
/// `memory_bytes`) is taken as the part's size, which sizes the writing tasks'
/// memory projection. Parts may be empty; with no parts at all the output is
/// written empty (a CSV header, a Parquet or IPC file with the schema and no rows).
///
/// The plan gets the datasets [`OUTPUT`] (the output, at `output.path`, with
/// `output` as its meta), and for single files [`ENCODED`] and [`APPENDED`]
/// (intermediates); a plan that already lists [`OUTPUT`] has its meta replaced.
///
/// To keep only a few parts waiting in the store, producer `k` is made to wait for
/// the task that writes part `k - window` (no such dependency when `window` is 0).
/// Producers must not already depend on anything added here.
///
/// Tasks added, for a single file (CSV, Parquet, IPC):
/// - `encode_table_part` per part (release: it shrinks what the store holds): formats the part's batches into
///   [`ENCODED`] `k` (bytes), in parallel across parts; reports the rows written;
/// - `append_table_part` per part (release), a chain: copies encoded part `k` into
///   the file behind part `k - 1`, and publishes where it lies into [`APPENDED`] `k`;
/// - one `finish_table_output` (release): the footer and the final length; this is
///   the task returned.
///
/// For a Parquet directory, one `write_table_part` per part (release), each writing
/// `part.K.parquet`; those are the tasks returned (one writing an empty
/// `part.0.parquet` when there are no parts).
///
/// # Examples
/// ```
/// use blockwise::frame::write::{add_table_output, TableFormat, TableOutput, TableWriteOptions};
/// use blockwise::plan::{DataRef, Plan, Task, TaskKind, OpSpec, Dataset, DatasetRole};
/// use blockwise::storage::frame::SerializedSchema;
/// use arrow::datatypes::{DataType, Field, Schema};
///
/// let mut plan = Plan::new();
/// plan.datasets.push(Dataset::new("runs", "", "memory", DatasetRole::Intermediate));
/// let producer = plan.push(Task::new(
///     OpSpec::new("make_part", serde_json::Value::Null),
///     DataRef::partition("runs", 0),
///     TaskKind::Load,
/// ));
/// let schema = Schema::new(vec![Field::new("a", DataType::Int64, false)]);
/// let output = TableOutput {
///     format: TableFormat::Parquet,
///     path: "/tmp/work/output".into(),
///     schema: SerializedSchema::new(&schema),
///     options: TableWriteOptions::default(),
/// };
/// let done = add_table_output(&mut plan, &output, &[(DataRef::partition("runs", 0), producer)], 3)
///     .unwrap();
/// assert_eq!(done.len(), 1);
/// assert_eq!(plan.tasks[done[0] as usize].op.name, "finish_table_output");
/// ```
///
/// # Errors
/// [`Error::BadPlan`] when a producer id is not a task of `plan`.
pub fn add_table_output(
    plan: &mut Plan,
    output: &TableOutput,
    parts: &[(DataRef, TaskId)],
    window: usize,
) -> Result<Vec<TaskId>> {
    add_output(plan, output, parts, window, false)
}

/// As [`add_table_output`], for parts whose producers publish them as parts of the
/// output themselves ([`ops::publish_part`]): encoded, or small record batches
/// that the chain gathers into row groups. No encoding tasks are added, only the
/// `append_table_part` chain and `finish_table_output`.
///
/// # Errors
/// As [`add_table_output`]; [`Error::BadPlan`] for a Parquet directory, whose
/// parts are written by tasks of their own.
pub fn add_published_output(
    plan: &mut Plan,
    output: &TableOutput,
    parts: &[(DataRef, TaskId)],
    window: usize,
) -> Result<Vec<TaskId>> {
    if output.format == TableFormat::ParquetDir {
        return Err(Error::BadPlan {
            reason: "the parts of a Parquet directory are written by tasks of their own".into(),
        });
    }
    add_output(plan, output, parts, window, true)
}

/// [`add_table_output`], or with `published` [`add_published_output`].
fn add_output(
    plan: &mut Plan,
    output: &TableOutput,
    parts: &[(DataRef, TaskId)],
    window: usize,
    published: bool,
) -> Result<Vec<TaskId>> {
    if let Some(&(_, bad)) = parts.iter().find(|(_, p)| *p as usize >= plan.tasks.len()) {
        return Err(Error::BadPlan {
            reason: format!("part producer {bad} is not a task of the plan"),
        });
    }
    let meta = serde_json::to_value(output).map_err(|e| Error::bug("table output to JSON", e))?;
    match plan.datasets.iter_mut().find(|d| d.id == OUTPUT) {
        Some(d) => d.meta = meta,
        None => plan.datasets.push(
            Dataset::new(
                OUTPUT,
                &output.path,
                output.format_name(),
                DatasetRole::Output,
            )
            .with_meta(meta),
        ),
    }
    if output.format == TableFormat::ParquetDir {
        let mut writers = Vec::with_capacity(parts.len().max(1));
        for (k, (part, producer)) in parts.iter().enumerate() {
            let bytes = part_bytes(plan, *producer);
            let id = plan.push(Task {
                inputs: vec![part.clone()],
                deps: vec![*producer],
                // The part's batches, and its encoded pages beside them.
                memory_bytes: 2 * bytes,
                unit_bytes: bytes,
                ..Task::new(
                    crate::convert::op_spec(&WriteTablePart {
                        output: OUTPUT.into(),
                    }),
                    DataRef::partition(OUTPUT, k as u64),
                    TaskKind::Release,
                )
            });
            add_window_dep(plan, parts, k, window, id);
            writers.push(id);
        }
        if parts.is_empty() {
            writers.push(plan.push(Task::new(
                crate::convert::op_spec(&WriteTablePart {
                    output: OUTPUT.into(),
                }),
                DataRef::partition(OUTPUT, 0),
                TaskKind::Release,
            )));
        }
        return Ok(writers);
    }
    for id in [ENCODED, APPENDED] {
        if !plan.datasets.iter().any(|d| d.id == id) {
            plan.datasets
                .push(Dataset::new(id, "", "memory", DatasetRole::Intermediate));
        }
    }
    // A Parquet file's row groups hold `row_group_rows` rows whatever the parts
    // hold: the parts pass through a chain that carries the rows past the last
    // whole group to the next part.
    let regroup = !published && output.format == TableFormat::Parquet && parts.len() > 1;
    if regroup && !plan.datasets.iter().any(|d| d.id == GROUPED) {
        plan.datasets.push(Dataset::new(
            GROUPED,
            "",
            "memory",
            DatasetRole::Intermediate,
        ));
    }
    let mut previous: Option<TaskId> = None;
    let mut previous_group: Option<TaskId> = None;
    for (k, (part, producer)) in parts.iter().enumerate() {
        let bytes = part_bytes(plan, *producer);
        // What the chain copies: the published part, or what encodes it.
        let to_append = if published {
            (part.clone(), *producer)
        } else {
            add_encoding(
                plan,
                (part, *producer),
                (k, parts.len()),
                regroup,
                &mut previous_group,
            )
        };
        // The encoded part, already in the store: copied, not grown.
        let append = push_link(
            plan,
            crate::convert::op_spec(&AppendTablePart {
                output: OUTPUT.into(),
            }),
            to_append,
            (APPENDED, k, previous),
            bytes,
        );
        add_window_dep(plan, parts, k, window, append);
        previous = Some(append);
    }
    let finish = plan.push(Task {
        inputs: (0..parts.len() as u64)
            .map(|k| DataRef::partition(APPENDED, k))
            .collect(),
        deps: previous.into_iter().collect(),
        ..Task::new(
            crate::convert::op_spec(&FinishTableOutput {
                output: OUTPUT.into(),
            }),
            DataRef::whole(OUTPUT),
            TaskKind::Release,
        )
    });
    Ok(vec![finish])
}

/// Adds the tasks encoding part `k` of `count` (made by `producer`): with
/// `regroup`, a link of the regrouping chain (the last one `previous_group`)
/// first. Returns the encoded part and its task.
fn add_encoding(
    plan: &mut Plan,
    (part, producer): (&DataRef, TaskId),
    (k, count): (usize, usize),
    regroup: bool,
    previous_group: &mut Option<TaskId>,
) -> (DataRef, TaskId) {
    let bytes = part_bytes(plan, producer);
    let mut encoded_input = part.clone();
    let mut encode_deps = vec![producer];
    if regroup {
        // Slices of batches already in the store.
        let id = push_link(
            plan,
            crate::convert::op_spec(&RegroupRows {
                output: OUTPUT.into(),
            }),
            (part.clone(), producer),
            (GROUPED, k, *previous_group),
            bytes,
        );
        *previous_group = Some(id);
        encoded_input = DataRef::partition(GROUPED, k as u64);
        encode_deps = vec![id];
    }
    // A release task: it turns the part's batches into pages several times
    // smaller, so it goes before work that would make more batches (a sort's
    // next merge); as compute work it waited behind them, and their batches
    // spilled meanwhile (a fifth to a third of the 256 MiB sort's spill).
    let encode = plan.push(Task {
        inputs: vec![encoded_input],
        deps: encode_deps,
        // The part (and rows carried into it), and its encoded pages.
        memory_bytes: if regroup { 4 * bytes } else { 2 * bytes },
        unit_bytes: bytes,
        ..Task::new(
            crate::convert::op_spec(&EncodeTablePart {
                output: OUTPUT.into(),
                whole_groups: regroup && k + 1 < count,
            }),
            DataRef::partition(ENCODED, k as u64),
            TaskKind::Release,
        )
    });
    (DataRef::partition(ENCODED, k as u64), encode)
}

/// The size of the part `producer` publishes: its `unit_bytes`, or else its
/// `memory_bytes`.
fn part_bytes(plan: &Plan, producer: TaskId) -> u64 {
    let t = &plan.tasks[producer as usize];
    if t.unit_bytes > 0 {
        t.unit_bytes
    } else {
        t.memory_bytes
    }
}

/// Pushes link `k` of a chain whose state is the `chain` dataset: a release task
/// running `op` on `input` (made by its task) and on link `k - 1`'s state (made by
/// `previous`), publishing link `k`'s state; `bytes` is what it holds.
fn push_link(
    plan: &mut Plan,
    op: crate::plan::OpSpec,
    (input, producer): (DataRef, TaskId),
    (chain, k, previous): (&str, usize, Option<TaskId>),
    bytes: u64,
) -> TaskId {
    let mut inputs = vec![input];
    let mut deps = vec![producer];
    if let Some(p) = previous {
        inputs.push(DataRef::partition(chain, k as u64 - 1));
        deps.push(p);
    }
    plan.push(Task {
        inputs,
        deps,
        memory_bytes: bytes,
        unit_bytes: bytes,
        ..Task::new(op, DataRef::partition(chain, k as u64), TaskKind::Release)
    })
}

/// The window of [`add_table_output`] for parts read from a source by `threads`
/// threads: each thread may be reading one part and encoding another while the
/// chain appends a third. With `threads + 1`, threads waited on the chain and a
/// CSV → Parquet conversion ran 13% slower; the parts are a source's partitions,
/// sized by the plan to fit the budget together.
pub fn read_window(threads: usize) -> usize {
    2 * threads + 1
}

/// Makes producer `k + window` wait for `writer` (the task that writes part `k`).
fn add_window_dep(
    plan: &mut Plan,
    parts: &[(DataRef, TaskId)],
    k: usize,
    window: usize,
    writer: TaskId,
) {
    if window == 0 {
        return;
    }
    if let Some((_, producer)) = parts.get(k + window) {
        let deps = &mut plan.tasks[*producer as usize].deps;
        if !deps.contains(&writer) {
            deps.push(writer);
        }
    }
}

#[cfg(test)]
mod tests;
