//! Dates and timestamps: the parts (`year`, `dayofweek`, ...) through arrow's
//! `date_part`, as DuckDB's BIGINTs (`dayofweek` counts from Sunday = 0,
//! `isodow` from Monday = 1, `week` is the ISO week); and `date_trunc`, which
//! arrow lacks, on the proleptic Gregorian calendar (dates before 1970 floor
//! toward the past). A date truncates to a timestamp, as in DuckDB.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, PrimitiveArray};
use arrow::compute::kernels::arity::unary;
use arrow::compute::{date_part, DatePart};
use arrow::datatypes::*;

use super::coerce::{describe, type_error};
use super::value::Value;
use super::{Expr, Literal};
use crate::{Error, Result};

/// A part of a date or timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Year,
    Quarter,
    Month,
    Week,
    Day,
    DayOfWeek,
    IsoDayOfWeek,
    DayOfYear,
    Hour,
    Minute,
    Second,
}

/// `part(x)` as int64.
pub(super) fn part(whole: &Expr, part: Part, x: &Value) -> Result<Value> {
    let p = match part {
        Part::Year => DatePart::Year,
        Part::Quarter => DatePart::Quarter,
        Part::Month => DatePart::Month,
        Part::Week => DatePart::Week,
        Part::Day => DatePart::Day,
        Part::DayOfWeek => DatePart::DayOfWeekSunday0,
        Part::IsoDayOfWeek => DatePart::DayOfWeekMonday0,
        Part::DayOfYear => DatePart::DayOfYear,
        Part::Hour => DatePart::Hour,
        Part::Minute => DatePart::Minute,
        Part::Second => DatePart::Second,
    };
    let x = x
        .clone()
        .cast(super::coerce::logical(x.data_type()), whole)?;
    let scalar = x.is_scalar();
    let parts = date_part(x.array(), p).map_err(|e| type_error(whole, e.to_string()))?;
    let parts = parts.as_primitive::<Int32Type>();
    let shift = i64::from(part == Part::IsoDayOfWeek);
    let out: PrimitiveArray<Int64Type> = unary(parts, |v| i64::from(v) + shift);
    Ok(Value::from_kernel(Arc::new(out), scalar))
}

/// A unit `date_trunc` truncates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Year,
    Quarter,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
}

/// The unit named by `date_trunc`'s first argument, which must be a constant.
pub(super) fn trunc_unit(whole: &Expr, arg: &Expr) -> Result<Option<Unit>> {
    let name = match arg {
        Expr::Literal(Literal::Utf8(s)) => s.to_ascii_lowercase(),
        Expr::Literal(Literal::Null) => return Ok(None),
        e => {
            return Err(type_error(
                whole,
                format!(
                    "date_trunc: the unit must be a constant string, not {}",
                    describe(e, &DataType::Utf8)
                ),
            ))
        }
    };
    Ok(Some(match name.trim_end_matches('s') {
        "year" | "yr" | "y" => Unit::Year,
        "quarter" => Unit::Quarter,
        "month" | "mon" => Unit::Month,
        "week" | "w" => Unit::Week,
        "day" | "d" => Unit::Day,
        "hour" | "hr" | "h" => Unit::Hour,
        "minute" | "min" | "m" => Unit::Minute,
        "second" | "sec" => Unit::Second,
        _ => {
            return Err(type_error(
                whole,
                format!(
                    "date_trunc: unknown unit '{name}' (the units are year, quarter, month, week, \
                     day, hour, minute, second)"
                ),
            ))
        }
    }))
}

/// `date_trunc(unit, x)` into type `out`.
pub(super) fn date_trunc(whole: &Expr, unit: &Expr, x: &Value, out: &DataType) -> Result<Value> {
    let Some(unit) = trunc_unit(whole, unit)? else {
        return Ok(Value::null(out));
    };
    let DataType::Timestamp(time_unit, tz) = out else {
        return Err(Error::bug("date_trunc's result type", out));
    };
    if let Some(tz) = tz {
        // Truncating in a zone needs its offsets; UTC has none.
        if !matches!(tz.as_ref(), "UTC" | "+00:00" | "Z" | "utc" | "Etc/UTC") {
            return Err(type_error(
                whole,
                format!("date_trunc of timestamps in time zone {tz} is not supported; convert to UTC first"),
            ));
        }
    }
    let scalar = x.is_scalar();
    // Everything is worked in the output's unit: a date becomes microseconds.
    let ticks = x
        .clone()
        .cast(&DataType::Timestamp(*time_unit, None), whole)?
        .cast(&DataType::Int64, whole)?;
    let per_second: i64 = match time_unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let per_day = per_second * 86_400;
    let truncated: PrimitiveArray<Int64Type> =
        unary(ticks.array().as_primitive::<Int64Type>(), |t| {
            let (days, tod) = (t.div_euclid(per_day), t.rem_euclid(per_day));
            let floor_to = |step: i64| days * per_day + tod - tod.rem_euclid(step);
            match unit {
                Unit::Second => floor_to(per_second),
                Unit::Minute => floor_to(per_second * 60),
                Unit::Hour => floor_to(per_second * 3600),
                Unit::Day => days * per_day,
                // 1970-01-01 was a Thursday: Monday is 3 days earlier.
                Unit::Week => (days - (days + 3).rem_euclid(7)) * per_day,
                Unit::Month | Unit::Quarter | Unit::Year => {
                    let (y, m, _) = civil_from_days(days);
                    let m = match unit {
                        Unit::Year => 1,
                        Unit::Quarter => (m - 1) / 3 * 3 + 1,
                        _ => m,
                    };
                    days_from_civil(y, m, 1) * per_day
                }
            }
        });
    let out_array: ArrayRef = Arc::new(truncated);
    Value::from_kernel(out_array, scalar).cast(out, whole)
}

/// The (year, month, day) of a day count since 1970-01-01, proleptic Gregorian.
/// The calendar repeats every 400 years (146097 days); within an era, years are
/// counted from March so that the leap day falls at the end.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month from March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day count since 1970-01-01 of a (year, month, day), the inverse of
/// [`civil_from_days`].
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_across_eras_and_before_1970() {
        for days in [-800_000, -719_468, -1, 0, 59, 60, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
