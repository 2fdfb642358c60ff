//! Writing CSV: a header row, RFC 4180 quoting where needed, ISO-8601 dates and
//! timestamps, nulls as empty fields. A plan's table output formats each part's
//! text on the thread of the part's task ([`encode_part`]), where formatting numbers
//! and dates is most of the work, and copies the texts in order.

use arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int32Array, Int64Array, Int8Array, LargeStringArray,
    StringArray, StringViewArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};

/// Formats batches as CSV text without a header, as Arrow's CSV writer does (its
/// value formats, the `csv` crate's quoting: a field holding the delimiter, a quote
/// or a line break is quoted, quotes doubled; a record of one empty field is `""`),
/// writing integers and strings straight into the text: the generic writer formats
/// every value into a string, then copies it through a record buffer.
pub struct CsvEncoder {
    delimiter: u8,
    /// Bytes that make a field need quotes.
    special: [bool; 256],
}

/// One column's values, by how they are formatted.
enum Cells<'a> {
    I8(&'a Int8Array),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U8(&'a UInt8Array),
    U16(&'a UInt16Array),
    U32(&'a UInt32Array),
    U64(&'a UInt64Array),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    /// Everything else, through Arrow's formatter (floats, dates, decimals, ...).
    Other(ArrayFormatter<'a>),
}

impl<'a> Cells<'a> {
    fn of(column: &'a ArrayRef, options: &FormatOptions<'a>) -> Result<Self> {
        use arrow::datatypes::{
            Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
            UInt8Type,
        };
        Ok(match column.data_type() {
            DataType::Int8 => Cells::I8(column.as_primitive::<Int8Type>()),
            DataType::Int16 => Cells::I16(column.as_primitive::<Int16Type>()),
            DataType::Int32 => Cells::I32(column.as_primitive::<Int32Type>()),
            DataType::Int64 => Cells::I64(column.as_primitive::<Int64Type>()),
            DataType::UInt8 => Cells::U8(column.as_primitive::<UInt8Type>()),
            DataType::UInt16 => Cells::U16(column.as_primitive::<UInt16Type>()),
            DataType::UInt32 => Cells::U32(column.as_primitive::<UInt32Type>()),
            DataType::UInt64 => Cells::U64(column.as_primitive::<UInt64Type>()),
            DataType::Utf8 => Cells::Utf8(column.as_string::<i32>()),
            DataType::LargeUtf8 => Cells::LargeUtf8(column.as_string::<i64>()),
            DataType::Utf8View => Cells::Utf8View(column.as_string_view()),
            _ => Cells::Other(ArrayFormatter::try_new(column.as_ref(), options)?),
        })
    }
}

/// Appends `v` in decimal.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `v` in decimal, with a minus sign when negative.
fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

impl CsvEncoder {
    fn new(delimiter: u8) -> Self {
        let mut special = [false; 256];
        for b in [delimiter, b'"', b'\n', b'\r'] {
            special[usize::from(b)] = true;
        }
        CsvEncoder { delimiter, special }
    }

    /// Appends `field`, quoted if it needs to be.
    fn push_field(&self, out: &mut Vec<u8>, field: &[u8]) {
        if !field.iter().any(|&b| self.special[usize::from(b)]) {
            out.extend_from_slice(field);
            return;
        }
        out.push(b'"');
        for part in field.split_inclusive(|&b| b == b'"') {
            out.extend_from_slice(part);
            if part.last() == Some(&b'"') {
                out.push(b'"');
            }
        }
        out.push(b'"');
    }

    /// Appends the text of `batch`'s rows to `text`.
    fn encode_into(&self, batch: &RecordBatch, text: &mut Vec<u8>) -> Result<()> {
        text.reserve(batch.get_array_memory_size());
        let options = FormatOptions::default();
        let columns = batch
            .columns()
            .iter()
            .map(|c| Cells::of(c, &options))
            .collect::<Result<Vec<_>>>()?;
        let nulls: Vec<Option<arrow::buffer::NullBuffer>> =
            batch.columns().iter().map(|c| c.logical_nulls()).collect();
        let mut scratch = String::new();
        for row in 0..batch.num_rows() {
            let line_start = text.len();
            for (j, cells) in columns.iter().enumerate() {
                if j > 0 {
                    text.push(self.delimiter);
                }
                if nulls[j].as_ref().is_some_and(|n| n.is_null(row)) {
                    continue;
                }
                match cells {
                    Cells::I8(a) => push_i64(text, i64::from(a.value(row))),
                    Cells::I16(a) => push_i64(text, i64::from(a.value(row))),
                    Cells::I32(a) => push_i64(text, i64::from(a.value(row))),
                    Cells::I64(a) => push_i64(text, a.value(row)),
                    Cells::U8(a) => push_u64(text, u64::from(a.value(row))),
                    Cells::U16(a) => push_u64(text, u64::from(a.value(row))),
                    Cells::U32(a) => push_u64(text, u64::from(a.value(row))),
                    Cells::U64(a) => push_u64(text, a.value(row)),
                    Cells::Utf8(a) => self.push_field(text, a.value(row).as_bytes()),
                    Cells::LargeUtf8(a) => self.push_field(text, a.value(row).as_bytes()),
                    Cells::Utf8View(a) => self.push_field(text, a.value(row).as_bytes()),
                    Cells::Other(f) => {
                        scratch.clear();
                        f.value(row).write(&mut scratch).map_err(|e| {
                            Error::Arrow(arrow::error::ArrowError::CsvError(format!(
                                "row {}, column {}: {e}",
                                row + 1,
                                j + 1
                            )))
                        })?;
                        self.push_field(text, scratch.as_bytes());
                    }
                }
            }
            // A record of one empty field would read back as a blank line.
            if columns.len() == 1 && text.len() == line_start {
                text.extend_from_slice(b"\"\"");
            }
            text.push(b'\n');
        }
        Ok(())
    }
}

/// The header row of a CSV file of `schema`, line break included.
pub fn header_line(schema: &Schema, delimiter: u8) -> Vec<u8> {
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| quote(f.name(), delimiter))
        .collect();
    let mut line = header.join(&(delimiter as char).to_string()).into_bytes();
    line.push(b'\n');
    line
}

/// The CSV text (no header) of `batches`' rows, and how many rows they hold.
///
/// # Errors
/// The batches' errors; a value that cannot be formatted.
pub fn encode_part(
    delimiter: u8,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
) -> Result<(bytes::Bytes, u64)> {
    let encoder = CsvEncoder::new(delimiter);
    let mut text = Vec::new();
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        encoder.encode_into(&batch, &mut text)?;
    }
    Ok((bytes::Bytes::from(text), rows))
}

/// A header field, quoted when it holds the delimiter, a quote or a line break.
fn quote(name: &str, delimiter: u8) -> String {
    if name.contains([delimiter as char, '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, DictionaryArray, Float64Array, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Int32Type};
    use std::sync::Arc;

    /// What Arrow's own CSV writer makes of `batch`.
    fn arrow_text(batch: &RecordBatch, delimiter: u8) -> Vec<u8> {
        let mut text = Vec::new();
        arrow::csv::WriterBuilder::new()
            .with_header(false)
            .with_delimiter(delimiter)
            .build(&mut text)
            .write(batch)
            .unwrap();
        text
    }

    fn ours(batch: &RecordBatch, delimiter: u8) -> Vec<u8> {
        let mut text = Vec::new();
        CsvEncoder::new(delimiter)
            .encode_into(batch, &mut text)
            .unwrap();
        text
    }

    #[test]
    fn text_equals_arrows_csv_writer() {
        let words = [
            Some("plain"),
            Some("a,b"),
            Some("say \"hi\""),
            Some("two\nlines"),
            Some("cr\r"),
            Some(""),
            None,
            Some("tab\there"),
            Some("\""),
        ];
        let n = words.len();
        let dict: DictionaryArray<Int32Type> = words.iter().copied().collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter(
                [i64::MIN, -1, 0, 7, i64::MAX, 10, 100, -100, 1]
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i != 3).then_some(v)),
            )),
            Arc::new(UInt8Array::from_iter_values((0..n as u8).map(|i| i * 31))),
            Arc::new(Int8Array::from_iter_values((0..n as i8).map(|i| -i * 14))),
            Arc::new(StringArray::from(words.to_vec())),
            Arc::new(LargeStringArray::from(words.to_vec())),
            Arc::new(StringViewArray::from(words.to_vec())),
            Arc::new(Float64Array::from_iter(
                [
                    0.1,
                    -2.5,
                    1e300,
                    1e-7,
                    f64::NAN,
                    3.0,
                    f64::INFINITY,
                    -0.0,
                    123456.789,
                ]
                .into_iter()
                .map(Some),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| (i % 4 != 0).then_some(i % 2 == 0)),
            )),
            Arc::new(Date32Array::from_iter_values(
                (0..n as i32).map(|i| i * 4000 - 9000),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..n as i64).map(|i| i * 123_456_789_012 - 5),
            )),
            Arc::new(dict),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        for delimiter in [b',', b';', b'\t', b'|'] {
            assert_eq!(
                String::from_utf8(ours(&batch, delimiter)).unwrap(),
                String::from_utf8(arrow_text(&batch, delimiter)).unwrap(),
                "delimiter {:?}",
                delimiter as char
            );
        }
        // One column: an empty value or a null must not make a blank line.
        for c in [3, 0] {
            let one = batch.project(&[c]).unwrap();
            assert_eq!(ours(&one, b','), arrow_text(&one, b','), "column {c}");
        }
    }
}
