//! 2026-07-28 (stateless) requests in the gateway: each runs in an unregistered, modern
//! `Session` built from the caller and its `_meta` (no store writes, any replica serves it),
//! through the router like a legacy request. A `Call` turns what the router sends into the
//! request's own stream: notifications, then a final result tagged with `resultType` (and
//! `ttlMs`/`cacheScope` on cacheable ones), or an `input_required` result when a legacy
//! upstream asks for input. Dropping an unfinished `Call` cancels the upstream request.
//! Also here: `server/discover` (`subscriptions/listen` is in `listen`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::mcp::modern as wire;
use crate::mcp::prepared::Prepared;
use crate::mcp::{self, Kind, RpcError, classify, codes, jsonrpc};

use super::detach::Detached;
use super::inbound::required_capability;
use super::request_state::{Parked, StateError};
use super::session::Session;
use super::{Gateway, Outgoing};
use crate::telemetry::spans::Origin;

/// One message for the client's stream of a modern request.
#[derive(Debug)]
pub enum Step {
    /// A notification about the request (progress, log).
    Note(Value),
    /// The last message: the response (result or error).
    Final(Value),
    /// The last message: a list page, its items kept serialized in the list cache.
    Page(Prepared),
}

/// A modern request in flight.
pub struct Call {
    gw: Arc<Gateway>,
    session: Arc<Session>,
    /// The id the request runs under in the router (the first round's client id).
    inner_id: Value,
    /// The id of the HTTP request being answered (a retry may use a new one).
    client_id: Value,
    method: String,
    /// The params the request's `requestState` is bound to.
    binding: Option<Value>,
    rx: Option<UnboundedReceiver<Outgoing>>,
    /// The request in the router, driven by whoever awaits `next` (spawned if dropped).
    work: Detached,
    done: bool,
    /// The request's `_meta` logLevel: log messages below it (all, without it) are dropped.
    log_level: Option<String>,
}

fn log_level_of(params: Option<&Value>) -> Option<String> {
    params?["_meta"][wire::LOG_LEVEL_KEY]
        .as_str()
        .map(str::to_string)
}

/// What a call keeps of the params the client sent, which move on to the upstream.
struct Sent {
    /// What a `requestState` is bound to (request_state::digest reads the name or URI and
    /// the arguments): not the rest, `_meta` being most of a call's params.
    binding: Option<Value>,
    log_level: Option<String>,
}

impl Sent {
    fn of(params: Option<&Value>) -> Self {
        let binding = params.and_then(Value::as_object).map(|p| {
            let kept = ["name", "uri", "arguments"]
                .into_iter()
                .filter_map(|k| p.get(k).map(|v| (k.to_string(), v.clone())));
            Value::Object(kept.collect())
        });
        Self {
            binding,
            log_level: log_level_of(params),
        }
    }
}

/// Params as the upstream gets them: without the modern envelope and our `requestState`
/// round's fields. `inputResponses` sent without a `requestState` (a client answering up
/// front) go on: a modern upstream may use them, others ignore unknown params.
fn upstream_params(params: Option<Value>) -> Option<Value> {
    let mut params = params?;
    if let Some(p) = params.as_object_mut() {
        if p.remove("requestState").is_some() {
            p.remove("inputResponses");
        }
        if let Some(Value::Object(meta)) = p.get_mut("_meta") {
            meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
            if meta.is_empty() {
                p.remove("_meta");
            }
        }
    }
    Some(params)
}

impl Call {
    /// The next message for the client. After `Final`, the call is over.
    pub async fn next(&mut self) -> Step {
        loop {
            let Some(rx) = self.rx.as_mut() else {
                return self.end(jsonrpc::error_response(
                    self.client_id.clone(),
                    &RpcError::internal("the request is no longer running"),
                ));
            };
            let message = match self.work.alongside(rx.recv()).await {
                Some(Outgoing::Message(m)) => m,
                Some(Outgoing::Page(mut page)) => {
                    page.id = self.client_id.clone();
                    self.complete(&mut page.result.members);
                    self.done = true;
                    self.work.settle();
                    return Step::Page(page);
                }
                Some(Outgoing::Stream | Outgoing::Break) => continue,
                None => {
                    return self.end(jsonrpc::error_response(
                        self.client_id.clone(),
                        &RpcError::internal("the request was dropped"),
                    ));
                }
            };
            if message.get("method").is_none() && message.get("id") == Some(&self.inner_id) {
                let finished = self.finish(message);
                return self.end(finished);
            }
            if let Kind::Request { id, method } = classify(&message) {
                let (id, method) = (id.clone(), method.to_string());
                let params = message.get("params").cloned();
                if let Some(answer) = self.input_required(id, &method, params) {
                    return self.end(answer);
                }
                continue;
            }
            if message["method"] == "notifications/message"
                && !wire::log_wanted(
                    self.log_level.as_deref(),
                    message["params"]["level"].as_str(),
                )
            {
                continue;
            }
            return Step::Note(message);
        }
    }

    fn end(&mut self, message: Value) -> Step {
        self.done = true;
        self.work.settle();
        Step::Final(message)
    }

    /// The router's response, as the client's: its id, `resultType`, and cache hints.
    fn finish(&self, mut message: Value) -> Value {
        message["id"] = self.client_id.clone();
        if let Some(Value::Object(result)) = message.get_mut("result")
            && result.get("resultType").and_then(Value::as_str) == Some("input_required")
        {
            self.seal_upstream_round(result);
            return message;
        }
        if let Some(Value::Object(result)) = message.get_mut("result") {
            self.complete(result);
        }
        message
    }

    /// A complete result's `resultType`, and the cache hints of a cacheable one.
    fn complete(&self, result: &mut Map<String, Value>) {
        result
            .entry("resultType")
            .or_insert_with(|| json!("complete"));
        if wire::cacheable(&self.method) {
            let ttl = if self.method == "resources/read" {
                0
            } else {
                self.gw.opts.list_cache_ttl.as_millis() as u64
            };
            result.insert("ttlMs".into(), json!(ttl));
            // Everything reflow answers is filtered by the caller's policies and fetched
            // with the caller's credentials: never shareable between users.
            result.insert("cacheScope".into(), json!("private"));
        }
    }

    /// A modern upstream's own `input_required`, passed through: its `requestState` is sealed
    /// inside ours, so the retry is bound to this principal and request like any other round.
    fn seal_upstream_round(&self, result: &mut Map<String, Value>) {
        let keys = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .map(|requests| {
                requests
                    .iter()
                    .map(|(k, r)| {
                        let method = r["method"].as_str().unwrap_or_default().to_string();
                        (k.clone(), method)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let states = &self.gw.request_states;
        let mut claims = states.claims(
            &self.session.principal,
            &self.method,
            self.binding.as_ref(),
            keys,
        );
        claims.pt = true;
        claims.up = result
            .remove("requestState")
            .and_then(|v| v.as_str().map(str::to_string));
        result.insert("requestState".into(), json!(states.seal(&claims)));
    }

    /// An upstream's server→client request during this call. Answers the client with
    /// `input_required` (parking the upstream request) or with -32021 when the client did not
    /// declare the capability; None when the request is answered upstream and the call goes on.
    fn input_required(&mut self, id: Value, method: &str, params: Option<Value>) -> Option<Value> {
        let answer_upstream = |error: RpcError| {
            self.gw
                .handle_client_response(&self.session, jsonrpc::error_response(id.clone(), &error));
        };
        let Some(cap) = required_capability(method) else {
            answer_upstream(RpcError::method_not_found(method));
            return None;
        };
        if !self.session.client_supports(cap) {
            answer_upstream(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("the client did not declare the {cap} capability"),
            ));
            let error = RpcError::new(
                codes::MISSING_CLIENT_CAPABILITY,
                format!(
                    "the upstream needs {method}, which requires the client capability {cap:?}; declare it in _meta[{:?}]",
                    wire::CLIENT_CAPABILITIES_KEY
                ),
            )
            .with_data(json!({ "requiredCapabilities": { cap: {} } }));
            return Some(jsonrpc::error_response(self.client_id.clone(), &error));
        }
        let key = id
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| id.to_string());
        let states = &self.gw.request_states;
        let claims = states.claims(
            &self.session.principal,
            &self.method,
            self.binding.as_ref(),
            BTreeMap::from([(key.clone(), method.to_string())]),
        );
        let token = states.seal(&claims);
        let parked = Parked {
            session: self.session.clone(),
            rx: self.rx.take().expect("a running call has its receiver"),
            inner_id: self.inner_id.clone(),
            pending: BTreeMap::from([(key.clone(), id)]),
        };
        self.gw.park(claims.sid, parked);
        let mut request = Map::new();
        request.insert("method".into(), json!(method));
        if let Some(p) = params {
            request.insert("params".into(), p);
        }
        Some(jsonrpc::response(
            self.client_id.clone(),
            json!({
                "resultType": "input_required",
                "inputRequests": { key: request },
                "requestState": token,
            }),
        ))
    }
}

impl Drop for Call {
    /// The client went away before the answer: cancel the upstream request.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (gw, session, id) = (self.gw.clone(), self.session.clone(), self.inner_id.clone());
        tokio::spawn(async move {
            let params = json!({ "requestId": id, "reason": "the client closed the stream" });
            gw.handle_notification(&session, "notifications/cancelled", Some(params))
                .await;
            session.end();
        });
    }
}

impl Gateway {
    /// Starts a modern request in `session` (unregistered) and returns its stream.
    pub fn start_call(
        self: &Arc<Self>,
        session: Arc<Session>,
        id: Value,
        method: &str,
        params: Option<Value>,
        origin: Origin,
    ) -> Call {
        let sent = Sent::of(params.as_ref());
        let upstream = upstream_params(params);
        self.start_round(session, id, method, sent, upstream, origin)
    }

    /// Runs `upstream` (the params as sent on) in the router; `sent` (from the params as the
    /// client sent them) is what a later round's `requestState` is bound to.
    fn start_round(
        self: &Arc<Self>,
        session: Arc<Session>,
        id: Value,
        method: &str,
        sent: Sent,
        upstream: Option<Value>,
        origin: Origin,
    ) -> Call {
        let (tx, rx) = unbounded_channel();
        let work = {
            let (gw, session, id, method) = (
                self.clone(),
                session.clone(),
                id.clone(),
                method.to_string(),
            );
            let params = upstream;
            Detached::new(async move {
                gw.handle_request(&session, id, &method, params, &origin, tx)
                    .await;
            })
        };
        Call {
            gw: self.clone(),
            session,
            inner_id: id.clone(),
            client_id: id,
            method: method.to_string(),
            binding: sent.binding,
            rx: Some(rx),
            work,
            done: false,
            log_level: sent.log_level,
        }
    }

    /// A retry carrying `requestState` and `inputResponses`: resumes the parked upstream
    /// request, or, when it is not parked here (another replica, or this one restarted),
    /// re-issues the call with the answers ready for the upstream's questions.
    pub async fn resume_call(
        self: &Arc<Self>,
        session: Arc<Session>,
        id: Value,
        method: &str,
        params: Option<Value>,
        origin: Origin,
    ) -> Result<Call, RpcError> {
        let p = params.as_ref().unwrap_or(&Value::Null);
        let token = p["requestState"]
            .as_str()
            .ok_or_else(|| RpcError::invalid_params("params.requestState must be a string"))?;
        let claims = self
            .request_states
            .redeem(token, &session.principal, method, params.as_ref())
            .map_err(|e| {
                self.metrics.redemption(e.outcome());
                e.to_rpc()
            })?;
        // Usable once in the whole deployment: another replica may have redeemed it already.
        let expires = chrono::DateTime::from_timestamp_millis(claims.exp).unwrap_or_default();
        match self.store.claim_request_state(&claims.sid, expires).await {
            Ok(true) => self.metrics.redemption("accepted"),
            Ok(false) => {
                self.metrics.redemption(StateError::Replayed.outcome());
                return Err(StateError::Replayed.to_rpc());
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording a requestState's use failed");
                return Err(RpcError::internal(
                    "cannot record the use of requestState now; retry shortly",
                ));
            }
        }
        if claims.pt {
            // The upstream asked, the upstream checks the answers (it re-asks what is missing).
            let mut upstream = upstream_params(params.clone());
            if let Some(Value::Object(p)) = upstream.as_mut() {
                if let Some(responses) = params.as_ref().and_then(|p| p.get("inputResponses")) {
                    p.insert("inputResponses".into(), responses.clone());
                }
                if let Some(state) = claims.up {
                    p.insert("requestState".into(), json!(state));
                }
            }
            let sent = Sent::of(params.as_ref());
            return Ok(self.start_round(session, id, method, sent, upstream, origin));
        }
        let responses = p.get("inputResponses").cloned().unwrap_or(Value::Null);
        let mut answers = Vec::new();
        for (key, input_method) in &claims.keys {
            let answer = responses
                .get(key)
                .cloned()
                .ok_or_else(|| StateError::MissingResponse(key.clone()).to_rpc())?;
            answers.push((key.clone(), input_method.clone(), answer));
        }
        if let Some(parked) = self.request_states.take(&claims.sid) {
            for (key, _, answer) in answers {
                if let Some(pending) = parked.pending.get(&key) {
                    self.handle_client_response(
                        &parked.session,
                        jsonrpc::response(pending.clone(), answer),
                    );
                }
            }
            let sent = Sent::of(params.as_ref());
            return Ok(Call {
                gw: self.clone(),
                session: parked.session,
                inner_id: parked.inner_id,
                client_id: id,
                method: method.to_string(),
                log_level: sent.log_level,
                binding: sent.binding,
                rx: Some(parked.rx),
                // Spawned when the first round's call ended with the question.
                work: Detached::default(),
                done: false,
            });
        }
        tracing::debug!(
            method,
            "requestState not parked here: re-issuing the request upstream"
        );
        *session.prefilled.lock().unwrap() = answers.into_iter().map(|(_, m, a)| (m, a)).collect();
        Ok(self.start_call(session, id, method, params, origin))
    }

    /// Keeps a waiting upstream request until the retry or the state's expiry, whichever
    /// comes first; on expiry the upstream request is cancelled.
    fn park(self: &Arc<Self>, sid: String, parked: Parked) {
        self.request_states.park(sid.clone(), parked);
        let gw = Arc::downgrade(self);
        let ttl = self.request_states.ttl;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            let Some(gw) = gw.upgrade() else { return };
            if let Some(p) = gw.request_states.take(&sid) {
                let params = json!({ "requestId": p.inner_id, "reason": "requestState expired" });
                gw.handle_notification(&p.session, "notifications/cancelled", Some(params))
                    .await;
                p.session.end();
            }
        });
    }

    /// How many upstream requests wait for a modern client's input.
    pub fn parked_requests(&self) -> usize {
        self.request_states.parked_count()
    }

    /// `server/discover`: versions, the caller's effective capabilities (only what its visible
    /// targets offer), instructions, and `serverInfo` in `_meta`.
    pub async fn discover(self: &Arc<Self>, session: &Arc<Session>) -> Value {
        let targets = self.visible_targets(&session.principal);
        let connected = self.connect_all(session, &targets).await;
        let mut caps = Map::new();
        // The tasks extension is offered to the clients that declare it, when an upstream has it.
        let wants_tasks = wire::declares_tasks(&session.client_capabilities.lock().unwrap());
        let mut instructions = vec![format!(
            "reflow gateway. Tools and prompts are named {{target}}{}{{name}}; resource URIs {{target}}+{{uri}}.",
            self.opts.separator
        )];
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        if !names.is_empty() {
            instructions.push(format!("Targets: {}.", names.join(", ")));
        }
        super::merge_offers(&connected, &mut caps, &mut instructions);
        for (_, handle) in &connected {
            let up = &handle.conn.server().capabilities;
            if up.get("tools").is_some() {
                caps.insert("tools".into(), json!({ "listChanged": true }));
            }
            if let Some(settings) = up
                .get("extensions")
                .and_then(|e| e.get(wire::TASKS_EXTENSION))
                .filter(|_| wants_tasks)
            {
                caps.insert(
                    "extensions".into(),
                    json!({ wire::TASKS_EXTENSION: settings.clone() }),
                );
            }
        }
        let mut versions = vec![mcp::MODERN_VERSION];
        versions.extend(mcp::LEGACY_VERSIONS);
        json!({
            "supportedVersions": versions,
            "capabilities": caps,
            "instructions": instructions.join("\n"),
            "resultType": "complete",
            "ttlMs": self.opts.list_cache_ttl.as_millis() as u64,
            "cacheScope": "private",
            "_meta": { wire::SERVER_INFO_KEY: mcp::implementation_info() },
        })
    }
}
