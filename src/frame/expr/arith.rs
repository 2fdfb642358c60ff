//! Binary operations once typed: arrow's kernels (checked arithmetic,
//! comparisons, Kleene logic, temporal arithmetic) and ours where arrow has none:
//! floor and truncating integer division and remainders (NULL on a zero
//! divisor), `**`, date ± days.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ArrowNativeTypeOp, AsArray, PrimitiveArray};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::kernels::{boolean, numeric};
use arrow::datatypes::*;
use arrow::error::ArrowError;

use super::coerce::{type_error, BinaryPlan, Kernel};
use super::eval::compare;
use super::value::{bools, Value};
use super::{BinaryOp, Expr};
use crate::{Error, Result};

/// Runs `plan` on `l` and `r` (the operands of `whole`, on `rows` rows).
pub(super) fn apply(
    plan: &BinaryPlan,
    l: Value,
    r: Value,
    rows: usize,
    whole: &Expr,
) -> Result<Value> {
    let scalar = l.is_scalar() && r.is_scalar();
    if plan.kernel == Kernel::AllNull {
        return Ok(Value::null(&plan.out));
    }
    let l = l.cast(&plan.left_to, whole)?;
    let r = r.cast(&plan.right_to, whole)?;
    let err = |e| arrow_error(whole, e);
    let out: ArrayRef = match plan.kernel {
        Kernel::Compare(op) => return Ok(bools(compare(op, &l, &r)?, scalar)),
        Kernel::Logic(op) => {
            let n = if scalar { 1 } else { rows };
            let (la, ra) = (l.into_array(n)?, r.into_array(n)?);
            let f = if op == BinaryOp::And {
                boolean::and_kleene
            } else {
                boolean::or_kleene
            };
            return Ok(bools(f(la.as_boolean(), ra.as_boolean())?, scalar));
        }
        Kernel::Concat => {
            let n = if scalar { 1 } else { rows };
            let (la, ra) = (l.into_array(n)?, r.into_array(n)?);
            Arc::new(
                arrow::compute::kernels::concat_elements::concat_elements_utf8(
                    la.as_string::<i32>(),
                    ra.as_string::<i32>(),
                )?,
            )
        }
        Kernel::DatePlusDays { subtract, swap } => {
            let (date, days) = if swap { (r, l) } else { (l, r) };
            let date = date.cast(&DataType::Int32, whole)?;
            let f = if subtract { numeric::sub } else { numeric::add };
            let sum = f(&date.datum(), &days.datum()).map_err(err)?;
            return Value::from_kernel(sum, scalar).cast(&DataType::Date32, whole);
        }
        Kernel::DaysBetween => {
            let l = l
                .cast(&DataType::Int32, whole)?
                .cast(&DataType::Int64, whole)?;
            let r = r
                .cast(&DataType::Int32, whole)?
                .cast(&DataType::Int64, whole)?;
            numeric::sub(&l.datum(), &r.datum()).map_err(err)?
        }
        Kernel::AllNull => unreachable!("handled above"),
        Kernel::Arith(op) => arith(op, &l, &r, whole)?,
    };
    Ok(Value::from_kernel(out, scalar))
}

/// An arithmetic operator on two operands of one numeric (or temporal) type.
fn arith(op: BinaryOp, l: &Value, r: &Value, whole: &Expr) -> Result<ArrayRef> {
    use BinaryOp as B;
    let err = |e| arrow_error(whole, e);
    let (ld, rd) = (l.datum(), r.datum());
    let t = l.data_type().clone();
    match op {
        B::Add => numeric::add(&ld, &rd).map_err(err),
        B::Subtract => numeric::sub(&ld, &rd).map_err(err),
        B::Multiply => numeric::mul(&ld, &rd).map_err(err),
        // Floats only (the plan converts): IEEE's inf and NaN on zero.
        B::Divide => numeric::div(&ld, &rd).map_err(err),
        B::Power => float_op::<Float64Type>(l, r, f64::powf),
        B::Modulo | B::FloorModulo | B::FloorDivide | B::TruncDivide if t.is_floating() => {
            macro_rules! float {
                ($ty:ty, $n:ty) => {
                    match op {
                        B::Modulo => float_op::<$ty>(l, r, |a: $n, b: $n| a % b),
                        B::FloorModulo => float_op::<$ty>(l, r, |a: $n, b: $n| {
                            let m = a % b;
                            if m != 0.0 && ((m < 0.0) != (b < 0.0)) {
                                m + b
                            } else {
                                m
                            }
                        }),
                        B::FloorDivide => float_op::<$ty>(l, r, |a: $n, b: $n| (a / b).floor()),
                        // DuckDB's `//` on floats is a plain division.
                        _ => float_op::<$ty>(l, r, |a: $n, b: $n| a / b),
                    }
                };
            }
            match t {
                DataType::Float32 => float!(Float32Type, f32),
                _ => float!(Float64Type, f64),
            }
        }
        B::Modulo | B::FloorModulo | B::FloorDivide | B::TruncDivide => {
            macro_rules! int {
                ($ty:ty) => {
                    int_division::<$ty>(op, l, r, whole)
                };
            }
            match t {
                DataType::Int8 => int!(Int8Type),
                DataType::Int16 => int!(Int16Type),
                DataType::Int32 => int!(Int32Type),
                DataType::Int64 => int!(Int64Type),
                DataType::UInt8 => int!(UInt8Type),
                DataType::UInt16 => int!(UInt16Type),
                DataType::UInt32 => int!(UInt32Type),
                DataType::UInt64 => int!(UInt64Type),
                t => Err(type_error(
                    whole,
                    format!(
                        "{} does not apply to {}",
                        op.symbol(),
                        crate::storage::type_name(&t)
                    ),
                )),
            }
        }
        other => Err(Error::bug("an arithmetic operator", other.symbol())),
    }
}

/// The operands' values and validity, a scalar as one repeated value.
struct Side<'a, T: ArrowPrimitiveType> {
    values: &'a [T::Native],
    nulls: Option<&'a NullBuffer>,
    scalar: bool,
}

impl<'a, T: ArrowPrimitiveType> Side<'a, T> {
    fn new(v: &'a Value) -> Self {
        let a = v.array().as_primitive::<T>();
        Side {
            values: a.values(),
            nulls: a.nulls(),
            scalar: v.is_scalar(),
        }
    }
    #[inline]
    fn get(&self, i: usize) -> T::Native {
        self.values[if self.scalar { 0 } else { i }]
    }
    fn len(&self) -> usize {
        self.values.len()
    }
}

/// The union of the operands' nulls over `len` rows.
fn nulls_of<T: ArrowPrimitiveType>(l: &Side<T>, r: &Side<T>, len: usize) -> Option<NullBuffer> {
    let expand = |s: &Side<T>| -> Option<NullBuffer> {
        match (s.scalar, s.nulls) {
            (true, Some(n)) if n.is_null(0) => Some(NullBuffer::new_null(len)),
            (true, _) => None,
            (false, n) => n.cloned(),
        }
    };
    NullBuffer::union(expand(l).as_ref(), expand(r).as_ref())
}

/// A float operation on every row (scalars broadcast).
pub(super) fn float_op<T: ArrowPrimitiveType>(
    l: &Value,
    r: &Value,
    f: impl Fn(T::Native, T::Native) -> T::Native,
) -> Result<ArrayRef>
where
    PrimitiveArray<T>: From<Vec<T::Native>>,
{
    let (ls, rs) = (Side::<T>::new(l), Side::<T>::new(r));
    let len = if ls.scalar { rs.len() } else { ls.len() };
    let values: ScalarBuffer<T::Native> = (0..len).map(|i| f(ls.get(i), rs.get(i))).collect();
    let nulls = nulls_of(&ls, &rs, len);
    Ok(Arc::new(PrimitiveArray::<T>::new(values, nulls)))
}

/// Integer `//` and `%`, floor or truncating: NULL where the divisor is zero, an
/// error for the one overflowing quotient (`MIN // -1`).
fn int_division<T: ArrowPrimitiveType>(
    op: BinaryOp,
    l: &Value,
    r: &Value,
    whole: &Expr,
) -> Result<ArrayRef>
where
    T::Native: ArrowNativeTypeOp + Ord,
{
    let (ls, rs) = (Side::<T>::new(l), Side::<T>::new(r));
    let len = if ls.scalar { rs.len() } else { ls.len() };
    let zero = T::Native::ZERO;
    let mut nulls = nulls_of(&ls, &rs, len);
    let mut zero_divisor = false;
    let mut overflow = None;
    let floor = matches!(op, BinaryOp::FloorDivide | BinaryOp::FloorModulo);
    let quotient = matches!(op, BinaryOp::FloorDivide | BinaryOp::TruncDivide);
    let values: ScalarBuffer<T::Native> = (0..len)
        .map(|i| {
            let (a, b) = (ls.get(i), rs.get(i));
            if b == zero {
                zero_divisor = true;
                return zero;
            }
            let (q, m) = match (a.div_checked(b), a.mod_checked(b)) {
                (Ok(q), Ok(m)) => (q, m),
                _ => {
                    // Only MIN / -1 overflows; a NULL row holds any value, so only a
                    // valid one is an error.
                    if nulls.as_ref().is_none_or(|n| n.is_valid(i)) && overflow.is_none() {
                        overflow = Some(i);
                    }
                    return zero;
                }
            };
            // Truncation rounds toward zero; the floor differs when the remainder
            // is non-zero and the operands' signs differ.
            let adjust = floor && m != zero && ((m < zero) != (b < zero));
            match (quotient, adjust) {
                (true, false) => q,
                (true, true) => q.sub_wrapping(T::Native::ONE),
                (false, false) => m,
                (false, true) => m.add_wrapping(b),
            }
        })
        .collect();
    if let Some(i) = overflow {
        return Err(type_error(
            whole,
            format!(
                "overflow in {} of {} ({:?} {} {:?})",
                if quotient { "division" } else { "remainder" },
                crate::storage::type_name(&T::DATA_TYPE),
                ls.get(i),
                op.symbol(),
                rs.get(i)
            ),
        ));
    }
    if zero_divisor {
        let nonzero = arrow::buffer::BooleanBuffer::collect_bool(len, |i| rs.get(i) != zero);
        let nonzero = NullBuffer::new(nonzero);
        nulls = NullBuffer::union(nulls.as_ref(), Some(&nonzero));
    }
    Ok(Arc::new(PrimitiveArray::<T>::new(values, nulls)))
}

/// Maps an arrow error from a kernel on `whole`'s operands to our error: an
/// overflow names the operation and values (DuckDB's "Overflow in addition").
pub(super) fn arrow_error(whole: &Expr, e: ArrowError) -> Error {
    let what = match whole {
        Expr::Binary { op, .. } => match op {
            BinaryOp::Add => "addition",
            BinaryOp::Subtract => "subtraction",
            BinaryOp::Multiply => "multiplication",
            _ => "arithmetic",
        },
        Expr::Negative(_) => "negation",
        _ => "arithmetic",
    };
    match e {
        ArrowError::ArithmeticOverflow(detail) => {
            type_error(whole, format!("overflow in {what}: {detail}"))
        }
        ArrowError::ComputeError(detail) | ArrowError::InvalidArgumentError(detail) => {
            type_error(whole, format!("{what} failed: {detail}"))
        }
        e => Error::Arrow(e),
    }
}
