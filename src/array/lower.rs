//! Arrays as plans: each computed array a stage of tasks, one a block.
//!
//! A fused program's stage evaluates each block once (`array_block`) and publishes
//! its values in the store, or writes them into the output file. A reduction's
//! stage folds each input block into a partial state (`array_block` again, its
//! stage ending in a reduction), and the partials of each output chunk combine in a
//! tree (`array_combine`, at most [`SPLIT_EVERY`] at a time), the last level
//! finishing the values. What a stage computes (its program, chunks, reduction) is
//! the `meta` of its dataset, written once in the plan; a task names only its
//! block.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::counts::Bins;
use super::graph::{Array, Body, Chunks, Input};
use super::kernel::reduce::{Accum, Reducer};
use super::kernel::rows::BlockFunc;
use super::kernel::values::{Phys, Values};
use super::layout::{open_sink, open_source, write_region, ArrayLayout};
use super::program::{LeafSource, Node, Program, ReduceSpec, View};
use super::select::Selection;
use crate::error::{Error, Result};
use crate::grid::{copy_region, indices_c_order, AxisChunks, ChunkGrid, Subset};
use crate::plan::{
    DataRef, Dataset, DatasetRole, Entry, FileStamp, OpSpec, Operation, Plan, Task, TaskEnv,
    TaskId, TaskKind,
};
use crate::storage::array::DType;

/// Partials combined by one task of a reduction tree (Dask's `split_every` is 4 to
/// 32 by rank; partials are small, so a wide tree costs little).
pub const SPLIT_EVERY: usize = 16;

/// What a stage's dataset `meta` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMeta {
    /// The blocks the stage's tasks compute.
    pub chunks: Chunks,
    /// What each block computes.
    pub work: StageWork,
    /// The output dataset whose file the blocks are written into, instead of the
    /// store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_to: Option<String>,
}

/// What a stage computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum StageWork {
    /// Each block of a program: its values.
    Values {
        /// The program.
        program: Program,
    },
    /// Each block of a program reduced: a partial state.
    Partials {
        /// The program.
        program: Program,
        /// The reduction.
        reduce: ReduceSpec,
    },
    /// Blocks of a cumulative sum or product along `axis`: each evaluates its block
    /// of `program`, scans it, and starts from the combined totals of the blocks
    /// before it along the axis (its inputs, partial states of `reducer`).
    Scan {
        /// The program scanned.
        program: Program,
        /// The axis.
        axis: usize,
        /// `Sum` or `Prod`.
        reducer: Reducer,
        /// The dataset of the blocks' totals (the task's other inputs are its
        /// program's stored leaves).
        totals: String,
    },
    /// Blocks of a concatenation: a block lies in one part, whose program it
    /// evaluates, shifted by the part's offset along `axis`.
    Concat {
        /// The parts' programs, in order.
        parts: Vec<Program>,
        /// The axis they are joined along.
        axis: usize,
        /// Where each part starts along it.
        offsets: Vec<u64>,
    },
    /// Blocks of a matrix product: each task's inputs are blocks (of `dtype`) whose
    /// products it sums, as `form` says; it publishes the values, or a partial sum
    /// when the contracted axis is split between tasks.
    MatMul {
        /// The operands' and the product's dtype (float32, float64 or int64).
        dtype: DType,
        /// Whether each task publishes a partial sum (its key has the group last).
        partial: bool,
        /// How a task's inputs make its block.
        #[serde(default, skip_serializing_if = "MatMulForm::is_general")]
        form: MatMulForm,
    },
    /// Each block one block of a program's array (of `in_chunks`) through a block
    /// function: reshaped, sorted, cut to its top k.
    Map {
        /// The program.
        program: Program,
        /// The blocks the program is evaluated in.
        in_chunks: Chunks,
        /// For each program axis, the stage axis whose block index it takes (`None`:
        /// the program has one block along it).
        keys: Vec<Option<usize>>,
        /// What is done to the block's values.
        func: BlockFunc,
    },
    /// Each block the rows of a program's array its block of indices names along
    /// `axis`.
    Take {
        /// The program.
        program: Program,
        /// The axis.
        axis: usize,
        /// Its length in the program.
        len: u64,
        /// The indices' program (1-d, int64).
        indices: Program,
    },
    /// Each block's distinct values and their counts (`unique`).
    Unique {
        /// The program.
        program: Program,
    },
    /// Each block's values where the mask's are true, in C order (a boolean
    /// selection, `x[mask]`): a run of values whose length only the mask tells.
    Compress {
        /// The values' program.
        program: Program,
        /// The mask's program, of the values' shape.
        mask: Program,
        /// Where the kept values go in a file, when not into the store.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<Placement>,
    },
    /// Each block's count of true values of a boolean program, as 8 bytes (the
    /// lengths a selection's slabs keep, counted before they are placed).
    CountTrue {
        /// The boolean program.
        program: Program,
    },
    /// Distinct values and counts merged (`unique`'s tree); the last level's one
    /// task holds the result.
    UniqueMerge {
        /// The values' dtype.
        dtype: DType,
    },
    /// Each block's values counted into bins: a partial sum state of the bins
    /// (int64 counts, or float64 sums of the weights).
    Counts {
        /// The values' program.
        program: Program,
        /// The weights' program.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Program>,
        /// The bins.
        bins: Bins,
    },
    /// Partials combined; the last level finishes them into values of `dtype`.
    Combine {
        /// The reduction.
        reducer: Reducer,
        /// The physical type of the values reduced.
        input: Phys,
        /// The final dtype, when this level finishes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish: Option<DType>,
        /// Delta degrees of freedom.
        #[serde(default)]
        ddof: f64,
    },
}

/// Where a selection's slabs are placed: one after the other in a file of raw
/// values, slab `i` from element `offsets[i]` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The file (an `.npy` whose header is written).
    pub path: String,
    /// Where its values start.
    pub data_offset: u64,
    /// The first element of each slab.
    pub offsets: Vec<u64>,
}

/// How the tasks of a matrix product's stage make their blocks from their inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatMulForm {
    /// Pairs of a left block `(i, k)` and a right block `(k, j)`.
    #[default]
    General,
    /// A product `a @ a.T` (symmetric), blocks on and above the diagonal only:
    /// pairs of left blocks `(i, k)` and `(j, k)`, the second standing for the right
    /// block `(k, j)` transposed; on the diagonal the blocks `(i, k)` alone, each
    /// multiplied by its own transpose in half the work.
    Gram,
    /// The blocks of a symmetric product from those on and above its diagonal, the
    /// one input of each task: as they are on and above it, transposed below.
    Mirror,
}

impl MatMulForm {
    fn is_general(&self) -> bool {
        *self == MatMulForm::General
    }
}

impl StageMeta {
    /// The program a block of the stage evaluates, and the block in that program's
    /// coordinates.
    ///
    /// # Errors
    /// [`Error::BadPlan`] for a stage that evaluates no program, or a block outside
    /// every part.
    fn program_for(&self, key: &[u64], block: &Subset) -> Result<(&Program, Subset)> {
        match &self.work {
            StageWork::Map {
                program,
                in_chunks,
                keys,
                ..
            } => {
                let grid = chunk_grid(in_chunks);
                let in_key: Vec<u64> = keys
                    .iter()
                    .map(|k| k.and_then(|k| key.get(k).copied()).unwrap_or(0))
                    .collect();
                let inside = in_key.len() == grid.axes().len()
                    && in_key.iter().zip(grid.grid_shape()).all(|(&k, n)| k < n);
                if !inside {
                    return Err(Error::BadPlan {
                        reason: format!("block {key:?} maps outside its input's blocks"),
                    });
                }
                Ok((program, grid.chunk_subset(&in_key)))
            }
            StageWork::Values { program }
            | StageWork::Partials { program, .. }
            | StageWork::Unique { program }
            | StageWork::Compress { program, .. }
            | StageWork::CountTrue { program }
            | StageWork::Scan { program, .. } => Ok((program, block.clone())),
            // Any row along the axis may be read.
            StageWork::Take {
                program, axis, len, ..
            } => {
                let mut start = block.start().to_vec();
                let mut shape = block.shape().to_vec();
                start[*axis] = 0;
                shape[*axis] = *len;
                Ok((program, Subset::new(start, shape)))
            }
            // The counts' blocks have the bins as an extra last axis.
            StageWork::Counts { program, .. } => {
                let rank = program.shape.len();
                let local = Subset::new(
                    block.start()[..rank].to_vec(),
                    block.shape()[..rank].to_vec(),
                );
                Ok((program, local))
            }
            StageWork::Concat {
                parts,
                axis,
                offsets,
            } => {
                let at = block.start().get(*axis).copied().unwrap_or(0);
                let p = offsets.partition_point(|&o| o <= at).saturating_sub(1);
                let program = parts.get(p).ok_or_else(|| Error::BadPlan {
                    reason: "a concatenation block outside its parts".into(),
                })?;
                let mut start = block.start().to_vec();
                start[*axis] -= offsets[p];
                let shifted = Subset::new(start, block.shape().to_vec());
                if !shifted.fits_in(&program.shape) {
                    return Err(Error::BadPlan {
                        reason: "a concatenation block straddles two parts".into(),
                    });
                }
                Ok((program, shifted))
            }
            _ => Err(Error::BadPlan {
                reason: "array_block runs on a stage that evaluates no program".into(),
            }),
        }
    }

    fn grid(&self) -> ChunkGrid {
        chunk_grid(&self.chunks)
    }
}

/// The grid of blocks of `chunks`.
fn chunk_grid(chunks: &Chunks) -> ChunkGrid {
    ChunkGrid::from_axes(
        chunks
            .iter()
            .map(|c| AxisChunks::Irregular(c.clone()))
            .collect(),
    )
}

/// The stage of the dataset `id`, parsed once a process.
fn stage(env: &TaskEnv<'_>, id: &str) -> Result<Arc<StageMeta>> {
    let dataset = env.dataset(id)?;
    env.resources.get_or_open(&format!("array-stage {id}"), || {
        serde_json::from_value(dataset.meta.clone()).map_err(|e| Error::BadPlan {
            reason: format!("dataset {id:?} has no array stage in its meta: {e}"),
        })
    })
}

/// The key of a chunk as the task's output names it.
fn chunk_key(task: &Task) -> Result<&[u64]> {
    match &task.output {
        DataRef::Chunk { key, .. } => Ok(key),
        other => Err(Error::BadPlan {
            reason: format!("task {} writes {other}, not an array chunk", task.id),
        }),
    }
}

/// The block `key` of `grid`, refused when it is not in the grid.
fn block_of(grid: &ChunkGrid, key: &[u64], task: &Task) -> Result<Subset> {
    let inside =
        key.len() == grid.axes().len() && key.iter().zip(grid.grid_shape()).all(|(&k, n)| k < n);
    if !inside {
        return Err(Error::BadPlan {
            reason: format!(
                "task {} computes block {key:?}, outside its grid of {:?} blocks",
                task.id,
                grid.grid_shape()
            ),
        });
    }
    Ok(grid.chunk_subset(key))
}

/// Computes one block of a stage: its values or its partial state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArrayBlock {}

impl Operation for ArrayBlock {
    const NAME: &'static str = "array_block";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let id = task.output.dataset();
        let meta = stage(env, id)?;
        let key = chunk_key(task)?;
        let block = block_of(&meta.grid(), key, task)?;
        // What the task projects (its leaves' boxes, its values or partial state, the
        // tiles) is held on the pool before any of it is allocated.
        let mut reservation = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        env.reserve(&mut reservation, task.memory_bytes)?;
        let read = |source: &LeafSource, region: &Subset| read_leaf(env, source, region);
        let (program, local) = meta.program_for(key, &block)?;
        match &meta.work {
            StageWork::Map { func, .. } => {
                let dtype = program.dtype();
                let bytes = program.eval_block(&local, &read)?;
                let out = func.dtype(dtype);
                let bytes = if *func == BlockFunc::Same {
                    bytes
                } else {
                    let row = local.shape().last().map_or(1, |&n| n as usize);
                    let values = func.apply(Values::decode(dtype, &bytes)?, row)?;
                    drop(bytes);
                    let mut encoded = Vec::with_capacity(values.len() * out.size());
                    values.encode(out, &mut encoded);
                    encoded
                };
                if bytes.len() as u64 != block.num_elements() * out.size() as u64 {
                    return Err(Error::BadPlan {
                        reason: format!(
                            "task {}: {} gave {} bytes for a block of {} elements",
                            task.id,
                            func.name(),
                            bytes.len(),
                            block.num_elements()
                        ),
                    });
                }
                publish_values(task, env, &meta, &block, out, bytes)
            }
            StageWork::Scan {
                axis,
                reducer,
                totals,
                ..
            } => {
                let dtype = program.dtype();
                let values = Values::decode(dtype, &program.eval_block(&local, &read)?)?;
                // The totals of the blocks before this one along the axis.
                let mut kept = block.shape().to_vec();
                kept[*axis] = 1;
                let n: u64 = kept.iter().product();
                let phys = Phys::of(dtype)?;
                let totals = task.inputs.iter().filter(|r| r.dataset() == totals);
                let carry =
                    merged_partials(env, totals, *reducer, phys, n as usize)?.finish(dtype, 0.0)?;
                let scanned =
                    super::kernel::scan::scan(&values, &carry, block.shape(), *axis, *reducer)?;
                let mut bytes = Vec::with_capacity(scanned.len() * dtype.size());
                scanned.encode(dtype, &mut bytes);
                publish_values(task, env, &meta, &block, dtype, bytes)
            }
            StageWork::Take {
                axis, len, indices, ..
            } => {
                let bytes = take_rows(program, indices, *axis, *len, &block, &read)?;
                publish_values(task, env, &meta, &block, program.dtype(), bytes)
            }
            StageWork::Unique { .. } => {
                let dtype = program.dtype();
                let values = Values::decode(dtype, &program.eval_block(&local, &read)?)?;
                let ones = vec![1; values.len()];
                let (values, counts) = super::kernel::rows::unique_merge(vec![(values, ones)])?;
                let bytes = encode_unique(&values, &counts, dtype);
                env.store.put(&task.output, Entry::Bytes(bytes.into()))
            }
            StageWork::CountTrue { .. } => {
                let keep = program.eval_block(&local, &read)?;
                let n = keep.iter().filter(|&&m| m != 0).count() as u64;
                env.store
                    .put(&task.output, Entry::Bytes(n.to_le_bytes().to_vec().into()))
            }
            StageWork::Compress { mask, into, .. } => {
                let item = program.dtype().size();
                let values = program.eval_block(&local, &read)?;
                let keep = mask.eval_block(&local, &read)?;
                if values.len() != keep.len() * item {
                    return Err(Error::BadPlan {
                        reason: format!(
                            "task {}: {} bytes of values under a mask of {} elements",
                            task.id,
                            values.len(),
                            keep.len()
                        ),
                    });
                }
                let kept = keep.iter().filter(|&&m| m != 0).count();
                let mut out = Vec::with_capacity(kept * item);
                for (m, v) in keep.iter().zip(values.chunks_exact(item)) {
                    if *m != 0 {
                        out.extend_from_slice(v);
                    }
                }
                match into {
                    None => env.store.put(&task.output, Entry::Bytes(out.into())),
                    Some(place) => {
                        place_slab(place, key, &out, item, task)?;
                        // Done, for the executor; the values are in the file.
                        env.store.put(&task.output, Entry::Bytes(Vec::new().into()))
                    }
                }
            }
            StageWork::Counts { weights, bins, .. } => {
                let values = Values::decode(program.dtype(), &program.eval_block(&local, &read)?)?;
                let weights = match weights {
                    Some(w) => Some(Values::decode(w.dtype(), &w.eval_block(&local, &read)?)?),
                    None => None,
                };
                let n = bins.len() as usize;
                let mut counts = if weights.is_some() {
                    Values::F64(vec![0.0; n])
                } else {
                    Values::I64(vec![0; n])
                };
                bins.count(&values, weights.as_ref(), &mut counts)?;
                let acc = Accum::sums(&counts)?;
                env.store
                    .put(&task.output, Entry::Bytes(acc.to_bytes().into()))
            }
            StageWork::Partials { reduce, .. } => {
                let acc = program.reduce_block(&local, reduce, &read)?;
                env.store
                    .put(&task.output, Entry::Bytes(acc.to_bytes().into()))
            }
            _ => {
                let bytes = program.eval_block(&local, &read)?;
                publish_values(task, env, &meta, &block, program.dtype(), bytes)
            }
        }
    }
}

/// Combines the partial states of its inputs into one, finishing them at the last
/// level of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArrayCombine {}

impl Operation for ArrayCombine {
    const NAME: &'static str = "array_combine";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let id = task.output.dataset();
        let meta = stage(env, id)?;
        let StageWork::Combine {
            reducer,
            input,
            finish,
            ddof,
        } = meta.work
        else {
            return Err(Error::BadPlan {
                reason: format!("task {} runs array_combine on another stage", task.id),
            });
        };
        let key = chunk_key(task)?;
        // Below the last level, several tasks combine parts of one output chunk: the
        // group is an extra last axis of their keys.
        let key = match finish {
            None => &key[..key.len().saturating_sub(1)],
            Some(_) => key,
        };
        let block = block_of(&meta.grid(), key, task)?;
        let n = block.num_elements() as usize;
        let mut reservation = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        env.reserve(&mut reservation, task.memory_bytes)?;
        let acc = merged_partials(env, task.inputs.iter(), reducer, input, n)?;
        match finish {
            None => env
                .store
                .put(&task.output, Entry::Bytes(acc.to_bytes().into())),
            Some(dtype) => {
                let mut bytes = Vec::with_capacity(n * dtype.size());
                acc.finish(dtype, ddof)?.encode(dtype, &mut bytes);
                publish_values(task, env, &meta, &block, dtype, bytes)
            }
        }
    }
}

/// Writes slab `key[0]`'s kept values where `place` says. Each slab has its own
/// range of the file, so tasks write side by side and a repeated task writes the
/// same bytes again.
fn place_slab(
    place: &Placement,
    key: &[u64],
    values: &[u8],
    item: usize,
    task: &Task,
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let slab = key.first().copied().unwrap_or(0);
    let (Some(&at), next) = (
        place.offsets.get(slab as usize),
        place.offsets.get(slab as usize + 1),
    ) else {
        return Err(Error::BadPlan {
            reason: format!("task {}: slab {slab} has no place", task.id),
        });
    };
    if next.is_some_and(|&n| n - at != (values.len() / item) as u64) {
        return Err(Error::BadPlan {
            reason: format!(
                "task {}: slab {slab} kept {} values where {} were counted",
                task.id,
                values.len() / item,
                next.map_or(0, |&n| n - at)
            ),
        });
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&place.path)
        .map_err(|e| Error::io(&place.path, e))?;
    file.write_all_at(values, place.data_offset + at * item as u64)
        .map_err(|e| Error::io(&place.path, e))
}

/// Merges the distinct values and counts of its inputs (`unique`'s tree).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArrayUniqueMerge {}

impl Operation for ArrayUniqueMerge {
    const NAME: &'static str = "array_unique_merge";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let meta = stage(env, task.output.dataset())?;
        let StageWork::UniqueMerge { dtype } = meta.work else {
            return Err(Error::BadPlan {
                reason: format!("task {} runs array_unique_merge on another stage", task.id),
            });
        };
        let mut reservation = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        env.reserve(&mut reservation, task.memory_bytes)?;
        let mut parts = Vec::new();
        let mut held = 0u64;
        for r in &task.inputs {
            env.cancel.check()?;
            let entry = env.store.get(r)?;
            let Entry::Bytes(bytes) = &*entry else {
                return Err(wrong_entry(r, &entry));
            };
            // How many distinct values there are is known only now: the decoded
            // parts and their merge (three times the bytes) are held as they come.
            let need = bytes.len() as u64 * 3;
            held += need;
            if held > task.memory_bytes {
                env.reserve(&mut reservation, need)?;
            }
            parts.push(decode_unique(bytes, dtype)?);
        }
        let (values, counts) = super::kernel::rows::unique_merge(parts)?;
        let bytes = encode_unique(&values, &counts, dtype);
        env.store.put(&task.output, Entry::Bytes(bytes.into()))
    }
}

/// A `unique` state as bytes: the count of values, the values, their counts.
fn encode_unique(values: &Values, counts: &[i64], dtype: DType) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + values.len() * (dtype.size() + 8));
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    values.encode(dtype, &mut out);
    for c in counts {
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

/// The values and counts of a `unique` state.
///
/// # Errors
/// [`Error::BadPlan`] for bytes that are not such a state.
pub fn decode_unique(bytes: &[u8], dtype: DType) -> Result<(Values, Vec<i64>)> {
    let bad = || Error::BadPlan {
        reason: format!("a unique state of {} bytes is malformed", bytes.len()),
    };
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let item = dtype.size();
    let values_end = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(item))
        .and_then(|b| b.checked_add(8))
        .ok_or_else(bad)?;
    if bytes.len() != values_end + n as usize * 8 {
        return Err(bad());
    }
    let values = Values::decode(dtype, &bytes[8..values_end])?;
    let counts = bytes[values_end..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Ok((values, counts))
}

/// Sums the products of its inputs' pairs of blocks (left `(m, k)`, right `(k, n)`)
/// into one block of a matrix product; in a symmetric product (`a @ a.T`), the
/// products of left blocks with left blocks transposed, or a block mirrored from
/// one computed (see [`MatMulForm`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArrayMatMul {}

impl Operation for ArrayMatMul {
    const NAME: &'static str = "array_matmul";
    // Version 2: a stage's `form` (symmetric products), which version 1 would
    // misread as pairs of left and right blocks.
    const VERSION: u32 = 2;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let id = task.output.dataset();
        let meta = stage(env, id)?;
        let StageWork::MatMul {
            dtype,
            partial,
            form,
        } = meta.work
        else {
            return Err(Error::BadPlan {
                reason: format!("task {} runs array_matmul on another stage", task.id),
            });
        };
        let key = chunk_key(task)?;
        let key = if partial {
            &key[..key.len().saturating_sub(1)]
        } else {
            key
        };
        let block = block_of(&meta.grid(), key, task)?;
        let (m, n) = (block.shape()[0] as usize, block.shape()[1] as usize);
        let (i, j) = (key[0], key[1]);
        let mut reservation = env.pool.reserve(format!("{} {}", Self::NAME, task.output));
        env.reserve(&mut reservation, task.memory_bytes)?;
        if form == MatMulForm::Mirror {
            return mirror_block(task, env, &meta, &block, dtype, (i, j));
        }
        let gram = form == MatMulForm::Gram;
        if gram && i > j {
            return Err(Error::BadPlan {
                reason: format!(
                    "task {} computes block {key:?} of a symmetric product, below its diagonal",
                    task.id
                ),
            });
        }
        let mut product = Values::zeros(Phys::of(dtype)?, m * n);
        if gram && i == j {
            // A diagonal block: the left blocks alone, each times its transpose.
            for r in &task.inputs {
                env.cancel.check()?;
                let a = block_values(env, r, dtype)?;
                let k = a.len().checked_div(m).unwrap_or(0);
                if a.len() != m * k {
                    return Err(unmultipliable(task, a.len(), a.len(), m, n));
                }
                super::kernel::matmul::accumulate_gram(&a, &mut product, m, k)?;
            }
        } else {
            if !task.inputs.len().is_multiple_of(2) {
                return Err(Error::BadPlan {
                    reason: format!("task {} multiplies an odd number of blocks", task.id),
                });
            }
            for pair in task.inputs.chunks(2) {
                env.cancel.check()?;
                let a = block_values(env, &pair[0], dtype)?;
                let b = block_values(env, &pair[1], dtype)?;
                let k = a.len().checked_div(m).unwrap_or(0);
                if a.len() != m * k || b.len() != k * n {
                    return Err(unmultipliable(task, a.len(), b.len(), m, n));
                }
                if gram {
                    // `b` is the left block `(j, k)`: the right one transposed.
                    super::kernel::matmul::accumulate_nt(&a, &b, &mut product, m, k, n)?;
                } else {
                    super::kernel::matmul::accumulate(&a, &b, &mut product, m, k, n)?;
                }
            }
        }
        if partial {
            let state = Accum::sums(&product)?;
            return env
                .store
                .put(&task.output, Entry::Bytes(state.to_bytes().into()));
        }
        let mut bytes = Vec::with_capacity(m * n * dtype.size());
        product.encode(dtype, &mut bytes);
        publish_values(task, env, &meta, &block, dtype, bytes)
    }
}

/// The values of the array block at `r` in the store.
fn block_values(env: &TaskEnv<'_>, r: &DataRef, dtype: DType) -> Result<Values> {
    let entry = env.store.get(r)?;
    let Entry::Bytes(bytes) = &*entry else {
        return Err(wrong_entry(r, &entry));
    };
    Values::decode(dtype, bytes)
}

/// The error of blocks of `a` and `b` elements that do not multiply into `m x n`.
fn unmultipliable(task: &Task, a: usize, b: usize, m: usize, n: usize) -> Error {
    Error::BadPlan {
        reason: format!(
            "task {}: blocks of {a} and {b} elements do not multiply into {m} x {n}",
            task.id
        ),
    }
}

/// Publishes block `(i, j)` of a symmetric product from its one input, the block
/// `(min, max)` computed: the same bytes on and above the diagonal, transposed below.
fn mirror_block(
    task: &Task,
    env: &TaskEnv<'_>,
    meta: &StageMeta,
    block: &Subset,
    dtype: DType,
    (i, j): (u64, u64),
) -> Result<()> {
    let source = match task.inputs.as_slice() {
        [r @ DataRef::Chunk { key, .. }] if key[..] == [i.min(j), i.max(j)] => r,
        _ => {
            return Err(Error::BadPlan {
                reason: format!(
                    "task {} mirrors block [{i}, {j}] of a symmetric product from {:?}, not \
                     from block [{}, {}]",
                    task.id,
                    task.inputs,
                    i.min(j),
                    i.max(j)
                ),
            })
        }
    };
    let entry = env.store.get(source)?;
    let Entry::Bytes(bytes) = &*entry else {
        return Err(wrong_entry(source, &entry));
    };
    let (m, n) = (block.shape()[0] as usize, block.shape()[1] as usize);
    let item = dtype.size();
    if bytes.len() != m * n * item {
        return Err(Error::BadPlan {
            reason: format!(
                "task {}: a block of {} bytes mirrored into {m} x {n} of {}",
                task.id,
                bytes.len(),
                dtype.name()
            ),
        });
    }
    if i > j {
        let mut out = vec![0u8; bytes.len()];
        // The source is `n x m`.
        transpose_items(bytes, n, m, item, &mut out);
        return publish_values(task, env, meta, block, dtype, out);
    }
    match meta.write_to {
        // The same buffer under a second name: nothing is copied.
        None => env.store.put(&task.output, Entry::Bytes(bytes.clone())),
        Some(_) => publish_values(task, env, meta, block, dtype, bytes.to_vec()),
    }
}

/// Writes the transpose of the row-major `rows x cols` matrix of `item`-byte
/// elements `src` into `out`, in squares, so that neither side is walked one cache
/// line an element.
fn transpose_items(src: &[u8], rows: usize, cols: usize, item: usize, out: &mut [u8]) {
    fn squares<const W: usize>(src: &[u8], rows: usize, cols: usize, out: &mut [u8]) {
        const SQUARE: usize = 32;
        let (src, out) = (src.as_chunks::<W>().0, out.as_chunks_mut::<W>().0);
        for r0 in (0..rows).step_by(SQUARE) {
            for c0 in (0..cols).step_by(SQUARE) {
                for r in r0..(r0 + SQUARE).min(rows) {
                    for c in c0..(c0 + SQUARE).min(cols) {
                        out[c * rows + r] = src[r * cols + c];
                    }
                }
            }
        }
    }
    match item {
        8 => squares::<8>(src, rows, cols, out),
        4 => squares::<4>(src, rows, cols, out),
        _ => {
            for r in 0..rows {
                for c in 0..cols {
                    let (to, from) = ((c * rows + r) * item, (r * cols + c) * item);
                    out[to..to + item].copy_from_slice(&src[from..from + item]);
                }
            }
        }
    }
}

/// The partial states of `n` elements of `reducer` over `input` published at
/// `refs`, combined.
///
/// # Errors
/// The store's; [`Error::WrongEntry`] or [`Error::BadPlan`] for an entry that is
/// not such a state; [`Error::Cancelled`] between entries.
fn merged_partials<'r>(
    env: &TaskEnv<'_>,
    refs: impl Iterator<Item = &'r DataRef>,
    reducer: Reducer,
    input: Phys,
    n: usize,
) -> Result<Accum> {
    let mut acc = Accum::new(reducer, input, n);
    for r in refs {
        env.cancel.check()?;
        let entry = env.store.get(r)?;
        let Entry::Bytes(bytes) = &*entry else {
            return Err(wrong_entry(r, &entry));
        };
        acc.merge(&Accum::from_bytes(reducer, input, n, bytes)?)?;
    }
    Ok(acc)
}

fn wrong_entry(r: &DataRef, entry: &Entry) -> Error {
    Error::WrongEntry {
        key: r.to_string(),
        holds: entry.kind(),
        wanted: "bytes",
    }
}

/// Publishes a block's values: into the output file (and a mark in the store), or
/// into the store.
fn publish_values(
    task: &Task,
    env: &TaskEnv<'_>,
    meta: &StageMeta,
    block: &Subset,
    dtype: DType,
    bytes: Vec<u8>,
) -> Result<()> {
    match &meta.write_to {
        Some(dst) => {
            let sink = open_sink(env, dst)?;
            write_region(
                sink.as_ref().as_ref(),
                block,
                &bytes,
                dtype.size(),
                env.cancel,
            )?;
            env.store.put(
                &task.output,
                Entry::Json(serde_json::json!({ "bytes": bytes.len() })),
            )
        }
        None => env.store.put(&task.output, Entry::Bytes(bytes.into())),
    }
}

/// The bytes of `region` of a dataset or stored leaf.
fn read_leaf(env: &TaskEnv<'_>, source: &LeafSource, region: &Subset) -> Result<Vec<u8>> {
    match source {
        LeafSource::Dataset { id } => {
            let bytes = open_source(env, id)?.read(region)?;
            env.emit(crate::plan::Event::BytesRead(bytes.len() as u64));
            Ok(bytes)
        }
        LeafSource::Stored { id, chunks } => {
            let grid = chunk_grid(chunks);
            let meta = stage(env, id)?;
            let dtype = stage_dtype(&meta)?;
            let item = dtype.size();
            let mut out = vec![0u8; region.num_elements() as usize * item];
            let ranges = grid.overlapping(region);
            let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
            for offset in indices_c_order(&extents) {
                let key: Vec<u64> = offset
                    .iter()
                    .zip(&ranges)
                    .map(|(o, r)| r.start + o)
                    .collect();
                let chunk = grid.chunk_subset(&key);
                let r = DataRef::chunk(id, key);
                let entry = env.store.get(&r)?;
                let Entry::Bytes(bytes) = &*entry else {
                    return Err(wrong_entry(&r, &entry));
                };
                let Some(part) = chunk.intersect(region) else {
                    continue;
                };
                copy_region(
                    bytes,
                    chunk.shape(),
                    &part.relative_to(chunk.start()),
                    &mut out,
                    region.shape(),
                    part.relative_to(region.start()).start(),
                    item,
                );
            }
            Ok(out)
        }
        _ => Err(Error::bug("a generated leaf read from storage", "")),
    }
}

/// The rows `indices` (its block of `block`'s axis range) names of `program`
/// along `axis` (of length `len`): the distinct rows sorted, read in windows of
/// nearby rows, each copied to the positions that name it.
///
/// # Errors
/// [`Error::ArrayArgument`] for an index out of range; the program's.
fn take_rows(
    program: &Program,
    indices: &Program,
    axis: usize,
    len: u64,
    block: &Subset,
    read: &super::program::ReadBox<'_>,
) -> Result<Vec<u8>> {
    let rows_block = Subset::new(vec![block.start()[axis]], vec![block.shape()[axis]]);
    let Values::I64(raw) = Values::decode(DType::Int64, &indices.eval_block(&rows_block, read)?)?
    else {
        return Err(Error::bug("int64 indices decoded as another type", ""));
    };
    let rows: Vec<u64> = raw
        .iter()
        .map(|&i| {
            let r = if i < 0 { i + len as i64 } else { i };
            u64::try_from(r)
                .ok()
                .filter(|&r| r < len)
                .ok_or_else(|| Error::ArrayArgument {
                    op: "index".into(),
                    reason: format!("index {i} is out of bounds for axis {axis} with size {len}"),
                })
        })
        .collect::<Result<_>>()?;
    let item = program.dtype().size();
    let mut out = vec![0u8; block.num_elements() as usize * item];
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&p| rows[p]);
    let mut at = 0;
    while at < order.len() {
        // A window: rows close enough that reading the gaps costs less than
        // reading each alone.
        let first = rows[order[at]];
        let mut end = at + 1;
        let mut distinct = 1u64;
        while end < order.len() {
            let r = rows[order[end]];
            if r != rows[order[end - 1]] {
                if r - first + 1 > 2 * (distinct + 1) + 64 {
                    break;
                }
                distinct += 1;
            }
            end += 1;
        }
        let last = rows[order[end - 1]];
        let mut start = block.start().to_vec();
        let mut shape = block.shape().to_vec();
        start[axis] = first;
        shape[axis] = last - first + 1;
        let window = program.eval_block(&Subset::new(start, shape.clone()), read)?;
        let mut one = shape.clone();
        one[axis] = 1;
        for &p in &order[at..end] {
            let mut from = vec![0; shape.len()];
            from[axis] = rows[p] - first;
            let mut to = vec![0; shape.len()];
            to[axis] = p as u64;
            copy_region(
                &window,
                &shape,
                &Subset::new(from, one.clone()),
                &mut out,
                block.shape(),
                &to,
                item,
            );
        }
        at = end;
    }
    Ok(out)
}

/// The dtype of the values a stage publishes.
fn stage_dtype(meta: &StageMeta) -> Result<DType> {
    match &meta.work {
        StageWork::Values { program } | StageWork::Scan { program, .. } => Ok(program.dtype()),
        StageWork::Map { program, func, .. } => Ok(func.dtype(program.dtype())),
        StageWork::Take { program, .. } => Ok(program.dtype()),
        StageWork::Concat { parts, .. } => {
            parts
                .first()
                .map(Program::dtype)
                .ok_or_else(|| Error::BadPlan {
                    reason: "a concatenation of no parts".into(),
                })
        }
        StageWork::Combine {
            finish: Some(d), ..
        }
        | StageWork::MatMul {
            dtype: d,
            partial: false,
            ..
        } => Ok(*d),
        _ => Err(Error::BadPlan {
            reason: "an array leaf reads a stage that publishes partial states".into(),
        }),
    }
}

/// Where the final array goes.
pub enum Target {
    /// Into the store, its chunks collected after the run.
    Store,
    /// Into the output dataset `dst` (already in the plan, created by task
    /// `created`), whose chunk grid the final blocks must match.
    File {
        /// The output dataset's id.
        dataset: String,
        /// The task creating it.
        created: TaskId,
    },
}

/// How the final array of a plan is found in it.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// The dataset holding the final values.
    pub dataset: String,
    /// Its chunks.
    pub chunks: Chunks,
    /// The final tasks.
    pub tasks: Vec<TaskId>,
}

/// Builds an array's stages into a plan.
pub struct PlanBuilder<'p> {
    plan: &'p mut Plan,
    /// Bytes one task may hold (a matrix product groups the contracted axis by it).
    task_budget: u64,
    /// Stages already built, by array id: their dataset, chunks and the task of each
    /// chunk (C order).
    built: HashMap<String, Lowered>,
}

impl<'p> PlanBuilder<'p> {
    /// A builder adding to `plan`.
    pub fn new(plan: &'p mut Plan) -> Self {
        PlanBuilder {
            plan,
            task_budget: u64::MAX,
            built: HashMap::new(),
        }
    }

    /// Sizes tasks that can be cut finer (a matrix product's) to hold at most
    /// `bytes`.
    pub fn with_task_budget(mut self, bytes: u64) -> Self {
        self.task_budget = bytes;
        self
    }

    /// Adds the stages computing `array` into `target`, and those of the arrays it
    /// reads first.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] when the blocks do not match the file's chunks.
    pub fn add(&mut self, array: &Array, target: &Target) -> Result<Lowered> {
        if let Some(done) = self.built.get(&array.expr().id) {
            if matches!(target, Target::Store) {
                return Ok(done.clone());
            }
        }
        let e = array.expr();
        let lowered = match &e.body {
            Body::Fused(program) => {
                self.add_inputs(array)?;
                let meta = StageMeta {
                    chunks: e.chunks.clone(),
                    work: StageWork::Values {
                        program: program.clone(),
                    },
                    write_to: file_of(target),
                };
                let tasks = self.add_block_stage(&e.id, meta, target)?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::Reduce {
                input,
                reducer,
                axes,
                keepdims,
                ddof,
                split_every,
            } => {
                self.add_inputs(input)?;
                let Body::Fused(program) = &input.expr().body else {
                    return Err(Error::bug("a reduction of a reduction not fused", ""));
                };
                let partial_id = format!("{}p", e.id);
                let blocks = reduction_blocks(input.chunks(), axes, program);
                let meta = StageMeta {
                    chunks: blocks.clone(),
                    work: StageWork::Partials {
                        program: program.clone(),
                        reduce: ReduceSpec {
                            reducer: *reducer,
                            axes: axes.clone(),
                        },
                    },
                    write_to: None,
                };
                let partials = self.add_block_stage(&partial_id, meta, &Target::Store)?;
                let tasks = self.add_combine_tree(
                    &e.id,
                    &partial_id,
                    &blocks,
                    &partials,
                    (axes, *keepdims, *split_every),
                    (*reducer, Phys::of(input.dtype())?, e.dtype, *ddof),
                    target,
                )?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::Concat {
                parts,
                axis,
                offsets,
            } => {
                let mut programs = Vec::new();
                for part in parts {
                    let (program, inputs) = part.program();
                    self.add_input_map(&inputs)?;
                    programs.push(program);
                }
                let meta = StageMeta {
                    chunks: e.chunks.clone(),
                    work: StageWork::Concat {
                        parts: programs,
                        axis: *axis,
                        offsets: offsets.clone(),
                    },
                    write_to: file_of(target),
                };
                let tasks = self.add_block_stage(&e.id, meta, target)?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::Scan {
                input,
                axis,
                reducer,
            } => {
                let tasks = self.add_scan(&e.id, input, *axis, *reducer, target)?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::MatMul { a, b } => {
                let tasks = self.add_matmul(&e.id, a, b, e.dtype, target)?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::Counts {
                input,
                weights,
                bins,
            } => {
                self.add_inputs(input)?;
                let program = |a: &Array| match &a.expr().body {
                    Body::Fused(p) => Ok(p.clone()),
                    _ => Err(Error::bug("counts of an array not fused", "")),
                };
                let weights = match weights {
                    Some(w) => {
                        self.add_inputs(w)?;
                        Some(program(w)?)
                    }
                    None => None,
                };
                // The partials' blocks: the input's, with the bins as a last axis.
                let n = bins.len();
                let mut blocks = input.chunks().clone();
                blocks.push(vec![n]);
                let partial_id = format!("{}p", e.id);
                let meta = StageMeta {
                    chunks: blocks.clone(),
                    work: StageWork::Counts {
                        program: program(input)?,
                        weights,
                        bins: bins.clone(),
                    },
                    write_to: None,
                };
                let partials = self.add_block_stage(&partial_id, meta, &Target::Store)?;
                let axes: Vec<usize> = (0..input.ndim()).collect();
                let phys = if e.dtype == DType::Float64 {
                    Phys::F64
                } else {
                    Phys::I64
                };
                let tasks = self.add_combine_tree(
                    &e.id,
                    &partial_id,
                    &blocks,
                    &partials,
                    (&axes, false, SPLIT_EVERY),
                    (Reducer::Sum, phys, e.dtype, 0.0),
                    target,
                )?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::Take {
                input,
                axis,
                indices,
            } => {
                self.add_inputs(input)?;
                self.add_inputs(indices)?;
                let program = |a: &Array| match &a.expr().body {
                    Body::Fused(p) => Ok(p.clone()),
                    _ => Err(Error::bug("a take of an array not fused", "")),
                };
                let meta = StageMeta {
                    chunks: e.chunks.clone(),
                    work: StageWork::Take {
                        program: program(input)?,
                        axis: *axis,
                        len: input.shape()[*axis],
                        indices: program(indices)?,
                    },
                    write_to: file_of(target),
                };
                let tasks = self.add_block_stage(&e.id, meta, target)?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
            Body::Map { input, keys, func } => {
                self.add_inputs(input)?;
                let Body::Fused(program) = &input.expr().body else {
                    return Err(Error::bug("a block function of an array not fused", ""));
                };
                let meta = StageMeta {
                    chunks: e.chunks.clone(),
                    work: StageWork::Map {
                        program: program.clone(),
                        in_chunks: input.chunks().clone(),
                        keys: keys.clone(),
                        func: *func,
                    },
                    write_to: file_of(target),
                };
                let tasks = self.add_block_stage(&e.id, meta, target)?;
                Lowered {
                    dataset: e.id.clone(),
                    chunks: e.chunks.clone(),
                    tasks,
                }
            }
        };
        self.built.insert(e.id.clone(), lowered.clone());
        Ok(lowered)
    }

    /// The tasks of a scan: each block's totals along the axis (a reduction stage of
    /// partial states), then each block scanned from the totals before it.
    fn add_scan(
        &mut self,
        id: &str,
        input: &Array,
        axis: usize,
        reducer: Reducer,
        target: &Target,
    ) -> Result<Vec<TaskId>> {
        self.add_inputs(input)?;
        let Body::Fused(program) = &input.expr().body else {
            return Err(Error::bug("a scan of an array not fused", ""));
        };
        let totals_id = format!("{id}t");
        let chunks = input.chunks().clone();
        let meta = StageMeta {
            chunks: chunks.clone(),
            work: StageWork::Partials {
                program: program.clone(),
                reduce: ReduceSpec {
                    reducer,
                    axes: vec![axis],
                },
            },
            write_to: None,
        };
        let totals = self.add_block_stage(&totals_id, meta, &Target::Store)?;
        let meta = StageMeta {
            chunks: chunks.clone(),
            work: StageWork::Scan {
                program: program.clone(),
                axis,
                reducer,
                totals: totals_id.clone(),
            },
            write_to: file_of(target),
        };
        let first = self.plan.tasks.len();
        let tasks = self.add_block_stage(id, meta, target)?;
        // Each scan task reads the totals of the blocks before it along the axis.
        let grid: Vec<u64> = chunks.iter().map(|c| c.len() as u64).collect();
        for (flat, key) in indices_c_order(&grid).enumerate() {
            let task = &mut self.plan.tasks[first + flat];
            for before in 0..key[axis] {
                let mut k = key.clone();
                k[axis] = before;
                let at = k.iter().zip(&grid).fold(0u64, |a, (i, g)| a * g + i);
                task.inputs.push(DataRef::chunk(&totals_id, k));
                task.deps.push(totals[at as usize]);
            }
        }
        Ok(tasks)
    }

    /// The tasks of a matrix product: its operands stored first, then a task for
    /// each block of the product over as many blocks of the contracted axis as fit
    /// the task budget; when they do not all fit, partial sums and a task combining
    /// them. A product `a @ a.T` (see [`is_gram`]) stores `a` alone, computes the
    /// blocks on and above the diagonal (those on it in half the work), and
    /// publishes every block from those (see [`MatMulForm`]).
    fn add_matmul(
        &mut self,
        id: &str,
        a: &Array,
        b: &Array,
        dtype: DType,
        target: &Target,
    ) -> Result<Vec<TaskId>> {
        let gram = is_gram(a, b);
        let la = self.add(a, &Target::Store)?;
        let lb = if gram {
            la.clone()
        } else {
            self.add(b, &Target::Store)?
        };
        let (mc, kc, nc) = (&a.chunks()[0], &a.chunks()[1], &b.chunks()[1]);
        let item = dtype.size() as u64;
        let largest = |c: &[u64]| c.iter().copied().max().unwrap_or(0);
        let per_k = (largest(mc) + largest(nc)) * largest(kc) * item;
        let out = largest(mc) * largest(nc) * item;
        let fit = self.task_budget.saturating_sub(out * 3) / per_k.max(1);
        let group = (fit.max(1) as usize).min(kc.len().max(1));
        let groups = kc.len().div_ceil(group).max(1);
        let partial = groups > 1;
        // The computed blocks' values: the product itself, unless a symmetric
        // product's are mirrored into it.
        let values_id = if gram {
            format!("{id}u")
        } else {
            id.to_string()
        };
        let to_target = |last: bool| if last { file_of(target) } else { None };
        let meta = StageMeta {
            chunks: vec![mc.clone(), nc.clone()],
            work: StageWork::MatMul {
                dtype,
                partial,
                form: if gram {
                    MatMulForm::Gram
                } else {
                    MatMulForm::General
                },
            },
            write_to: to_target(!partial && !gram),
        };
        let product_id = if partial {
            format!("{id}m")
        } else {
            values_id.clone()
        };
        self.plan.datasets.push(
            Dataset::new(&product_id, "", "array-stage", DatasetRole::Intermediate)
                .with_meta(serde_json::to_value(&meta).map_err(|e| Error::bug("stage meta", e))?),
        );
        let created = match target {
            Target::File { created, .. } => Some(*created),
            Target::Store => None,
        };
        let (ka, kb) = (kc.len() as u64, nc.len() as u64);
        // The blocks computed, in C order: all, or those on and above the diagonal.
        let blocks: Vec<(u64, u64)> = (0..mc.len() as u64)
            .flat_map(|i| (0..kb).map(move |j| (i, j)))
            .filter(|&(i, j)| !gram || i <= j)
            .collect();
        let mut products: Vec<Vec<(DataRef, TaskId)>> = Vec::new();
        for &(i, j) in &blocks {
            let mut mine = Vec::new();
            for g in 0..groups as u64 {
                let mut inputs = Vec::new();
                let mut deps = Vec::new();
                let ks = (g * group as u64)..((g + 1) * group as u64).min(ka);
                let mut bytes = 0;
                for k in ks {
                    let kk = kc[k as usize];
                    inputs.push(DataRef::chunk(&la.dataset, vec![i, k]));
                    deps.push(la.tasks[(i * ka + k) as usize]);
                    bytes += mc[i as usize] * kk * item;
                    if gram && i == j {
                        continue;
                    }
                    if gram {
                        // The right block `(k, j)` is the left block `(j, k)`.
                        inputs.push(DataRef::chunk(&la.dataset, vec![j, k]));
                        deps.push(la.tasks[(j * ka + k) as usize]);
                    } else {
                        inputs.push(DataRef::chunk(&lb.dataset, vec![k, j]));
                        deps.push(lb.tasks[(k * kb + j) as usize]);
                    }
                    bytes += nc[j as usize] * kk * item;
                }
                if !partial && !gram {
                    deps.extend(created);
                }
                let key = if partial { vec![i, j, g] } else { vec![i, j] };
                let n_out = mc[i as usize] * nc[j as usize];
                let t = self.plan.push(Task {
                    inputs,
                    deps,
                    memory_bytes: bytes + n_out * item * 3,
                    unit_bytes: n_out * item,
                    ..Task::new(
                        OpSpec::of(&ArrayMatMul {}),
                        DataRef::chunk(&product_id, key.clone()),
                        TaskKind::Compute,
                    )
                });
                mine.push((DataRef::chunk(&product_id, key), t));
            }
            products.push(mine);
        }
        let computed: Vec<TaskId> = if partial {
            // The partial sums of each block, combined and finished.
            let input = Phys::of(dtype)?;
            let meta = StageMeta {
                chunks: vec![mc.clone(), nc.clone()],
                work: StageWork::Combine {
                    reducer: Reducer::Sum,
                    input,
                    finish: Some(dtype),
                    ddof: 0.0,
                },
                write_to: to_target(!gram),
            };
            self.plan.datasets.push(
                Dataset::new(&values_id, "", "array-stage", DatasetRole::Intermediate).with_meta(
                    serde_json::to_value(&meta).map_err(|e| Error::bug("stage meta", e))?,
                ),
            );
            let mut tasks = Vec::new();
            for (&(i, j), parts) in blocks.iter().zip(products) {
                let n_out = mc[i as usize] * nc[j as usize];
                let (inputs, mut deps): (Vec<DataRef>, Vec<TaskId>) = parts.into_iter().unzip();
                if !gram {
                    deps.extend(created);
                }
                tasks.push(self.plan.push(Task {
                    // Its state and one partial decoded (16 bytes an element each),
                    // and the values it finishes.
                    memory_bytes: n_out * (32 + item),
                    unit_bytes: n_out * item,
                    inputs,
                    deps,
                    ..Task::new(
                        OpSpec::of(&ArrayCombine {}),
                        DataRef::chunk(&values_id, vec![i, j]),
                        TaskKind::Release,
                    )
                }));
            }
            tasks
        } else {
            products.into_iter().flatten().map(|(_, t)| t).collect()
        };
        if !gram {
            return Ok(computed);
        }
        self.add_mirror(id, &values_id, mc, &blocks, &computed, dtype, target)
    }

    /// The final stage of a symmetric product: every block of `id` published from
    /// the block on or above the diagonal of `values_id` (the blocks `upper`, made by
    /// the tasks `made`), through the store, so that the tasks' inputs say what
    /// they read (a block mirrored in place would be released with its last
    /// declared reader, and could not be read back from an output file).
    #[allow(clippy::too_many_arguments)]
    fn add_mirror(
        &mut self,
        id: &str,
        values_id: &str,
        chunks: &[u64],
        upper: &[(u64, u64)],
        made: &[TaskId],
        dtype: DType,
        target: &Target,
    ) -> Result<Vec<TaskId>> {
        let meta = StageMeta {
            chunks: vec![chunks.to_vec(), chunks.to_vec()],
            work: StageWork::MatMul {
                dtype,
                partial: false,
                form: MatMulForm::Mirror,
            },
            write_to: file_of(target),
        };
        self.plan.datasets.push(
            Dataset::new(id, "", "array-stage", DatasetRole::Intermediate)
                .with_meta(serde_json::to_value(&meta).map_err(|e| Error::bug("stage meta", e))?),
        );
        let made: HashMap<(u64, u64), TaskId> =
            upper.iter().copied().zip(made.iter().copied()).collect();
        let created = match target {
            Target::File { created, .. } => Some(*created),
            Target::Store => None,
        };
        let item = dtype.size() as u64;
        let n = chunks.len() as u64;
        let mut tasks = Vec::new();
        for (i, j) in (0..n).flat_map(|i| (0..n).map(move |j| (i, j))) {
            let from = (i.min(j), i.max(j));
            let maker = *made
                .get(&from)
                .ok_or_else(|| Error::bug("a symmetric product's block not computed", i))?;
            let n_out = chunks[i as usize] * chunks[j as usize];
            let mut deps = vec![maker];
            deps.extend(created);
            tasks.push(self.plan.push(Task {
                inputs: vec![DataRef::chunk(values_id, vec![from.0, from.1])],
                deps,
                // The block transposed, and a copy for an output file.
                memory_bytes: n_out * item * 2,
                unit_bytes: n_out * item,
                ..Task::new(
                    OpSpec::of(&ArrayMatMul {}),
                    DataRef::chunk(id, vec![i, j]),
                    TaskKind::Release,
                )
            }));
        }
        Ok(tasks)
    }

    /// The tasks of `unique` over `array`: each block's distinct values and counts,
    /// merged [`SPLIT_EVERY`] at a time; the dataset and task of the result (key
    /// `[0]`).
    ///
    /// # Errors
    /// As [`PlanBuilder::add`].
    pub fn add_unique(&mut self, array: &Array) -> Result<(String, TaskId)> {
        let (program, inputs) = array.program();
        self.add_input_map(&inputs)?;
        let id = format!("{}u", array.expr().id);
        let meta = StageMeta {
            chunks: array.chunks().clone(),
            work: StageWork::Unique { program },
            write_to: None,
        };
        let partials = self.add_block_stage(&format!("{id}p"), meta, &Target::Store)?;
        let item = array.dtype().size() as u64 + 8;
        let grid = chunk_grid(array.chunks());
        let mut level: Vec<(DataRef, TaskId, u64)> = grid
            .chunk_indices()
            .zip(partials)
            .map(|(key, t)| {
                let n = grid.chunk_subset(&key).num_elements();
                (DataRef::chunk(&format!("{id}p"), key), t, n * item)
            })
            .collect();
        let mut depth = 0;
        loop {
            let last = level.len() <= SPLIT_EVERY;
            let level_id = if last {
                id.clone()
            } else {
                format!("{id}m{depth}")
            };
            let meta = StageMeta {
                chunks: vec![vec![1]],
                work: StageWork::UniqueMerge {
                    dtype: array.dtype(),
                },
                write_to: None,
            };
            self.plan.datasets.push(
                Dataset::new(&level_id, "", "array-stage", DatasetRole::Intermediate).with_meta(
                    serde_json::to_value(&meta).map_err(|e| Error::bug("stage meta", e))?,
                ),
            );
            let mut next = Vec::new();
            for (g, group) in level.chunks(SPLIT_EVERY).enumerate() {
                // At most the parts' bytes, decoded and merged; more is reserved as
                // it turns out to be needed, up to the task budget here.
                let bytes: u64 = group.iter().map(|(_, _, b)| b).sum();
                let t = self.plan.push(Task {
                    inputs: group.iter().map(|(r, _, _)| r.clone()).collect(),
                    deps: group.iter().map(|(_, t, _)| *t).collect(),
                    memory_bytes: (bytes * 3).min(self.task_budget),
                    unit_bytes: bytes,
                    ..Task::new(
                        OpSpec::of(&ArrayUniqueMerge {}),
                        DataRef::chunk(&level_id, vec![g as u64]),
                        TaskKind::Release,
                    )
                });
                next.push((DataRef::chunk(&level_id, vec![g as u64]), t, bytes));
            }
            if last {
                return Ok((id, next[0].1));
            }
            level = next;
            depth += 1;
        }
    }

    /// Adds the stage laying out a boolean selection's elements: one task a slab
    /// of whole rows keeps its selected values, in C order. Returns the stage's
    /// dataset and the slabs' keys, in order.
    ///
    /// # Errors
    /// As [`PlanBuilder::add`].
    pub fn add_selection(
        &mut self,
        selection: &Selection,
        into: Option<Placement>,
    ) -> Result<(String, Vec<Vec<u64>>)> {
        let values = selection.values();
        let mask = selection.full_mask()?;
        let (program, inputs) = values.program();
        let (mask_program, mask_inputs) = mask.program();
        self.add_input_map(&inputs)?;
        self.add_input_map(&mask_inputs)?;
        let id = format!("{}s", values.expr().id);
        let meta = StageMeta {
            chunks: selection.slabs(self.slab_elements(selection.dtype())),
            work: StageWork::Compress {
                program,
                mask: mask_program,
                into,
            },
            write_to: None,
        };
        let keys = meta.grid().chunk_indices().collect();
        self.add_block_stage(&id, meta, &Target::Store)?;
        Ok((id, keys))
    }

    /// The most elements of `dtype` a selection's slab may hold within a task's
    /// budget.
    fn slab_elements(&self, dtype: DType) -> u64 {
        // Per element: the values and the mask each read and decoded (up to 16
        // bytes each), what is kept, and the evaluation's tiles.
        self.task_budget / (64 + 4 * dtype.size() as u64)
    }

    /// Adds the stage counting what each slab of a boolean selection keeps (8 bytes
    /// a slab, in the store). Returns the stage's dataset and the slabs' keys.
    ///
    /// # Errors
    /// As [`PlanBuilder::add`].
    pub fn add_selection_count(
        &mut self,
        selection: &Selection,
    ) -> Result<(String, Vec<Vec<u64>>)> {
        let mask = selection.full_mask()?;
        let (program, inputs) = mask.program();
        self.add_input_map(&inputs)?;
        let id = format!("{}n", selection.values().expr().id);
        let meta = StageMeta {
            chunks: selection.slabs(self.slab_elements(selection.dtype())),
            work: StageWork::CountTrue { program },
            write_to: None,
        };
        let keys = meta.grid().chunk_indices().collect();
        self.add_block_stage(&id, meta, &Target::Store)?;
        Ok((id, keys))
    }

    /// Adds the datasets and stages of what `array`'s program reads.
    fn add_inputs(&mut self, array: &Array) -> Result<()> {
        self.add_input_map(&array.expr().inputs)
    }

    /// Adds the datasets and stages of the inputs `inputs` names.
    fn add_input_map(&mut self, inputs: &std::collections::BTreeMap<String, Input>) -> Result<()> {
        for (id, input) in inputs {
            if self.plan.datasets.iter().any(|d| &d.id == id) {
                continue;
            }
            match input {
                Input::File {
                    path,
                    format,
                    chunk_shape,
                } => {
                    let source = crate::storage::open_array(path, *format)?;
                    let meta = source.meta().clone();
                    let layout = ArrayLayout::new(meta.shape(), meta.dtype, chunk_shape.clone());
                    let mut d = Dataset::new(id, path.display(), format.name(), DatasetRole::Input)
                        .with_meta(layout.to_meta());
                    d.stamp = FileStamp::of(path);
                    self.plan.datasets.push(d);
                }
                Input::Computed(a) => {
                    self.add(a, &Target::Store)?;
                }
            }
        }
        Ok(())
    }

    /// One `array_block` task a block of `meta.chunks`.
    fn add_block_stage(
        &mut self,
        id: &str,
        meta: StageMeta,
        target: &Target,
    ) -> Result<Vec<TaskId>> {
        let grid = meta.grid();
        self.plan.datasets.push(
            Dataset::new(id, "", "array-stage", DatasetRole::Intermediate)
                .with_meta(serde_json::to_value(&meta).map_err(|e| Error::bug("stage meta", e))?),
        );
        let created = match target {
            Target::File { created, .. } => Some(*created),
            Target::Store => None,
        };
        let mut tasks = Vec::new();
        for key in grid.chunk_indices() {
            let block = grid.chunk_subset(&key);
            let (program, local) = meta.program_for(&key, &block)?;
            let item = program.dtype().size() as u64;
            let (mut inputs, mut deps, mut read_bytes) = self.leaf_inputs(program, &local)?;
            let other = match &meta.work {
                StageWork::Counts {
                    weights: Some(w), ..
                } => Some((w, local.clone())),
                StageWork::Compress { mask, .. } => Some((mask, local.clone())),
                StageWork::Take { indices, axis, .. } => {
                    // A window of rows is evaluated at a time, not the whole axis.
                    read_bytes = block.num_elements() * 3 * 16;
                    let rows = Subset::new(vec![block.start()[*axis]], vec![block.shape()[*axis]]);
                    Some((indices, rows))
                }
                _ => None,
            };
            if let Some((w, region)) = other {
                let (i, d, b) = self.leaf_inputs(w, &region)?;
                for (r, t) in i.into_iter().zip(d) {
                    if !inputs.contains(&r) {
                        inputs.push(r);
                        deps.push(t);
                    }
                }
                read_bytes += b;
            }
            deps.extend(created);
            // A block's values, or a partial state (at most three 8-byte fields an
            // element kept).
            let out_bytes = match &meta.work {
                StageWork::Partials { reduce, .. } => {
                    let kept: u64 = block
                        .shape()
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| !reduce.axes.contains(k))
                        .map(|(_, &n)| n)
                        .product();
                    kept * 24
                }
                // The block's values decoded, their order, and the distinct ones.
                StageWork::Unique { .. } => local.num_elements() * (24 + 2 * item),
                // The block's values, its mask, and the values kept.
                StageWork::Compress { .. } => local.num_elements() * (2 * item + 1),
                // The block's mask, then its count.
                StageWork::CountTrue { .. } => local.num_elements() + 8,
                // The block's values decoded and its weights, then the bins' state.
                StageWork::Counts { bins, .. } => local.num_elements() * 32 + bins.len() * 24,
                // The input block's values decoded (16 bytes an element at most) and
                // a row's permutation, then the result's.
                StageWork::Map { func, .. } if *func != BlockFunc::Same => {
                    local.num_elements() * 24
                        + block.num_elements() * func.dtype(program.dtype()).size() as u64
                }
                _ => block.num_elements() * item,
            };
            // The tiles the evaluation keeps (nodes share them when their lives do
            // not overlap).
            let tiles = program.tile_bytes(local.num_elements());
            let kind = if read_bytes > 0 {
                TaskKind::Load
            } else {
                TaskKind::Compute
            };
            tasks.push(self.plan.push(Task {
                inputs,
                deps,
                memory_bytes: read_bytes + out_bytes + tiles,
                // The block evaluated is what a user's chunks size (a reduction's
                // output is far smaller than what it reads).
                unit_bytes: out_bytes.max(local.num_elements() * item),
                ..Task::new(OpSpec::of(&ArrayBlock {}), DataRef::chunk(id, key), kind)
            }));
        }
        Ok(tasks)
    }

    /// The store entries a block of `program` reads (stored leaves' chunks), the
    /// tasks that make them, and the bytes its boxes hold.
    fn leaf_inputs(
        &self,
        program: &Program,
        block: &Subset,
    ) -> Result<(Vec<DataRef>, Vec<TaskId>, u64)> {
        let mut inputs = Vec::new();
        let mut deps = Vec::new();
        // The boxes read or computed (leaves of a source share one), as read and as
        // decoded.
        let mut bytes: u64 = program
            .leaf_boxes(block)
            .iter()
            .map(|(nodes, region)| {
                let dtype = program.nodes[nodes[0]].dtype();
                let decoded = Phys::of(dtype).map_or(16, super::program::phys_size);
                region.num_elements() * (dtype.size() as u64 + decoded)
            })
            .sum();
        for node in &program.nodes {
            let Node::Leaf {
                source,
                view,
                dtype,
            } = node
            else {
                continue;
            };
            let region = view_box(view, block);
            match source {
                LeafSource::Stored { id, chunks } => {
                    let built = self
                        .built
                        .get(id)
                        .ok_or_else(|| Error::bug("a stored leaf before its stage", id.clone()))?;
                    let grid = chunk_grid(chunks);
                    let ranges = grid.overlapping(&region);
                    let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
                    let shape = grid.grid_shape();
                    for offset in indices_c_order(&extents) {
                        let key: Vec<u64> = offset
                            .iter()
                            .zip(&ranges)
                            .map(|(o, r)| r.start + o)
                            .collect();
                        let flat = key.iter().zip(&shape).fold(0u64, |a, (i, g)| a * g + i);
                        let r = DataRef::chunk(&built.dataset, key);
                        if !inputs.contains(&r) {
                            inputs.push(r);
                            deps.push(built.tasks[flat as usize]);
                        }
                    }
                }
                // Generated a box at a time unless its rows are walked in order.
                LeafSource::Random { .. } if !view.walks_rows() => {
                    bytes += region.num_elements() * dtype.size() as u64;
                }
                _ => {}
            }
        }
        Ok((inputs, deps, bytes))
    }

    /// The combine tree of a reduction: the partials of each output chunk in groups
    /// of at most `split_every`, level by level, the last finishing the values.
    #[allow(clippy::too_many_arguments)]
    fn add_combine_tree(
        &mut self,
        id: &str,
        partial_id: &str,
        in_chunks: &Chunks,
        partials: &[TaskId],
        (axes, keepdims, split_every): (&[usize], bool, usize),
        (reducer, input, dtype, ddof): (Reducer, Phys, DType, f64),
        target: &Target,
    ) -> Result<Vec<TaskId>> {
        let in_grid: Vec<u64> = in_chunks.iter().map(|c| c.len() as u64).collect();
        // The output chunk of each input block: kept axes' keys, in C order.
        let kept: Vec<usize> = (0..in_grid.len()).filter(|k| !axes.contains(k)).collect();
        let out_grid: Vec<u64> = kept.iter().map(|&k| in_grid[k]).collect();
        let n_out: u64 = out_grid.iter().product();
        let mut groups: Vec<Vec<(DataRef, TaskId)>> = vec![Vec::new(); n_out as usize];
        for (flat, key) in indices_c_order(&in_grid).enumerate() {
            let o = kept.iter().fold(0u64, |acc, &k| acc * in_grid[k] + key[k]);
            groups[o as usize].push((DataRef::chunk(partial_id, key), partials[flat]));
        }
        // The state of each output chunk has the kept axes' chunks (and ones).
        let out_chunks: Chunks = (0..in_grid.len())
            .filter_map(|k| {
                if axes.contains(&k) {
                    keepdims.then(|| vec![1])
                } else {
                    Some(in_chunks[k].clone())
                }
            })
            .collect();
        let out_key = |o: u64| -> Vec<u64> {
            // Kept axes' key, with 0 for reduced axes kept as dimensions.
            let mut kept_key = vec![0u64; out_grid.len()];
            let mut rest = o;
            for k in (0..out_grid.len()).rev() {
                kept_key[k] = rest % out_grid[k].max(1);
                rest /= out_grid[k].max(1);
            }
            let mut it = kept_key.into_iter();
            (0..in_grid.len())
                .filter_map(|k| {
                    if axes.contains(&k) {
                        keepdims.then_some(0)
                    } else {
                        it.next()
                    }
                })
                .collect()
        };
        let created = match target {
            Target::File { created, .. } => Some(*created),
            Target::Store => None,
        };
        let elements = |o: u64| -> u64 {
            chunk_grid(&out_chunks)
                .chunk_subset(&out_key(o))
                .num_elements()
        };
        let state_bytes = |n: u64| n * 8 * 3;
        let mut level = 0;
        loop {
            let last = groups.iter().all(|g| g.len() <= split_every);
            let level_id = if last {
                id.to_string()
            } else {
                format!("{id}c{level}")
            };
            let meta = StageMeta {
                chunks: out_chunks.clone(),
                work: StageWork::Combine {
                    reducer,
                    input,
                    finish: last.then_some(dtype),
                    ddof,
                },
                write_to: if last { file_of(target) } else { None },
            };
            self.plan.datasets.push(
                Dataset::new(&level_id, "", "array-stage", DatasetRole::Intermediate).with_meta(
                    serde_json::to_value(&meta).map_err(|e| Error::bug("stage meta", e))?,
                ),
            );
            let mut next: Vec<Vec<(DataRef, TaskId)>> = Vec::with_capacity(groups.len());
            for (o, group) in groups.iter().enumerate() {
                let n = elements(o as u64);
                let mut level_next = Vec::new();
                for (g, part) in group.chunks(split_every).enumerate() {
                    let mut key = out_key(o as u64);
                    if !last {
                        // Several combines of one output chunk at this level: the
                        // group number is an extra key axis.
                        key.push(g as u64);
                    }
                    let (inputs, mut deps): (Vec<DataRef>, Vec<TaskId>) =
                        part.iter().cloned().unzip();
                    if last {
                        deps.extend(created);
                    }
                    let t = self.plan.push(Task {
                        inputs,
                        deps,
                        memory_bytes: state_bytes(n) * 2 + n * dtype.size() as u64,
                        unit_bytes: n * dtype.size() as u64,
                        ..Task::new(
                            OpSpec::of(&ArrayCombine {}),
                            DataRef::chunk(&level_id, key.clone()),
                            TaskKind::Release,
                        )
                    });
                    level_next.push((DataRef::chunk(&level_id, key), t));
                }
                next.push(level_next);
            }
            if last {
                return Ok(next.into_iter().flatten().map(|(_, t)| t).collect());
            }
            groups = next;
            level += 1;
        }
    }
}

/// Elements a reduction task folds at most when its blocks are merged: never held
/// (tiles are), so the bound is for balance between threads, not memory.
const MERGED_BLOCK_ELEMENTS: u64 = 1 << 25;

/// The blocks a reduction folds: its input's chunks, merged along the reduced axes
/// when the program reads nothing a block at a time (generators and scalars only),
/// innermost axis first, up to [`MERGED_BLOCK_ELEMENTS`]. A chunk that is a fraction
/// of its array's last axis would otherwise cut the generator's runs short, and
/// every block adds a partial to combine; the result's chunks do not change, as
/// they follow the kept axes only.
fn reduction_blocks(chunks: &Chunks, axes: &[usize], program: &Program) -> Chunks {
    let reads = program.nodes.iter().any(|n| match n {
        Node::Leaf {
            source: LeafSource::Dataset { .. } | LeafSource::Stored { .. },
            ..
        } => true,
        Node::Leaf {
            source: LeafSource::Random { .. },
            view,
            ..
        } => !view.walks_rows(),
        _ => false,
    });
    if reads {
        return chunks.clone();
    }
    let mut out = chunks.clone();
    let mut size: u64 = out
        .iter()
        .map(|c| c.iter().copied().max().unwrap_or(1).max(1))
        .product();
    for &axis in axes.iter().rev() {
        let largest = out[axis].iter().copied().max().unwrap_or(1).max(1);
        let total: u64 = out[axis].iter().sum();
        // How many of this axis's chunks one block may span.
        let room = (MERGED_BLOCK_ELEMENTS / (size / largest).max(1)).max(largest);
        let mut merged = Vec::new();
        let mut at = 0;
        for &c in &out[axis] {
            if at > 0 && at + c <= room {
                at += c;
            } else {
                if at > 0 {
                    merged.push(at);
                }
                at = c;
            }
        }
        merged.push(at);
        let new_largest = merged.iter().copied().max().unwrap_or(1).max(1);
        size = size / largest * new_largest;
        out[axis] = merged;
        if new_largest < total {
            // This axis is not whole: merging outer axes would not give longer runs.
            break;
        }
    }
    out
}

/// Whether `b` is `a` transposed (`x @ x.T`, `x.T @ x`, however each side was
/// written): the same program with every leaf's view transposed, cut alike. Their
/// product is then symmetric, and its right operand's blocks are the left's,
/// transposed. Programs compare by value (sources, seeds, views, nodes), so two
/// arrays that merely look alike, such as `x[:, ::-1]` and `x`, do not match.
fn is_gram(a: &Array, b: &Array) -> bool {
    if a.ndim() != 2 || b.ndim() != 2 {
        return false;
    }
    let (ca, cb) = (a.chunks(), b.chunks());
    if ca[0] != cb[1] || ca[1] != cb[0] {
        return false;
    }
    a.transpose(None)
        .is_ok_and(|t| t.program().0 == b.program().0)
}

fn file_of(target: &Target) -> Option<String> {
    match target {
        Target::File { dataset, .. } => Some(dataset.clone()),
        Target::Store => None,
    }
}

/// A leaf's bounding box over a block (see [`View::bounding_box`]).
fn view_box(view: &View, block: &Subset) -> Subset {
    let (lo, len) = view.bounding_box(block);
    Subset::new(lo, len)
}

/// The values of a computed array's chunks from the store, assembled in C order.
///
/// # Errors
/// The store's errors; [`Error::WrongEntry`] for an entry that is not bytes.
pub fn collect(
    store: &dyn crate::plan::DataStore,
    lowered: &Lowered,
    shape: &[u64],
    dtype: DType,
) -> Result<Vec<u8>> {
    let item = dtype.size();
    let total = shape.iter().product::<u64>() as usize;
    let mut out = vec![0u8; total * item];
    let grid = ChunkGrid::from_axes(
        lowered
            .chunks
            .iter()
            .map(|c| AxisChunks::Irregular(c.clone()))
            .collect(),
    );
    if total == 0 {
        return Ok(out);
    }
    for key in grid.chunk_indices() {
        let chunk = grid.chunk_subset(&key);
        let r = DataRef::chunk(&lowered.dataset, key);
        let entry = store.get(&r)?;
        let Entry::Bytes(bytes) = &*entry else {
            return Err(wrong_entry(&r, &entry));
        };
        let zero = vec![0; chunk.shape().len()];
        copy_region(
            bytes,
            chunk.shape(),
            &Subset::new(zero, chunk.shape().to_vec()),
            &mut out,
            shape,
            chunk.start(),
            item,
        );
    }
    Ok(out)
}
