//! What a client sends that is not a request: notifications (cancellation relayed to the upstream
//! request it names, roots changes to the session's own upstreams) and its answers to the
//! requests the gateway relayed to it.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Gateway;
use super::session::Session;
use crate::mcp::jsonrpc::id_key;

impl Gateway {
    /// A notification from the client.
    pub async fn handle_notification(
        self: &Arc<Self>,
        session: &Arc<Session>,
        method: &str,
        params: Option<Value>,
    ) {
        match method {
            "notifications/cancelled" => {
                let Some(request_id) = params.as_ref().and_then(|p| p.get("requestId")) else {
                    return;
                };
                let entry = session
                    .in_flight
                    .lock()
                    .unwrap()
                    .get(&id_key(request_id))
                    .cloned();
                if let Some((handle, upstream_id)) = entry {
                    let mut p = params.clone().unwrap_or_else(|| json!({}));
                    p["requestId"] = upstream_id;
                    if let Err(e) = handle.conn.notify(method, Some(p)).await {
                        tracing::debug!(error = %e, "relaying a cancellation failed");
                    }
                }
            }
            "notifications/roots/list_changed" => {
                let owned: Vec<_> = session.upstreams.lock().await.values().cloned().collect();
                for handle in owned {
                    let _ = handle.conn.notify(method, params.clone()).await;
                }
            }
            _ => {}
        }
    }

    /// The client's answer to a request the gateway sent it.
    pub fn handle_client_response(&self, session: &Session, message: Value) {
        let Some(id) = message.get("id").and_then(Value::as_str) else {
            return;
        };
        if let Some(waiter) = session.pending_client.lock().unwrap().remove(id) {
            let _ = waiter.send(message);
        }
    }
}
