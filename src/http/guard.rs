//! DNS-rebinding protection: the Host header (and Origin, when a browser sends one) must name
//! this gateway, even for requests with a valid token. Refusals of requests whose body went
//! unread say `Connection: close`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::config::Settings;
use crate::mcp::{RpcError, jsonrpc};
use serde_json::Value;

/// Host names (without port) a request may address.
#[derive(Clone, Debug)]
pub struct HostGuard {
    hosts: Vec<String>,
    origins: Vec<String>,
    /// Where a refused name can be allowed, named in the refusal (a setting or a flag).
    hosts_option: &'static str,
    origins_option: &'static str,
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
    /// A guard over explicit names (`reflow bridge`, which has no `Settings`): host names with
    /// or without a port, origins as `scheme://host[:port]`.
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        Self {
            hosts: hosts.iter().map(|h| host_only(h)).collect(),
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            hosts_option: "--allow-host",
            origins_option: "--allow-origin",
        }
    }

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
        Self {
            hosts,
            origins,
            hosts_option: "server.allowed_hosts",
            origins_option: "server.allowed_origins",
        }
    }

    /// `strict`: the request changes state or speaks MCP, so an opaque `Origin: null` (a
    /// sandboxed frame, a file:// page) is refused too, unless "null" is an allowed origin.
    pub fn check(
        &self,
        host: Option<&str>,
        origin: Option<&str>,
        strict: bool,
    ) -> Result<(), String> {
        let host = host.ok_or("missing Host header")?;
        if !self.hosts.contains(&host_only(host)) {
            return Err(format!(
                "Host {host:?} is not allowed (DNS-rebinding protection); add it to {}",
                self.hosts_option
            ));
        }
        if origin == Some("null") {
            if strict && !self.origins.iter().any(|o| o == "null") {
                return Err(format!(
                    "Origin \"null\" (a sandboxed frame or a file:// page) may not change state or call MCP; add \"null\" to {} to allow it",
                    self.origins_option
                ));
            }
            return Ok(());
        }
        if let Some(origin) = origin {
            let normalized = origin.trim_end_matches('/').to_ascii_lowercase();
            let origin_host = url::Url::parse(&normalized)
                .ok()
                .and_then(|u| u.host_str().map(host_only));
            let ok = self.origins.contains(&normalized)
                || origin_host.is_some_and(|h| self.hosts.contains(&h));
            if !ok {
                return Err(format!(
                    "Origin {origin:?} is not allowed; add it to {}",
                    self.origins_option
                ));
            }
        }
        Ok(())
    }
}

/// The MCP endpoints answer every error as a JSON-RPC error object.
fn is_mcp_path(path: &str) -> bool {
    matches!(path, "/mcp" | "/message" | "/sse")
}

/// The Host and Origin allow-list on every request, and the resource-metadata challenge on a
/// 401 (`well_known::challenge`): one layer, not two, on the path of every request.
pub async fn check_host(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let mcp = is_mcp_path(req.uri().path());
    let refuse = |status: StatusCode, message: String| {
        if mcp {
            let error = jsonrpc::error_response(Value::Null, &RpcError::invalid_request(message));
            (status, Json(error)).into_response()
        } else {
            ApiError::new(status, message).into_response()
        }
    };
    let headers = req.headers();
    let unread = declares_body(&req);
    // Two Host headers: which one a proxy and this server each believe is anyone's guess.
    if headers.get_all(HOST).iter().count() > 1 {
        return close_unread(
            unread,
            refuse(StatusCode::BAD_REQUEST, "more than one Host header".into()),
        );
    }
    let verdict = {
        let get = |name: axum::http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        // HTTP/2 carries the authority in the URI instead of a Host header.
        let host = get(HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
        let strict = mcp || !req.method().is_safe();
        state.host_guard.check(host, get(ORIGIN), strict)
    };
    if let Err(message) = verdict {
        return close_unread(unread, refuse(StatusCode::FORBIDDEN, message));
    }
    // Kept for a 401's challenge (the values share the request's buffer): the URL in it is
    // built for the rare 401, not for every request.
    let host = headers.get(HOST).cloned();
    let authority = req.uri().authority().cloned();
    let res = next.run(req).await;
    let res = super::well_known::challenge(&state.settings, host.as_ref(), authority.as_ref(), res);
    close_unread(unread, res)
}

fn declares_body(req: &Request) -> bool {
    req.version() == axum::http::Version::HTTP_11
        && (req.headers().contains_key(TRANSFER_ENCODING)
            || req
                .headers()
                .get(CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0"))
}

/// Refusals given before the body is read (host, token, route, size). hyper closes such a
/// connection when the body arrives after the answer; saying so up front makes the client open
/// a new one instead of writing its next request into a closed socket.
fn close_unread(unread: bool, mut res: Response) -> Response {
    if unread
        && matches!(
            res.status().as_u16(),
            401 | 403 | 404 | 405 | 411 | 413 | 415
        )
    {
        res.headers_mut()
            .insert(CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_names_and_configured_ones_only() {
        let mut s = Settings::default();
        let g = HostGuard::from_settings(&s);
        assert!(g.check(Some("127.0.0.1:8080"), None, true).is_ok());
        assert!(
            g.check(Some("localhost"), Some("http://localhost:3000"), true)
                .is_ok()
        );
        assert!(g.check(Some("[::1]:8080"), None, true).is_ok());
        assert!(g.check(Some("evil.example.com"), None, true).is_err());
        assert!(
            g.check(
                Some("127.0.0.1:8080"),
                Some("http://evil.example.com"),
                true
            )
            .is_err()
        );
        assert!(g.check(None, None, true).is_err());

        s.server.public_url = Some("https://mcp.example.com".into());
        s.server.allowed_origins = vec!["https://app.example.com".into()];
        let g = HostGuard::from_settings(&s);
        assert!(
            g.check(
                Some("mcp.example.com"),
                Some("https://app.example.com"),
                true
            )
            .is_ok()
        );
        assert!(
            g.check(
                Some("mcp.example.com"),
                Some("https://other.example.com"),
                true
            )
            .is_err()
        );
        // An opaque origin may read, but not write or speak MCP, unless allowed by name.
        assert!(
            g.check(Some("mcp.example.com"), Some("null"), false)
                .is_ok()
        );
        assert!(
            g.check(Some("mcp.example.com"), Some("null"), true)
                .is_err()
        );
        s.server.allowed_origins.push("null".into());
        let g = HostGuard::from_settings(&s);
        assert!(g.check(Some("mcp.example.com"), Some("null"), true).is_ok());
    }
}
