//! Operations: what a task runs, found by name and version in a [`Registry`] and
//! handed only its task and the [`TaskEnv`].
//!
//! An operation is a type whose fields are its parameters (serde), so a task's
//! `params` decode into it before anything runs: an unknown operation, an unknown
//! version or parameters that do not fit are refused with the task's id, before the
//! first task starts.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{DataStore, Dataset, Event, Observer, Plan, Task};
use crate::error::{Error, Result};
use crate::memory::{MemoryMonitor, MemoryPool, SpillStore};
use crate::sys::CancelToken;

/// A kind of task: its parameters are the type's fields.
pub trait Operation: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name tasks use for it (`"sort_run"`).
    const NAME: &'static str;
    /// The version of its parameters and behaviour; a change an older worker would
    /// misread gets a new one.
    const VERSION: u32;
    /// Whether it moves its own working memory to disk when the pool is short (the
    /// sort's runs and merge passes), beyond its output, which the store spills in
    /// any case. An operation that does not holds what its task projects until it
    /// ends: `explain` says which is which.
    const SPILLS: bool = false;

    /// Runs `task` (whose parameters are `self`): reads `task.inputs`, publishes
    /// `task.output`.
    ///
    /// # Errors
    /// Whatever reading, computing or publishing fails with.
    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()>;
}

impl super::OpSpec {
    /// The spec of `op`: its name, version and parameters, as a task names it.
    pub fn of<O: Operation>(op: &O) -> Self {
        super::OpSpec {
            name: O::NAME.into(),
            version: O::VERSION,
            // A struct of serde fields always serializes.
            params: serde_json::to_value(op).unwrap_or_default(),
        }
    }
}

/// An operation with its parameters decoded, ready to run.
pub trait PreparedOperation: Send + Sync {
    /// Runs the task (see [`Operation::run`]).
    ///
    /// # Errors
    /// The operation's.
    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()>;
}

impl<O: Operation> PreparedOperation for O {
    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        Operation::run(self, task, env)
    }
}

type Decode = fn(&serde_json::Value) -> serde_json::Result<Box<dyn PreparedOperation>>;

/// What the registry knows of one operation.
#[derive(Clone, Copy)]
struct Registered {
    decode: Decode,
    spills: bool,
}

/// The operations an executor can run, by name and version.
#[derive(Default, Clone)]
pub struct Registry {
    decoders: HashMap<(&'static str, u32), Registered>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.decoders.keys().collect();
        names.sort();
        f.debug_struct("Registry")
            .field("operations", &names)
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `O`.
    pub fn register<O: Operation>(&mut self) -> &mut Self {
        let decode: Decode =
            |params| O::deserialize(params).map(|op| Box::new(op) as Box<dyn PreparedOperation>);
        self.decoders.insert(
            (O::NAME, O::VERSION),
            Registered {
                decode,
                spills: O::SPILLS,
            },
        );
        self
    }

    /// Whether an operation `name` at `version` is registered.
    pub fn knows(&self, name: &str, version: u32) -> bool {
        self.decoders.contains_key(&(name, version))
    }

    /// Whether operation `name` at `version` spills its working memory
    /// ([`Operation::SPILLS`]); `None` when it is not registered.
    pub fn spills(&self, name: &str, version: u32) -> Option<bool> {
        self.decoders.get(&(name, version)).map(|r| r.spills)
    }

    /// Decodes every task's operation of `plan`.
    ///
    /// # Errors
    /// [`Error::UnknownOperation`] for a name or version not registered (with the
    /// versions that are); [`Error::BadPlan`] for parameters that do not decode.
    pub fn prepare(&self, plan: &Plan) -> Result<Vec<Box<dyn PreparedOperation>>> {
        plan.tasks
            .iter()
            .map(|task| self.prepare_task(task))
            .collect()
    }

    /// Decodes one task's operation (see [`Registry::prepare`]).
    ///
    /// # Errors
    /// As [`Registry::prepare`].
    pub fn prepare_task(&self, task: &Task) -> Result<Box<dyn PreparedOperation>> {
        let op = &task.op;
        let registered = self
            .decoders
            .get(&(op.name.as_str(), op.version))
            .ok_or_else(|| Error::UnknownOperation {
                task: task.id,
                name: op.name.clone(),
                version: op.version,
                known: self.versions_of(&op.name),
            })?;
        (registered.decode)(&op.params).map_err(|e| Error::BadPlan {
            reason: format!(
                "task {} ({} version {}): parameters do not fit: {e}",
                task.id, op.name, op.version
            ),
        })
    }

    fn versions_of(&self, name: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .decoders
            .keys()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .collect();
        v.sort_unstable();
        v
    }
}

/// Objects a process opens once and shares between the tasks it runs (an opened
/// source, its partition index), keyed by name. Derived from the plan's data alone,
/// so a process that has none opens them again: a cache, never a channel between
/// tasks.
#[derive(Default)]
pub struct Resources {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One cached object, opened on first use.
type Slot = Mutex<Option<Arc<dyn Any + Send + Sync>>>;

impl Resources {
    /// The object cached under `key`, opened by `open` the first time (once, even
    /// when several threads ask at once).
    ///
    /// # Errors
    /// `open`'s error (nothing is cached then); [`Error::Bug`] when `key` holds
    /// another type.
    pub fn get_or_open<T: Any + Send + Sync>(
        &self,
        key: &str,
        open: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(key.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let value = match &*slot {
            Some(v) => v.clone(),
            None => {
                let v: Arc<dyn Any + Send + Sync> = Arc::new(open()?);
                *slot = Some(v.clone());
                v
            }
        };
        value
            .downcast::<T>()
            .map_err(|_| Error::bug("a resource holds another type than asked", key))
    }
}

/// Everything a running task may use besides its own parameters.
pub struct TaskEnv<'a> {
    /// The plan the task belongs to (its datasets).
    pub plan: &'a Plan,
    /// Where inputs are found and the output is published.
    pub store: &'a dyn DataStore,
    /// The memory budget every growing structure reserves from.
    pub pool: &'a MemoryPool,
    /// The threshold monitor, which can spill store entries to make room.
    pub monitor: Option<&'a MemoryMonitor>,
    /// Where operators spill what they hold inside one task.
    pub spill: &'a SpillStore,
    /// Checked at chunk boundaries.
    pub cancel: &'a CancelToken,
    /// Threads of the executor (the task's own parallel loops use the current pool).
    pub threads: usize,
    /// Objects opened once a process.
    pub resources: &'a Resources,
    /// Who hears the task's events.
    pub observers: &'a [Arc<dyn Observer>],
}

impl TaskEnv<'_> {
    /// Reports an event.
    pub fn emit(&self, event: Event) {
        for o in self.observers {
            o.on_event(&event);
        }
    }

    /// The plan's dataset `id`.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the plan has none (validation prevents it).
    pub fn dataset(&self, id: &str) -> Result<&Dataset> {
        self.plan.dataset(id)
    }

    /// Grows `reservation` by `bytes`, spilling store entries first if the pool has
    /// no room.
    ///
    /// # Errors
    /// [`Error::MemoryLimit`] when it cannot fit.
    pub fn reserve(&self, reservation: &mut crate::memory::Reservation, bytes: u64) -> Result<()> {
        match self.monitor {
            Some(m) => m.grow_or_spill(reservation, bytes),
            None => reservation.try_grow(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DataRef, OpSpec, TaskKind};
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Scale {
        factor: u32,
    }

    impl Operation for Scale {
        const NAME: &'static str = "scale";
        const VERSION: u32 = 2;
        fn run(&self, _task: &Task, _env: &TaskEnv<'_>) -> Result<()> {
            Ok(())
        }
    }

    fn plan_of(name: &str, version: u32, params: serde_json::Value) -> Plan {
        let mut plan = Plan::new();
        plan.datasets = vec![Dataset::new(
            "x",
            "x",
            "memory",
            crate::plan::DatasetRole::Intermediate,
        )];
        plan.push(Task::new(
            OpSpec {
                name: name.into(),
                version,
                params,
            },
            DataRef::whole("x"),
            TaskKind::Compute,
        ));
        plan
    }

    #[test]
    fn known_operations_decode_and_unknown_ones_are_refused_before_running() {
        let mut registry = Registry::new();
        registry.register::<Scale>();
        assert!(registry.knows("scale", 2));
        let ok = plan_of("scale", 2, serde_json::json!({"factor": 3}));
        assert_eq!(registry.prepare(&ok).unwrap().len(), 1);

        let e = registry
            .prepare(&plan_of("scale", 1, serde_json::json!({"factor": 3})))
            .err()
            .unwrap();
        assert!(matches!(e, Error::UnknownOperation { ref known, .. } if known == &[2]));
        assert!(e.to_string().contains("runs versions [2]"), "{e}");
        assert_eq!(e.exit_code(), 2);

        let e = registry
            .prepare(&plan_of("shuffle", 1, serde_json::Value::Null))
            .err()
            .unwrap();
        assert!(e.to_string().contains("\"shuffle\""), "{e}");
        assert!(e.to_string().contains("no operation of that name"), "{e}");

        let e = registry
            .prepare(&plan_of("scale", 2, serde_json::json!({"factor": "three"})))
            .err()
            .unwrap();
        assert!(matches!(e, Error::BadPlan { .. }), "{e}");
        assert!(e.to_string().contains("task 0 (scale version 2)"), "{e}");
        let e = registry
            .prepare(&plan_of(
                "scale",
                2,
                serde_json::json!({"factor": 1, "extra": 0}),
            ))
            .err()
            .unwrap();
        assert!(e.to_string().contains("extra"), "{e}");
    }

    #[test]
    fn resources_open_once_and_keep_their_type() {
        let resources = Resources::default();
        let opened = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let v = resources
                        .get_or_open("src", || {
                            opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Ok(41u64)
                        })
                        .unwrap();
                    assert_eq!(*v, 41);
                });
            }
        });
        assert_eq!(opened.into_inner(), 1);
        assert!(resources.get_or_open("src", || Ok("text")).is_err());
        // A failed open caches nothing.
        assert!(resources
            .get_or_open::<u8>("other", || Err(Error::Cancelled))
            .is_err());
        assert_eq!(*resources.get_or_open("other", || Ok(7u8)).unwrap(), 7);
    }
}
