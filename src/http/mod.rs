//! HTTP surface: the router (a plain function of the state, so tests mount it on port 0) and
//! `serve`, which runs it on a bound listener until a shutdown signal.

mod accounts;
mod audit_export;
mod auth_api;
mod credentials;
mod edge_audit;
mod error;
mod explorer;
mod extract;
mod guard;
mod health;
mod listener;
mod logs;
mod mcp;
mod mcp_streams;
pub mod metrics;
mod modern;
mod observability;
pub mod openapi;
mod policies;
mod self_wake;
mod sessions;
mod target_probe;
mod targets;
mod ui;
mod users;
pub mod well_known;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiJson};
pub use guard::HostGuard;

use crate::auth::{Authenticator, LoginLimiter};
use crate::config::Settings;
use crate::credentials::{CredentialError, CredentialSnapshot};
use crate::crypto::{Keyring, SealError};
use crate::gateway::Gateway;
use crate::service::{CredentialService, PolicyService, TargetService, TokenService, UserService};
use crate::store::Store;

/// Everything a request handler may use; built once by `app`.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub authn: Arc<Authenticator>,
    pub users: UserService,
    pub tokens: TokenService,
    pub targets: TargetService,
    pub policies: PolicyService,
    /// Writes and metadata of upstream credentials (values sealed before storage).
    pub secrets: CredentialService,
    /// Opens stored credentials; the same key the CLI seals with.
    /// Seals and opens upstream credentials; its key can change while the server runs.
    pub keyring: Arc<Keyring>,
    /// Every upstream credential, decrypted, as of `revision`; the gateway resolves from it.
    pub credentials: Arc<arc_swap::ArcSwap<CredentialSnapshot>>,
    pub limiter: LoginLimiter,
    pub gateway: Arc<Gateway>,
    pub audit: Arc<crate::audit::AuditLog>,
    pub metrics: Arc<crate::telemetry::Metrics>,
    pub host_guard: guard::HostGuard,
    /// The store revision this process last loaded.
    pub revision: std::sync::atomic::AtomicI64,
    /// The dashboard's in-memory counters, fed from the audit log.
    pub activity: Arc<crate::activity::Activity>,
    /// 401s on the MCP endpoints, counted until the next audit flush.
    pub unauthenticated: edge_audit::Unauthenticated,
    /// Web UI sessions ended by sign-out before their expiry.
    pub signed_out: crate::auth::cookie::SignedOut,
    /// The last credential reload failed: retried every poll until it succeeds (a key file
    /// replaced a moment after the values it seals).
    pub credentials_stale: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Makes this replica see its own admin write at once (others follow via the revision poll).
    pub async fn refresh(&self) {
        match self.store.revision().await {
            Ok(rev) => self.reload(rev).await,
            Err(e) => tracing::warn!(error = %e, "reading the revision after a write failed"),
        }
    }

    /// Reloads every snapshot (users and tokens, targets) at `revision`.
    pub async fn reload(&self, revision: i64) {
        self.revision
            .store(revision, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = self.authn.reload().await {
            tracing::warn!(error = %e, "reloading the auth snapshot failed");
        }
        if let Err(e) = self.gateway.reload().await {
            tracing::warn!(error = %e, "reloading targets and policies failed");
        }
        self.reload_credentials().await;
    }

    /// Reloads every credential. A value sealed with a key this server does not hold means the
    /// key was rotated (`reflow secret rotate-key`): read the key source again and retry, so
    /// new values open with the new key and old ones with the old. On failure the previous
    /// snapshot stays: callers keep working credentials rather than losing all of them.
    pub async fn reload_credentials(&self) {
        let mut result = CredentialSnapshot::load(&self.store, &self.keyring.current()).await;
        if let Err(CredentialError::Open {
            source: SealError::UnknownKey(unknown),
            ..
        }) = &result
        {
            match self.keyring.refresh() {
                Ok(Some(id)) => {
                    tracing::info!(key_id = %id, "the encryption key changed; sealing new values with it, opening older ones with the keys held before");
                    result = CredentialSnapshot::load(&self.store, &self.keyring.current()).await;
                }
                Ok(None) => {
                    tracing::warn!(key_id = %unknown, "stored credentials use a key that is neither this server's nor in its key source")
                }
                Err(e) => tracing::warn!(error = %e, "reading the encryption key again failed"),
            }
        }
        let failed = result.is_err();
        match result {
            Ok(snap) => self.credentials.store(Arc::new(snap)),
            Err(e) => tracing::warn!(error = %e, "reloading upstream credentials failed"),
        }
        self.credentials_stale
            .store(failed, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.settings.server.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(auth_api::routes())
        .merge(users::routes())
        .merge(sessions::routes())
        .merge(targets::routes())
        .merge(credentials::routes())
        .merge(policies::routes())
        .merge(
            mcp::routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                edge_audit::unauthenticated,
            )),
        )
        .merge(logs::routes())
        .merge(well_known::routes())
        .merge(observability::routes())
        .merge(accounts::routes())
        .merge(audit_export::routes())
        .merge(target_probe::routes())
        .merge(explorer::routes())
        .merge(openapi::routes())
        .merge(ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check_host,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

pub use listener::{Limits, serve};
