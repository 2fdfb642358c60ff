//! What is wrong with an expression that does not parse, and where: [`SyntaxError`],
//! its [`SyntaxProblem`], and the two-line display with a caret under the place
//! ([`render_caret`]).

/// A range of the expression's text, as byte offsets: `start..end`.
///
/// Byte offsets index the source string directly; the column a user is shown counts
/// characters (see [`SyntaxError::column`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// An expression that does not parse: the [`SyntaxProblem`] and the span of the
/// token it was found at (an unclosed bracket's error points at the bracket).
///
/// Its message is one line, `syntax error at column 5: expected an expression,
/// found '*'`; [`SyntaxError::caret`] gives the two lines that show the place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("syntax error at {}: {problem}", place(*line, *column))]
pub struct SyntaxError {
    text: String,
    span: Span,
    line: usize,
    column: usize,
    problem: SyntaxProblem,
}

/// What is wrong (see [`SyntaxError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxProblem {
    /// A token that cannot come here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What could have come: `an expression`, `',' or ')'`.
        expected: &'static str,
        /// The token that came, described: `'*'`, `name 'b'`, `the end of the expression`.
        found: String,
    },
    /// A character that is no part of the language.
    #[error("unexpected character {}", show_char(*character))]
    UnknownCharacter {
        /// The character.
        character: char,
    },
    /// A string literal whose closing quote never comes (on its line, for a string in
    /// single quotes).
    #[error("unterminated string: the quote here is never closed")]
    UnterminatedString,
    /// A bracket opened and never closed.
    #[error("'{open}' is never closed")]
    Unclosed {
        /// The bracket: `(`, `[` or `{`.
        open: char,
    },
    /// A closing bracket of another kind than the one open.
    #[error("closing '{close}' does not match the opening '{open}' at {}", place(*open_line, *open_column))]
    Mismatched {
        /// The open bracket.
        open: char,
        /// The closing bracket found.
        close: char,
        /// The open bracket's line (1-based).
        open_line: usize,
        /// The open bracket's column (1-based, in characters).
        open_column: usize,
    },
    /// A closing bracket with nothing open.
    #[error("unmatched '{close}'")]
    Unmatched {
        /// The bracket.
        close: char,
    },
    /// `x = 1`, `x[mask] = 2`, `x += 1`.
    #[error(
        "assignment ('{op}') is not an expression; write one expression whose value is \
         the result (to compare, use '=='; for x[mask] = v, use where(mask, v, x))"
    )]
    Assignment {
        /// The assignment operator: `=`, `+=`, ...
        op: &'static str,
    },
    /// A line break outside brackets followed by more text: two statements.
    #[error(
        "a line break ends the expression, but more follows; an expression continues \
         on the next line only inside brackets"
    )]
    LineBreak,
    /// `f(a=1, a=2)`.
    #[error("keyword argument '{name}' is given twice")]
    RepeatedKeyword {
        /// The keyword.
        name: String,
    },
    /// `f(a=1, b)`.
    #[error("positional argument follows keyword argument")]
    PositionalAfterKeyword,
    /// `f(x.y=1)`, `f((a)=1)`, `f(1=2)`.
    #[error("a keyword argument needs a plain name before '=' (to compare, use '==')")]
    KeywordNotName,
    /// Brackets, operators or a chain of operations nested deeper than the limit.
    #[error("the expression is nested more than {limit} levels deep")]
    TooDeep {
        /// The limit, [`crate::array::expr::MAX_DEPTH`].
        limit: usize,
    },
    /// A malformed number: `1e`, `0x`, `1_`, `1abc`.
    #[error("invalid {kind} literal")]
    InvalidNumber {
        /// `decimal`, `hexadecimal`, `octal`, `binary` or `imaginary`.
        kind: &'static str,
    },
    /// `007`: Python reserves leading zeros (C's octal).
    #[error(
        "leading zeros in decimal integer literals are not permitted; use an 0o prefix \
         for octal integers"
    )]
    LeadingZeros,
    /// An integer literal above `u64::MAX`.
    #[error(
        "integer literal {literal} is too large; the largest is 18446744073709551615 \
         (2**64 - 1)"
    )]
    IntegerTooLarge {
        /// The literal as written (its start, when long).
        literal: String,
    },
    /// A malformed escape in a string: `'\x4'`, `'\ud800'`.
    #[error("invalid string escape {escape}: {reason}")]
    BadEscape {
        /// The escape as written (its start, when long).
        escape: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Python syntax the language does not have (`lambda`, `in`, comprehensions, ...).
    #[error("{what} not part of the expression language")]
    Unsupported {
        /// The construct and a verb: `lambda is`, `f-strings are`.
        what: &'static str,
    },
}

impl SyntaxError {
    /// The error for `problem` at `span` of `text`.
    pub(crate) fn new(text: &str, span: Span, problem: SyntaxProblem) -> Self {
        let (line, column) = line_column(text, span.start);
        SyntaxError {
            text: text.to_string(),
            span,
            line,
            column,
            problem,
        }
    }

    /// What is wrong.
    pub fn problem(&self) -> &SyntaxProblem {
        &self.problem
    }

    /// The span of the token where the problem was found.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The 1-based line of the span's start.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column of the span's start, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.text
    }

    /// The line of the expression holding the error and, below it, carets under the
    /// offending token (see [`render_caret`]).
    pub fn caret(&self) -> String {
        render_caret(&self.text, self.span)
    }
}

/// How many characters around the caret a long line keeps.
const CARET_WINDOW: usize = 76;

/// Two lines: the line of `text` that holds `span.start`, and under it `^` under
/// each character of the span on that line (one `^` for an empty span, e.g. at the
/// end). A line longer than about 80 characters is cut to a window around the span,
/// with `...` where text was left out. Columns count characters and a tab is
/// repeated in the caret line so they stay aligned; characters that a terminal
/// draws two cells wide will shift the caret.
///
/// The evaluator can use it for any span (a sub-expression whose shapes do not match).
///
/// # Examples
/// ```
/// use blockwise::array::expr::{render_caret, Span};
///
/// assert_eq!(render_caret("x + * y", Span::new(4, 5)), "x + * y\n    ^");
/// ```
pub fn render_caret(text: &str, span: Span) -> String {
    let start = floor_boundary(text, span.start.min(text.len()));
    let line_start = text[..start].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let line_end = text[start..]
        .find(['\n', '\r'])
        .map_or(text.len(), |i| start + i);
    let line: Vec<char> = text[line_start..line_end].chars().collect();
    let caret_at = text[line_start..start].chars().count();
    let end = floor_boundary(text, span.end.clamp(start, line_end));
    let caret_len = text[start..end].chars().count().max(1);

    let from = caret_at.saturating_sub(CARET_WINDOW / 2);
    let to = line.len().min(from + CARET_WINDOW);
    let mut shown = String::new();
    let mut under = String::new();
    if from > 0 {
        shown.push_str("...");
        under.push_str("   ");
    }
    for (i, &c) in line.iter().enumerate().take(to).skip(from) {
        shown.push(c);
        if i < caret_at {
            under.push(if c == '\t' { '\t' } else { ' ' });
        }
    }
    if to < line.len() {
        shown.push_str("...");
    }
    let room = (to.max(caret_at + 1)).saturating_sub(caret_at);
    under.extend(std::iter::repeat_n('^', caret_len.min(room).max(1)));
    format!("{shown}\n{under}")
}

/// The 1-based line and character column of byte `offset` of `text` (a line ends at
/// `\n`, `\r\n` or `\r`).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let mut line = 1;
    let mut line_start = 0;
    let bytes = before.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ends_line = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if ends_line {
            line += 1;
            line_start = i + 1;
        }
    }
    (line, before[line_start..].chars().count() + 1)
}

/// The largest char boundary of `text` at or before `offset`.
fn floor_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// `column 5`, or `line 2, column 5` for an expression of several lines.
fn place(line: usize, column: usize) -> String {
    if line == 1 {
        format!("column {column}")
    } else {
        format!("line {line}, column {column}")
    }
}

/// A character in quotes, or its code point when it would not show.
fn show_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_span() {
        assert_eq!(render_caret("x + * y", Span::new(4, 5)), "x + * y\n    ^");
        assert_eq!(render_caret("foo(bar", Span::new(3, 4)), "foo(bar\n   ^");
        assert_eq!(render_caret("a b", Span::new(2, 3)), "a b\n  ^");
        // Several characters, and an empty span at the end.
        assert_eq!(render_caret("x + abc", Span::new(4, 7)), "x + abc\n    ^^^");
        assert_eq!(render_caret("x +", Span::new(3, 3)), "x +\n   ^");
    }

    #[test]
    fn caret_counts_characters_keeps_tabs_and_shows_one_line() {
        // 'é' is two bytes but one column.
        assert_eq!(render_caret("é + $", Span::new(5, 6)), "é + $\n    ^");
        assert_eq!(render_caret("\tx $", Span::new(3, 4)), "\tx $\n\t  ^");
        assert_eq!(render_caret("(a,\n b $)", Span::new(7, 8)), " b $)\n   ^");
    }

    #[test]
    fn caret_cuts_a_long_line_to_a_window() {
        let text = format!("{}$ {}", "a+".repeat(500), "b+".repeat(500));
        let shown = render_caret(&text, Span::new(1000, 1001));
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("...") && lines[0].ends_with("..."));
        assert!(lines[0].chars().count() < 90);
        let caret = lines[1].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[0].chars().nth(caret), Some('$'));
    }

    #[test]
    fn line_and_column_count_characters_and_lines() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("éé$", 4), (1, 3));
        assert_eq!(line_column("(a,\n b)", 5), (2, 2));
        assert_eq!(line_column("(a,\r\n b)", 6), (2, 2));
        assert_eq!(line_column("abc", 3), (1, 4));
    }

    #[test]
    fn message_names_the_line_only_when_there_are_several() {
        let e = SyntaxError::new(
            "x + * y",
            Span::new(4, 5),
            SyntaxProblem::Expected {
                expected: "an expression",
                found: "'*'".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "syntax error at column 5: expected an expression, found '*'"
        );
        let e = SyntaxError::new(
            "(a,\n $)",
            Span::new(5, 6),
            SyntaxProblem::UnknownCharacter { character: '$' },
        );
        assert_eq!(
            e.to_string(),
            "syntax error at line 2, column 2: unexpected character '$'"
        );
        let e = SyntaxError::new(
            "a\u{a0}b",
            Span::new(1, 3),
            SyntaxProblem::UnknownCharacter {
                character: '\u{a0}',
            },
        );
        assert_eq!(
            e.to_string(),
            "syntax error at column 2: unexpected character U+00A0"
        );
    }
}
