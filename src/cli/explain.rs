//! `blockwise explain PLAN.json [run's options] [--dot | --json]` and
//! `blockwise explain convert SRC DST [convert's options] [--dot | --json]` and
//! `blockwise explain array EXPR [array's options]`: what a plan will do, before it
//! runs.
//!
//! ```text
//! blockwise explain convert big.csv sorted.parquet --sort-by v3 --memory-limit 256MiB
//! blockwise explain plan.json --memory-limit 4GiB --json
//! blockwise explain plan.json --dot | dot -Tsvg > plan.svg
//! ```
//!
//! Prints the plan's stages (the tasks of one operation into one dataset), what
//! each may hold at once against the memory limit, which spill, what is read and
//! written, and the critical path. Nothing is read but the plan (or, for `explain
//! convert`, the source's metadata, as `blockwise plan` reads it) and nothing is
//! written.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::common::JobArgs;
use crate::convert::plan_convert;
use crate::error::{Error, Result};
use crate::plan::PlanSummary;

/// Say what a plan will do: its stages, memory and spilling, before it runs
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// The plan (JSON), as `blockwise plan` writes it
    #[arg(required = true)]
    plan: Option<PathBuf>,
    /// The options `blockwise run` would be given (the threads and the memory limit
    /// the projection is compared with)
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Explain `blockwise convert SRC DST ...`
    Convert(ConvertArgs),
    /// Explain `blockwise array EXPR ...` (with -o OUT, the plan writing it)
    Array(ArrayArgs),
    /// Explain `blockwise sql QUERY ...` (with -o OUT, the plan writing it)
    Sql(SqlArgs),
}

#[derive(Debug, clap::Args)]
struct SqlArgs {
    #[command(flatten)]
    sql: super::sql::Args,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
struct ArrayArgs {
    #[command(flatten)]
    array: super::array::Args,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
struct ConvertArgs {
    #[command(flatten)]
    convert: super::convert::Args,
    #[command(flatten)]
    output: OutputArgs,
}

/// How the summary is printed.
#[derive(Debug, Clone, Copy, clap::Args)]
struct OutputArgs {
    /// Print the stage graph in Graphviz's language instead of a table
    #[arg(long, conflicts_with = "json")]
    dot: bool,
    /// Print the summary as JSON instead of a table
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> Result<ExitCode> {
    let (plan, sizing, output) = match args.what {
        Some(What::Convert(args)) => {
            let options = args.convert.options()?;
            let sizing = args.convert.job.sizing()?;
            let plan = plan_convert(&args.convert.src, &args.convert.dst, &options, sizing)
                .map_err(|e| super::common::with_from_hint(e, &args.convert.src))?;
            (plan, sizing, args.output)
        }
        Some(What::Array(args)) => {
            let (array, options) = args.array.array()?;
            let sizing = args.array.job.sizing()?;
            let plan = match args.array.output() {
                Some(dst) => crate::convert::plan_array(&array, dst, &options, sizing)?,
                None => crate::convert::plan_array_compute(&array, sizing)?.0,
            };
            (plan, sizing, args.output)
        }
        Some(What::Sql(args)) => {
            let query = args.sql.plan()?;
            let options = args.sql.options()?;
            let sizing = args.sql.job.sizing()?;
            let plan = match args.sql.output() {
                Some(dst) => crate::convert::plan_query_file(&query, dst, &options, sizing)?,
                None => crate::convert::plan_query(&query, sizing)?.0,
            };
            (plan, sizing, args.output)
        }
        None => {
            let path = args.plan.ok_or_else(|| {
                Error::Usage("explain: give a plan file, or `convert SRC DST ...`".into())
            })?;
            let plan = super::run::read_plan(&path)?;
            // What `run` would refuse (an unknown operation or version, parameters
            // that do not fit) is refused here too, with the same message.
            crate::convert::registry().prepare(&plan)?;
            (plan, args.job.sizing()?, args.output)
        }
    };
    let summary = PlanSummary::of(
        &plan,
        crate::convert::registry(),
        sizing.threads,
        sizing.memory_limit,
    )?;
    let text = if output.json {
        let mut json = serde_json::to_string_pretty(&summary)
            .map_err(|e| Error::bug("plan summary to JSON", e))?;
        json.push('\n');
        json
    } else if output.dot {
        summary.to_dot()
    } else {
        summary.to_text()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("standard output", e))?;
    Ok(ExitCode::SUCCESS)
}
