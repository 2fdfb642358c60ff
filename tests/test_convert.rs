//! `blockwise convert`: round trips through every pair of formats, checked by the
//! reference libraries (pyarrow, numpy, zarr-python, dask) reading what we wrote.

mod common;

use common::{assert_same, blockwise_ok, fixture};

/// Table fixtures and what each should read as (a file the reference library wrote).
const FRAMES: &[(&str, &str)] = &[
    ("csv/basic.csv", "csv/basic.parquet"),
    ("csv/quoted.csv", "csv/quoted.parquet"),
    (
        "parquet/pyarrow_types.parquet",
        "parquet/pyarrow_types.parquet",
    ),
    ("parquet/duckdb.parquet", "parquet/duckdb.parquet"),
    ("parquet/polars.parquet", "parquet/polars.parquet"),
    ("parquet/parts", "parquet/parts"),
    ("ipc/table.arrow", "ipc/table.arrow"),
    ("ipc/table.feather", "ipc/table.feather"),
];

#[test]
fn every_table_converts_to_every_table_format() {
    let dir = tempfile::tempdir().unwrap();
    for (src, expected) in FRAMES {
        for ext in ["parquet", "arrow", "csv"] {
            let name = src.replace(['/', '.'], "_");
            let out = dir.path().join(format!("{name}.{ext}"));
            common::convert_ok(&fixture(src), &out, &["--no-progress"]);
            // CSV keeps no types: compare values, not types, after a trip through it.
            let extra: &[&str] = if ext == "csv" {
                &["--ignore-types"]
            } else {
                &[]
            };
            assert_same("frame", &fixture(expected), &out, extra);
        }
    }
}

#[test]
fn csv_splits_into_many_partitions_across_quoted_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.parquet");
    for blocksize in ["4KiB", "777", "64MiB"] {
        blockwise_ok([
            "convert".as_ref(),
            fixture("csv/big_quoted.csv").as_os_str(),
            out.as_os_str(),
            "--blocksize".as_ref(),
            blocksize.as_ref(),
            "--overwrite".as_ref(),
        ]);
        assert_same("frame", &fixture("csv/big_quoted.parquet"), &out, &[]);
    }
}

#[test]
fn csv_delimiter_projection_and_forced_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.parquet");
    blockwise_ok([
        "convert".as_ref(),
        fixture("csv/semicolon.csv").as_os_str(),
        out.as_os_str(),
        "--delimiter".as_ref(),
        ";".as_ref(),
    ]);
    assert_same("frame", &fixture("csv/semicolon.parquet"), &out, &[]);

    let out = dir.path().join("p.parquet");
    blockwise_ok([
        "convert".as_ref(),
        fixture("csv/basic.csv").as_os_str(),
        out.as_os_str(),
        "--columns".as_ref(),
        "x,id".as_ref(),
        "--dtype".as_ref(),
        "id=float64".as_ref(),
    ]);
    let schema = common::python_eval(&format!(
        "import pyarrow.parquet as pq; t = pq.read_table({:?}); print(t.schema.names, [str(x) for x in t.schema.types])",
        out
    ));
    assert_eq!(schema.trim(), "['x', 'id'] ['double', 'double']");
    assert_same(
        "frame",
        &fixture("csv/basic.parquet"),
        &out,
        &["--columns", "x,id", "--ignore-types"],
    );
}

#[test]
fn parquet_row_groups_and_compression_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rg.parquet");
    blockwise_ok([
        "convert".as_ref(),
        fixture("parquet/pyarrow_types.parquet").as_os_str(),
        out.as_os_str(),
        "--row-group-size".as_ref(),
        "128".as_ref(),
        "--compression".as_ref(),
        "zstd:7".as_ref(),
    ]);
    // Row groups hold exactly 128 rows (but the last) whatever the input's row
    // groups hold (here 300, 300, 300 and 100 rows).
    let meta = common::python_eval(&format!(
        "import pyarrow.parquet as pq; m = pq.ParquetFile({:?}).metadata; \
         print([m.row_group(i).num_rows for i in range(m.num_row_groups)], m.row_group(0).column(0).compression)",
        out
    ));
    assert_eq!(
        meta.trim(),
        format!("{:?} ZSTD", [vec![128; 7], vec![104]].concat())
    );
    assert_same(
        "frame",
        &fixture("parquet/pyarrow_types.parquet"),
        &out,
        &[],
    );
}

const NPY: &[&str] = &[
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "big_endian_i4",
    "big_endian_f8",
    "fortran_f8",
    "c3d_i2",
    "vec_f8",
];

#[test]
fn every_npy_converts_to_every_array_format() {
    let dir = tempfile::tempdir().unwrap();
    for name in NPY {
        let src = fixture(&format!("npy/{name}.npy"));
        for (ext, extra) in [
            ("zarr", vec!["--chunks", "auto"]),
            ("npy", vec![]),
            ("stack", vec!["--to", "npy-stack"]),
        ] {
            let out = dir.path().join(format!("{name}.{ext}"));
            let mut args = vec![
                "convert".into(),
                src.clone().into_os_string(),
                out.clone().into_os_string(),
            ];
            args.extend(extra.iter().map(Into::into));
            blockwise_ok(args);
            assert_same("array", &src, &out, &[]);
        }
    }
}

#[test]
fn zarr_and_npy_stacks_convert_to_every_array_format() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        ("zarr/v3_zstd.zarr", "zarr/v3_zstd.npy"),
        ("zarr/v3_missing.zarr", "zarr/v3_missing.npy"),
        ("zarr/v2_blosc.zarr", "zarr/v2_blosc.npy"),
        ("zarr/v2_zstd.zarr", "zarr/v2_zstd.npy"),
        ("npy_stack/axis0", "npy_stack/axis0.npy"),
        ("npy_stack/axis1", "npy_stack/axis1.npy"),
    ];
    for (src, expected) in sources {
        for (ext, extra) in [
            ("zarr", vec![]),
            ("rechunked.zarr", vec!["--chunks", "7,11"]),
            ("raw.zarr", vec!["--compression", "none"]),
            ("npy", vec![]),
            ("stack", vec!["--to", "npy-stack", "--chunks", "13,5"]),
        ] {
            let out = dir.path().join(format!("{}.{ext}", src.replace('/', "_")));
            let mut args = vec![
                "convert".into(),
                fixture(src).into_os_string(),
                out.clone().into_os_string(),
            ];
            if src.contains("v2_zstd") && extra.contains(&"7,11") {
                // A 1-D array takes a 1-D chunk shape.
                args.extend(["--chunks", "77"].map(Into::into));
            } else if src.contains("v2_zstd") && extra.contains(&"13,5") {
                args.extend(["--to", "npy-stack", "--chunks", "130"].map(Into::into));
            } else {
                args.extend(extra.iter().map(Into::into));
            }
            blockwise_ok(args);
            assert_same("array", &fixture(expected), &out, &[]);
        }
    }
}

#[test]
fn written_zarr_is_v3_with_zstd_as_zarr_python_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.zarr");
    blockwise_ok([
        "convert".as_ref(),
        fixture("npy/float32.npy").as_os_str(),
        out.as_os_str(),
        "--chunks".as_ref(),
        "10,10".as_ref(),
    ]);
    let meta = common::python_eval(&format!(
        "import zarr; a = zarr.open_array({:?}, mode='r'); \
         print(a.metadata.zarr_format, a.chunks, [type(c).__name__ for c in a.compressors])",
        out
    ));
    assert_eq!(meta.trim(), "3 (10, 10) ['ZstdCodec']");
}

#[test]
fn arrays_and_tables_convert_into_each_other() {
    let dir = tempfile::tempdir().unwrap();
    for (name, table_ext, array_ext) in [
        ("float64", "parquet", "zarr"),
        ("int32", "csv", "npy"),
        ("uint16", "arrow", "zarr"),
        ("vec_f8", "parquet", "npy"),
        ("bool", "parquet", "zarr"),
    ] {
        let src = fixture(&format!("npy/{name}.npy"));
        let table = dir.path().join(format!("{name}.{table_ext}"));
        let back = dir.path().join(format!("{name}.back.{array_ext}"));
        blockwise_ok(["convert".as_ref(), src.as_os_str(), table.as_os_str()]);
        let extra: &[&str] = if table_ext == "csv" {
            &["--ignore-dtype"]
        } else {
            &[]
        };
        assert_same("frame-array", &table, &src, &[]);
        let mut args = vec![
            "convert".into(),
            table.clone().into_os_string(),
            back.clone().into_os_string(),
        ];
        args.extend(["--chunks", if name == "vec_f8" { "64,1" } else { "8,5" }].map(Into::into));
        blockwise_ok(args);
        if name == "vec_f8" {
            // A 1-D array comes back as one column: shape (n, 1).
            let n = common::python_eval(&format!(
                "import numpy as np; print(np.load({:?}).shape)",
                back
            ));
            assert_eq!(n.trim(), "(1000, 1)");
        } else {
            assert_same("array", &src, &back, extra);
        }
    }
}

#[test]
fn table_columns_with_mixed_types_become_one_float64_array() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.zarr");
    blockwise_ok([
        "convert".as_ref(),
        fixture("parquet/pyarrow_types.parquet").as_os_str(),
        out.as_os_str(),
        "--columns".as_ref(),
        "f64,f32".as_ref(),
    ]);
    assert_same(
        "frame-array",
        &fixture("parquet/pyarrow_types.parquet"),
        &out,
        &["--columns", "f64,f32"],
    );
    let dtype = common::python_eval(&format!(
        "import zarr; print(zarr.open_array({:?}, mode='r').dtype)",
        out
    ));
    assert_eq!(dtype.trim(), "float64");
}

#[test]
fn conversion_under_a_small_memory_limit_stays_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.parquet");
    let limit: u64 = 4 << 20;
    let run = common::convert_ok(
        &fixture("csv/big_quoted.csv"),
        &out,
        &[
            &[
                "--memory-limit",
                "4MiB",
                "--blocksize",
                "64KiB",
                "--row-group-size",
                "100000",
                "--stats",
            ][..],
            &common::RSS_THRESHOLDS_OFF,
        ]
        .concat(),
    );
    assert_same("frame", &fixture("csv/big_quoted.parquet"), &out, &[]);
    let stats: serde_json::Value = serde_json::from_slice(&run.stderr).unwrap();
    let peak = stats["peak_reserved_bytes"].as_u64().unwrap();
    assert!(
        peak > 0 && peak <= limit,
        "peak reserved {peak} vs limit {limit}"
    );
}

#[test]
fn parquet_row_group_selection_reads_only_those_groups() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sel.arrow");
    common::convert_ok(
        &fixture("parquet/pyarrow_types.parquet"),
        &out,
        &["--row-groups", "1,3", "--columns", "i64,str"],
    );
    let expected = dir.path().join("expected.parquet");
    common::python_eval(&format!(
        "import pyarrow as pa, pyarrow.parquet as pq; f = pq.ParquetFile({:?}); \
         pq.write_table(pa.concat_tables([f.read_row_group(1, columns=['i64', 'str']), \
         f.read_row_group(3, columns=['i64', 'str'])]), {:?})",
        fixture("parquet/pyarrow_types.parquet"),
        expected
    ));
    assert_same("frame", &expected, &out, &[]);
}

#[test]
fn rechunk_tall_skinny_to_short_fat_in_stages_under_a_tenth_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    common::python_eval(&format!(
        "import numpy as np; np.save({:?}, np.random.default_rng(1).standard_normal((400, 400)))",
        npy
    ));
    let tall = dir.path().join("tall.zarr");
    common::convert_ok(&npy, &tall, &["--chunks", "400,5"]);
    // 1.28 MB of data, a 128 KB limit: no task may hold a whole source column band
    // and a whole target row band at once, so it must go through an intermediate.
    let wide = dir.path().join("wide.zarr");
    let run = common::convert_ok(
        &tall,
        &wide,
        &[
            &[
                "--chunks",
                "5,400",
                "--memory-limit",
                "128000",
                "--threads",
                "1",
                "--stats",
            ][..],
            &common::RSS_THRESHOLDS_OFF,
        ]
        .concat(),
    );
    assert_same("array", &npy, &wide, &[]);
    let stats: serde_json::Value = serde_json::from_slice(&run.stderr).unwrap();
    assert!(
        stats["spilled_bytes"].as_u64().unwrap() >= 400 * 400 * 8,
        "{stats}"
    );
    assert!(
        stats["peak_reserved_bytes"].as_u64().unwrap() <= 128_000,
        "{stats}"
    );
    let chunks = common::python_eval(&format!(
        "import zarr; print(zarr.open_array({:?}, mode='r').chunks)",
        wide
    ));
    assert_eq!(chunks.trim(), "(5, 400)");
    // Nothing is left in the spill directory's parent but what the test made.
    assert_eq!(
        common::entries(dir.path()),
        vec!["a.npy", "tall.zarr", "wide.zarr"]
    );
}

#[test]
fn sort_under_a_tenth_of_the_data_spills_and_matches_a_stable_sort() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    let expected = dir.path().join("expected.parquet");
    common::python_eval(&format!(
        "import numpy as np, pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq\n\
         rng = np.random.default_rng(3); n = 50_000\n\
         x = rng.integers(0, 500, n).astype(float) / 4; x[rng.random(n) < 0.05] = np.nan\n\
         t = pa.table({{'id': np.arange(n), 'x': pa.array(x, from_pandas=True), \
                        'name': [f'row{{i % 977}}' for i in range(n)]}})\n\
         pc.write_csv(t, {:?})\n\
         t = pc.read_csv({:?})\n\
         idx = t.sort_by([('x', 'descending'), ('name', 'ascending')], null_placement='at_end')\n\
         pq.write_table(idx, {:?})",
        csv, csv, expected
    ));
    let limit = std::fs::metadata(&csv).unwrap().len() / 10;
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("sorted{threads}.parquet"));
        let run = common::convert_ok(
            &csv,
            &out,
            &[
                &[
                    "--sort-by",
                    "x:desc,name",
                    "--memory-limit",
                    &limit.to_string(),
                    "--threads",
                    threads,
                    "--stats",
                ][..],
                &common::RSS_THRESHOLDS_OFF,
            ]
            .concat(),
        );
        assert_same("frame", &expected, &out, &[]);
        let stats: serde_json::Value = serde_json::from_slice(&run.stderr).unwrap();
        assert!(stats["spilled_bytes"].as_u64().unwrap() > 0, "{stats}");
        assert!(stats["spill_files"].as_u64().unwrap() > 1, "{stats}");
        assert!(
            stats["peak_reserved_bytes"].as_u64().unwrap() <= limit,
            "{stats} vs {limit}"
        );
    }
    // Without a budget: the same output, from one in-memory run.
    let out = dir.path().join("unbudgeted.parquet");
    common::convert_ok(
        &csv,
        &out,
        &["--sort-by", "x:desc,name", "--blocksize", "1GiB"],
    );
    assert_same("frame", &expected, &out, &[]);

    // One fixed-width key: the merge is cut into key ranges merged on both threads.
    let expected_x = dir.path().join("expected_x.parquet");
    common::python_eval(&format!(
        "import pyarrow.csv as pc, pyarrow.parquet as pq\n\
         t = pc.read_csv({:?})\n\
         pq.write_table(t.sort_by([('x', 'descending')], null_placement='at_end'), {:?})",
        csv, expected_x
    ));
    // 4 MB: the runs (of 64 or 128 KiB partitions) fit in memory and are merged in
    // key ranges on every thread, parts of the output written while later ones
    // merge.
    for blocksize in ["64KiB", "128KiB"] {
        for threads in ["1", "2"] {
            let out = dir
                .path()
                .join(format!("by_x_{blocksize}_{threads}.parquet"));
            let args = [
                &[
                    "--sort-by",
                    "x:desc",
                    "--memory-limit",
                    "4MB",
                    "--blocksize",
                    blocksize,
                    "--threads",
                    threads,
                    "--stats",
                ][..],
                &common::RSS_THRESHOLDS_OFF,
            ]
            .concat();
            let run = common::convert_ok(&csv, &out, &args);
            assert_same("frame", &expected_x, &out, &[]);
            let stats: serde_json::Value = serde_json::from_slice(&run.stderr).unwrap();
            assert!(
                stats["peak_reserved_bytes"].as_u64().unwrap() <= 4_000_000,
                "{stats}"
            );
        }
    }
}

#[test]
fn an_npy_many_times_the_memory_limit_is_copied_in_bands_of_rows() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.npy");
    common::python_eval(&format!(
        "import numpy as np\n\
         np.save({:?}, np.random.default_rng(3).standard_normal((1000, 1000)))\n\
         np.save({:?}, np.arange(1_000_000, dtype=np.int64))\n\
         np.save({:?}, np.random.default_rng(4).standard_normal((4, 500_000)))\n\
         print('ok')",
        src.display().to_string(),
        dir.path().join("b.npy").display().to_string(),
        dir.path().join("c.npy").display().to_string()
    ));
    // 8 to 16 MB each under a 2 MiB limit: the output takes any region, so a task
    // copies a band of rows that fits, or part of a row too large.
    for name in ["a.npy", "b.npy", "c.npy"] {
        let src = dir.path().join(name);
        let out = dir.path().join(format!("copy-{name}"));
        let run = common::convert_ok(
            &src,
            &out,
            &[
                &["--memory-limit", "2MiB", "--stats"][..],
                &common::RSS_THRESHOLDS_OFF,
            ]
            .concat(),
        );
        assert_same("array", &src, &out, &[]);
        let stats: serde_json::Value = serde_json::from_slice(&run.stderr).unwrap();
        let peak = stats["peak_reserved_bytes"].as_u64().unwrap();
        assert!(peak > 0 && peak <= 2 << 20, "{stats}");
    }
}
