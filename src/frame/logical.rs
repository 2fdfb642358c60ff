//! The logical plan of a frame query: what the SQL front end and the lazy `Frame`
//! API build, and what [`super::physical`] lowers to tasks.
//!
//! A [`LogicalPlan`] is a tree of relational operators over [`Expr`]s. Every node
//! knows its output schema ([`LogicalPlan::schema`]), resolved when the tree is
//! built: a scan carries its file's schema (read once, when the query is planned),
//! so a column that does not exist is refused before anything runs.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::expr::{Expr, Subquery, SubqueryKind};
use super::ops::aggregate::AggFunc;
use crate::error::{Error, Result};
use crate::storage::frame::FrameReadOptions;
use crate::storage::{detect, open_frame, Format};

/// A table file a query reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The file or directory.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// How to read it (delimiter, types forced, ...).
    pub read: FrameReadOptions,
    /// Its columns and their types.
    pub schema: SchemaRef,
}

impl Source {
    /// The table at `path` read with `read`, its format from its contents and
    /// extension unless `format` says it, its schema read now.
    ///
    /// # Errors
    /// What opening it fails with (a missing file, a CSV that does not parse).
    pub fn open(path: PathBuf, format: Option<Format>, read: FrameReadOptions) -> Result<Source> {
        let format = match format {
            Some(f) => f,
            None => detect(&path)?,
        };
        let schema = open_frame(&path, format, &read)?.schema();
        Ok(Source {
            path,
            format,
            read,
            schema,
        })
    }
}

/// An aggregate of a grouping: a function of expressions, and its output name.
#[derive(Debug, Clone, PartialEq)]
pub struct AggExpr {
    /// The function.
    pub func: AggFunc,
    /// Its arguments (none for `count(*)`).
    pub args: Vec<Expr>,
    /// Over distinct values only (`count(DISTINCT x)`).
    pub distinct: bool,
    /// The output column's name.
    pub name: String,
}

/// A sort key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SortExpr {
    /// What is compared.
    pub expr: Expr,
    /// Largest first.
    pub descending: bool,
    /// Nulls before the other values (DuckDB's default is last, ascending or
    /// descending; Postgres puts them first descending).
    pub nulls_first: bool,
}

impl SortExpr {
    /// `expr` smallest first, NULLs last (SQL's `ASC`).
    pub fn asc(expr: Expr) -> SortExpr {
        SortExpr {
            expr,
            descending: false,
            nulls_first: false,
        }
    }

    /// `expr` largest first, NULLs last (DuckDB's `DESC`).
    pub fn desc(expr: Expr) -> SortExpr {
        SortExpr {
            expr,
            descending: true,
            nulls_first: false,
        }
    }

    /// The same key with NULLs first (`NULLS FIRST`) or last.
    pub fn nulls_first(self, first: bool) -> SortExpr {
        SortExpr {
            nulls_first: first,
            ..self
        }
    }
}

/// A window function (`OVER (PARTITION BY ... ORDER BY ...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowFunc {
    /// 1, 2, 3, ... within the partition, in order.
    RowNumber,
    /// Ties share a rank, and leave a gap after them.
    Rank,
    /// Ties share a rank, without gaps.
    DenseRank,
}

/// A window column.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowExpr {
    /// The function.
    pub func: WindowFunc,
    /// The partitions it restarts in.
    pub partition_by: Vec<Expr>,
    /// The order within a partition.
    pub order_by: Vec<SortExpr>,
    /// The output column's name.
    pub name: String,
}

/// How many rows a sample keeps ([`LogicalPlan::sample`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleSize {
    /// This many (all when there are fewer).
    Rows(u64),
    /// Each row with this probability, from 0 to 1.
    Fraction(f64),
}

/// An uncorrelated subquery that expressions of a query read: its plan (one
/// column), and how they use its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryPlan {
    /// What it computes.
    pub plan: LogicalPlan,
    /// One value, or the set of `IN`.
    pub kind: SubqueryKind,
}

/// A relational operator tree.
#[derive(Debug, Clone, PartialEq)]
pub enum LogicalPlan {
    /// Every row of a table file.
    Scan(Source),
    /// The rows where `predicate` is true (not false, not NULL).
    Filter {
        /// The rows filtered.
        input: Box<LogicalPlan>,
        /// A boolean expression over the input's columns.
        predicate: Expr,
    },
    /// New columns computed from each row, in order, with their names.
    Project {
        /// The rows.
        input: Box<LogicalPlan>,
        /// Each output column and its name.
        exprs: Vec<(Expr, String)>,
    },
    /// A row a distinct value of the keys (one row for no keys), with the keys,
    /// then each aggregate.
    Aggregate {
        /// The rows grouped.
        input: Box<LogicalPlan>,
        /// The key expressions and their names.
        keys: Vec<(Expr, String)>,
        /// The aggregates.
        aggs: Vec<AggExpr>,
    },
    /// The input's columns and one column a window function.
    Window {
        /// The rows.
        input: Box<LogicalPlan>,
        /// The window columns, appended in order.
        windows: Vec<WindowExpr>,
    },
    /// The rows in order.
    Sort {
        /// The rows.
        input: Box<LogicalPlan>,
        /// The keys, most significant first.
        keys: Vec<SortExpr>,
    },
    /// `fetch` rows (all when `None`) after skipping `offset`.
    Limit {
        /// The rows.
        input: Box<LogicalPlan>,
        /// Rows skipped.
        offset: u64,
        /// Rows kept.
        fetch: Option<u64>,
    },
    /// Each distinct row once.
    Distinct {
        /// The rows.
        input: Box<LogicalPlan>,
    },
    /// The rows of every input, one after the other (`UNION ALL`): the inputs'
    /// columns agree in number, names and types ([`LogicalPlan::union`] makes
    /// them so).
    Union {
        /// The queries, in order.
        inputs: Vec<LogicalPlan>,
    },
    /// The rows of `input`, whose expressions read the subqueries' values
    /// ([`Expr::ScalarSubquery`], [`Expr::InSubquery`], by their number: the
    /// index here). A subquery may read those before it, never those after.
    WithSubqueries {
        /// The rows.
        input: Box<LogicalPlan>,
        /// The subqueries, each computed before what reads it.
        subqueries: Vec<SubqueryPlan>,
    },
}

impl LogicalPlan {
    /// The files the plan reads, in the order it names them.
    pub fn inputs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        self.collect_inputs(&mut out);
        out
    }

    fn collect_inputs(&self, out: &mut Vec<PathBuf>) {
        match self {
            LogicalPlan::Scan(s) => out.push(s.path.clone()),
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::Window { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. }
            | LogicalPlan::Distinct { input } => input.collect_inputs(out),
            LogicalPlan::WithSubqueries { input, subqueries } => {
                for s in subqueries {
                    s.plan.collect_inputs(out);
                }
                input.collect_inputs(out);
            }
            LogicalPlan::Union { inputs } => inputs.iter().for_each(|i| i.collect_inputs(out)),
        }
    }

    /// A random sample of `plan`'s rows, the same for the same `seed` and input
    /// whatever runs it (threads, memory, the order of tasks): `n` rows (all of
    /// them when there are fewer), in random order, a top k that never sorts
    /// everything; or each row kept with probability `frac`, in the input's
    /// order (a Bernoulli sample, as Dask's and DuckDB's: about `frac` of the
    /// rows, not exactly).
    ///
    /// A row's chance comes from the seed and its place in the file (see
    /// [`crate::storage::ordinal`]): a CSV file cut with another `blocksize`
    /// gives another sample.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a fraction outside [0, 1]; [`Error::NotYet`] after
    /// an operator that loses the file's order (a sort, a grouping).
    pub fn sample(plan: LogicalPlan, size: SampleSize, seed: u64) -> Result<LogicalPlan> {
        use crate::storage::ordinal::ORDINAL_COLUMN;
        let columns: Vec<(Expr, String)> = plan
            .schema()?
            .fields()
            .iter()
            .map(|f| (Expr::col(f.name()), f.name().clone()))
            .collect();
        let numbered = Box::new(super::optimize::with_ordinals(plan, "a sample")?);
        // Seeds are 64 bits, as numpy's; the expression takes them as i64.
        let key = Expr::call(
            super::expr::ROW_RANDOM,
            vec![Expr::lit(seed as i64), Expr::col(ORDINAL_COLUMN)],
        );
        let picked = match size {
            SampleSize::Fraction(f) if (0.0..=1.0).contains(&f) => LogicalPlan::Filter {
                input: numbered,
                predicate: key.lt(Expr::lit(f)),
            },
            SampleSize::Fraction(f) => {
                return Err(Error::InvalidOption {
                    option: "frac",
                    value: f.to_string(),
                    reason: "a sample's fraction is from 0 to 1".into(),
                })
            }
            SampleSize::Rows(n) => LogicalPlan::Limit {
                input: Box::new(LogicalPlan::Sort {
                    input: numbered,
                    keys: vec![SortExpr::asc(key)],
                }),
                offset: 0,
                fetch: Some(n),
            },
        };
        Ok(LogicalPlan::Project {
            input: Box::new(picked),
            exprs: columns,
        })
    }

    /// The plan with each input (and each subquery's plan) replaced by what `f`
    /// makes of it.
    ///
    /// # Errors
    /// `f`'s.
    pub fn map_inputs(
        self,
        f: &mut dyn FnMut(LogicalPlan) -> Result<LogicalPlan>,
    ) -> Result<LogicalPlan> {
        let mut one = |input: Box<LogicalPlan>| f(*input).map(Box::new);
        Ok(match self {
            LogicalPlan::Scan(_) => self,
            LogicalPlan::Filter { input, predicate } => LogicalPlan::Filter {
                input: one(input)?,
                predicate,
            },
            LogicalPlan::Project { input, exprs } => LogicalPlan::Project {
                input: one(input)?,
                exprs,
            },
            LogicalPlan::Aggregate { input, keys, aggs } => LogicalPlan::Aggregate {
                input: one(input)?,
                keys,
                aggs,
            },
            LogicalPlan::Window { input, windows } => LogicalPlan::Window {
                input: one(input)?,
                windows,
            },
            LogicalPlan::Sort { input, keys } => LogicalPlan::Sort {
                input: one(input)?,
                keys,
            },
            LogicalPlan::Limit {
                input,
                offset,
                fetch,
            } => LogicalPlan::Limit {
                input: one(input)?,
                offset,
                fetch,
            },
            LogicalPlan::Distinct { input } => LogicalPlan::Distinct { input: one(input)? },
            LogicalPlan::WithSubqueries { input, subqueries } => {
                let input = one(input)?;
                let subqueries = subqueries
                    .into_iter()
                    .map(|s| {
                        Ok(SubqueryPlan {
                            plan: f(s.plan)?,
                            kind: s.kind,
                        })
                    })
                    .collect::<Result<_>>()?;
                LogicalPlan::WithSubqueries { input, subqueries }
            }
            LogicalPlan::Union { inputs } => LogicalPlan::Union {
                inputs: inputs.into_iter().map(f).collect::<Result<_>>()?,
            },
        })
    }

    /// `UNION ALL` of `inputs` (at least one): each column takes the type its
    /// queries' types unify to ([`Expr::union_type`]) and the first query's name;
    /// a query whose columns differ in name or type is projected to them.
    ///
    /// # Errors
    /// [`Error::FrameType`] for queries of different numbers of columns, or a
    /// column whose types do not mix (naming its position and both types); the
    /// inputs' schema errors.
    pub fn union(inputs: Vec<LogicalPlan>) -> Result<LogicalPlan> {
        let schemas = inputs
            .iter()
            .map(LogicalPlan::schema)
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = schemas.first() else {
            return Err(Error::bug("a UNION of no query", ""));
        };
        let mut types: Vec<DataType> = first
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        for s in &schemas[1..] {
            if s.fields().len() != types.len() {
                return Err(Error::FrameType {
                    op: "UNION".into(),
                    reason: format!(
                        "set operations can only apply to expressions with the same number \
                         of result columns ({} and {})",
                        types.len(),
                        s.fields().len()
                    ),
                });
            }
            for (i, (t, f)) in types.iter_mut().zip(s.fields()).enumerate() {
                *t = Expr::union_type(t, f.data_type()).ok_or_else(|| Error::FrameType {
                    op: "UNION".into(),
                    reason: format!(
                        "column {} is {} in one query and {} in another, which have no \
                         common type",
                        i + 1,
                        crate::storage::type_name(t),
                        crate::storage::type_name(f.data_type())
                    ),
                })?;
            }
        }
        let names: Vec<String> = first.fields().iter().map(|f| f.name().clone()).collect();
        let inputs = inputs
            .into_iter()
            .zip(&schemas)
            .map(|(input, schema)| {
                let agrees = schema
                    .fields()
                    .iter()
                    .zip(names.iter().zip(&types))
                    .all(|(f, (n, t))| f.name() == n && f.data_type() == t);
                if agrees {
                    return input;
                }
                let exprs = schema
                    .fields()
                    .iter()
                    .zip(names.iter().zip(&types))
                    .map(|(f, (n, t))| {
                        let column = Expr::col(f.name());
                        let e = if f.data_type() == t {
                            column
                        } else {
                            column.cast(t.clone())
                        };
                        (e, n.clone())
                    })
                    .collect();
                LogicalPlan::Project {
                    input: Box::new(input),
                    exprs,
                }
            })
            .collect();
        Ok(LogicalPlan::Union { inputs })
    }

    /// The plan with every subquery of its expressions replaced by what `f` makes
    /// of it (the subqueries' own plans are left as they are).
    ///
    /// # Errors
    /// `f`'s.
    pub fn map_subqueries(
        &self,
        f: &mut dyn FnMut(&Subquery) -> Result<Subquery>,
    ) -> Result<LogicalPlan> {
        let named = |exprs: &[(Expr, String)], f: &mut dyn FnMut(&Subquery) -> Result<Subquery>| {
            exprs
                .iter()
                .map(|(e, n)| Ok((e.map_subqueries(f)?, n.clone())))
                .collect::<Result<Vec<_>>>()
        };
        let sorts = |keys: &[SortExpr], f: &mut dyn FnMut(&Subquery) -> Result<Subquery>| {
            keys.iter()
                .map(|k| {
                    Ok(SortExpr {
                        expr: k.expr.map_subqueries(f)?,
                        ..k.clone()
                    })
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(match self {
            LogicalPlan::Scan(_) => self.clone(),
            LogicalPlan::Filter { input, predicate } => LogicalPlan::Filter {
                input: Box::new(input.map_subqueries(f)?),
                predicate: predicate.map_subqueries(f)?,
            },
            LogicalPlan::Project { input, exprs } => LogicalPlan::Project {
                input: Box::new(input.map_subqueries(f)?),
                exprs: named(exprs, f)?,
            },
            LogicalPlan::Aggregate { input, keys, aggs } => LogicalPlan::Aggregate {
                input: Box::new(input.map_subqueries(f)?),
                keys: named(keys, f)?,
                aggs: aggs
                    .iter()
                    .map(|a| {
                        Ok(AggExpr {
                            args: a
                                .args
                                .iter()
                                .map(|e| e.map_subqueries(f))
                                .collect::<Result<_>>()?,
                            ..a.clone()
                        })
                    })
                    .collect::<Result<_>>()?,
            },
            LogicalPlan::Window { input, windows } => LogicalPlan::Window {
                input: Box::new(input.map_subqueries(f)?),
                windows: windows
                    .iter()
                    .map(|w| {
                        Ok(WindowExpr {
                            partition_by: w
                                .partition_by
                                .iter()
                                .map(|e| e.map_subqueries(f))
                                .collect::<Result<_>>()?,
                            order_by: sorts(&w.order_by, f)?,
                            ..w.clone()
                        })
                    })
                    .collect::<Result<_>>()?,
            },
            LogicalPlan::Sort { input, keys } => LogicalPlan::Sort {
                input: Box::new(input.map_subqueries(f)?),
                keys: sorts(keys, f)?,
            },
            LogicalPlan::Limit {
                input,
                offset,
                fetch,
            } => LogicalPlan::Limit {
                input: Box::new(input.map_subqueries(f)?),
                offset: *offset,
                fetch: *fetch,
            },
            LogicalPlan::Distinct { input } => LogicalPlan::Distinct {
                input: Box::new(input.map_subqueries(f)?),
            },
            LogicalPlan::WithSubqueries { input, subqueries } => LogicalPlan::WithSubqueries {
                input: Box::new(input.map_subqueries(f)?),
                subqueries: subqueries.clone(),
            },
            LogicalPlan::Union { inputs } => LogicalPlan::Union {
                inputs: inputs
                    .iter()
                    .map(|i| i.map_subqueries(f))
                    .collect::<Result<_>>()?,
            },
        })
    }

    /// The columns and types of the rows this operator yields.
    ///
    /// # Errors
    /// An expression that does not type against its input (an unknown column, a
    /// type mismatch); a boolean filter that is not boolean.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(match self {
            LogicalPlan::Scan(source) => source.schema.clone(),
            LogicalPlan::Filter { input, predicate } => {
                let schema = input.schema()?;
                let t = predicate.data_type(&schema)?;
                if !matches!(t, DataType::Boolean | DataType::Null) {
                    return Err(Error::FrameType {
                        op: "WHERE".into(),
                        reason: format!(
                            "the condition {predicate} is {}, not boolean",
                            crate::storage::type_name(&t)
                        ),
                    });
                }
                schema
            }
            LogicalPlan::Project { input, exprs } => {
                let schema = input.schema()?;
                let fields = exprs
                    .iter()
                    .map(|(e, name)| Ok(Field::new(name, e.data_type(&schema)?, true)))
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(Schema::new(fields))
            }
            LogicalPlan::Aggregate { input, keys, aggs } => {
                let schema = input.schema()?;
                let mut fields = keys
                    .iter()
                    .map(|(e, name)| Ok(Field::new(name, e.data_type(&schema)?, true)))
                    .collect::<Result<Vec<_>>>()?;
                for a in aggs {
                    let types = a
                        .args
                        .iter()
                        .map(|e| e.data_type(&schema))
                        .collect::<Result<Vec<_>>>()?;
                    a.func.check(&types)?;
                    let t = if a.distinct {
                        DataType::Int64
                    } else {
                        a.func.output_type(&types)
                    };
                    fields.push(Field::new(&a.name, t, true));
                }
                Arc::new(Schema::new(fields))
            }
            LogicalPlan::Window { input, windows } => {
                let schema = input.schema()?;
                let mut fields: Vec<Field> =
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                for w in windows {
                    for e in w
                        .partition_by
                        .iter()
                        .chain(w.order_by.iter().map(|s| &s.expr))
                    {
                        e.data_type(&schema)?;
                    }
                    fields.push(Field::new(&w.name, DataType::Int64, false));
                }
                Arc::new(Schema::new(fields))
            }
            LogicalPlan::Sort { input, keys } => {
                let schema = input.schema()?;
                for k in keys {
                    k.expr.data_type(&schema)?;
                }
                schema
            }
            LogicalPlan::Limit { input, .. } | LogicalPlan::Distinct { input } => input.schema()?,
            LogicalPlan::WithSubqueries { input, subqueries } => {
                for s in subqueries {
                    s.plan.schema()?;
                }
                input.schema()?
            }
            LogicalPlan::Union { inputs } => {
                let mut schemas = inputs.iter().map(LogicalPlan::schema);
                let first = schemas
                    .next()
                    .ok_or_else(|| Error::bug("a UNION of no query", ""))??;
                for s in schemas {
                    let s = s?;
                    let agrees = s.fields().len() == first.fields().len()
                        && s.fields()
                            .iter()
                            .zip(first.fields())
                            .all(|(a, b)| a.data_type() == b.data_type());
                    if !agrees {
                        return Err(Error::FrameType {
                            op: "UNION".into(),
                            reason: "the queries' columns differ (build it with \
                                     LogicalPlan::union)"
                                .into(),
                        });
                    }
                }
                // Any query may hold the NULLs of a column.
                let fields: Vec<Field> = first
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect();
                Arc::new(Schema::new(fields))
            }
        })
    }
}
