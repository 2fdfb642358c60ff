//! The tables of a partial task: how its rows become states cut into buckets.
//!
//! A task starts with one table of groups. What it does next depends on the
//! keys it meets:
//! - **few groups** (up to [`PARTITION_GROUPS`]): the one table, flushed into
//!   the buckets when it outgrows its reservation and at the end;
//! - **many groups, fewer than the table holds** (db-benchmark's `id3`, a
//!   million): a table a bucket. Each batch's rows are put in bucket order
//!   first, so a probe touches one bucket's table, small enough for a core's
//!   cache; one table of a million groups missed the cache on every row and
//!   took 1.7 times the CPU. The task's output is then its distinct groups, not
//!   its rows;
//! - **nearly every key distinct** (q10's): no table. Each row goes on as its
//!   own group's states, and the final tasks group them. This is decided on the
//!   first [`PROBE_ROWS`] rows, from the number of keys they suggest, or when
//!   the bucket tables fill having reduced little.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};

use super::buckets::{by_bucket, Buckets};
use super::keys::{bucket_of, estimated_keys, KeyHasher};
use super::{GroupBy, Grouping};
use crate::error::Result;
use crate::memory::Reservation;
use crate::plan::TaskEnv;

/// Rows a partial task groups before it estimates how many keys there are.
const PROBE_ROWS: usize = 100_000;

/// Groups above which one table is cut into a table a bucket.
pub const PARTITION_GROUPS: usize = 1 << 17;

/// How many times the groups the tables hold the keys estimated on the first
/// rows may number before the task stops grouping: a table that holds a
/// quarter of the keys when it fills has reduced its rows by about an eighth,
/// which does not pay for the table.
const KEYS_PER_CAPACITY: f64 = 4.0;

/// Groups per row above which bucket tables that filled did not pay for
/// themselves: the task then stops grouping. DataFusion skips its partial
/// aggregation at the same ratio.
const DISTINCT_RATIO: f64 = 0.8;

/// What the task does with its rows (see the module).
enum Mode {
    Single,
    Partitioned,
    Distinct,
}

/// A partial task's groups, and the states it has flushed.
pub struct PartialTables<'a, 'e> {
    env: &'a TaskEnv<'e>,
    spec: &'a GroupBy,
    input: SchemaRef,
    mode: Mode,
    /// The one table; empty past [`Mode::Single`].
    single: Grouping,
    /// A table a bucket, made as rows come to it, and each one's bytes.
    parts: Vec<Option<Grouping>>,
    sizes: Vec<usize>,
    /// What the tables hold, and may hold.
    reserved: Reservation,
    limit: u64,
    /// Rows grouped since the tables were last flushed, and in all.
    rows: usize,
    seen: usize,
    /// Hashes keys to buckets (`None` without keys: one group).
    hasher: Option<KeyHasher>,
    key_cols: Vec<usize>,
    buckets: u32,
    flushed: Buckets,
}

impl<'a, 'e> PartialTables<'a, 'e> {
    /// Empty tables for task `task`'s grouping `spec` of rows of `input`, which
    /// may hold `limit` bytes, cutting states into `buckets`.
    ///
    /// # Errors
    /// As [`Grouping::new`].
    pub fn new(
        env: &'a TaskEnv<'e>,
        task: u32,
        spec: &'a GroupBy,
        input: &SchemaRef,
        limit: u64,
        buckets: u32,
    ) -> Result<Self> {
        let single = Grouping::new(spec, input)?;
        let nkeys = spec.keys.len();
        let key_types: Vec<DataType> = single.state_schema().fields()[..nkeys]
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let key_cols = spec
            .keys
            .iter()
            .map(|k| input.index_of(k))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let buckets = buckets.max(1);
        Ok(PartialTables {
            env,
            spec,
            input: input.clone(),
            mode: Mode::Single,
            flushed: Buckets::new(
                env,
                format!("group_partial {task} states"),
                single.state_schema().clone(),
                buckets as usize,
            ),
            single,
            parts: Vec::new(),
            sizes: Vec::new(),
            reserved: env.pool.reserve(format!("group_partial {task}")),
            limit,
            rows: 0,
            seen: 0,
            hasher: match nkeys {
                0 => None,
                _ => Some(KeyHasher::new(&key_types)?),
            },
            key_cols,
            buckets,
        })
    }

    /// The states' schema.
    pub fn state_schema(&self) -> &SchemaRef {
        self.single.state_schema()
    }

    /// Groups `batch` (of the input schema).
    ///
    /// # Errors
    /// The accumulators' errors; spill errors.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        self.env.cancel.check()?;
        match self.mode {
            Mode::Single => self.add_single(batch),
            Mode::Partitioned => self.add_partitioned(batch),
            Mode::Distinct => {
                let states = self.single.row_states(batch)?;
                let of = self.bucket_of_rows(&states, &(0..self.key_cols.len()).collect::<Vec<_>>())?;
                self.flushed.add(self.env, &states, &of)
            }
        }
    }

    /// Each row's bucket, by its key columns `cols` of `batch`.
    fn bucket_of_rows(&self, batch: &RecordBatch, cols: &[usize]) -> Result<Vec<u32>> {
        let Some(hasher) = &self.hasher else {
            return Ok(vec![0; batch.num_rows()]);
        };
        let keys: Vec<_> = cols.iter().map(|&i| batch.column(i).clone()).collect();
        hasher.buckets(&keys, 0, self.buckets)
    }

    fn add_single(&mut self, batch: &RecordBatch) -> Result<()> {
        self.single.update(batch)?;
        let before = self.seen;
        self.rows += batch.num_rows();
        self.seen += batch.num_rows();
        let keyed = self.hasher.is_some();
        if keyed && before < PROBE_ROWS && self.seen >= PROBE_ROWS && self.too_many_keys() {
            self.flush()?;
            self.mode = Mode::Distinct;
            return Ok(());
        }
        if keyed && self.single.len() > PARTITION_GROUPS {
            self.flush()?;
            self.mode = Mode::Partitioned;
            self.parts = (0..self.buckets).map(|_| None).collect();
            self.sizes = vec![0; self.buckets as usize];
            return Ok(());
        }
        let size = self.single.size() as u64;
        self.fit(size)
    }

    /// Whether the keys the first rows suggest are too many for the tables
    /// ([`KEYS_PER_CAPACITY`]).
    fn too_many_keys(&self) -> bool {
        let groups = self.single.len();
        let keys = estimated_keys(groups, self.rows);
        let per_group = self.single.size() as f64 / groups.max(1) as f64;
        keys > KEYS_PER_CAPACITY * self.limit as f64 / per_group
    }

    fn add_partitioned(&mut self, batch: &RecordBatch) -> Result<()> {
        let of = self.bucket_of_rows(batch, &self.key_cols.clone())?;
        let (sorted, starts) = by_bucket(batch, &of, self.buckets as usize)?;
        let mut total: usize = 0;
        for (b, w) in starts.windows(2).enumerate() {
            if w[1] > w[0] {
                let part = match &mut self.parts[b] {
                    Some(part) => part,
                    slot => slot.insert(Grouping::new(self.spec, &self.input)?),
                };
                part.update(&sorted.slice(w[0], w[1] - w[0]))?;
                self.sizes[b] = part.size();
            }
            total += self.sizes[b];
        }
        self.rows += batch.num_rows();
        self.seen += batch.num_rows();
        let groups: usize = self.parts.iter().flatten().map(Grouping::len).sum();
        let rows = self.rows;
        if !self.fits(total as u64) {
            self.flush()?;
            if groups as f64 > DISTINCT_RATIO * rows as f64 {
                self.mode = Mode::Distinct;
                self.parts.clear();
                self.sizes.clear();
                let held = self.reserved.size().min(self.single.size() as u64);
                self.reserved.resize(held);
            }
        }
        Ok(())
    }

    /// Whether tables of `size` bytes fit their limit and reservation (grown
    /// to `size` if they do).
    fn fits(&mut self, size: u64) -> bool {
        size <= self.limit
            && self
                .reserved
                .try_grow(size.saturating_sub(self.reserved.size()))
                .is_ok()
    }

    /// Flushes the one table when it outgrows its limit.
    fn fit(&mut self, size: u64) -> Result<()> {
        if !self.fits(size) {
            self.flush()?;
        }
        Ok(())
    }

    /// Moves every group's states into the buckets.
    fn flush(&mut self) -> Result<()> {
        if std::env::var("BW_DEBUG").is_ok() { eprintln!("flush rows {} seen {} single {} parts {} sizes {} reserved {}", self.rows, self.seen, self.single.len(), self.parts.iter().flatten().map(Grouping::len).sum::<usize>(), self.sizes.iter().sum::<usize>(), self.reserved.size()); }
        self.rows = 0;
        if !self.single.is_empty() {
            let of: Vec<u32> = (0..self.single.len())
                .map(|g| bucket_of(self.single.hash(g), self.buckets))
                .collect();
            let states = self.single.take_states()?;
            self.flushed.add(self.env, &states, &of)?;
        }
        for (b, part) in self.parts.iter_mut().enumerate() {
            if let Some(part) = part.as_mut().filter(|p| !p.is_empty()) {
                let states = part.take_states()?;
                self.flushed.add_to(self.env, b, states)?;
                self.sizes[b] = part.size();
            }
        }
        // What the emptied tables still hold (their converters, their buffers)
        // stays reserved; the reservation only shrinks here, never past the pool.
        let held = self.single.size() + self.sizes.iter().sum::<usize>();
        self.reserved
            .resize(self.reserved.size().min(held as u64));
        Ok(())
    }

    /// Flushes what is left; returns the buckets of states.
    ///
    /// # Errors
    /// As [`PartialTables::add`].
    pub fn finish(mut self) -> Result<Buckets> {
        self.flush()?;
        Ok(self.flushed)
    }
}
