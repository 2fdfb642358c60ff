//! The progress bar: shown on stderr when it is a terminal, never otherwise.
//!
//! One bar a job, advanced by the executor's task events. A plan that reads files of
//! known size counts bytes of input: every task carries a share of them in proportion
//! to the bytes of its unit of work (`Task::unit_bytes`), so that the bar moves as the
//! work does through every stage (reading, sorting, merging, writing) and reaches the
//! input's size exactly when the last task ends. Other plans count tasks. A skipped
//! task (a resumed run) counts as done; the position never passes the total. Spilled
//! bytes and a pause are said on the bar's line while they matter.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::memory::human_bytes;
use crate::plan::{DatasetRole, Plan};

/// Progress of one job, counted in bytes of input or in tasks.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
    state: Arc<Mutex<State>>,
    /// Draw on stderr once counting starts.
    draw: bool,
}

/// Reads the bytes spilled so far by the job's own stores (its spill files and the
/// store entries its monitor spilled), which report no event of their own.
#[derive(Clone)]
struct SpillSource(Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for SpillSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpillSource")
    }
}

#[derive(Debug, Default)]
struct State {
    /// Units each task is worth, by task id.
    weights: Vec<u64>,
    /// Units of the tasks done.
    done: u64,
    /// Units of the whole plan.
    total: u64,
    /// What the bar counts, said before it.
    what: String,
    /// Bytes spilled, as `BytesSpilled` events said (a rechunk's stages).
    spilled: u64,
    /// The rest of what was spilled, read when the line is redrawn.
    spill_source: Option<SpillSource>,
    /// The memory gate holds new tasks back.
    paused: bool,
    /// Units are bytes of input, not tasks.
    bytes: bool,
}

impl State {
    fn message(&self) -> String {
        let mut m = self.what.clone();
        let spilled = self.spilled + self.spill_source.as_ref().map_or(0, |s| (s.0)());
        if spilled > 0 {
            m.push_str(&format!(" · spilled {}", human_bytes(spilled)));
        }
        if self.paused {
            m.push_str(" · paused: memory above the pause threshold");
        }
        m
    }
}

impl Progress {
    /// A bar on stderr when `enabled` and stderr is a terminal; hidden otherwise.
    pub fn new(enabled: bool) -> Self {
        Progress {
            draw: enabled && std::io::stderr().is_terminal(),
            ..Progress::hidden()
        }
    }

    /// A bar that never draws (what a host polls instead).
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            state: Arc::default(),
            draw: false,
        }
    }

    /// Starts counting `plan`'s tasks: in bytes of input when every input of the
    /// plan is a file of known size and the tasks say the bytes of their units, in
    /// tasks otherwise. `spilled` reads what the job's stores have spilled so far
    /// (said on the bar's line as tasks end).
    pub fn start(&self, plan: &Plan, spilled: impl Fn() -> u64 + Send + Sync + 'static) {
        let inputs: Option<u64> = plan
            .datasets
            .iter()
            .filter(|d| d.role == DatasetRole::Input)
            .map(|d| {
                d.stamp.map(|s| s.bytes).or_else(|| {
                    // A plan made by `convert` carries no stamps: the file says.
                    let meta = std::fs::metadata(&d.path).ok()?;
                    meta.is_file().then_some(meta.len())
                })
            })
            .sum();
        let units: u128 = plan.tasks.iter().map(|t| u128::from(t.unit_bytes)).sum();
        let (weights, bytes) = match inputs {
            Some(input) if input > 0 && units > 0 => (weights(plan, input, units), true),
            _ => (vec![1; plan.tasks.len()], false),
        };
        let total = weights.iter().sum();
        let template = if bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        } else {
            "{msg} [{bar:30}] {pos}/{len} tasks {per_sec} ETA {eta}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        let mut state = self.lock();
        *state = State {
            weights,
            total,
            what: if bytes { "input" } else { "tasks" }.to_string(),
            bytes,
            spill_source: Some(SpillSource(Arc::new(spilled))),
            ..State::default()
        };
        self.bar.set_message(state.message());
        self.bar.set_length(total);
        self.bar.set_position(0);
        // Drawn from here on, not before: a bar of nothing would flash first.
        if self.draw {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Units counted so far and in all (for tests and front ends).
    pub fn position(&self) -> (u64, u64) {
        let state = self.lock();
        (state.done, state.total)
    }

    /// Whether the units are bytes of input (else tasks).
    pub fn counts_bytes(&self) -> bool {
        self.lock().bytes
    }

    /// What the bar says beside its count: the unit, spilled bytes, a pause.
    pub fn message(&self) -> String {
        self.lock().message()
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn task_done(&self, id: crate::plan::TaskId) {
        let mut state = self.lock();
        let units = state.weights.get(id as usize).copied().unwrap_or(0);
        state.done = (state.done + units).min(state.total);
        self.bar.set_position(state.done);
        self.bar.set_message(state.message());
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        change(&mut state);
        self.bar.set_message(state.message());
    }
}

/// Each task's share of `input` bytes, in proportion to its unit's bytes (`units`
/// in all), the rounding carried so that the shares add up to `input` exactly.
fn weights(plan: &Plan, input: u64, units: u128) -> Vec<u64> {
    let mut given: u128 = 0;
    let mut seen: u128 = 0;
    plan.tasks
        .iter()
        .map(|t| {
            seen += u128::from(t.unit_bytes);
            let upto = u128::from(input) * seen / units;
            let share = upto - given;
            given = upto;
            // `share` is at most `input`, a u64.
            u64::try_from(share).unwrap_or(u64::MAX)
        })
        .collect()
}

impl Default for Progress {
    fn default() -> Self {
        Progress::hidden()
    }
}

impl super::Observer for Progress {
    fn on_event(&self, event: &super::Event) {
        match event {
            // A skipped task (a resumed run) is done too.
            super::Event::TaskFinished(id) | super::Event::TaskSkipped(id) => self.task_done(*id),
            super::Event::BytesSpilled(n) => self.update(|s| s.spilled += n),
            super::Event::Paused => self.update(|s| s.paused = true),
            super::Event::Resumed => self.update(|s| s.paused = false),
            // Warnings go to stderr whether or not the bar is drawn, above it if it is.
            super::Event::Warning(text) => {
                self.bar.suspend(|| eprintln!("blockwise: warning: {text}"))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DataRef, Dataset, Event, FileStamp, Observer, OpSpec, Task, TaskKind};

    fn plan(units: &[u64], input: Option<u64>) -> Plan {
        let mut plan = Plan::new();
        let mut src = Dataset::new("src", "/in.csv", "csv", DatasetRole::Input);
        src.stamp = input.map(|bytes| FileStamp {
            bytes,
            modified_ns: 0,
        });
        plan.datasets.push(src);
        for (i, &u) in units.iter().enumerate() {
            plan.push(Task {
                unit_bytes: u,
                ..Task::new(
                    OpSpec::new("op", serde_json::Value::Null),
                    DataRef::partition("x", i as u64),
                    TaskKind::Compute,
                )
            });
        }
        plan
    }

    fn run(progress: &Progress, plan: &Plan, skipped: &[u32]) {
        for t in &plan.tasks {
            let event = if skipped.contains(&t.id) {
                Event::TaskSkipped(t.id)
            } else {
                Event::TaskFinished(t.id)
            };
            progress.on_event(&event);
            let (done, total) = progress.position();
            assert!(done <= total, "{done} past {total}");
        }
    }

    #[test]
    fn bytes_of_input_spread_over_every_stage_add_up_to_the_input() {
        // A read stage (units = the input), a merge stage (the same again), and
        // tasks of no unit (publication).
        let p = plan(&[300, 300, 301, 450, 451, 0, 0], Some(1000));
        let progress = Progress::hidden();
        progress.start(&p, || 0);
        assert_eq!(progress.position(), (0, 1000));
        progress.on_event(&Event::TaskFinished(0));
        let (after_one, _) = progress.position();
        // 300 of the 1,802 units: 1000 × 300 / 1802, rounded down.
        assert_eq!(after_one, 166);
        run(&progress, &p, &[3]);
        // Every task once, skipped or finished: exactly the input.
        assert_eq!(progress.position(), (1000, 1000));
        // A task reported twice (it cannot be, but) does not pass the total.
        progress.on_event(&Event::TaskFinished(4));
        assert_eq!(progress.position(), (1000, 1000));
    }

    #[test]
    fn tasks_are_counted_when_the_input_size_is_unknown() {
        let p = plan(&[10, 10, 10], None);
        let progress = Progress::hidden();
        progress.start(&p, || 0);
        assert_eq!(progress.position(), (0, 3));
        run(&progress, &p, &[]);
        assert_eq!(progress.position(), (3, 3));
        // And when no task says its unit.
        let p = plan(&[0, 0], Some(5000));
        progress.start(&p, || 0);
        assert_eq!(progress.position(), (0, 2));
    }

    #[test]
    fn spill_and_pause_are_said_on_the_line_while_they_matter() {
        let progress = Progress::hidden();
        progress.start(&plan(&[1], Some(10)), || 0);
        progress.on_event(&Event::BytesSpilled(3 << 20));
        progress.on_event(&Event::Paused);
        let message = progress.lock().message();
        assert!(message.contains("spilled 3.0 MiB"), "{message}");
        assert!(message.contains("paused"), "{message}");
        progress.on_event(&Event::Resumed);
        assert!(!progress.lock().message().contains("paused"));
    }
}
