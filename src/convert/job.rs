//! A conversion as a plan: built from the source, the destination and the options
//! (the same plan whether it then runs here, is written out by `blockwise plan`, or
//! runs task by task elsewhere), run on the local executor with a memory store, and
//! published by its last task.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::{DirStore, JobContext, JobStats, MemoryStore, RunReport};
use crate::plan::{
    DataRef, DataStore, Dataset, DatasetRole, OpSpec, Operation, Plan, PlanSummary, Registry,
    Resources, Task, TaskEnv, TaskKind,
};
use crate::storage::Format;

use super::ConvertOptions;

/// The resources a plan is sized for: partitions, runs and chunks are cut so that
/// `threads` tasks at once fit `memory_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSizing {
    /// Tasks running at once.
    pub threads: usize,
    /// The memory budget in bytes.
    pub memory_limit: u64,
}

impl PlanSizing {
    /// The sizing of the job `ctx`.
    pub fn of(ctx: &JobContext) -> Self {
        PlanSizing {
            threads: ctx.threads,
            memory_limit: ctx.pool.limit(),
        }
    }
}

/// Name of the staged output inside a plan's working directory.
pub const STAGED_OUTPUT: &str = "output";

/// A conversion being planned: what every route's plan builder is handed.
#[allow(dead_code)] // until every route is a plan
pub(crate) struct Conversion<'a> {
    /// The source.
    pub src: &'a Path,
    /// Its format.
    pub from: Format,
    /// The destination, as published at the end.
    pub dst: &'a Path,
    /// Its format.
    pub to: Format,
    /// The options, already fitted to the sizing.
    pub options: &'a ConvertOptions,
    /// The resources the plan is sized for.
    pub sizing: PlanSizing,
    /// Where the output is written until it is published.
    pub staged: PathBuf,
}

#[allow(dead_code)]
impl Conversion<'_> {
    /// The source dataset, id `"src"`, described by `meta`.
    pub fn src_dataset(&self, meta: serde_json::Value) -> Dataset {
        Dataset::new(
            "src",
            self.src.display(),
            self.from.name(),
            DatasetRole::Input,
        )
        .with_meta(meta)
    }

    /// The output dataset, id `"dst"`, at its staged path, described by `meta`.
    pub fn dst_dataset(&self, meta: serde_json::Value) -> Dataset {
        Dataset::new(
            "dst",
            self.staged.display(),
            self.to.name(),
            DatasetRole::Output,
        )
        .with_meta(meta)
    }

    /// Ends `plan` with the task that publishes the staged output at the
    /// destination, after every task that nothing else waits for.
    pub fn finish(&self, plan: &mut Plan) {
        finish_with_publish(
            plan,
            &self.staged,
            self.dst,
            self.to,
            self.options.overwrite,
        );
    }
}

/// Ends `plan` with the task that publishes the output staged at `staged` at `dst`
/// (a dataset `"published"` of `format`), after every task that nothing else waits
/// for.
pub fn finish_with_publish(
    plan: &mut Plan,
    staged: &Path,
    dst: &Path,
    format: Format,
    overwrite: bool,
) {
    let dependents = plan.dependents();
    let deps = (0..plan.tasks.len() as u32)
        .filter(|&t| dependents[t as usize].is_empty())
        .collect();
    plan.datasets.push(Dataset::new(
        "published",
        dst.display(),
        format.name(),
        DatasetRole::Output,
    ));
    let op = PublishOutput {
        staged: staged.display().to_string(),
        overwrite,
    };
    plan.push(Task {
        deps,
        ..Task::new(op_spec(&op), DataRef::whole("published"), TaskKind::Release)
    });
}

/// The [`OpSpec`] of operation `op` (see [`OpSpec::of`]).
pub fn op_spec<O: Operation>(op: &O) -> OpSpec {
    OpSpec::of(op)
}

/// Moves the staged output into place at the `published` dataset's path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishOutput {
    /// The finished output in the working directory.
    pub staged: String,
    /// Whether an existing destination is replaced.
    pub overwrite: bool,
}

impl Operation for PublishOutput {
    const NAME: &'static str = "publish_output";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let dst = PathBuf::from(&env.dataset(task.output.dataset())?.path);
        let staged = Path::new(&self.staged);
        // Only the output staged in the plan's own working directory is published: an
        // edited plan must not move some other file or directory into DST.
        if staged != workdir_of(env.plan)?.join(STAGED_OUTPUT) {
            return Err(Error::BadPlan {
                reason: format!(
                    "task {} publishes {}, which is not the output staged in the plan's \
                     working directory {}",
                    task.id,
                    staged.display(),
                    env.plan.workdir
                ),
            });
        }
        crate::storage::atomic::publish(staged, &dst, self.overwrite)
    }
}

/// Every operation blockwise runs.
pub fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::new();
        r.register::<PublishOutput>();
        r.register::<crate::array::CreateArray>();
        r.register::<crate::array::CopyBlock>();
        r.register::<crate::array::FinishArray>();
        r.register::<crate::array::from_table::TableRows>();
        r.register::<crate::array::from_table::PlaceRows>();
        r.register::<crate::array::from_table::FinishRows>();
        r.register::<crate::frame::write::EncodeTablePart>();
        r.register::<crate::frame::write::AppendTablePart>();
        r.register::<crate::frame::write::FinishTableOutput>();
        r.register::<crate::frame::write::WriteTablePart>();
        r.register::<crate::frame::write::RegroupRows>();
        r.register::<crate::frame::read::ReadTablePartition>();
        r.register::<super::array_to_frame::ReadArrayRows>();
        r.register::<crate::frame::ops::sort::SortRun>();
        r.register::<crate::frame::ops::sort::CutRanges>();
        r.register::<crate::frame::ops::sort::MergeRange>();
        r.register::<crate::frame::ops::aggregate::GroupPartial>();
        r.register::<crate::frame::ops::aggregate::GroupFinal>();
        r.register::<crate::frame::ops::stream::FramePipeline>();
        r.register::<crate::frame::ops::stream::FrameLimit>();
        r.register::<crate::frame::ops::stream::FrameConcat>();
        r.register::<crate::frame::ops::stream::FrameSort>();
        r.register::<crate::frame::ops::window::FrameShuffle>();
        r.register::<crate::frame::ops::window::FrameWindow>();
        r.register::<crate::frame::ops::window::FrameNumber>();
        r.register::<crate::array::lower::ArrayBlock>();
        r.register::<crate::array::lower::ArrayCombine>();
        r.register::<crate::array::lower::ArrayMatMul>();
        r.register::<crate::array::lower::ArrayUniqueMerge>();
        r
    })
}

/// What happens to a plan's working directory when the run fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Everything goes (a `convert`: nothing resumes it).
    RemoveAll,
    /// Temporary files go; published entries stay for a rerun to resume from.
    KeepForResume,
}

/// Runs `plan` on the job's executor with a memory store over its working directory,
/// which is removed after success.
///
/// # Errors
/// As [`crate::exec::LocalExecutor::execute`]; the working directory's I/O errors.
pub fn run_plan(plan: &Plan, ctx: &JobContext, on_failure: OnFailure) -> Result<RunReport> {
    run_plan_then(plan, ctx, on_failure, |_| Ok(())).map(|(report, ())| report)
}

/// Runs `plan` as [`run_plan`] does and, after success and before the store is
/// dropped, hands the store to `collect` (a computed array's chunks are read from
/// it).
///
/// # Errors
/// As [`run_plan`]; `collect`'s.
pub fn run_plan_then<T>(
    plan: &Plan,
    ctx: &JobContext,
    on_failure: OnFailure,
    collect: impl FnOnce(&dyn DataStore) -> Result<T>,
) -> Result<(RunReport, T)> {
    let workdir = workdir_of(plan)?;
    check_same_file_system(plan, &workdir)?;
    // A plan that may resume keeps its entries in its working directory; a
    // `convert`, which never resumes, spills them under the job's spill directory,
    // where `--spill-dir` and the spill quota apply and a killed run's are reclaimed.
    let store_dir = match on_failure {
        OnFailure::KeepForResume => workdir.clone(),
        OnFailure::RemoveAll => ctx.spill.disk().dir().join("store"),
    };
    // Entries written for want of memory are spill data: the job's spill
    // compression applies, `auto` deciding by the spill quota's use.
    let disk = Arc::new(
        DirStore::new(&store_dir)?
            .with_compression(ctx.spill.compression(), Some(ctx.spill.disk().clone())),
    );
    // What a resumed run looks for goes to disk at once: completion marks of tasks
    // writing the outputs.
    let on_disk: HashSet<String> = plan
        .datasets
        .iter()
        .filter(|d| d.role != DatasetRole::Intermediate)
        .map(|d| d.id.clone())
        .collect();
    let store = MemoryStore::new(
        disk.clone(),
        ctx.pool.clone(),
        Some(ctx.monitor.clone()),
        on_disk,
    )
    .with_quota(ctx.spill.disk().clone());
    let resources = Resources::default();
    let env = ctx.environment(&store, &resources);
    if let Some(recorder) = ctx.recorder() {
        recorder.plan(plan);
        // A plan the executor is about to run has valid dependencies.
        if let Ok(summary) = PlanSummary::of(plan, registry(), ctx.threads, ctx.pool.limit()) {
            recorder.summary(summary);
        }
    }
    // Advanced by the executor's task events: bytes of input, or tasks.
    let (spill, monitor) = (ctx.spill.clone(), ctx.monitor.clone());
    ctx.progress.start(plan, move || {
        spill.spilled_bytes() + monitor.spilled_bytes()
    });
    let result = ctx
        .install(|| ctx.executor().execute(plan, registry(), &env))
        .and_then(|report| collect(&store).map(|value| (report, value)));
    JobStats::add(&ctx.stats.spilled_bytes, store.spilled_bytes());
    drop(store);
    match (&result, on_failure) {
        (Ok((report, _)), _) => {
            JobStats::add(&ctx.stats.paused_ms, report.paused_ms);
            JobStats::add(&ctx.stats.skipped_tasks, report.skipped);
            crate::sys::remove_path(&workdir);
            crate::sys::remove_path(&store_dir);
        }
        (Err(_), OnFailure::RemoveAll) => {
            crate::sys::remove_path(&workdir);
            crate::sys::remove_path(&store_dir);
        }
        (Err(_), OnFailure::KeepForResume) => disk.remove_temporaries(),
    }
    ctx.progress.finish();
    result
}

/// The plan's working directory.
///
/// # Errors
/// [`Error::BadPlan`] for a plan that names none.
pub fn workdir_of(plan: &Plan) -> Result<PathBuf> {
    if plan.workdir.is_empty() {
        return Err(Error::BadPlan {
            reason: "it names no working directory (\"workdir\")".into(),
        });
    }
    // The working directory is removed when the plan ends: only one blockwise
    // named (`.DST.blockwise-plan-ID`, or a conversion's temporary output) may be,
    // never a directory an edited plan points at.
    let workdir = PathBuf::from(&plan.workdir);
    let ours = workdir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(".blockwise-"));
    if !ours {
        return Err(Error::BadPlan {
            reason: format!(
                "its working directory {} is not one blockwise made (a hidden \
                 \".DST.blockwise-plan-ID\" beside the destination); blockwise removes \
                 it when the plan ends, so it runs only plans whose working directory \
                 it named (make the plan again with `blockwise plan`)",
                workdir.display()
            ),
        });
    }
    Ok(workdir)
}

/// A store handle for one task run elsewhere (`run-task`): the plan's working
/// directory, every entry a file.
///
/// # Errors
/// When the directory cannot be created.
pub fn directory_store(plan: &Plan) -> Result<DirStore> {
    let workdir = workdir_of(plan)?;
    check_same_file_system(plan, &workdir)?;
    DirStore::new(&workdir)
}

/// Refuses a working directory on another file system than the plan's published
/// output: the output staged in it could not be renamed into place, and every rerun
/// would fail at the end again. (Paths that do not exist yet are not compared.)
///
/// # Errors
/// [`Error::BadPlan`] naming both.
fn check_same_file_system(plan: &Plan, workdir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The nearest existing directory: the working directory may not exist yet.
    let device = |path: &Path| {
        path.ancestors()
            .find_map(|p| std::fs::metadata(p).ok().filter(|m| m.is_dir()))
            .map(|m| m.dev())
    };
    let work = device(workdir);
    for d in plan.datasets.iter().filter(|d| d.id == "published") {
        let dst = Path::new(&d.path);
        // A relative DST (an in-process `convert`) is in the current directory.
        let parent = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let here = device(parent);
        if work.is_some() && here.is_some() && here != work {
            return Err(Error::BadPlan {
                reason: format!(
                    "its working directory {} is on another file system than its output \
                     {}, where the finished output could not be moved; make the plan \
                     again (its working directory goes beside the output)",
                    workdir.display(),
                    dst.display()
                ),
            });
        }
    }
    Ok(())
}

/// Creates the working directory of a plan just made (`blockwise plan`): while it
/// exists the plan has not finished, so an output that exists beside it (one that
/// appeared meanwhile, or one an `--overwrite` plan replaces) is not taken for the
/// plan's own; the last task removes it.
///
/// # Errors
/// When it cannot be created.
pub fn create_workdir(plan: &Plan) -> Result<()> {
    let workdir = workdir_of(plan)?;
    std::fs::create_dir_all(&workdir).map_err(|e| Error::io(&workdir, e))
}

/// Whether the plan's outputs are all published and its working directory gone: a
/// plan that already ran to the end.
pub fn already_published(plan: &Plan) -> bool {
    let workdir_gone = workdir_of(plan).is_ok_and(|w| !w.exists());
    let published: Vec<&Dataset> = plan
        .datasets
        .iter()
        .filter(|d| d.id == "published")
        .collect();
    workdir_gone
        && !published.is_empty()
        && published
            .iter()
            .all(|d| Path::new(&d.path).symlink_metadata().is_ok())
}

/// Removes the plan's working directory when every final task (one nothing waits
/// for) has published its output: the last `run-task` of a plan cleans up.
pub fn finish_if_complete(plan: &Plan, store: &DirStore) {
    let dependents = plan.dependents();
    let complete = plan
        .tasks
        .iter()
        .filter(|t| dependents[t.id as usize].is_empty())
        .all(|t| crate::plan::DataStore::contains(store, &t.output));
    if complete {
        crate::sys::remove_path(crate::plan::DataStore::dir(store));
    }
}
