//! Gateway test fixtures: a server with an admin, targets pointing at in-process upstreams, and
//! helpers to read merged lists.

use std::time::Duration;

use serde_json::{Value, json};

use super::mcp_client::McpClient;
use super::server::{TestServer, TestServerOptions};
use super::upstream::{UpstreamConfig, UpstreamServer};

pub const PW: &str = "correct horse battery";

/// A reflow server and its admin (the first registered user).
pub struct Gw {
    pub server: TestServer,
    pub admin: String,
}

impl Gw {
    /// The audit rows `GET /api/logs?{query}` returns to the admin, once there are at least
    /// `want` (the audit writer is asynchronous); panics with the last answer after 5 s.
    pub async fn audit_rows(&self, query: &str, want: usize) -> Vec<Value> {
        let last = std::sync::Mutex::new(Value::Null);
        let path = format!("/api/logs?{query}");
        let found = eventually(Duration::from_secs(5), || async {
            let (_, rows) = self.server.get(&path, Some(&self.admin)).await;
            let rows = rows.as_array().cloned();
            let enough = rows.as_ref().is_some_and(|r| r.len() >= want);
            *last.lock().unwrap() = Value::from(rows.clone());
            enough.then_some(rows.unwrap_or_default())
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "fewer than {want} rows for {path}: {}",
                last.lock().unwrap()
            )
        })
    }

    pub async fn start() -> Self {
        Self::start_with(TestServerOptions::default()).await
    }

    pub async fn start_with(opts: TestServerOptions) -> Self {
        let server = TestServer::start_with(opts).await;
        let (admin, _) = server.register("admin@example.com", PW).await;
        Self { server, admin }
    }

    /// Creates a stateful HTTP target through the API (`prefix` None: the default, the name).
    pub async fn add_target(&self, name: &str, url: &str, prefix: Option<&str>, timeout_secs: u64) {
        let mut body = json!({
            "name": name,
            "url": url,
            "statefulness": "stateful",
            "timeout": timeout_secs,
        });
        if let Some(p) = prefix {
            body["prefix"] = json!(p);
        }
        let (status, created) = self
            .server
            .post("/api/targets", Some(&self.admin), body)
            .await;
        assert_eq!(status, 201, "create target {name}: {created}");
    }

    /// Creates a target from `body` (its "name" included) with a policy letting everyone use
    /// it; returns the target's id.
    pub async fn target_for_everyone(&self, body: Value) -> String {
        let name = body["name"]
            .as_str()
            .expect("the body names the target")
            .to_string();
        let (status, t) = self
            .server
            .post("/api/targets", Some(&self.admin), body)
            .await;
        assert_eq!(status, 201, "create target {name}: {t}");
        let (status, p) = self
            .server
            .post(
                "/api/policies",
                Some(&self.admin),
                json!({"name": format!("everyone-{name}"), "target": name, "resource_type": "all",
                       "effect": "allow", "priority": 10, "subjects": [{"subject_type": "everyone"}]}),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        t["id"].as_str().unwrap().to_string()
    }

    /// Starts an upstream and registers it as target `name`.
    pub async fn upstream(
        &self,
        name: &str,
        prefix: Option<&str>,
        cfg: UpstreamConfig,
    ) -> UpstreamServer {
        let up = UpstreamServer::start(cfg).await;
        self.add_target(name, &up.url, prefix, 10).await;
        up
    }

    /// An initialized MCP client of the admin.
    pub async fn admin_client(&self) -> McpClient {
        let mut c = McpClient::new(&self.server, &self.admin);
        c.initialize().await;
        c
    }
}

/// The names in one `tools/list` page.
pub fn names(page: &Value, key: &str, field: &str) -> Vec<String> {
    page[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {page}"))
        .iter()
        .map(|t| t[field].as_str().unwrap().to_string())
        .collect()
}

/// Follows `nextCursor` to the end; returns every page (at most 100).
pub async fn all_pages(client: &McpClient, method: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut params = json!({});
    for _ in 0..100 {
        let page = client.result(method, params).await;
        let next = page.get("nextCursor").cloned();
        pages.push(page);
        match next {
            Some(Value::String(c)) => params = json!({ "cursor": c }),
            None | Some(Value::Null) => return pages,
            Some(other) => panic!("nextCursor must be a string, got {other}"),
        }
    }
    panic!("more than 100 pages for {method}");
}

/// Every tool name, across pages.
pub async fn all_tool_names(client: &McpClient) -> Vec<String> {
    all_pages(client, "tools/list")
        .await
        .iter()
        .flat_map(|p| names(p, "tools", "name"))
        .collect()
}

/// The text of a tool result's first content block, parsed as JSON when it is JSON.
pub fn tool_text(result: &Value) -> Value {
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result}"));
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

pub fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not a JSON-RPC error: {response}"))
}

/// Polls `check` until it returns Some or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
