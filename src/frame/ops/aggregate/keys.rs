//! Group keys: the key columns of a row encoded as bytes (Arrow's row format, so
//! any number of columns of any type, nulls included, compare as one slice), and
//! the table that numbers each distinct key in order of first appearance.
//!
//! The hash of a key is fixed (a seeded hasher, the same in every process), so the
//! bucket a key goes to is the same in the task that aggregates it partially and in
//! the one that finishes it, wherever they run.

use std::hash::BuildHasher;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};
use hashbrown::HashTable;

use crate::error::Result;

/// The seed of every key hash: fixed, so that every process agrees.
const SEED: u64 = 0x6a09_e667_f3bc_c908;

/// The hash of an encoded key, with `level` mixed in: each level of recursive
/// partitioning cuts on hash values independent of the levels above it.
pub fn key_hash(bytes: &[u8], level: u32) -> u64 {
    foldhash::fast::FixedState::with_seed(
        SEED ^ u64::from(level).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
    .hash_one(bytes)
}

/// Which of `buckets` a hash goes to: the high bits, scaled (not a modulo, so that
/// any number of buckets takes the hash's best bits).
pub fn bucket_of(hash: u64, buckets: u32) -> u32 {
    ((u128::from(hash) * u128::from(buckets)) >> 64) as u32
}

/// Hashes of keys given as columns, at a level of partitioning: how a final task
/// whose bucket does not fit cuts its rows again.
pub struct KeyHasher {
    converter: RowConverter,
}

impl KeyHasher {
    /// A hasher of keys of `types`.
    ///
    /// # Errors
    /// Types the row format cannot encode.
    pub fn new(types: &[DataType]) -> Result<KeyHasher> {
        let fields = types.iter().map(|t| SortField::new(t.clone())).collect();
        Ok(KeyHasher {
            converter: RowConverter::new(fields)?,
        })
    }

    /// Which of `buckets` each row of `columns` goes to at `level`.
    ///
    /// # Errors
    /// Columns the row format cannot encode.
    pub fn buckets(&self, columns: &[ArrayRef], level: u32, buckets: u32) -> Result<Vec<u32>> {
        let rows = self.converter.convert_columns(columns)?;
        Ok(rows
            .iter()
            .map(|r| bucket_of(key_hash(r.as_ref(), level), buckets))
            .collect())
    }
}

/// The distinct keys seen, numbered in order of first appearance.
pub struct GroupKeys {
    converter: RowConverter,
    table: HashTable<u32>,
    hashes: Vec<u64>,
    /// `ends[g]`: where group `g`'s key ends in `arena` (it starts where `g - 1`'s
    /// ends).
    ends: Vec<usize>,
    arena: Vec<u8>,
}

impl GroupKeys {
    /// An empty table for keys of `types`.
    ///
    /// # Errors
    /// Types the row format cannot encode.
    pub fn new(types: &[DataType]) -> Result<GroupKeys> {
        let fields = types.iter().map(|t| SortField::new(t.clone())).collect();
        Ok(GroupKeys {
            converter: RowConverter::new(fields)?,
            table: HashTable::new(),
            hashes: Vec::new(),
            ends: Vec::new(),
            arena: Vec::new(),
        })
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes held: the keys, their hashes and ends, and the table's slots.
    pub fn size(&self) -> usize {
        self.arena.capacity()
            + self.hashes.capacity() * 8
            + self.ends.capacity() * 8
            + self.table.capacity() * 5
            + self.converter.size()
    }

    /// The hash of group `g`'s key.
    pub fn hash(&self, g: usize) -> u64 {
        self.hashes[g]
    }

    /// The group number of each row of `columns` (the key columns), numbering
    /// new keys as they come, into `out`.
    ///
    /// # Errors
    /// Columns the row format cannot encode.
    pub fn intern(&mut self, columns: &[ArrayRef], out: &mut Vec<u32>) -> Result<()> {
        let rows = self.converter.convert_columns(columns)?;
        out.clear();
        out.reserve(rows.num_rows());
        self.table
            .reserve(rows.num_rows().min(1 << 16), |&g| self.hashes[g as usize]);
        for row in rows.iter() {
            let bytes = row.as_ref();
            let h = key_hash(bytes, 0);
            let (arena, ends, hashes) = (&self.arena, &self.ends, &self.hashes);
            let key_of = |g: u32| {
                let g = g as usize;
                let start = if g == 0 { 0 } else { ends[g - 1] };
                &arena[start..ends[g]]
            };
            let found = self
                .table
                .find(h, |&g| hashes[g as usize] == h && key_of(g) == bytes)
                .copied();
            let g = match found {
                Some(g) => g,
                None => {
                    let g = u32::try_from(self.ends.len()).map_err(|_| {
                        crate::error::Error::Usage(
                            "group by: more than 4 294 967 295 groups in one task".into(),
                        )
                    })?;
                    self.arena.extend_from_slice(bytes);
                    self.ends.push(self.arena.len());
                    self.hashes.push(h);
                    let hashes = &self.hashes;
                    self.table.insert_unique(h, g, |&k| hashes[k as usize]);
                    g
                }
            };
            out.push(g);
        }
        Ok(())
    }

    /// The keys of groups `order` (all, in group order, when `None`) as columns.
    ///
    /// # Errors
    /// Row decoding errors.
    pub fn columns(&self, order: Option<&[u32]>) -> Result<Vec<ArrayRef>> {
        let parser = self.converter.parser();
        let key = |g: usize| {
            let start = if g == 0 { 0 } else { self.ends[g - 1] };
            parser.parse(&self.arena[start..self.ends[g]])
        };
        let rows: Vec<_> = match order {
            Some(order) => order.iter().map(|&g| key(g as usize)).collect(),
            None => (0..self.len()).map(key).collect(),
        };
        Ok(self.converter.convert_rows(rows)?)
    }

    /// Forgets every key, keeping the allocations' capacity for the next ones
    /// only up to what a fresh table would grow to soon.
    pub fn clear(&mut self) {
        self.table = HashTable::new();
        self.hashes = Vec::new();
        self.ends = Vec::new();
        self.arena = Vec::new();
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
