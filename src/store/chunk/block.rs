//! Blocks: the open in-memory [`HeadBlock`], the compressed [`SealedBlock`]
//! with its [`BlockMeta`], and the decompressed, sorted [`DecodedBlock`].
//!
//! Owns the block payload encoding (see the layout in the parent module) and
//! the per-block symbol table for structured metadata. Does not own the chunk
//! object around blocks (`format`), nor merging of overlapping blocks (the
//! reader above does that).
//!
//! Invariants:
//! - A `HeadBlock` stores entries in arrival order in contiguous buffers; a
//!   push allocates nothing per entry (buffers grow amortised).
//! - A `DecodedBlock` is sorted by timestamp; equal timestamps keep arrival
//!   order (stable sort). Its lines are contiguous in that order.
//! - A `SealedBlock`'s `meta.checksum` is the CRC32C of `data`.

use std::hash::BuildHasher;
use std::ops::Range;

use bytes::Bytes;
use hashbrown::HashTable;
use memchr::memmem;

use super::ChunkError;
use super::codec::Codec;
use super::cursor::{ByteCursor, put_varint};
use crate::model::{Entry, MetadataPair, Timestamp};

/// Largest uncompressed block payload the format accepts (1 GiB). Blocks are
/// meant to be a few hundred KiB; this only bounds what a reader allocates.
pub const MAX_BLOCK_LEN: u64 = 1 << 30;

/// What the chunk index records about one block. Enough to decide whether to
/// fetch and decompress it (time range, size) and to check it (CRC32C).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    /// Byte offset of the compressed block in the chunk object. Zero in a
    /// [`SealedBlock`] that is not yet part of a chunk; [`encode_chunk`]
    /// and the chunk parsers fill it in.
    ///
    /// [`encode_chunk`]: super::encode_chunk
    pub offset: u64,
    /// Length of the compressed bytes.
    pub compressed_len: u64,
    /// Length of the decompressed payload.
    pub uncompressed_len: u64,
    /// Number of entries.
    pub entries: u64,
    /// Sum of the entries' sizes (line plus metadata bytes, as
    /// [`Entry::size`] counts them).
    pub raw_size: u64,
    /// Smallest timestamp in the block (zero when the block is empty).
    pub min_ts: Timestamp,
    /// Largest timestamp in the block (zero when the block is empty).
    pub max_ts: Timestamp,
    pub codec: Codec,
    /// CRC32C (Castagnoli) of the compressed bytes.
    pub checksum: u32,
    /// Reserved per-block filter (e.g. a token or n-gram bloom filter);
    /// always empty when written by v1, skipped by v1 readers.
    pub filter: Bytes,
}

impl BlockMeta {
    /// Whether the block may hold entries with `start <= ts < end`.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.entries > 0 && self.min_ts < end && self.max_ts >= start
    }

    /// Byte range of the compressed block in the chunk object (for a ranged
    /// read).
    pub fn byte_range(&self) -> Range<u64> {
        self.offset..self.offset.saturating_add(self.compressed_len)
    }
}

/// One compressed block, ready to be written into a chunk. Cloning is cheap
/// (the data is reference counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBlock {
    pub meta: BlockMeta,
    pub data: Bytes,
}

/// Structured-metadata names and values of one block, each stored once.
#[derive(Clone, Debug, Default)]
struct SymbolTable {
    /// All symbols, concatenated.
    text: String,
    /// End offset in `text` of each symbol; symbol `i` is
    /// `text[ends[i-1]..ends[i]]` (with `ends[-1] = 0`).
    ends: Vec<usize>,
    /// Symbol ids, hashed by their text.
    lookup: HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl SymbolTable {
    fn intern(&mut self, symbol: &str) -> u32 {
        let hash = self.hasher.hash_one(symbol);
        let (text, ends) = (&self.text, &self.ends);
        if let Some(&id) = self
            .lookup
            .find(hash, |&id| symbol_text(text, ends, id) == symbol)
        {
            return id;
        }
        let id = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
        self.text.push_str(symbol);
        self.ends.push(self.text.len());
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.lookup
            .insert_unique(hash, id, |&id| hasher.hash_one(symbol_text(text, ends, id)));
        id
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.lookup.clear();
    }
}

fn symbol_range(ends: &[usize], id: u32) -> Range<usize> {
    let id = id as usize;
    let start = if id == 0 {
        0
    } else {
        ends.get(id - 1).copied().unwrap_or(0)
    };
    let end = ends.get(id).copied().unwrap_or(start);
    start..end
}

/// Symbol `id`; "" for an id out of range (decoding rules that out).
fn symbol_text<'t>(text: &'t str, ends: &[usize], id: u32) -> &'t str {
    text.get(symbol_range(ends, id)).unwrap_or("")
}

/// An open, append-only block of one stream, in memory.
///
/// Entries may arrive out of timestamp order; [`HeadBlock::snapshot`] and
/// [`HeadBlock::seal`] sort them stably. Pushing copies the line and interns
/// metadata into contiguous buffers: no heap allocation per entry.
#[derive(Clone, Debug, Default)]
pub struct HeadBlock {
    timestamps: Vec<Timestamp>,
    /// End offset in `lines` of each entry's line.
    line_ends: Vec<usize>,
    lines: Vec<u8>,
    /// End index in `metadata_pairs` of each entry's pairs.
    metadata_ends: Vec<usize>,
    /// (name symbol, value symbol) pairs.
    metadata_pairs: Vec<(u32, u32)>,
    symbols: SymbolTable,
    raw_size: u64,
    min_ts: Timestamp,
    max_ts: Timestamp,
    /// Whether timestamps are non-decreasing in arrival order.
    in_order: bool,
}

impl HeadBlock {
    pub fn new() -> Self {
        HeadBlock::default()
    }

    /// Appends one entry. Metadata names and values that are not UTF-8
    /// (ingest rules that out) are stored with replacement characters.
    pub fn push(&mut self, ts: Timestamp, line: &[u8], metadata: &[MetadataPair]) {
        self.push_line(ts, line);
        let mut size = line.len();
        for pair in metadata {
            let name = self.symbols.intern(&String::from_utf8_lossy(&pair.name));
            let value = self.symbols.intern(&String::from_utf8_lossy(&pair.value));
            self.metadata_pairs.push((name, value));
            size += pair.name.len() + pair.value.len();
        }
        self.finish_entry(size);
    }

    /// Appends one entry whose metadata comes as string pairs (copying an
    /// entry out of a [`DecodedBlock`] without building [`MetadataPair`]s).
    pub fn push_with_metadata<'a>(
        &mut self,
        ts: Timestamp,
        line: &[u8],
        metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        self.push_line(ts, line);
        let mut size = line.len();
        for (name, value) in metadata {
            let name_sym = self.symbols.intern(name);
            let value_sym = self.symbols.intern(value);
            self.metadata_pairs.push((name_sym, value_sym));
            size += name.len() + value.len();
        }
        self.finish_entry(size);
    }

    /// The timestamp and line of a new entry (its metadata follows).
    fn push_line(&mut self, ts: Timestamp, line: &[u8]) {
        if self.timestamps.is_empty() {
            self.min_ts = ts;
            self.max_ts = ts;
            self.in_order = true;
        } else {
            if ts < self.max_ts {
                self.in_order = false;
            }
            self.min_ts = self.min_ts.min(ts);
            self.max_ts = self.max_ts.max(ts);
        }
        self.timestamps.push(ts);
        self.lines.extend_from_slice(line);
        self.line_ends.push(self.lines.len());
    }

    /// Closes the entry whose metadata was just pushed; `size` is its line
    /// plus metadata bytes.
    fn finish_entry(&mut self, size: usize) {
        self.metadata_ends.push(self.metadata_pairs.len());
        self.raw_size += size as u64;
    }

    /// Appends one entry (see [`HeadBlock::push`]).
    pub fn push_entry(&mut self, entry: &Entry) {
        self.push(entry.ts, &entry.line, &entry.metadata);
    }

    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Sum of the entries' sizes (line plus metadata bytes).
    pub fn raw_size(&self) -> u64 {
        self.raw_size
    }

    /// Smallest timestamp, `None` when empty.
    pub fn min_ts(&self) -> Option<Timestamp> {
        (!self.is_empty()).then_some(self.min_ts)
    }

    /// Largest timestamp, `None` when empty.
    pub fn max_ts(&self) -> Option<Timestamp> {
        (!self.is_empty()).then_some(self.max_ts)
    }

    /// Removes every entry, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.timestamps.clear();
        self.line_ends.clear();
        self.lines.clear();
        self.metadata_ends.clear();
        self.metadata_pairs.clear();
        self.symbols.clear();
        self.raw_size = 0;
        self.min_ts = Timestamp::EPOCH;
        self.max_ts = Timestamp::EPOCH;
        self.in_order = true;
    }

    fn line_range(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.line_ends[i - 1] };
        start..self.line_ends[i]
    }

    fn metadata_range(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.metadata_ends[i - 1] };
        start..self.metadata_ends[i]
    }

    /// Entry indices in timestamp order (stable), or `None` when arrival
    /// order already is.
    fn sorted_order(&self) -> Option<Vec<usize>> {
        if self.in_order {
            return None;
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.timestamps[i]);
        Some(order)
    }

    /// A sorted copy of the block, for queries over the open head.
    pub fn snapshot(&self) -> DecodedBlock {
        let order = self.sorted_order();
        let n = self.len();
        let index = |k: usize| order.as_ref().map_or(k, |o| o[k]);
        let mut timestamps = Vec::with_capacity(n);
        let mut line_offsets = Vec::with_capacity(n + 1);
        let mut metadata_offsets = Vec::with_capacity(n + 1);
        let mut metadata_pairs = Vec::with_capacity(self.metadata_pairs.len());
        let lines = match &order {
            None => {
                line_offsets.push(0);
                line_offsets.extend_from_slice(&self.line_ends);
                metadata_offsets.push(0);
                metadata_offsets.extend_from_slice(&self.metadata_ends);
                metadata_pairs.extend_from_slice(&self.metadata_pairs);
                timestamps.extend_from_slice(&self.timestamps);
                self.lines.clone()
            }
            Some(_) => {
                let mut lines = Vec::with_capacity(self.lines.len());
                line_offsets.push(0);
                metadata_offsets.push(0);
                for k in 0..n {
                    let i = index(k);
                    timestamps.push(self.timestamps[i]);
                    lines.extend_from_slice(&self.lines[self.line_range(i)]);
                    line_offsets.push(lines.len());
                    metadata_pairs.extend_from_slice(&self.metadata_pairs[self.metadata_range(i)]);
                    metadata_offsets.push(metadata_pairs.len());
                }
                lines
            }
        };
        DecodedBlock {
            timestamps,
            line_offsets,
            lines: Bytes::from(lines),
            symbol_text: self.symbols.text.clone(),
            symbol_ends: self.symbols.ends.clone(),
            metadata_offsets,
            metadata_pairs,
        }
    }

    /// Sorts the entries stably by timestamp, encodes and compresses them.
    pub fn seal(&self, codec: Codec) -> Result<SealedBlock, ChunkError> {
        let payload = self.encode_payload();
        let uncompressed_len = payload.len() as u64;
        if uncompressed_len > MAX_BLOCK_LEN {
            return Err(ChunkError::BlockTooLarge {
                len: uncompressed_len,
                limit: MAX_BLOCK_LEN,
            });
        }
        let data = Bytes::from(codec.compress(&payload)?);
        let meta = BlockMeta {
            offset: 0,
            compressed_len: data.len() as u64,
            uncompressed_len,
            entries: self.len() as u64,
            raw_size: self.raw_size,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            codec,
            checksum: crc32c::crc32c(&data),
            filter: Bytes::new(),
        };
        Ok(SealedBlock { meta, data })
    }

    /// The uncompressed block payload, entries in timestamp order.
    fn encode_payload(&self) -> Vec<u8> {
        let order = self.sorted_order();
        let n = self.len();
        let index = |k: usize| order.as_ref().map_or(k, |o| o[k]);
        let symbols = &self.symbols;
        let mut out = Vec::with_capacity(
            self.lines.len() + symbols.text.len() + 4 * n + 2 * self.metadata_pairs.len() + 16,
        );
        put_varint(&mut out, n as u64);
        put_varint(&mut out, symbols.ends.len() as u64);
        for id in 0..symbols.ends.len() {
            let range = symbol_range(&symbols.ends, id as u32);
            put_varint(&mut out, range.len() as u64);
        }
        out.extend_from_slice(symbols.text.as_bytes());
        let mut prev: u64 = 0;
        for k in 0..n {
            let ts = self.timestamps[index(k)].nanos() as u64;
            put_varint(&mut out, ts.wrapping_sub(prev));
            prev = ts;
        }
        for k in 0..n {
            put_varint(&mut out, self.line_range(index(k)).len() as u64);
        }
        for k in 0..n {
            put_varint(&mut out, self.metadata_range(index(k)).len() as u64);
        }
        for k in 0..n {
            for &(name, value) in &self.metadata_pairs[self.metadata_range(index(k))] {
                put_varint(&mut out, u64::from(name));
                put_varint(&mut out, u64::from(value));
            }
        }
        for k in 0..n {
            out.extend_from_slice(&self.lines[self.line_range(index(k))]);
        }
        out
    }
}

/// One decompressed block: entries sorted by timestamp (stable), lines
/// contiguous in that order so a substring search can run over all of them
/// in one pass ([`DecodedBlock::lines_data`], [`DecodedBlock::lines_containing`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBlock {
    timestamps: Vec<Timestamp>,
    /// `len() + 1` offsets into `lines`; line `i` is
    /// `lines[line_offsets[i]..line_offsets[i + 1]]`.
    line_offsets: Vec<usize>,
    lines: Bytes,
    symbol_text: String,
    symbol_ends: Vec<usize>,
    /// `len() + 1` offsets into `metadata_pairs`.
    metadata_offsets: Vec<usize>,
    metadata_pairs: Vec<(u32, u32)>,
}

impl DecodedBlock {
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Timestamp of entry `i`. Panics if `i >= len()`, like slice indexing.
    pub fn ts(&self, i: usize) -> Timestamp {
        self.timestamps[i]
    }

    /// All timestamps, ascending.
    pub fn timestamps(&self) -> &[Timestamp] {
        &self.timestamps
    }

    /// Line of entry `i`. Panics if `i >= len()`.
    pub fn line(&self, i: usize) -> &[u8] {
        &self.lines[self.line_range(i)]
    }

    /// Line of entry `i` as a zero-copy slice of the block's buffer.
    pub fn line_bytes(&self, i: usize) -> Bytes {
        self.lines.slice(self.line_range(i))
    }

    /// Byte range of line `i` in [`DecodedBlock::lines_data`].
    pub fn line_range(&self, i: usize) -> Range<usize> {
        self.line_offsets[i]..self.line_offsets[i + 1]
    }

    /// Every line, concatenated in entry order with no separator. A match
    /// found here may span two lines: check it against
    /// [`DecodedBlock::line_range`].
    pub fn lines_data(&self) -> &[u8] {
        &self.lines
    }

    /// `len() + 1` offsets into [`DecodedBlock::lines_data`]: line `i` spans
    /// `offsets[i]..offsets[i + 1]`.
    pub fn line_offsets(&self) -> &[usize] {
        &self.line_offsets
    }

    /// Index of the entry whose line contains byte `offset` of
    /// [`DecodedBlock::lines_data`] (`len()` when past the end).
    pub fn entry_at_offset(&self, offset: usize) -> usize {
        self.line_offsets[1..].partition_point(|&end| end <= offset)
    }

    /// Indices, ascending and each once, of the entries whose line contains
    /// `needle`; one `memmem` pass over the block. An empty needle matches
    /// every line.
    pub fn lines_containing<'a>(
        &'a self,
        needle: &'a memmem::Finder<'_>,
    ) -> impl Iterator<Item = usize> + 'a {
        let needle_len = needle.needle().len();
        let mut next_entry = 0usize;
        let mut search_from = 0usize;
        std::iter::from_fn(move || {
            if needle_len == 0 {
                let i = next_entry;
                next_entry += 1;
                return (i < self.len()).then_some(i);
            }
            loop {
                let hit = search_from + needle.find(self.lines.get(search_from..)?)?;
                let i = self.entry_at_offset(hit);
                let end = *self.line_offsets.get(i + 1)?;
                // Either way no later match can start inside line `i` and
                // end inside it too, so continue at the next line.
                search_from = end;
                if hit + needle_len <= end {
                    return Some(i);
                }
            }
        })
    }

    /// Structured metadata of entry `i` as (name, value) pairs.
    pub fn metadata(&self, i: usize) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let range = self.metadata_offsets[i]..self.metadata_offsets[i + 1];
        self.metadata_pairs[range]
            .iter()
            .map(move |&(name, value)| {
                (
                    symbol_text(&self.symbol_text, &self.symbol_ends, name),
                    symbol_text(&self.symbol_text, &self.symbol_ends, value),
                )
            })
    }

    /// Bytes of entry `i`'s structured metadata: its names and values, as
    /// [`Entry::size`] counts them.
    pub fn metadata_size(&self, i: usize) -> usize {
        self.metadata(i).map(|(n, v)| n.len() + v.len()).sum()
    }

    /// Bytes of every entry's structured metadata, summed.
    pub fn metadata_bytes(&self) -> u64 {
        self.metadata_pairs
            .iter()
            .map(|&(name, value)| {
                (symbol_range(&self.symbol_ends, name).len()
                    + symbol_range(&self.symbol_ends, value).len()) as u64
            })
            .sum()
    }

    /// Entry `i` as an owned [`Entry`] (the line is a zero-copy slice; the
    /// metadata is copied).
    pub fn entry(&self, i: usize) -> Entry {
        Entry {
            ts: self.ts(i),
            line: self.line_bytes(i),
            metadata: self
                .metadata(i)
                .map(|(name, value)| {
                    MetadataPair::new(
                        Bytes::copy_from_slice(name.as_bytes()),
                        Bytes::copy_from_slice(value.as_bytes()),
                    )
                })
                .collect(),
        }
    }

    /// First index whose timestamp is `>= ts`.
    pub fn lower_bound(&self, ts: Timestamp) -> usize {
        self.timestamps.partition_point(|&t| t < ts)
    }

    /// First index whose timestamp is `> ts`.
    pub fn upper_bound(&self, ts: Timestamp) -> usize {
        self.timestamps.partition_point(|&t| t <= ts)
    }

    /// Decodes a decompressed payload, checking it against its metadata.
    pub(super) fn decode_payload(meta: &BlockMeta, payload: Bytes) -> Result<Self, ChunkError> {
        let mut cur = ByteCursor::new(&payload);
        // Every entry takes at least three payload bytes (timestamp, line
        // length and metadata count varints), which bounds the count.
        let n = cur.varint_len(cur.remaining() / 3, "entry count")?;
        if n as u64 != meta.entries {
            return Err(ChunkError::corrupt(format_args!(
                "block holds {n} entries, metadata says {}",
                meta.entries
            )));
        }
        let symbol_count = cur.varint_len(cur.remaining(), "symbol count")?;
        let mut symbol_ends = Vec::with_capacity(symbol_count);
        let mut text_len = 0usize;
        for _ in 0..symbol_count {
            text_len = text_len.saturating_add(cur.varint_len(cur.remaining(), "symbol length")?);
            symbol_ends.push(text_len);
        }
        let text = std::str::from_utf8(cur.bytes(text_len, "symbol text")?)
            .map_err(|_| ChunkError::corrupt("symbol text is not utf-8"))?;
        if !symbol_ends.iter().all(|&end| text.is_char_boundary(end)) {
            return Err(ChunkError::corrupt("symbol splits a utf-8 character"));
        }

        let mut timestamps = Vec::with_capacity(n);
        let mut prev: u64 = 0;
        for _ in 0..n {
            prev = prev.wrapping_add(cur.varint("timestamp")?);
            let ts = Timestamp::from_nanos(prev as i64);
            if timestamps.last().is_some_and(|&last| ts < last) {
                return Err(ChunkError::corrupt("block timestamps are not sorted"));
            }
            timestamps.push(ts);
        }
        if let (Some(&first), Some(&last)) = (timestamps.first(), timestamps.last())
            && (first != meta.min_ts || last != meta.max_ts)
        {
            return Err(ChunkError::corrupt(format_args!(
                "block spans {}..{} ns, metadata says {}..{}",
                first.nanos(),
                last.nanos(),
                meta.min_ts.nanos(),
                meta.max_ts.nanos()
            )));
        }

        let mut line_offsets = Vec::with_capacity(n + 1);
        line_offsets.push(0usize);
        let mut lines_len = 0usize;
        for _ in 0..n {
            let len = cur.varint_len(cur.remaining(), "line length")?;
            lines_len = lines_len.saturating_add(len);
            line_offsets.push(lines_len);
        }
        let mut metadata_offsets = Vec::with_capacity(n + 1);
        metadata_offsets.push(0usize);
        let mut pairs_len = 0usize;
        for _ in 0..n {
            // Each pair takes at least two bytes.
            let count = cur.varint_len(cur.remaining() / 2, "metadata count")?;
            pairs_len = pairs_len.saturating_add(count);
            metadata_offsets.push(pairs_len);
        }
        if pairs_len > cur.remaining() / 2 {
            return Err(ChunkError::corrupt("metadata pairs exceed the block"));
        }
        let mut metadata_pairs = Vec::with_capacity(pairs_len);
        let symbol_limit = symbol_count.saturating_sub(1);
        for _ in 0..pairs_len {
            let name = cur.varint_len(symbol_limit, "metadata name symbol")?;
            let value = cur.varint_len(symbol_limit, "metadata value symbol")?;
            if symbol_count == 0 {
                return Err(ChunkError::corrupt(
                    "metadata refers to an empty symbol table",
                ));
            }
            metadata_pairs.push((name as u32, value as u32));
        }
        let lines_start = cur.position();
        if cur.remaining() != lines_len {
            return Err(ChunkError::corrupt(format_args!(
                "block lines take {} bytes, lengths say {lines_len}",
                cur.remaining()
            )));
        }
        let mut raw_size = lines_len as u64;
        for &(name, value) in &metadata_pairs {
            raw_size += (symbol_range(&symbol_ends, name).len()
                + symbol_range(&symbol_ends, value).len()) as u64;
        }
        if raw_size != meta.raw_size {
            return Err(ChunkError::corrupt(format_args!(
                "block entries take {raw_size} bytes, metadata says {}",
                meta.raw_size
            )));
        }
        Ok(DecodedBlock {
            timestamps,
            line_offsets,
            symbol_text: text.to_string(),
            symbol_ends,
            metadata_offsets,
            metadata_pairs,
            lines: payload.slice(lines_start..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: i64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    fn meta(pairs: &[(&str, &str)]) -> Vec<MetadataPair> {
        pairs
            .iter()
            .map(|(n, v)| MetadataPair::new(n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn head_block_tracks_size_and_bounds() {
        let mut head = HeadBlock::new();
        assert_eq!((head.min_ts(), head.max_ts()), (None, None));
        head.push(ts(5), b"abc", &meta(&[("trace_id", "x1")]));
        head.push(ts(2), b"", &[]);
        head.push(ts(9), b"de", &meta(&[("trace_id", "x1"), ("user", "bob")]));
        assert_eq!(head.len(), 3);
        assert_eq!(head.raw_size(), 3 + 10 + 2 + 10 + 7);
        assert_eq!((head.min_ts(), head.max_ts()), (Some(ts(2)), Some(ts(9))));
        // "trace_id" and "x1" are stored once.
        assert_eq!(head.symbols.ends.len(), 4);
        head.clear();
        assert!(head.is_empty());
        assert_eq!(head.raw_size(), 0);
        assert_eq!(head.snapshot().len(), 0);
    }

    #[test]
    fn snapshot_sorts_stably() {
        let mut head = HeadBlock::new();
        head.push(ts(3), b"c", &[]);
        head.push(ts(1), b"a1", &meta(&[("k", "v1")]));
        head.push(ts(2), b"b", &[]);
        head.push(ts(1), b"a2", &meta(&[("k", "v2")]));
        let block = head.snapshot();
        let lines: Vec<&[u8]> = (0..block.len()).map(|i| block.line(i)).collect();
        assert_eq!(lines, [&b"a1"[..], b"a2", b"b", b"c"]);
        assert_eq!(block.lines_data(), b"a1a2bc");
        assert_eq!(block.timestamps(), &[ts(1), ts(1), ts(2), ts(3)]);
        assert_eq!(block.metadata(1).collect::<Vec<_>>(), [("k", "v2")]);
        assert_eq!(block.metadata(2).len(), 0);
        assert_eq!(block.lower_bound(ts(1)), 0);
        assert_eq!(block.upper_bound(ts(1)), 2);
        assert_eq!(block.lower_bound(ts(4)), 4);
        assert_eq!(block.upper_bound(ts(0)), 0);
    }

    #[test]
    fn lines_containing_maps_hits_to_entries_and_ignores_spanning_matches() {
        let mut head = HeadBlock::new();
        for (i, line) in ["xxab", "cd", "", "abab", "ab", "zzz"].iter().enumerate() {
            head.push(ts(i as i64), line.as_bytes(), &[]);
        }
        let block = head.snapshot();
        let finder = memmem::Finder::new("ab");
        assert_eq!(
            block.lines_containing(&finder).collect::<Vec<_>>(),
            [0, 3, 4]
        );
        // "bc" only exists across the boundary of lines 0 and 1.
        let finder = memmem::Finder::new("bc");
        assert_eq!(block.lines_containing(&finder).count(), 0);
        let finder = memmem::Finder::new("");
        assert_eq!(block.lines_containing(&finder).count(), 6);
        assert_eq!(block.entry_at_offset(0), 0);
        assert_eq!(block.entry_at_offset(4), 1);
        // Offset 6 starts line 3 (line 2 is empty).
        assert_eq!(block.entry_at_offset(6), 3);
    }

    #[test]
    fn seal_and_decode_round_trip() {
        let mut head = HeadBlock::new();
        head.push(ts(-7), b"negative", &meta(&[("a", "\u{e9}t\u{e9}")]));
        head.push(ts(i64::MAX), b"max", &[]);
        head.push(ts(i64::MIN), b"min\nline", &meta(&[("a", "b")]));
        for codec in [Codec::Zstd, Codec::Snappy] {
            let sealed = head.seal(codec).unwrap();
            assert_eq!(sealed.meta.checksum, crc32c::crc32c(&sealed.data));
            assert_eq!(sealed.meta.min_ts, ts(i64::MIN));
            let raw = codec
                .decompress(&sealed.data, sealed.meta.uncompressed_len as usize)
                .unwrap();
            let decoded = DecodedBlock::decode_payload(&sealed.meta, Bytes::from(raw)).unwrap();
            assert_eq!(decoded, head.snapshot());
        }
    }
}
