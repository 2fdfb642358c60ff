//! The command line: one subcommand a file, each with its usage text at the top.

mod common;
mod convert;
mod head;
mod info;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;
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
    Convert(convert::Args),
    Info(info::Args),
    Head(head::Args),
}

/// Parses the arguments and runs the subcommand. `cancel` is set by the Ctrl-C
/// handler.
///
/// # Errors
/// The subcommand's error; the caller prints it and picks the exit code.
pub fn run(cancel: CancelToken) -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Convert(args) => convert::run(args, cancel),
        Command::Info(args) => info::run(args),
        Command::Head(args) => head::run(args),
    }
}
