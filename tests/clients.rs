//! Pushes from real Loki clients, read back through `query_range`.
//!
//! Each test pushes numbered lines with a real client library — tracing-loki
//! (Rust, protobuf + snappy with `Content-Encoding: snappy`), pino-loki and
//! winston-loki (npm, run by `tests/clients/node/push.cjs`), the PyPI logging
//! handlers (run by `tests/clients/python/push.py`) — or with requests built
//! here in every body format Loki accepts, then reads every line back with
//! `categorize-labels` and checks: each line exactly once, its stream labels
//! (`service_name` included), its structured metadata where the client sends
//! it, and that another tenant sees none of it.
//!
//! The npm and PyPI clients are installed by the README's test command
//! (`scripts/test`), which exports `LOKAL_TEST_NODE_MODULES` and
//! `LOKAL_TEST_PYTHON`. Without them these tests fail; they never skip.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Lokal, client};
use prost::Message;

type LabelMap = BTreeMap<String, String>;

/// One entry as `query_range` returned it with categorize-labels.
#[derive(Debug, Clone)]
struct Got {
    stream: LabelMap,
    ts: i64,
    line: String,
    metadata: LabelMap,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A run id unique to this process and moment, so label sets never collide.
fn run_id(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), now_ns() % 1_000_000_000)
}

/// Every entry of `query` in the last hour, oldest first, for `tenant`
/// (`None`: no `X-Scope-OrgID` header).
fn read_back(l: &Lokal, tenant: Option<&str>, query: &str) -> Vec<Got> {
    let now = now_ns();
    let mut req = client()
        .get(l.url("/loki/api/v1/query_range"))
        .header("X-Loki-Response-Encoding-Flags", "categorize-labels")
        .query(&[
            ("query", query),
            ("start", &(now - 3_600_000_000_000).to_string()),
            ("end", &(now + 60_000_000_000).to_string()),
            ("limit", "5000"),
            ("direction", "forward"),
        ]);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    assert_eq!(status, 200, "query {query}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let as_map = |v: &serde_json::Value| -> LabelMap {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let stream = as_map(&s["stream"]);
        for e in s["values"].as_array().unwrap() {
            out.push(Got {
                stream: stream.clone(),
                ts: e[0].as_str().unwrap().parse().unwrap(),
                line: e[1].as_str().unwrap().to_string(),
                metadata: as_map(&e[2]["structuredMetadata"]),
            });
        }
    }
    out.sort_by_key(|g| g.ts);
    out
}

/// Finds line `i` of each entry through `index_of`, and checks every index in
/// `0..n` appears exactly once. Returns the entries by index.
fn exactly_once(got: &[Got], n: usize, index_of: impl Fn(&Got) -> Option<usize>) -> Vec<Got> {
    let mut by_index: Vec<Option<Got>> = vec![None; n];
    for g in got {
        let i = index_of(g).unwrap_or_else(|| panic!("unexpected entry {g:?}"));
        assert!(i < n, "entry index {i} out of range: {g:?}");
        assert!(by_index[i].is_none(), "line {i} returned twice: {g:?}");
        by_index[i] = Some(g.clone());
    }
    let missing: Vec<usize> = (0..n).filter(|i| by_index[*i].is_none()).collect();
    assert!(
        missing.is_empty(),
        "{} of {n} lines missing, e.g. {:?}; got {} entries",
        missing.len(),
        &missing[..missing.len().min(10)],
        got.len()
    );
    by_index.into_iter().map(Option::unwrap).collect()
}

/// The index `i` of a line that reads `<prefix> line <i>` (and maybe more).
fn line_index(line: &str, prefix: &str) -> Option<usize> {
    let rest = line.strip_prefix(prefix)?.strip_prefix(" line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn labels(pairs: &[(&str, &str)]) -> LabelMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Asserts `sub`'s pairs are all in `map`.
fn contains_all(map: &LabelMap, sub: &LabelMap, what: &str) {
    for (k, v) in sub {
        assert_eq!(map.get(k), Some(v), "{what}: {k} in {map:?}");
    }
}

fn required_env(name: &str, what: &str) -> PathBuf {
    let value = std::env::var_os(name).unwrap_or_else(|| {
        panic!(
            "{name} is not set: {what} is needed. Run the README's test command \
             (scripts/test), which installs it into .test-deps/ and sets {name}."
        )
    });
    let path = PathBuf::from(value);
    assert!(path.exists(), "{name}={} does not exist", path.display());
    path
}

/// Runs a client script; fails the test unless it exits 0 with a clean
/// stderr. Returns its JSON summary.
fn run_client(mut cmd: Command, what: &str) -> serde_json::Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    // Clients report failed pushes on stderr and carry on (pino-loki does so
    // from its worker thread), so a clean run has nothing there.
    let noise: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("DeprecationWarning"))
        .collect();
    assert!(noise.is_empty(), "{what} wrote to stderr:\n{stderr}");
    let summary = stdout.lines().last().unwrap_or("");
    serde_json::from_str(summary).unwrap_or_else(|e| panic!("{what} summary {summary:?}: {e}"))
}

fn node_client(
    l: &Lokal,
    client_name: &str,
    tenant: &str,
    run: &str,
    n: usize,
) -> serde_json::Value {
    let modules = required_env(
        "LOKAL_TEST_NODE_MODULES",
        "node_modules with pino-loki and winston-loki (tests/clients/node/package.json)",
    );
    for pkg in ["pino", "pino-loki", "winston", "winston-loki", "snappy"] {
        assert!(
            modules.join(pkg).join("package.json").exists(),
            "{pkg} is missing from {}",
            modules.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node/push.cjs");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args([client_name, &l.base, tenant, run, &n.to_string()])
        .env("NODE_PATH", &modules);
    run_client(cmd, &format!("node push.cjs {client_name}"))
}

fn python_client(
    l: &Lokal,
    client_name: &str,
    tenant: &str,
    run: &str,
    n: usize,
) -> serde_json::Value {
    let python = required_env(
        "LOKAL_TEST_PYTHON",
        "a Python with the Loki logging handlers (tests/clients/python/requirements.txt)",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python/push.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args([client_name, &l.base, tenant, run, &n.to_string()]);
    run_client(cmd, &format!("python push.py {client_name}"))
}

/// A lokal that serves a single tenant (`auth_enabled: false`), for clients
/// that cannot send `X-Scope-OrgID`.
fn single_tenant() -> (Lokal, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config =
        common::test_config(&data, "").replace("auth_enabled: true", "auth_enabled: false");
    (Lokal::start_in(&data, &config), dir)
}

/// The tenant sees nothing of another tenant's run.
fn invisible_to_other_tenant(l: &Lokal, query: &str) {
    let other = read_back(l, Some("someone-else"), query);
    assert!(other.is_empty(), "another tenant sees {other:?}");
}

// ---------------------------------------------------------------------------
// tracing-loki (Rust)

#[test]
fn tracing_loki_protobuf_snappy() {
    use tracing_subscriber::layer::SubscriberExt;

    let l = Lokal::start("");
    let (tenant, run, n) = ("rust-tenant", run_id("tracing"), 200usize);
    let url = tracing_loki::url::Url::parse(&format!("{}/", l.base)).unwrap();
    let (layer, controller, task) = tracing_loki::builder()
        .label("app", "rust-app")
        .unwrap()
        .label("run", &run)
        .unwrap()
        .extra_field("pid", std::process::id().to_string())
        .unwrap()
        .http_header("X-Scope-OrgID", tenant)
        .unwrap()
        .build_controller_url(url)
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sender = rt.spawn(task);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..n {
            // tracing-loki drops events whose target starts with `tracing_loki`.
            if i % 4 == 0 {
                tracing::warn!(target: "app", seq = i, "tracing-loki {run} line {i}");
            } else {
                tracing::info!(target: "app", seq = i, "tracing-loki {run} line {i}");
            }
        }
    });
    rt.block_on(async {
        controller.shutdown().await;
        tokio::time::timeout(Duration::from_secs(60), sender)
            .await
            .expect("tracing-loki did not deliver its events in 60 s")
            .unwrap();
    });

    let got = read_back(&l, Some(tenant), &format!(r#"{{run="{run}"}}"#));
    let prefix = format!("tracing-loki {run}");
    let by_index = exactly_once(&got, n, |g| {
        let v: serde_json::Value = serde_json::from_str(&g.line).ok()?;
        line_index(v["message"].as_str()?, &prefix)
    });
    for (i, g) in by_index.iter().enumerate() {
        let level = if i % 4 == 0 { "warn" } else { "info" };
        assert_eq!(
            g.stream,
            labels(&[
                ("app", "rust-app"),
                ("level", level),
                ("run", &run),
                ("service_name", "rust-app"),
            ]),
            "line {i}"
        );
        let v: serde_json::Value = serde_json::from_str(&g.line).unwrap();
        assert_eq!(v["seq"], serde_json::json!(i), "line {i}: {}", g.line);
        assert_eq!(v["_target"], "app");
        assert_eq!(v["pid"], std::process::id().to_string());
        assert_eq!(
            g.metadata.get("detected_level").map(String::as_str),
            Some(level)
        );
    }
    invisible_to_other_tenant(&l, &format!(r#"{{run="{run}"}}"#));
}

// ---------------------------------------------------------------------------
// npm: pino-loki and winston-loki

#[test]
fn pino_loki_json_with_structured_metadata() {
    let l = Lokal::start("");
    let (tenant, run, n) = ("pino-tenant", run_id("pino"), 100usize);
    let summary = node_client(&l, "pino", tenant, &run, n);
    assert_eq!(summary["mode"], "json");

    let got = read_back(
        &l,
        Some(tenant),
        &format!(r#"{{app="pino-app",run="{run}"}}"#),
    );
    let prefix = format!("pino {run}");
    let by_index = exactly_once(&got, n, |g| {
        let v: serde_json::Value = serde_json::from_str(&g.line).ok()?;
        line_index(v["msg"].as_str()?, &prefix)
    });
    for (i, g) in by_index.iter().enumerate() {
        let (level, pino_level) = if i % 3 == 0 {
            ("warning", 40)
        } else {
            ("info", 30)
        };
        contains_all(
            &g.stream,
            &labels(&[
                ("app", "pino-app"),
                ("run", &run),
                ("level", level),
                ("service_name", "pino-app"),
            ]),
            "pino stream labels",
        );
        assert!(g.stream.contains_key("hostname"), "{:?}", g.stream);
        assert_eq!(g.stream.len(), 5, "{:?}", g.stream);
        // The `meta` object is sent as structured metadata, values as strings.
        contains_all(
            &g.metadata,
            &labels(&[("seq", &i.to_string()), ("user", &format!("u{}", i % 4))]),
            "pino structured metadata",
        );
        let v: serde_json::Value = serde_json::from_str(&g.line).unwrap();
        assert_eq!(v["level"], pino_level);
        // Timestamps are pino's milliseconds.
        assert_eq!(v["time"].as_i64().unwrap() * 1_000_000, g.ts, "line {i}");
    }
    invisible_to_other_tenant(&l, &format!(r#"{{run="{run}"}}"#));
}

fn winston(json: bool) {
    let l = Lokal::start("");
    let client_name = if json {
        "winston-json"
    } else {
        "winston-protobuf"
    };
    let (tenant, run, n) = ("winston-tenant", run_id(client_name), 100usize);
    let summary = node_client(&l, client_name, tenant, &run, n);
    // winston-loki falls back to JSON silently without the native snappy.
    assert_eq!(summary["mode"], if json { "json" } else { "protobuf" });

    let got = read_back(
        &l,
        Some(tenant),
        &format!(r#"{{app="winston-app",run="{run}"}}"#),
    );
    let prefix = format!("{client_name} {run}");
    let by_index = exactly_once(&got, n, |g| line_index(&g.line, &prefix));
    let component = if json { "json" } else { "protobuf" };
    for (i, g) in by_index.iter().enumerate() {
        let level = if i % 2 == 0 { "info" } else { "error" };
        assert_eq!(
            g.stream,
            labels(&[
                ("app", "winston-app"),
                ("component", component),
                ("level", level),
                ("run", &run),
                ("service_name", "winston-app"),
            ]),
            "line {i}"
        );
        // The line is `message {meta as JSON}`.
        let meta = g.line.strip_prefix(&format!("{prefix} line {i} ")).unwrap();
        let meta: serde_json::Value = serde_json::from_str(meta).unwrap();
        assert_eq!(meta["seq"], i.to_string());
        if json {
            // JSON mode also sends the meta as structured metadata. Its
            // `level` collides with the stream label, so the query shows it
            // as `level_extracted`, as Loki does.
            contains_all(
                &g.metadata,
                &labels(&[("level_extracted", level), ("seq", &i.to_string())]),
                "winston structured metadata",
            );
        } else {
            assert!(!g.metadata.contains_key("seq"), "{:?}", g.metadata);
        }
    }
    invisible_to_other_tenant(&l, &format!(r#"{{run="{run}"}}"#));
}

#[test]
fn winston_loki_protobuf_unsorted_labels() {
    winston(false);
}

#[test]
fn winston_loki_json_with_structured_metadata() {
    winston(true);
}

// ---------------------------------------------------------------------------
// PyPI: python-logging-loki and loki-logger-handler

fn python_logging_loki_read_back(l: &Lokal, client_name: &str, run: &str, n: usize) {
    let got = read_back(l, None, &format!(r#"{{run="{run}"}}"#));
    let prefix = format!("{client_name} {run}");
    let by_index = exactly_once(&got, n, |g| line_index(&g.line, &prefix));
    for (i, g) in by_index.iter().enumerate() {
        let (severity, color) = if i % 2 == 1 {
            ("warning", "c1")
        } else {
            ("info", "c0")
        };
        assert_eq!(
            g.stream,
            labels(&[
                ("app", "py-app"),
                ("color", color),
                ("logger", &format!("lokal.test.{client_name}")),
                ("run", run),
                ("service_name", "py-app"),
                ("severity", severity),
            ]),
            "line {i}"
        );
        // Records are stamped when logged: within the last few minutes.
        assert!(
            (now_ns() - g.ts).abs() < 300_000_000_000,
            "line {i} at {}",
            g.ts
        );
    }
}

#[test]
fn python_logging_loki_v1_and_legacy() {
    let (l, _dir) = single_tenant();
    let n = 20;
    // v1 JSON on /loki/api/v1/push.
    let run = run_id("py-v1");
    python_client(&l, "logging-loki-v1", "fake", &run, n);
    python_logging_loki_read_back(&l, "logging-loki-v1", &run, n);
    // The legacy v0 body (labels string, RFC 3339 timestamps) on /api/prom/push.
    let run = run_id("py-legacy");
    python_client(&l, "logging-loki-legacy", "fake", &run, n);
    python_logging_loki_read_back(&l, "logging-loki-legacy", &run, n);
}

#[test]
fn python_logging_loki_default_sends_legacy_body_to_v1_like_loki() {
    // The handler's default emitter is v0 even when pointed at
    // /loki/api/v1/push. Loki decodes JSON by URL, so the v1 decoder reads
    // the legacy body as one stream without labels or values, skips it
    // (zero entries) and answers 204: the records are silently lost. lokal
    // answers the same (python-logging-loki would raise on anything else).
    let (l, _dir) = single_tenant();
    let run = run_id("py-default");
    let summary = python_client(&l, "logging-loki-default", "fake", &run, 5);
    assert_eq!(summary["deprecation_warnings"], 1, "{summary}");
    let got = read_back(&l, None, r#"{app="py-app"}"#);
    assert!(got.is_empty(), "{got:?}");
    // The same body where Loki reads legacy JSON is stored.
    let run2 = run_id("py-default-prom");
    let now = now_ns();
    let body = legacy_body(&run2, now);
    let (status, text) = post(
        &l,
        None,
        "/api/prom/push",
        Some("application/json"),
        None,
        body.clone(),
    );
    assert_eq!((status, text.as_str()), (204, ""));
    let (status, _) = post(
        &l,
        None,
        "/loki/api/v1/push",
        Some("application/json"),
        None,
        body,
    );
    assert_eq!(status, 204);
    let got = read_back(&l, None, &format!(r#"{{run="{run2}"}}"#));
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn loki_logger_handler_gzip_json_with_unknown_fields() {
    let l = Lokal::start("");
    let (tenant, run, n) = ("py-tenant", run_id("llh"), 50usize);
    python_client(&l, "loki-logger-handler", tenant, &run, n);
    let got = read_back(&l, Some(tenant), &format!(r#"{{run="{run}"}}"#));
    let prefix = format!("loki-logger-handler {run}");
    let by_index = exactly_once(&got, n, |g| {
        let v: serde_json::Value = serde_json::from_str(&g.line).ok()?;
        line_index(v["message"].as_str()?, &prefix)
    });
    for (i, g) in by_index.iter().enumerate() {
        assert_eq!(
            g.stream,
            labels(&[("app", "py-app"), ("run", &run), ("service_name", "py-app")]),
            "line {i}"
        );
        contains_all(
            &g.metadata,
            &labels(&[
                ("seq", &i.to_string()),
                ("source", "loki-logger-handler"),
                ("detected_level", "info"),
            ]),
            "loki-logger-handler structured metadata",
        );
        let v: serde_json::Value = serde_json::from_str(&g.line).unwrap();
        assert_eq!(v["level"], "INFO");
        // The entry's timestamp is the record's (seconds as a float).
        let created = v["timestamp"].as_f64().unwrap();
        assert!(
            ((created * 1e9) as i64 - g.ts).abs() < 1_000_000,
            "line {i}: {created} vs {}",
            g.ts
        );
    }
    invisible_to_other_tenant(&l, &format!(r#"{{run="{run}"}}"#));
}

// ---------------------------------------------------------------------------
// Requests built here: every body format and encoding Loki accepts.

fn post(
    l: &Lokal,
    tenant: Option<&str>,
    path: &str,
    ctype: Option<&str>,
    cenc: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = client().post(l.url(path)).body(body);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    if let Some(c) = ctype {
        req = req.header("Content-Type", c);
    }
    if let Some(e) = cenc {
        req = req.header("Content-Encoding", e);
    }
    let resp = req.send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn legacy_body(run: &str, ts_ns: i64) -> Vec<u8> {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000);
    // RFC 3339 by hand (UTC): days since the epoch to a civil date.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let ts = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    serde_json::json!({"streams": [{
        "labels": format!(r#"{{app="py-app",run="{run}"}}"#),
        "entries": [{"ts": ts, "line": format!("legacy {run} line 0")}],
    }]})
    .to_string()
    .into_bytes()
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One entry a test sends: timestamp, line, structured metadata.
type RawEntry = (i64, String, Vec<(String, String)>);

/// The entries one request carries: per stream (label text as sent, which
/// may be unsorted), lines with structured metadata.
struct Batch {
    run: String,
    base_ts: i64,
    streams: Vec<(String, Vec<RawEntry>)>,
}

impl Batch {
    fn new(run: &str, n_per_stream: usize) -> Batch {
        let base_ts = now_ns() - 60_000_000_000;
        let streams = ["b", "a"]
            .iter()
            .enumerate()
            .map(|(s, part)| {
                // Unsorted on purpose; the second stream has an empty-valued
                // label, which Loki drops.
                let text = if s == 0 {
                    format!(r#"{{run="{run}",part="{part}",app="raw"}}"#)
                } else {
                    format!(r#"{{run="{run}",part="{part}",app="raw",empty=""}}"#)
                };
                let entries = (0..n_per_stream)
                    .map(|i| {
                        // Out of order within the stream, two entries per timestamp.
                        let ts = base_ts + ((i * 7) % n_per_stream / 2) as i64 * 1000 + s as i64;
                        let line = format!(
                            "raw {run} line {} \"quoted\" ünï {{}}",
                            s * n_per_stream + i
                        );
                        let md = if i % 2 == 0 {
                            vec![
                                ("trace_id".to_string(), format!("t{i}")),
                                ("k".to_string(), "v w".to_string()),
                            ]
                        } else {
                            Vec::new()
                        };
                        (ts, line, md)
                    })
                    .collect();
                (text, entries)
            })
            .collect();
        Batch {
            run: run.to_string(),
            base_ts,
            streams,
        }
    }

    fn len(&self) -> usize {
        self.streams.iter().map(|(_, e)| e.len()).sum()
    }

    fn json(&self) -> Vec<u8> {
        let streams: Vec<serde_json::Value> = self
            .streams
            .iter()
            .map(|(text, entries)| {
                let stream: serde_json::Map<String, serde_json::Value> = parse_label_text(text)
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                let values: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|(ts, line, md)| {
                        if md.is_empty() {
                            serde_json::json!([ts.to_string(), line])
                        } else {
                            let md: serde_json::Map<String, serde_json::Value> = md
                                .iter()
                                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                                .collect();
                            serde_json::json!([ts.to_string(), line, md])
                        }
                    })
                    .collect();
                // An unknown field, as loki-logger-handler sends.
                serde_json::json!({"stream": stream, "values": values, "extra": {"x": [1, 2]}})
            })
            .collect();
        serde_json::json!({"streams": streams, "unknown_top": true})
            .to_string()
            .into_bytes()
    }

    fn protobuf(&self) -> Vec<u8> {
        let req = lokal::proto::PushRequest {
            streams: self
                .streams
                .iter()
                .map(|(text, entries)| lokal::proto::StreamAdapter {
                    labels: text.clone().into(),
                    entries: entries
                        .iter()
                        .map(|(ts, line, md)| lokal::proto::EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: ts.div_euclid(1_000_000_000),
                                nanos: ts.rem_euclid(1_000_000_000) as i32,
                            }),
                            line: line.clone().into(),
                            structured_metadata: md
                                .iter()
                                .map(|(k, v)| lokal::proto::LabelPairAdapter {
                                    name: k.clone().into(),
                                    value: v.clone().into(),
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    /// Reads the batch back and checks every entry, its labels and metadata.
    fn check(&self, l: &Lokal, tenant: Option<&str>, what: &str) {
        let got = read_back(l, tenant, &format!(r#"{{run="{}"}}"#, self.run));
        let prefix = format!("raw {}", self.run);
        let by_index = exactly_once(&got, self.len(), |g| line_index(&g.line, &prefix));
        let n = self.len() / self.streams.len();
        for (s, (_, entries)) in self.streams.iter().enumerate() {
            let part = if s == 0 { "b" } else { "a" };
            for (i, (ts, line, md)) in entries.iter().enumerate() {
                let g = &by_index[s * n + i];
                assert_eq!(&g.line, line, "{what}");
                assert_eq!(g.ts, *ts, "{what}: {line}");
                assert_eq!(
                    g.stream,
                    labels(&[
                        ("app", "raw"),
                        ("part", part),
                        ("run", &self.run),
                        ("service_name", "raw")
                    ]),
                    "{what}: {line}"
                );
                let mut expected: LabelMap = md.iter().cloned().collect();
                expected.insert("detected_level".into(), "unknown".into());
                assert_eq!(g.metadata, expected, "{what}: {line}");
            }
        }
        assert!(got.iter().all(|g| g.ts >= self.base_ts), "{what}");
    }
}

/// `{a="1",b="2"}` → pairs (test inputs have no escapes or commas in values).
fn parse_label_text(text: &str) -> Vec<(String, String)> {
    text.trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    // Go's compress/flate: raw deflate, no zlib header.
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_body_format_and_encoding_reads_back() {
    let l = Lokal::start("");
    type Build = fn(&Batch) -> Vec<u8>;
    let cases: Vec<(&str, &str, Option<&str>, Build)> = vec![
        ("json", "application/json", None, |b| b.json()),
        (
            "json-charset",
            "application/json; charset=utf-8",
            None,
            |b| b.json(),
        ),
        ("gzip-json", "application/json", Some("gzip"), |b| {
            gzip(&b.json())
        }),
        ("deflate-json", "application/json", Some("deflate"), |b| {
            deflate(&b.json())
        }),
        ("protobuf", "application/x-protobuf", None, |b| b.protobuf()),
        (
            "protobuf-snappy-header",
            "application/x-protobuf",
            Some("snappy"),
            |b| b.protobuf(),
        ),
        (
            "protobuf-gzip",
            "application/x-protobuf",
            Some("gzip"),
            |b| gzip(&b.protobuf()),
        ),
        (
            "protobuf-other-type",
            "application/octet-stream",
            None,
            |b| b.protobuf(),
        ),
    ];
    for (i, (name, ctype, cenc, build)) in cases.into_iter().enumerate() {
        let tenant = format!("raw-{i}");
        let batch = Batch::new(&run_id(name), 12);
        let (status, text) = post(
            &l,
            Some(&tenant),
            "/loki/api/v1/push",
            Some(ctype),
            cenc,
            build(&batch),
        );
        assert_eq!((status, text.as_str()), (204, ""), "{name}");
        batch.check(&l, Some(&tenant), name);
        invisible_to_other_tenant(&l, &format!(r#"{{run="{}"}}"#, batch.run));
    }
}

#[test]
fn legacy_push_endpoint_reads_back() {
    let l = Lokal::start("");
    let run = run_id("legacy");
    let ts = now_ns() - 5_000_000_000;
    let (status, text) = post(
        &l,
        Some("t-legacy"),
        "/api/prom/push",
        Some("application/json"),
        None,
        legacy_body(&run, ts),
    );
    assert_eq!((status, text.as_str()), (204, ""));
    let got = read_back(&l, Some("t-legacy"), &format!(r#"{{run="{run}"}}"#));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].ts, ts);
    assert_eq!(got[0].line, format!("legacy {run} line 0"));
    assert_eq!(
        got[0].stream,
        labels(&[("app", "py-app"), ("run", &run), ("service_name", "py-app")])
    );
    // gzip works there too.
    let run = run_id("legacy-gz");
    let (status, _) = post(
        &l,
        Some("t-legacy"),
        "/api/prom/push",
        Some("application/json"),
        Some("gzip"),
        gzip(&legacy_body(&run, ts)),
    );
    assert_eq!(status, 204);
    assert_eq!(
        read_back(&l, Some("t-legacy"), &format!(r#"{{run="{run}"}}"#)).len(),
        1
    );
}

#[test]
fn single_tenant_ignores_the_org_id_header() {
    let (l, _dir) = single_tenant();
    let batch = Batch::new(&run_id("single"), 4);
    let (status, _) = post(
        &l,
        Some("whoever"),
        "/loki/api/v1/push",
        Some("application/json"),
        None,
        batch.json(),
    );
    assert_eq!(status, 204);
    let batch2 = Batch::new(&run_id("single-noheader"), 4);
    let (status, _) = post(
        &l,
        None,
        "/loki/api/v1/push",
        Some("application/x-protobuf"),
        None,
        batch2.protobuf(),
    );
    assert_eq!(status, 204);
    // Both land in tenant `fake`, whatever the header says.
    batch.check(&l, None, "header ignored");
    batch.check(&l, Some("another"), "header ignored on read");
    batch2.check(&l, None, "no header");
}
