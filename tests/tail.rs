//! Live tail through the real server: a WebSocket client listens on
//! `/loki/api/v1/tail` while the test pushes over HTTP.
//!
//! Checks: pushed lines arrive exactly once, in order, within a second;
//! history replay honours `limit` and `start`; the query's pipeline filters
//! and rewrites live lines; other tenants' and other streams' lines never
//! arrive; `delay_for` sorts late entries in; the per-tenant tail limit
//! refuses the 11th tail as Loki does; a client that stops reading never
//! slows pushes down and learns about the dropped entries; bad parameters
//! are a 400 before the upgrade.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Lokal;
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn tail_request(
    l: &Lokal,
    tenant: &str,
    params: &[(&str, &str)],
) -> tungstenite::handshake::client::Request {
    let qs = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let url = format!("{}/loki/api/v1/tail?{qs}", l.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("X-Scope-OrgID", tenant.parse().unwrap());
    req
}

async fn connect(l: &Lokal, tenant: &str, params: &[(&str, &str)]) -> Ws {
    let (ws, resp) = tokio_tungstenite::connect_async(tail_request(l, tenant, params))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// One tailed line: (stream labels as JSON, ns timestamp, line).
type Line = (Value, i64, String);

#[derive(Debug, Default)]
struct Received {
    lines: Vec<Line>,
    dropped: Vec<Value>,
    close: Option<(u16, String)>,
    frames: usize,
}

/// Reads frames until `want` lines arrived, the socket closed, or `wait`
/// passed.
async fn read(ws: &mut Ws, want: usize, wait: Duration) -> Received {
    let mut r = Received::default();
    let deadline = tokio::time::Instant::now() + wait;
    while r.lines.len() < want {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => break,
            Ok(None) | Ok(Some(Err(_))) => {
                r.close.get_or_insert((1006, String::new()));
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Text(t) => {
                r.frames += 1;
                let v: Value = serde_json::from_str(&t).unwrap();
                for s in v["streams"].as_array().unwrap() {
                    let values = s["values"].as_array().unwrap();
                    assert_eq!(values.len(), 1, "one entry per stream object, as Loki");
                    for e in values {
                        r.lines.push((
                            s["stream"].clone(),
                            e[0].as_str().unwrap().parse().unwrap(),
                            e[1].as_str().unwrap().to_string(),
                        ));
                    }
                }
                if let Some(d) = v.get("dropped_entries") {
                    r.dropped.extend(d.as_array().unwrap().iter().cloned());
                }
                assert!(v["streams"].as_array().unwrap().len() <= 100);
            }
            Message::Close(f) => {
                r.close = Some(
                    f.map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new())),
                );
                break;
            }
            _ => {}
        }
    }
    r
}

async fn push(
    c: &reqwest::Client,
    l: &Lokal,
    tenant: &str,
    stream: &str,
    entries: &[(i64, String)],
) -> u16 {
    let values: Vec<Value> = entries
        .iter()
        .map(|(ts, line)| serde_json::json!([ts.to_string(), line]))
        .collect();
    let stream: Value = serde_json::from_str(stream).unwrap();
    let body = serde_json::json!({"streams": [{"stream": stream, "values": values}]});
    c.post(l.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until the server has registered the tail (the subscription is
/// made right after the upgrade): a line pushed then must show up.
async fn sync(c: &reqwest::Client, l: &Lokal, ws: &mut Ws, tenant: &str, stream: &str) {
    sync_with(c, l, ws, tenant, stream, "sync").await
}

async fn sync_with(
    c: &reqwest::Client,
    l: &Lokal,
    ws: &mut Ws,
    tenant: &str,
    stream: &str,
    line: &str,
) {
    let ts = now_ns();
    assert_eq!(push(c, l, tenant, stream, &[(ts, line.into())]).await, 204);
    let r = read(ws, 1, Duration::from_secs(10)).await;
    assert_eq!(r.lines.len(), 1, "sync line: {r:?}");
    assert_eq!(r.lines[0].2, line);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lines_arrive_once_in_order_within_a_second_and_only_for_the_tenant() {
    let l = Lokal::start("");
    let c = reqwest::Client::new();
    let mut ws = connect(&l, "t1", &[("query", r#"{app="live"}"#)]).await;
    sync(&c, &l, &mut ws, "t1", r#"{"app":"live"}"#).await;

    let mut expected = Vec::new();
    for batch in 0..5 {
        let entries: Vec<(i64, String)> = (0..20)
            .map(|i| (now_ns(), format!("batch {batch} line {i}")))
            .collect();
        // Lines nobody may see: another tenant, another stream.
        assert_eq!(push(&c, &l, "t2", r#"{"app":"live"}"#, &entries).await, 204);
        assert_eq!(
            push(&c, &l, "t1", r#"{"app":"other"}"#, &entries).await,
            204
        );
        let pushed = Instant::now();
        assert_eq!(
            push(&c, &l, "t1", r#"{"app":"live","env":"p"}"#, &entries).await,
            204
        );
        let r = read(&mut ws, entries.len(), Duration::from_secs(1)).await;
        assert!(
            pushed.elapsed() < Duration::from_millis(1500),
            "batch {batch} took {:?}",
            pushed.elapsed()
        );
        assert_eq!(r.lines.len(), entries.len(), "batch {batch}: {r:?}");
        for ((labels, ts, line), (ets, eline)) in r.lines.iter().zip(&entries) {
            // service_name and detected_level are ingest's (Loki's defaults).
            assert_eq!(
                labels,
                &serde_json::json!({"app": "live", "env": "p", "service_name": "live", "detected_level": "unknown"})
            );
            assert_eq!((ts, line), (ets, eline));
        }
        expected.extend(entries);
    }
    // Nothing more: no duplicates, no other tenant's or stream's lines.
    let extra = read(&mut ws, 1, Duration::from_millis(700)).await;
    assert!(
        extra.lines.is_empty(),
        "unexpected lines: {:?}",
        extra.lines
    );
    assert_eq!(expected.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_honours_limit_and_start_then_goes_live() {
    let l = Lokal::start("");
    let c = reqwest::Client::new();
    let now = now_ns();
    let hour = 3_600_000_000_000i64;
    // Two hours ago: outside the default start (now - 1h).
    let old: Vec<(i64, String)> = (0..5)
        .map(|i| (now - 2 * hour + i, format!("old {i}")))
        .collect();
    let recent: Vec<(i64, String)> = (0..30)
        .map(|i| {
            (
                now - 60_000_000_000 + i * 1_000_000_000,
                format!("recent {i}"),
            )
        })
        .collect();
    assert_eq!(push(&c, &l, "t", r#"{"app":"r"}"#, &old).await, 204);
    assert_eq!(push(&c, &l, "t", r#"{"app":"r"}"#, &recent).await, 204);

    // Defaults: start = now-1h, limit 100 → every recent line, oldest first.
    let mut ws = connect(&l, "t", &[("query", r#"{app="r"}"#)]).await;
    let r = read(&mut ws, 30, Duration::from_secs(5)).await;
    let lines: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    let want: Vec<&str> = recent.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(lines, want);
    let more = read(&mut ws, 1, Duration::from_millis(500)).await;
    assert!(more.lines.is_empty(), "replayed once: {:?}", more.lines);
    // Then live.
    let live = vec![(now_ns(), "live one".to_string())];
    assert_eq!(push(&c, &l, "t", r#"{"app":"r"}"#, &live).await, 204);
    let r = read(&mut ws, 1, Duration::from_secs(1)).await;
    assert_eq!(
        r.lines.iter().map(|x| x.2.as_str()).collect::<Vec<_>>(),
        ["live one"]
    );
    drop(ws);

    // limit=5: the newest five, oldest first.
    let mut ws = connect(&l, "t", &[("query", r#"{app="r"}"#), ("limit", "5")]).await;
    let r = read(&mut ws, 5, Duration::from_secs(5)).await;
    let lines: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(
        lines,
        [
            "recent 26",
            "recent 27",
            "recent 28",
            "recent 29",
            "live one"
        ]
    );
    let more = read(&mut ws, 1, Duration::from_millis(500)).await;
    assert!(more.lines.is_empty(), "limit honoured: {:?}", more.lines);
    drop(ws);

    // An explicit start three hours back includes the old lines.
    let start = (now - 3 * hour).to_string();
    let mut ws = connect(
        &l,
        "t",
        &[("query", r#"{app="r"}"#), ("start", &start), ("limit", "3")],
    )
    .await;
    let r = read(&mut ws, 3, Duration::from_secs(5)).await;
    let lines: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(
        lines,
        ["recent 28", "recent 29", "live one"],
        "limit keeps the newest"
    );
    drop(ws);
    let start = (now - 45_000_000_000).to_string();
    let mut ws = connect(&l, "t", &[("query", r#"{app="r"}"#), ("start", &start)]).await;
    let r = read(&mut ws, 100, Duration::from_secs(2)).await;
    assert_eq!(r.lines.len(), 16, "lines from start on: {:?}", r.lines);
    assert_eq!(r.lines[0].2, "recent 15");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_pipeline_filters_and_rewrites_live_lines() {
    let l = Lokal::start("");
    let c = reqwest::Client::new();
    let mut ws = connect(
        &l,
        "t",
        &[(
            "query",
            r#"{app="f"} |= "level" | logfmt | level="error" | line_format "E: {{.msg}}""#,
        )],
    )
    .await;
    let mut plain = connect(&l, "t", &[("query", r#"{app="f"} |~ "msg=(a|c)""#)]).await;
    let t = now_ns();
    sync_with(
        &c,
        &l,
        &mut plain,
        "t",
        r#"{"app":"f","sync":"1"}"#,
        "sync msg=a",
    )
    .await;
    let entries = vec![
        (t + 1, "level=info msg=a".to_string()),
        (t + 2, "level=error msg=b".to_string()),
        (t + 3, "no level here msg=c".to_string()),
        (t + 4, "level=error msg=d".to_string()),
    ];
    assert_eq!(push(&c, &l, "t", r#"{"app":"f"}"#, &entries).await, 204);
    let r = read(&mut ws, 2, Duration::from_secs(2)).await;
    let lines: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(lines, ["E: b", "E: d"]);
    assert_eq!(
        r.lines[0].0,
        serde_json::json!({"app": "f", "level": "error", "msg": "b", "service_name": "f", "detected_level": "error"}),
        "parsed labels are part of the stream, as in Loki's tail"
    );
    let r = read(&mut plain, 2, Duration::from_secs(2)).await;
    let lines: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(lines, ["level=info msg=a", "no level here msg=c"]);
    let more = read(&mut ws, 1, Duration::from_millis(300)).await;
    assert!(more.lines.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_for_sorts_late_entries_in() {
    let l = Lokal::start("");
    let c = reqwest::Client::new();
    let mut ws = connect(&l, "t", &[("query", r#"{app="d"}"#), ("delay_for", "2")]).await;
    let t = now_ns();
    // B first, then A, stamped a second earlier but pushed later.
    assert_eq!(
        push(&c, &l, "t", r#"{"app":"d"}"#, &[(t, "B".into())]).await,
        204
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        push(
            &c,
            &l,
            "t",
            r#"{"app":"d"}"#,
            &[(t - 1_000_000_000, "A".into())]
        )
        .await,
        204
    );
    let started = Instant::now();
    let r = read(&mut ws, 2, Duration::from_secs(5)).await;
    let lines: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(lines, ["A", "B"], "sorted by timestamp within the delay");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_tail_of_a_tenant_is_refused_like_loki() {
    let l = Lokal::start("");
    let mut tails = Vec::new();
    for _ in 0..10 {
        tails.push(connect(&l, "t", &[("query", r#"{app="x"}"#)]).await);
    }
    // Let the ten subscribe (they do right after the upgrade).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut eleventh = connect(&l, "t", &[("query", r#"{app="x"}"#)]).await;
    let r = read(&mut eleventh, 1, Duration::from_secs(5)).await;
    assert_eq!(
        r.close,
        Some((
            1011,
            "max concurrent tail requests limit exceeded, count > limit (11 > 10)".to_string()
        ))
    );
    // Another tenant is not limited by t's tails.
    let mut other = connect(&l, "u", &[("query", r#"{app="x"}"#)]).await;
    let r = read(&mut other, 1, Duration::from_millis(1500)).await;
    assert_eq!(r.close, None);
    // A tail that ends frees its slot.
    let mut first = tails.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = connect(&l, "t", &[("query", r#"{app="x"}"#)]).await;
    let r = read(&mut again, 1, Duration::from_millis(1500)).await;
    assert_eq!(r.close, None, "a freed slot is usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_never_slows_pushes_and_learns_of_drops() {
    let l = Lokal::start(
        "  ingestion_rate_mb: 1024\n  ingestion_burst_size_mb: 1024\n  per_stream_rate_limit: 1GB\n  per_stream_rate_limit_burst: 1GB\n",
    );
    let c = reqwest::Client::new();
    // A small receive buffer so the server's writes back up quickly.
    let addr = l.base.trim_start_matches("http://").to_string();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(addr.parse().unwrap()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        tail_request(&l, "t", &[("query", r#"{app="slow"}"#)]),
        MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap();
    sync(&c, &l, &mut ws, "t", r#"{"app":"slow"}"#).await;

    // 40 pushes of 1000 lines of ~1 KB, far more than the tail's queue
    // and the socket buffers hold; the client reads nothing meanwhile.
    let pad = "x".repeat(1000);
    let mut slowest = Duration::ZERO;
    for batch in 0..40 {
        let entries: Vec<(i64, String)> = (0..1000)
            .map(|i| (now_ns(), format!("b{batch} l{i} {pad}")))
            .collect();
        let t0 = Instant::now();
        assert_eq!(push(&c, &l, "t", r#"{"app":"slow"}"#, &entries).await, 204);
        slowest = slowest.max(t0.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(3),
        "a push took {slowest:?} while a tail client was stuck"
    );
    // Now read: the tail reports what it dropped, in a frame, whether it
    // kept the client or gave up on it (then the report is its last frame
    // before the close).
    let mut total = Received::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while total.dropped.is_empty() && total.close.is_none() && Instant::now() < deadline {
        let r = read(&mut ws, usize::MAX, Duration::from_millis(500)).await;
        total.lines.extend(r.lines);
        total.dropped.extend(r.dropped);
        total.close = total.close.or(r.close);
    }
    assert!(
        !total.dropped.is_empty(),
        "no dropped_entries reported after {} lines (close {:?})",
        total.lines.len(),
        total.close
    );
    eprintln!(
        "slow client: {} lines received, {} drops reported, close {:?}, slowest push {slowest:?}",
        total.lines.len(),
        total.dropped.len(),
        total.close
    );
    for d in &total.dropped {
        assert_eq!(
            d["labels"],
            serde_json::json!({"app": "slow", "service_name": "slow"}),
            "a dropped entry names its stream"
        );
        assert!(d["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
    }
    assert!(total.lines.len() < 40_000, "some lines were dropped");
    // The server keeps serving tails.
    let mut fresh = connect(&l, "t", &[("query", r#"{app="slow2"}"#)]).await;
    sync(&c, &l, &mut fresh, "t", r#"{"app":"slow2"}"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_as_loki_refuses_them() {
    let l = Lokal::start("");
    let refused = |params: &'static [(&'static str, &'static str)]| {
        let req = tail_request(&l, "t", params);
        async move {
            match tokio_tungstenite::connect_async(req).await {
                Err(tungstenite::Error::Http(resp)) => (
                    resp.status().as_u16(),
                    String::from_utf8_lossy(resp.body().as_deref().unwrap_or(&[])).to_string(),
                ),
                other => panic!("expected an HTTP error, got {other:?}"),
            }
        }
    };
    let (status, body) = refused(&[("query", r#"{app="#)]).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("parse error"), "{body}");
    let (status, body) = refused(&[("query", r#"{app="a"}"#), ("delay_for", "6")]).await;
    assert_eq!(
        (status, body.trim()),
        (400, "delay_for can't be greater than 5")
    );
    let (status, body) = refused(&[("query", r#"{app="a"}"#), ("limit", "0")]).await;
    assert_eq!(
        (status, body.trim()),
        (400, "limit must be a positive value")
    );
    // A metric query parses, but tails only take log selectors: Loki says so
    // after the upgrade.
    let mut ws = connect(&l, "t", &[("query", r#"count_over_time({app="a"}[1m])"#)]).await;
    let r = read(&mut ws, 1, Duration::from_secs(5)).await;
    assert_eq!(
        r.close,
        Some((1011, "only log selector is supported".to_string()))
    );
    // Without the tenant header (auth enabled): 401.
    let url = format!(
        "{}/loki/api/v1/tail?query=%7Bapp%3D%22a%22%7D",
        l.base.replacen("http", "ws", 1)
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    // A plain HTTP GET (no upgrade) is a 400 too.
    let resp = reqwest::Client::new()
        .get(l.url("/loki/api/v1/tail?query=%7Bapp%3D%22a%22%7D"))
        .header("X-Scope-OrgID", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = reqwest::Client::new()
        .post(l.url("/loki/api/v1/tail?query=%7Bapp%3D%22a%22%7D"))
        .header("X-Scope-OrgID", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "POST is routed, and not a WebSocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_while_pushes_flow_gives_every_line_once_across_replay_and_live() {
    let l = std::sync::Arc::new(Lokal::start(""));
    let c = reqwest::Client::new();
    let (l2, c2) = (l.clone(), c.clone());
    let pusher = tokio::spawn(async move {
        let mut all = Vec::new();
        for batch in 0..60 {
            let entries: Vec<(i64, String)> = (0..10)
                .map(|i| (now_ns(), format!("b{batch:02} l{i}")))
                .collect();
            assert_eq!(
                push(&c2, &l2, "t", r#"{"app":"flow"}"#, &entries).await,
                204
            );
            all.extend(entries.into_iter().map(|e| e.1));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        all
    });
    // Connect somewhere in the middle of the pushes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ws = connect(&l, "t", &[("query", r#"{app="flow"}"#), ("limit", "5000")]).await;
    let pushed = pusher.await.unwrap();
    let r = read(&mut ws, pushed.len(), Duration::from_secs(10)).await;
    let got: Vec<&str> = r.lines.iter().map(|x| x.2.as_str()).collect();
    let want: Vec<&str> = pushed.iter().map(String::as_str).collect();
    assert_eq!(got, want, "history then live: each line once, in order");
    let more = read(&mut ws, 1, Duration::from_millis(500)).await;
    assert!(more.lines.is_empty(), "duplicates: {:?}", more.lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_every_second() {
    let l = Lokal::start("");
    let mut ws = connect(&l, "t", &[("query", r#"{app="quiet"}"#)]).await;
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg.unwrap() {
            Message::Ping(_) => pings += 1,
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
    // Loki's wsPingPeriod is 1 s: two pings in 2.5 s (allow a third for
    // timing slack, never none).
    assert!((2..=3).contains(&pings), "{pings} pings in 2.5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_max_duration_closes_with_lokis_reason() {
    let l = Lokal::start("querier:\n  tail_max_duration: 2s\n");
    let t0 = Instant::now();
    let mut ws = connect(&l, "t", &[("query", r#"{app="long"}"#)]).await;
    let r = read(&mut ws, usize::MAX, Duration::from_secs(10)).await;
    let took = t0.elapsed();
    assert_eq!(
        r.close,
        Some((1011, "reached tail max duration limit".to_string()))
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
}
