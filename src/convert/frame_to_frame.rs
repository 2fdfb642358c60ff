//! Table to table: partitions are decoded in parallel and written in order.

use std::path::Path;

use super::{sinks, ConvertOptions};
use crate::error::Result;
use crate::exec::{for_each_ordered, JobContext, JobStats};
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
    let source = open_frame(src, from, &options.read)?;
    let mut sink = sinks::frame_sink(to, dst, source.schema(), options, ctx)?;
    let n = source.num_partitions();
    let total: u64 = (0..n).map(|i| source.partition_bytes(i)).sum();
    ctx.progress.start(total, true, "converting");
    let mut rows = 0u64;
    for_each_ordered(
        n,
        ctx.threads,
        ctx.threads + 1,
        &ctx.cancel,
        |i, emit| {
            for batch in source.read_partition(i)? {
                emit(batch?)?;
            }
            let bytes = source.partition_bytes(i);
            JobStats::add(&ctx.stats.read_bytes, bytes);
            JobStats::add(&ctx.stats.tasks, 1);
            ctx.progress.advance(bytes);
            Ok(())
        },
        |_, batch| {
            rows += batch.num_rows() as u64;
            sink.write(&batch)
        },
    )?;
    sink.finish()?;
    Ok(rows)
}
