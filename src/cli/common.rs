//! Options shared by the subcommands that run jobs, and their parsers.

use std::time::Instant;

use clap::Args;

use crate::error::{Error, Result};
pub use crate::grid::size::parse_bytes;
use std::path::PathBuf;

use crate::exec::report::report_data;
use crate::exec::{CancelToken, JobContext, JobOptions, JobStats, ReportFile};
use crate::memory::{
    default_memory_limit, parse_threshold, peak_rss_bytes, SpillCompression, Thresholds,
};

/// `--memory-*`, `--spill-*`, `--threads`, `--no-progress`, `--stats`, `--report`.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// Memory budget, e.g. 2GiB or 512MB [default: 80% of physical memory; env BLOCKWISE_MEMORY_LIMIT]
    #[arg(long, value_parser = parse_memory_limit, allow_negative_numbers = true)]
    pub memory_limit: Option<u64>,
    /// Reserved-bytes fraction of the limit above which blocks spill, or off [default: 0.60; env BLOCKWISE_MEMORY_TARGET]
    #[arg(long, value_parser = |s: &str| threshold_option("memory_target", s))]
    pub memory_target: Option<f64>,
    /// RSS fraction of the limit above which blocks spill, or off [default: 0.70; env BLOCKWISE_MEMORY_SPILL]
    #[arg(long, value_parser = |s: &str| threshold_option("memory_spill", s))]
    pub memory_spill: Option<f64>,
    /// RSS fraction of the limit above which no new task starts, or off [default: 0.80; env BLOCKWISE_MEMORY_PAUSE]
    #[arg(long, value_parser = |s: &str| threshold_option("memory_pause", s))]
    pub memory_pause: Option<f64>,
    /// RSS fraction of the limit at which the job is cancelled, or off [default: 0.95; env BLOCKWISE_MEMORY_TERMINATE]
    #[arg(long, value_parser = |s: &str| threshold_option("memory_terminate", s))]
    pub memory_terminate: Option<f64>,
    /// Directory for spill files [default: the system temp dir]
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Spill compression: auto, none or zstd[:LEVEL] [default: auto = none until the spill holds a quarter of its quota, then zstd:1]
    #[arg(long)]
    pub spill_compression: Option<String>,
    /// Worker threads [default: all cores]
    #[arg(long, value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Never show a progress bar
    #[arg(long)]
    pub no_progress: bool,
    /// Print one JSON object of statistics on stderr at the end
    #[arg(long)]
    pub stats: bool,
    /// Write a self-contained HTML report of the run (task stream, progress, memory, a table per operation) to FILE, also when the job fails
    #[arg(long = "report", value_name = "FILE.html")]
    pub report_file: Option<PathBuf>,
    /// Replace the --report file if it exists (convert's --overwrite does too)
    #[arg(long)]
    pub overwrite_report: bool,
}

/// The `--report` option, for its messages.
const REPORT_OPTION: &str = "report";

impl JobArgs {
    /// The job context these options describe (flags first, then `BLOCKWISE_*`
    /// environment variables, then defaults).
    ///
    /// # Errors
    /// [`Error::Usage`] for bad values; a spill directory that cannot be created.
    pub fn context(&self, cancel: CancelToken) -> Result<JobContext> {
        if let Some(path) = &self.report_file {
            return Err(Error::InvalidOption {
                option: REPORT_OPTION,
                value: path.display().to_string(),
                reason: "is written by the commands that run a whole plan (convert, run)".into(),
            });
        }
        self.build_context(cancel)
    }

    /// The job context with its recorder when `--report` is given, and the report's
    /// file, checked before anything runs: it may not exist unless `--overwrite-report`
    /// (or `overwrite`, the command's own) is given, nor be or sit inside any of
    /// `paths` (the job's inputs and outputs).
    ///
    /// # Errors
    /// As [`JobArgs::context`]; [`Error::InvalidOption`] for a report file that
    /// exists and may not be replaced; the destination checks of any output.
    pub fn start(
        &self,
        cancel: CancelToken,
        paths: &[&std::path::Path],
        overwrite: bool,
    ) -> Result<(JobContext, Option<ReportFile>)> {
        let report = match &self.report_file {
            None => None,
            Some(path) => Some({
                refuse_job_path(path, paths)?;
                ReportFile::new(path, overwrite || self.overwrite_report, paths).map_err(|e| {
                    match e {
                        Error::OutputExists { path } => Error::InvalidOption {
                            option: REPORT_OPTION,
                            value: path.display().to_string(),
                            reason: "exists; pass --overwrite-report to replace it".into(),
                        },
                        other => other,
                    }
                })?
            }),
        };
        let ctx = self.build_context(cancel)?;
        Ok(match report {
            Some(report) => (ctx.with_recorder(), Some(report)),
            None => (ctx, None),
        })
    }

    /// Ends a job that ran with [`JobArgs::start`]: writes its report (also when
    /// it failed: a report of a failed job says where it stopped) and prints
    /// `--stats`, both from one reading of the statistics plus what `extra` adds
    /// from the job's result.
    ///
    /// # Errors
    /// The job's error, which comes first; else the report's write errors.
    pub fn finish<T>(
        &self,
        ctx: &JobContext,
        started: Instant,
        report: Option<ReportFile>,
        outcome: Result<T>,
        extra: impl FnOnce(&T) -> serde_json::Value,
    ) -> Result<T> {
        let mut stats = job_stats(ctx, started);
        if let Ok(value) = &outcome {
            if let (Some(map), serde_json::Value::Object(extra)) =
                (stats.as_object_mut(), extra(value))
            {
                map.extend(extra);
            }
        }
        let written = match (report, ctx.recorder()) {
            (Some(report), Some(recorder)) => {
                let data = report_data(
                    recorder,
                    ctx,
                    stats.clone(),
                    command_line(),
                    outcome.as_ref().err(),
                );
                let path = report.path().to_path_buf();
                report.write(&data).map_err(|e| (path, e))
            }
            _ => Ok(()),
        };
        let value = match (outcome, written) {
            (Err(job), Err((path, e))) => {
                // The job's error is what the user must see; the report's is said.
                eprintln!(
                    "blockwise: the report {} was not written: {e}",
                    path.display()
                );
                return Err(job);
            }
            (Err(job), Ok(())) => return Err(job),
            (Ok(_), Err((_, e))) => return Err(e),
            (Ok(value), Ok(())) => value,
        };
        if self.stats {
            eprintln!("{stats}");
        }
        Ok(value)
    }

    /// The job context these options describe, without a report.
    fn build_context(&self, cancel: CancelToken) -> Result<JobContext> {
        let memory_limit = self.memory_limit()?;
        let mut options = JobOptions {
            memory_limit,
            ..JobOptions::default()
        };
        let mut thresholds = Thresholds::default().with_env()?;
        for (flag, field) in [
            (self.memory_target, &mut thresholds.target),
            (self.memory_spill, &mut thresholds.spill),
            (self.memory_pause, &mut thresholds.pause),
            (self.memory_terminate, &mut thresholds.terminate),
        ] {
            if let Some(v) = flag {
                *field = v;
            }
        }
        options.thresholds = thresholds;
        if let Some(threads) = self.threads {
            options.threads = threads;
        }
        if let Some(dir) = &self.spill_dir {
            options.spill_dir = dir.clone();
        }
        if let Some(text) = &self.spill_compression {
            options.spill_compression = SpillCompression::parse(text)?;
        }
        options.progress = !self.no_progress;
        // With `--stats`, stderr is one JSON line that scripts parse: what was
        // reclaimed is counted in it (`reclaimed_bytes`) instead of said.
        options.report_reclaimed = !self.stats;
        JobContext::new(&options, cancel)
    }

    /// The memory limit: the flag, else `BLOCKWISE_MEMORY_LIMIT`, else the default.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a bad environment value.
    pub fn memory_limit(&self) -> Result<u64> {
        Ok(match self.memory_limit {
            Some(l) => l,
            None => match std::env::var("BLOCKWISE_MEMORY_LIMIT") {
                Ok(v) => memory_limit_option("BLOCKWISE_MEMORY_LIMIT", &v)?,
                Err(_) => default_memory_limit(),
            },
        })
    }

    /// What a plan is sized for: the memory limit and the threads these options
    /// give, without starting a job.
    ///
    /// # Errors
    /// As [`JobArgs::memory_limit`].
    pub fn sizing(&self) -> Result<crate::convert::PlanSizing> {
        // Only a command that runs the plan has a run to report.
        if let Some(path) = &self.report_file {
            return Err(Error::InvalidOption {
                option: REPORT_OPTION,
                value: path.display().to_string(),
                reason: "reports a run; pass it to `blockwise run` with the plan".into(),
            });
        }
        self.planned_sizing()
    }

    /// What a plan is sized for, whatever else the options say.
    ///
    /// # Errors
    /// As [`JobArgs::memory_limit`].
    pub fn planned_sizing(&self) -> Result<crate::convert::PlanSizing> {
        Ok(crate::convert::PlanSizing {
            threads: self
                .threads
                .unwrap_or_else(|| JobOptions::default().threads)
                .max(1),
            memory_limit: self.memory_limit()?,
        })
    }
}

/// The statistics of a finished job: the `--stats` line, and what the Python
/// bindings return.
pub fn job_stats(ctx: &JobContext, started: Instant) -> serde_json::Value {
    serde_json::json!({
        "wall_s": started.elapsed().as_secs_f64(),
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_reserved_bytes": ctx.pool.peak_reserved(),
        "read_bytes": JobStats::get(&ctx.stats.read_bytes),
        "written_bytes": JobStats::get(&ctx.stats.written_bytes),
        "tasks": JobStats::get(&ctx.stats.tasks),
        "skipped_tasks": JobStats::get(&ctx.stats.skipped_tasks),
        "reclaimed_bytes": JobStats::get(&ctx.stats.reclaimed_bytes),
        "spilled_bytes": ctx.spill.spilled_bytes() + JobStats::get(&ctx.stats.spilled_bytes),
        "spill_files": ctx.spill.spill_files(),
        "paused_ms": JobStats::get(&ctx.stats.paused_ms),
        "threads": ctx.threads,
        "memory_limit_bytes": ctx.pool.limit(),
    })
}

/// This process's command line, as a shell would take it back (arguments that
/// need it quoted), for the report.
fn command_line() -> String {
    std::env::args_os()
        .map(|a| {
            let a = a.to_string_lossy().into_owned();
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Most worker threads `--threads` accepts: far past any core count, and short of
/// what would exhaust the process's thread and stack limits.
const MAX_THREADS: usize = 1024;

/// [`parse_bytes`] for the option (or environment variable) `option`.
///
/// # Errors
/// [`Error::InvalidOption`] naming `option`.
pub fn size_option(option: &'static str, text: &str) -> Result<u64> {
    parse_bytes(text).map_err(|reason| Error::InvalidOption {
        option,
        value: text.to_string(),
        reason,
    })
}

/// Parses `--memory-limit`.
///
/// # Errors
/// [`Error::InvalidOption`].
pub fn parse_memory_limit(text: &str) -> Result<u64> {
    memory_limit_option("memory_limit", text)
}

/// The smallest memory limit accepted: room for a few batches of a narrow table. Below
/// it every job would fail, so the value is refused where it is given.
const MIN_MEMORY_LIMIT: u64 = 64 << 10;

/// Parses a memory limit (the flag or `BLOCKWISE_MEMORY_LIMIT`): a size of at least
/// [`MIN_MEMORY_LIMIT`].
fn memory_limit_option(option: &'static str, text: &str) -> Result<u64> {
    let bytes = size_option(option, text)?;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(Error::InvalidOption {
            option,
            value: text.to_string(),
            reason: format!("must be at least {MIN_MEMORY_LIMIT} bytes (64KiB)"),
        });
    }
    Ok(bytes)
}

/// Parses a `--memory-*` threshold: a fraction in (0, 1], or `off`.
fn threshold_option(option: &'static str, text: &str) -> Result<f64> {
    parse_threshold(text).map_err(|reason| Error::InvalidOption {
        option,
        value: text.to_string(),
        reason,
    })
}

/// Parses `--blocksize`.
///
/// # Errors
/// [`Error::InvalidOption`].
pub fn parse_blocksize(text: &str) -> Result<u64> {
    size_option("blocksize", text)
}

/// Parses a count that must be at least 1 (and at most `max`).
fn count_option(option: &'static str, text: &str, max: usize) -> Result<usize> {
    let invalid = |reason: String| Error::InvalidOption {
        option,
        value: text.to_string(),
        reason,
    };
    match text.trim().parse::<u64>() {
        Ok(0) => Err(invalid("must be at least 1".into())),
        Ok(n) if n > max as u64 => Err(invalid(format!("must be at most {max}"))),
        Ok(n) => Ok(n as usize),
        Err(_) => Err(invalid("is not a whole number".into())),
    }
}

/// Parses `--threads`: 1 to 1024.
///
/// # Errors
/// [`Error::InvalidOption`].
pub fn parse_threads(text: &str) -> Result<usize> {
    count_option("threads", text, MAX_THREADS)
}

/// Parses `--row-group-size`: rows per Parquet row group, at least 1.
///
/// # Errors
/// [`Error::InvalidOption`].
pub fn parse_row_group_size(text: &str) -> Result<usize> {
    count_option("row_group_size", text, i64::MAX as usize)
}

/// Parses one `--row-groups` index: a whole number from 0.
///
/// # Errors
/// [`Error::InvalidOption`].
pub fn parse_row_group(text: &str) -> Result<usize> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| Error::InvalidOption {
            option: "row_groups",
            value: text.to_string(),
            reason: "is not a row group index; write indices from 0, comma-separated, \
                     e.g. 0,2"
                .into(),
        })
}

/// Parses `--delimiter`: one ASCII character, or `\t` / `tab` for a tab. A
/// newline, a carriage return, the quote character `"` and other control
/// characters are refused: they would make every row ambiguous.
///
/// # Errors
/// [`Error::InvalidOption`] saying which rule the value breaks.
pub fn parse_delimiter(text: &str) -> Result<u8> {
    let invalid = |reason: &str| Error::InvalidOption {
        option: "delimiter",
        value: text.to_string(),
        reason: reason.into(),
    };
    let byte = match text {
        "\\t" | "tab" => return Ok(b'\t'),
        "" => return Err(invalid("is empty; give one character, e.g. , or ; or \\t")),
        t if t.chars().count() > 1 => return Err(invalid("must be one character (\\t for a tab)")),
        t if !t.is_ascii() => return Err(invalid("must be an ASCII character")),
        t => t.as_bytes()[0],
    };
    match byte {
        b'\n' | b'\r' => Err(invalid("a line break cannot separate fields")),
        b'"' => Err(invalid("the quote character cannot separate fields")),
        b'\t' => Ok(b'\t'),
        b if b.is_ascii_control() => Err(invalid("must be a printable character or \\t")),
        b => Ok(b),
    }
}

/// Adds to an unknown-format error on the input `src` that `--from` names its
/// format (a library error names no flag; the command line adds that).
pub fn with_from_hint(e: Error, src: &std::path::Path) -> Error {
    match e {
        Error::UnknownFormat { path, hint } if path == src && !path.is_dir() => {
            let _ = hint;
            Error::UnknownFormat {
                path,
                hint: format!(
                    "pass --from FORMAT to name the input's format ({}; --to names the \
                     output's), or give it an extension",
                    crate::storage::Format::ALL
                        .map(crate::storage::Format::name)
                        .join(", ")
                ),
            }
        }
        Error::UnknownFormat { path, hint } if path == src => Error::UnknownFormat {
            path,
            hint: format!("{hint}; or pass --from FORMAT to name the input's format"),
        },
        other => other,
    }
}

/// What a plan reads and writes, and its working directory: the paths a report
/// may not be nor lie inside.
pub(super) fn plan_paths(plan: &crate::plan::Plan) -> Vec<&std::path::Path> {
    let mut paths: Vec<&std::path::Path> = plan
        .datasets
        .iter()
        .filter(|d| !d.path.is_empty())
        .map(|d| std::path::Path::new(&d.path))
        .collect();
    if !plan.workdir.is_empty() {
        paths.push(std::path::Path::new(&plan.workdir));
    }
    paths
}

/// `path` absolute, its directory resolved (symbolic links, `..`) and its name
/// kept: two spellings of one destination compare equal before either exists.
fn resolved(path: &std::path::Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => dir.canonicalize().map_or(abs.clone(), |d| d.join(name)),
        _ => abs,
    }
}

/// Refuses a report file that is one of the job's `paths` (inputs, outputs, a
/// plan's working directory) or lies inside one, by name: an output does not
/// exist yet when the job starts, so the file checks cannot see it.
///
/// # Errors
/// [`Error::InvalidOption`] naming the path it collides with.
pub(super) fn refuse_job_path(report: &std::path::Path, paths: &[&std::path::Path]) -> Result<()> {
    let mine = resolved(report);
    for path in paths {
        let theirs = resolved(path);
        if mine == theirs || mine.starts_with(&theirs) {
            return Err(Error::InvalidOption {
                option: REPORT_OPTION,
                value: report.display().to_string(),
                reason: format!(
                    "is or lies inside {}, which the job reads or writes; choose another file",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }

    #[test]
    fn hostile_sizes_are_refused() {
        for bad in [
            "0",
            "0GB",
            "-1",
            "1e99GB",
            "NaN",
            "inf",
            "",
            "99999999999999999999TB",
            ".",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad} was accepted");
        }
        let e = parse_memory_limit("0").unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidOption {
                option: "memory_limit",
                ..
            }
        ));
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn counts_must_be_positive() {
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("-3").is_err());
        assert!(parse_threads("100000").is_err());
        assert_eq!(parse_threads("4").unwrap(), 4);
        assert!(parse_row_group_size("0").is_err());
        assert_eq!(parse_row_group("0").unwrap(), 0);
        for bad in ["", "-1", "a", "99999999999999999999999", "1.5"] {
            assert!(matches!(
                parse_row_group(bad),
                Err(Error::InvalidOption {
                    option: "row_groups",
                    ..
                })
            ));
        }
        assert_eq!(parse_row_group_size("10").unwrap(), 10);
    }

    #[test]
    fn delimiters_are_one_safe_ascii_character() {
        assert_eq!(parse_delimiter(";").unwrap(), b';');
        assert_eq!(parse_delimiter("\\t").unwrap(), b'\t');
        assert_eq!(parse_delimiter("\t").unwrap(), b'\t');
        for bad in ["", ";;", "é", "\n", "\r", "\"", "\u{0}"] {
            let e = parse_delimiter(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidOption {
                        option: "delimiter",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
