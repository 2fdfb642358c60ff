//! Placeholder: the spill directory manager (being written).
