//! The memory store of the local executor: entries in memory, each reserved on the
//! pool and registered with the memory monitor, which spills the least recently used
//! ones (to the same files the directory store writes) when the target or spill
//! threshold is passed; a spilled entry is read back on use. Small values (JSON) and
//! the completion marks of outputs go to disk at once: they are what a resumed run
//! needs to find.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::dir::DirBatchWriter;
use super::DirStore;
use crate::error::{Error, Result};
use crate::memory::{
    DiskManager, MemoryEvent, MemoryMonitor, MemoryPool, Reservation, SpillStore, Spillable,
};
use crate::plan::{with_metadata, BatchStream, BatchWriter, DataRef, DataStore, Entry};

/// One entry, in memory or spilled.
struct Slot {
    key: DataRef,
    entry: Option<Arc<Entry>>,
    reservation: Reservation,
    /// Whether the entry's file exists (it was spilled, or found from a resumed run).
    on_disk: bool,
    disk: Arc<DirStore>,
    /// The monitor's id for it, to mark it used.
    id: Option<u64>,
    /// The store's count of bytes spilled.
    spilled: Arc<AtomicU64>,
    /// The disk quota the entry's file is charged to, if any, and what it charged.
    quota: Option<Arc<DiskManager>>,
    charged: u64,
}

/// Writes `entry` for `key` to `disk`, charged to `quota` first (the spill quota of
/// the job: a spilled entry is spill data); returns the bytes written and charged.
fn write_charged(
    disk: &DirStore,
    quota: Option<&Arc<DiskManager>>,
    key: &DataRef,
    write: impl FnOnce(&DirStore) -> Result<u64>,
    estimate: u64,
) -> Result<(u64, u64)> {
    let Some(quota) = quota else {
        return write(disk).map(|n| (n, 0));
    };
    quota.reserve(estimate)?;
    match write(disk) {
        Ok(n) => {
            // The file may be smaller (compressed) or larger than the estimate.
            quota.release(estimate);
            if let Err(e) = quota.reserve(n) {
                disk.remove(key);
                return Err(e);
            }
            Ok((n, n))
        }
        Err(e) => {
            quota.release(estimate);
            Err(quota.map_full(e, estimate))
        }
    }
}

impl Spillable for Slot {
    fn estimated_bytes(&self) -> u64 {
        self.reservation.size()
    }

    fn is_spilled(&self) -> bool {
        self.entry.is_none()
    }

    fn spill(&mut self, store: &SpillStore) -> Result<u64> {
        let Some(entry) = &self.entry else {
            return Ok(0);
        };
        if !self.on_disk {
            let key = self.key.clone();
            let (written, charged) = write_charged(
                &self.disk,
                self.quota.as_ref(),
                &key,
                |d| d.write(&key, entry),
                entry.memory_bytes(),
            )?;
            self.spilled.fetch_add(written, Ordering::Relaxed);
            store.notify(MemoryEvent::Spilled(written));
            self.charged = charged;
            self.on_disk = true;
        }
        self.entry = None;
        let freed = self.reservation.size();
        self.reservation.resize(0);
        Ok(freed)
    }

    fn unspill(&mut self, store: &SpillStore) -> Result<()> {
        if self.entry.is_none() {
            let entry = self.disk.read(&self.key)?;
            store.notify(MemoryEvent::ReadBack(entry.memory_bytes()));
            self.reservation.resize(entry.memory_bytes());
            self.entry = Some(Arc::new(entry));
        }
        Ok(())
    }
}

/// Entries in memory, spilled to a [`DirStore`] under pressure.
pub struct MemoryStore {
    disk: Arc<DirStore>,
    pub(super) pool: MemoryPool,
    monitor: Option<Arc<MemoryMonitor>>,
    /// Datasets whose entries go straight to disk (outputs' completion marks).
    on_disk: HashSet<String>,
    slots: Mutex<HashMap<DataRef, Arc<Mutex<Slot>>>>,
    /// Bytes of entries written to disk for want of memory.
    spilled: Arc<AtomicU64>,
    /// The spill quota entries written for want of memory are charged to.
    quota: Option<Arc<DiskManager>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("dir", &self.disk.dir())
            .finish_non_exhaustive()
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    /// A store reserving on `pool`, spilling through `monitor` into `disk`; entries
    /// of the datasets in `on_disk` are written through at once.
    pub fn new(
        disk: Arc<DirStore>,
        pool: MemoryPool,
        monitor: Option<Arc<MemoryMonitor>>,
        on_disk: HashSet<String>,
    ) -> Self {
        MemoryStore {
            disk,
            pool,
            monitor,
            on_disk,
            slots: Mutex::new(HashMap::new()),
            spilled: Arc::default(),
            quota: None,
        }
    }

    /// Charges entries written for want of memory to `quota` (the job's spill
    /// quota), refusing one past it with [`crate::Error::SpillQuota`].
    pub fn with_quota(mut self, quota: Arc<DiskManager>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Bytes of entries written to disk for want of memory (spilled, or too large
    /// to keep), not counting what goes to disk by design (small values, marks).
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    /// Counts `written` bytes of an entry that went to disk for want of memory, and
    /// tells the job's memory listener.
    fn note_spilled(&self, written: u64) {
        self.spilled.fetch_add(written, Ordering::Relaxed);
        if let Some(m) = &self.monitor {
            m.notify(MemoryEvent::Spilled(written));
        }
    }

    /// Tells the job's memory listener that `bytes` of a spilled entry were read
    /// back.
    fn note_read_back(&self, bytes: u64) {
        if let Some(m) = &self.monitor {
            m.notify(MemoryEvent::ReadBack(bytes));
        }
    }

    /// The directory store entries spill to.
    pub fn disk(&self) -> &Arc<DirStore> {
        &self.disk
    }

    /// Entries held in memory now.
    pub fn entries_in_memory(&self) -> usize {
        lock(&self.slots)
            .values()
            .filter(|s| s.try_lock().map_or(true, |s| s.entry.is_some()))
            .count()
    }

    fn slot(&self, key: &DataRef) -> Option<Arc<Mutex<Slot>>> {
        lock(&self.slots).get(key).cloned()
    }

    /// Reserves `bytes` for an entry, spilling older entries if the pool has no room.
    fn reserve(&self, key: &DataRef, bytes: u64) -> Option<Reservation> {
        let mut r = self.pool.reserve(format!("store: {key}"));
        let grown = match &self.monitor {
            Some(m) => m.grow_or_spill(&mut r, bytes),
            None => r.try_grow(bytes),
        };
        grown.ok().map(|()| r)
    }
}

impl MemoryStore {
    /// Records `key`'s entry: in memory (`entry`, held by `reservation`) or on disk
    /// (`None`), registered with the monitor. A second copy of the same task finds
    /// the first one's entry and keeps it.
    fn put_slot(
        &self,
        key: &DataRef,
        entry: Option<Arc<Entry>>,
        reservation: Reservation,
    ) -> Result<()> {
        self.put_slot_charged(key, entry, reservation, 0)
    }

    /// [`MemoryStore::put_slot`] for an entry whose file charged `charged` bytes to
    /// the quota.
    fn put_slot_charged(
        &self,
        key: &DataRef,
        entry: Option<Arc<Entry>>,
        reservation: Reservation,
        charged: u64,
    ) -> Result<()> {
        let on_disk = entry.is_none();
        let slot = Arc::new(Mutex::new(Slot {
            key: key.clone(),
            entry,
            reservation,
            on_disk,
            disk: self.disk.clone(),
            id: None,
            spilled: self.spilled.clone(),
            quota: self.quota.clone(),
            charged,
        }));
        let mut slots = lock(&self.slots);
        if slots.contains_key(key) {
            return Ok(());
        }
        if let Some(m) = &self.monitor {
            let as_spillable: Arc<Mutex<dyn Spillable>> = slot.clone();
            lock(&slot).id = Some(m.register(&as_spillable));
        }
        slots.insert(key.clone(), slot);
        Ok(())
    }
}

impl MemoryStore {
    /// A full spill disk met by a write that goes straight to it (a small JSON
    /// entry, a dataset kept on disk) is the spill quota's error, as it is for a
    /// spilled entry: which write meets the full disk first is chance.
    fn full_as_quota(&self, error: Error, requested: u64) -> Error {
        match &self.quota {
            Some(q) => q.map_full(error, requested),
            None => error,
        }
    }
}

/// A record-batch entry of a [`MemoryStore`] being written: held in memory,
/// reserved, while it fits its share of the pool; from the first batch that does
/// not, written to disk (what it held first), as an entry spilled for want of
/// memory.
struct MemoryBatchWriter<'s> {
    store: &'s MemoryStore,
    key: DataRef,
    schema: SchemaRef,
    /// Bytes the entry may hold in memory.
    cap: u64,
    /// An entry of a dataset kept on disk: written through, neither charged to
    /// the quota nor counted as spilled.
    through: bool,
    reservation: Reservation,
    held: Vec<RecordBatch>,
    disk: Option<DirBatchWriter<'s>>,
    /// What the file was charged to the quota before its size is known (the
    /// cap), released when it is.
    estimate: u64,
}

impl MemoryBatchWriter<'_> {
    /// The quota the entry's file is charged to: none for an entry written
    /// through.
    fn quota(&self) -> Option<&Arc<DiskManager>> {
        self.store.quota.as_ref().filter(|_| !self.through)
    }

    /// Goes on on disk: opens the file and writes what is held to it.
    fn go_to_disk(&mut self) -> Result<()> {
        if let Some(quota) = self.quota() {
            quota.reserve(self.cap)?;
            self.estimate = self.cap;
        }
        let mut disk = self
            .store
            .disk
            .batch_writer(&self.key, &self.schema)
            .map_err(|e| self.store.full_as_quota(e, self.estimate))?;
        for batch in std::mem::take(&mut self.held) {
            disk.write(&batch)
                .map_err(|e| self.store.full_as_quota(e, self.estimate))?;
        }
        self.reservation.resize(0);
        self.disk = Some(disk);
        Ok(())
    }
}

impl BatchWriter for MemoryBatchWriter<'_> {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if self.disk.is_none() {
            let bytes = crate::memory::batch_memory(&batch);
            let fits = self.reservation.size() + bytes <= self.cap
                && match &self.store.monitor {
                    Some(m) => m.grow_or_spill(&mut self.reservation, bytes).is_ok(),
                    None => self.reservation.try_grow(bytes).is_ok(),
                };
            if fits {
                self.held.push(batch);
                return Ok(());
            }
            self.go_to_disk()?;
        }
        let estimate = self.estimate;
        match &mut self.disk {
            Some(disk) => disk
                .write(&batch)
                .map_err(|e| self.store.full_as_quota(e, estimate)),
            None => Err(Error::bug("an entry on disk without its file", &self.key)),
        }
    }

    fn finish(mut self: Box<Self>, metadata: HashMap<String, String>) -> Result<()> {
        let store = self.store;
        let Some(disk) = self.disk.take() else {
            let entry = Entry::Batches {
                schema: with_metadata(&self.schema, &metadata),
                batches: std::mem::take(&mut self.held),
            };
            let reservation = std::mem::replace(&mut self.reservation, store.pool.reserve(""));
            return store.put_slot(&self.key, Some(Arc::new(entry)), reservation);
        };
        let written = disk
            .finish(metadata)
            .map_err(|e| store.full_as_quota(e, self.estimate))?;
        if self.through {
            return Ok(());
        }
        // The file may be smaller (compressed) or larger than the estimate.
        let charged = match self.quota().cloned() {
            Some(quota) => {
                quota.release(std::mem::take(&mut self.estimate));
                if let Err(e) = quota.reserve(written) {
                    store.disk.remove(&self.key);
                    return Err(e);
                }
                written
            }
            None => 0,
        };
        store.note_spilled(written);
        store.put_slot_charged(
            &self.key,
            None,
            store.pool.reserve(format!("store: {}", self.key)),
            charged,
        )
    }
}

impl Drop for MemoryBatchWriter<'_> {
    fn drop(&mut self) {
        if let Some(quota) = self.quota() {
            quota.release(self.estimate);
        }
    }
}

impl DataStore for MemoryStore {
    fn put(&self, key: &DataRef, entry: Entry) -> Result<()> {
        if matches!(entry, Entry::Json(_)) || self.on_disk.contains(key.dataset()) {
            let bytes = entry.memory_bytes();
            return self
                .disk
                .put(key, entry)
                .map_err(|e| self.full_as_quota(e, bytes));
        }
        if lock(&self.slots).contains_key(key) {
            // A second copy of the same task: the first one's entry stands.
            return Ok(());
        }
        let bytes = entry.memory_bytes();
        match self.reserve(key, bytes) {
            Some(r) => self.put_slot(key, Some(Arc::new(entry)), r),
            None => {
                // No room even after spilling everything else: straight to disk.
                let (written, charged) = write_charged(
                    &self.disk,
                    self.quota.as_ref(),
                    key,
                    |d| d.write(key, &entry),
                    bytes,
                )?;
                self.note_spilled(written);
                self.put_slot_charged(
                    key,
                    None,
                    self.pool.reserve(format!("store: {key}")),
                    charged,
                )
            }
        }
    }

    fn batch_writer<'s>(
        &'s self,
        key: &DataRef,
        schema: SchemaRef,
        expected_bytes: u64,
    ) -> Result<Box<dyn BatchWriter + 's>> {
        let through = self.on_disk.contains(key.dataset());
        let share = self.pool.limit() / 4;
        // One entry may take a quarter of the budget in memory; a larger one (a
        // whole merge under a small limit) goes to disk as it arrives. Past the
        // target, every new entry does: the monitor would write some entry to disk
        // to make room for it, and one written as it arrives is never held twice
        // (at 1e8 rows under 1 GiB, q10's partial states, 7 GB of them, kept the
        // monitor writing entries for 1.5 s at a stretch as the finals began).
        let pressed = self.monitor.as_ref().is_some_and(|m| m.over_target());
        let cap = if pressed || through || expected_bytes > share {
            0
        } else {
            share
        };
        let mut writer = MemoryBatchWriter {
            store: self,
            key: key.clone(),
            reservation: self.pool.reserve(format!("store: {key}")),
            schema,
            cap,
            through,
            held: Vec::new(),
            disk: None,
            estimate: 0,
        };
        if through {
            writer.go_to_disk()?;
        }
        Ok(Box::new(writer))
    }

    fn get(&self, key: &DataRef) -> Result<Arc<Entry>> {
        let Some(slot) = self.slot(key) else {
            return self.disk.get(key);
        };
        let mut s = lock(&slot);
        if let (Some(id), Some(m)) = (s.id, &self.monitor) {
            m.touch(id);
        }
        if let Some(entry) = &s.entry {
            return Ok(entry.clone());
        }
        let entry = Arc::new(self.disk.read(key)?);
        self.note_read_back(entry.memory_bytes());
        // Kept in memory again only if it fits; otherwise read for this use alone.
        if let Some(r) = self.reserve(key, entry.memory_bytes()) {
            s.reservation = r;
            s.entry = Some(entry.clone());
        }
        Ok(entry)
    }

    fn batches(&self, key: &DataRef) -> Result<(SchemaRef, BatchStream)> {
        let slot = self.slot(key);
        let in_memory = slot.as_ref().and_then(|slot| lock(slot).entry.clone());
        match in_memory.as_deref() {
            Some(Entry::Batches { schema, batches }) => {
                let batches = batches.clone();
                Ok((schema.clone(), Box::new(batches.into_iter().map(Ok))))
            }
            Some(_) => self
                .disk
                .batches(key)
                .map_err(|_| crate::Error::WrongEntry {
                    key: key.to_string(),
                    holds: in_memory.as_ref().map_or("nothing", |e| e.kind()),
                    wanted: "record batches",
                }),
            // Spilled: what is streamed back is read back.
            None if slot.is_some() => {
                let (schema, batches) = self.disk.batches(key)?;
                let monitor = self.monitor.clone();
                let batches = batches.inspect(move |b| {
                    if let (Ok(b), Some(m)) = (b, &monitor) {
                        m.notify(MemoryEvent::ReadBack(crate::memory::batch_memory(b)));
                    }
                });
                Ok((schema, Box::new(batches)))
            }
            None => self.disk.batches(key),
        }
    }

    fn contains(&self, key: &DataRef) -> bool {
        lock(&self.slots).contains_key(key) || self.disk.contains(key)
    }

    fn release(&self, key: &DataRef) {
        let slot = lock(&self.slots).remove(key);
        let (on_disk, charged) = slot.as_ref().map_or((true, 0), |s| {
            let s = lock(s);
            (s.on_disk, s.charged)
        });
        if on_disk {
            self.disk.remove(key);
        }
        if let (Some(quota), true) = (&self.quota, charged > 0) {
            quota.release(charged);
        }
    }

    fn dir(&self) -> &Path {
        self.disk.dir()
    }
}
