//! Grafana's Loki datasource, Logs Drilldown's resource calls and logcli
//! against the real server: each client's exact request sequence
//! (reference §3.5, §3.6), and every field those clients read.
//!
//! Checks: the "Save & test" health query; the label browser and Loki's
//! empty shapes; an Explore log query with categorize-labels (triples,
//! indexed labels only, nanosecond strings, real stats); the log-volume
//! histogram; logs sample, query hints and log context; resource calls with
//! ISO timestamps; gzip; plain-text errors; empty results; the 504 of
//! `query_timeout`; logcli's instant and range queries, backward pagination
//! (`end = last + 1ns` and de-duplication), metadata and volume calls; every
//! accepted form of timestamps, `since`, `step` and `interval`; odd
//! `X-Query-Tags` on every query endpoint; a client that goes away stops
//! its query's work (the server's CPU time stops growing).
//!
//! Expectations are computed from the pushed data, never by the server's
//! own code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use common::{Lokal, client, push_json};
use lokal::model::Timestamp;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

const TENANT: &str = "grafana";
const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

/// One pushed entry.
#[derive(Clone, Debug)]
struct Pushed {
    app: &'static str,
    labels: BTreeMap<&'static str, String>,
    ts: i64,
    line: String,
    metadata: BTreeMap<&'static str, String>,
    /// The level the line carries (what `detected_level` must say).
    level: &'static str,
}

struct Data {
    base: i64,
    entries: Vec<Pushed>,
}

impl Data {
    fn of(&self, app: &str) -> std::vec::IntoIter<&Pushed> {
        self.entries
            .iter()
            .filter(|e| e.app == app)
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// `range` followed by `extra`.
fn join<'a>(range: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    range.iter().chain(extra.iter()).copied().collect()
}

const PAGER_LINES: usize = 2500;

/// The data set: JSON lines with structured metadata (`shop`, two pods),
/// logfmt lines (`api`), and 2500 lines three to a timestamp (`pager`).
/// Everything lies between `base` and `base + 12 min`, `base` being 20
/// minutes ago rounded down to a minute.
fn dataset() -> Data {
    let now = Timestamp::now().nanos();
    let base = (now - 20 * 60 * SEC) / (60 * SEC) * (60 * SEC);
    let mut entries = Vec::new();
    for (p, pod) in ["shop-1", "shop-2"].into_iter().enumerate() {
        for i in 0..40usize {
            let level = ["info", "warn", "error", "info"][i % 4];
            let status = [200, 201, 404, 500, 200][i % 5];
            let line = json!({
                "level": level,
                "status": status,
                "msg": format!("order {} placed", 1000 + i),
            })
            .to_string();
            entries.push(Pushed {
                app: "shop",
                labels: BTreeMap::from([
                    ("app", "shop".to_string()),
                    ("env", "prod".to_string()),
                    ("pod", pod.to_string()),
                ]),
                ts: base + i as i64 * 15 * SEC + p as i64 * SEC + 123,
                line,
                metadata: BTreeMap::from([("trace_id", format!("trace-{:02}", i % 9))]),
                level,
            });
        }
    }
    for i in 0..60usize {
        let level = ["info", "info", "error"][i % 3];
        let method = ["GET", "POST", "PUT", "GET"][i % 4];
        let line = format!(
            "level={level} method={method} path=/api/{} status={} took={}ms",
            i % 7,
            [200, 500, 204][i % 3],
            3 + i % 11
        );
        entries.push(Pushed {
            app: "api",
            labels: BTreeMap::from([("app", "api".to_string()), ("env", "dev".to_string())]),
            ts: base + i as i64 * 10 * SEC + 500 * MS,
            line,
            metadata: BTreeMap::new(),
            level,
        });
    }
    for i in 0..PAGER_LINES {
        entries.push(Pushed {
            app: "pager",
            labels: BTreeMap::from([("app", "pager".to_string())]),
            ts: base + 11 * 60 * SEC + (i / 3) as i64 * MS,
            line: format!("page line {i:04} {}", "x".repeat(40)),
            metadata: BTreeMap::new(),
            level: "unknown",
        });
    }
    Data { base, entries }
}

fn push(l: &Lokal, data: &Data) {
    let mut streams: BTreeMap<String, (BTreeMap<&str, String>, Vec<Value>)> = BTreeMap::new();
    for e in &data.entries {
        let key = format!("{:?}", e.labels);
        streams
            .entry(key)
            .or_insert_with(|| (e.labels.clone(), Vec::new()))
            .1
            .push(json!([e.ts.to_string(), e.line, e.metadata]));
    }
    let body = json!({
        "streams": streams.values().map(|(labels, values)| json!({
            "stream": labels,
            "values": values,
        })).collect::<Vec<_>>()
    });
    push_json(l, TENANT, &body);
}

/// An answer: status, headers, body text.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/json; charset=UTF-8",
            "{}",
            self.body
        );
        serde_json::from_str(&self.body).unwrap()
    }

    /// A Loki error: plain text with Loki's status.
    fn error(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(self.headers["x-content-type-options"], "nosniff");
        self.body.trim_end()
    }
}

fn get(l: &Lokal, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
    let mut req = client()
        .get(l.url(path))
        .query(params)
        .header("X-Scope-OrgID", TENANT);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().unwrap(),
    }
}

/// The headers Grafana's datasource puts on query and query_range.
fn grafana(source: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-Loki-Response-Encoding-Flags", "categorize-labels"),
        ("X-Query-Tags", source),
    ]
}

fn ns(t: i64) -> String {
    t.to_string()
}

fn iso(t: i64) -> String {
    Timestamp::from_nanos(t).to_rfc3339_nano()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every (ts, line) of a streams answer, in answer order, with the stream.
fn entries_of(v: &Value) -> Vec<(i64, String, Value)> {
    assert_eq!(v["data"]["resultType"], "streams", "{v}");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            out.push((
                e[0].as_str().unwrap().parse::<i64>().unwrap(),
                e[1].as_str().unwrap().to_string(),
                s["stream"].clone(),
            ));
        }
    }
    out
}

/// Entries of a streams answer merged across streams in `backward` order.
fn merged(v: &Value, backward: bool) -> Vec<(i64, String)> {
    let mut all: Vec<(i64, String)> = entries_of(v).into_iter().map(|(t, l, _)| (t, l)).collect();
    all.sort_by(|a, b| {
        if backward {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        }
    });
    all
}

/// The keys of the stats object Grafana and logcli read (reference §1h),
/// and the summary derived from the chunk counters as Loki's
/// `Result.ComputeSummary` derives it.
fn check_stats_shape(stats: &Value) {
    let counter = |k: &str| -> u64 {
        ["querier", "ingester"]
            .iter()
            .map(|who| stats[who]["store"]["chunk"][k].as_u64().unwrap())
            .sum()
    };
    let summary = &stats["summary"];
    let metadata = counter("decompressedStructuredMetadataBytes")
        + counter("headChunkStructuredMetadataBytes");
    assert_eq!(
        summary["totalStructuredMetadataBytesProcessed"], metadata,
        "{stats}"
    );
    assert_eq!(
        summary["totalLinesProcessed"],
        counter("decompressedLines") + counter("headChunkLines"),
        "{stats}"
    );
    assert_eq!(
        summary["totalBytesProcessed"],
        counter("decompressedBytes") + counter("headChunkBytes") + metadata,
        "{stats}"
    );
    assert_eq!(
        keys(&stats["summary"]),
        set(&[
            "bytesProcessedPerSecond",
            "linesProcessedPerSecond",
            "totalBytesProcessed",
            "totalLinesProcessed",
            "execTime",
            "queueTime",
            "subqueries",
            "totalEntriesReturned",
            "splits",
            "shards",
            "totalPostFilterLines",
            "totalStructuredMetadataBytesProcessed",
        ]),
        "{stats}"
    );
    let store_keys = set(&[
        "totalChunksRef",
        "totalChunksDownloaded",
        "chunksDownloadTime",
        "chunkRefsFetchTime",
        "congestionControlLatency",
        "pipelineWrapperFilteredLines",
        "queryReferencedStructuredMetadata",
        "queryUsedV2Engine",
        "chunk",
        "dataobj",
    ]);
    let chunk_keys = set(&[
        "headChunkBytes",
        "headChunkLines",
        "decompressedBytes",
        "decompressedLines",
        "compressedBytes",
        "totalDuplicates",
        "postFilterLines",
        "headChunkStructuredMetadataBytes",
        "decompressedStructuredMetadataBytes",
    ]);
    assert!(stats["querier"]["querierExecTime"].is_number(), "{stats}");
    for who in ["querier", "ingester"] {
        let store = &stats[who]["store"];
        assert_eq!(keys(store), store_keys, "{who}: {store}");
        assert_eq!(keys(&store["chunk"]), chunk_keys, "{who}: {store}");
        assert_eq!(keys(&store["dataobj"]).len(), 14, "{who}: {store}");
    }
    for k in [
        "totalReached",
        "totalChunksMatched",
        "totalBatches",
        "totalLinesSent",
    ] {
        assert!(stats["ingester"][k].is_u64(), "ingester.{k}: {stats}");
    }
    let caches = [
        "chunk",
        "index",
        "result",
        "statsResult",
        "volumeResult",
        "seriesResult",
        "labelResult",
        "instantMetricResult",
        "logResult",
        "taskResult",
    ];
    assert_eq!(keys(&stats["cache"]), set(&caches));
    for c in caches {
        assert_eq!(
            keys(&stats["cache"][c]),
            set(&[
                "entriesFound",
                "entriesRequested",
                "entriesStored",
                "bytesReceived",
                "bytesSent",
                "requests",
                "downloadTime",
                "queryLengthServed",
            ])
        );
    }
    assert_eq!(
        keys(&stats["index"]),
        set(&[
            "totalChunks",
            "postFilterChunks",
            "shardsDuration",
            "usedBloomFilters",
            "totalStreams",
            "chunkRefsLookupTime",
            "bloomFilterTime",
        ])
    );
}

#[test]
fn grafana_datasource_request_sequence() {
    let l = Lokal::start("");
    let data = dataset();
    push(&l, &data);
    let now = Timestamp::now().nanos();
    let (start, end) = (data.base - 60 * SEC, now + 60 * SEC);
    let (start_ns, end_ns) = (ns(start), ns(end));
    let range = [("start", start_ns.as_str()), ("end", end_ns.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| join(&range, extra);

    // 1. Save & test: `time` has 10 digits, so it is 4e9 *seconds*.
    let v = get(
        &l,
        "/loki/api/v1/query",
        &[("query", "vector(1)+vector(1)"), ("time", "4000000000")],
        &[],
    )
    .json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [4000000000u64, "2"]}]),
        "{v}"
    );
    check_stats_shape(&v["data"]["stats"]);
    assert_eq!(v["data"]["stats"]["summary"]["totalEntriesReturned"], 1);

    // 2. Label browser: labels, values, series with match[].
    let v = get(&l, "/loki/api/v1/labels", &range, &[]).json();
    assert_eq!(
        v,
        json!({"status": "success", "data": ["app", "env", "pod", "service_name"]})
    );
    let v = get(&l, "/loki/api/v1/label/app/values", &range, &[]).json();
    assert_eq!(
        v,
        json!({"status": "success", "data": ["api", "pager", "shop"]})
    );
    let v = get(
        &l,
        "/loki/api/v1/label/pod/values",
        &with(&[("query", "{env=\"prod\"}")]),
        &[],
    )
    .json();
    assert_eq!(strings(&v["data"]), ["shop-1", "shop-2"]);
    let v = get(
        &l,
        "/loki/api/v1/series",
        &with(&[("match[]", "{app=\"shop\"}"), ("match[]", "{app=\"api\"}")]),
        &[],
    )
    .json();
    assert_eq!(
        v["data"],
        json!([
            {"app": "api", "env": "dev", "service_name": "api"},
            {"app": "shop", "env": "prod", "pod": "shop-1", "service_name": "shop"},
            {"app": "shop", "env": "prod", "pod": "shop-2", "service_name": "shop"},
        ])
    );
    // Empty answers: labels and values omit `data`; series keeps `[]`.
    let (old_s, old_e) = (ns(data.base - 3600 * SEC), ns(data.base - 1800 * SEC));
    let before = [("start", old_s.as_str()), ("end", old_e.as_str())];
    let v = get(&l, "/loki/api/v1/labels", &before, &[]);
    assert_eq!(v.json(), json!({"status": "success"}));
    assert_eq!(v.body, r#"{"status":"success"}"#);
    let v = get(&l, "/loki/api/v1/label/nope/values", &range, &[]).json();
    assert_eq!(v, json!({"status": "success"}));
    let v = get(
        &l,
        "/loki/api/v1/series",
        &with(&[("match[]", "{app=\"nope\"}")]),
        &[],
    )
    .json();
    assert_eq!(v, json!({"status": "success", "data": []}));

    // 3. Explore: a log query as Grafana sends it.
    let a = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "{app=\"shop\"} | json"),
            ("direction", "backward"),
            ("limit", "1000"),
            ("step", "4800ms"),
        ]),
        &grafana("Source=grafana"),
    );
    assert!(
        a.body
            .contains(r#""resultType":"streams","encodingFlags":["categorize-labels"],"result":["#),
        "encodingFlags between resultType and result"
    );
    let q = a.json();
    let d = &q["data"];
    assert_eq!(
        keys(d),
        set(&["resultType", "encodingFlags", "result", "stats"])
    );
    assert_eq!(d["encodingFlags"], json!(["categorize-labels"]));
    let by_ts: BTreeMap<i64, &Pushed> = data.of("shop").map(|e| (e.ts, e)).collect();
    let mut seen = 0;
    for s in d["result"].as_array().unwrap() {
        assert_eq!(
            keys(&s["stream"]),
            set(&["app", "env", "pod", "service_name"]),
            "indexed labels only: {s}"
        );
        let mut last = i64::MAX;
        for v in s["values"].as_array().unwrap() {
            let v = v.as_array().unwrap();
            assert_eq!(v.len(), 3, "every value is a triple: {v:?}");
            let ts_text = v[0].as_str().unwrap();
            assert!(
                ts_text.len() == 19 && ts_text.bytes().all(|b| b.is_ascii_digit()),
                "nanosecond string: {ts_text}"
            );
            let ts: i64 = ts_text.parse().unwrap();
            assert!(ts < last, "newest first within a stream");
            last = ts;
            let e = by_ts[&ts];
            assert_eq!(v[1], e.line);
            assert_eq!(s["stream"]["pod"], e.labels["pod"]);
            assert_eq!(keys(&v[2]), set(&["structuredMetadata", "parsed"]));
            assert_eq!(
                v[2]["structuredMetadata"],
                json!({"detected_level": e.level, "trace_id": e.metadata["trace_id"]})
            );
            let line: Value = serde_json::from_str(&e.line).unwrap();
            assert_eq!(
                v[2]["parsed"],
                json!({
                    "level": line["level"],
                    "msg": line["msg"],
                    "status": line["status"].to_string(),
                })
            );
            seen += 1;
        }
    }
    assert_eq!(seen, by_ts.len());
    assert_eq!(
        d["result"].as_array().unwrap().len(),
        2,
        "one result stream per indexed stream, whatever the parsed labels"
    );
    // Real figures in stats: every shop line was read, once.
    let stats = &d["stats"];
    check_stats_shape(stats);
    let sum = &stats["summary"];
    let line_bytes: usize = data.of("shop").map(|e| e.line.len()).sum();
    // Every shop line carries detected_level and trace_id.
    let metadata_bytes: usize = data
        .of("shop")
        .map(|e| {
            "detected_level".len() + e.level.len() + "trace_id".len() + e.metadata["trace_id"].len()
        })
        .sum();
    assert!(metadata_bytes > 0);
    assert_eq!(sum["totalLinesProcessed"], by_ts.len() as u64, "{sum}");
    assert_eq!(
        sum["totalStructuredMetadataBytesProcessed"], metadata_bytes as u64,
        "{sum}"
    );
    assert_eq!(
        sum["totalBytesProcessed"],
        (line_bytes + metadata_bytes) as u64,
        "{sum}"
    );
    assert_eq!(sum["totalEntriesReturned"], by_ts.len() as u64, "{sum}");
    assert_eq!(sum["totalPostFilterLines"], by_ts.len() as u64, "{sum}");
    assert!(sum["execTime"].as_f64().unwrap() > 0.0, "{sum}");
    assert!(
        sum["bytesProcessedPerSecond"].as_u64().unwrap() > 0,
        "{sum}"
    );
    assert!(
        sum["linesProcessedPerSecond"].as_u64().unwrap() > 0,
        "{sum}"
    );
    assert!(stats["querier"]["querierExecTime"].as_f64().unwrap() > 0.0);

    // A plain log query keeps metadata in the triple and parsed labels empty.
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "{app=\"api\"} |= \"GET\""),
            ("direction", "backward"),
            ("limit", "1000"),
            ("step", "4800ms"),
        ]),
        &grafana("Source=grafana"),
    )
    .json();
    let got = merged(&q, true);
    let want: Vec<(i64, String)> = data
        .of("api")
        .filter(|e| e.line.contains("GET"))
        .map(|e| (e.ts, e.line.clone()))
        .rev()
        .collect();
    assert_eq!(got, want);
    for s in q["data"]["result"].as_array().unwrap() {
        for v in s["values"].as_array().unwrap() {
            assert_eq!(
                v[2],
                json!({"structuredMetadata": {"detected_level": if v[1].as_str().unwrap().starts_with("level=error") { "error" } else { "info" }}})
            );
        }
    }

    // 4. Log volume, as the histogram asks for it.
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            (
                "query",
                "sum by (level, detected_level) (count_over_time({app=\"shop\"} | drop __error__ [1m]))",
            ),
            ("direction", "backward"),
            ("limit", "1000"),
            ("step", "60000ms"),
        ]),
        &grafana("Source=logvolhist"),
    )
    .json();
    assert_eq!(q["data"]["resultType"], "matrix");
    assert!(
        q["data"].get("encodingFlags").is_none(),
        "metric answers carry no flags"
    );
    let mut counted: BTreeMap<String, f64> = BTreeMap::new();
    for s in q["data"]["result"].as_array().unwrap() {
        assert_eq!(keys(&s["metric"]), set(&["detected_level"]), "{s}");
        let level = s["metric"]["detected_level"].as_str().unwrap().to_string();
        for v in s["values"].as_array().unwrap() {
            assert_eq!(v.as_array().unwrap().len(), 2);
            let t = v[0].as_f64().expect("a JSON number of seconds");
            assert_eq!(t % 60.0, 0.0, "on the step grid: {v}");
            *counted.entry(level.clone()).or_default() += v[1]
                .as_str()
                .expect("a string value")
                .parse::<f64>()
                .unwrap();
        }
    }
    let points: usize = q["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        q["data"]["stats"]["summary"]["totalEntriesReturned"], points,
        "a matrix's samples, as Loki counts them"
    );
    assert_eq!(
        q["data"]["stats"]["summary"]["totalLinesProcessed"],
        data.of("shop").count()
    );
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for e in data.of("shop") {
        *want.entry(e.level.to_string()).or_default() += 1.0;
    }
    assert_eq!(counted, want);

    // 5. Logs sample (the metric query's log query), query hints (10 lines).
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "{app=\"api\"} |= \"status=500\""),
            ("direction", "backward"),
            ("limit", "100"),
            ("step", "4800ms"),
        ]),
        &grafana("Source=logsample"),
    )
    .json();
    assert_eq!(
        merged(&q, true).len(),
        data.of("api")
            .filter(|e| e.line.contains("status=500"))
            .count()
    );
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "{app=\"api\"}"),
            ("direction", "backward"),
            ("limit", "10"),
            ("step", "4800ms"),
        ]),
        &grafana("Source=datasample"),
    )
    .json();
    let want: Vec<i64> = data.of("api").map(|e| e.ts).rev().take(10).collect();
    assert_eq!(
        merged(&q, true).iter().map(|e| e.0).collect::<Vec<_>>(),
        want
    );
    assert_eq!(q["data"]["stats"]["summary"]["totalEntriesReturned"], 10);

    // 6. Log context around the 31st api line: `end` exclusive backward,
    // `start` inclusive forward.
    let api: Vec<&Pushed> = data.of("api").collect();
    let row = api[30].ts;
    let (ctx_start, row_ns, ctx_end) = (ns(row - 3600 * SEC), ns(row), ns(row + 3600 * SEC));
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &[
            ("query", "{app=\"api\",env=\"dev\"}"),
            ("direction", "backward"),
            ("limit", "5"),
            ("start", &ctx_start),
            ("end", &row_ns),
            ("step", "28800ms"),
        ],
        &grafana("Source=grafana"),
    )
    .json();
    let got: Vec<i64> = merged(&q, true).iter().map(|e| e.0).collect();
    assert_eq!(
        got,
        api[25..30].iter().rev().map(|e| e.ts).collect::<Vec<_>>()
    );
    // Figures of a limited query follow the chunk counters too (an audit
    // saw totalLinesProcessed=19 beside decompressedLines=200).
    check_stats_shape(&q["data"]["stats"]);
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &[
            ("query", "{app=\"api\",env=\"dev\"}"),
            ("direction", "forward"),
            ("limit", "5"),
            ("start", &row_ns),
            ("end", &ctx_end),
            ("step", "28800ms"),
        ],
        &grafana("Source=grafana"),
    )
    .json();
    let got = merged(&q, false);
    assert_eq!(
        got.iter().map(|e| e.0).collect::<Vec<_>>(),
        api[30..35].iter().map(|e| e.ts).collect::<Vec<_>>()
    );
    // Forward order inside the stream as sent.
    let raw: Vec<i64> = entries_of(&q).iter().map(|e| e.0).collect();
    assert_eq!(raw, got.iter().map(|e| e.0).collect::<Vec<_>>());

    // 7. Resource calls with ISO timestamps, as Logs Drilldown sends them.
    let (start_iso, end_iso) = (iso(start), iso(end));
    let iso_range = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        [("start", start_iso.as_str()), ("end", end_iso.as_str())]
            .iter()
            .chain(extra.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let call = |path: &str, params: Vec<(String, String)>| -> Value {
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        get(
            &l,
            path,
            &params,
            &[("X-Query-Tags", "Source=grafana-lokiexplore-app")],
        )
        .json()
    };
    let v = call(
        "/loki/api/v1/index/stats",
        iso_range(&[("query", "{app=\"api\"}")]),
    );
    assert_eq!(keys(&v), set(&["streams", "chunks", "bytes", "entries"]));
    assert_eq!(v["streams"], 1);
    assert_eq!(v["entries"], 60);
    assert!(v["chunks"].as_u64().unwrap() >= 1, "{v}");
    let api_bytes: usize = data.of("api").map(|e| e.line.len()).sum();
    assert!(v["bytes"].as_u64().unwrap() >= api_bytes as u64, "{v}");
    let v = call(
        "/loki/api/v1/index/volume",
        iso_range(&[("query", "{app=~\".+\"}"), ("limit", "5000")]),
    );
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    check_stats_shape(&v["data"]["stats"]);
    let rows = v["data"]["result"].as_array().unwrap();
    let apps: Vec<&str> = rows
        .iter()
        .map(|r| r["metric"]["app"].as_str().unwrap())
        .collect();
    // pager's lines are the most bytes, then shop's JSON, then api.
    assert_eq!(apps, ["pager", "shop", "api"], "{v}");
    for r in rows {
        assert_eq!(keys(&r["metric"]), set(&["app"]));
        assert!(r["value"][0].is_number());
        r["value"][1].as_str().unwrap().parse::<u64>().unwrap();
    }
    let v = call(
        "/loki/api/v1/detected_labels",
        iso_range(&[("query", "{app=\"shop\"}")]),
    );
    assert_eq!(
        v,
        json!({"detectedLabels": [
            {"label": "app", "cardinality": 1},
            {"label": "env", "cardinality": 1},
            {"label": "pod", "cardinality": 2},
            {"label": "service_name", "cardinality": 1},
        ]})
    );
    let v = call(
        "/loki/api/v1/detected_fields",
        iso_range(&[("query", "{app=\"api\"}")]),
    );
    let fields: BTreeMap<String, Value> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["label"].as_str().unwrap().to_string(), f.clone()))
        .collect();
    let api_distinct = |key: &str| -> usize {
        data.of("api")
            .filter_map(|e| {
                e.line
                    .split(' ')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
            })
            .collect::<BTreeSet<_>>()
            .len()
    };
    for (name, ty) in [
        ("method", "string"),
        ("path", "string"),
        ("status", "int"),
        ("took", "duration"),
    ] {
        let f = &fields[name];
        assert_eq!(f["type"], ty, "{f}");
        assert_eq!(f["parsers"], json!(["logfmt"]), "{f}");
        assert_eq!(f["cardinality"], api_distinct(name), "{f}");
    }
    assert_eq!(fields["detected_level"]["parsers"], Value::Null);
    let v = call(
        "/loki/api/v1/patterns",
        iso_range(&[("query", "{app=\"pager\"}"), ("step", "1m")]),
    );
    assert_eq!(v["status"], "success");
    let total: i64 = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["samples"].as_array().unwrap().iter())
        .map(|s| s[1].as_i64().unwrap())
        .sum();
    assert_eq!(total, PAGER_LINES as i64, "{v}");
    let v = call("/loki/api/v1/drilldown-limits", Vec::new());
    assert_eq!(v["limits"]["max_entries_limit_per_query"], 5000);
    assert!(v["pattern_ingester_enabled"].is_boolean());

    // 8. gzip: a big answer is gzipped and decodes to the same JSON; a
    // small one is not.
    let params = with(&[
        ("query", "{app=\"pager\"}"),
        ("limit", "1000"),
        ("step", "4800ms"),
    ]);
    let raw = reqwest::blocking::Client::builder()
        .no_gzip()
        .build()
        .unwrap();
    let fetch = |gzip: bool| {
        let mut req = raw
            .get(l.url("/loki/api/v1/query_range"))
            .query(&params)
            .header("X-Scope-OrgID", TENANT);
        if gzip {
            req = req.header("Accept-Encoding", "gzip");
        }
        req.send().unwrap()
    };
    let zipped = fetch(true);
    assert_eq!(zipped.status().as_u16(), 200);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let compressed = zipped.bytes().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    let unzipped: Value = serde_json::from_str(&text).unwrap();
    let plain = fetch(false);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: Value = plain.json().unwrap();
    assert!(compressed.len() * 3 < text.len(), "actually compressed");
    assert_eq!(unzipped["data"]["result"], plain["data"]["result"]);
    assert_eq!(merged(&plain, true).len(), 1000);
    let small = raw
        .get(l.url("/loki/api/v1/labels"))
        .header("X-Scope-OrgID", TENANT)
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert!(
        small.headers().get("content-encoding").is_none(),
        "under 1400 bytes: not compressed"
    );

    // 9. Errors Grafana shows: plain text.
    let e = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[("query", "{app=\"shop\""), ("step", "4800ms")]),
        &grafana("Source=grafana"),
    );
    assert!(
        e.error(400).starts_with("parse error at line 1, col "),
        "{}",
        e.body
    );
    let e = get(
        &l,
        "/loki/api/v1/query",
        &[("query", "{app=\"shop\"}"), ("time", &end_ns)],
        &grafana("Source=grafana"),
    );
    assert_eq!(
        e.error(400),
        "log queries are not supported as an instant query type, please change your query to a range query type"
    );

    // $__auto and $__interval become Grafana interval strings: LogQL ranges
    // take d, w and y.
    for range in ["1d", "1w", "1y"] {
        let q = format!("sum(count_over_time({{app=\"api\"}}[{range}]))");
        let v = get(
            &l,
            "/loki/api/v1/query",
            &[("query", q.as_str()), ("time", &end_ns)],
            &grafana("Source=grafana"),
        )
        .json();
        assert_eq!(v["data"]["result"][0]["value"][1], "60", "{range}");
    }

    // format_query (allowed by the datasource's routes).
    let v = get(
        &l,
        "/loki/api/v1/format_query",
        &[("query", "{app=\"api\"}|=\"GET\"")],
        &[],
    )
    .json();
    assert_eq!(
        v,
        json!({"status": "success", "data": "{app=\"api\"} |= \"GET\""})
    );
    let bad = get(&l, "/loki/api/v1/format_query", &[("query", "{app=")], &[]);
    assert_eq!(bad.status, 400);
    let bad: Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(bad["status"], "invalid-query");
    assert!(
        bad["error"].as_str().unwrap().starts_with("parse error"),
        "{bad}"
    );

    // 10. Nothing matches: Loki's empty shapes.
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[("query", "{app=\"nope\"}"), ("step", "4800ms")]),
        &grafana("Source=grafana"),
    )
    .json();
    assert_eq!(keys(&q), set(&["status", "data"]));
    assert_eq!(q["data"]["resultType"], "streams");
    assert_eq!(q["data"]["encodingFlags"], json!(["categorize-labels"]));
    assert_eq!(q["data"]["result"], json!([]));
    check_stats_shape(&q["data"]["stats"]);
    let q = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "count_over_time({app=\"nope\"}[1m])"),
            ("step", "60000ms"),
        ]),
        &grafana("Source=grafana"),
    )
    .json();
    assert_eq!(q["data"]["resultType"], "matrix");
    assert_eq!(q["data"]["result"], json!([]));
    let q = get(
        &l,
        "/loki/api/v1/query",
        &[
            ("query", "sum(count_over_time({app=\"nope\"}[1m]))"),
            ("time", &end_ns),
        ],
        &grafana("Source=grafana"),
    )
    .json();
    assert_eq!(q["data"]["resultType"], "vector");
    assert_eq!(q["data"]["result"], json!([]));
}

#[test]
fn query_timeout_is_a_504_with_lokis_message() {
    let l = Lokal::start(
        "  query_timeout: 1ms\n  ingestion_rate_mb: 1000\n  ingestion_burst_size_mb: 1000\n",
    );
    let now = Timestamp::now().nanos();
    let base = now - 10 * 60 * SEC;
    // Enough lines that reading them takes far longer than a millisecond.
    for batch in 0..5 {
        let values: Vec<Value> = (0..20_000)
            .map(|i| {
                let n = batch * 20_000 + i;
                json!([
                    (base + n * 1000).to_string(),
                    format!(
                        "heavy line {n} with some words to scan through abcdefghijklmnop {}",
                        n * 7919
                    )
                ])
            })
            .collect();
        let body = json!({"streams": [{"stream": {"app": "heavy"}, "values": values}]});
        push_json(&l, TENANT, &body);
    }
    let (s, e) = (ns(base - SEC), ns(now + SEC));
    for (path, query) in [
        ("/loki/api/v1/query_range", "{app=\"heavy\"} |~ \"z+q+x+\""),
        (
            "/loki/api/v1/query_range",
            "sum(count_over_time({app=\"heavy\"} |~ \"z+q+x+\" [1m]))",
        ),
    ] {
        let started = std::time::Instant::now();
        let a = get(
            &l,
            path,
            &[
                ("query", query),
                ("start", &s),
                ("end", &e),
                ("limit", "5000"),
                ("step", "60000ms"),
            ],
            &grafana("Source=grafana"),
        );
        assert_eq!(
            a.error(504),
            "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed",
            "{query}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "answered at the timeout, not when the query finished"
        );
    }
}

/// logcli's backward pagination (Loki `pkg/logcli/query/query.go`): batches
/// of `batch`, the next batch ending 1ns after the last entry printed, the
/// overlap (entries at that timestamp already printed) skipped by line.
fn logcli_paginate(
    l: &Lokal,
    query: &str,
    (start, end): (i64, i64),
    limit: usize,
    batch: usize,
) -> (Vec<(i64, String)>, usize) {
    let mut printed: Vec<(i64, String)> = Vec::new();
    let mut last: Vec<(i64, String)> = Vec::new();
    let mut total = 0usize;
    let mut end = end;
    let mut requests = 0;
    while total < limit {
        let mut bs = batch;
        if limit - total < batch {
            bs = limit - total + last.len();
        }
        let (s, e, bs) = (ns(start), ns(end), bs.to_string());
        let v = get(
            l,
            "/loki/api/v1/query_range",
            &[
                ("query", query),
                ("limit", &bs),
                ("start", &s),
                ("end", &e),
                ("direction", "BACKWARD"),
            ],
            &[],
        )
        .json();
        requests += 1;
        let all = merged(&v, true);
        let mut n = 0;
        for (ts, line) in &all {
            if last
                .first()
                .is_some_and(|f| f.0 == *ts && last.iter().any(|le| &le.1 == line))
            {
                continue;
            }
            printed.push((*ts, line.clone()));
            n += 1;
        }
        if n == 0 {
            break;
        }
        let Some(newest_last) = all.last().map(|e| e.0) else {
            break;
        };
        last = all.iter().filter(|e| e.0 == newest_last).cloned().collect();
        if n == limit {
            break;
        }
        assert!(last.len() < batch, "overlap larger than a batch");
        total += n;
        end = last[0].0 + 1;
    }
    (printed, requests)
}

#[test]
fn logcli_request_sequence_and_parameter_forms() {
    let l = Lokal::start("");
    let data = dataset();
    push(&l, &data);
    let now = Timestamp::now().nanos();
    let (start, end) = (data.base - 60 * SEC, now + 60 * SEC);
    let (start_ns, end_ns, now_ns) = (ns(start), ns(end), ns(now));
    let range = [("start", start_ns.as_str()), ("end", end_ns.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| join(&range, extra);
    let api: Vec<&Pushed> = data.of("api").collect();

    // Instant query as `logcli instant-query` sends it.
    let v = get(
        &l,
        "/loki/api/v1/query",
        &[
            ("query", "sum by (env) (count_over_time({app=\"api\"}[1h]))"),
            ("limit", "30"),
            ("time", &now_ns),
            ("direction", "BACKWARD"),
        ],
        &[],
    )
    .json();
    let sample = &v["data"]["result"];
    assert_eq!(sample.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(sample[0]["metric"], json!({"env": "dev"}));
    assert_eq!(sample[0]["value"][1], "60");
    let t = sample[0]["value"][0].as_f64().unwrap();
    assert!(
        (t - now as f64 / 1e9).abs() < 0.002,
        "evaluated at `time`: {t}"
    );

    // Range metric query, step as float seconds: points on a 300 s grid,
    // windows that tile the range, so they count every line once.
    let v = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "count_over_time({app=\"api\"}[5m])"),
            ("limit", "30"),
            ("step", "300"),
            ("direction", "BACKWARD"),
        ]),
        &[],
    )
    .json();
    // One series per detected_level (structured metadata is a label here).
    let mut sum = 0.0;
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{v}");
    for p in series.iter().flat_map(|s| s["values"].as_array().unwrap()) {
        assert_eq!(p[0].as_i64().unwrap() % 300, 0, "{p}");
        sum += p[1].as_str().unwrap().parse::<f64>().unwrap();
    }
    assert_eq!(sum, 60.0);

    // Log query with `interval` as float seconds: one entry per 300 s.
    let v = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "{app=\"api\"}"),
            ("limit", "100"),
            ("interval", "300"),
            ("direction", "BACKWARD"),
        ]),
        &[],
    )
    .json();
    let mut want = Vec::new();
    for e in api.iter().rev() {
        if want.last().is_none_or(|&l: &i64| e.ts <= l - 300 * SEC) {
            want.push(e.ts);
        }
    }
    let got: Vec<i64> = merged(&v, true).iter().map(|e| e.0).collect();
    assert_eq!(got, want);
    let v5m = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", "{app=\"api\"}"),
            ("limit", "100"),
            ("interval", "5m"),
            ("direction", "BACKWARD"),
        ]),
        &[],
    )
    .json();
    assert_eq!(v5m["data"]["result"], v["data"]["result"]);

    // Without categorize-labels: pairs, streams split by every label.
    let v = get(
        &l,
        "/loki/api/v1/query_range",
        &with(&[("query", "{app=\"shop\"} | json"), ("limit", "1000")]),
        &[],
    )
    .json();
    assert!(v["data"].get("encodingFlags").is_none());
    let shop: BTreeMap<i64, &Pushed> = data.of("shop").map(|e| (e.ts, e)).collect();
    let mut n = 0;
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            assert_eq!(e.as_array().unwrap().len(), 2);
            let p = shop[&e[0].as_str().unwrap().parse::<i64>().unwrap()];
            assert_eq!(s["stream"]["trace_id"], p.metadata["trace_id"]);
            assert_eq!(s["stream"]["detected_level"], p.level);
            assert_eq!(s["stream"]["level"], p.level);
            assert_eq!(s["stream"]["pod"], p.labels["pod"]);
            n += 1;
        }
    }
    assert_eq!(n, shop.len());

    // Backward pagination through 2500 lines, batches of 1000, timestamps
    // shared by three lines (so batches end inside a group).
    let pager: Vec<(i64, String)> = data.of("pager").map(|e| (e.ts, e.line.clone())).collect();
    for limit in [PAGER_LINES, 5000] {
        let (printed, requests) = logcli_paginate(&l, "{app=\"pager\"}", (start, end), limit, 1000);
        assert_eq!(printed.len(), PAGER_LINES, "limit {limit}");
        let distinct: BTreeSet<&(i64, String)> = printed.iter().collect();
        assert_eq!(distinct.len(), PAGER_LINES, "every line exactly once");
        assert_eq!(distinct, pager.iter().collect::<BTreeSet<_>>());
        assert!(
            printed.windows(2).all(|w| w[0].0 >= w[1].0),
            "newest first across batches"
        );
        assert!(requests >= 3, "{requests} requests");
    }

    // Metadata as logcli asks for it.
    let v = get(&l, "/loki/api/v1/labels", &range, &[]).json();
    assert_eq!(strings(&v["data"]), ["app", "env", "pod", "service_name"]);
    let v = get(&l, "/loki/api/v1/label/env/values", &range, &[]).json();
    assert_eq!(strings(&v["data"]), ["dev", "prod"]);
    let v = get(
        &l,
        "/loki/api/v1/series",
        &with(&[("match", "{app=\"api\"}"), ("match[]", "{app=\"pager\"}")]),
        &[],
    )
    .json();
    assert_eq!(
        v["data"],
        json!([
            {"app": "api", "env": "dev", "service_name": "api"},
            {"app": "pager", "service_name": "pager"},
        ])
    );
    let stats = get(
        &l,
        "/loki/api/v1/index/stats",
        &with(&[("query", "{app=\"pager\"}")]),
        &[],
    )
    .json();
    assert_eq!(stats["entries"], PAGER_LINES);
    assert_eq!(stats["streams"], 1);
    let vol = get(
        &l,
        "/loki/api/v1/index/volume",
        &with(&[("query", "{app=\"pager\"}")]),
        &[],
    )
    .json();
    assert_eq!(vol["data"]["result"][0]["metric"], json!({"app": "pager"}));
    assert_eq!(
        vol["data"]["result"][0]["value"][1],
        stats["bytes"].to_string(),
        "volume and stats agree"
    );
    let vr = get(
        &l,
        "/loki/api/v1/index/volume_range",
        &with(&[("query", "{app=~\"api|pager\"}"), ("step", "60")]),
        &[],
    )
    .json();
    assert_eq!(vr["data"]["resultType"], "matrix");
    let mut by_app: BTreeMap<String, u64> = BTreeMap::new();
    for s in vr["data"]["result"].as_array().unwrap() {
        for p in s["values"].as_array().unwrap() {
            assert_eq!(p[0].as_i64().unwrap() % 60, 0, "{p}");
            *by_app
                .entry(s["metric"]["app"].as_str().unwrap().to_string())
                .or_default() += p[1].as_str().unwrap().parse::<u64>().unwrap();
        }
    }
    assert_eq!(by_app["pager"], stats["bytes"].as_u64().unwrap());
    assert!(by_app.contains_key("api"));
    let df = get(
        &l,
        "/loki/api/v1/detected_fields",
        &with(&[
            ("query", "{app=\"api\"}"),
            ("line_limit", "1000"),
            ("limit", "100"),
            ("step", "10s"),
        ]),
        &[],
    )
    .json();
    assert!(
        df["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["label"] == "method"),
        "{df}"
    );
    let vals = get(
        &l,
        "/loki/api/v1/detected_field/method/values",
        &with(&[
            ("query", "{app=\"api\"}"),
            ("line_limit", "1000"),
            ("limit", "100"),
            ("step", "1m0s"),
        ]),
        &[],
    )
    .json();
    let got: BTreeSet<String> = strings(&vals["values"]).into_iter().collect();
    assert_eq!(got, set(&["GET", "POST", "PUT"]));

    // Timestamps in every form Loki accepts select the same entries:
    // [start, end) around api lines 10..20.
    let (lo, hi) = (api[10].ts, api[20].ts);
    let want: Vec<i64> = api[10..20].iter().rev().map(|e| e.ts).collect();
    let secs = |t: i64| (t / SEC).to_string();
    let float = |t: i64| format!("{}.{:03}", t / SEC, t % SEC / MS);
    let forms: Vec<(&str, String, String)> = vec![
        ("nanoseconds", ns(lo), ns(hi)),
        // Whole seconds round api timestamps (x.5 s) down: same entries.
        ("seconds", secs(lo), secs(hi)),
        ("float seconds", float(lo), float(hi)),
        ("RFC 3339", iso(lo), iso(hi)),
        (
            "RFC 3339 seconds",
            Timestamp::from_nanos(lo - 500 * MS).to_rfc3339(),
            Timestamp::from_nanos(hi - 500 * MS).to_rfc3339(),
        ),
    ];
    for (form, s, e) in &forms {
        let v = get(
            &l,
            "/loki/api/v1/query_range",
            &[
                ("query", "{app=\"api\"}"),
                ("start", s),
                ("end", e),
                ("limit", "100"),
            ],
            &[],
        )
        .json();
        let got: Vec<i64> = merged(&v, true).iter().map(|e| e.0).collect();
        assert_eq!(got, want, "{form}: start={s} end={e}");
    }
    // `since` without `start`: from `end` (or now) back.
    let since = |since: &str| {
        let v = get(
            &l,
            "/loki/api/v1/query_range",
            &[
                ("query", "{app=\"api\"}"),
                ("since", since),
                ("limit", "100"),
            ],
            &[],
        )
        .json();
        merged(&v, true).len()
    };
    assert_eq!(since("25m"), 60, "all api lines are 10 to 20 minutes old");
    assert_eq!(since("1m"), 0);
    assert_eq!(since("1h"), 60);
    let v = get(
        &l,
        "/loki/api/v1/query_range",
        &[
            ("query", "{app=\"api\"}"),
            ("since", "1m"),
            ("start", &ns(lo)),
            ("end", &ns(hi)),
        ],
        &[],
    )
    .json();
    assert_eq!(merged(&v, true).len(), 10, "an explicit start beats since");
    // `step` as seconds, float seconds and durations.
    let metric = |step: &str| {
        get(
            &l,
            "/loki/api/v1/query_range",
            &join(
                &range,
                &[
                    ("query", "count_over_time({app=\"api\"}[1m])"),
                    ("step", step),
                ],
            ),
            &[],
        )
        .json()["data"]["result"]
            .clone()
    };
    let by_60 = metric("60");
    assert_eq!(by_60, metric("1m"));
    assert_eq!(by_60, metric("60000ms"));
    assert_eq!(by_60, metric("60.0"));
    let pts = by_60[0]["values"].as_array().unwrap().len();
    let by_30 = metric("30s");
    assert!(by_30[0]["values"].as_array().unwrap().len() > pts);
    assert_eq!(by_30, metric("30"));
    // Directions in either case.
    let fwd = |d: &str| {
        let v = get(
            &l,
            "/loki/api/v1/query_range",
            &join(
                &range,
                &[("query", "{app=\"api\"}"), ("limit", "3"), ("direction", d)],
            ),
            &[],
        )
        .json();
        merged(&v, false).iter().map(|e| e.0).collect::<Vec<_>>()
    };
    let oldest: Vec<i64> = api[..3].iter().map(|e| e.ts).collect();
    assert_eq!(fwd("FORWARD"), oldest);
    assert_eq!(fwd("forward"), oldest);
    // Bad values: Loki's 400s.
    let bad = |params: Vec<(&str, &str)>| {
        get(&l, "/loki/api/v1/query_range", &params, &[])
            .error(400)
            .to_string()
    };
    assert_eq!(
        bad(with(&[("query", "{app=\"api\"}"), ("step", "abc")])),
        "cannot parse \"abc\" to a valid duration"
    );
    assert_eq!(
        bad(with(&[("query", "{app=\"api\"}"), ("step", "0.5m")])),
        "cannot parse \"0.5m\" to a valid duration",
        "no fractions in durations"
    );
    assert_eq!(
        bad(with(&[("query", "{app=\"api\"}"), ("step", "1s1m")])),
        "cannot parse \"1s1m\" to a valid duration",
        "units from the largest down, as Prometheus"
    );
    assert!(
        bad(with(&[("query", "{app=\"api\"}"), ("step", "0")]))
            .starts_with("zero or negative query resolution step widths are not accepted")
    );
    assert_eq!(
        bad(vec![("query", "{app=\"api\"}"), ("start", "yesterday"),]),
        "strconv.ParseInt: parsing \"yesterday\": invalid syntax"
    );
    assert_eq!(
        bad(vec![
            ("query", "{app=\"api\"}"),
            ("start", &end_ns),
            ("end", &start_ns),
        ]),
        "end timestamp must not be before or equal to start time"
    );
    // max_query_length (721h) applies to metadata requests as well.
    let long_ago = ns(end - 800 * 3600 * SEC);
    for path in [
        "/loki/api/v1/query_range",
        "/loki/api/v1/labels",
        "/loki/api/v1/label/app/values",
        "/loki/api/v1/series",
        "/loki/api/v1/index/stats",
        "/loki/api/v1/index/volume",
    ] {
        let a = get(
            &l,
            path,
            &[
                ("query", "{app=\"api\"}"),
                ("match", "{app=\"api\"}"),
                ("start", &long_ago),
                ("end", &end_ns),
            ],
            &[],
        );
        assert_eq!(
            a.error(400),
            "the query time range exceeds the limit (query length: 800h0m0s, limit: 30d1h)",
            "{path}"
        );
    }
    assert_eq!(
        bad(with(&[("query", "{app=\"api\"}"), ("direction", "up")])),
        "invalid direction 'up'"
    );
    assert_eq!(
        bad(with(&[("query", "{app=\"api\"}"), ("limit", "0")])),
        "limit must be a positive value"
    );
    assert_eq!(
        bad(with(&[("query", "{app=\"api\"}"), ("limit", "5001")])),
        "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)"
    );
}

#[test]
fn odd_query_tags_never_fail_a_query_endpoint() {
    let l = Lokal::start("");
    let data = dataset();
    push(&l, &data);
    let now = Timestamp::now().nanos();
    let (s, e) = (ns(data.base - 60 * SEC), ns(now + 60 * SEC));
    let odd: [&[u8]; 5] = [
        b"Source=../../etc/passwd;rm -rf",
        b"Source=caf\xc3\xa9 \xf0\x9f\x98\x80,,==,=x,y=",
        b"\xff\xfe\xfd",
        b"",
        b"Source=grafana-lokiexplore-app,Feature=\"beta\"",
    ];
    let selector =
        || -> Vec<(&str, &str)> { vec![("query", "{app=\"api\"}"), ("start", &s), ("end", &e)] };
    let calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/loki/api/v1/query_range", selector()),
        (
            "/loki/api/v1/query",
            vec![
                ("query", "count_over_time({app=\"api\"}[1h])"),
                ("time", &e),
            ],
        ),
        ("/loki/api/v1/labels", vec![("start", &s), ("end", &e)]),
        (
            "/loki/api/v1/label/app/values",
            vec![("start", &s), ("end", &e)],
        ),
        (
            "/loki/api/v1/series",
            vec![("match[]", "{app=\"api\"}"), ("start", &s), ("end", &e)],
        ),
        ("/loki/api/v1/index/stats", selector()),
        ("/loki/api/v1/index/volume", selector()),
        ("/loki/api/v1/index/volume_range", selector()),
        ("/loki/api/v1/detected_labels", selector()),
        ("/loki/api/v1/detected_fields", selector()),
        ("/loki/api/v1/detected_field/method/values", selector()),
        ("/loki/api/v1/patterns", selector()),
        ("/loki/api/v1/drilldown-limits", vec![]),
        (
            "/loki/api/v1/format_query",
            vec![("query", "{app=\"api\"}")],
        ),
    ];
    for tags in odd {
        for (path, params) in &calls {
            let mut headers = HeaderMap::new();
            headers.insert(
                HeaderName::from_static("x-query-tags"),
                HeaderValue::from_bytes(tags).unwrap(),
            );
            let r = client()
                .get(l.url(path))
                .query(params)
                .header("X-Scope-OrgID", TENANT)
                .headers(headers)
                .send()
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().unwrap();
            assert_eq!(
                status,
                200,
                "{path} with X-Query-Tags {:?}: {body}",
                String::from_utf8_lossy(tags)
            );
            serde_json::from_str::<Value>(&body).unwrap();
        }
    }
}

/// CPU time (user + system, in clock ticks) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 here.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn a_client_that_goes_away_frees_the_cpu() {
    let l = Lokal::start("  ingestion_rate_mb: 1000\n  ingestion_burst_size_mb: 1000\n");
    let now = Timestamp::now().nanos();
    let base = now - 30 * 60 * SEC;
    let lines = 200_000i64;
    for batch in 0..4 {
        let values: Vec<Value> = (batch * lines / 4..(batch + 1) * lines / 4)
            .map(|n| {
                json!([
                    (base + n * 1000).to_string(),
                    json!({"level": "info", "status": 200 + n % 5, "msg": format!("request {n} served"), "user": {"id": format!("u{}", n % 97)}}).to_string()
                ])
            })
            .collect();
        let body = json!({"streams": [{"stream": {"app": "heavy", "n": batch.to_string()}, "values": values}]});
        push_json(&l, TENANT, &body);
    }
    // Flushed: each stream is then one chunk of many blocks, so a query is
    // a few long tasks rather than many short ones.
    let r = client().post(l.url("/flush")).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, e) = (ns(base - SEC), ns(now + SEC));
    let params = [
        ("query", "{app=\"heavy\"} | json | status=\"999\""),
        ("start", s.as_str()),
        ("end", e.as_str()),
        ("limit", "100"),
    ];
    let pid = l.child.id();
    // The whole query, for reference.
    let c0 = cpu_ticks(pid);
    let t0 = std::time::Instant::now();
    let full = get(&l, "/loki/api/v1/query_range", &params, &[]);
    assert_eq!(full.status, 200);
    let (full_ticks, full_time) = (cpu_ticks(pid) - c0, t0.elapsed());
    // A client that gives up after 100 ms.
    let impatient = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    let r = impatient
        .get(l.url("/loki/api/v1/query_range"))
        .query(&params)
        .header("X-Scope-OrgID", TENANT)
        .send();
    assert!(r.is_err(), "the query outran the client's timeout");
    // Give the server 50 ms to notice, then watch for as long as the whole
    // query takes.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let c1 = cpu_ticks(pid);
    std::thread::sleep(full_time);
    let after = cpu_ticks(pid) - c1;
    assert!(
        after * 5 < full_ticks,
        "after the client left, the server used {after} ticks; the whole query takes {full_ticks} ticks ({full_time:?})"
    );
}

/// Pushes `lines` as one stream of `labels` (JSON push, tenant TENANT).
fn push_lines(l: &Lokal, labels: Value, lines: &[(i64, String)]) {
    let values: Vec<Value> = lines
        .iter()
        .map(|(t, line)| json!([t.to_string(), line]))
        .collect();
    let body = json!({"streams": [{"stream": labels, "values": values}]});
    push_json(l, TENANT, &body);
}

/// `(timestamp ns, bytes)` of each sample of the one series of a
/// volume_range answer (matrix `values` or vector `value`).
fn volume_points(v: &Value) -> Vec<(i64, u64)> {
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    let samples: Vec<Value> = match v["data"]["resultType"].as_str().unwrap() {
        "matrix" => result[0]["values"].as_array().unwrap().clone(),
        "vector" => vec![result[0]["value"].clone()],
        other => panic!("{other}: {v}"),
    };
    samples
        .iter()
        .map(|p| {
            (
                (p[0].as_f64().unwrap() * 1e9).round() as i64,
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn volume_range_spreads_bytes_over_the_steps_head_and_flushed() {
    // Small blocks: ten 100-byte lines each, so a stream is many blocks.
    let l = Lokal::start("ingester:\n  chunk_block_size: 1000\n");
    let now = Timestamp::now().nanos();
    let minute = 60 * SEC;
    let base = (now - 30 * minute).div_euclid(minute) * minute;
    // Six lines a minute for ten minutes, at :05, :15, ... :55.
    let line = |i: i64| format!("level=info i={i:03} {}", "x".repeat(80));
    let lines: Vec<(i64, String)> = (0..60)
        .map(|i| (base + 5 * SEC + i * 10 * SEC, line(i)))
        .collect();
    push_lines(&l, json!({"app": "spread"}), &lines);
    // Three short lines a minute apart: they stay in the open head block.
    let open: Vec<(i64, String)> = (0..3)
        .map(|i| {
            (
                base + 12 * minute + 30 * SEC + i * minute,
                format!("level=info o{i}"),
            )
        })
        .collect();
    push_lines(&l, json!({"app": "open"}), &open);
    // One line: a single sample.
    push_lines(
        &l,
        json!({"app": "single"}),
        &[(base + 90 * SEC, "level=info one".to_string())],
    );

    let (s, e) = (ns(base), ns(base + 20 * minute));
    let range = |query: &'static str| {
        vec![
            ("query", query),
            ("start", s.as_str()),
            ("end", e.as_str()),
            ("step", "60"),
        ]
    };
    let total = |l: &Lokal, query: &'static str| -> u64 {
        let st = get(l, "/loki/api/v1/index/stats", &range(query), &[]).json();
        st["bytes"].as_u64().unwrap()
    };
    let check = |l: &Lokal, when: &str| {
        let v = get(
            l,
            "/loki/api/v1/index/volume_range",
            &range("{app=\"spread\"}"),
            &[],
        )
        .json();
        assert_eq!(v["data"]["resultType"], "matrix", "{when}: {v}");
        let points = volume_points(&v);
        let sum: u64 = points.iter().map(|p| p.1).sum();
        assert_eq!(
            sum,
            total(l, "{app=\"spread\"}"),
            "{when}: the shares add up: {v}"
        );
        // Minute k's lines are counted at the step ending at minute k+1,
        // about a tenth of the bytes each (blocks are spread in proportion
        // to the time they cover, so a block boundary blurs a little).
        let per_minute = sum / 10;
        assert_eq!(
            points.iter().map(|p| p.0).collect::<Vec<_>>(),
            (1..=10).map(|k| base + k * minute).collect::<Vec<_>>(),
            "{when}: {v}"
        );
        for (t, bytes) in &points {
            assert!(
                bytes.abs_diff(per_minute) <= per_minute / 3,
                "{when}: {bytes} bytes at {t}, about {per_minute} expected: {v}"
            );
        }
        // The open head block is counted entry by entry: exactly.
        let v = get(
            l,
            "/loki/api/v1/index/volume_range",
            &range("{app=\"open\"}"),
            &[],
        )
        .json();
        let points = volume_points(&v);
        let open_total = total(l, "{app=\"open\"}");
        assert_eq!(
            points.iter().map(|p| p.1).sum::<u64>(),
            open_total,
            "{when}: the shares add up: {v}"
        );
        let each = open_total / 3;
        if when == "head" {
            assert_eq!(
                points,
                (13..=15)
                    .map(|k| (base + k * minute, each))
                    .collect::<Vec<_>>(),
                "{when}: {v}"
            );
        }
        // One sample in every series: a vector, as Loki's toPrometheusData.
        let v = get(
            l,
            "/loki/api/v1/index/volume_range",
            &range("{app=\"single\"}"),
            &[],
        )
        .json();
        assert_eq!(v["data"]["resultType"], "vector", "{when}: {v}");
        assert_eq!(
            volume_points(&v),
            [(base + 2 * minute, total(l, "{app=\"single\"}"))],
            "{when}: {v}"
        );
    };
    check(&l, "head");
    let r = client().post(l.url("/flush")).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    check(&l, "flushed");
    // After a restart the chunk cache is cold: the block index is read with
    // ranged reads of the chunk objects.
    let l = l.restart();
    check(&l, "restarted");
}

#[test]
fn volume_disabled_is_404_and_index_selectors_are_validated() {
    let l = Lokal::start("  volume_enabled: false\n");
    push_lines(
        &l,
        json!({"app": "a"}),
        &[(Timestamp::now().nanos() - SEC, "x".to_string())],
    );
    for path in [
        "/loki/api/v1/index/volume",
        "/loki/api/v1/index/volume_range",
    ] {
        let r = get(&l, path, &[("query", "{app=\"a\"}")], &[]);
        assert_eq!(r.error(404), "not found", "{path}");
    }
    // Stats still answer; a selector every matcher of which accepts the
    // empty string is refused, as Loki's ParseMatchers(q, true).
    let v = get(
        &l,
        "/loki/api/v1/index/stats",
        &[("query", "{app=\"a\"}")],
        &[],
    )
    .json();
    assert_eq!(v["entries"], 1);
    let v = get(&l, "/loki/api/v1/index/stats", &[("query", "{}")], &[]).json();
    assert_eq!(v["streams"], 1);
    let empty = "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";
    for path in [
        "/loki/api/v1/index/stats",
        "/loki/api/v1/labels",
        "/loki/api/v1/label/app/values",
    ] {
        let r = get(&l, path, &[("query", "{app=~\".*\"}")], &[]);
        assert_eq!(r.error(400), empty, "{path}");
    }
    // Series does not validate (Loki's MatchForSeriesRequest).
    let v = get(
        &l,
        "/loki/api/v1/series",
        &[("match[]", "{app=~\".*\"}")],
        &[],
    )
    .json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    // index/stats takes the range parser's step check.
    let r = get(
        &l,
        "/loki/api/v1/index/stats",
        &[("query", "{app=\"a\"}"), ("step", "0")],
        &[],
    );
    assert_eq!(
        r.error(400),
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    );

    let l = Lokal::start("");
    push_lines(
        &l,
        json!({"app": "a"}),
        &[(Timestamp::now().nanos() - SEC, "x".to_string())],
    );
    for path in [
        "/loki/api/v1/index/volume",
        "/loki/api/v1/index/volume_range",
    ] {
        let r = get(&l, path, &[("query", "{app=~\".*\"}")], &[]);
        assert_eq!(r.error(400), empty, "{path}");
        let v = get(&l, path, &[("query", "{}")], &[]).json();
        assert_eq!(
            v["data"]["result"].as_array().unwrap().len(),
            1,
            "{path}: {v}"
        );
    }
}

/// Logs Drilldown's `max_query_series` behaviour: a metric query with more
/// than 500 series answers 200 with the first 500 and Loki's warning when
/// `X-Query-Tags` names Logs Drilldown (`Source=grafana-lokiexplore-app`),
/// and 400 with Loki's message otherwise.
#[test]
fn drilldown_gets_max_query_series_as_a_warning() {
    let l = Lokal::start("");
    let now = Timestamp::now().nanos();
    let base = now - 10 * 60 * SEC;
    let values: Vec<Value> = (0..600i64)
        .map(|n| json!([(base + n * MS).to_string(), format!("level=info n={n}")]))
        .collect();
    let body = json!({"streams": [{"stream": {"app": "many"}, "values": values}]});
    push_json(&l, TENANT, &body);
    let (start, end) = (ns(base - SEC), ns(now + SEC));
    let params = [
        ("query", r#"count_over_time({app="many"} | logfmt [1h])"#),
        ("start", start.as_str()),
        ("end", end.as_str()),
        ("step", "60"),
    ];
    let msg = "maximum number of series (500) reached for a single query; consider reducing query cardinality by adding more filters to the log stream selector or by using aggregations like sum";

    let plain = get(&l, "/loki/api/v1/query_range", &params, &[]);
    assert_eq!(plain.status, 400, "{}", plain.body);
    assert_eq!(plain.body.trim_end(), msg);

    let tags = [("X-Query-Tags", "Source=grafana-lokiexplore-app")];
    let drill = get(&l, "/loki/api/v1/query_range", &params, &tags);
    assert_eq!(drill.status, 200, "{}", drill.body);
    let v: Value = serde_json::from_str(&drill.body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 500);
    assert_eq!(v["warnings"], json!([msg]));
}

/// A GET whose URI is over hyper's fixed limit (65,534 bytes) answers 414
/// with a message (hyper's own 414 has an empty body); the same query as a
/// POST form runs; a query over Loki's 128 KiB is Loki's 400.
#[test]
fn long_queries_get_messages() {
    let l = Lokal::start("");
    let now = Timestamp::now().nanos();
    let (start, end) = (ns(now - 60 * SEC), ns(now));
    // 100 KB of query.
    let query = format!(r#"{{app="any"}} |= "{}""#, "x".repeat(100_000));
    assert!(
        query.len() > 100_000 && query.len() < 131_072,
        "{}",
        query.len()
    );
    let params = [
        ("query", query.as_str()),
        ("start", start.as_str()),
        ("end", end.as_str()),
    ];
    // reqwest (the http crate) refuses such a URI itself: a raw request.
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let url = reqwest::Url::parse(&l.url("/")).unwrap();
    let mut conn =
        std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    let request = format!(
        "GET /loki/api/v1/query_range?{encoded} HTTP/1.1\r\nHost: lokal\r\nX-Scope-OrgID: {TENANT}\r\n\r\n"
    );
    std::io::Write::write_all(&mut conn, request.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 414 "),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        answer.ends_with("\r\n\r\nrequest URI too long; send the query as a POST form body\n"),
        "{answer}"
    );
    let r = client()
        .post(l.url("/loki/api/v1/query_range"))
        .header("X-Scope-OrgID", TENANT)
        .form(&params)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().unwrap();
    assert!(
        status == 200 || (status == 400 && !body.is_empty()),
        "{status}: {body}"
    );
    let huge = format!(r#"{{app="{}"}}"#, "x".repeat(140_000));
    let r = client()
        .post(l.url("/loki/api/v1/query_range"))
        .header("X-Scope-OrgID", TENANT)
        .form(&[("query", huge.as_str()), ("start", &start), ("end", &end)])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.text().unwrap();
    assert!(
        body.contains("input size too long (140008 > 131072)"),
        "{}",
        &body[..body.len().min(300)]
    );
    // The server is still there for the next request.
    let ok = get(&l, "/loki/api/v1/labels", &[], &[]);
    assert_eq!(ok.status, 200);
}
