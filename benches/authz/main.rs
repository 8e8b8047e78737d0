//! Authorization cost on the list and call paths (DESIGN §8: tools/list over 50 upstreams ×
//! 100 tools under 200 policies in ≤ 2 ms from cache), in one process and one run:
//!
//! A. the policy engine alone (no I/O): `target_visible` for 50 targets and `decide` for their
//!    100 tools each (5,000 decisions) for a `dev` user in two groups, under 200 realistic
//!    policies and under a single "role dev may do everything" policy;
//! B. end to end: reflow in process (temp SQLite) with 50 targets served by one in-process rmcp
//!    upstream (100 tools each), `tools/list` from the gateway's cache as that user, first with
//!    the single policy, then with the same 200 policies created through `POST /api/policies`;
//! C. in the same two phases, `tools/call` of one allowed tool (the last target's), with
//!    arguments: what resolving a call's name and deciding it costs with 50 targets.
//!
//! `cargo bench --bench authz` (`-- --quick`: a tenth of the lists and calls). The last line is
//! `BENCH_JSON {...}`. See benches/README.md. Parts: `policies.rs` (the policy sets),
//! `engine.rs` (A), `harness.rs` (the upstream, reflow and the client B and C use).

// The allocator the `reflow` binary ships with (src/main.rs): with the system allocator
// the in-process gateway measured here would spend its time in glibc malloc instead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod engine;
mod harness;
mod policies;

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

use engine::*;
use harness::*;
use policies::*;

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
