//! What a worker needs to open an array of a plan: the dataset's `meta`, as an
//! [`ArrayLayout`], and the sources and sinks opened from it once a process.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::grid::{copy_region, indices_c_order, ChunkGrid, Subset};
use crate::plan::{Dataset, DatasetRole, Entry, Task, TaskEnv};
use crate::storage::array::{ArraySink, ArraySource, DType};
use crate::storage::npy::NpySink;
use crate::storage::npy_stack::NpyStackSink;
use crate::storage::zarr::{ZarrCompression, ZarrSink};
use crate::storage::{open_array, Format};

/// An array dataset's `meta` in a plan: its shape, dtype and chunks, and for an
/// array the plan writes, how it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayLayout {
    /// The array's shape. For an array whose first axis is known only at the end
    /// (a table's rows), a placeholder until its last task.
    pub shape: Vec<u64>,
    /// The element type, by its numpy name.
    pub dtype: DType,
    /// The (largest) chunk shape: Zarr chunks, rows of an `.npy` written at once,
    /// the part length along an npy stack's axis.
    pub chunks: Vec<u64>,
    /// The fill value: always 0 (every byte zero), the only one blockwise writes.
    #[serde(default)]
    pub fill_value: u64,
    /// Zarr compression of a written array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<ZarrCompression>,
    /// Byte order of a written `.npy` (numpy's `<` or `|`); its memory order is C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_order: Option<String>,
    /// The axis an npy stack is cut along.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axis: Option<usize>,
    /// True when the first axis is set by the last task (a table's rows).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rows_unknown: bool,
}

impl ArrayLayout {
    /// The layout of an array of `shape`, `dtype` and `chunks`, with nothing about
    /// how it is written.
    pub fn new(shape: Vec<u64>, dtype: DType, chunks: Vec<u64>) -> Self {
        ArrayLayout {
            shape,
            dtype,
            chunks,
            fill_value: 0,
            compression: None,
            byte_order: None,
            axis: None,
            rows_unknown: false,
        }
    }

    /// The layout as a dataset's `meta`.
    pub fn to_meta(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The layout in `dataset`'s `meta`.
    ///
    /// # Errors
    /// [`Error::BadPlan`] when the meta is not an array layout.
    pub fn of(dataset: &Dataset) -> Result<Self> {
        let layout: Self =
            serde_json::from_value(dataset.meta.clone()).map_err(|e| Error::BadPlan {
                reason: format!(
                    "dataset {:?} has no array layout in its meta: {e}",
                    dataset.id
                ),
            })?;
        // An edited meta must not reach the sinks and grids, which trust it: one chunk
        // length an axis, and a size that fits 64 bits (zero chunk lengths are the
        // grid's to refuse).
        let bytes = layout
            .shape
            .iter()
            .try_fold(layout.dtype.size() as u64, |n, &len| n.checked_mul(len));
        if bytes.is_none() || layout.chunks.len() != layout.shape.len() {
            return Err(Error::BadPlan {
                reason: format!(
                    "dataset {:?} has an array layout of shape {:?} and chunks {:?}: {}",
                    dataset.id,
                    layout.shape,
                    layout.chunks,
                    if bytes.is_none() {
                        "its size overflows 64 bits"
                    } else {
                        "it needs one chunk length an axis"
                    }
                ),
            });
        }
        Ok(layout)
    }

    /// Creates the writer of this layout for `format` at `path`: nothing is read,
    /// and what a writer needs (a directory, a file) is created if missing.
    ///
    /// # Errors
    /// The format's errors creating it; [`Error::BadPlan`] for a format that is not
    /// an array format.
    pub fn sink(&self, format: &str, path: &Path) -> Result<Box<dyn ArraySink>> {
        let first = |v: &[u64]| v.first().copied().unwrap_or(1);
        Ok(match Format::parse(format) {
            Ok(Format::Zarr) => Box::new(ZarrSink::open(
                path,
                self.dtype,
                &self.shape,
                &self.chunks,
                self.compression.unwrap_or(ZarrCompression::None),
            )?),
            Ok(Format::Npy) => Box::new(NpySink::open(
                path,
                self.dtype,
                &self.shape,
                first(&self.chunks),
                self.rows_unknown,
            )?),
            Ok(Format::NpyStack) => {
                let axis = self.axis.unwrap_or(0);
                Box::new(NpyStackSink::open(
                    path,
                    self.dtype,
                    &self.shape,
                    axis,
                    self.chunks.get(axis).copied().unwrap_or(1),
                )?)
            }
            _ => {
                return Err(Error::BadPlan {
                    reason: format!("{format:?} is not a format blockwise writes arrays in"),
                })
            }
        })
    }

    /// The chunk grid a writer of this layout expects (see [`ArraySink::grid`]).
    ///
    /// # Errors
    /// [`Error::BadPlan`] for chunks of another rank than the shape.
    pub fn grid(&self) -> Result<ChunkGrid> {
        if self.chunks.len() != self.shape.len() {
            return Err(Error::BadPlan {
                reason: format!(
                    "chunks {:?} do not match shape {:?}",
                    self.chunks, self.shape
                ),
            });
        }
        ChunkGrid::regular(&self.shape, &self.chunks)
    }
}

/// The array dataset `id` opened for reading, once a process (cached in the
/// environment's resources). An input must still have the shape and dtype the plan
/// was made for.
///
/// # Errors
/// The format's open errors; [`Error::BadPlan`] when the array changed since.
pub fn open_source(env: &TaskEnv<'_>, id: &str) -> Result<Arc<Box<dyn ArraySource>>> {
    let dataset = env.dataset(id)?;
    let key = format!("array-source {id} {}", dataset.path);
    env.resources.get_or_open(&key, || {
        let format = Format::parse(&dataset.format).map_err(|_| Error::BadPlan {
            reason: format!("dataset {id:?} has format {:?}", dataset.format),
        })?;
        let source = open_array(Path::new(&dataset.path), format)?;
        let layout = ArrayLayout::of(dataset)?;
        let meta = source.meta();
        if meta.shape() != layout.shape || meta.dtype != layout.dtype {
            return Err(Error::BadPlan {
                reason: format!(
                    "{} is now a {} array of shape {:?}, not the {} array of shape {:?} \
                     the plan was made for: make the plan again",
                    dataset.path,
                    meta.dtype,
                    meta.shape(),
                    layout.dtype,
                    layout.shape
                ),
            });
        }
        Ok(source)
    })
}

/// The writer of the array dataset `id`, once a process (cached in the
/// environment's resources).
///
/// # Errors
/// As [`ArrayLayout::sink`].
pub fn open_sink(env: &TaskEnv<'_>, id: &str) -> Result<Arc<Box<dyn ArraySink>>> {
    let dataset = env.dataset(id)?;
    let key = format!("array-sink {id} {}", dataset.path);
    env.resources.get_or_open(&key, || {
        ArrayLayout::of(dataset)?.sink(&dataset.format, Path::new(&dataset.path))
    })
}

/// After a task wrote into an intermediate array, publishes its output entry: the
/// mark that the chunks are written, which later tasks and a resumed run look for.
/// (For an input or output dataset the executor writes the mark.)
///
/// # Errors
/// The store's.
pub fn mark_written(task: &Task, env: &TaskEnv<'_>, bytes: u64) -> Result<()> {
    if env.dataset(task.output.dataset())?.role == DatasetRole::Intermediate {
        env.store.put(
            &task.output,
            Entry::Json(serde_json::json!({ "bytes": bytes })),
        )?;
    }
    Ok(())
}

/// Writes the chunks of `sink` inside `region` (which is aligned to them) out of
/// `data`, the region's elements in C order; a sink that writes any region in
/// place takes it whole, aligned or not.
///
/// # Errors
/// The sink's; [`Error::Cancelled`] between chunks.
pub fn write_region(
    sink: &dyn ArraySink,
    region: &Subset,
    data: &[u8],
    item: usize,
    cancel: &crate::sys::CancelToken,
) -> Result<()> {
    if sink.writes_any_region() {
        cancel.check()?;
        return sink.write_region(region, data);
    }
    let ranges = sink.grid().overlapping(region);
    let extents: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    for offset in indices_c_order(&extents) {
        cancel.check()?;
        let index: Vec<u64> = offset
            .iter()
            .zip(&ranges)
            .map(|(o, r)| r.start + o)
            .collect();
        let chunk = sink.grid().chunk_subset(&index);
        if &chunk == region {
            sink.write_chunk(&index, data)?;
            continue;
        }
        let mut buf = vec![0u8; chunk.num_elements() as usize * item];
        let zero = vec![0; chunk.shape().len()];
        copy_region(
            data,
            region.shape(),
            &chunk.relative_to(region.start()),
            &mut buf,
            chunk.shape(),
            &zero,
            item,
        );
        sink.write_chunk(&index, &buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_json_round_trips_and_names_the_dtype() {
        let mut layout = ArrayLayout::new(vec![10, 4], DType::Float32, vec![5, 4]);
        layout.compression = Some(ZarrCompression::Zstd(3));
        layout.axis = Some(0);
        let json = layout.to_meta();
        assert_eq!(json["dtype"], "float32");
        assert_eq!(json["compression"], serde_json::json!({"zstd": 3}));
        let back: ArrayLayout = serde_json::from_value(json).unwrap();
        assert_eq!(back, layout);
        let plain = ArrayLayout::new(vec![], DType::Bool, vec![]);
        assert_eq!(
            plain.to_meta(),
            serde_json::json!({"shape": [], "dtype": "bool", "chunks": [], "fill_value": 0})
        );
    }
}
