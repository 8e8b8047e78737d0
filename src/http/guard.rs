//! DNS-rebinding protection: the Host header (and Origin, when a browser sends one) must name
//! this gateway, even for requests with a valid token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::config::Settings;

/// Host names (without port) a request may address.
#[derive(Clone, Debug)]
pub struct HostGuard {
    hosts: Vec<String>,
    origins: Vec<String>,
}

fn host_only(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match a.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => a,
    }
}

impl HostGuard {
    pub fn from_settings(s: &Settings) -> Self {
        let mut hosts: Vec<String> = s
            .server
            .allowed_hosts
            .iter()
            .map(|h| host_only(h))
            .collect();
        if hosts.is_empty() {
            hosts = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            if !matches!(s.server.host.as_str(), "0.0.0.0" | "::" | "") {
                hosts.push(host_only(&s.server.host));
            }
        }
        if let Some(public) = &s.server.public_url
            && let Ok(url) = url::Url::parse(public)
            && let Some(h) = url.host_str()
        {
            hosts.push(host_only(h));
        }
        let origins = s
            .server
            .allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self { hosts, origins }
    }

    fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), String> {
        let host = host.ok_or("missing Host header")?;
        if !self.hosts.contains(&host_only(host)) {
            return Err(format!(
                "Host {host:?} is not allowed (DNS-rebinding protection); add it to server.allowed_hosts"
            ));
        }
        if let Some(origin) = origin.filter(|o| *o != "null") {
            let normalized = origin.trim_end_matches('/').to_ascii_lowercase();
            let origin_host = url::Url::parse(&normalized)
                .ok()
                .and_then(|u| u.host_str().map(host_only));
            let ok = self.origins.contains(&normalized)
                || origin_host.is_some_and(|h| self.hosts.contains(&h));
            if !ok {
                return Err(format!(
                    "Origin {origin:?} is not allowed; add it to server.allowed_origins"
                ));
            }
        }
        Ok(())
    }
}

pub async fn check_host(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let verdict = {
        let headers = req.headers();
        let get = |name: axum::http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        // HTTP/2 carries the authority in the URI instead of a Host header.
        let host = get(HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
        state.host_guard.check(host, get(ORIGIN))
    };
    if let Err(message) = verdict {
        return ApiError::forbidden(message).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_names_and_configured_ones_only() {
        let mut s = Settings::default();
        let g = HostGuard::from_settings(&s);
        assert!(g.check(Some("127.0.0.1:8080"), None).is_ok());
        assert!(
            g.check(Some("localhost"), Some("http://localhost:3000"))
                .is_ok()
        );
        assert!(g.check(Some("[::1]:8080"), None).is_ok());
        assert!(g.check(Some("evil.example.com"), None).is_err());
        assert!(
            g.check(Some("127.0.0.1:8080"), Some("http://evil.example.com"))
                .is_err()
        );
        assert!(g.check(None, None).is_err());

        s.server.public_url = Some("https://mcp.example.com".into());
        s.server.allowed_origins = vec!["https://app.example.com".into()];
        let g = HostGuard::from_settings(&s);
        assert!(
            g.check(Some("mcp.example.com"), Some("https://app.example.com"))
                .is_ok()
        );
        assert!(
            g.check(Some("mcp.example.com"), Some("https://other.example.com"))
                .is_err()
        );
    }
}
