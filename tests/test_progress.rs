//! The progress bar as a person sees it: the command runs in a pseudo-terminal (made
//! by Python's `pty`), and every frame the bar drew is read back.

mod common;

use std::path::Path;

use common::python_eval;

/// Runs `blockwise ARGS` in a pseudo-terminal and returns everything it drew there,
/// and its exit code.
fn in_terminal(args: &[&str]) -> (String, i32) {
    let bin = env!("CARGO_BIN_EXE_blockwise");
    let out = python_eval(&format!(
        "import os, pty, sys\n\
         args = {args:?}\n\
         pid, fd = pty.fork()\n\
         if pid == 0:\n\
         \x20   os.execv({bin:?}, [{bin:?}] + args)\n\
         chunks = []\n\
         while True:\n\
         \x20   try:\n\
         \x20       data = os.read(fd, 65536)\n\
         \x20   except OSError:\n\
         \x20       break\n\
         \x20   if not data:\n\
         \x20       break\n\
         \x20   chunks.append(data)\n\
         _, status = os.waitpid(pid, 0)\n\
         sys.stdout.write(str(os.waitstatus_to_exitcode(status)) + '\\n')\n\
         sys.stdout.write(b''.join(chunks).decode('utf-8', 'replace'))"
    ));
    let (code, drawn) = out.split_once('\n').unwrap();
    (drawn.to_string(), code.trim().parse().unwrap())
}

/// Bytes of an indicatif size: `12.50 MiB`, `300 B`.
fn size(text: &str) -> Option<f64> {
    let (number, unit) = text.trim().split_once(' ')?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// Every `POS/TOTAL` pair of sizes the bar drew.
fn positions(drawn: &str) -> Vec<(f64, f64)> {
    let mut found = Vec::new();
    for frame in drawn.split(['\r', '\n']) {
        // "input · spilled 1.0 MiB [=====>    ] 12.50 MiB/40.00 MiB 3.2 MiB/s ETA 9s"
        let Some(after_bar) = frame.rsplit_once(']').map(|(_, rest)| rest) else {
            continue;
        };
        let Some((pos, rest)) = after_bar.split_once('/') else {
            continue;
        };
        let total: String = rest
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        if let (Some(p), Some(t)) = (size(pos), size(&total)) {
            found.push((p, t));
        }
    }
    found
}

fn big_csv(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("t.csv");
    python_eval(&format!(
        "import numpy as np, pyarrow as pa, pyarrow.csv as c\n\
         r = np.random.default_rng(5)\n\
         n = 400_000\n\
         t = pa.table({{'k': r.integers(0, 10**9, n), 'v': r.random(n), 's': np.char.add('row', r.integers(0, 99999, n).astype(str))}})\n\
         c.write_csv(t, {path:?})"
    ));
    path
}

#[test]
fn a_spilling_sort_counts_bytes_of_input_up_to_the_input_and_never_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path());
    let input = std::fs::metadata(&csv).unwrap().len() as f64;
    let dst = dir.path().join("sorted.parquet");
    let mut args = vec![
        "convert",
        csv.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--sort-by",
        "k",
        "--memory-limit",
        "4MiB",
        "--threads",
        "2",
    ];
    args.extend(common::RSS_THRESHOLDS_OFF);
    let (drawn, code) = in_terminal(&args);
    assert_eq!(code, 0, "{drawn}");
    let seen = positions(&drawn);
    assert!(!seen.is_empty(), "no bar drawn in a terminal: {drawn:?}");
    for &(pos, total) in &seen {
        // Sizes are drawn with 2 decimals: allow their rounding.
        assert!(pos <= total * 1.001, "{pos} past {total}: {drawn:?}");
        assert!(
            (total - input).abs() <= input * 0.01,
            "total {total}, input {input}"
        );
    }
    // It moves: from the start towards the end, never back.
    for pair in seen.windows(2) {
        assert!(pair[1].0 >= pair[0].0, "went back: {pair:?}");
    }
    assert!(drawn.contains("input"), "{drawn:?}");
    // Spilling is said on the bar's line while it happens.
    assert!(drawn.contains("spilled"), "{drawn:?}");
    // The bar is cleared at the end: the last thing drawn is not a bar.
    let last = drawn
        .trim_end_matches(['\r', '\n'])
        .rsplit(['\r', '\n'])
        .next()
        .unwrap_or("");
    assert!(!last.contains("ETA"), "bar left on screen: {last:?}");
}

#[test]
fn no_bar_when_stderr_is_not_a_terminal_or_when_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path());
    let dst = dir.path().join("t.parquet");
    let out = common::convert_ok(&csv, &dst, &[]);
    assert!(common::stderr(&out).is_empty(), "{}", common::stderr(&out));
    let dst = dir.path().join("u.parquet");
    let (drawn, code) = in_terminal(&[
        "convert",
        csv.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(code, 0, "{drawn}");
    assert!(positions(&drawn).is_empty(), "{drawn:?}");
    assert!(!drawn.contains("ETA"), "{drawn:?}");
}
