//! Block compression codecs: zstd (default) and snappy (raw format).
//!
//! Owns the mapping between a [`Codec`] and its byte in the chunk format, and
//! the compress/decompress calls. Decompression is bounded by the expected
//! uncompressed length recorded in the block's metadata, so a corrupt or
//! hostile block cannot make the reader allocate more than the block claims.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use super::ChunkError;

thread_local! {
    /// Per-thread zstd contexts: creating one costs more than compressing a
    /// small block.
    static ZSTD_COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
    /// Worst-case-sized output buffer for [`Codec::compress`].
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How a block's bytes are compressed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codec {
    /// zstd at [`Codec::ZSTD_LEVEL`]: the best ratio for logs at a good speed.
    #[default]
    Zstd,
    /// Snappy's raw block format (`snap::raw`): faster, larger.
    Snappy,
}

impl Codec {
    /// zstd compression level used for blocks.
    pub const ZSTD_LEVEL: i32 = 3;

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Snappy => "snappy",
        }
    }

    /// The byte that stands for this codec in chunk metadata.
    pub(super) fn to_byte(self) -> u8 {
        match self {
            Codec::Zstd => 1,
            Codec::Snappy => 2,
        }
    }

    pub(super) fn from_byte(byte: u8) -> Option<Codec> {
        match byte {
            1 => Some(Codec::Zstd),
            2 => Some(Codec::Snappy),
            _ => None,
        }
    }

    /// Compresses one block payload.
    ///
    /// The result is exactly as long as the compressed bytes: sealed blocks
    /// wait in the head until their chunk is cut, and a buffer sized for the
    /// worst case (the codecs' bound is larger than the input) would keep
    /// the block's uncompressed size allocated. Compression contexts and the
    /// scratch buffer are reused per thread.
    pub(super) fn compress(self, raw: &[u8]) -> Result<Vec<u8>, ChunkError> {
        SCRATCH.with_borrow_mut(|scratch| {
            let written = match self {
                Codec::Zstd => {
                    scratch.resize(zstd::zstd_safe::compress_bound(raw.len()), 0);
                    ZSTD_COMPRESSOR.with_borrow_mut(|slot| {
                        let compressor = match slot {
                            Some(c) => c,
                            None => slot.insert(
                                zstd::bulk::Compressor::new(Self::ZSTD_LEVEL)
                                    .map_err(|e| self.error(e))?,
                            ),
                        };
                        compressor
                            .compress_to_buffer(raw, scratch.as_mut_slice())
                            .map_err(|e| self.error(e))
                    })?
                }
                Codec::Snappy => {
                    scratch.resize(snap::raw::max_compress_len(raw.len()), 0);
                    snap::raw::Encoder::new()
                        .compress(raw, scratch.as_mut_slice())
                        .map_err(|e| self.error(e))?
                }
            };
            Ok(scratch[..written].to_vec())
        })
    }

    /// Decompresses one block whose uncompressed length is known to be
    /// `raw_len`; any other length is an error.
    pub(super) fn decompress(
        self,
        compressed: &[u8],
        raw_len: usize,
    ) -> Result<Vec<u8>, ChunkError> {
        let out = match self {
            Codec::Zstd => ZSTD_DECOMPRESSOR.with_borrow_mut(|slot| {
                let decompressor = match slot {
                    Some(d) => d,
                    None => {
                        slot.insert(zstd::bulk::Decompressor::new().map_err(|e| self.error(e))?)
                    }
                };
                decompressor
                    .decompress(compressed, raw_len)
                    .map_err(|e| self.error(e))
            })?,
            Codec::Snappy => {
                let claimed = snap::raw::decompress_len(compressed).map_err(|e| self.error(e))?;
                if claimed != raw_len {
                    return Err(self.error(format_args!(
                        "block claims {claimed} uncompressed bytes, metadata says {raw_len}"
                    )));
                }
                let mut out = vec![0; raw_len];
                let written = snap::raw::Decoder::new()
                    .decompress(compressed, &mut out)
                    .map_err(|e| self.error(e))?;
                out.truncate(written);
                out
            }
        };
        if out.len() != raw_len {
            return Err(self.error(format_args!(
                "decompressed to {} bytes, metadata says {raw_len}",
                out.len()
            )));
        }
        Ok(out)
    }

    fn error(self, reason: impl fmt::Display) -> ChunkError {
        ChunkError::Codec {
            codec: self,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Codec {
    type Err = ChunkError;

    /// Parses a codec name as written in configuration (`zstd`, `snappy`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "zstd" => Ok(Codec::Zstd),
            "snappy" => Ok(Codec::Snappy),
            _ => Err(ChunkError::UnknownCodec {
                name: name.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_length() {
        let raw = b"level=info msg=hello level=info msg=hello level=info".repeat(20);
        for codec in [Codec::Zstd, Codec::Snappy] {
            let compressed = codec.compress(&raw).unwrap();
            assert!(compressed.len() < raw.len(), "{codec} did not compress");
            assert_eq!(codec.decompress(&compressed, raw.len()).unwrap(), raw);
            assert!(matches!(
                codec.decompress(&compressed, raw.len() - 1),
                Err(ChunkError::Codec { .. })
            ));
            assert!(matches!(
                codec.decompress(&compressed, raw.len() + 1),
                Err(ChunkError::Codec { .. })
            ));
            assert!(codec.decompress(b"\xff\xfe garbage", 10).is_err());
        }
    }

    #[test]
    fn names_and_bytes() {
        for codec in [Codec::Zstd, Codec::Snappy] {
            assert_eq!(codec.as_str().parse::<Codec>().unwrap(), codec);
            assert_eq!(Codec::from_byte(codec.to_byte()), Some(codec));
        }
        assert_eq!(Codec::from_byte(0), None);
        assert!(matches!(
            "gzip".parse::<Codec>(),
            Err(ChunkError::UnknownCodec { .. })
        ));
    }
}
