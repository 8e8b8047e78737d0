//! reflow's MCP client to one HTTP upstream, in either protocol era (legacy 2024-11-05 …
//! 2025-11-25 sessions, or stateless 2026-07-28): the public connection API, the era probe and its
//! cache, its errors and the state the transports share.
//!
//! Messages stay `serde_json::Value` (DESIGN §3.2): results are handed back as the upstream sent
//! them. Each outgoing message is serialized exactly once, into `Bytes` that a retry can reuse.

mod child;
mod core;
mod direct;
mod era;
mod error;
mod http;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod limits;
mod lines;
mod modern;
pub mod probe;
mod sse;
mod stdio;
mod unless_lost;

pub use stdio::StdioSpec;

pub use era::{Era, EraCache};
pub use error::UpstreamError;

use self::core::{Core, Pending, id_key, outcome, response_id};
use self::unless_lost::UnlessLost;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::mcp::jsonrpc::{self, RpcError};

/// How many server-initiated messages may wait for the gateway before stream readers pause.
const INBOUND_CAPACITY: usize = 1024;
/// Bodies of failed HTTP answers are cut here: enough to diagnose, never a flood in logs.
const STATUS_BODY_LIMIT: usize = 500;

/// Which HTTP transport to speak to an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpTransport {
    /// Probe the era: POST `server/discover` (2026-07-28), else `initialize` (Streamable HTTP),
    /// and on 400/404/405 fall back to legacy HTTP+SSE at the same URL.
    Auto,
    /// Streamable HTTP in the legacy era (2025-03-26 … 2025-11-25 sessions), no era probe. A
    /// 2026-07-28 server is spoken to with `Auto`; its `ServerInfo` says `StreamableHttp` too.
    StreamableHttp,
    /// The legacy HTTP+SSE transport (2024-11-05).
    Sse,
    /// Not HTTP: a local child process (reported in `ServerInfo`, never asked for in a spec).
    Stdio,
}

impl HttpTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpTransport::Auto => "auto",
            HttpTransport::StreamableHttp => "streamable-http",
            HttpTransport::Sse => "sse",
            HttpTransport::Stdio => "stdio",
        }
    }
}

impl fmt::Display for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and how to reach one upstream.
#[derive(Clone)]
pub struct UpstreamSpec {
    pub name: String,
    pub url: url::Url,
    pub transport: HttpTransport,
    /// Sent with every request (credentials etc.); never logged.
    pub headers: HeaderMap,
    /// Per request.
    pub timeout: Duration,
    /// The largest message taken from it (`gateway.max_upstream_message`).
    pub max_message: usize,
}

// By hand so that header values (credentials) can never reach a log line through `{:?}`.
impl fmt::Debug for UpstreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("UpstreamSpec")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("transport", &self.transport)
            .field("headers", &header_names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What reflow tells the upstream about itself in `initialize`.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub protocol_version: String,
    pub capabilities: Value,
    pub client_info: Value,
}

impl Handshake {
    fn params(&self) -> Value {
        json!({
            "protocolVersion": self.protocol_version,
            "capabilities": self.capabilities,
            "clientInfo": self.client_info,
        })
    }
}

/// What the upstream said about itself (its `initialize` or `server/discover` result).
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub protocol_version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
    /// The transport in use: never `Auto`.
    pub transport: HttpTransport,
}

impl ServerInfo {
    /// The protocol era this upstream speaks (from the negotiated version).
    pub fn era(&self) -> Era {
        if self.protocol_version.as_str() == crate::mcp::MODERN_VERSION {
            Era::Modern
        } else {
            Era::Legacy
        }
    }
}

/// How the upstream answers one request, so the gateway can answer its client the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSignal {
    /// The answer comes as an SSE stream rather than a JSON body.
    Opened,
    /// The upstream closed the stream before the response (it expects a resume after `retry`).
    Broken { retry: Duration },
}

/// A message from the upstream that is not the response to one of our requests, or a signal
/// about a request's response stream (then `message` is null).
#[derive(Clone, Debug)]
pub struct Inbound {
    pub message: Value,
    /// The upstream request id it arrived with (a POST's SSE stream), if any.
    pub related: Option<Value>,
    pub signal: Option<StreamSignal>,
}

/// A reqwest failure as text, without its URL (a query string may hold a credential).
fn describe(err: reqwest::Error) -> String {
    use std::error::Error as _;
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn send_error(err: reqwest::Error) -> UpstreamError {
    if err.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Connect(describe(err))
    }
}

/// A non-2xx answer as an error, with the start of its body.
async fn status_error(resp: reqwest::Response) -> UpstreamError {
    let status = resp.status().as_u16();
    let mut body = resp.text().await.unwrap_or_default();
    if let Some((cut, _)) = body.char_indices().nth(STATUS_BODY_LIMIT) {
        body.truncate(cut);
    }
    UpstreamError::Status { status, body }
}

fn content_type(resp: &reqwest::Response) -> &str {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// SSE events of a response body. Stream errors end the stream: to every caller a broken
/// stream and a closed one mean the same thing (resume, or give up).
type Events = std::pin::Pin<Box<dyn Stream<Item = eventsource_stream::Event> + Send>>;

fn events(resp: reqwest::Response, max: usize) -> Events {
    use eventsource_stream::Eventsource;
    Box::pin(
        limits::bounded_stream(resp, max)
            .eventsource()
            .take_while(|ev| std::future::ready(ev.is_ok()))
            .filter_map(|ev| std::future::ready(ev.ok())),
    )
}

/// The JSON-RPC message an SSE event carries, if any (priming events carry none).
fn event_message(ev: &eventsource_stream::Event, name: &str) -> Option<Value> {
    if ev.event != "message" || ev.data.trim().is_empty() {
        return None;
    }
    match serde_json::from_str(&ev.data) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(target: "reflow::upstream", upstream = name, error = %e, "ignoring an SSE event that is not JSON");
            None
        }
    }
}

fn serialize(message: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(message).expect("a serde_json::Value always serializes"))
}

/// Reads the parts of an `initialize` result the gateway needs; the rest stays as sent.
fn server_info(mut result: Value, transport: HttpTransport) -> Result<ServerInfo, UpstreamError> {
    let obj = result
        .as_object_mut()
        .ok_or_else(|| UpstreamError::Protocol("the initialize result is not an object".into()))?;
    let protocol_version = match obj.remove("protocolVersion") {
        Some(Value::String(v)) => v,
        _ => {
            return Err(UpstreamError::Protocol(
                "the initialize result has no protocolVersion".into(),
            ));
        }
    };
    if !crate::mcp::LEGACY_VERSIONS.contains(&protocol_version.as_str()) {
        return Err(UpstreamError::Protocol(format!(
            "unsupported protocol version {protocol_version:?}"
        )));
    }
    Ok(ServerInfo {
        protocol_version,
        capabilities: obj.remove("capabilities").unwrap_or_else(|| json!({})),
        server_info: obj.remove("serverInfo").unwrap_or_else(|| json!({})),
        instructions: obj
            .remove("instructions")
            .and_then(|v| v.as_str().map(str::to_owned)),
        transport,
    })
}

#[derive(Clone)]
enum Transport {
    Http(Arc<http::HttpConn>),
    Sse(Arc<sse::SseConn>),
    /// 2026-07-28: requests, notifications and responses take their own paths (see the
    /// `UpstreamConnection` methods); this arm is never asked to post raw bytes.
    Modern(Arc<modern::ModernConn>),
    Stdio(Arc<stdio::StdioConn>),
}

impl Transport {
    async fn call(&self, id: &Value, body: Bytes) -> Result<Value, UpstreamError> {
        match self {
            Transport::Http(h) => h.call(id, body).await,
            Transport::Sse(s) => s.call(id, body).await,
            Transport::Modern(_) => Err(UpstreamError::Protocol(
                "a 2026-07-28 upstream takes no pre-serialized request".into(),
            )),
            Transport::Stdio(p) => p.call(id, body).await,
        }
    }

    /// Posts a notification or a response.
    async fn send(&self, body: Bytes) -> Result<(), UpstreamError> {
        match self {
            Transport::Http(h) => h.send(body).await,
            Transport::Sse(s) => s.send(body).await,
            // Stateless servers take no client notifications or responses over POST.
            Transport::Modern(_) => Ok(()),
            Transport::Stdio(p) => p.send(body).await,
        }
    }
}

/// One live MCP session with one upstream, shared as `Arc<UpstreamConnection>`.
pub struct UpstreamConnection {
    core: Arc<Core>,
    server: ServerInfo,
    timeout: Duration,
    transport: Transport,
    /// Set (with why) by `lose`: requests in flight fail at once instead of waiting for a
    /// server that is gone (a deleted pod's TCP peer may never answer or reset).
    lost: tokio::sync::watch::Sender<Option<String>>,
}

impl UpstreamConnection {
    /// Initializes the session (`initialize` + `notifications/initialized`). With Streamable HTTP
    /// it also opens the GET stream when the server offers one. Messages the upstream sends on its
    /// own arrive on the returned receiver.
    pub async fn connect(
        spec: UpstreamSpec,
        handshake: Handshake,
        http: reqwest::Client,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Inbound>), UpstreamError> {
        Self::connect_cached(spec, handshake, http, &EraCache::default()).await
    }

    /// Like `connect`, with the era verdict for the URL taken from (and recorded in) `eras`:
    /// the first connection probes `server/discover`, then `initialize`, then legacy SSE; later
    /// ones go straight to the era found. A connection that fails on a cached verdict probes anew.
    pub async fn connect_cached(
        spec: UpstreamSpec,
        handshake: Handshake,
        http: reqwest::Client,
        eras: &EraCache,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Inbound>), UpstreamError> {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let core = Core::new(spec.name.clone(), tx, spec.max_message);
        let (transport, server) = era::open(&core, &spec, &handshake, &http, eras).await?;
        let conn = Arc::new(Self {
            core,
            server,
            timeout: spec.timeout,
            transport,
            lost: tokio::sync::watch::Sender::new(None),
        });
        match &conn.transport {
            Transport::Http(h) => h.start_get_stream().await,
            Transport::Modern(m) => m.start_listen(&conn.server),
            Transport::Sse(_) | Transport::Stdio(_) => {}
        }
        Ok((conn, rx))
    }

    /// Starts a stdio upstream's process and initializes it (see `stdio.rs`).
    pub async fn connect_stdio(
        spec: StdioSpec,
        handshake: Handshake,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Inbound>), UpstreamError> {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let core = Core::new(spec.name.clone(), tx, spec.max_message);
        let (conn, server) = stdio::StdioConn::spawn(&core, &spec, &handshake).await?;
        let conn = Arc::new(Self {
            core,
            server,
            timeout: spec.timeout,
            transport: Transport::Stdio(conn),
            lost: tokio::sync::watch::Sender::new(None),
        });
        Ok((conn, rx))
    }

    /// The process id of a stdio upstream's child.
    pub fn pid(&self) -> Option<u32> {
        match &self.transport {
            Transport::Stdio(p) => Some(p.pid()),
            _ => None,
        }
    }

    /// How a stdio upstream's process ended, once it has (exit code or signal).
    pub fn exit_status(&self) -> Option<String> {
        match &self.transport {
            Transport::Stdio(p) => p.exit_status().map(str::to_owned),
            _ => None,
        }
    }

    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// A fresh upstream request id (integers, unique for this connection).
    pub fn next_id(&self) -> Value {
        self.core.next_id()
    }

    /// Sends a request and waits for its result. On timeout the upstream is told
    /// (`notifications/cancelled`) and the caller gets `Timeout`.
    pub async fn request_with_id(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        if let Some(why) = self.lost.borrow().clone() {
            return Err(UpstreamError::Gone(why));
        }
        if self.core.is_closed() {
            return Err(match self.exit_status() {
                Some(status) => UpstreamError::Exited(status),
                None => UpstreamError::Closed,
            });
        }
        // The transports' futures are boxed (here and in `request_passthrough`): they are
        // several KB each, and inline they would size every future that awaits a request —
        // the whole request's, which is moved (copied) at each level on its way in.
        if let Transport::Modern(m) = &self.transport {
            // Giving up drops the request, which closes its stream: that is the cancellation.
            return self
                .unless_lost(tokio::time::timeout(
                    timeout,
                    m.request(id, method, params, true).boxed(),
                ))
                .await
                .and_then(|r| r.unwrap_or(Err(UpstreamError::Timeout)));
        }
        let body = serialize(&jsonrpc::request(id.clone(), method, params));
        let call = tokio::time::timeout(timeout, self.transport.call(&id, body).boxed());
        match self.unless_lost(call).await? {
            Ok(outcome) => outcome,
            Err(_) => {
                self.cancel_in_background(id);
                Err(UpstreamError::Timeout)
            }
        }
    }

    /// Runs `fut` unless the connection is lost first (see `lose`).
    fn unless_lost<F: Future>(
        &self,
        fut: F,
    ) -> UnlessLost<F, impl Future<Output = UpstreamError> + use<F>> {
        let mut lost = self.lost.subscribe();
        UnlessLost {
            fut,
            lost: async move {
                let why = lost.wait_for(Option::is_some).await;
                UpstreamError::Gone(
                    why.ok()
                        .and_then(|w| w.clone())
                        .unwrap_or_else(|| "closed".into()),
                )
            },
        }
    }

    /// What serves this upstream is gone (its pod was deleted or ended): every request in
    /// flight fails now with `Gone(why)`, and the connection is closed.
    pub async fn lose(&self, why: &str) {
        self.lost.send_replace(Some(why.to_string()));
        self.close().await;
    }

    /// For a 2026-07-28 client: like `request_with_id`, except that a modern upstream's
    /// `input_required` result comes back unchanged (no bridge to server→client requests), and
    /// `params` may carry the client's retry (`inputResponses`, `requestState`) to pass upstream.
    /// With a legacy upstream it is `request_with_id`.
    pub async fn request_passthrough(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        match &self.transport {
            Transport::Modern(m) if !self.core.is_closed() => self
                .unless_lost(tokio::time::timeout(
                    timeout,
                    m.request(id, method, params, false).boxed(),
                ))
                .await
                .and_then(|r| r.unwrap_or(Err(UpstreamError::Timeout))),
            _ => self.request_with_id(id, method, params, timeout).await,
        }
    }

    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, UpstreamError> {
        self.request_with_id(self.next_id(), method, params, self.timeout)
            .await
    }

    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), UpstreamError> {
        if let Transport::Modern(m) = &self.transport {
            m.notify(method, params.as_ref());
            return Ok(());
        }
        self.send(serialize(&jsonrpc::notification(method, params)))
            .await
    }

    /// Answers a request the upstream sent us (sampling, elicitation, roots, ping).
    pub async fn respond(
        &self,
        id: Value,
        outcome: Result<Value, RpcError>,
    ) -> Result<(), UpstreamError> {
        if let Transport::Modern(m) = &self.transport {
            // Only the input-required bridge asks reflow's clients anything on its behalf.
            m.respond(&id, outcome);
            return Ok(());
        }
        let message = match outcome {
            Ok(result) => jsonrpc::response(id, result),
            Err(e) => jsonrpc::error_response(id, &e),
        };
        self.send(serialize(&message)).await
    }

    /// Ends the session: DELETE with Streamable HTTP, and every stream is dropped.
    pub async fn close(&self) {
        if self.core.is_closed() {
            return;
        }
        self.core.close();
        match &self.transport {
            Transport::Http(h) => h.terminate().await,
            Transport::Sse(s) => s.closed(),
            Transport::Modern(m) => m.closed(),
            // Returns once the process is reaped.
            Transport::Stdio(p) => p.shutdown().await,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// How many inbound items this connection has handed over so far. A response returns only
    /// after the messages that preceded it were handed over, so a consumer that has processed
    /// this many items has seen everything that came before the response.
    pub fn delivered(&self) -> u64 {
        self.core.delivered.load(Ordering::Acquire)
    }

    async fn send(&self, body: Bytes) -> Result<(), UpstreamError> {
        if self.core.is_closed() {
            return Err(UpstreamError::Closed);
        }
        tokio::time::timeout(self.timeout, self.transport.send(body))
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// Tells the upstream to stop working on a request we gave up on; nobody waits for that.
    fn cancel_in_background(&self, id: Value) {
        if let Transport::Modern(m) = &self.transport {
            m.cancel(&id);
            return;
        }
        let body = serialize(&jsonrpc::notification(
            "notifications/cancelled",
            Some(json!({ "requestId": id, "reason": "timed out" })),
        ));
        let (transport, timeout, name) =
            (self.transport.clone(), self.timeout, self.core.name.clone());
        tokio::spawn(async move {
            let sent = tokio::time::timeout(timeout, transport.send(body)).await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::debug!(target: "reflow::upstream", upstream = %name, "could not send notifications/cancelled");
            }
        });
    }
}

impl Drop for UpstreamConnection {
    // Background stream readers hold the transport, not this handle: stop them when the last
    // user lets go, even without `close()`.
    fn drop(&mut self) {
        self.core.close();
    }
}
