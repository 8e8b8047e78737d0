//! `/api/policies`: policy administration and evaluation (all admin only).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiJson, parse_id};
use super::extract::Admin;
use super::targets::nullable;
use crate::domain::{PolicySubjectId, ResourceType};
use crate::policy::ItemType;
use crate::service::{PolicyInput, PolicySubjectView, PolicyView, ServiceError, SubjectInput};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/policies", get(list).post(create))
        .route("/api/policies/evaluate", post(evaluate))
        .route("/api/policies/{id}", get(show).put(update).delete(remove))
        .route("/api/policies/{id}/subjects", post(add_subject))
        .route(
            "/api/policies/{id}/subjects/{subject_id}",
            delete(remove_subject),
        )
}

async fn list(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
) -> Result<Json<Vec<PolicyView>>, ApiError> {
    let policies = state.policies.list().await?;
    Ok(Json(state.policies.views(&policies).await?))
}

async fn show(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    Path(key): Path<String>,
) -> Result<Json<PolicyView>, ApiError> {
    let policy = state.policies.find(&key).await?;
    Ok(Json(state.policies.view(&policy).await?))
}

async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    let policy = state.policies.create(body.into_input()).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, policy = %policy.name, "policy created");
    Ok((
        StatusCode::CREATED,
        Json(state.policies.view(&policy).await?),
    ))
}

async fn update(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<PolicyView>, ApiError> {
    let id = state.policies.find(&key).await?.id;
    let policy = state.policies.update(id, body.into_input()).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, policy = %policy.name, "policy updated");
    Ok(Json(state.policies.view(&policy).await?))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let policy = state.policies.find(&key).await?;
    state.policies.remove(policy.id).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, policy = %policy.name, "policy removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn add_subject(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<SubjectBody>,
) -> Result<(StatusCode, Json<PolicySubjectView>), ApiError> {
    let policy = state.policies.find(&key).await?;
    let subject = state
        .policies
        .add_subject(policy.id, body.into_input())
        .await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, policy = %policy.name, "policy subject added");
    Ok((StatusCode::CREATED, Json(PolicySubjectView::from(&subject))))
}

async fn remove_subject(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path((key, subject_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let subject_id: PolicySubjectId = parse_id(&subject_id, "subject")?;
    let policy = state.policies.find(&key).await?;
    state.policies.remove_subject(policy.id, subject_id).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, policy = %policy.name, "policy subject removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `{user_id | email, target, resource_type?, name?}`; without `resource_type`, evaluates
/// whether the target is visible at all.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
    user_id: Option<String>,
    email: Option<String>,
    target: String,
    resource_type: Option<String>,
    name: Option<String>,
}

async fn evaluate(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    ApiJson(body): ApiJson<EvaluateBody>,
) -> Result<Json<Value>, ApiError> {
    let user = body
        .user_id
        .or(body.email)
        .ok_or_else(|| ServiceError::invalid("user_id", "user_id or email is required"))?;
    let item = match body.resource_type.as_deref() {
        None => None,
        Some(raw) => Some(
            match ResourceType::parse(raw).map_err(ServiceError::from)? {
                ResourceType::Tool => ItemType::Tool,
                ResourceType::Resource => ItemType::Resource,
                ResourceType::Prompt => ItemType::Prompt,
                ResourceType::All => {
                    return Err(ServiceError::invalid(
                    "resource_type",
                    "evaluate one item type (tool, resource or prompt), or omit it to check target visibility",
                )
                .into());
                }
            },
        ),
    };
    let eval = state
        .policies
        .evaluate(&user, &body.target, item, body.name.as_deref())
        .await?;
    let d = &eval.explanation.decision;
    Ok(Json(json!({
        "decision": if d.allowed { "allow" } else { "deny" },
        "policy": d.policy,
        "user": {"id": eval.user.id, "email": eval.user.email},
        "target": {"id": eval.target.id, "name": eval.target.name},
        "trace": eval.explanation.trace,
    })))
}

/// The body of POST (absent = default) and PUT (absent = unchanged). The target may be given
/// as `target_id` (the contract's field) or `target` (id or name).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    target_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    target: Option<Option<String>>,
    resource_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    resource_pattern: Option<Option<String>>,
    effect: Option<String>,
    priority: Option<i64>,
    enabled: Option<bool>,
    subjects: Option<Vec<SubjectBody>>,
    // Read-only fields, accepted and ignored so a fetched policy can be sent back as is.
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "target_name")]
    _target_name: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectBody {
    subject_type: String,
    #[serde(default)]
    subject_value: Option<String>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "policy_id")]
    _policy_id: Option<IgnoredAny>,
}

impl SubjectBody {
    fn into_input(self) -> SubjectInput {
        SubjectInput {
            subject_type: self.subject_type,
            subject_value: self.subject_value,
        }
    }
}

impl PolicyBody {
    fn into_input(self) -> PolicyInput {
        PolicyInput {
            name: self.name,
            description: self.description,
            target: self.target_id.or(self.target),
            resource_type: self.resource_type,
            resource_pattern: self.resource_pattern,
            effect: self.effect,
            priority: self.priority,
            enabled: self.enabled,
            subjects: self
                .subjects
                .map(|s| s.into_iter().map(SubjectBody::into_input).collect()),
        }
    }
}
