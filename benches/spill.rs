//! Spill throughput: write and read back blocks through the spill store, with zstd
//! level 1 and with no compression, as record batches (Arrow IPC) and as raw array
//! chunks.
//!
//! Peer: `zstd -b1` on this machine, about 0.2-0.5 GB/s compressing and 0.8-1.2 GB/s
//! decompressing a core. Run with `cargo bench --bench spill`; `SPILL_GB` sets the
//! volume (default 4), `SPILL_DIR` where it goes (default the temp dir).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use blockwise::memory::{DiskManager, SpillCompression, SpillStore};

/// A batch shaped like the db-benchmark table: ids, small ints, a float.
fn batch(rows: usize, seed: u64) -> RecordBatch {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("v1", DataType::Int64, false),
        Field::new("v3", DataType::Float64, false),
    ]));
    let ids: Vec<String> = (0..rows)
        .map(|_| format!("id{:010}", next() % 100_000))
        .collect();
    let v1: Vec<i64> = (0..rows).map(|_| (next() % 5) as i64 + 1).collect();
    let v3: Vec<f64> = (0..rows)
        .map(|_| (next() % 100_000_000) as f64 / 1e6)
        .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from(v1)),
            Arc::new(Float64Array::from(v3)),
        ],
    )
    .expect("batch")
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this too, in a
    // debug build, where a few batches are enough to see that it works.
    let measuring = std::env::args().any(|a| a == "--bench");
    let gb: f64 = std::env::var("SPILL_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 4.0 } else { 0.02 });
    let root = std::env::var_os("SPILL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let template = batch(65_536, 7);
    let batch_bytes = template.get_array_memory_size() as f64;
    // An 8 MiB float64 chunk of a noisy wave, compressible about as real data is.
    let chunk: Vec<u8> = (0..1u32 << 20)
        .flat_map(|i| {
            let noise = ((i.wrapping_mul(2654435761) >> 16) % 1000) as f64 * 1e-6;
            (((i as f64) * 0.001).sin() + noise).to_le_bytes()
        })
        .collect();
    for compression in [SpillCompression::Zstd(1), SpillCompression::None] {
        let store = SpillStore::new(
            DiskManager::new(&root, None).expect("spill dir"),
            compression,
        );
        // Batches: written in files of 16 batches (about 64 MB), each file read back.
        let files = ((gb * 1e9) / (batch_bytes * 16.0)).ceil() as usize;
        let group: Vec<RecordBatch> = (0..16).map(|i| batch(65_536, i)).collect();
        let (mut write_s, mut read_s, mut rows) = (0.0, 0.0, 0usize);
        for _ in 0..files {
            let t = Instant::now();
            let file = store
                .write_batches(&group[0].schema(), &group)
                .expect("write");
            write_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for b in store.batch_reader(&file).expect("reader") {
                rows += b.expect("read").num_rows();
            }
            read_s += t.elapsed().as_secs_f64();
        }
        let total = files as f64 * 16.0 * batch_bytes / 1e9;
        println!(
            "batches {compression:>8}: {total:.1} GB  write {:.2} GB/s  read {:.2} GB/s  ({} rows, {:.2} GB on disk)",
            total / write_s,
            total / read_s,
            rows,
            store.disk_bytes_written() as f64 / 1e9
        );
        // Raw array chunks of 8 MiB.
        let n = ((gb * 1e9) / chunk.len() as f64).ceil() as usize;
        let (mut write_s, mut read_s) = (0.0, 0.0);
        for _ in 0..n {
            let t = Instant::now();
            let file = store.write_chunk(&chunk).expect("write chunk");
            write_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let back = store.read_chunk(&file).expect("read chunk");
            read_s += t.elapsed().as_secs_f64();
            assert_eq!(back.len(), chunk.len());
        }
        let total = n as f64 * chunk.len() as f64 / 1e9;
        println!(
            "chunks  {compression:>8}: {total:.1} GB  write {:.2} GB/s  read {:.2} GB/s",
            total / write_s,
            total / read_s
        );
    }
}
