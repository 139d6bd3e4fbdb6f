#![allow(clippy::unwrap_used)]
mod common;
use std::time::{Duration, Instant};
use common::*;
fn main() {
    if !started_by_cargo_bench() { return; }
    let total = lines_from_env(2_000_000);
    let now = now_ms();
    let all = bodies(42, 0, total, total, now, 1 << 20);
    let server = Server::start("");
    push_all(&server.base, all, 4);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    client.post(format!("{}/flush", server.base)).send().unwrap();
    let (start, end) = ((now - 3_700_000) * 1_000_000, (now + 60_000) * 1_000_000);
    let params = [("query", r#"{instance="i-042"}"#.to_string()), ("limit", "1000".to_string()), ("start", start.to_string()), ("end", end.to_string())];
    println!("server pid {}", server.pid());
    let secs: u64 = std::env::var("PROBE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let t0 = Instant::now();
    let mut n = 0;
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < Duration::from_secs(secs) {
        let t = Instant::now();
        let r = client.get(format!("{}/loki/api/v1/query_range", server.base)).query(&params).send().unwrap();
        let body = r.bytes().unwrap();
        if n % 200 == 0 { println!("{:?} {} bytes", t.elapsed(), body.len()); }
        last = serde_json::from_slice(&body).unwrap();
        n += 1;
    }
    println!("{n} queries, {:?} each", t0.elapsed() / n);
    println!("{}", serde_json::to_string_pretty(&last["data"]["stats"]).unwrap());
}
