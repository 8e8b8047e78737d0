//! Upstream connections, one per target (stateless) or per target and session (stateful):
//! connected lazily, reconnected when closed, each with its list cache and in-flight map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::domain::{TargetId, Transport};
use crate::mcp::RpcError;
use crate::mcp::modern as wire;
use crate::upstream::{
    Handshake, HttpTransport, Inbound, UpstreamConnection, UpstreamError, UpstreamSpec,
};

use super::lists::ListKind;
use super::session::Session;
use super::{Gateway, Sink, Target};

/// A request we relayed upstream and have not seen answered.
pub(crate) struct InFlight {
    pub session: Weak<Session>,
    pub sink: Sink,
    /// The client's own progress token, restored on the way back.
    pub progress_token: Option<Value>,
}

/// A cached list: when it was fetched, and every item of every upstream page.
pub(crate) type CachedList = (Instant, Arc<Vec<Value>>);

pub(crate) struct UpstreamHandle {
    pub target: Arc<Target>,
    pub conn: Arc<UpstreamConnection>,
    /// The session that owns this connection (stateful targets).
    pub owner: Option<Weak<Session>>,
    pub lists: Mutex<HashMap<ListKind, CachedList>>,
    /// Upstream request id (JSON text) → the relayed request.
    pub in_flight: Mutex<HashMap<String, InFlight>>,
    /// Which credentials it was opened with (a change opens a new connection).
    pub fingerprint: String,
    /// The upstream answers requests with SSE streams; its merged lists are streamed too.
    pub streams_answers: std::sync::atomic::AtomicBool,
    /// How many inbound items the pump has relayed (compared with `conn.delivered()`).
    pub processed: tokio::sync::watch::Sender<u64>,
    /// Sessions that use this connection (stdio processes): list changes and resource updates
    /// go to them only, not to every session that can see the target.
    pub attached: Mutex<Vec<Weak<Session>>>,
    /// A shared connection asked to log everything (`debug`) once some client set a level: the
    /// gateway filters per caller, so one client's level never changes what another receives.
    pub logs_everything: std::sync::atomic::AtomicBool,
    /// When a caller last asked for it (shared connections are closed after idling).
    last_used: Mutex<Instant>,
}

impl UpstreamHandle {
    /// Records that `session` uses this connection.
    pub fn attach(&self, session: &Arc<Session>) {
        let mut list = self.attached.lock().unwrap();
        if !list
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(session)))
        {
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(session));
        }
    }

    pub fn is_stdio(&self) -> bool {
        self.target.stdio().is_some()
    }

    /// Serves one isolation key (a stdio process or a pod), not every session that can see
    /// the target.
    pub fn is_isolated(&self) -> bool {
        #[cfg(feature = "kubernetes")]
        if self.target.pod().is_some() {
            return true;
        }
        self.is_stdio()
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap() = Instant::now();
    }

    /// Unused for `idle` with nothing in flight: a shared connection nobody needs any more
    /// (its credentials changed, or its callers left).
    fn idle_for(&self, idle: Duration) -> bool {
        self.last_used.lock().unwrap().elapsed() >= idle
            && self.in_flight.lock().unwrap().is_empty()
    }
}

impl UpstreamHandle {
    /// Waits until everything the upstream sent before its latest response has been relayed,
    /// so progress and log messages reach the client before the response does.
    pub async fn relayed_up_to_now(&self) {
        let target = self.conn.delivered();
        let mut rx = self.processed.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|n| *n >= target)).await;
    }
}

impl UpstreamHandle {
    pub fn cached(&self, kind: ListKind, ttl: Duration) -> Option<Arc<Vec<Value>>> {
        let lists = self.lists.lock().unwrap();
        lists
            .get(&kind)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, items)| items.clone())
    }

    pub fn invalidate(&self, kind: ListKind) {
        self.lists.lock().unwrap().remove(&kind);
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<UpstreamHandle>>>>;

pub(crate) struct UpstreamPool {
    http: reqwest::Client,
    /// Stdio targets: child processes by isolation key.
    pub processes: super::processes::ProcessPool,
    /// Kubernetes targets: pods by isolation key and credentials.
    #[cfg(feature = "kubernetes")]
    pub pods: super::pods::PodPool,
    /// Keyed by target and credential fingerprint: callers with different credentials never
    /// share an upstream connection.
    shared: Mutex<HashMap<(TargetId, String), Slot>>,
    /// Which protocol era each upstream URL speaks, probed once.
    eras: crate::upstream::EraCache,
}

impl UpstreamPool {
    pub fn new(
        http: reqwest::Client,
        processes: super::processes::ProcessPool,
        #[cfg(feature = "kubernetes")] pods: super::pods::PodPool,
    ) -> Self {
        Self {
            http,
            processes,
            #[cfg(feature = "kubernetes")]
            pods,
            shared: Mutex::new(HashMap::new()),
            eras: Default::default(),
        }
    }

    /// Closes a target's connections after its configuration changed or it was removed.
    pub async fn drop_target(&self, id: TargetId, sessions: &[Arc<Session>]) {
        self.processes.stop_target(id).await;
        #[cfg(feature = "kubernetes")]
        self.pods.drop_target(id).await;
        let slots: Vec<Slot> = {
            let mut shared = self.shared.lock().unwrap();
            let keys: Vec<_> = shared.keys().filter(|(t, _)| *t == id).cloned().collect();
            keys.iter().filter_map(|k| shared.remove(k)).collect()
        };
        for slot in slots {
            if let Some(h) = slot.lock().await.take() {
                h.conn.close().await;
            }
        }
        for s in sessions {
            let handle = s.upstreams.lock().await.remove(&id);
            if let Some(h) = handle {
                h.conn.close().await;
            }
        }
    }

    /// Closes and forgets shared connections idle for `idle` (or already closed, or never
    /// opened): entries of old credential fingerprints and capability sets do not pile up.
    /// Returns how many went.
    pub async fn sweep_shared(&self, idle: Duration) -> usize {
        let stale: Vec<Arc<UpstreamHandle>> = {
            let mut shared = self.shared.lock().unwrap();
            let mut stale = Vec::new();
            shared.retain(|_, slot| {
                // A slot being connected right now is in use.
                let Ok(guard) = slot.try_lock() else {
                    return true;
                };
                match guard.as_ref() {
                    None => false,
                    Some(h) if h.conn.is_closed() || h.idle_for(idle) => {
                        stale.push(h.clone());
                        false
                    }
                    Some(_) => true,
                }
            });
            stale
        };
        for h in &stale {
            h.conn.close().await;
        }
        stale.len()
    }

    /// The era `url` was probed to speak, once it has been.
    pub fn era_of(&self, url: &url::Url) -> Option<crate::upstream::Era> {
        self.eras.era(url)
    }

    /// How many shared connections (or slots being connected) the pool holds.
    pub fn shared_len(&self) -> usize {
        self.shared.lock().unwrap().len()
    }

    pub async fn close_all(&self) {
        let slots: Vec<Slot> = self
            .shared
            .lock()
            .unwrap()
            .drain()
            .map(|(_, s)| s)
            .collect();
        for slot in slots {
            if let Some(h) = slot.lock().await.take() {
                h.conn.close().await;
            }
        }
        self.processes.stop_all().await;
        #[cfg(feature = "kubernetes")]
        self.pods.close_all().await;
    }

    #[cfg(feature = "kubernetes")]
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    #[cfg(feature = "kubernetes")]
    pub(super) fn eras(&self) -> &crate::upstream::EraCache {
        &self.eras
    }
}

/// What the caller's credentials make of a target: the headers to send, the URL (BASE_URL may
/// redirect it, never from a user's own scope) and a fingerprint that keys the connection.
pub(crate) struct Credentialed {
    headers: reqwest::header::HeaderMap,
    url: url::Url,
    fingerprint: String,
}

fn spec(target: &Target, creds: &Credentialed) -> UpstreamSpec {
    UpstreamSpec {
        name: target.name.clone(),
        url: creds.url.clone(),
        transport: match target.transport {
            Transport::Sse => HttpTransport::Sse,
            _ => HttpTransport::Auto,
        },
        headers: creds.headers.clone(),
        timeout: target.timeout,
        max_message: target.max_message,
    }
}

/// A connection to use now, with the circuit breaker's leave: when this use is the half-open
/// probe, the probe's slot is held until the caller records the outcome or drops this.
pub(crate) struct Leased<'a> {
    handle: Arc<UpstreamHandle>,
    _admission: Option<super::breaker::Admission<'a>>,
}

impl Leased<'_> {
    fn unguarded(handle: Arc<UpstreamHandle>) -> Self {
        Self {
            handle,
            _admission: None,
        }
    }

    pub(crate) fn into_handle(self) -> Arc<UpstreamHandle> {
        self.handle
    }
}

impl std::ops::Deref for Leased<'_> {
    type Target = Arc<UpstreamHandle>;
    fn deref(&self) -> &Self::Target {
        &self.handle
    }
}

impl Gateway {
    /// The connection `session` uses for `target`, connecting (or reconnecting) as needed.
    pub(crate) async fn upstream(
        self: &Arc<Self>,
        session: &Arc<Session>,
        target: &Arc<Target>,
    ) -> Result<Leased<'_>, RpcError> {
        if let Some(cmd) = target.stdio() {
            // Processes have their own crash backoff (processes.rs): a dead child is restarted
            // at once, then after growing delays.
            // Boxed, as is every connect path below: inline, their futures (a process spawn
            // is ~15 KB) would size, and be copied with, every HTTP call that never takes them.
            return Box::pin(self.stdio_upstream(session, target, cmd))
                .await
                .map(Leased::unguarded);
        }
        #[cfg(feature = "kubernetes")]
        if let Some(pod) = target.pod() {
            return Box::pin(self.pod_upstream(session, target, pod))
                .await
                .map(Leased::unguarded);
        }
        let admission = self
            .breakers
            .admit(target.id, &target.name, target.timeout)?;
        let handle = self.http_upstream(session, target).await?;
        Ok(Leased {
            handle,
            _admission: Some(admission),
        })
    }

    async fn http_upstream(
        self: &Arc<Self>,
        session: &Arc<Session>,
        target: &Arc<Target>,
    ) -> Result<Arc<UpstreamHandle>, RpcError> {
        let creds = self.credentialed(session, target)?;
        // Modern (stateless) requests use the shared pool even for stateful targets.
        if target.per_session() && !session.modern {
            let mut owned = session.upstreams.lock().await;
            if let Some(h) = owned.get(&target.id)
                && !h.conn.is_closed()
                && h.fingerprint == creds.fingerprint
            {
                return Ok(h.clone());
            }
            // The client's own capabilities: this upstream session serves only this client.
            let caps = session.client_capabilities.lock().unwrap().clone();
            let handle =
                Box::pin(self.connect(target, &creds, caps, Some(Arc::downgrade(session)))).await?;
            if let Some(old) = owned.insert(target.id, handle.clone()) {
                // Credentials changed: the old upstream session is not reused.
                tokio::spawn(async move { old.conn.close().await });
            }
            return Ok(handle);
        }
        // Shared per credentials and per declared input capabilities.
        let (key, caps) = pool_key(session, &creds.fingerprint);
        let slot = self
            .pool
            .shared
            .lock()
            .unwrap()
            .entry((target.id, key))
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(h) = slot.as_ref()
            && !h.conn.is_closed()
        {
            h.touch();
            return Ok(h.clone());
        }
        // Shared by many clients: declare only what all of them declared.
        let handle = Box::pin(self.connect(target, &creds, caps, None)).await?;
        *slot = Some(handle.clone());
        Ok(handle)
    }

    /// Resolves the caller's credentials for `target` (user > group > role > default). A
    /// required credential the caller lacks is an error that names it, never a value.
    fn credentialed(&self, session: &Session, target: &Target) -> Result<Credentialed, RpcError> {
        let p = &session.principal;
        let resolved = self
            .credentials
            .load()
            .resolve(target.id, p.user_id, &p.role, &p.groups);
        let headers = crate::credentials::http_headers(
            &resolved,
            target.auth_type,
            target.auth_header_name.as_deref(),
        )
        .map_err(|e| {
            RpcError::new(
                crate::mcp::codes::INVALID_PARAMS,
                format!("{} ({})", e, target.name),
            )
        })?;
        let url = match resolved.base_url() {
            Some(base) => url::Url::parse(base).map_err(|_| {
                RpcError::new(
                    crate::mcp::codes::UPSTREAM_ERROR,
                    format!(
                        "target {}: the configured BASE_URL is not a URL",
                        target.name
                    ),
                )
            })?,
            None => match &target.endpoint {
                super::targets::Endpoint::Http(url) => url.clone(),
                _ => {
                    return Err(RpcError::internal("only HTTP targets have a URL"));
                }
            },
        };
        Ok(Credentialed {
            headers,
            url,
            fingerprint: resolved.fingerprint,
        })
    }

    async fn connect(
        self: &Arc<Self>,
        target: &Arc<Target>,
        creds: &Credentialed,
        capabilities: Value,
        owner: Option<Weak<Session>>,
    ) -> Result<Arc<UpstreamHandle>, RpcError> {
        let handshake = Handshake {
            protocol_version: crate::mcp::LATEST_LEGACY_VERSION.to_string(),
            capabilities,
            client_info: crate::mcp::implementation_info(),
        };
        let connect = UpstreamConnection::connect_cached(
            spec(target, creds),
            handshake,
            self.pool.http.clone(),
            &self.pool.eras,
        );
        let (conn, inbound) = match tokio::time::timeout(target.timeout, connect).await {
            Ok(Ok(pair)) => {
                // The handshake reached the server: whatever opened the breaker is over.
                if target.is_http() {
                    self.breakers.success(target.id);
                }
                pair
            }
            Ok(Err(e)) => {
                tracing::warn!(target = %target.name, error = %e, "upstream connect failed");
                if target.is_http() {
                    self.breakers.record(target.id, Err(&e));
                }
                return Err(e.to_rpc(&target.name));
            }
            Err(_) => {
                if target.is_http() {
                    let wait = self.breakers.failure(target.id);
                    tracing::warn!(target = %target.name, retry_in_ms = wait.as_millis() as u64, "upstream connect timed out; failing fast until the retry");
                } else {
                    tracing::warn!(target = %target.name, "upstream connect timed out");
                }
                return Err(UpstreamError::Timeout.to_rpc(&target.name));
            }
        };
        Ok(self.attach_upstream(target, conn, inbound, &creds.fingerprint, owner))
    }

    /// Wraps a connected upstream in a handle and starts relaying what it sends on its own.
    pub(crate) fn attach_upstream(
        self: &Arc<Self>,
        target: &Arc<Target>,
        conn: Arc<UpstreamConnection>,
        inbound: mpsc::Receiver<Inbound>,
        fingerprint: &str,
        owner: Option<Weak<Session>>,
    ) -> Arc<UpstreamHandle> {
        let handle = Arc::new(UpstreamHandle {
            target: target.clone(),
            conn,
            owner,
            lists: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            fingerprint: fingerprint.to_string(),
            // A stdio server may send anything before any answer: its answers are streamed.
            streams_answers: std::sync::atomic::AtomicBool::new(target.stdio().is_some()),
            processed: tokio::sync::watch::Sender::new(0),
            attached: Mutex::new(Vec::new()),
            logs_everything: std::sync::atomic::AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
        });
        tokio::spawn(pump(Arc::downgrade(self), Arc::downgrade(&handle), inbound));
        handle
    }
}

/// Relays everything the upstream sends on its own to the sessions it concerns. Ends when the
/// connection or the gateway goes away.
async fn pump(
    gateway: Weak<Gateway>,
    handle: Weak<UpstreamHandle>,
    mut inbound: mpsc::Receiver<Inbound>,
) {
    while let Some(msg) = inbound.recv().await {
        let (Some(gw), Some(h)) = (gateway.upgrade(), handle.upgrade()) else {
            return;
        };
        gw.on_inbound(&h, msg);
        h.processed.send_modify(|n| *n += 1);
    }
}

/// The shared-pool key and the client capabilities to declare upstream, in both eras: the
/// input capabilities the client declared (sampling, elicitation, roots, and the tasks extension,
/// which reflow relays), so upstreams that offer features only to capable clients offer them to
/// this one, and the pool keeps one connection per (credentials, such set). A client that
/// declared none shares the connection that declares none.
pub(super) fn pool_key(session: &Session, fingerprint: &str) -> (String, Value) {
    let declared = session.client_capabilities.lock().unwrap().clone();
    let mut caps: Map<String, Value> = ["elicitation", "roots", "sampling"]
        .into_iter()
        .filter_map(|k| {
            declared
                .get(k)
                .filter(|v| !v.is_null())
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect();
    // Of the extensions, reflow relays only the tasks extension (task ids rewritten both ways):
    // declared upstream for the clients that declared it, so upstreams create tasks for them only.
    if wire::declares_tasks(&declared) {
        caps.insert(
            "extensions".into(),
            json!({ wire::TASKS_EXTENSION: declared["extensions"][wire::TASKS_EXTENSION].clone() }),
        );
    }
    if caps.is_empty() {
        return (fingerprint.to_string(), json!({}));
    }
    let caps = Value::Object(caps);
    (format!("{fingerprint}|{caps}"), caps)
}
