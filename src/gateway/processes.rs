//! Stdio upstream processes: one per (target, isolation key, credential fingerprint, declared
//! client capabilities), shared by every session that key admits; started on first use,
//! restarted after a crash with backoff, stopped when idle, too old, retired by a credential
//! change, asked to stop (API or CLI) or at shutdown. Every process is recorded in the store's `instances` table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::StdioSettings;
use crate::domain::{InstanceId, InstanceStatus, TargetId};
use crate::mcp::{RpcError, codes};
use crate::store::{InstanceRecord, Store};
use crate::upstream::{Handshake, StdioSpec, UpstreamConnection};

use super::isolation::{child_env, isolation_key, search_path};
use super::session::Session;
use super::targets::StdioCommand;
use super::upstreams::UpstreamHandle;
use super::{Gateway, Target};

/// A process that lived at least this long before exiting resets the crash count.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ProcKey {
    target: TargetId,
    isolation: String,
    fingerprint: String,
}

#[derive(Default)]
struct Entry {
    handle: Option<Arc<UpstreamHandle>>,
    instance: Option<InstanceId>,
    started: Option<Instant>,
    last_used: Option<Instant>,
    /// Used since the store last recorded it.
    used_since_touch: bool,
    /// Quick exits in a row, and when the next start may happen.
    crashes: u32,
    retry_at: Option<Instant>,
    last_exit: Option<String>,
    /// A newer credential set exists for this key: stop once idle, never reuse.
    retired: bool,
}

type Slot = Arc<tokio::sync::Mutex<Entry>>;

pub(crate) struct ProcessPool {
    settings: StdioSettings,
    store: Store,
    /// This gateway process in `instances.replica`: `host:pid:nonce`.
    replica: String,
    entries: Mutex<HashMap<ProcKey, Slot>>,
}

/// A human-readable name of this gateway process, unique per run.
fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nonce = hex::encode(crate::crypto::random_bytes::<4>());
    format!("{host}:{}:{nonce}", std::process::id())
}

impl ProcessPool {
    pub fn new(settings: StdioSettings, store: Store) -> Self {
        Self {
            settings,
            store,
            replica: replica_id(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn gc_interval(&self) -> Duration {
        self.settings.gc_interval
    }

    /// This gateway process, as `instances.replica` names it.
    #[cfg(feature = "kubernetes")]
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Marks rows of earlier runs stopped: rows of this host whose gateway process is gone (or
    /// is this process under an earlier run's nonce). Rows of other hosts are left to them.
    pub async fn mark_stale_instances(&self) {
        let rows = match self.store.live_instances().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading stdio instances failed");
                return;
            }
        };
        let host = self.replica.split(':').next().unwrap_or_default();
        let stale: Vec<&InstanceRecord> = rows
            .iter()
            // Pods are shared by every replica; their rows belong to the pod pool.
            .filter(|r| r.pod.is_none())
            .filter(|r| {
                let mut parts = r.replica.split(':');
                let (h, pid) = (
                    parts.next(),
                    parts.next().and_then(|p| p.parse::<u32>().ok()),
                );
                h == Some(host)
                    && r.replica != self.replica
                    && pid.is_none_or(|p| p == std::process::id() || !process_alive(p))
            })
            .collect();
        if stale.is_empty() {
            return;
        }
        for r in &stale {
            if let Some(pid) = r.pid
                && super::orphans::kill_leftover(pid, r.started_at)
            {
                tracing::warn!(pid, target_id = %r.target_id, "killed a stdio process an earlier run left behind");
            }
        }
        let stale: Vec<InstanceId> = stale.iter().map(|r| r.id).collect();
        match self
            .store
            .end_instances(&stale, InstanceStatus::Stopped, chrono::Utc::now())
            .await
        {
            Ok(()) => tracing::info!(
                instances = stale.len(),
                "marked stdio instances of an earlier run stopped"
            ),
            Err(e) => tracing::warn!(error = %e, "marking stale stdio instances failed"),
        }
    }

    /// The slot of `key`, created if missing. A new credential set for a (target, isolation
    /// key) retires the older ones: they stop once idle.
    fn slot_for(&self, key: &ProcKey) -> Slot {
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

    fn slots(&self) -> Vec<(ProcKey, Slot)> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Live processes other than `except`'s. A slot busy right now counts: it is starting one or
    /// serving with one.
    fn live_count(&self, except: &Slot) -> usize {
        self.slots()
            .iter()
            .filter(|(_, s)| !Arc::ptr_eq(s, except))
            .filter(|(_, s)| match s.try_lock() {
                Ok(e) => e.handle.as_ref().is_some_and(|h| !h.conn.is_closed()),
                Err(_) => true,
            })
            .count()
    }

    /// How many processes each target has in each state (metrics): `running`, `starting` (the
    /// slot is busy starting or stopping one) and `backoff` (crashed, waiting to restart).
    pub(crate) fn census(&self) -> HashMap<(TargetId, &'static str), i64> {
        let mut out = HashMap::new();
        for (key, slot) in self.slots() {
            let state = match slot.try_lock() {
                Ok(e) if e.handle.as_ref().is_some_and(|h| !h.conn.is_closed()) => "running",
                Ok(e) if e.retry_at.is_some_and(|t| t > Instant::now()) => "backoff",
                Ok(_) => continue,
                Err(_) => "starting",
            };
            *out.entry((key.target, state)).or_insert(0) += 1;
        }
        out
    }

    /// Stops the process of one slot and records it; waits until it is reaped.
    async fn stop_entry(&self, entry: &mut Entry, status: InstanceStatus) {
        if let Some(h) = entry.handle.take() {
            let crashed = h.conn.is_closed();
            h.conn.close().await;
            let status = if crashed && status == InstanceStatus::Stopped {
                InstanceStatus::Crashed
            } else {
                status
            };
            self.end_instance(entry.instance.take(), status).await;
        }
    }

    async fn end_instance(&self, id: Option<InstanceId>, status: InstanceStatus) {
        if let Some(id) = id
            && let Err(e) = self
                .store
                .end_instances(&[id], status, chrono::Utc::now())
                .await
        {
            tracing::warn!(error = %e, "recording the end of a stdio instance failed");
        }
    }

    /// Stops every process of `target` (its configuration changed, or it was removed).
    pub async fn stop_target(&self, target: TargetId) {
        self.stop_where(|k, _| k.target == target, InstanceStatus::Stopped)
            .await;
    }

    /// Stops every process (gateway shutdown); returns once all are reaped.
    pub async fn stop_all(&self) {
        self.stop_where(|_, _| true, InstanceStatus::Stopped).await;
    }

    async fn stop_where(&self, pick: impl Fn(&ProcKey, &Entry) -> bool, status: InstanceStatus) {
        let mut stops = Vec::new();
        for (key, slot) in self.slots() {
            let mut entry = slot.lock().await;
            if pick(&key, &entry) {
                self.stop_entry(&mut entry, status).await;
                drop(entry);
                self.entries.lock().unwrap().remove(&key);
                stops.push(key);
            }
        }
        if !stops.is_empty() {
            tracing::debug!(processes = stops.len(), "stopped stdio processes");
        }
    }

    /// Stops the instances of this replica that were asked to stop (`reflow target restart`
    /// or the API); the next use starts them again.
    pub async fn apply_stop_requests(&self) {
        let rows = match self.store.live_instances().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading stdio instances failed");
                return;
            }
        };
        let wanted: Vec<InstanceId> = rows
            .iter()
            .filter(|r| {
                r.pod.is_none()
                    && r.replica == self.replica
                    && r.status == InstanceStatus::StopRequested
            })
            .map(|r| r.id)
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.stop_where(
            |_, e| e.instance.is_some_and(|i| wanted.contains(&i)),
            InstanceStatus::Stopped,
        )
        .await;
        // Rows whose process this replica no longer has (it crashed meanwhile).
        self.end_instance_many(&wanted).await;
    }

    async fn end_instance_many(&self, ids: &[InstanceId]) {
        if let Err(e) = self
            .store
            .end_instances(ids, InstanceStatus::Stopped, chrono::Utc::now())
            .await
        {
            tracing::warn!(error = %e, "recording stopped stdio instances failed");
        }
    }

    /// One GC pass: records crashes, stops idle, retired and too old processes (never with a
    /// request in flight), and records recent use in the store.
    pub async fn collect(&self) {
        let (ttl, lifetime) = (self.settings.idle_ttl, self.settings.max_lifetime);
        let mut touched = Vec::new();
        for (key, slot) in self.slots() {
            // A busy slot is in use: not idle.
            let Ok(mut entry) = slot.try_lock() else {
                continue;
            };
            let Some(h) = entry.handle.clone() else {
                // No process (a failed start, the limit, a crash): forget the key once its
                // backoff is long over, so unused keys do not pile up.
                let stale = entry.retry_at.is_none_or(|at| at.elapsed() >= HEALTHY_RUN);
                if entry.retired || stale {
                    drop(entry);
                    self.entries.lock().unwrap().remove(&key);
                }
                continue;
            };
            if h.conn.is_closed() {
                self.note_crash(&mut entry).await;
                continue;
            }
            let quiet = h.in_flight.lock().unwrap().is_empty();
            let idle = entry.last_used.is_none_or(|t| t.elapsed() >= ttl);
            let old = entry.started.is_some_and(|t| t.elapsed() >= lifetime);
            if quiet && (idle || old || entry.retired) {
                let why = if entry.retired {
                    "retired"
                } else if old {
                    "max lifetime"
                } else {
                    "idle"
                };
                tracing::info!(target = %h.target.name, key = %key.isolation, pid = ?h.conn.pid(), why, "stopping a stdio process");
                self.stop_entry(&mut entry, InstanceStatus::Stopped).await;
                drop(entry);
                self.entries.lock().unwrap().remove(&key);
                continue;
            }
            if std::mem::take(&mut entry.used_since_touch)
                && let Some(id) = entry.instance
            {
                touched.push(id);
            }
        }
        if let Err(e) = self
            .store
            .touch_instances(&touched, chrono::Utc::now())
            .await
        {
            tracing::warn!(error = %e, "recording stdio instance use failed");
        }
    }

    /// The process ended on its own: record it and set when the next start may happen. The
    /// first quick exit restarts at once; more in a row back off exponentially.
    async fn note_crash(&self, entry: &mut Entry) {
        let Some(h) = entry.handle.take() else {
            return;
        };
        h.conn.close().await;
        let lived = entry.started.map(|t| t.elapsed()).unwrap_or_default();
        entry.crashes = if lived >= HEALTHY_RUN {
            1
        } else {
            entry.crashes + 1
        };
        entry.last_exit = h.conn.exit_status();
        entry.retry_at = Some(Instant::now() + backoff(entry.crashes));
        self.end_instance(entry.instance.take(), InstanceStatus::Crashed)
            .await;
    }
}

pub(super) fn backoff(crashes: u32) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let exp = (crashes - 2).min(10);
    (Duration::from_millis(500) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn limit_error(target: &Target, max: usize) -> RpcError {
    let mut e = RpcError::new(
        codes::UPSTREAM_ERROR,
        format!(
            "target {}: cannot start another stdio process, the limit of {max} (stdio.max_processes) is reached; retry when one is idle",
            target.name
        ),
    );
    e.data = Some(
        json!({ "target": target.name, "limit": "stdio.max_processes", "max_processes": max }),
    );
    e
}

impl Gateway {
    /// The shared process for `session`'s isolation key of a stdio target, started if needed.
    pub(crate) async fn stdio_upstream(
        self: &Arc<Self>,
        session: &Arc<Session>,
        target: &Arc<Target>,
        cmd: &StdioCommand,
    ) -> Result<Arc<UpstreamHandle>, RpcError> {
        let p = &session.principal;
        let resolved = self
            .credentials
            .load()
            .resolve(target.id, p.user_id, &p.role, &p.groups);
        // Also keyed by the client's declared capabilities, as shared HTTP connections are: a
        // process declares what its callers declared, so a server that offers sampling tools
        // only to capable clients offers them to these.
        let (fingerprint, capabilities) =
            super::upstreams::pool_key(session, &resolved.fingerprint);
        let key = ProcKey {
            target: target.id,
            isolation: isolation_key(target, cmd.isolation, p, &resolved),
            fingerprint,
        };
        let pool = &self.pool.processes;
        // A slot removed (stopped, collected) while we waited for it is not reused: anything
        // started in it would be out of the pool's sight.
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
        if let Some(h) = &entry.handle {
            if !h.conn.is_closed() {
                let h = h.clone();
                entry.last_used = Some(Instant::now());
                entry.used_since_touch = true;
                // Still wanted by someone (two credential sets can share a key legitimately).
                entry.retired = false;
                drop(entry);
                h.attach(session);
                return Ok(h);
            }
            pool.note_crash(&mut entry).await;
        }
        if let Some(at) = entry.retry_at
            && at > Instant::now()
        {
            let wait = at - Instant::now();
            let last = entry.last_exit.clone().unwrap_or_else(|| "failed".into());
            return Err(RpcError::new(
                codes::UPSTREAM_ERROR,
                format!(
                    "target {}: its process keeps exiting (last: {last}); the next start is in {:.1}s",
                    target.name,
                    wait.as_secs_f64()
                ),
            ));
        }
        let max = pool.settings.max_processes;
        if pool.live_count(&slot) >= max {
            tracing::warn!(target = %target.name, max, "stdio.max_processes reached");
            return Err(limit_error(target, max));
        }
        let spec = StdioSpec {
            name: target.name.clone(),
            command: cmd.command.clone(),
            args: cmd.args.clone(),
            env: child_env(&target.name, cmd, &resolved),
            search_path: search_path(cmd),
            cwd: cmd.cwd.as_ref().map(Into::into),
            redact: resolved.process_env().into_values().collect(),
            timeout: target.timeout,
            max_message: target.max_message,
        };
        let handshake = Handshake {
            protocol_version: crate::mcp::LATEST_LEGACY_VERSION.to_string(),
            capabilities,
            client_info: crate::mcp::implementation_info(),
        };
        entry.started = Some(Instant::now());
        let (conn, inbound) = match UpstreamConnection::connect_stdio(spec, handshake).await {
            Ok(pair) => pair,
            Err(e) => {
                entry.crashes += 1;
                entry.retry_at = Some(Instant::now() + backoff(entry.crashes.max(2)));
                entry.last_exit = Some(e.to_string());
                tracing::warn!(target = %target.name, key = %key.isolation, error = %e, "starting a stdio upstream failed");
                return Err(e.to_rpc(&target.name));
            }
        };
        tracing::info!(target = %target.name, key = %key.isolation, pid = ?conn.pid(), "started a stdio upstream");
        let handle = self.attach_upstream(target, conn, inbound, &resolved.fingerprint, None);
        let now = chrono::Utc::now();
        let record = InstanceRecord {
            id: InstanceId::new(),
            target_id: target.id,
            isolation_key: key.isolation.clone(),
            replica: pool.replica.clone(),
            pid: handle.conn.pid(),
            pod: None,
            status: InstanceStatus::Running,
            started_at: now,
            last_used_at: now,
            stopped_at: None,
        };
        match pool.store.insert_instance(&record).await {
            Ok(()) => entry.instance = Some(record.id),
            Err(e) => tracing::warn!(error = %e, "recording a stdio instance failed"),
        }
        entry.handle = Some(handle.clone());
        entry.last_used = Some(Instant::now());
        entry.used_since_touch = false;
        drop(entry);
        handle.attach(session);
        Ok(handle)
    }
}

/// Lets the pool hand out weak session lists without the handle knowing about processes.
pub(crate) fn live_sessions(list: &Mutex<Vec<Weak<Session>>>) -> Vec<Arc<Session>> {
    let mut list = list.lock().unwrap();
    list.retain(|w| w.upgrade().is_some_and(|s| !s.is_ended()));
    list.iter().filter_map(Weak::upgrade).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_restarts_at_once_then_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
