//! `subscriptions/listen` for a modern upstream: one long-lived stream per connection carrying
//! list changes and the updates of subscribed resources, delivered to the gateway as plain
//! notifications (the 2026-07-28 replacement for the GET stream and `resources/subscribe`).

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::super::{
    ServerInfo, UpstreamError, content_type, event_message, events, outcome, response_id,
    send_error, serialize, status_error,
};
use super::{LISTEN_BACKOFF_MAX, LISTEN_BACKOFF_START, META_SUBSCRIPTION_ID, ModernConn};
use crate::mcp::{RpcError, codes, jsonrpc};

impl ModernConn {
    /// Opens `subscriptions/listen` for the list changes the server advertises, in the
    /// background, reconnecting with backoff until the connection closes.
    pub(in crate::upstream) fn start_listen(self: &Arc<Self>, server: &ServerInfo) {
        let caps = &server.capabilities;
        let wants = |kind: &str| caps[kind]["listChanged"].as_bool().unwrap_or(false);
        let lists = json!({
            "toolsListChanged": wants("tools"),
            "promptsListChanged": wants("prompts"),
            "resourcesListChanged": wants("resources"),
        });
        let any_list = ["tools", "prompts", "resources"].iter().any(|k| wants(k));
        let subscribable = caps["resources"]["subscribe"].as_bool().unwrap_or(false);
        if !any_list && !subscribable {
            return;
        }
        let this = self.clone();
        let closed = self.core.closed_signal();
        tokio::spawn(async move {
            tokio::select! {
                _ = closed => {}
                _ = this.listen_loop(lists, any_list) => {}
            }
        });
    }

    /// The listen filter: the list changes the server offers, plus the resources a client
    /// subscribed to (`resources/subscribe` is gone in 2026-07-28; the stream carries updates).
    fn listen_filter(&self, lists: &Value) -> Value {
        let mut filter = lists.clone();
        let subscribed = self.subscribed.lock().expect("subscriptions lock poisoned");
        if !subscribed.is_empty() {
            filter["resourceSubscriptions"] = json!(subscribed.iter().collect::<Vec<_>>());
        }
        filter
    }

    /// Keeps one listen stream open, reopening it with backoff when it ends and at once when the
    /// resource subscriptions change.
    async fn listen_loop(&self, lists: Value, any_list: bool) {
        let mut backoff = LISTEN_BACKOFF_START;
        let mut changes = self.filter_changed.subscribe();
        loop {
            changes.mark_unchanged();
            let idle = !any_list
                && self
                    .subscribed
                    .lock()
                    .expect("subscriptions lock poisoned")
                    .is_empty();
            if idle {
                if changes.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let filter = self.listen_filter(&lists);
            let ended = tokio::select! {
                ended = self.listen_once(&filter) => ended,
                _ = changes.changed() => continue,
            };
            match ended {
                Ok(ListenEnd::Refused(e)) => {
                    tracing::info!(target: "reflow::upstream", upstream = %self.core.name, error = %e, "the upstream refused subscriptions/listen; no change notifications until the subscriptions change");
                    if changes.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(ListenEnd::Streamed) => backoff = LISTEN_BACKOFF_START,
                Err(e) => {
                    tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, error = %e, "subscriptions/listen failed")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = changes.changed() => {}
            }
            backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
        }
    }

    pub(super) fn subscription(
        &self,
        params: Option<&Value>,
        subscribe: bool,
    ) -> Result<Value, UpstreamError> {
        let Some(uri) = params.and_then(|p| p.get("uri")).and_then(Value::as_str) else {
            return Err(UpstreamError::Rpc(RpcError::new(
                codes::INVALID_PARAMS,
                "resources/subscribe and resources/unsubscribe need a uri",
            )));
        };
        let changed = {
            let mut subscribed = self.subscribed.lock().expect("subscriptions lock poisoned");
            if subscribe {
                subscribed.insert(uri.to_string())
            } else {
                subscribed.remove(uri)
            }
        };
        if changed {
            self.filter_changed.send_modify(|n| *n += 1);
        }
        Ok(json!({}))
    }

    async fn listen_once(&self, filter: &Value) -> Result<ListenEnd, UpstreamError> {
        let id = self.core.next_id();
        let params = self.with_meta(Some(json!({ "notifications": filter })));
        let headers = self.request_headers("subscriptions/listen", &params)?;
        let body = serialize(&jsonrpc::request(
            id.clone(),
            "subscriptions/listen",
            Some(params),
        ));
        let resp = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(send_error)?;
        if matches!(resp.status().as_u16(), 400 | 404 | 405) {
            return Ok(ListenEnd::Refused(status_error(resp).await));
        }
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        if !content_type(&resp).starts_with("text/event-stream") {
            return Ok(ListenEnd::Refused(UpstreamError::Protocol(
                "subscriptions/listen was not answered with a stream".into(),
            )));
        }
        let mut stream = events(resp, self.core.max_message);
        let mut acknowledged = false;
        while let Some(ev) = stream.next().await {
            let Some(mut message) = event_message(&ev, &self.core.name) else {
                continue;
            };
            if response_id(&message).is_some() {
                // The listen request ended (an error, or a graceful close).
                return match outcome(message) {
                    Err(e @ UpstreamError::Rpc(_)) if !acknowledged => Ok(ListenEnd::Refused(e)),
                    _ => Ok(ListenEnd::Streamed),
                };
            }
            let method = message.get("method").and_then(Value::as_str).unwrap_or("");
            if method == "notifications/subscriptions/acknowledged" {
                acknowledged = true;
                continue;
            }
            untag(&mut message);
            self.core.deliver(message, None).await;
        }
        if acknowledged {
            Ok(ListenEnd::Streamed)
        } else {
            Err(UpstreamError::Protocol(
                "the listen stream ended before its acknowledgement".into(),
            ))
        }
    }
}

enum ListenEnd {
    /// The stream ran and ended: listen again.
    Streamed,
    /// The server does not offer it: stop.
    Refused(UpstreamError),
}

/// The listen stream's `subscriptionId` tag means nothing to reflow's clients.
fn untag(message: &mut Value) {
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return;
    };
    let empty = match params.get_mut("_meta").and_then(Value::as_object_mut) {
        Some(meta) => {
            meta.remove(META_SUBSCRIPTION_ID);
            meta.is_empty()
        }
        None => false,
    };
    if empty {
        params.remove("_meta");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_tags_are_removed() {
        let mut m = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
            "params": {"_meta": {META_SUBSCRIPTION_ID: "7"}}});
        untag(&mut m);
        assert_eq!(m["params"], json!({}));
    }
}
