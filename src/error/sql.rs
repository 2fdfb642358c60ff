//! What is wrong with a SQL query that the layers below cannot name:
//! [`SqlProblem`], a value with fields whose message is made here by `Display` and
//! nowhere else. The SQL front end places it at its line and column
//! ([`Error::InExpression`](super::Error::InExpression) around
//! [`Error::Sql`](super::Error::Sql)).

use std::fmt;

/// A problem with a query that the layers below cannot name.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SqlProblem {
    /// The parser's complaint: what it expected and what it found.
    Syntax {
        /// `an expression`, `end of statement`, ...
        expected: String,
        /// The token found, or `the end of the query`.
        found: String,
    },
    /// A syntax error the parser words otherwise (an unterminated string).
    SyntaxOther {
        /// The parser's message, without its place.
        message: String,
    },
    /// More nesting than the parser or the planner follows.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Nothing but whitespace, comments or semicolons.
    Empty,
    /// More than one statement.
    SeveralStatements {
        /// How many.
        count: usize,
    },
    /// A statement that is not a query.
    NotAQuery {
        /// Its first keyword(s).
        kind: String,
    },
    /// A construct of SQL the planner does not handle (yet).
    Unsupported {
        /// The construct: `JOIN`, `UNION`, `a window frame`.
        construct: String,
        /// Advice, starting with "; " (or empty).
        hint: String,
    },
    /// A function that is neither a scalar function, an aggregate nor a window function.
    UnknownFunction {
        /// The name as written.
        name: String,
        /// Known names close to it.
        close: Vec<String>,
    },
    /// `t.col` where no table in FROM is called `t`.
    UnknownTable {
        /// The qualifier.
        name: String,
        /// The names the FROM clause gives.
        known: Vec<String>,
    },
    /// A column outside the GROUP BY keys and outside any aggregate.
    NotGrouped {
        /// The column.
        column: String,
    },
    /// An aggregate or a window function where none may be.
    NotAllowedHere {
        /// `aggregate functions`, `window functions`.
        what: &'static str,
        /// `WHERE`, `GROUP BY`, `an aggregate's arguments`.
        place: &'static str,
    },
    /// A wrong argument of a function or table function.
    BadArgument {
        /// The function.
        function: String,
        /// What is wrong, with the values given.
        reason: String,
    },
    /// `ORDER BY 3` or `GROUP BY 0` outside the select list.
    PositionOutOfRange {
        /// `ORDER BY` or `GROUP BY`.
        clause: &'static str,
        /// The position given.
        position: String,
        /// The select list's length.
        count: usize,
    },
    /// A LIMIT or OFFSET that is not a non-negative integer constant.
    BadLimit {
        /// `LIMIT` or `OFFSET`.
        clause: &'static str,
        /// The value as written.
        value: String,
    },
    /// A literal that does not hold a value of its type.
    BadLiteral {
        /// `DATE`, `TIMESTAMP`, `INTERVAL`, `number`.
        kind: String,
        /// The literal's text.
        value: String,
    },
    /// A type name that DuckDB has and blockwise does not convert to.
    UnknownType {
        /// The type as written.
        name: String,
    },
    /// A name in FROM that is neither a file, a CTE nor a table function.
    UnknownRelation {
        /// The name.
        name: String,
        /// The CTEs in scope.
        ctes: Vec<String>,
    },
    /// A table alias's column list of the wrong length.
    AliasColumns {
        /// The alias.
        alias: String,
        /// Names given.
        given: usize,
        /// Columns of the relation.
        columns: usize,
    },
    /// An ORDER BY term of a SELECT DISTINCT that is not an output column.
    DistinctOrderBy,
    /// A column name that more than one column matches (differing in case only).
    AmbiguousColumn {
        /// The name as written.
        name: String,
        /// The columns it matches.
        matches: Vec<String>,
    },
    /// A CTE name defined twice in one WITH.
    DuplicateCte {
        /// The name.
        name: String,
    },
    /// A subquery used as a value, or by IN, that returns other than one column.
    SubqueryColumns {
        /// The columns it returns.
        count: usize,
    },
    /// The queries of a UNION return different numbers of columns.
    SetColumns {
        /// `UNION`, `UNION ALL`.
        op: String,
        /// The left query's columns.
        left: usize,
        /// The right query's columns.
        right: usize,
    },
}

impl fmt::Display for SqlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SqlProblem as P;
        match self {
            P::Syntax { expected, found } => {
                write!(f, "syntax error: expected {expected}, found {found}")
            }
            P::SyntaxOther { message } => write!(f, "syntax error: {message}"),
            P::TooDeep { limit } => write!(
                f,
                "the query is nested too deeply: more than {limit} levels of \
                 brackets, operators or subqueries"
            ),
            P::Empty => f.write_str("the query is empty: expected a SELECT statement"),
            P::SeveralStatements { count } => write!(
                f,
                "expected one statement, found {count}; run them one at a time"
            ),
            P::NotAQuery { kind } => write!(
                f,
                "{kind} is not supported: only queries (SELECT, WITH, FROM ...) are"
            ),
            P::Unsupported { construct, hint } => {
                write!(f, "{construct} is not supported yet{hint}")
            }
            P::UnknownFunction { name, close } => {
                write!(f, "unknown function \"{name}\"")?;
                match close.as_slice() {
                    [] => Ok(()),
                    close => write!(f, "; did you mean {}?", close.join(", ")),
                }
            }
            P::UnknownTable { name, known } => {
                write!(f, "table \"{name}\" is not in the FROM clause")?;
                match known.as_slice() {
                    [] => Ok(()),
                    known => write!(f, " (it names {})", quote_all(known)),
                }
            }
            P::NotGrouped { column } => write!(
                f,
                "column \"{column}\" must appear in the GROUP BY clause or be used in an \
                 aggregate function"
            ),
            P::NotAllowedHere { what, place } => write!(f, "{what} are not allowed in {place}"),
            P::BadArgument { function, reason } => write!(f, "{function}: {reason}"),
            P::PositionOutOfRange {
                clause,
                position,
                count,
            } => write!(
                f,
                "{clause} position {position} is not in the select list (1 to {count})"
            ),
            P::BadLimit { clause, value } => write!(
                f,
                "{clause} must be a non-negative integer constant, not {value}"
            ),
            P::BadLiteral { kind, value } => write!(f, "{value} is not a valid {kind}"),
            P::UnknownType { name } => write!(f, "type {name} is not supported"),
            P::UnknownRelation { name, ctes } => {
                write!(
                    f,
                    "\"{name}\" is not a file, a CTE or a table function; \
                     a file is named in single quotes ('{name}.csv')"
                )?;
                match ctes.as_slice() {
                    [] => Ok(()),
                    ctes => write!(f, "; the CTEs are {}", quote_all(ctes)),
                }
            }
            P::AliasColumns {
                alias,
                given,
                columns,
            } => write!(
                f,
                "table alias {alias} names {given} columns, but the table has {columns}"
            ),
            P::DistinctOrderBy => f.write_str(
                "with SELECT DISTINCT, ORDER BY expressions must appear in the select list",
            ),
            P::AmbiguousColumn { name, matches } => write!(
                f,
                "column name \"{name}\" is ambiguous: it matches {}",
                quote_all(matches)
            ),
            P::DuplicateCte { name } => {
                write!(f, "the WITH clause defines \"{name}\" more than once")
            }
            // DuckDB's words.
            P::SubqueryColumns { count } => {
                write!(f, "subquery returns {count} columns - expected 1")
            }
            P::SetColumns { op, left, right } => write!(
                f,
                "set operations can only apply to expressions with the same number of result \
                 columns ({op} of {left} and {right} columns)"
            ),
        }
    }
}

impl std::error::Error for SqlProblem {}

fn quote_all(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
