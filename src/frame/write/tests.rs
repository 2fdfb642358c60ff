use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::*;
use crate::exec::{run_task, DirStore, Environment};
use crate::memory::{DiskManager, MemoryPool, SpillCompression, SpillStore};
use crate::plan::{DataStore, Entry, OpSpec, Operation, Resources};
use crate::storage::frame::FrameReadOptions;
use crate::storage::Format;
use crate::sys::CancelToken;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("x", DataType::Float64, true),
    ]))
}

fn batch(start: i64, n: i64) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(start..start + n)),
            Arc::new(StringArray::from_iter(
                (start..start + n).map(|i| (i % 4 != 0).then(|| format!("n,\"{i}\""))),
            )),
            Arc::new(Float64Array::from_iter_values(
                (start..start + n).map(|i| i as f64 * 0.25),
            )),
        ],
    )
    .unwrap()
}

#[test]
fn params_round_trip_as_json() {
    fn round_trip<O: Operation + PartialEq + std::fmt::Debug>(op: O) {
        let spec = crate::convert::op_spec(&op);
        assert_eq!(spec.name, O::NAME);
        let back: O = serde_json::from_value(spec.params).unwrap();
        assert_eq!(back, op);
    }
    round_trip(EncodeTablePart {
        output: "dst".into(),
        whole_groups: true,
    });
    round_trip(RegroupRows {
        output: "dst".into(),
    });
    round_trip(AppendTablePart {
        output: "dst".into(),
    });
    round_trip(FinishTableOutput {
        output: "dst".into(),
    });
    round_trip(WriteTablePart {
        output: "dst".into(),
    });
    let output = TableOutput {
        format: TableFormat::ParquetDir,
        path: "/w/output".into(),
        schema: SerializedSchema::new(&schema()),
        options: TableWriteOptions {
            zstd_level: None,
            ipc_compression: IpcCompression::Lz4,
            row_group_rows: 7,
            delimiter: b';',
        },
    };
    let json = serde_json::to_value(&output).unwrap();
    let back: TableOutput = serde_json::from_value(json).unwrap();
    assert_eq!(back, output);
    assert_eq!(back.schema.decode().unwrap(), schema());
}

/// Builds a plan of `parts` producers (their entries put in the store beforehand)
/// and the output's tasks; runs the output's tasks wave by wave through `run_task`,
/// every append and finish twice; returns the rows read back.
fn write_and_read(format: TableFormat, parts: &[Vec<RecordBatch>]) -> Vec<RecordBatch> {
    let (_dir, staged) = write(format, parts);
    let from = match format {
        TableFormat::Csv => Format::Csv,
        TableFormat::Parquet | TableFormat::ParquetDir => Format::Parquet,
        TableFormat::Ipc => Format::Ipc,
    };
    let source = crate::storage::open_frame(&staged, from, &FrameReadOptions::default()).unwrap();
    let mut out = Vec::new();
    for p in 0..source.num_partitions() {
        for b in source.read_partition(p).unwrap() {
            out.push(b.unwrap());
        }
    }
    out
}

/// A plan working in `workdir` with an intermediate dataset `runs` (the parts'
/// producers write there), and the directory store over `workdir`.
fn plan_over_runs(workdir: &std::path::Path) -> (Plan, DirStore) {
    let mut plan = Plan::new();
    plan.workdir = workdir.display().to_string();
    plan.datasets.push(Dataset::new(
        "runs",
        "",
        "memory",
        DatasetRole::Intermediate,
    ));
    (plan, DirStore::new(workdir).unwrap())
}

/// Writes `parts` as [`write_and_read`] does; returns the directory and the output.
fn write(
    format: TableFormat,
    parts: &[Vec<RecordBatch>],
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("work");
    let staged = workdir.join("output");
    let (mut plan, store) = plan_over_runs(&workdir);
    let mut refs = Vec::new();
    for (k, batches) in parts.iter().enumerate() {
        let key = DataRef::partition("runs", k as u64);
        let producer = plan.push(Task {
            unit_bytes: 1 << 20,
            ..Task::new(
                OpSpec::new("made_beforehand", serde_json::Value::Null),
                key.clone(),
                TaskKind::Load,
            )
        });
        store
            .put(
                &key,
                Entry::Batches {
                    schema: schema(),
                    batches: batches.clone(),
                },
            )
            .unwrap();
        refs.push((key, producer));
    }
    let output = TableOutput {
        format,
        path: staged.display().to_string(),
        schema: SerializedSchema::new(&schema()),
        options: TableWriteOptions {
            row_group_rows: 5,
            ..TableWriteOptions::default()
        },
    };
    let done = add_table_output(&mut plan, &output, &refs, 1).unwrap();
    plan.validate().unwrap();
    let plan = Plan::from_json(&plan.to_json().unwrap()).unwrap();
    let pool = MemoryPool::new(1 << 30);
    let spill = SpillStore::new(
        DiskManager::new(dir.path(), None).unwrap(),
        SpillCompression::None,
    );
    let resources = Resources::default();
    let env = Environment::new(&store, &pool, &spill, &resources);
    let registry = crate::convert::registry();
    let cancel = CancelToken::new();
    for wave in plan.waves().unwrap() {
        for id in wave {
            let task = &plan.tasks[id as usize];
            if task.op.name == "made_beforehand" {
                continue;
            }
            if task.op.name != "encode_table_part" {
                // A duplicate run before the real one: the same bytes, same place.
                let op = registry.prepare_task(task).unwrap();
                op.run(task, &env.task_env(&plan, &cancel, 2, &[])).unwrap();
                if task.output.dataset() == OUTPUT {
                    store.release(&task.output);
                }
            }
            let report = run_task(&plan, registry, id, &env, &cancel, &[]).unwrap();
            assert!(
                !report.skipped || task.output.dataset() != OUTPUT,
                "{report:?}"
            );
        }
    }
    for id in &done {
        assert!(store.contains(&plan.tasks[*id as usize].output));
    }
    (dir, staged)
}

fn column_i64(batches: &[RecordBatch], i: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column(i).as_any().downcast_ref::<Int64Array>().unwrap();
            c.values().to_vec()
        })
        .collect()
}

fn parts() -> Vec<Vec<RecordBatch>> {
    vec![
        vec![batch(0, 7), batch(7, 4)],
        vec![],
        vec![batch(11, 1)],
        vec![batch(12, 20)],
    ]
}

#[test]
fn every_format_assembles_parts_run_task_by_task_with_duplicates() {
    let all = arrow::compute::concat_batches(&schema(), &parts().concat()).unwrap();
    for format in [
        TableFormat::Csv,
        TableFormat::Parquet,
        TableFormat::Ipc,
        TableFormat::ParquetDir,
    ] {
        let got = write_and_read(format, &parts());
        let got_schema = got[0].schema();
        let got = arrow::compute::concat_batches(&got_schema, &got).unwrap();
        assert_eq!(got.num_rows(), 32, "{format:?}");
        assert_eq!(
            column_i64(std::slice::from_ref(&got), 0),
            (0..32).collect::<Vec<_>>()
        );
        for c in 1..3 {
            assert_eq!(got.column(c), all.column(c), "{format:?} column {c}");
        }
    }
}

#[test]
fn a_parquet_file_has_row_groups_of_the_given_rows_whatever_the_parts() {
    // Parts of 11, 0, 1 and 20 rows, groups of 5: 5, 5, 5, 5, 5, 5 and the last 2.
    let (dir, staged) = write(TableFormat::Parquet, &parts());
    let bytes = bytes::Bytes::from(std::fs::read(&staged).unwrap());
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .unwrap();
    let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, vec![5, 5, 5, 5, 5, 5, 2]);
    drop(dir);
}

#[test]
fn no_parts_write_an_empty_output_with_the_schema() {
    for format in [
        TableFormat::Csv,
        TableFormat::Parquet,
        TableFormat::Ipc,
        TableFormat::ParquetDir,
    ] {
        let got = write_and_read(format, &[]);
        assert_eq!(
            got.iter().map(|b| b.num_rows()).sum::<usize>(),
            0,
            "{format:?}"
        );
    }
}

#[test]
fn producers_wait_for_the_writer_a_window_back() {
    let mut plan = Plan::new();
    plan.datasets.push(Dataset::new(
        "runs",
        "",
        "memory",
        DatasetRole::Intermediate,
    ));
    let refs: Vec<(DataRef, TaskId)> = (0..4)
        .map(|k| {
            let key = DataRef::partition("runs", k);
            let id = plan.push(Task::new(
                OpSpec::new("p", serde_json::Value::Null),
                key.clone(),
                TaskKind::Load,
            ));
            (key, id)
        })
        .collect();
    let output = TableOutput {
        format: TableFormat::Csv,
        path: "out".into(),
        schema: SerializedSchema::new(&schema()),
        options: TableWriteOptions::default(),
    };
    add_table_output(&mut plan, &output, &refs, 2).unwrap();
    let append_of = |k: u64| {
        plan.tasks
            .iter()
            .find(|t| t.output == DataRef::partition(APPENDED, k))
            .unwrap()
            .id
    };
    assert!(plan.tasks[0].deps.is_empty() && plan.tasks[1].deps.is_empty());
    assert_eq!(plan.tasks[2].deps, vec![append_of(0)]);
    assert_eq!(plan.tasks[3].deps, vec![append_of(1)]);
    plan.validate().unwrap();
    assert!(Path::new(&output.path).is_relative());
}

#[test]
fn joined_carries_are_slices_of_bounded_bytes_in_order() {
    // 40 batches of 1,000 rows, about 40 bytes a row: 1.6 MB joined.
    let batches: Vec<RecordBatch> = (0..40).map(|i| batch(i * 1000, 1000)).collect();
    // The widest rows (the names grow with the ids) tell the width.
    let row_bytes = crate::memory::batch_memory(&batches[39]).div_ceil(1000);
    let rows = |joined: &[RecordBatch]| joined.iter().map(|b| b.num_rows()).collect::<Vec<_>>();
    for group_rows in [1_000_000, 3_000, 7, 1] {
        let joined = ops::join_batches(&schema(), &batches, row_bytes, group_rows).unwrap();
        assert!(joined.len() > 1 && joined.len() <= 16, "{}", joined.len());
        for b in &joined {
            // A spill encodes and compresses a batch whole: bounded batches bound
            // what that adds.
            assert!(crate::memory::batch_memory(b) <= 256 << 10);
        }
        assert_eq!(column_i64(&joined, 0), (0..40_000).collect::<Vec<i64>>());
        if group_rows < 6_000 {
            // Small groups: slices of whole groups.
            assert!(
                rows(&joined)
                    .iter()
                    .all(|r| (*r as u64).is_multiple_of(group_rows)
                        || r == rows(&joined).last().unwrap()),
                "{group_rows}: {:?}",
                rows(&joined)
            );
        }
    }
    // A group larger than a slice: equal shares of it, the next group starting a
    // slice.
    let joined = ops::join_batches(&schema(), &batches, row_bytes, 30_000).unwrap();
    let mut start = 0;
    let starts: Vec<usize> = rows(&joined)
        .iter()
        .map(|r| {
            start += r;
            start - r
        })
        .collect();
    assert!(starts.contains(&30_000), "{starts:?}");

    // So many rows that slices of 256 KiB would be joined again at the next link:
    // a sixteenth of the rows each instead.
    let joined = ops::join_batches(&schema(), &batches, 4096, 1).unwrap();
    assert_eq!(joined.len(), 16);
    assert_eq!(column_i64(&joined, 0).len(), 40_000);
}

/// Runs the `encode_table_part` of a one-part Parquet output of `rows` rows with a
/// pool of `limit` bytes; returns its result and the pool.
fn encode_one_part(rows: i64, limit: u64) -> (crate::error::Result<()>, MemoryPool) {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("work");
    let (mut plan, store) = plan_over_runs(&workdir);
    let key = DataRef::partition("runs", 0);
    let producer = plan.push(Task::new(
        OpSpec::new("made_beforehand", serde_json::Value::Null),
        key.clone(),
        TaskKind::Load,
    ));
    let batches = (0..rows / 1000).map(|i| batch(i * 1000, 1000)).collect();
    store
        .put(
            &key,
            Entry::Batches {
                schema: schema(),
                batches,
            },
        )
        .unwrap();
    let output = TableOutput {
        format: TableFormat::Parquet,
        path: workdir.join("output").display().to_string(),
        schema: SerializedSchema::new(&schema()),
        options: TableWriteOptions::default(),
    };
    add_table_output(&mut plan, &output, &[(key, producer)], 0).unwrap();
    let pool = MemoryPool::new(limit);
    let spill = SpillStore::new(
        DiskManager::new(dir.path(), None).unwrap(),
        SpillCompression::None,
    );
    let (resources, cancel) = (Resources::default(), CancelToken::new());
    let env = Environment::new(&store, &pool, &spill, &resources);
    let env = env.task_env(&plan, &cancel, 2, &[]);
    let task = plan
        .tasks
        .iter()
        .find(|t| t.op.name == "encode_table_part")
        .unwrap();
    let op = crate::convert::registry().prepare_task(task).unwrap();
    (op.run(task, &env), pool)
}

#[test]
fn a_parquet_part_reserves_what_its_encoder_grows() {
    let (result, pool) = encode_one_part(20_000, 1 << 30);
    result.unwrap();
    // The file's buffer and the row group's pages were reserved while they grew,
    // and handed back once the store held the part.
    assert!(pool.peak_reserved() >= 32 << 10, "{}", pool.peak_reserved());
    assert_eq!(pool.reserved(), 0);

    // A pool with no room for a row group refuses with the memory error, not a
    // Parquet error.
    let (result, pool) = encode_one_part(20_000, 4 << 10);
    match result {
        Err(crate::error::Error::MemoryLimit { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.reserved(), 0);

    // A part whose file outgrows the pool (one key range larger than the budget)
    // is still written: the file grows unreserved past what the pool can give.
    let (result, pool) = encode_one_part(20_000, 100 << 10);
    result.unwrap();
    assert!(pool.peak_reserved() <= 100 << 10);
}
