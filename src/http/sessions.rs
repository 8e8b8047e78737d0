//! Session recycling: `POST /api/sessions/recycle` (the caller's own) and
//! `POST /api/users/{id}/recycle` (admin). Recycled clients get 404 and initialize again, so
//! they pick up a changed role, groups or policies at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, parse_id};
use super::extract::{Admin, Caller};
use crate::domain::UserId;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/sessions/recycle", post(recycle_own))
        .route("/api/users/{id}/recycle", post(recycle_user))
}

async fn recycle_own(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    recycle(&state, caller.user_id).await
}

/// No check that the user exists: external (OIDC) users have sessions but no account row.
async fn recycle_user(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: UserId = parse_id(&id, "user")?;
    tracing::info!(actor = %admin.email, user = %id, "recycling sessions");
    recycle(&state, id).await
}

async fn recycle(state: &AppState, user: UserId) -> Result<Json<Value>, ApiError> {
    let recycled = state.gateway.recycle_user(user).await?;
    // Other replicas may hold some of these sessions in memory; the bump makes them look.
    state.store.bump_revision().await?;
    Ok(Json(json!({ "recycled": recycled, "user_id": user })))
}
