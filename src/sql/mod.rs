//! SQL in DuckDB's dialect, planned as a frame [`LogicalPlan`]: the SQL front end.
//!
//! [`plan_query`] (or a [`SqlPlanner`], to read relative paths from a directory)
//! parses one query with sqlparser's DuckDB dialect and plans it; files named in
//! it are opened for their schemas, so an unknown column or a missing file is an
//! error here, before anything runs. It does not execute: the plan goes to the
//! frame's physical planner.
//!
//! The module holds the entry points and the parse (here), the FROM clause
//! (`from`), the query and its SELECT (`query`), expressions (`expr`), result
//! column names as DuckDB gives them (`name`) and the errors (`error`).
//!
//! # Supported
//! - `SELECT [DISTINCT]` expressions with aliases, `*` and `t.*` (with `EXCLUDE
//!   (..)`), expanded from the input's schema; `FROM t SELECT ..` and `FROM t`.
//! - `FROM` one relation: a file in single quotes (`'data.csv'`, `'t.parquet'`,
//!   `'t.arrow'`, a directory of Parquet parts, `'dir/*.parquet'` read as the
//!   directory), a double-quoted or bare name holding a `.` or `/` that is a file,
//!   `read_csv` / `read_csv_auto` (`delim`/`sep`, `header=true`, `auto_detect=true`,
//!   `sample_size`), `read_parquet` / `parquet_scan`, `read_arrow`, a CTE, a
//!   subquery in brackets; each with an alias and an alias column list (`t(a, b)`);
//!   `t.col` checks `t` against the alias, else the CTE's or function's name, else
//!   the file's stem.
//! - `WHERE`; `GROUP BY` names (input columns first, then select aliases),
//!   positions, expressions, `GROUP BY ALL`; `HAVING`; aggregates `count(*)`,
//!   `count(x)`, `count(DISTINCT x)`, `sum`, `avg`/`mean`, `min`, `max`, `median`,
//!   `quantile_cont(x, q)`, `quantile_disc(x, q)` and `quantile(x, q)` (DuckDB's
//!   is discrete: an input value, of the input's type), `stddev`/`stddev_samp`, `stddev_pop`,
//!   `variance`/`var_samp`, `var_pop`, `corr`, `covar_samp`, `covar_pop`,
//!   `bool_or`/`any`, `bool_and`/`every`, with expressions as arguments and
//!   expressions of aggregates around them; a column neither grouped nor aggregated
//!   is refused as DuckDB refuses it.
//! - `row_number()`, `rank()`, `dense_rank()` `OVER (PARTITION BY .. ORDER BY ..)`,
//!   and `QUALIFY`.
//! - `ORDER BY` output names, positions, aliases, expressions (also of columns or
//!   aggregates not selected), `ORDER BY ALL`, `ASC`/`DESC`, `NULLS FIRST/LAST`
//!   (DuckDB 2.0's default: nulls last in both directions); `LIMIT`, `OFFSET`.
//! - `WITH` (CTEs, inlined at each use; a CTE's column list), subqueries in FROM.
//! - Uncorrelated subqueries in expressions of the select list, WHERE and HAVING:
//!   scalar (`v1 > (SELECT avg(v1) FROM t)`: NULL for no row, an error at run time
//!   for more than one, as DuckDB 2.0) and `x [NOT] IN (SELECT ..)` (with SQL's
//!   NULL rules; the values are held in memory, reserved on the pool). Each is
//!   listed once in the plan's `WithSubqueries` and runs before what reads it.
//! - `UNION ALL` and `UNION` of any number of queries (a query in brackets may
//!   have its own ORDER BY and LIMIT); columns by position, named by the first
//!   query, of the type DuckDB unifies them to (the wider number; VARCHAR when
//!   either is a string); ORDER BY, LIMIT and OFFSET after the last query apply
//!   to the whole union.
//! - Expressions: arithmetic, `%`, `//` (DuckDB's: truncating), `^` and `**`
//!   (power), `||`, comparisons, `AND`/`OR`/`NOT`, `IS [NOT] NULL`, `[NOT] IN
//!   (list)`, `[NOT] BETWEEN`, `[NOT] LIKE`/`ILIKE`, `CASE`, `CAST`/`TRY_CAST`/`::`
//!   to BOOLEAN, TINYINT .. BIGINT, UTINYINT .. UBIGINT, FLOAT/REAL, DOUBLE,
//!   VARCHAR/TEXT/STRING, DATE, TIMESTAMP; literals (numbers, strings, `DATE '..'`,
//!   `TIMESTAMP '..'`, `INTERVAL '3 days'`, `INTERVAL 3 DAY`, booleans, NULL);
//!   `EXTRACT(part FROM x)`, `SUBSTRING(x FROM a FOR b)`, `TRIM`; the scalar
//!   functions of [`function_names`](crate::frame::expr::function_names).
//! - Lateral aliases: a select alias used in WHERE, GROUP BY, HAVING, QUALIFY,
//!   ORDER BY or a later select item where no column has its name.
//!
//! # Not supported (an error saying so, at the construct's line and column)
//! JOIN and lists of tables; EXCEPT, INTERSECT, UNION BY NAME; VALUES; a SELECT without
//! FROM; correlated subqueries, `EXISTS`, subqueries in GROUP BY, ORDER BY and
//! QUALIFY; window frames, named
//! windows, window functions other than the three, aggregates over windows;
//! `FILTER (WHERE ..)`; `DISTINCT` in aggregates other than count (min, max,
//! bool_or and bool_and ignore it); lists of quantiles (`quantile_disc(x, [0.5,
//! 0.9])`), quantiles of strings and dates, and the other DuckDB aggregates
//! (`mode`, `first`, `string_agg`, ..);
//! `DISTINCT ON`; ROLLUP, CUBE, GROUPING SETS; `SELECT * REPLACE/RENAME`; `IS
//! [NOT] DISTINCT FROM`, `IS TRUE`; globs other than `dir/*.parquet` and `dir/*`;
//! `read_csv(header=false)` and options beyond those above; `WITH RECURSIVE`;
//! statements other than queries, and more than one statement.
//!
//! # Differences from DuckDB
//! Names are DuckDB's, but a CAST's type is printed in DuckDB's canonical capitals
//! (`CAST(v1 AS DOUBLE)` where DuckDB echoes `double` as written). Types are
//! blockwise's: a decimal literal (`1.5`) is a DOUBLE, integer literals and sums
//! of integers are BIGINT (DuckDB: INTEGER, HUGEINT). With SELECT DISTINCT,
//! ORDER BY must name output columns (DuckDB also takes other columns). A
//! subquery's column is named by its text as written (DuckDB prints it again:
//! `(SELECT avg(i) FROM x."csv")`, and `x IN (..)` as `(x = ANY(..))`).

mod error;
mod expr;
mod from;
mod keywords;
mod name;
mod query;
#[cfg(test)]
mod result_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use sqlparser::ast::{Spanned, Statement};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};
use crate::frame::logical::LogicalPlan;
use error::{at, from_parser, SqlProblem};
use query::QueryPlanner;

/// The deepest nesting of brackets and subqueries the parser follows.
pub(crate) const MAX_DEPTH: usize = 50;

/// The most tokens a query may have: a chain of operators is as deep as it is
/// long, and a tree that deep is walked recursively by the parser's helpers.
const MAX_TOKENS: usize = 100_000;

/// The planner's stack: deep enough for [`MAX_TOKENS`] worth of operator chain.
const STACK_BYTES: usize = 256 << 20;

/// Plans one SQL query, reading relative paths from the working directory.
///
/// # Errors
/// See [`SqlPlanner::plan`].
///
/// # Examples
/// ```no_run
/// let plan = blockwise::sql::plan_query(
///     "SELECT id1, sum(v1) AS v1 FROM 'x.csv' GROUP BY id1 ORDER BY v1 DESC LIMIT 3",
/// )?;
/// let schema = plan.schema()?;
/// assert_eq!(schema.field(1).name(), "v1");
/// # Ok::<(), blockwise::Error>(())
/// ```
pub fn plan_query(sql: &str) -> Result<LogicalPlan> {
    SqlPlanner::new().plan(sql)
}

/// Plans SQL queries; a builder for where relative paths are read from.
#[derive(Debug, Clone, Default)]
pub struct SqlPlanner {
    base_dir: Option<PathBuf>,
}

impl SqlPlanner {
    /// A planner reading relative paths from the working directory.
    pub fn new() -> Self {
        SqlPlanner::default()
    }

    /// Reads the relative paths in FROM from `dir`.
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// The plan of `sql`, one query (a trailing `;` allowed).
    ///
    /// # Errors
    /// Each placed at its line and column of `sql`, with a caret line
    /// ([`Error::InExpression`] around the error): a syntax error (what was
    /// expected and found), an unsupported construct (named), an unknown column
    /// ([`Error::UnknownColumn`], with close names), table or function (with close
    /// names), a type mismatch ([`Error::FrameType`], naming both types), a column
    /// neither grouped nor aggregated, a missing or unreadable file (the error of
    /// opening it, naming the path). An empty text, several statements and a
    /// statement that is not a query are refused too.
    ///
    /// # Panics
    /// Never on any input; a planner bug surfaces as [`Error::Bug`].
    pub fn plan(&self, sql: &str) -> Result<LogicalPlan> {
        let sql_owned = sql.to_string();
        let base = self.base_dir.clone();
        // Deep operator chains are walked recursively (by sqlparser's span and
        // drop too), so planning runs on a stack sized for the longest query.
        let worker = std::thread::Builder::new()
            .name("sql-planner".into())
            .stack_size(STACK_BYTES)
            .spawn(move || plan_here(&sql_owned, base.as_deref()));
        match worker {
            Ok(handle) => handle.join().unwrap_or_else(|panic| {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(Error::Bug {
                    what: "the SQL planner panicked",
                    detail,
                })
            }),
            // No thread to be had: plan on this one.
            Err(_) => plan_here(sql, self.base_dir.as_deref()),
        }
    }
}

fn plan_here(sql: &str, base_dir: Option<&Path>) -> Result<LogicalPlan> {
    let statement = parse(sql)?;
    let Statement::Query(q) = &statement else {
        let kind: String = statement
            .to_string()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        return Err(at(sql, statement.span(), SqlProblem::NotAQuery { kind }));
    };
    let subqueries = std::cell::RefCell::new(Vec::new());
    let mut planner = QueryPlanner {
        sql,
        base_dir,
        subqueries: &subqueries,
    };
    let plan = planner.query(q, &[])?;
    let subqueries = subqueries.into_inner();
    let plan = if subqueries.is_empty() {
        plan
    } else {
        LogicalPlan::WithSubqueries {
            input: Box::new(plan),
            subqueries,
        }
    };
    // Every node checked once more as a whole: nothing should fail here that did
    // not fail at its place above.
    plan.schema()?;
    Ok(plan)
}

/// The one statement of `sql`.
fn parse(sql: &str) -> Result<Statement> {
    let dialect = DuckDbDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| from_parser(sql, e.into()))?;
    if tokens.len() > MAX_TOKENS {
        return Err(SqlProblem::Unsupported {
            construct: format!("a query of more than {MAX_TOKENS} tokens"),
            hint: String::new(),
        }
        .into());
    }
    let tokens = power_operator(tokens);
    let statements = Parser::new(&dialect)
        .with_recursion_limit(MAX_DEPTH)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| from_parser(sql, e))?;
    let mut statements = statements.into_iter();
    let Some(first) = statements.next() else {
        return Err(SqlProblem::Empty.into());
    };
    if let Some(second) = statements.next() {
        return Err(at(
            sql,
            second.span(),
            SqlProblem::SeveralStatements {
                count: 2 + statements.count(),
            },
        ));
    }
    Ok(first)
}

/// DuckDB's `**` (power), which sqlparser reads as two `*`, as its `^`: two `*`
/// with nothing between them become one `^` token.
fn power_operator(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if let (Token::Mul, Some(prev)) = (&t.token, out.last_mut()) {
            if prev.token == Token::Mul && prev.span.end == t.span.start {
                prev.token = Token::Caret;
                prev.span.end = t.span.end;
                continue;
            }
        }
        out.push(t);
    }
    out
}
