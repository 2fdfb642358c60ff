//! The names DuckDB gives result columns: the SQL text of the expression as its
//! parser prints it back (every binary operation in parentheses, `LIKE` as `~~`,
//! function names in lower case, `count(*)` as `count_star()`, a typed literal as a
//! `CAST`), made here from the query's syntax tree, so that a column's name keeps
//! what was written (`t.v1 + 1` stays `(t.v1 + 1)`, `^` stays `^`) where the
//! planned [`Expr`](crate::frame::expr::Expr) no longer knows it.

use std::fmt::Write;

use sqlparser::ast::Spanned;
use sqlparser::ast::{
    self, BinaryOperator as B, CastKind, DuplicateTreatment, Expr as Ast, FunctionArg,
    FunctionArgExpr, FunctionArguments, OrderBySort, UnaryOperator, Value, WindowType,
};

use super::error::offset_of;
use super::keywords::is_keyword;

/// The result column's name for `e`, when the select list gives no alias.
pub(crate) fn column_name(sql: &str, e: &Ast) -> String {
    match e {
        // A bare column is named as the column, without quotes or qualifier;
        // the caller replaces it by the column's spelling in the table.
        Ast::Identifier(id) => id.value.clone(),
        Ast::CompoundIdentifier(ids) => ids.last().map(|i| i.value.clone()).unwrap_or_default(),
        Ast::Nested(inner) => column_name(sql, inner),
        _ => render(sql, e),
    }
}

/// The SQL text of `e` as DuckDB prints it.
pub(crate) fn render(sql: &str, e: &Ast) -> String {
    let mut out = String::new();
    write_expr(&mut out, sql, e);
    out
}

fn write_expr(o: &mut String, sql: &str, e: &Ast) {
    match e {
        Ast::Identifier(id) => write_ident(o, &id.value),
        Ast::CompoundIdentifier(ids) => {
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    o.push('.');
                }
                write_ident(o, &id.value);
            }
        }
        Ast::Nested(inner) => write_expr(o, sql, inner),
        Ast::Value(v) => write_value(o, &v.value),
        Ast::UnaryOp { op, expr } => match (op, &**expr) {
            (UnaryOperator::Minus, Ast::Value(v)) if matches!(v.value, Value::Number(..)) => {
                o.push('-');
                write_value(o, &v.value);
            }
            (UnaryOperator::Minus, inner) => wrap(o, "(-(", sql, inner, "))"),
            (UnaryOperator::Plus, inner) => wrap(o, "(+(", sql, inner, "))"),
            (UnaryOperator::Not, inner) => wrap(o, "(NOT ", sql, inner, ")"),
            (op, inner) => wrap(o, &format!("({op}"), sql, inner, ")"),
        },
        Ast::BinaryOp { left, op, right } => {
            o.push('(');
            write_expr(o, sql, left);
            let _ = write!(o, " {} ", operator(sql, left, op, right));
            write_expr(o, sql, right);
            o.push(')');
        }
        Ast::IsNull(x) => wrap(o, "(", sql, x, " IS NULL)"),
        Ast::IsNotNull(x) => wrap(o, "(", sql, x, " IS NOT NULL)"),
        Ast::Cast {
            kind,
            expr,
            data_type,
            ..
        } => {
            o.push_str(if matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                "TRY_CAST("
            } else {
                "CAST("
            });
            write_expr(o, sql, expr);
            let _ = write!(o, " AS {})", type_text(data_type));
        }
        Ast::TypedString(t) => {
            o.push_str("CAST(");
            write_value(o, &t.value.value);
            let _ = write!(o, " AS {})", type_text(&t.data_type));
        }
        Ast::Interval(i) => match &i.leading_field {
            None => {
                o.push_str("CAST(");
                write_expr(o, sql, &i.value);
                o.push_str(" AS INTERVAL)");
            }
            Some(field) => {
                let field = field.to_string().to_ascii_lowercase();
                let int = if matches!(field.as_str(), "hour" | "minute" | "second") {
                    "BIGINT"
                } else {
                    "INTEGER"
                };
                let _ = write!(o, "to_{field}s(CAST(trunc(CAST(");
                write_expr(o, sql, &i.value);
                let _ = write!(o, " AS DOUBLE)) AS {int}))");
            }
        },
        Ast::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            o.push_str("CASE ");
            for c in conditions {
                o.push_str(" WHEN (");
                if let Some(op) = operand {
                    o.push('(');
                    write_expr(o, sql, op);
                    o.push_str(" = ");
                    write_expr(o, sql, &c.condition);
                    o.push(')');
                } else {
                    write_expr(o, sql, &c.condition);
                }
                o.push_str(") THEN (");
                write_expr(o, sql, &c.result);
                o.push(')');
            }
            match else_result {
                Some(e) => wrap(o, " ELSE ", sql, e, " END"),
                None => o.push_str(" ELSE NULL END"),
            }
        }
        Ast::In {
            expr,
            target: ast::InTarget::List(list),
            negated,
            ..
        } => {
            if *negated {
                o.push_str("(NOT ");
            }
            o.push('(');
            write_expr(o, sql, expr);
            o.push_str(" IN (");
            write_list(o, sql, list);
            o.push_str("))");
            if *negated {
                o.push(')');
            }
        }
        Ast::Between {
            expr,
            negated,
            low,
            high,
        } => {
            if *negated {
                o.push_str("(NOT ");
            }
            o.push('(');
            write_expr(o, sql, expr);
            o.push_str(" BETWEEN ");
            write_expr(o, sql, low);
            o.push_str(" AND ");
            write_expr(o, sql, high);
            o.push(')');
            if *negated {
                o.push(')');
            }
        }
        Ast::Like {
            negated,
            expr,
            pattern,
            ..
        }
        | Ast::ILike {
            negated,
            expr,
            pattern,
            ..
        } => {
            let op = match (negated, matches!(e, Ast::ILike { .. })) {
                (false, false) => "~~",
                (false, true) => "~~*",
                (true, false) => "!~~",
                (true, true) => "!~~*",
            };
            o.push('(');
            write_expr(o, sql, expr);
            let _ = write!(o, " {op} ");
            write_expr(o, sql, pattern);
            o.push(')');
        }
        Ast::Function(f) => write_function(o, sql, f),
        // sqlparser's special forms of ordinary functions, printed as calls.
        Ast::Ceil { expr, .. } => wrap(o, "ceil(", sql, expr, ")"),
        Ast::Floor { expr, .. } => wrap(o, "floor(", sql, expr, ")"),
        Ast::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            o.push_str("\"substring\"(");
            write_expr(o, sql, expr);
            o.push_str(", ");
            match substring_from {
                Some(from) => write_expr(o, sql, from),
                None => o.push('1'),
            }
            if let Some(n) = substring_for {
                o.push_str(", ");
                write_expr(o, sql, n);
            }
            o.push(')');
        }
        Ast::Trim {
            expr,
            trim_where,
            trim_what,
            trim_characters,
        } => {
            o.push_str(match trim_where {
                None | Some(ast::TrimWhereField::Both) => "\"trim\"(",
                Some(ast::TrimWhereField::Leading) => "ltrim(",
                Some(ast::TrimWhereField::Trailing) => "rtrim(",
            });
            write_expr(o, sql, expr);
            for e in trim_what
                .iter()
                .map(|b| &**b)
                .chain(trim_characters.iter().flatten())
            {
                o.push_str(", ");
                write_expr(o, sql, e);
            }
            o.push(')');
        }
        Ast::Extract { field, expr, .. } => {
            let _ = write!(
                o,
                "date_part('{}', ",
                field.to_string().to_ascii_uppercase()
            );
            write_expr(o, sql, expr);
            o.push(')');
        }
        other => {
            let _ = write!(o, "{other}");
        }
    }
}

fn wrap(o: &mut String, before: &str, sql: &str, e: &Ast, after: &str) {
    o.push_str(before);
    write_expr(o, sql, e);
    o.push_str(after);
}

fn write_list(o: &mut String, sql: &str, list: &[Ast]) {
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        write_expr(o, sql, e);
    }
}

/// A function call, with its window when it has one.
fn write_function(o: &mut String, sql: &str, f: &ast::Function) {
    let name = f.name.to_string().to_ascii_lowercase();
    let list = match &f.args {
        FunctionArguments::List(list) => Some(list),
        _ => None,
    };
    let star = list.is_some_and(|l| {
        matches!(
            l.args.as_slice(),
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
        )
    });
    let empty = list.is_none_or(|l| l.args.is_empty());
    if name == "count" && (star || empty) {
        o.push_str("count_star()");
    } else {
        match name.as_str() {
            "coalesce" => o.push_str("COALESCE"),
            other => write_ident(o, other),
        }
        o.push('(');
        if let Some(list) = list {
            if matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)) {
                o.push_str("DISTINCT ");
            }
            for (i, a) in list.args.iter().enumerate() {
                if i > 0 {
                    o.push_str(", ");
                }
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => write_expr(o, sql, e),
                    other => {
                        let _ = write!(o, "{other}");
                    }
                }
            }
        }
        o.push(')');
    }
    if let Some(n) = &f.null_treatment {
        let _ = write!(o, " {n}");
    }
    if let Some(WindowType::WindowSpec(w)) = &f.over {
        o.push_str(" OVER (");
        if !w.partition_by.is_empty() {
            o.push_str("PARTITION BY ");
            write_list(o, sql, &w.partition_by);
        }
        if !w.order_by.is_empty() {
            if !w.partition_by.is_empty() {
                o.push(' ');
            }
            o.push_str("ORDER BY ");
            for (i, k) in w.order_by.iter().enumerate() {
                if i > 0 {
                    o.push_str(", ");
                }
                write_expr(o, sql, &k.expr);
                match k.options.sort {
                    Some(OrderBySort::Asc) => o.push_str(" ASC"),
                    Some(OrderBySort::Desc) => o.push_str(" DESC"),
                    _ => {}
                }
                match k.options.nulls_first {
                    Some(true) => o.push_str(" NULLS FIRST"),
                    Some(false) => o.push_str(" NULLS LAST"),
                    None => {}
                }
            }
        }
        o.push(')');
    }
}

/// The operator's spelling in DuckDB's names. sqlparser reads DuckDB's `^` as a
/// bitwise xor and cannot read `**` (the planner turns it into `^` before parsing),
/// so which one was written is looked up in the text between the operands.
fn operator(sql: &str, left: &Ast, op: &B, right: &Ast) -> String {
    match op {
        B::Plus => "+".into(),
        B::Minus => "-".into(),
        B::Multiply => "*".into(),
        B::Divide => "/".into(),
        B::Modulo => "%".into(),
        B::StringConcat => "||".into(),
        B::Gt => ">".into(),
        B::Lt => "<".into(),
        B::GtEq => ">=".into(),
        B::LtEq => "<=".into(),
        B::Eq => "=".into(),
        B::NotEq => "!=".into(),
        B::And => "AND".into(),
        B::Or => "OR".into(),
        B::DuckIntegerDivide | B::MyIntegerDivide => "//".into(),
        B::BitwiseXor | B::PGExp => {
            let (from, to) = (left.span().end, right.span().start);
            let between = if from.line == 0 || to.line == 0 {
                ""
            } else {
                let (a, b) = (offset_of(sql, from), offset_of(sql, to));
                sql.get(a..b.max(a)).unwrap_or("")
            };
            if between.contains("**") { "**" } else { "^" }.into()
        }
        other => other.to_string(),
    }
}

fn write_value(o: &mut String, v: &Value) {
    match v {
        Value::Number(n, _) => o.push_str(n),
        Value::SingleQuotedString(s) => {
            let _ = write!(o, "'{}'", s.replace('\'', "''"));
        }
        Value::Boolean(b) => {
            let _ = write!(o, "{b}");
        }
        Value::Null => o.push_str("NULL"),
        other => {
            let _ = write!(o, "{other}");
        }
    }
}

/// A name inside an expression: bare when it is a plain ASCII identifier and no
/// keyword, else in double quotes (doubled inside), as DuckDB prints it.
fn write_ident(o: &mut String, name: &str) {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name);
    if plain {
        o.push_str(name);
    } else {
        let _ = write!(o, "\"{}\"", name.replace('"', "\"\""));
    }
}

/// A cast's type as DuckDB prints it: its canonical name where the planner knows
/// the type, else as sqlparser prints it.
fn type_text(t: &ast::DataType) -> String {
    match super::expr::sql_type(t) {
        Ok((_, name)) => name.to_string(),
        Err(_) => t.to_string(),
    }
}
