//! A plan: the datasets it touches and its tasks, with validation and JSON.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::task::{Task, TaskId};
use crate::error::{Error, Result};

/// The version of the plan format this build writes and reads (`formats/plan-v1.md`).
pub const PLAN_FORMAT_VERSION: u32 = 1;

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
        }
    }
}

/// A graph of chunk tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version; see [`PLAN_FORMAT_VERSION`].
    pub version: u32,
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

    /// Adds a task, setting its id; returns the id.
    pub fn push(&mut self, mut task: Task) -> TaskId {
        let id = self.tasks.len() as TaskId;
        task.id = id;
        self.tasks.push(task);
        id
    }

    /// Checks ids, dependencies and dataset names, and that the graph has no cycle.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        if self.version != PLAN_FORMAT_VERSION {
            return Err(Error::Usage(format!(
                "plan format version {} is not supported; this blockwise reads version {PLAN_FORMAT_VERSION}",
                self.version
            )));
        }
        let datasets: HashSet<&str> = self.datasets.iter().map(|d| d.id.as_str()).collect();
        for (i, task) in self.tasks.iter().enumerate() {
            if task.id as usize != i {
                return Err(Error::Usage(format!(
                    "plan task at position {i} has id {}",
                    task.id
                )));
            }
            if let Some(&d) = task.deps.iter().find(|&&d| d as usize >= self.tasks.len()) {
                return Err(Error::Usage(format!(
                    "plan task {i} depends on task {d}, which does not exist"
                )));
            }
            for r in task.inputs.iter().chain(std::iter::once(&task.output)) {
                let name = match r {
                    super::DataRef::Chunk { dataset, .. }
                    | super::DataRef::Partition { dataset, .. }
                    | super::DataRef::Whole { dataset } => dataset,
                };
                if !datasets.is_empty() && !datasets.contains(name.as_str()) {
                    return Err(Error::Usage(format!(
                        "plan task {i} names dataset {name:?}, which the plan does not list"
                    )));
                }
            }
        }
        self.topological_order().map(|_| ())
    }

    /// Task ids in an order where every task comes after its dependencies.
    ///
    /// # Errors
    /// [`Error::Usage`] when the graph has a cycle.
    pub fn topological_order(&self) -> Result<Vec<TaskId>> {
        let n = self.tasks.len();
        let mut waiting: Vec<usize> = self.tasks.iter().map(|t| t.deps.len()).collect();
        let dependents = self.dependents();
        let mut ready: Vec<TaskId> = (0..n as TaskId)
            .filter(|&i| waiting[i as usize] == 0)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(t) = ready.pop() {
            order.push(t);
            for &d in &dependents[t as usize] {
                waiting[d as usize] -= 1;
                if waiting[d as usize] == 0 {
                    ready.push(d);
                }
            }
        }
        if order.len() != n {
            return Err(Error::Usage(format!(
                "plan has a dependency cycle among {} tasks",
                n - order.len()
            )));
        }
        Ok(order)
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
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("plan to JSON: {e}")))
    }

    /// Reads and validates a plan from JSON.
    ///
    /// # Errors
    /// [`Error::Usage`] for JSON that is not a valid plan.
    pub fn from_json(text: &str) -> Result<Self> {
        let plan: Plan = serde_json::from_str(text)
            .map_err(|e| Error::Usage(format!("not a blockwise plan: {e}")))?;
        plan.validate()?;
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
    fn json_round_trip_keeps_everything() {
        let mut plan = Plan::new();
        plan.datasets = vec![
            Dataset {
                id: "src".into(),
                path: "/a.zarr".into(),
                format: "zarr".into(),
                role: DatasetRole::Input,
            },
            Dataset {
                id: "dst".into(),
                path: "/b.parquet".into(),
                format: "parquet".into(),
                role: DatasetRole::Output,
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
    fn cycles_and_dangling_deps_are_refused() {
        let mut plan = Plan::new();
        plan.push(task(vec![1], TaskKind::Load));
        plan.push(task(vec![0], TaskKind::Load));
        assert!(plan.validate().unwrap_err().to_string().contains("cycle"));
        let mut plan = Plan::new();
        plan.push(task(vec![7], TaskKind::Load));
        assert!(plan.validate().unwrap_err().to_string().contains("task 7"));
        let json = r#"{"version": 2, "tasks": []}"#;
        assert!(Plan::from_json(json)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }
}
