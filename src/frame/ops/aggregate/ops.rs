//! The aggregation's operations: `group_partial` (a partition's rows into partial
//! states, cut into buckets) and `group_final` (a bucket's states from every
//! partition, merged into results).
//!
//! A partial entry is one bucketed entry ([`super::bucketed`]): a final task
//! reads its bucket's batches alone (from a file on disk, by seeking to them).

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::bucketed::{bucket_batches, BucketWriter};
use super::buckets::{BucketPart, Buckets};
use super::keys::{bucket_of, estimated_keys, KeyHasher, CODED_COLUMNS};
use super::{FinishedGroups, GroupBy, Grouping};
use crate::error::{Error, Result};
use crate::frame::ops::pipeline::Pipeline;
use crate::frame::read::{for_each_batch_as, reading};
use crate::frame::write::ops::publish_part;
use crate::memory::{Reservation, SpillFile};
use crate::plan::{Operation, Task, TaskEnv};
use crate::storage::frame::SerializedSchema;

/// Rows a partial task groups before it looks at how much grouping reduces them.
const PROBE_ROWS: usize = 100_000;

/// Groups per row above which a partial task's table does not pay for itself
/// (nearly every key distinct, as db-benchmark's q10): the task then stops
/// grouping, and passes each later row on as its own group's states (no hash
/// table, no copy of the keys into it and out again); the final tasks do the
/// grouping. DataFusion skips the partial aggregation the same way, at the same
/// ratio: keys of medium cardinality (100,000 values, 63% of them seen in the
/// first 100,000 rows) still pay for a table over a task's million rows.
///
/// Unless the keys, however many of the first rows they leave distinct, come
/// from a domain whose table the task holds whole ([`DOMAIN_SLACK`]): every
/// row past the first of its key is then one fewer for the final tasks.
const DISTINCT_RATIO: f64 = 0.8;

/// How much larger than the partial table's budget the table of every key of
/// the domain may look, measured from the first rows' table (whose slots and
/// state vectors are up to twice what they hold), and still be kept: a
/// million keys of db-benchmark's `id3` look 160 MB from the first 100,000
/// rows and take 115 MB. A table kept wrongly fills and is flushed with
/// nearly as many groups as rows, and the task passes rows on from there.
const DOMAIN_SLACK: f64 = 2.0;

/// Aggregates one part of the input partially: reads its inputs (table source
/// partitions, or earlier tasks' entries), one after the other, through `pre`
/// (the filters and the key and argument columns computed), groups the rows
/// within `table_bytes`, and publishes the groups' states cut into `buckets` by
/// key hash (see the module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPartial {
    /// The grouping, over the columns `pre` yields.
    pub spec: GroupBy,
    /// The row-wise steps before the grouping.
    pub pre: Pipeline,
    /// The schema `pre` yields: the grouping's input.
    pub input: SerializedSchema,
    /// Buckets the states are cut into.
    pub buckets: u32,
    /// Bytes the table of groups may hold before it is flushed.
    pub table_bytes: u64,
}

impl Operation for GroupPartial {
    const NAME: &'static str = "group_partial";
    // 2: the entry is written in rounds, with its index at the end.
    const VERSION: u32 = 2;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let reading = reading(env, task, &self.pre)?;
        let schema = self.input.decode()?;
        let mut grouping = Grouping::new(&self.spec, &schema)?;
        let mut table = env.pool.reserve(format!("group_partial {}", task.id));
        let mut flushed = BucketWriter::new(
            env,
            format!("group_partial {} states", task.id),
            &task.output,
            grouping.state_schema().clone(),
            self.buckets.max(1) as usize,
        );
        // The task's projection is the table and its flushed states as much
        // again; without a table, the states alone. A task passing a GiB of
        // rows on spills them as it goes.
        flushed.set_budget(self.table_bytes);
        let flush = |grouping: &mut Grouping, flushed: &mut BucketWriter| -> Result<()> {
            if grouping.is_empty() {
                return Ok(());
            }
            let of: Vec<u32> = (0..grouping.len())
                .map(|g| bucket_of(grouping.hash(g), self.buckets.max(1)))
                .collect();
            let states = grouping.take_states()?;
            flushed.add(env, &states, &of)
        };
        // Rows grouped so far, while it is not yet decided whether grouping
        // them reduces anything.
        let mut probed: Option<usize> = Some(0);
        let mut distinct = false;
        // Rows grouped since the table was last flushed.
        let mut since_flush = 0usize;
        let nkeys = self.spec.keys.len();
        // Without keys there is one group, never nearly distinct ones.
        let hasher = match nkeys {
            0 => None,
            _ => Some(KeyHasher::new(&key_types(grouping.state_schema(), nkeys))?),
        };
        let dictionaries = self.dictionary_keys(&schema, &reading.pre);
        let mut group = |batch: RecordBatch| -> Result<bool> {
            let batch = reading
                .pre
                .apply_as(batch, &schema, !dictionaries.is_empty())?;
            if let (true, Some(hasher)) = (distinct, &hasher) {
                // Nearly every key distinct: each row goes on as its own group's
                // states, without a table.
                env.cancel.check()?;
                flushed.set_budget(2 * self.table_bytes);
                let states = grouping.row_states(&batch)?;
                let of = hasher.buckets(&states.columns()[..nkeys], 0, self.buckets.max(1))?;
                flushed.add(env, &states, &of)?;
                return Ok(true);
            }
            grouping.update(&batch)?;
            since_flush += batch.num_rows();
            if let Some(rows) = &mut probed {
                *rows += batch.num_rows();
                if *rows >= PROBE_ROWS {
                    distinct = !self.keeps_table(grouping.len(), *rows, grouping.size());
                    probed = None;
                }
            }
            let size = grouping.size() as u64;
            let fits = !distinct
                && size <= self.table_bytes
                && table.try_grow(size.saturating_sub(table.size())).is_ok();
            if !fits {
                // A table full of nearly as many groups as rows: the keys come
                // from a domain larger than it holds.
                distinct |= grouping.len() as f64 > DISTINCT_RATIO * since_flush as f64;
                since_flush = 0;
                flush(&mut grouping, &mut flushed)?;
                // What the emptied table still holds (its converter, its buffers)
                // stays reserved; the reservation only shrinks here, never past
                // the pool.
                table.resize(table.size().min(grouping.size() as u64));
            }
            Ok(true)
        };
        for input in reading.inputs {
            for_each_batch_as(env, input, &dictionaries, &mut group)?;
        }
        flush(&mut grouping, &mut flushed)?;
        drop(table);
        flushed.finish(env)
    }
}

impl GroupPartial {
    /// Whether the table of the first `rows` rows, holding `groups` groups in
    /// `bytes`, is worth keeping: it reduces them, or the domain its keys
    /// come from fits the task's budget (see [`DISTINCT_RATIO`]).
    fn keeps_table(&self, groups: usize, rows: usize, bytes: usize) -> bool {
        if groups as f64 <= DISTINCT_RATIO * rows as f64 {
            return true;
        }
        let domain = estimated_keys(groups, rows);
        let per_group = bytes as f64 / groups.max(1) as f64;
        domain * per_group <= DOMAIN_SLACK * self.table_bytes as f64
    }

    /// The source columns this grouping may read as dictionaries: its string
    /// keys (at most [`CODED_COLUMNS`] of them) that `pre` passes through
    /// untouched and no aggregate reads. Their rows are then grouped on the
    /// dictionaries' codes, each distinct value hashed once a dictionary, not
    /// once a row.
    fn dictionary_keys(&self, input: &Schema, pre: &Pipeline) -> Vec<String> {
        if self.spec.keys.len() > CODED_COLUMNS {
            return Vec::new();
        }
        let read_by_aggregates: Vec<&String> =
            self.spec.aggs.iter().flat_map(|a| &a.args).collect();
        self.spec
            .keys
            .iter()
            .filter(|k| !read_by_aggregates.contains(k))
            .filter(|k| {
                input.field_with_name(k).is_ok_and(|f| {
                    matches!(
                        f.data_type(),
                        DataType::Utf8
                            | DataType::LargeUtf8
                            | DataType::Binary
                            | DataType::LargeBinary
                    )
                })
            })
            .filter_map(|k| pre.passed_through(k))
            .collect()
    }
}

/// The types of the `n` key columns that lead a state schema.
fn key_types(states: &SchemaRef, n: usize) -> Vec<DataType> {
    states.fields()[..n]
        .iter()
        .map(|f| f.data_type().clone())
        .collect()
}

/// Finishes one bucket of an aggregation: merges the bucket's partial states from
/// every input (the partial entries), and publishes the groups' results through
/// `post` (a `HAVING` filter, the projection of the aggregates).
///
/// A bucket whose groups outgrow `table_bytes` (or what the pool has) is cut
/// again, on the next level's hash, into [`SUB_BUCKETS`] parts held in spill
/// files, each finished in turn, and cut again if it still does not fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFinal {
    /// The grouping.
    pub spec: GroupBy,
    /// The grouping's input schema.
    pub input: SerializedSchema,
    /// The bucket.
    pub bucket: u32,
    /// The row-wise steps after the grouping.
    pub post: Pipeline,
    /// Bytes the groups may hold before the bucket is cut again.
    pub table_bytes: u64,
    /// The table output this bucket is a part of, when the task writes its part
    /// itself ([`publish_part`]): the groups go out encoded, not through the store
    /// to an encoding task (see [`super::write_in_finals`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
}

/// Parts a bucket that does not fit is cut into, at each level.
pub const SUB_BUCKETS: u32 = 16;

/// Levels of cutting at most: 16⁸ parts of a bucket.
const MAX_LEVELS: u32 = 8;

/// Groups a final task's results go out in a batch.
const RESULT_ROWS: usize = 1 << 16;

/// A finished part of a bucket's groups.
enum Finished {
    /// A whole bucket's groups, whose results are made a batch at a time as they
    /// go out, and the table's reservation.
    Memory(Box<FinishedGroups>, Reservation),
    Spilled(SpillFile),
}

impl Operation for GroupFinal {
    const NAME: &'static str = "group_final";
    const VERSION: u32 = 1;
    const SPILLS: bool = true;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let input = self.input.decode()?;
        let grouping = Grouping::new(&self.spec, &input)?;
        let output = grouping.output_schema().clone();
        let key_types = key_types(grouping.state_schema(), self.spec.keys.len());
        let mut finisher = Finisher {
            op: self,
            env,
            input,
            hasher: KeyHasher::new(&key_types)?,
            finished: Vec::new(),
            task: task.id,
        };
        // One input's batches of the bucket at a time: read all at once, a
        // bucket of nearly distinct keys (q10) is as large as the table it is
        // merged into, and held outside its reservation.
        let mut batches =
            task.inputs
                .iter()
                .flat_map(|key| match bucket_batches(env.store, key, self.bucket) {
                    Ok(batches) => batches.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                });
        finisher.finish(&mut batches, 0)?;
        let schema = self.post.schema(&output)?;
        let finished = std::mem::take(&mut finisher.finished);
        let mut results = finished
            .into_iter()
            .flat_map(|f| -> Box<dyn Iterator<Item = Result<RecordBatch>>> {
                match f {
                    // The table stays reserved until its last batch is out: the
                    // keys are decoded from it batch by batch.
                    Finished::Memory(groups, held) => Box::new(groups.inspect(move |_| {
                        let _ = &held;
                    })),
                    Finished::Spilled(file) => match env.spill.read_batches(&file) {
                        Ok(list) => Box::new(list.into_iter().map(Ok)),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    },
                }
            })
            .map(|b| b.and_then(|b| self.post.apply(b, &schema)));
        match &self.sink {
            Some(output) => publish_part(env, output, &task.output, schema.clone(), &mut results),
            None => env
                .store
                .put_batches(&task.output, schema.clone(), &mut results),
        }
    }
}

/// Finishes a bucket's groups, cutting what does not fit.
struct Finisher<'a, 'e> {
    op: &'a GroupFinal,
    env: &'a TaskEnv<'e>,
    input: SchemaRef,
    hasher: KeyHasher,
    finished: Vec<Finished>,
    task: u32,
}

impl Finisher<'_, '_> {
    /// Merges `batches` (states) and finishes their groups, at `level` of cutting.
    fn finish(
        &mut self,
        batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
        level: u32,
    ) -> Result<()> {
        let env = self.env;
        let mut grouping = Grouping::new(&self.op.spec, &self.input)?;
        let mut table = env
            .pool
            .reserve(format!("group_final {} level {level}", self.task));
        while let Some(batch) = batches.next() {
            env.cancel.check()?;
            grouping.merge(&batch?)?;
            let size = grouping.size() as u64;
            // Entries of the store go to disk before the bucket is cut: what they
            // hold is written once and read once either way, where a cut bucket
            // is written and read again at each level.
            let more = size.saturating_sub(table.size());
            let fits = size <= self.op.table_bytes && env.reserve(&mut table, more).is_ok();
            if fits || self.op.spec.keys.is_empty() {
                continue;
            }
            if level + 1 >= MAX_LEVELS {
                return Err(Error::MemoryLimit {
                    requested: size,
                    reserved: env.pool.reserved(),
                    limit: env.pool.capacity(),
                    consumer: format!(
                        "group_final {}: a bucket cut {MAX_LEVELS} times over still does not \
                         fit; the groups' states alone are larger than the limit allows",
                        self.task
                    ),
                    top: env.pool.top_consumers(),
                });
            }
            // Cut what is held and what is still to come by the next level's hash.
            let mut parts = Buckets::new(
                env,
                format!("group_final {} cut at level {}", self.task, level + 1),
                grouping.state_schema().clone(),
                SUB_BUCKETS as usize,
            );
            let nkeys = self.op.spec.keys.len();
            let states = grouping.take_states()?;
            drop(table);
            let cut = |batch: &RecordBatch, parts: &mut Buckets| -> Result<()> {
                let of = self
                    .hasher
                    .buckets(&batch.columns()[..nkeys], level + 1, SUB_BUCKETS)?;
                parts.add(env, batch, &of)
            };
            cut(&states, &mut parts)?;
            drop(states);
            for batch in &mut *batches {
                env.cancel.check()?;
                cut(&batch?, &mut parts)?;
            }
            let (buckets, held) = parts.into_buckets();
            drop(held);
            for bucket in buckets {
                let mut rows = bucket.into_iter().flat_map(|p| {
                    let list: Vec<Result<RecordBatch>> = match p {
                        BucketPart::Memory(list) => list.into_iter().map(Ok).collect(),
                        BucketPart::Spilled(file) => match env.spill.read_batches(&file) {
                            Ok(list) => list.into_iter().map(Ok).collect(),
                            Err(e) => vec![Err(e)],
                        },
                    };
                    list
                });
                self.finish(&mut rows, level + 1)?;
            }
            return Ok(());
        }
        // A part of a cut bucket goes to disk: the parts together are the bucket,
        // which did not fit. A whole bucket's groups stay in their table, reserved,
        // until their results are published.
        self.finished.push(if level == 0 {
            let groups = grouping.finish_in_batches(RESULT_ROWS)?;
            table.resize(groups.size() as u64);
            Finished::Memory(Box::new(groups), table)
        } else {
            let result = grouping.finish()?;
            drop(grouping);
            drop(table);
            Finished::Spilled(env.spill.write_batches(&result.schema(), &[result])?)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    fn partial(table_bytes: u64) -> GroupPartial {
        let schema = Schema::new(vec![Field::new("k", DataType::Utf8, true)]);
        GroupPartial {
            spec: GroupBy {
                keys: vec!["k".into()],
                aggs: Vec::new(),
            },
            pre: Pipeline::default(),
            input: SerializedSchema::new(&schema),
            buckets: 4,
            table_bytes,
        }
    }

    #[test]
    fn a_partial_keeps_its_table_when_it_reduces_or_the_domain_fits() {
        let mib = 1u64 << 20;
        // Half the rows repeat a key: kept, whatever the budget.
        assert!(partial(mib).keeps_table(50_000, 100_000, 10 << 20));
        // q3 at 1e8 rows: 95% distinct in the first 100,000 rows, from a
        // domain of a million keys, 160 bytes a group as the first rows'
        // table holds them: kept under 128 MiB, not under 32 MiB.
        assert!(partial(128 * mib).keeps_table(95_163, 100_000, 15_200_000));
        assert!(!partial(32 * mib).keeps_table(95_163, 100_000, 15_200_000));
        // q10: 50 repeats in 100,000 rows (a domain of 1e8 keys), or none.
        assert!(!partial(128 * mib).keeps_table(99_950, 100_000, 16_000_000));
        assert!(!partial(u64::MAX / 4).keeps_table(100_000, 100_000, 16_000_000));
    }
}
