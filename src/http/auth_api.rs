//! `/api/auth/*`: registration, login, the caller's own account, and API tokens.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiJson, parse_id};
use super::extract::{Caller, ClientIp};
use crate::auth::{AuthMethod, sign_api_token};
use crate::config::Registration;
use crate::domain::ApiTokenId;
use crate::service::{ServiceError, TokenView, UserView};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/tokens", get(list_tokens).post(create_token))
        .route("/api/auth/tokens/{id}", delete(revoke_token))
}

/// Ends every login session of the caller, on every replica (API tokens stay valid).
async fn logout(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<StatusCode, ApiError> {
    state.users.end_sessions(caller.user_id).await?;
    state.refresh().await;
    tracing::info!(user = %caller.email, "signed out everywhere");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

async fn register(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Past the first account under `first_admin`, every request gets the same refusal, taken
    // email or not: no answer here tells who has an account.
    let open = match state.settings.auth.registration() {
        Registration::Open => true,
        Registration::FirstAdmin => state.users.list().await?.is_empty(),
        Registration::Closed => false,
    };
    if !open {
        return Err(ServiceError::RegistrationClosed.into());
    }
    state
        .limiter
        .check(ip, Some(&body.email.trim().to_lowercase()))?;
    let user = state.users.register(&body.email, &body.password).await?;
    state.refresh().await;
    tracing::info!(user = %user.email, role = %user.role, "user registered");
    let token = state.authn.issue_session(&user);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserView::from(&user), "token": token })),
    ))
}

async fn login(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
    state
        .limiter
        .check(ip, Some(&body.email.trim().to_lowercase()))?;
    let user = state
        .users
        .check_login(&body.email, &body.password)
        .await
        .inspect_err(|e| {
            if matches!(e, ServiceError::BadCredentials) {
                tracing::info!(%ip, "failed login");
            }
        })?;
    let token = state.authn.issue_session(&user);
    Ok(Json(
        json!({ "user": UserView::from(&user), "token": token }),
    ))
}

/// The caller's account. External (OIDC) users have none: they get what their token maps to.
async fn me(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
) -> Result<Json<Value>, ApiError> {
    if p.method == AuthMethod::Oidc {
        return Ok(Json(json!({
            "id": p.user_id,
            "email": p.email,
            "role": p.role,
            "groups": p.groups,
            "external": true,
        })));
    }
    let user = state.users.get(p.user_id).await?;
    Ok(Json(json!(UserView::from(&user))))
}

async fn list_tokens(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.tokens.list(Some(p.user_id)).await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// `expires_in`: seconds as a number, or a duration string such as "30d" or "12h".
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Seconds(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    #[serde(default)]
    expires_in: Option<ExpiresIn>,
}

async fn create_token(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    Caller(p): Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.limiter.check(ip, Some(p.email.as_str()))?;
    let expires_in = match body.expires_in {
        None => None,
        Some(ExpiresIn::Seconds(s)) => Some(Duration::from_secs(s)),
        Some(ExpiresIn::Text(t)) => Some(humantime::parse_duration(&t).map_err(|e| {
            ServiceError::invalid(
                "expires_in",
                format!("{t:?} is not a duration such as \"30d\": {e}"),
            )
        })?),
    };
    let user = state.users.get(p.user_id).await?;
    let record = state.tokens.create(user.id, &body.name, expires_in).await?;
    state.refresh().await;
    let token = sign_api_token(state.authn.keys(), &user, &record);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "api_token": TokenView::from(&record), "token": token })),
    ))
}

async fn revoke_token(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: ApiTokenId = parse_id(&id, "token")?;
    let owner = (!p.is_admin()).then_some(p.user_id);
    state.tokens.revoke(id, owner).await?;
    state.refresh().await;
    Ok(StatusCode::NO_CONTENT)
}
