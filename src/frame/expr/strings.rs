//! The string functions arrow has no kernel for, with DuckDB's semantics:
//! lengths and positions count characters, `substr` is 1-based with DuckDB's
//! rules for zero and negative positions, `slice` is Python's, `trim` removes
//! spaces (or the given characters), `concat` skips NULLs, and the `regexp_`
//! functions take a constant pattern compiled once per batch.
//!
//! Each kernel walks the first argument in its own string type (`Utf8`,
//! `LargeUtf8`, `Utf8View`: no conversion of the column) and writes into one
//! output buffer, so that no row allocates.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArrayType, StringBuilder,
};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Int64Type};
use regex::{Regex, RegexBuilder};

use super::coerce::type_error;
use super::functions::Func;
use super::value::Value;
use super::{Expr, Literal};
use crate::{Error, Result};

/// Runs `$body` with `$s` bound to `$a` as its concrete string array.
macro_rules! with_strings {
    ($a:expr, $s:ident => $body:expr) => {
        match $a.data_type() {
            DataType::Utf8 => {
                let $s = $a.as_string::<i32>();
                $body
            }
            DataType::LargeUtf8 => {
                let $s = $a.as_string::<i64>();
                $body
            }
            DataType::Utf8View => {
                let $s = $a.as_string_view();
                $body
            }
            t => return Err(Error::bug("a string kernel's input", t)),
        }
    };
}

/// Row `i` of a string array of any string type (`None` when NULL or not a
/// string).
pub(super) fn str_at(a: &ArrayRef, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(a.as_string_view().value(i)),
        _ => None,
    }
}

/// `f` of every row of string array `a` (NULL rows give any bit; the caller
/// keeps the nulls).
pub(super) fn collect_str(a: &ArrayRef, f: impl Fn(&str) -> bool) -> Result<BooleanBuffer> {
    Ok(with_strings!(a, s => BooleanBuffer::collect_bool(s.len(), |i| f(s.value(i)))))
}

/// A string argument after the first: a constant, or a column.
enum StrArg {
    Const(Option<String>),
    Column(ArrayRef),
}

impl StrArg {
    fn new(v: &Value, whole: &Expr) -> Result<StrArg> {
        let v = v.clone().cast(&DataType::Utf8, whole)?;
        Ok(match v {
            Value::Scalar(a) => StrArg::Const(str_at(&a, 0).map(String::from)),
            Value::Array(a) => StrArg::Column(a),
        })
    }
    #[inline]
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            StrArg::Const(s) => s.as_deref(),
            StrArg::Column(a) => {
                let a = a.as_string::<i32>();
                a.is_valid(i).then(|| a.value(i))
            }
        }
    }
}

/// An integer argument: a constant, or a column.
enum IntArg {
    Const(Option<i64>),
    Column(Int64Array),
}

impl IntArg {
    fn new(v: Option<&Value>, default: Option<i64>, whole: &Expr) -> Result<IntArg> {
        let Some(v) = v else {
            return Ok(IntArg::Const(default));
        };
        let v = v.clone().cast(&DataType::Int64, whole)?;
        let a = v.array().as_primitive::<Int64Type>().clone();
        Ok(match v {
            Value::Scalar(_) => IntArg::Const(a.is_valid(0).then(|| a.value(0))),
            Value::Array(_) => IntArg::Column(a),
        })
    }
    #[inline]
    fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntArg::Const(v) => *v,
            IntArg::Column(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// A string column made row by row: `f` writes row `i`'s value into the builder
/// and says whether it is valid (writing nothing when it is not).
fn map_rows<'a, S: StringArrayType<'a>>(
    s: S,
    bytes: usize,
    mut f: impl FnMut(usize, &'a str, &mut StringBuilder) -> bool,
) -> ArrayRef {
    let mut out = StringBuilder::with_capacity(s.len(), bytes);
    for i in 0..s.len() {
        if s.is_null(i) || !f(i, s.value(i), &mut out) {
            out.append_null();
        } else {
            out.append_value("");
        }
    }
    Arc::new(out.finish())
}

/// The bytes of a string array's values (a capacity hint).
fn value_bytes(a: &ArrayRef) -> usize {
    a.get_buffer_memory_size()
}

/// The character offsets `[start, end)` of DuckDB's `substr(s, offset, length)`
/// on a string of `size` characters, or `None` for the empty string.
fn substr_range(size: i64, offset: i64, length: i64) -> Option<(i64, i64)> {
    let (mut start, mut length) = (0, length);
    if offset > 0 {
        start = size.min(offset - 1);
    } else if offset < 0 {
        start = (size + offset).max(0);
    } else {
        // Position 0 is before the first character and takes one of the length.
        length -= 1;
        if length <= 0 {
            return None;
        }
    }
    let (start, end) = if length > 0 {
        (start, size.min(start.saturating_add(length)))
    } else {
        ((start.saturating_add(length)).max(0), start)
    };
    (start < end).then_some((start, end))
}

/// The character range `[start, stop)` of Python's `s[start:stop]`.
fn slice_range(size: i64, start: i64, stop: Option<i64>) -> (i64, i64) {
    let norm = |x: i64| {
        if x < 0 {
            (x + size).max(0)
        } else {
            x.min(size)
        }
    };
    let start = norm(start);
    let stop = stop.map_or(size, norm);
    (start, stop.max(start))
}

/// The part of `s` between character offsets `start` and `end`.
fn chars_between(s: &str, ascii: bool, start: i64, end: i64) -> &str {
    if ascii {
        return &s[start as usize..end as usize];
    }
    let mut idx = s
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(s.len()));
    let b0 = idx.nth(start as usize).unwrap_or(s.len());
    let b1 = if end > start {
        idx.nth((end - start - 1) as usize).unwrap_or(s.len())
    } else {
        b0
    };
    &s[b0..b1]
}

fn char_len(s: &str, ascii: bool) -> i64 {
    if ascii {
        s.len() as i64
    } else {
        s.chars().count() as i64
    }
}

/// The constant pattern and options of a `regexp_` call, compiled; an error names
/// the pattern and the regex error.
fn compile(
    whole: &Expr,
    pattern: &Value,
    options: Option<&Value>,
) -> Result<Option<(Regex, bool)>> {
    let constant = |v: &Value, what: &str| -> Result<Option<String>> {
        if !v.is_scalar() {
            return Err(type_error(
                whole,
                format!("the {what} must be a constant string"),
            ));
        }
        let v = v.clone().cast(&DataType::Utf8, whole)?;
        Ok(str_at(v.array(), 0).map(String::from))
    };
    let Some(pattern) = constant(pattern, "pattern")? else {
        return Ok(None);
    };
    let options = match options {
        Some(o) => constant(o, "options")?.unwrap_or_default(),
        None => String::new(),
    };
    regex_of(whole, &pattern, &options).map(Some)
}

fn regex_of(whole: &Expr, pattern: &str, options: &str) -> Result<(Regex, bool)> {
    let mut builder = RegexBuilder::new(pattern);
    let mut global = false;
    for c in options.chars() {
        match c {
            'i' => builder.case_insensitive(true),
            'c' => builder.case_insensitive(false),
            's' => builder.dot_matches_new_line(true),
            'g' => {
                global = true;
                &mut builder
            }
            c => {
                return Err(type_error(
                    whole,
                    format!("unknown regular expression option '{c}' (the options are c, g, i, s)"),
                ))
            }
        };
    }
    let re = builder.build().map_err(|e| {
        type_error(
            whole,
            format!("invalid regular expression '{pattern}': {e}"),
        )
    })?;
    Ok((re, global))
}

/// Checks at typing time that a `regexp_` call's pattern (and options) are
/// constants and compile.
pub(super) fn check_constant_pattern(whole: &Expr, args: &[Expr]) -> Result<()> {
    let text = |e: &Expr, what: &str| match e {
        Expr::Literal(Literal::Utf8(s)) => Ok(Some(s.clone())),
        Expr::Literal(Literal::Null) => Ok(None),
        _ => Err(type_error(
            whole,
            format!("the {what} must be a constant string"),
        )),
    };
    let Some(pattern) = text(&args[1], "pattern")? else {
        return Ok(());
    };
    let options = match whole {
        Expr::Function { name, .. } if name.eq_ignore_ascii_case("regexp_replace") => args.get(3),
        Expr::Function { name, .. } if name.eq_ignore_ascii_case("regexp_matches") => args.get(2),
        _ => None,
    };
    let options = match options {
        Some(o) => text(o, "options")?.unwrap_or_default(),
        None => String::new(),
    };
    regex_of(whole, &pattern, &options).map(|_| ())
}

/// DuckDB's replacement text (`\1` a group, `\0` the match, `\\` a backslash) in
/// the `regex` crate's syntax (`${1}`, `$$` for a dollar).
fn replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len() + 4);
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// The value of string function `func` of `v` on `rows` rows.
pub(super) fn evaluate(
    whole: &Expr,
    func: Func,
    v: &[Value],
    rows: usize,
    scalar: bool,
) -> Result<Value> {
    use Func as F;
    let _ = rows;
    if func == F::Concat {
        return concat(whole, v, scalar);
    }
    let target = super::coerce::logical(v[0].data_type()).clone();
    let first = v[0].clone().cast(&target, whole)?;
    let a = first.array();
    let bytes = value_bytes(a);
    let out: ArrayRef = match func {
        F::Lower | F::Upper => {
            let upper = func == F::Upper;
            with_strings!(a, s => map_rows(s, bytes, |_, x, out| {
                for c in x.chars() {
                    if upper {
                        c.to_uppercase().for_each(|u| { let _ = out.write_char(u); });
                    } else {
                        c.to_lowercase().for_each(|l| { let _ = out.write_char(l); });
                    }
                }
                true
            }))
        }
        F::Length => with_strings!(a, s => {
            let ascii = s.is_ascii();
            let values: Vec<i64> = (0..s.len()).map(|i| if s.is_null(i) { 0 } else { char_len(s.value(i), ascii) }).collect();
            Arc::new(Int64Array::new(values.into(), s.nulls().cloned())) as ArrayRef
        }),
        F::Substr | F::Slice => {
            let start = IntArg::new(v.get(1), None, whole)?;
            let len = IntArg::new(v.get(2), None, whole)?;
            let has_len = v.len() > 2;
            with_strings!(a, s => {
                let ascii = s.is_ascii();
                map_rows(s, bytes, |i, x, out| {
                    let Some(st) = start.get(i) else { return false };
                    let l = len.get(i);
                    if has_len && l.is_none() {
                        return false;
                    }
                    let size = char_len(x, ascii);
                    let range = if func == F::Substr {
                        substr_range(size, st, l.unwrap_or(i64::MAX / 2))
                    } else {
                        Some(slice_range(size, st, l))
                    };
                    if let Some((b, e)) = range {
                        let _ = out.write_str(chars_between(x, ascii, b, e));
                    }
                    true
                })
            })
        }
        F::Replace => {
            let (from, to) = (StrArg::new(&v[1], whole)?, StrArg::new(&v[2], whole)?);
            with_strings!(a, s => map_rows(s, bytes, |i, x, out| {
                let (Some(f), Some(t)) = (from.get(i), to.get(i)) else { return false };
                if f.is_empty() {
                    let _ = out.write_str(x);
                    return true;
                }
                let mut last = 0;
                for (at, m) in x.match_indices(f) {
                    let _ = out.write_str(&x[last..at]);
                    let _ = out.write_str(t);
                    last = at + m.len();
                }
                let _ = out.write_str(&x[last..]);
                true
            }))
        }
        F::Trim | F::LTrim | F::RTrim => {
            let chars = match v.get(1) {
                Some(c) => StrArg::new(c, whole)?,
                None => StrArg::Const(Some(" ".into())),
            };
            let (left, right) = (func != F::RTrim, func != F::LTrim);
            with_strings!(a, s => map_rows(s, bytes, |i, x, out| {
                let Some(set) = chars.get(i) else { return false };
                let strip = |c: char| set.contains(c);
                let mut y = x;
                if left {
                    y = y.trim_start_matches(strip);
                }
                if right {
                    y = y.trim_end_matches(strip);
                }
                let _ = out.write_str(y);
                true
            }))
        }
        F::SplitPart => {
            let sep = StrArg::new(&v[1], whole)?;
            let n = IntArg::new(v.get(2), None, whole)?;
            with_strings!(a, s => map_rows(s, bytes, |i, x, out| {
                let (Some(sep), Some(n)) = (sep.get(i), n.get(i)) else { return false };
                let part = if n == 0 {
                    None
                } else if sep.is_empty() {
                    // An empty separator splits into characters, as DuckDB.
                    let k = if n > 0 { n - 1 } else { char_len(x, false) + n };
                    (k >= 0).then(|| x.char_indices().nth(k as usize).map(|(b, c)| &x[b..b + c.len_utf8()])).flatten()
                } else if n > 0 {
                    x.split(sep).nth((n - 1) as usize)
                } else {
                    x.rsplit(sep).nth((-n - 1) as usize)
                };
                let _ = out.write_str(part.unwrap_or(""));
                true
            }))
        }
        F::RegexpMatches | F::RegexpExtract | F::RegexpReplace => {
            let options = if func == F::RegexpExtract {
                None
            } else {
                v.get(if func == F::RegexpReplace { 3 } else { 2 })
            };
            let Some((re, global)) = compile(whole, &v[1], options)? else {
                let out = if func == F::RegexpMatches {
                    DataType::Boolean
                } else {
                    DataType::Utf8
                };
                return Ok(Value::null(&out));
            };
            match func {
                F::RegexpMatches => {
                    let hits = collect_str(a, |x| re.is_match(x))?;
                    Arc::new(BooleanArray::new(hits, a.nulls().cloned()))
                }
                F::RegexpExtract => {
                    let group = IntArg::new(v.get(2), Some(0), whole)?;
                    let IntArg::Const(group) = group else {
                        return Err(type_error(whole, "the group must be a constant"));
                    };
                    let Some(group) = group else {
                        return Ok(Value::null(&DataType::Utf8));
                    };
                    if group < 0 || group as usize >= re.captures_len() {
                        return Err(type_error(
                            whole,
                            format!(
                                "group {group} does not exist: the pattern has {} groups",
                                re.captures_len() - 1
                            ),
                        ));
                    }
                    let mut locs = re.capture_locations();
                    with_strings!(a, s => map_rows(s, bytes, |_, x, out| {
                        if re.captures_read(&mut locs, x).is_some() {
                            if let Some((b, e)) = locs.get(group as usize) {
                                let _ = out.write_str(&x[b..e]);
                            }
                        }
                        true
                    }))
                }
                _ => {
                    let repl = StrArg::new(&v[2], whole)?;
                    let limit = if global { 0 } else { 1 };
                    let mut converted = String::new();
                    let mut converted_from: Option<String> = None;
                    let mut scratch = String::new();
                    with_strings!(a, s => map_rows(s, bytes, |i, x, out| {
                        let Some(r) = repl.get(i) else { return false };
                        // A constant replacement is converted once.
                        if converted_from.as_deref() != Some(r) {
                            converted = replacement(r);
                            converted_from = Some(r.to_string());
                        }
                        let mut last = 0;
                        for caps in re.captures_iter(x).take(if limit == 0 { usize::MAX } else { limit }) {
                            let m = caps.get(0).map_or((0, 0), |m| (m.start(), m.end()));
                            let _ = out.write_str(&x[last..m.0]);
                            scratch.clear();
                            caps.expand(&converted, &mut scratch);
                            let _ = out.write_str(&scratch);
                            last = m.1;
                        }
                        let _ = out.write_str(&x[last..]);
                        true
                    }))
                }
            }
        }
        other => return Err(Error::bug("a string function", format!("{other:?}"))),
    };
    Ok(Value::from_kernel(out, scalar))
}

/// `concat(a, b, ...)`: every argument as a string, NULLs skipped (so never NULL).
fn concat(whole: &Expr, v: &[Value], scalar: bool) -> Result<Value> {
    let rows = v
        .iter()
        .find(|x| !x.is_scalar())
        .map_or(1, |x| x.array().len());
    let args = v
        .iter()
        .map(|x| StrArg::new(x, whole))
        .collect::<Result<Vec<_>>>()?;
    let bytes: usize = v.iter().map(|x| value_bytes(x.array())).sum();
    let mut out = StringBuilder::with_capacity(rows, bytes);
    for i in 0..rows {
        for a in &args {
            if let Some(s) = a.get(i) {
                let _ = out.write_str(s);
            }
        }
        out.append_value("");
    }
    Ok(Value::from_kernel(Arc::new(out.finish()), scalar))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substr_ranges_follow_duckdb() {
        // Verified with DuckDB 2.0 on 'hello' (5 characters).
        assert_eq!(substr_range(5, 2, 3), Some((1, 4))); // 'ell'
        assert_eq!(substr_range(5, 0, 2), Some((0, 1))); // 'h'
        assert_eq!(substr_range(5, -3, 2), Some((2, 4))); // 'll'
        assert_eq!(substr_range(5, 2, -1), Some((0, 1))); // 'h'
        assert_eq!(substr_range(5, 10, i64::MAX / 2), None); // ''
    }

    #[test]
    fn replacement_text_translates_backreferences() {
        assert_eq!(replacement(r"<\1>"), "<${1}>");
        assert_eq!(replacement(r"\0\0"), "${0}${0}");
        assert_eq!(replacement(r"\\"), "\\");
        assert_eq!(replacement("$1"), "$$1");
    }
}
