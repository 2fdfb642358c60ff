//! Converting a dataset from one format to another, streaming, in bounded memory.
//!
//! Four routes, chosen by the kinds of source and destination: table to table,
//! array to array, table to a 2-D array, and a 1-D or 2-D array to a table. Every
//! route writes into an [`AtomicOutput`], so the destination appears complete or
//! not at all.

mod array_job;
mod array_to_array;
mod array_to_frame;
mod frame_job;
mod frame_to_array;
mod frame_to_frame;
mod job;
mod options;
mod sinks;
mod sort;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::array_job::{
    compute as compute_array, compute_selected, compute_unique, plan_compute as plan_array_compute,
    plan_file as plan_array, plan_selection, write as write_array, write_selected, ComputedArray,
};
pub use self::frame_job::{plan_query, plan_query_file, query, write_query};
use self::job::Conversion;
pub use self::job::{
    already_published, create_workdir, directory_store, finish_if_complete, op_spec, registry,
    run_plan, run_plan_then, workdir_of, OnFailure, PlanSizing, PublishOutput, STAGED_OUTPUT,
};
pub use self::options::{ChunkSpec, Compression, ConvertOptions};
use crate::error::{Error, Result};

use crate::exec::{JobContext, JobStats};
use crate::plan::Plan;
use crate::storage::atomic::{plan_workdir, AtomicOutput, OutputSpec};
use crate::storage::{detect, Format, Kind};

/// Target size of a chunk chosen by `--chunks auto` or by default.
pub const AUTO_CHUNK_BYTES: u64 = 64 << 20;

/// Largest CSV partition a streaming conversion reads as one task. Measured on the
/// 510 MB db-benchmark CSV, 2 threads: 64 MiB partitions held 230–320 MB and wrote
/// Arrow IPC in 2.8 s; 16 MiB ones held about 100 MB and took 1.1 s.
const STREAM_PARTITION_BYTES: u64 = 16 << 20;

// Most partitions a CSV input is cut into, whatever `--blocksize` says.
use crate::storage::csv::MAX_PARTITIONS as MAX_CSV_PARTITIONS;

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
    /// Bytes of stale temporaries, left in the destination's directory by earlier
    /// runs that were killed, removed before writing.
    pub reclaimed_bytes: u64,
}

/// Converts `src` to `dst`.
///
/// # Errors
/// Any error of the formats involved; the destination checks of
/// [`AtomicOutput::new`] ([`Error::OverlapsInput`], [`Error::WillNotReplace`],
/// [`Error::OutputExists`] when `dst` exists and `options.overwrite` is false, ...),
/// made before anything is written; [`Error::OutputExists`] also when `dst` appeared
/// during the run; [`Error::Cancelled`] or [`Error::Interrupted`]. On error nothing
/// is left at `dst` (an old `dst` is untouched).
pub fn convert(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<ConvertReport> {
    let (from, to) = formats(src, dst, options)?;
    let sizing = PlanSizing::of(ctx);
    let options = &fit_options(src, from, options, sizing);
    // Every check on the destination (overlap with the source, what may be
    // replaced, its directory) is made here, before anything is written.
    let out = AtomicOutput::new(dst, &output_spec(&[src], to, options))?;
    // Said now, not at the end: the leftovers are gone whatever this run does.
    ctx.note_reclaimed(out.reclaimed());
    let reclaimed_bytes = out.reclaimed().bytes;
    let conversion = Conversion {
        src,
        from,
        dst,
        to,
        options,
        sizing,
        staged: out.path().join(STAGED_OUTPUT),
    };
    if let Some(mut plan) = plan_conversion(&conversion)? {
        // The temporary name is the working directory: a killed run's is reclaimed
        // by the next one, and dropping `out` removes it.
        plan.workdir = out.path().display().to_string();
        std::fs::create_dir(out.path()).map_err(|e| Error::io(out.path(), e))?;
        let rows_before = JobStats::get(&ctx.stats.rows);
        let written_before = JobStats::get(&ctx.stats.written_bytes);
        run_plan(&plan, ctx, OnFailure::RemoveAll)?;
        // What the output takes on disk, whatever its tasks wrote on the way (parts
        // copied into place, metadata rewritten).
        let written_bytes = crate::sys::tree_bytes(dst);
        ctx.stats
            .written_bytes
            .store(written_before + written_bytes, Ordering::Relaxed);
        return Ok(ConvertReport {
            from,
            to,
            rows: JobStats::get(&ctx.stats.rows) - rows_before,
            written_bytes,
            reclaimed_bytes,
        });
    }
    let rows = ctx.install(|| match (from.kind(), to.kind()) {
        // Every route into an array is a plan.
        (_, Kind::Array) => Err(Error::bug("an array route without a plan", "")),
        // Every route into a table is a plan.
        (_, Kind::Frame) => Err(Error::bug("a table route without a plan", "")),
    })?;
    ctx.cancel.check()?;
    let written_bytes = crate::sys::tree_bytes(out.path());
    out.commit()?;
    JobStats::add(&ctx.stats.written_bytes, written_bytes);
    ctx.progress.finish();
    Ok(ConvertReport {
        from,
        to,
        rows,
        written_bytes,
        reclaimed_bytes,
    })
}

/// The plan of converting `src` to `dst`, sized for `sizing`, without running it:
/// what `blockwise plan convert` writes. Its working directory is a sibling of `dst`
/// named by a fresh plan id (see [`plan_workdir`]).
///
/// # Errors
/// As [`convert`]'s checks, made now: the formats, the options, the destination.
pub fn plan_convert(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
    sizing: PlanSizing,
) -> Result<Plan> {
    let (from, to) = formats(src, dst, options)?;
    let options = &fit_options(src, from, options, sizing);
    // The checks `convert` makes, now (nothing is created).
    drop(AtomicOutput::new(dst, &output_spec(&[src], to, options))?);
    // The plan may run in another directory (`run-task` on a cluster node): every
    // path it holds is absolute.
    let (src, dst) = (&absolute(src)?, &absolute(dst)?);
    let workdir = plan_workdir(dst, &fresh_plan_id())?;
    let conversion = Conversion {
        src,
        from,
        dst,
        to,
        options,
        sizing,
        staged: workdir.join(STAGED_OUTPUT),
    };
    let mut plan = plan_conversion(&conversion)?.ok_or_else(|| Error::Unsupported {
        path: src.to_path_buf(),
        what: "conversion as a plan",
        found: format!("{} to {}", from.name(), to.name()),
        supported: String::new(),
    })?;
    plan.workdir = workdir.display().to_string();
    for d in &mut plan.datasets {
        if d.role == crate::plan::DatasetRole::Input {
            d.stamp = crate::plan::FileStamp::of(Path::new(&d.path));
        }
    }
    Ok(plan)
}

/// `path` made absolute against the current directory, as written otherwise (a
/// trailing `/` kept: it says a Parquet DST is a directory of parts).
fn absolute(path: &Path) -> Result<std::path::PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    Ok(cwd.join(path))
}

/// A plan id: 16 hex digits from the time, the process and a counter, so that two
/// plans of one destination never share a working directory.
fn fresh_plan_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// The route's plan, or `None` for a route still run by closures.
fn plan_conversion(c: &Conversion<'_>) -> Result<Option<Plan>> {
    match (c.from.kind(), c.to.kind()) {
        (Kind::Frame, Kind::Frame) if c.options.sort_by.is_some() => sort::plan(c),
        (Kind::Frame, Kind::Frame) => frame_to_frame::plan(c),
        (Kind::Array, Kind::Array) => array_to_array::plan(c),
        (Kind::Frame, Kind::Array) => frame_to_array::plan(c),
        (Kind::Array, Kind::Frame) => array_to_frame::plan(c),
    }
}

/// The formats read and written.
///
/// # Errors
/// [`Error::UnknownFormat`]; options that do not apply to the pair.
fn formats(src: &Path, dst: &Path, options: &ConvertOptions) -> Result<(Format, Format)> {
    let from = options.from.map_or_else(|| detect(src), Ok)?;
    let to = match options.to {
        Some(f) => f,
        None => Format::from_extension(dst).ok_or_else(|| Error::UnknownFormat {
            path: dst.to_path_buf(),
            hint: "pass --to FORMAT (csv, parquet, ipc, npy, npy-stack, zarr) or use an extension"
                .into(),
        })?,
    };
    // A Parquet destination named as a directory (`out/`) is a directory of parts.
    let to = if to == Format::Parquet && dst.as_os_str().as_encoded_bytes().ends_with(b"/") {
        Format::ParquetDir
    } else {
        to
    };
    // The options of a Parquet file apply to a directory of them.
    let checked_as = if to == Format::ParquetDir {
        Format::Parquet
    } else {
        to
    };
    options.check_applies(from, checked_as)?;
    Ok((from, to))
}

/// What the destination checks need to know of the output.
fn output_spec<'a>(inputs: &'a [&'a Path], to: Format, options: &ConvertOptions) -> OutputSpec<'a> {
    OutputSpec {
        format: to.name(),
        single_file: !matches!(to, Format::NpyStack | Format::Zarr | Format::ParquetDir),
        overwrite: options.overwrite,
        inputs,
    }
}

/// `options` fitted to the resources: batches scale down with a small memory limit,
/// so that a few always fit, and CSV partitions are what a conversion holds between
/// reading and writing them (two a thread, each about its input's size, with the
/// decoded batches beside it): at most 16 MiB, where writing keeps up with reading
/// best, and less under a small limit.
fn fit_options(
    src: &Path,
    from: Format,
    options: &ConvertOptions,
    sizing: PlanSizing,
) -> ConvertOptions {
    let mut options = options.clone();
    options.read.batch_rows = options
        .read
        .batch_rows
        .min((sizing.memory_limit / 4096).clamp(1024, 65536) as usize);
    // (A sort holds sorted runs instead, which it sizes itself: smaller partitions
    // would only make more of them to merge.)
    if options.sort_by.is_none() {
        options.read.blocksize = options
            .read
            .blocksize
            .min(STREAM_PARTITION_BYTES)
            .min((sizing.memory_limit / (8 * (sizing.threads as u64 + 1))).max(1 << 20));
    }
    if from == Format::Csv {
        // A tiny `--blocksize` on a large file would make millions of partitions, two
        // tasks each with their bookkeeping (one byte a partition of a 200 MB CSV
        // grew past 23 GB): the partition count is bounded instead.
        let len = std::fs::metadata(src).map_or(0, |m| m.len());
        let floor = len.div_ceil(MAX_CSV_PARTITIONS);
        options.read.blocksize = options.read.blocksize.max(floor);
    }
    options
}
