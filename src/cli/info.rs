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
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::common::{parse_delimiter, with_from_hint};
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::storage::frame::FrameReadOptions;
use crate::storage::{detect, open_array, open_frame, type_name, Format, Kind};

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

/// Describes the dataset at `path` as a JSON object with the stable keys the README
/// documents: for arrays `kind, format, shape, dtype, chunks, nchunks, nbytes,
/// compression`; for tables `kind, format, columns[{name,type}], rows, partitions`.
/// Format-specific keys may follow.
///
/// # Errors
/// The errors of detecting and opening the dataset.
pub fn describe(path: &Path, read: &FrameReadOptions) -> Result<Value> {
    describe_as(path, detect(path)?, read)
}

/// Like [`describe`], for a dataset whose format is known (`info --from`).
///
/// # Errors
/// The errors of opening the dataset as `format`.
fn describe_as(path: &Path, format: Format, read: &FrameReadOptions) -> Result<Value> {
    let mut out = Map::new();
    match format.kind() {
        Kind::Array => {
            let source = open_array(path, format)?;
            let meta = source.meta();
            out.insert("kind".into(), json!("array"));
            out.insert("format".into(), json!(format.name()));
            out.insert("shape".into(), json!(meta.shape()));
            out.insert("dtype".into(), json!(meta.dtype.name()));
            let chunks: Value = match meta.grid.regular_chunk_shape() {
                Some(c) => json!(c),
                None => json!(meta
                    .grid
                    .axes()
                    .iter()
                    .map(|a| a.sizes())
                    .collect::<Vec<_>>()),
            };
            out.insert("chunks".into(), chunks);
            out.insert("nchunks".into(), json!(meta.grid.num_chunks()));
            out.insert("nbytes".into(), json!(meta.nbytes()));
            out.insert("compression".into(), json!(meta.compression));
            if let Ok(z) = crate::storage::zarr::ZarrSource::open(path) {
                out.insert("zarr_format".into(), json!(z.zarr_format()));
            }
        }
        Kind::Frame => {
            let source = open_frame(path, format, read)?;
            let schema = source.schema();
            out.insert("kind".into(), json!("frame"));
            out.insert("format".into(), json!(format.name()));
            let columns: Vec<Value> = schema
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": type_name(f.data_type())}))
                .collect();
            out.insert("columns".into(), Value::Array(columns));
            let rows = match source.num_rows() {
                Some(n) => n,
                None => count_rows(source.as_ref())?,
            };
            out.insert("rows".into(), json!(rows));
            out.insert("partitions".into(), json!(source.num_partitions()));
            for (k, v) in source.details() {
                out.insert(k.into(), v);
            }
        }
    }
    // The dataset a link names, not the link.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    out.insert(
        "bytes_on_disk".into(),
        json!(crate::sys::tree_bytes(&target)),
    );
    Ok(Value::Object(out))
}

/// Counts rows by reading every partition (CSV keeps no count), in parallel.
fn count_rows(source: &dyn crate::storage::frame::FrameSource) -> Result<u64> {
    use rayon::prelude::*;
    (0..source.num_partitions())
        .into_par_iter()
        .map(|i| {
            let mut n = 0u64;
            for batch in source.read_partition(i)? {
                n += batch?.num_rows() as u64;
            }
            Ok(n)
        })
        .sum()
}
