//! ykeep relay library (placeholder until the relay issue lands).
