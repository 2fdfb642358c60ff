//! blockwise: an out-of-core engine for chunked arrays and data frames.
//!
//! Every dataset is chunks on disk: arrays in Zarr v3 (also read: `.npy`, npy stacks,
//! Zarr v2), tables in Parquet (also read and written: CSV, Arrow IPC). Work runs
//! chunk by chunk under a memory budget. See `DESIGN.md` for the layers; this file
//! only lists them.
//!
//! ```no_run
//! use blockwise::convert::{convert, ConvertOptions};
//! use blockwise::exec::JobContext;
//!
//! let report = convert(
//!     "table.csv".as_ref(),
//!     "table.parquet".as_ref(),
//!     &ConvertOptions::default(),
//!     &JobContext::with_defaults()?,
//! )?;
//! println!("{} rows", report.rows);
//! # Ok::<(), blockwise::Error>(())
//! ```

#![warn(missing_docs)]

pub mod cli;
pub mod convert;
pub mod error;
pub mod exec;
pub mod frame;
pub mod grid;
pub mod memory;
pub mod plan;
pub mod storage;
pub mod sys;

pub use error::{Error, Result};
