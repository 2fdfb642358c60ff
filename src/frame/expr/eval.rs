//! Evaluation of an expression on one record batch. Every node converts its
//! operands by the rules in `coerce`, then runs arrow's kernel (or one of ours in
//! `arith`, `functions`), keeping constants as scalars.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array,
    IntervalMonthDayNanoArray, NullArray, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::{boolean, cmp};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, IntervalMonthDayNano};
use hashbrown::HashSet;

use super::coerce::{self, describe, logical, type_error};
use super::value::{bools, Value};
use super::{arith, case, functions, BinaryOp, Expr, Literal};
use crate::{Error, Result};

/// The value of `expr` on `batch`.
pub(super) fn evaluate(expr: &Expr, batch: &RecordBatch) -> Result<Value> {
    let rows = batch.num_rows();
    match expr {
        Expr::Column(name) => batch
            .column_by_name(name)
            .map(|c| Value::Array(c.clone()))
            .ok_or_else(|| coerce::unknown_column(name, &batch.schema())),
        Expr::Literal(l) => Ok(Value::Scalar(literal_array(l))),
        Expr::Binary { op, left, right } => {
            let l = evaluate(left, batch)?;
            let r = evaluate(right, batch)?;
            let plan = coerce::binary_plan(*op, left, l.data_type(), right, r.data_type(), expr)?;
            arith::apply(&plan, l, r, rows, expr)
        }
        Expr::Not(e) => {
            let v = evaluate(e, batch)?;
            coerce::check_boolean(expr, e, v.data_type())?;
            let v = v.cast(&DataType::Boolean, expr)?;
            Ok(bools(boolean::not(v.booleans()?)?, v.is_scalar()))
        }
        Expr::Negative(e) => {
            let v = evaluate(e, batch)?;
            let out = coerce::negative_type(expr, e, v.data_type())?;
            if out == DataType::Null {
                return Ok(v);
            }
            let v = v.cast(&out, expr)?;
            let scalar = v.is_scalar();
            let neg = arrow::compute::kernels::numeric::neg(v.array())
                .map_err(|err| arith::arrow_error(expr, err))?;
            Ok(Value::from_kernel(neg, scalar))
        }
        Expr::IsNull(e) | Expr::IsNotNull(e) => {
            let v = evaluate(e, batch)?;
            let out = match expr {
                Expr::IsNull(_) => boolean::is_null(v.array())?,
                _ => boolean::is_not_null(v.array())?,
            };
            Ok(bools(out, v.is_scalar()))
        }
        Expr::Cast {
            expr: e,
            to,
            try_cast,
        } => {
            let v = evaluate(e, batch)?;
            coerce::check_cast(expr, e, v.data_type(), &to.0)?;
            let options = CastOptions {
                safe: *try_cast,
                ..Default::default()
            };
            let scalar = v.is_scalar();
            let out = cast_with_options(v.array(), &to.0, &options).map_err(|err| {
                type_error(
                    expr,
                    format!("cannot cast {}: {err}", describe(e, v.data_type())),
                )
            })?;
            Ok(Value::from_kernel(out, scalar))
        }
        Expr::Case { .. } => case::evaluate(expr, batch),
        Expr::InList {
            expr: e,
            list,
            negated,
        } => in_list(expr, e, list, *negated, batch),
        Expr::Between {
            expr: e,
            low,
            high,
            negated,
        } => {
            let v = evaluate(e, batch)?;
            let mut both: Option<Value> = None;
            for (bound, op) in [(low, BinaryOp::GtEq), (high, BinaryOp::LtEq)] {
                let b = evaluate(bound, batch)?;
                let plan = coerce::binary_plan(op, e, v.data_type(), bound, b.data_type(), expr)?;
                let cmp = arith::apply(&plan, v.clone(), b, rows, expr)?;
                both = Some(match both {
                    None => cmp,
                    Some(prev) => {
                        let plan = coerce::binary_plan(
                            BinaryOp::And,
                            e,
                            prev.data_type(),
                            e,
                            cmp.data_type(),
                            expr,
                        )?;
                        arith::apply(&plan, prev, cmp, rows, expr)?
                    }
                });
            }
            let both = both.ok_or_else(|| Error::bug("BETWEEN without bounds", ""))?;
            if *negated {
                Ok(bools(boolean::not(both.booleans()?)?, both.is_scalar()))
            } else {
                Ok(both)
            }
        }
        Expr::Like {
            expr: e,
            pattern,
            case_insensitive,
            negated,
        } => {
            let v = evaluate(e, batch)?;
            let p = evaluate(pattern, batch)?;
            for (x, val) in [(e, &v), (pattern, &p)] {
                if !(coerce::is_string(val.data_type()) || val.data_type() == &DataType::Null) {
                    return Err(type_error(
                        expr,
                        format!("LIKE needs strings, not {}", describe(x, val.data_type())),
                    ));
                }
            }
            if v.data_type() == &DataType::Null || p.data_type() == &DataType::Null {
                return Ok(Value::null(&DataType::Boolean));
            }
            // Both sides in one string type: the column's, so that only the pattern
            // (usually a constant) is converted.
            let target = if v.is_scalar() {
                logical(p.data_type())
            } else {
                logical(v.data_type())
            }
            .clone();
            let (v, p) = (v.cast(&target, expr)?, p.cast(&target, expr)?);
            let scalar = v.is_scalar() && p.is_scalar();
            use arrow_like as like;
            let f = match (negated, case_insensitive) {
                (false, false) => like::like,
                (false, true) => like::ilike,
                (true, false) => like::nlike,
                (true, true) => like::nilike,
            };
            Ok(bools(f(&v.datum(), &p.datum())?, scalar))
        }
        Expr::Function { name, args } if functions::is_if(name) && args.len() == 3 => {
            case::evaluate(&functions::if_as_case(args), batch)
        }
        Expr::Function { name, args } => {
            let values = args
                .iter()
                .map(|a| evaluate(a, batch))
                .collect::<Result<Vec<_>>>()?;
            functions::evaluate(expr, name, args, values, batch)
        }
    }
}

/// arrow's LIKE kernels.
mod arrow_like {
    pub(super) use arrow::compute::kernels::comparison::{ilike, like, nilike, nlike};
}

/// A literal as a one-row array.
pub(super) fn literal_array(l: &Literal) -> ArrayRef {
    match l {
        Literal::Null => Arc::new(NullArray::new(1)),
        Literal::Boolean(b) => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Int64(v) => Arc::new(Int64Array::from(vec![*v])),
        Literal::UInt64(v) => Arc::new(UInt64Array::from(vec![*v])),
        Literal::Float64(v) => Arc::new(Float64Array::from(vec![*v])),
        Literal::Utf8(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        Literal::Date32(d) => Arc::new(Date32Array::from(vec![*d])),
        Literal::TimestampMicros(t) => Arc::new(TimestampMicrosecondArray::from(vec![*t])),
        Literal::IntervalDays(d) => Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(0, *d, 0),
        ])),
        Literal::Interval {
            months,
            days,
            nanos,
        } => Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(*months, *days, *nanos),
        ])),
    }
}

/// `e [NOT] IN (list)`. A list of constants is looked up in a hash set built
/// once for the batch; otherwise it is the OR of equalities (SQL's definition).
fn in_list(
    whole: &Expr,
    e: &Expr,
    list: &[Expr],
    negated: bool,
    batch: &RecordBatch,
) -> Result<Value> {
    let rows = batch.num_rows();
    let v = evaluate(e, batch)?;
    let items = list
        .iter()
        .map(|x| evaluate(x, batch))
        .collect::<Result<Vec<_>>>()?;
    let mut common = logical(v.data_type()).clone();
    for (x, item) in list.iter().zip(&items) {
        common = coerce::comparable(e, &common, x, item.data_type()).ok_or_else(|| {
            type_error(
                whole,
                format!(
                    "cannot compare {} with {}",
                    describe(e, v.data_type()),
                    describe(x, item.data_type())
                ),
            )
        })?;
    }
    let found = if items.iter().all(Value::is_scalar) && !v.is_scalar() {
        let values = v.cast(&common, whole)?;
        let mut keys = Vec::with_capacity(items.len());
        for item in items {
            keys.push(item.cast(&common, whole)?.into_array(1)?);
        }
        hashed_in(values.array(), &keys)?
    } else {
        let mut acc: Option<Value> = None;
        for (x, item) in list.iter().zip(items) {
            let plan =
                coerce::binary_plan(BinaryOp::Eq, e, v.data_type(), x, item.data_type(), whole)?;
            let eq = arith::apply(&plan, v.clone(), item, rows, whole)?;
            acc = Some(match acc {
                None => eq,
                Some(prev) => {
                    let plan = coerce::binary_plan(
                        BinaryOp::Or,
                        e,
                        prev.data_type(),
                        x,
                        eq.data_type(),
                        whole,
                    )?;
                    arith::apply(&plan, prev, eq, rows, whole)?
                }
            });
        }
        match acc {
            Some(v) => v,
            // `x IN ()` is false (NULL for a NULL x would be DuckDB's; it refuses
            // the empty list at parse time, so either is fine).
            None => bools(BooleanArray::from(vec![false]), true),
        }
    };
    if negated {
        Ok(bools(boolean::not(found.booleans()?)?, found.is_scalar()))
    } else {
        Ok(found)
    }
}

/// Membership of each row of `values` among the one-row `keys` (all of the
/// values' type): true, false, or NULL for a NULL row or a miss when a key is
/// NULL.
fn hashed_in(values: &ArrayRef, keys: &[ArrayRef]) -> Result<Value> {
    let has_null_key = keys.iter().any(|k| k.is_null(0));
    let keys: Vec<&ArrayRef> = keys.iter().filter(|k| !k.is_null(0)).collect();
    let hits: BooleanBuffer = match values.data_type() {
        t if t.is_primitive() => {
            // Compare bit patterns at the physical width: integers, dates,
            // timestamps; floats with -0.0 folded into 0.0 and one NaN, as SQL's
            // equality has them.
            macro_rules! lookup {
                ($t:ty) => {{
                    let norm =
                        |x: <$t as arrow::datatypes::ArrowPrimitiveType>::Native| normalize(x);
                    let set: HashSet<_> = keys
                        .iter()
                        .map(|k| norm(k.as_primitive::<$t>().value(0)))
                        .collect();
                    let values = values.as_primitive::<$t>();
                    BooleanBuffer::collect_bool(values.len(), |i| {
                        set.contains(&norm(values.value(i)))
                    })
                }};
            }
            use arrow::datatypes as dt;
            match t.primitive_width() {
                Some(1) => lookup_bits::<1>(values, &keys),
                Some(2) => lookup_bits::<2>(values, &keys),
                Some(4) if t.is_floating() => lookup!(dt::Float32Type),
                Some(8) if t.is_floating() => lookup!(dt::Float64Type),
                Some(4) => lookup_bits::<4>(values, &keys),
                Some(8) => lookup_bits::<8>(values, &keys),
                Some(16) => lookup_bits::<16>(values, &keys),
                _ => return Err(Error::bug("IN over a primitive type", t)),
            }
        }
        DataType::Boolean => {
            let values = values.as_boolean();
            let (mut t, mut f) = (false, false);
            for k in &keys {
                if k.as_boolean().value(0) {
                    t = true
                } else {
                    f = true
                }
            }
            BooleanBuffer::collect_bool(values.len(), |i| if values.value(i) { t } else { f })
        }
        t if coerce::is_string(t) => {
            let set: HashSet<&str> = keys
                .iter()
                .filter_map(|k| super::strings::str_at(k, 0))
                .collect();
            super::strings::collect_str(values, |s| set.contains(s))?
        }
        t => return Err(Error::bug("IN over this type", t)),
    };
    let out = match (has_null_key, values.nulls()) {
        // A miss is NULL when the list holds a NULL; a NULL row is NULL anyway.
        (true, nulls) => {
            let valid = match nulls {
                Some(n) => &hits & n.inner(),
                None => hits.clone(),
            };
            BooleanArray::new(hits, Some(valid.into()))
        }
        (false, nulls) => BooleanArray::new(hits, nulls.cloned()),
    };
    Ok(bools(out, false))
}

/// Folds the float values that SQL's equality does not tell apart.
trait Normalize {
    type Key: std::hash::Hash + Eq;
    fn key(self) -> Self::Key;
}
impl Normalize for f32 {
    type Key = u32;
    fn key(self) -> u32 {
        if self == 0.0 {
            0
        } else if self.is_nan() {
            f32::NAN.to_bits()
        } else {
            self.to_bits()
        }
    }
}
impl Normalize for f64 {
    type Key = u64;
    fn key(self) -> u64 {
        if self == 0.0 {
            0
        } else if self.is_nan() {
            f64::NAN.to_bits()
        } else {
            self.to_bits()
        }
    }
}
fn normalize<T: Normalize>(x: T) -> T::Key {
    x.key()
}

/// IN over a fixed-width type by its bytes (equal values have equal bytes).
fn lookup_bits<const N: usize>(values: &ArrayRef, keys: &[&ArrayRef]) -> BooleanBuffer {
    // The values' bytes at the array's offset, `len * N` of them.
    fn bytes<const N: usize>(data: &arrow::array::ArrayData) -> &[u8] {
        let start = data.offset() * N;
        &data.buffers()[0].as_slice()[start..start + data.len() * N]
    }
    let set: HashSet<[u8; N]> = keys
        .iter()
        .map(|k| {
            let data = k.to_data();
            let mut key = [0u8; N];
            key.copy_from_slice(bytes::<N>(&data));
            key
        })
        .collect();
    let data = values.to_data();
    let raw = bytes::<N>(&data);
    BooleanBuffer::collect_bool(data.len(), |i| {
        let mut key = [0u8; N];
        key.copy_from_slice(&raw[i * N..i * N + N]);
        set.contains(&key)
    })
}

/// Expands a boolean value used as a filter: NULL counts as false.
pub(super) fn as_mask(v: &Value, rows: usize) -> Result<BooleanArray> {
    let b = v.clone().into_array(rows)?;
    let b = b.as_boolean();
    Ok(match b.nulls() {
        Some(n) => BooleanArray::new(b.values() & n.inner(), None),
        None => b.clone(),
    })
}

/// Compares two values of one type with `op` (a comparison operator).
pub(super) fn compare(op: BinaryOp, l: &Value, r: &Value) -> Result<BooleanArray> {
    let (ld, rd) = (l.datum(), r.datum());
    Ok(match op {
        BinaryOp::Eq => cmp::eq(&ld, &rd)?,
        BinaryOp::NotEq => cmp::neq(&ld, &rd)?,
        BinaryOp::Lt => cmp::lt(&ld, &rd)?,
        BinaryOp::LtEq => cmp::lt_eq(&ld, &rd)?,
        BinaryOp::Gt => cmp::gt(&ld, &rd)?,
        BinaryOp::GtEq => cmp::gt_eq(&ld, &rd)?,
        other => return Err(Error::bug("a comparison operator", other.symbol())),
    })
}
