//! `blockwise info` and `blockwise head`, and what `convert --stats` prints.

mod common;

use common::{blockwise_ok, fixture};
use serde_json::Value;

fn info(rel: &str) -> Value {
    let out = blockwise_ok(["info".as_ref(), fixture(rel).as_os_str(), "--json".as_ref()]);
    serde_json::from_slice(&out.stdout).expect("info --json prints one JSON object")
}

#[test]
fn array_info_has_the_documented_keys() {
    let v = info("zarr/v3_zstd.zarr");
    assert_eq!(v["kind"], "array");
    assert_eq!(v["format"], "zarr");
    assert_eq!(v["shape"], serde_json::json!([100, 80]));
    assert_eq!(v["dtype"], "float32");
    assert_eq!(v["chunks"], serde_json::json!([30, 25]));
    assert_eq!(v["nchunks"], 16);
    assert_eq!(v["nbytes"], 32000);
    assert_eq!(v["compression"], "zstd");

    let v = info("zarr/v2_blosc.zarr");
    assert_eq!(
        (v["compression"].as_str(), v["zarr_format"].as_u64()),
        (Some("blosc"), Some(2))
    );

    let v = info("npy_stack/axis0");
    assert_eq!(v["format"], "npy-stack");
    assert_eq!(v["chunks"], serde_json::json!([[30, 30, 30, 10], [30]]));
    assert_eq!(v["nchunks"], 4);

    let v = info("npy/big_endian_i4.npy");
    assert_eq!(
        (v["dtype"].as_str(), v["nchunks"].as_u64()),
        (Some("int32"), Some(1))
    );
}

#[test]
fn frame_info_has_the_documented_keys() {
    let v = info("csv/basic.csv");
    assert_eq!(v["kind"], "frame");
    assert_eq!(v["format"], "csv");
    assert_eq!(v["rows"], 200);
    assert_eq!(v["partitions"], 1);
    let types: Vec<(String, String)> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("id", "int64"),
        ("x", "float64"),
        ("flag", "bool"),
        ("name", "utf8"),
        ("day", "date"),
        ("ts", "timestamp[us]"),
    ];
    assert_eq!(types, expected.map(|(a, b)| (a.to_string(), b.to_string())));

    let v = info("parquet/pyarrow_types.parquet");
    assert_eq!(
        (
            v["rows"].as_u64(),
            v["partitions"].as_u64(),
            v["row_groups"].as_u64()
        ),
        (Some(1000), Some(4), Some(4))
    );
    let v = info("parquet/parts");
    assert_eq!(
        (v["rows"].as_u64(), v["files"].as_u64()),
        (Some(300), Some(3))
    );
    let v = info("ipc/table.feather");
    assert_eq!(v["format"], "ipc");
}

#[test]
fn head_shows_first_rows() {
    let out = blockwise_ok([
        "head".as_ref(),
        fixture("csv/basic.csv").as_os_str(),
        "-n".as_ref(),
        "3".as_ref(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    // A table: header, separators, three rows.
    assert_eq!(
        text.lines().filter(|l| l.starts_with('|')).count(),
        4,
        "{text}"
    );
    assert!(text.contains("| id"), "{text}");

    let out = blockwise_ok([
        "head".as_ref(),
        fixture("npy_stack/axis1").as_os_str(),
        "-n".as_ref(),
        "2".as_ref(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = common::python_eval(&format!(
        "import numpy as np; a = np.load({:?}); print(' '.join(str(x) for x in a[1, :20]))",
        fixture("npy_stack/axis1.npy")
    ));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# shape [20, 50] dtype int32");
    assert!(
        lines[2].starts_with(expected.trim()),
        "{} vs {}",
        lines[2],
        expected
    );
}

#[test]
fn stats_line_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::convert_ok(
        &fixture("csv/big_quoted.csv"),
        &dir.path().join("o.parquet"),
        &["--stats", "--blocksize", "64KiB"],
    );
    let line = String::from_utf8(out.stderr).unwrap();
    let v: Value = serde_json::from_str(line.trim()).expect("one JSON line");
    for key in [
        "wall_s",
        "peak_rss_bytes",
        "read_bytes",
        "written_bytes",
        "tasks",
        "peak_reserved_bytes",
        "spilled_bytes",
        "spill_files",
        "paused_ms",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(
        v["read_bytes"],
        std::fs::metadata(fixture("csv/big_quoted.csv"))
            .unwrap()
            .len()
            - header_len()
    );
    assert!(v["tasks"].as_u64().unwrap() > 5);
    assert_eq!(
        v["written_bytes"],
        std::fs::metadata(dir.path().join("o.parquet"))
            .unwrap()
            .len()
    );
}

/// Length of big_quoted.csv's header line (not part of any partition).
fn header_len() -> u64 {
    let text = std::fs::read_to_string(fixture("csv/big_quoted.csv")).unwrap();
    text.find('\n').unwrap() as u64 + 1
}
