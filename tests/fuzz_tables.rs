//! Mutation fuzzing of the table readers (Parquet footers, Arrow IPC files): every
//! mutated file must open, describe and read to `Ok` or a clean error (exit code 2),
//! never a panic, an abort or a huge allocation.
//!
//! A short budget runs with the tests; the long one is
//! `cargo test --release --test fuzz_tables -- --ignored fuzz`. Failures are kept by
//! proptest in `tests/fuzz_tables.regressions` and replayed first on every run; an
//! input that once broke a reader is also kept below as a named regression case.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, ListArray, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use arrow::record_batch::RecordBatch;
use blockwise::cli::describe;
use blockwise::storage::frame::FrameReadOptions;
use blockwise::storage::{open_frame, Format};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn batch(rows: usize, seed: i64) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|i| i * seed),
    ));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|i| format!("name-{i}")),
    ));
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..rows).map(|i| Some(vec![Some(i as i32), None])),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("tags", lists.data_type().clone(), true),
    ]));
    RecordBatch::try_new(schema, vec![ids, names, lists]).expect("valid batch")
}

/// A valid Parquet file: two row groups of three columns.
fn parquet_bytes(compressed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(50))
        .set_compression(if compressed {
            parquet::basic::Compression::ZSTD(Default::default())
        } else {
            parquet::basic::Compression::UNCOMPRESSED
        })
        .build();
    let b = batch(100, 3);
    let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).expect("writer");
    w.write(&b).expect("write");
    w.close().expect("close");
    out
}

/// A valid Arrow IPC file (or stream) of two batches.
fn ipc_bytes(compression: Option<CompressionType>, stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let options = IpcWriteOptions::default()
        .try_with_compression(compression)
        .expect("options");
    let (a, b) = (batch(40, 1), batch(25, 7));
    if stream {
        let mut w = StreamWriter::try_new_with_options(&mut out, &a.schema(), options).expect("w");
        w.write(&a).expect("write");
        w.write(&b).expect("write");
        w.finish().expect("finish");
    } else {
        let mut w = FileWriter::try_new_with_options(&mut out, &a.schema(), options).expect("w");
        w.write(&a).expect("write");
        w.write(&b).expect("write");
        w.finish().expect("finish");
    }
    out
}

/// Opens, describes and reads every batch of `bytes` as `format`; fails the test
/// on a panic, and on an error that is not the user's (exit code other than 2).
fn exercise(bytes: &[u8], format: Format, ext: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("input.{ext}"));
    std::fs::write(&path, bytes).expect("write input");
    // An abort cannot be caught or shrunk: BLOCKWISE_FUZZ_LAST=FILE keeps each input
    // there before it runs, so the one that aborted is left behind.
    if let Some(last) = std::env::var_os("BLOCKWISE_FUZZ_LAST") {
        std::fs::write(Path::new(&last).with_extension(ext), bytes).expect("keep input");
    }
    let outcome = std::panic::catch_unwind(|| read_all(&path, format));
    match outcome {
        Err(_) => Err(TestCaseError::fail("a reader panicked")),
        Ok(Err(e)) if e.exit_code() != 2 => Err(TestCaseError::fail(format!(
            "error with exit code {}: {e}",
            e.exit_code()
        ))),
        Ok(_) => Ok(()),
    }
}

fn read_all(path: &Path, format: Format) -> blockwise::error::Result<u64> {
    let read = FrameReadOptions::default();
    describe(path, &read)?;
    let source = open_frame(path, format, &read)?;
    let mut rows = 0;
    for p in 0..source.num_partitions() {
        for batch in source.read_partition(p)? {
            rows += batch?.num_rows() as u64;
        }
    }
    Ok(rows)
}

/// Applies `edits` (position, byte) to the last `region` bytes of `bytes` (the
/// whole file when `region` is 0).
fn mutate(mut bytes: Vec<u8>, region: usize, edits: &[(usize, u8)]) -> Vec<u8> {
    let start = if region == 0 {
        0
    } else {
        bytes.len().saturating_sub(region)
    };
    let span = bytes.len() - start;
    for &(at, value) in edits {
        bytes[start + at % span] = value;
    }
    bytes
}

/// The bytes of a Parquet file's footer: metadata, its length and the magic.
fn footer_region(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let len = u32::from_le_bytes([bytes[n - 8], bytes[n - 7], bytes[n - 6], bytes[n - 5]]);
    len as usize + 8
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// Edits: a few bytes set to values that are interesting as lengths and offsets.
fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec(
        (
            any::<usize>(),
            prop_oneof![any::<u8>(), Just(0xff), Just(0x7f), Just(0), Just(0x80)],
        ),
        1..8,
    )
}

fn parquet_case(
    compressed: bool,
    edits: &[(usize, u8)],
    trailer: Option<u32>,
) -> Result<(), TestCaseError> {
    let valid = parquet_bytes(compressed);
    let region = footer_region(&valid);
    let mut bytes = mutate(valid, region, edits);
    if let Some(len) = trailer {
        let n = bytes.len();
        bytes[n - 8..n - 4].copy_from_slice(&len.to_le_bytes());
    }
    exercise(&bytes, Format::Parquet, "parquet")
}

fn ipc_case(
    codec: u8,
    stream: bool,
    edits: &[(usize, u8)],
    tail: bool,
) -> Result<(), TestCaseError> {
    let compression = match codec % 3 {
        0 => None,
        1 => Some(CompressionType::LZ4_FRAME),
        _ => Some(CompressionType::ZSTD),
    };
    let valid = ipc_bytes(compression, stream);
    // Half the cases aim at the footer and the last batch, where the lengths are.
    let region = if tail { valid.len() / 3 } else { 0 };
    let bytes = mutate(valid, region, edits);
    exercise(&bytes, Format::Ipc, if stream { "arrows" } else { "arrow" })
}

fn parquet_strategy() -> impl Strategy<Value = (bool, Vec<(usize, u8)>, Option<u32>)> {
    (
        any::<bool>(),
        edits(),
        prop::option::weighted(0.2, prop_oneof![any::<u32>(), 0u32..100_000]),
    )
}

fn ipc_strategy() -> impl Strategy<Value = (u8, bool, Vec<(usize, u8)>, bool)> {
    (
        any::<u8>(),
        prop::bool::weighted(0.25),
        edits(),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn parquet_footer_mutations_are_clean_errors((compressed, edits, trailer) in parquet_strategy()) {
        common::cap_address_space(6 << 30);
        parquet_case(compressed, &edits, trailer)?;
    }

    #[test]
    fn ipc_mutations_are_clean_errors((codec, stream, edits, tail) in ipc_strategy()) {
        common::cap_address_space(6 << 30);
        ipc_case(codec, stream, &edits, tail)?;
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    #[ignore = "long fuzz budget: cargo test --release --test fuzz_tables -- --ignored fuzz"]
    fn fuzz_parquet_footers_long((compressed, edits, trailer) in parquet_strategy()) {
        common::cap_address_space(6 << 30);
        parquet_case(compressed, &edits, trailer)?;
    }

    #[test]
    #[ignore = "long fuzz budget: cargo test --release --test fuzz_tables -- --ignored fuzz"]
    fn fuzz_ipc_files_long((codec, stream, edits, tail) in ipc_strategy()) {
        common::cap_address_space(6 << 30);
        ipc_case(codec, stream, &edits, tail)?;
    }
}

#[test]
fn valid_inputs_read_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bytes, format, ext, rows) in [
        (parquet_bytes(true), Format::Parquet, "parquet", 100),
        (ipc_bytes(None, false), Format::Ipc, "arrow", 65),
        (
            ipc_bytes(Some(CompressionType::ZSTD), false),
            Format::Ipc,
            "arrow",
            65,
        ),
        (
            ipc_bytes(Some(CompressionType::LZ4_FRAME), true),
            Format::Ipc,
            "arrows",
            65,
        ),
    ] {
        let path = dir.path().join(format!("ok.{ext}"));
        std::fs::write(&path, bytes).expect("write");
        assert_eq!(read_all(&path, format).expect("valid file reads"), rows);
    }
}

/// Regression for two inputs the fuzzer found: a compressed IPC stream whose buffer
/// claimed a decompressed size of 35 PB (the reader allocated it and aborted), and an
/// lz4 frame the decompressor rejected as an I/O error (exit 1, not 2). Every
/// 8-byte-aligned word of each file is set in turn to a huge length and to -1.
#[test]
fn regression_huge_lengths_at_every_aligned_offset() {
    let inputs = [
        (
            ipc_bytes(Some(CompressionType::LZ4_FRAME), true),
            Format::Ipc,
            "arrows",
        ),
        (
            ipc_bytes(Some(CompressionType::ZSTD), false),
            Format::Ipc,
            "arrow",
        ),
        (ipc_bytes(None, false), Format::Ipc, "arrow"),
        (parquet_bytes(true), Format::Parquet, "parquet"),
    ];
    for (valid, format, ext) in inputs {
        for at in (0..valid.len().saturating_sub(8)).step_by(8) {
            for word in [0x007f_ffff_ffff_fff0u64, u64::MAX] {
                let mut bytes = valid.clone();
                bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
                if let Err(e) = exercise(&bytes, format, ext) {
                    panic!("{ext}, word {word:#x} at {at}: {e}");
                }
            }
        }
    }
}
