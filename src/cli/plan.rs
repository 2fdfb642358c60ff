//! `blockwise plan convert SRC DST [every convert option] [-o PLAN.json]`: writes the
//! plan of a conversion instead of running it.
//!
//! ```text
//! blockwise plan convert data.csv out.parquet --memory-limit 4GiB -o plan.json
//! blockwise tasks plan.json              # the waves, for a job array or a shell loop
//! blockwise run plan.json                # or run it here
//! blockwise run-task plan.json 0 1 2     # or task by task, anywhere the paths are seen
//! ```
//!
//! The plan is sized for `--memory-limit` and `--threads` (the workers' budget), and
//! names a working directory beside DST where intermediates and the output being
//! written live until the last task publishes it. Nothing is written but the plan and
//! that (empty) working directory, whose existence says the plan has not finished.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::convert::{create_workdir, plan_convert};
use crate::error::{Error, IoResultExt, Result};
use crate::storage::atomic::{AtomicOutput, OutputSpec};

/// Write the plan of a job instead of running it
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// The plan of `blockwise convert SRC DST ...`
    Convert(ConvertArgs),
    /// The plan of `blockwise array EXPR -o OUT ...` (the output is required)
    Array(ArrayArgs),
    /// The plan of `blockwise sql QUERY -o OUT ...` (the output is required)
    Sql(SqlArgs),
}

#[derive(Debug, clap::Args)]
struct SqlArgs {
    #[command(flatten)]
    sql: super::sql::Args,
    /// Write the plan to this file (JSON) instead of standard output
    #[arg(long = "plan", value_name = "PLAN.json")]
    plan: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ArrayArgs {
    #[command(flatten)]
    array: super::array::Args,
    /// Write the plan to this file (JSON) instead of standard output
    #[arg(long = "plan", value_name = "PLAN.json")]
    plan: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ConvertArgs {
    #[command(flatten)]
    convert: super::convert::Args,
    /// Write the plan to this file (JSON) instead of standard output
    #[arg(short = 'o', long = "output", value_name = "PLAN.json")]
    output: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> Result<ExitCode> {
    let args = match args.what {
        What::Convert(args) => args,
        What::Array(args) => return run_array(args),
        What::Sql(args) => return run_sql(args),
    };
    let options = args.convert.options()?;
    let sizing = args.convert.job.sizing()?;
    let plan = plan_convert(&args.convert.src, &args.convert.dst, &options, sizing)
        .map_err(|e| super::common::with_from_hint(e, &args.convert.src))?;
    write_plan(
        &plan,
        args.output.as_deref(),
        options.overwrite,
        &[args.convert.src.as_path()],
    )
}

/// `plan array`: the plan of writing an expression's result to its output.
fn run_array(args: ArrayArgs) -> Result<ExitCode> {
    let Some(dst) = args.array.output() else {
        return Err(Error::Usage(
            "a plan writes its result to a file: give the output with -o OUT.zarr (or .npy)".into(),
        ));
    };
    let (array, options) = args.array.array()?;
    let sizing = args.array.job.sizing()?;
    let plan = crate::convert::plan_array(&array, dst, &options, sizing)?;
    let inputs = array.input_paths();
    let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    write_plan(&plan, args.plan.as_deref(), options.overwrite, &inputs)
}

/// `plan sql`: the plan of writing a query's rows to its output.
fn run_sql(args: SqlArgs) -> Result<ExitCode> {
    let Some(dst) = args.sql.output() else {
        return Err(Error::Usage(
            "a plan writes its result to a file: give the output with -o OUT.parquet (or .csv, \
             .arrow)"
                .into(),
        ));
    };
    let query = args.sql.plan()?;
    let options = args.sql.options()?;
    let sizing = args.sql.job.sizing()?;
    let plan = crate::convert::plan_query_file(&query, dst, &options, sizing)?;
    let inputs = query.inputs();
    let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    write_plan(&plan, args.plan.as_deref(), options.overwrite, &inputs)
}

/// Writes `plan` to `output` (or standard output), then creates its working
/// directory.
fn write_plan(
    plan: &crate::plan::Plan,
    output: Option<&std::path::Path>,
    overwrite: bool,
    inputs: &[&std::path::Path],
) -> Result<ExitCode> {
    let json = plan.to_json()?;
    match output {
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{json}").map_err(|e| Error::io("standard output", e))?;
        }
        Some(path) => {
            let out = AtomicOutput::new(
                path,
                &OutputSpec {
                    format: "plan",
                    single_file: true,
                    overwrite,
                    inputs,
                },
            )?;
            std::fs::write(out.path(), format!("{json}\n")).at(out.path())?;
            out.commit()?;
        }
    }
    // Last: a plan that could not be written leaves nothing.
    create_workdir(plan)?;
    Ok(ExitCode::SUCCESS)
}
