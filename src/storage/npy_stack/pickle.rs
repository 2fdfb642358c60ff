//! Just enough of Python's pickle format to read and write the `info` file of a Dask
//! npy stack: `{"chunks": tuple of tuples of ints, "dtype": numpy.dtype, "axis": int}`.
//!
//! The reader is a small stack machine over the opcodes Python emits for such a dict
//! (protocols 0 to 5: dask's `from_npy_stack` reads any of them with `pickle.load`). It never imports or calls anything: a `GLOBAL` becomes a name,
//! a `REDUCE` a recorded call, which is all we need to recognise `numpy.dtype("f8")`.
//! The writer emits what CPython's pickler emits for the same dict with protocol 4,
//! so `dask.array.from_npy_stack` (which calls `pickle.load`) reads it.

/// A decoded Python value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// bytes.
    Bytes(Vec<u8>),
    /// A tuple or a list.
    Seq(Vec<Value>),
    /// A dict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A module-level name, e.g. `numpy.dtype`.
    Global(String, String),
    /// The result of calling `callable(*args)`, with the state `BUILD` gave it.
    Object {
        /// What was called.
        callable: Box<Value>,
        /// Its arguments.
        args: Vec<Value>,
        /// The state set by `BUILD`, if any.
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// The value as an integer: an int, or a numpy integer scalar
    /// (`numpy.int64(4)`, which pickles as `scalar(dtype('i8'), b'...')`), which
    /// Python code passing numpy values to dask writes into `info`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Object { callable, args, .. } => {
                let Value::Global(_, name) = callable.as_ref() else {
                    return None;
                };
                let [Value::Object {
                    args: dtype_args,
                    state,
                    ..
                }, data] = args.as_slice()
                else {
                    return None;
                };
                let Some(Value::Str(code)) = dtype_args.first() else {
                    return None;
                };
                // The dtype's state is (version, byte order, ...); '>' is big-endian.
                let big = matches!(
                    state.as_deref(),
                    Some(Value::Seq(items)) if matches!(items.get(1), Some(Value::Str(o)) if o == ">")
                );
                let mut bytes = match data {
                    Value::Bytes(b) => b.clone(),
                    // Protocol 0 and 1 write bytes as `_codecs.encode(text, 'latin1')`.
                    Value::Object { args, .. } => match args.as_slice() {
                        [Value::Str(text), Value::Str(enc)] if enc == "latin1" => text
                            .chars()
                            .map(|c| u8::try_from(c as u32).ok())
                            .collect::<Option<_>>()?,
                        _ => return None,
                    },
                    _ => return None,
                };
                if name != "scalar" {
                    return None;
                }
                let (signed, size) = match code.as_str() {
                    "i1" => (true, 1),
                    "i2" => (true, 2),
                    "i4" => (true, 4),
                    "i8" => (true, 8),
                    "u1" => (false, 1),
                    "u2" => (false, 2),
                    "u4" => (false, 4),
                    "u8" => (false, 8),
                    _ => return None,
                };
                if bytes.len() != size {
                    return None;
                }
                if big {
                    bytes.reverse();
                }
                let negative = signed && bytes[size - 1] & 0x80 != 0;
                let mut wide = [if negative { 0xff } else { 0 }; 8];
                wide[..size].copy_from_slice(&bytes);
                let n = i64::from_le_bytes(wide);
                // A u8 past i64::MAX reads back negative: refuse it instead.
                (signed || n >= 0).then_some(n)
            }
            _ => None,
        }
    }

    /// Looks up a string key in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The largest `info` pickle read, in bytes. Dask's `info` for a hundred thousand
/// chunks is a few hundred KB; anything past this is not an npy-stack `info`.
pub const MAX_PICKLE_BYTES: usize = 16 << 20;

/// The most values a pickle may decode to, counting every copy a memo lookup makes:
/// a hostile pickle can double its size with each `GET`, so copies are budgeted.
const MAX_NODES: u64 = 1_000_000;

/// The deepest nesting accepted. Dask's `info` nests three deep (a dict of tuples of
/// tuples); a limit far above that keeps recursion (in drop, in comparisons) shallow.
const MAX_DEPTH: u32 = 64;

impl Value {
    /// The value as Python would print it, shortened to about 80 characters, for
    /// messages: `-1`, `None`, `'abc'`, `(1, 2)`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.describe_into(&mut out, 80);
        if out.len() > 80 {
            let mut cut = 77;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
        }
        out
    }

    fn describe_into(&self, out: &mut String, budget: usize) {
        if out.len() > budget {
            return;
        }
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => out.push_str(&i.to_string()),
            // Python prints a whole float with its point: 4.0, not 4.
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 => {
                out.push_str(&format!("{f:.1}"))
            }
            Value::Float(f) => out.push_str(&f.to_string()),
            Value::Str(s) => {
                out.push('\'');
                out.push_str(s);
                out.push('\'');
            }
            Value::Bytes(b) => out.push_str(&format!("<{} bytes>", b.len())),
            Value::Seq(items) => {
                out.push('(');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.describe_into(out, budget);
                    if out.len() > budget {
                        break;
                    }
                }
                out.push(')');
            }
            Value::Dict(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.describe_into(out, budget);
                    out.push_str(": ");
                    v.describe_into(out, budget);
                    if out.len() > budget {
                        break;
                    }
                }
                out.push('}');
            }
            Value::Global(m, n) => {
                out.push_str(m);
                out.push('.');
                out.push_str(n);
            }
            Value::Object { callable, args, .. } => {
                callable.describe_into(out, budget);
                Value::Seq(args.clone()).describe_into(out, budget);
            }
        }
    }

    /// What kind of Python value this is, for messages: "an int", "a dict", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Seq(_) => "a tuple or list",
            Value::Dict(_) => "a dict",
            Value::Global(..) => "a class or function",
            Value::Object { .. } => "an object",
        }
    }
}

/// A value on the machine's stack, with what bounds its cost.
#[derive(Clone)]
struct Item {
    value: Value,
    /// Nesting depth (1 for a scalar).
    depth: u32,
    /// Number of values inside, itself included.
    nodes: u64,
}

impl Item {
    fn scalar(value: Value) -> Self {
        Item {
            value,
            depth: 1,
            nodes: 1,
        }
    }
}

/// The pickle virtual machine, reduced to building values.
struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, Item>,
    /// Values created so far, counting copies.
    nodes: u64,
}

type Step<T> = Result<T, String>;

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("pickle is truncated")?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Step<u64> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    /// A length prefix of `n` bytes; lengths past the end of the pickle fail in `take`.
    fn len(&mut self, n: usize) -> Step<usize> {
        usize::try_from(self.le(n)?).map_err(|_| "pickle length does not fit".to_string())
    }

    /// A text line, as protocol 0 writes arguments; without its newline.
    fn line(&mut self) -> Step<&'a str> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("pickle text argument is not terminated")?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| "pickle text argument is not UTF-8".into())
    }

    fn text(b: &[u8]) -> Step<String> {
        String::from_utf8(b.to_vec()).map_err(|_| "pickle string is not UTF-8".to_string())
    }

    fn push(&mut self, item: Item) -> Step<()> {
        self.spend(item.nodes)?;
        if item.depth > MAX_DEPTH {
            return Err(format!("pickle nests values more than {MAX_DEPTH} deep"));
        }
        self.stack.push(item);
        Ok(())
    }

    fn push_scalar(&mut self, value: Value) -> Step<()> {
        self.push(Item::scalar(value))
    }

    /// A container of `items`: its cost is its own node plus theirs (already counted).
    fn push_seq(&mut self, items: Vec<Item>) -> Step<()> {
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        let nodes = 1 + items.iter().map(|i| i.nodes).sum::<u64>();
        self.nodes += 1;
        self.check_depth(depth)?;
        self.stack.push(Item {
            value: Value::Seq(items.into_iter().map(|i| i.value).collect()),
            depth,
            nodes,
        });
        Ok(())
    }

    fn check_depth(&self, depth: u32) -> Step<()> {
        if depth > MAX_DEPTH {
            return Err(format!("pickle nests values more than {MAX_DEPTH} deep"));
        }
        Ok(())
    }

    fn pop(&mut self) -> Step<Item> {
        // A MARK above the top protects what is below it.
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pickle pops past a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Step<Vec<Item>> {
        let m = self.marks.pop().ok_or("pickle MARK missing")?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    fn top(&mut self) -> Step<&mut Item> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pickle reaches past a MARK".into());
        }
        self.stack
            .last_mut()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }

    /// Adds `items` (already counted) into the container on top of the stack.
    fn extend_top(&mut self, items: Vec<Item>, pairs: bool) -> Step<()> {
        let top = self.top()?;
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        let depth = depth.max(top.depth);
        let added: u64 = items.iter().map(|i| i.nodes).sum();
        match (&mut top.value, pairs) {
            (Value::Seq(list), false) => list.extend(items.into_iter().map(|i| i.value)),
            (Value::Dict(d), true) => {
                if !items.len().is_multiple_of(2) {
                    return Err("SETITEMS with an odd number of values".into());
                }
                let mut it = items.into_iter().map(|i| i.value);
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            (_, false) => return Err("APPEND to a value that is not a list".into()),
            (_, true) => return Err("SETITEM on a value that is not a dict".into()),
        }
        top.depth = depth;
        top.nodes += added;
        let d = top.depth;
        self.check_depth(d)
    }

    /// Counts `nodes` more values against the budget, before they are copied.
    fn spend(&mut self, nodes: u64) -> Step<()> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(format!(
                "pickle decodes to more than {MAX_NODES} values, far more than an npy-stack info holds"
            ));
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Step<()> {
        let nodes = self.top()?.nodes;
        self.spend(nodes)?;
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Step<()> {
        let nodes = self
            .memo
            .get(&index)
            .map(|i| i.nodes)
            .ok_or_else(|| format!("pickle memo {index} is not set"))?;
        self.spend(nodes)?;
        let item = self.memo[&index].clone();
        self.check_depth(item.depth)?;
        self.stack.push(item);
        Ok(())
    }

    fn int_line(&mut self) -> Step<i64> {
        let l = self.line()?;
        l.trim_end_matches('L')
            .parse::<i64>()
            .map_err(|_| format!("pickle integer {l} does not fit in 64 bits"))
    }

    fn index_line(&mut self) -> Step<u64> {
        let l = self.line()?;
        l.parse::<u64>()
            .map_err(|_| format!("pickle memo index {l} is not a number"))
    }

    fn run(&mut self) -> Step<Value> {
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    self.take(1)?; // PROTO n
                }
                0x95 => {
                    self.take(8)?; // FRAME length: framing is transparent to us
                }
                b'.' => {
                    if self.stack.len() != 1 {
                        return Err("pickle ends with more or less than one value".into());
                    }
                    return Ok(self.pop()?.value);
                }
                b'}' => self.push_scalar(Value::Dict(Vec::new()))?,
                b')' | b']' => self.push_scalar(Value::Seq(Vec::new()))?,
                b'(' => {
                    if self.marks.len() >= MAX_DEPTH as usize {
                        return Err(format!("pickle nests MARKs more than {MAX_DEPTH} deep"));
                    }
                    self.marks.push(self.stack.len())
                }
                b'N' => self.push_scalar(Value::None)?,
                0x88 => self.push_scalar(Value::Bool(true))?,
                0x89 => self.push_scalar(Value::Bool(false))?,
                b'I' => {
                    // INT: protocol 0 spells True and False as I01 and I00.
                    let l = self.line()?;
                    let v =
                        match l {
                            "01" => Value::Bool(true),
                            "00" => Value::Bool(false),
                            _ => Value::Int(l.parse::<i64>().map_err(|_| {
                                format!("pickle integer {l} does not fit in 64 bits")
                            })?),
                        };
                    self.push_scalar(v)?
                }
                b'L' => {
                    let v = self.int_line()?;
                    self.push_scalar(Value::Int(v))?
                }
                b'F' => {
                    let l = self.line()?;
                    let v = l
                        .parse::<f64>()
                        .map_err(|_| format!("pickle float {l} is not a number"))?;
                    self.push_scalar(Value::Float(v))?
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push_scalar(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.push_scalar(Value::Int(v as i64))?
                }
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.push_scalar(Value::Int(v as i64))?
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: n bytes of two's-complement little-endian.
                    let n = if op == 0x8a {
                        self.byte()? as usize
                    } else {
                        self.len(4)?
                    };
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err("integer in pickle does not fit in 64 bits".into());
                    }
                    let mut v = b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64) as i64;
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push_scalar(Value::Int(v))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push_scalar(Value::Float(f64::from_be_bytes(a)))?
                }
                0x8c => {
                    let n = self.byte()? as usize;
                    let s = Self::text(self.take(n)?)?;
                    self.push_scalar(Value::Str(s))?
                }
                b'X' | 0x8d => {
                    let n = self.len(if op == b'X' { 4 } else { 8 })?;
                    let s = Self::text(self.take(n)?)?;
                    self.push_scalar(Value::Str(s))?
                }
                b'U' | b'T' => {
                    // SHORT_BINSTRING / BINSTRING: Python 2 str, read as text as
                    // pickle.load does by default (encoding ASCII).
                    let n = if op == b'U' {
                        self.byte()? as usize
                    } else {
                        self.len(4)?
                    };
                    let s = Self::text(self.take(n)?)?;
                    self.push_scalar(Value::Str(s))?
                }
                b'V' => {
                    let l = self.line()?;
                    let s = unescape_raw_unicode(l)?;
                    self.push_scalar(Value::Str(s))?
                }
                b'S' => {
                    let l = self.line()?;
                    let s = unquote_repr(l)?;
                    self.push_scalar(Value::Str(s))?
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => self.byte()? as usize,
                        b'B' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push_scalar(Value::Bytes(b))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err("pickle stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_seq(items)?
                }
                b't' | b'l' => {
                    let items = self.pop_mark()?;
                    self.push_seq(items)?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], false)?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push_scalar(Value::Dict(Vec::new()))?;
                    self.extend_top(items, true)?
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let nodes = self.top()?.nodes;
                    self.spend(nodes)?;
                    let top = self.top()?.clone();
                    self.stack.push(top);
                }
                0x94 => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?
                }
                b'q' => {
                    let i = self.byte()? as u64;
                    self.memo_put(i)?
                }
                b'r' => {
                    let i = self.le(4)?;
                    self.memo_put(i)?
                }
                b'p' => {
                    let i = self.index_line()?;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.byte()? as u64;
                    self.memo_get(i)?
                }
                b'j' => {
                    let i = self.le(4)?;
                    self.memo_get(i)?
                }
                b'g' => {
                    let i = self.index_line()?;
                    self.memo_get(i)?
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.push_scalar(Value::Global(module, name))?
                }
                0x93 => {
                    let name = self.pop()?.value;
                    let module = self.pop()?.value;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push_scalar(Value::Global(m, n))?,
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Value::Seq(a) = args.value else {
                        return Err("REDUCE arguments are not a tuple".into());
                    };
                    let depth = 1 + args.depth.max(callable.depth);
                    let nodes = 1 + args.nodes + callable.nodes;
                    self.nodes += 1;
                    self.check_depth(depth)?;
                    self.stack.push(Item {
                        value: Value::Object {
                            callable: Box::new(callable.value),
                            args: a,
                            state: None,
                        },
                        depth,
                        nodes,
                    });
                }
                b'b' => {
                    let state = self.pop()?;
                    let top = self.top()?;
                    let Value::Object { state: s, .. } = &mut top.value else {
                        return Err("BUILD on a value that is not an object".into());
                    };
                    *s = Some(Box::new(state.value));
                    top.depth = top.depth.max(1 + state.depth);
                    top.nodes += state.nodes;
                    let d = top.depth;
                    self.check_depth(d)?
                }
                other => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {}",
                        self.pos - 1
                    ))
                }
            }
        }
    }
}

/// Decodes Python's raw-unicode-escape (protocol 0 `UNICODE` arguments): `\uXXXX`
/// and `\UXXXXXXXX` escapes, every other character as is.
fn unescape_raw_unicode(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('u') | Some('U')) {
            let width = if chars.next() == Some('u') { 4 } else { 8 };
            let hex: String = chars.by_ref().take(width).collect();
            let code = u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or("pickle text has a bad \\u escape")?;
            out.push(code);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Decodes a protocol 0 `STRING` argument: a Python repr in single or double
/// quotes, with backslash escapes.
fn unquote_repr(s: &str) -> Result<String, String> {
    let inner = ['\'', '"']
        .iter()
        .find_map(|&q| s.strip_prefix(q).and_then(|r| r.strip_suffix(q)))
        .filter(|_| s.len() >= 2)
        .ok_or("pickle STRING argument is not quoted")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&hex, 16).map_err(|_| "bad \\x escape in pickle")?;
                out.push(b as char);
            }
            Some(other) => out.push(other),
            None => return Err("pickle STRING ends with a backslash".into()),
        }
    }
    Ok(out)
}

/// Decodes a pickle; the error says which opcode or position failed.
///
/// Bounded by construction: at most [`MAX_PICKLE_BYTES`] of input, a budget of
/// values that counts every memo copy, and a nesting limit, so no pickle can make it
/// allocate without bound or recurse deeply.
pub fn load(bytes: &[u8]) -> Result<Value, String> {
    if bytes.len() > MAX_PICKLE_BYTES {
        return Err(format!(
            "pickle is {} bytes, more than the {MAX_PICKLE_BYTES} an npy-stack info can be",
            bytes.len()
        ));
    }
    let mut machine = Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
        nodes: 0,
    };
    machine.run()
}

/// Encodes Dask's npy-stack `info` dict with protocol 4, as CPython's pickler does:
/// `{"chunks": chunks, "dtype": numpy.dtype(code), "axis": axis}`.
///
/// `dtype_code` is the numpy code without byte order ("f8"); `order` is the byte
/// order character numpy stores in the dtype's state ('<', '>' or '|').
pub fn dump_info(chunks: &[Vec<u64>], dtype_code: &str, order: char, axis: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let str8 = |out: &mut Vec<u8>, s: &str| {
        out.push(0x8c);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
        out.push(0x94);
    };
    let int = |out: &mut Vec<u8>, v: i64| {
        if (0..256).contains(&v) {
            out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            out.push(b'M');
            out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            out.push(b'J');
            out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            out.extend_from_slice(&[0x8a, 8]);
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    let tuple = |out: &mut Vec<u8>, n: usize, items: &dyn Fn(&mut Vec<u8>)| {
        match n {
            0 => out.push(b')'),
            1..=3 => {
                items(out);
                out.push(0x84 + n as u8);
            }
            _ => {
                out.push(b'(');
                items(out);
                out.push(b't');
            }
        }
        if n > 0 {
            out.push(0x94);
        }
    };

    body.push(b'}');
    body.push(0x94);
    body.push(b'(');
    str8(&mut body, "chunks");
    tuple(&mut body, chunks.len(), &|out| {
        for axis in chunks {
            tuple(out, axis.len(), &|out| {
                for &c in axis {
                    int(out, c as i64);
                }
            });
        }
    });
    str8(&mut body, "dtype");
    str8(&mut body, "numpy");
    str8(&mut body, "dtype");
    body.push(0x93);
    body.push(0x94);
    str8(&mut body, dtype_code);
    body.extend_from_slice(&[0x89, 0x88, 0x87, 0x94, b'R', 0x94]);
    // numpy's dtype state: (version 3, byte order, subarray, names, fields,
    // itemsize -1, alignment -1, flags 0).
    body.push(b'(');
    int(&mut body, 3);
    str8(&mut body, &order.to_string());
    body.extend_from_slice(b"NNN");
    body.extend_from_slice(&[b'J', 0xff, 0xff, 0xff, 0xff, b'J', 0xff, 0xff, 0xff, 0xff]);
    int(&mut body, 0);
    body.extend_from_slice(&[b't', 0x94, b'b']);
    str8(&mut body, "axis");
    int(&mut body, axis as i64);
    body.push(b'u');
    body.push(b'.');

    let mut out = vec![0x80, 4, 0x95];
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumped_info_loads_back() {
        let chunks = vec![vec![30, 30, 30, 10], vec![30], vec![70000]];
        let bytes = dump_info(&chunks, "f8", '<', 0);
        let v = load(&bytes).unwrap();
        let Some(Value::Seq(axes)) = v.get("chunks") else {
            panic!("{v:?}")
        };
        assert_eq!(axes.len(), 3);
        assert_eq!(
            axes[0],
            Value::Seq(vec![
                Value::Int(30),
                Value::Int(30),
                Value::Int(30),
                Value::Int(10)
            ])
        );
        assert_eq!(axes[2], Value::Seq(vec![Value::Int(70000)]));
        assert_eq!(v.get("axis"), Some(&Value::Int(0)));
        let Some(Value::Object {
            callable,
            args,
            state,
        }) = v.get("dtype")
        else {
            panic!()
        };
        assert_eq!(**callable, Value::Global("numpy".into(), "dtype".into()));
        assert_eq!(args[0], Value::Str("f8".into()));
        let Some(state) = state else { panic!() };
        let Value::Seq(state) = &**state else {
            panic!()
        };
        assert_eq!(state[1], Value::Str("<".into()));
        assert_eq!(state[5], Value::Int(-1));
    }

    #[test]
    fn dumped_info_is_byte_identical_to_what_dask_writes() {
        // fixtures/npy_stack/axis0/info and axis1/info, written by dask.array.to_npy_stack.
        for (chunks, code, axis, fixture) in [
            (vec![vec![30, 30, 30, 10], vec![30]], "f8", 0, "axis0"),
            (vec![vec![20], vec![10, 25, 15]], "i4", 1, "axis1"),
        ] {
            let path = format!(
                "{}/fixtures/npy_stack/{fixture}/info",
                env!("CARGO_MANIFEST_DIR")
            );
            let expected = std::fs::read(path).unwrap();
            assert_eq!(dump_info(&chunks, code, '<', axis), expected, "{fixture}");
        }
    }

    #[test]
    fn truncated_pickle_is_an_error() {
        let bytes = dump_info(&[vec![1]], "i4", '<', 0);
        assert!(load(&bytes[..bytes.len() - 5]).is_err());
    }

    #[test]
    fn protocol_0_info_as_python_writes_it() {
        // pickle.dumps({'chunks': ((30, 30, 30, 10), (30,)), 'dtype': np.dtype('<f8'),
        // 'axis': 0}, protocol=0)
        let bytes: &[u8] = b"(dp0\nVchunks\np1\n((I30\nI30\nI30\nI10\ntp2\n(I30\ntp3\ntp4\nsVdtype\np5\ncnumpy\ndtype\np6\n(Vf8\np7\nI00\nI01\ntp8\nRp9\n(I3\nV<\np10\nNNNI-1\nI-1\nI0\ntp11\nbsVaxis\np12\nI0\ns.";
        let v = load(bytes).unwrap();
        assert_eq!(v.get("axis"), Some(&Value::Int(0)));
        assert_eq!(
            v.get("chunks").map(Value::describe).as_deref(),
            Some("((30, 30, 30, 10), (30))")
        );
        let Some(Value::Object { args, .. }) = v.get("dtype") else {
            panic!("{v:?}")
        };
        assert_eq!(args[0], Value::Str("f8".into()));
    }

    #[test]
    fn memo_copies_cannot_grow_without_bound() {
        // An empty list, then 200 times: memoize it, fetch it, append the copy to
        // itself. Each round doubles the value; the budget stops it.
        let mut bytes = vec![0x80, 4, b']'];
        for _ in 0..200 {
            bytes.extend_from_slice(&[b'q', 0, b'h', 0, b'a']);
        }
        bytes.push(b'.');
        let e = load(&bytes).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![0x80, 4, b'N'];
        bytes.extend(std::iter::repeat_n(0x85u8, 100_000));
        bytes.push(b'.');
        let e = load(&bytes).unwrap_err();
        assert!(e.contains("deep"), "{e}");
    }

    #[test]
    fn values_describe_themselves_as_python_prints_them() {
        assert_eq!(Value::Int(-1).describe(), "-1");
        assert_eq!(Value::None.describe(), "None");
        assert_eq!(Value::Str("a".into()).describe(), "'a'");
        let long = Value::Seq(vec![Value::Int(123456); 100]).describe();
        assert!(long.len() <= 80 && long.ends_with("..."), "{long}");
    }
}
