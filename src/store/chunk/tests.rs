//! Chunk tests against a `Vec<Entry>` reference model, corruption and
//! fuzz-style tests of every decoder, and the v1 fixture.

use bytes::Bytes;
use memchr::memmem;
use proptest::prelude::*;

use super::*;
use crate::model::{Entry, MetadataPair, TenantId, Timestamp};

fn tenant() -> TenantId {
    TenantId::new("tenant-a").unwrap()
}

/// The model of a block: its entries stably sorted by timestamp.
fn sorted_model(entries: &[Entry]) -> Vec<Entry> {
    let mut model = entries.to_vec();
    model.sort_by_key(|e| e.ts);
    model
}

fn decoded_entries(block: &DecodedBlock) -> Vec<Entry> {
    (0..block.len()).map(|i| block.entry(i)).collect()
}

fn head_of(entries: &[Entry]) -> HeadBlock {
    let mut head = HeadBlock::new();
    for entry in entries {
        head.push_entry(entry);
    }
    head
}

/// Seals each group of entries as one block and encodes a chunk.
fn build_chunk(groups: &[Vec<Entry>], codecs: &[Codec]) -> Bytes {
    let blocks: Vec<SealedBlock> = groups
        .iter()
        .zip(codecs.iter().cycle())
        .map(|(group, &codec)| head_of(group).seal(codec).unwrap())
        .collect();
    let header = ChunkHeader::for_blocks(tenant(), r#"{app="x"}"#, codecs[0], &blocks);
    encode_chunk(&header, &blocks)
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    let ts = prop_oneof![
        8 => 0i64..20,
        1 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
    ];
    let line = prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..40),
        2 => "[a-z =\n\"{}:]{0,30}".prop_map(String::into_bytes),
        1 => Just(Vec::new()),
    ];
    let name = prop_oneof![
        Just("trace_id".to_string()),
        Just("user".to_string()),
        "\\PC{0,6}"
    ];
    let value = prop_oneof![Just("a".to_string()), Just(String::new()), "\\PC{0,8}"];
    let metadata = proptest::collection::vec((name, value), 0..3);
    (ts, line, metadata).prop_map(|(ts, line, metadata)| Entry {
        ts: Timestamp::from_nanos(ts),
        line: Bytes::from(line),
        metadata: metadata
            .into_iter()
            .map(|(n, v)| MetadataPair::new(n, v))
            .collect(),
    })
}

fn groups_strategy() -> impl Strategy<Value = Vec<Vec<Entry>>> {
    proptest::collection::vec(proptest::collection::vec(entry_strategy(), 0..30), 0..5)
}

fn codec_strategy() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::Zstd), Just(Codec::Snappy)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chunk_round_trip_matches_model(
        groups in groups_strategy(),
        codecs in proptest::collection::vec(codec_strategy(), 1..3),
        range in (0i64..25, 0i64..25),
    ) {
        let bytes = build_chunk(&groups, &codecs);
        let chunk = Chunk::parse(bytes.clone()).unwrap();
        let header = chunk.header();
        prop_assert_eq!(header.labels.as_str(), r#"{app="x"}"#);
        prop_assert_eq!(&header.tenant, &tenant());
        let all: Vec<Entry> = groups.concat();
        prop_assert_eq!(header.entries, all.len() as u64);
        prop_assert_eq!(header.raw_size, all.iter().map(|e| e.size() as u64).sum::<u64>());
        if let (Some(min), Some(max)) = (all.iter().map(|e| e.ts).min(), all.iter().map(|e| e.ts).max()) {
            prop_assert_eq!((header.min_ts, header.max_ts), (min, max));
        }
        prop_assert_eq!(chunk.blocks().len(), groups.len());

        // The ranged path: footer, then index, then each block's range.
        let footer = &bytes[bytes.len() - FOOTER_LEN..];
        let location = parse_footer(footer).unwrap();
        let index = &bytes[location.offset as usize..(location.offset + location.len) as usize];
        let (ranged_header, ranged_blocks) = parse_index(index).unwrap();
        prop_assert_eq!(&ranged_header, header);
        prop_assert_eq!(&ranged_blocks[..], chunk.blocks());

        let (start, end) = (Timestamp::from_nanos(range.0), Timestamp::from_nanos(range.1));
        let overlapping: Vec<usize> = chunk.blocks_overlapping(start, end).collect();
        for (i, group) in groups.iter().enumerate() {
            let model = sorted_model(group);
            let decoded = chunk.decode_block(i).unwrap();
            prop_assert_eq!(&decoded_entries(&decoded), &model);
            let meta = &chunk.blocks()[i];
            let range = meta.byte_range();
            let ranged = decode_block_bytes(meta, &bytes[range.start as usize..range.end as usize]).unwrap();
            prop_assert_eq!(&ranged, &decoded);
            prop_assert_eq!(&decoded_entries(&head_of(group).snapshot()), &model);

            // Lines are contiguous in entry order.
            let concatenated: Vec<u8> = model.iter().flat_map(|e| e.line.iter().copied()).collect();
            prop_assert_eq!(decoded.lines_data(), &concatenated[..]);

            // Time bounds: a block holding an entry in [start, end) is never skipped,
            // and lower/upper bounds are partition points.
            let in_range = model.iter().any(|e| e.ts >= start && e.ts < end);
            if in_range {
                prop_assert!(overlapping.contains(&i));
            }
            let lo = decoded.lower_bound(start);
            prop_assert_eq!(lo, model.iter().filter(|e| e.ts < start).count());
            prop_assert_eq!(decoded.upper_bound(start), model.iter().filter(|e| e.ts <= start).count());

            // Substring search agrees with a per-line search.
            let needle = b"a";
            let finder = memmem::Finder::new(needle);
            let expected: Vec<usize> = (0..model.len())
                .filter(|&j| memmem::find(&model[j].line, needle).is_some())
                .collect();
            prop_assert_eq!(decoded.lines_containing(&finder).collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Chunk::parse(Bytes::from(bytes.clone()));
        let _ = parse_index(&bytes);
        if bytes.len() >= FOOTER_LEN {
            let _ = parse_footer(&bytes[..FOOTER_LEN]);
        }
    }

    #[test]
    fn parser_never_panics_on_mutated_chunks(
        groups in proptest::collection::vec(proptest::collection::vec(entry_strategy(), 1..8), 1..3),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = build_chunk(&groups, &[Codec::Zstd, Codec::Snappy]).to_vec();
        // One non-zero XOR per distinct position, so mutations never cancel.
        let len = bytes.len();
        let flips: std::collections::BTreeMap<usize, u8> =
            mutations.iter().map(|(at, value)| (at.index(len), value | 1)).collect();
        for (i, value) in flips {
            bytes[i] ^= value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Every byte is covered by a magic, a version or a checksum.
        let result = Chunk::parse(Bytes::from(bytes)).and_then(|chunk| {
            (0..chunk.blocks().len()).try_for_each(|i| chunk.decode_block(i).map(|_| ()))
        });
        prop_assert!(result.is_err());
    }

    /// The payload decoder sits behind a checksum; feed it directly.
    #[test]
    fn block_decoder_never_panics_on_mutated_payloads(
        entries in proptest::collection::vec(entry_strategy(), 0..10),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        random in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let head = head_of(&entries);
        let sealed = head.seal(Codec::Snappy).unwrap();
        let mut payload = Codec::Snappy
            .decompress(&sealed.data, sealed.meta.uncompressed_len as usize)
            .unwrap();
        for (at, value) in &mutations {
            if !payload.is_empty() {
                let i = at.index(payload.len());
                payload[i] ^= value;
            }
        }
        payload.truncate(cut.index(payload.len() + 1));
        for input in [payload, random] {
            if let Ok(block) = DecodedBlock::decode_payload(&sealed.meta, Bytes::from(input)) {
                for i in 0..block.len() {
                    let _ = (block.ts(i), block.line(i), block.metadata(i).count(), block.entry(i));
                }
                let finder = memmem::Finder::new("a");
                let _ = block.lines_containing(&finder).count();
                let _ = block.entry_at_offset(block.lines_data().len());
            }
        }
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let groups = vec![
        vec![
            Entry::new(Timestamp::from_nanos(5), "five"),
            Entry {
                ts: Timestamp::from_nanos(3),
                line: Bytes::from_static(b"three"),
                metadata: vec![MetadataPair::new("k", "v")],
            },
        ],
        vec![Entry::new(Timestamp::from_nanos(9), "nine")],
    ];
    let bytes = build_chunk(&groups, &[Codec::Zstd, Codec::Snappy]);
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut corrupt = bytes.to_vec();
            corrupt[i] ^= bit;
            let result = Chunk::parse(Bytes::from(corrupt)).and_then(|chunk| {
                (0..chunk.blocks().len()).try_for_each(|b| chunk.decode_block(b).map(|_| ()))
            });
            assert!(
                result.is_err(),
                "flip of bit {bit:#x} at byte {i} went unnoticed"
            );
        }
    }
}

#[test]
fn corruption_errors_name_what_failed() {
    let groups = vec![vec![Entry::new(Timestamp::from_nanos(1), "a line")]];
    let bytes = build_chunk(&groups, &[Codec::Zstd]);
    let chunk = Chunk::parse(bytes.clone()).unwrap();
    let block_start = chunk.blocks()[0].offset as usize;
    let footer_start = bytes.len() - FOOTER_LEN;
    let location = parse_footer(&bytes[footer_start..]).unwrap();

    let flip = |at: usize| {
        let mut corrupt = bytes.to_vec();
        corrupt[at] ^= 0x10;
        Bytes::from(corrupt)
    };
    let block_err = Chunk::parse(flip(block_start)).unwrap().decode_block(0);
    assert!(
        matches!(
            block_err,
            Err(ChunkError::ChecksumMismatch { what: "block", .. })
        ),
        "{block_err:?}"
    );
    assert!(matches!(
        Chunk::parse(flip(location.offset as usize)),
        Err(ChunkError::ChecksumMismatch { what: "index", .. })
    ));
    assert!(matches!(
        Chunk::parse(flip(footer_start)),
        Err(ChunkError::ChecksumMismatch { what: "footer", .. })
    ));
    assert!(matches!(
        Chunk::parse(flip(0)),
        Err(ChunkError::BadMagic { what: "chunk", .. })
    ));
    assert!(matches!(
        Chunk::parse(flip(bytes.len() - 1)),
        Err(ChunkError::BadMagic { what: "footer", .. })
    ));
    assert!(matches!(
        Chunk::parse(bytes.slice(..bytes.len() - 1)),
        Err(ChunkError::BadMagic { .. })
    ));
    assert!(matches!(
        Chunk::parse(bytes.slice(..10)),
        Err(ChunkError::Truncated { what: "chunk", .. })
    ));
    assert!(matches!(
        chunk.decode_block(1),
        Err(ChunkError::NoSuchBlock { index: 1, count: 1 })
    ));
    let meta = &chunk.blocks()[0];
    assert!(matches!(
        decode_block_bytes(meta, &chunk.block_data(0).unwrap()[1..]),
        Err(ChunkError::Truncated { what: "block", .. })
    ));
}

#[test]
fn newer_versions_are_rejected() {
    let bytes = build_chunk(&[vec![Entry::new(Timestamp::EPOCH, "x")]], &[Codec::Zstd]);
    let mut newer = bytes.to_vec();
    newer[4] = CHUNK_FORMAT_VERSION + 1;
    assert_eq!(
        Chunk::parse(Bytes::from(newer)).unwrap_err(),
        ChunkError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    let mut footer = bytes[bytes.len() - FOOTER_LEN..].to_vec();
    footer[19] = 7;
    assert_eq!(
        parse_footer(&footer).unwrap_err(),
        ChunkError::UnsupportedVersion {
            found: 7,
            supported: 1
        }
    );
}

#[test]
fn empty_chunk_round_trips() {
    let header = ChunkHeader::for_blocks(tenant(), "{}", Codec::Snappy, &[]);
    let chunk = Chunk::parse(encode_chunk(&header, &[])).unwrap();
    assert_eq!(chunk.header(), &header);
    assert!(chunk.blocks().is_empty());
    assert!(!chunk.header().overlaps(Timestamp::MIN, Timestamp::MAX));
}

#[test]
fn non_empty_filter_is_skipped_by_v1_readers() {
    let mut sealed = head_of(&[Entry::new(Timestamp::from_nanos(4), "x")])
        .seal(Codec::Zstd)
        .unwrap();
    sealed.meta.filter = Bytes::from_static(b"future bloom filter");
    let header =
        ChunkHeader::for_blocks(tenant(), "{}", Codec::Zstd, std::slice::from_ref(&sealed));
    let chunk = Chunk::parse(encode_chunk(&header, &[sealed])).unwrap();
    assert_eq!(&chunk.blocks()[0].filter[..], b"future bloom filter");
    assert_eq!(chunk.decode_block(0).unwrap().line(0), b"x");
}

// ---- v1 fixture -----------------------------------------------------------

const FIXTURE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/chunk_v1.bin");

/// The fixture's content: two blocks (zstd, then snappy), out-of-order and
/// equal timestamps, metadata, an empty, a multi-line and a non-UTF-8 line.
fn fixture_groups() -> Vec<Vec<Entry>> {
    let t = |s: i64| Timestamp::from_nanos(1_700_000_000_000_000_000 + s);
    let with_meta = |ts, line: &'static [u8], pairs: &[(&'static str, &'static str)]| Entry {
        ts,
        line: Bytes::from_static(line),
        metadata: pairs
            .iter()
            .map(|&(n, v)| MetadataPair::new(n, v))
            .collect(),
    };
    vec![
        vec![
            with_meta(t(30), b"level=info msg=\"third\"", &[("trace_id", "abc")]),
            with_meta(t(10), b"level=warn msg=\"first\"", &[]),
            with_meta(t(20), b"", &[("trace_id", "abc"), ("user", "\u{e9}mile")]),
            with_meta(t(20), b"line one\nline two", &[]),
        ],
        vec![
            with_meta(t(25), b"\xff\xfe not utf-8", &[("k", "")]),
            with_meta(t(40), b"{\"level\":\"error\"}", &[]),
        ],
    ]
}

#[test]
#[ignore = "writes tests/data/chunk_v1.bin; run once when creating the fixture"]
fn write_v1_fixture() {
    let bytes = build_chunk(&fixture_groups(), &[Codec::Zstd, Codec::Snappy]);
    std::fs::write(FIXTURE_PATH, &bytes).unwrap();
}

#[test]
fn reads_v1_fixture() {
    let bytes = std::fs::read(FIXTURE_PATH).expect("tests/data/chunk_v1.bin is committed");
    let chunk = Chunk::parse(Bytes::from(bytes)).unwrap();
    let header = chunk.header();
    assert_eq!(header.tenant.as_str(), "tenant-a");
    assert_eq!(header.labels, r#"{app="x"}"#);
    assert_eq!(header.codec, Codec::Zstd);
    assert_eq!(header.entries, 6);
    assert_eq!(
        header.min_ts,
        Timestamp::from_nanos(1_700_000_000_000_000_010)
    );
    assert_eq!(
        header.max_ts,
        Timestamp::from_nanos(1_700_000_000_000_000_040)
    );
    assert_eq!(
        chunk.blocks().iter().map(|b| b.codec).collect::<Vec<_>>(),
        [Codec::Zstd, Codec::Snappy]
    );
    for (i, group) in fixture_groups().iter().enumerate() {
        let decoded = chunk.decode_block(i).unwrap();
        assert_eq!(decoded_entries(&decoded), sorted_model(group));
    }
    let first = chunk.decode_block(0).unwrap();
    assert_eq!(first.line(1), b"", "equal timestamps keep arrival order");
    assert_eq!(first.line(2), b"line one\nline two");
    assert_eq!(
        first.metadata(1).collect::<Vec<_>>(),
        [("trace_id", "abc"), ("user", "\u{e9}mile")]
    );
}

#[test]
fn types_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Chunk>();
    assert_send_sync::<DecodedBlock>();
    assert_send_sync::<SealedBlock>();
    assert_send_sync::<HeadBlock>();
    assert_send_sync::<ChunkError>();
}
