//! The numeric functions: `abs`, `round`, `floor`, `ceil`, `sign`, `isnan` keep
//! (or test) the input's type; `sqrt`, `exp`, the logarithms and `pow` work in
//! float64, as DuckDB's do (a negative `sqrt` or `ln` is NaN, not an error).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, PrimitiveArray,
};
use arrow::compute::kernels::arity::{try_unary, unary};
use arrow::datatypes::*;

use super::coerce::{logical, type_error};
use super::functions::Func;
use super::value::Value;
use super::Expr;
use crate::{Error, Result};

/// The type `abs`, `round`, `floor`, `ceil` give for input of type `t`.
pub(super) fn same_numeric(t: &DataType) -> DataType {
    match logical(t) {
        t if t.is_integer()
            || matches!(t, DataType::Float32 | DataType::Float64 | DataType::Null) =>
        {
            t.clone()
        }
        _ => DataType::Float64,
    }
}

/// Dispatches on an integer or float type; `$int` and `$float` are macros given
/// the arrow type.
macro_rules! numeric_dispatch {
    ($t:expr, $int:ident, $float:ident, $other:expr) => {
        match $t {
            DataType::Int8 => $int!(Int8Type),
            DataType::Int16 => $int!(Int16Type),
            DataType::Int32 => $int!(Int32Type),
            DataType::Int64 => $int!(Int64Type),
            DataType::UInt8 => $int!(UInt8Type),
            DataType::UInt16 => $int!(UInt16Type),
            DataType::UInt32 => $int!(UInt32Type),
            DataType::UInt64 => $int!(UInt64Type),
            DataType::Float32 => $float!(Float32Type),
            DataType::Float64 => $float!(Float64Type),
            _ => $other,
        }
    };
}

/// The value of numeric function `func` of `v` (`whole` for messages).
pub(super) fn evaluate(whole: &Expr, func: Func, v: &[Value], scalar: bool) -> Result<Value> {
    use Func as F;
    let t = same_numeric(v[0].data_type());
    let x = v[0].clone().cast(&t, whole)?;
    let a = x.array();
    let bad = || Error::bug("a numeric function's argument", a.data_type());
    let out: ArrayRef = match func {
        F::Abs => {
            macro_rules! int {
                ($ty:ty) => {{
                    let p = a.as_primitive::<$ty>();
                    let r: PrimitiveArray<$ty> = try_unary(p, |x| {
                        x.checked_abs().ok_or_else(|| {
                            arrow::error::ArrowError::ArithmeticOverflow(format!("abs({x})"))
                        })
                    })
                    .map_err(|e| super::arith::arrow_error(whole, e))?;
                    Arc::new(r) as ArrayRef
                }};
            }
            macro_rules! uint {
                ($ty:ty) => {
                    a.clone()
                };
            }
            macro_rules! float {
                ($ty:ty) => {
                    Arc::new(unary::<_, _, $ty>(a.as_primitive::<$ty>(), |x| x.abs())) as ArrayRef
                };
            }
            match &t {
                DataType::Int8 => int!(Int8Type),
                DataType::Int16 => int!(Int16Type),
                DataType::Int32 => int!(Int32Type),
                DataType::Int64 => int!(Int64Type),
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                    uint!(())
                }
                DataType::Float32 => float!(Float32Type),
                DataType::Float64 => float!(Float64Type),
                _ => return Err(bad()),
            }
        }
        F::Floor | F::Ceil => {
            let ceil = func == F::Ceil;
            macro_rules! int {
                ($ty:ty) => {
                    a.clone()
                };
            }
            macro_rules! float {
                ($ty:ty) => {
                    Arc::new(unary::<_, _, $ty>(a.as_primitive::<$ty>(), |x| {
                        if ceil {
                            x.ceil()
                        } else {
                            x.floor()
                        }
                    })) as ArrayRef
                };
            }
            numeric_dispatch!(&t, int, float, return Err(bad()))
        }
        F::Round => round(whole, a, &t, v.get(1))?,
        F::Sign => {
            macro_rules! int {
                ($ty:ty) => {{
                    let zero = <$ty as ArrowPrimitiveType>::Native::default();
                    Arc::new(unary::<_, _, Int8Type>(a.as_primitive::<$ty>(), |x| {
                        (x > zero) as i8 - (x < zero) as i8
                    })) as ArrayRef
                }};
            }
            macro_rules! float {
                ($ty:ty) => {{
                    let zero = <$ty as ArrowPrimitiveType>::Native::default();
                    Arc::new(unary::<_, _, Int8Type>(a.as_primitive::<$ty>(), |x| {
                        (x > zero) as i8 - (x < zero) as i8
                    })) as ArrayRef
                }};
            }
            numeric_dispatch!(&t, int, float, return Err(bad()))
        }
        F::IsNan => {
            let nan = |values: arrow::buffer::BooleanBuffer| {
                Arc::new(BooleanArray::new(values, a.nulls().cloned())) as ArrayRef
            };
            match &t {
                DataType::Float32 => {
                    let p = a.as_primitive::<Float32Type>();
                    nan(arrow::buffer::BooleanBuffer::collect_bool(p.len(), |i| {
                        p.value(i).is_nan()
                    }))
                }
                DataType::Float64 => {
                    let p = a.as_primitive::<Float64Type>();
                    nan(arrow::buffer::BooleanBuffer::collect_bool(p.len(), |i| {
                        p.value(i).is_nan()
                    }))
                }
                _ => nan(arrow::buffer::BooleanBuffer::new_unset(a.len())),
            }
        }
        F::Sqrt | F::Exp | F::Ln | F::Log10 | F::Log2 | F::Log if v.len() == 1 => {
            let x = v[0].clone().cast(&DataType::Float64, whole)?;
            let f: fn(f64) -> f64 = match func {
                F::Sqrt => f64::sqrt,
                F::Exp => f64::exp,
                F::Ln => f64::ln,
                F::Log2 => f64::log2,
                // DuckDB's one-argument log is base 10.
                _ => f64::log10,
            };
            Arc::new(unary::<_, _, Float64Type>(
                x.array().as_primitive::<Float64Type>(),
                f,
            ))
        }
        F::Log | F::Pow => {
            let (l, r) = (
                v[0].clone().cast(&DataType::Float64, whole)?,
                v[1].clone().cast(&DataType::Float64, whole)?,
            );
            let l = if l.is_scalar() && !scalar {
                Value::Array(l.into_array(v[1].array().len())?)
            } else {
                l
            };
            if func == F::Pow {
                super::arith::float_op::<Float64Type>(&l, &r, f64::powf)?
            } else {
                // log(b, x), DuckDB's order.
                super::arith::float_op::<Float64Type>(&l, &r, |b, x| x.ln() / b.ln())?
            }
        }
        _ => return Err(Error::bug("a numeric function", format!("{func:?}"))),
    };
    Ok(Value::from_kernel(out, scalar))
}

/// `round(x[, digits])`: half away from zero, as DuckDB; negative digits round to
/// tens, hundreds (integers stay integers, checked).
fn round(whole: &Expr, a: &ArrayRef, t: &DataType, digits: Option<&Value>) -> Result<ArrayRef> {
    let digits = match digits {
        None => 0,
        Some(d) if d.is_scalar() => {
            let d = d.clone().cast(&DataType::Int64, whole)?;
            let d = d.array().as_primitive::<Int64Type>();
            if d.is_null(0) {
                return Ok(arrow::array::new_null_array(t, a.len()));
            }
            d.value(0)
        }
        Some(_) => {
            return Err(type_error(
                whole,
                "round: the number of digits must be a constant",
            ))
        }
    };
    macro_rules! float {
        ($ty:ty) => {{
            let p = a.as_primitive::<$ty>();
            let r = if digits == 0 {
                unary::<_, _, $ty>(p, |x| x.round())
            } else {
                let factor = 10f64.powi(digits.clamp(-400, 400) as i32);
                unary::<_, _, $ty>(p, |x| ((x as f64 * factor).round() / factor) as _)
            };
            Arc::new(r) as ArrayRef
        }};
    }
    macro_rules! int {
        ($ty:ty) => {{
            if digits >= 0 {
                a.clone()
            } else {
                let p = a.as_primitive::<$ty>();
                // 10^19 passes every 64-bit integer: the result is 0.
                let step = 10i128
                    .checked_pow((-digits).min(20) as u32)
                    .unwrap_or(i128::MAX);
                let r: PrimitiveArray<$ty> = try_unary(p, |x| {
                    let xi = x as i128;
                    let (q, m) = (xi / step, xi % step);
                    let q = if m.abs() * 2 >= step {
                        q + xi.signum()
                    } else {
                        q
                    };
                    <_>::try_from(q * step).map_err(|_| {
                        arrow::error::ArrowError::ArithmeticOverflow(format!(
                            "round({x}, {digits})"
                        ))
                    })
                })
                .map_err(|e| super::arith::arrow_error(whole, e))?;
                Arc::new(r) as ArrayRef
            }
        }};
    }
    Ok(numeric_dispatch!(
        t,
        int,
        float,
        return Err(Error::bug("round of", t))
    ))
}

/// `__row_random(seed, ordinal)` of each row: SplitMix64's mix of the two,
/// its top 53 bits as a fraction. NULL where either is NULL.
pub(super) fn row_random(seeds: &Int64Array, ordinals: &Int64Array) -> Result<Float64Array> {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    Ok(arrow::compute::kernels::arity::binary(
        seeds,
        ordinals,
        |seed, ordinal| {
            let z = mix((seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ordinal as u64);
            (mix(z.wrapping_add(0x9e37_79b9_7f4a_7c15)) >> 11) as f64 / (1u64 << 53) as f64
        },
    )?)
}
