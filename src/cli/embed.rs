//! The command line's jobs for hosts that embed blockwise (the Python bindings):
//! options are the command line's flags, checked by the same parsers, so a Python
//! user's `chunks="100,100"` means exactly what `--chunks 100,100` means; results
//! are JSON values instead of lines on stderr.

use std::path::Path;
use std::time::Instant;

use clap::Parser;

use super::common::JobArgs;
use crate::array::graph::Array;
use crate::array::select::Selection;
use crate::convert::{
    already_published, convert as convert_job, create_workdir, directory_store, finish_if_complete,
    plan_convert as plan_convert_job, registry, run_plan as run_plan_job, OnFailure,
};
use crate::error::{Error, Result};
pub use crate::exec::report::{RemoteTask, ReportPart};
use crate::exec::{run_task as run_one, CancelToken, JobContext, JobStats, Progress, TaskReport};
use crate::plan::{Plan, Resources};

/// `blockwise convert`'s arguments, parsed from flags.
#[derive(Debug, Parser)]
#[command(name = "convert", no_binary_name = true)]
struct ConvertFlags {
    #[command(flatten)]
    args: super::convert::Args,
}

/// `blockwise array`'s arguments, parsed from flags.
#[derive(Debug, Parser)]
#[command(name = "array", no_binary_name = true)]
struct ArrayFlags {
    #[command(flatten)]
    args: super::array::Args,
}

/// `blockwise sql`'s arguments, parsed from flags.
#[derive(Debug, Parser)]
#[command(name = "sql", no_binary_name = true)]
struct SqlFlags {
    #[command(flatten)]
    args: super::sql::Args,
}

fn sql_args(query: &str, output: Option<&Path>, flags: &[String]) -> Result<super::sql::Args> {
    let mut argv = vec![query.to_string()];
    if let Some(out) = output {
        argv.push("-o".into());
        argv.push(out.display().to_string());
    }
    argv.extend(flags.iter().cloned());
    Ok(parse::<SqlFlags>(argv)?.args)
}

/// A SQL query's rows computed into memory, as an Arrow IPC stream (what
/// `pyarrow.ipc.open_stream` reads without copying), with the job's statistics.
pub type QueryWatched = (Result<(serde_json::Value, Vec<u8>)>, Option<ReportPart>);

/// Computes a SQL query's rows into memory with job `flags`, watched as `watch`
/// says.
pub fn sql_compute(
    query: &str,
    flags: &[String],
    cancel: CancelToken,
    watch: &Watch,
) -> QueryWatched {
    let started = Instant::now();
    let prepared = sql_args(query, None, flags)
        .and_then(|args| Ok((args.plan()?, context(&args.job, cancel.clone(), watch)?)));
    let (plan, ctx) = match prepared {
        Ok(p) => p,
        Err(e) => return (Err(e), None),
    };
    let result = crate::convert::query(&plan, &ctx)
        .and_then(|(schema, batches)| {
            let mut out = Vec::new();
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &schema)?;
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            JobStats::add(&ctx.stats.rows, rows as u64);
            Ok(out)
        })
        .map_err(|e| cancel.explain(e));
    let out = stats(&ctx, started);
    let part = part(&ctx, &out, format!("sql({query})"), result.as_ref().err());
    (result.map(|bytes| (out, bytes)), part)
}

/// Writes a SQL query's rows to `dst` with `flags`, watched as `watch` says.
pub fn sql_write(
    query: &str,
    dst: &Path,
    flags: &[String],
    cancel: CancelToken,
    watch: &Watch,
) -> Watched {
    let started = Instant::now();
    let prepared = sql_args(query, Some(dst), flags).and_then(|args| {
        Ok((
            args.plan()?,
            args.options()?,
            context(&args.job, cancel.clone(), watch)?,
        ))
    });
    let (plan, options, ctx) = match prepared {
        Ok(p) => p,
        Err(e) => return (Err(e), None),
    };
    let result =
        crate::convert::write_query(&plan, dst, &options, &ctx).map_err(|e| cancel.explain(e));
    let out = stats(&ctx, started);
    let part = part(
        &ctx,
        &out,
        format!("sql({query}) to {}", dst.display()),
        result.as_ref().err(),
    );
    (result.map(|_| out), part)
}

/// What a SQL query yields, without running it: its columns and their types, and
/// the tasks of its plan.
///
/// # Errors
/// The query's errors.
pub fn sql_info(query: &str, flags: &[String]) -> Result<serde_json::Value> {
    let args = sql_args(query, None, flags)?;
    let plan = args.plan()?;
    let (tasks, lowered) = crate::convert::plan_query(&plan, args.job.sizing()?)?;
    let columns: Vec<serde_json::Value> = lowered
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!([f.name(), crate::storage::type_name(f.data_type())]))
        .collect();
    Ok(serde_json::json!({
        "columns": columns,
        "partitions": lowered.parts.len(),
        "tasks": tasks.tasks.len(),
    }))
}

/// The plan of writing a SQL query's rows to `dst` with `flags` (`--to`,
/// `--compression`, `--overwrite` and the job's), as JSON: what `blockwise plan sql
/// QUERY -o DST` writes. Its working directory is made beside `dst`; the plan's
/// last task publishes `dst` and removes it.
///
/// # Errors
/// As `blockwise plan sql`: the query's errors and the destination's checks, before
/// anything runs.
pub fn plan_sql(query: &str, dst: &Path, flags: &[String]) -> Result<String> {
    let args = sql_args(query, Some(dst), flags)?;
    let logical = args.plan()?;
    let options = args.options()?;
    let plan = crate::convert::plan_query_file(&logical, dst, &options, args.job.sizing()?)?;
    let json = plan.to_json()?;
    create_workdir(&plan)?;
    Ok(json)
}

/// An `array` expression and the array files its names are bound to.
#[derive(Debug, Clone)]
pub struct ArrayRequest {
    /// The expression.
    pub expr: String,
    /// Names and paths.
    pub inputs: Vec<(String, std::path::PathBuf)>,
    /// Names bound to expressions, in order (`--let`).
    pub lets: Vec<(String, String)>,
}

impl ArrayRequest {
    /// The command line's arguments for it, with `flags` after.
    fn args(&self, output: Option<&Path>, flags: &[String]) -> Result<super::array::Args> {
        let mut argv = vec![self.expr.clone()];
        for (name, path) in &self.inputs {
            argv.push("--input".into());
            argv.push(format!("{name}={}", path.display()));
        }
        for (name, expr) in &self.lets {
            argv.push(format!("--let={name}={expr}"));
        }
        if let Some(out) = output {
            argv.push("-o".into());
            argv.push(out.display().to_string());
        }
        argv.extend(flags.iter().cloned());
        Ok(parse::<ArrayFlags>(argv)?.args)
    }
}

/// What an expression's array is, without computing it: shape, dtype, chunks
/// (Dask's tuple of tuples), bytes, and the tasks its plan has.
///
/// # Errors
/// The inputs' and the expression's errors.
pub fn array_info(request: &ArrayRequest) -> Result<serde_json::Value> {
    let args = request.args(None, &[])?;
    if let Some(selection) = args.selected()? {
        // Dask's unknown lengths: `nan` in Python, `null` here.
        let (plan, _, _) = crate::convert::plan_selection(&selection, args.job.sizing()?)?;
        return Ok(serde_json::json!({
            "shape": selection.shape(),
            "dtype": selection.dtype().name(),
            "chunks": selection.chunks(),
            "nbytes": null,
            "tasks": plan.tasks.len(),
        }));
    }
    let (array, _) = args.array()?;
    let (plan, _) = crate::convert::plan_array_compute(&array, args.job.sizing()?)?;
    Ok(serde_json::json!({
        "shape": array.shape(),
        "dtype": array.dtype().name(),
        "chunks": array.chunks(),
        "nbytes": array.nbytes(),
        "tasks": plan.tasks.len(),
    }))
}

/// What an expression computes: an array, or a result whose length only the run
/// tells.
enum Deferred {
    Array(Array),
    Unique(Array),
    Selected(Selection),
}

/// An expression's array computed into memory, with the job's statistics.
pub type ComputedWatched = (
    Result<(serde_json::Value, crate::convert::ComputedArray)>,
    Option<ReportPart>,
);

/// Computes an expression's array into memory with job `flags`, watched as `watch`
/// says.
pub fn array_compute(
    request: &ArrayRequest,
    flags: &[String],
    cancel: CancelToken,
    watch: &Watch,
) -> ComputedWatched {
    let started = Instant::now();
    let prepared = request.args(None, flags).and_then(|args| {
        let what = if let Some((a, _)) = args.unique()? {
            Deferred::Unique(a)
        } else if let Some(s) = args.selected()? {
            Deferred::Selected(s)
        } else {
            Deferred::Array(args.array()?.0)
        };
        Ok((what, context(&args.job, cancel.clone(), watch)?))
    });
    let (what, ctx) = match prepared {
        Ok(p) => p,
        Err(e) => return (Err(e), None),
    };
    let result = match &what {
        // `unique(x)`: its values, and their counts after them as int64.
        Deferred::Unique(array) => {
            crate::convert::compute_unique(array, &ctx).map(|(mut values, counts)| {
                values.counts = Some(counts);
                values
            })
        }
        Deferred::Selected(selection) => crate::convert::compute_selected(selection, &ctx),
        Deferred::Array(array) => crate::convert::compute_array(array, &ctx),
    }
    .map_err(|e| cancel.explain(e));
    let out = stats(&ctx, started);
    let part = part(
        &ctx,
        &out,
        format!("Array.compute({})", request.expr),
        result.as_ref().err(),
    );
    (result.map(|a| (out, a)), part)
}

/// Writes an expression's array to `dst` with `flags` (`--chunks`, `--compression`,
/// `--overwrite` and the job's), watched as `watch` says.
pub fn array_write(
    request: &ArrayRequest,
    dst: &Path,
    flags: &[String],
    cancel: CancelToken,
    watch: &Watch,
) -> Watched {
    let started = Instant::now();
    let prepared = request.args(Some(dst), flags).and_then(|args| {
        let (what, options) = match args.selected()? {
            Some(s) => (Deferred::Selected(s), args.options()?),
            None => {
                let (array, options) = args.array()?;
                (Deferred::Array(array), options)
            }
        };
        Ok((what, options, context(&args.job, cancel.clone(), watch)?))
    });
    let (what, options, ctx) = match prepared {
        Ok(p) => p,
        Err(e) => return (Err(e), None),
    };
    let result = match &what {
        Deferred::Selected(s) => crate::convert::write_selected(s, dst, &options, &ctx),
        Deferred::Array(a) => crate::convert::write_array(a, dst, &options, &ctx),
        Deferred::Unique(_) => Err(Error::bug("unique() written to a file", "")),
    }
    .map_err(|e| cancel.explain(e));
    let out = stats(&ctx, started);
    let part = part(
        &ctx,
        &out,
        format!("Array.to_file({}, {})", request.expr, dst.display()),
        result.as_ref().err(),
    );
    (result.map(|_| out), part)
}

/// The plan of writing an expression's array to `dst`, as JSON.
///
/// # Errors
/// As `blockwise plan array`.
pub fn plan_array(request: &ArrayRequest, dst: &Path, flags: &[String]) -> Result<String> {
    let args = request.args(Some(dst), flags)?;
    let (array, options) = args.array()?;
    let plan = crate::convert::plan_array(&array, dst, &options, args.job.sizing()?)?;
    let json = plan.to_json()?;
    create_workdir(&plan)?;
    Ok(json)
}

/// The job flags alone (`--memory-limit`, `--threads`, ...).
#[derive(Debug, Parser)]
#[command(name = "job", no_binary_name = true)]
struct JobFlags {
    #[command(flatten)]
    job: JobArgs,
}

/// Parses `flags` as clap would on the command line, reporting a refused value as
/// our own error (with the option and the reason) and anything else as
/// [`Error::Usage`] with clap's text.
fn parse<T: Parser>(flags: impl IntoIterator<Item = String>) -> Result<T> {
    T::try_parse_from(flags).map_err(|e| {
        super::option_error(&e)
            .unwrap_or_else(|| Error::Usage(e.render().to_string().trim().to_string()))
    })
}

fn convert_flags(src: &Path, dst: &Path, flags: &[String]) -> Result<super::convert::Args> {
    let argv = [src.display().to_string(), dst.display().to_string()]
        .into_iter()
        .chain(flags.iter().cloned());
    Ok(parse::<ConvertFlags>(argv)?.args)
}

/// The statistics of a finished job, as `--stats` prints them, with the rows.
fn stats(ctx: &JobContext, started: Instant) -> serde_json::Value {
    let mut stats = super::common::job_stats(ctx, started);
    stats["rows"] = JobStats::get(&ctx.stats.rows).into();
    stats
}

/// What a host asks of a job beside its flags: where to count its progress (a
/// hidden bar the host polls), and whether to record it for a report.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// Counts the job's progress.
    pub progress: Progress,
    /// Record the job: its [`ReportPart`] comes back with its statistics.
    pub record: bool,
}

/// A job context from job flags, quiet on stderr (the host reports what it wants),
/// watched as `watch` says.
fn context(job: &JobArgs, cancel: CancelToken, watch: &Watch) -> Result<JobContext> {
    let mut job = job.clone();
    job.no_progress = true;
    let mut ctx = job.context(cancel)?;
    ctx.progress = watch.progress.clone();
    Ok(if watch.record {
        ctx.with_recorder()
    } else {
        ctx
    })
}

/// The job's part of a report, when it was recorded; `error` ended it.
fn part(
    ctx: &JobContext,
    stats: &serde_json::Value,
    command: String,
    error: Option<&Error>,
) -> Option<ReportPart> {
    let recorder = ctx.recorder()?;
    Some(ReportPart::of_job(
        recorder,
        ctx,
        stats.clone(),
        command,
        error,
    ))
}

/// What a watched job gives back: its statistics or its error, and, when it was
/// recorded, its part of a report, also when it failed (a report of a failed job
/// says where it stopped).
pub type Watched = (Result<serde_json::Value>, Option<ReportPart>);

/// Converts `src` to `dst` with command-line `flags` (`--chunks 100,100`,
/// `--memory-limit 1GiB`, ...), watched as `watch` says.
pub fn convert(
    src: &Path,
    dst: &Path,
    flags: &[String],
    cancel: CancelToken,
    watch: &Watch,
) -> Watched {
    let started = Instant::now();
    let prepared = convert_flags(src, dst, flags).and_then(|args| {
        let options = args.options()?;
        Ok((options, context(&args.job, cancel.clone(), watch)?))
    });
    let (options, ctx) = match prepared {
        Ok(p) => p,
        Err(e) => return (Err(e), None),
    };
    let result = convert_job(src, dst, &options, &ctx).map_err(|e| cancel.explain(e));
    let mut out = stats(&ctx, started);
    if let Ok(report) = &result {
        out["from"] = report.from.name().into();
        out["to"] = report.to.name().into();
        out["rows"] = report.rows.into();
        out["written_bytes"] = report.written_bytes.into();
    }
    let command = format!(
        "convert({}, {}, {})",
        src.display(),
        dst.display(),
        flags.join(" ")
    );
    let part = part(&ctx, &out, command, result.as_ref().err());
    (result.map(|_| out), part)
}

/// The plan of converting `src` to `dst` with `flags`, as JSON.
///
/// # Errors
/// As `blockwise plan convert`.
pub fn plan_convert(src: &Path, dst: &Path, flags: &[String]) -> Result<String> {
    let args = convert_flags(src, dst, flags)?;
    let options = args.options()?;
    let plan = plan_convert_job(src, dst, &options, args.job.sizing()?)?;
    let json = plan.to_json()?;
    create_workdir(&plan)?;
    Ok(json)
}

/// Runs `plan` on the local executor with job `flags`, watched as `watch` says.
pub fn run_plan(plan: &Plan, flags: &[String], cancel: CancelToken, watch: &Watch) -> Watched {
    let started = Instant::now();
    let prepared = registry()
        .prepare(plan)
        .and_then(|_| parse::<JobFlags>(flags.iter().cloned()))
        .and_then(|f| context(&f.job, cancel.clone(), watch));
    let ctx = match prepared {
        Ok(ctx) => ctx,
        Err(e) => return (Err(e), None),
    };
    let result = if already_published(plan) {
        JobStats::add(&ctx.stats.skipped_tasks, plan.tasks.len() as u64);
        if let Some(recorder) = ctx.recorder() {
            recorder.plan(plan);
            recorder.skip_all();
        }
        Ok(())
    } else {
        run_plan_job(plan, &ctx, OnFailure::KeepForResume)
            .map(|_| ())
            .map_err(|e| cancel.explain(e))
    };
    let out = stats(&ctx, started);
    let command = format!("Plan.run({})", flags.join(" "));
    let part = part(&ctx, &out, command, result.as_ref().err());
    (result.map(|()| out), part)
}

/// Runs task `id` of `plan` in this process against the plan's working directory,
/// with job `flags`: what `blockwise run-task` and a Dask worker do. The last of the
/// plan's final tasks removes the working directory.
///
/// # Errors
/// As `blockwise run-task`.
pub fn run_task(plan: &Plan, id: u32, flags: &[String], cancel: CancelToken) -> Result<TaskReport> {
    let task = plan.tasks.get(id as usize).ok_or_else(|| Error::BadPlan {
        reason: format!(
            "it has no task {id} (its tasks are 0 to {})",
            plan.tasks.len().saturating_sub(1)
        ),
    })?;
    if already_published(plan) {
        return Ok(TaskReport {
            id,
            op: task.op.name.clone(),
            seconds: 0.0,
            read_bytes: 0,
            written_bytes: 0,
            peak_reserved_bytes: 0,
            skipped: true,
        });
    }
    let job = parse::<JobFlags>(flags.iter().cloned())?.job;
    let ctx = context(&job, cancel.clone(), &Watch::default())?;
    let store = directory_store(plan)?;
    let resources = Resources::default();
    let env = ctx.environment(&store, &resources);
    let report = ctx
        .install(|| run_one(plan, registry(), id, &env, &ctx.cancel, &[]))
        .map_err(|e| {
            store.remove_temporaries();
            cancel.explain(e)
        })?;
    finish_if_complete(plan, &store);
    Ok(report)
}

/// Writes one performance report of `parts` (jobs recorded with [`Watch::record`],
/// plans run on Dask workers) at `path`, refused when it exists unless `overwrite`.
///
/// # Errors
/// [`Error::Usage`] when there is no part; the report file's errors.
pub fn write_report(parts: Vec<ReportPart>, path: &Path, overwrite: bool) -> Result<()> {
    let file = crate::exec::ReportFile::new(path, overwrite, &[])?;
    let data = crate::exec::report::merge(parts)
        .ok_or_else(|| Error::Usage("a performance report of no blockwise job".into()))?;
    file.write(&data)
}

/// Refuses a performance report at `report` that would be, or lie inside, what a
/// job reads or writes: `paths` (a conversion's source and destination) and, for
/// a plan, its datasets and working directory. Checked before the job runs.
///
/// # Errors
/// [`Error::InvalidOption`] naming the path it collides with.
pub fn check_report_path(report: &Path, plan: Option<&Plan>, paths: &[&Path]) -> Result<()> {
    let mut all: Vec<&Path> = paths.to_vec();
    if let Some(plan) = plan {
        all.extend(super::common::plan_paths(plan));
    }
    super::common::refuse_job_path(report, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `plan_sql`'s plan, run task by task as a Dask worker runs it (each task's
    /// output published in the working directory), writes what `sql_write` writes,
    /// and leaves no working directory.
    #[test]
    fn a_planned_query_run_task_by_task_equals_the_written_one() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        let mut text = String::from("k,v\n");
        for i in 0..3000 {
            text.push_str(&format!("k{},{}\n", i % 7, i));
        }
        std::fs::write(&csv, text).unwrap();
        let table = format!("read_csv('{}', blocksize=4000)", csv.display());
        let grouped = format!("SELECT k, sum(v) AS s, count(*) AS n FROM {table} GROUP BY k");
        let queries = [
            // Few groups in many buckets: sorted runs of no rows.
            format!("{grouped} ORDER BY s DESC"),
            // Two sorts in one plan: their runs are not one dataset.
            format!("SELECT * FROM ({grouped} ORDER BY k) AS t ORDER BY s DESC"),
            format!("SELECT * FROM {table} WHERE v % 3 = 0 ORDER BY k, v DESC"),
        ];
        for (i, query) in queries.iter().enumerate() {
            let planned = dir.path().join(format!("planned{i}.csv"));
            let plan = Plan::from_json(&plan_sql(query, &planned, &[]).unwrap()).unwrap();
            assert!(plan.tasks.len() > 3, "{} tasks", plan.tasks.len());
            assert!(Path::new(&plan.workdir).is_dir());
            for wave in plan.waves().unwrap() {
                for id in wave {
                    run_task(&plan, id, &[], CancelToken::new())
                        .unwrap_or_else(|e| panic!("{query}: task {id}: {e}"));
                }
            }
            assert!(!Path::new(&plan.workdir).exists());
            let written = dir.path().join(format!("written{i}.csv"));
            let (stats, _) = sql_write(query, &written, &[], CancelToken::new(), &Watch::default());
            stats.unwrap();
            let planned = std::fs::read_to_string(&planned).unwrap();
            assert_eq!(
                planned,
                std::fs::read_to_string(&written).unwrap(),
                "{query}"
            );
            assert_eq!(
                planned.lines().count(),
                if i < 2 { 8 } else { 1001 },
                "{query}"
            );
        }
        // The query's errors come before any directory is made.
        let bad = dir.path().join("bad.csv");
        let e = plan_sql("SELECT nope FROM 'missing.csv'", &bad, &[]).unwrap_err();
        assert!(e.to_string().contains("missing.csv"), "{e}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1 + 2 * queries.len(), "{names:?}");
    }
}
