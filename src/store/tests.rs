//! Store facade tests: exact replay after crashes at every stage of a
//! chunk's life, and reads that see every entry exactly once.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::*;
use crate::model::MatchOp;

fn cfg(dir: &std::path::Path, target: u64) -> StoreConfig {
    StoreConfig {
        head: HeadConfig {
            codec: chunk::Codec::Zstd,
            block_size: 4096,
            chunk_target_size: target,
            chunk_idle_period: Duration::from_secs(1800),
            max_chunk_age: Duration::from_secs(7200),
        },
        wal_dir: dir.join("wal"),
        index_dir: dir.join("index"),
        wal_segment_size: 64 << 10,
        flush_workers: 2,
        chunk_cache_bytes: 1 << 20,
        max_head_memory: 0,
    }
}

fn objects(dir: &std::path::Path) -> ObjectStorage {
    ObjectStorage::open(&crate::config::ObjectBackend::Filesystem {
        directory: dir.join("chunks"),
    })
    .unwrap()
}

fn tenant() -> TenantId {
    TenantId::new("fake").unwrap()
}

fn labels(app: &str) -> Labels {
    Labels::parse(&format!(r#"{{app="{app}"}}"#)).unwrap()
}

fn entries(app: &str, from: usize, n: usize) -> Vec<Entry> {
    (from..from + n)
        .map(|i| {
            let mut e = Entry::new(
                Timestamp::from_secs(1_700_000_000 + i as i64),
                format!("{app} line {i} {}", "x".repeat(i % 50)),
            );
            if i % 3 == 0 {
                e.metadata
                    .push(crate::model::MetadataPair::new("trace_id", format!("t{i}")));
            }
            e
        })
        .collect()
}

/// Every entry of the tenant, per stream, in timestamp order.
async fn read_all(store: &Store) -> BTreeMap<String, Vec<(i64, String)>> {
    let t = tenant();
    let any = Matcher::new("app", MatchOp::Re, ".+").unwrap();
    let mut out = BTreeMap::new();
    for s in store
        .select(&t, &[any], Timestamp::MIN, Timestamp::MAX)
        .await
        .unwrap()
    {
        let mut v = Vec::new();
        for src in &s.sources {
            for b in store
                .blocks(&t, src, Timestamp::MIN, Timestamp::MAX)
                .await
                .unwrap()
            {
                let d = b.decode().unwrap();
                for i in 0..d.len() {
                    v.push((
                        d.ts(i).nanos(),
                        String::from_utf8_lossy(d.line(i)).into_owned(),
                    ));
                }
            }
        }
        v.sort();
        out.insert(s.labels.to_string(), v);
    }
    out
}

fn expected(apps: &[(&str, usize)]) -> BTreeMap<String, Vec<(i64, String)>> {
    apps.iter()
        .map(|(app, n)| {
            let v = entries(app, 0, *n)
                .into_iter()
                .map(|e| (e.ts.nanos(), String::from_utf8_lossy(&e.line).into_owned()))
                .collect();
            (labels(app).to_string(), v)
        })
        .collect()
}

/// Stops background work and drops the store as a crash would (no flush),
/// waiting until blocking tasks have let go of it.
async fn crash(store: Arc<Store>, bg: Vec<tokio::task::JoinHandle<()>>) {
    for h in bg {
        h.abort();
    }
    for _ in 0..500 {
        if Arc::strong_count(&store) == 1 && Arc::strong_count(store.index()) == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the store is still in use");
}

async fn push(store: &Store, app: &str, from: usize, n: usize, batch: usize) {
    let mut i = from;
    while i < from + n {
        let k = batch.min(from + n - i);
        let out = store
            .append(&tenant(), &labels(app), entries(app, i, k))
            .unwrap();
        store.wait_durable(out.lsn.unwrap()).await.unwrap();
        i += k;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_restores_unflushed_entries_exactly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(cfg(dir.path(), 1 << 30), objects(dir.path()))
            .await
            .unwrap();
        push(&store, "a", 0, 500, 37).await;
        push(&store, "b", 0, 300, 50).await;
        assert_eq!(read_all(&store).await, expected(&[("a", 500), ("b", 300)]));
        // Dropped without flushing: a crash.
    }
    let store = Store::open(cfg(dir.path(), 1 << 30), objects(dir.path()))
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, expected(&[("a", 500), ("b", 300)]));
    assert_eq!(
        store.counters.wal_replayed_entries.load(Ordering::Relaxed),
        800
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_chunks_are_not_replayed_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A small target size makes appends cut chunks as they go.
        let store = Store::open(cfg(dir.path(), 2000), objects(dir.path()))
            .await
            .unwrap();
        let bg = store.start(Duration::from_millis(50));
        push(&store, "a", 0, 2000, 100).await;
        assert!(store.flush_all(Duration::from_secs(30)).await);
        push(&store, "a", 2000, 100, 10).await; // these stay in memory
        push(&store, "b", 0, 50, 10).await;
        assert!(store.counters.chunks_flushed.load(Ordering::Relaxed) > 1);
        assert_eq!(read_all(&store).await, expected(&[("a", 2100), ("b", 50)]));
        crash(store, bg).await;
    }
    let store = Store::open(cfg(dir.path(), 2000), objects(dir.path()))
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, expected(&[("a", 2100), ("b", 50)]));
    assert!(
        store.counters.wal_replayed_entries.load(Ordering::Relaxed) < 2100,
        "flushed entries are not replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_while_chunks_are_pending_or_partly_flushed() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Cut chunks but never run the flush workers: they are pending at the crash.
        let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
            .await
            .unwrap();
        push(&store, "a", 0, 1000, 100).await;
        assert!(store.in_flight.load(Ordering::Relaxed) > 0);
        assert_eq!(read_all(&store).await, expected(&[("a", 1000)]));
    }
    {
        // Replay re-cuts them; flush some, then crash again mid-way.
        let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
            .await
            .unwrap();
        assert_eq!(read_all(&store).await, expected(&[("a", 1000)]));
        let bg = store.start(Duration::from_millis(50));
        push(&store, "a", 1000, 500, 50).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        crash(store, bg).await;
    }
    let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, expected(&[("a", 1500)]));
    let bg = store.start(Duration::from_millis(50));
    assert!(store.flush_all(Duration::from_secs(30)).await);
    assert_eq!(read_all(&store).await, expected(&[("a", 1500)]));
    crash(store, bg).await;
    let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, expected(&[("a", 1500)]));
    assert_eq!(
        store.counters.wal_replayed_entries.load(Ordering::Relaxed),
        0,
        "everything was flushed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_out_of_order_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(cfg(dir.path(), 1 << 30), objects(dir.path()))
        .await
        .unwrap();
    let t = tenant();
    let l = labels("a");
    let e = |s: i64, line: &str| Entry::new(Timestamp::from_secs(s), line.to_string());
    let out = store
        .append(
            &t,
            &l,
            vec![
                e(10_000, "x"),
                e(10_000, "x"),
                e(10_000, "y"),
                e(9_000, "late"),
            ],
        )
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (3, 1));
    // One hour behind the newest (max_chunk_age / 2) is the limit.
    let out = store
        .append(
            &t,
            &l,
            vec![
                e(10_000 - 3601, "too late"),
                e(10_000 - 3600, "just in time"),
            ],
        )
        .unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(
        out.too_far_behind,
        vec![(
            Timestamp::from_secs(10_000 - 3601),
            Timestamp::from_secs(10_000 - 3600)
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_segments_are_removed_once_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(cfg(dir.path(), 4000), objects(dir.path()))
        .await
        .unwrap();
    let bg = store.start(Duration::from_millis(50));
    push(&store, "a", 0, 3000, 100).await;
    let before = store.wal().stats().segments;
    assert!(store.flush_all(Duration::from_secs(30)).await);
    let after = store.wal().stats().segments;
    assert!(after < before, "segments before {before}, after {after}");
    for h in bg {
        h.abort();
    }
}

/// A batch spanning decades and entries interleaved across midnight: every
/// chunk holds one UTC day, so a chunk touches one index partition, and
/// replay after crashes at every stage (some chunks stored, some pending,
/// some entries only in memory; WAL records holding entries of two days)
/// restores every entry exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_never_span_a_day_and_replay_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let midnight: i64 = 19_676 * 86_400; // 2023-11-15T00:00:00Z
    let e = |s: i64, line: String| Entry::new(Timestamp::from_secs(s), line);
    // The oldest first: the out-of-order window follows the newest entry.
    let mut all = vec![
        e(1_000_000_000, "from 2001".into()),
        e(midnight - 365 * 86_400, "a year ago".into()),
    ];
    // Alternating sides of midnight, within the out-of-order window.
    for i in 0..400_i64 {
        let ts = if i % 2 == 0 {
            midnight - 1800 + i
        } else {
            midnight + i
        };
        all.push(e(
            ts,
            format!("near midnight {i} {}", "y".repeat((i % 40) as usize)),
        ));
    }
    let want: BTreeMap<String, Vec<(i64, String)>> = {
        let (k, mut v) = as_expected("span", &all);
        v.sort();
        [(k, v)].into_iter().collect()
    };
    let in_one_day = |c: &ChunkRef| Day::of(c.from) == Day::of(c.through);
    {
        let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
            .await
            .unwrap();
        let bg = store.start(Duration::from_millis(50));
        push_entries(&store, "span", all[..200].to_vec()).await;
        assert!(store.flush_all(Duration::from_secs(30)).await);
        let refs = chunk_refs(&store).await;
        assert!(refs.len() >= 4, "{refs:?}");
        assert!(refs.iter().all(in_one_day), "{refs:?}");
        assert_eq!(
            store.index().days(&tenant()).len(),
            4,
            "2001, a year ago, and both sides of midnight"
        );
        push_entries(&store, "span", all[200..300].to_vec()).await;
        assert_eq!(
            read_all(&store).await.values().next().map(Vec::len),
            Some(300)
        );
        crash(store, bg).await;
    }
    {
        // Cut but never stored: pending at the crash.
        let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
            .await
            .unwrap();
        push_entries(&store, "span", all[300..].to_vec()).await;
        assert_eq!(read_all(&store).await, want);
        let s = store
            .head()
            .get(&tenant(), &labels("span").canonical())
            .unwrap();
        assert_eq!(
            store.head().building_days(&s),
            vec![
                Day::of(Timestamp::from_secs(midnight - 1)),
                Day::of(Timestamp::from_secs(midnight))
            ]
        );
    }
    let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, want);
    let bg = store.start(Duration::from_millis(50));
    assert!(store.flush_all(Duration::from_secs(30)).await);
    assert!(chunk_refs(&store).await.iter().all(in_one_day));
    crash(store, bg).await;
    let store = Store::open(cfg(dir.path(), 1500), objects(dir.path()))
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, want);
    assert_eq!(
        store.counters.wal_replayed_entries.load(Ordering::Relaxed),
        0,
        "everything was flushed"
    );
}

// ---------------------------------------------------------------------------
// The storage suite: written once, run against every object store backend —
// the local filesystem and a real S3 server (SeaweedFS).
// ---------------------------------------------------------------------------

#[path = "../../tests/common/weed.rs"]
mod weed;

use compactor::clock::{Clock, ManualClock};
use compactor::deletes::{DeleteQuery, DeleteQueryParser, LineFilter};
use compactor::retention::RetentionLimits;
use compactor::{Compactor, CompactorSettings};

#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    S3,
}

/// The object storage of one test: a directory, or its own prefix in the
/// shared S3 bucket.
fn storage(backend: Backend, dir: &std::path::Path, name: &str) -> ObjectStorage {
    match backend {
        Backend::Local => objects(dir),
        Backend::S3 => {
            let w = weed::weed();
            ObjectStorage::open(&crate::config::ObjectBackend::S3(crate::config::S3Config {
                endpoint: w.endpoint.clone(),
                bucket: weed::SHARED_BUCKET.to_string(),
                region: weed::REGION.to_string(),
                access_key_id: weed::ACCESS_KEY.to_string(),
                secret_access_key: weed::SECRET_KEY.to_string(),
                session_token: String::new(),
                force_path_style: true,
                insecure: true,
            }))
            .unwrap()
            .with_prefix(&weed::unique_prefix(name))
        }
    }
}

/// Entries of `app` from `start` (seconds), `step` seconds apart.
fn spread(app: &str, start: i64, n: usize, step: i64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            Entry::new(
                Timestamp::from_secs(start + i as i64 * step),
                format!("{app} line {i} {}", "z".repeat(i % 30)),
            )
        })
        .collect()
}

async fn push_entries(store: &Store, app: &str, entries: Vec<Entry>) {
    for batch in entries.chunks(50) {
        let out = store
            .append(&tenant(), &labels(app), batch.to_vec())
            .unwrap();
        store.wait_durable(out.lsn.unwrap()).await.unwrap();
    }
}

fn as_expected(app: &str, entries: &[Entry]) -> (String, Vec<(i64, String)>) {
    (
        labels(app).to_string(),
        entries
            .iter()
            .map(|e| (e.ts.nanos(), String::from_utf8_lossy(&e.line).into_owned()))
            .collect(),
    )
}

/// Keys under `prefix` in the object store.
async fn keys(objects: &ObjectStorage, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = objects
        .list(&ObjectPath::from(prefix))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    v.sort();
    v
}

async fn chunk_refs(store: &Store) -> Vec<ChunkRef> {
    store
        .index_streams(&tenant(), &[], Timestamp::MIN, Timestamp::MAX)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|s| s.chunks)
        .collect()
}

struct Limits(Duration);

impl RetentionLimits for Limits {
    fn retention_period(&self, _: &str) -> Duration {
        self.0
    }
    fn stream_retention(&self, _: &str) -> Vec<(String, i64, Duration)> {
        vec![(
            r#"{app="short"}"#.to_string(),
            0,
            Duration::from_secs(86_400),
        )]
    }
}

/// Deletes lines containing a substring (`{sel} |= "text"`).
struct Contains(Vec<u8>);

impl LineFilter for Contains {
    fn selects(&self, _: &Labels, block: &DecodedBlock, i: usize) -> bool {
        memchr::memmem::find(block.line(i), &self.0).is_some()
    }
}

/// A stand-in for the LogQL parser: a selector, optionally `|= "text"`.
fn test_parser() -> DeleteQueryParser {
    Arc::new(|q: &str| {
        let (matchers, used) = crate::model::parse_selector_prefix(q).map_err(|e| e.to_string())?;
        let rest = q[used..].trim();
        let filter: Option<Arc<dyn LineFilter>> = match rest.strip_prefix("|=") {
            Some(s) => {
                let s = s.trim();
                Some(Arc::new(Contains(s.trim_matches('"').as_bytes().to_vec())))
            }
            None if rest.is_empty() => None,
            None => return Err(format!("unsupported: {rest}")),
        };
        Ok(DeleteQuery { matchers, filter })
    })
}

const DAY_SECS: i64 = 86_400;
/// A UTC midnight (2023-11-14).
const BASE: i64 = 19_675 * DAY_SECS;

fn compactor(
    store: &Arc<Store>,
    clock: &Arc<ManualClock>,
    retention_days: u64,
    dry_run: bool,
) -> Compactor {
    Compactor::new(
        store.clone(),
        Arc::new(Limits(Duration::from_secs(
            retention_days * DAY_SECS as u64,
        ))),
        test_parser(),
        clock.clone() as Arc<dyn Clock>,
        CompactorSettings {
            retention_enabled: true,
            delete_delay: Duration::from_secs(7200),
            delete_cancel_period: Duration::from_secs(DAY_SECS as u64),
            dry_run,
            max_merges: 1000,
        },
    )
}

async fn fresh_node_serves_flushed_entries(backend: Backend) {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let objects = storage(backend, dir1.path(), "fresh-node");
    let a = spread("a", BASE, 600, 700); // about five days
    let b = spread("b", BASE + 3600, 40, 60);
    {
        let store = Store::open(cfg(dir1.path(), 3000), objects.clone())
            .await
            .unwrap();
        let bg = store.start(Duration::from_millis(50));
        push_entries(&store, "a", a.clone()).await;
        push_entries(&store, "b", b.clone()).await;
        assert!(store.flush_all(Duration::from_secs(60)).await);
        assert!(
            keys(&objects, "fake/index")
                .await
                .iter()
                .any(|k| k.ends_with("/meta.json")),
            "index snapshots are in the object store"
        );
        crash(store, bg).await;
    }
    let want: BTreeMap<_, _> = [as_expected("a", &a), as_expected("b", &b)].into();
    // A node with an empty disk, pointed at the same objects.
    let store = Store::open(cfg(dir2.path(), 3000), objects.clone())
        .await
        .unwrap();
    assert_eq!(read_all(&store).await, want);
    let series = store
        .series(&tenant(), &[], Timestamp::MIN, Timestamp::MAX)
        .await
        .unwrap();
    assert_eq!(series, vec![labels("a"), labels("b")]);
    assert!(
        store.snapshots().counters.downloads.load(Ordering::Relaxed) >= 5,
        "one download per day partition"
    );
    // The first node's disk still works too, without downloading.
    drop(store);
    let store = Store::open(cfg(dir1.path(), 3000), objects).await.unwrap();
    assert_eq!(read_all(&store).await, want);
    assert_eq!(
        store.snapshots().counters.downloads.load(Ordering::Relaxed),
        0
    );
}

async fn retention_hides_at_once_and_deletes_after_the_delay(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let objects = storage(backend, dir.path(), "retention");
    let old = spread("old", BASE, 50, 60);
    let new = spread("new", BASE + 5 * DAY_SECS, 50, 60);
    let short = spread("short", BASE + 4 * DAY_SECS, 50, 60);
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(
        BASE + 5 * DAY_SECS + 3600,
    )));
    {
        let store = Store::open(cfg(dir.path(), 2000), objects.clone())
            .await
            .unwrap();
        let bg = store.start(Duration::from_millis(50));
        push_entries(&store, "old", old.clone()).await;
        push_entries(&store, "new", new.clone()).await;
        push_entries(&store, "short", short.clone()).await;
        assert!(store.flush_all(Duration::from_secs(60)).await);
        let old_id = labels("old").stream_id();
        let old_chunks = keys(&objects, &format!("fake/chunks/{old_id}")).await;
        assert!(!old_chunks.is_empty());

        // A dry run changes nothing.
        let report = compactor(&store, &clock, 3, true).run_once().await.unwrap();
        assert!(report.dry_run && report.expired > 0);
        assert_eq!(read_all(&store).await.len(), 3);

        let c = compactor(&store, &clock, 3, false);
        let report = c.run_once().await.unwrap();
        assert!(report.expired > 0, "{report:?}");
        // Hidden at once: only "new" is left (old: 3 days, short: 1 day).
        let want: BTreeMap<_, _> = [as_expected("new", &new)].into();
        assert_eq!(read_all(&store).await, want);
        // The objects stay for the delete delay.
        assert_eq!(
            keys(&objects, &format!("fake/chunks/{old_id}")).await,
            old_chunks
        );
        drop(c);
        crash(store, bg).await;
    }
    // The waiting deletions survive a restart.
    let store = Store::open(cfg(dir.path(), 2000), objects.clone())
        .await
        .unwrap();
    let want: BTreeMap<_, _> = [as_expected("new", &new)].into();
    assert_eq!(
        read_all(&store).await,
        want,
        "nothing comes back after a restart"
    );
    clock.advance(Duration::from_secs(7201));
    let report = compactor(&store, &clock, 3, false)
        .run_once()
        .await
        .unwrap();
    assert!(report.objects_deleted > 0, "{report:?}");
    for app in ["old", "short"] {
        let id = labels(app).stream_id();
        assert!(
            keys(&objects, &format!("fake/chunks/{id}"))
                .await
                .is_empty(),
            "{app}'s chunk objects are gone"
        );
    }
    assert!(
        !keys(
            &objects,
            &format!("fake/chunks/{}", labels("new").stream_id())
        )
        .await
        .is_empty()
    );
    // Whole days past the longest period (3 days) are dropped, locally and remotely.
    let day0 = index::Day(BASE / DAY_SECS);
    assert!(!store.index().days(&tenant()).contains(&day0));
    assert!(!store.index().partition_path(&tenant(), day0).exists());
    assert!(
        keys(&objects, &format!("fake/index/{}", day0.name()))
            .await
            .is_empty()
    );
    let c = &store.compactor_counters;
    assert!(c.bytes_deleted.load(Ordering::Relaxed) > 0);
    assert!(c.chunks_deleted.load(Ordering::Relaxed) >= 2);
    assert_eq!(read_all(&store).await, want);
}

async fn delete_requests_remove_and_rewrite(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let objects = storage(backend, dir.path(), "deletes");
    let a = spread("a", BASE, 400, 10);
    let b = spread("b", BASE, 100, 10);
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(BASE + DAY_SECS)));
    let store = Store::open(cfg(dir.path(), 1500), objects.clone())
        .await
        .unwrap();
    let bg = store.start(Duration::from_millis(50));
    push_entries(&store, "a", a.clone()).await;
    push_entries(&store, "b", b.clone()).await;
    assert!(store.flush_all(Duration::from_secs(60)).await);
    let chunks_before = chunk_refs(&store).await.len();
    let m = store.manifest();
    let now = clock.now();
    // a: entries 100..=199 by time; b: lines containing "line 1".
    let (s, e) = ((BASE + 1000) * 1000, (BASE + 1990) * 1000);
    m.add_delete_request(&tenant(), r#"{app="a"}"#, &[(s, e)], now)
        .await
        .unwrap();
    m.add_delete_request(
        &tenant(),
        r#"{app="b"} |= "line 1""#,
        &[(BASE * 1000, (BASE + 5000) * 1000)],
        now,
    )
    .await
    .unwrap();
    let cancelled = m
        .add_delete_request(
            &tenant(),
            r#"{app="a"}"#,
            &[(BASE * 1000, (BASE + 9000) * 1000)],
            now,
        )
        .await
        .unwrap();
    m.cancel_delete_request(
        &tenant(),
        &cancelled,
        false,
        Duration::from_secs(DAY_SECS as u64),
        now,
    )
    .await
    .unwrap();
    let c = compactor(&store, &clock, 0, false);
    // Within the cancel period nothing happens.
    let report = c.run_once().await.unwrap();
    assert_eq!(report.requests_processed, 0);
    assert_eq!(
        read_all(&store).await.values().map(Vec::len).sum::<usize>(),
        500
    );
    clock.advance(Duration::from_secs(DAY_SECS as u64 + 61));
    let report = c.run_once().await.unwrap();
    assert_eq!(report.requests_processed, 2, "{report:?}");
    assert!(report.rewritten > 0);
    let keep_a: Vec<Entry> = a
        .iter()
        .filter(|e| e.ts.secs() < BASE + 1000 || e.ts.secs() > BASE + 1990)
        .cloned()
        .collect();
    let keep_b: Vec<Entry> = b
        .iter()
        .filter(|e| !String::from_utf8_lossy(&e.line).contains("line 1"))
        .cloned()
        .collect();
    assert_eq!(keep_a.len(), 300);
    let want: BTreeMap<_, _> = [as_expected("a", &keep_a), as_expected("b", &keep_b)].into();
    assert_eq!(read_all(&store).await, want);
    assert!(
        m.delete_requests(&tenant())
            .iter()
            .all(|r| r.status() == "processed")
    );
    assert!(chunk_refs(&store).await.len() <= chunks_before + 2);
    // After the delay the replaced objects are gone; what is indexed remains.
    clock.advance(Duration::from_secs(7201));
    c.run_once().await.unwrap();
    let indexed: HashSet<String> = chunk_refs(&store)
        .await
        .iter()
        .map(|c| chunk_path(&tenant(), c).to_string())
        .collect();
    let stored: HashSet<String> = keys(&objects, "fake/chunks").await.into_iter().collect();
    assert_eq!(indexed, stored, "no orphan and no missing chunk object");
    assert_eq!(read_all(&store).await, want);
    for h in bg {
        h.abort();
    }
}

async fn small_chunks_are_merged(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let objects = storage(backend, dir.path(), "merge");
    let store = Store::open(cfg(dir.path(), 100_000), objects.clone())
        .await
        .unwrap();
    let bg = store.start(Duration::from_millis(50));
    let mut all = Vec::new();
    for round in 0..6 {
        // Each flush cuts one small chunk (as idle flushes and restarts do).
        let e = spread("a", BASE + round * 100, 20, 1);
        push_entries(&store, "a", e.clone()).await;
        all.extend(e);
        assert!(store.flush_all(Duration::from_secs(60)).await);
    }
    assert_eq!(chunk_refs(&store).await.len(), 6);
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(BASE + 2 * DAY_SECS)));
    let c = compactor(&store, &clock, 0, false);
    let report = c.run_once().await.unwrap();
    assert_eq!(
        (report.merged_away, report.merged_written),
        (6, 1),
        "{report:?}"
    );
    assert_eq!(chunk_refs(&store).await.len(), 1);
    let want: BTreeMap<_, _> = [as_expected("a", &all)].into();
    assert_eq!(read_all(&store).await, want);
    clock.advance(Duration::from_secs(7201));
    c.run_once().await.unwrap();
    assert_eq!(keys(&objects, "fake/chunks").await.len(), 1);
    for h in bg {
        h.abort();
    }
}

/// Index compaction: a past day written by several flushes has several
/// index segments; a compactor run merges them into one, queries answer
/// the same, and the old segment files leave the object store.
async fn past_day_index_segments_are_merged(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let objects = storage(backend, dir.path(), "index-merge");
    // A large target size: the chunks are not small enough to merge, so
    // only the index is compacted.
    let store = Store::open(cfg(dir.path(), 1 << 20), objects.clone())
        .await
        .unwrap();
    let bg = store.start(Duration::from_millis(50));
    let mut want = BTreeMap::new();
    for (round, app) in ["a", "b", "c", "d"].iter().enumerate() {
        let e = spread(app, BASE + round as i64 * 1000, 30, 1);
        push_entries(&store, app, e.clone()).await;
        want.extend([as_expected(app, &e)]);
        assert!(store.flush_all(Duration::from_secs(60)).await);
    }
    let day = Day::of(Timestamp::from_secs(BASE));
    let segments = store.index().segment_count(&tenant(), day).unwrap();
    assert!(segments > 1, "{segments} segment(s): nothing to merge");
    let prefix = format!("fake/index/{}", day.name());
    let before: HashSet<String> = keys(&objects, &prefix).await.into_iter().collect();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(BASE + 2 * DAY_SECS)));
    let report = compactor(&store, &clock, 0, false)
        .run_once()
        .await
        .unwrap();
    assert_eq!(report.index_merges, 1, "{report:?}");
    assert_eq!(report.merged_away, 0, "{report:?}");
    assert_eq!(store.index().segment_count(&tenant(), day).unwrap(), 1);
    assert_eq!(read_all(&store).await, want);
    let after: HashSet<String> = keys(&objects, &prefix).await.into_iter().collect();
    let kept: Vec<&String> = before
        .intersection(&after)
        .filter(|k| !k.ends_with("meta.json") && !k.ends_with(".managed.json"))
        .collect();
    assert!(
        kept.is_empty(),
        "old index files still in the bucket: {kept:?}\nafter: {after:?}"
    );
    // A fresh node reads the merged partition.
    let dir2 = tempfile::tempdir().unwrap();
    let fresh = Store::open(cfg(dir2.path(), 1 << 20), objects.clone())
        .await
        .unwrap();
    assert_eq!(read_all(&fresh).await, want);
    for h in bg {
        h.abort();
    }
}

async fn compactor_changes_survive_a_crash_before_the_wal_forgets(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let objects = storage(backend, dir.path(), "crash");
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(BASE + DAY_SECS)));
    let mut all = Vec::new();
    {
        let store = Store::open(cfg(dir.path(), 100_000), objects.clone())
            .await
            .unwrap();
        let bg = store.start(Duration::from_millis(50));
        for round in 0..3 {
            let e = spread("a", BASE + round * 100, 20, 1);
            push_entries(&store, "a", e.clone()).await;
            all.extend(e);
            assert!(store.flush_all(Duration::from_secs(60)).await);
        }
        push_entries(&store, "gone", spread("gone", BASE, 30, 1)).await;
        assert!(store.flush_all(Duration::from_secs(60)).await);
        // The flush markers are still in the WAL: replay would re-add them.
        let id = chunk_refs(&store).await[0].id();
        assert!(store.marker_in_wal(&tenant(), &id));
        store
            .manifest()
            .add_delete_request(
                &tenant(),
                r#"{app="gone"}"#,
                &[(0, (BASE + DAY_SECS) * 1000)],
                clock.now(),
            )
            .await
            .unwrap();
        clock.advance(Duration::from_secs(DAY_SECS as u64 + 61));
        let report = compactor(&store, &clock, 0, false)
            .run_once()
            .await
            .unwrap();
        assert_eq!((report.merged_away, report.deleted), (3, 1), "{report:?}");
        assert!(!store.manifest().snapshot().tombstones.is_empty());
        crash(store, bg).await;
    }
    let want: BTreeMap<_, _> = [as_expected("a", &all)].into();
    let store = Store::open(cfg(dir.path(), 100_000), objects.clone())
        .await
        .unwrap();
    assert_eq!(
        read_all(&store).await,
        want,
        "replay neither resurrects deleted lines nor duplicates merged ones"
    );
    assert_eq!(chunk_refs(&store).await.len(), 1);

    // A crash between the manifest write and the index swap: the intent is
    // finished at start-up.
    let merged = chunk_refs(&store).await[0];
    store
        .manifest()
        .update(|m| {
            m.intents.push(compactor::manifest::IndexIntent {
                tenant: "fake".into(),
                labels: labels("a").canonical(),
                add: vec![],
                remove: records(&[merged]),
            });
            Ok::<_, ManifestError>(())
        })
        .await
        .unwrap();
    drop(store);
    let store = Store::open(cfg(dir.path(), 100_000), objects)
        .await
        .unwrap();
    assert!(read_all(&store).await.is_empty(), "the intent was applied");
    assert!(store.manifest().snapshot().intents.is_empty());
}

async fn failing_bucket_keeps_entries_and_bounds_memory(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let objects = storage(backend, dir.path(), "failing");
    let mut c = cfg(dir.path(), 1500);
    c.max_head_memory = 3_000;
    let store = Store::open(c, objects.clone()).await.unwrap();
    let bg = store.start(Duration::from_millis(50));
    objects.fail_puts.store(true, Ordering::SeqCst);
    let a = spread("a", BASE, 300, 1);
    let mut pushed = Vec::new();
    for batch in a.chunks(50) {
        if store.admit().is_err() {
            break;
        }
        push_entries(&store, "a", batch.to_vec()).await;
        pushed.extend_from_slice(batch);
    }
    let err = store.admit().unwrap_err();
    assert!(err.is_retryable());
    assert!(err.to_string().contains("max_head_memory"), "{err}");
    assert!(!store.flush_all(Duration::from_millis(500)).await);
    assert!(store.counters.flush_failures.load(Ordering::Relaxed) > 0);
    let want: BTreeMap<_, _> = [as_expected("a", &pushed)].into();
    assert_eq!(
        read_all(&store).await,
        want,
        "every acknowledged entry is readable"
    );
    objects.fail_puts.store(false, Ordering::SeqCst);
    assert!(store.flush_all(Duration::from_secs(60)).await);
    store.admit().unwrap();
    assert_eq!(read_all(&store).await, want);
    crash(store, bg).await;
    let store = Store::open(cfg(dir.path(), 1500), objects).await.unwrap();
    assert_eq!(read_all(&store).await, want);
}

macro_rules! storage_suite {
    ($($name:ident),* $(,)?) => {
        mod local_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Local).await
                }
            )*
        }
        mod s3_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::S3).await
                }
            )*
        }
    };
}

storage_suite!(
    fresh_node_serves_flushed_entries,
    retention_hides_at_once_and_deletes_after_the_delay,
    delete_requests_remove_and_rewrite,
    small_chunks_are_merged,
    past_day_index_segments_are_merged,
    compactor_changes_survive_a_crash_before_the_wal_forgets,
    failing_bucket_keeps_entries_and_bounds_memory,
);

/// The tail hook in `Store::append`: subscribers get exactly the accepted
/// entries (no duplicates, nothing refused), tagged with the WAL record that
/// holds them; nothing is published while nobody tails.
#[tokio::test]
async fn append_publishes_accepted_entries_to_tail_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(cfg(dir.path(), 1 << 20), objects(dir.path()))
        .await
        .unwrap();
    store
        .append(&tenant(), &labels("early"), entries("early", 0, 3))
        .unwrap();
    assert_eq!(store.tail_feed().delivered_total(), 0, "nobody tails");

    let sub = store
        .tail_feed()
        .subscribe(tail::TailRequest {
            tenant: tenant(),
            matchers: vec![Matcher::new("app", MatchOp::Eq, "a").unwrap()],
            queue_entries: 100,
            max_per_tenant: 10,
        })
        .unwrap();
    let batch = entries("a", 0, 4);
    let mut with_dup = batch.clone();
    with_dup.push(batch[3].clone());
    let out = store.append(&tenant(), &labels("a"), with_dup).unwrap();
    assert_eq!(out.duplicates, 1);
    store
        .append(&tenant(), &labels("b"), entries("b", 0, 2))
        .unwrap();
    let d = sub.try_recv().unwrap();
    assert_eq!(d.batches.len(), 1, "stream b does not match");
    assert_eq!(
        d.batches[0].entries(),
        &batch[..],
        "the duplicate is not published"
    );
    assert_eq!(Some(d.batches[0].lsn()), out.lsn);
    assert_eq!(d.batches[0].labels(), &labels("a"));
    drop(sub);
    store
        .append(&tenant(), &labels("a"), entries("a", 10, 2))
        .unwrap();
    assert_eq!(store.tail_feed().delivered_total(), 4);
}
