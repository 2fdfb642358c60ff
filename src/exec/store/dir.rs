//! The directory store: every entry a file under the plan's working directory,
//! published atomically (written under a temporary name, then renamed), so that any
//! process on any machine that sees the directory can read what another published.
//!
//! Record batches are Arrow IPC files (`NAME.arrow`, compressed as the job's spill
//! compression says: by default uncompressed while the entries are small against the
//! spill quota, zstd level 1 past that), bytes
//! are raw files (`NAME.bin`), small values JSON (`NAME.json`); `NAME` is the
//! reference's [`DataRef::store_name`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, IoResultExt, Result};
use crate::memory::{DiskManager, SpillCompression};
use crate::plan::{with_metadata, BatchStream, BatchWriter, DataRef, DataStore, Entry};

/// Suffix of a file being written; never read as an entry.
const TEMP_MARK: &str = ".tmp-";

/// The three kinds of entry file, by extension.
const KINDS: [&str; 3] = ["arrow", "bin", "json"];

/// Entries as files in one directory.
#[derive(Debug)]
pub struct DirStore {
    dir: PathBuf,
    /// Bytes this store has written.
    written: AtomicU64,
    /// How record-batch entries are compressed.
    compression: SpillCompression,
    /// The quota whose use decides [`SpillCompression::Auto`] (none: uncompressed).
    quota: Option<Arc<DiskManager>>,
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl DirStore {
    /// A store in `dir`, created if missing.
    ///
    /// # Errors
    /// When `dir` cannot be created.
    pub fn new(dir: &Path) -> Result<Self> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            // A plan edited to name a file as its working directory: say so, not
            // "File exists".
            if dir.exists() && !dir.is_dir() {
                return Err(Error::NotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            return Err(Error::io(dir, e));
        }
        Ok(DirStore {
            dir: dir.to_path_buf(),
            written: AtomicU64::new(0),
            compression: SpillCompression::Auto,
            quota: None,
        })
    }

    /// Compresses record-batch entries with `compression`; `auto` decides by the use
    /// of `quota` (the job's spill quota) as each entry is written. Readers need not
    /// know: an IPC file says how it is compressed.
    pub fn with_compression(
        mut self,
        compression: SpillCompression,
        quota: Option<Arc<DiskManager>>,
    ) -> Self {
        self.compression = compression;
        self.quota = quota;
        self
    }

    /// The compression of an entry written now.
    fn compression_now(&self) -> SpillCompression {
        match &self.quota {
            Some(q) => self.compression.resolve(q.used(), q.quota()),
            None => self.compression.resolve(0, u64::MAX),
        }
    }

    /// Bytes written to entry files so far.
    pub fn written_bytes(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn path(&self, key: &DataRef, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", key.store_name()))
    }

    /// The file holding `key`'s entry, and its extension.
    fn find(&self, key: &DataRef) -> Option<(PathBuf, &'static str)> {
        // One look at the dataset's directory answers for an entry of a dataset
        // nothing was written to yet: every task of a fresh run, when the executor
        // asks which outputs are already published.
        let first = self.path(key, KINDS[0]);
        if !first.parent().is_some_and(Path::is_dir) {
            return None;
        }
        KINDS
            .iter()
            .map(|ext| (self.path(key, ext), *ext))
            .find(|(p, _)| p.is_file())
    }

    fn missing(&self, key: &DataRef) -> Error {
        Error::MissingEntry {
            key: key.to_string(),
            dir: self.dir.clone(),
        }
    }

    /// Writes `entry` for `key` and publishes it; returns the bytes written.
    ///
    /// # Errors
    /// I/O errors ([`Error::DiskFull`] among them); the temporary file is removed.
    pub fn write(&self, key: &DataRef, entry: &Entry) -> Result<u64> {
        let ext = match entry {
            Entry::Batches { .. } => "arrow",
            Entry::Bytes(_) => "bin",
            Entry::Json(_) => "json",
        };
        let compression = self.compression_now();
        self.publish(key, ext, |temp| write_file(temp, entry, compression))
    }

    /// A writer of `key`'s record-batch entry, of `schema`: a temporary file
    /// beside the entry's, renamed into place when it finishes.
    ///
    /// # Errors
    /// I/O errors creating the file.
    pub fn batch_writer(&self, key: &DataRef, schema: &SchemaRef) -> Result<DirBatchWriter<'_>> {
        let (path, temp) = self.temp_for(key, "arrow")?;
        let compression = self.compression_now();
        let mut writer = DirBatchWriter {
            store: self,
            path,
            temp,
            writer: None,
        };
        let file = File::create(&writer.temp).at(&writer.temp)?;
        let out = BufWriter::with_capacity(1 << 20, file);
        writer.writer = Some(ipc_writer(out, &writer.temp, schema, compression)?);
        Ok(writer)
    }

    /// Runs `write` on a temporary file beside `key`'s entry file, then renames it
    /// into place; returns what `write` returned.
    fn publish(
        &self,
        key: &DataRef,
        ext: &str,
        write: impl FnOnce(&Path) -> Result<u64>,
    ) -> Result<u64> {
        let (path, temp) = self.temp_for(key, ext)?;
        let written = write(&temp).and_then(|n| self.commit(&temp, &path, n));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// The path of `key`'s entry file with extension `ext`, and a temporary path
    /// beside it (its directory created).
    fn temp_for(&self, key: &DataRef, ext: &str) -> Result<(PathBuf, PathBuf)> {
        let path = self.path(key, ext);
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).at(parent)?;
        let temp = PathBuf::from(format!(
            "{}{TEMP_MARK}{}-{}",
            path.display(),
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        Ok((path, temp))
    }

    /// Renames the written file `temp` (`n` bytes) into place at `path`.
    fn commit(&self, temp: &Path, path: &Path, n: u64) -> Result<u64> {
        // A rename replaces an entry another copy of the task published meanwhile:
        // tasks are deterministic, so both are the same.
        std::fs::rename(temp, path).at(path)?;
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Reads `key`'s entry.
    ///
    /// # Errors
    /// [`Error::MissingEntry`]; I/O and decoding errors.
    pub fn read(&self, key: &DataRef) -> Result<Entry> {
        let (path, ext) = self.find(key).ok_or_else(|| self.missing(key))?;
        match ext {
            "arrow" => {
                let (schema, stream) = open_batches(&path)?;
                let batches = stream.collect::<Result<Vec<_>>>()?;
                Ok(Entry::Batches { schema, batches })
            }
            "bin" => Ok(Entry::Bytes(std::fs::read(&path).at(&path)?.into())),
            _ => {
                let text = std::fs::read(&path).at(&path)?;
                let value = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
                    path: path.clone(),
                    format: "JSON",
                    detail: e.to_string(),
                })?;
                Ok(Entry::Json(value))
            }
        }
    }

    /// Removes `key`'s entry, if any.
    pub fn remove(&self, key: &DataRef) {
        for ext in KINDS {
            let _ = std::fs::remove_file(self.path(key, ext));
        }
    }

    /// Removes the temporary files of entries being written by this process (a
    /// failed or cancelled run); published entries stay for a resume.
    pub fn remove_temporaries(&self) {
        let mark = format!("{TEMP_MARK}{}-", std::process::id());
        remove_matching(&self.dir, &|name: &str| name.contains(&mark));
    }
}

/// Removes, under `dir`, every file whose name `matches`.
fn remove_matching(dir: &Path, matches: &dyn Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_matching(&path, matches);
        } else if matches(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Writes `entry` to a new file at `path`; returns the bytes written.
fn write_file(path: &Path, entry: &Entry, compression: SpillCompression) -> Result<u64> {
    let file = File::create(path).at(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    match entry {
        Entry::Batches { schema, batches } => {
            let mut writer = ipc_writer(&mut out, path, schema, compression)?;
            let written = (|| {
                for b in batches {
                    writer.write(b)?;
                }
                writer.finish()
            })();
            written.map_err(|e| arrow_io(path, e))?;
        }
        Entry::Bytes(bytes) => out.write_all(bytes).at(path)?,
        Entry::Json(value) => serde_json::to_writer(&mut out, value)
            .map_err(|e| Error::io(path, std::io::Error::other(e)))?,
    }
    finish_file(path, out)
}

/// An Arrow error writing the file at `path`: the I/O error it wraps (a full disk
/// among them), told by its kind, as any other write.
fn arrow_io(path: &Path, e: arrow::error::ArrowError) -> Error {
    match e {
        arrow::error::ArrowError::IoError(_, io) => Error::io(path, io),
        other => Error::Arrow(other),
    }
}

/// A record-batch entry of a [`DirStore`] being written ([`DirStore::batch_writer`]).
pub struct DirBatchWriter<'a> {
    store: &'a DirStore,
    path: PathBuf,
    temp: PathBuf,
    /// `None` once finished (or never opened): nothing left to remove.
    writer: Option<FileWriter<BufWriter<File>>>,
}

impl DirBatchWriter<'_> {
    /// Appends `batch`.
    ///
    /// # Errors
    /// I/O errors ([`Error::DiskFull`] among them).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(writer) = &mut self.writer else {
            return Err(Error::bug("write to a finished entry", self.path.display()));
        };
        writer.write(batch).map_err(|e| arrow_io(&self.temp, e))
    }

    /// Writes the footer, carrying `metadata` (merged into the schema when the
    /// entry is read: [`open_batches`]), and publishes the file; returns its bytes.
    ///
    /// # Errors
    /// I/O errors; nothing is published then.
    pub fn finish(mut self, metadata: HashMap<String, String>) -> Result<u64> {
        let Some(mut writer) = self.writer.take() else {
            return Err(Error::bug("finish a finished entry", self.path.display()));
        };
        let written = (|| {
            for (k, v) in metadata {
                writer.write_metadata(k, v);
            }
            writer.finish().map_err(|e| arrow_io(&self.temp, e))?;
            let out = writer.into_inner().map_err(|e| arrow_io(&self.temp, e))?;
            let n = finish_file(&self.temp, out)?;
            self.store.commit(&self.temp, &self.path, n)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&self.temp);
        }
        written
    }
}

impl Drop for DirBatchWriter<'_> {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

impl BatchWriter for DirBatchWriter<'_> {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        DirBatchWriter::write(self, &batch)
    }

    fn finish(self: Box<Self>, metadata: HashMap<String, String>) -> Result<()> {
        DirBatchWriter::finish(*self, metadata).map(|_| ())
    }
}

/// An IPC file writer of `schema` with `compression`, into the file at `path`.
fn ipc_writer<W: Write>(
    out: W,
    path: &Path,
    schema: &SchemaRef,
    compression: SpillCompression,
) -> Result<FileWriter<W>> {
    FileWriter::try_new_with_options(out, schema, compression.ipc_write_options()?)
        .map_err(|e| arrow_io(path, e))
}

/// Flushes `out` (the file at `path`); returns the file's length.
fn finish_file(path: &Path, out: BufWriter<File>) -> Result<u64> {
    let file = out
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    Ok(file.metadata().at(path)?.len())
}

/// The batches of the IPC file at `path`, read one at a time.
fn open_batches(path: &Path) -> Result<(SchemaRef, BatchStream)> {
    let file = File::open(path).at(path)?;
    let corrupt = |e: arrow::error::ArrowError| Error::Corrupt {
        path: path.to_path_buf(),
        format: "Arrow IPC",
        detail: e.to_string(),
    };
    let reader = FileReader::try_new(file, None).map_err(corrupt)?;
    let schema = with_metadata(&reader.schema(), reader.custom_metadata());
    let path = Arc::new(path.to_path_buf());
    let stream = reader.map(move |b| {
        b.map_err(|e| Error::Corrupt {
            path: path.as_ref().clone(),
            format: "Arrow IPC",
            detail: e.to_string(),
        })
    });
    Ok((schema, Box::new(stream)))
}

impl DataStore for DirStore {
    fn put(&self, key: &DataRef, entry: Entry) -> Result<()> {
        self.write(key, &entry).map(|_| ())
    }

    fn batch_writer<'s>(
        &'s self,
        key: &DataRef,
        schema: SchemaRef,
        _expected_bytes: u64,
    ) -> Result<Box<dyn BatchWriter + 's>> {
        Ok(Box::new(DirStore::batch_writer(self, key, &schema)?))
    }

    fn get(&self, key: &DataRef) -> Result<Arc<Entry>> {
        self.read(key).map(Arc::new)
    }

    fn batches(&self, key: &DataRef) -> Result<(SchemaRef, BatchStream)> {
        let (path, ext) = self.find(key).ok_or_else(|| self.missing(key))?;
        if ext != "arrow" {
            return Err(Error::WrongEntry {
                key: key.to_string(),
                holds: if ext == "bin" {
                    "bytes"
                } else {
                    "a JSON value"
                },
                wanted: "record batches",
            });
        }
        open_batches(&path)
    }

    fn contains(&self, key: &DataRef) -> bool {
        self.find(key).is_some()
    }

    fn release(&self, key: &DataRef) {
        self.remove(key);
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
