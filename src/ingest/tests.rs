use std::collections::HashSet;

use super::*;
use crate::config::units::ByteSize;

/// A sink that records appends in memory, like the store would.
#[derive(Default)]
struct MemorySink {
    streams: Mutex<HashMap<(TenantId, String), Vec<Entry>>>,
    lsn: std::sync::atomic::AtomicU64,
}

impl IngestSink for MemorySink {
    fn has_stream(&self, tenant: &TenantId, labels: &Labels) -> bool {
        self.streams
            .lock()
            .contains_key(&(tenant.clone(), labels.canonical()))
    }
    fn active_streams(&self, tenant: &TenantId) -> usize {
        self.streams
            .lock()
            .keys()
            .filter(|(t, _)| t == tenant)
            .count()
    }
    fn append(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        entries: Vec<Entry>,
    ) -> Result<Appended, SinkError> {
        let n = entries.len();
        self.streams
            .lock()
            .entry((tenant.clone(), labels.canonical()))
            .or_default()
            .extend(entries);
        let lsn = self.lsn.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(Appended {
            lsn: Some(lsn),
            accepted: n,
            too_far_behind: vec![],
            too_far_behind_bytes: 0,
        })
    }
}

fn setup(limits: Limits) -> (Arc<MemorySink>, Distributor) {
    let sink = Arc::new(MemorySink::default());
    let d = Distributor::new(sink.clone(), Arc::new(Overrides::new(limits)));
    (sink, d)
}

fn now() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

fn stream(labels: &str, lines: &[&str]) -> PushStream {
    PushStream {
        labels: StreamLabels::Text(labels.to_string()),
        entries: lines
            .iter()
            .map(|l| Entry::new(now(), l.to_string()))
            .collect(),
    }
}

fn t() -> TenantId {
    TenantId::new("fake").unwrap()
}

#[test]
fn valid_push_is_enriched_and_written() {
    let (sink, d) = setup(Limits::default());
    let out = d
        .push(
            &t(),
            PushRequest {
                streams: vec![stream(r#"{app="api", level="error"}"#, &["boom", "again"])],
            },
            now(),
        )
        .unwrap();
    assert_eq!(out.lines, 2);
    assert!(out.rejected.is_none());
    assert_eq!(out.wait_for, Some(1));
    let streams = sink.streams.lock();
    let (key, entries) = streams.iter().next().unwrap();
    assert_eq!(key.1, r#"{app="api", level="error", service_name="api"}"#);
    assert_eq!(entries[0].metadata.len(), 1);
    assert_eq!(entries[0].metadata[0].name_str(), "detected_level");
    assert_eq!(entries[0].metadata[0].value_str(), "error");
}

#[test]
fn partial_acceptance_groups_errors() {
    let (sink, d) = setup(Limits {
        max_line_size: ByteSize(5),
        ..Limits::default()
    });
    let req = PushRequest {
        streams: vec![
            stream(r#"{app="ok"}"#, &["fine", "too long line", "also too long"]),
            stream(r#"{app=broken}"#, &["x"]),
            stream(r#"{app="empty"}"#, &[]),
        ],
    };
    let out = d.push(&t(), req, now()).unwrap();
    assert_eq!(out.lines, 1, "the valid entry is still stored");
    let msg = out.rejected.unwrap();
    assert!(
        msg.starts_with("2 errors like: max entry size '5' bytes exceeded"),
        "{msg}"
    );
    assert!(
        msg.contains("1 errors like: error parsing labels '{app=broken}'"),
        "{msg}"
    );
    assert_eq!(
        sink.streams.lock().len(),
        1,
        "the empty stream is skipped silently"
    );
}

#[test]
fn no_streams_is_422() {
    let (_, d) = setup(Limits::default());
    let err = d.push(&t(), PushRequest::default(), now()).unwrap_err();
    assert_eq!(err.status(), 422);
    assert_eq!(
        err.to_string(),
        "error at least one valid stream is required for ingestion"
    );
}

#[test]
fn tenant_rate_limit_is_429_and_writes_nothing() {
    let limits = Limits {
        ingestion_rate_mb: 0.00001,
        ingestion_burst_size_mb: 0.00001,
        ..Limits::default()
    };
    let (sink, d) = setup(limits);
    let big = "x".repeat(200);
    let err = d
        .push(
            &t(),
            PushRequest {
                streams: vec![stream(r#"{app="a"}"#, &[&big])],
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(err.status(), 429);
    assert!(
        err.to_string()
            .starts_with("ingestion rate limit exceeded for user fake"),
        "{err}"
    );
    assert!(sink.streams.lock().is_empty());
}

#[test]
fn stream_limit_is_429() {
    let (sink, d) = setup(Limits {
        max_global_streams_per_user: 2,
        ..Limits::default()
    });
    for app in ["a", "b"] {
        d.push(
            &t(),
            PushRequest {
                streams: vec![stream(&format!(r#"{{app="{app}"}}"#), &["x"])],
            },
            now(),
        )
        .unwrap();
    }
    let err = d
        .push(
            &t(),
            PushRequest {
                streams: vec![stream(r#"{app="c"}"#, &["x"])],
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(err.status(), 429);
    assert!(
        err.to_string()
            .starts_with("Maximum active stream limit exceeded"),
        "{err}"
    );
    // Existing streams still accept entries.
    d.push(
        &t(),
        PushRequest {
            streams: vec![stream(r#"{app="a"}"#, &["y"])],
        },
        now(),
    )
    .unwrap();
    let names: HashSet<String> = sink.streams.lock().keys().map(|(_, l)| l.clone()).collect();
    assert_eq!(names.len(), 2);
}

#[test]
fn too_far_behind_message_matches_loki() {
    let r = too_far_behind_rejection(
        &t(),
        &Labels::parse(r#"{app="a"}"#).unwrap(),
        &[(
            Timestamp::from_secs(1_793_527_200),
            Timestamp::from_secs(1_793_530_800),
        )],
        3,
    );
    assert_eq!(
        r.message,
        "entry with timestamp 2026-11-01 10:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-11-01T10:00:00Z, oldest acceptable timestamp is: 2026-11-01T11:00:00Z',\nuser 'fake', total ignored: 1 out of 3 for stream: {app=\"a\"}"
    );
}

fn discarded(d: &Distributor, tenant: &TenantId, r: Reason) -> (u64, u64) {
    let c = d.counters.tenant(tenant);
    (
        c.discarded_lines[r.index()].load(Relaxed),
        c.discarded_bytes[r.index()].load(Relaxed),
    )
}

#[test]
fn counters_are_per_tenant_and_discards_per_reason() {
    let (_, d) = setup(Limits {
        max_line_size: ByteSize(5),
        ..Limits::default()
    });
    let other = TenantId::new("other").unwrap();
    let req = PushRequest {
        streams: vec![
            stream(r#"{app="ok"}"#, &["fine", "too long line"]),
            stream(r#"{app=broken}"#, &["x", "yz"]),
        ],
    };
    d.push(&t(), req, now()).unwrap();
    d.push(
        &other,
        PushRequest {
            streams: vec![stream(r#"{app="ok"}"#, &["abc"])],
        },
        now(),
    )
    .unwrap();
    let mine = d.counters.tenant(&t());
    assert_eq!(mine.lines_received.load(Relaxed), 4);
    assert_eq!(mine.bytes_received.load(Relaxed), 4 + 13 + 1 + 2);
    assert_eq!(discarded(&d, &t(), Reason::LineTooLong), (1, 13));
    // A refused label set discards the whole stream.
    assert_eq!(discarded(&d, &t(), Reason::InvalidLabels), (2, 3));
    assert_eq!(d.counters.lines_discarded.load(Relaxed), 3);
    assert_eq!(d.counters.lines_received.load(Relaxed), 5);
    let theirs = d.counters.tenant(&other);
    assert_eq!(theirs.lines_received.load(Relaxed), 1);
    assert_eq!(discarded(&d, &other, Reason::LineTooLong), (0, 0));
    let tenants: Vec<String> = d
        .counters
        .tenants()
        .iter()
        .map(|(t, _)| t.to_string())
        .collect();
    assert_eq!(tenants, ["fake", "other"]);
}

#[test]
fn a_rate_limited_request_discards_all_its_lines() {
    let (_, d) = setup(Limits {
        ingestion_rate_mb: 0.00001,
        ingestion_burst_size_mb: 0.00001,
        ..Limits::default()
    });
    let big = "x".repeat(200);
    d.push(
        &t(),
        PushRequest {
            streams: vec![stream(r#"{app="a"}"#, &[&big, &big])],
        },
        now(),
    )
    .unwrap_err();
    // The bytes the rate limit counted: lines plus the `detected_level`
    // metadata ingest added.
    let per_entry = 200 + "detected_level".len() + "unknown".len();
    assert_eq!(
        discarded(&d, &t(), Reason::RateLimited),
        (2, 2 * per_entry as u64)
    );
    assert_eq!(d.counters.lines_discarded.load(Relaxed), 2);
}

#[test]
fn reasons_index_their_table_and_carry_lokis_labels() {
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i);
    }
    assert_eq!(Reason::TooOld.label(), "greater_than_max_sample_age");
    assert_eq!(Reason::StreamLimit.label(), "stream_limit");
}
