//! `/api/targets`: target administration (admin writes; reads filtered by caller).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::extract::{Admin, Caller};
use crate::service::{ServiceError, TargetInput, TargetView};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/targets", get(list).post(create))
        .route("/api/targets/{id}", get(show).put(update).delete(remove))
        .route("/api/targets/{id}/instances", get(instances))
        .route(
            "/api/targets/{id}/restart-instances",
            axum::routing::post(restart_instances),
        )
}

/// A stdio or kubernetes target, or a 400 that says this target has no instances.
async fn stdio_target(state: &AppState, key: &str) -> Result<crate::store::TargetRecord, ApiError> {
    let target = state.targets.find(key).await?;
    if !target.transport.runs_instances() {
        return Err(ServiceError::invalid(
            "target",
            format!(
                "target {} is a {} target; only stdio and kubernetes targets have instances (processes, pods)",
                target.name, target.transport
            ),
        )
        .into());
    }
    Ok(target)
}

/// The target's stdio processes, live ones first (every replica's, as recorded in the store).
async fn instances(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    Path(key): Path<String>,
) -> Result<Json<Vec<crate::store::InstanceRecord>>, ApiError> {
    let target = stdio_target(&state, &key).await?;
    let rows = state
        .store
        .list_instances(target.id)
        .await
        .map_err(ServiceError::Store)?;
    Ok(Json(rows))
}

/// Stops the target's processes or pods on every replica; the next use starts them again. For
/// an HTTP target, every replica drops its upstream sessions and connections to it instead.
async fn restart_instances(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let target = state.targets.find(&key).await?;
    if !target.transport.runs_instances() {
        state
            .store
            .restart_target(target.id)
            .await
            .map_err(ServiceError::Store)?;
        state.refresh().await;
        tracing::info!(actor = %admin.email, target = %target.name, "upstream connections restarted");
        return Ok(Json(serde_json::json!({
            "target": target.name, "stopped": 0, "connections": "dropped"
        })));
    }
    let n = state
        .gateway
        .restart_instances(target.id)
        .await
        .map_err(ServiceError::Store)?;
    tracing::info!(actor = %admin.email, target = %target.name, instances = n, "stdio instances restarted");
    Ok(Json(
        serde_json::json!({ "target": target.name, "stopped": n }),
    ))
}

/// What a non-admin learns of a target they may use: enough to use it and to set their own
/// credentials, never how it is reached (URL, command, args, cwd, env, image).
#[derive(Serialize)]
struct TargetSummary {
    id: crate::domain::TargetId,
    name: crate::domain::TargetName,
    transport_type: crate::domain::Transport,
    enabled: bool,
    prefix: Option<String>,
    auth_type: crate::domain::AuthType,
    /// "legacy" or "modern" once the gateway has spoken to it.
    era: Option<&'static str>,
    user_env: Vec<String>,
    user_token: bool,
    tags: Vec<String>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
) -> Result<Json<Value>, ApiError> {
    let targets = state.targets.list().await?;
    if p.is_admin() {
        let views: Vec<TargetView> = targets.iter().map(TargetView::from).collect();
        return Ok(Json(serde_json::to_value(views).unwrap_or_default()));
    }
    // Everyone else: only the targets their policies let them use (default deny), summarised.
    let visible: std::collections::HashSet<_> = state
        .gateway
        .visible_targets(&p)
        .iter()
        .map(|t| t.id)
        .collect();
    let eras: std::collections::HashMap<String, &'static str> = state
        .gateway
        .target_eras()
        .into_iter()
        .filter_map(|(name, era)| era.map(|e| (name, e)))
        .collect();
    let summaries: Vec<TargetSummary> = targets
        .iter()
        .filter(|t| visible.contains(&t.id))
        .map(|t| TargetSummary {
            id: t.id,
            name: t.name.clone(),
            transport_type: t.transport,
            enabled: t.enabled,
            prefix: t.prefix.clone(),
            auth_type: t.auth_type,
            era: eras.get(t.name.as_str()).copied(),
            user_env: t.user_env.clone(),
            user_token: t.user_token,
            tags: t.tags.clone(),
        })
        .collect();
    Ok(Json(serde_json::to_value(summaries).unwrap_or_default()))
}

async fn show(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<Json<TargetView>, ApiError> {
    // 404 rather than 403, so non-admins cannot probe which target names exist.
    if !p.is_admin() {
        return Err(ServiceError::NotFound(format!("target {key:?}")).into());
    }
    let target = state.targets.find(&key).await?;
    Ok(Json(TargetView::from(&target)))
}

async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<TargetBody>,
) -> Result<(StatusCode, Json<TargetView>), ApiError> {
    let target = state.targets.create(body.into_input()?).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, target = %target.name, "target created");
    Ok((StatusCode::CREATED, Json(TargetView::from(&target))))
}

async fn update(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<TargetBody>,
) -> Result<Json<TargetView>, ApiError> {
    let input = body.into_input()?;
    let id = state.targets.find(&key).await?.id;
    let target = state.targets.update(id, input).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, target = %target.name, "target updated");
    Ok(Json(TargetView::from(&target)))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let target = state.targets.find(&key).await?;
    state.targets.remove(target.id).await?;
    state.refresh().await;
    tracing::info!(actor = %admin.email, target = %target.name, "target removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `timeout`: seconds as a number, or a duration string such as "30s" or "2m".
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeoutBody {
    Seconds(f64),
    Text(String),
}

/// Distinguishes an absent field (`None`: unchanged) from `null` (`Some(None)`: cleared).
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The body of POST (absent = default) and PUT (absent = unchanged).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    url: Option<Option<String>>,
    transport_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    command: Option<Option<String>>,
    args: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    cwd: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    image: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    port: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    health_path: Option<Option<String>>,
    statefulness: Option<String>,
    isolation_boundary: Option<String>,
    auth_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    auth_header_name: Option<Option<String>>,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    prefix: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    timeout: Option<Option<TimeoutBody>>,
    env: Option<BTreeMap<String, String>>,
    tags: Option<Vec<String>>,
    user_env: Option<Vec<String>>,
    user_token: Option<bool>,
    resources: Option<crate::domain::TargetResources>,
    // Read-only fields, accepted and ignored so a fetched target can be sent back as is.
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
}

impl TargetBody {
    fn into_input(self) -> Result<TargetInput, ServiceError> {
        let timeout = match self.timeout {
            None => None,
            Some(None) => Some(None),
            Some(Some(TimeoutBody::Seconds(s))) => {
                Some(Some(Duration::try_from_secs_f64(s).map_err(|_| {
                    ServiceError::invalid("timeout", format!("{s} is not a number of seconds"))
                })?))
            }
            Some(Some(TimeoutBody::Text(t))) => {
                Some(Some(humantime::parse_duration(&t).map_err(|e| {
                    ServiceError::invalid(
                        "timeout",
                        format!("{t:?} is not a duration such as \"30s\": {e}"),
                    )
                })?))
            }
        };
        Ok(TargetInput {
            name: self.name,
            url: self.url,
            transport_type: self.transport_type,
            command: self.command,
            args: self.args,
            cwd: self.cwd,
            image: self.image,
            port: self.port,
            health_path: self.health_path,
            statefulness: self.statefulness,
            isolation_boundary: self.isolation_boundary,
            auth_type: self.auth_type,
            auth_header_name: self.auth_header_name,
            enabled: self.enabled,
            prefix: self.prefix,
            timeout,
            env: self.env,
            tags: self.tags,
            user_env: self.user_env,
            user_token: self.user_token,
            resources: self.resources,
        })
    }
}
