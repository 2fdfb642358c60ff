//! Boolean-mask selection (`x[mask]`): an array whose length along one axis only
//! the mask's values tell.
//!
//! A plan fixes every block's shape before it runs, so a [`Selection`] is not an
//! [`Array`]: it is the array indexed and the mask, kept apart. What does not
//! need the selected elements laid out is rewritten on the whole array under the
//! mask, and stays a plan of known shapes:
//! - elementwise work on the selection is the same work on the whole array
//!   (`sqrt(x[m]) == sqrt(x)[m]`), the mask kept;
//! - a reduction over axes the mask does not cover reduces the whole array;
//! - a reduction over the unknown axis reduces the whole array with the unselected
//!   elements replaced by the reduction's identity (`x[m].sum() ==
//!   where(m, x, 0).sum()`); means divide by the count of selected elements, and
//!   variances take a second pass about that mean.
//!
//! - a basic index along the known axes (`x[m][:, 0]`) indexes the whole array.
//!
//! Only computing or writing the selection lays its elements out: each slab of
//! whole rows keeps its selected elements in C order (`array_block`'s compress).
//! Computed, the slabs are joined in memory
//! ([`crate::convert::compute_selected`]); written, they are counted first and
//! then placed side by side in a staged file ([`crate::convert::write_selected`]).

use super::graph::{reduced_axes, Array, Chunks};
use super::kernel::ops::{BinaryOp, UnaryOp};
use super::kernel::reduce::Reducer;
use super::program::Scalar;
use super::promote::{int_range, Operand};
use crate::error::{Error, Result};
use crate::storage::array::DType;

/// `x[mask]`: the selected elements of `values`, whose axes `axis..axis +
/// mask.ndim()` the mask covers and become one axis of unknown length.
#[derive(Debug, Clone)]
pub struct Selection {
    values: Array,
    mask: Array,
    axis: usize,
}

/// What reducing a selection gives.
#[derive(Debug, Clone)]
pub enum Reduced {
    /// An array: the unknown axis was reduced.
    Array(Array),
    /// Still a selection: only known axes were reduced.
    Selection(Selection),
}

impl Selection {
    /// The elements of `values` that `mask` selects over the axes from `axis` on.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a mask that is not boolean, has no axes, or
    /// does not match the axes it covers (numpy's message).
    pub fn new(values: Array, mask: Array, axis: usize) -> Result<Selection> {
        if mask.dtype() != DType::Bool {
            return Err(Error::bug("a selection by a mask that is not boolean", ""));
        }
        if mask.ndim() == 0 {
            return Err(Error::ArrayArgument {
                op: "index".into(),
                reason: "a boolean scalar as an index (x[True]) is not supported".into(),
            });
        }
        let end = axis + mask.ndim();
        if end > values.ndim() {
            return Err(Error::ArrayArgument {
                op: "index".into(),
                reason: format!(
                    "too many indices for array: array is {}-dimensional, but {} were indexed",
                    values.ndim(),
                    end
                ),
            });
        }
        for (k, (&n, &m)) in values.shape()[axis..end]
            .iter()
            .zip(mask.shape())
            .enumerate()
        {
            if n != m {
                return Err(Error::ArrayArgument {
                    op: "index".into(),
                    reason: format!(
                        "boolean index did not match indexed array along axis {}; size of axis \
                         is {n} but size of corresponding boolean axis is {m}",
                        axis + k
                    ),
                });
            }
        }
        Ok(Selection { values, mask, axis })
    }

    /// The array the elements are selected from.
    pub fn values(&self) -> &Array {
        &self.values
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        self.values.dtype()
    }

    /// The position of the axis of unknown length.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.values.ndim() + 1 - self.mask.ndim()
    }

    /// The shape, with `None` for the axis of unknown length.
    pub fn shape(&self) -> Vec<Option<u64>> {
        let s = self.values.shape();
        let end = self.axis + self.mask.ndim();
        s[..self.axis]
            .iter()
            .map(|&n| Some(n))
            .chain(std::iter::once(None))
            .chain(s[end..].iter().map(|&n| Some(n)))
            .collect()
    }

    /// The shape as Dask prints it: `(nan, 5)`.
    pub fn shape_text(&self) -> String {
        let parts: Vec<String> = self
            .shape()
            .iter()
            .map(|n| n.map_or("nan".to_string(), |n| n.to_string()))
            .collect();
        match parts.as_slice() {
            [one] => format!("({one},)"),
            _ => format!("({})", parts.join(", ")),
        }
    }

    /// The chunks, with `None` for the unknown lengths along the masked axis (one a
    /// block of the mask's first axis), as Dask gives them.
    pub fn chunks(&self) -> Vec<Vec<Option<u64>>> {
        let c = self.values.chunks();
        let end = self.axis + self.mask.ndim();
        let known = |axes: &[Vec<u64>]| -> Vec<Vec<Option<u64>>> {
            axes.iter()
                .map(|a| a.iter().map(|&n| Some(n)).collect())
                .collect()
        };
        let mut out = known(&c[..self.axis]);
        out.push(vec![None; self.mask.chunks()[0].len()]);
        out.extend(known(&c[end..]));
        out
    }

    /// The elements each selected position of the mask selects (the product of
    /// the known axes).
    pub fn per_position(&self) -> u64 {
        let end = self.axis + self.mask.ndim();
        let s = self.values.shape();
        s[..self.axis].iter().chain(&s[end..]).product()
    }

    /// The result's shape once the unknown length is known.
    pub fn shape_for(&self, length: u64) -> Vec<u64> {
        self.shape()
            .into_iter()
            .map(|d| d.unwrap_or(length))
            .collect()
    }

    /// How many positions the mask selects (0-d, int64): the unknown length.
    ///
    /// # Errors
    /// The arrays' errors.
    pub fn mask_count(&self) -> Result<Array> {
        self.mask
            .astype(DType::Int64)?
            .reduce(Reducer::Sum, None, false, 0.0)
    }

    /// Whether `other` selects with the same mask the same positions: the same
    /// mask, or one computed the same way (`x[x > 0] * y[x > 0]`).
    ///
    /// Their values may differ along the axes after the selected one, where they
    /// broadcast (`x[m] - x[m].mean(axis=1, keepdims=True)`).
    pub fn same_mask(&self, other: &Selection) -> bool {
        let end = self.axis + self.mask.ndim();
        self.axis == other.axis
            && self.values.ndim() == other.values.ndim()
            && self.values.shape()[..end] == other.values.shape()[..end]
            && (self.mask.expr().id == other.mask.expr().id
                || self.mask.program().0 == other.mask.program().0)
    }

    /// The same selection of other values, of the same shape up to the axes after
    /// the selected one.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] when `values` has another shape where the mask
    /// applies or before.
    pub fn with_values(&self, values: Array) -> Result<Selection> {
        let end = self.axis + self.mask.ndim();
        let kept = values.ndim() == self.values.ndim()
            && values.shape()[..end] == self.values.shape()[..end];
        if !kept {
            return Err(Error::ArrayArgument {
                op: "index".into(),
                reason: format!(
                    "an operand would change the shape under the mask, from {} to {}; an \
                     array combined with a boolean selection may only broadcast over the \
                     axes after the selected one",
                    crate::grid::tuple_text(self.values.shape()),
                    crate::grid::tuple_text(values.shape())
                ),
            });
        }
        Ok(Selection {
            values,
            mask: self.mask.clone(),
            axis: self.axis,
        })
    }

    /// The same mask over `values`, the selected axes from `axis` on (the array
    /// indexed along its other axes).
    ///
    /// # Errors
    /// As [`Selection::new`].
    pub fn reindexed(&self, values: Array, axis: usize) -> Result<Selection> {
        Selection::new(values, self.mask.clone(), axis)
    }

    /// How many trailing axes an operand combined with the selection may have: it
    /// broadcasts against the values only over the axes after the selected one.
    pub fn trailing_axes(&self) -> usize {
        self.values.ndim() - self.axis - self.mask.ndim()
    }

    /// The mask broadcast to the values' shape.
    ///
    /// # Errors
    /// As [`Array::broadcast_to`].
    pub fn full_mask(&self) -> Result<Array> {
        let trailing: Vec<i64> = (0..self.trailing_axes())
            .map(|k| (self.mask.ndim() + k) as i64)
            .collect();
        self.mask
            .expand_dims(&trailing)?
            .broadcast_to(self.values.shape())
    }

    /// The blocks the selection is laid out in: slabs of whole rows of the values
    /// (so that each slab's selected elements, in C order, follow the previous
    /// slab's), each of about the values' largest block and at most `most`
    /// elements (but one row at least).
    pub fn slabs(&self, most: u64) -> Chunks {
        let shape = self.values.shape();
        let block: u64 = self
            .values
            .chunks()
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(1).max(1))
            .product::<u64>()
            .min(most.max(1));
        let row: u64 = shape[1..].iter().product::<u64>().max(1);
        let rows = (block / row).max(1);
        let mut chunks: Chunks = shape.iter().map(|&n| vec![n]).collect();
        chunks[0] = super::graph::regular_chunks(&shape[..1], &[rows.min(shape[0]).max(1)])
            .map(|mut c| c.remove(0))
            .unwrap_or_else(|_| vec![shape[0]]);
        chunks
    }

    /// The reduction `reducer` over `axes` of the selection (all when `None`).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range or repeated, or an index
    /// reduction (`argmin`) over the unknown axis; the arrays' errors.
    pub fn reduce(
        &self,
        reducer: Reducer,
        axes: Option<&[i64]>,
        keepdims: bool,
        ddof: f64,
    ) -> Result<Reduced> {
        let picked = reduced_axes(&reducer.name(), axes, self.ndim())?;
        let k = self.mask.ndim();
        // The values' axes of each of the selection's.
        let to_values = |j: usize| -> Vec<i64> {
            if j < self.axis {
                vec![j as i64]
            } else if j == self.axis {
                (self.axis..self.axis + k).map(|a| a as i64).collect()
            } else {
                vec![(j + k - 1) as i64]
            }
        };
        let mapped: Vec<i64> = picked.iter().flat_map(|&j| to_values(j)).collect();
        if !picked.contains(&self.axis) {
            let values = self.values.reduce(reducer, Some(&mapped), keepdims, ddof)?;
            let before = picked.iter().filter(|&&j| j < self.axis).count();
            let axis = if keepdims {
                self.axis
            } else {
                self.axis - before
            };
            return Ok(Reduced::Selection(Selection {
                values,
                mask: self.mask.clone(),
                axis,
            }));
        }
        let reduced = self.reduce_unknown(reducer, &mapped, ddof)?;
        let out = if keepdims {
            let at: Vec<i64> = picked.iter().map(|&j| j as i64).collect();
            reduced.expand_dims(&at)?
        } else {
            reduced
        };
        Ok(Reduced::Array(out))
    }

    /// A reduction over the values' `axes`, which include the masked ones.
    fn reduce_unknown(&self, reducer: Reducer, axes: &[i64], ddof: f64) -> Result<Array> {
        use Reducer as R;
        let y = &self.values;
        let mask = self.full_mask()?;
        let dtype = y.dtype();
        let fill = |v: Scalar, weak: Operand| -> Result<Array> {
            Array::select(&mask, y, &Array::scalar(v, dtype, Some(weak)))
        };
        let int = |v: i128| fill(Scalar::Int(v as i64), Operand::PyInt(v));
        let bound = |top: bool| -> Result<Array> {
            if dtype == DType::Bool {
                fill(Scalar::Bool(top), Operand::PyBool)
            } else if let Some(range) = int_range(dtype) {
                let v = if top { *range.end() } else { *range.start() };
                fill(Scalar::Int(v as i64), Operand::PyInt(v))
            } else {
                let v = if top {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                };
                fill(Scalar::Float(v), Operand::PyFloat(v))
            }
        };
        let sum = |a: &Array, r: Reducer, keep: bool| a.reduce(r, Some(axes), keep, 0.0);
        Ok(match reducer {
            R::Sum | R::Nansum => sum(&int(0)?, reducer, false)?,
            R::Prod | R::Nanprod => sum(&int(1)?, reducer, false)?,
            R::Any => sum(&fill(Scalar::Bool(false), Operand::PyBool)?, reducer, false)?,
            R::All => sum(&fill(Scalar::Bool(true), Operand::PyBool)?, reducer, false)?,
            R::Min | R::Nanmin | R::Max | R::Nanmax => {
                let top = matches!(reducer, R::Min | R::Nanmin);
                let filled = if matches!(reducer, R::Nanmin | R::Nanmax) && dtype.is_float() {
                    // Skipped as NaN: all-NaN selections stay NaN, as numpy's.
                    fill(Scalar::Float(f64::NAN), Operand::PyFloat(f64::NAN))?
                } else {
                    bound(top)?
                };
                let r = sum(&filled, reducer, false)?;
                // An empty selection has no extreme: numpy's error when it runs.
                let n = self.count(&mask, axes, false)?;
                let any = n.binary(BinaryOp::Greater, &weak_int(0))?;
                let op = if top { "minimum" } else { "maximum" };
                Array::require(
                    &any,
                    &r,
                    &format!(
                        "zero-size array to reduction operation {op} which has no identity \
                         (the boolean selection is empty)"
                    ),
                )?
            }
            R::Mean | R::Nanmean | R::Var | R::Std | R::Nanvar | R::Nanstd => {
                self.moments(reducer, &mask, axes, ddof)?
            }
            R::Argmin | R::Argmax => {
                return Err(Error::ArrayArgument {
                    op: reducer.name(),
                    reason: "an index into a boolean selection (whose length only the \
                             mask's values tell) is not supported; compute the selection \
                             first"
                        .into(),
                })
            }
        })
    }

    /// The count of true values of `valid` over the values' `axes`, as int64.
    fn count(&self, valid: &Array, axes: &[i64], keep: bool) -> Result<Array> {
        valid
            .astype(DType::Int64)?
            .reduce(Reducer::Sum, Some(axes), keep, 0.0)
    }

    /// Means and variances: sums over the selected (and, for the NaN-skipping
    /// ones, not NaN) elements, divided by their count; a variance sums the squared
    /// distances to that mean in a second pass.
    fn moments(&self, reducer: Reducer, mask: &Array, axes: &[i64], ddof: f64) -> Result<Array> {
        use Reducer as R;
        let y = if self.dtype().is_float() || self.dtype().is_complex() {
            self.values.clone()
        } else {
            self.values.astype(DType::Float64)?
        };
        let skip_nan = matches!(reducer, R::Nanmean | R::Nanvar | R::Nanstd);
        let valid = if skip_nan {
            let nan = y.unary(UnaryOp::Isnan)?.unary(UnaryOp::Invert)?;
            mask.binary(BinaryOp::BitwiseAnd, &nan)?
        } else {
            mask.clone()
        };
        let zero = weak_int(0);
        let real = real_dtype(y.dtype());
        let mean = |keep: bool| -> Result<Array> {
            let s = Array::select(&valid, &y, &zero)?.reduce(R::Sum, Some(axes), keep, 0.0)?;
            let n = self.count(&valid, axes, keep)?.astype(real)?;
            s.binary(BinaryOp::TrueDivide, &n)
        };
        if matches!(reducer, R::Mean | R::Nanmean) {
            return mean(false);
        }
        let d = Array::select(&valid, &y.binary(BinaryOp::Subtract, &mean(true)?)?, &zero)?;
        let squares = if y.dtype().is_complex() {
            d.binary(BinaryOp::Multiply, &d.unary(UnaryOp::Conjugate)?)?
                .unary(UnaryOp::Real)?
        } else {
            d.binary(BinaryOp::Multiply, &d)?
        };
        let ss = squares.reduce(R::Sum, Some(axes), false, 0.0)?;
        let n = self.count(&valid, axes, false)?.astype(real)?;
        let dof = n.binary(
            BinaryOp::Subtract,
            &Array::scalar(Scalar::Float(ddof), real, Some(Operand::PyFloat(ddof))),
        )?;
        // numpy divides by max(n - ddof, 0) (inf, or NaN for 0/0); the NaN-skipping
        // ones give NaN when no degree of freedom is left.
        let var = if skip_nan {
            let positive = dof.binary(BinaryOp::Greater, &weak_int(0))?;
            Array::select(
                &positive,
                &ss.binary(BinaryOp::TrueDivide, &dof)?,
                &weak_nan(),
            )?
        } else {
            ss.binary(
                BinaryOp::TrueDivide,
                &dof.binary(BinaryOp::Maximum, &weak_int(0))?,
            )?
        };
        if matches!(reducer, R::Std | R::Nanstd) {
            var.unary(UnaryOp::Sqrt)
        } else {
            Ok(var)
        }
    }
}

/// A Python integer as an operand.
fn weak_int(v: i64) -> Array {
    Array::scalar(
        Scalar::Int(v),
        DType::Int64,
        Some(Operand::PyInt(i128::from(v))),
    )
}

/// A Python `nan` as an operand.
fn weak_nan() -> Array {
    Array::scalar(
        Scalar::Float(f64::NAN),
        DType::Float64,
        Some(Operand::PyFloat(f64::NAN)),
    )
}

/// The real dtype of a float or complex dtype.
fn real_dtype(dtype: DType) -> DType {
    match dtype {
        DType::Complex64 | DType::Float32 => DType::Float32,
        _ => DType::Float64,
    }
}
