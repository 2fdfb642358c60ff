//! The canonical, fully parenthesised text of an [`Expr`]: every operator node in
//! parentheses, literals as Python's `repr` writes them.
//!
//! Two expressions that parse to the same tree print the same (`a+b*c` and
//! `a + (b * c)` are both `(a + (b * c))`), which is what the tests compare, and the
//! oracle test's Python script prints Python's own tree in exactly this form.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{Expr, ExprKind};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.kind() {
            ExprKind::Name(name) => f.write_str(name),
            ExprKind::Int(value) => write!(f, "{value}"),
            ExprKind::Float(value) => f.write_str(&python_float(*value, true)),
            ExprKind::Imag(value) => write!(f, "{}j", python_float(*value, false)),
            ExprKind::Str(value) => write_string(f, value),
            ExprKind::Bool(true) => f.write_str("True"),
            ExprKind::Bool(false) => f.write_str("False"),
            ExprKind::None => f.write_str("None"),
            ExprKind::Ellipsis => f.write_str("..."),
            ExprKind::Tuple(items) => {
                f.write_char('(')?;
                write_items(f, items)?;
                f.write_char(')')
            }
            ExprKind::List(items) => {
                f.write_char('[')?;
                write_list(f, items)?;
                f.write_char(']')
            }
            ExprKind::Attribute { value, name, .. } => write!(f, "{value}.{name}"),
            ExprKind::Call {
                func,
                args,
                keywords,
            } => {
                write!(f, "{func}(")?;
                write_list(f, args)?;
                for (i, keyword) in keywords.iter().enumerate() {
                    if i > 0 || !args.is_empty() {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}={}", keyword.name, keyword.value)?;
                }
                f.write_char(')')
            }
            ExprKind::Subscript { value, index } => {
                write!(f, "{value}[")?;
                // Several indices are a tuple, written bare as Python writes them
                // (a slice inside parentheses would not be Python).
                match index.kind() {
                    ExprKind::Tuple(items) if !items.is_empty() => write_items(f, items)?,
                    _ => write!(f, "{index}")?,
                }
                f.write_char(']')
            }
            ExprKind::Slice { lower, upper, step } => {
                if let Some(lower) = lower {
                    write!(f, "{lower}")?;
                }
                f.write_char(':')?;
                if let Some(upper) = upper {
                    write!(f, "{upper}")?;
                }
                if let Some(step) = step {
                    write!(f, ":{step}")?;
                }
                Ok(())
            }
            ExprKind::Unary { op, operand } => match op {
                super::ast::UnaryOp::Not => write!(f, "(not {operand})"),
                _ => write!(f, "({}{operand})", op.symbol()),
            },
            ExprKind::Binary { op, left, right } => {
                write!(f, "({left} {} {right})", op.symbol())
            }
            ExprKind::BoolOp { op, values } => {
                f.write_char('(')?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {} ", op.symbol())?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_char(')')
            }
            ExprKind::Compare { left, rest } => {
                write!(f, "({left}")?;
                for (op, right) in rest {
                    write!(f, " {} {right}", op.symbol())?;
                }
                f.write_char(')')
            }
            ExprKind::IfElse { body, test, orelse } => {
                write!(f, "({body} if {test} else {orelse})")
            }
        }
    }
}

/// `a, b` (`a,` for one item): a tuple's items.
fn write_items(f: &mut Formatter<'_>, items: &[Expr]) -> fmt::Result {
    write_list(f, items)?;
    if items.len() == 1 {
        f.write_char(',')?;
    }
    Ok(())
}

/// `a, b`.
fn write_list(f: &mut Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// A string in single quotes; backslash, quote, `\n`, `\r`, `\t` and the other
/// control characters escaped, everything else as it is.
fn write_string(f: &mut Formatter<'_>, value: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in value.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\'' => f.write_str("\\'")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            // The control characters (category Cc) all lie below U+00A0.
            c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('\'')
}

/// `x` as Python's `repr` writes a float (`add_dot_zero`: `1.0`) or the imaginary
/// part of a complex (`1`): the shortest digits that read back as `x`, positional
/// for exponents from -4 to 15, scientific with a signed two-digit exponent otherwise
/// (`1e-05`, `1e+16`).
pub(crate) fn python_float(x: f64, add_dot_zero: bool) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7", "1e16".
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..16).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{exp_sign}{:02}", exponent.unsigned_abs());
    } else if exponent >= 0 {
        // `exponent` is below 16 here, so the cast cannot truncate.
        let whole = exponent as usize + 1;
        if digits.len() <= whole {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', whole - digits.len()));
            if add_dot_zero {
                out.push_str(".0");
            }
        } else {
            out.push_str(&digits[..whole]);
            out.push('.');
            out.push_str(&digits[whole..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
        out.push_str(&digits);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::python_float;

    #[test]
    fn floats_print_as_python_repr_prints_them() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (0.001, "0.001"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1234.5, "1234.5"),
            (1.5e300, "1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0, "0.0"),
            (f64::INFINITY, "inf"),
            (2.5e-7, "2.5e-07"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float(x, true), want, "{x:e}");
        }
        assert_eq!(python_float(1.0, false), "1");
        assert_eq!(python_float(2500.0, false), "2500");
        assert_eq!(python_float(1e16, false), "1e+16");
    }
}
