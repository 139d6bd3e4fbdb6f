//! WAL records: the borrowed form appended ([`RecordRef`]), the owned form
//! replayed ([`Record`]), and their framing (layout in the parent module).
//!
//! Owns encoding a record into a frame and decoding a frame's body. Does not
//! own reading files or deciding what a damaged frame means (`segment`).
//!
//! The LSN is the last field of a frame so an appender can encode and
//! checksum everything else before it takes the shared lock; under the lock
//! it only appends the LSN and finishes the CRC ([`seal_frame`]).

use std::fmt;

use bytes::Bytes;

use super::{Lsn, WalError};
use crate::model::{Entry, MetadataPair, Timestamp};

/// Length of the frame's length and CRC fields.
pub(super) const FRAME_PREFIX_LEN: usize = 8;
/// Smallest body: a type byte and the LSN.
pub(super) const MIN_BODY_LEN: usize = 1 + 8;
/// Largest body a frame may carry.
pub const MAX_RECORD_LEN: u64 = u32::MAX as u64;

pub(super) const TYPE_ENTRIES: u8 = 1;
pub(super) const TYPE_FLUSHED: u8 = 2;

/// A record to append, borrowing the caller's data.
#[derive(Copy, Clone, Debug)]
pub enum RecordRef<'a> {
    /// Entries pushed to one stream.
    Entries {
        tenant: &'a str,
        /// The stream's canonical label string.
        labels: &'a str,
        entries: &'a [Entry],
    },
    /// The stream's entries with LSN ≤ `up_to` are now in a chunk.
    Flushed {
        tenant: &'a str,
        labels: &'a str,
        up_to: Lsn,
        /// Opaque to the WAL (a serialized chunk reference, say).
        payload: &'a [u8],
    },
}

/// A replayed record. Lines, metadata and payloads are zero-copy slices of
/// the segment buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Entries {
        tenant: String,
        labels: String,
        entries: Vec<Entry>,
    },
    Flushed {
        tenant: String,
        labels: String,
        up_to: Lsn,
        payload: Bytes,
    },
}

impl Record {
    /// The borrowed form, e.g. to append a record again.
    pub fn as_ref(&self) -> RecordRef<'_> {
        match self {
            Record::Entries {
                tenant,
                labels,
                entries,
            } => RecordRef::Entries {
                tenant,
                labels,
                entries,
            },
            Record::Flushed {
                tenant,
                labels,
                up_to,
                payload,
            } => RecordRef::Flushed {
                tenant,
                labels,
                up_to: *up_to,
                payload,
            },
        }
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    prost::encoding::encode_varint(value, out);
}

fn put_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes `record` into `out` (cleared first) as a frame without its LSN,
/// and returns the CRC32C state over the bytes the checksum covers so far.
pub(super) fn encode_unsequenced(
    record: &RecordRef<'_>,
    out: &mut Vec<u8>,
) -> Result<u32, WalError> {
    out.clear();
    out.extend_from_slice(&[0; FRAME_PREFIX_LEN]);
    match *record {
        RecordRef::Entries {
            tenant,
            labels,
            entries,
        } => {
            out.push(TYPE_ENTRIES);
            put_prefixed(out, tenant.as_bytes());
            put_prefixed(out, labels.as_bytes());
            put_varint(out, entries.len() as u64);
            let mut prev = 0i64;
            for entry in entries {
                let ts = entry.ts.nanos();
                put_varint(out, zigzag(ts.wrapping_sub(prev)));
                prev = ts;
                put_prefixed(out, &entry.line);
                put_varint(out, entry.metadata.len() as u64);
                for pair in &entry.metadata {
                    put_prefixed(out, &pair.name);
                    put_prefixed(out, &pair.value);
                }
            }
        }
        RecordRef::Flushed {
            tenant,
            labels,
            up_to,
            payload,
        } => {
            out.push(TYPE_FLUSHED);
            put_prefixed(out, tenant.as_bytes());
            put_prefixed(out, labels.as_bytes());
            put_varint(out, up_to.0);
            put_prefixed(out, payload);
        }
    }
    let body_len = (out.len() - FRAME_PREFIX_LEN + 8) as u64;
    let Ok(body_len_u32) = u32::try_from(body_len) else {
        return Err(WalError::RecordTooLarge {
            len: body_len,
            limit: MAX_RECORD_LEN,
        });
    };
    out[..4].copy_from_slice(&body_len_u32.to_le_bytes());
    let crc = crc32c::crc32c(&out[..4]);
    Ok(crc32c::crc32c_append(crc, &out[FRAME_PREFIX_LEN..]))
}

/// Appends the LSN to a frame from [`encode_unsequenced`] and writes its CRC.
pub(super) fn seal_frame(frame: &mut Vec<u8>, partial_crc: u32, lsn: Lsn) {
    let lsn_bytes = lsn.0.to_le_bytes();
    frame.extend_from_slice(&lsn_bytes);
    let crc = crc32c::crc32c_append(partial_crc, &lsn_bytes);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Why a frame's body could not be decoded.
#[derive(Debug)]
pub(super) struct BodyError(pub(super) String);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bounds-checked reader over a body that hands out zero-copy slices.
struct BodyCursor<'a> {
    body: &'a Bytes,
    pos: usize,
}

impl BodyCursor<'_> {
    fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    fn varint(&mut self, what: &str) -> Result<u64, BodyError> {
        let mut rest = &self.body[self.pos..];
        let before = rest.len();
        let value = prost::encoding::decode_varint(&mut rest)
            .map_err(|_| BodyError(format!("invalid varint in {what}")))?;
        self.pos += before - rest.len();
        Ok(value)
    }

    fn bytes(&mut self, what: &str) -> Result<Bytes, BodyError> {
        let len = self.varint(what)?;
        if len > self.remaining() as u64 {
            return Err(BodyError(format!(
                "{what} of {len} bytes exceeds the record ({} left)",
                self.remaining()
            )));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(self.body.slice(start..self.pos))
    }

    fn string(&mut self, what: &str) -> Result<String, BodyError> {
        let bytes = self.bytes(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| BodyError(format!("{what} is not utf-8")))
    }

    /// A count of items that each take at least `min_item_len` bytes.
    fn count(&mut self, min_item_len: usize, what: &str) -> Result<usize, BodyError> {
        let count = self.varint(what)?;
        if count > (self.remaining() / min_item_len) as u64 {
            return Err(BodyError(format!("{what} {count} exceeds the record")));
        }
        Ok(count as usize)
    }
}

/// Decodes the payload of a frame of type `kind` (`payload` excludes the
/// type byte and the LSN).
pub(super) fn decode_payload(kind: u8, payload: &Bytes) -> Result<Record, BodyError> {
    let mut cur = BodyCursor {
        body: payload,
        pos: 0,
    };
    let record = match kind {
        TYPE_ENTRIES => {
            let tenant = cur.string("tenant")?;
            let labels = cur.string("labels")?;
            // An entry takes at least three bytes (timestamp, line length and
            // metadata count).
            let count = cur.count(3, "entry count")?;
            let mut entries = Vec::with_capacity(count);
            let mut prev = 0i64;
            for _ in 0..count {
                let ts = prev.wrapping_add(unzigzag(cur.varint("timestamp")?));
                prev = ts;
                let line = cur.bytes("line")?;
                let pairs = cur.count(2, "metadata count")?;
                let mut metadata = Vec::with_capacity(pairs);
                for _ in 0..pairs {
                    let name = cur.bytes("metadata name")?;
                    let value = cur.bytes("metadata value")?;
                    metadata.push(MetadataPair { name, value });
                }
                entries.push(Entry {
                    ts: Timestamp::from_nanos(ts),
                    line,
                    metadata,
                });
            }
            Record::Entries {
                tenant,
                labels,
                entries,
            }
        }
        TYPE_FLUSHED => Record::Flushed {
            tenant: cur.string("tenant")?,
            labels: cur.string("labels")?,
            up_to: Lsn(cur.varint("flushed lsn")?),
            payload: cur.bytes("payload")?,
        },
        other => return Err(BodyError(format!("unknown record type {other}"))),
    };
    if cur.remaining() != 0 {
        return Err(BodyError(format!(
            "{} unexpected bytes at the end of the record",
            cur.remaining()
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn frame_has_lsn_last_and_valid_crc() {
        let entries = [Entry::new(Timestamp::from_nanos(-5), "x")];
        let record = RecordRef::Entries {
            tenant: "t",
            labels: "{}",
            entries: &entries,
        };
        let mut frame = Vec::new();
        let partial = encode_unsequenced(&record, &mut frame).unwrap();
        seal_frame(&mut frame, partial, Lsn(42));
        let body_len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(frame.len(), FRAME_PREFIX_LEN + body_len);
        assert_eq!(frame[frame.len() - 8..], 42u64.to_le_bytes());
        let mut covered = frame[..4].to_vec();
        covered.extend_from_slice(&frame[8..]);
        assert_eq!(
            u32::from_le_bytes(frame[4..8].try_into().unwrap()),
            crc32c::crc32c(&covered)
        );
        let payload = Bytes::copy_from_slice(&frame[9..frame.len() - 8]);
        let decoded = decode_payload(frame[8], &payload).unwrap();
        assert_eq!(decoded.as_ref().entries_for_test(), &entries);
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(decode_payload(9, &Bytes::new()).is_err());
        // A count larger than the body can hold.
        let mut body = Vec::new();
        put_prefixed(&mut body, b"t");
        put_prefixed(&mut body, b"{}");
        put_varint(&mut body, 1 << 40);
        assert!(decode_payload(TYPE_ENTRIES, &Bytes::from(body)).is_err());
        let mut body = Vec::new();
        put_prefixed(&mut body, b"\xff");
        put_prefixed(&mut body, b"{}");
        put_varint(&mut body, 0);
        assert!(decode_payload(TYPE_ENTRIES, &Bytes::from(body)).is_err());
    }

    impl RecordRef<'_> {
        fn entries_for_test(&self) -> &[Entry] {
            match self {
                RecordRef::Entries { entries, .. } => entries,
                RecordRef::Flushed { .. } => &[],
            }
        }
    }
}
