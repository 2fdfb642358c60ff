//! Streaming and blocking operators over record batches.

pub mod aggregate;
pub mod pipeline;
pub mod sort;
pub mod stream;
pub mod window;

use crate::plan::{DataRef, TaskId};
use pipeline::Pipeline;

/// One part of an operator's input as a plan lays it out: a partition of a table
/// source (no task makes it), or the entry an earlier task publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where the rows are.
    pub data: DataRef,
    /// The task that publishes them (`None` for a source partition).
    pub task: Option<TaskId>,
    /// Bytes of input it stands for, as far as the plan knows (a source
    /// partition's; an estimate for an entry).
    pub bytes: u64,
}

impl Part {
    /// Partition `index` of the source dataset `dataset`, covering `bytes`.
    pub fn source(dataset: &str, index: u64, bytes: u64) -> Part {
        Part {
            data: DataRef::partition(dataset, index),
            task: None,
            bytes,
        }
    }
}

/// The inputs and dependencies of a task that reads `parts` through `pre`: the
/// parts, then the entries of the subqueries `pre` uses, in the order
/// [`Pipeline::subqueries`] lists them (what [`crate::frame::read::reading`]
/// expects), so that every executor runs the subqueries first and keeps their
/// entries until the task has read them.
pub fn reading_inputs(parts: &[Part], pre: &Pipeline) -> (Vec<DataRef>, Vec<TaskId>) {
    let mut inputs: Vec<DataRef> = parts.iter().map(|p| p.data.clone()).collect();
    let mut deps: Vec<TaskId> = parts.iter().filter_map(|p| p.task).collect();
    for (_, s) in pre.subqueries() {
        if let Some(e) = &s.entry {
            inputs.push(e.data.clone());
            if !deps.contains(&e.task) {
                deps.push(e.task);
            }
        }
    }
    (inputs, deps)
}

/// Bytes of input a task that reduces its rows (a partial grouping, a top k per
/// group) reads at most when its parts are small: about a CSV block's worth.
pub const GATHER_BYTES: u64 = 64 << 20;

/// Consecutive parts read through the same steps, gathered into runs of about
/// `target` bytes (one part at least, `GATHER_BYTES` at most), each run for one
/// task. A Parquet file's row groups are often a few MB each, and a grouping of
/// a few MB of rows hardly reduces keys of medium cardinality (db-benchmark's
/// `id6`: 100,000 values in a 123,000-row row group); read together, they do.
pub fn gather(parts: Vec<(Part, Pipeline)>, target: u64) -> Vec<(Vec<Part>, Pipeline)> {
    let target = target.clamp(1, GATHER_BYTES);
    let mut runs: Vec<(Vec<Part>, Pipeline, u64)> = Vec::new();
    for (part, pre) in parts {
        match runs.last_mut() {
            Some((run, steps, bytes)) if *steps == pre && *bytes + part.bytes <= target => {
                *bytes += part.bytes;
                run.push(part);
            }
            _ => {
                let bytes = part.bytes;
                runs.push((vec![part], pre, bytes));
            }
        }
    }
    runs.into_iter().map(|(run, pre, _)| (run, pre)).collect()
}

/// Input a partial grouping reads at most in one task: it holds a table of
/// groups within its budget whatever it reads, and the more rows a table sees,
/// the more it reduces keys of high cardinality (db-benchmark's `id3` at 1e8
/// rows: a million keys, 1.3 million rows a task in 64 MB runs, eleven
/// million in runs of 460 MB, which took q3 from Parquet from 10 s to 9 s and
/// from CSV from 16.5 s to 11 s; fifty million in the two runs
/// [`partial_runs`] now makes of its Parquet file).
pub const PARTIAL_GATHER_BYTES: u64 = 1 << 30;

/// Consecutive parts read through the same steps, gathered into about `runs`
/// runs of about equal bytes (parts of other steps never share one), each run
/// for one task reducing its rows as a partial grouping does. Parts whose size
/// is unknown each make a run.
pub fn gather_evenly(parts: Vec<(Part, Pipeline)>, runs: u64) -> Vec<(Vec<Part>, Pipeline)> {
    let total: u64 = parts.iter().map(|(p, _)| p.bytes).sum();
    if total == 0 {
        return parts.into_iter().map(|(p, pre)| (vec![p], pre)).collect();
    }
    let mut out: Vec<(Vec<Part>, Pipeline, u64)> = Vec::new();
    let mut before = 0u64;
    for (part, pre) in parts {
        // The run the part's first byte falls in.
        let k = (u128::from(before) * u128::from(runs.max(1)) / u128::from(total)) as u64;
        before += part.bytes;
        match out.last_mut() {
            Some((run, steps, at)) if *steps == pre && *at == k => run.push(part),
            _ => out.push((vec![part], pre, k)),
        }
    }
    out.into_iter().map(|(run, pre, _)| (run, pre)).collect()
}

/// The runs [`gather_evenly`] makes of `total` bytes of input to a partial
/// grouping on `threads` threads: as many as keep each within
/// [`PARTIAL_GATHER_BYTES`], one a thread at least, a multiple of the threads
/// so that they end together. Runs of equal size balance the threads as well
/// as more of them would, and each run builds its table once: four a thread
/// built a million-group table four times over for db-benchmark's q3 at 1e8
/// rows and left the final tasks four times the states to merge (q3 from
/// Parquet 4.1 s to 3.6 s, q5 3.5 s to 3.2 s, peak RSS 570 MB to 410 MB).
///
/// Unless some state grows with its group's rows (`growing`: a median keeps
/// every value), which grouping does not reduce: four runs a thread then,
/// whose values mostly fit a task's table and are taken once at its end,
/// rather than flushed from a full table while it fills again (q6 at 1e8 rows:
/// peak RSS 0.9-1.15 GB with a run a thread, 0.74-0.82 GB with four).
pub fn partial_runs(total: u64, threads: usize, growing: bool) -> u64 {
    let threads = threads.max(1) as u64;
    let least = if growing { 4 * threads } else { threads };
    total
        .div_ceil(PARTIAL_GATHER_BYTES)
        .max(least)
        .next_multiple_of(threads)
}

/// The bytes [`gather`] aims at for `total` bytes of input on `threads` threads
/// under `memory_limit`: four runs a thread at least, so that the threads end
/// together, and a run a small part of a task's share of the limit (its rows
/// may be held whole, as a top k's are).
pub fn gather_target(total: u64, threads: usize, memory_limit: u64) -> u64 {
    let threads = threads.max(1) as u64;
    (total / (4 * threads)).min(memory_limit / (8 * threads))
}

#[cfg(test)]
mod gather_tests {
    use super::*;

    fn part(i: u64, bytes: u64) -> (Part, Pipeline) {
        (Part::source("src", i, bytes), Pipeline::default())
    }

    #[test]
    fn consecutive_parts_of_the_same_steps_gather_up_to_the_target() {
        let parts: Vec<_> = (0..10).map(|i| part(i, 3)).collect();
        let runs = gather(parts, 10);
        let sizes: Vec<usize> = runs.iter().map(|(r, _)| r.len()).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        let order: Vec<DataRef> = runs
            .iter()
            .flat_map(|(r, _)| r.iter().map(|p| p.data.clone()))
            .collect();
        let want: Vec<DataRef> = (0..10).map(|i| DataRef::partition("src", i)).collect();
        assert_eq!(order, want);
        // A part larger than the target is a run of its own; other steps never
        // share a run.
        let mut parts = vec![part(0, 50), part(1, 2), part(2, 2)];
        parts[2].1 = Pipeline {
            steps: vec![pipeline::Step::Filter(crate::frame::expr::Expr::col("x"))],
        };
        assert_eq!(gather(parts, 10).len(), 3);
    }

    #[test]
    fn parts_gather_evenly_into_the_runs_asked_for() {
        let sizes = |runs: &[(Vec<Part>, Pipeline)]| -> Vec<usize> {
            runs.iter().map(|(r, _)| r.len()).collect()
        };
        // 58 row groups into 8 runs: 7 or 8 each, in order.
        let runs = gather_evenly((0..58).map(|i| part(i, 1000)).collect(), 8);
        assert_eq!(sizes(&runs), [8, 7, 7, 7, 8, 7, 7, 7]);
        let order: Vec<DataRef> = runs
            .iter()
            .flat_map(|(r, _)| r.iter().map(|p| p.data.clone()))
            .collect();
        let want: Vec<DataRef> = (0..58).map(|i| DataRef::partition("src", i)).collect();
        assert_eq!(order, want);
        // Fewer parts than runs: one each; a large part does not pull the
        // next into its run; other steps start a run of their own.
        assert_eq!(
            sizes(&gather_evenly((0..3).map(|i| part(i, 5)).collect(), 8)),
            [1, 1, 1]
        );
        let uneven = vec![part(0, 90), part(1, 5), part(2, 5)];
        assert_eq!(sizes(&gather_evenly(uneven, 2)), [1, 2]);
        let mut mixed: Vec<_> = (0..4).map(|i| part(i, 1)).collect();
        mixed[2].1 = Pipeline {
            steps: vec![pipeline::Step::Filter(crate::frame::expr::Expr::col("x"))],
        };
        assert_eq!(sizes(&gather_evenly(mixed, 1)), [2, 1, 1]);
        // Sizes unknown: a run each.
        assert_eq!(
            sizes(&gather_evenly((0..3).map(|i| part(i, 0)).collect(), 1)),
            [1, 1, 1]
        );
    }

    #[test]
    fn partial_runs_are_one_a_thread_at_least_four_for_growing_states_and_a_multiple_of_the_threads(
    ) {
        assert_eq!(partial_runs(100, 2, false), 2);
        assert_eq!(partial_runs(4 * PARTIAL_GATHER_BYTES, 2, false), 4);
        assert_eq!(partial_runs(51 * PARTIAL_GATHER_BYTES - 1, 2, false), 52);
        assert_eq!(partial_runs(13 * PARTIAL_GATHER_BYTES, 3, false), 15);
        assert_eq!(partial_runs(0, 0, false), 1);
        // Growing states: four a thread at least.
        assert_eq!(partial_runs(100, 2, true), 8);
        assert_eq!(partial_runs(51 * PARTIAL_GATHER_BYTES - 1, 2, true), 52);
    }

    #[test]
    fn the_target_leaves_every_thread_work_and_fits_the_limit() {
        assert_eq!(gather_target(1 << 30, 2, 64 << 30), 128 << 20);
        assert_eq!(gather_target(1 << 30, 2, 1 << 30), 64 << 20);
        assert_eq!(gather_target(100, 2, 1 << 30), 12);
    }
}
