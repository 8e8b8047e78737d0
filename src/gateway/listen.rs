//! `subscriptions/listen` (2026-07-28): the open listen streams, their filters, and the
//! fan-out of upstream change notifications to the listeners allowed to see them.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::auth::Principal;
use crate::mcp::modern::SUBSCRIPTION_ID_KEY;
use crate::mcp::{RpcError, jsonrpc};

use super::lists::ListKind;
use super::session::Session;
use super::{Gateway, Target};

/// A `subscriptions/listen` stream: who listens, to what, and where its messages go.
pub(crate) struct Listener {
    principal: Principal,
    kinds: HashSet<&'static str>,
    uris: HashSet<String>,
    subscription_id: Value,
    tx: UnboundedSender<Value>,
}

impl Gateway {
    /// `subscriptions/listen`: registers a listener and returns its acknowledgement (the
    /// subset of the filter honoured) and the receiver of its notifications.
    pub async fn listen(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        params: Option<&Value>,
    ) -> Result<(Value, UnboundedReceiver<Value>), RpcError> {
        let filter = params
            .and_then(|p| p.get("notifications"))
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::invalid_params("params.notifications must be an object"))?;
        let max = self.opts.session.max_streams_per_user;
        let open = {
            let mut listeners = self.listeners.lock().unwrap();
            listeners.retain(|l| !l.tx.is_closed());
            listeners
                .iter()
                .filter(|l| l.principal.user_id == session.principal.user_id)
                .count()
        };
        if open >= max {
            return Err(RpcError::invalid_request(format!(
                "{open} listen streams of this user are open, the most session.max_streams_per_user allows; close one first"
            )));
        }
        let mut honored = Map::new();
        let mut kinds = HashSet::new();
        for (flag, method) in [
            ("toolsListChanged", "notifications/tools/list_changed"),
            ("promptsListChanged", "notifications/prompts/list_changed"),
            (
                "resourcesListChanged",
                "notifications/resources/list_changed",
            ),
        ] {
            if filter.get(flag) == Some(&Value::Bool(true)) {
                honored.insert(flag.into(), json!(true));
                kinds.insert(method);
            }
        }
        // Notifications only flow on live upstream connections.
        let targets = self.visible_targets(&session.principal);
        self.connect_all(session, &targets).await;
        let mut uris = HashSet::new();
        if let Some(Value::Array(wanted)) = filter.get("resourceSubscriptions") {
            for uri in wanted.iter().filter_map(Value::as_str) {
                if self.subscribe_upstream(session, uri).await {
                    uris.insert(uri.to_string());
                }
            }
            honored.insert(
                "resourceSubscriptions".into(),
                json!(uris.iter().collect::<Vec<_>>()),
            );
        }
        let (tx, rx) = unbounded_channel();
        self.listeners.lock().unwrap().push(Listener {
            principal: session.principal.clone(),
            kinds,
            uris,
            subscription_id: id.clone(),
            tx,
        });
        let ack = jsonrpc::notification(
            "notifications/subscriptions/acknowledged",
            Some(json!({
                "notifications": honored,
                "_meta": { SUBSCRIPTION_ID_KEY: id },
            })),
        );
        Ok((ack, rx))
    }

    /// Subscribes the shared upstream connection to a resource the caller may read.
    async fn subscribe_upstream(self: &Arc<Self>, session: &Arc<Session>, uri: &str) -> bool {
        let Some((target, original)) = self.resolve_uri(session, uri) else {
            return false;
        };
        let Ok(handle) = self.upstream(session, &target).await else {
            return false;
        };
        let subscribable = handle.conn.server().capabilities["resources"]["subscribe"]
            .as_bool()
            .unwrap_or(false);
        subscribable
            && handle
                .conn
                .request("resources/subscribe", Some(json!({ "uri": original })))
                .await
                .is_ok()
    }

    /// Sends an upstream's change notification to the listeners that asked for it and may
    /// see `target` (`uri`: the exposed URI of a resources/updated).
    pub(crate) fn publish(
        &self,
        target: &Target,
        method: &str,
        message: &Value,
        uri: Option<&str>,
    ) {
        let mut listeners = self.listeners.lock().unwrap();
        listeners.retain(|l| !l.tx.is_closed());
        for l in listeners.iter() {
            let wanted = match uri {
                Some(u) => l.uris.contains(u),
                None => l.kinds.contains(method),
            };
            if !wanted
                || !self
                    .visible_targets(&l.principal)
                    .iter()
                    .any(|t| t.id == target.id)
            {
                continue;
            }
            let _ = l.tx.send(tag(message, &l.subscription_id));
        }
    }

    /// Policies or targets changed: what any listener may see can differ.
    pub(crate) fn tell_listeners_everything_changed(&self) {
        let mut listeners = self.listeners.lock().unwrap();
        listeners.retain(|l| !l.tx.is_closed());
        for l in listeners.iter() {
            for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources] {
                let method = kind.changed_notification();
                if l.kinds.contains(method) {
                    let _ = l.tx.send(tag(
                        &jsonrpc::notification(method, None),
                        &l.subscription_id,
                    ));
                }
            }
        }
    }
}

/// A notification as a listener gets it: `_meta` names its subscription.
fn tag(message: &Value, subscription_id: &Value) -> Value {
    let mut m = message.clone();
    if !m.get("params").is_some_and(Value::is_object) {
        m["params"] = json!({});
    }
    let params = &mut m["params"];
    if !params.get("_meta").is_some_and(Value::is_object) {
        params["_meta"] = json!({});
    }
    params["_meta"][SUBSCRIPTION_ID_KEY] = subscription_id.clone();
    m
}

impl Gateway {
    /// Open `subscriptions/listen` streams (2026-07-28) on this replica.
    pub fn listen_stream_count(&self) -> usize {
        let mut listeners = self.listeners.lock().unwrap();
        listeners.retain(|l| !l.tx.is_closed());
        listeners.len()
    }
}
