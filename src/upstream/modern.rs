//! The modern (2026-07-28, stateless) client transport: `server/discover` as the era probe, one
//! POST per request carrying the `_meta` envelope and the `MCP-Protocol-Version` / `Mcp-Method` /
//! `Mcp-Name` / `Mcp-Param-*` headers, `subscriptions/listen` for list changes, and the bridge
//! that turns an `input_required` result into server→client requests for reflow's legacy clients.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{AbortHandle, Aborted, abortable};
use futures_util::{FutureExt, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use url::Url;

use super::{
    Core, EraCache, Handshake, HttpTransport, ServerInfo, StreamSignal, UpstreamError,
    UpstreamSpec, content_type, event_message, events, id_key, outcome, response_id, status_error,
};
use crate::mcp::{MODERN_VERSION, RpcError, codes, headers, jsonrpc};

mod bridge;
mod listen;
mod params;

use params::{encode_header_value, header_annotations, header_value, lookup, render_scalar};

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const MCP_METHOD: &str = "mcp-method";
const MCP_NAME: &str = "mcp-name";
/// A misbehaving upstream could ask for input forever; a legacy client deserves an answer.
const MAX_INPUT_ROUNDS: usize = 8;
/// Legacy servers send log messages unless told otherwise, and reflow's legacy clients expect
/// them; a modern server sends none without a level, so ask for everything until a client sets one.
const DEFAULT_LOG_LEVEL: &str = "debug";
const RELIST_MAX_PAGES: usize = 50;
const LISTEN_BACKOFF_START: Duration = Duration::from_millis(500);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where `x-mcp-header` annotations sit in one tool's inputSchema: argument path → header token.
type HeaderParams = Vec<(Vec<String>, String)>;

pub(super) struct ModernConn {
    core: Arc<Core>,
    client: reqwest::Client,
    /// The POSTs of `exchange`, when the URL is plain HTTP (else `client` makes them).
    direct: Option<Arc<super::direct::DirectPool>>,
    url: Url,
    /// The spec's headers plus Accept, Content-Type and MCP-Protocol-Version, built once.
    post_headers: HeaderMap,
    capabilities: Value,
    client_info: Value,
    /// Learned from `tools/list` results passing through this connection (tool name → params).
    header_params: Mutex<HashMap<String, HeaderParams>>,
    /// What a client set with `logging/setLevel` (a removed method upstream: held here instead).
    log_level: Mutex<String>,
    /// Requests in flight: aborting one closes its HTTP stream, which is how a modern server is
    /// told the request was cancelled.
    running: Mutex<HashMap<String, AbortHandle>>,
    /// Synthesized server→client requests (`reflow-ir-N`) waiting for the gateway's answer.
    input_waiters: Mutex<HashMap<String, oneshot::Sender<Result<Value, RpcError>>>>,
    input_ids: AtomicU64,
    /// Where this server's verdict is cached, forgotten when the server stops acting modern.
    eras: EraCache,
    /// Resource URIs clients subscribed to, served by the listen stream.
    subscribed: Mutex<std::collections::BTreeSet<String>>,
    /// Bumped when `subscribed` changes: the listen stream reopens with the new filter.
    filter_changed: tokio::sync::watch::Sender<u64>,
}

/// Why a probe did not find a modern server: fall back to the legacy era, or give up.
pub(super) enum Probe {
    Modern(Arc<ModernConn>, ServerInfo),
    Legacy(UpstreamError),
}

impl ModernConn {
    fn new(
        core: &Arc<Core>,
        spec: &UpstreamSpec,
        handshake: &Handshake,
        client: &reqwest::Client,
        eras: &EraCache,
    ) -> Arc<Self> {
        let mut post_headers = spec.headers.clone();
        post_headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        post_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        post_headers.insert(
            headers::PROTOCOL_VERSION,
            HeaderValue::from_static(MODERN_VERSION),
        );
        Arc::new(Self {
            core: core.clone(),
            client: client.clone(),
            direct: super::direct::DirectPool::for_url(&spec.url),
            url: spec.url.clone(),
            post_headers,
            capabilities: handshake.capabilities.clone(),
            client_info: handshake.client_info.clone(),
            header_params: Mutex::new(HashMap::new()),
            log_level: Mutex::new(DEFAULT_LOG_LEVEL.to_string()),
            running: Mutex::new(HashMap::new()),
            input_waiters: Mutex::new(HashMap::new()),
            input_ids: AtomicU64::new(1),
            eras: eras.clone(),
            subscribed: Mutex::new(Default::default()),
            filter_changed: tokio::sync::watch::Sender::new(0),
        })
    }

    /// `server/discover`. A legacy server answers it with an HTTP 4xx or a JSON-RPC error (or
    /// something that is no discover result): that is a verdict, not a failure. Only an upstream
    /// that cannot be reached at all fails the probe.
    pub(super) async fn probe(
        core: &Arc<Core>,
        spec: &UpstreamSpec,
        handshake: &Handshake,
        client: &reqwest::Client,
        eras: &EraCache,
    ) -> Result<Probe, UpstreamError> {
        let conn = Self::new(core, spec, handshake, client, eras);
        let id = core.next_id();
        let discover = async {
            let first = conn
                .exchange(&id, &id, "server/discover", &conn.with_meta(None))
                .await;
            match first {
                // A modern server may refuse our first choice of version and name what it
                // supports: when that includes ours after all, ask once more.
                Err(UpstreamError::Rpc(e)) if offers_modern(&e) => {
                    let id = core.next_id();
                    conn.exchange(&id, &id, "server/discover", &conn.with_meta(None))
                        .await
                }
                other => other,
            }
        };
        let result = match tokio::time::timeout(spec.timeout, discover).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e @ (UpstreamError::Connect(_) | UpstreamError::Timeout))) => return Err(e),
            Ok(Err(e)) => return Ok(Probe::Legacy(e)),
            Ok(Ok(result)) => result,
        };
        let supported = result
            .get("supportedVersions")
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|v| v == MODERN_VERSION));
        if !supported {
            return Ok(Probe::Legacy(UpstreamError::Protocol(
                "the server/discover answer does not offer 2026-07-28".into(),
            )));
        }
        let server = discover_info(result);
        Ok(Probe::Modern(conn, server))
    }

    /// A connection for a server already known to be modern (the cached verdict), no probe.
    pub(super) fn known(
        core: &Arc<Core>,
        spec: &UpstreamSpec,
        handshake: &Handshake,
        client: &reqwest::Client,
        eras: &EraCache,
    ) -> Arc<Self> {
        Self::new(core, spec, handshake, client, eras)
    }

    /// The request `_meta` envelope merged into `params` (the client's own `_meta`, e.g. its
    /// progress token, is kept).
    fn with_meta(&self, params: Option<Value>) -> Value {
        let mut params = match params {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        let meta = meta.as_object_mut().expect("made an object above");
        meta.insert(META_PROTOCOL_VERSION.into(), MODERN_VERSION.into());
        meta.insert(META_CLIENT_CAPABILITIES.into(), self.capabilities.clone());
        meta.insert(META_CLIENT_INFO.into(), self.client_info.clone());
        let level = self
            .log_level
            .lock()
            .expect("log level lock poisoned")
            .clone();
        meta.entry(META_LOG_LEVEL).or_insert(Value::String(level));
        Value::Object(params)
    }

    /// Headers that mirror the body: `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`.
    fn request_headers(&self, method: &str, params: &Value) -> Result<HeaderMap, UpstreamError> {
        let mut h = self.post_headers.clone();
        h.insert(MCP_METHOD, header_value(method)?);
        let name = match method {
            "tools/call" | "prompts/get" => params.get("name"),
            "resources/read" => params.get("uri"),
            // SEP-2663: the tasks extension's methods name their task.
            "tasks/get" | "tasks/update" | "tasks/cancel" => params.get("taskId"),
            _ => None,
        };
        if let Some(name) = name.and_then(Value::as_str) {
            h.insert(MCP_NAME, header_value(&encode_header_value(name))?);
        }
        if method == "tools/call"
            && let Some(tool) = params.get("name").and_then(Value::as_str)
            && let Some(args) = params.get("arguments")
        {
            let declared = self
                .header_params
                .lock()
                .expect("header params lock poisoned")
                .get(tool)
                .cloned()
                .unwrap_or_default();
            for (path, token) in declared {
                let Some(value) = lookup(args, &path).and_then(render_scalar) else {
                    continue;
                };
                let name = HeaderName::from_bytes(format!("mcp-param-{token}").as_bytes())
                    .map_err(|_| {
                        UpstreamError::Protocol(format!("invalid x-mcp-header token {token:?}"))
                    })?;
                h.insert(name, header_value(&encode_header_value(&value))?);
            }
        }
        Ok(h)
    }

    /// One POST with JSON-RPC id `id` and its answer (JSON, or an SSE stream whose other
    /// messages go to the gateway tagged with `related`, the id the gateway knows the request by).
    async fn exchange(
        &self,
        id: &Value,
        related: &Value,
        method: &str,
        params: &Value,
    ) -> Result<Value, UpstreamError> {
        let mut headers = self.request_headers(method, params)?;
        crate::telemetry::spans::add_trace_headers(&mut headers);
        let body = jsonrpc::request_bytes(id, method, Some(params));
        let resp = super::direct::post_message(
            self.direct.as_ref(),
            &self.client,
            &self.url,
            headers,
            body.into(),
        )
        .await?;
        let status = resp.status();
        let ct = content_type(&resp).to_owned();
        if !status.is_success() {
            // Modern servers answer protocol errors with HTTP 4xx and a JSON-RPC error body.
            if ct.starts_with("application/json") {
                let bytes = super::limits::body(resp, self.core.max_message).await?;
                if let Ok(message) = serde_json::from_slice::<Value>(&bytes)
                    && message.get("error").is_some()
                {
                    return outcome(message);
                }
                return Err(UpstreamError::Status {
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                });
            }
            return Err(status_error(resp).await);
        }
        if ct.starts_with("text/event-stream") {
            self.core.signal(related, StreamSignal::Opened).await;
            let mut stream = events(resp, self.core.max_message);
            while let Some(ev) = stream.next().await {
                let Some(message) = event_message(&ev, &self.core.name) else {
                    continue;
                };
                match response_id(&message) {
                    Some(rid) if rid == id => return outcome(message),
                    Some(_) => {
                        tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, "ignoring a response for another request")
                    }
                    None => self.core.deliver(message, Some(related.clone())).await,
                }
            }
            return Err(UpstreamError::Protocol(
                "the response stream ended before the response".into(),
            ));
        }
        if !ct.starts_with("application/json") {
            return Err(UpstreamError::Protocol(format!(
                "unexpected content type {ct:?} for a request"
            )));
        }
        let bytes = super::limits::body(resp, self.core.max_message).await?;
        let message: Value = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("the response is not JSON: {e}")))?;
        match response_id(&message) {
            Some(rid) if rid == id => outcome(message),
            _ => Err(UpstreamError::Protocol(
                "the JSON answer is not the response to the request".into(),
            )),
        }
    }

    /// A request from the gateway. It runs as its own task so that `notifications/cancelled` (or
    /// the caller giving up) can abort it, which closes its HTTP stream.
    /// With `bridge`, an `input_required` result is turned into requests to reflow's client
    /// and retried here; without it (a 2026-07-28 client), it is handed back as the upstream sent
    /// it, and the client's retry carries `inputResponses` and `requestState` in `params`.
    pub(super) async fn request(
        self: &Arc<Self>,
        id: Value,
        method: &str,
        params: Option<Value>,
        bridge: bool,
    ) -> Result<Value, UpstreamError> {
        match method {
            // Removed in 2026-07-28: the level travels in every request's `_meta` instead.
            "logging/setLevel" => {
                if let Some(level) = params
                    .as_ref()
                    .and_then(|p| p.get("level"))
                    .and_then(Value::as_str)
                {
                    *self.log_level.lock().expect("log level lock poisoned") = level.to_string();
                }
                return Ok(json!({}));
            }
            "initialize" => {
                return Err(UpstreamError::Protocol(
                    "initialize is not a 2026-07-28 method".into(),
                ));
            }
            "resources/subscribe" => return self.subscription(params.as_ref(), true),
            "resources/unsubscribe" => return self.subscription(params.as_ref(), false),
            _ => {}
        }
        let key = id_key(&id);
        // Run here, not spawned: a cancellation aborts it through the handle, and a caller
        // that stops waiting drops it with the guard. A panic stays this request's error.
        let call = AssertUnwindSafe(self.clone().call_bridged(id, method, params, bridge));
        let (call, handle) = abortable(call.catch_unwind());
        let guard = Running::new(self, key, handle);
        let result = call.await;
        drop(guard);
        match result {
            Ok(Ok(r)) => r,
            Err(Aborted) => Err(UpstreamError::Rpc(RpcError::new(
                codes::REQUEST_TIMEOUT,
                "the request was cancelled",
            ))),
            Ok(Err(_panic)) => Err(UpstreamError::Protocol(
                "the request failed unexpectedly".into(),
            )),
        }
    }

    /// Whether a `tools/call` failed on a header mismatch (-32020) for a tool whose header
    /// parameters this connection does not know.
    fn missing_header_params(
        &self,
        method: &str,
        params: &Value,
        result: &Result<Value, UpstreamError>,
    ) -> bool {
        let Err(UpstreamError::Rpc(e)) = result else {
            return false;
        };
        let Some(tool) = params.get("name").and_then(Value::as_str) else {
            return false;
        };
        method == "tools/call"
            && e.code == codes::HEADER_MISMATCH
            && !self
                .header_params
                .lock()
                .expect("header params lock poisoned")
                .contains_key(tool)
    }

    /// Reads every `tools/list` page (bounded) to learn the tools' header parameters.
    async fn relist_tools(&self) {
        let mut cursor: Option<Value> = None;
        for _ in 0..RELIST_MAX_PAGES {
            let id = self.core.next_id();
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let Ok(mut page) = self
                .exchange(&id, &id, "tools/list", &self.with_meta(Some(params)))
                .await
            else {
                return;
            };
            self.learn_header_params(&mut page);
            match page.get("nextCursor") {
                Some(c @ Value::String(_)) => cursor = Some(c.clone()),
                _ => return,
            }
        }
    }

    /// A modern server that stopped answering, or now answers like a legacy one, ends this
    /// connection: the gateway reconnects, and that probes again.
    fn after_failure(&self, result: &Result<Value, UpstreamError>) {
        if let Err(
            UpstreamError::Connect(_)
            | UpstreamError::Status {
                status: 404 | 405, ..
            },
        ) = result
        {
            tracing::info!(target: "reflow::upstream", upstream = %self.core.name, "modern upstream failed; closing so the next use probes again");
            self.eras.forget(self.url.as_str());
            self.core.close();
        }
    }

    /// The gateway's answer to a synthesized input request. Modern servers send no requests, so
    /// an answer for anything else has nowhere to go.
    pub(super) fn respond(&self, id: &Value, outcome: Result<Value, RpcError>) {
        let waiter = self
            .input_waiters
            .lock()
            .expect("input waiters lock poisoned")
            .remove(&id_key(id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(outcome);
            }
            None => {
                tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, "dropping an answer to no pending input request")
            }
        }
    }

    /// Client notifications: only cancellation means something to a stateless server, and it
    /// is said by closing the request's stream.
    pub(super) fn notify(&self, method: &str, params: Option<&Value>) {
        if method == "notifications/cancelled"
            && let Some(rid) = params.and_then(|p| p.get("requestId"))
        {
            self.cancel(rid);
        }
    }

    pub(super) fn cancel(&self, id: &Value) {
        let handle = self
            .running
            .lock()
            .expect("running lock poisoned")
            .remove(&id_key(id));
        if let Some(h) = handle {
            h.abort();
        }
    }

    /// Learns each listed tool's `x-mcp-header` parameters, and drops the tools whose
    /// annotations are invalid: a client MUST NOT call them (SEP-2243).
    fn learn_header_params(&self, result: &mut Value) {
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
            return;
        };
        let mut map = self
            .header_params
            .lock()
            .expect("header params lock poisoned");
        tools.retain(|tool| {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return true;
            };
            let declared = match tool.get("inputSchema").map(header_annotations) {
                None => Ok(Vec::new()),
                Some(r) => r,
            };
            match declared {
                Ok(declared) if declared.is_empty() => {
                    map.remove(name);
                    true
                }
                Ok(declared) => {
                    map.insert(name.to_string(), declared);
                    true
                }
                Err(why) => {
                    tracing::warn!(target: "reflow::upstream", upstream = %self.core.name, tool = name, reason = %why, "dropping a tool with an invalid x-mcp-header");
                    map.remove(name);
                    false
                }
            }
        });
    }

    /// Stops every request in flight (their tasks would otherwise outlive the connection).
    pub(super) fn closed(&self) {
        let running: Vec<AbortHandle> = self
            .running
            .lock()
            .expect("running lock poisoned")
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in running {
            h.abort();
        }
        self.input_waiters
            .lock()
            .expect("input waiters lock poisoned")
            .clear();
    }
}

/// Registers a running request and aborts it when its caller stops waiting.
struct Running<'a> {
    conn: &'a ModernConn,
    key: String,
    handle: AbortHandle,
}

impl<'a> Running<'a> {
    fn new(conn: &'a ModernConn, key: String, handle: AbortHandle) -> Self {
        conn.running
            .lock()
            .expect("running lock poisoned")
            .insert(key.clone(), handle.clone());
        Self { conn, key, handle }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.handle.abort();
        if let Ok(mut running) = self.conn.running.lock() {
            running.remove(&self.key);
        }
    }
}

/// An unsupported-version error (-32022) whose `supported` list includes 2026-07-28.
fn offers_modern(e: &RpcError) -> bool {
    e.code == codes::UNSUPPORTED_PROTOCOL_VERSION
        && e.data
            .as_ref()
            .and_then(|d| d.get("supported"))
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|v| v == MODERN_VERSION))
}

/// ServerInfo from a `server/discover` result.
fn discover_info(mut result: Value) -> ServerInfo {
    let server_info = result
        .pointer(&format!("/_meta/{}", META_SERVER_INFO.replace('/', "~1")))
        .or_else(|| result.get("serverInfo"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let obj = result.as_object_mut();
    let capabilities = obj
        .as_ref()
        .and_then(|o| o.get("capabilities"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let instructions = obj
        .and_then(|o| o.get("instructions"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    ServerInfo {
        protocol_version: MODERN_VERSION.to_string(),
        capabilities,
        server_info,
        instructions,
        transport: HttpTransport::StreamableHttp,
    }
}
