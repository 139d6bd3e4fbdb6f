//! The chunk object: header bytes, blocks, index and footer (layout in the
//! parent module's docs).
//!
//! Owns [`encode_chunk`], the whole-object parser [`Chunk`] and the ranged
//! path ([`parse_footer`], [`parse_index`], [`decode_block_bytes`]). Does not
//! fetch bytes: callers hand in what they read from the object store.
//!
//! Invariants: every byte of a chunk is covered by a check (fixed magic and
//! version, or a CRC32C), so a flipped byte is always reported, never decoded
//! into wrong entries; no input makes a parser panic.

use bytes::Bytes;

use super::ChunkError;
use super::block::{BlockMeta, DecodedBlock, MAX_BLOCK_LEN, SealedBlock};
use super::codec::Codec;
use super::cursor::{ByteCursor, put_prefixed, put_varint};
use crate::model::{TenantId, Timestamp};

/// Magic at the start of every chunk object.
pub const CHUNK_MAGIC: [u8; 4] = *b"LKCH";
/// Magic at the very end of every chunk object.
pub const FOOTER_MAGIC: [u8; 4] = *b"LKCF";
/// The chunk format version this code writes and the newest it reads.
pub const CHUNK_FORMAT_VERSION: u8 = 1;
/// Length of the leading magic and version.
pub const CHUNK_HEADER_LEN: usize = 5;
/// Length of the fixed-size footer at the end of every chunk object.
pub const FOOTER_LEN: usize = 28;

/// What a chunk says about itself, enough to rebuild the label index from
/// chunk objects alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    pub tenant: TenantId,
    /// The stream's canonical label string (`Labels::canonical`).
    pub labels: String,
    /// The codec the chunk was written with (each block also records its own).
    pub codec: Codec,
    /// Smallest timestamp over all blocks (zero for an empty chunk).
    pub min_ts: Timestamp,
    /// Largest timestamp over all blocks (zero for an empty chunk).
    pub max_ts: Timestamp,
    pub entries: u64,
    /// Sum of the entries' sizes (line plus metadata bytes).
    pub raw_size: u64,
}

/// Summary statistics over a set of blocks.
struct BlockTotals {
    min_ts: Timestamp,
    max_ts: Timestamp,
    entries: u64,
    raw_size: u64,
}

fn totals<'a>(metas: impl IntoIterator<Item = &'a BlockMeta>) -> BlockTotals {
    let mut out = BlockTotals {
        min_ts: Timestamp::EPOCH,
        max_ts: Timestamp::EPOCH,
        entries: 0,
        raw_size: 0,
    };
    for meta in metas {
        if meta.entries > 0 {
            if out.entries == 0 {
                out.min_ts = meta.min_ts;
                out.max_ts = meta.max_ts;
            } else {
                out.min_ts = out.min_ts.min(meta.min_ts);
                out.max_ts = out.max_ts.max(meta.max_ts);
            }
        }
        out.entries = out.entries.saturating_add(meta.entries);
        out.raw_size = out.raw_size.saturating_add(meta.raw_size);
    }
    out
}

impl ChunkHeader {
    /// A header for `blocks`, with the statistics computed from them.
    pub fn for_blocks(
        tenant: TenantId,
        labels: impl Into<String>,
        codec: Codec,
        blocks: &[SealedBlock],
    ) -> Self {
        let totals = totals(blocks.iter().map(|b| &b.meta));
        ChunkHeader {
            tenant,
            labels: labels.into(),
            codec,
            min_ts: totals.min_ts,
            max_ts: totals.max_ts,
            entries: totals.entries,
            raw_size: totals.raw_size,
        }
    }

    /// Whether the chunk may hold entries with `start <= ts < end`.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.entries > 0 && self.min_ts < end && self.max_ts >= start
    }
}

/// Where the index lies in a chunk object, as the footer records it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IndexLocation {
    /// Byte offset of the index in the object.
    pub offset: u64,
    /// Length of the index, its trailing CRC32C included.
    pub len: u64,
}

impl IndexLocation {
    /// Byte range of the index (for a ranged read).
    pub fn byte_range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset.saturating_add(self.len)
    }
}

/// Serializes a chunk: header bytes, `blocks` in order, index, footer.
///
/// The tenant, labels and codec come from `header`; the time bounds, entry
/// count and raw size written are always computed from `blocks` (build the
/// header with [`ChunkHeader::for_blocks`]; a header that disagrees is a bug,
/// caught by a debug assertion). Blocks may overlap in time.
pub fn encode_chunk(header: &ChunkHeader, blocks: &[SealedBlock]) -> Bytes {
    let totals = totals(blocks.iter().map(|b| &b.meta));
    debug_assert_eq!(
        (
            header.min_ts,
            header.max_ts,
            header.entries,
            header.raw_size
        ),
        (
            totals.min_ts,
            totals.max_ts,
            totals.entries,
            totals.raw_size
        ),
        "chunk header statistics disagree with its blocks"
    );
    let data_len: usize = blocks.iter().map(|b| b.data.len()).sum();
    let mut out = Vec::with_capacity(
        CHUNK_HEADER_LEN + data_len + 64 + header.labels.len() + 64 * blocks.len() + FOOTER_LEN,
    );
    out.extend_from_slice(&CHUNK_MAGIC);
    out.push(CHUNK_FORMAT_VERSION);
    let mut offsets = Vec::with_capacity(blocks.len());
    for block in blocks {
        offsets.push(out.len() as u64);
        out.extend_from_slice(&block.data);
    }

    let index_offset = out.len();
    put_prefixed(&mut out, header.tenant.as_str().as_bytes());
    put_prefixed(&mut out, header.labels.as_bytes());
    out.push(header.codec.to_byte());
    out.extend_from_slice(&totals.min_ts.nanos().to_le_bytes());
    out.extend_from_slice(&totals.max_ts.nanos().to_le_bytes());
    put_varint(&mut out, totals.entries);
    put_varint(&mut out, totals.raw_size);
    put_varint(&mut out, blocks.len() as u64);
    for (block, offset) in blocks.iter().zip(offsets) {
        let meta = &block.meta;
        put_varint(&mut out, offset);
        put_varint(&mut out, block.data.len() as u64);
        put_varint(&mut out, meta.uncompressed_len);
        put_varint(&mut out, meta.entries);
        put_varint(&mut out, meta.raw_size);
        out.extend_from_slice(&meta.min_ts.nanos().to_le_bytes());
        out.extend_from_slice(&meta.max_ts.nanos().to_le_bytes());
        out.push(meta.codec.to_byte());
        out.extend_from_slice(&meta.checksum.to_le_bytes());
        put_prefixed(&mut out, &meta.filter);
    }
    let index_crc = crc32c::crc32c(&out[index_offset..]);
    out.extend_from_slice(&index_crc.to_le_bytes());
    let index_len = out.len() - index_offset;

    let footer_start = out.len();
    out.extend_from_slice(&(index_offset as u64).to_le_bytes());
    out.extend_from_slice(&(index_len as u64).to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, CHUNK_FORMAT_VERSION]);
    let footer_crc = crc32c::crc32c(&out[footer_start..]);
    out.extend_from_slice(&footer_crc.to_le_bytes());
    out.extend_from_slice(&FOOTER_MAGIC);
    Bytes::from(out)
}

fn check_version(found: u8) -> Result<(), ChunkError> {
    if found == CHUNK_FORMAT_VERSION {
        Ok(())
    } else {
        Err(ChunkError::UnsupportedVersion {
            found,
            supported: CHUNK_FORMAT_VERSION,
        })
    }
}

fn check_crc(what: &'static str, data: &[u8], expected: u32) -> Result<(), ChunkError> {
    let got = crc32c::crc32c(data);
    if got == expected {
        Ok(())
    } else {
        Err(ChunkError::ChecksumMismatch {
            what,
            got,
            expected,
        })
    }
}

/// Parses the last [`FOOTER_LEN`] bytes of a chunk object.
pub fn parse_footer(footer: &[u8]) -> Result<IndexLocation, ChunkError> {
    if footer.len() != FOOTER_LEN {
        return Err(ChunkError::Truncated {
            what: "footer",
            needed: FOOTER_LEN as u64,
            available: footer.len() as u64,
        });
    }
    let mut cur = ByteCursor::new(footer);
    let offset = cur.array::<8>("index offset")?;
    let len = cur.array::<8>("index length")?;
    let reserved = cur.array::<3>("footer reserved bytes")?;
    let version = cur.u8("footer version")?;
    let crc = cur.u32_le("footer checksum")?;
    let magic = cur.array::<4>("footer magic")?;
    if magic != FOOTER_MAGIC {
        return Err(ChunkError::BadMagic {
            what: "footer",
            found: magic,
            expected: FOOTER_MAGIC,
        });
    }
    check_version(version)?;
    check_crc("footer", &footer[..20], crc)?;
    if reserved != [0; 3] {
        return Err(ChunkError::corrupt("footer reserved bytes are not zero"));
    }
    let location = IndexLocation {
        offset: u64::from_le_bytes(offset),
        len: u64::from_le_bytes(len),
    };
    if location.len < 4 || location.offset < CHUNK_HEADER_LEN as u64 {
        return Err(ChunkError::corrupt(format_args!(
            "footer places the index at {}..+{}",
            location.offset, location.len
        )));
    }
    Ok(location)
}

fn timestamp(cur: &mut ByteCursor<'_>, what: &'static str) -> Result<Timestamp, ChunkError> {
    Ok(Timestamp::from_nanos(cur.i64_le(what)?))
}

fn codec(cur: &mut ByteCursor<'_>) -> Result<Codec, ChunkError> {
    let byte = cur.u8("codec")?;
    Codec::from_byte(byte)
        .ok_or_else(|| ChunkError::corrupt(format_args!("unknown codec byte {byte}")))
}

/// Parses the chunk index (the bytes at [`IndexLocation`], its CRC included).
pub fn parse_index(index: &[u8]) -> Result<(ChunkHeader, Vec<BlockMeta>), ChunkError> {
    let Some(body_len) = index.len().checked_sub(4) else {
        return Err(ChunkError::Truncated {
            what: "index",
            needed: 4,
            available: index.len() as u64,
        });
    };
    let (body, crc) = index.split_at(body_len);
    let mut crc_bytes = [0; 4];
    crc_bytes.copy_from_slice(crc);
    check_crc("index", body, u32::from_le_bytes(crc_bytes))?;

    let mut cur = ByteCursor::new(body);
    let tenant = std::str::from_utf8(cur.prefixed("tenant")?)
        .ok()
        .and_then(|t| TenantId::new(t).ok())
        .ok_or_else(|| ChunkError::corrupt("invalid tenant id"))?;
    let labels = std::str::from_utf8(cur.prefixed("labels")?)
        .map_err(|_| ChunkError::corrupt("labels are not utf-8"))?
        .to_string();
    let header = ChunkHeader {
        tenant,
        labels,
        codec: codec(&mut cur)?,
        min_ts: timestamp(&mut cur, "min timestamp")?,
        max_ts: timestamp(&mut cur, "max timestamp")?,
        entries: cur.varint("entry count")?,
        raw_size: cur.varint("raw size")?,
    };
    // A block meta takes at least 26 bytes (two timestamps, a codec, a CRC).
    let block_count = cur.varint_len(cur.remaining() / 26, "block count")?;
    let mut blocks = Vec::with_capacity(block_count);
    let mut data_end = CHUNK_HEADER_LEN as u64;
    for _ in 0..block_count {
        let meta = BlockMeta {
            offset: cur.varint("block offset")?,
            compressed_len: cur.varint("block length")?,
            uncompressed_len: cur.varint("block uncompressed length")?,
            entries: cur.varint("block entry count")?,
            raw_size: cur.varint("block raw size")?,
            min_ts: timestamp(&mut cur, "block min timestamp")?,
            max_ts: timestamp(&mut cur, "block max timestamp")?,
            codec: codec(&mut cur)?,
            checksum: cur.u32_le("block checksum")?,
            filter: Bytes::copy_from_slice(cur.prefixed("block filter")?),
        };
        if meta.offset < data_end {
            return Err(ChunkError::corrupt(format_args!(
                "block at offset {} overlaps the previous block or the header",
                meta.offset
            )));
        }
        if meta.uncompressed_len > MAX_BLOCK_LEN {
            return Err(ChunkError::BlockTooLarge {
                len: meta.uncompressed_len,
                limit: MAX_BLOCK_LEN,
            });
        }
        if meta.entries > 0 && meta.min_ts > meta.max_ts {
            return Err(ChunkError::corrupt("block min timestamp is after its max"));
        }
        data_end = meta.offset.saturating_add(meta.compressed_len);
        blocks.push(meta);
    }
    if !cur.is_empty() {
        return Err(ChunkError::corrupt(format_args!(
            "{} unexpected bytes after the block index",
            cur.remaining()
        )));
    }
    let totals = totals(&blocks);
    if (
        header.min_ts,
        header.max_ts,
        header.entries,
        header.raw_size,
    ) != (
        totals.min_ts,
        totals.max_ts,
        totals.entries,
        totals.raw_size,
    ) {
        return Err(ChunkError::corrupt(
            "chunk header statistics disagree with its blocks",
        ));
    }
    Ok((header, blocks))
}

/// Checks and decompresses one block fetched with a ranged read of
/// [`BlockMeta::byte_range`].
pub fn decode_block_bytes(meta: &BlockMeta, compressed: &[u8]) -> Result<DecodedBlock, ChunkError> {
    if compressed.len() as u64 != meta.compressed_len {
        return Err(ChunkError::Truncated {
            what: "block",
            needed: meta.compressed_len,
            available: compressed.len() as u64,
        });
    }
    check_crc("block", compressed, meta.checksum)?;
    let raw_len = usize::try_from(meta.uncompressed_len)
        .ok()
        .filter(|&len| len as u64 <= MAX_BLOCK_LEN)
        .ok_or(ChunkError::BlockTooLarge {
            len: meta.uncompressed_len,
            limit: MAX_BLOCK_LEN,
        })?;
    let payload = meta.codec.decompress(compressed, raw_len)?;
    DecodedBlock::decode_payload(meta, Bytes::from(payload))
}

/// A parsed chunk object held in memory.
#[derive(Clone, Debug)]
pub struct Chunk {
    data: Bytes,
    header: ChunkHeader,
    blocks: Vec<BlockMeta>,
}

impl Chunk {
    /// Parses a whole chunk object: checks the leading magic and version,
    /// the footer and the index. Blocks are checked when decoded.
    pub fn parse(data: Bytes) -> Result<Chunk, ChunkError> {
        let len = data.len();
        if len < CHUNK_HEADER_LEN + FOOTER_LEN {
            return Err(ChunkError::Truncated {
                what: "chunk",
                needed: (CHUNK_HEADER_LEN + FOOTER_LEN) as u64,
                available: len as u64,
            });
        }
        let mut head = ByteCursor::new(&data);
        let magic = head.array::<4>("chunk magic")?;
        if magic != CHUNK_MAGIC {
            return Err(ChunkError::BadMagic {
                what: "chunk",
                found: magic,
                expected: CHUNK_MAGIC,
            });
        }
        check_version(head.u8("chunk version")?)?;
        let footer_start = len - FOOTER_LEN;
        let location = parse_footer(&data[footer_start..])?;
        if location.offset.checked_add(location.len) != Some(footer_start as u64) {
            return Err(ChunkError::corrupt(format_args!(
                "footer places the index at {}..+{}, the footer starts at {footer_start}",
                location.offset, location.len
            )));
        }
        // Both fit in usize: their sum is `footer_start`.
        let (header, blocks) = parse_index(&data[location.offset as usize..footer_start])?;
        if let Some(last) = blocks.last()
            && last.offset.saturating_add(last.compressed_len) > location.offset
        {
            return Err(ChunkError::corrupt("a block overlaps the index"));
        }
        Ok(Chunk {
            data,
            header,
            blocks,
        })
    }

    pub fn header(&self) -> &ChunkHeader {
        &self.header
    }

    /// The block index, in the order the blocks were written.
    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    /// Indices of the blocks that may hold entries with `start <= ts < end`.
    pub fn blocks_overlapping(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> impl Iterator<Item = usize> + '_ {
        (0..self.blocks.len()).filter(move |&i| self.blocks[i].overlaps(start, end))
    }

    /// The whole object.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    fn meta(&self, index: usize) -> Result<&BlockMeta, ChunkError> {
        self.blocks.get(index).ok_or(ChunkError::NoSuchBlock {
            index,
            count: self.blocks.len(),
        })
    }

    /// The compressed bytes of block `index` (a zero-copy slice).
    pub fn block_data(&self, index: usize) -> Result<Bytes, ChunkError> {
        let meta = self.meta(index)?;
        // `parse` checked that every block lies before the index.
        Ok(self
            .data
            .slice(meta.offset as usize..(meta.offset + meta.compressed_len) as usize))
    }

    /// Checks and decompresses block `index`.
    pub fn decode_block(&self, index: usize) -> Result<DecodedBlock, ChunkError> {
        decode_block_bytes(self.meta(index)?, &self.block_data(index)?)
    }
}
