//! Audit rows for what the MCP endpoint answers itself, outside the router: `initialize`, client
//! notifications, and requests it refuses (bad input, unknown session, unsupported version), each
//! with the reason. Requests the router handles are audited there.

use std::net::IpAddr;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::AppState;
use crate::auth::Principal;
use crate::mcp::RpcError;
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
            id: uuid::Uuid::new_v4(),
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
