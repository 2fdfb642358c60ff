//! Table to table: partitions are decoded (and encoded, for formats whose sink can)
//! in parallel and written in order, as a plan of per-partition tasks.

use std::path::Path;

use arrow::datatypes::{DataType, Schema};

use super::{sinks, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::JobContext;
use crate::storage::{open_frame, type_name, Format};

/// Converts the table at `src` into a new `to` file at `dst`; returns the row count.
pub(super) fn run(
    src: &Path,
    from: Format,
    dst: &Path,
    to: Format,
    options: &ConvertOptions,
    ctx: &JobContext,
) -> Result<u64> {
    let source = open_frame(src, from, &options.read)?;
    let mut sink = sinks::frame_sink(to, dst, source.schema(), options, ctx, ctx.threads + 1)?;
    let route = super::Route::new(src, from, dst, to);
    let rows = match sink.partition_encoder() {
        Some(encoder) => {
            super::stream_encoded(source.as_ref(), encoder.as_ref(), &route, ctx, |piece| {
                sink.write_encoded(piece)
            })?
        }
        None => {
            let mut rows = 0u64;
            super::stream_frame(source.as_ref(), &route, ctx, |batch| {
                rows += batch.num_rows() as u64;
                sink.write(&batch)
            })?;
            rows
        }
    };
    sink.finish()?;
    Ok(rows)
}

/// Refuses, before anything is written, a column that a `to` table cannot hold: a
/// nested column (list, struct, map, union) in CSV, a union in Parquet.
///
/// # Errors
/// [`Error::UnsupportedColumn`] naming the first such column and its type.
pub(super) fn check_output_holds(to: Format, schema: &Schema) -> Result<()> {
    let (format, fits): (&'static str, fn(&DataType) -> bool) = match to {
        Format::Csv => ("CSV", |t| !t.is_nested()),
        Format::Parquet => ("Parquet", |t| !has_union(t)),
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

/// The route as a plan (see [`super::job`]); `None` while it still runs by closures.
///
/// # Errors
/// What opening the source and checking the options fail with.
pub(super) fn plan(_c: &super::job::Conversion<'_>) -> Result<Option<crate::plan::Plan>> {
    Ok(None)
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
