//! Queries as [`LogicalPlan`]s: WITH (each CTE planned once and inlined where it is
//! named), the SELECT body or a UNION of bodies, ORDER BY, LIMIT and OFFSET.
//!
//! A SELECT becomes, bottom up: the FROM relation, `Filter` (WHERE), `Aggregate`
//! (the GROUP BY keys and every distinct aggregate call, named by its SQL text)
//! and `Filter` (HAVING), `Window` (each distinct window call) and `Filter`
//! (QUALIFY), `Project` (the select list, plus any ORDER BY expression that is not
//! in it), `Distinct`, `Sort`, and a last `Project` dropping the sort-only columns.
//! Expressions above the `Aggregate` name its outputs as columns; a column of the
//! input that is neither a key nor inside an aggregate is refused there, as
//! DuckDB refuses it.

use std::cell::RefCell;
use std::path::Path;

use arrow::datatypes::{DataType, SchemaRef};
use sqlparser::ast::{
    self, Expr as Ast, GroupByExpr, LimitClause, OrderByKind, Query, Select, SelectItem, SetExpr,
    Spanned, Value,
};
use sqlparser::tokenizer::Span as SqlSpan;

use super::error::{at, SqlProblem};
use super::expr::{columns, resolve, sort_options, Alias, Calls, ExprPlanner, Queries, Scope};
use super::from::constant_count;
use super::name::column_name;
use crate::error::{Error, Result};
use crate::frame::expr::Expr;
use crate::frame::logical::{LogicalPlan, SortExpr, SubqueryPlan};

/// A CTE: its name and its plan.
#[derive(Debug, Clone)]
pub(crate) struct NamedPlan {
    /// The name queries use.
    pub name: String,
    /// What it computes.
    pub plan: LogicalPlan,
}

/// Plans the queries of one SQL text.
#[derive(Clone, Copy)]
pub(crate) struct QueryPlanner<'a> {
    /// The text, for error places and names.
    pub sql: &'a str,
    /// Where relative paths are read from (the working directory when `None`).
    pub base_dir: Option<&'a Path>,
    /// The subqueries of expressions, numbered in the order they are planned
    /// (one inside another comes first), for `LogicalPlan::WithSubqueries`.
    pub subqueries: &'a RefCell<Vec<SubqueryPlan>>,
}

/// A select-list column: its expression over the SELECT's input (aggregates and
/// windows as references to their outputs), its name, and where it was written.
struct Item {
    expr: Expr,
    name: String,
    span: SqlSpan,
    computed: bool,
    seen: Vec<(String, SqlSpan)>,
}

/// An ORDER BY key: a select-list column, or an expression computed for the sort
/// only.
enum SortTarget {
    Item(usize),
    Hidden(Expr, Vec<(String, SqlSpan)>, SqlSpan),
}

impl<'a> QueryPlanner<'a> {
    /// Adds a subquery of an expression; its number.
    pub(crate) fn add_subquery(&self, s: SubqueryPlan) -> usize {
        let mut list = self.subqueries.borrow_mut();
        list.push(s);
        list.len() - 1
    }

    /// How the expressions of a clause plan their subqueries.
    fn queries(&self, ctes: &'a [NamedPlan]) -> Queries<'a> {
        Queries {
            planner: *self,
            ctes,
        }
    }

    /// The plan of `q`, with the CTEs of enclosing queries in `ctes`.
    pub(crate) fn query(&mut self, q: &Query, ctes: &[NamedPlan]) -> Result<LogicalPlan> {
        let span = q.span();
        if q.fetch.is_some() {
            return Err(self.unsupported_at(span, "FETCH FIRST"));
        }
        if !q.locks.is_empty() || q.for_clause.is_some() {
            return Err(self.unsupported_at(span, "FOR UPDATE / FOR XML"));
        }
        if q.settings.is_some() || q.format_clause.is_some() || !q.pipe_operators.is_empty() {
            return Err(self.unsupported_at(span, "SETTINGS, FORMAT and pipe operators"));
        }
        let mut scope: Vec<NamedPlan> = ctes.to_vec();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(self.unsupported_at(with.with_token.0.span, "WITH RECURSIVE"));
            }
            let outer = scope.len();
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.clone();
                if scope[outer..]
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(&name))
                {
                    return Err(at(
                        self.sql,
                        cte.alias.name.span,
                        SqlProblem::DuplicateCte { name },
                    ));
                }
                if cte.from.is_some() {
                    return Err(self.unsupported_at(cte.alias.name.span, "CTE ... FROM"));
                }
                let plan = self.query(&cte.query, &scope)?;
                let plan = self.rename(plan, &cte.alias, cte.alias.name.span)?;
                scope.push(NamedPlan { name, plan });
            }
        }
        let order_by = match &q.order_by {
            Some(o) => {
                if o.interpolate.is_some() {
                    return Err(self.unsupported_at(span, "INTERPOLATE"));
                }
                Some(&o.kind)
            }
            None => None,
        };
        let plan = match &*q.body {
            SetExpr::Select(s) => self.select(s, order_by, &scope)?,
            SetExpr::Query(inner) => {
                let plan = self.query(inner, &scope)?;
                match order_by {
                    Some(kind) => self.sort_output(plan, kind, span)?,
                    None => plan,
                }
            }
            SetExpr::SetOperation { .. } => {
                let plan = self.set_operation(&q.body, &scope)?;
                match order_by {
                    Some(kind) => self.sort_output(plan, kind, span)?,
                    None => plan,
                }
            }
            SetExpr::Values(_) => return Err(self.unsupported_at(q.body.span(), "VALUES")),
            SetExpr::Table(_) => return Err(self.unsupported_at(q.body.span(), "TABLE t")),
            _ => {
                return Err(at(
                    self.sql,
                    q.body.span(),
                    SqlProblem::NotAQuery {
                        kind: "a data-changing statement".into(),
                    },
                ))
            }
        };
        self.limit(plan, q.limit_clause.as_ref())
    }

    /// A set operation's operand, or the set operation itself: `UNION ALL` of any
    /// number of queries is one `Union` (flattened from the left), `UNION` that
    /// under `Distinct`; columns unified by position, named by the first query.
    fn set_operation(&mut self, body: &SetExpr, ctes: &[NamedPlan]) -> Result<LogicalPlan> {
        let (left, op, quantifier, right) = match body {
            SetExpr::Select(s) => return self.select(s, None, ctes),
            SetExpr::Query(q) => return self.query(q, ctes),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => (left, op, set_quantifier, right),
            SetExpr::Values(_) => return Err(self.unsupported_at(body.span(), "VALUES")),
            other => return Err(self.unsupported_at(other.span(), "this query in a set operation")),
        };
        let distinct = match (op, quantifier) {
            (ast::SetOperator::Union, ast::SetQuantifier::All) => false,
            (ast::SetOperator::Union, ast::SetQuantifier::Distinct | ast::SetQuantifier::None) => {
                true
            }
            (ast::SetOperator::Union, _) => {
                return Err(self.unsupported_at(body.span(), "UNION BY NAME"));
            }
            (op, _) => return Err(self.unsupported_at(body.span(), &op.to_string().to_uppercase())),
        };
        let name = if distinct { "UNION" } else { "UNION ALL" };
        // `a UNION ALL b UNION ALL c` is one union of the three; so is
        // `a UNION ALL b UNION c`, under one Distinct.
        let mut operands = Vec::new();
        union_operands(left, distinct, &mut operands);
        operands.push(right);
        let mut inputs: Vec<LogicalPlan> = Vec::with_capacity(operands.len());
        let mut first_columns = 0;
        for (i, operand) in operands.iter().enumerate() {
            let plan = self.set_operation(operand, ctes)?;
            let columns = plan
                .schema()
                .map_err(|e| at(self.sql, operand.span(), e))?
                .fields()
                .len();
            if i == 0 {
                first_columns = columns;
            } else if columns != first_columns {
                return Err(at(
                    self.sql,
                    operand.span(),
                    SqlProblem::SetColumns {
                        op: name.into(),
                        left: first_columns,
                        right: columns,
                    },
                ));
            }
            inputs.push(plan);
        }
        // A type clash is found at the last query: its types meet the others'.
        let plan = LogicalPlan::union(inputs).map_err(|e| at(self.sql, right.span(), e))?;
        Ok(if distinct {
            LogicalPlan::Distinct {
                input: Box::new(plan),
            }
        } else {
            plan
        })
    }

    fn unsupported_at(&self, span: SqlSpan, construct: &str) -> Error {
        at(
            self.sql,
            span,
            SqlProblem::Unsupported {
                construct: construct.into(),
                hint: String::new(),
            },
        )
    }

    /// A CTE's output columns renamed by its alias's list (`WITH t(a, b) AS ...`).
    fn rename(
        &self,
        plan: LogicalPlan,
        alias: &ast::TableAlias,
        span: SqlSpan,
    ) -> Result<LogicalPlan> {
        if alias.columns.is_empty() {
            return Ok(plan);
        }
        let schema = plan.schema().map_err(|e| at(self.sql, span, e))?;
        if alias.columns.len() > schema.fields().len() {
            return Err(at(
                self.sql,
                span,
                SqlProblem::AliasColumns {
                    alias: alias.name.value.clone(),
                    given: alias.columns.len(),
                    columns: schema.fields().len(),
                },
            ));
        }
        let exprs = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = alias
                    .columns
                    .get(i)
                    .map_or_else(|| f.name().clone(), |c| c.name.value.clone());
                (Expr::Column(f.name().clone()), name)
            })
            .collect();
        Ok(LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
        })
    }

    fn limit(&self, plan: LogicalPlan, clause: Option<&LimitClause>) -> Result<LogicalPlan> {
        let (limit, offset) = match clause {
            None => return Ok(plan),
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if let Some(b) = limit_by.first() {
                    return Err(self.unsupported_at(b.span(), "LIMIT ... BY"));
                }
                (limit.as_ref(), offset.as_ref().map(|o| &o.value))
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => (Some(limit), Some(offset)),
        };
        let count = |e: &Ast, clause: &'static str| match e {
            Ast::Value(v) if matches!(v.value, Value::Null) => Ok(None),
            e => constant_count(e).map(Some).ok_or_else(|| {
                at(
                    self.sql,
                    e.span(),
                    SqlProblem::BadLimit {
                        clause,
                        value: e.to_string(),
                    },
                )
            }),
        };
        let fetch = match limit {
            Some(e) => count(e, "LIMIT")?,
            None => None,
        };
        let offset = match offset {
            Some(e) => count(e, "OFFSET")?.unwrap_or(0),
            None => 0,
        };
        Ok(LogicalPlan::Limit {
            input: Box::new(plan),
            offset,
            fetch,
        })
    }

    /// ORDER BY over a finished query's columns (the body was itself a query in
    /// brackets): positions, names, or expressions of its columns.
    fn sort_output(
        &mut self,
        plan: LogicalPlan,
        kind: &OrderByKind,
        span: SqlSpan,
    ) -> Result<LogicalPlan> {
        let schema = plan.schema().map_err(|e| at(self.sql, span, e))?;
        let scope = Scope {
            names: Vec::new(),
            schema: schema.clone(),
        };
        let names = columns(&scope);
        let mut calls = Calls::default();
        let keys = match kind {
            OrderByKind::All(o) => {
                let (descending, nulls_first) = sort_options(o)
                    .ok_or_else(|| self.unsupported_at(span, "ORDER BY ... USING"))?;
                names
                    .iter()
                    .map(|n| SortExpr {
                        expr: Expr::Column(n.clone()),
                        descending,
                        nulls_first,
                    })
                    .collect()
            }
            OrderByKind::Expressions(list) => {
                let mut keys = Vec::new();
                for k in list {
                    let mut p = ExprPlanner::new(self.sql, &scope, &[], &mut calls, "ORDER BY");
                    let mut key = p.sort_key(k)?;
                    if let Some(i) = position(&k.expr) {
                        let i = self.position(i, names.len(), "ORDER BY", &k.expr)?;
                        key.expr = Expr::Column(names[i].clone());
                    }
                    keys.push(key);
                }
                keys
            }
        };
        Ok(LogicalPlan::Sort {
            input: Box::new(plan),
            keys,
        })
    }

    /// A 1-based position checked against `count` columns, as an index.
    fn position(&self, p: u64, count: usize, clause: &'static str, e: &Ast) -> Result<usize> {
        match usize::try_from(p) {
            Ok(p) if (1..=count).contains(&p) => Ok(p - 1),
            _ => Err(at(
                self.sql,
                e.span(),
                SqlProblem::PositionOutOfRange {
                    clause,
                    position: p.to_string(),
                    count,
                },
            )),
        }
    }

    /// One SELECT, with the ORDER BY of its query (which may name columns the
    /// select list drops).
    fn select(
        &mut self,
        s: &Select,
        order_by: Option<&OrderByKind>,
        ctes: &[NamedPlan],
    ) -> Result<LogicalPlan> {
        let span = s.span();
        self.check_select(s)?;
        let (input, scope) = self.from(&s.from, ctes, s.select_token.0.span)?;
        let mut calls = Calls::default();

        // The select list, each item seeing the aliases before it.
        let mut items: Vec<Item> = Vec::new();
        let mut aliases: Vec<Alias> = Vec::new();
        let projection: Vec<SelectItem> = if s.projection.is_empty() {
            // `FROM t` alone is `SELECT * FROM t`.
            vec![SelectItem::Wildcard(
                ast::WildcardAdditionalOptions::default(),
            )]
        } else {
            s.projection.clone()
        };
        for item in &projection {
            match item {
                SelectItem::Wildcard(opts) => self.wildcard(&scope, None, opts, &mut items)?,
                SelectItem::QualifiedWildcard(kind, opts) => {
                    let name = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => n.to_string(),
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    self.wildcard(&scope, Some((&name, item.span())), opts, &mut items)?
                }
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    let mut p = ExprPlanner::new(self.sql, &scope, &aliases, &mut calls, "SELECT")
                        .with_calls(true, true)
                        .with_subqueries(self.queries(ctes));
                    let expr = p.plan(e)?;
                    let (computed, seen) = (p.used_calls, p.seen);
                    let name = match item {
                        SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                        _ => match (&expr, e) {
                            // A bare column keeps the table's spelling of its name.
                            (Expr::Column(c), Ast::Identifier(_) | Ast::CompoundIdentifier(_)) => {
                                c.clone()
                            }
                            _ => column_name(self.sql, e),
                        },
                    };
                    if let SelectItem::ExprWithAlias { alias, .. } = item {
                        aliases.push(Alias {
                            name: alias.value.clone(),
                            expr: expr.clone(),
                            computed,
                        });
                    }
                    items.push(Item {
                        expr,
                        name,
                        span: e.span(),
                        computed,
                        seen,
                    });
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(self.unsupported_at(item.span(), "several aliases for one item"))
                }
            }
        }

        // ORDER BY terms, planned before the aggregate so that their aggregates
        // are computed too.
        let mut sort: Vec<(SortTarget, bool, bool)> = Vec::new();
        if let Some(kind) = order_by {
            match kind {
                OrderByKind::All(o) => {
                    let (descending, nulls_first) = sort_options(o)
                        .ok_or_else(|| self.unsupported_at(span, "ORDER BY ... USING"))?;
                    for i in 0..items.len() {
                        sort.push((SortTarget::Item(i), descending, nulls_first));
                    }
                }
                OrderByKind::Expressions(list) => {
                    for k in list {
                        let kspan = k.expr.span();
                        if k.with_fill.is_some() {
                            return Err(self.unsupported_at(kspan, "WITH FILL"));
                        }
                        let (descending, nulls_first) = sort_options(&k.options)
                            .ok_or_else(|| self.unsupported_at(kspan, "ORDER BY ... USING"))?;
                        let target =
                            self.order_target(&k.expr, &scope, &aliases, &mut calls, &items)?;
                        sort.push((target, descending, nulls_first));
                    }
                }
            }
        }

        let where_ = match &s.selection {
            Some(e) => {
                let mut p = ExprPlanner::new(self.sql, &scope, &aliases, &mut calls, "WHERE")
                    .with_subqueries(self.queries(ctes));
                Some((p.plan(e)?, e.span()))
            }
            None => None,
        };

        // GROUP BY keys: positions and aliases name select items; names are input
        // columns first, as in DuckDB.
        let mut keys: Vec<(Expr, String, SqlSpan)> = Vec::new();
        let grouped;
        match &s.group_by {
            GroupByExpr::All(mods) => {
                if !mods.is_empty() {
                    return Err(self.unsupported_at(span, "GROUP BY ALL with modifiers"));
                }
                grouped = true;
                for item in items.iter().filter(|i| !i.computed) {
                    add_key(
                        &mut keys,
                        item.expr.clone(),
                        key_name(&item.expr, &item.name),
                        item.span,
                    );
                }
            }
            GroupByExpr::Expressions(list, mods) => {
                if !mods.is_empty() {
                    return Err(self.unsupported_at(span, "ROLLUP, CUBE and GROUPING SETS"));
                }
                grouped = !list.is_empty();
                for g in list {
                    // `GROUP BY ()`: one group of every row.
                    if matches!(g, Ast::Tuple(t) if t.is_empty()) {
                        continue;
                    }
                    let (expr, name) = self.group_key(g, &scope, &aliases, &mut calls, &items)?;
                    add_key(&mut keys, expr, name, g.span());
                }
            }
        }

        let having = match &s.having {
            Some(e) => {
                let mut p = ExprPlanner::new(self.sql, &scope, &aliases, &mut calls, "HAVING")
                    .with_calls(true, false)
                    .with_subqueries(self.queries(ctes));
                let expr = p.plan(e)?;
                Some((expr, p.seen, e.span()))
            }
            None => None,
        };
        let qualify = match &s.qualify {
            Some(e) => {
                let mut p = ExprPlanner::new(self.sql, &scope, &aliases, &mut calls, "QUALIFY")
                    .with_calls(true, true);
                let expr = p.plan(e)?;
                Some((expr, p.seen, e.span()))
            }
            None => None,
        };

        // Bottom up.
        let mut plan = input;
        if let Some((predicate, wspan)) = where_ {
            plan = self.filter(plan, predicate, wspan, "WHERE")?;
        }
        let aggregating = grouped || !calls.aggs.is_empty() || having.is_some();
        let mut having = having;
        let mut qualify = qualify;
        let mut windows = std::mem::take(&mut calls.windows);
        if aggregating {
            let input_schema = plan.schema()?;
            for (k, _, kspan) in &keys {
                k.data_type(&input_schema)
                    .map_err(|e| at(self.sql, *kspan, e))?;
            }
            for (a, aspan) in calls.aggs.iter().zip(&calls.agg_spans) {
                let types = a
                    .args
                    .iter()
                    .map(|e| e.data_type(&input_schema))
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| at(self.sql, *aspan, e))?;
                a.func.check(&types).map_err(|e| at(self.sql, *aspan, e))?;
                if a.func.positional() {
                    // Refused here, where the query can say where, rather than
                    // when the plan is lowered.
                    crate::frame::optimize::with_ordinals(plan.clone(), a.func.name())
                        .map_err(|e| at(self.sql, *aspan, e))?;
                }
            }
            let outputs: Vec<String> = calls
                .aggs
                .iter()
                .map(|a| a.name.clone())
                .chain(windows.iter().map(|w| w.name.clone()))
                .collect();
            let grouping = Grouping {
                sql: self.sql,
                keys: &keys,
                outputs: &outputs,
            };
            for item in &mut items {
                item.expr = grouping.rewrite(&item.expr, &item.seen)?;
            }
            if let Some((e, seen, _)) = &mut having {
                *e = grouping.rewrite(e, seen)?;
            }
            if let Some((e, seen, _)) = &mut qualify {
                *e = grouping.rewrite(e, seen)?;
            }
            for (target, _, _) in &mut sort {
                if let SortTarget::Hidden(e, seen, _) = target {
                    *e = grouping.rewrite(e, seen)?;
                }
            }
            for w in &mut windows {
                for e in w.partition_by.iter_mut() {
                    *e = grouping.rewrite(e, &[])?;
                }
                for k in w.order_by.iter_mut() {
                    k.expr = grouping.rewrite(&k.expr, &[])?;
                }
            }
            plan = LogicalPlan::Aggregate {
                input: Box::new(plan),
                keys: keys
                    .iter()
                    .map(|(e, n, _)| (e.clone(), n.clone()))
                    .collect(),
                aggs: std::mem::take(&mut calls.aggs),
            };
            if let Some((predicate, _, hspan)) = having {
                plan = self.filter(plan, predicate, hspan, "HAVING")?;
            }
        }
        if !windows.is_empty() {
            let below = plan.schema()?;
            for (w, wspan) in windows.iter().zip(&calls.window_spans) {
                for e in w
                    .partition_by
                    .iter()
                    .chain(w.order_by.iter().map(|k| &k.expr))
                {
                    e.data_type(&below)
                        .map_err(|err| at(self.sql, *wspan, err))?;
                }
            }
            plan = LogicalPlan::Window {
                input: Box::new(plan),
                windows,
            };
        }
        if let Some((predicate, _, qspan)) = qualify {
            plan = self.filter(plan, predicate, qspan, "QUALIFY")?;
        }

        // The projection, with the sort-only columns after the select list's.
        let below = plan.schema()?;
        for item in &items {
            item.expr
                .data_type(&below)
                .map_err(|e| at(self.sql, item.span, e))?;
        }
        let hidden: Vec<&SortTarget> = sort
            .iter()
            .map(|(t, _, _)| t)
            .filter(|t| matches!(t, SortTarget::Hidden(..)))
            .collect();
        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => unreachable!("refused by check_select"),
        };
        if distinct {
            if let Some(SortTarget::Hidden(_, _, hspan)) = hidden.first() {
                return Err(at(self.sql, *hspan, SqlProblem::DistinctOrderBy));
            }
        }
        let mut names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
        let duplicated = {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| w[0] == w[1])
        };
        // Sort keys name projected columns, so those need names of their own when
        // there is a sort and the select list repeats one or hides columns.
        let internal = !sort.is_empty() && (duplicated || !hidden.is_empty());
        if internal {
            names = (0..items.len()).map(|i| format!("#{}", i + 1)).collect();
        }
        let mut exprs: Vec<(Expr, String)> = items
            .iter()
            .zip(&names)
            .map(|(i, n)| (i.expr.clone(), n.clone()))
            .collect();
        let mut keys_out = Vec::new();
        for (target, descending, nulls_first) in &sort {
            let column = match target {
                SortTarget::Item(i) => names[*i].clone(),
                SortTarget::Hidden(e, _, hspan) => {
                    e.data_type(&below)
                        .map_err(|err| at(self.sql, *hspan, err))?;
                    let name = format!("#sort{}", exprs.len() + 1);
                    exprs.push((e.clone(), name.clone()));
                    name
                }
            };
            keys_out.push(SortExpr {
                expr: Expr::Column(column),
                descending: *descending,
                nulls_first: *nulls_first,
            });
        }
        plan = LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
        };
        if distinct {
            plan = LogicalPlan::Distinct {
                input: Box::new(plan),
            };
        }
        if !keys_out.is_empty() {
            plan = LogicalPlan::Sort {
                input: Box::new(plan),
                keys: keys_out,
            };
        }
        if internal {
            plan = LogicalPlan::Project {
                input: Box::new(plan),
                exprs: items
                    .iter()
                    .zip(&names)
                    .map(|(i, n)| (Expr::Column(n.clone()), i.name.clone()))
                    .collect(),
            };
        }
        Ok(plan)
    }

    /// Refuses the parts of a SELECT the planner does not handle, each at its place.
    fn check_select(&self, s: &Select) -> Result<()> {
        let span = s.select_token.0.span;
        let refuse =
            |construct: &str, at_span: SqlSpan| Err(self.unsupported_at(at_span, construct));
        if let Some(ast::Distinct::On(list)) = &s.distinct {
            let at_span = list.first().map_or(span, |e| e.span());
            return refuse("DISTINCT ON", at_span);
        }
        if s.top.is_some() {
            return refuse("TOP", span);
        }
        if s.into.is_some() {
            return refuse("SELECT INTO", span);
        }
        if !s.lateral_views.is_empty() {
            return refuse("LATERAL VIEW", span);
        }
        if let Some(e) = &s.prewhere {
            return refuse("PREWHERE", e.span());
        }
        if !s.connect_by.is_empty() {
            return refuse("CONNECT BY", span);
        }
        if !s.cluster_by.is_empty() || !s.distribute_by.is_empty() || !s.sort_by.is_empty() {
            return refuse("CLUSTER BY, DISTRIBUTE BY and SORT BY", span);
        }
        if !s.named_window.is_empty() {
            return refuse("a WINDOW clause", span);
        }
        if s.value_table_mode.is_some() || s.select_modifiers.is_some() {
            return refuse("this SELECT modifier", span);
        }
        if s.exclude.is_some() {
            return refuse("EXCLUDE after the select list", span);
        }
        Ok(())
    }

    /// `*` (or `t.*`), with DuckDB's `EXCLUDE (a, b)`.
    fn wildcard(
        &self,
        scope: &Scope,
        qualifier: Option<(&str, SqlSpan)>,
        opts: &ast::WildcardAdditionalOptions,
        items: &mut Vec<Item>,
    ) -> Result<()> {
        let span = opts.wildcard_token.0.span;
        if let Some((q, qspan)) = qualifier {
            if !scope.names.iter().any(|n| n.eq_ignore_ascii_case(q)) {
                return Err(at(
                    self.sql,
                    qspan,
                    SqlProblem::UnknownTable {
                        name: q.into(),
                        known: scope.names.clone(),
                    },
                ));
            }
        }
        if opts.opt_ilike.is_some()
            || opts.opt_except.is_some()
            || opts.opt_replace.is_some()
            || opts.opt_rename.is_some()
            || opts.opt_alias.is_some()
        {
            return Err(self.unsupported_at(span, "ILIKE, EXCEPT, REPLACE and RENAME after '*'"));
        }
        let mut excluded: Vec<String> = Vec::new();
        if let Some(ex) = &opts.opt_exclude {
            let names: Vec<&ast::ObjectName> = match ex {
                ast::ExcludeSelectItem::Single(n) => vec![n],
                ast::ExcludeSelectItem::Multiple(list) => list.iter().collect(),
            };
            for n in names {
                let last =
                    n.0.last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.clone())
                        .unwrap_or_default();
                match resolve(&scope.schema, &last) {
                    Ok(Some(actual)) => excluded.push(actual),
                    Ok(None) => {
                        let available = columns(scope);
                        return Err(at(
                            self.sql,
                            n.span(),
                            Error::UnknownColumn {
                                close: crate::error::close_names(&last, available.iter().cloned()),
                                column: last,
                                available,
                            },
                        ));
                    }
                    Err(p) => return Err(at(self.sql, n.span(), p)),
                }
            }
        }
        for name in columns(scope) {
            if excluded.contains(&name) {
                continue;
            }
            items.push(Item {
                expr: Expr::Column(name.clone()),
                seen: vec![(name.clone(), span)],
                name,
                span,
                computed: false,
            });
        }
        Ok(())
    }

    /// What an ORDER BY term sorts on.
    fn order_target(
        &self,
        e: &Ast,
        scope: &Scope,
        aliases: &[Alias],
        calls: &mut Calls,
        items: &[Item],
    ) -> Result<SortTarget> {
        if let Some(p) = position(e) {
            return Ok(SortTarget::Item(self.position(
                p,
                items.len(),
                "ORDER BY",
                e,
            )?));
        }
        if let Ast::Identifier(id) = e {
            // An output name first (DuckDB binds ORDER BY names to the select list).
            let found = items.iter().position(|i| i.name == id.value).or_else(|| {
                items
                    .iter()
                    .position(|i| i.name.eq_ignore_ascii_case(&id.value))
            });
            if let Some(i) = found {
                return Ok(SortTarget::Item(i));
            }
        }
        let mut p =
            ExprPlanner::new(self.sql, scope, aliases, calls, "ORDER BY").with_calls(true, true);
        let expr = p.plan(e)?;
        if let Some(i) = items.iter().position(|i| i.expr == expr) {
            return Ok(SortTarget::Item(i));
        }
        Ok(SortTarget::Hidden(expr, p.seen, e.span()))
    }

    /// A GROUP BY term and its key name.
    fn group_key(
        &self,
        g: &Ast,
        scope: &Scope,
        aliases: &[Alias],
        calls: &mut Calls,
        items: &[Item],
    ) -> Result<(Expr, String)> {
        let not_here = || {
            at(
                self.sql,
                g.span(),
                SqlProblem::NotAllowedHere {
                    what: "aggregate and window functions",
                    place: "GROUP BY",
                },
            )
        };
        if let Some(p) = position(g) {
            let item = &items[self.position(p, items.len(), "GROUP BY", g)?];
            if item.computed {
                return Err(not_here());
            }
            return Ok((item.expr.clone(), key_name(&item.expr, &item.name)));
        }
        let mut p = ExprPlanner::new(self.sql, scope, aliases, calls, "GROUP BY");
        let expr = p.plan(g)?;
        let name = match (&expr, g) {
            (Expr::Column(c), _) => c.clone(),
            (_, Ast::Identifier(id)) => id.value.clone(),
            _ => super::name::render(self.sql, g),
        };
        Ok((expr, name))
    }

    fn filter(
        &self,
        plan: LogicalPlan,
        predicate: Expr,
        span: SqlSpan,
        clause: &'static str,
    ) -> Result<LogicalPlan> {
        let schema: SchemaRef = plan.schema()?;
        let t = predicate
            .data_type(&schema)
            .map_err(|e| at(self.sql, span, e))?;
        if !matches!(t, DataType::Boolean | DataType::Null) {
            return Err(at(
                self.sql,
                span,
                Error::FrameType {
                    op: clause.into(),
                    reason: format!(
                        "the condition {predicate} is {}, not BOOLEAN",
                        crate::storage::type_name(&t)
                    ),
                },
            ));
        }
        Ok(LogicalPlan::Filter {
            input: Box::new(plan),
            predicate,
        })
    }
}

/// The operands of the unions nested to the left of `body` that one union (a
/// distinct one when `distinct`) can read at once: `UNION ALL`s, and under a
/// distinct union any plain union too.
fn union_operands<'b>(body: &'b SetExpr, distinct: bool, out: &mut Vec<&'b SetExpr>) {
    match body {
        SetExpr::SetOperation {
            left,
            op: ast::SetOperator::Union,
            set_quantifier:
                q @ (ast::SetQuantifier::All | ast::SetQuantifier::Distinct | ast::SetQuantifier::None),
            right,
        } if distinct || matches!(q, ast::SetQuantifier::All) => {
            union_operands(left, distinct, out);
            out.push(right);
        }
        other => out.push(other),
    }
}

/// An integer constant used as a position (`ORDER BY 2`, `GROUP BY 1`).
fn position(e: &Ast) -> Option<u64> {
    match e {
        Ast::Value(v) => match &v.value {
            Value::Number(n, _) if n.bytes().all(|b| b.is_ascii_digit()) => {
                Some(n.parse().unwrap_or(u64::MAX))
            }
            _ => None,
        },
        _ => None,
    }
}

/// A key's name in the aggregate's output: the column's own name for a column.
fn key_name(e: &Expr, item_name: &str) -> String {
    match e {
        Expr::Column(c) => c.clone(),
        _ => item_name.to_string(),
    }
}

/// Adds a key unless an equal one is there; a name already taken gets a suffix.
fn add_key(keys: &mut Vec<(Expr, String, SqlSpan)>, e: Expr, name: String, span: SqlSpan) {
    if keys.iter().any(|(k, _, _)| *k == e) {
        return;
    }
    let mut unique = name.clone();
    let mut n = 1;
    while keys.iter().any(|(_, k, _)| *k == unique) {
        n += 1;
        unique = format!("{name}_{n}");
    }
    keys.push((e, unique, span));
}

/// Rewrites expressions over a SELECT's input into expressions over its
/// aggregate's output.
struct Grouping<'a> {
    sql: &'a str,
    keys: &'a [(Expr, String, SqlSpan)],
    outputs: &'a [String],
}

impl Grouping<'_> {
    fn rewrite(&self, e: &Expr, seen: &[(String, SqlSpan)]) -> Result<Expr> {
        if let Some((_, name, _)) = self.keys.iter().find(|(k, _, _)| k == e) {
            return Ok(Expr::Column(name.clone()));
        }
        match e {
            Expr::Column(c) if self.outputs.contains(c) => Ok(e.clone()),
            Expr::Column(c) => {
                let span = seen
                    .iter()
                    .find(|(n, _)| n == c)
                    .map_or(SqlSpan::empty(), |(_, s)| *s);
                Err(at(
                    self.sql,
                    span,
                    SqlProblem::NotGrouped { column: c.clone() },
                ))
            }
            // Literals and uncorrelated subqueries read none of the SELECT's
            // columns; the rest is rewritten child by child.
            _ => e.map_children(&mut |x| self.rewrite(x, seen)),
        }
    }
}
