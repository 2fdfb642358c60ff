//! `info`: what a dataset is, read from metadata only.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::frame::FrameReadOptions;
use super::{detect, open_array, open_frame, type_name, Kind};
use crate::error::Result;

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
pub fn describe_as(path: &Path, format: super::Format, read: &FrameReadOptions) -> Result<Value> {
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
            if let Ok(z) = super::zarr::ZarrSource::open(path) {
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
fn count_rows(source: &dyn super::frame::FrameSource) -> Result<u64> {
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
