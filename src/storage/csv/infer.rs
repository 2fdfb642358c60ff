//! Column types from a sample of rows, and the one definition of which text a type
//! accepts, shared by inference, decoding and error reporting.
//!
//! A column's type is the first of bool, int64, float64, date, timestamp that
//! accepts every non-empty value of the sample, else utf8. Because decoding accepts
//! exactly what inference accepted (see [`accepts`] and [`convert`]), no value that
//! was in the sample can fail later: a value that overflows int64, "0x10", "t" or
//! "2024-02-30" simply makes its column wider.
//!
//! Leading and trailing spaces are ignored when parsing a number, bool, date or
//! timestamp, inside and outside the sample alike, as pandas and DuckDB users
//! expect (`" 5"` is the number 5 in both); text columns keep their spaces. A
//! value of spaces only is not a number (it is not empty, so not null either).
//!
//! The sample is read from a bounded prefix of the data, so a file of huge rows, or
//! one whose quote never closes, costs at most [`SAMPLE_BYTES`] here.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, PrimitiveArray,
    StringArray,
};
use arrow::compute::kernels::cast_utils::{string_to_datetime, Parser};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{
    ArrowTimestampType, DataType, Date32Type, Field, Float64Type, Int64Type, Schema, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};

use super::scan::{self, RowScanner, State};
use crate::error::{Error, IoResultExt, Result};

/// Most bytes of data read to infer types.
pub(super) const SAMPLE_BYTES: u64 = 16 << 20;

/// The candidate types, narrowest first. Timestamps are microseconds (years 1 to
/// 9999, as pandas and DuckDB mostly need) unless a value has digits past the
/// microsecond: then nanoseconds, which hold them (years 1677 to 2262), or text.
const CANDIDATES: [DataType; 6] = [
    DataType::Boolean,
    DataType::Int64,
    DataType::Float64,
    DataType::Date32,
    DataType::Timestamp(TimeUnit::Microsecond, None),
    DataType::Timestamp(TimeUnit::Nanosecond, None),
];

/// Infers the types of `names.len()` columns from the first `rows` records at or
/// after `data_start`.
///
/// # Errors
/// [`Error::CsvFieldCount`] for a sampled row of the wrong length;
/// [`Error::UnterminatedQuote`] when the sample reaches the end of the file inside a
/// quoted field; I/O errors.
pub(super) fn infer_schema(
    path: &Path,
    len: u64,
    data_start: u64,
    delimiter: u8,
    names: &[String],
    rows: usize,
) -> Result<Schema> {
    // Read the sample in growing steps until it holds `rows` line breaks outside
    // quotes (an upper bound on the rows it needs), reaches the end of the file or
    // SAMPLE_BYTES; then keep whole records only, unless it is the whole rest of the
    // file.
    let file = File::open(path).at(path)?;
    let rest = len.saturating_sub(data_start);
    let mut sample: Vec<u8> = Vec::new();
    let mut scanner = RowScanner::new(delimiter, b'"');
    let (mut last_end, mut breaks) = (0usize, 0usize);
    let mut step = 64u64 << 10;
    loop {
        let have = sample.len() as u64;
        let take = (rest.min(SAMPLE_BYTES) - have).min(step);
        sample.resize((have + take) as usize, 0);
        file.read_exact_at(&mut sample[have as usize..], data_start + have)
            .at(path)?;
        let (found, end, _) =
            scanner.scan_rows(&sample, have as usize, data_start, usize::MAX, usize::MAX);
        if found > 0 {
            last_end = end;
            breaks += found;
        }
        let all_read = sample.len() as u64 == rest;
        if all_read || breaks > rows || sample.len() as u64 >= SAMPLE_BYTES {
            if all_read {
                if scanner.state == State::Quoted {
                    return Err(scan::unterminated(path, scanner.open_at));
                }
            } else {
                sample.truncate(last_end);
            }
            break;
        }
        step = step.saturating_mul(4);
    }

    // Bit k set: candidate k still accepts every value seen.
    let all = (1u8 << CANDIDATES.len()) - 1;
    let mut possible = vec![all; names.len()];
    let mut seen_value = vec![false; names.len()];
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(sample.as_slice());
    let mut record = csv::ByteRecord::new();
    let first_line = scan::line_of(path, data_start)?;
    for _ in 0..rows {
        let line = first_line + reader.position().line() - 1;
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(super::split::csv_error(path, e)),
        }
        if record.len() != names.len() {
            return Err(Error::CsvFieldCount {
                path: path.to_path_buf(),
                line,
                expected: names.len(),
                found: record.len(),
            });
        }
        for (k, value) in record.iter().enumerate() {
            if value.is_empty() || possible[k] == 0 {
                continue;
            }
            seen_value[k] = true;
            let Ok(text) = std::str::from_utf8(value) else {
                possible[k] = 0;
                continue;
            };
            for (c, dtype) in CANDIDATES.iter().enumerate() {
                if possible[k] & (1 << c) != 0 && !accepts(dtype, text) {
                    possible[k] &= !(1 << c);
                }
            }
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(possible.iter().zip(&seen_value))
        .map(|(name, (&bits, &seen))| {
            let dtype = if !seen || bits == 0 {
                DataType::Utf8
            } else {
                CANDIDATES[bits.trailing_zeros() as usize].clone()
            };
            Field::new(name, dtype, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// Whether the non-empty `text` is a valid value of `dtype`.
pub(super) fn accepts(dtype: &DataType, text: &str) -> bool {
    let t = text.trim_ascii();
    if t.is_empty() {
        return matches!(
            dtype,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
    }
    match dtype {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        DataType::Boolean => parse_bool(t).is_some(),
        DataType::Int64 => Int64Type::parse(t).is_some(),
        DataType::Float64 => Float64Type::parse(t).is_some(),
        DataType::Date32 => parse_date(t).is_some(),
        DataType::Timestamp(unit, tz) => timestamp(t, *unit, tz.as_deref()).is_some(),
        other => {
            let one = StringArray::from(vec![t]);
            cast_with_options(&one, other, &strict()).is_ok_and(|a| a.null_count() == 0)
        }
    }
}

/// Whether Arrow's decoder must read a column of `dtype` as text and leave the
/// parsing to [`convert`]: it would accept more than [`accepts`] does (dates with
/// times, single-digit months), so text it took could never have been inferred.
pub(super) fn decoded_as_text(dtype: &DataType) -> bool {
    // Arrow's timestamp parser also drops digits finer than the unit without a
    // word (nanoseconds into a microsecond column): `timestamp` refuses them.
    matches!(dtype, DataType::Date32 | DataType::Timestamp(..))
}

/// Parses a text column into `dtype` by [`accepts`]' rules; empty text is null.
/// `None` when a value is not valid.
pub(super) fn convert(text: &StringArray, dtype: &DataType) -> Option<ArrayRef> {
    fn each<T>(text: &StringArray, f: impl Fn(&str) -> Option<T>) -> Option<Vec<Option<T>>> {
        text.iter()
            .map(|v| match v {
                None | Some("") => Some(None),
                Some(s) => f(s.trim_ascii()).map(Some),
            })
            .collect()
    }
    Some(match dtype {
        DataType::Utf8 => Arc::new(text.clone()),
        DataType::Boolean => Arc::new(BooleanArray::from(each(text, parse_bool)?)),
        DataType::Int64 => Arc::new(Int64Array::from(each(text, Int64Type::parse)?)),
        DataType::Float64 => Arc::new(Float64Array::from(each(text, Float64Type::parse)?)),
        DataType::Date32 => Arc::new(Date32Array::from(each(text, parse_date)?)),
        DataType::Timestamp(unit, tz) => {
            let values = each(text, |s| timestamp(s, *unit, tz.as_deref()))?;
            let array: ArrayRef = match unit {
                TimeUnit::Second => timestamps::<TimestampSecondType>(values, tz.as_deref()),
                TimeUnit::Millisecond => {
                    timestamps::<TimestampMillisecondType>(values, tz.as_deref())
                }
                TimeUnit::Microsecond => {
                    timestamps::<TimestampMicrosecondType>(values, tz.as_deref())
                }
                TimeUnit::Nanosecond => {
                    timestamps::<TimestampNanosecondType>(values, tz.as_deref())
                }
            };
            array
        }
        other => {
            let trimmed: StringArray = text
                .iter()
                .map(|v| v.filter(|s| !s.is_empty()).map(str::trim_ascii))
                .collect();
            let out = cast_with_options(&trimmed, other, &strict()).ok()?;
            if out.null_count() != text.iter().filter(|v| v.is_none_or(str::is_empty)).count() {
                return None;
            }
            out
        }
    })
}

fn timestamps<T: ArrowTimestampType>(values: Vec<Option<i64>>, tz: Option<&str>) -> ArrayRef {
    let array: PrimitiveArray<T> = values.into_iter().collect();
    match tz {
        Some(tz) => Arc::new(array.with_timezone(tz)),
        None => Arc::new(array),
    }
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// `true` or `false` in any case, as Arrow's decoder reads them.
fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A date written exactly `YYYY-MM-DD` that exists on the calendar.
fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if shape {
        Date32Type::parse(s)
    } else {
        None
    }
}

/// A timestamp (or a date, read as its midnight) in `unit`, interpreted in `tz`
/// (UTC when none) unless it carries its own offset; `None` when it has digits
/// finer than `unit` (they would be lost) or is out of its range.
fn timestamp(s: &str, unit: TimeUnit, tz: Option<&str>) -> Option<i64> {
    let zone: Tz = tz.unwrap_or("+00:00").parse().ok()?;
    let t = string_to_datetime(&zone, s).ok()?;
    let unit_nanos = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    if t.timestamp_subsec_nanos() % unit_nanos != 0 {
        return None;
    }
    match unit {
        TimeUnit::Second => Some(t.timestamp()),
        TimeUnit::Millisecond => Some(t.timestamp_millis()),
        TimeUnit::Microsecond => Some(t.timestamp_micros()),
        TimeUnit::Nanosecond => t.timestamp_nanos_opt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(text: &str) -> Vec<DataType> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, text).unwrap();
        let h = super::super::header::read_header(&p, text.len() as u64, b',', true).unwrap();
        infer_schema(&p, text.len() as u64, h.data_start, b',', &h.names, 1000)
            .unwrap()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    #[test]
    fn a_value_that_does_not_parse_widens_the_column() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let cases: &[(&str, DataType)] = &[
            ("1\n99999999999999999999", DataType::Float64),
            ("1\n1e400", DataType::Float64),
            ("1\n+5", DataType::Int64),
            ("1\n0x10", DataType::Utf8),
            ("1.5\nNaN", DataType::Float64),
            ("1\ninf", DataType::Float64),
            ("2024-02-28\n2024-02-30", DataType::Utf8),
            ("2024-02-28\n2024-2-28", DataType::Utf8),
            ("2024-02-28\n2024-02-28 10:00:00", ts.clone()),
            (
                "2024-02-28T10:00:00+05:30\n2024-02-28 10:00:00Z",
                ts.clone(),
            ),
            ("2024-02-28T10:00:00+25:00", DataType::Utf8),
            (
                "2024-02-28T10:00:00.5\n2024-02-28T10:00:00.123456789",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
            ),
            (
                "0001-01-01T00:00:00\n2024-02-28T10:00:00.123456789",
                DataType::Utf8,
            ),
            ("True\nTRUE\nfalse", DataType::Boolean),
            ("true\nt", DataType::Utf8),
            (" 5 \n6", DataType::Int64),
            (" \n6", DataType::Utf8),
            ("\n\"\"", DataType::Utf8),
        ];
        for (values, expected) in cases {
            let got = infer(&format!("x\n{values}\n"));
            assert_eq!(&got[0], expected, "{values:?}");
            // Every sampled value converts under the inferred type.
            let text: StringArray = values.split('\n').map(Some).collect();
            assert!(
                convert(&text, &got[0]).is_some(),
                "{values:?} as {}",
                got[0]
            );
        }
    }

    #[test]
    fn spaces_are_trimmed_for_typed_values_only() {
        let text = StringArray::from(vec![" 5", "6 ", ""]);
        let ints = convert(&text, &DataType::Int64).unwrap();
        let ints = ints.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ints.iter().collect::<Vec<_>>(), [Some(5), Some(6), None]);
        let kept = convert(&text, &DataType::Utf8).unwrap();
        let kept = kept.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(kept.value(0), " 5");
        assert!(!accepts(&DataType::Int64, "  "));
        assert!(accepts(&DataType::Int32, " 7 "));
        assert!(!accepts(&DataType::Int32, "99999999999"));
    }
}
