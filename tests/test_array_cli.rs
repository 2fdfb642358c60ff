//! `blockwise array`, `plan array`, `explain array` through the binary, on inputs
//! numpy and zarr-python wrote: the printed result is numpy's, a plan run task by
//! task in separate processes writes what the local run writes, and `explain` names
//! the stages.

mod common;

use std::path::Path;

use common::{blockwise_ok, python_eval};

/// Writes `x.npy` (float64 (40, 30)) and `y.zarr` (int32 (40, 30), chunks (16, 7))
/// into `dir`.
fn inputs(dir: &Path) {
    python_eval(&format!(
        "import numpy as np, zarr\n\
         rng = np.random.default_rng(5)\n\
         np.save('{d}/x.npy', rng.standard_normal((40, 30)))\n\
         y = rng.integers(-9, 9, (40, 30)).astype(np.int32)\n\
         z = zarr.create_array('{d}/y.zarr', shape=y.shape, chunks=(16, 7), dtype=y.dtype)\n\
         z[...] = y\n\
         print('ok')",
        d = dir.display()
    ));
}

const EXPR: &str = "(x * y - x.mean(axis=0))[::-3, 2:].cumsum(axis=1)";

fn numpy_str(dir: &Path, expr: &str) -> String {
    python_eval(&format!(
        "import numpy as np, zarr\n\
         x = np.load('{d}/x.npy'); y = zarr.open_array('{d}/y.zarr')[...]\n\
         print({expr})",
        d = dir.display()
    ))
}

fn inputs_args(dir: &Path) -> Vec<String> {
    vec![
        "-i".into(),
        format!("x={}", dir.join("x.npy").display()),
        "-i".into(),
        format!("y={}", dir.join("y.zarr").display()),
    ]
}

#[test]
fn a_small_result_prints_as_numpy_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    for expr in [
        EXPR,
        "y.sum(axis=0) // 3",
        "(x > 0).mean()",
        "x[3, :4] @ y[:4, :5]",
        "np.histogram(y, bins=6, range=(-9, 9))[0]",
        "np.sort(y[:5], axis=0)[:, ::7]",
        "y[[4, 0, 4], 3:6].reshape(-1)",
        "np.einsum('ij,ij->j', y, y)",
        "np.diff(y[:3, :6], axis=1)",
        "np.unique(y)",
        "y[y > 3]",
        "x[y[:, 0] > 0, ::5]",
        "(x[x > 1.5] * 2).round(3)",
    ] {
        let mut args = vec![
            "array".to_string(),
            expr.to_string(),
            "--no-progress".into(),
        ];
        args.extend(inputs_args(dir.path()));
        let out = blockwise_ok(&args);
        let got = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        assert_eq!(got, numpy_str(dir.path(), expr).trim_end(), "{expr}");
    }
}

#[test]
fn a_plan_run_task_by_task_writes_what_the_local_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    let local = dir.path().join("local.zarr");
    let planned = dir.path().join("planned.zarr");
    let plan = dir.path().join("plan.json");
    let mut args = vec!["array".to_string(), EXPR.into(), "-o".into()];
    args.push(local.display().to_string());
    args.extend(inputs_args(dir.path()));
    args.push("--no-progress".into());
    blockwise_ok(&args);
    let mut args = vec!["plan".to_string(), "array".into(), EXPR.into(), "-o".into()];
    args.push(planned.display().to_string());
    args.extend(inputs_args(dir.path()));
    args.extend(["--plan".into(), plan.display().to_string()]);
    blockwise_ok(&args);
    let waves = blockwise_ok(["tasks", &plan.display().to_string()]);
    for line in String::from_utf8_lossy(&waves.stdout).lines() {
        let mut args = vec!["run-task".to_string(), plan.display().to_string()];
        args.extend(line.split_whitespace().map(str::to_string));
        blockwise_ok(&args);
    }
    let same = python_eval(&format!(
        "import numpy as np, zarr\n\
         a = zarr.open_array('{}')[...]; b = zarr.open_array('{}')[...]\n\
         x = np.load('{d}/x.npy'); y = zarr.open_array('{d}/y.zarr')[...]\n\
         want = {EXPR}\n\
         print(np.array_equal(a, b) and np.allclose(a, want, rtol=1e-12, atol=0))",
        local.display(),
        planned.display(),
        d = dir.path().display()
    ));
    assert_eq!(same.trim(), "True");
    // The working directory is gone with the last task.
    let left: Vec<String> = common::entries(dir.path())
        .into_iter()
        .filter(|e| e.contains("blockwise"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_boolean_selection_is_written_to_zarr_and_npy_as_numpy_selects() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    for (expr, name) in [("x[x > 1]", "a.npy"), ("y[:, y[0] > 0] * 3", "b.zarr")] {
        let out = dir.path().join(name);
        let mut args = vec!["array".to_string(), expr.into(), "-o".into()];
        args.push(out.display().to_string());
        args.extend(inputs_args(dir.path()));
        args.push("--no-progress".into());
        blockwise_ok(&args);
        let same = python_eval(&format!(
            "import numpy as np, zarr\n\
             x = np.load('{d}/x.npy'); y = zarr.open_array('{d}/y.zarr')[...]\n\
             p = '{p}'\n\
             got = np.load(p) if p.endswith('.npy') else zarr.open_array(p)[...]\n\
             want = {expr}\n\
             print(got.shape == want.shape and got.dtype == want.dtype and (got == want).all())",
            d = dir.path().display(),
            p = out.display()
        ));
        assert_eq!(same.trim(), "True", "{expr}");
    }
    common::assert_no_temps(dir.path());
}

#[test]
fn explain_array_names_the_stages() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    let mut args = vec!["explain".to_string(), "array".into(), EXPR.into()];
    args.extend(inputs_args(dir.path()));
    let out = blockwise_ok(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["array_block", "array_combine", "x.npy", "y.zarr"] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
}
