//! `blockwise tasks PLAN.json`: prints the plan's waves, one line a wave, task ids
//! separated by spaces. Every task's dependencies are in earlier lines, so a shell
//! loop or a job array can run one line at a time, each id with `run-task`:
//!
//! ```text
//! blockwise tasks plan.json | while read -r wave; do
//!     printf '%s\n' $wave | xargs -P 4 -n 1 blockwise run-task plan.json
//! done
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::{Error, Result};

/// Print a plan's tasks in waves
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan (JSON)
    plan: PathBuf,
}

pub(super) fn run(args: Args) -> Result<ExitCode> {
    let plan = super::run::read_plan(&args.plan)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for wave in plan.waves()? {
        let ids: Vec<String> = wave.iter().map(u32::to_string).collect();
        writeln!(out, "{}", ids.join(" ")).map_err(|e| Error::io("standard output", e))?;
    }
    out.flush().map_err(|e| Error::io("standard output", e))?;
    Ok(ExitCode::SUCCESS)
}
