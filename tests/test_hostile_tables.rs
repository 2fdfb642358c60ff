//! Hostile tables and options, through the binary: option values and options that do
//! not apply, sources whose format cannot be told, nested columns, Feather v1 and IPC
//! streams, lengths in Parquet and IPC files that lie, duplicate column names, and
//! Hive-partitioned Parquet directories. Inputs are written by pyarrow (the reference
//! Python) or made by byte surgery here.
//!
//! Each refusal asserts the exit code, the message's facts, no panic, no output and
//! no temporary file left, and an existing destination unchanged.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{blockwise, convert_ok, fixture, python_eval, stderr};

/// Asserts `out` failed with `code`, its message holds every fact, nothing panicked
/// and `dir` holds no temporary output.
fn assert_refused(out: &Output, code: i32, facts: &[&str], dir: &Path) {
    common::assert_refused(out, code, facts);
    common::assert_no_temps(dir);
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    blockwise(args)
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Writes `code` (Python using `pa`, `pq`, `feather`, `ipc`, `ds`, with `d` the
/// directory) and runs it.
fn pyarrow(dir: &Path, code: &str) -> String {
    python_eval(&format!(
        "import pyarrow as pa, pyarrow.parquet as pq, pyarrow.feather as feather, \
         pyarrow.ipc as ipc, pyarrow.dataset as ds\nd = {:?}\n{code}",
        dir.display().to_string()
    ))
}

#[test]
fn option_values_that_make_no_sense_are_refused_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.parquet");
    let src = fixture("csv/basic.csv");
    let cases: &[(&[&str], &str)] = &[
        (&["--blocksize", "0"], "--blocksize"),
        (&["--row-group-size", "0"], "--row-group-size"),
        (&["--threads", "0"], "--threads"),
        (&["--threads", "-2"], "--threads"),
        (&["--delimiter", ""], "--delimiter"),
        (&["--delimiter", ";;"], "--delimiter"),
        (&["--delimiter", "é"], "--delimiter"),
        (&["--delimiter", "\n"], "--delimiter"),
        (&["--delimiter", "\r"], "--delimiter"),
        (&["--delimiter", "\""], "--delimiter"),
        (&["--memory-limit", "0"], "--memory-limit"),
        (&["--memory-limit", "-1"], "--memory-limit"),
        (&["--memory-limit", "1e99GB"], "--memory-limit"),
        (&["--memory-limit", "NaN"], "--memory-limit"),
        (
            &["--memory-limit", "99999999999999999999TB"],
            "--memory-limit",
        ),
    ];
    for (extra, option) in cases {
        let mut args = vec![os("convert"), src.as_os_str(), dst.as_os_str()];
        args.extend(extra.iter().map(os));
        let out = run(&args);
        assert_refused(&out, 2, &[option], dir.path());
        assert!(!dst.exists(), "{extra:?} left an output");
    }
    // Every subcommand parses the delimiter the same way.
    for cmd in ["info", "head"] {
        let out = run(&[os(cmd), src.as_os_str(), os("--delimiter"), os("")]);
        assert_refused(&out, 2, &["--delimiter"], dir.path());
    }
}

#[test]
fn options_that_do_not_apply_are_refused_and_leave_dst_alone() {
    let dir = tempfile::tempdir().unwrap();
    let csv = fixture("csv/basic.csv");
    let ipc = fixture("ipc/table.arrow");
    let npy = fixture("npy/int32.npy");
    let cases: Vec<(&PathBuf, &str, Vec<&str>, &str)> = vec![
        (&csv, "out.parquet", vec!["--chunks", "10,2"], "--chunks"),
        (
            &csv,
            "out.parquet",
            vec!["--row-groups", "0"],
            "--row-groups",
        ),
        (&ipc, "out.parquet", vec!["--dtype", "a=int64"], "--dtype"),
        (&ipc, "out.parquet", vec!["--delimiter", ";"], "--delimiter"),
        (
            &csv,
            "out.arrow",
            vec!["--row-group-size", "10"],
            "--row-group-size",
        ),
        (&npy, "out.zarr", vec!["--columns", "a"], "--columns"),
        (&npy, "out.zarr", vec!["--sort-by", "a"], "--sort-by"),
    ];
    for (src, name, extra, option) in cases {
        let dst = dir.path().join(name);
        // An existing destination, which --overwrite would replace: it must survive.
        std::fs::write(&dst, b"keep me").unwrap();
        let mut args = vec![
            os("convert"),
            src.as_os_str(),
            dst.as_os_str(),
            os("--overwrite"),
        ];
        args.extend(extra.iter().map(os));
        let out = run(&args);
        assert_refused(&out, 2, &[option], dir.path());
        assert_eq!(
            std::fs::read(&dst).unwrap(),
            b"keep me",
            "{option} touched DST"
        );
        std::fs::remove_file(&dst).unwrap();
    }
}

#[test]
fn a_source_of_unknown_format_is_named_with_from() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("data");
    std::fs::copy(fixture("csv/basic.csv"), &src).unwrap();
    let dst = dir.path().join("out.parquet");
    let out = run(&[os("convert"), src.as_os_str(), dst.as_os_str()]);
    assert_refused(
        &out,
        2,
        &["data", "--from", "--to names the output"],
        dir.path(),
    );
    assert!(!stderr(&out).contains("pass --to"), "{}", stderr(&out));
    assert!(!dst.exists());
    let out = run(&[os("info"), src.as_os_str()]);
    assert_refused(&out, 2, &["--from"], dir.path());
    convert_ok(&src, &dst, &["--from", "csv", "--no-progress"]);
    let info = common::blockwise_ok([
        os("info"),
        src.as_os_str(),
        os("--from"),
        os("csv"),
        os("--json"),
    ]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("\"rows\":200"));
}

#[test]
fn nested_columns_csv_cannot_hold_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    pyarrow(
        dir.path(),
        "t = pa.table({'id': [1, 2], 'tags': [[1, 2], [3]], 's': [{'k': 1}, {'k': 2}]})\n\
         pq.write_table(t, d + '/nested.parquet')",
    );
    let src = dir.path().join("nested.parquet");
    let dst = dir.path().join("out.csv");
    let out = run(&[os("convert"), src.as_os_str(), dst.as_os_str()]);
    assert_refused(&out, 2, &["\"tags\"", "list<int64>", "CSV"], dir.path());
    assert!(!dst.exists());
    // A struct, named as pyarrow names it.
    let out = run(&[
        os("convert"),
        src.as_os_str(),
        dst.as_os_str(),
        os("--columns"),
        os("s"),
    ]);
    assert_refused(&out, 2, &["\"s\"", "struct<k: int64>"], dir.path());
    // Table to array: the non-numeric column is named with its type.
    let zarr = dir.path().join("out.zarr");
    let out = run(&[
        os("convert"),
        src.as_os_str(),
        zarr.as_os_str(),
        os("--columns"),
        os("id,tags"),
    ]);
    assert_refused(&out, 2, &["\"tags\"", "list<int64>"], dir.path());
    assert!(!zarr.exists());
    // The nested columns are fine where the format holds them.
    convert_ok(&src, &dir.path().join("out.arrow"), &["--no-progress"]);
}

#[test]
fn feather_v1_says_what_it_is_and_ipc_streams_read() {
    let dir = tempfile::tempdir().unwrap();
    pyarrow(
        dir.path(),
        "import warnings\nwarnings.simplefilter('ignore')\n\
         t = pa.table({'a': [1, 2, 3], 'b': ['x', 'y', None]})\n\
         feather.write_feather(t, d + '/old.feather', version=1)\n\
         with ipc.new_stream(d + '/s.arrows', t.schema, options=ipc.IpcWriteOptions(compression='zstd')) as w:\n    \
         w.write_table(t)\n    w.write_table(t)",
    );
    let old = dir.path().join("old.feather");
    let dst = dir.path().join("out.parquet");
    let out = run(&[os("convert"), old.as_os_str(), dst.as_os_str()]);
    assert_refused(
        &out,
        2,
        &["Feather v1", "version=2", "write_feather"],
        dir.path(),
    );
    assert!(!dst.exists());
    let out = run(&[os("info"), old.as_os_str()]);
    assert_refused(&out, 2, &["Feather v1"], dir.path());

    let stream = dir.path().join("s.arrows");
    let info = common::blockwise_ok([os("info"), stream.as_os_str(), os("--json")]);
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(
        info.contains("\"rows\":6") && info.contains("stream"),
        "{info}"
    );
    convert_ok(&stream, &dst, &["--no-progress"]);
    let check = pyarrow(
        dir.path(),
        "a = pq.read_table(d + '/out.parquet')\n\
         b = ipc.open_stream(d + '/s.arrows').read_all()\nprint(a.equals(b))",
    );
    assert_eq!(check.trim(), "True");
}

/// A pyarrow-written IPC file and its footer's first record batch block.
fn ipc_file(dir: &Path) -> (Vec<u8>, usize, usize) {
    pyarrow(
        dir,
        "t = pa.table({'a': list(range(100)), 'b': [str(i) for i in range(100)]})\n\
         feather.write_feather(t, d + '/t.arrow', compression='uncompressed')",
    );
    let bytes = std::fs::read(dir.join("t.arrow")).unwrap();
    let n = bytes.len();
    let footer_len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let footer_start = n - 10 - footer_len;
    (bytes, footer_start, footer_len)
}

#[test]
fn lengths_in_ipc_and_parquet_files_that_exceed_the_file_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.csv");
    let mut cases: Vec<(&str, Vec<u8>, &[&str])> = Vec::new();

    // IPC: a footer length larger than the file.
    let (bytes, footer_start, footer_len) = ipc_file(dir.path());
    let mut big_footer = bytes.clone();
    let n = big_footer.len();
    big_footer[n - 10..n - 6].copy_from_slice(&i32::MAX.to_le_bytes());
    cases.push(("footer.arrow", big_footer, &["arrow ipc", "footer"]));

    // IPC: a record batch block whose body length is 2^60 (the reader would allocate
    // it). The block is (offset i64, metadata length i32, padding, body length i64)
    // inside the footer; find it by its offset and metadata length.
    let footer =
        arrow::ipc::root_as_footer(&bytes[footer_start..footer_start + footer_len]).unwrap();
    let block = footer.recordBatches().unwrap().get(0);
    let mut pattern = block.offset().to_le_bytes().to_vec();
    pattern.extend(block.metaDataLength().to_le_bytes());
    let at = bytes[footer_start..]
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
        .map(|p| footer_start + p)
        .expect("block in footer");
    let mut big_body = bytes.clone();
    big_body[at + 16..at + 24].copy_from_slice(&(1i64 << 60).to_le_bytes());
    cases.push(("body.arrow", big_body, &["arrow ipc", "does not fit"]));
    let mut negative_body = bytes.clone();
    negative_body[at + 16..at + 24].copy_from_slice(&(-5i64).to_le_bytes());
    cases.push(("negative.arrow", negative_body, &["arrow ipc", "-5"]));

    // Parquet: a footer length larger than the file.
    pyarrow(
        dir.path(),
        "t = pa.table({'a': list(range(1000)), 'b': [str(i) for i in range(1000)]})\n\
         pq.write_table(t, d + '/t.parquet', row_group_size=300)",
    );
    let pq_bytes = std::fs::read(dir.path().join("t.parquet")).unwrap();
    let n = pq_bytes.len();
    let mut pq_footer = pq_bytes.clone();
    pq_footer[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("footer.parquet", pq_footer, &["parquet"]));
    // Parquet: the data pages cut out, so every column chunk points past the end.
    let meta_len = u32::from_le_bytes(pq_bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let mut no_data = b"PAR1".to_vec();
    no_data.extend_from_slice(&pq_bytes[n - 8 - meta_len..]);
    cases.push((
        "nodata.parquet",
        no_data,
        &["column chunk", "the file holds"],
    ));
    // Parquet: only the trailer.
    cases.push((
        "tiny.parquet",
        b"PAR1\x00\x00\x00\x00PAR1".to_vec(),
        &["parquet"],
    ));

    for (name, bytes, facts) in cases {
        let src = dir.path().join(name);
        std::fs::write(&src, &bytes).unwrap();
        for cmd in [
            vec![os("info"), src.as_os_str()],
            vec![os("convert"), src.as_os_str(), dst.as_os_str()],
        ] {
            let out = run(&cmd);
            let mut all = facts.to_vec();
            all.push(name);
            assert_refused(&out, 2, &all, dir.path());
            assert!(!dst.exists());
        }
    }
}

#[test]
fn duplicate_column_names_are_made_unique() {
    let dir = tempfile::tempdir().unwrap();
    pyarrow(
        dir.path(),
        "t = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4]), pa.array(['p', 'q'])], \
         names=['a', 'a', 'b'])\n\
         pq.write_table(t, d + '/dup.parquet')\nfeather.write_feather(t, d + '/dup.arrow')",
    );
    for src in ["dup.parquet", "dup.arrow"] {
        let out = dir.path().join(format!("{src}.out.parquet"));
        convert_ok(&dir.path().join(src), &out, &["--no-progress"]);
        let got = pyarrow(
            dir.path(),
            &format!(
                "t = pq.read_table({:?})\nprint(t.column_names, t.column('a_1').to_pylist())",
                out.display().to_string()
            ),
        );
        assert_eq!(got.trim(), "['a', 'a_1', 'b'] [3, 4]");
    }
    // The made-up name selects the column.
    let csv = dir.path().join("sel.csv");
    convert_ok(
        &dir.path().join("dup.parquet"),
        &csv,
        &["--columns", "a_1", "--no-progress"],
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "a_1\n3\n4\n");
}

#[test]
fn hive_partitioned_parquet_directories_read_every_part_like_pyarrow() {
    let dir = tempfile::tempdir().unwrap();
    pyarrow(
        dir.path(),
        "t = pa.table({'x': list(range(12)), 'year': [2020, 2021, None] * 4, \
         'city': ['a b', 'c/d', 'e', 'f'] * 3})\n\
         pq.write_to_dataset(t, d + '/ds', partition_cols=['year', 'city'])",
    );
    let src = dir.path().join("ds");
    let info = common::blockwise_ok([os("info"), src.as_os_str(), os("--json")]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["rows"], 12);
    assert_eq!(info["format"], "parquet");
    assert_eq!(info["columns"][1]["name"], "year");
    assert_eq!(info["columns"][1]["type"], "int32");
    assert_eq!(info["columns"][2]["type"], "utf8");
    let out = dir.path().join("flat.parquet");
    convert_ok(&src, &out, &["--no-progress"]);
    let check = pyarrow(
        dir.path(),
        "a = pq.read_table(d + '/flat.parquet').sort_by('x')\n\
         b = ds.dataset(d + '/ds', partitioning='hive').to_table().sort_by('x')\n\
         print(a.schema.types == b.schema.types, a.to_pydict() == b.to_pydict())",
    );
    assert_eq!(check.trim(), "True True");
    // Partition keys select like columns.
    let csv = dir.path().join("keys.csv");
    convert_ok(&src, &csv, &["--columns", "city,x", "--no-progress"]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("city,x\n") && text.contains("c/d,") && text.lines().count() == 13,
        "{text}"
    );
}
