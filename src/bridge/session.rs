//! One bridge session: the stdio child behind it, the streams its messages go out on (a
//! request's own POST stream, or the GET stream), and the routing of what the child sends on
//! its own to one of them.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::mcp::jsonrpc::{self, Kind, RpcError, classify, codes, id_key};
use crate::upstream::{Inbound, ServerInfo, UpstreamConnection, UpstreamError};

/// Messages for the GET stream kept while no GET stream is open; older ones are dropped.
const BACKLOG_MAX: usize = 1024;
/// How long a finished request waits for the child's messages that preceded its response.
const ORDER_WAIT: Duration = Duration::from_secs(1);

/// A session id as issued in `Mcp-Session-Id`: 128 random bits, hex.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn random() -> Self {
        Self(hex::encode(crate::crypto::random_bytes::<16>()))
    }

    pub fn parse(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream to one client: the messages of one POST's SSE answer, or of the GET stream.
pub type Outbox = mpsc::UnboundedSender<Value>;

/// A request of the client the child is working on.
struct InFlight {
    /// Its `_meta.progressToken` (as an id key), so progress goes back to it.
    progress: Option<String>,
    outbox: Outbox,
}

#[derive(Default)]
struct Standalone {
    outbox: Option<Outbox>,
    backlog: VecDeque<Value>,
}

pub struct Session {
    pub id: SessionId,
    conn: Arc<UpstreamConnection>,
    last_seen: Mutex<Instant>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    standalone: Mutex<Standalone>,
    /// Inbound items routed so far; compared with `conn.delivered()` to keep the order.
    routed: watch::Sender<u64>,
    closing: AtomicBool,
}

impl Session {
    /// Wraps a started child and routes what it sends on its own until it is gone.
    pub fn start(
        id: SessionId,
        conn: Arc<UpstreamConnection>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) -> Arc<Self> {
        let session = Arc::new(Self {
            id,
            conn,
            last_seen: Mutex::new(Instant::now()),
            in_flight: Mutex::new(HashMap::new()),
            standalone: Mutex::new(Standalone::default()),
            routed: watch::Sender::new(0),
            closing: AtomicBool::new(false),
        });
        // A weak handle: the router must not keep an ended session (and its child) alive.
        let weak = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some(item) = inbound.recv().await {
                let Some(session) = weak.upgrade() else { break };
                if item.signal.is_none() {
                    session.route(item.message);
                }
                session.routed.send_modify(|n| *n += 1);
            }
        });
        session
    }

    /// What the child said about itself in the handshake.
    pub fn server(&self) -> &ServerInfo {
        self.conn.server()
    }

    pub fn pid(&self) -> Option<u32> {
        self.conn.pid()
    }

    pub fn touch(&self) {
        *self.last_seen.lock().expect("last_seen poisoned") = Instant::now();
    }

    /// The child exited (crash, or it was ended).
    pub fn is_gone(&self) -> bool {
        self.conn.is_closed()
    }

    /// Idle: no request in flight, no GET stream open, nothing from the client for `limit`.
    pub fn idle_for(&self, limit: Duration) -> bool {
        let listening = self
            .standalone
            .lock()
            .expect("standalone poisoned")
            .outbox
            .as_ref()
            .is_some_and(|o| !o.is_closed());
        !listening
            && self
                .in_flight
                .lock()
                .expect("in_flight poisoned")
                .is_empty()
            && self.last_seen.lock().expect("last_seen poisoned").elapsed() >= limit
    }

    /// Relays one client request to the child. Every message for the client, the response last,
    /// goes to the returned receiver, which ends after the response.
    pub fn request(
        self: &Arc<Self>,
        id: Value,
        method: String,
        params: Option<Value>,
        timeout: Duration,
    ) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let key = id_key(&id);
        let progress = params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get("progressToken"))
            .map(id_key);
        self.in_flight.lock().expect("in_flight poisoned").insert(
            key.clone(),
            InFlight {
                progress,
                outbox: tx.clone(),
            },
        );
        let session = self.clone();
        tokio::spawn(async move {
            let outcome = session
                .conn
                .request_with_id(id.clone(), &method, params, timeout)
                .await;
            session.wait_for_routing().await;
            session
                .in_flight
                .lock()
                .expect("in_flight poisoned")
                .remove(&key);
            let reply = match outcome {
                Ok(result) => jsonrpc::response(id, result),
                Err(e) => jsonrpc::error_response(id, &child_error(&e)),
            };
            let _ = tx.send(reply);
        });
        rx
    }

    /// Waits until every message the child sent before the last response has been routed, so a
    /// request's progress and log messages reach its stream before its response does.
    async fn wait_for_routing(&self) {
        let target = self.conn.delivered();
        let mut rx = self.routed.subscribe();
        let _ = tokio::time::timeout(ORDER_WAIT, rx.wait_for(|n| *n >= target)).await;
    }

    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), UpstreamError> {
        self.conn.notify(method, params).await
    }

    /// The client's answer to a request the child sent.
    pub async fn respond(&self, message: Value) -> Result<(), UpstreamError> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let outcome = match message.get("error") {
            Some(error) => Err(serde_json::from_value(error.clone())
                .unwrap_or_else(|_| RpcError::internal("the client sent a malformed error"))),
            None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
        };
        self.conn.respond(id, outcome).await
    }

    /// Opens the GET stream (a new one replaces the old); what waited for it comes first.
    pub fn listen(&self) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut standalone = self.standalone.lock().expect("standalone poisoned");
        for message in standalone.backlog.drain(..) {
            let _ = tx.send(message);
        }
        standalone.outbox = Some(tx);
        rx
    }

    /// Where a message the child sent on its own goes: progress to the request that asked for
    /// it; log messages and server→client requests to the only request in flight (stdio carries
    /// no relation, and the request being served is the one they belong to); everything else,
    /// and anything when several requests run, to the GET stream.
    fn route(&self, message: Value) {
        let target = {
            let in_flight = self.in_flight.lock().expect("in_flight poisoned");
            match classify(&message) {
                Kind::Notification {
                    method: "notifications/progress",
                } => {
                    let token = message
                        .get("params")
                        .and_then(|p| p.get("progressToken"))
                        .map(id_key);
                    in_flight
                        .values()
                        .find(|f| token.is_some() && f.progress == token)
                        .map(|f| f.outbox.clone())
                }
                Kind::Notification {
                    method: "notifications/message",
                }
                | Kind::Request { .. } => (in_flight.len() == 1)
                    .then(|| in_flight.values().next().map(|f| f.outbox.clone()))
                    .flatten(),
                _ => None,
            }
        };
        let message = match target {
            Some(outbox) => match outbox.send(message) {
                Ok(()) => return,
                // The client went away from that stream: the GET stream may still reach it.
                Err(mpsc::error::SendError(message)) => message,
            },
            None => message,
        };
        let mut standalone = self.standalone.lock().expect("standalone poisoned");
        let message = match &standalone.outbox {
            Some(outbox) => match outbox.send(message) {
                Ok(()) => return,
                Err(mpsc::error::SendError(message)) => {
                    standalone.outbox = None;
                    message
                }
            },
            None => message,
        };
        if standalone.backlog.len() >= BACKLOG_MAX {
            standalone.backlog.pop_front();
            tracing::warn!(target: "reflow::bridge", session = %self.id, "no GET stream is open; dropping the oldest waiting message");
        }
        standalone.backlog.push_back(message);
    }

    /// Ends the child (its whole process group) and every stream of the session.
    pub async fn close(&self) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut standalone = self.standalone.lock().expect("standalone poisoned");
            standalone.outbox = None;
            standalone.backlog.clear();
        }
        // Requests still running get their error response from the failed call.
        self.conn.close().await;
    }
}

/// The JSON-RPC error a client sees for a request the child did not answer normally: the
/// child's own error as it sent it, otherwise what went wrong (never a secret: stdio errors
/// carry exit statuses and protocol complaints only).
fn child_error(e: &UpstreamError) -> RpcError {
    match e {
        UpstreamError::Rpc(e) => e.clone(),
        UpstreamError::Timeout => RpcError::new(
            codes::REQUEST_TIMEOUT,
            "the stdio server did not answer in time",
        ),
        UpstreamError::Exited(status) => RpcError::new(
            codes::UPSTREAM_ERROR,
            format!("the stdio server exited ({status}); initialize a new session"),
        ),
        other => RpcError::new(codes::UPSTREAM_ERROR, other.to_string()),
    }
}
