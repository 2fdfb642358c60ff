//! Array to array: one task per output chunk, each reading the region it covers
//! from the source; tasks run in parallel, as many as the memory limit allows.

use std::path::Path;

use rayon::prelude::*;

use super::{sinks, ChunkSpec, ConvertOptions, AUTO_CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::exec::{JobContext, JobStats};
use crate::grid::auto_chunks;
use crate::storage::array::ArrayMeta;
use crate::storage::{open_array, Format};

/// Converts the array at `src` into a new `to` array at `dst`; returns the length of
/// its first axis.
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
    let chunk_shape = output_chunks(&meta, options.chunks.as_ref(), from);
    let sink = sinks::array_sink(to, dst, meta.dtype, &shape, &chunk_shape, options, false)?;
    let indices: Vec<Vec<u64>> = sink.grid().chunk_indices().collect();
    let grid_shape = sink.grid().grid_shape();

    // Each task holds its output chunk and, at worst, as much again of decoded input.
    let chunk_bytes =
        crate::grid::num_elements(&sink.grid().max_chunk_shape()) * meta.dtype.size() as u64;
    let per_task = 2 * chunk_bytes;
    let parallel = (ctx.pool.limit() / per_task.max(1)).min(ctx.threads as u64) as usize;
    if parallel == 0 {
        return Err(Error::MemoryLimit {
            consumer: format!("a {}-byte chunk of the output", chunk_bytes),
            requested: per_task,
            reserved: 0,
            limit: ctx.pool.limit(),
            top: "none".into(),
        });
    }
    ctx.progress.start(indices.len() as u64, false, "chunks");
    let task = |index: &Vec<u64>| -> Result<()> {
        ctx.cancel.check()?;
        let mut reservation = ctx.pool.reserve("array chunk");
        reservation.grow(per_task);
        let region = sink.grid().chunk_subset(index);
        let data = source.read(&region)?;
        sink.write_chunk(index, &data)?;
        // Chunks run in C order, so the last chunk of a band of rows is the time to let
        // a memory-mapped source drop that band; earlier would re-read it.
        if index
            .iter()
            .zip(&grid_shape)
            .skip(1)
            .all(|(&i, &n)| i + 1 == n)
        {
            source.release(&region);
        }
        JobStats::add(&ctx.stats.read_bytes, data.len() as u64);
        JobStats::add(&ctx.stats.tasks, 1);
        ctx.progress.advance(1);
        Ok(())
    };
    if parallel >= ctx.threads {
        indices.par_iter().try_for_each(task)?;
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(parallel)
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        pool.install(|| indices.par_iter().try_for_each(task))?;
    }
    sink.finish(None)?;
    Ok(shape.first().copied().unwrap_or(1))
}

/// The output chunk shape: as asked, or the source's own chunks when it has a
/// regular grid of real chunks, or about 64 MiB chunks.
fn output_chunks(meta: &ArrayMeta, spec: Option<&ChunkSpec>, from: Format) -> Vec<u64> {
    let shape = meta.shape();
    match spec {
        Some(ChunkSpec::Shape(s)) => s.clone(),
        Some(ChunkSpec::Auto) => auto_chunks(&shape, meta.dtype.size() as u64, AUTO_CHUNK_BYTES),
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
                let auto = auto_chunks(&shape, meta.dtype.size() as u64, AUTO_CHUNK_BYTES);
                along.iter().zip(auto).map(|(&a, b)| a.min(b)).collect()
            }
        },
    }
}
