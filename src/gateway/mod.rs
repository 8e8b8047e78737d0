//! The MCP data path: downstream sessions, the upstream pool, and the router that fans out,
//! merges, renames and relays between them (DESIGN §3).

mod breaker;
mod client_messages;
pub(crate) mod cursor;
pub(crate) mod detach;
mod inbound;
mod isolation;
mod learned_names;
mod lifecycle;
mod list_cache;
mod listen;
mod lists;
mod log_level;
mod modern;
pub mod naming;
mod orphans;
#[cfg(feature = "kubernetes")]
mod pods;
mod policies;
mod processes;
pub mod request_state;
mod resolve;
mod rewrite;
mod router;
pub mod session;
mod targets;
mod tasks;
mod upstreams;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Value, json};

pub use lifecycle::Footprint;
pub use modern::{Call, Step};
pub use session::{Session, SessionTransport};
pub use targets::Target;

use crate::auth::Principal;
use crate::credentials::CredentialSnapshot;
use crate::policy::{Decision, ItemType};

use crate::config::Settings;
use crate::mcp::{self, RpcError};
use crate::store::{Store, StoreError};
use cursor::Cursors;
use lifecycle::close_upstreams;
use lists::ListKind;
use session::SessionRegistry;
use upstreams::UpstreamPool;

/// What a request sends its client, in order. The HTTP layer turns it into a JSON body or an
/// SSE stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    /// A notification, a request to the client, or finally the response.
    Message(Value),
    /// The response to a list request: its page's items kept serialized in the list cache.
    Page(crate::mcp::prepared::Prepared),
    /// Answer with an SSE stream even if the response comes first (the upstream streamed).
    Stream,
    /// End the client's stream now (the upstream did); the client resumes with Last-Event-ID.
    Break,
}

/// Where a request's messages go.
pub type Sink = tokio::sync::mpsc::UnboundedSender<Outgoing>;

#[derive(Clone, Debug)]
pub struct GatewayOptions {
    pub separator: String,
    pub max_name_len: usize,
    pub page_size: usize,
    pub default_timeout: Duration,
    pub list_cache_ttl: Duration,
    /// Timeout, per-user session and listen-stream caps.
    pub session: crate::config::SessionSettings,
    pub request_state_ttl: Duration,
    pub max_upstream_message: usize,
    pub stdio: crate::config::StdioSettings,
    pub kubernetes: crate::config::KubernetesSettings,
}

impl GatewayOptions {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            separator: s.naming.separator.clone(),
            max_name_len: s.naming.max_length,
            page_size: s.gateway.page_size,
            default_timeout: s.gateway.request_timeout,
            list_cache_ttl: s.gateway.list_cache_ttl,
            session: s.session.clone(),
            request_state_ttl: s.gateway.request_state_ttl,
            max_upstream_message: s.gateway.max_upstream_message,
            stdio: s.stdio.clone(),
            kubernetes: s.kubernetes.clone(),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `kubernetes.enabled` with a cluster configuration that cannot be loaded.
    #[cfg(feature = "kubernetes")]
    #[error(transparent)]
    Kubernetes(#[from] crate::upstream::kubernetes::KubeError),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("session not found: it expired or was ended; initialize a new one")]
    NotFound,
}

pub struct Gateway {
    opts: GatewayOptions,
    policies: policies::Policies,
    /// Each caller's last merged lists, valid while policies, targets and upstream lists stay.
    list_cache: list_cache::ListCache,
    audit: Arc<crate::audit::AuditLog>,
    /// Prometheus metrics, recorded from the resolved request and each upstream call.
    metrics: Arc<crate::telemetry::Metrics>,
    /// Targets that cannot be reached right now: their callers fail fast.
    breakers: breaker::Breakers,
    /// Upstream credentials, swapped by the app on every reload.
    credentials: Arc<ArcSwap<CredentialSnapshot>>,
    store: Store,
    targets: ArcSwap<Vec<Arc<Target>>>,
    sessions: SessionRegistry,
    pool: UpstreamPool,
    cursors: Cursors,
    /// Exposed tool/prompt name → (target name, original name), learned while listing, so
    /// shortened names map back.
    names: learned_names::LearnedNames,
    /// Stored sessions ended since this time have been checked against the in-memory ones.
    ended_checked_at: tokio::sync::Mutex<chrono::DateTime<chrono::Utc>>,
    /// Sealed `requestState` and the upstream requests parked behind it (2026-07-28).
    request_states: request_state::RequestStates,
    /// Open `subscriptions/listen` streams (2026-07-28).
    listeners: Mutex<Vec<listen::Listener>>,
    /// Who created the tasks relayed through this replica.
    task_owners: tasks::TaskOwners,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub async fn new(
        opts: GatewayOptions,
        audit: Arc<crate::audit::AuditLog>,
        metrics: Arc<crate::telemetry::Metrics>,
        credentials: Arc<ArcSwap<CredentialSnapshot>>,
        store: Store,
        encryption_key: &[u8; 32],
    ) -> Result<Arc<Self>, StartError> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| StoreError::Corrupt(format!("HTTP client: {e}")))?;
        let processes = processes::ProcessPool::new(opts.stdio.clone(), store.clone());
        processes.mark_stale_instances().await;
        #[cfg(feature = "kubernetes")]
        let pods = pods::PodPool::new(
            opts.kubernetes.clone(),
            store.clone(),
            processes.replica().to_string(),
            encryption_key,
        )
        .await?;
        let gw = Arc::new(Self {
            opts: opts.clone(),
            policies: policies::Policies::new(),
            list_cache: list_cache::ListCache::default(),
            audit,
            metrics,
            breakers: breaker::Breakers::default(),
            credentials,
            store,
            targets: ArcSwap::from_pointee(Vec::new()),
            sessions: SessionRegistry::default(),
            pool: UpstreamPool::new(
                http,
                processes,
                #[cfg(feature = "kubernetes")]
                pods,
            ),
            cursors: Cursors::new(encryption_key),
            names: learned_names::LearnedNames::default(),
            ended_checked_at: tokio::sync::Mutex::new(chrono::Utc::now()),
            request_states: request_state::RequestStates::new(
                encryption_key,
                opts.request_state_ttl,
            ),
            listeners: Mutex::new(Vec::new()),
            task_owners: tasks::TaskOwners::default(),
        });
        gw.reload().await?;
        #[cfg(feature = "kubernetes")]
        pods::spawn_background(&gw);
        Ok(gw)
    }

    /// Re-reads targets and policies. Connections of changed or removed targets are closed, and
    /// if anything changed every session is told its lists changed (what it may see can differ).
    /// Sessions that another process ended in the store end here too.
    pub async fn reload(self: &Arc<Self>) -> Result<(), StoreError> {
        self.end_sessions_ended_elsewhere().await?;
        self.pool.processes.apply_stop_requests().await;
        #[cfg(feature = "kubernetes")]
        self.apply_pod_stop_requests().await;
        let policies_changed = self.reload_policies().await?;
        let targets_changed = self.reload_targets().await?;
        if policies_changed || targets_changed {
            self.list_cache.clear();
            self.tell_listeners_everything_changed();
            for session in self.sessions.all() {
                for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources] {
                    session.push(
                        session::STANDALONE,
                        mcp::jsonrpc::notification(kind.changed_notification(), None),
                    );
                }
            }
        }
        Ok(())
    }

    async fn reload_policies(&self) -> Result<bool, StoreError> {
        self.policies.reload(&self.store).await
    }

    /// Re-reads the targets; true if they changed.
    async fn reload_targets(self: &Arc<Self>) -> Result<bool, StoreError> {
        let records = self.store.list_targets().await?;
        let new: Vec<Arc<Target>> = records
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| Target::from_record(r, &self.opts))
            .map(Arc::new)
            .collect();
        let old = self.targets.load_full();
        if old
            .iter()
            .map(|t| t.as_ref())
            .eq(new.iter().map(|t| t.as_ref()))
        {
            return Ok(false);
        }
        let stale: Vec<Arc<Target>> = old
            .iter()
            .filter(|o| !new.iter().any(|n| n.as_ref() == o.as_ref()))
            .cloned()
            .collect();
        let mut new = new;
        new.sort_by(|a, b| a.name.cmp(&b.name));
        self.targets.store(Arc::new(new));
        // Learned names may now point at changed targets; lists will teach them again.
        self.names.clear();
        self.list_cache.clear();
        for t in &stale {
            // A changed target is a new chance: its old failures say nothing about it.
            self.breakers.forget(t.id);
            self.pool.drop_target(t.id, &self.sessions.all()).await;
        }
        // Pods of changed or removed targets go now rather than at the next GC tick.
        #[cfg(feature = "kubernetes")]
        if self.pool.pods.enabled() && stale.iter().any(|t| t.pod().is_some()) {
            let gw = self.clone();
            tokio::spawn(async move { gw.collect_pods().await });
        }
        Ok(true)
    }

    /// The targets `principal` may use at all (policies: default deny), sorted by name: merges,
    /// collisions and name resolution all follow this one order.
    pub fn visible_targets(&self, principal: &Principal) -> Vec<Arc<Target>> {
        let policies = self.policies.load();
        self.targets
            .load()
            .iter()
            .filter(|t| policies.target_visible(principal, t.id))
            .cloned()
            .collect()
    }

    /// The visible targets among those `candidate` selects, in target order. Only candidates
    /// get a policy check: a call names one target, and finding it by checking every target
    /// cost a pass of ~6 µs with 50 targets under 200 policies, twice per call (benches/authz).
    pub(crate) fn visible_targets_among(
        &self,
        principal: &Principal,
        candidate: impl Fn(&Target) -> bool,
    ) -> Vec<Arc<Target>> {
        let policies = self.policies.load();
        self.targets
            .load()
            .iter()
            .filter(|t| candidate(t) && policies.target_visible(principal, t.id))
            .cloned()
            .collect()
    }

    /// The policy decision for one item of `target` (original, unprefixed name or URI).
    pub(crate) fn decide(
        &self,
        principal: &Principal,
        target: &Target,
        item: ItemType,
        name: &str,
    ) -> Decision {
        self.policies
            .load()
            .decide(principal, target.id, item, name)
    }

    /// A new, not yet initialized session (legacy SSE clients get one when they connect).
    /// A new legacy session. A user at `session.max_per_user` loses their least recently used
    /// one (ended as by DELETE), so one client in a loop cannot fill the gateway's memory.
    pub fn create_session(
        self: &Arc<Self>,
        principal: Principal,
        transport: SessionTransport,
    ) -> Arc<Session> {
        let own = self.sessions.of_user(principal.user_id);
        if own.len() >= self.opts.session.max_per_user {
            let excess = own.len() + 1 - self.opts.session.max_per_user;
            let evicted = session::least_recently_used(own, excess);
            for s in &evicted {
                // Ended now (the count is right for the next initialize); the store and the
                // upstream sessions follow in the background, as in `end_session`.
                s.end();
            }
            tracing::info!(user = %principal.email, evicted = evicted.len(), max = self.opts.session.max_per_user, "session.max_per_user reached; ending the least recently used");
            let gw = self.clone();
            tokio::spawn(async move {
                for s in evicted {
                    gw.end_session(&s).await;
                }
            });
        }
        let session = Arc::new(Session::new(principal, transport));
        self.sessions.insert(session.clone());
        session
    }

    /// Applies the client's `initialize` to `session` and returns the result: the protocol
    /// version, the union of the visible upstreams' capabilities, and instructions.
    pub async fn initialize(
        self: &Arc<Self>,
        session: &Arc<Session>,
        params: &Value,
    ) -> Result<Value, RpcError> {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = if mcp::LEGACY_VERSIONS.contains(&requested) {
            requested
        } else {
            mcp::LATEST_LEGACY_VERSION
        };
        *session.protocol_version.lock().unwrap() = version.to_string();
        *session.client_capabilities.lock().unwrap() = params
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({}));
        *session.client_info.lock().unwrap() =
            params.get("clientInfo").cloned().unwrap_or(Value::Null);

        let targets = self.visible_targets(&session.principal);
        let connected = self.connect_all(session, &targets).await;
        let mut caps = serde_json::Map::new();
        caps.insert("tools".into(), json!({ "listChanged": true }));
        let mut instructions = vec![format!(
            "reflow gateway. Tools and prompts are named {{target}}{}{{name}}; resource URIs {{target}}+{{uri}}.",
            self.opts.separator
        )];
        merge_offers(&connected, &mut caps, &mut instructions);
        for (_, handle) in &connected {
            let up = &handle.conn.server().capabilities;
            if up.get("logging").is_some() {
                caps.insert("logging".into(), json!({}));
            }
            if let Some(Value::Object(up_tasks)) = up.get("tasks") {
                // Task support is the union of what upstreams offer, merged key by key.
                let entry = caps.entry("tasks").or_insert_with(|| json!({}));
                if let Value::Object(merged) = entry {
                    for (k, v) in up_tasks {
                        merged.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        if !names.is_empty() {
            instructions.insert(1, format!("Targets: {}.", names.join(", ")));
        }
        if session.transport == SessionTransport::StreamableHttp {
            self.persist(session).await;
        }
        let result = json!({
            "protocolVersion": version,
            "capabilities": caps,
            "serverInfo": mcp::implementation_info(),
            "instructions": instructions.join("\n"),
        });
        Ok(result)
    }

    /// Finds a live session of `principal`: in memory, or persisted by another replica or an
    /// earlier run of this one. Another principal's session is "not found" too, and a session
    /// whose user changed role or groups since it began is recycled (ended, "not found").
    pub async fn session(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<Arc<Session>, SessionError> {
        let session = match self.sessions.get(id) {
            Some(s) => s,
            None => self.restore(id, principal).await?,
        };
        if session.is_ended() || session.principal.user_id != principal.user_id {
            return Err(SessionError::NotFound);
        }
        let idle = session.idle_secs() > self.opts.session.timeout.as_secs() as i64;
        // What principal_hash covers (role and groups), compared directly: no hashing per request.
        let rebound = session.principal.role != principal.role
            || session.principal.groups != principal.groups;
        if idle || rebound {
            self.end_session(&session).await;
            return Err(SessionError::NotFound);
        }
        session.touch();
        Ok(session)
    }

    async fn restore(&self, id: &str, principal: &Principal) -> Result<Arc<Session>, SessionError> {
        let record = match self.store.live_session(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(SessionError::NotFound),
            Err(e) => {
                tracing::warn!(error = %e, "looking up a session failed");
                return Err(SessionError::NotFound);
            }
        };
        let age = chrono::Utc::now() - record.last_seen_at;
        if record.user_id != principal.user_id
            || age.num_seconds() > self.opts.session.timeout.as_secs() as i64
        {
            return Err(SessionError::NotFound);
        }
        // Bound to the principal as it was; `session()` compares the hash right after.
        let mut original = principal.clone();
        if record.principal_hash != session::principal_hash(principal) {
            original.groups.clear();
            original.role = crate::domain::Role::parse("recycled").expect("valid role name");
        }
        let session = Arc::new(Session::with_id(
            record.id,
            original,
            SessionTransport::StreamableHttp,
        ));
        *session.protocol_version.lock().unwrap() = record.protocol_version;
        *session.client_capabilities.lock().unwrap() = record.client_capabilities;
        *session.client_info.lock().unwrap() = record.client_info;
        self.sessions.insert(session.clone());
        tracing::debug!(session = %session.id, "resumed a persisted session");
        Ok(session)
    }

    async fn persist(&self, session: &Session) {
        let now = chrono::Utc::now();
        let record = crate::store::SessionRecord {
            id: session.id.clone(),
            user_id: session.principal.user_id,
            principal_hash: session::principal_hash(&session.principal),
            protocol_version: session.protocol_version.lock().unwrap().clone(),
            client_capabilities: session.client_capabilities.lock().unwrap().clone(),
            client_info: session.client_info.lock().unwrap().clone(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
        };
        if let Err(e) = self.store.insert_session(&record).await {
            // The session still works here; only resuming it elsewhere is lost.
            tracing::warn!(error = %e, "persisting a session failed");
        }
    }

    /// Ends every `subscriptions/listen` stream (each closes with its result) and drops the
    /// parked `input_required` rounds (a retry elsewhere re-issues the call). Called on
    /// shutdown; worth calling as soon as shutdown begins, since open listen streams otherwise
    /// hold the server until the shutdown grace ends.
    pub fn close_modern_streams(&self) {
        self.listeners.lock().unwrap().clear();
        self.request_states.clear();
    }

    /// One stdio GC pass (idle, too old, retired, crashed processes); the app runs it every
    /// `stdio.gc_interval`.
    pub async fn collect_processes(&self) {
        self.pool.processes.collect().await;
    }

    pub fn stdio_gc_interval(&self) -> Duration {
        self.pool.processes.gc_interval()
    }

    /// Stops this process's stdio instances of `target` and asks other replicas to stop theirs;
    /// the next use starts them again. Returns how many live instances were asked to stop.
    pub async fn restart_instances(
        &self,
        target: crate::domain::TargetId,
    ) -> Result<u64, StoreError> {
        let n = self.store.request_instance_stop(target).await?;
        self.pool.processes.apply_stop_requests().await;
        #[cfg(feature = "kubernetes")]
        self.apply_pod_stop_requests().await;
        Ok(n)
    }

    /// The protocol era each enabled target speaks, by name: probed for HTTP targets (None
    /// until the first connection), the legacy era for stdio processes.
    pub fn target_eras(&self) -> Vec<(String, Option<&'static str>)> {
        self.targets
            .load()
            .iter()
            .map(|t| {
                let era = match &t.endpoint {
                    targets::Endpoint::Http(url) => self.pool.era_of(url),
                    targets::Endpoint::Stdio(_) => Some(crate::upstream::Era::Legacy),
                    #[cfg(feature = "kubernetes")]
                    targets::Endpoint::Pod(_) => None,
                };
                (t.name.clone(), era.map(|e| e.as_str()))
            })
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Closes every upstream connection (shutdown). Sessions stay live in the store: clients
    /// carry on with another replica, or with this one after a restart.
    pub async fn shutdown(&self) {
        self.close_modern_streams();
        for s in self.sessions.all() {
            self.end_session_now(&s);
            close_upstreams(&s).await;
        }
        self.pool.close_all().await;
    }
}

/// What the connected upstreams offer a client of either era: prompts, completions and
/// resources (subscribable when any upstream is), and each target's instructions under its name.
pub(crate) fn merge_offers(
    connected: &[(Arc<Target>, Arc<upstreams::UpstreamHandle>)],
    caps: &mut serde_json::Map<String, Value>,
    instructions: &mut Vec<String>,
) {
    for (target, handle) in connected {
        let up = &handle.conn.server().capabilities;
        if up.get("prompts").is_some() {
            caps.insert("prompts".into(), json!({ "listChanged": true }));
        }
        if up.get("completions").is_some() {
            caps.insert("completions".into(), json!({}));
        }
        if let Some(res) = up.get("resources") {
            let subscribe = res["subscribe"].as_bool().unwrap_or(false)
                || caps
                    .get("resources")
                    .and_then(|r| r["subscribe"].as_bool())
                    .unwrap_or(false);
            caps.insert(
                "resources".into(),
                json!({ "listChanged": true, "subscribe": subscribe }),
            );
        }
        if let Some(text) = &handle.conn.server().instructions {
            instructions.push(format!("[{}] {}", target.name, text));
        }
    }
}
