//! The parser's tests: each construct, each error message, spans, hostile input.
//! (The lexer's, the caret's and the float format's sit in their modules; the
//! comparison with Python's own parser is in `oracle_tests`.)

use std::time::{Duration, Instant};

use super::*;

fn show(text: &str) -> String {
    match parse(text) {
        Ok(e) => e.to_string(),
        Err(e) => panic!("{text:?} did not parse: {e}"),
    }
}

fn syntax_error(text: &str) -> SyntaxError {
    match parse(text) {
        Ok(e) => panic!("{text:?} parsed as {e}"),
        Err(Error::ExprSyntax(e)) => e,
        Err(e) => panic!("{text:?}: not a syntax error: {e}"),
    }
}

/// The message of `text`'s error without the `syntax error at column N: ` head, and
/// the column.
fn problem(text: &str) -> (String, usize) {
    let e = syntax_error(text);
    (e.problem().to_string(), e.column())
}

#[test]
fn precedence_and_associativity_follow_python() {
    for (text, want) in [
        ("a - b - c", "((a - b) - c)"),
        ("a ** b ** c", "(a ** (b ** c))"),
        ("-a ** b", "(-(a ** b))"),
        ("-2**2", "(-(2 ** 2))"),
        ("2**-1", "(2 ** (-1))"),
        ("a ** -b ** c", "(a ** (-(b ** c)))"),
        ("not a == b", "(not (a == b))"),
        ("not a and b", "((not a) and b)"),
        ("a or b and c", "(a or (b and c))"),
        ("a < b < c", "(a < b < c)"),
        ("(a < b) < c", "((a < b) < c)"),
        (
            "a | b ^ c & d << e + f * g ** h",
            "(a | (b ^ (c & (d << (e + (f * (g ** h)))))))",
        ),
        ("a * b @ c // d % e / f", "(((((a * b) @ c) // d) % e) / f)"),
        ("~a & b", "((~a) & b)"),
        ("- - x", "(-(-x))"),
        ("+x * -y", "((+x) * (-y))"),
        ("a if b else c", "(a if b else c)"),
        ("a if b else c if d else e", "(a if b else (c if d else e))"),
        ("a or b if c or d else e", "((a or b) if (c or d) else e)"),
        ("1if a else 2", "(1 if a else 2)"),
        ("a or b or c", "(a or b or c)"),
        ("(a or b) or c", "((a or b) or c)"),
        ("a == b != c >= d", "(a == b != c >= d)"),
        ("a < b == c and d", "((a < b == c) and d)"),
        ("x.T @ y", "(x.T @ y)"),
        ("a >> b << c", "((a >> b) << c)"),
    ] {
        assert_eq!(show(text), want, "{text}");
    }
}

#[test]
fn primaries_calls_and_subscripts() {
    for (text, want) in [
        ("f(a)(b)[c].d", "f(a)(b)[c].d"),
        ("x.sum(axis=1)", "x.sum(axis=1)"),
        ("x.astype('float32')", "x.astype('float32')"),
        ("x.rechunk((100, 100))", "x.rechunk((100, 100))"),
        (
            "random.random((10000, 10000, 10), chunks=(1000, 1000, 5), seed=0)",
            "random.random((10000, 10000, 10), chunks=(1000, 1000, 5), seed=0)",
        ),
        ("f(a, b, key=v,)", "f(a, b, key=v)"),
        ("f()", "f()"),
        ("x[::2, 5000:]", "x[::2, 5000:]"),
        (
            "x[1, ::2, None, ..., [0, 2], 3:]",
            "x[1, ::2, None, ..., [0, 2], 3:]",
        ),
        ("x[:]", "x[:]"),
        ("x[::]", "x[:]"),
        ("x[a:b:c]", "x[a:b:c]"),
        ("x[:b]", "x[:b]"),
        ("x[1,]", "x[1,]"),
        ("x[(1, 2)]", "x[1, 2]"),
        ("x[()]", "x[()]"),
        (
            "(x + x.T)[::2, 5000:].mean(axis=1)",
            "(x + x.T)[::2, 5000:].mean(axis=1)",
        ),
        (
            "np.sum(x, axis=(1, 2), keepdims=True)",
            "np.sum(x, axis=(1, 2), keepdims=True)",
        ),
        ("x[-1:]", "x[(-1):]"),
        ("1 .real", "1.real"),
    ] {
        assert_eq!(show(text), want, "{text}");
    }
}

#[test]
fn atoms_tuples_lists_and_literals() {
    for (text, want) in [
        ("()", "()"),
        ("(1,)", "(1,)"),
        ("(1, 2)", "(1, 2)"),
        ("(1)", "1"),
        ("1, 2", "(1, 2)"),
        ("1,", "(1,)"),
        ("[]", "[]"),
        ("[1, [2, 3],]", "[1, [2, 3]]"),
        ("True, False, None, ...", "(True, False, None, ...)"),
        ("0x_ff + 0o17 + 0b1", "((255 + 15) + 1)"),
        (
            "1_000.5 + .5 + 1. + 1e-3",
            "(((1000.5 + 0.5) + 1.0) + 0.001)",
        ),
        ("1j + 2.5e3J", "(1j + 2500j)"),
        ("'a' \"b\" 'c'", "'abc'"),
        ("'it''s'", "'its'"),
        ("\"it's\"", "'it\\'s'"),
        ("'\\x01\\n'", "'\\x01\\n'"),
        ("(a,\n b)", "(a, b)"),
        ("f(a, # the first\n  b)", "f(a, b)"),
        ("  x  \n", "x"),
        ("18446744073709551615", "18446744073709551615"),
        ("-9223372036854775808", "(-9223372036854775808)"),
    ] {
        assert_eq!(show(text), want, "{text}");
    }
}

#[test]
fn spans_cover_each_node_as_python_does() {
    let e = parse("(a + b) * c").unwrap();
    assert_eq!(e.span(), Span::new(0, 11));
    let ExprKind::Binary { left, right, .. } = e.kind() else {
        panic!("{e}");
    };
    // The parenthesised sum keeps its own span; the product starts at its `(`.
    assert_eq!(left.span(), Span::new(1, 6));
    assert_eq!(right.span(), Span::new(10, 11));

    let e = parse("x.sum(axis=(1, 2))").unwrap();
    let ExprKind::Call { func, keywords, .. } = e.kind() else {
        panic!("{e}");
    };
    assert_eq!(func.span(), Span::new(0, 5));
    let ExprKind::Attribute { name_span, .. } = func.kind() else {
        panic!("{func}");
    };
    assert_eq!(*name_span, Span::new(2, 5));
    assert_eq!(keywords[0].span, Span::new(6, 17));
    assert_eq!(keywords[0].name_span, Span::new(6, 10));
    assert_eq!(keywords[0].value.span(), Span::new(11, 17));

    let e = parse("x[a, b:c]").unwrap();
    let ExprKind::Subscript { index, .. } = e.kind() else {
        panic!("{e}");
    };
    assert_eq!(index.span(), Span::new(2, 8));
    let ExprKind::Tuple(items) = index.kind() else {
        panic!("{index}");
    };
    assert_eq!(items[1].span(), Span::new(5, 8));

    // Byte offsets: 'é' takes two bytes.
    let e = parse("'é' + b").unwrap();
    let ExprKind::Binary { right, .. } = e.kind() else {
        panic!("{e}");
    };
    assert_eq!(right.span(), Span::new(7, 8));
}

#[test]
fn module_prefixes_stay_in_the_tree_and_a_helper_strips_them() {
    for (text, path, stripped) in [
        (
            "np.random.random",
            vec!["np", "random", "random"],
            vec!["random", "random"],
        ),
        ("numpy.sum", vec!["numpy", "sum"], vec!["sum"]),
        ("da.arcsin", vec!["da", "arcsin"], vec!["arcsin"]),
        (
            "dask.array.ones",
            vec!["dask", "array", "ones"],
            vec!["ones"],
        ),
        ("x.T", vec!["x", "T"], vec!["x", "T"]),
        (
            "dask.dataframe",
            vec!["dask", "dataframe"],
            vec!["dask", "dataframe"],
        ),
    ] {
        let e = parse(text).unwrap();
        let got = e.dotted_name().unwrap();
        assert_eq!(got, path, "{text}");
        assert_eq!(strip_library_prefix(&got), stripped.as_slice(), "{text}");
    }
    assert_eq!(parse("f(x).y").unwrap().dotted_name(), None);
}

#[test]
fn each_syntax_error_says_what_was_expected_and_found_and_where() {
    for (text, message, column) in [
        ("x + * y", "expected an expression, found '*'", 5),
        ("", "expected an expression, found the end of the expression", 1),
        ("a b", "expected an operator or the end of the expression, found name 'b'", 3),
        ("f(a b)", "expected ',' or ')', found name 'b'", 5),
        ("[1 2]", "expected ',' or ']', found number 2", 4),
        ("x[1:2:3:4]", "expected ',' or ']', found ':'", 8),
        ("x[]", "expected an expression, found ']'", 3),
        ("x.1", "expected an operator or the end of the expression, found number .1", 2),
        ("x.if", "expected a name after '.', found 'if'", 3),
        ("a if b", "expected 'else', found the end of the expression", 7),
        ("a == not b", "expected an expression, found 'not'", 6),
        ("f(a=1, b)", "positional argument follows keyword argument", 8),
        ("f(axis=1, axis=2)", "keyword argument 'axis' is given twice", 11),
        ("f(x.y=1)", "a keyword argument needs a plain name before '=' (to compare, use '==')", 3),
        ("f((a)=1)", "a keyword argument needs a plain name before '=' (to compare, use '==')", 4),
        ("(a", "'(' is never closed", 1),
        ("f(x, [1, 2", "'[' is never closed", 6),
        ("x + (a * (b", "'(' is never closed", 10),
        ("(a]", "closing ']' does not match the opening '(' at column 1", 3),
        ("a)", "unmatched ')'", 2),
        ("x $ y", "unexpected character '$'", 3),
        ("'abc", "unterminated string: the quote here is never closed", 1),
        ("f(x, 'abc)", "unterminated string: the quote here is never closed", 6),
        ("007", "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers", 1),
        ("x + 1e", "invalid decimal literal", 5),
        ("1\n+ 2", "a line break ends the expression, but more follows; an expression continues on the next line only inside brackets", 1),
        ("x +\ny", "expected an expression, found a line break", 4),
    ] {
        let (got, got_column) = problem(text);
        assert_eq!(got, message, "{text:?}");
        assert_eq!(got_column, column, "{text:?}");
    }
    let e = syntax_error("(a,\n b]");
    assert_eq!(
        e.to_string(),
        "syntax error at line 2, column 3: closing ']' does not match the opening '(' at column 1"
    );
}

#[test]
fn assignment_and_python_only_syntax_are_refused_by_name() {
    let assignment = "is not an expression; write one expression whose value is the result \
                      (to compare, use '=='; for x[mask] = v, use where(mask, v, x))";
    for (text, op, column) in [
        ("x = 1", "=", 3),
        ("x[mask] = 2", "=", 9),
        ("x += 1", "+=", 3),
        ("(x = 1)", "=", 4),
    ] {
        let (got, got_column) = problem(text);
        assert_eq!(got, format!("assignment ('{op}') {assignment}"), "{text}");
        assert_eq!(got_column, column, "{text}");
    }
    for (text, what, column) in [
        ("lambda x: x", "lambda is", 1),
        ("a in b", "the 'in' and 'is' comparisons are", 3),
        ("a not in b", "the 'in' and 'is' comparisons are", 3),
        ("a is not b", "the 'in' and 'is' comparisons are", 3),
        ("[x for x in y]", "comprehensions ('for') are", 4),
        ("{1: 2}", "dict and set displays ('{...}') are", 1),
        ("f(*a)", "unpacking with '*' and '**' is", 3),
        ("f(**k)", "unpacking with '*' and '**' is", 3),
        ("[*a]", "unpacking with '*' and '**' is", 2),
        ("(x := 1)", "assignment expressions (':=') are", 4),
        ("f'{x}'", "f-strings are", 1),
        ("b'x'", "bytes literals are", 1),
    ] {
        let (got, got_column) = problem(text);
        assert_eq!(
            got,
            format!("{what} not part of the expression language"),
            "{text}"
        );
        assert_eq!(got_column, column, "{text}");
    }
}

#[test]
fn syntax_errors_render_a_caret_and_exit_2() {
    let err = parse("x + * y").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let Error::ExprSyntax(e) = err else {
        panic!("{err}");
    };
    assert_eq!(e.caret(), "x + * y\n    ^");
    assert_eq!(e.span(), Span::new(4, 5));
    assert_eq!(e.expression(), "x + * y");
    assert_eq!(syntax_error("foo(bar, baz").caret(), "foo(bar, baz\n   ^");
    assert_eq!(
        syntax_error("x + abc def").caret(),
        "x + abc def\n        ^^^"
    );
    assert_eq!(syntax_error("x +").caret(), "x +\n   ^");
    assert_eq!(syntax_error("é + $").caret(), "é + $\n    ^");
}

/// Runs `f` on a thread with a 2 MiB stack (what test threads and many hosts give)
/// and fails when it takes longer than `limit`.
fn quick<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let started = Instant::now();
    let value = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    value
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let limit = Duration::from_secs(5);
    let too_deep = format!("the expression is nested more than {MAX_DEPTH} levels deep");
    let hostile = [
        format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}x", "-".repeat(100_000)),
        format!("{}x", "not ".repeat(100_000)),
        format!("{}x{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("x{}", "+x".repeat(100_000)),
        format!("x{}", ".a".repeat(100_000)),
        format!("f{}", "()".repeat(100_000)),
        format!("x{}", "[0]".repeat(100_000)),
        format!("x{}", "**x".repeat(100_000)),
        format!("x{}", " if x else x".repeat(100_000)),
        format!("{}x", "f(".repeat(100_000)),
    ];
    for text in hostile {
        let head: String = text.chars().take(12).collect();
        let (message, column) = quick(limit, move || problem(&text));
        assert_eq!(message, too_deep, "{head}");
        // Refused where the limit is passed, not after reading everything.
        assert!(column < 3000, "{head}: column {column}");
    }
    // Just inside the limit parses; brackets and chains a user writes are far below.
    let nested = format!("{}x{}", "(".repeat(150), ")".repeat(150));
    assert_eq!(show(&nested), "x");
    let chain = format!("x{}", "+x".repeat(150));
    assert_eq!(parse(&chain).unwrap().height(), 151);
}

#[test]
fn long_flat_input_parses_quickly() {
    let limit = Duration::from_secs(5);
    // A megabyte list, comparison chain, `and` chain and string: flat, so accepted.
    let list = format!("[{}]", "1,".repeat(500_000));
    let e = quick(limit, move || parse(&list).unwrap());
    let ExprKind::List(items) = e.kind() else {
        panic!("not a list");
    };
    assert_eq!(items.len(), 500_000);
    let compare = format!("x{}", " < x".repeat(250_000));
    assert_eq!(quick(limit, move || parse(&compare).unwrap().height()), 2);
    let and = format!("x{}", " and x".repeat(200_000));
    assert_eq!(quick(limit, move || parse(&and).unwrap().height()), 2);
    let string = format!("'{}'", "a".repeat(1 << 20));
    let e = quick(limit, move || parse(&string).unwrap());
    assert!(matches!(e.kind(), ExprKind::Str(s) if s.len() == 1 << 20));
    // A megabyte of keywords: duplicates are found by hashing, not by comparing pairs.
    let mut call = String::from("f(");
    for i in 0..100_000 {
        call.push_str(&format!("k{i}=1,"));
    }
    call.push_str("k7=2)");
    let (message, _) = quick(limit, move || problem(&call));
    assert_eq!(message, "keyword argument 'k7' is given twice");
}

#[test]
fn huge_literals_are_refused_or_kept_exactly() {
    let limit = Duration::from_secs(5);
    let digits = format!("x + {}", "9".repeat(1 << 20));
    let (message, column) = quick(limit, move || problem(&digits));
    assert_eq!(
        message,
        "integer literal 999999999999999999999999... (1048576 characters) is too large; \
         the largest is 18446744073709551615 (2**64 - 1)"
    );
    assert_eq!(column, 5);
    let (message, _) = problem("0x1_0000_0000_0000_0000");
    assert!(message.starts_with("integer literal 0x1_0000_0000_0000_0000 is too large"));
    // A float with a megabyte of digits reads to the nearest double, as in Python.
    let float = format!("{}.5", "1".repeat(1 << 20));
    let e = quick(limit, move || parse(&float).unwrap());
    assert!(matches!(e.kind(), ExprKind::Float(x) if x.is_infinite()));
    let float = format!("0.{}1", "0".repeat(1 << 20));
    let e = quick(limit, move || parse(&float).unwrap());
    assert_eq!(e.to_string(), "0.0");
}

#[test]
fn random_garbage_never_panics() {
    // Bytes from the language's alphabet in a fixed pseudo-random order: every
    // prefix either parses or is a syntax error, never a panic.
    let alphabet: Vec<char> = "()[]{},:.;=+-*/%@<>&|^~!'\"\\#\n xy01e_jJ.9éif else not and or"
        .chars()
        .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut text = String::new();
        for _ in 0..(state % 24) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        if let Err(e) = parse(&text) {
            let Error::ExprSyntax(e) = e else {
                panic!("{text:?}: {e}");
            };
            let caret = e.caret();
            assert!(caret.contains('^'), "{text:?}");
            assert!(
                e.span().start <= text.len() && e.span().end <= text.len(),
                "{text:?}"
            );
        }
        state = state.wrapping_add(0x2545_f491_4f6c_dd1d);
    }
}
