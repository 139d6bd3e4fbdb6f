//! A bounds-checked reader over a byte slice for decoding chunk structures.
//!
//! Every read either returns a value or a [`ChunkError`] naming the field that
//! did not fit; nothing here panics on any input. Varints are LEB128 as
//! protobuf writes them (`prost::encoding`), so the writer side uses
//! `prost::encoding::encode_varint`.

use super::ChunkError;

pub(super) struct ByteCursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteCursor<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        ByteCursor { data, pos: 0 }
    }

    pub(super) fn position(&self) -> usize {
        self.pos
    }

    pub(super) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(super) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(super) fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ChunkError> {
        if len > self.remaining() {
            return Err(ChunkError::Truncated {
                what,
                needed: len as u64,
                available: self.remaining() as u64,
            });
        }
        let out = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ChunkError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, ChunkError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(super) fn u32_le(&mut self, what: &'static str) -> Result<u32, ChunkError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn i64_le(&mut self, what: &'static str) -> Result<i64, ChunkError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub(super) fn varint(&mut self, what: &'static str) -> Result<u64, ChunkError> {
        let mut rest = &self.data[self.pos..];
        let before = rest.len();
        let value = prost::encoding::decode_varint(&mut rest).map_err(|_| {
            if before < 10 && self.data[self.pos..].iter().all(|b| b & 0x80 != 0) {
                ChunkError::Truncated {
                    what,
                    needed: before as u64 + 1,
                    available: before as u64,
                }
            } else {
                ChunkError::corrupt(format_args!("invalid varint in {what}"))
            }
        })?;
        self.pos += before - rest.len();
        Ok(value)
    }

    /// A varint that must fit in `usize` and be at most `limit` (used for
    /// counts and lengths, so corrupt input cannot ask for huge allocations).
    pub(super) fn varint_len(
        &mut self,
        limit: usize,
        what: &'static str,
    ) -> Result<usize, ChunkError> {
        let value = self.varint(what)?;
        match usize::try_from(value) {
            Ok(len) if len <= limit => Ok(len),
            _ => Err(ChunkError::corrupt(format_args!(
                "{what} is {value}, at most {limit} possible here"
            ))),
        }
    }

    /// A length-prefixed byte string.
    pub(super) fn prefixed(&mut self, what: &'static str) -> Result<&'a [u8], ChunkError> {
        let len = self.varint_len(self.remaining(), what)?;
        self.bytes(len, what)
    }
}

/// Appends `value` as a LEB128 varint.
pub(super) fn put_varint(out: &mut Vec<u8>, value: u64) {
    prost::encoding::encode_varint(value, out);
}

/// Appends a varint length and the bytes.
pub(super) fn put_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_written_and_reports_truncation() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        put_prefixed(&mut buf, b"abc");
        buf.extend_from_slice(&7u32.to_le_bytes());
        buf.extend_from_slice(&(-5i64).to_le_bytes());
        put_varint(&mut buf, u64::MAX);
        let mut cur = ByteCursor::new(&buf);
        assert_eq!(cur.varint("a").unwrap(), 300);
        assert_eq!(cur.prefixed("b").unwrap(), b"abc");
        assert_eq!(cur.u32_le("c").unwrap(), 7);
        assert_eq!(cur.i64_le("d").unwrap(), -5);
        assert_eq!(cur.varint("e").unwrap(), u64::MAX);
        assert!(cur.is_empty());
        assert!(matches!(
            cur.u8("f"),
            Err(ChunkError::Truncated { what: "f", .. })
        ));

        let mut cur = ByteCursor::new(&[0x80, 0x80]);
        assert!(matches!(cur.varint("g"), Err(ChunkError::Truncated { .. })));
        let mut cur = ByteCursor::new(&[0xff; 11]);
        assert!(matches!(cur.varint("h"), Err(ChunkError::Corrupt { .. })));
        let mut cur = ByteCursor::new(&[5, b'x']);
        assert!(cur.prefixed("i").is_err());
    }
}
