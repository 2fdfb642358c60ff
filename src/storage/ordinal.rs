//! Row ordinals: a column that numbers a table's rows in the file's order, for
//! what depends on that order (`first`, `last`, `drop_duplicates(keep=...)`, a
//! seeded `sample`).
//!
//! A partition's rows are read in order, so an ordinal is the partition's place
//! in the file and the row's place in the partition:
//! `partition << ROW_BITS | row`. Ordinals are unique and increase through the
//! file. They are not dense: they skip at each partition's start, and a Parquet
//! partition (a row group) keeps its place in the file when the row groups
//! before it are pruned. They depend only on the file and on how it is cut
//! (Parquet's row groups; a CSV file's byte ranges, cut by `blocksize`): never
//! on threads, memory or the order tasks run in.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::frame::{BatchIter, ColumnStats, FrameReadOptions, FrameSource, PageStats};
use crate::error::{Error, Result};

/// The name a plan gives the column of ordinals it reads.
pub const ORDINAL_COLUMN: &str = "__blockwise_row";

/// Bits of an ordinal that number the rows of a partition (a trillion rows).
pub const ROW_BITS: u32 = 40;

/// The ordinal of row `row` of the partition at `place` in the file.
fn ordinal(place: usize, row: u64) -> Result<i64> {
    let place = u64::try_from(place).unwrap_or(u64::MAX);
    if place >= 1 << (63 - ROW_BITS) || row >= 1 << ROW_BITS {
        return Err(Error::InvalidOption {
            option: "row_ordinal",
            value: format!("row {row} of partition {place}"),
            reason: format!(
                "rows are numbered in the file's order in at most {} partitions of {} rows each",
                1u64 << (63 - ROW_BITS),
                1u64 << ROW_BITS
            ),
        });
    }
    Ok(((place << ROW_BITS) | row) as i64)
}

/// A source with the column of its rows' ordinals (`Int64`, never NULL) where its
/// projection puts it.
pub struct WithOrdinals {
    inner: Box<dyn FrameSource>,
    schema: SchemaRef,
    /// Where the ordinals go among the columns.
    position: usize,
    /// The place in the file of each partition read (all, in order, when `None`).
    places: Option<Vec<usize>>,
    /// Parquet: the row ranges read of each partition (all rows when `None`):
    /// a row keeps its place in its row group when the pages before it are
    /// skipped.
    ranges: Option<Vec<Vec<(u64, u64)>>>,
}

/// `options` without the ordinal column: what the format's reader is asked for,
/// and where the ordinals go among its columns (`None`: not asked for).
///
/// # Errors
/// [`Error::InvalidOption`] when the name is asked for twice.
pub fn split_ordinal(options: &FrameReadOptions) -> Result<(FrameReadOptions, Option<usize>)> {
    let Some(name) = &options.row_ordinal else {
        return Ok((options.clone(), None));
    };
    let mut inner = options.clone();
    inner.row_ordinal = None;
    let Some(columns) = &options.columns else {
        return Ok((inner, Some(usize::MAX)));
    };
    let at: Vec<usize> = (0..columns.len())
        .filter(|&i| &columns[i] == name)
        .collect();
    match at[..] {
        [] => Ok((inner, None)),
        [position] => {
            inner.columns = Some(columns.iter().filter(|c| *c != name).cloned().collect());
            Ok((inner, Some(position)))
        }
        _ => Err(Error::InvalidOption {
            option: "columns",
            value: name.clone(),
            reason: "names the row ordinals more than once".into(),
        }),
    }
}

impl WithOrdinals {
    /// `inner` (opened with `options` as [`split_ordinal`] left them) with the
    /// column `name` of ordinals at `position` (past the end: last).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when the table has a column of that name.
    pub fn new(
        inner: Box<dyn FrameSource>,
        name: &str,
        position: usize,
        options: &FrameReadOptions,
    ) -> Result<WithOrdinals> {
        let base = inner.schema();
        if base.index_of(name).is_ok() {
            return Err(Error::InvalidOption {
                option: "row_ordinal",
                value: name.to_string(),
                reason: "the table has a column of this name".into(),
            });
        }
        let position = position.min(base.fields().len());
        let mut fields: Vec<Arc<Field>> = base.fields().iter().cloned().collect();
        fields.insert(position, Arc::new(Field::new(name, DataType::Int64, false)));
        let schema = Arc::new(Schema::new_with_metadata(fields, base.metadata().clone()));
        Ok(WithOrdinals {
            inner,
            schema,
            position,
            places: options.row_groups.clone(),
            ranges: options.row_ranges.clone(),
        })
    }

    fn place(&self, partition: usize) -> usize {
        self.places
            .as_ref()
            .and_then(|p| p.get(partition).copied())
            .unwrap_or(partition)
    }

    /// `batches` with the ordinals of partition `partition` put in.
    fn numbered<'a>(&'a self, partition: usize, batches: BatchIter<'a>) -> BatchIter<'a> {
        let place = self.place(partition);
        let whole = [(0, u64::MAX)];
        let ranges: Vec<(u64, u64)> = match &self.ranges {
            Some(r) => r.get(partition).map_or(&whole[..], |r| &r[..]).to_vec(),
            None => whole.to_vec(),
        };
        // The range being read, and the rows of it already numbered.
        let (mut range, mut done) = (0usize, 0u64);
        Box::new(batches.map(move |batch| {
            let batch = batch?;
            let mut values = Vec::with_capacity(batch.num_rows());
            while values.len() < batch.num_rows() {
                let Some(&(start, end)) = ranges.get(range) else {
                    return Err(Error::Bug {
                        what: "row ordinals",
                        detail: format!(
                            "partition {partition} yields more rows than its row ranges hold"
                        ),
                    });
                };
                let take = (end - start - done).min((batch.num_rows() - values.len()) as u64);
                let first = ordinal(place, start + done)?;
                ordinal(place, start + done + take - 1)?;
                values.extend((0..take as i64).map(|r| first + r));
                done += take;
                if start + done == end {
                    (range, done) = (range + 1, 0);
                }
            }
            let values: ArrayRef = Arc::new(Int64Array::from(values));
            let mut columns = batch.columns().to_vec();
            columns.insert(self.position, values);
            let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
            fields.insert(self.position, self.schema.fields()[self.position].clone());
            let schema = Arc::new(Schema::new_with_metadata(
                fields,
                batch.schema().metadata().clone(),
            ));
            Ok(RecordBatch::try_new_with_options(
                schema,
                columns,
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )?)
        }))
    }

    /// The inner source's index of column `i` of this one, `None` for the
    /// ordinals.
    fn inner_index(&self, i: usize) -> Option<usize> {
        match i.cmp(&self.position) {
            std::cmp::Ordering::Less => Some(i),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(i - 1),
        }
    }

    fn is_ordinal(&self, column: &str) -> bool {
        self.schema.field(self.position).name() == column
    }
}

impl FrameSource for WithOrdinals {
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn num_partitions(&self) -> usize {
        self.inner.num_partitions()
    }

    fn num_rows(&self) -> Option<u64> {
        self.inner.num_rows()
    }

    fn partition_bytes(&self, partition: usize) -> u64 {
        self.inner.partition_bytes(partition)
    }

    fn partition_memory_bytes(&self, partition: usize) -> u64 {
        self.inner.partition_memory_bytes(partition)
    }

    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>> {
        Ok(self.numbered(partition, self.inner.read_partition(partition)?))
    }

    fn reader_bytes(&self) -> u64 {
        self.inner.reader_bytes()
    }

    fn read_partition_as(&self, partition: usize, dictionaries: &[usize]) -> Result<BatchIter<'_>> {
        let dictionaries: Vec<usize> = dictionaries
            .iter()
            .filter_map(|&i| self.inner_index(i))
            .collect();
        Ok(self.numbered(
            partition,
            self.inner.read_partition_as(partition, &dictionaries)?,
        ))
    }

    fn details(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.inner.details()
    }

    fn column_stats(&self, column: &str) -> Option<ColumnStats> {
        if self.is_ordinal(column) {
            return None;
        }
        self.inner.column_stats(column)
    }

    fn page_stats(&self, column: &str, partition: usize) -> Option<PageStats> {
        if self.is_ordinal(column) {
            return None;
        }
        self.inner.page_stats(column, partition)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::ROW_BITS;
    use crate::storage::frame::FrameReadOptions;
    use crate::storage::{open_frame, open_frame_described, open_frame_meta, Format};

    /// `(ordinal, x)` of every row `source` yields, partition after partition.
    fn numbered(source: &dyn crate::storage::frame::FrameSource) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for p in 0..source.num_partitions() {
            for b in source.read_partition(p).unwrap() {
                let b = b.unwrap();
                let (o, x) = (
                    b.column_by_name("o").unwrap(),
                    b.column_by_name("x").unwrap(),
                );
                let o = o.as_primitive::<Int64Type>();
                let x = x.as_primitive::<Int64Type>();
                out.extend(o.values().iter().copied().zip(x.values().iter().copied()));
            }
        }
        out
    }

    #[test]
    fn a_row_keeps_its_place_in_the_file_when_row_groups_and_pages_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(10))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema.clone(),
            Some(props),
        )
        .unwrap();
        let x = Int64Array::from_iter_values(0..30);
        w.write(&RecordBatch::try_new(schema, vec![Arc::new(x)]).unwrap())
            .unwrap();
        w.close().unwrap();
        let options = FrameReadOptions {
            columns: Some(vec!["o".into(), "x".into()]),
            row_groups: Some(vec![2, 0]),
            row_ranges: Some(vec![vec![(2, 5), (7, 10)], vec![(0, 3)]]),
            row_ordinal: Some("o".into()),
            batch_rows: 2,
            ..FrameReadOptions::default()
        };
        let source = open_frame(&path, Format::Parquet, &options).unwrap();
        assert_eq!(source.schema().field(0).name(), "o", "where columns put it");
        let rows = numbered(source.as_ref());
        let xs: Vec<i64> = rows.iter().map(|r| r.1).collect();
        assert_eq!(xs, [22, 23, 24, 27, 28, 29, 0, 1, 2]);
        for (o, x) in rows {
            assert_eq!((o >> ROW_BITS, o & ((1 << ROW_BITS) - 1)), (x / 10, x % 10));
        }
        // Left out of the columns, it is not read.
        let plain = FrameReadOptions {
            columns: Some(vec!["x".into()]),
            ..options.clone()
        };
        let source = open_frame(&path, Format::Parquet, &plain).unwrap();
        assert_eq!(source.schema().fields().len(), 1);
    }

    #[test]
    fn csv_rows_are_numbered_in_order_across_byte_ranges_and_plans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let text: String = std::iter::once("x,s\n".to_string())
            .chain((0..5000).map(|i| format!("{i},\"a,{i}\"\n")))
            .collect();
        std::fs::write(&path, text).unwrap();
        let options = FrameReadOptions {
            row_ordinal: Some("o".into()),
            blocksize: 4096,
            batch_rows: 100,
            ..FrameReadOptions::default()
        };
        let (source, meta) = open_frame_described(&path, Format::Csv, &options).unwrap();
        assert!(source.num_partitions() > 5);
        assert_eq!(source.schema().field(2).name(), "o", "last without columns");
        let rows = numbered(source.as_ref());
        let xs: Vec<i64> = rows.iter().map(|r| r.1).collect();
        assert_eq!(xs, (0..5000).collect::<Vec<_>>());
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "not increasing");
        // A worker opening it from the plan's description numbers it the same.
        let again = open_frame_meta(&path, Format::Csv, &meta).unwrap();
        assert_eq!(numbered(again.as_ref()), rows);
        // A column of the file's own with the name is refused.
        let clash = FrameReadOptions {
            row_ordinal: Some("x".into()),
            ..options
        };
        assert!(open_frame(&path, Format::Csv, &clash).is_err());
    }
}
