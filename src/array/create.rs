//! The first and last tasks of an array the plan writes: `create_array` makes what
//! readers and writers of its chunks need (a Zarr array's metadata, an `.npy`
//! file's header, a directory), `finish_array` completes it (an npy stack's `info`)
//! and counts its rows.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::{mark_written, ArrayLayout};
use crate::error::Result;
use crate::plan::{Event, Operation, Task, TaskEnv};
use crate::storage::Format;

/// Creates the array dataset `task.output` names (a whole dataset) from its layout:
/// a Zarr array's directory and metadata (unless its first axis is not known yet),
/// an `.npy` file's header and length, an npy stack's directory. Running it again
/// changes nothing that chunk tasks wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateArray {
    /// Said to the user when the task runs (an output of very many files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Operation for CreateArray {
    const NAME: &'static str = "create_array";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        if let Some(w) = &self.warning {
            env.emit(Event::Warning(w.clone()));
        }
        let dataset = env.dataset(task.output.dataset())?;
        let layout = ArrayLayout::of(dataset)?;
        let path = Path::new(&dataset.path);
        match Format::parse(&dataset.format) {
            Ok(Format::Zarr) if !layout.rows_unknown => {
                crate::storage::zarr::ZarrSink::open(
                    path,
                    layout.dtype,
                    &layout.shape,
                    &layout.chunks,
                    layout
                        .compression
                        .unwrap_or(crate::storage::zarr::ZarrCompression::None),
                )?
                .store_metadata()?;
            }
            Ok(Format::Npy) => {
                crate::storage::npy::NpySink::open(
                    path,
                    layout.dtype,
                    &layout.shape,
                    layout.chunks.first().copied().unwrap_or(1),
                    layout.rows_unknown,
                )?
                .write_header(None)?;
            }
            // A directory is all the others need; their writers make it too.
            _ => drop(layout.sink(&dataset.format, path)?),
        }
        mark_written(task, env, 0)
    }
}

/// Completes the array dataset `task.output` names, after every chunk is written:
/// an npy stack's `info` (and the empty parts of a zero-length axis), the metadata
/// again for the others; reports the length of the first axis as rows written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FinishArray {}

impl Operation for FinishArray {
    const NAME: &'static str = "finish_array";
    const VERSION: u32 = 1;

    fn run(&self, task: &Task, env: &TaskEnv<'_>) -> Result<()> {
        let dataset = env.dataset(task.output.dataset())?;
        let layout = ArrayLayout::of(dataset)?;
        layout
            .sink(&dataset.format, Path::new(&dataset.path))?
            .finish(None)?;
        env.emit(Event::RowsWritten(
            layout.shape.first().copied().unwrap_or(1),
        ));
        mark_written(task, env, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip() {
        let op = CreateArray {
            warning: Some("many files".into()),
        };
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(serde_json::from_value::<CreateArray>(json).unwrap(), op);
        let none = serde_json::to_value(CreateArray { warning: None }).unwrap();
        assert_eq!(none, serde_json::json!({}));
        let f = serde_json::to_value(FinishArray {}).unwrap();
        assert_eq!(
            serde_json::from_value::<FinishArray>(f).unwrap(),
            FinishArray {}
        );
    }
}
