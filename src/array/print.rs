//! Printing arrays as numpy does (a stand-in, being written).

use crate::storage::array::DType;

/// What `print(a)` shows for an array of `shape` and `dtype` whose elements are
/// `bytes` (C order, native byte order); no trailing newline.
pub fn numpy_str(shape: &[u64], dtype: DType, bytes: &[u8]) -> String {
    let values = crate::array::kernel::values::Values::decode(dtype, bytes);
    format!("{shape:?} {values:?}")
}
