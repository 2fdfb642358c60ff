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
