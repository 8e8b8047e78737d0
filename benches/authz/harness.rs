//! What parts B and C run against: an in-process rmcp upstream with 100 tools, reflow in
//! process on port 0, and a legacy-era MCP client that times its requests.

use super::*;

// ---------------------------------------------------------------- the upstream

/// 100 tools with a description and a small input schema, all in one `tools/list` page.
#[derive(Clone)]
pub(crate) struct ManyTools {
    pub(crate) tools: Arc<Vec<Tool>>,
}

impl ServerHandler for ManyTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let text = format!("{} done", request.name);
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

pub(crate) fn many_tools() -> Vec<Tool> {
    tool_names()
        .into_iter()
        .map(|name| {
            let Value::Object(schema) = json!({
                "type": "object",
                "properties": {
                    "id": { "type": "string", "description": "the item's id" },
                    "limit": { "type": "integer", "minimum": 1 }
                },
                "required": ["id"]
            }) else {
                unreachable!()
            };
            let description = format!("Does {} on the backing system", name.replace('_', " "));
            Tool::new(name, description, Arc::<JsonObject>::new(schema))
        })
        .collect()
}

/// One rmcp Streamable HTTP server, stateless and answering plain JSON; reflow registers it
/// 50 times under different names, each its own upstream connection and list cache.
pub(crate) async fn start_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let handler = ManyTools {
        tools: Arc::new(many_tools()),
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/mcp"), server)
}

// ---------------------------------------------------------------- reflow

pub(crate) struct Gateway {
    pub(crate) base: String,
    pub(crate) admin: String,
    pub(crate) http: reqwest::Client,
    pub(crate) shutdown: Option<oneshot::Sender<()>>,
    pub(crate) task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub(crate) _dir: tempfile::TempDir,
}

/// reflow in process on 127.0.0.1:0 with a fresh SQLite database and logging off; registers
/// the first (admin) account.
pub(crate) async fn start_gateway() -> Result<Gateway, String> {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: dir.path().join("data"),
        ..Settings::default()
    };
    settings.database.url = Some(Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("reflow.db").display()
    )));
    settings.server.port = 0;
    settings.auth.registration = Some(reflow::config::Registration::Open);
    settings.gateway.page_size = PAGE_SIZE;
    let app = App::build(settings)
        .await
        .map_err(|e| format!("reflow builds: {e:#}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(listener, async {
        let _ = rx.await;
    }));
    let mut gw = Gateway {
        base,
        admin: String::new(),
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        task,
        _dir: dir,
    };
    let reg = gw.register("bench-admin@example.com").await?;
    if reg["user"]["role"] != "admin" {
        return Err(format!("the first account should be admin: {reg}"));
    }
    gw.admin = reg["token"].as_str().unwrap_or_default().to_string();
    Ok(gw)
}

impl Gateway {
    pub(crate) async fn register(&self, email: &str) -> Result<Value, String> {
        let body = json!({ "email": email, "password": "bench-password-1" });
        self.call(reqwest::Method::POST, "/api/auth/register", None, body)
            .await
    }

    /// One admin (or anonymous) API call; the JSON answer, or the error with its body.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{method} {path}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn admin_post(&self, path: &str, body: Value) -> Result<Value, String> {
        let token = self.admin.clone();
        self.call(reqwest::Method::POST, path, Some(&token), body)
            .await
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(other) => eprintln!("reflow stopped abnormally: {other:?}"),
            Err(_) => {
                eprintln!("reflow did not stop within 10s; aborting it");
                self.task.abort();
            }
        }
    }
}

// ---------------------------------------------------------------- the client

/// One MCP client (legacy era) with its own keep-alive HTTP/1.1 connection and session.
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) next_id: u64,
}

/// The JSON-RPC message of a response body, JSON or SSE (the last `data:` line).
pub(crate) fn message(body: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let json = if text.trim_start().starts_with('{') {
        text
    } else {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .next_back()
            .ok_or_else(|| format!("no JSON in answer: {text:.200}"))?
    };
    serde_json::from_str(json.trim()).map_err(|e| format!("{e}: {text:.200}"))
}

impl Client {
    pub(crate) async fn connect(url: &str, token: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let mut client = Self {
            http,
            url: url.to_string(),
            headers,
            next_id: 1,
        };
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "reflow-authz-bench", "version": "0" },
            }
        });
        let res = client
            .http
            .post(&client.url)
            .headers(client.headers.clone())
            .body(init.to_string())
            .send()
            .await
            .map_err(|e| format!("initialize: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("initialize: HTTP {}", res.status()));
        }
        let session = res.headers().get("mcp-session-id").cloned();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        let msg = message(&body)?;
        if msg.get("result").is_none() {
            return Err(format!("initialize: {msg}"));
        }
        if let Some(s) = session {
            client.headers.insert("mcp-session-id", s);
        }
        client.headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static(PROTOCOL_VERSION),
        );
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let res = client
            .http
            .post(&client.url)
            .headers(client.headers.clone())
            .body(note.to_string())
            .send()
            .await
            .map_err(|e| format!("notifications/initialized: {e}"))?;
        let _ = res.bytes().await;
        Ok(client)
    }

    /// The whole `tools/list`, following `nextCursor` to the end. Latency is the sum of the
    /// pages' request → last byte times (the client's JSON parsing between pages excluded).
    pub(crate) async fn tools_list(&mut self) -> Result<ListRun, String> {
        let mut run = ListRun::default();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let (status, bytes, took) = self.request("tools/list", params).await?;
            run.took += took;
            run.pages += 1;
            run.bytes += bytes.len();
            if !status.is_success() {
                return Err(format!(
                    "tools/list: HTTP {status}: {:.300}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
            let msg = message(&bytes)?;
            let result = msg
                .get("result")
                .ok_or_else(|| format!("tools/list: {msg:.300}"))?;
            let tools = result["tools"].as_array().map_or(&[][..], Vec::as_slice);
            run.items += tools.len();
            if let Some(name) = tools.last().and_then(|t| t["name"].as_str()) {
                run.last = Some(name.to_string());
            }
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(c) if run.pages < 1000 => cursor = Some(c.to_string()),
                Some(_) => return Err("tools/list: more than 1000 pages".into()),
                None => return Ok(run),
            }
        }
    }
}

impl Client {
    /// POSTs one request of `method`; its status, body, and the time from request to last byte.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<(reqwest::StatusCode, bytes::Bytes, Duration), String> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let started = Instant::now();
        let res = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{method}: {e}"))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| format!("{method}: {e}"))?;
        Ok((status, bytes, started.elapsed()))
    }

    /// One `tools/call` of `name` with arguments (so its schema is consulted too); the time
    /// from request to last byte. An error result fails the bench.
    pub(crate) async fn tools_call(&mut self, name: &str) -> Result<Duration, String> {
        let params = json!({ "name": name, "arguments": { "id": "42" } });
        let (_, bytes, took) = self.request("tools/call", params).await?;
        let msg = message(&bytes)?;
        let ok = msg["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with(" done"));
        if !ok || msg["result"]["isError"] == true {
            return Err(format!("tools/call {name}: {msg:.300}"));
        }
        Ok(took)
    }
}

#[derive(Default)]
pub(crate) struct ListRun {
    pub(crate) took: Duration,
    pub(crate) pages: usize,
    pub(crate) items: usize,
    pub(crate) bytes: usize,
    /// The last tool of the merged list (the last target's): what part C calls.
    pub(crate) last: Option<String>,
}
