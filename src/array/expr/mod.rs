//! The expression language of `blockwise array EXPR`: its lexer, syntax tree and
//! parser.
//!
//! The language is a subset of Python's expression syntax, so that numpy code can be
//! pasted: names, numbers (integers in any base, floats, imaginary `1j`), strings,
//! `True`/`False`/`None`, `...`, tuples, lists, the operators with Python's
//! precedence (comparisons chain), `a if c else b`, attribute access (`.T`,
//! `np.sum`), calls with keyword arguments and subscripts with slices. It has no
//! statements, no assignment, no `lambda`, comprehensions, dicts, sets, `in`/`is`,
//! unpacking or f-strings; each is refused with a message saying so.
//!
//! ```text
//! top        = expression { "," expression } [ "," ]
//! expression = disjunction [ "if" disjunction "else" expression ]
//! disjunction = conjunction { "or" conjunction }
//! conjunction = inversion { "and" inversion }
//! inversion  = "not" inversion | comparison
//! comparison = bitor { ( "<" | "<=" | ">" | ">=" | "==" | "!=" ) bitor }
//! bitor      = bitxor { "|" bitxor }        (and so on: "^", "&", "<<" ">>",
//! arith      = term { ( "+" | "-" ) term }   left-associative)
//! term       = factor { ( "*" | "/" | "//" | "%" | "@" ) factor }
//! factor     = ( "+" | "-" | "~" ) factor | power
//! power      = primary [ "**" factor ]
//! primary    = atom { "." NAME | "(" [ arguments ] ")" | "[" indices "]" }
//! arguments  = argument { "," argument } [ "," ]     (positional ones first)
//! argument   = expression | NAME "=" expression
//! indices    = index { "," index } [ "," ]
//! index      = expression | [ expression ] ":" [ expression ] [ ":" [ expression ] ]
//! atom       = NAME | NUMBER | STRING { STRING } | "True" | "False" | "None" | "..."
//!            | "(" [ expression ( "," expression )* [ "," ] ] ")"     (a tuple when
//!            | "[" [ expression { "," expression } [ "," ] ] "]"        a comma is there)
//! ```
//!
//! [`parse`] gives an [`Expr`] tree, every node with its [`Span`]; its `Display` is
//! the canonical fully parenthesised form (`-2**2` is `(-(2 ** 2))`). Module prefixes
//! (`np.`, `numpy.`, `da.`, `dask.array.`) stay in the tree as the attribute chains
//! they are; the evaluator reads a callee with [`Expr::dotted_name`] and drops the
//! prefix with [`strip_library_prefix`]. A syntax error is an [`Error::ExprSyntax`]
//! holding a [`SyntaxError`]: what was expected and found, the line and column, and
//! [`SyntaxError::caret`], the expression's line with a caret under the place.
//!
//! Evaluation is elsewhere: this module knows nothing of arrays or of which names
//! exist.

mod ast;
mod display;
mod lexer;
mod parser;

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod tests;

pub use crate::error::syntax::{render_caret, SyntaxError, SyntaxProblem};
pub use ast::{
    strip_library_prefix, BinaryOp, BoolOp, CompareOp, Expr, ExprKind, Keyword, Span, UnaryOp,
};

use crate::error::{Error, Result};

/// How deeply an expression may nest: brackets in brackets, operators on operators,
/// `x.a.a.a...` chains. Beyond it the parser refuses the expression, so that neither
/// it nor anything walking the tree recursively can run out of stack. Python's own
/// parser stops at 200 nested brackets too.
pub const MAX_DEPTH: usize = 200;

/// Parses `text` as one expression.
///
/// It runs on a thread of its own with a stack large enough for the deepest
/// expression it accepts (see `PARSER_STACK`), so a hostile expression cannot
/// overflow the caller's stack.
///
/// # Errors
/// [`Error::ExprSyntax`] when `text` is not an expression of the language: the
/// [`SyntaxError`] says what was expected and what was found, and where.
/// [`Error::ThreadsRefused`] if the system will not start the parser's thread.
///
/// # Examples
/// ```
/// use blockwise::array::expr::parse;
///
/// let e = parse("(arcsin(x) + arccos(y)).sum(axis=(1, 2))")?;
/// assert_eq!(e.to_string(), "(arcsin(x) + arccos(y)).sum(axis=(1, 2))");
/// assert_eq!(parse("-2**2")?.to_string(), "(-(2 ** 2))");
///
/// let err = parse("x + * y").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "syntax error at column 5: expected an expression, found '*'"
/// );
/// if let blockwise::Error::ExprSyntax(e) = err {
///     assert_eq!(e.caret(), "x + * y\n    ^");
/// }
/// # Ok::<(), blockwise::Error>(())
/// ```
pub fn parse(text: &str) -> Result<Expr> {
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("expr-parser".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || parser::parse(text))
            .map(|parsing| parsing.join())
    });
    match outcome {
        Ok(Ok(parsed)) => parsed
            .map_err(|(problem, span)| Error::ExprSyntax(SyntaxError::new(text, span, problem))),
        // A panic is a bug of the parser: it goes on in the caller as it would have.
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(refused) => Err(Error::ThreadsRefused {
            threads: 1,
            reason: refused.to_string(),
        }),
    }
}

/// The stack the parser runs on, whatever thread calls [`parse`]. Its recursion is
/// bounded by [`MAX_DEPTH`], but at that depth an unoptimised build uses about
/// 3.5 MiB (some 17 KiB for each level of brackets; an optimised build about a
/// seventh of it), more than a test thread or a pool thread has. Only the pages used
/// are committed.
const PARSER_STACK: usize = 32 << 20;
