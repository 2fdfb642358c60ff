//! Array to array, as a plan: one task per block of a stage (see
//! [`crate::grid::rechunk`]). A rechunk whose blocks do not fit the memory budget
//! goes through intermediate Zarr arrays in the spill directory, each stage's tasks
//! depending only on the tasks of the previous stage that wrote what they read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{sinks, ChunkSpec, ConvertOptions, AUTO_CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::exec::{Event, JobContext, JobStats, Observer};
use crate::grid::rechunk::{plan_stages, stage_block, stage_task_bytes};
use crate::grid::size::many_files;
use crate::grid::{auto_chunks, copy_region, indices_c_order, num_elements, ChunkGrid, Subset};
use crate::plan::{check_memory, DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskKind};
use crate::storage::array::{ArrayMeta, ArraySink, ArraySource, DType};
use crate::storage::atomic::remove_path;
use crate::storage::zarr::{ZarrCompression, ZarrSink, ZarrSource};
use crate::storage::{open_array, Format};

/// One stage: read blocks from `input`, write chunks to `sink`.
struct Stage {
    blocks: ChunkGrid,
    sink: Box<dyn ArraySink>,
    /// Where the next stage reads this stage's output, for intermediates.
    path: Option<PathBuf>,
}

/// Removes intermediate arrays when the conversion ends, however it ends.
struct Intermediates(Vec<PathBuf>);

impl Drop for Intermediates {
    fn drop(&mut self) {
        for p in &self.0 {
            remove_path(p);
        }
    }
}

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
    let item = meta.dtype.size() as u64;
    let chunk_shape = output_chunks(&meta, options.chunks.as_ref(), from);
    let sink = sinks::array_sink(to, dst, meta.dtype, &shape, &chunk_shape, options, false)?;
    let target = sink
        .grid()
        .max_chunk_shape()
        .iter()
        .map(|&c| c.max(1))
        .collect::<Vec<_>>();
    let files = match to {
        Format::Zarr => sink.grid().num_chunks(),
        Format::NpyStack => sink.grid().grid_shape().first().copied().unwrap_or(1),
        _ => 1,
    };
    if let Some(warning) = many_files(files, &target) {
        ctx.progress.on_event(&Event::Warning(warning.to_string()));
    }
    // Memory-mapped formats read any region at the cost of its bytes: their "chunks"
    // impose nothing. Zarr reads whole chunks, so blocks must align to them.
    let read_chunks = match from {
        Format::Zarr => meta
            .grid
            .max_chunk_shape()
            .iter()
            .map(|&c| c.max(1))
            .collect(),
        _ => target.clone(),
    };
    // Tasks run `threads` at a time; together they may use half the limit.
    let budget = ctx.pool.limit() / (2 * ctx.threads as u64).max(1);
    let path = plan_stages(&shape, &read_chunks, &target, item, budget).ok_or_else(|| {
        let direct = stage_task_bytes(&shape, &read_chunks, &target, item);
        Error::PlanTooLarge {
            op: "rechunk".into(),
            projected: direct,
            limit: ctx.pool.limit(),
            suggested_unit_bytes: budget / 4,
        }
    })?;

    let mut intermediates = Intermediates(Vec::new());
    let mut stages = Vec::with_capacity(path.len() - 1);
    for (k, pair) in path.windows(2).enumerate() {
        let last = k + 2 == path.len();
        let block = stage_block(&shape, &pair[0], &pair[1]);
        let blocks = ChunkGrid::regular(&shape, &block)?;
        if last {
            stages.push(Stage {
                blocks,
                sink: Box::new(NullSink) as Box<dyn ArraySink>,
                path: None,
            });
        } else {
            let p = ctx.spill.disk().new_path("rechunk").with_extension("zarr");
            intermediates.0.push(p.clone());
            let z = ZarrSink::create(
                &p,
                meta.dtype,
                &shape,
                &pair[1],
                intermediate_compression(ctx),
            )?;
            z.store_metadata()?;
            stages.push(Stage {
                blocks,
                sink: Box::new(z),
                path: Some(p),
            });
        }
    }
    if let Some(last) = stages.last_mut() {
        last.sink = sink;
    }

    check_task_count(&stages, &target, ctx.pool.limit())?;
    let (plan, work) = build_plan(src, dst, &stages, &meta, item);
    check_memory(&plan, ctx.pool.limit())?;
    let inputs: Vec<OnceLock<Result<Arc<dyn ArraySource>>>> =
        (0..stages.len()).map(|_| OnceLock::new()).collect();
    let source: Arc<dyn ArraySource> = Arc::from(source);
    let input = |k: usize| -> Result<Arc<dyn ArraySource>> {
        if k == 0 {
            return Ok(source.clone());
        }
        let opened = inputs[k].get_or_init(|| {
            let p = stages[k - 1]
                .path
                .as_ref()
                .ok_or_else(|| Error::Internal("stage has no input".into()))?;
            Ok(Arc::new(ZarrSource::open(p)?) as Arc<dyn ArraySource>)
        });
        match opened {
            Ok(s) => Ok(s.clone()),
            Err(e) => Err(Error::Internal(format!("intermediate array: {e}"))),
        }
    };

    let spill_charge = ctx.spill.disk().charge();
    ctx.progress
        .start(plan.tasks.len() as u64, false, "chunk tasks");
    let report = ctx.executor().run(&plan, |task, tctx| {
        let (k, ref block) = work[task.id as usize];
        let stage = &stages[k];
        let mut reservation = ctx.pool.reserve("rechunk block");
        reservation.grow(task.memory_bytes);
        let region = stage.blocks.chunk_subset(block);
        let data = input(k)?.read(&region)?;
        tctx.emit(Event::BytesRead(data.len() as u64));
        if stage.path.is_some() {
            // Intermediate stages are the rechunk's spill: counted against its quota
            // (uncompressed, an upper bound) before they are written.
            spill_charge.add(data.len() as u64)?;
        }
        write_block(stage.sink.as_ref(), &region, &data, meta.dtype, tctx.cancel)
            .map_err(|e| ctx.spill.disk().map_full(e, data.len() as u64))?;
        if stage.path.is_some() {
            // Intermediate stages are the rechunk's spill.
            JobStats::add(&ctx.stats.spilled_bytes, data.len() as u64);
        }
        if k == 0 && region.shape().get(1..) == shape.get(1..) {
            source.release(&region);
        }
        Ok(())
    })?;
    JobStats::add(&ctx.stats.paused_ms, report.paused_ms);
    for stage in stages {
        stage.sink.finish(None)?;
    }
    drop(intermediates);
    Ok(shape.first().copied().unwrap_or(1))
}

/// Bytes a plan holds for each task it lists (its operation, parameters, inputs,
/// output and edges), measured at a few hundred and rounded up.
const PLAN_BYTES_PER_TASK: u64 = 1024;

/// Plans up to this size (about 65,000 tasks) are allowed whatever the limit.
const PLAN_BYTES_ALWAYS_ALLOWED: u64 = 64 << 20;

/// Refuses a plan with more tasks than its ids can number, or than the memory limit
/// can list: a chunk shape of 1 on a large array would otherwise build a plan of
/// billions of tasks before the first one runs.
fn check_task_count(stages: &[Stage], target: &[u64], limit: u64) -> Result<()> {
    let tasks = stages
        .iter()
        .fold(0u64, |acc, s| acc.saturating_add(s.blocks.num_chunks()));
    let plan_bytes = tasks.saturating_mul(PLAN_BYTES_PER_TASK);
    // The plan is not reserved on the pool; a small one is always allowed (tiny
    // limits in tests and small jobs), a large one must fit in half the limit.
    let allowed = (limit / 2).max(PLAN_BYTES_ALWAYS_ALLOWED);
    if tasks <= u32::MAX as u64 && plan_bytes <= allowed {
        return Ok(());
    }
    Err(Error::InvalidOption {
        option: "--chunks",
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

fn intermediate_compression(ctx: &JobContext) -> ZarrCompression {
    match ctx.spill.compression() {
        crate::memory::SpillCompression::None => ZarrCompression::None,
        crate::memory::SpillCompression::Zstd(l) => ZarrCompression::Zstd(l),
    }
}

/// The plan: one `copy_block` task per block per stage, and for each task the stage
/// and block it copies.
fn build_plan(
    src: &Path,
    dst: &Path,
    stages: &[Stage],
    meta: &ArrayMeta,
    item: u64,
) -> (Plan, Vec<(usize, Vec<u64>)>) {
    let mut plan = Plan::new();
    let name = |k: usize| {
        if k == 0 {
            "src".to_string()
        } else {
            format!("stage{k}")
        }
    };
    plan.datasets.push(Dataset {
        id: "src".into(),
        path: src.display().to_string(),
        format: "array".into(),
        role: DatasetRole::Input,
        meta: serde_json::Value::Null,
    });
    for (k, stage) in stages.iter().enumerate() {
        let (id, path, role) = match &stage.path {
            Some(p) => (
                name(k + 1),
                p.display().to_string(),
                DatasetRole::Intermediate,
            ),
            None => (
                "dst".to_string(),
                dst.display().to_string(),
                DatasetRole::Output,
            ),
        };
        plan.datasets.push(Dataset {
            id,
            path,
            format: "zarr".into(),
            role,
            meta: serde_json::Value::Null,
        });
    }
    let mut work = Vec::new();
    let mut first_id = Vec::with_capacity(stages.len());
    for (k, stage) in stages.iter().enumerate() {
        first_id.push(plan.tasks.len() as u32);
        let block_bytes = num_elements(&stage.blocks.max_chunk_shape()) * item;
        let chunk_bytes = num_elements(&stage.sink.grid().max_chunk_shape()) * item;
        let out_name = if stage.path.is_some() {
            name(k + 1)
        } else {
            "dst".into()
        };
        for index in stage.blocks.chunk_indices() {
            let region = stage.blocks.chunk_subset(&index);
            let deps = if k == 0 {
                Vec::new()
            } else {
                // The previous stage's blocks that wrote any part of this region.
                let prev = &stages[k - 1].blocks;
                let ranges = prev.overlapping(&region);
                let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
                let grid = prev.grid_shape();
                indices_c_order(&extents)
                    .map(|offset| {
                        let flat = offset
                            .iter()
                            .zip(&ranges)
                            .zip(&grid)
                            .fold(0u64, |acc, ((o, r), g)| acc * g + r.start + o);
                        first_id[k - 1] + flat as u32
                    })
                    .collect()
            };
            plan.push(Task {
                id: 0,
                op: OpSpec::new(
                    "copy_block",
                    serde_json::json!({"stage": k, "block": index, "dtype": meta.dtype.name()}),
                ),
                inputs: vec![DataRef::Chunk {
                    dataset: name(k),
                    key: index.clone(),
                }],
                output: DataRef::Chunk {
                    dataset: out_name.clone(),
                    key: index.clone(),
                },
                deps,
                memory_bytes: 2 * block_bytes,
                unit_bytes: chunk_bytes,
                kind: TaskKind::Release,
            });
            work.push((k, index));
        }
    }
    (plan, work)
}

/// Writes the sink chunks inside `region` (which is aligned to them) out of `data`.
fn write_block(
    sink: &dyn ArraySink,
    region: &Subset,
    data: &[u8],
    dtype: DType,
    cancel: &crate::exec::CancelToken,
) -> Result<()> {
    let item = dtype.size();
    let ranges = sink.grid().overlapping(region);
    let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    for offset in indices_c_order(&extents) {
        cancel.check()?;
        let index: Vec<u64> = offset
            .iter()
            .zip(&ranges)
            .map(|(o, r)| r.start + o)
            .collect();
        let chunk = sink.grid().chunk_subset(&index);
        if &chunk == region {
            sink.write_chunk(&index, data)?;
            continue;
        }
        let mut buf = vec![0u8; chunk.num_elements() as usize * item];
        let zero = vec![0; chunk.shape().len()];
        copy_region(
            data,
            region.shape(),
            &chunk.relative_to(region.start()),
            &mut buf,
            chunk.shape(),
            &zero,
            item,
        );
        sink.write_chunk(&index, &buf)?;
    }
    Ok(())
}

/// Stands in for the last stage's sink until it is moved in.
struct NullSink;

impl ArraySink for NullSink {
    fn grid(&self) -> &ChunkGrid {
        static EMPTY: OnceLock<ChunkGrid> = OnceLock::new();
        EMPTY.get_or_init(|| ChunkGrid::from_axes(Vec::new()))
    }
    fn write_chunk(&self, _: &[u64], _: &[u8]) -> Result<()> {
        Err(Error::Internal("write to a placeholder sink".into()))
    }
    fn finish(self: Box<Self>, _: Option<u64>) -> Result<()> {
        Ok(())
    }
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

/// The route as a plan (see [`super::job`]); `None` while it still runs by closures.
///
/// # Errors
/// What opening the source and checking the options fail with.
pub(super) fn plan(_c: &super::job::Conversion<'_>) -> Result<Option<crate::plan::Plan>> {
    Ok(None)
}
