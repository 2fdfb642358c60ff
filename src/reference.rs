//! The reference Python environment for unit tests that compare with numpy (and
//! the other reference libraries): `$BLOCKWISE_PYTHON`, else the repository's
//! `.venv`, as the integration tests find it. A test that needs it fails, with a
//! message saying how to make it, when it is missing: it never passes without it.

use std::path::PathBuf;
use std::process::Command;

/// The reference interpreter.
pub(crate) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BLOCKWISE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "this test compares with the reference libraries and needs their Python \
         environment: {} does not exist; run scripts/test.sh, which creates .venv, or \
         set BLOCKWISE_PYTHON",
        venv.display()
    );
    venv
}

/// What `code` prints as JSON, run with `args` as `sys.argv[1:]`.
pub(crate) fn json(code: &str, args: &[&str]) -> serde_json::Value {
    let python = python();
    let out = Command::new(&python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reference script prints JSON")
}

/// Compares the results written as `NAME.parquet` in `argv[1]` with DuckDB's
/// answers to the queries of `argv[2]` (JSON: name → SQL over the views named in
/// `argv[3]`, a JSON list, each read from `VIEW.parquet` in `argv[1]`), and prints
/// the mismatches (JSON: name → what differs). Rows are compared sorted, except
/// for results named `o_...` (a sort's), whose order counts; floats to 1e-9
/// relative (1e-12 absolute), NULL equal to NULL and NaN to NaN.
const DUCKDB_SAME: &str = r#"
import json, math, sys
import duckdb, pyarrow.parquet as pq
out = sys.argv[1]
con = duckdb.connect()
for view in json.loads(sys.argv[3]):
    con.execute(f"create view {view} as select * from read_parquet('{out}/{view}.parquet')")
bad = {}
def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b
for name, sql in json.loads(sys.argv[2]).items():
    want = con.execute(sql).fetchall()
    ours = pq.read_table(f"{out}/{name}.parquet")
    got = [tuple(r.values()) for r in ours.to_pylist()]
    key = lambda r: tuple((x is None, str(x)) for x in r)
    if not name.startswith("o_"):
        want.sort(key=key); got.sort(key=key)
    if len(want) != len(got):
        bad[name] = f"{len(got)} rows, DuckDB {len(want)}: ours {got[:3]} DuckDB {want[:3]}"
        continue
    for w, g in zip(want, got):
        if len(w) != len(g) or not all(same(x, y) for x, y in zip(w, g)):
            bad[name] = f"ours {g} DuckDB {w}"
            break
print(json.dumps(bad))
"#;

/// What differs between the results written as `NAME.parquet` in `dir` and
/// DuckDB's answers to `queries` (name → SQL over `views`, each read from
/// `VIEW.parquet` in `dir`): an empty JSON object when nothing does.
pub(crate) fn duckdb_mismatches(
    dir: &str,
    queries: serde_json::Map<String, serde_json::Value>,
    views: &[&str],
) -> serde_json::Value {
    json(
        DUCKDB_SAME,
        &[
            dir,
            &serde_json::Value::Object(queries).to_string(),
            &serde_json::json!(views).to_string(),
        ],
    )
}

/// Writes db-benchmark's groupby table `t` (`id1..id6`, `v1..v3`; 20,000 rows,
/// NULLs in keys and values) as `t.csv` and `t.parquet` into `argv[1]`; results
/// are compared with DuckDB's over it by [`duckdb_mismatches`].
pub(crate) const GROUPBY_TABLE: &str = r#"
import sys
import numpy as np, pyarrow as pa, pyarrow.csv, pyarrow.parquet as pq
out = sys.argv[1]
rng = np.random.default_rng(11)
n = 20000
def ids(k, fmt):
    return pa.array([fmt % v for v in rng.integers(1, k + 1, n)])
def nulled(a, every):
    mask = np.zeros(n, bool); mask[::every] = True
    return pa.array(a.to_pylist(), mask=mask, type=a.type)
t = pa.table({
    "id1": nulled(ids(20, "id%03d"), 97),
    "id2": ids(30, "id%03d"),
    "id3": ids(2000, "id%010d"),
    "id4": nulled(pa.array(rng.integers(1, 21, n)), 89),
    "id5": pa.array(rng.integers(1, 31, n)),
    "id6": pa.array(rng.integers(1, 2000, n)),
    "v1": nulled(pa.array(rng.integers(1, 6, n)), 13),
    "v2": pa.array(rng.integers(1, 16, n)),
    "v3": pa.array(np.round(rng.random(n) * 100, 6)),
})
pq.write_table(t, f"{out}/t.parquet")
pa.csv.write_csv(t, f"{out}/t.csv")
print("{}")
"#;

/// A two-thread job whose pool holds `limit`. The RSS thresholds are off: the
/// test process's own RSS (other tests, the allocator's retention) dwarfs such a
/// limit; the pool's reservations are what these tests check.
pub(crate) fn context(limit: u64) -> crate::exec::JobContext {
    let options = crate::exec::JobOptions {
        threads: 2,
        memory_limit: limit,
        thresholds: crate::memory::Thresholds {
            spill: f64::INFINITY,
            pause: f64::INFINITY,
            terminate: f64::INFINITY,
            ..crate::memory::Thresholds::default()
        },
        ..crate::exec::JobOptions::default()
    };
    crate::exec::JobContext::new(&options, crate::sys::CancelToken::new()).unwrap()
}

/// Writes `batches` to `path` as Parquet, for [`duckdb_mismatches`] to read.
pub(crate) fn write_parquet(
    path: &std::path::Path,
    batches: &[arrow::record_batch::RecordBatch],
    schema: arrow::datatypes::SchemaRef,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}
