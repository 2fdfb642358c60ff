//! Elementwise operations on tiles, numpy's ufuncs by name.
//!
//! The kernel trusts the types the array layer chose ([`super::super::graph`]): both
//! operands of a binary operation have one physical type, already cast; the result
//! of a comparison or a test is `bool`, every other result has the operands' type.
//! Operations that do not apply to a type (`bitwise_and` on floats) are refused
//! before a plan is made, so reaching one here is a bug.

use serde::{Deserialize, Serialize};

use num_complex::{Complex32, Complex64};

use super::math;
use super::values::Values;
use crate::error::{Error, Result};

/// A one-operand ufunc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // numpy's names
pub enum UnaryOp {
    Negative,
    Invert,
    Absolute,
    Sign,
    Floor,
    Ceil,
    Trunc,
    Rint,
    Isnan,
    Isinf,
    Isfinite,
    Sqrt,
    Cbrt,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Real,
    Imag,
    Conjugate,
    Angle,
}

/// A two-operand ufunc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // numpy's names
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    TrueDivide,
    FloorDivide,
    Remainder,
    Power,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    Maximum,
    Minimum,
    Arctan2,
    Hypot,
}

impl UnaryOp {
    /// Numpy's name of the ufunc.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether the result is `bool` whatever the operand.
    pub fn is_test(self) -> bool {
        matches!(self, UnaryOp::Isnan | UnaryOp::Isinf | UnaryOp::Isfinite)
    }

    /// Whether it computes in floating point only (an integer operand is cast to
    /// `float64` first, or the smallest float holding it, as numpy's loops do).
    pub fn is_float_only(self) -> bool {
        self.math().is_some()
    }

    /// The vectorized math function it is, if it is one.
    pub fn math(self) -> Option<math::Unary> {
        Some(match self {
            UnaryOp::Sqrt => math::Unary::Sqrt,
            UnaryOp::Cbrt => math::Unary::Cbrt,
            UnaryOp::Exp => math::Unary::Exp,
            UnaryOp::Expm1 => math::Unary::Expm1,
            UnaryOp::Log => math::Unary::Log,
            UnaryOp::Log1p => math::Unary::Log1p,
            UnaryOp::Log2 => math::Unary::Log2,
            UnaryOp::Log10 => math::Unary::Log10,
            UnaryOp::Sin => math::Unary::Sin,
            UnaryOp::Cos => math::Unary::Cos,
            UnaryOp::Tan => math::Unary::Tan,
            UnaryOp::Arcsin => math::Unary::Arcsin,
            UnaryOp::Arccos => math::Unary::Arccos,
            UnaryOp::Arctan => math::Unary::Arctan,
            UnaryOp::Sinh => math::Unary::Sinh,
            UnaryOp::Cosh => math::Unary::Cosh,
            UnaryOp::Tanh => math::Unary::Tanh,
            _ => return None,
        })
    }
}

impl BinaryOp {
    /// Numpy's name of the ufunc.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether the result is `bool` whatever the operands.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::NotEqual
                | BinaryOp::Less
                | BinaryOp::LessEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterEqual
        )
    }

    /// Whether it applies to booleans and integers only.
    pub fn is_bitwise(self) -> bool {
        matches!(
            self,
            BinaryOp::BitwiseAnd | BinaryOp::BitwiseOr | BinaryOp::BitwiseXor
        )
    }

    /// Whether it computes in floating point only.
    pub fn is_float_only(self) -> bool {
        matches!(
            self,
            BinaryOp::TrueDivide | BinaryOp::Arctan2 | BinaryOp::Hypot
        )
    }
}

fn kernel_bug(op: &str, what: &Values) -> Error {
    Error::bug(
        "an elementwise kernel got operands of a type the array layer should have cast",
        format!("{op} on {:?}", what.phys()),
    )
}

/// `out = op(x)`; `out` is resized to `x`'s length.
///
/// # Errors
/// [`Error::Bug`] for a type the array layer should have cast.
pub fn unary(op: UnaryOp, x: &Values, out: &mut Values) -> Result<()> {
    out.resize(x.len());
    macro_rules! map {
        ($s:ident, $d:ident, $f:expr) => {{
            for (o, &v) in $d.iter_mut().zip($s.iter()) {
                *o = $f(v);
            }
        }};
    }
    use UnaryOp as U;
    match (op, x, &mut *out) {
        (U::Isnan, Values::F64(s), Values::Bool(d)) => map!(s, d, f64::is_nan),
        (U::Isnan, Values::F32(s), Values::Bool(d)) => map!(s, d, f32::is_nan),
        (U::Isinf, Values::F64(s), Values::Bool(d)) => map!(s, d, f64::is_infinite),
        (U::Isinf, Values::F32(s), Values::Bool(d)) => map!(s, d, f32::is_infinite),
        (U::Isfinite, Values::F64(s), Values::Bool(d)) => map!(s, d, f64::is_finite),
        (U::Isfinite, Values::F32(s), Values::Bool(d)) => map!(s, d, f32::is_finite),
        (U::Isnan, Values::C128(s), Values::Bool(d)) => map!(s, d, |v: Complex64| v.is_nan()),
        (U::Isnan, Values::C64(s), Values::Bool(d)) => map!(s, d, |v: Complex32| v.is_nan()),
        (U::Isinf, Values::C128(s), Values::Bool(d)) => map!(s, d, |v: Complex64| v.is_infinite()),
        (U::Isinf, Values::C64(s), Values::Bool(d)) => map!(s, d, |v: Complex32| v.is_infinite()),
        (U::Isfinite, Values::C128(s), Values::Bool(d)) => map!(s, d, |v: Complex64| v.is_finite()),
        (U::Isfinite, Values::C64(s), Values::Bool(d)) => map!(s, d, |v: Complex32| v.is_finite()),
        (U::Isnan | U::Isinf, _, Values::Bool(d)) => d.fill(false),
        (U::Isfinite, _, Values::Bool(d)) => d.fill(true),
        (U::Negative, Values::I64(s), Values::I64(d)) => map!(s, d, i64::wrapping_neg),
        (U::Negative, Values::U64(s), Values::U64(d)) => map!(s, d, u64::wrapping_neg),
        (U::Negative, Values::F32(s), Values::F32(d)) => map!(s, d, |v: f32| -v),
        (U::Negative, Values::F64(s), Values::F64(d)) => map!(s, d, |v: f64| -v),
        (U::Invert, Values::Bool(s), Values::Bool(d)) => map!(s, d, |v: bool| !v),
        (U::Invert, Values::I64(s), Values::I64(d)) => map!(s, d, |v: i64| !v),
        (U::Invert, Values::U64(s), Values::U64(d)) => map!(s, d, |v: u64| !v),
        (U::Absolute, Values::Bool(s), Values::Bool(d)) => d.copy_from_slice(s),
        (U::Absolute, Values::I64(s), Values::I64(d)) => map!(s, d, i64::wrapping_abs),
        (U::Absolute, Values::U64(s), Values::U64(d)) => d.copy_from_slice(s),
        (U::Absolute, Values::F32(s), Values::F32(d)) => map!(s, d, f32::abs),
        (U::Absolute, Values::F64(s), Values::F64(d)) => map!(s, d, f64::abs),
        (U::Sign, Values::I64(s), Values::I64(d)) => map!(s, d, i64::signum),
        (U::Sign, Values::U64(s), Values::U64(d)) => map!(s, d, |v: u64| u64::from(v > 0)),
        (U::Sign, Values::F32(s), Values::F32(d)) => map!(s, d, sign_f32),
        (U::Sign, Values::F64(s), Values::F64(d)) => map!(s, d, sign_f64),
        // Rounding a boolean or an integer keeps it.
        (U::Floor | U::Ceil | U::Trunc, Values::Bool(s), Values::Bool(d)) => d.copy_from_slice(s),
        (U::Floor | U::Ceil | U::Trunc | U::Rint, Values::I64(s), Values::I64(d)) => {
            d.copy_from_slice(s)
        }
        (U::Floor | U::Ceil | U::Trunc | U::Rint, Values::U64(s), Values::U64(d)) => {
            d.copy_from_slice(s)
        }
        (U::Floor, Values::F32(s), Values::F32(d)) => map!(s, d, f32::floor),
        (U::Floor, Values::F64(s), Values::F64(d)) => map!(s, d, f64::floor),
        (U::Ceil, Values::F32(s), Values::F32(d)) => map!(s, d, f32::ceil),
        (U::Ceil, Values::F64(s), Values::F64(d)) => map!(s, d, f64::ceil),
        (U::Trunc, Values::F32(s), Values::F32(d)) => map!(s, d, f32::trunc),
        (U::Trunc, Values::F64(s), Values::F64(d)) => map!(s, d, f64::trunc),
        // Numpy rounds halves to even.
        (U::Rint, Values::F32(s), Values::F32(d)) => map!(s, d, f32::round_ties_even),
        (U::Rint, Values::F64(s), Values::F64(d)) => map!(s, d, f64::round_ties_even),
        // Complex operands: their parts, and numpy's complex functions.
        (U::Real, Values::C128(s), Values::F64(d)) => map!(s, d, |v: Complex64| v.re),
        (U::Real, Values::C64(s), Values::F32(d)) => map!(s, d, |v: Complex32| v.re),
        (U::Imag, Values::C128(s), Values::F64(d)) => map!(s, d, |v: Complex64| v.im),
        (U::Imag, Values::C64(s), Values::F32(d)) => map!(s, d, |v: Complex32| v.im),
        (U::Angle, Values::C128(s), Values::F64(d)) => map!(s, d, |v: Complex64| v.arg()),
        (U::Angle, Values::C64(s), Values::F32(d)) => map!(s, d, |v: Complex32| v.arg()),
        (U::Absolute, Values::C128(s), Values::F64(d)) => map!(s, d, |v: Complex64| v.norm()),
        (U::Absolute, Values::C64(s), Values::F32(d)) => map!(s, d, |v: Complex32| v.norm()),
        (op, Values::C128(s), Values::C128(d)) => {
            let f = complex_fn(op).ok_or_else(|| kernel_bug(&op.name(), x))?;
            map!(s, d, f)
        }
        (op, Values::C64(s), Values::C64(d)) => {
            let f = complex_fn(op).ok_or_else(|| kernel_bug(&op.name(), x))?;
            map!(s, d, |v: Complex32| {
                let w = f(Complex64::new(f64::from(v.re), f64::from(v.im)));
                Complex32::new(w.re as f32, w.im as f32)
            })
        }
        // A real operand's parts.
        (U::Real | U::Conjugate, v, d) if v.phys() == d.phys() => *d = v.clone(),
        (U::Imag, _, d) => {
            let n = d.len();
            *d = Values::zeros(d.phys(), n);
        }
        (op, Values::F64(s), Values::F64(d)) if op.math().is_some() => {
            math::unary_f64(op.math().unwrap_or(math::Unary::Sqrt), s, d)
        }
        (op, Values::F32(s), Values::F32(d)) if op.math().is_some() => {
            math::unary_f32(op.math().unwrap_or(math::Unary::Sqrt), s, d)
        }
        (op, x, _) => return Err(kernel_bug(&op.name(), x)),
    }
    Ok(())
}

/// numpy's complex function for `op` (in double precision).
fn complex_fn(op: UnaryOp) -> Option<fn(Complex64) -> Complex64> {
    use UnaryOp as U;
    Some(match op {
        U::Negative => |v| -v,
        U::Conjugate => |v| v.conj(),
        U::Sqrt => |v| v.sqrt(),
        U::Exp => |v| v.exp(),
        U::Expm1 => |v| v.exp() - 1.0,
        U::Log => |v| v.ln(),
        U::Log1p => |v| (v + 1.0).ln(),
        U::Log2 => |v| v.log2(),
        U::Log10 => |v| v.log10(),
        U::Sin => |v| v.sin(),
        U::Cos => |v| v.cos(),
        U::Tan => |v| v.tan(),
        U::Arcsin => |v| v.asin(),
        U::Arccos => |v| v.acos(),
        U::Arctan => |v| v.atan(),
        U::Sinh => |v| v.sinh(),
        U::Cosh => |v| v.cosh(),
        U::Tanh => |v| v.tanh(),
        // numpy 2's sign of a complex number: z / |z|.
        U::Sign => |v| if v.norm() == 0.0 { v } else { v / v.norm() },
        _ => return None,
    })
}

fn sign_f64(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        // 0 stays 0 (with its sign), NaN stays NaN.
        v
    }
}

fn sign_f32(v: f32) -> f32 {
    sign_f64(f64::from(v)) as f32
}

/// `out = op(a, b)`, `a` and `b` of one length and physical type; `out` is resized.
///
/// (The closures serve several types, so they are written for all of them: a
/// comparison of booleans is not simplified, and `p != p` is the NaN test, since a
/// method call would need the type before the closure is applied.)
///
/// # Errors
/// [`Error::Bug`] for types the array layer should have cast; [`Error::ArrayArgument`]
/// for an integer raised to a negative integer power (numpy's `ValueError`).
#[allow(clippy::bool_comparison, clippy::eq_op)]
pub fn binary(op: BinaryOp, a: &Values, b: &Values, out: &mut Values) -> Result<()> {
    out.resize(a.len());
    macro_rules! zip {
        ($x:ident, $y:ident, $d:ident, $f:expr) => {{
            for ((o, &p), &q) in $d.iter_mut().zip($x.iter()).zip($y.iter()) {
                *o = $f(p, q);
            }
        }};
    }
    // Comparisons of every type, into bool.
    macro_rules! compare {
        ($f:expr) => {
            match (a, b, &mut *out) {
                (Values::Bool(x), Values::Bool(y), Values::Bool(d)) => zip!(x, y, d, $f),
                (Values::I64(x), Values::I64(y), Values::Bool(d)) => zip!(x, y, d, $f),
                (Values::U64(x), Values::U64(y), Values::Bool(d)) => zip!(x, y, d, $f),
                (Values::F32(x), Values::F32(y), Values::Bool(d)) => zip!(x, y, d, $f),
                (Values::F64(x), Values::F64(y), Values::Bool(d)) => zip!(x, y, d, $f),
                _ => return Err(kernel_bug(&op.name(), a)),
            }
        };
    }
    // Arithmetic of one type: integers with `$int`, floats with `$float`.
    macro_rules! arith {
        ($int:expr, $uint:expr, $float:expr) => {
            match (a, b, &mut *out) {
                (Values::I64(x), Values::I64(y), Values::I64(d)) => zip!(x, y, d, $int),
                (Values::U64(x), Values::U64(y), Values::U64(d)) => zip!(x, y, d, $uint),
                (Values::F32(x), Values::F32(y), Values::F32(d)) => zip!(x, y, d, $float),
                (Values::F64(x), Values::F64(y), Values::F64(d)) => zip!(x, y, d, $float),
                _ => return Err(kernel_bug(&op.name(), a)),
            }
        };
    }
    use BinaryOp as B;
    if let (Values::C128(_), Values::C128(_)) | (Values::C64(_), Values::C64(_)) = (a, b) {
        return complex_binary(op, a, b, out);
    }
    match op {
        B::Equal => compare!(|p, q| p == q),
        B::NotEqual => compare!(|p, q| p != q),
        B::Less => compare!(|p, q| p < q),
        B::LessEqual => compare!(|p, q| p <= q),
        B::Greater => compare!(|p, q| p > q),
        B::GreaterEqual => compare!(|p, q| p >= q),
        // Numpy's add and multiply of booleans are `or` and `and`.
        B::Add | B::BitwiseOr if matches!(a, Values::Bool(_)) => bools(a, b, out, |p, q| p | q)?,
        B::Multiply | B::BitwiseAnd if matches!(a, Values::Bool(_)) => {
            bools(a, b, out, |p, q| p & q)?
        }
        B::BitwiseXor if matches!(a, Values::Bool(_)) => bools(a, b, out, |p, q| p ^ q)?,
        B::Maximum | B::Minimum if matches!(a, Values::Bool(_)) => bools(
            a,
            b,
            out,
            if op == B::Maximum {
                |p, q| p | q
            } else {
                |p, q| p & q
            },
        )?,
        B::Add => arith!(i64::wrapping_add, u64::wrapping_add, |p, q| p + q),
        B::Subtract => arith!(i64::wrapping_sub, u64::wrapping_sub, |p, q| p - q),
        B::Multiply => arith!(i64::wrapping_mul, u64::wrapping_mul, |p, q| p * q),
        B::TrueDivide => arith!(|_, _| 0, |_, _| 0, |p, q| p / q),
        B::FloorDivide => match (a, b, &mut *out) {
            (Values::I64(x), Values::I64(y), Values::I64(d)) => zip!(x, y, d, floor_div_i64),
            (Values::U64(x), Values::U64(y), Values::U64(d)) => {
                zip!(x, y, d, |p: u64, q: u64| p.checked_div(q).unwrap_or(0))
            }
            (Values::F32(x), Values::F32(y), Values::F32(d)) => {
                zip!(x, y, d, |p: f32, q: f32| divmod(p.into(), q.into()).0
                    as f32)
            }
            (Values::F64(x), Values::F64(y), Values::F64(d)) => {
                zip!(x, y, d, |p, q| divmod(p, q).0)
            }
            _ => return Err(kernel_bug(&op.name(), a)),
        },
        B::Remainder => match (a, b, &mut *out) {
            (Values::I64(x), Values::I64(y), Values::I64(d)) => zip!(x, y, d, rem_i64),
            (Values::U64(x), Values::U64(y), Values::U64(d)) => {
                zip!(x, y, d, |p: u64, q: u64| p.checked_rem(q).unwrap_or(0))
            }
            (Values::F32(x), Values::F32(y), Values::F32(d)) => {
                zip!(x, y, d, |p: f32, q: f32| divmod(p.into(), q.into()).1
                    as f32)
            }
            (Values::F64(x), Values::F64(y), Values::F64(d)) => {
                zip!(x, y, d, |p, q| divmod(p, q).1)
            }
            _ => return Err(kernel_bug(&op.name(), a)),
        },
        B::Power => match (a, b, &mut *out) {
            (Values::I64(x), Values::I64(y), Values::I64(d)) => {
                if y.iter().any(|&q| q < 0) {
                    return Err(Error::ArrayArgument {
                        op: "power".into(),
                        reason: "integers to negative integer powers are not allowed (make \
                                 the base a float: 2.0 ** -1)"
                            .into(),
                    });
                }
                zip!(x, y, d, |p: i64, q: i64| p
                    .wrapping_pow(q.min(u32::MAX as i64) as u32))
            }
            (Values::U64(x), Values::U64(y), Values::U64(d)) => {
                zip!(x, y, d, |p: u64, q: u64| p
                    .wrapping_pow(q.min(u32::MAX as u64) as u32))
            }
            (Values::F32(x), Values::F32(y), Values::F32(d)) => zip!(x, y, d, f32::powf),
            (Values::F64(x), Values::F64(y), Values::F64(d)) => zip!(x, y, d, f64::powf),
            _ => return Err(kernel_bug(&op.name(), a)),
        },
        B::BitwiseAnd | B::BitwiseOr | B::BitwiseXor => {
            let f: fn(u64, u64) -> u64 = match op {
                B::BitwiseAnd => |p, q| p & q,
                B::BitwiseOr => |p, q| p | q,
                _ => |p, q| p ^ q,
            };
            match (a, b, &mut *out) {
                (Values::I64(x), Values::I64(y), Values::I64(d)) => {
                    zip!(x, y, d, |p: i64, q: i64| f(p as u64, q as u64) as i64)
                }
                (Values::U64(x), Values::U64(y), Values::U64(d)) => zip!(x, y, d, f),
                _ => return Err(kernel_bug(&op.name(), a)),
            }
        }
        // Numpy's maximum and minimum propagate NaN.
        B::Maximum => arith!(i64::max, u64::max, |p, q| if p >= q || p != p {
            p
        } else {
            q
        }),
        B::Minimum => arith!(i64::min, u64::min, |p, q| if p <= q || p != p {
            p
        } else {
            q
        }),
        B::Arctan2 | B::Hypot => {
            let f = if op == B::Arctan2 {
                math::Binary::Arctan2
            } else {
                math::Binary::Hypot
            };
            match (a, b, &mut *out) {
                (Values::F32(x), Values::F32(y), Values::F32(d)) => math::binary_f32(f, x, y, d),
                (Values::F64(x), Values::F64(y), Values::F64(d)) => math::binary_f64(f, x, y, d),
                _ => return Err(kernel_bug(&op.name(), a)),
            }
        }
    }
    Ok(())
}

/// Arithmetic and equality of complex operands.
fn complex_binary(op: BinaryOp, a: &Values, b: &Values, out: &mut Values) -> Result<()> {
    use BinaryOp as B;
    macro_rules! zip {
        ($x:ident, $y:ident, $d:ident, $f:expr) => {{
            for ((o, &p), &q) in $d.iter_mut().zip($x.iter()).zip($y.iter()) {
                *o = $f(p, q);
            }
        }};
    }
    macro_rules! each_width {
        ($ty:ident, $x:ident, $y:ident, $pow:expr) => {
            match (op, &mut *out) {
                (B::Add, Values::$ty(d)) => zip!($x, $y, d, |p, q| p + q),
                (B::Subtract, Values::$ty(d)) => zip!($x, $y, d, |p, q| p - q),
                (B::Multiply, Values::$ty(d)) => zip!($x, $y, d, |p, q| p * q),
                (B::TrueDivide, Values::$ty(d)) => zip!($x, $y, d, |p, q| p / q),
                (B::Power, Values::$ty(d)) => zip!($x, $y, d, $pow),
                (B::Equal, Values::Bool(d)) => zip!($x, $y, d, |p, q| p == q),
                (B::NotEqual, Values::Bool(d)) => zip!($x, $y, d, |p, q| p != q),
                _ => return Err(kernel_bug(&op.name(), a)),
            }
        };
    }
    match (a, b) {
        (Values::C128(x), Values::C128(y)) => each_width!(C128, x, y, complex_pow),
        (Values::C64(x), Values::C64(y)) => each_width!(C64, x, y, |p: Complex32, q: Complex32| {
            let w = complex_pow(
                Complex64::new(f64::from(p.re), f64::from(p.im)),
                Complex64::new(f64::from(q.re), f64::from(q.im)),
            );
            Complex32::new(w.re as f32, w.im as f32)
        }),
        _ => return Err(kernel_bug(&op.name(), a)),
    }
    Ok(())
}

/// `p ** q` for complex numbers as numpy computes it: small integer powers by
/// repeated multiplication (so `z ** 2` is `z * z` exactly), others through logs.
fn complex_pow(p: Complex64, q: Complex64) -> Complex64 {
    if q.im == 0.0 && q.re == q.re.round() && q.re.abs() <= 8.0 {
        let n = q.re as i32;
        let mut acc = Complex64::new(1.0, 0.0);
        for _ in 0..n.unsigned_abs() {
            acc *= p;
        }
        return if n < 0 {
            Complex64::new(1.0, 0.0) / acc
        } else {
            acc
        };
    }
    p.powc(q)
}

fn bools(a: &Values, b: &Values, out: &mut Values, f: fn(bool, bool) -> bool) -> Result<()> {
    match (a, b, out) {
        (Values::Bool(x), Values::Bool(y), Values::Bool(d)) => {
            for ((o, &p), &q) in d.iter_mut().zip(x).zip(y) {
                *o = f(p, q);
            }
            Ok(())
        }
        _ => Err(kernel_bug("a boolean operation", a)),
    }
}

/// Python's `//` on integers: rounds toward negative infinity; numpy gives 0 for a
/// division by zero (with a warning), and wraps `MIN // -1`.
fn floor_div_i64(p: i64, q: i64) -> i64 {
    if q == 0 {
        return 0;
    }
    let d = p.wrapping_div(q);
    if p.wrapping_rem(q) != 0 && ((p < 0) != (q < 0)) {
        d - 1
    } else {
        d
    }
}

/// Python's `%` on integers: the sign of the divisor; 0 for a zero divisor (numpy).
fn rem_i64(p: i64, q: i64) -> i64 {
    if q == 0 {
        return 0;
    }
    let r = p.wrapping_rem(q);
    if r != 0 && ((r < 0) != (q < 0)) {
        r + q
    } else {
        r
    }
}

/// Numpy's `divmod` of floats (`npy_divmod`): the floor quotient and the remainder
/// with the divisor's sign, computed from `fmod` so that `a == q * b + r` as far
/// as rounding allows.
fn divmod(a: f64, b: f64) -> (f64, f64) {
    let m = a % b;
    if b == 0.0 {
        return (a / b, m);
    }
    let mut div = (a - m) / b;
    let mut r = m;
    if r != 0.0 {
        if (b < 0.0) != (r < 0.0) {
            r += b;
            div -= 1.0;
        }
    } else {
        r = 0.0f64.copysign(b);
    }
    let q = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 {
            f + 1.0
        } else {
            f
        }
    } else {
        0.0f64.copysign(a / b)
    };
    (q, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_floor_division_and_remainder_are_pythons() {
        for (p, q, d, r) in [
            (7, 2, 3, 1),
            (-7, 2, -4, 1),
            (7, -2, -4, -1),
            (-7, -2, 3, -1),
        ] {
            assert_eq!(floor_div_i64(p, q), d, "{p} // {q}");
            assert_eq!(rem_i64(p, q), r, "{p} % {q}");
        }
        assert_eq!(floor_div_i64(5, 0), 0);
        assert_eq!(rem_i64(5, 0), 0);
        assert_eq!(floor_div_i64(i64::MIN, -1), i64::MIN);
    }

    #[test]
    fn float_divmod_is_numpys() {
        assert_eq!(divmod(7.5, 2.0), (3.0, 1.5));
        assert_eq!(divmod(-7.5, 2.0), (-4.0, 0.5));
        assert_eq!(divmod(7.5, -2.0), (-4.0, -0.5));
        assert!(divmod(1.0, 0.0).0.is_infinite());
        assert!(divmod(1.0, 0.0).1.is_nan());
        assert_eq!(divmod(-0.0, 3.0).1.to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn maximum_propagates_nan_and_booleans_add_as_or() {
        let mut out = Values::zeros(super::super::values::Phys::F64, 0);
        binary(
            BinaryOp::Maximum,
            &Values::F64(vec![1.0, f64::NAN, 3.0]),
            &Values::F64(vec![2.0, 0.0, f64::NAN]),
            &mut out,
        )
        .unwrap();
        let Values::F64(v) = out else { panic!() };
        assert_eq!(v[0], 2.0);
        assert!(v[1].is_nan() && v[2].is_nan());
        let mut out = Values::Bool(vec![]);
        binary(
            BinaryOp::Add,
            &Values::Bool(vec![true, false]),
            &Values::Bool(vec![true, false]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, Values::Bool(vec![true, false]));
    }
}
