//! Contractions beyond `matmul`: `tensordot` as a matrix product of the operands
//! transposed and reshaped into matrices, and `einsum` for the patterns that reduce
//! to it, or, when an index is shared but kept (a batch), to one fused pass of
//! broadcast products summed over the contracted indices.

use super::graph::{normalize_axis, Array};
use super::kernel::ops::BinaryOp;
use super::kernel::reduce::Reducer;
use super::promote;
use crate::error::{Error, Result};
use crate::grid::tuple_text as shape_text;

fn refuse(op: &str, reason: String) -> Error {
    Error::ArrayArgument {
        op: op.into(),
        reason,
    }
}

impl Array {
    /// numpy's `tensordot`: the sum of products over `a_axes` of `self` and
    /// `b_axes` of `other`, the result's axes `self`'s others then `other`'s.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for axes of different counts, repeated or out of
    /// range, or contracted lengths that differ; as [`Array::matmul`].
    pub fn tensordot(&self, other: &Array, a_axes: &[i64], b_axes: &[i64]) -> Result<Array> {
        if a_axes.len() != b_axes.len() {
            return Err(refuse(
                "tensordot",
                format!(
                    "shape-mismatch for sum: {} axes of the first operand, {} of the second",
                    a_axes.len(),
                    b_axes.len()
                ),
            ));
        }
        let norm = |x: &Array, axes: &[i64]| -> Result<Vec<usize>> {
            let v: Vec<usize> = axes
                .iter()
                .map(|&k| normalize_axis("tensordot", k, x.ndim()))
                .collect::<Result<_>>()?;
            let mut seen = v.clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != v.len() {
                return Err(refuse("tensordot", "repeated axis".into()));
            }
            Ok(v)
        };
        let (ca, cb) = (norm(self, a_axes)?, norm(other, b_axes)?);
        for (&i, &j) in ca.iter().zip(&cb) {
            if self.shape()[i] != other.shape()[j] {
                return Err(refuse(
                    "tensordot",
                    format!(
                        "shape-mismatch for sum: axis {i} of {} has {}, axis {j} of {} has {}",
                        shape_text(self.shape()),
                        self.shape()[i],
                        shape_text(other.shape()),
                        other.shape()[j]
                    ),
                ));
            }
        }
        let fa: Vec<usize> = (0..self.ndim()).filter(|k| !ca.contains(k)).collect();
        let fb: Vec<usize> = (0..other.ndim()).filter(|k| !cb.contains(k)).collect();
        let len = |x: &Array, axes: &[usize]| -> i64 {
            axes.iter().map(|&k| x.shape()[k] as i64).product()
        };
        let perm_a: Vec<i64> = fa.iter().chain(&ca).map(|&k| k as i64).collect();
        let perm_b: Vec<i64> = cb.iter().chain(&fb).map(|&k| k as i64).collect();
        let k = len(self, &ca);
        let a = self
            .transpose(Some(&perm_a))?
            .reshape(&[len(self, &fa), k])?;
        let b = other
            .transpose(Some(&perm_b))?
            .reshape(&[k, len(other, &fb)])?;
        let shape: Vec<i64> = fa
            .iter()
            .map(|&i| self.shape()[i] as i64)
            .chain(fb.iter().map(|&j| other.shape()[j] as i64))
            .collect();
        a.matmul(&b)?.reshape(&shape)
    }

    /// numpy's `einsum` for explicit or implicit subscripts over one or more
    /// operands, without `...` and without an index repeated in one operand.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for malformed subscripts, lengths that differ for
    /// one index, or the forms not supported.
    pub fn einsum(subscripts: &str, operands: &[Array]) -> Result<Array> {
        let spec = Spec::parse(subscripts, operands)?;
        // numpy's einsum keeps the operands' common type (no widening of sums).
        let dtype = promote::result_type(
            &operands
                .iter()
                .map(|a| a.dtype().into())
                .collect::<Vec<_>>(),
        )?;
        let mut terms: Vec<(Vec<char>, Array)> = spec
            .inputs
            .iter()
            .cloned()
            .zip(operands.iter().cloned())
            .collect();
        // Contract the operands left to right, keeping what the output or a later
        // operand needs.
        let mut acc = terms.remove(0);
        let mut later: Vec<Vec<char>> = terms.iter().map(|(s, _)| s.clone()).collect();
        for (subs, x) in terms {
            later.remove(0);
            let keep = |c: &char| spec.output.contains(c) || later.iter().any(|s| s.contains(c));
            acc = contract_pair(&acc, &(subs, x), &keep)?;
        }
        // Sum what is left that the output does not keep, then order the axes.
        let (subs, x) = acc;
        let summed: Vec<i64> = (0..subs.len())
            .filter(|&k| !spec.output.contains(&subs[k]))
            .map(|k| k as i64)
            .collect();
        let rest: Vec<char> = subs
            .iter()
            .copied()
            .filter(|c| spec.output.contains(c))
            .collect();
        let x = if summed.is_empty() {
            x
        } else {
            x.reduce(Reducer::Sum, Some(&summed), false, 0.0)?
        };
        let perm: Vec<i64> = spec
            .output
            .iter()
            .map(|c| rest.iter().position(|r| r == c).unwrap_or(0) as i64)
            .collect();
        let x = if x.dtype() == dtype {
            x
        } else {
            x.astype(dtype)?
        };
        if perm.iter().enumerate().all(|(k, &p)| k as i64 == p) {
            Ok(x)
        } else {
            x.transpose(Some(&perm))
        }
    }
}

/// Parsed `einsum` subscripts.
struct Spec {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
}

impl Spec {
    fn parse(subscripts: &str, operands: &[Array]) -> Result<Spec> {
        let text: String = subscripts.chars().filter(|c| !c.is_whitespace()).collect();
        if text.contains('.') {
            return Err(refuse(
                "einsum",
                "'...' (broadcast dimensions) is not supported: name every axis".into(),
            ));
        }
        let (lhs, out) = match text.split_once("->") {
            Some((l, r)) => (l.to_string(), Some(r.to_string())),
            None => (text.clone(), None),
        };
        let inputs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
        if inputs.len() != operands.len() {
            return Err(refuse(
                "einsum",
                format!(
                    "{} operands for {} subscripts in {subscripts:?}",
                    operands.len(),
                    inputs.len()
                ),
            ));
        }
        let mut lengths: Vec<(char, u64)> = Vec::new();
        for (subs, x) in inputs.iter().zip(operands) {
            if subs.len() != x.ndim() {
                return Err(refuse(
                    "einsum",
                    format!(
                        "subscripts {:?} name {} axes of an operand of shape {}",
                        subs.iter().collect::<String>(),
                        subs.len(),
                        shape_text(x.shape())
                    ),
                ));
            }
            for (k, &c) in subs.iter().enumerate() {
                if !c.is_ascii_alphabetic() {
                    return Err(refuse(
                        "einsum",
                        format!("invalid subscript {c:?} in {subscripts:?}: use letters"),
                    ));
                }
                if subs[..k].contains(&c) {
                    return Err(refuse(
                        "einsum",
                        format!(
                            "index {c:?} repeats within one operand (a diagonal or trace): not \
                             supported"
                        ),
                    ));
                }
                let n = x.shape()[k];
                match lengths.iter().find(|(d, _)| *d == c) {
                    Some(&(_, m)) if m != n => {
                        return Err(refuse(
                            "einsum",
                            format!("index {c:?} has lengths {m} and {n}"),
                        ))
                    }
                    Some(_) => {}
                    None => lengths.push((c, n)),
                }
            }
        }
        let output: Vec<char> = match out {
            Some(o) => {
                let o: Vec<char> = o.chars().collect();
                for (k, c) in o.iter().enumerate() {
                    if o[..k].contains(c) || !lengths.iter().any(|(d, _)| d == c) {
                        return Err(refuse(
                            "einsum",
                            format!("output subscript {c:?} repeats or names no input axis"),
                        ));
                    }
                }
                o
            }
            // Implicit: the indices that appear once, in alphabetical order.
            None => {
                let mut once: Vec<char> = lengths
                    .iter()
                    .map(|&(c, _)| c)
                    .filter(|c| inputs.iter().flatten().filter(|d| *d == c).count() == 1)
                    .collect();
                once.sort_unstable();
                once
            }
        };
        Ok(Spec { inputs, output })
    }
}

/// Two operands contracted over the indices they share that `keep` does not need,
/// their other indices summed away first when nothing needs them; a matrix
/// product when no shared index is kept, one fused pass of products otherwise.
fn contract_pair(
    a: &(Vec<char>, Array),
    b: &(Vec<char>, Array),
    keep: &dyn Fn(&char) -> bool,
) -> Result<(Vec<char>, Array)> {
    let in_both = |c: &char| a.0.contains(c) && b.0.contains(c);
    // An index only one operand has and nothing needs is summed there first.
    let pre = |(subs, x): &(Vec<char>, Array)| -> Result<(Vec<char>, Array)> {
        let gone: Vec<i64> = (0..subs.len())
            .filter(|&k| !in_both(&subs[k]) && !keep(&subs[k]))
            .map(|k| k as i64)
            .collect();
        if gone.is_empty() {
            return Ok((subs.clone(), x.clone()));
        }
        let left: Vec<char> = (0..subs.len())
            .filter(|&k| !gone.contains(&(k as i64)))
            .map(|k| subs[k])
            .collect();
        Ok((left, x.reduce(Reducer::Sum, Some(&gone), false, 0.0)?))
    };
    let (sa, xa) = pre(a)?;
    let (sb, xb) = pre(b)?;
    let shared: Vec<char> = sa.iter().copied().filter(|c| sb.contains(c)).collect();
    let batch = shared.iter().any(keep);
    if !batch {
        let ia: Vec<i64> = shared
            .iter()
            .map(|c| sa.iter().position(|d| d == c).unwrap_or(0) as i64)
            .collect();
        let ib: Vec<i64> = shared
            .iter()
            .map(|c| sb.iter().position(|d| d == c).unwrap_or(0) as i64)
            .collect();
        let subs: Vec<char> = sa
            .iter()
            .chain(&sb)
            .copied()
            .filter(|c| !shared.contains(c))
            .collect();
        return Ok((subs, xa.tensordot(&xb, &ia, &ib)?));
    }
    // Both operands laid along the union of their indices, multiplied with
    // broadcasting, and the shared indices nothing keeps summed: one fused pass.
    let mut union: Vec<char> = sa.clone();
    union.extend(sb.iter().copied().filter(|c| !sa.contains(c)));
    let spread = |subs: &[char], x: &Array| -> Result<Array> {
        // The operand's axes in union order, then length-1 axes for the others.
        let order: Vec<i64> = union
            .iter()
            .filter_map(|c| subs.iter().position(|d| d == c).map(|k| k as i64))
            .collect();
        let x = x.transpose(Some(&order))?;
        let missing: Vec<i64> = union
            .iter()
            .enumerate()
            .filter(|(_, c)| !subs.contains(c))
            .map(|(k, _)| k as i64)
            .collect();
        if missing.is_empty() {
            Ok(x)
        } else {
            x.expand_dims(&missing)
        }
    };
    let product = spread(&sa, &xa)?.binary(BinaryOp::Multiply, &spread(&sb, &xb)?)?;
    let summed: Vec<i64> = union
        .iter()
        .enumerate()
        .filter(|(_, c)| shared.contains(c) && !keep(c))
        .map(|(k, _)| k as i64)
        .collect();
    let subs: Vec<char> = union
        .iter()
        .copied()
        .filter(|c| !shared.contains(c) || keep(c))
        .collect();
    if summed.is_empty() {
        return Ok((union, product));
    }
    Ok((
        subs,
        product.reduce(Reducer::Sum, Some(&summed), false, 0.0)?,
    ))
}
