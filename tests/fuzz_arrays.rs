//! Mutation fuzzing of the array readers: `.npy` headers, npy-stack `info` pickles and
//! Zarr metadata (`zarr.json`, `.zarray`), mutated byte by byte and, for the JSON,
//! field by field (huge, negative, zero and mismatched shapes and chunks, wrong data
//! types and codecs). Every mutated input is opened, described, read chunk by chunk
//! and, when small, converted under a small memory limit; each step must return `Ok`
//! or a clean error, never panic or abort.
//!
//! A short budget runs with the tests; the long one is
//! `cargo test --release --test fuzz_arrays -- --ignored fuzz`. Failures are kept by
//! proptest in `tests/fuzz_arrays.regressions` and replayed first on every run; inputs
//! that once broke a reader are also kept below as named regression cases.

mod common;

use std::path::Path;

use blockwise::cli::describe;
use blockwise::convert::{convert, ChunkSpec, ConvertOptions};
use blockwise::exec::{CancelToken, JobContext, JobOptions};
use blockwise::grid::Subset;
use blockwise::memory::Thresholds;
use blockwise::storage::array::DType;
use blockwise::storage::frame::FrameReadOptions;
use blockwise::storage::npy::header;
use blockwise::storage::{open_array, Format};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// Chunks larger than this are not read by the fuzz loop: the reader accepted them
/// (they are under its limit), and reading one is a legitimate request for memory.
const READ_CHUNK_BYTES: u64 = 16 << 20;

/// Opens `path`, describes it, reads up to 16 of its chunks, and when it is small
/// converts it to Zarr and npy under a 32 MiB limit. Any error is fine; it must be a
/// clean one (the exit code of a user error or a memory limit).
fn exercise(path: &Path, format: Format) {
    let _ = describe(path, &FrameReadOptions::default());
    let Ok(source) = open_array(path, format) else {
        return;
    };
    let meta = source.meta().clone();
    let item = meta.dtype.size() as u64;
    let chunk_bytes = blockwise::grid::checked_nbytes(&meta.grid.max_chunk_shape(), item);
    if chunk_bytes.is_some_and(|b| b <= READ_CHUNK_BYTES) {
        for index in meta.grid.chunk_indices().take(16) {
            let region = meta.grid.chunk_subset(&index);
            if let Ok(data) = source.read(&region) {
                assert_eq!(
                    data.len() as u64,
                    region.num_elements() * item,
                    "read returned the wrong size"
                );
            }
        }
        let _ = source.read(&Subset::full(&vec![0; meta.shape().len()]).clone());
    }
    if meta.nbytes() <= 1 << 20 && meta.grid.num_chunks() <= 4096 {
        let out = tempfile::tempdir().unwrap();
        for (name, chunks) in [("o.zarr", None), ("o.npy", Some(ChunkSpec::Auto))] {
            // A fresh job each time: a failed job cancels its own token.
            let ctx = small_context();
            let options = ConvertOptions {
                chunks,
                ..ConvertOptions::default()
            };
            if let Err(e) = convert(path, &out.path().join(name), &options, &ctx) {
                assert!(
                    matches!(e.exit_code(), 2 | 3),
                    "{name}: not a clean error (exit {}): {e}",
                    e.exit_code()
                );
            }
        }
    }
}

/// A one-thread job with a 32 MiB pool. The RSS thresholds are off: the test
/// process's own RSS dwarfs such a limit, and the pool's reservations are what the
/// fuzzing is about.
fn small_context() -> JobContext {
    let options = JobOptions {
        threads: 1,
        memory_limit: 32 << 20,
        thresholds: Thresholds {
            spill: f64::INFINITY,
            pause: f64::INFINITY,
            terminate: f64::INFINITY,
            ..Thresholds::default()
        },
        ..JobOptions::default()
    };
    JobContext::new(&options, CancelToken::new()).expect("job context")
}

// ---------------------------------------------------------------- npy

/// Valid `.npy` files: C and Fortran order, big-endian, a scalar, a v2 header.
fn npy_seed(kind: u8) -> Vec<u8> {
    let (dtype, shape): (DType, Vec<u64>) = match kind % 4 {
        0 => (DType::Float64, vec![7, 5]),
        1 => (DType::Int16, vec![3, 4, 2]),
        2 => (DType::Float64, vec![]),
        _ => (DType::UInt8, vec![100]),
    };
    let mut bytes = header::encode(dtype, &shape, false);
    let n: u64 = shape.iter().product();
    bytes.extend((0..n * dtype.size() as u64).map(|i| i as u8));
    if kind % 8 >= 4 {
        // A Fortran-order big-endian variant of the same header text.
        let text = String::from_utf8_lossy(&bytes[10..]).into_owned();
        let text = text
            .replacen("'fortran_order': False", "'fortran_order': True ", 1)
            .replacen("'<", "'>", 1);
        bytes.splice(10.., text.into_bytes());
    }
    bytes
}

/// Edits to the header text that keep it a dict but make the numbers lie.
const HEADER_EDITS: &[&str] = &[
    "(18446744073709551615, 2)",
    "(4294967296, 4294967296)",
    "(0,)",
    "()",
    "(-1,)",
    "(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33)",
    "(99999999999999999999999,)",
    "(1,,)",
    "[3]",
];

fn npy_case(kind: u8, flips: &[(u16, u8)], edit: Option<usize>, cut: Option<u16>) -> Vec<u8> {
    let mut bytes = npy_seed(kind);
    if let Some(e) = edit {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let (Some(a), Some(b)) = (text.find("'shape': "), text.find(", }")) {
            let replaced = format!(
                "{}'shape': {}{}",
                &text[..a],
                HEADER_EDITS[e % HEADER_EDITS.len()],
                &text[b..]
            );
            bytes = replaced.into_bytes();
        }
    }
    for &(at, value) in flips {
        // Most flips land in the header, where the sizes are.
        let at = at as usize % bytes.len().clamp(1, 160);
        if let Some(b) = bytes.get_mut(at) {
            *b ^= value;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut as usize % (bytes.len() + 1));
    }
    bytes
}

fn check_npy(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    std::fs::write(&path, bytes).unwrap();
    exercise(&path, Format::Npy);
}

/// (position, byte) pairs: bit flips or insertions into a valid input.
type Edits = Vec<(u16, u8)>;

/// The arguments of [`npy_case`]: seed kind, flips, a header edit, a cut.
type NpyCase = (u8, Edits, Option<usize>, Option<u16>);

/// The arguments of [`stack_case`]: seed, flips, insertions, a cut.
type StackCase = (u8, Edits, Edits, Option<u16>);

/// The arguments of [`check_zarr`]: v3 or v2, metadata operations, chunk flips.
type ZarrCase = (bool, Vec<(u8, u8, u8)>, Edits);

fn npy_strategy() -> impl Strategy<Value = NpyCase> {
    (
        any::<u8>(),
        prop::collection::vec((any::<u16>(), 1u8..), 0..4),
        prop::option::weighted(0.3, any::<usize>()),
        prop::option::weighted(0.2, any::<u16>()),
    )
}

// ---------------------------------------------------------------- npy stacks

/// Dask's `info` for chunks ((4, 4, 2), (6,)) of float64 along axis 0, as
/// `pickle.dumps(..., protocol=p)` writes it for p = 0, 2 and 5.
const INFO_PICKLES: [&str; 3] = [
    "286470300a566368756e6b730a70310a282849340a49340a49320a7470320a2849360a7470330a7470340a735664747970650a70350a636e756d70790a64747970650a70360a285666380a70370a4930300a4930310a7470380a5270390a2849330a563c0a7031300a4e4e4e492d310a492d310a49300a747031310a627356617869730a7031320a49300a732e",
    "80027d71002858060000006368756e6b7371014b044b044b028771024b06857103867104580500000064747970657105636e756d70790a64747970650a71065802000000663871078988877108527109284b0358010000003c710a4e4e4e4affffffff4affffffff4b0074710b62580400000061786973710c4b00752e",
    "80059563000000000000007d94288c066368756e6b73944b044b044b0287944b06859486948c056474797065948c056e756d7079948c0564747970659493948c02663894898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494628c0461786973944b00752e",
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn stack_case(seed: u8, flips: &[(u16, u8)], inserts: &[(u16, u8)], cut: Option<u16>) -> Vec<u8> {
    let mut bytes = match seed % 4 {
        3 => blockwise::storage::npy_stack::pickle::dump_info(
            &[vec![4, 4, 2], vec![6]],
            "f8",
            '<',
            0,
        ),
        s => unhex(INFO_PICKLES[s as usize]),
    };
    for &(at, value) in inserts {
        let at = at as usize % (bytes.len() + 1);
        bytes.insert(at, value);
    }
    for &(at, value) in flips {
        let at = at as usize % bytes.len().max(1);
        if let Some(b) = bytes.get_mut(at) {
            *b ^= value;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut as usize % (bytes.len() + 1));
    }
    bytes
}

fn check_stack(info: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("s");
    std::fs::create_dir(&stack).unwrap();
    for (i, rows) in [4u64, 4, 2].iter().enumerate() {
        let mut part = header::encode(DType::Float64, &[*rows, 6], false);
        part.extend(std::iter::repeat_n(0x3f, (rows * 6 * 8) as usize));
        std::fs::write(stack.join(format!("{i}.npy")), part).unwrap();
    }
    std::fs::write(stack.join("info"), info).unwrap();
    // The pickle decoder alone first: it is where the bytes are interpreted.
    let _ = blockwise::storage::npy_stack::pickle::load(info);
    exercise(&stack, Format::NpyStack);
}

fn stack_strategy() -> impl Strategy<Value = StackCase> {
    (
        any::<u8>(),
        prop::collection::vec((any::<u16>(), 1u8..), 0..4),
        prop::collection::vec((any::<u16>(), any::<u8>()), 0..3),
        prop::option::weighted(0.2, any::<u16>()),
    )
}

// ---------------------------------------------------------------- Zarr

const ZARRAY: &str = r#"{"shape": [1000], "chunks": [128], "dtype": "<f8", "fill_value": 0.0,
 "order": "C", "filters": null, "dimension_separator": ".",
 "compressor": {"id": "zstd", "level": 3}, "zarr_format": 2}"#;

/// A small v3 array written by blockwise (zarr-python writes the same layout),
/// with some chunks present; returns its directory.
fn zarr_v3(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("a.zarr");
    let sink = blockwise::storage::zarr::ZarrSink::create(
        &path,
        DType::Int32,
        &[20, 30],
        &[8, 16],
        blockwise::storage::zarr::ZarrCompression::Zstd(3),
    )
    .expect("create zarr");
    use blockwise::storage::array::ArraySink;
    for index in [[0u64, 0], [1, 1], [2, 1]] {
        let region = sink.grid().chunk_subset(&index);
        let data = vec![7u8; (region.num_elements() * 4) as usize];
        sink.write_chunk(&index, &data).expect("write chunk");
    }
    Box::new(sink).finish(None).expect("finish");
    path
}

/// A v2 array: `.zarray` and two chunk files written as zarr-python would name them.
fn zarr_v2(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("b.zarr");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join(".zarray"), ZARRAY).unwrap();
    // Chunk 0 is garbage (not zstd); chunk 1 is missing and reads as the fill value.
    std::fs::write(path.join("0"), b"not zstd at all").unwrap();
    path
}

/// Values a mutated size may take.
fn size_value(pick: u8) -> serde_json::Value {
    use serde_json::json;
    match pick % 12 {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(1u64 << 62),
        4 => json!(1u64 << 32),
        5 => json!(1),
        6 => json!(3),
        7 => json!(1.5),
        8 => json!("7"),
        9 => json!(null),
        10 => json!(1u64 << 40),
        _ => json!(i64::MIN),
    }
}

/// One JSON-aware mutation of Zarr metadata (v2 or v3).
fn mutate_json(meta: &mut serde_json::Value, op: u8, a: u8, b: u8) {
    use serde_json::json;
    let Some(obj) = meta.as_object_mut() else {
        return;
    };
    let v3 = obj.contains_key("node_type");
    let sizes = |n: u8, seed: u8| -> serde_json::Value {
        json!((0..n % 5)
            .map(|k| size_value(seed.wrapping_add(k * 7)))
            .collect::<Vec<_>>())
    };
    match op % 10 {
        0 => {
            obj.insert("shape".into(), sizes(a, b));
        }
        1 => {
            let chunks = sizes(a, b);
            if v3 {
                obj.insert(
                    "chunk_grid".into(),
                    json!({"name": "regular", "configuration": {"chunk_shape": chunks}}),
                );
            } else {
                obj.insert("chunks".into(), chunks);
            }
        }
        2 => {
            // One entry of the shape or the chunks set to a hostile value.
            let key = if a.is_multiple_of(2) {
                "shape"
            } else {
                "chunks"
            };
            if let Some(serde_json::Value::Array(items)) = obj.get_mut(key) {
                if !items.is_empty() {
                    let i = b as usize % items.len();
                    items[i] = size_value(a / 2);
                }
            }
            if let Some(serde_json::Value::Array(items)) = obj
                .get_mut("chunk_grid")
                .and_then(|g| g.pointer_mut("/configuration/chunk_shape"))
            {
                if !items.is_empty() {
                    let i = b as usize % items.len();
                    items[i] = size_value(a / 3);
                }
            }
        }
        3 => {
            let types = [
                "float64",
                "<U5",
                "|S3",
                "string",
                "int4",
                "bogus",
                "<f8",
                "|b1",
                "complex128",
                "float16",
                "r16",
                "bool",
            ];
            let t = types[a as usize % types.len()];
            obj.insert(if v3 { "data_type" } else { "dtype" }.into(), json!(t));
        }
        4 => {
            let codecs = [
                json!([{"name": "bytes", "configuration": {"endian": "little"}}]),
                json!([{"name": "zstd", "configuration": {"level": 1000000, "checksum": false}}]),
                json!([]),
                json!([{"name": "bytes"}, {"name": "gzip", "configuration": {"level": -5}}]),
                json!([{"name": "sharding_indexed", "configuration": {"chunk_shape": [1u64 << 40, 1],
                    "codecs": [{"name": "bytes"}], "index_codecs": [{"name": "bytes"}]}}]),
                json!([{"name": "transpose", "configuration": {"order": [5, 0]}}, {"name": "bytes"}]),
                json!({"id": "blosc", "cname": "nope", "clevel": 99, "shuffle": 7}),
                json!(null),
            ];
            let c = codecs[a as usize % codecs.len()].clone();
            obj.insert(if v3 { "codecs" } else { "compressor" }.into(), c);
        }
        5 => {
            let fills = [
                json!(null),
                json!("NaN"),
                json!([1, 2]),
                json!(1e308),
                json!("x"),
            ];
            obj.insert("fill_value".into(), fills[a as usize % fills.len()].clone());
        }
        6 => {
            let keys: Vec<String> = obj.keys().cloned().collect();
            if !keys.is_empty() {
                obj.remove(&keys[a as usize % keys.len()]);
            }
        }
        7 => {
            obj.insert(
                "node_type".into(),
                json!(["group", "array", "x"][a as usize % 3]),
            );
        }
        8 => {
            obj.insert("zarr_format".into(), size_value(a));
        }
        _ => {
            // Rank mismatch: drop or add an axis to the shape only.
            if let Some(serde_json::Value::Array(items)) = obj.get_mut("shape") {
                if a.is_multiple_of(2) {
                    items.pop();
                } else {
                    items.push(size_value(b));
                }
            }
        }
    }
}

fn check_zarr(v3: bool, ops: &[(u8, u8, u8)], flips: &[(u16, u8)]) {
    let dir = tempfile::tempdir().unwrap();
    let (path, meta_name) = if v3 {
        (zarr_v3(dir.path()), "zarr.json")
    } else {
        (zarr_v2(dir.path()), ".zarray")
    };
    let meta_path = path.join(meta_name);
    let text = std::fs::read(&meta_path).unwrap();
    let mut meta: serde_json::Value = serde_json::from_slice(&text).unwrap();
    for &(op, a, b) in ops {
        mutate_json(&mut meta, op, a, b);
    }
    let mut bytes = serde_json::to_vec(&meta).unwrap();
    for &(at, value) in flips {
        let at = at as usize % bytes.len().max(1);
        if let Some(x) = bytes.get_mut(at) {
            *x ^= value;
        }
    }
    std::fs::write(&meta_path, &bytes).unwrap();
    exercise(&path, Format::Zarr);
}

fn zarr_strategy() -> impl Strategy<Value = ZarrCase> {
    (
        any::<bool>(),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..4),
        prop::collection::vec((any::<u16>(), 1u8..), 0..2),
    )
}

// ---------------------------------------------------------------- the runs

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn fuzz_npy_headers((kind, flips, edit, cut) in npy_strategy()) {
        common::cap_address_space(8 << 30);
        check_npy(&npy_case(kind, &flips, edit, cut));
    }

    #[test]
    fn fuzz_npy_stack_info((seed, flips, inserts, cut) in stack_strategy()) {
        common::cap_address_space(8 << 30);
        check_stack(&stack_case(seed, &flips, &inserts, cut));
    }

    #[test]
    fn fuzz_zarr_metadata((v3, ops, flips) in zarr_strategy()) {
        common::cap_address_space(8 << 30);
        check_zarr(v3, &ops, &flips);
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    #[ignore = "long fuzz budget: cargo test --release --test fuzz_arrays -- --ignored fuzz"]
    fn fuzz_npy_headers_long((kind, flips, edit, cut) in npy_strategy()) {
        common::cap_address_space(8 << 30);
        check_npy(&npy_case(kind, &flips, edit, cut));
    }

    #[test]
    #[ignore = "long fuzz budget: cargo test --release --test fuzz_arrays -- --ignored fuzz"]
    fn fuzz_npy_stack_info_long((seed, flips, inserts, cut) in stack_strategy()) {
        common::cap_address_space(8 << 30);
        check_stack(&stack_case(seed, &flips, &inserts, cut));
    }

    #[test]
    #[ignore = "long fuzz budget: cargo test --release --test fuzz_arrays -- --ignored fuzz"]
    fn fuzz_zarr_metadata_long((v3, ops, flips) in zarr_strategy()) {
        common::cap_address_space(8 << 30);
        check_zarr(v3, &ops, &flips);
    }
}

// ---------------------------------------------------------------- regressions

/// Inputs that once broke a reader (found by this fuzzer or by hand), kept forever.
#[test]
fn regression_inputs_stay_clean_errors() {
    common::cap_address_space(8 << 30);
    // npy: a shape whose byte size overflows 64 bits (was a wrapped product).
    check_npy(&npy_case(0, &[], Some(1), None));
    // npy: a shape of u64::MAX rows over a few bytes (was an abort in read).
    check_npy(&npy_case(0, &[], Some(0), None));
    // npy: a scalar header with its data cut off.
    check_npy(&npy_case(2, &[], None, Some(130)));
    // info: a memo GET/APPEND loop that doubles a list 200 times (exponential memory).
    let mut bomb = vec![0x80, 4, b']'];
    for _ in 0..200 {
        bomb.extend_from_slice(&[b'q', 0, b'h', 0, b'a']);
    }
    bomb.push(b'.');
    check_stack(&bomb);
    // info: 100k nested one-tuples (deep recursion in drop).
    let mut deep = vec![0x80, 4, b'N'];
    deep.extend(std::iter::repeat_n(0x85u8, 100_000));
    deep.push(b'.');
    check_stack(&deep);
    // info: a list instead of a dict, and an axis of -1 (was `Some(Int(-1))`).
    check_stack(b"(lp0\nI1\naI2\na.");
    check_stack(&stack_case(0, &[], &[], None));
    // Zarr: a 2^40-element chunk (was an abort decoding the fill value).
    check_zarr(true, &[(2, 1, 0), (2, 1, 1)], &[]);
    // Zarr: 2^62 x 2^62 shape (overflowing byte size).
    check_zarr(true, &[(0, 2, 3)], &[]);
    // Zarr: shape and chunk ranks that differ.
    check_zarr(true, &[(9, 1, 5)], &[]);
    check_zarr(false, &[(9, 0, 0)], &[]);
}
