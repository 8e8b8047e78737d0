//! The UI's sign-in: `GET /api/ui/status` (is there any user yet? may one register?),
//! `POST /api/ui/setup` (the first admin, by the register rule), `POST /api/ui/login` (email and
//! password, or a token of the configured OIDC issuer) and `POST /api/ui/logout`. The session
//! token lives only in an HttpOnly cookie; no response body carries it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::super::error::{ApiError, ApiJson};
use super::super::extract::ClientIp;
use super::same_origin;
use crate::auth::cookie::{CookieTransport, cleared_cookie, cookie_token, session_cookie};
use crate::auth::{AuthError, AuthMethod};
use crate::service::{ServiceError, UserView};
use crate::store::UserRecord;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/ui/status", get(status))
        .route("/api/ui/setup", post(setup))
        .route("/api/ui/login", post(login))
        .route("/api/ui/logout", post(logout))
}

fn transport(state: &AppState) -> CookieTransport {
    CookieTransport::for_public_url(state.settings.server.public_url.as_deref())
}

/// What the sign-in page needs to know before anyone is signed in.
async fn status(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let needs_setup = state.users.list().await?.is_empty();
    let registration = state.settings.auth.registration();
    Ok(Json(json!({
        "needs_setup": needs_setup,
        // `first_admin` (the default) closes registration but still lets the first account in.
        "setup_allowed": registration != crate::config::Registration::Closed,
        "registration_open": registration == crate::config::Registration::Open,
        "oidc_issuer": state.settings.auth.oidc.as_ref().map(|o| o.issuer.clone()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    email: String,
    password: String,
}

/// Email and password, or a token (`id_token`) of the configured OIDC issuer.
#[derive(Deserialize)]
#[serde(untagged)]
enum SignIn {
    Password(Password),
    External { id_token: String },
}

/// A response that sets the session cookie and returns the user (never the token).
fn signed_in(
    state: &AppState,
    token: &str,
    expires: DateTime<Utc>,
    user: serde_json::Value,
) -> Response {
    let max_age = (expires - Utc::now()).num_seconds();
    let mut res = Json(json!({ "user": user })).into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie(token, max_age, transport(state))) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

fn session_for(state: &AppState, user: &UserRecord) -> Response {
    let token = state.authn.issue_session(user);
    let expires = Utc::now()
        + chrono::Duration::from_std(state.settings.auth.token_ttl)
            .unwrap_or(chrono::Duration::days(1));
    signed_in(state, &token, expires, json!(UserView::from(user)))
}

/// Creates the first account (an admin, as `register` makes the first user) and signs it in.
async fn setup(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Password>,
) -> Result<Response, ApiError> {
    same_origin(&headers, state.settings.server.public_url.as_deref())?;
    if state.settings.auth.registration() == crate::config::Registration::Closed {
        return Err(ServiceError::RegistrationClosed.into());
    }
    state
        .limiter
        .check(ip, Some(&body.email.trim().to_lowercase()))?;
    if !state.users.list().await?.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "an account already exists: sign in instead",
        ));
    }
    let user = state.users.register(&body.email, &body.password).await?;
    state.refresh().await;
    tracing::info!(user = %user.email, role = %user.role, "first account created from the web UI");
    Ok(session_for(&state, &user))
}

async fn login(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    same_origin(&headers, state.settings.server.public_url.as_deref())?;
    match body {
        SignIn::Password(p) => {
            state
                .limiter
                .check(ip, Some(&p.email.trim().to_lowercase()))?;
            let user = state
                .users
                .check_login(&p.email, &p.password)
                .await
                .inspect_err(|e| {
                    if matches!(e, ServiceError::BadCredentials) {
                        tracing::info!(%ip, "failed login from the web UI");
                    }
                })?;
            Ok(session_for(&state, &user))
        }
        SignIn::External { id_token } => {
            state.limiter.check(ip, None)?;
            let principal = state.authn.authenticate(&id_token).await?;
            if principal.method != AuthMethod::Oidc {
                return Err(ApiError::bad_request(
                    "id_token must be a token of the configured OIDC issuer; sign in to reflow with email and password",
                ));
            }
            let expires = token_expiry(&id_token).ok_or(AuthError::Invalid)?;
            let user = json!({
                "id": principal.user_id,
                "email": principal.email,
                "role": principal.role,
                "groups": principal.groups,
                "external": true,
            });
            Ok(signed_in(&state, &id_token, expires, user))
        }
    }
}

/// The `exp` of a token that has already been verified.
fn token_expiry(token: &str) -> Option<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Exp {
        exp: Option<i64>,
    }
    let exp = jsonwebtoken::dangerous::insecure_decode_claims::<Exp>(token)
        .ok()?
        .exp?;
    DateTime::from_timestamp(exp, 0)
}

/// Ends the session: the cookie is deleted and its token refused from now on.
async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&headers, state.settings.server.public_url.as_deref())?;
    if let Some(token) = cookie_token(&headers) {
        let until = token_expiry(token).unwrap_or_else(|| {
            Utc::now()
                + chrono::Duration::from_std(state.settings.auth.token_ttl)
                    .unwrap_or(chrono::Duration::days(1))
        });
        state.signed_out.end(token, until);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&cleared_cookie(transport(&state))) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(res)
}
