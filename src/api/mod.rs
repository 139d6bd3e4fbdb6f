//! The HTTP API: axum handlers speaking Loki's endpoints, parameters, JSON
//! shapes and status codes.

pub mod push_decode;
