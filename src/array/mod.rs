//! The array layer: arrays as plans of registered operations.
//!
//! An array dataset of a plan carries its [`ArrayLayout`] (shape, dtype, chunks,
//! fill value, how it is written) as its `meta`, so any worker opens it from the
//! plan alone. The operations: [`CreateArray`] and [`FinishArray`] (the first and
//! last tasks of an array written), [`CopyBlock`] (one block of a staged
//! [`Rechunk`]), and the table-to-array chain in [`from_table`].

mod blocks;
pub mod counts;
mod create;
pub mod eval;
pub mod expr;
pub mod from_table;
pub mod graph;
pub mod kernel;
mod layout;
mod linalg;
pub mod lower;
pub mod print;
pub mod program;
pub mod promote;
pub mod random;
mod rechunk;
pub mod select;
pub mod stencil;

pub use create::{CreateArray, FinishArray};
pub use layout::{open_sink, open_source, write_region, ArrayLayout};
pub use rechunk::{CopyBlock, Rechunk};

#[cfg(test)]
mod tests;
