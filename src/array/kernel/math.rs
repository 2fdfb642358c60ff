//! Elementwise math over slices (a scalar stand-in over std's functions, which the
//! vectorized kernels replace).

/// A unary math function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Unary {
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Sqrt,
    Cbrt,
}

/// A binary math function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Binary {
    Arctan2,
    Hypot,
}

fn scalar(f: Unary) -> fn(f64) -> f64 {
    match f {
        Unary::Sin => f64::sin,
        Unary::Cos => f64::cos,
        Unary::Tan => f64::tan,
        Unary::Arcsin => f64::asin,
        Unary::Arccos => f64::acos,
        Unary::Arctan => f64::atan,
        Unary::Sinh => f64::sinh,
        Unary::Cosh => f64::cosh,
        Unary::Tanh => f64::tanh,
        Unary::Exp => f64::exp,
        Unary::Expm1 => f64::exp_m1,
        Unary::Log => f64::ln,
        Unary::Log1p => f64::ln_1p,
        Unary::Log2 => f64::log2,
        Unary::Log10 => f64::log10,
        Unary::Sqrt => f64::sqrt,
        Unary::Cbrt => f64::cbrt,
    }
}

/// `out[i] = f(x[i])`.
pub fn unary_f64(f: Unary, x: &[f64], out: &mut [f64]) {
    let g = scalar(f);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = g(v);
    }
}

/// `out[i] = f(x[i])` in single precision.
pub fn unary_f32(f: Unary, x: &[f32], out: &mut [f32]) {
    let g = scalar(f);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = g(f64::from(v)) as f32;
    }
}

/// `out[i] = f(a[i], b[i])`.
pub fn binary_f64(f: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = match f {
            Binary::Arctan2 => p.atan2(q),
            Binary::Hypot => p.hypot(q),
        };
    }
}

/// `out[i] = f(a[i], b[i])` in single precision.
pub fn binary_f32(f: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = match f {
            Binary::Arctan2 => p.atan2(q),
            Binary::Hypot => p.hypot(q),
        };
    }
}
