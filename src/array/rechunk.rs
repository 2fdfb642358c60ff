//! Copying an array into new chunks as a plan, in stages that each fit a memory
//! budget (see [`crate::grid::rechunk`]): one `copy_block` task per block of a stage,
//! reading whole source chunks and writing whole target chunks. The stages between
//! go through intermediate Zarr arrays in the plan's working directory, each made by
//! a `create_array` task before its blocks are written, and each stage's tasks depend
//! only on the tasks of the previous stage that wrote what they read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::create::{CreateArray, FinishArray};
use super::layout::{mark_written, open_sink, open_source, write_region, ArrayLayout};
use crate::error::{Error, Result};
use crate::grid::rechunk::{
    block_task_bytes, fitting_block, plan_stages, stage_block, stage_task_bytes,
};
use crate::grid::{indices_c_order, num_elements, ChunkGrid};
use crate::plan::{
    DataRef, Dataset, DatasetRole, Event, OpSpec, Operation, Plan, Task, TaskEnv, TaskId, TaskKind,
};
use crate::storage::zarr::ZarrCompression;

/// The [`OpSpec`] of operation `op`.
fn spec<O: Operation>(op: &O) -> OpSpec {
    OpSpec {
        name: O::NAME.into(),
        version: O::VERSION,
        params: serde_json::to_value(op).unwrap_or_default(),
    }
}

/// Copies one block of a stage: reads the region `block` of the grid of
/// `block_shape` from the array its first input names, and writes the chunks of the
/// output's array inside it (the block is aligned to them, so each is written whole
/// and by this task alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyBlock {
    /// The stage's block shape (the last block along an axis may be shorter).
    pub block_shape: Vec<u64>,
    /// The block's index in the stage's grid of blocks.
    pub block: Vec<u64>,
}

impl Operation for CopyBlock {
    const NAME: &'static str = "copy_block";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let from = task
            .inputs
            .first()
            .ok_or_else(|| Error::BadPlan {
                reason: format!("task {} (copy_block) names no input", task.id),
            })?
            .dataset();
        let source = open_source(env, from)?;
        let meta = source.meta();
        let shape = meta.shape();
        let blocks = ChunkGrid::regular(&shape, &self.block_shape)?;
        let in_grid = self.block.len() == shape.len()
            && self
                .block
                .iter()
                .zip(blocks.grid_shape())
                .all(|(&i, n)| i < n);
        if !in_grid {
            return Err(Error::BadPlan {
                reason: format!(
                    "task {}: block {:?} is outside the {:?} blocks of shape {:?}",
                    task.id,
                    self.block,
                    blocks.grid_shape(),
                    self.block_shape
                ),
            });
        }
        let out = ArrayLayout::of(env.dataset(task.output.dataset())?)?;
        if out.shape != shape || out.dtype != meta.dtype {
            return Err(Error::BadPlan {
                reason: format!(
                    "task {} copies a {} array of shape {:?} into dataset {:?}, a {} array \
                     of shape {:?}",
                    task.id,
                    meta.dtype,
                    shape,
                    task.output.dataset(),
                    out.dtype,
                    out.shape
                ),
            });
        }
        let region = blocks.chunk_subset(&self.block);
        let mut reservation = env.pool.reserve("rechunk block");
        env.reserve(&mut reservation, task.memory_bytes)?;
        let data = source.read(&region)?;
        env.emit(Event::BytesRead(data.len() as u64));
        let sink = open_sink(env, task.output.dataset())?;
        write_region(
            sink.as_ref().as_ref(),
            &region,
            &data,
            meta.dtype.size(),
            env.cancel,
        )?;
        let out = env.dataset(task.output.dataset())?;
        if out.role == DatasetRole::Intermediate {
            // Intermediate stages are the rechunk's spill.
            env.emit(Event::BytesSpilled(data.len() as u64));
        }
        if env.dataset(from)?.role == DatasetRole::Input
            && region.shape().get(1..) == shape.get(1..)
        {
            // Whole rows of a memory-mapped input are not read again.
            source.release(&region);
        }
        mark_written(task, env, data.len() as u64)
    }
}

/// A rechunk of an array of `shape` and `dtype` through the chunk shapes of `path`
/// (the chunks reads align to first, the target's last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rechunk {
    shape: Vec<u64>,
    item: u64,
    path: Vec<Vec<u64>>,
    budget: u64,
}

impl Rechunk {
    /// The stages from `read_chunks` to `target` whose tasks each fit `budget` bytes.
    ///
    /// # Errors
    /// [`Error::PlanTooLarge`] (operation `rechunk`) when no plan of up to eight
    /// stages fits, with a unit size that would.
    pub fn new(
        shape: &[u64],
        item: u64,
        read_chunks: &[u64],
        target: &[u64],
        budget: u64,
        limit: u64,
    ) -> Result<Self> {
        let path = plan_stages(shape, read_chunks, target, item, budget).ok_or_else(|| {
            Error::PlanTooLarge {
                op: "rechunk".into(),
                projected: stage_task_bytes(shape, read_chunks, target, item),
                limit,
                suggested_unit_bytes: budget / 4,
            }
        })?;
        Ok(Rechunk {
            shape: shape.to_vec(),
            item,
            path,
            budget,
        })
    }

    /// How many stages copy the array (one, or more through intermediates).
    pub fn stages(&self) -> usize {
        self.path.len() - 1
    }

    /// The grid of blocks of stage `k`.
    fn blocks(&self, k: usize) -> Result<ChunkGrid> {
        let (a, b) = (&self.path[k], &self.path[k + 1]);
        let block = fitting_block(&self.shape, a, b, self.item, self.budget)
            .unwrap_or_else(|| stage_block(&self.shape, a, b));
        ChunkGrid::regular(&self.shape, &block)
    }

    /// Copy tasks of every stage together.
    ///
    /// # Errors
    /// Only for a shape the grid refuses.
    pub fn tasks(&self) -> Result<u64> {
        (0..self.stages()).try_fold(0u64, |acc, k| {
            Ok(acc.saturating_add(self.blocks(k)?.num_chunks()))
        })
    }

    /// The plan: `src` copied into `dst` (both with their layouts as meta, the
    /// output's chunks the last of the path), through intermediate Zarr arrays
    /// `stage1.zarr`, ... in `stage_dir` compressed with `compression`. `warning` is
    /// said when the output is created. The plan has no `publish_output` task.
    ///
    /// # Errors
    /// Only for a shape the grid refuses.
    pub fn plan(
        &self,
        src: Dataset,
        dst: Dataset,
        stage_dir: &Path,
        compression: ZarrCompression,
        warning: Option<String>,
    ) -> Result<Plan> {
        let dtype = ArrayLayout::of(&src)?.dtype;
        let mut plan = Plan::new();
        let names: Vec<String> = (0..=self.stages())
            .map(|k| match k {
                0 => src.id.clone(),
                k if k == self.stages() => dst.id.clone(),
                k => format!("stage{k}"),
            })
            .collect();
        plan.datasets.push(src);
        for (k, name) in names.iter().enumerate().skip(1).take(self.stages() - 1) {
            let mut layout = ArrayLayout::new(self.shape.clone(), dtype, self.path[k].clone());
            layout.compression = Some(compression);
            plan.datasets.push(
                Dataset::new(
                    name.as_str(),
                    stage_dir.join(format!("{name}.zarr")).display(),
                    "zarr",
                    DatasetRole::Intermediate,
                )
                .with_meta(layout.to_meta()),
            );
        }
        plan.datasets.push(dst);
        // Every array written is created first.
        let mut created = Vec::with_capacity(self.stages());
        for (k, name) in names.iter().enumerate().skip(1) {
            let op = CreateArray {
                warning: (k == self.stages()).then(|| warning.clone()).flatten(),
            };
            created.push(plan.push(Task::new(
                spec(&op),
                DataRef::whole(name),
                TaskKind::Compute,
            )));
        }
        let mut previous: Vec<TaskId> = Vec::new();
        for k in 0..self.stages() {
            let blocks = self.blocks(k)?;
            let block_shape = blocks.max_chunk_shape();
            let task_bytes = block_task_bytes(
                &self.shape,
                &block_shape,
                &self.path[k],
                &self.path[k + 1],
                self.item,
            );
            let chunk_bytes = num_elements(&self.path[k + 1]) * self.item;
            let first = plan.tasks.len() as TaskId;
            for index in blocks.chunk_indices() {
                let (inputs, mut deps) = if k == 0 {
                    (vec![DataRef::chunk(&names[0], index.clone())], Vec::new())
                } else {
                    // The previous stage's blocks that wrote any part of this one.
                    let prev = self.blocks(k - 1)?;
                    let ranges = prev.overlapping(&blocks.chunk_subset(&index));
                    let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
                    let grid = prev.grid_shape();
                    indices_c_order(&extents)
                        .map(|offset| {
                            let key: Vec<u64> = offset
                                .iter()
                                .zip(&ranges)
                                .map(|(o, r)| r.start + o)
                                .collect();
                            let flat = key.iter().zip(&grid).fold(0u64, |acc, (i, g)| acc * g + i);
                            (DataRef::chunk(&names[k], key), previous[flat as usize])
                        })
                        .unzip()
                };
                deps.push(created[k]);
                plan.push(Task {
                    inputs,
                    deps,
                    memory_bytes: task_bytes,
                    unit_bytes: chunk_bytes,
                    ..Task::new(
                        spec(&CopyBlock {
                            block_shape: block_shape.clone(),
                            block: index.clone(),
                        }),
                        DataRef::chunk(&names[k + 1], index),
                        TaskKind::Release,
                    )
                });
            }
            previous = (first..plan.tasks.len() as TaskId).collect();
        }
        let mut deps = previous;
        deps.push(created[self.stages() - 1]);
        plan.push(Task {
            deps,
            ..Task::new(
                spec(&FinishArray {}),
                DataRef::partition(&names[self.stages()], 0),
                TaskKind::Release,
            )
        });
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_block_params_round_trip() {
        let op = CopyBlock {
            block_shape: vec![400, 10],
            block: vec![0, 3],
        };
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"block_shape": [400, 10], "block": [0, 3]})
        );
        assert_eq!(serde_json::from_value::<CopyBlock>(json).unwrap(), op);
    }

    fn dataset(id: &str, role: DatasetRole, chunks: Vec<u64>) -> Dataset {
        Dataset::new(id, format!("/x/{id}"), "zarr", role).with_meta(
            ArrayLayout::new(
                vec![400, 400],
                crate::storage::array::DType::Float64,
                chunks,
            )
            .to_meta(),
        )
    }

    #[test]
    fn a_staged_plan_creates_each_array_before_its_blocks_and_chains_the_stages() {
        let r = Rechunk::new(&[400, 400], 8, &[400, 5], &[5, 400], 64_000, 128_000).unwrap();
        assert_eq!(r.stages(), 2);
        let plan = r
            .plan(
                dataset("src", DatasetRole::Input, vec![400, 5]),
                dataset("dst", DatasetRole::Output, vec![5, 400]),
                Path::new("/x/work"),
                ZarrCompression::Zstd(1),
                None,
            )
            .unwrap();
        plan.validate().unwrap();
        assert_eq!(
            plan.datasets
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>(),
            ["src", "stage1", "dst"]
        );
        assert_eq!(plan.datasets[1].path, "/x/work/stage1.zarr");
        let waves = plan.waves().unwrap();
        // create, stage 1, stage 2, finish.
        assert_eq!(waves.len(), 4, "{waves:?}");
        for task in plan.tasks.iter().filter(|t| t.op.name == "copy_block") {
            assert!(task.memory_bytes <= 64_000);
            // Every input of a later stage is the output of a task it waits for.
            for input in task.inputs.iter().filter(|r| r.dataset() == "stage1") {
                assert!(task
                    .deps
                    .iter()
                    .any(|&d| &plan.tasks[d as usize].output == input));
            }
        }
        assert_eq!(plan.tasks.last().unwrap().op.name, "finish_array");
    }
}
