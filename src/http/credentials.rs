//! `/api/targets/{id}/token(s)` and `/api/targets/{id}/env…`: upstream credentials per scope.
//! Responses carry scopes, keys and masked values, never a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::extract::{Admin, Caller};
use crate::auth::Principal;
use crate::domain::{CredentialKind, CredentialScope};
use crate::service::{EnvScopeView, ResolvedEntry, ScopeRef, ServiceError, Writer};
use crate::store::TargetRecord;

pub fn routes() -> Router<Arc<AppState>> {
    let t = "/api/targets/{id}";
    Router::new()
        .route(&format!("{t}/tokens"), get(list_tokens))
        .route(
            &format!("{t}/token"),
            get(own_token).put(put_own_token).delete(delete_own_token),
        )
        .route(
            &format!("{t}/tokens/default"),
            put(put_default_token).delete(delete_default_token),
        )
        .route(&format!("{t}/tokens/{{scope}}"), put(put_scope_token))
        .route(
            &format!("{t}/tokens/{{scope}}/{{value}}"),
            put(put_scoped_token).delete(delete_scoped_token),
        )
        .route(&format!("{t}/env"), get(env_keys))
        .route(&format!("{t}/env/resolve"), get(env_resolve))
        .route(
            &format!("{t}/env/default"),
            get(get_default_env)
                .put(put_default_env)
                .post(post_default_env),
        )
        .route(
            &format!("{t}/env/default/{{key}}"),
            delete(delete_default_env),
        )
        .route(
            &format!("{t}/env/{{scope}}/{{value}}"),
            get(get_scoped_env)
                .put(put_scoped_env)
                .post(post_scoped_env),
        )
        .route(
            &format!("{t}/env/{{scope}}/{{value}}/{{key}}"),
            delete(delete_scoped_env),
        )
}

/// The target, if the caller may see it: admins see all, others what their policies allow;
/// anything else answers exactly like an unknown target.
async fn visible_target(
    state: &AppState,
    p: &Principal,
    key: &str,
) -> Result<TargetRecord, ApiError> {
    let target = state.targets.find(key).await?;
    if p.is_admin()
        || state
            .gateway
            .visible_targets(p)
            .iter()
            .any(|t| t.id == target.id)
    {
        return Ok(target);
    }
    Err(ServiceError::NotFound(format!("target {key:?}")).into())
}

/// A scope from its path segments; an unknown scope name is an unknown route. Non-admins are
/// refused before any lookup, so they cannot probe which users exist.
async fn scope_from_path(
    state: &AppState,
    p: &Principal,
    scope: &str,
    value: Option<&str>,
) -> Result<ScopeRef, ApiError> {
    let scope = CredentialScope::parse(scope)
        .map_err(|_| ApiError::not_found(format!("no credential scope {scope:?}")))?;
    if !p.is_admin() {
        let own = value.is_some_and(|v| {
            v == p.user_id.to_string() || v.eq_ignore_ascii_case(p.email.as_str())
        });
        if scope != CredentialScope::User || !own {
            return Err(ApiError::forbidden(
                "admin role required (you may only manage your own user-scope values)",
            ));
        }
    }
    Ok(state.secrets.scope_ref(scope, value).await?)
}

fn writer(p: &Principal) -> Writer {
    if p.is_admin() {
        Writer::Admin
    } else {
        Writer::User
    }
}

/// Admins may write any scope; others only their own user scope (and there only what the
/// target lets users supply, which the service checks).
fn may_write(p: &Principal, scope: &ScopeRef) -> Result<(), ApiError> {
    match scope {
        _ if p.is_admin() => Ok(()),
        ScopeRef::User(id) if *id == p.user_id => Ok(()),
        _ => Err(ApiError::forbidden(
            "admin role required (you may only manage your own user-scope values)",
        )),
    }
}

#[derive(Serialize)]
struct TokenEntry {
    scope: CredentialScope,
    scope_value: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn list_tokens(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    Path(key): Path<String>,
) -> Result<Json<Vec<TokenEntry>>, ApiError> {
    let target = state.targets.find(&key).await?;
    let entries = state.secrets.entries(target.id).await?;
    Ok(Json(
        entries
            .into_iter()
            .filter(|e| e.kind == CredentialKind::Token)
            .map(|e| TokenEntry {
                scope: e.scope,
                scope_value: e.scope_value,
                created_at: e.created_at,
                updated_at: e.updated_at,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct TokenStatus {
    scope: CredentialScope,
    scope_value: Option<String>,
    configured: bool,
    updated_at: Option<DateTime<Utc>>,
}

async fn token_status(
    state: &AppState,
    target: &TargetRecord,
    scope: &ScopeRef,
) -> Result<TokenStatus, ApiError> {
    let value = scope.value();
    let found = state
        .secrets
        .entries(target.id)
        .await?
        .into_iter()
        .find(|e| {
            e.kind == CredentialKind::Token
                && e.scope == scope.scope()
                && e.scope_value.as_deref().unwrap_or("") == value
        });
    Ok(TokenStatus {
        scope: scope.scope(),
        scope_value: Some(value).filter(|v| !v.is_empty()),
        configured: found.is_some(),
        updated_at: found.map(|e| e.updated_at),
    })
}

/// `{"token": "…"}`, plus the scope value when the path does not carry it
/// (`PUT …/tokens/role` with `{"role": "dev", "token": "…"}`, as the original accepted).
/// Fields are raw JSON so a wrongly typed value is refused without being echoed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    token: Value,
    role: Option<String>,
    group: Option<String>,
    user: Option<String>,
}

impl TokenBody {
    fn token(&self) -> Result<&str, ApiError> {
        self.token
            .as_str()
            .ok_or_else(|| ServiceError::invalid("token", "must be a string").into())
    }
}

async fn write_token(
    state: &AppState,
    p: &Principal,
    target: &TargetRecord,
    scope: ScopeRef,
    body: &TokenBody,
) -> Result<Json<TokenStatus>, ApiError> {
    may_write(p, &scope)?;
    state
        .secrets
        .set_token(target, &scope, body.token()?, writer(p))
        .await?;
    state.refresh().await;
    tracing::info!(actor = %p.email, target = %target.name, scope = %scope.scope(), "upstream token set");
    Ok(Json(token_status(state, target, &scope).await?))
}

async fn remove_token(
    state: &AppState,
    p: &Principal,
    target: &TargetRecord,
    scope: ScopeRef,
) -> Result<StatusCode, ApiError> {
    may_write(p, &scope)?;
    state
        .secrets
        .delete(target.id, CredentialKind::Token, &scope, "")
        .await?;
    state.refresh().await;
    tracing::info!(actor = %p.email, target = %target.name, scope = %scope.scope(), "upstream token removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn own_token(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<Json<TokenStatus>, ApiError> {
    let target = visible_target(&state, &p, &key).await?;
    Ok(Json(
        token_status(&state, &target, &ScopeRef::User(p.user_id)).await?,
    ))
}

async fn put_own_token(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<TokenStatus>, ApiError> {
    let target = visible_target(&state, &p, &key).await?;
    write_token(&state, &p, &target, ScopeRef::User(p.user_id), &body).await
}

async fn delete_own_token(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let target = visible_target(&state, &p, &key).await?;
    remove_token(&state, &p, &target, ScopeRef::User(p.user_id)).await
}

async fn put_default_token(
    State(state): State<Arc<AppState>>,
    Admin(p): Admin,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<TokenStatus>, ApiError> {
    let target = state.targets.find(&key).await?;
    write_token(&state, &p, &target, ScopeRef::Default, &body).await
}

async fn delete_default_token(
    State(state): State<Arc<AppState>>,
    Admin(p): Admin,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let target = state.targets.find(&key).await?;
    remove_token(&state, &p, &target, ScopeRef::Default).await
}

async fn put_scope_token(
    State(state): State<Arc<AppState>>,
    Admin(p): Admin,
    Path((key, scope)): Path<(String, String)>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<TokenStatus>, ApiError> {
    let target = state.targets.find(&key).await?;
    let value = match scope.as_str() {
        "role" => body.role.as_deref(),
        "group" => body.group.as_deref(),
        "user" => body.user.as_deref(),
        _ => None,
    };
    let scope = scope_from_path(&state, &p, &scope, value).await?;
    write_token(&state, &p, &target, scope, &body).await
}

async fn put_scoped_token(
    State(state): State<Arc<AppState>>,
    Admin(p): Admin,
    Path((key, scope, value)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<TokenStatus>, ApiError> {
    let target = state.targets.find(&key).await?;
    let scope = scope_from_path(&state, &p, &scope, Some(&value)).await?;
    write_token(&state, &p, &target, scope, &body).await
}

async fn delete_scoped_token(
    State(state): State<Arc<AppState>>,
    Admin(p): Admin,
    Path((key, scope, value)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let target = state.targets.find(&key).await?;
    let scope = scope_from_path(&state, &p, &scope, Some(&value)).await?;
    remove_token(&state, &p, &target, scope).await
}

async fn env_keys(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    Path(key): Path<String>,
) -> Result<Json<EnvScopeView>, ApiError> {
    let target = state.targets.find(&key).await?;
    let entries = state.secrets.entries(target.id).await?;
    Ok(Json(EnvScopeView::from_entries(&entries)))
}

#[derive(Serialize)]
struct ResolveView {
    token: Option<ResolvedEntry>,
    env: BTreeMap<String, ResolvedEntry>,
}

async fn env_resolve(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<Json<ResolveView>, ApiError> {
    let target = visible_target(&state, &p, &key).await?;
    let resolved = state
        .credentials
        .load()
        .resolve(target.id, p.user_id, &p.role, &p.groups);
    let (token, env) = ResolvedEntry::of(&resolved);
    Ok(Json(ResolveView { token, env }))
}

#[derive(Serialize)]
struct EnvScopeKeys {
    scope: CredentialScope,
    scope_value: Option<String>,
    keys: Vec<String>,
}

fn scope_keys(scope: &ScopeRef, keys: Vec<String>) -> Json<EnvScopeKeys> {
    Json(EnvScopeKeys {
        scope: scope.scope(),
        scope_value: Some(scope.value()).filter(|v| !v.is_empty()),
        keys,
    })
}

/// Env bodies are raw JSON so that a non-string value is refused naming its key, without the
/// parser echoing the value.
fn env_body(body: BTreeMap<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    body.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(ServiceError::invalid("value", format!("of {k:?} must be a string")).into()),
        })
        .collect()
}

async fn show_env(
    state: &AppState,
    p: &Principal,
    key: &str,
    scope: ScopeRef,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    let target = visible_target(state, p, key).await?;
    may_write(p, &scope)?;
    let keys = state.secrets.env_keys(target.id, &scope).await?;
    Ok(scope_keys(&scope, keys))
}

async fn write_env(
    state: &AppState,
    p: &Principal,
    key: &str,
    scope: ScopeRef,
    body: BTreeMap<String, Value>,
    replace: bool,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    let target = visible_target(state, p, key).await?;
    may_write(p, &scope)?;
    let entries = env_body(body)?;
    let keys = state
        .secrets
        .write_env(&target, &scope, &entries, replace, writer(p))
        .await?;
    state.refresh().await;
    tracing::info!(actor = %p.email, target = %target.name, scope = %scope.scope(), keys = entries.len(), replace, "upstream env written");
    Ok(scope_keys(&scope, keys))
}

async fn remove_env(
    state: &AppState,
    p: &Principal,
    key: &str,
    scope: ScopeRef,
    env_key: &str,
) -> Result<StatusCode, ApiError> {
    let target = visible_target(state, p, key).await?;
    may_write(p, &scope)?;
    state
        .secrets
        .delete(target.id, CredentialKind::Env, &scope, env_key)
        .await?;
    state.refresh().await;
    tracing::info!(actor = %p.email, target = %target.name, scope = %scope.scope(), key = env_key, "upstream env entry removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn get_default_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    show_env(&state, &p, &key, ScopeRef::Default).await
}

async fn put_default_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    write_env(&state, &p, &key, ScopeRef::Default, body, true).await
}

async fn post_default_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    write_env(&state, &p, &key, ScopeRef::Default, body, false).await
}

async fn delete_default_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((key, env_key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    remove_env(&state, &p, &key, ScopeRef::Default, &env_key).await
}

async fn get_scoped_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((key, scope, value)): Path<(String, String, String)>,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    let scope = scope_from_path(&state, &p, &scope, Some(&value)).await?;
    show_env(&state, &p, &key, scope).await
}

async fn put_scoped_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((key, scope, value)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    let scope = scope_from_path(&state, &p, &scope, Some(&value)).await?;
    write_env(&state, &p, &key, scope, body, true).await
}

async fn post_scoped_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((key, scope, value)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> Result<Json<EnvScopeKeys>, ApiError> {
    let scope = scope_from_path(&state, &p, &scope, Some(&value)).await?;
    write_env(&state, &p, &key, scope, body, false).await
}

async fn delete_scoped_env(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((key, scope, value, env_key)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = scope_from_path(&state, &p, &scope, Some(&value)).await?;
    remove_env(&state, &p, &key, scope, &env_key).await
}
