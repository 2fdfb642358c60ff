//! blockwise: an out-of-core engine for chunked arrays and data frames.
//!
//! Every dataset is chunks on disk: arrays in Zarr v3 (also read: `.npy`, npy stacks,
//! Zarr v2), tables in Parquet (also read and written: CSV, Arrow IPC). Work runs
//! chunk by chunk under a memory budget. `DESIGN.md` gives the direction; this is the
//! map of the code as it is, bottom layer first (a module uses only those above it
//! in this list):
//!
//! | module | holds |
//! |---|---|
//! | [`error`] | the one error enum; its variants carry the values a user needs |
//! | [`sys`] | what is asked of the OS beyond `std`: process liveness, tree sizes, removal, the account of reclaimed temporaries |
//! | [`grid`] | shapes, chunk grids, subsets, rechunk stages, `auto` chunks, checked sizes (`size`): pure, no I/O |
//! | [`memory`] | the pool and reservations, the threshold monitor, RSS readings, glibc retention (`allocator`), the spill store and its disk manager (quota, stale directories) |
//! | [`storage`] | one module per format (`csv` split by role: `header`, `scan`, `split`, `infer`, `reader`, `diagnose`, `writer`; `parquet`, `ipc`, `npy`, `npy_stack` with its `pickle` reader, `zarr`), format detection, and `atomic` outputs (destination checks, no-clobber renames, stale temporaries) |
//! | [`plan`] | tasks, plans and their JSON, the memory projection |
//! | [`exec`] | the local executor, the job context, cancellation and signals, progress and events |
//! | [`frame`] | operators over record batches (the external `sort`), reading a table's partitions (`read`) and writing table outputs from parts (`write`) as plan operations |
//! | [`convert`] | the conversion routes (table↔table, array↔array, table↔array), the sorted route, option checks |
//! | [`cli`] | the command line, one subcommand a file |
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

pub mod array;
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
