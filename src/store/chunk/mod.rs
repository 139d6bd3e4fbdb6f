//! Chunks: immutable, compressed objects holding many entries of ONE stream.
//!
//! Owns the chunk byte format, the open in-memory [`HeadBlock`], block
//! sealing (sort, encode, compress, checksum), and decoding (whole object with
//! [`Chunk::parse`], or ranged: [`parse_footer`] → [`parse_index`] →
//! [`decode_block_bytes`]). Does not own when to cut blocks or chunks, where
//! chunks are stored, or merging overlapping blocks into one ordered stream
//! (the head and the store above do that).
//!
//! Invariants: a chunk holds one stream of one tenant; every byte of it is
//! covered by a magic, a version or a CRC32C, so damage is reported, never
//! decoded into wrong entries; no input makes a parser panic; a decoded block
//! is sorted by timestamp, equal timestamps in arrival order.
//!
//! A chunk is split into blocks, each compressed on its own; the index records
//! per block its byte range, sizes, entry count, time bounds and CRC32C, so a
//! reader skips blocks outside a time range without fetching or decompressing
//! them. On an object store the index costs two ranged reads: the fixed-size
//! footer (a suffix range of [`FOOTER_LEN`] bytes), then the index it points
//! at. Blocks may overlap in time (out-of-order writes).
//!
//! # Chunk object, version 1
//!
//! Integers are little-endian; `uvarint` is LEB128 (as protobuf);
//! `bytes` is a `uvarint` length followed by that many bytes.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────┐
//! │ magic "LKCH" (4) │ version u8 = 1                                │ 5 bytes
//! ├──────────────────────────────────────────────────────────────────┤
//! │ block 0: compressed payload (codec per block meta)               │
//! │ block 1: …                                                       │
//! │ block n-1                                                        │
//! ├─ index ──────────────────────────────────────────────────────────┤ ← index offset
//! │ tenant bytes │ labels bytes (canonical label string)             │
//! │ codec u8 (1 = zstd, 2 = snappy)                                  │
//! │ min_ts i64 │ max_ts i64 (ns; 0 when empty)                        │
//! │ entries uvarint │ raw_size uvarint │ block count uvarint          │
//! │ per block:                                                       │
//! │   offset uvarint │ compressed_len uvarint │ uncompressed_len uvarint
//! │   entries uvarint │ raw_size uvarint │ min_ts i64 │ max_ts i64    │
//! │   codec u8 │ crc32c u32 (of the compressed bytes)                 │
//! │   filter bytes (reserved for a per-block filter; empty in v1)    │
//! │ crc32c u32 of the index bytes above                              │
//! ├─ footer (FOOTER_LEN = 28) ───────────────────────────────────────┤
//! │ index offset u64 │ index length u64 (its CRC included)           │
//! │ reserved [0; 3] │ version u8 = 1                                  │
//! │ crc32c u32 of the 20 footer bytes above │ magic "LKCF" (4)        │
//! └──────────────────────────────────────────────────────────────────┘
//! ```
//!
//! `raw_size` is the sum of the entries' sizes (line plus metadata bytes, as
//! [`Entry::size`](crate::model::Entry::size) counts them). The header's
//! statistics must equal the sum over its blocks; readers check that.
//!
//! # Block payload (uncompressed), version 1
//!
//! Entries sorted by timestamp, equal timestamps in arrival order. Lines come
//! last, so the decoded block's contiguous line buffer is a zero-copy slice
//! of the decompressed payload.
//!
//! ```text
//! entries uvarint │ symbols uvarint
//! symbol lengths:  symbols × uvarint
//! symbol text:     the symbols' UTF-8 bytes, concatenated
//! timestamps:      entries × uvarint  (ts - previous ts as u64, wrapping; first from 0)
//! line lengths:    entries × uvarint
//! metadata counts: entries × uvarint
//! metadata pairs:  Σ counts × (name symbol uvarint, value symbol uvarint)
//! lines:           the lines' bytes, concatenated, to the end of the payload
//! ```
//!
//! Structured-metadata names and values are interned per block: each distinct
//! string is stored once in the symbol table.
//!
//! # Versioning
//!
//! Readers reject a version other than [`CHUNK_FORMAT_VERSION`] with
//! [`ChunkError::UnsupportedVersion`]. A later version may fill the per-block
//! filter field without changing anything else; v1 readers skip it.
//! `tests/data/chunk_v1.bin` is a v1 chunk read by a test.

mod block;
mod codec;
mod cursor;
mod format;

use std::fmt;

pub use block::{BlockMeta, DecodedBlock, HeadBlock, MAX_BLOCK_LEN, SealedBlock};
pub use codec::Codec;
pub use format::{
    CHUNK_FORMAT_VERSION, CHUNK_HEADER_LEN, CHUNK_MAGIC, Chunk, ChunkHeader, FOOTER_LEN,
    FOOTER_MAGIC, IndexLocation, decode_block_bytes, encode_chunk, parse_footer, parse_index,
};

/// Everything that can go wrong building or reading a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("bad {what} magic: found {found:02x?}, expected {expected:02x?}")]
    BadMagic {
        what: &'static str,
        found: [u8; 4],
        expected: [u8; 4],
    },
    #[error("unsupported chunk format version {found} (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("{what} checksum mismatch: got {got:#010x}, expected {expected:#010x}")]
    ChecksumMismatch {
        what: &'static str,
        got: u32,
        expected: u32,
    },
    #[error("chunk truncated: {what} needs {needed} bytes, {available} available")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("corrupt chunk: {reason}")]
    Corrupt { reason: String },
    #[error("{codec} codec failed: {reason}")]
    Codec { codec: Codec, reason: String },
    #[error("block too large: {len} bytes uncompressed, at most {limit}")]
    BlockTooLarge { len: u64, limit: u64 },
    #[error("no block {index}: the chunk has {count} blocks")]
    NoSuchBlock { index: usize, count: usize },
    #[error("unknown codec {name:?}: expected zstd or snappy")]
    UnknownCodec { name: String },
}

impl ChunkError {
    fn corrupt(reason: impl fmt::Display) -> Self {
        ChunkError::Corrupt {
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
