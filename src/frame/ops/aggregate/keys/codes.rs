//! Keys grouped on their values' codes, where some key columns come as
//! dictionaries (a Parquet column chunk's): the dictionary's values are hashed
//! once, not once a row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
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
}

impl Codes {
    /// Bytes held.
    pub(super) fn size(&self) -> usize {
        self.columns.iter().map(ColumnCodes::size).sum::<usize>()
            + self.groups.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
    }

    /// Forgets the groups the codes led to (the groups are gone); the
    /// columns' values keep their codes.
    pub(super) fn forget_groups(&mut self) {
        self.groups = HashTable::new();
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
        let dictionary = column
            .as_any_dictionary_opt()
            .ok_or_else(|| Error::bug("dictionary codes", column.data_type()))?;
        let values = dictionary.values();
        let cached = self
            .remap
            .as_ref()
            .is_some_and(|(seen, _)| Arc::ptr_eq(seen, values));
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
        for (i, v) in int_values(column.as_ref())?.into_iter().enumerate() {
            let h = int_hash(v.unwrap_or(u64::MAX), u32::from(v.is_none()));
            let found = self.by_int.find(h, |&(seen, _)| seen == v).map(|&(_, c)| c);
            let c = match found {
                Some(c) => c,
                None => {
                    let row = self.converter.convert_columns(&[column.slice(i, 1)])?;
                    let c = self.code(row.row(0).as_ref());
                    self.by_int.insert_unique(h, (v, c), |&(v, _)| {
                        int_hash(v.unwrap_or(u64::MAX), u32::from(v.is_none()))
                    });
                    c
                }
            };
            out.push(c);
        }
        Ok(())
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
            let dictionary = column
                .as_any_dictionary_opt()
                .ok_or_else(|| Error::bug("dictionary keys", column.data_type()))?;
            let values = dictionary.values();
            let cached = self
                .remap
                .as_ref()
                .is_some_and(|(seen, _)| Arc::ptr_eq(seen, values));
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
        let bits = codes.bits;
        let mut key = Vec::new();
        for row in 0..n {
            let packed = column_codes.iter().enumerate().fold(0u64, |p, (c, of)| {
                p | u64::from(of[row]) << (bits * c as u32)
            });
            let h = int_hash(packed, 0);
            let g = match codes.groups.find(h, |&(k, _)| k == packed) {
                Some(&(_, g)) => g,
                None => {
                    key.clear();
                    for (column, of) in codes.columns.iter().zip(&column_codes) {
                        key.extend_from_slice(column.bytes(of[row]));
                    }
                    let g = self.byte_group(&key, key_hash(&key, 0))?;
                    codes
                        .groups
                        .insert_unique(h, (packed, g), |&(k, _)| int_hash(k, 0));
                    g
                }
            };
            out.push(g);
        }
        self.codes = Some(codes);
        Ok(true)
    }
}
