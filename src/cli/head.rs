//! `blockwise head PATH [-n N]`: the first rows of a table, or the first entries
//! along the first axis of an array.
//!
//! ```text
//! blockwise head PATH [-n 10] [--from FORMAT] [--delimiter ,]
//! ```
//!
//! `--from` names the format of a source whose contents and extension do not tell
//! it (a CSV file called `data.out`), as for `convert` and `info`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::record_batch::RecordBatch;

use super::common::{parse_delimiter, with_from_hint};
use crate::error::{Error, Result};
use crate::grid::Subset;
use crate::storage::array::{ArraySource, DType};
use crate::storage::frame::{FrameReadOptions, FrameSource};
use crate::storage::{detect, open_array, open_frame, Format, Kind};

/// Values shown per array row; the rest are counted.
const SHOWN: u64 = 20;
/// Most table cells formatted at once: `head` prints as it reads, in pieces of at
/// most this many cells (and at most [`PRINT_ROWS`] rows), so its memory does not
/// grow with `-n`.
const PRINT_CELLS: usize = 1 << 20;
/// Most table rows formatted at once.
const PRINT_ROWS: usize = 4096;
/// Most bytes of array data read at once.
const SLAB_BYTES: u64 = 4 << 20;

/// Show the first rows of a dataset
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file or a directory
    path: PathBuf,
    /// How many rows
    #[arg(short = 'n', long = "rows", default_value_t = 10)]
    n: usize,
    /// The dataset's format: csv, parquet, ipc, npy, npy-stack, zarr [default: from its contents and extension]
    #[arg(long)]
    from: Option<String>,
    /// CSV field delimiter
    #[arg(long, value_parser = parse_delimiter, default_value = ",")]
    delimiter: u8,
}

/// Where `head` prints; a reader that went away (a closed pipe) ends the output
/// early and successfully, as `head` and `xsv` do.
pub(super) struct Out<W: Write> {
    pub(super) w: W,
    pub(super) closed: bool,
}

impl<W: Write> Out<W> {
    pub(super) fn print(&mut self, text: &str) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.w.write_all(text.as_bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(Error::io(Path::new("<stdout>"), e)),
        }
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.w.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(|e| Error::io(Path::new("<stdout>"), e)),
        }
    }
}

pub(super) fn run(args: Args) -> Result<ExitCode> {
    let format = match args.from.as_deref().map(Format::parse).transpose()? {
        Some(format) => format,
        None => detect(&args.path).map_err(|e| with_from_hint(e, &args.path))?,
    };
    let mut out = Out {
        w: std::io::BufWriter::new(std::io::stdout().lock()),
        closed: false,
    };
    match format.kind() {
        Kind::Frame => {
            // One range for the whole of a CSV file: only what is printed is read
            // (no scan of the file to cut it into partitions), and batches no
            // larger than what is printed.
            let mut read = FrameReadOptions::default()
                .with_delimiter(args.delimiter)
                .with_blocksize(u64::MAX);
            read.batch_rows = args.n.clamp(1, PRINT_ROWS);
            let source = open_frame(&args.path, format, &read)?;
            print_table(source.as_ref(), args.n, &mut out)?;
        }
        Kind::Array => {
            let source = open_array(&args.path, format)?;
            print_array(source.as_ref(), args.n as u64, &mut out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the first `n` rows of `source` as a table, piece by piece, reading no
/// partition past the one that holds the last row printed.
fn print_table<W: Write>(source: &dyn FrameSource, n: usize, out: &mut Out<W>) -> Result<()> {
    let columns = source.schema().fields().len().max(1);
    let piece_rows = (PRINT_CELLS / columns).clamp(1, PRINT_ROWS);
    let mut piece: Vec<RecordBatch> = Vec::new();
    let mut piece_len = 0;
    let mut printed_header = false;
    let mut rows = 0;
    'parts: for p in 0..source.num_partitions() {
        if rows >= n || out.closed {
            break;
        }
        for batch in source.read_partition(p)? {
            let batch = batch?;
            let mut offset = 0;
            while offset < batch.num_rows() && rows < n {
                let take = (n - rows)
                    .min(batch.num_rows() - offset)
                    .min(piece_rows - piece_len);
                piece.push(batch.slice(offset, take));
                offset += take;
                rows += take;
                piece_len += take;
                if piece_len == piece_rows {
                    print_piece(&piece, &mut printed_header, out)?;
                    piece.clear();
                    piece_len = 0;
                }
            }
            if rows >= n || out.closed {
                break 'parts;
            }
        }
    }
    if !piece.is_empty() || !printed_header {
        if piece.is_empty() {
            piece.push(RecordBatch::new_empty(source.schema()));
        }
        print_piece(&piece, &mut printed_header, out)?;
    }
    Ok(())
}

/// Prints batches as table rows: the first piece with the table's header, later
/// ones without (each closes with a border line).
pub(super) fn print_piece<W: Write>(
    piece: &[RecordBatch],
    printed_header: &mut bool,
    out: &mut Out<W>,
) -> Result<()> {
    let text = arrow::util::pretty::pretty_format_batches(piece)?.to_string();
    if *printed_header {
        // Border, names, border: the header is already on screen.
        let body = text.splitn(4, '\n').nth(3).unwrap_or("");
        out.print(body)?;
    } else {
        out.print(&text)?;
        *printed_header = true;
    }
    out.print("\n")
}

/// Prints the first `n` entries along the first axis: for each, its first
/// [`SHOWN`] values (in C order) and how many more there are. Only those values are
/// read, in slabs of at most [`SLAB_BYTES`].
fn print_array<W: Write>(source: &dyn ArraySource, n: u64, out: &mut Out<W>) -> Result<()> {
    let shape = source.meta().shape();
    let dtype = source.meta().dtype;
    out.print(&format!("# shape {shape:?} dtype {dtype}\n"))?;
    if shape.is_empty() {
        let data = source.read(&Subset::new(Vec::new(), Vec::new()))?;
        return out.print(&format!("{}\n", format_values(&data, dtype)?.join(" ")));
    }
    let per_row = shape[1..]
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .unwrap_or(u64::MAX);
    if per_row == 0 {
        return Ok(());
    }
    // The box at the start of a row that holds its first SHOWN values: trailing
    // axes whole while they hold fewer, then as much of the next axis as needed.
    let mut block = vec![1u64; shape.len()];
    let mut covered = 1u64;
    for axis in (1..shape.len()).rev() {
        if covered >= SHOWN {
            break;
        }
        let need = SHOWN.div_ceil(covered);
        block[axis] = shape[axis].min(need);
        covered = covered.saturating_mul(block[axis]);
    }
    let box_values = block[1..].iter().product::<u64>().max(1);
    let row_bytes = box_values * dtype.size() as u64;
    let slab_rows = (SLAB_BYTES / row_bytes).max(1);
    let rows = shape[0].min(n);
    let shown = per_row.min(SHOWN) as usize;
    let mut r = 0;
    while r < rows && !out.closed {
        let k = slab_rows.min(rows - r);
        let mut start = vec![0u64; shape.len()];
        start[0] = r;
        let mut extent = block.clone();
        extent[0] = k;
        let data = source.read(&Subset::new(start, extent))?;
        let values = format_values(&data, dtype)?;
        let mut text = String::new();
        for row in values.chunks(box_values as usize) {
            text.push_str(&row[..shown.min(row.len())].join(" "));
            if per_row > SHOWN {
                text.push_str(&format!(" … ({} more)", per_row - SHOWN));
            }
            text.push('\n');
        }
        out.print(&text)?;
        r += k;
    }
    Ok(())
}

/// Formats native-endian elements as numpy prints them (bools as True/False).
fn format_values(data: &[u8], dtype: DType) -> Result<Vec<String>> {
    let item = dtype.size();
    let mut out = Vec::with_capacity(data.len() / item);
    for v in data.chunks_exact(item) {
        let b = |n: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&v[..n]);
            a
        };
        let text = match dtype {
            DType::Bool => if v[0] != 0 { "True" } else { "False" }.to_string(),
            DType::Int8 => (v[0] as i8).to_string(),
            DType::UInt8 => v[0].to_string(),
            DType::Int16 => i16::from_ne_bytes([v[0], v[1]]).to_string(),
            DType::UInt16 => u16::from_ne_bytes([v[0], v[1]]).to_string(),
            DType::Int32 => i32::from_ne_bytes([v[0], v[1], v[2], v[3]]).to_string(),
            DType::UInt32 => u32::from_ne_bytes([v[0], v[1], v[2], v[3]]).to_string(),
            DType::Int64 => i64::from_ne_bytes(b(8)).to_string(),
            DType::UInt64 => u64::from_ne_bytes(b(8)).to_string(),
            DType::Float16 => f16_to_f32(u16::from_ne_bytes([v[0], v[1]])).to_string(),
            DType::Float32 => f32::from_ne_bytes([v[0], v[1], v[2], v[3]]).to_string(),
            DType::Float64 => f64::from_ne_bytes(b(8)).to_string(),
            DType::Complex64 => {
                let re = f32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                let im = f32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
                format!("{re}{im:+}j")
            }
            DType::Complex128 => {
                let re = f64::from_ne_bytes(b(8));
                let mut hi = [0u8; 8];
                hi.copy_from_slice(&v[8..16]);
                format!("{re}{:+}j", f64::from_ne_bytes(hi))
            }
        };
        out.push(text);
    }
    if out.is_empty() && !data.is_empty() {
        return Err(Error::bug(
            "array data shorter than one element",
            format!("{} bytes of {dtype}", data.len()),
        ));
    }
    Ok(out)
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }
}
