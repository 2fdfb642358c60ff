//! The command line: one subcommand a file, each with its usage text at the top.

pub(crate) mod array;
mod common;
mod convert;
pub mod embed;
mod explain;
mod head;
mod info;

pub use info::describe;
mod plan;
mod run;
mod run_task;
mod sql;
mod tasks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::exec::CancelToken;

/// blockwise: convert and inspect chunked arrays and tables larger than memory.
#[derive(Debug, Parser)]
#[command(name = "blockwise", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    Array(array::Args),
    Convert(convert::Args),
    Explain(explain::Args),
    Info(info::Args),
    Head(head::Args),
    Plan(plan::Args),
    Run(run::Args),
    RunTask(run_task::Args),
    Sql(sql::Args),
    Tasks(tasks::Args),
}

/// Parses the arguments and runs the subcommand. `cancel` is set by the Ctrl-C
/// handler.
///
/// # Errors
/// The subcommand's error; the caller prints it and picks the exit code.
pub fn run(cancel: CancelToken) -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A value our parsers refused is reported like any other error (our message,
        // exit 2); everything else (help, version, unknown flags) is clap's.
        Err(e) => match option_error(&e) {
            Some(ours) => return Err(ours),
            None => e.exit(),
        },
    };
    match cli.command {
        Command::Array(args) => array::run(args, cancel),
        Command::Convert(args) => convert::run(args, cancel),
        Command::Explain(args) => explain::run(args),
        Command::Info(args) => info::run(args),
        Command::Head(args) => head::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Run(args) => run::run(args, cancel),
        Command::RunTask(args) => run_task::run(args, cancel),
        Command::Sql(args) => sql::run(args, cancel),
        Command::Tasks(args) => tasks::run(args),
    }
}

/// The [`Error::InvalidOption`] a value parser returned, out of clap's error.
fn option_error(e: &clap::Error) -> Option<Error> {
    match std::error::Error::source(e)?.downcast_ref::<Error>()? {
        Error::InvalidOption {
            option,
            value,
            reason,
        } => Some(Error::InvalidOption {
            option,
            value: value.clone(),
            reason: reason.clone(),
        }),
        Error::Usage(text) => Some(Error::Usage(text.clone())),
        _ => None,
    }
}
