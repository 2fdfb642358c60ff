//! Table to table, sorted (`--sort-by`): the external merge sort of the frame layer
//! ([`add_sort`]: sorted runs, the key-range cut, the range merges), whose ranges
//! are the parts the table output's tasks write in order ([`add_table_output`]).

use super::job::Conversion;
use super::sinks;
use crate::error::{Error, Result};
use crate::frame::ops::sort::{add_sort, read_batch_rows, SortSizing};
use crate::frame::ops::Part;
use crate::frame::write::add_table_output;
use crate::plan::Plan;
use crate::storage::{open_frame_described, Format};

/// The route as a plan (see [`super::job`]).
///
/// # Errors
/// What opening the source and checking the keys and options fail with.
pub(super) fn plan(c: &Conversion<'_>) -> Result<Option<Plan>> {
    let keys = c.options.sort_by.clone().unwrap_or_default();
    let sizing = SortSizing {
        threads: c.sizing.threads,
        memory_limit: c.sizing.memory_limit,
    };
    let mut read = c.options.read.clone();
    if c.from == Format::Csv {
        // One run a partition: a larger partition makes several runs, merged before
        // they are published (one more pass over its rows).
        let len = std::fs::metadata(c.src).map_or(0, |m| m.len());
        read.blocksize = read
            .blocksize
            .min(sizing.partition_bytes(len))
            .max(len.div_ceil(super::MAX_CSV_PARTITIONS))
            .max(1);
    }
    let (source, mut meta) = open_frame_described(c.src, c.from, &read)?;
    let schema = source.schema();
    let output = sinks::table_output(c.to, &c.staged, &schema, c.options)?;
    // The reader's batches are part of what a run holds: as many rows as the run
    // budget allows a few of, from the schema's row width.
    let batch_rows = read
        .batch_rows
        .min(read_batch_rows(&schema, &keys, sizing.run_bytes())?);
    meta.batch_rows = batch_rows;
    if let Some(csv) = &mut meta.csv {
        csv.batch_rows = batch_rows;
    }
    // An empty table still makes one (empty) run, which carries the schema.
    let inputs: Vec<Part> = (0..source.num_partitions().max(1))
        .map(|i| {
            let bytes = if i < source.num_partitions() {
                source.partition_memory_bytes(i)
            } else {
                0
            };
            Part::source("src", i as u64, bytes)
        })
        .collect();
    let meta =
        serde_json::to_value(&meta).map_err(|e| Error::bug("source description to JSON", e))?;
    let mut plan = Plan::new();
    plan.datasets.push(c.src_dataset(meta));
    let parts = add_sort(&mut plan, &inputs, &schema, &keys, batch_rows, sizing)?;
    // Merged ranges are the budget's largest entries: fewer of them ahead of the
    // writer than read parts (see `read_window`), or they spill.
    add_table_output(&mut plan, &output, &parts, c.sizing.threads + 1)?;
    c.finish(&mut plan);
    Ok(Some(plan))
}
