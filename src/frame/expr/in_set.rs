//! The hash sets `IN` looks values up in: built once from the keys (a list of
//! constants, or the column of a subquery's rows) and probed with a batch's
//! column, with SQL's rules for NULL and for the floats equality does not tell
//! apart.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{self as dt, DataType};
use hashbrown::HashSet;

use super::coerce;
use crate::{Error, Result};

/// The distinct values of a key column, of one type, ready for lookups.
#[derive(Debug)]
pub struct KeySet {
    data_type: DataType,
    has_null: bool,
    keys: Keys,
    /// The column it was built from, for lookups in a wider type.
    source: ArrayRef,
    /// The set converted to a wider type, kept for the next batches (the values
    /// a task looks up have one type).
    converted: Mutex<Option<Arc<KeySet>>>,
}

/// The keys by how they compare: fixed-width values by their bytes, floats by
/// their normalized bits, booleans by which of the two occur, strings by text.
#[derive(Debug)]
enum Keys {
    Bits1(HashSet<[u8; 1]>),
    Bits2(HashSet<[u8; 2]>),
    Bits4(HashSet<[u8; 4]>),
    Bits8(HashSet<[u8; 8]>),
    Bits16(HashSet<[u8; 16]>),
    Float32(HashSet<u32>),
    Float64(HashSet<u64>),
    Boolean { t: bool, f: bool },
    Strings(HashSet<Box<str>>),
}

impl KeySet {
    /// The set of the values of `keys` (NULL rows only remembered as there).
    ///
    /// # Errors
    /// [`Error::Bug`] for a type `IN` does not compare (the typing rules refuse
    /// those before).
    pub fn build(keys: &ArrayRef) -> Result<KeySet> {
        let t = keys.data_type();
        let valid = |i: usize| keys.is_valid(i);
        let set = match t {
            t if t.is_primitive() => match (t.primitive_width(), t.is_floating()) {
                (Some(1), _) => Keys::Bits1(bits(keys)),
                (Some(2), _) => Keys::Bits2(bits(keys)),
                (Some(4), true) => {
                    let a = keys.as_primitive::<dt::Float32Type>();
                    Keys::Float32(
                        (0..a.len())
                            .filter(|&i| valid(i))
                            .map(|i| f32_key(a.value(i)))
                            .collect(),
                    )
                }
                (Some(8), true) => {
                    let a = keys.as_primitive::<dt::Float64Type>();
                    Keys::Float64(
                        (0..a.len())
                            .filter(|&i| valid(i))
                            .map(|i| f64_key(a.value(i)))
                            .collect(),
                    )
                }
                (Some(4), false) => Keys::Bits4(bits(keys)),
                (Some(8), false) => Keys::Bits8(bits(keys)),
                (Some(16), false) => Keys::Bits16(bits(keys)),
                _ => return Err(Error::bug("IN over a primitive type", t)),
            },
            DataType::Boolean => {
                let a = keys.as_boolean();
                let (mut t, mut f) = (false, false);
                for v in a.iter().flatten() {
                    if v {
                        t = true
                    } else {
                        f = true
                    }
                }
                Keys::Boolean { t, f }
            }
            t if coerce::is_string(t) => Keys::Strings(
                (0..keys.len())
                    .filter_map(|i| super::strings::str_at(keys, i))
                    .map(Box::from)
                    .collect(),
            ),
            t => return Err(Error::bug("IN over this type", t)),
        };
        Ok(KeySet {
            data_type: t.clone(),
            has_null: keys.null_count() > 0,
            keys: set,
            source: keys.clone(),
            converted: Mutex::new(None),
        })
    }

    /// The set of the same keys converted to `to` (a wider type the values are
    /// compared in), built once; `whole` names the expression when a key does
    /// not convert.
    ///
    /// # Errors
    /// A key that does not convert to `to`.
    pub fn keys_as(&self, to: &DataType, whole: &super::Expr) -> Result<Arc<KeySet>> {
        let mut converted = self
            .converted
            .lock()
            .map_err(|_| Error::bug("a set's lock poisoned", ""))?;
        if let Some(set) = converted.as_ref().filter(|s| s.data_type() == to) {
            return Ok(set.clone());
        }
        let keys = super::value::Value::Array(self.source.clone()).cast(to, whole)?;
        let set = Arc::new(KeySet::build(keys.array())?);
        *converted = Some(set.clone());
        Ok(set)
    }

    /// Bytes a set of `keys` holds at most, for a reservation made before it is
    /// built: each key's bytes in the table (its load factor and control bytes
    /// included), and a string's own copy.
    pub fn bytes_for(keys: &ArrayRef) -> u64 {
        let n = keys.len() as u64;
        let width = keys.data_type().primitive_width().unwrap_or(16) as u64;
        // hashbrown keeps at most 7/8 full and grows by doubling: about twice
        // the keys' width, plus a control byte each.
        let table = n.saturating_mul(2 * (width + 1));
        // The column itself is kept; strings are copied into the table too.
        let column = keys.get_array_memory_size() as u64;
        let text = if coerce::is_string(keys.data_type()) {
            column
        } else {
            0
        };
        table.saturating_add(column).saturating_add(text)
    }

    /// The type of the keys: what looked-up values are converted to first.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// Whether `values` (of the set's type) are among the keys, row by row: true,
    /// false, or NULL for a NULL row or for a miss when the keys hold a NULL (SQL's
    /// `IN`: `x IN (1, NULL)` is NULL for `x = 2`); false for every row when
    /// there are no keys.
    ///
    /// # Errors
    /// [`Error::Bug`] for values of another type than the set's.
    pub fn probe(&self, values: &ArrayRef) -> Result<BooleanArray> {
        if coerce::logical(values.data_type()) != coerce::logical(&self.data_type)
            && !(coerce::is_string(values.data_type()) && coerce::is_string(&self.data_type))
        {
            return Err(Error::bug(
                "IN values of the set's type",
                format!("{} and {}", values.data_type(), self.data_type),
            ));
        }
        let n = values.len();
        if self.source.is_empty() {
            // Nothing is in an empty set, not even NULL (DuckDB, and the SQL
            // standard: `NULL IN (SELECT .. no row)` is false).
            return Ok(BooleanArray::new(BooleanBuffer::new_unset(n), None));
        }
        let hits: BooleanBuffer = match &self.keys {
            Keys::Bits1(s) => probe_bits(values, s),
            Keys::Bits2(s) => probe_bits(values, s),
            Keys::Bits4(s) => probe_bits(values, s),
            Keys::Bits8(s) => probe_bits(values, s),
            Keys::Bits16(s) => probe_bits(values, s),
            Keys::Float32(s) => {
                let a = values.as_primitive::<dt::Float32Type>();
                BooleanBuffer::collect_bool(n, |i| s.contains(&f32_key(a.value(i))))
            }
            Keys::Float64(s) => {
                let a = values.as_primitive::<dt::Float64Type>();
                BooleanBuffer::collect_bool(n, |i| s.contains(&f64_key(a.value(i))))
            }
            Keys::Boolean { t, f } => {
                let a = values.as_boolean();
                BooleanBuffer::collect_bool(n, |i| if a.value(i) { *t } else { *f })
            }
            Keys::Strings(s) => super::strings::collect_str(values, |v| s.contains(v))?,
        };
        Ok(match (self.has_null, values.nulls()) {
            // A miss is NULL when the keys hold a NULL; a NULL row is NULL anyway.
            (true, nulls) => {
                let valid = match nulls {
                    Some(nulls) => &hits & nulls.inner(),
                    None => hits.clone(),
                };
                BooleanArray::new(hits, Some(valid.into()))
            }
            (false, nulls) => BooleanArray::new(hits, nulls.cloned()),
        })
    }
}

/// The float values SQL's equality does not tell apart folded together: -0.0
/// with 0.0, every NaN with one.
fn f32_key(x: f32) -> u32 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f32::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

fn f64_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// The bytes of a fixed-width array's values at its offset, `len * N` of them.
fn raw<const N: usize>(data: &arrow::array::ArrayData) -> &[u8] {
    let start = data.offset() * N;
    &data.buffers()[0].as_slice()[start..start + data.len() * N]
}

/// The valid values of a fixed-width array, by their bytes (equal values have
/// equal bytes).
fn bits<const N: usize>(keys: &ArrayRef) -> HashSet<[u8; N]> {
    let data = keys.to_data();
    raw::<N>(&data)
        .chunks_exact(N)
        .enumerate()
        .filter(|(i, _)| keys.is_valid(*i))
        .map(|(_, b)| {
            let mut key = [0u8; N];
            key.copy_from_slice(b);
            key
        })
        .collect()
}

fn probe_bits<const N: usize>(values: &ArrayRef, set: &HashSet<[u8; N]>) -> BooleanBuffer {
    let data = values.to_data();
    let bytes = raw::<N>(&data);
    BooleanBuffer::collect_bool(data.len(), |i| {
        let mut key = [0u8; N];
        key.copy_from_slice(&bytes[i * N..i * N + N]);
        set.contains(&key)
    })
}
