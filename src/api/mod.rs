//! The HTTP API: axum handlers speaking Loki's endpoints, parameters, JSON
//! shapes and status codes.
//!
//! One error type ([`ApiError`]) carries its status; errors are plain text,
//! as Loki writes them (`http.Error`: the message and a newline). Handlers
//! never do blocking work on the async threads: decoding, ingest and query
//! evaluation run on blocking threads.

pub mod config;
pub mod delete;
pub mod drilldown;
pub mod encode;
pub mod index;
pub mod instrument;
pub mod metrics;
pub mod params;
pub mod push;
pub mod push_decode;
pub mod query;
pub mod ruler;
pub mod tail;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::ingest::Distributor;
use crate::limits::Overrides;
use crate::logql::eval::{Engine, QueryError};
use crate::model::TenantId;
use crate::store::Store;

/// Everything a handler needs.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub distributor: Arc<Distributor>,
    pub engine: Arc<Engine>,
    pub overrides: Arc<Overrides>,
    pub metrics: Arc<metrics::Metrics>,
    pub ready: AtomicBool,
    /// Push body decompression limits, shared by all pushes.
    pub decode: push_decode::DecodeLimits,
}

pub type SharedState = Arc<AppState>;

/// An error answer: status plus Loki's plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.message;
        body.push('\n');
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r.headers_mut().insert(
            "X-Content-Type-Options",
            HeaderValue::from_static("nosniff"),
        );
        r
    }
}

impl AppState {
    /// The request's tenant: `X-Scope-OrgID` when auth is enabled (401
    /// without it), otherwise always `fake`, as Loki.
    pub fn tenant(&self, headers: &HeaderMap) -> Result<TenantId, ApiError> {
        if !self.config.auth_enabled {
            return TenantId::new("fake").map_err(|e| ApiError::internal(e.to_string()));
        }
        let Some(v) = headers.get("X-Scope-OrgID") else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "no org id"));
        };
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad_request("invalid X-Scope-OrgID header"))?;
        TenantId::new(v.trim()).map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// JSON with Loki's content type.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

async fn ready(State(st): State<SharedState>) -> Response {
    if st.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Ingester not ready: waiting for WAL replay\n",
        )
            .into_response()
    }
}

async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("LOKAL_REVISION").unwrap_or(""),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// What Go's `http.NotFound` answers, as Loki (gorilla/mux) does for a
/// path no route matches.
async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "404 page not found").into_response()
}

async fn flush(State(st): State<SharedState>) -> Response {
    if st.store.flush_all(std::time::Duration::from_secs(60)).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "flush did not finish in time; chunks stay in the WAL",
        )
        .into_response()
    }
}

/// Bounds every query request — metadata, index and Drilldown reads as
/// well as LogQL — by the tenant's `query_timeout`, as Loki's queriers do:
/// 504 with Loki's message when it runs out. (The LogQL engine enforces it
/// too, and cancels its workers when its future is dropped.)
async fn query_timeout(
    State(st): State<SharedState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // A request without a valid tenant is refused by its handler.
    let timeout = st
        .tenant(req.headers())
        .map(|t| st.overrides.get(t.as_str()).query_timeout.get())
        .unwrap_or_default();
    bounded(timeout, next.run(req)).await
}

/// `answer` unless it takes longer than `timeout` (zero: no limit).
async fn bounded(timeout: Duration, answer: impl Future<Output = Response>) -> Response {
    if timeout.is_zero() {
        return answer.await;
    }
    match tokio::time::timeout(timeout, answer).await {
        Ok(r) => r,
        Err(_) => ApiError::from(QueryError::Timeout).into_response(),
    }
}

/// The full router.
pub fn router(state: SharedState) -> Router {
    let queries = Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/loki/api/v1/query",
            get(query::query_instant).post(query::query_instant),
        )
        .route(
            "/loki/api/v1/labels",
            get(query::labels).post(query::labels),
        )
        .route("/loki/api/v1/label", get(query::labels).post(query::labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(query::label_values).post(query::label_values),
        )
        .route(
            "/loki/api/v1/series",
            get(query::series).post(query::series),
        )
        .route(
            "/loki/api/v1/index/stats",
            get(index::stats).post(index::stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(index::volume).post(index::volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(index::volume_range).post(index::volume_range),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(drilldown::detected_labels).post(drilldown::detected_labels),
        )
        .route(
            "/loki/api/v1/detected_fields",
            get(drilldown::detected_fields).post(drilldown::detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(drilldown::detected_field_values).post(drilldown::detected_field_values),
        )
        .route(
            "/loki/api/v1/patterns",
            get(drilldown::patterns).post(drilldown::patterns),
        )
        .route(
            "/loki/api/v1/drilldown-limits",
            get(drilldown::drilldown_limits),
        )
        .route(
            "/loki/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            query_timeout,
        ))
        .layer(
            // Level 1: a log query's answer is mostly log lines, which
            // gzip's fastest level already shrinks ~5x, at several times
            // the speed of the default level (which dominated the time of
            // a 1000-line query).
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .quality(tower_http::CompressionLevel::Fastest)
                .compress_when(tower_http::compression::predicate::SizeAbove::new(1400)),
        );
    Router::new()
        .merge(queries)
        .route("/loki/api/v1/push", post(push::push))
        .route("/api/prom/push", post(push::push_legacy))
        .route("/loki/api/v1/tail", get(tail::tail).post(tail::tail))
        .route(
            "/api/prom/tail",
            get(tail::tail_legacy).post(tail::tail_legacy),
        )
        .route("/ready", get(ready))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route("/flush", get(flush).post(flush))
        .route(
            "/loki/api/v1/delete",
            post(delete::add)
                .put(delete::add)
                .get(delete::list)
                .delete(delete::cancel),
        )
        .route(
            "/metrics",
            get(metrics::handler).layer(
                // Prometheus asks for gzip; a scrape of a few hundred
                // series compresses well.
                tower_http::compression::CompressionLayer::new()
                    .gzip(true)
                    .quality(tower_http::CompressionLevel::Fastest),
            ),
        )
        .route("/config", get(config::config))
        .route("/config/tenant/v1/limits", get(config::tenant_limits))
        .route("/prometheus/api/v1/rules", get(ruler::rules))
        .route("/prometheus/api/v1/alerts", get(ruler::alerts))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(
            usize::try_from(state.config.distributor.max_recv_msg_size).unwrap_or(usize::MAX),
        ))
        // Last, so it wraps every route and the fallback and sees the
        // matched path template.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.http.clone(),
            instrument::instrument,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_past_query_timeout_is_504_with_lokis_message() {
        let slow = std::future::pending::<Response>();
        let r = bounded(Duration::from_millis(20), slow).await;
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = axum::body::to_bytes(r.into_body(), 1 << 10).await.unwrap();
        assert!(
            body.starts_with(b"request timed out, decrease the duration of the request"),
            "{body:?}"
        );
        // Zero means no limit; an answer in time passes through.
        let quick = async { StatusCode::NO_CONTENT.into_response() };
        assert_eq!(bounded(Duration::ZERO, quick).await.status(), 204);
        let quick = async { StatusCode::NO_CONTENT.into_response() };
        assert_eq!(bounded(Duration::from_secs(5), quick).await.status(), 204);
    }
}
