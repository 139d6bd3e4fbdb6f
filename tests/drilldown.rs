//! Logs Drilldown against the real server: the app's request sequence
//! (drilldown-limits, volume, detected_labels, detected_fields, field
//! values, patterns, metric and log queries) with ISO timestamps and the
//! app's `X-Query-Tags`, on pushed JSON, logfmt and plain lines with
//! structured metadata. Expectations are computed from the pushed data.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Lokal, client, push_json};
use lokal::model::Timestamp;
use serde_json::{Value, json};

const TAGS: &str = "Source=grafana-lokiexplore-app";

/// One pushed entry: ts (ns), line, structured metadata.
type PushedEntry = (i64, String, Vec<(&'static str, String)>);

/// One pushed stream.
struct PushedStream {
    labels: BTreeMap<&'static str, String>,
    entries: Vec<PushedEntry>,
}

impl PushedStream {
    fn service(&self) -> &str {
        &self.labels["app"]
    }
}

fn now_ns() -> i64 {
    Timestamp::now().nanos()
}

fn iso(ns: i64) -> String {
    Timestamp::from_nanos(ns).to_rfc3339_nano()
}

/// The test data, spread over ten minutes before `base + 10 min`.
fn dataset(base: i64) -> Vec<PushedStream> {
    let sec = 1_000_000_000i64;
    let mut out = Vec::new();
    // JSON lines with a nested field and a trace id in structured metadata.
    for pod in ["shop-1", "shop-2"] {
        let entries = (0..24)
            .map(|i| {
                let level = ["info", "warn", "error"][i % 3];
                let status = [200, 201, 404, 500][i % 4];
                let line = json!({
                    "level": level,
                    "status": status,
                    "latency": format!("{}ms", 5 + i),
                    "msg": format!("order {} placed by customer {}", 1000 + i, i % 5),
                    "user": {"id": format!("u{}", i % 6)},
                })
                .to_string();
                let sm = vec![("trace_id", format!("t{:03}", i % 7))];
                (base + (i as i64) * 23 * sec, line, sm)
            })
            .collect();
        out.push(PushedStream {
            labels: BTreeMap::from([
                ("app", "shop".to_string()),
                ("env", "prod".to_string()),
                ("pod", pod.to_string()),
            ]),
            entries,
        });
    }
    // logfmt lines.
    let entries = (0..18)
        .map(|i| {
            let line = format!(
                "level=error msg=\"payment failed\" code={} took={}.5s size={}KB",
                [502, 503][i % 2],
                i % 4,
                10 + i % 3
            );
            (base + (i as i64) * 31 * sec + 7 * sec, line, Vec::new())
        })
        .collect();
    out.push(PushedStream {
        labels: BTreeMap::from([("app", "payments".to_string()), ("env", "prod".to_string())]),
        entries,
    });
    // Plain lines for patterns.
    let entries = (0..30)
        .map(|i| {
            let line = format!(
                "INFO user {} logged in from 10.0.{}.{}",
                100 + i * 3,
                i % 4,
                i
            );
            (base + (i as i64) * 19 * sec + 3 * sec, line, Vec::new())
        })
        .collect();
    out.push(PushedStream {
        labels: BTreeMap::from([("app", "auth".to_string()), ("env", "dev".to_string())]),
        entries,
    });
    // Numeric-only label values: not worth a breakdown.
    for build in ["101", "102", "103"] {
        out.push(PushedStream {
            labels: BTreeMap::from([("app", "batch".to_string()), ("build", build.to_string())]),
            entries: vec![(
                base + 60 * sec,
                format!("batch run {build} done"),
                Vec::new(),
            )],
        });
    }
    out
}

fn push(l: &Lokal, tenant: &str, streams: &[PushedStream]) {
    let body = json!({
        "streams": streams.iter().map(|s| json!({
            "stream": s.labels,
            "values": s.entries.iter().map(|(ts, line, sm)| {
                let sm: BTreeMap<&str, &str> = sm.iter().map(|(k, v)| (*k, v.as_str())).collect();
                json!([ts.to_string(), line, sm])
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    });
    push_json(l, tenant, &body);
}

fn get(l: &Lokal, tenant: Option<&str>, path: &str, params: &[(&str, &str)]) -> (u16, String) {
    let mut req = client()
        .get(l.url(path))
        .query(params)
        .header("X-Query-Tags", TAGS);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn get_json(l: &Lokal, tenant: &str, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) = get(l, Some(tenant), path, params);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Distinct values of each label over streams of `service` (all when
/// `None`), with `service_name` discovered from `app` as at ingest.
fn label_values(
    data: &[PushedStream],
    service: Option<&str>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in data
        .iter()
        .filter(|s| service.is_none_or(|x| s.service() == x))
    {
        for (k, v) in &s.labels {
            m.entry(k.to_string()).or_default().insert(v.clone());
        }
        m.entry("service_name".into())
            .or_default()
            .insert(s.service().to_string());
    }
    m
}

fn params(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn all_numeric(vals: &BTreeSet<String>) -> bool {
    vals.iter().all(|v| v.parse::<f64>().is_ok())
}

fn detected_labels_map(v: &Value) -> BTreeMap<String, u64> {
    v["detectedLabels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["label"].as_str().unwrap().to_string(),
                d["cardinality"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn fields_by_name(v: &Value) -> BTreeMap<String, Value> {
    v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["label"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

/// Distinct values of a JSON field over the JSON lines of `data`.
fn json_values(data: &[PushedStream], service: &str, path: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in data.iter().filter(|s| s.service() == service) {
        for (_, line, _) in &s.entries {
            let mut v: Value = serde_json::from_str(line).unwrap();
            for p in path {
                v = v[p].clone();
            }
            out.insert(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        }
    }
    out
}

/// Distinct values of a logfmt key over the lines of `service`.
fn logfmt_values(data: &[PushedStream], service: &str, key: &str) -> BTreeSet<String> {
    let prefix = format!("{key}=");
    data.iter()
        .filter(|s| s.service() == service)
        .flat_map(|s| s.entries.iter())
        .filter_map(|(_, line, _)| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_string))
        })
        .collect()
}

#[test]
fn drilldown_request_sequence() {
    let l = Lokal::start("");
    let base = now_ns() - 15 * 60 * 1_000_000_000;
    let data = dataset(base);
    push(&l, "t1", &data);
    let other = vec![PushedStream {
        labels: BTreeMap::from([("app", "secret".to_string()), ("team", "red".to_string())]),
        entries: vec![(
            base,
            "INFO secret thing happened here".to_string(),
            Vec::new(),
        )],
    }];
    push(&l, "t2", &other);
    let start = iso(base - 60_000_000_000);
    let end = iso(now_ns() + 60_000_000_000);
    let range: [(&str, &str); 2] = [("start", &start), ("end", &end)];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        range
            .iter()
            .chain(extra.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    // 1. drilldown-limits: the limits the app reads, and 401 without a tenant.
    let limits = get_json(&l, "t1", "/loki/api/v1/drilldown-limits", &[]);
    assert_eq!(limits["limits"]["max_entries_limit_per_query"], 5000);
    assert_eq!(limits["limits"]["retention_period"], "0s");
    assert_eq!(limits["limits"]["max_query_length"], "30d1h");
    assert_eq!(limits["limits"]["discover_log_levels"], true);
    assert!(limits["pattern_ingester_enabled"].is_boolean());
    assert!(limits["version"].is_string());
    let (status, _) = get(&l, None, "/loki/api/v1/drilldown-limits", &[]);
    assert_eq!(status, 401);

    // 2. Service selection: volume by service_name.
    let p = with(&[("query", "{service_name=~\".+\"}"), ("limit", "5000")]);
    let vol = get_json(&l, "t1", "/loki/api/v1/index/volume", &params(&p));
    let services: BTreeSet<String> = vol["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["service_name"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = data.iter().map(|s| s.service().to_string()).collect();
    assert_eq!(services, want);

    // 3. detected_labels: every stream (LD sends an empty query), then one service.
    let p = with(&[("query", "")]);
    let got = detected_labels_map(&get_json(
        &l,
        "t1",
        "/loki/api/v1/detected_labels",
        &params(&p),
    ));
    let all = label_values(&data, None);
    let want: BTreeMap<String, u64> = all
        .iter()
        .filter(|(k, v)| ["pod"].contains(&k.as_str()) || !all_numeric(v))
        .map(|(k, v)| (k.clone(), v.len() as u64))
        .collect();
    assert_eq!(got, want);
    assert!(
        !got.contains_key("build"),
        "numeric-only labels are dropped"
    );
    assert!(!got.contains_key("team"), "tenant isolation");
    let p = with(&[("query", "{service_name=\"shop\"}")]);
    let got = detected_labels_map(&get_json(
        &l,
        "t1",
        "/loki/api/v1/detected_labels",
        &params(&p),
    ));
    let want: BTreeMap<String, u64> = label_values(&data, Some("shop"))
        .into_iter()
        .map(|(k, v)| (k, v.len() as u64))
        .collect();
    assert_eq!(got, want);

    // 4. detected_fields of the JSON service: parsed fields with types,
    // cardinalities, parsers and JSON paths; metadata with parsers null.
    let p = with(&[("query", "{service_name=\"shop\"}")]);
    let df = get_json(&l, "t1", "/loki/api/v1/detected_fields", &params(&p));
    assert_eq!(df["limit"], 1000);
    let fields = fields_by_name(&df);
    let check = |name: &str, ty: &str, card: usize, parsers: Value| {
        let f = fields
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {df}"));
        assert_eq!(f["type"], ty, "{name}: {f}");
        assert_eq!(f["cardinality"], card as u64, "{name}: {f}");
        assert_eq!(f["parsers"], parsers, "{name}: {f}");
    };
    check(
        "status",
        "int",
        json_values(&data, "shop", &["status"]).len(),
        json!(["json"]),
    );
    check(
        "latency",
        "duration",
        json_values(&data, "shop", &["latency"]).len(),
        json!(["json"]),
    );
    check(
        "user_id",
        "string",
        json_values(&data, "shop", &["user", "id"]).len(),
        json!(["json"]),
    );
    assert_eq!(fields["user_id"]["jsonPath"], json!(["user", "id"]));
    let levels = json_values(&data, "shop", &["level"]);
    check("detected_level", "string", levels.len(), Value::Null);
    let traces: BTreeSet<&String> = data
        .iter()
        .filter(|s| s.service() == "shop")
        .flat_map(|s| s.entries.iter().flat_map(|e| e.2.iter().map(|(_, v)| v)))
        .collect();
    check("trace_id", "string", traces.len(), Value::Null);

    // The logfmt service.
    let p = with(&[("query", "{service_name=\"payments\"}")]);
    let df = get_json(&l, "t1", "/loki/api/v1/detected_fields", &params(&p));
    let fields = fields_by_name(&df);
    for (name, ty) in [("code", "int"), ("took", "duration"), ("size", "bytes")] {
        let f = &fields[name];
        assert_eq!(f["type"], ty, "{name}: {f}");
        assert_eq!(
            f["cardinality"],
            logfmt_values(&data, "payments", name).len() as u64
        );
        assert_eq!(f["parsers"], json!(["logfmt"]));
        assert!(f.get("jsonPath").is_none(), "{f}");
    }

    // A query with the app's own pipeline still yields the fields.
    let p = with(&[(
        "query",
        "{service_name=\"shop\"} | json | logfmt | drop __error__, __error_details__",
    )]);
    let df = get_json(&l, "t1", "/loki/api/v1/detected_fields", &params(&p));
    assert!(fields_by_name(&df).contains_key("status"), "{df}");

    // 5. Field values.
    let p = with(&[("query", "{service_name=\"shop\"}")]);
    let vals = get_json(
        &l,
        "t1",
        "/loki/api/v1/detected_field/status/values",
        &params(&p),
    );
    let got: BTreeSet<String> = vals["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, json_values(&data, "shop", &["status"]));
    assert_eq!(vals["limit"], 1000);

    // 6. Patterns of the plain-text service, bucketed by the app's step.
    let p = with(&[("query", "{service_name=\"auth\"}"), ("step", "1m")]);
    let pats = get_json(&l, "t1", "/loki/api/v1/patterns", &params(&p));
    assert_eq!(pats["status"], "success");
    let series = pats["data"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{pats}");
    assert_eq!(series[0]["pattern"], "INFO user <_> logged in from <_>");
    assert_eq!(series[0]["level"], "info");
    let auth = data.iter().find(|s| s.service() == "auth").unwrap();
    let mut want: BTreeMap<i64, i64> = BTreeMap::new();
    for (ts, _, _) in &auth.entries {
        let ten = ts / 1_000_000 / 10_000 * 10_000;
        *want.entry(ten / 60_000 * 60).or_insert(0) += 1;
    }
    let (first, last) = (
        *want.keys().next().unwrap(),
        *want.keys().next_back().unwrap(),
    );
    let want: Vec<(i64, i64)> = (first..=last)
        .step_by(60)
        .map(|t| (t, want.get(&t).copied().unwrap_or(0)))
        .collect();
    let got: Vec<(i64, i64)> = series[0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_i64().unwrap(), s[1].as_i64().unwrap()))
        .collect();
    assert_eq!(got, want);

    // JSON lines cluster on their message field; per level.
    let p = with(&[("query", "{service_name=\"shop\"}"), ("step", "30s")]);
    let pats = get_json(&l, "t1", "/loki/api/v1/patterns", &params(&p));
    let series = pats["data"].as_array().unwrap();
    let levels_seen: BTreeSet<&str> = series
        .iter()
        .map(|s| s["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels_seen,
        levels.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let total: i64 = series
        .iter()
        .flat_map(|s| s["samples"].as_array().unwrap().iter())
        .map(|s| s[1].as_i64().unwrap())
        .sum();
    let shop_lines: usize = data
        .iter()
        .filter(|s| s.service() == "shop")
        .map(|s| s.entries.len())
        .sum();
    assert_eq!(total as usize, shop_lines);
    assert!(
        series
            .iter()
            .all(|s| s["pattern"] == "<_>order <_> placed by customer <_>"),
        "{pats}"
    );

    // 7. The app's metric and log queries.
    let p = with(&[
        (
            "query",
            "sum by (detected_level) (count_over_time({service_name=\"shop\"} | drop __error__ [1m]))",
        ),
        ("step", "60000ms"),
    ]);
    let m = get_json(&l, "t1", "/loki/api/v1/query_range", &params(&p));
    let counted: f64 = m["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["values"].as_array().unwrap().iter())
        .map(|v| v[1].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(counted as usize, shop_lines);
    let p = with(&[
        ("query", "{service_name=\"payments\"}"),
        ("limit", "1000"),
        ("direction", "backward"),
    ]);
    let q = get_json(&l, "t1", "/loki/api/v1/query_range", &params(&p));
    let n: usize = q["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        n,
        data.iter()
            .find(|s| s.service() == "payments")
            .unwrap()
            .entries
            .len()
    );

    // Tenant isolation: t2 sees only its own streams.
    let p = with(&[("query", "")]);
    let got = detected_labels_map(&get_json(
        &l,
        "t2",
        "/loki/api/v1/detected_labels",
        &params(&p),
    ));
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        label_values(&other, None).into_keys().collect()
    );
    let p = with(&[("query", "{service_name=\"auth\"}"), ("step", "1m")]);
    let pats = get_json(&l, "t2", "/loki/api/v1/patterns", &params(&p));
    assert_eq!(pats["data"], json!([]));

    // Empty answers have Loki's shapes.
    let p = with(&[("query", "{service_name=\"nope\"}")]);
    for path in [
        "/loki/api/v1/detected_labels",
        "/loki/api/v1/detected_fields",
        "/loki/api/v1/detected_field/status/values",
    ] {
        assert_eq!(get_json(&l, "t1", path, &params(&p)), json!({}), "{path}");
    }

    // Bad parameters are 400s with a plain-text reason.
    // (path, parameters, message excerpt)
    type BadCase = (&'static str, Vec<(String, String)>, &'static str);
    let bad: Vec<BadCase> = vec![
        (
            "/loki/api/v1/detected_fields",
            with(&[
                ("query", "{service_name=\"shop\"}"),
                ("line_limit", "100000"),
            ]),
            "max entries limit per query exceeded",
        ),
        (
            "/loki/api/v1/detected_fields",
            with(&[("query", "{service_name=\"shop\"}"), ("line_limit", "-1")]),
            "must be a positive value",
        ),
        (
            "/loki/api/v1/detected_fields",
            with(&[("query", "count_over_time({a=\"b\"}[1m])")]),
            "log selector",
        ),
        (
            "/loki/api/v1/detected_fields",
            with(&[("query", "{service_name=")]),
            "parse error",
        ),
        (
            "/loki/api/v1/patterns",
            with(&[("query", "{service_name=\"auth\"}"), ("step", "0")]),
            "zero or negative query resolution step",
        ),
        (
            "/loki/api/v1/detected_labels",
            vec![
                ("query".into(), String::new()),
                ("start".into(), end.clone()),
                ("end".into(), start.clone()),
            ],
            "end timestamp must not be before",
        ),
    ];
    for (path, p, msg) in bad {
        let (status, body) = get(&l, Some("t1"), path, &params(&p));
        assert_eq!(status, 400, "{path} {p:?}: {body}");
        assert!(body.contains(msg), "{path} {p:?}: {body}");
    }
}

#[test]
fn discovery_follows_discover_log_levels_and_discover_service_name() {
    let l = Lokal::start("  discover_log_levels: false\n  discover_service_name: [foo]\n");
    let now = now_ns();
    let body = json!({"streams": [
        {"stream": {"foo": "from-foo", "app": "an-app"},
         "values": [[(now - 2_000_000_000).to_string(), "level=error boom"]]},
        {"stream": {"app": "only-app"},
         "values": [[(now - 1_000_000_000).to_string(), "level=warn hmm"]]},
    ]});
    push_json(&l, "t1", &body);

    let limits = get_json(&l, "t1", "/loki/api/v1/drilldown-limits", &[]);
    assert_eq!(limits["limits"]["discover_log_levels"], false, "{limits}");
    assert_eq!(
        limits["limits"]["discover_service_name"],
        json!(["foo"]),
        "{limits}"
    );

    let (start, end) = ((now - 60_000_000_000).to_string(), (now + 1).to_string());
    let q = get_json(
        &l,
        "t1",
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app=~".+"}"#),
            ("start", &start),
            ("end", &end),
            ("direction", "forward"),
        ],
    );
    let streams: Vec<&Value> = q["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["stream"])
        .collect();
    // service_name from `foo` only (not from `app`, a default source that
    // the setting replaced); no detected_level anywhere.
    assert_eq!(
        streams,
        [
            &json!({"app": "an-app", "foo": "from-foo", "service_name": "from-foo"}),
            &json!({"app": "only-app", "service_name": "unknown_service"}),
        ],
        "{q}"
    );
    let labels = get_json(
        &l,
        "t1",
        "/loki/api/v1/labels",
        &[("start", &start), ("end", &end)],
    );
    assert_eq!(
        labels["data"],
        json!(["app", "foo", "service_name"]),
        "{labels}"
    );

    // With the defaults, the same push gets both.
    let l = Lokal::start("");
    push_json(&l, "t1", &body);
    let q = get_json(
        &l,
        "t1",
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app=~".+"}"#),
            ("start", &start),
            ("end", &end),
            ("direction", "forward"),
        ],
    );
    let streams: Vec<&Value> = q["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["stream"])
        .collect();
    assert_eq!(
        streams,
        [
            &json!({"app": "an-app", "detected_level": "error", "foo": "from-foo", "service_name": "an-app"}),
            &json!({"app": "only-app", "detected_level": "warn", "service_name": "only-app"}),
        ],
        "{q}"
    );
}
