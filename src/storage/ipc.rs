//! Arrow IPC files (`.arrow`, `.feather` v2): each record batch is a partition. The
//! IPC stream format (no footer) is read too, as one sequential partition.
//!
//! Every length an IPC file states (its footer, each block's offset, metadata and
//! body, each buffer inside a body, a compressed buffer's decompressed size) is
//! compared with the file before the arrow reader sees it: the reader allocates what
//! those lengths say and asserts on a buffer past its body. What is left to the
//! reader runs under [`guard_decoder`], so a file can make an error, never a crash.

pub mod parts;

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::{project, BatchIter, FrameReadOptions, FrameSource};
use crate::storage::{decoder_detail, guard_decoder, unique_schema};

const FILE_MAGIC: &[u8] = b"ARROW1";
/// The first bytes of a Feather v1 file (a format older than Arrow IPC).
pub const FEATHER_V1_MAGIC: &[u8] = b"FEA1";
/// Leading magic and padding, footer length, trailing magic.
const FRAME_BYTES: u64 = 8 + 4 + 6;
/// No codec an IPC file may use (lz4 frame, zstd) expands data more than this.
const MAX_EXPANSION: u64 = 1 << 16;

/// An Arrow IPC file or stream opened for reading.
pub struct IpcSource {
    path: PathBuf,
    stream: bool,
    batches: usize,
    rows: Option<u64>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    /// Whether the file's column names were made unique (batches get `schema`).
    renamed: bool,
    len: u64,
}

fn corrupt(path: &Path, e: ArrowError) -> Error {
    match e {
        // A decompressor reports bad data as an I/O error without an OS error code:
        // that is the file's fault, not the disk's.
        ArrowError::IoError(_, io) if io.raw_os_error().is_some() => Error::io(path, io),
        other => Error::corrupt(path, "arrow ipc", decoder_detail(&other)),
    }
}

fn bad(path: &Path, detail: impl ToString) -> Error {
    Error::corrupt(path, "arrow ipc", detail)
}

impl IpcSource {
    /// Opens `path`, reading the footer (file format) or the schema (stream format).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a file that is neither or whose lengths do not fit the
    /// file; [`Error::Unsupported`] for Feather v1; [`Error::NoSuchColumn`].
    pub fn open(path: &Path, options: &FrameReadOptions) -> Result<Self> {
        let mut file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let mut magic = [0u8; 6];
        let got = read_up_to(&mut file, &mut magic).at(path)?;
        if magic[..got].starts_with(FEATHER_V1_MAGIC) {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: "format",
                found: "Feather v1".into(),
                supported: "; blockwise reads Feather v2 (Arrow IPC). Rewrite it with pyarrow: \
                            pyarrow.feather.write_feather(pyarrow.feather.read_table(path), \
                            path, version=2)"
                    .into(),
            });
        }
        let stream = got < FILE_MAGIC.len() || magic != FILE_MAGIC;
        let file = File::open(path).at(path)?;
        let (full, batches, rows): (SchemaRef, usize, Option<u64>) = if stream {
            let layout = check_stream(path, &file, len)?;
            let reader = guard_decoder(path, "arrow ipc", || {
                StreamReader::try_new(BufReader::new(file), None).map_err(|e| corrupt(path, e))
            })?;
            // A stream is read front to back: one partition, however many batches.
            (reader.schema(), 1, Some(layout.rows))
        } else {
            let layout = check_file(path, &file, len)?;
            let reader = guard_decoder(path, "arrow ipc", || {
                FileReader::try_new_buffered(file, None).map_err(|e| corrupt(path, e))
            })?;
            if reader.num_batches() != layout.batches {
                return Err(bad(path, "the footer lists its batches inconsistently"));
            }
            (reader.schema(), layout.batches, Some(layout.rows))
        };
        let (full, renamed) = match unique_schema(&full) {
            Some(unique) => (unique, true),
            None => (full, false),
        };
        let (projection, schema) = project(path, &full, options.columns.as_deref())?;
        Ok(IpcSource {
            path: path.to_path_buf(),
            stream,
            batches,
            rows,
            projection,
            schema,
            renamed,
            len,
        })
    }

    /// The batch as this source names its columns.
    fn named(&self, batch: RecordBatch) -> Result<RecordBatch> {
        if !self.renamed {
            return Ok(batch);
        }
        RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
            .map_err(|e| corrupt(&self.path, e))
    }
}

/// Reads into `buf` until it is full or the file ends; returns the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What [`check_file`] learned from an IPC file's footer and message headers.
struct FileLayout {
    batches: usize,
    rows: u64,
}

/// Checks every length an IPC file states against the file: the footer, each block
/// (offset, metadata, body), each buffer of each message, and the decompressed size
/// of each compressed buffer. Returns the batch count and the rows, read from the
/// message headers without decoding any data.
fn check_file(path: &Path, file: &File, len: u64) -> Result<FileLayout> {
    if len < FRAME_BYTES {
        return Err(bad(
            path,
            format!("{len} bytes is too short for an Arrow IPC file (truncated?)"),
        ));
    }
    let mut trailer = [0u8; 10];
    file.read_exact_at(&mut trailer, len - 10).at(path)?;
    if &trailer[4..] != FILE_MAGIC {
        return Err(bad(
            path,
            "it does not end with the ARROW1 magic (truncated, or an IPC stream named as a file?)",
        ));
    }
    let footer_len = i32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let room = len - FRAME_BYTES;
    let footer_len = match u64::try_from(footer_len) {
        Ok(n) if n > 0 && n <= room => n,
        _ => {
            return Err(bad(
                path,
                format!("the footer claims {footer_len} bytes, but the file has room for {room}"),
            ))
        }
    };
    let data_end = len - 10 - footer_len;
    let mut footer = vec![0u8; footer_len as usize];
    file.read_exact_at(&mut footer, data_end).at(path)?;
    let footer = arrow::ipc::root_as_footer(&footer)
        .map_err(|e| bad(path, format!("invalid footer ({e})")))?;
    let mut layout = FileLayout {
        batches: 0,
        rows: 0,
    };
    let dictionaries = footer.dictionaries().into_iter().flatten();
    let batches = footer.recordBatches().into_iter().flatten();
    for (block, is_batch) in dictionaries
        .map(|b| (b, false))
        .chain(batches.map(|b| (b, true)))
    {
        let rows = check_block(path, file, block, data_end)?;
        if is_batch {
            layout.batches += 1;
            layout.rows = layout
                .rows
                .checked_add(rows)
                .ok_or_else(|| bad(path, "the batches' row counts overflow"))?;
        }
    }
    Ok(layout)
}

/// Checks one block of an IPC file (see [`check_file`]); returns its rows.
fn check_block(path: &Path, file: &File, block: &arrow::ipc::Block, data_end: u64) -> Result<u64> {
    let (offset, meta_len, body_len) = (block.offset(), block.metaDataLength(), block.bodyLength());
    let describe = || {
        format!("a block at offset {offset} with {meta_len} bytes of metadata and a {body_len}-byte body")
    };
    let fits = u64::try_from(offset)
        .ok()
        .filter(|&o| o >= 8)
        .and_then(|o| {
            let m = u64::try_from(meta_len).ok().filter(|&m| m >= 8)?;
            let b = u64::try_from(body_len).ok()?;
            let end = o.checked_add(m)?.checked_add(b)?;
            (end <= data_end).then_some((o, m, b))
        });
    let Some((offset, meta_len, body_len)) = fits else {
        return Err(bad(
            path,
            format!(
                "{} does not fit in the file's {data_end} bytes of data",
                describe()
            ),
        ));
    };
    let mut meta = vec![0u8; meta_len as usize];
    file.read_exact_at(&mut meta, offset).at(path)?;
    // A message is prefixed by the continuation marker and its length (the old form
    // has the length alone).
    let (prefix, stated): (usize, i32) = if meta[..4] == [0xff; 4] {
        (8, i32::from_le_bytes([meta[4], meta[5], meta[6], meta[7]]))
    } else {
        (4, i32::from_le_bytes([meta[0], meta[1], meta[2], meta[3]]))
    };
    let message = usize::try_from(stated)
        .ok()
        .and_then(|n| meta.get(prefix..prefix.checked_add(n)?))
        .ok_or_else(|| {
            bad(
                path,
                format!("{}: its message claims {stated} bytes", describe()),
            )
        })?;
    let rows = check_message(path, file, message, offset + meta_len, body_len, &describe)?;
    rows.ok_or_else(|| {
        bad(
            path,
            format!("{}: not a record batch or dictionary message", describe()),
        )
    })
}

/// Checks one message (its flatbuffer `message`, its body at `body_start` of
/// `body_len` bytes): every buffer lies in the body, and no compressed buffer claims
/// more than its codec could expand it to. Returns the rows of a record batch or
/// dictionary batch, `None` for other messages (a schema).
fn check_message(
    path: &Path,
    file: &File,
    message: &[u8],
    body_start: u64,
    body_len: u64,
    describe: &dyn Fn() -> String,
) -> Result<Option<u64>> {
    let message = arrow::ipc::root_as_message(message)
        .map_err(|e| bad(path, format!("{}: invalid message ({e})", describe())))?;
    let batch = match (
        message.header_as_record_batch(),
        message.header_as_dictionary_batch(),
    ) {
        (Some(batch), _) => batch,
        (None, Some(dict)) => dict
            .data()
            .ok_or_else(|| bad(path, format!("{}: a dictionary without data", describe())))?,
        (None, None) => return Ok(None),
    };
    let rows = u64::try_from(batch.length())
        .map_err(|_| bad(path, format!("{}: {} rows", describe(), batch.length())))?;
    let compressed = batch.compression().is_some();
    for buffer in batch.buffers().into_iter().flatten() {
        let (b_off, b_len) = (buffer.offset(), buffer.length());
        let range = u64::try_from(b_off)
            .ok()
            .zip(u64::try_from(b_len).ok())
            .filter(|&(o, l)| o.checked_add(l).is_some_and(|end| end <= body_len));
        let Some((b_off, b_len)) = range else {
            return Err(bad(
                path,
                format!(
                    "{}: a buffer at offset {b_off} of {b_len} bytes lies outside the body",
                    describe()
                ),
            ));
        };
        if compressed && b_len >= 8 {
            // The first 8 bytes state the decompressed size, which the reader
            // allocates before decompressing.
            let mut size = [0u8; 8];
            file.read_exact_at(&mut size, body_start + b_off).at(path)?;
            let size = i64::from_le_bytes(size);
            let limit = (b_len - 8).saturating_mul(MAX_EXPANSION).max(64);
            if size < -1 || (size > 0 && size as u64 > limit) {
                return Err(Error::SizeMismatch {
                    path: path.to_path_buf(),
                    what: "compressed buffer",
                    shape: format!("of {} bytes at body offset {b_off}", b_len - 8),
                    needed: size.to_string(),
                    present: format!("no codec expands {} bytes past {limit}", b_len - 8),
                });
            }
        }
    }
    Ok(Some(rows))
}

/// Walks the messages of an IPC stream, checking each as [`check_message`] does and
/// that each body lies inside the file. Returns the batches and rows.
fn check_stream(path: &Path, file: &File, len: u64) -> Result<FileLayout> {
    let mut layout = FileLayout {
        batches: 0,
        rows: 0,
    };
    let mut at = 0u64;
    loop {
        let mut word = [0u8; 4];
        if at + 4 > len {
            break;
        }
        file.read_exact_at(&mut word, at).at(path)?;
        let mut header = at + 4;
        if word == [0xff; 4] {
            if header + 4 > len {
                break;
            }
            file.read_exact_at(&mut word, header).at(path)?;
            header += 4;
        }
        let stated = i32::from_le_bytes(word);
        if stated == 0 {
            break; // the end-of-stream marker
        }
        let describe = || format!("the message at offset {at}");
        let meta_len = u64::try_from(stated)
            .ok()
            .filter(|&m| header.checked_add(m).is_some_and(|end| end <= len))
            .ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "{}: its header claims {stated} bytes, past the end of the file ({len} bytes)",
                        describe()
                    ),
                )
            })?;
        let mut meta = vec![0u8; meta_len as usize];
        file.read_exact_at(&mut meta, header).at(path)?;
        let body_start = header + meta_len;
        let body_len = arrow::ipc::root_as_message(&meta)
            .map_err(|e| bad(path, format!("{}: invalid message ({e})", describe())))?
            .bodyLength();
        let body_len = u64::try_from(body_len)
            .ok()
            .filter(|&b| body_start.checked_add(b).is_some_and(|end| end <= len))
            .ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "{}: its body of {body_len} bytes runs past the end of the file ({len} bytes)",
                        describe()
                    ),
                )
            })?;
        if let Some(rows) = check_message(path, file, &meta, body_start, body_len, &describe)? {
            layout.batches += 1;
            layout.rows = layout
                .rows
                .checked_add(rows)
                .ok_or_else(|| bad(path, "the batches' row counts overflow"))?;
        }
        at = body_start + body_len;
    }
    Ok(layout)
}

impl FrameSource for IpcSource {
    fn format(&self) -> &'static str {
        "ipc"
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn num_partitions(&self) -> usize {
        self.batches
    }

    fn num_rows(&self) -> Option<u64> {
        self.rows
    }

    fn partition_bytes(&self, _partition: usize) -> u64 {
        self.len / self.batches.max(1) as u64
    }

    fn read_partition(&self, partition: usize) -> Result<BatchIter<'_>> {
        let path = self.path.clone();
        let file = File::open(&path).at(&path)?;
        if self.stream {
            let mut reader = guard_decoder(&path, "arrow ipc", || {
                StreamReader::try_new(BufReader::new(file), self.projection.clone())
                    .map_err(|e| corrupt(&path, e))
            })?;
            let mut failed = false;
            return Ok(Box::new(std::iter::from_fn(move || {
                if failed {
                    return None;
                }
                let next = guard_decoder(&path, "arrow ipc", || {
                    reader.next().transpose().map_err(|e| corrupt(&path, e))
                })
                .transpose()?
                .and_then(|b| self.named(b));
                failed = next.is_err();
                Some(next)
            })));
        }
        let batch = guard_decoder(&path, "arrow ipc", || {
            let mut reader = FileReader::try_new_buffered(file, self.projection.clone())
                .map_err(|e| corrupt(&path, e))?;
            reader.set_index(partition).map_err(|e| corrupt(&path, e))?;
            reader.next().transpose().map_err(|e| corrupt(&path, e))
        })?;
        Ok(Box::new(batch.into_iter().map(move |b| self.named(b))))
    }

    fn details(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut details = vec![("batches", self.batches.into())];
        if self.stream {
            details.push(("ipc_format", "stream".into()));
        }
        details
    }
}

/// Compression of the buffers in a written IPC file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpcCompression {
    /// Uncompressed (so readers can memory-map it).
    #[default]
    None,
    /// LZ4 frames (pyarrow's feather default).
    Lz4,
    /// zstd.
    Zstd,
}
