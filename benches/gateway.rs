//! `tools/call` throughput and latency, DIRECT (client → upstream) against GATEWAY
//! (client → reflow → upstream), measured in one process and one run so the ratios compare
//! like with like (DESIGN §8). Also `tools/list` through reflow from its cache.
//!
//! `cargo bench --bench gateway` (default sizes) or `cargo bench --bench gateway -- --quick`
//! (a tenth). The last line is `BENCH_JSON {...}` for scripts. See benches/README.md.

// The allocator the `reflow` binary ships with (src/main.rs): with the system allocator
// the in-process gateway measured here would spend its time in glibc malloc instead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reflow::app::App;
use reflow::config::{Secret, Settings};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Barrier, oneshot};

/// Everything together must finish within this; the process exits with an error otherwise.
const HARD_CAP: Duration = Duration::from_secs(90);
/// One measured phase stops early (and says so) past this.
const PHASE_CAP: Duration = Duration::from_secs(15);
const CONCURRENCY: usize = 32;
const PROTOCOL_VERSION: &str = reflow::mcp::LATEST_LEGACY_VERSION;

// ---------------------------------------------------------------- the upstream

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct EchoArgs {
    text: String,
}

#[derive(Clone)]
struct BenchTools;

#[tool_router(server_handler)]
impl BenchTools {
    #[tool(description = "Answers with its text")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

struct Upstream {
    url: String,
    server: tokio::task::JoinHandle<()>,
}

/// A fast rmcp Streamable HTTP server: stateless (no `Mcp-Session-Id`, no per-session task)
/// and `json_response`, so a plain tool answer is one `application/json` body, not SSE.
async fn start_upstream() -> Upstream {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let service = StreamableHttpService::new(
        || Ok(BenchTools),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Upstream {
        url: format!("http://{addr}/mcp"),
        server,
    }
}

// ---------------------------------------------------------------- reflow

struct Gateway {
    base: String,
    token: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// reflow in process on 127.0.0.1:0 with a fresh SQLite database; no tracing subscriber is
/// installed, so logging is off. Registers the first (admin) account and adds the upstream.
async fn start_gateway(upstream_url: &str) -> Gateway {
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
    let app = App::build(settings).await.expect("reflow builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(listener, async {
        let _ = rx.await;
    }));

    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({ "email": "bench@example.com", "password": "bench-password-1" }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("register")
        .json()
        .await
        .unwrap();
    let token = reg["token"].as_str().expect("a token").to_string();
    assert_eq!(reg["user"]["role"], "admin", "the first account is admin");
    let res = http
        .post(format!("{base}/api/targets"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "fast",
            "url": upstream_url,
            "prefix": "",
            "statefulness": "stateless",
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert!(
        status.is_success(),
        "create target: {status} {}",
        res.text().await.unwrap_or_default()
    );
    Gateway {
        base,
        token,
        shutdown: Some(tx),
        task,
        _dir: dir,
    }
}

impl Gateway {
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

/// One MCP client: its own keep-alive HTTP/1.1 connection and its own session.
struct Client {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    next_id: u64,
    /// The `tools/call` body differs per call only in its id; the echo text identifies us.
    text: String,
}

fn check(body: &[u8], needle: &str) -> Result<(), String> {
    // JSON or SSE, the answer carries the echoed text; an error would not.
    let hay = String::from_utf8_lossy(body);
    if hay.contains(needle) && !hay.contains("\"error\"") {
        Ok(())
    } else {
        Err(format!("unexpected answer: {hay}"))
    }
}

impl Client {
    /// Connects, sends `initialize` and `notifications/initialized`.
    async fn connect(url: &str, token: Option<&str>, n: usize) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(t) = token {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
        }
        let mut client = Self {
            http,
            url: url.to_string(),
            headers,
            next_id: 1,
            text: format!("bench-{n}"),
        };
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "reflow-bench", "version": "0" },
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
        check(&body, "protocolVersion")?;
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
        if res.status().as_u16() != 202 {
            return Err(format!("notifications/initialized: HTTP {}", res.status()));
        }
        let _ = res.bytes().await;
        Ok(client)
    }

    /// One request, the whole response read; its latency.
    async fn rpc(&mut self, method: &str, params: Value, expect: &str) -> Result<Duration, String> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string();
        let started = Instant::now();
        let res = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{method}: {e}"))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| format!("{method}: {e}"))?;
        let took = started.elapsed();
        if !status.is_success() {
            return Err(format!(
                "{method}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        check(&bytes, expect)?;
        Ok(took)
    }

    async fn call_echo(&mut self) -> Result<Duration, String> {
        let params = json!({ "name": "echo", "arguments": { "text": self.text } });
        let expect = self.text.clone();
        self.rpc("tools/call", params, &expect).await
    }
}

// ---------------------------------------------------------------- measuring

#[derive(Clone, Copy)]
struct Target<'a> {
    label: &'static str,
    url: &'a str,
    token: Option<&'a str>,
}

struct Stats {
    path: &'static str,
    clients: usize,
    calls: usize,
    errors: usize,
    secs: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    capped: bool,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.calls as f64 / self.secs
    }

    fn json(&self) -> Value {
        json!({
            "path": self.path, "clients": self.clients, "calls": self.calls,
            "errors": self.errors, "secs": round(self.secs, 3),
            "calls_per_s": round(self.throughput(), 1),
            "p50_us": round(self.p50_us, 1), "p90_us": round(self.p90_us, 1),
            "p99_us": round(self.p99_us, 1), "capped": self.capped,
        })
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

fn summarize(
    path: &'static str,
    clients: usize,
    mut lat: Vec<u64>,
    errors: usize,
    secs: f64,
    capped: bool,
) -> Stats {
    lat.sort_unstable();
    Stats {
        path,
        clients,
        calls: lat.len(),
        errors,
        secs,
        p50_us: percentile(&lat, 50.0),
        p90_us: percentile(&lat, 90.0),
        p99_us: percentile(&lat, 99.0),
        capped,
    }
}

/// `clients` concurrent clients, each with its own session, `total` calls between them after
/// `warmup` calls each. Throughput is calls over the wall time from a common start.
async fn run_calls(target: Target<'_>, clients: usize, total: usize, warmup: usize) -> Stats {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for n in 0..clients {
        // `total` split as evenly as it goes.
        let per_client = total / clients + usize::from(n < total % clients);
        let (url, token) = (target.url.to_string(), target.token.map(str::to_string));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            let mut errors = 0usize;
            let mut capped = false;
            let mut client = match Client::connect(&url, token.as_deref(), n).await {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("client {n}: {e}");
                    None
                }
            };
            if let Some(c) = client.as_mut() {
                for _ in 0..warmup {
                    if let Err(e) = c.call_echo().await {
                        eprintln!("client {n} warm-up: {e}");
                        errors += 1;
                        break;
                    }
                }
            }
            barrier.wait().await;
            // Everyone is released at once; the phase cap counts from here.
            let deadline = Instant::now() + PHASE_CAP;
            if let Some(c) = client.as_mut() {
                for _ in 0..per_client {
                    if Instant::now() > deadline {
                        capped = true;
                        break;
                    }
                    match c.call_echo().await {
                        Ok(d) => lat.push(d.as_nanos() as u64),
                        Err(e) => {
                            if errors < 3 {
                                eprintln!("client {n}: {e}");
                            }
                            errors += 1;
                        }
                    }
                }
            } else {
                errors += 1;
            }
            (lat, errors, capped)
        }));
    }
    // The clock starts once every client is connected and warmed up.
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(total);
    let (mut errors, mut capped) = (0, false);
    for t in tasks {
        let (l, e, c) = t.await.expect("client task");
        lat.extend(l);
        errors += e;
        capped |= c;
    }
    let secs = start.elapsed().as_secs_f64();
    summarize(target.label, clients, lat, errors, secs, capped)
}

/// `tools/list` through reflow after one warm list (so from reflow's cache), sequentially.
async fn run_list(target: Target<'_>, calls: usize) -> Result<Stats, String> {
    let mut client = Client::connect(target.url, target.token, 999).await?;
    client.rpc("tools/list", json!({}), "\"echo\"").await?;
    let deadline = Instant::now() + PHASE_CAP;
    let mut lat = Vec::with_capacity(calls);
    let mut errors = 0;
    let mut capped = false;
    let start = Instant::now();
    for _ in 0..calls {
        if Instant::now() > deadline {
            capped = true;
            break;
        }
        match client.rpc("tools/list", json!({}), "\"echo\"").await {
            Ok(d) => lat.push(d.as_nanos() as u64),
            Err(e) => {
                if errors < 3 {
                    eprintln!("tools/list: {e}");
                }
                errors += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(summarize(
        "gateway tools/list",
        1,
        lat,
        errors,
        secs,
        capped,
    ))
}

// ---------------------------------------------------------------- main

fn print_row(s: &Stats) {
    println!(
        "{:<20} {:>7} {:>7} {:>7} {:>11.0} {:>9.1} {:>9.1} {:>9.1}{}",
        s.path,
        s.clients,
        s.calls,
        s.errors,
        s.throughput(),
        s.p50_us,
        s.p90_us,
        s.p99_us,
        if s.capped { "  (time-capped)" } else { "" }
    );
}

async fn bench(quick: bool) -> Result<Value, String> {
    let scale = if quick { 10 } else { 1 };
    let (seq_calls, conc_calls, list_calls) = (2_000 / scale, 20_000 / scale, 1_000 / scale);
    let (seq_warmup, conc_warmup) = (200 / scale, 20 / scale.min(4));

    let upstream = start_upstream().await;
    let gateway = start_gateway(&upstream.url).await;
    let gw_url = format!("{}/mcp", gateway.base);
    let direct = Target {
        label: "direct",
        url: &upstream.url,
        token: None,
    };
    let through = Target {
        label: "gateway",
        url: &gw_url,
        token: Some(&gateway.token),
    };

    let d1 = run_calls(direct, 1, seq_calls, seq_warmup).await;
    let g1 = run_calls(through, 1, seq_calls, seq_warmup).await;
    let d32 = run_calls(direct, CONCURRENCY, conc_calls, conc_warmup).await;
    let g32 = run_calls(through, CONCURRENCY, conc_calls, conc_warmup).await;
    let list = run_list(through, list_calls).await?;

    gateway.stop().await;
    upstream.server.abort();

    println!();
    println!(
        "reflow gateway bench ({}; tools/call echo; upstream rmcp stateless + json_response; HTTP/1.1 keep-alive; loopback)",
        if quick { "--quick" } else { "default sizes" }
    );
    println!(
        "{:<20} {:>7} {:>7} {:>7} {:>11} {:>9} {:>9} {:>9}",
        "path", "clients", "calls", "errors", "calls/s", "p50 µs", "p90 µs", "p99 µs"
    );
    for s in [&d1, &g1, &d32, &g32, &list] {
        print_row(s);
    }
    let ratio1 = g1.throughput() / d1.throughput();
    let ratio32 = g32.throughput() / d32.throughput();
    let added1 = g1.p50_us - d1.p50_us;
    let added32 = g32.p50_us - d32.p50_us;
    println!();
    println!(
        "gateway/direct throughput:  1 client {ratio1:.2}x   {CONCURRENCY} clients {ratio32:.2}x"
    );
    println!(
        "added p50 by the gateway:   1 client {added1:+.1} µs   {CONCURRENCY} clients {added32:+.1} µs"
    );
    println!("tools/list via reflow cache: p50 {:.1} µs", list.p50_us);

    let errors = d1.errors + g1.errors + d32.errors + g32.errors + list.errors;
    let out = json!({
        "quick": quick,
        "concurrency": CONCURRENCY,
        "upstream": "rmcp 3.11 stateless json_response",
        "direct_1": d1.json(), "gateway_1": g1.json(),
        "direct_32": d32.json(), "gateway_32": g32.json(),
        "tools_list_cached": list.json(),
        "ratio_throughput_1": round(ratio1, 3),
        "ratio_throughput_32": round(ratio32, 3),
        "added_p50_us_1": round(added1, 1),
        "added_p50_us_32": round(added32, 1),
        "tools_list_p50_us": round(list.p50_us, 1),
        "errors": errors,
    });
    Ok(out)
}

fn main() {
    // `cargo bench` passes `--bench`; only `--quick` means anything here.
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = rt.block_on(async { tokio::time::timeout(HARD_CAP, bench(quick)).await });
    rt.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(Ok(out)) => {
            println!();
            println!("BENCH_JSON {out}");
            if out["errors"].as_u64() != Some(0) {
                std::process::exit(1);
            }
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
