//! Rectangular regions of an array and copies between them.

/// A rectangular region: a start and a shape per axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    start: Vec<u64>,
    shape: Vec<u64>,
}

impl Subset {
    /// A region starting at `start` with extent `shape`.
    ///
    /// # Panics
    /// When `start` and `shape` differ in length (a programming error).
    pub fn new(start: Vec<u64>, shape: Vec<u64>) -> Self {
        assert_eq!(
            start.len(),
            shape.len(),
            "subset start and shape differ in rank"
        );
        Subset { start, shape }
    }

    /// The whole of an array of `shape`.
    pub fn full(shape: &[u64]) -> Self {
        Subset::new(vec![0; shape.len()], shape.to_vec())
    }

    /// Start per axis.
    pub fn start(&self) -> &[u64] {
        &self.start
    }

    /// Extent per axis.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// End (exclusive) per axis.
    pub fn end(&self) -> Vec<u64> {
        self.start
            .iter()
            .zip(&self.shape)
            .map(|(s, n)| s + n)
            .collect()
    }

    /// True when the region has the rank of `shape` and lies inside it.
    pub fn fits_in(&self, shape: &[u64]) -> bool {
        self.start.len() == shape.len()
            && self
                .start
                .iter()
                .zip(&self.shape)
                .zip(shape)
                .all(|((&s, &n), &len)| s.checked_add(n).is_some_and(|end| end <= len))
    }

    /// Number of elements in the region.
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The overlap of two regions, if any.
    pub fn intersect(&self, other: &Subset) -> Option<Subset> {
        let mut start = Vec::with_capacity(self.start.len());
        let mut shape = Vec::with_capacity(self.start.len());
        for axis in 0..self.start.len() {
            let lo = self.start[axis].max(other.start[axis]);
            let hi =
                (self.start[axis] + self.shape[axis]).min(other.start[axis] + other.shape[axis]);
            if hi <= lo {
                return None;
            }
            start.push(lo);
            shape.push(hi - lo);
        }
        Some(Subset::new(start, shape))
    }

    /// This region expressed relative to `origin` (which must contain it).
    pub fn relative_to(&self, origin: &[u64]) -> Subset {
        Subset::new(
            self.start.iter().zip(origin).map(|(s, o)| s - o).collect(),
            self.shape.clone(),
        )
    }
}

/// Copies the elements of `region` from `src` (a C-order buffer of `src_shape`) into
/// `dst` (a C-order buffer of `dst_shape`) at `dst_at`, each element `item` bytes.
///
/// The innermost contiguous run is copied with one `copy_from_slice`, so whole-row
/// copies cost one memcpy per row.
///
/// # Panics
/// When the region does not fit either buffer (a programming error).
pub fn copy_region(
    src: &[u8],
    src_shape: &[u64],
    region: &Subset,
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_at: &[u64],
    item: usize,
) {
    let rank = src_shape.len();
    if rank == 0 {
        dst[..item].copy_from_slice(&src[..item]);
        return;
    }
    // Merge trailing axes that are copied whole in both buffers into one run.
    let mut run_axis = rank - 1;
    let mut run = region.shape()[rank - 1] as usize;
    while run_axis > 0
        && region.shape()[run_axis] == src_shape[run_axis]
        && region.shape()[run_axis] == dst_shape[run_axis]
    {
        run_axis -= 1;
        run *= region.shape()[run_axis] as usize;
    }
    let run_bytes = run * item;
    let strides = |shape: &[u64]| {
        let mut s = vec![1u64; rank];
        for axis in (0..rank - 1).rev() {
            s[axis] = s[axis + 1] * shape[axis + 1];
        }
        s
    };
    let (ss, ds) = (strides(src_shape), strides(dst_shape));
    let outer: Vec<u64> = region.shape()[..run_axis].to_vec();
    for idx in super::indices_c_order(&outer) {
        let mut so = 0u64;
        let mut d_off = 0u64;
        for axis in 0..rank {
            let i = if axis < run_axis { idx[axis] } else { 0 };
            so += (region.start()[axis] + i) * ss[axis];
            d_off += (dst_at[axis] + i) * ds[axis];
        }
        let (so, d_off) = (so as usize * item, d_off as usize * item);
        dst[d_off..d_off + run_bytes].copy_from_slice(&src[so..so + run_bytes]);
    }
}

/// The contiguous byte runs of `region` inside a C-order array of `shape` with
/// `item`-byte elements: the bytes of one run, and the byte offset of each run in
/// the array, in the region's C order (so the runs laid end to end are the region's
/// elements in C order). Trailing axes the region spans whole merge into one run: a
/// block of whole rows is a single run.
///
/// # Panics
/// When the region does not fit `shape` (a programming error).
pub fn region_runs(
    shape: &[u64],
    region: &Subset,
    item: u64,
) -> (u64, impl Iterator<Item = u64> + 'static) {
    assert!(region.fits_in(shape), "{region:?} outside {shape:?}");
    let rank = shape.len();
    let mut run_axis = rank.saturating_sub(1);
    let mut run = region.shape().last().copied().unwrap_or(1);
    while run_axis > 0 && region.shape()[run_axis] == shape[run_axis] {
        run_axis -= 1;
        run *= region.shape()[run_axis];
    }
    let mut strides = vec![item; rank];
    for axis in (0..rank.saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    let outer: Vec<u64> = region.shape()[..run_axis].to_vec();
    let start = region.start().to_vec();
    let offsets = super::indices_c_order(&outer).map(move |idx| {
        (0..rank)
            .map(|axis| {
                let i = if axis < run_axis { idx[axis] } else { 0 };
                (start[axis] + i) * strides[axis]
            })
            .sum()
    });
    (run * item, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_a_region_are_its_rows_or_one_block() {
        let (run, offsets) = region_runs(&[4, 10], &Subset::new(vec![1, 2], vec![2, 3]), 8);
        assert_eq!(run, 24);
        assert_eq!(offsets.collect::<Vec<_>>(), [96, 176]);
        let (run, offsets) = region_runs(&[4, 10], &Subset::new(vec![1, 0], vec![3, 10]), 2);
        assert_eq!(run, 60);
        assert_eq!(offsets.collect::<Vec<_>>(), [20]);
        let (run, offsets) = region_runs(&[], &Subset::new(vec![], vec![]), 4);
        assert_eq!(run, 4);
        assert_eq!(offsets.collect::<Vec<_>>(), [0]);
        let (run, offsets) = region_runs(&[2, 3, 4], &Subset::new(vec![0, 1, 0], vec![2, 2, 4]), 1);
        assert_eq!(run, 8);
        assert_eq!(offsets.collect::<Vec<_>>(), [4, 16]);
    }

    #[test]
    fn intersect_and_relative() {
        let a = Subset::new(vec![0, 0], vec![10, 10]);
        let b = Subset::new(vec![5, 8], vec![10, 10]);
        let i = a.intersect(&b).unwrap();
        assert_eq!(i, Subset::new(vec![5, 8], vec![5, 2]));
        assert_eq!(i.relative_to(&[5, 5]), Subset::new(vec![0, 3], vec![5, 2]));
        assert!(a.intersect(&Subset::new(vec![10, 0], vec![1, 1])).is_none());
    }

    #[test]
    fn copy_region_moves_a_block() {
        // src 3x4 holding 0..12 as u8; copy rows 1..3, cols 1..3 into a 2x2 dst.
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![0u8; 4];
        let region = Subset::new(vec![1, 1], vec![2, 2]);
        copy_region(&src, &[3, 4], &region, &mut dst, &[2, 2], &[0, 0], 1);
        assert_eq!(dst, vec![5, 6, 9, 10]);
        // Whole rows merge into one run.
        let mut dst = vec![0u8; 8];
        let rows = Subset::new(vec![1, 0], vec![2, 4]);
        copy_region(&src, &[3, 4], &rows, &mut dst, &[2, 4], &[0, 0], 1);
        assert_eq!(dst, (4..12).collect::<Vec<u8>>());
    }
}
