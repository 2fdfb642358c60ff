//! The parser against Python's own: for each expression, `python_oracle.py` prints
//! Python's tree in `Expr`'s canonical form with every node's span, and the test
//! compares both with ours; malformed expressions must be refused by both; Python
//! syntax the language leaves out must be accepted by Python and refused by us.
//!
//! Python is `$BLOCKWISE_PYTHON`, else the repository's `.venv/bin/python`; without
//! either the test fails (an oracle that is not run proves nothing).

use std::io::Write;
use std::process::{Command, Stdio};

use super::{parse, Expr, ExprKind};
use crate::Error;

/// Accepted by both, with the same tree and the same spans.
const VALID: &[&str] = &[
    // Associativity.
    "a - b - c",
    "a / b / c",
    "a // b * c % d",
    "a ** b ** c",
    "a << b >> c",
    "a | b | c",
    // Unary operators and powers.
    "-a ** b",
    "-2**2",
    "2**-1",
    "-2**-2",
    "a ** -b ** c",
    "- - a",
    "~-+a",
    "~a & b",
    "-a * b",
    "(-a) ** b",
    "a * -b",
    // Boolean operators and comparisons.
    "not a == b",
    "not not a",
    "not a and b",
    "a and not b",
    "a or b and c",
    "a and b or c and d",
    "a or b or c",
    "(a or b) or c",
    "a and (b or c)",
    "a < b < c",
    "(a < b) < c",
    "a < b == c != d >= e <= f > g",
    "a == b and c != d",
    "a | b < c & d",
    "not a < b",
    // The whole ladder.
    "a | b ^ c & d << e + f * g ** h",
    "h ** g * f + e << d & c ^ b | a",
    "a + b * c - d / e",
    "(a + b) * c",
    "a * (b + c) ** 2",
    "x.T @ y",
    "x @ y @ z",
    "a @ b + c",
    "a % b ** c",
    // Conditionals.
    "a if b else c",
    "1if a else 2",
    "a if b else c if d else e",
    "(a if b else c) if d else e",
    "a or b if c and d else e",
    "not a if b else c",
    "x[a if b else c]",
    "f(a if b else c, k=d if e else f)",
    // Primaries.
    "f(a)(b)[c].d",
    "f()",
    "f(a,)",
    "f(a, b, key=v)",
    "f(a, key=v,)",
    "f(key=v)",
    "x.sum(axis=1)",
    "x.sum(axis=(1, 2))",
    "x.astype('float32')",
    "x.astype(\"float32\")",
    "x.rechunk((100, 100))",
    "x.T",
    "x.T.T",
    "(x + y).T",
    "(x + x.T)[::2, 5000:].mean(axis=1)",
    "(arcsin(x) + arccos(y)).sum(axis=(1, 2))",
    "random.random((10000, 10000, 10), chunks=(1000, 1000, 5), seed=0)",
    "np.random.random((10, 10), chunks=(5, 5))",
    "da.ones((4, 4)) + numpy.zeros(4)",
    "dask.array.arange(10)[::-1]",
    "np.where(x > 0, x, 0)",
    "x - x.mean(axis=0)",
    "x.std(axis=0, ddof=1)",
    "abs(z) > 2",
    "z**2 + c",
    "1 .real",
    "1..real",
    "'abc'.upper()",
    // Subscripts and slices.
    "x[::2, 5000:]",
    "x[1, ::2, None, ..., [0, 2], 3:]",
    "x[1]",
    "x[-1]",
    "x[1:]",
    "x[:1]",
    "x[:]",
    "x[::]",
    "x[::-1]",
    "x[a:b:c]",
    "x[a:b:]",
    "x[1:2, 3]",
    "x[1,]",
    "x[()]",
    "x[(1, 2)]",
    "x[(1, 2),]",
    "x[None, :, None]",
    "x[...]",
    "x[..., 0]",
    "x[mask]",
    "x[x > 0]",
    "x[ :2]",
    "x[1][2][3]",
    "x[f(a)[b]:c.d]",
    // Atoms.
    "(1,)",
    "()",
    "(1, 2)",
    "((1, 2), (3,))",
    "(((a)))",
    "[]",
    "[1]",
    "[1, 2,]",
    "[[1, 2], [3, 4]]",
    "1, 2",
    "1, 2,",
    "a,",
    "True",
    "False",
    "None",
    "...",
    "is_a + in_b + if_ + nota",
    // Numbers.
    "0",
    "00",
    "0_0",
    "123",
    "1_000_000",
    "0xff",
    "0XFF",
    "0x_f",
    "0o17",
    "0b1010",
    "18446744073709551615",
    "1.",
    ".5",
    "1e-3",
    "1E+3",
    "1_000.5",
    "1.e5",
    "007.5",
    "1e16",
    "1e15",
    "1e-5",
    "0.1 + 0.2",
    "1e999",
    "1e-400",
    "123456789012345678901234567890.0",
    "1j",
    "2.5e3J",
    "0j",
    "1e16j",
    "1.5j + 2",
    // Strings.
    "'a' 'b'",
    "'it\\'s'",
    "\"it's\"",
    "'\\n\\t\\\\\\x41\\u00e9\\U0001F600\\101\\0\\777'",
    "'\\d'",
    "r'\\n'",
    "u'x'",
    "'''a\n'b'''",
    "'é' + b",
    "'\\x7f\\x9f\\xa0'",
    // Layout.
    "(a +\n b)",
    "f(a, # comment\n  b)",
    "a + \\\n b",
    "x  \t+\ty",
    "[\n1,\n2,\n]",
    "a\n",
    "a # trailing comment",
    "α + β",
    "x_1 + _y",
];

/// Refused by both.
const MALFORMED: &[&str] = &[
    "x + * y",
    "",
    "a b",
    "f(a b)",
    "[1 2]",
    "x[1:2:3:4]",
    "x[]",
    "x.1",
    "x.if",
    "x.True",
    "a if b",
    "a if b else",
    "a == not b",
    "-not a",
    "f(a=1, b)",
    "f(a=1, a=2)",
    "f(x.y=1)",
    "f((a)=1)",
    "f(1=2)",
    "(a",
    "f(x, [1, 2",
    "(a]",
    "a)",
    "]",
    "x $ y",
    "a ! b",
    "'abc",
    "'abc\n'",
    "007",
    "0_7",
    "1e",
    "1e+",
    "1_",
    "1__0",
    "1_.5",
    "1abc",
    "1.real",
    "0x",
    "0xg",
    "0b12",
    "0o8",
    "1jx",
    "'\\x4'",
    "1\n+ 2",
    "x +\ny",
    "x = 1",
    "x[mask] = 2",
    "x += 1",
    "(x = 1)",
    "a + + ",
    "(,)",
    "(a,,)",
    "f(,)",
    "[,]",
    "a..b",
    "x...",
    "a;",
    "a -> b",
    "a ==",
    "a < > b",
    "not",
    "a and",
    "or a",
    "x[1:2 3]",
    "f(a)(",
    "x.",
    "x @",
    "(a b)",
    "a\nb",
];

/// Accepted by Python, refused by the language (with a message naming the construct).
const PYTHON_ONLY: &[&str] = &[
    "lambda x: x",
    "a in b",
    "a not in b",
    "a is b",
    "a is not b",
    "[x for x in y]",
    "f(x for x in y)",
    "{1: 2}",
    "{1, 2}",
    "f(*a)",
    "f(**k)",
    "[*a]",
    "x[*a]",
    "(x := 1)",
    "f'{x}'",
    "b'x'",
    "'\\N{BULLET}'",
    "18446744073709551616",
];

/// Python's verdict on each of `cases`, one JSON object each.
fn ask_python(cases: &[&str]) -> Vec<serde_json::Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/array/expr/python_oracle.py"
    );
    let python = crate::reference::python();
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (BLOCKWISE_PYTHON or .venv/bin/python) for the oracle test: {e}",
                python.display()
            )
        });
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python_oracle.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answers.len(), cases.len());
    answers
}

/// Every node's span in preorder, keyword arguments as nodes of their own, as
/// `python_oracle.py` lists Python's.
fn spans(e: &Expr, out: &mut Vec<(usize, usize)>) {
    out.push((e.span().start, e.span().end));
    if let ExprKind::Call {
        func,
        args,
        keywords,
    } = e.kind()
    {
        spans(func, out);
        for arg in args {
            spans(arg, out);
        }
        for keyword in keywords {
            out.push((keyword.span.start, keyword.span.end));
            spans(&keyword.value, out);
        }
        return;
    }
    for child in e.children() {
        spans(child, out);
    }
}

fn python_spans(answer: &serde_json::Value) -> Vec<(usize, usize)> {
    answer["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let pair = pair.as_array().unwrap();
            (
                pair[0].as_u64().unwrap() as usize,
                pair[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

#[test]
fn the_parser_agrees_with_python() {
    assert!(VALID.len() >= 100, "{} valid cases", VALID.len());
    let mut cases = Vec::new();
    cases.extend_from_slice(VALID);
    cases.extend_from_slice(MALFORMED);
    cases.extend_from_slice(PYTHON_ONLY);
    let answers = ask_python(&cases);
    let mut failures = Vec::new();
    let (valid, rest) = answers.split_at(VALID.len());
    let (malformed, python_only) = rest.split_at(MALFORMED.len());

    for (text, answer) in VALID.iter().zip(valid) {
        let Some(want) = answer["canon"].as_str() else {
            failures.push(format!("{text:?}: Python says {answer}"));
            continue;
        };
        match parse(text) {
            Ok(e) => {
                if e.to_string() != want {
                    failures.push(format!("{text:?}: ours {e}, Python's {want}"));
                }
                let mut ours = Vec::new();
                spans(&e, &mut ours);
                let theirs = python_spans(answer);
                if ours != theirs {
                    failures.push(format!(
                        "{text:?}: spans ours {ours:?}, Python's {theirs:?}"
                    ));
                }
            }
            Err(e) => failures.push(format!("{text:?}: refused ({e}), Python's {want}")),
        }
    }
    for (text, answer) in MALFORMED.iter().zip(malformed) {
        if answer.get("error").is_none() {
            failures.push(format!("{text:?}: Python accepts it: {answer}"));
        }
        match parse(text) {
            Ok(e) => failures.push(format!("{text:?}: we accept it as {e}")),
            Err(Error::ExprSyntax(_)) => {}
            Err(e) => failures.push(format!("{text:?}: not a syntax error: {e}")),
        }
    }
    for (text, answer) in PYTHON_ONLY.iter().zip(python_only) {
        if answer.get("error").is_some() {
            failures.push(format!("{text:?}: Python refuses it too: {answer}"));
        }
        match parse(text) {
            Ok(e) => failures.push(format!("{text:?}: we accept it as {e}")),
            Err(Error::ExprSyntax(_)) => {}
            Err(e) => failures.push(format!("{text:?}: not a syntax error: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
