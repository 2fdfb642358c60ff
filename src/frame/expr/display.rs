//! The SQL text of an expression, as DuckDB names result columns: every binary
//! operation parenthesized (`((v1 > 5) AND (v2 < 3))`), negation as `(-(x))`,
//! `LIKE` as `~~`. It is a name, not a parser's input: Python's and DuckDB's `//`
//! print alike.

use std::fmt::{self, Display, Formatter, Write};

use arrow::datatypes::{DataType, TimeUnit};

use super::{Expr, Literal};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(name) => write_identifier(f, name),
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::Negative(e) => match &**e {
                // DuckDB folds the sign into a numeric constant.
                Expr::Literal(Literal::Int64(_) | Literal::Float64(_)) => write!(f, "-{e}"),
                _ => write!(f, "(-({e}))"),
            },
            Expr::IsNull(e) => write!(f, "({e} IS NULL)"),
            Expr::IsNotNull(e) => write!(f, "({e} IS NOT NULL)"),
            Expr::Cast { expr, to, try_cast } => {
                let name = if *try_cast { "TRY_CAST" } else { "CAST" };
                write!(f, "{name}({expr} AS {})", sql_type(&to.0))
            }
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => {
                f.write_str("CASE ")?;
                for (when, then) in when_then {
                    match operand {
                        Some(o) => write!(f, " WHEN (({o} = {when})) THEN ({then})")?,
                        None => write!(f, " WHEN ({when}) THEN ({then})")?,
                    }
                }
                match otherwise {
                    Some(e) => write!(f, " ELSE {e} END"),
                    None => f.write_str(" ELSE NULL END"),
                }
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                if *negated {
                    f.write_str("(NOT ")?;
                }
                write!(f, "({expr} IN (")?;
                write_list(f, list)?;
                f.write_str("))")?;
                if *negated {
                    f.write_char(')')?;
                }
                Ok(())
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => match negated {
                false => write!(f, "({expr} BETWEEN {low} AND {high})"),
                true => write!(f, "(NOT ({expr} BETWEEN {low} AND {high}))"),
            },
            Expr::Like {
                expr,
                pattern,
                case_insensitive,
                negated,
            } => {
                let op = match (negated, case_insensitive) {
                    (false, false) => "~~",
                    (false, true) => "~~*",
                    (true, false) => "!~~",
                    (true, true) => "!~~*",
                };
                write!(f, "({expr} {op} {pattern})")
            }
            Expr::Function { name, args } => {
                let name = name.to_ascii_lowercase();
                // DuckDB prints its special forms in capitals.
                match name.as_str() {
                    "coalesce" => f.write_str("COALESCE")?,
                    _ => f.write_str(&name)?,
                }
                f.write_char('(')?;
                write_list(f, args)?;
                f.write_char(')')
            }
            Expr::ScalarSubquery(s) => write!(f, "({})", s.text),
            // DuckDB rewrites `x IN (SELECT ..)` as a comparison with ANY.
            Expr::InSubquery {
                expr,
                subquery,
                negated,
            } => match negated {
                false => write!(f, "({expr} = ANY({}))", subquery.text),
                true => write!(f, "(NOT ({expr} = ANY({})))", subquery.text),
            },
        }
    }
}

fn write_list(f: &mut Formatter<'_>, list: &[Expr]) -> fmt::Result {
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

/// A column name as DuckDB prints it: bare when it is a plain identifier, else in
/// double quotes (doubled inside).
fn write_identifier(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if plain {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('"', "\"\""))
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Int64(v) => write!(f, "{v}"),
            Literal::UInt64(v) => write!(f, "{v}"),
            Literal::Float64(v) => write!(f, "{v:?}"),
            Literal::Utf8(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Date32(d) => {
                let (y, m, day) = super::temporal::civil_from_days(i64::from(*d));
                write!(f, "CAST('{y:04}-{m:02}-{day:02}' AS DATE)")
            }
            Literal::TimestampMicros(us) => {
                let days = us.div_euclid(86_400_000_000);
                let rest = us.rem_euclid(86_400_000_000);
                let (y, m, d) = super::temporal::civil_from_days(days);
                let (s, frac) = (rest / 1_000_000, rest % 1_000_000);
                write!(
                    f,
                    "CAST('{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                )?;
                if frac != 0 {
                    write!(f, ".{frac:06}")?;
                }
                f.write_str("' AS TIMESTAMP)")
            }
            Literal::IntervalDays(d) => write!(f, "INTERVAL '{d} days'"),
            Literal::Interval {
                months,
                days,
                nanos,
            } => {
                let mut parts = Vec::new();
                if *months != 0 {
                    parts.push(format!("{months} months"));
                }
                if *days != 0 {
                    parts.push(format!("{days} days"));
                }
                if *nanos != 0 || parts.is_empty() {
                    parts.push(format!("{} microseconds", *nanos as f64 / 1e3));
                }
                write!(f, "INTERVAL '{}'", parts.join(" "))
            }
        }
    }
}

/// The SQL name of an Arrow type, as DuckDB spells it in `CAST`.
pub(super) fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(unit, tz) => {
            let base = match unit {
                TimeUnit::Second => "TIMESTAMP_S",
                TimeUnit::Millisecond => "TIMESTAMP_MS",
                TimeUnit::Microsecond => "TIMESTAMP",
                TimeUnit::Nanosecond => "TIMESTAMP_NS",
            };
            match tz {
                Some(_) => format!("{base} WITH TIME ZONE"),
                None => base.into(),
            }
        }
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        other => other.to_string(),
    }
}
