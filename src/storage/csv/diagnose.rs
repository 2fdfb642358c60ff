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

use super::{infer, scan, CsvSource};
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
    let first_line = scan::line_of(path, range.0)?;
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
            if std::str::from_utf8(value).is_err() {
                // Every column is read as UTF-8 text first: bytes that are not
                // UTF-8 (a Latin-1 file, say) fail whatever the column's type.
                return Ok(Some(Error::CsvValue {
                    path: path.clone(),
                    line,
                    column: field.name().clone(),
                    value: String::from_utf8_lossy(value).into_owned(),
                    expected: super::type_name(field.data_type()),
                    hint: "; its bytes are not UTF-8, which blockwise reads CSV as: re-encode \
                           the file (for example `iconv -f LATIN1 -t UTF-8`)"
                        .into(),
                }));
            }
            let text = String::from_utf8_lossy(value);
            if !text.is_empty() && !infer::accepts(field.data_type(), &text) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::frame::{FrameReadOptions, FrameSource};

    #[test]
    fn a_bad_value_is_named_with_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.csv");
        // Forced int64: "12x" on line 4 cannot parse; " 7 " can (spaces trimmed).
        std::fs::write(&p, "a,b\n1,\" 7 \"\n2,\"x\ny\"\n12x,3\n").unwrap();
        let options =
            FrameReadOptions::default().with_dtype("a", arrow::datatypes::DataType::Int64);
        let source = CsvSource::open(&p, &options).unwrap();
        let err = source
            .read_partition(0)
            .unwrap()
            .find_map(|b| b.err())
            .unwrap();
        match err {
            Error::CsvValue {
                line,
                column,
                value,
                ..
            } => assert_eq!((line, column.as_str(), value.as_str()), (5, "a", "12x")),
            other => panic!("{other}"),
        }
    }
}
