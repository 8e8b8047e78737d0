//! Audit rows for what the MCP endpoint answers itself, outside the router: `initialize`, client
//! notifications, streams opened and sessions ended (`GET`/`DELETE /mcp`, `GET /sse`), and
//! requests it refuses (bad input, unknown session, unsupported version), each with the reason.
//! Requests the router handles are audited there. Refusals for want of a valid
//! token (401) are counted per address, endpoint and reason and written once a second with
//! the count, so a flood of bad tokens costs one row a second, not one per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::auth::Principal;
use crate::mcp::{RpcError, jsonrpc};
use crate::store::{AuditDecision, AuditRecord};
use crate::telemetry::context::{local_span, trace_id_hex};
use crate::telemetry::spans::Origin;

/// What the endpoint did with one message it answered itself.
#[derive(Debug)]
pub struct Note {
    pub method: String,
    pub session: Option<String>,
    /// Ok: served (initialize, a notification); Err: refused with this HTTP status and error.
    pub outcome: Result<(), (StatusCode, RpcError)>,
}

impl Note {
    pub fn served(method: &str, session: Option<&str>, error: Option<&RpcError>) -> Self {
        Self {
            method: method.to_string(),
            session: session.map(str::to_string),
            outcome: match error {
                None => Ok(()),
                Some(e) => Err((StatusCode::OK, e.clone())),
            },
        }
    }

    /// A refused request that is not a JSON-RPC message (`GET /mcp`, `DELETE /mcp`): `method`
    /// names the HTTP request.
    pub fn refused_request(method: &str, status: StatusCode, error: &RpcError) -> Self {
        Self {
            method: method.to_string(),
            session: None,
            outcome: Err((status, error.clone())),
        }
    }

    pub fn refused(message: Option<&Value>, status: StatusCode, error: &RpcError) -> Self {
        Self {
            method: message
                .and_then(|m| m.get("method"))
                .and_then(Value::as_str)
                .unwrap_or("(none)")
                .chars()
                .take(128)
                .collect(),
            session: None,
            outcome: Err((status, error.clone())),
        }
    }
}

/// Queues the row for `note`.
pub async fn record(
    state: &AppState,
    caller: &Principal,
    headers: &HeaderMap,
    ip: IpAddr,
    started: Instant,
    note: Note,
) {
    let parent = Origin::of(headers, None, ip).carrier.parent();
    let (decision, status, error) = match &note.outcome {
        Ok(()) => (AuditDecision::Allow, 0, None),
        // Served, but answered with an error (e.g. initialize with a bad version).
        Err((StatusCode::OK, e)) => (AuditDecision::Allow, e.code, Some(e.message.clone())),
        Err((http, e)) => (
            AuditDecision::Deny,
            e.code,
            Some(format!("HTTP {}: {}", http.as_u16(), e.message)),
        ),
    };
    state
        .audit
        .record(AuditRecord {
            id: crate::store::new_audit_id(),
            session_id: note.session,
            user_id: Some(caller.user_id),
            method: note.method,
            target_name: None,
            name: None,
            decision,
            policy_name: None,
            response_status: Some(status),
            error,
            duration_ms: started.elapsed().as_millis() as i64,
            request_body: None,
            trace_id: Some(trace_id_hex(local_span(parent.as_ref()).trace_id())),
            created_at: chrono::Utc::now(),
        })
        .await;
}

/// Distinct (address, endpoint, reason) keys held between flushes; past it, the rest share one.
const MAX_KEYS: usize = 10_000;
/// The largest 401 body read back to learn its reason.
const MAX_REASON_BODY: usize = 16 * 1024;

type RefusalKey = (IpAddr, &'static str, String);

/// 401s on the MCP endpoints since the last flush, counted by address, endpoint and reason.
#[derive(Debug, Default)]
pub struct Unauthenticated {
    pending: Mutex<HashMap<RefusalKey, u64>>,
}

impl Unauthenticated {
    fn note(&self, ip: IpAddr, endpoint: &'static str, reason: String) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = (ip, endpoint, reason);
        if pending.len() >= MAX_KEYS && !pending.contains_key(&key) {
            key = (
                IpAddr::from([0, 0, 0, 0]),
                endpoint,
                "(more addresses and reasons than one row each)".into(),
            );
        }
        *pending.entry(key).or_default() += 1;
    }

    /// Writes one row per key counted since the last flush (called every second, and at
    /// shutdown).
    pub async fn flush(&self, audit: &crate::audit::AuditLog) {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for ((ip, endpoint, reason), count) in taken {
            audit
                .record(AuditRecord {
                    id: crate::store::new_audit_id(),
                    session_id: None,
                    user_id: None,
                    method: "(unauthenticated)".into(),
                    target_name: None,
                    name: None,
                    decision: AuditDecision::Deny,
                    policy_name: None,
                    response_status: Some(crate::mcp::codes::INVALID_REQUEST),
                    error: Some(format!(
                        "HTTP 401: {reason}; {count} request(s) from {ip} to {endpoint} within a second"
                    )),
                    duration_ms: 0,
                    request_body: None,
                    trace_id: None,
                    created_at: chrono::Utc::now(),
                })
                .await;
        }
    }
}

/// On the MCP endpoints: a 401 (no token, a bad one) becomes a JSON-RPC error object like every
/// other refusal there, and is counted for the audit log.
pub async fn unauthenticated(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let endpoint = match req.uri().path() {
        "/mcp" => "/mcp",
        "/message" => "/message",
        _ => "/sse",
    };
    let ip = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let res = next.run(req).await;
    if res.status() != StatusCode::UNAUTHORIZED {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let reason = axum::body::to_bytes(body, MAX_REASON_BODY)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "authentication required".into());
    state.unauthenticated.note(ip, endpoint, reason.clone());
    parts.headers.remove(header::CONTENT_LENGTH);
    let error = jsonrpc::error_response(Value::Null, &RpcError::invalid_request(reason));
    let mut out = (parts.status, axum::Json(error)).into_response();
    // Keep what the challenge layer reads (the InvalidToken marker) and the headers set so far.
    *out.extensions_mut() = parts.extensions;
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}
