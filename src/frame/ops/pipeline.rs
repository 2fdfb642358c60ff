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

    /// The input column that reaches the output as column `name` untouched:
    /// renamed by projections at most, never read by a filter or by any
    /// computed expression on the way. `None` for a column computed or read
    /// otherwise. Such a column may be read in any Arrow encoding of its type
    /// (a dictionary): the steps only move it.
    pub fn passed_through(&self, name: &str) -> Option<String> {
        let mut current = name.to_string();
        for step in self.steps.iter().rev() {
            match step {
                Step::Filter(e) => {
                    let mut read = BTreeSet::new();
                    e.columns(&mut read);
                    if read.contains(&current) {
                        return None;
                    }
                }
                Step::Project(exprs) => {
                    let Some((Expr::Column(input), _)) = exprs.iter().find(|(_, n)| *n == current)
                    else {
                        return None;
                    };
                    let computed_from = exprs.iter().any(|(e, _)| {
                        let mut read = BTreeSet::new();
                        e.columns(&mut read);
                        !matches!(e, Expr::Column(_)) && read.contains(input)
                    });
                    if computed_from {
                        return None;
                    }
                    current = input.clone();
                }
            }
        }
        Some(current)
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
    pub fn apply(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
        self.apply_as(batch, schema, false)
    }

    /// As [`Pipeline::apply`]; with `dictionaries`, a column the batch holds
    /// as a dictionary of its planned type stays one, and the batch's schema
    /// says so (for a consumer that reads dictionaries: a grouping on their
    /// codes).
    ///
    /// # Errors
    /// As [`Pipeline::apply`].
    pub fn apply_as(
        &self,
        mut batch: RecordBatch,
        schema: &SchemaRef,
        dictionaries: bool,
    ) -> Result<RecordBatch> {
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
            let mut fields = Vec::new();
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| {
                    let kept = dictionaries
                        && matches!(c.data_type(), DataType::Dictionary(_, v) if **v == *f.data_type());
                    if kept {
                        fields.push(Arc::new(f.as_ref().clone().with_data_type(c.data_type().clone())));
                        Ok(c.clone())
                    } else if c.data_type() == f.data_type() {
                        fields.push(f.clone());
                        Ok(c.clone())
                    } else {
                        fields.push(f.clone());
                        Ok(arrow::compute::cast(c, f.data_type())?)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let schema = match fields.iter().zip(schema.fields()).all(|(a, b)| a == b) {
                true => schema.clone(),
                false => Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
            };
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            batch = RecordBatch::try_new_with_options(schema, columns, &options)?;
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, DictionaryArray, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::Int32Type;

    fn project(columns: Vec<(Expr, &str)>) -> Step {
        Step::Project(columns.into_iter().map(|(e, n)| (e, n.into())).collect())
    }

    /// Only a column that every step merely moves or renames passes through.
    #[test]
    fn a_column_passes_through_only_renamed() {
        let rename = project(vec![(Expr::col("a"), "k"), (Expr::col("v"), "v")]);
        let upper = project(vec![
            (Expr::col("a"), "k"),
            (Expr::call("upper", vec![Expr::col("a")]), "u"),
        ]);
        let computed = project(vec![(Expr::col("a").add(Expr::lit(1)), "k")]);
        let on_v = Step::Filter(Expr::col("v").gt(Expr::lit(1)));
        let on_a = Step::Filter(Expr::col("a").eq(Expr::lit("x")));
        let cases: Vec<(Vec<Step>, Option<&str>)> = vec![
            (vec![], Some("k")),
            (vec![rename.clone()], Some("a")),
            (vec![on_v.clone(), rename.clone()], Some("a")),
            (vec![rename.clone(), on_v], Some("a")),
            (vec![on_a, rename.clone()], None),
            (vec![upper], None),
            (vec![computed], None),
            (
                vec![rename, project(vec![(Expr::col("v"), "k")])],
                Some("v"),
            ),
        ];
        for (steps, want) in cases {
            let pipeline = Pipeline { steps };
            let got = pipeline.passed_through("k");
            assert_eq!(got.as_deref(), want, "{pipeline:?}");
        }
    }

    /// A dictionary of the planned type stays one only when asked.
    #[test]
    fn dictionaries_are_kept_only_when_asked() {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let keys = DictionaryArray::<Int32Type>::new(Int32Array::from(vec![1, 0, 1]), values);
        let input = Arc::new(Schema::new(vec![
            Field::new("k", keys.data_type().clone(), true),
            Field::new("v", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            input,
            vec![Arc::new(keys), Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let planned = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let pipeline = Pipeline {
            steps: vec![Step::Filter(Expr::col("v").gt(Expr::lit(1)))],
        };
        let decoded = pipeline.apply(batch.clone(), &planned).unwrap();
        assert_eq!(decoded.schema(), planned);
        let kept = pipeline.apply_as(batch, &planned, true).unwrap();
        assert!(matches!(
            kept.column(0).data_type(),
            DataType::Dictionary(_, _)
        ));
        assert_eq!(
            kept.schema().field(0).data_type(),
            kept.column(0).data_type()
        );
        let back = arrow::compute::cast(kept.column(0), &DataType::Utf8).unwrap();
        assert_eq!(back.as_ref(), decoded.column(0).as_ref());
    }
}
