//! Query benchmark on the reference workload.
//!
//! Loads `LOKAL_BENCH_LINES` lines (default 10 million; see benches/ingest.rs
//! for the workload) into a real lokal, flushes them to chunks, then measures
//! through the HTTP API (median of several runs):
//! - a rare substring over everything: `{env=~".+"} |= "needle"`, and the
//!   raw bytes it scans per second;
//! - the last 1000 lines of one stream;
//! - a log-volume style metric query, `sum by (app) (count_over_time({env="prod"}[5m]))`.
//!
//! Run: `cargo bench --bench query` (`LOKAL_BENCH_LINES=1000000` for a quick run).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

fn get(
    client: &reqwest::blocking::Client,
    base: &str,
    params: &[(&str, String)],
) -> serde_json::Value {
    let r = client
        .get(format!("{base}/loki/api/v1/query_range"))
        .query(params)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    r.json().unwrap()
}

fn entries(v: &serde_json::Value) -> usize {
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum()
}

fn main() {
    if !started_by_cargo_bench() {
        return;
    }
    let total = lines_from_env(10_000_000);
    let now = now_ms();
    let half = total / 2;
    let h = std::thread::spawn(move || bodies(42, 0, half, total, now, 1 << 20));
    let mut all = bodies(42, half, total, total, now, 1 << 20);
    all.extend(h.join().unwrap());
    let raw: usize = all.iter().map(|(_, r)| r).sum();
    let server = Server::start("");
    let wall = push_all(&server.base, all, 4);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    assert_eq!(
        client
            .post(format!("{}/flush", server.base))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    println!(
        "loaded {total} lines ({:.2} GB raw) in {wall:.1?}, flushed to chunks",
        raw as f64 / 1e9
    );

    let (start, end) = ((now - 3_700_000) * 1_000_000, (now + 60_000) * 1_000_000);
    let range = [("start", start.to_string()), ("end", end.to_string())];
    let q = |query: &str, limit: &str| -> Vec<(&'static str, String)> {
        let mut v = vec![("query", query.to_string()), ("limit", limit.to_string())];
        v.extend(range.iter().cloned());
        v
    };

    let needle = q(r#"{env=~".+"} |= "needle""#, "100");
    let found = entries(&get(&client, &server.base, &needle));
    let t = median(3, || {
        get(&client, &server.base, &needle);
    });
    println!(
        "{{env=~\".+\"}} |= \"needle\": {found} lines found in {t:.2?} ({:.2} GB/s of raw log data)",
        raw as f64 / 1e9 / t.as_secs_f64()
    );

    let last = q(r#"{instance="i-042"}"#, "1000");
    assert_eq!(entries(&get(&client, &server.base, &last)), 1000);
    let t = median(21, || {
        get(&client, &server.base, &last);
    });
    println!("last 1000 lines of one stream: {t:.2?}");

    let mut metric = q(r#"sum by (app) (count_over_time({env="prod"}[5m]))"#, "100");
    metric.push(("step", "60".to_string()));
    let t = median(3, || {
        get(&client, &server.base, &metric);
    });
    println!("sum by (app) (count_over_time({{env=\"prod\"}}[5m])), step 60s over 1h: {t:.2?}");
    println!(
        "server peak RSS: {:.0} MiB",
        server.peak_rss() as f64 / (1 << 20) as f64
    );
}
