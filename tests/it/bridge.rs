//! `reflow bridge` (the real binary) in front of the stdio fixture: the session era over
//! Streamable HTTP, one child per session, server→client requests, refusals, shutdown, and
//! the gateway reaching a stdio server through it as a `streamable-http` target.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::bridge::Bridge;
use crate::support::bridge_token::{bearer_target, guarded};
use crate::support::gw::{Gw, eventually};
use crate::support::mcp_client::{McpClient, is_response_to};
use crate::support::stdio::{FIXTURE, alive, call_text, until_gone, user};

const TOKEN_VAR: &str = "BRIDGE_TEST_TOKEN";
const TOKEN: &str = "bridge-test-secret-7f3a";
const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

async fn bridge_with_token() -> Bridge {
    guarded(
        (TOKEN_VAR, TOKEN),
        &[],
        &[("VISIBLE_TO_CHILD", "yes")],
        &[&FIXTURE],
    )
    .await
}

async fn session(b: &Bridge) -> McpClient {
    let mut c = McpClient::at(&b.base, TOKEN);
    c.initialize_with(json!({"sampling": {}})).await;
    c
}

async fn pid(c: &McpClient) -> u32 {
    call_text(c, "pid", json!({})).await.parse().unwrap()
}

/// Calls the fixture's `sample` tool on `c` and answers its sampling request with `reply`;
/// returns the tool's text (the answer the child got back) and whether the request came on the
/// call's own stream.
async fn sample_round_trip(c: &McpClient, tool: &str, reply: &str) -> String {
    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                            "params": {"name": tool, "arguments": {}}}))
        .await;
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("text/event-stream"),
        "the request precedes the response: SSE ({})",
        stream.content_type
    );
    let ask = loop {
        let ev = stream
            .next_within(Duration::from_secs(20))
            .await
            .expect("the sampling request comes before the stream ends");
        if ev.data["method"] == "sampling/createMessage" {
            break ev.data;
        }
    };
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {
        "role": "assistant", "model": "m", "content": {"type": "text", "text": reply}}});
    let (status, body) = c.raw_post(answer.to_string(), &[]).await;
    assert_eq!(status, 202, "{body}");
    let (_, done) = stream.until_response(&id, Duration::from_secs(20)).await;
    assert!(is_response_to(&done.data, &id));
    done.data["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", done.data))
        .to_string()
}

#[tokio::test]
async fn bridge_relays_the_session_era_to_a_stdio_server() {
    let b = bridge_with_token().await;
    let c = session(&b).await;
    let tools = c.result("tools/list", json!({})).await;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"sample"),
        "{names:?}"
    );
    assert_eq!(call_text(&c, "echo", json!({"text": "hi"})).await, "hi");

    // A log message the child sends during a call rides on that call's SSE stream, first.
    let ex = c
        .exchange(
            "tools/call",
            json!({"name": "log", "arguments": {"text": "note"}}),
        )
        .await;
    assert!(ex.sse, "{ex:?}");
    assert_eq!(
        ex.events[0].data["method"], "notifications/message",
        "{ex:?}"
    );
    assert_eq!(ex.response["result"]["content"][0]["text"], "logged");

    // A server→client request reaches the client and its answer reaches the child.
    let text = sample_round_trip(&c, "sample", "sampled-by-the-test").await;
    assert!(text.contains("sampled-by-the-test"), "{text}");

    // What the child sends on its own, with no request in flight, goes to the GET stream.
    let mut listen = c.get_stream(None).await;
    assert_eq!(listen.status, 200);
    let _ = c
        .result("tools/call", json!({"name": "changed", "arguments": {}}))
        .await;
    let note = listen
        .next_within(Duration::from_secs(10))
        .await
        .expect("the GET stream stays open");
    assert_eq!(note.data["method"], "notifications/tools/list_changed");

    // The child has the bridge's environment, less the token variable.
    let env = call_text(&c, "env", json!({})).await;
    assert!(env.contains("VISIBLE_TO_CHILD"), "{env}");
    assert!(
        !env.contains(TOKEN_VAR) && !env.contains(TOKEN),
        "the token reached the child: {env}"
    );
    assert!(!b.log().contains(TOKEN), "the token reached the log");
}

#[tokio::test]
async fn each_session_has_its_own_child_and_delete_ends_it() {
    let b = bridge_with_token().await;
    let first = session(&b).await;
    let second = session(&b).await;
    let (p1, p2) = (pid(&first).await, pid(&second).await);
    assert_ne!(p1, p2, "two sessions, two processes");
    assert!(alive(p1) && alive(p2));

    assert_eq!(first.delete().await, 204);
    assert!(
        until_gone(p1, Duration::from_secs(10)).await,
        "DELETE ends the session's process"
    );
    assert!(alive(p2), "the other session's process is untouched");
    let (status, body) = first
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 404, "an ended session is unknown: {body}");
    assert_eq!(first.delete().await, 404);
    assert_eq!(pid(&second).await, p2);

    // A child that exits ends its session: the client hears 404 and initializes again.
    let ex = second
        .exchange(
            "tools/call",
            json!({"name": "exit", "arguments": {"code": 3}}),
        )
        .await;
    assert!(ex.response.get("error").is_some(), "{}", ex.response);
    assert!(until_gone(p2, Duration::from_secs(10)).await);
    let gone = eventually(Duration::from_secs(10), || async {
        let (status, _) = second
            .raw_post(
                json!({"jsonrpc": "2.0", "id": 10, "method": "ping"}).to_string(),
                &[],
            )
            .await;
        (status == 404).then_some(())
    })
    .await;
    assert!(gone.is_some(), "a session whose process exited answers 404");
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_right_status() {
    let b = bridge_with_token().await;
    let c = session(&b).await;
    let http = reqwest::Client::new();
    let post = |body: &'static str, token: Option<&'static str>| {
        let mut req = http
            .post(b.url())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

    // No token, a wrong one: 401 with a challenge, and no process started.
    for token in [None, Some("wrong")] {
        let res = post(init, token).await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }
    // Malformed JSON, a batch, a request without a session, an unknown session.
    let res = post("{not json", Some(TOKEN)).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let res = post(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = post(PING, Some(TOKEN)).await.unwrap();
    assert_eq!(res.status(), 400, "no Mcp-Session-Id");
    let mut unknown = McpClient::at(&b.base, TOKEN);
    unknown.session = Some("00000000000000000000000000000000".into());
    assert_eq!(unknown.raw_post(PING, &[]).await.0, 404);
    for (header, status) in [
        // Accept and Content-Type, as the transport requires.
        (("accept", "application/json"), 406),
        (("content-type", "text/plain"), 415),
        // DNS rebinding: a foreign Host or Origin is refused even with the token.
        (("host", "evil.example.com"), 403),
        (("origin", "http://evil.example.com"), 403),
    ] {
        assert_eq!(c.raw_post(PING, &[header]).await.0, status, "{header:?}");
    }
    // A 2026-07-28 probe gets the plain 400 that sends dual-era clients to `initialize`.
    let res = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], -32600);
    // The session survived all of that.
    assert_eq!(
        call_text(&c, "echo", json!({"text": "still"})).await,
        "still"
    );
}

#[tokio::test]
async fn sessions_are_bounded_and_sigterm_stops_every_child() {
    let mut b = guarded(
        (TOKEN_VAR, TOKEN),
        &["--max-sessions", "2"],
        &[],
        &[&FIXTURE],
    )
    .await;
    let (a, c) = (session(&b).await, session(&b).await);
    let (pa, pc) = (pid(&a).await, pid(&c).await);
    let third = McpClient::at(&b.base, TOKEN);
    let (status, body) = third
        .raw_post_without_session(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"}}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 503, "over --max-sessions: {body}");
    // Probes need no token.
    let health = reqwest::get(format!("{}/health", b.base)).await.unwrap();
    assert_eq!(health.status(), 200);

    // An open GET stream and a call in progress must not hold the shutdown up.
    let mut listening = a.get_stream(None).await;
    assert_eq!(listening.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("sleeping");
    let marker_arg = marker.to_str().unwrap().to_string();
    let slow = tokio::spawn(async move {
        c.raw_post(
            json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
                   "params": {"name": "sleep", "arguments": {"ms": 60000, "marker": marker_arg}}})
            .to_string(),
            &[],
        )
        .await
    });
    eventually(Duration::from_secs(10), || async {
        marker.exists().then_some(())
    })
    .await
    .expect("the slow call reached the process");
    let started = std::time::Instant::now();

    let status = b
        .terminate(Duration::from_secs(15))
        .await
        .expect("the bridge exits after SIGTERM");
    assert!(status.success(), "{status:?}: {}", b.log());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "open streams held the shutdown for {:?}",
        started.elapsed()
    );
    assert!(listening.try_next(Duration::from_secs(1)).await.is_none());
    // The call in progress ended with the bridge (an error answer or a closed connection).
    assert!(
        tokio::time::timeout(Duration::from_secs(5), slow)
            .await
            .is_ok()
    );
    for p in [pa, pc] {
        assert!(
            until_gone(p, Duration::from_secs(5)).await,
            "process {p} outlived the bridge"
        );
    }
}

#[tokio::test]
async fn idle_sessions_end_with_their_child() {
    let b = Bridge::start(&["--idle-timeout", "1s"], &[], &[&FIXTURE]).await;
    let mut c = McpClient::at(&b.base, "unused");
    c.initialize().await;
    let p = pid(&c).await;
    assert!(
        until_gone(p, Duration::from_secs(10)).await,
        "an idle session's process is stopped"
    );
    let (status, _) = c
        .raw_post(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#, &[])
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_non_loopback_listener_without_a_token_is_refused() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"))
        .args(["bridge", "--listen", "0.0.0.0:0", "--", "/bin/true"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token-env"), "{err}");
}

/// The gateway's upstream client against the bridge: a `streamable-http` target with a bearer
/// token (era probe → fallback to `initialize`, sessions, SSE, server→client requests).
#[tokio::test]
async fn the_gateway_reaches_a_stdio_server_through_the_bridge() {
    let b = bridge_with_token().await;
    let gw = Gw::start().await;
    let target = json!({"name": "br", "url": b.url(), "transport_type": "streamable-http",
                        "auth_type": "bearer", "statefulness": "stateful", "timeout": 20});
    bearer_target(&gw, target, TOKEN).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let mut c = McpClient::new(&gw.server, &alice);
    c.initialize_with(json!({"sampling": {}})).await;
    let tools = c.result("tools/list", json!({})).await;
    assert!(
        tools.to_string().contains("br__echo"),
        "the bridge's tools through the gateway: {tools}"
    );
    assert_eq!(
        call_text(&c, "br__echo", json!({"text": "via"})).await,
        "via"
    );
    let text = sample_round_trip(&c, "br__sample", "sampled-through-two-hops").await;
    assert!(text.contains("sampled-through-two-hops"), "{text}");
    // The gateway's session has its own process behind the bridge; ending it ends that.
    let p: u32 = call_text(&c, "br__pid", json!({})).await.parse().unwrap();
    assert!(alive(p));
    assert_eq!(c.delete().await, 204);
    assert!(
        until_gone(p, Duration::from_secs(15)).await,
        "ending the gateway session DELETEs the bridge session and stops its process: {}",
        b.log()
    );
}
