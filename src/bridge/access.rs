//! Who may use the bridge: the Host/Origin allow-list (DNS-rebinding protection) and the
//! optional bearer token, compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::BridgeState;
use super::handlers::rpc_error;
use crate::mcp::RpcError;

pub(super) async fn check_host(
    State(state): State<Arc<BridgeState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(guard) = &state.host_guard else {
        return next.run(req).await;
    };
    let headers = req.headers();
    if headers.get_all(HOST).iter().count() > 1 {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            RpcError::invalid_request("more than one Host header"),
        );
    }
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = get(HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
    // Every route of the bridge speaks MCP: an opaque Origin is refused too.
    if let Err(message) = guard.check(host, get(ORIGIN), true) {
        return rpc_error(
            StatusCode::FORBIDDEN,
            None,
            RpcError::invalid_request(message),
        );
    }
    next.run(req).await
}

pub(super) async fn check_token(
    State(state): State<Arc<BridgeState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    if given.is_some_and(|g| same(g.trim().as_bytes(), token.expose().as_bytes())) {
        return next.run(req).await;
    }
    let mut res = rpc_error(
        StatusCode::UNAUTHORIZED,
        None,
        RpcError::invalid_request("a valid bearer token is required"),
    );
    res.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// Equality whose time depends only on the lengths, not on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn compares_whole_values() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"x"));
    }
}
