//! Counting values into bins: `histogram` (numpy's bins, numpy's edge rules) and
//! `bincount`. Each input block is counted into a vector of bins, a partial sum
//! state, and the vectors of all blocks add up in the reduction tree every sum
//! uses. The result's length must be known before the data are read, so
//! `histogram` takes a range or edges (as Dask's does) and `bincount` a
//! `minlength` that bounds the values.

use serde::{Deserialize, Serialize};

use super::graph::{Array, Body};
use super::kernel::values::Values;
use super::program::f64_json;
use crate::error::{Error, Result};
use crate::storage::array::DType;

/// Bins of a count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "bins", rename_all = "snake_case")]
pub enum Bins {
    /// `n` equal bins from `lo` to `hi`, the last closed (numpy's `bins=n,
    /// range=(lo, hi)`).
    Uniform {
        /// The first edge.
        #[serde(with = "f64_json")]
        lo: f64,
        /// The last edge.
        #[serde(with = "f64_json")]
        hi: f64,
        /// How many bins.
        n: u64,
    },
    /// Bins between increasing edges, the last closed.
    Edges {
        /// The edges.
        edges: Vec<f64>,
    },
    /// One bin an integer `0..n` (`bincount`); other values are an error.
    Integers {
        /// How many bins.
        n: u64,
    },
}

impl Bins {
    /// How many bins.
    pub fn len(&self) -> u64 {
        match self {
            Bins::Uniform { n, .. } | Bins::Integers { n } => *n,
            Bins::Edges { edges } => edges.len().saturating_sub(1) as u64,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds each value (with its weight, else 1) into its bin of `counts` (int64
    /// without weights, float64 with).
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for a `bincount` value that is negative or not
    /// below the bin count.
    pub fn count(
        &self,
        values: &Values,
        weights: Option<&Values>,
        counts: &mut Values,
    ) -> Result<()> {
        let weights: Option<Vec<f64>> =
            weights.map(|w| w.as_f64_parts().map(|(re, _)| re).collect());
        let mut add = |bin: usize, k: usize| match counts {
            Values::I64(c) => c[bin] += 1,
            Values::F64(c) => c[bin] += weights.as_ref().map_or(1.0, |w| w[k]),
            _ => {}
        };
        match self {
            Bins::Integers { n } => {
                let ints: Box<dyn Iterator<Item = i128>> = match values {
                    Values::I64(v) => Box::new(v.iter().map(|&x| i128::from(x))),
                    Values::U64(v) => Box::new(v.iter().map(|&x| i128::from(x))),
                    Values::Bool(v) => Box::new(v.iter().map(|&x| i128::from(x))),
                    _ => return Err(Error::bug("bincount of values that are not integers", "")),
                };
                for (k, x) in ints.enumerate() {
                    if x < 0 || x >= i128::from(*n) {
                        return Err(Error::ArrayArgument {
                            op: "bincount".into(),
                            reason: if x < 0 {
                                format!("the values must not be negative, found {x}")
                            } else {
                                format!(
                                    "found {x}, not below minlength={n}: the result's length is \
                                     fixed before the data are read; give a minlength above the \
                                     largest value"
                                )
                            },
                        });
                    }
                    add(x as usize, k);
                }
            }
            Bins::Uniform { lo, hi, n } => {
                let (lo, hi, n) = (*lo, *hi, *n as usize);
                let edge = |i: usize| linspace_at(lo, hi, n, i);
                let norm = hi - lo;
                for (k, (x, _)) in values.as_f64_parts().enumerate() {
                    if !(x >= lo && x <= hi) {
                        continue;
                    }
                    // numpy's: scale into [0, n], then correct by the edges themselves
                    // where rounding put a value in the neighbouring bin.
                    let mut i = (((x - lo) / norm) * n as f64) as usize;
                    if i == n {
                        i -= 1;
                    }
                    if x < edge(i) {
                        i -= 1;
                    } else if x >= edge(i + 1) && i != n - 1 {
                        i += 1;
                    }
                    add(i, k);
                }
            }
            Bins::Edges { edges } => {
                let last = edges.len() - 1;
                for (k, (x, _)) in values.as_f64_parts().enumerate() {
                    if !(x >= edges[0] && x <= edges[last]) {
                        continue;
                    }
                    // The last edge closes the last bin.
                    let i = edges.partition_point(|&e| e <= x).min(last) - 1;
                    add(i, k);
                }
            }
        }
        Ok(())
    }
}

/// Edge `i` of numpy's `linspace(lo, hi, n + 1)`.
fn linspace_at(lo: f64, hi: f64, n: usize, i: usize) -> f64 {
    if i == n {
        hi
    } else {
        i as f64 * ((hi - lo) / n as f64) + lo
    }
}

impl Array {
    /// The count (or with `weights`, the sum of weights) of the values in each of
    /// `bins`: int64 counts, float64 sums, one chunk.
    ///
    /// # Errors
    /// [`Error::ArrayArgument`] for weights of another shape; [`Error::ArrayType`]
    /// for complex values.
    pub fn counts(&self, bins: Bins, weights: Option<&Array>) -> Result<Array> {
        let op = match bins {
            Bins::Integers { .. } => "bincount",
            _ => "histogram",
        };
        if self.dtype().is_complex() {
            return Err(super::graph::type_error(op, &[self.dtype()]));
        }
        if matches!(bins, Bins::Integers { .. })
            && !(self.dtype().is_integer() || self.dtype() == DType::Bool)
        {
            return Err(Error::ArrayArgument {
                op: op.into(),
                reason: format!(
                    "cannot cast array data from dtype('{}') to dtype('int64') according to the \
                     rule 'safe'",
                    self.dtype().name()
                ),
            });
        }
        let (program, inputs) = self.program();
        let input = Array::fused(program, self.chunks().clone(), inputs);
        let weights = match weights {
            None => None,
            Some(w) => {
                if w.shape() != self.shape() {
                    return Err(Error::ArrayArgument {
                        op: op.into(),
                        reason: format!(
                            "weights of shape {} for values of shape {}: they must be alike",
                            crate::grid::tuple_text(w.shape()),
                            crate::grid::tuple_text(self.shape())
                        ),
                    });
                }
                let w = w.astype(DType::Float64)?.rechunk(self.chunks().clone())?;
                let (p, i) = w.program();
                Some(Array::fused(p, self.chunks().clone(), i))
            }
        };
        let dtype = if weights.is_some() {
            DType::Float64
        } else {
            DType::Int64
        };
        let n = bins.len();
        Ok(Array::new(
            vec![n],
            dtype,
            vec![vec![n]],
            Body::Counts {
                input,
                weights,
                bins,
            },
            Default::default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_bins_put_edges_where_numpy_does() {
        let bins = Bins::Uniform {
            lo: 0.0,
            hi: 1.0,
            n: 10,
        };
        let mut counts = Values::I64(vec![0; 10]);
        let v = Values::F64(vec![0.0, 0.1, 0.3, 0.7, 1.0, 1.5, -0.1, f64::NAN, 0.99999]);
        bins.count(&v, None, &mut counts).unwrap();
        // numpy puts 0.3 in bin 2 and 0.7 in bin 6: their scaled positions round up
        // past edges that themselves round up.
        assert_eq!(counts, Values::I64(vec![1, 1, 1, 0, 0, 0, 1, 0, 0, 2]));
    }

    #[test]
    fn bincount_refuses_values_outside_its_length() {
        let bins = Bins::Integers { n: 3 };
        let mut counts = Values::I64(vec![0; 3]);
        bins.count(&Values::I64(vec![0, 2, 2]), None, &mut counts)
            .unwrap();
        assert_eq!(counts, Values::I64(vec![1, 0, 2]));
        let err = bins
            .count(&Values::I64(vec![3]), None, &mut counts)
            .unwrap_err();
        assert!(err.to_string().contains("minlength=3"), "{err}");
        let err = bins
            .count(&Values::I64(vec![-1]), None, &mut counts)
            .unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }
}
