//! Frames: operators over streams of Arrow record batches, one operator a file in
//! `ops/`. The lazy `Frame` API comes with the frame issue; the operators the
//! execution core needs live here already.

pub mod expr;
pub mod logical;
pub mod ops;
pub mod optimize;
pub mod physical;
pub mod prune;
pub mod read;
pub mod write;
