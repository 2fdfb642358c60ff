//! A [`LogicalPlan`] as tasks of a [`Plan`].
//!
//! Row-wise operators (filters, projections) do not become tasks of their own:
//! they gather into the [`Pipeline`] that the next task reading the rows applies
//! as it reads them, so a scan, its filter and the key columns of a grouping run
//! in one pass over each partition. A scan reads only the columns its pipeline
//! uses. Blocking operators become stages:
//!
//! | operator | tasks |
//! |---|---|
//! | aggregate, distinct | `group_partial` a part, `group_final` a bucket, which applies the steps after the grouping too, and encodes its part when the result goes to a file ([`crate::frame::ops::aggregate::write_in_finals`]) |
//! | sort | the external merge sort ([`crate::frame::ops::sort`]): sorted runs a part, merges by key range |
//! | sort with a limit (top k) | `frame_sort` a part, then one `frame_sort` of them all |
//! | limit | one `frame_limit`, which stops reading once it has its rows |
//! | window | `frame_shuffle` a part (rows by partition-key hash), `frame_window` a bucket ([`crate::frame::ops::window`]) |
//! | `row_number() ... <= k` (a top k per group) | the same, each shuffle keeping only the first k rows of every window partition of its part (a table of partitions, not a sort) |
//!
//! | union all | none: each query's parts one after the other, read through that query's steps and then the union's by the task that reads them (the grouping's, the result's); a sort, limit or window first stages each query by `frame_pipeline`; `UNION` is a union under a distinct |
//! | scalar subquery | its own stages, then one `frame_limit` of 2 rows (enough to tell one from several) |
//! | `IN` subquery | its own stages, then one `frame_concat` of all its rows |
//!
//! A subquery's entry is written into the expressions that read it
//! ([`crate::frame::expr::Subquery::entry`]); every task whose pipeline reads
//! one lists the entry after its inputs and depends on its task
//! ([`crate::frame::ops::reading_inputs`]), and binds the value before it reads
//! a row ([`crate::frame::read::reading`]), so `run-task`, a resumed run and the
//! Dask executor order them as they order any other input.
//!
//! `count(DISTINCT x)` is two groupings (by the keys and `x`, then by the keys).
//! What is not built yet is refused when the plan is made: other aggregates over
//! distinct values, window functions over different partitions in one query.

use arrow::datatypes::SchemaRef;

use super::expr::{Expr, Subquery, SubqueryEntry, SubqueryKind};
use super::logical::{AggExpr, LogicalPlan, SortExpr, Source, SubqueryPlan, WindowExpr};
use super::ops::aggregate::{add_partials, AggCall, AggFunc, GroupBy, GroupSizing, Partials};
use super::ops::pipeline::{Pipeline, Step};
use super::ops::sort::{add_sort, read_batch_rows, SortKey, SortSizing};
use super::ops::stream::{FrameConcat, FrameLimit, FramePipeline, FrameSort};
use super::ops::window::{FrameNumber, FrameShuffle, FrameWindow, TopPerGroup, WindowColumn};
use super::ops::{gather, gather_target, reading_inputs, Part};
use super::prune::{self, partitions_to_read};
use crate::error::{Error, Result};
use crate::plan::{DataRef, Dataset, DatasetRole, OpSpec, Plan, Task, TaskKind};
use crate::storage::frame::FrameReadOptions;
use crate::storage::frame::SerializedSchema;
use crate::storage::open_frame_described;

/// What a query's plan is sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySizing {
    /// Tasks running at once.
    pub threads: usize,
    /// The memory budget in bytes.
    pub memory_limit: u64,
}

/// Rows as the plan has them so far: where they are read from, and the steps
/// still to apply to them.
#[derive(Clone)]
struct Rows {
    input: Input,
    pre: Pipeline,
}

#[derive(Clone)]
enum Input {
    /// A table file, not yet listed in the plan: the columns it is read with
    /// depend on what reads it.
    Source(Source),
    /// Parts published by tasks, of this schema.
    Parts(Vec<Part>, SchemaRef),
    /// The queries of a `UNION ALL`, each its rows and steps, yielding this
    /// schema (the queries agree in names and types): a task reading one of
    /// their parts applies that query's steps, then the union's.
    Union(Vec<Rows>, SchemaRef),
    /// An aggregation whose final tasks are added by what reads it, with the
    /// reader's steps as their `post` where they can be (see [`Partials`]), of
    /// this schema.
    Grouped(Box<Partials>, SchemaRef),
}

impl Rows {
    /// The schema of the rows before `pre`.
    fn input_schema(&self) -> SchemaRef {
        match &self.input {
            Input::Source(s) => s.schema.clone(),
            Input::Parts(_, schema) | Input::Union(_, schema) | Input::Grouped(_, schema) => {
                schema.clone()
            }
        }
    }

    /// The schema of the rows after `pre`.
    fn schema(&self) -> Result<SchemaRef> {
        self.pre.schema(&self.input_schema())
    }
}

/// The query's result: its parts, in order, and their schema.
pub struct Lowered {
    /// Every part is a task's entry.
    pub parts: Vec<Part>,
    /// The rows' schema.
    pub schema: SchemaRef,
}

/// Adds `query`'s tasks to `plan`.
///
/// # Errors
/// Expressions that do not type; operators not built yet; what opening a table
/// fails with.
pub fn lower(plan: &mut Plan, query: &LogicalPlan, sizing: QuerySizing) -> Result<Lowered> {
    let query = super::optimize::prune_columns(super::optimize::number_rows(query.clone())?);
    let rows = Lowering { plan, sizing }.rows(&query)?;
    let mut lowering = Lowering { plan, sizing };
    lowering.finish(rows)
}

struct Lowering<'p> {
    plan: &'p mut Plan,
    sizing: QuerySizing,
}

impl Lowering<'_> {
    fn rows(&mut self, query: &LogicalPlan) -> Result<Rows> {
        Ok(match query {
            LogicalPlan::Scan(source) => Rows {
                input: Input::Source(source.clone()),
                pre: Pipeline::default(),
            },
            LogicalPlan::Filter { input, predicate } => {
                let mut rows = match (input.as_ref(), Self::top_rows(input, predicate)) {
                    // `row_number() ... <= k`: each part keeps its k first rows of
                    // every window partition before the shuffle.
                    (
                        LogicalPlan::Window {
                            input: inner,
                            windows,
                        },
                        Some(k),
                    ) => {
                        let rows = self.rows(inner.as_ref())?;
                        self.window(rows, windows.as_slice(), Some(k))?
                    }
                    // The same through a projection that passes the number on (a
                    // subquery selecting it under an alias, as db-benchmark's q8).
                    (
                        LogicalPlan::Project {
                            input: window,
                            exprs,
                        },
                        Some(k),
                    ) => {
                        let LogicalPlan::Window {
                            input: inner,
                            windows,
                        } = window.as_ref()
                        else {
                            return Err(Error::bug("a top k without its window", ""));
                        };
                        let rows = self.rows(inner.as_ref())?;
                        let mut rows = self.window(rows, windows.as_slice(), Some(k))?;
                        rows.pre.steps.push(Step::Project(exprs.clone()));
                        rows
                    }
                    _ => self.rows(input)?,
                };
                rows.pre.steps.push(Step::Filter(predicate.clone()));
                rows
            }
            LogicalPlan::Project { input, exprs } => {
                let mut rows = self.rows(input)?;
                rows.pre.steps.push(Step::Project(exprs.clone()));
                rows
            }
            LogicalPlan::Aggregate { input, keys, aggs } if aggs.iter().any(|a| a.distinct) => {
                let distinct = Self::distinct_count(input, keys, aggs)?;
                self.rows(&distinct)?
            }
            LogicalPlan::Aggregate { input, keys, aggs } => {
                let rows = self.rows(input)?;
                // The keys and the aggregates' arguments are computed into columns
                // of their own by the partial tasks' pipeline.
                let mut computed: Vec<(Expr, String)> = keys.clone();
                let mut calls = Vec::new();
                for (i, a) in aggs.iter().enumerate() {
                    let mut args = Vec::new();
                    for (j, e) in a.args.iter().enumerate() {
                        let name = format!("#{i}.{j}");
                        computed.push((e.clone(), name.clone()));
                        args.push(name);
                    }
                    calls.push(AggCall {
                        func: a.func.clone(),
                        args,
                        name: a.name.clone(),
                    });
                }
                let spec = GroupBy {
                    keys: keys.iter().map(|(_, n)| n.clone()).collect(),
                    aggs: calls,
                };
                self.group(rows, computed, spec)?
            }
            LogicalPlan::Distinct { input } => {
                let rows = self.rows(input)?;
                let schema = rows.schema()?;
                let keys: Vec<(Expr, String)> = schema
                    .fields()
                    .iter()
                    .map(|f| (Expr::col(f.name()), f.name().clone()))
                    .collect();
                let spec = GroupBy {
                    keys: keys.iter().map(|(_, n)| n.clone()).collect(),
                    aggs: Vec::new(),
                };
                self.group(rows, keys, spec)?
            }
            LogicalPlan::Sort { input, keys } => {
                let rows = self.rows(input)?;
                self.sort(rows, keys, 0, None)?
            }
            LogicalPlan::Limit {
                input,
                offset,
                fetch,
            } => match input.as_ref() {
                // A limit on sorted rows is a top k: no part holds more than it.
                LogicalPlan::Sort { input, keys } => {
                    let rows = self.rows(input)?;
                    self.sort(rows, keys, *offset, *fetch)?
                }
                _ => {
                    let rows = self.rows(input)?;
                    self.limit(rows, *offset, *fetch)?
                }
            },
            LogicalPlan::Window { input, windows } => {
                let rows = self.rows(input)?;
                self.window(rows, windows, None)?
            }
            LogicalPlan::Union { inputs } => {
                // Each query's rows with its own steps, read one after the other
                // by whatever reads the union.
                let schema = query.schema()?;
                let members = inputs
                    .iter()
                    .map(|input| self.rows(input))
                    .collect::<Result<Vec<_>>>()?;
                Rows {
                    input: Input::Union(members, schema),
                    pre: Pipeline::default(),
                }
            }
            LogicalPlan::WithSubqueries { input, subqueries } => {
                let entries = self.subqueries(subqueries)?;
                let input = with_entries(input, &entries)?;
                self.rows(&input)?
            }
        })
    }

    /// Each subquery as a stage of its own, in order (one may read the entries of
    /// those before it), ending in one entry: at most two rows for a scalar
    /// subquery (enough to tell one row from several), every row for `IN`.
    fn subqueries(&mut self, subqueries: &[SubqueryPlan]) -> Result<Vec<SubqueryEntry>> {
        let mut entries: Vec<SubqueryEntry> = Vec::with_capacity(subqueries.len());
        for s in subqueries {
            let plan = with_entries(&s.plan, &entries)?;
            let rows = self.rows(&plan)?;
            let schema = rows.schema()?;
            let (parts, _) = self.parts(&rows)?;
            let (id, op, bytes) = match s.kind {
                SubqueryKind::Scalar => {
                    let op = FrameLimit {
                        pre: rows.pre.clone(),
                        schema: SerializedSchema::new(&schema),
                        offset: 0,
                        fetch: Some(2),
                    };
                    (self.plan.fresh_id("scalar"), OpSpec::of(&op), 0)
                }
                SubqueryKind::Set => {
                    let op = FrameConcat {
                        pre: rows.pre.clone(),
                        schema: SerializedSchema::new(&schema),
                    };
                    let bytes = parts.iter().map(|p| p.bytes).sum();
                    (self.plan.fresh_id("in_set"), OpSpec::of(&op), bytes)
                }
            };
            self.intermediate(&id);
            let part = self.task(&id, 0, parts, &rows.pre, op, bytes);
            let task = part
                .task
                .ok_or_else(|| Error::bug("a subquery's entry without its task", ""))?;
            entries.push(SubqueryEntry {
                data: part.data,
                task,
            });
        }
        Ok(entries)
    }

    /// The parts `rows` are read from, and their schema: a source is listed in
    /// the plan now, reading the columns `pre` uses.
    fn parts(&mut self, rows: &Rows) -> Result<(Vec<Part>, SchemaRef)> {
        match &rows.input {
            Input::Parts(parts, schema) => Ok((parts.clone(), schema.clone())),
            Input::Grouped(partials, schema) => Ok((
                partials.finals(self.plan, &Pipeline::default())?,
                schema.clone(),
            )),
            // For the operators that read every part with one pipeline, each
            // query's rows staged through its own steps first.
            Input::Union(members, schema) => {
                let mut parts = Vec::new();
                for m in members {
                    parts.extend(self.stage(m.clone(), None)?.parts);
                }
                Ok((parts, schema.clone()))
            }
            Input::Source(source) => {
                let mut read = source.read.clone();
                if let Some(used) = rows.pre.columns() {
                    // In the file's order; a pipeline using no column (`count(*)`)
                    // reads the first, for the rows.
                    let mut columns: Vec<String> = source
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .filter(|n| used.contains(n))
                        .collect();
                    if columns.is_empty() {
                        columns.extend(source.schema.fields().first().map(|f| f.name().clone()));
                    }
                    read.columns = Some(columns);
                }
                let (mut opened, mut meta) =
                    open_frame_described(&source.path, source.format, &read)?;
                // Row groups whose statistics rule the filters out are not read,
                // nor the pages of the others whose page index does.
                if read.row_groups.is_none() && prune::has_filters(&rows.pre) {
                    if let Some(keep) = partitions_to_read(opened.as_ref(), &rows.pre) {
                        read.row_groups = Some(keep);
                        (opened, meta) = open_frame_described(&source.path, source.format, &read)?;
                    }
                    if source.format == crate::storage::Format::Parquet {
                        let indexed = FrameReadOptions {
                            page_index: true,
                            ..read.clone()
                        };
                        let (with_index, _) =
                            open_frame_described(&source.path, source.format, &indexed)?;
                        if let Some(ranges) = prune::pages_to_read(with_index.as_ref(), &rows.pre) {
                            read.row_ranges = Some(ranges);
                            (opened, meta) =
                                open_frame_described(&source.path, source.format, &read)?;
                        }
                    }
                }
                let id = self.plan.fresh_id("src");
                let meta = serde_json::to_value(&meta)
                    .map_err(|e| Error::bug("source description to JSON", e))?;
                self.plan.datasets.push(
                    Dataset::new(
                        &id,
                        source.path.display(),
                        source.format.name(),
                        DatasetRole::Input,
                    )
                    .with_meta(meta),
                );
                // An empty table is read as one empty partition, which carries
                // nothing but keeps every stage's shape.
                let parts = (0..opened.num_partitions().max(1))
                    .map(|i| {
                        let bytes = if i < opened.num_partitions() {
                            opened.partition_memory_bytes(i)
                        } else {
                            0
                        };
                        Part::source(&id, i as u64, bytes)
                    })
                    .collect();
                Ok((parts, opened.schema()))
            }
        }
    }

    /// The parts `rows` are read from, each with the steps a task reading it
    /// applies: `rows.pre`, after a union's query's own steps for its parts (so
    /// that a union's rows go straight into the task that reads them).
    /// Each with the schema of the part's rows before its steps (a source's as
    /// opened with the columns they read).
    fn reads(&mut self, rows: &Rows) -> Result<Vec<(Part, Pipeline, SchemaRef)>> {
        if let Input::Grouped(partials, _) = &rows.input {
            // The steps after a grouping run in its final tasks, unless they read
            // a subquery's entry (which a final task does not take as input).
            if rows.pre.subqueries().is_empty() {
                let schema = rows.schema()?;
                let parts = partials.finals(self.plan, &rows.pre)?;
                return Ok(parts
                    .into_iter()
                    .map(|p| (p, Pipeline::default(), schema.clone()))
                    .collect());
            }
        }
        let Input::Union(members, _) = &rows.input else {
            let (parts, schema) = self.parts(rows)?;
            return Ok(parts
                .into_iter()
                .map(|p| (p, rows.pre.clone(), schema.clone()))
                .collect());
        };
        let mut out = Vec::new();
        for m in members {
            let mut steps = m.pre.steps.clone();
            steps.extend(rows.pre.steps.iter().cloned());
            out.extend(self.reads(&Rows {
                input: m.input.clone(),
                pre: Pipeline { steps },
            })?);
        }
        Ok(out)
    }

    /// A grouping of `rows`, its keys and arguments computed by `computed`.
    fn group(
        &mut self,
        mut rows: Rows,
        computed: Vec<(Expr, String)>,
        spec: GroupBy,
    ) -> Result<Rows> {
        rows.pre.steps.push(Step::Project(computed));
        let reads = self.reads(&rows)?;
        // What the steps yield from the rows as read (every part's the same).
        let grouped = match reads.first() {
            Some((_, pre, input)) => pre.schema(input)?,
            None => rows.schema()?,
        };
        let reads: Vec<(Part, Pipeline)> = reads.into_iter().map(|(p, pre, _)| (p, pre)).collect();
        let sizing = GroupSizing {
            threads: self.sizing.threads,
            memory_limit: self.sizing.memory_limit,
        };
        let output = spec.output_schema(&grouped)?;
        let partials = add_partials(self.plan, &reads, &grouped, &spec, sizing)?;
        Ok(Rows {
            input: Input::Grouped(Box::new(partials), output),
            pre: Pipeline::default(),
        })
    }

    /// `rows` sorted by `keys`, then `offset` and `fetch`: a top k in every part
    /// first when limited, the external merge sort otherwise.
    fn sort(
        &mut self,
        rows: Rows,
        keys: &[SortExpr],
        offset: u64,
        fetch: Option<u64>,
    ) -> Result<Rows> {
        let schema = rows.schema()?;
        for k in keys {
            k.expr.data_type(&schema)?;
        }
        if fetch.is_none() && offset == 0 {
            return self.external_sort(rows, keys);
        }
        let (mut parts, _) = self.parts(&rows)?;
        let mut pre = rows.pre.clone();
        if let Some(f) = fetch {
            let each = FrameSort {
                pre: pre.clone(),
                schema: SerializedSchema::new(&schema),
                keys: keys.to_vec(),
                offset: 0,
                fetch: Some(f.saturating_add(offset)),
            };
            let id = self.plan.fresh_id("topk");
            self.intermediate(&id);
            parts = parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let op = OpSpec::of(&each);
                    self.task(&id, i as u64, vec![p.clone()], &each.pre, op, p.bytes)
                })
                .collect();
            pre = Pipeline::default();
        }
        let all = FrameSort {
            pre,
            schema: SerializedSchema::new(&schema),
            keys: keys.to_vec(),
            offset,
            fetch,
        };
        let id = self.plan.fresh_id("sorted");
        self.intermediate(&id);
        // A limited sort's output is its rows, a few hundred bytes each at most
        // for what the plan knows.
        let total: u64 = parts.iter().map(|p| p.bytes).sum();
        let bytes = fetch.map_or(total, |f| total.min(f.saturating_mul(256)));
        let part = self.task(&id, 0, parts, &all.pre, OpSpec::of(&all), bytes);
        Ok(Rows {
            input: Input::Parts(vec![part], schema),
            pre: Pipeline::default(),
        })
    }

    /// `rows` with window columns: shuffled by the partition keys into buckets,
    /// each bucket numbered.
    fn window(&mut self, rows: Rows, windows: &[WindowExpr], top: Option<usize>) -> Result<Rows> {
        let Some(first) = windows.first() else {
            return Ok(rows);
        };
        let keys = first.partition_by.clone();
        if let Some(w) = windows.iter().find(|w| w.partition_by != keys) {
            return Err(Error::NotYet {
                what: "window functions over different partitions in one query".into(),
                reason: format!(
                    "{} and {} partition differently; compute them in two queries",
                    first.name, w.name
                ),
            });
        }
        let schema = rows.schema()?;
        for k in &keys {
            k.data_type(&schema)?;
        }
        let columns: Vec<WindowColumn> = windows
            .iter()
            .map(|w| WindowColumn {
                func: w.func.into(),
                order_by: w.order_by.clone(),
                name: w.name.clone(),
            })
            .collect();
        for c in &columns {
            for o in &c.order_by {
                o.expr.data_type(&schema)?;
            }
        }
        let top = top.map(|k| TopPerGroup {
            order_by: first.order_by.clone(),
            k,
        });
        let (parts, read) = self.parts(&rows)?;
        let bytes: u64 = parts.iter().map(|p| p.bytes).sum();
        let one_order = columns.iter().all(|c| c.order_by == first.order_by);
        if keys.is_empty() && top.is_none() && one_order && bytes > self.sizing.memory_limit / 8 {
            // One window partition larger than a task holds well: sorted by the
            // external merge sort and numbered range after range.
            let rows = Rows {
                input: Input::Parts(parts, read),
                pre: rows.pre,
            };
            return self.window_in_order(rows, &schema, columns);
        }
        let buckets = if keys.is_empty() {
            1
        } else {
            GroupSizing {
                threads: self.sizing.threads,
                memory_limit: self.sizing.memory_limit,
            }
            .buckets(bytes)
        };
        let shuffle = FrameShuffle {
            pre: rows.pre.clone(),
            schema: SerializedSchema::new(&schema),
            keys: keys.clone(),
            buckets,
            top: top.clone(),
        };
        let id = self.plan.fresh_id("shuffled");
        self.intermediate(&id);
        // Small parts read together: each keeps its top k of more rows.
        let target = gather_target(bytes, self.sizing.threads, self.sizing.memory_limit);
        let runs = gather(
            parts
                .iter()
                .map(|p| (p.clone(), shuffle.pre.clone()))
                .collect(),
            target,
        );
        let shuffled: Vec<Part> = runs
            .into_iter()
            .enumerate()
            .map(|(i, (run, pre))| {
                let bytes = run.iter().map(|p| p.bytes).sum();
                self.task(&id, i as u64, run, &pre, OpSpec::of(&shuffle), bytes)
            })
            .collect();
        let id = self.plan.fresh_id("windows");
        self.intermediate(&id);
        let per_bucket = bytes / u64::from(buckets);
        let numbered = (0..buckets)
            .map(|b| {
                let op = FrameWindow {
                    schema: SerializedSchema::new(&schema),
                    keys: keys.clone(),
                    windows: columns.clone(),
                    bucket: b,
                    top: top.clone(),
                };
                self.task(
                    &id,
                    u64::from(b),
                    shuffled.clone(),
                    &Pipeline::default(),
                    OpSpec::of(&op),
                    per_bucket,
                )
            })
            .collect();
        Ok(Rows {
            input: Input::Parts(numbered, FrameWindow::output_schema(&schema, &columns)),
            pre: Pipeline::default(),
        })
    }

    /// The window `columns` (of one order, no partition keys) over `rows` (of
    /// `schema`): the rows sorted by the external merge sort, then numbered by a
    /// chain of [`FrameNumber`] tasks, a key range each, each going on where the
    /// range before it stopped.
    fn window_in_order(
        &mut self,
        rows: Rows,
        schema: &SchemaRef,
        columns: Vec<WindowColumn>,
    ) -> Result<Rows> {
        let order = columns
            .first()
            .map(|c| c.order_by.clone())
            .unwrap_or_default();
        let sorted = self.external_sort(rows, &order)?;
        let Input::Parts(parts, keyed) = &sorted.input else {
            return Err(Error::bug("a window's sorted rows", "not parts of tasks"));
        };
        let op = FrameNumber {
            input: SerializedSchema::new(keyed),
            pre: sorted.pre.clone(),
            windows: columns.clone(),
        };
        let id = self.plan.fresh_id("numbered");
        self.intermediate(&id);
        let share = self.sizing.memory_limit / (2 * self.sizing.threads.max(1) as u64);
        let mut numbered: Vec<Part> = Vec::with_capacity(parts.len());
        for (k, part) in parts.iter().enumerate() {
            let mut inputs = vec![part.data.clone()];
            let mut deps: Vec<_> = part.task.into_iter().collect();
            if let Some(previous) = numbered.last() {
                inputs.push(previous.data.clone());
                deps.extend(previous.task);
            }
            let output = DataRef::partition(&id, k as u64);
            let task = self.plan.push(Task {
                inputs,
                deps,
                memory_bytes: part.bytes.min(share),
                unit_bytes: part.bytes,
                ..Task::new(OpSpec::of(&op), output.clone(), TaskKind::Compute)
            });
            numbered.push(Part {
                data: output,
                task: Some(task),
                bytes: part.bytes,
            });
        }
        // The links number one range after another while the merges run in
        // parallel: merge `k` waits for link `k - threads`, so that only a few
        // merged ranges wait in the store (as the writer makes its producers
        // wait). Without it a 1e8-row window under 1 GiB held ranges of 251 and
        // 139 MB waiting, and passed the RSS threshold.
        let ahead = self.sizing.threads.max(1);
        for k in ahead..parts.len() {
            if let (Some(merge), Some(link)) = (parts[k].task, numbered[k - ahead].task) {
                self.plan.tasks[merge as usize].deps.push(link);
            }
        }
        Ok(Rows {
            input: Input::Parts(numbered, FrameWindow::output_schema(schema, &columns)),
            pre: Pipeline::default(),
        })
    }

    /// `rows` sorted by the external merge sort ([`add_sort`]): the keys computed
    /// into columns of their own (the sort orders columns, nulls last), sorted
    /// runs of every part, merged by key range; the key columns dropped after.
    fn external_sort(&mut self, mut rows: Rows, keys: &[SortExpr]) -> Result<Rows> {
        let schema = rows.schema()?;
        let mut exprs: Vec<(Expr, String)> = schema
            .fields()
            .iter()
            .map(|f| (Expr::col(f.name()), f.name().clone()))
            .collect();
        let mut sort_keys = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if k.nulls_first {
                // NULLS FIRST: a key saying whether there is a value, false first.
                let name = format!("#n{i}");
                exprs.push((k.expr.clone().is_not_null(), name.clone()));
                sort_keys.push(SortKey {
                    column: name,
                    descending: false,
                });
            }
            let name = format!("#k{i}");
            exprs.push((k.expr.clone(), name.clone()));
            sort_keys.push(SortKey {
                column: name,
                descending: k.descending,
            });
        }
        rows.pre.steps.push(Step::Project(exprs));
        let keyed = rows.schema()?;
        let sizing = SortSizing {
            threads: self.sizing.threads,
            memory_limit: self.sizing.memory_limit,
        };
        // Batches small enough that a run holds several.
        let batch_rows = read_batch_rows(&keyed, &sort_keys, sizing.run_bytes())?;
        let staged = self.stage(rows, Some(batch_rows))?;
        let ranges = add_sort(
            self.plan,
            &staged.parts,
            &keyed,
            &sort_keys,
            batch_rows,
            sizing,
        )?;
        let bytes: u64 = staged.parts.iter().map(|p| p.bytes).sum();
        let per_range = bytes / ranges.len().max(1) as u64;
        let parts = ranges
            .into_iter()
            .map(|(data, task)| Part {
                data,
                task: Some(task),
                bytes: per_range,
            })
            .collect();
        let back: Vec<(Expr, String)> = schema
            .fields()
            .iter()
            .map(|f| (Expr::col(f.name()), f.name().clone()))
            .collect();
        Ok(Rows {
            input: Input::Parts(parts, keyed),
            pre: Pipeline {
                steps: vec![Step::Project(back)],
            },
        })
    }

    /// The first `fetch` rows of `rows` after `offset`.
    fn limit(&mut self, rows: Rows, offset: u64, fetch: Option<u64>) -> Result<Rows> {
        let schema = rows.schema()?;
        let (parts, _) = self.parts(&rows)?;
        let op = FrameLimit {
            pre: rows.pre.clone(),
            schema: SerializedSchema::new(&schema),
            offset,
            fetch,
        };
        let id = self.plan.fresh_id("limited");
        self.intermediate(&id);
        let part = self.task(&id, 0, parts, &op.pre, OpSpec::of(&op), 0);
        Ok(Rows {
            input: Input::Parts(vec![part], schema),
            pre: Pipeline::default(),
        })
    }

    /// `count(DISTINCT x)` as two groupings: by the keys and `x`, then by the keys,
    /// counting the `x` that are not NULL. The other aggregates of the query go
    /// through the two groupings as partial results merged again (a sum of sums, a
    /// sum of counts, a min of mins; a mean as its sum and count), so only
    /// aggregates that merge so can stand beside it, and every distinct one must
    /// be a count of one same column.
    fn distinct_count(
        input: &LogicalPlan,
        keys: &[(Expr, String)],
        aggs: &[AggExpr],
    ) -> Result<LogicalPlan> {
        let distinct: Vec<&AggExpr> = aggs.iter().filter(|a| a.distinct).collect();
        let value = &distinct[0].args;
        let refused = |a: &AggExpr, why: &str| {
            Err(Error::NotYet {
                what: a.name.clone(),
                reason: why.to_string(),
            })
        };
        for a in &distinct {
            if a.func != AggFunc::Count || &a.args != value || a.args.len() != 1 {
                return refused(
                    a,
                    "of aggregates over distinct values, only count(DISTINCT x) is, on one \
                     column per query",
                );
            }
        }
        const VALUE: &str = "#distinct";
        let mut inner_keys = keys.to_vec();
        inner_keys.push((value[0].clone(), VALUE.into()));
        let agg = |func: AggFunc, arg: Option<Expr>, name: String| AggExpr {
            func,
            args: arg.into_iter().collect(),
            distinct: false,
            name,
        };
        let (mut inner, mut outer, mut project) = (Vec::new(), Vec::new(), Vec::new());
        for (i, a) in aggs.iter().enumerate() {
            let part = format!("#p{i}");
            let out = |suffix: &str| format!("#o{i}{suffix}");
            let arg = a.args.first().cloned();
            let merged = match &a.func {
                _ if a.distinct => {
                    outer.push(agg(AggFunc::Count, Some(Expr::col(VALUE)), out("")));
                    Expr::col(&out(""))
                }
                AggFunc::Size | AggFunc::Count | AggFunc::Sum => {
                    inner.push(agg(a.func.clone(), arg, part.clone()));
                    outer.push(agg(AggFunc::Sum, Some(Expr::col(&part)), out("")));
                    Expr::col(&out(""))
                }
                AggFunc::Min | AggFunc::Max | AggFunc::Any | AggFunc::All => {
                    inner.push(agg(a.func.clone(), arg, part.clone()));
                    outer.push(agg(a.func.clone(), Some(Expr::col(&part)), out("")));
                    Expr::col(&out(""))
                }
                AggFunc::Mean => {
                    inner.push(agg(AggFunc::Sum, arg.clone(), format!("{part}s")));
                    inner.push(agg(AggFunc::Count, arg, format!("{part}c")));
                    outer.push(agg(
                        AggFunc::Sum,
                        Some(Expr::col(&format!("{part}s"))),
                        out("s"),
                    ));
                    outer.push(agg(
                        AggFunc::Sum,
                        Some(Expr::col(&format!("{part}c"))),
                        out("c"),
                    ));
                    // A mean of no value is NULL, not a division by zero.
                    Expr::col(&out("s"))
                        .cast(arrow::datatypes::DataType::Float64)
                        .div(Expr::call(
                            "nullif",
                            vec![Expr::col(&out("c")), Expr::lit(0i64)],
                        ))
                }
                other => {
                    return refused(
                        a,
                        &format!(
                            "{} beside count(DISTINCT ...) (only sum, count, min, max, avg, \
                             bool_or and bool_and are)",
                            other.name()
                        ),
                    )
                }
            };
            project.push((merged, a.name.clone()));
        }
        let key_cols: Vec<(Expr, String)> = keys
            .iter()
            .map(|(_, name)| (Expr::col(name), name.clone()))
            .collect();
        let grouped = LogicalPlan::Aggregate {
            input: Box::new(LogicalPlan::Aggregate {
                input: Box::new(input.clone()),
                keys: inner_keys,
                aggs: inner,
            }),
            keys: key_cols.clone(),
            aggs: outer,
        };
        Ok(LogicalPlan::Project {
            input: Box::new(grouped),
            exprs: key_cols.into_iter().chain(project).collect(),
        })
    }

    /// The `k` of `predicate` over `input` when it keeps the first `k` rows of each
    /// window partition: one `row_number()` window, filtered by `rn <= k` or `rn < k`.
    fn top_rows(input: &LogicalPlan, predicate: &Expr) -> Option<usize> {
        // The filtered column: the window's own, or its alias in a projection
        // directly above it.
        let (windows, alias) = match input {
            LogicalPlan::Window { windows, .. } => (windows, None),
            LogicalPlan::Project { input, exprs } => match input.as_ref() {
                LogicalPlan::Window { windows, .. } => (windows, Some(exprs)),
                _ => return None,
            },
            _ => return None,
        };
        let [w] = windows.as_slice() else {
            return None;
        };
        if w.func != crate::frame::logical::WindowFunc::RowNumber {
            return None;
        }
        let Expr::Binary { op, left, right } = predicate else {
            return None;
        };
        let (Expr::Column(c), Expr::Literal(crate::frame::expr::Literal::Int64(k))) =
            (left.as_ref(), right.as_ref())
        else {
            return None;
        };
        let passes = match alias {
            None => *c == w.name,
            Some(exprs) => exprs
                .iter()
                .any(|(e, name)| name == c && *e == Expr::Column(w.name.clone())),
        };
        if !passes {
            return None;
        }
        let k = match op {
            crate::frame::expr::BinaryOp::LtEq => *k,
            crate::frame::expr::BinaryOp::Lt => k.checked_sub(1)?,
            _ => return None,
        };
        usize::try_from(k).ok().filter(|&k| k <= 1 << 20)
    }

    /// The result's parts: every part a task's entry with the pipeline applied.
    fn finish(&mut self, rows: Rows) -> Result<Lowered> {
        self.stage(rows, None)
    }

    /// `rows` as entries of tasks, the pipeline applied, in compact batches of at
    /// most `batch_rows` rows when given.
    fn stage(&mut self, rows: Rows, batch_rows: Option<usize>) -> Result<Lowered> {
        let schema = rows.schema()?;
        let reads = self.reads(&rows)?;
        // Entries already as they should be (a union's queries' too: they agree
        // in names and types) are not copied.
        let done = batch_rows.is_none()
            && reads
                .iter()
                .all(|(p, pre, _)| pre.is_empty() && p.task.is_some());
        if done {
            let parts = reads.into_iter().map(|(p, _, _)| p).collect();
            return Ok(Lowered { parts, schema });
        }
        let id = self.plan.fresh_id("rows");
        self.intermediate(&id);
        let parts = reads
            .into_iter()
            .enumerate()
            .map(|(i, (p, pre, _))| {
                let op = FramePipeline {
                    pre,
                    schema: SerializedSchema::new(&schema),
                    batch_rows,
                };
                let bytes = p.bytes;
                self.task(&id, i as u64, vec![p], &op.pre, OpSpec::of(&op), bytes)
            })
            .collect();
        Ok(Lowered { parts, schema })
    }

    fn intermediate(&mut self, id: &str) {
        self.plan
            .datasets
            .push(Dataset::new(id, "", "memory", DatasetRole::Intermediate));
    }

    /// A task reading `inputs` through `pre` into partition `k` of `id` (the
    /// entries of the subqueries `pre` reads listed after the inputs).
    fn task(
        &mut self,
        id: &str,
        k: u64,
        inputs: Vec<Part>,
        pre: &Pipeline,
        op: OpSpec,
        bytes: u64,
    ) -> Part {
        let output = DataRef::partition(id, k);
        let kind = if inputs.iter().any(|p| p.task.is_none()) {
            TaskKind::Load
        } else {
            TaskKind::Compute
        };
        let (inputs, deps) = reading_inputs(&inputs, pre);
        let task = self.plan.push(Task {
            inputs,
            deps,
            // What a task of these holds is about what it reads, at most a
            // task's share of the limit (the pool decides the rest).
            memory_bytes: bytes
                .min(self.sizing.memory_limit / (2 * self.sizing.threads.max(1) as u64)),
            unit_bytes: bytes,
            ..Task::new(op, output.clone(), kind)
        });
        Part {
            data: output,
            task: Some(task),
            bytes,
        }
    }
}

/// `plan` with the entries of the subqueries lowered so far written into the
/// expressions that read them.
fn with_entries(plan: &LogicalPlan, entries: &[SubqueryEntry]) -> Result<LogicalPlan> {
    plan.map_subqueries(&mut |s| {
        let entry = entries.get(s.id).ok_or_else(|| Error::Bug {
            what: "a subquery read before it is computed",
            detail: s.text.clone(),
        })?;
        Ok(Subquery {
            entry: Some(entry.clone()),
            ..s.clone()
        })
    })
}
