//! A decoder for the plainest CSV text: no quote anywhere, every row complete,
//! every field of a type parsed as Arrow's decoder parses it.
//!
//! Arrow's decoder runs every byte through `csv_core`'s state machine, a third
//! of the time of a grouping over a CSV file. Text without quotes needs none of
//! it: the field and row ends are the delimiters and line feeds, which `memchr`
//! finds many bytes at a time. This decoder handles only that text, and gives up
//! (`None`) on anything else, so the reader hands the same bytes to Arrow's
//! decoder and its error paths: a quote, a row with more or fewer fields, a
//! blank line, a carriage return not before a line feed, invalid UTF-8, a value
//! that does not parse. What it decodes, it decodes as Arrow's decoder would:
//! an empty field is NULL and a value is parsed by the same `Parser`.

use std::sync::Arc;

use arrow::array::{ArrayRef, PrimitiveBuilder, RecordBatch, StringBuilder};
use arrow::compute::kernels::cast_utils::Parser;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, SchemaRef, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use super::scan::Hits;

/// A column being built.
enum Column {
    Utf8(StringBuilder),
    Int8(PrimitiveBuilder<Int8Type>),
    Int16(PrimitiveBuilder<Int16Type>),
    Int32(PrimitiveBuilder<Int32Type>),
    Int64(PrimitiveBuilder<Int64Type>),
    UInt8(PrimitiveBuilder<UInt8Type>),
    UInt16(PrimitiveBuilder<UInt16Type>),
    UInt32(PrimitiveBuilder<UInt32Type>),
    UInt64(PrimitiveBuilder<UInt64Type>),
    Float32(PrimitiveBuilder<Float32Type>),
    Float64(PrimitiveBuilder<Float64Type>),
}

/// Appends `s` parsed as `T` (NULL when empty); `None` when it does not parse.
fn push<T: ArrowPrimitiveType + Parser>(b: &mut PrimitiveBuilder<T>, s: &str) -> Option<()> {
    if s.is_empty() {
        b.append_null();
    } else {
        b.append_value(T::parse(s)?);
    }
    Some(())
}

impl Column {
    /// An empty column of type `t` for `rows` rows of about `bytes` bytes;
    /// `None` for a type this decoder leaves to Arrow's.
    fn new(t: &DataType, rows: usize, bytes: usize) -> Option<Column> {
        Some(match t {
            DataType::Utf8 => Column::Utf8(StringBuilder::with_capacity(rows, bytes)),
            DataType::Int8 => Column::Int8(PrimitiveBuilder::with_capacity(rows)),
            DataType::Int16 => Column::Int16(PrimitiveBuilder::with_capacity(rows)),
            DataType::Int32 => Column::Int32(PrimitiveBuilder::with_capacity(rows)),
            DataType::Int64 => Column::Int64(PrimitiveBuilder::with_capacity(rows)),
            DataType::UInt8 => Column::UInt8(PrimitiveBuilder::with_capacity(rows)),
            DataType::UInt16 => Column::UInt16(PrimitiveBuilder::with_capacity(rows)),
            DataType::UInt32 => Column::UInt32(PrimitiveBuilder::with_capacity(rows)),
            DataType::UInt64 => Column::UInt64(PrimitiveBuilder::with_capacity(rows)),
            DataType::Float32 => Column::Float32(PrimitiveBuilder::with_capacity(rows)),
            DataType::Float64 => Column::Float64(PrimitiveBuilder::with_capacity(rows)),
            _ => return None,
        })
    }

    fn push(&mut self, s: &str) -> Option<()> {
        match self {
            Column::Utf8(b) if s.is_empty() => b.append_null(),
            Column::Utf8(b) => b.append_value(s),
            Column::Int8(b) => push(b, s)?,
            Column::Int16(b) => push(b, s)?,
            Column::Int32(b) => push(b, s)?,
            Column::Int64(b) => push(b, s)?,
            Column::UInt8(b) => push(b, s)?,
            Column::UInt16(b) => push(b, s)?,
            Column::UInt32(b) => push(b, s)?,
            Column::UInt64(b) => push(b, s)?,
            Column::Float32(b) => push(b, s)?,
            Column::Float64(b) => push(b, s)?,
        }
        Some(())
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::Utf8(mut b) => Arc::new(b.finish()),
            Column::Int8(mut b) => Arc::new(b.finish()),
            Column::Int16(mut b) => Arc::new(b.finish()),
            Column::Int32(mut b) => Arc::new(b.finish()),
            Column::Int64(mut b) => Arc::new(b.finish()),
            Column::UInt8(mut b) => Arc::new(b.finish()),
            Column::UInt16(mut b) => Arc::new(b.finish()),
            Column::UInt32(mut b) => Arc::new(b.finish()),
            Column::UInt64(mut b) => Arc::new(b.finish()),
            Column::Float32(mut b) => Arc::new(b.finish()),
            Column::Float64(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Decodes quote-free CSV rows into the projected columns of a schema.
pub(super) struct PlainDecoder {
    delimiter: u8,
    quote: u8,
    /// Fields every row has.
    fields: usize,
    /// For each field of a row, the output column it goes to, if read.
    column_of: Vec<Option<usize>>,
    /// The projected schema the batches have.
    schema: SchemaRef,
}

impl PlainDecoder {
    /// A decoder of rows of `schema` (every field of a row), yielding the
    /// columns `projection` names; `None` when a projected column has a type it
    /// does not parse, or the delimiter is not a plain ASCII byte.
    pub(super) fn new(
        schema: &SchemaRef,
        projection: &[usize],
        delimiter: u8,
        quote: u8,
    ) -> Option<PlainDecoder> {
        if !delimiter.is_ascii() || matches!(delimiter, b'\n' | b'\r') || delimiter == quote {
            return None;
        }
        for &i in projection {
            Column::new(schema.fields().get(i)?.data_type(), 0, 0)?;
        }
        let mut column_of = vec![None; schema.fields().len()];
        for (c, &i) in projection.iter().enumerate() {
            // A column projected twice is left to Arrow's decoder.
            if column_of[i].replace(c).is_some() {
                return None;
            }
        }
        Some(PlainDecoder {
            delimiter,
            quote,
            fields: schema.fields().len(),
            column_of,
            schema: Arc::new(schema.project(projection).ok()?),
        })
    }

    /// Decodes `bytes`: `rows` rows, each ending with a line feed (or a
    /// carriage return and a line feed), but for the last when `last`. `None`
    /// for anything but plain rows (see the module).
    pub(super) fn decode(&self, bytes: &[u8], rows: usize, last: bool) -> Option<RecordBatch> {
        if memchr::memchr(self.quote, bytes).is_some() {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let mut columns: Vec<Column> = self
            .schema
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), rows, bytes.len() / self.fields.max(1)))
            .collect::<Option<_>>()?;
        let (mut field, mut start, mut line_start, mut lines, mut returns) = (0, 0, 0, 0, 0);
        let column_of = &self.column_of[..];
        for p in Hits::new(bytes, 0, [self.delimiter, b'\n', b'\n']) {
            let mut end = p;
            let row_ends = bytes[p] == b'\n';
            if row_ends {
                if end > line_start && bytes[end - 1] == b'\r' {
                    end -= 1;
                    returns += 1;
                }
                // A blank line (which Arrow's decoder skips) or a row of other
                // width.
                if end == line_start || field + 1 != self.fields {
                    return None;
                }
            }
            // Most fields are not read: only their count matters.
            if let Some(&Some(c)) = column_of.get(field) {
                columns[c].push(text.get(start..end)?)?;
            } else if field >= self.fields {
                return None;
            }
            start = p + 1;
            field += 1;
            if row_ends {
                (field, line_start) = (0, p + 1);
                lines += 1;
            }
        }
        if line_start < bytes.len() {
            // A last row without a line break.
            let mut end = bytes.len();
            if bytes[end - 1] == b'\r' {
                end -= 1;
                returns += 1;
            }
            if !last || end == line_start || field + 1 != self.fields {
                return None;
            }
            if let Some(&Some(c)) = column_of.get(field) {
                columns[c].push(text.get(start..end)?)?;
            }
            lines += 1;
        }
        // A carriage return anywhere but before a line feed ends a row for
        // Arrow's decoder: not plain.
        if lines != rows || memchr::memchr_iter(b'\r', bytes).count() != returns {
            return None;
        }
        let arrays: Vec<ArrayRef> = columns.into_iter().map(Column::finish).collect();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(lines));
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::csv::ReaderBuilder;
    use arrow::datatypes::{Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("u", DataType::UInt8, true),
        ]))
    }

    /// What Arrow's decoder makes of `text`, projected.
    fn arrow_decodes(text: &str, projection: &[usize]) -> Option<RecordBatch> {
        let mut decoder = ReaderBuilder::new(schema())
            .with_header(false)
            .with_projection(projection.to_vec())
            .with_batch_size(1 << 16)
            .build_decoder();
        decoder.decode(text.as_bytes()).ok()?;
        decoder.decode(&[]).ok()?;
        decoder.flush().ok()?
    }

    fn rows(text: &str) -> usize {
        text.lines().count()
    }

    #[test]
    fn plain_rows_decode_as_arrow_decodes_them() {
        let texts = [
            "a,1,1.5,7\nb,-2,2e3,0\n",
            "a,1,1.5,7\r\n,,,\r\nccc,9223372036854775807,-0.0,255\r\n",
            "x,0,inf,1\ny,3,NaN,2",
            "é,5,1,3\n",
            // Spaces, as Arrow's parsers take them.
            "a, 1,1,1\n b ,2, 3.5 ,4\n",
        ];
        for text in texts {
            for projection in [vec![0, 1, 2, 3], vec![2, 0], vec![1], vec![]] {
                let d = PlainDecoder::new(&schema(), &projection, b',', b'"').unwrap();
                let got = d
                    .decode(text.as_bytes(), rows(text), true)
                    .unwrap_or_else(|| panic!("{text:?} {projection:?}"));
                let want = arrow_decodes(text, &projection).unwrap();
                assert_eq!(got.num_rows(), want.num_rows(), "{text:?}");
                assert_eq!(got.columns(), want.columns(), "{text:?} {projection:?}");
            }
        }
    }

    #[test]
    fn anything_but_plain_rows_is_left_to_arrow() {
        let d = PlainDecoder::new(&schema(), &[0, 1, 2, 3], b',', b'"').unwrap();
        let refused = [
            "\"a\",1,1,1\n",        // a quote
            "a,1,1\n",              // a field short
            "a,1,1,1,1\n",          // a field over
            "a,1,1,1\n\nb,1,1,1\n", // a blank line
            "a,1,1,1\rb,1,1,1\n",   // a lone carriage return
            "a,x,1,1\n",            // an integer that is not one
            "a,1,1,256\n",          // out of the type's range
        ];
        for text in refused {
            assert!(
                d.decode(text.as_bytes(), rows(text), true).is_none(),
                "{text:?}"
            );
        }
        // Invalid UTF-8; a last row without its line break when more should come.
        assert!(d.decode(b"\xff,1,1,1\n", 1, true).is_none());
        assert!(d.decode(b"a,1,1,1\nb,1,1,1", 2, false).is_none());
        // Rows counted wrong by the caller.
        assert!(d.decode(b"a,1,1,1\n", 2, true).is_none());
    }

    #[test]
    fn types_or_delimiters_it_does_not_parse_leave_the_file_to_arrow() {
        let with_date = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        assert!(PlainDecoder::new(&with_date, &[0], b',', b'"').is_none());
        assert!(PlainDecoder::new(&schema(), &[0], b'\n', b'"').is_none());
        assert!(PlainDecoder::new(&schema(), &[0], b'"', b'"').is_none());
        assert!(PlainDecoder::new(&schema(), &[0, 0], b',', b'"').is_none());
        assert!(PlainDecoder::new(&schema(), &[0], b';', b'"').is_some());
    }
}
