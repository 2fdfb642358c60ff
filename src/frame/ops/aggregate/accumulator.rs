//! Aggregate functions over groups, vectorized: each accumulator holds one state a
//! group, in vectors indexed by group number, and takes a whole batch with the
//! group number of each row.
//!
//! A state can leave the task that made it ([`GroupsAccumulator::state`]: one row
//! a group, Arrow columns) and be merged into another accumulator
//! ([`GroupsAccumulator::merge`]), so a partial aggregation in one task finishes in
//! another. Moments merge with Chan's formulas, so that partial variances and
//! correlations combine without the cancellation of sums of squares.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Float64Array, Int64Array, ListArray,
    StringArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};

use super::keys::prefetch;
use super::AggFunc;
use crate::error::{Error, Result};

/// One aggregate over groups.
pub trait GroupsAccumulator: Send {
    /// Adds each row `i` of `args` to group `groups[i]`; `total` groups exist now
    /// (the states grow to hold them).
    ///
    /// # Errors
    /// An integer sum that overflows; arguments of the wrong type.
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()>;

    /// Merges partial states (columns as [`GroupsAccumulator::state`] gives them),
    /// row `i` into group `groups[i]`.
    ///
    /// # Errors
    /// As [`GroupsAccumulator::update`].
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()>;

    /// Every group's partial state, in group order, as columns of
    /// [`AggFunc::state_fields`]; the accumulator is empty afterwards.
    ///
    /// # Errors
    /// Arrow errors building the columns.
    fn state(&mut self) -> Result<Vec<ArrayRef>>;

    /// Every group's final value, in group order; the accumulator is empty
    /// afterwards.
    ///
    /// # Errors
    /// Arrow errors building the column.
    fn evaluate(&mut self) -> Result<ArrayRef>;

    /// Bytes the states hold.
    fn size(&self) -> usize;
}

/// The accumulator of `func` over arguments of `types`.
///
/// # Errors
/// [`Error::FrameAggregate`]-like usage errors for a function that does not take
/// these types.
pub fn accumulator(func: &AggFunc, types: &[DataType]) -> Result<Box<dyn GroupsAccumulator>> {
    let arg = types.first().cloned().unwrap_or(DataType::Null);
    Ok(match func {
        AggFunc::Size => Box::new(Count::default()),
        AggFunc::Count => Box::new(Count::default()),
        AggFunc::Sum if is_integer(&arg) => Box::new(Sum::<i64>::default()),
        AggFunc::Sum => Box::new(Sum::<f64>::default()),
        AggFunc::Mean => Box::new(Mean::default()),
        AggFunc::Min | AggFunc::Max => {
            let max = matches!(func, AggFunc::Max);
            match Physical::of(&arg) {
                Physical::Int => Box::new(Extreme::<i64>::new(max, arg)),
                Physical::Float => Box::new(Extreme::<f64>::new(max, arg)),
                Physical::Text => Box::new(TextExtreme::new(max)),
            }
        }
        AggFunc::Var { ddof } | AggFunc::Std { ddof } => Box::new(Moments {
            ddof: *ddof,
            root: matches!(func, AggFunc::Std { .. }),
            ..Moments::default()
        }),
        AggFunc::Corr | AggFunc::Cov { .. } => Box::new(CoMoments {
            func: func.clone(),
            ..CoMoments::default()
        }),
        AggFunc::Median => Box::new(Quantile::new(0.5, false)),
        AggFunc::Quantile { q } => Box::new(Quantile::new(*q, false)),
        AggFunc::QuantileDisc { q } => Box::new(Quantile::new(*q, true)),
        AggFunc::First { skip_nulls } | AggFunc::Last { skip_nulls } => Box::new(Positional::new(
            matches!(func, AggFunc::Last { .. }),
            *skip_nulls,
            &arg,
            func.output_type(types),
        )),
        AggFunc::Any | AggFunc::All => Box::new(Truth {
            any: matches!(func, AggFunc::Any),
            values: Vec::new(),
        }),
    })
}

/// Whether `t` sums as integers.
pub(super) fn is_integer(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Boolean)
}

/// How a min or max holds its values.
enum Physical {
    Int,
    Float,
    Text,
}

impl Physical {
    fn of(t: &DataType) -> Physical {
        match t {
            DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..) => Physical::Float,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Physical::Text,
            DataType::Dictionary(_, v) => Physical::of(v),
            _ => Physical::Int,
        }
    }
}

/// `a` cast to `to` (nothing done when it is already).
fn as_type(a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if a.data_type() == to {
        return Ok(a.clone());
    }
    Ok(cast(a, to)?)
}

fn ints(a: &ArrayRef) -> Result<ArrayRef> {
    as_type(a, &DataType::Int64)
}

fn floats(a: &ArrayRef) -> Result<ArrayRef> {
    as_type(a, &DataType::Float64)
}

/// The argument `i`, or a bug in the plan.
fn arg(args: &[ArrayRef], i: usize) -> Result<&ArrayRef> {
    args.get(i)
        .ok_or_else(|| Error::bug("an aggregate given too few columns", i))
}

/// Where the groups' states of an accumulator lie, so that a row's state can be
/// fetched into the cache a few rows before the row comes to it: once the
/// groups outgrow the caches (a million at q3 and q7 at 1e8 rows), each row's
/// state is a miss to memory, and the misses of several rows then overlap
/// rather than wait one after another, as the key table's slots do in
/// [`keys`](super::keys).
#[derive(Clone, Copy)]
struct Ahead {
    base: *const u8,
    stride: usize,
}

impl Ahead {
    /// States smaller than this stay in the caches: prefetching them would be
    /// an instruction a row for nothing.
    const FROM_BYTES: usize = 1 << 20;

    /// Rows ahead whose state is fetched. Further than the key table looks
    /// ahead, since a row's state is wanted only after the whole batch's keys
    /// were looked up, by a loop that does little else a row: measured on q7
    /// at 1e8 rows, 64 rows ahead took 10% off, 128 a further 8%, and 256 was
    /// as fast as 128 or faster.
    const ROWS: usize = 256;

    /// The hint for `states`, if they are large enough to need it.
    fn of<S>(states: &[S]) -> Option<Ahead> {
        (std::mem::size_of_val(states) >= Ahead::FROM_BYTES).then(|| Ahead {
            base: states.as_ptr().cast(),
            stride: std::mem::size_of::<S>(),
        })
    }

    #[inline(always)]
    fn fetch(self, g: u32) {
        prefetch(self.base.wrapping_add(g as usize * self.stride));
    }
}

/// Calls `f(group, value)` for each non-null row, with the state of the group
/// [`Ahead::ROWS`] rows on fetched first when `ahead` says where the states are.
fn each<T: Copy>(
    values: &[T],
    nulls: Option<&NullBuffer>,
    groups: &[u32],
    ahead: Option<Ahead>,
    mut f: impl FnMut(usize, T),
) {
    let fetch = |i: usize| {
        if let (Some(a), Some(&g)) = (ahead, groups.get(i + Ahead::ROWS)) {
            a.fetch(g);
        }
    };
    match (nulls, ahead.is_some()) {
        (None, false) => {
            for (&g, &v) in groups.iter().zip(values) {
                f(g as usize, v);
            }
        }
        (None, true) => {
            for (i, (&g, &v)) in groups.iter().zip(values).enumerate() {
                fetch(i);
                f(g as usize, v);
            }
        }
        (Some(n), _) => {
            for (i, (&g, &v)) in groups.iter().zip(values).enumerate() {
                fetch(i);
                if n.is_valid(i) {
                    f(g as usize, v);
                }
            }
        }
    }
}

/// Nulls where `seen` is false.
fn nulls_unless(seen: &[bool]) -> Option<NullBuffer> {
    if seen.iter().all(|&s| s) {
        None
    } else {
        Some(NullBuffer::from(seen.to_vec()))
    }
}

/// The validity of `a`'s rows, if any row is NULL.
fn some_nulls(nulls: Option<NullBuffer>) -> Option<NullBuffer> {
    nulls.filter(|n| n.null_count() > 0)
}

/// Which groups have had a value, for the aggregates that are NULL over none:
/// "every group" until a batch with a NULL comes, then a flag a group. A column
/// without NULLs (db-benchmark's, and most) then costs no write a row into a
/// second vector, which is a second cache miss a row once the groups outgrow
/// the caches (q3 at 1e8 rows: a million groups).
///
/// It relies on how a grouping numbers its groups: those from the previous
/// total up are new, and each has a row in the batch that made it, unless the
/// batch has no row (the one group of a keyless aggregation over nothing).
#[derive(Default)]
struct Seen {
    /// Groups so far.
    len: usize,
    /// Whether `flags` are kept: a batch had a NULL, or made groups of no row.
    kept: bool,
    /// Each group's flag, once kept.
    flags: Vec<bool>,
}

impl Seen {
    /// Takes a batch of `groups` over `total` groups, NULL where `nulls` says
    /// (`None` for no NULL: see [`some_nulls`]); returns the flags the batch's
    /// valid rows must set, or `None` when every group has had a value.
    fn batch(
        &mut self,
        nulls: Option<&NullBuffer>,
        groups: &[u32],
        total: usize,
    ) -> Option<&mut Vec<bool>> {
        let every_new_group_valued = nulls.is_none() && (total <= self.len || !groups.is_empty());
        if !self.kept && every_new_group_valued {
            self.len = self.len.max(total);
            return None;
        }
        if !self.kept {
            // Every group before this batch had a value; its own are set by
            // its rows.
            self.kept = true;
            self.flags = vec![true; self.len];
        }
        self.len = self.len.max(total);
        self.flags.resize(self.len, false);
        Some(&mut self.flags)
    }

    /// Nulls where a group had no value; empties the flags.
    fn take(&mut self) -> Option<NullBuffer> {
        let nulls = match self.kept {
            true => nulls_unless(&self.flags),
            false => None,
        };
        *self = Seen::default();
        nulls
    }

    fn size(&self) -> usize {
        self.flags.capacity()
    }
}

/// `count(x)` (non-null rows) or `count(*)` (rows: given no argument, or the
/// grouping's own row count).
#[derive(Default)]
struct Count {
    counts: Vec<i64>,
}

impl GroupsAccumulator for Count {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.counts.resize(total, 0);
        match args.first().and_then(|a| a.logical_nulls()) {
            Some(nulls) => {
                for (i, &g) in groups.iter().enumerate() {
                    if nulls.is_valid(i) {
                        self.counts[g as usize] += 1;
                    }
                }
            }
            None => {
                for &g in groups {
                    self.counts[g as usize] += 1;
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.counts.resize(total, 0);
        let c = ints(arg(states, 0)?)?;
        let c = c.as_primitive::<Int64Type>();
        let ahead = Ahead::of(&self.counts);
        each(c.values(), c.nulls(), groups, ahead, |g, v| {
            self.counts[g] += v
        });
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(std::mem::take(&mut self.counts))))
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8
    }
}

/// `sum` of integers in 64 bits (an overflow an error, as DuckDB's `BIGINT` sum
/// would be past its 128 bits) or of floats; NULL for a group of no value.
#[derive(Default)]
struct Sum<T: Ordered> {
    sums: Vec<T>,
    seen: Seen,
}

impl<T: Ordered> Sum<T> {
    fn add(&mut self, a: &ArrayRef, groups: &[u32], total: usize) -> Result<()> {
        self.sums.resize(total, T::default());
        let (values, nulls) = T::values(a)?;
        let mut overflow = false;
        let ahead = Ahead::of(&self.sums);
        let sums = &mut self.sums;
        match self.seen.batch(nulls.as_ref(), groups, total) {
            None => each(&values[..], None, groups, ahead, |g, v| {
                let (s, o) = T::plus(sums[g], v);
                sums[g] = s;
                overflow |= o;
            }),
            Some(seen) => each(&values[..], nulls.as_ref(), groups, ahead, |g, v| {
                let (s, o) = T::plus(sums[g], v);
                sums[g] = s;
                overflow |= o;
                seen[g] = true;
            }),
        }
        if overflow {
            return Err(Error::Usage(
                "sum: a group's integer sum overflows 64 bits; cast the column to a float \
                 (CAST(x AS DOUBLE)) to sum it"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl<T: Ordered> GroupsAccumulator for Sum<T> {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(args, 0)?, groups, total)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(states, 0)?, groups, total)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let nulls = self.seen.take();
        Ok(T::column(std::mem::take(&mut self.sums), nulls))
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<T>() + self.seen.size()
    }
}

/// `mean`: a float sum and a count, side by side, so that a row costs one
/// cache miss, not two, once the groups outgrow the caches.
#[derive(Default)]
struct Mean {
    states: Vec<SumCount>,
}

#[derive(Clone, Copy, Default)]
struct SumCount {
    sum: f64,
    count: i64,
}

impl GroupsAccumulator for Mean {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.states.resize(total, SumCount::default());
        let a = arg(args, 0)?;
        let ahead = Ahead::of(&self.states);
        let states = &mut self.states;
        let mut add = |g: usize, v: f64| {
            states[g].sum += v;
            states[g].count += 1;
        };
        // 64-bit integers (db-benchmark's v1 and v2) are read as they are, each
        // converted as a cast to floats would, without a cast column a batch.
        if let Some(ints) = a.as_primitive_opt::<Int64Type>() {
            let nulls = some_nulls(ints.nulls().cloned());
            each(ints.values(), nulls.as_ref(), groups, ahead, |g, v| {
                add(g, v as f64)
            });
            return Ok(());
        }
        let a = floats(a)?;
        let a = a.as_primitive::<Float64Type>();
        let nulls = some_nulls(a.nulls().cloned());
        each(a.values(), nulls.as_ref(), groups, ahead, add);
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.states.resize(total, SumCount::default());
        let s = floats(arg(states, 0)?)?;
        let c = ints(arg(states, 1)?)?;
        let (s, c) = (
            s.as_primitive::<Float64Type>(),
            c.as_primitive::<Int64Type>(),
        );
        for ((&g, &sum), &count) in groups.iter().zip(s.values()).zip(c.values()) {
            let state = &mut self.states[g as usize];
            state.sum += sum;
            state.count += count;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let states = std::mem::take(&mut self.states);
        Ok(vec![
            Arc::new(Float64Array::from_iter_values(states.iter().map(|s| s.sum))),
            Arc::new(Int64Array::from_iter_values(states.iter().map(|s| s.count))),
        ])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let states = std::mem::take(&mut self.states);
        Ok(Arc::new(
            states
                .iter()
                .map(|s| (s.count > 0).then(|| s.sum / s.count as f64))
                .collect::<Float64Array>(),
        ))
    }

    fn size(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<SumCount>()
    }
}

/// A value a sum, min or max keeps natively.
trait Ordered: arrow::datatypes::ArrowNativeType + Default + Send + 'static {
    /// `a + b`, and whether it overflowed.
    fn plus(a: Self, b: Self) -> (Self, bool);
    /// Whether `a` comes after `b` (NaN after everything, as DuckDB orders it).
    fn after(a: Self, b: Self) -> bool;
    /// The values of `a` as this type (no copy when it is already), and their
    /// validity if any is NULL.
    fn values(a: &ArrayRef) -> Result<(ScalarBuffer<Self>, Option<NullBuffer>)>;
    /// What no value replaces as a group's extreme: the first value of a group
    /// then needs no test of whether the group had one.
    fn below_all(max: bool) -> Self;
    fn column(values: Vec<Self>, nulls: Option<NullBuffer>) -> ArrayRef;
}

impl Ordered for i64 {
    fn plus(a: i64, b: i64) -> (i64, bool) {
        a.overflowing_add(b)
    }
    fn after(a: i64, b: i64) -> bool {
        a > b
    }
    fn values(a: &ArrayRef) -> Result<(ScalarBuffer<i64>, Option<NullBuffer>)> {
        let a = ints(a)?;
        let a = a.as_primitive::<Int64Type>();
        Ok((a.values().clone(), some_nulls(a.nulls().cloned())))
    }
    fn below_all(max: bool) -> i64 {
        if max {
            i64::MIN
        } else {
            i64::MAX
        }
    }
    fn column(values: Vec<i64>, nulls: Option<NullBuffer>) -> ArrayRef {
        Arc::new(Int64Array::new(values.into(), nulls))
    }
}

impl Ordered for f64 {
    fn plus(a: f64, b: f64) -> (f64, bool) {
        (a + b, false)
    }
    fn after(a: f64, b: f64) -> bool {
        match (a.is_nan(), b.is_nan()) {
            (true, nan) => !nan,
            (false, _) => a > b,
        }
    }
    fn values(a: &ArrayRef) -> Result<(ScalarBuffer<f64>, Option<NullBuffer>)> {
        let a = floats(a)?;
        let a = a.as_primitive::<Float64Type>();
        Ok((a.values().clone(), some_nulls(a.nulls().cloned())))
    }
    fn below_all(max: bool) -> f64 {
        // NaN comes after every number (see `after`): the least of nothing.
        if max {
            f64::NEG_INFINITY
        } else {
            f64::NAN
        }
    }
    fn column(values: Vec<f64>, nulls: Option<NullBuffer>) -> ArrayRef {
        Arc::new(Float64Array::new(values.into(), nulls))
    }
}

/// `min` or `max` of numbers, dates and times (held as 64-bit integers or floats
/// and cast back to the argument's type).
struct Extreme<T: Ordered> {
    max: bool,
    output: DataType,
    /// Each group's extreme so far; [`Ordered::below_all`] for none yet.
    values: Vec<T>,
    seen: Seen,
}

impl<T: Ordered> Extreme<T> {
    fn new(max: bool, output: DataType) -> Self {
        let output = match output {
            DataType::Dictionary(_, v) => *v,
            DataType::Decimal128(..) | DataType::Float16 => DataType::Float64,
            other => other,
        };
        Extreme {
            max,
            output,
            values: Vec::new(),
            seen: Seen::default(),
        }
    }

    fn add(&mut self, a: &ArrayRef, groups: &[u32], total: usize) -> Result<()> {
        let max = self.max;
        self.values.resize(total, T::below_all(max));
        let (v, nulls) = T::values(a)?;
        let ahead = Ahead::of(&self.values);
        let values = &mut self.values;
        let better = |x: T, cur: T| match max {
            true => T::after(x, cur),
            false => T::after(cur, x),
        };
        match self.seen.batch(nulls.as_ref(), groups, total) {
            None => each(&v[..], None, groups, ahead, |g, x| {
                if better(x, values[g]) {
                    values[g] = x;
                }
            }),
            Some(seen) => each(&v[..], nulls.as_ref(), groups, ahead, |g, x| {
                if better(x, values[g]) {
                    values[g] = x;
                }
                seen[g] = true;
            }),
        }
        Ok(())
    }

    fn take(&mut self) -> ArrayRef {
        let nulls = self.seen.take();
        T::column(std::mem::take(&mut self.values), nulls)
    }
}

impl<T: Ordered> GroupsAccumulator for Extreme<T> {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(args, 0)?, groups, total)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(states, 0)?, groups, total)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.take()])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let held = self.take();
        as_type(&held, &self.output)
    }

    fn size(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T>() + self.seen.size()
    }
}

/// `min` or `max` of strings.
struct TextExtreme {
    max: bool,
    values: Vec<Option<String>>,
}

impl TextExtreme {
    fn new(max: bool) -> Self {
        TextExtreme {
            max,
            values: Vec::new(),
        }
    }

    fn add(&mut self, a: &ArrayRef, groups: &[u32], total: usize) -> Result<()> {
        self.values.resize(total, None);
        let a = as_type(a, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        for (i, &g) in groups.iter().enumerate() {
            if a.is_null(i) {
                continue;
            }
            let x = a.value(i);
            let slot = &mut self.values[g as usize];
            let better = match slot {
                None => true,
                Some(cur) => {
                    if self.max {
                        x > cur.as_str()
                    } else {
                        x < cur.as_str()
                    }
                }
            };
            if better {
                *slot = Some(x.to_string());
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for TextExtreme {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(args, 0)?, groups, total)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(states, 0)?, groups, total)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let values = std::mem::take(&mut self.values);
        Ok(Arc::new(values.into_iter().collect::<StringArray>()))
    }

    fn size(&self) -> usize {
        self.values.capacity() * 24
            + self
                .values
                .iter()
                .map(|v| v.as_ref().map_or(0, String::capacity))
                .sum::<usize>()
    }
}

/// The values a positional aggregate keeps, one a group, natively: integers
/// (also dates, times and booleans), floats or strings.
enum Held {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl Held {
    fn of(t: &DataType) -> Held {
        match Physical::of(t) {
            Physical::Int => Held::Int(Vec::new()),
            Physical::Float => Held::Float(Vec::new()),
            Physical::Text => Held::Text(Vec::new()),
        }
    }

    fn resize(&mut self, total: usize) {
        match self {
            Held::Int(v) => v.resize(total, None),
            Held::Float(v) => v.resize(total, None),
            Held::Text(v) => v.resize(total, None),
        }
    }

    /// Sets the value of each group `g` of `rows` to row `i` of `a`.
    fn set(&mut self, a: &ArrayRef, rows: &[(usize, usize)]) -> Result<()> {
        match self {
            Held::Int(v) => {
                let a = ints(a)?;
                let a = a.as_primitive::<Int64Type>();
                for &(g, i) in rows {
                    v[g] = a.is_valid(i).then(|| a.value(i));
                }
            }
            Held::Float(v) => {
                let a = floats(a)?;
                let a = a.as_primitive::<Float64Type>();
                for &(g, i) in rows {
                    v[g] = a.is_valid(i).then(|| a.value(i));
                }
            }
            Held::Text(v) => {
                let a = as_type(a, &DataType::Utf8)?;
                let a = a.as_string::<i32>();
                for &(g, i) in rows {
                    v[g] = a.is_valid(i).then(|| a.value(i).to_string());
                }
            }
        }
        Ok(())
    }

    fn take(&mut self) -> ArrayRef {
        match self {
            Held::Int(v) => Arc::new(std::mem::take(v).into_iter().collect::<Int64Array>()),
            Held::Float(v) => Arc::new(std::mem::take(v).into_iter().collect::<Float64Array>()),
            Held::Text(v) => Arc::new(std::mem::take(v).into_iter().collect::<StringArray>()),
        }
    }

    fn size(&self) -> usize {
        match self {
            Held::Int(v) => v.capacity() * 16,
            Held::Float(v) => v.capacity() * 16,
            Held::Text(v) => {
                v.capacity() * 24 + v.iter().flatten().map(String::capacity).sum::<usize>()
            }
        }
    }
}

/// `first` or `last`: the value of the row with the smallest or largest
/// ordinal (its place in the file, the last argument), NULLs skipped or not.
/// Ordinals are unique, so partial states merge by the same rule in any order.
struct Positional {
    last: bool,
    skip_nulls: bool,
    output: DataType,
    /// The ordinal of each group's row so far (-1: none yet).
    ordinals: Vec<i64>,
    values: Held,
}

impl Positional {
    fn new(last: bool, skip_nulls: bool, arg: &DataType, output: DataType) -> Self {
        Positional {
            last,
            skip_nulls,
            output,
            ordinals: Vec::new(),
            values: Held::of(arg),
        }
    }

    /// Adds rows with values `a` and ordinals `ords`; NULL ordinals (a partial
    /// state of a group that had no value) are no row.
    fn add(&mut self, a: &ArrayRef, ords: &ArrayRef, groups: &[u32], total: usize) -> Result<()> {
        self.ordinals.resize(total, -1);
        self.values.resize(total);
        let ords = ints(ords)?;
        let ords = ords.as_primitive::<Int64Type>();
        let valid = if self.skip_nulls {
            a.logical_nulls()
        } else {
            None
        };
        // The rows that beat what their group had; a group's row is set once a
        // batch, from the last of them (ordinals are unique).
        let mut better = Vec::new();
        for (i, &g) in groups.iter().enumerate() {
            if ords.is_null(i) || valid.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let (o, g) = (ords.value(i), g as usize);
            let held = self.ordinals[g];
            if held < 0 || (o > held) == self.last {
                self.ordinals[g] = o;
                better.push((g, i));
            }
        }
        better.retain(|&(g, i)| self.ordinals[g] == ords.value(i));
        self.values.set(a, &better)
    }
}

impl GroupsAccumulator for Positional {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(args, 0)?, arg(args, 1)?, groups, total)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(states, 1)?, arg(states, 0)?, groups, total)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let seen: Vec<bool> = self.ordinals.iter().map(|&o| o >= 0).collect();
        let ordinals = Int64Array::new(
            std::mem::take(&mut self.ordinals).into(),
            nulls_unless(&seen),
        );
        Ok(vec![Arc::new(ordinals), self.values.take()])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        self.ordinals.clear();
        as_type(&self.values.take(), &self.output)
    }

    fn size(&self) -> usize {
        self.ordinals.capacity() * 8 + self.values.size()
    }
}

/// `var` / `std` (sample or population): count, mean and sum of squared
/// deviations per group, updated by Welford's method and merged by Chan's.
#[derive(Default)]
struct Moments {
    ddof: u8,
    root: bool,
    n: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Moments {
    fn grow(&mut self, total: usize) {
        self.n.resize(total, 0.0);
        self.mean.resize(total, 0.0);
        self.m2.resize(total, 0.0);
    }

    /// Merges a group's partial (`n`, `mean`, `m2`) into group `g`.
    fn combine(&mut self, g: usize, n: f64, mean: f64, m2: f64) {
        if n == 0.0 {
            return;
        }
        let na = self.n[g];
        let total = na + n;
        let d = mean - self.mean[g];
        self.mean[g] += d * n / total;
        self.m2[g] += m2 + d * d * na * n / total;
        self.n[g] = total;
    }
}

impl GroupsAccumulator for Moments {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.grow(total);
        let a = floats(arg(args, 0)?)?;
        let a = a.as_primitive::<Float64Type>();
        let (n, mean, m2) = (&mut self.n, &mut self.mean, &mut self.m2);
        each(a.values(), a.nulls(), groups, None, |g, x| {
            n[g] += 1.0;
            let d = x - mean[g];
            mean[g] += d / n[g];
            m2[g] += d * (x - mean[g]);
        });
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.grow(total);
        let cols = (0..3)
            .map(|i| floats(arg(states, i)?))
            .collect::<Result<Vec<_>>>()?;
        let [n, mean, m2] = [0, 1, 2].map(|i| cols[i].as_primitive::<Float64Type>());
        for (i, &g) in groups.iter().enumerate() {
            self.combine(g as usize, n.value(i), mean.value(i), m2.value(i));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok([&mut self.n, &mut self.mean, &mut self.m2]
            .into_iter()
            .map(|v| Arc::new(Float64Array::from(std::mem::take(v))) as ArrayRef)
            .collect())
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let ddof = f64::from(self.ddof);
        let out: Float64Array = self
            .n
            .iter()
            .zip(&self.m2)
            .map(|(&n, &m2)| {
                (n > ddof).then(|| {
                    let var = m2 / (n - ddof);
                    if self.root {
                        var.sqrt()
                    } else {
                        var
                    }
                })
            })
            .collect();
        self.state()?;
        Ok(Arc::new(out))
    }

    fn size(&self) -> usize {
        self.n.capacity() * 24
    }
}

/// `corr` and `covar_*` of two columns: count, means, and the sums of squared
/// deviations and of their products, per group, merged by Chan's formulas.
/// A group's six moments are one record: a row touches one cache line, not six.
#[derive(Default)]
struct CoMoments {
    func: AggFunc,
    moments: Vec<Co>,
}

/// One group's co-moments.
#[derive(Clone, Copy, Default)]
struct Co {
    n: f64,
    mean_x: f64,
    mean_y: f64,
    m2_x: f64,
    m2_y: f64,
    c_xy: f64,
}

impl Co {
    /// Adds one row (Welford's update).
    #[inline]
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        // One division a row, not two.
        let r = 1.0 / self.n;
        let dx = x - self.mean_x;
        let dy = y - self.mean_y;
        self.mean_x += dx * r;
        self.mean_y += dy * r;
        let ey = y - self.mean_y;
        self.m2_x += dx * (x - self.mean_x);
        self.m2_y += dy * ey;
        self.c_xy += dx * ey;
    }

    /// Adds another part's moments (Chan's formulas).
    fn combine(&mut self, b: Co) {
        if b.n == 0.0 {
            return;
        }
        let n = self.n + b.n;
        let dx = b.mean_x - self.mean_x;
        let dy = b.mean_y - self.mean_y;
        let w = self.n * b.n / n;
        self.mean_x += dx * b.n / n;
        self.mean_y += dy * b.n / n;
        self.m2_x += b.m2_x + dx * dx * w;
        self.m2_y += b.m2_y + dy * dy * w;
        self.c_xy += b.c_xy + dx * dy * w;
        self.n = n;
    }
}

impl GroupsAccumulator for CoMoments {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.moments.resize(total, Co::default());
        let x = floats(arg(args, 0)?)?;
        let y = floats(arg(args, 1)?)?;
        let (x, y) = (
            x.as_primitive::<Float64Type>(),
            y.as_primitive::<Float64Type>(),
        );
        let nulls = some_nulls(NullBuffer::union(x.nulls(), y.nulls()));
        let rows = groups.iter().zip(x.values().iter().zip(y.values()));
        let moments = &mut self.moments;
        match nulls {
            None => {
                for (&g, (&x, &y)) in rows {
                    moments[g as usize].add(x, y);
                }
            }
            Some(nulls) => {
                for (i, (&g, (&x, &y))) in rows.enumerate() {
                    if nulls.is_valid(i) {
                        moments[g as usize].add(x, y);
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.moments.resize(total, Co::default());
        let cols = (0..6)
            .map(|i| floats(arg(states, i)?))
            .collect::<Result<Vec<_>>>()?;
        let cols: Vec<&Float64Array> = cols.iter().map(|c| c.as_primitive()).collect();
        for (i, &g) in groups.iter().enumerate() {
            let [n, mean_x, mean_y, m2_x, m2_y, c_xy] =
                [0, 1, 2, 3, 4, 5].map(|k| cols[k].value(i));
            self.moments[g as usize].combine(Co {
                n,
                mean_x,
                mean_y,
                m2_x,
                m2_y,
                c_xy,
            });
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let moments = std::mem::take(&mut self.moments);
        let column = |f: fn(&Co) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(moments.iter().map(f)))
        };
        Ok(vec![
            column(|c| c.n),
            column(|c| c.mean_x),
            column(|c| c.mean_y),
            column(|c| c.m2_x),
            column(|c| c.m2_y),
            column(|c| c.c_xy),
        ])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let moments = std::mem::take(&mut self.moments);
        let out: Float64Array = moments
            .iter()
            .map(|c| match self.func {
                // DuckDB: NaN for one row or a constant column, NULL for none.
                AggFunc::Corr => (c.n > 0.0).then(|| c.c_xy / (c.m2_x * c.m2_y).sqrt()),
                AggFunc::Cov { ddof } => {
                    let ddof = f64::from(ddof);
                    (c.n > ddof).then(|| c.c_xy / (c.n - ddof))
                }
                _ => None,
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn size(&self) -> usize {
        self.moments.capacity() * std::mem::size_of::<Co>()
    }
}

/// `median`, `quantile_cont` and `quantile_disc`: every value of the group, kept
/// (the state grows with the group; the aggregation's reservation covers it),
/// interpolated linearly between the two closest ranks as DuckDB's
/// `quantile_cont`, or the value at one rank as its `quantile_disc`.
struct Quantile {
    q: f64,
    discrete: bool,
    values: Vec<Vec<f64>>,
    /// The values' capacities summed: what they hold, with the room each
    /// vector's doubling leaves (up to as much again, which counting the values
    /// alone left out of the reservation: q6 at 1e8 rows had 0.5 GB reserved
    /// and 0.9-1.15 GB resident).
    held: usize,
}

impl Quantile {
    fn new(q: f64, discrete: bool) -> Self {
        Quantile {
            q,
            discrete,
            values: Vec::new(),
            held: 0,
        }
    }
}

impl GroupsAccumulator for Quantile {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.values.resize_with(total, Vec::new);
        let a = floats(arg(args, 0)?)?;
        let a = a.as_primitive::<Float64Type>();
        let (values, held) = (&mut self.values, &mut self.held);
        each(a.values(), a.nulls(), groups, None, |g, x| {
            let v = &mut values[g];
            if v.len() == v.capacity() {
                let before = v.capacity();
                v.reserve(1);
                *held += v.capacity() - before;
            }
            v.push(x);
        });
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.values.resize_with(total, Vec::new);
        let lists = arg(states, 0)?.as_list::<i32>();
        for (i, &g) in groups.iter().enumerate() {
            if lists.is_null(i) {
                continue;
            }
            let inner = lists.value(i);
            let inner = inner.as_primitive::<Float64Type>();
            let v = &mut self.values[g as usize];
            let before = v.capacity();
            v.extend_from_slice(inner.values());
            self.held += v.capacity() - before;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let values = std::mem::take(&mut self.values);
        self.held = 0;
        let offsets = OffsetBuffer::from_lengths(values.iter().map(Vec::len));
        let flat: Float64Array = values.into_iter().flatten().collect::<Vec<f64>>().into();
        let field = Arc::new(Field::new("item", DataType::Float64, false));
        Ok(vec![Arc::new(ListArray::try_new(
            field,
            offsets,
            Arc::new(flat),
            None,
        )?)])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let values = std::mem::take(&mut self.values);
        self.held = 0;
        let q = self.q;
        let pick = if self.discrete {
            quantile_disc
        } else {
            quantile_cont
        };
        Ok(Arc::new(
            values
                .into_iter()
                .map(|mut v| pick(&mut v, q))
                .collect::<Float64Array>(),
        ))
    }

    fn size(&self) -> usize {
        self.values.capacity() * 24 + self.held * 8
    }
}

/// The `q` quantile of `v` interpolated between ranks (`None` for no values);
/// reorders `v`.
fn quantile_cont(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f64::total_cmp);
    if hi == lo {
        return Some(a);
    }
    // The next rank is the smallest of what follows.
    let b = rest.iter().copied().fold(f64::INFINITY, f64::min);
    Some(a + (b - a) * (pos - lo as f64))
}

/// The value at rank `ceil(n * q)` of `v` (1-based; the first for `q = 0`), as
/// DuckDB's `quantile_disc` picks it (`None` for no values); reorders `v`.
fn quantile_disc(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    // Computed in floats as DuckDB does (`10 * 0.3` is just above 3: rank 4).
    let rank = (n as f64 * q).ceil() as usize;
    let index = rank.saturating_sub(1).min(n - 1);
    let (_, &mut x, _) = v.select_nth_unstable_by(index, f64::total_cmp);
    Some(x)
}

/// `any` / `all` (SQL's `bool_or` / `bool_and`): NULL for a group of nulls.
struct Truth {
    any: bool,
    values: Vec<Option<bool>>,
}

impl Truth {
    fn add(&mut self, a: &ArrayRef, groups: &[u32], total: usize) -> Result<()> {
        self.values.resize(total, None);
        let a = as_type(a, &DataType::Boolean)?;
        let a = a.as_boolean();
        for (i, &g) in groups.iter().enumerate() {
            if a.is_null(i) {
                continue;
            }
            let x = a.value(i);
            let slot = &mut self.values[g as usize];
            *slot = Some(match *slot {
                None => x,
                Some(cur) if self.any => cur || x,
                Some(cur) => cur && x,
            });
        }
        Ok(())
    }
}

impl GroupsAccumulator for Truth {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(args, 0)?, groups, total)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total: usize) -> Result<()> {
        self.add(arg(states, 0)?, groups, total)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let mut b = BooleanBuilder::with_capacity(self.values.len());
        for v in self.values.drain(..) {
            b.append_option(v);
        }
        let out: BooleanArray = b.finish();
        Ok(Arc::new(out))
    }

    fn size(&self) -> usize {
        self.values.capacity() * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile_cont(&mut [3.0, 1.0, 2.0, 4.0], 0.5), Some(2.5));
        assert_eq!(quantile_cont(&mut [3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(
            quantile_cont(&mut [5.0, 1.0, 2.0, 4.0, 3.0], 0.25),
            Some(2.0)
        );
        assert_eq!(quantile_cont(&mut [], 0.5), None);
    }

    fn ints(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    fn floats(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    /// Batches of groups numbered as a grouping numbers them (new groups from
    /// the previous total up, each with a row): a batch without NULLs, one
    /// whose NULLs leave a new group and an old one valueless, and one that
    /// gives the new group a value. The flags are kept from the first NULL on,
    /// with every group before it valued.
    #[test]
    fn groups_of_no_value_are_null_whenever_the_nulls_come() {
        for func in [AggFunc::Sum, AggFunc::Min, AggFunc::Max] {
            let mut acc = accumulator(&func, &[DataType::Int64]).unwrap();
            acc.update(&[ints(&[Some(5), Some(-7), Some(2)])], &[0, 1, 0], 2)
                .unwrap();
            acc.update(&[ints(&[None, Some(1), None])], &[2, 1, 3], 4)
                .unwrap();
            let mid = acc.state().unwrap();
            let want: [Option<i64>; 4] = match func {
                AggFunc::Sum => [Some(7), Some(-6), None, None],
                AggFunc::Min => [Some(2), Some(-7), None, None],
                _ => [Some(5), Some(1), None, None],
            };
            assert_eq!(
                mid[0].as_primitive::<Int64Type>(),
                &Int64Array::from(want.to_vec()),
                "{func:?}"
            );
            // Emptied by `state`: the next batch starts the numbering again,
            // and a keyless aggregation over no row (a group of no row) is NULL.
            acc.update(&[ints(&[Some(4)])], &[0], 1).unwrap();
            acc.merge(&[ints(&[])], &[], 2).unwrap();
            acc.update(&[ints(&[Some(9), None])], &[1, 2], 3).unwrap();
            let out = acc.evaluate().unwrap();
            assert_eq!(
                out.as_primitive::<Int64Type>(),
                &Int64Array::from(vec![Some(4), Some(9), None]),
                "{func:?}"
            );
        }
    }

    /// The first value of a group replaces what no value leaves, whatever it
    /// is: the least or greatest integer, an infinity, a NaN (after every
    /// number, as DuckDB orders it).
    #[test]
    fn extremes_take_any_first_value() {
        let mut max = accumulator(&AggFunc::Max, &[DataType::Int64]).unwrap();
        max.update(&[ints(&[Some(i64::MIN), Some(i64::MAX)])], &[0, 1], 2)
            .unwrap();
        let out = max.evaluate().unwrap();
        assert_eq!(
            out.as_primitive::<Int64Type>().values(),
            &[i64::MIN, i64::MAX]
        );
        assert_eq!(out.null_count(), 0);

        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let xs = floats(&[Some(-inf), Some(nan), Some(inf), Some(nan), Some(1.0)]);
        let groups = [0, 1, 2, 3, 3];
        let mut max = accumulator(&AggFunc::Max, &[DataType::Float64]).unwrap();
        max.update(std::slice::from_ref(&xs), &groups, 4).unwrap();
        let got = max.evaluate().unwrap();
        let got = got.as_primitive::<Float64Type>().values();
        assert_eq!(got[0], -inf);
        assert!(got[1].is_nan() && got[3].is_nan());
        assert_eq!(got[2], inf);
        let mut min = accumulator(&AggFunc::Min, &[DataType::Float64]).unwrap();
        min.update(&[xs], &groups, 4).unwrap();
        let got = min.evaluate().unwrap();
        let got = got.as_primitive::<Float64Type>().values();
        assert_eq!((got[0], got[2], got[3]), (-inf, inf, 1.0));
        assert!(got[1].is_nan());
    }

    /// A mean's partial state is its sum and count, merged from parts as one.
    #[test]
    fn partial_means_merge_to_the_whole() {
        let xs = floats(&[Some(1.0), None, Some(2.0), Some(6.0), None]);
        let mut part = accumulator(&AggFunc::Mean, &[DataType::Float64]).unwrap();
        part.update(&[xs], &[0, 1, 0, 2, 2], 3).unwrap();
        let state = part.state().unwrap();
        let mut whole = accumulator(&AggFunc::Mean, &[DataType::Float64]).unwrap();
        whole.merge(&state, &[1, 0, 2], 3).unwrap();
        whole.merge(&state, &[1, 0, 2], 3).unwrap();
        let out = whole.evaluate().unwrap();
        assert_eq!(
            out.as_primitive::<Float64Type>(),
            &Float64Array::from(vec![None, Some(1.5), Some(6.0)])
        );
    }

    #[test]
    fn partial_moments_merge_to_the_whole() {
        let xs: Vec<f64> = (0..100).map(|i| f64::from(i).sin() * 10.0 + 3.0).collect();
        let whole = {
            let mut m = accumulator(&AggFunc::Var { ddof: 1 }, &[DataType::Float64]).unwrap();
            let a: ArrayRef = Arc::new(Float64Array::from(xs.clone()));
            m.update(&[a], &[0; 100], 1).unwrap();
            m.evaluate().unwrap()
        };
        let mut merged = accumulator(&AggFunc::Var { ddof: 1 }, &[DataType::Float64]).unwrap();
        for part in xs.chunks(30) {
            let mut p = accumulator(&AggFunc::Var { ddof: 1 }, &[DataType::Float64]).unwrap();
            let a: ArrayRef = Arc::new(Float64Array::from(part.to_vec()));
            p.update(&[a], &vec![0; part.len()], 1).unwrap();
            merged.merge(&p.state().unwrap(), &[0], 1).unwrap();
        }
        let merged = merged.evaluate().unwrap();
        let (w, m) = (
            whole.as_primitive::<Float64Type>().value(0),
            merged.as_primitive::<Float64Type>().value(0),
        );
        assert!((w - m).abs() <= 1e-12 * w.abs(), "{w} {m}");
    }
}
