//! Partitions a filter cannot match, found from the file's statistics before
//! anything is read: Parquet row groups whose bounds exclude `v3 > 90`,
//! `id4 = 7` or `x BETWEEN 1 AND 2` are left out of the plan, and of the row
//! groups read, the row ranges of pages whose page-index bounds exclude it
//! (files written with a page index: arrow-rs, Spark, pyarrow's
//! `write_page_index=True`).
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
use crate::storage::frame::{ColumnStats, FrameSource};

/// Statistics of a column by name, an entry a partition or a page.
type Lookup<'a> = dyn Fn(&str) -> Option<ColumnStats> + 'a;

/// The conjuncts of the filters at the head of `pre` that statistics may rule
/// on: those before its first projection that is more than a column list.
fn conjuncts(pre: &Pipeline) -> Vec<&Expr> {
    let mut out = Vec::new();
    for step in &pre.steps {
        match step {
            Step::Filter(predicate) => split_and(predicate, &mut out),
            // A projection that only selects columns under their names (the
            // scan's column list) leaves the filters after it on the file's.
            Step::Project(exprs)
                if exprs
                    .iter()
                    .all(|(e, name)| matches!(e, Expr::Column(c) if c == name)) => {}
            Step::Project(_) => break,
        }
    }
    out
}

/// Whether `pre` has filters that statistics may rule on.
pub fn has_filters(pre: &Pipeline) -> bool {
    !conjuncts(pre).is_empty()
}

/// The partitions of `source` that the filters of `pre` may match, in order;
/// `None` when nothing can be ruled out.
pub fn partitions_to_read(source: &dyn FrameSource, pre: &Pipeline) -> Option<Vec<usize>> {
    let n = source.num_partitions();
    let mut keep = vec![true; n];
    let mut pruned = false;
    for c in conjuncts(pre) {
        if let Some(mask) = may_match(&|col| source.column_stats(col), c) {
            if mask.len() == n {
                for (k, m) in keep.iter_mut().zip(mask) {
                    pruned |= *k && !m;
                    *k &= m;
                }
            }
        }
    }
    pruned.then(|| (0..n).filter(|&i| keep[i]).collect())
}

/// Of each partition of `source`, the row ranges whose pages the filters of
/// `pre` may match (Parquet's page index; the source opened with it loaded);
/// `None` when no page can be ruled out.
///
/// Each conjunct is tested on its column's pages; pages of different columns
/// start at different rows, so the rows kept are the intersection of each
/// conjunct's ranges.
pub fn pages_to_read(source: &dyn FrameSource, pre: &Pipeline) -> Option<Vec<Vec<(u64, u64)>>> {
    let conjuncts = conjuncts(pre);
    let mut pruned = false;
    let mut all = Vec::with_capacity(source.num_partitions());
    for p in 0..source.num_partitions() {
        let mut kept: Option<Vec<(u64, u64)>> = None;
        for &c in &conjuncts {
            let mut columns = std::collections::BTreeSet::new();
            c.columns(&mut columns);
            let (Some(column), 1) = (columns.first(), columns.len()) else {
                continue;
            };
            let Some(pages) = source.page_stats(column, p) else {
                continue;
            };
            let Some(mask) = may_match(&|_| Some(pages.stats.clone()), c) else {
                continue;
            };
            let total: u64 = pages.stats.rows.iter().sum();
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for ((&first, &rows), keep) in pages.first_rows.iter().zip(&pages.stats.rows).zip(mask)
            {
                if !keep || rows == 0 {
                    continue;
                }
                match ranges.last_mut() {
                    Some(last) if last.1 == first => last.1 = first + rows,
                    _ => ranges.push((first, first + rows)),
                }
            }
            kept = Some(match kept {
                None => ranges,
                Some(before) => intersect(&before, &ranges),
            });
            pruned |= kept.as_ref().is_some_and(|k| k.as_slice() != [(0, total)]);
        }
        all.push(kept);
    }
    if !pruned {
        return None;
    }
    // A partition no conjunct could test is read whole.
    let whole = |p: usize| {
        source
            .column_stats(source.schema().fields().first()?.name())
            .map(|s| s.rows[p])
    };
    all.into_iter()
        .enumerate()
        .map(|(p, kept)| match kept {
            Some(k) => Some(k),
            None => whole(p).map(|rows| vec![(0, rows)]),
        })
        .collect()
}

/// The rows in both lists of sorted, disjoint ranges.
fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let start = a[i].0.max(b[j].0);
        let end = a[i].1.min(b[j].1);
        if start < end {
            out.push((start, end));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
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
fn may_match(stats: &Lookup<'_>, c: &Expr) -> Option<Vec<bool>> {
    match c {
        Expr::Binary { op, left, right } => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(col), Expr::Literal(_)) => compare(stats, col, *op, right),
            (Expr::Literal(_), Expr::Column(col)) => compare(stats, col, flipped(*op)?, left),
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
            let lo = compare(stats, col, BinaryOp::GtEq, low)?;
            let hi = compare(stats, col, BinaryOp::LtEq, high)?;
            Some(lo.into_iter().zip(hi).map(|(a, b)| a && b).collect())
        }
        Expr::IsNotNull(e) => {
            let Expr::Column(col) = e.as_ref() else {
                return None;
            };
            let stats = stats(col)?;
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
            let stats = stats(col)?;
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
fn compare(stats: &Lookup<'_>, col: &str, op: BinaryOp, value: &Expr) -> Option<Vec<bool>> {
    let stats = stats(col)?;
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
