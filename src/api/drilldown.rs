//! The Logs Drilldown endpoints: `detected_labels`, `detected_fields`,
//! `detected_field/{name}/values`, `patterns` and `drilldown-limits`, with
//! Loki's parameters, shapes and empty answers.
//!
//! Owns: parameter parsing of these endpoints, running their reads (the
//! index for labels; a categorize-labels `query_range` for fields; a
//! streaming read through Drain for patterns) and their JSON.
//!
//! Does not own: field detection rules (`logql::detected`), Drain
//! (`pattern`), query evaluation.
//!
//! Invariants: patterns read at most [`PATTERN_MAX_LINES`] lines per query
//! (newest first per stream), so their cost is bounded; lokal computes
//! patterns at query time where Loki asks its pattern ingesters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::params::{self, Params};
use super::query::{request_params, selector_matchers};
use super::{ApiError, SharedState, json_response};
use crate::limits::Limits;
use crate::logql::detected::{
    DetectedField, FieldDetector, FieldValues, STATIC_LABELS, should_reject_label,
};
use crate::logql::eval::{self, EntryVisitor, QueryParams, VisitParams};
use crate::logql::log::LabelsResult;
use crate::logql::result::{QueryData, StreamResult};
use crate::logql::syntax::{self, golang::format_prom_duration};
use crate::model::{Direction, TenantId, Timestamp};
use crate::pattern::{DrainConfig, PatternMerger, PatternSeries, StreamPatterns, UNKNOWN_LEVEL};

/// Lines a patterns query trains Drain on, at most.
pub const PATTERN_MAX_LINES: usize = 100_000;

/// `line_limit` of detected fields when absent (Loki's default).
const DEFAULT_LINE_LIMIT: usize = 100;
/// `limit` of detected fields and values when absent.
const DEFAULT_FIELD_LIMIT: usize = 1000;

fn checked_bounds(p: &Params, limits: &Limits) -> Result<(Timestamp, Timestamp), ApiError> {
    let (start, end) = params::bounds(p, Timestamp::now())?;
    if end < start {
        return Err(ApiError::bad_request(
            "end timestamp must not be before or equal to start time",
        ));
    }
    let start = eval::check_range(limits, start, end)?;
    Ok((start, end))
}

/// `GET /loki/api/v1/detected_labels`: the stream labels of matching
/// streams with their cardinality, from the index; labels whose values are
/// all numbers or UUIDs are left out unless they are well-known ones.
pub async fn detected_labels(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let p = request_params(q, &headers, &body);
    let matchers = match p.get("query") {
        Some(q) => selector_matchers(q)?,
        None => Vec::new(),
    };
    let limits = st.overrides.get(tenant.as_str());
    let (start, end) = checked_bounds(&p, &limits)?;
    let series = st
        .engine
        .store()
        .series(&tenant, &matchers, start, end.saturating_add_nanos(1))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for labels in &series {
        for l in labels.iter() {
            values.entry(&l.name).or_default().insert(&l.value);
        }
    }
    let detected: Vec<Value> = values
        .iter()
        .filter(|(name, vals)| {
            let vals: Vec<&str> = vals.iter().copied().collect();
            (STATIC_LABELS.contains(name) && !vals.is_empty()) || !should_reject_label(&vals)
        })
        .map(|(name, vals)| json!({"label": name, "cardinality": vals.len()}))
        .collect();
    let body = if detected.is_empty() {
        json!({})
    } else {
        json!({ "detectedLabels": detected })
    };
    Ok(json_response(StatusCode::OK, body.to_string().into_bytes()))
}

/// The request of `detected_fields` and `detected_field/{name}/values`.
struct FieldsRequest {
    query: String,
    start: Timestamp,
    end: Timestamp,
    line_limit: usize,
    limit: usize,
    step: i64,
}

fn positive(p: &Params, keys: &[&str], default: usize) -> Result<usize, ApiError> {
    let Some((key, v)) = keys.iter().find_map(|k| p.get(k).map(|v| (*k, v))) else {
        return Ok(default);
    };
    match v.parse::<i64>() {
        Ok(0) => Ok(default),
        Ok(n) if n > 0 => Ok(n as usize),
        Ok(_) => Err(ApiError::bad_request(format!(
            "{key} must be a positive value"
        ))),
        Err(_) => Err(ApiError::bad_request(format!(
            "strconv.Atoi: parsing \"{v}\": invalid syntax"
        ))),
    }
}

fn fields_request(p: &Params, limits: &Limits) -> Result<FieldsRequest, ApiError> {
    let query = p.get("query").unwrap_or("").to_string();
    match syntax::parse(&query) {
        Ok(e) if e.is_log() => {}
        Ok(_) => {
            return Err(ApiError::bad_request(
                "only log selectors are supported for field detection",
            ));
        }
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    }
    let (start, end) = checked_bounds(p, limits)?;
    let step = match p.get("step") {
        Some(s) => params::parse_seconds_or_duration(s)?,
        None => std::time::Duration::from_secs(
            ((end.nanos_since(start) as f64 / 1e9 / 250.0).floor() as u64).max(1),
        ),
    };
    Ok(FieldsRequest {
        query,
        start,
        end,
        line_limit: positive(p, &["line_limit"], DEFAULT_LINE_LIMIT)?,
        limit: positive(p, &["limit", "field_limit"], DEFAULT_FIELD_LIMIT)?,
        step: i64::try_from(step.as_nanos()).unwrap_or(i64::MAX),
    })
}

/// Runs the fields query as Loki does: backward, `line_limit` entries,
/// categorize-labels.
async fn field_streams(
    st: &SharedState,
    tenant: TenantId,
    headers: &HeaderMap,
    r: &FieldsRequest,
) -> Result<Vec<StreamResult>, ApiError> {
    let resp = st
        .engine
        .execute(QueryParams {
            tenant,
            query: r.query.clone(),
            start: r.start,
            end: r.end,
            step: r.step,
            interval: 0,
            limit: r.line_limit,
            direction: Direction::Backward,
            instant: false,
            categorize: true,
            drilldown: super::query::drilldown(headers),
        })
        .await?;
    match resp.data {
        QueryData::Streams(s) => Ok(s),
        _ => Err(ApiError::bad_request(
            "only log selectors are supported for field detection",
        )),
    }
}

fn field_json(f: &DetectedField) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("label".into(), json!(f.label));
    o.insert("type".into(), json!(f.field_type.as_str()));
    o.insert("cardinality".into(), json!(f.cardinality));
    o.insert("parsers".into(), json!(f.parsers));
    if let Some(path) = &f.json_path {
        o.insert("jsonPath".into(), json!(path));
    }
    Value::Object(o)
}

/// `GET /loki/api/v1/detected_fields`.
pub async fn detected_fields(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let p = request_params(q, &headers, &body);
    let r = fields_request(&p, &st.overrides.get(tenant.as_str()))?;
    let streams = field_streams(&st, tenant, &headers, &r).await?;
    let limit = r.limit;
    let fields = tokio::task::spawn_blocking(move || {
        let mut d = FieldDetector::new(limit);
        for s in &streams {
            d.add_stream(s);
        }
        d.finish()
    })
    .await
    .map_err(|e| ApiError::internal(format!("field detection failed: {e}")))?;
    // Loki's omitempty: `{}` when nothing was found, `limit` only with fields.
    let body = if fields.is_empty() {
        json!({})
    } else {
        json!({
            "fields": fields.iter().map(field_json).collect::<Vec<_>>(),
            "limit": limit,
        })
    };
    Ok(json_response(StatusCode::OK, body.to_string().into_bytes()))
}

/// `GET /loki/api/v1/detected_field/{name}/values`.
pub async fn detected_field_values(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let p = request_params(q, &headers, &body);
    let r = fields_request(&p, &st.overrides.get(tenant.as_str()))?;
    let streams = field_streams(&st, tenant, &headers, &r).await?;
    let limit = r.limit;
    let values = tokio::task::spawn_blocking(move || {
        let mut v = FieldValues::new(&name, limit);
        for s in &streams {
            v.add_stream(s);
        }
        v.finish()
    })
    .await
    .map_err(|e| ApiError::internal(format!("field detection failed: {e}")))?;
    let body = if values.is_empty() {
        json!({})
    } else {
        json!({ "values": values, "limit": limit })
    };
    Ok(json_response(StatusCode::OK, body.to_string().into_bytes()))
}

/// Trains one stream's Drains; stops when the query's shared line budget
/// is spent.
struct PatternVisitor {
    patterns: StreamPatterns,
    budget: Arc<AtomicUsize>,
}

impl EntryVisitor for PatternVisitor {
    fn visit(&mut self, ts: Timestamp, line: &[u8], labels: &LabelsResult) -> bool {
        let taken = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1));
        if taken.is_err() {
            return false;
        }
        let level = labels
            .structured_metadata()
            .get(crate::ingest::detect::DETECTED_LEVEL)
            .unwrap_or(UNKNOWN_LEVEL);
        if level.bytes().any(|b| b.is_ascii_uppercase()) {
            self.patterns.train(&level.to_ascii_lowercase(), line, ts);
        } else {
            self.patterns.train(level, line, ts);
        }
        true
    }
}

/// A JSON string as jsoniter's `WriteStringWithHTMLEscaped` writes it:
/// `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026` (so `<_>` is
/// `\u003c_\u003e` on the wire, as in Loki's answer).
fn write_html_escaped(out: &mut Vec<u8>, s: &str) {
    let mut quoted = Vec::with_capacity(s.len() + 2);
    let _ = serde_json::to_writer(&mut quoted, s);
    for b in quoted {
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            _ => out.push(b),
        }
    }
}

fn patterns_json(series: &[PatternSeries]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + series.len() * 128);
    out.extend_from_slice(b"{\"status\":\"success\",\"data\":[");
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"pattern\":");
        write_html_escaped(&mut out, &s.pattern);
        out.extend_from_slice(b",\"level\":");
        let _ = serde_json::to_writer(&mut out, &s.level);
        out.extend_from_slice(b",\"samples\":[");
        for (j, (ms, n)) in s.samples.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("[{},{n}]", ms.div_euclid(1000)).as_bytes());
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// `GET /loki/api/v1/patterns`: Drain over the selected lines (newest
/// first, at most [`PATTERN_MAX_LINES`]), one Drain per stream and level,
/// merged per pattern and level, samples bucketed by `step`.
pub async fn patterns(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let p = request_params(q, &headers, &body);
    let rp = params::range_params(&p, Timestamp::now())?;
    let budget = Arc::new(AtomicUsize::new(PATTERN_MAX_LINES));
    let visitors = st
        .engine
        .visit_streams(
            VisitParams {
                tenant,
                query: rp.query.clone(),
                start: rp.start,
                end: rp.end,
                direction: Direction::Backward,
            },
            |_| PatternVisitor {
                patterns: StreamPatterns::new(DrainConfig::default()),
                budget: budget.clone(),
            },
        )
        .await?;
    let (start, end, step) = (rp.start, rp.end, rp.step);
    let series = tokio::task::spawn_blocking(move || {
        let mut m = PatternMerger::new(start, end, step);
        for v in &visitors {
            m.add(&v.patterns);
        }
        m.finish()
    })
    .await
    .map_err(|e| ApiError::internal(format!("pattern detection failed: {e}")))?;
    Ok(json_response(StatusCode::OK, patterns_json(&series)))
}

/// alecthomas/units `Base2Bytes.String()`, as Loki's YAML prints
/// `flagext.ByteSize`: `0B`, `1KiB512B`, `1GiB`.
fn base2_bytes(mut b: u64) -> String {
    if b == 0 {
        return "0B".to_string();
    }
    const UNITS: [(&str, u64); 6] = [
        ("EiB", 1 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    let mut out = String::new();
    for (unit, size) in UNITS {
        if b >= size {
            out.push_str(&format!("{}{unit}", b / size));
            b %= size;
        }
    }
    if b > 0 {
        out.push_str(&format!("{b}B"));
    }
    out
}

fn prom(d: crate::config::units::ConfigDuration) -> String {
    format_prom_duration(d.as_nanos_i64())
}

/// Loki's default `otlp_config` as its YAML marshals it.
fn default_otlp_config() -> Value {
    json!({
        "resource_attributes": {
            "ignore_defaults": false,
            "attributes_config": [{
                "action": "index_label",
                "attributes": [
                    "service.name", "service.namespace", "service.instance.id",
                    "deployment.environment", "deployment.environment.name",
                    "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
                    "k8s.namespace.name", "k8s.pod.name", "k8s.container.name",
                    "container.name", "k8s.replicaset.name", "k8s.deployment.name",
                    "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name",
                    "k8s.job.name"
                ]
            }]
        },
        "scope_attributes": [],
        "log_attributes": [],
        "severity_text_as_label": false
    })
}

/// The limits the Drilldown app reads (Loki's allowlist), keys sorted as
/// Go encodes a map.
pub fn drilldown_limits_json(limits: &Limits) -> Value {
    let retention_stream: Vec<Value> = limits
        .retention_stream
        .iter()
        .map(|r| json!({"selector": r.selector, "priority": r.priority, "period": prom(r.period)}))
        .collect();
    json!({
        "discover_log_levels": limits.discover_log_levels,
        "discover_service_name": limits.discover_service_name,
        "log_level_fields": limits.log_level_fields,
        "max_entries_limit_per_query": limits.max_entries_limit_per_query,
        "max_line_size_truncate": limits.max_line_size_truncate,
        "max_query_bytes_read": base2_bytes(limits.max_query_bytes_read.get()),
        "max_query_length": prom(limits.max_query_length),
        "max_query_lookback": prom(limits.max_query_lookback),
        "max_query_range": prom(limits.max_query_range),
        "max_query_series": limits.max_query_series,
        "metric_aggregation_enabled": false,
        "otlp_config": default_otlp_config(),
        "pattern_persistence_enabled": false,
        "query_timeout": prom(limits.query_timeout),
        "retention_period": prom(limits.retention_period),
        "retention_stream": retention_stream,
        "volume_enabled": limits.volume_enabled,
        "volume_max_series": limits.volume_max_series,
    })
}

/// `GET /loki/api/v1/drilldown-limits`. With auth enabled the tenant comes
/// from `X-Scope-OrgID` (401 without it, as Loki); with auth disabled lokal
/// answers for `fake` (Loki answers 401 there too, see docs).
pub async fn drilldown_limits(
    State(st): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let limits = st.overrides.get(tenant.as_str());
    let body = json!({
        "limits": drilldown_limits_json(&limits),
        "pattern_ingester_enabled": st.config.pattern_ingester_enabled,
        "version": env!("CARGO_PKG_VERSION"),
    });
    Ok(json_response(StatusCode::OK, body.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_print_like_go_units() {
        assert_eq!(base2_bytes(0), "0B");
        assert_eq!(base2_bytes(1536), "1KiB512B");
        assert_eq!(base2_bytes(1 << 30), "1GiB");
    }

    #[test]
    fn default_limits_as_loki_prints_them() {
        let v = drilldown_limits_json(&Limits::default());
        assert_eq!(v["max_query_length"], "30d1h");
        assert_eq!(v["query_timeout"], "1m");
        assert_eq!(v["retention_period"], "0s");
        assert_eq!(v["max_entries_limit_per_query"], 5000);
        assert_eq!(v["max_query_bytes_read"], "0B");
        assert_eq!(v["discover_log_levels"], true);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "Go sorts map keys");
    }

    #[test]
    fn patterns_encode_seconds() {
        let body = patterns_json(&[PatternSeries {
            pattern: "a <_> b".into(),
            level: "info".into(),
            samples: vec![(1_700_000_010_000, 3), (1_700_000_070_000, 0)],
        }]);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"status":"success","data":[{"pattern":"a \u003c_\u003e b","level":"info","samples":[[1700000010,3],[1700000070,0]]}]}"#
        );
        assert_eq!(patterns_json(&[]), br#"{"status":"success","data":[]}"#);
    }
}
