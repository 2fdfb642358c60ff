//! `blockwise info PATH [--json]`: what a dataset is, from its metadata.
//!
//! ```text
//! blockwise info PATH [--json] [--from FORMAT] [--delimiter ,]
//! ```
//!
//! Arrays: kind, format, shape, dtype, chunks, number of chunks, bytes, codec.
//! Tables: columns with types, rows, partitions (and row groups for Parquet). With
//! `--json`, one JSON object whose keys are documented in the README.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{parse_delimiter, with_from_hint};
use crate::error::Result;
use crate::storage::describe::{describe, describe_as};
use crate::storage::frame::FrameReadOptions;
use crate::storage::Format;

/// Describe a dataset
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file or a directory
    path: PathBuf,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
    /// The dataset's format: csv, parquet, ipc, npy, npy-stack, zarr [default: from its contents and extension]
    #[arg(long)]
    from: Option<String>,
    /// CSV field delimiter
    #[arg(long, value_parser = parse_delimiter, default_value = ",")]
    delimiter: u8,
}

pub(super) fn run(args: Args) -> Result<ExitCode> {
    let read = FrameReadOptions::default().with_delimiter(args.delimiter);
    let info = match args.from.as_deref().map(Format::parse).transpose()? {
        Some(format) => describe_as(&args.path, format, &read)?,
        None => describe(&args.path, &read).map_err(|e| with_from_hint(e, &args.path))?,
    };
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        format!("{info}\n")
    } else {
        human(&info)
    };
    // A closed pipe (`| head`) is not an error.
    let _ = out.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn human(info: &serde_json::Value) -> String {
    let mut s = String::new();
    let Some(map) = info.as_object() else {
        return s;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("columns", serde_json::Value::Array(cols)) => {
                s.push_str("columns:\n");
                for c in cols {
                    s.push_str(&format!(
                        "  {}: {}\n",
                        c["name"].as_str().unwrap_or_default(),
                        c["type"].as_str().unwrap_or_default()
                    ));
                }
            }
            (k, serde_json::Value::String(v)) => s.push_str(&format!("{k}: {v}\n")),
            (k, v) => s.push_str(&format!("{k}: {v}\n")),
        }
    }
    s
}
