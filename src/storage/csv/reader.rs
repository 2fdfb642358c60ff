//! Reading CSV partitions: each byte range is streamed through Arrow's CSV decoder
//! in small reads, so a partition never holds more than one read buffer and one
//! batch, whatever the blocksize.

use std::fs::File;
use std::os::unix::fs::FileExt;

use arrow::csv::reader::Decoder;
use arrow::record_batch::RecordBatch;

use super::{diagnose, CsvSource};
use crate::error::{Error, IoResultExt, Result};

const READ: usize = 1 << 20;

/// Yields the record batches of one byte range.
pub(super) struct PartitionReader<'a> {
    source: &'a CsvSource,
    range: (u64, u64),
    file: File,
    pos: u64,
    buf: Vec<u8>,
    buf_pos: usize,
    decoder: Decoder,
    done: bool,
}

impl<'a> PartitionReader<'a> {
    pub(super) fn new(source: &'a CsvSource, range: (u64, u64)) -> Result<Self> {
        let file = File::open(&source.path).at(&source.path)?;
        Ok(PartitionReader {
            source,
            range,
            file,
            pos: range.0,
            buf: Vec::new(),
            buf_pos: 0,
            decoder: source.decoder(),
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.buf_pos == self.buf.len() {
                if self.pos < self.range.1 {
                    let n = ((self.range.1 - self.pos) as usize).min(READ);
                    self.buf.resize(n, 0);
                    self.file
                        .read_exact_at(&mut self.buf, self.pos)
                        .at(&self.source.path)?;
                    self.pos += n as u64;
                    self.buf_pos = 0;
                } else {
                    // End of the range: complete a last row with no newline, flush.
                    self.decoder.decode(&[])?;
                    self.done = true;
                    return Ok(self.decoder.flush()?);
                }
            }
            let n = self.decoder.decode(&self.buf[self.buf_pos..])?;
            self.buf_pos += n;
            if self.decoder.capacity() == 0 {
                if let Some(batch) = self.decoder.flush()? {
                    return Ok(Some(batch));
                }
            }
        }
    }
}

impl Iterator for PartitionReader<'_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(Error::Arrow(e)) => {
                // Arrow's message counts rows within this range; find the exact file
                // line, column and value with a slower second pass.
                self.done = true;
                Some(Err(diagnose::locate(
                    self.source,
                    self.range,
                    &e.to_string(),
                )))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
