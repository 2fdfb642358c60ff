//! Hash aggregation: `GROUP BY` keys with aggregate functions, out of core.
//!
//! A plan aggregates in two steps ([`plan::add_partials`], [`plan::Partials::finals`]):
//!
//! 1. `group_partial`, a task per run of input partitions (eight at least, up
//!    to a GiB each: the more rows a table sees, the more it reduces): its rows
//!    go into a table of groups ([`keys::GroupKeys`]) with one state a group and
//!    aggregate ([`accumulator`]). When the table outgrows its reservation it is
//!    flushed: its states, cut into buckets by key hash, are kept and the table
//!    starts again. Low-cardinality keys flush once, at the end, a row a group.
//!    Keys nearly all distinct in the first rows, from a domain larger than the
//!    task's table holds (db-benchmark's q10), skip the table: each row goes on
//!    as its own group's states, and the partial step costs a hash and a copy,
//!    not memory.
//! 2. `group_final`, a task per bucket: it merges that bucket's states from every
//!    partition. A bucket holds about 1/B of the groups, B chosen from the input's
//!    size so that one fits a task's share of the limit even when every row is its
//!    own group. A bucket whose table still outgrows its reservation is partitioned
//!    again on other bits of the hash, into spill files, and each part finished in
//!    turn.
//!
//! The buckets' results, in bucket order, are the output's parts.
//!
//! Results follow DuckDB: `sum` of no values is NULL, `count` of none is 0, `var`
//! and `std` are sample statistics unless `ddof` says otherwise and NULL without a
//! degree of freedom, `corr` is NaN for a constant column, `median` interpolates.

pub mod accumulator;
pub(crate) mod bucketed;
pub(crate) mod buckets;
pub mod keys;
pub mod ops;
pub mod plan;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use self::accumulator::{accumulator, GroupsAccumulator};
use self::keys::GroupKeys;
use crate::error::{Error, Result};

pub use self::ops::{GroupFinal, GroupPartial};
pub use self::plan::{add_partials, write_in_finals, GroupSizing, Partials};

/// An aggregate function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "func")]
pub enum AggFunc {
    /// Rows of the group (`count(*)`, pandas' `size`).
    #[default]
    Size,
    /// Non-null values.
    Count,
    /// Sum of the non-null values (NULL when there are none).
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value (NaN is the largest float, as DuckDB orders it).
    Max,
    /// Variance with `ddof` degrees of freedom subtracted (1: sample).
    Var {
        /// Delta degrees of freedom.
        ddof: u8,
    },
    /// Standard deviation with `ddof`.
    Std {
        /// Delta degrees of freedom.
        ddof: u8,
    },
    /// Median, interpolated between the middle two values.
    Median,
    /// Quantile `q` in [0, 1], interpolated (`quantile_cont`).
    Quantile {
        /// The quantile.
        q: f64,
    },
    /// Quantile `q` in [0, 1], discrete (`quantile_disc`, DuckDB's `quantile`):
    /// the value at rank `ceil(n * q)` (the first for `q = 0`), of the input's
    /// type.
    QuantileDisc {
        /// The quantile.
        q: f64,
    },
    /// Pearson correlation of two columns.
    Corr,
    /// Covariance of two columns with `ddof`.
    Cov {
        /// Delta degrees of freedom.
        ddof: u8,
    },
    /// The value of the group's first row in the file's order (of its first
    /// row with a value, skipping NULLs). Planned with one argument; the plan
    /// adds the rows' ordinals as a second ([`ORDINAL`]).
    First {
        /// Rows whose value is NULL do not count (pandas' `first`, DuckDB's
        /// `any_value`); otherwise the first row's NULL is the result (DuckDB's
        /// `first`).
        skip_nulls: bool,
    },
    /// The value of the group's last row in the file's order, as [`AggFunc::First`].
    Last {
        /// As for [`AggFunc::First`].
        skip_nulls: bool,
    },
    /// Whether any value is true.
    Any,
    /// Whether every value is true.
    All,
}

impl AggFunc {
    /// The function's name, as SQL spells it.
    pub fn name(&self) -> &'static str {
        match self {
            AggFunc::Size => "count_star",
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Mean => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Var { ddof: 0 } => "var_pop",
            AggFunc::Var { .. } => "var_samp",
            AggFunc::Std { ddof: 0 } => "stddev_pop",
            AggFunc::Std { .. } => "stddev_samp",
            AggFunc::Median => "median",
            AggFunc::Quantile { .. } => "quantile_cont",
            AggFunc::QuantileDisc { .. } => "quantile_disc",
            AggFunc::Corr => "corr",
            AggFunc::Cov { ddof: 0 } => "covar_pop",
            AggFunc::Cov { .. } => "covar_samp",
            AggFunc::First { skip_nulls: true } => "any_value",
            AggFunc::First { .. } => "first",
            AggFunc::Last { .. } => "last",
            AggFunc::Any => "bool_or",
            AggFunc::All => "bool_and",
        }
    }

    /// Arguments the function takes.
    pub fn arity(&self) -> usize {
        match self {
            AggFunc::Size => 0,
            AggFunc::Corr | AggFunc::Cov { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the function reads the rows' order: its plan gives it their
    /// ordinals as a last argument.
    pub fn positional(&self) -> bool {
        matches!(self, AggFunc::First { .. } | AggFunc::Last { .. })
    }

    /// Whether a group's state grows with its rows (it holds their values),
    /// rather than being a few numbers.
    pub fn state_grows(&self) -> bool {
        matches!(
            self,
            AggFunc::Median | AggFunc::Quantile { .. } | AggFunc::QuantileDisc { .. }
        )
    }

    /// Checks that the function takes arguments of `types`.
    ///
    /// # Errors
    /// [`Error::FrameType`] naming the function and the type it does not take.
    pub fn check(&self, types: &[DataType]) -> Result<()> {
        let types = match types {
            [value, DataType::Int64] if self.positional() => std::slice::from_ref(value),
            _ => types,
        };
        if types.len() != self.arity() {
            return Err(Error::FrameType {
                op: self.name().to_string(),
                reason: format!(
                    "takes {} argument{}, got {}",
                    self.arity(),
                    if self.arity() == 1 { "" } else { "s" },
                    types.len()
                ),
            });
        }
        let numeric =
            |t: &DataType| t.is_numeric() || matches!(t, DataType::Boolean | DataType::Null);
        let ok = match self {
            AggFunc::Size | AggFunc::Count => true,
            AggFunc::Min | AggFunc::Max | AggFunc::First { .. } | AggFunc::Last { .. } => types.iter().all(|t| {
                numeric(t)
                    || t.is_temporal()
                    || matches!(
                        t,
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    )
                    || matches!(t, DataType::Dictionary(_, v) if v.is_primitive() || **v == DataType::Utf8)
            }),
            AggFunc::Any | AggFunc::All => {
                types.iter().all(|t| matches!(t, DataType::Boolean | DataType::Null))
            }
            _ => types.iter().all(numeric),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::FrameType {
                op: self.name().to_string(),
                reason: format!(
                    "does not take a {} column",
                    crate::storage::type_name(&types[0])
                ),
            })
        }
    }

    /// The type of the result for arguments of `types`.
    pub fn output_type(&self, types: &[DataType]) -> DataType {
        let arg = types.first().cloned().unwrap_or(DataType::Null);
        match self {
            AggFunc::Size | AggFunc::Count => DataType::Int64,
            AggFunc::Sum if accumulator::is_integer(&arg) => DataType::Int64,
            AggFunc::Min | AggFunc::Max | AggFunc::First { .. } | AggFunc::Last { .. } => match arg
            {
                DataType::Dictionary(_, v) => *v,
                DataType::Decimal128(..) | DataType::Float16 => DataType::Float64,
                DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
                DataType::Null => DataType::Int64,
                other => other,
            },
            AggFunc::Any | AggFunc::All => DataType::Boolean,
            // An input value, of the input's type (its values are held as floats:
            // integers beyond 2^53 come back rounded).
            AggFunc::QuantileDisc { .. } => match arg {
                DataType::Dictionary(_, v) => *v,
                DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Float16 => {
                    DataType::Float64
                }
                DataType::Null => DataType::Int64,
                other => other,
            },
            _ => DataType::Float64,
        }
    }

    /// How a function that keeps one of its input values (`min`, `first`)
    /// holds it in its state: a string, a float or an integer.
    fn held_type(&self, types: &[DataType]) -> DataType {
        match self.output_type(types) {
            DataType::Utf8 => DataType::Utf8,
            t if t.is_floating() => DataType::Float64,
            _ => DataType::Int64,
        }
    }

    /// The columns of the function's partial state, named after `name`.
    pub fn state_fields(&self, name: &str, types: &[DataType]) -> Vec<Field> {
        let f = |suffix: &str, t: DataType| Field::new(format!("{name}.{suffix}"), t, true);
        match self {
            AggFunc::Size | AggFunc::Count => vec![f("count", DataType::Int64)],
            AggFunc::Sum => vec![f("sum", self.output_type(types))],
            AggFunc::Mean => vec![f("sum", DataType::Float64), f("count", DataType::Int64)],
            AggFunc::Min | AggFunc::Max => vec![f("value", self.held_type(types))],
            AggFunc::Var { .. } | AggFunc::Std { .. } => ["n", "mean", "m2"]
                .iter()
                .map(|s| f(s, DataType::Float64))
                .collect(),
            AggFunc::Corr | AggFunc::Cov { .. } => {
                ["n", "mean_x", "mean_y", "m2_x", "m2_y", "c_xy"]
                    .iter()
                    .map(|s| f(s, DataType::Float64))
                    .collect()
            }
            AggFunc::Median | AggFunc::Quantile { .. } | AggFunc::QuantileDisc { .. } => vec![f(
                "values",
                DataType::List(Arc::new(Field::new("item", DataType::Float64, false))),
            )],
            AggFunc::First { .. } | AggFunc::Last { .. } => vec![
                f("ordinal", DataType::Int64),
                f("value", self.held_type(types)),
            ],
            AggFunc::Any | AggFunc::All => vec![f("value", DataType::Boolean)],
        }
    }
}

/// One aggregate of a grouping: a function of columns, and its output's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// The columns it takes (none for `count(*)`).
    pub args: Vec<String>,
    /// The output column's name.
    pub name: String,
}

/// A grouping: keys (columns; none for one group of every row) and aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupBy {
    /// The key columns.
    pub keys: Vec<String>,
    /// The aggregates, in output order after the keys.
    pub aggs: Vec<AggCall>,
}

impl GroupBy {
    /// The columns the grouping reads from its input, each once, keys first.
    pub fn columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self
            .keys
            .iter()
            .chain(self.aggs.iter().flat_map(|a| &a.args))
        {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// The argument types of each aggregate over `input`.
    fn arg_types(&self, input: &Schema) -> Result<Vec<Vec<DataType>>> {
        self.aggs
            .iter()
            .map(|a| {
                a.args
                    .iter()
                    .map(|c| Ok(field(input, c)?.data_type().clone()))
                    .collect()
            })
            .collect()
    }

    /// Checks the grouping against its input: columns that exist, functions that
    /// take their columns' types, output names given once.
    ///
    /// # Errors
    /// [`Error::FrameType`] naming what does not fit.
    pub fn check(&self, input: &Schema) -> Result<()> {
        for (a, types) in self.aggs.iter().zip(self.arg_types(input)?) {
            a.func.check(&types)?;
        }
        let out = self.output_schema(input)?;
        let mut names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::FrameType {
                op: "group by".into(),
                reason: format!(
                    "the output has two columns named {:?}; give one an alias",
                    w[0]
                ),
            });
        }
        Ok(())
    }

    /// The result's schema: the keys, then each aggregate.
    ///
    /// # Errors
    /// [`Error::UnknownColumn`] for a column not in `input`.
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        let mut fields = self.key_fields(input)?;
        for (a, types) in self.aggs.iter().zip(self.arg_types(input)?) {
            fields.push(Field::new(&a.name, a.func.output_type(&types), true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// The partial states' schema: the keys, then each aggregate's state columns.
    ///
    /// # Errors
    /// As [`GroupBy::output_schema`].
    pub fn state_schema(&self, input: &Schema) -> Result<SchemaRef> {
        let mut fields = self.key_fields(input)?;
        for (i, (a, types)) in self.aggs.iter().zip(self.arg_types(input)?).enumerate() {
            fields.extend(a.func.state_fields(&format!("{i}"), &types));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn key_fields(&self, input: &Schema) -> Result<Vec<Field>> {
        self.keys
            .iter()
            .map(|k| Ok(field(input, k)?.clone().with_nullable(true)))
            .collect()
    }
}

/// The field `name` of `schema`.
fn field<'s>(schema: &'s Schema, name: &str) -> Result<&'s Field> {
    schema.field_with_name(name).map_err(|_| {
        let available: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        Error::UnknownColumn {
            column: name.to_string(),
            close: crate::error::close_names(name, available.iter().cloned()),
            available,
        }
    })
}

/// The groups of one task: their keys and every aggregate's states.
pub struct Grouping {
    keys: Option<GroupKeys>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    /// Input column of each key, and of each aggregate's arguments.
    key_cols: Vec<usize>,
    arg_cols: Vec<Vec<usize>>,
    /// Where each aggregate's state columns start in a state batch.
    state_cols: Vec<std::ops::Range<usize>>,
    groups: Vec<u32>,
    /// Groups held when there are no keys: one once a row is seen.
    total: usize,
    state_schema: SchemaRef,
    output_schema: SchemaRef,
}

impl Grouping {
    /// An empty grouping of `spec` over rows of `input`.
    ///
    /// # Errors
    /// As [`GroupBy::check`]; key types the row format cannot encode.
    pub fn new(spec: &GroupBy, input: &Schema) -> Result<Grouping> {
        spec.check(input)?;
        let index = |c: &String| -> Result<usize> {
            input.index_of(c).map_err(|_| {
                field(input, c)
                    .err()
                    .unwrap_or_else(|| Error::bug("column", c))
            })
        };
        let key_cols = spec.keys.iter().map(index).collect::<Result<Vec<_>>>()?;
        let key_types: Vec<DataType> = key_cols
            .iter()
            .map(|&i| input.field(i).data_type().clone())
            .collect();
        let arg_types = spec.arg_types(input)?;
        let mut accs = Vec::new();
        let mut state_cols = Vec::new();
        let mut at = key_cols.len();
        for (a, types) in spec.aggs.iter().zip(&arg_types) {
            accs.push(accumulator(&a.func, types)?);
            let n = a.func.state_fields("", types).len();
            state_cols.push(at..at + n);
            at += n;
        }
        Ok(Grouping {
            keys: if key_cols.is_empty() {
                None
            } else {
                Some(GroupKeys::new(&key_types)?)
            },
            accs,
            arg_cols: spec
                .aggs
                .iter()
                .map(|a| a.args.iter().map(index).collect())
                .collect::<Result<_>>()?,
            key_cols,
            state_cols,
            groups: Vec::new(),
            total: 0,
            state_schema: spec.state_schema(input)?,
            output_schema: spec.output_schema(input)?,
        })
    }

    /// The partial states' schema.
    pub fn state_schema(&self) -> &SchemaRef {
        &self.state_schema
    }

    /// The result's schema.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Groups held.
    pub fn len(&self) -> usize {
        match &self.keys {
            Some(k) => k.len(),
            None => self.total,
        }
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held: keys, table, states.
    pub fn size(&self) -> usize {
        self.keys.as_ref().map_or(0, GroupKeys::size)
            + self.accs.iter().map(|a| a.size()).sum::<usize>()
            + self.groups.capacity() * 4
    }

    /// The hash of group `g`'s key (0 without keys).
    pub fn hash(&self, g: usize) -> u64 {
        self.keys.as_ref().map_or(0, |k| k.hash(g))
    }

    /// Numbers the rows of `keys` into `self.groups`; returns the groups held.
    fn intern(&mut self, keys: &[ArrayRef], rows: usize) -> Result<usize> {
        match &mut self.keys {
            Some(k) => {
                k.intern(keys, &mut self.groups)?;
                Ok(k.len())
            }
            None => {
                self.groups.clear();
                self.groups.resize(rows, 0);
                self.total = self.total.max(usize::from(rows > 0));
                Ok(self.total)
            }
        }
    }

    /// Adds input rows (of the `input` schema given to [`Grouping::new`]).
    ///
    /// # Errors
    /// The accumulators' errors (an integer sum's overflow).
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys: Vec<ArrayRef> = self
            .key_cols
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let total = self.intern(&keys, batch.num_rows())?;
        for (acc, cols) in self.accs.iter_mut().zip(&self.arg_cols) {
            let args: Vec<ArrayRef> = cols.iter().map(|&i| batch.column(i).clone()).collect();
            acc.update(&args, &self.groups, total)?;
        }
        Ok(())
    }

    /// The rows of `batch`, each as a group of its own, as partial states:
    /// what grouping the batch alone and taking the states gives when no two of
    /// its rows share a key, without a table. Rows that do share one stay apart
    /// (the final grouping merges them). The grouping must be empty.
    ///
    /// # Errors
    /// As [`Grouping::update`].
    pub fn row_states(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        if !self.is_empty() {
            return Err(Error::bug("row states", "the grouping holds groups"));
        }
        let rows = batch.num_rows();
        self.groups.clear();
        self.groups.extend(0..rows as u32);
        let mut columns: Vec<ArrayRef> = self
            .key_cols
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        for (acc, cols) in self.accs.iter_mut().zip(&self.arg_cols) {
            let args: Vec<ArrayRef> = cols.iter().map(|&i| batch.column(i).clone()).collect();
            acc.update(&args, &self.groups, rows)?;
            columns.extend(acc.state()?);
        }
        self.batch(&self.state_schema.clone(), columns)
    }

    /// Merges partial states (a batch of [`Grouping::state_schema`]).
    ///
    /// # Errors
    /// As [`Grouping::update`].
    pub fn merge(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys: Vec<ArrayRef> = batch.columns()[..self.key_cols.len()].to_vec();
        let total = self.intern(&keys, batch.num_rows())?;
        for (acc, cols) in self.accs.iter_mut().zip(&self.state_cols) {
            acc.merge(&batch.columns()[cols.clone()], &self.groups, total)?;
        }
        Ok(())
    }

    /// Every group's partial state, in group order; the grouping is empty
    /// afterwards.
    ///
    /// # Errors
    /// Arrow errors building the columns.
    pub fn take_states(&mut self) -> Result<RecordBatch> {
        let mut columns = self.take_keys()?;
        for acc in &mut self.accs {
            columns.extend(acc.state()?);
        }
        self.batch(&self.state_schema.clone(), columns)
    }

    /// Every group's result, in group order; the grouping is empty afterwards.
    /// Without keys, one row even for no input (`count` 0, `sum` NULL), as SQL's
    /// aggregates of a whole table.
    ///
    /// # Errors
    /// Arrow errors building the columns.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        if self.keys.is_none() && self.total == 0 {
            // No row: every aggregate over no value, as merging no state (empty
            // columns of the state's types, so that each finds its columns).
            for (acc, cols) in self.accs.iter_mut().zip(&self.state_cols) {
                let empty: Vec<ArrayRef> = cols
                    .clone()
                    .map(|i| arrow::array::new_empty_array(self.state_schema.field(i).data_type()))
                    .collect();
                acc.merge(&empty, &[], 1)?;
            }
            self.total = 1;
        }
        let mut columns = self.take_keys()?;
        for acc in &mut self.accs {
            columns.push(acc.evaluate()?);
        }
        self.batch(&self.output_schema.clone(), columns)
    }

    /// Every group's result, as [`Grouping::finish`] gives it, in batches of at
    /// most `rows` groups: the aggregates are evaluated at once (a column each),
    /// the keys decoded a batch at a time as the iterator goes. The results of
    /// a large table are then never held whole beside it (at 1e8 nearly distinct
    /// groups under 1 GiB, two final tasks finishing at once held 0.5 GB more
    /// than they had reserved).
    ///
    /// # Errors
    /// As [`Grouping::finish`].
    pub fn finish_in_batches(mut self, rows: usize) -> Result<FinishedGroups> {
        let Some(keys) = self.keys.take() else {
            return Ok(FinishedGroups {
                keys: None,
                values: self.finish()?.columns().to_vec(),
                schema: self.output_schema.clone(),
                rows: usize::MAX,
                next: 0,
                total: 1,
            });
        };
        let values = self
            .accs
            .iter_mut()
            .map(|acc| acc.evaluate())
            .collect::<Result<Vec<_>>>()?;
        self.accs.clear();
        Ok(FinishedGroups {
            total: keys.len(),
            keys: Some(keys),
            values,
            schema: self.output_schema.clone(),
            rows: rows.max(1),
            next: 0,
        })
    }

    fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        self.total = 0;
        Ok(match &mut self.keys {
            Some(k) => {
                let cols = k.columns(None)?;
                k.clear();
                cols
            }
            None => Vec::new(),
        })
    }

    fn batch(&self, schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
        let rows = columns.first().map_or(0, |c| c.len());
        batch_of(schema, columns, rows)
    }
}

/// A batch of `schema` from `columns` of `rows` rows.
fn batch_of(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    // Key columns come back from the row format with their own types, which
    // may differ from the input's only in nullability.
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| match c.data_type() == f.data_type() {
            true => Ok(c),
            false => Ok(arrow::compute::cast(&c, f.data_type())?),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

/// A grouping's results, a batch of groups at a time
/// ([`Grouping::finish_in_batches`]).
pub struct FinishedGroups {
    /// The groups' keys, decoded a batch at a time (none: one group, whose
    /// keys-less row is all of `values`).
    keys: Option<GroupKeys>,
    /// Each aggregate's results, every group's.
    values: Vec<ArrayRef>,
    schema: SchemaRef,
    rows: usize,
    next: usize,
    total: usize,
}

impl FinishedGroups {
    /// Bytes held: the keys and the evaluated aggregates.
    pub fn size(&self) -> usize {
        self.keys.as_ref().map_or(0, GroupKeys::size)
            + self
                .values
                .iter()
                .map(|v| v.get_array_memory_size())
                .sum::<usize>()
    }

    fn batch(&self, start: usize, end: usize) -> Result<RecordBatch> {
        let mut columns = match &self.keys {
            Some(keys) => keys.columns_of(start..end)?,
            None => Vec::new(),
        };
        columns.extend(self.values.iter().map(|v| v.slice(start, end - start)));
        batch_of(&self.schema, columns, end - start)
    }
}

impl Iterator for FinishedGroups {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        // A grouping without groups still gives one (empty) batch, as `finish`.
        if self.next >= self.total && !(self.next == 0 && self.total == 0) {
            return None;
        }
        let start = self.next;
        let end = self.total.min(start.saturating_add(self.rows));
        self.next = end.max(1);
        Some(self.batch(start, end))
    }
}

#[cfg(test)]
mod tests;
