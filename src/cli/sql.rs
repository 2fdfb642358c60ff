//! `blockwise sql "QUERY"`: a SQL query over table files (DuckDB's dialect, see
//! [`crate::sql`]), printed as a table or written to a file.
//!
//! ```text
//! blockwise sql "SELECT id1, sum(v1) FROM 'data.csv' GROUP BY id1" [-o OUT] [--max-rows 40]
//! ```
//!
//! Without `-o`, the first `--max-rows` rows print as `head` prints a table, and a
//! line says when there are more; only those rows (and one more) are computed
//! when the query allows it. With `-o`, every row is written, to Parquet, CSV or
//! Arrow IPC by the extension (or `--to`), atomically.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::common::JobArgs;
use super::head::{print_piece, Out};
use crate::convert::{query, write_query, Compression, ConvertOptions};
use crate::error::Result;
use crate::exec::CancelToken;
use crate::frame::logical::LogicalPlan;

/// Run a SQL query over CSV, Parquet and Arrow files
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The query, e.g. "SELECT id1, sum(v1) FROM 'data.csv' GROUP BY id1"
    #[arg(allow_hyphen_values = true)]
    query: String,
    /// Write every row here (.parquet, .csv, .arrow) instead of printing
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Output format: parquet, parquet-dir, csv, ipc [default: from OUT's extension]
    #[arg(long)]
    to: Option<String>,
    /// Output compression: zstd[:LEVEL], lz4 (ipc) or none [default: zstd:3 for parquet]
    #[arg(long)]
    compression: Option<String>,
    /// Replace OUT if it exists
    #[arg(long)]
    overwrite: bool,
    /// Rows printed at most without -o
    #[arg(long, default_value_t = 40)]
    max_rows: u64,
    #[command(flatten)]
    pub(super) job: JobArgs,
}

impl Args {
    /// The query's logical plan.
    ///
    /// # Errors
    /// The SQL front end's errors.
    pub(super) fn plan(&self) -> Result<LogicalPlan> {
        crate::sql::plan_query(&self.query)
    }

    /// The output options.
    ///
    /// # Errors
    /// A format or compression that does not parse.
    pub(super) fn options(&self) -> Result<ConvertOptions> {
        Ok(ConvertOptions {
            to: self
                .to
                .as_deref()
                .map(crate::storage::Format::parse)
                .transpose()?,
            compression: self
                .compression
                .as_deref()
                .map(Compression::parse)
                .transpose()?,
            overwrite: self.overwrite,
            ..ConvertOptions::default()
        })
    }

    /// The output path, when one is given.
    pub(super) fn output(&self) -> Option<&std::path::Path> {
        self.output.as_deref()
    }
}

pub(super) fn run(args: Args, cancel: CancelToken) -> Result<ExitCode> {
    let started = Instant::now();
    let plan = args.plan()?;
    let options = args.options()?;
    let paths = plan.inputs();
    let mut refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    refs.extend(args.output.as_deref());
    let (ctx, report_file) = args.job.start(cancel, &refs, args.overwrite)?;
    match &args.output {
        Some(out) => {
            let outcome = write_query(&plan, out, &options, &ctx);
            args.job.finish(&ctx, started, report_file, outcome, |_| {
                serde_json::json!({})
            })?;
        }
        None => {
            // One row more than is shown says whether there are more.
            let limited = LogicalPlan::Limit {
                input: Box::new(plan),
                offset: 0,
                fetch: Some(args.max_rows.saturating_add(1)),
            };
            let outcome = query(&limited, &ctx);
            let (schema, batches) =
                args.job
                    .finish(&ctx, started, report_file, outcome, |(_, batches)| {
                        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                        serde_json::json!({ "rows_printed": rows })
                    })?;
            print(&schema, &batches, args.max_rows)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints at most `max` rows of `batches` as a table, and says when there are
/// more.
fn print(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::record_batch::RecordBatch],
    max: u64,
) -> Result<()> {
    let mut out = Out {
        w: std::io::BufWriter::new(std::io::stdout().lock()),
        closed: false,
    };
    let total: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let mut left = max;
    let mut shown = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let n = (b.num_rows() as u64).min(left);
        shown.push(b.slice(0, n as usize));
        left -= n;
    }
    if shown.is_empty() {
        shown.push(arrow::record_batch::RecordBatch::new_empty(schema.clone()));
    }
    let mut printed_header = false;
    print_piece(&shown, &mut printed_header, &mut out)?;
    if total > max {
        out.print(&format!(
            "(the first {max} rows; there are more: --max-rows N shows more, -o OUT writes them all)\n"
        ))?;
    }
    out.flush()
}
