//! What a sample of a column says of its distinct values: how many a column
//! holds (the keys a grouping meets, what a top k per group keeps), and whether
//! a Parquet dictionary of a row group's values would outgrow its page.

use std::hash::BuildHasher;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;

/// The number of distinct keys `k` of a column drawn uniformly at random in which
/// `rows` rows hold `distinct` distinct ones: the root of `k (1 - exp(-rows / k))
/// = distinct`, infinite when every row is distinct. Keys in clusters (a sorted
/// column) make it an underestimate.
pub fn estimated_keys(distinct: usize, rows: usize) -> f64 {
    let (d, n) = (distinct as f64, rows as f64);
    if distinct >= rows {
        return f64::INFINITY;
    }
    let seen = |k: f64| k * -(-n / k).exp_m1();
    // `seen` grows with k, from d at k = d toward n: bisect between d and a k
    // large enough.
    let (mut lo, mut hi) = (d, d.max(1.0));
    while seen(hi) < d {
        hi *= 2.0;
    }
    for _ in 0..64 {
        let mid = 0.5 * (lo + hi);
        if seen(mid) < d {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The distinct keys `rows` rows drawn from `keys` keys are expected to hold.
pub fn expected_distinct(keys: f64, rows: usize) -> f64 {
    if keys.is_infinite() {
        return rows as f64;
    }
    keys * -(-(rows as f64) / keys).exp_m1()
}

/// The distinct values of `column`'s non-null rows, and their bytes as a
/// dictionary holds them; `None` for a type not counted (floats, nested types,
/// booleans).
pub fn distinct_values(column: &ArrayRef) -> Option<(usize, usize)> {
    // Before `seen`, which borrows the values.
    let data = column.to_data();
    let mut seen = Seen::default();
    match column.data_type() {
        DataType::Utf8 => column
            .as_string::<i32>()
            .iter()
            .flatten()
            .for_each(|v| seen.add(v.as_bytes(), v.len() + 4)),
        DataType::LargeUtf8 => column
            .as_string::<i64>()
            .iter()
            .flatten()
            .for_each(|v| seen.add(v.as_bytes(), v.len() + 4)),
        DataType::Binary => column
            .as_binary::<i32>()
            .iter()
            .flatten()
            .for_each(|v| seen.add(v, v.len() + 4)),
        DataType::LargeBinary => column
            .as_binary::<i64>()
            .iter()
            .flatten()
            .for_each(|v| seen.add(v, v.len() + 4)),
        t if t.is_primitive() && !t.is_floating() => {
            let width = t.primitive_width()?;
            let values = data.buffers().first()?.as_slice();
            let start = data.offset() * width;
            let rows = values.get(start..start + data.len() * width)?;
            for (i, value) in rows.chunks_exact(width).enumerate() {
                if column.is_valid(i) {
                    seen.add(value, width);
                }
            }
        }
        _ => return None,
    }
    Some((seen.values.len(), seen.bytes))
}

/// Values seen, as bytes (a dictionary of a column chunk holds a string and
/// its 4-byte length, a number as itself).
#[derive(Default)]
struct Seen<'a> {
    hasher: foldhash::fast::FixedState,
    values: hashbrown::HashTable<&'a [u8]>,
    /// What the values take in a dictionary.
    bytes: usize,
}

impl<'a> Seen<'a> {
    /// Counts `value`, taking `held` bytes in a dictionary, if it is new.
    fn add(&mut self, value: &'a [u8], held: usize) {
        let h = self.hasher.hash_one(value);
        if self.values.find(h, |v| *v == value).is_none() {
            let hasher = &self.hasher;
            self.values.insert_unique(h, value, |v| hasher.hash_one(v));
            self.bytes += held;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn the_number_of_keys_is_estimated_from_how_many_rows_repeat_one() {
        for (keys, rows) in [(1e6, 100_000), (2000.0, 5000), (50.0, 100_000)] {
            let seen = expected_distinct(keys, rows);
            let estimate = estimated_keys(seen.round() as usize, rows);
            assert!(
                (estimate / keys - 1.0).abs() < 0.02,
                "{keys} keys, {rows} rows: {seen} seen, estimated {estimate}"
            );
        }
        // Rows all distinct: no bound on the keys; rows drawn from them, all distinct.
        assert!(estimated_keys(10, 10).is_infinite());
        assert_eq!(expected_distinct(f64::INFINITY, 10), 10.0);
        // A uniform draw of a key space twice the rows sees 79% of the rows' count.
        assert!((expected_distinct(2e6, 1_000_000) / 1e6 - 0.787).abs() < 1e-3);
    }

    #[test]
    fn distinct_values_and_their_dictionary_bytes_are_counted() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(1),
            Some(2),
            None,
            Some(1),
            Some(3),
        ]));
        assert_eq!(distinct_values(&ints), Some((3, 24)));
        // A slice counts its own rows.
        assert_eq!(distinct_values(&ints.slice(3, 2)), Some((2, 16)));
        let names: ArrayRef = Arc::new(StringArray::from(vec!["ab", "ab", "abc", ""]));
        assert_eq!(distinct_values(&names), Some((3, 2 + 3 + 3 * 4)));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.0]));
        assert_eq!(distinct_values(&floats), None);
    }
}
