//! Embedded snapshot store (placeholder until the store issue lands).
