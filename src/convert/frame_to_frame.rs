//! Table to table: partitions are decoded (and encoded, for formats whose sink can)
//! in parallel and written in order, as a plan of per-partition tasks.

use std::path::Path;

use super::{sinks, ConvertOptions};
use crate::error::Result;
use crate::exec::JobContext;
use crate::storage::{open_frame, Format};

/// Converts the table at `src` into a new `to` file at `dst`; returns the row count.
pub(super) fn run(
    src: &Path,
    from: Format,
    dst: &Path,
    to: Format,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    if let Some(keys) = &options.sort_by {
        return super::sort::run(src, from, dst, to, keys, options, ctx);
    }
    let source = open_frame(src, from, &options.read)?;
    let mut sink = sinks::frame_sink(to, dst, source.schema(), options, ctx, ctx.threads + 1)?;
    let route = super::Route::new(src, from, dst, to);
    let rows = match sink.partition_encoder() {
        Some(encoder) => {
            super::stream_encoded(source.as_ref(), encoder.as_ref(), &route, ctx, |piece| {
                sink.write_encoded(piece)
            })?
        }
        None => {
            let mut rows = 0u64;
            super::stream_frame(source.as_ref(), &route, ctx, |batch| {
                rows += batch.num_rows() as u64;
                sink.write(&batch)
            })?;
            rows
        }
    };
    sink.finish()?;
    Ok(rows)
}
