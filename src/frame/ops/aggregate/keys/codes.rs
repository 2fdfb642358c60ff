//! Keys grouped on their values' codes, where some key columns come as
//! dictionaries (a Parquet column chunk's): the dictionary's values are hashed
//! once, not once a row.

use std::sync::Arc;

use arrow::array::{AnyDictionaryArray, Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, SortField};
use hashbrown::HashTable;

use super::{byte_value, int_hash, int_like, int_values, key_hash, GroupKeys, Layout};
use crate::error::{Error, Result};

/// A dictionary value no row has held yet.
const UNSEEN: u32 = u32::MAX;

/// Key columns at most this many are grouped on their values' codes (packed
/// into 64 bits, a quarter each) when some come as dictionaries.
pub const CODED_COLUMNS: usize = 4;

/// Distinct values of one key column above which its codes are no longer
/// kept: a table that large misses the cache, and the codes then cost more
/// than the row format they spare.
const CODED_VALUES: usize = 1 << 16;

/// The most combinations of key values grouped through a table indexed by
/// their codes (1 MiB of group numbers; db-benchmark's q2 and q9 have 10,000).
const DENSE_GROUPS: usize = 1 << 18;

/// The widest span of values an integer key column is coded through a table
/// indexed by value (256 KiB of codes).
const DENSE_SPAN: i64 = 1 << 16;

/// Several key columns grouped on codes: each column numbers its distinct
/// values (a dictionary's values once per dictionary, an integer column's row
/// by row), a row's codes pack into 64 bits, and the packed codes find their
/// group in a small table. The group itself, when new, is found as the row
/// format finds it (its key the concatenation of the columns' row-format
/// encodings, which is what Arrow's row format is), so a group has the same
/// number and hash whichever way its rows came.
pub(super) struct Codes {
    columns: Vec<ColumnCodes>,
    /// Packed codes and their group.
    groups: HashTable<(u64, u32)>,
    /// Bits of each column's code in the packed key.
    bits: u32,
    /// Where the columns' numbers of values multiply to at most
    /// [`DENSE_GROUPS`]: those numbers, and the group of each combination of
    /// codes (mixed radix, the first column's code changing fastest).
    dense: Option<(Vec<usize>, Vec<u32>)>,
}

impl Codes {
    /// Bytes held.
    pub(super) fn size(&self) -> usize {
        self.columns.iter().map(ColumnCodes::size).sum::<usize>()
            + self.groups.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
            + self.dense.as_ref().map_or(0, |(_, t)| t.capacity() * 4)
    }

    /// Forgets the groups the codes led to (the groups are gone); the
    /// columns' values keep their codes.
    pub(super) fn forget_groups(&mut self) {
        self.groups = HashTable::new();
        self.dense = None;
    }
}

/// One key column's distinct values, numbered.
struct ColumnCodes {
    /// The row format of the column alone.
    converter: RowConverter,
    /// Each code's value in the row format: `ends[c]` is where code `c`'s
    /// bytes end in `arena`.
    ends: Vec<usize>,
    arena: Vec<u8>,
    /// Row-format bytes (with their hash) and their code.
    by_bytes: HashTable<(u64, u32)>,
    /// Integer values (by their 64 bits, `None` for NULL) and their code.
    by_int: HashTable<(Option<u64>, u32)>,
    /// The code of each value of the last dictionary seen.
    remap: Option<(ArrayRef, Vec<u32>)>,
    /// Integer columns of small span: the lowest value covered, and the code
    /// of each value from it (see [`ColumnCodes::dense_codes`]).
    dense: Option<(i64, Vec<u32>)>,
}

impl ColumnCodes {
    fn new(dtype: &DataType) -> Result<ColumnCodes> {
        Ok(ColumnCodes {
            converter: RowConverter::new(vec![SortField::new(dtype.clone())])?,
            ends: Vec::new(),
            arena: Vec::new(),
            by_bytes: HashTable::new(),
            by_int: HashTable::new(),
            remap: None,
            dense: None,
        })
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn size(&self) -> usize {
        self.converter.size()
            + self.arena.capacity()
            + self.ends.capacity() * 8
            + self.by_bytes.capacity() * 13
            + self.by_int.capacity() * 25
            + self.remap.as_ref().map_or(0, |(_, r)| r.capacity() * 4)
            + self.dense.as_ref().map_or(0, |(_, t)| t.capacity() * 4)
    }

    fn bytes(&self, code: u32) -> &[u8] {
        let c = code as usize;
        let start = if c == 0 { 0 } else { self.ends[c - 1] };
        &self.arena[start..self.ends[c]]
    }

    /// The code of a value given in the row format, numbered now if new.
    fn code(&mut self, row: &[u8]) -> u32 {
        let h = key_hash(row, 0);
        let (arena, ends) = (&self.arena, &self.ends);
        let found = self.by_bytes.find(h, |&(hash, c)| {
            let c = c as usize;
            let start = if c == 0 { 0 } else { ends[c - 1] };
            hash == h && &arena[start..ends[c]] == row
        });
        if let Some(&(_, c)) = found {
            return c;
        }
        let c = self.ends.len() as u32;
        self.arena.extend_from_slice(row);
        self.ends.push(self.arena.len());
        self.by_bytes.insert_unique(h, (h, c), |&(hash, _)| hash);
        c
    }

    /// The codes of a dictionary column's rows into `out`: its values
    /// numbered once per dictionary.
    fn dictionary_codes(&mut self, column: &dyn Array, out: &mut Vec<u32>) -> Result<()> {
        let (dictionary, cached) = dictionary_of(column, &self.remap)?;
        let values = dictionary.values();
        if !cached {
            let rows = self
                .converter
                .convert_columns(std::slice::from_ref(values))?;
            let remap: Vec<u32> = rows.iter().map(|r| self.code(r.as_ref())).collect();
            self.remap = Some((values.clone(), remap));
        }
        let null = self.null_code(values.data_type())?;
        let remap = self.remap.as_ref().map_or(&[][..], |(_, r)| r.as_slice());
        out.clear();
        let keys = dictionary.normalized_keys();
        match column.nulls() {
            None => out.extend(keys.iter().map(|&k| remap[k])),
            Some(nulls) => {
                out.extend(
                    keys.iter()
                        .zip(nulls.iter())
                        .map(|(&k, valid)| if valid { remap[k] } else { null }),
                )
            }
        }
        Ok(())
    }

    /// The code of NULL in a column of `dtype`.
    fn null_code(&mut self, dtype: &DataType) -> Result<u32> {
        let rows = self
            .converter
            .convert_columns(&[arrow::array::new_null_array(dtype, 1)])?;
        Ok(self.code(rows.row(0).as_ref()))
    }

    /// The codes of an integer-like column's rows into `out`.
    fn int_codes(&mut self, column: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        if self.dense_codes(column, out)? {
            return Ok(());
        }
        for (i, v) in int_values(column.as_ref())?.into_iter().enumerate() {
            let c = self.int_code(v, column, i)?;
            out.push(c);
        }
        Ok(())
    }

    /// The code of integer value `v` (`None` for NULL), row `i` of `column`,
    /// numbered now if new.
    fn int_code(&mut self, v: Option<u64>, column: &ArrayRef, i: usize) -> Result<u32> {
        let hash = |v: Option<u64>| int_hash(v.unwrap_or(u64::MAX), u32::from(v.is_none()));
        let h = hash(v);
        if let Some(&(_, c)) = self.by_int.find(h, |&(seen, _)| seen == v) {
            return Ok(c);
        }
        let row = self.converter.convert_columns(&[column.slice(i, 1)])?;
        let c = self.code(row.row(0).as_ref());
        self.by_int.insert_unique(h, (v, c), |&(v, _)| hash(v));
        Ok(c)
    }

    /// The codes of a 64-bit integer column whose values span fewer than
    /// [`DENSE_SPAN`] (db-benchmark's `id4`: 1 to 100), by a table indexed by
    /// value: no hash a row. False, with nothing done, for other columns.
    fn dense_codes(&mut self, column: &ArrayRef, out: &mut Vec<u32>) -> Result<bool> {
        let Some(values) = column.as_primitive_opt::<Int64Type>() else {
            return Ok(false);
        };
        if column.null_count() == 0 && self.known_dense_codes(values.values(), out) {
            return Ok(true);
        }
        let (Some(lo), Some(hi)) = (arrow::compute::min(values), arrow::compute::max(values))
        else {
            return Ok(false);
        };
        let (base, mut table) = self.dense.take().unwrap_or((lo, Vec::new()));
        let end = base.saturating_add(table.len() as i64);
        let (start, stop) = (base.min(lo), end.max(hi.saturating_add(1)));
        if stop.saturating_sub(start) > DENSE_SPAN {
            self.dense = Some((base, table));
            return Ok(false);
        }
        if start < base || stop > end {
            let mut wider = vec![UNSEEN; (stop - start) as usize];
            let at = (base - start) as usize;
            wider[at..at + table.len()].copy_from_slice(&table);
            table = wider;
        }
        let found = (|| -> Result<()> {
            let null = match column.null_count() {
                0 => UNSEEN,
                _ => {
                    let i = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
                    self.int_code(None, column, i)?
                }
            };
            let nulls = column.nulls().filter(|n| n.null_count() > 0);
            for (i, &v) in values.values().iter().enumerate() {
                if nulls.is_some_and(|n| n.is_null(i)) {
                    out.push(null);
                    continue;
                }
                let slot = &mut table[(v - start) as usize];
                if *slot == UNSEEN {
                    *slot = self.int_code(Some(v as u64), column, i)?;
                }
                out.push(*slot);
            }
            Ok(())
        })();
        self.dense = Some((start, table));
        found?;
        Ok(true)
    }
}

impl ColumnCodes {
    /// The codes of `values` (no NULL among them) into `out`, if the dense
    /// table has every one: no pass for their range first, which was most of
    /// the work of coding db-benchmark's `id4` (1 to 100) once the table
    /// held them. False, with `out` empty, otherwise.
    fn known_dense_codes(&self, values: &[i64], out: &mut Vec<u32>) -> bool {
        let Some((base, table)) = &self.dense else {
            return false;
        };
        out.reserve(values.len());
        for &v in values {
            // Below the base wraps to past the end.
            match table.get(v.wrapping_sub(*base) as u64 as usize) {
                Some(&c) if c != UNSEEN => out.push(c),
                _ => {
                    out.clear();
                    return false;
                }
            }
        }
        true
    }
}

impl GroupKeys {
    /// Groups the rows of key columns some of which come as dictionaries of
    /// their planned type, on the dictionaries' codes (see [`Codes`]); false,
    /// with nothing done, for columns that cannot be.
    pub(super) fn intern_coded(
        &mut self,
        columns: &[ArrayRef],
        out: &mut Vec<u32>,
    ) -> Result<bool> {
        let is_dictionary_of = |c: &ArrayRef, t: &DataType| matches!(c.data_type(), DataType::Dictionary(_, v) if **v == *t);
        if let (Layout::Bytes(dtype), [column]) = (&self.layout, columns) {
            if !is_dictionary_of(column, dtype) {
                return Ok(false);
            }
            // One key: each dictionary value's group, found once.
            let (dictionary, cached) = dictionary_of(column.as_ref(), &self.remap)?;
            let values = dictionary.values();
            if !cached {
                // Each value's group is found when a row first holds it: a
                // value no row holds makes no group.
                self.remap = Some((values.clone(), vec![UNSEEN; values.len()]));
            }
            let (values, mut remap) = self
                .remap
                .take()
                .ok_or_else(|| Error::bug("dictionary keys", "no remap"))?;
            let keys = dictionary.normalized_keys();
            let nulls = column.nulls().cloned();
            out.clear();
            out.reserve(keys.len());
            let found = (|| -> Result<()> {
                for (row, &k) in keys.iter().enumerate() {
                    if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                        out.push(self.null_group()?);
                        continue;
                    }
                    if remap[k] == UNSEEN {
                        remap[k] = match byte_value(values.as_ref(), k) {
                            None => self.null_group()?,
                            Some(bytes) => self.short_group(bytes, key_hash(bytes, 0))?,
                        };
                    }
                    out.push(remap[k]);
                }
                Ok(())
            })();
            self.remap = Some((values, remap));
            found?;
            return Ok(true);
        }
        let coded = matches!(self.layout, Layout::Rows(_))
            && !self.uncoded
            && (2..=CODED_COLUMNS).contains(&columns.len())
            && columns
                .iter()
                .zip(&self.types)
                .all(|(c, t)| is_dictionary_of(c, t) || (c.data_type() == t && int_like(t)));
        if !coded {
            return Ok(false);
        }
        let mut codes = match self.codes.take() {
            Some(codes) => codes,
            None => Codes {
                columns: self
                    .types
                    .iter()
                    .map(ColumnCodes::new)
                    .collect::<Result<_>>()?,
                groups: HashTable::new(),
                bits: 64 / columns.len() as u32,
                dense: None,
            },
        };
        let mut column_codes: Vec<Vec<u32>> = vec![Vec::new(); columns.len()];
        for ((column, codes), out) in columns
            .iter()
            .zip(&mut codes.columns)
            .zip(&mut column_codes)
        {
            match column.data_type() {
                DataType::Dictionary(_, _) => codes.dictionary_codes(column.as_ref(), out)?,
                _ => codes.int_codes(column, out)?,
            }
        }
        if codes.columns.iter().any(|c| c.len() > CODED_VALUES) {
            // Too many values to pack, or to hold in a cache: rows from now on.
            self.uncoded = true;
            return Ok(false);
        }
        let n = columns[0].len();
        codes
            .groups
            .reserve(n.min(1 << 16), |&(k, _)| int_hash(k, 0));
        out.clear();
        out.reserve(n);
        let found = self.coded_groups(&mut codes, &column_codes, n, out);
        self.codes = Some(codes);
        found?;
        Ok(true)
    }

    /// The groups of `n` rows of the columns' codes `column_codes`, into
    /// `out`: through a table indexed by the codes where the columns' values
    /// are few enough that every combination has a slot, else by hashing the
    /// packed codes.
    fn coded_groups(
        &mut self,
        codes: &mut Codes,
        column_codes: &[Vec<u32>],
        n: usize,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let Codes {
            columns,
            groups,
            bits,
            dense,
        } = codes;
        let bits = *bits;
        let pack = |row_codes: &mut dyn Iterator<Item = u32>| {
            row_codes.enumerate().fold(0u64, |p, (c, code)| {
                p | u64::from(code) << (bits * c as u32)
            })
        };
        let radices: Vec<usize> = columns.iter().map(|c| c.len().max(1)).collect();
        let slots = radices
            .iter()
            .try_fold(1usize, |p, &r| p.checked_mul(r))
            .filter(|&p| p <= DENSE_GROUPS);
        let strides: Vec<usize> = radices
            .iter()
            .scan(1usize, |stride, &r| {
                let s = *stride;
                *stride = stride.saturating_mul(r);
                Some(s)
            })
            .collect();
        if let Some(slots) = slots {
            if dense.as_ref().is_none_or(|(seen, _)| *seen != radices) {
                // New values widened a column: place the groups known so far.
                let mut table = vec![UNSEEN; slots];
                for &(packed, g) in groups.iter() {
                    let slot: usize = strides
                        .iter()
                        .enumerate()
                        .map(|(c, s)| {
                            ((packed >> (bits * c as u32)) as u32 & mask(bits)) as usize * s
                        })
                        .sum();
                    table[slot] = g;
                }
                *dense = Some((radices.clone(), table));
            }
        } else {
            *dense = None;
        }
        let mut key = Vec::new();
        // The group of packed codes, numbered now if new.
        let mut group_of = |keys: &mut GroupKeys, packed: u64| -> Result<u32> {
            let h = int_hash(packed, 0);
            if let Some(&(_, g)) = groups.find(h, |&(k, _)| k == packed) {
                return Ok(g);
            }
            key.clear();
            for (c, column) in columns.iter().enumerate() {
                let code = (packed >> (bits * c as u32)) as u32 & mask(bits);
                key.extend_from_slice(column.bytes(code));
            }
            let g = keys.byte_group(&key, key_hash(&key, 0))?;
            groups.insert_unique(h, (packed, g), |&(k, _)| int_hash(k, 0));
            Ok(g)
        };
        out.clear();
        out.reserve(n);
        let Some(_) = slots else {
            for row in 0..n {
                let packed = pack(&mut column_codes.iter().map(|of| of[row]));
                out.push(group_of(self, packed)?);
            }
            return Ok(());
        };
        let Some((_, table)) = dense.as_mut() else {
            return Err(Error::bug("coded groups", "no table"));
        };
        for row in 0..n {
            let slot: usize = column_codes
                .iter()
                .zip(&strides)
                .map(|(of, s)| of[row] as usize * s)
                .sum();
            let mut g = table[slot];
            if g == UNSEEN {
                let packed = pack(&mut column_codes.iter().map(|of| of[row]));
                g = group_of(self, packed)?;
                table[slot] = g;
            }
            out.push(g);
        }
        Ok(())
    }
}

/// A dictionary column's dictionary, and whether `remap` was made for its
/// values (a Parquet column chunk's batches share them).
fn dictionary_of<'a>(
    column: &'a dyn Array,
    remap: &Option<(ArrayRef, Vec<u32>)>,
) -> Result<(&'a dyn AnyDictionaryArray, bool)> {
    let dictionary = column
        .as_any_dictionary_opt()
        .ok_or_else(|| Error::bug("dictionary keys", column.data_type()))?;
    let values = dictionary.values();
    let cached = remap
        .as_ref()
        .is_some_and(|(seen, _)| Arc::ptr_eq(seen, values));
    Ok((dictionary, cached))
}

/// The low `bits` bits.
fn mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}
