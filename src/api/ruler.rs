//! The ruler, stubbed as the API survey recommends (§1g): lokal evaluates
//! no rules, but Grafana's alerting UI probes the Prometheus-compatible
//! endpoints, so they answer "no rules, no alerts". The Loki ruler
//! configuration API (`/loki/api/v1/rules…`, `/api/prom/rules…`) is not
//! routed: it answers Loki's `404 page not found` from the fallback.

use axum::http::StatusCode;
use axum::response::Response;

use super::json_response;

/// `GET /prometheus/api/v1/rules`.
pub async fn rules() -> Response {
    json_response(
        StatusCode::OK,
        br#"{"status":"success","data":{"groups":[]}}"#.to_vec(),
    )
}

/// `GET /prometheus/api/v1/alerts`.
pub async fn alerts() -> Response {
    json_response(
        StatusCode::OK,
        br#"{"status":"success","data":{"alerts":[]}}"#.to_vec(),
    )
}
