//! Just enough of Python's pickle format to read and write the `info` file of a Dask
//! npy stack: `{"chunks": tuple of tuples of ints, "dtype": numpy.dtype, "axis": int}`.
//!
//! The reader is a small stack machine over the opcodes Python emits for such a dict
//! (protocols 2 to 5). It never imports or calls anything: a `GLOBAL` becomes a name,
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

/// Decodes a pickle; the error says which opcode or position failed.
pub fn load(bytes: &[u8]) -> Result<Value, String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    // MEMOIZE stores at the next free index, BINPUT at an explicit one.
    let mut memo_at: std::collections::HashMap<u32, Value> = Default::default();
    let mut pos = 0usize;

    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or("pickle is truncated")?;
        let s = &bytes[*pos..end];
        *pos = end;
        Ok(s)
    };
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64);
    let pop = |stack: &mut Vec<Value>| {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    };
    let pop_mark = |stack: &mut Vec<Value>, marks: &mut Vec<usize>| -> Result<Vec<Value>, String> {
        let m = marks.pop().ok_or("pickle MARK missing")?;
        Ok(stack.split_off(m))
    };
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|_| "pickle string is not UTF-8".to_string())
    };

    loop {
        let op = *take(&mut pos, 1)?.first().ok_or("empty")?;
        match op {
            0x80 => {
                take(&mut pos, 1)?; // PROTO n
            }
            0x95 => {
                take(&mut pos, 8)?; // FRAME length: framing is transparent to us
            }
            b'.' => return pop(&mut stack), // STOP
            b'}' => stack.push(Value::Dict(Vec::new())),
            b')' => stack.push(Value::Seq(Vec::new())),
            b']' => stack.push(Value::Seq(Vec::new())),
            b'(' => marks.push(stack.len()),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'K' => {
                let v = take(&mut pos, 1)?[0];
                stack.push(Value::Int(v as i64));
            }
            b'M' => {
                let v = le(take(&mut pos, 2)?);
                stack.push(Value::Int(v as i64));
            }
            b'J' => {
                let b = take(&mut pos, 4)?;
                stack.push(Value::Int(
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
                ));
            }
            0x8a => {
                // LONG1: n bytes of two's-complement little-endian.
                let n = take(&mut pos, 1)?[0] as usize;
                let b = take(&mut pos, n)?;
                if n > 8 {
                    return Err("integer in pickle does not fit in 64 bits".into());
                }
                let mut v = le(b) as i64;
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => {
                let b = take(&mut pos, 8)?;
                stack.push(Value::Float(f64::from_be_bytes(
                    b.try_into().map_err(|_| "float")?,
                )));
            }
            0x8c => {
                let n = take(&mut pos, 1)?[0] as usize;
                stack.push(Value::Str(text(take(&mut pos, n)?)?));
            }
            b'X' => {
                let n = le(take(&mut pos, 4)?) as usize;
                stack.push(Value::Str(text(take(&mut pos, n)?)?));
            }
            0x8d => {
                let n = le(take(&mut pos, 8)?) as usize;
                stack.push(Value::Str(text(take(&mut pos, n)?)?));
            }
            b'C' => {
                let n = take(&mut pos, 1)?[0] as usize;
                stack.push(Value::Bytes(take(&mut pos, n)?.to_vec()));
            }
            b'B' => {
                let n = le(take(&mut pos, 4)?) as usize;
                stack.push(Value::Bytes(take(&mut pos, n)?.to_vec()));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Seq(items));
            }
            b't' | b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Seq(items));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Seq(items)) => items.push(v),
                    _ => return Err("APPEND to a non-list".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::Seq(list)) => list.extend(items),
                    _ => return Err("APPENDS to a non-list".into()),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.push((k, v)),
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                let mut pairs = Vec::new();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.extend(pairs),
                    _ => return Err("SETITEMS on a non-dict".into()),
                }
            }
            b'd' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                let mut pairs = Vec::new();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                stack.push(Value::Dict(pairs));
            }
            0x94 => {
                let top = stack.last().cloned().ok_or("MEMOIZE on an empty stack")?;
                memo_at.insert(memo_at.len() as u32, top);
            }
            b'q' => {
                let i = take(&mut pos, 1)?[0] as u32;
                memo_at.insert(i, stack.last().cloned().ok_or("BINPUT on an empty stack")?);
            }
            b'r' => {
                let i = le(take(&mut pos, 4)?) as u32;
                memo_at.insert(
                    i,
                    stack
                        .last()
                        .cloned()
                        .ok_or("LONG_BINPUT on an empty stack")?,
                );
            }
            b'h' | b'j' => {
                let i = if op == b'h' {
                    take(&mut pos, 1)?[0] as u32
                } else {
                    le(take(&mut pos, 4)?) as u32
                };
                let v = memo_at
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| format!("pickle memo {i} is not set"))?;
                stack.push(v);
            }
            b'c' => {
                let line = |pos: &mut usize| -> Result<String, String> {
                    let rest = &bytes[*pos..];
                    let n = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or("GLOBAL name is not terminated")?;
                    *pos += n + 1;
                    text(&rest[..n])
                };
                let module = line(&mut pos)?;
                let name = line(&mut pos)?;
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                let args = match args {
                    Value::Seq(a) => a,
                    _ => return Err("REDUCE arguments are not a tuple".into()),
                };
                stack.push(Value::Object {
                    callable: Box::new(callable),
                    args,
                    state: None,
                });
            }
            b'b' => {
                let state = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Object { state: s, .. }) => *s = Some(Box::new(state)),
                    _ => return Err("BUILD on a non-object".into()),
                }
            }
            other => {
                return Err(format!(
                    "unsupported pickle opcode 0x{other:02x} at byte {}",
                    pos - 1
                ))
            }
        }
    }
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
}
