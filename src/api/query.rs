//! Query endpoints: `query`, `query_range`, `labels`, `label/{name}/values`,
//! `series` — parameters parsed as Loki parses them, answers in Loki's JSON
//! shapes, errors as plain text with Loki's statuses.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::encode::{query_response, write_labels};
use super::params::{self, Params};
use super::{ApiError, SharedState, json_response};
use crate::logql::eval::{self, QueryError, QueryParams};
use crate::logql::syntax;
use crate::model::{Matcher, Timestamp};

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        )
    }
}

impl From<params::ParamError> for ApiError {
    fn from(e: params::ParamError) -> Self {
        ApiError::bad_request(e.0)
    }
}

/// URL query plus a form-encoded body (GET or POST).
pub(crate) fn request_params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Params {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    Params::parse(query.as_deref(), form.then_some(&body[..]))
}

pub(crate) fn categorize(headers: &HeaderMap) -> bool {
    headers
        .get_all("X-Loki-Response-Encoding-Flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|f| f.trim() == "categorize-labels"))
}

/// Loki's `X-Query-Tags` (`httpreq.ExtractQueryTagsFromHTTP` then
/// `TagsToKeyValues`): the first header value with every run of characters
/// outside `[a-zA-Z0-9-=.@, ]` replaced by `_`, split on `,` then on `=`;
/// tokens that are not exactly `key=value` are ignored, keys lowercased.
/// Never an error, whatever the header holds.
pub(crate) fn query_tags(headers: &HeaderMap) -> Vec<(String, String)> {
    let Some(raw) = headers.get("X-Query-Tags") else {
        return Vec::new();
    };
    let raw = String::from_utf8_lossy(raw.as_bytes());
    let mut safe = String::with_capacity(raw.len());
    let mut in_run = false;
    for c in raw.chars() {
        let ok = c.is_ascii_alphanumeric() || matches!(c, '-' | '=' | '.' | '@' | ',' | ' ');
        if ok {
            safe.push(c);
        } else if !in_run {
            safe.push('_');
        }
        in_run = !ok;
    }
    safe.split(',')
        .filter(|t| !t.is_empty())
        .filter_map(|tok| {
            let kv: Vec<&str> = tok.split('=').filter(|f| !f.is_empty()).collect();
            match kv[..] {
                [k, v] => Some((k.to_lowercase(), v.to_string())),
                _ => None,
            }
        })
        .collect()
}

/// `X-Query-Tags: Source=grafana-lokiexplore-app` (a Logs Drilldown
/// request; the value compared case-insensitively, as Loki).
pub(crate) fn drilldown(headers: &HeaderMap) -> bool {
    query_tags(headers)
        .iter()
        .any(|(k, v)| k == "source" && v.eq_ignore_ascii_case("grafana-lokiexplore-app"))
}

pub async fn query_range(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let p = request_params(q, &headers, &body);
    let rp = params::range_params(&p, Timestamp::now())?;
    let cat = categorize(&headers);
    let resp = st
        .engine
        .execute(QueryParams {
            tenant,
            query: rp.query,
            start: rp.start,
            end: rp.end,
            step: i64::try_from(rp.step.as_nanos()).unwrap_or(i64::MAX),
            interval: i64::try_from(rp.interval.as_nanos()).unwrap_or(i64::MAX),
            limit: rp.limit,
            direction: rp.direction,
            instant: false,
            categorize: cat,
            drilldown: drilldown(&headers),
        })
        .await?;
    Ok(json_response(StatusCode::OK, query_response(&resp, cat)))
}

pub async fn query_instant(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let p = request_params(q, &headers, &body);
    let ip = params::instant_params(&p, Timestamp::now())?;
    let cat = categorize(&headers);
    let resp = st
        .engine
        .execute(QueryParams {
            tenant,
            query: ip.query,
            start: ip.time,
            end: ip.time,
            step: 0,
            interval: 0,
            limit: ip.limit,
            direction: ip.direction,
            instant: true,
            categorize: cat,
            drilldown: drilldown(&headers),
        })
        .await?;
    Ok(json_response(StatusCode::OK, query_response(&resp, cat)))
}

/// Matchers of a `{...}` selector as the metadata endpoints accept it; the
/// bare `{}` means every stream.
pub(crate) fn selector_matchers(q: &str) -> Result<Vec<Matcher>, ApiError> {
    if q.trim() == "{}" {
        return Ok(Vec::new());
    }
    syntax::parse_matchers(q, false).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Matchers as Loki's `syntax.ParseMatchers(q, true)` reads them for the
/// label and index endpoints: at least one matcher must not match the empty
/// string (`{app=~".*"}` is a 400). The literal `{}` still means every
/// stream. (`series` does not validate: Loki's `MatchForSeriesRequest`
/// parses without validation.)
pub(crate) fn validated_matchers(q: &str) -> Result<Vec<Matcher>, ApiError> {
    if q.trim() == "{}" {
        return Ok(Vec::new());
    }
    syntax::parse_matchers(q, true).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `{"status":"success","data":[...]}`, with `data` omitted when empty
/// (Loki's omitempty on label answers).
fn string_list(values: BTreeSet<String>) -> Response {
    let mut out = b"{\"status\":\"success\"".to_vec();
    if !values.is_empty() {
        out.extend_from_slice(b",\"data\":");
        let _ = serde_json::to_writer(&mut out, &values);
    }
    out.push(b'}');
    json_response(StatusCode::OK, out)
}

async fn metadata_series(
    st: &SharedState,
    headers: &HeaderMap,
    p: &Params,
    matchers: &[Matcher],
) -> Result<Vec<crate::model::Labels>, ApiError> {
    let tenant = st.tenant(headers)?;
    let (start, end) = params::bounds(p, Timestamp::now())?;
    if end < start {
        return Err(ApiError::bad_request(
            "end timestamp must not be before or equal to start time",
        ));
    }
    // Loki's queriers apply max_query_lookback and max_query_length to
    // label and series requests too.
    let start = eval::check_range(&st.overrides.get(tenant.as_str()), start, end)?;
    st.engine
        .store()
        .series(&tenant, matchers, start, end.saturating_add_nanos(1))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub async fn labels(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = request_params(q, &headers, &body);
    let matchers = match p.get("query") {
        Some(q) => validated_matchers(q)?,
        None => Vec::new(),
    };
    let series = metadata_series(&st, &headers, &p, &matchers).await?;
    let names: BTreeSet<String> = series
        .iter()
        .flat_map(|l| l.iter().map(|l| l.name.clone()))
        .collect();
    Ok(string_list(names))
}

pub async fn label_values(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = request_params(q, &headers, &body);
    let matchers = match p.get("query") {
        Some(q) => validated_matchers(q)?,
        None => Vec::new(),
    };
    let series = metadata_series(&st, &headers, &p, &matchers).await?;
    let values: BTreeSet<String> = series
        .iter()
        .filter_map(|l| l.get(&name).map(str::to_string))
        .collect();
    Ok(string_list(values))
}

pub async fn series(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = request_params(q, &headers, &body);
    let selectors: Vec<String> = p
        .get_all("match[]")
        .chain(p.get_all("match"))
        .map(str::to_string)
        .collect();
    let mut groups: Vec<Vec<Matcher>> = Vec::new();
    for s in &selectors {
        groups.push(selector_matchers(s)?);
    }
    if groups.is_empty() || groups.iter().any(Vec::is_empty) {
        groups = vec![Vec::new()];
    }
    let mut all: BTreeSet<crate::model::Labels> = BTreeSet::new();
    for g in &groups {
        all.extend(metadata_series(&st, &headers, &p, g).await?);
    }
    let mut out = b"{\"status\":\"success\",\"data\":[".to_vec();
    for (i, l) in all.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_labels(&mut out, l);
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(StatusCode::OK, out).into_response())
}

/// `GET/POST /loki/api/v1/format_query`: the query pretty-printed as Loki's
/// `syntax.Prettify` does; a bad query is 400 `{"status":"invalid-query",...}`.
pub async fn format_query(headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = request_params(q, &headers, &body);
    let query = p.get("query").unwrap_or("");
    match syntax::parse(query) {
        Ok(expr) => {
            let body = serde_json::json!({"status": "success", "data": syntax::pretty(&expr)});
            json_response(StatusCode::OK, body.to_string().into_bytes())
        }
        Err(e) => {
            let body = serde_json::json!({"status": "invalid-query", "error": e.to_string()});
            json_response(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn tags(raw: &[u8]) -> Vec<(String, String)> {
        let mut h = HeaderMap::new();
        h.insert("X-Query-Tags", HeaderValue::from_bytes(raw).unwrap());
        query_tags(&h)
    }

    #[test]
    fn query_tags_as_loki_reads_them() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            tags(b"Source=logvolhist,Feature=beta"),
            [kv("source", "logvolhist"), kv("feature", "beta")]
        );
        assert_eq!(
            tags(b"Source=a/b$c,,x=y=z,lonely"),
            [kv("source", "a_b_c")],
            "odd characters become _, malformed tokens are ignored"
        );
        assert_eq!(
            tags("Source=caf\u{e9}\u{1f600}!".as_bytes()),
            [kv("source", "caf_")]
        );
        assert_eq!(tags(b"user=\xff\xfe"), [kv("user", "_")], "not UTF-8");
        assert!(tags(b"").is_empty());
        let mut h = HeaderMap::new();
        assert!(!drilldown(&h));
        h.insert(
            "X-Query-Tags",
            HeaderValue::from_static("Source=Grafana-LokiExplore-App"),
        );
        assert!(drilldown(&h));
        h.insert(
            "X-Query-Tags",
            HeaderValue::from_static("Source=grafana-lokiexplore-app-x"),
        );
        assert!(!drilldown(&h));
    }
}
