//! npy stacks: the directory layout of `dask.array.to_npy_stack`.
//!
//! A stack is a directory holding `0.npy … N.npy`, one file per chunk along one
//! `axis`, and an `info` file: a pickled dict `{"chunks", "dtype", "axis"}`. Chunks
//! along the other axes are whole. Reading takes the chunking from `info` and the
//! dtype from each file's own header; writing emits the same pickle Dask does, so
//! `dask.array.from_npy_stack` reads what we write.

pub mod pickle;

use std::path::{Path, PathBuf};

use self::pickle::Value;
use crate::error::{Error, IoResultExt, Result};
use crate::grid::size::{alloc_zeroed, nbytes_or_error};
use crate::grid::{copy_region, shape_text, AxisChunks, ChunkGrid, Subset};
use crate::storage::array::{ArrayMeta, ArraySink, ArraySource, DType};
use crate::storage::npy::NpySource;

/// True when `dir` looks like an npy stack (it holds an `info` file).
pub fn is_npy_stack(dir: &Path) -> bool {
    dir.join("info").is_file()
}

/// An npy stack opened for reading.
pub struct NpyStackSource {
    dir: PathBuf,
    parts: Vec<NpySource>,
    axis: usize,
    meta: ArrayMeta,
}

impl NpyStackSource {
    /// Opens the stack in `dir`, checking that every part agrees with `info`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `info` does not decode or a part's shape or dtype
    /// disagrees with it; the errors of [`NpySource::open`] for each part.
    pub fn open(dir: &Path) -> Result<Self> {
        let info_path = dir.join("info");
        let info_meta = std::fs::metadata(&info_path).at(&info_path)?;
        let size = info_meta.len();
        let bad = |detail: String| Error::corrupt(&info_path, "npy stack info", detail);
        // Reading a FIFO would wait for a writer forever; a directory cannot be read.
        if !info_meta.is_file() {
            return Err(bad("info is not a regular file".into()));
        }
        if size > pickle::MAX_PICKLE_BYTES as u64 {
            return Err(bad(format!(
                "info is {size} bytes, more than the {} an npy-stack info can be",
                pickle::MAX_PICKLE_BYTES
            )));
        }
        let bytes = std::fs::read(&info_path).at(&info_path)?;
        let info = pickle::load(&bytes).map_err(bad)?;
        if !matches!(info, Value::Dict(_)) {
            return Err(bad(format!(
                "info holds {} ({}), not the dict with chunks, dtype and axis that \
                 dask.array.to_npy_stack writes",
                info.kind(),
                info.describe()
            )));
        }
        let describe = |v: Option<&Value>| v.map_or_else(|| "missing".into(), Value::describe);
        let axis = match info.get("axis").and_then(Value::as_int) {
            Some(a) if a >= 0 => a as u64,
            _ => {
                return Err(bad(format!(
                    "'axis' is {}, expected a non-negative int",
                    describe(info.get("axis"))
                )))
            }
        };
        let chunks: Vec<Vec<u64>> = match info.get("chunks") {
            Some(Value::Seq(axes)) => axes
                .iter()
                .map(|a| match a {
                    // Dask writes a zero-length axis as `(0,)` and refuses `()`.
                    Value::Seq(sizes) if sizes.is_empty() => Err(bad(
                        "an axis has no chunk sizes, (); an empty axis is written (0,)".into(),
                    )),
                    Value::Seq(sizes) => sizes
                        .iter()
                        .map(|s| match s.as_int() {
                            Some(n) if n >= 0 => Ok(n as u64),
                            _ => Err(bad(format!(
                                "chunk size {} is not a non-negative int",
                                s.describe()
                            ))),
                        })
                        .collect(),
                    other => Err(bad(format!(
                        "chunks entry {} is not a tuple of sizes",
                        other.describe()
                    ))),
                })
                .collect::<Result<_>>()?,
            other => {
                return Err(bad(format!(
                    "'chunks' is {}, expected a tuple of tuples",
                    describe(other)
                )))
            }
        };
        let Some(along) = usize::try_from(axis).ok().and_then(|a| chunks.get(a)) else {
            return Err(bad(format!(
                "axis {axis} is out of range for {} dimensions",
                chunks.len()
            )));
        };
        let axis = axis as usize;
        // Every size is untrusted: the axis lengths are checked sums, and the whole
        // shape's byte size must fit in 64 bits (each part's header is then checked
        // against its own file).
        let mut shape = Vec::with_capacity(chunks.len());
        for sizes in &chunks {
            let len = sizes
                .iter()
                .try_fold(0u64, |acc, &n| acc.checked_add(n))
                .ok_or_else(|| {
                    bad("the chunk sizes of an axis add up to more than 2^64".to_string())
                })?;
            shape.push(len);
        }
        nbytes_or_error(&info_path, "shape", &shape, 1)?;
        let mut parts = Vec::with_capacity(along.len().min(1 << 16));
        let mut dtype = None;
        for (i, &len) in along.iter().enumerate() {
            let part = NpySource::open(&dir.join(format!("{i}.npy")))?;
            let mut expected = shape.clone();
            expected[axis] = len;
            if part.header().shape != expected {
                return Err(Error::corrupt(
                    part.path(),
                    "npy stack part",
                    format!(
                        "shape {} does not match {} from info",
                        shape_text(&part.header().shape),
                        shape_text(&expected)
                    ),
                ));
            }
            if *dtype.get_or_insert(part.header().dtype) != part.header().dtype {
                return Err(Error::corrupt(
                    part.path(),
                    "npy stack part",
                    format!(
                        "dtype {} differs from the first part's",
                        part.header().dtype
                    ),
                ));
            }
            parts.push(part);
        }
        let dtype = dtype.unwrap_or_else(|| dtype_from_info(&info).unwrap_or(DType::Float64));
        nbytes_or_error(&info_path, "shape", &shape, dtype.size() as u64)?;
        let axes = chunks
            .iter()
            .enumerate()
            .map(|(a, sizes)| {
                if a == axis {
                    AxisChunks::Irregular(sizes.clone())
                } else {
                    AxisChunks::Regular {
                        size: shape[a].max(1),
                        len: shape[a],
                    }
                }
            })
            .collect();
        let meta = ArrayMeta {
            dtype,
            grid: ChunkGrid::from_axes(axes),
            compression: "none".into(),
        };
        Ok(NpyStackSource {
            dir: dir.to_path_buf(),
            parts,
            axis,
            meta,
        })
    }
}

impl NpyStackSource {
    /// The stack's `info` file, which names the stack in messages.
    fn info_path(&self) -> PathBuf {
        self.dir.join("info")
    }
}

/// The dtype named in `info` (used only for a stack with no parts).
fn dtype_from_info(info: &Value) -> Option<DType> {
    match info.get("dtype")? {
        Value::Object { args, .. } => match args.first()? {
            Value::Str(code) => {
                DType::from_numpy_code(code.trim_start_matches(['<', '>', '|', '=']))
            }
            _ => None,
        },
        _ => None,
    }
}

impl ArraySource for NpyStackSource {
    fn format(&self) -> &'static str {
        "npy-stack"
    }

    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read(&self, subset: &Subset) -> Result<Vec<u8>> {
        let item = self.meta.dtype.size();
        if !subset.fits_in(&self.meta.shape()) {
            let detail = format!("{subset:?} in {}", shape_text(&self.meta.shape()));
            return Err(Error::bug("a read outside the npy stack's shape", detail));
        }
        let along = &self.meta.grid.axes()[self.axis];
        let parts = along.overlapping(subset.start()[self.axis], subset.shape()[self.axis]);
        if parts.end - parts.start == 1 {
            // The common case: the subset lies in one part; read it directly.
            let (offset, _) = along.span(parts.start);
            let mut local = subset.start().to_vec();
            local[self.axis] -= offset;
            return self.parts[parts.start as usize]
                .read(&Subset::new(local, subset.shape().to_vec()));
        }
        let mut out = alloc_zeroed(&self.info_path(), subset.shape(), item as u64)?;
        for p in parts {
            let part_region = self.meta.grid.chunk_subset(&{
                let mut idx = vec![0; subset.start().len()];
                idx[self.axis] = p;
                idx
            });
            let Some(overlap) = subset.intersect(&part_region) else {
                continue;
            };
            let data = self.parts[p as usize].read(&overlap.relative_to(part_region.start()))?;
            let at = overlap.relative_to(subset.start());
            let whole = Subset::full(overlap.shape());
            copy_region(
                &data,
                overlap.shape(),
                &whole,
                &mut out,
                subset.shape(),
                at.start(),
                item,
            );
        }
        Ok(out)
    }

    fn release(&self, subset: &Subset) {
        let along = &self.meta.grid.axes()[self.axis];
        for p in along.overlapping(subset.start()[self.axis], subset.shape()[self.axis]) {
            let mut shape = self.meta.shape();
            shape[self.axis] = along.span(p).1;
            self.parts[p as usize].release(&Subset::full(&shape));
        }
    }
}

/// An npy stack being written: one `.npy` per chunk along `axis`, each published
/// atomically by the task that writes it, then `info`. It holds only its
/// description, so any process can write its own parts.
pub struct NpyStackSink {
    dir: PathBuf,
    dtype: DType,
    axis: usize,
    grid: ChunkGrid,
}

impl NpyStackSink {
    /// Creates the directory `dir` for an array of `shape` cut along `axis` into
    /// chunks of `chunk_len` (the last may be shorter).
    ///
    /// # Errors
    /// When the directory exists or cannot be created, or `axis` is out of range.
    pub fn create(
        dir: &Path,
        dtype: DType,
        shape: &[u64],
        axis: usize,
        chunk_len: u64,
    ) -> Result<Self> {
        let sink = Self::open(dir, dtype, shape, axis, chunk_len)?;
        std::fs::create_dir(dir).at(dir)?;
        Ok(sink)
    }

    /// The stack in `dir` with this description, for writing: the directory is
    /// created if missing (by whichever task comes first).
    ///
    /// # Errors
    /// As [`NpyStackSink::create`], but an existing directory is fine.
    pub fn open(
        dir: &Path,
        dtype: DType,
        shape: &[u64],
        axis: usize,
        chunk_len: u64,
    ) -> Result<Self> {
        if shape.is_empty() {
            // A stack is cut along an axis; a scalar has none.
            return Err(Error::Unsupported {
                path: dir.to_path_buf(),
                what: "array shape for an npy stack",
                found: "[]".into(),
                supported: "; an npy stack is cut into files along an axis and a \
                            zero-dimensional array has none: convert to npy or zarr instead"
                    .into(),
            });
        }
        if axis >= shape.len() {
            return Err(Error::Corrupt {
                path: dir.to_path_buf(),
                format: "npy stack",
                detail: format!(
                    "its info names axis {axis}, out of range for {} dimensions",
                    shape.len()
                ),
            });
        }
        let axes = shape
            .iter()
            .enumerate()
            .map(|(a, &len)| {
                let size = if a == axis {
                    chunk_len.max(1)
                } else {
                    len.max(1)
                };
                AxisChunks::Regular { size, len }
            })
            .collect();
        Ok(NpyStackSink {
            dir: dir.to_path_buf(),
            dtype,
            axis,
            grid: ChunkGrid::from_axes(axes),
        })
    }

    /// Writes part `index` along the axis, of `shape`, from `data`: under a
    /// temporary name, then renamed into place.
    fn write_part(&self, index: u64, shape: &[u64], data: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let path = self.dir.join(format!("{index}.npy"));
        let mut bytes = crate::storage::npy::header::encode(self.dtype, shape, false);
        bytes.extend_from_slice(data);
        crate::storage::array::write_file_atomically(&path, &bytes)
    }
}

impl ArraySink for NpyStackSink {
    fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    fn write_chunk(&self, index: &[u64], data: &[u8]) -> Result<()> {
        let region = self.grid.chunk_subset(index);
        let part = index.get(self.axis).ok_or_else(|| {
            Error::bug(
                "a chunk index lacks the npy stack's axis",
                shape_text(index),
            )
        })?;
        self.write_part(*part, region.shape(), data)
    }

    fn finish(self: Box<Self>, rows: Option<u64>) -> Result<()> {
        if rows.is_some() {
            return Err(Error::bug("an npy stack finished with a row count", ""));
        }
        // Dask writes a zero-length axis as one chunk of size zero, `(0,)`, and
        // `from_npy_stack` refuses an empty tuple: never write one.
        let chunks: Vec<Vec<u64>> = self
            .grid
            .axes()
            .iter()
            .map(|a| match a.sizes() {
                sizes if sizes.is_empty() => vec![0],
                sizes => sizes,
            })
            .collect();
        if self.grid.num_chunks() == 0 {
            // An array with a zero-length axis has no chunks, so no part was written;
            // every part `info` lists must exist, empty, as Dask writes it.
            for (i, &len) in chunks[self.axis].iter().enumerate() {
                let mut shape = self.grid.shape();
                shape[self.axis] = len;
                self.write_part(i as u64, &shape, &[])?;
            }
        }
        let order = if self.dtype.size() == 1 { '|' } else { '<' };
        let bytes = pickle::dump_info(&chunks, self.dtype.numpy_code(), order, self.axis);
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        crate::storage::array::write_file_atomically(&self.dir.join("info"), &bytes)
    }
}
