//! The lazy [`Array`]: a shape, a dtype, Dask-style chunks, and how to compute it.
//!
//! An array is either a fused elementwise [`Program`] over leaves (files, generators,
//! scalars, and other arrays that must be computed first) or a reduction of one.
//! Elementwise operations merge programs; slicing, transposing and broadcasting
//! rewrite the leaves' views; rechunking a program only changes the blocks it is
//! evaluated in. A reduction ends a program: what uses its result reads it as a
//! stored leaf. Nothing runs until the array is lowered to a plan
//! ([`super::lower`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::counts::Bins;
use super::kernel::ops::{BinaryOp, UnaryOp};
use super::kernel::reduce::Reducer;
use super::kernel::rows::BlockFunc;
use super::program::{AxisMap, Distribution, LeafSource, Node, Program, Scalar, View};
use super::promote::{self, Operand};
use crate::error::{Error, Result};
use crate::grid::tuple_text as shape_text;
use crate::storage::array::DType;
use crate::storage::Format;

/// Chunk lengths along each axis (Dask's `chunks`).
pub type Chunks = Vec<Vec<u64>>;

/// A lazy n-dimensional array.
#[derive(Debug, Clone)]
pub struct Array(Arc<ArrayExpr>);

/// What an array is.
#[derive(Debug)]
pub(crate) struct ArrayExpr {
    /// A name unique in the process: the dataset id of the array when it is stored.
    pub id: String,
    pub shape: Vec<u64>,
    pub dtype: DType,
    pub chunks: Chunks,
    pub body: Body,
    /// A Python scalar in an expression: weak in type promotion (NEP 50).
    pub weak: Option<Operand>,
    /// Files and computed arrays the program's leaves name, by dataset id.
    pub inputs: BTreeMap<String, Input>,
}

/// How an array is computed.
#[derive(Debug)]
pub(crate) enum Body {
    /// Elementwise, one pass a block.
    Fused(Program),
    /// A reduction of a program.
    Reduce {
        /// The reduced program's array.
        input: Array,
        /// The reduction.
        reducer: Reducer,
        /// The input's axes reduced.
        axes: Vec<usize>,
        /// Whether the reduced axes stay, of length 1.
        keepdims: bool,
        /// Delta degrees of freedom (variances).
        ddof: f64,
        /// Partials combined by one task of the tree (Dask's `split_every`).
        split_every: usize,
    },
    /// A cumulative sum or product along an axis.
    Scan {
        /// The program scanned, already of the result's dtype.
        input: Array,
        /// The axis.
        axis: usize,
        /// `Sum` (cumsum) or `Prod` (cumprod).
        reducer: Reducer,
    },
    /// Arrays joined along an axis; each block lies in one part.
    Concat {
        /// The parts, cast to the result's dtype and chunked alike off the axis.
        parts: Vec<Array>,
        /// The axis.
        axis: usize,
        /// Where each part starts along it.
        offsets: Vec<u64>,
    },
    /// A matrix product of two 2-d arrays stored first, chunked alike along the
    /// contracted axis.
    MatMul {
        /// The left operand, `(m, k)`.
        a: Array,
        /// The right operand, `(k, n)`.
        b: Array,
    },
    /// Each block is one block of a program's array passed through a block function
    /// (reshaped, sorted, cut to its top k); the blocks correspond by key.
    Map {
        /// The program's array, chunked so that its blocks map to the result's.
        input: Array,
        /// For each of the input's axes, the result's axis whose block index it
        /// takes (`None`: the input has one block along it).
        keys: Vec<Option<usize>>,
        /// What is done to each block's values.
        func: BlockFunc,
    },
    /// Rows of an array picked by integer indices along an axis (`x[[3, 0, 3]]`,
    /// `take`): each block holds the rows its block of indices names.
    Take {
        /// The program's array.
        input: Array,
        /// The axis.
        axis: usize,
        /// The indices' program (1-d, integer), chunked as the result's axis.
        indices: Array,
    },
    /// Values counted into bins (`histogram`, `bincount`): one chunk.
    Counts {
        /// The values' program.
        input: Array,
        /// The weights' program, chunked as the values.
        weights: Option<Array>,
        /// The bins.
        bins: Bins,
    },
}

/// A dataset a program's leaf reads.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// An array file.
    File {
        /// Its path.
        path: PathBuf,
        /// Its format.
        format: Format,
        /// Its chunk shape (the largest chunk).
        chunk_shape: Vec<u64>,
    },
    /// An array computed first and stored, chunk by chunk.
    Computed(Array),
}

fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("a{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Most blocks an array may be cut into: each becomes a task (and its entry in the
/// plan), so a chunk of one element on a large array would build a plan of billions
/// of tasks before anything runs.
pub const MAX_BLOCKS: u64 = 1 << 20;

/// Most values an array written out in an expression may hold: they travel in the
/// plan, in every task's stage.
pub const MAX_LITERAL: u64 = 1 << 16;

/// Refuses an array of `shape` and `dtype` that numpy could not hold either (more
/// than 2^63 - 1 bytes, zero-length axes counted as one): every index computed on
/// it would overflow.
///
/// # Errors
/// [`Error::ArrayArgument`] naming the shape and the dtype.
pub fn check_size(op: &str, shape: &[u64], dtype: DType) -> Result<()> {
    if crate::grid::size::checked_extent_bytes(shape, dtype.size() as u64).is_some() {
        return Ok(());
    }
    Err(Error::ArrayArgument {
        op: op.into(),
        reason: format!(
            "array is too big: shape {} of {} would take more than 2**63 - 1 bytes",
            shape_text(shape),
            dtype.name()
        ),
    })
}

/// Refuses chunk counts whose product passes [`MAX_BLOCKS`].
pub(crate) fn check_blocks(counts: impl IntoIterator<Item = u64>, shape: &[u64]) -> Result<()> {
    let blocks = counts
        .into_iter()
        .try_fold(1u64, |acc, c| acc.checked_mul(c.max(1)));
    if blocks.is_some_and(|b| b <= MAX_BLOCKS) {
        return Ok(());
    }
    Err(Error::ArrayArgument {
        op: "chunks".into(),
        reason: format!(
            "these chunks cut an array of shape {} into {} blocks, more than the {MAX_BLOCKS} \
             one array may have (each is a task); choose larger chunks",
            shape_text(shape),
            blocks.map_or("more than 2**64".to_string(), |b| b.to_string())
        ),
    })
}

/// Chunks of `shape` in pieces of `chunk` (the last one shorter).
///
/// # Errors
/// [`Error::ArrayArgument`] for chunks of another rank, of length zero, or that cut
/// the array into more than [`MAX_BLOCKS`] blocks.
pub fn regular_chunks(shape: &[u64], chunk: &[u64]) -> Result<Chunks> {
    if chunk.len() != shape.len() {
        return Err(Error::ArrayArgument {
            op: "chunks".into(),
            reason: format!(
                "chunks {} do not match shape {}",
                shape_text(chunk),
                shape_text(shape)
            ),
        });
    }
    if chunk.iter().zip(shape).any(|(&c, &n)| c == 0 && n > 0) {
        return Err(Error::ArrayArgument {
            op: "chunks".into(),
            reason: format!("chunk lengths must be positive, not {}", shape_text(chunk)),
        });
    }
    if crate::grid::size::checked_extent_bytes(shape, 1).is_none() {
        return Err(Error::ArrayArgument {
            op: "shape".into(),
            reason: format!(
                "array is too big: shape {} has more than 2**63 - 1 elements",
                shape_text(shape)
            ),
        });
    }
    check_blocks(
        shape.iter().zip(chunk).map(|(&n, &c)| n.div_ceil(c.max(1))),
        shape,
    )?;
    shape
        .iter()
        .zip(chunk)
        .map(|(&n, &c)| {
            if c == 0 && n > 0 {
                return Err(Error::ArrayArgument {
                    op: "chunks".into(),
                    reason: format!("chunk lengths must be positive, not {}", shape_text(chunk)),
                });
            }
            let c = c.max(1);
            let mut v = vec![c; (n / c) as usize];
            if n % c != 0 {
                v.push(n % c);
            }
            if n == 0 {
                v = vec![0];
            }
            Ok(v)
        })
        .collect()
}

/// Chunks of about `target` bytes (Dask's `"auto"`): the trailing axes kept whole
/// while they fit, the others cut evenly.
///
/// # Errors
/// As [`regular_chunks`], for an array so large that even these chunks are too many.
pub fn auto_chunks(shape: &[u64], item: u64) -> Result<Chunks> {
    auto_chunks_of(shape, item, AUTO_CHUNK_BYTES)
}

/// Chunks of about `target` bytes, as [`auto_chunks`].
///
/// # Errors
/// As [`auto_chunks`].
pub fn auto_chunks_of(shape: &[u64], item: u64, target: u64) -> Result<Chunks> {
    if crate::grid::size::checked_extent_bytes(shape, item).is_none() {
        return Err(Error::ArrayArgument {
            op: "chunks".into(),
            reason: format!(
                "array is too big: shape {} of {item}-byte elements would take more than \
                 2**63 - 1 bytes",
                shape_text(shape)
            ),
        });
    }
    let chunk = crate::grid::auto_chunks(shape, item, target.max(1));
    regular_chunks(shape, &chunk)
}

/// Dask's default chunk size: 128 MiB.
pub const AUTO_CHUNK_BYTES: u64 = 128 << 20;

/// The common refinement of two chunkings of one axis (Dask's `unify_chunks`).
fn refine(a: &[u64], b: &[u64]) -> Vec<u64> {
    let cuts = |c: &[u64]| {
        let mut at = 0;
        c.iter()
            .map(|&n| {
                at += n;
                at
            })
            .collect::<Vec<u64>>()
    };
    let mut all: Vec<u64> = cuts(a).into_iter().chain(cuts(b)).collect();
    all.sort_unstable();
    all.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in all {
        if c > prev {
            out.push(c - prev);
            prev = c;
        }
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

/// The broadcast shape of `a` and `b`.
fn broadcast_shapes(op: &str, a: &[u64], b: &[u64]) -> Result<Vec<u64>> {
    let rank = a.len().max(b.len());
    let at = |s: &[u64], k: usize| {
        let lead = rank - s.len();
        if k < lead {
            1
        } else {
            s[k - lead]
        }
    };
    (0..rank)
        .map(|k| {
            let (x, y) = (at(a, k), at(b, k));
            if x == y || y == 1 {
                Ok(x)
            } else if x == 1 {
                Ok(y)
            } else {
                Err(Error::Broadcast {
                    op: op.into(),
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                })
            }
        })
        .collect()
}

impl Array {
    pub(crate) fn new(
        shape: Vec<u64>,
        dtype: DType,
        chunks: Chunks,
        body: Body,
        inputs: BTreeMap<String, Input>,
    ) -> Array {
        Array(Arc::new(ArrayExpr {
            id: next_id(),
            shape,
            dtype,
            chunks,
            body,
            weak: None,
            inputs,
        }))
    }

    pub(crate) fn expr(&self) -> &ArrayExpr {
        &self.0
    }

    /// The shape.
    pub fn shape(&self) -> &[u64] {
        &self.0.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// The chunk lengths along each axis.
    pub fn chunks(&self) -> &Chunks {
        &self.0.chunks
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }

    /// Number of elements.
    pub fn size(&self) -> u64 {
        self.0.shape.iter().product()
    }

    /// Bytes of the whole array.
    pub fn nbytes(&self) -> u64 {
        self.size().saturating_mul(self.dtype().size() as u64)
    }

    /// The files the array reads, however deep.
    pub fn input_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![self.clone()];
        while let Some(a) = stack.pop() {
            if !seen.insert(a.0.id.clone()) {
                continue;
            }
            match &a.0.body {
                Body::Reduce { input, .. } => stack.push(input.clone()),
                Body::MatMul { a: l, b: r } => {
                    stack.push(l.clone());
                    stack.push(r.clone());
                }
                Body::Concat { parts, .. } => stack.extend(parts.iter().cloned()),
                Body::Scan { input, .. } | Body::Map { input, .. } => stack.push(input.clone()),
                Body::Counts { input, weights, .. } => {
                    stack.push(input.clone());
                    stack.extend(weights.iter().cloned());
                }
                Body::Take { input, indices, .. } => {
                    stack.push(input.clone());
                    stack.push(indices.clone());
                }
                Body::Fused(_) => {}
            }
            for input in a.0.inputs.values() {
                match input {
                    Input::File { path, .. } => out.push(path.clone()),
                    Input::Computed(c) => stack.push(c.clone()),
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The path of the array file this array is, value for value (in any chunks): a
    /// file opened and neither sliced, transposed nor computed on.
    pub fn file_itself(&self) -> Option<PathBuf> {
        let Body::Fused(program) = &self.0.body else {
            return None;
        };
        let [Node::Leaf {
            source: LeafSource::Dataset { id },
            view,
            dtype,
        }] = program.nodes.as_slice()
        else {
            return None;
        };
        let Some(Input::File { path, .. }) = self.0.inputs.get(id) else {
            return None;
        };
        let whole = *dtype == self.0.dtype
            && view.base == self.0.shape
            && *view == View::identity(&self.0.shape, self.0.shape.len());
        whole.then(|| path.clone())
    }

    /// The array's program: its own if elementwise, else one stored leaf reading it.
    pub(crate) fn program(&self) -> (Program, BTreeMap<String, Input>) {
        match &self.0.body {
            Body::Fused(p) => (p.clone(), self.0.inputs.clone()),
            Body::Reduce { .. }
            | Body::MatMul { .. }
            | Body::Concat { .. }
            | Body::Scan { .. }
            | Body::Map { .. }
            | Body::Counts { .. }
            | Body::Take { .. } => {
                let leaf = Node::Leaf {
                    source: LeafSource::Stored {
                        id: self.0.id.clone(),
                        chunks: self.0.chunks.clone(),
                    },
                    view: View::identity(&self.0.shape, self.0.shape.len()),
                    dtype: self.0.dtype,
                };
                let mut inputs = BTreeMap::new();
                inputs.insert(self.0.id.clone(), Input::Computed(self.clone()));
                (
                    Program {
                        shape: self.0.shape.clone(),
                        nodes: vec![leaf],
                    },
                    inputs,
                )
            }
        }
    }

    pub(crate) fn fused(
        program: Program,
        chunks: Chunks,
        inputs: BTreeMap<String, Input>,
    ) -> Array {
        let dtype = program.dtype();
        Array::new(
            program.shape.clone(),
            dtype,
            chunks,
            Body::Fused(program),
            inputs,
        )
    }

    fn leaf(shape: &[u64], chunks: Chunks, source: LeafSource, dtype: DType) -> Array {
        let program = Program {
            shape: shape.to_vec(),
            nodes: vec![Node::Leaf {
                source,
                view: View::identity(shape, shape.len()),
                dtype,
            }],
        };
        Array::fused(program, chunks, BTreeMap::new())
    }

    /// An array file (`.zarr`, `.npy`, an npy stack), chunked as stored unless
    /// `chunks` says otherwise.
    ///
    /// # Errors
    /// What opening it fails with.
    pub fn open(path: &std::path::Path, chunks: Option<Chunks>) -> Result<Array> {
        Array::open_sized(path, chunks, AUTO_CHUNK_BYTES)
    }

    /// As [`Array::open`], cutting a file that has no chunks of its own (`.npy`,
    /// an npy stack) into chunks of about `auto_bytes`: what a job sizes to its
    /// memory limit.
    ///
    /// # Errors
    /// What opening it fails with.
    pub fn open_sized(
        path: &std::path::Path,
        chunks: Option<Chunks>,
        auto_bytes: u64,
    ) -> Result<Array> {
        // A plan may run in another directory: its paths are absolute.
        let path = &std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        let format = crate::storage::detect(path)?;
        let source = crate::storage::open_array(path, format)?;
        let meta = source.meta().clone();
        drop(source);
        let shape = meta.shape();
        let chunk_shape = meta.grid.max_chunk_shape();
        let chunks = match chunks {
            Some(c) => c,
            None => match meta.grid.regular_chunk_shape() {
                // A Zarr array's own chunks; an `.npy` cut into about `auto_bytes`.
                Some(c) if format == Format::Zarr => regular_chunks(&shape, &c)?,
                _ => auto_chunks_of(&shape, meta.dtype.size() as u64, auto_bytes)?,
            },
        };
        let id = next_id();
        let mut a = Array::leaf(
            &shape,
            chunks,
            LeafSource::Dataset { id: id.clone() },
            meta.dtype,
        );
        let inner = Arc::get_mut(&mut a.0).ok_or_else(|| Error::bug("a new array shared", ""))?;
        inner.inputs.insert(
            id,
            Input::File {
                path: path.to_path_buf(),
                format,
                chunk_shape,
            },
        );
        Ok(a)
    }

    /// Random numbers of `dist` (float64, or int64 for integers), the same whatever
    /// the chunks.
    pub fn random(shape: &[u64], chunks: Chunks, seed: u64, dist: Distribution) -> Array {
        let dtype = match dist {
            Distribution::Integers { .. } => DType::Int64,
            _ => DType::Float64,
        };
        Array::leaf(shape, chunks, LeafSource::Random { dist, seed }, dtype)
    }

    /// `value` everywhere (numpy's `full`; `zeros`, `ones` and `empty` are it too).
    ///
    /// # Errors
    /// As [`Array::astype`].
    pub fn full(shape: &[u64], chunks: Chunks, value: Scalar, dtype: DType) -> Result<Array> {
        let program = Program {
            shape: shape.to_vec(),
            nodes: vec![Node::Scalar { value, dtype }],
        };
        Ok(Array::fused(program, chunks, BTreeMap::new()))
    }

    /// A small array of values written out (numpy's `array([...])`), one chunk.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for more than [`MAX_LITERAL`] values, or a count
    /// that is not the shape's.
    pub fn literal(shape: &[u64], values: Vec<Scalar>, dtype: DType) -> Result<Array> {
        let n = shape.iter().try_fold(1u64, |a, &k| a.checked_mul(k));
        if n != Some(values.len() as u64) || values.len() as u64 > MAX_LITERAL {
            return Err(Error::ArrayArgument {
                op: "array".into(),
                reason: format!(
                    "{} values for shape {}; a literal array holds at most {MAX_LITERAL} (it \
                     is written into the plan): read larger data from a file",
                    values.len(),
                    shape_text(shape)
                ),
            });
        }
        let chunks = shape.iter().map(|&k| vec![k]).collect();
        Ok(Array::leaf(
            shape,
            chunks,
            LeafSource::Literal {
                shape: shape.to_vec(),
                values,
            },
            dtype,
        ))
    }

    /// A scalar operand: `weak` for a Python number in an expression (NEP 50).
    pub fn scalar(value: Scalar, dtype: DType, weak: Option<Operand>) -> Array {
        let program = Program {
            shape: vec![],
            nodes: vec![Node::Scalar { value, dtype }],
        };
        let mut a = Array::fused(program, vec![], BTreeMap::new());
        if let Some(inner) = Arc::get_mut(&mut a.0) {
            inner.weak = weak;
        }
        a
    }

    /// `start, start + step, ...` below `stop` (numpy's `arange`), as `dtype`.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a zero step.
    pub fn arange(start: f64, stop: f64, step: f64, dtype: DType, chunk: u64) -> Result<Array> {
        if step == 0.0 || !step.is_finite() {
            return Err(Error::ArrayArgument {
                op: "arange".into(),
                reason: format!("the step must be a non-zero finite number, not {step}"),
            });
        }
        let count = ((stop - start) / step).ceil().max(0.0);
        if !count.is_finite() || count >= (1u64 << 62) as f64 {
            return Err(Error::ArrayArgument {
                op: "arange".into(),
                reason: format!("arange({start}, {stop}, {step}) is too big an array"),
            });
        }
        let n = count as u64;
        let shape = [n];
        check_size("arange", &shape, dtype)?;
        let chunks = regular_chunks(&shape, &[chunk.max(1)])?;
        Ok(Array::leaf(
            &shape,
            chunks,
            LeafSource::Arange { start, step },
            dtype,
        ))
    }

    /// `num` values evenly from `start` to `stop` (numpy's `linspace`).
    ///
    /// # Errors
    /// As [`regular_chunks`].
    pub fn linspace(start: f64, stop: f64, num: u64, endpoint: bool, chunk: u64) -> Result<Array> {
        let shape = [num];
        let chunks = regular_chunks(&shape, &[chunk.max(1)])?;
        Ok(Array::leaf(
            &shape,
            chunks,
            LeafSource::Linspace {
                start,
                stop,
                num,
                endpoint,
            },
            DType::Float64,
        ))
    }

    /// An `n` × `m` array with ones on diagonal `k` (numpy's `eye`).
    ///
    /// # Errors
    /// As [`regular_chunks`].
    pub fn eye(n: u64, m: u64, k: i64, dtype: DType, chunks: &[u64]) -> Result<Array> {
        let shape = [n, m];
        Ok(Array::leaf(
            &shape,
            regular_chunks(&shape, chunks)?,
            LeafSource::Eye { k },
            dtype,
        ))
    }

    /// The operand numpy's promotion sees.
    fn operand(&self) -> Operand {
        self.0.weak.unwrap_or(Operand::Array(self.0.dtype))
    }

    /// Combines the programs of `arrays` (broadcast to one shape) with `build`, which
    /// is handed the merged nodes and each operand's root index.
    fn combine(
        op: &str,
        arrays: &[&Array],
        build: impl FnOnce(&mut Vec<Node>, &[usize]) -> Result<()>,
    ) -> Result<Array> {
        let mut shape: Vec<u64> = Vec::new();
        for a in arrays {
            shape = broadcast_shapes(op, &shape, a.shape()).map_err(|_| Error::Broadcast {
                op: op.into(),
                lhs: arrays[0].shape().to_vec(),
                rhs: a.shape().to_vec(),
            })?;
        }
        check_size(op, &shape, DType::Bool)?;
        let rank = shape.len();
        let mut nodes: Vec<Node> = Vec::new();
        let mut roots = Vec::new();
        let mut inputs = BTreeMap::new();
        let mut chunks: Chunks = shape.iter().map(|&n| vec![n]).collect();
        let mut chunked = vec![false; rank];
        for a in arrays {
            let (program, ins) = a.program();
            inputs.extend(ins);
            let lead = rank - a.ndim();
            // Chunks of the axes the operand really spans refine the result's.
            for (k, c) in a.chunks().iter().enumerate() {
                let axis = lead + k;
                if a.shape()[k] == shape[axis] && shape[axis] != 1 {
                    chunks[axis] = if chunked[axis] {
                        refine(&chunks[axis], c)
                    } else {
                        c.clone()
                    };
                    chunked[axis] = true;
                }
            }
            let base = nodes.len();
            for node in program.nodes {
                nodes.push(broadcast_node(node, base, a.shape(), &shape));
            }
            roots.push(nodes.len() - 1);
        }
        build(&mut nodes, &roots)?;
        let nodes = dedupe(nodes);
        Ok(Array::fused(Program { shape, nodes }, chunks, inputs))
    }

    /// `op(self)`, numpy's result type.
    ///
    /// # Errors
    /// [`Error::ArrayType`] when the ufunc does not apply to the dtype.
    pub fn unary(&self, op: UnaryOp) -> Result<Array> {
        let dtype = self.dtype();
        let (arg_type, out_type) = match op {
            _ if op.is_test() => (dtype, DType::Bool),
            // A complex operand's parts and size are real.
            UnaryOp::Real | UnaryOp::Imag | UnaryOp::Angle | UnaryOp::Absolute
                if dtype.is_complex() =>
            {
                (dtype, promote::abs_type(dtype))
            }
            UnaryOp::Real | UnaryOp::Imag | UnaryOp::Conjugate => (dtype, dtype),
            UnaryOp::Angle => {
                let f = float_type(dtype);
                (f, f)
            }
            _ if dtype.is_complex() => match op {
                UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Trunc | UnaryOp::Rint | UnaryOp::Cbrt => {
                    return Err(type_error(&op.name(), &[dtype]))
                }
                UnaryOp::Invert => return Err(type_error(&op.name(), &[dtype])),
                _ => (dtype, dtype),
            },
            _ if op.is_float_only() => {
                let f = float_type(dtype);
                (f, f)
            }
            UnaryOp::Invert if dtype.is_float() => {
                return Err(type_error(&op.name(), &[dtype]));
            }
            UnaryOp::Negative if dtype == DType::Bool => {
                return Err(Error::ArrayType {
                    op: "negative".into(),
                    reason: "the - operator on a bool array is not supported; use ~ (invert) \
                             or logical_not"
                        .into(),
                });
            }
            UnaryOp::Sign if dtype == DType::Bool => return Err(type_error("sign", &[dtype])),
            // numpy's rint of booleans is a half float; floor, ceil and trunc keep them.
            UnaryOp::Rint if dtype == DType::Bool => (DType::Float16, DType::Float16),
            _ => (dtype, dtype),
        };
        let weak = self.0.weak;
        let mut out = Array::combine(&op.name(), &[self], |nodes, roots| {
            let arg = cast_node(nodes, roots[0], arg_type);
            nodes.push(Node::Unary {
                op,
                arg,
                dtype: out_type,
            });
            Ok(())
        })?;
        // `-3` stays a Python scalar.
        if let (Some(w), Some(inner)) = (weak, Arc::get_mut(&mut out.0)) {
            inner.weak = Some(match w {
                Operand::PyInt(i) if op == UnaryOp::Negative => Operand::PyInt(-i),
                other => other,
            });
        }
        Ok(out)
    }

    /// `op(self, other)` with numpy's broadcasting and type promotion.
    ///
    /// # Errors
    /// [`Error::Broadcast`], [`Error::ArrayType`], [`Error::IntegerOutOfBounds`].
    pub fn binary(&self, op: BinaryOp, other: &Array) -> Result<Array> {
        let operands = [self.operand(), other.operand()];
        let name = op.name();
        let common = match op {
            BinaryOp::TrueDivide => promote::true_divide_type(&operands)?,
            // Their loops take the smallest float holding the operands, as the
            // one-operand float functions do (int8 gives float16).
            BinaryOp::Arctan2 | BinaryOp::Hypot => float_type(promote::result_type(&operands)?),
            // A comparison with a Python integer outside the array's range is still
            // answered (numpy 2): compared in 64 bits, or as floats past them.
            _ if op.is_comparison() => match promote::result_type(&operands) {
                Err(Error::IntegerOutOfBounds { value, .. }) => {
                    if i64::try_from(value).is_ok()
                        && self.dtype() != DType::UInt64
                        && other.dtype() != DType::UInt64
                    {
                        DType::Int64
                    } else {
                        DType::Float64
                    }
                }
                other => other?,
            },
            _ => promote::result_type(&operands)?,
        };
        if op.is_bitwise() && common.is_float() {
            return Err(type_error(&name, &[self.dtype(), other.dtype()]));
        }
        if op == BinaryOp::Subtract && common == DType::Bool {
            return Err(Error::ArrayType {
                op: name,
                reason: "numpy boolean subtract, the - operator, is not supported; use the \
                         ^ operator or logical_xor"
                    .into(),
            });
        }
        let (arg_type, out_type) = match op {
            _ if op.is_comparison() => (common, DType::Bool),
            BinaryOp::Power | BinaryOp::FloorDivide | BinaryOp::Remainder
                if common == DType::Bool =>
            {
                (DType::Int8, DType::Int8)
            }
            _ => (common, common),
        };
        let complex_ok = matches!(
            op,
            BinaryOp::Add
                | BinaryOp::Subtract
                | BinaryOp::Multiply
                | BinaryOp::TrueDivide
                | BinaryOp::Power
                | BinaryOp::Equal
                | BinaryOp::NotEqual
        );
        if common.is_complex() && !complex_ok {
            return Err(type_error(&name, &[self.dtype(), other.dtype()]));
        }
        Array::combine(&name, &[self, other], |nodes, roots| {
            let lhs = cast_node(nodes, roots[0], arg_type);
            let rhs = cast_node(nodes, roots[1], arg_type);
            nodes.push(Node::Binary {
                op,
                lhs,
                rhs,
                dtype: out_type,
            });
            Ok(())
        })
    }

    /// `where(cond, self, other)`.
    ///
    /// # Errors
    /// As [`Array::binary`].
    pub fn select(cond: &Array, then: &Array, otherwise: &Array) -> Result<Array> {
        let common = promote::result_type(&[then.operand(), otherwise.operand()])?;
        Array::combine("where", &[cond, then, otherwise], |nodes, roots| {
            let c = cast_node(nodes, roots[0], DType::Bool);
            let a = cast_node(nodes, roots[1], common);
            let b = cast_node(nodes, roots[2], common);
            nodes.push(Node::Where {
                cond: c,
                then: a,
                otherwise: b,
                dtype: common,
            });
            Ok(())
        })
    }

    /// `value` where `cond` holds everywhere; computing it fails with `message`
    /// where `cond` does not (an error only the values can tell).
    ///
    /// # Errors
    /// [`Error::Broadcast`] when the shapes do not broadcast.
    pub fn require(cond: &Array, value: &Array, message: &str) -> Result<Array> {
        let dtype = value.dtype();
        Array::combine("require", &[cond, value], |nodes, roots| {
            let c = cast_node(nodes, roots[0], DType::Bool);
            nodes.push(Node::Require {
                cond: c,
                value: roots[1],
                message: message.to_string(),
                dtype,
            });
            Ok(())
        })
    }

    /// The array cast to `dtype` (numpy's `astype`, unsafe casting).
    ///
    /// # Errors
    /// [`Error::ArrayType`] for complex dtypes, not computed yet.
    pub fn astype(&self, dtype: DType) -> Result<Array> {
        super::kernel::values::Phys::of(dtype).map_err(|_| Error::ArrayType {
            op: "astype".into(),
            reason: format!(
                "casting from {} to {} is not supported yet",
                self.dtype().name(),
                dtype.name()
            ),
        })?;
        Array::combine("astype", &[self], |nodes, roots| {
            let at = roots[0];
            if nodes[at].dtype() != dtype {
                nodes.push(Node::Cast { arg: at, dtype });
            }
            Ok(())
        })
    }

    /// The array in other chunks; a program is only evaluated in other blocks.
    ///
    /// # Errors
    /// Chunks that do not tile the shape.
    pub fn rechunk(&self, chunks: Chunks) -> Result<Array> {
        check_chunks(self.shape(), &chunks)?;
        let (program, inputs) = self.program();
        Ok(Array::fused(program, chunks, inputs))
    }

    /// Reduces over `axes` (all when `None`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range or repeated, or an empty
    /// reduction without identity; [`Error::ArrayType`] for a reduction that does
    /// not apply.
    pub fn reduce(
        &self,
        reducer: Reducer,
        axes: Option<&[i64]>,
        keepdims: bool,
        ddof: f64,
    ) -> Result<Array> {
        let name = reducer.name();
        let axes = reduced_axes(&name, axes, self.ndim())?;
        if reducer.is_arg() && axes.len() > 1 && axes.len() < self.ndim() {
            return Err(Error::ArrayArgument {
                op: name,
                reason: "takes one axis, or none for the index in the flattened array".into(),
            });
        }
        if reducer.needs_elements() && axes.iter().any(|&k| self.shape()[k] == 0) {
            return Err(Error::ArrayArgument {
                op: name.clone(),
                reason: format!(
                    "zero-size array to reduction operation {name} which has no identity"
                ),
            });
        }
        use Reducer as R;
        let dtype = self.dtype();
        let (in_type, out_type) = match reducer {
            R::Sum | R::Prod | R::Nansum | R::Nanprod => {
                let t = promote::sum_type(dtype);
                (t, t)
            }
            R::Mean | R::Nanmean => (dtype, promote::mean_type(dtype)),
            R::Var | R::Std | R::Nanvar | R::Nanstd => (dtype, promote::var_type(dtype)),
            R::Any | R::All => (DType::Bool, DType::Bool),
            R::Min | R::Max | R::Nanmin | R::Nanmax => (dtype, dtype),
            R::Argmin | R::Argmax => (dtype, DType::Int64),
        };
        if dtype.is_complex() {
            return self.complex_reduce(reducer, &axes, keepdims, ddof);
        }
        let input = self.astype(in_type)?;
        let shape: Vec<u64> = (0..self.ndim())
            .filter_map(|k| {
                if axes.contains(&k) {
                    keepdims.then_some(1)
                } else {
                    Some(self.shape()[k])
                }
            })
            .collect();
        let chunks: Chunks = (0..self.ndim())
            .filter_map(|k| {
                if axes.contains(&k) {
                    keepdims.then(|| vec![1])
                } else {
                    Some(self.chunks()[k].clone())
                }
            })
            .collect();
        Ok(Array::new(
            shape,
            out_type,
            chunks,
            Body::Reduce {
                input,
                reducer,
                axes,
                keepdims,
                ddof,
                split_every: super::lower::SPLIT_EVERY,
            },
            BTreeMap::new(),
        ))
    }

    /// A reduction of complex values from reductions of their parts: a sum or mean
    /// is the parts' (`re + 1j * im`), a variance the sum of the parts' (numpy's
    /// mean of `|z - mean|**2`), `any`/`all` those of `z != 0`.
    fn complex_reduce(
        &self,
        reducer: Reducer,
        axes: &[usize],
        keepdims: bool,
        ddof: f64,
    ) -> Result<Array> {
        use Reducer as R;
        let axes: Vec<i64> = axes.iter().map(|&k| k as i64).collect();
        let part = |op: UnaryOp, r: Reducer| self.unary(op)?.reduce(r, Some(&axes), keepdims, ddof);
        match reducer {
            R::Sum | R::Mean => {
                let j = Array::scalar(
                    Scalar::Complex(0.0, 1.0),
                    DType::Complex128,
                    Some(Operand::PyComplex(0.0, 1.0)),
                );
                let im = part(UnaryOp::Imag, reducer)?.binary(BinaryOp::Multiply, &j)?;
                part(UnaryOp::Real, reducer)?.binary(BinaryOp::Add, &im)
            }
            R::Var | R::Std => {
                let var = part(UnaryOp::Real, R::Var)?
                    .binary(BinaryOp::Add, &part(UnaryOp::Imag, R::Var)?)?;
                if reducer == R::Std {
                    var.unary(UnaryOp::Sqrt)
                } else {
                    Ok(var)
                }
            }
            R::Any | R::All => {
                let zero = Array::scalar(Scalar::Int(0), DType::Int64, Some(Operand::PyInt(0)));
                self.binary(BinaryOp::NotEqual, &zero)?
                    .reduce(reducer, Some(&axes), keepdims, ddof)
            }
            _ => Err(Error::ArrayType {
                op: reducer.name(),
                reason: format!(
                    "{} of {} arrays is not supported (sum, mean, var, std, any and all are)",
                    reducer.name(),
                    self.dtype().name()
                ),
            }),
        }
    }

    /// The reduction with its partials combined `n` at a time (Dask's
    /// `split_every`); other arrays are returned as they are.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for `n` below 2.
    pub fn with_split_every(&self, n: u64) -> Result<Array> {
        if n < 2 {
            return Err(Error::ArrayArgument {
                op: "split_every".into(),
                reason: format!("split_every must be at least 2, not {n}"),
            });
        }
        let Body::Reduce {
            input,
            reducer,
            axes,
            keepdims,
            ddof,
            ..
        } = &self.0.body
        else {
            return Ok(self.clone());
        };
        Ok(Array::new(
            self.0.shape.clone(),
            self.0.dtype,
            self.0.chunks.clone(),
            Body::Reduce {
                input: input.clone(),
                reducer: *reducer,
                axes: axes.clone(),
                keepdims: *keepdims,
                ddof: *ddof,
                split_every: n.min(1 << 16) as usize,
            },
            BTreeMap::new(),
        ))
    }

    /// Rewrites every leaf view of the program with `f` (which maps a view of the
    /// old shape to one of `shape`), giving `chunks`.
    fn reviewed(&self, shape: Vec<u64>, chunks: Chunks, f: impl Fn(&View) -> View) -> Array {
        let (mut program, inputs) = self.program();
        for node in &mut program.nodes {
            if let Node::Leaf { view, .. } = node {
                *view = f(view);
            }
        }
        program.shape = shape;
        Array::fused(program, chunks, inputs)
    }

    /// The axes permuted (`transpose`; `None` reverses them, as `.T`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a permutation that is not one.
    pub fn transpose(&self, perm: Option<&[i64]>) -> Result<Array> {
        let n = self.ndim();
        let perm: Vec<usize> = match perm {
            None => (0..n).rev().collect(),
            Some(p) => {
                let p: Vec<usize> = p
                    .iter()
                    .map(|&a| normalize_axis("transpose", a, n))
                    .collect::<Result<_>>()?;
                let mut sorted = p.clone();
                sorted.sort_unstable();
                if sorted != (0..n).collect::<Vec<_>>() {
                    return Err(Error::ArrayArgument {
                        op: "transpose".into(),
                        reason: format!("axes {p:?} are not a permutation of 0..{n}"),
                    });
                }
                p
            }
        };
        let shape = perm.iter().map(|&k| self.shape()[k]).collect();
        let chunks = perm.iter().map(|&k| self.chunks()[k].clone()).collect();
        Ok(self.reviewed(shape, chunks, |v| View {
            base: v.base.clone(),
            axes: perm.iter().map(|&k| v.axes[k]).collect(),
            fixed: v.fixed.clone(),
        }))
    }

    /// Basic indexing: one entry an axis (missing trailing entries take whole
    /// axes); `Index::NewAxis` adds an axis of length 1.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an index out of range, a zero step, or more
    /// indices than axes.
    pub fn index(&self, index: &[Index]) -> Result<Array> {
        let consumed = index
            .iter()
            .filter(|i| !matches!(i, Index::NewAxis))
            .count();
        if consumed > self.ndim() {
            return Err(Error::ArrayArgument {
                op: "index".into(),
                reason: format!(
                    "too many indices for an array of {} dimensions: {consumed} were given",
                    self.ndim()
                ),
            });
        }
        let mut full: Vec<Index> = index.to_vec();
        full.extend((consumed..self.ndim()).map(|_| Index::Slice(None, None, None)));
        // For each new axis: where it comes from.
        enum New {
            Axis { from: usize, start: i64, step: i64 },
            Added,
        }
        let mut new_axes = Vec::new();
        let mut fixed: Vec<(usize, u64)> = Vec::new();
        let mut shape = Vec::new();
        let mut chunks: Chunks = Vec::new();
        let mut axis = 0;
        for ix in &full {
            match *ix {
                Index::NewAxis => {
                    new_axes.push(New::Added);
                    shape.push(1);
                    chunks.push(vec![1]);
                }
                Index::Int(i) => {
                    let n = self.shape()[axis] as i64;
                    let j = if i < 0 { i + n } else { i };
                    if j < 0 || j >= n {
                        return Err(Error::ArrayArgument {
                            op: "index".into(),
                            reason: format!(
                                "index {i} is out of bounds for axis {axis} with size {n}"
                            ),
                        });
                    }
                    fixed.push((axis, j as u64));
                    axis += 1;
                }
                Index::Slice(start, stop, step) => {
                    let n = self.shape()[axis] as i64;
                    let (first, len, step) = slice_indices(start, stop, step, n)?;
                    shape.push(len);
                    chunks.push(slice_chunks(&self.chunks()[axis], first, len, step));
                    new_axes.push(New::Axis {
                        from: axis,
                        start: first,
                        step,
                    });
                    axis += 1;
                }
            }
        }
        Ok(self.reviewed(shape, chunks, |v| {
            let mut fixed_v = v.fixed.clone();
            for &(from, at) in &fixed {
                if let AxisMap::Axis { axis, start, step } = v.axes[from] {
                    fixed_v[axis] = Some((start + step * at as i64) as u64);
                }
            }
            let axes = new_axes
                .iter()
                .map(|n| match *n {
                    New::Added => AxisMap::Broadcast,
                    New::Axis { from, start, step } => match v.axes[from] {
                        AxisMap::Broadcast => AxisMap::Broadcast,
                        AxisMap::Axis {
                            axis,
                            start: s0,
                            step: st,
                        } => AxisMap::Axis {
                            axis,
                            start: s0 + st * start,
                            step: st * step,
                        },
                    },
                })
                .collect();
            View {
                base: v.base.clone(),
                axes,
                fixed: fixed_v,
            }
        }))
    }
}

impl Array {
    /// Axes `a` and `b` exchanged (numpy's `swapaxes`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range.
    pub fn swapaxes(&self, a: i64, b: i64) -> Result<Array> {
        let n = self.ndim();
        let (a, b) = (
            normalize_axis("swapaxes", a, n)?,
            normalize_axis("swapaxes", b, n)?,
        );
        let mut perm: Vec<i64> = (0..n as i64).collect();
        perm.swap(a, b);
        self.transpose(Some(&perm))
    }

    /// Axes `source` moved to positions `destination`, the others in order (numpy's
    /// `moveaxis`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for axes out of range, repeated, or lists of
    /// different lengths.
    pub fn moveaxis(&self, source: &[i64], destination: &[i64]) -> Result<Array> {
        let n = self.ndim();
        let norm = |list: &[i64]| -> Result<Vec<usize>> {
            let v: Vec<usize> = list
                .iter()
                .map(|&a| normalize_axis("moveaxis", a, n))
                .collect::<Result<_>>()?;
            let mut sorted = v.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != v.len() {
                return Err(Error::ArrayArgument {
                    op: "moveaxis".into(),
                    reason: format!("repeated axis in {list:?}"),
                });
            }
            Ok(v)
        };
        let (src, dst) = (norm(source)?, norm(destination)?);
        if src.len() != dst.len() {
            return Err(Error::ArrayArgument {
                op: "moveaxis".into(),
                reason: "source and destination must have the same number of elements".into(),
            });
        }
        let mut rest = (0..n).filter(|k| !src.contains(k));
        let mut perm = vec![0i64; n];
        let mut placed = vec![false; n];
        for (&s, &d) in src.iter().zip(&dst) {
            perm[d] = s as i64;
            placed[d] = true;
        }
        for (k, p) in perm.iter_mut().enumerate() {
            if !placed[k] {
                *p = rest.next().unwrap_or(0) as i64;
            }
        }
        self.transpose(Some(&perm))
    }

    /// New axes of length 1 at positions `axes` of the result (numpy's
    /// `expand_dims`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a position out of range or repeated.
    pub fn expand_dims(&self, axes: &[i64]) -> Result<Array> {
        let out = self.ndim() + axes.len();
        let mut at = Vec::new();
        for &a in axes {
            let k = normalize_axis("expand_dims", a, out)?;
            if at.contains(&k) {
                return Err(Error::ArrayArgument {
                    op: "expand_dims".into(),
                    reason: format!("repeated axis {a}"),
                });
            }
            at.push(k);
        }
        let index: Vec<Index> = (0..out)
            .map(|k| {
                if at.contains(&k) {
                    Index::NewAxis
                } else {
                    Index::Slice(None, None, None)
                }
            })
            .collect();
        self.index(&index)
    }

    /// Axes of length 1 removed: those in `axes`, or all (numpy's `squeeze`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range or not of length 1.
    pub fn squeeze(&self, axes: Option<&[i64]>) -> Result<Array> {
        let n = self.ndim();
        let drop: Vec<usize> = match axes {
            None => (0..n).filter(|&k| self.shape()[k] == 1).collect(),
            Some(list) => {
                let mut v = Vec::new();
                for &a in list {
                    let k = normalize_axis("squeeze", a, n)?;
                    if self.shape()[k] != 1 {
                        return Err(Error::ArrayArgument {
                            op: "squeeze".into(),
                            reason: format!(
                                "cannot select an axis to squeeze out which has size not \
                                 equal to one (axis {a} has {})",
                                self.shape()[k]
                            ),
                        });
                    }
                    v.push(k);
                }
                v
            }
        };
        let index: Vec<Index> = (0..n)
            .map(|k| {
                if drop.contains(&k) {
                    Index::Int(0)
                } else {
                    Index::Slice(None, None, None)
                }
            })
            .collect();
        self.index(&index)
    }

    /// The array broadcast to `shape` (numpy's `broadcast_to`): axes added in front,
    /// axes of length 1 stretched; new axes are one chunk.
    ///
    /// # Errors
    /// [`Error::Broadcast`] when the shapes do not broadcast to exactly `shape`.
    pub fn broadcast_to(&self, shape: &[u64]) -> Result<Array> {
        check_size("broadcast_to", shape, self.dtype())?;
        let target = broadcast_shapes("broadcast_to", self.shape(), shape)?;
        if target != shape {
            return Err(Error::Broadcast {
                op: "broadcast_to".into(),
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        let lead = shape.len() - self.ndim();
        let chunks: Chunks = (0..shape.len())
            .map(|k| {
                if k >= lead && self.shape()[k - lead] == shape[k] {
                    self.chunks()[k - lead].clone()
                } else {
                    vec![shape[k]]
                }
            })
            .collect();
        let (program, inputs) = self.program();
        let from = self.shape().to_vec();
        let nodes = program
            .nodes
            .into_iter()
            .map(|n| broadcast_node(n, 0, &from, shape))
            .collect();
        Ok(Array::fused(
            Program {
                shape: shape.to_vec(),
                nodes,
            },
            chunks,
            inputs,
        ))
    }
}

impl Array {
    /// `arrays` joined along `axis` (numpy's `concatenate`): the same shape off the
    /// axis, numpy's result type; the result's chunks are the parts' along the axis
    /// and their common refinement off it.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for no arrays, different ranks or shapes off the
    /// axis, or an axis out of range; as [`Array::astype`].
    pub fn concatenate(arrays: &[Array], axis: i64) -> Result<Array> {
        let Some(first) = arrays.first() else {
            return Err(Error::ArrayArgument {
                op: "concatenate".into(),
                reason: "need at least one array to concatenate".into(),
            });
        };
        let rank = first.ndim();
        if rank == 0 {
            return Err(Error::ArrayArgument {
                op: "concatenate".into(),
                reason: "zero-dimensional arrays cannot be concatenated".into(),
            });
        }
        let axis = normalize_axis("concatenate", axis, rank)?;
        for a in arrays {
            let same = a.ndim() == rank
                && (0..rank).all(|k| k == axis || a.shape()[k] == first.shape()[k]);
            if !same {
                return Err(Error::ArrayArgument {
                    op: "concatenate".into(),
                    reason: format!(
                        "all the input array dimensions except for the concatenation axis \
                         must match exactly: {} and {} along axis {axis}",
                        shape_text(first.shape()),
                        shape_text(a.shape())
                    ),
                });
            }
        }
        let operands: Vec<Operand> = arrays.iter().map(Array::operand).collect();
        let dtype = promote::result_type(&operands)?;
        // Off the axis, every part is cut alike.
        let mut off: Chunks = first.chunks().clone();
        for a in &arrays[1..] {
            for k in (0..rank).filter(|&k| k != axis) {
                off[k] = refine(&off[k], &a.chunks()[k]);
            }
        }
        let mut shape = first.shape().to_vec();
        shape[axis] = arrays.iter().map(|a| a.shape()[axis]).sum();
        check_size("concatenate", &shape, dtype)?;
        let mut parts = Vec::new();
        let mut offsets = Vec::new();
        let mut along = Vec::new();
        let mut at = 0;
        for a in arrays {
            let mut chunks = off.clone();
            chunks[axis] = a.chunks()[axis].clone();
            offsets.push(at);
            at += a.shape()[axis];
            if a.shape()[axis] > 0 {
                along.extend(a.chunks()[axis].iter().copied().filter(|&c| c > 0));
            }
            parts.push(a.astype(dtype)?.rechunk(chunks)?);
        }
        let mut chunks = off;
        chunks[axis] = if along.is_empty() { vec![0] } else { along };
        check_blocks(chunks.iter().map(|c| c.len() as u64), &shape)?;
        Ok(Array::new(
            shape,
            dtype,
            chunks,
            Body::Concat {
                parts,
                axis,
                offsets,
            },
            BTreeMap::new(),
        ))
    }

    /// The cumulative sum (`Reducer::Sum`) or product (`Reducer::Prod`) along `axis`,
    /// or along the flattened array when `None` (numpy's `cumsum`, `cumprod`); the
    /// dtype of numpy's (integers and booleans widen to 64 bits).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range; [`Error::ArrayType`] for
    /// complex arrays.
    pub fn scan(&self, reducer: Reducer, axis: Option<i64>) -> Result<Array> {
        let name = if reducer == Reducer::Prod {
            "cumprod"
        } else {
            "cumsum"
        };
        let source = match axis {
            Some(_) => self.clone(),
            None => self.ravel()?,
        };
        let axis = normalize_axis(name, axis.unwrap_or(0), source.ndim())?;
        if source.dtype().is_complex() {
            return Err(type_error(name, &[source.dtype()]));
        }
        let dtype = promote::sum_type(source.dtype());
        let input = source.astype(dtype)?;
        let (program, inputs) = input.program();
        let input = Array::fused(program, input.chunks().clone(), inputs);
        Ok(Array::new(
            input.shape().to_vec(),
            dtype,
            input.chunks().clone(),
            Body::Scan {
                input,
                axis,
                reducer,
            },
            BTreeMap::new(),
        ))
    }

    /// `arrays` joined along a new axis `axis` (numpy's `stack`).
    ///
    /// # Errors
    /// As [`Array::concatenate`]; arrays of different shapes.
    pub fn stack(arrays: &[Array], axis: i64) -> Result<Array> {
        let rank = arrays.first().map_or(0, Array::ndim);
        if arrays.iter().any(|a| a.shape() != arrays[0].shape()) {
            return Err(Error::ArrayArgument {
                op: "stack".into(),
                reason: "all input arrays must have the same shape".into(),
            });
        }
        let at = normalize_axis("stack", axis, rank + 1)? as i64;
        let expanded: Vec<Array> = arrays
            .iter()
            .map(|a| a.expand_dims(&[at]))
            .collect::<Result<_>>()?;
        Array::concatenate(&expanded, at)
    }

    /// The matrix product `self @ other` (numpy's `matmul` for 1-d and 2-d operands:
    /// a 1-d left operand is a row, a 1-d right one a column, and that axis goes).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for operands of other ranks or contracted lengths
    /// that differ; [`Error::ArrayType`] for complex or boolean operands.
    pub fn matmul(&self, other: &Array) -> Result<Array> {
        let (ra, rb) = (self.ndim(), other.ndim());
        if ra == 0 || rb == 0 || ra > 2 || rb > 2 {
            return Err(Error::ArrayArgument {
                op: "matmul".into(),
                reason: format!(
                    "operands of shapes {} and {}: matmul takes 1-d and 2-d arrays here (a \
                     scalar multiplies with *)",
                    shape_text(self.shape()),
                    shape_text(other.shape())
                ),
            });
        }
        let a = if ra == 1 {
            self.expand_dims(&[0])?
        } else {
            self.clone()
        };
        let b = if rb == 1 {
            other.expand_dims(&[1])?
        } else {
            other.clone()
        };
        let (m, k) = (a.shape()[0], a.shape()[1]);
        let (k2, n) = (b.shape()[0], b.shape()[1]);
        if k != k2 {
            return Err(Error::ArrayArgument {
                op: "matmul".into(),
                reason: format!(
                    "the contracted axes differ: {} has {k} columns, {} has {k2} rows",
                    shape_text(self.shape()),
                    shape_text(other.shape())
                ),
            });
        }
        let dtype = promote::result_type(&[self.operand(), other.operand()])?;
        check_size("matmul", &[m, n], dtype)?;
        if dtype.is_complex() || dtype == DType::Bool {
            return Err(type_error("matmul", &[self.dtype(), other.dtype()]));
        }
        // Integers multiply as int64, floats as themselves (float16 as float32).
        let compute = match dtype {
            DType::Float64 | DType::Float32 => dtype,
            DType::Float16 => DType::Float32,
            _ if dtype.is_integer() => DType::Int64,
            other => other,
        };
        // The contracted axis cut alike in both.
        let kc = refine(&a.chunks()[1], &b.chunks()[0]);
        let a = a
            .astype(compute)?
            .rechunk(vec![a.chunks()[0].clone(), kc.clone()])?;
        let b = b
            .astype(compute)?
            .rechunk(vec![kc, b.chunks()[1].clone()])?;
        let chunks = vec![a.chunks()[0].clone(), b.chunks()[1].clone()];
        let product = Array::new(
            vec![m, n],
            compute,
            chunks,
            Body::MatMul { a, b },
            BTreeMap::new(),
        );
        let product = if compute == dtype {
            product
        } else {
            product.astype(dtype)?
        };
        match (ra, rb) {
            (1, 1) => product.squeeze(Some(&[0, 1])),
            (1, _) => product.squeeze(Some(&[0])),
            (_, 1) => product.squeeze(Some(&[1])),
            _ => Ok(product),
        }
    }
}

/// One entry of a basic index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// An integer: the axis goes.
    Int(i64),
    /// `start:stop:step`, any part omitted.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `None`: a new axis of length 1.
    NewAxis,
}

/// Python's `slice.indices`: the first index, the length and the step.
fn slice_indices(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    n: i64,
) -> Result<(i64, u64, i64)> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(Error::ArrayArgument {
            op: "index".into(),
            reason: "slice step cannot be zero".into(),
        });
    }
    // In 128 bits: any i64 bound or step is a valid Python slice.
    let (n, st) = (i128::from(n), i128::from(step));
    let clamp = |v: Option<i64>, default: i128, lo: i128, hi: i128| match v {
        None => default,
        Some(v) if v < 0 => (i128::from(v) + n).max(lo),
        Some(v) => i128::from(v).min(hi),
    };
    let (first, last) = if st > 0 {
        (clamp(start, 0, 0, n), clamp(stop, n, 0, n))
    } else {
        (clamp(start, n - 1, -1, n - 1), clamp(stop, -1, -1, n - 1))
    };
    let len = if st > 0 {
        if last > first {
            (last - first + st - 1) / st
        } else {
            0
        }
    } else if first > last {
        (first - last - st - 1) / -st
    } else {
        0
    };
    // A slice of one element or none has no step to speak of; keeping 1 keeps the
    // views' products of steps small.
    let step = if len <= 1 { 1 } else { step };
    Ok((first.clamp(0, n.max(0)) as i64, len as u64, step))
}

/// The chunks of an axis sliced from `first` by `step`, `len` elements: each
/// element keeps the chunk it was in (Dask's rule), empty chunks dropped.
fn slice_chunks(chunks: &[u64], first: i64, len: u64, step: i64) -> Vec<u64> {
    if len == 0 {
        return vec![0];
    }
    // Counted a source chunk at a time: the selected indices are
    // `first + step * j` for `j` in `0..len`; how many land in `[lo, hi)` is a
    // division, not a walk over the elements.
    let last = first + step * (len as i64 - 1);
    let (lo_sel, hi_sel) = (first.min(last), first.max(last));
    let s = step.unsigned_abs() as i64;
    // Indices selected in [lo, hi), all congruent to `lo_sel` modulo `s`.
    let count = |lo: i64, hi: i64| -> u64 {
        let (lo, hi) = (lo.max(lo_sel), hi.min(hi_sel + 1));
        if lo >= hi {
            return 0;
        }
        let first_in = lo + (lo_sel - lo).rem_euclid(s);
        if first_in >= hi {
            0
        } else {
            ((hi - 1 - first_in) / s + 1) as u64
        }
    };
    let mut spans = Vec::with_capacity(chunks.len());
    let mut at = 0i64;
    for &c in chunks {
        spans.push(count(at, at + c as i64));
        at += c as i64;
    }
    if step < 0 {
        spans.reverse();
    }
    spans.retain(|&n| n > 0);
    spans
}

pub(crate) fn check_chunks(shape: &[u64], chunks: &Chunks) -> Result<()> {
    let ok = chunks.len() == shape.len()
        && chunks
            .iter()
            .zip(shape)
            .all(|(c, &n)| c.iter().sum::<u64>() == n && (n == 0 || c.iter().all(|&x| x > 0)));
    if ok {
        Ok(())
    } else {
        Err(Error::ArrayArgument {
            op: "rechunk".into(),
            reason: format!(
                "chunks {chunks:?} do not tile an array of shape {}",
                shape_text(shape)
            ),
        })
    }
}

/// Axis `a` (negative from the end) of an array of `ndim` axes.
/// The axes a reduction named `op` reduces, in order: `axes` normalized (all when
/// `None`).
///
/// # Errors
/// [`Error::ArrayArgument`] for an axis out of range or given twice.
pub(crate) fn reduced_axes(op: &str, axes: Option<&[i64]>, ndim: usize) -> Result<Vec<usize>> {
    let Some(list) = axes else {
        return Ok((0..ndim).collect());
    };
    let mut out = Vec::new();
    for &a in list {
        let k = normalize_axis(op, a, ndim)?;
        if out.contains(&k) {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: format!("axis {a} is given twice"),
            });
        }
        out.push(k);
    }
    out.sort_unstable();
    Ok(out)
}

pub(crate) fn normalize_axis(op: &str, a: i64, ndim: usize) -> Result<usize> {
    let n = ndim as i64;
    let k = if a < 0 { a + n } else { a };
    if k < 0 || k >= n {
        return Err(Error::ArrayArgument {
            op: op.into(),
            reason: format!("axis {a} is out of bounds for an array of dimension {ndim}"),
        });
    }
    Ok(k as usize)
}

/// The float dtype a float-only ufunc computes an operand of `dtype` in (numpy's
/// loop choice: the smallest float holding it, float64 for 32-bit and wider ints).
fn float_type(dtype: DType) -> DType {
    match dtype {
        DType::Float16 | DType::Float32 | DType::Float64 => dtype,
        DType::Bool | DType::Int8 | DType::UInt8 => DType::Float16,
        DType::Int16 | DType::UInt16 => DType::Float32,
        _ => DType::Float64,
    }
}

pub(crate) fn type_error(op: &str, dtypes: &[DType]) -> Error {
    let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
    Error::ArrayType {
        op: op.into(),
        reason: format!(
            "not supported for the input type{} {}",
            if names.len() > 1 { "s" } else { "" },
            names.join(" and ")
        ),
    }
}

/// The nodes with each repeated node kept once (its users pointing at the first),
/// the result last: an operand used twice (`x * x`, `where(m, z * z + c, z)` in a
/// loop) would otherwise be copied into the program at each use, and a program
/// built in a loop would grow exponentially.
fn dedupe(nodes: Vec<Node>) -> Vec<Node> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut remap = Vec::with_capacity(nodes.len());
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let node = node.map_operands(|i| remap[i]);
        // A node's JSON is its identity: kind, parameters and (remapped) operands.
        let key = serde_json::to_string(&node).unwrap_or_default();
        let at = *seen.entry(key).or_insert_with(|| {
            out.push(node);
            out.len() - 1
        });
        remap.push(at);
    }
    // The root is the last node given; keep it last.
    let root = remap.last().copied().unwrap_or(0);
    if root + 1 != out.len() {
        // The root repeats an earlier node (`x + 0 - 0` can't, but a cast of a node
        // to its own dtype is skipped, so `astype` of an operand may): move it to the
        // end by a no-op alias, a cast to its own dtype, which the kernel copies.
        let dtype = out[root].dtype();
        out.push(Node::Cast { arg: root, dtype });
    }
    out
}

/// Pushes a cast of node `at` to `dtype` unless it has it; returns the index.
fn cast_node(nodes: &mut Vec<Node>, at: usize, dtype: DType) -> usize {
    if nodes[at].dtype() == dtype {
        return at;
    }
    nodes.push(Node::Cast { arg: at, dtype });
    nodes.len() - 1
}

/// A node of a program of shape `from`, moved by `base` operands and broadcast to
/// `to` (leading axes added, axes of length 1 stretched).
fn broadcast_node(node: Node, base: usize, from: &[u64], to: &[u64]) -> Node {
    let lead = to.len() - from.len();
    match node {
        Node::Leaf {
            source,
            view,
            dtype,
        } => {
            let mut axes = vec![AxisMap::Broadcast; lead];
            for (k, map) in view.axes.iter().enumerate() {
                axes.push(if from[k] == 1 && to[lead + k] != 1 {
                    AxisMap::Broadcast
                } else {
                    *map
                });
            }
            // A stretched axis of a leaf is fixed at the index it was at.
            let mut fixed = view.fixed.clone();
            for (k, map) in view.axes.iter().enumerate() {
                if let AxisMap::Axis { axis, start, .. } = *map {
                    if from[k] == 1 && to[lead + k] != 1 {
                        fixed[axis] = Some(start as u64);
                    }
                }
            }
            Node::Leaf {
                source,
                view: View {
                    base: view.base,
                    axes,
                    fixed,
                },
                dtype,
            }
        }
        other => other.map_operands(|i| i + base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_pythons_rules() {
        assert_eq!(slice_indices(None, None, None, 10).unwrap(), (0, 10, 1));
        assert_eq!(
            slice_indices(None, None, Some(-1), 10).unwrap(),
            (9, 10, -1)
        );
        assert_eq!(
            slice_indices(Some(2), Some(-2), Some(3), 10).unwrap(),
            (2, 2, 3)
        );
        assert_eq!(slice_indices(Some(50), None, None, 10).unwrap(), (10, 0, 1));
        assert_eq!(
            slice_indices(Some(-50), Some(3), None, 10).unwrap(),
            (0, 3, 1)
        );
        assert_eq!(
            slice_indices(None, Some(-50), Some(-2), 10).unwrap(),
            (9, 5, -2)
        );
        assert!(slice_indices(None, None, Some(0), 10).is_err());
    }

    #[test]
    fn sliced_chunks_keep_each_element_in_its_chunk() {
        assert_eq!(slice_chunks(&[4, 4, 2], 0, 5, 2), vec![2, 2, 1]);
        assert_eq!(slice_chunks(&[4, 4, 2], 9, 10, -1), vec![2, 4, 4]);
        assert_eq!(slice_chunks(&[4, 4, 2], 5, 5, 1), vec![3, 2]);
        assert_eq!(refine(&[4, 4, 2], &[5, 5]), vec![4, 1, 3, 2]);
    }
}
