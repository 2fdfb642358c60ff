//! Geometry: shapes, chunk grids and subsets of n-dimensional arrays.
//!
//! Pure and free of I/O, so every rule here is unit-tested directly. A chunk grid
//! may be regular (one chunk size per axis, the last chunk possibly shorter, as
//! Zarr) or irregular (explicit sizes per axis, as Dask's `chunks` tuples).

mod auto;
mod chunk_grid;
pub mod rechunk;
pub mod size;
mod subset;

pub use auto::auto_chunks;
pub use chunk_grid::{AxisChunks, ChunkGrid};
pub use size::{checked_nbytes, checked_num_elements, shape_text, tuple_text};
pub use subset::{copy_region, region_runs, Subset};

/// Number of elements in an array of `shape` (1 for a scalar), saturating at
/// `u64::MAX`.
///
/// Shapes read from files are checked with [`size`]'s helpers when they are
/// opened, so the product of a valid shape never saturates; saturating (rather than
/// wrapping or panicking) keeps an unchecked caller from ever seeing a small size.
pub fn num_elements(shape: &[u64]) -> u64 {
    checked_num_elements(shape).unwrap_or(u64::MAX)
}

/// Iterates over every index of an n-dimensional grid of `extents`, in C order
/// (last axis fastest). Yields nothing when any extent is zero; one empty index for
/// zero dimensions. Lazy: nothing is allocated for indices not yet reached.
pub fn indices_c_order(extents: &[u64]) -> impl Iterator<Item = Vec<u64>> + 'static {
    let extents = extents.to_vec();
    let total = num_elements(&extents);
    (0..total).map(move |mut flat| {
        let mut index = vec![0; extents.len()];
        for axis in (0..extents.len()).rev() {
            index[axis] = flat % extents[axis];
            flat /= extents[axis];
        }
        index
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_order_walks_last_axis_fastest() {
        let all: Vec<_> = indices_c_order(&[2, 3]).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[1], vec![0, 1]);
        assert_eq!(all[3], vec![1, 0]);
        assert_eq!(indices_c_order(&[2, 0]).count(), 0);
        assert_eq!(indices_c_order(&[]).count(), 1);
    }
}
