//! Request instrumentation: `loki_request_duration_seconds`, as dskit's
//! `middleware.Instrument` records it for every Loki HTTP route.
//!
//! Labels are dskit's: `method` (the HTTP method), `route` (the route's
//! path template turned into a label value by `MakeLabelValue`, e.g.
//! `loki_api_v1_label_name_values`; `notfound` when no route matched),
//! `status_code` and `ws` (`true` for a WebSocket handshake). Buckets are
//! dskit's `instrument.DefBuckets`. Sources: dskit `server/metrics.go`,
//! `middleware/instrument.go`, `instrument/instrument.go`.
//!
//! A request whose future is dropped before it answered — the client went
//! away and hyper cancelled the handler — is recorded with status `499`, as
//! dskit records cancelled requests: the observation lives in a drop guard
//! carried by the middleware's future, so it is made whether the future
//! completes or not.
//!
//! The duration runs until the handler returns its response head; streaming
//! the body afterwards is not included.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// dskit's `instrument.DefBuckets`, in seconds.
pub const DEF_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
];

/// The status recorded for a request dropped before it answered (Loki's
/// and nginx's "client closed request").
pub const STATUS_CLIENT_CLOSED: u16 = 499;

/// The route label of requests no route matched (dskit's `notfound`).
pub const ROUTE_NOT_FOUND: &str = "notfound";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status_code: String,
    pub ws: String,
}

fn new_histogram() -> Histogram {
    Histogram::new(DEF_BUCKETS.iter().copied())
}

/// The request-duration histograms, one per label set.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    pub request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            request_duration: Family::new_with_constructor(new_histogram),
        }
    }
}

impl HttpMetrics {
    fn observe(&self, method: String, route: String, status: u16, ws: bool, seconds: f64) {
        self.request_duration
            .get_or_create(&RequestLabels {
                method,
                route,
                status_code: status.to_string(),
                ws: ws.to_string(),
            })
            .observe(seconds);
    }
}

/// dskit's `MakeLabelValue`: runs of characters other than ASCII letters
/// and digits become `_`, leading and trailing `_` are trimmed, the result
/// is lowercased, and an empty result is `root`.
pub fn route_label(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut pending_sep = false;
    for c in template.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_sep = true;
        }
    }
    if out.is_empty() {
        "root".to_string()
    } else {
        out
    }
}

/// dskit's `IsWSHandshakeRequest`.
fn is_websocket_handshake(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    upgrade
        && headers
            .get("connection")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Records one request when dropped: with the response's status once the
/// handler answered, with 499 if it never did.
struct Observation {
    metrics: Arc<HttpMetrics>,
    method: String,
    route: String,
    ws: bool,
    start: Instant,
    status: Option<u16>,
}

impl Drop for Observation {
    fn drop(&mut self) {
        self.metrics.observe(
            std::mem::take(&mut self.method),
            std::mem::take(&mut self.route),
            self.status.unwrap_or(STATUS_CLIENT_CLOSED),
            self.ws,
            self.start.elapsed().as_secs_f64(),
        );
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`). Install it with
/// `Router::layer` after every route and the fallback are added, so the
/// matched path template is known.
pub async fn instrument(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| ROUTE_NOT_FOUND.to_string(), |p| route_label(p.as_str()));
    let mut observation = Observation {
        metrics,
        method: req.method().as_str().to_string(),
        route,
        ws: is_websocket_handshake(req.headers()),
        start: Instant::now(),
        status: None,
    };
    let response = next.run(req).await;
    observation.status = Some(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use prometheus_client::registry::Registry;
    use tower::ServiceExt;

    #[test]
    fn route_labels_are_dskits() {
        assert_eq!(route_label("/loki/api/v1/push"), "loki_api_v1_push");
        assert_eq!(
            route_label("/loki/api/v1/query_range"),
            "loki_api_v1_query_range"
        );
        assert_eq!(
            route_label("/loki/api/v1/label/{name}/values"),
            "loki_api_v1_label_name_values"
        );
        assert_eq!(
            route_label("/loki/api/v1/drilldown-limits"),
            "loki_api_v1_drilldown_limits"
        );
        assert_eq!(route_label("/Ready"), "ready");
        assert_eq!(route_label("/"), "root");
    }

    #[test]
    fn websocket_handshake_detection() {
        let mut h = HeaderMap::new();
        assert!(!is_websocket_handshake(&h));
        h.insert("upgrade", "WebSocket".parse().unwrap());
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(is_websocket_handshake(&h));
        h.insert("connection", "keep-alive".parse().unwrap());
        assert!(!is_websocket_handshake(&h));
    }

    fn scrape(m: &HttpMetrics) -> String {
        let mut r = Registry::default();
        r.register(
            "loki_request_duration_seconds",
            "Time (in seconds) spent serving HTTP requests",
            m.request_duration.clone(),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        out
    }

    fn app(m: Arc<HttpMetrics>) -> Router {
        Router::new()
            .route("/loki/api/v1/label/{name}/values", get(|| async { "ok" }))
            .route(
                "/hang",
                get(|| async {
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(m, instrument))
    }

    #[tokio::test]
    async fn answered_requests_carry_route_and_status() {
        let m = Arc::new(HttpMetrics::default());
        let resp = app(m.clone())
            .oneshot(
                Request::get("/loki/api/v1/label/app/values")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = app(m.clone())
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let text = scrape(&m);
        assert!(
            text.contains(
                r#"loki_request_duration_seconds_count{method="GET",route="loki_api_v1_label_name_values",status_code="200",ws="false"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"loki_request_duration_seconds_count{method="GET",route="notfound",status_code="404",ws="false"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_dropped_request_is_recorded_as_499() {
        let m = Arc::new(HttpMetrics::default());
        let fut = app(m.clone()).oneshot(Request::get("/hang").body(Body::empty()).unwrap());
        // The client gives up: the request's future is dropped unanswered.
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), fut).await;
        assert!(timed_out.is_err());
        let text = scrape(&m);
        assert!(
            text.contains(
                r#"loki_request_duration_seconds_count{method="GET",route="hang",status_code="499",ws="false"} 1"#
            ),
            "{text}"
        );
    }
}
