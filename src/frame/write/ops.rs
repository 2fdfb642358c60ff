//! The operations that write a table output (see [`super::add_table_output`]).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{TableFormat, TableOutput};
use crate::error::{Error, IoResultExt, Result};
use crate::plan::{DataRef, Entry, Event, Operation, Task, TaskEnv};
use crate::storage::ipc::parts as ipc_parts;
use crate::storage::parquet::parts as parquet_parts;

/// A table output opened once a process: its description and decoded schema.
struct OpenOutput {
    output: TableOutput,
    schema: SchemaRef,
}

impl OpenOutput {
    fn path(&self) -> &Path {
        Path::new(&self.output.path)
    }

    /// Bytes a Parquet row group may buffer while a part is encoded: a share of the
    /// budget such that every thread's encoder, and the parts waiting, fit a quarter.
    fn row_group_bytes(&self, env: &TaskEnv<'_>) -> usize {
        let share = env.pool.limit() / (4 * (env.threads as u64 + 1));
        usize::try_from(share).unwrap_or(usize::MAX)
    }
}

/// The output dataset `id` of the plan, opened once a process.
fn open_output(env: &TaskEnv<'_>, id: &str) -> Result<Arc<OpenOutput>> {
    env.resources
        .get_or_open(&format!("table-output/{id}"), || {
            let output = TableOutput::of(env.dataset(id)?)?;
            let schema = output.schema.decode()?;
            Ok(OpenOutput { output, schema })
        })
}

/// The `i`th input of `task`.
fn input(task: &Task, i: usize) -> Result<&DataRef> {
    task.inputs.get(i).ok_or_else(|| Error::BadPlan {
        reason: format!(
            "task {} ({}) needs input {i} and has {}",
            task.id,
            task.op.name,
            task.inputs.len()
        ),
    })
}

/// The bytes of the entry at `key`.
fn bytes_entry(env: &TaskEnv<'_>, key: &DataRef) -> Result<Bytes> {
    match &*env.store.get(key)? {
        Entry::Bytes(b) => Ok(b.clone()),
        other => Err(Error::corrupt(
            env.store.dir(),
            "store entry",
            format!("{key} holds {}, not bytes", other.kind()),
        )),
    }
}

/// Encodes the batches at `key` in `out`'s format; returns the bytes and the rows.
fn encode(
    env: &TaskEnv<'_>,
    out: &OpenOutput,
    key: &DataRef,
    format: TableFormat,
    whole_groups_only: bool,
) -> Result<(Bytes, u64)> {
    let (schema, batches) = env.store.batches(key)?;
    encode_batches(env, out, key, (&schema, batches), format, whole_groups_only)
}

/// Encodes `batches` (of `schema`, which may mark a regrouped entry's cut) in
/// `out`'s format; returns the bytes and the rows. `key` names the reservations.
fn encode_batches(
    env: &TaskEnv<'_>,
    out: &OpenOutput,
    key: &DataRef,
    (schema, mut batches): (
        &SchemaRef,
        Box<dyn Iterator<Item = Result<RecordBatch>> + '_>,
    ),
    format: TableFormat,
    whole_groups_only: bool,
) -> Result<(Bytes, u64)> {
    let options = &out.output.options;
    match format {
        TableFormat::Csv => crate::storage::csv::encode_part(options.delimiter, &mut batches),
        TableFormat::Parquet | TableFormat::ParquetDir => {
            let mut parquet = options.parquet();
            let grouped = Grouped::of(schema);
            let mut rows = batches;
            if let Some(g) = grouped {
                parquet.row_group_rows = usize::try_from(g.group_rows.max(1)).unwrap_or(usize::MAX);
                if whole_groups_only {
                    rows = Box::new(first_rows(rows, g.whole_rows));
                }
            }
            encode_parquet(env, out, key, parquet, &mut rows)
        }
        TableFormat::Ipc => ipc_parts::encode_part(
            out.path(),
            &out.schema,
            options.ipc_compression,
            &mut batches,
        ),
    }
}

/// Encodes `batches` as a small Parquet file in memory (see
/// [`parquet_parts::encode_part`]), with everything the encoder grows reserved on the
/// pool before it grows: the file's buffer as it is written ([`ReservedBuffer`]), and
/// the open row group's pages, which a batch grows by its own bytes at most and the
/// sink closes at [`OpenOutput::row_group_bytes`]. Returns the file and its rows.
/// `key` (where the rows come from) names the reservations.
fn encode_parquet(
    env: &TaskEnv<'_>,
    out: &OpenOutput,
    key: &DataRef,
    options: crate::storage::parquet::ParquetWriteOptions,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
) -> Result<(Bytes, u64)> {
    let row_group_bytes = out.row_group_bytes(env) as u64;
    let mut file = ReservedBuffer {
        env,
        bytes: Vec::new(),
        reservation: env.pool.reserve(format!("Parquet file of {key}")),
        refused: false,
    };
    let mut group = env.pool.reserve(format!("Parquet row group of {key}"));
    let mut batches = batches.peekable();
    let sample = match batches.peek() {
        Some(Ok(first)) => Some(first.clone()),
        _ => None,
    };
    let encoded = (|| -> Result<u64> {
        let mut sink = crate::storage::parquet::ParquetSink::create_sampled(
            &mut file,
            out.path(),
            out.schema.clone(),
            options,
            sample.as_ref(),
        )?
        .with_row_group_bytes(out.row_group_bytes(env));
        let (mut rows, mut fed, mut largest) = (0u64, 0u64, 0u64);
        for batch in batches {
            let batch = batch?;
            let n = batch.num_rows() as u64;
            let bytes = crate::memory::batch_memory(&batch);
            rows += n;
            fed = fed.saturating_add(bytes);
            // The sink hands a group a row group's rows of a batch at most.
            let group_rows = options.row_group_rows as u64;
            largest = largest.max(bytes / n.max(1) * n.min(group_rows));
            // What the group's pages may hold once the batch is in: no more than
            // was fed, and no more than a group plus the slice that fills it.
            let bound = fed.min(row_group_bytes.saturating_add(largest));
            let more = bound.saturating_sub(group.size());
            env.reserve(&mut group, more)?;
            sink.write(&batch)?;
        }
        sink.into_inner()?;
        Ok(rows)
    })();
    let rows = encoded?;
    let mut bytes = std::mem::take(&mut file.bytes);
    // The store reserves the part's length: no spare capacity beyond it.
    bytes.shrink_to_fit();
    Ok((Bytes::from(bytes), rows))
}

/// A Parquet part's bytes, written in memory: each growth of the buffer is reserved
/// on the pool first (store entries spilled to make room), doubling so that few
/// growths are made.
///
/// A part can be larger than the whole budget: a key range the cut could not split
/// (one key repeated, or too few fences under a tiny budget) is one part whatever
/// its size. Its file goes on growing where the pool has no room left, unreserved,
/// rather than failing a job whose every other task fits: the RSS thresholds still
/// see it.
struct ReservedBuffer<'a, 'e> {
    env: &'a TaskEnv<'e>,
    bytes: Vec<u8>,
    reservation: crate::memory::Reservation,
    /// The pool refused a growth: later ones are not asked for (each would spill
    /// every store entry again first).
    refused: bool,
}

/// The first growth of a [`ReservedBuffer`] (then it doubles): small, as budgets
/// of a few dozen KiB are valid.
const FIRST_BUFFER_BYTES: usize = 4 << 10;

impl std::io::Write for ReservedBuffer<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let needed = self.bytes.len().saturating_add(buf.len());
        if needed > self.bytes.capacity() {
            let capacity = needed
                .max(self.bytes.capacity().saturating_mul(2))
                .max(FIRST_BUFFER_BYTES);
            let more = (capacity as u64).saturating_sub(self.reservation.size());
            if !self.refused {
                // Refused, it grows unreserved: see the type's docs.
                self.refused = self.env.reserve(&mut self.reservation, more).is_err();
            }
            self.bytes.reserve_exact(capacity - self.bytes.len());
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first `n` rows of `batches`.
fn first_rows(
    batches: impl Iterator<Item = Result<RecordBatch>>,
    n: u64,
) -> impl Iterator<Item = Result<RecordBatch>> {
    let mut left = n;
    batches.map_while(move |b| {
        if left == 0 {
            return None;
        }
        Some(b.map(|b| {
            let take = (b.num_rows() as u64).min(left);
            left -= take;
            b.slice(0, take as usize)
        }))
    })
}

/// Schema metadata keys of a regrouped entry (see [`RegroupRows`]).
const WHOLE_ROWS: &str = "blockwise.whole_rows";
const GROUP_ROWS: &str = "blockwise.group_rows";

/// How a regrouped entry is cut into row groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grouped {
    /// Rows of the leading whole row groups.
    whole_rows: u64,
    /// Rows a row group holds.
    group_rows: u64,
}

impl Grouped {
    fn of(schema: &arrow::datatypes::Schema) -> Option<Self> {
        let get = |k: &str| schema.metadata().get(k)?.parse::<u64>().ok();
        Some(Grouped {
            whole_rows: get(WHOLE_ROWS)?,
            group_rows: get(GROUP_ROWS)?,
        })
    }

    /// `schema` with this cut in its metadata.
    fn mark(self, schema: &arrow::datatypes::Schema) -> arrow::datatypes::SchemaRef {
        let mut metadata = schema.metadata().clone();
        metadata.insert(WHOLE_ROWS.to_string(), self.whole_rows.to_string());
        metadata.insert(GROUP_ROWS.to_string(), self.group_rows.to_string());
        std::sync::Arc::new(schema.clone().with_metadata(metadata))
    }
}

/// Cuts a Parquet file's rows into row groups of exactly `row_group_rows` rows
/// whatever the parts hold: a chain that publishes, for part K (input 0), the rows
/// the previous link left over (the rows of input 1 past its whole groups) followed
/// by the part's rows, marking in the schema's metadata how many leading rows make
/// whole row groups (`blockwise.whole_rows`) and how many rows a group holds
/// (`blockwise.group_rows`: `row_group_rows`, or fewer when a group of that many
/// rows would pass a share of the memory budget). The encoder of link K encodes the
/// whole groups only (all rows, for the last link). Only slices of batches move: no
/// value is copied in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegroupRows {
    /// The id of the output dataset.
    pub output: String,
}

impl Operation for RegroupRows {
    const NAME: &'static str = "regroup_rows";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let out = open_output(env, &self.output)?;
        let (part_schema, part) = env.store.batches(input(task, 0)?)?;
        let part = part.collect::<Result<Vec<RecordBatch>>>()?;
        let mut batches = Vec::new();
        if let Some(previous) = task.inputs.get(1) {
            let (schema, carried) = env.store.batches(previous)?;
            let skip = Grouped::of(&schema).map_or(0, |g| g.whole_rows);
            let mut skipped = 0u64;
            for b in carried {
                let b = b?;
                let n = b.num_rows() as u64;
                let from = skip.saturating_sub(skipped).min(n);
                skipped += n;
                if from < n {
                    batches.push(b.slice(from as usize, (n - from) as usize));
                }
            }
        }
        // The part's own rows tell the width of a row (carried slices would count
        // the whole buffers they are cut from).
        let (part_rows, part_bytes) = part.iter().fold((0u64, 0u64), |(r, m), b| {
            (r + b.num_rows() as u64, m + crate::memory::batch_memory(b))
        });
        batches.extend(part);
        let total: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let row_bytes = part_bytes.checked_div(part_rows).unwrap_or(1).max(1);
        let cap_rows = (out.row_group_bytes(env) as u64 / row_bytes).max(1);
        let group_rows = out.output.options.row_group_rows.clamp(1, cap_rows);
        let grouped = Grouped {
            whole_rows: total / group_rows * group_rows,
            group_rows,
        };
        let schema = grouped.mark(&part_schema);
        let mut batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // The copy that joins the batches, reserved until the store holds the entry.
        let mut joining = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        if batches.len() > MAX_CARRIED_BATCHES {
            // Many small parts (a tiny --blocksize) would otherwise hand on a longer
            // list of slices at every step, and the chain would cost the square of
            // the parts: one copy of the carry (less than a row group) every so
            // often keeps it linear. It also keeps the row groups whole: the encoder
            // closes a group whose pages pass its byte cap after any batch, and tiny
            // batches would each make one. The copy is as large as the entry; when
            // that is more than the pool can give (a key range larger than the
            // budget), it is made unreserved, as the store holds such an entry on
            // disk.
            let _ = env.reserve(&mut joining, total.saturating_mul(row_bytes));
            batches = join_batches(&schema, &batches, row_bytes, group_rows)?;
        }
        drop(joining);
        env.store
            .put(&task.output, Entry::Batches { schema, batches })
    }
}

/// Batches a regrouped part may carry before they are joined.
const MAX_CARRIED_BATCHES: usize = 32;

/// Bytes a joined batch holds at most, unless that would make more than half
/// [`MAX_CARRIED_BATCHES`] of them. A spilled entry is written a batch at a time,
/// each encoded whole in memory first and compressed by a context sized to its
/// buffers: small batches keep what a spill adds beside the budget small. (When
/// spills were LZ4 frames, whose block size follows the buffer, one joined batch of
/// a 16 MiB budget's carry took 8 MiB of compressor scratch to spill.)
const JOINED_BATCH_BYTES: u64 = 256 << 10;

/// `batches` copied into one buffer a column and handed on as slices of it of at
/// most [`JOINED_BATCH_BYTES`] (at `row_bytes` a row), or of a sixteenth of the
/// rows when that is more: few enough that the next link does not join them again.
///
/// The slices end where row groups of `group_rows` rows end (the entry's first row
/// starts a group), or cut a larger group into equal shares: the encoder checks a
/// group's byte cap between batches, so this keeps the groups as the unjoined
/// batches would.
pub(super) fn join_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    row_bytes: u64,
    group_rows: u64,
) -> Result<Vec<RecordBatch>> {
    let joined = arrow::compute::concat_batches(schema, batches)?;
    let rows = joined.num_rows();
    let target = usize::try_from(JOINED_BATCH_BYTES / row_bytes.max(1))
        .unwrap_or(usize::MAX)
        .max(rows.div_ceil(MAX_CARRIED_BATCHES / 2))
        .max(1);
    let group = usize::try_from(group_rows).unwrap_or(usize::MAX).max(1);
    // Slices within a group of `group` rows starting at 0: whole groups, or shares.
    let starts: Vec<usize> = if group <= target {
        (0..rows).step_by(target / group * group).collect()
    } else {
        let shares = group.div_ceil(target);
        (0..rows)
            .step_by(group)
            .flat_map(|g| (0..shares).map(move |j| g + j * group / shares))
            .filter(|&start| start < rows)
            .collect()
    };
    Ok(starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = starts.get(i + 1).copied().unwrap_or(rows);
            joined.slice(start, end - start)
        })
        .collect())
}

/// Formats one part of a single-file output: reads record batches (input 0) and
/// publishes the encoded bytes (a CSV text, a complete small Parquet or IPC file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeTablePart {
    /// The id of the output dataset (its meta is a [`TableOutput`]).
    pub output: String,
    /// Parquet: encode only the whole row groups of a regrouped part (see
    /// [`RegroupRows`]); the rest is carried to the next.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_groups: bool,
}

impl Operation for EncodeTablePart {
    const NAME: &'static str = "encode_table_part";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let out = open_output(env, &self.output)?;
        // A CSV or IPC encoder's buffer grows to about the part's size before the
        // bytes are handed to the store, which reserves them itself; a Parquet
        // encoder reserves what it grows as it grows.
        let mut reservation = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        if !matches!(
            out.output.format,
            TableFormat::Parquet | TableFormat::ParquetDir
        ) {
            env.reserve(&mut reservation, task.unit_bytes)?;
        }
        let (bytes, rows) = encode(
            env,
            &out,
            input(task, 0)?,
            out.output.format,
            self.whole_groups,
        )?;
        drop(reservation);
        env.store.put(&task.output, Entry::Bytes(bytes))?;
        env.emit(Event::RowsWritten(rows));
        Ok(())
    }
}

/// Where an appended part lies in the output file: the state the chain passes on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedPart {
    /// Where the part's bytes start in the file.
    pub start: u64,
    /// Where they end (where the next part starts). A link that wrote nothing (it
    /// only gathered a small part) starts and ends where the one before it ended.
    pub end: u64,
    /// Parquet: how far the part's offsets moved.
    #[serde(default)]
    pub shift: i64,
    /// IPC: the record batches' places in the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<ipc_parts::BlockPlace>,
    /// The first part of a Parquet or IPC file is written whole, its own footer
    /// after its data (the next part writes over it): the file's length then, so
    /// that a file of one part is finished by setting its length, its footer
    /// neither decoded nor written again. 0 otherwise.
    #[serde(default)]
    pub whole: u64,
    /// Bytes of the part's footer metadata in the state entry (see [`state_entry`]).
    #[serde(default)]
    pub footer_bytes: u64,
    /// Parquet: rows of small parts gathered so far and not yet written, carried
    /// to the next link (see [`AppendTablePart`]).
    #[serde(default)]
    pub pending_rows: u64,
}

/// A chain link's state as read back from the store.
struct ChainState {
    state: AppendedPart,
    /// The part's footer metadata (Parquet).
    footer: Bytes,
    /// The gathered rows not yet written.
    pending: Vec<RecordBatch>,
}

/// The chain state as a store entry: the length of the JSON of `state` (8 bytes,
/// little-endian), that JSON, then `footer` (a Parquet part's footer metadata, which
/// for a wide table holds a few hundred bytes a column: raw, not in JSON), then the
/// pending rows as an Arrow IPC stream (none when there are none).
fn state_entry(
    state: &AppendedPart,
    footer: &[u8],
    pending: &[RecordBatch],
    schema: &SchemaRef,
) -> Result<Entry> {
    let state = AppendedPart {
        footer_bytes: footer.len() as u64,
        pending_rows: pending.iter().map(|b| b.num_rows() as u64).sum(),
        ..state.clone()
    };
    let json = serde_json::to_vec(&state).map_err(|e| Error::bug("chain state to JSON", e))?;
    let mut bytes = Vec::with_capacity(8 + json.len() + footer.len());
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(footer);
    if !pending.is_empty() {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, schema)?;
        for batch in pending {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(Entry::Bytes(Bytes::from(bytes)))
}

/// The chain state at `key` (see [`state_entry`]), with its pending rows when
/// `held` is given, on which they are reserved before they are decoded.
fn appended(
    env: &TaskEnv<'_>,
    key: &DataRef,
    held: Option<&mut crate::memory::Reservation>,
) -> Result<ChainState> {
    let bytes = bytes_entry(env, key)?;
    let bad =
        |detail: String| Error::corrupt(env.store.dir(), "store entry", format!("{key}: {detail}"));
    let len = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= bytes.len() - 8)
        .ok_or_else(|| bad("not a chain state".into()))?;
    let state: AppendedPart =
        serde_json::from_slice(&bytes[8..8 + len]).map_err(|e| bad(e.to_string()))?;
    let footer_end = usize::try_from(state.footer_bytes)
        .ok()
        .and_then(|n| (8 + len).checked_add(n))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| bad("the footer runs past the entry".into()))?;
    let rest = bytes.slice(footer_end..);
    let mut pending = Vec::new();
    if let Some(held) = held.filter(|_| !rest.is_empty()) {
        env.reserve(held, rest.len() as u64)?;
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(rest), None)
            .map_err(|e| bad(e.to_string()))?;
        for batch in reader {
            pending.push(batch.map_err(|e| bad(e.to_string()))?);
        }
    }
    Ok(ChainState {
        footer: bytes.slice(8 + len..footer_end),
        state,
        pending,
    })
}

/// Writes `bytes` at `offset` of the file at `path` (created if missing, never
/// truncated: the finishing task sets the length).
fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)?;
    file.write_all_at(bytes, offset).at(path)
}

/// Writes the encoded `part` into `out`'s file at `start`, with the file's header
/// when it is the first thing written there (`start` 0). Returns where it lies and
/// its footer metadata (Parquet).
fn write_part(out: &OpenOutput, start: u64, part: &Bytes) -> Result<(AppendedPart, Bytes)> {
    let path = out.path();
    let first = start == 0;
    let mut state = AppendedPart {
        start,
        ..AppendedPart::default()
    };
    let mut footer = Bytes::new();
    let (header, data): (Bytes, Bytes) = match out.output.format {
        TableFormat::Csv => {
            let header = if first {
                crate::storage::csv::header_line(&out.schema, out.output.options.delimiter)
            } else {
                Vec::new()
            };
            (Bytes::from(header), part.clone())
        }
        TableFormat::Parquet => {
            let layout = parquet_parts::part_layout(path, part)?;
            let header = if first {
                Bytes::from_static(parquet_parts::header())
            } else {
                Bytes::new()
            };
            let data_at = start + header.len() as u64;
            state.shift = data_at as i64 - layout.data.start as i64;
            footer = part.slice(layout.footer);
            (header, part.slice(layout.data))
        }
        TableFormat::Ipc => {
            let layout = ipc_parts::part_layout(path, part)?;
            let header = if first {
                part.slice(layout.header.clone())
            } else {
                Bytes::new()
            };
            let data_at = start + header.len() as u64;
            let shift = data_at as i64 - layout.data.start as i64;
            state.blocks = layout
                .blocks
                .iter()
                .map(|&(offset, meta, body)| (offset + shift, meta, body))
                .collect();
            (header, part.slice(layout.data))
        }
        TableFormat::ParquetDir => {
            return Err(Error::BadPlan {
                reason: "a Parquet directory is written part by part, not appended".into(),
            })
        }
    };
    if first && out.output.format != TableFormat::Csv {
        // The header and data are the part's own first bytes, at the same offsets.
        write_at(path, 0, part)?;
        state.whole = part.len() as u64;
    } else {
        write_at(path, start, &header)?;
        write_at(path, start + header.len() as u64, &data)?;
    }
    state.end = start + (header.len() + data.len()) as u64;
    Ok((state, footer))
}

/// Copies one part (input 0) into a single-file output behind the parts before it
/// (whose state is input 1; the first link has none), and publishes where it landed
/// ([`AppendedPart`]).
///
/// A part is either encoded bytes (an encoding task's, or a producer's that encodes
/// its own part: [`publish_part`]) or, for a Parquet file, the record batches of a
/// part too small to be a row group of its own. Those are gathered: carried in the
/// state to the next link until the next small part would make more than a row
/// group, then encoded as one (the last ones by [`FinishTableOutput`]). Parts that
/// come in any order (a grouping's buckets) are written in that order.
///
/// Copies, or encodes what its inputs hold: a rerun writes the same bytes at the
/// same place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendTablePart {
    /// The id of the output dataset.
    pub output: String,
}

impl Operation for AppendTablePart {
    const NAME: &'static str = "append_table_part";
    const VERSION: u32 = 2;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let out = open_output(env, &self.output)?;
        let mut held = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        let previous = match task.inputs.get(1) {
            Some(key) => Some(appended(env, key, Some(&mut held))?),
            None => None,
        };
        let start = previous.as_ref().map_or(0, |p| p.state.end);
        let mut pending = previous.map(|p| p.pending).unwrap_or_default();
        let key = input(task, 0)?;
        let entry = env.store.get(key)?;
        let part = match &*entry {
            Entry::Bytes(bytes) => Some(bytes.clone()),
            Entry::Batches { batches, .. } => {
                let batches = batches.iter().filter(|b| b.num_rows() > 0).cloned();
                if out.output.format == TableFormat::Parquet {
                    let batches: Vec<RecordBatch> = batches.collect();
                    if fits_group(env, &out, &pending, &batches) {
                        pending.extend(batches);
                        // A quarter of a row group gathered is written now, not
                        // carried on: each link would copy it into its state
                        // again, and the last would encode all of it alone
                        // (a million groups from 59 buckets: 0.9 s after every
                        // other task had finished).
                        match small_part(env, &out, &pending) {
                            true => None,
                            false => {
                                let full = std::mem::take(&mut pending);
                                Some(encode_gathered(env, &out, key, full)?)
                            }
                        }
                    } else {
                        let full = std::mem::replace(&mut pending, batches);
                        Some(encode_gathered(env, &out, key, full)?)
                    }
                } else {
                    let (bytes, rows) = encode_batches(
                        env,
                        &out,
                        key,
                        (&out.schema, Box::new(batches.map(Ok))),
                        out.output.format,
                        false,
                    )?;
                    env.emit(Event::RowsWritten(rows));
                    Some(bytes)
                }
            }
            other => {
                return Err(Error::corrupt(
                    env.store.dir(),
                    "store entry",
                    format!("{key} holds {}, not a table part", other.kind()),
                ))
            }
        };
        drop(entry);
        let (state, footer) = match part {
            Some(part) => {
                let (state, footer) = write_part(&out, start, &part)?;
                env.emit(Event::BytesWritten(state.end - state.start));
                (state, footer)
            }
            None => (
                AppendedPart {
                    start,
                    end: start,
                    ..AppendedPart::default()
                },
                Bytes::new(),
            ),
        };
        let entry = state_entry(&state, &footer, &pending, &out.schema)?;
        drop(pending);
        drop(held);
        env.store.put(&task.output, entry)
    }
}

/// Whether `more` small batches join the gathered `pending` rows in one row group.
fn fits_group(
    env: &TaskEnv<'_>,
    out: &OpenOutput,
    pending: &[RecordBatch],
    more: &[RecordBatch],
) -> bool {
    let (rows, bytes) = pending.iter().chain(more).fold((0u64, 0u64), |(r, m), b| {
        (r + b.num_rows() as u64, m + crate::memory::batch_memory(b))
    });
    rows <= out.output.options.row_group_rows && bytes <= out.row_group_bytes(env) as u64
}

/// Encodes gathered rows as one Parquet part (a row group); reports the rows.
fn encode_gathered(
    env: &TaskEnv<'_>,
    out: &OpenOutput,
    key: &DataRef,
    batches: Vec<RecordBatch>,
) -> Result<Bytes> {
    let (bytes, rows) = encode_parquet(
        env,
        out,
        key,
        out.output.options.parquet(),
        &mut batches.into_iter().map(Ok),
    )?;
    env.emit(Event::RowsWritten(rows));
    Ok(bytes)
}

/// Whether `batches` are less than [`SMALL_PART_SHARE`] of a row group, in rows
/// and in bytes.
fn small_part(env: &TaskEnv<'_>, out: &OpenOutput, batches: &[RecordBatch]) -> bool {
    let (rows, bytes) = batches.iter().fold((0u64, 0u64), |(r, m), b| {
        (r + b.num_rows() as u64, m + crate::memory::batch_memory(b))
    });
    rows < out.output.options.row_group_rows / SMALL_PART_SHARE
        && bytes < out.row_group_bytes(env) as u64 / SMALL_PART_SHARE
}

/// A part smaller than this share of a row group (in rows, or in bytes of
/// [`OpenOutput::row_group_bytes`]) is published as its batches by
/// [`publish_part`], to be gathered with others into one row group.
const SMALL_PART_SHARE: u64 = 4;

/// Publishes at `key` one part of the table output `output`, of `schema`: encoded,
/// as an encoding task would ([`AppendTablePart`] then only copies it), by a
/// producer that writes its part itself instead of handing its batches to an
/// encoding task through the store. A part of a Parquet file smaller than a
/// quarter of a row group is published as its batches, to be gathered with others
/// by the chain: a grouping of 100 groups in 59 buckets writes one row group, not
/// 59.
///
/// # Errors
/// The batches' errors; encoding errors; the store's.
pub fn publish_part(
    env: &TaskEnv<'_>,
    output: &str,
    key: &DataRef,
    schema: SchemaRef,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
) -> Result<()> {
    let out = open_output(env, output)?;
    let mut head = Vec::new();
    if out.output.format == TableFormat::Parquet {
        while small_part(env, &out, &head) {
            let Some(batch) = batches.next() else {
                return env.store.put(
                    key,
                    Entry::Batches {
                        schema,
                        batches: head,
                    },
                );
            };
            head.push(batch?);
        }
    }
    let mut rows = head.into_iter().map(Ok).chain(batches);
    let (bytes, written) = encode_batches(
        env,
        &out,
        key,
        (&schema, Box::new(&mut rows)),
        out.output.format,
        false,
    )?;
    env.emit(Event::RowsWritten(written));
    env.store.put(key, Entry::Bytes(bytes))
}

/// Ends a single-file output: after the last appended part (the states of every part
/// are the inputs), writes the rows still gathered, then the footer (Parquet, IPC),
/// and sets the file's length; with nothing written, writes the empty output (a CSV
/// header, a Parquet or IPC file without rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishTableOutput {
    /// The id of the output dataset.
    pub output: String,
}

impl Operation for FinishTableOutput {
    const NAME: &'static str = "finish_table_output";
    const VERSION: u32 = 2;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let out = open_output(env, &self.output)?;
        let path = out.path();
        let mut held = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        let mut states = Vec::with_capacity(task.inputs.len());
        for (i, key) in task.inputs.iter().enumerate() {
            // Only the last link's pending rows are still to write.
            let last = i + 1 == task.inputs.len();
            let mut state = appended(env, key, last.then_some(&mut held))?;
            let pending = std::mem::take(&mut state.pending);
            states.push(state);
            if !pending.is_empty() {
                let start = states.last().map_or(0, |s| s.state.end);
                let part = encode_gathered(env, &out, key, pending)?;
                let (state, footer) = write_part(&out, start, &part)?;
                env.emit(Event::BytesWritten(state.end - state.start));
                states.push(ChainState {
                    state,
                    footer,
                    pending: Vec::new(),
                });
            }
        }
        drop(held);
        // Links that only gathered rows wrote nothing.
        states.retain(|s| s.state.end > s.state.start);
        let Some(last) = states.last() else {
            let bytes = empty_output(&out)?;
            std::fs::write(path, &bytes).at(path)?;
            env.emit(Event::BytesWritten(bytes.len() as u64));
            return Ok(());
        };
        let end = last.state.end;
        if let [only] = states.as_slice() {
            if only.state.whole > 0 {
                // The one part is the whole file, footer included.
                let file = OpenOptions::new().write(true).open(path).at(path)?;
                return file.set_len(only.state.whole).at(path);
            }
        }
        let mut tail = Vec::new();
        match out.output.format {
            TableFormat::Csv | TableFormat::ParquetDir => {}
            TableFormat::Parquet => {
                let placed: Vec<parquet_parts::PlacedPart<'_>> = states
                    .iter()
                    .map(|s| parquet_parts::PlacedPart {
                        footer: &s.footer,
                        shift: s.state.shift,
                    })
                    .collect();
                parquet_parts::write_footer(path, &placed, &mut tail)?;
            }
            TableFormat::Ipc => {
                let blocks: Vec<_> = states
                    .iter()
                    .flat_map(|s| s.state.blocks.iter().copied())
                    .collect();
                ipc_parts::write_footer(path, &out.schema, &blocks, &mut tail)?;
            }
        }
        write_at(path, end, &tail)?;
        // Whatever an interrupted earlier run left past the end goes.
        let file = OpenOptions::new().write(true).open(path).at(path)?;
        file.set_len(end + tail.len() as u64).at(path)?;
        env.emit(Event::BytesWritten(tail.len() as u64));
        Ok(())
    }
}

/// The whole bytes of an output with no rows.
fn empty_output(out: &OpenOutput) -> Result<Vec<u8>> {
    let path = out.path();
    let options = &out.output.options;
    Ok(match out.output.format {
        TableFormat::Csv => crate::storage::csv::header_line(&out.schema, options.delimiter),
        TableFormat::Parquet | TableFormat::ParquetDir => {
            let mut bytes = Vec::new();
            parquet_parts::write_empty(path, out.schema.clone(), options.parquet(), &mut bytes)?;
            bytes
        }
        TableFormat::Ipc => ipc_parts::encode_part(
            path,
            &out.schema,
            options.ipc_compression,
            &mut std::iter::empty(),
        )?
        .0
        .to_vec(),
    })
}

/// The name of part `k` of a Parquet directory, as Dask writes it.
pub fn part_file_name(k: u64) -> String {
    format!("part.{k}.parquet")
}

/// Writes one part of a Parquet directory output: the record batches of input 0 (or
/// none, for the only part of an empty output) as `part.K.parquet`, K being the
/// output partition's index, published atomically (a temporary name, then a rename
/// over any earlier copy, which holds the same rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteTablePart {
    /// The id of the output dataset.
    pub output: String,
}

impl Operation for WriteTablePart {
    const NAME: &'static str = "write_table_part";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let out = open_output(env, &self.output)?;
        let DataRef::Partition { index, .. } = task.output else {
            return Err(Error::BadPlan {
                reason: format!("task {}: a Parquet part must write a partition", task.id),
            });
        };
        let dir = out.path();
        std::fs::create_dir_all(dir).at(dir)?;
        // The encoder reserves what it grows (see `encode_parquet`).
        let (bytes, rows) = match task.inputs.first() {
            Some(key) => encode(env, &out, key, TableFormat::Parquet, false)?,
            None => (Bytes::from(empty_output(&out)?), 0),
        };
        let target = dir.join(part_file_name(index));
        let temporary = temporary_name(&target);
        std::fs::write(&temporary, &bytes).at(&temporary)?;
        std::fs::rename(&temporary, &target).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            Error::io(&target, e)
        })?;
        env.emit(Event::RowsWritten(rows));
        env.emit(Event::BytesWritten(bytes.len() as u64));
        Ok(())
    }
}

/// A name beside `target` no other writer uses: hidden (readers skip names starting
/// with a dot), with this process and a counter.
fn temporary_name(target: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}
