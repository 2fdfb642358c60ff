//! Streaming steps over record batches: filters and projections, applied batch by
//! batch wherever rows are read (a source partition, a stage's part), so that a
//! query's row-wise work fuses into the task that reads the rows.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, RecordBatchOptions};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::expr::{Expr, Subquery, SubqueryKind};

/// One streaming step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Keeps the rows where the expression is true (NULL is not true).
    Filter(Expr),
    /// Replaces the columns by these, computed, with their names.
    Project(Vec<(Expr, String)>),
}

/// Steps applied in order to every batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The steps.
    pub steps: Vec<Step>,
}

impl Pipeline {
    /// Whether it leaves every batch as it is.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The schema of what it yields for batches of `input`.
    ///
    /// # Errors
    /// Expressions that do not type against their input.
    pub fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut schema = input.clone();
        for step in &self.steps {
            if let Step::Project(exprs) = step {
                let fields = exprs
                    .iter()
                    .map(|(e, name)| Ok(Field::new(name, e.data_type(&schema)?, true)))
                    .collect::<Result<Vec<_>>>()?;
                schema = Arc::new(Schema::new(fields));
            }
        }
        Ok(schema)
    }

    /// The input columns the steps read: `None` when every column passes through
    /// (no projection).
    pub fn columns(&self) -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for step in &self.steps {
            match step {
                Step::Filter(e) => e.columns(&mut out),
                Step::Project(exprs) => {
                    for (e, _) in exprs {
                        e.columns(&mut out);
                    }
                    return Some(out);
                }
            }
        }
        None
    }

    /// The subqueries the steps read, each once (by its entry, or its number
    /// while not lowered), in order, with how they are used.
    pub fn subqueries(&self) -> Vec<(SubqueryKind, &Subquery)> {
        let mut all = Vec::new();
        for step in &self.steps {
            match step {
                Step::Filter(e) => e.subqueries(&mut all),
                Step::Project(exprs) => exprs.iter().for_each(|(e, _)| e.subqueries(&mut all)),
            }
        }
        let mut out: Vec<(SubqueryKind, &Subquery)> = Vec::new();
        for (kind, s) in all {
            if !out.iter().any(|(_, o)| o.id == s.id && o.entry == s.entry) {
                out.push((kind, s));
            }
        }
        out
    }

    /// The pipeline with every subquery replaced by what `f` makes of it (an
    /// entry written in, a value bound).
    ///
    /// # Errors
    /// `f`'s.
    pub fn map_subqueries(
        &self,
        f: &mut dyn FnMut(&Subquery) -> Result<Subquery>,
    ) -> Result<Pipeline> {
        let steps = self
            .steps
            .iter()
            .map(|step| {
                Ok(match step {
                    Step::Filter(e) => Step::Filter(e.map_subqueries(f)?),
                    Step::Project(exprs) => Step::Project(
                        exprs
                            .iter()
                            .map(|(e, n)| Ok((e.map_subqueries(f)?, n.clone())))
                            .collect::<Result<_>>()?,
                    ),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Pipeline { steps })
    }

    /// The steps applied to `batch`, whose output has `schema` (from
    /// [`Pipeline::schema`]).
    ///
    /// # Errors
    /// What evaluating an expression fails with (an overflow, a bad cast).
    pub fn apply(&self, mut batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
        for step in &self.steps {
            batch = match step {
                Step::Filter(e) => {
                    let keep = e.evaluate(&batch)?;
                    let keep = match keep.data_type() {
                        DataType::Boolean => keep,
                        // A NULL literal condition keeps nothing.
                        DataType::Null => arrow::compute::cast(&keep, &DataType::Boolean)?,
                        other => {
                            return Err(Error::FrameType {
                                op: "filter".into(),
                                reason: format!(
                                    "the condition {e} is {}, not boolean",
                                    crate::storage::type_name(other)
                                ),
                            })
                        }
                    };
                    filter_record_batch(&batch, keep.as_boolean())?
                }
                Step::Project(exprs) => {
                    let columns = exprs
                        .iter()
                        .map(|(e, _)| e.evaluate(&batch))
                        .collect::<Result<Vec<_>>>()?;
                    let fields: Vec<Field> = exprs
                        .iter()
                        .zip(&columns)
                        .map(|((_, name), c)| Field::new(name, c.data_type().clone(), true))
                        .collect();
                    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                    RecordBatch::try_new_with_options(
                        Arc::new(Schema::new(fields)),
                        columns,
                        &options,
                    )?
                }
            };
        }
        // The planned schema (its names and nullability) for every batch, so that
        // batches of different parts concatenate.
        if batch.schema().fields() != schema.fields() {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| {
                    if c.data_type() == f.data_type() {
                        Ok(c.clone())
                    } else {
                        Ok(arrow::compute::cast(c, f.data_type())?)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
        }
        Ok(batch)
    }
}
