//! What the spill tests share: a store in a temporary directory, and data that looks
//! like data.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StringArray};
use arrow::datatypes::{Field, Int32Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::{SpillCompression, SpillStore};
use crate::memory::disk::DiskManager;

pub(super) const ALL: [SpillCompression; 4] = [
    SpillCompression::Auto,
    SpillCompression::None,
    SpillCompression::Zstd(1),
    SpillCompression::Zstd(3),
];

pub(super) fn store(root: &Path, quota: Option<u64>, compression: SpillCompression) -> SpillStore {
    SpillStore::new(DiskManager::new(root, quota).unwrap(), compression)
}

/// Spill files in `dir` (the directory's `.lock` is not one).
pub(super) fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| e.file_name() != ".lock").count())
        .unwrap_or(0)
}

/// Bytes that look like data: compressible, but not trivially.
pub(super) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i % 16 == 0 {
                (x >> 56) as u8
            } else {
                (i / 7) as u8
            }
        })
        .collect()
}

pub(super) fn sample_batches() -> (SchemaRef, Vec<RecordBatch>) {
    let batch = |offset: i64, n: i64| {
        let ints: ArrayRef = Arc::new(Int64Array::from_iter(
            (offset..offset + n).map(|i| (i % 5 != 0).then_some(i * 3)),
        ));
        let floats: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (offset..offset + n).map(|i| i as f64 / 7.0),
        ));
        let strings: ArrayRef = Arc::new(StringArray::from_iter(
            (offset..offset + n).map(|i| (i % 4 != 1).then(|| format!("name-{i}-é"))),
        ));
        let bools: ArrayRef = Arc::new(BooleanArray::from_iter(
            (offset..offset + n).map(|i| (i % 6 != 2).then_some(i % 2 == 0)),
        ));
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            (offset..offset + n)
                .map(|i| (i % 9 != 0).then(|| (0..(i % 4) as i32).map(Some).collect::<Vec<_>>())),
        ));
        let columns = vec![ints, floats, strings, bools, lists];
        let fields: Vec<Field> = ["i", "f", "s", "b", "l"]
            .iter()
            .zip(&columns)
            .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    let batches = vec![
        batch(0, 1000),
        batch(1000, 1),
        batch(1001, 0),
        batch(5000, 4096),
    ];
    (batches[0].schema(), batches)
}
