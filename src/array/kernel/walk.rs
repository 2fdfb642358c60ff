//! Walking a block in C order as runs along its last axis, with the offsets of each
//! run in any number of strided buffers: how a kernel gathers an operand that is
//! broadcast, sliced, stepped or transposed, and scatters into a reduction's
//! accumulators, without an index computation per element.

/// A block's shape and the strides (in elements, any sign, 0 for a broadcast axis)
/// of the buffers walked with it, axes merged where every buffer allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// The merged extents, C order.
    pub dims: Vec<u64>,
    /// For each buffer, its stride along each merged axis.
    pub strides: Vec<Vec<i64>>,
}

impl Walk {
    /// The walk of a block of extents `dims`, with `strides[b][k]` the stride of
    /// buffer `b` along axis `k`. Adjacent axes merge when, for every buffer, a step
    /// along the outer equals the inner's extent of steps along the inner (the two
    /// axes are one run of memory, or both broadcast); axes of extent 1 are dropped.
    pub fn new(dims: &[u64], strides: &[Vec<i64>]) -> Walk {
        let mut out_dims: Vec<u64> = Vec::new();
        let mut out_strides: Vec<Vec<i64>> = vec![Vec::new(); strides.len()];
        for (k, &d) in dims.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let merges = out_dims.last().is_some_and(|_| {
                strides.iter().zip(&out_strides).all(|(s, o)| {
                    o.last()
                        .is_some_and(|&outer| outer == s[k].saturating_mul(d as i64))
                })
            });
            if merges {
                if let Some(last) = out_dims.last_mut() {
                    *last *= d;
                }
                for (o, s) in out_strides.iter_mut().zip(strides) {
                    if let Some(last) = o.last_mut() {
                        *last = s[k];
                    }
                }
            } else {
                out_dims.push(d);
                for (o, s) in out_strides.iter_mut().zip(strides) {
                    o.push(s[k]);
                }
            }
        }
        Walk {
            dims: out_dims,
            strides: out_strides,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Whether the block has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f(at, len, offsets)` for each run of the elements `start..start + n` in
    /// C order: `at` is the run's position counted from `start`, `len` its length,
    /// `offsets[b]` the offset of its first element in buffer `b` (from the block's
    /// first element); along the run buffer `b` steps by `self.inner(b)`.
    pub fn runs(&self, start: u64, n: u64, mut f: impl FnMut(usize, usize, &[i64])) {
        let rank = self.dims.len();
        if n == 0 {
            return;
        }
        if rank == 0 {
            f(0, 1, &vec![0; self.strides.len()]);
            return;
        }
        // The multi-index of `start`.
        let mut index = vec![0u64; rank];
        let mut rest = start;
        for k in (0..rank).rev() {
            index[k] = rest % self.dims[k];
            rest /= self.dims[k];
        }
        let mut offsets: Vec<i64> = self
            .strides
            .iter()
            .map(|s| {
                s.iter()
                    .zip(&index)
                    .map(|(&st, &i)| st * i as i64)
                    .sum::<i64>()
            })
            .collect();
        let last = rank - 1;
        let mut done = 0u64;
        while done < n {
            let len = (self.dims[last] - index[last]).min(n - done);
            f(done as usize, len as usize, &offsets);
            done += len;
            // Step to the next run: along the last axis, then carry.
            for (o, s) in offsets.iter_mut().zip(&self.strides) {
                *o += s[last] * len as i64;
            }
            index[last] += len;
            let mut k = last;
            while index[k] == self.dims[k] && k > 0 {
                for (o, s) in offsets.iter_mut().zip(&self.strides) {
                    *o -= s[k] * self.dims[k] as i64;
                    *o += s[k - 1];
                }
                index[k] = 0;
                index[k - 1] += 1;
                k -= 1;
            }
        }
    }

    /// The stride of buffer `b` along a run (the last merged axis).
    pub fn inner(&self, b: usize) -> i64 {
        self.strides[b].last().copied().unwrap_or(0)
    }
}

/// C-order strides (in elements) of a buffer of extents `shape`.
pub fn c_strides(shape: &[u64]) -> Vec<i64> {
    let mut strides = vec![0i64; shape.len()];
    let mut s = 1i64;
    for k in (0..shape.len()).rev() {
        strides[k] = s;
        s = s.saturating_mul(shape[k] as i64);
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element's offsets, by walking runs.
    fn offsets_by_runs(walk: &Walk, start: u64, n: u64) -> Vec<Vec<i64>> {
        let mut out = Vec::new();
        walk.runs(start, n, |at, len, offs| {
            assert_eq!(at, out.len());
            for j in 0..len as i64 {
                out.push(
                    offs.iter()
                        .enumerate()
                        .map(|(b, &o)| o + j * walk.inner(b))
                        .collect(),
                );
            }
        });
        out
    }

    #[test]
    fn runs_give_each_elements_offsets_in_every_buffer() {
        let dims = [3u64, 1, 4, 5];
        // A C-order buffer, one broadcast along axis 2, one transposed and stepped.
        let strides = vec![
            c_strides(&dims),
            vec![5, 0, 0, 1],
            vec![2, 0, 3 * 2, 3 * 4 * 2],
        ];
        let walk = Walk::new(&dims, &strides);
        let all = offsets_by_runs(&walk, 0, 60);
        let mut want = Vec::new();
        for i in 0..3i64 {
            for k in 0..4i64 {
                for l in 0..5i64 {
                    want.push(vec![i * 20 + k * 5 + l, i * 5 + l, i * 2 + k * 6 + l * 24]);
                }
            }
        }
        assert_eq!(all, want);
        for (start, n) in [(0, 1), (7, 13), (59, 1), (4, 56), (20, 0)] {
            assert_eq!(
                offsets_by_runs(&walk, start, n),
                want[start as usize..(start + n) as usize].to_vec()
            );
        }
    }

    #[test]
    fn contiguous_axes_merge_into_one_run() {
        let dims = [4u64, 6, 5];
        let walk = Walk::new(&dims, &[c_strides(&dims), c_strides(&dims)]);
        assert_eq!(walk.dims, vec![120]);
        // A reduction's accumulator over the last two axes: 0-strides merge too.
        let walk = Walk::new(&dims, &[c_strides(&dims), vec![1, 0, 0]]);
        assert_eq!(walk.dims, vec![4, 30]);
        assert_eq!(walk.strides, vec![vec![30, 1], vec![1, 0]]);
        let scalar = Walk::new(&[], &[vec![]]);
        assert_eq!(offsets_by_runs(&scalar, 0, 1), vec![vec![0]]);
    }
}
