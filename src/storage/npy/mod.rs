//! `.npy` files: read with positioned reads (regions of C-order files whose rows
//! are long enough; the rest through a memory map), written with positioned writes
//! so chunks can land from several threads at once.
//!
//! Every numeric dtype and bool, both byte orders and both memory orders are read;
//! files are written C-order, little-endian, format version 1.

pub mod header;

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use self::header::{ByteOrder, HeaderError, NpyHeader};
use crate::error::{Error, IoResultExt, Result};
use crate::grid::size::{alloc_empty, alloc_zeroed, require_bytes};
use crate::grid::{copy_region, region_runs, shape_text, ChunkGrid, Subset};
use crate::storage::array::{swap_bytes, ArrayMeta, ArraySink, ArraySource, DType};

/// A `.npy` file opened for reading.
pub struct NpySource {
    path: PathBuf,
    file: File,
    map: Mmap,
    header: NpyHeader,
    meta: ArrayMeta,
}

impl NpySource {
    /// Opens and validates `path`: the header must parse and the data must be whole.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Corrupt`] for a broken header,
    /// [`Error::SizeMismatch`] for a shape the file cannot hold (truncated data or an
    /// overflowing shape), [`Error::Unsupported`] for a dtype blockwise does not
    /// handle (strings, records).
    pub fn open(path: &Path) -> Result<Self> {
        // Non-blocking, so that opening a FIFO returns at once instead of waiting
        // for a writer forever; the flag changes nothing for a regular file.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .at(path)?;
        // Only a regular file can be mapped: a directory fails with ENODEV (an
        // "I/O error" to the user), a FIFO or a device never has a stable length.
        let kind = file.metadata().at(path)?.file_type();
        if !kind.is_file() {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: "npy input",
                found: if kind.is_dir() {
                    "a directory".into()
                } else {
                    "a special file".into()
                },
                supported: "; an .npy array is a regular file".into(),
            });
        }
        // SAFETY: the map is read-only; a file truncated underneath us by another
        // process would fault, which is the accepted contract of memory-mapped input
        // (numpy's mmap_mode and Arrow's memory-mapped files make the same one).
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let header = header::parse(&map).map_err(|e| match e {
            HeaderError::Corrupt(detail) => Error::corrupt(path, "npy", detail),
            HeaderError::UnsupportedDtype { descr, why } => Error::Unsupported {
                path: path.to_path_buf(),
                what: "npy dtype",
                found: descr,
                supported: format!(
                    "; it is {why}; blockwise reads bool, integer, float and complex arrays"
                ),
            },
        })?;
        // The shape is untrusted: its byte size must fit in 64 bits and in the bytes
        // that follow the header, before anything reads the data.
        let available = (map.len() - header.data_offset) as u64;
        require_bytes(
            path,
            "shape",
            &header.shape,
            header.dtype.size() as u64,
            available,
        )?;
        let grid = ChunkGrid::regular(
            &header.shape,
            &header.shape.iter().map(|&n| n.max(1)).collect::<Vec<_>>(),
        )?;
        let meta = ArrayMeta {
            dtype: header.dtype,
            grid,
            compression: "none".into(),
        };
        Ok(NpySource {
            path: path.to_path_buf(),
            file,
            map,
            header,
            meta,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The path this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn data(&self) -> &[u8] {
        &self.map[self.header.data_offset..]
    }
}

impl ArraySource for NpySource {
    fn format(&self) -> &'static str {
        "npy"
    }

    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read(&self, subset: &Subset) -> Result<Vec<u8>> {
        let item = self.header.dtype.size();
        let shape = &self.header.shape;
        if !subset.fits_in(shape) {
            let detail = format!("{subset:?} in {}", shape_text(shape));
            return Err(Error::bug("a read outside the npy array's shape", detail));
        }
        let mut out;
        let (run, offsets) = region_runs(shape, subset, item as u64);
        if !self.header.fortran_order && run >= MIN_READ_RUN {
            // Positioned reads straight into the result: a copy out of the memory
            // map would leave the file's pages mapped, counted in this process's
            // RSS until released (the whole file, for a conversion reading it in
            // blocks that are not whole rows), and fault them in one by one.
            out = alloc_empty(&self.path, subset.shape(), item as u64)?;
            let run = usize::try_from(run).map_err(|e| Error::bug("a run of bytes", e))?;
            for offset in offsets {
                read_exact_at_spare(
                    &self.file,
                    &mut out,
                    run,
                    self.header.data_offset as u64 + offset,
                )
                .at(&self.path)?;
            }
        } else if !self.header.fortran_order {
            // Short runs (a narrow column band): one read call each would cost more
            // than the copy, so they are copied out of the memory map.
            out = alloc_zeroed(&self.path, subset.shape(), item as u64)?;
            let zero = vec![0; shape.len()];
            copy_region(
                self.data(),
                shape,
                subset,
                &mut out,
                subset.shape(),
                &zero,
                item,
            );
        } else {
            out = alloc_zeroed(&self.path, subset.shape(), item as u64)?;
            // Fortran order is C order of the reversed shape: read the reversed region,
            // then reverse its axes.
            let rev = |v: &[u64]| v.iter().rev().copied().collect::<Vec<_>>();
            let region = Subset::new(rev(subset.start()), rev(subset.shape()));
            let mut transposed = alloc_zeroed(&self.path, subset.shape(), item as u64)?;
            let zero = vec![0; shape.len()];
            copy_region(
                self.data(),
                &rev(shape),
                &region,
                &mut transposed,
                region.shape(),
                &zero,
                item,
            );
            reverse_axes(&transposed, region.shape(), &mut out, item);
        }
        if self.header.order != ByteOrder::NATIVE {
            swap_bytes(&mut out, self.header.dtype.component_size());
        }
        Ok(out)
    }

    fn release(&self, subset: &Subset) {
        if self.header.fortran_order || self.header.shape.is_empty() {
            return;
        }
        // Whole rows of a C-order file are one byte range; drop its pages from our
        // resident set so a long conversion does not grow RSS to the file's size.
        let row_bytes: u64 =
            self.header.shape[1..].iter().product::<u64>() * self.header.dtype.size() as u64;
        let page = 4096u64;
        let (Some(&first), Some(&rows)) = (subset.start().first(), subset.shape().first()) else {
            return;
        };
        let lo = self.header.data_offset as u64 + first * row_bytes;
        let hi = lo + rows * row_bytes;
        let (lo, hi) = (lo.div_ceil(page) * page, hi / page * page);
        if hi > lo {
            // SAFETY: the mapping is read-only and file-backed; dropped pages are read
            // back from the file if touched again, so no data can be lost.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    lo as usize,
                    (hi - lo) as usize,
                )
            };
        }
    }
}

/// The shortest contiguous run of a region read with positioned reads rather than
/// copied out of the memory map (see [`NpySource`]'s `read`).
const MIN_READ_RUN: u64 = 4096;

/// Appends to `out` the `len` bytes of `file` at `offset`, read into its spare
/// capacity (which must hold them), so that the buffer is never zeroed first.
///
/// # Errors
/// The read's; `UnexpectedEof` when the file ends first (it was truncated since
/// it was opened).
fn read_exact_at_spare(
    file: &File,
    out: &mut Vec<u8>,
    len: usize,
    offset: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    assert!(out.capacity() - out.len() >= len, "no room for {len} bytes");
    let mut done = 0usize;
    while done < len {
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: the destination is inside `out`'s allocation (its spare capacity,
        // checked above), which the kernel only writes; the length grows below
        // over the bytes the read wrote and no further.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                out.as_mut_ptr().add(out.len()).cast(),
                len - done,
                at,
            )
        };
        match n {
            n if n > 0 => {
                // SAFETY: the kernel wrote these `n` bytes just past the length.
                unsafe { out.set_len(out.len() + n as usize) };
                done += n as usize;
            }
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Writes `src` (C order, `shape`) into `dst` with its axes reversed (a full
/// transpose), as Fortran-order data needs.
fn reverse_axes(src: &[u8], shape: &[u64], dst: &mut [u8], item: usize) {
    let rank = shape.len();
    if rank < 2 {
        dst.copy_from_slice(src);
        return;
    }
    let out_shape: Vec<u64> = shape.iter().rev().copied().collect();
    let mut src_strides = vec![1u64; rank];
    for axis in (0..rank - 1).rev() {
        src_strides[axis] = src_strides[axis + 1] * shape[axis + 1];
    }
    for (flat, idx) in crate::grid::indices_c_order(&out_shape).enumerate() {
        // Output axis k is input axis rank-1-k.
        let off: u64 = idx
            .iter()
            .enumerate()
            .map(|(k, &i)| i * src_strides[rank - 1 - k])
            .sum();
        let (s, d) = (off as usize * item, flat * item);
        dst[d..d + item].copy_from_slice(&src[s..s + item]);
    }
}

/// The page size data offsets are aligned to.
const PAGE: u64 = 4096;

/// Arrays of at least this many bytes have their data page-aligned in a written
/// `.npy` (see [`NpySink::open`]).
const PAGE_ALIGNED_FROM: u64 = 1 << 20;

/// A `.npy` file being written: C order, little-endian, chunks of whole rows. It
/// holds only an open file and its description, so any process can open the same
/// file and write its own rows with positioned writes (writing rows again with the
/// same bytes is harmless).
pub struct NpySink {
    path: PathBuf,
    file: File,
    dtype: DType,
    shape: Vec<u64>,
    grid: ChunkGrid,
    data_offset: u64,
    row_bytes: u64,
    rows_unknown: bool,
}

impl NpySink {
    /// Creates `path` (replacing a file there) with its header, for an array of
    /// `shape` written in blocks of `chunk_rows` rows. When `rows_unknown`, the first
    /// axis is set by `finish`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(
        path: &Path,
        dtype: DType,
        shape: &[u64],
        chunk_rows: u64,
        rows_unknown: bool,
    ) -> Result<Self> {
        File::create(path).at(path)?;
        let sink = Self::open(path, dtype, shape, chunk_rows, rows_unknown)?;
        sink.write_header(None)?;
        Ok(sink)
    }

    /// The file `path` with this description, for writing: created if missing, never
    /// truncated, so that rows other tasks wrote stay.
    ///
    /// # Errors
    /// When the file cannot be opened or created.
    pub fn open(
        path: &Path,
        dtype: DType,
        shape: &[u64],
        chunk_rows: u64,
        rows_unknown: bool,
    ) -> Result<Self> {
        if dtype.size() > 1 && cfg!(target_endian = "big") {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: "machine byte order",
                found: "big-endian".into(),
                supported: "; blockwise writes npy files on little-endian machines only".into(),
            });
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let header_len = header::encode(dtype, shape, rows_unknown).len() as u64;
        let data_bytes = crate::grid::checked_nbytes(shape, dtype.size() as u64);
        // A large array's data starts on a page boundary: positioned writes of
        // chunk-aligned regions then fill whole pages of the page cache, which the
        // kernel would otherwise zero first and merge buffer by buffer (about 5% of
        // a Zarr to .npy conversion). numpy reads any header length that keeps its
        // 64-byte alignment; small files keep the shortest header.
        let data_offset = match data_bytes {
            Some(n) if !rows_unknown && n >= PAGE_ALIGNED_FROM => header_len.next_multiple_of(PAGE),
            _ => header_len,
        };
        let row_bytes =
            shape.get(1..).map_or(1, |s| s.iter().product::<u64>()) * dtype.size() as u64;
        let mut chunk_shape = shape.to_vec();
        if let Some(first) = chunk_shape.first_mut() {
            *first = chunk_rows.max(1);
        }
        let chunk_shape: Vec<u64> = chunk_shape.iter().map(|&c| c.max(1)).collect();
        let grid = ChunkGrid::regular(shape, &chunk_shape)?;
        Ok(NpySink {
            path: path.to_path_buf(),
            file,
            dtype,
            shape: shape.to_vec(),
            grid,
            data_offset,
            row_bytes,
            rows_unknown,
        })
    }

    /// Writes the header (with `rows` as the first axis when given) and sets the
    /// file's length to hold the whole array (unless its rows are still unknown);
    /// data already written stays.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_header(&self, rows: Option<u64>) -> Result<()> {
        let mut shape = self.shape.clone();
        if let (Some(rows), Some(first)) = (rows, shape.first_mut()) {
            *first = rows;
        }
        // The data offset is fixed by the description: the header is padded to it
        // whatever the first axis turned out to be.
        let header = header::encode_with_len(self.dtype, &shape, self.data_offset as usize)
            .ok_or_else(|| {
                Error::bug(
                    "an npy header does not fit the bytes reserved for it",
                    format!("shape {} in {} bytes", shape_text(&shape), self.data_offset),
                )
            })?;
        self.file.write_all_at(&header, 0).at(&self.path)?;
        if rows.is_none() && self.rows_unknown {
            // The placeholder is no length to give the file.
            return Ok(());
        }
        let total = self.data_offset + crate::grid::num_elements(&shape) * self.dtype.size() as u64;
        self.file.set_len(total).at(&self.path)
    }
}

impl ArraySink for NpySink {
    fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    fn write_chunk(&self, index: &[u64], data: &[u8]) -> Result<()> {
        let start_row = index.first().map_or(0, |&i| self.grid.axes()[0].span(i).0);
        let offset = self.data_offset + start_row * self.row_bytes;
        self.file.write_all_at(data, offset).at(&self.path)
    }

    fn writes_any_region(&self) -> bool {
        true
    }

    fn write_region(&self, region: &Subset, data: &[u8]) -> Result<()> {
        let item = self.dtype.size() as u64;
        if !region.fits_in(&self.shape) || data.len() as u64 != region.num_elements() * item {
            return Err(Error::bug(
                "a region that does not fit the npy array",
                format!(
                    "{region:?} of {} bytes in {}",
                    data.len(),
                    shape_text(&self.shape)
                ),
            ));
        }
        // Each contiguous run of the region is one positioned write, in place: no
        // row of the file is read or gathered first.
        let (run, offsets) = region_runs(&self.shape, region, item);
        let run = run as usize;
        for (k, offset) in offsets.enumerate() {
            let from = k * run;
            self.file
                .write_all_at(&data[from..from + run], self.data_offset + offset)
                .at(&self.path)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>, rows: Option<u64>) -> Result<()> {
        self.write_header(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_axes_transposes() {
        // 2x3 C-order [[0,1,2],[3,4,5]] -> 3x2 [[0,3],[1,4],[2,5]]
        let src: Vec<u8> = (0..6).collect();
        let mut dst = vec![0u8; 6];
        reverse_axes(&src, &[2, 3], &mut dst, 1);
        assert_eq!(dst, vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn long_and_short_runs_read_the_same_values() {
        // Rows of 4800 bytes: a band of columns that wide is read with positioned
        // reads, a narrow one copied out of the map; both must give the elements.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let (rows, cols) = (300u64, 600u64);
        let sink = NpySink::create(&path, DType::Float64, &[rows, cols], 100, false).unwrap();
        let all: Vec<u8> = (0..rows * cols)
            .flat_map(|k| (k as f64).to_ne_bytes())
            .collect();
        sink.write_region(&Subset::full(&[rows, cols]), &all)
            .unwrap();
        Box::new(sink).finish(None).unwrap();
        let src = NpySource::open(&path).unwrap();
        for (start, shape) in [([7, 0], [50, 600]), ([7, 3], [50, 590]), ([7, 3], [50, 2])] {
            let got = src
                .read(&Subset::new(start.to_vec(), shape.to_vec()))
                .unwrap();
            let want: Vec<u8> = (0..shape[0])
                .flat_map(|r| (0..shape[1]).map(move |c| (start[0] + r) * cols + start[1] + c))
                .flat_map(|k| (k as f64).to_ne_bytes())
                .collect();
            assert_eq!(got, want, "{start:?} {shape:?}");
        }
    }

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let sink = NpySink::create(&path, DType::Int16, &[5, 3], 2, false).unwrap();
        let sink: Box<dyn ArraySink> = Box::new(sink);
        for index in sink.grid().chunk_indices() {
            let sub = sink.grid().chunk_subset(&index);
            let data: Vec<u8> = (0..sub.num_elements())
                .flat_map(|k| ((sub.start()[0] * 3 + k) as i16).to_ne_bytes())
                .collect();
            sink.write_chunk(&index, &data).unwrap();
        }
        sink.finish(None).unwrap();
        let src = NpySource::open(&path).unwrap();
        let all = src.read(&Subset::full(&[5, 3])).unwrap();
        let values: Vec<i16> = all
            .chunks(2)
            .map(|b| i16::from_ne_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(values, (0..15).collect::<Vec<i16>>());
    }
}
