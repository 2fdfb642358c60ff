//! Group keys, and the table that numbers each distinct key in order of first
//! appearance.
//!
//! A key is held in one of three layouts, chosen by the key columns' types
//! ([`Layout::of`]):
//! - one integer-like column (integers, dates, times, timestamps, durations):
//!   the value's 64 bits;
//! - one string or binary column: the value's bytes;
//! - anything else (several columns, floats, nested types): the columns
//!   encoded as bytes in Arrow's row format, so any number of columns of any
//!   type compare as one slice.
//!
//! The first two skip the row encoding, which costs more than the hash table
//! itself for db-benchmark's one-key questions. A NULL key is a group of its
//! own in every layout.
//!
//! String keys may come as dictionaries (a Parquet chunk's, read so for the
//! grouping): a lone key then finds each dictionary value's group once, and
//! up to [`CODED_COLUMNS`] keys are grouped on their values' codes
//! ([`codes`]). Either way a group gets the number and hash its key decoded
//! would get.
//!
//! The hash of a key is fixed (a seeded hasher, the same in every process), so the
//! bucket a key goes to is the same in the task that aggregates it partially and in
//! the one that finishes it, wherever they run. It is a function of the layout's
//! bytes, so [`KeyHasher`] and [`GroupKeys`] hash alike because they choose the
//! layout alike.

use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, GenericByteArray, PrimitiveArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowNativeType, ByteArrayType, DataType, GenericBinaryType, GenericStringType, IntervalUnit,
};
use arrow::row::{RowConverter, Rows, SortField};
mod codes;
mod table;

use self::codes::Codes;
pub use self::codes::CODED_COLUMNS;
pub(super) use self::table::prefetch;
use self::table::{Entry, Probe, Table, AHEAD, VACANT};

use crate::error::{Error, Result};

/// The seed of every key hash: fixed, so that every process agrees.
const SEED: u64 = 0x6a09_e667_f3bc_c908;

fn hasher(level: u32) -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(
        SEED ^ u64::from(level).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
}

/// The hash of an encoded key, with `level` mixed in: each level of recursive
/// partitioning cuts on hash values independent of the levels above it.
pub fn key_hash(bytes: &[u8], level: u32) -> u64 {
    hasher(level).hash_one(bytes)
}

/// The hash of an integer key at `level`.
fn int_hash(value: u64, level: u32) -> u64 {
    hasher(level).hash_one(value)
}

/// The hash of the NULL key at `level` (of a one-column layout).
fn null_hash(level: u32) -> u64 {
    hasher(level).hash_one(b"\xffNULL".as_slice()) ^ 0x5bd1_e995
}

pub use crate::storage::distinct::{estimated_keys, expected_distinct};

/// Which of `buckets` a hash goes to: the high bits, scaled (not a modulo, so that
/// any number of buckets takes the hash's best bits).
pub fn bucket_of(hash: u64, buckets: u32) -> u32 {
    ((u128::from(hash) * u128::from(buckets)) >> 64) as u32
}

/// How keys of some types are held and hashed.
enum Layout {
    /// One integer-like column, as 64 bits.
    Int(DataType),
    /// One string or binary column, as its bytes.
    Bytes(DataType),
    /// Arrow's row format.
    Rows(RowConverter),
}

impl Layout {
    fn of(types: &[DataType]) -> Result<Layout> {
        Ok(match types {
            [t] if int_like(t) => Layout::Int(t.clone()),
            [t @ (DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary)] => Layout::Bytes(t.clone()),
            _ => Layout::Rows(RowConverter::new(
                types.iter().map(|t| SortField::new(t.clone())).collect(),
            )?),
        })
    }
}

/// Types whose values are integers of at most 64 bits, compared as such.
fn int_like(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Timestamp(_, _)
                | DataType::Duration(_)
                | DataType::Interval(IntervalUnit::YearMonth)
        )
}

/// A one-column key's values as 64 bits (sign-extended: distinct values stay
/// distinct within a type), with `None` where the value is NULL.
fn int_values(column: &dyn Array) -> Result<Vec<Option<u64>>> {
    fn bits<T: ArrowPrimitiveType>(a: &dyn Array) -> Vec<Option<u64>> {
        a.as_primitive::<T>()
            .iter()
            .map(|v| v.map(|v| v.as_usize() as u64))
            .collect()
    }
    use arrow::datatypes as t;
    Ok(match column.data_type() {
        DataType::Int8 => bits::<t::Int8Type>(column),
        DataType::Int16 => bits::<t::Int16Type>(column),
        DataType::Int32 => bits::<t::Int32Type>(column),
        DataType::Int64 => bits::<t::Int64Type>(column),
        DataType::UInt8 => bits::<t::UInt8Type>(column),
        DataType::UInt16 => bits::<t::UInt16Type>(column),
        DataType::UInt32 => bits::<t::UInt32Type>(column),
        DataType::UInt64 => bits::<t::UInt64Type>(column),
        other => {
            // Dates, times, timestamps, durations and year-month intervals are
            // stored as 32- or 64-bit integers.
            let storage = match other.primitive_width() {
                Some(4) => DataType::Int32,
                Some(8) => DataType::Int64,
                _ => return Err(Error::bug("an integer-like key of another width", other)),
            };
            let data = column.to_data().into_builder().data_type(storage).build()?;
            return int_values(arrow::array::make_array(data).as_ref());
        }
    })
}

/// A column of `dtype` from 64-bit values (the inverse of [`int_values`]).
fn int_column(dtype: &DataType, values: &[Option<u64>]) -> Result<ArrayRef> {
    fn build<T: ArrowPrimitiveType>(values: &[Option<u64>]) -> ArrayRef {
        let array: PrimitiveArray<T> = values
            .iter()
            .map(|v| v.map(|v| T::Native::usize_as(v as usize)))
            .collect();
        Arc::new(array)
    }
    use arrow::datatypes as t;
    let storage = match dtype {
        DataType::Int8 => return Ok(build::<t::Int8Type>(values)),
        DataType::Int16 => return Ok(build::<t::Int16Type>(values)),
        DataType::Int32 => return Ok(build::<t::Int32Type>(values)),
        DataType::Int64 => return Ok(build::<t::Int64Type>(values)),
        DataType::UInt8 => return Ok(build::<t::UInt8Type>(values)),
        DataType::UInt16 => return Ok(build::<t::UInt16Type>(values)),
        DataType::UInt32 => return Ok(build::<t::UInt32Type>(values)),
        DataType::UInt64 => return Ok(build::<t::UInt64Type>(values)),
        other => match other.primitive_width() {
            Some(4) => build::<t::Int32Type>(values),
            Some(8) => build::<t::Int64Type>(values),
            _ => return Err(Error::bug("an integer-like key of another width", other)),
        },
    };
    let data = storage
        .to_data()
        .into_builder()
        .data_type(dtype.clone())
        .build()?;
    Ok(arrow::array::make_array(data))
}

/// A string or binary column's values as byte slices.
fn byte_values(column: &dyn Array) -> Vec<Option<&[u8]>> {
    fn slices<T: ByteArrayType>(a: &dyn Array) -> Vec<Option<&[u8]>> {
        a.as_bytes::<T>()
            .iter()
            .map(|v| v.map(|v| -> &[u8] { v.as_ref() }))
            .collect()
    }
    match column.data_type() {
        DataType::Utf8 => slices::<GenericStringType<i32>>(column),
        DataType::LargeUtf8 => slices::<GenericStringType<i64>>(column),
        DataType::Binary => slices::<GenericBinaryType<i32>>(column),
        _ => slices::<GenericBinaryType<i64>>(column),
    }
}

/// Value `i` of a string or binary column (`None` for NULL).
fn byte_value(column: &dyn Array, i: usize) -> Option<&[u8]> {
    if column.is_null(i) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(i).as_bytes(),
        DataType::LargeUtf8 => column.as_string::<i64>().value(i).as_bytes(),
        DataType::Binary => column.as_binary::<i32>().value(i),
        _ => column.as_binary::<i64>().value(i),
    })
}

/// Hashes of keys given as columns, at a level of partitioning: how a final task
/// whose bucket does not fit cuts its rows again, and how a shuffle cuts its.
pub struct KeyHasher {
    layout: Layout,
}

impl KeyHasher {
    /// A hasher of keys of `types`.
    ///
    /// # Errors
    /// Types the row format cannot encode.
    pub fn new(types: &[DataType]) -> Result<KeyHasher> {
        Ok(KeyHasher {
            layout: Layout::of(types)?,
        })
    }

    /// Which of `buckets` each row of `columns` goes to at `level`.
    ///
    /// # Errors
    /// Columns the row format cannot encode.
    pub fn buckets(&self, columns: &[ArrayRef], level: u32, buckets: u32) -> Result<Vec<u32>> {
        let of = |h: u64| bucket_of(h, buckets);
        Ok(match &self.layout {
            Layout::Int(_) => int_values(columns[0].as_ref())?
                .into_iter()
                .map(|v| of(v.map_or_else(|| null_hash(level), |v| int_hash(v, level))))
                .collect(),
            Layout::Bytes(_) => byte_values(columns[0].as_ref())
                .into_iter()
                .map(|v| of(v.map_or_else(|| null_hash(level), |v| key_hash(v, level))))
                .collect(),
            Layout::Rows(converter) => converter
                .convert_columns(columns)?
                .iter()
                .map(|r| of(key_hash(r.as_ref(), level)))
                .collect(),
        })
    }
}

/// The distinct keys seen, numbered in order of first appearance.
pub struct GroupKeys {
    layout: Layout,
    /// The row format's keys: group numbers, tagged with their hash.
    table: Table<Tagged>,
    /// One-column string keys, with their hash and first bytes in the slot:
    /// most probes then touch only the slot, not the key bytes.
    short: Table<Slot>,
    /// One-column integer keys with their group: 16 bytes a slot, half a
    /// string slot, as the table of 100,000 keys of db-benchmark's `id6`
    /// outgrows a core's cache.
    ints: Table<IntSlot>,
    /// One-column integer keys of a small range: the group of each value from
    /// a base, in front of `ints` (which holds every key too). A row then costs
    /// an index, not a hash and a probe: db-benchmark's q4 groups 1e8 rows by
    /// 100 values of `id4`.
    dense: Dense,
    hashes: Vec<u64>,
    /// Every group's key as bytes (the row format's, a string's, or an
    /// integer's 8 bytes little-endian; empty for NULL): `ends[g]` is where
    /// group `g`'s key ends in `arena` (it starts where `g - 1`'s ends).
    ends: Vec<usize>,
    arena: Vec<u8>,
    /// The group of the NULL key, in one-column layouts (in the row format a
    /// NULL is bytes like any value).
    null: Option<u32>,
    /// The row format's buffer, reused batch after batch.
    rows: Option<Rows>,
    /// The key columns' types, as planned (a batch may hold a string column as
    /// a dictionary of it).
    types: Vec<DataType>,
    /// One string key read as dictionaries: the group of each value of the
    /// last dictionary seen (a Parquet column chunk's, shared by its batches).
    remap: Option<(ArrayRef, Vec<u32>)>,
    /// Several keys, some read as dictionaries: see [`Codes`]. `None` until
    /// such a batch comes, or once the columns have too many values to pack.
    codes: Option<Codes>,
    /// Whether the keys outgrew what [`Codes`] packs; they are then grouped
    /// as rows from there on.
    uncoded: bool,
}

impl GroupKeys {
    /// An empty table for keys of `types`.
    ///
    /// # Errors
    /// Types the row format cannot encode.
    pub fn new(types: &[DataType]) -> Result<GroupKeys> {
        Ok(GroupKeys {
            layout: Layout::of(types)?,
            table: Table::new(),
            short: Table::new(),
            ints: Table::new(),
            dense: Dense::Unknown,
            hashes: Vec::new(),
            ends: Vec::new(),
            arena: Vec::new(),
            null: None,
            rows: None,
            types: types.to_vec(),
            remap: None,
            codes: None,
            uncoded: false,
        })
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Bytes held: the keys, their hashes and ends, and the table's slots.
    pub fn size(&self) -> usize {
        let converter = match &self.layout {
            Layout::Rows(c) => c.size(),
            _ => 0,
        };
        self.arena.capacity()
            + self.hashes.capacity() * 8
            + self.ends.capacity() * 8
            + self.table.size()
            + self.short.size()
            + self.ints.size()
            + self.dense.size()
            + self.rows.as_ref().map_or(0, Rows::size)
            + converter
            + self.remap.as_ref().map_or(0, |(_, r)| r.capacity() * 4)
            + self.codes.as_ref().map_or(0, Codes::size)
    }

    /// The hash of group `g`'s key.
    pub fn hash(&self, g: usize) -> u64 {
        self.hashes[g]
    }

    /// The next group's number.
    fn next_group(&self) -> Result<u32> {
        // The last number marks a vacant slot.
        match u32::try_from(self.hashes.len()) {
            Ok(g) if g != VACANT => Ok(g),
            _ => Err(Error::Usage(
                "group by: more than 4 294 967 294 groups in one task".into(),
            )),
        }
    }

    /// The group of the NULL key, numbered now if it is new.
    fn null_group(&mut self) -> Result<u32> {
        if let Some(g) = self.null {
            return Ok(g);
        }
        let g = self.next_group()?;
        self.null = Some(g);
        self.hashes.push(null_hash(0));
        self.ends.push(self.arena.len());
        Ok(g)
    }

    /// Numbers a new group of key `bytes` (hash `h`).
    fn push_group(&mut self, bytes: &[u8], h: u64) -> Result<u32> {
        let g = self.next_group()?;
        self.arena.extend_from_slice(bytes);
        self.ends.push(self.arena.len());
        self.hashes.push(h);
        Ok(g)
    }

    /// The group of one-column key `bytes` (hash `h`), numbered now if it is new.
    fn short_group(&mut self, bytes: &[u8], h: u64) -> Result<u32> {
        let slot = Slot::new(bytes, h, VACANT)?;
        let (arena, ends) = (&self.arena, &self.ends);
        let probe = self.short.find(h, |s| {
            s.hash == h
                && s.len == slot.len
                && s.head == slot.head
                && (bytes.len() <= SLOT_BYTES || {
                    let g = s.group as usize;
                    let start = if g == 0 { 0 } else { ends[g - 1] };
                    &arena[start..ends[g]] == bytes
                })
        });
        match probe {
            Probe::Found(g) => Ok(g),
            Probe::Vacant(at) => {
                let g = self.push_group(bytes, h)?;
                self.short.insert(at, Slot { group: g, ..slot });
                Ok(g)
            }
        }
    }

    /// The group of one-column integer key `value` (hash `h`), numbered now if
    /// it is new.
    fn int_group(&mut self, value: u64, h: u64) -> Result<u32> {
        match self.ints.find(h, |s| s.value == value) {
            Probe::Found(g) => Ok(g),
            Probe::Vacant(at) => {
                let g = self.push_group(&value.to_le_bytes(), h)?;
                self.ints.insert(at, IntSlot { value, group: g });
                Ok(g)
            }
        }
    }

    /// Groups `values` (one-column integer keys) through the dense front, if
    /// their range is small enough (see [`Dense`]); says whether it did.
    fn intern_dense(&mut self, values: &[Option<u64>], out: &mut Vec<u32>) -> Result<bool> {
        let (lo, hi) = values
            .iter()
            .flatten()
            .fold((u64::MAX, 0u64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if lo > hi {
            return Ok(false);
        }
        let fits = match &self.dense {
            Dense::Off => return Ok(false),
            Dense::On { base, groups } => lo >= *base && hi - base < groups.len() as u64,
            Dense::Unknown => false,
        };
        if !fits && !self.cover(lo, hi) {
            return Ok(false);
        }
        // Out while new groups are numbered (an error leaves it to be made
        // again from the groups).
        let Dense::On { base, mut groups } = std::mem::replace(&mut self.dense, Dense::Unknown)
        else {
            return Ok(false);
        };
        for v in values {
            let g = match v {
                None => self.null_group()?,
                Some(v) => match groups[(v - base) as usize] {
                    VACANT => {
                        let g = self.int_group(*v, int_hash(*v, 0))?;
                        groups[(v - base) as usize] = g;
                        g
                    }
                    g => g,
                },
            };
            out.push(g);
        }
        self.dense = Dense::On { base, groups };
        Ok(true)
    }

    /// The groups of a 64-bit integer column without NULLs into `out`, if the
    /// dense front has every value: no copy of the values as options, and no
    /// pass for their range first (q4 at 1e8 rows: a hundred values of `id4`,
    /// known from the first batch on). False, with `out` as it was, otherwise.
    fn known_dense(&self, column: &dyn Array, out: &mut Vec<u32>) -> bool {
        let (Dense::On { base, groups }, Some(values)) = (
            &self.dense,
            column.as_primitive_opt::<arrow::datatypes::Int64Type>(),
        ) else {
            return false;
        };
        if values.null_count() > 0 {
            return false;
        }
        let start = out.len();
        for &v in values.values() {
            // As `int_values` reads it; below the base wraps past the end.
            match groups.get((v as u64).wrapping_sub(*base) as usize) {
                Some(&g) if g != VACANT => out.push(g),
                _ => {
                    out.truncate(start);
                    return false;
                }
            }
        }
        true
    }

    /// Makes the dense front cover `lo..=hi` and every key grouped so far, if
    /// that span is small enough; turns it off for good otherwise.
    fn cover(&mut self, lo: u64, hi: u64) -> bool {
        let (mut lo, mut hi) = (lo, hi);
        if let Dense::On { base, groups } = &self.dense {
            lo = lo.min(*base);
            hi = hi.max(base + groups.len() as u64 - 1);
        }
        if hi - lo >= DENSE_SPAN {
            self.dense = Dense::Off;
            return false;
        }
        // Room to grow on either side, within the span.
        let len = ((hi - lo + 1) * 2).clamp(64, DENSE_SPAN);
        let base = lo
            .saturating_sub((len - (hi - lo + 1)) / 2)
            .min(u64::MAX - (len - 1));
        let mut groups = vec![VACANT; len as usize];
        for (g, _) in self.hashes.iter().enumerate() {
            if Some(g as u32) == self.null {
                continue;
            }
            let start = if g == 0 { 0 } else { self.ends[g - 1] };
            let Ok(bytes) = <[u8; 8]>::try_from(&self.arena[start..self.ends[g]]) else {
                continue;
            };
            groups[(u64::from_le_bytes(bytes) - base) as usize] = g as u32;
        }
        self.dense = Dense::On { base, groups };
        true
    }

    /// The group of row-format key `bytes` (hash `h`), numbered now if it is new.
    fn byte_group(&mut self, bytes: &[u8], h: u64) -> Result<u32> {
        let (arena, ends) = (&self.arena, &self.ends);
        let key_of = |g: u32| {
            let g = g as usize;
            let start = if g == 0 { 0 } else { ends[g - 1] };
            &arena[start..ends[g]]
        };
        let tag = Tagged::tag(h);
        match self.table.find(Tagged::spread(tag), |t| {
            t.tag == tag && key_of(t.group) == bytes
        }) {
            Probe::Found(g) => Ok(g),
            Probe::Vacant(at) => {
                let g = self.push_group(bytes, h)?;
                self.table.insert(at, Tagged { tag, group: g });
                Ok(g)
            }
        }
    }

    /// The group number of each row of `columns` (the key columns), numbering
    /// new keys as they come, into `out`.
    ///
    /// # Errors
    /// Columns the row format cannot encode.
    pub fn intern(&mut self, columns: &[ArrayRef], out: &mut Vec<u32>) -> Result<()> {
        let planned = columns
            .iter()
            .zip(&self.types)
            .all(|(c, t)| c.data_type() == t);
        if !planned {
            if self.intern_coded(columns, out)? {
                return Ok(());
            }
            // Dictionaries that cannot be grouped on their codes: decoded.
            let decoded = columns
                .iter()
                .zip(&self.types)
                .map(|(c, t)| match c.data_type() == t {
                    true => Ok(c.clone()),
                    false => Ok(arrow::compute::cast(c, t)?),
                })
                .collect::<Result<Vec<_>>>()?;
            return self.intern(&decoded, out);
        }
        let n = columns.first().map_or(0, |c| c.len());
        out.clear();
        out.reserve(n);
        match &self.layout {
            Layout::Int(_) => {
                if self.known_dense(columns[0].as_ref(), out) {
                    return Ok(());
                }
                let values = int_values(columns[0].as_ref())?;
                if self.intern_dense(&values, out)? {
                    return Ok(());
                }
                let hashes: Vec<u64> = values
                    .iter()
                    .map(|v| v.map_or(0, |v| int_hash(v, 0)))
                    .collect();
                for (i, (v, &h)) in values.iter().zip(&hashes).enumerate() {
                    if let Some(&ahead) = hashes.get(i + AHEAD) {
                        self.ints.prefetch(ahead);
                    }
                    let g = match v {
                        None => self.null_group()?,
                        Some(v) => self.int_group(*v, h)?,
                    };
                    out.push(g);
                }
            }
            Layout::Bytes(_) => {
                let column = columns[0].clone();
                let values = byte_values(column.as_ref());
                let hashes: Vec<u64> = values
                    .iter()
                    .map(|v| v.map_or(0, |v| key_hash(v, 0)))
                    .collect();
                for (i, (v, &h)) in values.iter().zip(&hashes).enumerate() {
                    if let Some(&ahead) = hashes.get(i + AHEAD) {
                        self.short.prefetch(ahead);
                    }
                    let g = match v {
                        None => self.null_group()?,
                        Some(bytes) => self.short_group(bytes, h)?,
                    };
                    out.push(g);
                }
            }
            Layout::Rows(converter) => {
                let mut rows = match self.rows.take() {
                    Some(mut rows) => {
                        rows.clear();
                        rows
                    }
                    None => converter.empty_rows(n, 0),
                };
                converter.append(&mut rows, columns)?;
                let hashes: Vec<u64> = rows.iter().map(|r| key_hash(r.as_ref(), 0)).collect();
                for (i, (row, &h)) in rows.iter().zip(&hashes).enumerate() {
                    if let Some(&ahead) = hashes.get(i + AHEAD) {
                        self.table.prefetch(Tagged::spread(Tagged::tag(ahead)));
                    }
                    out.push(self.byte_group(row.as_ref(), h)?);
                }
                self.rows = Some(rows);
            }
        }
        Ok(())
    }

    /// The keys of groups `order` (all, in group order, when `None`) as columns.
    ///
    /// # Errors
    /// Row decoding errors.
    pub fn columns(&self, order: Option<&[u32]>) -> Result<Vec<ArrayRef>> {
        let all: Vec<u32>;
        let order = match order {
            Some(order) => order,
            None => {
                all = (0..self.len() as u32).collect();
                &all
            }
        };
        let slice = |g: u32| {
            let g = g as usize;
            let start = if g == 0 { 0 } else { self.ends[g - 1] };
            &self.arena[start..self.ends[g]]
        };
        Ok(match &self.layout {
            Layout::Int(dtype) => {
                let values: Vec<Option<u64>> = order
                    .iter()
                    .map(|&g| {
                        let bytes: [u8; 8] = slice(g).try_into().ok()?;
                        Some(u64::from_le_bytes(bytes))
                    })
                    .collect();
                vec![int_column(dtype, &values)?]
            }
            Layout::Bytes(dtype) => {
                let mut data = Vec::new();
                let mut offsets = vec![0usize];
                let mut valid = Vec::with_capacity(order.len());
                for &g in order {
                    if Some(g) != self.null {
                        data.extend_from_slice(slice(g));
                    }
                    offsets.push(data.len());
                    valid.push(Some(g) != self.null);
                }
                vec![bytes_column(dtype, data, &offsets, valid)?]
            }
            Layout::Rows(converter) => {
                let parser = converter.parser();
                let rows: Vec<_> = order.iter().map(|&g| parser.parse(slice(g))).collect();
                converter.convert_rows(rows)?
            }
        })
    }

    /// The keys of groups `range`, as columns.
    ///
    /// # Errors
    /// Row decoding errors.
    pub fn columns_of(&self, range: std::ops::Range<usize>) -> Result<Vec<ArrayRef>> {
        let order: Vec<u32> = (range.start as u32..range.end as u32).collect();
        self.columns(Some(&order))
    }

    /// Forgets every key and hands back what they held: the next keys' table
    /// grows from nothing, within the reservation its task takes for it then.
    pub fn clear(&mut self) {
        self.table = Table::new();
        self.short = Table::new();
        self.ints = Table::new();
        self.dense = Dense::Unknown;
        self.hashes = Vec::new();
        self.ends = Vec::new();
        self.arena = Vec::new();
        self.null = None;
        self.rows = None;
        // Codes lead to groups that are gone; the column's values keep their codes.
        self.remap = None;
        if let Some(codes) = &mut self.codes {
            codes.forget_groups();
        }
    }
}

/// Key bytes a [`Slot`] holds.
const SLOT_BYTES: usize = 16;

/// Integer keys spanning fewer values than this are grouped through [`Dense`]:
/// its array of groups (256 KiB at most) stays in a core's cache.
const DENSE_SPAN: u64 = 1 << 16;

/// The dense front of one-column integer keys ([`GroupKeys::intern_dense`]).
#[derive(Debug)]
enum Dense {
    /// No key seen yet.
    Unknown,
    /// The group of each value from `base` (`VACANT`: none yet).
    On { base: u64, groups: Vec<u32> },
    /// The keys spanned more than [`DENSE_SPAN`] values.
    Off,
}

impl Dense {
    fn size(&self) -> usize {
        match self {
            Dense::On { groups, .. } => groups.capacity() * 4,
            _ => 0,
        }
    }
}

/// A row-format key in the table: its group, and half its hash, from which the
/// table's hash is made again. Probes and the table's growth then never read the
/// groups' hashes, a cache miss each once a table outgrows the caches (a final
/// task of db-benchmark's q10 holds 1.7 million groups): 32 bits tell keys
/// apart before their bytes are compared, and place them well in tables of
/// fewer than 2³² slots.
#[derive(Debug, Clone, Copy)]
struct Tagged {
    tag: u32,
    group: u32,
}

impl Tagged {
    /// The tag of a key of hash `h`: its high half. A final task's keys share
    /// the top bits of their hash (their bucket's, [`bucket_of`]); the table
    /// places by the low bits of [`Tagged::spread`], made from all 32.
    fn tag(h: u64) -> u32 {
        (h >> 32) as u32
    }

    /// The table's hash of a key of tag `tag`: the tag spread over 64 bits by a
    /// multiplication with an odd constant (one-to-one).
    fn spread(tag: u32) -> u64 {
        u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl Entry for Tagged {
    const EMPTY: Tagged = Tagged {
        tag: 0,
        group: VACANT,
    };

    fn group(&self) -> u32 {
        self.group
    }

    fn hash(&self) -> u64 {
        Self::spread(self.tag)
    }
}

/// A one-column integer key in the table, with its group; its hash is made
/// again when the table grows (cheaper than a slot half as large again).
#[derive(Debug, Clone, Copy)]
struct IntSlot {
    value: u64,
    group: u32,
}

impl Entry for IntSlot {
    const EMPTY: IntSlot = IntSlot {
        value: 0,
        group: VACANT,
    };

    fn group(&self) -> u32 {
        self.group
    }

    fn hash(&self) -> u64 {
        int_hash(self.value, 0)
    }
}

/// A one-column key in the table: its hash, group, length and first bytes
/// (all of an integer's, and of strings up to 16 bytes).
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    group: u32,
    len: u32,
    head: [u8; SLOT_BYTES],
}

impl Entry for Slot {
    const EMPTY: Slot = Slot {
        hash: 0,
        group: VACANT,
        len: 0,
        head: [0; SLOT_BYTES],
    };

    fn group(&self) -> u32 {
        self.group
    }

    fn hash(&self) -> u64 {
        self.hash
    }
}

impl Slot {
    fn new(bytes: &[u8], hash: u64, group: u32) -> Result<Slot> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| Error::Usage("group by: a key of more than 4 GiB".into()))?;
        let mut head = [0u8; SLOT_BYTES];
        let n = bytes.len().min(SLOT_BYTES);
        head[..n].copy_from_slice(&bytes[..n]);
        Ok(Slot {
            hash,
            group,
            len,
            head,
        })
    }
}

/// A string or binary column of `dtype` from its values' bytes, their offsets
/// and which are valid.
fn bytes_column(
    dtype: &DataType,
    data: Vec<u8>,
    offsets: &[usize],
    valid: Vec<bool>,
) -> Result<ArrayRef> {
    fn build<T: ByteArrayType>(
        data: Vec<u8>,
        offsets: &[usize],
        nulls: Option<NullBuffer>,
    ) -> Result<ArrayRef> {
        let offsets = offsets
            .iter()
            .map(|&o| {
                T::Offset::from_usize(o).ok_or_else(|| {
                    Error::Usage("group by: string keys over 2 GiB in one batch".into())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        Ok(Arc::new(GenericByteArray::<T>::try_new(
            offsets,
            data.into(),
            nulls,
        )?))
    }
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    match dtype {
        DataType::Utf8 => build::<GenericStringType<i32>>(data, offsets, nulls),
        DataType::LargeUtf8 => build::<GenericStringType<i64>>(data, offsets, nulls),
        DataType::Binary => build::<GenericBinaryType<i32>>(data, offsets, nulls),
        _ => build::<GenericBinaryType<i64>>(data, offsets, nulls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn keys_are_numbered_by_first_appearance_nulls_included() {
        let mut keys = GroupKeys::new(&[DataType::Utf8, DataType::Int64]).unwrap();
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("x"),
            None,
            Some("x"),
            None,
            Some("y"),
        ]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 1, 2, 1]));
        let mut out = Vec::new();
        keys.intern(&[a, b], &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 0, 1, 2]);
        let cols = keys.columns(Some(&[2, 1])).unwrap();
        let s = cols[0].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((s.value(0), s.is_null(1)), ("y", true));
    }

    /// Integer keys of a small range go through the dense front, which grows to
    /// cover new values and gives way to the table when they spread: a key has
    /// one group throughout, numbered by first appearance, with its hash.
    #[test]
    fn integer_keys_keep_their_group_as_the_dense_front_grows_and_gives_way() {
        let mut keys = GroupKeys::new(&[DataType::Int64]).unwrap();
        let mut groups: std::collections::HashMap<Option<i64>, u32> = Default::default();
        let batches: Vec<Vec<Option<i64>>> = vec![
            vec![Some(5), Some(3), None, Some(5), Some(100)],
            // Below the base and past the end: covered again.
            vec![Some(1), Some(3), Some(1000), None],
            vec![Some(40_000), Some(1), Some(5)],
            // Past the span: the table alone from here.
            vec![
                Some(1 << 40),
                Some(5),
                Some(-2),
                Some(i64::MIN),
                Some(i64::MAX),
            ],
            vec![Some(3), Some(1 << 40), Some(7)],
        ];
        let mut out = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let column: ArrayRef = Arc::new(Int64Array::from(batch.clone()));
            keys.intern(&[column], &mut out).unwrap();
            for (v, &g) in batch.iter().zip(&out) {
                let next = groups.len() as u32;
                assert_eq!(*groups.entry(*v).or_insert(next), g, "{v:?} in batch {b}");
                if let Some(v) = v {
                    assert_eq!(keys.hash(g as usize), int_hash(*v as u64, 0), "{v}");
                }
            }
            let on = matches!(keys.dense, Dense::On { .. });
            assert_eq!(on, b < 3, "batch {b}: {:?}", keys.dense.size());
        }
        // Values near the top of the range, as negative numbers are (their bits
        // as unsigned), fit too; a range across zero does not.
        let mut keys = GroupKeys::new(&[DataType::Int64]).unwrap();
        let column: ArrayRef = Arc::new(Int64Array::from(vec![-1, -5, -1, -3]));
        keys.intern(&[column], &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 0, 2]);
        assert!(matches!(keys.dense, Dense::On { .. }));
        keys.clear();
        assert!(matches!(keys.dense, Dense::Unknown));
    }

    /// Every layout numbers its keys by first appearance, gives NULL a group of
    /// its own, gives the keys back with their type, and hashes a key as the
    /// [`KeyHasher`] of the same types does (which the buckets rely on).
    #[test]
    fn each_layout_round_trips_its_keys_and_hashes_as_the_hasher_does() {
        use arrow::array::{
            BinaryArray, Date32Array, LargeStringArray, TimestampMicrosecondArray, UInt64Array,
        };
        let long = "a string longer than sixteen bytes";
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![
                Some(-1),
                None,
                Some(7),
                Some(-1),
                None,
            ])),
            Arc::new(UInt64Array::from(vec![
                Some(u64::MAX),
                Some(0),
                None,
                Some(u64::MAX),
                Some(0),
            ])),
            Arc::new(Date32Array::from(vec![
                Some(19000),
                Some(-3),
                Some(19000),
                None,
                Some(-3),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1), Some(2), Some(1), None, None])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![
                Some(""),
                None,
                Some(long),
                Some(""),
                Some(long),
            ])),
            Arc::new(LargeStringArray::from(vec![
                Some("x"),
                Some("x"),
                None,
                Some("y"),
                None,
            ])),
            Arc::new(BinaryArray::from(vec![
                Some(b"\0".as_slice()),
                None,
                Some(b"".as_slice()),
                Some(b"\0".as_slice()),
                None,
            ])),
        ];
        let expected: [&[u32]; 7] = [
            &[0, 1, 2, 0, 1],
            &[0, 1, 2, 0, 1],
            &[0, 1, 0, 2, 1],
            &[0, 1, 0, 2, 2],
            &[0, 1, 2, 0, 2],
            &[0, 0, 1, 2, 1],
            &[0, 1, 2, 0, 1],
        ];
        for (column, expected) in columns.iter().zip(expected) {
            let types = [column.data_type().clone()];
            let mut keys = GroupKeys::new(&types).unwrap();
            let mut out = Vec::new();
            keys.intern(std::slice::from_ref(column), &mut out).unwrap();
            assert_eq!(out, expected, "{:?}", column.data_type());
            // The groups' keys are the column's distinct values, in first order.
            let back = keys.columns(None).unwrap();
            let firsts: Vec<u32> = (0..keys.len() as u32)
                .map(|g| out.iter().position(|&o| o == g).unwrap() as u32)
                .collect();
            let want = arrow::compute::take(column, &arrow::array::UInt32Array::from(firsts), None)
                .unwrap();
            assert_eq!(back[0].as_ref(), want.as_ref(), "{:?}", column.data_type());
            let hasher = KeyHasher::new(&types).unwrap();
            let buckets = hasher
                .buckets(std::slice::from_ref(column), 0, 1 << 20)
                .unwrap();
            for (row, &g) in out.iter().enumerate() {
                assert_eq!(buckets[row], bucket_of(keys.hash(g as usize), 1 << 20));
            }
        }
    }

    /// Keys that come as dictionaries (several dictionaries, nulls in the keys
    /// and in the values, a table cleared between batches) get the groups, the
    /// hashes and the key columns that the same keys decoded get, alone and
    /// beside an integer key, mixed with batches that come decoded.
    #[test]
    fn dictionary_keys_group_as_their_values_do() {
        use arrow::array::{DictionaryArray, Int32Array};
        use arrow::datatypes::Int32Type;
        let dictionary = |keys: Vec<Option<i32>>, values: Vec<Option<&str>>| -> ArrayRef {
            Arc::new(DictionaryArray::<Int32Type>::new(
                Int32Array::from(keys),
                Arc::new(StringArray::from(values)),
            ))
        };
        let shared = dictionary(vec![], vec![Some("b"), Some("a"), None, Some("c")]);
        let shared = shared.as_any_dictionary().values().clone();
        let with_shared = |keys: Vec<Option<i32>>| -> ArrayRef {
            Arc::new(DictionaryArray::<Int32Type>::new(
                Int32Array::from(keys),
                shared.clone(),
            ))
        };
        let strings = [
            with_shared(vec![Some(0), Some(1), None, Some(2), Some(0)]),
            with_shared(vec![Some(3), Some(3), Some(1), None, Some(2)]),
            dictionary(
                vec![Some(1), Some(0), Some(2), Some(1), None],
                vec![Some("c"), Some("d"), Some("a")],
            ),
            Arc::new(StringArray::from(vec![
                Some("d"),
                None,
                Some("e"),
                Some("b"),
                Some("a"),
            ])),
        ];
        let ints: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(1),
                Some(2),
                None,
                Some(1),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(2),
                Some(1),
                Some(1),
                Some(1),
                None,
            ])),
            // Below the values seen so far: the table of small values widens.
            Arc::new(Int64Array::from(vec![
                Some(-5),
                Some(1),
                Some(1),
                Some(-5),
                Some(1),
            ])),
            // A span too wide for the table: the values are hashed.
            Arc::new(Int64Array::from(vec![
                None,
                Some(3),
                Some(1 << 40),
                Some(2),
                Some(-5),
            ])),
        ];
        let decode = |c: &ArrayRef| arrow::compute::cast(c, &DataType::Utf8).unwrap();
        for with_ints in [false, true] {
            for clear_after in [None, Some(1)] {
                let mut types = vec![DataType::Utf8];
                if with_ints {
                    types.push(DataType::Int64);
                }
                let (mut coded, mut plain) = (
                    GroupKeys::new(&types).unwrap(),
                    GroupKeys::new(&types).unwrap(),
                );
                let hasher = KeyHasher::new(&types).unwrap();
                for (b, (s, i)) in strings.iter().zip(&ints).enumerate() {
                    let mut columns = vec![s.clone()];
                    let mut decoded = vec![decode(s)];
                    if with_ints {
                        columns.push(i.clone());
                        decoded.push(i.clone());
                    }
                    let (mut a, mut b_out) = (Vec::new(), Vec::new());
                    coded.intern(&columns, &mut a).unwrap();
                    plain.intern(&decoded, &mut b_out).unwrap();
                    let case = format!("batch {b}, ints {with_ints}, clear {clear_after:?}");
                    assert_eq!(a, b_out, "{case}");
                    assert_eq!(coded.len(), plain.len(), "{case}");
                    let buckets = hasher.buckets(&decoded, 0, 1 << 20).unwrap();
                    for (row, &g) in a.iter().enumerate() {
                        assert_eq!(coded.hash(g as usize), plain.hash(g as usize), "{case}");
                        assert_eq!(buckets[row], bucket_of(coded.hash(g as usize), 1 << 20));
                    }
                    assert_eq!(coded.columns(None).unwrap(), plain.columns(None).unwrap());
                    if clear_after == Some(b) {
                        coded.clear();
                        plain.clear();
                    }
                }
            }
        }
    }

    /// Keys whose combinations are too many for a table of every one (ten
    /// strings beside 60,000 integers spread wide) are grouped on hashed
    /// codes, as their values decoded are.
    #[test]
    fn many_combinations_of_dictionary_and_integer_keys_group_as_decoded() {
        use arrow::array::{DictionaryArray, Int32Array};
        use arrow::datatypes::Int32Type;
        let n = 120_000;
        let values: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..10).map(|i| format!("v{i}")),
        ));
        let strings: ArrayRef = Arc::new(DictionaryArray::<Int32Type>::new(
            Int32Array::from_iter_values((0..n).map(|i| i * 7 % 10)),
            values,
        ));
        let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
            (0..n).map(|i| (i % 60_001) as i64 * 3),
        ));
        let types = [DataType::Utf8, DataType::Int64];
        let (mut coded, mut plain) = (
            GroupKeys::new(&types).unwrap(),
            GroupKeys::new(&types).unwrap(),
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        coded
            .intern(&[strings.clone(), ints.clone()], &mut a)
            .unwrap();
        let decoded = arrow::compute::cast(&strings, &DataType::Utf8).unwrap();
        plain.intern(&[decoded, ints], &mut b).unwrap();
        assert_eq!(a, b);
        assert!(coded.len() > 60_000, "{}", coded.len());
        assert_eq!(coded.columns(None).unwrap(), plain.columns(None).unwrap());
    }

    #[test]
    fn buckets_spread_and_stay_in_range() {
        let mut counts = [0u32; 7];
        for i in 0u64..7000 {
            let b = bucket_of(key_hash(&i.to_le_bytes(), 0), 7);
            counts[b as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800 && c < 1200), "{counts:?}");
    }
}
