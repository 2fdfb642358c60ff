//! Sorted runs as entries of a [`DataStore`]: what a `sort_run` task publishes and
//! what `cut_ranges` and `merge_range` read.
//!
//! A run is one record-batch entry, sorted, in batches of the sort's batch rows. What
//! a merge needs to know of it without reading it (its rows, its widest batch, the
//! first key of each batch) travels in the entry's schema metadata under
//! [`RUN_INFO`], so it is published atomically with the rows and read from the entry
//! file's header alone.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde::{Deserialize, Serialize};

use super::keys::KeyBytes;
use super::merge::Source;
use super::{ExternalSort, Run, RunData};
use crate::error::{Error, IoResultExt, Result};
use crate::plan::{DataRef, DataStore, Entry};

/// The schema metadata key of a run's [`RunInfo`] (JSON).
pub const RUN_INFO: &str = "blockwise.sort.run";

/// What a stored run says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Rows in the run.
    pub rows: u64,
    /// Bytes of its batches in memory.
    pub bytes: u64,
    /// The most one of its batches takes read back, with its keys: what a merge
    /// reserves for it.
    pub max_batch: u64,
    /// The key of the first row of every `fence_stride`th batch: where a range
    /// merge starts reading, and the samples the key ranges are cut at.
    pub fences: Vec<KeyBytes>,
    /// Batches from one fence to the next.
    #[serde(default = "one")]
    pub fence_stride: usize,
}

fn one() -> usize {
    1
}

impl RunInfo {
    /// Keeps at most `max` fences, evenly spread (at least one).
    fn thin(mut self, max: usize) -> Self {
        let stride = self.fences.len().div_ceil(max.max(1)).max(1);
        if stride > 1 {
            self.fences = self.fences.into_iter().step_by(stride).collect();
            self.fence_stride *= stride;
        }
        self
    }

    /// `schema` carrying this description.
    fn attach(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        let text = serde_json::to_string(self)
            .map_err(|e| Error::bug("sorted run description to JSON", e))?;
        let mut meta = schema.metadata().clone();
        meta.insert(RUN_INFO.to_string(), text);
        Ok(Arc::new(schema.as_ref().clone().with_metadata(meta)))
    }

    /// The description `schema` carries, and the schema without it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it carries none or one that does not parse.
    pub fn detach(schema: &SchemaRef, key: &DataRef) -> Result<(SchemaRef, RunInfo)> {
        let corrupt = |detail: String| Error::Corrupt {
            path: PathBuf::from(key.store_name()),
            format: "sorted run",
            detail,
        };
        let text = schema
            .metadata()
            .get(RUN_INFO)
            .ok_or_else(|| corrupt("the entry carries no run description".into()))?;
        let info: RunInfo = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let mut meta = schema.metadata().clone();
        meta.remove(RUN_INFO);
        Ok((Arc::new(schema.as_ref().clone().with_metadata(meta)), info))
    }
}

/// `batch` with `schema` (the same fields, other metadata).
fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &options,
    )?)
}

impl ExternalSort<'_> {
    /// Publishes the runs a partition made (by [`ExternalSort::make_runs`]) as one
    /// run at `key`, keeping at most `max_fences` fences: a run in memory as it is (the store decides whether it stays
    /// there), one on disk streamed through, and several merged into one first (the
    /// partition outgrew a run; this costs one more pass over its rows on disk).
    ///
    /// # Errors
    /// Merge, spill-read and store errors.
    pub fn publish_runs(
        &self,
        store: &dyn DataStore,
        key: &DataRef,
        mut runs: Vec<Run>,
        max_fences: usize,
    ) -> Result<RunInfo> {
        if runs.len() > 1 {
            let merged = self.merge_into_one(runs)?;
            let info = RunInfo {
                rows: merged.rows as u64,
                bytes: merged.bytes,
                max_batch: merged.max_batch,
                fences: merged.fences,
                fence_stride: 1,
            }
            .thin(max_fences);
            self.put_spilled(store, key, &info, &merged.files)?;
            return Ok(info);
        }
        let Some(mut run) = runs.pop() else {
            let info = RunInfo {
                rows: 0,
                bytes: 0,
                max_batch: 0,
                fences: Vec::new(),
                fence_stride: 1,
            };
            let schema = info.attach(&self.schema)?;
            store.put(
                key,
                Entry::Batches {
                    schema,
                    batches: Vec::new(),
                },
            )?;
            return Ok(info);
        };
        let info = RunInfo {
            rows: run.rows as u64,
            bytes: run.bytes,
            max_batch: run.max_batch,
            fences: std::mem::take(&mut run.fences),
            fence_stride: run.fence_stride,
        }
        .thin(max_fences);
        match std::mem::replace(&mut run.data, RunData::Memory(Vec::new())) {
            RunData::Memory(batches) => {
                // The store reserves the batches itself: the run's own reservation
                // goes first, so they are not counted twice.
                drop(run);
                let schema = info.attach(&self.schema)?;
                store.put(key, Entry::Batches { schema, batches })?;
            }
            RunData::Spilled(files) => self.put_spilled(store, key, &info, &files)?,
            RunData::Opened(_) => {
                return Err(Error::bug("a run read from a store is published again", ""))
            }
        }
        Ok(info)
    }

    /// Streams the batches of spill `files`, in order, into the store at `key`.
    fn put_spilled(
        &self,
        store: &dyn DataStore,
        key: &DataRef,
        info: &RunInfo,
        files: &[crate::memory::SpillFile],
    ) -> Result<()> {
        let schema = info.attach(&self.schema)?;
        let readers = files
            .iter()
            .map(|f| self.store.batch_reader(f))
            .collect::<Result<Vec<_>>>()?;
        let mut batches = readers.into_iter().flatten();
        store.put_batches(key, schema, &mut batches)
    }
}

/// The description and schema (without it) of the run at `key`, from the entry's
/// header alone.
///
/// # Errors
/// [`Error::MissingEntry`] when nothing is published there; [`Error::Corrupt`] when
/// it is not a sorted run.
pub fn run_info(store: &dyn DataStore, key: &DataRef) -> Result<(SchemaRef, RunInfo)> {
    let (schema, _) = store.batches(key)?;
    RunInfo::detach(&schema, key)
}

/// The runs at `keys`, in order, ready to merge: a run whose entry is a file is read
/// from the file, starting at the batch a range merge asks for (the IPC footer
/// indexes the batches, so nothing before it is read); a run held in memory is
/// merged from there. Their batches come without the run description.
///
/// # Errors
/// As [`run_info`].
pub fn open_runs(store: &dyn DataStore, keys: &[DataRef]) -> Result<(SchemaRef, Vec<Run>)> {
    let mut schema: Option<SchemaRef> = None;
    let mut runs = Vec::with_capacity(keys.len());
    for key in keys {
        let (entry_schema, stream) = store.batches(key)?;
        let (plain, info) = RunInfo::detach(&entry_schema, key)?;
        // The file is looked for after the entry is opened: an entry spilled
        // meanwhile has its file by then, so a stream from memory is never one
        // from disk read whole.
        let file = crate::plan::entry_file(store, key);
        let data = match file {
            Some(path) => {
                drop(stream);
                RunData::Opened(file_opener(path, plain.clone()))
            }
            None => {
                let batches = stream
                    .map(|b| b.and_then(|b| with_schema(b, &plain)))
                    .collect::<Result<Vec<_>>>()?;
                RunData::Memory(batches)
            }
        };
        runs.push(Run {
            data,
            rows: info.rows as usize,
            bytes: info.bytes,
            max_batch: info.max_batch,
            fences: info.fences,
            fence_stride: info.fence_stride,
            _held: None,
        });
        schema.get_or_insert(plain);
    }
    // Only a plan edited by hand gives a merge no run to read.
    let schema = schema.ok_or_else(|| Error::BadPlan {
        reason: "a sort merge reads no sorted run".into(),
    })?;
    Ok((schema, runs))
}

/// Opens the IPC file at `path` at a batch index, its batches given `schema`.
fn file_opener(
    path: PathBuf,
    schema: SchemaRef,
) -> Box<dyn Fn(usize) -> Result<Source<'static>> + Send + Sync> {
    Box::new(move |first| {
        let file = File::open(&path).at(&path)?;
        let corrupt = {
            let path = path.clone();
            move |e: arrow::error::ArrowError| Error::Corrupt {
                path: path.clone(),
                format: "Arrow IPC",
                detail: e.to_string(),
            }
        };
        // Unbuffered: the reader reads whole messages, and a merge holds one reader
        // a run.
        let mut reader = FileReader::try_new(file, None).map_err(&corrupt)?;
        // Arrow seeks only to a batch that exists: a run of no rows (from a bucket
        // an aggregation left empty) or a start past the last batch reads nothing.
        if first >= reader.num_batches() {
            return Ok(Box::new(std::iter::empty()) as Source<'static>);
        }
        reader.set_index(first).map_err(&corrupt)?;
        let schema = schema.clone();
        let source: Source<'static> = Box::new(
            reader.map(move |b| b.map_err(&corrupt).and_then(|b| with_schema(b, &schema))),
        );
        Ok(source)
    })
}
