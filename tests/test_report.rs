//! `--report FILE.html`: the page's embedded data agrees with `--stats` for a
//! spilling sort (`convert`) and a staged rechunk (`run` of a plan); a real browser
//! (headless Chromium, offline) draws it without a script error and not blank; an
//! existing report is not replaced unless asked; a failed job still gets one.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{blockwise, blockwise_ok, python_eval};

const DATA_OPEN: &str = r#"<script type="application/json" id="blockwise-report-data">"#;

/// The JSON embedded in the report at `path`.
fn report_data(path: &Path) -> serde_json::Value {
    let page = std::fs::read_to_string(path).unwrap();
    let start = page.find(DATA_OPEN).expect("no data element") + DATA_OPEN.len();
    let len = page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..start + len]).unwrap()
}

/// The `--stats` line (the last line of stderr).
fn stats_line(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stderr);
    serde_json::from_str(text.trim().lines().last().unwrap()).unwrap()
}

/// Checks the report's data against the `--stats` line of the same run.
fn check_against_stats(data: &serde_json::Value, stats: &serde_json::Value) {
    assert_eq!(data["version"], 1);
    for key in [
        "tasks",
        "skipped_tasks",
        "spilled_bytes",
        "spill_files",
        "read_bytes",
    ] {
        assert_eq!(data["stats"][key], stats[key], "{key}: {}", data["stats"]);
    }
    assert_eq!(data["job"]["threads"], stats["threads"]);
    assert_eq!(
        data["job"]["memory_limit_bytes"],
        stats["memory_limit_bytes"]
    );
    assert_eq!(data["job"]["status"], "succeeded");
    assert_eq!(data["job"]["blockwise_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["aggregated"], false);

    let tasks = data["tasks"].as_array().unwrap();
    let rows = data["rows"].as_array().unwrap().len();
    let (ran, skipped): (Vec<_>, Vec<_>) = tasks.iter().partition(|t| t.get("skipped").is_none());
    assert_eq!(ran.len() as u64, stats["tasks"].as_u64().unwrap());
    assert_eq!(
        skipped.len() as u64,
        stats["skipped_tasks"].as_u64().unwrap()
    );
    let planned: u64 = data["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tasks"].as_u64().unwrap())
        .sum();
    assert_eq!(planned, ran.len() as u64 + skipped.len() as u64);
    let ids: HashSet<u64> = tasks.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), tasks.len(), "a task listed twice");

    // Every task that ran is a bar on exactly one row, and bars on a row do not
    // overlap.
    let mut by_row: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    for t in &ran {
        let row = t["thread"].as_u64().expect("a task that ran has a row");
        assert!((row as usize) < rows, "{t}");
        let (start, end) = (t["start_s"].as_f64().unwrap(), t["end_s"].as_f64().unwrap());
        assert!(0.0 <= start && start <= end, "{t}");
        assert!(t["op"].is_string() && t["output"].is_string() && t["inputs"].is_array());
        by_row.entry(row).or_default().push((start, end));
    }
    for bars in by_row.values_mut() {
        bars.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for w in bars.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "overlapping bars {:?} and {:?}",
                w[0],
                w[1]
            );
        }
    }

    // The table per operation counts the same tasks.
    let table: u64 = data["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["tasks"].as_u64().unwrap())
        .sum();
    assert_eq!(table, ran.len() as u64);

    // Memory readings, in time order, with the spilled total never falling.
    let samples = data["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{samples:?}");
    for w in samples.windows(2) {
        assert!(w[0]["t_s"].as_f64().unwrap() <= w[1]["t_s"].as_f64().unwrap());
        assert!(w[0]["spilled_bytes"].as_u64().unwrap() <= w[1]["spilled_bytes"].as_u64().unwrap());
    }
    let spilled = stats["spilled_bytes"].as_u64().unwrap();
    let marked: u64 = data["spills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["bytes"].as_u64().unwrap())
        .sum();
    // Every byte `--stats` counts as spilled has its mark.
    assert_eq!(marked, spilled, "spill marks against --stats");
}

/// The report of a spilling sort, run by `convert`.
fn sort_report(dir: &Path) -> (PathBuf, serde_json::Value) {
    let csv = common::table_csv(dir, 60_000);
    let report = dir.join("sort report.html");
    let mut flags = vec!["--sort-by", "id4,v3", "--memory-limit", "2MiB"];
    flags.extend(common::RSS_THRESHOLDS_OFF);
    flags.extend([
        "--stats",
        "--no-progress",
        "--report",
        report.to_str().unwrap(),
    ]);
    let out = common::convert_ok(&csv, &dir.join("sorted.parquet"), &flags);
    let stats = stats_line(&out);
    assert!(stats["spilled_bytes"].as_u64().unwrap() > 0, "{stats}");
    (report, stats)
}

/// The report of a staged rechunk, planned and then run by `run`.
fn rechunk_report(dir: &Path) -> (PathBuf, serde_json::Value) {
    let npy = dir.join("a.npy");
    python_eval(&format!(
        "import numpy as np; np.save({npy:?}, np.random.default_rng(1).standard_normal((400, 400)))"
    ));
    let tall = dir.join("tall.zarr");
    common::convert_ok(&npy, &tall, &["--chunks", "400,5"]);
    let plan = dir.join("plan.json");
    let mut args: Vec<String> = vec!["plan".into(), "convert".into()];
    args.extend([
        tall.display().to_string(),
        dir.join("wide.zarr").display().to_string(),
    ]);
    args.extend(["--chunks", "5,400", "--memory-limit", "160000"].map(String::from));
    args.extend(common::RSS_THRESHOLDS_OFF.map(String::from));
    args.extend(["-o".into(), plan.display().to_string()]);
    blockwise_ok(&args);
    let report = dir.join("rechunk.html");
    let mut args: Vec<String> = vec!["run".into(), plan.display().to_string()];
    args.extend(["--memory-limit", "160000"].map(String::from));
    args.extend(common::RSS_THRESHOLDS_OFF.map(String::from));
    args.extend(["--stats", "--no-progress", "--report"].map(String::from));
    args.push(report.display().to_string());
    let out = blockwise_ok(&args);
    (report, stats_line(&out))
}

#[test]
fn a_spilling_sorts_report_agrees_with_its_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (report, stats) = sort_report(dir.path());
    let data = report_data(&report);
    check_against_stats(&data, &stats);
    assert!(
        data["job"]["command"].as_str().unwrap().contains("'"),
        "the path with a space is quoted"
    );
    let sort_ops: Vec<&str> = data["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["op"].as_str().unwrap())
        .collect();
    assert!(
        sort_ops.contains(&"sort_run") && sort_ops.contains(&"merge_range"),
        "{sort_ops:?}"
    );
    assert!(std::fs::metadata(&report).unwrap().len() < 2_000_000);
    // The plan as `explain` projected it: every task in one stage, the sort's own
    // operations the ones that spill.
    let summary = &data["summary"];
    let stages = summary["stages"].as_array().unwrap();
    let staged: u64 = stages.iter().map(|s| s["tasks"].as_u64().unwrap()).sum();
    assert_eq!(staged, summary["tasks"].as_u64().unwrap());
    assert_eq!(
        staged,
        stats["tasks"].as_u64().unwrap() + stats["skipped_tasks"].as_u64().unwrap()
    );
    for s in stages {
        let op = s["op"].as_str().unwrap();
        assert!(sort_ops.contains(&op), "{op}");
        assert_eq!(
            s["spills"].as_bool(),
            Some(op == "sort_run" || op == "merge_range"),
            "{op}"
        );
    }
    assert_eq!(summary["memory_limit_bytes"], stats["memory_limit_bytes"]);
}

#[test]
fn a_staged_rechunks_report_agrees_with_its_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (report, stats) = rechunk_report(dir.path());
    assert!(stats["spilled_bytes"].as_u64().unwrap() > 0, "{stats}");
    check_against_stats(&report_data(&report), &stats);
}

#[test]
fn an_existing_report_is_replaced_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 100);
    let report = dir.path().join("r.html");
    std::fs::write(&report, "mine").unwrap();
    let dst = dir.path().join("o.parquet");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["convert".into(), csv.display().to_string()];
        a.extend([
            dst.display().to_string(),
            "--report".into(),
            report.display().to_string(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = blockwise(args(&[]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("--overwrite-report"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "mine");
    assert!(!dst.exists(), "the job ran although its report was refused");

    blockwise_ok(args(&["--overwrite-report"]));
    assert_eq!(report_data(&report)["job"]["status"], "succeeded");
    // convert's --overwrite covers its report too.
    blockwise_ok(args(&["--overwrite"]));

    // `plan convert` runs nothing, so it has nothing to report.
    let out = blockwise([
        "plan",
        "convert",
        csv.to_str().unwrap(),
        "x.parquet",
        "--report",
        "p.html",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(!Path::new("p.html").exists());
    common::assert_no_temps(dir.path());
}

#[test]
fn a_report_at_a_path_the_job_writes_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 2_000);
    let dst = dir.path().join("o.parquet");
    // The destination itself, spelled another way.
    let spelled = dir.path().join(".").join("o.parquet");
    let out = blockwise([
        "convert".as_ref(),
        csv.as_os_str(),
        dst.as_os_str(),
        "--report".as_ref(),
        spelled.as_os_str(),
    ]);
    common::assert_refused(&out, 2, &["--report", "o.parquet"]);
    assert!(!dst.exists(), "the job ran");
    // Inside a directory of parts being written.
    let parts = dir.path().join("parts");
    let inside = parts.join("r.html");
    let out = blockwise([
        "convert".as_ref(),
        csv.as_os_str(),
        parts.as_os_str(),
        "--to".as_ref(),
        "parquet-dir".as_ref(),
        "--report".as_ref(),
        inside.as_os_str(),
    ]);
    common::assert_refused(&out, 2, &["--report"]);
    assert!(!parts.exists());
    // A directory (here a dataset of parts) is never replaced by a report, even when
    // replacing is asked for.
    let dataset = dir.path().join("pd.parquet");
    std::fs::create_dir(&dataset).unwrap();
    std::fs::write(dataset.join("part-0.parquet"), "data").unwrap();
    let other = dir.path().join("other.parquet");
    let out = blockwise([
        "convert".as_ref(),
        csv.as_os_str(),
        other.as_os_str(),
        "--overwrite".as_ref(),
        "--report".as_ref(),
        dataset.as_os_str(),
    ]);
    common::assert_refused(&out, 2, &["pd.parquet", "not a file"]);
    assert_eq!(
        std::fs::read_to_string(dataset.join("part-0.parquet")).unwrap(),
        "data"
    );
    assert!(!other.exists());
    // `run`: inside the plan's working directory, or at its destination.
    let plan = dir.path().join("plan.json");
    let dst = dir.path().join("p.parquet");
    blockwise_ok([
        "plan".as_ref(),
        "convert".as_ref(),
        csv.as_os_str(),
        dst.as_os_str(),
        "-o".as_ref(),
        plan.as_os_str(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    let workdir = PathBuf::from(json["workdir"].as_str().unwrap());
    for report in [workdir.join("r.html"), dst.clone()] {
        let out = blockwise([
            "run".as_ref(),
            plan.as_os_str(),
            "--report".as_ref(),
            report.as_os_str(),
        ]);
        common::assert_refused(&out, 2, &["--report"]);
        assert!(!dst.exists());
    }
}

#[test]
fn a_failed_job_still_gets_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::table_csv(dir.path(), 100);
    let report = dir.path().join("failed.html");
    let out = common::convert(
        &csv,
        &dir.path().join("o.parquet"),
        &[
            "--sort-by",
            "no_such_column",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let data = report_data(&report);
    assert_eq!(data["job"]["status"], "failed");
    assert!(
        data["job"]["error"]
            .as_str()
            .unwrap()
            .contains("no_such_column"),
        "{data}"
    );
}

/// The Chromium binary on PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium offline on `page` with `args`; returns its stdout.
fn chromium_run(browser: &Path, page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        // No network: every name fails to resolve and every proxy connection too.
        .args([
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
        ])
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pixels of an 8-bit RGB or RGBA PNG, as RGB triples (Chromium's screenshots).
fn png_pixels(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut pos, mut idat, mut header) = (8, Vec::new(), None);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let body = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => header = Some(body.to_vec()),
            b"IDAT" => idat.extend_from_slice(body),
            _ => {}
        }
        pos += 12 + len;
    }
    let h = header.expect("no IHDR");
    let width = u32::from_be_bytes(h[0..4].try_into().unwrap()) as usize;
    let height = u32::from_be_bytes(h[4..8].try_into().unwrap()) as usize;
    assert_eq!(h[8], 8, "bit depth");
    let channels = match h[9] {
        2 => 3,
        6 => 4,
        other => panic!("colour type {other}"),
    };
    assert_eq!(h[12], 0, "interlaced");
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1));
    let mut image = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for i in 0..stride {
            let a = if i >= channels {
                image[y * stride + i - channels]
            } else {
                0
            };
            let b = if y > 0 {
                image[(y - 1) * stride + i]
            } else {
                0
            };
            let c = if y > 0 && i >= channels {
                image[(y - 1) * stride + i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            image[y * stride + i] = line[i].wrapping_add(predicted);
        }
    }
    let pixels = image.chunks(channels).map(|p| [p[0], p[1], p[2]]).collect();
    (width, height, pixels)
}

/// Opens `page` in headless Chromium with the network off: its script must end
/// without an error, and a screenshot must show a drawn page. Returns the
/// screenshot's path.
fn check_in_browser(browser: &Path, page: &Path) -> PathBuf {
    let dom = chromium_run(browser, page, &["--dump-dom"]);
    let marker = r#"id="blockwise-report-status">"#;
    let at = dom.find(marker).expect("no status marker in the page") + marker.len();
    let status = &dom[at..at + dom[at..].find('<').unwrap()];
    assert_eq!(status, "ok", "the page's script failed");
    assert!(
        dom.matches("<rect").count() > 50,
        "the charts were not drawn"
    );

    let shot = page.with_extension("png");
    chromium_run(
        browser,
        page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1800",
        ],
    );
    let (width, height, pixels) = png_pixels(&std::fs::read(&shot).unwrap());
    assert_eq!((width, height), (1400, 1800));
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    let inked = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(
        colours.len() > 20,
        "{} colours: a blank page",
        colours.len()
    );
    assert!(
        inked * 20 > pixels.len(),
        "{inked} of {} pixels drawn",
        pixels.len()
    );
    shot
}

#[test]
fn reports_open_offline_in_a_real_browser() {
    let Some(browser) = chromium() else {
        // CI installs Chromium (.ci/run, scripts/test.sh): there, its absence fails.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs Chromium: apt-get install chromium"
        );
        eprintln!("no chromium on PATH: the browser check did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sort, _) = sort_report(dir.path());
    let shot = check_in_browser(&browser, &sort);
    let target = common::root().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(&shot, target.join("report-screenshot.png")).unwrap();

    let other = tempfile::tempdir().unwrap();
    let (rechunk, _) = rechunk_report(other.path());
    check_in_browser(&browser, &rechunk);
}
