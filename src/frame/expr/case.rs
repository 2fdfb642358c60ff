//! `CASE`: each branch computed only on the rows that reach it, as DuckDB does,
//! so that `CASE WHEN x = 0 THEN 0 ELSE 100 // x END`-style guards work even for
//! operations that fail (overflow, a failed `CAST`). When no part can fail, every
//! part is computed on the whole batch and merged with `zip`, which is cheaper
//! than filtering.

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::kernels::{boolean, zip::zip};
use arrow::compute::{filter, filter_record_batch, interleave};

use super::coerce::{self, type_error};
use super::eval::{as_mask, evaluate as eval};
use super::value::Value;
use super::{BinaryOp, Expr};
use crate::{Error, Result};

/// The value of the `CASE` expression `whole` on `batch`.
pub(super) fn evaluate(whole: &Expr, batch: &RecordBatch) -> Result<Value> {
    let Expr::Case {
        operand,
        when_then,
        otherwise,
    } = whole
    else {
        return Err(Error::bug("CASE evaluation of another expression", whole));
    };
    let out = coerce::data_type(whole, &batch.schema())?;
    if when_then.is_empty() {
        return match otherwise {
            Some(e) => eval(e, batch)?.cast(&out, whole),
            None => Ok(Value::null(&out)),
        };
    }
    if whole.children().all(cannot_fail) {
        whole_batch(
            whole,
            operand.as_deref(),
            when_then,
            otherwise.as_deref(),
            &out,
            batch,
        )
    } else {
        by_rows(
            whole,
            operand.as_deref(),
            when_then,
            otherwise.as_deref(),
            &out,
            batch,
        )
    }
}

/// Whether evaluating `e` cannot fail on any data (so computing it on rows no
/// branch selects is harmless).
fn cannot_fail(e: &Expr) -> bool {
    let safe_here = match e {
        Expr::Column(_)
        | Expr::Literal(_)
        | Expr::Not(_)
        | Expr::IsNull(_)
        | Expr::IsNotNull(_) => true,
        Expr::InList { .. } | Expr::Between { .. } | Expr::Like { .. } => true,
        Expr::ScalarSubquery(_) | Expr::InSubquery { .. } => true,
        Expr::Binary { op, .. } => {
            op.is_comparison()
                || matches!(
                    op,
                    BinaryOp::And
                        | BinaryOp::Or
                        | BinaryOp::Divide
                        | BinaryOp::Concat
                        | BinaryOp::Power
                )
        }
        Expr::Cast { try_cast, .. } => *try_cast,
        _ => false,
    };
    safe_here && e.children().all(cannot_fail)
}

/// The condition of one branch: the `WHEN` value, or its equality with the operand.
fn condition(
    whole: &Expr,
    operand: Option<(&Expr, &Value)>,
    when: &Expr,
    batch: &RecordBatch,
) -> Result<Value> {
    let w = eval(when, batch)?;
    match operand {
        None => {
            if !matches!(
                coerce::logical(w.data_type()),
                arrow::datatypes::DataType::Boolean | arrow::datatypes::DataType::Null
            ) {
                return Err(type_error(
                    whole,
                    format!(
                        "WHEN needs a boolean, not {}",
                        coerce::describe(when, w.data_type())
                    ),
                ));
            }
            w.cast(&arrow::datatypes::DataType::Boolean, whole)
        }
        Some((o, ov)) => {
            let plan =
                coerce::binary_plan(BinaryOp::Eq, o, ov.data_type(), when, w.data_type(), whole)?;
            super::arith::apply(&plan, ov.clone(), w, batch.num_rows(), whole)
        }
    }
}

fn whole_batch(
    whole: &Expr,
    operand: Option<&Expr>,
    when_then: &[(Expr, Expr)],
    otherwise: Option<&Expr>,
    out: &arrow::datatypes::DataType,
    batch: &RecordBatch,
) -> Result<Value> {
    let rows = batch.num_rows();
    let operand = operand
        .map(|o| Ok::<_, Error>((o, eval(o, batch)?)))
        .transpose()?;
    let mut result = match otherwise {
        Some(e) => eval(e, batch)?.cast(out, whole)?,
        None => Value::null(out),
    };
    // Last branch first, so that an earlier branch's rows overwrite a later one's.
    for (when, then) in when_then.iter().rev() {
        let cond = condition(whole, operand.as_ref().map(|(o, v)| (*o, v)), when, batch)?;
        let mask = as_mask(&cond, rows)?;
        let value = eval(then, batch)?.cast(out, whole)?;
        result = Value::Array(zip(&mask, &value.datum(), &result.datum())?);
    }
    Ok(result)
}

fn by_rows(
    whole: &Expr,
    operand: Option<&Expr>,
    when_then: &[(Expr, Expr)],
    otherwise: Option<&Expr>,
    out: &arrow::datatypes::DataType,
    batch: &RecordBatch,
) -> Result<Value> {
    let rows = batch.num_rows();
    // Only the columns the CASE reads are filtered branch after branch.
    let mut names = std::collections::BTreeSet::new();
    whole.columns(&mut names);
    let schema = batch.schema();
    let indices: Vec<usize> = names
        .iter()
        .filter_map(|n| schema.index_of(n).ok())
        .collect();
    let mut rest = batch.project(&indices)?;
    let mut rest_rows: ArrayRef =
        std::sync::Arc::new(UInt32Array::from_iter_values(0..rows as u32));
    let mut operand = match operand {
        Some(o) => Some((o, eval(o, batch)?.into_array(rows)?)),
        None => None,
    };
    let mut pieces: Vec<ArrayRef> = Vec::with_capacity(when_then.len() + 2);
    let mut picks: Vec<(usize, usize)> = vec![(0, 0); rows];
    // Piece 0 is a NULL for rows no branch takes.
    pieces.push(new_null_array(out, 1));
    let mut place =
        |pieces: &mut Vec<ArrayRef>, value: Value, taken_rows: &ArrayRef| -> Result<()> {
            let piece = pieces.len();
            let scalar = value.is_scalar();
            pieces.push(value.array().clone());
            let taken_rows = taken_rows
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| Error::bug("CASE row numbers", ""))?;
            for (j, &row) in taken_rows.values().iter().enumerate() {
                picks[row as usize] = (piece, if scalar { 0 } else { j });
            }
            Ok(())
        };
    for (when, then) in when_then {
        if rest.num_rows() == 0 {
            break;
        }
        let operand_value = operand.as_ref().map(|(o, a)| (*o, Value::Array(a.clone())));
        let cond = condition(
            whole,
            operand_value.as_ref().map(|(o, v)| (*o, v)),
            when,
            &rest,
        )?;
        let mask = as_mask(&cond, rest.num_rows())?;
        if mask.true_count() > 0 {
            let taken = filter_record_batch(&rest, &mask)?;
            let value = eval(then, &taken)?.cast(out, whole)?;
            place(&mut pieces, value, &filter(&rest_rows, &mask)?)?;
        }
        let not_taken = boolean::not(&mask)?;
        rest = filter_record_batch(&rest, &not_taken)?;
        rest_rows = filter(&rest_rows, &not_taken)?;
        if let Some((_, a)) = &mut operand {
            *a = filter(a, &not_taken)?;
        }
    }
    if let (Some(e), true) = (otherwise, rest.num_rows() > 0) {
        let value = eval(e, &rest)?.cast(out, whole)?;
        place(&mut pieces, value, &rest_rows)?;
    }
    let refs: Vec<&dyn Array> = pieces.iter().map(|p| p.as_ref()).collect();
    Ok(Value::Array(interleave(&refs, &picks)?))
}
