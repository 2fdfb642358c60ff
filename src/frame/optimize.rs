//! Rewrites of a [`LogicalPlan`] before it is lowered.
//!
//! [`prune_columns`] is projection pushdown: every operator passes down the
//! columns its parent uses plus those it reads itself, and a scan read under
//! fewer columns than the file has gets a projection of just those. Lowering
//! turns that projection into the scan's column list, so a window or a sort
//! under a narrow `SELECT` reads (and holds, and shuffles) only what the query
//! uses: db-benchmark's q8 reads two of nine columns.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

use super::expr::Expr;
use super::logical::LogicalPlan;
use crate::error::{Error, Result};
use crate::storage::ordinal::ORDINAL_COLUMN;

/// `plan` with the rows' ordinals (their places in the file, see
/// [`crate::storage::ordinal`]) read for every aggregate that depends on the
/// rows' order (`first`, `last`): its scan adds them, the operators between
/// pass them up, and the aggregate takes them as its last argument.
///
/// # Errors
/// [`Error::NotYet`] when an operator between the scan and the aggregate loses
/// the file's order (a sort, a grouping, a window, `DISTINCT`, `UNION`).
pub fn number_rows(plan: LogicalPlan) -> Result<LogicalPlan> {
    match plan.map_inputs(&mut number_rows)? {
        LogicalPlan::Aggregate {
            input,
            keys,
            mut aggs,
        } if aggs.iter().any(|a| a.func.positional()) => {
            let what = aggs
                .iter()
                .find(|a| a.func.positional())
                .map(|a| a.func.name());
            let input = with_ordinals(*input, what.unwrap_or("first"))?;
            for a in aggs.iter_mut().filter(|a| a.func.positional()) {
                // The first of the distinct values is the first value.
                a.distinct = false;
                a.args.truncate(1);
                a.args.push(Expr::col(ORDINAL_COLUMN));
            }
            Ok(LogicalPlan::Aggregate {
                input: Box::new(input),
                keys,
                aggs,
            })
        }
        other => Ok(other),
    }
}

/// `plan` with the column of its rows' ordinals (named
/// [`ORDINAL_COLUMN`], last) added, for `what`.
///
/// # Errors
/// As [`number_rows`].
pub fn with_ordinals(plan: LogicalPlan, what: &str) -> Result<LogicalPlan> {
    let lost = |after: &str| Error::NotYet {
        what: format!("{what} after {after}"),
        reason: format!(
            "it follows the file's order of the rows, which is lost after {after}; apply it \
             before, or for the first row of each group in another order keep the rows where \
             row_number() OVER (PARTITION BY ... ORDER BY ...) = 1"
        ),
    };
    Ok(match plan {
        LogicalPlan::Scan(mut source) => {
            if source.read.row_ordinal.is_none() {
                if source.schema.index_of(ORDINAL_COLUMN).is_ok() {
                    return Err(Error::InvalidOption {
                        option: "row_ordinal",
                        value: ORDINAL_COLUMN.into(),
                        reason: format!(
                            "{} has a column of this name, which blockwise keeps for the \
                             rows' places in the file",
                            source.path.display()
                        ),
                    });
                }
                source.read.row_ordinal = Some(ORDINAL_COLUMN.into());
                let mut fields: Vec<Arc<Field>> = source.schema.fields().iter().cloned().collect();
                fields.push(Arc::new(Field::new(ORDINAL_COLUMN, DataType::Int64, false)));
                source.schema = Arc::new(Schema::new_with_metadata(
                    fields,
                    source.schema.metadata().clone(),
                ));
            }
            LogicalPlan::Scan(source)
        }
        LogicalPlan::Filter { input, predicate } => LogicalPlan::Filter {
            input: Box::new(with_ordinals(*input, what)?),
            predicate,
        },
        LogicalPlan::Project { input, mut exprs } => {
            if !exprs.iter().any(|(_, n)| n == ORDINAL_COLUMN) {
                exprs.push((Expr::col(ORDINAL_COLUMN), ORDINAL_COLUMN.into()));
            }
            LogicalPlan::Project {
                input: Box::new(with_ordinals(*input, what)?),
                exprs,
            }
        }
        LogicalPlan::Limit {
            input,
            offset,
            fetch,
        } => LogicalPlan::Limit {
            input: Box::new(with_ordinals(*input, what)?),
            offset,
            fetch,
        },
        LogicalPlan::WithSubqueries { input, subqueries } => LogicalPlan::WithSubqueries {
            input: Box::new(with_ordinals(*input, what)?),
            subqueries,
        },
        LogicalPlan::Aggregate { .. } => return Err(lost("a grouping")),
        LogicalPlan::Window { .. } => return Err(lost("a window function")),
        LogicalPlan::Sort { .. } => return Err(lost("a sort")),
        LogicalPlan::Distinct { .. } => return Err(lost("DISTINCT")),
        LogicalPlan::Union { .. } => return Err(lost("UNION")),
    })
}

/// `plan` with every scan narrowed to the columns the operators above it use.
/// The result's rows are the same.
pub fn prune_columns(plan: LogicalPlan) -> LogicalPlan {
    prune(plan, None)
}

/// Columns an operator must yield: `None` for all of them.
type Required = Option<BTreeSet<String>>;

fn with_columns<'e>(required: Required, exprs: impl IntoIterator<Item = &'e Expr>) -> Required {
    let mut required = required?;
    for e in exprs {
        e.columns(&mut required);
    }
    Some(required)
}

fn columns_of<'e>(exprs: impl IntoIterator<Item = &'e Expr>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in exprs {
        e.columns(&mut out);
    }
    out
}

fn prune(plan: LogicalPlan, required: Required) -> LogicalPlan {
    match plan {
        LogicalPlan::Scan(source) => {
            let Some(required) = required else {
                return LogicalPlan::Scan(source);
            };
            let names: Vec<String> = source
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let mut kept: Vec<&String> = names.iter().filter(|n| required.contains(*n)).collect();
            if kept.len() == names.len() {
                return LogicalPlan::Scan(source);
            }
            // Rows with no column lose their count: `count(*)` reads the first.
            if kept.is_empty() {
                kept.extend(names.first());
            }
            let exprs = kept
                .into_iter()
                .map(|n| (Expr::col(n), n.clone()))
                .collect();
            LogicalPlan::Project {
                input: Box::new(LogicalPlan::Scan(source)),
                exprs,
            }
        }
        LogicalPlan::Filter { input, predicate } => {
            let below = with_columns(required, [&predicate]);
            LogicalPlan::Filter {
                input: Box::new(prune(*input, below)),
                predicate,
            }
        }
        LogicalPlan::Project { input, mut exprs } => {
            if let Some(required) = &required {
                let mut kept: Vec<(Expr, String)> = Vec::with_capacity(exprs.len());
                let mut dropped = Vec::new();
                for (e, name) in exprs {
                    if required.contains(&name) {
                        kept.push((e, name));
                    } else {
                        dropped.push((e, name));
                    }
                }
                // At least one column, for the row count.
                if kept.is_empty() {
                    kept.extend(dropped.into_iter().next());
                }
                exprs = kept;
            }
            let below = Some(columns_of(exprs.iter().map(|(e, _)| e)));
            LogicalPlan::Project {
                input: Box::new(prune(*input, below)),
                exprs,
            }
        }
        LogicalPlan::Aggregate { input, keys, aggs } => {
            let below = columns_of(
                keys.iter()
                    .map(|(e, _)| e)
                    .chain(aggs.iter().flat_map(|a| a.args.iter())),
            );
            LogicalPlan::Aggregate {
                input: Box::new(prune(*input, Some(below))),
                keys,
                aggs,
            }
        }
        LogicalPlan::Window { input, windows } => {
            let below = required.map(|mut r| {
                for w in &windows {
                    r.remove(&w.name);
                }
                r
            });
            let below = with_columns(
                below,
                windows.iter().flat_map(|w| {
                    w.partition_by
                        .iter()
                        .chain(w.order_by.iter().map(|s| &s.expr))
                }),
            );
            LogicalPlan::Window {
                input: Box::new(prune(*input, below)),
                windows,
            }
        }
        LogicalPlan::Sort { input, keys } => {
            let below = with_columns(required, keys.iter().map(|k| &k.expr));
            LogicalPlan::Sort {
                input: Box::new(prune(*input, below)),
                keys,
            }
        }
        LogicalPlan::Limit {
            input,
            offset,
            fetch,
        } => LogicalPlan::Limit {
            input: Box::new(prune(*input, required)),
            offset,
            fetch,
        },
        // Every column takes part in what is distinct.
        LogicalPlan::Distinct { input } => LogicalPlan::Distinct {
            input: Box::new(prune(*input, None)),
        },
        // A union's queries keep every column: they line up by position (each
        // is still pruned within).
        LogicalPlan::Union { inputs } => LogicalPlan::Union {
            inputs: inputs.into_iter().map(|i| prune(i, None)).collect(),
        },
        LogicalPlan::WithSubqueries { input, subqueries } => LogicalPlan::WithSubqueries {
            input: Box::new(prune(*input, required)),
            subqueries: subqueries
                .into_iter()
                .map(|mut s| {
                    s.plan = prune(s.plan, None);
                    s
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::logical::{SortExpr, Source, WindowExpr, WindowFunc};
    use crate::storage::frame::FrameReadOptions;

    fn scan(dir: &std::path::Path) -> LogicalPlan {
        let path = dir.join("t.csv");
        std::fs::write(&path, "a,b,c,d\n1,2,3,4\n").unwrap();
        LogicalPlan::Scan(Source::open(path, None, FrameReadOptions::default()).unwrap())
    }

    /// The columns the scan is read with: those of the projection right above it.
    fn scan_columns(plan: &LogicalPlan) -> Option<Vec<String>> {
        match plan {
            LogicalPlan::Project { input, exprs } if matches!(**input, LogicalPlan::Scan(_)) => {
                Some(exprs.iter().map(|(_, n)| n.clone()).collect())
            }
            LogicalPlan::Scan(_) => None,
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::Window { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. }
            | LogicalPlan::Distinct { input }
            | LogicalPlan::WithSubqueries { input, .. } => scan_columns(input),
            LogicalPlan::Union { inputs } => scan_columns(&inputs[0]),
        }
    }

    #[test]
    fn a_window_under_a_narrow_select_reads_its_keys_and_the_selected_columns() {
        let dir = tempfile::tempdir().unwrap();
        let window = LogicalPlan::Window {
            input: Box::new(LogicalPlan::Filter {
                input: Box::new(scan(dir.path())),
                predicate: Expr::col("d").is_not_null(),
            }),
            windows: vec![WindowExpr {
                func: WindowFunc::RowNumber,
                partition_by: vec![Expr::col("a")],
                order_by: vec![SortExpr {
                    expr: Expr::col("c"),
                    descending: true,
                    nulls_first: false,
                }],
                name: "n".into(),
            }],
        };
        let plan = LogicalPlan::Project {
            input: Box::new(window),
            exprs: vec![(Expr::col("a"), "a".into()), (Expr::col("n"), "n".into())],
        };
        let before = plan.schema().unwrap();
        let pruned = prune_columns(plan);
        assert_eq!(pruned.schema().unwrap(), before);
        assert_eq!(
            scan_columns(&pruned).unwrap(),
            ["a", "c", "d"].map(String::from)
        );
    }

    #[test]
    fn unused_projections_are_dropped_but_one_column_stays_for_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let inner = LogicalPlan::Project {
            input: Box::new(scan(dir.path())),
            exprs: vec![(Expr::col("b"), "x".into()), (Expr::col("c"), "y".into())],
        };
        let count = LogicalPlan::Aggregate {
            input: Box::new(inner),
            keys: vec![],
            aggs: vec![],
        };
        let pruned = prune_columns(count);
        let LogicalPlan::Aggregate { input, .. } = &pruned else {
            panic!("{pruned:?}");
        };
        let LogicalPlan::Project { exprs, .. } = input.as_ref() else {
            panic!("{input:?}");
        };
        assert_eq!(exprs.len(), 1);
        assert_eq!(scan_columns(&pruned).unwrap(), ["b"].map(String::from));
    }

    #[test]
    fn distinct_and_select_star_keep_every_column() {
        let dir = tempfile::tempdir().unwrap();
        let distinct = LogicalPlan::Project {
            input: Box::new(LogicalPlan::Distinct {
                input: Box::new(scan(dir.path())),
            }),
            exprs: vec![(Expr::col("a"), "a".into())],
        };
        assert_eq!(scan_columns(&prune_columns(distinct)), None);
        let sorted = LogicalPlan::Sort {
            input: Box::new(scan(dir.path())),
            keys: vec![SortExpr {
                expr: Expr::col("b"),
                descending: false,
                nulls_first: false,
            }],
        };
        assert_eq!(scan_columns(&prune_columns(sorted)), None);
    }
}
