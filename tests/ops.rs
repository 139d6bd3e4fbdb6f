//! Operations endpoints against the real server: `/metrics` (parsed and
//! checked against what was pushed, queried and flushed), `/config` and the
//! tenant limits, and the ruler stubs.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::{Lokal, client, post_push};
use lokal::model::Timestamp;
use serde_json::{Value, json};

const TENANT: &str = "ops";

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A minimal parser of the OpenMetrics / Prometheus text format: enough for
/// the names, label sets and values lokal writes (label values without
/// escaped quotes).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (n, labels)
            }
            None => (series, BTreeMap::new()),
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap(),
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// The sum of the samples named `name` whose labels include `want`; `None`
/// when there is none.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    (!hits.is_empty()).then(|| hits.iter().sum())
}

/// What Prometheus sends when it scrapes (it prefers OpenMetrics).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

fn scrape(l: &Lokal) -> Vec<Sample> {
    let r = client()
        .get(l.url("/metrics"))
        .header("Accept", PROMETHEUS_ACCEPT)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text().unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    parse(&text)
}

/// The `# TYPE` lines of an exposition: name → type.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (n, t) = l.split_once(' ').unwrap();
            (n.to_string(), t.to_string())
        })
        .collect()
}

#[test]
fn metrics_format_is_negotiated_on_accept() {
    let l = Lokal::start("");
    let now = (Timestamp::now().nanos() - 1_000_000_000).to_string();
    assert_eq!(
        push(
            &l,
            json!([{"stream": {"app": "a"}, "values": [[now, "x"]]}])
        ),
        204
    );
    // No Accept (curl, Loki's default): the Prometheus text format 0.0.4.
    for accept in [None, Some("text/plain"), Some("*/*")] {
        let mut req = client().get(l.url("/metrics"));
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        let text = r.text().unwrap();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        let t = types(&text);
        assert_eq!(t["loki_distributor_lines_received_total"], "counter");
        assert!(!t.contains_key("loki_distributor_lines_received"));
        assert_eq!(t["loki_request_duration_seconds"], "histogram");
        for (name, kind) in &t {
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        // Every sample is named by its family's TYPE line.
        for sample in parse(&text) {
            let family = t.iter().any(|(name, kind)| {
                sample.name == *name
                    || (kind == "histogram"
                        && sample
                            .name
                            .strip_prefix(name.as_str())
                            .is_some_and(|r| ["_bucket", "_sum", "_count"].contains(&r)))
            });
            assert!(family, "{} has no TYPE line", sample.name);
        }
        let lines = value(&parse(&text), "loki_distributor_lines_received_total", &[]);
        assert_eq!(lines, Some(1.0));
    }
    // OpenMetrics when asked for it: counters' TYPE without _total, # EOF.
    let r = client()
        .get(l.url("/metrics"))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(types(&text)["loki_distributor_lines_received"], "counter");
}

fn push(l: &Lokal, streams: Value) -> u16 {
    post_push(l, TENANT, &json!({ "streams": streams }))
        .status()
        .as_u16()
}

/// Polls the metrics until `ok` holds for them (at most 30 s).
fn scrape_until(l: &Lokal, what: &str, ok: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(l);
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_follow_pushes_queries_flushes_and_the_compactor() {
    let l = Lokal::start("compactor:\n  compaction_interval: 1s\n");
    let now = Timestamp::now().nanos();
    let streams: Vec<(Value, usize)> = vec![
        (json!({"app": "shop", "env": "prod"}), 5),
        (json!({"app": "shop", "env": "dev"}), 7),
        (json!({"app": "auth", "env": "prod"}), 3),
    ];
    let mut lines = 0usize;
    let mut bytes = 0usize;
    let mut body = Vec::new();
    for (si, (labels, n)) in streams.iter().enumerate() {
        let values: Vec<Value> = (0..*n)
            .map(|i| {
                let line = format!("level=info stream={si} msg=\"line {i} of {n}\"");
                lines += 1;
                bytes += line.len();
                json!([(now - 1_000_000_000 + i as i64).to_string(), line])
            })
            .collect();
        body.push(json!({"stream": labels, "values": values}));
    }
    assert_eq!(push(&l, Value::Array(body)), 204);

    let r = client()
        .get(l.url("/loki/api/v1/query_range"))
        .header("X-Scope-OrgID", TENANT)
        .query(&[("query", r#"{app="shop"}"#), ("limit", "100")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let s = scrape(&l);
    let t = [("tenant", TENANT)];
    assert_eq!(
        value(&s, "loki_distributor_lines_received_total", &t),
        Some(lines as f64)
    );
    assert_eq!(
        value(&s, "loki_distributor_bytes_received_total", &t),
        Some(bytes as f64)
    );
    assert_eq!(
        value(&s, "loki_ingester_memory_streams", &t),
        Some(streams.len() as f64)
    );
    assert_eq!(
        value(&s, "loki_ingester_streams_created_total", &[]),
        Some(streams.len() as f64)
    );
    assert_eq!(value(&s, "loki_discarded_samples_total", &[]), None);
    assert!(value(&s, "loki_ingester_wal_records_logged_total", &[]).unwrap() >= 3.0);
    let push_ok = [
        ("method", "POST"),
        ("route", "loki_api_v1_push"),
        ("status_code", "204"),
        ("ws", "false"),
    ];
    assert_eq!(
        value(&s, "loki_request_duration_seconds_count", &push_ok),
        Some(1.0)
    );
    let mut inf = push_ok.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        value(&s, "loki_request_duration_seconds_bucket", &inf),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "loki_request_duration_seconds_count",
            &[
                ("method", "GET"),
                ("route", "loki_api_v1_query_range"),
                ("status_code", "200")
            ]
        ),
        Some(1.0)
    );

    // A line from an hour in the future: 400, counted as received and
    // discarded.
    let future = (now + 3_600_000_000_000).to_string();
    let bad = json!([{"stream": {"app": "shop"}, "values": [[future, "orphan line"]]}]);
    assert_eq!(push(&l, bad), 400);
    let s = scrape(&l);
    assert_eq!(
        value(
            &s,
            "loki_request_duration_seconds_count",
            &[
                ("route", "loki_api_v1_push"),
                ("status_code", "400"),
                ("method", "POST")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "loki_discarded_samples_total",
            &[("reason", "too_far_in_future"), ("tenant", TENANT)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "loki_discarded_bytes_total",
            &[("reason", "too_far_in_future"), ("tenant", TENANT)]
        ),
        Some("orphan line".len() as f64)
    );
    assert_eq!(
        value(&s, "loki_distributor_lines_received_total", &t),
        Some(lines as f64 + 1.0)
    );

    // Flushing stores every stream's chunk.
    let r = client().post(l.url("/flush")).send().unwrap();
    assert_eq!(r.status(), 204);
    let s = scrape(&l);
    let flushed = value(&s, "loki_ingester_chunks_flushed_total", &[]).unwrap();
    assert!(flushed >= streams.len() as f64, "{flushed}");
    assert_eq!(
        value(&s, "loki_ingester_chunk_entries_count", &[]),
        Some(flushed)
    );
    assert_eq!(
        value(&s, "loki_ingester_chunk_entries_sum", &[]),
        Some(lines as f64)
    );
    assert!(value(&s, "loki_ingester_chunk_size_bytes_sum", &[]).unwrap() > 0.0);
    assert!(value(&s, "lokal_wal_fsyncs_total", &[]).unwrap() >= 1.0);
    assert!(value(&s, "lokal_chunk_cache_hits_total", &[]).is_some());
    assert!(value(&s, "lokal_tail_subscribers", &[]).is_some());

    // The compactor runs every second here.
    let s = scrape_until(&l, "a compactor run", |s| {
        value(
            s,
            "loki_compactor_apply_retention_operation_total",
            &[("status", "success")],
        )
        .is_some_and(|v| v >= 1.0)
    });
    assert!(
        value(
            &s,
            "loki_compactor_apply_retention_last_successful_run_timestamp_seconds",
            &[]
        )
        .unwrap()
            > 1.6e9
    );
    assert_eq!(
        value(&s, "loki_compactor_deleted_lines_total", &[]),
        Some(0.0)
    );

    // The scrape itself is instrumented, and unknown paths are `notfound`.
    let r = client().get(l.url("/no/such/path")).send().unwrap();
    assert_eq!(r.status(), 404);
    let s = scrape(&l);
    assert!(
        value(
            &s,
            "loki_request_duration_seconds_count",
            &[("route", "metrics"), ("status_code", "200")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(
            &s,
            "loki_request_duration_seconds_count",
            &[("route", "notfound"), ("status_code", "404")]
        ),
        Some(1.0)
    );
}

#[test]
fn metrics_are_gzipped_when_asked() {
    let l = Lokal::start("");
    let raw = reqwest::blocking::Client::builder()
        .no_gzip()
        .build()
        .unwrap();
    let r = raw
        .get(l.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(r.bytes().unwrap().as_ref())
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("# TYPE loki_distributor_lines_received_total counter"));
    assert!(!text.contains("# EOF"));
    // Without Accept-Encoding the text comes as is.
    let r = raw.get(l.url("/metrics")).send().unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert!(
        r.text()
            .unwrap()
            .contains("# HELP loki_ingester_memory_streams")
    );
}

#[test]
fn an_abandoned_request_is_recorded_as_499() {
    let l = Lokal::start(
        "  ingestion_rate_mb: 1000\n  ingestion_burst_size_mb: 1000\n  per_stream_rate_limit: 1GB\n  per_stream_rate_limit_burst: 1GB\n",
    );
    // Enough lines that a query parsing every one of them with a template
    // takes a while.
    let now = Timestamp::now().nanos();
    let pad = "x".repeat(200);
    for batch in 0..10 {
        let values: Vec<Value> = (0..20_000)
            .map(|i| {
                let n = batch * 20_000 + i;
                json!([
                    (now - 3_600_000_000_000 + n as i64 * 1000).to_string(),
                    format!(r#"{{"n":{n},"level":"info","msg":"{pad}"}}"#)
                ])
            })
            .collect();
        assert_eq!(
            push(&l, json!([{"stream": {"app": "heavy"}, "values": values}])),
            204
        );
    }
    let query =
        r#"{app="heavy"} | json | line_format "{{.msg}} {{.n}} {{.level}}" |= "never there""#;
    let start = (now - 2 * 3_600_000_000_000).to_string();
    let end = (now + 1_000_000_000).to_string();
    let params = [
        ("query", query),
        ("start", start.as_str()),
        ("end", end.as_str()),
    ];
    // How long the query takes when awaited.
    let t = Instant::now();
    let r = client()
        .get(l.url("/loki/api/v1/query_range"))
        .header("X-Scope-OrgID", TENANT)
        .query(&params)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let full = t.elapsed();
    eprintln!("the heavy query took {full:?}");
    assert!(
        full >= Duration::from_millis(100),
        "the query is too fast ({full:?}) to abandon it reliably"
    );
    // The same query, abandoned by its client long before it can answer.
    let impatient = reqwest::blocking::Client::builder()
        .timeout(full / 10)
        .build()
        .unwrap();
    let r = impatient
        .get(l.url("/loki/api/v1/query_range"))
        .header("X-Scope-OrgID", TENANT)
        .query(&params)
        .send();
    assert!(r.is_err(), "the query answered within {:?}", full / 10);
    scrape_until(&l, "a 499 sample", |s| {
        value(
            s,
            "loki_request_duration_seconds_count",
            &[
                ("route", "loki_api_v1_query_range"),
                ("status_code", "499"),
                ("method", "GET"),
            ],
        ) == Some(1.0)
    });
}

#[test]
fn config_endpoints_show_the_configuration_and_tenant_limits() {
    let rt = tempfile::tempdir().unwrap();
    let rt_file = rt.path().join("runtime.yaml");
    std::fs::write(
        &rt_file,
        format!("overrides:\n  {TENANT}:\n    max_query_series: 42\n"),
    )
    .unwrap();
    let l = Lokal::start(&format!("runtime_config:\n  file: {}\n", rt_file.display()));
    let get = |path: &str| {
        let r = client().get(l.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{path}"
        );
        r.text().unwrap()
    };
    let current = get("/config");
    for key in [
        "auth_enabled: true",
        "http_listen_address: 127.0.0.1",
        "path_prefix: ",
        "reject_old_samples: false",
        "chunk_encoding: zstd",
        "retention_enabled: false",
        "max_entries_limit_per_query: 5000",
    ] {
        assert!(current.contains(key), "{key} missing in\n{current}");
    }
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&current).unwrap();
    assert_eq!(parsed["server"]["http_listen_port"], 0);

    let defaults = get("/config?mode=defaults");
    assert!(defaults.contains("reject_old_samples: true"), "{defaults}");
    assert!(defaults.contains("http_listen_port: 3100"), "{defaults}");

    let diffs = get("/config?mode=diffs");
    let d: serde_yaml_ng::Value = serde_yaml_ng::from_str(&diffs).unwrap();
    assert_eq!(d["limits_config"]["reject_old_samples"], false, "{diffs}");
    assert_eq!(d["server"]["http_listen_port"], 0, "{diffs}");
    assert!(!diffs.contains("max_entries_limit_per_query"), "{diffs}");
    assert!(!diffs.contains("chunk_encoding"), "{diffs}");

    // The tenant's limits: its runtime override on top of the defaults.
    let r = client()
        .get(l.url("/config/tenant/v1/limits"))
        .header("X-Scope-OrgID", TENANT)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let limits = r.text().unwrap();
    assert!(limits.contains("max_query_series: 42"), "{limits}");
    assert!(limits.contains("reject_old_samples: false"), "{limits}");
    let r = client()
        .get(l.url("/config/tenant/v1/limits"))
        .header("X-Scope-OrgID", "someone-else")
        .send()
        .unwrap();
    assert!(r.text().unwrap().contains("max_query_series: 500"));
    // With auth enabled the tenant is required.
    let r = client()
        .get(l.url("/config/tenant/v1/limits"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn ruler_stubs_answer_empty_and_the_ruler_api_is_not_found() {
    let l = Lokal::start("");
    let get = |path: &str| {
        let r = client()
            .get(l.url(path))
            .header("X-Scope-OrgID", TENANT)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        (status, ct, r.text().unwrap())
    };
    // buildinfo: Loki's six keys, strings.
    let (status, ct, body) = get("/loki/api/v1/status/buildinfo");
    assert_eq!(status, 200);
    assert!(ct.unwrap().starts_with("application/json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "branch",
            "buildDate",
            "buildUser",
            "goVersion",
            "revision",
            "version"
        ],
        "{body}"
    );
    assert!(
        v.as_object().unwrap().values().all(Value::is_string),
        "{body}"
    );
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let (status, ct, body) = get("/prometheus/api/v1/rules");
    assert_eq!(status, 200);
    assert!(ct.unwrap().starts_with("application/json"));
    assert_eq!(body, r#"{"status":"success","data":{"groups":[]}}"#);
    let (status, _, body) = get("/prometheus/api/v1/alerts");
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"status":"success","data":{"alerts":[]}}"#);
    for path in [
        "/loki/api/v1/rules",
        "/loki/api/v1/rules/ns",
        "/api/prom/rules",
        "/api/prom/rules/ns/group",
    ] {
        let (status, ct, body) = get(path);
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, "404 page not found\n", "{path}");
        assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"), "{path}");
    }
}
