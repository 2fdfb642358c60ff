//! The lexer: the expression's text as tokens, one at a time, with their spans.
//!
//! Tokens follow Python's lexical rules for what the language uses: names, numbers
//! (integers in four bases, floats, imaginary literals, `_` between digits), strings
//! in single, double or triple quotes with an optional `r` or `u` prefix, the
//! operators and delimiters of Python's expression grammar, and keywords. Spaces,
//! tabs, comments (`#` to the end of the line) and `\` line continuations separate
//! tokens; line breaks inside brackets do too, and outside them the lexer emits a
//! [`TokenKind::Newline`] (trailing ones are dropped), since there a line break ends
//! the expression. Names are Unicode letters, digits and `_` (an approximation of
//! Python's identifier rules, which also normalise names; the language's own names
//! are all ASCII).

use super::ast::Span;
use crate::error::syntax::SyntaxProblem;

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Name(String),
    Int(u64),
    Float(f64),
    Imag(f64),
    Str(String),
    Keyword(Keyword),
    Op(Op),
    /// A line break outside brackets with more text after it.
    Newline,
    /// The end of the text.
    End,
}

/// Python's keywords. Those the language has are variants; the rest (`lambda`, `in`,
/// `for`, ...) are reserved as in Python, so they are not names, and the parser
/// refuses them with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    True,
    False,
    None,
    And,
    Or,
    Not,
    If,
    Else,
    Other(&'static str),
}

const OTHER_KEYWORDS: [&str; 27] = [
    "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "except",
    "finally", "for", "from", "global", "import", "in", "is", "lambda", "nonlocal", "pass",
    "raise", "return", "try", "while", "with", "yield",
];

impl Keyword {
    fn from_name(name: &str) -> Option<Keyword> {
        Some(match name {
            "True" => Keyword::True,
            "False" => Keyword::False,
            "None" => Keyword::None,
            "and" => Keyword::And,
            "or" => Keyword::Or,
            "not" => Keyword::Not,
            "if" => Keyword::If,
            "else" => Keyword::Else,
            _ => Keyword::Other(OTHER_KEYWORDS.iter().find(|k| **k == name)?),
        })
    }

    pub fn text(self) -> &'static str {
        match self {
            Keyword::True => "True",
            Keyword::False => "False",
            Keyword::None => "None",
            Keyword::And => "and",
            Keyword::Or => "or",
            Keyword::Not => "not",
            Keyword::If => "if",
            Keyword::Else => "else",
            Keyword::Other(text) => text,
        }
    }
}

/// An operator or delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Dot,
    Ellipsis,
    Semicolon,
    Assign,
    Walrus,
    Arrow,
    /// `+=`, `**=`, ...: the operator's text.
    AugAssign(&'static str),
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Plus,
    Minus,
    Star,
    DoubleStar,
    Slash,
    DoubleSlash,
    Percent,
    At,
    LShift,
    RShift,
    Amp,
    Pipe,
    Caret,
    Tilde,
}

/// Every operator's text and token, longest first so that the first match is the
/// longest (`**=` before `**` before `*`). A lone `!` is not here (only `!=` is an
/// operator), so it is refused as an unknown character.
const OPERATORS: [(&str, Op); 47] = [
    ("**=", Op::AugAssign("**=")),
    ("//=", Op::AugAssign("//=")),
    (">>=", Op::AugAssign(">>=")),
    ("<<=", Op::AugAssign("<<=")),
    ("...", Op::Ellipsis),
    ("+=", Op::AugAssign("+=")),
    ("-=", Op::AugAssign("-=")),
    ("*=", Op::AugAssign("*=")),
    ("/=", Op::AugAssign("/=")),
    ("%=", Op::AugAssign("%=")),
    ("@=", Op::AugAssign("@=")),
    ("&=", Op::AugAssign("&=")),
    ("|=", Op::AugAssign("|=")),
    ("^=", Op::AugAssign("^=")),
    ("**", Op::DoubleStar),
    ("//", Op::DoubleSlash),
    ("<<", Op::LShift),
    (">>", Op::RShift),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("->", Op::Arrow),
    (":=", Op::Walrus),
    ("(", Op::LParen),
    (")", Op::RParen),
    ("[", Op::LBracket),
    ("]", Op::RBracket),
    ("{", Op::LBrace),
    ("}", Op::RBrace),
    (",", Op::Comma),
    (":", Op::Colon),
    (".", Op::Dot),
    (";", Op::Semicolon),
    ("=", Op::Assign),
    ("<", Op::Lt),
    (">", Op::Gt),
    ("+", Op::Plus),
    ("-", Op::Minus),
    ("*", Op::Star),
    ("/", Op::Slash),
    ("%", Op::Percent),
    ("@", Op::At),
    ("&", Op::Amp),
    ("|", Op::Pipe),
    ("^", Op::Caret),
    ("~", Op::Tilde),
];

impl Op {
    pub fn text(self) -> &'static str {
        match self {
            Op::AugAssign(text) => text,
            op => OPERATORS
                .iter()
                .find(|(_, o)| *o == op)
                .map_or("?", |(text, _)| text),
        }
    }

    /// The bracket character, for `(`, `[`, `{` and their closers.
    pub fn bracket(self) -> Option<char> {
        Some(match self {
            Op::LParen => '(',
            Op::RParen => ')',
            Op::LBracket => '[',
            Op::RBracket => ']',
            Op::LBrace => '{',
            Op::RBrace => '}',
            _ => return None,
        })
    }
}

/// A lexing failure: the problem and where.
pub(crate) type Failure = (SyntaxProblem, Span);

/// The lexer over one expression.
pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    /// Open brackets, counted to tell a line break inside brackets (space) from one
    /// outside (the end of the expression). A stray closer does not go below zero;
    /// the parser reports it.
    depth: usize,
    /// Whether a token was emitted: line breaks before the first are blank lines.
    started: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            depth: 0,
            started: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text.as_bytes().get(self.pos + ahead).copied()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// The next token.
    pub fn next_token(&mut self) -> Result<Token, Failure> {
        self.skip_space(false)?;
        if self.pos < self.text.len() && matches!(self.peek_at(0), Some(b'\n' | b'\r')) {
            let at = self.pos;
            self.skip_space(true)?;
            if self.pos < self.text.len() {
                return Ok(self.token(TokenKind::Newline, at, at + 1));
            }
        }
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(self.token(TokenKind::End, start, start));
        };
        self.started = true;
        if c.is_alphabetic() || c == '_' {
            return self.name_or_string();
        }
        if c.is_ascii_digit() || (c == '.' && self.peek_at(1).is_some_and(|b| b.is_ascii_digit())) {
            return self.number();
        }
        if c == '\'' || c == '"' {
            return self.string(start, false);
        }
        for (text, op) in &OPERATORS {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                match op {
                    Op::LParen | Op::LBracket | Op::LBrace => self.depth += 1,
                    Op::RParen | Op::RBracket | Op::RBrace => {
                        self.depth = self.depth.saturating_sub(1)
                    }
                    _ => {}
                }
                return Ok(self.token(TokenKind::Op(*op), start, self.pos));
            }
        }
        Err((
            SyntaxProblem::UnknownCharacter { character: c },
            Span::new(start, start + c.len_utf8()),
        ))
    }

    fn token(&self, kind: TokenKind, start: usize, end: usize) -> Token {
        Token {
            kind,
            span: Span::new(start, end),
        }
    }

    /// Skips spaces, comments and line continuations; line breaks too when
    /// `newlines`, inside brackets, or before the first token.
    fn skip_space(&mut self, newlines: bool) -> Result<(), Failure> {
        let newlines = newlines || self.depth > 0 || !self.started;
        while let Some(b) = self.peek_at(0) {
            match b {
                b' ' | b'\t' | b'\x0c' => self.pos += 1,
                b'\n' | b'\r' if newlines => self.pos += 1,
                b'#' => {
                    let len = self.rest().find(['\n', '\r']).unwrap_or(self.rest().len());
                    self.pos += len;
                }
                b'\\' => match (self.peek_at(1), self.peek_at(2)) {
                    (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) | (Some(b'\r'), _) => {
                        let skip = if self.rest().starts_with("\\\r\n") {
                            3
                        } else {
                            2
                        };
                        self.pos += skip;
                    }
                    _ => {
                        return Err((
                            SyntaxProblem::UnknownCharacter { character: '\\' },
                            Span::new(self.pos, self.pos + 1),
                        ))
                    }
                },
                _ => break,
            }
        }
        Ok(())
    }

    fn name_or_string(&mut self) -> Result<Token, Failure> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        let name = &self.text[start..self.pos];
        if matches!(self.peek(), Some('\'' | '"')) {
            match name.to_ascii_lowercase().as_str() {
                "r" => return self.string(start, true),
                // `u` means nothing since Python 3; accepted for pasted code.
                "u" => return self.string(start, false),
                "b" | "br" | "rb" => {
                    return Err(unsupported("bytes literals are", start, self.pos + 1))
                }
                "f" | "fr" | "rf" => return Err(unsupported("f-strings are", start, self.pos + 1)),
                _ => {}
            }
        }
        let kind = match Keyword::from_name(name) {
            Some(keyword) => TokenKind::Keyword(keyword),
            None => TokenKind::Name(name.to_string()),
        };
        Ok(self.token(kind, start, self.pos))
    }

    /// Consumes `digit (["_"] digit)*` in `radix`; false if it does not start with a
    /// digit or an `_` is not followed by one.
    fn digits(&mut self, radix: u32) -> bool {
        let is_digit = |b: Option<u8>| b.is_some_and(|b| (b as char).is_digit(radix));
        if !is_digit(self.peek_at(0)) {
            return false;
        }
        while is_digit(self.peek_at(0)) {
            self.pos += 1;
            if self.peek_at(0) == Some(b'_') {
                if !is_digit(self.peek_at(1)) {
                    return false;
                }
                self.pos += 1;
            }
        }
        true
    }

    fn number(&mut self) -> Result<Token, Failure> {
        let start = self.pos;
        let invalid = |kind, lexer: &Self| {
            Err((
                SyntaxProblem::InvalidNumber { kind },
                Span::new(start, lexer.pos.max(start + 1)),
            ))
        };
        if self.peek_at(0) == Some(b'0') {
            let radix = match self.peek_at(1) {
                Some(b'x' | b'X') => Some((16, "hexadecimal")),
                Some(b'o' | b'O') => Some((8, "octal")),
                Some(b'b' | b'B') => Some((2, "binary")),
                _ => None,
            };
            if let Some((radix, kind)) = radix {
                self.pos += 2;
                // Python allows one `_` right after the prefix: `0x_ff`.
                if self.peek_at(0) == Some(b'_') {
                    self.pos += 1;
                }
                if !self.digits(radix) || !self.ends_number() {
                    return invalid(kind, self);
                }
                let digits = &self.text[start + 2..self.pos];
                return self.integer(start, digits, radix);
            }
        }
        let mut is_float = false;
        if self.peek_at(0) != Some(b'.') && !self.digits(10) {
            return invalid("decimal", self);
        }
        if self.peek_at(0) == Some(b'.') {
            is_float = true;
            self.pos += 1;
            if self.peek_at(0).is_some_and(|b| b.is_ascii_digit()) && !self.digits(10) {
                return invalid("decimal", self);
            }
        }
        if matches!(self.peek_at(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some(b'+' | b'-')));
            if self.peek_at(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                is_float = true;
                self.pos += 1 + sign;
                if !self.digits(10) {
                    return invalid("decimal", self);
                }
            } else if sign == 1 {
                return invalid("decimal", self);
            }
            // Otherwise the `e` is not an exponent; `1else` is `1 else`, and
            // `ends_number` refuses the rest.
        }
        if matches!(self.peek_at(0), Some(b'j' | b'J')) {
            let text: String = self.text[start..self.pos].replace('_', "");
            self.pos += 1;
            if !self.ends_number() {
                return invalid("imaginary", self);
            }
            let value = text.parse::<f64>().map_err(|_| {
                (
                    SyntaxProblem::InvalidNumber { kind: "imaginary" },
                    Span::new(start, self.pos),
                )
            })?;
            return Ok(self.token(TokenKind::Imag(value), start, self.pos));
        }
        if !self.ends_number() {
            return invalid("decimal", self);
        }
        let text = &self.text[start..self.pos];
        if is_float {
            let value = text.replace('_', "").parse::<f64>().map_err(|_| {
                (
                    SyntaxProblem::InvalidNumber { kind: "decimal" },
                    Span::new(start, self.pos),
                )
            })?;
            return Ok(self.token(TokenKind::Float(value), start, self.pos));
        }
        if text.starts_with('0') && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return Err((SyntaxProblem::LeadingZeros, Span::new(start, self.pos)));
        }
        self.integer(start, text, 10)
    }

    /// Whether the number just read ends properly: not followed by a letter, digit or
    /// `_`, except where a keyword starts (`1if x else 2`, which Python accepts).
    fn ends_number(&self) -> bool {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return true;
        };
        if !(c.is_alphanumeric() || c == '_') {
            return true;
        }
        ["and", "else", "for", "if", "in", "is", "or", "not"]
            .iter()
            .any(|keyword| rest.starts_with(keyword))
    }

    /// The value of `digits` (underscores allowed) in `radix`, refusing one above
    /// `u64::MAX`.
    fn integer(&self, start: usize, digits: &str, radix: u32) -> Result<Token, Failure> {
        let mut value: u64 = 0;
        for c in digits.chars().filter(|&c| c != '_') {
            let digit = c.to_digit(radix).unwrap_or(0);
            value = match value
                .checked_mul(u64::from(radix))
                .and_then(|v| v.checked_add(u64::from(digit)))
            {
                Some(value) => value,
                None => {
                    return Err((
                        SyntaxProblem::IntegerTooLarge {
                            literal: abbreviate(&self.text[start..self.pos]),
                        },
                        Span::new(start, self.pos),
                    ))
                }
            };
        }
        Ok(self.token(TokenKind::Int(value), start, self.pos))
    }

    /// A string literal whose prefix (if any) starts at `start` and whose quote is at
    /// the current position.
    fn string(&mut self, start: usize, raw: bool) -> Result<Token, Failure> {
        let quote = self.peek_at(0).unwrap_or(b'\'');
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        let quote_at = self.pos;
        let open_len = if triple { 3 } else { 1 };
        self.pos += open_len;
        let unterminated = (
            SyntaxProblem::UnterminatedString,
            Span::new(quote_at, quote_at + open_len),
        );
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated);
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => {
                    if !triple {
                        break;
                    }
                    if self.peek_at(0) == Some(quote) && self.peek_at(1) == Some(quote) {
                        self.pos += 2;
                        break;
                    }
                    value.push(c);
                }
                '\n' | '\r' if !triple => return Err(unterminated),
                '\\' if raw => {
                    // A raw string keeps the backslash, yet it still escapes the next
                    // character from ending the string.
                    value.push('\\');
                    if let Some(next) = self.peek() {
                        self.pos += next.len_utf8();
                        value.push(next);
                    }
                }
                '\\' => self.escape(at, &mut value)?,
                c => value.push(c),
            }
        }
        Ok(self.token(TokenKind::Str(value), start, self.pos))
    }

    /// Decodes the escape whose backslash is at `at` (already consumed) into `value`.
    fn escape(&mut self, at: usize, value: &mut String) -> Result<(), Failure> {
        let Some(c) = self.peek() else {
            return Ok(());
        };
        self.pos += c.len_utf8();
        let simple = match c {
            '\n' => return Ok(()),
            '\r' => {
                if self.peek_at(0) == Some(b'\n') {
                    self.pos += 1;
                }
                return Ok(());
            }
            '\\' | '\'' | '"' => Some(c),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(decoded) = simple {
            value.push(decoded);
            return Ok(());
        }
        let bad = |lexer: &Self, reason| {
            Err((
                SyntaxProblem::BadEscape {
                    escape: abbreviate(&lexer.text[at..lexer.pos]),
                    reason,
                },
                Span::new(at, lexer.pos),
            ))
        };
        let (count, radix, reason) = match c {
            '0'..='7' => {
                // One to three octal digits, the first already read.
                let mut code = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek_at(0) {
                        Some(b @ b'0'..=b'7') => {
                            code = code * 8 + u32::from(b - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                // At most 0o777, far below the surrogates: always a character.
                value.extend(char::from_u32(code));
                return Ok(());
            }
            'x' => (2, 16, "\\x takes exactly 2 hex digits"),
            'u' => (4, 16, "\\u takes exactly 4 hex digits"),
            'U' => (8, 16, "\\U takes exactly 8 hex digits"),
            'N' => {
                return bad(
                    self,
                    "\\N{...} is not supported; write the character itself",
                )
            }
            other => {
                // Python keeps an unknown escape as written (and warns).
                value.push('\\');
                value.push(other);
                return Ok(());
            }
        };
        let mut code: u32 = 0;
        for _ in 0..count {
            match self.peek_at(0).and_then(|b| (b as char).to_digit(radix)) {
                Some(digit) => {
                    code = code * radix + digit;
                    self.pos += 1;
                }
                None => return bad(self, reason),
            }
        }
        match char::from_u32(code) {
            Some(decoded) => value.push(decoded),
            None => {
                return bad(
                    self,
                    "not a Unicode character (a surrogate, or past U+10FFFF)",
                )
            }
        }
        Ok(())
    }
}

fn unsupported(what: &'static str, start: usize, end: usize) -> Failure {
    (SyntaxProblem::Unsupported { what }, Span::new(start, end))
}

/// `text`, or its start and its length when it is long (a message must stay short
/// whatever the input).
pub(crate) fn abbreviate(text: &str) -> String {
    const KEEP: usize = 24;
    if text.chars().count() <= KEEP + 6 {
        return text.to_string();
    }
    let head: String = text.chars().take(KEEP).collect();
    format!("{head}... ({} characters)", text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let token = lexer
                .next_token()
                .unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            if token.kind == TokenKind::End {
                return out;
            }
            out.push(token.kind);
        }
    }

    fn one(text: &str) -> TokenKind {
        let mut tokens = kinds(text);
        assert_eq!(tokens.len(), 1, "{text:?}: {tokens:?}");
        tokens.remove(0)
    }

    fn error(text: &str) -> Failure {
        let mut lexer = Lexer::new(text);
        loop {
            match lexer.next_token() {
                Ok(t) if t.kind == TokenKind::End => panic!("{text:?} lexed"),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn integers_in_every_base_with_underscores() {
        for (text, value) in [
            ("0", 0),
            ("00", 0),
            ("0_0", 0),
            ("42", 42),
            ("1_000_000", 1_000_000),
            ("0xff", 255),
            ("0XFF", 255),
            ("0x_f", 15),
            ("0o17", 15),
            ("0b1010", 10),
            ("0b_1", 1),
            ("18446744073709551615", u64::MAX),
            ("0xffff_ffff_ffff_ffff", u64::MAX),
        ] {
            assert_eq!(one(text), TokenKind::Int(value), "{text}");
        }
    }

    #[test]
    fn floats_and_imaginary_literals() {
        for (text, value) in [
            ("1.", 1.0),
            (".5", 0.5),
            ("1e-3", 1e-3),
            ("1E+3", 1e3),
            ("1_000.5", 1000.5),
            ("1.e5", 1e5),
            ("007.5", 7.5),
            ("007e1", 70.0),
            ("1e999", f64::INFINITY),
            ("1_0e1_0", 10e10),
        ] {
            assert_eq!(one(text), TokenKind::Float(value), "{text}");
        }
        assert_eq!(one("1j"), TokenKind::Imag(1.0));
        assert_eq!(one("2.5e3J"), TokenKind::Imag(2500.0));
        assert_eq!(one("007j"), TokenKind::Imag(7.0));
    }

    #[test]
    fn a_keyword_may_follow_a_number_directly() {
        assert_eq!(
            kinds("1if x else 2"),
            [
                TokenKind::Int(1),
                TokenKind::Keyword(Keyword::If),
                TokenKind::Name("x".into()),
                TokenKind::Keyword(Keyword::Else),
                TokenKind::Int(2),
            ]
        );
        assert_eq!(
            kinds("1else"),
            [TokenKind::Int(1), TokenKind::Keyword(Keyword::Else)]
        );
    }

    #[test]
    fn malformed_numbers_are_refused_at_their_start() {
        for (text, kind) in [
            ("1e", "decimal"),
            ("1e+", "decimal"),
            ("1_", "decimal"),
            ("1__0", "decimal"),
            ("1_.5", "decimal"),
            ("1abc", "decimal"),
            ("1.real", "decimal"),
            ("0x", "hexadecimal"),
            ("0xg", "hexadecimal"),
            ("0b12", "binary"),
            ("0o8", "octal"),
            ("1jx", "imaginary"),
        ] {
            let (problem, span) = error(text);
            assert_eq!(problem, SyntaxProblem::InvalidNumber { kind }, "{text}");
            assert_eq!(span.start, 0, "{text}");
        }
        assert_eq!(error("x + 007").0, SyntaxProblem::LeadingZeros);
        assert_eq!(error("x + 007").1.start, 4);
    }

    #[test]
    fn huge_integers_are_refused_with_an_abbreviated_literal() {
        let (problem, span) = error("18446744073709551616");
        assert_eq!(
            problem.to_string(),
            "integer literal 18446744073709551616 is too large; the largest is \
             18446744073709551615 (2**64 - 1)"
        );
        assert_eq!(span, Span::new(0, 20));
        let digits = "9".repeat(1_000_000);
        let (problem, _) = error(&digits);
        assert_eq!(
            problem,
            SyntaxProblem::IntegerTooLarge {
                literal: "999999999999999999999999... (1000000 characters)".into()
            }
        );
    }

    #[test]
    fn strings_decode_escapes() {
        for (text, value) in [
            ("'float32'", "float32"),
            ("\"a'b\"", "a'b"),
            (r"'a\'b'", "a'b"),
            (r"'\n\t\\\x41\u00e9\U0001F600\101\0'", "\n\t\\Aé😀A\0"),
            (r"'\d'", r"\d"),
            ("'a\\\nb'", "ab"),
            (r"r'\n\''", r"\n\'"),
            ("u'x'", "x"),
            ("'''a\n'b'''", "a\n'b"),
            ("\"\"", ""),
            (r"'\777'", "\u{1ff}"),
        ] {
            assert_eq!(one(text), TokenKind::Str(value.into()), "{text}");
        }
    }

    #[test]
    fn bad_strings_are_refused_where_they_start() {
        let (problem, span) = error("x + 'abc");
        assert_eq!(problem, SyntaxProblem::UnterminatedString);
        assert_eq!(span, Span::new(4, 5));
        assert_eq!(error("'abc\n'").0, SyntaxProblem::UnterminatedString);
        assert_eq!(error("'''abc''").1, Span::new(0, 3));
        let (problem, span) = error(r"'a\x4'");
        assert_eq!(
            problem.to_string(),
            r"invalid string escape \x4: \x takes exactly 2 hex digits"
        );
        assert_eq!(span, Span::new(2, 5));
        assert_eq!(
            error(r"'\ud800'").0.to_string(),
            r"invalid string escape \ud800: not a Unicode character (a surrogate, or past U+10FFFF)"
        );
        assert_eq!(
            error(r"'\N{DASH}'").0.to_string(),
            r"invalid string escape \N: \N{...} is not supported; write the character itself"
        );
        assert_eq!(
            error("b'x'").0.to_string(),
            "bytes literals are not part of the expression language"
        );
        assert_eq!(
            error("f'{x}'").0.to_string(),
            "f-strings are not part of the expression language"
        );
    }

    #[test]
    fn operators_take_the_longest_match() {
        assert_eq!(
            kinds("a**=b//c<<=...!=->:=.5"),
            [
                TokenKind::Name("a".into()),
                TokenKind::Op(Op::AugAssign("**=")),
                TokenKind::Name("b".into()),
                TokenKind::Op(Op::DoubleSlash),
                TokenKind::Name("c".into()),
                TokenKind::Op(Op::AugAssign("<<=")),
                TokenKind::Op(Op::Ellipsis),
                TokenKind::Op(Op::Ne),
                TokenKind::Op(Op::Arrow),
                TokenKind::Op(Op::Walrus),
                TokenKind::Float(0.5),
            ]
        );
        assert_eq!(Op::Ne.text(), "!=");
        assert_eq!(Op::DoubleStar.text(), "**");
    }

    #[test]
    fn unknown_characters_are_refused_at_their_column() {
        for (text, c, at) in [
            ("x $ y", '$', 2),
            ("a ! b", '!', 2),
            ("é?", '?', 2),
            ("x \\ y", '\\', 2),
        ] {
            let (problem, span) = error(text);
            assert_eq!(
                problem,
                SyntaxProblem::UnknownCharacter { character: c },
                "{text}"
            );
            assert_eq!(span.start, at, "{text}");
        }
    }

    #[test]
    fn line_breaks_count_only_outside_brackets() {
        assert_eq!(kinds("(a,\n b)"), kinds("(a, b)"),);
        assert_eq!(kinds("\n a # comment\n\n"), [TokenKind::Name("a".into())]);
        assert_eq!(
            kinds("a\nb"),
            [
                TokenKind::Name("a".into()),
                TokenKind::Newline,
                TokenKind::Name("b".into())
            ]
        );
        assert_eq!(kinds("a + \\\n b").len(), 3);
        let names = kinds("α_1 _x True lambda");
        assert_eq!(
            names,
            [
                TokenKind::Name("α_1".into()),
                TokenKind::Name("_x".into()),
                TokenKind::Keyword(Keyword::True),
                TokenKind::Keyword(Keyword::Other("lambda")),
            ]
        );
    }
}
