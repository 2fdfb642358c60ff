//! Options shared by the subcommands that run jobs, and their parsers.

use std::time::Instant;

use clap::Args;

use crate::error::{Error, Result};
use std::path::PathBuf;

use crate::exec::{CancelToken, JobContext, JobOptions, JobStats};
use crate::memory::{
    default_memory_limit, parse_threshold, peak_rss_bytes, SpillCompression, Thresholds,
};

/// `--memory-*`, `--spill-*`, `--threads`, `--no-progress`, `--stats`.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// Memory budget, e.g. 2GiB or 512MB [default: 80% of physical memory; env BLOCKWISE_MEMORY_LIMIT]
    #[arg(long, value_parser = parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Reserved-bytes fraction of the limit above which blocks spill, or off [default: 0.60; env BLOCKWISE_MEMORY_TARGET]
    #[arg(long, value_parser = parse_threshold)]
    pub memory_target: Option<f64>,
    /// RSS fraction of the limit above which blocks spill, or off [default: 0.70; env BLOCKWISE_MEMORY_SPILL]
    #[arg(long, value_parser = parse_threshold)]
    pub memory_spill: Option<f64>,
    /// RSS fraction of the limit above which no new task starts, or off [default: 0.80; env BLOCKWISE_MEMORY_PAUSE]
    #[arg(long, value_parser = parse_threshold)]
    pub memory_pause: Option<f64>,
    /// RSS fraction of the limit at which the job is cancelled, or off [default: 0.95; env BLOCKWISE_MEMORY_TERMINATE]
    #[arg(long, value_parser = parse_threshold)]
    pub memory_terminate: Option<f64>,
    /// Directory for spill files [default: the system temp dir]
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Spill compression: none or zstd[:LEVEL] [default: zstd:1]
    #[arg(long)]
    pub spill_compression: Option<String>,
    /// Worker threads [default: all cores]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Never show a progress bar
    #[arg(long)]
    pub no_progress: bool,
    /// Print one JSON object of statistics on stderr at the end
    #[arg(long)]
    pub stats: bool,
}

impl JobArgs {
    /// The job context these options describe (flags first, then `BLOCKWISE_*`
    /// environment variables, then defaults).
    ///
    /// # Errors
    /// [`Error::Usage`] for bad values; a spill directory that cannot be created.
    pub fn context(&self, cancel: CancelToken) -> Result<JobContext> {
        let memory_limit = match self.memory_limit {
            Some(l) => l,
            None => match std::env::var("BLOCKWISE_MEMORY_LIMIT") {
                Ok(v) => parse_bytes(&v)
                    .map_err(|e| Error::Usage(format!("BLOCKWISE_MEMORY_LIMIT: {e}")))?,
                Err(_) => default_memory_limit(),
            },
        };
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
            if threads == 0 {
                return Err(Error::Usage("--threads must be at least 1".into()));
            }
            options.threads = threads;
        }
        if let Some(dir) = &self.spill_dir {
            options.spill_dir = dir.clone();
        }
        if let Some(text) = &self.spill_compression {
            options.spill_compression = SpillCompression::parse(text)
                .map_err(|e| Error::Usage(format!("--spill-compression: {e}")))?;
        }
        options.progress = !self.no_progress;
        JobContext::new(&options, cancel)
    }

    /// Prints the `--stats` JSON line on stderr when asked for.
    pub fn report(&self, ctx: &JobContext, started: Instant, extra: serde_json::Value) {
        if !self.stats {
            return;
        }
        let mut stats = serde_json::json!({
            "wall_s": started.elapsed().as_secs_f64(),
            "peak_rss_bytes": peak_rss_bytes(),
            "peak_reserved_bytes": ctx.pool.peak_reserved(),
            "read_bytes": JobStats::get(&ctx.stats.read_bytes),
            "written_bytes": JobStats::get(&ctx.stats.written_bytes),
            "tasks": JobStats::get(&ctx.stats.tasks),
            "spilled_bytes": ctx.spill.spilled_bytes() + JobStats::get(&ctx.stats.spilled_bytes),
            "spill_files": ctx.spill.spill_files(),
            "paused_ms": JobStats::get(&ctx.stats.paused_ms),
            "threads": ctx.threads,
            "memory_limit_bytes": ctx.pool.limit(),
        });
        if let (Some(map), serde_json::Value::Object(extra)) = (stats.as_object_mut(), extra) {
            map.extend(extra);
        }
        eprintln!("{stats}");
    }
}

/// Parses a byte size: `1024`, `64KiB`, `256MiB`, `2GiB`, `1.5GB`, `512M`.
///
/// # Errors
/// A message naming the value and the accepted forms.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512MiB or 2GB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
            ))
        }
    };
    Ok((value * scale as f64) as u64)
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
}
