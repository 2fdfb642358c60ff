//! `blockwise convert SRC DST`: copy a dataset into another format, streaming.
//!
//! ```text
//! blockwise convert SRC DST [--from FORMAT] [--to FORMAT] [--chunks 1000,1000|auto]
//!     [--compression zstd[:LEVEL]|lz4|none] [--blocksize 64MiB] [--row-group-size N]
//!     [--columns a,b] [--row-groups 0,2] [--dtype col=TYPE]... [--delimiter ,] [--overwrite]
//!     [--memory-limit 2GiB] [--threads N] [--no-progress] [--stats]
//!     [--report FILE.html [--overwrite-report]]
//! ```
//!
//! Tables (csv, parquet, ipc) convert to tables in every direction; arrays (npy, npy
//! stack, zarr) to arrays; numeric columns of a table to a 2-D array; a 1-D or 2-D
//! array to a table with columns `c0, c1, …`. The output is written under a
//! temporary name and renamed at the end.
//!
//! Every option's value is checked as it is parsed (sizes and counts at least 1, a
//! delimiter one printable ASCII character), and an option that does not apply to
//! the formats converted is refused rather than ignored.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

pub use super::common::parse_delimiter;
use super::common::{
    parse_blocksize, parse_row_group, parse_row_group_size, with_from_hint, JobArgs,
};
use crate::convert::{convert, ChunkSpec, Compression, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::CancelToken;
use crate::storage::frame::FrameReadOptions;
use crate::storage::{parse_type_name, Format};

/// Convert a dataset to another format
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input: a file or a directory (Zarr array, npy stack, Parquet parts)
    pub(super) src: PathBuf,
    /// Output path
    pub(super) dst: PathBuf,
    /// Input format: csv, parquet, ipc, npy, npy-stack, zarr [default: from SRC's contents and extension]
    #[arg(long)]
    from: Option<String>,
    /// Output format: csv, parquet, ipc, npy, npy-stack, zarr [default: from DST's extension]
    #[arg(long)]
    to: Option<String>,
    /// Output chunk shape, e.g. 1000,1000, or auto (about 64 MiB a chunk)
    #[arg(long)]
    chunks: Option<String>,
    /// Output compression: zstd[:LEVEL], lz4 (ipc) or none [default: zstd:3 for parquet and zarr]
    #[arg(long)]
    compression: Option<String>,
    /// Bytes per CSV partition read in parallel [default: 64MiB]
    #[arg(long, value_parser = parse_blocksize)]
    blocksize: Option<u64>,
    /// Rows per Parquet row group [default: 1048576]
    #[arg(long, value_parser = parse_row_group_size, allow_negative_numbers = true)]
    row_group_size: Option<usize>,
    /// Read only these columns, in this order (comma-separated)
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Read only these Parquet row groups (comma-separated indices, counted across the
    /// parts of a directory)
    #[arg(long, value_delimiter = ',', value_parser = parse_row_group, allow_negative_numbers = true)]
    row_groups: Option<Vec<usize>>,
    /// Force a CSV column's type, e.g. --dtype price=float64 (repeatable)
    #[arg(long = "dtype", value_name = "COL=TYPE")]
    dtypes: Vec<String>,
    /// CSV field delimiter (one character; `\t` for tabs) [default: ,]
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Sort a table: col[:desc][,col2[:asc]...] (spills sorted runs when memory is short)
    #[arg(long)]
    sort_by: Option<String>,
    /// Replace DST if it exists
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    pub(super) job: JobArgs,
}

/// Parses the `--dtype COL=TYPE` list.
pub fn parse_dtypes(items: &[String]) -> Result<Vec<(String, arrow::datatypes::DataType)>> {
    items
        .iter()
        .map(|item| {
            let invalid = |reason: String| Error::InvalidOption {
                option: "dtype",
                value: item.clone(),
                reason,
            };
            let (col, ty) = item
                .split_once('=')
                .ok_or_else(|| invalid("write COLUMN=TYPE, e.g. price=float64".into()))?;
            let dtype = parse_type_name(ty).map_err(|e| match e {
                Error::UnknownName { known, .. } => invalid(format!("the types are {known}")),
                other => other,
            })?;
            Ok((col.to_string(), dtype))
        })
        .collect()
}

/// `--blocksize` cuts CSV input; for any other input it would be silently ignored.
/// (A source whose format cannot be told is reported by the conversion itself.)
fn check_blocksize_applies(args: &Args, blocksize: u64) -> Result<()> {
    let from = match args.from.as_deref() {
        Some(name) => Format::parse(name)?,
        None => match crate::storage::detect(&args.src) {
            Ok(format) => format,
            Err(_) => return Ok(()),
        },
    };
    if from == Format::Csv {
        return Ok(());
    }
    Err(Error::InvalidOption {
        option: "blocksize",
        value: blocksize.to_string(),
        reason: format!(
            "cuts CSV input into partitions; {} input is read by its own {}",
            from.name(),
            if from == Format::Parquet {
                "row groups"
            } else {
                "chunks or batches"
            }
        ),
    })
}

pub(super) fn run(args: Args, cancel: CancelToken) -> Result<ExitCode> {
    let started = Instant::now();
    let options = args.options()?;
    let (ctx, report_file) = args
        .job
        .start(cancel, &[&args.src, &args.dst], args.overwrite)?;
    let outcome =
        convert(&args.src, &args.dst, &options, &ctx).map_err(|e| with_from_hint(e, &args.src));
    args.job.finish(&ctx, started, report_file, outcome, |report| {
        serde_json::json!({"from": report.from.name(), "to": report.to.name(), "rows": report.rows})
    })?;
    Ok(ExitCode::SUCCESS)
}

impl Args {
    /// The conversion these arguments ask for.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a value that does not parse or does not apply.
    pub(super) fn options(&self) -> Result<ConvertOptions> {
        let args = self;
        let mut read = FrameReadOptions::default().with_delimiter(args.delimiter.unwrap_or(b','));
        if let Some(blocksize) = args.blocksize {
            check_blocksize_applies(args, blocksize)?;
            read = read.with_blocksize(blocksize);
        }
        read.columns = args.columns.clone();
        read.dtypes = parse_dtypes(&args.dtypes)?;
        read.row_groups = args.row_groups.clone();
        Ok(ConvertOptions {
            from: args.from.as_deref().map(Format::parse).transpose()?,
            to: args.to.as_deref().map(Format::parse).transpose()?,
            chunks: args.chunks.as_deref().map(ChunkSpec::parse).transpose()?,
            compression: args
                .compression
                .as_deref()
                .map(Compression::parse)
                .transpose()?,
            read,
            row_group_rows: args.row_group_size,
            overwrite: args.overwrite,
            sort_by: args
                .sort_by
                .as_deref()
                .map(crate::frame::ops::sort::parse_sort_keys)
                .transpose()?,
        })
    }
}
