//! Partitions a filter cannot match, found from the file's statistics before
//! anything is read: Parquet row groups whose bounds exclude `v3 > 90`,
//! `id4 = 7` or `x BETWEEN 1 AND 2` are left out of the plan.
//!
//! Only the filters before a query's first projection are used, and of them only
//! conjuncts of a column compared with a constant (`=`, `<`, `<=`, `>`, `>=`,
//! `BETWEEN`, `IS [NOT] NULL`). A comparison is tested on the bounds with the
//! expression layer itself, so the constant is coerced as it would be against the
//! column. Anything unknown keeps the partition.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use super::expr::{BinaryOp, Expr};
use super::ops::pipeline::{Pipeline, Step};
use crate::storage::frame::FrameSource;

/// The partitions of `source` that the filters of `pre` may match, in order;
/// `None` when nothing can be ruled out.
pub fn partitions_to_read(source: &dyn FrameSource, pre: &Pipeline) -> Option<Vec<usize>> {
    let n = source.num_partitions();
    let mut keep = vec![true; n];
    let mut pruned = false;
    for step in &pre.steps {
        let predicate = match step {
            Step::Filter(predicate) => predicate,
            // A projection that only selects columns under their names (the
            // scan's column list) leaves the filters after it on the file's.
            Step::Project(exprs)
                if exprs
                    .iter()
                    .all(|(e, name)| matches!(e, Expr::Column(c) if c == name)) =>
            {
                continue
            }
            Step::Project(_) => break,
        };
        let mut conjuncts = Vec::new();
        split_and(predicate, &mut conjuncts);
        for c in conjuncts {
            if let Some(mask) = may_match(source, c) {
                if mask.len() == n {
                    for (k, m) in keep.iter_mut().zip(mask) {
                        pruned |= *k && !m;
                        *k &= m;
                    }
                }
            }
        }
    }
    pruned.then(|| (0..n).filter(|&i| keep[i]).collect())
}

fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        other => out.push(other),
    }
}

/// Per partition, whether `c` may hold for some row; `None` when the
/// statistics cannot tell.
fn may_match(source: &dyn FrameSource, c: &Expr) -> Option<Vec<bool>> {
    match c {
        Expr::Binary { op, left, right } => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(col), Expr::Literal(_)) => compare(source, col, *op, right),
            (Expr::Literal(_), Expr::Column(col)) => compare(source, col, flipped(*op)?, left),
            _ => None,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated: false,
        } => {
            let (Expr::Column(col), Expr::Literal(_), Expr::Literal(_)) =
                (expr.as_ref(), low.as_ref(), high.as_ref())
            else {
                return None;
            };
            let lo = compare(source, col, BinaryOp::GtEq, low)?;
            let hi = compare(source, col, BinaryOp::LtEq, high)?;
            Some(lo.into_iter().zip(hi).map(|(a, b)| a && b).collect())
        }
        Expr::IsNotNull(e) => {
            let Expr::Column(col) = e.as_ref() else {
                return None;
            };
            let stats = source.column_stats(col)?;
            Some(
                stats
                    .null_counts
                    .iter()
                    .zip(&stats.rows)
                    .map(|(nulls, &rows)| nulls.is_none_or(|n| n < rows))
                    .collect(),
            )
        }
        Expr::IsNull(e) => {
            let Expr::Column(col) = e.as_ref() else {
                return None;
            };
            let stats = source.column_stats(col)?;
            Some(
                stats
                    .null_counts
                    .iter()
                    .map(|nulls| nulls.is_none_or(|n| n > 0))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// `a op b` as `b op' a`.
fn flipped(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq => BinaryOp::Eq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        _ => return None,
    })
}

/// Per partition, whether `col op value` may hold.
fn compare(source: &dyn FrameSource, col: &str, op: BinaryOp, value: &Expr) -> Option<Vec<bool>> {
    let stats = source.column_stats(col)?;
    let float = matches!(
        stats.maxes.data_type(),
        DataType::Float16 | DataType::Float32 | DataType::Float64
    );
    match op {
        BinaryOp::Lt | BinaryOp::LtEq => bound_test(&stats.mins, col, op, value),
        // NaN is larger than every number and Parquet's statistics leave it out
        // (writers record no NaN count, or 0 for none recorded): a float column's
        // upper bound says nothing. DuckDB prunes here and loses the NaN rows its
        // own comparison would keep.
        BinaryOp::Gt | BinaryOp::GtEq if float => None,
        BinaryOp::Gt | BinaryOp::GtEq => bound_test(&stats.maxes, col, op, value),
        BinaryOp::Eq => {
            let lo = bound_test(&stats.mins, col, BinaryOp::LtEq, value)?;
            let hi = bound_test(&stats.maxes, col, BinaryOp::GtEq, value)?;
            Some(lo.into_iter().zip(hi).map(|(a, b)| a && b).collect())
        }
        _ => None,
    }
}

/// `bound op value` for every partition's bound (a column named `col`), by the
/// expression layer; an unknown bound or result keeps the partition.
fn bound_test(bounds: &ArrayRef, col: &str, op: BinaryOp, value: &Expr) -> Option<Vec<bool>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        col,
        bounds.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![bounds.clone()]).ok()?;
    let test = Expr::Binary {
        op,
        left: Box::new(Expr::col(col)),
        right: Box::new(value.clone()),
    };
    let out = test.evaluate(&batch).ok()?;
    let out = out.as_boolean_opt()?;
    Some(
        (0..out.len())
            .map(|i| out.is_null(i) || out.value(i))
            .collect(),
    )
}
