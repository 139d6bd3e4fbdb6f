//! lokal on a real S3 server (SeaweedFS): everything but the WAL lives in
//! the bucket, a fresh node with an empty disk serves what another flushed,
//! delete requests persist in the bucket, retention really deletes objects
//! (with per-tenant overrides reloaded at run time), and pushes are refused
//! with 503 past the head memory limit.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::weed::{self, ACCESS_KEY, REGION, SECRET_KEY};
use common::{Lokal, client};
use lokal::config::{ObjectBackend, S3Config};
use lokal::model::{TenantId, Timestamp};
use lokal::store::object::ObjectStorage;
use lokal::store::{Store, StoreConfig};

fn bucket_storage(bucket: &str) -> ObjectStorage {
    ObjectStorage::open(&ObjectBackend::S3(S3Config {
        endpoint: weed::weed().endpoint.clone(),
        bucket: bucket.to_string(),
        region: REGION.to_string(),
        access_key_id: ACCESS_KEY.to_string(),
        secret_access_key: SECRET_KEY.to_string(),
        session_token: String::new(),
        force_path_style: true,
        insecure: true,
    }))
    .unwrap()
}

fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = bucket_storage(bucket);
    rt.block_on(async {
        s.list(&prefix.into())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect()
    })
}

fn config(data: &std::path::Path, bucket: &str, extra: &str) -> String {
    format!(
        "auth_enabled: true\nserver:\n  http_listen_address: 127.0.0.1\n  http_listen_port: 0\ncommon:\n  path_prefix: {}\n{}limits_config:\n  reject_old_samples: false\n{extra}",
        data.display(),
        weed::storage_yaml(bucket)
    )
}

fn push(l: &Lokal, tenant: &str, labels: &str, lines: &[(i64, String)]) -> (u16, String) {
    let values: Vec<String> = lines
        .iter()
        .map(|(ts, line)| format!(r#"["{ts}",{}]"#, serde_json::to_string(line).unwrap()))
        .collect();
    let body = format!(
        r#"{{"streams":[{{"stream":{labels},"values":[{}]}}]}}"#,
        values.join(",")
    );
    let r = client()
        .post(l.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn lines(prefix: &str, start_ns: i64, n: usize) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| (start_ns + i as i64 * 1_000_000_000, format!("{prefix} {i}")))
        .collect()
}

fn flush(l: &Lokal) {
    let r = client().post(l.url("/flush")).send().unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().unwrap());
}

fn now_ns() -> i64 {
    Timestamp::now().nanos()
}

/// Every entry a fresh node (empty disk) reads from the bucket, per stream.
fn read_bucket(bucket: &str, tenant: &str) -> Vec<(String, Vec<String>)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            head: lokal::store::head::HeadConfig {
                codec: lokal::store::chunk::Codec::Zstd,
                block_size: 256 << 10,
                chunk_target_size: 1 << 20,
                chunk_idle_period: Duration::from_secs(1800),
                max_chunk_age: Duration::from_secs(7200),
            },
            wal_dir: dir.path().join("wal"),
            index_dir: dir.path().join("index"),
            wal_segment_size: 1 << 20,
            flush_workers: 1,
            chunk_cache_bytes: 0,
            max_head_memory: 0,
        };
        let store = Store::open(cfg, bucket_storage(bucket)).await.unwrap();
        let t = TenantId::new(tenant).unwrap();
        let mut out = Vec::new();
        for s in store
            .select(&t, &[], Timestamp::MIN, Timestamp::MAX)
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
                        v.push(String::from_utf8_lossy(d.line(i)).into_owned());
                    }
                }
            }
            v.sort();
            out.push((s.labels.to_string(), v));
        }
        out
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn everything_but_the_wal_is_in_the_bucket_and_a_fresh_node_serves_it() {
    let bucket = weed::fresh_bucket();
    let dir1 = tempfile::tempdir().unwrap();
    let extra = "compactor:\n  retention_enabled: true\n";
    let mut l1 = Lokal::start_in(dir1.path(), &config(dir1.path(), &bucket, extra));
    let base = now_ns() - 3_600_000_000_000;
    let a = lines("api line", base, 200);
    let b = lines("web line", base, 50);
    assert_eq!(push(&l1, "t1", r#"{"app":"api"}"#, &a).0, 204);
    assert_eq!(push(&l1, "t1", r#"{"app":"web"}"#, &b).0, 204);
    flush(&l1);
    // The chunks and the index are in the bucket.
    assert!(!keys(&bucket, "t1/chunks").is_empty());
    assert!(
        keys(&bucket, "t1/index")
            .iter()
            .any(|k| k.ends_with("meta.json"))
    );
    // A delete request, persisted in the bucket.
    let r = client()
        .post(l1.url(&format!(
            "/loki/api/v1/delete?query={}&start={}",
            "%7Bapp%3D%22web%22%7D",
            base / 1_000_000_000
        )))
        .header("X-Scope-OrgID", "t1")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let id = r
        .headers()
        .get("X-Delete-Request-ID")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(l1.terminate().code(), Some(0), "{}", l1.logs());

    // A second node with an empty disk on the same bucket.
    let dir2 = tempfile::tempdir().unwrap();
    let l2 = Lokal::start_in(dir2.path(), &config(dir2.path(), &bucket, extra));
    let list: serde_json::Value = client()
        .get(l2.url("/loki/api/v1/delete"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list[0]["request_id"], id.as_str());
    assert_eq!(list[0]["status"], "received");
    assert_eq!(list[0]["query"], r#"{app="web"}"#);
    // It takes writes for the same day (downloading the partition first).
    let c = lines("api more", base + 500_000_000_000, 20);
    assert_eq!(push(&l2, "t1", r#"{"app":"api"}"#, &c).0, 204);
    flush(&l2);
    drop(l2);

    // A third, empty, reader sees every flushed entry of both nodes.
    let got = read_bucket(&bucket, "t1");
    let want_api: Vec<String> = sorted(a.iter().chain(&c).map(|(_, l)| l.clone()).collect());
    let want_web: Vec<String> = sorted(b.iter().map(|(_, l)| l.clone()).collect());
    assert_eq!(
        got,
        vec![
            (r#"{app="api", service_name="api"}"#.to_string(), want_api),
            (r#"{app="web", service_name="web"}"#.to_string(), want_web),
        ]
    );
}

#[test]
fn retention_overrides_reload_and_delete_objects_from_the_bucket() {
    let bucket = weed::fresh_bucket();
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime.yaml");
    std::fs::write(&runtime, "overrides: {}\n").unwrap();
    let extra = format!(
        "  retention_period: 720h\ncompactor:\n  retention_enabled: true\n  compaction_interval: 1s\n  retention_delete_delay: 1s\nruntime_config:\n  file: {}\n  period: 1s\n",
        runtime.display()
    );
    let l = Lokal::start_in(dir.path(), &config(dir.path(), &bucket, &extra));
    let ten_days_ago = now_ns() - 10 * 86_400_000_000_000;
    for tenant in ["short", "long"] {
        assert_eq!(
            push(
                &l,
                tenant,
                r#"{"app":"x"}"#,
                &lines("old line", ten_days_ago, 30)
            )
            .0,
            204
        );
    }
    flush(&l);
    assert!(!keys(&bucket, "short/chunks").is_empty());
    // 30 days for everyone: nothing goes.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!keys(&bucket, "short/chunks").is_empty());
    // Tenant "short" now keeps 48 hours: its chunks leave the bucket.
    std::fs::write(
        &runtime,
        "overrides:\n  short:\n    retention_period: 48h\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !keys(&bucket, "short/chunks").is_empty() {
        assert!(
            Instant::now() < deadline,
            "chunks not deleted:\n{}",
            l.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The whole day partition is gone too; the other tenant keeps its data.
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys(&bucket, "short/index")
        .iter()
        .any(|k| k.ends_with("meta.json"))
    {
        assert!(
            Instant::now() < deadline,
            "index not dropped:\n{}",
            l.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(!keys(&bucket, "long/chunks").is_empty());
    assert_eq!(read_bucket(&bucket, "long")[0].1.len(), 30);
    assert!(read_bucket(&bucket, "short").is_empty());
}

#[test]
fn pushes_past_the_head_memory_limit_get_503() {
    let bucket = weed::fresh_bucket();
    let dir = tempfile::tempdir().unwrap();
    let extra = "ingester:\n  max_head_memory: 2KB\n  chunk_idle_period: 1h\n";
    let l = Lokal::start_in(dir.path(), &config(dir.path(), &bucket, extra));
    let base = now_ns();
    assert_eq!(
        push(
            &l,
            "t",
            r#"{"app":"a"}"#,
            &lines("x".repeat(100).as_str(), base, 40)
        )
        .0,
        204
    );
    let (status, body) = push(&l, "t", r#"{"app":"a"}"#, &lines("more", base + 1, 1));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_head_memory"), "{body}");
    // Once the head is stored, pushes are taken again.
    flush(&l);
    assert_eq!(
        push(&l, "t", r#"{"app":"a"}"#, &lines("more", base + 1, 1)).0,
        204
    );
}
