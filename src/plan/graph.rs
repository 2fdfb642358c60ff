//! A plan: the datasets it touches and its tasks, with validation and JSON.

use std::collections::HashMap;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::task::{Task, TaskId, TaskKind};
use crate::error::{Error, Result};

/// The version of the plan format this build writes and reads (`formats/plan-v2.md`).
/// Version 1 plans passed parts through process memory and cannot be run from their
/// JSON, so they are refused.
pub const PLAN_FORMAT_VERSION: u32 = 2;

/// What a dataset is to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetRole {
    /// Read only.
    Input,
    /// Written by the plan and kept.
    Output,
    /// Written and read by the plan, removed when it ends.
    Intermediate,
}

/// A dataset a plan reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// The id tasks use to name it.
    pub id: String,
    /// Where it is stored.
    pub path: String,
    /// Its format name (`"zarr"`, `"parquet"`, ...).
    pub format: String,
    /// Input, output or intermediate.
    pub role: DatasetRole,
    /// What a worker needs to open it beyond its path: read options and the
    /// partition index of a table, shape, dtype, chunks and fill value of an array,
    /// write options of an output. Each format's operations define it.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub meta: serde_json::Value,
    /// For an input file: its size and modification time when the plan was made. A
    /// source changed since would no longer match the partitions, types and shapes
    /// the plan holds, so it is refused (see [`Plan::check_inputs`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<FileStamp>,
}

/// A file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Its length in bytes.
    pub bytes: u64,
    /// Its modification time, in nanoseconds since the Unix epoch.
    pub modified_ns: u64,
}

impl FileStamp {
    /// The stamp of the file at `path`; `None` for a directory (whose own time does
    /// not follow its files') or a path that cannot be read (its opening says why).
    pub fn of(path: &std::path::Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let since_epoch = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(FileStamp {
            bytes: meta.len(),
            modified_ns: u64::try_from(since_epoch.as_nanos()).ok()?,
        })
    }
}

impl Dataset {
    /// A dataset named `id`, stored at `path` in `format`.
    pub fn new(
        id: impl Into<String>,
        path: impl std::fmt::Display,
        format: impl Into<String>,
        role: DatasetRole,
    ) -> Self {
        Dataset {
            id: id.into(),
            path: path.to_string(),
            format: format.into(),
            role,
            meta: serde_json::Value::Null,
            stamp: None,
        }
    }

    /// The same dataset, described by `meta`.
    pub fn with_meta(mut self, meta: serde_json::Value) -> Self {
        self.meta = meta;
        self
    }
}

/// A graph of chunk tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version; see [`PLAN_FORMAT_VERSION`].
    pub version: u32,
    /// The directory where the plan's intermediates, completion markers and output
    /// in progress live: on a file system every worker sees. Removed after success;
    /// kept after a failure, so that a rerun resumes.
    #[serde(default)]
    pub workdir: String,
    /// The datasets the tasks name.
    #[serde(default)]
    pub datasets: Vec<Dataset>,
    /// The tasks; `tasks[i].id == i`.
    pub tasks: Vec<Task>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            version: PLAN_FORMAT_VERSION,
            workdir: String::new(),
            datasets: Vec::new(),
            tasks: Vec::new(),
        }
    }
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// A plan of `n` tasks of an operation `name` with no parameters, each writing
    /// a partition of an intermediate dataset `"x"`, with `kind` and `deps` given
    /// per task: the filler of executor tests, where only the graph matters.
    pub fn placeholders(name: &str, tasks: &[(TaskKind, Vec<TaskId>)]) -> Self {
        let mut plan = Plan::new();
        plan.datasets = vec![Dataset::new("x", "", "memory", DatasetRole::Intermediate)];
        for (i, (kind, deps)) in tasks.iter().enumerate() {
            plan.push(Task {
                deps: deps.clone(),
                ..Task::new(
                    super::OpSpec::new(name, serde_json::Value::Null),
                    super::DataRef::partition("x", i as u64),
                    *kind,
                )
            });
        }
        plan
    }

    /// `base`, or `base` with the first number that makes it an id no dataset of
    /// the plan has yet (`groups`, `groups-1`, ...): a plan with two stages of one
    /// kind names their datasets apart.
    pub fn fresh_id(&self, base: &str) -> String {
        let taken = |id: &str| self.datasets.iter().any(|d| d.id == id);
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|k| format!("{base}-{k}"))
            .find(|id| !taken(id))
            .unwrap_or_default()
    }

    /// Adds a task, setting its id; returns the id.
    pub fn push(&mut self, mut task: Task) -> TaskId {
        let id = self.tasks.len() as TaskId;
        task.id = id;
        self.tasks.push(task);
        id
    }

    /// Checks the version, ids, dependencies and dataset names, and that the graph
    /// has no cycle.
    ///
    /// # Errors
    /// [`Error::BadPlan`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::BadPlan { reason });
        if self.version != PLAN_FORMAT_VERSION {
            return bad(format!(
                "format version {} is not supported; this blockwise reads version \
                 {PLAN_FORMAT_VERSION} (make the plan again with `blockwise plan`)",
                self.version
            ));
        }
        let mut datasets = HashSet::new();
        for d in &self.datasets {
            // Ids name directories of the working directory: nothing that could
            // leave it.
            let safe = !d.id.is_empty()
                && d.id.len() <= 64
                && d.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !safe {
                return bad(format!(
                    "dataset id {:?} must be 1 to 64 letters, digits, '_' or '-'",
                    d.id
                ));
            }
            if !datasets.insert(d.id.as_str()) {
                return bad(format!("dataset id {:?} is listed twice", d.id));
            }
        }
        for (i, task) in self.tasks.iter().enumerate() {
            if task.id as usize != i {
                return bad(format!("the task at position {i} has id {}", task.id));
            }
            if let Some(&d) = task.deps.iter().find(|&&d| d as usize >= self.tasks.len()) {
                return bad(format!(
                    "task {i} depends on task {d}, which does not exist"
                ));
            }
            for r in task.inputs.iter().chain(std::iter::once(&task.output)) {
                if !datasets.contains(r.dataset()) {
                    return bad(format!(
                        "task {i} names dataset {:?}, which the plan does not list",
                        r.dataset()
                    ));
                }
            }
        }
        // An output no task writes would leave the job "done" with nothing
        // published (a hand-edited plan missing its last task).
        if let Some(d) = self.datasets.iter().find(|d| {
            d.role == DatasetRole::Output && !self.tasks.iter().any(|t| t.output.dataset() == d.id)
        }) {
            return bad(format!(
                "no task writes its output dataset {:?} ({})",
                d.id, d.path
            ));
        }
        self.topological_order().map(|_| ())
    }

    /// Checks that every input file with a stamp still has it.
    ///
    /// # Errors
    /// [`Error::BadPlan`] naming the first input that changed since the plan was
    /// made.
    pub fn check_inputs(&self) -> Result<()> {
        for d in self
            .datasets
            .iter()
            .filter(|d| d.role == DatasetRole::Input)
        {
            let Some(then) = d.stamp else { continue };
            // Missing or unreadable: opening it says so, with the path.
            let now = FileStamp::of(std::path::Path::new(&d.path));
            if let Some(now) = now.filter(|now| *now != then) {
                return Err(Error::BadPlan {
                    reason: format!(
                        "{} changed since the plan was made ({} bytes then, {} now; \
                         modified since): make the plan again",
                        d.path, then.bytes, now.bytes
                    ),
                });
            }
        }
        Ok(())
    }

    /// The dataset `id`.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the plan lists none.
    pub fn dataset(&self, id: &str) -> Result<&Dataset> {
        self.datasets
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| Error::BadPlan {
                reason: format!("no dataset {id:?}"),
            })
    }

    /// Task ids in an order where every task comes after its dependencies.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the graph has a cycle.
    pub fn topological_order(&self) -> Result<Vec<TaskId>> {
        let waves = self.waves()?;
        Ok(waves.into_iter().flatten().collect())
    }

    /// The tasks in waves: every task's dependencies are in earlier waves, and each
    /// task is in the earliest wave it can be (what a job array or a shell loop runs
    /// one wave at a time).
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the graph has a cycle.
    pub fn waves(&self) -> Result<Vec<Vec<TaskId>>> {
        let n = self.tasks.len();
        let mut waiting: Vec<usize> = self.tasks.iter().map(|t| t.deps.len()).collect();
        let dependents = self.dependents();
        let mut wave: Vec<TaskId> = (0..n as TaskId)
            .filter(|&i| waiting[i as usize] == 0)
            .collect();
        let mut waves = Vec::new();
        let mut placed = 0;
        while !wave.is_empty() {
            placed += wave.len();
            let mut next = Vec::new();
            for &t in &wave {
                for &d in &dependents[t as usize] {
                    waiting[d as usize] -= 1;
                    if waiting[d as usize] == 0 {
                        next.push(d);
                    }
                }
            }
            next.sort_unstable();
            waves.push(std::mem::replace(&mut wave, next));
        }
        if placed != n {
            return Err(Error::BadPlan {
                reason: format!("a dependency cycle among {} tasks", n - placed),
            });
        }
        Ok(waves)
    }

    /// Which tasks must run for the plan's outputs to exist, given which task outputs
    /// are already published: a task runs when its output is not published and a
    /// task that needs it runs, or nothing uses it. A task's users are the tasks
    /// that depend on it and those that read its output: a sort's merges read the
    /// runs though they wait only for the cut, and runs lost with a killed process
    /// must be made again for them. So a resumed run skips what a killed one
    /// finished, and what only finished tasks needed.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the graph has a cycle.
    pub fn needed(&self, published: impl Fn(&Task) -> bool) -> Result<Vec<bool>> {
        let order = self.topological_order()?;
        let mut users = self.dependents();
        let producer: HashMap<&super::DataRef, TaskId> =
            self.tasks.iter().map(|t| (&t.output, t.id)).collect();
        for task in &self.tasks {
            for input in &task.inputs {
                if let Some(&p) = producer.get(input) {
                    if p != task.id && !users[p as usize].contains(&task.id) {
                        users[p as usize].push(task.id);
                    }
                }
            }
        }
        let mut needed = vec![false; self.tasks.len()];
        for &t in order.iter().rev() {
            let task = &self.tasks[t as usize];
            let wanted = users[t as usize].is_empty()
                || users[t as usize].iter().any(|&d| needed[d as usize]);
            needed[t as usize] = wanted && !published(task);
        }
        Ok(needed)
    }

    /// For every task, the tasks that depend on it.
    pub fn dependents(&self) -> Vec<Vec<TaskId>> {
        let mut out = vec![Vec::new(); self.tasks.len()];
        for t in &self.tasks {
            for &d in &t.deps {
                if let Some(list) = out.get_mut(d as usize) {
                    list.push(t.id);
                }
            }
        }
        out
    }

    /// The plan as JSON.
    ///
    /// # Errors
    /// Only if a parameter value cannot be serialized (never for plans built here).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::bug("plan to JSON", e))
    }

    /// Reads and validates a plan from JSON. Its working directory and the paths of
    /// its input and output datasets must be absolute: a plan read from a file may run in any directory, and a
    /// relative path would name another file there.
    ///
    /// # Errors
    /// [`Error::BadPlan`] for JSON that is not a valid plan.
    pub fn from_json(text: &str) -> Result<Self> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| Error::BadPlan {
            reason: e.to_string(),
        })?;
        plan.validate()?;
        let paths = std::iter::once(("the working directory".to_string(), &plan.workdir)).chain(
            // An intermediate's path is only a label: it lives in the data store.
            plan.datasets
                .iter()
                .filter(|d| d.role != DatasetRole::Intermediate)
                .map(|d| (format!("dataset {:?}", d.id), &d.path)),
        );
        for (what, path) in paths {
            if !path.is_empty() && std::path::Path::new(path).is_relative() {
                return Err(Error::BadPlan {
                    reason: format!(
                        "{what} is at {path:?}, a relative path; a plan names absolute \
                         paths, since it may run in any directory"
                    ),
                });
            }
        }
        // What the tasks write is staged in the working directory, and only the
        // `published` dataset (the last task's) names where it goes: an output
        // written elsewhere would appear unfinished, outside any atomic publish.
        let stray = plan.datasets.iter().find(|d| {
            d.role == DatasetRole::Output
                && d.id != "published"
                && !d.path.is_empty()
                && !std::path::Path::new(&d.path).starts_with(&plan.workdir)
        });
        if let Some(d) = stray {
            return Err(Error::BadPlan {
                reason: format!(
                    "dataset {:?} is written at {:?}, outside the plan's working directory \
                     {:?}; the output goes where dataset \"published\" says",
                    d.id, d.path, plan.workdir
                ),
            });
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DataRef, OpSpec, TaskKind};

    fn task(deps: Vec<TaskId>, kind: TaskKind) -> Task {
        Task {
            id: 0,
            op: OpSpec::new("copy_chunk", serde_json::json!({"level": 3})),
            inputs: vec![DataRef::Chunk {
                dataset: "src".into(),
                key: vec![0, 1],
            }],
            output: DataRef::Partition {
                dataset: "dst".into(),
                index: 4,
            },
            deps,
            memory_bytes: 1 << 20,
            unit_bytes: 1 << 19,
            kind,
        }
    }

    #[test]
    fn waves_put_every_task_after_its_dependencies_and_resume_skips_what_only_done_work_needs() {
        // 0 -> 2, 1 -> 2 -> 3, 1 -> 4
        let plan = Plan::placeholders(
            "noop",
            &[
                (TaskKind::Load, vec![]),
                (TaskKind::Load, vec![]),
                (TaskKind::Compute, vec![0, 1]),
                (TaskKind::Release, vec![2]),
                (TaskKind::Release, vec![1]),
            ],
        );
        assert_eq!(plan.waves().unwrap(), vec![vec![0, 1], vec![2, 4], vec![3]]);
        // Task 2's output is published: 0 is needed by nothing else; 1 still by 4.
        let needed = plan.needed(|t| t.id == 2).unwrap();
        assert_eq!(needed, vec![false, true, false, true, true]);
        // Everything published: nothing runs.
        assert!(plan.needed(|_| true).unwrap().iter().all(|n| !n));
    }

    #[test]
    fn an_output_no_task_writes_is_refused() {
        let mut plan = Plan::placeholders("noop", &[(TaskKind::Load, vec![])]);
        plan.datasets.push(Dataset::new(
            "out",
            "/data/out.parquet",
            "parquet",
            DatasetRole::Output,
        ));
        let err = plan.validate().unwrap_err().to_string();
        assert!(
            err.contains("no task writes its output dataset \"out\""),
            "{err}"
        );
        plan.tasks[0].output = super::super::DataRef::whole("out");
        plan.validate().unwrap();
    }

    #[test]
    fn a_task_reading_a_lost_output_makes_its_producer_run_again() {
        // 0 -> 1 -> 2, and 2 also reads 0's output without waiting for it directly
        // (a sort: runs, the cut, a merge reading the runs).
        let mut plan = Plan::placeholders(
            "noop",
            &[
                (TaskKind::Load, vec![]),
                (TaskKind::Compute, vec![0]),
                (TaskKind::Compute, vec![1]),
            ],
        );
        plan.tasks[2].inputs = vec![super::super::DataRef::partition("x", 0)];
        // The cut is published, the runs were lost, the merge has not run.
        let needed = plan.needed(|t| t.id == 1).unwrap();
        assert_eq!(needed, vec![true, false, true]);
        // Once the merge is published, the runs are not needed again.
        let needed = plan.needed(|t| t.id >= 1).unwrap();
        assert_eq!(needed, vec![false, false, false]);
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let mut plan = Plan::new();
        plan.datasets = vec![
            Dataset {
                id: "src".into(),
                path: "/a.zarr".into(),
                format: "zarr".into(),
                role: DatasetRole::Input,
                meta: serde_json::Value::Null,
                stamp: None,
            },
            Dataset {
                id: "dst".into(),
                path: "/b.parquet".into(),
                format: "parquet".into(),
                role: DatasetRole::Output,
                meta: serde_json::json!({"row_group_rows": 10}),
                stamp: Some(FileStamp {
                    bytes: 7,
                    modified_ns: 1 << 60,
                }),
            },
        ];
        let a = plan.push(task(vec![], TaskKind::Load));
        plan.push(task(vec![a], TaskKind::Release));
        let json = plan.to_json().unwrap();
        assert!(
            json.contains("\"type\": \"chunk\"") && json.contains("\"kind\": \"release\""),
            "{json}"
        );
        assert_eq!(Plan::from_json(&json).unwrap(), plan);
    }

    #[test]
    fn cycles_dangling_deps_and_unlisted_datasets_are_refused() {
        let listed = || {
            let mut plan = Plan::new();
            plan.datasets = vec![
                Dataset::new("src", "/a", "zarr", DatasetRole::Input),
                Dataset::new("dst", "/b", "zarr", DatasetRole::Output),
            ];
            plan
        };
        let mut plan = listed();
        plan.push(task(vec![1], TaskKind::Load));
        plan.push(task(vec![0], TaskKind::Load));
        assert!(plan.validate().unwrap_err().to_string().contains("cycle"));
        let mut plan = listed();
        plan.push(task(vec![7], TaskKind::Load));
        assert!(plan.validate().unwrap_err().to_string().contains("task 7"));
        let mut plan = Plan::new();
        plan.push(task(vec![], TaskKind::Load));
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("\"src\", which the plan does not list"), "{e}");
        let mut plan = listed();
        plan.datasets[0].id = "../up".into();
        assert!(plan
            .validate()
            .unwrap_err()
            .to_string()
            .contains("dataset id"));
        let mut plan = listed();
        plan.datasets[1].id = "src".into();
        assert!(plan.validate().unwrap_err().to_string().contains("twice"));
        let json = r#"{"version": 1, "tasks": []}"#;
        assert!(Plan::from_json(json)
            .unwrap_err()
            .to_string()
            .contains("version 1"));
    }
}
