//! Operations that see a whole block: `reshape` (and `ravel`), `sort`, `argsort`
//! and `topk`. Each is one stage of `array_block` tasks whose block is one block
//! of its input, chunked so that it can be: a reshape needs the input's blocks to
//! hold whole runs of the result's C order, a sort whole rows.
//!
//! A reshape groups the axes as Dask's does: walking both shapes from the last
//! axis, the smallest runs of axes with equal products. In a group, every axis but
//! the first is one chunk on both sides, and the first axis of the input is cut in
//! multiples that make the output's first axis whole numbers of rows; then a block's
//! values in C order are the result block's, unchanged.

use super::graph::{check_blocks, check_size, normalize_axis, Array, Body, Chunks};
use super::kernel::rows::BlockFunc;
use super::program::{LeafSource, Node, Scalar};
use crate::error::{Error, Result};
use crate::storage::array::DType;

/// Elements a block made bigger by a reshape or a sort may hold when its input's
/// blocks were smaller: 2^24 (128 MiB of float64), Dask's `"auto"` size.
const GROWN_BLOCK_ELEMENTS: u64 = 1 << 24;

/// Partial tops merged by one task of a `topk` tree.
const TOPK_SPLIT_EVERY: usize = 16;

impl Array {
    /// The array's values in C order in another shape (numpy's `reshape`; one
    /// length may be `-1`, inferred).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a shape of another size, more than one `-1`, or a
    /// negative length.
    pub fn reshape(&self, shape: &[i64]) -> Result<Array> {
        let out = self.resolve_shape(shape)?;
        if out == self.shape() {
            return Ok(self.clone());
        }
        let size = self.size();
        if size == 0 {
            let chunks = out.iter().map(|&n| vec![n]).collect();
            return Array::full(&out, chunks, Scalar::Int(0), self.dtype());
        }
        // Only length-1 axes come or go: a view.
        let non_unit = |s: &[u64]| s.iter().copied().filter(|&n| n != 1).collect::<Vec<_>>();
        if non_unit(self.shape()) == non_unit(&out) {
            let squeezed = self.squeeze(None)?;
            let ones: Vec<i64> = (0..out.len())
                .filter(|&k| out[k] == 1)
                .map(|k| k as i64)
                .collect();
            return squeezed.expand_dims(&ones);
        }
        let mut in_chunks = self.chunks().clone();
        let mut out_chunks: Chunks = vec![Vec::new(); out.len()];
        let mut keys = vec![None; self.ndim()];
        for (ins, outs) in axis_groups(self.shape(), &out) {
            match (ins.len(), outs.len()) {
                (0, _) => outs.clone().for_each(|o| out_chunks[o] = vec![1]),
                (_, 0) => {}
                (1, 1) => {
                    out_chunks[outs.start] = in_chunks[ins.start].clone();
                    keys[ins.start] = Some(outs.start);
                }
                _ => {
                    let lead = ins.start;
                    let rest_in: u64 = self.shape()[ins.start + 1..ins.end].iter().product();
                    let rest_out: u64 = out[outs.start + 1..outs.end].iter().product();
                    // Rows of the input's first axis a block must hold a multiple of.
                    let step = rest_out / gcd(rest_in, rest_out);
                    let group_block: u64 = ins
                        .clone()
                        .map(|k| largest(&in_chunks[k]))
                        .product::<u64>()
                        .max(GROWN_BLOCK_ELEMENTS);
                    let most_rows = (group_block / rest_in).max(1);
                    let aligned = in_chunks[lead]
                        .iter()
                        .all(|&c| (c * rest_in).is_multiple_of(rest_out))
                        && largest(&in_chunks[lead]) <= most_rows;
                    if !aligned {
                        let rows = largest(&in_chunks[lead]).min(most_rows);
                        let rows = (rows / step * step).max(step);
                        in_chunks[lead] = even_chunks(self.shape()[lead], rows);
                    }
                    for (k, c) in in_chunks
                        .iter_mut()
                        .enumerate()
                        .take(ins.end)
                        .skip(lead + 1)
                    {
                        *c = vec![self.shape()[k]];
                    }
                    out_chunks[outs.start] = in_chunks[lead]
                        .iter()
                        .map(|&c| c * rest_in / rest_out)
                        .collect();
                    for o in outs.start + 1..outs.end {
                        out_chunks[o] = vec![out[o]];
                    }
                    keys[lead] = Some(outs.start);
                }
            }
        }
        let input = self.rechunk(in_chunks)?;
        Ok(Array::new(
            out,
            self.dtype(),
            out_chunks,
            Body::Map {
                input,
                keys,
                func: BlockFunc::Same,
            },
            Default::default(),
        ))
    }

    /// The array flattened in C order (numpy's `ravel`).
    ///
    /// # Errors
    /// As [`Array::reshape`].
    pub fn ravel(&self) -> Result<Array> {
        self.reshape(&[-1])
    }

    /// The rows `indices` names along `axis` (numpy's `take`, and `x[[3, 0, 3]]`):
    /// negative indices count from the end; one out of range is an error when the
    /// block that holds it runs.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for indices that are not a 1-d integer array (a
    /// boolean mask's result has a length only its values tell), or an axis out of
    /// range.
    pub fn take(&self, indices: &Array, axis: i64) -> Result<Array> {
        if self.ndim() == 0 {
            return Err(Error::ArrayArgument {
                op: "take".into(),
                reason: "a zero-dimensional array has no axis to index".into(),
            });
        }
        let axis = normalize_axis("take", axis, self.ndim())?;
        if indices.dtype() == DType::Bool {
            return Err(Error::ArrayArgument {
                op: "index".into(),
                reason: "a boolean mask as an index gives a result whose length only the \
                         mask's values tell, and a plan fixes every length before it runs: \
                         use where(mask, x, fill), or compute the mask and index with its \
                         nonzero positions"
                    .into(),
            });
        }
        // An empty list is float64 to numpy's `array([])`, and indexes nothing.
        let indices = if indices.size() == 0 && indices.ndim() == 1 {
            indices.astype(DType::Int64)?
        } else {
            indices.clone()
        };
        let indices = &indices;
        if !indices.dtype().is_integer() || indices.ndim() != 1 {
            return Err(Error::ArrayArgument {
                op: "index".into(),
                reason: format!(
                    "arrays used as indices must be 1-d and of integer type, not {} of shape {}",
                    indices.dtype().name(),
                    crate::grid::tuple_text(indices.shape())
                ),
            });
        }
        // Indices written out are checked now, as numpy checks them.
        let (program, _) = indices.program();
        if let [Node::Leaf {
            source: LeafSource::Literal { values, .. },
            ..
        }] = program.nodes.as_slice()
        {
            let n = self.shape()[axis];
            for v in values {
                let i = match *v {
                    Scalar::Int(i) => i128::from(i),
                    Scalar::UInt(u) => i128::from(u),
                    _ => continue,
                };
                if i >= i128::from(n) || i < -i128::from(n) {
                    return Err(Error::ArrayArgument {
                        op: "index".into(),
                        reason: format!("index {i} is out of bounds for axis {axis} with size {n}"),
                    });
                }
            }
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = indices.shape()[0];
        check_size("take", &shape, self.dtype())?;
        let mut chunks = self.chunks().clone();
        chunks[axis] = indices.chunks()[0].clone();
        check_blocks(chunks.iter().map(|c| c.len() as u64), &shape)?;
        let (program, inputs) = self.program();
        let input = Array::fused(program, self.chunks().clone(), inputs);
        let (program, inputs) = indices.astype(DType::Int64)?.program();
        let indices = Array::fused(program, indices.chunks().clone(), inputs);
        Ok(Array::new(
            shape,
            self.dtype(),
            chunks,
            Body::Take {
                input,
                axis,
                indices,
            },
            Default::default(),
        ))
    }

    /// `shape` with its `-1` inferred, checked against the array's size.
    fn resolve_shape(&self, shape: &[i64]) -> Result<Vec<u64>> {
        let size = self.size();
        let refuse = |reason: String| Error::ArrayArgument {
            op: "reshape".into(),
            reason,
        };
        let shown = || {
            let parts: Vec<String> = shape.iter().map(i64::to_string).collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        };
        let mut unknown = None;
        let mut known: u64 = 1;
        for (k, &n) in shape.iter().enumerate() {
            if n == -1 {
                if unknown.replace(k).is_some() {
                    return Err(refuse("can only specify one unknown dimension".into()));
                }
            } else if n < 0 {
                return Err(refuse(format!(
                    "negative dimensions not allowed: {}",
                    shown()
                )));
            } else {
                known = known
                    .checked_mul(n as u64)
                    .ok_or_else(|| refuse(format!("the shape {} is too big", shown())))?;
            }
        }
        let mut out: Vec<u64> = shape.iter().map(|&n| n.max(0) as u64).collect();
        let mismatch = || {
            refuse(format!(
                "cannot reshape array of size {size} into shape {}",
                shown()
            ))
        };
        if let Some(k) = unknown {
            if known == 0 || !size.is_multiple_of(known) {
                return Err(mismatch());
            }
            out[k] = size / known;
        } else if known != size {
            return Err(mismatch());
        }
        check_size("reshape", &out, self.dtype())?;
        Ok(out)
    }

    /// Each row along `axis` sorted ascending (numpy's `sort`, NaN last).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range.
    pub fn sort(&self, axis: i64) -> Result<Array> {
        self.along_rows("sort", axis, |rows| rows.map_rows(BlockFunc::Sort))
    }

    /// The indices that sort each row along `axis` (numpy's `argsort` with
    /// `kind="stable"`: equal values keep their order).
    ///
    /// # Errors
    /// As [`Array::sort`].
    pub fn argsort(&self, axis: i64) -> Result<Array> {
        self.along_rows("argsort", axis, |rows| rows.map_rows(BlockFunc::Argsort))
    }

    /// The `k` largest values along `axis` in descending order, or with a negative
    /// `k` the `-k` smallest in ascending order (Dask's `topk`): a tree of partial
    /// tops, never a sort of the whole axis.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for an axis out of range, or `k` zero or longer than
    /// the axis.
    pub fn topk(&self, k: i64, axis: i64) -> Result<Array> {
        if self.ndim() == 0 {
            return Err(Error::ArrayArgument {
                op: "topk".into(),
                reason: "a zero-dimensional array has no axis to take the top of".into(),
            });
        }
        let n = self.shape()[normalize_axis("topk", axis, self.ndim())?];
        // As Dask's: more than the axis holds is the whole axis, in order.
        let k = if k.unsigned_abs() > n && n > 0 {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            if k > 0 {
                n
            } else {
                -n
            }
        } else {
            k
        };
        if k == 0 || n == 0 {
            return Err(Error::ArrayArgument {
                op: "topk".into(),
                reason: if n == 0 {
                    format!("k = {k}: the axis is empty")
                } else {
                    format!(
                        "k = {k}: it must be positive for the largest, or negative for the \
                         smallest"
                    )
                },
            });
        }
        self.along_rows("topk", axis, |rows| {
            let func = BlockFunc::TopK { k };
            let mut top = rows.clone();
            loop {
                let last = top.ndim() - 1;
                let parts = top.chunks()[last].len();
                let mut chunks = top.chunks().clone();
                chunks[last] = chunks[last].iter().map(|&c| func.row_len(c)).collect();
                top = top.map_blocks(chunks, func)?;
                if parts <= 1 {
                    return Ok(top);
                }
                // Up to TOPK_SPLIT_EVERY partial tops a block at the next level.
                let mut chunks = top.chunks().clone();
                chunks[last] = chunks[last]
                    .chunks(TOPK_SPLIT_EVERY)
                    .map(|g| g.iter().sum())
                    .collect();
                top = top.rechunk(chunks)?;
            }
        })
    }

    /// `f` applied to the array with `axis` moved last, and the axis moved back.
    fn along_rows(
        &self,
        op: &str,
        axis: i64,
        f: impl FnOnce(&Array) -> Result<Array>,
    ) -> Result<Array> {
        if self.ndim() == 0 {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: "a zero-dimensional array has no axis to sort along".into(),
            });
        }
        let last = self.ndim() as i64 - 1;
        let axis = normalize_axis(op, axis, self.ndim())? as i64;
        if axis == last {
            return f(self);
        }
        f(&self.moveaxis(&[axis], &[last])?)?.moveaxis(&[last], &[axis])
    }

    /// `func` on each row along the last axis, the rows whole in each block (the
    /// other axes cut finer when whole rows make blocks too big).
    fn map_rows(&self, func: BlockFunc) -> Result<Array> {
        let last = self.ndim() - 1;
        let mut chunks = self.chunks().clone();
        if chunks[last].len() > 1 {
            let row = self.shape()[last].max(1);
            let block: u64 = chunks.iter().map(|c| largest(c)).product();
            let mut room = (block.max(GROWN_BLOCK_ELEMENTS) / row).max(1);
            // Cut the outer axes, innermost first, to keep a block within `room` rows.
            for k in (0..last).rev() {
                let c = largest(&chunks[k]).min(room).max(1);
                if c < largest(&chunks[k]) {
                    chunks[k] = even_chunks(self.shape()[k], c);
                }
                room = (room / c).max(1);
            }
            chunks[last] = vec![self.shape()[last]];
        }
        let input = self.rechunk(chunks.clone())?;
        input.map_blocks(chunks, func)
    }

    /// `func` on each block, the result chunked as `chunks` (the same block grid).
    fn map_blocks(&self, chunks: Chunks, func: BlockFunc) -> Result<Array> {
        let shape: Vec<u64> = chunks.iter().map(|c| c.iter().sum()).collect();
        let dtype = func.dtype(self.dtype());
        check_size(func.name(), &shape, dtype)?;
        check_blocks(chunks.iter().map(|c| c.len() as u64), &shape)?;
        let (program, inputs) = self.program();
        let input = Array::fused(program, self.chunks().clone(), inputs);
        Ok(Array::new(
            shape,
            dtype,
            chunks,
            Body::Map {
                input,
                keys: (0..self.ndim()).map(Some).collect(),
                func,
            },
            Default::default(),
        ))
    }
}

/// The groups of axes a reshape from `a` to `b` maps onto each other, as ranges of
/// each side's axes, from the last axes to the first. A group of one side's length-1
/// axes may have none of the other's.
fn axis_groups(a: &[u64], b: &[u64]) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let mut groups = Vec::new();
    let (mut i, mut o) = (a.len(), b.len());
    while i > 0 || o > 0 {
        if i == 0 || o == 0 {
            // The rest of one side: length-1 axes (the sizes are equal and not zero).
            groups.push((0..i, 0..o));
            break;
        }
        let (end_i, end_o) = (i, o);
        i -= 1;
        o -= 1;
        let (mut pi, mut po) = (a[i], b[o]);
        // Both prefixes have equal products, so the smaller side has axes left.
        while pi != po {
            if pi < po {
                i -= 1;
                pi *= a[i];
            } else {
                o -= 1;
                po *= b[o];
            }
        }
        groups.push((i..end_i, o..end_o));
    }
    groups
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

fn largest(chunks: &[u64]) -> u64 {
    chunks.iter().copied().max().unwrap_or(1).max(1)
}

/// Chunks of `c` along an axis of `n` (the last shorter).
fn even_chunks(n: u64, c: u64) -> Vec<u64> {
    let c = c.max(1);
    let mut v = vec![c; (n / c) as usize];
    if !n.is_multiple_of(c) || n == 0 {
        v.push(n % c);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_pair_the_smallest_runs_of_equal_size() {
        assert_eq!(
            axis_groups(&[4, 6], &[4, 2, 3]),
            vec![(1..2, 1..3), (0..1, 0..1)]
        );
        assert_eq!(
            axis_groups(&[5, 1, 4], &[5, 4]),
            vec![(2..3, 1..2), (0..2, 0..1)]
        );
        assert_eq!(axis_groups(&[6, 4], &[4, 6]), vec![(0..2, 0..2)]);
        assert_eq!(axis_groups(&[1, 4], &[4]), vec![(1..2, 0..1), (0..1, 0..0)]);
        assert_eq!(axis_groups(&[4], &[4, 1, 1]), vec![(0..1, 0..3)]);
    }

    #[test]
    fn a_reshape_keeps_blocks_that_already_hold_whole_rows() {
        let x = Array::full(
            &[6, 4],
            vec![vec![2, 2, 2], vec![4]],
            Scalar::Int(1),
            crate::storage::array::DType::Int64,
        )
        .unwrap();
        let y = x.reshape(&[3, 8]).unwrap();
        assert_eq!(y.chunks(), &vec![vec![1, 1, 1], vec![8]]);
        let z = x.reshape(&[-1]).unwrap();
        assert_eq!(z.chunks(), &vec![vec![8, 8, 8]]);
        // Rows of 4 into rows of 6: blocks of 3 input rows (12 = 2 rows of 6).
        let w = x.reshape(&[4, 6]).unwrap();
        assert_eq!(w.chunks(), &vec![vec![2, 2], vec![6]]);
    }

    #[test]
    fn bad_shapes_are_refused_as_numpy_words_them() {
        let x = Array::full(
            &[6, 4],
            vec![vec![6], vec![4]],
            Scalar::Int(1),
            crate::storage::array::DType::Int64,
        )
        .unwrap();
        let msg = |s: &[i64]| x.reshape(s).unwrap_err().to_string();
        assert!(msg(&[5, 5]).contains("cannot reshape array of size 24 into shape (5, 5)"));
        assert!(msg(&[-1, -1]).contains("only specify one unknown"));
        assert!(msg(&[-2, 12]).contains("negative dimensions"));
        assert!(msg(&[-1, 7]).contains("cannot reshape"));
        assert!(msg(&[i64::MAX, i64::MAX]).contains("too big"));
    }
}
