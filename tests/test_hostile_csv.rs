//! Hostile CSV input through the binary: unclosed quotes, very wide rows, values
//! that tempt type inference, duplicate and empty column names, empty and UTF-16
//! files, and `head` on large inputs. Each case checks the exit code, the facts in
//! the message, that nothing panicked, and that no output or temporary file is left
//! (an existing destination unchanged).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{blockwise, entries, python_eval, stderr};

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    blockwise(args.iter().map(|a| a.as_ref().to_os_string()))
}

/// Asserts a clean failure with exit 2 whose message holds every fact in `facts`.
fn assert_refused(out: &Output, facts: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for fact in facts {
        assert!(err.contains(fact), "{fact:?} not in: {err}");
    }
}

/// Asserts `dir` holds exactly `names` (no output, no `.blockwise-` temporary).
fn assert_only(dir: &Path, names: &[&str]) {
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(entries(dir), want);
}

fn peak_rss(out: &Output) -> u64 {
    let err = stderr(out);
    let at = err.find("\"peak_rss_bytes\":").expect("stats line") + "\"peak_rss_bytes\":".len();
    err[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn an_unclosed_quote_is_exit_2_naming_the_line_where_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (file, line of the opening quote)
    let cases: &[(&str, &str, u64)] = &[
        ("mid.csv", "a,b\n1,x\n2,\"y\n3,z\n4,w\n", 3),
        ("last.csv", "a,b\n1,x\n2,y\n3,\"z\n", 4),
        ("last_no_newline.csv", "a,b\n1,x\n2,\"y", 3),
        // Swallowing the rest would also make a wrong field count: the quote wins.
        ("count.csv", "a,b\n1,2\n\"x,3\n4,5\n", 3),
        ("header.csv", "a,\"b\n1,2\n", 1),
        // Past the type-inference sample and across many partitions.
        ("late.csv", &late_unclosed_quote(), 10002),
    ];
    for (name, text, line) in cases {
        let src = write(d, name, text);
        let old = write(d, "old.parquet", b"keep me");
        let line_fact = format!("line {line}:");
        let facts = [*name, line_fact.as_str(), "never closed"];
        for blocksize in ["64MiB", "16"] {
            let out = run(&[
                &"convert",
                &src,
                &d.join("new.parquet"),
                &"--blocksize",
                &blocksize,
            ]);
            assert_refused(&out, &facts);
            let out = run(&[
                &"convert",
                &src,
                &old,
                &"--overwrite",
                &"--blocksize",
                &blocksize,
            ]);
            assert_refused(&out, &facts);
            assert_eq!(std::fs::read(&old).unwrap(), b"keep me");
        }
        let out = run(&[&"convert", &src, &d.join("new.csv")]);
        assert_refused(&out, &facts);
        assert_refused(&run(&[&"info", &src]), &facts);
        std::fs::remove_file(&src).unwrap();
        assert_only(d, &["old.parquet"]);
    }
    // `head` reads only what it prints, yet an unclosed quote within that is found.
    let src = write(d, "h.csv", "a,b\n1,x\n2,\"y\n3,z\n");
    assert_refused(&run(&[&"head", &src]), &["line 3:", "never closed"]);
    // A quote in the middle of a field is a literal character, not an opening one.
    let src = write(d, "literal.csv", "a,b\n1,5\" tall\n2,x\n");
    let out = run(&[&"convert", &src, &d.join("literal.parquet")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = python_eval(&format!(
        "import pyarrow.parquet as pq; print(pq.read_table({:?}).column('b').to_pylist())",
        d.join("literal.parquet")
    ));
    assert_eq!(rows.trim(), "['5\" tall', 'x']");
}

fn late_unclosed_quote() -> String {
    let mut text = String::from("a,b\n");
    for i in 0..5000 {
        text.push_str(&format!("{i},\"v\n{i}\"\n"));
    }
    text.push_str("x,\"never\n");
    for i in 0..100 {
        text.push_str(&format!("{i},y\n"));
    }
    text
}

fn wide_csv(dir: &Path, columns: usize) -> PathBuf {
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let row: Vec<String> = (0..columns).map(|i| format!("{}", i * 7)).collect();
    write(
        dir,
        &format!("wide{columns}.csv"),
        format!("{}\n{}\n", header.join(","), row.join(",")),
    )
}

#[test]
fn a_wide_one_row_csv_converts_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (columns, output) pairs. The Parquet writer's own per-column state (outside the
    // CSV reader) grows with 50,000 columns, so that pair is checked for a correct
    // result only.
    let cases: &[(usize, &str, bool)] = &[
        (3000, "parquet", true),
        (3000, "csv", true),
        (50_000, "csv", true),
        (50_000, "arrow", true),
        (50_000, "parquet", false),
    ];
    for &(columns, to, bounded) in cases {
        let src = wide_csv(d, columns);
        let dst = d.join(format!("out{columns}.{to}"));
        let out = run(&[&"convert", &src, &dst, &"--stats"]);
        assert!(out.status.success(), "{columns} → {to}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
        let rss = peak_rss(&out);
        if bounded {
            assert!(rss < 200 << 20, "{columns} → {to}: peak RSS {rss}");
        }
        if to == "parquet" {
            let shape = python_eval(&format!(
                "import pyarrow.parquet as pq; t = pq.read_table({dst:?}); \
                 print(t.num_rows, t.num_columns, t.column('c{}')[0].as_py())",
                columns - 1
            ));
            assert_eq!(shape.trim(), format!("1 {columns} {}", (columns - 1) * 7));
        }
        std::fs::remove_file(&dst).unwrap();
    }
}

#[test]
fn a_value_in_the_sample_never_fails_later_and_spaces_count_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Each column holds one tempting value among good ones, all within the sample.
    let columns = [
        ("big", "1", "99999999999999999999", "double"),
        ("huge", "1.5", "1e400", "double"),
        ("plus", "1", "+5", "int64"),
        ("hex", "1", "0x10", "string"),
        ("nan", "1.5", "NaN", "double"),
        ("inf", "1", "inf", "double"),
        ("feb30", "2024-02-28", "2024-02-30", "string"),
        (
            "offset",
            "2024-02-28 10:00:00",
            "2024-02-28T10:00:00+25:00",
            "string",
        ),
        (
            "tz",
            "2024-02-28 10:00:00",
            "2024-02-28T10:00:00+05:30",
            "timestamp[us]",
        ),
        ("bools", "True", "TRUE", "bool"),
        ("t", "true", "t", "string"),
        ("padded", "5", " 6 ", "int64"),
    ];
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let mut text = format!("{}\n", header.join(","));
    for i in 0..50 {
        let row: Vec<&str> = columns
            .iter()
            .map(|c| if i == 25 { c.2 } else { c.1 })
            .collect();
        text.push_str(&format!("{}\n", row.join(",")));
    }
    let src = write(d, "tempting.csv", &text);
    let dst = d.join("tempting.parquet");
    let out = run(&[&"convert", &src, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
    let types = python_eval(&format!(
        "import pyarrow.parquet as pq; s = pq.read_schema({dst:?}); \
         print(' '.join(str(f.type) for f in s))"
    ));
    let expected: Vec<&str> = columns.iter().map(|c| c.3).collect();
    assert_eq!(types.split_whitespace().collect::<Vec<_>>(), expected);

    // Outside the sample (past the first 1000 rows), spaces around a number are
    // trimmed just as inside it; a value that is not a number is an error naming it.
    let mut text = String::from("n\n");
    for i in 0..1500 {
        text.push_str(&format!("{i}\n"));
    }
    text.push_str("\" 7 \"\n");
    let src = write(d, "late_space.csv", &text);
    let dst = d.join("late_space.parquet");
    let out = run(&[&"convert", &src, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
    let last = python_eval(&format!(
        "import pyarrow.parquet as pq; c = pq.read_table({dst:?}).column('n'); \
         print(c.type, c[-1].as_py())"
    ));
    assert_eq!(last.trim(), "int64 7");
    text.push_str("seven\n");
    let src = write(d, "late_word.csv", &text);
    let out = run(&[&"convert", &src, &d.join("late_word.parquet")]);
    assert_refused(&out, &["line 1503", "\"seven\"", "int64"]);
    assert!(!d.join("late_word.parquet").exists());
}

#[test]
fn duplicate_and_empty_column_names_are_made_unique() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = write(d, "dup.csv", "a,a,,a_1,a\n1,2,3,4,5\n");
    for to in ["parquet", "arrow"] {
        let dst = d.join(format!("dup.{to}"));
        let out = run(&[&"convert", &src, &dst]);
        assert!(out.status.success(), "{}", stderr(&out));
        let reader = if to == "parquet" {
            "import pyarrow.parquet as pq; t = pq.read_table"
        } else {
            "import pyarrow.feather as f; t = f.read_table"
        };
        let names = python_eval(&format!(
            "{reader}({dst:?}); print(t.column_names, t.column('a_2')[0].as_py())"
        ));
        assert_eq!(
            names.trim(),
            "['a', 'a_2', 'column_3', 'a_1', 'a_3'] 2",
            "{to}"
        );
    }
}

#[test]
fn empty_header_only_utf16_and_bom_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = write(d, "old.parquet", b"keep me");

    let empty = write(d, "empty.csv", b"");
    for args in [
        vec![
            "convert".into(),
            empty.clone().into_os_string(),
            d.join("e.parquet").into(),
        ],
        vec!["info".into(), empty.clone().into_os_string()],
        vec!["head".into(), empty.clone().into_os_string()],
    ] {
        assert_refused(&blockwise(args), &["empty.csv", "no header"]);
    }
    let blank = write(d, "blank.csv", b"\n\r\n\n");
    assert_refused(&run(&[&"info", &blank]), &["no header"]);

    let header_only = write(d, "header_only.csv", b"a,b\n");
    let dst = d.join("header_only.parquet");
    let out = run(&[&"convert", &header_only, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shape = python_eval(&format!(
        "import pyarrow.parquet as pq; t = pq.read_table({dst:?}); print(t.num_rows, t.column_names)"
    ));
    assert_eq!(shape.trim(), "0 ['a', 'b']");

    let text = "a,b\n1,2\n";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    for (name, bytes) in [
        ("le_bom.csv", [&b"\xFF\xFE"[..], &le].concat()),
        ("be_bom.csv", [&b"\xFE\xFF"[..], &be].concat()),
        ("le.csv", le.clone()),
        ("be.csv", be.clone()),
    ] {
        let src = write(d, name, bytes);
        let out = run(&[&"convert", &src, &old, &"--overwrite"]);
        assert_refused(&out, &[name, "UTF-16", "UTF-8"]);
        assert_eq!(std::fs::read(&old).unwrap(), b"keep me");
        std::fs::remove_file(&src).unwrap();
    }

    let bom = write(d, "bom.csv", b"\xEF\xBB\xBFid,x\n1,2\n");
    let dst = d.join("bom.parquet");
    let out = run(&[&"convert", &bom, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names = python_eval(&format!(
        "import pyarrow.parquet as pq; print(pq.read_schema({dst:?}).names)"
    ));
    assert_eq!(names.trim(), "['id', 'x']");
    assert_only(
        d,
        &[
            "blank.csv",
            "bom.csv",
            "bom.parquet",
            "empty.csv",
            "header_only.csv",
            "header_only.parquet",
            "old.parquet",
        ],
    );
}

/// Runs `blockwise head ARGS`, returning its output and peak RSS in bytes.
// The child is reaped by `wait4`, which also reports its peak RSS.
#[allow(clippy::zombie_processes)]
fn head_with_rss(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (Output, u64) {
    let child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .arg("head")
        .args(args.iter().map(|a| a.as_ref().to_os_string()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let mut stderr_pipe = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let mut err = Vec::new();
    stderr_pipe.read_to_end(&mut err).unwrap();
    let out = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: plain FFI; `usage` is a valid, zeroed rusage and `pid` is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out,
        stderr: err,
    };
    assert!(code >= 0, "head died: {}", stderr(&output));
    (output, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn head_streams_reads_only_what_it_prints_and_a_closed_pipe_is_success() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // About 30 MB: printing every row must not hold them all.
    let mut text = String::from("a,b,c\n");
    for i in 0..620_000 {
        text.push_str(&format!("{i},{},\"some text {i}\"\n", i as f64 * 0.5));
    }
    // A broken row far past what `head` prints (and past the sample).
    text.push_str("1,2\n");
    let src = write(d, "big.csv", &text);
    let (out, rss) = head_with_rss(&[&src, &"-n", &"600000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("| 599999 "), "last row missing");
    assert_eq!(
        printed.lines().filter(|l| l.starts_with("| ")).count(),
        600_001
    );
    assert!(rss < 100 << 20, "head peaked at {rss} bytes");

    let (out, _) = head_with_rss(&[&src, &"-n", &"5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Reading every row finds the broken one.
    assert_refused(
        &run(&[&"convert", &src, &d.join("big.parquet")]),
        &["line 620002", "expected 3 fields"],
    );

    // A reader that goes away early: success, no panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .args([
            "head".as_ref(),
            src.as_os_str(),
            "-n".as_ref(),
            "600000".as_ref(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));

    // Parquet: row groups past the rows printed are never read (the second one is
    // made corrupt).
    let pq = d.join("groups.parquet");
    python_eval(&format!(
        "import pyarrow as pa, pyarrow.parquet as pq\n\
         t = pa.table({{'x': list(range(2000))}})\n\
         pq.write_table(t, {pq:?}, row_group_size=1000, compression='none')\n\
         m = pq.ParquetFile({pq:?}).metadata.row_group(1).column(0)\n\
         off = m.dictionary_page_offset or m.data_page_offset\n\
         f = open({pq:?}, 'r+b'); f.seek(off); f.write(b'\\xff' * 64); f.close()"
    ));
    let out = run(&[&"head", &pq, &"-n", &"5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| 4 "));
    let out = run(&[&"head", &pq, &"-n", &"1500"]);
    assert_ne!(out.status.code(), Some(0), "the corrupt row group was read");
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn head_from_names_the_format_of_a_source_without_an_extension() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = write(d, "table.out", "a;b\n1;x\n2;y\n");
    // Unknown: the message says how to name the format.
    assert_refused(&run(&[&"head", &src]), &["table.out", "--from"]);
    let out = run(&[&"head", &src, &"--from", &"csv", &"--delimiter", &";"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("| 2 | y |"), "{printed}");
    // A format that is not one: exit 2 listing the formats; an array format on a
    // CSV file: a clean refusal, never a panic.
    assert_refused(
        &run(&[&"head", &src, &"--from", &"xlsx"]),
        &["xlsx", "parquet"],
    );
    let out = run(&[&"head", &src, &"--from", &"npy"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    assert_only(d, &["table.out"]);
}

#[test]
fn bytes_that_are_not_utf8_are_named_by_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Latin-1 "café" in a text column: early (in the sample) and late (past it,
    // across many small partitions).
    let mut late = b"a,b\n".to_vec();
    for i in 0..5000 {
        late.extend_from_slice(format!("{i},x\n").as_bytes());
    }
    late.extend_from_slice(b"5000,caf\xe9\n");
    let cases: [(&str, Vec<u8>, &str); 2] = [
        (
            "early.csv",
            b"a,b\n1,ok\n2,caf\xe9\n3,ok\n".to_vec(),
            "line 3,",
        ),
        ("late.csv", late, "line 5002,"),
    ];
    for (name, bytes, line) in cases {
        let src = write(d, name, bytes);
        for blocksize in ["64MiB", "1KiB"] {
            let out = run(&[
                &"convert",
                &src,
                &d.join("out.parquet"),
                &"--blocksize",
                &blocksize,
            ]);
            assert_refused(
                &out,
                &[name, line, "column \"b\"", "caf", "not UTF-8", "iconv"],
            );
            assert!(!stderr(&out).contains("Csv error"), "{}", stderr(&out));
        }
        assert_refused(&run(&[&"info", &src]), &[name, line, "not UTF-8"]);
    }
    assert_only(d, &["early.csv", "late.csv"]);
}

#[test]
fn timestamp_digits_finer_than_the_unit_are_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Nanoseconds in the sample: the column holds nanoseconds, exactly.
    let src = write(
        d,
        "ns.csv",
        "t\n2024-02-28T10:00:00.5\n2024-02-28T10:00:00.123456789\n",
    );
    let out = d.join("ns.parquet");
    let run_out = run(&[&"convert", &src, &out]);
    assert_eq!(run_out.status.code(), Some(0), "{}", stderr(&run_out));
    let got = python_eval(&format!(
        "import pyarrow.parquet as pq\n\
         t = pq.read_table({out:?})\n\
         print(t.schema.field('t').type, t.column('t').cast('int64').to_pylist()[1])"
    ));
    assert_eq!(got.trim(), "timestamp[ns] 1709114400123456789");
    // Past the sample, in a microsecond column: refused, naming the value.
    let mut text = String::from("t\n");
    for _ in 0..2000 {
        text.push_str("2024-02-28T10:00:00.5\n");
    }
    text.push_str("2024-02-28T10:00:00.123456789\n");
    let src = write(d, "late_ns.csv", text);
    assert_refused(
        &run(&[&"convert", &src, &d.join("late.parquet")]),
        &["late_ns.csv", "line 2002", "123456789", "--dtype t="],
    );
    assert_only(d, &["late_ns.csv", "ns.csv", "ns.parquet"]);
}
