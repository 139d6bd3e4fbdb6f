//! `POST /loki/api/v1/push` and `/api/prom/push`.
//!
//! Decode and ingest run on a blocking thread; the answer waits for the WAL
//! to hold every accepted entry durably (group commit), then is 204 — or 400
//! with Loki's grouped errors when some entries were refused while the rest
//! were stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::push_decode::decode_push;
use super::{ApiError, SharedState};
use crate::ingest::PushError;
use crate::model::Timestamp;
use crate::store::wal::Lsn;

pub async fn push(State(st): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    handle(st, headers, body, false)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn push_legacy(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(st, headers, body, true)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    st: SharedState,
    headers: HeaderMap,
    body: Bytes,
    legacy: bool,
) -> Result<Response, ApiError> {
    let tenant = st.tenant(&headers)?;
    let header_str = |h| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (ctype, cenc) = (
        header_str(header::CONTENT_TYPE),
        header_str(header::CONTENT_ENCODING),
    );
    let dist = st.distributor.clone();
    let limits = st.decode.clone();
    let t = tenant.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        // `_held` keeps the decompressed bytes reserved until the entries
        // (slices of them) are ingested.
        let (req, _held) = decode_push(ctype.as_deref(), cenc.as_deref(), body, legacy, &limits)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                    e.to_string(),
                )
            })?;
        dist.push(&t, req, Timestamp::now())
            .map_err(|e: PushError| {
                ApiError::new(
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    e.to_string(),
                )
            })
    })
    .await
    .map_err(|e| ApiError::internal(format!("push task failed: {e}")))??;
    if let Some(lsn) = outcome.wait_for {
        st.store
            .wait_durable(Lsn(lsn))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    match outcome.rejected {
        Some(msg) => Err(ApiError::bad_request(msg)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
