//! `blockwise head PATH [-n N]`: the first rows of a table, or the first entries
//! along the first axis of an array.
//!
//! ```text
//! blockwise head PATH [-n 10] [--delimiter ,]
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use arrow::record_batch::RecordBatch;

use super::convert::parse_delimiter;
use crate::error::{Error, Result};
use crate::grid::Subset;
use crate::storage::array::DType;
use crate::storage::frame::FrameReadOptions;
use crate::storage::{detect, open_array, open_frame, Kind};

/// Show the first rows of a dataset
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file or a directory
    path: PathBuf,
    /// How many rows
    #[arg(short = 'n', long = "rows", default_value_t = 10)]
    n: usize,
    /// CSV field delimiter
    #[arg(long, default_value = ",")]
    delimiter: String,
}

pub(super) fn run(args: Args) -> Result<ExitCode> {
    let format = detect(&args.path)?;
    let text = match format.kind() {
        Kind::Frame => {
            let read =
                FrameReadOptions::default().with_delimiter(parse_delimiter(&args.delimiter)?);
            let source = open_frame(&args.path, format, &read)?;
            let mut batches: Vec<RecordBatch> = Vec::new();
            let mut rows = 0;
            'parts: for p in 0..source.num_partitions() {
                for batch in source.read_partition(p)? {
                    let batch = batch?;
                    let take = (args.n - rows).min(batch.num_rows());
                    batches.push(batch.slice(0, take));
                    rows += take;
                    if rows >= args.n {
                        break 'parts;
                    }
                }
            }
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(source.schema()));
            }
            format!(
                "{}\n",
                arrow::util::pretty::pretty_format_batches(&batches)?
            )
        }
        Kind::Array => {
            let source = open_array(&args.path, format)?;
            let shape = source.meta().shape();
            let dtype = source.meta().dtype;
            let rows = shape.first().copied().unwrap_or(1).min(args.n as u64);
            let mut region_shape = shape.clone();
            if let Some(first) = region_shape.first_mut() {
                *first = rows;
            }
            let data = source.read(&Subset::new(vec![0; shape.len()], region_shape))?;
            let per_row = shape.get(1..).map_or(1, |s| s.iter().product::<u64>()) as usize;
            let values = format_values(&data, dtype)?;
            let mut s = format!("# shape {shape:?} dtype {dtype}\n");
            for row in values.chunks(per_row.max(1)) {
                let shown: Vec<&str> = row.iter().take(20).map(String::as_str).collect();
                s.push_str(&shown.join(" "));
                if row.len() > 20 {
                    s.push_str(&format!(" … ({} more)", row.len() - 20));
                }
                s.push('\n');
            }
            s
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
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
        return Err(Error::Internal(
            "array data shorter than one element".into(),
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
