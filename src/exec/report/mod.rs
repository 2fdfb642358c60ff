//! `--report FILE.html`: one self-contained page about a finished (or failed) job:
//! the task stream (a row a thread, a bar a task), progress by operation, memory
//! over time with the limit and the thresholds, a table per operation, and the job.
//!
//! [`Recorder`] (`record`) keeps what happened while the job ran; this module turns
//! it into the data of `formats/report-v1.md`, bounded in size (past 10,000 tasks,
//! bars are merged per thread and time bucket; readings and spill marks are merged
//! by time), and writes it, embedded once as JSON, into the page (`page.html`,
//! whose inline script draws SVG: nothing is fetched, so it opens offline).
//! The file is published atomically, refusing to replace one the user did not ask
//! to replace.

mod record;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use record::Recorder;
use record::{Log, Mark, Reading};

use super::JobContext;
use crate::error::{Error, IoResultExt, Result};
use crate::plan::Plan;
use crate::storage::atomic::{AtomicOutput, OutputSpec};

/// The version of the embedded data's layout (`formats/report-v1.md`).
pub const REPORT_VERSION: u32 = 1;

/// Most tasks listed one by one; past it, bars are aggregated.
pub const MAX_TASK_RECORDS: usize = 10_000;

/// Most bytes of JSON the per-task list may take: with the page, the readings and
/// the marks, a report stays under 2 MB.
const TASK_JSON_BUDGET: usize = 1_750_000;

/// Most memory readings, spill marks (and as many read-back marks) and pauses kept.
const MAX_READINGS: usize = 800;
const MAX_MARKS: usize = 400;
const MAX_PAUSES: usize = 400;

/// Time buckets over all rows when bars are aggregated.
const AGGREGATE_CELLS: usize = 4_000;

/// Refs listed for a task's inputs (a merge may read hundreds); the count says the rest.
const MAX_LISTED_INPUTS: usize = 2;

/// The page, with `{{BLOCKWISE_REPORT_DATA}}` where the JSON goes.
const PAGE: &str = include_str!("page.html");
const DATA_SLOT: &str = "{{BLOCKWISE_REPORT_DATA}}";

/// The embedded data (`formats/report-v1.md`).
#[derive(Debug, Serialize)]
pub struct ReportData {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The job.
    pub job: JobInfo,
    /// Operation → number of tasks in the plan.
    pub plan: Vec<PlanOp>,
    /// The plan's stages as `explain` projects them (a report of one plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::plan::PlanSummary>,
    /// Row labels of the task stream (executor threads).
    pub rows: Vec<String>,
    /// One record a task, unless `aggregated`.
    pub tasks: Vec<TaskRecord>,
    /// Whether too many tasks ran to list: then `bars` holds merged bars.
    pub aggregated: bool,
    /// Merged bars (only when `aggregated`).
    pub bars: Vec<Bar>,
    /// Memory readings, in time order.
    pub samples: Vec<Sample>,
    /// Intervals when no new task could start (the pause threshold).
    pub pauses: Vec<Pause>,
    /// Bytes moved to disk for want of memory.
    pub spills: Vec<SpillMark>,
    /// Spilled bytes read back.
    pub unspills: Vec<SpillMark>,
    /// The table per operation.
    pub ops: Vec<OpRow>,
    /// What `--stats` prints.
    pub stats: serde_json::Value,
    /// The job's memory pool had no room for more of the recording: tasks,
    /// readings and marks past that point are missing (totals are not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The job's description.
#[derive(Debug, Serialize)]
pub struct JobInfo {
    /// The command line.
    pub command: String,
    /// This blockwise's version.
    pub blockwise_version: &'static str,
    /// Worker threads.
    pub threads: usize,
    /// The memory limit.
    pub memory_limit_bytes: u64,
    /// Wall seconds from the job's start to the report.
    pub wall_s: f64,
    /// The process's peak RSS.
    pub peak_rss_bytes: u64,
    /// The four thresholds as fractions of the limit (`null`: off).
    pub thresholds: ThresholdFractions,
    /// `succeeded`, `failed` or `interrupted`.
    pub status: &'static str,
    /// The error that ended a job that did not succeed.
    pub error: Option<String>,
}

/// The thresholds, `None` for one turned off.
#[derive(Debug, Serialize)]
pub struct ThresholdFractions {
    /// Of reserved bytes: spill above.
    pub target: Option<f64>,
    /// Of RSS: spill above.
    pub spill: Option<f64>,
    /// Of RSS: no new task above.
    pub pause: Option<f64>,
    /// Of RSS: the job is cancelled at.
    pub terminate: Option<f64>,
}

/// An operation of the plan and its number of tasks.
#[derive(Debug, Serialize)]
pub struct PlanOp {
    /// The operation's name.
    pub op: String,
    /// Its tasks in the plan.
    pub tasks: u64,
}

/// One task.
#[derive(Debug, Serialize)]
pub struct TaskRecord {
    /// The task's id in the plan.
    pub id: u32,
    /// Its operation.
    pub op: String,
    /// Its row in the task stream (`null` when skipped).
    pub thread: Option<usize>,
    /// Seconds from the job's start (`null` when skipped).
    pub start_s: Option<f64>,
    /// Seconds from the job's start (`null` when skipped).
    pub end_s: Option<f64>,
    /// The entries it read (store names), or the first few of them.
    pub inputs: Vec<String>,
    /// How many entries it read, when `inputs` lists only the first few.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs_count: Option<usize>,
    /// The entry it published.
    pub output: String,
    /// Bytes of input read.
    pub read_bytes: u64,
    /// Bytes of output written.
    pub written_bytes: u64,
    /// Bytes spilled while it ran on its thread (absent: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub spilled_bytes: u64,
    /// True when its output was published already (a resumed run): it has no bar.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// Tasks of one operation merged into one bar.
#[derive(Debug, Serialize)]
pub struct Bar {
    /// Row.
    pub thread: usize,
    /// Operation.
    pub op: String,
    /// Earliest start.
    pub start_s: f64,
    /// Latest end.
    pub end_s: f64,
    /// Tasks merged.
    pub tasks: u64,
    /// Their bytes read.
    pub read_bytes: u64,
    /// Their bytes written.
    pub written_bytes: u64,
}

/// A memory reading.
#[derive(Debug, Serialize)]
pub struct Sample {
    /// Seconds from the job's start.
    pub t_s: f64,
    /// The job's RSS (above the process's at the start), as the thresholds see it.
    pub rss_bytes: u64,
    /// Bytes reserved on the pool.
    pub reserved_bytes: u64,
    /// Bytes spilled so far.
    pub spilled_bytes: u64,
    /// Bytes read back so far.
    pub unspilled_bytes: u64,
}

/// A paused interval.
#[derive(Debug, Serialize)]
pub struct Pause {
    /// Seconds from the job's start.
    pub start_s: f64,
    /// Seconds from the job's start.
    pub end_s: f64,
}

/// A spill or a read back.
#[derive(Debug, Serialize)]
pub struct SpillMark {
    /// Seconds from the job's start.
    pub t_s: f64,
    /// Bytes.
    pub bytes: u64,
    /// The row of the task it happened in (`null`: outside any task, e.g. the
    /// memory monitor's own watch, or merged marks).
    pub thread: Option<usize>,
    /// That task's id.
    pub task: Option<u32>,
}

/// The table's row for one operation.
#[derive(Debug, Default, Serialize)]
pub struct OpRow {
    /// The operation.
    pub op: String,
    /// Tasks that ran.
    pub tasks: u64,
    /// Tasks skipped.
    pub skipped: u64,
    /// Seconds its tasks ran, summed.
    pub total_s: f64,
    /// Mean seconds a task.
    pub mean_s: f64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub written_bytes: u64,
    /// Most bytes reserved on the pool while one of its tasks ran.
    pub peak_reserved_bytes: u64,
    /// Bytes spilled while its tasks ran.
    pub spilled_bytes: u64,
}

/// Seconds, to the microsecond (rounding keeps order, so bars that did not
/// overlap still do not).
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// Whether a count is zero (left out of a task's record, to keep the page small).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a job ended, for the page.
fn status(error: Option<&Error>) -> (&'static str, Option<String>) {
    match error {
        None => ("succeeded", None),
        Some(e @ (Error::Cancelled | Error::Interrupted { .. })) => {
            ("interrupted", Some(e.to_string()))
        }
        Some(e) => ("failed", Some(e.to_string())),
    }
}

/// Threshold fraction, or `None` for one that is off.
fn fraction(f: f64) -> Option<f64> {
    f.is_finite().then_some(f)
}

/// The report's data from what `recorder` recorded of the job `ctx` ran.
pub fn report_data(
    recorder: &Recorder,
    ctx: &JobContext,
    stats: serde_json::Value,
    command: String,
    error: Option<&Error>,
) -> ReportData {
    ReportPart::of_job(recorder, ctx, stats, command, error).into_data()
}

/// One job's part of a report, before it is bounded in size: what a report over
/// several jobs (Python's `performance_report`) gathers and merges ([`merge`]).
#[derive(Debug)]
pub struct ReportPart {
    log: Log,
    wall: Duration,
    started_at: SystemTime,
    job: JobInfo,
    stats: serde_json::Value,
}

impl ReportPart {
    /// What `recorder` recorded of the job `ctx` ran, ending now with `stats`.
    pub fn of_job(
        recorder: &Recorder,
        ctx: &JobContext,
        stats: serde_json::Value,
        command: String,
        error: Option<&Error>,
    ) -> Self {
        let (log, wall, started_at) = recorder.finish(ctx.monitor.rss(true));
        let thresholds = ctx.monitor.thresholds();
        let (status, error) = status(error);
        let job = JobInfo {
            command,
            blockwise_version: env!("CARGO_PKG_VERSION"),
            threads: ctx.threads,
            memory_limit_bytes: ctx.pool.limit(),
            wall_s: stats["wall_s"].as_f64().unwrap_or_else(|| secs(wall)),
            peak_rss_bytes: stats["peak_rss_bytes"].as_u64().unwrap_or(0),
            thresholds: ThresholdFractions {
                target: fraction(thresholds.target),
                spill: fraction(thresholds.spill),
                pause: fraction(thresholds.pause),
                terminate: fraction(thresholds.terminate),
            },
            status,
            error,
        };
        ReportPart {
            log,
            wall,
            started_at,
            job,
            stats,
        }
    }

    /// A plan run task by task elsewhere (on Dask workers): each task's report,
    /// with the wall-clock seconds it started and ended and the thread it ran on
    /// (its row). No memory readings: the workers' memory is theirs.
    pub fn from_tasks(plan: &Plan, tasks: &[RemoteTask], command: String) -> Self {
        let mut log = Log::default();
        for task in &plan.tasks {
            let op = log.op(&task.op.name);
            log.plan.push(record::PlanTask {
                op,
                inputs: task.inputs.iter().map(|r| r.store_name()).collect(),
                output: task.output.store_name(),
            });
        }
        let ran = || tasks.iter().filter(|t| !t.skipped);
        let first = ran().map(|t| t.start_unix_s).fold(f64::INFINITY, f64::min);
        let last = ran()
            .map(|t| t.end_unix_s)
            .fold(f64::NEG_INFINITY, f64::max);
        let first = if first.is_finite() { first } else { 0.0 };
        let since = |t: f64| Duration::from_secs_f64((t - first).max(0.0));
        for t in tasks {
            if t.id as usize >= plan.tasks.len() {
                continue;
            }
            let row = if t.skipped { 0 } else { log.row(&t.thread) };
            log.tasks.insert(
                t.id,
                record::TaskRun {
                    row,
                    start: since(t.start_unix_s),
                    end: Some(since(t.end_unix_s.max(t.start_unix_s))),
                    read_bytes: t.read_bytes,
                    written_bytes: t.written_bytes,
                    peak_reserved_bytes: t.peak_reserved_bytes,
                    skipped: t.skipped,
                    ..record::TaskRun::default()
                },
            );
        }
        let wall = if last.is_finite() {
            since(last)
        } else {
            Duration::ZERO
        };
        let threads = log.rows.len();
        let ran_count = ran().count() as u64;
        let stats = serde_json::json!({
            "wall_s": secs(wall),
            "tasks": ran_count,
            "skipped_tasks": tasks.len() as u64 - ran_count,
            "read_bytes": ran().map(|t| t.read_bytes).sum::<u64>(),
            "written_bytes": ran().map(|t| t.written_bytes).sum::<u64>(),
            "peak_reserved_bytes": ran().map(|t| t.peak_reserved_bytes).max().unwrap_or(0),
            "threads": threads,
        });
        ReportPart {
            log,
            wall,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(first.max(0.0)),
            job: JobInfo {
                command,
                blockwise_version: env!("CARGO_PKG_VERSION"),
                threads,
                memory_limit_bytes: 0,
                wall_s: secs(wall),
                peak_rss_bytes: 0,
                thresholds: ThresholdFractions {
                    target: None,
                    spill: None,
                    pause: None,
                    terminate: None,
                },
                status: "succeeded",
                error: None,
            },
            stats,
        }
    }

    /// The part alone, as the report's data.
    pub fn into_data(self) -> ReportData {
        build(self.log, self.wall, self.job, self.stats)
    }
}

/// One task run elsewhere, as a report part needs it (a Dask worker's result).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RemoteTask {
    /// The task's id.
    pub id: u32,
    /// The thread it ran on (a worker's address and thread name): its row.
    #[serde(default)]
    pub thread: String,
    /// Wall-clock seconds (Unix time) it started.
    #[serde(default)]
    pub start_unix_s: f64,
    /// Wall-clock seconds it ended.
    #[serde(default)]
    pub end_unix_s: f64,
    /// Bytes of input it read.
    #[serde(default)]
    pub read_bytes: u64,
    /// Bytes of output it wrote.
    #[serde(default)]
    pub written_bytes: u64,
    /// Most bytes reserved while it ran.
    #[serde(default)]
    pub peak_reserved_bytes: u64,
    /// Its output was published already: it did not run.
    #[serde(default)]
    pub skipped: bool,
}

/// One report over `parts` (jobs run one after another, or side by side), on one
/// time line from the first one's start: rows and operations joined by name, task
/// ids numbered on across the parts, statistics added up (peaks: the largest).
/// `None` when there is no part.
pub fn merge(parts: Vec<ReportPart>) -> Option<ReportData> {
    let t0 = parts.iter().map(|p| p.started_at).min()?;
    let mut log = Log::default();
    let mut wall = Duration::ZERO;
    let mut commands = Vec::new();
    let mut stats = serde_json::Map::new();
    let mut job: Option<JobInfo> = None;
    // A summary describes one plan: kept when only one part has one.
    let summaries = parts.iter().filter(|p| p.log.summary.is_some()).count();
    for part in parts {
        let offset = part.started_at.duration_since(t0).unwrap_or_default();
        wall = wall.max(offset + part.wall);
        log.append(part.log, offset);
        commands.push(part.job.command.clone());
        if let serde_json::Value::Object(map) = part.stats {
            for (key, value) in map {
                let merged = match (stats.get(&key), &value) {
                    (Some(a), b) if a.is_u64() && b.is_u64() => {
                        let (a, b) = (a.as_u64().unwrap_or(0), b.as_u64().unwrap_or(0));
                        if key.starts_with("peak_")
                            || key == "threads"
                            || key.ends_with("limit_bytes")
                        {
                            a.max(b).into()
                        } else {
                            a.saturating_add(b).into()
                        }
                    }
                    _ => value,
                };
                stats.insert(key, merged);
            }
        }
        job = Some(match job {
            None => part.job,
            Some(j) => JobInfo {
                threads: j.threads.max(part.job.threads),
                memory_limit_bytes: j.memory_limit_bytes.max(part.job.memory_limit_bytes),
                peak_rss_bytes: j.peak_rss_bytes.max(part.job.peak_rss_bytes),
                status: if j.status == "succeeded" {
                    part.job.status
                } else {
                    j.status
                },
                error: j.error.or(part.job.error),
                ..j
            },
        });
    }
    log.sort_by_time();
    if summaries != 1 {
        log.summary = None;
    }
    let mut job = job?;
    job.command = commands.join("\n");
    job.wall_s = secs(wall);
    stats.insert("wall_s".into(), job.wall_s.into());
    Some(build(log, wall, job, serde_json::Value::Object(stats)))
}

/// The data of `log`, covering `wall`, bounded in size.
fn build(log: Log, wall: Duration, job: JobInfo, stats: serde_json::Value) -> ReportData {
    let op_name = |id: u32| -> String {
        log.plan
            .get(id as usize)
            .and_then(|t| log.ops.get(t.op))
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    };
    let mut plan: Vec<PlanOp> = log
        .ops
        .iter()
        .map(|op| PlanOp {
            op: op.clone(),
            tasks: 0,
        })
        .collect();
    for t in &log.plan {
        plan[t.op].tasks += 1;
    }

    // The table per operation, over every task.
    let mut ops: Vec<OpRow> = log
        .ops
        .iter()
        .map(|op| OpRow {
            op: op.clone(),
            ..OpRow::default()
        })
        .collect();
    let mut ids: Vec<u32> = log.tasks.keys().copied().collect();
    ids.sort_unstable();
    for &id in &ids {
        let (Some(run), Some(task)) = (log.tasks.get(&id), log.plan.get(id as usize)) else {
            continue;
        };
        let row = &mut ops[task.op];
        if run.skipped {
            row.skipped += 1;
            continue;
        }
        let Some(end) = run.end else { continue };
        row.tasks += 1;
        row.total_s += end.saturating_sub(run.start).as_secs_f64();
        row.read_bytes += run.read_bytes;
        row.written_bytes += run.written_bytes;
        row.spilled_bytes += run.spilled_bytes;
        row.peak_reserved_bytes = row.peak_reserved_bytes.max(run.peak_reserved_bytes);
    }
    for row in &mut ops {
        row.mean_s = if row.tasks > 0 {
            row.total_s / row.tasks as f64
        } else {
            0.0
        };
    }

    // A task that started and never finished (the job failed) ends with the job.
    let record = |id: u32| -> Option<TaskRecord> {
        let run = log.tasks.get(&id)?;
        let task = log.plan.get(id as usize);
        let inputs = task.map_or(&[][..], |t| &t.inputs[..]);
        Some(TaskRecord {
            id,
            op: op_name(id),
            thread: (!run.skipped).then_some(run.row),
            start_s: (!run.skipped).then(|| secs(run.start)),
            end_s: (!run.skipped).then(|| secs(run.end.unwrap_or(wall))),
            inputs: inputs.iter().take(MAX_LISTED_INPUTS).cloned().collect(),
            inputs_count: (inputs.len() > MAX_LISTED_INPUTS).then_some(inputs.len()),
            output: task.map(|t| t.output.clone()).unwrap_or_default(),
            read_bytes: run.read_bytes,
            written_bytes: run.written_bytes,
            spilled_bytes: run.spilled_bytes,
            skipped: run.skipped,
        })
    };
    let mut tasks: Vec<TaskRecord> = Vec::new();
    let mut aggregated = ids.len() > MAX_TASK_RECORDS;
    if !aggregated {
        let mut bytes = 0;
        for &id in &ids {
            if let Some(r) = record(id) {
                bytes += serde_json::to_string(&r).map_or(0, |s| s.len() + 1);
                tasks.push(r);
            }
            if bytes > TASK_JSON_BUDGET {
                aggregated = true;
                tasks.clear();
                break;
            }
        }
    }
    let bars = if aggregated {
        aggregate(&log, &ids, wall, &op_name)
    } else {
        Vec::new()
    };

    ReportData {
        version: REPORT_VERSION,
        job,
        plan,
        summary: log.summary.clone(),
        truncated: log.truncated || log.names_dropped,
        rows: log.rows.clone(),
        tasks,
        aggregated,
        bars,
        samples: thin_readings(&log.readings),
        pauses: thin_pauses(&log.pauses, wall),
        spills: thin_marks(&log.spills),
        unspills: thin_marks(&log.read_backs),
        ops,
        stats,
    }
}

/// Bars merged per row, time bucket and operation, the buckets sized so that
/// all rows together have about [`AGGREGATE_CELLS`].
fn aggregate(log: &Log, ids: &[u32], wall: Duration, op_name: &dyn Fn(u32) -> String) -> Vec<Bar> {
    let rows = log.rows.len().max(1);
    let buckets = (AGGREGATE_CELLS / rows).max(20);
    let width = (wall.as_secs_f64() / buckets as f64).max(1e-6);
    let mut cells: HashMap<(usize, usize, String), Bar> = HashMap::new();
    for &id in ids {
        let Some(run) = log.tasks.get(&id).filter(|r| !r.skipped) else {
            continue;
        };
        let (start, end) = (secs(run.start), secs(run.end.unwrap_or(wall)));
        let bucket = ((start / width) as usize).min(buckets);
        let op = op_name(id);
        let bar = cells
            .entry((run.row, bucket, op.clone()))
            .or_insert_with(|| Bar {
                thread: run.row,
                op,
                start_s: start,
                end_s: end,
                tasks: 0,
                read_bytes: 0,
                written_bytes: 0,
            });
        bar.start_s = bar.start_s.min(start);
        bar.end_s = bar.end_s.max(end);
        bar.tasks += 1;
        bar.read_bytes += run.read_bytes;
        bar.written_bytes += run.written_bytes;
    }
    let mut bars: Vec<Bar> = cells.into_values().collect();
    bars.sort_by(|a, b| {
        (a.thread, a.start_s)
            .partial_cmp(&(b.thread, b.start_s))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    bars
}

/// The readings, at most [`MAX_READINGS`]: consecutive ones merged, keeping the
/// highest RSS and reservation (peaks must survive) and the latest totals.
fn thin_readings(readings: &[Reading]) -> Vec<Sample> {
    let per = readings.len().div_ceil(MAX_READINGS).max(1);
    readings
        .chunks(per)
        .map(|group| {
            let last = group[group.len() - 1];
            Sample {
                t_s: secs(group[0].at),
                rss_bytes: group.iter().map(|r| r.rss_bytes).max().unwrap_or(0),
                reserved_bytes: group.iter().map(|r| r.reserved_bytes).max().unwrap_or(0),
                spilled_bytes: last.spilled_bytes,
                unspilled_bytes: last.read_back_bytes,
            }
        })
        .collect()
}

/// The marks, at most [`MAX_MARKS`]: consecutive ones merged (their bytes summed;
/// a merged mark has no row).
fn thin_marks(marks: &[Mark]) -> Vec<SpillMark> {
    let per = marks.len().div_ceil(MAX_MARKS).max(1);
    marks
        .chunks(per)
        .map(|group| SpillMark {
            t_s: secs(group[0].at),
            bytes: group.iter().map(|m| m.bytes).sum(),
            thread: if group.len() == 1 { group[0].row } else { None },
            task: if group.len() == 1 {
                group[0].task
            } else {
                None
            },
        })
        .collect()
}

/// The paused intervals, at most [`MAX_PAUSES`]: consecutive ones merged.
fn thin_pauses(pauses: &[(Duration, Option<Duration>)], wall: Duration) -> Vec<Pause> {
    let per = pauses.len().div_ceil(MAX_PAUSES).max(1);
    pauses
        .chunks(per)
        .map(|group| Pause {
            start_s: secs(group[0].0),
            end_s: secs(group[group.len() - 1].1.unwrap_or(wall)),
        })
        .collect()
}

/// The page: `data` as JSON in its data element, where no `</` (nor `<!--`) can
/// end or confuse the script element that holds it.
///
/// # Errors
/// [`Error::Bug`] when the data does not serialize.
pub fn render(data: &ReportData) -> Result<String> {
    let json = serde_json::to_string(data)
        .map_err(|e| Error::bug("the report's data did not serialize", e))?;
    Ok(PAGE.replacen(DATA_SLOT, &escape_script(&json), 1))
}

/// `json` made safe inside `<script>`: `</` becomes `<\/` and `<!--` becomes
/// `\u003c!--`, both the same string to a JSON parser.
fn escape_script(json: &str) -> String {
    json.replace("</", "<\\/").replace("<!--", "\\u003c!--")
}

/// Where a job's report goes: checked before the job starts (an existing file is
/// refused unless replacing it was asked for), written at its end.
#[derive(Debug)]
pub struct ReportFile {
    out: AtomicOutput,
}

impl ReportFile {
    /// Prepares to write the report at `path`; `inputs` (the job's inputs and
    /// outputs) may not be, hold or sit inside it.
    ///
    /// # Errors
    /// As [`AtomicOutput::new`]: [`Error::OutputExists`] when `path` exists and
    /// `overwrite` is false, and the other destination checks.
    pub fn new(path: &Path, overwrite: bool, inputs: &[&Path]) -> Result<Self> {
        // A report replaces only a report: never a directory (a dataset of parts, a
        // Zarr array), whatever `overwrite` says.
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.is_file() {
                return Err(Error::InvalidOption {
                    option: "report",
                    value: path.display().to_string(),
                    reason: "exists and is not a file; a report replaces only a file".into(),
                });
            }
        }
        let out = AtomicOutput::new(
            path,
            &OutputSpec {
                format: "html",
                single_file: true,
                overwrite,
                inputs,
            },
        )?;
        Ok(ReportFile { out })
    }

    /// The path the report is published at.
    pub fn path(&self) -> &Path {
        self.out.final_path()
    }

    /// Writes `data`'s page under a temporary name and publishes it.
    ///
    /// # Errors
    /// The write's and the publication's errors.
    pub fn write(self, data: &ReportData) -> Result<()> {
        let page = render(data)?;
        std::fs::write(self.out.path(), page).at(self.out.path())?;
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::record::{PlanTask, TaskRun};
    use super::*;

    fn job() -> JobInfo {
        JobInfo {
            command: "blockwise convert a.csv b.parquet --report r.html".into(),
            blockwise_version: env!("CARGO_PKG_VERSION"),
            threads: 2,
            memory_limit_bytes: 1 << 30,
            wall_s: 100.0,
            peak_rss_bytes: 1 << 28,
            thresholds: ThresholdFractions {
                target: Some(0.6),
                spill: Some(0.7),
                pause: Some(0.8),
                terminate: None,
            },
            status: "succeeded",
            error: None,
        }
    }

    /// A log of `n` tasks on two threads back to back, named as a sort's are
    /// and each reading `inputs` entries, with a reading every 50 ms of the 100 s.
    fn log_with(n: u32, inputs: u32) -> Log {
        let mut log = Log::default();
        log.ops = vec!["sort_run".into(), "encode_table_part".into()];
        log.rows = vec!["blockwise-0".into(), "blockwise-1".into()];
        let step = 100.0 / f64::from(n) * 2.0;
        for id in 0..n {
            log.plan.push(PlanTask {
                op: (id % 2) as usize,
                inputs: (0..inputs)
                    .map(|i| format!("src/{}", id * inputs + i))
                    .collect(),
                output: format!("encoded/{id}"),
            });
            let start = f64::from(id / 2) * step;
            log.tasks.insert(
                id,
                TaskRun {
                    row: (id % 2) as usize,
                    start: Duration::from_secs_f64(start),
                    end: Some(Duration::from_secs_f64(start + step * 0.9)),
                    read_bytes: 16 << 20,
                    written_bytes: 5_123_456,
                    peak_reserved_bytes: 987_654_321,
                    ..TaskRun::default()
                },
            );
        }
        for i in 0..2000u64 {
            let at = Duration::from_millis(i * 50);
            let mark = Mark {
                at,
                bytes: 123_456_789,
                row: Some(1),
                task: Some(12_345),
            };
            log.spills.push(mark);
            log.read_backs.push(mark);
            log.pauses.push((at, Some(at + Duration::from_millis(7))));
            log.readings.push(Reading {
                at: Duration::from_millis(i * 50),
                rss_bytes: 123_456_789 + i,
                reserved_bytes: 98_765_432,
                spilled_bytes: i * 1000,
                read_back_bytes: i * 900,
            });
        }
        log
    }

    fn log(n: u32) -> Log {
        log_with(n, 1)
    }

    fn page_of(log: Log) -> (ReportData, String) {
        let n = log.tasks.len();
        let stats = serde_json::json!({"tasks": n, "skipped_tasks": 0, "spilled_bytes": 1});
        let data = build(log, Duration::from_secs(100), job(), stats);
        let page = render(&data).unwrap();
        (data, page)
    }

    #[test]
    fn ten_thousand_tasks_are_listed_one_by_one_under_two_megabytes() {
        let (data, page) = page_of(log(10_000));
        assert!(!data.aggregated);
        assert_eq!(data.tasks.len(), 10_000);
        assert!(page.len() < 2_000_000, "{} bytes", page.len());
        // Tasks reading many entries list the first few, and are aggregated when
        // even so they would not fit.
        let (data, page) = page_of(log_with(10_000, 20));
        assert!(page.len() < 2_000_000, "{} bytes", page.len());
        assert_eq!(data.ops.iter().map(|o| o.tasks).sum::<u64>(), 10_000);
        let (few, _) = page_of(log_with(100, 20));
        assert_eq!(few.tasks[7].inputs.len(), MAX_LISTED_INPUTS);
        assert_eq!(few.tasks[7].inputs_count, Some(20));
    }

    #[test]
    fn twenty_thousand_tasks_are_aggregated_under_two_megabytes() {
        let (data, page) = page_of(log(20_000));
        assert!(data.aggregated);
        assert!(data.tasks.is_empty());
        assert!(!data.bars.is_empty());
        let merged: u64 = data.bars.iter().map(|b| b.tasks).sum();
        assert_eq!(merged, 20_000);
        assert!(data.bars.len() <= AGGREGATE_CELLS * 2 + 4);
        assert!(page.len() < 2_000_000, "{} bytes", page.len());
        // The table still counts every task.
        assert_eq!(data.ops.iter().map(|o| o.tasks).sum::<u64>(), 20_000);
    }

    #[test]
    fn readings_are_thinned_keeping_peaks_and_order() {
        let mut readings: Vec<Reading> = (0..10_000u64)
            .map(|i| Reading {
                at: Duration::from_millis(i),
                rss_bytes: 10,
                reserved_bytes: 5,
                spilled_bytes: i,
                read_back_bytes: 0,
            })
            .collect();
        readings[4321].rss_bytes = 999;
        let thin = thin_readings(&readings);
        assert!(thin.len() <= MAX_READINGS);
        assert_eq!(thin.iter().map(|s| s.rss_bytes).max(), Some(999));
        assert!(thin.windows(2).all(|w| w[0].t_s <= w[1].t_s));
        assert_eq!(thin.last().map(|s| s.spilled_bytes), Some(9_999));
    }

    #[test]
    fn script_closing_text_in_the_data_cannot_end_the_data_element() {
        let mut log = log(2);
        log.plan[0].output = "</script><script>alert(1)</script><!--".into();
        let stats = serde_json::json!({"note": "</SCRIPT> and </script >"});
        let data = build(log, Duration::from_secs(1), job(), stats);
        let page = render(&data).unwrap();
        let open = r#"<script type="application/json" id="blockwise-report-data">"#;
        let start = page.find(open).unwrap() + open.len();
        let len = page[start..].find("</script>").unwrap();
        let embedded = &page[start..start + len];
        assert!(!embedded.contains("</"), "{embedded}");
        assert!(!embedded.to_ascii_lowercase().contains("<!--"));
        // The same data to a JSON parser.
        let back: serde_json::Value = serde_json::from_str(embedded).unwrap();
        assert_eq!(
            back["tasks"][0]["output"],
            "</script><script>alert(1)</script><!--"
        );
        assert_eq!(back["stats"]["note"], "</SCRIPT> and </script >");
    }

    /// A plan of `n` tasks of `op` (each waiting for the one before).
    fn plan_of(op: &str, n: u32) -> Plan {
        let mut plan = Plan::new();
        for i in 0..n {
            plan.push(crate::plan::Task {
                deps: if i > 0 { vec![i - 1] } else { vec![] },
                ..crate::plan::Task::new(
                    crate::plan::OpSpec::new(op, serde_json::Value::Null),
                    crate::plan::DataRef::partition("out", u64::from(i)),
                    crate::plan::TaskKind::Compute,
                )
            });
        }
        plan
    }

    fn remote(id: u32, thread: &str, start: f64, end: f64) -> RemoteTask {
        RemoteTask {
            id,
            thread: thread.into(),
            start_unix_s: start,
            end_unix_s: end,
            read_bytes: 10,
            written_bytes: 5,
            peak_reserved_bytes: 100,
            skipped: false,
        }
    }

    #[test]
    fn parts_merge_on_one_time_line_with_their_ids_numbered_on() {
        let t0 = 1_700_000_000.0;
        let a = ReportPart::from_tasks(
            &plan_of("sort_run", 2),
            &[
                remote(0, "w1 t0", t0, t0 + 1.0),
                remote(1, "w2 t0", t0 + 1.0, t0 + 3.0),
            ],
            "first".into(),
        );
        let mut b_tasks = vec![remote(0, "w2 t0", t0 + 10.0, t0 + 11.0)];
        b_tasks.push(RemoteTask {
            skipped: true,
            ..remote(1, "", 0.0, 0.0)
        });
        let b = ReportPart::from_tasks(&plan_of("merge_range", 2), &b_tasks, "second".into());
        let data = merge(vec![b, a]).unwrap();
        assert_eq!(data.tasks.len(), 4);
        let ids: Vec<u32> = data.tasks.iter().map(|t| t.id).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        // Rows joined by their labels: w2's thread is one row for both parts.
        assert_eq!(data.rows.len(), 2, "{:?}", data.rows);
        let second = data
            .tasks
            .iter()
            .find(|t| t.op == "merge_range" && !t.skipped)
            .unwrap();
        let first = data.tasks.iter().find(|t| t.op == "sort_run").unwrap();
        assert!(
            (second.start_s.unwrap() - 10.0).abs() < 1e-3,
            "{:?}",
            second.start_s
        );
        assert_eq!(first.start_s, Some(0.0));
        assert_eq!(data.stats["tasks"], 3);
        assert_eq!(data.stats["skipped_tasks"], 1);
        assert_eq!(data.stats["read_bytes"], 30);
        assert_eq!(
            data.stats["peak_reserved_bytes"], 100,
            "peaks are not added"
        );
        assert!((data.job.wall_s - 11.0).abs() < 1e-3, "{}", data.job.wall_s);
        assert!(data.job.command.contains("first") && data.job.command.contains("second"));
        assert!(merge(Vec::new()).is_none());
    }

    #[test]
    fn task_reports_of_unknown_tasks_are_left_out() {
        let part = ReportPart::from_tasks(
            &plan_of("op", 1),
            &[remote(0, "w", 5.0, 6.0), remote(7, "w", 5.0, 6.0)],
            "x".into(),
        );
        let data = part.into_data();
        assert_eq!(data.tasks.len(), 1);
        assert_eq!(data.tasks[0].end_s, Some(1.0));
    }

    #[test]
    fn the_recording_holds_a_reservation_and_stops_at_the_limit() {
        use crate::plan::{Event, Observer};
        let pool = crate::memory::MemoryPool::new(16 << 10);
        let recorder = Recorder::new(pool.clone());
        let plan = plan_of("op", 1000);
        recorder.plan(&plan);
        for id in 0..1000 {
            recorder.on_event(&Event::TaskStarted(id));
            recorder.on_event(&Event::BytesSpilled(10));
            recorder.on_event(&Event::TaskFinished(id));
            assert!(pool.reserved() <= 16 << 10);
        }
        assert!(pool.reserved() > 0, "the recording holds what it keeps");
        let (log, wall, _) = recorder.finish(0);
        assert!(log.truncated);
        let kept = log.tasks.len();
        assert!((1..1000).contains(&kept), "{kept}");
        let data = build(log, wall, job(), serde_json::json!({}));
        assert!(data.truncated);
        // Released with the log.
        assert_eq!(pool.reserved(), 0);

        // With room, everything is kept and nothing is said.
        let pool = crate::memory::MemoryPool::new(64 << 20);
        let recorder = Recorder::new(pool);
        recorder.plan(&plan);
        for id in 0..1000 {
            recorder.on_event(&Event::TaskStarted(id));
            recorder.on_event(&Event::TaskFinished(id));
        }
        let (log, wall, _) = recorder.finish(0);
        assert!(!log.truncated);
        assert_eq!(log.tasks.len(), 1000);
        assert!(!build(log, wall, job(), serde_json::json!({})).truncated);
    }
}
