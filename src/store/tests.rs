//! Store facade tests: exact replay after crashes at every stage of a
//! chunk's life, and reads that see every entry exactly once.

use std::collections::BTreeMap;
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
