//! What every transport of one upstream connection shares: the channel that hands the gateway
//! what the upstream sends on its own (counted, so a response never overtakes what preceded it),
//! request ids, the closed signal, the requests waiting for an answer, and how an answer becomes
//! the caller's outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

pub(super) use crate::mcp::jsonrpc::id_key;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::{Inbound, StreamSignal, UpstreamError};
use crate::mcp::jsonrpc::{Kind, RpcError, classify, codes};

/// State both transports share with the connection that owns them.
pub(super) struct Core {
    pub(super) name: String,
    pub(super) ids: AtomicI64,
    pub(super) inbound: mpsc::Sender<Inbound>,
    /// Inbound items handed to the gateway so far (see `UpstreamConnection::delivered`).
    pub(super) delivered: std::sync::atomic::AtomicU64,
    pub(super) closed: AtomicBool,
    /// Flipped once on close or drop; every background task of the connection ends on it.
    pub(super) shutdown: watch::Sender<bool>,
    /// The largest message taken from the upstream (`gateway.max_upstream_message`).
    pub(super) max_message: usize,
}

impl Core {
    pub(super) fn new(
        name: String,
        inbound: mpsc::Sender<Inbound>,
        max_message: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            max_message,
            name,
            ids: AtomicI64::new(1),
            inbound,
            delivered: std::sync::atomic::AtomicU64::new(0),
            closed: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
        })
    }

    pub(super) fn next_id(&self) -> Value {
        Value::from(self.ids.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
    }

    /// Resolves once the connection is closed or dropped.
    pub(super) fn closed_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Hands a message to the gateway. A gateway that stopped listening loses nothing it wanted.
    pub(super) async fn deliver(&self, message: Value, related: Option<Value>) {
        let sent = self
            .inbound
            .send(Inbound {
                message,
                related,
                signal: None,
            })
            .await;
        if sent.is_ok() {
            self.delivered.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Signals count as delivered items too: the gateway counts every item it processes, and
    /// a signal missing from this side of the count would let a response overtake the
    /// notifications just before it (the last progress of a call arrived after its response).
    pub(super) async fn signal(&self, request: &Value, signal: StreamSignal) {
        let sent = self
            .inbound
            .send(Inbound {
                message: Value::Null,
                related: Some(request.clone()),
                signal: Some(signal),
            })
            .await;
        if sent.is_ok() {
            self.delivered.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Requests waiting for a response that arrives on a stream shared by all of them (legacy SSE).
#[derive(Default)]
pub(super) struct Pending(pub(super) Mutex<HashMap<String, oneshot::Sender<Value>>>);

impl Pending {
    pub(super) fn insert(&self, id: &Value) -> (PendingGuard<'_>, oneshot::Receiver<Value>) {
        let (tx, rx) = oneshot::channel();
        let key = id_key(id);
        self.0
            .lock()
            .expect("pending map poisoned")
            .insert(key.clone(), tx);
        (PendingGuard { pending: self, key }, rx)
    }

    pub(super) fn take(&self, id: &Value) -> Option<oneshot::Sender<Value>> {
        self.0
            .lock()
            .expect("pending map poisoned")
            .remove(&id_key(id))
    }

    /// Fails every waiting request fast: dropping the senders wakes the receivers.
    pub(super) fn clear(&self) {
        self.0.lock().expect("pending map poisoned").clear();
    }
}

/// Removes a request from the pending map however its caller stops waiting (answer, timeout,
/// cancellation), so the map never leaks entries.
pub(super) struct PendingGuard<'a> {
    pending: &'a Pending,
    key: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.pending.0.lock() {
            map.remove(&self.key);
        }
    }
}

/// Turns a response message into the caller's outcome.
pub(super) fn outcome(mut message: Value) -> Result<Value, UpstreamError> {
    let obj = message
        .as_object_mut()
        .ok_or_else(|| UpstreamError::Protocol("a response must be an object".into()))?;
    if let Some(result) = obj.remove("result") {
        return Ok(result);
    }
    match obj.remove("error") {
        Some(error) => Err(UpstreamError::Rpc(
            serde_json::from_value(error).unwrap_or_else(|_| {
                RpcError::new(codes::UPSTREAM_ERROR, "the upstream sent a malformed error")
            }),
        )),
        None => Err(UpstreamError::Protocol(
            "a response needs \"result\" or \"error\"".into(),
        )),
    }
}

/// The response id of a message, if it is a response (success or error).
pub(super) fn response_id(message: &Value) -> Option<&Value> {
    match classify(message) {
        Kind::Response { id } | Kind::Error { id } => Some(id),
        _ => None,
    }
}
