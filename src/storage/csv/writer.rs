//! Writing CSV: a header row, RFC 4180 quoting where needed, ISO-8601 dates and
//! timestamps, nulls as empty fields.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::csv::{Writer, WriterBuilder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, IoResultExt, Result};
use crate::storage::frame::FrameSink;

/// A CSV file being written.
pub struct CsvSink {
    path: PathBuf,
    schema: SchemaRef,
    delimiter: u8,
    writer: Option<Writer<BufWriter<File>>>,
    wrote_batch: bool,
}

impl CsvSink {
    /// Creates `path` for rows of `schema`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, schema: SchemaRef, delimiter: u8) -> Result<Self> {
        let file = File::create(path).at(path)?;
        let writer = WriterBuilder::new()
            .with_header(true)
            .with_delimiter(delimiter)
            .build(BufWriter::with_capacity(1 << 20, file));
        Ok(CsvSink {
            path: path.to_path_buf(),
            schema,
            delimiter,
            writer: Some(writer),
            wrote_batch: false,
        })
    }

    fn map(&self, e: arrow::error::ArrowError) -> Error {
        match e {
            arrow::error::ArrowError::IoError(_, io) => Error::io(&self.path, io),
            other => Error::Arrow(other),
        }
    }
}

impl FrameSink for CsvSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Internal("csv sink used after finish".into()))?;
        let result = writer.write(batch);
        self.wrote_batch = true;
        result.map_err(|e| self.map(e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| Error::Internal("csv sink finished twice".into()))?;
        let mut inner = writer.into_inner();
        if !self.wrote_batch {
            // Arrow writes the header with the first batch; a table with no rows
            // still gets one.
            let delimiter = (self.delimiter as char).to_string();
            let header: Vec<String> = self
                .schema
                .fields()
                .iter()
                .map(|f| quote(f.name()))
                .collect();
            writeln!(inner, "{}", header.join(&delimiter)).at(&self.path)?;
        }
        inner.flush().at(&self.path)?;
        inner
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        Ok(())
    }
}

fn quote(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r', ';', '\t']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}
