//! SQL expressions as [`Expr`]s: names resolved against the FROM clause's columns
//! (a qualified `t.col` checked against the table's name), literals typed, DuckDB's
//! operators and type names mapped, and each aggregate or window function call
//! collected into [`Calls`] and replaced by a reference to its output column, for
//! the query planner to compute below the expression.
//!
//! It does not decide where an expression is evaluated (that is `query`'s
//! business), nor check types (the planner asks [`Expr::data_type`] once the
//! expression's input is known).

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, Date32Type, IntervalMonthDayNanoType, SchemaRef, TimeUnit};
use sqlparser::ast::{
    self, BinaryOperator as B, CastKind, DuplicateTreatment, Expr as Ast, FunctionArg,
    FunctionArgExpr, FunctionArgumentClause, FunctionArguments, NullTreatment, OrderBySort,
    Spanned, UnaryOperator, Value, WindowType,
};
use sqlparser::tokenizer::Span as SqlSpan;

use super::error::{at, SqlProblem};
use super::name::render;
use super::query::{NamedPlan, QueryPlanner};
use crate::error::{close_names, Error, Result};
use crate::frame::expr::{
    function_names, BinaryOp, DataTypeName, Expr, Literal, Subquery, SubqueryKind,
};
use crate::frame::logical::{AggExpr, SortExpr, SubqueryPlan, WindowExpr, WindowFunc};
use crate::frame::ops::aggregate::AggFunc;

/// The columns an expression may name: one relation of the FROM clause.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// The names `t.col` may qualify a column with (the alias, else the CTE's or
    /// table function's name, or the file's stem), compared ignoring case.
    pub names: Vec<String>,
    /// The relation's columns.
    pub schema: SchemaRef,
}

/// A select-list alias an expression may use where no column has its name
/// (DuckDB's lateral aliases: in WHERE, GROUP BY, HAVING, later select items).
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    /// The alias.
    pub name: String,
    /// The item's expression (aggregates and windows already replaced).
    pub expr: Expr,
    /// Whether it holds an aggregate or a window function.
    pub computed: bool,
}

/// The aggregate and window function calls of a SELECT, each once.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    /// The aggregates, named by their SQL text.
    pub aggs: Vec<AggExpr>,
    /// Where each aggregate was first written, for its type errors.
    pub agg_spans: Vec<SqlSpan>,
    /// The window functions, named by their SQL text.
    pub windows: Vec<WindowExpr>,
    /// Where each window function was first written.
    pub window_spans: Vec<SqlSpan>,
}

/// The aggregate functions, by SQL name, and what they compute (`None` for a
/// quantile, whose fraction is an argument: see [`quantile`]).
const AGGREGATES: &[(&str, Option<AggFunc>)] = &[
    ("count", Some(AggFunc::Count)),
    ("count_star", Some(AggFunc::Size)),
    ("sum", Some(AggFunc::Sum)),
    ("avg", Some(AggFunc::Mean)),
    ("mean", Some(AggFunc::Mean)),
    ("min", Some(AggFunc::Min)),
    ("max", Some(AggFunc::Max)),
    ("median", Some(AggFunc::Median)),
    ("quantile_cont", None),
    ("quantile_disc", None),
    ("quantile", None),
    ("stddev", Some(AggFunc::Std { ddof: 1 })),
    ("stddev_samp", Some(AggFunc::Std { ddof: 1 })),
    ("stddev_pop", Some(AggFunc::Std { ddof: 0 })),
    ("variance", Some(AggFunc::Var { ddof: 1 })),
    ("var_samp", Some(AggFunc::Var { ddof: 1 })),
    ("var_pop", Some(AggFunc::Var { ddof: 0 })),
    ("corr", Some(AggFunc::Corr)),
    ("covar_samp", Some(AggFunc::Cov { ddof: 1 })),
    ("covar_pop", Some(AggFunc::Cov { ddof: 0 })),
    ("bool_or", Some(AggFunc::Any)),
    ("any", Some(AggFunc::Any)),
    ("bool_and", Some(AggFunc::All)),
    ("every", Some(AggFunc::All)),
    // In the file's order, where DuckDB's is any order of its threads.
    ("first", Some(AggFunc::First { skip_nulls: false })),
    ("arbitrary", Some(AggFunc::First { skip_nulls: false })),
    ("last", Some(AggFunc::Last { skip_nulls: false })),
    ("any_value", Some(AggFunc::First { skip_nulls: true })),
];

/// DuckDB aggregates that are not planned, and why.
const OTHER_AGGREGATES: &[(&str, &str)] = &[
    ("mode", ""),
    ("string_agg", ""),
    ("list", ""),
    ("array_agg", ""),
    ("approx_count_distinct", ""),
    ("product", ""),
    ("arg_min", ""),
    ("arg_max", ""),
    ("kurtosis", ""),
    ("skewness", ""),
    ("entropy", ""),
    ("mad", ""),
    ("histogram", ""),
];

/// The quantile aggregate `name` computes at fraction `q`: DuckDB's `quantile` is
/// `quantile_disc`, an input value; `quantile_cont` interpolates.
fn quantile(name: &str, q: f64) -> AggFunc {
    match name {
        "quantile_cont" => AggFunc::Quantile { q },
        _ => AggFunc::QuantileDisc { q },
    }
}

const WINDOWS: &[(&str, WindowFunc)] = &[
    ("row_number", WindowFunc::RowNumber),
    ("rank", WindowFunc::Rank),
    ("dense_rank", WindowFunc::DenseRank),
];

/// The deepest expression the planner follows (sqlparser stops nested brackets
/// earlier; a long chain of operators is as deep as it is long).
pub(crate) const MAX_EXPR_DEPTH: usize = 500;

/// Turns SQL expressions of one clause into [`Expr`]s.
pub(crate) struct ExprPlanner<'a> {
    /// The query's text, for error places and names.
    pub sql: &'a str,
    /// The columns.
    pub scope: &'a Scope,
    /// Aliases usable where no column matches.
    pub aliases: &'a [Alias],
    /// Where aggregates and windows go, when the clause may hold them.
    pub calls: &'a mut Calls,
    /// Whether aggregates may appear.
    pub allow_aggs: bool,
    /// Whether window functions may appear.
    pub allow_windows: bool,
    /// The clause, for "not allowed in" messages.
    pub place: &'static str,
    /// Input columns named outside any aggregate, with where (for GROUP BY checks).
    pub seen: Vec<(String, SqlSpan)>,
    /// Whether an aggregate or window call was planned.
    pub used_calls: bool,
    /// How subqueries are planned, when the clause may hold them.
    pub queries: Option<Queries<'a>>,
    in_aggregate: bool,
    depth: usize,
}

/// What planning a subquery inside an expression needs: the query planner (which
/// collects the subqueries) and the CTEs the subquery may name.
#[derive(Clone, Copy)]
pub(crate) struct Queries<'a> {
    /// The planner.
    pub planner: QueryPlanner<'a>,
    /// The CTEs in scope.
    pub ctes: &'a [NamedPlan],
}

impl<'a> ExprPlanner<'a> {
    /// A planner for the expressions of clause `place`, with nothing allowed
    /// beyond plain expressions until the caller says so.
    pub fn new(
        sql: &'a str,
        scope: &'a Scope,
        aliases: &'a [Alias],
        calls: &'a mut Calls,
        place: &'static str,
    ) -> Self {
        ExprPlanner {
            sql,
            scope,
            aliases,
            calls,
            allow_aggs: false,
            allow_windows: false,
            place,
            seen: Vec::new(),
            used_calls: false,
            queries: None,
            in_aggregate: false,
            depth: 0,
        }
    }

    /// Lets uncorrelated subqueries appear, planned by `queries`.
    pub fn with_subqueries(mut self, queries: Queries<'a>) -> Self {
        self.queries = Some(queries);
        self
    }

    /// `e`, a subquery's error, said as what it is when the subquery names a
    /// table or column that only the query around it has: a correlated subquery.
    fn correlated(&self, e: Error) -> Error {
        let Error::InExpression {
            error,
            line,
            column,
            caret,
        } = e
        else {
            return e;
        };
        let outer = match error.as_ref() {
            Error::Sql(SqlProblem::UnknownTable { name, .. })
                if self
                    .scope
                    .names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name)) =>
            {
                Some(format!("table \"{name}\""))
            }
            Error::UnknownColumn { column, .. }
                if matches!(resolve(&self.scope.schema, column), Ok(Some(_))) =>
            {
                Some(format!("column \"{column}\""))
            }
            _ => None,
        };
        let error = match outer {
            Some(what) => Box::new(Error::Sql(SqlProblem::Unsupported {
                construct: format!(
                    "a correlated subquery (one naming the {what} of the query around it)"
                ),
                hint: "; compute what it reads in the subquery, or join (not supported yet)".into(),
            })),
            None => error,
        };
        Error::InExpression {
            error,
            line,
            column,
            caret,
        }
    }

    /// Plans the subquery `q` (written at `span`) used as `kind`: its plan goes
    /// to the query's list, the expression gets its number, text and type.
    fn subquery(&mut self, q: &ast::Query, kind: SubqueryKind, span: SqlSpan) -> Result<Subquery> {
        let Some(queries) = self.queries else {
            return Err(self.unsupported(span, format!("a subquery in {}", self.place), ""));
        };
        let mut planner = queries.planner;
        let plan = planner
            .query(q, queries.ctes)
            .map_err(|e| self.correlated(e))?;
        let schema = plan.schema().map_err(|e| self.err(span, e))?;
        let [field] = schema.fields().as_ref() else {
            return Err(self.err(
                span,
                SqlProblem::SubqueryColumns {
                    count: schema.fields().len(),
                },
            ));
        };
        let data_type = field.data_type().clone();
        let id = planner.add_subquery(SubqueryPlan { plan, kind });
        Ok(Subquery {
            id,
            text: q.to_string(),
            data_type: DataTypeName(data_type),
            entry: None,
            value: None,
        })
    }

    /// Lets aggregates and window functions appear.
    pub fn with_calls(mut self, aggs: bool, windows: bool) -> Self {
        self.allow_aggs = aggs;
        self.allow_windows = windows;
        self
    }

    /// `e` as an [`Expr`].
    ///
    /// # Errors
    /// An unknown column, table or function (with close names), an unsupported
    /// construct, an aggregate or window where none may be: each placed at its
    /// line and column.
    pub fn plan(&mut self, e: &Ast) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err(self.err(
                e.span(),
                SqlProblem::TooDeep {
                    limit: MAX_EXPR_DEPTH,
                },
            ));
        }
        let out = self.plan_inner(e);
        self.depth -= 1;
        out
    }

    fn err(&self, span: SqlSpan, e: impl Into<Error>) -> Error {
        at(self.sql, span, e)
    }

    fn unsupported(&self, span: SqlSpan, construct: impl Into<String>, hint: &str) -> Error {
        self.err(
            span,
            SqlProblem::Unsupported {
                construct: construct.into(),
                hint: hint.into(),
            },
        )
    }

    fn plan_inner(&mut self, e: &Ast) -> Result<Expr> {
        let span = e.span();
        Ok(match e {
            Ast::Identifier(id) => self.column(None, &id.value, span)?,
            Ast::CompoundIdentifier(ids) => match ids.as_slice() {
                [t, c] => self.column(Some(&t.value), &c.value, span)?,
                _ => {
                    return Err(self.unsupported(
                        span,
                        format!("the name {e} (more than table.column)"),
                        "",
                    ))
                }
            },
            Ast::Value(v) => literal(&v.value).map_err(|p| self.err(span, p))?,
            Ast::TypedString(t) => {
                let text = match &t.value.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                typed_literal(&t.data_type, &text).map_err(|err| self.err(span, err))?
            }
            Ast::Interval(i) => self.interval(i, span)?,
            Ast::Nested(inner) => self.plan(inner)?,
            Ast::UnaryOp { op, expr } => match (op, &**expr) {
                (UnaryOperator::Minus, Ast::Value(v)) if matches!(v.value, Value::Number(..)) => {
                    negative_number(&v.value).map_err(|p| self.err(span, p))?
                }
                (UnaryOperator::Minus, inner) => self.plan(inner)?.neg(),
                (UnaryOperator::Plus, inner) => self.plan(inner)?,
                (UnaryOperator::Not, inner) => self.plan(inner)?.not(),
                (op, _) => return Err(self.unsupported(span, format!("operator {op}"), "")),
            },
            Ast::BinaryOp { left, op, right } => {
                let op = binary_op(op)
                    .ok_or_else(|| self.unsupported(span, format!("operator {op}"), ""))?;
                let l = self.plan(left)?;
                let r = self.plan(right)?;
                l.binary(op, r)
            }
            Ast::IsNull(x) => self.plan(x)?.is_null(),
            Ast::IsNotNull(x) => self.plan(x)?.is_not_null(),
            Ast::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } => Expr::InList {
                expr: Box::new(self.plan(expr)?),
                list: list.iter().map(|x| self.plan(x)).collect::<Result<_>>()?,
                negated: *negated,
            },
            Ast::Between {
                expr,
                negated,
                low,
                high,
            } => Expr::Between {
                expr: Box::new(self.plan(expr)?),
                low: Box::new(self.plan(low)?),
                high: Box::new(self.plan(high)?),
                negated: *negated,
            },
            Ast::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | Ast::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(self.unsupported(span, "LIKE ANY", ""));
                }
                if escape_char.is_some() {
                    return Err(self.unsupported(
                        span,
                        "LIKE ... ESCAPE",
                        "; the escape character is always '\\'",
                    ));
                }
                Expr::Like {
                    expr: Box::new(self.plan(expr)?),
                    pattern: Box::new(self.plan(pattern)?),
                    case_insensitive: matches!(e, Ast::ILike { .. }),
                    negated: *negated,
                }
            }
            Ast::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return Err(self.unsupported(span, "CAST ... FORMAT", ""));
                }
                let (to, _) = sql_type(data_type).map_err(|p| self.err(span, p))?;
                Expr::Cast {
                    expr: Box::new(self.plan(expr)?),
                    to: DataTypeName(to),
                    try_cast: matches!(kind, CastKind::TryCast | CastKind::SafeCast),
                }
            }
            Ast::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Expr::Case {
                operand: match operand {
                    Some(o) => Some(Box::new(self.plan(o)?)),
                    None => None,
                },
                when_then: conditions
                    .iter()
                    .map(|c| Ok((self.plan(&c.condition)?, self.plan(&c.result)?)))
                    .collect::<Result<_>>()?,
                otherwise: match else_result {
                    Some(o) => Some(Box::new(self.plan(o)?)),
                    None => None,
                },
            },
            Ast::Function(f) => self.function(f, e)?,
            Ast::Ceil { expr, .. } | Ast::Floor { expr, .. } => {
                let name = if matches!(e, Ast::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                match e {
                    Ast::Ceil {
                        field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
                        ..
                    }
                    | Ast::Floor {
                        field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
                        ..
                    } => Expr::call(name, vec![self.plan(expr)?]),
                    _ => return Err(self.unsupported(span, format!("{name}(x TO ...)"), "")),
                }
            }
            Ast::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.plan(expr)?];
                args.push(match substring_from {
                    Some(f) => self.plan(f)?,
                    None => Expr::lit(1),
                });
                if let Some(n) = substring_for {
                    args.push(self.plan(n)?);
                }
                Expr::call("substring", args)
            }
            Ast::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                let name = match trim_where {
                    None | Some(ast::TrimWhereField::Both) => "trim",
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                };
                let mut args = vec![self.plan(expr)?];
                if let Some(w) = trim_what {
                    args.push(self.plan(w)?);
                }
                for c in trim_characters.iter().flatten() {
                    args.push(self.plan(c)?);
                }
                Expr::call(name, args)
            }
            Ast::Extract { field, expr, .. } => {
                let part = field.to_string().to_ascii_lowercase();
                let known = [
                    "year",
                    "quarter",
                    "month",
                    "week",
                    "day",
                    "dayofweek",
                    "dow",
                ];
                let more = ["isodow", "dayofyear", "doy", "hour", "minute", "second"];
                if !known.contains(&part.as_str()) && !more.contains(&part.as_str()) {
                    return Err(self.unsupported(span, format!("EXTRACT({part} FROM ...)"), ""));
                }
                Expr::call(&part, vec![self.plan(expr)?])
            }
            Ast::Subquery(q) => {
                Expr::ScalarSubquery(Box::new(self.subquery(q, SubqueryKind::Scalar, span)?))
            }
            Ast::In {
                expr,
                target: ast::InTarget::Subquery(q),
                negated,
                ..
            } => Expr::InSubquery {
                expr: Box::new(self.plan(expr)?),
                subquery: Box::new(self.subquery(q, SubqueryKind::Set, span)?),
                negated: *negated,
            },
            Ast::In { .. } => return Err(self.unsupported(span, "IN UNNEST, IN table", "")),
            Ast::Exists { .. } => {
                return Err(self.unsupported(
                    span,
                    "EXISTS (subquery)",
                    "; a scalar subquery or IN (subquery) is: (SELECT count(*) FROM ...) > 0",
                ))
            }
            Ast::IsTrue(_) | Ast::IsFalse(_) | Ast::IsNotTrue(_) | Ast::IsNotFalse(_) => {
                return Err(self.unsupported(
                    span,
                    "IS [NOT] TRUE/FALSE",
                    "; compare with = true, or use coalesce",
                ))
            }
            Ast::IsDistinctFrom(..) | Ast::IsNotDistinctFrom(..) => {
                return Err(self.unsupported(span, "IS [NOT] DISTINCT FROM", ""))
            }
            Ast::Wildcard(_) | Ast::QualifiedWildcard(..) => {
                return Err(self.unsupported(span, "'*' inside an expression", ""))
            }
            other => {
                return Err(self.unsupported(span, format!("the expression {}", short(other)), ""))
            }
        })
    }

    /// The column `name` (of table `table`), or a select alias of that name.
    fn column(&mut self, table: Option<&str>, name: &str, span: SqlSpan) -> Result<Expr> {
        if let Some(t) = table {
            if !self.scope.names.iter().any(|n| n.eq_ignore_ascii_case(t)) {
                return Err(self.err(
                    span,
                    SqlProblem::UnknownTable {
                        name: t.into(),
                        known: self.scope.names.clone(),
                    },
                ));
            }
        }
        match resolve(&self.scope.schema, name) {
            Ok(Some(actual)) => {
                if !self.in_aggregate {
                    self.seen.push((actual.clone(), span));
                }
                return Ok(Expr::Column(actual));
            }
            Ok(None) => {}
            Err(p) => return Err(self.err(span, p)),
        }
        if table.is_none() {
            if let Some(a) = self
                .aliases
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
            {
                if a.computed && (!self.allow_aggs || self.in_aggregate) {
                    let what = if self.in_aggregate {
                        "aggregate functions"
                    } else {
                        "aggregate and window functions"
                    };
                    let place = if self.in_aggregate {
                        "an aggregate's arguments"
                    } else {
                        self.place
                    };
                    return Err(self.err(span, SqlProblem::NotAllowedHere { what, place }));
                }
                self.used_calls |= a.computed;
                return Ok(a.expr.clone());
            }
        }
        let available: Vec<String> = self
            .scope
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        Err(self.err(
            span,
            Error::UnknownColumn {
                column: name.into(),
                close: close_names(name, available.iter().cloned()),
                available,
            },
        ))
    }

    fn interval(&mut self, i: &ast::Interval, span: SqlSpan) -> Result<Expr> {
        let value = match &*i.value {
            Ast::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => s.clone(),
                Value::Number(n, _) => n.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if value.is_empty() || i.last_field.is_some() || i.leading_precision.is_some() {
            return Err(self.unsupported(
                span,
                "this INTERVAL form",
                "; write INTERVAL '3 days' or INTERVAL 3 DAY",
            ));
        }
        let text = match &i.leading_field {
            Some(f) => format!("{value} {f}"),
            None => value,
        };
        interval_literal(&text).map_err(|p| self.err(span, p))
    }

    fn function(&mut self, f: &ast::Function, whole: &Ast) -> Result<Expr> {
        let span = whole.span();
        let name = match f.name.0.as_slice() {
            [ast::ObjectNamePart::Identifier(id)] => id.value.to_ascii_lowercase(),
            _ => return Err(self.unsupported(span, format!("the function name {}", f.name), "")),
        };
        if f.filter.is_some() {
            return Err(self.unsupported(span, "FILTER (WHERE ...) on an aggregate", ""));
        }
        if !f.within_group.is_empty() {
            return Err(self.unsupported(span, "WITHIN GROUP", ""));
        }
        if !matches!(f.parameters, FunctionArguments::None) {
            return Err(self.unsupported(span, "function parameters", ""));
        }
        let list = match &f.args {
            FunctionArguments::None => None,
            FunctionArguments::List(l) => Some(l),
            FunctionArguments::Subquery(_) => {
                return Err(self.unsupported(span, "a subquery as a function's argument", ""))
            }
        };
        // `first(x) IGNORE NULLS`, or `first(x IGNORE NULLS)`.
        let mut nulls = f.null_treatment;
        for clause in list.iter().flat_map(|l| &l.clauses) {
            match clause {
                FunctionArgumentClause::IgnoreOrRespectNulls(n) if nulls.is_none() => {
                    nulls = Some(*n)
                }
                other => {
                    return Err(self.unsupported(span, format!("{other} inside {name}(...)"), ""))
                }
            }
        }
        let distinct = list
            .is_some_and(|l| matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct)));
        let star = list.is_some_and(|l| {
            matches!(
                l.args.as_slice(),
                [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
            )
        });
        let args: Vec<&Ast> = match list {
            None => Vec::new(),
            Some(_) if star => Vec::new(),
            Some(l) => l
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                    other => Err(self.unsupported(
                        span,
                        format!("the argument {other} of {name}"),
                        "; arguments are plain expressions",
                    )),
                })
                .collect::<Result<_>>()?,
        };
        if let Some(over) = &f.over {
            return self.window(&name, &args, over, whole);
        }
        if let Some((_, func)) = AGGREGATES.iter().find(|(n, _)| *n == name) {
            let func = match (func.clone(), nulls) {
                (func, None) => func,
                (Some(AggFunc::First { .. }), Some(n)) => Some(AggFunc::First {
                    skip_nulls: n == NullTreatment::IgnoreNulls,
                }),
                (Some(AggFunc::Last { .. }), Some(n)) => Some(AggFunc::Last {
                    skip_nulls: n == NullTreatment::IgnoreNulls,
                }),
                (_, Some(n)) => {
                    return Err(self.unsupported(
                        span,
                        format!("{n} in {name}(...)"),
                        "; first, last and any_value take it",
                    ))
                }
            };
            return self.aggregate(&name, func, &args, distinct, star, whole);
        }
        if let Some(n) = nulls {
            return Err(self.unsupported(
                span,
                format!("{n} in {name}(...)"),
                "; first, last and any_value take it",
            ));
        }
        if let Some((_, hint)) = OTHER_AGGREGATES.iter().find(|(n, _)| *n == name) {
            return Err(self.unsupported(span, format!("the aggregate function {name}"), hint));
        }
        if WINDOWS.iter().any(|(n, _)| *n == name) {
            return Err(self.err(
                span,
                SqlProblem::BadArgument {
                    function: name,
                    reason: "a window function needs OVER (PARTITION BY ... ORDER BY ...)".into(),
                },
            ));
        }
        if !function_names().contains(&name.as_str()) {
            let known = function_names()
                .into_iter()
                .chain(AGGREGATES.iter().map(|(n, _)| *n))
                .chain(WINDOWS.iter().map(|(n, _)| *n))
                .map(String::from);
            let shown = match f.name.0.as_slice() {
                [ast::ObjectNamePart::Identifier(id)] => id.value.clone(),
                _ => name.clone(),
            };
            return Err(self.err(
                span,
                SqlProblem::UnknownFunction {
                    close: close_names(&name, known),
                    name: shown,
                },
            ));
        }
        if distinct || star {
            return Err(self.unsupported(
                span,
                format!(
                    "{} in the scalar function {name}",
                    if star { "*" } else { "DISTINCT" }
                ),
                "",
            ));
        }
        let args = args
            .iter()
            .map(|a| self.plan(a))
            .collect::<Result<Vec<_>>>()?;
        Ok(Expr::call(&name, args))
    }

    fn aggregate(
        &mut self,
        name: &str,
        func: Option<AggFunc>,
        args: &[&Ast],
        distinct: bool,
        star: bool,
        whole: &Ast,
    ) -> Result<Expr> {
        let span = whole.span();
        if !self.allow_aggs || self.in_aggregate {
            let place = if self.in_aggregate {
                "an aggregate's arguments"
            } else {
                self.place
            };
            return Err(self.err(
                span,
                SqlProblem::NotAllowedHere {
                    what: "aggregate functions",
                    place,
                },
            ));
        }
        let bad = |reason: String| SqlProblem::BadArgument {
            function: name.into(),
            reason,
        };
        let (func, args) = match func {
            Some(AggFunc::Count) if star || args.is_empty() => (AggFunc::Size, &args[..0]),
            None => {
                // quantile_cont(x, q), quantile_disc(x, q): the fraction is a
                // constant of the function.
                let [x, q] = args else {
                    return Err(self.err(
                        span,
                        bad(format!("takes 2 arguments (x, q), not {}", args.len())),
                    ));
                };
                if matches!(q, Ast::Array(_)) {
                    return Err(self.unsupported(
                        q.span(),
                        format!("a list of quantiles in {name}"),
                        &format!("; call {name}(x, q) once for each fraction"),
                    ));
                }
                let q = constant_fraction(q).ok_or_else(|| {
                    self.err(
                        q.span(),
                        bad(format!(
                            "the quantile must be a number from 0 to 1, not {q}"
                        )),
                    )
                })?;
                (quantile(name, q), std::slice::from_ref(x))
            }
            Some(func) => (func, args),
        };
        if star && func != AggFunc::Size {
            return Err(self.err(span, bad("'*' is an argument of count only".into())));
        }
        if args.len() != func.arity() {
            return Err(self.err(
                span,
                bad(format!(
                    "takes {} argument{}, not {}",
                    func.arity(),
                    if func.arity() == 1 { "" } else { "s" },
                    args.len()
                )),
            ));
        }
        let distinct = match func {
            _ if !distinct => false,
            AggFunc::Count => true,
            // The same value with or without duplicates.
            AggFunc::Min
            | AggFunc::Max
            | AggFunc::Any
            | AggFunc::All
            | AggFunc::First { .. }
            | AggFunc::Last { .. } => false,
            _ => {
                return Err(self.unsupported(
                    span,
                    format!("DISTINCT in {name}(...)"),
                    "; only count(DISTINCT x) is",
                ))
            }
        };
        self.in_aggregate = true;
        let planned = args
            .iter()
            .map(|a| self.plan(a))
            .collect::<Result<Vec<_>>>();
        self.in_aggregate = false;
        let args = planned?;
        let out = match self
            .calls
            .aggs
            .iter()
            .find(|a| a.func == func && a.args == args && a.distinct == distinct)
        {
            Some(a) => a.name.clone(),
            None => {
                let name = render(self.sql, whole);
                self.calls.aggs.push(AggExpr {
                    func,
                    args,
                    distinct,
                    name: name.clone(),
                });
                self.calls.agg_spans.push(span);
                name
            }
        };
        self.used_calls = true;
        Ok(Expr::Column(out))
    }

    fn window(
        &mut self,
        name: &str,
        args: &[&Ast],
        over: &WindowType,
        whole: &Ast,
    ) -> Result<Expr> {
        let span = whole.span();
        let Some((_, func)) = WINDOWS.iter().find(|(n, _)| *n == name) else {
            let hint = "; the window functions are row_number, rank and dense_rank";
            let what = if AGGREGATES.iter().any(|(n, _)| *n == name) {
                format!("the aggregate {name} over a window")
            } else {
                format!("the window function {name}")
            };
            return Err(self.unsupported(span, what, hint));
        };
        if !self.allow_windows || self.in_aggregate {
            let place = if self.in_aggregate {
                "an aggregate's arguments"
            } else {
                self.place
            };
            return Err(self.err(
                span,
                SqlProblem::NotAllowedHere {
                    what: "window functions",
                    place,
                },
            ));
        }
        if !args.is_empty() {
            return Err(self.err(
                span,
                SqlProblem::BadArgument {
                    function: name.into(),
                    reason: format!("takes no arguments, not {}", args.len()),
                },
            ));
        }
        let spec = match over {
            WindowType::WindowSpec(s) => s,
            WindowType::NamedWindow(_) => {
                return Err(self.unsupported(span, "a named window (WINDOW w AS ...)", ""))
            }
        };
        if spec.window_name.is_some() {
            return Err(self.unsupported(span, "a named window (WINDOW w AS ...)", ""));
        }
        if spec.window_frame.is_some() {
            return Err(self.unsupported(
                span,
                "a window frame (ROWS/RANGE/GROUPS BETWEEN ...)",
                "; row_number, rank and dense_rank ignore frames",
            ));
        }
        // A window's keys may not hold another window function.
        let allow = std::mem::replace(&mut self.allow_windows, false);
        let planned = (|| {
            let partition_by = spec
                .partition_by
                .iter()
                .map(|p| self.plan(p))
                .collect::<Result<Vec<_>>>()?;
            let order_by = spec
                .order_by
                .iter()
                .map(|k| self.sort_key(k))
                .collect::<Result<Vec<_>>>()?;
            Ok::<_, Error>((partition_by, order_by))
        })();
        self.allow_windows = allow;
        let (partition_by, order_by) = planned?;
        let out =
            match self.calls.windows.iter().find(|w| {
                w.func == *func && w.partition_by == partition_by && w.order_by == order_by
            }) {
                Some(w) => w.name.clone(),
                None => {
                    let name = render(self.sql, whole);
                    self.calls.windows.push(WindowExpr {
                        func: *func,
                        partition_by,
                        order_by,
                        name: name.clone(),
                    });
                    self.calls.window_spans.push(span);
                    name
                }
            };
        self.used_calls = true;
        Ok(Expr::Column(out))
    }

    /// An `ORDER BY` term of a window, with SQL's default null order.
    pub fn sort_key(&mut self, k: &ast::OrderByExpr) -> Result<SortExpr> {
        if k.with_fill.is_some() {
            return Err(self.unsupported(k.expr.span(), "WITH FILL", ""));
        }
        let (descending, nulls_first) = sort_options(&k.options)
            .ok_or_else(|| self.unsupported(k.expr.span(), "ORDER BY ... USING", ""))?;
        Ok(SortExpr {
            expr: self.plan(&k.expr)?,
            descending,
            nulls_first,
        })
    }
}

/// Whether descending and whether nulls come first, DuckDB's defaults filled in
/// (nulls last, whichever the direction: DuckDB 2.0 gives `2, 1, NULL` for
/// `ORDER BY x DESC`); `None` for `USING`.
pub(crate) fn sort_options(o: &ast::OrderByOptions) -> Option<(bool, bool)> {
    let descending = match o.sort {
        None | Some(OrderBySort::Asc) => false,
        Some(OrderBySort::Desc) => true,
        Some(OrderBySort::Using(_)) => return None,
    };
    Some((descending, o.nulls_first.unwrap_or(false)))
}

/// The field of `schema` that `name` names: the exact name, else the one name
/// equal but for case (SQL identifiers ignore case, quoted ones too in DuckDB).
pub(crate) fn resolve(
    schema: &arrow::datatypes::Schema,
    name: &str,
) -> std::result::Result<Option<String>, SqlProblem> {
    if schema.fields().iter().any(|f| f.name() == name) {
        return Ok(Some(name.to_string()));
    }
    let matches: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| f.name().eq_ignore_ascii_case(name))
        .map(|f| f.name().clone())
        .collect();
    match matches.len() {
        0 => Ok(None),
        1 => Ok(matches.into_iter().next()),
        _ => Err(SqlProblem::AmbiguousColumn {
            name: name.into(),
            matches,
        }),
    }
}

fn binary_op(op: &B) -> Option<BinaryOp> {
    Some(match op {
        B::Plus => BinaryOp::Add,
        B::Minus => BinaryOp::Subtract,
        B::Multiply => BinaryOp::Multiply,
        B::Divide => BinaryOp::Divide,
        B::Modulo => BinaryOp::Modulo,
        B::DuckIntegerDivide | B::MyIntegerDivide => BinaryOp::TruncDivide,
        // DuckDB's `^` is a power, not a bitwise xor.
        B::BitwiseXor | B::PGExp => BinaryOp::Power,
        B::StringConcat => BinaryOp::Concat,
        B::Gt => BinaryOp::Gt,
        B::Lt => BinaryOp::Lt,
        B::GtEq => BinaryOp::GtEq,
        B::LtEq => BinaryOp::LtEq,
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::And => BinaryOp::And,
        B::Or => BinaryOp::Or,
        _ => return None,
    })
}

/// A literal value as an expression.
fn literal(v: &Value) -> std::result::Result<Expr, SqlProblem> {
    Ok(match v {
        Value::Number(n, _) => Expr::Literal(number(n)?),
        Value::SingleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::TripleSingleQuotedString(s)
        | Value::UnicodeStringLiteral(s) => Expr::lit(s.as_str()),
        Value::DollarQuotedString(s) => Expr::lit(s.value.as_str()),
        Value::Boolean(b) => Expr::lit(*b),
        Value::Null => Expr::Literal(Literal::Null),
        Value::Placeholder(p) => {
            return Err(SqlProblem::Unsupported {
                construct: format!("the parameter {p}"),
                hint: String::new(),
            })
        }
        other => {
            return Err(SqlProblem::Unsupported {
                construct: format!("the literal {other}"),
                hint: String::new(),
            })
        }
    })
}

/// A numeric literal: an integer when it is one (unsigned past `i64::MAX`), else a
/// float (DuckDB makes `1.5` a DECIMAL; blockwise computes it as DOUBLE).
fn number(text: &str) -> std::result::Result<Literal, SqlProblem> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = clean.parse::<i64>() {
        return Ok(Literal::Int64(i));
    }
    if let Ok(u) = clean.parse::<u64>() {
        return Ok(Literal::UInt64(u));
    }
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Literal::Float64(f)),
        _ => Err(SqlProblem::BadLiteral {
            kind: "number".into(),
            value: text.into(),
        }),
    }
}

/// `-<number>` folded into the literal, so that `-9223372036854775808` is an
/// integer as in DuckDB.
fn negative_number(v: &Value) -> std::result::Result<Expr, SqlProblem> {
    let Value::Number(n, _) = v else {
        return literal(v).map(Expr::neg);
    };
    let clean: String = n.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = format!("-{clean}").parse::<i64>() {
        return Ok(Expr::lit(i));
    }
    match number(n)? {
        Literal::Float64(f) => Ok(Expr::lit(-f)),
        // Below i64::MIN: a float, as DuckDB's HUGEINT is not there.
        Literal::UInt64(u) => Ok(Expr::lit(-(u as f64))),
        other => Ok(Expr::Literal(other).neg()),
    }
}

/// A number in [0, 1] written as a constant.
fn constant_fraction(e: &Ast) -> Option<f64> {
    let v = match e {
        Ast::Value(v) => match &v.value {
            Value::Number(n, _) => n.replace('_', "").parse::<f64>().ok()?,
            _ => return None,
        },
        Ast::Nested(inner) => return constant_fraction(inner),
        _ => return None,
    };
    (0.0..=1.0).contains(&v).then_some(v)
}

/// `DATE '...'`, `TIMESTAMP '...'`, or another type's string (a cast).
fn typed_literal(t: &ast::DataType, text: &str) -> Result<Expr> {
    let (to, name) = sql_type(t)?;
    let bad = || SqlProblem::BadLiteral {
        kind: name.into(),
        value: format!("'{text}'"),
    };
    let parsed = arrow::compute::cast(&StringArray::from(vec![text]), &to);
    let parsed = match parsed {
        Ok(a) if a.null_count() == 0 => a,
        _ => return Err(bad().into()),
    };
    Ok(match to {
        DataType::Date32 => Expr::Literal(Literal::Date32(
            parsed.as_primitive::<Date32Type>().value(0),
        )),
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            Expr::Literal(Literal::TimestampMicros(
                parsed
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                    .value(0),
            ))
        }
        to => Expr::lit(text).cast(to),
    })
}

/// `INTERVAL '3 days'`, as months, days and nanoseconds.
fn interval_literal(text: &str) -> std::result::Result<Expr, SqlProblem> {
    let to = DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano);
    let parsed = arrow::compute::cast(&StringArray::from(vec![text]), &to);
    match parsed {
        Ok(a) if a.null_count() == 0 => {
            let v = a.as_primitive::<IntervalMonthDayNanoType>().value(0);
            Ok(Expr::Literal(Literal::Interval {
                months: v.months,
                days: v.days,
                nanos: v.nanoseconds,
            }))
        }
        _ => Err(SqlProblem::BadLiteral {
            kind: "INTERVAL".into(),
            value: format!("'{text}'"),
        }),
    }
}

/// The Arrow type of a DuckDB type name, and DuckDB's canonical spelling of it.
pub(crate) fn sql_type(
    t: &ast::DataType,
) -> std::result::Result<(DataType, &'static str), SqlProblem> {
    use ast::DataType as T;
    Ok(match t {
        T::Boolean | T::Bool => (DataType::Boolean, "BOOLEAN"),
        T::TinyInt(_) => (DataType::Int8, "TINYINT"),
        T::SmallInt(_) | T::Int16 | T::Int2(_) => (DataType::Int16, "SMALLINT"),
        T::Int(_) | T::Integer(_) | T::Int32 | T::Int4(_) | T::MediumInt(_) => {
            (DataType::Int32, "INTEGER")
        }
        T::BigInt(_) | T::Int64 | T::Int8(_) => (DataType::Int64, "BIGINT"),
        T::UTinyInt | T::UInt8 => (DataType::UInt8, "UTINYINT"),
        T::USmallInt | T::UInt16 => (DataType::UInt16, "USMALLINT"),
        T::UInt32 => (DataType::UInt32, "UINTEGER"),
        T::UBigInt | T::UInt64 => (DataType::UInt64, "UBIGINT"),
        T::Float(_) | T::Float4 | T::Float32 | T::Real => (DataType::Float32, "FLOAT"),
        T::Double(_) | T::DoublePrecision | T::Float8 | T::Float64 => (DataType::Float64, "DOUBLE"),
        T::Varchar(_)
        | T::Text
        | T::String(_)
        | T::Char(_)
        | T::Character(_)
        | T::CharVarying(_)
        | T::CharacterVarying(_)
        | T::Nvarchar(_) => (DataType::Utf8, "VARCHAR"),
        T::Date => (DataType::Date32, "DATE"),
        T::Timestamp(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone)
        | T::Datetime(_) => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            "TIMESTAMP",
        ),
        T::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_uppercase().as_str() {
                "INT1" => (DataType::Int8, "TINYINT"),
                "SHORT" => (DataType::Int16, "SMALLINT"),
                "SIGNED" | "LONG" => (DataType::Int64, "BIGINT"),
                "UINTEGER" => (DataType::UInt32, "UINTEGER"),
                "BPCHAR" => (DataType::Utf8, "VARCHAR"),
                "TIMESTAMP_US" => (
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    "TIMESTAMP",
                ),
                _ => {
                    return Err(SqlProblem::UnknownType {
                        name: t.to_string(),
                    })
                }
            }
        }
        other => {
            return Err(SqlProblem::UnknownType {
                name: other.to_string(),
            })
        }
    })
}

/// An expression's text for a message, cut when long.
pub(crate) fn short(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// The schema of a relation seen under a scope (used for `SELECT *`).
pub(crate) fn columns(scope: &Scope) -> Vec<String> {
    scope
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}
