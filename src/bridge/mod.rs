//! `reflow bridge`: one stdio MCP server served over Streamable HTTP, one child process per
//! session, with an optional bearer token and DNS-rebinding protection. No database, no config.
//!
//! Era: the bridge speaks the session era (2024-11-05 … 2025-11-25), which is what a stdio
//! server speaks; 2026-07-28 requests get the answer that makes dual-era clients (reflow's
//! upstream client, the SDKs in auto mode) fall back to `initialize` (see `handlers`).

mod access;
mod handlers;
mod registry;
mod session;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use registry::{OpenError, Sessions};
pub use session::SessionId;

use crate::config::Secret;
use crate::http::HostGuard;
use crate::upstream::StdioSpec;

/// The largest request body accepted (a tool call's arguments), as the stdio transport's line cap.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Liveness and readiness, without a token.
pub const HEALTH_PATH: &str = "/health";
/// After the shutdown signal, in-flight HTTP requests get this long before the bridge exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to run the bridge. Debug never shows the token.
#[derive(Debug)]
pub struct BridgeOptions {
    /// What each session runs (its env is the bridge's, without the token variable).
    pub child: StdioSpec,
    /// The endpoint path, e.g. `/mcp`.
    pub path: String,
    /// Required as `Authorization: Bearer …` when set.
    pub token: Option<Secret>,
    /// Host/Origin allow-list; none: no check (a non-loopback listener without `--allow-host`).
    pub host_guard: Option<HostGuard>,
    pub idle_timeout: Duration,
    pub max_sessions: usize,
    /// Per request to the child.
    pub request_timeout: Duration,
}

/// What the handlers share.
pub(crate) struct BridgeState {
    sessions: Arc<Sessions>,
    timeout: Duration,
    token: Option<Secret>,
    host_guard: Option<HostGuard>,
}

/// The bridge's router (a plain function, so tests can mount it) and its session registry.
pub fn router(options: BridgeOptions) -> (Router, Arc<Sessions>) {
    let sessions = Sessions::new(options.child, options.max_sessions);
    let state = Arc::new(BridgeState {
        sessions: sessions.clone(),
        timeout: options.request_timeout,
        token: options.token,
        host_guard: options.host_guard,
    });
    let mcp = Router::new()
        .route(
            &options.path,
            post(handlers::post)
                .get(handlers::get)
                .delete(handlers::delete),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::check_token,
        ));
    let router = Router::new()
        .merge(mcp)
        // For probes (a kubelet has no token); says nothing but "the bridge is up".
        .route(HEALTH_PATH, get(|| async { Json(json!({"status": "ok"})) }))
        // Host/Origin before the token, so a rebinding page learns nothing.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::check_host,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    (router, sessions)
}

/// Serves until `shutdown` resolves; then every child is stopped (its process group signalled)
/// and reaped before this returns.
pub async fn serve(
    listener: TcpListener,
    options: BridgeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let idle = options.idle_timeout;
    let (router, sessions) = router(options);
    let sweeper = tokio::spawn(sessions.clone().sweep(idle));
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = sessions.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!(target: "reflow::bridge", sessions = closing.len(), "shutting down: stopping every stdio server");
        // Ending the sessions ends their streams too, so the graceful shutdown can finish.
        closing.close_all().await;
        let _ = stopped_tx.send(());
    });
    let result = tokio::select! {
        r = server => r,
        // A client that keeps a request open must not keep the bridge alive.
        _ = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    };
    sweeper.abort();
    sessions.close_all().await;
    result
}
