//! Column expressions over Arrow record batches: the expression layer of the lazy
//! frame API and of the SQL front end.
//!
//! An [`Expr`] is plain data (it travels in plans as JSON). [`Expr::data_type`]
//! checks it against a schema without data; [`Expr::evaluate`] computes it on one
//! record batch; [`Expr::name`] (and `Display`) is its default output name, the
//! SQL text DuckDB would give the column (`(v1 + 1)`, `lower(id1)`).
//!
//! Semantics are DuckDB's (SQL three-valued logic, nulls propagating, `/` always
//! a float division, checked integer overflow), with the pandas/Polars spellings
//! of functions accepted beside the SQL ones. Where the two families differ and
//! both are needed, both exist: [`BinaryOp::FloorDivide`] and
//! [`BinaryOp::FloorModulo`] are Python's `//` and `%`, [`BinaryOp::TruncDivide`]
//! and [`BinaryOp::Modulo`] are DuckDB's.
//!
//! The module holds the types and their builders (here), the SQL text
//! (`display`), the typing rules (`coerce`), evaluation (`eval`, with `value`
//! for constants kept as one-row [`Scalar`](arrow::array::Scalar)s, `arith` for
//! the kernels arrow lacks, `case` for `CASE`, `in_set` for the hash sets of
//! `IN`), the functions (`functions`, `strings`, `temporal`, `math`), and
//! uncorrelated subqueries (`subquery`: what an expression knows of one, and the
//! value a task binds in before evaluating it). It does not plan, optimize or
//! fold constants: that is the frame's and the SQL front end's business.

mod arith;
mod case;
mod coerce;
mod display;
mod eval;
mod functions;
pub mod in_set;
mod math;
mod strings;
pub mod subquery;
mod temporal;
#[cfg(test)]
mod tests;
mod value;

use std::collections::BTreeSet;
use std::str::FromStr;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

use crate::Result;

pub use functions::{function_names, ROW_RANDOM};
pub use subquery::{Subquery, SubqueryEntry, SubqueryKind, SubqueryValue};

/// A column expression: what a frame's `select`, `filter` and `with_columns`
/// compute, and what a SQL `SELECT` list or `WHERE` clause becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// The input column of this name.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// Boolean negation (`NOT x`; NULL stays NULL).
    Not(Box<Expr>),
    /// Arithmetic negation (`-x`; checked for integers).
    Negative(Box<Expr>),
    /// `x IS NULL`: never NULL itself.
    IsNull(Box<Expr>),
    /// `x IS NOT NULL`.
    IsNotNull(Box<Expr>),
    /// `CAST(x AS type)`, or `TRY_CAST` (NULL where a value does not convert).
    Cast {
        /// The value converted.
        expr: Box<Expr>,
        /// The type converted to.
        to: DataTypeName,
        /// NULL for values that do not convert, instead of an error.
        try_cast: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`. Each branch is computed
    /// only on the rows that reach it, so a failing operation in a branch not
    /// taken does not fail the expression.
    Case {
        /// With an operand, each `WHEN` value is compared with it for equality.
        operand: Option<Box<Expr>>,
        /// The `(WHEN, THEN)` pairs, first match wins.
        when_then: Vec<(Expr, Expr)>,
        /// The value where no branch matches (NULL when absent).
        otherwise: Option<Box<Expr>>,
    },
    /// `x [NOT] IN (a, b, ...)`, with SQL's NULL rules.
    InList {
        /// The value looked up.
        expr: Box<Expr>,
        /// The values looked in.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] BETWEEN low AND high` (both bounds included).
    Between {
        /// The value tested.
        expr: Box<Expr>,
        /// The lower bound.
        low: Box<Expr>,
        /// The upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `x [NOT] [I]LIKE pattern`: `%` any run, `_` one character, `\` escapes.
    Like {
        /// The string tested.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// `ILIKE`.
        case_insensitive: bool,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// A function call; names are case-insensitive, SQL and pandas spellings both
    /// accepted (see [`function_names`]).
    Function {
        /// The function's name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `(SELECT ...)`: the one value of an uncorrelated subquery of one column,
    /// NULL when it has no row (more than one row is an error when the value is
    /// bound). Evaluates only once bound ([`subquery`]).
    ScalarSubquery(Box<Subquery>),
    /// `x [NOT] IN (SELECT ...)` over an uncorrelated subquery's one column, with
    /// the NULL rules of `IN (list)`. Evaluates only once bound.
    InSubquery {
        /// The value looked up.
        expr: Box<Expr>,
        /// The subquery whose values are looked in.
        subquery: Box<Subquery>,
        /// `NOT IN`.
        negated: bool,
    },
}

/// A constant in an expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// SQL NULL, of no type until an operation gives it one.
    Null,
    /// `true` or `false`.
    Boolean(bool),
    /// A signed integer.
    Int64(i64),
    /// An unsigned integer larger than `i64::MAX` may need this.
    UInt64(u64),
    /// A float.
    Float64(f64),
    /// A string.
    Utf8(String),
    /// A date, as days since 1970-01-01.
    Date32(i32),
    /// A timestamp without time zone, as microseconds since 1970-01-01 00:00.
    TimestampMicros(i64),
    /// An interval of whole days.
    IntervalDays(i32),
    /// An interval as SQL has it: months, days and nanoseconds, kept apart because
    /// a month's and a day's lengths depend on the date they are added to.
    Interval {
        /// Months.
        months: i32,
        /// Days.
        days: i32,
        /// Nanoseconds.
        nanos: i64,
    },
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `+` (numbers; a date plus days; a date or timestamp plus an interval).
    Add,
    /// `-` (numbers; date minus date is days; minus days or an interval).
    Subtract,
    /// `*`.
    Multiply,
    /// `/`: always a float division, as DuckDB and pandas (`7 / 2 = 3.5`; a
    /// division by zero gives inf or NaN as IEEE does).
    Divide,
    /// `//` as Python, pandas and Polars: the floor of the quotient (`-7 // 2 =
    /// -4`); an integer division by zero gives NULL.
    FloorDivide,
    /// `//` as DuckDB: integer division truncating toward zero (`-7 // 2 = -3`),
    /// plain division for floats; an integer division by zero gives NULL.
    TruncDivide,
    /// `%` as DuckDB and C: the remainder takes the dividend's sign (`-7 % 2 =
    /// -1`); an integer remainder by zero gives NULL.
    Modulo,
    /// `%` as Python, pandas and Polars: the remainder takes the divisor's sign
    /// (`-7 % 2 = 1`); an integer remainder by zero gives NULL.
    FloorModulo,
    /// `**` / `^` / `pow`: always a float, as DuckDB.
    Power,
    /// `=`.
    Eq,
    /// `!=` / `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `AND`, Kleene's (`NULL AND false` is false).
    And,
    /// `OR`, Kleene's (`NULL OR true` is true).
    Or,
    /// `||`: string concatenation (non-strings are cast; NULL gives NULL).
    Concat,
}

impl BinaryOp {
    /// The operator's SQL spelling, as DuckDB prints it in column names.
    pub fn symbol(self) -> &'static str {
        use BinaryOp as B;
        match self {
            B::Add => "+",
            B::Subtract => "-",
            B::Multiply => "*",
            B::Divide => "/",
            B::FloorDivide | B::TruncDivide => "//",
            B::Modulo | B::FloorModulo => "%",
            B::Power => "**",
            B::Eq => "=",
            B::NotEq => "!=",
            B::Lt => "<",
            B::LtEq => "<=",
            B::Gt => ">",
            B::GtEq => ">=",
            B::And => "AND",
            B::Or => "OR",
            B::Concat => "||",
        }
    }

    /// Whether the operator compares its operands (and gives a boolean).
    pub fn is_comparison(self) -> bool {
        use BinaryOp as B;
        matches!(self, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq)
    }
}

/// An Arrow type that serializes as its text (`Int64`, `Timestamp(µs, "UTC")`),
/// so that plans holding casts stay JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTypeName(pub DataType);

impl Serialize for DataTypeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for DataTypeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DataType::from_str(&text)
            .map(DataTypeName)
            .map_err(|e| serde::de::Error::custom(format!("type {text:?}: {e}")))
    }
}

impl From<DataType> for DataTypeName {
    fn from(t: DataType) -> Self {
        DataTypeName(t)
    }
}

impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Literal::Boolean(v)
    }
}
impl From<i32> for Literal {
    fn from(v: i32) -> Self {
        Literal::Int64(v.into())
    }
}
impl From<i64> for Literal {
    fn from(v: i64) -> Self {
        Literal::Int64(v)
    }
}
impl From<u64> for Literal {
    fn from(v: u64) -> Self {
        // The signed literal when it fits, so `x + 1u64` types as `x + 1`.
        i64::try_from(v).map_or(Literal::UInt64(v), Literal::Int64)
    }
}
impl From<f64> for Literal {
    fn from(v: f64) -> Self {
        Literal::Float64(v)
    }
}
impl From<&str> for Literal {
    fn from(v: &str) -> Self {
        Literal::Utf8(v.into())
    }
}
impl From<String> for Literal {
    fn from(v: String) -> Self {
        Literal::Utf8(v)
    }
}
impl<T: Into<Literal>> From<Option<T>> for Literal {
    fn from(v: Option<T>) -> Self {
        v.map_or(Literal::Null, Into::into)
    }
}

impl Expr {
    /// The input column `name`.
    pub fn col(name: &str) -> Expr {
        Expr::Column(name.into())
    }

    /// A constant: `Expr::lit(5)`, `Expr::lit("a")`, `Expr::lit(None::<i64>)`.
    pub fn lit(v: impl Into<Literal>) -> Expr {
        Expr::Literal(v.into())
    }

    /// A call of function `name` (case-insensitive) with `args`.
    pub fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Function {
            name: name.into(),
            args,
        }
    }

    /// `self op other`.
    pub fn binary(self, op: BinaryOp, other: Expr) -> Expr {
        Expr::Binary {
            op,
            left: Box::new(self),
            right: Box::new(other),
        }
    }

    /// `self + other`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Add, other)
    }
    /// `self - other`.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Subtract, other)
    }
    /// `self * other`.
    #[allow(clippy::should_implement_trait)]
    pub fn mul(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Multiply, other)
    }
    /// `self / other` (a float division).
    #[allow(clippy::should_implement_trait)]
    pub fn div(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Divide, other)
    }
    /// `self // other`, Python's floor division.
    pub fn floor_div(self, other: Expr) -> Expr {
        self.binary(BinaryOp::FloorDivide, other)
    }
    /// `self % other`, DuckDB's remainder (the dividend's sign).
    pub fn modulo(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Modulo, other)
    }
    /// `self ** other`.
    pub fn pow(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Power, other)
    }
    /// `self = other`.
    pub fn eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Eq, other)
    }
    /// `self != other`.
    pub fn not_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::NotEq, other)
    }
    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Lt, other)
    }
    /// `self <= other`.
    pub fn lt_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::LtEq, other)
    }
    /// `self > other`.
    pub fn gt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Gt, other)
    }
    /// `self >= other`.
    pub fn gt_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::GtEq, other)
    }
    /// `self AND other`.
    pub fn and(self, other: Expr) -> Expr {
        self.binary(BinaryOp::And, other)
    }
    /// `self OR other`.
    pub fn or(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Or, other)
    }
    /// `NOT self`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
    /// `-self`.
    #[allow(clippy::should_implement_trait)]
    pub fn neg(self) -> Expr {
        Expr::Negative(Box::new(self))
    }
    /// `self IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    /// `self IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }
    /// `CAST(self AS to)`.
    pub fn cast(self, to: DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            to: DataTypeName(to),
            try_cast: false,
        }
    }
    /// `TRY_CAST(self AS to)`.
    pub fn try_cast(self, to: DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            to: DataTypeName(to),
            try_cast: true,
        }
    }
    /// `self IN (list)`.
    pub fn in_list(self, list: Vec<Expr>) -> Expr {
        Expr::InList {
            expr: Box::new(self),
            list,
            negated: false,
        }
    }
    /// `self BETWEEN low AND high`.
    pub fn between(self, low: Expr, high: Expr) -> Expr {
        Expr::Between {
            expr: Box::new(self),
            low: Box::new(low),
            high: Box::new(high),
            negated: false,
        }
    }
    /// `self LIKE pattern`.
    pub fn like(self, pattern: Expr) -> Expr {
        Expr::Like {
            expr: Box::new(self),
            pattern: Box::new(pattern),
            case_insensitive: false,
            negated: false,
        }
    }

    /// The type of the expression's result on input of `schema`, checked without
    /// data.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownColumn`](crate::Error::UnknownColumn) for a column `schema`
    /// lacks (with the close names); [`Error::FrameType`](crate::Error::FrameType)
    /// for operands that do not mix (naming both types), an unknown function, a
    /// wrong number of arguments, an invalid regular expression.
    pub fn data_type(&self, schema: &Schema) -> Result<DataType> {
        coerce::data_type(self, schema)
    }

    /// Adds the names of the columns the expression reads to `out`.
    pub fn columns(&self, out: &mut BTreeSet<String>) {
        match self {
            Expr::Column(name) => {
                out.insert(name.clone());
            }
            Expr::Literal(_) => {}
            _ => self.children().for_each(|c| c.columns(out)),
        }
    }

    /// The expression's direct sub-expressions.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        match self {
            Expr::Column(_) | Expr::Literal(_) => Box::new(std::iter::empty()),
            Expr::Binary { left, right, .. } => Box::new([&**left, &**right].into_iter()),
            Expr::Not(e)
            | Expr::Negative(e)
            | Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::Cast { expr: e, .. } => Box::new(std::iter::once(&**e)),
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => Box::new(
                operand
                    .iter()
                    .map(|e| &**e)
                    .chain(when_then.iter().flat_map(|(w, t)| [w, t]))
                    .chain(otherwise.iter().map(|e| &**e)),
            ),
            Expr::InList { expr, list, .. } => {
                Box::new(std::iter::once(&**expr).chain(list.iter()))
            }
            Expr::Between {
                expr, low, high, ..
            } => Box::new([&**expr, &**low, &**high].into_iter()),
            Expr::Like { expr, pattern, .. } => Box::new([&**expr, &**pattern].into_iter()),
            Expr::Function { args, .. } => Box::new(args.iter()),
            Expr::ScalarSubquery(_) => Box::new(std::iter::empty()),
            Expr::InSubquery { expr, .. } => Box::new(std::iter::once(&**expr)),
        }
    }

    /// The expression with each direct sub-expression replaced by what `f` makes
    /// of it (the rest of the node as it is).
    ///
    /// # Errors
    /// `f`'s.
    pub fn map_children(&self, f: &mut dyn FnMut(&Expr) -> Result<Expr>) -> Result<Expr> {
        let mut b = |e: &Expr| f(e).map(Box::new);
        Ok(match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::ScalarSubquery(_) => self.clone(),
            Expr::Binary { op, left, right } => Expr::Binary {
                op: *op,
                left: b(left)?,
                right: b(right)?,
            },
            Expr::Not(e) => Expr::Not(b(e)?),
            Expr::Negative(e) => Expr::Negative(b(e)?),
            Expr::IsNull(e) => Expr::IsNull(b(e)?),
            Expr::IsNotNull(e) => Expr::IsNotNull(b(e)?),
            Expr::Cast { expr, to, try_cast } => Expr::Cast {
                expr: b(expr)?,
                to: to.clone(),
                try_cast: *try_cast,
            },
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => Expr::Case {
                operand: operand.as_deref().map(&mut b).transpose()?,
                when_then: when_then
                    .iter()
                    .map(|(w, t)| Ok((f(w)?, f(t)?)))
                    .collect::<Result<_>>()?,
                otherwise: otherwise
                    .as_deref()
                    .map(|e| f(e).map(Box::new))
                    .transpose()?,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: b(expr)?,
                list: list.iter().map(&mut *f).collect::<Result<_>>()?,
                negated: *negated,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: b(expr)?,
                low: b(low)?,
                high: b(high)?,
                negated: *negated,
            },
            Expr::Like {
                expr,
                pattern,
                case_insensitive,
                negated,
            } => Expr::Like {
                expr: b(expr)?,
                pattern: b(pattern)?,
                case_insensitive: *case_insensitive,
                negated: *negated,
            },
            Expr::Function { name, args } => Expr::Function {
                name: name.clone(),
                args: args.iter().map(&mut *f).collect::<Result<_>>()?,
            },
            Expr::InSubquery {
                expr,
                subquery,
                negated,
            } => Expr::InSubquery {
                expr: b(expr)?,
                subquery: subquery.clone(),
                negated: *negated,
            },
        })
    }

    /// Adds the subqueries the expression reads to `out`, in order, each with how
    /// it is used.
    pub fn subqueries<'e>(&'e self, out: &mut Vec<(SubqueryKind, &'e Subquery)>) {
        match self {
            Expr::ScalarSubquery(s) => out.push((SubqueryKind::Scalar, s)),
            Expr::InSubquery { expr, subquery, .. } => {
                expr.subqueries(out);
                out.push((SubqueryKind::Set, subquery));
            }
            _ => self.children().for_each(|c| c.subqueries(out)),
        }
    }

    /// The expression with every subquery replaced by what `f` makes of it.
    ///
    /// # Errors
    /// `f`'s.
    pub fn map_subqueries(&self, f: &mut dyn FnMut(&Subquery) -> Result<Subquery>) -> Result<Expr> {
        Ok(match self {
            Expr::ScalarSubquery(s) => Expr::ScalarSubquery(Box::new(f(s)?)),
            Expr::InSubquery {
                expr,
                subquery,
                negated,
            } => Expr::InSubquery {
                expr: Box::new(expr.map_subqueries(f)?),
                subquery: Box::new(f(subquery)?),
                negated: *negated,
            },
            _ => self.map_children(&mut |c| c.map_subqueries(f))?,
        })
    }

    /// Computes the expression on `batch`: an array of `batch.num_rows()` rows,
    /// of the type [`Expr::data_type`] gives for the batch's schema.
    ///
    /// # Errors
    ///
    /// Those of [`Expr::data_type`], and those found in the data: an integer
    /// overflow, a failed `CAST`, a string that is not a date where one is compared
    /// with a date.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
    /// use arrow::datatypes::Int64Type;
    /// use blockwise::frame::expr::Expr;
    ///
    /// let v1 = Arc::new(Int64Array::from(vec![Some(1), None, Some(-7)]));
    /// let batch = RecordBatch::try_from_iter([("v1", v1 as _)])?;
    /// let e = Expr::col("v1").floor_div(Expr::lit(2));
    /// assert_eq!(e.name(), "(v1 // 2)");
    /// let out = e.evaluate(&batch)?;
    /// let out = out.as_primitive::<Int64Type>();
    /// assert_eq!(out.iter().collect::<Vec<_>>(), [Some(0), None, Some(-4)]);
    /// # Ok::<(), blockwise::Error>(())
    /// ```
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        eval::evaluate(self, batch)?.into_array(batch.num_rows())
    }

    /// The type a column of `UNION` takes when its queries give it types `a` and
    /// `b` (DuckDB's rules: the wider number, a string over anything else);
    /// `None` when they do not mix.
    pub fn union_type(a: &DataType, b: &DataType) -> Option<DataType> {
        coerce::union_type(a, b)
    }

    /// The default name of the expression's output column: its SQL text as
    /// DuckDB gives it (`(v1 + 1)`, `lower(id1)`, `v1`).
    pub fn name(&self) -> String {
        self.to_string()
    }
}
