//! A packed matrix product kernel (being written).
