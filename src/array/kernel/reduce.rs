//! Reductions: the state a block's partial result holds for each output element,
//! how values fold into it, how two states combine (the reduction tree), and the
//! final value.
//!
//! Floating-point sums are careful twice over: a run of values is summed in eight
//! interleaved lanes (numpy's pairwise blocks), and the run's total enters the
//! accumulator with Neumaier's compensation, as do partials when they combine; so a
//! sum does not depend on the chunking beyond the last few bits. Variance keeps
//! Welford's count, mean and squared deviations, combined by Chan's formula.

use serde::{Deserialize, Serialize};

use super::values::{Phys, Values};
use crate::error::{Error, Result};

/// A reduction, numpy's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // numpy's names
pub enum Reducer {
    Sum,
    Prod,
    Min,
    Max,
    Any,
    All,
    Nansum,
    Nanprod,
    Nanmin,
    Nanmax,
    Mean,
    Nanmean,
    Var,
    Std,
    Nanvar,
    Nanstd,
    Argmin,
    Argmax,
}

impl Reducer {
    /// Numpy's name.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether NaN values are skipped.
    fn skips_nan(self) -> bool {
        matches!(
            self,
            Reducer::Nansum
                | Reducer::Nanprod
                | Reducer::Nanmin
                | Reducer::Nanmax
                | Reducer::Nanmean
                | Reducer::Nanvar
                | Reducer::Nanstd
        )
    }

    /// Whether an empty reduction has no value (numpy raises).
    pub fn needs_elements(self) -> bool {
        matches!(
            self,
            Reducer::Min
                | Reducer::Max
                | Reducer::Nanmin
                | Reducer::Nanmax
                | Reducer::Argmin
                | Reducer::Argmax
        )
    }

    /// Whether it gives the index of an element (argmin, argmax).
    pub fn is_arg(self) -> bool {
        matches!(self, Reducer::Argmin | Reducer::Argmax)
    }

    /// The physical types of the state's fields for an input of `phys`.
    fn fields(self, phys: Phys) -> Vec<Phys> {
        use Reducer as R;
        let float = matches!(phys, Phys::F32 | Phys::F64);
        match self {
            R::Sum | R::Prod | R::Nansum | R::Nanprod if !float => vec![phys],
            R::Sum | R::Nansum => vec![Phys::F64, Phys::F64],
            R::Prod | R::Nanprod => vec![Phys::F64],
            R::Min | R::Max | R::Nanmin | R::Nanmax => vec![phys],
            R::Any | R::All => vec![Phys::Bool],
            R::Mean | R::Nanmean => vec![Phys::F64, Phys::F64, Phys::F64],
            R::Var | R::Std | R::Nanvar | R::Nanstd => vec![Phys::F64, Phys::F64, Phys::F64],
            // The best value so far and its index (-1: nothing seen).
            R::Argmin | R::Argmax => vec![phys, Phys::I64],
        }
    }
}

/// The state of a reduction for each element of a partial result.
#[derive(Debug, Clone, PartialEq)]
pub struct Accum {
    reducer: Reducer,
    input: Phys,
    /// Sum and compensation; product; extreme; flag; (sum, compensation, count);
    /// (count, mean, M2): by reducer, one value per output element each.
    fields: Vec<Values>,
}

/// Adds `v` to the compensated sum `(s, c)` (Neumaier).
#[inline]
fn neumaier(s: &mut f64, c: &mut f64, v: f64) {
    let t = *s + v;
    if s.abs() >= v.abs() {
        *c += (*s - t) + v;
    } else {
        *c += (v - t) + *s;
    }
    *s = t;
}

/// A compensated sum's value: the compensation holds NaN once an infinity entered
/// the sum, which is then the value.
fn compensated(sum: f64, compensation: f64) -> f64 {
    if sum.is_finite() {
        sum + compensation
    } else {
        sum
    }
}

/// The sum of `v` in eight interleaved lanes, pairwise at the end.
fn lanes_sum(v: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    let mut total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for x in rest {
        total += x;
    }
    total
}

impl Accum {
    /// The identity state for `n` output elements of `reducer` over values of
    /// `input`.
    pub fn new(reducer: Reducer, input: Phys, n: usize) -> Accum {
        let mut fields: Vec<Values> = reducer
            .fields(input)
            .into_iter()
            .map(|p| Values::zeros(p, n))
            .collect();
        use Reducer as R;
        match (reducer, fields.as_mut_slice()) {
            (R::Prod | R::Nanprod, [Values::I64(v)]) => v.fill(1),
            (R::Prod | R::Nanprod, [Values::U64(v)]) => v.fill(1),
            (R::Prod | R::Nanprod, [Values::F64(v)]) => v.fill(1.0),
            (R::All, [Values::Bool(v)]) => v.fill(true),
            (R::Min, [Values::I64(v)]) => v.fill(i64::MAX),
            (R::Min, [Values::U64(v)]) => v.fill(u64::MAX),
            (R::Min, [Values::F32(v)]) => v.fill(f32::INFINITY),
            (R::Min, [Values::F64(v)]) => v.fill(f64::INFINITY),
            (R::Min | R::Max, [Values::Bool(v)]) => v.fill(reducer == R::Min),
            (R::Max, [Values::I64(v)]) => v.fill(i64::MIN),
            (R::Max, [Values::F32(v)]) => v.fill(f32::NEG_INFINITY),
            (R::Max, [Values::F64(v)]) => v.fill(f64::NEG_INFINITY),
            // NaN marks "nothing seen yet", which a value replaces.
            (R::Nanmin | R::Nanmax, [Values::F32(v)]) => v.fill(f32::NAN),
            (R::Nanmin | R::Nanmax, [Values::F64(v)]) => v.fill(f64::NAN),
            (R::Nanmin, [Values::I64(v)]) => v.fill(i64::MAX),
            (R::Nanmin, [Values::U64(v)]) => v.fill(u64::MAX),
            (R::Nanmax, [Values::I64(v)]) => v.fill(i64::MIN),
            (R::Argmin | R::Argmax, [_, Values::I64(i)]) => i.fill(-1),
            _ => {}
        }
        Accum {
            reducer,
            input,
            fields,
        }
    }

    /// The state of a sum whose totals so far are `values` (a block of a matrix
    /// product over part of the contracted axis).
    ///
    /// # Errors
    /// [`Error::Bug`] for booleans, which are summed as integers.
    pub fn sums(values: &Values) -> Result<Accum> {
        let input = values.phys();
        let fields = match values {
            Values::F64(v) => vec![Values::F64(v.clone()), Values::F64(vec![0.0; v.len()])],
            Values::F32(v) => vec![
                Values::F64(v.iter().map(|&x| f64::from(x)).collect()),
                Values::F64(vec![0.0; v.len()]),
            ],
            Values::I64(_) | Values::U64(_) => vec![values.clone()],
            Values::Bool(_) | Values::C64(_) | Values::C128(_) => {
                return Err(Error::bug("a sum state of booleans or complex values", ""))
            }
        };
        Ok(Accum {
            reducer: Reducer::Sum,
            input,
            fields,
        })
    }

    /// Number of output elements.
    pub fn len(&self) -> usize {
        self.fields.first().map_or(0, Values::len)
    }

    /// Whether it has no output elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds the values `v[range]` (a run that reduces to one element) into output
    /// element `o`.
    ///
    /// # Errors
    /// [`Error::Bug`] when `v` is not of the input type.
    pub fn fold_run(&mut self, o: usize, v: &Values, range: std::ops::Range<usize>) -> Result<()> {
        use Reducer as R;
        let r = self.reducer;
        macro_rules! each {
            ($x:ident, $f:expr) => {{
                for &x in &$x[range] {
                    $f(x);
                }
            }};
        }
        match (r, v, self.fields.as_mut_slice()) {
            (R::Sum, Values::F64(x), [Values::F64(s), Values::F64(c)]) => {
                neumaier(&mut s[o], &mut c[o], lanes_sum(&x[range]))
            }
            (R::Sum, Values::F32(x), [Values::F64(s), Values::F64(c)]) => {
                let wide: Vec<f64> = x[range].iter().map(|&a| f64::from(a)).collect();
                neumaier(&mut s[o], &mut c[o], lanes_sum(&wide))
            }
            (R::Nansum, Values::F64(x), [Values::F64(s), Values::F64(c)]) => {
                let t: f64 = x[range].iter().filter(|a| !a.is_nan()).sum();
                neumaier(&mut s[o], &mut c[o], t)
            }
            (R::Nansum, Values::F32(x), [Values::F64(s), Values::F64(c)]) => {
                let t: f64 = x[range]
                    .iter()
                    .filter(|a| !a.is_nan())
                    .map(|&a| f64::from(a))
                    .sum();
                neumaier(&mut s[o], &mut c[o], t)
            }
            (R::Mean | R::Nanmean, _, [Values::F64(s), Values::F64(c), Values::F64(n)]) => {
                let skip = r.skips_nan();
                let mut t = 0.0;
                let mut count = 0.0;
                let mut add = |a: f64| {
                    if !(skip && a.is_nan()) {
                        t += a;
                        count += 1.0;
                    }
                };
                match v {
                    Values::F64(x) if !skip => {
                        t = lanes_sum(&x[range.clone()]);
                        count = range.len() as f64;
                    }
                    _ => for_each_f64(v, range, &mut add)?,
                }
                neumaier(&mut s[o], &mut c[o], t);
                n[o] += count;
            }
            (
                R::Var | R::Std | R::Nanvar | R::Nanstd,
                _,
                [Values::F64(n), Values::F64(m), Values::F64(m2)],
            ) => {
                // The run's own moments (two passes over a run in cache), merged by
                // Chan's formula.
                let skip = r.skips_nan();
                let (mut cn, mut sum) = (0.0, 0.0);
                for_each_f64(v, range.clone(), &mut |a| {
                    if !(skip && a.is_nan()) {
                        cn += 1.0;
                        sum += a;
                    }
                })?;
                if cn > 0.0 {
                    let mean = sum / cn;
                    let mut dev = 0.0;
                    for_each_f64(v, range, &mut |a| {
                        if !(skip && a.is_nan()) {
                            dev += (a - mean) * (a - mean);
                        }
                    })?;
                    chan(&mut n[o], &mut m[o], &mut m2[o], cn, mean, dev);
                }
            }
            (R::Sum | R::Nansum, Values::I64(x), [Values::I64(s)]) => {
                each!(x, |a: i64| s[o] = s[o].wrapping_add(a))
            }
            (R::Sum | R::Nansum, Values::U64(x), [Values::U64(s)]) => {
                each!(x, |a: u64| s[o] = s[o].wrapping_add(a))
            }
            (R::Prod | R::Nanprod, Values::I64(x), [Values::I64(s)]) => {
                each!(x, |a: i64| s[o] = s[o].wrapping_mul(a))
            }
            (R::Prod | R::Nanprod, Values::U64(x), [Values::U64(s)]) => {
                each!(x, |a: u64| s[o] = s[o].wrapping_mul(a))
            }
            (R::Prod | R::Nanprod, _, [Values::F64(s)]) => {
                let skip = r.skips_nan();
                let acc = &mut s[o];
                for_each_f64(v, range, &mut |a| {
                    if !(skip && a.is_nan()) {
                        *acc *= a;
                    }
                })?
            }
            (R::Any, Values::Bool(x), [Values::Bool(s)]) => s[o] |= x[range].contains(&true),
            (R::All, Values::Bool(x), [Values::Bool(s)]) => s[o] &= !x[range].contains(&false),
            (R::Min | R::Max | R::Nanmin | R::Nanmax, _, [acc]) => {
                extreme_run(r, acc, o, v, range)?
            }
            _ => return Err(self.bug(v)),
        }
        Ok(())
    }

    /// Folds `v[range]` (a run that reduces to output element `o`, the first of
    /// index `first` among the reduced axes, the next `step` further) into an
    /// argmin or argmax: the first of the smallest (largest) values, NaN first of
    /// all, as numpy's.
    ///
    /// # Errors
    /// [`Error::Bug`] for another reducer or values of another type.
    pub fn fold_indexed(
        &mut self,
        o: usize,
        v: &Values,
        range: std::ops::Range<usize>,
        first: i64,
        step: i64,
    ) -> Result<()> {
        let is_min = self.reducer == Reducer::Argmin;
        let [best, Values::I64(index)] = self.fields.as_mut_slice() else {
            return Err(Error::bug(
                "an indexed fold of a reduction without indices",
                "",
            ));
        };
        macro_rules! scan {
            ($b:ident, $x:ident, $nan:expr) => {{
                for (j, &x) in $x[range].iter().enumerate() {
                    let at = first + step * j as i64;
                    if index[o] < 0 {
                        $b[o] = x;
                        index[o] = at;
                        continue;
                    }
                    let cur = $b[o];
                    // Once a NaN is the best, it stays (numpy's first NaN).
                    if $nan(cur) {
                        break;
                    }
                    let better = $nan(x) || if is_min { x < cur } else { x > cur };
                    if better {
                        $b[o] = x;
                        index[o] = at;
                    }
                }
            }};
        }
        match (best, v) {
            (Values::F64(b), Values::F64(x)) => scan!(b, x, |a: f64| a.is_nan()),
            (Values::F32(b), Values::F32(x)) => scan!(b, x, |a: f32| a.is_nan()),
            (Values::I64(b), Values::I64(x)) => scan!(b, x, |_: i64| false),
            (Values::U64(b), Values::U64(x)) => scan!(b, x, |_: u64| false),
            (Values::Bool(b), Values::Bool(x)) => scan!(b, x, |_: bool| false),
            (b, _) => {
                return Err(Error::bug(
                    "an argmin or argmax got values of another type",
                    format!("{:?} into {:?}", v.phys(), b.phys()),
                ))
            }
        }
        Ok(())
    }

    /// Folds `v[range]` element by element into output elements `o, o + 1, ...`
    /// (a run along an axis that is kept).
    ///
    /// # Errors
    /// As [`Accum::fold_run`].
    pub fn fold_each(&mut self, o: usize, v: &Values, range: std::ops::Range<usize>) -> Result<()> {
        use Reducer as R;
        let n = range.len();
        // The common cases, as loops over whole runs (the reduction over an outer
        // axis, `x.std(axis=0)`, folds every element this way).
        match (self.reducer, v, self.fields.as_mut_slice()) {
            (R::Sum, Values::F64(x), [Values::F64(s), Values::F64(c)]) => {
                for ((s, c), &a) in s[o..o + n].iter_mut().zip(&mut c[o..o + n]).zip(&x[range]) {
                    neumaier(s, c, a);
                }
            }
            (R::Mean, Values::F64(x), [Values::F64(s), Values::F64(c), Values::F64(k)]) => {
                for ((s, c), &a) in s[o..o + n].iter_mut().zip(&mut c[o..o + n]).zip(&x[range]) {
                    neumaier(s, c, a);
                }
                k[o..o + n].iter_mut().for_each(|k| *k += 1.0);
            }
            (
                R::Var | R::Std,
                Values::F64(x),
                [Values::F64(k), Values::F64(m), Values::F64(m2)],
            ) => {
                // Welford's update, element by element.
                for (((k, m), m2), &a) in k[o..o + n]
                    .iter_mut()
                    .zip(&mut m[o..o + n])
                    .zip(&mut m2[o..o + n])
                    .zip(&x[range])
                {
                    *k += 1.0;
                    let d = a - *m;
                    *m += d / *k;
                    *m2 += d * (a - *m);
                }
            }
            _ => {
                // Each element is a run of one; the state's updates are the same.
                for (j, i) in range.enumerate() {
                    self.fold_run(o + j, v, i..i + 1)?;
                }
            }
        }
        Ok(())
    }

    /// Combines `other` (the state of the same output elements over other input)
    /// into this state.
    ///
    /// # Errors
    /// [`Error::Bug`] when the states differ in kind or length.
    pub fn merge(&mut self, other: &Accum) -> Result<()> {
        if other.reducer != self.reducer || other.len() != self.len() {
            return Err(Error::bug(
                "reduction states of different kinds or lengths combined",
                format!("{:?} and {:?}", self.reducer, other.reducer),
            ));
        }
        use Reducer as R;
        let r = self.reducer;
        match (self.fields.as_mut_slice(), other.fields.as_slice()) {
            ([Values::F64(s), Values::F64(c)], [Values::F64(s2), Values::F64(c2)]) => {
                for i in 0..s.len() {
                    neumaier(&mut s[i], &mut c[i], s2[i]);
                    c[i] += c2[i];
                }
            }
            (
                [Values::F64(s), Values::F64(c), Values::F64(n)],
                [Values::F64(s2), Values::F64(c2), Values::F64(n2)],
            ) if matches!(r, R::Mean | R::Nanmean) => {
                for i in 0..s.len() {
                    neumaier(&mut s[i], &mut c[i], s2[i]);
                    c[i] += c2[i];
                    n[i] += n2[i];
                }
            }
            (
                [Values::F64(n), Values::F64(m), Values::F64(m2)],
                [Values::F64(n2), Values::F64(mb), Values::F64(m2b)],
            ) => {
                for i in 0..n.len() {
                    chan(&mut n[i], &mut m[i], &mut m2[i], n2[i], mb[i], m2b[i]);
                }
            }
            ([best, Values::I64(index)], [other, Values::I64(other_index)]) => {
                // The other part's best, where it is better, or as good and first.
                for i in 0..index.len() {
                    if other_index[i] < 0 {
                        continue;
                    }
                    let take =
                        index[i] < 0 || arg_better(r, best, i, other, i, other_index[i] < index[i]);
                    if take {
                        copy_one(other, i, best, i);
                        index[i] = other_index[i];
                    }
                }
            }
            ([acc], [b]) => {
                // Single-field states fold the other's values as a run each.
                let b = b.clone();
                for i in 0..acc.len() {
                    match r {
                        R::Min | R::Max | R::Nanmin | R::Nanmax => {
                            extreme_run(r, acc, i, &b, i..i + 1)?
                        }
                        _ => merge_one(r, acc, i, &b)?,
                    }
                }
            }
            _ => {
                return Err(Error::bug(
                    "reduction states do not match",
                    format!("{r:?}"),
                ))
            }
        }
        Ok(())
    }

    /// The final values, as `dtype`'s physical type (`ddof` for the variances).
    ///
    /// # Errors
    /// [`Error::Bug`] when the state does not fit.
    pub fn finish(&self, dtype: crate::storage::array::DType, ddof: f64) -> Result<Values> {
        use Reducer as R;
        let target = Phys::of(dtype)?;
        let values = match (self.reducer, self.fields.as_slice()) {
            (R::Sum | R::Nansum, [Values::F64(s), Values::F64(c)]) => {
                Values::F64(s.iter().zip(c).map(|(&a, &b)| compensated(a, b)).collect())
            }
            (R::Mean | R::Nanmean, [Values::F64(s), Values::F64(c), Values::F64(n)]) => {
                Values::F64(
                    s.iter()
                        .zip(c)
                        .zip(n)
                        .map(|((&a, &b), k)| compensated(a, b) / k)
                        .collect(),
                )
            }
            (R::Var | R::Std | R::Nanvar | R::Nanstd, [Values::F64(n), _, Values::F64(m2)]) => {
                let sqrt = matches!(self.reducer, R::Std | R::Nanstd);
                let skips_nan = self.reducer.skips_nan();
                Values::F64(
                    n.iter()
                        .zip(m2)
                        .map(|(&k, &d)| {
                            // numpy divides by max(n - ddof, 0) (inf, or NaN for 0/0);
                            // its nanvar gives NaN when no degree of freedom is left.
                            let v = if skips_nan && k - ddof <= 0.0 {
                                f64::NAN
                            } else {
                                d / (k - ddof).max(0.0)
                            };
                            if sqrt {
                                v.sqrt()
                            } else {
                                v
                            }
                        })
                        .collect(),
                )
            }
            (R::Argmin | R::Argmax, [_, index]) => index.clone(),
            (_, [single]) => single.clone(),
            _ => return Err(Error::bug("a reduction state to finish", "")),
        };
        let mut out = Values::zeros(target, 0);
        values.cast_into(dtype, &mut out);
        Ok(out)
    }

    /// The state as bytes: each field's values in order, native byte order (a
    /// partial result published between tasks).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.fields {
            f.encode(phys_dtype(f.phys()), &mut out);
        }
        out
    }

    /// The state of `n` elements of `reducer` over `input` from [`Accum::to_bytes`].
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the bytes do not hold that state (a stale or foreign
    /// entry).
    pub fn from_bytes(reducer: Reducer, input: Phys, n: usize, bytes: &[u8]) -> Result<Accum> {
        let phys = reducer.fields(input);
        let sizes: Vec<usize> = phys.iter().map(|&p| phys_dtype(p).size() * n).collect();
        if sizes.iter().sum::<usize>() != bytes.len() {
            return Err(Error::BadPlan {
                reason: format!(
                    "a partial {} of {n} elements has {} bytes, not {}",
                    reducer.name(),
                    bytes.len(),
                    sizes.iter().sum::<usize>()
                ),
            });
        }
        let mut fields = Vec::new();
        let mut at = 0;
        for (p, size) in phys.into_iter().zip(sizes) {
            fields.push(Values::decode(phys_dtype(p), &bytes[at..at + size])?);
            at += size;
        }
        Ok(Accum {
            reducer,
            input,
            fields,
        })
    }

    fn bug(&self, v: &Values) -> Error {
        Error::bug(
            "a reduction got values of another type than it was made for",
            format!("{:?} of {:?} got {:?}", self.reducer, self.input, v.phys()),
        )
    }
}

/// The dtype a physical type is stored as in a partial.
fn phys_dtype(p: Phys) -> crate::storage::array::DType {
    use crate::storage::array::DType;
    match p {
        Phys::Bool => DType::Bool,
        Phys::I64 => DType::Int64,
        Phys::U64 => DType::UInt64,
        Phys::F32 => DType::Float32,
        Phys::F64 => DType::Float64,
        Phys::C64 => DType::Complex64,
        Phys::C128 => DType::Complex128,
    }
}

/// Calls `f` on each of `v[range]` as `f64`.
fn for_each_f64(v: &Values, range: std::ops::Range<usize>, f: &mut dyn FnMut(f64)) -> Result<()> {
    match v {
        Values::F64(x) => x[range].iter().for_each(|&a| f(a)),
        Values::F32(x) => x[range].iter().for_each(|&a| f(f64::from(a))),
        Values::I64(x) => x[range].iter().for_each(|&a| f(a as f64)),
        Values::U64(x) => x[range].iter().for_each(|&a| f(a as f64)),
        Values::Bool(x) => x[range].iter().for_each(|&a| f(f64::from(u8::from(a)))),
        Values::C64(_) | Values::C128(_) => {
            return Err(Error::bug("a real reduction of complex values", ""))
        }
    }
    Ok(())
}

/// Chan et al.'s combination of moments `(n, mean, m2)` with `(nb, mean_b, m2_b)`.
fn chan(n: &mut f64, mean: &mut f64, m2: &mut f64, nb: f64, mean_b: f64, m2_b: f64) {
    if nb == 0.0 {
        return;
    }
    let total = *n + nb;
    let delta = mean_b - *mean;
    *mean += delta * nb / total;
    *m2 += m2_b + delta * delta * *n * nb / total;
    *n = total;
}

/// Min or max of `v[range]` into `acc[o]`; NaN propagates (min, max) or is skipped
/// (nanmin, nanmax, whose state starts as NaN: nothing seen).
fn extreme_run(
    r: Reducer,
    acc: &mut Values,
    o: usize,
    v: &Values,
    range: std::ops::Range<usize>,
) -> Result<()> {
    use Reducer as R;
    let is_min = matches!(r, R::Min | R::Nanmin);
    macro_rules! ints {
        ($a:ident, $x:ident) => {{
            for &x in &$x[range] {
                if (is_min && x < $a[o]) || (!is_min && x > $a[o]) {
                    $a[o] = x;
                }
            }
        }};
    }
    macro_rules! floats {
        ($a:ident, $x:ident) => {{
            for &x in &$x[range] {
                let better = if is_min { x < $a[o] } else { x > $a[o] };
                if r.skips_nan() {
                    if !x.is_nan() && ($a[o].is_nan() || better) {
                        $a[o] = x;
                    }
                } else if better || x.is_nan() {
                    if !$a[o].is_nan() {
                        $a[o] = x;
                    }
                }
            }
        }};
    }
    match (acc, v) {
        (Values::I64(a), Values::I64(x)) => ints!(a, x),
        (Values::U64(a), Values::U64(x)) => ints!(a, x),
        (Values::Bool(a), Values::Bool(x)) => ints!(a, x),
        (Values::F32(a), Values::F32(x)) => floats!(a, x),
        (Values::F64(a), Values::F64(x)) => floats!(a, x),
        (acc, v) => {
            return Err(Error::bug(
                "a min or max got values of another type",
                format!("{:?} into {:?}", v.phys(), acc.phys()),
            ))
        }
    }
    Ok(())
}

/// Whether `b[j]` beats `a[i]` for an argmin or argmax; `earlier` when `b`'s index
/// comes first (it wins ties). NaN beats everything, and the earlier NaN wins.
fn arg_better(r: Reducer, a: &Values, i: usize, b: &Values, j: usize, earlier: bool) -> bool {
    let is_min = r == Reducer::Argmin;
    macro_rules! cmp {
        ($x:expr, $y:expr, $nan:expr) => {{
            let (x, y) = ($x, $y);
            match ($nan(x), $nan(y)) {
                (true, true) => earlier,
                (true, false) => false,
                (false, true) => true,
                (false, false) => {
                    if x == y {
                        earlier
                    } else if is_min {
                        y < x
                    } else {
                        y > x
                    }
                }
            }
        }};
    }
    match (a, b) {
        (Values::F64(a), Values::F64(b)) => cmp!(a[i], b[j], |v: f64| v.is_nan()),
        (Values::F32(a), Values::F32(b)) => cmp!(a[i], b[j], |v: f32| v.is_nan()),
        (Values::I64(a), Values::I64(b)) => cmp!(a[i], b[j], |_: i64| false),
        (Values::U64(a), Values::U64(b)) => cmp!(a[i], b[j], |_: u64| false),
        (Values::Bool(a), Values::Bool(b)) => cmp!(a[i], b[j], |_: bool| false),
        _ => false,
    }
}

/// `to[j] = from[i]` for values of one type.
fn copy_one(from: &Values, i: usize, to: &mut Values, j: usize) {
    match (from, to) {
        (Values::F64(a), Values::F64(b)) => b[j] = a[i],
        (Values::F32(a), Values::F32(b)) => b[j] = a[i],
        (Values::I64(a), Values::I64(b)) => b[j] = a[i],
        (Values::U64(a), Values::U64(b)) => b[j] = a[i],
        (Values::Bool(a), Values::Bool(b)) => b[j] = a[i],
        _ => {}
    }
}

/// Combines one element of a single-field state (product, integer sum, any, all).
fn merge_one(r: Reducer, acc: &mut Values, i: usize, b: &Values) -> Result<()> {
    use Reducer as R;
    match (r, acc, b) {
        (R::Sum | R::Nansum, Values::I64(a), Values::I64(x)) => a[i] = a[i].wrapping_add(x[i]),
        (R::Sum | R::Nansum, Values::U64(a), Values::U64(x)) => a[i] = a[i].wrapping_add(x[i]),
        (R::Prod | R::Nanprod, Values::I64(a), Values::I64(x)) => a[i] = a[i].wrapping_mul(x[i]),
        (R::Prod | R::Nanprod, Values::U64(a), Values::U64(x)) => a[i] = a[i].wrapping_mul(x[i]),
        (R::Prod | R::Nanprod, Values::F64(a), Values::F64(x)) => a[i] *= x[i],
        (R::Any, Values::Bool(a), Values::Bool(x)) => a[i] |= x[i],
        (R::All, Values::Bool(a), Values::Bool(x)) => a[i] &= x[i],
        _ => return Err(Error::bug("reduction states do not match", r.name())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::array::DType;

    #[test]
    fn sums_agree_however_the_values_are_split() {
        let v: Vec<f64> = (0..10_000).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let values = Values::F64(v.clone());
        let mut whole = Accum::new(Reducer::Sum, Phys::F64, 1);
        whole.fold_run(0, &values, 0..v.len()).unwrap();
        let mut parts = Accum::new(Reducer::Sum, Phys::F64, 1);
        for start in (0..v.len()).step_by(7) {
            let mut p = Accum::new(Reducer::Sum, Phys::F64, 1);
            p.fold_run(0, &values, start..(start + 7).min(v.len()))
                .unwrap();
            parts.merge(&p).unwrap();
        }
        let a = whole.finish(DType::Float64, 0.0).unwrap();
        let b = parts.finish(DType::Float64, 0.0).unwrap();
        let (Values::F64(a), Values::F64(b)) = (a, b) else {
            panic!()
        };
        assert!((a[0] - b[0]).abs() <= 1e-15 * a[0].abs(), "{a:?} {b:?}");
    }

    #[test]
    fn variance_by_parts_is_the_two_pass_variance() {
        let v: Vec<f64> = (0..1000).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let values = Values::F64(v.clone());
        let mean = v.iter().sum::<f64>() / 1000.0;
        let want = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 999.0;
        let mut acc = Accum::new(Reducer::Var, Phys::F64, 1);
        for start in (0..1000).step_by(33) {
            let mut p = Accum::new(Reducer::Var, Phys::F64, 1);
            p.fold_run(0, &values, start..(start + 33).min(1000))
                .unwrap();
            let bytes = p.to_bytes();
            let p = Accum::from_bytes(Reducer::Var, Phys::F64, 1, &bytes).unwrap();
            acc.merge(&p).unwrap();
        }
        let Values::F64(got) = acc.finish(DType::Float64, 1.0).unwrap() else {
            panic!()
        };
        assert!((got[0] - want).abs() <= 1e-10 * want, "{got:?} {want}");
    }

    #[test]
    fn min_propagates_nan_and_nanmin_skips_it() {
        let values = Values::F64(vec![3.0, f64::NAN, 1.0]);
        let mut min = Accum::new(Reducer::Min, Phys::F64, 1);
        min.fold_run(0, &values, 0..3).unwrap();
        let Values::F64(m) = min.finish(DType::Float64, 0.0).unwrap() else {
            panic!()
        };
        assert!(m[0].is_nan());
        let mut nanmin = Accum::new(Reducer::Nanmin, Phys::F64, 1);
        nanmin.fold_run(0, &values, 0..3).unwrap();
        assert_eq!(
            nanmin.finish(DType::Float64, 0.0).unwrap(),
            Values::F64(vec![1.0])
        );
    }
}
