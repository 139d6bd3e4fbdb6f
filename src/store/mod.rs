//! Storage: the write-ahead log, chunks, the label index, the object store,
//! per-stream heads and the compactor, behind one facade.

pub mod chunk;
pub mod index;
pub mod object;
pub mod wal;
