//! Functions of a whole block: its values as they are (a reshape, whose blocks keep
//! their C order), or each row along its last axis sorted, its sorting permutation,
//! or its top k. Values order as numpy sorts them: NaN after every number, complex
//! numbers by real part then imaginary part, those with a NaN part last.

use std::cmp::Ordering;

use num_complex::{Complex32, Complex64};
use serde::{Deserialize, Serialize};

use super::values::Values;
use crate::error::{Error, Result};
use crate::storage::array::DType;

/// What a block function does to a block's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "func", rename_all = "snake_case")]
pub enum BlockFunc {
    /// Nothing: the block's values in C order are the result block's.
    Same,
    /// Each row sorted ascending.
    Sort,
    /// Each row's stable sorting permutation, as int64 (numpy's `kind="stable"`).
    Argsort,
    /// Each row's `k` largest values in descending order (`k > 0`), or its `-k`
    /// smallest in ascending order (`k < 0`), as Dask's `topk`.
    TopK {
        /// How many, and which end.
        k: i64,
    },
}

impl BlockFunc {
    /// The dtype of the result for an input of `dtype`.
    pub fn dtype(self, input: DType) -> DType {
        match self {
            BlockFunc::Argsort => DType::Int64,
            _ => input,
        }
    }

    /// The length of a result row for an input row of `n`.
    pub fn row_len(self, n: u64) -> u64 {
        match self {
            BlockFunc::TopK { k } => k.unsigned_abs().min(n),
            _ => n,
        }
    }

    /// The name of the operation, for messages.
    pub fn name(self) -> &'static str {
        match self {
            BlockFunc::Same => "reshape",
            BlockFunc::Sort => "sort",
            BlockFunc::Argsort => "argsort",
            BlockFunc::TopK { .. } => "topk",
        }
    }

    /// Applies the function to a block whose rows (its last axis) are `row` long.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the values are not whole rows.
    pub fn apply(self, values: Values, row: usize) -> Result<Values> {
        if self == BlockFunc::Same {
            return Ok(values);
        }
        if row == 0 || !values.len().is_multiple_of(row) {
            if values.is_empty() {
                return Ok(values);
            }
            return Err(Error::BadPlan {
                reason: format!(
                    "{}: a block of {} values is not made of rows of {row}",
                    self.name(),
                    values.len()
                ),
            });
        }
        Ok(match values {
            Values::Bool(v) => self.rows(v, row, Values::Bool),
            Values::I64(v) => self.rows(v, row, Values::I64),
            Values::U64(v) => self.rows(v, row, Values::U64),
            Values::F32(v) => self.rows(v, row, Values::F32),
            Values::F64(v) => self.rows(v, row, Values::F64),
            Values::C64(v) => self.rows(v, row, Values::C64),
            Values::C128(v) => self.rows(v, row, Values::C128),
        })
    }

    fn rows<T: Ordered>(self, mut v: Vec<T>, row: usize, wrap: fn(Vec<T>) -> Values) -> Values {
        match self {
            BlockFunc::Same => wrap(v),
            BlockFunc::Sort => {
                for r in v.chunks_mut(row) {
                    r.sort_by(T::order);
                }
                wrap(v)
            }
            BlockFunc::Argsort => {
                let mut out = Vec::with_capacity(v.len());
                let mut perm: Vec<usize> = Vec::with_capacity(row);
                for r in v.chunks(row) {
                    perm.clear();
                    perm.extend(0..row);
                    perm.sort_by(|&a, &b| r[a].order(&r[b]));
                    out.extend(perm.iter().map(|&i| i as i64));
                }
                Values::I64(out)
            }
            BlockFunc::TopK { k } => {
                let keep = (k.unsigned_abs() as usize).min(row);
                let cmp: fn(&T, &T) -> Ordering = if k > 0 { |a, b| b.order(a) } else { T::order };
                let mut out = Vec::with_capacity(v.len() / row * keep);
                for r in v.chunks_mut(row) {
                    if keep > 0 && keep < row {
                        r.select_nth_unstable_by(keep - 1, cmp);
                    }
                    let best = &mut r[..keep];
                    best.sort_by(cmp);
                    out.extend_from_slice(best);
                }
                wrap(out)
            }
        }
    }
}

/// The distinct values of `parts` in numpy's order (NaNs as one value, last), each
/// with the sum of its counts: a `unique` state merged from several.
///
/// # Errors
/// [`Error::BadPlan`] for parts of different physical types or counts that are
/// not one a value.
pub fn unique_merge(parts: Vec<(Values, Vec<i64>)>) -> Result<(Values, Vec<i64>)> {
    let mut parts = parts.into_iter();
    let Some((mut values, mut counts)) = parts.next() else {
        return Err(Error::BadPlan {
            reason: "unique of no parts".into(),
        });
    };
    for (v, c) in parts {
        if v.phys() != values.phys() {
            return Err(Error::BadPlan {
                reason: "unique parts of different types".into(),
            });
        }
        values.extend_from(&v);
        counts.extend(c);
    }
    if counts.len() != values.len() {
        return Err(Error::BadPlan {
            reason: format!("{} counts for {} unique values", counts.len(), values.len()),
        });
    }
    Ok(match values {
        Values::Bool(v) => distinct(v, counts, Values::Bool),
        Values::I64(v) => distinct(v, counts, Values::I64),
        Values::U64(v) => distinct(v, counts, Values::U64),
        Values::F32(v) => distinct(v, counts, Values::F32),
        Values::F64(v) => distinct(v, counts, Values::F64),
        Values::C64(v) => distinct(v, counts, Values::C64),
        Values::C128(v) => distinct(v, counts, Values::C128),
    })
}

fn distinct<T: Ordered>(
    v: Vec<T>,
    counts: Vec<i64>,
    wrap: fn(Vec<T>) -> Values,
) -> (Values, Vec<i64>) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].order(&v[b]));
    let mut out: Vec<T> = Vec::new();
    let mut total: Vec<i64> = Vec::new();
    for i in order {
        match out.last() {
            Some(last) if last.order(&v[i]) == Ordering::Equal => {
                if let Some(t) = total.last_mut() {
                    *t += counts[i];
                }
            }
            _ => {
                out.push(v[i]);
                total.push(counts[i]);
            }
        }
    }
    (wrap(out), total)
}

/// Numpy's sort order on a physical type.
trait Ordered: Copy {
    fn order(&self, other: &Self) -> Ordering;
}

impl Ordered for bool {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl Ordered for i64 {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl Ordered for u64 {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

/// NaN after every number; `-0.0` and `0.0` equal (a stable sort keeps their order).
fn float_order(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

impl Ordered for f32 {
    fn order(&self, other: &Self) -> Ordering {
        float_order(f64::from(*self), f64::from(*other))
    }
}

impl Ordered for f64 {
    fn order(&self, other: &Self) -> Ordering {
        float_order(*self, *other)
    }
}

/// Numpy's complex order: `R + Rj`, then `R + nanj`, `nan + Rj`, `nan + nanj`, each
/// class by real part then imaginary part.
fn complex_order(a: (f64, f64), b: (f64, f64)) -> Ordering {
    let class = |(re, im): (f64, f64)| (re.is_nan(), im.is_nan());
    class(a)
        .cmp(&class(b))
        .then_with(|| float_order(a.0, b.0))
        .then_with(|| float_order(a.1, b.1))
}

impl Ordered for Complex32 {
    fn order(&self, other: &Self) -> Ordering {
        complex_order(
            (f64::from(self.re), f64::from(self.im)),
            (f64::from(other.re), f64::from(other.im)),
        )
    }
}

impl Ordered for Complex64 {
    fn order(&self, other: &Self) -> Ordering {
        complex_order((self.re, self.im), (other.re, other.im))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_rows_with_nan_last_and_keeps_ties_stable() {
        let v = Values::F64(vec![3.0, f64::NAN, -1.0, 2.0, 0.0, 2.0]);
        let Values::F64(s) = BlockFunc::Sort.apply(v.clone(), 3).unwrap() else {
            panic!("a float sort gave another type");
        };
        assert_eq!(&s[..2], &[-1.0, 3.0]);
        assert!(s[2].is_nan());
        assert_eq!(&s[3..], &[0.0, 2.0, 2.0]);
        let a = BlockFunc::Argsort.apply(v, 3).unwrap();
        assert_eq!(a, Values::I64(vec![2, 0, 1, 1, 0, 2]));
    }

    #[test]
    fn top_k_takes_either_end_in_order() {
        let v = Values::I64(vec![5, 1, 9, 3, 7, 2, 8, 6]);
        let top = BlockFunc::TopK { k: 3 }.apply(v.clone(), 4).unwrap();
        assert_eq!(top, Values::I64(vec![9, 5, 3, 8, 7, 6]));
        let low = BlockFunc::TopK { k: -2 }.apply(v.clone(), 4).unwrap();
        assert_eq!(low, Values::I64(vec![1, 3, 2, 6]));
        let all = BlockFunc::TopK { k: 10 }.apply(v, 4).unwrap();
        assert_eq!(all, Values::I64(vec![9, 5, 3, 1, 8, 7, 6, 2]));
    }

    #[test]
    fn complex_values_order_by_numpy_classes() {
        let c = |re, im| Complex64::new(re, im);
        let v = Values::C128(vec![
            c(f64::NAN, 0.0),
            c(1.0, f64::NAN),
            c(2.0, 0.0),
            c(1.0, 5.0),
        ]);
        let Values::C128(s) = BlockFunc::Sort.apply(v, 4).unwrap() else {
            panic!("a complex sort gave another type");
        };
        assert_eq!((s[0].re, s[0].im), (1.0, 5.0));
        assert_eq!(s[1].re, 2.0);
        assert!(s[2].re == 1.0 && s[2].im.is_nan());
        assert!(s[3].re.is_nan());
    }

    #[test]
    fn unique_merges_counts_and_keeps_one_nan() {
        let a = (Values::F64(vec![3.0, f64::NAN, 1.0, 3.0]), vec![1, 1, 1, 1]);
        let b = (Values::F64(vec![f64::NAN, 1.0, 2.0]), vec![2, 5, 1]);
        let (v, c) = unique_merge(vec![a, b]).unwrap();
        let Values::F64(v) = v else {
            panic!("a float unique gave another type")
        };
        assert_eq!(&v[..3], &[1.0, 2.0, 3.0]);
        assert!(v[3].is_nan() && v.len() == 4);
        assert_eq!(c, vec![6, 1, 2, 3]);
    }

    #[test]
    fn a_block_of_partial_rows_is_refused() {
        let err = BlockFunc::Sort
            .apply(Values::I64(vec![1, 2, 3]), 2)
            .unwrap_err();
        assert!(err.to_string().contains("rows of 2"), "{err}");
    }
}
