//! Evaluation of an expression on one record batch. Every node converts its
//! operands by the rules in `coerce`, then runs arrow's kernel (or one of ours in
//! `arith`, `functions`), keeping constants as scalars.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array,
    IntervalMonthDayNanoArray, NullArray, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use arrow::compute::kernels::{boolean, cmp};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, IntervalMonthDayNano};

use super::coerce::{self, describe, logical, type_error};
use super::in_set::KeySet;
use super::value::{bools, Value};
use super::{arith, case, functions, BinaryOp, Expr, Literal, SubqueryValue};
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
        Expr::ScalarSubquery(s) => match &s.value {
            Some(SubqueryValue::Scalar(v)) => Ok(Value::Scalar(v.clone())),
            _ => Err(Error::bug(
                "a subquery evaluated before its value is bound",
                &s.text,
            )),
        },
        Expr::InSubquery {
            expr: e,
            subquery,
            negated,
        } => {
            let Some(SubqueryValue::Set(set)) = &subquery.value else {
                return Err(Error::bug(
                    "a subquery evaluated before its values are bound",
                    &subquery.text,
                ));
            };
            let v = evaluate(e, batch)?;
            let common = coerce::in_subquery_type(expr, e, v.data_type(), subquery)?;
            let scalar = v.is_scalar();
            let values = v.cast(&common, expr)?;
            let found = if coerce::logical(set.data_type()) == &common {
                set.probe(values.array())?
            } else {
                // The subquery's column compared in a wider type (an integer
                // column with a float): its values converted for this batch.
                let keys = set.keys_as(&common, expr)?;
                keys.probe(values.array())?
            };
            let found = if *negated {
                boolean::not(&found)?
            } else {
                found
            };
            Ok(bools(found, scalar))
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
/// values' type), through a [`KeySet`] built for the batch.
fn hashed_in(values: &ArrayRef, keys: &[ArrayRef]) -> Result<Value> {
    let keys: Vec<&dyn Array> = keys.iter().map(|k| k.as_ref()).collect();
    let keys = arrow::compute::concat(&keys)?;
    Ok(bools(KeySet::build(&keys)?.probe(values)?, false))
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
