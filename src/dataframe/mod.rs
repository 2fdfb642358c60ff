//! The lazy `Frame`: pandas' and Polars' way of writing a query, in Rust.
//!
//! A [`Frame`] is a [`LogicalPlan`] and its schema. Each method returns a new
//! frame whose plan wraps the old one, checked at once against its input's
//! columns and types, so a misspelt column or a type mismatch fails where it is
//! written (naming the close matches), not when the query runs. Nothing is read
//! until [`Frame::collect`] or a writer ([`Frame::to_parquet`], ...): then the plan
//! is lowered to tasks and run under the job's memory limit, as `blockwise sql`
//! runs it; group-bys and sorts spill rather than fail.
//!
//! ```no_run
//! use blockwise::dataframe::{Agg, Frame};
//! use blockwise::frame::expr::Expr;
//! use blockwise::exec::JobContext;
//! use blockwise::storage::frame::FrameReadOptions;
//!
//! let ctx = JobContext::with_defaults()?;
//! let (schema, batches) = Frame::read_csv("G1_1e7_1e2.csv", FrameReadOptions::default())?
//!     .filter(Expr::col("v1").gt(Expr::lit(2)))?
//!     .groupby(["id1", "id2"])?
//!     .agg([Agg::sum("v1"), Agg::mean("v3").alias("mean_v3")])?
//!     .collect(&ctx)?;
//! # Ok::<(), blockwise::Error>(())
//! ```
//!
//! Filters right above a Parquet scan are pushed into its row-group statistics and
//! page index, and only the columns a plan uses are read, as for SQL: the frame's
//! plan goes through the same optimizer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::convert::{ConvertOptions, PlanSizing};
use crate::error::{Error, Result};
use crate::exec::JobContext;
use crate::frame::expr::{BinaryOp, Expr};
pub use crate::frame::logical::SampleSize;
use crate::frame::logical::{AggExpr, LogicalPlan, SortExpr, Source, WindowExpr, WindowFunc};
use crate::frame::ops::aggregate::AggFunc;
use crate::plan::PlanSummary;
use crate::storage::frame::FrameReadOptions;
use crate::storage::{glob_dir, Format, GlobDir};

/// A lazy table: a query over table files, computed on demand.
#[derive(Debug, Clone)]
pub struct Frame {
    plan: LogicalPlan,
    schema: SchemaRef,
    /// The temporary files the plan reads ([`Frame::from_batches`]), removed
    /// when the last frame reading them is dropped.
    held: Vec<Arc<tempfile::TempDir>>,
}

/// Which row of each set of duplicates [`Frame::drop_duplicates`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first in the file's order (pandas' default).
    First,
    /// The last in the file's order.
    Last,
    /// None: every row that has a duplicate is dropped (pandas' `keep=False`).
    None,
}

impl Frame {
    /// The rows of the CSV file at `path`, read as `options` say (delimiter,
    /// header, types forced, partition size). Its schema is read now.
    ///
    /// # Errors
    /// The file cannot be opened, or its header and first rows do not parse.
    pub fn read_csv(path: impl AsRef<Path>, options: FrameReadOptions) -> Result<Frame> {
        Frame::scan(path.as_ref(), Format::Csv, options)
    }

    /// The rows of the Parquet file at `path`, of every part of the directory at
    /// `path`, or of `dir/*.parquet`. Filters on the frame are pushed into the row
    /// groups' statistics and page indexes: row groups and pages they rule out are
    /// not read.
    ///
    /// # Errors
    /// The file cannot be opened or is not Parquet; any other glob than
    /// `dir/*.parquet`.
    pub fn read_parquet(path: impl AsRef<Path>, options: FrameReadOptions) -> Result<Frame> {
        let path = path.as_ref();
        let path = match glob_dir(path) {
            GlobDir::Dir(dir) => dir,
            GlobDir::NotGlob => path.to_path_buf(),
            GlobDir::Unsupported => {
                return Err(Error::NotYet {
                    what: format!("the glob {}", path.display()),
                    reason: "only dir/*.parquet (every Parquet part of a directory) is read: \
                             name the directory instead"
                        .into(),
                })
            }
        };
        let format = if path.is_dir() {
            Format::ParquetDir
        } else {
            Format::Parquet
        };
        Frame::scan(&path, format, options)
    }

    /// The rows of the Arrow IPC file at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is not an Arrow IPC file.
    pub fn read_ipc(path: impl AsRef<Path>, options: FrameReadOptions) -> Result<Frame> {
        Frame::scan(path.as_ref(), Format::Ipc, options)
    }

    /// The table at `path`, its format found from its contents and name.
    ///
    /// # Errors
    /// As the readers above; a file that is not a table.
    pub fn read(path: impl AsRef<Path>, options: FrameReadOptions) -> Result<Frame> {
        let path = path.as_ref();
        let format = crate::storage::detect(path)?;
        Frame::scan(path, format, options)
    }

    fn scan(path: &Path, format: Format, options: FrameReadOptions) -> Result<Frame> {
        let source = Source::open(PathBuf::from(path), Some(format), options)?;
        Frame::from_plan(LogicalPlan::Scan(source))
    }

    /// A frame of record batches in memory (Polars' and DataFusion's
    /// `from_batches`). They are written once to an Arrow IPC file in a
    /// temporary directory, which the frame's plans read like any table (so that
    /// every task can, in this process or another), and which is removed when the
    /// last frame reading it is dropped.
    ///
    /// # Errors
    /// A batch whose schema is not `schema`; writing the file.
    pub fn from_batches(
        schema: SchemaRef,
        batches: impl IntoIterator<Item = RecordBatch>,
    ) -> Result<Frame> {
        let dir = tempfile::Builder::new()
            .prefix("blockwise-frame-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let path = dir.path().join("batches.arrow");
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut writer =
            arrow::ipc::writer::FileWriter::try_new(std::io::BufWriter::new(file), &schema)?;
        for (i, batch) in batches.into_iter().enumerate() {
            if batch.schema().fields() != schema.fields() {
                return Err(Error::InvalidOption {
                    option: "batches",
                    value: format!("batch {i}"),
                    reason: format!(
                        "its columns are {}, not the schema's {}",
                        batch.schema(),
                        schema
                    ),
                });
            }
            writer.write(&batch)?;
        }
        writer.finish()?;
        let mut frame = Frame::read_ipc(&path, FrameReadOptions::default())?;
        frame.held.push(Arc::new(dir));
        Ok(frame)
    }

    /// The rows of a SQL query (DuckDB's dialect, as `blockwise sql` reads it).
    ///
    /// # Errors
    /// The query's syntax, names and types, placed at their line and column.
    pub fn sql(query: &str) -> Result<Frame> {
        Frame::from_plan(crate::sql::plan_query(query)?)
    }

    /// The frame of a logical plan built by hand.
    ///
    /// # Errors
    /// The plan's expressions do not type against their inputs.
    pub fn from_plan(plan: LogicalPlan) -> Result<Frame> {
        let schema = plan.schema()?;
        Ok(Frame {
            plan,
            schema,
            held: Vec::new(),
        })
    }

    /// The frame's plan.
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The frame's columns and their types.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The frame's column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The frame of `plan`, which reads this one's plan.
    fn wrap(&self, plan: LogicalPlan) -> Result<Frame> {
        Ok(Frame {
            held: self.held.clone(),
            ..Frame::from_plan(plan)?
        })
    }

    fn input(&self) -> Box<LogicalPlan> {
        Box::new(self.plan.clone())
    }

    /// Checks that `name` is one of the frame's columns.
    fn column(&self, name: &str) -> Result<()> {
        Expr::col(name).data_type(&self.schema).map(drop)
    }

    /// The rows where `predicate` is true (not false, not NULL).
    ///
    /// # Errors
    /// An unknown column; a predicate that is not boolean.
    pub fn filter(&self, predicate: Expr) -> Result<Frame> {
        self.wrap(LogicalPlan::Filter {
            input: self.input(),
            predicate,
        })
    }

    /// The columns `names`, in that order.
    ///
    /// # Errors
    /// An unknown column (with the close names); a name given twice.
    pub fn select<S: AsRef<str>>(&self, names: impl IntoIterator<Item = S>) -> Result<Frame> {
        let exprs = names
            .into_iter()
            .map(|n| (n.as_ref().to_string(), Expr::col(n.as_ref())))
            .collect::<Vec<_>>();
        self.select_exprs(exprs)
    }

    /// New columns, each an expression over the frame's and its name.
    ///
    /// # Errors
    /// An expression that does not type; a name given twice.
    pub fn select_exprs<S: Into<String>>(
        &self,
        columns: impl IntoIterator<Item = (S, Expr)>,
    ) -> Result<Frame> {
        let exprs: Vec<(Expr, String)> = columns.into_iter().map(|(n, e)| (e, n.into())).collect();
        distinct_names("select", exprs.iter().map(|(_, n)| n.as_str()))?;
        self.wrap(LogicalPlan::Project {
            input: self.input(),
            exprs,
        })
    }

    /// The frame with `columns` computed (pandas' `assign`, Polars'
    /// `with_columns`): a column of the same name is replaced where it stands, a
    /// new one is appended. Every expression reads the frame's columns as they
    /// were before this call.
    ///
    /// # Errors
    /// An expression that does not type; a name given twice.
    pub fn with_columns<S: Into<String>>(
        &self,
        columns: impl IntoIterator<Item = (S, Expr)>,
    ) -> Result<Frame> {
        let new: Vec<(String, Expr)> = columns.into_iter().map(|(n, e)| (n.into(), e)).collect();
        distinct_names("with_columns", new.iter().map(|(n, _)| n.as_str()))?;
        let mut exprs: Vec<(Expr, String)> = self
            .columns()
            .into_iter()
            .map(|c| (Expr::col(&c), c))
            .collect();
        for (name, e) in new {
            match exprs.iter_mut().find(|(_, n)| *n == name) {
                Some(slot) => slot.0 = e,
                None => exprs.push((e, name)),
            }
        }
        self.wrap(LogicalPlan::Project {
            input: self.input(),
            exprs,
        })
    }

    /// The frame with columns renamed, `(old, new)`.
    ///
    /// # Errors
    /// An unknown column; two columns of the same name after renaming.
    pub fn rename<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Frame> {
        let mut exprs: Vec<(Expr, String)> = self
            .columns()
            .into_iter()
            .map(|c| (Expr::col(&c), c))
            .collect();
        for (old, new) in pairs {
            let (old, new) = (old.as_ref(), new.as_ref());
            self.column(old)?;
            for (e, name) in exprs.iter_mut() {
                if *e == Expr::col(old) {
                    *name = new.to_string();
                }
            }
        }
        distinct_names("rename", exprs.iter().map(|(_, n)| n.as_str()))?;
        self.wrap(LogicalPlan::Project {
            input: self.input(),
            exprs,
        })
    }

    /// The frame without the columns `names`.
    ///
    /// # Errors
    /// An unknown column.
    pub fn drop<S: AsRef<str>>(&self, names: impl IntoIterator<Item = S>) -> Result<Frame> {
        let mut dropped = BTreeSet::new();
        for n in names {
            self.column(n.as_ref())?;
            dropped.insert(n.as_ref().to_string());
        }
        let kept = self.columns().into_iter().filter(|c| !dropped.contains(c));
        self.select(kept.collect::<Vec<_>>())
    }

    /// The first `n` rows (in the frame's order: the file's, for a frame that does
    /// not sort). Only those are read when the plan allows it.
    pub fn head(&self, n: u64) -> Frame {
        self.slice(0, Some(n))
    }

    /// `fetch` rows (all when `None`) after skipping `offset` (SQL's `LIMIT` and
    /// `OFFSET`).
    pub fn slice(&self, offset: u64, fetch: Option<u64>) -> Frame {
        Frame {
            plan: LogicalPlan::Limit {
                input: self.input(),
                offset,
                fetch,
            },
            schema: self.schema.clone(),
            held: self.held.clone(),
        }
    }

    /// The rows sorted by `keys`, most significant first (an external sort: a
    /// frame larger than memory is sorted in runs spilled to disk and merged).
    ///
    /// # Errors
    /// A key that does not type.
    pub fn sort(&self, keys: impl IntoIterator<Item = SortExpr>) -> Result<Frame> {
        self.wrap(LogicalPlan::Sort {
            input: self.input(),
            keys: keys.into_iter().collect(),
        })
    }

    /// The rows sorted by the columns `by`, each ascending or not (pandas'
    /// `sort_values`), NULLs last.
    ///
    /// # Errors
    /// An unknown column.
    pub fn sort_values<S: AsRef<str>>(
        &self,
        by: impl IntoIterator<Item = S>,
        ascending: bool,
    ) -> Result<Frame> {
        self.sort(by.into_iter().map(|c| {
            let key = Expr::col(c.as_ref());
            if ascending {
                SortExpr::asc(key)
            } else {
                SortExpr::desc(key)
            }
        }))
    }

    /// The `n` rows with the largest values of `columns` (compared in order),
    /// largest first: a top k, which never sorts the whole frame.
    ///
    /// # Errors
    /// An unknown column.
    pub fn nlargest<S: AsRef<str>>(
        &self,
        n: u64,
        columns: impl IntoIterator<Item = S>,
    ) -> Result<Frame> {
        Ok(self.sort_values(columns, false)?.head(n))
    }

    /// The `n` rows with the smallest values of `columns`, smallest first.
    ///
    /// # Errors
    /// An unknown column.
    pub fn nsmallest<S: AsRef<str>>(
        &self,
        n: u64,
        columns: impl IntoIterator<Item = S>,
    ) -> Result<Frame> {
        Ok(self.sort_values(columns, true)?.head(n))
    }

    /// A seeded random sample of the rows: pandas' `sample(n=...)` or
    /// `sample(frac=...)` with `random_state`, as [`LogicalPlan::sample`] draws it.
    ///
    /// # Errors
    /// As [`LogicalPlan::sample`].
    pub fn sample(&self, size: SampleSize, seed: u64) -> Result<Frame> {
        self.wrap(LogicalPlan::sample(self.plan.clone(), size, seed)?)
    }

    /// The frame grouped by the columns `keys` (a row a distinct combination;
    /// NULL keys form their own group).
    ///
    /// # Errors
    /// An unknown column.
    pub fn groupby<S: AsRef<str>>(&self, keys: impl IntoIterator<Item = S>) -> Result<GroupBy> {
        let keys = keys
            .into_iter()
            .map(|k| (k.as_ref().to_string(), Expr::col(k.as_ref())))
            .collect::<Vec<_>>();
        self.groupby_exprs(keys)
    }

    /// The frame grouped by expressions, each with its output name.
    ///
    /// # Errors
    /// A key that does not type; a name given twice.
    pub fn groupby_exprs<S: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = (S, Expr)>,
    ) -> Result<GroupBy> {
        let keys: Vec<(Expr, String)> = keys.into_iter().map(|(n, e)| (e, n.into())).collect();
        distinct_names("groupby", keys.iter().map(|(_, n)| n.as_str()))?;
        for (e, _) in &keys {
            e.data_type(&self.schema)?;
        }
        Ok(GroupBy {
            frame: self.clone(),
            keys,
        })
    }

    /// One row of aggregates over the whole frame.
    ///
    /// # Errors
    /// As [`GroupBy::agg`].
    pub fn agg(&self, aggs: impl IntoIterator<Item = Agg>) -> Result<Frame> {
        GroupBy {
            frame: self.clone(),
            keys: Vec::new(),
        }
        .agg(aggs)
    }

    /// Each distinct row once (SQL's `DISTINCT`; the rows' order is not kept).
    pub fn distinct(&self) -> Frame {
        Frame {
            plan: LogicalPlan::Distinct {
                input: self.input(),
            },
            schema: self.schema.clone(),
            held: self.held.clone(),
        }
    }

    /// The rows without duplicates of `subset` (every column when `None`), as
    /// pandas' `drop_duplicates` except that the rows' order is not kept: of
    /// each set of duplicates, the first row in the file's order, the last, or
    /// none.
    ///
    /// # Errors
    /// An unknown column; [`Error::NotYet`] at planning when [`Keep::First`] or
    /// [`Keep::Last`] with a subset follows an operator that loses the file's
    /// order (a sort, a grouping).
    pub fn drop_duplicates(&self, subset: Option<&[&str]>, keep: Keep) -> Result<Frame> {
        let columns = self.columns();
        let keys: Vec<String> = match subset {
            Some(s) => s.iter().map(|k| k.to_string()).collect(),
            None => columns.clone(),
        };
        for k in &keys {
            self.column(k)?;
        }
        let whole_rows = columns.iter().all(|c| keys.contains(c));
        let others: Vec<&String> = columns.iter().filter(|c| !keys.contains(c)).collect();
        let grouped = match keep {
            Keep::First | Keep::Last if whole_rows => return Ok(self.distinct()),
            Keep::First | Keep::Last => {
                // The other values of the key's first (last) row: one row, since
                // the rows' ordinals are unique and every column takes the same.
                let func = if keep == Keep::First {
                    AggFunc::First { skip_nulls: false }
                } else {
                    AggFunc::Last { skip_nulls: false }
                };
                self.groupby(&keys)?
                    .agg(others.iter().map(|c| Agg::of(func.clone(), c)))?
            }
            Keep::None => {
                // Keys seen once: their group's one row, its other values as the
                // min() of one value (which needs no order).
                let rows = unused_name(&columns, "__rows");
                let mut aggs: Vec<Agg> = others.iter().map(|c| Agg::min(c)).collect();
                aggs.push(Agg::size().alias(&rows));
                self.groupby(&keys)?
                    .agg(aggs)?
                    .filter(Expr::col(&rows).eq(Expr::lit(1i64)))?
            }
        };
        // In the frame's column order.
        grouped.select(&columns)
    }

    /// How often each value of `column` occurs, as the columns `column` and
    /// `count`, most frequent first (ties in the value's order).
    ///
    /// # Errors
    /// An unknown column; a column named `count`.
    pub fn value_counts(&self, column: &str) -> Result<Frame> {
        self.groupby([column])?
            .agg([Agg::size().alias("count")])?
            .sort([
                SortExpr::desc(Expr::col("count")),
                SortExpr::asc(Expr::col(column)),
            ])
    }

    /// The rows of this frame, then those of each of `others` (`UNION ALL`): the
    /// columns are matched by position, their types unified as DuckDB does.
    ///
    /// # Errors
    /// Frames of different numbers of columns, or a column whose types do not mix.
    pub fn concat(&self, others: impl IntoIterator<Item = Frame>) -> Result<Frame> {
        let mut held = self.held.clone();
        let mut inputs = vec![self.plan.clone()];
        for f in others {
            inputs.push(f.plan);
            held.extend(f.held);
        }
        Ok(Frame {
            held,
            ..Frame::from_plan(LogicalPlan::union(inputs)?)?
        })
    }

    /// The frame's rows, computed into memory as record batches: at most half the
    /// memory limit of `ctx` (write a larger result with [`Frame::to_parquet`]).
    ///
    /// # Errors
    /// The run's errors (a file that does not parse, cancellation); a result that
    /// does not fit ([`Error::MemoryLimit`], naming its size).
    pub fn collect(&self, ctx: &JobContext) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        crate::convert::query(&self.plan, ctx)
    }

    /// The last `n` rows in the frame's order, computed: the rows are counted
    /// first, then all but the last `n` skipped (two passes over the data).
    ///
    /// # Errors
    /// As [`Frame::collect`].
    pub fn tail(&self, n: u64, ctx: &JobContext) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let rows = self.count_rows(ctx)?;
        self.slice(rows.saturating_sub(n), Some(n)).collect(ctx)
    }

    /// The frame's rows, counted.
    ///
    /// # Errors
    /// As [`Frame::collect`].
    pub fn count_rows(&self, ctx: &JobContext) -> Result<u64> {
        let (_, batches) = self.agg([Agg::size()])?.collect(ctx)?;
        let count = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .ok_or_else(|| Error::bug("a count of rows without its one value", ""))?;
        u64::try_from(count).map_err(|_| Error::bug("a negative count of rows", count))
    }

    /// count, mean, std, min, quartiles and max of each numeric column (pandas'
    /// `describe`), computed in one pass: a `statistic` column naming each row,
    /// then one float column a numeric column of the frame.
    ///
    /// # Errors
    /// A frame without a numeric column ([`Error::FrameType`]); as
    /// [`Frame::collect`].
    pub fn describe(&self, ctx: &JobContext) -> Result<RecordBatch> {
        use arrow::array::{Array, ArrayRef, Float64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};

        let numeric: Vec<String> = self
            .schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_numeric())
            .map(|f| f.name().clone())
            .collect();
        if numeric.is_empty() {
            return Err(Error::FrameType {
                op: "describe".into(),
                reason: "the frame has no numeric column".into(),
            });
        }
        let stats: [(&str, AggOf); 8] = [
            ("count", Agg::count),
            ("mean", Agg::mean),
            ("std", Agg::std),
            ("min", Agg::min),
            ("25%", |c| Agg::quantile(c, 0.25)),
            ("50%", |c| Agg::quantile(c, 0.5)),
            ("75%", |c| Agg::quantile(c, 0.75)),
            ("max", Agg::max),
        ];
        let aggs = numeric.iter().enumerate().flat_map(|(i, c)| {
            stats
                .iter()
                .enumerate()
                .map(move |(j, (_, agg))| agg(c).alias(format!("{i}.{j}")))
        });
        // Every statistic as a double, as pandas gives them.
        let row = self.agg(aggs)?;
        let cast = row
            .columns()
            .into_iter()
            .map(|n| (n.clone(), Expr::col(&n).cast(DataType::Float64)));
        let (_, batches) = row.select_exprs(cast)?.collect(ctx)?;
        let batch = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| Error::bug("a whole-frame aggregate without its row", ""))?;
        let mut fields = vec![Field::new("statistic", DataType::Utf8, false)];
        let mut columns: Vec<ArrayRef> = vec![std::sync::Arc::new(StringArray::from_iter_values(
            stats.iter().map(|(label, _)| *label),
        ))];
        for (i, c) in numeric.iter().enumerate() {
            let values = (0..stats.len()).map(|j| {
                let a = batch.column(i * stats.len() + j);
                let a = a.as_any().downcast_ref::<Float64Array>()?;
                a.is_valid(0).then(|| a.value(0))
            });
            fields.push(Field::new(c, DataType::Float64, true));
            columns.push(std::sync::Arc::new(values.collect::<Float64Array>()));
        }
        Ok(RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// Writes the rows to `path` as Parquet, atomically (a file, or a directory
    /// of parts when `options.to` is [`Format::ParquetDir`]); returns the bytes
    /// written. `options` gives the compression, row-group size and whether an
    /// existing file may be replaced.
    ///
    /// # Errors
    /// The destination's checks (an existing file without `overwrite`), made
    /// before anything runs; the run's errors.
    pub fn to_parquet(
        &self,
        path: impl AsRef<Path>,
        options: &ConvertOptions,
        ctx: &JobContext,
    ) -> Result<u64> {
        let to = match options.to {
            Some(Format::ParquetDir) => Format::ParquetDir,
            _ => Format::Parquet,
        };
        self.write_as(path.as_ref(), to, options, ctx)
    }

    /// Writes the rows to `path` as CSV, atomically; returns the bytes written.
    ///
    /// # Errors
    /// As [`Frame::to_parquet`].
    pub fn to_csv(
        &self,
        path: impl AsRef<Path>,
        options: &ConvertOptions,
        ctx: &JobContext,
    ) -> Result<u64> {
        self.write_as(path.as_ref(), Format::Csv, options, ctx)
    }

    /// Writes the rows to `path` as an Arrow IPC file, atomically; returns the
    /// bytes written.
    ///
    /// # Errors
    /// As [`Frame::to_parquet`].
    pub fn to_ipc(
        &self,
        path: impl AsRef<Path>,
        options: &ConvertOptions,
        ctx: &JobContext,
    ) -> Result<u64> {
        self.write_as(path.as_ref(), Format::Ipc, options, ctx)
    }

    fn write_as(
        &self,
        path: &Path,
        to: Format,
        options: &ConvertOptions,
        ctx: &JobContext,
    ) -> Result<u64> {
        let options = ConvertOptions {
            to: Some(to),
            ..options.clone()
        };
        crate::convert::write_query(&self.plan, path, &options, ctx)
    }

    /// What computing the frame will do, before it runs: its stages, what each
    /// may hold at once against the memory limit, which spill (what `blockwise
    /// explain sql` prints).
    ///
    /// # Errors
    /// The plan cannot be lowered (a construct not supported yet).
    pub fn explain(&self, sizing: PlanSizing) -> Result<PlanSummary> {
        let (plan, _) = crate::convert::plan_query(&self.plan, sizing)?;
        PlanSummary::of(
            &plan,
            crate::convert::registry(),
            sizing.threads,
            sizing.memory_limit,
        )
    }
}

/// A frame grouped by keys, waiting for its aggregates.
#[derive(Debug, Clone)]
pub struct GroupBy {
    frame: Frame,
    keys: Vec<(Expr, String)>,
}

impl GroupBy {
    /// A row a group: the keys, then each aggregate.
    ///
    /// # Errors
    /// An aggregate of a column that does not exist or of a type it does not
    /// take; a quantile outside [0, 1]; an output name given twice.
    pub fn agg(&self, aggs: impl IntoIterator<Item = Agg>) -> Result<Frame> {
        let aggs = aggs
            .into_iter()
            .map(Agg::into_expr)
            .collect::<Result<Vec<_>>>()?;
        distinct_names(
            "agg",
            self.keys
                .iter()
                .map(|(_, n)| n.as_str())
                .chain(aggs.iter().map(|a| a.name.as_str())),
        )?;
        self.frame.wrap(LogicalPlan::Aggregate {
            input: self.frame.input(),
            keys: self.keys.clone(),
            aggs,
        })
    }

    /// The rows of each group, as the column `size` (pandas' `size()`).
    ///
    /// # Errors
    /// A key named `size`.
    pub fn size(&self) -> Result<Frame> {
        self.agg([Agg::size()])
    }

    /// The `n` rows of each group with the largest `column`, in no particular
    /// order: a table of each group's best rows, which never sorts the frame (SQL's
    /// `row_number() OVER (PARTITION BY keys ORDER BY column DESC) <= n`).
    ///
    /// # Errors
    /// An unknown column; `n` of 0 or over 2^20 (sort and filter instead).
    pub fn nlargest(&self, n: u64, column: &str) -> Result<Frame> {
        self.top(n, SortExpr::desc(Expr::col(column)))
    }

    /// The `n` rows of each group with the smallest `column`.
    ///
    /// # Errors
    /// As [`GroupBy::nlargest`].
    pub fn nsmallest(&self, n: u64, column: &str) -> Result<Frame> {
        self.top(n, SortExpr::asc(Expr::col(column)))
    }

    fn top(&self, n: u64, order: SortExpr) -> Result<Frame> {
        if n == 0 || n > 1 << 20 {
            return Err(Error::FrameType {
                op: "nlargest".into(),
                reason: format!(
                    "keeps 1 to {} rows of each group, not {n}: sort the frame and filter \
                     it instead",
                    1u64 << 20
                ),
            });
        }
        let columns = self.frame.columns();
        let rank = unused_name(&columns, "__rank");
        let ranked = self.frame.wrap(LogicalPlan::Window {
            input: self.frame.input(),
            windows: vec![WindowExpr {
                func: WindowFunc::RowNumber,
                partition_by: self.keys.iter().map(|(e, _)| e.clone()).collect(),
                order_by: vec![order],
                name: rank.clone(),
            }],
        })?;
        let n = i64::try_from(n).map_err(|_| Error::bug("a top k over 2^20", n))?;
        ranked
            .filter(Expr::col(&rank).binary(BinaryOp::LtEq, Expr::lit(n)))?
            .select(&columns)
    }
}

/// An aggregate of a grouping: a function of columns (or expressions) and the
/// name of its output column.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    func: AggFunc,
    args: Vec<Expr>,
    distinct: bool,
    name: String,
}

impl Agg {
    /// `func` of `args`, named `name`.
    pub fn new(func: AggFunc, args: Vec<Expr>, name: impl Into<String>) -> Agg {
        Agg {
            func,
            args,
            distinct: false,
            name: name.into(),
        }
    }

    /// `func` of the column `column`, named after it (as pandas and Polars name
    /// an aggregate of one column).
    fn of(func: AggFunc, column: &str) -> Agg {
        Agg::new(func, vec![Expr::col(column)], column)
    }

    /// `func` of two columns, named `func(a, b)`.
    fn of_two(func: AggFunc, a: &str, b: &str) -> Agg {
        let name = format!("{}({a}, {b})", func.name());
        Agg::new(func, vec![Expr::col(a), Expr::col(b)], name)
    }

    /// The same aggregate, its output column named `name`.
    pub fn alias(self, name: impl Into<String>) -> Agg {
        Agg {
            name: name.into(),
            ..self
        }
    }

    /// Rows of the group, NULLs included, named `size`.
    pub fn size() -> Agg {
        Agg::new(AggFunc::Size, Vec::new(), "size")
    }
    /// Non-NULL values.
    pub fn count(column: &str) -> Agg {
        Agg::of(AggFunc::Count, column)
    }
    /// Sum of the non-NULL values (NULL when there are none).
    pub fn sum(column: &str) -> Agg {
        Agg::of(AggFunc::Sum, column)
    }
    /// Arithmetic mean.
    pub fn mean(column: &str) -> Agg {
        Agg::of(AggFunc::Mean, column)
    }
    /// Smallest value.
    pub fn min(column: &str) -> Agg {
        Agg::of(AggFunc::Min, column)
    }
    /// Largest value.
    pub fn max(column: &str) -> Agg {
        Agg::of(AggFunc::Max, column)
    }
    /// Sample standard deviation (`ddof` 1).
    pub fn std(column: &str) -> Agg {
        Agg::of(AggFunc::Std { ddof: 1 }, column)
    }
    /// Sample variance (`ddof` 1).
    pub fn var(column: &str) -> Agg {
        Agg::of(AggFunc::Var { ddof: 1 }, column)
    }
    /// Median, interpolated between the middle two values.
    pub fn median(column: &str) -> Agg {
        Agg::of(AggFunc::Median, column)
    }
    /// Quantile `q` in [0, 1], interpolated (pandas' default, `quantile_cont`).
    pub fn quantile(column: &str, q: f64) -> Agg {
        Agg::of(AggFunc::Quantile { q }, column)
    }
    /// Distinct non-NULL values (`count(DISTINCT column)`).
    pub fn nunique(column: &str) -> Agg {
        Agg {
            distinct: true,
            ..Agg::of(AggFunc::Count, column)
        }
    }
    /// The group's first non-NULL value in the file's order (pandas' `first`).
    pub fn first(column: &str) -> Agg {
        Agg::of(AggFunc::First { skip_nulls: true }, column)
    }
    /// The group's last non-NULL value in the file's order (pandas' `last`).
    pub fn last(column: &str) -> Agg {
        Agg::of(AggFunc::Last { skip_nulls: true }, column)
    }
    /// Whether any value is true.
    pub fn any(column: &str) -> Agg {
        Agg::of(AggFunc::Any, column)
    }
    /// Whether every value is true.
    pub fn all(column: &str) -> Agg {
        Agg::of(AggFunc::All, column)
    }
    /// Pearson correlation of two columns, named `corr(a, b)`.
    pub fn corr(a: &str, b: &str) -> Agg {
        Agg::of_two(AggFunc::Corr, a, b)
    }
    /// Sample covariance of two columns, named `covar_samp(a, b)`.
    pub fn cov(a: &str, b: &str) -> Agg {
        Agg::of_two(AggFunc::Cov { ddof: 1 }, a, b)
    }

    fn into_expr(self) -> Result<AggExpr> {
        if let AggFunc::Quantile { q } | AggFunc::QuantileDisc { q } = self.func {
            if !(0.0..=1.0).contains(&q) {
                return Err(Error::FrameType {
                    op: self.func.name().into(),
                    reason: format!("the quantile is between 0 and 1, not {q}"),
                });
            }
        }
        Ok(AggExpr {
            func: self.func,
            args: self.args,
            distinct: self.distinct,
            name: self.name,
        })
    }
}

/// An aggregate of a named column.
type AggOf = fn(&str) -> Agg;

/// Refuses a list of output names with one twice: later steps could not tell
/// the columns apart.
fn distinct_names<'a>(op: &str, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(Error::FrameType {
                op: op.into(),
                reason: format!("the output column {n:?} is named twice"),
            });
        }
    }
    Ok(())
}

/// `base`, or `base` with underscores added until no column of `columns` has it:
/// the name of a helper column that must not shadow the user's.
fn unused_name(columns: &[String], base: &str) -> String {
    let mut name = base.to_string();
    while columns.contains(&name) {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests;
