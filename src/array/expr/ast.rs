//! The syntax tree of an array expression: [`Expr`] nodes, each with its [`Span`].
//!
//! The tree mirrors Python's own (`ast.parse(..., mode="eval")`) for the subset the
//! language has, node for node and span for span, so that the oracle test can compare
//! the two directly. It holds no meaning: names are not resolved, `np.` prefixes are
//! kept as the attribute chains they are (see [`Expr::dotted_name`] and
//! [`strip_library_prefix`]), and nothing is evaluated.

pub use crate::error::syntax::Span;

/// One node of the tree: what it is and where it was written.
///
/// The fields are private so that [`Expr::height`] always describes the children;
/// build a node with [`Expr::new`] and read it with [`Expr::kind`] and [`Expr::span`].
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    kind: ExprKind,
    span: Span,
    height: u32,
}

/// What a node is. Variants follow Python's `ast` module (`BinOp` is [`ExprKind::Binary`],
/// `IfExp` is [`ExprKind::IfElse`], `Constant` is split by type).
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A name: `x`, `np`, `arcsin`.
    Name(String),
    /// An integer literal, in any base, at most `u64::MAX` (larger ones are refused:
    /// no dtype holds them).
    Int(u64),
    /// A floating-point literal: `1.`, `.5`, `1e-3` (`1e999` is infinity, as in Python).
    Float(f64),
    /// An imaginary literal, `2.5j`: the value of its imaginary part.
    Imag(f64),
    /// A string literal, adjacent literals joined (`'a' 'b'` is `'ab'`), escapes decoded.
    Str(String),
    /// `True` or `False`.
    Bool(bool),
    /// `None` (numpy's `newaxis` in a subscript).
    None,
    /// `...` (Ellipsis).
    Ellipsis,
    /// `(a, b)`, `(a,)`, `()`, a bare `a, b` at the top level, or the index of `x[a, b]`.
    Tuple(Vec<Expr>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `value.name`.
    Attribute {
        /// What the attribute is taken from.
        value: Box<Expr>,
        /// The attribute's name.
        name: String,
        /// Where the name is written.
        name_span: Span,
    },
    /// `func(args..., name=value...)`: positional arguments come first.
    Call {
        /// What is called.
        func: Box<Expr>,
        /// The positional arguments.
        args: Vec<Expr>,
        /// The keyword arguments, in order, no name twice.
        keywords: Vec<Keyword>,
    },
    /// `value[index]`; several indices are one [`ExprKind::Tuple`], as in Python.
    Subscript {
        /// What is indexed.
        value: Box<Expr>,
        /// The index: an expression, a [`ExprKind::Slice`], or a tuple of them.
        index: Box<Expr>,
    },
    /// `lower:upper:step` with any part omitted; appears only as (part of) an index.
    Slice {
        /// The start, if given.
        lower: Option<Box<Expr>>,
        /// The stop, if given.
        upper: Option<Box<Expr>>,
        /// The step, if given.
        step: Option<Box<Expr>>,
    },
    /// `-x`, `+x`, `~x`, `not x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// `left op right` for the arithmetic, bitwise, shift and matrix operators.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `a and b and c` or `a or b or c`: two or more values, as Python groups them
    /// (`(a or b) or c` is a `BoolOp` inside another).
    BoolOp {
        /// `and` or `or`.
        op: BoolOp,
        /// The operands, two or more.
        values: Vec<Expr>,
    },
    /// A comparison chain, `a < b <= c`: it means `a < b and b <= c` with `b`
    /// evaluated once, as in Python.
    Compare {
        /// The first operand.
        left: Box<Expr>,
        /// Each operator with the operand on its right; at least one.
        rest: Vec<(CompareOp, Expr)>,
    },
    /// `body if test else orelse`.
    IfElse {
        /// The value when `test` holds.
        body: Box<Expr>,
        /// The condition.
        test: Box<Expr>,
        /// The value otherwise.
        orelse: Box<Expr>,
    },
}

/// A keyword argument of a call, `name=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    /// The keyword.
    pub name: String,
    /// Where the keyword is written.
    pub name_span: Span,
    /// Its value.
    pub value: Expr,
    /// The whole `name=value`.
    pub span: Span,
}

/// A prefix operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `+x`.
    Pos,
    /// `~x`.
    Invert,
    /// `not x`.
    Not,
}

/// A binary operator other than `and`, `or` and the comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `//`.
    FloorDiv,
    /// `%`.
    Mod,
    /// `**`.
    Pow,
    /// `@`.
    MatMul,
    /// `<<`.
    LShift,
    /// `>>`.
    RShift,
    /// `&`.
    BitAnd,
    /// `|`.
    BitOr,
    /// `^`.
    BitXor,
}

/// `and` or `or`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoolOp {
    /// `and`.
    And,
    /// `or`.
    Or,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
}

impl UnaryOp {
    /// The operator as written (`not` without its space).
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Pos => "+",
            UnaryOp::Invert => "~",
            UnaryOp::Not => "not",
        }
    }
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::FloorDiv => "//",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "**",
            BinaryOp::MatMul => "@",
            BinaryOp::LShift => "<<",
            BinaryOp::RShift => ">>",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "^",
        }
    }
}

impl BoolOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BoolOp::And => "and",
            BoolOp::Or => "or",
        }
    }
}

impl CompareOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        }
    }
}

impl Expr {
    /// A node of `kind` written at `span`; its height is computed from the children.
    pub fn new(kind: ExprKind, span: Span) -> Self {
        let height = 1 + kind.children().map(Expr::height).max().unwrap_or(0);
        Expr { kind, span, height }
    }

    /// What the node is.
    pub fn kind(&self) -> &ExprKind {
        &self.kind
    }

    /// Where the node is written. A node's span starts at its first token, which is an
    /// opening parenthesis when its first operand is parenthesised (`(a + b) * c`
    /// starts at `(`), and a parenthesised node's own span leaves its parentheses
    /// out, as Python's spans do, except for tuples, whose parentheses belong to them.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The number of nodes on the longest path from this node to a leaf (a leaf is
    /// 1). The parser refuses trees higher than [`crate::array::expr::MAX_DEPTH`], so
    /// walking a parsed tree recursively cannot exhaust the stack.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Takes the node apart: its kind and its span.
    pub fn into_parts(self) -> (ExprKind, Span) {
        (self.kind, self.span)
    }

    /// The dotted name this node spells, outermost first: `np.random.random` is
    /// `["np", "random", "random"]`, `x` is `["x"]`; `None` for anything but a name
    /// or attributes of attributes of a name.
    ///
    /// # Examples
    /// ```
    /// use blockwise::array::expr::{parse, strip_library_prefix};
    ///
    /// let e = parse("np.random.random")?;
    /// let path = e.dotted_name().unwrap();
    /// assert_eq!(strip_library_prefix(&path), ["random", "random"]);
    /// # Ok::<(), blockwise::Error>(())
    /// ```
    pub fn dotted_name(&self) -> Option<Vec<&str>> {
        let mut names = Vec::new();
        let mut node = self;
        loop {
            match &node.kind {
                ExprKind::Name(name) => {
                    names.push(name.as_str());
                    names.reverse();
                    return Some(names);
                }
                ExprKind::Attribute { value, name, .. } => {
                    names.push(name.as_str());
                    node = value;
                }
                _ => return None,
            }
        }
    }

    /// The direct children, in source order (a keyword argument's value in its place).
    pub fn children(&self) -> impl Iterator<Item = &Expr> {
        self.kind.children()
    }
}

impl ExprKind {
    fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        use std::iter::{empty, once};
        match self {
            ExprKind::Name(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Imag(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::None
            | ExprKind::Ellipsis => Box::new(empty()),
            ExprKind::Tuple(items)
            | ExprKind::List(items)
            | ExprKind::BoolOp { values: items, .. } => Box::new(items.iter()),
            ExprKind::Attribute { value, .. } => Box::new(once(&**value)),
            ExprKind::Call {
                func,
                args,
                keywords,
            } => Box::new(
                once(&**func)
                    .chain(args.iter())
                    .chain(keywords.iter().map(|k| &k.value)),
            ),
            ExprKind::Subscript { value, index } => Box::new(once(&**value).chain(once(&**index))),
            ExprKind::Slice { lower, upper, step } => Box::new(
                [lower, upper, step]
                    .into_iter()
                    .filter_map(|part| part.as_deref()),
            ),
            ExprKind::Unary { operand, .. } => Box::new(once(&**operand)),
            ExprKind::Binary { left, right, .. } => Box::new(once(&**left).chain(once(&**right))),
            ExprKind::Compare { left, rest } => {
                Box::new(once(&**left).chain(rest.iter().map(|(_, e)| e)))
            }
            ExprKind::IfElse { body, test, orelse } => {
                Box::new(once(&**body).chain(once(&**test)).chain(once(&**orelse)))
            }
        }
    }
}

/// The dotted path without the module prefix numpy code is written with: `np`,
/// `numpy`, `da` or `dask.array` (`["np", "sum"]` is `["sum"]`; a path without such a
/// prefix is returned whole). Users paste numpy and Dask code; the language's own
/// functions are named without a prefix.
pub fn strip_library_prefix<'p, 'a>(path: &'p [&'a str]) -> &'p [&'a str] {
    match path {
        ["np" | "numpy" | "da", rest @ ..] => rest,
        ["dask", "array", rest @ ..] => rest,
        ["scipy", rest @ ..] => rest,
        _ => path,
    }
}
