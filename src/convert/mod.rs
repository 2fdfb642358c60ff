//! Converting a dataset from one format to another, streaming, in bounded memory.
//!
//! Four routes, chosen by the kinds of source and destination: table to table,
//! array to array, table to a 2-D array, and a 1-D or 2-D array to a table. Every
//! route writes into an [`AtomicOutput`], so the destination appears complete or
//! not at all.

mod array_to_array;
mod array_to_frame;
mod frame_to_array;
mod frame_to_frame;
mod options;
mod sinks;
mod sort;

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::options::{ChunkSpec, Compression, ConvertOptions};
use crate::error::{Error, Result};
use arrow::record_batch::RecordBatch;

use crate::exec::{for_each_ordered, JobContext, JobStats};
use crate::storage::atomic::AtomicOutput;
use crate::storage::frame::{FrameSource, PartitionEncoder};
use crate::storage::{detect, Format, Kind};

/// Target size of a chunk chosen by `--chunks auto` or by default.
pub const AUTO_CHUNK_BYTES: u64 = 64 << 20;

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    /// Format read.
    pub from: Format,
    /// Format written.
    pub to: Format,
    /// Rows written (tables) or length of the first axis (arrays).
    pub rows: u64,
    /// Bytes the output takes on disk.
    pub written_bytes: u64,
}

/// Converts `src` to `dst`.
///
/// # Errors
/// Any error of the formats involved; [`Error::OutputExists`] when `dst` exists and
/// `options.overwrite` is false; [`Error::Cancelled`]. On error nothing is left at
/// `dst` (an old `dst` is untouched).
pub fn convert(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<ConvertReport> {
    let from = detect(src)?;
    let to = match options.to {
        Some(f) => f,
        None => Format::from_extension(dst).ok_or_else(|| Error::UnknownFormat {
            path: dst.to_path_buf(),
            hint: "pass --to FORMAT (csv, parquet, ipc, npy, npy-stack, zarr) or use an extension"
                .into(),
        })?,
    };
    if std::fs::canonicalize(src).ok() == std::fs::canonicalize(dst).ok() {
        return Err(Error::Usage(format!(
            "{} is both the input and the output",
            src.display()
        )));
    }
    if options.sort_by.is_some() && (from.kind(), to.kind()) != (Kind::Frame, Kind::Frame) {
        return Err(Error::Usage(
            "--sort-by sorts tables; both SRC and DST must be tables".into(),
        ));
    }
    // Batches scale down with a small memory limit, so a few of them always fit.
    let mut options = options.clone();
    options.read.batch_rows = options
        .read
        .batch_rows
        .min((ctx.pool.limit() / 4096).clamp(1024, 65536) as usize);
    let options = &options;
    let out = AtomicOutput::new(dst, options.overwrite)?;
    let rows = ctx.install(|| match (from.kind(), to.kind()) {
        (Kind::Frame, Kind::Frame) => frame_to_frame::run(src, from, out.path(), to, options, ctx),
        (Kind::Array, Kind::Array) => array_to_array::run(src, from, out.path(), to, options, ctx),
        (Kind::Frame, Kind::Array) => frame_to_array::run(src, from, out.path(), to, options, ctx),
        (Kind::Array, Kind::Frame) => array_to_frame::run(src, from, out.path(), to, options, ctx),
    })?;
    ctx.cancel.check()?;
    let written_bytes = disk_usage(out.path());
    out.commit()?;
    JobStats::add(&ctx.stats.written_bytes, written_bytes);
    ctx.progress.finish();
    Ok(ConvertReport {
        from,
        to,
        rows,
        written_bytes,
    })
}

/// Streams every batch of `source` to `consume` in order, decoding partitions on
/// the job's threads, counting bytes read and showing progress.
fn stream_frame(
    source: &dyn FrameSource,
    ctx: &JobContext,
    consume: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    stream_partitions(
        source,
        ctx,
        |i, emit| {
            for batch in source.read_partition(i)? {
                emit(batch?)?;
            }
            Ok(())
        },
        consume,
    )
}

/// Like [`stream_frame`], but each partition is also encoded by `encoder` on its
/// decoding thread; the encoded pieces reach `consume` in order. Returns the rows.
fn stream_encoded(
    source: &dyn FrameSource,
    encoder: &dyn PartitionEncoder,
    ctx: &JobContext,
    consume: impl FnMut(Box<dyn Any + Send>) -> Result<()>,
) -> Result<u64> {
    let rows = AtomicU64::new(0);
    stream_partitions(
        source,
        ctx,
        |i, emit| {
            let n = encoder.encode_partition(source.read_partition(i)?, emit)?;
            rows.fetch_add(n, Ordering::Relaxed);
            Ok(())
        },
        consume,
    )?;
    Ok(rows.into_inner())
}

/// Runs `produce` for every partition of `source` on the job's threads and hands
/// what it emits to `consume` in order, with progress and read statistics.
fn stream_partitions<T: Send>(
    source: &dyn FrameSource,
    ctx: &JobContext,
    produce: impl Fn(usize, &mut dyn FnMut(T) -> Result<()>) -> Result<()> + Sync,
    mut consume: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let n = source.num_partitions();
    let total: u64 = (0..n).map(|i| source.partition_bytes(i)).sum();
    ctx.progress.start(total, true, "converting");
    for_each_ordered(
        n,
        ctx.threads,
        ctx.threads + 1,
        &ctx.cancel,
        |i, emit| {
            produce(i, emit)?;
            let bytes = source.partition_bytes(i);
            JobStats::add(&ctx.stats.read_bytes, bytes);
            JobStats::add(&ctx.stats.tasks, 1);
            ctx.progress.advance(bytes);
            Ok(())
        },
        |_, item| consume(item),
    )
}

/// Bytes of the files under `path` (a file or a directory tree).
pub fn disk_usage(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| disk_usage(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
