//! The audit writer: requests hand rows to a bounded channel and never wait for the database;
//! one task writes them in batches. A full queue applies backpressure (counted), nothing is
//! dropped silently, and shutdown flushes what is queued. Each row is also published to live
//! subscribers (the dashboard), who may miss rows when they fall behind; the log never waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc};

use crate::store::{AuditRecord, Store};

const BATCH: usize = 500;
const WRITE_ATTEMPTS: u32 = 5;
/// Rows a live subscriber may fall behind before it misses some.
const LIVE_BUFFER: usize = 4096;

pub struct AuditLog {
    tx: mpsc::Sender<AuditRecord>,
    capacity: usize,
    log_arguments: bool,
    /// Times a request had to wait because the queue was full.
    pub backpressure: AtomicU64,
    /// Rows that could not be written after every retry (each one is also logged).
    pub failed: AtomicU64,
    pub written: AtomicU64,
    stop: Notify,
    live: broadcast::Sender<Arc<AuditRecord>>,
}

/// The writer task; `finish` flushes the queue and ends it.
pub struct AuditWriter {
    log: Arc<AuditLog>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("queued", &self.queue_depth())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    pub fn start(store: Store, capacity: usize, log_arguments: bool) -> (Arc<Self>, AuditWriter) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let log = Arc::new(Self {
            tx,
            capacity: capacity.max(1),
            log_arguments,
            backpressure: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            stop: Notify::new(),
            live: broadcast::channel(LIVE_BUFFER).0,
        });
        let task = tokio::spawn(write_loop(store, rx, log.clone()));
        (log.clone(), AuditWriter { log, task })
    }

    pub fn log_arguments(&self) -> bool {
        self.log_arguments
    }

    pub fn queue_depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }

    /// Every row recorded from now on, as it is recorded (not yet written).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AuditRecord>> {
        self.live.subscribe()
    }

    /// Queues a row. Waits only when the queue is full (backpressure), never for the database.
    pub async fn record(&self, row: AuditRecord) {
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(row.clone()));
        }
        match self.tx.try_send(row) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(row)) => {
                self.backpressure.fetch_add(1, Ordering::Relaxed);
                if self.tx.send(row).await.is_err() {
                    tracing::error!("audit writer stopped; a row was not recorded");
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("audit writer stopped; a row was not recorded");
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl AuditWriter {
    /// Writes everything still queued, then stops.
    pub async fn finish(self) {
        self.log.stop.notify_one();
        let _ = self.task.await;
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<AuditRecord>, log: Arc<AuditLog>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let first = tokio::select! {
            row = rx.recv() => row,
            () = log.stop.notified() => None,
        };
        let Some(first) = first else {
            // Stopping: drain what is queued.
            while let Ok(row) = rx.try_recv() {
                batch.push(row);
                if batch.len() == BATCH {
                    write(&store, &mut batch, &log).await;
                }
            }
            write(&store, &mut batch, &log).await;
            return;
        };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        write(&store, &mut batch, &log).await;
    }
}

async fn write(store: &Store, batch: &mut Vec<AuditRecord>, log: &AuditLog) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=WRITE_ATTEMPTS {
        match store.insert_audit(batch).await {
            Ok(()) => {
                log.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(e) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(error = %e, rows = batch.len(), attempt, "writing audit rows failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, rows = batch.len(), "audit rows could not be written and are lost");
                log.failed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
            }
        }
    }
}

/// Keys whose values are never stored in the audit log, wherever they appear.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api_key",
        "authorization",
        "credential",
        "private",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The request params as stored with `audit.log_arguments`: secret-looking values redacted.
pub fn redacted_arguments(params: &Value) -> String {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if secret_key(k) {
                            Value::String("[redacted]".into())
                        } else {
                            walk(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(walk).collect()),
            other => other.clone(),
        }
    }
    walk(params).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_secret_looking_keys_at_any_depth() {
        let s = redacted_arguments(&json!({
            "name": "create_issue",
            "arguments": {"title": "x", "github_token": "ghp_123", "nested": [{"Password": "p"}]}
        }));
        assert!(
            s.contains("create_issue") && s.contains("\"title\":\"x\""),
            "{s}"
        );
        assert!(!s.contains("ghp_123") && !s.contains("\"p\""), "{s}");
    }
}
