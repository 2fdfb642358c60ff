//! The typing rules: what each operation accepts and gives, and to which common
//! type its operands are converted. Checking ([`data_type`]) and evaluation use
//! the same rules ([`binary_plan`]), so an expression that checks evaluates to
//! the type it checked as.

use arrow::datatypes::{DataType, IntervalUnit, Schema, TimeUnit};

use super::{functions, BinaryOp, Expr, Literal};
use crate::storage::type_name;
use crate::{Error, Result};

/// The type a value of `t` is worked on as: a dictionary's values.
pub(super) fn logical(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, values) => values,
        t => t,
    }
}

pub(super) fn is_string(t: &DataType) -> bool {
    matches!(
        logical(t),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

pub(super) fn is_numeric(t: &DataType) -> bool {
    let t = logical(t);
    t.is_integer()
        || t.is_floating()
        || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

pub(super) fn is_date(t: &DataType) -> bool {
    matches!(logical(t), DataType::Date32 | DataType::Date64)
}

pub(super) fn is_timestamp(t: &DataType) -> bool {
    matches!(logical(t), DataType::Timestamp(..))
}

fn is_interval(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_))
}

/// The type of a literal.
pub(super) fn literal_type(l: &Literal) -> DataType {
    match l {
        Literal::Null => DataType::Null,
        Literal::Boolean(_) => DataType::Boolean,
        Literal::Int64(_) => DataType::Int64,
        Literal::UInt64(_) => DataType::UInt64,
        Literal::Float64(_) => DataType::Float64,
        Literal::Utf8(_) => DataType::Utf8,
        Literal::Date32(_) => DataType::Date32,
        Literal::TimestampMicros(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        Literal::IntervalDays(_) | Literal::Interval { .. } => {
            DataType::Interval(IntervalUnit::MonthDayNano)
        }
    }
}

/// How an operand is named in a message: `utf8 column "id1"`, `int64 value 5`,
/// `int64 expression (v1 + 1)`.
pub(super) fn describe(e: &Expr, t: &DataType) -> String {
    let ty = type_name(t);
    match e {
        Expr::Column(name) => format!("{ty} column \"{name}\""),
        Expr::Literal(Literal::Null) => "NULL".into(),
        Expr::Literal(l) => format!("{ty} value {l}"),
        e => format!("{ty} expression {e}"),
    }
}

/// A [`Error::FrameType`] for `expr`.
pub(super) fn type_error(expr: &Expr, reason: impl Into<String>) -> Error {
    Error::FrameType {
        op: expr.to_string(),
        reason: reason.into(),
    }
}

/// The error for a column `schema` does not have.
pub(super) fn unknown_column(name: &str, schema: &Schema) -> Error {
    let available: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    Error::UnknownColumn {
        column: name.into(),
        close: crate::error::close_names(name, available.iter().cloned()),
        available,
    }
}

/// The value of an integer constant (with its sign folded in).
fn int_literal(e: &Expr) -> Option<i128> {
    match e {
        Expr::Literal(Literal::Int64(v)) => Some((*v).into()),
        Expr::Literal(Literal::UInt64(v)) => Some((*v).into()),
        Expr::Negative(inner) => int_literal(inner).map(|v| -v),
        _ => None,
    }
}

fn is_float_literal(e: &Expr) -> bool {
    match e {
        Expr::Literal(Literal::Float64(_)) => true,
        Expr::Negative(inner) => is_float_literal(inner),
        _ => false,
    }
}

fn int_range(t: &DataType) -> Option<(i128, i128)> {
    Some(match t {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

fn int_width(t: &DataType) -> u32 {
    match t {
        DataType::Int8 | DataType::UInt8 => 8,
        DataType::Int16 | DataType::UInt16 => 16,
        DataType::Int32 | DataType::UInt32 => 32,
        _ => 64,
    }
}

fn signed_of_width(bits: u32) -> DataType {
    match bits {
        8 => DataType::Int8,
        16 => DataType::Int16,
        32 => DataType::Int32,
        _ => DataType::Int64,
    }
}

fn unsigned_of_width(bits: u32) -> DataType {
    match bits {
        8 => DataType::UInt8,
        16 => DataType::UInt16,
        32 => DataType::UInt32,
        _ => DataType::UInt64,
    }
}

/// The signed type that holds every value of integer type `t` (Int64 for UInt64,
/// whose largest values then fail to convert).
pub(super) fn signed_for(t: &DataType) -> DataType {
    if t.is_signed_integer() {
        t.clone()
    } else {
        signed_of_width((int_width(t) * 2).min(64))
    }
}

/// The common type of two numeric types, without regard to constants: the wider
/// integer (a signed one, wide enough, when signedness differs), Float64 as soon
/// as a float meets a different type, decimals as Float64.
fn promote(l: &DataType, r: &DataType) -> DataType {
    if l == r
        && !matches!(
            l,
            DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Float16
        )
    {
        return l.clone();
    }
    if !(l.is_integer() && r.is_integer()) {
        return DataType::Float64;
    }
    let (lw, rw) = (int_width(l), int_width(r));
    match (l.is_signed_integer(), r.is_signed_integer()) {
        (true, true) => signed_of_width(lw.max(rw)),
        (false, false) => unsigned_of_width(lw.max(rw)),
        (true, false) => signed_of_width(lw.max(rw * 2).min(64)),
        (false, true) => signed_of_width(rw.max(lw * 2).min(64)),
    }
}

/// The common type of two numeric operands. A constant takes the other side's
/// type when its value fits, as in DuckDB and Polars: an `int32` column plus `1`
/// stays `int32`, a `float32` column times `1.5` stays `float32`.
pub(super) fn numeric_common(le: &Expr, lt: &DataType, re: &Expr, rt: &DataType) -> DataType {
    let (lt, rt) = (logical(lt), logical(rt));
    if lt == rt {
        return promote(lt, rt);
    }
    for (e, other) in [(le, rt), (re, lt)] {
        if let Some(v) = int_literal(e) {
            if let Some((lo, hi)) = int_range(other) {
                if lo <= v && v <= hi {
                    return other.clone();
                }
            } else if matches!(other, DataType::Float32 | DataType::Float64) {
                return other.clone();
            }
        }
        if is_float_literal(e) && matches!(other, DataType::Float32 | DataType::Float64) {
            return other.clone();
        }
    }
    promote(lt, rt)
}

fn string_common(l: &DataType, r: &DataType) -> DataType {
    let rank = |t: &DataType| match t {
        DataType::Utf8View => 2,
        DataType::LargeUtf8 => 1,
        _ => 0,
    };
    let (l, r) = (logical(l), logical(r));
    if rank(l) >= rank(r) {
        l.clone()
    } else {
        r.clone()
    }
}

fn finer_unit(a: TimeUnit, b: TimeUnit) -> TimeUnit {
    let rank = |u: TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// The type two values are compared (or merged, in `CASE` and `coalesce`) in, or
/// `None` when they do not mix.
pub(super) fn comparable(le: &Expr, lt: &DataType, re: &Expr, rt: &DataType) -> Option<DataType> {
    let (l, r) = (logical(lt), logical(rt));
    Some(match (l, r) {
        (DataType::Null, t) | (t, DataType::Null) => t.clone(),
        _ if is_numeric(l) && is_numeric(r) => numeric_common(le, l, re, r),
        _ if is_string(l) && is_string(r) => string_common(l, r),
        (DataType::Boolean, DataType::Boolean) => DataType::Boolean,
        // DuckDB reads the string as the temporal type: `d > '2020-01-01'`.
        (t, s) | (s, t) if (is_date(t) || is_timestamp(t)) && is_string(s) => t.clone(),
        (DataType::Date64, DataType::Date64) => DataType::Date64,
        _ if is_date(l) && is_date(r) => DataType::Date32,
        (DataType::Timestamp(a, tz), DataType::Timestamp(b, _)) => {
            DataType::Timestamp(finer_unit(*a, *b), tz.clone())
        }
        (t @ DataType::Timestamp(..), d) | (d, t @ DataType::Timestamp(..)) if is_date(d) => {
            t.clone()
        }
        _ if l == r => l.clone(),
        _ => return None,
    })
}

/// The kernel a binary operation runs once its operands have their types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kernel {
    /// Arithmetic (checked for integers) in the common type, arrow's kernels
    /// where they exist; also timestamp ± interval and timestamp − timestamp.
    Arith(BinaryOp),
    /// A comparison, giving booleans.
    Compare(BinaryOp),
    /// Kleene AND / OR.
    Logic(BinaryOp),
    /// String concatenation.
    Concat,
    /// date ± integer days (`swap`: the integer came first).
    DatePlusDays { subtract: bool, swap: bool },
    /// date − date in days.
    DaysBetween,
    /// A NULL operand where the result's type is known: every row NULL.
    AllNull,
}

/// What a binary operation does: convert the operands, run the kernel.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BinaryPlan {
    pub left_to: DataType,
    pub right_to: DataType,
    pub kernel: Kernel,
    pub out: DataType,
}

/// The plan of `left op right` for operands of types `lt` and `rt`; `whole` is the
/// expression, for messages.
pub(super) fn binary_plan(
    op: BinaryOp,
    left: &Expr,
    lt: &DataType,
    right: &Expr,
    rt: &DataType,
    whole: &Expr,
) -> Result<BinaryPlan> {
    use BinaryOp as B;
    let (l, r) = (logical(lt), logical(rt));
    let plan = |left_to: &DataType, right_to: &DataType, kernel, out: DataType| BinaryPlan {
        left_to: left_to.clone(),
        right_to: right_to.clone(),
        kernel,
        out,
    };
    let mismatch = |verb: &str| {
        type_error(
            whole,
            format!(
                "{verb} {} {} {}",
                describe(left, lt),
                if op.is_comparison() { "with" } else { "and" },
                describe(right, rt)
            ),
        )
    };
    match op {
        B::And | B::Or => {
            for (e, t) in [(left, lt), (right, rt)] {
                if !matches!(logical(t), DataType::Boolean | DataType::Null) {
                    return Err(type_error(
                        whole,
                        format!("{} needs booleans, not {}", op.symbol(), describe(e, t)),
                    ));
                }
            }
            Ok(plan(
                &DataType::Boolean,
                &DataType::Boolean,
                Kernel::Logic(op),
                DataType::Boolean,
            ))
        }
        _ if op.is_comparison() => {
            let common =
                comparable(left, lt, right, rt).ok_or_else(|| mismatch("cannot compare"))?;
            if common == DataType::Null {
                return Ok(plan(l, r, Kernel::AllNull, DataType::Boolean));
            }
            Ok(plan(
                &common,
                &common,
                Kernel::Compare(op),
                DataType::Boolean,
            ))
        }
        B::Concat => {
            for (e, t) in [(left, lt), (right, rt)] {
                let t = logical(t);
                let castable = t == &DataType::Null
                    || is_string(t)
                    || arrow::compute::can_cast_types(t, &DataType::Utf8);
                if !castable || t.is_nested() {
                    return Err(type_error(
                        whole,
                        format!("cannot concatenate {}", describe(e, t)),
                    ));
                }
            }
            Ok(plan(
                &DataType::Utf8,
                &DataType::Utf8,
                Kernel::Concat,
                DataType::Utf8,
            ))
        }
        _ => arith_plan(op, left, lt, right, rt)
            .ok_or_else(|| mismatch(&format!("cannot apply {} to", op.symbol()))),
    }
}

/// The plan of an arithmetic operator, `None` when the types do not take it.
fn arith_plan(
    op: BinaryOp,
    le: &Expr,
    lt: &DataType,
    re: &Expr,
    rt: &DataType,
) -> Option<BinaryPlan> {
    use BinaryOp as B;
    let (l, r) = (logical(lt), logical(rt));
    let p = |left_to: DataType, right_to: DataType, kernel, out| {
        Some(BinaryPlan {
            left_to,
            right_to,
            kernel,
            out,
        })
    };
    let ts_us = DataType::Timestamp(TimeUnit::Microsecond, None);
    match (l, r) {
        (DataType::Null, DataType::Null) => p(
            DataType::Null,
            DataType::Null,
            Kernel::AllNull,
            DataType::Null,
        ),
        (DataType::Null, t) | (t, DataType::Null)
            if is_numeric(t) || is_date(t) || is_timestamp(t) =>
        {
            let out = match op {
                B::Divide | B::Power => DataType::Float64,
                _ if is_date(t) && op == B::Subtract => DataType::Int64,
                _ => t.clone(),
            };
            p(l.clone(), r.clone(), Kernel::AllNull, out)
        }
        _ if is_numeric(l) && is_numeric(r) => {
            let common = numeric_common(le, l, re, r);
            match op {
                B::Divide => {
                    let f = if common == DataType::Float32 {
                        DataType::Float32
                    } else {
                        DataType::Float64
                    };
                    p(f.clone(), f.clone(), Kernel::Arith(op), f)
                }
                B::Power => p(
                    DataType::Float64,
                    DataType::Float64,
                    Kernel::Arith(op),
                    DataType::Float64,
                ),
                _ => p(common.clone(), common.clone(), Kernel::Arith(op), common),
            }
        }
        // date ± days, days + date
        _ if is_date(l) && r.is_integer() && matches!(op, B::Add | B::Subtract) => p(
            DataType::Date32,
            DataType::Int32,
            Kernel::DatePlusDays {
                subtract: op == B::Subtract,
                swap: false,
            },
            DataType::Date32,
        ),
        _ if l.is_integer() && is_date(r) && op == B::Add => p(
            DataType::Int32,
            DataType::Date32,
            Kernel::DatePlusDays {
                subtract: false,
                swap: true,
            },
            DataType::Date32,
        ),
        _ if is_date(l) && is_date(r) && op == B::Subtract => p(
            DataType::Date32,
            DataType::Date32,
            Kernel::DaysBetween,
            DataType::Int64,
        ),
        // A date with an interval becomes a timestamp, as in DuckDB.
        _ if is_date(l) && is_interval(r) && matches!(op, B::Add | B::Subtract) => {
            p(ts_us.clone(), r.clone(), Kernel::Arith(op), ts_us)
        }
        _ if is_interval(l) && is_date(r) && op == B::Add => {
            p(l.clone(), ts_us.clone(), Kernel::Arith(op), ts_us)
        }
        _ if is_timestamp(l) && is_interval(r) && matches!(op, B::Add | B::Subtract) => {
            p(l.clone(), r.clone(), Kernel::Arith(op), l.clone())
        }
        _ if is_interval(l) && is_timestamp(r) && op == B::Add => {
            p(l.clone(), r.clone(), Kernel::Arith(op), r.clone())
        }
        _ if is_interval(l) && l == r && matches!(op, B::Add | B::Subtract) => {
            p(l.clone(), r.clone(), Kernel::Arith(op), l.clone())
        }
        _ if (is_timestamp(l) || is_date(l))
            && (is_timestamp(r) || is_date(r))
            && op == B::Subtract =>
        {
            let common = comparable(le, l, re, r)?;
            let DataType::Timestamp(unit, _) = common else {
                return None;
            };
            p(
                common.clone(),
                common,
                Kernel::Arith(op),
                DataType::Duration(unit),
            )
        }
        _ => None,
    }
}

/// The type of `expr` on input of `schema`.
pub(super) fn data_type(expr: &Expr, schema: &Schema) -> Result<DataType> {
    let ty = |e: &Expr| data_type(e, schema);
    match expr {
        Expr::Column(name) => schema
            .field_with_name(name)
            .map(|f| f.data_type().clone())
            .map_err(|_| unknown_column(name, schema)),
        Expr::Literal(l) => Ok(literal_type(l)),
        Expr::Binary { op, left, right } => {
            Ok(binary_plan(*op, left, &ty(left)?, right, &ty(right)?, expr)?.out)
        }
        Expr::Not(e) => {
            check_boolean(expr, e, &ty(e)?)?;
            Ok(DataType::Boolean)
        }
        Expr::Negative(e) => negative_type(expr, e, &ty(e)?),
        Expr::IsNull(e) | Expr::IsNotNull(e) => {
            ty(e)?;
            Ok(DataType::Boolean)
        }
        Expr::Cast { expr: e, to, .. } => {
            let from = ty(e)?;
            check_cast(expr, e, &from, &to.0)?;
            Ok(to.0.clone())
        }
        Expr::Case {
            operand,
            when_then,
            otherwise,
        } => {
            let operand_type = operand.as_ref().map(|o| ty(o)).transpose()?;
            let mut conditions = Vec::with_capacity(when_then.len());
            let mut values = Vec::with_capacity(when_then.len() + 1);
            for (when, then) in when_then {
                conditions.push((when, ty(when)?));
                values.push((then, ty(then)?));
            }
            if let Some(e) = otherwise {
                values.push((&**e, ty(e)?));
            }
            case_types(
                expr,
                operand.as_deref().zip(operand_type.as_ref()),
                &conditions,
                &values,
            )
        }
        Expr::InList { expr: e, list, .. } => {
            let t = ty(e)?;
            for item in list {
                comparable(e, &t, item, &ty(item)?).ok_or_else(|| {
                    type_error(
                        expr,
                        format!(
                            "cannot compare {} with {}",
                            describe(e, &t),
                            describe(item, &ty(item).unwrap_or(DataType::Null))
                        ),
                    )
                })?;
            }
            Ok(DataType::Boolean)
        }
        Expr::Between {
            expr: e, low, high, ..
        } => {
            let t = ty(e)?;
            for bound in [low, high] {
                binary_plan(BinaryOp::GtEq, e, &t, bound, &ty(bound)?, expr)?;
            }
            Ok(DataType::Boolean)
        }
        Expr::Like {
            expr: e, pattern, ..
        } => {
            for x in [e, pattern] {
                let t = ty(x)?;
                if !(is_string(&t) || t == DataType::Null) {
                    return Err(type_error(
                        expr,
                        format!("LIKE needs strings, not {}", describe(x, &t)),
                    ));
                }
            }
            Ok(DataType::Boolean)
        }
        Expr::Function { name, args } => {
            let types = args.iter().map(ty).collect::<Result<Vec<_>>>()?;
            functions::return_type(expr, name, args, &types)
        }
        Expr::ScalarSubquery(s) => Ok(s.data_type.0.clone()),
        Expr::InSubquery {
            expr: e, subquery, ..
        } => {
            let t = ty(e)?;
            in_subquery_type(expr, e, &t, subquery)?;
            Ok(DataType::Boolean)
        }
    }
}

/// The type a column of a set operation (`UNION`) takes when its queries give it
/// types `a` and `b`, as DuckDB decides it: the wider number (a boolean beside a
/// number is that number), a string when either is one (the other's values
/// become their text), the finer of dates and timestamps; `None` when the two do
/// not mix.
pub(super) fn union_type(a: &DataType, b: &DataType) -> Option<DataType> {
    let (l, r) = (logical(a), logical(b));
    if is_string(l) || is_string(r) {
        return Some(if is_string(l) && is_string(r) {
            string_common(l, r)
        } else {
            DataType::Utf8
        });
    }
    // A boolean beside numbers is a number (true is 1).
    match (l, r) {
        (DataType::Boolean, t) | (t, DataType::Boolean) if is_numeric(t) => return Some(t.clone()),
        _ => {}
    }
    let column = Expr::Column(String::new());
    comparable(&column, l, &column, r)
}

/// The type `x IN (subquery)` compares in: the common type of `x` and the
/// subquery's column.
pub(super) fn in_subquery_type(
    whole: &Expr,
    e: &Expr,
    t: &DataType,
    subquery: &super::Subquery,
) -> Result<DataType> {
    let s = &subquery.data_type.0;
    let column = Expr::ScalarSubquery(Box::new(subquery.clone()));
    comparable(e, t, &column, s).ok_or_else(|| {
        type_error(
            whole,
            format!(
                "cannot compare {} with the subquery's {} column",
                describe(e, t),
                type_name(s)
            ),
        )
    })
}

pub(super) fn check_boolean(whole: &Expr, e: &Expr, t: &DataType) -> Result<()> {
    match logical(t) {
        DataType::Boolean | DataType::Null => Ok(()),
        _ => Err(type_error(
            whole,
            format!("NOT needs a boolean, not {}", describe(e, t)),
        )),
    }
}

/// The type of `-e`: numbers (unsigned ones widened to signed, as `-x` may be
/// negative) and intervals.
pub(super) fn negative_type(whole: &Expr, e: &Expr, t: &DataType) -> Result<DataType> {
    let l = logical(t);
    if l.is_unsigned_integer() {
        return Ok(signed_for(l));
    }
    if is_numeric(l) || is_interval(l) || l == &DataType::Null || matches!(l, DataType::Duration(_))
    {
        return Ok(
            if matches!(l, DataType::Decimal128(..) | DataType::Decimal256(..)) {
                DataType::Float64
            } else {
                l.clone()
            },
        );
    }
    Err(type_error(
        whole,
        format!("cannot negate {}", describe(e, t)),
    ))
}

pub(super) fn check_cast(whole: &Expr, e: &Expr, from: &DataType, to: &DataType) -> Result<()> {
    if arrow::compute::can_cast_types(from, to) {
        Ok(())
    } else {
        Err(type_error(
            whole,
            format!("cannot cast {} to {}", describe(e, from), type_name(to)),
        ))
    }
}

/// The result type of a `CASE`, checking its conditions.
pub(super) fn case_types(
    whole: &Expr,
    operand: Option<(&Expr, &DataType)>,
    conditions: &[(&Expr, DataType)],
    values: &[(&Expr, DataType)],
) -> Result<DataType> {
    for (when, t) in conditions {
        match operand {
            Some((o, ot)) => {
                comparable(o, ot, when, t).ok_or_else(|| {
                    type_error(
                        whole,
                        format!(
                            "cannot compare {} with {}",
                            describe(o, ot),
                            describe(when, t)
                        ),
                    )
                })?;
            }
            None if matches!(logical(t), DataType::Boolean | DataType::Null) => {}
            None => {
                return Err(type_error(
                    whole,
                    format!("WHEN needs a boolean, not {}", describe(when, t)),
                ))
            }
        }
    }
    common_of(whole, "CASE branches", values)
}

/// The common type of several values merged into one column (`CASE` branches,
/// `coalesce`, `greatest`).
pub(super) fn common_of(
    whole: &Expr,
    what: &str,
    values: &[(&Expr, DataType)],
) -> Result<DataType> {
    let mut out: Option<(&Expr, DataType)> = None;
    for (e, t) in values {
        out = Some(match out {
            None => (*e, logical(t).clone()),
            Some((first, acc)) => {
                let common = comparable(first, &acc, e, t).ok_or_else(|| {
                    type_error(
                        whole,
                        format!(
                            "{what} do not mix: {} and {}",
                            describe(first, &acc),
                            describe(e, t)
                        ),
                    )
                })?;
                // A temporal type meeting a string keeps the temporal type only when
                // compared; merged values need one storage type.
                if is_string(&acc) != is_string(t)
                    && acc != DataType::Null
                    && logical(t) != &DataType::Null
                {
                    return Err(type_error(
                        whole,
                        format!(
                            "{what} do not mix: {} and {}",
                            describe(first, &acc),
                            describe(e, t)
                        ),
                    ));
                }
                // The constant-fits rule compares one constant with one column; a
                // merged type takes the wider when both are constants.
                (
                    if matches!(first, Expr::Literal(_)) {
                        *e
                    } else {
                        first
                    },
                    common,
                )
            }
        });
    }
    Ok(out.map_or(DataType::Null, |(_, t)| t))
}
