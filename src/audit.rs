//! The audit writer: requests hand rows to a bounded channel and never wait for the database;
//! one task writes them in batches. While the database takes writes, a full queue applies
//! backpressure (counted) and nothing is dropped. While it refuses them (disk full, read-only,
//! connection lost), the writer keeps its batch and retries with backoff, the queue holds what
//! arrives meanwhile, and only a row that finds the queue full is dropped, counted and logged:
//! a storage fault must not stall every request. Shutdown flushes within a bound. Each row is
//! also counted into the dashboard's activity as it is recorded, and published to live
//! subscribers (the UI's stream), who may miss rows when they fall behind.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc};

use crate::activity::Activity;
use crate::store::{AuditRecord, Store};

const BATCH: usize = 500;
/// How long the writer waits for more rows after the first before it writes a batch. At low
/// concurrency each commit (BEGIN/COMMIT, WAL frames) was a fifth of the database thread's
/// work at 20 ms; rows are already in memory, and shutdown drains them.
const LINGER: Duration = Duration::from_millis(100);
/// Retry delays while the database refuses writes: from the first to the cap, doubling.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_CAP: Duration = Duration::from_secs(5);
/// A storage fault is logged at most this often while it lasts (each drop is counted).
const FAULT_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often a caller waiting for room in a full queue checks whether the database is faulted.
const BACKPRESSURE_CHECK: Duration = Duration::from_millis(50);
/// Rows a live subscriber may fall behind before it misses some.
const LIVE_BUFFER: usize = 4096;

pub struct AuditLog {
    tx: mpsc::Sender<AuditRecord>,
    capacity: usize,
    log_arguments: bool,
    /// Times a request had to wait because the queue was full.
    pub backpressure: AtomicU64,
    /// Rows dropped: the queue was full while the database refused writes, the writer had
    /// stopped, or shutdown's grace ran out (each drop is logged).
    pub failed: AtomicU64,
    pub written: AtomicU64,
    /// Rows taken off the queue and not yet written (the writer's batch).
    in_hand: AtomicUsize,
    /// Set while the last write failed; requests then drop instead of waiting on a full queue.
    faulted: AtomicBool,
    /// Why the last write failed, for `/ready`.
    fault: Mutex<Option<String>>,
    last_drop_log: Mutex<Option<Instant>>,
    stop: Notify,
    /// Told when the queue holds a full batch, so the lingering writer need not be woken per row.
    batch_ready: Notify,
    live: broadcast::Sender<Arc<AuditRecord>>,
    activity: Arc<Activity>,
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
    /// Starts the writer; every row recorded is also counted into `activity`.
    pub fn start(
        store: Store,
        capacity: usize,
        log_arguments: bool,
        activity: Arc<Activity>,
    ) -> (Arc<Self>, AuditWriter) {
        Self::start_lingering(store, capacity, log_arguments, activity, LINGER)
    }

    /// `start` with another batching delay: how long the writer lets rows gather after the
    /// first before it writes them (unless a full batch is queued first, or shutdown begins).
    pub fn start_lingering(
        store: Store,
        capacity: usize,
        log_arguments: bool,
        activity: Arc<Activity>,
        linger: Duration,
    ) -> (Arc<Self>, AuditWriter) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let log = Arc::new(Self {
            tx,
            capacity: capacity.max(1),
            log_arguments,
            backpressure: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            in_hand: AtomicUsize::new(0),
            faulted: AtomicBool::new(false),
            fault: Mutex::new(None),
            last_drop_log: Mutex::new(None),
            stop: Notify::new(),
            batch_ready: Notify::new(),
            live: broadcast::channel(LIVE_BUFFER).0,
            activity,
        });
        let task = tokio::spawn(write_loop(store, rx, log.clone(), linger));
        (log.clone(), AuditWriter { log, task })
    }

    pub fn log_arguments(&self) -> bool {
        self.log_arguments
    }

    /// Rows recorded and not yet written: the queue plus the writer's batch.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.tx.capacity() + self.in_hand.load(Ordering::Relaxed)
    }

    /// Why the database refuses audit writes, while it does.
    pub fn storage_fault(&self) -> Option<String> {
        if !self.faulted.load(Ordering::Relaxed) {
            return None;
        }
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every row recorded from now on, as it is recorded (not yet written).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AuditRecord>> {
        self.live.subscribe()
    }

    /// Queues a row. Waits only when the queue is full and the database is taking writes
    /// (backpressure), never for the database itself.
    pub async fn record(&self, row: AuditRecord) {
        self.activity.observe(&row);
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(row.clone()));
        }
        match self.tx.try_send(row) {
            Ok(()) => {
                if self.capacity - self.tx.capacity() >= batch_limit(self.capacity) {
                    self.batch_ready.notify_one();
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) if self.faulted.load(Ordering::Relaxed) => {
                self.dropped(
                    1,
                    "the audit queue is full while the database refuses writes",
                );
            }
            Err(mpsc::error::TrySendError::Full(row)) => {
                self.backpressure.fetch_add(1, Ordering::Relaxed);
                // Wait for room, but not for a fault that begins meanwhile: the writer then
                // holds its batch until the disk or the server is back, and the caller would
                // wait that long.
                loop {
                    match tokio::time::timeout(BACKPRESSURE_CHECK, self.tx.reserve()).await {
                        Ok(Ok(permit)) => break permit.send(row),
                        Ok(Err(_)) => break self.dropped(1, "the audit writer has stopped"),
                        Err(_) if self.faulted.load(Ordering::Relaxed) => {
                            break self.dropped(
                                1,
                                "the audit queue is full while the database refuses writes",
                            );
                        }
                        Err(_) => {}
                    }
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped(1, "the audit writer has stopped");
            }
        }
    }

    fn dropped(&self, rows: u64, why: &str) {
        let total = self.failed.fetch_add(rows, Ordering::Relaxed) + rows;
        let mut last = self.last_drop_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= FAULT_LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::error!(dropped_total = total, "audit rows dropped: {why}");
        }
    }

    fn set_fault(&self, fault: Option<String>) {
        let mut slot = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        self.faulted.store(fault.is_some(), Ordering::Relaxed);
        *slot = fault;
    }
}

impl AuditWriter {
    /// Writes everything still queued, then stops; gives up after `within` (a database that
    /// refuses writes must not hold shutdown), counting and logging what it could not write.
    pub async fn finish(mut self, within: Duration) {
        self.log.stop.notify_one();
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            self.task.abort();
            let lost = self.log.queue_depth();
            self.log.failed.fetch_add(lost as u64, Ordering::Relaxed);
            tracing::error!(
                rows = lost,
                ?within,
                fault = self.log.storage_fault().as_deref().unwrap_or("none"),
                "audit rows could not be written before shutdown and are lost"
            );
        }
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<AuditRecord>,
    log: Arc<AuditLog>,
    linger: Duration,
) {
    // A batch in hand is held like the queue during a fault: no larger than the queue, so
    // `audit.queue_size` bounds what a fault holds (twice over at most), however long rows
    // are gathered.
    let limit = batch_limit(rx.max_capacity());
    let mut batch = Vec::with_capacity(limit);
    loop {
        let first = tokio::select! {
            row = rx.recv() => row,
            () = log.stop.notified() => None,
        };
        let Some(first) = first else {
            // Stopping: drain what is queued.
            while let Ok(row) = rx.try_recv() {
                batch.push(row);
                if batch.len() == limit {
                    write(&store, &mut batch, &log).await;
                }
            }
            write(&store, &mut batch, &log).await;
            return;
        };
        batch.push(first);
        log.in_hand.store(batch.len(), Ordering::Relaxed);
        // Let rows gather in the queue for a moment: one transaction per row would make the
        // database thread the busiest in the process at low concurrency (every commit rewrites
        // its pages). The writer sleeps through it, not woken per row, unless a batch fills.
        let mut stopping = false;
        if batch.len() + rx.len() < limit {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = log.batch_ready.notified() => {}
                () = log.stop.notified() => stopping = true,
            }
        }
        while batch.len() < limit {
            match rx.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        write(&store, &mut batch, &log).await;
        if stopping {
            // Handled by the top of the loop, which drains the queue.
            log.stop.notify_one();
        }
    }
}

/// Rows per batch: a batch in hand is held like the queue during a fault, so no larger than it.
fn batch_limit(capacity: usize) -> usize {
    BATCH.min(capacity).max(1)
}

/// Writes `batch`, retrying until the database takes it: rows are kept, not dropped, while
/// the fault lasts. The queue behind bounds the memory this holds.
async fn write(store: &Store, batch: &mut Vec<AuditRecord>, log: &AuditLog) {
    if batch.is_empty() {
        return;
    }
    log.in_hand.store(batch.len(), Ordering::Relaxed);
    let mut delay = RETRY_FIRST;
    let mut last_log: Option<Instant> = None;
    loop {
        match store.insert_audit(batch).await {
            Ok(()) => {
                log.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                log.in_hand.store(0, Ordering::Relaxed);
                batch.clear();
                if log.faulted.load(Ordering::Relaxed) {
                    tracing::info!("the database takes audit writes again");
                    log.set_fault(None);
                }
                return;
            }
            Err(e) => {
                if last_log.is_none_or(|t| t.elapsed() >= FAULT_LOG_EVERY) {
                    last_log = Some(Instant::now());
                    tracing::error!(error = %e, rows = batch.len(), queued = log.queue_depth(),
                        "writing audit rows failed; keeping them and retrying");
                }
                // `/ready` is public: it says what kind of fault, not the driver's text.
                log.set_fault(Some(
                    e.unavailable()
                        .unwrap_or("the database refused the write")
                        .to_string(),
                ));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_CAP);
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
