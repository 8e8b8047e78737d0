//! Liveness and readiness probes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the database answers. While it answers reads but refuses writes (disk full,
/// read-only), the gateway still serves calls and holds audit rows in memory: `degraded`, still
/// 200, so a load balancer does not take every replica of a shared database out at once.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let queued = state.audit.queue_depth();
    match state.store.ping().await {
        Ok(()) => match state.audit.storage_fault() {
            None => (
                StatusCode::OK,
                Json(json!({ "status": "ok", "database": "ok", "audit_queued": queued })),
            ),
            Some(fault) => (
                StatusCode::OK,
                Json(json!({
                    "status": "degraded",
                    "database": "degraded",
                    "reason": format!("audit writes fail: {fault}"),
                    "audit_queued": queued,
                })),
            ),
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "database": "unreachable", "audit_queued": queued }),
                ),
            )
        }
    }
}
