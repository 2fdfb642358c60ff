//! The parser: tokens to an [`Expr`], by precedence climbing (a Pratt parser) over
//! Python's expression grammar.
//!
//! Binding powers, lowest first, as in Python: `if`-`else`, `or`, `and`, `not`, the
//! comparisons (chained), `|`, `^`, `&`, shifts, `+ -`, `* / // % @`, unary
//! `+ - ~`, `**` (right-associative; its right operand may be unary, and it binds
//! tighter than a unary operator on its left), then the primaries (atoms followed by
//! `.name`, calls and subscripts).
//!
//! Two limits keep hostile input from exhausting the stack: the parser's recursion
//! (brackets, prefix operators, right operands) and the height of the tree it builds
//! (left-nested chains such as `a+a+a...` or `x.a.a...`, built by loops) are both
//! capped at [`MAX_DEPTH`].

use std::collections::HashSet;

use super::ast::{BinaryOp, BoolOp, CompareOp, Expr, ExprKind, Keyword, Span, UnaryOp};
use super::lexer::{abbreviate, Failure, Keyword as Kw, Lexer, Op, Token, TokenKind};
use super::MAX_DEPTH;
use crate::error::syntax::{line_column, SyntaxProblem};

/// Binding powers: an infix operator of power `p` takes a left operand only while
/// the caller accepts `p` or more.
const IF: u8 = 0;
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const COMPARE: u8 = 4;
const BIT_OR: u8 = 5;
const BIT_XOR: u8 = 6;
const BIT_AND: u8 = 7;
const SHIFT: u8 = 8;
const ARITH: u8 = 9;
const TERM: u8 = 10;
const UNARY: u8 = 11;
const POWER: u8 = 12;

/// What the parser expects where an operand must come.
const OPERAND: &str = "an expression";

/// Parses the whole of `text` as one expression.
pub(crate) fn parse(text: &str) -> Result<Expr, Failure> {
    let mut lexer = Lexer::new(text);
    let tok = lexer.next_token()?;
    let mut parser = Parser {
        text,
        lexer,
        tok,
        prev_end: 0,
        depth: 0,
        open: Vec::new(),
    };
    parser.top()
}

/// An infix operator, as the current token spells it.
enum Infix {
    If,
    Bool(BoolOp),
    Compare,
    Binary(BinaryOp),
    /// `in`, `not in`, `is`, `is not`: Python's, not the language's.
    Membership,
}

struct Parser<'a> {
    text: &'a str,
    lexer: Lexer<'a>,
    /// The current token (one token of lookahead is all the grammar needs).
    tok: Token,
    /// Where the last token consumed ends: the end of the node being built.
    prev_end: usize,
    /// How many `parse_bp` calls are active.
    depth: usize,
    /// The brackets open, innermost last: an error at the end points at the
    /// innermost, and a closer of the wrong kind names it.
    open: Vec<(char, Span)>,
}

impl Parser<'_> {
    /// Consumes the current token and returns it.
    fn bump(&mut self) -> Result<Token, Failure> {
        let next = self.lexer.next_token()?;
        let tok = std::mem::replace(&mut self.tok, next);
        self.prev_end = tok.span.end;
        if let TokenKind::Op(op) = tok.kind {
            match op {
                Op::LParen | Op::LBracket | Op::LBrace => {
                    self.open.extend(op.bracket().map(|c| (c, tok.span)))
                }
                Op::RParen | Op::RBracket | Op::RBrace => {
                    self.open.pop();
                }
                _ => {}
            }
        }
        Ok(tok)
    }

    fn at(&self, op: Op) -> bool {
        self.tok.kind == TokenKind::Op(op)
    }

    fn at_keyword(&self, keyword: Kw) -> bool {
        self.tok.kind == TokenKind::Keyword(keyword)
    }

    /// A node, refused when the tree would grow higher than [`MAX_DEPTH`]; `at` is
    /// the token blamed then (the operator that nests one level too deep).
    fn node(&self, kind: ExprKind, span: Span, at: Span) -> Result<Expr, Failure> {
        let expr = Expr::new(kind, span);
        if expr.height() as usize > MAX_DEPTH {
            return Err(too_deep(at));
        }
        Ok(expr)
    }

    /// The span from `start` to the end of the last token consumed.
    fn since(&self, start: usize) -> Span {
        Span::new(start, self.prev_end)
    }

    /// The whole text: one expression, or a bare tuple `a, b`, then the end.
    fn top(&mut self) -> Result<Expr, Failure> {
        let start = self.tok.span.start;
        self.refuse_starred()?;
        let first = self.expression()?;
        let expr = if self.at(Op::Comma) {
            let at = self.tok.span;
            let items = self.more_items(first, false, Self::expression)?;
            self.node(ExprKind::Tuple(items), self.since(start), at)?
        } else {
            first
        };
        match self.tok.kind {
            TokenKind::End => Ok(expr),
            TokenKind::Newline => {
                self.bump()?;
                Err((SyntaxProblem::LineBreak, self.tok.span))
            }
            _ => Err(self.unexpected("an operator or the end of the expression")),
        }
    }

    /// A full expression (Python's `expression`: a conditional at the lowest).
    fn expression(&mut self) -> Result<Expr, Failure> {
        self.parse_bp(IF)
    }

    /// An expression whose operators all bind at least as tightly as `min`.
    fn parse_bp(&mut self, min: u8) -> Result<Expr, Failure> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_deep(self.tok.span));
        }
        let start = self.tok.span.start;
        let mut left = self.prefix(min)?;
        while let Some((infix, power)) = self.infix() {
            if power < min {
                break;
            }
            left = match infix {
                Infix::If => self.if_else(left, start)?,
                Infix::Bool(op) => {
                    let keyword = if op == BoolOp::And { Kw::And } else { Kw::Or };
                    let at = self.tok.span;
                    let mut values = vec![left];
                    while self.at_keyword(keyword) {
                        self.bump()?;
                        values.push(self.parse_bp(power + 1)?);
                    }
                    self.node(ExprKind::BoolOp { op, values }, self.since(start), at)?
                }
                Infix::Compare => {
                    let at = self.tok.span;
                    let mut rest = Vec::new();
                    while let Some(op) = self.compare_op() {
                        self.bump()?;
                        rest.push((op, self.parse_bp(COMPARE + 1)?));
                    }
                    let left = Box::new(left);
                    self.node(ExprKind::Compare { left, rest }, self.since(start), at)?
                }
                Infix::Binary(op) => {
                    let at = self.bump()?.span;
                    // `**` is right-associative and its right operand may be unary
                    // (`2 ** -1`); the others are left-associative.
                    let right_power = if op == BinaryOp::Pow {
                        UNARY
                    } else {
                        power + 1
                    };
                    let right = Box::new(self.parse_bp(right_power)?);
                    let left = Box::new(left);
                    self.node(ExprKind::Binary { op, left, right }, self.since(start), at)?
                }
                Infix::Membership => {
                    return Err((
                        SyntaxProblem::Unsupported {
                            what: "the 'in' and 'is' comparisons are",
                        },
                        self.tok.span,
                    ))
                }
            };
        }
        self.depth -= 1;
        Ok(left)
    }

    /// The infix operator at the current token and its binding power.
    fn infix(&self) -> Option<(Infix, u8)> {
        let binary = |op, power| Some((Infix::Binary(op), power));
        match &self.tok.kind {
            TokenKind::Keyword(Kw::If) => Some((Infix::If, IF)),
            TokenKind::Keyword(Kw::Or) => Some((Infix::Bool(BoolOp::Or), OR)),
            TokenKind::Keyword(Kw::And) => Some((Infix::Bool(BoolOp::And), AND)),
            TokenKind::Keyword(Kw::Not | Kw::Other("in" | "is")) => {
                Some((Infix::Membership, COMPARE))
            }
            TokenKind::Op(op) => match op {
                Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne => {
                    Some((Infix::Compare, COMPARE))
                }
                Op::Pipe => binary(BinaryOp::BitOr, BIT_OR),
                Op::Caret => binary(BinaryOp::BitXor, BIT_XOR),
                Op::Amp => binary(BinaryOp::BitAnd, BIT_AND),
                Op::LShift => binary(BinaryOp::LShift, SHIFT),
                Op::RShift => binary(BinaryOp::RShift, SHIFT),
                Op::Plus => binary(BinaryOp::Add, ARITH),
                Op::Minus => binary(BinaryOp::Sub, ARITH),
                Op::Star => binary(BinaryOp::Mul, TERM),
                Op::Slash => binary(BinaryOp::Div, TERM),
                Op::DoubleSlash => binary(BinaryOp::FloorDiv, TERM),
                Op::Percent => binary(BinaryOp::Mod, TERM),
                Op::At => binary(BinaryOp::MatMul, TERM),
                Op::DoubleStar => binary(BinaryOp::Pow, POWER),
                _ => None,
            },
            _ => None,
        }
    }

    fn compare_op(&self) -> Option<CompareOp> {
        Some(match self.tok.kind {
            TokenKind::Op(Op::Lt) => CompareOp::Lt,
            TokenKind::Op(Op::Le) => CompareOp::Le,
            TokenKind::Op(Op::Gt) => CompareOp::Gt,
            TokenKind::Op(Op::Ge) => CompareOp::Ge,
            TokenKind::Op(Op::Eq) => CompareOp::Eq,
            TokenKind::Op(Op::Ne) => CompareOp::Ne,
            _ => return None,
        })
    }

    /// `body if test else orelse`, with `body` parsed and `if` current.
    fn if_else(&mut self, body: Expr, start: usize) -> Result<Expr, Failure> {
        let at = self.bump()?.span;
        let test = Box::new(self.parse_bp(OR)?);
        if !self.at_keyword(Kw::Else) {
            return Err(self.unexpected("'else'"));
        }
        self.bump()?;
        let orelse = Box::new(self.expression()?);
        let body = Box::new(body);
        self.node(
            ExprKind::IfElse { body, test, orelse },
            self.since(start),
            at,
        )
    }

    /// A prefix operator and its operand, or a primary.
    fn prefix(&mut self, min: u8) -> Result<Expr, Failure> {
        let (op, power) = match self.tok.kind {
            // `not` sits below the comparisons: `a == not b` is not Python.
            TokenKind::Keyword(Kw::Not) if min <= NOT => (UnaryOp::Not, NOT),
            TokenKind::Op(Op::Minus) => (UnaryOp::Neg, UNARY),
            TokenKind::Op(Op::Plus) => (UnaryOp::Pos, UNARY),
            TokenKind::Op(Op::Tilde) => (UnaryOp::Invert, UNARY),
            _ => return self.primary(),
        };
        let at = self.bump()?.span;
        let operand = Box::new(self.parse_bp(power)?);
        self.node(ExprKind::Unary { op, operand }, self.since(at.start), at)
    }

    /// An atom followed by any number of `.name`, `(args)` and `[index]`.
    fn primary(&mut self) -> Result<Expr, Failure> {
        let start = self.tok.span.start;
        let mut value = self.atom()?;
        loop {
            value = match self.tok.kind {
                TokenKind::Op(Op::Dot) => {
                    let at = self.bump()?.span;
                    let TokenKind::Name(name) = &self.tok.kind else {
                        return Err(self.unexpected("a name after '.'"));
                    };
                    let name = name.clone();
                    let name_span = self.bump()?.span;
                    let value = Box::new(value);
                    let kind = ExprKind::Attribute {
                        value,
                        name,
                        name_span,
                    };
                    self.node(kind, self.since(start), at)?
                }
                TokenKind::Op(Op::LParen) => self.call(value, start)?,
                TokenKind::Op(Op::LBracket) => self.subscript(value, start)?,
                _ => return Ok(value),
            };
        }
    }

    fn atom(&mut self) -> Result<Expr, Failure> {
        let leaf = match &self.tok.kind {
            TokenKind::Name(name) => Some(ExprKind::Name(name.clone())),
            TokenKind::Int(value) => Some(ExprKind::Int(*value)),
            TokenKind::Float(value) => Some(ExprKind::Float(*value)),
            TokenKind::Imag(value) => Some(ExprKind::Imag(*value)),
            TokenKind::Keyword(Kw::True) => Some(ExprKind::Bool(true)),
            TokenKind::Keyword(Kw::False) => Some(ExprKind::Bool(false)),
            TokenKind::Keyword(Kw::None) => Some(ExprKind::None),
            TokenKind::Op(Op::Ellipsis) => Some(ExprKind::Ellipsis),
            _ => None,
        };
        if let Some(kind) = leaf {
            let span = self.bump()?.span;
            return self.node(kind, span, span);
        }
        let start = self.tok.span;
        match self.tok.kind {
            TokenKind::Str(_) => {
                // Adjacent literals are one string, as in Python: 'a' 'b' is 'ab'.
                let mut value = String::new();
                while let TokenKind::Str(part) = &self.tok.kind {
                    value.push_str(part);
                    self.bump()?;
                }
                self.node(ExprKind::Str(value), self.since(start.start), start)
            }
            TokenKind::Op(Op::LParen) => self.parenthesised(),
            TokenKind::Op(Op::LBracket) => {
                self.bump()?;
                let items = if self.at(Op::RBracket) {
                    Vec::new()
                } else {
                    self.refuse_starred()?;
                    let first = self.expression()?;
                    self.more_items(first, false, Self::expression)?
                };
                self.close(Op::RBracket, "',' or ']'")?;
                self.node(ExprKind::List(items), self.since(start.start), start)
            }
            TokenKind::Op(Op::LBrace) => {
                Err(unsupported("dict and set displays ('{...}') are", start))
            }
            TokenKind::Keyword(Kw::Other("lambda")) => Err(unsupported("lambda is", start)),
            _ => Err(self.unexpected(OPERAND)),
        }
    }

    /// `(a)`, `(a, b)`, `(a,)` or `()`.
    fn parenthesised(&mut self) -> Result<Expr, Failure> {
        let open = self.bump()?.span;
        if self.at(Op::RParen) {
            self.bump()?;
            return self.node(ExprKind::Tuple(Vec::new()), self.since(open.start), open);
        }
        self.refuse_starred()?;
        let first = self.expression()?;
        if !self.at(Op::Comma) {
            self.close(Op::RParen, "',' or ')'")?;
            // A parenthesised expression keeps its own span, as in Python; the
            // parentheses count in the span of a node it starts.
            return Ok(first);
        }
        let items = self.more_items(first, false, Self::expression)?;
        self.close(Op::RParen, "',' or ')'")?;
        self.node(ExprKind::Tuple(items), self.since(open.start), open)
    }

    /// After `first`, while a comma comes: the items of a tuple or a list, a
    /// trailing comma allowed. `slices`: the items of a subscript, which may start
    /// with `:`.
    fn more_items(
        &mut self,
        first: Expr,
        slices: bool,
        item: fn(&mut Self) -> Result<Expr, Failure>,
    ) -> Result<Vec<Expr>, Failure> {
        let mut items = vec![first];
        while self.at(Op::Comma) {
            self.bump()?;
            if !(self.starts_operand() || (slices && self.at(Op::Colon))) {
                break;
            }
            self.refuse_starred()?;
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// `func(args, name=value)`, with `func` parsed and `(` current.
    fn call(&mut self, func: Expr, start: usize) -> Result<Expr, Failure> {
        let open = self.bump()?.span;
        let mut args = Vec::new();
        let mut keywords: Vec<Keyword> = Vec::new();
        let mut names = HashSet::new();
        while !self.at(Op::RParen) {
            self.refuse_starred()?;
            let arg_start = self.tok.span.start;
            let value = self.expression()?;
            if self.at(Op::Assign) {
                // Only a bare name may stand before `=`: not `(a)`, not `a.b`.
                let name = match value.kind() {
                    ExprKind::Name(name) if value.span().start == arg_start => name.clone(),
                    _ => return Err((SyntaxProblem::KeywordNotName, value.span())),
                };
                self.bump()?;
                let keyword_value = self.expression()?;
                if !names.insert(name.clone()) {
                    return Err((SyntaxProblem::RepeatedKeyword { name }, value.span()));
                }
                keywords.push(Keyword {
                    name,
                    name_span: value.span(),
                    value: keyword_value,
                    span: self.since(arg_start),
                });
            } else {
                if !keywords.is_empty() {
                    return Err((SyntaxProblem::PositionalAfterKeyword, value.span()));
                }
                args.push(value);
            }
            if !self.at(Op::Comma) {
                break;
            }
            self.bump()?;
        }
        self.close(Op::RParen, "',' or ')'")?;
        let func = Box::new(func);
        let kind = ExprKind::Call {
            func,
            args,
            keywords,
        };
        self.node(kind, self.since(start), open)
    }

    /// `value[index]`, with `value` parsed and `[` current.
    fn subscript(&mut self, value: Expr, start: usize) -> Result<Expr, Failure> {
        let open = self.bump()?.span;
        if self.at(Op::RBracket) {
            return Err(self.unexpected(OPERAND));
        }
        self.refuse_starred()?;
        let index_start = self.tok.span.start;
        let first = self.index_item()?;
        let index = if self.at(Op::Comma) {
            let at = self.tok.span;
            let items = self.more_items(first, true, Self::index_item)?;
            self.node(ExprKind::Tuple(items), self.since(index_start), at)?
        } else {
            first
        };
        self.close(Op::RBracket, "',' or ']'")?;
        let kind = ExprKind::Subscript {
            value: Box::new(value),
            index: Box::new(index),
        };
        self.node(kind, self.since(start), open)
    }

    /// One index of a subscript: an expression or a slice `lower:upper:step`.
    fn index_item(&mut self) -> Result<Expr, Failure> {
        let start = self.tok.span.start;
        let lower = if self.at(Op::Colon) {
            None
        } else {
            let lower = self.expression()?;
            if !self.at(Op::Colon) {
                return Ok(lower);
            }
            Some(Box::new(lower))
        };
        let colon = self.bump()?.span;
        let upper = self.optional_operand()?;
        let step = if self.at(Op::Colon) {
            self.bump()?;
            self.optional_operand()?
        } else {
            None
        };
        self.node(
            ExprKind::Slice { lower, upper, step },
            self.since(start),
            colon,
        )
    }

    /// An expression, if one starts here (the parts of a slice may be omitted).
    fn optional_operand(&mut self) -> Result<Option<Box<Expr>>, Failure> {
        if !self.starts_operand() {
            return Ok(None);
        }
        Ok(Some(Box::new(self.expression()?)))
    }

    /// Whether the current token can start an expression.
    fn starts_operand(&self) -> bool {
        match &self.tok.kind {
            TokenKind::Name(_)
            | TokenKind::Int(_)
            | TokenKind::Float(_)
            | TokenKind::Imag(_)
            | TokenKind::Str(_) => true,
            TokenKind::Keyword(keyword) => matches!(
                keyword,
                Kw::True | Kw::False | Kw::None | Kw::Not | Kw::Other("lambda")
            ),
            TokenKind::Op(op) => matches!(
                op,
                Op::LParen
                    | Op::LBracket
                    | Op::LBrace
                    | Op::Minus
                    | Op::Plus
                    | Op::Tilde
                    | Op::Ellipsis
                    | Op::Star
                    | Op::DoubleStar
            ),
            TokenKind::Newline | TokenKind::End => false,
        }
    }

    /// Refuses `*a` and `**a` where Python would unpack them (an item of a call, a
    /// tuple, a list or a subscript).
    fn refuse_starred(&self) -> Result<(), Failure> {
        if self.at(Op::Star) || self.at(Op::DoubleStar) {
            return Err(unsupported("unpacking with '*' and '**' is", self.tok.span));
        }
        Ok(())
    }

    /// Consumes the closing bracket `close`, or says why it is not there.
    fn close(&mut self, close: Op, expected: &'static str) -> Result<(), Failure> {
        if !self.at(close) {
            return Err(self.unexpected(expected));
        }
        self.bump()?;
        Ok(())
    }

    /// The error for the current token where `expected` should have come.
    fn unexpected(&self, expected: &'static str) -> Failure {
        let span = self.tok.span;
        let generic = || SyntaxProblem::Expected {
            expected,
            found: self.describe(&self.tok),
        };
        let operand = expected == OPERAND;
        let problem = match &self.tok.kind {
            // Running out of text inside brackets: the bracket is the place to fix.
            TokenKind::End => match self.open.last() {
                Some(&(open, at)) => return (SyntaxProblem::Unclosed { open }, at),
                None => generic(),
            },
            TokenKind::Op(op @ (Op::RParen | Op::RBracket | Op::RBrace)) => {
                let close = op.bracket().unwrap_or(')');
                match self.open.last() {
                    None => SyntaxProblem::Unmatched { close },
                    Some(&(open, at)) if closer(open) != close => {
                        let (open_line, open_column) = line_column(self.text, at.start);
                        SyntaxProblem::Mismatched {
                            open,
                            close,
                            open_line,
                            open_column,
                        }
                    }
                    Some(_) => generic(),
                }
            }
            TokenKind::Op(Op::Assign) if !operand => SyntaxProblem::Assignment { op: "=" },
            TokenKind::Op(Op::AugAssign(op)) if !operand => SyntaxProblem::Assignment { op },
            TokenKind::Op(Op::Walrus) => SyntaxProblem::Unsupported {
                what: "assignment expressions (':=') are",
            },
            TokenKind::Keyword(Kw::Other("for")) if !operand => SyntaxProblem::Unsupported {
                what: "comprehensions ('for') are",
            },
            _ => generic(),
        };
        (problem, span)
    }

    /// A token as a message names it: `'*'`, `name 'b'`, `number 1e5`.
    fn describe(&self, tok: &Token) -> String {
        let written = self.text.get(tok.span.start..tok.span.end).unwrap_or("");
        match &tok.kind {
            TokenKind::Name(_) => format!("name '{}'", abbreviate(written)),
            TokenKind::Int(_) | TokenKind::Float(_) | TokenKind::Imag(_) => {
                format!("number {}", abbreviate(written))
            }
            TokenKind::Str(_) => format!("string {}", abbreviate(written)),
            TokenKind::Keyword(keyword) => format!("'{}'", keyword.text()),
            TokenKind::Op(op) => format!("'{}'", op.text()),
            TokenKind::Newline => "a line break".into(),
            TokenKind::End => "the end of the expression".into(),
        }
    }
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

fn too_deep(at: Span) -> Failure {
    (SyntaxProblem::TooDeep { limit: MAX_DEPTH }, at)
}

fn unsupported(what: &'static str, at: Span) -> Failure {
    (SyntaxProblem::Unsupported { what }, at)
}
