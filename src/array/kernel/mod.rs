//! The kernels of the array layer: typed tiles and their casts (`values`), numpy's
//! ufuncs on tiles (`ops`), vectorized transcendental functions (`math`), block products (`matmul`) on a packed AVX-512 GEMM (`gemm`), reductions
//! and their partial states (`reduce`), sorts and tops of rows (`rows`), and the strided walk of a block (`walk`).

pub mod gemm;
pub mod math;
pub mod matmul;
pub mod ops;
pub mod reduce;
pub mod rows;
pub mod scan;
pub mod values;
pub mod walk;
