//! The data stores of [`DataStore`](crate::plan::DataStore): [`DirStore`] (a shared
//! directory, for `run-task` and remote workers) and [`MemoryStore`] (in memory,
//! reserved and spillable, for the local executor).

mod dir;
mod memory;

pub use dir::DirStore;
pub use memory::MemoryStore;

/// One conformance suite that both stores pass: what an operation may rely on
/// whichever store it is handed.
#[cfg(test)]
mod conformance {
    use std::collections::{HashMap, HashSet};
    use std::path::Path;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use arrow::record_batch::RecordBatch;

    use super::{DirStore, MemoryStore};
    use crate::memory::{
        DiskManager, MemoryMonitor, MemoryPool, SpillCompression, SpillStore, Thresholds,
    };
    use crate::plan::{DataRef, DataStore, Entry};

    fn batch(schema: &SchemaRef, from: i64, rows: usize) -> RecordBatch {
        let ids = Int64Array::from_iter_values(from..from + rows as i64);
        let names = StringArray::from_iter_values((0..rows).map(|i| format!("row {i}")));
        RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(names)]).unwrap()
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]))
    }

    /// Files under `dir` whose name marks them as being written.
    fn temporaries(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for e in walk(dir) {
            if e.contains(".tmp-") {
                found.push(e);
            }
        }
        found
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out
    }

    fn suite(store: &dyn DataStore) {
        let schema = schema();
        let runs = DataRef::partition("runs", 0);
        let chunk = DataRef::chunk("stage1", vec![1, 2]);
        let fences = DataRef::whole("fences");
        assert!(!store.contains(&runs));
        let missing = store.get(&runs).err().unwrap();
        assert!(
            matches!(missing, crate::Error::MissingEntry { .. }),
            "{missing}"
        );

        // put, get, contains, for every kind of entry.
        let batches = vec![batch(&schema, 0, 10), batch(&schema, 10, 5)];
        store
            .put(
                &runs,
                Entry::Batches {
                    schema: schema.clone(),
                    batches: batches.clone(),
                },
            )
            .unwrap();
        store
            .put(&chunk, Entry::Bytes(vec![1u8, 2, 3, 4].into()))
            .unwrap();
        store
            .put(&fences, Entry::Json(serde_json::json!({"fences": [3, 9]})))
            .unwrap();
        assert!(store.contains(&runs) && store.contains(&chunk) && store.contains(&fences));
        match &*store.get(&runs).unwrap() {
            Entry::Batches {
                schema: s,
                batches: b,
            } => {
                assert_eq!(s, &schema);
                assert_eq!(b, &batches);
            }
            other => panic!("{other:?}"),
        }
        match &*store.get(&chunk).unwrap() {
            Entry::Bytes(b) => assert_eq!(&b[..], &[1, 2, 3, 4]),
            other => panic!("{other:?}"),
        }
        match &*store.get(&fences).unwrap() {
            Entry::Json(v) => assert_eq!(v["fences"][1], 9),
            other => panic!("{other:?}"),
        }
        let (s, stream) = store.batches(&runs).unwrap();
        assert_eq!(s, schema);
        assert_eq!(stream.collect::<crate::Result<Vec<_>>>().unwrap(), batches);
        assert!(store.batches(&chunk).is_err(), "bytes are not batches");

        // A stream of batches as one entry; an error mid-stream publishes nothing.
        let streamed = DataRef::partition("runs", 1);
        let mut it = (0..20).map(|i| Ok(batch(&schema, i * 100, 100)));
        store
            .put_batches(&streamed, schema.clone(), &mut it)
            .unwrap();
        let (_, stream) = store.batches(&streamed).unwrap();
        let rows: usize = stream.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 2000);
        let failed = DataRef::partition("runs", 2);
        let mut it = (0..3).map(|i| {
            if i == 2 {
                Err(crate::Error::Cancelled)
            } else {
                Ok(batch(&schema, 0, 10))
            }
        });
        assert!(store.put_batches(&failed, schema.clone(), &mut it).is_err());
        assert!(!store.contains(&failed));

        // A writer's late metadata is in the entry's schema however it is read,
        // held in memory or written through (`expected_bytes` says it is large);
        // a writer dropped unfinished publishes nothing and leaves no file.
        for (i, expected) in [(3, 0), (4, u64::MAX)] {
            let late = DataRef::partition("runs", i);
            let mut writer = store.batch_writer(&late, schema.clone(), expected).unwrap();
            writer.write(batch(&schema, 0, 10)).unwrap();
            writer.write(batch(&schema, 10, 10)).unwrap();
            writer
                .finish(HashMap::from([("index".to_string(), "[2]".to_string())]))
                .unwrap();
            let (s, stream) = store.batches(&late).unwrap();
            assert_eq!(s.metadata()["index"], "[2]", "expected {expected}");
            assert_eq!(s.fields(), schema.fields());
            let rows: usize = stream.map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, 20);
            match &*store.get(&late).unwrap() {
                Entry::Batches { schema: s, batches } => {
                    assert_eq!(s.metadata()["index"], "[2]");
                    assert_eq!(batches.len(), 2);
                }
                other => panic!("{other:?}"),
            }
            store.release(&late);
            let dropped = DataRef::partition("runs", i + 10);
            let mut writer = store
                .batch_writer(&dropped, schema.clone(), expected)
                .unwrap();
            writer.write(batch(&schema, 0, 10)).unwrap();
            drop(writer);
            assert!(!store.contains(&dropped));
            assert_eq!(temporaries(store.dir()), Vec::<String>::new());
        }

        // Two copies of one task publishing at once: no error, one whole entry.
        let dup = DataRef::partition("dup", 7);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    store
                        .put(
                            &dup,
                            Entry::Batches {
                                schema: schema.clone(),
                                batches: vec![batch(&schema, 0, 1000)],
                            },
                        )
                        .unwrap();
                });
            }
        });
        match &*store.get(&dup).unwrap() {
            Entry::Batches { batches, .. } => assert_eq!(batches[0].num_rows(), 1000),
            other => panic!("{other:?}"),
        }
        assert_eq!(temporaries(store.dir()), Vec::<String>::new());

        // Release forgets.
        for key in [&runs, &chunk, &streamed, &dup] {
            store.release(key);
            assert!(!store.contains(key), "{key}");
        }
        store.release(&runs); // twice is harmless
    }

    #[test]
    fn the_directory_store_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(&dir.path().join("work")).unwrap();
        suite(&store);
        // Entries are files a second process can read.
        let key = DataRef::whole("fences");
        let other = DirStore::new(&dir.path().join("work")).unwrap();
        assert!(other.contains(&key));
    }

    fn memory_store(dir: &Path, limit: u64, target: f64) -> (MemoryStore, Arc<MemoryMonitor>) {
        let pool = MemoryPool::new(limit);
        let spill = SpillStore::new(DiskManager::new(dir, None).unwrap(), SpillCompression::None);
        let thresholds = Thresholds {
            target,
            spill: 1.0,
            pause: 1.0,
            terminate: 1.0,
        };
        // RSS as the pool sees it: the thresholds act on real entries, not on the
        // test process's own memory.
        let seen = pool.clone();
        let monitor = Arc::new(
            MemoryMonitor::new(pool.clone(), thresholds)
                .with_spill_store(spill)
                .with_rss_source(Arc::new(move || seen.reserved())),
        );
        let disk = Arc::new(DirStore::new(&dir.join("work")).unwrap());
        let store = MemoryStore::new(disk, pool, Some(monitor.clone()), HashSet::new());
        (store, monitor)
    }

    #[test]
    fn the_memory_store_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = memory_store(dir.path(), 1 << 30, 0.6);
        suite(&store);
    }

    #[test]
    fn past_the_target_the_least_recently_used_entries_spill_and_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema();
        let one = crate::memory::batch_memory(&batch(&schema, 0, 10_000));
        // Room for about four entries under the target.
        let (store, monitor) = memory_store(dir.path(), one * 8, 0.5);
        let key = |i| DataRef::partition("parts", i);
        for i in 0..10u64 {
            store
                .put(
                    &key(i),
                    Entry::Batches {
                        schema: schema.clone(),
                        batches: vec![batch(&schema, i as i64 * 10_000, 10_000)],
                    },
                )
                .unwrap();
            // What the executor does at every task boundary.
            monitor.check().unwrap();
            assert!(
                store.pool.reserved() <= one * 4 + one,
                "{}",
                store.pool.reserved()
            );
        }
        assert!(monitor.spilled_bytes() > 0);
        assert!(store.spilled_bytes() > 0);
        assert!(store.entries_in_memory() < 10);
        // The oldest went first; each reads back whole, in memory or from disk.
        assert!(store.disk().contains(&key(0)));
        assert!(!store.disk().contains(&key(9)));
        for i in 0..10u64 {
            match &*store.get(&key(i)).unwrap() {
                Entry::Batches { batches, .. } => {
                    assert_eq!(batches, &vec![batch(&schema, i as i64 * 10_000, 10_000)]);
                }
                other => panic!("{other:?}"),
            }
            monitor.check().unwrap();
        }
        for i in 0..10u64 {
            store.release(&key(i));
        }
        assert_eq!(store.pool.reserved(), 0);
        assert!(
            walk(&dir.path().join("work")).is_empty(),
            "{:?}",
            walk(dir.path())
        );
    }

    #[test]
    fn past_the_target_a_new_entry_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema();
        let one = crate::memory::batch_memory(&batch(&schema, 0, 1000));
        let (store, _) = memory_store(dir.path(), one * 8, 0.5);
        let (small, big) = (
            DataRef::partition("parts", 0),
            DataRef::partition("parts", 1),
        );
        let mut it = (0..1).map(|i| Ok(batch(&schema, i * 1000, 1000)));
        store.put_batches(&small, schema.clone(), &mut it).unwrap();
        assert!(!store.disk().contains(&small), "under the target, kept");
        // Past the target (5 of 8 parts reserved), the next entry goes to disk.
        let mut held = store.pool.reserve("table");
        held.try_grow(one * 5).unwrap();
        let mut it = (0..1).map(|i| Ok(batch(&schema, i * 1000, 1000)));
        store.put_batches(&big, schema.clone(), &mut it).unwrap();
        assert!(store.disk().contains(&big), "past the target, written");
        assert_eq!(store.pool.reserved(), one * 6);
        match &*store.get(&big).unwrap() {
            Entry::Batches { batches, .. } => assert_eq!(batches, &vec![batch(&schema, 0, 1000)]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_entry_larger_than_its_share_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema();
        let one = crate::memory::batch_memory(&batch(&schema, 0, 1000));
        let (store, _) = memory_store(dir.path(), one * 8, 0.9);
        let key = DataRef::partition("merged", 0);
        let mut it = (0..50).map(|i| Ok(batch(&schema, i * 1000, 1000)));
        store.put_batches(&key, schema.clone(), &mut it).unwrap();
        assert!(
            store.disk().contains(&key),
            "a quarter of the budget at most in memory"
        );
        assert_eq!(store.pool.reserved(), 0);
        let (_, stream) = store.batches(&key).unwrap();
        assert_eq!(stream.map(|b| b.unwrap().num_rows()).sum::<usize>(), 50_000);
    }
}
