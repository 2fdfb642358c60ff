//! `blockwise run PLAN.json [--threads N] [--memory-limit ...] [--stats] [--no-progress]
//! [--report FILE.html [--overwrite-report]]`: runs a plan on the local executor.
//!
//! Tasks whose outputs a previous run published (it was killed, or failed) are
//! skipped: the run resumes where the last one stopped. After success the plan's
//! working directory is removed; after a failure or Ctrl-C only its temporary files
//! are, and the finished work stays for the next run. A plan that already ran to the
//! end does nothing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::common::JobArgs;
use crate::convert::{already_published, run_plan, OnFailure};
use crate::error::{IoResultExt, Result};
use crate::exec::{CancelToken, JobStats};
use crate::plan::Plan;

/// Run a plan written by `blockwise plan`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan (JSON)
    plan: PathBuf,
    #[command(flatten)]
    job: JobArgs,
}

/// Largest plan file read: far past any plan blockwise writes (a million tasks take
/// about 400 MB), short of reading a stray multi-gigabyte file into memory.
const MAX_PLAN_BYTES: u64 = 1 << 30;

/// Reads and checks the plan at `path`.
///
/// # Errors
/// [`crate::Error::NotFound`]; [`crate::Error::BadPlan`] for a file that is not a
/// plan this blockwise runs.
pub(super) fn read_plan(path: &std::path::Path) -> Result<Plan> {
    let meta = std::fs::metadata(path).at(path)?;
    crate::storage::check_input_kind(path, &meta)?;
    if meta.is_dir() {
        return Err(crate::Error::BadPlan {
            reason: format!("{} is a directory, not a plan file", path.display()),
        });
    }
    if meta.len() > MAX_PLAN_BYTES {
        return Err(crate::Error::BadPlan {
            reason: format!(
                "{} holds {} bytes; a plan is at most {MAX_PLAN_BYTES}",
                path.display(),
                meta.len()
            ),
        });
    }
    // A plan is a JSON object: a file that does not start like one is refused from
    // its first bytes, not after reading up to a gigabyte of it.
    let mut head = [0u8; 4096];
    let n = {
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .at(path)?
    };
    let first = head[..n].iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(crate::Error::BadPlan {
            reason: format!(
                "{} is not a plan: a plan is a JSON object, starting with '{{'",
                path.display()
            ),
        });
    }
    let text = std::fs::read(path).at(path)?;
    let text = String::from_utf8(text).map_err(|_| crate::Error::BadPlan {
        reason: format!("{} is not UTF-8 text", path.display()),
    })?;
    Plan::from_json(&text).map_err(|e| match e {
        crate::Error::BadPlan { reason } => crate::Error::BadPlan {
            reason: format!("{}: {reason}", path.display()),
        },
        other => other,
    })
}

/// Holds an exclusive lock on the plan file for this run, waiting while another
/// `run` of it holds one: two runs of one plan at once would remove the working
/// directory under each other. The second then finds the plan done, or resumes it.
/// The lock is the file's own (nothing is created), released when the file closes.
/// The wait is said on stderr when `say`.
///
/// # Errors
/// The file's open errors; the token's when cancelled while waiting.
fn lock_plan(path: &std::path::Path, say: bool, cancel: &CancelToken) -> Result<std::fs::File> {
    let file = std::fs::File::open(path).at(path)?;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            // A file system without locks (some network mounts): run unguarded, as
            // before locks were taken.
            Err(std::fs::TryLockError::Error(_)) => return Ok(file),
        }
        if say && !said {
            eprintln!(
                "blockwise: {} is being run by another process; waiting for it",
                path.display()
            );
            said = true;
        }
        cancel.check()?;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub(super) fn run(args: Args, cancel: CancelToken) -> Result<ExitCode> {
    let started = Instant::now();
    let plan = read_plan(&args.plan)?;
    // Operations are checked before anything is set up.
    crate::convert::registry().prepare(&plan)?;
    let _lock = lock_plan(&args.plan, !args.job.stats, &cancel)?;
    // The report may be none of what the plan reads or writes.
    let mut paths = super::common::plan_paths(&plan);
    paths.push(args.plan.as_path());
    let (ctx, report_file) = args.job.start(cancel, &paths, false)?;
    if let Some(recorder) = ctx.recorder() {
        recorder.plan(&plan);
    }
    if already_published(&plan) {
        // Said, since it cannot be told from a DST that appeared by other means
        // before this plan ever ran: nothing here was written. (`--stats` says it by
        // its skipped_tasks, and stderr is then one JSON line.)
        if !args.job.stats {
            eprintln!(
                "blockwise: {} names an output that exists and a working directory that \
                 does not: it ran to the end already; nothing to do",
                args.plan.display()
            );
        }
        JobStats::add(&ctx.stats.skipped_tasks, plan.tasks.len() as u64);
        if let Some(recorder) = ctx.recorder() {
            recorder.skip_all();
        }
        args.job.finish(
            &ctx,
            started,
            report_file,
            Ok(()),
            |_| serde_json::json!({}),
        )?;
    } else {
        let outcome = run_plan(&plan, &ctx, OnFailure::KeepForResume);
        args.job.finish(&ctx, started, report_file, outcome, |_| {
            serde_json::json!({})
        })?;
    }
    Ok(ExitCode::SUCCESS)
}
