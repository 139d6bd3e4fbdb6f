//! WAL tests: round trips, group commit under concurrency, torn tails at
//! every offset, corruption, rotation and removal, LSN continuity,
//! fail-stop, and the v1 fixture.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::record::{FRAME_PREFIX_LEN, decode_payload, encode_unsequenced, seal_frame};
use super::*;
use crate::model::{Entry, MetadataPair, Timestamp};

fn entry(ts: i64, line: &str) -> Entry {
    Entry::new(Timestamp::from_nanos(ts), line.to_string())
}

fn entries_record(labels: &str, entries: Vec<Entry>) -> Record {
    Record::Entries {
        tenant: "tenant-a".to_string(),
        labels: labels.to_string(),
        entries,
    }
}

fn open(dir: &Path) -> (Wal, Vec<(Lsn, Record)>, u64) {
    open_with(dir, WalOptions::default())
}

fn open_with(dir: &Path, options: WalOptions) -> (Wal, Vec<(Lsn, Record)>, u64) {
    let (wal, replay) = Wal::open(dir, options).unwrap();
    let dropped = replay.dropped_tail_bytes();
    let records = replay.collect::<Result<Vec<_>, _>>().unwrap();
    (wal, records, dropped)
}

fn append_durably(wal: &Wal, record: &Record) -> Lsn {
    let lsn = wal.append(record.as_ref()).unwrap();
    wal.wait_durable_blocking(lsn).unwrap();
    lsn
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    paths.sort();
    paths
}

/// Byte ranges of the frames in a segment file.
fn frame_ranges(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < data.len() {
        let body_len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let end = pos + FRAME_PREFIX_LEN + body_len;
        out.push(pos..end);
        pos = end;
    }
    out
}

fn sample_records() -> Vec<Record> {
    vec![
        entries_record(
            r#"{app="x"}"#,
            vec![
                Entry {
                    ts: Timestamp::from_nanos(1_700_000_000_000_000_001),
                    line: Bytes::from_static(b"level=info msg=\"hello\""),
                    metadata: vec![MetadataPair::new("trace_id", "abc")],
                },
                entry(-5, ""),
                Entry {
                    ts: Timestamp::from_nanos(i64::MIN),
                    line: Bytes::from_static(b"\xff\xfe\nnot utf-8"),
                    metadata: vec![MetadataPair::new("a", ""), MetadataPair::new("b", "c")],
                },
            ],
        ),
        Record::Flushed {
            tenant: "tenant-a".to_string(),
            labels: r#"{app="x"}"#.to_string(),
            up_to: Lsn(1),
            payload: Bytes::from_static(b"chunk-ref \x00\x01"),
        },
        entries_record(r#"{app="y"}"#, Vec::new()),
    ]
}

#[test]
fn round_trips_both_record_types() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replayed, _) = open(dir.path());
    assert!(replayed.is_empty());
    let records = sample_records();
    let lsns: Vec<Lsn> = records.iter().map(|r| append_durably(&wal, r)).collect();
    assert_eq!(lsns, [Lsn(1), Lsn(2), Lsn(3)]);
    assert_eq!(wal.durable_lsn(), Lsn(3));
    let stats = wal.stats();
    assert_eq!(stats.records_appended, 3);
    assert_eq!(stats.fsyncs, 3);
    assert!(stats.bytes_written > 0);
    wal.shutdown().unwrap();

    let (wal, replayed, dropped) = open(dir.path());
    assert_eq!(dropped, 0);
    let expected: Vec<(Lsn, Record)> = lsns.into_iter().zip(records).collect();
    assert_eq!(replayed, expected);
    assert_eq!(wal.next_lsn(), Lsn(4));
}

#[test]
fn concurrent_appends_share_fsyncs_and_replay_exactly_once() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut previous = Lsn(0);
                for i in 0..PER_THREAD {
                    let entries = [entry(i as i64, &format!("thread {t} entry {i}"))];
                    let lsn = wal
                        .append(RecordRef::Entries {
                            tenant: "t",
                            labels: &format!("{{thread=\"{t}\"}}"),
                            entries: &entries,
                        })
                        .unwrap();
                    assert!(lsn > previous, "a thread's appends are FIFO");
                    previous = lsn;
                    wal.wait_durable_blocking(lsn).unwrap();
                    assert!(wal.durable_lsn() >= lsn);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = wal.stats();
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(stats.records_appended, total);
    assert!(
        stats.fsyncs < total,
        "{} fsyncs for {total} appends: no group commit",
        stats.fsyncs
    );
    Arc::into_inner(wal).unwrap().shutdown().unwrap();

    let (_wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.len() as u64, total);
    let lsns: Vec<u64> = replayed.iter().map(|(lsn, _)| lsn.0).collect();
    assert_eq!(lsns, (1..=total).collect::<Vec<_>>());
    let mut next_per_thread = [0usize; THREADS];
    for (_, record) in &replayed {
        let Record::Entries {
            labels, entries, ..
        } = record
        else {
            panic!("unexpected record {record:?}");
        };
        let t: usize = labels
            .trim_start_matches("{thread=\"")
            .trim_end_matches("\"}")
            .parse()
            .unwrap();
        let i = next_per_thread[t];
        assert_eq!(entries[0].line, format!("thread {t} entry {i}"));
        next_per_thread[t] += 1;
    }
    assert_eq!(next_per_thread, [PER_THREAD; THREADS]);
}

#[test]
fn async_waiters_are_woken() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    let wal = Arc::new(wal);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let wal = wal.clone();
                tokio::spawn(async move {
                    let entries = [entry(i, "async")];
                    let lsn = wal
                        .append(RecordRef::Entries {
                            tenant: "t",
                            labels: "{}",
                            entries: &entries,
                        })
                        .unwrap();
                    wal.wait_durable(lsn).await.unwrap();
                    lsn
                })
            })
            .collect();
        for task in tasks {
            let lsn = task.await.unwrap();
            assert!(wal.durable_lsn() >= lsn);
        }
    });
    assert_eq!(wal.stats().records_appended, 32);
}

#[test]
fn torn_tail_is_truncated_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    let records = [
        entries_record("{a}", vec![entry(1, "first")]),
        entries_record("{a}", vec![entry(2, "second")]),
        entries_record("{a}", vec![entry(3, "third")]),
    ];
    for record in &records {
        append_durably(&wal, record);
    }
    wal.shutdown().unwrap();
    let path = segment_paths(dir.path()).pop().unwrap();
    let file_name = path.file_name().unwrap().to_owned();
    let full = std::fs::read(&path).unwrap();
    let last = frame_ranges(&full).pop().unwrap();
    assert_eq!(last.end, full.len());

    let check = |damaged: Vec<u8>, label: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&file_name);
        std::fs::write(&path, &damaged).unwrap();
        let (wal, replayed, dropped) = open(dir.path());
        let expected: Vec<(Lsn, Record)> = [Lsn(1), Lsn(2)]
            .into_iter()
            .zip(records[..2].iter().cloned())
            .collect();
        assert_eq!(replayed, expected, "{label}");
        assert_eq!(dropped, (damaged.len() - last.start) as u64, "{label}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            last.start as u64,
            "{label}"
        );
        let replacement = entries_record("{a}", vec![entry(4, "after")]);
        assert_eq!(append_durably(&wal, &replacement), Lsn(3), "{label}");
        wal.shutdown().unwrap();
        let (_wal, replayed, dropped) = open(dir.path());
        assert_eq!(dropped, 0);
        assert_eq!(replayed.len(), 3, "{label}");
        assert_eq!(replayed[2], (Lsn(3), replacement), "{label}");
    };
    for cut in last.start + 1..last.end {
        check(full[..cut].to_vec(), &format!("cut at {cut}"));
    }
    for at in last.clone() {
        let mut damaged = full.clone();
        damaged[at] ^= 0x40;
        check(damaged, &format!("flip at {at}"));
    }
    // Zeros after the last record (a file extended but never written).
    let mut zeros = full[..last.start].to_vec();
    zeros.extend_from_slice(&[0; 16]);
    check(zeros, "trailing zeros");
}

#[test]
fn cut_off_header_of_last_segment_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000007.wal");
    std::fs::write(&path, &SEGMENT_MAGIC[..3]).unwrap();
    let (wal, replayed, dropped) = open(dir.path());
    assert!(replayed.is_empty());
    assert_eq!(dropped, 3);
    assert_eq!(append_durably(&wal, &sample_records()[0]), Lsn(7));
}

#[test]
fn corruption_in_an_earlier_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    append_durably(&wal, &entries_record("{a}", vec![entry(1, "one")]));
    wal.rotate().unwrap();
    append_durably(&wal, &entries_record("{a}", vec![entry(2, "two")]));
    wal.shutdown().unwrap();
    let paths = segment_paths(dir.path());
    assert_eq!(paths.len(), 2);
    let original = std::fs::read(&paths[0]).unwrap();

    let mut flipped = original.clone();
    let at = flipped.len() - 3;
    flipped[at] ^= 1;
    std::fs::write(&paths[0], &flipped).unwrap();
    let (_wal, mut replay) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    match replay.next() {
        Some(Err(WalError::ChecksumMismatch { path, offset, .. })) => {
            assert_eq!(path, paths[0]);
            assert_eq!(offset, SEGMENT_HEADER_LEN as u64);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(replay.next().is_none(), "replay stops after an error");
    drop(_wal);

    std::fs::write(&paths[0], &original[..original.len() - 1]).unwrap();
    let (_wal, mut replay) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let error = replay.next().unwrap().unwrap_err();
    assert!(
        matches!(&error, WalError::Corrupt { path, .. } if *path == paths[0]),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("00000000000000000001.wal"),
        "{error}"
    );
}

#[test]
fn valid_checksum_with_unknown_type_is_an_error_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = SEGMENT_MAGIC.to_vec();
    data.extend_from_slice(&[WAL_FORMAT_VERSION, 0, 0, 0]);
    let mut frame = Vec::new();
    encode_unsequenced(
        &RecordRef::Flushed {
            tenant: "t",
            labels: "{}",
            up_to: Lsn(0),
            payload: b"",
        },
        &mut frame,
    )
    .unwrap();
    // Rewrite the type byte; the checksum is computed over the new one.
    frame[FRAME_PREFIX_LEN] = 99;
    let partial = partial_for(&frame);
    seal_frame(&mut frame, partial, Lsn(1));
    data.extend_from_slice(&frame);
    let path = dir.path().join("00000000000000000001.wal");
    std::fs::write(&path, &data).unwrap();
    let error = Wal::open(dir.path(), WalOptions::default()).err().unwrap();
    assert!(
        matches!(
            error,
            WalError::UnsupportedRecordType {
                found: 99,
                offset: 8,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), data, "file left untouched");
}

/// The CRC state over an unsequenced frame (length and body so far).
fn partial_for(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[FRAME_PREFIX_LEN..])
}

#[test]
fn newer_versions_and_bad_magic_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000001.wal");
    std::fs::write(&path, [b'L', b'K', b'W', b'L', 2, 0, 0, 0]).unwrap();
    let error = Wal::open(dir.path(), WalOptions::default()).err().unwrap();
    assert!(
        matches!(
            error,
            WalError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{error:?}"
    );
    std::fs::write(&path, b"NOTAWAL!").unwrap();
    let error = Wal::open(dir.path(), WalOptions::default()).err().unwrap();
    assert!(matches!(error, WalError::BadMagic { .. }), "{error:?}");
}

#[test]
fn rotation_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions { segment_size: 64 };
    let (wal, _, _) = open_with(dir.path(), options.clone());
    let mut lsns = Vec::new();
    for i in 0..6 {
        // Each record alone exceeds the segment size: one segment per record.
        lsns.push(append_durably(
            &wal,
            &entries_record("{a}", vec![entry(i, &"x".repeat(80))]),
        ));
    }
    // The writer rotates a full segment after acknowledging its batch; an
    // explicit rotate (a no-op on the empty active segment) waits for that.
    wal.rotate().unwrap();
    let names: Vec<String> = segment_paths(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Six full segments plus the empty active one, named by first LSN.
    assert_eq!(names.len(), 7);
    assert_eq!(names[0], "00000000000000000001.wal");
    assert_eq!(names[6], "00000000000000000007.wal");
    assert_eq!(wal.stats().segments, 7);

    // Records 1..=3 are no longer needed: segments 1, 2 and 3 go.
    assert_eq!(wal.remove_segments_before(Lsn(4)).unwrap(), 3);
    assert_eq!(segment_paths(dir.path()).len(), 4);
    assert_eq!(wal.remove_segments_before(Lsn(4)).unwrap(), 0);
    // The active segment is never removed.
    assert_eq!(wal.remove_segments_before(Lsn(u64::MAX)).unwrap(), 3);
    let remaining = segment_paths(dir.path());
    assert_eq!(remaining.len(), 1);
    assert!(remaining[0].ends_with("00000000000000000007.wal"));
    let stats = wal.stats();
    assert_eq!((stats.segments, stats.segments_removed), (1, 6));
    wal.shutdown().unwrap();

    let (wal, replayed, _) = open_with(dir.path(), options);
    assert!(replayed.is_empty());
    assert_eq!(wal.next_lsn(), Lsn(7), "lsns are not reused after removal");
}

#[test]
fn removal_keeps_segments_with_needed_records() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    append_durably(&wal, &entries_record("{a}", vec![entry(1, "1")]));
    append_durably(&wal, &entries_record("{a}", vec![entry(2, "2")]));
    wal.rotate().unwrap();
    append_durably(&wal, &entries_record("{a}", vec![entry(3, "3")]));
    wal.rotate().unwrap();
    // Rotating an empty active segment is a no-op.
    wal.rotate().unwrap();
    assert_eq!(segment_paths(dir.path()).len(), 3);
    // Record 2 is still needed, so the first segment stays.
    assert_eq!(wal.remove_segments_before(Lsn(2)).unwrap(), 0);
    assert_eq!(wal.remove_segments_before(Lsn(3)).unwrap(), 1);
    wal.shutdown().unwrap();
    let (_wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.iter().map(|(l, _)| l.0).collect::<Vec<_>>(), [3]);
}

#[test]
fn lsns_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    for i in 0..3 {
        append_durably(&wal, &entries_record("{a}", vec![entry(i, "x")]));
    }
    wal.shutdown().unwrap();
    let (wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.len(), 3);
    assert_eq!(wal.next_lsn(), Lsn(4));
    // An empty last segment carries the counter in its name.
    wal.rotate().unwrap();
    wal.shutdown().unwrap();
    let (wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.len(), 3);
    assert_eq!(
        append_durably(&wal, &entries_record("{a}", Vec::new())),
        Lsn(4)
    );
}

#[test]
fn a_full_last_segment_is_rotated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions { segment_size: 40 };
    let (wal, _, _) = open(dir.path());
    append_durably(
        &wal,
        &entries_record("{a}", vec![entry(1, &"y".repeat(50))]),
    );
    wal.shutdown().unwrap();
    let (wal, replayed, _) = open_with(dir.path(), options);
    assert_eq!(replayed.len(), 1);
    assert_eq!(segment_paths(dir.path()).len(), 2);
    assert_eq!(
        append_durably(&wal, &entries_record("{a}", Vec::new())),
        Lsn(2)
    );
}

#[test]
fn write_failure_stops_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    let ok = append_durably(&wal, &entries_record("{a}", vec![entry(1, "kept")]));
    wal.fail_next_write_for_test();
    let lsn = wal.append(sample_records()[0].as_ref()).unwrap();
    let error = wal.wait_durable_blocking(lsn).unwrap_err();
    assert!(matches!(error, WalError::Failed { .. }), "{error:?}");
    assert!(error.to_string().contains("injected failure"), "{error}");
    // Already durable records stay so; everything else fails.
    wal.wait_durable_blocking(ok).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(matches!(
        runtime.block_on(wal.wait_durable(lsn)),
        Err(WalError::Failed { .. })
    ));
    assert!(matches!(
        wal.append(sample_records()[1].as_ref()),
        Err(WalError::Failed { .. })
    ));
    assert!(matches!(wal.rotate(), Err(WalError::Failed { .. })));
    assert!(matches!(wal.shutdown(), Err(WalError::Failed { .. })));
}

#[test]
fn shutdown_flushes_pending_records() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    for i in 0..50 {
        wal.append(entries_record("{a}", vec![entry(i, "pending")]).as_ref())
            .unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let waiter = wal.wait_durable(Lsn(50));
    wal.shutdown().unwrap();
    runtime.block_on(waiter).unwrap();
    let (_wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.len(), 50);
}

#[test]
fn rejects_invalid_options() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions { segment_size: 8 }),
        Err(WalError::InvalidOptions { .. })
    ));
}

// ---- record codec properties ---------------------------------------------

fn record_strategy() -> impl Strategy<Value = Record> {
    let text = "\\PC{0,12}";
    let entry = (
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..30),
        proptest::collection::vec((text, text), 0..3),
    )
        .prop_map(|(ts, line, metadata)| Entry {
            ts: Timestamp::from_nanos(ts),
            line: Bytes::from(line),
            metadata: metadata
                .into_iter()
                .map(|(n, v)| MetadataPair::new(n, v))
                .collect(),
        });
    prop_oneof![
        (text, text, proptest::collection::vec(entry, 0..6)).prop_map(
            |(tenant, labels, entries)| {
                Record::Entries {
                    tenant,
                    labels,
                    entries,
                }
            }
        ),
        (
            text,
            text,
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(tenant, labels, up_to, payload)| Record::Flushed {
                tenant,
                labels,
                up_to: Lsn(up_to),
                payload: Bytes::from(payload),
            }),
    ]
}

proptest! {
    #[test]
    fn record_codec_round_trips(record in record_strategy(), lsn in any::<u64>()) {
        let mut frame = Vec::new();
        let partial = encode_unsequenced(&record.as_ref(), &mut frame).unwrap();
        seal_frame(&mut frame, partial, Lsn(lsn));
        prop_assert_eq!(partial_for(&frame[..frame.len() - 8]), partial);
        let frame = Bytes::from(frame);
        let payload = frame.slice(FRAME_PREFIX_LEN + 1..frame.len() - 8);
        let decoded = decode_payload(frame[FRAME_PREFIX_LEN], &payload).unwrap();
        prop_assert_eq!(decoded, record);
    }

    /// The body decoder sits behind a checksum; feed it directly.
    #[test]
    fn record_decoder_never_panics(
        record in record_strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        kind in 0u8..4,
    ) {
        let mut frame = Vec::new();
        encode_unsequenced(&record.as_ref(), &mut frame).unwrap();
        let mut payload = frame[FRAME_PREFIX_LEN + 1..].to_vec();
        for (at, value) in &flips {
            if !payload.is_empty() {
                let i = at.index(payload.len());
                payload[i] ^= value;
            }
        }
        payload.truncate(cut.index(payload.len() + 1));
        let _ = decode_payload(kind, &Bytes::from(payload));
    }
}

// ---- v1 fixture -----------------------------------------------------------

const FIXTURE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wal_v1.seg");

#[test]
#[ignore = "writes tests/data/wal_v1.seg; run once when creating the fixture"]
fn write_v1_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    for record in sample_records() {
        append_durably(&wal, &record);
    }
    wal.shutdown().unwrap();
    let path = segment_paths(dir.path()).pop().unwrap();
    std::fs::copy(path, FIXTURE_PATH).unwrap();
}

#[test]
fn reads_v1_fixture() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(FIXTURE_PATH, dir.path().join("00000000000000000001.wal"))
        .expect("tests/data/wal_v1.seg is committed");
    let (wal, replayed, dropped) = open(dir.path());
    assert_eq!(dropped, 0);
    let expected: Vec<(Lsn, Record)> = (1..).map(Lsn).zip(sample_records()).collect();
    assert_eq!(replayed, expected);
    assert_eq!(wal.next_lsn(), Lsn(4));
}

#[test]
fn handles_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
    assert_send_sync::<Record>();
    assert_send_sync::<WalError>();
    fn assert_send<T: Send>() {}
    assert_send::<Replay>();
}
