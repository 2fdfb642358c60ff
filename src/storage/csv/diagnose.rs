//! Turning a CSV decode failure into an error that names the file, the line, the
//! column and the value.
//!
//! The fast path (Arrow's decoder) only knows row numbers within its byte range. When
//! it fails, this module re-reads that range record by record with the `csv` crate,
//! which tracks physical line numbers, and checks each field against its column type
//! the way the decoder does. Failures are rare, so the slow pass costs nothing on
//! the happy path.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use arrow::array::{Array, StringArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::DataType;

use super::CsvSource;
use crate::error::Error;

/// The precise error for a decode failure in `range`, or a [`Error::Corrupt`]
/// carrying the decoder's message when no record is at fault.
pub(super) fn locate(source: &CsvSource, range: (u64, u64), decoder_message: &str) -> Error {
    match find_first_bad_record(source, range) {
        Ok(Some(e)) => e,
        Ok(None) => Error::corrupt(&source.path, "csv", decoder_message),
        Err(e) => e,
    }
}

fn find_first_bad_record(source: &CsvSource, range: (u64, u64)) -> Result<Option<Error>, Error> {
    let path = &source.path;
    let io = |e| Error::io(path, e);
    let first_line = 1 + count_newlines(path, range.0)?;
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(range.0)).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(source.options.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(file.take(range.1 - range.0)));
    let fields = source.full_schema.fields();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = first_line + reader.position().line() - 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => return Err(super::split::csv_error(path, e)),
        }
        // csv's position is the start of the next record; the record we just read
        // started where the previous position said.
        if record.len() != fields.len() {
            return Ok(Some(Error::CsvFieldCount {
                path: path.clone(),
                line,
                expected: fields.len(),
                found: record.len(),
            }));
        }
        for (field, value) in fields.iter().zip(record.iter()) {
            let text = String::from_utf8_lossy(value);
            if !parses_as(&text, field.data_type()) {
                let forced = source.options.dtypes.iter().any(|(n, _)| n == field.name());
                let hint = if forced {
                    String::new()
                } else {
                    format!(
                        "; the type was inferred from the first {} rows: pass --dtype {}=utf8 \
                         (or another type) to read the column differently",
                        source.options.infer_rows,
                        field.name()
                    )
                };
                return Ok(Some(Error::CsvValue {
                    path: path.clone(),
                    line,
                    column: field.name().clone(),
                    value: text.into_owned(),
                    expected: super::type_name(field.data_type()),
                    hint,
                }));
            }
        }
    }
}

/// Whether the decoder accepts `text` as a value of `dtype` (empty is null).
fn parses_as(text: &str, dtype: &DataType) -> bool {
    if text.is_empty() {
        return true;
    }
    match dtype {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        // The decoder accepts exactly true/false in any case; a cast would take more.
        DataType::Boolean => {
            text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false")
        }
        other => {
            let one = StringArray::from(vec![text]);
            let opts = CastOptions {
                safe: false,
                ..Default::default()
            };
            cast_with_options(&one, other, &opts).is_ok_and(|a| a.null_count() == 0)
        }
    }
}

/// Number of `\n` bytes before `offset`.
fn count_newlines(path: &std::path::Path, offset: u64) -> Result<u64, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut pos, mut count) = (0u64, 0u64);
    while pos < offset {
        let n = ((offset - pos) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], pos)
            .map_err(|e| Error::io(path, e))?;
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        pos += n as u64;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_checks_match_the_decoder() {
        assert!(parses_as("12", &DataType::Int64));
        assert!(!parses_as("12x", &DataType::Int64));
        assert!(!parses_as("1.5", &DataType::Int64));
        assert!(parses_as("1.5", &DataType::Float64));
        assert!(parses_as("TRUE", &DataType::Boolean));
        assert!(!parses_as("yes", &DataType::Boolean));
        assert!(parses_as("2024-01-31", &DataType::Date32));
        assert!(!parses_as("2024-13-31", &DataType::Date32));
        assert!(parses_as("", &DataType::Int64));
    }
}
