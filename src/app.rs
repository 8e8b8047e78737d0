//! Builds the store, the authenticator and the services once, runs the HTTP server and the
//! background loops, and owns shutdown.

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use tokio::net::TcpListener;

use crate::audit::{AuditLog, AuditWriter};
use crate::auth::{Authenticator, JwtKeys, LoginLimiter, OidcVerifier};
use crate::config::Settings;
use crate::credentials::CredentialSnapshot;
use crate::crypto::{Keyring, random_bytes};
use crate::gateway::{Gateway, GatewayOptions};
use crate::http::{self, AppState, HostGuard};
use crate::service::{CredentialService, PolicyService, TargetService, TokenService, UserService};
use crate::store::{Backend, Store};
use crate::telemetry::{Metrics, Tracing};

/// How often each server checks the revision counter for writes by the CLI or other replicas.
const REVISION_POLL: Duration = Duration::from_millis(500);
/// The least time between two checks woken by the database watch. This server's own writes
/// (the audit log, a batch every few milliseconds under load) wake it too; unthrottled, the
/// checks took a share of the CPU the requests needed.
const WAKE_GAP: Duration = Duration::from_millis(50);

/// Key material, from the config or generated into the data directory on first use.
pub struct Secrets {
    pub jwt: Vec<u8>,
    pub encryption_key: [u8; 32],
    /// Files created by this call, so the caller can say so once.
    pub generated: Vec<PathBuf>,
}

impl Secrets {
    pub fn load_or_generate(settings: &Settings) -> anyhow::Result<Self> {
        let mut generated = Vec::new();
        let jwt = match &settings.auth.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => {
                let path = settings.data_dir.join("jwt_secret");
                let (text, created) = read_or_create(&path, || hex::encode(random_bytes::<32>()))?;
                if created {
                    generated.push(path.clone());
                }
                if text.len() < 32 {
                    bail!(
                        "{} holds a JWT secret of {} bytes; it must be at least 32",
                        path.display(),
                        text.len()
                    );
                }
                text.into_bytes()
            }
        };
        let encryption_key = match settings.decoded_encryption_key()? {
            Some(key) => key,
            None => {
                let path = settings.data_dir.join("encryption.key");
                let b64 = base64::engine::general_purpose::STANDARD;
                let (text, created) = read_or_create(&path, || b64.encode(random_bytes::<32>()))?;
                if created {
                    generated.push(path.clone());
                }
                let bytes = b64
                    .decode(text.trim())
                    .with_context(|| format!("{} is not base64", path.display()))?;
                bytes.try_into().map_err(|b: Vec<u8>| {
                    anyhow::anyhow!(
                        "{} holds a key of {} bytes; it must be 32",
                        path.display(),
                        b.len()
                    )
                })?
            }
        };
        Ok(Self {
            jwt,
            encryption_key,
            generated,
        })
    }
}

/// Reads `path`, or creates it (mode 0600, and its directory 0700) with `make()`.
fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<(String, bool)> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            let value = make();
            f.write_all(value.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok((value, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((text.trim().to_string(), false))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Opens (and migrates) the configured database.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    Store::open(&url, settings.database.max_connections)
        .await
        .with_context(|| format!("cannot open database {}", crate::store::redact_url(&url)))
}

pub struct App {
    state: Arc<AppState>,
    audit_writer: AuditWriter,
}

impl App {
    /// The app without span export (tests, benches): spans still get ids for audit rows.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Tracing::default()).await
    }

    pub async fn build_with(settings: Settings, tracing: Tracing) -> anyhow::Result<Self> {
        let secrets = Secrets::load_or_generate(&settings)?;
        for path in &secrets.generated {
            tracing::info!(path = %path.display(), "generated a new secret (keep this file; losing it invalidates tokens or stored credentials)");
        }
        let store = open_store(&settings).await?;
        if store.backend() == Backend::Postgres && !secrets.generated.is_empty() {
            tracing::warn!(
                "secrets were generated locally while the database is shared Postgres: set auth.jwt_secret and encryption.key so every replica uses the same ones"
            );
        }
        let key_settings = settings.clone();
        let keyring = Arc::new(Keyring::new(
            &secrets.encryption_key,
            Box::new(move || {
                Secrets::load_or_generate(&key_settings)
                    .map(|s| s.encryption_key)
                    .map_err(|e| format!("{e:#}"))
            }),
        ));
        let authn = Authenticator::new(
            JwtKeys::new(&secrets.jwt),
            store.clone(),
            settings.auth.token_ttl,
        )
        .await
        .context("cannot load users and tokens")?;
        // Keys are fetched on first use: the IdP being down must not stop the gateway starting.
        let authn = match &settings.auth.oidc {
            Some(oidc) => authn.with_oidc(OidcVerifier::new(oidc.clone())),
            None => authn,
        };
        let revision = store
            .revision()
            .await
            .context("cannot read the database revision")?;
        // Loaded now so a key that cannot open stored values fails at start, not at first use;
        // after reading the revision, so a concurrent write is at worst loaded twice.
        let credentials = CredentialSnapshot::load(&store, &keyring.current())
            .await
            .context("cannot open stored upstream credentials (is encryption.key the key they were sealed with?)")?;
        let activity = Arc::new(crate::activity::Activity::default());
        let (audit, audit_writer) = AuditLog::start(
            store.clone(),
            settings.audit.queue_size,
            settings.audit.log_arguments,
            activity.clone(),
        );
        let credentials = Arc::new(arc_swap::ArcSwap::from_pointee(credentials));
        let metrics = Arc::new(Metrics::new(settings.metrics.tool_label));
        let gateway = Gateway::new(
            GatewayOptions::from_settings(&settings),
            audit.clone(),
            metrics.clone(),
            credentials.clone(),
            store.clone(),
            &secrets.encryption_key,
        )
        .await
        .context("cannot start the gateway")?;
        let state = Arc::new(AppState {
            gateway,
            audit,
            metrics,
            host_guard: HostGuard::from_settings(&settings),
            revision: std::sync::atomic::AtomicI64::new(revision),
            activity,
            unauthenticated: Default::default(),
            signed_out: crate::auth::cookie::SignedOut::default(),
            credentials_stale: std::sync::atomic::AtomicBool::new(false),
            limiter: LoginLimiter::new(settings.auth.login_attempts_per_minute),
            users: UserService::new(store.clone()),
            tokens: TokenService::new(store.clone()),
            targets: TargetService::new(store.clone()),
            policies: PolicyService::new(store.clone()),
            secrets: CredentialService::new(store.clone(), keyring.clone()),
            keyring,
            credentials,
            authn: Arc::new(authn),
            store,
            settings: Arc::new(settings),
        });
        {
            let weak = Arc::downgrade(&state);
            state.metrics.set_live(move || match weak.upgrade() {
                Some(s) => s.live_metrics(tracing.dropped_spans()),
                None => Default::default(),
            });
        }
        Ok(Self {
            state,
            audit_writer,
        })
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves; in-flight requests then get
    /// `server.shutdown_grace` to finish before the server stops regardless. Background work
    /// ends and the database is closed before this returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let _watcher = AbortOnDrop(tokio::spawn(watch_revision(self.state.clone())));
        let _stdio_gc = AbortOnDrop(tokio::spawn(collect_processes(self.state.clone())));
        let _refusals = AbortOnDrop(tokio::spawn(flush_refusals(self.state.clone())));
        let _scrape = match &self.state.settings.metrics.listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on metrics.listen {addr}"))?;
                tracing::info!(address = %l.local_addr()?, "serving /metrics for scrapers");
                let router = http::metrics::scrape_router(self.state.clone());
                let state_settings = self.state.settings.clone();
                Some(AbortOnDrop(tokio::spawn(async move {
                    let limits = http::Limits::from_settings(&state_settings.server);
                    if let Err(e) = http::serve(l, router, std::future::pending(), limits).await {
                        tracing::error!(error = %e, "the metrics listener failed");
                    }
                })))
            }
            None => None,
        };
        let grace = self.state.settings.server.shutdown_grace;
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let gateway = self.state.gateway.clone();
        let signal = async move {
            shutdown.await;
            // Listen streams never end on their own: close them now, or they would hold the
            // server until the grace runs out.
            gateway.close_modern_streams();
            let _ = stopping_tx.send(());
        };
        let limits = http::Limits::from_settings(&self.state.settings.server);
        let server = http::serve(listener, self.router(), signal, limits);
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result.context("HTTP server failed")?,
            () = async {
                if stopping_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(?grace, "in-flight requests did not finish within the shutdown grace; stopping anyway");
            }
        }
        self.state.gateway.shutdown().await;
        self.state.unauthenticated.flush(&self.state.audit).await;
        // The audit flush and the database close get a grace each, whatever the store does.
        self.audit_writer.finish(grace).await;
        if tokio::time::timeout(grace, self.state.store.close())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "the database did not close within the shutdown grace"
            );
        }
        Ok(())
    }
}

/// Revision polls between checks for sessions ended on other replicas (about 2 s).
const ENDED_SESSIONS_EVERY: u64 = 4;

/// Reloads snapshots when the revision moves (CLI writes, other replicas), prunes limiters and
/// ends idle sessions.
async fn watch_revision(state: Arc<AppState>) {
    // Writes by other processes wake the check at once; the poll is the fallback.
    let wake = Arc::new(tokio::sync::Notify::new());
    let _watch = match state.store.watch_revision(wake.clone()).await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "polling the revision only");
            None
        }
    };
    let mut tick = tokio::time::interval(REVISION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweep_every = (state.settings.session.cleanup_interval.as_millis()
        / REVISION_POLL.as_millis())
    .max(1) as u64;
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {
                check_revision(&state).await;
                // A write meanwhile leaves its wake-up stored: it is checked right after.
                tokio::time::sleep(WAKE_GAP).await;
                continue;
            }
        }
        check_revision(&state).await;
        n += 1;
        // Sessions ended on other replicas (a client's DELETE there) end here too; cheap
        // enough to check every couple of seconds, and no reason to reload everything.
        if n.is_multiple_of(ENDED_SESSIONS_EVERY)
            && let Err(e) = state.gateway.end_sessions_ended_elsewhere().await
        {
            tracing::warn!(error = %e, "checking for sessions ended elsewhere failed");
        }
        if n.is_multiple_of(sweep_every) {
            state.limiter.prune();
            let retention = chrono::Duration::from_std(state.settings.audit.retention)
                .unwrap_or(chrono::Duration::days(30));
            match state
                .store
                .prune_audit(chrono::Utc::now() - retention)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned audit rows past retention"),
                Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
            }
            if let Err(e) = state.store.prune_request_states(chrono::Utc::now()).await {
                tracing::warn!(error = %e, "pruning used requestStates failed");
            }
            let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
            if let Err(e) = state.store.prune_task_owners(day_ago).await {
                tracing::warn!(error = %e, "pruning task owners failed");
            }
            let ended = state
                .gateway
                .sweep_sessions(state.settings.session.cleanup_interval)
                .await;
            if ended > 0 {
                tracing::info!(sessions = ended, "ended idle sessions");
            }
        }
    }
}

/// Reloads the snapshots if the revision moved, or the credentials if they were marked stale.
async fn check_revision(state: &AppState) {
    match state.store.revision().await {
        Ok(rev) if rev != state.revision.load(std::sync::atomic::Ordering::Relaxed) => {
            state.reload(rev).await;
            tracing::debug!(revision = rev, "reloaded snapshots");
        }
        Ok(_)
            if state
                .credentials_stale
                .load(std::sync::atomic::Ordering::Relaxed) =>
        {
            state.reload_credentials().await;
        }
        Ok(_) => {}
        // Closing the pool at shutdown checkpoints the SQLite WAL, which wakes this check.
        Err(_) if state.store.is_closed() => {}
        Err(e) => tracing::warn!(error = %e, "polling the revision failed"),
    }
}

/// Writes the counted 401s of the MCP endpoints to the audit log, once a second.
async fn flush_refusals(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        state.unauthenticated.flush(&state.audit).await;
    }
}

/// Stops idle, too old and retired stdio processes and records crashes, every
/// `stdio.gc_interval`.
async fn collect_processes(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.gateway.stdio_gc_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.gateway.collect_processes().await;
    }
}

/// Aborts the task when dropped, so background loops end with the server.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
