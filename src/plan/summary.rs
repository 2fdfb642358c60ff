//! What a plan will do, before it runs: its stages (the tasks of one operation into
//! one dataset), what each may hold at once against the memory limit, which can
//! spill, what is read and written, and the critical path. `blockwise explain` prints
//! it as text, Graphviz or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::{DatasetRole, Plan, Registry};
use crate::error::Result;
use crate::memory::human_bytes as bytes;

/// A plan, summarized stage by stage.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// Tasks in the plan.
    pub tasks: usize,
    /// Tasks on the longest chain of dependencies: the fewest steps the plan takes
    /// however many threads run it.
    pub critical_path: usize,
    /// Threads the projection assumes run at once.
    pub threads: usize,
    /// The memory limit the projection is compared with.
    pub memory_limit_bytes: u64,
    /// The largest a single task may project (the executor refuses the plan past it).
    pub task_limit_bytes: u64,
    /// What the plan reads.
    pub reads: Vec<DatasetRead>,
    /// Where the plan writes its results.
    pub writes: Vec<DatasetWrite>,
    /// The stages, in the order they start.
    pub stages: Vec<Stage>,
    /// Stage `from` feeds stage `to` (indices into `stages`).
    pub edges: Vec<StageEdge>,
}

/// What is read of one input dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetRead {
    /// The dataset's id in the plan.
    pub dataset: String,
    /// Its format.
    pub format: String,
    /// Its path.
    pub path: String,
    /// The columns read, when the plan names them (all otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Parquet row groups read, when the plan names them (all otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_groups: Option<Vec<usize>>,
    /// Table partitions read (a partition is a byte range of a CSV file, row groups
    /// of a Parquet file, record batches of an IPC file).
    pub partitions: usize,
    /// Array chunks read.
    pub chunks: usize,
    /// Array shape, when the plan records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<u64>>,
    /// Bytes of the input file when the plan was made (none for a directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One output of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetWrite {
    /// The dataset's id in the plan.
    pub dataset: String,
    /// Its format.
    pub format: String,
    /// Its path.
    pub path: String,
}

/// Where a stage's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputPlace {
    /// Entries of the plan's store: in memory, spilled least recently used first
    /// when memory runs short.
    Store,
    /// A file or an array written where the dataset's path says.
    Disk,
}

/// The tasks of one operation into one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// The operation's name.
    pub op: String,
    /// Its version.
    pub version: u32,
    /// Tasks in the stage.
    pub tasks: usize,
    /// The datasets its tasks read.
    pub inputs: Vec<String>,
    /// The dataset its tasks publish into.
    pub output: String,
    /// Where that output goes.
    pub output_place: OutputPlace,
    /// The most one of its tasks projects.
    pub task_bytes: u64,
    /// Tasks of the stage that can run at once: the threads, or fewer when its tasks
    /// wait for one another (a chain runs one at a time).
    pub at_once: usize,
    /// What those tasks project together: the `at_once` largest.
    pub projected_bytes: u64,
    /// Whether the operation moves its working memory to disk when the pool is
    /// short; `None` for an operation this blockwise does not know.
    pub spills: Option<bool>,
}

/// Stage `from` produces what stage `to` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StageEdge {
    /// The producing stage.
    pub from: usize,
    /// The consuming stage.
    pub to: usize,
}

impl PlanSummary {
    /// Summarizes `plan` as run by `threads` threads under `memory_limit` bytes,
    /// with `registry` saying which operations spill.
    ///
    /// # Errors
    /// [`crate::error::Error::BadPlan`] for a plan whose dependencies do not form a
    /// graph that can run (a cycle, a missing task).
    pub fn of(plan: &Plan, registry: &Registry, threads: usize, memory_limit: u64) -> Result<Self> {
        let waves = plan.waves()?;
        let threads = threads.max(1);
        let mut wave_of = vec![0usize; plan.tasks.len()];
        for (w, ids) in waves.iter().enumerate() {
            for &id in ids {
                wave_of[id as usize] = w;
            }
        }
        // Stages keyed by (operation, output dataset), numbered as their first task
        // starts: by wave, then by task id.
        let mut order: Vec<usize> = (0..plan.tasks.len()).collect();
        order.sort_by_key(|&i| (wave_of[i], i));
        let mut index: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut stage_of = vec![0usize; plan.tasks.len()];
        let mut members: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            let task = &plan.tasks[i];
            let key = (task.op.name.as_str(), task.output.dataset());
            let s = *index.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            stage_of[i] = s;
            members[s].push(i);
        }
        let stages = members
            .iter()
            .map(|tasks| stage(plan, registry, tasks, &wave_of, threads))
            .collect();
        let mut edges = BTreeSet::new();
        for (i, task) in plan.tasks.iter().enumerate() {
            for &d in &task.deps {
                let (from, to) = (stage_of[d as usize], stage_of[i]);
                if from != to {
                    edges.insert(StageEdge { from, to });
                }
            }
        }
        Ok(PlanSummary {
            tasks: plan.tasks.len(),
            critical_path: waves.len(),
            threads,
            memory_limit_bytes: memory_limit,
            task_limit_bytes: super::projection::task_limit(memory_limit),
            reads: reads(plan),
            writes: plan
                .datasets
                .iter()
                .filter(|d| d.role == DatasetRole::Output && !is_staging(plan, &d.id))
                .map(|d| DatasetWrite {
                    dataset: d.id.clone(),
                    format: d.format.clone(),
                    path: d.path.clone(),
                })
                .collect(),
            stages,
            edges: edges.into_iter().collect(),
        })
    }

    /// The stage holding the most at once.
    pub fn largest_stage(&self) -> Option<&Stage> {
        self.stages.iter().max_by_key(|s| s.projected_bytes)
    }

    /// The summary as a table for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let largest = self.largest_stage();
        let _ = writeln!(
            out,
            "plan: {} tasks in {} stages; critical path {} tasks; projected for {} \
             thread(s) and a memory limit of {}",
            self.tasks,
            self.stages.len(),
            self.critical_path,
            self.threads,
            bytes(self.memory_limit_bytes)
        );
        if !self.reads.is_empty() {
            let _ = writeln!(out, "\nreads:");
            for r in &self.reads {
                let _ = writeln!(
                    out,
                    "  {} ({}) {}: {}",
                    r.dataset,
                    r.format,
                    r.path,
                    r.what()
                );
            }
        }
        if !self.writes.is_empty() {
            let _ = writeln!(out, "\nwrites:");
            for w in &self.writes {
                let _ = writeln!(out, "  {} ({}) {}", w.dataset, w.format, w.path);
            }
        }
        let _ = writeln!(out, "\nstages:");
        let header = [
            "#",
            "operation",
            "tasks",
            "reads",
            "writes",
            "per task",
            "at once",
            "of limit",
            "spills",
        ];
        let rows: Vec<[String; 9]> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                [
                    i.to_string(),
                    s.op.clone(),
                    s.tasks.to_string(),
                    if s.inputs.is_empty() {
                        "-".into()
                    } else {
                        s.inputs.join(",")
                    },
                    format!(
                        "{} ({})",
                        s.output,
                        match s.output_place {
                            OutputPlace::Store => "store",
                            OutputPlace::Disk => "disk",
                        }
                    ),
                    bytes(s.task_bytes),
                    format!("{} x{}", bytes(s.projected_bytes), s.at_once),
                    percent(s.projected_bytes, self.memory_limit_bytes),
                    match s.spills {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => "unknown op".into(),
                    },
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[&str]| {
            let mut l = String::from(" ");
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                // Names left-aligned, numbers right-aligned.
                if matches!(i, 1 | 3 | 4 | 8) {
                    let _ = write!(l, " {cell:<w$}");
                } else {
                    let _ = write!(l, " {cell:>w$}");
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header));
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&cells));
        }
        let _ = writeln!(
            out,
            "\nper task  the most one task projects; one may take {} (half the limit)\n\
             at once   what the stage's tasks that can run together project, and how many\n\
             spills    whether the operation moves its working memory to disk when memory\n          \
             runs short; outputs in the store spill in any case, least recently used first",
            bytes(self.task_limit_bytes)
        );
        if let Some(s) = largest {
            let _ = writeln!(
                out,
                "largest: {} ({} at once, {} of the limit){}",
                s.op,
                bytes(s.projected_bytes),
                percent(s.projected_bytes, self.memory_limit_bytes),
                if s.spills == Some(false) && s.projected_bytes > self.memory_limit_bytes {
                    "; it cannot spill: expect the memory gate to run fewer of its tasks \
                     at once"
                } else {
                    ""
                }
            );
        }
        out
    }

    /// The stage graph in Graphviz's language: a node a stage and an input, an edge
    /// where one feeds the next.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph plan {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
        );
        for (i, r) in self.reads.iter().enumerate() {
            let _ = writeln!(
                out,
                "  in{i} [shape=note, label=\"{}\\n{} ({})\"];",
                dot_escape(&r.dataset),
                dot_escape(&r.what()),
                dot_escape(&r.format)
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            let style = match s.spills {
                Some(true) => ", style=filled, fillcolor=\"#d8eefe\"",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  s{i} [shape=box{style}, label=\"{}\\n{} task(s) -> {}\\n{} x{}\"];",
                dot_escape(&s.op),
                s.tasks,
                dot_escape(&s.output),
                bytes(s.projected_bytes),
                s.at_once
            );
            for (r, read) in self.reads.iter().enumerate() {
                if s.inputs.contains(&read.dataset) {
                    let _ = writeln!(out, "  in{r} -> s{i};");
                }
            }
        }
        for e in &self.edges {
            // A later stage that an earlier one waits for holds it back (a window on
            // what waits in the store), not feeds it.
            let style = if e.from > e.to {
                " [style=dashed, constraint=false, label=\"window\"]"
            } else {
                ""
            };
            let _ = writeln!(out, "  s{} -> s{}{style};", e.from, e.to);
        }
        out.push_str("}\n");
        out
    }
}

impl DatasetRead {
    /// What is read, in words: columns, row groups, partitions or chunks.
    pub fn what(&self) -> String {
        let mut parts = Vec::new();
        if self.chunks > 0 {
            let shape = self.shape.as_ref().map_or(String::new(), |s| {
                let dims: Vec<String> = s.iter().map(u64::to_string).collect();
                format!(" of an array of shape ({})", dims.join(", "))
            });
            parts.push(format!("{} chunk(s){shape}", self.chunks));
        }
        if self.partitions > 0 {
            parts.push(format!("{} partition(s)", self.partitions));
        }
        match &self.columns {
            Some(c) => parts.push(format!("columns {}", c.join(", "))),
            None if self.partitions > 0 => parts.push("every column".into()),
            None => {}
        }
        if let Some(g) = &self.row_groups {
            parts.push(format!("{} row group(s)", g.len()));
        }
        if let Some(b) = self.bytes {
            parts.push(bytes(b));
        }
        if parts.is_empty() {
            "read whole".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Whether dataset `id` is where an output is assembled before the last task
/// publishes it at its destination: it lives in the plan's working directory.
fn is_staging(plan: &Plan, id: &str) -> bool {
    !plan.workdir.is_empty()
        && plan
            .dataset(id)
            .is_ok_and(|d| std::path::Path::new(&d.path).starts_with(&plan.workdir))
}

fn stage(
    plan: &Plan,
    registry: &Registry,
    tasks: &[usize],
    wave_of: &[usize],
    threads: usize,
) -> Stage {
    let first = &plan.tasks[tasks[0]];
    let mut inputs: Vec<String> = Vec::new();
    for &i in tasks {
        for input in &plan.tasks[i].inputs {
            let id = input.dataset();
            if !inputs.iter().any(|d| d == id) {
                inputs.push(id.to_string());
            }
        }
    }
    // The widest wave of the stage bounds how many of its tasks are ready at once.
    let mut per_wave: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in tasks {
        *per_wave.entry(wave_of[i]).or_default() += 1;
    }
    let widest = per_wave.values().copied().max().unwrap_or(1);
    let at_once = widest.min(threads).max(1);
    let mut memory: Vec<u64> = tasks.iter().map(|&i| plan.tasks[i].memory_bytes).collect();
    memory.sort_unstable_by(|a, b| b.cmp(a));
    let output = first.output.dataset().to_string();
    let output_place = match plan.dataset(&output) {
        Ok(d)
            if d.role == DatasetRole::Intermediate
                && matches!(d.format.as_str(), "entries" | "memory") =>
        {
            OutputPlace::Store
        }
        Ok(d) if d.role == DatasetRole::Intermediate && d.path.is_empty() => OutputPlace::Store,
        _ => OutputPlace::Disk,
    };
    Stage {
        op: first.op.name.clone(),
        version: first.op.version,
        tasks: tasks.len(),
        inputs,
        output,
        output_place,
        task_bytes: memory.first().copied().unwrap_or(0),
        at_once,
        // Saturating: a hand-edited plan may claim any size (`explain` says it; the
        // executor refuses it).
        projected_bytes: memory
            .iter()
            .take(at_once)
            .fold(0u64, |sum, &m| sum.saturating_add(m)),
        spills: registry.spills(&first.op.name, first.op.version),
    }
}

fn reads(plan: &Plan) -> Vec<DatasetRead> {
    plan.datasets
        .iter()
        .filter(|d| d.role == DatasetRole::Input)
        .map(|d| {
            let mut partitions = BTreeSet::new();
            let mut chunks = BTreeSet::new();
            for task in &plan.tasks {
                for input in task.inputs.iter().filter(|r| r.dataset() == d.id) {
                    match input {
                        super::DataRef::Partition { index, .. } => {
                            partitions.insert(*index);
                        }
                        super::DataRef::Chunk { key, .. } => {
                            chunks.insert(key.clone());
                        }
                        super::DataRef::Whole { .. } => {}
                    }
                }
            }
            let strings = |key: &str| -> Option<Vec<String>> {
                serde_json::from_value(d.meta.get(key)?.clone()).ok()
            };
            // A CSV source records the columns of the file, a projection the ones read.
            let all_columns = || -> Option<Vec<String>> {
                let schema: crate::storage::frame::SerializedSchema =
                    serde_json::from_value(d.meta.get("csv")?.get("full_schema")?.clone()).ok()?;
                let schema = schema.decode().ok()?;
                Some(schema.fields().iter().map(|f| f.name().clone()).collect())
            };
            DatasetRead {
                dataset: d.id.clone(),
                format: d.format.clone(),
                path: d.path.clone(),
                columns: strings("columns").or_else(all_columns),
                row_groups: d
                    .meta
                    .get("row_groups")
                    .and_then(|v| serde_json::from_value(v.clone()).ok()),
                partitions: partitions.len(),
                chunks: chunks.len(),
                shape: d
                    .meta
                    .get("shape")
                    .and_then(|v| serde_json::from_value(v.clone()).ok()),
                bytes: d.stamp.map(|s| s.bytes),
            }
        })
        .collect()
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.0}%", part as f64 * 100.0 / whole as f64)
}

/// Text inside a Graphviz double-quoted label.
fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
