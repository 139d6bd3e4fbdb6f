//! `POST|PUT|GET|DELETE /loki/api/v1/delete`: Loki's log deletion API
//! (`pkg/compactor/deletion/request_handler.go`).
//!
//! Owns the HTTP side — parameters, Loki's messages and status codes, the
//! JSON listing — and [`parse_delete_query`], which turns a request's query
//! (a LogQL stream selector with optional line filters, parsed by the LogQL
//! parser) into what storage applies. Requests live in the compactor's
//! manifest (`store::compactor`), which applies them after the cancel period.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::params::Params;
use super::{ApiError, SharedState, json_response};
use crate::config::units::parse_duration;
use crate::logql::eval::compile_line_filter;
use crate::logql::syntax::{self, Stage};
use crate::model::{Labels, Timestamp};
use crate::store::chunk::DecodedBlock;
use crate::store::compactor::deletes::{
    CancelError, DeleteQuery, DeleteQueryParser, LineFilter, shard_interval,
};

/// The line filters of a delete query: an entry is selected when every
/// filter keeps its line.
struct LineFilters(Vec<crate::logql::log::LineFilter>);

impl LineFilter for LineFilters {
    fn selects(&self, _labels: &Labels, block: &DecodedBlock, i: usize) -> bool {
        let line = block.line(i);
        self.0.iter().all(|f| f.matches(line))
    }
}

/// Parses a delete request's query with the LogQL parser: a stream selector
/// and optional line filters (any other stage is refused, as Loki does).
pub fn parse_delete_query(query: &str) -> Result<DeleteQuery, String> {
    let invalid = |m: String| format!("invalid query expression: {m}");
    let log = syntax::parse_log_selector(query, true).map_err(|e| invalid(e.to_string()))?;
    let mut filters = Vec::new();
    for stage in &log.pipeline {
        let Stage::LineFilter(f) = stage else {
            return Err(invalid(format!(
                "only line filters may follow the selector in a delete query, found `{stage}`"
            )));
        };
        filters.push(compile_line_filter(f).map_err(|e| invalid(e.to_string()))?);
    }
    Ok(DeleteQuery {
        matchers: log.selector.matchers,
        filter: (!filters.is_empty())
            .then(|| Arc::new(LineFilters(filters)) as Arc<dyn LineFilter>),
    })
}

/// The parser the compactor uses for persisted requests.
pub fn delete_query_parser() -> DeleteQueryParser {
    Arc::new(parse_delete_query)
}

/// Loki's `parseTime`: RFC 3339, or exactly ten digits of Unix seconds; in
/// milliseconds. Empty means now.
fn parse_time(value: &str, now: Timestamp) -> Option<i64> {
    if value.is_empty() {
        return Some(now.millis());
    }
    if let Some(t) = Timestamp::parse_rfc3339(value) {
        return Some(t.millis());
    }
    if value.len() != 10 {
        return None;
    }
    value.parse::<i64>().ok().map(|s| s * 1000)
}

fn params(raw: Option<String>) -> Params {
    Params::parse(raw.as_deref(), None)
}

fn check_enabled(st: &SharedState) -> Result<(), ApiError> {
    if !st.config.compactor.retention_enabled {
        return Err(ApiError::bad_request("Retention is not enabled"));
    }
    if !st.store.manifest().is_loaded() {
        // Requests live in the compactor state, not read yet while the
        // object store has been unreachable since start-up.
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::store::compactor::manifest::ManifestError::NotLoaded.to_string(),
        ));
    }
    Ok(())
}

/// `POST` / `PUT`: records a delete request.
pub async fn add(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    check_enabled(&st)?;
    let p = params(raw);
    let query = p.get("query").unwrap_or("");
    if query.is_empty() {
        return Err(ApiError::bad_request("query not set"));
    }
    let parsed = parse_delete_query(query).map_err(ApiError::bad_request)?;
    let now = Timestamp::now();
    let start = match p.get("start").unwrap_or("") {
        "" => return Err(ApiError::bad_request("start time not set")),
        s => parse_time(s, now).ok_or_else(|| {
            ApiError::bad_request("invalid start time: require unix seconds or RFC3339 format")
        })?,
    };
    let end = parse_time(p.get("end").unwrap_or(""), now).ok_or_else(|| {
        ApiError::bad_request("invalid end time: require unix seconds or RFC3339 format")
    })?;
    if end > now.millis() {
        return Err(ApiError::bad_request(
            "deletes in the future are not allowed",
        ));
    }
    if start > end {
        return Err(ApiError::bad_request(
            "start time can't be greater than end time",
        ));
    }
    let span = Duration::from_millis((end - start) as u64);
    // Requests with line filters are split by interval (Loki's sharding).
    let interval = if parsed.filter.is_some() {
        let max = st.config.compactor.delete_max_interval;
        match p.get("max_interval").unwrap_or("") {
            "" => {
                if span < Duration::from_secs(1) {
                    return Err(ApiError::bad_request(
                        "difference between start time and end time must be at least one second",
                    ));
                }
                if max.is_zero() { span } else { span.min(max) }
            }
            v => {
                let interval = parse_duration(v)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid max_interval: valid time units are 's', 'm', 'h'",
                        )
                    })?;
                if !max.is_zero() && interval > max {
                    return Err(ApiError::bad_request(format!(
                        "max_interval can't be greater than {}",
                        crate::config::units::ConfigDuration(max)
                    )));
                }
                if interval > span {
                    return Err(ApiError::bad_request(format!(
                        "max_interval can't be greater than the interval to be deleted ({})",
                        crate::config::units::ConfigDuration(span)
                    )));
                }
                interval
            }
        }
    } else {
        Duration::ZERO
    };
    let shards = shard_interval(start, end, interval);
    let id = st
        .store
        .manifest()
        .add_delete_request(&tenant, query, &shards, now)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(delete_request_id = %id, tenant = %tenant, query, shards = shards.len(), "delete request for user added");
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("X-Delete-Request-ID", v);
    }
    Ok(r)
}

/// `model.Time` as JSON: seconds with a millisecond fraction.
fn model_time(ms: i64) -> String {
    let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if frac == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

/// `GET`: the tenant's requests, oldest first.
pub async fn list(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    check_enabled(&st)?;
    let p = params(raw);
    let now = Timestamp::now();
    let window = match (p.get("start"), p.get("end")) {
        (None, None) => None,
        (Some(s), Some(e)) => {
            let bad =
                || ApiError::bad_request("invalid time: require unix seconds or RFC3339 format");
            Some((
                parse_time(s, now).ok_or_else(bad)?,
                parse_time(e, now).ok_or_else(bad)?,
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "both start and end must be set, or neither",
            ));
        }
    };
    let mut out = String::from("[");
    for r in st.store.manifest().delete_requests(&tenant) {
        if let Some((s, e)) = window
            && (r.end_ms() < s || r.start_ms() > e)
        {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"request_id":{},"start_time":{},"end_time":{},"query":{},"status":{},"created_at":{},"user_id":""}}"#,
            serde_json::Value::from(r.request_id.as_str()),
            model_time(r.start_ms()),
            model_time(r.end_ms()),
            serde_json::Value::from(r.query.as_str()),
            serde_json::Value::from(r.status()),
            model_time(r.created_at_ms),
        ));
    }
    out.push_str("]\n");
    Ok(json_response(StatusCode::OK, out.into_bytes()))
}

/// `DELETE`: cancels a request during its cancel period (after it, only
/// with `force=true`).
pub async fn cancel(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    check_enabled(&st)?;
    let p = params(raw);
    let id = p.get("request_id").unwrap_or("");
    let force = p.get("force") == Some("true");
    match st
        .store
        .manifest()
        .cancel_delete_request(
            &tenant,
            id,
            force,
            st.config.compactor.delete_request_cancel_period,
            Timestamp::now(),
        )
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e @ CancelError::NotFound) => Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string())),
        Err(e @ (CancelError::AlreadyProcessed | CancelError::PartiallyProcessed)) => {
            Err(ApiError::bad_request(e.to_string()))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Entry;
    use crate::store::chunk::HeadBlock;

    fn selects(q: &str, line: &str) -> bool {
        let parsed = parse_delete_query(q).unwrap();
        let mut b = HeadBlock::new();
        b.push_entry(&Entry::new(Timestamp::from_secs(1), line.to_string()));
        let block = b.snapshot();
        let labels = Labels::parse(r#"{app="a"}"#).unwrap();
        parsed
            .filter
            .as_ref()
            .is_none_or(|f| f.selects(&labels, &block, 0))
    }

    #[test]
    fn delete_queries_parse_selectors_and_line_filters() {
        let q = parse_delete_query(r#"{app="a", env=~"p.*"}"#).unwrap();
        assert_eq!(q.matchers.len(), 2);
        assert!(q.filter.is_none());
        assert!(selects(r#"{app="a"} |= "secret""#, "my secret line"));
        assert!(!selects(r#"{app="a"} |= "secret""#, "public"));
        assert!(selects(
            r#"{app="a"} |= "user" != "admin" |~ `id=\d+`"#,
            "user id=42"
        ));
        assert!(!selects(
            r#"{app="a"} |= "user" != "admin" |~ `id=\d+`"#,
            "user admin id=42"
        ));
        assert!(selects(r#"{app="a"} !~ "^debug""#, "info: x"));
        for bad in [
            "",
            r#"{app="a"} | json"#,
            r#"sum(rate({app="a"}[1m]))"#,
            r#"{app="a"} |~ "(""#,
            r#"{app="a"} |= "unterminated"#,
        ] {
            let e = parse_delete_query(bad).err().unwrap_or_default();
            assert!(e.starts_with("invalid query expression"), "{bad}: {e}");
        }
    }

    #[test]
    fn times_parse_as_loki_does() {
        let now = Timestamp::from_secs(1_700_000_000);
        assert_eq!(parse_time("", now), Some(1_700_000_000_000));
        assert_eq!(parse_time("1690000000", now), Some(1_690_000_000_000));
        assert_eq!(parse_time("169000000", now), None, "not ten digits");
        assert_eq!(
            parse_time("1690000000000", now),
            None,
            "milliseconds are refused"
        );
        assert_eq!(
            parse_time("2023-07-22T04:26:40.5Z", now),
            Some(1_690_000_000_500)
        );
        assert_eq!(model_time(1_690_000_000_500), "1690000000.5");
        assert_eq!(model_time(1_690_000_000_123), "1690000000.123");
        assert_eq!(model_time(1_690_000_000_000), "1690000000");
    }
}
