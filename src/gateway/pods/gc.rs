//! The life of reflow's pods after they start: the GC pass (idle, too old, retired by a
//! credential change, of a changed or removed target, ended; adoption of pods no row knows;
//! orphan Secrets), pods that go away under their calls (the watch), and restart requests.
//! Decisions that concern every replica read the shared instance rows and the cluster, never
//! one replica's memory alone.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};

use crate::domain::{InstanceId, InstanceStatus};
use crate::store::InstanceRecord;
use crate::upstream::kubernetes::{PodGone, PodState};

use super::super::Gateway;
use super::super::upstreams::UpstreamHandle;
use super::{PodKey, PodPool, backoff};

/// A pod that served at least this long before it went away resets the failure count.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

impl PodPool {
    /// Fails the calls on `name`'s connections at once (`why`), closes them, and forgets the
    /// pod in whichever slot serves it (unless that slot is busy starting: it notices the
    /// closed connections on its next use). With `uid`, only that incarnation of the pod.
    /// Returns whether a slot was serving it.
    fn forget_pod(&self, name: &str, uid: Option<&str>, why: &str, crashed: bool) -> bool {
        let same = |u: &Option<String>| uid.is_none() || u.is_none() || u.as_deref() == uid;
        let handles: Vec<Arc<UpstreamHandle>> = {
            let mut by_pod = self.by_pod.lock().unwrap();
            let list = by_pod.remove(name).unwrap_or_default();
            let (gone, kept): (Vec<_>, Vec<_>) = list.into_iter().partition(|(u, _)| same(u));
            if !kept.is_empty() {
                by_pod.insert(name.to_string(), kept);
            }
            gone.iter().filter_map(|(_, w)| w.upgrade()).collect()
        };
        for h in handles {
            let why = why.to_string();
            tokio::spawn(async move { h.conn.lose(&why).await });
        }
        let mut found = false;
        for (_, slot) in self.slots() {
            let Ok(mut e) = slot.try_lock() else { continue };
            if e.serving
                .as_ref()
                .is_some_and(|s| s.name == name && same(&s.uid))
            {
                let s = e.serving.take().expect("checked");
                found = true;
                if crashed {
                    let f = &mut e.failures;
                    f.count = if s.started.elapsed() >= HEALTHY_RUN {
                        1
                    } else {
                        f.count + 1
                    };
                    f.retry_at = Some(Instant::now() + backoff(f.count));
                    f.last = Some(why.to_string());
                }
            }
        }
        found
    }

    /// Closes this replica's connections of a target (its configuration changed or it went);
    /// its pods are deleted by the next GC pass, which compares them with the target.
    pub async fn drop_target(&self, target: crate::domain::TargetId) {
        let mut names = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap();
            entries.retain(|k, slot| {
                if k.target != target {
                    return true;
                }
                if let Ok(e) = slot.try_lock()
                    && let Some(s) = &e.serving
                {
                    names.push(s.name.clone());
                }
                false
            });
        }
        for n in names {
            self.forget_pod(&n, None, "its target changed", false);
        }
    }

    /// Closes every connection (shutdown). Pods stay: other replicas, or this one after a
    /// restart, use them; idle ones are collected by whoever runs GC next.
    pub async fn close_all(&self) {
        let names: Vec<String> = self.by_pod.lock().unwrap().keys().cloned().collect();
        for n in names {
            self.forget_pod(&n, None, "the gateway is shutting down", false);
        }
        self.entries.lock().unwrap().clear();
    }

    async fn end_rows(&self, ids: &[InstanceId], status: InstanceStatus) {
        if let Err(e) = self
            .store
            .end_instances(ids, status, chrono::Utc::now())
            .await
        {
            tracing::warn!(error = %e, "recording the end of pod instances failed");
        }
    }

    async fn pod_rows(&self) -> Vec<InstanceRecord> {
        match self.store.live_instances().await {
            Ok(rows) => rows.into_iter().filter(|r| r.pod.is_some()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading instances failed");
                Vec::new()
            }
        }
    }

    /// The local half of a GC pass: drops this replica's connections that are idle or
    /// retired, records recent use in the store, and names the pods to delete now (retired by
    /// a credential change, quiet). Busy pods (a call in flight here) are returned too, so the
    /// cluster-wide half leaves them alone.
    async fn collect_local(&self) -> (Vec<String>, Vec<String>) {
        let ttl = self.settings.idle_ttl;
        let (mut retired, mut busy, mut touched) = (Vec::new(), Vec::new(), Vec::new());
        for (key, slot) in self.slots() {
            let Ok(mut e) = slot.try_lock() else { continue };
            let Some(s) = &e.serving else {
                let stale = e
                    .failures
                    .retry_at
                    .is_none_or(|at| at.elapsed() >= HEALTHY_RUN);
                if e.retired || stale {
                    drop(e);
                    self.entries.lock().unwrap().remove(&key);
                }
                continue;
            };
            let quiet = s
                .conns
                .values()
                .all(|h| h.in_flight.lock().unwrap().is_empty());
            let idle = e.last_used.is_none_or(|t| t.elapsed() >= ttl);
            if !quiet {
                busy.push(s.name.clone());
            } else if e.retired || idle {
                let name = s.name.clone();
                if e.retired {
                    retired.push(name.clone());
                }
                drop(e);
                self.forget_pod(&name, None, "it was idle", false);
                self.entries.lock().unwrap().remove(&key);
                continue;
            }
            if std::mem::take(&mut e.used_since_touch)
                && let Some(id) = e.serving.as_ref().and_then(|s| s.instance)
            {
                touched.push(id);
            }
        }
        if let Err(e) = self
            .store
            .touch_instances(&touched, chrono::Utc::now())
            .await
        {
            tracing::warn!(error = %e, "recording pod use failed");
        }
        (retired, busy)
    }
}

impl Gateway {
    /// One GC pass over reflow's pods in the namespace (every `kubernetes.gc_interval`, and
    /// after a target change). Any replica may delete any pod: the decision reads the shared
    /// instance rows (last use by every replica) and the pod's own labels.
    pub(crate) async fn collect_pods(&self) {
        let pool = &self.pool.pods;
        let Some(cluster) = &pool.cluster else { return };
        let (retired, busy) = pool.collect_local().await;
        let pods = match cluster.list().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "listing reflow's pods failed");
                return;
            }
        };
        let rows = pool.pod_rows().await;
        let specs: HashMap<String, String> = self
            .targets
            .load()
            .iter()
            .filter_map(|t| {
                let p = t.pod()?;
                Some((
                    t.id.to_string(),
                    p.template.spec_hash(
                        &pool.settings.pod_defaults,
                        pool.settings.bridge_image.as_deref(),
                    ),
                ))
            })
            .collect();
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(pool.settings.idle_ttl).unwrap_or_default();
        let lifetime = chrono::Duration::from_std(pool.settings.max_lifetime).unwrap_or_default();
        let mut live = Vec::new();
        for p in &pods {
            let qualified = pool.qualified(&p.name);
            let row = rows.iter().find(|r| r.pod.as_deref() == Some(&qualified));
            let why = match specs.get(&p.target_id) {
                None => Some("its target was removed or disabled"),
                Some(spec) if *spec != p.spec => Some("its target changed"),
                _ if retired.contains(&p.name) => Some("its credentials changed"),
                _ if busy.contains(&p.name) => None,
                _ if matches!(p.state, PodState::Finished(_)) => Some("it ended"),
                _ if p.created_at.is_some_and(|c| now - c >= lifetime) => Some("max lifetime"),
                _ if row.is_some_and(|r| now - r.last_used_at >= ttl) => Some("idle"),
                _ => None,
            };
            let Some(why) = why else {
                live.push(p.name.clone());
                if row.is_none() {
                    self.adopt(p).await;
                }
                continue;
            };
            tracing::info!(pod = %p.name, why, "deleting a pod");
            pool.forget_pod(&p.name, None, why, false);
            // The row first: the watch reports the deletion as a pod gone, and a row ends once.
            if let Some(r) = row {
                pool.end_rows(&[r.id], InstanceStatus::Stopped).await;
            }
            if let Err(e) = cluster.delete(&p.name).await {
                tracing::warn!(pod = %p.name, error = %e, "deleting a pod failed");
                live.push(p.name.clone());
            }
        }
        // Rows whose pod is gone (deleted by hand, by another gateway, or while this one was down).
        let gone: Vec<InstanceId> = rows
            .iter()
            .filter(|r| {
                let name = r.pod.as_deref().and_then(|q| q.split('/').nth(1));
                name.is_some_and(|n| !pods.iter().any(|p| p.name == n))
            })
            .map(|r| r.id)
            .collect();
        pool.end_rows(&gone, InstanceStatus::Stopped).await;
        // Pods this pass deleted took their Secret with them (`Cluster::delete`).
        match cluster
            .delete_orphan_secrets(&live, pool.settings.ready_timeout)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(secrets = n, "deleted Secrets whose pod is gone"),
            Err(e) => tracing::warn!(error = %e, "deleting orphan Secrets failed"),
        }
    }

    /// A pod of reflow's that no row records (an earlier gateway's, or a row lost): recorded
    /// as used now, so it is shared, listed and later collected like any other.
    async fn adopt(&self, p: &crate::upstream::kubernetes::ManagedPod) {
        let Ok(target) = p.target_id.parse() else {
            return;
        };
        let key = PodKey {
            target,
            isolation: format!("adopted:{}", p.isolation),
            fingerprint: p.fingerprint.clone(),
        };
        tracing::info!(pod = %p.name, "adopting a pod an earlier gateway left");
        self.record_pod(&key, &p.name).await;
    }

    /// The watch saw a pod go away: its calls fail now, its row ends as crashed, and the next
    /// call starts it again (after a backoff if it keeps going away).
    pub(crate) async fn on_pod_gone(&self, gone: PodGone) {
        let pool = &self.pool.pods;
        if pool.forget_pod(&gone.name, gone.uid.as_deref(), &gone.why, true) {
            tracing::warn!(pod = %gone.name, why = %gone.why, "a pod in use went away");
        }
        // A late event about an earlier pod of this name: the row is the new pod's.
        if let (Some(cluster), Some(uid)) = (&pool.cluster, &gone.uid)
            && let Ok(Some(now)) = cluster.current_uid(&gone.name).await
            && now != *uid
        {
            return;
        }
        let qualified = pool.qualified(&gone.name);
        let ids: Vec<InstanceId> = pool
            .pod_rows()
            .await
            .iter()
            .filter(|r| r.pod.as_deref() == Some(&qualified))
            .map(|r| r.id)
            .collect();
        pool.end_rows(&ids, InstanceStatus::Crashed).await;
    }

    /// Deletes the pods whose instances were asked to stop (`reflow target restart` or the
    /// API), whichever replica made them; the next call starts them again.
    pub(crate) async fn apply_pod_stop_requests(&self) {
        let pool = &self.pool.pods;
        let Some(cluster) = &pool.cluster else { return };
        let rows: Vec<InstanceRecord> = pool
            .pod_rows()
            .await
            .into_iter()
            .filter(|r| r.status == InstanceStatus::StopRequested)
            .collect();
        let ids: Vec<InstanceId> = rows.iter().map(|r| r.id).collect();
        pool.end_rows(&ids, InstanceStatus::Stopped).await;
        for r in &rows {
            let Some(name) = r.pod.as_deref().and_then(|q| q.split('/').nth(1)) else {
                continue;
            };
            pool.forget_pod(name, None, "it was restarted", false);
            match cluster.delete(name).await {
                Ok(()) => tracing::info!(pod = %name, "deleted a pod asked to restart"),
                Err(e) => tracing::warn!(pod = %name, error = %e, "deleting a pod failed"),
            }
        }
    }
}

/// Runs the pod GC every `kubernetes.gc_interval` (the first pass at once: a restarted
/// gateway adopts or cleans what it left) and relays the pod watch, until the gateway goes.
pub(crate) fn spawn_background(gw: &Arc<Gateway>) {
    let pool = &gw.pool.pods;
    let Some(cluster) = &pool.cluster else { return };
    let every = pool.gc_interval();
    let weak = Arc::downgrade(gw);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(gw) = weak.upgrade() else { return };
            gw.collect_pods().await;
        }
    });
    tokio::spawn(relay_watch(Arc::downgrade(gw), cluster.watch_gone()));
}

async fn relay_watch(gw: Weak<Gateway>, events: impl Stream<Item = PodGone> + Send + 'static) {
    let mut events = std::pin::pin!(events);
    while let Some(gone) = events.next().await {
        let Some(gw) = gw.upgrade() else { return };
        gw.on_pod_gone(gone).await;
    }
}
