//! Elementwise math over slices, vectorized: numpy's `sin`, `cos`, `tan`, `arcsin`,
//! `arccos`, `arctan`, `sinh`, `cosh`, `tanh`, `exp`, `expm1`, `log`, `log1p`, `log2`,
//! `log10`, `sqrt`, `cbrt`, `arctan2` and `hypot` for `f64` and `f32`, for the fused
//! kernels of the array engine.
//!
//! Each function is a branchless kernel (argument reduction, a minimax polynomial, then
//! selects for the special values) written as scalar code over one element. LLVM
//! vectorizes the loop that applies it, compiled once for AVX-512 and once for AVX2 +
//! FMA; which copy runs is decided once from the CPU's features, and CPUs with neither
//! get std's functions. The results stay within 4 ulp of std's (glibc's, close to
//! correctly rounded; 3 ulp at most on the tests' samples) and give the same special
//! values: NaN, infinities, signed zeros, NaN out of the domain. `sin`, `cos` and `tan`
//! reduce their argument exactly only up to `TRIG_LIMIT`; elements beyond it go to std's
//! functions. `f32` is computed in `f64` and rounded, which keeps it within one `f32` ulp
//! of the correctly rounded result at the cost of half the vector width.
//!
//! This holds maps of one or two float slices to one, in place or into another slice
//! (both compiled, so that neither pays for a copy); no reductions, no integer dtypes.
//!
//! The polynomial coefficients are minimax fits (Remez exchange on the relative error,
//! in 100-digit arithmetic with mpmath) of the functions named beside them, over the
//! intervals the reductions leave.

// Only x86-64 has vector copies; elsewhere the kernels are compiled for the tests alone.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::sync::OnceLock;

/// A unary math function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unary {
    /// numpy's `sin`.
    Sin,
    /// numpy's `cos`.
    Cos,
    /// numpy's `tan`.
    Tan,
    /// numpy's `arcsin`.
    Arcsin,
    /// numpy's `arccos`.
    Arccos,
    /// numpy's `arctan`.
    Arctan,
    /// numpy's `sinh`.
    Sinh,
    /// numpy's `cosh`.
    Cosh,
    /// numpy's `tanh`.
    Tanh,
    /// numpy's `exp`.
    Exp,
    /// numpy's `expm1`: `exp(x) - 1`, accurate near 0.
    Expm1,
    /// numpy's `log` (natural).
    Log,
    /// numpy's `log1p`: `log(1 + x)`, accurate near 0.
    Log1p,
    /// numpy's `log2`.
    Log2,
    /// numpy's `log10`.
    Log10,
    /// numpy's `sqrt`.
    Sqrt,
    /// numpy's `cbrt`.
    Cbrt,
}

/// A binary math function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    /// numpy's `arctan2(a, b)`: the angle of the point `(b, a)`.
    Arctan2,
    /// numpy's `hypot(a, b)`: `sqrt(a² + b²)` without overflow or underflow.
    Hypot,
}

/// `f` of every element of `x`, into `out`.
///
/// # Panics
///
/// If `out` and `x` differ in length.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{unary_f64, Unary};
///
/// let mut out = [0.0; 3];
/// unary_f64(Unary::Arcsin, &[0.0, 1.0, 2.0], &mut out);
/// assert_eq!(out[0], 0.0);
/// assert!((out[1] - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
/// assert!(out[2].is_nan());
/// ```
pub fn unary_f64(f: Unary, x: &[f64], out: &mut [f64]) {
    check_lengths("unary_f64", &[x.len()], out.len());
    unary_f64_on(isa(), f, x, out);
}

/// `f` of every element of `x`, into `out`, computed in `f64`.
///
/// # Panics
///
/// If `out` and `x` differ in length.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{unary_f32, Unary};
///
/// let mut out = [0.0f32; 2];
/// unary_f32(Unary::Log, &[1.0, 0.0], &mut out);
/// assert_eq!(out, [0.0, f32::NEG_INFINITY]);
/// ```
pub fn unary_f32(f: Unary, x: &[f32], out: &mut [f32]) {
    check_lengths("unary_f32", &[x.len()], out.len());
    unary_f32_on(isa(), f, x, out);
}

/// `f` of every element of `buf`, in place.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{unary_f64_in_place, Unary};
///
/// let mut tile = [1.0, 8.0, -27.0];
/// unary_f64_in_place(Unary::Cbrt, &mut tile);
/// assert_eq!(tile, [1.0, 2.0, -3.0]);
/// ```
pub fn unary_f64_in_place(f: Unary, buf: &mut [f64]) {
    unary_f64_in_place_on(isa(), f, buf);
}

/// `f` of every element of `buf`, in place, computed in `f64`.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{unary_f32_in_place, Unary};
///
/// let mut tile = [4.0f32, 9.0];
/// unary_f32_in_place(Unary::Sqrt, &mut tile);
/// assert_eq!(tile, [2.0, 3.0]);
/// ```
pub fn unary_f32_in_place(f: Unary, buf: &mut [f32]) {
    unary_f32_in_place_on(isa(), f, buf);
}

/// `f` of the pairs of elements of `a` and `b`, into `out`.
///
/// # Panics
///
/// If `a`, `b` and `out` differ in length.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{binary_f64, Binary};
///
/// let mut out = [0.0; 2];
/// binary_f64(Binary::Hypot, &[3.0, 1e300], &[4.0, 1e300], &mut out);
/// assert_eq!(out[0], 5.0);
/// assert!(out[1].is_finite());
/// ```
pub fn binary_f64(f: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
    check_lengths("binary_f64", &[a.len(), b.len()], out.len());
    binary_f64_on(isa(), f, a, b, out);
}

/// `f` of the pairs of elements of `a` and `b`, into `out`, computed in `f64`.
///
/// # Panics
///
/// If `a`, `b` and `out` differ in length.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{binary_f32, Binary};
///
/// let mut out = [0.0f32; 2];
/// binary_f32(Binary::Arctan2, &[0.0, -0.0], &[-1.0, 1.0], &mut out);
/// assert_eq!(out[0], std::f32::consts::PI);
/// assert!(out[1] == 0.0 && out[1].is_sign_negative());
/// ```
pub fn binary_f32(f: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    check_lengths("binary_f32", &[a.len(), b.len()], out.len());
    binary_f32_on(isa(), f, a, b, out);
}

/// `f` of the pairs of elements of `a` and `b`, into `a`.
///
/// # Panics
///
/// If `a` and `b` differ in length.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{binary_f64_in_place, Binary};
///
/// let mut a = [1.0];
/// binary_f64_in_place(Binary::Arctan2, &mut a, &[1.0]);
/// assert!((a[0] - std::f64::consts::FRAC_PI_4).abs() < 1e-15);
/// ```
pub fn binary_f64_in_place(f: Binary, a: &mut [f64], b: &[f64]) {
    check_lengths("binary_f64_in_place", &[b.len()], a.len());
    binary_f64_in_place_on(isa(), f, a, b);
}

/// `f` of the pairs of elements of `a` and `b`, into `a`, computed in `f64`.
///
/// # Panics
///
/// If `a` and `b` differ in length.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::math::{binary_f32_in_place, Binary};
///
/// let mut a = [3.0f32];
/// binary_f32_in_place(Binary::Hypot, &mut a, &[4.0]);
/// assert_eq!(a, [5.0]);
/// ```
pub fn binary_f32_in_place(f: Binary, a: &mut [f32], b: &[f32]) {
    check_lengths("binary_f32_in_place", &[b.len()], a.len());
    binary_f32_in_place_on(isa(), f, a, b);
}

/// Panics unless every input length equals the output's.
fn check_lengths(what: &str, inputs: &[usize], out: usize) {
    assert!(
        inputs.iter().all(|&n| n == out),
        "{what} of {} elements into {out}",
        inputs
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
}

/// Which compiled copy of the loops runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// std's functions, one element at a time.
    Scalar,
    /// The kernels compiled for AVX2 and FMA: four `f64` a vector.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The kernels compiled for AVX-512: eight `f64` a vector.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The best copy this CPU runs, detected once.
fn isa() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(|| *Isa::available().last().unwrap_or(&Isa::Scalar))
}

impl Isa {
    /// The copies this CPU runs, worst first.
    fn available() -> Vec<Isa> {
        #[allow(unused_mut)] // only x86-64 has copies beyond the scalar one
        let mut isas = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            // The kernels lean on fused multiply-adds for exact argument reductions, so
            // a vector copy needs FMA as well as the vector width.
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                isas.push(Isa::Avx2);
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512vl")
                {
                    isas.push(Isa::Avx512);
                }
            }
        }
        isas
    }
}

/// `$name` of the copy `$isa`, or `$scalar` for the scalar one.
macro_rules! dispatch {
    ($isa:expr, $scalar:expr, $name:ident($($arg:expr),*)) => {
        match $isa {
            Isa::Scalar => $scalar,
            // SAFETY: `Isa::available` lists this copy only after detecting the CPU
            // features it was compiled for.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2::$name($($arg),*) },
            // SAFETY: as for AVX2.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { avx512::$name($($arg),*) },
        }
    };
}

fn unary_f64_on(isa: Isa, f: Unary, x: &[f64], out: &mut [f64]) {
    dispatch!(isa, unary_f64_std(f, (x, out)), unary_f64(f, x, out))
}

fn unary_f64_in_place_on(isa: Isa, f: Unary, buf: &mut [f64]) {
    dispatch!(isa, unary_f64_std(f, buf), unary_f64_in_place(f, buf))
}

fn unary_f32_on(isa: Isa, f: Unary, x: &[f32], out: &mut [f32]) {
    dispatch!(
        isa,
        f32_via_f64(x, out, |b| unary_f64_std(f, b)),
        unary_f32(f, x, out)
    )
}

fn unary_f32_in_place_on(isa: Isa, f: Unary, buf: &mut [f32]) {
    dispatch!(
        isa,
        f32_via_f64_in_place(buf, |b| unary_f64_std(f, b)),
        unary_f32_in_place(f, buf)
    )
}

fn binary_f64_on(isa: Isa, f: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
    dispatch!(
        isa,
        binary_f64_std(f, (a, b, out)),
        binary_f64(f, a, b, out)
    )
}

fn binary_f64_in_place_on(isa: Isa, f: Binary, a: &mut [f64], b: &[f64]) {
    dispatch!(isa, binary_f64_std(f, (a, b)), binary_f64_in_place(f, a, b))
}

fn binary_f32_on(isa: Isa, f: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    dispatch!(
        isa,
        f32_pairs_via_f64(a, b, out, |x, y| binary_f64_std(f, (x, y))),
        binary_f32(f, a, b, out)
    )
}

fn binary_f32_in_place_on(isa: Isa, f: Binary, a: &mut [f32], b: &[f32]) {
    dispatch!(
        isa,
        f32_pairs_via_f64_in_place(a, b, |x, y| binary_f64_std(f, (x, y))),
        binary_f32_in_place(f, a, b)
    )
}

/// One copy of the vector loops, compiled with the target features given.
#[cfg(target_arch = "x86_64")]
macro_rules! vector_copy {
    ($name:ident, $features:literal) => {
        mod $name {
            use super::{Binary, Unary};

            #[target_feature(enable = $features)]
            pub(super) fn unary_f64(f: Unary, x: &[f64], out: &mut [f64]) {
                super::unary_f64_vector(f, (x, out));
            }

            #[target_feature(enable = $features)]
            pub(super) fn unary_f64_in_place(f: Unary, buf: &mut [f64]) {
                super::unary_f64_vector(f, buf);
            }

            // The `f32` loops widen a block at a time and call the `f64` loop rather
            // than inline the kernels once more: one call a block costs nothing.
            #[target_feature(enable = $features)]
            pub(super) fn unary_f32(f: Unary, x: &[f32], out: &mut [f32]) {
                super::f32_via_f64(x, out, |b| unary_f64_in_place(f, b));
            }

            #[target_feature(enable = $features)]
            pub(super) fn unary_f32_in_place(f: Unary, buf: &mut [f32]) {
                super::f32_via_f64_in_place(buf, |b| unary_f64_in_place(f, b));
            }

            #[target_feature(enable = $features)]
            pub(super) fn binary_f64(f: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
                super::binary_f64_vector(f, (a, b, out));
            }

            #[target_feature(enable = $features)]
            pub(super) fn binary_f64_in_place(f: Binary, a: &mut [f64], b: &[f64]) {
                super::binary_f64_vector(f, (a, b));
            }

            #[target_feature(enable = $features)]
            pub(super) fn binary_f32(f: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
                super::f32_pairs_via_f64(a, b, out, |x, y| binary_f64_in_place(f, x, y));
            }

            #[target_feature(enable = $features)]
            pub(super) fn binary_f32_in_place(f: Binary, a: &mut [f32], b: &[f32]) {
                super::f32_pairs_via_f64_in_place(a, b, |x, y| binary_f64_in_place(f, x, y));
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
vector_copy!(avx2, "avx2,fma");
#[cfg(target_arch = "x86_64")]
vector_copy!(avx512, "avx512f,avx512dq,avx512vl,fma");

/// The fallback: std's functions.
fn unary_f64_std(f: Unary, tile: impl UnaryTile) {
    let g: fn(f64) -> f64 = match f {
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
    };
    tile.map(g);
}

/// The fallback of the binary functions: std's.
fn binary_f64_std(f: Binary, tile: impl BinaryTile) {
    let g: fn(f64, f64) -> f64 = match f {
        Binary::Arctan2 => f64::atan2,
        Binary::Hypot => f64::hypot,
    };
    tile.map(g);
}

/// The vector kernels over `tile`; inlined into each copy so that LLVM vectorizes them
/// for its target features.
#[inline(always)]
fn unary_f64_vector(f: Unary, tile: impl UnaryTile) {
    match f {
        Unary::Sin => tile.map_trig(sin, f64::sin),
        Unary::Cos => tile.map_trig(cos, f64::cos),
        Unary::Tan => tile.map_trig(tan, f64::tan),
        Unary::Arcsin => tile.map(asin),
        Unary::Arccos => tile.map(acos),
        Unary::Arctan => tile.map(atan),
        Unary::Sinh => tile.map(sinh),
        Unary::Cosh => tile.map(cosh),
        Unary::Tanh => tile.map(tanh),
        Unary::Exp => tile.map(exp),
        Unary::Expm1 => tile.map(expm1),
        Unary::Log => tile.map(log),
        Unary::Log1p => tile.map(log1p),
        Unary::Log2 => tile.map(log2),
        Unary::Log10 => tile.map(log10),
        // The hardware's square root is correctly rounded and vectorizes as it is.
        Unary::Sqrt => tile.map(f64::sqrt),
        Unary::Cbrt => tile.map(cbrt),
    }
}

/// The vector kernels of the binary functions.
#[inline(always)]
fn binary_f64_vector(f: Binary, tile: impl BinaryTile) {
    match f {
        Binary::Arctan2 => tile.map(atan2),
        Binary::Hypot => tile.map(hypot),
    }
}

/// Past this magnitude the three-part reduction by π/2 no longer gives the remainder to
/// full precision, so `sin`, `cos` and `tan` take std's (exact) reduction there.
const TRIG_LIMIT: f64 = 1e9;

/// How many elements `map_trig` checks for large arguments at a time.
const TRIG_BLOCK: usize = 256;

/// Whether an element is past `TRIG_LIMIT` (and finite: infinities are the kernels').
#[inline(always)]
fn trig_far(v: f64) -> bool {
    (v.abs() > TRIG_LIMIT) & (v.abs() < f64::INFINITY)
}

/// Whether a block holds an element past `TRIG_LIMIT`; a fold with `|` vectorizes
/// where `any` (which stops early) would not.
#[inline(always)]
fn any_trig_far(block: &[f64]) -> bool {
    block.iter().fold(false, |any, &v| any | trig_far(v))
}

/// Where a unary loop reads and writes: one slice in place, or one slice into another
/// of its length. Both are compiled, so that neither pays for a copy.
trait UnaryTile {
    /// `kernel` of every element.
    fn map(self, kernel: impl Fn(f64) -> f64);
    /// `kernel` of every element, except those past `TRIG_LIMIT`, which get `exact`.
    fn map_trig(self, kernel: impl Fn(f64) -> f64, exact: impl Fn(f64) -> f64);
}

impl UnaryTile for &mut [f64] {
    #[inline(always)]
    fn map(self, kernel: impl Fn(f64) -> f64) {
        for v in self.iter_mut() {
            *v = kernel(*v);
        }
    }

    #[inline(always)]
    fn map_trig(self, kernel: impl Fn(f64) -> f64, exact: impl Fn(f64) -> f64) {
        for block in self.chunks_mut(TRIG_BLOCK) {
            if any_trig_far(block) {
                block.map(|v| if trig_far(v) { exact(v) } else { kernel(v) });
            } else {
                block.map(&kernel);
            }
        }
    }
}

impl UnaryTile for (&[f64], &mut [f64]) {
    #[inline(always)]
    fn map(self, kernel: impl Fn(f64) -> f64) {
        let (x, out) = self;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = kernel(v);
        }
    }

    #[inline(always)]
    fn map_trig(self, kernel: impl Fn(f64) -> f64, exact: impl Fn(f64) -> f64) {
        let (x, out) = self;
        for (xb, ob) in x.chunks(TRIG_BLOCK).zip(out.chunks_mut(TRIG_BLOCK)) {
            if any_trig_far(xb) {
                (xb, ob).map(|v| if trig_far(v) { exact(v) } else { kernel(v) });
            } else {
                (xb, ob).map(&kernel);
            }
        }
    }
}

/// Where a binary loop reads and writes: into its first operand, or into a third slice.
trait BinaryTile {
    /// `kernel` of every pair of elements.
    fn map(self, kernel: impl Fn(f64, f64) -> f64);
}

impl BinaryTile for (&mut [f64], &[f64]) {
    #[inline(always)]
    fn map(self, kernel: impl Fn(f64, f64) -> f64) {
        let (a, b) = self;
        for (v, &w) in a.iter_mut().zip(b) {
            *v = kernel(*v, w);
        }
    }
}

impl BinaryTile for (&[f64], &[f64], &mut [f64]) {
    #[inline(always)]
    fn map(self, kernel: impl Fn(f64, f64) -> f64) {
        let (a, b, out) = self;
        for ((o, &v), &w) in out.iter_mut().zip(a).zip(b) {
            *o = kernel(v, w);
        }
    }
}

/// How many `f32` are widened to `f64` at a time: a stack buffer that stays in L1.
const F32_BLOCK: usize = 512;

/// `f64_map` over `x` widened to `f64` a block at a time, rounded into `out`.
#[inline(always)]
fn f32_via_f64(x: &[f32], out: &mut [f32], f64_map: impl Fn(&mut [f64])) {
    let mut wide = [0.0f64; F32_BLOCK];
    for (xb, ob) in x.chunks(F32_BLOCK).zip(out.chunks_mut(F32_BLOCK)) {
        let wide = &mut wide[..xb.len()];
        widen(xb, wide);
        f64_map(wide);
        narrow(wide, ob);
    }
}

/// `f64_map` over `buf` widened to `f64` a block at a time, rounded back.
#[inline(always)]
fn f32_via_f64_in_place(buf: &mut [f32], f64_map: impl Fn(&mut [f64])) {
    let mut wide = [0.0f64; F32_BLOCK];
    for block in buf.chunks_mut(F32_BLOCK) {
        let wide = &mut wide[..block.len()];
        widen(block, wide);
        f64_map(wide);
        narrow(wide, block);
    }
}

/// `f64_map` over `a` and `b` widened to `f64` a block at a time, rounded into `out`.
#[inline(always)]
fn f32_pairs_via_f64(a: &[f32], b: &[f32], out: &mut [f32], f64_map: impl Fn(&mut [f64], &[f64])) {
    let (mut wide_a, mut wide_b) = ([0.0f64; F32_BLOCK], [0.0f64; F32_BLOCK]);
    for ((ab, bb), ob) in a
        .chunks(F32_BLOCK)
        .zip(b.chunks(F32_BLOCK))
        .zip(out.chunks_mut(F32_BLOCK))
    {
        let (wa, wb) = (&mut wide_a[..ab.len()], &mut wide_b[..ab.len()]);
        widen(ab, wa);
        widen(bb, wb);
        f64_map(wa, wb);
        narrow(wa, ob);
    }
}

/// `f64_map` over `a` and `b` widened to `f64` a block at a time, rounded into `a`.
#[inline(always)]
fn f32_pairs_via_f64_in_place(a: &mut [f32], b: &[f32], f64_map: impl Fn(&mut [f64], &[f64])) {
    let (mut wide_a, mut wide_b) = ([0.0f64; F32_BLOCK], [0.0f64; F32_BLOCK]);
    for (ab, bb) in a.chunks_mut(F32_BLOCK).zip(b.chunks(F32_BLOCK)) {
        let (wa, wb) = (&mut wide_a[..ab.len()], &mut wide_b[..ab.len()]);
        widen(ab, wa);
        widen(bb, wb);
        f64_map(wa, wb);
        narrow(wa, ab);
    }
}

#[inline(always)]
fn widen(x: &[f32], wide: &mut [f64]) {
    for (w, &v) in wide.iter_mut().zip(x) {
        *w = f64::from(v);
    }
}

#[inline(always)]
fn narrow(wide: &[f64], out: &mut [f32]) {
    for (o, &w) in out.iter_mut().zip(wide) {
        *o = w as f32;
    }
}

// ---------------------------------------------------------------------------------------
// Shared pieces of the kernels. Everything is straight-line code on `f64` and its bits:
// conversions between floats and 64-bit integers do not vectorize on AVX2, so integers
// are read from and written to the bits of floats.

/// 1.5·2⁵²: adding it to a float of magnitude below 2⁵¹ rounds it to an integer and
/// leaves that integer, two's complement, in the low bits of the sum's mantissa.
const ROUND: f64 = 6755399441055744.0;
const TWO52: f64 = 4503599627370496.0;
const TWO54: f64 = 18014398509481984.0;
const TWO_M16: f64 = 1.52587890625e-05;
const TWO_M18: f64 = 3.814697265625e-06;
/// The bits of 2⁵²: OR-ing an integer below 2⁵² into them makes the float 2⁵² + integer.
const TWO52_BITS: u64 = 0x4330_0000_0000_0000;
const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
const SIGN_BIT: u64 = 1 << 63;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;

/// Horner's scheme with fused multiply-adds; `c[0]` is the constant term.
#[inline(always)]
fn poly<const N: usize>(x: f64, c: &[f64; N]) -> f64 {
    let mut acc = c[N - 1];
    for &ci in c[..N - 1].iter().rev() {
        acc = acc.mul_add(x, ci);
    }
    acc
}

/// `x` limited to `[lo, hi]`; NaN stays NaN (unlike `f64::clamp` it never panics and
/// compiles to two vector min/max instructions).
#[inline(always)]
fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    let x = if x < lo { lo } else { x };
    if x > hi {
        hi
    } else {
        x
    }
}

/// 2ᵏ for an integral `k` in [-1022, 1023], written into the exponent field.
#[inline(always)]
fn pow2(k: f64) -> f64 {
    f64::from_bits((k + ROUND).to_bits().wrapping_add(1023) << 52)
}

/// `p`·2ⁿ for an integral `n` in [-2044, 2046]: two factors, so that neither overflows
/// and a subnormal result is rounded once.
#[inline(always)]
fn scale(p: f64, n: f64) -> f64 {
    let h = (n * 0.5).floor();
    p * pow2(h) * pow2(n - h)
}

/// `y` negated where bit 1 of `q` is set (the lower half of the circle).
#[inline(always)]
fn negate_if_bit1(y: f64, q: u64) -> f64 {
    f64::from_bits(y.to_bits() ^ ((q & 2) << 62))
}

// exp and its family ---------------------------------------------------------------------

const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// ln 2 in two parts; the first has 42 significant bits, so that its product with an
/// exponent (below 2¹¹) is exact.
const LN2_HI: f64 = 0.6931471805598903;
const LN2_LO: f64 = 5.497923018708371e-14;

/// (eʳ - 1 - r)/r² on |r| ≤ ln2/2: relative error 2⁻⁵⁷.
const EXPM1: [f64; 11] = [
    0.5,
    0.1666666666666667,
    0.041666666666666616,
    0.008333333333326167,
    0.0013888888888917953,
    0.00019841269874721143,
    2.4801587245751096e-05,
    2.755725551384775e-06,
    2.755734961267914e-07,
    2.5105173774663012e-08,
    2.0889375827209598e-09,
];

/// `x` = n·ln2 + r with n integral and |r| ≤ ln2/2, for |x| < 2⁵⁰; the product of n with
/// the first part of ln 2 is exact and so is its difference from `x`.
#[inline(always)]
fn exp_reduce(x: f64) -> (f64, f64) {
    let n = (x * LOG2_E).round_ties_even();
    let r = (-n).mul_add(LN2_HI, x);
    (n, (-n).mul_add(LN2_LO, r))
}

/// eʳ - 1 for |r| ≤ ln2/2.
#[inline(always)]
fn expm1_reduced(r: f64) -> f64 {
    (r * r).mul_add(poly(r, &EXPM1), r)
}

#[inline(always)]
fn exp(x: f64) -> f64 {
    // Past the clamp the result is 0 or infinite anyway; `scale` gives both.
    let (n, r) = exp_reduce(clamp(x, -746.0, 710.0));
    scale(1.0 + expm1_reduced(r), n)
}

#[inline(always)]
fn expm1(x: f64) -> f64 {
    // Below -45, eˣ - 1 rounds to -1.
    let (n, r) = exp_reduce(clamp(x, -45.0, 710.0));
    let m = expm1_reduced(r);
    // 2ⁿ(1 + m) - 1 = 2ⁿm + (2ⁿ - 1), where 2ⁿ - 1 is exact for small n, so nothing of m
    // is lost near 0; past 2⁶⁰ the -1 no longer shows.
    let t = pow2(if n > 60.0 { 60.0 } else { n });
    let near = t.mul_add(m, t - 1.0);
    let far = scale(1.0 + m, n);
    let y = if n > 60.0 { far } else { near };
    // The reduction turns -0 into +0.
    if x == 0.0 {
        x
    } else {
        y
    }
}

/// Past this, e⁻ˣ is below 2⁻⁶³ of eˣ, so cosh and sinh are eˣ/2.
const HYPERBOLIC_FAR: f64 = 22.0;

#[inline(always)]
fn sinh(x: f64) -> f64 {
    let a = x.abs();
    let (n, r) = exp_reduce(clamp(a, 0.0, 711.0));
    let m = expm1_reduced(r);
    // (eᵃ - e⁻ᵃ)/2 = (t + t/(t + 1))/2 with t = eᵃ - 1: no cancellation near 0.
    let p = pow2(n);
    let t = p.mul_add(m, p - 1.0);
    let near = 0.5 * (t + t / (t + 1.0));
    // eᵃ/2 = (1 + m)·2ⁿ⁻¹ reaches past the largest eᵃ.
    let far = scale(1.0 + m, n - 1.0);
    let y = if a > HYPERBOLIC_FAR { far } else { near };
    y.copysign(x)
}

#[inline(always)]
fn cosh(x: f64) -> f64 {
    let a = x.abs();
    let (n, r) = exp_reduce(clamp(a, 0.0, 711.0));
    let e = 1.0 + expm1_reduced(r);
    let ea = e * pow2(if n > 60.0 { 60.0 } else { n });
    let near = 0.5 * ea + 0.5 / ea;
    let far = scale(e, n - 1.0);
    if a > HYPERBOLIC_FAR {
        far
    } else {
        near
    }
}

#[inline(always)]
fn tanh(x: f64) -> f64 {
    // tanh a = -t/(t + 2) with t = e⁻²ᵃ - 1 in (-1, 0]: no overflow for any a, no
    // cancellation near 0.
    let t = expm1(-2.0 * x.abs());
    (-t / (t + 2.0)).copysign(x)
}

// log and its family ---------------------------------------------------------------------

/// (2·atanh(√z)/√z - 2)/z on z ≤ (3 - 2√2)²: relative error 2⁻⁵¹.
const LOG: [f64; 7] = [
    0.666666666666667,
    0.3999999999989918,
    0.2857142862610655,
    0.2222221111576007,
    0.18182890374230834,
    0.15331683840434487,
    0.14616877701397524,
];
const LOG10_2_HI: f64 = 0.30102999566395283;
const LOG10_2_LO: f64 = 2.8363394551044964e-14;

/// A positive finite `x` as 2ᵉ(1 + f) with 1 + f in [√2/2, √2).
#[inline(always)]
fn log_split(x: f64) -> (f64, f64) {
    let subnormal = x < f64::MIN_POSITIVE;
    let x = if subnormal { x * TWO54 } else { x };
    let bits = x.to_bits();
    let e = f64::from_bits(TWO52_BITS | (bits >> 52)) - (TWO52 + 1023.0);
    let m = f64::from_bits((bits & MANTISSA) | ONE_BITS);
    let high = m > std::f64::consts::SQRT_2;
    let m = if high { m * 0.5 } else { m };
    let e = if high { e + 1.0 } else { e };
    let e = if subnormal { e - 54.0 } else { e };
    (e, m - 1.0)
}

/// For 1 + f in [√2/2, √2): (f²/2, c) with log(1 + f) = f - (f²/2 - c), c small. With
/// s = f/(2 + f), log(1 + f) = 2·atanh(s) = f - f²/2 + s(f²/2 + R(s²)).
#[inline(always)]
fn log1p_reduced(f: f64) -> (f64, f64) {
    let s = f / (2.0 + f);
    let z = s * s;
    let hfsq = 0.5 * f * f;
    (hfsq, s * z.mul_add(poly(z, &LOG), hfsq))
}

/// NaN below 0, -∞ at 0, and `x` itself for +∞ and NaN.
#[inline(always)]
fn log_specials(x: f64, y: f64) -> f64 {
    let y = if x < 0.0 { f64::NAN } else { y };
    let y = if x == 0.0 { f64::NEG_INFINITY } else { y };
    if x < f64::INFINITY {
        y
    } else {
        x
    }
}

#[inline(always)]
fn log(x: f64) -> f64 {
    let (e, f) = log_split(x);
    let (hfsq, c) = log1p_reduced(f);
    let y = e.mul_add(LN2_HI, f - (hfsq - e.mul_add(LN2_LO, c)));
    log_specials(x, y)
}

#[inline(always)]
fn log2(x: f64) -> f64 {
    let (e, f) = log_split(x);
    let (hfsq, c) = log1p_reduced(f);
    let y = e + (f - (hfsq - c)) * LOG2_E;
    log_specials(x, y)
}

#[inline(always)]
fn log10(x: f64) -> f64 {
    let (e, f) = log_split(x);
    let (hfsq, c) = log1p_reduced(f);
    let lo = e.mul_add(LOG10_2_LO, (f - (hfsq - c)) * std::f64::consts::LOG10_E);
    let y = e.mul_add(LOG10_2_HI, lo);
    log_specials(x, y)
}

#[inline(always)]
fn log1p(x: f64) -> f64 {
    let u = 1.0 + x;
    // The rounding error of 1 + x, exactly (Fast2Sum, the larger term first), carried
    // as the first-order correction c/u.
    let c = if x >= 1.0 {
        1.0 - (u - x)
    } else {
        x - (u - 1.0)
    };
    let (e, f) = log_split(u);
    let (hfsq, d) = log1p_reduced(f);
    let lo = e.mul_add(LN2_LO, c / u) + d;
    let y = e.mul_add(LN2_HI, f - (hfsq - lo));
    let y = if x < -1.0 { f64::NAN } else { y };
    let y = if x == -1.0 { f64::NEG_INFINITY } else { y };
    // +∞ and NaN give themselves, and so does ±0 (whose sign the sum above loses).
    if (x < f64::INFINITY) & (x != 0.0) {
        y
    } else {
        x
    }
}

// sin, cos, tan --------------------------------------------------------------------------

const FRAC_2_PI: f64 = std::f64::consts::FRAC_2_PI;
/// π/2 in three parts, each the rounding of what the previous ones leave.
const PIO2_1: f64 = std::f64::consts::FRAC_PI_2;
const PIO2_2: f64 = 6.123233995736766e-17;
const PIO2_3: f64 = -1.4973849048591698e-33;

/// (sin √z - √z)/(z√z) on z ≤ (π/4)²: relative error 2⁻⁵².
const SIN: [f64; 6] = [
    -0.16666666666666666,
    0.008333333333330925,
    -0.00019841269836727771,
    2.7557316088584853e-06,
    -2.5051129259172466e-08,
    1.591796170924284e-10,
];
/// (cos √z - 1 + z/2)/z² on z ≤ (π/4)²: relative error 2⁻⁵⁴.
const COS: [f64; 6] = [
    0.041666666666666664,
    -0.0013888888888887387,
    2.4801587298753285e-05,
    -2.7557317266097453e-07,
    2.087614522467055e-09,
    -1.1382564735960158e-11,
];

/// `x` = q·π/2 + r with |r| ≤ π/4 (a hair more where q rounds the other way), for
/// |x| ≤ `TRIG_LIMIT`; returns q's bits (its low bits are q mod 4) and r.
///
/// With FMA, x - q·PIO2_1 is exact (the difference is a multiple of the last bit of
/// both), and each later part is subtracted with one rounding of a value already
/// close to r, so r is good to its last bit.
#[inline(always)]
fn trig_reduce(x: f64) -> (u64, f64) {
    let q = (x * FRAC_2_PI).round_ties_even();
    let r = (-q).mul_add(PIO2_1, x);
    let r = (-q).mul_add(PIO2_2, r);
    let r = (-q).mul_add(PIO2_3, r);
    ((q + ROUND).to_bits(), r)
}

/// sin r and cos r for |r| ≤ π/4.
#[inline(always)]
fn sin_cos_reduced(r: f64) -> (f64, f64) {
    let z = r * r;
    let s = (r * z).mul_add(poly(z, &SIN), r);
    // 1 - z/2 + z²C(z), with the rounding error of 1 - z/2 recovered.
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    let c = w + (z * z).mul_add(poly(z, &COS), (1.0 - w) - hz);
    (s, c)
}

#[inline(always)]
fn sin(x: f64) -> f64 {
    let (q, r) = trig_reduce(x);
    let (s, c) = sin_cos_reduced(r);
    let y = negate_if_bit1(if q & 1 == 0 { s } else { c }, q);
    // The reduction turns -0 into +0.
    if x == 0.0 {
        x
    } else {
        y
    }
}

#[inline(always)]
fn cos(x: f64) -> f64 {
    let (q, r) = trig_reduce(x);
    let (s, c) = sin_cos_reduced(r);
    // cos x = sin(x + π/2): one quadrant on.
    let q = q.wrapping_add(1);
    negate_if_bit1(if q & 1 == 0 { s } else { c }, q)
}

#[inline(always)]
fn tan(x: f64) -> f64 {
    let (q, r) = trig_reduce(x);
    let (s, c) = sin_cos_reduced(r);
    // tan r in even quadrants, -cot r in odd ones: one division either way.
    let even = q & 1 == 0;
    let y = if even { s } else { -c } / if even { c } else { s };
    if x == 0.0 {
        x
    } else {
        y
    }
}

// arcsin, arccos, arctan, arctan2 --------------------------------------------------------

const FRAC_PI_2_HI: f64 = PIO2_1;
const FRAC_PI_2_LO: f64 = PIO2_2;
const PI_HI: f64 = std::f64::consts::PI;
const PI_LO: f64 = 1.2246467991473532e-16;
const FRAC_PI_4_HI: f64 = std::f64::consts::FRAC_PI_4;
const FRAC_PI_4_LO: f64 = 3.061616997868383e-17;
const TAN_PI_8: f64 = 0.41421356237309503;
const TAN_3PI_8: f64 = 2.414213562373095;

/// (asin √z - √z)/(z√z) on z ≤ 1/4: relative error 2⁻⁴⁹·⁵, which reaches the result
/// scaled by z·(asin √z - √z)/(z√z) ≤ 1/20: below 2⁻⁵⁴.
const ASIN: [f64; 12] = [
    0.16666666666666646,
    0.07500000000022013,
    0.044642857101406544,
    0.030381947494005468,
    0.02237204354178348,
    0.01735533677575448,
    0.013928754117649236,
    0.011882243061764315,
    0.007770416012786277,
    0.016132852526199105,
    -0.010913561753609427,
    0.02828924241859583,
];

/// (atan √z - √z)/(z√z) on z ≤ tan²(π/8): relative error 2⁻⁵²·⁷.
const ATAN: [f64; 11] = [
    -0.3333333333333333,
    0.1999999999999561,
    -0.14285714284683718,
    0.11111111016529829,
    -0.09090904626117514,
    0.07692184230481101,
    -0.06664525165849888,
    0.05858260999448078,
    -0.05086003375556494,
    0.039246803091979,
    -0.019194499224060284,
];

/// For |x| ≤ 1/2, (false, asin |x|); above, (true, asin √((1 - |x|)/2)), from which
/// asin |x| = π/2 - 2·that. One polynomial serves both, so there is no branch.
#[inline(always)]
fn asin_reduced(x: f64) -> (bool, f64) {
    let a = x.abs();
    let far = a > 0.5;
    // (1 - a)/2 is exact for a in [1/2, 1] (Sterbenz).
    let z = if far { 0.5 - 0.5 * a } else { a * a };
    let s = if far { z.sqrt() } else { a };
    (far, (s * z).mul_add(poly(z, &ASIN), s))
}

#[inline(always)]
fn asin(x: f64) -> f64 {
    let (far, u) = asin_reduced(x);
    // u near 0, π/2 - 2u above 1/2: one expression, as k·u + offset, since LLVM would
    // specialize u to each side of a select on `far` and so evaluate the polynomial twice.
    let k: f64 = if far { -2.0 } else { 1.0 };
    let hi = if far { FRAC_PI_2_HI } else { 0.0 };
    let lo = if far { FRAC_PI_2_LO } else { 0.0 };
    (hi + k.mul_add(u, lo)).copysign(x)
}

#[inline(always)]
fn acos(x: f64) -> f64 {
    let (far, u) = asin_reduced(x);
    // π/2 - asin x near 0, 2u near 1, π - 2u near -1; as k·u + offset (see `asin`).
    let below = x < 0.0;
    let k: f64 = match (far, below) {
        (false, false) => -1.0,
        (false, true) => 1.0,
        (true, false) => 2.0,
        (true, true) => -2.0,
    };
    let hi = if far {
        if below {
            PI_HI
        } else {
            0.0
        }
    } else {
        FRAC_PI_2_HI
    };
    let lo = if far {
        if below {
            PI_LO
        } else {
            0.0
        }
    } else {
        FRAC_PI_2_LO
    };
    hi + k.mul_add(u, lo)
}

/// atan(y/x) for y ≥ 0, x ≥ 0 (as `num`/`den` with an offset): y/x reduced to
/// [-tan(π/8), tan(π/8)] around 0, π/4 or π/2 with one division.
#[inline(always)]
fn atan_reduced(y: f64, x: f64) -> (f64, f64, f64, f64) {
    let above = y > TAN_3PI_8 * x;
    let middle = y > TAN_PI_8 * x;
    let num = if above {
        -x
    } else if middle {
        y - x
    } else {
        y
    };
    let den = if above {
        y
    } else if middle {
        y + x
    } else {
        x
    };
    let hi = if above {
        FRAC_PI_2_HI
    } else if middle {
        FRAC_PI_4_HI
    } else {
        0.0
    };
    let lo = if above {
        FRAC_PI_2_LO
    } else if middle {
        FRAC_PI_4_LO
    } else {
        0.0
    };
    (num, den, hi, lo)
}

/// atan t for |t| ≤ tan(π/8), added to an offset in two parts.
#[inline(always)]
fn atan_poly(t: f64, hi: f64, lo: f64) -> f64 {
    let z = t * t;
    hi + ((t * z).mul_add(poly(z, &ATAN), lo) + t)
}

#[inline(always)]
fn atan(x: f64) -> f64 {
    let (num, den, hi, lo) = atan_reduced(x.abs(), 1.0);
    atan_poly(num / den, hi, lo).copysign(x)
}

#[inline(always)]
fn atan2(y: f64, x: f64) -> f64 {
    let (ay, ax) = (y.abs(), x.abs());
    // Scaled down, y + x cannot overflow; the ratio is the same.
    let huge = (ay > 1e300) | (ax > 1e300);
    let ay = if huge { ay * TWO_M16 } else { ay };
    let ax = if huge { ax * TWO_M16 } else { ax };
    // Two infinities: the angle of (1, 1).
    let both_inf = (ay == f64::INFINITY) & (ax == f64::INFINITY);
    let ay = if both_inf { 1.0 } else { ay };
    let ax = if both_inf { 1.0 } else { ax };
    let (num, den, hi, lo) = atan_reduced(ay, ax);
    // Left of the axis (x < 0 or -0) the angle is π - atan(ay/ax): the small part and
    // the offset change sign and π is added (exactly, in the high part, for each of 0,
    // π/4 and π/2). By the sign bit rather than by selects on it, which LLVM would
    // answer by evaluating everything once for each side.
    let sign = x.to_bits() & SIGN_BIT;
    let flip = |v: f64| f64::from_bits(v.to_bits() ^ sign);
    let left = ((x.to_bits() as i64) >> 63) as u64;
    let pi_hi = f64::from_bits(PI_HI.to_bits() & left);
    let pi_lo = f64::from_bits(PI_LO.to_bits() & left);
    let angle = atan_poly(flip(num / den), pi_hi + flip(hi), pi_lo + flip(lo));
    // y = ±0: 0 or π exactly (0/0 above).
    let angle = if ay == 0.0 { pi_hi } else { angle };
    let angle = angle.copysign(y);
    if x.is_nan() | y.is_nan() {
        x + y
    } else {
        angle
    }
}

// hypot, cbrt ----------------------------------------------------------------------------

#[inline(always)]
fn hypot(x: f64, y: f64) -> f64 {
    let (ax, ay) = (x.abs(), y.abs());
    let m = if ax > ay { ax } else { ay };
    // Scale by a power of 2 that brings the larger to [1, 4): the squares neither
    // overflow nor underflow, and the scaling is exact both ways.
    let e = m.to_bits() >> 52;
    let e = if e < 1 { 1 } else { e };
    let e = if e > 2045 { 2045 } else { e };
    let down = f64::from_bits((2046 - e) << 52);
    let up = f64::from_bits(e << 52);
    let (sx, sy) = (ax * down, ay * down);
    let h = sx.mul_add(sx, sy * sy).sqrt() * up;
    // An infinite side wins over a NaN one (C99, as numpy).
    if (ax == f64::INFINITY) | (ay == f64::INFINITY) {
        f64::INFINITY
    } else {
        h
    }
}

/// The bits of a first guess at ∛x (of x's high word, a third of the exponent plus a
/// bias): 682 = 1023·2/3, less a tweak that centers the guess's error, ±3%.
const CBRT_BIAS: u64 = (682 << 20) - 35500;
/// (1 + e)^(-1/3), by its series to e⁷: from the guess's error, below 2⁻³⁰.
const CBRT_SERIES: [f64; 8] = [
    1.0,
    -1.0 / 3.0,
    2.0 / 9.0,
    -14.0 / 81.0,
    35.0 / 243.0,
    -91.0 / 729.0,
    728.0 / 6561.0,
    -1976.0 / 19683.0,
];

#[inline(always)]
fn cbrt(x: f64) -> f64 {
    let a = x.abs();
    let subnormal = a < f64::MIN_POSITIVE;
    let a_n = if subnormal { a * TWO54 } else { a };
    let high = a_n.to_bits() >> 32;
    let high = f64::from_bits(TWO52_BITS | high) - TWO52;
    let third = (high * (1.0 / 3.0) + ROUND).to_bits();
    let t = f64::from_bits(third.wrapping_add(CBRT_BIAS) << 32);
    // t·(t³/a)^(-1/3), to 2⁻³⁰ (t³ as t²·(t/a), which cannot overflow); then one
    // Newton step, to the last bit.
    let e = (t * t).mul_add(t / a_n, -1.0);
    let t = t * poly(e, &CBRT_SERIES);
    let t = t - (t - a_n / (t * t)) * (1.0 / 3.0);
    let t = if subnormal { t * TWO_M18 } else { t };
    let y = t.copysign(x);
    // ±0, ±∞ and NaN are their own cube roots.
    if (a < f64::INFINITY) & (a != 0.0) {
        y
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNARY: [Unary; 17] = [
        Unary::Sin,
        Unary::Cos,
        Unary::Tan,
        Unary::Arcsin,
        Unary::Arccos,
        Unary::Arctan,
        Unary::Sinh,
        Unary::Cosh,
        Unary::Tanh,
        Unary::Exp,
        Unary::Expm1,
        Unary::Log,
        Unary::Log1p,
        Unary::Log2,
        Unary::Log10,
        Unary::Sqrt,
        Unary::Cbrt,
    ];
    const BINARY: [Binary; 2] = [Binary::Arctan2, Binary::Hypot];

    /// The most a result may be from std's (or, in `f32`, from std's `f64` result
    /// rounded to `f32`).
    const MAX_ULPS: u64 = 4;

    /// How many samples each region of a domain gets.
    const SAMPLES: usize = 20_000;

    /// Distance in units in the last place along the ordered floats, where +0 and -0
    /// are one point (their signs are checked apart).
    fn ulps64(a: f64, b: f64) -> u64 {
        let key = |v: f64| {
            let bits = v.to_bits() as i64;
            if bits < 0 {
                -(bits & i64::MAX)
            } else {
                bits
            }
        };
        key(a).abs_diff(key(b))
    }

    fn ulps32(a: f32, b: f32) -> u64 {
        let key = |v: f32| {
            let bits = i64::from(v.to_bits() as i32);
            if bits < 0 {
                -(bits & i64::from(i32::MAX))
            } else {
                bits
            }
        };
        key(a).abs_diff(key(b))
    }

    /// Whether `got` passes for `want`: both NaN, or the same infinity or signed zero, or
    /// finite and within `MAX_ULPS`.
    fn close64(got: f64, want: f64) -> bool {
        if want.is_nan() || got.is_nan() {
            return want.is_nan() && got.is_nan();
        }
        if want == 0.0 || want.is_infinite() {
            return got.to_bits() == want.to_bits();
        }
        ulps64(got, want) <= MAX_ULPS
    }

    fn close32(got: f32, want: f32) -> bool {
        if want.is_nan() || got.is_nan() {
            return want.is_nan() && got.is_nan();
        }
        if want == 0.0 || want.is_infinite() {
            return got.to_bits() == want.to_bits();
        }
        ulps32(got, want) <= MAX_ULPS
    }

    /// SplitMix64: seeded, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn bits(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn unit(&mut self) -> f64 {
            (self.bits() >> 11) as f64 * 2f64.powi(-53)
        }

        fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }

        /// ±2ᵏ·(1..2) with k uniform in [lo, hi): every scale alike.
        fn log_uniform(&mut self, lo: i32, hi: i32) -> f64 {
            let k = lo + (self.bits() % (hi - lo) as u64) as i32;
            let sign = if self.bits() & 1 == 0 { 1.0 } else { -1.0 };
            sign * (1.0 + self.unit()) * 2f64.powi(k)
        }

        fn region(&mut self, n: usize, mut sample: impl FnMut(&mut Rng) -> f64) -> Vec<f64> {
            (0..n).map(|_| sample(self)).collect()
        }
    }

    /// The values every function is tried on, whatever its domain.
    fn special_values() -> Vec<f64> {
        let mut v = vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            5e-324,
            f64::MAX,
            f64::EPSILON,
            1.0,
            0.5,
            2.0,
            1.0 + f64::EPSILON,
            1.0 - f64::EPSILON / 2.0,
            0.5 + f64::EPSILON,
            std::f64::consts::FRAC_PI_2,
            std::f64::consts::PI,
            TAN_PI_8,
            TAN_3PI_8,
            HYPERBOLIC_FAR,
            22.5,
            45.0,
            709.782712893384,
            709.7827128933841,
            710.0,
            710.4758600739439,
            710.476,
            745.1332191019411,
            745.2,
            708.4,
            1e-300,
            1e300,
            TRIG_LIMIT,
            TRIG_LIMIT * 1.0000001,
            3.0e9,
            1e22,
            27.0,
            1e-310,
        ];
        let negated: Vec<f64> = v.iter().map(|x| -x).collect();
        v.extend(negated);
        v
    }

    /// Samples of the whole line (random bits: every scale, subnormals, NaNs), of the
    /// domain where `f` is used, and of its hard spots.
    fn samples(f: Unary, rng: &mut Rng) -> Vec<f64> {
        let n = SAMPLES;
        let mut v = special_values();
        v.extend(rng.region(n, |r| f64::from_bits(r.bits())));
        v.extend(rng.region(n, |r| r.log_uniform(-60, 12)));
        let pio2 = std::f64::consts::FRAC_PI_2;
        match f {
            Unary::Sin | Unary::Cos | Unary::Tan => {
                v.extend(rng.region(n, |r| r.uniform(-10.0, 10.0)));
                v.extend(rng.region(n, |r| r.uniform(-1e6, 1e6)));
                v.extend(rng.region(n, |r| r.uniform(-2.0 * TRIG_LIMIT, 2.0 * TRIG_LIMIT)));
                // The doubles nearest multiples of π/2 up to `TRIG_LIMIT`, where the remainder
                // cancels most.
                v.extend(rng.region(n, |r| {
                    let k = (r.bits() % 600_000_000) as f64;
                    let ulps = (r.bits() % 5) as i64 - 2;
                    f64::from_bits(((k * pio2).to_bits() as i64 + ulps) as u64)
                }));
            }
            Unary::Arcsin | Unary::Arccos => {
                v.extend(rng.region(n, |r| r.uniform(-1.0, 1.0)));
                v.extend(rng.region(n, |r| r.uniform(-1.1, 1.1)));
                v.extend(rng.region(n, |r| {
                    let k = (r.bits() % 53) as i32;
                    (1.0 - r.unit() * 2f64.powi(-k)).copysign(r.uniform(-1.0, 1.0))
                }));
                v.extend(rng.region(n, |r| r.uniform(0.49, 0.51).copysign(r.uniform(-1.0, 1.0))));
            }
            Unary::Arctan => {
                v.extend(rng.region(n, |r| r.uniform(-5.0, 5.0)));
                v.extend(rng.region(n, |r| r.log_uniform(-30, 60)));
                v.extend(rng.region(n, |r| TAN_PI_8 * r.uniform(0.99, 1.01)));
                v.extend(rng.region(n, |r| TAN_3PI_8 * r.uniform(0.99, 1.01)));
            }
            Unary::Sinh | Unary::Cosh | Unary::Tanh => {
                v.extend(rng.region(n, |r| r.uniform(-25.0, 25.0)));
                v.extend(rng.region(n, |r| r.uniform(-720.0, 720.0)));
                v.extend(rng.region(n, |r| r.uniform(-1.0, 1.0)));
            }
            Unary::Exp | Unary::Expm1 => {
                v.extend(rng.region(n, |r| r.uniform(-750.0, 750.0)));
                v.extend(rng.region(n, |r| r.uniform(-2.0, 2.0)));
                v.extend(rng.region(n, |r| r.uniform(-50.0, 50.0)));
                v.extend(rng.region(n, |r| r.uniform(-745.2, -705.0)));
                v.extend(rng.region(n, |r| r.uniform(705.0, 709.8)));
            }
            Unary::Log | Unary::Log2 | Unary::Log10 | Unary::Sqrt | Unary::Cbrt => {
                v.extend(rng.region(n, |r| f64::from_bits(r.bits() >> 1)));
                v.extend(rng.region(n, |r| r.uniform(0.0, 10.0)));
                v.extend(rng.region(n, |r| 1.0 + r.log_uniform(-53, -1)));
                v.extend(rng.region(n, |r| f64::from_bits(r.bits() % (1 << 52))));
            }
            Unary::Log1p => {
                v.extend(rng.region(n, |r| r.uniform(-1.0, 1.0)));
                v.extend(rng.region(n, |r| {
                    -1.0 + r.unit() * 2f64.powi(-((r.bits() % 53) as i32))
                }));
                v.extend(rng.region(n, |r| r.log_uniform(-60, 0)));
                v.extend(rng.region(n, |r| r.log_uniform(0, 1000).abs()));
            }
        }
        v
    }

    fn std_unary(f: Unary, x: f64) -> f64 {
        let mut one = [x];
        unary_f64_std(f, &mut one[..]);
        one[0]
    }

    fn std_binary(f: Binary, a: f64, b: f64) -> f64 {
        let mut one = [a];
        binary_f64_std(f, (&mut one[..], &[b][..]));
        one[0]
    }

    /// Panics at the first element where the two entry points differ: in the bits,
    /// except that any NaN matches any other (LLVM may order the operands of the
    /// addition that propagates a NaN differently in the two loops).
    fn assert_same<T: Copy + std::fmt::Debug>(
        a: &[T],
        b: &[T],
        bits: impl Fn(T) -> Option<u64>,
        what: &str,
    ) {
        if let Some(i) = a.iter().zip(b).position(|(&x, &y)| bits(x) != bits(y)) {
            panic!(
                "{what}: element {i} is {:?} into another slice, {:?} in place",
                a[i], b[i]
            );
        }
    }

    fn bits64(v: f64) -> Option<u64> {
        (!v.is_nan()).then_some(v.to_bits())
    }

    fn bits32(v: f32) -> Option<u64> {
        (!v.is_nan()).then_some(u64::from(v.to_bits()))
    }

    /// `f` of `x` on the copy `isa`, by both entry points, which must agree bit for bit.
    fn run_unary_f64(isa: Isa, f: Unary, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        unary_f64_on(isa, f, x, &mut out);
        let mut buf = x.to_vec();
        unary_f64_in_place_on(isa, f, &mut buf);
        assert_same(&out, &buf, bits64, &format!("{isa:?} {f:?}"));
        out
    }

    fn run_unary_f32(isa: Isa, f: Unary, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        unary_f32_on(isa, f, x, &mut out);
        let mut buf = x.to_vec();
        unary_f32_in_place_on(isa, f, &mut buf);
        assert_same(&out, &buf, bits32, &format!("{isa:?} {f:?}"));
        out
    }

    fn run_binary_f64(isa: Isa, f: Binary, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; a.len()];
        binary_f64_on(isa, f, a, b, &mut out);
        let mut buf = a.to_vec();
        binary_f64_in_place_on(isa, f, &mut buf, b);
        assert_same(&out, &buf, bits64, &format!("{isa:?} {f:?}"));
        out
    }

    fn run_binary_f32(isa: Isa, f: Binary, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; a.len()];
        binary_f32_on(isa, f, a, b, &mut out);
        let mut buf = a.to_vec();
        binary_f32_in_place_on(isa, f, &mut buf, b);
        assert_same(&out, &buf, bits32, &format!("{isa:?} {f:?}"));
        out
    }

    /// The worst error of `f` in `f64` on the copy `isa`, checking every sample.
    fn check_unary_f64(isa: Isa, f: Unary, x: &[f64]) -> u64 {
        let got = run_unary_f64(isa, f, x);
        let mut worst = 0;
        for (&x, &got) in x.iter().zip(&got) {
            let want = std_unary(f, x);
            assert!(
                close64(got, want),
                "{isa:?} {f:?}({x:e}) = {got:e}, std gives {want:e}"
            );
            if want.is_finite() && want != 0.0 {
                worst = worst.max(ulps64(got, want));
            }
        }
        worst
    }

    fn check_unary_f32(isa: Isa, f: Unary, x: &[f64]) -> u64 {
        let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let got = run_unary_f32(isa, f, &x);
        let mut worst = 0;
        for (&x, &got) in x.iter().zip(&got) {
            let want = std_unary(f, f64::from(x)) as f32;
            assert!(
                close32(got, want),
                "{isa:?} {f:?}({x:e}f32) = {got:e}, std gives {want:e}"
            );
            if want.is_finite() && want != 0.0 {
                worst = worst.max(ulps32(got, want));
            }
        }
        worst
    }

    #[test]
    fn unary_within_4_ulps_of_std_on_every_copy() {
        let mut report = String::new();
        for f in UNARY {
            let x = samples(f, &mut Rng(u64::from(f as u8)));
            for isa in Isa::available() {
                let worst64 = check_unary_f64(isa, f, &x);
                let worst32 = check_unary_f32(isa, f, &x);
                report += &format!("{f:?} {isa:?}: {worst64} ulp f64, {worst32} ulp f32\n");
            }
        }
        eprint!("{report}");
    }

    /// Pairs of the whole plane, of the usual squares, and of every pair of special values.
    fn pairs(rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
        let specials = special_values();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for &s in &specials {
            for &t in &specials {
                a.push(s);
                b.push(t);
            }
        }
        for _ in 0..SAMPLES {
            a.push(f64::from_bits(rng.bits()));
            b.push(f64::from_bits(rng.bits()));
            a.push(rng.uniform(-10.0, 10.0));
            b.push(rng.uniform(-10.0, 10.0));
            a.push(rng.log_uniform(-1074, 1024));
            b.push(rng.log_uniform(-1074, 1024));
            // Ratios near the ends of the reduction's ranges.
            let base = rng.log_uniform(-100, 100);
            a.push(
                base * [TAN_PI_8, TAN_3PI_8, 1.0][(rng.bits() % 3) as usize]
                    * rng.uniform(0.99, 1.01),
            );
            b.push(base);
        }
        (a, b)
    }

    #[test]
    fn binary_within_4_ulps_of_std_on_every_copy() {
        let (a, b) = pairs(&mut Rng(7));
        let (a32, b32): (Vec<f32>, Vec<f32>) = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f32, y as f32))
            .unzip();
        let mut report = String::new();
        for f in BINARY {
            for isa in Isa::available() {
                let got = run_binary_f64(isa, f, &a, &b);
                let mut worst64 = 0;
                for ((&x, &y), &got) in a.iter().zip(&b).zip(&got) {
                    let want = std_binary(f, x, y);
                    assert!(
                        close64(got, want),
                        "{isa:?} {f:?}({x:e}, {y:e}) = {got:e}, std gives {want:e}"
                    );
                    if want.is_finite() && want != 0.0 {
                        worst64 = worst64.max(ulps64(got, want));
                    }
                }
                let got = run_binary_f32(isa, f, &a32, &b32);
                let mut worst32 = 0;
                for ((&x, &y), &got) in a32.iter().zip(&b32).zip(&got) {
                    let want = std_binary(f, f64::from(x), f64::from(y)) as f32;
                    assert!(
                        close32(got, want),
                        "{isa:?} {f:?}({x:e}f32, {y:e}f32) = {got:e}, std gives {want:e}"
                    );
                    if want.is_finite() && want != 0.0 {
                        worst32 = worst32.max(ulps32(got, want));
                    }
                }
                report += &format!("{f:?} {isa:?}: {worst64} ulp f64, {worst32} ulp f32\n");
            }
        }
        eprint!("{report}");
    }

    /// The values numpy documents, spelled out (the sample tests compare them with std).
    #[test]
    fn special_values_as_numpy_gives_them() {
        let pi = std::f64::consts::PI;
        let inf = f64::INFINITY;
        let cases: &[(Unary, f64, f64)] = &[
            (Unary::Arcsin, 2.0, f64::NAN),
            (Unary::Arcsin, -0.0, -0.0),
            (Unary::Arccos, -1.0, pi),
            (Unary::Arccos, 1.0, 0.0),
            (Unary::Arctan, -inf, -std::f64::consts::FRAC_PI_2),
            (Unary::Sin, -0.0, -0.0),
            (Unary::Sin, inf, f64::NAN),
            (Unary::Cos, -inf, f64::NAN),
            (Unary::Tan, -0.0, -0.0),
            (Unary::Log, 0.0, -inf),
            (Unary::Log, -0.0, -inf),
            (Unary::Log, -1.0, f64::NAN),
            (Unary::Log, inf, inf),
            (Unary::Log, 1.0, 0.0),
            (Unary::Log2, 0.0, -inf),
            (Unary::Log2, 8.0, 3.0),
            (Unary::Log10, 1000.0, 3.0),
            (Unary::Log10, -1e-30, f64::NAN),
            (Unary::Log1p, -1.0, -inf),
            (Unary::Log1p, -2.0, f64::NAN),
            (Unary::Log1p, -0.0, -0.0),
            (Unary::Exp, -inf, 0.0),
            (Unary::Exp, inf, inf),
            (Unary::Exp, 710.0, inf),
            (Unary::Exp, -746.0, 0.0),
            (Unary::Expm1, -0.0, -0.0),
            (Unary::Expm1, -inf, -1.0),
            (Unary::Sinh, -0.0, -0.0),
            (Unary::Sinh, -inf, -inf),
            (Unary::Cosh, -inf, inf),
            (Unary::Tanh, -inf, -1.0),
            (Unary::Tanh, -0.0, -0.0),
            (Unary::Sqrt, -0.0, -0.0),
            (Unary::Sqrt, -1.0, f64::NAN),
            (Unary::Cbrt, -27.0, -3.0),
            (Unary::Cbrt, -0.0, -0.0),
            (Unary::Cbrt, -inf, -inf),
        ];
        for isa in Isa::available() {
            for &(f, x, want) in cases {
                let got = run_unary_f64(isa, f, &[x]);
                assert!(
                    got[0].to_bits() == want.to_bits() || (got[0].is_nan() && want.is_nan()),
                    "{isa:?} {f:?}({x:e}) = {:e}, not {want:e}",
                    got[0]
                );
                let got = run_unary_f32(isa, f, &[x as f32]);
                let want = want as f32;
                assert!(
                    got[0].to_bits() == want.to_bits() || (got[0].is_nan() && want.is_nan()),
                    "{isa:?} {f:?}({x:e}f32) = {:e}, not {want:e}",
                    got[0]
                );
            }
            let binary: &[(Binary, f64, f64, f64)] = &[
                (Binary::Arctan2, 0.0, -0.0, pi),
                (Binary::Arctan2, -0.0, -0.0, -pi),
                (Binary::Arctan2, -0.0, 0.0, -0.0),
                (Binary::Arctan2, inf, -inf, 3.0 * pi / 4.0),
                (Binary::Arctan2, -1.0, -inf, -pi),
                (Binary::Arctan2, f64::NAN, 0.0, f64::NAN),
                (Binary::Hypot, inf, f64::NAN, inf),
                (Binary::Hypot, f64::NAN, 1.0, f64::NAN),
                (Binary::Hypot, 3e300, 4e300, 5e300),
                (Binary::Hypot, 3e-320, 4e-320, 5e-320),
            ];
            for &(f, a, b, want) in binary {
                let got = run_binary_f64(isa, f, &[a], &[b]);
                assert!(
                    got[0].to_bits() == want.to_bits() || (got[0].is_nan() && want.is_nan()),
                    "{isa:?} {f:?}({a:e}, {b:e}) = {:e}, not {want:e}",
                    got[0]
                );
            }
        }
    }

    /// Every short length on every copy, so that the vector loops' remainders are
    /// covered (the samples above cross the block sizes).
    #[test]
    fn every_length_on_every_copy() {
        let mut rng = Rng(11);
        let x: Vec<f64> = (0..70).map(|_| rng.uniform(-0.9, 3.0)).collect();
        let y: Vec<f64> = x.iter().rev().copied().collect();
        let (x32, y32): (Vec<f32>, Vec<f32>) = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| (a as f32, b as f32))
            .unzip();
        for isa in Isa::available() {
            for n in 0..x.len() {
                for f in UNARY {
                    let got = run_unary_f64(isa, f, &x[..n]);
                    for (&got, &v) in got.iter().zip(&x) {
                        assert!(close64(got, std_unary(f, v)), "{isa:?} {f:?}({v:e}) of {n}");
                    }
                    let got = run_unary_f32(isa, f, &x32[..n]);
                    for (&got, &v) in got.iter().zip(&x32) {
                        let want = std_unary(f, f64::from(v)) as f32;
                        assert!(close32(got, want), "{isa:?} {f:?}({v:e}f32) of {n}");
                    }
                }
                for f in BINARY {
                    let got = run_binary_f64(isa, f, &x[..n], &y[..n]);
                    for ((&got, &a), &b) in got.iter().zip(&x).zip(&y) {
                        let want = std_binary(f, a, b);
                        assert!(close64(got, want), "{isa:?} {f:?}({a:e}, {b:e}) of {n}");
                    }
                    let got = run_binary_f32(isa, f, &x32[..n], &y32[..n]);
                    for ((&got, &a), &b) in got.iter().zip(&x32).zip(&y32) {
                        let want = std_binary(f, f64::from(a), f64::from(b)) as f32;
                        assert!(
                            close32(got, want),
                            "{isa:?} {f:?}({a:e}f32, {b:e}f32) of {n}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "unary_f64 of 3 elements into 2")]
    fn unary_lengths_must_match() {
        unary_f64(Unary::Exp, &[1.0, 2.0, 3.0], &mut [0.0; 2]);
    }

    #[test]
    #[should_panic(expected = "binary_f32 of 2 and 1 elements into 2")]
    fn binary_lengths_must_match() {
        binary_f32(Binary::Hypot, &[1.0, 2.0], &[3.0], &mut [0.0; 2]);
    }

    /// numpy's own results on a seeded sample of each function's domain.
    #[test]
    fn agrees_with_numpy() {
        let code = r#"
import json, numpy as np
rng = np.random.default_rng(0)
def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32).tolist()
domains = {
    "sin": (-20, 20), "cos": (-20, 20), "tan": (-20, 20), "arcsin": (-1, 1), "arccos": (-1, 1),
    "arctan": (-10, 10), "sinh": (-30, 30), "cosh": (-30, 30), "tanh": (-10, 10),
    "exp": (-700, 700), "expm1": (-2, 2), "log": (0, 100), "log1p": (-1, 10), "log2": (0, 100),
    "log10": (0, 100), "sqrt": (0, 100), "cbrt": (-100, 100), "arctan2": (-10, 10), "hypot": (-10, 10),
}
out = {}
for name, (lo, hi) in domains.items():
    f = getattr(np, name)
    x = rng.uniform(lo, hi, 1000)
    y = rng.uniform(lo, hi, 1000)
    args = (x, y) if name in ("arctan2", "hypot") else (x,)
    out[name] = {
        "x": bits(x), "y": bits(y),
        "f64": bits(f(*args)),
        "f32": bits(f(*(a.astype(np.float32) for a in args))),
    }
print(json.dumps(out))
"#;
        let numpy = crate::reference::json(code, &[]);
        let bits64 = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .expect("a list")
                .iter()
                .map(|b| f64::from_bits(b.as_u64().expect("bits")))
                .collect()
        };
        let bits32 = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array()
                .expect("a list")
                .iter()
                .map(|b| f32::from_bits(b.as_u64().expect("bits") as u32))
                .collect()
        };
        let names = [
            (Unary::Sin, "sin"),
            (Unary::Cos, "cos"),
            (Unary::Tan, "tan"),
            (Unary::Arcsin, "arcsin"),
            (Unary::Arccos, "arccos"),
            (Unary::Arctan, "arctan"),
            (Unary::Sinh, "sinh"),
            (Unary::Cosh, "cosh"),
            (Unary::Tanh, "tanh"),
            (Unary::Exp, "exp"),
            (Unary::Expm1, "expm1"),
            (Unary::Log, "log"),
            (Unary::Log1p, "log1p"),
            (Unary::Log2, "log2"),
            (Unary::Log10, "log10"),
            (Unary::Sqrt, "sqrt"),
            (Unary::Cbrt, "cbrt"),
        ];
        let mut report = String::new();
        for (f, name) in names {
            let case = &numpy[name];
            let x = bits64(&case["x"]);
            let mut got = vec![0.0; x.len()];
            unary_f64(f, &x, &mut got);
            let want = bits64(&case["f64"]);
            let worst64 = got
                .iter()
                .zip(&want)
                .map(|(&g, &w)| ulps64(g, w))
                .max()
                .unwrap_or(0);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut got32 = vec![0.0f32; x.len()];
            unary_f32(f, &x32, &mut got32);
            let want32 = bits32(&case["f32"]);
            let worst32 = got32
                .iter()
                .zip(&want32)
                .map(|(&g, &w)| ulps32(g, w))
                .max()
                .unwrap_or(0);
            report += &format!("{name}: {worst64} ulp f64, {worst32} ulp f32 from numpy\n");
            assert!(worst64 <= MAX_ULPS && worst32 <= NUMPY_F32_ULPS, "{report}");
        }
        for (f, name) in [(Binary::Arctan2, "arctan2"), (Binary::Hypot, "hypot")] {
            let case = &numpy[name];
            let (x, y) = (bits64(&case["x"]), bits64(&case["y"]));
            let mut got = vec![0.0; x.len()];
            binary_f64(f, &x, &y, &mut got);
            let want = bits64(&case["f64"]);
            let worst64 = got
                .iter()
                .zip(&want)
                .map(|(&g, &w)| ulps64(g, w))
                .max()
                .unwrap_or(0);
            let (x32, y32): (Vec<f32>, Vec<f32>) = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| (a as f32, b as f32))
                .unzip();
            let mut got32 = vec![0.0f32; x.len()];
            binary_f32(f, &x32, &y32, &mut got32);
            let want32 = bits32(&case["f32"]);
            let worst32 = got32
                .iter()
                .zip(&want32)
                .map(|(&g, &w)| ulps32(g, w))
                .max()
                .unwrap_or(0);
            report += &format!("{name}: {worst64} ulp f64, {worst32} ulp f32 from numpy\n");
            assert!(worst64 <= MAX_ULPS && worst32 <= NUMPY_F32_ULPS, "{report}");
        }
        eprint!("{report}");
    }

    /// numpy's own `f32` kernels (SIMD ones, 4 ulp by numpy's documentation) against
    /// ours (1 ulp): at most their sum apart.
    const NUMPY_F32_ULPS: u64 = MAX_ULPS + 1;
}
