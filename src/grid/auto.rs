//! `--chunks auto`: choose a chunk shape of about a target number of bytes.

/// A chunk shape for an array of `shape` with `item_size`-byte elements whose chunks
/// hold about `target_bytes` (never more, unless one element row is larger).
///
/// Like Dask's `auto` chunking, it keeps chunks close to square: starting from the
/// whole array, it halves the longest axis (relative to the others) until the chunk
/// fits. Axes of length zero keep a chunk size of one.
pub fn auto_chunks(shape: &[u64], item_size: u64, target_bytes: u64) -> Vec<u64> {
    let mut chunk: Vec<u64> = shape.iter().map(|&n| n.max(1)).collect();
    // Saturating: a shape from a file may be checked only for its element count,
    // and a product that wrapped would look like a small chunk.
    let bytes = |c: &[u64]| {
        c.iter()
            .fold(item_size.max(1), |acc, &n| acc.saturating_mul(n))
    };
    while bytes(&chunk) > target_bytes {
        let Some((axis, _)) = chunk
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 1)
            .max_by_key(|(_, &c)| c)
        else {
            break;
        };
        // Shrink just enough when one axis alone can absorb the whole excess.
        let others = bytes(&chunk) / chunk[axis];
        let wanted = (target_bytes / others.max(1)).max(1);
        chunk[axis] = if wanted >= chunk[axis] / 2 {
            wanted
        } else {
            chunk[axis].div_ceil(2)
        };
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_arrays_are_one_chunk() {
        assert_eq!(auto_chunks(&[100, 100], 8, 64 << 20), vec![100, 100]);
    }

    #[test]
    fn large_arrays_get_chunks_under_target() {
        let c = auto_chunks(&[100_000, 100_000], 8, 64 << 20);
        let bytes: u64 = c.iter().product::<u64>() * 8;
        assert!(bytes <= 64 << 20, "{c:?}");
        assert!(bytes > 16 << 20, "{c:?} too small");
        let c = auto_chunks(&[1_000_000_000], 4, 64 << 20);
        assert_eq!(c, vec![16 << 20]);
        assert_eq!(auto_chunks(&[0, 5], 8, 64), vec![1, 5]);
    }

    #[test]
    fn shapes_whose_bytes_overflow_still_get_small_chunks() {
        let c = auto_chunks(&[0, 1 << 63], 8, 64 << 20);
        assert!(c[1] * 8 <= 64 << 20, "{c:?}");
        let c = auto_chunks(&[u64::MAX, u64::MAX], 16, 64 << 20);
        assert!(
            crate::grid::checked_nbytes(&c, 16).is_some_and(|b| b <= 64 << 20),
            "{c:?}"
        );
    }
}
