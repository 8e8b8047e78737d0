//! A configurable real MCP upstream: an rmcp 3.11 Streamable HTTP server in process, with a
//! hand-written `ServerHandler` so each test decides the tools, the upstream page size, a delay
//! before `tools/list`, a progress-reporting tool and resources.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// What the upstream serves. Every tool in `tools` echoes
/// `{"tool": name, "args": arguments, "server": label}` as its text content.
#[derive(Clone, Debug, Default)]
pub struct UpstreamConfig {
    /// Stateless and answering plain JSON where it can (rmcp's `json_response`); otherwise
    /// the upstream keeps sessions and answers every request with an SSE stream.
    pub json_response: bool,
    /// Names the echo tools' answers carry, to tell upstreams apart.
    pub label: String,
    pub tools: Vec<String>,
    /// Tools per `tools/list` page (None: everything in one page).
    pub page_size: Option<usize>,
    /// How long `tools/list` waits before answering.
    pub list_delay: Duration,
    /// A tool that sends `progress_steps` progress notifications (each after
    /// `progress_interval`) to the request's progress token, then answers "done".
    pub progress_tool: Option<String>,
    pub progress_steps: u32,
    pub progress_interval: Duration,
    /// Resources as (uri, text); the resources capability is declared only when non-empty.
    pub resources: Vec<(String, String)>,
    /// A tool whose result is a resource link to the first resource.
    pub link_tool: Option<String>,
    /// Also serve 2026-07-28 (rmcp's default); false keeps the upstream legacy-only, so it
    /// answers reflow's `server/discover` probe with an error and gets a legacy session.
    pub modern: bool,
    /// A tool that asks the client (elicitation/create, form mode) for `{"answer": string}`
    /// and answers `{"action": …, "content": …}` as text.
    pub elicit_tool: Option<String>,
    /// A tool that adds the tool `added_tool` and sends notifications/tools/list_changed.
    pub change_tool: Option<String>,
    /// An echo tool whose `region` argument is annotated `x-mcp-header: Region` (2026-07-28
    /// clients mirror it as `Mcp-Param-Region`).
    pub param_tool: Option<String>,
    /// A tool that logs one `info` and one `error` message, then answers "logged".
    pub log_tool: Option<String>,
    /// A tool that sends notifications/resources/updated for the first resource; with it the
    /// upstream declares `resources.subscribe` and accepts subscriptions.
    pub touch_tool: Option<String>,
    /// Answer a request for an unknown session as the TypeScript SDK does after a restart (400
    /// "Bad Request: No valid session ID provided") instead of the spec's 404.
    pub lost_session_as_400: bool,
    /// A listed tool that answers every call with a JSON-RPC error (invalid params) carrying
    /// this message.
    pub failing_tool: Option<(String, String)>,
    /// A listed tool that answers with the request's `_meta`, as JSON text.
    pub meta_tool: Option<String>,
    /// Where to listen (None: 127.0.0.1 on a free port). The Kubernetes contract tests give
    /// each pod its own loopback address, as a cluster gives each pod its own IP.
    pub bind: Option<std::net::SocketAddr>,
}

impl UpstreamConfig {
    pub fn tools<S: Into<String>>(label: &str, tools: impl IntoIterator<Item = S>) -> Self {
        Self {
            label: label.to_string(),
            tools: tools.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// What the upstream saw: every `tools/call` name and `tools/list` count.
#[derive(Default, Debug)]
pub struct UpstreamLog {
    pub calls: Vec<String>,
    pub lists: usize,
    /// `Authorization`, `traceparent` and `X-Env-*` headers of every HTTP request, as received.
    pub headers: Vec<(String, String)>,
    /// The request id of every notifications/cancelled received, as JSON text.
    pub cancelled: Vec<String>,
    /// For each call of the elicit tool: whether the client session declared elicitation.
    pub elicitation_declared: Vec<bool>,
    /// Every URI a client subscribed to.
    pub subscribed: Vec<String>,
    /// Every URI a client unsubscribed from.
    pub unsubscribed: Vec<String>,
    /// Every level a client set with `logging/setLevel`, in order.
    pub levels_set: Vec<String>,
}

#[derive(Clone)]
struct Handler {
    cfg: Arc<UpstreamConfig>,
    log: Arc<Mutex<UpstreamLog>>,
    /// The level this connection's client set (`logging/setLevel`); fresh per session.
    level: Arc<Mutex<Option<String>>>,
    /// Set once `change_tool` ran: `added_tool` is listed from then on.
    changed: Arc<std::sync::atomic::AtomicBool>,
}

fn object_schema() -> Arc<JsonObject> {
    let Value::Object(m) = json!({ "type": "object" }) else {
        unreachable!()
    };
    Arc::new(m)
}

impl Handler {
    fn all_tools(&self) -> Vec<Tool> {
        let cfg = &self.cfg;
        cfg.tools
            .iter()
            .map(|n| Tool::new(n.clone(), "echoes its arguments", object_schema()))
            .chain(
                cfg.progress_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "reports progress", object_schema())),
            )
            .chain(
                cfg.link_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "links a resource", object_schema())),
            )
            .chain(
                cfg.elicit_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "asks the user", object_schema())),
            )
            .chain(
                cfg.failing_tool
                    .iter()
                    .map(|(n, _)| Tool::new(n.clone(), "always fails", object_schema())),
            )
            .chain(
                cfg.meta_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "shows its _meta", object_schema())),
            )
            .chain(
                cfg.change_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "changes the tools", object_schema())),
            )
            .chain(cfg.param_tool.iter().map(|n| {
                let Value::Object(schema) = json!({"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"}}})
                else {
                    unreachable!()
                };
                Tool::new(n.clone(), "echoes, routed by region", Arc::new(schema))
            }))
            .chain(
                cfg.touch_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "touches a resource", object_schema())),
            )
            .chain(
                cfg.log_tool
                    .iter()
                    .map(|n| Tool::new(n.clone(), "logs", object_schema())),
            )
            .chain(
                self.changed
                    .load(std::sync::atomic::Ordering::SeqCst)
                    .then(|| Tool::new("added_tool", "appeared later", object_schema())),
            )
            .collect()
    }
}

impl ServerHandler for Handler {
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(if self.cfg.modern {
            ProtocolVersion::KNOWN_VERSIONS
        } else {
            ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25)
        })
    }

    #[allow(deprecated)] // legacy-era logging, which reflow still relays
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let level = serde_json::to_value(request.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.log.lock().unwrap().levels_set.push(level.clone());
        *self.level.lock().unwrap() = Some(level);
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        let mut caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build();
        if self.cfg.log_tool.is_some() {
            caps.logging = Some(JsonObject::new());
        }
        if self.cfg.resources.is_empty() {
            caps.resources = None;
        } else if self.cfg.touch_tool.is_some()
            && let Some(r) = caps.resources.as_mut()
        {
            r.subscribe = Some(true);
        }
        ServerConfig::new(caps)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.log.lock().unwrap().lists += 1;
        if !self.cfg.list_delay.is_zero() {
            tokio::time::sleep(self.cfg.list_delay).await;
        }
        let all = self.all_tools();
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(c) => c
                .strip_prefix("up-")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n <= all.len())
                .ok_or_else(|| McpError::invalid_params(format!("bad cursor {c:?}"), None))?,
        };
        let size = self.cfg.page_size.unwrap_or(usize::MAX);
        let end = start.saturating_add(size).min(all.len());
        let mut page = ListToolsResult::with_all_items(all[start..end].to_vec());
        if end < all.len() {
            page.next_cursor = Some(format!("up-{end}"));
        }
        Ok(page)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        self.log.lock().unwrap().calls.push(name.clone());
        let cfg = &self.cfg;
        if let Some((_, message)) = cfg.failing_tool.as_ref().filter(|(n, _)| *n == name) {
            return Err(McpError::invalid_params(message.clone(), None));
        }
        if cfg.meta_tool.as_deref() == Some(name.as_str()) {
            let meta = serde_json::to_string(&context.meta).unwrap_or_default();
            return Ok(CallToolResult::success(vec![ContentBlock::text(meta)]).into());
        }
        if cfg.progress_tool.as_deref() == Some(name.as_str()) {
            let token = context.meta.get_progress_token().ok_or_else(|| {
                McpError::invalid_params("the progress tool needs _meta.progressToken", None)
            })?;
            for step in 1..=cfg.progress_steps {
                tokio::time::sleep(cfg.progress_interval).await;
                let param = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(cfg.progress_steps));
                context
                    .peer
                    .notify_progress(param)
                    .await
                    .map_err(|e| McpError::internal_error(format!("progress: {e}"), None))?;
            }
            return Ok(CallToolResult::success(vec![ContentBlock::text("done")]).into());
        }
        if cfg.elicit_tool.as_deref() == Some(name.as_str()) {
            let declared = context
                .peer
                .peer_info()
                .is_some_and(|i| i.capabilities.elicitation.is_some());
            self.log.lock().unwrap().elicitation_declared.push(declared);
            let params: rmcp::model::ElicitRequestParams = serde_json::from_value(json!({
                "mode": "form",
                "message": "What is the answer?",
                "requestedSchema": {"type": "object",
                    "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
            }))
            .expect("valid elicitation params");
            let answer =
                context.peer.create_elicitation(params).await.map_err(|e| {
                    McpError::internal_error(format!("elicitation failed: {e}"), None)
                })?;
            let text = json!({ "action": answer.action, "content": answer.content }).to_string();
            return Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into());
        }
        if cfg.touch_tool.as_deref() == Some(name.as_str()) {
            let (uri, _) = cfg
                .resources
                .first()
                .ok_or_else(|| McpError::internal_error("no resource to touch", None))?;
            let param: rmcp::model::ResourceUpdatedNotificationParam =
                serde_json::from_value(json!({ "uri": uri })).expect("valid params");
            context
                .peer
                .notify_resource_updated(param)
                .await
                .map_err(|e| McpError::internal_error(format!("notify: {e}"), None))?;
            return Ok(CallToolResult::success(vec![ContentBlock::text("touched")]).into());
        }
        if cfg.log_tool.as_deref() == Some(name.as_str()) {
            // Below the level this connection's client set: not sent, as a real server does.
            let min = self.level.lock().unwrap().clone();
            let rank = |l: &str| ["debug", "info", "error"].iter().position(|x| *x == l);
            // Logging is deprecated in 2026-07-28 but is what legacy upstreams send.
            #[allow(deprecated)]
            for (level, text) in [("info", "an info line"), ("error", "an error line")] {
                if min.as_deref().and_then(rank) > rank(level) {
                    continue;
                }
                let param: rmcp::model::LoggingMessageNotificationParam =
                    serde_json::from_value(json!({"level": level, "data": text}))
                        .expect("valid log params");
                context
                    .peer
                    .notify_logging_message(param)
                    .await
                    .map_err(|e| McpError::internal_error(format!("log: {e}"), None))?;
            }
            return Ok(CallToolResult::success(vec![ContentBlock::text("logged")]).into());
        }
        if cfg.change_tool.as_deref() == Some(name.as_str()) {
            self.changed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            context
                .peer
                .notify_tool_list_changed()
                .await
                .map_err(|e| McpError::internal_error(format!("notify: {e}"), None))?;
            return Ok(CallToolResult::success(vec![ContentBlock::text("changed")]).into());
        }
        if cfg.link_tool.as_deref() == Some(name.as_str()) {
            let (uri, _) = cfg
                .resources
                .first()
                .ok_or_else(|| McpError::internal_error("no resource to link", None))?;
            let link = ContentBlock::resource_link(Resource::new(uri.clone(), "linked"));
            return Ok(CallToolResult::success(vec![link]).into());
        }
        if !cfg.tools.contains(&name) && cfg.param_tool.as_deref() != Some(name.as_str()) {
            return Err(McpError::invalid_params(
                format!("no such tool {name:?}"),
                None,
            ));
        }
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let text = json!({ "tool": name, "args": args, "server": cfg.label }).to_string();
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }

    async fn on_cancelled(
        &self,
        notification: rmcp::model::CancelledNotificationParam,
        _context: rmcp::service::NotificationContext<RoleServer>,
    ) {
        let id = notification
            .request_id
            .map(|id| serde_json::to_string(&id).unwrap_or_default())
            .unwrap_or_default();
        self.log.lock().unwrap().cancelled.push(id);
    }

    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.log
            .lock()
            .unwrap()
            .subscribed
            .push(request.uri.clone());
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.log
            .lock()
            .unwrap()
            .unsubscribed
            .push(request.uri.clone());
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let items = self
            .cfg
            .resources
            .iter()
            .map(|(uri, _)| Resource::new(uri.clone(), uri.clone()))
            .collect();
        Ok(ListResourcesResult::with_all_items(items))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let (uri, text) = self
            .cfg
            .resources
            .iter()
            .find(|(uri, _)| *uri == request.uri)
            .ok_or_else(|| {
                McpError::resource_not_found(format!("no resource {:?}", request.uri), None)
            })?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text.clone(), uri.clone())]).into())
    }
}

pub struct UpstreamServer {
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    pub sessions: Arc<LocalSessionManager>,
    pub log: Arc<Mutex<UpstreamLog>>,
    pub handle: tokio::task::JoinHandle<()>,
}

impl UpstreamServer {
    pub async fn start(cfg: UpstreamConfig) -> Self {
        let cfg_json = cfg.json_response;
        let cfg_as_400 = cfg.lost_session_as_400;
        let cfg_bind = cfg.bind;
        let cfg = Arc::new(cfg);
        let log = Arc::new(Mutex::new(UpstreamLog::default()));
        let sessions = Arc::new(LocalSessionManager::default());
        let handler = Handler {
            cfg,
            log: log.clone(),
            level: Arc::default(),
            changed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let mut config = StreamableHttpServerConfig::default();
        config.json_response = cfg_json;
        config.legacy_session_mode = !cfg_json;
        if let Some(addr) = cfg_bind {
            // rmcp accepts only well-known loopback names by default; a "pod" has its own.
            config.allowed_hosts.push(addr.ip().to_string());
        }
        let service = StreamableHttpService::new(
            move || {
                Ok(Handler {
                    level: Arc::default(),
                    ..handler.clone()
                })
            },
            sessions.clone(),
            config,
        );
        let seen = log.clone();
        let as_400 = cfg_as_400;
        let app =
            axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn(
                    move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                        let had_session = req.headers().contains_key("mcp-session-id");
                        let res = next.run(req).await;
                        if as_400 && had_session && res.status() == axum::http::StatusCode::NOT_FOUND {
                            let body = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#;
                            return axum::response::IntoResponse::into_response((
                                axum::http::StatusCode::BAD_REQUEST,
                                [("content-type", "application/json")],
                                body,
                            ));
                        }
                        res
                    },
                ))
                .layer(axum::middleware::from_fn(
                    move |req: axum::extract::Request, next: axum::middleware::Next| {
                        let seen = seen.clone();
                        async move {
                            for (name, value) in req.headers() {
                                let n = name.as_str();
                                if n == "authorization" || n == "traceparent" || n.starts_with("x-env-") {
                                    seen.lock().unwrap().headers.push((
                                        n.to_string(),
                                        value.to_str().unwrap_or("").to_string(),
                                    ));
                                }
                            }
                            next.run(req).await
                        }
                    },
                ));
        let bind = cfg_bind.unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/mcp"),
            sessions,
            log,
            handle,
        }
    }

    /// What an upstream restart or idle timeout does: every session is gone. Returns how many.
    pub async fn expire_sessions(&self) -> usize {
        let ids: Vec<_> = self
            .sessions
            .sessions
            .read()
            .await
            .keys()
            .cloned()
            .collect();
        for id in &ids {
            self.sessions.close_session(id).await.unwrap();
        }
        ids.len()
    }

    pub async fn session_count(&self) -> usize {
        self.sessions.sessions.read().await.len()
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().calls.clone()
    }

    pub fn unsubscribed(&self) -> Vec<String> {
        self.log.lock().unwrap().unsubscribed.clone()
    }

    pub fn subscribed(&self) -> Vec<String> {
        self.log.lock().unwrap().subscribed.clone()
    }

    pub fn levels_set(&self) -> Vec<String> {
        self.log.lock().unwrap().levels_set.clone()
    }

    pub fn elicitation_declared(&self) -> Vec<bool> {
        self.log.lock().unwrap().elicitation_declared.clone()
    }

    pub fn cancelled(&self) -> Vec<String> {
        self.log.lock().unwrap().cancelled.clone()
    }
}

impl Drop for UpstreamServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
