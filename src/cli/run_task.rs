//! `blockwise run-task PLAN.json ID [ID ...]`: runs those tasks of a plan in this
//! process, against the plan's working directory (every intermediate a file), and
//! prints one JSON line a task:
//!
//! ```text
//! {"id":3,"op":"sort_run","seconds":0.41,"read_bytes":16777216,"written_bytes":9120113,"peak_reserved_bytes":50331648,"skipped":false}
//! ```
//!
//! A task's dependencies must have run (in any process: `blockwise tasks` gives the
//! order); a task whose output is already published is skipped. Two processes may run
//! the same task at once: both finish, with one output. When the plan's last task
//! has run, its working directory is removed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::common::JobArgs;
use crate::convert::{already_published, directory_store, finish_if_complete, registry};
use crate::error::{Error, Result};
use crate::exec::{run_task, CancelToken, TaskReport};
use crate::plan::Resources;

/// Run tasks of a plan in this process
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan (JSON)
    plan: PathBuf,
    /// Task ids
    #[arg(required = true, value_name = "ID", value_parser = task_id)]
    ids: Vec<u32>,
    #[command(flatten)]
    job: JobArgs,
}

/// A task id: clap's own message for a u32 out of range spells a Rust range.
fn task_id(text: &str) -> std::result::Result<u32, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a task id (a whole number from 0)"))
}

pub(super) fn run(args: Args, cancel: CancelToken) -> Result<ExitCode> {
    let plan = super::run::read_plan(&args.plan)?;
    for &id in &args.ids {
        if plan.tasks.get(id as usize).is_none() {
            return Err(Error::BadPlan {
                reason: format!(
                    "{} has no task {id} (its tasks are 0 to {})",
                    args.plan.display(),
                    plan.tasks.len().saturating_sub(1)
                ),
            });
        }
    }
    let mut out = std::io::stdout().lock();
    let mut print = |report: &TaskReport| -> Result<()> {
        let line =
            serde_json::to_string(report).map_err(|e| Error::bug("task report to JSON", e))?;
        writeln!(out, "{line}").map_err(|e| Error::io("standard output", e))
    };
    if already_published(&plan) {
        for &id in &args.ids {
            print(&TaskReport {
                id,
                op: plan.tasks[id as usize].op.name.clone(),
                seconds: 0.0,
                read_bytes: 0,
                written_bytes: 0,
                peak_reserved_bytes: 0,
                skipped: true,
            })?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = args.job.context(cancel)?;
    let store = directory_store(&plan)?;
    let resources = Resources::default();
    let env = ctx.environment(&store, &resources);
    for &id in &args.ids {
        let result = ctx.install(|| run_task(&plan, registry(), id, &env, &ctx.cancel, &[]));
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                store.remove_temporaries();
                return Err(e);
            }
        };
        print(&report)?;
    }
    finish_if_complete(&plan, &store);
    Ok(ExitCode::SUCCESS)
}
