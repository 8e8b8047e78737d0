//! Stdio upstreams: `tools/call` latency through a warm shared stdio process via reflow against
//! the same server spoken to directly over stdio by a small client, in one process and one run;
//! and the time to the first answer from a cold start (process spawn + initialize + call),
//! directly and through reflow (after `restart-instances`).
//!
//! The server is the `stdio_fixture` example (tests/fixtures/stdio_fixture.rs: std + serde_json, a
//! thread per request). `cargo bench --bench stdio` or `-- --quick` (a tenth). The last line is
//! `BENCH_JSON {...}`. See benches/README.md.

// The allocator the `reflow` binary ships with (src/main.rs): with the system allocator
// the in-process gateway measured here would spend its time in glibc malloc instead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Stdio;
use std::time::{Duration, Instant};

use reflow::app::App;
use reflow::config::{Secret, Settings};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

/// The fixture is an example (so `cargo install` skips it): build it first with
/// `cargo build --release --example stdio_fixture`.
static FIXTURE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the bench lives in target/<profile>/deps");
    let path = dir.join("examples").join("stdio_fixture");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release --example stdio_fixture` first",
        path.display()
    );
    path.display().to_string()
});
const HARD_CAP: Duration = Duration::from_secs(120);
const PROTOCOL_VERSION: &str = reflow::mcp::LATEST_LEGACY_VERSION;

// ---------------------------------------------------------------- direct stdio client

struct Direct {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Direct {
    /// Spawns the fixture and initializes it.
    async fn start() -> Result<Self, String> {
        let mut child = Command::new(&*FIXTURE)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut d = Self {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        d.rpc(
            "initialize",
            json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "bench", "version": "0"}}),
        )
        .await?;
        d.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(d)
    }

    async fn send(&mut self, msg: Value) -> Result<(), String> {
        let mut line = msg.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())
    }

    async fn rpc(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        while let Some(line) = self.stdout.next_line().await.map_err(|e| e.to_string())? {
            let v: Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            if v["id"] == id {
                return v
                    .get("result")
                    .cloned()
                    .ok_or_else(|| format!("{method}: {v}"));
            }
        }
        Err("the server closed stdout".into())
    }

    async fn echo(&mut self, text: &str) -> Result<Duration, String> {
        let started = Instant::now();
        let r = self
            .rpc(
                "tools/call",
                json!({"name": "echo", "arguments": {"text": text}}),
            )
            .await?;
        let took = started.elapsed();
        check(&r, text)?;
        Ok(took)
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

fn check(result: &Value, text: &str) -> Result<(), String> {
    if result["content"][0]["text"] == text {
        Ok(())
    } else {
        Err(format!("unexpected answer: {result}"))
    }
}

// ---------------------------------------------------------------- reflow + HTTP client

struct Gateway {
    base: String,
    token: String,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start_gateway() -> Gateway {
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
    let app = App::build(settings).await.expect("reflow builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(listener, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let reg: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "bench@example.com", "password": "bench-password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reg["token"].as_str().expect("a token").to_string();
    let res = http
        .post(format!("{base}/api/targets"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "fx", "transport_type": "stdio", "command": &*FIXTURE,
                      "isolation_boundary": "shared", "prefix": ""}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "create target: {}", res.status());
    Gateway {
        base,
        token,
        http,
        shutdown: Some(tx),
        task,
        _dir: dir,
    }
}

struct McpSession<'a> {
    gw: &'a Gateway,
    session: String,
    next_id: u64,
}

impl<'a> McpSession<'a> {
    async fn open(gw: &'a Gateway) -> Result<Self, String> {
        let res = gw
            .http
            .post(format!("{}/mcp", gw.base))
            .bearer_auth(&gw.token)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                           "clientInfo": {"name": "bench", "version": "0"}}}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .ok_or("no session id")?
            .to_string();
        let _ = res.bytes().await;
        let s = Self {
            gw,
            session,
            next_id: 1,
        };
        s.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(s)
    }

    async fn post(&self, body: Value) -> Result<String, String> {
        let res = self
            .gw
            .http
            .post(format!("{}/mcp", self.gw.base))
            .bearer_auth(&self.gw.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        res.text().await.map_err(|e| e.to_string())
    }

    async fn echo(&mut self, text: &str) -> Result<Duration, String> {
        let id = self.next_id;
        self.next_id += 1;
        let started = Instant::now();
        let body = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": "echo", "arguments": {"text": text}}}))
            .await?;
        let took = started.elapsed();
        if body.contains(text) && !body.contains("\"error\"") {
            Ok(took)
        } else {
            Err(format!("unexpected answer: {body}"))
        }
    }
}

impl Gateway {
    async fn restart_instances(&self) -> Result<(), String> {
        let res = self
            .http
            .post(format!("{}/api/targets/fx/restart-instances", self.base))
            .bearer_auth(&self.token)
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("restart-instances: HTTP {}", res.status()))
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

// ---------------------------------------------------------------- measuring

struct Stats {
    label: &'static str,
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
}

fn stats(label: &'static str, mut d: Vec<Duration>) -> Stats {
    d.sort_unstable();
    let at = |q: f64| {
        let i = ((d.len() as f64 - 1.0) * q).round() as usize;
        d[i].as_secs_f64() * 1e6
    };
    Stats {
        label,
        n: d.len(),
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
    }
}

async fn run(quick: bool) -> Result<Vec<Stats>, String> {
    let warm_calls = if quick { 200 } else { 2000 };
    let cold_runs = if quick { 3 } else { 15 };
    let mut out = Vec::new();

    // Direct, warm.
    let mut direct = Direct::start().await?;
    for _ in 0..20 {
        direct.echo("warmup").await?;
    }
    let mut d = Vec::with_capacity(warm_calls);
    for i in 0..warm_calls {
        d.push(direct.echo(&format!("direct-{i}")).await?);
    }
    direct.stop().await;
    out.push(stats("direct stdio, warm", d));

    // Through reflow, warm shared process.
    let gw = start_gateway().await;
    let mut s = McpSession::open(&gw).await?;
    for _ in 0..20 {
        s.echo("warmup").await?;
    }
    let mut d = Vec::with_capacity(warm_calls);
    for i in 0..warm_calls {
        d.push(s.echo(&format!("gateway-{i}")).await?);
    }
    out.push(stats("reflow → stdio, warm", d));

    // Cold: spawn + initialize + first answer.
    let mut d = Vec::new();
    for i in 0..cold_runs {
        let started = Instant::now();
        let mut c = Direct::start().await?;
        c.echo(&format!("cold-{i}")).await?;
        d.push(started.elapsed());
        c.stop().await;
    }
    out.push(stats("direct stdio, cold", d));
    let mut d = Vec::new();
    for i in 0..cold_runs {
        gw.restart_instances().await?;
        d.push(s.echo(&format!("cold-{i}")).await?);
    }
    out.push(stats("reflow → stdio, cold", d));
    gw.stop().await;
    Ok(out)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async { tokio::time::timeout(HARD_CAP, run(quick)).await });
    let rows = match result {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            eprintln!("stdio bench failed: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("stdio bench exceeded {HARD_CAP:?}");
            std::process::exit(1);
        }
    };
    println!(
        "reflow stdio bench ({}; tools/call echo; reflow-stdio-fixture; loopback HTTP/1.1 to reflow)",
        if quick { "quick" } else { "default sizes" }
    );
    println!(
        "{:<24} {:>6} {:>10} {:>10} {:>10}",
        "path", "calls", "p50 µs", "p90 µs", "p99 µs"
    );
    for r in &rows {
        println!(
            "{:<24} {:>6} {:>10.1} {:>10.1} {:>10.1}",
            r.label, r.n, r.p50, r.p90, r.p99
        );
    }
    let json: serde_json::Map<String, Value> = rows
        .iter()
        .map(|r| {
            (
                r.label.to_string(),
                json!({"calls": r.n, "p50_us": r.p50, "p90_us": r.p90, "p99_us": r.p99}),
            )
        })
        .collect();
    println!(
        "added p50 by reflow (warm): +{:.1} µs",
        rows[1].p50 - rows[0].p50
    );
    println!("BENCH_JSON {}", Value::Object(json));
}
