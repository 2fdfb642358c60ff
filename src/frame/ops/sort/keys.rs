//! Sort keys of a batch, in the cheapest form that orders them.
//!
//! One primitive key column (the common case: sort by a timestamp, an id, a price)
//! becomes one order-preserving `u64` per row, compared as integers. Anything else
//! becomes Arrow's row format, compared as bytes. Both order nulls last, ascending or
//! descending, and float NaN above every number, as Arrow's row format does.

use std::cmp::Ordering;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
};
use arrow::datatypes::{Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow::row::{RowConverter, Rows};

use crate::error::Result;

/// A fixed-width key: a null flag (1 sorts last) and an order-preserving u64.
pub type Key = (u8, u64);

/// A key of any kind as bytes that order as the keys do: a fixed-width key as its
/// null flag and big-endian value, others in Arrow's row format. What fences and
/// key ranges are made of, so that any keys can be cut into ranges. Written in JSON
/// as hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyBytes(pub Vec<u8>);

impl KeyBytes {
    fn of_fixed((null, value): Key) -> Self {
        let mut bytes = Vec::with_capacity(9);
        bytes.push(null);
        bytes.extend_from_slice(&value.to_be_bytes());
        KeyBytes(bytes)
    }

    /// The fixed-width key these bytes are, if they are one.
    fn fixed(&self) -> Option<Key> {
        let (&null, value) = self.0.split_first()?;
        Some((null, u64::from_be_bytes(value.try_into().ok()?)))
    }
}

impl serde::Serialize for KeyBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(2 * self.0.len());
        for b in &self.0 {
            text.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&text)
    }
}

impl<'de> serde::Deserialize<'de> for KeyBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.as_bytes();
        if digits.len() % 2 != 0 {
            return Err(serde::de::Error::custom(
                "a key of an odd number of hex digits",
            ));
        }
        digits
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("a key that is not hex digits"))
            })
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map(KeyBytes)
    }
}

/// A bound of a key range, in the form its keys compare fastest with.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    /// A fixed-width key.
    Fixed(Key),
    /// Row-format bytes.
    Bytes(Vec<u8>),
}

impl Bound {
    /// The bound `key` is for keys encoded by `encoder`.
    pub(super) fn new(key: &KeyBytes, encoder: &KeyEncoder) -> Self {
        match (encoder, key.fixed()) {
            (KeyEncoder::Fixed { .. }, Some(k)) => Bound::Fixed(k),
            _ => Bound::Bytes(key.0.clone()),
        }
    }
}

/// How a sort turns key columns into comparable keys.
pub(super) enum KeyEncoder {
    /// One primitive column: `(null, order-preserving u64)` per row.
    Fixed { descending: bool },
    /// Any columns: row-format bytes.
    Rows(RowConverter),
}

/// The keys of one batch.
pub(super) enum BatchKeys {
    /// Null flag (1 sorts last) and the value mapped to an order-preserving u64.
    Fixed(Vec<Key>),
    /// Row-format bytes.
    Rows(Rows),
}

impl KeyEncoder {
    /// The fixed-width encoder when `types` is one primitive column, else `rows`.
    pub(super) fn new(types: &[DataType], descending: bool, rows: RowConverter) -> Self {
        match types {
            [t] if fixed_width(t) => KeyEncoder::Fixed { descending },
            _ => KeyEncoder::Rows(rows),
        }
    }

    /// Encodes the key columns of one batch.
    pub(super) fn encode(&self, columns: &[ArrayRef]) -> Result<BatchKeys> {
        match self {
            KeyEncoder::Rows(converter) => Ok(BatchKeys::Rows(converter.convert_columns(columns)?)),
            KeyEncoder::Fixed { descending } => {
                let flip = if *descending { u64::MAX } else { 0 };
                Ok(BatchKeys::Fixed(encode_fixed(&columns[0], flip)?))
            }
        }
    }
}

impl BatchKeys {
    /// Row `i`'s key as bytes.
    pub(super) fn key_bytes(&self, i: usize) -> KeyBytes {
        match self {
            BatchKeys::Fixed(k) => KeyBytes::of_fixed(k[i]),
            BatchKeys::Rows(rows) => KeyBytes(rows.row(i).as_ref().to_vec()),
        }
    }

    /// Compares row `i`'s key with `bound`.
    #[inline]
    pub(super) fn cmp_bound(&self, i: usize, bound: &Bound) -> Ordering {
        match (self, bound) {
            (BatchKeys::Fixed(k), Bound::Fixed(b)) => k[i].cmp(b),
            (BatchKeys::Fixed(k), Bound::Bytes(b)) => {
                KeyBytes::of_fixed(k[i]).0.as_slice().cmp(b.as_slice())
            }
            (BatchKeys::Rows(rows), Bound::Bytes(b)) => rows.row(i).as_ref().cmp(b.as_slice()),
            (BatchKeys::Rows(rows), Bound::Fixed(b)) => rows
                .row(i)
                .as_ref()
                .cmp(KeyBytes::of_fixed(*b).0.as_slice()),
        }
    }

    /// Bytes these keys take.
    pub(super) fn size(&self) -> u64 {
        match self {
            BatchKeys::Fixed(keys) => (keys.capacity() * std::mem::size_of::<Key>()) as u64,
            BatchKeys::Rows(rows) => rows.size() as u64,
        }
    }

    /// Bytes the keys of rows `start..end` take when they are encoded on their own
    /// (a slice of a sorted batch, read back from a run).
    pub(super) fn size_of(&self, start: usize, end: usize) -> u64 {
        let n = end.saturating_sub(start) as u64;
        match self {
            BatchKeys::Fixed(_) => n * std::mem::size_of::<Key>() as u64,
            BatchKeys::Rows(rows) => {
                let data: usize = (start..end).map(|i| rows.row(i).as_ref().len()).sum();
                // Data, an offset a row and one more, and the struct itself.
                data as u64 + 8 * (n + 1) + std::mem::size_of::<arrow::row::Rows>() as u64
            }
        }
    }

    /// Bytes row `i`'s key adds to an output batch's keys.
    #[inline]
    pub(super) fn row_size(&self, i: usize) -> u64 {
        match self {
            BatchKeys::Fixed(_) => std::mem::size_of::<Key>() as u64,
            BatchKeys::Rows(rows) => rows.row(i).as_ref().len() as u64 + 8,
        }
    }

    /// Compares row `i` of these keys with row `j` of `other` (same encoder).
    #[inline]
    pub(super) fn cmp_at(&self, i: usize, other: &BatchKeys, j: usize) -> Ordering {
        match (self, other) {
            (BatchKeys::Fixed(a), BatchKeys::Fixed(b)) => a[i].cmp(&b[j]),
            (BatchKeys::Rows(a), BatchKeys::Rows(b)) => a.row(i).cmp(&b.row(j)),
            // One encoder makes every batch's keys, so the kinds always agree.
            _ => Ordering::Equal,
        }
    }
}

fn fixed_width(t: &DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        Int8 | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Date32
            | Date64
            | Timestamp(_, _)
    )
}

fn signed(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// An f64 as a u64 with the same order (negative numbers flipped whole, positive
/// ones with the sign bit set), NaN above infinity.
fn float(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn map_values<T: ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    flip: u64,
    f: impl Fn(T::Native) -> u64,
) -> Vec<(u8, u64)> {
    let values = a.values();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                (1, 0)
            } else {
                (0, f(values[i]) ^ flip)
            }
        })
        .collect()
}

/// A primitive column's rows as `(null, order-preserving u64)`, XORed with `flip`
/// (all ones for descending). Dates and timestamps are their integers.
fn encode_fixed(column: &ArrayRef, flip: u64) -> Result<Vec<(u8, u64)>> {
    let column = match column.data_type() {
        DataType::Date32 => cast(column, &DataType::Int32)?,
        DataType::Date64 | DataType::Timestamp(_, _) => cast(column, &DataType::Int64)?,
        _ => column.clone(),
    };
    Ok(match column.data_type() {
        DataType::Int8 => map_values(column.as_primitive::<Int8Type>(), flip, |v| {
            signed(v as i64)
        }),
        DataType::Int16 => map_values(column.as_primitive::<Int16Type>(), flip, |v| {
            signed(v as i64)
        }),
        DataType::Int32 => map_values(column.as_primitive::<Int32Type>(), flip, |v| {
            signed(v as i64)
        }),
        DataType::Int64 => map_values(column.as_primitive::<Int64Type>(), flip, signed),
        DataType::UInt8 => map_values(column.as_primitive::<UInt8Type>(), flip, |v| v as u64),
        DataType::UInt16 => map_values(column.as_primitive::<UInt16Type>(), flip, |v| v as u64),
        DataType::UInt32 => map_values(column.as_primitive::<UInt32Type>(), flip, |v| v as u64),
        DataType::UInt64 => map_values(column.as_primitive::<UInt64Type>(), flip, |v| v),
        DataType::Float32 => map_values(column.as_primitive::<Float32Type>(), flip, |v| {
            float(v as f64)
        }),
        DataType::Float64 => map_values(column.as_primitive::<Float64Type>(), flip, float),
        other => {
            return Err(crate::error::Error::bug(
                "a sort key that is not fixed-width taken as one",
                other,
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use std::sync::Arc;

    #[test]
    fn mapped_values_keep_their_order() {
        let f: ArrayRef = Arc::new(Float64Array::from(vec![
            -f64::INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
            f64::NAN,
        ]));
        let keys: Vec<u64> = encode_fixed(&f, 0).unwrap().iter().map(|k| k.1).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
        let n: ArrayRef = Arc::new(Int64Array::from(vec![i64::MIN, -1, 0, 1, i64::MAX]));
        let keys: Vec<u64> = encode_fixed(&n, 0).unwrap().iter().map(|k| k.1).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }
}
