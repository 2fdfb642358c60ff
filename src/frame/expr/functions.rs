//! The functions: one table of names (SQL and pandas spellings), argument counts
//! and kinds, and for each its type rule and evaluation. The kernels themselves
//! live by family in `math`, `strings` and `temporal`.

use arrow::array::AsArray;
use arrow::compute::kernels::{boolean, zip::zip};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};

use super::coerce::{
    self, describe, is_date, is_numeric, is_string, is_timestamp, logical, type_error,
};
use super::value::{bools, Value};
use super::{math, strings, temporal, Expr};
use crate::Result;

/// What a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Abs,
    Round,
    Floor,
    Ceil,
    Sqrt,
    Exp,
    Ln,
    Log,
    Log10,
    Log2,
    Pow,
    Sign,
    IsNan,
    Greatest,
    Least,
    Coalesce,
    NullIf,
    If,
    Lower,
    Upper,
    Length,
    Substr,
    Slice,
    Replace,
    Trim,
    LTrim,
    RTrim,
    Contains,
    StartsWith,
    EndsWith,
    SplitPart,
    Concat,
    RegexpMatches,
    RegexpExtract,
    RegexpReplace,
    Part(temporal::Part),
    DateTrunc,
    RowRandom,
}

/// A function's names (the first is the one messages use) and argument counts.
struct Spec {
    names: &'static [&'static str],
    min: usize,
    max: usize,
    func: Func,
}

const MANY: usize = usize::MAX;

const fn spec(names: &'static [&'static str], min: usize, max: usize, func: Func) -> Spec {
    Spec {
        names,
        min,
        max,
        func,
    }
}

static FUNCTIONS: &[Spec] = {
    use temporal::Part as P;
    use Func as F;
    &[
        spec(&["abs"], 1, 1, F::Abs),
        spec(&["round"], 1, 2, F::Round),
        spec(&["floor"], 1, 1, F::Floor),
        spec(&["ceil", "ceiling"], 1, 1, F::Ceil),
        spec(&["sqrt"], 1, 1, F::Sqrt),
        spec(&["exp"], 1, 1, F::Exp),
        spec(&["ln"], 1, 1, F::Ln),
        spec(&["log"], 1, 2, F::Log),
        spec(&["log10"], 1, 1, F::Log10),
        spec(&["log2"], 1, 1, F::Log2),
        spec(&["pow", "power"], 2, 2, F::Pow),
        spec(&["sign"], 1, 1, F::Sign),
        spec(&["isnan"], 1, 1, F::IsNan),
        spec(&["greatest"], 1, MANY, F::Greatest),
        spec(&["least"], 1, MANY, F::Least),
        spec(&["coalesce", "fill_null", "ifnull"], 1, MANY, F::Coalesce),
        spec(&["nullif"], 2, 2, F::NullIf),
        spec(&["if", "iif"], 3, 3, F::If),
        spec(&["lower", "lcase"], 1, 1, F::Lower),
        spec(&["upper", "ucase"], 1, 1, F::Upper),
        spec(
            &["length", "len", "char_length", "character_length"],
            1,
            1,
            F::Length,
        ),
        spec(&["substr", "substring"], 2, 3, F::Substr),
        spec(&["slice"], 2, 3, F::Slice),
        spec(&["replace"], 3, 3, F::Replace),
        spec(&["trim", "strip"], 1, 2, F::Trim),
        spec(&["ltrim", "lstrip"], 1, 2, F::LTrim),
        spec(&["rtrim", "rstrip"], 1, 2, F::RTrim),
        spec(&["contains"], 2, 2, F::Contains),
        spec(
            &["starts_with", "startswith", "prefix"],
            2,
            2,
            F::StartsWith,
        ),
        spec(&["ends_with", "endswith", "suffix"], 2, 2, F::EndsWith),
        spec(&["split_part"], 3, 3, F::SplitPart),
        spec(&["concat"], 1, MANY, F::Concat),
        spec(&["regexp_matches"], 2, 3, F::RegexpMatches),
        spec(&["regexp_extract"], 2, 3, F::RegexpExtract),
        spec(&["regexp_replace"], 3, 4, F::RegexpReplace),
        spec(&["year"], 1, 1, F::Part(P::Year)),
        spec(&["quarter"], 1, 1, F::Part(P::Quarter)),
        spec(&["month"], 1, 1, F::Part(P::Month)),
        spec(&["week", "weekofyear"], 1, 1, F::Part(P::Week)),
        spec(&["day", "dayofmonth"], 1, 1, F::Part(P::Day)),
        spec(&["dayofweek", "dow"], 1, 1, F::Part(P::DayOfWeek)),
        spec(&["isodow"], 1, 1, F::Part(P::IsoDayOfWeek)),
        spec(&["dayofyear", "doy"], 1, 1, F::Part(P::DayOfYear)),
        spec(&["hour"], 1, 1, F::Part(P::Hour)),
        spec(&["minute"], 1, 1, F::Part(P::Minute)),
        spec(&["second"], 1, 1, F::Part(P::Second)),
        spec(&["date_trunc", "datetrunc"], 2, 2, F::DateTrunc),
        spec(&[ROW_RANDOM], 2, 2, F::RowRandom),
    ]
};

/// `__row_random(seed, ordinal)`: a float in [0, 1) that depends only on the seed
/// and the row's ordinal (its place in the file): what a seeded sample keeps or
/// orders its rows by, the same whatever runs it.
pub const ROW_RANDOM: &str = "__row_random";

/// Every function name expressions accept (aliases included), sorted.
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FUNCTIONS
        .iter()
        .flat_map(|s| s.names.iter().copied())
        .collect();
    names.sort_unstable();
    names
}

/// The function called `name` in `whole`, with its argument count checked.
fn lookup(whole: &Expr, name: &str, n: usize) -> Result<&'static Spec> {
    let lower = name.to_ascii_lowercase();
    let spec = FUNCTIONS
        .iter()
        .find(|s| s.names.contains(&lower.as_str()))
        .ok_or_else(|| {
            let close =
                crate::error::close_names(&lower, function_names().into_iter().map(String::from));
            let hint = match close.as_slice() {
                [] => String::new(),
                close => format!("; did you mean {}?", close.join(", ")),
            };
            type_error(whole, format!("unknown function \"{name}\"{hint}"))
        })?;
    if n < spec.min || n > spec.max {
        let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
        let expected = match (spec.min, spec.max) {
            (a, b) if a == b => format!("{a} {}", plural(a)),
            (a, MANY) => format!("at least {a} {}", plural(a)),
            (a, b) if b == a + 1 => format!("{a} or {b} arguments"),
            (a, b) => format!("{a} to {b} arguments"),
        };
        return Err(type_error(
            whole,
            format!("{} takes {expected}, not {n}", spec.names[0]),
        ));
    }
    Ok(spec)
}

/// The kinds of argument a function checks.
#[derive(Clone, Copy)]
enum Kind {
    Number,
    Integer,
    Str,
    Temporal,
}

fn check(whole: &Expr, spec: &Spec, i: usize, arg: &Expr, t: &DataType, kind: Kind) -> Result<()> {
    let t = logical(t);
    let ok = t == &DataType::Null
        || match kind {
            Kind::Number => is_numeric(t),
            Kind::Integer => t.is_integer(),
            Kind::Str => is_string(t),
            Kind::Temporal => is_date(t) || is_timestamp(t),
        };
    if ok {
        return Ok(());
    }
    let what = match kind {
        Kind::Number => "a number",
        Kind::Integer => "an integer",
        Kind::Str => "a string",
        Kind::Temporal => "a date or timestamp",
    };
    Err(type_error(
        whole,
        format!(
            "{}: argument {} must be {what}, not {}",
            spec.names[0],
            i + 1,
            describe(arg, t)
        ),
    ))
}

/// The kinds of each argument of `func` (the last repeats for variadic ones).
fn kinds(func: Func) -> &'static [Kind] {
    use Func as F;
    use Kind as K;
    match func {
        F::Abs
        | F::Floor
        | F::Ceil
        | F::Sqrt
        | F::Exp
        | F::Ln
        | F::Log
        | F::Log10
        | F::Log2
        | F::Pow
        | F::Sign
        | F::IsNan => &[K::Number, K::Number],
        F::Round => &[K::Number, K::Integer],
        F::Lower
        | F::Upper
        | F::Length
        | F::Trim
        | F::LTrim
        | F::RTrim
        | F::Contains
        | F::StartsWith
        | F::EndsWith
        | F::Replace => &[K::Str, K::Str, K::Str],
        F::Substr | F::Slice => &[K::Str, K::Integer, K::Integer],
        F::SplitPart => &[K::Str, K::Str, K::Integer],
        F::RowRandom => &[K::Integer, K::Integer],
        F::RegexpMatches => &[K::Str, K::Str, K::Str],
        F::RegexpExtract => &[K::Str, K::Str, K::Integer],
        F::RegexpReplace => &[K::Str, K::Str, K::Str, K::Str],
        F::Part(_) => &[K::Temporal],
        F::DateTrunc => &[K::Str, K::Temporal],
        F::Greatest | F::Least | F::Coalesce | F::NullIf | F::If | F::Concat => &[],
    }
}

/// The type `name(args)` gives, for argument types `types`.
pub(super) fn return_type(
    whole: &Expr,
    name: &str,
    args: &[Expr],
    types: &[DataType],
) -> Result<DataType> {
    use Func as F;
    let spec = lookup(whole, name, args.len())?;
    let ks = kinds(spec.func);
    if !ks.is_empty() {
        for (i, (a, t)) in args.iter().zip(types).enumerate() {
            check(whole, spec, i, a, t, ks[i.min(ks.len() - 1)])?;
        }
    }
    let first = logical(&types[0]).clone();
    let pairs = || args.iter().zip(types.iter().cloned()).collect::<Vec<_>>();
    Ok(match spec.func {
        F::Abs | F::Round | F::Floor | F::Ceil => math::same_numeric(&first),
        F::Sqrt | F::Exp | F::Ln | F::Log | F::Log10 | F::Log2 | F::Pow | F::RowRandom => {
            DataType::Float64
        }
        F::Sign => DataType::Int8,
        F::IsNan | F::Contains | F::StartsWith | F::EndsWith | F::RegexpMatches => {
            if let F::RegexpMatches = spec.func {
                strings::check_constant_pattern(whole, args)?;
            }
            DataType::Boolean
        }
        F::Greatest | F::Least | F::Coalesce => {
            coerce::common_of(whole, &format!("{} arguments", spec.names[0]), &pairs())?
        }
        F::NullIf => {
            coerce::comparable(&args[0], &types[0], &args[1], &types[1]).ok_or_else(|| {
                type_error(
                    whole,
                    format!(
                        "cannot compare {} with {}",
                        describe(&args[0], &types[0]),
                        describe(&args[1], &types[1])
                    ),
                )
            })?
        }
        F::If => {
            let conds = [(&args[0], types[0].clone())];
            let values = [(&args[1], types[1].clone()), (&args[2], types[2].clone())];
            coerce::case_types(whole, None, &conds, &values)?
        }
        F::Lower
        | F::Upper
        | F::Substr
        | F::Slice
        | F::Replace
        | F::Trim
        | F::LTrim
        | F::RTrim
        | F::SplitPart
        | F::Concat => DataType::Utf8,
        F::RegexpExtract | F::RegexpReplace => {
            strings::check_constant_pattern(whole, args)?;
            DataType::Utf8
        }
        F::Length => DataType::Int64,
        F::Part(_) => DataType::Int64,
        F::DateTrunc => {
            temporal::trunc_unit(whole, &args[0])?;
            match logical(&types[1]) {
                t @ DataType::Timestamp(..) => t.clone(),
                _ => DataType::Timestamp(TimeUnit::Microsecond, None),
            }
        }
    })
}

/// `if(c, a, b)` as the `CASE` it is, so that only the rows taking a branch
/// compute it.
pub(super) fn if_as_case(args: &[Expr]) -> Expr {
    Expr::Case {
        operand: None,
        when_then: vec![(args[0].clone(), args[1].clone())],
        otherwise: Some(Box::new(args[2].clone())),
    }
}

/// Whether `name` is `if`, which is evaluated lazily as a `CASE`.
pub(super) fn is_if(name: &str) -> bool {
    name.eq_ignore_ascii_case("if") || name.eq_ignore_ascii_case("iif")
}

/// The value of `name(args)`, given the arguments' values.
pub(super) fn evaluate(
    whole: &Expr,
    name: &str,
    args: &[Expr],
    mut values: Vec<Value>,
    batch: &arrow::array::RecordBatch,
) -> Result<Value> {
    use Func as F;
    let rows = batch.num_rows();
    let types: Vec<DataType> = values.iter().map(|v| v.data_type().clone()).collect();
    let out = return_type(whole, name, args, &types)?;
    let spec = lookup(whole, name, args.len())?;
    let all_scalar = values.iter().all(Value::is_scalar);
    // A NULL first argument (of no type) gives NULL for the functions that
    // propagate it.
    let propagates = !matches!(
        spec.func,
        F::Greatest | F::Least | F::Coalesce | F::Concat | F::If | F::NullIf | F::DateTrunc
    );
    if propagates && types[0] == DataType::Null {
        return Ok(Value::null(&out));
    }
    // Our kernels walk the first argument; the others are constants or columns
    // of the same length.
    if !all_scalar && values[0].is_scalar() {
        values[0] = Value::Array(values[0].clone().into_array(rows)?);
    }
    let v = &values;
    Ok(match spec.func {
        F::Abs
        | F::Round
        | F::Floor
        | F::Ceil
        | F::Sign
        | F::IsNan
        | F::Sqrt
        | F::Exp
        | F::Ln
        | F::Log
        | F::Log10
        | F::Log2
        | F::Pow => math::evaluate(whole, spec.func, v, all_scalar)?,
        F::RowRandom => {
            let int = |v: &Value| v.clone().cast(&DataType::Int64, whole)?.into_array(rows);
            let (seed, rows) = (int(&v[0])?, int(&v[1])?);
            let random = math::row_random(
                seed.as_primitive::<Int64Type>(),
                rows.as_primitive::<Int64Type>(),
            )?;
            Value::from_kernel(std::sync::Arc::new(random), all_scalar)
        }
        F::Greatest | F::Least => {
            let mut acc = v[0].clone().cast(&out, whole)?;
            let op = if spec.func == F::Greatest {
                super::BinaryOp::Gt
            } else {
                super::BinaryOp::Lt
            };
            for next in &v[1..] {
                let next = next.clone().cast(&out, whole)?;
                // Take `next` where it wins, or where the best so far is NULL: NULLs
                // are skipped, as in DuckDB.
                let wins = super::eval::compare(op, &next, &acc)?;
                let fills = boolean::and(
                    &boolean::is_null(acc.array())?,
                    &boolean::is_not_null(next.array())?,
                )?;
                let (wins, fills) = (
                    expand(wins, rows, all_scalar)?,
                    expand(fills, rows, all_scalar)?,
                );
                let mask = boolean::or_kleene(&wins, &fills)?;
                acc = Value::from_kernel(zip(&mask, &next.datum(), &acc.datum())?, all_scalar);
            }
            acc
        }
        F::Coalesce => {
            let mut acc = v[0].clone().cast(&out, whole)?;
            for next in &v[1..] {
                let next = next.clone().cast(&out, whole)?;
                let present = expand(boolean::is_not_null(acc.array())?, rows, all_scalar)?;
                acc = Value::from_kernel(zip(&present, &acc.datum(), &next.datum())?, all_scalar);
            }
            acc
        }
        F::NullIf => {
            let (a, b) = (
                v[0].clone().cast(&out, whole)?,
                v[1].clone().cast(&out, whole)?,
            );
            let equal = super::eval::compare(super::BinaryOp::Eq, &a, &b)?;
            let n = if all_scalar { 1 } else { rows };
            let equal = expand(equal, n, all_scalar)?;
            let a = a.into_array(n)?;
            Value::from_kernel(arrow::compute::nullif(&a, &equal)?, all_scalar)
        }
        F::If => return super::case::evaluate(&if_as_case(args), batch),
        F::Contains | F::StartsWith | F::EndsWith => {
            let target = logical(v[0].data_type()).clone();
            let (s, p) = (
                v[0].clone().cast(&target, whole)?,
                v[1].clone().cast(&target, whole)?,
            );
            use arrow::compute::kernels::comparison as c;
            let f = match spec.func {
                F::Contains => c::contains,
                F::StartsWith => c::starts_with,
                _ => c::ends_with,
            };
            bools(f(&s.datum(), &p.datum())?, all_scalar)
        }
        F::Lower
        | F::Upper
        | F::Length
        | F::Substr
        | F::Slice
        | F::Replace
        | F::Trim
        | F::LTrim
        | F::RTrim
        | F::SplitPart
        | F::Concat
        | F::RegexpMatches
        | F::RegexpExtract
        | F::RegexpReplace => strings::evaluate(whole, spec.func, v, rows, all_scalar)?,
        F::Part(part) => temporal::part(whole, part, &v[0])?,
        F::DateTrunc => temporal::date_trunc(whole, &args[0], &v[1], &out)?,
    })
}

/// A boolean result as a mask of `rows` rows (one when everything is constant).
fn expand(
    b: arrow::array::BooleanArray,
    rows: usize,
    scalar: bool,
) -> Result<arrow::array::BooleanArray> {
    if scalar || b.len() == rows {
        return Ok(b);
    }
    let v = Value::Scalar(std::sync::Arc::new(b)).into_array(rows)?;
    Ok(v.as_boolean().clone())
}
