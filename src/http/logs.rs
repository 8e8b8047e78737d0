//! `GET /api/logs`: the audit log; admins see everyone's rows, other users only their own.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, parse_id};
use super::extract::Caller;
use crate::service::{AuditService, LogQuery};
use crate::store::AuditRecord;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/logs", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    limit: Option<i64>,
    offset: Option<i64>,
    user_id: Option<String>,
    target: Option<String>,
    method: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    trace_id: Option<String>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let requested = p
        .user_id
        .as_deref()
        .map(|u| parse_id(u, "user"))
        .transpose()?;
    let user_id = if caller.is_admin() {
        requested
    } else {
        Some(caller.user_id)
    };
    let query = LogQuery {
        limit: p.limit,
        offset: p.offset,
        user_id,
        target: p.target,
        method: p.method,
        decision: p.decision,
        since: p.since,
        until: p.until,
        trace_id: p.trace_id,
    };
    Ok(Json(
        AuditService::new(state.store.clone()).query(&query).await?,
    ))
}
