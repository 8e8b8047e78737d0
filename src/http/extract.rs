//! Request extractors: the authenticated caller (bearer token, or the web UI's session cookie),
//! admin-only access, and the client address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::auth::cookie::cookie_token;
use crate::auth::{Principal, bearer_token};

/// Any authenticated caller.
pub struct Caller(pub Principal);

/// An authenticated caller with role `admin`; others get 403.
pub struct Admin(pub Principal);

/// The peer address of the connection. Forwarded headers are not trusted.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        if header.is_none()
            && let Some(token) = cookie_token(&parts.headers)
        {
            return super::ui::cookie_caller(parts, state, token)
                .await
                .map(Self);
        }
        let token = bearer_token(header)?;
        Ok(Self(state.authn.authenticate(token).await?))
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        if !p.is_admin() {
            return Err(ApiError::forbidden("admin role required"));
        }
        Ok(Self(p))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Self(ip))
    }
}
