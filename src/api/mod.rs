//! The HTTP API: axum handlers speaking Loki's endpoints, parameters, JSON
//! shapes and status codes.

pub mod encode;
pub mod params;
pub mod push_decode;
