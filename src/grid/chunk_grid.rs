//! Chunk grids: how an array's shape is cut into chunks along each axis.

use super::{indices_c_order, shape_text, Subset};
use crate::error::{Error, Result};

/// How one axis of length `len` is cut into chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AxisChunks {
    /// Chunks of `size` elements; the last one may be shorter.
    Regular {
        /// Chunk size (at least 1).
        size: u64,
        /// Length of the axis.
        len: u64,
    },
    /// Explicit chunk sizes, as Dask's `chunks` tuples; they sum to the axis length.
    Irregular(Vec<u64>),
}

impl AxisChunks {
    /// The length of the axis.
    pub fn len(&self) -> u64 {
        match self {
            AxisChunks::Regular { len, .. } => *len,
            // Saturating: sizes from a file are checked when it is opened.
            AxisChunks::Irregular(sizes) => sizes.iter().fold(0u64, |a, &s| a.saturating_add(s)),
        }
    }

    /// True when the axis has length zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of chunks along the axis.
    pub fn count(&self) -> u64 {
        match self {
            AxisChunks::Regular { size, len } => len.div_ceil(*size),
            AxisChunks::Irregular(sizes) => sizes.len() as u64,
        }
    }

    /// Start and length of chunk `i`.
    pub fn span(&self, i: u64) -> (u64, u64) {
        match self {
            AxisChunks::Regular { size, len } => {
                let start = i.saturating_mul(*size);
                (start, (*size).min(len.saturating_sub(start)))
            }
            AxisChunks::Irregular(sizes) => {
                let i = (i as usize).min(sizes.len());
                let start = sizes[..i].iter().sum();
                (start, sizes.get(i).copied().unwrap_or(0))
            }
        }
    }

    /// The largest chunk along the axis.
    pub fn max_size(&self) -> u64 {
        match self {
            AxisChunks::Regular { size, len } => (*size).min(*len),
            AxisChunks::Irregular(sizes) => sizes.iter().copied().max().unwrap_or(0),
        }
    }

    /// Every chunk size in order, as Dask writes them.
    pub fn sizes(&self) -> Vec<u64> {
        (0..self.count()).map(|i| self.span(i).1).collect()
    }

    /// Indices of the chunks that overlap `[start, start + len)`.
    pub fn overlapping(&self, start: u64, len: u64) -> std::ops::Range<u64> {
        if len == 0 {
            return 0..0;
        }
        let end = start + len;
        match self {
            AxisChunks::Regular { size, .. } => start / size..end.div_ceil(*size),
            AxisChunks::Irregular(sizes) => {
                let (mut first, mut last, mut pos) = (None, 0, 0);
                for (i, s) in sizes.iter().enumerate() {
                    let (lo, hi) = (pos, pos + s);
                    if hi > start && lo < end {
                        first.get_or_insert(i as u64);
                        last = i as u64 + 1;
                    }
                    pos = hi;
                }
                first.unwrap_or(0)..last
            }
        }
    }
}

/// A chunk grid over an n-dimensional shape: one [`AxisChunks`] per axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkGrid {
    axes: Vec<AxisChunks>,
}

impl ChunkGrid {
    /// A regular grid of `chunk_shape` over `shape`.
    ///
    /// # Errors
    /// When the dimensionalities differ or a chunk size is zero.
    pub fn regular(shape: &[u64], chunk_shape: &[u64]) -> Result<Self> {
        if shape.len() != chunk_shape.len() {
            return Err(Error::InvalidOption {
                option: "chunks",
                value: shape_text(chunk_shape),
                reason: format!(
                    "it has {} dimensions but the array has {} (shape {})",
                    chunk_shape.len(),
                    shape.len(),
                    shape_text(shape)
                ),
            });
        }
        if let Some(axis) = chunk_shape.iter().position(|&c| c == 0) {
            return Err(Error::InvalidOption {
                option: "chunks",
                value: shape_text(chunk_shape),
                reason: format!("the size along axis {axis} is zero; chunk sizes are at least 1"),
            });
        }
        Ok(ChunkGrid {
            axes: shape
                .iter()
                .zip(chunk_shape)
                .map(|(&len, &size)| AxisChunks::Regular { size, len })
                .collect(),
        })
    }

    /// A grid from per-axis chunk descriptions.
    pub fn from_axes(axes: Vec<AxisChunks>) -> Self {
        ChunkGrid { axes }
    }

    /// The per-axis chunking.
    pub fn axes(&self) -> &[AxisChunks] {
        &self.axes
    }

    /// The array shape the grid covers.
    pub fn shape(&self) -> Vec<u64> {
        self.axes.iter().map(AxisChunks::len).collect()
    }

    /// Number of chunks along each axis.
    pub fn grid_shape(&self) -> Vec<u64> {
        self.axes.iter().map(AxisChunks::count).collect()
    }

    /// Total number of chunks (saturating; readers check it with
    /// [`super::size::require_chunk_count`]).
    pub fn num_chunks(&self) -> u64 {
        super::num_elements(&self.grid_shape())
    }

    /// The shape of the largest chunk (the regular chunk shape, clipped to the array).
    pub fn max_chunk_shape(&self) -> Vec<u64> {
        self.axes.iter().map(AxisChunks::max_size).collect()
    }

    /// The regular chunk shape, if every axis is regular.
    pub fn regular_chunk_shape(&self) -> Option<Vec<u64>> {
        self.axes
            .iter()
            .map(|a| match a {
                AxisChunks::Regular { size, .. } => Some(*size),
                AxisChunks::Irregular(_) => None,
            })
            .collect()
    }

    /// The region of the array covered by chunk `index`.
    pub fn chunk_subset(&self, index: &[u64]) -> Subset {
        let (start, shape) = self
            .axes
            .iter()
            .zip(index)
            .map(|(axis, &i)| axis.span(i))
            .unzip();
        Subset::new(start, shape)
    }

    /// Every chunk index, in C order, lazily.
    pub fn chunk_indices(&self) -> impl Iterator<Item = Vec<u64>> {
        indices_c_order(&self.grid_shape())
    }

    /// The chunks overlapping `subset`, as per-axis ranges of chunk indices.
    pub fn overlapping(&self, subset: &Subset) -> Vec<std::ops::Range<u64>> {
        self.axes
            .iter()
            .zip(subset.start().iter().zip(subset.shape()))
            .map(|(axis, (&s, &n))| axis.overlapping(s, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_grid_clips_last_chunk() {
        let g = ChunkGrid::regular(&[10, 7], &[4, 7]).unwrap();
        assert_eq!(g.grid_shape(), vec![3, 1]);
        assert_eq!(g.chunk_subset(&[2, 0]), Subset::new(vec![8, 0], vec![2, 7]));
        assert_eq!(g.num_chunks(), 3);
    }

    #[test]
    fn irregular_axis_spans_and_overlaps() {
        let a = AxisChunks::Irregular(vec![30, 30, 30, 10]);
        assert_eq!(a.span(3), (90, 10));
        assert_eq!(a.overlapping(25, 10), 0..2);
        assert_eq!(a.overlapping(95, 5), 3..4);
        let r = AxisChunks::Regular { size: 4, len: 10 };
        assert_eq!(r.overlapping(3, 2), 0..2);
        assert_eq!(r.sizes(), vec![4, 4, 2]);
    }

    #[test]
    fn mismatched_or_zero_chunks_are_errors() {
        let e = ChunkGrid::regular(&[10, 7], &[4]).unwrap_err();
        assert!(e.to_string().contains("1 dimensions but the array has 2"));
        assert!(ChunkGrid::regular(&[10], &[0]).is_err());
    }
}
