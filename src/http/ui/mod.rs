//! The embedded web UI: routes for the page and its assets (see `assets`), the cookie session
//! (see `session`), the same-origin rule for cookie-authenticated writes, and the security
//! headers every UI response carries.

mod assets;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::auth::{AuthError, Principal};

/// Scripts and styles only from this origin (no inline script), no framing, no other hosts.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The page, its assets and the session endpoints (`/api/ui/*`).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(assets::routes().layer(axum::middleware::from_fn(security_headers)))
        .merge(session::routes())
}

/// Adds the UI's security headers to a response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The caller behind a session cookie. A request that changes state must come from this
/// gateway's own pages: SameSite=Strict keeps the cookie off cross-site requests, and this
/// refuses any that carry it anyway (a missing, `null` or foreign Origin).
pub(super) async fn cookie_caller(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<Principal, ApiError> {
    if !parts.method.is_safe() {
        same_origin(&parts.headers, state.settings.server.public_url.as_deref())?;
    }
    if state.signed_out.is_ended(token) {
        return Err(AuthError::Revoked.into());
    }
    Ok(state.authn.authenticate(token).await?)
}

/// Refuses a request unless its Origin names the host it was sent to (or the public URL).
pub(super) fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), ApiError> {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let refuse = |why: &str| {
        ApiError::forbidden(format!(
            "cross-site request refused: {why}; changes made with the session cookie must come from this gateway's own pages"
        ))
    };
    if matches!(get("sec-fetch-site"), Some("cross-site" | "same-site")) {
        return Err(refuse("the browser marked it cross-site"));
    }
    let origin = get(ORIGIN.as_str())
        .filter(|o| *o != "null")
        .ok_or_else(|| refuse("no Origin header"))?;
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or_default();
    let host_matches = get(HOST.as_str()).is_some_and(|h| h.eq_ignore_ascii_case(authority));
    let public_matches = public_url
        .map(|u| u.trim_end_matches('/').to_ascii_lowercase())
        .is_some_and(|u| u == origin || u.starts_with(&format!("{origin}/")));
    if host_matches || public_matches {
        Ok(())
    } else {
        Err(refuse("its Origin is another site"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookie_writes_need_this_origin() {
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&ok, None).is_ok());
        let none = headers(&[("host", "127.0.0.1:8080")]);
        assert!(same_origin(&none, None).is_err());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(same_origin(&null, None).is_err());
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://localhost:8080"),
        ]);
        assert!(same_origin(&other, None).is_err());
        let marked = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(same_origin(&marked, None).is_err());
        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://gw.example.com"),
        ]);
        assert!(same_origin(&proxied, Some("https://gw.example.com/")).is_ok());
    }
}
