//! `POST /api/users`: an admin creates an account with a role, groups and an initial password
//! (the UI's "Add user"; the CLI's `reflow user add`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::extract::Admin;
use crate::service::UserView;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/users", post(create))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    password: String,
    #[serde(default = "default_role")]
    role: String,
    #[serde(default)]
    groups: Vec<String>,
}

fn default_role() -> String {
    "user".into()
}

async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = state
        .users
        .create(&body.email, &body.password, &body.role, &body.groups)
        .await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, user = %user.email, role = %user.role, "user created");
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}
