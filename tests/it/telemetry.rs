//! OpenTelemetry traces from the real `reflow serve` to an in-process OTLP receiver: span names,
//! attributes and the parent/child link, and one trace id shared by the client's traceparent,
//! the exported spans, what the upstream received (`_meta` and HTTP header) and the audit row —
//! for a legacy-era call, a 2026-era call and a stdio target. Bad input: a malformed
//! traceparent, an unreachable collector, an unknown protocol.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::support::cli::Target as CliTarget;
use crate::support::db::test_db;
use crate::support::gw::{PW, eventually, tool_text};
use crate::support::mcp_client::{McpClient, ModernClient};
use crate::support::stdio::FIXTURE;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// Spans received, with the `service.name` of their resource.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP (protobuf) trace receiver on 127.0.0.1:0; returns its base URL.
async fn otlp_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| str_of(a.value.as_ref()?.value.as_ref()?))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            sink.lock().unwrap().push((service.clone(), span));
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn str_of(v: &Any) -> Option<String> {
    match v {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| str_of(a.value.as_ref()?.value.as_ref()?))
}

/// A gateway process exporting to `collector`, with an admin; returns (process, base, token).
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
    let res = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "admin@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let admin: Value = res.json().await.unwrap();
    // The calls are a non-admin's, so a policy (not the admin's pass) decides them. The admin
    // adds the account (registration is the first account's only, by default), who signs in.
    let res = reqwest::Client::new()
        .post(format!("{base}/api/users"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .json(&json!({"email": "user@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "user@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    (
        child,
        base,
        admin["token"].as_str().unwrap().to_string(),
        user["token"].as_str().unwrap().to_string(),
        user["user"]["id"].as_str().unwrap().to_string(),
    )
}

async fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status < 300, "{path}: {status} {body}");
    body
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
    let (collector, received) = otlp_receiver().await;
    let up = UpstreamServer::start(UpstreamConfig {
        meta_tool: Some("meta".into()),
        ..UpstreamConfig::tools("svc", ["echo"])
    })
    .await;
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    let (_child, base, token, user_token, user_id) = gateway(&cli, &collector).await;
    // Targets with no options: what a user gets by default.
    post(
        &base,
        &token,
        "/api/targets",
        json!({"name": "svc", "url": up.url}),
    )
    .await;
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
    let tp = traceparent(TRACE[0]);
    let id = legacy.next_id();
    let ex = legacy
        .exchange_with(
            &id,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": "svc__meta", "arguments": {}}}),
            &[("traceparent", tp.as_str())],
        )
        .await;
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
    let id = legacy.next_id();
    let ex = legacy
        .exchange_with(
            &id,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": "st__meta", "arguments": {}}}),
            &[("traceparent", traceparent(TRACE[2]).as_str())],
        )
        .await;
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
        assert_eq!(
            attr(server, "mcp.method.name").as_deref(),
            Some("tools/call"),
            "{label}"
        );
        assert_eq!(
            attr(server, "gen_ai.tool.name").as_deref(),
            Some(tool.as_str()),
            "{label}"
        );
        assert_eq!(
            attr(server, "enduser.id").as_deref(),
            Some(user_id.as_str()),
            "{label}"
        );
        assert_eq!(
            attr(server, "network.transport").as_deref(),
            Some("tcp"),
            "{label}"
        );
        assert_eq!(
            attr(server, "reflow.policy.decision").as_deref(),
            Some("allow"),
            "{label}"
        );
        assert_eq!(
            attr(server, "reflow.policy.name"),
            Some(format!("all-{target}")),
            "{label}"
        );
        assert!(attr(server, "jsonrpc.request.id").is_some(), "{label}");
        assert!(attr(server, "client.address").is_some(), "{label}");
        assert_eq!(
            attr(server, "mcp.session.id").as_deref(),
            session_id,
            "{label}"
        );
        let expected_version = if label == "2026-07-28" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert_eq!(
            attr(server, "mcp.protocol.version").as_deref(),
            Some(expected_version),
            "{label}"
        );
        let client = in_trace
            .iter()
            .find(|s| s.kind == 3)
            .unwrap_or_else(|| panic!("{label}: a CLIENT span: {in_trace:?}"));
        assert_eq!(
            client.parent_span_id, server.span_id,
            "{label}: CLIENT is SERVER's child"
        );
        assert_eq!(client.name, "tools/call", "{label}");
        assert_eq!(
            attr(client, "reflow.target").as_deref(),
            Some(target),
            "{label}"
        );
        let transport = if target == "st" {
            "stdio"
        } else {
            "streamable-http"
        };
        assert_eq!(
            attr(client, "reflow.upstream.transport").as_deref(),
            Some(transport),
            "{label}"
        );
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
        let rows = reqwest::Client::new()
            .get(format!("{base}/api/logs?trace_id={trace}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
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
    post(
        &base,
        &token,
        "/api/targets",
        json!({"name": "svc", "url": up.url}),
    )
    .await;
    let mut c = McpClient::at(&base, &token);
    c.initialize().await;
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        let started = Instant::now();
        let id = c.next_id();
        let ex = c
            .exchange_with(
                &id,
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": {"name": "svc__echo", "arguments": {"text": "hi"}}}),
                &[("traceparent", bad)],
            )
            .await;
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
        let rows: Value = reqwest::Client::new()
            .get(format!("{base}/api/logs?method=tools/call"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    let out = cli
        .run_with(
            &["serve", "--port", "0"],
            None,
            &[("REFLOW_TELEMETRY_PROTOCOL", "bogus")],
        )
        .await;
    out.fails(1, "telemetry.protocol");
    let out = cli
        .run_with(
            &["serve", "--port", "0"],
            None,
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")],
        )
        .await;
    out.fails(1, "OTEL_EXPORTER_OTLP_PROTOCOL");
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
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "admin@example.com", "password": PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["token"].as_str().unwrap();
    post(
        &base,
        token,
        "/api/targets",
        json!({"name": "svc", "url": up.url}),
    )
    .await;
    let mut c = McpClient::at(&base, token);
    c.initialize().await;
    let id = c.next_id();
    c.exchange_with(
        &id,
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "svc__echo", "arguments": {}}}),
        &[("traceparent", traceparent(TRACE[0]).as_str())],
    )
    .await;
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

/// An OTLP/gRPC trace receiver (tonic) on 127.0.0.1:0.
struct GrpcReceiver(Received);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for GrpcReceiver
{
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                for span in ss.spans {
                    self.0.lock().unwrap().push((String::new(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn spans_export_over_grpc_too() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(GrpcReceiver(received.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    let up = UpstreamServer::start(UpstreamConfig::tools("svc", ["echo"])).await;
    let db = test_db().await;
    let cli = CliTarget::of(&db);
    let (_child, base) = cli
        .serve_with_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .await;
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "admin@example.com", "password": PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["token"].as_str().unwrap();
    post(
        &base,
        token,
        "/api/targets",
        json!({"name": "svc", "url": up.url}),
    )
    .await;
    let mut c = McpClient::at(&base, token);
    c.initialize().await;
    let id = c.next_id();
    c.exchange_with(
        &id,
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "svc__echo", "arguments": {}}}),
        &[("traceparent", traceparent(TRACE[1]).as_str())],
    )
    .await;
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
