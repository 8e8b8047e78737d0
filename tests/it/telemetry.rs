//! OpenTelemetry traces from the real `reflow serve` to an in-process OTLP receiver: span names,
//! attributes and the parent/child link, and one trace id shared by the client's traceparent,
//! the exported spans, what the upstream received (`_meta` and HTTP header) and the audit row —
//! for a legacy-era call, a 2026-era call and a stdio target. Bad input: a malformed
//! traceparent, an unreachable collector, an unknown protocol.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};

use crate::support::cli::Target as CliTarget;
use crate::support::db::test_db;
use crate::support::gw::{PW, eventually, tool_text};
use crate::support::mcp_client::{Exchange, McpClient, ModernClient};
use crate::support::otlp::{attr, grpc_receiver, http_receiver};
use crate::support::requests::{json_of, post_json};
use crate::support::stdio::FIXTURE;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// Registers the first account, the admin, on the gateway at `base`; its token.
async fn register_admin(base: &str) -> String {
    let body = json!({"email": "admin@example.com", "password": PW});
    let (status, admin) = post_json(base, None, "/api/auth/register", &body).await;
    assert_eq!(status, 201, "{admin}");
    admin["token"].as_str().unwrap().to_string()
}

/// A gateway process exporting to `collector`, with an admin and a user; returns (process,
/// base, admin token, user token, user id).
async fn gateway(
    db: &CliTarget,
    collector: &str,
) -> (tokio::process::Child, String, String, String, String) {
    let (child, base) = db
        .serve_with_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector),
            ("OTEL_SERVICE_NAME", "reflow-it"),
        ])
        .await;
    let admin = register_admin(&base).await;
    // The calls are a non-admin's, so a policy (not the admin's pass) decides them. The admin
    // adds the account (registration is the first account's only, by default), who signs in.
    let account = json!({"email": "user@example.com", "password": PW});
    let (status, body) = post_json(&base, Some(&admin), "/api/users", &account).await;
    assert_eq!(status, 201, "{body}");
    let (status, user) = post_json(&base, None, "/api/auth/login", &account).await;
    assert_eq!(status, 200, "{user}");
    (
        child,
        base,
        admin,
        user["token"].as_str().unwrap().to_string(),
        user["user"]["id"].as_str().unwrap().to_string(),
    )
}

async fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let (status, body) = post_json(base, Some(token), path, &body).await;
    assert!(status < 300, "{path}: {status} {body}");
    body
}

/// The upstream at `url` as the target `svc`, with no options.
async fn svc_target(base: &str, token: &str, url: &str) {
    post(
        base,
        token,
        "/api/targets",
        json!({"name": "svc", "url": url}),
    )
    .await;
}

/// The audit rows `query` selects.
async fn logs(base: &str, token: &str, query: &str) -> Value {
    json_of(
        reqwest::Client::new()
            .get(format!("{base}/api/logs?{query}"))
            .bearer_auth(token),
    )
    .await
}

/// `tools/call` of `tool` on `c`'s session, `traceparent` as an HTTP header.
async fn call(c: &McpClient, tool: &str, arguments: Value, traceparent: &str) -> Exchange {
    let id = c.next_id();
    c.exchange_with(
        &id,
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}}),
        &[("traceparent", traceparent)],
    )
    .await
}

/// The admin of the fresh gateway at `base` adds the upstream at `url` as `svc` and calls
/// `svc__echo` once in `trace`.
async fn admin_calls_echo(base: &str, url: &str, trace: &str) {
    let token = register_admin(base).await;
    svc_target(base, &token, url).await;
    let mut c = McpClient::at(base, &token);
    c.initialize().await;
    call(&c, "svc__echo", json!({}), &traceparent(trace)).await;
}

const TRACE: [&str; 3] = [
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "5cf92f3577b34da6a3ce929d0e0e4737",
    "6df92f3577b34da6a3ce929d0e0e4738",
];
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-{PARENT}-01")
}

/// The upstream's answer from the `meta` tool: the `_meta` it received.
fn meta_of(result: &Value) -> Value {
    let text = tool_text(result);
    serde_json::from_str(text.as_str().unwrap_or_default()).unwrap_or(text)
}

#[tokio::test]
async fn one_trace_id_from_client_through_spans_upstream_and_audit() {
    let (collector, received) = http_receiver().await;
    let up = UpstreamServer::start(UpstreamConfig {
        meta_tool: Some("meta".into()),
        ..UpstreamConfig::tools("svc", ["echo"])
    })
    .await;
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    let (_child, base, token, user_token, user_id) = gateway(&cli, &collector).await;
    // Targets with no options: what a user gets by default.
    svc_target(&base, &token, &up.url).await;
    post(
        &base,
        &token,
        "/api/targets",
        json!({"name": "st", "transport_type": "stdio", "command": *FIXTURE}),
    )
    .await;
    for t in ["svc", "st"] {
        post(
            &base,
            &token,
            "/api/policies",
            json!({"name": format!("all-{t}"), "target": t,
            "resource_type": "all", "effect": "allow", "priority": 10,
            "subjects": [{"subject_type": "everyone"}]}),
        )
        .await;
    }

    // Legacy era, traceparent as an HTTP header.
    let mut legacy = McpClient::at(&base, &user_token);
    let session = legacy.initialize().await;
    let ex = call(&legacy, "svc__meta", json!({}), &traceparent(TRACE[0])).await;
    let legacy_meta = meta_of(&ex.response["result"]);
    // 2026 era, traceparent in params._meta (SEP-414).
    let modern = ModernClient {
        inner: McpClient::at(&base, &user_token),
        capabilities: json!({}),
    };
    let modern_result = modern
        .result(
            "tools/call",
            json!({"name": "svc__meta", "arguments": {},
                   "_meta": {"traceparent": traceparent(TRACE[1])}}),
        )
        .await;
    let modern_meta = meta_of(&modern_result);
    // A stdio target, header again.
    let ex = call(&legacy, "st__meta", json!({}), &traceparent(TRACE[2])).await;
    let stdio_meta = meta_of(&ex.response["result"]);

    let spans = eventually(Duration::from_secs(15), || async {
        let spans = received.lock().unwrap().clone();
        let clients = spans
            .iter()
            .filter(|(_, s)| s.kind == 3 && TRACE.contains(&hex::encode(&s.trace_id).as_str()))
            .count();
        (clients >= 3).then_some(spans)
    })
    .await
    .expect("the three calls' client spans reach the collector");

    let cases = [
        (
            "legacy",
            TRACE[0],
            "svc",
            legacy_meta,
            Some(session.as_str()),
        ),
        ("2026-07-28", TRACE[1], "svc", modern_meta, None),
        ("stdio", TRACE[2], "st", stdio_meta, Some(session.as_str())),
    ];
    for (label, trace, target, meta, session_id) in cases {
        let in_trace: Vec<&Span> = spans
            .iter()
            .filter(|(svc, s)| hex::encode(&s.trace_id) == trace && svc == "reflow-it")
            .map(|(_, s)| s)
            .collect();
        let server = in_trace
            .iter()
            .find(|s| s.kind == 2)
            .unwrap_or_else(|| panic!("{label}: a SERVER span in trace {trace}: {in_trace:?}"));
        let tool = format!("{target}__meta");
        assert_eq!(server.name, format!("tools/call {tool}"), "{label}");
        assert_eq!(
            hex::encode(&server.parent_span_id),
            PARENT,
            "{label}: the client's span is the parent"
        );
        let policy = format!("all-{target}");
        let version = if label == "2026-07-28" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        for (key, want) in [
            ("mcp.method.name", Some("tools/call")),
            ("gen_ai.tool.name", Some(tool.as_str())),
            ("enduser.id", Some(user_id.as_str())),
            ("network.transport", Some("tcp")),
            ("reflow.policy.decision", Some("allow")),
            ("reflow.policy.name", Some(policy.as_str())),
            ("mcp.session.id", session_id),
            ("mcp.protocol.version", Some(version)),
        ] {
            assert_eq!(attr(server, key).as_deref(), want, "{label}: {key}");
        }
        assert!(attr(server, "jsonrpc.request.id").is_some(), "{label}");
        assert!(attr(server, "client.address").is_some(), "{label}");
        let client = in_trace
            .iter()
            .find(|s| s.kind == 3)
            .unwrap_or_else(|| panic!("{label}: a CLIENT span: {in_trace:?}"));
        assert_eq!(
            client.parent_span_id, server.span_id,
            "{label}: CLIENT is SERVER's child"
        );
        assert_eq!(client.name, "tools/call", "{label}");
        let transport = if target == "st" {
            "stdio"
        } else {
            "streamable-http"
        };
        for (key, want) in [
            ("reflow.target", target),
            ("reflow.upstream.transport", transport),
        ] {
            assert_eq!(attr(client, key).as_deref(), Some(want), "{label}: {key}");
        }
        // The upstream got the CLIENT span as its parent, in _meta …
        let sent = format!("00-{trace}-{}-01", hex::encode(&client.span_id));
        assert_eq!(meta["traceparent"], sent, "{label}: upstream _meta {meta}");
        // … and, over HTTP, in the header too.
        if target == "svc" {
            let headers = up.log.lock().unwrap().headers.clone();
            assert!(
                headers
                    .iter()
                    .any(|(n, v)| n == "traceparent" && *v == sent),
                "{label}: upstream headers {headers:?}"
            );
        }
        // The audit row carries the same trace id.
        let rows = logs(&base, &token, &format!("trace_id={trace}")).await;
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{label}: {rows}");
        assert_eq!(rows[0]["trace_id"], trace, "{label}");
        assert_eq!(rows[0]["name"], tool, "{label}");
    }
    // `reflow logs --trace-id` finds it too.
    let out = cli.run(&["logs", "--json", "--trace-id", TRACE[2]]).await;
    out.ok();
    assert!(
        out.stdout.contains("st__meta") && out.stdout.contains(TRACE[2]),
        "{}",
        out.stdout
    );
    cli.run(&["logs", "--trace-id", "nope"])
        .await
        .fails(1, "trace_id");
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_and_a_dead_collector_costs_nothing() {
    // Nothing listens on the collector's port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let up = UpstreamServer::start(UpstreamConfig::tools("svc", ["echo"])).await;
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    let (mut child, base, token, _, _) = gateway(&cli, &format!("http://127.0.0.1:{closed}")).await;
    svc_target(&base, &token, &up.url).await;
    let mut c = McpClient::at(&base, &token);
    c.initialize().await;
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        let started = Instant::now();
        let ex = call(&c, "svc__echo", json!({"text": "hi"}), bad).await;
        assert_eq!(ex.status, 200, "{bad}: {}", ex.response);
        assert!(
            ex.response.get("result").is_some(),
            "{bad}: {}",
            ex.response
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{bad}: the dead collector slowed the call"
        );
    }
    let rows = eventually(Duration::from_secs(5), || async {
        let rows = logs(&base, &token, "method=tools/call").await;
        (rows.as_array().map_or(0, Vec::len) == 3).then_some(rows)
    })
    .await
    .expect("three audit rows");
    let ids: std::collections::HashSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "each bad traceparent started its own trace: {rows}"
    );
    for id in &ids {
        assert!(
            id.len() == 32
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && *id != "00000000000000000000000000000000",
            "{id}"
        );
        assert!(
            !id.starts_with("4bf92f"),
            "the malformed parent was not adopted"
        );
    }
    // Shutdown waits for the export no longer than the grace (10 s by default).
    let stopping = Instant::now();
    let pid = child.id().unwrap() as i32;
    // SAFETY: signalling the child this test spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("reflow exits within 20 s of SIGTERM with a dead collector")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(stopping.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn an_unknown_telemetry_protocol_stops_the_start_naming_the_key() {
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    for (var, value, named) in [
        ("REFLOW_TELEMETRY_PROTOCOL", "bogus", "telemetry.protocol"),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "carrier-pigeon",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ] {
        let serve = ["serve", "--port", "0"];
        cli.run_with(&serve, None, &[(var, value)])
            .await
            .fails(1, named);
    }
}

#[tokio::test]
async fn json_logs_carry_the_trace_and_span_ids() {
    use tokio::io::AsyncBufReadExt;
    let up = UpstreamServer::start(UpstreamConfig::tools("svc", ["echo"])).await;
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    let mut child = cli.spawn_with_env(
        &["serve", "--port", "0"],
        &[
            ("REFLOW_LOGGING_FORMAT", "json"),
            ("REFLOW_LOGGING_LEVEL", "info,reflow::mcp=debug"),
        ],
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
    });
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("reflow logs within 60 s")
            .expect("reflow serve exited");
        let message = line["fields"]["message"].as_str().unwrap_or_default();
        if let Some(at) = message.find("http://127.0.0.1:") {
            let url = &message[at..];
            break url[..url.find("/mcp").unwrap()].to_string();
        }
    };
    admin_calls_echo(&base, &up.url, TRACE[0]).await;
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = rx.recv().await.expect("reflow serve exited");
            if line["fields"]["message"] == "request done" {
                return line;
            }
        }
    })
    .await
    .expect("a `request done` line within 10 s");
    assert_eq!(done["span"]["trace_id"], TRACE[0], "{done}");
    let span_id = done["span"]["span_id"].as_str().unwrap_or_default();
    assert!(span_id.len() == 16 && span_id != PARENT, "{done}");
    assert_eq!(done["fields"]["method"], "tools/call", "{done}");
}

#[tokio::test]
async fn spans_export_over_grpc_too() {
    let (collector, received) = grpc_receiver().await;
    let up = UpstreamServer::start(UpstreamConfig::tools("svc", ["echo"])).await;
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    let (_child, base) = cli
        .serve_with_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .await;
    admin_calls_echo(&base, &up.url, TRACE[1]).await;
    let spans = eventually(Duration::from_secs(15), || async {
        let spans = received.lock().unwrap().clone();
        let kinds: Vec<i32> = spans
            .iter()
            .filter(|(_, s)| hex::encode(&s.trace_id) == TRACE[1])
            .map(|(_, s)| s.kind)
            .collect();
        (kinds.contains(&2) && kinds.contains(&3)).then_some(spans)
    })
    .await
    .expect("the SERVER and CLIENT spans arrive over gRPC");
    let server = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == 2 && hex::encode(&s.trace_id) == TRACE[1])
        .unwrap();
    assert_eq!(server.name, "tools/call svc__echo");
}
