//! The array job: a lazy [`Array`] computed into memory (`compute`) or written to a
//! file (`.zarr`, `.npy`, an npy stack), through a plan run like a conversion's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::job::{finish_with_publish, run_plan_then, OnFailure, PlanSizing, STAGED_OUTPUT};
use super::{output_spec, sinks, ConvertOptions};
use crate::array::graph::{regular_chunks, Array, Chunks};
use crate::array::lower::{collect, Placement, PlanBuilder, Target};
use crate::array::select::Selection;
use crate::array::CreateArray;
use crate::array::FinishArray;
use crate::error::{Error, Result};
use crate::exec::{JobContext, JobStats};
use crate::grid::tuple_text;
use crate::plan::{check_memory, DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskKind};
use crate::storage::array::DType;
use crate::storage::atomic::{plan_workdir, AtomicOutput};
use crate::storage::Format;

/// A computed array in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedArray {
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its dtype.
    pub dtype: DType,
    /// Its elements in C order, native byte order.
    pub bytes: Vec<u8>,
    /// For `unique` with counts asked from the embedding: how often each value
    /// occurs.
    pub counts: Option<Vec<i64>>,
}

/// Computes `array` into memory.
///
/// # Errors
/// [`Error::ArrayArgument`] when the result is larger than half the memory limit
/// (naming both: write it to a file instead); the plan's and the run's errors.
pub fn compute(array: &Array, ctx: &JobContext) -> Result<ComputedArray> {
    let limit = ctx.pool.limit();
    if array.nbytes() > limit / 2 {
        return Err(Error::ArrayArgument {
            op: "compute".into(),
            reason: format!(
                "the result, of shape {} and dtype {}, takes {} bytes, more than half the \
                 {limit}-byte memory limit; write it to a file instead (-o out.zarr), or \
                 reduce it first",
                tuple_text(array.shape()),
                array.dtype().name(),
                array.nbytes()
            ),
        });
    }
    let (mut plan, lowered) = plan_compute(array, PlanSizing::of(ctx))?;
    plan.workdir = scratch_workdir(ctx).display().to_string();
    check_memory(&plan, limit)?;
    std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
    let (shape, dtype) = (array.shape().to_vec(), array.dtype());
    // The assembled result is held on the pool until it is handed over, beside the
    // chunks it is assembled from.
    let mut held = ctx.pool.reserve("computed array");
    let (_, bytes) = run_plan_then(&plan, ctx, OnFailure::RemoveAll, |store| {
        held.try_grow(array.nbytes())?;
        collect(store, &lowered, &shape, dtype)
    })?;
    drop(held);
    Ok(ComputedArray {
        shape,
        dtype,
        bytes,
        counts: None,
    })
}

/// The distinct values of `array` in numpy's order (NaNs as one, last) and how
/// often each occurs (numpy's `unique` with `return_counts`): a tree of merges
/// whose result's length only the run tells, held on the pool as it is read.
///
/// # Errors
/// As [`compute`]; the pool's error when the distinct values do not fit the
/// memory limit.
pub fn compute_unique(array: &Array, ctx: &JobContext) -> Result<(ComputedArray, Vec<i64>)> {
    let sizing = PlanSizing::of(ctx);
    let mut plan = Plan::new();
    let (dataset, _) = PlanBuilder::new(&mut plan)
        .with_task_budget(task_budget(sizing))
        .add_unique(array)?;
    plan.workdir = scratch_workdir(ctx).display().to_string();
    check_memory(&plan, sizing.memory_limit)?;
    std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
    let dtype = array.dtype();
    let mut held = ctx.pool.reserve("unique values");
    let (_, (values, counts)) = run_plan_then(&plan, ctx, OnFailure::RemoveAll, |store| {
        let entry = store.get(&DataRef::chunk(&dataset, vec![0]))?;
        let crate::plan::Entry::Bytes(bytes) = &*entry else {
            return Err(Error::bug("a unique result that is not bytes", ""));
        };
        held.try_grow(bytes.len() as u64 * 2)?;
        crate::array::lower::decode_unique(bytes, dtype)
    })?;
    let mut bytes = Vec::with_capacity(values.len() * dtype.size());
    values.encode(dtype, &mut bytes);
    drop(held);
    Ok((
        ComputedArray {
            shape: vec![values.len() as u64],
            dtype,
            bytes,
            counts: None,
        },
        counts,
    ))
}

/// The elements a boolean mask selects (`x[mask]`), computed into memory: each
/// slab of whole rows keeps its selected values, and the slabs are joined in order,
/// held on the pool as they are read. The unknown length is known then.
///
/// # Errors
/// As [`compute`]; the pool's error when the selected values do not fit the
/// memory limit.
pub fn compute_selected(selection: &Selection, ctx: &JobContext) -> Result<ComputedArray> {
    let sizing = PlanSizing::of(ctx);
    let (mut plan, dataset, keys) = plan_selection(selection, sizing)?;
    plan.workdir = scratch_workdir(ctx).display().to_string();
    check_memory(&plan, sizing.memory_limit)?;
    std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
    let dtype = selection.dtype();
    let limit = ctx.pool.limit();
    let mut held = ctx.pool.reserve("selected values");
    let (_, bytes) = run_plan_then(&plan, ctx, OnFailure::RemoveAll, |store| {
        let mut out: Vec<u8> = Vec::new();
        for key in keys {
            let entry = store.get(&DataRef::chunk(&dataset, key))?;
            let crate::plan::Entry::Bytes(part) = &*entry else {
                return Err(Error::bug("a selection's slab that is not bytes", ""));
            };
            let total = out.len() as u64 + part.len() as u64;
            if total > limit / 2 {
                return Err(Error::ArrayArgument {
                    op: "compute".into(),
                    reason: format!(
                        "the boolean selection of shape {} and dtype {} takes more than {total} \
                         bytes, more than half the {limit}-byte memory limit; reduce it \
                         (x[mask].sum()), or use where(mask, x, fill) to keep its shape",
                        selection.shape_text(),
                        dtype.name()
                    ),
                });
            }
            held.try_grow(part.len() as u64)?;
            out.extend_from_slice(part);
        }
        Ok(out)
    })?;
    drop(held);
    let shape = selected_shape(selection, bytes.len() as u64 / dtype.size() as u64, ctx)?;
    Ok(ComputedArray {
        shape,
        dtype,
        bytes,
        counts: None,
    })
}

/// The plan laying out a boolean selection's elements (no working directory yet):
/// the stage's dataset and its slabs' keys, in order.
///
/// # Errors
/// As [`PlanBuilder::add_selection`].
pub fn plan_selection(
    selection: &Selection,
    sizing: PlanSizing,
) -> Result<(Plan, String, Vec<Vec<u64>>)> {
    let mut plan = Plan::new();
    let (dataset, keys) = PlanBuilder::new(&mut plan)
        .with_task_budget(task_budget(sizing))
        .add_selection(selection, None)?;
    Ok((plan, dataset, keys))
}

/// Writes the elements a boolean mask selects to `dst`, out of core, as Dask's
/// `compute_chunk_sizes` then `to_zarr` do: a first plan counts what each slab of
/// rows keeps; the counts place each slab in a staged `.npy` in the spill
/// directory, which a second plan's tasks write side by side; the staged file is
/// then written to `dst` as any array is, and removed whatever happens.
///
/// # Errors
/// The plans' and the runs' errors; as [`write`].
pub fn write_selected(
    selection: &Selection,
    dst: &Path,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    let sizing = PlanSizing::of(ctx);
    let counts = count_selected(selection, ctx)?;
    let dtype = selection.dtype();
    let item = dtype.size() as u64;
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    let mut total = 0u64;
    for n in &counts {
        offsets.push(total);
        total = total
            .checked_add(*n)
            .ok_or_else(|| Error::bug("a selection's count overflows", total))?;
    }
    offsets.push(total);
    let shape = selected_shape(selection, total, ctx)?;
    let staged = scratch_workdir(ctx).with_extension("npy");
    let header = crate::storage::npy::header::encode(dtype, &shape, false);
    let written = (|| -> Result<u64> {
        let bytes = total
            .checked_mul(item)
            .and_then(|b| b.checked_add(header.len() as u64))
            .ok_or_else(|| Error::bug("a selection's size overflows", total))?;
        // The staged file counts against the spill quota while it exists.
        let charge = ctx.spill.disk().charge();
        charge.add(bytes)?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&staged).map_err(|e| Error::io(&staged, e))?;
            file.write_all(&header).map_err(|e| Error::io(&staged, e))?;
            file.set_len(bytes).map_err(|e| Error::io(&staged, e))?;
        }
        let mut plan = Plan::new();
        PlanBuilder::new(&mut plan)
            .with_task_budget(task_budget(sizing))
            .add_selection(
                selection,
                Some(Placement {
                    path: staged.display().to_string(),
                    data_offset: header.len() as u64,
                    offsets,
                }),
            )?;
        plan.workdir = scratch_workdir(ctx).display().to_string();
        check_memory(&plan, sizing.memory_limit)?;
        std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
        run_plan_then(&plan, ctx, OnFailure::RemoveAll, |_| Ok(()))
            .map_err(|e| ctx.spill.disk().map_full(e, bytes))?;
        // Converted as a file, so that chunks not asked for are chosen to fit.
        let written = super::convert(&staged, dst, options, ctx).map(|s| s.written_bytes);
        drop(charge);
        written
    })();
    let _ = std::fs::remove_file(&staged);
    written
}

/// The shape of a selection that kept `elements` values: its unknown length is
/// their count over what each selected position holds, or, when a position holds
/// none (an empty axis), the mask's own count.
fn selected_shape(selection: &Selection, elements: u64, ctx: &JobContext) -> Result<Vec<u64>> {
    let length = if selection.per_position() == 0 {
        let count = compute(&selection.mask_count()?, ctx)?;
        let raw: [u8; 8] =
            count.bytes.as_slice().try_into().map_err(|_| {
                Error::bug("a mask's count that is not one int64", count.bytes.len())
            })?;
        u64::try_from(i64::from_ne_bytes(raw)).unwrap_or(0)
    } else {
        elements / selection.per_position()
    };
    Ok(selection.shape_for(length))
}

/// What each slab of a boolean selection keeps, counted by a plan of its own.
fn count_selected(selection: &Selection, ctx: &JobContext) -> Result<Vec<u64>> {
    let sizing = PlanSizing::of(ctx);
    let mut plan = Plan::new();
    let (dataset, keys) = PlanBuilder::new(&mut plan)
        .with_task_budget(task_budget(sizing))
        .add_selection_count(selection)?;
    plan.workdir = scratch_workdir(ctx).display().to_string();
    check_memory(&plan, sizing.memory_limit)?;
    std::fs::create_dir_all(&plan.workdir).map_err(|e| Error::io(&plan.workdir, e))?;
    let (_, counts) = run_plan_then(&plan, ctx, OnFailure::RemoveAll, |store| {
        keys.into_iter()
            .map(|key| {
                let entry = store.get(&DataRef::chunk(&dataset, key))?;
                match &*entry {
                    crate::plan::Entry::Bytes(b) if b.len() == 8 => {
                        let mut raw = [0u8; 8];
                        raw.copy_from_slice(b);
                        Ok(u64::from_le_bytes(raw))
                    }
                    _ => Err(Error::bug("a slab's count that is not 8 bytes", "")),
                }
            })
            .collect::<Result<Vec<u64>>>()
    })?;
    Ok(counts)
}

/// The plan computing `array` into the store (no working directory yet), and where
/// its result is found: what `compute` runs and `explain array` shows.
///
/// # Errors
/// As [`PlanBuilder::add`].
pub fn plan_compute(
    array: &Array,
    sizing: PlanSizing,
) -> Result<(Plan, crate::array::lower::Lowered)> {
    let mut plan = Plan::new();
    let lowered = PlanBuilder::new(&mut plan)
        .with_task_budget(task_budget(sizing))
        .add(array, &Target::Store)?;
    Ok((plan, lowered))
}

/// What one task may hold: the tasks that run at once share half the limit.
fn task_budget(sizing: PlanSizing) -> u64 {
    sizing.memory_limit / (2 * sizing.threads.max(1) as u64)
}

/// A fresh working directory for a plan whose output stays in memory, under the
/// job's spill directory (where a killed run's leftovers are reclaimed).
pub(super) fn scratch_workdir(ctx: &JobContext) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    ctx.spill.disk().dir().join(format!(
        ".array.blockwise-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The plan writing `array` to `dst` (staged at `staged`, published at the end),
/// sized for `sizing`.
///
/// # Errors
/// Options that do not apply to the format; [`Error::PlanTooLarge`] when a task
/// cannot fit the memory limit.
pub fn plan_write(
    array: &Array,
    dst: &Path,
    to: Format,
    staged: &Path,
    options: &ConvertOptions,
    sizing: PlanSizing,
) -> Result<Plan> {
    let shape = array.shape().to_vec();
    let mut chunk_shape: Vec<u64> = array
        .chunks()
        .iter()
        .map(|c| c.iter().copied().max().unwrap_or(1).max(1))
        .collect();
    if to == Format::Npy && options.chunks.is_none() && shape.len() > 1 {
        // An `.npy` is written in blocks of whole rows: as many rows as the array's
        // blocks hold elements, so that a tall, narrow chunking does not become one
        // block of the whole array.
        let block: u64 = chunk_shape.iter().product();
        let row: u64 = shape[1..].iter().product::<u64>().max(1);
        chunk_shape[0] = (block / row).clamp(1, chunk_shape[0]);
    }
    let layout = sinks::array_layout(
        to,
        staged,
        array.dtype(),
        &shape,
        &chunk_shape,
        options,
        false,
    )?;
    // The final blocks are the file's chunks: a program is only evaluated in other
    // blocks, a stored result gathered into them.
    let file_chunks: Chunks = regular_chunks(&shape, &layout.chunks)?;
    let array = if &file_chunks == array.chunks() {
        array.clone()
    } else {
        array.rechunk(file_chunks)?
    };
    let mut plan = Plan::new();
    plan.datasets.push(
        Dataset::new("dst", staged.display(), to.name(), DatasetRole::Output)
            .with_meta(layout.to_meta()),
    );
    let created = plan.push(Task::new(
        OpSpec::of(&CreateArray { warning: None }),
        DataRef::whole("dst"),
        TaskKind::Compute,
    ));
    let lowered = PlanBuilder::new(&mut plan)
        .with_task_budget(task_budget(sizing))
        .add(
            &array,
            &Target::File {
                dataset: "dst".into(),
                created,
            },
        )?;
    let mut deps = lowered.tasks.clone();
    deps.push(created);
    plan.push(Task {
        deps,
        ..Task::new(
            OpSpec::of(&FinishArray {}),
            DataRef::partition("dst", 0),
            TaskKind::Release,
        )
    });
    finish_with_publish(&mut plan, staged, dst, to, options.overwrite);
    check_memory(&plan, sizing.memory_limit)?;
    Ok(plan)
}

/// The plan of writing `array` to `dst`, without running it: what `blockwise plan
/// array` writes. Its working directory is a sibling of `dst` named by a fresh plan
/// id, and every path it holds is absolute.
///
/// # Errors
/// As [`write`]'s checks, made now.
pub fn plan_file(
    array: &Array,
    dst: &Path,
    options: &ConvertOptions,
    sizing: PlanSizing,
) -> Result<Plan> {
    if let Some((src, options)) = file_copy(array, options) {
        return super::plan_convert(&src, dst, &options, sizing);
    }
    let to = output_format(dst, options)?;
    let inputs = array.input_paths();
    let input_refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    drop(AtomicOutput::new(
        dst,
        &output_spec(&input_refs, to, options),
    )?);
    let dst = &std::path::absolute(dst).map_err(|e| Error::io(dst, e))?;
    let workdir = plan_workdir(dst, &super::fresh_plan_id())?;
    let mut plan = plan_write(
        array,
        dst,
        to,
        &workdir.join(STAGED_OUTPUT),
        options,
        sizing,
    )?;
    plan.workdir = workdir.display().to_string();
    Ok(plan)
}

/// The array format of `dst`: as `options.to` says, or by its extension.
/// When `array` is a file's values as they are (rechunked, or not), the conversion
/// that writes it: the staged rechunk of `convert`, whose stages fit the memory
/// limit, rather than blocks that each gather from many source chunks. The output
/// is chunked as the array unless the options say otherwise.
fn file_copy(array: &Array, options: &ConvertOptions) -> Option<(PathBuf, ConvertOptions)> {
    let src = array.file_itself()?;
    let mut options = options.clone();
    if options.chunks.is_none() {
        let shape = array
            .chunks()
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(1).max(1))
            .collect();
        options.chunks = Some(super::ChunkSpec::Shape(shape));
    }
    Some((src, options))
}

fn output_format(dst: &Path, options: &ConvertOptions) -> Result<Format> {
    let to = match options.to {
        Some(f) => f,
        None => Format::from_extension(dst).ok_or_else(|| Error::UnknownFormat {
            path: dst.to_path_buf(),
            hint: "name it .zarr or .npy, or pass --to FORMAT (zarr, npy, npy-stack)".into(),
        })?,
    };
    if !matches!(to, Format::Zarr | Format::Npy | Format::NpyStack) {
        return Err(Error::WrongKind {
            format: to.name(),
            is: "a table format",
            wanted: "an array format (.zarr, .npy, or an npy stack directory)",
        });
    }
    Ok(to)
}

/// Writes `array` to `dst` (its format from the name), atomically.
///
/// # Errors
/// As [`plan_write`]; the destination's checks, made before anything runs; the
/// run's errors.
pub fn write(array: &Array, dst: &Path, options: &ConvertOptions, ctx: &JobContext) -> Result<u64> {
    if let Some((src, options)) = file_copy(array, options) {
        return Ok(super::convert(&src, dst, &options, ctx)?.written_bytes);
    }
    let to = output_format(dst, options)?;
    let inputs = array.input_paths();
    let input_refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let out = AtomicOutput::new(dst, &output_spec(&input_refs, to, options))?;
    ctx.note_reclaimed(out.reclaimed());
    let staged = out.path().join(STAGED_OUTPUT);
    let mut plan = plan_write(array, dst, to, &staged, options, PlanSizing::of(ctx))?;
    plan.workdir = out.path().display().to_string();
    std::fs::create_dir(out.path()).map_err(|e| Error::io(out.path(), e))?;
    run_plan_then(&plan, ctx, OnFailure::RemoveAll, |_| Ok(()))?;
    let written = crate::sys::tree_bytes(dst);
    JobStats::add(&ctx.stats.written_bytes, written);
    Ok(written)
}
