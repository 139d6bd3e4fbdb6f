//! LogQL benchmark: parser speed, pipeline throughput, one metric query.
//!
//! - parse time of typical queries (what Grafana, Drilldown and users send);
//! - pipeline throughput in MB/s of raw line bytes for `|= "x"`,
//!   `| json | level="error"` and `| logfmt | duration > 10ms`, run
//!   in-process over lines of the reference workload (benches/common), next
//!   to a bare `memchr::memmem` scan of the same bytes as the ceiling;
//! - `sum by (level) (count_over_time({…} | json [5m]))` over
//!   `LOKAL_BENCH_LINES` lines (default 1 million) loaded into a real lokal
//!   and flushed to chunks, through the HTTP API.
//!
//! Run: `cargo bench --bench logql`.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::*;
use lokal::logql::eval::log_pipeline;
use lokal::logql::syntax::{parse, parse_log_selector};
use lokal::model::{Labels, Timestamp};

const QUERIES: [&str; 6] = [
    r#"{app="api"} |= "error""#,
    r#"{env=~".+", app!="web"} |= "GET" != "healthz" | json | level="error" | line_format "{{.msg}}""#,
    r#"sum by (level, detected_level) (count_over_time({service_name="api"} | drop __error__ [1m]))"#,
    r#"topk(5, sum by (host) (rate({env="prod"} | logfmt | duration > 10ms [5m])))"#,
    r#"quantile_over_time(0.99, {app="api"} | json | unwrap duration(responseTime) | __error__="" [5m]) by (app)"#,
    r#"sum(rate({app="api"} |~ "5\\d\\d" [1m])) / sum(rate({app="api"}[1m])) > bool 0.01"#,
];

fn main() {
    if !started_by_cargo_bench() {
        return;
    }
    parse_times();
    pipelines();
    metric_query();
}

fn parse_times() {
    println!("parse time (median of 9 runs of 10,000 parses each):");
    for q in QUERIES {
        let t = median(9, || {
            for _ in 0..10_000 {
                black_box(parse(black_box(q)).unwrap());
            }
        });
        println!("  {:>7.2} µs  {q}", t.as_secs_f64() * 1e6 / 10_000.0);
    }
}

fn pipelines() {
    let n = 1_000_000u64;
    let mut rng = Rng::new(7);
    let now = now_ms();
    let lines: Vec<String> = (0..n).map(|i| line(&mut rng, i, now)).collect();
    let raw: usize = lines.iter().map(String::len).sum();
    println!(
        "pipeline throughput over {n} workload lines ({:.0} MB raw), median of 5 runs:",
        raw as f64 / 1e6
    );

    let finder = memchr::memmem::Finder::new("x");
    let t = median(5, || {
        let hits = lines
            .iter()
            .filter(|l| finder.find(l.as_bytes()).is_some())
            .count();
        black_box(hits);
    });
    report("memchr::memmem \"x\" (ceiling)", raw, t, None);

    let labels = Labels::from_pairs([("app", "api"), ("env", "prod")]).unwrap();
    for q in [
        r#"{app="api"} |= "x""#,
        r#"{app="api"} | json | level="error""#,
        r#"{app="api"} | logfmt | duration > 10ms"#,
    ] {
        let expr = parse_log_selector(q, true).unwrap();
        let pipeline = log_pipeline(&expr).unwrap();
        let mut kept = 0usize;
        let t = median(5, || {
            let mut sp = pipeline.for_stream(&labels);
            kept = 0;
            for l in &lines {
                if sp
                    .process(Timestamp::from_nanos(0), l.as_bytes(), &[])
                    .is_some()
                {
                    kept += 1;
                }
            }
        });
        report(q, raw, t, Some(kept));
    }
}

fn report(what: &str, raw: usize, t: Duration, kept: Option<usize>) {
    let kept = kept.map_or(String::new(), |k| format!(", {k} lines kept"));
    println!(
        "  {:>8.0} MB/s  {:>8.1?}  {what}{kept}",
        raw as f64 / 1e6 / t.as_secs_f64(),
        t
    );
}

fn metric_query() {
    let total = lines_from_env(1_000_000);
    let now = now_ms();
    let all = bodies(11, 0, total, total, now, 1 << 20);
    let raw: usize = all.iter().map(|(_, r)| r).sum();
    let server = Server::start("");
    push_all(&server.base, all, 4);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let flushed = client
        .post(format!("{}/flush", server.base))
        .send()
        .unwrap();
    assert_eq!(flushed.status().as_u16(), 204);

    // The workload mixes JSON, logfmt and nginx lines in every stream; as in
    // Loki, a metric query fails on parser errors unless it filters them.
    let q = r#"sum by (level) (count_over_time({env=~".+"} | json | __error__="" [5m]))"#;
    let params = [
        ("query", q.to_string()),
        ("start", ((now - 3_700_000) * 1_000_000).to_string()),
        ("end", ((now + 60_000) * 1_000_000).to_string()),
        ("step", "60".to_string()),
    ];
    let mut counted = 0f64;
    let t = median(5, || {
        let started = Instant::now();
        let r = client
            .get(format!("{}/loki/api/v1/query_range", server.base))
            .query(&params)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        counted = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().iter())
            .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
            .sum();
        black_box(started);
    });
    println!(
        "{q} over {total} lines ({:.0} MB raw), step 60s over 1h: {t:.2?} ({:.0} MB/s; {counted} samples summed over steps)",
        raw as f64 / 1e6,
        raw as f64 / 1e6 / t.as_secs_f64()
    );
}
