//! Expressions against DuckDB: the same small table (nulls, negative numbers, the
//! largest int64, empty and non-ASCII strings, dates before 1970) is given to
//! DuckDB through pyarrow, each expression is run there as SQL and here as an
//! [`Expr`], and the values must agree row by row.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::*;
use serde_json::{json, Value as Json};

use super::*;
use crate::Error;

/// The table both sides compute on.
fn table() -> RecordBatch {
    let i: ArrayRef = Arc::new(Int64Array::from(vec![
        Some(1),
        Some(-7),
        None,
        Some(0),
        Some(i64::MAX),
        Some(15),
        Some(-1),
    ]));
    let j: ArrayRef = Arc::new(Int32Array::from(vec![
        Some(2),
        Some(2),
        Some(3),
        None,
        Some(-3),
        Some(0),
        Some(-7),
    ]));
    let f: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(2.5),
        Some(-2.5),
        Some(0.0),
        None,
        Some(1234.5678),
        Some(f64::NAN),
        Some(-0.004),
    ]));
    let s: ArrayRef = Arc::new(StringArray::from(vec![
        Some("abc1"),
        Some(""),
        Some("Ébène,bois,x"),
        None,
        Some("  spaced  "),
        Some("b,a"),
        Some("aaa"),
    ]));
    let d: ArrayRef = Arc::new(Date32Array::from(vec![
        Some(0),
        Some(-1),
        Some(-36_524),
        None,
        Some(18_628),
        Some(19_724),
        Some(11_016),
    ]));
    let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
        Some(0),
        Some(-1_500_000),
        Some(1_609_459_199_999_999),
        None,
        Some(951_782_400_000_000),
        Some(1_700_000_000_123_456),
        Some(-86_400_000_000 * 400),
    ]));
    let b: ArrayRef = Arc::new(BooleanArray::from(vec![
        Some(true),
        Some(false),
        None,
        Some(true),
        Some(false),
        None,
        Some(true),
    ]));
    RecordBatch::try_from_iter([
        ("i", i),
        ("j", j),
        ("f", f),
        ("s", s),
        ("d", d),
        ("ts", ts),
        ("b", b),
    ])
    .unwrap()
}

/// The DuckDB side: builds the table from JSON through pyarrow and prints each
/// expression's values (dates as days, timestamps and intervals as
/// microseconds, NaN and infinities as strings), or its error.
const DUCKDB: &str = r#"
import sys, json, math, datetime
import duckdb, pyarrow as pa
data, exprs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
t = pa.table({
    "i": pa.array(data["i"], pa.int64()),
    "j": pa.array(data["j"], pa.int32()),
    "f": pa.array([float(x) if x is not None else None for x in data["f"]], pa.float64()),
    "s": pa.array(data["s"], pa.string()),
    "d": pa.array(data["d"], pa.date32()),
    "ts": pa.array(data["ts"], pa.timestamp("us")),
    "b": pa.array(data["b"], pa.bool_()),
})
con = duckdb.connect()
con.register("t", t)
epoch = datetime.datetime(1970, 1, 1)
def norm(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, datetime.datetime):
        return (v - epoch) // datetime.timedelta(microseconds=1)
    if isinstance(v, datetime.date):
        return (v - epoch.date()).days
    if isinstance(v, datetime.timedelta):
        return v // datetime.timedelta(microseconds=1)
    return float(v)
out = []
for e in exprs:
    try:
        out.append([norm(r[0]) for r in con.execute(f"select {e} from t").fetchall()])
    except Exception as err:
        out.append({"error": str(err).splitlines()[0]})
print(json.dumps(out))
"#;

/// The table's columns as JSON for the script (NaN as the string it parses).
fn table_json(batch: &RecordBatch) -> String {
    let mut cols = serde_json::Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let values = to_json(col);
        let values = match field.name().as_str() {
            "f" => values
                .into_iter()
                .map(|v| match v {
                    Json::String(s) => json!(s),
                    v => v,
                })
                .collect(),
            _ => values,
        };
        cols.insert(field.name().clone(), Json::Array(values));
    }
    Json::Object(cols).to_string()
}

/// Our values as the script prints DuckDB's.
fn to_json(a: &ArrayRef) -> Vec<Json> {
    use arrow::compute::cast;
    let num = |x: f64| {
        if x.is_finite() {
            json!(x)
        } else if x.is_nan() {
            json!("nan")
        } else if x > 0.0 {
            json!("inf")
        } else {
            json!("-inf")
        }
    };
    (0..a.len())
        .map(|r| {
            if a.is_null(r) {
                return Json::Null;
            }
            match a.data_type() {
                DataType::Boolean => json!(a.as_boolean().value(r)),
                t if t.is_integer() => {
                    let v = cast(a, &DataType::Int64).unwrap();
                    json!(v.as_primitive::<Int64Type>().value(r))
                }
                t if t.is_floating() => {
                    let v = cast(a, &DataType::Float64).unwrap();
                    num(v.as_primitive::<Float64Type>().value(r))
                }
                DataType::Utf8 => json!(a.as_string::<i32>().value(r)),
                DataType::Date32 => json!(a.as_primitive::<Date32Type>().value(r)),
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    json!(a.as_primitive::<TimestampMicrosecondType>().value(r))
                }
                DataType::Duration(TimeUnit::Microsecond) => {
                    json!(a.as_primitive::<DurationMicrosecondType>().value(r))
                }
                t => panic!("no JSON for {t}"),
            }
        })
        .collect()
}

fn same(ours: &Json, theirs: &Json) -> bool {
    match (ours, theirs) {
        (Json::Number(a), Json::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
        }
        (a, b) => a == b,
    }
}

fn c(name: &str) -> Expr {
    Expr::col(name)
}

fn l(v: impl Into<Literal>) -> Expr {
    Expr::lit(v)
}

fn f(name: &str, args: Vec<Expr>) -> Expr {
    Expr::call(name, args)
}

/// Each expression with the SQL DuckDB runs for it (the same text, unless the
/// operator is spelled differently).
fn cases() -> Vec<(Expr, &'static str)> {
    use BinaryOp as B;
    let pos = c("i").lt(l(100));
    vec![
        // arithmetic and its types
        (c("j").add(l(1)), "j + 1"),
        (c("i").sub(c("j")), "i - j"),
        (c("j").mul(l(-3)), "j * -3"),
        (c("i").div(c("j")), "i / j"),
        (c("j").div(l(0)), "j / 0"),
        (c("j").binary(B::TruncDivide, l(2)), "j // 2"),
        (c("i").binary(B::Modulo, l(4)), "i % 4"),
        (c("j").binary(B::Modulo, c("j")), "j % nullif(j, 0)"),
        // Python's floor division and modulo, checked against DuckDB's floor.
        (c("j").floor_div(l(4)), "CAST(floor(j / 4) AS INTEGER)"),
        (c("i").floor_div(c("j")), "CASE WHEN j != 0 THEN i // j - CASE WHEN i % j != 0 AND (i % j < 0) != (j < 0) THEN 1 ELSE 0 END END"),
        (c("j").binary(B::FloorModulo, l(4)), "j - 4 * CAST(floor(j / 4) AS INTEGER)"),
        (c("f").floor_div(l(2.0)), "floor(f / 2.0)"),
        (c("f").binary(B::Modulo, l(2.0)), "f % 2.0"),
        (c("j").pow(l(2)), "j ** 2"),
        (c("j").neg(), "-j"),
        (c("f").mul(l(2.5)), "f * 2.5"),
        (c("j").add(c("f")), "j + f"),
        // comparisons, logic, NULLs
        (c("i").gt(l(5)), "i > 5"),
        (c("s").eq(l("aaa")), "s = 'aaa'"),
        (c("s").lt(l("b")), "s < 'b'"),
        (c("f").gt_eq(l(0)), "f >= 0"),
        (c("d").gt(l("1969-06-01")), "d > '1969-06-01'"),
        (c("ts").lt(c("d")), "ts < d"),
        (c("b").and(c("i").gt(l(0))), "b AND i > 0"),
        (c("b").or(c("i").gt(l(0))), "b OR i > 0"),
        (c("b").not(), "NOT b"),
        (c("b").and(l(None::<bool>)), "b AND NULL"),
        (c("i").add(l(None::<i64>)), "i + NULL"),
        (c("i").is_null(), "i IS NULL"),
        (c("s").is_not_null(), "s IS NOT NULL"),
        (c("i").in_list(vec![l(1), l(0), l(None::<i64>)]), "i IN (1, 0, NULL)"),
        (c("j").in_list(vec![l(2), l(-7)]), "j IN (2, -7)"),
        (c("f").in_list(vec![l(2.5), l(f64::NAN), l(0)]), "f IN (2.5, 'nan'::DOUBLE, 0)"),
        (c("s").in_list(vec![l("aaa"), l(""), l("b,a")]), "s IN ('aaa', '', 'b,a')"),
        (
            Expr::InList { expr: Box::new(c("i")), list: vec![l(1), l(2)], negated: true },
            "i NOT IN (1, 2)",
        ),
        (c("i").in_list(vec![c("j"), l(0)]), "i IN (j, 0)"),
        (c("i").between(l(-5), l(5)), "i BETWEEN -5 AND 5"),
        (c("i").between(l(-5), l(None::<i64>)), "i BETWEEN -5 AND NULL"),
        (c("s").like(l("a%")), "s LIKE 'a%'"),
        (
            Expr::Like { expr: Box::new(c("s")), pattern: Box::new(l("É%")), case_insensitive: true, negated: true },
            "s NOT ILIKE 'É%'",
        ),
        (c("s").binary(B::Concat, c("j")), "s || j"),
        (c("i").cast(DataType::Utf8), "CAST(i AS VARCHAR)"),
        (c("s").try_cast(DataType::Int64), "TRY_CAST(s AS BIGINT)"),
        // CASE: the overflowing i * 2 is only computed where i < 100.
        (
            Expr::Case {
                operand: None,
                when_then: vec![(pos.clone(), c("i").mul(l(2)))],
                otherwise: Some(Box::new(l(-1))),
            },
            "CASE WHEN i < 100 THEN i * 2 ELSE -1 END",
        ),
        (
            Expr::Case {
                operand: None,
                when_then: vec![(c("i").gt(l(0)), l("pos")), (c("i").lt(l(0)), l("neg"))],
                otherwise: Some(Box::new(c("s"))),
            },
            "CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' ELSE s END",
        ),
        (
            Expr::Case {
                operand: Some(Box::new(c("j"))),
                when_then: vec![(l(2), c("f")), (l(-3), l(7))],
                otherwise: None,
            },
            "CASE j WHEN 2 THEN f WHEN -3 THEN 7 END",
        ),
        (f("if", vec![pos, c("i").add(l(1)), l(0)]), "if(i < 100, i + 1, 0)"),
        // math
        (f("abs", vec![c("j")]), "abs(j)"),
        (f("round", vec![c("f")]), "round(f)"),
        (f("round", vec![c("f"), l(2)]), "round(f, 2)"),
        (f("round", vec![c("j"), l(-1)]), "round(j, -1)"),
        (f("floor", vec![c("f")]), "floor(f)"),
        (f("CEIL", vec![c("f")]), "ceil(f)"),
        (f("sqrt", vec![c("f")]), "sqrt(f)"),
        (f("ln", vec![c("f")]), "ln(f)"),
        (f("log", vec![c("f")]), "log(f)"),
        (f("log2", vec![c("j")]), "log2(j)"),
        (f("exp", vec![c("j")]), "exp(j)"),
        (f("power", vec![c("f"), l(2)]), "power(f, 2)"),
        (f("sign", vec![c("f")]), "sign(f)"),
        (f("isnan", vec![c("f")]), "isnan(f)"),
        (f("greatest", vec![c("i"), c("j")]), "greatest(i, j)"),
        (f("least", vec![c("j"), c("f")]), "least(j, f)"),
        (f("coalesce", vec![c("j"), c("i"), l(0)]), "coalesce(j, i, 0)"),
        (f("fill_null", vec![c("s"), l("?")]), "coalesce(s, '?')"),
        (f("nullif", vec![c("j"), l(2)]), "nullif(j, 2)"),
        // strings
        (f("lower", vec![c("s")]), "lower(s)"),
        (f("upper", vec![c("s")]), "upper(s)"),
        (f("len", vec![c("s")]), "length(s)"),
        (f("substr", vec![c("s"), l(2), l(3)]), "substr(s, 2, 3)"),
        (f("substring", vec![c("s"), l(-2)]), "substring(s, -2)"),
        (f("substr", vec![c("s"), l(0), l(2)]), "substr(s, 0, 2)"),
        (f("substr", vec![c("s"), c("j")]), "substr(s, j)"),
        (f("slice", vec![c("s"), l(1), l(-1)]), "s[2:-2]"),
        (f("replace", vec![c("s"), l("a"), l("xy")]), "replace(s, 'a', 'xy')"),
        (f("trim", vec![c("s")]), "trim(s)"),
        (f("lstrip", vec![c("s")]), "ltrim(s)"),
        (f("rtrim", vec![c("s"), l("a")]), "rtrim(s, 'a')"),
        (f("contains", vec![c("s"), l("b")]), "contains(s, 'b')"),
        (f("startswith", vec![c("s"), l("a")]), "starts_with(s, 'a')"),
        (f("ends_with", vec![c("s"), l("x")]), "ends_with(s, 'x')"),
        (f("split_part", vec![c("s"), l(","), l(2)]), "split_part(s, ',', 2)"),
        (f("split_part", vec![c("s"), l(","), l(-1)]), "split_part(s, ',', -1)"),
        (f("concat", vec![c("s"), l("-"), c("j")]), "concat(s, '-', j)"),
        (f("regexp_matches", vec![c("s"), l("[0-9]")]), "regexp_matches(s, '[0-9]')"),
        (f("regexp_extract", vec![c("s"), l("([a-z]+)([0-9]*)"), l(1)]), "regexp_extract(s, '([a-z]+)([0-9]*)', 1)"),
        (f("regexp_replace", vec![c("s"), l("[ab]"), l("_"), l("g")]), "regexp_replace(s, '[ab]', '_', 'g')"),
        (f("regexp_replace", vec![c("s"), l("(b)"), l(r"<\1>")]), r"regexp_replace(s, '(b)', '<\1>')"),
        // dates and timestamps
        (f("year", vec![c("d")]), "year(d)"),
        (f("month", vec![c("d")]), "month(d)"),
        (f("day", vec![c("ts")]), "day(ts)"),
        (f("dayofweek", vec![c("d")]), "dayofweek(d)"),
        (f("isodow", vec![c("d")]), "isodow(d)"),
        (f("dayofyear", vec![c("d")]), "dayofyear(d)"),
        (f("quarter", vec![c("d")]), "quarter(d)"),
        (f("week", vec![c("d")]), "week(d)"),
        (f("hour", vec![c("ts")]), "hour(ts)"),
        (f("minute", vec![c("ts")]), "minute(ts)"),
        (f("second", vec![c("ts")]), "second(ts)"),
        (f("date_trunc", vec![l("month"), c("d")]), "date_trunc('month', d)"),
        (f("date_trunc", vec![l("quarter"), c("ts")]), "date_trunc('quarter', ts)"),
        (f("date_trunc", vec![l("week"), c("ts")]), "date_trunc('week', ts)"),
        (f("date_trunc", vec![l("hour"), c("ts")]), "date_trunc('hour', ts)"),
        (f("date_trunc", vec![l("second"), c("ts")]), "date_trunc('second', ts)"),
        (f("date_trunc", vec![l("year"), c("d")]), "date_trunc('year', d)"),
        (c("d").add(l(30)), "d + 30"),
        (l(1).add(c("d")), "1 + d"),
        (c("d").sub(c("j")), "d - j"),
        (c("d").sub(l(Literal::Date32(-365))), "d - DATE '1969-01-01'"),
        (c("d").add(l(Literal::Interval { months: 1, days: 0, nanos: 0 })), "d + INTERVAL 1 MONTH"),
        (c("ts").add(l(Literal::Interval { months: 0, days: 0, nanos: 90 * 60_000_000_000 })), "ts + INTERVAL 90 MINUTE"),
        (c("ts").sub(l(Literal::IntervalDays(3))), "ts - INTERVAL 3 DAY"),
        (c("ts").sub(c("d")), "ts - d"),
    ]
}

#[test]
fn expressions_agree_with_duckdb() {
    let batch = table();
    let cases = cases();
    let sql: Vec<&str> = cases.iter().map(|(_, s)| *s).collect();
    let theirs = crate::reference::json(
        DUCKDB,
        &[&table_json(&batch), &serde_json::to_string(&sql).unwrap()],
    );
    let mut failures = Vec::new();
    for ((expr, sql), theirs) in cases.iter().zip(theirs.as_array().unwrap()) {
        let checked = expr.data_type(&batch.schema());
        let ours = expr.evaluate(&batch);
        match (ours, theirs) {
            (Ok(a), Json::Array(b)) => {
                assert_eq!(
                    Some(a.data_type()),
                    checked.as_ref().ok(),
                    "{expr}: data_type and evaluate disagree"
                );
                assert_eq!(a.len(), batch.num_rows());
                let a = to_json(&a);
                if a.len() != b.len() || !a.iter().zip(b).all(|(x, y)| same(x, y)) {
                    failures.push(format!("{expr} vs {sql}:\n  ours   {a:?}\n  duckdb {b:?}"));
                }
            }
            // Both fail: an overflow, say (whose message is tested apart).
            (Err(_), Json::Object(e)) if e.contains_key("error") => {}
            (ours, theirs) => {
                failures.push(format!("{expr} vs {sql}: ours {ours:?}, duckdb {theirs}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn overflow_fails_as_in_duckdb_naming_the_operation() {
    let batch = table();
    let theirs = crate::reference::json(
        DUCKDB,
        &[
            &table_json(&batch),
            r#"["i + 1", "i * 2", "-(i - 1)", "abs(j)"]"#,
        ],
    );
    assert!(theirs[0]["error"]
        .as_str()
        .unwrap()
        .contains("Overflow in addition"));
    assert!(theirs[1]["error"]
        .as_str()
        .unwrap()
        .contains("Overflow in multiplication"));
    let e = c("i").add(l(1)).evaluate(&batch).unwrap_err();
    assert!(matches!(e, Error::FrameType { .. }));
    assert_eq!(e.exit_code(), 2);
    let text = e.to_string();
    assert!(text.starts_with("(i + 1): overflow in addition"), "{text}");
    let text = c("i").mul(l(2)).evaluate(&batch).unwrap_err().to_string();
    assert!(
        text.starts_with("(i * 2): overflow in multiplication"),
        "{text}"
    );
    // i64::MIN // -1 is the one overflowing quotient.
    let min =
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![i64::MIN])) as ArrayRef)])
            .unwrap();
    let text = c("x")
        .floor_div(l(-1))
        .evaluate(&min)
        .unwrap_err()
        .to_string();
    assert!(text.contains("overflow in division of int64"), "{text}");
    let text = f("abs", vec![c("x")])
        .evaluate(&min)
        .unwrap_err()
        .to_string();
    assert!(text.contains("overflow"), "{text}");
    let text = c("x").neg().evaluate(&min).unwrap_err().to_string();
    assert!(text.contains("overflow in negation"), "{text}");
}

#[test]
fn integer_division_by_zero_is_null_not_a_panic() {
    let batch = table();
    // j holds a 0 (row 5) and a NULL (row 3).
    for op in [
        BinaryOp::FloorDivide,
        BinaryOp::TruncDivide,
        BinaryOp::Modulo,
        BinaryOp::FloorModulo,
    ] {
        let out = l(7).binary(op, c("j")).evaluate(&batch).unwrap();
        assert!(out.is_null(5) && out.is_null(3), "{op:?}");
        assert_eq!(out.null_count(), 2, "{op:?}");
    }
    let out = c("j").floor_div(l(0)).evaluate(&batch).unwrap();
    assert_eq!(out.null_count(), batch.num_rows());
}

fn schema5() -> Schema {
    Schema::new(
        ["id1", "id2", "v1", "v2", "v3"]
            .iter()
            .map(|n| {
                Field::new(
                    *n,
                    if n.starts_with("id") {
                        DataType::Utf8
                    } else {
                        DataType::Int64
                    },
                    true,
                )
            })
            .collect::<Vec<_>>(),
    )
}

#[test]
fn unknown_column_lists_close_names_and_the_columns() {
    let e = c("v4").add(l(1)).data_type(&schema5()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown column \"v4\"; did you mean v1, v2, v3? (the columns are id1, id2, v1, v2, v3)"
    );
    assert_eq!(e.exit_code(), 2);
    let e = c("zzzzzz").data_type(&schema5()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown column \"zzzzzz\" (the columns are id1, id2, v1, v2, v3)"
    );
    // Evaluation finds the same.
    let e = c("i2").evaluate(&table()).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownColumn { close, .. } if close == &["i", "b", "d"]),
        "{e}"
    );
}

#[test]
fn type_mismatches_name_both_types() {
    let s = schema5();
    let e = c("id1").gt(l(5)).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "(id1 > 5): cannot compare utf8 column \"id1\" with int64 value 5"
    );
    assert_eq!(e.exit_code(), 2);
    let e = c("id1").add(c("v1").mul(l(2))).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "(id1 + (v1 * 2)): cannot apply + to utf8 column \"id1\" and int64 expression (v1 * 2)"
    );
    let e = c("v1").and(l(true)).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "(v1 AND true): AND needs booleans, not int64 column \"v1\""
    );
    let e = f("lower", vec![c("v1")]).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lower(v1): lower: argument 1 must be a string, not int64 column \"v1\""
    );
    // The same at evaluation, with no schema check first.
    let e = c("s").gt(l(5)).evaluate(&table()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "(s > 5): cannot compare utf8 column \"s\" with int64 value 5"
    );
}

#[test]
fn bad_regex_names_the_pattern() {
    let e = f("regexp_matches", vec![c("id1"), l("a(b")])
        .data_type(&schema5())
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("regexp_matches(id1, 'a(b'): invalid regular expression 'a(b': "),
        "{text}"
    );
    assert!(text.contains("unclosed group"), "{text}");
    let e = f("regexp_replace", vec![c("s"), l("["), l("x")])
        .evaluate(&table())
        .unwrap_err();
    assert!(
        e.to_string().contains("invalid regular expression '['"),
        "{e}"
    );
    let e = f("regexp_replace", vec![c("s"), c("s"), l("x")])
        .evaluate(&table())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the pattern must be a constant string"),
        "{e}"
    );
}

#[test]
fn argument_counts_and_unknown_functions_are_errors() {
    let s = schema5();
    let e = f("lower", vec![c("id1"), c("id2")])
        .data_type(&s)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "lower(id1, id2): lower takes 1 argument, not 2"
    );
    let e = f("substr", vec![c("id1")]).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "substr(id1): substr takes 2 or 3 arguments, not 1"
    );
    let e = f("coalesce", vec![]).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "COALESCE(): coalesce takes at least 1 argument, not 0"
    );
    let e = f("lowr", vec![c("id1")]).data_type(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lowr(id1): unknown function \"lowr\"; did you mean lower, dow, floor?"
    );
    let e = f("date_trunc", vec![l("fortnight"), c("v1")])
        .data_type(&s)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("argument 2 must be a date or timestamp"),
        "{e}"
    );
}

#[test]
fn names_are_duckdb_column_names() {
    // Verified by hand: DuckDB 2.0's `description` for the same SELECT items.
    let cases = [
        (c("v1").add(l(1)), "(v1 + 1)"),
        (
            c("v1").gt(l(5)).and(c("v2").lt(l(3))),
            "((v1 > 5) AND (v2 < 3))",
        ),
        (c("v1").not_eq(l(2)), "(v1 != 2)"),
        (c("v1").neg(), "(-(v1))"),
        (c("b").not(), "(NOT b)"),
        (c("v1").is_null(), "(v1 IS NULL)"),
        (c("v1").cast(DataType::Int64), "CAST(v1 AS BIGINT)"),
        (c("v1").in_list(vec![l(1), l(2)]), "(v1 IN (1, 2))"),
        (c("v1").between(l(1), l(2)), "(v1 BETWEEN 1 AND 2)"),
        (c("id1").like(l("a%")), "(id1 ~~ 'a%')"),
        (f("lower", vec![c("id1")]), "lower(id1)"),
        (f("coalesce", vec![c("v1"), l(2)]), "COALESCE(v1, 2)"),
        (l("it's"), "'it''s'"),
        (l(None::<i64>), "NULL"),
        (l(1.5), "1.5"),
        (l(true), "true"),
        (l(Literal::Date32(18_262)), "CAST('2020-01-01' AS DATE)"),
        (
            Expr::Case {
                operand: None,
                when_then: vec![(c("v1").gt(l(1)), l(1))],
                otherwise: Some(Box::new(l(2))),
            },
            "CASE  WHEN ((v1 > 1)) THEN (1) ELSE 2 END",
        ),
        (c("my col"), "\"my col\""),
    ];
    for (e, name) in cases {
        assert_eq!(e.name(), name);
    }
}

#[test]
fn expressions_round_trip_through_json() {
    let e = Expr::Case {
        operand: None,
        when_then: vec![(
            c("ts").gt(l(Literal::TimestampMicros(5))),
            c("v1").try_cast(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into()),
            )),
        )],
        otherwise: Some(Box::new(f("regexp_extract", vec![c("s"), l("x"), l(0)]))),
    }
    .and(
        c("d")
            .add(l(Literal::Interval {
                months: 1,
                days: 2,
                nanos: 3,
            }))
            .is_not_null(),
    )
    .or(c("x").in_list(vec![l(1u64 << 63), l(-0.5), l(None::<bool>)]));
    let text = serde_json::to_string(&e).unwrap();
    let back: Expr = serde_json::from_str(&text).unwrap();
    assert_eq!(back, e);
    for t in [
        DataType::Int8,
        DataType::Utf8View,
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Nanosecond, None),
    ] {
        let text = serde_json::to_string(&DataTypeName(t.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<DataTypeName>(&text).unwrap().0,
            t,
            "{text}"
        );
    }
}

#[test]
fn columns_lists_what_is_read() {
    let e = f("coalesce", vec![c("a"), c("b").add(l(1))]).gt(c("a"));
    let mut out = BTreeSet::new();
    e.columns(&mut out);
    assert_eq!(out.into_iter().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn constants_keep_the_column_type_and_mixed_types_widen() {
    let s = Schema::new(vec![
        Field::new("i8", DataType::Int8, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("i32", DataType::Int32, true),
    ]);
    let t = |e: Expr| e.data_type(&s).unwrap();
    assert_eq!(t(c("i8").add(l(1))), DataType::Int8);
    assert_eq!(t(c("i8").add(l(1000))), DataType::Int64);
    assert_eq!(t(c("i8").add(c("u8"))), DataType::Int16);
    assert_eq!(t(c("f32").mul(l(1.5))), DataType::Float32);
    assert_eq!(t(c("i32").add(c("f32"))), DataType::Float64);
    assert_eq!(t(c("i32").div(l(2))), DataType::Float64);
    assert_eq!(t(c("u8").neg()), DataType::Int16);
}

#[test]
fn other_string_layouts_and_dictionaries_compute_as_utf8() {
    let view: ArrayRef = Arc::new(StringViewArray::from(vec![
        Some("Abc"),
        None,
        Some("b, a long value past twelve bytes"),
    ]));
    let large: ArrayRef = Arc::new(LargeStringArray::from(vec![Some("x"), Some("Abc"), None]));
    let dict: ArrayRef = Arc::new(
        vec![Some("Abc"), Some("z"), None]
            .into_iter()
            .collect::<DictionaryArray<Int32Type>>(),
    );
    let batch = RecordBatch::try_from_iter([("v", view), ("l", large), ("k", dict)]).unwrap();
    let bools = |e: Expr| {
        let a = e.evaluate(&batch).unwrap();
        a.as_boolean().iter().collect::<Vec<_>>()
    };
    assert_eq!(bools(c("v").eq(l("Abc"))), [Some(true), None, Some(false)]);
    assert_eq!(bools(c("k").eq(l("Abc"))), [Some(true), Some(false), None]);
    assert_eq!(bools(c("v").eq(c("l"))), [Some(false), None, None]);
    assert_eq!(
        bools(c("k").in_list(vec![l("z"), l("q")])),
        [Some(false), Some(true), None]
    );
    assert_eq!(
        bools(f("starts_with", vec![c("v"), l("b,")])),
        [Some(false), None, Some(true)]
    );
    assert_eq!(bools(c("l").like(l("A%"))), [Some(false), Some(true), None]);
    let lower = f("lower", vec![c("k")]).evaluate(&batch).unwrap();
    assert_eq!(
        lower.as_string::<i32>().iter().collect::<Vec<_>>(),
        [Some("abc"), Some("z"), None]
    );
    let part = f("split_part", vec![c("v"), l(", "), l(2)])
        .evaluate(&batch)
        .unwrap();
    assert_eq!(
        part.as_string::<i32>().value(2),
        "a long value past twelve bytes"
    );
}

#[test]
fn an_expression_of_constants_fills_every_row() {
    let batch = table();
    let out = l(2).add(l(3)).evaluate(&batch).unwrap();
    assert_eq!(
        out.as_primitive::<Int64Type>().values().to_vec(),
        vec![5; batch.num_rows()]
    );
    let out = f("upper", vec![l("é")]).evaluate(&batch).unwrap();
    assert_eq!(out.len(), batch.num_rows());
    assert_eq!(out.as_string::<i32>().value(6), "É");
}
