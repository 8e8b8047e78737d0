//! The end of sessions (a DELETE, recycling a user's, noticing ones another process ended, sweeping
//! idle ones), and a census of what this replica holds: its footprint, processes and open breakers.

use std::sync::Arc;
use std::time::Duration;

use super::Gateway;
use super::session::{Session, SessionTransport};
use crate::store::StoreError;

/// How far back each check for sessions ended elsewhere overlaps the previous one: the CLI's
/// and other replicas' clocks may be a little off ours. Re-ending is a no-op.
const ENDED_CHECK_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Gateway {
    /// Ends a session (DELETE /mcp): its streams close and its own upstream sessions end.
    /// Other replicas notice the stored end within seconds (`end_sessions_ended_elsewhere`).
    pub async fn end_session(&self, session: &Arc<Session>) {
        // Ended at once, but left in the registry until the store has the end: a request for
        // it meanwhile finds it ended here rather than resuming it from the store as live.
        session.end();
        if session.transport == SessionTransport::StreamableHttp
            && let Err(e) = self
                .store
                .end_session(&session.id, chrono::Utc::now())
                .await
        {
            tracing::warn!(error = %e, "recording the end of a session failed");
        }
        self.sessions.remove_exact(session);
        close_upstreams(session).await;
    }

    pub(super) fn end_session_now(&self, session: &Arc<Session>) {
        self.sessions.remove(&session.id);
        session.end();
    }

    /// Ends every session of `user` on every replica (`POST /api/users/{id}/recycle`): their
    /// clients get 404 and initialize again with their current identity. Returns how many.
    pub async fn recycle_user(&self, user: crate::domain::UserId) -> Result<usize, StoreError> {
        let mine: Vec<_> = self
            .sessions
            .all()
            .into_iter()
            .filter(|s| s.principal.user_id == user)
            .collect();
        for s in &mine {
            self.end_session(s).await;
        }
        // What is still live in the store belongs to other replicas (or to no process now).
        let elsewhere = self
            .store
            .end_user_sessions(user, chrono::Utc::now())
            .await? as usize;
        Ok(mine.len() + elsewhere)
    }

    /// A session found in memory is served without asking the store, so one ended elsewhere
    /// (a DELETE or a recycle on another replica, `reflow user recycle`) would live on in this
    /// process: end those now. Runs on every reload and every couple of seconds (the app's
    /// watcher), so client DELETEs need no revision bump. Returns how many.
    pub async fn end_sessions_ended_elsewhere(&self) -> Result<usize, StoreError> {
        let mut checked = self.ended_checked_at.lock().await;
        let now = chrono::Utc::now();
        let ids = self
            .store
            .sessions_ended_since(*checked - ENDED_CHECK_OVERLAP)
            .await?;
        *checked = now;
        drop(checked);
        let mut ended = 0;
        for id in ids {
            if let Some(session) = self.sessions.get(&id) {
                self.end_session_now(&session);
                close_upstreams(&session).await;
                ended += 1;
            }
        }
        if ended > 0 {
            tracing::info!(
                sessions = ended,
                "ended sessions recycled by another process"
            );
        }
        Ok(ended)
    }

    /// Ends sessions idle longer than the session timeout (here and in the store, for sessions
    /// of any replica) and records recent activity of this replica's sessions. Returns how many
    /// of this process's sessions ended.
    pub async fn sweep_sessions(&self, active_within: Duration) -> usize {
        let limit = self.opts.session.timeout.as_secs() as i64;
        let all = self.sessions.all();
        let idle: Vec<_> = all
            .iter()
            .filter(|s| s.idle_secs() > limit)
            .cloned()
            .collect();
        for s in &idle {
            self.end_session(s).await;
        }
        let now = chrono::Utc::now();
        let active: Vec<String> = all
            .iter()
            .filter(|s| {
                s.transport == SessionTransport::StreamableHttp
                    && s.idle_secs() <= active_within.as_secs() as i64
            })
            .map(|s| s.id.clone())
            .collect();
        if let Err(e) = self.store.touch_sessions(&active, now).await {
            tracing::warn!(error = %e, "recording session activity failed");
        }
        let timeout = chrono::Duration::from_std(self.opts.session.timeout)
            .unwrap_or(chrono::Duration::hours(1));
        if let Err(e) = self
            .store
            .expire_sessions(now - timeout, now - chrono::Duration::days(1))
            .await
        {
            tracing::warn!(error = %e, "expiring stored sessions failed");
        }
        // A shared connection nobody used for a whole session timeout serves no session.
        let closed = self.pool.sweep_shared(self.opts.session.timeout).await;
        if closed > 0 {
            tracing::debug!(
                connections = closed,
                "closed idle shared upstream connections"
            );
        }
        self.names.shrink();
        crate::heap::release_free_memory();
        idle.len()
    }
}

/// Ends the session's own upstream sessions (stateful targets).
pub(super) async fn close_upstreams(session: &Session) {
    let owned: Vec<_> = session
        .upstreams
        .lock()
        .await
        .drain()
        .map(|(_, h)| h)
        .collect();
    for handle in owned {
        handle.conn.close().await;
    }
}

/// How much per-replica state the gateway holds: what the sweeps keep from growing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    /// Legacy sessions in memory.
    pub sessions: usize,
    /// Shared upstream connections (per target, credentials and declared capabilities).
    pub shared_connections: usize,
    /// Learned exposed tool and prompt names.
    pub learned_names: usize,
    /// Items held in callers' merged lists.
    pub cached_list_items: usize,
}

impl Gateway {
    /// Targets whose circuit breaker is open, by name, for `reflow_upstream_breaker_open`.
    pub fn open_breakers(&self) -> Vec<String> {
        let open = self.breakers.open();
        self.targets
            .load()
            .iter()
            .filter(|t| open.contains(&t.id))
            .map(|t| t.name.clone())
            .collect()
    }

    /// Stdio processes by target name and state, for `reflow_stdio_processes`.
    pub fn process_census(&self) -> Vec<(String, &'static str, i64)> {
        let targets = self.targets.load();
        self.pool
            .processes
            .census()
            .into_iter()
            .filter_map(|((id, state), n)| {
                let t = targets.iter().find(|t| t.id == id)?;
                Some((t.name.clone(), state, n))
            })
            .collect()
    }

    pub fn footprint(&self) -> Footprint {
        Footprint {
            sessions: self.sessions.len(),
            shared_connections: self.pool.shared_len(),
            learned_names: self.names.len(),
            cached_list_items: self.list_cache.len(),
        }
    }
}
