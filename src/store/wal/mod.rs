//! The write-ahead log: every acknowledged push is in it and fsynced.
//!
//! Owns the segment files in one directory, record framing, LSN assignment,
//! group commit (one writer thread; everything pending when it writes shares
//! one `fdatasync`), crash recovery (a torn tail of the last segment is
//! truncated) and replay. Does not own what records mean: the head decides
//! what to rebuild from [`Record::Entries`] and what [`Record::Flushed`]
//! lets it skip, and when segments may be removed.
//!
//! Invariants:
//! - LSNs are assigned in append order, strictly increasing, starting at 1,
//!   and never reused across restarts: the next LSN continues from the
//!   highest on disk (or the last segment's name).
//! - A record is durable once [`Wal::wait_durable`] for its LSN returns
//!   `Ok`; only then may a push be acknowledged.
//! - After a write or fsync error the WAL refuses every further append and
//!   every waiter gets the error (fail-stop: an fsync error cannot be retried
//!   safely).
//! - Encoding and fsync never run on an async executor's threads: encoding
//!   runs on the appender's thread (cheap, no I/O), fsync on the writer thread.
//!
//! # Segment file, version 1
//!
//! Named by the first LSN it may hold, zero-padded to 20 digits so names sort
//! (`00000000000000000001.wal`). Integers are little-endian; `uvarint` is
//! LEB128; `bytes` is a `uvarint` length then the bytes; `svarint` is a
//! zigzag-encoded `uvarint`.
//!
//! ```text
//! ┌─ header (8) ──────────────────────────────────────────────────┐
//! │ magic "LKWL" (4) │ version u8 = 1 │ reserved [0; 3]             │
//! ├─ record ──────────────────────────────────────────────────────┤
//! │ body_len u32 │ crc32c u32 over body_len's 4 bytes and the body │
//! │ body (body_len bytes):                                        │
//! │   type u8 │ payload │ lsn u64                                  │
//! ├─ record … ────────────────────────────────────────────────────┤
//! └───────────────────────────────────────────────────────────────┘
//!
//! type 1, Entries:  tenant bytes │ labels bytes │ count uvarint │
//!                   count × ( ts svarint (delta from the previous entry's
//!                   ts, the first from 0) │ line bytes │ pairs uvarint │
//!                   pairs × ( name bytes │ value bytes ) )
//! type 2, Flushed:  tenant bytes │ labels bytes │ up_to uvarint │ payload bytes
//! ```
//!
//! The LSN comes last so an appender computes the CRC of everything else
//! before taking the shared lock.
//!
//! # Recovery
//!
//! On [`Wal::open`], the last segment is scanned: the first frame that is cut
//! off, has an impossible length or a wrong checksum ends it, and the file is
//! truncated there (a crash mid-write; those records were never
//! acknowledged). A frame with a valid checksum but an unknown type or an LSN
//! out of order is an error, as is any damage in an earlier segment (reported
//! by [`Replay`] with the file and offset). A segment with a version other
//! than [`WAL_FORMAT_VERSION`] is rejected. `tests/data/wal_v1.seg` is a v1
//! segment read by a test.

mod record;
mod segment;
mod writer;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use record::{MAX_RECORD_LEN, Record, RecordRef};
pub use segment::{Replay, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, WAL_FORMAT_VERSION};
pub use writer::Wal;

/// Log sequence number: the position of a record in the WAL. Assigned by
/// [`Wal::append`]; the first is 1, so `Lsn(0)` means "none".
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// WAL settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment is closed and a new one started once it reaches this many
    /// bytes (it may exceed it by one batch).
    pub segment_size: u64,
}

impl WalOptions {
    pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

    fn validate(&self) -> Result<(), WalError> {
        if self.segment_size <= SEGMENT_HEADER_LEN as u64 {
            return Err(WalError::InvalidOptions {
                reason: format!(
                    "segment_size {} must exceed the {SEGMENT_HEADER_LEN}-byte segment header",
                    self.segment_size
                ),
            });
        }
        Ok(())
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: Self::DEFAULT_SEGMENT_SIZE,
        }
    }
}

/// Counters for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended since open.
    pub records_appended: u64,
    /// Record bytes written to segments since open.
    pub bytes_written: u64,
    /// `fdatasync` calls for record batches since open (segment creation
    /// and directory syncs not included).
    pub fsyncs: u64,
    pub segments_created: u64,
    pub segments_removed: u64,
    /// Live segment files, the active one included.
    pub segments: u64,
    pub durable_lsn: Lsn,
}

/// Everything that can go wrong in the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o error: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad wal segment magic in {}: found {found:02x?}", path.display())]
    BadMagic { path: PathBuf, found: [u8; 4] },
    #[error(
        "unsupported wal segment version {found} in {} (this build reads version {supported})",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u8,
        supported: u8,
    },
    #[error("unsupported wal record type {found} in {} at offset {offset}", path.display())]
    UnsupportedRecordType {
        path: PathBuf,
        offset: u64,
        found: u8,
    },
    #[error(
        "wal checksum mismatch in {} at offset {offset}: got {got:#010x}, expected {expected:#010x}",
        path.display()
    )]
    ChecksumMismatch {
        path: PathBuf,
        offset: u64,
        got: u32,
        expected: u32,
    },
    #[error("corrupt wal segment {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("wal record too large: {len} bytes, at most {limit}")]
    RecordTooLarge { len: u64, limit: u64 },
    #[error("wal failed and refuses writes: {reason}")]
    Failed { reason: Arc<str> },
    #[error("wal is shut down")]
    Closed,
    #[error("invalid wal options: {reason}")]
    InvalidOptions { reason: String },
}

#[cfg(test)]
mod tests;
