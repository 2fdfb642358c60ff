//! A fused elementwise program: what one task computes over one block of an array,
//! from its leaves (stored arrays, generators, scalars) through numpy's ufuncs, in
//! one pass of cache-sized tiles, ending in the block's values or in a reduction's
//! partial state. No intermediate array of the expression is ever materialized.
//!
//! Leaves carry a [`View`]: how the program's index maps into the leaf's own array
//! (broadcast axes, slices with any step, transposes, integers that drop an axis).
//! Views compose, so slicing or transposing an expression slices or transposes its
//! leaves, and the program stays one pass.
//!
//! A program is data (serde): a task carries it to any worker.

use serde::{Deserialize, Serialize};

use super::kernel::ops::{self, BinaryOp, UnaryOp};
use super::kernel::reduce::{Accum, Reducer};
use super::kernel::values::{Phys, Values};
use super::kernel::walk::{c_strides, Walk};
use super::random::Philox;
use crate::error::{Error, Result};
use crate::grid::Subset;
use crate::storage::array::DType;

/// `f64` in a plan's JSON: a number, or `"nan"`, `"inf"`, `"-inf"` (JSON has no
/// literal for them, and `serde_json` would write `null`, which reads back as no
/// number at all).
pub(crate) mod f64_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("nan")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "nan" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"nan\", \"inf\" or \"-inf\", found {other:?}"
                ))),
            },
        }
    }
}

/// Elements a tile holds: a few tiles of every node fit in the L2 cache.
pub const TILE: usize = 4096;

/// How a program's index maps to a leaf's: for each program axis, the leaf axis it
/// walks (`base = start + step * i`) or none (broadcast); leaf axes no program axis
/// walks are fixed at an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The leaf array's shape.
    pub base: Vec<u64>,
    /// One entry a program axis.
    pub axes: Vec<AxisMap>,
    /// One entry a leaf axis: the index of an axis no program axis walks.
    pub fixed: Vec<Option<u64>>,
}

/// What one program axis is in a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AxisMap {
    /// The leaf does not vary along it.
    Broadcast,
    /// Leaf axis `axis`, at `start + step * i` for program index `i`.
    Axis {
        /// The leaf's axis.
        axis: usize,
        /// The leaf index at program index 0.
        start: i64,
        /// The leaf's step per program step (negative walks backwards).
        step: i64,
    },
}

impl View {
    /// The identity view of an array of `shape`, aligned to the right of a program
    /// of rank `rank` (leading program axes broadcast, as numpy aligns shapes).
    pub fn identity(shape: &[u64], rank: usize) -> View {
        let lead = rank - shape.len();
        let mut axes = vec![AxisMap::Broadcast; lead];
        for (k, &len) in shape.iter().enumerate() {
            axes.push(if len == 1 {
                AxisMap::Broadcast
            } else {
                AxisMap::Axis {
                    axis: k,
                    start: 0,
                    step: 1,
                }
            });
        }
        let fixed = shape
            .iter()
            .map(|&len| if len == 1 { Some(0) } else { None })
            .collect();
        View {
            base: shape.to_vec(),
            axes,
            fixed,
        }
    }

    /// Whether the program's last axis walks the leaf's last axis forward by one
    /// (the leaf's elements come in runs of its own order); a leaf of rank 0 or a
    /// program of rank 0 does too.
    pub fn walks_rows(&self) -> bool {
        match self.axes.last() {
            None => true,
            Some(AxisMap::Axis { axis, step, .. }) => *step == 1 && *axis + 1 == self.base.len(),
            Some(AxisMap::Broadcast) => self.base.is_empty(),
        }
    }

    /// The leaf's bounding box over the program block `block`: for each leaf axis,
    /// its first index and extent.
    pub fn bounding_box(&self, block: &Subset) -> (Vec<u64>, Vec<u64>) {
        let mut lo: Vec<u64> = self.fixed.iter().map(|f| f.unwrap_or(0)).collect();
        let mut len = vec![1u64; self.base.len()];
        for (k, map) in self.axes.iter().enumerate() {
            if let AxisMap::Axis { axis, start, step } = *map {
                let b0 = block.start()[k] as i64;
                let n = block.shape()[k] as i64;
                if n == 0 {
                    len[axis] = 0;
                    continue;
                }
                let first = start + step * b0;
                let last = start + step * (b0 + n - 1);
                lo[axis] = first.min(last).max(0) as u64;
                len[axis] = (first - last).unsigned_abs() + 1;
            }
        }
        (lo, len)
    }

    /// Strides of the block's axes in a buffer laid out with `strides` over the leaf
    /// axes, and the offset of the block's first element from `origin` (a leaf index).
    fn block_strides(&self, block: &Subset, strides: &[i64], origin: &[u64]) -> (Vec<i64>, i64) {
        let mut offset: i64 = self
            .fixed
            .iter()
            .zip(strides)
            .zip(origin)
            .map(|((f, &s), &o)| f.map_or(0, |f| (f as i64 - o as i64) * s))
            .sum();
        let per_axis = self
            .axes
            .iter()
            .enumerate()
            .map(|(k, map)| match *map {
                AxisMap::Broadcast => 0,
                AxisMap::Axis { axis, start, step } => {
                    let first = start + step * block.start()[k] as i64;
                    offset += (first - origin[axis] as i64) * strides[axis];
                    step * strides[axis]
                }
            })
            .collect();
        (per_axis, offset)
    }
}

/// Where a leaf's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum LeafSource {
    /// An array dataset of the plan (a Zarr array, an `.npy` file, an npy stack),
    /// read a bounding box a block.
    Dataset {
        /// The dataset's id.
        id: String,
    },
    /// An array computed by an earlier stage of the plan, its chunks published in
    /// the store under the dataset `id`.
    Stored {
        /// The dataset's id.
        id: String,
        /// Its chunk lengths along each axis.
        chunks: Vec<Vec<u64>>,
    },
    /// Random numbers, by element index (see [`super::random`]).
    Random {
        /// The distribution.
        dist: Distribution,
        /// The seed.
        seed: u64,
    },
    /// `start + step * i` along the leaf's one axis (numpy's `arange` fills so).
    Arange {
        /// The first value.
        #[serde(with = "f64_json")]
        start: f64,
        /// The step.
        #[serde(with = "f64_json")]
        step: f64,
    },
    /// `num` values from `start` to `stop` (numpy's `linspace`).
    Linspace {
        /// The first value.
        #[serde(with = "f64_json")]
        start: f64,
        /// The last value, or the one past it without `endpoint`.
        #[serde(with = "f64_json")]
        stop: f64,
        /// How many values.
        num: u64,
        /// Whether `stop` is the last value.
        endpoint: bool,
    },
    /// Values written in the expression (`array([...])`), in C order of `shape`.
    Literal {
        /// The leaf's shape.
        shape: Vec<u64>,
        /// Its values, cast to the leaf's dtype when read.
        values: Vec<Scalar>,
    },
    /// Ones on the `k`-th diagonal of a 2-d leaf, zeros elsewhere (numpy's `eye`).
    Eye {
        /// The diagonal: 0 the main, positive above.
        k: i64,
    },
}

/// A random distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Distribution {
    /// Uniform in `[0, 1)`: numpy's `Generator(Philox(seed)).random()`, bit for bit.
    Random,
    /// Uniform in `[low, high)`.
    Uniform {
        /// The lower bound.
        #[serde(with = "f64_json")]
        low: f64,
        /// The upper bound.
        #[serde(with = "f64_json")]
        high: f64,
    },
    /// Normal with mean `loc` and standard deviation `scale`.
    Normal {
        /// The mean.
        #[serde(with = "f64_json")]
        loc: f64,
        /// The standard deviation.
        #[serde(with = "f64_json")]
        scale: f64,
    },
    /// Integers uniform in `[low, high)`.
    Integers {
        /// The smallest value.
        low: i64,
        /// One past the largest.
        high: i64,
    },
}

/// A scalar constant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float.
    Float(#[serde(with = "f64_json")] f64),
    /// A complex number: its real and imaginary parts.
    Complex(
        #[serde(with = "f64_json")] f64,
        #[serde(with = "f64_json")] f64,
    ),
}

/// One node of a program; operands are earlier nodes, by index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    /// A leaf: values of `dtype` from `source` through `view`.
    Leaf {
        /// Where the values come from.
        source: LeafSource,
        /// How the program's index maps into it.
        view: View,
        /// The values' dtype.
        dtype: DType,
    },
    /// A constant broadcast everywhere.
    Scalar {
        /// The value.
        value: Scalar,
        /// Its dtype.
        dtype: DType,
    },
    /// A one-operand ufunc.
    Unary {
        /// The ufunc.
        op: UnaryOp,
        /// The operand.
        arg: usize,
        /// The result's dtype.
        dtype: DType,
    },
    /// A two-operand ufunc; both operands have one physical type.
    Binary {
        /// The ufunc.
        op: BinaryOp,
        /// The left operand.
        lhs: usize,
        /// The right operand.
        rhs: usize,
        /// The result's dtype.
        dtype: DType,
    },
    /// `where(cond, then, otherwise)`; `then` and `otherwise` of `dtype`.
    Where {
        /// A boolean operand.
        cond: usize,
        /// Taken where `cond` holds.
        then: usize,
        /// Taken elsewhere.
        otherwise: usize,
        /// The result's dtype.
        dtype: DType,
    },
    /// A cast (`astype`).
    Cast {
        /// The operand.
        arg: usize,
        /// The dtype cast to.
        dtype: DType,
    },
    /// `value`, where the boolean `cond` holds everywhere; anywhere it does not,
    /// the evaluation fails with `message` (numpy's errors that only the values
    /// can tell, such as the maximum of an empty boolean selection).
    Require {
        /// A boolean operand.
        cond: usize,
        /// The value passed through.
        value: usize,
        /// What the failure says.
        message: String,
        /// The value's dtype.
        dtype: DType,
    },
}

impl Node {
    /// The node's result dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Node::Leaf { dtype, .. }
            | Node::Scalar { dtype, .. }
            | Node::Unary { dtype, .. }
            | Node::Binary { dtype, .. }
            | Node::Where { dtype, .. }
            | Node::Require { dtype, .. }
            | Node::Cast { dtype, .. } => *dtype,
        }
    }

    /// The node with each operand index `i` replaced by `f(i)` (programs merged,
    /// nodes deduplicated).
    pub fn map_operands(self, f: impl Fn(usize) -> usize) -> Node {
        match self {
            Node::Leaf { .. } | Node::Scalar { .. } => self,
            Node::Unary { op, arg, dtype } => Node::Unary {
                op,
                arg: f(arg),
                dtype,
            },
            Node::Binary {
                op,
                lhs,
                rhs,
                dtype,
            } => Node::Binary {
                op,
                lhs: f(lhs),
                rhs: f(rhs),
                dtype,
            },
            Node::Where {
                cond,
                then,
                otherwise,
                dtype,
            } => Node::Where {
                cond: f(cond),
                then: f(then),
                otherwise: f(otherwise),
                dtype,
            },
            Node::Cast { arg, dtype } => Node::Cast { arg: f(arg), dtype },
            Node::Require {
                cond,
                value,
                message,
                dtype,
            } => Node::Require {
                cond: f(cond),
                value: f(value),
                message,
                dtype,
            },
        }
    }

    /// The nodes it reads.
    pub fn operands(&self) -> Vec<usize> {
        match self {
            Node::Leaf { .. } | Node::Scalar { .. } => vec![],
            Node::Unary { arg, .. } | Node::Cast { arg, .. } => vec![*arg],
            Node::Binary { lhs, rhs, .. } => vec![*lhs, *rhs],
            Node::Where {
                cond,
                then,
                otherwise,
                ..
            } => vec![*cond, *then, *otherwise],
            Node::Require { cond, value, .. } => vec![*cond, *value],
        }
    }
}

/// An elementwise program over an array of `shape`: its last node is the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// The shape of the result (every leaf's view has this rank).
    pub shape: Vec<u64>,
    /// The nodes, operands before their users.
    pub nodes: Vec<Node>,
}

/// What a program's block ends in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceSpec {
    /// The reduction.
    pub reducer: Reducer,
    /// The program axes reduced.
    pub axes: Vec<usize>,
}

/// Reads a leaf's bounding box: the region of a dataset or stored leaf, as raw
/// bytes of its dtype. The caller (the task) knows how to open datasets.
pub type ReadBox<'a> = dyn Fn(&LeafSource, &Subset) -> Result<Vec<u8>> + 'a;

impl Program {
    /// The result's dtype.
    pub fn dtype(&self) -> DType {
        self.nodes.last().map_or(DType::Float64, Node::dtype)
    }

    /// The tile each node's values go in, and each tile's physical type: a node's
    /// tile is free again after its last user has run, so a long chain holds a few
    /// tiles, not one a node. The last node's tile is never reused.
    ///
    /// # Errors
    /// As [`Phys::of`].
    pub fn tile_slots(&self) -> Result<(Vec<usize>, Vec<Phys>)> {
        let n = self.nodes.len();
        let mut last_use: Vec<usize> = (0..n).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            for o in node.operands() {
                if o < n {
                    last_use[o] = last_use[o].max(i);
                }
            }
        }
        if let Some(l) = last_use.last_mut() {
            *l = usize::MAX;
        }
        let mut slot_of = Vec::with_capacity(n);
        let mut phys: Vec<Phys> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let p = Phys::of(node.dtype())?;
            // A free tile of the same type, else a new one; taken before the
            // operands' are freed, so a node never writes over what it reads.
            let slot = match free.iter().position(|&s| phys[s] == p) {
                Some(k) => free.swap_remove(k),
                None => {
                    phys.push(p);
                    phys.len() - 1
                }
            };
            slot_of.push(slot);
            let mut ops = node.operands();
            ops.sort_unstable();
            ops.dedup();
            for o in ops {
                if o < i && last_use[o] == i {
                    free.push(slot_of[o]);
                }
            }
        }
        Ok((slot_of, phys))
    }

    /// The boxes a block's leaves are read or computed in: leaves of one source
    /// and dtype share a box (their union), when it is no larger than their own
    /// boxes together (a stencil's shifted views read the block and its halo once).
    /// Each entry: the leaves' node indices and the box.
    pub fn leaf_boxes(&self, block: &Subset) -> Vec<(Vec<usize>, Subset)> {
        // Each group: its leaves, its box's first and past-the-end corners, and the
        // elements of their own boxes together.
        type Group = (Vec<usize>, Vec<u64>, Vec<u64>, u64);
        let mut groups: Vec<Group> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let Node::Leaf {
                source,
                view,
                dtype,
            } = node
            else {
                continue;
            };
            if matches!(source, LeafSource::Random { .. }) {
                continue;
            }
            let (lo, len) = view.bounding_box(block);
            let hi: Vec<u64> = lo.iter().zip(&len).map(|(l, n)| l + n).collect();
            let own: u64 = len.iter().product();
            let same = |j: usize| match &self.nodes[j] {
                Node::Leaf {
                    source: s,
                    view: v,
                    dtype: d,
                } => s == source && d == dtype && v.base == view.base,
                _ => false,
            };
            let merged = groups.iter_mut().find_map(|(nodes, glo, ghi, total)| {
                if !same(nodes[0]) {
                    return None;
                }
                let ulo: Vec<u64> = glo.iter().zip(&lo).map(|(a, b)| *a.min(b)).collect();
                let uhi: Vec<u64> = ghi.iter().zip(&hi).map(|(a, b)| *a.max(b)).collect();
                let union: u64 = ulo.iter().zip(&uhi).map(|(l, h)| h - l).product();
                (union <= *total + own).then(|| {
                    nodes.push(i);
                    *glo = ulo;
                    *ghi = uhi;
                    *total = union;
                })
            });
            if merged.is_none() {
                groups.push((vec![i], lo, hi, own));
            }
        }
        groups
            .into_iter()
            .map(|(nodes, lo, hi, _)| {
                let len = lo.iter().zip(&hi).map(|(l, h)| h - l).collect();
                (nodes, Subset::new(lo, len))
            })
            .collect()
    }

    /// Bytes the tiles of a block's evaluation hold at most.
    pub fn tile_bytes(&self, block_elements: u64) -> u64 {
        let tile = block_elements.min(TILE as u64);
        match self.tile_slots() {
            Ok((_, phys)) => phys.iter().map(|&p| tile * phys_size(p)).sum(),
            Err(_) => self.nodes.len() as u64 * tile * 16,
        }
    }

    /// Checks what a plan from elsewhere could get wrong: operands before users,
    /// views of the program's rank that stay inside their leaves.
    ///
    /// # Errors
    /// [`Error::BadPlan`] naming the node.
    pub fn validate(&self) -> Result<()> {
        let bad = |i: usize, why: &str| Error::BadPlan {
            reason: format!("array program node {i}: {why}"),
        };
        if self.nodes.is_empty() {
            return Err(bad(0, "the program has no nodes"));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.operands().iter().any(|&o| o >= i) {
                return Err(bad(i, "an operand is not an earlier node"));
            }
            Phys::of(node.dtype())?;
            if let Node::Leaf { view, .. } = node {
                if view.axes.len() != self.shape.len() || view.fixed.len() != view.base.len() {
                    return Err(bad(i, "its view does not match the program's rank"));
                }
                let whole = Subset::full(&self.shape);
                if whole.num_elements() > 0 {
                    let (lo, len) = view.bounding_box(&whole);
                    let inside = lo
                        .iter()
                        .zip(&len)
                        .zip(&view.base)
                        .all(|((&l, &n), &b)| l.checked_add(n).is_some_and(|end| end <= b));
                    if !inside {
                        return Err(bad(i, "its view reaches outside the leaf"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Evaluates the block `block` into its values in C order, as bytes of
    /// [`Program::dtype`].
    ///
    /// # Errors
    /// What reading a leaf fails with; the kernels' errors.
    pub fn eval_block(&self, block: &Subset, read: &ReadBox<'_>) -> Result<Vec<u8>> {
        let dtype = self.dtype();
        let mut out = Vec::with_capacity(block.num_elements() as usize * dtype.size());
        let mut eval = BlockEval::new(self, block, read, Vec::new())?;
        eval.run(|values, _, _| {
            values.encode(dtype, &mut out);
            Ok(())
        })?;
        Ok(out)
    }

    /// Evaluates the block `block` and reduces it over `spec.axes`: the partial state
    /// of the block's elements with the reduced axes of extent 1.
    ///
    /// # Errors
    /// As [`Program::eval_block`].
    pub fn reduce_block(
        &self,
        block: &Subset,
        spec: &ReduceSpec,
        read: &ReadBox<'_>,
    ) -> Result<Accum> {
        let kept: Vec<u64> = block
            .shape()
            .iter()
            .enumerate()
            .map(|(k, &n)| if spec.axes.contains(&k) { 1 } else { n })
            .collect();
        let mut acc_strides = c_strides(&kept);
        for &k in &spec.axes {
            acc_strides[k] = 0;
        }
        let n_out = kept.iter().product::<u64>() as usize;
        let mut acc = Accum::new(spec.reducer, Phys::of(self.dtype())?, n_out);
        // An argmin or argmax also walks each element's index among the reduced axes
        // (C order over them, in the whole array).
        let arg = spec.reducer.is_arg();
        let mut index_strides = vec![0i64; block.shape().len()];
        let mut stride = 1i64;
        for &k in spec.axes.iter().rev() {
            index_strides[k] = stride;
            stride = stride.saturating_mul(self.shape[k] as i64);
        }
        let base: i64 = spec
            .axes
            .iter()
            .map(|&k| block.start()[k] as i64 * index_strides[k])
            .sum();
        let mut extra = vec![acc_strides];
        if arg {
            extra.push(index_strides);
        }
        let mut eval = BlockEval::new(self, block, read, extra)?;
        let index_buffer = eval.walk.strides.len() - 1;
        let acc_buffer = if arg { index_buffer - 1 } else { index_buffer };
        let walk = eval.walk.clone();
        eval.run(|values, t0, n| {
            let inner = walk.inner(acc_buffer);
            let mut result = Ok(());
            if arg {
                let step = walk.inner(index_buffer);
                walk.runs(t0, n as u64, |at, len, offs| {
                    if result.is_ok() {
                        let o = offs[acc_buffer] as usize;
                        let first = base + offs[index_buffer];
                        result = if inner == 0 {
                            acc.fold_indexed(o, values, at..at + len, first, step)
                        } else {
                            (0..len).try_for_each(|j| {
                                let i = at + j;
                                acc.fold_indexed(
                                    o + j,
                                    values,
                                    i..i + 1,
                                    first + step * j as i64,
                                    0,
                                )
                            })
                        };
                    }
                });
                return result;
            }
            // Runs that fold into one output element are joined first: a reduction
            // over the last axes then folds whole tiles at once.
            let mut pending: Option<(usize, usize, usize)> = None;
            walk.runs(t0, n as u64, |at, len, offs| {
                if result.is_err() {
                    return;
                }
                let o = offs[acc_buffer] as usize;
                if inner == 0 {
                    match &mut pending {
                        Some((po, _, end)) if *po == o && *end == at => *end = at + len,
                        _ => {
                            if let Some((po, s, e)) = pending.take() {
                                result = acc.fold_run(po, values, s..e);
                            }
                            pending = Some((o, at, at + len));
                        }
                    }
                } else {
                    result = acc.fold_each(o, values, at..at + len);
                }
            });
            if let Some((po, s, e)) = pending {
                result = result.and_then(|()| acc.fold_run(po, values, s..e));
            }
            result
        })?;
        Ok(acc)
    }
}

/// How one leaf gives a tile's values.
enum LeafFill {
    /// From a box read or computed once a block; the walk's buffer `buffer`.
    Boxed {
        values: std::rc::Rc<Values>,
        buffer: usize,
        /// Where the block's first element is in `values` (not the box's first when
        /// a step is negative).
        offset: i64,
    },
    /// Generated by global element index; the walk's buffer `buffer` holds global
    /// strides, `origin` is the global index of the block's first element.
    Random {
        philox: Philox,
        dist: Distribution,
        buffer: usize,
        origin: i64,
    },
}

/// Bytes a value of a physical type takes in a tile.
pub(crate) fn phys_size(p: Phys) -> u64 {
    match p {
        Phys::Bool => 1,
        Phys::F32 => 4,
        Phys::I64 | Phys::U64 | Phys::F64 | Phys::C64 => 8,
        Phys::C128 => 16,
    }
}

/// A program being evaluated over one block.
struct BlockEval<'p> {
    program: &'p Program,
    walk: Walk,
    leaves: Vec<Option<LeafFill>>,
    /// The tiles, shared by nodes whose lives do not overlap.
    tiles: Vec<Values>,
    /// Each node's tile.
    slot: Vec<usize>,
    /// Generated spans, reused between tiles.
    scratch: Values,
    len: u64,
}

impl<'p> BlockEval<'p> {
    fn new(
        program: &'p Program,
        block: &Subset,
        read: &ReadBox<'_>,
        extra: Vec<Vec<i64>>,
    ) -> Result<Self> {
        program.validate()?;
        // Each boxed leaf's box, read or computed once for the leaves sharing it.
        let mut boxes: Vec<std::rc::Rc<Values>> = Vec::new();
        let mut box_of: Vec<Option<(usize, Subset)>> = vec![None; program.nodes.len()];
        for (nodes, region) in program.leaf_boxes(block) {
            let Node::Leaf { source, dtype, .. } = &program.nodes[nodes[0]] else {
                continue;
            };
            boxes.push(std::rc::Rc::new(leaf_box(source, *dtype, &region, read)?));
            for i in nodes {
                box_of[i] = Some((boxes.len() - 1, region.clone()));
            }
        }
        let mut strides: Vec<Vec<i64>> = Vec::new();
        let mut leaves = Vec::new();
        for node in &program.nodes {
            let Node::Leaf {
                source,
                view,
                dtype: _,
            } = node
            else {
                leaves.push(None);
                continue;
            };
            let buffer = strides.len();
            match source {
                LeafSource::Random { dist, seed } if !view.walks_rows() => {
                    // Transposed or stepped: generated a box at a time in the
                    // generator's own order, then gathered, as a stored leaf is.
                    let (lo, len) = view.bounding_box(block);
                    let region = Subset::new(lo.clone(), len.clone());
                    let values = std::rc::Rc::new(random_box(
                        Philox::new(*seed),
                        *dist,
                        &view.base,
                        &region,
                    )?);
                    let (s, offset) = view.block_strides(block, &c_strides(&len), &lo);
                    strides.push(s);
                    leaves.push(Some(LeafFill::Boxed {
                        values,
                        buffer,
                        offset,
                    }));
                }
                LeafSource::Random { dist, seed } => {
                    let global = c_strides(&view.base);
                    let zero = vec![0; view.base.len()];
                    let (s, origin) = view.block_strides(block, &global, &zero);
                    strides.push(s);
                    leaves.push(Some(LeafFill::Random {
                        philox: Philox::new(*seed),
                        dist: *dist,
                        buffer,
                        origin,
                    }));
                }
                _ => {
                    let Some((b, region)) = box_of[leaves.len()].clone() else {
                        return Err(Error::bug("a boxed leaf without its box", ""));
                    };
                    let values = boxes[b].clone();
                    let (s, offset) =
                        view.block_strides(block, &c_strides(region.shape()), region.start());
                    strides.push(s);
                    leaves.push(Some(LeafFill::Boxed {
                        values,
                        buffer,
                        offset,
                    }));
                }
            }
        }
        strides.extend(extra);
        // The walk needs at least one buffer to merge axes by.
        if strides.is_empty() {
            strides.push(c_strides(block.shape()));
        }
        let walk = Walk::new(block.shape(), &strides);
        let (slot, phys) = program.tile_slots()?;
        let tiles = phys.iter().map(|&p| Values::zeros(p, 0)).collect();
        Ok(BlockEval {
            program,
            walk,
            leaves,
            tiles,
            slot,
            scratch: Values::F64(Vec::new()),
            len: block.num_elements(),
        })
    }

    /// Evaluates every tile, handing the result's values to `sink` with the tile's
    /// first element and length.
    fn run(&mut self, mut sink: impl FnMut(&Values, u64, usize) -> Result<()>) -> Result<()> {
        let last = self.program.nodes.len() - 1;
        let mut t0 = 0u64;
        while t0 < self.len {
            let n = (self.len - t0).min(TILE as u64) as usize;
            for i in 0..self.program.nodes.len() {
                self.eval_node(i, t0, n)?;
            }
            sink(&self.tiles[self.slot[last]], t0, n)?;
            t0 += n as u64;
        }
        Ok(())
    }

    fn eval_node(&mut self, i: usize, t0: u64, n: usize) -> Result<()> {
        // The node's tile is taken out while its operands are read.
        let mut tile = std::mem::replace(&mut self.tiles[self.slot[i]], Values::Bool(Vec::new()));
        let t = |k: usize| &self.tiles[self.slot[k]];
        let result = match &self.program.nodes[i] {
            Node::Leaf { .. } => self.fill_leaf(i, t0, n, &mut tile),
            Node::Scalar { value, dtype } => {
                fill_scalar(&mut tile, *value, *dtype, n);
                Ok(())
            }
            Node::Unary { op, arg, dtype } => {
                ops::unary(*op, t(*arg), &mut tile).map(|()| tile.wrap_to(*dtype))
            }
            Node::Binary {
                op,
                lhs,
                rhs,
                dtype,
            } => ops::binary(*op, t(*lhs), t(*rhs), &mut tile).map(|()| tile.wrap_to(*dtype)),
            Node::Where {
                cond,
                then,
                otherwise,
                ..
            } => select(t(*cond), t(*then), t(*otherwise), &mut tile),
            Node::Cast { arg, dtype } => {
                t(*arg).cast_into(*dtype, &mut tile);
                Ok(())
            }
            Node::Require {
                cond,
                value,
                message,
                ..
            } => match t(*cond) {
                Values::Bool(c) if c.iter().all(|&b| b) => {
                    tile.clone_from(t(*value));
                    Ok(())
                }
                Values::Bool(_) => Err(Error::ArrayArgument {
                    op: "compute".into(),
                    reason: message.clone(),
                }),
                _ => Err(Error::bug("a requirement that is not boolean", "")),
            },
        };
        self.tiles[self.slot[i]] = tile;
        result
    }

    fn fill_leaf(&mut self, i: usize, t0: u64, n: usize, tile: &mut Values) -> Result<()> {
        tile.resize(n);
        match &self.leaves[i] {
            Some(LeafFill::Boxed {
                values,
                buffer,
                offset,
            }) => {
                let (b, base) = (*buffer, *offset);
                let inner = self.walk.inner(b);
                macro_rules! gather {
                    ($src:ident, $dst:ident) => {{
                        self.walk.runs(t0, n as u64, |at, len, offs| {
                            let o = base + offs[b];
                            if inner == 1 {
                                let o = o as usize;
                                $dst[at..at + len].copy_from_slice(&$src[o..o + len]);
                            } else {
                                for j in 0..len {
                                    $dst[at + j] = $src[(o + inner * j as i64) as usize];
                                }
                            }
                        })
                    }};
                }
                match (&**values, tile) {
                    (Values::Bool(s), Values::Bool(d)) => gather!(s, d),
                    (Values::I64(s), Values::I64(d)) => gather!(s, d),
                    (Values::U64(s), Values::U64(d)) => gather!(s, d),
                    (Values::F32(s), Values::F32(d)) => gather!(s, d),
                    (Values::F64(s), Values::F64(d)) => gather!(s, d),
                    (Values::C64(s), Values::C64(d)) => gather!(s, d),
                    (Values::C128(s), Values::C128(d)) => gather!(s, d),
                    _ => return Err(Error::bug("a leaf's box has another type", "")),
                }
            }
            Some(LeafFill::Random {
                philox,
                dist,
                buffer,
                origin,
            }) => {
                let (philox, dist, b, origin) = (*philox, *dist, *buffer, *origin);
                let inner = self.walk.inner(b);
                // Runs whose global indices are near each other are generated as one
                // span: a block narrower than its array's last axis would otherwise
                // call the generator for a few elements at a time.
                let mut runs: Vec<(usize, usize, i64)> = Vec::new();
                self.walk.runs(t0, n as u64, |at, len, offs| {
                    runs.push((at, len, origin + offs[b]))
                });
                if inner != 1 {
                    for &(at, len, g) in &runs {
                        for j in 0..len {
                            let idx = (g + inner * j as i64) as u64;
                            fill_random(philox, dist, idx, tile, at + j, 1)?;
                        }
                    }
                    return Ok(());
                }
                let mut k = 0;
                while k < runs.len() {
                    let (at0, _, g0) = runs[k];
                    let mut end = k + 1;
                    let mut count = runs[k].1;
                    while end < runs.len() {
                        let (_, len, g) = runs[end];
                        let span = (g + len as i64 - g0) as usize;
                        if g < g0 || span > 2 * (count + len) {
                            break;
                        }
                        count += len;
                        end += 1;
                    }
                    if end == k + 1 {
                        fill_random(philox, dist, g0 as u64, tile, at0, runs[k].1)?;
                    } else {
                        let (_, last_len, last_g) = runs[end - 1];
                        let span = (last_g + last_len as i64 - g0) as usize;
                        let mut spanned =
                            std::mem::replace(&mut self.scratch, Values::Bool(Vec::new()));
                        if spanned.phys() != tile.phys() {
                            spanned = Values::zeros(tile.phys(), 0);
                        }
                        spanned.resize(span);
                        let filled = fill_random(philox, dist, g0 as u64, &mut spanned, 0, span);
                        for &(at, len, g) in &runs[k..end] {
                            let from = (g - g0) as usize;
                            copy_within_values(&spanned, from, tile, at, len);
                        }
                        self.scratch = spanned;
                        filled?;
                    }
                    k = end;
                }
            }
            None => return Err(Error::bug("a leaf node without its fill", "")),
        }
        Ok(())
    }
}

fn copy_within_values(src: &Values, from: usize, dst: &mut Values, at: usize, len: usize) {
    match (src, dst) {
        (Values::F64(s), Values::F64(d)) => d[at..at + len].copy_from_slice(&s[from..from + len]),
        (Values::I64(s), Values::I64(d)) => d[at..at + len].copy_from_slice(&s[from..from + len]),
        _ => {}
    }
}

/// Generated values for global indices `index..index + len` into `tile[at..]`.
fn fill_random(
    philox: Philox,
    dist: Distribution,
    index: u64,
    tile: &mut Values,
    at: usize,
    len: usize,
) -> Result<()> {
    match (dist, tile) {
        (Distribution::Random, Values::F64(d)) => {
            philox.fill_random_f64(index, &mut d[at..at + len])
        }
        (Distribution::Uniform { low, high }, Values::F64(d)) => {
            philox.fill_uniform(index, low, high, &mut d[at..at + len])
        }
        (Distribution::Normal { loc, scale }, Values::F64(d)) => {
            let out = &mut d[at..at + len];
            philox.fill_standard_normal(index, out);
            for v in out {
                *v = loc + scale * *v;
            }
        }
        (Distribution::Integers { low, high }, Values::I64(d)) => {
            philox.fill_integers(index, low, high, &mut d[at..at + len])
        }
        _ => {
            return Err(Error::bug(
                "a random leaf of another dtype",
                format!("{dist:?}"),
            ))
        }
    }
    Ok(())
}

/// The random values of `region` of an array of `shape`, generated a row of its last
/// axis at a time.
fn random_box(
    philox: Philox,
    dist: Distribution,
    shape: &[u64],
    region: &Subset,
) -> Result<Values> {
    let n = region.num_elements() as usize;
    let phys = match dist {
        Distribution::Integers { .. } => Phys::I64,
        _ => Phys::F64,
    };
    let mut values = Values::zeros(phys, n);
    let Some((&row, outer)) = region.shape().split_last() else {
        fill_random(philox, dist, 0, &mut values, 0, n.min(1))?;
        return Ok(values);
    };
    let strides = c_strides(shape);
    let row = row as usize;
    for (r, index) in crate::grid::indices_c_order(outer).enumerate() {
        let start: i64 = index
            .iter()
            .chain(std::iter::once(&0))
            .zip(region.start())
            .zip(&strides)
            .map(|((&i, &s), &st)| (i + s) as i64 * st)
            .sum();
        fill_random(philox, dist, start as u64, &mut values, r * row, row)?;
    }
    Ok(values)
}

/// The values of a leaf that is read or computed a box at a time.
fn leaf_box(
    source: &LeafSource,
    dtype: DType,
    region: &Subset,
    read: &ReadBox<'_>,
) -> Result<Values> {
    let n = region.num_elements() as usize;
    let f64s = |f: &dyn Fn(&[u64]) -> f64| -> Values {
        let mut v = Vec::with_capacity(n);
        for index in crate::grid::indices_c_order(region.shape()) {
            let at: Vec<u64> = index
                .iter()
                .zip(region.start())
                .map(|(i, s)| i + s)
                .collect();
            v.push(f(&at));
        }
        Values::F64(v)
    };
    let values = match source {
        LeafSource::Dataset { .. } | LeafSource::Stored { .. } => {
            return Values::decode(dtype, &read(source, region)?)
        }
        LeafSource::Random { .. } => return Err(Error::bug("a random leaf read as a box", "")),
        LeafSource::Arange { start, step } => f64s(&|i| start + step * i[0] as f64),
        LeafSource::Linspace {
            start,
            stop,
            num,
            endpoint,
        } => {
            // Numpy: step = (stop - start) / div, y = i * step + start, and the last
            // value is `stop` exactly when it is an endpoint.
            let (start, stop, endpoint, total) = (*start, *stop, *endpoint, *num);
            let div = if endpoint {
                total.saturating_sub(1)
            } else {
                total
            } as f64;
            // One value is `start` (numpy: no step to divide by).
            let step = if div > 0.0 { (stop - start) / div } else { 0.0 };
            f64s(&|i| {
                if endpoint && i[0] + 1 == total && total > 1 {
                    stop
                } else {
                    i[0] as f64 * step + start
                }
            })
        }
        LeafSource::Literal { shape, values } => {
            let mut out = Values::zeros(Phys::of(dtype)?, 0);
            let mut one = Values::zeros(Phys::of(dtype)?, 1);
            for index in crate::grid::indices_c_order(region.shape()) {
                let flat = index
                    .iter()
                    .zip(region.start())
                    .zip(shape)
                    .fold(0u64, |acc, ((i, s), n)| acc * n + i + s);
                let value = values
                    .get(flat as usize)
                    .copied()
                    .ok_or_else(|| Error::BadPlan {
                        reason: format!("a literal of {} values read at {flat}", values.len()),
                    })?;
                fill_scalar(&mut one, value, dtype, 1);
                out.extend_from(&one);
            }
            return Ok(out);
        }
        LeafSource::Eye { k } => f64s(&|i| {
            if i[1] as i64 - i[0] as i64 == *k {
                1.0
            } else {
                0.0
            }
        }),
    };
    // Computed leaves are made as float64 and cast to their dtype.
    let mut out = Values::zeros(Phys::of(dtype)?, 0);
    values.cast_into(dtype, &mut out);
    Ok(out)
}

fn fill_scalar(tile: &mut Values, value: Scalar, dtype: DType, n: usize) {
    let one = match value {
        Scalar::Bool(b) => Values::Bool(vec![b]),
        Scalar::Int(i) => Values::I64(vec![i]),
        Scalar::UInt(u) => Values::U64(vec![u]),
        Scalar::Float(f) => Values::F64(vec![f]),
        Scalar::Complex(re, im) => Values::C128(vec![num_complex::Complex64::new(re, im)]),
    };
    let mut cast = Values::zeros(tile.phys(), 1);
    one.cast_into(dtype, &mut cast);
    tile.resize(n);
    match (&cast, tile) {
        (Values::Bool(s), Values::Bool(d)) => d.fill(s[0]),
        (Values::I64(s), Values::I64(d)) => d.fill(s[0]),
        (Values::U64(s), Values::U64(d)) => d.fill(s[0]),
        (Values::F32(s), Values::F32(d)) => d.fill(s[0]),
        (Values::F64(s), Values::F64(d)) => d.fill(s[0]),
        (Values::C64(s), Values::C64(d)) => d.fill(s[0]),
        (Values::C128(s), Values::C128(d)) => d.fill(s[0]),
        _ => {}
    }
}

fn select(cond: &Values, a: &Values, b: &Values, out: &mut Values) -> Result<()> {
    let Values::Bool(c) = cond else {
        return Err(Error::bug("where's condition is not boolean", ""));
    };
    out.resize(c.len());
    macro_rules! pick {
        ($x:ident, $y:ident, $d:ident) => {{
            for (((o, &k), &p), &q) in $d.iter_mut().zip(c).zip($x).zip($y) {
                *o = if k { p } else { q };
            }
        }};
    }
    match (a, b, out) {
        (Values::Bool(x), Values::Bool(y), Values::Bool(d)) => pick!(x, y, d),
        (Values::I64(x), Values::I64(y), Values::I64(d)) => pick!(x, y, d),
        (Values::U64(x), Values::U64(y), Values::U64(d)) => pick!(x, y, d),
        (Values::F32(x), Values::F32(y), Values::F32(d)) => pick!(x, y, d),
        (Values::F64(x), Values::F64(y), Values::F64(d)) => pick!(x, y, d),
        (Values::C64(x), Values::C64(y), Values::C64(d)) => pick!(x, y, d),
        (Values::C128(x), Values::C128(y), Values::C128(d)) => pick!(x, y, d),
        _ => return Err(Error::bug("where's operands differ in type", "")),
    }
    Ok(())
}
