//! `/api/observability/*`: the dashboard's data, from this replica's memory only.
//! `snapshot` is one reading; `stream` is Server-Sent Events: a `stats` event every second and
//! `activity` events (batches of new audit rows, at most every 250 ms). Admins see everyone;
//! other users their own activity.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::extract::Caller;
use crate::activity::{Scope, Snapshot};
use crate::auth::Principal;
use crate::store::AuditRecord;

/// Rows per `activity` event; more in one tick are counted as `skipped`.
const FEED_BATCH: usize = 100;
const FEED_TICK: Duration = Duration::from_millis(250);
const STATS_EVERY: u32 = 4;
/// Ticks between reads of the stdio process count (5 s).
const STDIO_EVERY: u32 = 20;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/observability/snapshot", get(snapshot))
        .route("/api/observability/stream", get(stream))
}

/// The dashboard's numbers and this replica's live state.
#[derive(Serialize)]
struct Live {
    #[serde(flatten)]
    activity: Snapshot,
    /// "everyone" or "self".
    scope: &'static str,
    /// Legacy MCP sessions held by this replica (admins only).
    sessions: Option<usize>,
    /// Open 2026-07-28 `subscriptions/listen` streams on this replica (admins only).
    listen_streams: Option<usize>,
    /// The era each target speaks, by name (admins only; absent until first probed).
    eras: Option<std::collections::BTreeMap<String, &'static str>>,
    /// Audit rows waiting for the writer (admins only).
    audit_queue: Option<usize>,
    /// stdio processes running, on every replica (admins only; read from the store at most
    /// every 5 s per stream).
    stdio_processes: Option<usize>,
    /// Always true: numbers come from this process, not from every replica.
    per_replica: bool,
}

fn scope_of(p: &Principal) -> Scope {
    if p.is_admin() {
        Scope::Everyone
    } else {
        Scope::User(p.user_id)
    }
}

/// stdio processes recorded as running (one indexed query); None when it fails.
async fn stdio_running(state: &AppState) -> Option<usize> {
    match state.store.live_instances().await {
        Ok(rows) => Some(
            rows.iter()
                .filter(|r| r.status == crate::domain::InstanceStatus::Running)
                .count(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "counting stdio processes for the dashboard failed");
            None
        }
    }
}

fn live(state: &AppState, scope: Scope, stdio: Option<usize>) -> Live {
    let admin = scope == Scope::Everyone;
    Live {
        activity: state
            .activity
            .snapshot(scope, chrono::Utc::now().timestamp()),
        scope: if admin { "everyone" } else { "self" },
        sessions: admin.then(|| state.gateway.session_count()),
        listen_streams: admin.then(|| state.gateway.listen_stream_count()),
        eras: admin.then(|| {
            state
                .gateway
                .target_eras()
                .into_iter()
                .filter_map(|(name, era)| era.map(|e| (name, e)))
                .collect()
        }),
        audit_queue: admin.then(|| state.audit.queue_depth()),
        stdio_processes: stdio.filter(|_| admin),
        per_replica: true,
    }
}

async fn snapshot(State(state): State<Arc<AppState>>, Caller(p): Caller) -> Json<Live> {
    let scope = scope_of(&p);
    let stdio = match scope {
        Scope::Everyone => stdio_running(&state).await,
        Scope::User(_) => None,
    };
    Json(live(&state, scope, stdio))
}

/// One audit row as the live feed shows it (never the request arguments).
#[derive(Serialize)]
struct FeedRow<'a> {
    time: chrono::DateTime<chrono::Utc>,
    user_id: Option<crate::domain::UserId>,
    method: &'a str,
    target: Option<&'a str>,
    name: Option<&'a str>,
    decision: &'static str,
    policy: Option<&'a str>,
    status: Option<i64>,
    error: Option<&'a str>,
    duration_ms: i64,
}

impl<'a> From<&'a AuditRecord> for FeedRow<'a> {
    fn from(r: &'a AuditRecord) -> Self {
        Self {
            time: r.created_at,
            user_id: r.user_id,
            method: &r.method,
            target: r.target_name.as_deref(),
            name: r.name.as_deref(),
            decision: r.decision.as_str(),
            policy: r.policy_name.as_deref(),
            status: r.response_status,
            error: r.error.as_deref(),
            duration_ms: r.duration_ms,
        }
    }
}

async fn stream(
    State(state): State<Arc<AppState>>,
    Caller(p): Caller,
) -> impl axum::response::IntoResponse {
    let (tx, rx) = mpsc::channel(16);
    let rows = state.audit.subscribe();
    tokio::spawn(pump(state, scope_of(&p), rows, tx));
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default())
}

fn json_event(name: &str, data: &impl Serialize) -> Option<Event> {
    Event::default().event(name).json_data(data).ok()
}

/// Feeds one client until it goes away (its channel closes).
async fn pump(
    state: Arc<AppState>,
    scope: Scope,
    mut rows: broadcast::Receiver<Arc<AuditRecord>>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut tick = tokio::time::interval(FEED_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<Arc<AuditRecord>> = Vec::new();
    let mut skipped: u64 = 0;
    let mut n: u32 = 0;
    let mut stdio = None;
    loop {
        tokio::select! {
            row = rows.recv() => match row {
                Ok(row) => {
                    let mine = match scope {
                        Scope::Everyone => true,
                        Scope::User(u) => row.user_id == Some(u),
                    };
                    if !mine {
                        continue;
                    }
                    if pending.len() < FEED_BATCH {
                        pending.push(row);
                    } else {
                        skipped += 1;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(k)) => skipped += k,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                if scope == Scope::Everyone && n.is_multiple_of(STDIO_EVERY) {
                    stdio = stdio_running(&state).await;
                }
                if n.is_multiple_of(STATS_EVERY) {
                    let Some(ev) = json_event("stats", &live(&state, scope, stdio)) else { return };
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                n = n.wrapping_add(1);
                if pending.is_empty() && skipped == 0 {
                    continue;
                }
                let batch: Vec<FeedRow> = pending.iter().map(|r| FeedRow::from(r.as_ref())).collect();
                let body = serde_json::json!({ "rows": batch, "skipped": skipped });
                pending.clear();
                skipped = 0;
                let Some(ev) = json_event("activity", &body) else { return };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
        }
    }
}
