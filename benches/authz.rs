//! Authorization cost on the list path (DESIGN §8: tools/list over 50 upstreams × 100 tools
//! under 200 policies in ≤ 2 ms from cache), in one process and one run:
//!
//! A. the policy engine alone (no I/O): `target_visible` for 50 targets and `decide` for their
//!    100 tools each (5,000 decisions) for a `dev` user in two groups, under 200 realistic
//!    policies and under a single "role dev may do everything" policy;
//! B. end to end: reflow in process (temp SQLite) with 50 targets served by one in-process rmcp
//!    upstream (100 tools each), `tools/list` from the gateway's cache as that user, first with
//!    the single policy, then with the same 200 policies created through `POST /api/policies`.
//!
//! C. in the same two phases, `tools/call` of one allowed tool (the last target's), with
//!    arguments: what resolving a call's name and deciding it costs with 50 targets.
//!
//! `cargo bench --bench authz` (`-- --quick`: a tenth of the lists and calls). The last line is `BENCH_JSON {...}`. See benches/README.md.

// The allocator the `reflow` binary ships with (src/main.rs): with the system allocator
// the in-process gateway measured here would spend its time in glibc malloc instead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reflow::app::App;
use reflow::config::{Secret, Settings};
use reflow::domain::{
    Effect, GroupName, PolicyId, PolicyName, PolicySubjectId, ResourceType, SubjectType, TargetId,
    UserId,
};
use reflow::policy::{ItemType, PolicySet, Subject};
use reflow::store::{PolicyRecord, PolicySubject};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The whole run (both parts) must finish within this; the process exits non-zero otherwise.
const HARD_CAP: Duration = Duration::from_secs(120);
/// Part A measures each policy set for at most this long.
const ENGINE_CAP: Duration = Duration::from_secs(4);
const ENGINE_LISTS: usize = 400;
/// Part A: timed rounds of `target_visible` over every target.
const VISIBLE_ROUNDS: usize = 2000;
/// Part B: timed `tools/list` calls per policy set, each phase capped.
const LIST_CALLS: usize = 200;
const PHASE_CAP: Duration = Duration::from_secs(25);
/// Part C: timed `tools/call`s per policy set.
const TOOL_CALLS: usize = 400;
const TARGETS: usize = 50;
const TOOLS: usize = 100;
const POLICIES: usize = 200;
/// Large enough that the merged list is one page (reflow's default is 500).
const PAGE_SIZE: usize = 10_000;
const PROTOCOL_VERSION: &str = reflow::mcp::LATEST_LEGACY_VERSION;

const DEV_EMAIL: &str = "dev@example.com";
const DEV_ROLE: &str = "dev";
const DEV_GROUPS: [&str; 2] = ["eng", "oncall"];
/// Other accounts named by user subjects (the API resolves them, so they must exist).
const OTHER_EMAILS: [&str; 2] = ["alice@example.com", "bob@example.com"];

const VERBS: [&str; 10] = [
    "get", "list", "search", "create", "update", "delete", "export", "run", "admin", "sync",
];
const NOUNS: [&str; 10] = [
    "issue", "project", "user", "file", "record", "invoice", "report", "job", "secret", "metric",
];

/// The 100 tool names every upstream lists: `get_issue`, `list_issue`, … `sync_metric`.
fn tool_names() -> Vec<String> {
    NOUNS
        .iter()
        .flat_map(|n| VERBS.iter().map(move |v| format!("{v}_{n}")))
        .collect()
}

fn target_name(k: usize) -> String {
    format!("up{k:02}")
}

// ---------------------------------------------------------------- the policies

/// One policy as the API takes it; turned into a `PolicyRecord` for part A and into a
/// `POST /api/policies` body for part B.
struct Spec {
    name: String,
    /// Index of the target, None = every target.
    target: Option<usize>,
    resource_type: &'static str,
    pattern: Option<&'static str>,
    effect: &'static str,
    priority: i32,
    /// (subject_type, subject_value); user values are emails.
    subjects: Vec<(&'static str, Option<&'static str>)>,
}

fn spec(
    name: impl Into<String>,
    target: Option<usize>,
    resource_type: &'static str,
    pattern: Option<&'static str>,
    effect: &'static str,
    priority: i32,
    subjects: &[(&'static str, Option<&'static str>)],
) -> Spec {
    Spec {
        name: name.into(),
        target,
        resource_type,
        pattern,
        effect,
        priority,
        subjects: subjects.to_vec(),
    }
}

const EVERYONE: (&str, Option<&str>) = ("everyone", None);
const fn role(r: &'static str) -> (&'static str, Option<&'static str>) {
    ("role", Some(r))
}
const fn group(g: &'static str) -> (&'static str, Option<&'static str>) {
    ("group", Some(g))
}
const fn user(email: &'static str) -> (&'static str, Option<&'static str>) {
    ("user", Some(email))
}

/// The single-policy baseline: role dev may do everything (it is also the first of the 200).
fn baseline() -> Vec<Spec> {
    vec![spec(
        "dev-all",
        None,
        "all",
        None,
        "allow",
        0,
        &[role(DEV_ROLE)],
    )]
}

/// 200 policies in the shape a real deployment grows: 21 global (role, group, user and
/// everyone subjects; anchored tool patterns; denies carved out of allows and allows carved
/// out of denies) and 179 scoped to one target each (3–4 per target). Roughly half name the
/// bench user (role dev, groups eng/oncall, or the user itself); the rest name other roles,
/// groups and users and are skipped by the subject index. Every target stays visible to dev.
#[rustfmt::skip]
fn realistic() -> Vec<Spec> {
    let mut p = baseline();
    p.extend([
        spec("deny-admin-tools", None, "tool", Some("admin_.*"), "deny", 1000, &[EVERYONE]),
        spec("deny-dev-delete", None, "tool", Some("delete_.*"), "deny", 100, &[role(DEV_ROLE)]),
        spec("oncall-delete", None, "tool", Some("delete_(job|record)"), "allow", 200, &[group("oncall")]),
        spec("deny-secrets", None, "tool", Some(".*_secret"), "deny", 900, &[EVERYONE]),
        spec("secops-secrets", None, "tool", Some(".*_secret"), "allow", 950, &[group("secops")]),
        spec("viewer-read", None, "tool", Some("(get|list|search)_.*"), "allow", 10, &[role("viewer")]),
        spec("contractors-no-write", None, "tool", Some("(create|update|delete)_.*"), "deny", 300, &[group("contractors")]),
        spec("contractors-read", None, "tool", Some("(get|list|search)_.*"), "allow", 20, &[group("contractors")]),
        spec("interns-off", None, "all", None, "deny", 400, &[group("interns")]),
        spec("eng-sync", None, "tool", Some("sync_.*"), "allow", 50, &[group("eng")]),
        spec("deny-dev-export-invoice", None, "tool", Some("export_invoice"), "deny", 120, &[role(DEV_ROLE)]),
        spec("auditor-all", None, "all", None, "allow", 5, &[role("auditor")]),
        spec("alice-all", None, "all", None, "allow", 30, &[user(OTHER_EMAILS[0])]),
        spec("bob-off", None, "all", None, "deny", 600, &[user(OTHER_EMAILS[1])]),
        spec("deny-run", None, "tool", Some("run_.*"), "deny", 80, &[EVERYONE]),
        spec("eng-run", None, "tool", Some("run_(job|report)"), "allow", 90, &[group("eng")]),
        spec("finance-invoices", None, "tool", Some(".*_invoice"), "allow", 110, &[group("finance"), role("accountant")]),
        spec("dev-prompts", None, "prompt", None, "allow", 15, &[role(DEV_ROLE)]),
        spec("deny-dev-secret-resources", None, "resource", Some("secret://.*"), "deny", 130, &[role(DEV_ROLE)]),
        spec("ops-metrics", None, "tool", Some(".*_metric"), "allow", 40, &[group("ops"), role("sre")]),
    ]);
    for i in 0..POLICIES - p.len() {
        let k = i % TARGETS;
        let t = Some(k);
        let prio = (k % 5) as i32;
        p.push(match i / TARGETS {
            0 => spec(format!("t{k:02}-eng-read"), t, "tool", Some("(get|list|search)_.*"), "allow", 60, &[group("eng")]),
            1 if k.is_multiple_of(2) => spec(format!("t{k:02}-deny-writes"), t, "tool", Some("(create|update)_(project|user)"), "deny", 70 + prio, &[role(DEV_ROLE)]),
            1 => spec(format!("t{k:02}-deny-updates"), t, "tool", Some("update_.*"), "deny", 70 + prio, &[role(DEV_ROLE), group("contractors")]),
            2 => match k % 5 {
                0 => spec(format!("t{k:02}-interns-off"), t, "all", None, "deny", 500, &[group("interns")]),
                1 => spec(format!("t{k:02}-alice-admin"), t, "tool", Some("admin_.*"), "allow", 1100, &[user(OTHER_EMAILS[0])]),
                2 => spec(format!("t{k:02}-dev-exports"), t, "tool", Some("export_(report|metric)"), "allow", 125, &[user(DEV_EMAIL)]),
                3 => spec(format!("t{k:02}-oncall-run"), t, "tool", Some("run_.*"), "allow", 85, &[group("oncall")]),
                _ => spec(format!("t{k:02}-contractors-off"), t, "all", None, "deny", 450, &[group("contractors")]),
            },
            _ if k.is_multiple_of(2) => spec(format!("t{k:02}-viewer-files"), t, "tool", Some(".*_file"), "allow", 12, &[role("viewer")]),
            _ => spec(format!("t{k:02}-no-sync-secrets"), t, "tool", Some("sync_(secret|user)"), "deny", 95, &[EVERYONE]),
        });
    }
    assert_eq!(p.len(), POLICIES);
    p
}

impl Spec {
    fn record(&self, targets: &[TargetId], users: &HashMap<&str, UserId>) -> PolicyRecord {
        let id = PolicyId::new();
        let now = Utc::now();
        PolicyRecord {
            id,
            name: PolicyName::parse(&self.name).expect("policy name"),
            description: String::new(),
            target_id: self.target.map(|k| targets[k]),
            resource_type: ResourceType::parse(self.resource_type).unwrap(),
            resource_pattern: self.pattern.map(str::to_string),
            effect: Effect::parse(self.effect).unwrap(),
            priority: self.priority,
            enabled: true,
            // As the API stores them: a user subject by the user's id.
            subjects: self
                .subjects
                .iter()
                .map(|(t, v)| PolicySubject {
                    id: PolicySubjectId::new(),
                    policy_id: id,
                    subject_type: SubjectType::parse(t).unwrap(),
                    subject_value: match (*t, v) {
                        ("user", Some(email)) => Some(users[email].to_string()),
                        (_, v) => v.map(str::to_string),
                    },
                })
                .collect(),
            created_at: now,
            updated_at: now,
        }
    }

    fn body(&self) -> Value {
        let subjects: Vec<Value> = self
            .subjects
            .iter()
            .map(|(t, v)| json!({ "subject_type": t, "subject_value": v }))
            .collect();
        json!({
            "name": self.name,
            "target": self.target.map(target_name),
            "resource_type": self.resource_type,
            "resource_pattern": self.pattern,
            "effect": self.effect,
            "priority": self.priority,
            "subjects": subjects,
        })
    }
}

// ---------------------------------------------------------------- A. the engine

struct EngineStats {
    label: &'static str,
    policies: usize,
    lists: usize,
    decisions: usize,
    allowed: usize,
    p50_us: f64,
    min_us: f64,
    /// `target_visible` for every target once, p50: what resolving a call's name paid, twice
    /// per call, while it checked every target rather than the one the name points at.
    all_visible_us: f64,
}

impl EngineStats {
    fn ns_per_decision(&self) -> f64 {
        self.p50_us * 1000.0 / self.decisions as f64
    }

    fn json(&self) -> Value {
        json!({
            "policies": self.policies, "lists": self.lists, "decisions": self.decisions,
            "allowed": self.allowed, "us_per_list_p50": round(self.p50_us, 1),
            "us_per_list_min": round(self.min_us, 1),
            "ns_per_decision": round(self.ns_per_decision(), 1),
            "all_targets_visible_us": round(self.all_visible_us, 2),
        })
    }
}

/// What one filtered list costs the engine: visibility of every target, then a decision for
/// every tool of each visible target (as `Gateway::list` does). Returns (decisions, allowed).
fn engine_list(
    set: &PolicySet,
    s: &Subject,
    targets: &[TargetId],
    tools: &[String],
) -> (usize, usize) {
    let (mut decisions, mut allowed) = (0, 0);
    for &t in targets {
        if !set.target_visible(s, t) {
            continue;
        }
        for name in tools {
            decisions += 1;
            allowed += usize::from(set.decide(s, t, ItemType::Tool, name).allowed);
        }
    }
    (decisions, allowed)
}

fn bench_engine(
    label: &'static str,
    specs: &[Spec],
    targets: &[TargetId],
    users: &HashMap<&str, UserId>,
    s: &Subject,
    tools: &[String],
) -> EngineStats {
    let records: Vec<PolicyRecord> = specs.iter().map(|p| p.record(targets, users)).collect();
    let set = PolicySet::compile(&records).expect("policies compile");
    let (decisions, allowed) = engine_list(&set, s, targets, tools);
    for _ in 0..20 {
        black_box(engine_list(black_box(&set), s, targets, tools));
    }
    let deadline = Instant::now() + ENGINE_CAP;
    let lists = ENGINE_LISTS / scale();
    let mut lat = Vec::with_capacity(lists);
    while lat.len() < lists && Instant::now() < deadline {
        let started = Instant::now();
        black_box(engine_list(black_box(&set), s, targets, tools));
        lat.push(started.elapsed().as_nanos() as u64);
    }
    lat.sort_unstable();
    let mut visible = Vec::with_capacity(VISIBLE_ROUNDS);
    for _ in 0..VISIBLE_ROUNDS / scale() {
        let started = Instant::now();
        black_box(
            targets
                .iter()
                .filter(|&&t| set.target_visible(black_box(s), t))
                .count(),
        );
        visible.push(started.elapsed().as_nanos() as u64);
    }
    visible.sort_unstable();
    EngineStats {
        label,
        policies: set.len(),
        lists: lat.len(),
        decisions,
        allowed,
        p50_us: percentile(&lat, 50.0),
        min_us: lat[0] as f64 / 1000.0,
        all_visible_us: percentile(&visible, 50.0),
    }
}

/// Part A; also returns how many tools each policy set lets dev see, which part B checks.
fn part_a() -> (EngineStats, EngineStats) {
    let targets: Vec<TargetId> = (0..TARGETS).map(|_| TargetId::new()).collect();
    let dev_id = UserId::new();
    let mut users: HashMap<&str, UserId> = HashMap::from([(DEV_EMAIL, dev_id)]);
    for e in OTHER_EMAILS {
        users.insert(e, UserId::new());
    }
    let groups: Vec<GroupName> = DEV_GROUPS
        .iter()
        .map(|g| GroupName::parse(g).unwrap())
        .collect();
    let subject = Subject {
        user_id: dev_id,
        email: DEV_EMAIL,
        role: DEV_ROLE,
        groups: &groups,
    };
    let tools = tool_names();
    let one = bench_engine("1 policy", &baseline(), &targets, &users, &subject, &tools);
    let many = bench_engine(
        "200 policies",
        &realistic(),
        &targets,
        &users,
        &subject,
        &tools,
    );
    (one, many)
}

// ---------------------------------------------------------------- the upstream

/// 100 tools with a description and a small input schema, all in one `tools/list` page.
#[derive(Clone)]
struct ManyTools {
    tools: Arc<Vec<Tool>>,
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

fn many_tools() -> Vec<Tool> {
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
async fn start_upstream() -> (String, tokio::task::JoinHandle<()>) {
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

struct Gateway {
    base: String,
    admin: String,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// reflow in process on 127.0.0.1:0 with a fresh SQLite database and logging off; registers
/// the first (admin) account.
async fn start_gateway() -> Result<Gateway, String> {
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
    async fn register(&self, email: &str) -> Result<Value, String> {
        let body = json!({ "email": email, "password": "bench-password-1" });
        self.call(reqwest::Method::POST, "/api/auth/register", None, body)
            .await
    }

    /// One admin (or anonymous) API call; the JSON answer, or the error with its body.
    async fn call(
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

    async fn admin_post(&self, path: &str, body: Value) -> Result<Value, String> {
        let token = self.admin.clone();
        self.call(reqwest::Method::POST, path, Some(&token), body)
            .await
    }

    async fn stop(mut self) {
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
struct Client {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    next_id: u64,
}

/// The JSON-RPC message of a response body, JSON or SSE (the last `data:` line).
fn message(body: &[u8]) -> Result<Value, String> {
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
    async fn connect(url: &str, token: &str) -> Result<Self, String> {
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
    async fn tools_list(&mut self) -> Result<ListRun, String> {
        let mut run = ListRun::default();
        let mut cursor: Option<String> = None;
        loop {
            let id = self.next_id;
            self.next_id += 1;
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let body =
                json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params })
                    .to_string();
            let started = Instant::now();
            let res = self
                .http
                .post(&self.url)
                .headers(self.headers.clone())
                .body(body)
                .send()
                .await
                .map_err(|e| format!("tools/list: {e}"))?;
            let status = res.status();
            let bytes = res.bytes().await.map_err(|e| format!("tools/list: {e}"))?;
            run.took += started.elapsed();
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
    /// One `tools/call` of `name` with arguments (so its schema is consulted too); the time
    /// from request to last byte. An error result fails the bench.
    async fn tools_call(&mut self, name: &str) -> Result<Duration, String> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": name, "arguments": { "id": "42" } },
        })
        .to_string();
        let started = Instant::now();
        let res = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| format!("tools/call: {e}"))?;
        let bytes = res.bytes().await.map_err(|e| format!("tools/call: {e}"))?;
        let took = started.elapsed();
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
struct ListRun {
    took: Duration,
    pages: usize,
    items: usize,
    bytes: usize,
    /// The last tool of the merged list (the last target's): what part C calls.
    last: Option<String>,
}

// ---------------------------------------------------------------- B. end to end

struct ListStats {
    label: &'static str,
    policies: usize,
    calls: usize,
    items: usize,
    pages: usize,
    bytes: usize,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    capped: bool,
    /// Part C: `tools/call` of one allowed tool, request to last byte.
    call: String,
    tool_calls: usize,
    call_p50_us: f64,
    call_p90_us: f64,
}

impl ListStats {
    fn json(&self) -> Value {
        json!({
            "policies": self.policies, "calls": self.calls, "items": self.items,
            "pages": self.pages, "bytes": self.bytes, "p50_us": round(self.p50_us, 1),
            "p90_us": round(self.p90_us, 1), "p99_us": round(self.p99_us, 1),
            "capped": self.capped, "call": self.call, "tool_calls": self.tool_calls,
            "call_p50_us": round(self.call_p50_us, 1), "call_p90_us": round(self.call_p90_us, 1),
        })
    }
}

/// A fresh session for `token`, one warm list (connects every upstream and fills the caches
/// if they are cold), then `LIST_CALLS` timed lists, each checked to hold `expected` tools.
async fn measure_lists(
    label: &'static str,
    policies: usize,
    url: &str,
    token: &str,
    expected: usize,
) -> Result<ListStats, String> {
    let mut client = Client::connect(url, token).await?;
    let warm = client.tools_list().await?;
    if warm.items != expected {
        return Err(format!(
            "{label}: tools/list returned {} tools, the engine allows {expected}",
            warm.items
        ));
    }
    let deadline = Instant::now() + PHASE_CAP;
    let calls = LIST_CALLS / scale();
    let mut lat = Vec::with_capacity(calls);
    let mut capped = false;
    for _ in 0..calls {
        if Instant::now() > deadline {
            capped = true;
            break;
        }
        let run = client.tools_list().await?;
        if run.items != expected {
            return Err(format!("{label}: {} tools, expected {expected}", run.items));
        }
        lat.push(run.took.as_nanos() as u64);
    }
    lat.sort_unstable();
    let tool = warm
        .last
        .clone()
        .ok_or_else(|| format!("{label}: an empty list"))?;
    client.tools_call(&tool).await?; // warm: locates the name, fills the schema cache
    let mut call_lat = Vec::with_capacity(TOOL_CALLS);
    for _ in 0..TOOL_CALLS / scale() {
        call_lat.push(client.tools_call(&tool).await?.as_nanos() as u64);
    }
    call_lat.sort_unstable();
    Ok(ListStats {
        label,
        policies,
        call: tool,
        calls: lat.len(),
        tool_calls: call_lat.len(),
        call_p50_us: percentile(&call_lat, 50.0),
        call_p90_us: percentile(&call_lat, 90.0),
        items: warm.items,
        pages: warm.pages,
        bytes: warm.bytes,
        p50_us: percentile(&lat, 50.0),
        p90_us: percentile(&lat, 90.0),
        p99_us: percentile(&lat, 99.0),
        capped,
    })
}

async fn part_b(expect_one: usize, expect_many: usize) -> Result<(ListStats, ListStats), String> {
    let (upstream_url, upstream) = start_upstream().await;
    let gw = start_gateway().await?;

    // The bench user (role dev, two groups) and the other users the policies name.
    let dev = gw.register(DEV_EMAIL).await?;
    let dev_token = dev["token"].as_str().unwrap_or_default().to_string();
    let dev_id = dev["user"]["id"].as_str().unwrap_or_default().to_string();
    for e in OTHER_EMAILS {
        gw.register(e).await?;
    }
    let admin = gw.admin.clone();
    gw.call(
        reqwest::Method::PUT,
        &format!("/api/users/{dev_id}"),
        Some(&admin),
        json!({ "role": DEV_ROLE, "groups": DEV_GROUPS }),
    )
    .await?;

    for k in 0..TARGETS {
        gw.admin_post(
            "/api/targets",
            json!({ "name": target_name(k), "url": upstream_url, "statefulness": "stateless" }),
        )
        .await?;
    }

    let url = format!("{}/mcp", gw.base);
    let all = realistic();
    // Phase 1: the one policy (reflow's own `admin-all` does not name dev).
    gw.admin_post("/api/policies", all[0].body()).await?;
    let one = measure_lists("1 policy", 1, &url, &dev_token, expect_one).await?;

    // Phase 2: the other 199 through the API, then a fresh session.
    for p in &all[1..] {
        gw.admin_post("/api/policies", p.body()).await?;
    }
    let many = measure_lists("200 policies", POLICIES, &url, &dev_token, expect_many).await?;

    gw.stop().await;
    upstream.abort();
    Ok((one, many))
}

// ---------------------------------------------------------------- main

/// `--quick` runs a tenth of the lists (for a smoke test, e.g. in a debug build).
fn scale() -> usize {
    if std::env::args().any(|a| a == "--quick") {
        10
    } else {
        1
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Nearest-rank percentile of sorted nanoseconds, in µs.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn report(a1: &EngineStats, a200: &EngineStats, b1: &ListStats, b200: &ListStats) -> Value {
    println!();
    println!(
        "reflow authz bench: {TARGETS} targets × {TOOLS} tools, user in role {DEV_ROLE} and groups {}; page_size {PAGE_SIZE}; loopback",
        DEV_GROUPS.join("+")
    );
    println!();
    println!("A. policy engine, no I/O (target_visible × {TARGETS} + decide per tool)");
    println!(
        "{:<14} {:>8} {:>6} {:>9} {:>8} {:>12} {:>13} {:>13}",
        "policy set",
        "policies",
        "lists",
        "decisions",
        "allowed",
        "ns/decision",
        "µs/list p50",
        "µs/list min"
    );
    for s in [a1, a200] {
        println!(
            "{:<14} {:>8} {:>6} {:>9} {:>8} {:>12.1} {:>13.1} {:>13.1}",
            s.label,
            s.policies,
            s.lists,
            s.decisions,
            s.allowed,
            s.ns_per_decision(),
            s.p50_us,
            s.min_us
        );
    }
    let engine_ratio = a200.p50_us / a1.p50_us;
    println!("engine: 200 policies / 1 policy = {engine_ratio:.2}x");
    println!(
        "target_visible for all {TARGETS} targets, p50: {:.2} µs (1 policy), {:.2} µs (200 policies)",
        a1.all_visible_us, a200.all_visible_us
    );
    println!();
    println!("B. tools/list through reflow, from cache, whole list (all pages)");
    println!(
        "{:<14} {:>8} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "policy set", "policies", "calls", "tools", "pages", "bytes", "p50 µs", "p90 µs", "p99 µs"
    );
    for s in [b1, b200] {
        println!(
            "{:<14} {:>8} {:>6} {:>6} {:>6} {:>10} {:>10.1} {:>10.1} {:>10.1}{}",
            s.label,
            s.policies,
            s.calls,
            s.items,
            s.pages,
            s.bytes,
            s.p50_us,
            s.p90_us,
            s.p99_us,
            if s.capped { "  (time-capped)" } else { "" }
        );
    }
    let ratio50 = b200.p50_us / b1.p50_us;
    let ratio90 = b200.p90_us / b1.p90_us;
    let target_us = 2000.0;
    println!(
        "overhead of 200 policies: p50 {ratio50:.2}x ({:+.1} µs), p90 {ratio90:.2}x",
        b200.p50_us - b1.p50_us
    );
    println!(
        "DESIGN §8 target tools/list ≤ {target_us:.0} µs under {POLICIES} policies: p50 {:.1} µs → {}",
        b200.p50_us,
        if b200.p50_us <= target_us {
            "met"
        } else {
            "MISSED"
        }
    );
    println!();
    println!(
        "C. tools/call through reflow of the list's last tool (its target the last of {TARGETS}), with arguments"
    );
    println!(
        "{:<14} {:>8} {:>6} {:>10} {:>10}  tool",
        "policy set", "policies", "calls", "p50 µs", "p90 µs"
    );
    for s in [b1, b200] {
        println!(
            "{:<14} {:>8} {:>6} {:>10.1} {:>10.1}  {}",
            s.label, s.policies, s.tool_calls, s.call_p50_us, s.call_p90_us, s.call
        );
    }
    println!(
        "overhead of 200 policies on a call: p50 {:+.1} µs",
        b200.call_p50_us - b1.call_p50_us
    );
    json!({
        "quick": scale() > 1, "targets": TARGETS, "tools_per_target": TOOLS, "page_size": PAGE_SIZE,
        "engine_1": a1.json(), "engine_200": a200.json(),
        "engine_ratio": round(engine_ratio, 3),
        "list_1": b1.json(), "list_200": b200.json(),
        "list_ratio_p50": round(ratio50, 3), "list_ratio_p90": round(ratio90, 3),
        "list_added_p50_us": round(b200.p50_us - b1.p50_us, 1),
        "target_us": target_us, "target_met": b200.p50_us <= target_us,
    })
}

fn main() {
    let started = Instant::now();
    let (a1, a200) = part_a();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let left = HARD_CAP.saturating_sub(started.elapsed());
    let outcome =
        rt.block_on(async { tokio::time::timeout(left, part_b(a1.allowed, a200.allowed)).await });
    rt.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(Ok((b1, b200))) => {
            let out = report(&a1, &a200, &b1, &b200);
            println!();
            println!("BENCH_JSON {out}");
        }
        Ok(Err(e)) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("bench exceeded its hard cap of {HARD_CAP:?}");
            std::process::exit(2);
        }
    }
}
