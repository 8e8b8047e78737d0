//! Faults and abuse at the edges: an upstream that lost our session and says so with a 400, a
//! body over the limit on the MCP endpoints, opaque `Origin: null` and duplicate `Host` headers.
//! Every refusal on /mcp and /message is a JSON-RPC error object. `reflow target restart` of an
//! HTTP target.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The JSON-RPC error of a refusal: an object with a code and a message, id null.
fn rpc_error_of(body: &Value) -> (i64, String) {
    assert_eq!(body["jsonrpc"], "2.0", "a JSON-RPC error object: {body}");
    assert!(body["id"].is_null(), "{body}");
    (
        body["error"]["code"].as_i64().expect("an error code"),
        body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_string(),
    )
}

#[tokio::test]
async fn an_oversized_body_on_the_mcp_endpoints_is_a_json_rpc_error_naming_the_limit() {
    let gw = Gw::start_with(TestServerOptions {
        max_body_bytes: 4096,
        ..TestServerOptions::default()
    })
    .await;
    let c = McpClient::new(&gw.server, &gw.admin);
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(10_000)}});
    let (status, body) = c.raw_post_without_session(big.to_string()).await;
    assert_eq!(status, 413, "{body}");
    let (code, message) = rpc_error_of(&body);
    assert_eq!(code, -32600);
    assert!(
        message.contains("4096") && message.contains("server.max_body_bytes"),
        "{message}"
    );
    let res = gw
        .server
        .http
        .post(gw.server.url("/message?session_id=whatever"))
        .bearer_auth(&gw.admin)
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let body: Value = res.json().await.unwrap();
    assert!(
        rpc_error_of(&body).1.contains("server.max_body_bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn an_opaque_origin_may_not_speak_mcp_or_change_state() {
    let gw = Gw::start().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}});
    let res = gw
        .server
        .http
        .post(gw.server.url("/mcp"))
        .bearer_auth(&gw.admin)
        .header("origin", "null")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(rpc_error_of(&body).1.contains("null"), "{body}");
    // A state-changing admin call from an opaque origin: refused as well.
    let res = gw
        .server
        .http
        .post(gw.server.url("/api/auth/tokens"))
        .bearer_auth(&gw.admin)
        .header("origin", "null")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Reading is not state-changing.
    let res = gw
        .server
        .http
        .get(gw.server.url("/api/auth/me"))
        .bearer_auth(&gw.admin)
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn two_host_headers_are_a_bad_request() {
    let gw = Gw::start().await;
    let mut tcp = tokio::net::TcpStream::connect(gw.server.addr)
        .await
        .unwrap();
    let request = format!(
        "GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example.com\r\n\
         Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
        gw.admin
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("more than one Host header"), "{answer}");
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

#[tokio::test]
async fn a_non_admin_sees_how_to_use_a_target_never_how_it_is_reached() {
    let gw = Gw::start().await;
    gw.target_for_everyone(json!({
        "name": "fx", "transport_type": "stdio", "command": "/usr/bin/secret-tool",
        "args": ["--password", "in-argv-by-mistake"], "cwd": "/srv/private",
        "env": {"REGION": "eu"}, "user_env": ["GITHUB_TOKEN"], "user_token": true,
    }))
    .await;
    let (_, token) = crate::support::stdio::user(&gw, "dev@example.com", "dev", &[]).await;
    let (status, list) = gw.server.get("/api/targets", Some(&token)).await;
    assert_eq!(status, 200, "{list}");
    let t = &list[0];
    assert_eq!(t["name"], "fx");
    assert_eq!(t["user_env"], json!(["GITHUB_TOKEN"]));
    assert_eq!(t["user_token"], true);
    for field in [
        "url",
        "command",
        "args",
        "cwd",
        "env",
        "image",
        "port",
        "health_path",
    ] {
        assert!(t.get(field).is_none(), "{field} shown to a non-admin: {t}");
    }
    assert!(!list.to_string().contains("/srv/private"), "{list}");
    // The admin still sees everything.
    let (_, all) = gw.server.get("/api/targets", Some(&gw.admin)).await;
    assert_eq!(all[0]["cwd"], "/srv/private");
}

#[tokio::test]
async fn a_kubernetes_target_says_what_it_needs_when_pods_are_off() {
    let gw = Gw::start().await;
    let (status, body) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "k", "transport_type": "kubernetes", "image": "mcp/server:1",
                   "url": "http://x.example.com/mcp"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("url"), "{body}");
    let (status, body) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "k", "transport_type": "kubernetes", "image": "mcp/server:1", "port": 8080}),
        )
        .await;
    // Without the feature the target is refused; with it, a gateway whose kubernetes section
    // is off answers calls to it with the key to set.
    if !cfg!(feature = "kubernetes") {
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("`kubernetes` feature"),
            "{body}"
        );
        return;
    }
    assert_eq!(status, 201, "{body}");
    let (status, p) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "all-k", "target": "k", "resource_type": "all", "effect": "allow",
                   "priority": 10, "subjects": [{"subject_type": "everyone"}]}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let client = gw.admin_client().await;
    let answer = client
        .request(
            "tools/call",
            json!({"name": "k__anything", "arguments": {}}),
        )
        .await;
    let text = answer.to_string();
    assert!(text.contains("kubernetes.enabled"), "{text}");
}

/// Reads until the server closes the connection; None if it is still open after `wait`.
async fn closed_within(
    stream: &mut tokio::net::TcpStream,
    wait: std::time::Duration,
) -> Option<()> {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_one_address_cannot_take_every_connection() {
    use std::time::{Duration, Instant};
    let gw = Gw::start_with(TestServerOptions {
        connection_limits: Some((Duration::from_secs(1), 4)),
        ..TestServerOptions::default()
    })
    .await;
    let addr = gw.server.addr;
    // Four slowloris clients: headers trickle in and never end.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth connection from the same address is closed at once.
    let mut fifth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut fifth, Duration::from_millis(500))
            .await
            .is_some(),
        "the fifth connection from one address was served"
    );
    // The slow ones are closed by the header deadline (1 s), not held for ever.
    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(3)).await.is_some(),
            "a client trickling headers kept its connection"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // Their slots are free again: a normal request is served.
    let (status, _) = gw.server.get("/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_user_over_the_session_cap_loses_their_least_recently_used_session() {
    let gw = Gw::start_with(TestServerOptions {
        sessions_per_user: Some(3),
        ..TestServerOptions::default()
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = McpClient::new(&gw.server, &gw.admin);
        c.initialize().await;
        clients.push(c);
    }
    // The first session is used again: the second is now the least recently used.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    clients[0].result("ping", json!({})).await;
    clients[2].result("ping", json!({})).await;
    let mut fourth = McpClient::new(&gw.server, &gw.admin);
    fourth.initialize().await;
    let (status, body) = clients[1]
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 404, "the least recently used session ended: {body}");
    for c in [&clients[0], &clients[2], &fourth] {
        c.result("ping", json!({})).await;
    }
    // Another user is not affected by this one's sessions.
    let (other, _) = gw
        .server
        .register("other@example.com", crate::support::gw::PW)
        .await;
    let mut theirs = McpClient::new(&gw.server, &other);
    theirs.initialize().await;
    theirs.result("ping", json!({})).await;
    clients[0].result("ping", json!({})).await;
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

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    use std::time::{Duration, Instant};
    let gw = Gw::start_with(TestServerOptions {
        connection_limits: Some((Duration::from_secs(1), 4)),
        ..TestServerOptions::default()
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.server.addr)
        .await
        .unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "served first"
    );
    // Now idle, kept alive: closed by the deadline, not held for ever.
    let idle = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle keep-alive connection was held"
    );
    eprintln!(
        "idle keep-alive connection closed after {:?}",
        idle.elapsed()
    );
    assert!(idle.elapsed() >= Duration::from_millis(900));
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
