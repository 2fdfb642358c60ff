//! Table to table as a plan: one task a source partition publishes its record
//! batches (a CSV byte range, a Parquet row group, an IPC batch), and the output's
//! tasks encode them in parallel and assemble the output (see
//! [`crate::frame::write`]).

use arrow::datatypes::{DataType, Schema};

use super::job::{op_spec, Conversion};
use super::sinks;
use crate::error::{Error, Result};
use crate::frame::read::ReadTablePartition;
use crate::frame::write::{add_table_output, read_window};
use crate::plan::{DataRef, Dataset, DatasetRole, Plan, Task, TaskId, TaskKind};
use crate::storage::{open_frame_described, type_name, Format};

/// The intermediate dataset of decoded partitions.
const PARTS: &str = "parts";

/// The route's plan: read every partition of the source, write them in order.
///
/// # Errors
/// What opening the source fails with; a column or an option the output format
/// does not take.
pub(super) fn plan(c: &Conversion<'_>) -> Result<Option<Plan>> {
    let (source, meta) = open_frame_described(c.src, c.from, &c.options.read)?;
    let output = sinks::table_output(c.to, &c.staged, &source.schema(), c.options)?;
    let meta =
        serde_json::to_value(&meta).map_err(|e| Error::bug("source description to JSON", e))?;
    let mut plan = Plan::new();
    plan.datasets.push(c.src_dataset(meta));
    plan.datasets
        .push(Dataset::new(PARTS, "", "memory", DatasetRole::Intermediate));
    let parts: Vec<(DataRef, TaskId)> = (0..source.num_partitions())
        .map(|i| {
            let unit = source.partition_memory_bytes(i);
            let part = DataRef::partition(PARTS, i as u64);
            let id = plan.push(Task {
                inputs: vec![DataRef::partition("src", i as u64)],
                // A decoded partition is about as large as its input.
                memory_bytes: unit,
                unit_bytes: unit,
                ..Task::new(
                    op_spec(&ReadTablePartition {}),
                    part.clone(),
                    TaskKind::Load,
                )
            });
            (part, id)
        })
        .collect();
    add_table_output(&mut plan, &output, &parts, read_window(c.sizing.threads))?;
    c.finish(&mut plan);
    Ok(Some(plan))
}

/// Refuses, before anything is written, a column that a `to` table cannot hold: a
/// nested column (list, struct, map, union) in CSV, a union in Parquet.
///
/// # Errors
/// [`Error::UnsupportedColumn`] naming the first such column and its type.
pub(super) fn check_output_holds(to: Format, schema: &Schema) -> Result<()> {
    let (format, fits): (&'static str, fn(&DataType) -> bool) = match to {
        Format::Csv => ("CSV", |t| !t.is_nested()),
        Format::Parquet | Format::ParquetDir => ("Parquet", |t| !has_union(t)),
        _ => return Ok(()),
    };
    match schema.fields().iter().find(|f| !fits(f.data_type())) {
        None => Ok(()),
        Some(field) => Err(Error::UnsupportedColumn {
            column: field.name().clone(),
            dtype: type_name(field.data_type()),
            format,
            hint: "; convert to ipc (Arrow), which holds every column type, or leave the \
                   column out with --columns"
                .into(),
        }),
    }
}

/// Whether a union appears anywhere in `t`.
fn has_union(t: &DataType) -> bool {
    match t {
        DataType::Union(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => has_union(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_union(f.data_type())),
        DataType::Dictionary(_, v) => has_union(v),
        DataType::RunEndEncoded(_, v) => has_union(v.data_type()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn nested_columns_do_not_fit_csv() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("tags", list, true),
        ]);
        let e = check_output_holds(Format::Csv, &schema).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("tags") && text.contains("list<int64>"),
            "{text}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(check_output_holds(Format::Parquet, &schema).is_ok());
        assert!(check_output_holds(Format::Ipc, &schema).is_ok());
    }
}
