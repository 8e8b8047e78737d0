//! Faulty upstreams: one that lost our session and says so with a 400, a stdio child that
//! ignores SIGTERM under a SIGKILLed gateway, oversized answers over HTTP and stdio, and
//! `reflow target restart` of an HTTP target.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::Target;
use crate::support::gw::{Gw, eventually, tool_text};
use crate::support::mcp_client::McpClient;
use crate::support::server::TestServerOptions;
use crate::support::upstream::UpstreamConfig;

#[tokio::test]
async fn an_upstream_that_answers_400_for_a_lost_session_gets_a_new_one() {
    let gw = Gw::start().await;
    // Stateful and default: both keep an upstream session that the upstream can lose.
    let up = gw
        .upstream(
            "lossy",
            None,
            UpstreamConfig {
                lost_session_as_400: true,
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = gw.admin_client().await;
    let call = |text: &'static str| {
        let c = &c;
        async move {
            c.result(
                "tools/call",
                json!({"name": "lossy__echo", "arguments": {"text": text}}),
            )
            .await
        }
    };
    assert_eq!(tool_text(&call("before").await)["args"]["text"], "before");
    assert!(up.expire_sessions().await >= 1);
    // The upstream now answers 400 to the old session id: reflow opens a new session and the
    // call goes through, instead of every call failing until the target is restarted.
    assert_eq!(tool_text(&call("after").await)["args"]["text"], "after");
}

#[tokio::test]
async fn a_stdio_child_that_ignores_sigterm_dies_with_a_sigkilled_gateway() {
    use crate::support::stdio::{FIXTURE, alive, pid_of, until_gone};
    let db = crate::support::db::test_db().await;
    let cli = crate::support::cli::Target::of(&db);
    cli.run_stdin(
        &[
            "user",
            "add",
            "admin@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "correct horse battery",
    )
    .await
    .ok();
    let token = cli
        .run(&[
            "token",
            "create",
            "--user",
            "admin@example.com",
            "--name",
            "t",
            "--json",
        ])
        .await
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Ignores SIGTERM and stdin closing: only SIGKILL ends it.
    cli.run(&[
        "target",
        "add",
        "fx",
        "--stdio",
        "--env",
        "FIXTURE_STUBBORN=1",
        "--",
        &FIXTURE,
    ])
    .await
    .ok();
    let (mut gateway, base) = cli.serve().await;
    let mut c = McpClient::at(&base, &token);
    c.initialize().await;
    let pid = pid_of(&c, "fx").await;
    assert!(alive(pid));

    gateway.start_kill().unwrap(); // SIGKILL: no shutdown, no cleanup
    gateway.wait().await.unwrap();
    assert!(
        until_gone(pid, std::time::Duration::from_secs(5)).await,
        "the child {pid} outlived the gateway"
    );
}

/// A fault-injecting upstream (not a real server): speaks just enough legacy Streamable HTTP
/// for reflow to connect, and answers `tools/call` with a JSON body of `size` bytes.
async fn oversized_upstream(size: usize) -> String {
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |axum::Json(msg): axum::Json<Value>| async move {
            let id = msg["id"].clone();
            let reply = |result: Value| {
                axum::response::IntoResponse::into_response(axum::Json(
                    json!({"jsonrpc": "2.0", "id": id, "result": result}),
                ))
            };
            match msg["method"].as_str().unwrap_or_default() {
                "initialize" => reply(json!({"protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}}, "serverInfo": {"name": "big", "version": "0"}})),
                "tools/list" => {
                    reply(json!({"tools": [{"name": "big", "inputSchema": {"type": "object"}}]}))
                }
                "tools/call" => {
                    reply(json!({"content": [{"type": "text", "text": "x".repeat(size)}]}))
                }
                m if m.starts_with("notifications/") => {
                    axum::response::IntoResponse::into_response(StatusCode::ACCEPTED)
                }
                _ => axum::response::IntoResponse::into_response((
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": -32601, "message": "method not found"}})),
                )),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn an_oversized_upstream_answer_is_refused_with_an_error_naming_the_limit() {
    let gw = Gw::start().await;
    let big = oversized_upstream(17 * 1024 * 1024).await;
    gw.target_for_everyone(json!({"name": "huge", "url": big, "statefulness": "stateful"}))
        .await;
    let small = oversized_upstream(1024).await;
    gw.target_for_everyone(json!({"name": "fine", "url": small, "statefulness": "stateful"}))
        .await;
    let c = gw.admin_client().await;
    let failed = c
        .request("tools/call", json!({"name": "huge__big", "arguments": {}}))
        .await;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("larger than 16 MiB"), "{failed}");
    // The same upstream's small answers, and other targets, still work.
    let ok = c
        .result("tools/call", json!({"name": "fine__big", "arguments": {}}))
        .await;
    assert_eq!(tool_text(&ok).as_str().map(str::len), Some(1024), "{ok}");

    // The limit is gateway.max_upstream_message: at 64 KiB a 100 KiB answer is refused.
    let strict = Gw::start_with(TestServerOptions {
        max_upstream_message: Some(64 * 1024),
        ..TestServerOptions::default()
    })
    .await;
    let medium = oversized_upstream(100 * 1024).await;
    strict
        .target_for_everyone(json!({"name": "mid", "url": medium, "statefulness": "stateful"}))
        .await;
    let failed = strict
        .admin_client()
        .await
        .request("tools/call", json!({"name": "mid__big", "arguments": {}}))
        .await;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("larger than 64 KiB (gateway.max_upstream_message)"),
        "{failed}"
    );
}

#[tokio::test]
async fn restarting_an_http_target_drops_its_upstream_sessions_on_every_server() {
    let gw = Gw::start().await;
    let replica = gw.server.replica().await;
    let up = gw
        .upstream("a", None, UpstreamConfig::tools("a", ["echo"]))
        .await;
    let mut here = McpClient::new(&gw.server, &gw.admin);
    here.initialize().await;
    let mut there = McpClient::new(&replica, &gw.admin);
    there.initialize().await;
    for c in [&here, &there] {
        c.result("tools/call", json!({"name": "a__echo", "arguments": {}}))
            .await;
    }
    assert_eq!(
        up.session_count().await,
        2,
        "one upstream session per server"
    );

    let out = Target::of(&gw.server.db)
        .run(&["target", "restart", "a", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(out["connections"], "dropped", "{out}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            (up.session_count().await == 0).then_some(())
        })
        .await
        .is_some(),
        "both servers ended their upstream sessions: {} remain",
        up.session_count().await
    );
    // The next calls open new ones, on both servers.
    for c in [&here, &there] {
        c.result("tools/call", json!({"name": "a__echo", "arguments": {}}))
            .await;
    }
    assert_eq!(up.session_count().await, 2);
    replica.stop().await;
}

/// A fault-injecting stdio server (not a real one, a few lines of Python): `big` answers with a
/// 17 MiB line, its id written first or, as the TypeScript SDK does, last; `small` with 1 KiB.
const OVERSIZED_STDIO: &str = r#"
import json, sys
ID_LAST = sys.argv[1] == "last"
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    method, rid = msg.get("method"), msg["id"]
    if method == "initialize":
        result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "big", "version": "0"}}
    elif method == "tools/list":
        result = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in ("big", "small")]}
    elif method == "tools/call":
        size = 17 * 1024 * 1024 if msg["params"]["name"] == "big" else 1024
        result = {"content": [{"type": "text", "text": "x" * size}]}
    else:
        result = {}
    body = ({"result": result, "jsonrpc": "2.0", "id": rid} if ID_LAST
            else {"jsonrpc": "2.0", "id": rid, "result": result})
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()
"#;

#[tokio::test]
async fn an_oversized_stdout_line_fails_its_call_at_once_naming_the_limit() {
    use std::time::{Duration, Instant};
    let gw = Gw::start().await;
    for order in ["first", "last"] {
        let name = format!("id-{order}");
        crate::support::stdio::add_stdio_target(
            &gw,
            &name,
            "python3",
            &["-c", OVERSIZED_STDIO, order],
            "shared",
            json!({}),
        )
        .await;
    }
    let c = gw.admin_client().await;
    for order in ["first", "last"] {
        let started = Instant::now();
        let failed = c
            .request(
                "tools/call",
                json!({"name": format!("id-{order}__big"), "arguments": {}}),
            )
            .await;
        let message = failed["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("larger than 16 MiB"),
            "id {order}: {failed}"
        );
        // Not the target's 20 s timeout: the answer was read past and its call failed.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "id {order}: {:?}",
            started.elapsed()
        );
        let ok = c
            .result(
                "tools/call",
                json!({"name": format!("id-{order}__small"), "arguments": {}}),
            )
            .await;
        assert_eq!(tool_text(&ok).as_str().map(str::len), Some(1024), "{ok}");
    }
}
