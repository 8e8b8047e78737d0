//! `POST /api/targets/{id}/test` (admin): the UI's "Test connection" — connects to an HTTP
//! target with the default scope's credentials, like `reflow target test`, and returns the era,
//! server info, counts and every tool, resource and prompt it offers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::extract::Admin;
use crate::access::http_spec;
use crate::service::ServiceError;
use crate::upstream::UpstreamSpec;
use crate::upstream::probe::{self, ProbeReport};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/targets/{id}/test", post(test))
}

/// Probes `spec`, turning an unreachable upstream into a 502 that says why.
pub async fn run_probe(spec: UpstreamSpec) -> Result<ProbeReport, ApiError> {
    let name = spec.name.clone();
    probe::probe(spec).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            format!("{name} cannot be reached: {e}"),
        )
    })
}

async fn test(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = state.targets.find(&key).await?;
    let resolved = state.credentials.load().resolve_default(target.id);
    let spec = http_spec(&target, &resolved)
        .map_err(|e| ServiceError::invalid("target", e.to_string()))?;
    let url = spec.url.clone();
    tracing::info!(actor = %admin.email, target = %target.name, "target test from the API");
    let report = run_probe(spec).await?;
    let mut body = report.summary(target.name.as_str(), &url);
    body["items"] = serde_json::to_value(&report.offer).unwrap_or_default();
    Ok(Json(body))
}
