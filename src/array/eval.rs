//! Evaluating an `array` expression: names bound to input arrays, numpy's functions
//! and methods, Python's operators and scalars, into a lazy [`Array`].
//!
//! Values are Python-like: numbers stay Python scalars (weak in type promotion, as
//! numpy 2 treats them) until they meet an array; tuples and lists are shapes, axes
//! and chunks. Every error names the place in the expression it comes from.

use std::collections::BTreeMap;

use super::counts::Bins;
use super::expr::{self as ast, Expr, ExprKind};
use super::graph::{auto_chunks, regular_chunks, Array, Chunks, Index};
use super::kernel::ops::{BinaryOp, UnaryOp};
use super::kernel::reduce::Reducer;
use super::program::{Distribution, Scalar};
use super::promote::Operand;
use super::select::{Reduced, Selection};
use super::stencil::{PadMode, Weights};
use crate::error::syntax::{line_column, render_caret, Span};
use crate::error::{Error, Result};
use crate::storage::array::DType;

/// A value during evaluation.
#[derive(Debug, Clone)]
pub enum Value {
    /// An array.
    Array(Array),
    /// A Python `int`.
    Int(i128),
    /// A Python `float`.
    Float(f64),
    /// `True` or `False`.
    Bool(bool),
    /// A string (a dtype name, an option).
    Str(String),
    /// `None`.
    None,
    /// `...`.
    Ellipsis,
    /// A tuple or a list.
    Tuple(Vec<Value>),
    /// `start:stop:step` in a subscript.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// A dtype (`float32`, `np.int8`).
    DType(DType),
    /// A function, by its name (`sum`, `random.random`).
    Function(String),
    /// `unique(x)` of an array, with counts or not: its length is known only once
    /// it has run, so it can only be an expression's result.
    Unique(Array, bool),
    /// `x[mask]`: the elements a boolean mask selects, of a length only the mask's
    /// values tell.
    Selected(Selection),
    /// A method bound to its array (or selection).
    Method(Box<Value>, String),
}

impl Value {
    /// The value described for a message: `a float64 array`, `the integer 3`.
    pub fn describe(&self) -> String {
        match self {
            Value::Array(a) => format!("a {} array", a.dtype().name()),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(f) => format!("the float {f}"),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Str(s) => format!("the string {s:?}"),
            Value::None => "None".into(),
            Value::Ellipsis => "...".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::Slice(..) => "a slice".into(),
            Value::DType(d) => format!("the dtype {}", d.name()),
            Value::Function(f) => format!("the function {f}"),
            Value::Method(_, m) => format!("the method .{m}"),
            Value::Unique(..) => "the result of unique(), whose length is known only once it \
                                  has run (it can only be the expression's result)"
                .into(),
            Value::Selected(s) => format!(
                "a boolean selection of shape {} (its length is known only once it has run)",
                s.shape_text()
            ),
        }
    }
}

/// The functions the language knows, for messages, close matches and `--help`.
pub const FUNCTIONS: &[&str] = &[
    "abs",
    "absolute",
    "add",
    "all",
    "amax",
    "amin",
    "angle",
    "any",
    "arange",
    "around",
    "arccos",
    "arcsin",
    "arctan",
    "arctan2",
    "bincount",
    "asarray",
    "argmax",
    "argmin",
    "argsort",
    "array",
    "astype",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "broadcast_to",
    "cbrt",
    "ceil",
    "clip",
    "concatenate",
    "conj",
    "conjugate",
    "convolve",
    "correlate",
    "cos",
    "cosh",
    "cumprod",
    "cumsum",
    "diff",
    "divide",
    "dot",
    "einsum",
    "empty",
    "empty_like",
    "equal",
    "exp",
    "expand_dims",
    "expm1",
    "eye",
    "floor",
    "floor_divide",
    "full",
    "full_like",
    "gradient",
    "greater",
    "greater_equal",
    "histogram",
    "hypot",
    "imag",
    "invert",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "linspace",
    "log",
    "log10",
    "log1p",
    "log2",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "matmul",
    "max",
    "maximum",
    "mean",
    "meshgrid",
    "min",
    "minimum",
    "mod",
    "moveaxis",
    "multiply",
    "ndimage.convolve",
    "ndimage.correlate",
    "nanargmax",
    "nanargmin",
    "nanmax",
    "nanmean",
    "nanmin",
    "nanprod",
    "nanstd",
    "nansum",
    "nanvar",
    "negative",
    "not_equal",
    "ones",
    "ones_like",
    "pad",
    "power",
    "prod",
    "random.integers",
    "random.normal",
    "random.random",
    "random.uniform",
    "ravel",
    "real",
    "rechunk",
    "remainder",
    "reshape",
    "rint",
    "round",
    "sign",
    "sin",
    "sinh",
    "sort",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "subtract",
    "sum",
    "swapaxes",
    "tan",
    "tanh",
    "take",
    "tensordot",
    "topk",
    "transpose",
    "true_divide",
    "trunc",
    "unique",
    "var",
    "where",
    "zeros",
    "zeros_like",
];

/// The functions and constants, as `blockwise array --help` lists them.
pub fn functions_help() -> String {
    let mut text = String::from("Functions (also as methods, and with np. or da. in front):\n");
    let mut line = String::from(" ");
    for f in FUNCTIONS {
        if line.len() + f.len() + 2 > 80 {
            text.push_str(&line);
            text.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(f);
    }
    text.push_str(&line);
    text.push_str(
        "\nConstants: pi, e, inf, nan, newaxis, True, False, and the dtype names \
         (float64, int32, ...).",
    );
    text
}

/// Named constants.
fn constant(name: &str) -> Option<Value> {
    Some(match name {
        "pi" => Value::Float(std::f64::consts::PI),
        "e" => Value::Float(std::f64::consts::E),
        "inf" | "Inf" | "infty" => Value::Float(f64::INFINITY),
        "nan" | "NaN" | "NAN" => Value::Float(f64::NAN),
        "newaxis" => Value::None,
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        _ => return DType::from_name(name).map(Value::DType),
    })
}

/// The evaluator of one expression.
pub struct Evaluator<'a> {
    text: &'a str,
    names: &'a BTreeMap<String, Array>,
    /// Random constructors without a seed met so far: each takes its own.
    unseeded: std::sync::atomic::AtomicU64,
}

/// The seed of the `n`-th random constructor without one in an expression: drawn
/// afresh for each process, as numpy's and Dask's are, and the same for every
/// evaluation of the text in the process (so that what is planned is what runs;
/// a plan records the seeds it uses).
fn unseeded_seed(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_u64(base);
    h.write_u64(n);
    // Seeds are non-negative integers to numpy's Philox key.
    h.finish() >> 1
}

/// Evaluates `text` with `names` bound to arrays.
///
/// # Errors
/// [`Error::ExprSyntax`] when it does not parse; [`Error::InExpression`] wrapping
/// what went wrong where.
pub fn evaluate(text: &str, names: &BTreeMap<String, Array>) -> Result<Value> {
    let expr = super::expr::parse(text)?;
    let ev = Evaluator {
        text,
        names,
        unseeded: std::sync::atomic::AtomicU64::new(0),
    };
    // Deep expressions recurse; the parser bounds their depth, and this runs on a
    // stack sized for that bound as the parser does.
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, || ev.eval(&expr))
            .map_err(|e| Error::bug("starting the evaluator's thread", e))?
            .join()
            .map_err(|_| Error::bug("the expression evaluator panicked", ""))?
    })
}

impl Evaluator<'_> {
    fn at(&self, span: Span, error: Error) -> Error {
        if matches!(error, Error::InExpression { .. }) {
            return error;
        }
        let (line, column) = line_column(self.text, span.start);
        Error::InExpression {
            error: Box::new(error),
            line,
            column,
            caret: render_caret(self.text, span),
        }
    }

    fn eval(&self, e: &Expr) -> Result<Value> {
        self.eval_inner(e).map_err(|err| self.at(e.span(), err))
    }

    fn eval_inner(&self, e: &Expr) -> Result<Value> {
        Ok(match e.kind() {
            ExprKind::Int(i) => Value::Int(i128::from(*i)),
            ExprKind::Float(f) => Value::Float(*f),
            ExprKind::Imag(v) => Value::Array(Array::scalar(
                Scalar::Complex(0.0, *v),
                DType::Complex128,
                Some(Operand::PyComplex(0.0, *v)),
            )),
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::None => Value::None,
            ExprKind::Ellipsis => Value::Ellipsis,
            ExprKind::Tuple(items) | ExprKind::List(items) => {
                Value::Tuple(items.iter().map(|i| self.eval(i)).collect::<Result<_>>()?)
            }
            ExprKind::Name(_) | ExprKind::Attribute { .. } => self.name_or_attribute(e)?,
            ExprKind::Call {
                func,
                args,
                keywords,
            } => {
                let f = self.eval(func)?;
                let args: Vec<Value> = args.iter().map(|a| self.eval(a)).collect::<Result<_>>()?;
                let mut kw = BTreeMap::new();
                for k in keywords {
                    kw.insert(k.name.clone(), self.eval(&k.value)?);
                }
                let mut call = Call { args, kw };
                let out = match f {
                    Value::Function(name) => self.call(&name, &mut call)?,
                    Value::Method(a, name) => {
                        call.args.insert(0, *a);
                        self.call(&name, &mut call)?
                    }
                    other => {
                        return Err(Error::ArrayArgument {
                            op: "call".into(),
                            reason: format!("{} is not callable", other.describe()),
                        })
                    }
                };
                call.finish()?;
                out
            }
            ExprKind::Subscript { value, index } => {
                let v = self.eval(value)?;
                // A tuple (meshgrid's arrays, a shape) is indexed as Python does.
                if let Value::Tuple(items) = &v {
                    let i = to_i64(&self.eval(index)?, "index")?;
                    let n = items.len() as i64;
                    let at = if i < 0 { i + n } else { i };
                    return items
                        .get(at as usize)
                        .filter(|_| at >= 0)
                        .cloned()
                        .ok_or_else(|| {
                            usage(
                                "index",
                                &format!("tuple index {i} out of range ({n} items)"),
                            )
                        });
                }
                let index: Vec<Value> = match index.kind() {
                    ExprKind::Tuple(items) => {
                        items.iter().map(|i| self.eval(i)).collect::<Result<_>>()?
                    }
                    _ => vec![self.eval(index)?],
                };
                if let Value::Selected(sel) = v {
                    return index_selection(&sel, &index);
                }
                let a = to_array(v)?;
                subscript(&a, &index)?
            }
            ExprKind::Slice { lower, upper, step } => {
                let part = |p: &Option<Box<Expr>>| -> Result<Option<i64>> {
                    match p {
                        None => Ok(None),
                        Some(x) => match self.eval(x)? {
                            Value::None => Ok(None),
                            v => Ok(Some(to_i64(&v, "slice")?)),
                        },
                    }
                };
                Value::Slice(part(lower)?, part(upper)?, part(step)?)
            }
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand)?;
                lifted(vec![v], |mut v| unary(*op, v.remove(0)))?
            }
            ExprKind::Binary { op, left, right } => {
                let a = self.eval(left)?;
                let b = self.eval(right)?;
                let selected = [&a, &b].iter().any(|v| matches!(v, Value::Selected(_)));
                if selected && *op == ast::BinaryOp::MatMul {
                    return Err(usage("matmul", SELECTION_ADVICE));
                }
                lifted(vec![a, b], |mut v| {
                    let b = v.remove(1);
                    binary(*op, v.remove(0), b)
                })?
            }
            ExprKind::Compare { left, rest } => {
                let mut lhs = self.eval(left)?;
                let mut out: Option<Value> = None;
                for (op, right) in rest {
                    let rhs = self.eval(right)?;
                    let bop = match op {
                        ast::CompareOp::Lt => BinaryOp::Less,
                        ast::CompareOp::Le => BinaryOp::LessEqual,
                        ast::CompareOp::Gt => BinaryOp::Greater,
                        ast::CompareOp::Ge => BinaryOp::GreaterEqual,
                        ast::CompareOp::Eq => BinaryOp::Equal,
                        ast::CompareOp::Ne => BinaryOp::NotEqual,
                    };
                    let r = lifted(vec![lhs, rhs.clone()], |mut v| {
                        let b = v.remove(1);
                        apply_binary(bop, v.remove(0), b)
                    })?;
                    out = Some(match out {
                        None => r,
                        Some(prev) => lifted(vec![prev, r], |mut v| {
                            let b = v.remove(1);
                            apply_binary(BinaryOp::BitwiseAnd, v.remove(0), b)
                        })?,
                    });
                    lhs = rhs;
                }
                out.ok_or_else(|| Error::bug("a comparison without operators", ""))?
            }
            ExprKind::BoolOp { .. } | ExprKind::IfElse { .. } => {
                return Err(Error::ArrayArgument {
                    op: "and/or".into(),
                    reason: "the truth value of an array is ambiguous; use & and | (with \
                             brackets: (a > 0) & (b < 1)) or where(cond, a, b)"
                        .into(),
                })
            }
        })
    }

    fn name_or_attribute(&self, e: &Expr) -> Result<Value> {
        if let Some(path) = e.dotted_name() {
            if let [name] = path.as_slice() {
                if let Some(a) = self.names.get(*name) {
                    return Ok(Value::Array(a.clone()));
                }
            }
            let stripped = ast::strip_library_prefix(&path);
            let dotted = stripped.join(".");
            if let [name] = stripped {
                if let Some(v) = constant(name) {
                    return Ok(v);
                }
            }
            if FUNCTIONS.contains(&dotted.as_str()) || dotted == "random" {
                return Ok(Value::Function(dotted));
            }
            if path.len() == 1 || self.names.get(path[0]).is_none() {
                return Err(unknown(&path.join("."), self.names));
            }
        }
        // An attribute of a value: `.T`, `.shape`, a method.
        let ExprKind::Attribute { value, name, .. } = e.kind() else {
            return Err(Error::bug("a name that is not a dotted path", ""));
        };
        let v = self.eval(value)?;
        if let Value::Selected(sel) = v {
            return selected_attribute(sel, name, self.names);
        }
        let Value::Array(a) = v else {
            return Err(Error::ArrayArgument {
                op: format!(".{name}"),
                reason: format!("{} has no attribute {name:?}", v.describe()),
            });
        };
        Ok(match name.as_str() {
            "T" => Value::Array(a.transpose(None)?),
            "shape" => Value::Tuple(a.shape().iter().map(|&n| Value::Int(n.into())).collect()),
            "ndim" => Value::Int(a.ndim() as i128),
            "size" => Value::Int(a.size().into()),
            "nbytes" => Value::Int(a.nbytes().into()),
            "dtype" => Value::DType(a.dtype()),
            "real" => Value::Array(a.unary(UnaryOp::Real)?),
            "imag" => Value::Array(a.unary(UnaryOp::Imag)?),
            m if FUNCTIONS.contains(&m) => Value::Method(Box::new(Value::Array(a)), m.to_string()),
            m => return Err(unknown(&format!(".{m}"), self.names)),
        })
    }

    /// A function given a boolean selection: elementwise work and reductions.
    fn call_selected(&self, name: &str, c: &mut Call) -> Result<Value> {
        if let Some(r) = reducer(name) {
            let Value::Selected(sel) = c.arg(0, "a")? else {
                return Err(usage(
                    name,
                    "only its first operand may be a boolean selection",
                ));
            };
            let (axes, keepdims, ddof) = reduction_options(c)?;
            return Ok(match sel.reduce(r, axes.as_deref(), keepdims, ddof)? {
                Reduced::Array(a) => Value::Array(with_split_every(c, a)?),
                Reduced::Selection(s) => Value::Selected(s),
            });
        }
        if unary_ufunc(name).is_some()
            || binary_ufunc(name).is_some()
            || ELEMENTWISE.contains(&name)
        {
            let sel = unselect(c.args.iter_mut().chain(c.kw.values_mut()))?;
            let out = self.call(name, c)?;
            return match sel {
                Some(sel) => reselect(&sel, out),
                None => Ok(out),
            };
        }
        Err(usage(name, SELECTION_ADVICE))
    }

    fn call(&self, name: &str, c: &mut Call) -> Result<Value> {
        let selected = c
            .args
            .iter()
            .chain(c.kw.values())
            .any(|v| matches!(v, Value::Selected(_)));
        if selected {
            return self.call_selected(name, c);
        }
        if matches!(name, "round" | "around") {
            let x = to_array(c.arg(0, "a")?)?;
            let decimals = match c.opt(1, "decimals")? {
                None => 0,
                Some(v) => to_i64(&v, "decimals")?,
            };
            return Ok(Value::Array(round(&x, decimals)?));
        }
        if let Some(op) = unary_ufunc(name) {
            let x = c.arg(0, "x")?;
            return Ok(Value::Array(apply_unary_fn(op, x)?));
        }
        if let Some(op) = binary_ufunc(name) {
            let a = c.arg(0, "x1")?;
            let b = c.arg(1, "x2")?;
            return apply_binary(op, a, b);
        }
        if let Some(r) = reducer(name) {
            let x = to_array(c.arg(0, "a")?)?;
            let (axes, keepdims, ddof) = reduction_options(c)?;
            let reduced = x.reduce(r, axes.as_deref(), keepdims, ddof)?;
            return Ok(Value::Array(with_split_every(c, reduced)?));
        }
        if matches!(name, "nanargmax" | "nanargmin") {
            let x = to_array(c.arg(0, "a")?)?;
            let (axes, keepdims, _) = reduction_options(c)?;
            let reduced = nan_arg(&x, name == "nanargmax", axes.as_deref(), keepdims)?;
            return Ok(Value::Array(with_split_every(c, reduced)?));
        }
        Ok(match name {
            "astype" => {
                let x = to_array(c.arg(0, "x")?)?;
                let dtype = to_dtype(&c.arg(1, "dtype")?)?;
                Value::Array(x.astype(dtype)?)
            }
            "rechunk" => {
                let x = to_array(c.arg(0, "x")?)?;
                let chunks = chunks_arg(&c.arg(1, "chunks")?, x.shape(), x.dtype())?;
                Value::Array(x.rechunk(chunks)?)
            }
            "transpose" => {
                let x = to_array(c.arg(0, "a")?)?;
                let rest: Vec<Value> = c.rest(1);
                let axes = match (rest.as_slice(), c.opt_kw("axes")?) {
                    ([], None) | ([], Some(Value::None)) => None,
                    ([one], None) if matches!(one, Value::Tuple(_)) => Some(int_list(one, "axes")?),
                    ([], Some(v)) => Some(int_list(&v, "axes")?),
                    (many, None) => Some(
                        many.iter()
                            .map(|v| to_i64(v, "axes"))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    _ => return Err(usage("transpose", "axes given twice")),
                };
                Value::Array(x.transpose(axes.as_deref())?)
            }
            "matmul" | "dot" => {
                let a = to_array(c.arg(0, "a")?)?;
                let b = to_array(c.arg(1, "b")?)?;
                if name == "dot" && (a.ndim() == 0 || b.ndim() == 0) {
                    return apply_binary(BinaryOp::Multiply, Value::Array(a), Value::Array(b));
                }
                Value::Array(a.matmul(&b)?)
            }
            "cumsum" | "cumprod" => {
                let x = to_array(c.arg(0, "a")?)?;
                let axis = match c.opt(1, "axis")? {
                    None | Some(Value::None) => None,
                    Some(v) => Some(to_i64(&v, "axis")?),
                };
                let r = if name == "cumprod" {
                    Reducer::Prod
                } else {
                    Reducer::Sum
                };
                Value::Array(x.scan(r, axis)?)
            }
            "meshgrid" => {
                // numpy's meshgrid of 1-d arrays: 'xy' (the default) swaps the first
                // two outputs' axes, 'ij' keeps the inputs' order.
                let arrays: Vec<Array> =
                    c.rest(0).into_iter().map(to_array).collect::<Result<_>>()?;
                let indexing = match c.opt_kw("indexing")? {
                    None => "xy".to_string(),
                    Some(Value::Str(s)) if s == "xy" || s == "ij" => s,
                    Some(other) => {
                        return Err(usage(
                            "meshgrid",
                            &format!("indexing must be 'xy' or 'ij', not {}", other.describe()),
                        ))
                    }
                };
                if let Some(a) = arrays.iter().find(|a| a.ndim() != 1) {
                    return Err(usage(
                        "meshgrid",
                        &format!("takes 1-d arrays here, not one of {} dimensions", a.ndim()),
                    ));
                }
                let n = arrays.len();
                let mut shape: Vec<u64> = arrays.iter().map(|a| a.shape()[0]).collect();
                let xy = indexing == "xy" && n >= 2;
                if xy {
                    shape.swap(0, 1);
                }
                let mut out = Vec::new();
                for (k, a) in arrays.iter().enumerate() {
                    // The axis this input varies along in the output.
                    let axis = match (xy, k) {
                        (true, 0) => 1,
                        (true, 1) => 0,
                        _ => k,
                    };
                    let positions: Vec<i64> = (0..n as i64).filter(|&d| d != axis as i64).collect();
                    let expanded = a.expand_dims(&positions)?;
                    out.push(Value::Array(expanded.broadcast_to(&shape)?));
                }
                Value::Tuple(out)
            }
            "concatenate" | "stack" => {
                let arrays = match c.arg(0, "arrays")? {
                    Value::Tuple(items) => items
                        .into_iter()
                        .map(to_array)
                        .collect::<Result<Vec<_>>>()?,
                    other => {
                        return Err(usage(
                            name,
                            &format!(
                                "expected a tuple or list of arrays, found {}",
                                other.describe()
                            ),
                        ))
                    }
                };
                let axis = match c.opt(1, "axis")? {
                    None => 0,
                    Some(v) => to_i64(&v, "axis")?,
                };
                Value::Array(if name == "stack" {
                    Array::stack(&arrays, axis)?
                } else {
                    Array::concatenate(&arrays, axis)?
                })
            }
            "reshape" => {
                let x = to_array(c.arg(0, "a")?)?;
                let rest = c.rest(1);
                let keyword = c.opt_kw("shape")?.or(c.opt_kw("newshape")?);
                let shape = match (rest.as_slice(), keyword.as_ref()) {
                    ([one], None) | ([], Some(one)) => int_list(one, "shape")?,
                    ([], None) => return Err(usage("reshape", "the new shape is missing")),
                    (many, None) => many
                        .iter()
                        .map(|v| to_i64(v, "shape"))
                        .collect::<Result<Vec<_>>>()?,
                    _ => return Err(usage("reshape", "the shape given twice")),
                };
                c.no_order("reshape")?;
                Value::Array(x.reshape(&shape)?)
            }
            "ravel" => {
                let x = to_array(c.arg(0, "a")?)?;
                c.no_order("ravel")?;
                Value::Array(x.ravel()?)
            }
            "sort" | "argsort" => {
                let x = to_array(c.arg(0, "a")?)?;
                let axis = c.opt(1, "axis")?;
                if let Some(kind) = c.opt(2, "kind")? {
                    let ok = matches!(&kind, Value::None)
                        || matches!(&kind, Value::Str(k) if ["quicksort", "mergesort", "heapsort", "stable"].contains(&k.as_str()));
                    if !ok {
                        return Err(usage(name, &format!("kind must be 'quicksort', 'mergesort', 'heapsort' or 'stable', not {}", kind.describe())));
                    }
                }
                // axis=None sorts the flattened array.
                let (x, axis) = match axis {
                    Some(Value::None) => (x.ravel()?, -1),
                    None => (x, -1),
                    Some(v) => (x, to_i64(&v, "axis")?),
                };
                Value::Array(if name == "sort" {
                    x.sort(axis)?
                } else {
                    x.argsort(axis)?
                })
            }
            "topk" => {
                let x = to_array(c.arg(0, "a")?)?;
                let k = to_i64(&c.arg(1, "k")?, "k")?;
                let axis = match c.opt(2, "axis")? {
                    None => -1,
                    Some(v) => to_i64(&v, "axis")?,
                };
                Value::Array(x.topk(k, axis)?)
            }
            "pad" => {
                let x = to_array(c.arg(0, "array")?)?;
                let widths = pad_widths(&c.arg(1, "pad_width")?, x.ndim())?;
                let mode = match c.opt(2, "mode")? {
                    None => "constant".to_string(),
                    Some(Value::Str(m)) => m,
                    Some(other) => {
                        return Err(usage(
                            "pad",
                            &format!("mode must be a string, not {}", other.describe()),
                        ))
                    }
                };
                let values = match c.opt_kw("constant_values")? {
                    None => vec![(Scalar::Int(0), Scalar::Int(0)); x.ndim()],
                    Some(v) => per_axis_pairs(&v, x.ndim(), "constant_values", &to_scalar)?,
                };
                let uniform = values.iter().all(|&(b, a)| b == values[0].0 && a == b);
                if mode != "constant" || uniform {
                    let value = values.first().map_or(Scalar::Int(0), |p| p.0);
                    check_fits(value, x.dtype())?;
                    return Ok(Value::Array(x.pad(&widths, PadMode::numpy(&mode, value)?)?));
                }
                // Values that differ by axis or side: one side of one axis at a time,
                // in numpy's order (a corner takes the last axis' value).
                let mut out = x;
                for (axis, (&(before, after), &(vb, va))) in widths.iter().zip(&values).enumerate()
                {
                    for (side, value) in [((before, 0), vb), ((0, after), va)] {
                        if side == (0, 0) {
                            continue;
                        }
                        check_fits(value, out.dtype())?;
                        let mut w = vec![(0, 0); out.ndim()];
                        w[axis] = side;
                        out = out.pad(&w, PadMode::Constant(value))?;
                    }
                }
                Value::Array(out)
            }
            "diff" => {
                let x = to_array(c.arg(0, "a")?)?;
                let n = match c.opt(1, "n")? {
                    None => 1,
                    Some(v) => u64::try_from(to_i64(&v, "n")?)
                        .map_err(|_| usage("diff", "order must be non-negative"))?,
                };
                let axis = match c.opt(2, "axis")? {
                    None => -1,
                    Some(v) => to_i64(&v, "axis")?,
                };
                let mut parts = Vec::new();
                let ends = [c.opt(3, "prepend")?, c.opt(4, "append")?];
                if x.ndim() > 0 {
                    let k = super::graph::normalize_axis("diff", axis, x.ndim())?;
                    let end = |v: Value| -> Result<Array> {
                        let a = to_array(v)?;
                        if a.ndim() > 0 {
                            return Ok(a);
                        }
                        let mut shape = x.shape().to_vec();
                        shape[k] = 1;
                        a.broadcast_to(&shape)
                    };
                    if let Some(v) = ends[0].clone() {
                        parts.push(end(v)?);
                    }
                    parts.push(x.clone());
                    if let Some(v) = ends[1].clone() {
                        parts.push(end(v)?);
                    }
                }
                let x = if parts.len() > 1 {
                    Array::concatenate(&parts, axis)?
                } else {
                    x
                };
                Value::Array(x.diff(n, axis)?)
            }
            "gradient" => {
                let f = to_array(c.arg(0, "f")?)?;
                let spacing: Vec<f64> = c
                    .rest(1)
                    .iter()
                    .map(|v| match v {
                        Value::Array(_) | Value::Tuple(_) => Err(usage(
                            "gradient",
                            "spacing must be numbers here (coordinate arrays are not supported)",
                        )),
                        v => to_f64(v, "spacing"),
                    })
                    .collect::<Result<_>>()?;
                let axes: Vec<i64> = match c.opt_kw("axis")? {
                    None | Some(Value::None) => (0..f.ndim() as i64).collect(),
                    Some(v) => int_list(&v, "axis")?,
                };
                let edge_order = match c.opt_kw("edge_order")? {
                    None => 1,
                    Some(v) => u8::try_from(to_i64(&v, "edge_order")?)
                        .map_err(|_| usage("gradient", "edge_order must be 1 or 2"))?,
                };
                let dx = |k: usize| -> Result<f64> {
                    match spacing.len() {
                        0 => Ok(1.0),
                        1 => Ok(spacing[0]),
                        n if n == axes.len() => Ok(spacing[k]),
                        n => Err(usage(
                            "gradient",
                            &format!("{n} spacings for {} axes", axes.len()),
                        )),
                    }
                };
                let mut out = Vec::new();
                for (k, &axis) in axes.iter().enumerate() {
                    out.push(Value::Array(f.gradient(axis, dx(k)?, edge_order)?));
                }
                // One axis gives an array, several a tuple, as numpy's.
                if out.len() == 1 {
                    out.pop().unwrap_or(Value::None)
                } else {
                    Value::Tuple(out)
                }
            }
            "convolve" | "correlate" => {
                let (a_value, v_value) = (c.arg(0, "a")?, c.arg(1, "v")?);
                let mode = match c.opt(2, "mode")? {
                    None if name == "convolve" => "full".to_string(),
                    None => "valid".to_string(),
                    Some(Value::Str(m)) => m,
                    Some(other) => {
                        return Err(usage(
                            name,
                            &format!("mode must be a string, not {}", other.describe()),
                        ))
                    }
                };
                let a = to_array(a_value.clone())?;
                let v = to_array(v_value.clone())?;
                let convolve = name == "convolve";
                if a.ndim() == 1 && v.ndim() == 1 && a.shape()[0] < v.shape()[0] {
                    // numpy swaps the operands so that the longer is the data: a
                    // convolution is the same either way; a correlation comes out
                    // reversed (and conjugated, the conjugate having moved).
                    let swapped = v.convolve_1d(&weights_arg(a_value, name)?, &mode, convolve)?;
                    if convolve {
                        return Ok(Value::Array(swapped));
                    }
                    let reversed = swapped.index(&[Index::Slice(None, None, Some(-1))])?;
                    return Ok(Value::Array(if reversed.dtype().is_complex() {
                        reversed.unary(UnaryOp::Conjugate)?
                    } else {
                        reversed
                    }));
                }
                Value::Array(a.convolve_1d(&weights_arg(v_value, name)?, &mode, convolve)?)
            }
            "ndimage.convolve" | "ndimage.correlate" => {
                let x = to_array(c.arg(0, "input")?)?;
                let w = weights_arg(c.arg(1, "weights")?, name)?;
                if let Some(out) = c.opt(2, "output")? {
                    if !matches!(out, Value::None) {
                        return Err(usage(name, "output= is not supported: use .astype(...)"));
                    }
                }
                let mode = match c.opt(3, "mode")? {
                    None => "reflect".to_string(),
                    Some(Value::Str(m)) => m,
                    Some(other) => {
                        return Err(usage(
                            name,
                            &format!("mode must be a string, not {}", other.describe()),
                        ))
                    }
                };
                let cval = match c.opt(4, "cval")? {
                    None => Scalar::Float(0.0),
                    Some(v) => to_scalar(&v)?,
                };
                let origin = match c.opt(5, "origin")? {
                    None => Vec::new(),
                    Some(v) => int_list(&v, "origin")?,
                };
                let mode = PadMode::ndimage(&mode, cval)?;
                Value::Array(x.ndimage_filter(&w, mode, &origin, name == "ndimage.convolve")?)
            }
            "array" | "asarray" => {
                let v = c.arg(0, "object")?;
                let dtype = match c.opt(1, "dtype")? {
                    None | Some(Value::None) => None,
                    Some(d) => Some(to_dtype(&d)?),
                };
                let a = match v {
                    Value::Array(a) => a,
                    Value::Tuple(_) => {
                        let (shape, values, inferred) = literal_values(&v)?;
                        // numpy 2 refuses an integer its dtype cannot hold.
                        if let Some(d) = dtype {
                            for &value in &values {
                                check_fits(value, d)?;
                            }
                        }
                        Array::literal(&shape, values, inferred)?
                    }
                    other => scalar_array(&other)?,
                };
                Value::Array(match dtype {
                    Some(d) if d != a.dtype() => a.astype(d)?,
                    _ => a,
                })
            }
            "histogram" => {
                let a = to_array(c.arg(0, "a")?)?;
                let bins = c.opt(1, "bins")?.unwrap_or(Value::Int(10));
                let range = c.opt(2, "range")?;
                let density = c.opt(3, "density")?;
                let weights = match c.opt(4, "weights")? {
                    None | Some(Value::None) => None,
                    Some(v) => Some(to_array(v)?),
                };
                let (bins, edges) = match bins {
                    Value::Int(_) => {
                        let n = u64::try_from(to_i64(&bins, "bins")?)
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or_else(|| {
                                usage("histogram", "`bins` must be positive, when an integer")
                            })?;
                        let (mut lo, mut hi) = match range {
                            Some(Value::Tuple(r)) if r.len() == 2 => {
                                (to_f64(&r[0], "range")?, to_f64(&r[1], "range")?)
                            }
                            None | Some(Value::None) => {
                                return Err(usage(
                                    "histogram",
                                    "give range=(lo, hi) with a number of bins, or the edges as a \
                                     list: the edges must be known before the data are read (as \
                                     in Dask)",
                                ))
                            }
                            Some(other) => {
                                return Err(usage(
                                    "histogram",
                                    &format!("range must be (lo, hi), not {}", other.describe()),
                                ))
                            }
                        };
                        if !(lo.is_finite() && hi.is_finite()) {
                            return Err(usage(
                                "histogram",
                                &format!("supplied range of [{lo}, {hi}] is not finite"),
                            ));
                        }
                        if lo > hi {
                            return Err(usage(
                                "histogram",
                                "max must be larger than min in range parameter.",
                            ));
                        }
                        if lo == hi {
                            lo -= 0.5;
                            hi += 0.5;
                        }
                        let edges = Array::linspace(lo, hi, n + 1, true, n + 1)?;
                        (Bins::Uniform { lo, hi, n }, edges)
                    }
                    Value::Tuple(_) => {
                        let (shape, values, dtype) = literal_values(&bins)?;
                        let edges: Vec<f64> = values
                            .iter()
                            .map(|v| match *v {
                                Scalar::Int(i) => i as f64,
                                Scalar::UInt(u) => u as f64,
                                Scalar::Float(f) => f,
                                Scalar::Bool(b) => f64::from(u8::from(b)),
                                Scalar::Complex(re, _) => re,
                            })
                            .collect();
                        if shape.len() != 1 || edges.len() < 2 {
                            return Err(usage(
                                "histogram",
                                "`bins` must be 1d, with at least two edges",
                            ));
                        }
                        if edges.windows(2).any(|w| {
                            w[0].partial_cmp(&w[1]) == Some(std::cmp::Ordering::Greater)
                                || w[0].is_nan()
                                || w[1].is_nan()
                        }) {
                            return Err(usage(
                                "histogram",
                                "`bins` must increase monotonically, when an array",
                            ));
                        }
                        (
                            Bins::Edges { edges },
                            Array::literal(&shape, values, dtype)?,
                        )
                    }
                    other => {
                        return Err(usage(
                            "histogram",
                            &format!(
                                "bins must be a number with range=, or the edges as a list, not {}",
                                other.describe()
                            ),
                        ))
                    }
                };
                let counts = a.counts(bins, weights.as_ref())?;
                let counts = match density {
                    Some(Value::Bool(true)) => {
                        // numpy: n / db / n.sum(), db the bins' widths as float.
                        let widths = edges.astype(DType::Float64)?.diff(1, 0)?;
                        let total = counts.reduce(Reducer::Sum, None, false, 0.0)?;
                        counts
                            .binary(BinaryOp::TrueDivide, &widths)?
                            .binary(BinaryOp::TrueDivide, &total)?
                    }
                    _ => counts,
                };
                Value::Tuple(vec![Value::Array(counts), Value::Array(edges)])
            }
            "bincount" => {
                let x = to_array(c.arg(0, "x")?)?;
                let weights = match c.opt(1, "weights")? {
                    None | Some(Value::None) => None,
                    Some(v) => Some(to_array(v)?),
                };
                let n = match c.opt(2, "minlength")? {
                    None => 0,
                    Some(v) => to_i64(&v, "minlength")?,
                };
                if x.ndim() != 1 {
                    return Err(usage("bincount", "the values must be a 1-d array"));
                }
                let n = u64::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                    usage(
                        "bincount",
                        "give minlength= above the largest value: the result's length \
                             must be known before the data are read",
                    )
                })?;
                Value::Array(x.counts(Bins::Integers { n }, weights.as_ref())?)
            }
            "take" => {
                let x = to_array(c.arg(0, "a")?)?;
                let indices = to_array(c.arg(1, "indices")?)?;
                let (x, axis) = match c.opt(2, "axis")? {
                    None | Some(Value::None) => (x.ravel()?, 0),
                    Some(v) => (x, to_i64(&v, "axis")?),
                };
                if indices.ndim() == 0 && indices.dtype().is_integer() {
                    // One index: its row, the axis gone (numpy's scalar `take`).
                    let taken = x.take(&indices.expand_dims(&[0])?, axis)?;
                    let axis = if axis < 0 {
                        axis + x.ndim() as i64
                    } else {
                        axis
                    };
                    return Ok(Value::Array(taken.squeeze(Some(&[axis]))?));
                }
                Value::Array(x.take(&indices, axis)?)
            }
            "unique" => {
                let x = to_array(c.arg(0, "ar")?)?;
                for flag in ["return_index", "return_inverse"] {
                    if let Some(v) = c.opt_kw(flag)? {
                        if to_bool(&v)? {
                            return Err(usage("unique", &format!("{flag}=True is not supported")));
                        }
                    }
                }
                let counts = match c.opt_kw("return_counts")? {
                    None => false,
                    Some(v) => to_bool(&v)?,
                };
                if let Some(v) = c.opt_kw("axis")? {
                    if !matches!(v, Value::None) {
                        return Err(usage("unique", "axis= is not supported: unique flattens"));
                    }
                }
                Value::Unique(x, counts)
            }
            "tensordot" => {
                let a = to_array(c.arg(0, "a")?)?;
                let b = to_array(c.arg(1, "b")?)?;
                let (ia, ib) = match c.opt(2, "axes")? {
                    None => tensordot_last(&a, 2)?,
                    Some(Value::Tuple(pair)) if pair.len() == 2 => {
                        let list = |v: &Value| match v {
                            Value::Tuple(_) => int_list(v, "axes"),
                            v => Ok(vec![to_i64(v, "axes")?]),
                        };
                        (list(&pair[0])?, list(&pair[1])?)
                    }
                    Some(v) => tensordot_last(&a, to_i64(&v, "axes")?)?,
                };
                Value::Array(a.tensordot(&b, &ia, &ib)?)
            }
            "einsum" => {
                let Value::Str(subscripts) = c.arg(0, "subscripts")? else {
                    return Err(usage(
                        "einsum",
                        "the first argument must be the subscripts string",
                    ));
                };
                let operands: Vec<Array> =
                    c.rest(1).into_iter().map(to_array).collect::<Result<_>>()?;
                Value::Array(Array::einsum(&subscripts, &operands)?)
            }
            "swapaxes" => {
                let x = to_array(c.arg(0, "a")?)?;
                let a = to_i64(&c.arg(1, "axis1")?, "axis1")?;
                let b = to_i64(&c.arg(2, "axis2")?, "axis2")?;
                Value::Array(x.swapaxes(a, b)?)
            }
            "moveaxis" => {
                let x = to_array(c.arg(0, "a")?)?;
                let src = int_list(&c.arg(1, "source")?, "source")?;
                let dst = int_list(&c.arg(2, "destination")?, "destination")?;
                Value::Array(x.moveaxis(&src, &dst)?)
            }
            "expand_dims" => {
                let x = to_array(c.arg(0, "a")?)?;
                let axes = int_list(&c.arg(1, "axis")?, "axis")?;
                Value::Array(x.expand_dims(&axes)?)
            }
            "squeeze" => {
                let x = to_array(c.arg(0, "a")?)?;
                let axes = match c.opt(1, "axis")? {
                    None | Some(Value::None) => None,
                    Some(v) => Some(int_list(&v, "axis")?),
                };
                Value::Array(x.squeeze(axes.as_deref())?)
            }
            "broadcast_to" => {
                let x = to_array(c.arg(0, "array")?)?;
                let shape = shape_arg(&c.arg(1, "shape")?)?;
                Value::Array(x.broadcast_to(&shape)?)
            }
            "where" => {
                let cond = to_array(c.arg(0, "condition")?)?;
                let a = scalar_or_array(c.arg(1, "x")?)?;
                let b = scalar_or_array(c.arg(2, "y")?)?;
                Value::Array(Array::select(&cond, &a, &b)?)
            }
            "clip" => {
                let x = c.arg(0, "a")?;
                let lo = c.opt(1, "a_min")?.unwrap_or(Value::None);
                let hi = c.opt(2, "a_max")?.unwrap_or(Value::None);
                let (lo, hi) = clip_bounds(&x, lo, hi);
                let mut out = x;
                if !matches!(lo, Value::None) {
                    out = apply_binary(BinaryOp::Maximum, out, lo)?;
                }
                if !matches!(hi, Value::None) {
                    out = apply_binary(BinaryOp::Minimum, out, hi)?;
                }
                Value::Array(to_array(out)?)
            }
            "logical_not" => {
                let x = to_array(c.arg(0, "x")?)?;
                Value::Array(x.astype(DType::Bool)?.unary(UnaryOp::Invert)?)
            }
            "logical_and" | "logical_or" | "logical_xor" => {
                let a = to_array(c.arg(0, "x1")?)?.astype(DType::Bool)?;
                let b = to_array(c.arg(1, "x2")?)?.astype(DType::Bool)?;
                let op = match name {
                    "logical_and" => BinaryOp::BitwiseAnd,
                    "logical_or" => BinaryOp::BitwiseOr,
                    _ => BinaryOp::BitwiseXor,
                };
                Value::Array(a.binary(op, &b)?)
            }
            "zeros" | "ones" | "empty" | "full" => {
                let shape = shape_arg(&c.arg(0, "shape")?)?;
                let (fill, dtype_at) = if name == "full" {
                    (Some(c.arg(1, "fill_value")?), 2)
                } else {
                    (None, 1)
                };
                let dtype = c.opt(dtype_at, "dtype")?;
                let dtype = match (&dtype, &fill) {
                    (Some(Value::None) | None, Some(v)) => python_dtype(v)?,
                    (Some(Value::None) | None, None) => DType::Float64,
                    (Some(d), _) => to_dtype(d)?,
                };
                let value = match (name, fill) {
                    ("ones", _) => Scalar::Int(1),
                    (_, Some(v)) => to_scalar(&v)?,
                    _ => Scalar::Int(0),
                };
                check_fits(value, dtype)?;
                let chunks = match c.opt_kw("chunks")? {
                    None => auto_chunks(&shape, dtype.size() as u64)?,
                    Some(v) => chunks_arg(&v, &shape, dtype)?,
                };
                Value::Array(Array::full(&shape, chunks, value, dtype)?)
            }
            "zeros_like" | "ones_like" | "empty_like" | "full_like" => {
                let x = to_array(c.arg(0, "a")?)?;
                let fill = if name == "full_like" {
                    Some(to_scalar(&c.arg(1, "fill_value")?)?)
                } else {
                    None
                };
                let dtype = match c.opt_kw("dtype")? {
                    None | Some(Value::None) => x.dtype(),
                    Some(d) => to_dtype(&d)?,
                };
                let value = match name {
                    "ones_like" => Scalar::Int(1),
                    "full_like" => fill.unwrap_or(Scalar::Int(0)),
                    _ => Scalar::Int(0),
                };
                check_fits(value, dtype)?;
                Value::Array(Array::full(x.shape(), x.chunks().clone(), value, dtype)?)
            }
            "arange" => {
                let nums: Vec<Value> = c.rest(0);
                let kw_start = c.opt_kw("start")?;
                let kw_stop = c.opt_kw("stop")?;
                let kw_step = c.opt_kw("step")?;
                let mut parts: Vec<Value> = nums;
                if parts.is_empty() {
                    parts.extend(kw_start);
                    parts.extend(kw_stop);
                }
                let (start, stop) = match parts.as_slice() {
                    [stop] => (Value::Int(0), stop.clone()),
                    [start, stop, ..] => (start.clone(), stop.clone()),
                    [] => return Err(usage("arange", "give at least stop")),
                };
                let step = parts.get(2).cloned().or(kw_step).unwrap_or(Value::Int(1));
                let all_int = [&start, &stop, &step]
                    .iter()
                    .all(|v| matches!(v, Value::Int(_) | Value::Bool(_)));
                let dtype = match c.opt_kw("dtype")? {
                    None | Some(Value::None) if all_int => DType::Int64,
                    None | Some(Value::None) => DType::Float64,
                    Some(d) => to_dtype(&d)?,
                };
                let (start, stop, step) = (
                    to_f64(&start, "start")?,
                    to_f64(&stop, "stop")?,
                    to_f64(&step, "step")?,
                );
                if step == 0.0 || !step.is_finite() {
                    return Err(usage(
                        "arange",
                        &format!("the step must be a non-zero finite number, not {step}"),
                    ));
                }
                let n = ((stop - start) / step).ceil().max(0.0).min(u64::MAX as f64) as u64;
                let chunk = chunk_len(c.opt_kw("chunks")?, n, dtype)?;
                Value::Array(Array::arange(start, stop, step, dtype, chunk)?)
            }
            "linspace" => {
                let start = to_f64(&c.arg(0, "start")?, "start")?;
                let stop = to_f64(&c.arg(1, "stop")?, "stop")?;
                let num = match c.opt(2, "num")? {
                    None => 50,
                    Some(v) => to_u64(&v, "num")?,
                };
                let endpoint = c.opt_kw("endpoint")?.map_or(Ok(true), |v| to_bool(&v))?;
                let chunk = chunk_len(c.opt_kw("chunks")?, num, DType::Float64)?;
                Value::Array(Array::linspace(start, stop, num, endpoint, chunk)?)
            }
            "eye" => {
                let n = to_u64(&c.arg(0, "N")?, "N")?;
                let m = match c.opt(1, "M")? {
                    None | Some(Value::None) => n,
                    Some(v) => to_u64(&v, "M")?,
                };
                let k = match c.opt(2, "k")? {
                    None => 0,
                    Some(v) => to_i64(&v, "k")?,
                };
                let dtype = match c.opt_kw("dtype")? {
                    None | Some(Value::None) => DType::Float64,
                    Some(d) => to_dtype(&d)?,
                };
                let shape = [n, m];
                let chunks = match c.opt_kw("chunks")? {
                    None => auto_chunks(&shape, dtype.size() as u64)?,
                    Some(v) => chunks_arg(&v, &shape, dtype)?,
                };
                let chunk: Vec<u64> = chunks.iter().map(|c| c[0].max(1)).collect();
                Value::Array(Array::eye(n, m, k, dtype, &chunk)?)
            }
            "random.random" | "random.normal" | "random.uniform" | "random.integers" => {
                self.random(name, c)?
            }
            other => return Err(unknown(other, self.names)),
        })
    }

    fn random(&self, name: &str, c: &mut Call) -> Result<Value> {
        let (dist, size_at) = match name {
            "random.random" => (Distribution::Random, 0),
            "random.normal" => {
                let loc = c.opt(0, "loc")?.map_or(Ok(0.0), |v| to_f64(&v, "loc"))?;
                let scale = c
                    .opt(1, "scale")?
                    .map_or(Ok(1.0), |v| to_f64(&v, "scale"))?;
                (Distribution::Normal { loc, scale }, 2)
            }
            "random.uniform" => {
                let low = c.opt(0, "low")?.map_or(Ok(0.0), |v| to_f64(&v, "low"))?;
                let high = c.opt(1, "high")?.map_or(Ok(1.0), |v| to_f64(&v, "high"))?;
                (Distribution::Uniform { low, high }, 2)
            }
            _ => {
                let a = to_i64(&c.arg(0, "low")?, "low")?;
                let (low, high) = match c.opt(1, "high")? {
                    None | Some(Value::None) => (0, a),
                    Some(v) => (a, to_i64(&v, "high")?),
                };
                if high <= low {
                    return Err(usage(
                        "random.integers",
                        &format!("low >= high ({low} >= {high})"),
                    ));
                }
                (Distribution::Integers { low, high }, 2)
            }
        };
        let size = match c.opt(size_at, "size")? {
            None | Some(Value::None) => vec![],
            Some(v) => shape_arg(&v)?,
        };
        let seed = match c.opt_kw("seed")? {
            None | Some(Value::None) => {
                let n = self
                    .unseeded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                unseeded_seed(n)
            }
            Some(v) => to_u64(&v, "seed")?,
        };
        let dtype = match dist {
            Distribution::Integers { .. } => DType::Int64,
            _ => DType::Float64,
        };
        let chunks = match c.opt_kw("chunks")? {
            None => auto_chunks(&size, dtype.size() as u64)?,
            Some(v) => chunks_arg(&v, &size, dtype)?,
        };
        Ok(Value::Array(Array::random(&size, chunks, seed, dist)))
    }
}

/// A call's arguments, each taken once; what is left over is an error.
struct Call {
    args: Vec<Value>,
    kw: BTreeMap<String, Value>,
}

impl Call {
    /// Argument `i`, or keyword `name`; required.
    fn arg(&mut self, i: usize, name: &str) -> Result<Value> {
        self.opt(i, name)?
            .ok_or_else(|| usage("call", &format!("missing argument {name:?}")))
    }

    /// Argument `i`, or keyword `name`.
    fn opt(&mut self, i: usize, name: &str) -> Result<Option<Value>> {
        let positional = self
            .args
            .get_mut(i)
            .map(|v| std::mem::replace(v, Value::Ellipsis));
        let keyword = self.kw.remove(name);
        match (positional, keyword) {
            (Some(_), Some(_)) => Err(usage(
                "call",
                &format!("argument {name:?} is given by position and by keyword"),
            )),
            (Some(v), None) => {
                self.mark_used(i);
                Ok(Some(v))
            }
            (None, k) => Ok(k),
        }
    }

    /// Refuses an `order` other than C's, the only one arrays are read in.
    fn no_order(&mut self, op: &str) -> Result<()> {
        match self.kw.remove("order") {
            None => Ok(()),
            Some(Value::Str(s)) if s == "C" => Ok(()),
            Some(v) => Err(usage(
                op,
                &format!("only order='C' is supported, not {}", v.describe()),
            )),
        }
    }

    fn opt_kw(&mut self, name: &str) -> Result<Option<Value>> {
        Ok(self.kw.remove(name))
    }

    /// Positional arguments from `i` on.
    fn rest(&mut self, i: usize) -> Vec<Value> {
        let out: Vec<Value> = self.args.iter().skip(i).cloned().collect();
        for j in i..self.args.len() {
            self.mark_used(j);
        }
        out
    }

    fn mark_used(&mut self, i: usize) {
        if let Some(v) = self.args.get_mut(i) {
            *v = Value::Function(String::new());
        }
    }

    /// Refuses arguments nobody took.
    fn finish(self) -> Result<()> {
        if let Some(name) = self.kw.keys().next() {
            return Err(usage(
                "call",
                &format!("unexpected keyword argument {name:?}"),
            ));
        }
        let unused = self
            .args
            .iter()
            .filter(|v| !matches!(v, Value::Function(f) if f.is_empty()))
            .count();
        if unused > 0 {
            return Err(usage(
                "call",
                &format!("{unused} positional argument(s) too many"),
            ));
        }
        Ok(())
    }
}

fn usage(op: &str, reason: &str) -> Error {
    Error::ArrayArgument {
        op: op.into(),
        reason: reason.into(),
    }
}

/// The error for an unknown name, with the close matches among functions and inputs.
fn unknown(name: &str, names: &BTreeMap<String, Array>) -> Error {
    let bare = name.trim_start_matches('.');
    let candidates = FUNCTIONS
        .iter()
        .map(|f| f.to_string())
        .chain(names.keys().cloned());
    Error::UnknownFunction {
        name: name.into(),
        close: crate::error::close_names(bare, candidates),
    }
}

fn unary_ufunc(name: &str) -> Option<UnaryOp> {
    use UnaryOp as U;
    Some(match name {
        "negative" => U::Negative,
        "invert" | "bitwise_not" => U::Invert,
        "abs" | "absolute" => U::Absolute,
        "sign" => U::Sign,
        "floor" => U::Floor,
        "ceil" => U::Ceil,
        "trunc" => U::Trunc,
        "rint" | "round" => U::Rint,
        "isnan" => U::Isnan,
        "isinf" => U::Isinf,
        "isfinite" => U::Isfinite,
        "sqrt" => U::Sqrt,
        "cbrt" => U::Cbrt,
        "exp" => U::Exp,
        "expm1" => U::Expm1,
        "log" => U::Log,
        "log1p" => U::Log1p,
        "log2" => U::Log2,
        "log10" => U::Log10,
        "sin" => U::Sin,
        "cos" => U::Cos,
        "tan" => U::Tan,
        "arcsin" => U::Arcsin,
        "arccos" => U::Arccos,
        "arctan" => U::Arctan,
        "sinh" => U::Sinh,
        "cosh" => U::Cosh,
        "tanh" => U::Tanh,
        "real" => U::Real,
        "imag" => U::Imag,
        "conj" | "conjugate" => U::Conjugate,
        "angle" => U::Angle,
        _ => return None,
    })
}

fn binary_ufunc(name: &str) -> Option<BinaryOp> {
    use BinaryOp as B;
    Some(match name {
        "add" => B::Add,
        "subtract" => B::Subtract,
        "multiply" => B::Multiply,
        "divide" | "true_divide" => B::TrueDivide,
        "floor_divide" => B::FloorDivide,
        "mod" | "remainder" => B::Remainder,
        "power" => B::Power,
        "equal" => B::Equal,
        "not_equal" => B::NotEqual,
        "less" => B::Less,
        "less_equal" => B::LessEqual,
        "greater" => B::Greater,
        "greater_equal" => B::GreaterEqual,
        "bitwise_and" => B::BitwiseAnd,
        "bitwise_or" => B::BitwiseOr,
        "bitwise_xor" => B::BitwiseXor,
        "maximum" => B::Maximum,
        "minimum" => B::Minimum,
        "arctan2" => B::Arctan2,
        "hypot" => B::Hypot,
        _ => return None,
    })
}

fn reducer(name: &str) -> Option<Reducer> {
    use Reducer as R;
    Some(match name {
        "sum" => R::Sum,
        "prod" => R::Prod,
        "min" | "amin" => R::Min,
        "max" | "amax" => R::Max,
        "any" => R::Any,
        "all" => R::All,
        "nansum" => R::Nansum,
        "nanprod" => R::Nanprod,
        "nanmin" => R::Nanmin,
        "nanmax" => R::Nanmax,
        "mean" => R::Mean,
        "nanmean" => R::Nanmean,
        "var" => R::Var,
        "std" => R::Std,
        "nanvar" => R::Nanvar,
        "nanstd" => R::Nanstd,
        "argmin" => R::Argmin,
        "argmax" => R::Argmax,
        _ => return None,
    })
}

/// A Python number as a 0-d array, weak in type promotion (NEP 50).
///
/// # Errors
/// [`Error::ArrayArgument`] for a value that is not a number.
pub fn scalar_array(v: &Value) -> Result<Array> {
    Ok(match v {
        Value::Bool(b) => Array::scalar(Scalar::Bool(*b), DType::Bool, Some(Operand::PyBool)),
        Value::Int(i) => {
            let (value, dtype) = if let Ok(v) = i64::try_from(*i) {
                (Scalar::Int(v), DType::Int64)
            } else if let Ok(v) = u64::try_from(*i) {
                (Scalar::UInt(v), DType::UInt64)
            } else {
                // Past 64 bits: only a float array can take it (an integer one says
                // the integer is out of its bounds, as numpy does).
                (Scalar::Float(*i as f64), DType::Float64)
            };
            Array::scalar(value, dtype, Some(Operand::PyInt(*i)))
        }
        Value::Float(f) => Array::scalar(
            Scalar::Float(*f),
            DType::Float64,
            Some(Operand::PyFloat(*f)),
        ),
        other => {
            return Err(Error::ArrayArgument {
                op: "operand".into(),
                reason: format!("{} is not an array or a number", other.describe()),
            })
        }
    })
}

fn scalar_or_array(v: Value) -> Result<Array> {
    match v {
        Value::Array(a) => Ok(a),
        other => scalar_array(&other),
    }
}

/// An operand as an array: numbers as 0-d arrays, and a list or tuple of numbers
/// as numpy's `array(...)` of it (`convolve([1, 2, 3], x)`, `x + [1, 2]`).
fn to_array(v: Value) -> Result<Array> {
    if let Value::Tuple(_) = &v {
        let (shape, values, dtype) = literal_values(&v)?;
        return Array::literal(&shape, values, dtype);
    }
    scalar_or_array(v)
}

fn apply_unary_fn(op: UnaryOp, v: Value) -> Result<Array> {
    to_array(v)?.unary(op)
}

/// A binary operation; two Python numbers compute as Python does.
fn apply_binary(op: BinaryOp, a: Value, b: Value) -> Result<Value> {
    if let (Some(x), Some(y)) = (python_number(&a), python_number(&b)) {
        if let Some(v) = python_binary(op, x, y) {
            return Ok(v);
        }
    }
    let (a, b) = (to_array(a)?, to_array(b)?);
    Ok(Value::Array(a.binary(op, &b)?))
}

#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn python_number(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(Num::Int(*i)),
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// Python's arithmetic on two numbers, for shapes and constants (`2 * 1000`,
/// `-1`); `None` where it would need Python's big integers or raise.
fn python_binary(op: BinaryOp, a: Num, b: Num) -> Option<Value> {
    use BinaryOp as B;
    match (a, b) {
        // Past 128 bits Python's integers would go on; a float is the closest.
        (Num::Int(x), Num::Int(y))
            if matches!(op, B::Add | B::Subtract | B::Multiply | B::Power)
                && python_int_op(op, x, y).is_none() =>
        {
            let (x, y) = (x as f64, y as f64);
            Some(Value::Float(match op {
                B::Add => x + y,
                B::Subtract => x - y,
                B::Multiply => x * y,
                _ => x.powf(y),
            }))
        }
        (Num::Int(x), Num::Int(y)) => Some(Value::Int(match op {
            B::Add | B::Subtract | B::Multiply => python_int_op(op, x, y)?,
            B::FloorDivide if y != 0 => x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0),
            B::Remainder if y != 0 => {
                x - y * (x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0))
            }
            B::Power if y >= 0 => python_int_op(op, x, y)?,
            // Python gives a float for a negative integer power.
            B::Power => return Some(Value::Float((x as f64).powf(y as f64))),
            B::TrueDivide if y != 0 => return Some(Value::Float(x as f64 / y as f64)),
            _ => return None,
        })),
        (x, y) => {
            let f = |n: Num| match n {
                Num::Int(i) => i as f64,
                Num::Float(f) => f,
            };
            let (x, y) = (f(x), f(y));
            Some(Value::Float(match op {
                B::Add => x + y,
                B::Subtract => x - y,
                B::Multiply => x * y,
                B::TrueDivide if y != 0.0 => x / y,
                B::Power => x.powf(y),
                _ => return None,
            }))
        }
    }
}

/// `x op y` on Python integers that fit 128 bits.
fn python_int_op(op: BinaryOp, x: i128, y: i128) -> Option<i128> {
    match op {
        BinaryOp::Add => x.checked_add(y),
        BinaryOp::Subtract => x.checked_sub(y),
        BinaryOp::Multiply => x.checked_mul(y),
        BinaryOp::Power => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
        _ => None,
    }
}

fn unary(op: ast::UnaryOp, v: Value) -> Result<Value> {
    Ok(match (op, v) {
        (ast::UnaryOp::Pos, v) => v,
        (ast::UnaryOp::Neg, Value::Int(i)) => Value::Int(-i),
        (ast::UnaryOp::Neg, Value::Float(f)) => Value::Float(-f),
        (ast::UnaryOp::Neg, v) => Value::Array(to_array(v)?.unary(UnaryOp::Negative)?),
        (ast::UnaryOp::Invert, v) => Value::Array(to_array(v)?.unary(UnaryOp::Invert)?),
        (ast::UnaryOp::Not, _) => {
            return Err(usage(
                "not",
                "the truth value of an array is ambiguous; use ~ or logical_not",
            ))
        }
    })
}

fn binary(op: ast::BinaryOp, a: Value, b: Value) -> Result<Value> {
    use ast::BinaryOp as A;
    let bop = match op {
        A::Add => BinaryOp::Add,
        A::Sub => BinaryOp::Subtract,
        A::Mul => BinaryOp::Multiply,
        A::Div => BinaryOp::TrueDivide,
        A::FloorDiv => BinaryOp::FloorDivide,
        A::Mod => BinaryOp::Remainder,
        A::Pow => {
            // numpy's `**` takes a Python 2 as `square`, which has no boolean
            // loop: booleans square as int8 (`power` itself gives int64).
            if let (Value::Array(x), Value::Int(2)) = (&a, &b) {
                if x.dtype() == DType::Bool {
                    let x = Value::Array(x.astype(DType::Int8)?);
                    return apply_binary(BinaryOp::Power, x, b);
                }
            }
            BinaryOp::Power
        }
        A::BitAnd => BinaryOp::BitwiseAnd,
        A::BitOr => BinaryOp::BitwiseOr,
        A::BitXor => BinaryOp::BitwiseXor,
        A::MatMul => return Ok(Value::Array(to_array(a)?.matmul(&to_array(b)?)?)),
        A::LShift | A::RShift => {
            return Err(usage(op.symbol(), "this operator is not implemented yet"))
        }
    };
    apply_binary(bop, a, b)
}

/// Indexing from subscript values: basic indices, and one list, integer array or
/// boolean mask.
fn subscript(a: &Array, index: &[Value]) -> Result<Value> {
    let ellipses = index
        .iter()
        .filter(|v| matches!(v, Value::Ellipsis))
        .count();
    if ellipses > 1 {
        return Err(usage(
            "index",
            "an index can only have a single ellipsis ('...')",
        ));
    }
    let advanced: Vec<Option<Array>> = index
        .iter()
        .map(|v| match v {
            Value::Tuple(_) => {
                let (shape, values, dtype) = literal_values(v)?;
                Ok(Some(Array::literal(&shape, values, dtype)?))
            }
            Value::Array(x) if x.ndim() > 0 || x.dtype() == DType::Bool => Ok(Some(x.clone())),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    if advanced.iter().flatten().count() > 1 {
        return Err(usage(
            "index",
            "only one array (or list) of indices per subscript is supported",
        ));
    }
    // A mask stands for as many axes as it has.
    let consumed: usize = index
        .iter()
        .zip(&advanced)
        .map(|(v, x)| match (v, x) {
            (_, Some(x)) if x.dtype() == DType::Bool => x.ndim(),
            // `True` and `False` are masks of no axes: they add one, as `None`.
            (Value::None | Value::Ellipsis | Value::Bool(_), _) => 0,
            _ => 1,
        })
        .sum();
    // The array of indices stands for whole slices in a basic index that runs
    // first; its rows are then taken, or its mask applied.
    let mut fancy: Option<(usize, Array)> = None;
    let mut out = Vec::new();
    // The axes `False` adds, which then select nothing.
    let mut empty = Vec::new();
    for (v, x) in index.iter().zip(&advanced) {
        if let Some(x) = x {
            // The result axis it becomes: those the entries before it give.
            let before = out.iter().filter(|i| !matches!(i, Index::Int(_))).count();
            fancy = Some((before, x.clone()));
            let axes = if x.dtype() == DType::Bool {
                x.ndim()
            } else {
                1
            };
            out.extend((0..axes).map(|_| Index::Slice(None, None, None)));
            continue;
        }
        out.push(match v {
            Value::Bool(b) => {
                if !b {
                    empty.push(out.iter().filter(|i| !matches!(i, Index::Int(_))).count());
                }
                Index::NewAxis
            }
            Value::Int(_) => Index::Int(to_i64(v, "index")?),
            Value::Slice(s, e, st) => Index::Slice(*s, *e, *st),
            Value::None => Index::NewAxis,
            Value::Ellipsis => {
                for _ in consumed..a.ndim() {
                    out.push(Index::Slice(None, None, None));
                }
                continue;
            }
            other => {
                return Err(usage(
                    "index",
                    &format!(
                        "{} cannot index an array (integers, slices, None, ..., a list or \
                         array of integers, and a boolean mask can)",
                        other.describe()
                    ),
                ))
            }
        });
    }
    let mut basic = a.index(&out)?;
    for axis in empty {
        let mut none = vec![Index::Slice(None, None, None); basic.ndim()];
        none[axis] = Index::Slice(Some(0), Some(0), None);
        basic = basic.index(&none)?;
    }
    let Some((axis, indices)) = fancy else {
        return Ok(Value::Array(basic));
    };
    // Integers are advanced indices too, to numpy: when they and the array are
    // not side by side, the array's result axes come first.
    let positions: Vec<usize> = index
        .iter()
        .zip(&advanced)
        .enumerate()
        .filter(|(_, (v, x))| x.is_some() || matches!(v, Value::Int(_)))
        .map(|(k, _)| k)
        .collect();
    let apart = positions
        .last()
        .zip(positions.first())
        .is_some_and(|(l, f)| l - f + 1 != positions.len());
    if indices.dtype() == DType::Bool {
        let k = indices.ndim();
        let values = if apart && axis > 0 {
            let from: Vec<i64> = (axis..axis + k).map(|a| a as i64).collect();
            let to: Vec<i64> = (0..k as i64).collect();
            basic.moveaxis(&from, &to)?
        } else {
            basic
        };
        let at = if apart { 0 } else { axis };
        return Ok(Value::Selected(Selection::new(values, indices, at)?));
    }
    let taken = basic.take(&indices, axis as i64)?;
    Ok(Value::Array(if apart && axis > 0 {
        taken.moveaxis(&[axis as i64], &[0])?
    } else {
        taken
    }))
}

/// numpy's `nanargmax` / `nanargmin`: NaNs become the infinity that never wins
/// (so a tie with a real infinity goes to the first, as numpy's does), and a slice
/// of NaNs only fails when computed, with numpy's message.
fn nan_arg(x: &Array, max: bool, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    let reducer = if max {
        Reducer::Argmax
    } else {
        Reducer::Argmin
    };
    if !x.dtype().is_float() {
        return x.reduce(reducer, axes, keepdims, 0.0);
    }
    let fill = if max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let fill = Array::scalar(
        Scalar::Float(fill),
        DType::Float64,
        Some(Operand::PyFloat(fill)),
    );
    let nan = x.unary(UnaryOp::Isnan)?;
    let found = Array::select(&nan, &fill, x)?.reduce(reducer, axes, keepdims, 0.0)?;
    let some = nan
        .reduce(Reducer::All, axes, keepdims, 0.0)?
        .unary(UnaryOp::Invert)?;
    Array::require(&some, &found, "All-NaN slice encountered")
}

/// numpy 2's `clip` of an integer array drops a Python-integer bound outside the
/// dtype's range on the side where it cannot bind (`clip(uint8, -5, 5)`); one on
/// the other side stays, and is refused as out of bounds.
fn clip_bounds(x: &Value, lo: Value, hi: Value) -> (Value, Value) {
    let dtype = match x {
        Value::Array(a) => a.dtype(),
        _ => return (lo, hi),
    };
    let Some(range) = super::promote::int_range(dtype) else {
        return (lo, hi);
    };
    let lo = match lo {
        Value::Int(v) if v < *range.start() => Value::None,
        other => other,
    };
    let hi = match hi {
        Value::Int(v) if v > *range.end() => Value::None,
        other => other,
    };
    (lo, hi)
}

/// numpy's `round(x, decimals)`: scaled by a power of ten, rounded half to even,
/// scaled back, in the array's own precision (as numpy computes it); integers are
/// unchanged by non-negative decimals.
fn round(x: &Array, decimals: i64) -> Result<Array> {
    if x.dtype().is_complex() {
        // Each part rounded, as numpy does.
        let re = round(&x.unary(UnaryOp::Real)?, decimals)?;
        let im = round(&x.unary(UnaryOp::Imag)?, decimals)?;
        let i = Array::scalar(
            Scalar::Complex(0.0, 1.0),
            DType::Complex128,
            Some(Operand::PyComplex(0.0, 1.0)),
        );
        return re.binary(BinaryOp::Add, &im.binary(BinaryOp::Multiply, &i)?);
    }
    if decimals == 0 {
        return x.unary(UnaryOp::Rint);
    }
    if !x.dtype().is_float() {
        if decimals > 0 {
            return Ok(x.clone());
        }
        if x.dtype() == DType::Bool {
            return Err(usage(
                "round",
                "booleans cannot be rounded to negative decimals (numpy cannot cast \
                 the float64 quotient back to bool)",
            ));
        }
        // numpy rounds integers in float64 and casts back to their own type.
        return round(&x.astype(DType::Float64)?, decimals)?.astype(x.dtype());
    }
    let f = 10f64.powi(i32::try_from(decimals.unsigned_abs()).unwrap_or(i32::MAX));
    let factor = Array::scalar(Scalar::Float(f), DType::Float64, Some(Operand::PyFloat(f)));
    let (into, back) = if decimals > 0 {
        (BinaryOp::Multiply, BinaryOp::TrueDivide)
    } else {
        (BinaryOp::TrueDivide, BinaryOp::Multiply)
    };
    x.binary(into, &factor)?
        .unary(UnaryOp::Rint)?
        .binary(back, &factor)
}

/// A reduction's `axis`, `keepdims` and `ddof`.
fn reduction_options(c: &mut Call) -> Result<(Option<Vec<i64>>, bool, f64)> {
    let axes = match c.opt(1, "axis")? {
        None | Some(Value::None) => None,
        Some(v) => Some(int_list(&v, "axis")?),
    };
    let keepdims = c.opt_kw("keepdims")?.map_or(Ok(false), |v| to_bool(&v))?;
    let ddof = match c.opt_kw("ddof")? {
        None => 0.0,
        Some(v) => to_f64(&v, "ddof")?,
    };
    Ok((axes, keepdims, ddof))
}

/// `reduced` with the tree's fan-in `split_every=`, when given.
fn with_split_every(c: &mut Call, reduced: Array) -> Result<Array> {
    Ok(match c.opt_kw("split_every")? {
        None | Some(Value::None) => reduced,
        Some(v) => {
            let n = to_i64(&v, "split_every")?;
            let n = u64::try_from(n).map_err(|_| {
                usage(
                    "split_every",
                    &format!("split_every must be at least 2, not {n}"),
                )
            })?;
            reduced.with_split_every(n)?
        }
    })
}

/// What a function that needs a boolean selection's length says.
const SELECTION_ADVICE: &str = "cannot take a boolean selection (x[mask]), whose length is \
                                known only once it has run: compute it first, reduce it \
                                (x[mask].sum()), or keep the shape with where(mask, x, fill)";

/// Functions that work element by element, so that on a boolean selection they
/// are the same work on its whole array, the mask kept (beside the ufuncs).
const ELEMENTWISE: &[&str] = &[
    "astype",
    "round",
    "around",
    "where",
    "clip",
    "logical_not",
    "logical_and",
    "logical_or",
    "logical_xor",
];

/// `op` on `values`, where a boolean selection stands for its whole array
/// (elementwise work commutes with the mask) and the result is selected again.
fn lifted(mut values: Vec<Value>, op: impl FnOnce(Vec<Value>) -> Result<Value>) -> Result<Value> {
    match unselect(values.iter_mut())? {
        None => op(values),
        Some(sel) => reselect(&sel, op(values)?),
    }
}

/// Replaces the boolean selections among `values` by their whole arrays, and
/// returns their selection.
///
/// # Errors
/// Selections by different masks, or an array operand that would broadcast
/// against the unknown axis.
fn unselect<'a>(values: impl Iterator<Item = &'a mut Value>) -> Result<Option<Selection>> {
    let values: Vec<&mut Value> = values.collect();
    let mut common: Option<Selection> = None;
    for v in &values {
        if let Value::Selected(s) = &**v {
            match &common {
                None => common = Some(s.clone()),
                Some(c) if c.same_mask(s) => {}
                Some(_) => {
                    return Err(usage(
                        "index",
                        "boolean selections by different masks cannot be combined: their \
                         lengths are known only once they have run",
                    ))
                }
            }
        }
    }
    let Some(sel) = common else {
        return Ok(None);
    };
    for v in values {
        let operand = match &*v {
            Value::Selected(s) => {
                *v = Value::Array(s.values().clone());
                continue;
            }
            Value::Array(_) | Value::Tuple(_) => to_array(v.clone())?,
            _ => continue,
        };
        if operand.ndim() <= sel.trailing_axes() {
            continue;
        }
        // Aligned from the right with the selection, an operand reaching the
        // selected axis must be 1 there (and not reach past the selection); it then
        // stands for one along each of the masked axes of the whole array.
        let (n, d) = (sel.ndim(), operand.ndim());
        let at = (d + sel.axis()).checked_sub(n);
        let fits = d <= n && at.is_some_and(|at| operand.shape()[at] == 1);
        let Some(at) = at.filter(|_| fits) else {
            return Err(usage(
                "broadcast",
                &format!(
                    "operands could not be broadcast together: a boolean selection of shape \
                     {} and an operand of shape {} (along the selected axis an operand must \
                     have length 1)",
                    sel.shape_text(),
                    crate::grid::tuple_text(operand.shape())
                ),
            ));
        };
        let masked = sel.values().ndim() + 1 - n;
        let extra: Vec<i64> = (0..masked.saturating_sub(1))
            .map(|k| (at + 1 + k) as i64)
            .collect();
        *v = Value::Array(operand.expand_dims(&extra)?);
    }
    Ok(Some(sel))
}

/// `v`, the result of elementwise work on a selection's whole array, selected.
fn reselect(sel: &Selection, v: Value) -> Result<Value> {
    match v {
        Value::Array(a) => Ok(Value::Selected(sel.with_values(a)?)),
        other => Ok(other),
    }
}

/// A basic index of a boolean selection along its known axes (`x[m][:, 0]`): the
/// same index of its whole array, the mask kept. The unknown axis may only be
/// taken whole.
fn index_selection(sel: &Selection, index: &[Value]) -> Result<Value> {
    let refuse = || {
        usage(
            "index",
            &format!(
                "{} can only be indexed along its known axes, taking the selected one whole \
                 (x[m][:, 0]); compute it first, or index the array before selecting",
                Value::Selected(sel.clone()).describe()
            ),
        )
    };
    let n = sel.ndim();
    let basic = index
        .iter()
        .all(|v| matches!(v, Value::Int(_) | Value::Slice(..) | Value::Ellipsis));
    let ellipses = index
        .iter()
        .filter(|v| matches!(v, Value::Ellipsis))
        .count();
    if !basic || ellipses > 1 || index.len() - ellipses > n {
        return Err(refuse());
    }
    // One entry an axis of the selection, `...` spelled out.
    let mut entries: Vec<Value> = Vec::with_capacity(n);
    for v in index {
        if matches!(v, Value::Ellipsis) {
            for _ in 0..n + 1 - index.len() {
                entries.push(Value::Slice(None, None, None));
            }
        } else {
            entries.push(v.clone());
        }
    }
    entries.resize(n, Value::Slice(None, None, None));
    if !matches!(
        entries[sel.axis()],
        Value::Slice(None, None, None) | Value::Slice(None, None, Some(1))
    ) {
        return Err(refuse());
    }
    // The whole array's index: the masked axes whole, the others as given.
    let masked = sel.values().ndim() + 1 - n;
    let mut out = Vec::new();
    let mut axis = sel.axis();
    for (j, v) in entries.iter().enumerate() {
        if j == sel.axis() {
            out.extend((0..masked).map(|_| Index::Slice(None, None, None)));
            continue;
        }
        out.push(match v {
            Value::Int(_) => {
                if j < sel.axis() {
                    axis -= 1;
                }
                Index::Int(to_i64(v, "index")?)
            }
            Value::Slice(a, b, c) => Index::Slice(*a, *b, *c),
            _ => return Err(refuse()),
        });
    }
    let values = sel.values().index(&out)?;
    Ok(Value::Selected(sel.reindexed(values, axis)?))
}

/// An attribute of a boolean selection: what is known before it runs.
fn selected_attribute(
    sel: Selection,
    name: &str,
    names: &BTreeMap<String, Array>,
) -> Result<Value> {
    let nan = Value::Float(f64::NAN);
    Ok(match name {
        "T" if sel.ndim() == 1 => Value::Selected(sel),
        "shape" => Value::Tuple(
            sel.shape()
                .iter()
                .map(|d| d.map_or(nan.clone(), |n| Value::Int(n.into())))
                .collect(),
        ),
        "ndim" => Value::Int(sel.ndim() as i128),
        "size" | "nbytes" => nan,
        "dtype" => Value::DType(sel.dtype()),
        "real" | "imag" => {
            let op = if name == "real" {
                UnaryOp::Real
            } else {
                UnaryOp::Imag
            };
            Value::Selected(sel.with_values(sel.values().unary(op)?)?)
        }
        m if FUNCTIONS.contains(&m) => Value::Method(Box::new(Value::Selected(sel)), m.into()),
        m => {
            return Err(match unknown(&format!(".{m}"), names) {
                e if m == "T" => {
                    let _ = e;
                    usage(
                        ".T",
                        "transposing a boolean selection of more than one axis is not supported",
                    )
                }
                e => e,
            })
        }
    })
}

/// The number a constant 0-d array holds (a numpy scalar from Python is
/// `full((), 2, dtype="int64")`), as a Python number, for where a parameter is
/// expected.
fn constant_of(v: &Value) -> Option<Value> {
    let Value::Array(a) = v else {
        return None;
    };
    if a.ndim() != 0 {
        return None;
    }
    let (program, _) = a.program();
    match program.nodes.as_slice() {
        [super::program::Node::Scalar { value, .. }] => match *value {
            Scalar::Int(i) => Some(Value::Int(i.into())),
            Scalar::UInt(u) => Some(Value::Int(u.into())),
            Scalar::Float(f) => Some(Value::Float(f)),
            Scalar::Bool(b) => Some(Value::Bool(b)),
            _ => None,
        },
        _ => None,
    }
}

fn to_i64(v: &Value, what: &str) -> Result<i64> {
    if let Some(c) = constant_of(v) {
        return to_i64(&c, what);
    }
    match v {
        Value::Int(i) => {
            i64::try_from(*i).map_err(|_| usage(what, &format!("{i} is out of range")))
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(usage(
            what,
            &format!("expected an integer, found {}", other.describe()),
        )),
    }
}

fn to_u64(v: &Value, what: &str) -> Result<u64> {
    let i = to_i64(v, what)?;
    u64::try_from(i)
        .map_err(|_| usage(what, &format!("expected a non-negative integer, found {i}")))
}

fn to_f64(v: &Value, what: &str) -> Result<f64> {
    if let Some(c) = constant_of(v) {
        return to_f64(&c, what);
    }
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        other => Err(usage(
            what,
            &format!("expected a number, found {}", other.describe()),
        )),
    }
}

fn to_bool(v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Int(i) => Ok(*i != 0),
        other => Err(usage(
            "flag",
            &format!("expected True or False, found {}", other.describe()),
        )),
    }
}

fn to_scalar(v: &Value) -> Result<Scalar> {
    if let Some(c) = constant_of(v) {
        return to_scalar(&c);
    }
    Ok(match v {
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Int(i) if *i < 0 => {
            Scalar::Int(i64::try_from(*i).map_err(|_| usage("fill_value", "out of range"))?)
        }
        Value::Int(i) => match i64::try_from(*i) {
            Ok(x) => Scalar::Int(x),
            Err(_) => {
                Scalar::UInt(u64::try_from(*i).map_err(|_| usage("fill_value", "out of range"))?)
            }
        },
        Value::Float(f) => Scalar::Float(*f),
        other => {
            return Err(usage(
                "fill_value",
                &format!("expected a number, found {}", other.describe()),
            ))
        }
    })
}

/// Refuses an integer fill value outside an integer dtype's range (numpy's
/// `OverflowError`).
fn check_fits(value: Scalar, dtype: DType) -> Result<()> {
    let v = match value {
        Scalar::Int(i) => i128::from(i),
        Scalar::UInt(u) => i128::from(u),
        _ => return Ok(()),
    };
    match super::promote::int_range(dtype) {
        Some(range) if !range.contains(&v) => Err(Error::IntegerOutOfBounds {
            value: v,
            dtype: dtype.name(),
            min: *range.start(),
            max: *range.end(),
        }),
        _ => Ok(()),
    }
}

/// The dtype numpy gives a Python scalar in `full(shape, value)`.
fn python_dtype(v: &Value) -> Result<DType> {
    Ok(match v {
        Value::Bool(_) => DType::Bool,
        Value::Int(i) if i64::try_from(*i).is_ok() => DType::Int64,
        Value::Int(i) if u64::try_from(*i).is_ok() => DType::UInt64,
        Value::Int(i) => {
            return Err(usage(
                "fill_value",
                &format!("Python integer {i} is too large for any integer dtype"),
            ))
        }
        Value::Float(_) => DType::Float64,
        other => {
            return Err(usage(
                "fill_value",
                &format!("expected a number, found {}", other.describe()),
            ))
        }
    })
}

fn to_dtype(v: &Value) -> Result<DType> {
    match v {
        Value::DType(d) => Ok(*d),
        Value::Str(s) => DType::from_name(s)
            .or_else(|| DType::from_numpy_code(s))
            .or(match s.as_str() {
                "float" | "f8" | "double" => Some(DType::Float64),
                "int" | "i8" => Some(DType::Int64),
                "f4" | "single" => Some(DType::Float32),
                "bool_" | "?" => Some(DType::Bool),
                _ => None,
            })
            .ok_or_else(|| Error::UnknownName {
                what: "dtype",
                name: s.clone(),
                known: DType::ALL
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        Value::Function(f) if f == "float" => Ok(DType::Float64),
        other => Err(usage(
            "dtype",
            &format!("expected a dtype, found {}", other.describe()),
        )),
    }
}

/// `tensordot`'s `axes=n`: the last `n` axes of `a` with the first `n` of `b`.
fn tensordot_last(a: &Array, n: i64) -> Result<(Vec<i64>, Vec<i64>)> {
    let nd = a.ndim() as i64;
    if n < 0 || n > nd {
        return Err(usage(
            "tensordot",
            &format!("axes={n} for an operand of {nd} dimensions"),
        ));
    }
    Ok(((nd - n..nd).collect(), (0..n).collect()))
}

/// numpy's `pad_width`: a number, `(n,)`, `(before, after)`, or one of those an
/// axis.
fn pad_widths(v: &Value, ndim: usize) -> Result<Vec<(u64, u64)>> {
    per_axis_pairs(v, ndim, "pad_width", &|v| {
        u64::try_from(to_i64(v, "pad_width")?)
            .map_err(|_| usage("pad", "index can't contain negative values"))
    })
}

/// numpy's per-axis (before, after) pairs, as `pad` takes its widths and constant
/// values: one value, `(v,)`, `(before, after)`, or one of those for each axis.
fn per_axis_pairs<T: Copy>(
    v: &Value,
    ndim: usize,
    what: &str,
    item: &dyn Fn(&Value) -> Result<T>,
) -> Result<Vec<(T, T)>> {
    let pair = |v: &Value| -> Result<Option<(T, T)>> {
        Ok(match v {
            Value::Tuple(items) => match items.as_slice() {
                [n] if !matches!(n, Value::Tuple(_)) => Some((item(n)?, item(n)?)),
                [b, a] if !matches!(b, Value::Tuple(_)) && !matches!(a, Value::Tuple(_)) => {
                    Some((item(b)?, item(a)?))
                }
                _ => None,
            },
            n => Some((item(n)?, item(n)?)),
        })
    };
    if let Some(p) = pair(v)? {
        return Ok(vec![p; ndim]);
    }
    let Value::Tuple(items) = v else {
        return Err(usage("pad", &format!("{what} must be a number or a tuple")));
    };
    let per_axis: Vec<(T, T)> = items
        .iter()
        .map(|i| pair(i)?.ok_or_else(|| usage("pad", &format!("{what} is nested too deeply"))))
        .collect::<Result<_>>()?;
    match per_axis.len() {
        1 => Ok(vec![per_axis[0]; ndim]),
        n if n == ndim => Ok(per_axis),
        n => Err(usage(
            "pad",
            &format!("{what} has {n} entries for an array of {ndim} dimensions"),
        )),
    }
}

/// Numbers in (nested) lists: their shape, values and numpy's dtype for them.
fn literal_values(v: &Value) -> Result<(Vec<u64>, Vec<Scalar>, DType)> {
    fn walk(v: &Value, depth: usize, shape: &mut Vec<u64>, out: &mut Vec<Value>) -> Result<()> {
        match v {
            Value::Tuple(items) => {
                let n = items.len() as u64;
                match shape.get(depth) {
                    None if depth == shape.len() && out.is_empty() => shape.push(n),
                    Some(&m) if m == n => {}
                    _ => return Err(usage("array", "the nested lists are ragged")),
                }
                for i in items {
                    walk(i, depth + 1, shape, out)?;
                }
                Ok(())
            }
            Value::Int(_) | Value::Float(_) | Value::Bool(_) if depth == shape.len() => {
                out.push(v.clone());
                Ok(())
            }
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                Err(usage("array", "the nested lists are ragged"))
            }
            Value::Array(_) if constant_of(v).is_some() => {
                walk(&constant_of(v).unwrap_or(Value::None), depth, shape, out)
            }
            other => Err(usage(
                "array",
                &format!("expected numbers, found {}", other.describe()),
            )),
        }
    }
    let (mut shape, mut items) = (Vec::new(), Vec::new());
    walk(v, 0, &mut shape, &mut items)?;
    if items.len() as u64 > super::graph::MAX_LITERAL {
        return Err(usage(
            "array",
            &format!(
                "{} values written out: at most {} (read larger data from a file)",
                items.len(),
                super::graph::MAX_LITERAL
            ),
        ));
    }
    let dtype = if items.iter().any(|i| matches!(i, Value::Float(_))) {
        DType::Float64
    } else if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Bool(_))) {
        DType::Bool
    } else if items.is_empty() {
        DType::Float64
    } else {
        DType::Int64
    };
    let values = items
        .iter()
        .map(|i| match (i, dtype) {
            (Value::Int(n), DType::Float64) => Ok(Scalar::Float(*n as f64)),
            (Value::Int(n), _) => i64::try_from(*n)
                .map(Scalar::Int)
                .map_err(|_| usage("array", "a value is out of int64's range")),
            (Value::Bool(b), DType::Float64) => Ok(Scalar::Float(f64::from(u8::from(*b)))),
            (Value::Bool(b), DType::Int64) => Ok(Scalar::Int(i64::from(*b))),
            (other, _) => to_scalar(other),
        })
        .collect::<Result<_>>()?;
    Ok((shape, values, dtype))
}

/// A stencil's kernel: an array, or numbers in (nested) lists.
fn weights_arg(v: Value, op: &str) -> Result<Weights> {
    match v {
        Value::Array(a) => Ok(Weights::Array(a)),
        Value::Tuple(_) => {
            let (shape, values, dtype) = literal_values(&v)?;
            Ok(Weights::Literal {
                shape,
                values,
                dtype,
            })
        }
        other => Err(usage(
            op,
            &format!(
                "the kernel must be an array or a list of numbers, not {}",
                other.describe()
            ),
        )),
    }
}

fn int_list(v: &Value, what: &str) -> Result<Vec<i64>> {
    match v {
        Value::Tuple(items) => items.iter().map(|i| to_i64(i, what)).collect(),
        other => Ok(vec![to_i64(other, what)?]),
    }
}

fn shape_arg(v: &Value) -> Result<Vec<u64>> {
    let list = int_list(v, "shape")?;
    list.into_iter()
        .map(|n| {
            u64::try_from(n).map_err(|_| {
                usage(
                    "shape",
                    &format!("negative dimensions are not allowed ({n})"),
                )
            })
        })
        .collect()
}

/// Chunks as given: `"auto"`, one length for every axis, one an axis (`-1` or `None`
/// for the whole axis), or Dask's tuple of tuples.
fn chunks_arg(v: &Value, shape: &[u64], dtype: DType) -> Result<Chunks> {
    match v {
        Value::Str(s) if s == "auto" => auto_chunks(shape, dtype.size() as u64),
        Value::Int(_) => {
            let n = to_i64(v, "chunks")?;
            let c: Vec<u64> = shape
                .iter()
                .map(|&len| if n < 0 { len } else { n as u64 })
                .collect();
            regular_chunks(shape, &c)
        }
        Value::Tuple(items) if items.iter().any(|i| matches!(i, Value::Tuple(_))) => {
            let chunks: Chunks = items
                .iter()
                .map(|i| {
                    int_list(i, "chunks").map(|l| l.into_iter().map(|x| x.max(0) as u64).collect())
                })
                .collect::<Result<_>>()?;
            let ok = chunks.len() == shape.len()
                && chunks
                    .iter()
                    .zip(shape)
                    .all(|(c, &n)| c.iter().sum::<u64>() == n);
            if !ok {
                return Err(usage(
                    "chunks",
                    &format!("{chunks:?} do not tile the shape {shape:?}"),
                ));
            }
            Ok(chunks)
        }
        Value::Tuple(items) => {
            if items.len() != shape.len() {
                return Err(usage(
                    "chunks",
                    &format!(
                        "{} chunk lengths for an array of {} dimensions",
                        items.len(),
                        shape.len()
                    ),
                ));
            }
            let c: Vec<u64> = items
                .iter()
                .zip(shape)
                .map(|(i, &len)| match i {
                    Value::None => Ok(len),
                    other => {
                        let n = to_i64(other, "chunks")?;
                        Ok(if n < 0 { len } else { n as u64 })
                    }
                })
                .collect::<Result<_>>()?;
            regular_chunks(shape, &c)
        }
        other => Err(usage(
            "chunks",
            &format!("expected chunk lengths, found {}", other.describe()),
        )),
    }
}

/// A 1-d chunk length.
fn chunk_len(v: Option<Value>, n: u64, dtype: DType) -> Result<u64> {
    match v {
        None => Ok(auto_chunks(&[n], dtype.size() as u64)?[0][0].max(1)),
        Some(v) => Ok(chunks_arg(&v, &[n], dtype)?[0][0].max(1)),
    }
}
