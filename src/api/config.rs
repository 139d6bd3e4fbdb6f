//! `GET /config` and `GET /config/tenant/v1/limits`: the configuration in
//! force and a tenant's limits as YAML, as Loki serves them
//! (`pkg/loki/config_handler.go`: `text/plain; charset=utf-8`).
//!
//! `/config?mode=defaults` shows the defaults (what an empty configuration
//! file gives), `?mode=diffs` only the keys whose values differ from them;
//! any other mode shows the whole configuration, as Loki. Secrets print as
//! `********` (see [`crate::config::view`]).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, SharedState};
use crate::config::Config;
use crate::config::view::{diff, to_yaml};

#[derive(Debug, Default, Deserialize)]
pub struct ConfigParams {
    #[serde(default)]
    pub mode: Option<String>,
}

fn yaml_response(body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The YAML `/config` answers for `mode`.
pub fn config_yaml(current: &Config, mode: Option<&str>) -> Result<String, ApiError> {
    let defaults = || {
        Config::defaults()
            .map_err(|e| ApiError::internal(format!("building the default configuration: {e}")))
    };
    Ok(match mode {
        Some("defaults") => defaults()?.to_yaml(),
        Some("diffs") => to_yaml(&diff(&current.to_value(), &defaults()?.to_value())),
        _ => current.to_yaml(),
    })
}

/// `GET /config`.
pub async fn config(State(st): State<SharedState>, Query(p): Query<ConfigParams>) -> Response {
    match config_yaml(&st.config, p.mode.as_deref()) {
        Ok(y) => yaml_response(y),
        Err(e) => e.into_response(),
    }
}

/// `GET /config/tenant/v1/limits`: the limits in force for the request's
/// tenant (the defaults with its runtime overrides applied).
pub async fn tenant_limits(State(st): State<SharedState>, headers: HeaderMap) -> Response {
    let tenant = match st.tenant(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let limits = st.overrides.get(tenant.as_str());
    match serde_yaml_ng::to_string(limits.as_ref()) {
        Ok(y) => yaml_response(y),
        Err(e) => ApiError::internal(format!("encoding limits: {e}")).into_response(),
    }
}
