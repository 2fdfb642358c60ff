//! Typed tiles: the values one node of a fused kernel holds for a run of elements,
//! in the type its arithmetic runs in.
//!
//! Numpy computes `int8 + int8` in `int8`, wrapping; computing it in `i64` and
//! wrapping the result to 8 bits gives the same bits, so every signed integer dtype
//! runs as `i64`, every unsigned one as `u64`, `float16` as `f32` (numpy's half loops
//! compute in single precision and round) and the rest as themselves. That keeps the
//! kernels to five physical types instead of fourteen.

use half::f16;
use num_complex::{Complex32, Complex64};

use crate::error::Result;
use crate::storage::array::DType;

/// The type arithmetic on a dtype runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phys {
    /// `bool`.
    Bool,
    /// Every signed integer dtype.
    I64,
    /// Every unsigned integer dtype.
    U64,
    /// `float16` and `float32`.
    F32,
    /// `float64`.
    F64,
    /// `complex64`.
    C64,
    /// `complex128`.
    C128,
}

impl Phys {
    /// The physical type of `dtype`.
    ///
    /// # Errors
    /// None today; kept for dtypes a kernel cannot compute.
    pub fn of(dtype: DType) -> Result<Phys> {
        Ok(match dtype {
            DType::Bool => Phys::Bool,
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 => Phys::I64,
            DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64 => Phys::U64,
            DType::Float16 | DType::Float32 => Phys::F32,
            DType::Float64 => Phys::F64,
            DType::Complex64 => Phys::C64,
            DType::Complex128 => Phys::C128,
        })
    }
}

/// A run of values of one physical type.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the variants are the physical types
pub enum Values {
    Bool(Vec<bool>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    C64(Vec<Complex32>),
    C128(Vec<Complex64>),
}

/// Runs `$body` with `$v` bound to the vector inside any variant of `$values`.
macro_rules! with_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            Values::Bool($v) => $body,
            Values::I64($v) => $body,
            Values::U64($v) => $body,
            Values::F32($v) => $body,
            Values::F64($v) => $body,
            Values::C64($v) => $body,
            Values::C128($v) => $body,
        }
    };
}

impl Values {
    /// `n` zeros (false) of physical type `phys`.
    pub fn zeros(phys: Phys, n: usize) -> Values {
        match phys {
            Phys::Bool => Values::Bool(vec![false; n]),
            Phys::I64 => Values::I64(vec![0; n]),
            Phys::U64 => Values::U64(vec![0; n]),
            Phys::F32 => Values::F32(vec![0.0; n]),
            Phys::F64 => Values::F64(vec![0.0; n]),
            Phys::C64 => Values::C64(vec![Complex32::new(0.0, 0.0); n]),
            Phys::C128 => Values::C128(vec![Complex64::new(0.0, 0.0); n]),
        }
    }

    /// The physical type held.
    pub fn phys(&self) -> Phys {
        match self {
            Values::Bool(_) => Phys::Bool,
            Values::I64(_) => Phys::I64,
            Values::U64(_) => Phys::U64,
            Values::F32(_) => Phys::F32,
            Values::F64(_) => Phys::F64,
            Values::C64(_) => Phys::C64,
            Values::C128(_) => Phys::C128,
        }
    }

    /// Appends `other`'s values (of the same physical type; others are ignored).
    pub fn extend_from(&mut self, other: &Values) {
        match (self, other) {
            (Values::Bool(a), Values::Bool(b)) => a.extend_from_slice(b),
            (Values::I64(a), Values::I64(b)) => a.extend_from_slice(b),
            (Values::U64(a), Values::U64(b)) => a.extend_from_slice(b),
            (Values::F32(a), Values::F32(b)) => a.extend_from_slice(b),
            (Values::F64(a), Values::F64(b)) => a.extend_from_slice(b),
            (Values::C64(a), Values::C64(b)) => a.extend_from_slice(b),
            (Values::C128(a), Values::C128(b)) => a.extend_from_slice(b),
            _ => {}
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the length to `n`, new values zero.
    pub fn resize(&mut self, n: usize) {
        match self {
            Values::Bool(v) => v.resize(n, false),
            Values::I64(v) => v.resize(n, 0),
            Values::U64(v) => v.resize(n, 0),
            Values::F32(v) => v.resize(n, 0.0),
            Values::F64(v) => v.resize(n, 0.0),
            Values::C64(v) => v.resize(n, Complex32::new(0.0, 0.0)),
            Values::C128(v) => v.resize(n, Complex64::new(0.0, 0.0)),
        }
    }

    /// The values of `bytes`, elements of `dtype` in native byte order.
    ///
    /// # Errors
    /// As [`Phys::of`].
    pub fn decode(dtype: DType, bytes: &[u8]) -> Result<Values> {
        let size = dtype.size();
        let n = bytes.len() / size;
        let mut out = Values::zeros(Phys::of(dtype)?, n);
        macro_rules! read {
            ($v:ident, $t:ty, $conv:expr) => {{
                for (o, c) in $v.iter_mut().zip(bytes.chunks_exact(size)) {
                    let x = <$t>::from_ne_bytes(c.try_into().unwrap_or_default());
                    *o = $conv(x);
                }
            }};
        }
        match (&mut out, dtype) {
            (Values::Bool(v), _) => {
                for (o, &b) in v.iter_mut().zip(bytes) {
                    *o = b != 0;
                }
            }
            (Values::I64(v), DType::Int8) => read!(v, i8, i64::from),
            (Values::I64(v), DType::Int16) => read!(v, i16, i64::from),
            (Values::I64(v), DType::Int32) => read!(v, i32, i64::from),
            (Values::I64(v), _) => read!(v, i64, |x| x),
            (Values::U64(v), DType::UInt8) => read!(v, u8, u64::from),
            (Values::U64(v), DType::UInt16) => read!(v, u16, u64::from),
            (Values::U64(v), DType::UInt32) => read!(v, u32, u64::from),
            (Values::U64(v), _) => read!(v, u64, |x| x),
            (Values::F32(v), DType::Float16) => {
                read!(v, u16, |x| f16::from_bits(x).to_f32())
            }
            (Values::F32(v), _) => read!(v, f32, |x| x),
            (Values::F64(v), _) => read!(v, f64, |x| x),
            (Values::C64(v), _) => {
                for (o, c) in v.iter_mut().zip(bytes.chunks_exact(8)) {
                    let re = f32::from_ne_bytes(c[..4].try_into().unwrap_or_default());
                    let im = f32::from_ne_bytes(c[4..].try_into().unwrap_or_default());
                    *o = Complex32::new(re, im);
                }
            }
            (Values::C128(v), _) => {
                for (o, c) in v.iter_mut().zip(bytes.chunks_exact(16)) {
                    let re = f64::from_ne_bytes(c[..8].try_into().unwrap_or_default());
                    let im = f64::from_ne_bytes(c[8..].try_into().unwrap_or_default());
                    *o = Complex64::new(re, im);
                }
            }
        }
        Ok(out)
    }

    /// Appends the values to `out` as elements of `dtype` (whose physical type they
    /// have), native byte order.
    pub fn encode(&self, dtype: DType, out: &mut Vec<u8>) {
        out.reserve(self.len() * dtype.size());
        macro_rules! write {
            ($v:ident, $conv:expr) => {{
                for &x in $v {
                    out.extend_from_slice(&$conv(x).to_ne_bytes());
                }
            }};
        }
        match (self, dtype) {
            (Values::Bool(v), _) => out.extend(v.iter().map(|&b| u8::from(b))),
            (Values::I64(v), DType::Int8) => write!(v, |x: i64| x as i8),
            (Values::I64(v), DType::Int16) => write!(v, |x: i64| x as i16),
            (Values::I64(v), DType::Int32) => write!(v, |x: i64| x as i32),
            (Values::I64(v), _) => write!(v, |x: i64| x),
            (Values::U64(v), DType::UInt8) => write!(v, |x: u64| x as u8),
            (Values::U64(v), DType::UInt16) => write!(v, |x: u64| x as u16),
            (Values::U64(v), DType::UInt32) => write!(v, |x: u64| x as u32),
            (Values::U64(v), _) => write!(v, |x: u64| x),
            (Values::F32(v), DType::Float16) => write!(v, |x: f32| f16::from_f32(x).to_bits()),
            (Values::F32(v), _) => write!(v, |x: f32| x),
            (Values::F64(v), _) => write!(v, |x: f64| x),
            (Values::C64(v), _) => {
                for x in v {
                    out.extend_from_slice(&x.re.to_ne_bytes());
                    out.extend_from_slice(&x.im.to_ne_bytes());
                }
            }
            (Values::C128(v), _) => {
                for x in v {
                    out.extend_from_slice(&x.re.to_ne_bytes());
                    out.extend_from_slice(&x.im.to_ne_bytes());
                }
            }
        }
    }

    /// Brings values just computed back into `dtype`'s range: integers narrower than
    /// 64 bits wrap (as numpy's do), `float16` rounds to half precision.
    pub fn wrap_to(&mut self, dtype: DType) {
        match (self, dtype) {
            (Values::I64(v), DType::Int8) => v.iter_mut().for_each(|x| *x = *x as i8 as i64),
            (Values::I64(v), DType::Int16) => v.iter_mut().for_each(|x| *x = *x as i16 as i64),
            (Values::I64(v), DType::Int32) => v.iter_mut().for_each(|x| *x = *x as i32 as i64),
            (Values::U64(v), DType::UInt8) => v.iter_mut().for_each(|x| *x = *x as u8 as u64),
            (Values::U64(v), DType::UInt16) => v.iter_mut().for_each(|x| *x = *x as u16 as u64),
            (Values::U64(v), DType::UInt32) => v.iter_mut().for_each(|x| *x = *x as u32 as u64),
            (Values::F32(v), DType::Float16) => {
                v.iter_mut().for_each(|x| *x = f16::from_f32(*x).to_f32())
            }
            _ => {}
        }
    }

    /// These values cast to `to` (numpy's `astype` with unsafe casting: floats to
    /// integers truncate toward zero, saturating where numpy's result is undefined;
    /// integers wrap), into `out`, whose length becomes this one's.
    pub fn cast_into(&self, to: DType, out: &mut Values) {
        let n = self.len();
        out.resize(n);
        macro_rules! conv {
            ($src:ident, $dst:ident, $f:expr) => {{
                for (o, &x) in $dst.iter_mut().zip($src.iter()) {
                    *o = $f(x);
                }
            }};
        }
        match (self, &mut *out) {
            (Values::Bool(s), Values::Bool(d)) => d.copy_from_slice(s),
            (Values::Bool(s), Values::I64(d)) => conv!(s, d, i64::from),
            (Values::Bool(s), Values::U64(d)) => conv!(s, d, u64::from),
            (Values::Bool(s), Values::F32(d)) => conv!(s, d, |b| f32::from(u8::from(b))),
            (Values::Bool(s), Values::F64(d)) => conv!(s, d, |b| f64::from(u8::from(b))),
            (Values::I64(s), Values::Bool(d)) => conv!(s, d, |x| x != 0),
            (Values::I64(s), Values::I64(d)) => d.copy_from_slice(s),
            (Values::I64(s), Values::U64(d)) => conv!(s, d, |x| x as u64),
            (Values::I64(s), Values::F32(d)) => conv!(s, d, |x| x as f32),
            (Values::I64(s), Values::F64(d)) => conv!(s, d, |x| x as f64),
            (Values::U64(s), Values::Bool(d)) => conv!(s, d, |x| x != 0),
            (Values::U64(s), Values::I64(d)) => conv!(s, d, |x| x as i64),
            (Values::U64(s), Values::U64(d)) => d.copy_from_slice(s),
            (Values::U64(s), Values::F32(d)) => conv!(s, d, |x| x as f32),
            (Values::U64(s), Values::F64(d)) => conv!(s, d, |x| x as f64),
            (Values::F32(s), Values::Bool(d)) => conv!(s, d, |x| x != 0.0),
            (Values::F32(s), Values::I64(d)) => conv!(s, d, |x| x as i64),
            (Values::F32(s), Values::U64(d)) => conv!(s, d, float_to_u64),
            (Values::F32(s), Values::F32(d)) => d.copy_from_slice(s),
            (Values::F32(s), Values::F64(d)) => conv!(s, d, f64::from),
            (Values::F64(s), Values::Bool(d)) => conv!(s, d, |x| x != 0.0),
            (Values::F64(s), Values::I64(d)) => conv!(s, d, |x| x as i64),
            (Values::F64(s), Values::U64(d)) => conv!(s, d, float_to_u64),
            (Values::F64(s), Values::F32(d)) => conv!(s, d, |x| x as f32),
            (Values::F64(s), Values::F64(d)) => d.copy_from_slice(s),
            // Into complex: the imaginary part is zero.
            (s, Values::C128(d)) => {
                let re = s.as_f64_parts();
                for (o, (r, i)) in d.iter_mut().zip(re) {
                    *o = Complex64::new(r, i);
                }
            }
            (s, Values::C64(d)) => {
                let re = s.as_f64_parts();
                for (o, (r, i)) in d.iter_mut().zip(re) {
                    *o = Complex32::new(r as f32, i as f32);
                }
            }
            // Out of complex: the real part (numpy warns it drops the imaginary),
            // and booleans say whether either part is non-zero.
            (Values::C64(_) | Values::C128(_), d) => {
                let parts: Vec<(f64, f64)> = self.as_f64_parts().collect();
                match d {
                    Values::Bool(d) => conv!(parts, d, |(r, i): (f64, f64)| r != 0.0 || i != 0.0),
                    Values::I64(d) => conv!(parts, d, |(r, _): (f64, f64)| r as i64),
                    Values::U64(d) => conv!(parts, d, |(r, _): (f64, f64)| float_to_u64(r)),
                    Values::F32(d) => conv!(parts, d, |(r, _): (f64, f64)| r as f32),
                    Values::F64(d) => conv!(parts, d, |(r, _): (f64, f64)| r),
                    Values::C64(_) | Values::C128(_) => {}
                }
            }
        }
        out.wrap_to(to);
    }
}

impl Values {
    /// Each value as (real, imaginary) parts in double precision.
    pub fn as_f64_parts(&self) -> Box<dyn Iterator<Item = (f64, f64)> + '_> {
        match self {
            Values::Bool(v) => Box::new(v.iter().map(|&b| (f64::from(u8::from(b)), 0.0))),
            Values::I64(v) => Box::new(v.iter().map(|&x| (x as f64, 0.0))),
            Values::U64(v) => Box::new(v.iter().map(|&x| (x as f64, 0.0))),
            Values::F32(v) => Box::new(v.iter().map(|&x| (f64::from(x), 0.0))),
            Values::F64(v) => Box::new(v.iter().map(|&x| (x, 0.0))),
            Values::C64(v) => Box::new(v.iter().map(|x| (f64::from(x.re), f64::from(x.im)))),
            Values::C128(v) => Box::new(v.iter().map(|x| (x.re, x.im))),
        }
    }
}

/// A float cast to an unsigned integer as numpy does on x86: a negative value goes
/// through the signed conversion and wraps (`np.float64(-1).astype(np.uint8)` is
/// 255).
fn float_to_u64(x: impl Into<f64>) -> u64 {
    let x: f64 = x.into();
    if x < 0.0 {
        x as i64 as u64
    } else {
        x as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_real_dtype_round_trips_through_bytes() {
        for dtype in DType::ALL {
            let phys = Phys::of(dtype).unwrap();
            let bytes: Vec<u8> = (0..dtype.size() as u8 * 7)
                .map(|b| b.wrapping_mul(37))
                .collect();
            let values = Values::decode(dtype, &bytes).unwrap();
            assert_eq!(values.phys(), phys);
            assert_eq!(values.len(), 7);
            let mut back = Vec::new();
            values.encode(dtype, &mut back);
            if dtype == DType::Bool {
                let want: Vec<u8> = bytes.iter().map(|&b| u8::from(b != 0)).collect();
                assert_eq!(back, want);
            } else if dtype == DType::Float16 {
                // NaN payloads may change; every value decodes to the same number.
                let again = Values::decode(dtype, &back).unwrap();
                assert_eq!(format!("{again:?}"), format!("{values:?}"));
            } else {
                assert_eq!(back, bytes, "{dtype:?}");
            }
        }
    }

    #[test]
    fn narrow_integers_wrap_as_numpys() {
        let mut v = Values::I64(vec![127 + 1, -129, 300]);
        v.wrap_to(DType::Int8);
        assert_eq!(v, Values::I64(vec![-128, 127, 44]));
        let mut out = Values::zeros(Phys::U64, 0);
        Values::F64(vec![-1.0, 255.9, 256.0]).cast_into(DType::UInt8, &mut out);
        assert_eq!(out, Values::U64(vec![255, 255, 0]));
    }
}
