//! Building new chunk objects from old ones: merging several chunks of one
//! stream, or copying one without the entries a delete request selects.
//!
//! Owns the re-encoding only (decoded blocks in, an encoded chunk and its
//! reference out); no I/O. The output keeps every kept entry exactly once,
//! ordered by timestamp (equal timestamps keep their order across inputs:
//! input order, then position), split into blocks of the configured size.

use bytes::Bytes;

use crate::model::{Labels, TenantId, Timestamp};
use crate::store::chunk::{
    Chunk, ChunkError, ChunkHeader, Codec, DecodedBlock, HeadBlock, SealedBlock, encode_chunk,
};
use crate::store::index::ChunkRef;

/// A new chunk object with its reference.
#[derive(Debug, Clone)]
pub struct BuiltChunk {
    pub data: Bytes,
    pub chunk_ref: ChunkRef,
}

/// Accumulates entries into blocks and encodes a chunk.
pub struct ChunkBuilder {
    tenant: TenantId,
    labels: Labels,
    codec: Codec,
    block_size: u64,
    open: HeadBlock,
    sealed: Vec<SealedBlock>,
}

impl ChunkBuilder {
    pub fn new(tenant: TenantId, labels: Labels, codec: Codec, block_size: u64) -> Self {
        ChunkBuilder {
            tenant,
            labels,
            codec,
            block_size: block_size.max(1),
            open: HeadBlock::new(),
            sealed: Vec::new(),
        }
    }

    /// Copies entry `i` of `block`.
    pub fn push(&mut self, block: &DecodedBlock, i: usize) -> Result<(), ChunkError> {
        self.open
            .push_with_metadata(block.ts(i), block.line(i), block.metadata(i));
        if self.open.raw_size() >= self.block_size {
            self.seal()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<(), ChunkError> {
        if !self.open.is_empty() {
            self.sealed.push(self.open.seal(self.codec)?);
            self.open.clear();
        }
        Ok(())
    }

    /// The encoded chunk, or `None` when no entry was pushed.
    pub fn finish(mut self) -> Result<Option<BuiltChunk>, ChunkError> {
        self.seal()?;
        if self.sealed.is_empty() {
            return Ok(None);
        }
        let header = ChunkHeader::for_blocks(
            self.tenant.clone(),
            self.labels.canonical(),
            self.codec,
            &self.sealed,
        );
        let data = encode_chunk(&header, &self.sealed);
        let chunk_ref = ChunkRef {
            stream: self.labels.stream_id(),
            from: header.min_ts,
            through: header.max_ts,
            checksum: crc32c::crc32c(&data),
            entries: header.entries,
            raw_bytes: header.raw_size,
            size: data.len() as u64,
        };
        Ok(Some(BuiltChunk { data, chunk_ref }))
    }
}

/// Every block of every chunk, decoded, in input order.
pub fn decode_all<'a>(
    chunks: impl IntoIterator<Item = &'a Chunk>,
) -> Result<Vec<DecodedBlock>, ChunkError> {
    let mut out = Vec::new();
    for c in chunks {
        for i in 0..c.blocks().len() {
            if c.blocks()[i].entries > 0 {
                out.push(c.decode_block(i)?);
            }
        }
    }
    Ok(out)
}

/// Builds one chunk from `blocks` (in input order), keeping the entries for
/// which `keep(block, i)` is true, merged by timestamp. Returns the chunk
/// (`None` when nothing is kept) and how many entries were dropped.
pub fn rebuild(
    mut builder: ChunkBuilder,
    blocks: &[DecodedBlock],
    mut keep: impl FnMut(&DecodedBlock, usize) -> bool,
) -> Result<(Option<BuiltChunk>, u64), ChunkError> {
    // (timestamp, block, entry): one allocation for the whole merge; a
    // stable sort keeps equal timestamps in input order.
    let mut order: Vec<(Timestamp, u32, u32)> = Vec::new();
    let mut dropped = 0u64;
    for (b, block) in blocks.iter().enumerate() {
        for i in 0..block.len() {
            if keep(block, i) {
                order.push((block.ts(i), b as u32, i as u32));
            } else {
                dropped += 1;
            }
        }
    }
    order.sort_by_key(|&(ts, _, _)| ts);
    for (_, b, i) in order {
        builder.push(&blocks[b as usize], i as usize)?;
    }
    Ok((builder.finish()?, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Entry, MetadataPair};

    fn chunk_of(entries: &[Entry]) -> Chunk {
        let mut b = ChunkBuilder::new(
            TenantId::new("t").unwrap(),
            Labels::parse(r#"{app="a"}"#).unwrap(),
            Codec::Zstd,
            256,
        );
        let mut hb = HeadBlock::new();
        for e in entries {
            hb.push_entry(e);
        }
        let d = hb.snapshot();
        for i in 0..d.len() {
            b.push(&d, i).unwrap();
        }
        Chunk::parse(b.finish().unwrap().unwrap().data).unwrap()
    }

    type Row = (i64, String, Vec<(String, String)>);

    fn entries(c: &[DecodedBlock]) -> Vec<Row> {
        let mut v = Vec::new();
        for b in c {
            for i in 0..b.len() {
                v.push((
                    b.ts(i).nanos(),
                    String::from_utf8_lossy(b.line(i)).into_owned(),
                    b.metadata(i)
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                ));
            }
        }
        v
    }

    fn e(ts: i64, line: &str) -> Entry {
        let mut e = Entry::new(Timestamp::from_nanos(ts), line.to_string());
        if ts % 2 == 0 {
            e.metadata
                .push(MetadataPair::new("trace", format!("t{ts}")));
        }
        e
    }

    proptest::proptest! {
        #[test]
        fn merge_keeps_every_entry_once_in_time_order(
            a in proptest::collection::vec((0i64..1000, "[a-z]{0,40}"), 0..200),
            b in proptest::collection::vec((0i64..1000, "[a-z]{0,40}"), 1..200),
        ) {
            let ea: Vec<Entry> = a.iter().map(|(t, l)| e(*t, l)).collect();
            let eb: Vec<Entry> = b.iter().map(|(t, l)| e(*t, l)).collect();
            let mut chunks = Vec::new();
            if !ea.is_empty() { chunks.push(chunk_of(&ea)); }
            chunks.push(chunk_of(&eb));
            let blocks = decode_all(&chunks).unwrap();
            let mut expected = entries(&blocks);
            expected.sort_by_key(|x| x.0);
            let builder = ChunkBuilder::new(TenantId::new("t").unwrap(), Labels::parse(r#"{app="a"}"#).unwrap(), Codec::Snappy, 300);
            let (built, dropped) = rebuild(builder, &blocks, |_, _| true).unwrap();
            proptest::prop_assert_eq!(dropped, 0);
            let built = built.unwrap();
            let parsed = Chunk::parse(built.data.clone()).unwrap();
            proptest::prop_assert_eq!(built.chunk_ref.entries as usize, expected.len());
            proptest::prop_assert_eq!(built.chunk_ref.checksum, crc32c::crc32c(&built.data));
            let got = entries(&decode_all([&parsed]).unwrap());
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn filtering_drops_selected_entries_and_empty_results_are_none() {
        let c = chunk_of(&[
            e(1, "keep"),
            e(2, "secret"),
            e(3, "keep too"),
            e(4, "secret 2"),
        ]);
        let blocks = decode_all([&c]).unwrap();
        let builder = || {
            ChunkBuilder::new(
                TenantId::new("t").unwrap(),
                Labels::parse(r#"{app="a"}"#).unwrap(),
                Codec::Zstd,
                1 << 20,
            )
        };
        let (built, dropped) =
            rebuild(builder(), &blocks, |b, i| !b.line(i).starts_with(b"secret")).unwrap();
        assert_eq!(dropped, 2);
        let built = built.unwrap();
        let got = entries(&decode_all([&Chunk::parse(built.data).unwrap()]).unwrap());
        assert_eq!(
            got.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
            ["keep", "keep too"]
        );
        assert_eq!(got[0].2, Vec::<(String, String)>::new());
        assert_eq!(built.chunk_ref.from, Timestamp::from_nanos(1));
        assert_eq!(built.chunk_ref.through, Timestamp::from_nanos(3));
        let (none, dropped) = rebuild(builder(), &blocks, |_, _| false).unwrap();
        assert!(none.is_none());
        assert_eq!(dropped, 4);
    }
}
