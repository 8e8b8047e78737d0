//! The bridge's live sessions: one stdio child each, started by `initialize`, bounded in
//! number, found by id, and ended by DELETE, by idleness, by the child's own exit or by shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::session::{Session, SessionId};
use crate::upstream::{Handshake, StdioSpec, UpstreamConnection, UpstreamError};

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("this bridge already runs its maximum of {0} sessions (--max-sessions)")]
    Full(usize),
    #[error(transparent)]
    Child(#[from] UpstreamError),
}

pub struct Sessions {
    child: StdioSpec,
    max: usize,
    /// Open sessions, plus the slots of those still starting (`None`), so that concurrent
    /// `initialize`s cannot exceed the maximum.
    map: Mutex<HashMap<SessionId, Option<Arc<Session>>>>,
}

impl Sessions {
    pub fn new(child: StdioSpec, max: usize) -> Arc<Self> {
        Arc::new(Self {
            child,
            max,
            map: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Option<Arc<Session>>>> {
        self.map.lock().expect("session map poisoned")
    }

    /// Starts a child and initializes it with the client's own handshake.
    pub async fn open(&self, handshake: Handshake) -> Result<Arc<Session>, OpenError> {
        let id = SessionId::random();
        {
            let mut map = self.lock();
            if map.len() >= self.max {
                return Err(OpenError::Full(self.max));
            }
            map.insert(id.clone(), None);
        }
        match UpstreamConnection::connect_stdio(self.child.clone(), handshake).await {
            Ok((conn, inbound)) => {
                let session = Session::start(id.clone(), conn, inbound);
                tracing::info!(target: "reflow::bridge", session = %id, pid = session.pid().unwrap_or(0), "session started");
                self.lock().insert(id, Some(session.clone()));
                Ok(session)
            }
            Err(e) => {
                self.lock().remove(&id);
                Err(e.into())
            }
        }
    }

    /// The live session with this id. One whose child has exited is ended here: its client
    /// gets 404 and initializes again.
    pub async fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        let session = self.lock().get(id).cloned().flatten()?;
        if session.is_gone() {
            self.end(id).await;
            return None;
        }
        session.touch();
        Some(session)
    }

    /// Removes the session and ends its child; false when there was none.
    pub async fn end(&self, id: &SessionId) -> bool {
        let Some(Some(session)) = self.lock().remove(id) else {
            return false;
        };
        session.close().await;
        tracing::info!(target: "reflow::bridge", session = %id, "session ended");
        true
    }

    pub fn len(&self) -> usize {
        self.lock().values().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends sessions whose child exited or that were idle for `idle`; runs until dropped.
    pub async fn sweep(self: Arc<Self>, idle: Duration) {
        let every = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let stale: Vec<SessionId> = self
                .lock()
                .iter()
                .filter_map(|(id, s)| {
                    let s = s.as_ref()?;
                    (s.is_gone() || s.idle_for(idle)).then(|| id.clone())
                })
                .collect();
            for id in stale {
                self.end(&id).await;
            }
        }
    }

    /// Ends every session at once (shutdown): each child's group is stopped and reaped.
    pub async fn close_all(&self) {
        let all: Vec<Arc<Session>> = self.lock().drain().filter_map(|(_, s)| s).collect();
        futures_util::future::join_all(all.iter().map(|s| s.close())).await;
    }
}
