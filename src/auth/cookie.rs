//! The web UI's session cookie: its name and attributes (HttpOnly, SameSite=Strict, Secure behind
//! https), reading it back from a request, and sign-out (tokens ended before their expiry).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The cookie that carries a signed-in browser's session token.
pub const SESSION_COOKIE: &str = "reflow_session";

/// Whether the cookie may travel over plain http (local use) or only https.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieTransport {
    Http,
    Https,
}

impl CookieTransport {
    /// Secure when the gateway's public URL is https.
    pub fn for_public_url(public_url: Option<&str>) -> Self {
        match public_url {
            Some(u) if u.trim().to_ascii_lowercase().starts_with("https://") => Self::Https,
            _ => Self::Http,
        }
    }

    fn attributes(self) -> &'static str {
        match self {
            Self::Http => "; Path=/; HttpOnly; SameSite=Strict",
            Self::Https => "; Path=/; HttpOnly; SameSite=Strict; Secure",
        }
    }
}

/// `Set-Cookie` value that stores `token` for `max_age_secs`.
pub fn session_cookie(token: &str, max_age_secs: i64, transport: CookieTransport) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Max-Age={}{}",
        max_age_secs.max(0),
        transport.attributes()
    )
}

/// `Set-Cookie` value that deletes the session cookie.
pub fn cleared_cookie(transport: CookieTransport) -> String {
    format!("{SESSION_COOKIE}=; Max-Age=0{}", transport.attributes())
}

/// The session token from the request's `Cookie` headers, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// Session tokens signed out before they expired, by digest (the token itself is not kept).
/// Per process: another replica honours a sign-out only once its cookie is gone, which the
/// browser ensures since sign-out deletes it.
#[derive(Debug, Default)]
pub struct SignedOut {
    ended: Mutex<HashMap<[u8; 32], DateTime<Utc>>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl SignedOut {
    /// Ends `token`; `until` is when it would have expired anyway (then it is forgotten).
    pub fn end(&self, token: &str, until: DateTime<Utc>) {
        let now = Utc::now();
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.retain(|_, exp| *exp > now);
        ended.insert(digest(token), until);
    }

    pub fn is_ended(&self, token: &str) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.contains_key(&digest(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_attributes_follow_the_public_url() {
        let http = session_cookie("abc", 60, CookieTransport::for_public_url(None));
        assert_eq!(
            http,
            "reflow_session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Strict"
        );
        let https = CookieTransport::for_public_url(Some("HTTPS://gw.example.com"));
        assert!(session_cookie("abc", 60, https).ends_with("; Secure"));
        assert!(cleared_cookie(https).starts_with("reflow_session=; Max-Age=0;"));
    }

    #[test]
    fn reads_the_session_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; reflow_session=tok; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("tok"));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("reflow_session="));
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn signed_out_tokens_are_refused_until_expiry() {
        let s = SignedOut::default();
        s.end("t1", Utc::now() + chrono::Duration::hours(1));
        assert!(s.is_ended("t1"));
        assert!(!s.is_ended("t2"));
    }
}
