//! What upstreams send on their own: progress and log messages back to the request they belong
//! to, list changes and resource updates to the sessions they concern, and server→client
//! requests (sampling, elicitation, roots) relayed to the right client and answered back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::mcp::{Kind, RpcError, classify, codes, jsonrpc};
use crate::upstream::{Inbound, StreamSignal};

use super::lists::ListKind;
use super::naming::expose_uri;
use super::session::{STANDALONE, Session};
use super::upstreams::UpstreamHandle;
use super::{Gateway, Outgoing, Sink};
use crate::mcp::jsonrpc::id_key;

/// Client capability each relayed server→client request needs.
pub(crate) fn required_capability(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// Where a message for a client goes: the request's own stream, or the session's standalone one.
enum Route {
    Request(Arc<Session>, Sink),
    Standalone(Arc<Session>),
}

impl Route {
    fn session(&self) -> &Arc<Session> {
        match self {
            Route::Request(s, _) | Route::Standalone(s) => s,
        }
    }
    fn send(&self, message: Value) {
        match self {
            Route::Request(_, sink) => {
                let _ = sink.send(Outgoing::Message(message));
            }
            Route::Standalone(s) => {
                s.push(STANDALONE, message);
            }
        }
    }
}

impl Gateway {
    pub(crate) fn on_inbound(self: &Arc<Self>, handle: &Arc<UpstreamHandle>, inbound: Inbound) {
        let Inbound {
            message,
            related,
            signal,
        } = inbound;
        if let Some(signal) = signal {
            if signal == StreamSignal::Opened {
                handle
                    .streams_answers
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let sink = related.and_then(|r| {
                handle
                    .in_flight
                    .lock()
                    .unwrap()
                    .get(&id_key(&r))
                    .map(|f| f.sink.clone())
            });
            if let Some(sink) = sink {
                let _ = sink.send(match signal {
                    StreamSignal::Opened => Outgoing::Stream,
                    StreamSignal::Broken { .. } => Outgoing::Break,
                });
            }
            return;
        }
        match classify(&message) {
            Kind::Notification { method } => {
                let method = method.to_string();
                self.on_notification(handle, &method, message, related.as_ref());
            }
            Kind::Request { id, method } => {
                let (id, method) = (id.clone(), method.to_string());
                let route = self.route_for(handle, related.as_ref());
                let gw = self.clone();
                let handle = handle.clone();
                tokio::spawn(async move {
                    let params = message.get("params").cloned();
                    let outcome = gw.relay_to_client(&handle, route, &method, params).await;
                    if let Err(e) = handle.conn.respond(id, outcome).await {
                        tracing::debug!(error = %e, "answering an upstream request failed");
                    }
                });
            }
            _ => {
                tracing::debug!(target = %handle.target.name, "ignored an unexpected message from upstream")
            }
        }
    }

    /// The session a server→client message belongs to: the request it arrived with, else the
    /// session owning the connection, else the only request in flight.
    fn route_for(&self, handle: &UpstreamHandle, related: Option<&Value>) -> Option<Route> {
        let in_flight = handle.in_flight.lock().unwrap();
        let by_request = related.and_then(|r| in_flight.get(&id_key(r))).or_else(|| {
            (in_flight.len() == 1)
                .then(|| in_flight.values().next())
                .flatten()
        });
        if let Some(f) = by_request
            && let Some(s) = f.session.upgrade()
        {
            return Some(Route::Request(s, f.sink.clone()));
        }
        handle
            .owner
            .as_ref()
            .and_then(|o| o.upgrade())
            .map(Route::Standalone)
    }

    /// Sessions that use `handle`: its owner, or every session that can see a shared target.
    pub(super) fn attached_sessions(&self, handle: &UpstreamHandle) -> Vec<Arc<Session>> {
        if let Some(owner) = &handle.owner {
            return owner.upgrade().into_iter().collect();
        }
        // A stdio process or a pod serves one isolation key: only the sessions that use it.
        if handle.is_isolated() {
            return super::processes::live_sessions(&handle.attached);
        }
        self.sessions
            .all()
            .into_iter()
            .filter(|s| {
                self.visible_targets(&s.principal)
                    .iter()
                    .any(|t| t.id == handle.target.id)
            })
            .collect()
    }

    fn on_notification(
        &self,
        handle: &UpstreamHandle,
        method: &str,
        mut message: Value,
        related: Option<&Value>,
    ) {
        match method {
            "notifications/progress" => {
                let token = message["params"]["progressToken"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let Some(key) = token.strip_prefix("reflow-") else {
                    return;
                };
                let in_flight = handle.in_flight.lock().unwrap();
                if let Some(f) = in_flight.get(key)
                    && let Some(original) = &f.progress_token
                {
                    message["params"]["progressToken"] = original.clone();
                    let _ = f.sink.send(Outgoing::Message(message));
                }
            }
            "notifications/resources/updated" => {
                let Some(uri) = message["params"]["uri"].as_str().map(str::to_string) else {
                    return;
                };
                let exposed = expose_uri(&handle.target.prefix, &uri);
                message["params"]["uri"] = Value::String(exposed.clone());
                self.publish(&handle.target, method, &message, Some(&exposed));
                for s in self.attached_sessions(handle) {
                    if s.subscriptions
                        .lock()
                        .unwrap()
                        .contains(&(handle.target.id, uri.clone()))
                    {
                        s.push(STANDALONE, message.clone());
                    }
                }
            }
            "notifications/tasks/status" => {
                if let Some(params) = message.get_mut("params") {
                    super::rewrite::expose_task_ids(params, &handle.target.name);
                }
                for s in self.attached_sessions(handle) {
                    s.push(STANDALONE, message.clone());
                }
            }
            m if !ListKind::from_changed_notification(m).is_empty() => {
                for kind in ListKind::from_changed_notification(m) {
                    handle.invalidate(*kind);
                }
                self.publish(&handle.target, m, &message, None);
                for s in self.attached_sessions(handle) {
                    s.push(STANDALONE, message.clone());
                }
            }
            _ => {
                // Log messages and anything else: to the request it came with, else to all.
                // When it is the only request in flight, the message is its if nothing else
                // could say so: a modern request has no standalone stream to catch it, and
                // stdio never relates a message to a request.
                // A log message reaches only clients whose level admits it.
                let level = (method == "notifications/message")
                    .then(|| message["params"]["level"].as_str().map(str::to_string))
                    .flatten();
                let wanted = |s: &Session| {
                    method != "notifications/message" || s.wants_log(level.as_deref())
                };
                let sink = {
                    let in_flight = handle.in_flight.lock().unwrap();
                    let by_request = related.and_then(|r| in_flight.get(&id_key(r)));
                    let stdio = handle.is_stdio();
                    let only = (in_flight.len() == 1)
                        .then(|| in_flight.values().next())
                        .flatten()
                        .filter(|f| stdio || f.session.upgrade().is_some_and(|s| s.modern));
                    by_request
                        .or(only)
                        .map(|f| (f.sink.clone(), f.session.upgrade()))
                };
                match sink {
                    Some((sink, session)) => {
                        if session.is_none_or(|s| wanted(&s)) {
                            let _ = sink.send(Outgoing::Message(message));
                        }
                    }
                    None => {
                        for s in self.attached_sessions(handle) {
                            if wanted(&s) {
                                s.push(STANDALONE, message.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends an upstream's request to the client and waits for the client's answer.
    async fn relay_to_client(
        &self,
        handle: &UpstreamHandle,
        route: Option<Route>,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, RpcError> {
        if method == "ping" {
            return Ok(json!({}));
        }
        let route = route.ok_or_else(|| {
            // A shared process (stdio) with several requests in flight: guessing a session could
            // hand one user's data to another, so the upstream gets an error it can handle.
            let why = if handle.in_flight.lock().unwrap().len() > 1 {
                "several clients' requests are in flight on this shared connection and the request does not say which one it belongs to"
            } else {
                "no client is waiting on this server"
            };
            RpcError::new(
                codes::INTERNAL_ERROR,
                format!("{why}; {method} cannot be relayed"),
            )
        })?;
        let session = route.session().clone();
        if session.modern
            && let Some(answer) = session.take_prefilled(method)
        {
            // A retry re-issued this call: the client answered this question already.
            return Ok(answer);
        }
        // A modern client's capabilities are checked where its input_required is made.
        if let Some(cap) = required_capability(method)
            && !session.modern
            && !session.client_supports(cap)
        {
            return Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!(
                    "the client did not declare the {cap} capability; {method} is not available"
                ),
            ));
        }
        let id = session.next_client_request_id();
        let (tx, rx) = oneshot::channel();
        session
            .pending_client
            .lock()
            .unwrap()
            .insert(id.clone(), tx);
        route.send(jsonrpc::request(Value::String(id.clone()), method, params));
        // Humans answer elicitations: allow longer than a tool call's own timeout.
        let wait = handle.target.timeout.max(Duration::from_secs(300));
        let answer = tokio::time::timeout(wait, rx).await;
        session.pending_client.lock().unwrap().remove(&id);
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => {
                return Err(RpcError::internal(
                    "the client session ended before answering",
                ));
            }
            Err(_) => {
                return Err(RpcError::new(
                    codes::REQUEST_TIMEOUT,
                    "the client did not answer in time",
                ));
            }
        };
        if let Some(result) = answer.get("result") {
            return Ok(result.clone());
        }
        Err(answer
            .get("error")
            .and_then(|e| serde_json::from_value::<RpcError>(e.clone()).ok())
            .unwrap_or_else(|| RpcError::internal("the client sent an invalid answer")))
    }
}
