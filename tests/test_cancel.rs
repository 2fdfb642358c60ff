//! Ctrl-C during a conversion: the process stops, exits 130, and leaves no output,
//! no temporary file and no spill file.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn interrupt_removes_partial_output() {
    interrupt(&[]);
}

#[test]
fn interrupt_during_a_spilling_sort_leaves_no_spill_files() {
    interrupt(&["--sort-by", "c"]);
}

/// Starts a conversion of a generated CSV with `extra` flags, interrupts it once its
/// temporary output exists, and checks the exit code and that neither the output
/// directory nor the spill directory holds anything.
fn interrupt(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        writeln!(f, "a,b,c,d").unwrap();
        for i in 0..1_500_000u64 {
            writeln!(f, "{i},{},text number {i},{}.25", i * 7, i % 1000).unwrap();
        }
    }
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dst = out_dir.join("big.parquet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockwise"))
        .args([
            "convert".as_ref(),
            src.as_os_str(),
            dst.as_os_str(),
            "--threads".as_ref(),
            "1".as_ref(),
        ])
        .args(["--blocksize", "1MiB"])
        .args(extra)
        .arg("--spill-dir")
        .arg(&spill)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the temporary output exists, so the signal lands mid-write.
    let started = Instant::now();
    while common::entries(&out_dir).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no temporary output appeared"
        );
        if child.try_wait().unwrap().is_some() {
            panic!("conversion finished before it could be interrupted; make the input larger");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted by SIGINT"));
    assert!(
        common::entries(&out_dir).is_empty(),
        "left behind: {:?}",
        common::entries(&out_dir)
    );
    assert!(
        common::entries(&spill).is_empty(),
        "spill left behind: {:?}",
        common::entries(&spill)
    );
}
