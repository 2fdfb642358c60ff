//! Array to array, as a plan: the source copied into the output's chunks by a
//! staged [`Rechunk`] (one `copy_block` task per block of a stage, writing straight
//! into the staged output; intermediate Zarr arrays in the plan's working directory
//! when a direct copy does not fit the memory budget), then `finish_array` and
//! `publish_output`.

use super::job::Conversion;
use super::{sinks, ChunkSpec, AUTO_CHUNK_BYTES};
use crate::array::{ArrayLayout, Rechunk};
use crate::error::{Error, Result};
use crate::grid::auto_chunks;
use crate::grid::size::many_files;
use crate::plan::Plan;
use crate::storage::array::ArrayMeta;
use crate::storage::zarr::ZarrCompression;
use crate::storage::{open_array, Format};

/// Compression of a staged rechunk's intermediate arrays: zstd level 1, as spill
/// files are (they are written once and read once).
const INTERMEDIATE_COMPRESSION: ZarrCompression = ZarrCompression::Zstd(1);

/// The route as a plan (see [`super::job`]).
///
/// # Errors
/// What opening the source fails with; chunks or options that do not fit the
/// output; [`Error::PlanTooLarge`] when no staging fits the memory budget;
/// [`Error::InvalidOption`] for chunks that make too many tasks.
pub(super) fn plan(c: &Conversion<'_>) -> Result<Option<Plan>> {
    let source = open_array(c.src, c.from)?;
    let meta = source.meta().clone();
    drop(source);
    let shape = meta.shape();
    let item = meta.dtype.size() as u64;
    // Tasks run `threads` at a time; together they may use half the limit.
    let limit = c.sizing.memory_limit;
    let budget = limit / (2 * c.sizing.threads as u64).max(1);
    // Chosen chunks fit a task: a block of them is copied, held and written.
    let auto_bytes = AUTO_CHUNK_BYTES.min(budget / 4).max(1);
    let chunk_shape = output_chunks(&meta, c.options.chunks.as_ref(), c.from, auto_bytes);
    let layout = sinks::array_layout(
        c.to,
        c.dst,
        meta.dtype,
        &shape,
        &chunk_shape,
        c.options,
        false,
    )?;
    let grid = layout.grid()?;
    let target: Vec<u64> = grid.max_chunk_shape().iter().map(|&c| c.max(1)).collect();
    let files = match c.to {
        Format::Zarr => grid.num_chunks(),
        Format::NpyStack => grid.grid_shape().first().copied().unwrap_or(1),
        _ => 1,
    };
    let warning = many_files(files, &target).map(|w| w.to_string());
    // Memory-mapped formats read any region at the cost of its bytes: their "chunks"
    // impose nothing. Zarr reads whole chunks, so blocks must align to them.
    let read_chunks = match c.from {
        Format::Zarr => meta
            .grid
            .max_chunk_shape()
            .iter()
            .map(|&c| c.max(1))
            .collect(),
        _ => target.clone(),
    };
    // An .npy output takes any region in place: blocks follow the Zarr source's
    // chunks instead of bands of whole rows, so a task holds about one chunk.
    let (target, read_chunks) = match (c.from, c.to) {
        (Format::Zarr, Format::Npy) => (npy_blocks(&shape, &read_chunks, item), read_chunks),
        // Both sides take any region in place: bands of rows that fit a task.
        (_, Format::Npy) => {
            let bands = npy_bands(&shape, item, budget);
            (bands.clone(), bands)
        }
        _ => (target, read_chunks),
    };
    let rechunk = Rechunk::new(&shape, item, &read_chunks, &target, budget, limit)?;
    check_task_count(rechunk.tasks()?, &target, limit)?;
    let src = c.src_dataset(
        ArrayLayout::new(shape.clone(), meta.dtype, meta.grid.max_chunk_shape()).to_meta(),
    );
    let dst = c.dst_dataset(layout.to_meta());
    let stage_dir = c.staged.parent().unwrap_or(&c.staged);
    let mut plan = rechunk.plan(src, dst, stage_dir, INTERMEDIATE_COMPRESSION, warning)?;
    c.finish(&mut plan);
    Ok(Some(plan))
}

/// The least bytes of a block written into an `.npy` output from Zarr chunks: a
/// block of smaller chunks takes several, so that tiny chunks do not make a task
/// each.
const MIN_NPY_BLOCK_BYTES: u64 = 4 << 20;

/// Blocks of an `.npy` output read from chunks `read_chunks`: one chunk (clamped to
/// the array), or as many along the last axes as make [`MIN_NPY_BLOCK_BYTES`]; each
/// block is a whole number of chunks or spans its axis.
fn npy_blocks(shape: &[u64], read_chunks: &[u64], item: u64) -> Vec<u64> {
    let mut block: Vec<u64> = read_chunks
        .iter()
        .zip(shape)
        .map(|(&c, &n)| c.clamp(1, n.max(1)))
        .collect();
    for axis in (0..block.len()).rev() {
        let bytes = crate::grid::checked_nbytes(&block, item).unwrap_or(u64::MAX);
        if bytes >= MIN_NPY_BLOCK_BYTES {
            break;
        }
        let factor = MIN_NPY_BLOCK_BYTES.div_ceil(bytes.max(1));
        block[axis] = block[axis].saturating_mul(factor).min(shape[axis].max(1));
    }
    block
}

/// Bands of whole rows of an `.npy` copied from a source read in place: as many
/// rows as let a task (its block read, held and written: three times its bytes in
/// [`crate::grid::rechunk::block_task_bytes`]'s count) fit `budget`, at least one.
fn npy_bands(shape: &[u64], item: u64, budget: u64) -> Vec<u64> {
    let mut band: Vec<u64> = shape.iter().map(|&n| n.max(1)).collect();
    // Axis by axis from the first, as many as fit; a row too large for a task is
    // cut along the next axes in turn.
    for axis in 0..band.len() {
        let inner = band[axis + 1..]
            .iter()
            .product::<u64>()
            .max(1)
            .saturating_mul(item);
        band[axis] = (budget / 3 / inner.max(1)).clamp(1, band[axis]);
        if band[axis] > 1 || inner.saturating_mul(3) <= budget {
            break;
        }
    }
    band
}

/// Bytes a plan holds for each task it lists (its operation, parameters, inputs,
/// output and edges), measured at a few hundred and rounded up.
const PLAN_BYTES_PER_TASK: u64 = 1024;

/// Plans up to this size (about 65,000 tasks) are allowed whatever the limit.
const PLAN_BYTES_ALWAYS_ALLOWED: u64 = 64 << 20;

/// Refuses a plan with more tasks than its ids can number, or than the memory limit
/// can list: a chunk shape of 1 on a large array would otherwise build a plan of
/// billions of tasks before the first one runs.
fn check_task_count(tasks: u64, target: &[u64], limit: u64) -> Result<()> {
    let plan_bytes = tasks.saturating_mul(PLAN_BYTES_PER_TASK);
    // The plan is not reserved on the pool; a small one is always allowed (tiny
    // limits in tests and small jobs), a large one must fit in half the limit.
    let allowed = (limit / 2).max(PLAN_BYTES_ALWAYS_ALLOWED);
    if tasks <= u32::MAX as u64 && plan_bytes <= allowed {
        return Ok(());
    }
    Err(Error::InvalidOption {
        option: "chunks",
        value: target
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        reason: format!(
            "these chunks cut the array into {tasks} blocks, whose plan would need about \
             {plan_bytes} bytes, more than half the {limit}-byte memory limit (and more than \
             {PLAN_BYTES_ALWAYS_ALLOWED}), or more than 2^32 tasks; choose larger chunks"
        ),
    })
}

/// The output chunk shape: as asked, or the source's own chunks when it has a
/// regular grid of real chunks, or about 64 MiB chunks.
fn output_chunks(
    meta: &ArrayMeta,
    spec: Option<&ChunkSpec>,
    from: Format,
    auto_bytes: u64,
) -> Vec<u64> {
    let shape = meta.shape();
    match spec {
        Some(ChunkSpec::Shape(s)) => s.clone(),
        Some(ChunkSpec::Auto) => auto_chunks(&shape, meta.dtype.size() as u64, auto_bytes),
        None => match (from, meta.grid.regular_chunk_shape()) {
            (Format::Zarr, Some(c)) => c,
            _ => {
                // npy files are one chunk; npy stacks are chunked along one axis.
                let along: Vec<u64> = meta
                    .grid
                    .max_chunk_shape()
                    .iter()
                    .map(|&c| c.max(1))
                    .collect();
                let auto = auto_chunks(&shape, meta.dtype.size() as u64, auto_bytes);
                along.iter().zip(auto).map(|(&a, b)| a.min(b)).collect()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_blocks_are_source_chunks_or_groups_of_small_ones() {
        // 8 MiB chunks: one chunk a block, clamped at the edge of the array.
        assert_eq!(npy_blocks(&[16384, 16384], &[1024, 1024], 8), [1024, 1024]);
        assert_eq!(npy_blocks(&[100, 16384], &[1024, 1024], 8), [100, 6144]);
        // 800-byte chunks: widened along the last axis first, then the first.
        assert_eq!(npy_blocks(&[100_000, 1000], &[10, 10], 8), [530, 1000]);
        assert_eq!(npy_blocks(&[50, 20], &[10, 10], 8), [50, 20]);
        assert_eq!(npy_blocks(&[], &[], 8), Vec::<u64>::new());
    }
}
