//! The bridge's Streamable HTTP endpoint (legacy era, 2024-11-05 … 2025-11-25): POST relays one
//! message to the session's child and answers JSON, or SSE when the child sends anything before
//! the response; GET is the session's stream for what the child sends on its own; DELETE ends
//! the session. A 2026-07-28 request is refused in the way that makes dual-era clients fall
//! back to `initialize`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::BridgeState;
use super::registry::OpenError;
use super::session::SessionId;
pub(super) use crate::http::wire::rpc_error;
use crate::http::wire::{accepts, header_str};
use crate::mcp::{Kind, LEGACY_VERSIONS, RpcError, classify, codes, headers, jsonrpc};
use crate::upstream::{Handshake, UpstreamError};

fn session_id(h: &HeaderMap) -> Option<SessionId> {
    header_str(h, headers::SESSION_ID).map(SessionId::parse)
}

fn unknown_session() -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        None,
        RpcError::invalid_request("unknown or ended session: send initialize again"),
    )
}

fn missing_session(id: Option<Value>) -> Response {
    rpc_error(
        StatusCode::BAD_REQUEST,
        id,
        RpcError::invalid_request("missing Mcp-Session-Id header: send initialize first"),
    )
}

pub(super) async fn post(
    State(state): State<Arc<BridgeState>>,
    h: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let message = format!("the request body could not be read: {}", e.body_text());
            return rpc_error(e.status(), None, RpcError::invalid_request(message));
        }
    };
    if !(accepts(&h, "application/json") && accepts(&h, "text/event-stream")) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            RpcError::invalid_request(
                "Accept must list both application/json and text/event-stream",
            ),
        );
    }
    if !header_str(&h, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            RpcError::invalid_request("Content-Type must be application/json"),
        );
    }
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(codes::PARSE_ERROR, format!("parse error: {e}")),
            );
        }
    };
    let id = message.get("id").cloned();
    let version = header_str(&h, headers::PROTOCOL_VERSION);
    let sid = session_id(&h);
    if crate::mcp::modern::is_modern(&message, version, sid.is_some())
        || version.is_some_and(|v| !LEGACY_VERSIONS.contains(&v))
    {
        // A plain invalid-request error in a 400, as a pre-2026 server answers: dual-era
        // clients (reflow's upstream client, the SDKs in auto mode) take it as "legacy" and
        // initialize. The 2026 version errors would make them retry in the new era instead.
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            RpcError::invalid_request(format!(
                "this bridge speaks the session era of MCP ({}); send initialize",
                LEGACY_VERSIONS.join(", ")
            )),
        );
    }
    let kind = classify(&message);
    if let Kind::Invalid(reason) = &kind {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            RpcError::invalid_request(reason.clone()),
        );
    }
    if let Kind::Request {
        id,
        method: "initialize",
    } = &kind
    {
        return initialize(&state, (*id).clone(), message.get("params")).await;
    }
    let Some(sid) = sid else {
        return missing_session(id);
    };
    let Some(session) = state.sessions.get(&sid).await else {
        return unknown_session();
    };
    match kind {
        Kind::Request { id, method } => {
            let params = message.get("params").cloned();
            let rx = session.request(id.clone(), method.to_string(), params, state.timeout);
            answer(id.clone(), rx).await
        }
        // The bridge sent the child its `initialized` right after the handshake.
        Kind::Notification {
            method: "notifications/initialized",
        } => StatusCode::ACCEPTED.into_response(),
        Kind::Notification { method } => {
            let params = message.get("params").cloned();
            match session.notify(method, params).await {
                Ok(()) => StatusCode::ACCEPTED.into_response(),
                Err(e) => child_failed(None, &e),
            }
        }
        Kind::Response { .. } | Kind::Error { .. } => match session.respond(message).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => child_failed(None, &e),
        },
        Kind::Invalid(_) => unreachable!("refused above"),
    }
}

fn child_failed(id: Option<Value>, e: &UpstreamError) -> Response {
    rpc_error(
        StatusCode::BAD_GATEWAY,
        id,
        RpcError::new(codes::UPSTREAM_ERROR, e.to_string()),
    )
}

/// `initialize`: a new session with its own child, handed the client's handshake; the answer is
/// the child's, with the new `Mcp-Session-Id`.
async fn initialize(state: &BridgeState, id: Value, params: Option<&Value>) -> Response {
    let params = params.cloned().unwrap_or_else(|| json!({}));
    let Some(version) = params.get("protocolVersion").and_then(Value::as_str) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id),
            RpcError::invalid_params("initialize needs params.protocolVersion"),
        );
    };
    let handshake = Handshake {
        protocol_version: version.to_owned(),
        capabilities: params.get("capabilities").cloned().unwrap_or(json!({})),
        client_info: params.get("clientInfo").cloned().unwrap_or(json!({})),
    };
    let session = match state.sessions.open(handshake).await {
        Ok(s) => s,
        Err(OpenError::Full(max)) => {
            tracing::warn!(target: "reflow::bridge", max, "refusing a session: at the maximum");
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(id),
                RpcError::internal(OpenError::Full(max).to_string()),
            );
        }
        // The child refused the handshake (e.g. a protocol version it does not speak).
        Err(OpenError::Child(UpstreamError::Rpc(e))) => {
            return Json(jsonrpc::error_response(id, &e)).into_response();
        }
        Err(OpenError::Child(e)) => {
            tracing::warn!(target: "reflow::bridge", error = %e, "the stdio server did not start");
            return child_failed(Some(id), &e);
        }
    };
    let info = session.server();
    let mut result = json!({
        "protocolVersion": info.protocol_version,
        "capabilities": info.capabilities,
        "serverInfo": info.server_info,
    });
    if let Some(text) = &info.instructions {
        result["instructions"] = Value::String(text.clone());
    }
    let mut res = Json(jsonrpc::response(id, result)).into_response();
    res.headers_mut().insert(
        headers::SESSION_ID,
        HeaderValue::from_str(session.id.as_str()).expect("hex session id"),
    );
    res
}

/// JSON when the response is the first thing to send; otherwise an SSE stream of everything
/// for this request, the response last.
async fn answer(id: Value, mut rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let Some(first) = rx.recv().await else {
        return rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(id),
            RpcError::internal("the request was dropped"),
        );
    };
    if first.get("method").is_none() && first.get("id") == Some(&id) {
        return Json(first).into_response();
    }
    let events = stream::once(async move { first })
        .chain(UnboundedReceiverStream::new(rx))
        .map(|m| Ok::<_, Infallible>(Event::default().event("message").data(m.to_string())));
    Sse::new(events).into_response()
}

/// GET: the session's stream for what the child sends on its own.
pub(super) async fn get(State(state): State<Arc<BridgeState>>, h: HeaderMap) -> Response {
    if !accepts(&h, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            RpcError::invalid_request("Accept must include text/event-stream"),
        );
    }
    let Some(sid) = session_id(&h) else {
        return missing_session(None);
    };
    let Some(session) = state.sessions.get(&sid).await else {
        return unknown_session();
    };
    let events = UnboundedReceiverStream::new(session.listen())
        .map(|m| Ok::<_, Infallible>(Event::default().event("message").data(m.to_string())));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// DELETE: ends the session and its child.
pub(super) async fn delete(State(state): State<Arc<BridgeState>>, h: HeaderMap) -> Response {
    let Some(sid) = session_id(&h) else {
        return missing_session(None);
    };
    if state.sessions.end(&sid).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_session()
    }
}
