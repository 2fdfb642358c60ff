//! Where a query is wrong: the conversion of sqlparser's errors into
//! [`SqlProblem`]s (the problems the planner finds itself, values with fields, in
//! the error layer with their messages), and the placing of any error at its line
//! and column of the query with a caret line under it.
//!
//! A problem reaches the user as [`Error::Sql`], wrapped in
//! [`Error::InExpression`] for the place; errors of the layers below (an unknown
//! column, a type mismatch, a missing file) keep their own variant inside the same
//! wrapper.

use sqlparser::parser::ParserError;
use sqlparser::tokenizer::{Location, Span as SqlSpan};

use crate::error::syntax::{line_column, render_caret, Span};
use crate::error::Error;
pub(crate) use crate::error::SqlProblem;

/// The byte offset in `sql` of sqlparser's `loc` (1-based line, 1-based column in
/// characters); past the end for a location beyond it.
pub(crate) fn offset_of(sql: &str, loc: Location) -> usize {
    let mut line = 1u64;
    let mut offset = 0usize;
    if loc.line > 1 {
        for (i, b) in sql.bytes().enumerate() {
            if b == b'\n' {
                line += 1;
                if line == loc.line {
                    offset = i + 1;
                    break;
                }
            }
        }
        if line < loc.line {
            return sql.len();
        }
    }
    let rest = &sql[offset..];
    let skip = usize::try_from(loc.column.saturating_sub(1)).unwrap_or(usize::MAX);
    offset + rest.char_indices().nth(skip).map_or(rest.len(), |(i, _)| i)
}

/// `span` of the query as byte offsets (`None` for sqlparser's empty span, which
/// nodes built without tokens carry).
pub(crate) fn byte_span(sql: &str, span: SqlSpan) -> Option<Span> {
    if span.start.line == 0 {
        return None;
    }
    let start = offset_of(sql, span.start);
    let end = offset_of(sql, span.end).max(start);
    Some(Span::new(start, end))
}

/// `error` placed at `span` of `sql`: its line, column and caret line. An error
/// already placed keeps its (innermost) place; an empty span leaves it as it is.
pub(crate) fn at(sql: &str, span: SqlSpan, error: impl Into<Error>) -> Error {
    let error = error.into();
    match (byte_span(sql, span), &error) {
        (_, Error::InExpression { .. }) | (None, _) => error,
        (Some(span), _) => at_bytes(sql, span, error),
    }
}

/// `error` placed at byte `span` of `sql`.
pub(crate) fn at_bytes(sql: &str, span: Span, error: Error) -> Error {
    let (line, column) = line_column(sql, span.start);
    Error::InExpression {
        error: Box::new(error),
        line,
        column,
        caret: render_caret(sql, span),
    }
}

/// sqlparser's error as ours: the problem without sqlparser's wording of the place,
/// placed at its line and column (the end of the query when it found the end).
pub(crate) fn from_parser(sql: &str, e: ParserError) -> Error {
    let message = match e {
        ParserError::RecursionLimitExceeded => {
            return SqlProblem::TooDeep {
                limit: super::MAX_DEPTH,
            }
            .into()
        }
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
    };
    let (message, place) = split_place(&message);
    let problem = match message
        .strip_prefix("Expected: ")
        .and_then(|m| m.split_once(", found: "))
    {
        Some((expected, found)) => SqlProblem::Syntax {
            expected: expected.to_string(),
            found: match found {
                "EOF" => "the end of the query".to_string(),
                found => format!("'{found}'"),
            },
        },
        None => SqlProblem::SyntaxOther {
            message: lower_first(message),
        },
    };
    let span = match place {
        Some(loc) => {
            let start = offset_of(sql, loc);
            // One character under the caret, or the end.
            let end = sql[start..]
                .chars()
                .next()
                .map_or(start, |c| start + c.len_utf8());
            Span::new(start, end)
        }
        // sqlparser gives no place for the end of the input.
        None => Span::new(sql.trim_end().len(), sql.trim_end().len()),
    };
    at_bytes(sql, span, problem.into())
}

/// The message without its trailing ` at Line: L, Column: C`, and that place.
fn split_place(message: &str) -> (&str, Option<Location>) {
    let Some(i) = message.rfind(" at Line: ") else {
        return (message, None);
    };
    let place = &message[i + " at Line: ".len()..];
    let parsed = place.split_once(", Column: ").and_then(|(l, c)| {
        Some(Location {
            line: l.trim().parse().ok()?,
            column: c.trim().parse().ok()?,
        })
    });
    match parsed {
        Some(loc) => (&message[..i], Some(loc)),
        None => (message, None),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
