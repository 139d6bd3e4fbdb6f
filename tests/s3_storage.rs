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
    let status = r.status().as_u16();
    assert_eq!(status, 204, "{}\n{}", r.text().unwrap(), l.logs());
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

// ---------------------------------------------------------------------------
// An unreachable bucket at start-up (issue 5 audit, item 1).
// ---------------------------------------------------------------------------

/// A loopback port nothing listens on (yet).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts forwarding `127.0.0.1:port` to SeaweedFS: the bucket "comes back".
fn forward_to_weed(port: u16) {
    use std::net::{Shutdown, TcpListener, TcpStream};
    let target = weed::weed()
        .endpoint
        .trim_start_matches("http://")
        .to_string();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let target = target.clone();
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(&target) else {
                    return;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(Shutdown::Write);
                let _ = up.join();
            });
        }
    });
}

/// The lines of every stream `query` selects in `[start_ns, end_ns)`.
fn query_lines(l: &Lokal, tenant: &str, query: &str, start_ns: i64, end_ns: i64) -> Vec<String> {
    let r = client()
        .get(l.url("/loki/api/v1/query_range"))
        .query(&[
            ("query", query.to_string()),
            ("start", start_ns.to_string()),
            ("end", end_ns.to_string()),
            ("limit", "5000".to_string()),
        ])
        .header("X-Scope-OrgID", tenant)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            out.push(e[1].as_str().unwrap().to_string());
        }
    }
    out.sort();
    out
}

/// Regression (issue 5 audit): with the bucket unreachable, lokal exited at
/// start-up (it loaded the compactor state before replaying the WAL), so a
/// restart during an outage refused every push and never replayed the WAL.
#[test]
fn an_unreachable_bucket_at_start_up_does_not_stop_pushes_or_replay() {
    let bucket = weed::fresh_bucket();
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    // The usual config, pointed at the dead port instead of SeaweedFS.
    let cfg = config(
        dir.path(),
        &bucket,
        "compactor:\n  retention_enabled: true\n  compaction_interval: 1s\n",
    )
    .replace(
        &format!("endpoint: {}\n", weed::weed().endpoint),
        &format!("endpoint: http://127.0.0.1:{port}\n"),
    );
    assert!(cfg.contains(&port.to_string()), "{cfg}");
    let l = Lokal::start_in(dir.path(), &cfg);
    let base = now_ns() - 600_000_000_000;
    let a = lines("before restart", base, 20);
    assert_eq!(
        push(&l, "t1", r#"{"app":"api"}"#, &a).0,
        204,
        "{}",
        l.logs()
    );
    let q = r#"{app="api"}"#;
    let end = now_ns() + 1_000_000_000;
    let want_a: Vec<String> = sorted(a.iter().map(|(_, s)| s.clone()).collect());
    assert_eq!(query_lines(&l, "t1", q, base, end), want_a);
    // The delete API needs the compactor state: 503, not a wrong answer.
    let r = client()
        .get(l.url("/loki/api/v1/delete"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);

    // A crash and a restart while the bucket is still down: the WAL replays.
    let l = l.restart();
    assert_eq!(query_lines(&l, "t1", q, base, end), want_a, "{}", l.logs());
    let b = lines("after restart", base + 100_000_000_000, 10);
    assert_eq!(push(&l, "t1", r#"{"app":"api"}"#, &b).0, 204);
    assert!(keys(&bucket, "t1").is_empty());

    // The bucket comes back: flushing works and everything is in it.
    forward_to_weed(port);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = client().post(l.url("/flush")).send().unwrap();
        if r.status().as_u16() == 204 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flush never worked:\n{}",
            l.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!keys(&bucket, "t1/chunks").is_empty());
    let want: Vec<String> = sorted(a.iter().chain(&b).map(|(_, s)| s.clone()).collect());
    assert_eq!(
        read_bucket(&bucket, "t1"),
        vec![(r#"{app="api", service_name="api"}"#.to_string(), want)]
    );
    let r = client()
        .get(l.url("/loki/api/v1/delete"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

// ---------------------------------------------------------------------------
// The delete API over HTTP (issue 5 audit, items 6 and 7).
// ---------------------------------------------------------------------------

fn delete_req(
    l: &Lokal,
    method: reqwest::Method,
    tenant: &str,
    params: &[(&str, String)],
) -> (u16, String, Option<String>) {
    let r = client()
        .request(method, l.url("/loki/api/v1/delete"))
        .query(params)
        .header("X-Scope-OrgID", tenant)
        .send()
        .unwrap();
    let id = r
        .headers()
        .get("X-Delete-Request-ID")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.text().unwrap(), id)
}

fn list_deletes(l: &Lokal, tenant: &str) -> serde_json::Value {
    let (status, body, _) = delete_req(l, reqwest::Method::GET, tenant, &[]);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn secs(ns: i64) -> String {
    (ns / 1_000_000_000).to_string()
}

#[test]
fn delete_api_validates_and_cancels_like_loki() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let l = Lokal::start_in(
        dir.path(),
        &common::test_config(
            dir.path(),
            "compactor:\n  retention_enabled: true\n  delete_max_interval: 1h\n  delete_request_cancel_period: 3s\n",
        ),
    );
    let now = now_ns();
    let hour_ago = secs(now - 3_600_000_000_000);
    let q = |s: &str| ("query", s.to_string());
    let post = |p: &[(&str, String)]| delete_req(&l, Method::POST, "t", p);
    // start is required; end may not be in the future.
    let (s, body, _) = post(&[q(r#"{app="a"}"#)]);
    assert_eq!((s, body.trim()), (400, "start time not set"));
    let (s, body, _) = post(&[
        q(r#"{app="a"}"#),
        ("start", hour_ago.clone()),
        ("end", secs(now + 3_600_000_000_000)),
    ]);
    assert_eq!(
        (s, body.trim()),
        (400, "deletes in the future are not allowed")
    );
    // max_interval (line filters only): units, the configured maximum, the span.
    let filtered = q(r#"{app="a"} |= "x""#);
    let (s, body, _) = post(&[
        filtered.clone(),
        ("start", hour_ago.clone()),
        ("max_interval", "500ms".into()),
    ]);
    assert_eq!(
        (s, body.trim()),
        (
            400,
            "invalid max_interval: valid time units are 's', 'm', 'h'"
        )
    );
    let (s, body, _) = post(&[
        filtered.clone(),
        ("start", secs(now - 7_200_000_000_000)),
        ("max_interval", "2h".into()),
    ]);
    assert_eq!(
        (s, body.trim()),
        (400, "max_interval can't be greater than 1h")
    );
    let (s, body, _) = post(&[
        filtered.clone(),
        ("start", hour_ago.clone()),
        ("end", secs(now - 3_000_000_000_000)),
        ("max_interval", "30m".into()),
    ]);
    assert_eq!(s, 400);
    assert!(
        body.starts_with("max_interval can't be greater than the interval to be deleted"),
        "{body}"
    );
    let (s, body, _) = post(&[
        filtered.clone(),
        ("start", hour_ago.clone()),
        ("end", hour_ago.clone()),
    ]);
    assert_eq!(
        (s, body.trim()),
        (
            400,
            "difference between start time and end time must be at least one second"
        )
    );
    // A filtered request over two hours is split by delete_max_interval.
    let (s, _, id) = post(&[
        filtered.clone(),
        ("start", secs(now - 7_200_000_000_000)),
        ("max_interval", "20m".into()),
    ]);
    assert_eq!(s, 204);
    let sharded = id.unwrap();

    // Cancel: 204, then 404 with Loki's text.
    let (s, _, id) = post(&[q(r#"{app="a"}"#), ("start", hour_ago.clone())]);
    assert_eq!(s, 204);
    let id = id.unwrap();
    assert_eq!(list_deletes(&l, "t").as_array().unwrap().len(), 2);
    let cancel = |id: &str, force: bool| {
        let mut p = vec![("request_id", id.to_string())];
        if force {
            p.push(("force", "true".to_string()));
        }
        delete_req(&l, Method::DELETE, "t", &p)
    };
    assert_eq!(cancel(&id, false).0, 204);
    let (s, body, _) = cancel(&id, false);
    assert_eq!(
        (s, body.trim()),
        (404, "could not find delete request with given id")
    );
    assert_eq!(cancel("0badc0de", false).0, 404);
    // Another tenant's request is not found either.
    assert_eq!(
        delete_req(
            &l,
            Method::DELETE,
            "other",
            &[("request_id", sharded.clone())]
        )
        .0,
        404
    );
    // Past the cancel period the compactor may be applying it: 400 unless
    // forced.
    std::thread::sleep(Duration::from_secs(4));
    let (s, body, _) = cancel(&sharded, false);
    assert_eq!(
        (s, body.trim()),
        (
            400,
            "deletion of request which is in process or already processed is not allowed"
        )
    );
    assert_eq!(cancel(&sharded, true).0, 204);
    assert!(list_deletes(&l, "t").as_array().unwrap().is_empty());
}

#[test]
fn delete_api_needs_retention() {
    use reqwest::Method;
    let l = Lokal::start("");
    let start = ("start", secs(now_ns() - 3_600_000_000_000));
    for (method, params) in [
        (
            Method::POST,
            vec![("query", r#"{app="a"}"#.to_string()), start.clone()],
        ),
        (Method::GET, vec![]),
        (Method::DELETE, vec![("request_id", "0badc0de".to_string())]),
    ] {
        let (s, body, _) = delete_req(&l, method, "t", &params);
        assert_eq!((s, body.trim()), (400, "Retention is not enabled"));
    }
}

/// A request processed end to end on the bucket: whole chunks deleted,
/// partly covered ones rewritten, queries stop returning the lines, the
/// objects go after the delay and /metrics counts them.
#[test]
fn delete_request_is_processed_end_to_end() {
    let bucket = weed::fresh_bucket();
    let dir = tempfile::tempdir().unwrap();
    let extra = "compactor:\n  retention_enabled: true\n  compaction_interval: 1s\n  retention_delete_delay: 1s\n  delete_request_cancel_period: 1s\n";
    let l = Lokal::start_in(dir.path(), &config(dir.path(), &bucket, extra));
    let base = (now_ns() - 7_200_000_000_000) / 1_000_000_000 * 1_000_000_000;
    let a = lines("api line", base, 100);
    let b = lines("web line", base, 30);
    assert_eq!(push(&l, "t1", r#"{"app":"api"}"#, &a).0, 204);
    assert_eq!(push(&l, "t1", r#"{"app":"web"}"#, &b).0, 204);
    flush(&l);
    assert_eq!(keys(&bucket, "t1/chunks").len(), 2, "one chunk per stream");
    let post = |query: &str, start: i64, end: i64| {
        let (s, body, _) = delete_req(
            &l,
            reqwest::Method::POST,
            "t1",
            &[
                ("query", query.to_string()),
                ("start", secs(start)),
                ("end", secs(end)),
            ],
        );
        assert_eq!(s, 204, "{body}");
    };
    // api lines 30..=59 (a part of its chunk); every web line.
    post(
        r#"{app="api"}"#,
        base + 30_000_000_000,
        base + 59_000_000_000,
    );
    post(
        r#"{app="web"}"#,
        base - 1_000_000_000,
        base + 100_000_000_000,
    );
    // Processed once the cancel period (plus Loki's minute) is over.
    let deadline = Instant::now() + Duration::from_secs(150);
    while list_deletes(&l, "t1")
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["status"] != "processed")
    {
        assert!(Instant::now() < deadline, "not processed:\n{}", l.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = now_ns();
    let want_api: Vec<String> = sorted(
        a.iter()
            .enumerate()
            .filter(|(i, _)| !(30..60).contains(i))
            .map(|(_, (_, s))| s.clone())
            .collect(),
    );
    // "processed" is written just before the index swap of the same run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while query_lines(&l, "t1", r#"{app="api"}"#, base, end) != want_api {
        assert!(
            Instant::now() < deadline,
            "deleted lines still returned:\n{}",
            l.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(query_lines(&l, "t1", r#"{app="web"}"#, base, end).is_empty());
    // The old objects leave the bucket after the delay; metrics count them.
    let counter = |body: &str, name: &str| -> f64 {
        body.lines()
            .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = client()
            .get(l.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if counter(&m, "lokal_compactor_chunks_deleted_total") >= 2.0
            && counter(&m, "lokal_compactor_deleted_bytes_total") > 0.0
        {
            assert!(
                counter(&m, "lokal_compactor_chunks_rewritten_total") >= 1.0,
                "{m}"
            );
            assert!(
                counter(&m, "loki_compactor_deleted_lines_total") >= 60.0,
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "metrics:\n{m}\n{}", l.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
    // Exactly one chunk left: the rewritten api chunk; a fresh reader agrees.
    assert_eq!(keys(&bucket, "t1/chunks").len(), 1);
    let got = read_bucket(&bucket, "t1");
    assert_eq!(
        got,
        vec![(r#"{app="api", service_name="api"}"#.to_string(), want_api)]
    );
}
