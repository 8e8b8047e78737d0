//! `POST /api/policies/explain` (admin): the effective-access explorer. Body `{email}` or
//! `{user_id}` for a user, or `{role, groups}` for anyone with that role and groups; the
//! answer lists every target and item with the deciding policy and credential tier.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::extract::Admin;
use crate::access::{Access, AccessSubject, explain};
use crate::domain::{Role, UserId};
use crate::service::{ServiceError, parse_groups};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/policies/explain", post(explain_access))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainBody {
    email: Option<String>,
    user_id: Option<String>,
    role: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

async fn explain_access(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    ApiJson(body): ApiJson<ExplainBody>,
) -> Result<Json<Access>, ApiError> {
    let who = match (body.email.or(body.user_id), body.role) {
        (Some(key), None) => {
            let user = state.users.find(&key).await?;
            AccessSubject {
                user_id: Some(user.id),
                email: Some(user.email.to_string()),
                role: user.role,
                groups: user.groups,
            }
        }
        (None, Some(role)) => AccessSubject {
            user_id: None::<UserId>,
            email: None,
            role: Role::parse(&role).map_err(ServiceError::from)?,
            groups: parse_groups(&body.groups)?,
        },
        _ => {
            return Err(ServiceError::invalid(
                "email",
                "give a user (email or user_id), or a role (with optional groups), not both",
            )
            .into());
        }
    };
    let policies = state.policies.list().await?;
    let targets = state.targets.list().await?;
    let credentials = state.credentials.load_full();
    let access = explain(
        who,
        &policies,
        &targets,
        &credentials,
        &state.settings.naming.separator,
    )
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Json(access))
}
