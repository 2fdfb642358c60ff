//! Numpy 2's type promotion over [`DType`]: what dtype an operation on mixed operands
//! gives, and which casts are allowed.
//!
//! It holds [`promote_types`] (`np.promote_types`), [`result_type`] with numpy 2's
//! NEP 50 rules for Python scalars (weak: a Python `int` takes an integer array's
//! dtype and must fit it), [`can_cast`] for dtypes, the dtype [`Kind`]s, and the
//! result dtypes of true division, the reductions and `abs`. All pure functions; the
//! tests compare every case with numpy itself.
//!
//! It does not hold value casting, byte order (every [`DType`] is native), the
//! `object`, string, datetime or `longdouble` dtypes, nor numpy's per-ufunc loop
//! tables beyond the few result types here (comparisons give `bool`, `//` and `%`
//! follow [`result_type`]: the array layer knows those without a table).

use std::ops::RangeInclusive;

use crate::error::{Error, Result};
use crate::storage::array::DType;

/// The category of a dtype, numpy's `dtype.kind`.
///
/// The variants are ordered as numpy orders kinds for [`Casting::SameKind`]: a cast
/// to the same or a later kind is a same-kind cast (`uint64` to `int8` is, `int8` to
/// `uint8` is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `bool` (numpy's `b`).
    Bool,
    /// `uint8` to `uint64` (numpy's `u`).
    Unsigned,
    /// `int8` to `int64` (numpy's `i`).
    Signed,
    /// `float16` to `float64` (numpy's `f`).
    Float,
    /// `complex64` and `complex128` (numpy's `c`).
    Complex,
}

impl Kind {
    /// Numpy's one-letter kind code: `b`, `u`, `i`, `f` or `c`.
    pub fn code(self) -> char {
        match self {
            Kind::Bool => 'b',
            Kind::Unsigned => 'u',
            Kind::Signed => 'i',
            Kind::Float => 'f',
            Kind::Complex => 'c',
        }
    }
}

// These methods live here rather than beside the type in `storage::array` because
// they are about numpy's arithmetic, which storage does not need.
impl DType {
    /// The dtype's [`Kind`] (numpy's `dtype.kind`).
    ///
    /// # Examples
    /// ```
    /// use blockwise::array::promote::Kind;
    /// use blockwise::storage::array::DType;
    /// assert_eq!(DType::UInt16.kind(), Kind::Unsigned);
    /// assert_eq!(DType::Complex64.kind().code(), 'c');
    /// ```
    pub fn kind(self) -> Kind {
        match self {
            DType::Bool => Kind::Bool,
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 => Kind::Signed,
            DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64 => Kind::Unsigned,
            DType::Float16 | DType::Float32 | DType::Float64 => Kind::Float,
            DType::Complex64 | DType::Complex128 => Kind::Complex,
        }
    }

    /// True for the signed and unsigned integer dtypes (not `bool`).
    pub fn is_integer(self) -> bool {
        matches!(self.kind(), Kind::Signed | Kind::Unsigned)
    }

    /// True for `float16`, `float32` and `float64`.
    pub fn is_float(self) -> bool {
        self.kind() == Kind::Float
    }

    /// True for `complex64` and `complex128`.
    pub fn is_complex(self) -> bool {
        self.kind() == Kind::Complex
    }
}

/// The values an integer dtype holds (numpy's `iinfo(dtype).min ..= max`); `None`
/// for `bool`, floats and complex numbers.
///
/// # Examples
/// ```
/// use blockwise::array::promote::int_range;
/// use blockwise::storage::array::DType;
/// assert_eq!(int_range(DType::Int8), Some(-128..=127));
/// assert_eq!(int_range(DType::Float32), None);
/// ```
pub fn int_range(dtype: DType) -> Option<RangeInclusive<i128>> {
    let bits = 8 * dtype.size() as u32;
    match dtype.kind() {
        Kind::Signed => Some(-(1i128 << (bits - 1))..=(1i128 << (bits - 1)) - 1),
        Kind::Unsigned => Some(0..=(1i128 << bits) - 1),
        _ => None,
    }
}

/// The smallest dtype both `a` and `b` can be safely cast to: numpy's
/// `np.promote_types`.
///
/// Numpy has no integer that holds both `int64` and `uint64`, so those two give
/// `float64`; signed and unsigned integers of one size give the next larger signed
/// integer (`int8` and `uint8` give `int16`).
///
/// # Examples
/// ```
/// use blockwise::array::promote::promote_types;
/// use blockwise::storage::array::DType;
/// assert_eq!(promote_types(DType::Int64, DType::UInt64), DType::Float64);
/// assert_eq!(promote_types(DType::Float16, DType::Int16), DType::Float32);
/// assert_eq!(promote_types(DType::Complex64, DType::Float64), DType::Complex128);
/// ```
pub fn promote_types(a: DType, b: DType) -> DType {
    // Smaller first; within one size, signed before unsigned. Numpy's safe casts
    // make the first dtype both cast to the least one: no two candidates that hold
    // a common pair of dtypes are unordered in this list.
    const BY_SIZE: [DType; 14] = [
        DType::Bool,
        DType::Int8,
        DType::UInt8,
        DType::Int16,
        DType::UInt16,
        DType::Int32,
        DType::UInt32,
        DType::Int64,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
    ];
    BY_SIZE
        .into_iter()
        .find(|&to| safe_cast(a, to) && safe_cast(b, to))
        // Every dtype casts safely to complex128, so the search always finds one.
        .unwrap_or(DType::Complex128)
}

/// How strict a cast is, as numpy's `casting=` argument spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Casting {
    /// Only the same dtype (`"no"`).
    No,
    /// The same dtype, perhaps in another byte order (`"equiv"`); every [`DType`]
    /// here is native, so this is [`Casting::No`].
    Equiv,
    /// Only casts that keep every value (`"safe"`), with numpy's one exception:
    /// `int64` and `uint64` to `float64` count as safe.
    Safe,
    /// Safe casts, or casts within a kind or to a later [`Kind`] (`"same_kind"`):
    /// `float64` to `float32`, `int64` to `int8`, but not `float64` to `int64`.
    SameKind,
    /// Any cast (`"unsafe"`).
    Unsafe,
}

impl Casting {
    /// Every casting, strictest first.
    pub const ALL: [Casting; 5] = [
        Casting::No,
        Casting::Equiv,
        Casting::Safe,
        Casting::SameKind,
        Casting::Unsafe,
    ];

    /// Numpy's name: `"no"`, `"equiv"`, `"safe"`, `"same_kind"`, `"unsafe"`.
    pub fn name(self) -> &'static str {
        match self {
            Casting::No => "no",
            Casting::Equiv => "equiv",
            Casting::Safe => "safe",
            Casting::SameKind => "same_kind",
            Casting::Unsafe => "unsafe",
        }
    }

    /// Parses a name as [`Casting::name`] writes it.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the names when `name` is not one of them.
    ///
    /// # Examples
    /// ```
    /// use blockwise::array::promote::Casting;
    /// assert_eq!(Casting::from_name("same_kind")?, Casting::SameKind);
    /// assert!(Casting::from_name("sideways").is_err());
    /// # Ok::<(), blockwise::Error>(())
    /// ```
    pub fn from_name(name: &str) -> Result<Casting> {
        Casting::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| Error::UnknownName {
                what: "casting",
                name: name.to_string(),
                known: Casting::ALL.map(Casting::name).join(", "),
            })
    }
}

/// Whether `from` may be cast to `to` under `casting`: numpy's `np.can_cast` for
/// dtypes.
///
/// # Examples
/// ```
/// use blockwise::array::promote::{can_cast, Casting};
/// use blockwise::storage::array::DType;
/// assert!(can_cast(DType::Int64, DType::Float64, Casting::Safe));
/// assert!(!can_cast(DType::Int8, DType::UInt8, Casting::SameKind));
/// assert!(can_cast(DType::UInt64, DType::Int8, Casting::SameKind));
/// ```
pub fn can_cast(from: DType, to: DType, casting: Casting) -> bool {
    match casting {
        Casting::No | Casting::Equiv => from == to,
        Casting::Safe => safe_cast(from, to),
        Casting::SameKind => safe_cast(from, to) || from.kind() <= to.kind(),
        Casting::Unsafe => true,
    }
}

/// Numpy's safe casts.
fn safe_cast(from: DType, to: DType) -> bool {
    if from == to || from == DType::Bool {
        return true;
    }
    match (from.kind(), to.kind()) {
        (Kind::Signed, Kind::Signed)
        | (Kind::Unsigned, Kind::Unsigned)
        | (Kind::Float, Kind::Float)
        | (Kind::Complex, Kind::Complex) => to.size() >= from.size(),
        // A signed integer needs one more bit than the unsigned one of its size.
        (Kind::Unsigned, Kind::Signed) => to.size() > from.size(),
        (Kind::Signed | Kind::Unsigned, Kind::Float | Kind::Complex) => {
            from.size() <= widest_exact_int(to.component_size())
        }
        (Kind::Float, Kind::Complex) => to.component_size() >= from.size(),
        // Negative values, fractions and imaginary parts are lost; nothing but
        // bool casts to bool.
        _ => false,
    }
}

/// The widest integer, in bytes, that numpy deems safe to cast to a float of
/// `float_size` bytes: 1 for `float16` (11-bit mantissa), 2 for `float32`, and 8 for
/// `float64`, where numpy accepts the rounding of integers above 2**53.
fn widest_exact_int(float_size: usize) -> usize {
    match float_size {
        2 => 1,
        4 => 2,
        _ => 8,
    }
}

/// An operand of an arithmetic operation, for [`result_type`].
///
/// Arrays and numpy scalars are strong: their dtype counts. Python scalars are weak
/// (NEP 50): their kind counts, their size does not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    /// An array, or a numpy scalar, of this dtype.
    Array(DType),
    /// A Python `bool`.
    PyBool,
    /// A Python `int`; its value is checked against the integer dtype it takes.
    PyInt(i128),
    /// A Python `float`.
    PyFloat(f64),
    /// A Python `complex`: its real and imaginary parts.
    PyComplex(f64, f64),
}

impl From<DType> for Operand {
    fn from(dtype: DType) -> Self {
        Operand::Array(dtype)
    }
}

impl Operand {
    /// The kind a weak Python scalar stands for; `None` for a strong operand.
    fn weak_kind(self) -> Option<Kind> {
        match self {
            Operand::Array(_) => None,
            Operand::PyBool => Some(Kind::Bool),
            Operand::PyInt(_) => Some(Kind::Signed),
            Operand::PyFloat(_) => Some(Kind::Float),
            Operand::PyComplex(..) => Some(Kind::Complex),
        }
    }
}

/// The dtype of an arithmetic operation (`+`, `-`, `*`, `//`, `%`, `**`, ...) on
/// `operands`, by numpy 2's rules (NEP 50).
///
/// The arrays' dtypes are promoted with [`promote_types`]. A Python scalar then
/// changes the result only when it is of a higher kind: a Python `int` with a `bool`
/// array gives `int64`, a Python `float` with an integer or `bool` array `float64`, a
/// Python `complex` with `float16` or `float32` `complex64` and with anything else
/// real `complex128`; otherwise the arrays' dtype stays (`float32` with a Python
/// float is `float32`). Python scalars alone give numpy's defaults: `int64`,
/// `float64`, `complex128`, or `bool`.
///
/// # Errors
/// - [`Error::IntegerOutOfBounds`] when the result is an integer dtype and a
///   Python `int` does not fit it (numpy 2 raises `OverflowError` on `uint8` array
///   `+ 300`).
/// - [`Error::Usage`] when `operands` is empty.
///
/// # Examples
/// ```
/// use blockwise::array::promote::{result_type, Operand};
/// use blockwise::storage::array::DType;
/// let u8s = Operand::Array(DType::UInt8);
/// assert_eq!(result_type(&[u8s, Operand::PyInt(255)])?, DType::UInt8);
/// assert!(result_type(&[u8s, Operand::PyInt(300)]).is_err());
/// assert_eq!(result_type(&[Operand::Array(DType::Float32), Operand::PyFloat(0.5)])?, DType::Float32);
/// # Ok::<(), blockwise::Error>(())
/// ```
pub fn result_type(operands: &[Operand]) -> Result<DType> {
    let dtype = promote_operands(operands)?;
    if let Some(range) = int_range(dtype) {
        for operand in operands {
            if let Operand::PyInt(value) = *operand {
                if !range.contains(&value) {
                    return Err(Error::IntegerOutOfBounds {
                        value,
                        dtype: dtype.name(),
                        min: *range.start(),
                        max: *range.end(),
                    });
                }
            }
        }
    }
    Ok(dtype)
}

/// The dtype of true division (`/`) of `operands`: [`result_type`]'s dtype, except
/// that integers and `bool` give `float64` (`float16` stays `float16`).
///
/// Python ints are not checked against an integer dtype: numpy divides in `float64`,
/// so `int8` array `/ 300` is fine.
///
/// # Errors
/// [`Error::Usage`] when `operands` is empty.
///
/// # Examples
/// ```
/// use blockwise::array::promote::{true_divide_type, Operand};
/// use blockwise::storage::array::DType;
/// let int8 = Operand::Array(DType::Int8);
/// assert_eq!(true_divide_type(&[int8, Operand::PyInt(300)])?, DType::Float64);
/// let half = Operand::Array(DType::Float16);
/// assert_eq!(true_divide_type(&[half, Operand::PyInt(2)])?, DType::Float16);
/// # Ok::<(), blockwise::Error>(())
/// ```
pub fn true_divide_type(operands: &[Operand]) -> Result<DType> {
    let dtype = promote_operands(operands)?;
    Ok(match dtype.kind() {
        Kind::Bool | Kind::Signed | Kind::Unsigned => DType::Float64,
        Kind::Float | Kind::Complex => dtype,
    })
}

/// [`result_type`] without the check of Python ints' values.
fn promote_operands(operands: &[Operand]) -> Result<DType> {
    let strong = operands
        .iter()
        .filter_map(|op| match op {
            Operand::Array(dtype) => Some(*dtype),
            _ => None,
        })
        .reduce(promote_types);
    let weak = operands.iter().filter_map(|op| op.weak_kind()).max();
    match (strong, weak) {
        (Some(strong), None) => Ok(strong),
        (Some(strong), Some(weak)) => Ok(with_weak(strong, weak)),
        (None, Some(weak)) => Ok(default_dtype(weak)),
        (None, None) => Err(Error::Usage(
            "an operation needs at least one operand (an array or a scalar)".into(),
        )),
    }
}

/// The result of a strong dtype with a weak Python scalar of kind `weak` (NEP 50).
fn with_weak(strong: DType, weak: Kind) -> DType {
    match (strong.kind(), weak) {
        (Kind::Bool, Kind::Signed | Kind::Unsigned) => DType::Int64,
        (Kind::Bool | Kind::Signed | Kind::Unsigned, Kind::Float) => DType::Float64,
        // A Python complex keeps a float array's precision, as a Python float does.
        (Kind::Float, Kind::Complex) => promote_types(strong, DType::Complex64),
        (Kind::Bool | Kind::Signed | Kind::Unsigned, Kind::Complex) => DType::Complex128,
        _ => strong,
    }
}

/// The dtype of Python scalars of kind `kind` alone: numpy's defaults.
fn default_dtype(kind: Kind) -> DType {
    match kind {
        Kind::Bool => DType::Bool,
        Kind::Signed | Kind::Unsigned => DType::Int64,
        Kind::Float => DType::Float64,
        Kind::Complex => DType::Complex128,
    }
}

/// The dtype of `sum`, `prod`, `cumsum` and `cumprod` of an array of `dtype`:
/// `bool` and the integers narrower than 64 bits widen to `int64` (`uint64` when
/// unsigned), as numpy accumulates in the platform's `long`; the others stay.
///
/// # Examples
/// ```
/// use blockwise::array::promote::sum_type;
/// use blockwise::storage::array::DType;
/// assert_eq!(sum_type(DType::Bool), DType::Int64);
/// assert_eq!(sum_type(DType::UInt8), DType::UInt64);
/// assert_eq!(sum_type(DType::Float16), DType::Float16);
/// ```
pub fn sum_type(dtype: DType) -> DType {
    match dtype.kind() {
        Kind::Bool | Kind::Signed => DType::Int64,
        Kind::Unsigned => DType::UInt64,
        Kind::Float | Kind::Complex => dtype,
    }
}

/// The dtype of `mean` of an array of `dtype`: `float64` for `bool` and integers,
/// the dtype itself otherwise (numpy accumulates `float16` in `float32` but returns
/// `float16`).
///
/// # Examples
/// ```
/// use blockwise::array::promote::mean_type;
/// use blockwise::storage::array::DType;
/// assert_eq!(mean_type(DType::Int8), DType::Float64);
/// assert_eq!(mean_type(DType::Complex64), DType::Complex64);
/// ```
pub fn mean_type(dtype: DType) -> DType {
    match dtype.kind() {
        Kind::Bool | Kind::Signed | Kind::Unsigned => DType::Float64,
        Kind::Float | Kind::Complex => dtype,
    }
}

/// The dtype of `var` and `std` of an array of `dtype`: as [`mean_type`], but real:
/// `complex64` gives `float32`.
///
/// # Examples
/// ```
/// use blockwise::array::promote::var_type;
/// use blockwise::storage::array::DType;
/// assert_eq!(var_type(DType::UInt16), DType::Float64);
/// assert_eq!(var_type(DType::Complex64), DType::Float32);
/// ```
pub fn var_type(dtype: DType) -> DType {
    abs_type(mean_type(dtype))
}

/// The dtype of `abs` of an array of `dtype`: the real dtype of a complex one's
/// parts (`complex64` gives `float32`), the dtype itself otherwise (`bool` too).
///
/// # Examples
/// ```
/// use blockwise::array::promote::abs_type;
/// use blockwise::storage::array::DType;
/// assert_eq!(abs_type(DType::Complex128), DType::Float64);
/// assert_eq!(abs_type(DType::Int8), DType::Int8);
/// ```
pub fn abs_type(dtype: DType) -> DType {
    match dtype {
        DType::Complex64 => DType::Float32,
        DType::Complex128 => DType::Float64,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    //! Every case is compared with numpy 2 itself, run in the reference Python
    //! environment; the few hand-written assertions document surprises.

    use super::*;
    use serde_json::Value;
    use std::sync::OnceLock;

    /// The Python scalars tried against every dtype: the literal numpy evaluates,
    /// and the operand it is here.
    const WEAK: [(&str, Operand); 16] = [
        ("True", Operand::PyBool),
        ("0", Operand::PyInt(0)),
        ("1", Operand::PyInt(1)),
        ("127", Operand::PyInt(127)),
        ("128", Operand::PyInt(128)),
        ("255", Operand::PyInt(255)),
        ("256", Operand::PyInt(256)),
        ("-1", Operand::PyInt(-1)),
        ("-129", Operand::PyInt(-129)),
        ("2**31", Operand::PyInt(1 << 31)),
        ("2**63", Operand::PyInt(1 << 63)),
        ("-(2**63)-1", Operand::PyInt(-(1 << 63) - 1)),
        ("2**64", Operand::PyInt(1 << 64)),
        ("1.0", Operand::PyFloat(1.0)),
        ("1e300", Operand::PyFloat(1e300)),
        ("1j", Operand::PyComplex(0.0, 1.0)),
    ];

    /// Prints numpy's answers as JSON. Each record echoes its inputs, so a record
    /// is checked by what it says, not by its position. An operation numpy refuses
    /// is `{"error": <exception class>}`.
    const NUMPY_SCRIPT: &str = r#"
import json, sys, warnings
import numpy as np

assert int(np.__version__.split(".")[0]) >= 2, f"numpy {np.__version__}: NEP 50 needs numpy 2"
# float16 + 1e300 overflows to inf with a RuntimeWarning; only dtypes matter here.
warnings.simplefilter("ignore")
args = json.loads(sys.argv[1])
dtypes = args["dtypes"]
scalars = [eval(s) for s in args["scalars"]]
castings = args["castings"]
S = range(len(scalars))

def arr(d):
    return np.zeros(2, dtype=d)

def outcome(f):
    try:
        return f().dtype.name
    except Exception as e:
        return {"error": type(e).__name__}

out = {
    "kind": [[a, np.dtype(a).kind] for a in dtypes],
    "int_range": [[a, str(np.iinfo(a).min), str(np.iinfo(a).max)]
                  for a in dtypes if np.dtype(a).kind in "iu"],
    "promote": [[a, b, np.promote_types(a, b).name] for a in dtypes for b in dtypes],
    "can_cast": [[a, b, c, bool(np.can_cast(a, b, casting=c))]
                 for a in dtypes for b in dtypes for c in castings],
    "array_scalar": [[a, i, outcome(lambda: np.add(arr(a), scalars[i])),
                      outcome(lambda: np.add(scalars[i], arr(a)))]
                     for a in dtypes for i in S],
    "scalar_scalar": [[i, j, outcome(lambda: np.add(scalars[i], scalars[j]))]
                      for i in S for j in S],
    "array_array_scalar": [[a, b, i,
                            outcome(lambda: np.add(np.add(arr(a), arr(b)), scalars[i])),
                            np.result_type(a, b, scalars[i]).name]
                           for a in dtypes for b in dtypes for i in S],
    "array_scalar_scalar": [[a, i, j, np.result_type(a, scalars[i], scalars[j]).name]
                            for a in dtypes for i in S for j in S],
    "divide_arrays": [[a, b, outcome(lambda: np.true_divide(arr(a), arr(b)))]
                      for a in dtypes for b in dtypes],
    "divide_array_scalar": [[a, i, outcome(lambda: np.true_divide(arr(a), scalars[i]))]
                            for a in dtypes for i in S],
    "divide_scalars": [[i, j, outcome(lambda: np.true_divide(scalars[i], scalars[j]))]
                       for i in S for j in S],
    "reductions": [[a, {
        "sum": arr(a).sum().dtype.name,
        "prod": arr(a).prod().dtype.name,
        "cumsum": arr(a).cumsum().dtype.name,
        "cumprod": arr(a).cumprod().dtype.name,
        "mean": arr(a).mean().dtype.name,
        "var": arr(a).var().dtype.name,
        "std": arr(a).std().dtype.name,
        "abs": np.abs(arr(a)).dtype.name,
    }] for a in dtypes],
}
print(json.dumps(out))
"#;

    /// Numpy's answers, computed once per test process.
    fn numpy() -> &'static Value {
        static ANSWERS: OnceLock<Value> = OnceLock::new();
        ANSWERS.get_or_init(|| {
            let args = serde_json::json!({
                "dtypes": DType::ALL.map(DType::name),
                "scalars": WEAK.map(|(literal, _)| literal),
                "castings": Casting::ALL.map(Casting::name),
            });
            crate::reference::json(NUMPY_SCRIPT, &[&args.to_string()])
        })
    }

    /// The records of `section`, asserting there are `expected` of them (so a
    /// script that printed nothing cannot pass).
    fn records(section: &str, expected: usize) -> &'static [Value] {
        let records = numpy()[section]
            .as_array()
            .unwrap_or_else(|| panic!("numpy's answers have no {section}"));
        assert_eq!(records.len(), expected, "records in {section}");
        records
    }

    fn dtype(v: &Value) -> DType {
        let name = v
            .as_str()
            .unwrap_or_else(|| panic!("{v} is not a dtype name"));
        DType::from_name(name).unwrap_or_else(|| panic!("numpy gave dtype {name}"))
    }

    fn weak(v: &Value) -> (&'static str, Operand) {
        let i = v.as_u64().unwrap_or_else(|| panic!("{v} is not an index")) as usize;
        WEAK[i]
    }

    /// Checks our outcome against numpy's: the same dtype, or both an error (numpy's
    /// being the overflow of a Python int, the only one we model).
    fn check(case: String, ours: Result<DType>, numpy: &Value, mismatches: &mut Vec<String>) {
        let agree = match (&ours, numpy) {
            (Ok(d), Value::String(name)) => d.name() == name,
            (Err(_), Value::Object(e)) => e.get("error").is_some_and(|c| c == "OverflowError"),
            _ => false,
        };
        if !agree {
            mismatches.push(format!("{case}: numpy {numpy}, ours {ours:?}"));
        }
    }

    fn assert_none(what: &str, mismatches: Vec<String>) {
        assert!(
            mismatches.is_empty(),
            "{} {what} cases differ from numpy:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }

    #[test]
    fn kinds_and_integer_ranges_match_numpy() {
        let mut mismatches = Vec::new();
        for r in records("kind", 14) {
            let d = dtype(&r[0]);
            let code = d.kind().code().to_string();
            if r[1] != code.as_str() {
                mismatches.push(format!("kind of {d}: numpy {}, ours {code}", r[1]));
            }
            assert_eq!(d.is_integer(), "iu".contains(&code));
            assert_eq!(d.is_float(), code == "f");
            assert_eq!(d.is_complex(), code == "c");
        }
        for r in records("int_range", 8) {
            let d = dtype(&r[0]);
            let parse = |v: &Value| v.as_str().and_then(|s| s.parse::<i128>().ok());
            let numpy = parse(&r[1]).zip(parse(&r[2])).map(|(lo, hi)| lo..=hi);
            if int_range(d) != numpy {
                mismatches.push(format!(
                    "range of {d}: numpy {numpy:?}, ours {:?}",
                    int_range(d)
                ));
            }
        }
        let non_integers = DType::ALL.into_iter().filter(|d| !d.is_integer());
        assert!(non_integers.clone().all(|d| int_range(d).is_none()));
        assert_none("kind", mismatches);
    }

    #[test]
    fn promote_types_matches_numpy_for_every_pair() {
        let mut mismatches = Vec::new();
        for r in records("promote", 14 * 14) {
            let (a, b) = (dtype(&r[0]), dtype(&r[1]));
            check(
                format!("promote_types({a}, {b})"),
                Ok(promote_types(a, b)),
                &r[2],
                &mut mismatches,
            );
        }
        assert_none("promote_types", mismatches);
    }

    #[test]
    fn can_cast_matches_numpy_for_every_pair_and_casting() {
        let mut mismatches = Vec::new();
        for r in records("can_cast", 14 * 14 * 5) {
            let (a, b) = (dtype(&r[0]), dtype(&r[1]));
            let casting = Casting::from_name(r[2].as_str().unwrap_or_default()).unwrap();
            let ours = can_cast(a, b, casting);
            if r[3] != ours {
                mismatches.push(format!(
                    "can_cast({a}, {b}, {}): numpy {}, ours {ours}",
                    r[2], r[3]
                ));
            }
        }
        assert_none("can_cast", mismatches);
    }

    #[test]
    fn result_type_of_an_array_and_a_python_scalar_matches_numpy() {
        let mut mismatches = Vec::new();
        for r in records("array_scalar", 14 * WEAK.len()) {
            let (a, (literal, s)) = (dtype(&r[0]), weak(&r[1]));
            let arr = Operand::Array(a);
            check(
                format!("{a} array + {literal}"),
                result_type(&[arr, s]),
                &r[2],
                &mut mismatches,
            );
            check(
                format!("{literal} + {a} array"),
                result_type(&[s, arr]),
                &r[3],
                &mut mismatches,
            );
        }
        assert_none("array with scalar", mismatches);
    }

    #[test]
    fn result_type_of_python_scalars_alone_matches_numpy() {
        let mut mismatches = Vec::new();
        for r in records("scalar_scalar", WEAK.len() * WEAK.len()) {
            let ((l1, s1), (l2, s2)) = (weak(&r[0]), weak(&r[1]));
            check(
                format!("{l1} + {l2}"),
                result_type(&[s1, s2]),
                &r[2],
                &mut mismatches,
            );
        }
        assert_none("scalar with scalar", mismatches);
    }

    #[test]
    fn result_type_of_two_arrays_and_a_python_scalar_matches_numpy() {
        let mut mismatches = Vec::new();
        for r in records("array_array_scalar", 14 * 14 * WEAK.len()) {
            let (a, b, (literal, s)) = (dtype(&r[0]), dtype(&r[1]), weak(&r[2]));
            let ops = [Operand::Array(a), Operand::Array(b), s];
            let case = format!("{a} array + {b} array + {literal}");
            check(case.clone(), result_type(&ops), &r[3], &mut mismatches);
            // np.result_type does not check values: compare the dtype alone.
            check(
                format!("dtype of {case}"),
                promote_operands(&ops),
                &r[4],
                &mut mismatches,
            );
        }
        assert_none("two arrays with a scalar", mismatches);
    }

    #[test]
    fn result_type_of_an_array_and_two_python_scalars_matches_numpy() {
        let mut mismatches = Vec::new();
        for r in records("array_scalar_scalar", 14 * WEAK.len() * WEAK.len()) {
            let (a, (l1, s1), (l2, s2)) = (dtype(&r[0]), weak(&r[1]), weak(&r[2]));
            let ops = [Operand::Array(a), s1, s2];
            let case = format!("dtype of {a} array with {l1} and {l2}");
            check(case, promote_operands(&ops), &r[3], &mut mismatches);
        }
        assert_none("array with two scalars", mismatches);
    }

    #[test]
    fn true_division_matches_numpy() {
        let mut mismatches = Vec::new();
        for r in records("divide_arrays", 14 * 14) {
            let (a, b) = (dtype(&r[0]), dtype(&r[1]));
            let ops = [Operand::Array(a), Operand::Array(b)];
            check(
                format!("{a} / {b}"),
                true_divide_type(&ops),
                &r[2],
                &mut mismatches,
            );
        }
        for r in records("divide_array_scalar", 14 * WEAK.len()) {
            let (a, (literal, s)) = (dtype(&r[0]), weak(&r[1]));
            let ops = [Operand::Array(a), s];
            check(
                format!("{a} / {literal}"),
                true_divide_type(&ops),
                &r[2],
                &mut mismatches,
            );
        }
        for r in records("divide_scalars", WEAK.len() * WEAK.len()) {
            let ((l1, s1), (l2, s2)) = (weak(&r[0]), weak(&r[1]));
            check(
                format!("{l1} / {l2}"),
                true_divide_type(&[s1, s2]),
                &r[2],
                &mut mismatches,
            );
        }
        assert_none("true division", mismatches);
    }

    #[test]
    fn reduction_and_abs_dtypes_match_numpy() {
        type Rule = fn(DType) -> DType;
        let rules: [(&str, Rule); 8] = [
            ("sum", sum_type),
            ("prod", sum_type),
            ("cumsum", sum_type),
            ("cumprod", sum_type),
            ("mean", mean_type),
            ("var", var_type),
            ("std", var_type),
            ("abs", abs_type),
        ];
        let mut mismatches = Vec::new();
        for r in records("reductions", 14) {
            let a = dtype(&r[0]);
            for (name, rule) in rules {
                check(
                    format!("{name} of {a}"),
                    Ok(rule(a)),
                    &r[1][name],
                    &mut mismatches,
                );
            }
        }
        assert_none("reduction", mismatches);
    }

    #[test]
    fn surprising_cases_numpy_users_meet() {
        // No integer holds both: numpy goes to float64, losing precision above 2**53.
        assert_eq!(promote_types(DType::Int64, DType::UInt64), DType::Float64);
        assert_eq!(promote_types(DType::Int8, DType::UInt8), DType::Int16);
        assert_eq!(promote_types(DType::Float16, DType::Int16), DType::Float32);
        assert_eq!(promote_types(DType::Bool, DType::Int8), DType::Int8);

        // A Python int takes the array's dtype and must fit it (numpy 2).
        let u8s = Operand::Array(DType::UInt8);
        let e = result_type(&[u8s, Operand::PyInt(300)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Python integer 300 out of bounds for uint8 (which holds 0 to 255)"
        );
        assert_eq!(e.exit_code(), 2);
        let e = result_type(&[Operand::Array(DType::Int8), Operand::PyInt(-129)]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Python integer -129 out of bounds for int8"));
        assert_eq!(
            result_type(&[u8s, Operand::PyInt(255)]).unwrap(),
            DType::UInt8
        );
        // ... but the result, not the array, is what it must fit.
        let mixed = [Operand::Array(DType::Int8), u8s, Operand::PyInt(300)];
        assert_eq!(result_type(&mixed).unwrap(), DType::Int16);

        // A Python float does not widen a float32 array; it does make an int array float64.
        let f32s = Operand::Array(DType::Float32);
        assert_eq!(
            result_type(&[f32s, Operand::PyFloat(1e300)]).unwrap(),
            DType::Float32
        );
        let i8s = Operand::Array(DType::Int8);
        assert_eq!(
            result_type(&[i8s, Operand::PyFloat(1.0)]).unwrap(),
            DType::Float64
        );
        assert_eq!(
            result_type(&[f32s, Operand::PyComplex(0.0, 1.0)]).unwrap(),
            DType::Complex64
        );

        assert!(matches!(result_type(&[]), Err(Error::Usage(_))));
        assert!(matches!(true_divide_type(&[]), Err(Error::Usage(_))));
        assert!(matches!(
            Casting::from_name("safest"),
            Err(Error::UnknownName {
                what: "casting",
                ..
            })
        ));
    }
}
