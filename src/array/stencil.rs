//! Neighbourhoods: `pad` with numpy's boundary modes, and the stencils built on it
//! (`diff`, `gradient`, numpy's 1-d `convolve`/`correlate`, and scipy.ndimage's
//! n-d `convolve`/`correlate` with a small kernel).
//!
//! A stencil is a sum of shifted views: `out[i] = sum_j w[j] * padded[i + j]`, each
//! term a slice of the padded array, so the whole sum is one fused pass over it.
//! Padding is a concatenation of the array with views of itself (reversed slices
//! for the reflections, slices for the wrap, a broadcast edge, a constant), so the
//! padded array is the one thing stored, once; the overlap between blocks that
//! Dask's `map_overlap` copies comes from the views reading across block edges.

use super::graph::{normalize_axis, type_error, Array, Chunks, Index};
use super::kernel::ops::BinaryOp;
use super::kernel::ops::UnaryOp;
use super::program::Scalar;
use super::promote::{self, Operand};
use crate::error::{Error, Result};
use crate::grid::tuple_text as shape_text;
use crate::storage::array::DType;

/// Most terms a stencil may sum (one a kernel element): each is a node of the fused
/// program, so a large kernel belongs to a matrix product or an FFT, not here.
pub const MAX_STENCIL_TERMS: u64 = 1024;

/// How values beyond an edge are made up (numpy's `pad` modes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadMode {
    /// A constant (`k k | a b c d | k k`).
    Constant(Scalar),
    /// The edge value repeated (`a a | a b c d | d d`; Dask's `nearest`).
    Edge,
    /// Reflected about the edge element (`c b | a b c d | c b`; scipy's `mirror`).
    Reflect,
    /// Reflected with the edge element repeated (`b a | a b c d | d c`; Dask's and
    /// scipy's `reflect`).
    Symmetric,
    /// The other end (`c d | a b c d | a b`; Dask's `periodic`).
    Wrap,
}

impl PadMode {
    /// A mode by numpy's name (`constant` takes `value`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for another name.
    pub fn numpy(name: &str, value: Scalar) -> Result<PadMode> {
        Ok(match name {
            "constant" => PadMode::Constant(value),
            "edge" => PadMode::Edge,
            "reflect" => PadMode::Reflect,
            "symmetric" => PadMode::Symmetric,
            "wrap" => PadMode::Wrap,
            other => {
                return Err(bad_mode(
                    "pad",
                    other,
                    "'constant', 'edge', 'reflect', 'symmetric' or 'wrap'",
                ))
            }
        })
    }

    /// A mode by scipy.ndimage's name (`constant` takes `cval`), Dask's
    /// `map_overlap` boundary names accepted too.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for another name.
    pub fn ndimage(name: &str, cval: Scalar) -> Result<PadMode> {
        Ok(match name {
            "constant" | "grid-constant" => PadMode::Constant(cval),
            "nearest" => PadMode::Edge,
            "mirror" => PadMode::Reflect,
            "reflect" | "grid-mirror" => PadMode::Symmetric,
            "wrap" | "grid-wrap" | "periodic" => PadMode::Wrap,
            other => {
                return Err(bad_mode(
                    "convolve",
                    other,
                    "'reflect', 'constant', 'nearest', 'mirror' or 'wrap'",
                ))
            }
        })
    }
}

fn bad_mode(op: &str, name: &str, known: &str) -> Error {
    Error::ArrayArgument {
        op: op.into(),
        reason: format!("mode {name:?} is not one of {known}"),
    }
}

/// A stencil's kernel: numbers given in the expression, or a (small) array.
#[derive(Debug, Clone)]
pub enum Weights {
    /// Values in C order, of `shape`, each of `dtype`.
    Literal {
        /// The kernel's shape.
        shape: Vec<u64>,
        /// Its values.
        values: Vec<Scalar>,
        /// Their dtype (numpy's for the list).
        dtype: DType,
    },
    /// An array.
    Array(Array),
}

impl Weights {
    fn shape(&self) -> &[u64] {
        match self {
            Weights::Literal { shape, .. } => shape,
            Weights::Array(a) => a.shape(),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            Weights::Literal { dtype, .. } => *dtype,
            Weights::Array(a) => a.dtype(),
        }
    }

    /// The weight at `index`, as a zero-dimensional array of `dtype`.
    fn at(&self, index: &[u64], dtype: DType) -> Result<Array> {
        match self {
            Weights::Literal { shape, values, .. } => {
                let flat = index.iter().zip(shape).fold(0u64, |a, (i, n)| a * n + i);
                Ok(Array::scalar(values[flat as usize], dtype, None))
            }
            Weights::Array(a) => {
                let idx: Vec<Index> = index.iter().map(|&i| Index::Int(i as i64)).collect();
                a.index(&idx)?.astype(dtype)
            }
        }
    }
}

/// The slice `start..start + len` of `axis`, other axes whole.
/// How many pieces (runs of the axis, forward or reversed) one side of a periodic
/// pad may take: a pad many times its axis' length is refused past this.
const MAX_PAD_PIECES: usize = 256;

fn too_wide(width: u64, axis: usize, n: u64) -> Error {
    Error::ArrayArgument {
        op: "pad".into(),
        reason: format!(
            "a pad of {width} along axis {axis} of length {n} would repeat the axis more \
             than {MAX_PAD_PIECES} times"
        ),
    }
}

/// The runs of axis indices (start, length, step ±1) that padded positions
/// `lo..hi` (relative to the axis' start, of length `n` > 1) take in a periodic
/// mode: `wrap` repeats the axis, `reflect` mirrors it without repeating its edge
/// (period 2n - 2), `symmetric` with it (period 2n).
fn periodic_runs(mode: PadMode, n: i64, lo: i64, hi: i64) -> Vec<(i64, i64, i64)> {
    let mut runs = Vec::new();
    let mut p = lo;
    while p < hi && runs.len() <= MAX_PAD_PIECES {
        let (j, step, room) = match mode {
            PadMode::Reflect => {
                let phase = p.rem_euclid(2 * n - 2);
                if phase < n - 1 {
                    (phase, 1, n - 1 - phase)
                } else {
                    let j = 2 * n - 2 - phase;
                    (j, -1, j)
                }
            }
            PadMode::Symmetric => {
                let phase = p.rem_euclid(2 * n);
                if phase < n {
                    (phase, 1, n - phase)
                } else {
                    let j = 2 * n - 1 - phase;
                    (j, -1, j + 1)
                }
            }
            _ => {
                let j = p.rem_euclid(n);
                (j, 1, n - j)
            }
        };
        let len = room.min(hi - p);
        runs.push((j, len, step));
        p += len;
    }
    runs
}

fn slab(a: &Array, axis: usize, start: i64, stop: Option<i64>, step: i64) -> Result<Array> {
    let mut index = vec![Index::Slice(None, None, None); a.ndim()];
    index[axis] = Index::Slice(Some(start), stop, Some(step));
    a.index(&index)
}

impl Array {
    /// The array padded by `widths` (before, after) along each axis (numpy's `pad`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for widths of another rank, a non-constant pad of
    /// an empty axis, or a periodic pad more than 256 times its axis' length.
    pub fn pad(&self, widths: &[(u64, u64)], mode: PadMode) -> Result<Array> {
        if widths.len() != self.ndim() {
            return Err(Error::ArrayArgument {
                op: "pad".into(),
                reason: format!(
                    "{} pad widths for an array of {} dimensions",
                    widths.len(),
                    self.ndim()
                ),
            });
        }
        let mut out = self.clone();
        for (axis, &(before, after)) in widths.iter().enumerate() {
            if before == 0 && after == 0 {
                continue;
            }
            out = out.pad_axis(axis, before, after, mode)?;
        }
        Ok(out)
    }

    fn pad_axis(&self, axis: usize, before: u64, after: u64, mode: PadMode) -> Result<Array> {
        let n = self.shape()[axis];
        if n == 0 && !matches!(mode, PadMode::Constant(_)) {
            return Err(Error::ArrayArgument {
                op: "pad".into(),
                reason: format!(
                    "can't extend empty axis {axis} using modes other than 'constant' or 'empty'"
                ),
            });
        }
        let ni = n as i64;
        // numpy pads a length-1 axis by its edge whatever the mode.
        let mode = match mode {
            PadMode::Reflect | PadMode::Symmetric | PadMode::Wrap if n == 1 => PadMode::Edge,
            m => m,
        };
        let side = |width: u64, first: bool| -> Result<Option<Array>> {
            if width == 0 {
                return Ok(None);
            }
            let mut shape = self.shape().to_vec();
            shape[axis] = width;
            let part = match mode {
                PadMode::Constant(value) => {
                    let mut chunks = self.chunks().clone();
                    chunks[axis] = vec![width];
                    Array::full(&shape, chunks, value, self.dtype())?
                }
                PadMode::Edge => {
                    let edge = if first {
                        slab(self, axis, 0, Some(1), 1)?
                    } else {
                        slab(self, axis, ni - 1, None, 1)?
                    };
                    edge.broadcast_to(&shape)?
                }
                PadMode::Reflect | PadMode::Symmetric | PadMode::Wrap => {
                    // Positions relative to the axis' start, mapped back into it
                    // periodically as numpy does for widths of any size.
                    let w = i64::try_from(width).map_err(|_| too_wide(width, axis, n))?;
                    let (lo, hi) = if first { (-w, 0) } else { (ni, ni + w) };
                    let runs = periodic_runs(mode, ni, lo, hi);
                    if runs.len() > MAX_PAD_PIECES {
                        return Err(too_wide(width, axis, n));
                    }
                    let parts = runs
                        .into_iter()
                        .map(|(j, len, step)| {
                            let stop = j + step * len;
                            slab(self, axis, j, (stop >= 0).then_some(stop), step)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    if parts.len() == 1 {
                        parts.into_iter().next().unwrap_or_else(|| self.clone())
                    } else {
                        Array::concatenate(&parts, axis as i64)?
                    }
                }
            };
            Ok(Some(part))
        };
        let parts: Vec<Array> = [side(before, true)?, Some(self.clone()), side(after, false)?]
            .into_iter()
            .flatten()
            .collect();
        Array::concatenate(&parts, axis as i64)
    }

    /// The `n`-th discrete difference along `axis` (numpy's `diff`; booleans give
    /// `!=` as numpy's does).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a zero-dimensional array or an axis out of range.
    pub fn diff(&self, n: u64, axis: i64) -> Result<Array> {
        if self.ndim() == 0 {
            return Err(Error::ArrayArgument {
                op: "diff".into(),
                reason: "diff requires input that is at least one dimensional".into(),
            });
        }
        let axis = normalize_axis("diff", axis, self.ndim())?;
        let mut out = self.clone();
        for _ in 0..n {
            let len = out.shape()[axis] as i64;
            if len == 0 {
                break;
            }
            let hi = slab(&out, axis, 1, None, 1)?;
            let lo = slab(&out, axis, 0, Some(len - 1), 1)?;
            let op = if out.dtype() == DType::Bool {
                BinaryOp::NotEqual
            } else {
                BinaryOp::Subtract
            };
            out = hi.binary(op, &lo)?;
        }
        Ok(out)
    }

    /// The gradient along `axis` with spacing `dx` (numpy's `gradient`): central
    /// differences inside, one-sided differences of `edge_order` 1 or 2 at the ends;
    /// integers give float64.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis too short for the edge order, or an edge
    /// order other than 1 and 2; [`Error::ArrayType`] for booleans.
    pub fn gradient(&self, axis: i64, dx: f64, edge_order: u8) -> Result<Array> {
        if self.ndim() == 0 {
            return Err(Error::ArrayArgument {
                op: "gradient".into(),
                reason: "gradient needs an array of at least one dimension".into(),
            });
        }
        let axis = normalize_axis("gradient", axis, self.ndim())?;
        let n = self.shape()[axis] as i64;
        if !(1..=2).contains(&edge_order) {
            return Err(Error::ArrayArgument {
                op: "gradient".into(),
                reason: format!("edge_order must be 1 or 2, not {edge_order}"),
            });
        }
        if n < i64::from(edge_order) + 1 {
            return Err(Error::ArrayArgument {
                op: "gradient".into(),
                reason: format!(
                    "shape {} is too small along axis {axis} to calculate a numerical \
                     gradient: at least (edge_order + 1) = {} elements are required",
                    shape_text(self.shape()),
                    edge_order + 1
                ),
            });
        }
        let f = match self.dtype() {
            DType::Bool => return Err(type_error("gradient", &[DType::Bool])),
            d if d.is_integer() => self.astype(DType::Float64)?,
            _ => self.clone(),
        };
        let at = |start: i64, stop: i64| slab(&f, axis, start, Some(stop), 1);
        let num =
            |x: f64| Array::scalar(Scalar::Float(x), DType::Float64, Some(Operand::PyFloat(x)));
        let sub = |a: &Array, b: &Array| a.binary(BinaryOp::Subtract, b);
        let add = |a: &Array, b: &Array| a.binary(BinaryOp::Add, b);
        let mul = |a: &Array, x: f64| a.binary(BinaryOp::Multiply, &num(x));
        let div = |a: &Array, x: f64| a.binary(BinaryOp::TrueDivide, &num(x));
        // numpy's formulas, in its order of operations, so that the bits agree.
        let interior = div(&sub(&at(2, n)?, &at(0, n - 2)?)?, 2.0 * dx)?;
        let (first, last) = if edge_order == 1 {
            (
                div(&sub(&at(1, 2)?, &at(0, 1)?)?, dx)?,
                div(&sub(&at(n - 1, n)?, &at(n - 2, n - 1)?)?, dx)?,
            )
        } else {
            let three = |(a, b, c): (f64, f64, f64), s: i64| -> Result<Array> {
                let terms = add(&mul(&at(s, s + 1)?, a)?, &mul(&at(s + 1, s + 2)?, b)?)?;
                add(&terms, &mul(&at(s + 2, s + 3)?, c)?)
            };
            (
                three((-1.5 / dx, 2.0 / dx, -0.5 / dx), 0)?,
                three((0.5 / dx, -2.0 / dx, 1.5 / dx), n - 3)?,
            )
        };
        let out = Array::concatenate(&[first, interior, last], axis as i64)?;
        // The pieces are the array's own chunks again.
        out.rechunk(f.chunks().clone())
    }

    /// scipy.ndimage's `correlate` (or with `flip`, its `convolve`): for each
    /// element, the kernel's weights times its neighbours, the array padded by
    /// `mode` beyond the edges; computed in float64 (complex128 for complex values)
    /// and cast back to the array's dtype, as scipy does.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a kernel of another rank, an empty kernel, one
    /// of more than [`MAX_STENCIL_TERMS`] weights, or an origin outside it.
    pub fn ndimage_filter(
        &self,
        weights: &Weights,
        mode: PadMode,
        origin: &[i64],
        flip: bool,
    ) -> Result<Array> {
        let op = if flip { "convolve" } else { "correlate" };
        let ks = weights.shape().to_vec();
        if ks.len() != self.ndim() {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: format!(
                    "the weights have shape {}, but the array has {} dimensions: they must \
                     have as many",
                    shape_text(&ks),
                    self.ndim()
                ),
            });
        }
        check_terms(op, &ks)?;
        let origin: Vec<i64> = match origin.len() {
            0 => vec![0; ks.len()],
            1 => vec![origin[0]; ks.len()],
            _ if origin.len() == ks.len() => origin.to_vec(),
            _ => {
                return Err(Error::ArrayArgument {
                    op: op.into(),
                    reason: format!("{} origins for {} dimensions", origin.len(), ks.len()),
                })
            }
        };
        // The kernel element at the output's position, along each axis.
        let mut centre = Vec::new();
        for (&s, &o) in ks.iter().zip(&origin) {
            let s = s as i64;
            let half = s / 2;
            if o < -half || o > s - 1 - half {
                return Err(Error::ArrayArgument {
                    op: op.into(),
                    reason: format!("invalid origin {o} for a kernel of {s}"),
                });
            }
            // Flipping the kernel mirrors the origin, one further for an even size.
            let o = if flip { -o - i64::from(s % 2 == 0) } else { o };
            centre.push((half + o) as u64);
        }
        let compute = if self.dtype().is_complex() || weights.dtype().is_complex() {
            DType::Complex128
        } else {
            DType::Float64
        };
        let widths: Vec<(u64, u64)> = ks
            .iter()
            .zip(&centre)
            .map(|(&s, &c)| (c, s - 1 - c))
            .collect();
        let padded = self.astype(compute)?.pad(&widths, mode)?;
        let zero = vec![0; ks.len()];
        let sum = stencil_sum(&padded, &zero, self.shape(), self.chunks(), &ks, |j| {
            // A convolution reads the kernel backwards.
            let idx: Vec<u64> = if flip {
                j.iter().zip(&ks).map(|(&i, &s)| s - 1 - i).collect()
            } else {
                j.to_vec()
            };
            // A correlation conjugates complex weights, as scipy's does.
            let w = weights.at(&idx, compute)?;
            if !flip && compute.is_complex() {
                w.unary(UnaryOp::Conjugate)
            } else {
                Ok(w)
            }
        })?;
        let out_dtype = if self.dtype().is_complex() || !compute.is_complex() {
            self.dtype()
        } else {
            compute
        };
        sum.astype(out_dtype)
    }

    /// numpy's 1-d `convolve` (or with `flip` false, `correlate`) of the array and
    /// `v`, in numpy's result dtype: `mode` `full`, `same` or `valid`.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for operands that are not 1-d or empty, a kernel of
    /// more than [`MAX_STENCIL_TERMS`] weights, or another mode.
    pub fn convolve_1d(&self, v: &Weights, mode: &str, flip: bool) -> Result<Array> {
        let op = if flip { "convolve" } else { "correlate" };
        if self.ndim() != 1 || v.shape().len() != 1 {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: format!(
                    "numpy's {op} takes two 1-d arrays, not {} and {} (scipy.ndimage.{op} \
                     filters n-d arrays)",
                    shape_text(self.shape()),
                    shape_text(v.shape())
                ),
            });
        }
        let (n, m) = (self.shape()[0], v.shape()[0]);
        if n == 0 || m == 0 {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: "an operand is empty".into(),
            });
        }
        check_terms(op, &[m])?;
        let dtype = promote::promote_types(self.dtype(), v.dtype());
        if n < m {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: format!(
                    "the second operand ({m} elements) is longer than the first ({n}): not \
                     supported here (numpy swaps them)"
                ),
            });
        }
        // The result is the window [lo, lo + len) of the full correlation of the array
        // padded with m - 1 zeros each side (numpy's `same` centres as its C loop).
        let (lo, len) = match mode {
            "full" => (0, n + m - 1),
            "same" => (m - 1 - m / 2, n),
            "valid" => (m - 1, n - m + 1),
            other => return Err(bad_mode(op, other, "'full', 'same' or 'valid'")),
        };
        let padded = self
            .astype(dtype)?
            .pad(&[(m - 1, m - 1)], PadMode::Constant(Scalar::Int(0)))?;
        let chunk = self.chunks()[0].iter().copied().max().unwrap_or(1).max(1);
        let chunks = super::graph::regular_chunks(&[len], &[chunk])?;
        // convolve: full[k] = sum_j v[j] a[k - j] = sum_j v[m-1-j] padded[k + j];
        // correlate: sum_j conj(v[j]) padded[k + j].
        stencil_sum(&padded, &[lo], &[len], &chunks, &[m], |j| {
            if flip {
                v.at(&[m - 1 - j[0]], dtype)
            } else if dtype.is_complex() {
                v.at(&[j[0]], dtype)?.unary(UnaryOp::Conjugate)
            } else {
                v.at(&[j[0]], dtype)
            }
        })
    }
}

fn check_terms(op: &str, ks: &[u64]) -> Result<()> {
    let terms = ks.iter().try_fold(1u64, |a, &k| a.checked_mul(k));
    match terms {
        Some(0) => Err(Error::ArrayArgument {
            op: op.into(),
            reason: "the kernel is empty".into(),
        }),
        Some(t) if t <= MAX_STENCIL_TERMS => Ok(()),
        _ => Err(Error::ArrayArgument {
            op: op.into(),
            reason: format!(
                "a kernel of shape {} has more than {MAX_STENCIL_TERMS} weights; a stencil sums \
                 one term a weight",
                shape_text(ks)
            ),
        }),
    }
}

/// `sum_j weight(j) * padded[lo + j : lo + j + shape]` over the kernel indices `j`
/// of shape `ks` in C order (scipy's order of terms), in `chunks`.
fn stencil_sum(
    padded: &Array,
    lo: &[u64],
    shape: &[u64],
    chunks: &Chunks,
    ks: &[u64],
    weight: impl Fn(&[u64]) -> Result<Array>,
) -> Result<Array> {
    let mut sum: Option<Array> = None;
    for j in crate::grid::indices_c_order(ks) {
        let index: Vec<Index> = j
            .iter()
            .zip(lo)
            .zip(shape)
            .map(|((&s, &l), &n)| {
                let start = (l + s) as i64;
                Index::Slice(Some(start), Some(start + n as i64), Some(1))
            })
            .collect();
        // Every term in the result's chunks, so that the sum is not cut finer.
        let term = padded
            .index(&index)?
            .rechunk(chunks.clone())?
            .binary(BinaryOp::Multiply, &weight(&j)?)?;
        sum = Some(match sum {
            None => term,
            Some(s) => s.binary(BinaryOp::Add, &term)?,
        });
    }
    sum.ok_or_else(|| Error::bug("a stencil of no terms", ""))
}
