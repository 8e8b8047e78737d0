//! Kubernetes targets in the upstream pool: one pod per (target, isolation key, credential
//! set), created on first use by whichever replica needs it (deterministic names make that
//! idempotent), spoken to over Streamable HTTP like any HTTP target, and recorded as an
//! instance. Lifecycle (idle, lifetime, retired credentials, restarts, pods that go away)
//! lives in `gc.rs`.

mod gc;

pub(super) use gc::spawn_background;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{KubernetesSettings, Secret};
use crate::credentials::{Resolved, denied_env_key};
use crate::domain::{InstanceId, InstanceStatus, TargetId};
use crate::mcp::{RpcError, codes};
use crate::store::{InstanceRecord, Store};
use crate::upstream::kubernetes::manifest::{BRIDGE_TOKEN_ENV, Serve};
use crate::upstream::kubernetes::{Cluster, Forward, KubeError, PodPlan, PodState};
use crate::upstream::{Handshake, HttpTransport, UpstreamConnection, UpstreamSpec};

use super::isolation::isolation_key;
use super::processes::backoff;
use super::session::Session;
use super::targets::PodTarget;
use super::upstreams::UpstreamHandle;
use super::{Gateway, Target};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PodKey {
    target: TargetId,
    isolation: String,
    fingerprint: String,
}

/// A Ready pod this replica talks to.
struct Serving {
    name: String,
    uid: Option<String>,
    started: Instant,
    url: url::Url,
    /// Keeps a port-forward open (`connect: port_forward`).
    _forward: Option<Forward>,
    instance: Option<InstanceId>,
    /// One MCP connection per declared client capability set (see `upstreams::pool_key`).
    conns: HashMap<String, Arc<UpstreamHandle>>,
}

/// Failed starts in a row and when the next may happen.
#[derive(Default)]
struct Failures {
    count: u32,
    retry_at: Option<Instant>,
    last: Option<String>,
}

#[derive(Default)]
struct Entry {
    serving: Option<Serving>,
    last_used: Option<Instant>,
    used_since_touch: bool,
    failures: Failures,
    /// A newer credential set exists for this (target, isolation key): delete once quiet.
    retired: bool,
}

type Slot = Arc<tokio::sync::Mutex<Entry>>;

/// A connection to a pod, with the uid of the pod it was made to.
type PodConn = (Option<String>, Weak<UpstreamHandle>);

pub(crate) struct PodPool {
    settings: KubernetesSettings,
    /// None while `kubernetes.enabled` is false: kubernetes targets then fail with that reason.
    cluster: Option<Cluster>,
    store: Store,
    replica: String,
    /// Keys the cross-replica credential fingerprint (derived from the shared encryption key).
    fingerprint_key: [u8; 32],
    entries: Mutex<HashMap<PodKey, Slot>>,
    /// Connections by pod name, so a pod that goes away fails its calls without waiting for
    /// a slot lock (a slot is held while a pod starts).
    /// With the pod's uid: a late event about an earlier pod of the same name spares these.
    by_pod: Mutex<HashMap<String, Vec<PodConn>>>,
}

impl PodPool {
    pub async fn new(
        settings: KubernetesSettings,
        store: Store,
        replica: String,
        encryption_key: &[u8; 32],
    ) -> Result<Self, KubeError> {
        let cluster = if settings.enabled {
            Some(Cluster::connect(&settings).await?)
        } else {
            None
        };
        let mut h = Sha256::new();
        h.update(b"reflow kubernetes credential fingerprint v1\n");
        h.update(encryption_key);
        Ok(Self {
            settings,
            cluster,
            store,
            replica,
            fingerprint_key: h.finalize().into(),
            entries: Mutex::new(HashMap::new()),
            by_pod: Mutex::new(HashMap::new()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.cluster.is_some()
    }

    pub fn gc_interval(&self) -> Duration {
        self.settings.gc_interval
    }

    /// The same credentials give the same fingerprint on every replica (unlike the
    /// connection pools' per-process one), so replicas agree on pod names.
    fn fingerprint(&self, env: &BTreeMap<String, Secret>) -> String {
        let mut h = Sha256::new();
        h.update(self.fingerprint_key);
        for (k, v) in env {
            for part in [k.as_bytes(), v.expose().as_bytes()] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
        }
        hex::encode(&h.finalize()[..8])
    }

    /// The bearer token of a stdio pod's bridge: the same on every replica (keyed like the
    /// fingerprint), different for every pod, never stored outside the pod's Secret.
    fn bridge_token(&self, key: &PodKey) -> String {
        let mut h = Sha256::new();
        h.update(self.fingerprint_key);
        h.update(b"\nbridge\n");
        h.update(format!("{}\n{}\n{}", key.target, key.isolation, key.fingerprint).as_bytes());
        hex::encode(h.finalize())
    }

    fn slot_for(&self, key: &PodKey) -> Slot {
        let mut entries = self.entries.lock().unwrap();
        if !entries.contains_key(key) {
            for (k, s) in entries.iter() {
                if k.target == key.target
                    && k.isolation == key.isolation
                    && let Ok(mut e) = s.try_lock()
                {
                    e.retired = true;
                }
            }
        }
        entries.entry(key.clone()).or_default().clone()
    }

    fn slots(&self) -> Vec<(PodKey, Slot)> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    fn qualified(&self, name: &str) -> String {
        format!("{}/{name}", self.settings.namespace)
    }
}

/// The container's credentials: every resolved entry (and the token as AUTH_TOKEN) except the
/// deny-listed keys and REFLOW_* names, as for a stdio child.
fn secret_env(target: &str, resolved: &Resolved) -> BTreeMap<String, Secret> {
    let mut env = BTreeMap::new();
    for (k, v) in resolved.process_env() {
        if k.starts_with("REFLOW_") {
            continue;
        }
        match denied_env_key(&k) {
            Some(denied) => tracing::warn!(
                target = %target,
                "not passing a credential to the pod: {}",
                denied.explain(&k)
            ),
            None => _ = env.insert(k, v),
        }
    }
    env
}

impl Gateway {
    /// The connection to `session`'s pod of a kubernetes target, creating the pod (and waiting
    /// for it to be Ready) if needed.
    pub(crate) async fn pod_upstream(
        self: &Arc<Self>,
        session: &Arc<Session>,
        target: &Arc<Target>,
        pod: &PodTarget,
    ) -> Result<Arc<UpstreamHandle>, RpcError> {
        let pool = &self.pool.pods;
        let Some(cluster) = &pool.cluster else {
            return Err(RpcError::new(
                codes::UPSTREAM_ERROR,
                format!(
                    "target {}: kubernetes targets need kubernetes.enabled: true in the gateway's configuration",
                    target.name
                ),
            ));
        };
        let p = &session.principal;
        let resolved = self
            .credentials
            .load()
            .resolve(target.id, p.user_id, &p.role, &p.groups);
        let mut env = secret_env(&target.name, &resolved);
        let key = PodKey {
            target: target.id,
            isolation: isolation_key(target, pod.isolation, p, &resolved),
            fingerprint: pool.fingerprint(&env),
        };
        let stdio = pod.template.serve == Serve::Stdio;
        let bridge_image = pool.settings.bridge_image.as_deref();
        if stdio && bridge_image.is_none() {
            return Err(RpcError::new(
                codes::UPSTREAM_ERROR,
                format!(
                    "target {} has no port, so its command runs under reflow bridge: set kubernetes.bridge_image to a reflow image",
                    target.name
                ),
            ));
        }
        let (caps_key, capabilities) = super::upstreams::pool_key(session, "");
        let (slot, mut entry) = loop {
            let slot = pool.slot_for(&key);
            let entry = slot.clone().lock_owned().await;
            let current = pool
                .entries
                .lock()
                .unwrap()
                .get(&key)
                .is_some_and(|s| Arc::ptr_eq(s, &slot));
            if current {
                break (slot, entry);
            }
        };
        entry.last_used = Some(Instant::now());
        entry.used_since_touch = true;
        entry.retired = false;
        if let Some(s) = &entry.serving {
            if let Some(h) = s.conns.get(&caps_key)
                && !h.conn.is_closed()
            {
                let h = h.clone();
                drop(entry);
                h.attach(session);
                return Ok(h);
            }
            // Every connection lost: the pod may be gone; look again below.
            if s.conns.values().all(|h| h.conn.is_closed()) && !s.conns.is_empty() {
                entry.serving = None;
            }
        }
        if entry.serving.is_none() {
            if let Some(at) = entry.failures.retry_at
                && at > Instant::now()
            {
                let last = entry.failures.last.clone().unwrap_or_default();
                return Err(RpcError::new(
                    codes::UPSTREAM_ERROR,
                    format!(
                        "target {}: its pod failed ({last}); the next try is in {:.1}s",
                        target.name,
                        (at - Instant::now()).as_secs_f64()
                    ),
                ));
            }
            if stdio {
                env.insert(
                    BRIDGE_TOKEN_ENV.into(),
                    Secret::new(pool.bridge_token(&key)),
                );
            }
            let plan = PodPlan {
                namespace: cluster.namespace(),
                target_id: target.id.to_string(),
                target_name: &target.name,
                isolation_key: &key.isolation,
                fingerprint: &key.fingerprint,
                template: &pod.template,
                defaults: &pool.settings.pod_defaults,
                secret_env: &env,
                bridge_image,
            };
            match self.start_pod(cluster, &plan, &key).await {
                Ok(serving) => {
                    entry.failures = Failures::default();
                    entry.serving = Some(serving);
                }
                Err(e) => {
                    let f = &mut entry.failures;
                    f.count += 1;
                    f.retry_at = Some(Instant::now() + backoff(f.count));
                    f.last = Some(e.message.clone());
                    tracing::warn!(target = %target.name, key = %key.isolation, error = %e.message, "starting a pod failed");
                    return Err(e);
                }
            }
        }
        let serving = entry.serving.as_mut().expect("set above");
        let handshake = Handshake {
            protocol_version: crate::mcp::LATEST_LEGACY_VERSION.to_string(),
            capabilities,
            client_info: crate::mcp::implementation_info(),
        };
        // No credential headers: the pod's own environment holds them (the Secret). A stdio
        // pod's bridge wants its own token.
        let mut headers = reqwest::header::HeaderMap::new();
        if stdio && let Ok(v) = format!("Bearer {}", pool.bridge_token(&key)).parse() {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let spec = UpstreamSpec {
            name: target.name.clone(),
            url: serving.url.clone(),
            transport: HttpTransport::Auto,
            headers,
            timeout: target.timeout,
            max_message: target.max_message,
        };
        let connect = UpstreamConnection::connect_cached(
            spec,
            handshake,
            self.pool.http().clone(),
            self.pool.eras(),
        );
        let (conn, inbound) = match tokio::time::timeout(target.timeout, connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(e.to_rpc(&target.name)),
            Err(_) => return Err(crate::upstream::UpstreamError::Timeout.to_rpc(&target.name)),
        };
        let handle = self.attach_upstream(target, conn, inbound, &key.fingerprint, None);
        serving.conns.insert(caps_key, handle.clone());
        {
            let mut by_pod = pool.by_pod.lock().unwrap();
            let list = by_pod.entry(serving.name.clone()).or_default();
            // Connections replaced on the same pod leave dead entries: drop them here.
            list.retain(|(_, w)| w.strong_count() > 0);
            list.push((serving.uid.clone(), Arc::downgrade(&handle)));
        }
        drop(entry);
        drop(slot);
        handle.attach(session);
        Ok(handle)
    }

    /// Creates (or finds) the pod, waits until it is Ready and records it as an instance.
    async fn start_pod(
        &self,
        cluster: &Cluster,
        plan: &PodPlan<'_>,
        key: &PodKey,
    ) -> Result<Serving, RpcError> {
        let pool = &self.pool.pods;
        let target = plan.target_name;
        let fail = |e: KubeError| {
            let mut err = RpcError::new(codes::UPSTREAM_ERROR, format!("target {target}: {e}"));
            err.data = Some(json!({ "target": target }));
            err
        };
        let max = pool.settings.max_instances;
        let name = plan.name();
        let running = cluster.list().await.map_err(fail)?;
        let exists = running.iter().any(|p| p.name == name);
        let live = running
            .iter()
            .filter(|p| !matches!(p.state, PodState::Finished(_)))
            .count();
        if !exists && live >= max {
            let mut e = RpcError::new(
                codes::UPSTREAM_ERROR,
                format!(
                    "target {target}: cannot start another pod, the limit of {max} (kubernetes.max_instances) is reached; retry when one is idle"
                ),
            );
            e.data = Some(
                json!({ "target": target, "limit": "kubernetes.max_instances", "max_instances": max }),
            );
            return Err(e);
        }
        let timeout = pool.settings.ready_timeout;
        let (name, created) = cluster.ensure(plan, timeout).await.map_err(fail)?;
        let (ip, uid) = cluster.wait_ready(&name, timeout).await.map_err(fail)?;
        let port = plan.template.port();
        let (url, forward) = cluster.endpoint(&name, &ip, port).await.map_err(fail)?;
        tracing::info!(target = %target, key = %key.isolation, pod = %name, created, "using a pod");
        let instance = self.record_pod(key, &name).await;
        Ok(Serving {
            name,
            uid,
            started: Instant::now(),
            url,
            _forward: forward,
            instance,
            conns: HashMap::new(),
        })
    }

    /// The live instance row of a pod, inserted if no replica recorded it yet.
    async fn record_pod(&self, key: &PodKey, name: &str) -> Option<InstanceId> {
        let pool = &self.pool.pods;
        let qualified = pool.qualified(name);
        match self.store.live_instances().await {
            Ok(rows) => {
                if let Some(r) = rows.iter().find(|r| r.pod.as_deref() == Some(&qualified)) {
                    return Some(r.id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading instances failed"),
        }
        let now = chrono::Utc::now();
        let record = InstanceRecord {
            id: InstanceId::new(),
            target_id: key.target,
            isolation_key: key.isolation.clone(),
            replica: pool.replica.clone(),
            pid: None,
            pod: Some(qualified),
            status: InstanceStatus::Running,
            started_at: now,
            last_used_at: now,
            stopped_at: None,
        };
        match self.store.insert_instance(&record).await {
            Ok(()) => Some(record.id),
            Err(e) => {
                tracing::warn!(error = %e, "recording a pod instance failed");
                None
            }
        }
    }
}
