//! The HTTP side of the MCP wire that every endpoint speaking it shares (the gateway's legacy and
//! 2026-07-28 endpoints, and `reflow bridge`): reading a header, Accept negotiation, and a
//! JSON-RPC error as an HTTP response.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::mcp::{RpcError, jsonrpc};

/// A header's value, when present once or more and valid text (the first).
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `Accept` lists `mime` (or a wildcard covering it).
pub fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    header_str(headers, "accept").is_some_and(|a| {
        a.split(',')
            .map(|p| p.split(';').next().unwrap_or("").trim())
            .any(|m| {
                m == mime
                    || m == "*/*"
                    || (m.ends_with("/*") && mime.starts_with(&m[..m.len() - 1]))
            })
    })
}

/// A JSON-RPC error as an HTTP response.
/// A 200 with a JSON body already serialized (a list page from the list cache).
pub fn json_text(body: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

pub fn rpc_error(status: StatusCode, id: Option<Value>, error: RpcError) -> Response {
    (
        status,
        Json(jsonrpc::error_response(id.unwrap_or(Value::Null), &error)),
    )
        .into_response()
}
