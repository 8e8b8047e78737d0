//! A small raw-HTTP MCP client (Streamable HTTP, legacy era) for wire-level tests: it shows
//! statuses, content types, SSE event ids and every message, and hides nothing.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::server::TestServer;

pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// One SSE event: its id and its data (JSON, or Null when empty).
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: String,
    pub data: Value,
}

/// The answer to one POST: the final response and everything that came before it.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub sse: bool,
    /// SSE events before the response (priming event and notifications); empty for JSON.
    pub events: Vec<SseEvent>,
    /// The event id of the response (SSE only).
    pub response_id: Option<String>,
    pub response: Value,
    /// The raw SSE text (SSE only).
    pub raw: String,
}

type Body = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

/// An open SSE response, read event by event.
pub struct EventStream {
    pub status: u16,
    pub content_type: String,
    /// The bytes received so far, as sent: events without data (priming) are visible only here.
    raw: Arc<Mutex<Vec<u8>>>,
    inner: Body,
}

impl EventStream {
    fn new(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let tap = raw.clone();
        let inner = res
            .bytes_stream()
            .inspect(move |chunk| {
                if let Ok(bytes) = chunk {
                    tap.lock().unwrap().extend_from_slice(bytes);
                }
            })
            .eventsource()
            .map(|r| r.map_err(|e| e.to_string()));
        Self {
            status,
            content_type,
            raw,
            inner: Box::pin(inner),
        }
    }

    /// The raw SSE text received so far.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }

    /// The next event, or None when the stream ended; panics after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        let next = tokio::time::timeout(wait, self.inner.next())
            .await
            .unwrap_or_else(|_| panic!("no SSE event within {wait:?}"))?;
        let event = next.unwrap_or_else(|e| panic!("SSE stream broke: {e}"));
        let data = if event.data.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&event.data)
                .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {:?}", event.data))
        };
        Some(SseEvent { id: event.id, data })
    }

    /// The next event, or None if none comes within `wait` (or the stream ended).
    pub async fn try_next(&mut self, wait: Duration) -> Option<SseEvent> {
        match tokio::time::timeout(wait, self.inner.next()).await {
            Ok(Some(Ok(event))) => Some(SseEvent {
                id: event.id,
                data: serde_json::from_str(&event.data).unwrap_or(Value::Null),
            }),
            _ => None,
        }
    }

    /// Reads until the JSON-RPC response with `id`; returns (events before it, response event).
    pub async fn until_response(
        &mut self,
        id: &Value,
        wait: Duration,
    ) -> (Vec<SseEvent>, SseEvent) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .next_within(left)
                .await
                .unwrap_or_else(|| panic!("stream ended before the response; saw {before:?}"));
            if is_response_to(&event.data, id) {
                return (before, event);
            }
            before.push(event);
        }
    }
}

pub fn is_response_to(message: &Value, id: &Value) -> bool {
    message.get("method").is_none() && message.get("id") == Some(id)
}

pub struct McpClient {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub session: Option<String>,
    next_id: AtomicI64,
}

impl McpClient {
    pub fn new(server: &TestServer, token: &str) -> Self {
        Self {
            base: server.base.clone(),
            http: reqwest::Client::new(),
            token: token.to_string(),
            session: None,
            next_id: AtomicI64::new(1),
        }
    }

    /// A client of the gateway at `base` (e.g. a `reflow serve` process the test spawned).
    pub fn at(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: token.to_string(),
            session: None,
            next_id: AtomicI64::new(1),
        }
    }

    /// A client presenting `session` as its own (to test that sessions are bound to users).
    pub fn with_session(server: &TestServer, token: &str, session: &str) -> Self {
        let mut c = Self::new(server, token);
        c.session = Some(session.to_string());
        c
    }

    pub fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn next_id(&self) -> Value {
        json!(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Auth, Accept, Content-Type and the session (when known); `extra` overrides any of them.
    fn headers(&self, extra: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).unwrap(),
        );
        h.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Some(s) = &self.session {
            h.insert("mcp-session-id", HeaderValue::from_str(s).unwrap());
            h.insert(
                "mcp-protocol-version",
                HeaderValue::from_static(PROTOCOL_VERSION),
            );
        }
        for (k, v) in extra {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// `initialize` then `notifications/initialized`; returns the session id.
    pub async fn initialize(&mut self) -> String {
        self.initialize_with(json!({})).await
    }

    /// `initialize` declaring `capabilities` (e.g. `{"elicitation": {}}`).
    pub async fn initialize_with(&mut self, capabilities: Value) -> String {
        let body = json!({
            "jsonrpc": "2.0", "id": self.next_id(), "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": capabilities,
                "clientInfo": { "name": "reflow-it", "version": "0" }
            }
        });
        let res = self
            .http
            .post(self.url())
            .headers(self.headers(&[]))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "initialize: {text}");
        let reply: Value = serde_json::from_str(&text).expect("initialize answers JSON");
        assert!(reply.get("result").is_some(), "initialize failed: {reply}");
        let session = session.expect("initialize returns Mcp-Session-Id");
        self.session = Some(session.clone());
        let (status, body) = self
            .raw_post(
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
                &[],
            )
            .await;
        assert_eq!(status, 202, "notifications/initialized: {body}");
        session
    }

    /// POSTs one request and reads its answer, JSON or SSE.
    pub async fn exchange(&self, method: &str, params: Value) -> Exchange {
        let id = self.next_id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.exchange_raw(&id, body).await
    }

    pub async fn exchange_raw(&self, id: &Value, body: Value) -> Exchange {
        self.exchange_with(id, body, &[]).await
    }

    /// Like `exchange_raw` with extra headers (they override the defaults).
    pub async fn exchange_with(&self, id: &Value, body: Value, extra: &[(&str, &str)]) -> Exchange {
        let res = self.post_body(body.to_string(), extra).await;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if content_type.starts_with("text/event-stream") {
            let mut stream = EventStream::new(res);
            let (events, last) = stream.until_response(id, Duration::from_secs(30)).await;
            return Exchange {
                status,
                sse: true,
                events,
                response_id: Some(last.id),
                response: last.data,
                raw: stream.raw(),
            };
        }
        let text = res.text().await.unwrap();
        let response = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} {content_type:?} is not JSON ({e}): {text}"));
        Exchange {
            status,
            sse: false,
            events: Vec::new(),
            response_id: None,
            response,
            raw: String::new(),
        }
    }

    /// The final JSON-RPC response to one request (asserting HTTP 200).
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let ex = self.exchange(method, params).await;
        assert_eq!(ex.status, 200, "{method}: {}", ex.response);
        ex.response
    }

    /// The `result` of one request, panicking with the error otherwise.
    pub async fn result(&self, method: &str, params: Value) -> Value {
        let response = self.request(method, params).await;
        response
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {response}"))
    }

    async fn post_body(
        &self,
        body: impl Into<reqwest::Body>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url())
            .headers(self.headers(extra))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as is; returns the status and the body as JSON (a string if it is not JSON,
    /// Null if empty).
    pub async fn raw_post(
        &self,
        body: impl Into<reqwest::Body>,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let res = self.post_body(body, extra).await;
        into_parts(res).await
    }

    /// Like `raw_post` without the Mcp-Session-Id header.
    pub async fn raw_post_without_session(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut headers = self.headers(&[]);
        headers.remove("mcp-session-id");
        let res = self
            .http
            .post(self.url())
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        into_parts(res).await
    }

    /// POSTs a request and hands back the open response stream (to read part of it and drop it).
    pub async fn post_stream(&self, body: Value) -> EventStream {
        self.post_stream_with(body, &[]).await
    }

    pub async fn post_stream_with(&self, body: Value, extra: &[(&str, &str)]) -> EventStream {
        let res = self.post_body(body.to_string(), extra).await;
        EventStream::new(res)
    }

    /// GET /mcp: the session's standalone stream, or a resumed one with `Last-Event-ID`.
    pub async fn get_stream(&self, last_event_id: Option<&str>) -> EventStream {
        let mut extra = vec![("accept", "text/event-stream")];
        if let Some(id) = last_event_id {
            extra.push(("last-event-id", id));
        }
        let mut headers = self.headers(&extra);
        headers.remove("content-type");
        let res = self
            .http
            .get(self.url())
            .headers(headers)
            .send()
            .await
            .unwrap();
        EventStream::new(res)
    }

    /// DELETE /mcp; returns the status.
    pub async fn delete(&self) -> u16 {
        let mut headers = self.headers(&[]);
        headers.remove("content-type");
        self.http
            .delete(self.url())
            .headers(headers)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

async fn into_parts(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

pub const MODERN_VERSION: &str = "2026-07-28";

/// A raw 2026-07-28 client: no session; each request carries the `_meta` envelope and the
/// `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers mirroring it.
pub struct ModernClient {
    pub inner: McpClient,
    /// What `_meta` declares as the client's capabilities.
    pub capabilities: Value,
}

impl ModernClient {
    pub fn new(server: &TestServer, token: &str) -> Self {
        Self {
            inner: McpClient::new(server, token),
            capabilities: json!({}),
        }
    }

    pub fn with_capabilities(mut self, capabilities: Value) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// A request body with the envelope merged into `params._meta`; returns (id, body).
    pub fn body(&self, method: &str, mut params: Value) -> (Value, Value) {
        let id = self.inner.next_id();
        if !params.is_object() {
            params = json!({});
        }
        let meta = params
            .as_object_mut()
            .unwrap()
            .entry("_meta")
            .or_insert_with(|| json!({}));
        meta["io.modelcontextprotocol/protocolVersion"] = json!(MODERN_VERSION);
        meta["io.modelcontextprotocol/clientCapabilities"] = self.capabilities.clone();
        meta["io.modelcontextprotocol/clientInfo"] = json!({"name": "reflow-it", "version": "0"});
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        (id, body)
    }

    /// The headers a conforming client sends for `body`.
    pub fn headers_for(body: &Value) -> Vec<(String, String)> {
        let method = body["method"].as_str().unwrap_or_default();
        let mut h = vec![
            (
                "mcp-protocol-version".to_string(),
                MODERN_VERSION.to_string(),
            ),
            ("mcp-method".to_string(), method.to_string()),
        ];
        let field = match method {
            "tools/call" | "prompts/get" => Some("name"),
            "resources/read" => Some("uri"),
            _ => None,
        };
        if let Some(v) = field.and_then(|f| body["params"][f].as_str()) {
            h.push(("mcp-name".to_string(), v.to_string()));
        }
        h
    }

    /// Sends `body` with exactly `headers` added (besides auth, Accept, Content-Type).
    pub async fn send(&self, id: &Value, body: Value, headers: &[(String, String)]) -> Exchange {
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.inner.exchange_with(id, body, &extra).await
    }

    /// One well-formed request.
    pub async fn exchange(&self, method: &str, params: Value) -> Exchange {
        let (id, body) = self.body(method, params);
        let headers = Self::headers_for(&body);
        self.send(&id, body, &headers).await
    }

    /// The result of one well-formed request, asserting HTTP 200 and no error.
    pub async fn result(&self, method: &str, params: Value) -> Value {
        let ex = self.exchange(method, params).await;
        assert_eq!(ex.status, 200, "{method}: {}", ex.response);
        ex.response
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {}", ex.response))
    }

    /// A well-formed request whose response stream is handed back open.
    pub async fn stream(&self, method: &str, params: Value) -> (Value, EventStream) {
        let (id, body) = self.body(method, params);
        let headers = Self::headers_for(&body);
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (id, self.inner.post_stream_with(body, &extra).await)
    }
}
