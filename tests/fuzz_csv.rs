//! Mutation fuzzing of the CSV reader: valid CSV bytes with bytes flipped, inserted
//! and deleted (quotes, delimiters, line breaks, NULs, `\r`, very long fields) are
//! opened and every partition read, cut into tiny ranges and tiny batches. Each
//! input must give `Ok` or a clean error, never a panic; and since splitting is
//! exact, the same input read as one range and as many tiny ones must agree: both
//! fail, or both give the same rows.
//!
//! A short budget runs with the tests; the long one is
//! `cargo test --release --test fuzz_csv -- --ignored fuzz` (cases from
//! `BLOCKWISE_FUZZ_CASES`, default 20,000). Failures are kept by proptest in
//! `proptest-regressions/fuzz_csv.txt` and replayed first on every run; every input
//! that ever broke the reader is also kept in [`regressions`] as a named case.

use arrow::record_batch::RecordBatch;
use blockwise::error::Error;
use blockwise::storage::csv::CsvSource;
use blockwise::storage::frame::{FrameReadOptions, FrameSource};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Keeps a huge allocation from passing unnoticed: with the address space capped,
/// it fails (and aborts the test) instead of succeeding lazily.
fn cap_address_space() {
    let limit = libc::rlimit {
        rlim_cur: 6 << 30,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain FFI with a valid struct. Best effort: without the cap the test
    // still catches panics.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
}

/// Reads every partition of `bytes` as CSV.
fn read_all(
    bytes: &[u8],
    blocksize: u64,
    batch_rows: usize,
    infer_rows: usize,
) -> Result<Vec<RecordBatch>, Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.csv");
    std::fs::write(&path, bytes).expect("write input");
    let mut options = FrameReadOptions::default().with_blocksize(blocksize);
    options.batch_rows = batch_rows;
    options.infer_rows = infer_rows;
    let source = CsvSource::open(&path, &options)?;
    let mut out = Vec::new();
    for p in 0..source.num_partitions() {
        for batch in source.read_partition(p)? {
            out.push(batch?);
        }
    }
    Ok(out)
}

/// The rows of `batches` as one batch (for comparing results cut differently).
fn table(batches: &[RecordBatch]) -> Option<RecordBatch> {
    let first = batches.first()?;
    Some(arrow::compute::concat_batches(&first.schema(), batches).expect("same schema"))
}

/// Runs one input through the reader under two cuttings and checks they agree.
fn check(bytes: &[u8], infer_rows: usize) -> Result<(), TestCaseError> {
    let whole = read_all(bytes, u64::MAX, 64 * 1024, infer_rows);
    for (blocksize, batch_rows) in [(7, 2), (1, 1)] {
        let cut = read_all(bytes, blocksize, batch_rows, infer_rows);
        match (&whole, &cut) {
            (Ok(a), Ok(b)) => prop_assert_eq!(
                table(a),
                table(b),
                "blocksize {} changed the rows of {:?}",
                blocksize,
                String::from_utf8_lossy(bytes)
            ),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(
                false,
                "one range gave {:?}, blocksize {} gave {:?} for {:?}",
                a.as_ref().map(Vec::len).map_err(ToString::to_string),
                blocksize,
                b.as_ref().map(Vec::len).map_err(ToString::to_string),
                String::from_utf8_lossy(bytes)
            ),
        }
    }
    Ok(())
}

/// A valid CSV: a header, then rows of ints, floats, text that is quoted with
/// delimiters, quotes and line breaks inside, dates, bools and empty fields.
fn valid_csv() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        any::<i32>().prop_map(|v| v.to_string()),
        any::<f32>().prop_map(|v| v.to_string()),
        "[a-z ]{0,6}",
        "[a-z,\"\n\r]{0,6}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        Just("2024-02-29".to_string()),
        Just("true".to_string()),
        Just(String::new()),
    ];
    (1usize..5, 0usize..12).prop_flat_map(move |(columns, rows)| {
        proptest::collection::vec(proptest::collection::vec(cell.clone(), columns), rows).prop_map(
            move |rows| {
                let mut text: Vec<String> = vec![(0..columns)
                    .map(|i| format!("c{i}"))
                    .collect::<Vec<_>>()
                    .join(",")];
                text.extend(rows.iter().map(|r| r.join(",")));
                (text.join("\n") + "\n").into_bytes()
            },
        )
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Long(usize, u8, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let special = prop_oneof![
        Just(b'"'),
        Just(b','),
        Just(b'\n'),
        Just(b'\r'),
        Just(0u8),
        Just(0xFFu8),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, bit)),
        (any::<usize>(), special.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), special, 1usize..5000).prop_map(|(i, b, n)| Edit::Long(i, b, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *e {
            Edit::Flip(i, bit) if !bytes.is_empty() => {
                let k = i % bytes.len();
                bytes[k] ^= 1 << bit;
            }
            Edit::Insert(i, b) => {
                let k = at(i, bytes.len());
                bytes.insert(k, b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let k = i % bytes.len();
                bytes.remove(k);
            }
            Edit::Long(i, b, n) => {
                let k = at(i, bytes.len());
                let fill = if b == b'\n' || b == b'\r' { b'x' } else { b };
                bytes.splice(k..k, std::iter::repeat_n(fill, n));
            }
            _ => {}
        }
    }
    bytes
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz_csv.txt",
        ))),
        ..Config::default()
    }
}

fn long_cases() -> u32 {
    std::env::var("BLOCKWISE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_csv_reads_or_fails_cleanly(
        base in valid_csv(),
        edits in proptest::collection::vec(edit(), 0..6),
        infer_rows in prop_oneof![Just(1000usize), Just(2usize)],
    ) {
        cap_address_space();
        check(&mutate(base, &edits), infer_rows)?;
    }
}

proptest! {
    #![proptest_config(config(long_cases()))]

    #[test]
    #[ignore = "long fuzzing run: cargo test --release --test fuzz_csv -- --ignored fuzz"]
    fn fuzz_mutated_csv_long(
        base in valid_csv(),
        edits in proptest::collection::vec(edit(), 0..12),
        infer_rows in prop_oneof![Just(1000usize), Just(2usize), Just(1usize)],
    ) {
        cap_address_space();
        check(&mutate(base, &edits), infer_rows)?;
    }
}

/// Every input that ever broke the reader (or nearly did), replayed by name.
#[test]
fn regressions() {
    let cases: &[&[u8]] = &[
        // A quote closed by the very last byte.
        b"a,b\n1,\"x\n\"",
        // A quote opened on the last line and never closed.
        b"a,b\n1,x\n2,\"y",
        // A literal quote mid-field, then a quoted field with a newline.
        b"a,b\n1,5\" x\n2,\"p\nq\"\n",
        // \r alone as a line break, and \r\n split across ranges.
        b"a,b\r1,2\r\n3,4\r\n",
        // Blank lines only after the header.
        b"a\n\n\r\n\n",
        // NUL bytes and invalid UTF-8 in a field.
        b"a,b\n1,\x00\xff\n",
    ];
    for bytes in cases {
        if let Err(e) = check(bytes, 1000) {
            panic!("{:?}: {e}", String::from_utf8_lossy(bytes));
        }
    }
}
