//! The MCP authorization surface (RFC 9728): the protected-resource metadata documents, and the
//! `WWW-Authenticate` challenge on every 401 that points clients at them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{HOST, WWW_AUTHENTICATE};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::InvalidToken;
use crate::config::Settings;

pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(&format!("{METADATA_PATH}/mcp"), get(metadata))
}

/// Where clients reach this gateway: `server.public_url`, else the request's Host over plain
/// HTTP (behind a TLS proxy, set `public_url`: forwarded headers are not trusted).
pub fn public_base(settings: &Settings, headers: &HeaderMap, uri: &Uri) -> String {
    // HTTP/2 carries the authority in the URI instead of a Host header.
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    base_for_host(settings, host)
}

/// The public base URL for a request to `host` (`server.public_url` when set).
fn base_for_host(settings: &Settings, host: Option<&str>) -> String {
    if let Some(url) = &settings.server.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = host.unwrap_or_default();
    // The host guard has vetted the name, but the raw value ends up inside a quoted header
    // parameter: anything beyond host[:port] characters could smuggle in parameters.
    let clean = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    let host = if clean { host } else { "localhost" };
    format!("http://{host}")
}

async fn metadata(State(state): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Json<Value> {
    let base = public_base(&state.settings, &headers, &uri);
    let servers: Vec<&str> = state
        .settings
        .auth
        .oidc
        .iter()
        .map(|o| o.issuer.as_str())
        .collect();
    Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "reflow",
    }))
}

/// Gives a 401 the challenge that names the resource metadata (MCP authorization spec): the
/// error itself cannot, as the URL depends on the request's Host. Called by the host guard
/// (one middleware layer for both), with the Host it has vetted against the allow-list.
pub fn challenge(
    settings: &Settings,
    host: Option<&HeaderValue>,
    authority: Option<&Authority>,
    mut res: Response,
) -> Response {
    if res.status() != StatusCode::UNAUTHORIZED {
        return res;
    }
    let host = host.and_then(|v| v.to_str().ok());
    let base = base_for_host(settings, host.or(authority.map(Authority::as_str)));
    let mut value = format!(r#"Bearer resource_metadata="{base}{METADATA_PATH}/mcp""#);
    if res.extensions().get::<InvalidToken>().is_some() {
        value.push_str(r#", error="invalid_token""#);
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_prefers_public_url_and_rejects_odd_hosts() {
        let mut s = Settings::default();
        let uri = Uri::from_static("/mcp");
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(public_base(&s, &h, &uri), "http://127.0.0.1:8080");
        h.insert(HOST, HeaderValue::from_static("[::1]\", x=\"y"));
        assert_eq!(public_base(&s, &h, &uri), "http://localhost");
        s.server.public_url = Some("https://gw.example.com/".into());
        assert_eq!(public_base(&s, &h, &uri), "https://gw.example.com");
    }
}
