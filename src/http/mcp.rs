//! The MCP endpoint's POSTs, legacy era (2026-07-28 requests are handed to `modern`): Streamable
//! HTTP on `/mcp`, and `POST /message` of the older HTTP+SSE pair. The streams (`GET`) and the
//! session end (`DELETE`) are in `mcp_streams`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::edge_audit::{self, Note};
use super::extract::{Caller, ClientIp};
use super::mcp_streams as streams;
use super::wire::{accepts, header_str, json_text, rpc_error};
use crate::auth::Principal;
use crate::gateway::detach::Detached;
use crate::gateway::session::STANDALONE;
use crate::gateway::{Outgoing, Session, SessionTransport};
use crate::mcp::{Kind, RpcError, classify, codes, headers, jsonrpc};
use crate::telemetry::spans::Origin;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/mcp",
            post(post_mcp)
                .get(streams::get_mcp)
                .delete(streams::delete_mcp),
        )
        .route("/sse", get(streams::legacy_sse))
        .route("/message", post(legacy_message))
}

/// A body that could not be read (too large, cut off) as a JSON-RPC error, like every other
/// answer of the MCP endpoints, naming the limit and the setting behind it.
fn body_rejected(state: &AppState, e: BytesRejection) -> Response {
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the request body is larger than the {} bytes this gateway accepts (server.max_body_bytes)",
            state.settings.server.max_body_bytes
        )
    } else {
        format!("the request body could not be read: {}", e.body_text())
    };
    rpc_error(status, None, RpcError::invalid_request(message))
}

fn session_header(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, headers::SESSION_ID)
}

/// Refuses a message with `status` and `error`, noting it for the audit log.
fn refuse(
    note: &mut Option<Note>,
    message: Option<&Value>,
    status: StatusCode,
    error: RpcError,
) -> Response {
    *note = Some(Note::refused(message, status, &error));
    rpc_error(status, message.and_then(|m| m.get("id")).cloned(), error)
}

/// The 404 that tells the client its session is gone and it must initialize again.
fn session_gone(e: crate::gateway::SessionError) -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        None,
        RpcError::new(codes::INVALID_REQUEST, e.to_string()),
    )
}

fn is_final(message: &Value, id: &Value) -> bool {
    message.get("method").is_none() && message.get("id") == Some(id)
}

async fn post_mcp(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let mut note = None;
    let res = post_legacy(&state, &caller, ip, &headers, body, &mut note).await;
    if let Some(note) = note {
        edge_audit::record(&state, &caller, &headers, ip, started, note).await;
    }
    res
}

/// Sets `note` when the answer is the endpoint's own (not the router's): the audit row says so.
async fn post_legacy(
    state: &Arc<AppState>,
    caller: &Principal,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    note: &mut Option<Note>,
) -> Response {
    let caller = caller.clone();
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_rejected(state, e),
    };
    if !(accepts(headers, "application/json") && accepts(headers, "text/event-stream")) {
        return refuse(
            note,
            None,
            StatusCode::NOT_ACCEPTABLE,
            RpcError::invalid_request(
                "Accept must list both application/json and text/event-stream",
            ),
        );
    }
    if !header_str(headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return refuse(
            note,
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RpcError::invalid_request("Content-Type must be application/json"),
        );
    }
    let mut message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                note,
                None,
                StatusCode::BAD_REQUEST,
                RpcError::new(codes::PARSE_ERROR, format!("parse error: {e}")),
            );
        }
    };
    if crate::mcp::modern::is_modern(
        &message,
        header_str(headers, headers::PROTOCOL_VERSION),
        session_header(headers).is_some(),
    ) {
        return super::modern::post(state, caller, headers, ip, message, note).await;
    }
    if let Some(version) = header_str(headers, headers::PROTOCOL_VERSION)
        && !crate::mcp::LEGACY_VERSIONS.contains(&version)
    {
        return refuse(
            note,
            Some(&message),
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request(format!(
                "unsupported MCP-Protocol-Version {version:?}; supported: {}",
                crate::mcp::LEGACY_VERSIONS.join(", ")
            )),
        );
    }
    let kind = classify(&message);
    if let Kind::Request {
        id,
        method: "initialize",
    } = &kind
    {
        let id = (*id).clone();
        let session = state
            .gateway
            .create_session(caller, SessionTransport::StreamableHttp);
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let reply = match state.gateway.initialize(&session, &params).await {
            Ok(result) => {
                *note = Some(Note::served("initialize", Some(&session.id), None));
                jsonrpc::response(id, result)
            }
            Err(e) => {
                *note = Some(Note::served("initialize", Some(&session.id), Some(&e)));
                jsonrpc::error_response(id, &e)
            }
        };
        let mut res = Json(reply).into_response();
        res.headers_mut().insert(
            headers::SESSION_ID,
            HeaderValue::from_str(&session.id).expect("hex session id"),
        );
        return res;
    }
    if let Kind::Invalid(reason) = &kind {
        let error = RpcError::invalid_request(reason.clone());
        return refuse(note, Some(&message), StatusCode::BAD_REQUEST, error);
    }
    let Some(session_id) = session_header(headers) else {
        return refuse(
            note,
            Some(&message),
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request("missing Mcp-Session-Id header: send initialize first"),
        );
    };
    let session = match state.gateway.session(session_id, &caller).await {
        Ok(s) => s,
        Err(e) => {
            let error = RpcError::new(codes::INVALID_REQUEST, e.to_string());
            return refuse(note, Some(&message), StatusCode::NOT_FOUND, error);
        }
    };
    match kind {
        Kind::Request { id, method } => {
            let id = id.clone();
            let method = method.to_string();
            let params = message.get_mut("params").map(Value::take);
            let origin = Origin::of(headers, params.as_ref(), ip);
            relay_request(state, session, id, method, params, origin).await
        }
        Kind::Notification { method } => {
            *note = Some(Note::served(method, Some(&session.id), None));
            let method = method.to_string();
            let gateway = state.gateway.clone();
            let params = message.get("params").cloned();
            tokio::spawn(
                async move { gateway.handle_notification(&session, &method, params).await },
            );
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Response { .. } | Kind::Error { .. } => {
            state.gateway.handle_client_response(&session, message);
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Invalid(_) => unreachable!("handled above"),
    }
}

/// Runs the request in this task, and in its own only if the client goes away first (a
/// dropped connection is not a cancellation) or the answer streams. Answers like the upstream
/// did: plain JSON when the response comes first, an SSE stream when the upstream streamed or
/// anything precedes the response. An upstream that closes its stream early makes the
/// client's stream close too; the client resumes with `Last-Event-ID`.
async fn relay_request(
    state: &AppState,
    session: Arc<Session>,
    id: Value,
    method: String,
    params: Option<Value>,
    origin: Origin,
) -> Response {
    let (sink, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let gateway = state.gateway.clone();
    let mut work = {
        let (session, id) = (session.clone(), id.clone());
        Detached::new(async move {
            gateway
                .handle_request(&session, id, &method, params, &origin, sink)
                .await
        })
    };
    let first = match work.alongside(rx.recv()).await {
        Some(Outgoing::Message(m)) if is_final(&m, &id) => {
            work.settle();
            return Json(m).into_response();
        }
        Some(Outgoing::Page(page)) => {
            work.settle();
            return json_text(page.to_json());
        }
        Some(first) => first,
        None => {
            return rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(id),
                RpcError::internal("request dropped"),
            );
        }
    };
    let stream = session.open_stream();
    let events = session.attach(stream, Some(0)).expect("stream just opened");
    {
        let session = session.clone();
        tokio::spawn(async move {
            let mut next = Some(first);
            while let Some(out) = match next.take() {
                Some(o) => Some(o),
                None => work.alongside(rx.recv()).await,
            } {
                match out {
                    Outgoing::Message(message) => {
                        let done = is_final(&message, &id);
                        session.push(stream, message);
                        if done {
                            break;
                        }
                    }
                    Outgoing::Page(page) => {
                        session.push_text(stream, page.to_json().into());
                        break;
                    }
                    Outgoing::Stream => {}
                    Outgoing::Break => session.detach(stream),
                }
            }
            session.finish_stream(stream);
            work.finish().await;
        });
    }
    streams::sse_response(stream, events, true, false)
}

#[derive(Deserialize)]
struct SessionQuery {
    session_id: Option<String>,
    #[serde(rename = "sessionId")]
    session_id_camel: Option<String>,
}

async fn legacy_message(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let mut note = None;
    let res = message_legacy(&state, &caller, ip, &headers, q, body, &mut note).await;
    if let Some(note) = note {
        edge_audit::record(&state, &caller, &headers, ip, started, note).await;
    }
    res
}

/// A message to a legacy SSE session. Like `post_legacy`, sets `note` when the answer is the
/// endpoint's own (a refusal, a notification); `initialize` is audited when it is answered.
async fn message_legacy(
    state: &Arc<AppState>,
    caller: &Principal,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    q: SessionQuery,
    body: Result<Bytes, BytesRejection>,
    note: &mut Option<Note>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let res = body_rejected(state, e);
            *note = Some(Note::refused(
                None,
                res.status(),
                &RpcError::invalid_request("the request body could not be read"),
            ));
            return res;
        }
    };
    let Some(session_id) = q.session_id.or(q.session_id_camel) else {
        return refuse(
            note,
            None,
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request("missing session_id query parameter"),
        );
    };
    let message: Option<Value> = serde_json::from_slice(&body).ok();
    let session = match state.gateway.session(&session_id, caller).await {
        Ok(s) if s.transport == SessionTransport::LegacySse => s,
        Ok(_) => {
            return refuse(
                note,
                message.as_ref(),
                StatusCode::BAD_REQUEST,
                RpcError::invalid_request("not an SSE session"),
            );
        }
        Err(e) => {
            *note = Some(Note::refused(
                message.as_ref(),
                StatusCode::NOT_FOUND,
                &RpcError::new(codes::INVALID_REQUEST, e.to_string()),
            ));
            return session_gone(e);
        }
    };
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                note,
                None,
                StatusCode::BAD_REQUEST,
                RpcError::new(codes::PARSE_ERROR, format!("parse error: {e}")),
            );
        }
    };
    let gateway = state.gateway.clone();
    match classify(&message) {
        Kind::Invalid(reason) => {
            return refuse(
                note,
                Some(&message),
                StatusCode::BAD_REQUEST,
                RpcError::invalid_request(reason),
            );
        }
        Kind::Request { id, method } => {
            let (id, method) = (id.clone(), method.to_string());
            let params = message.get("params").cloned();
            let origin = Origin::of(headers, params.as_ref(), ip);
            if method == "initialize" {
                let (state, caller, headers) = (state.clone(), caller.clone(), headers.clone());
                let started = std::time::Instant::now();
                tokio::spawn(async move {
                    let (reply, error) = match gateway
                        .initialize(&session, params.as_ref().unwrap_or(&Value::Null))
                        .await
                    {
                        Ok(result) => (jsonrpc::response(id, result), None),
                        Err(e) => (jsonrpc::error_response(id, &e), Some(e)),
                    };
                    session.push(STANDALONE, reply);
                    let served = Note::served("initialize", Some(&session.id), error.as_ref());
                    edge_audit::record(&state, &caller, &headers, ip, started, served).await;
                });
                return StatusCode::ACCEPTED.into_response();
            }
            tokio::spawn(async move {
                let (sink, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let forward = {
                    let session = session.clone();
                    tokio::spawn(async move {
                        while let Some(out) = rx.recv().await {
                            match out {
                                Outgoing::Message(m) => {
                                    session.push(STANDALONE, m);
                                }
                                Outgoing::Page(page) => {
                                    session.push_text(STANDALONE, page.to_json().into());
                                }
                                Outgoing::Stream | Outgoing::Break => {}
                            }
                        }
                    })
                };
                gateway
                    .handle_request(&session, id, &method, params, &origin, sink)
                    .await;
                let _ = forward.await;
            });
        }
        Kind::Notification { method } => {
            *note = Some(Note::served(method, Some(&session.id), None));
            let method = method.to_string();
            let params = message.get("params").cloned();
            tokio::spawn(
                async move { gateway.handle_notification(&session, &method, params).await },
            );
        }
        Kind::Response { .. } | Kind::Error { .. } => {
            gateway.handle_client_response(&session, message)
        }
    }
    StatusCode::ACCEPTED.into_response()
}
