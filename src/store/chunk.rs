//! Chunks: see the module docs once written.
