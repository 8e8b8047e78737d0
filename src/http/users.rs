//! `/api/users`: account administration (admin only).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiJson, parse_id};
use super::extract::Admin;
use crate::domain::UserId;
use crate::service::UserView;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/users", get(list))
        .route("/api/users/{id}", get(show).put(update).delete(remove))
}

async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.users.list().await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

async fn show(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.get(parse_id::<UserId>(&id, "user")?).await?;
    Ok(Json(UserView::from(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    role: Option<String>,
    groups: Option<Vec<String>>,
}

async fn update(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserUpdate>,
) -> Result<Json<UserView>, ApiError> {
    let id = parse_id::<UserId>(&id, "user")?;
    let user = state
        .users
        .update(id, body.role.as_deref(), body.groups.as_deref())
        .await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, user = %user.email, role = %user.role, "user updated");
    Ok(Json(UserView::from(&user)))
}

/// `{"removed": id, "credentials": n, "tokens": n, "sessions": n}`: what went with the user.
async fn remove(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id::<UserId>(&id, "user")?;
    let removed = state.users.remove(id).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, user = %id, credentials = removed.credentials, tokens = removed.tokens, sessions = removed.sessions, "user removed");
    Ok(Json(serde_json::json!({
        "removed": id,
        "credentials": removed.credentials,
        "tokens": removed.tokens,
        "sessions": removed.sessions,
    })))
}
