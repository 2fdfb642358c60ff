//! Placeholder: the spill store (being written).
