//! The gateway on the wire: sessions bound to users, SSE with event ids and resumption,
//! statuses and JSON-RPC codes for bad input, and the Host guard.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestServerOptions;
use crate::support::gw::{Gw, PW, error_code, tool_text};
use crate::support::mcp_client::{McpClient, SseEvent, is_response_to};
use crate::support::upstream::UpstreamConfig;

fn parse_id(id: &str) -> (u64, u64) {
    let (s, n) = id
        .split_once('.')
        .unwrap_or_else(|| panic!("event id {id:?} is not {{stream}}.{{seq}}"));
    (
        s.parse().unwrap_or_else(|_| panic!("event id {id:?}")),
        n.parse().unwrap_or_else(|_| panic!("event id {id:?}")),
    )
}

fn is_progress(e: &SseEvent) -> bool {
    e.data["method"] == "notifications/progress"
}

async fn assert_ping(client: &McpClient, after: &str) {
    let response = client.request("ping", json!({})).await;
    assert_eq!(
        response["result"],
        json!({}),
        "the session must still answer ping after {after}: {response}"
    );
}

#[tokio::test]
async fn gateway_sessions_are_bound_to_their_user_and_end_on_delete() {
    let gw = Gw::start().await;
    let mut a = McpClient::new(&gw.server, &gw.admin);
    let session = a.initialize().await;
    assert_ping(&a, "initialize").await;

    let (b_token, _) = gw.server.register("b@example.com", PW).await;
    let b = McpClient::with_session(&gw.server, &b_token, &session);
    let (status, body) = b
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(
        status, 404,
        "user B presenting user A's session must get 404: {body}"
    );
    assert_eq!(
        b.get_stream(None).await.status,
        404,
        "GET with another user's session"
    );
    assert_eq!(b.delete().await, 404, "DELETE with another user's session");
    assert_ping(&a, "B's attempts").await;

    // Without the session header: 400 with invalid request.
    let (status, body) = a
        .raw_post_without_session(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), -32600, "{body}");

    assert_eq!(a.delete().await, 204, "DELETE ends the session");
    let (status, body) = a
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 404, "after DELETE: {body}");
    assert_eq!(a.delete().await, 404, "a second DELETE");
    assert_eq!(a.get_stream(None).await.status, 404, "GET after DELETE");

    let unknown = McpClient::with_session(&gw.server, &gw.admin, "00ff00ff00ff00ff");
    assert_eq!(
        unknown
            .raw_post(
                json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}).to_string(),
                &[]
            )
            .await
            .0,
        404,
        "an unknown session id"
    );
}

#[tokio::test]
async fn gateway_progress_is_streamed_as_sse_and_resumable() {
    let gw = Gw::start().await;
    let mut cfg = UpstreamConfig::tools("prog", ["echo"]);
    cfg.progress_tool = Some("work".into());
    cfg.progress_steps = 3;
    cfg.progress_interval = Duration::from_millis(150);
    let _up = gw.upstream("prog", None, cfg).await;
    let client = gw.admin_client().await;

    // The gateway answers like the upstream: this one streams, so a plain call is SSE too...
    let ex = client
        .exchange(
            "tools/call",
            json!({ "name": "prog__echo", "arguments": {} }),
        )
        .await;
    assert!(
        ex.sse,
        "an upstream that streams its answers is mirrored with SSE"
    );
    assert_eq!(ex.status, 200);
    // ...and one that answers plain JSON is mirrored with JSON.
    let mut plain = UpstreamConfig::tools("plain", ["echo"]);
    plain.json_response = true;
    let _plain = gw.upstream("plain", None, plain).await;
    let ex = client
        .exchange(
            "tools/call",
            json!({ "name": "plain__echo", "arguments": {"x": 1} }),
        )
        .await;
    assert_eq!(ex.status, 200);
    assert!(
        !ex.sse,
        "a JSON-answering upstream gives a plain JSON answer"
    );

    // With a progress token: SSE, progress with the client's own token, then the result.
    let ex = client
        .exchange(
            "tools/call",
            json!({ "name": "prog__work", "arguments": {}, "_meta": { "progressToken": "my-token" } }),
        )
        .await;
    assert_eq!(ex.status, 200);
    assert!(ex.sse, "notifications before the response make it SSE");
    let response_id = ex.response_id.clone().unwrap();
    let (stream, last_seq) = parse_id(&response_id);
    assert!(
        stream >= 1,
        "request streams are not the standalone stream 0"
    );
    let progress: Vec<&SseEvent> = ex.events.iter().filter(|e| is_progress(e)).collect();
    assert_eq!(
        progress.len(),
        3,
        "three progress notifications: {:?}",
        ex.events
    );
    for (i, e) in progress.iter().enumerate() {
        assert_eq!(
            e.data["params"]["progressToken"], "my-token",
            "the client's own token is restored: {e:?}"
        );
        assert_eq!(e.data["params"]["progress"], json!((i + 1) as f64));
    }
    let mut seqs = Vec::new();
    for e in &ex.events {
        let (s, n) = parse_id(&e.id);
        assert_eq!(
            s, stream,
            "every event of one response is on its stream: {e:?}"
        );
        seqs.push(n);
    }
    seqs.push(last_seq);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers increase: {seqs:?}"
    );
    // The priming event carries no data, so an SSE parser does not surface it: read the wire.
    let first_block = ex.raw.split("\n\n").next().unwrap_or_default();
    assert!(
        first_block
            .lines()
            .any(|l| l == format!("id: {stream}.0") || l == format!("id:{stream}.0")),
        "the stream starts with a priming event {stream}.0, got {first_block:?} (raw: {:?})",
        ex.raw
    );
    assert_eq!(tool_text(&ex.response["result"]), "done");

    // Drop the connection after the first progress event, then resume with Last-Event-ID.
    let id = client.next_id();
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "prog__work", "arguments": {}, "_meta": { "progressToken": 42 } }
    });
    let mut first_stream = client.post_stream(body).await;
    assert_eq!(first_stream.status, 200);
    let first_progress = loop {
        let e = first_stream
            .next_within(Duration::from_secs(10))
            .await
            .expect("the stream ended before any progress");
        assert!(!is_response_to(&e.data, &id), "response before progress");
        if is_progress(&e) {
            break e;
        }
    };
    assert_eq!(first_progress.data["params"]["progressToken"], 42);
    assert_eq!(first_progress.data["params"]["progress"], json!(1.0));
    drop(first_stream);

    let mut resumed = client.get_stream(Some(&first_progress.id)).await;
    assert_eq!(resumed.status, 200, "GET with Last-Event-ID");
    let (before, last) = resumed.until_response(&id, Duration::from_secs(10)).await;
    let rest: Vec<f64> = before
        .iter()
        .filter(|e| is_progress(e))
        .map(|e| e.data["params"]["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(
        rest,
        [2.0, 3.0],
        "the events after Last-Event-ID, nothing earlier: {before:?}"
    );
    let (s0, n0) = parse_id(&first_progress.id);
    for e in before.iter().chain([&last]) {
        let (s, n) = parse_id(&e.id);
        assert_eq!(s, s0, "resumed events stay on their stream: {e:?}");
        assert!(n > n0, "only events after {}: {e:?}", first_progress.id);
    }
    assert_eq!(tool_text(&last.data["result"]), "done", "{:?}", last.data);
    assert_ping(&client, "a resumed stream").await;
}

#[tokio::test]
async fn gateway_bad_input_gets_the_right_status_and_code() {
    let gw = Gw::start_with(TestServerOptions {
        max_body_bytes: 16 * 1024,
        ..Default::default()
    })
    .await;
    let _up = gw
        .upstream("t", None, UpstreamConfig::tools("t", ["echo"]))
        .await;
    let client = gw.admin_client().await;

    let cases: Vec<(&str, String, u16, i64)> = vec![
        ("not JSON", "{not json".into(), 400, -32700),
        (
            "jsonrpc 1.0",
            json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}).to_string(),
            400,
            -32600,
        ),
        (
            "no jsonrpc",
            json!({"id": 1, "method": "ping"}).to_string(),
            400,
            -32600,
        ),
        (
            "missing method",
            json!({"jsonrpc": "2.0", "id": 1, "params": {}}).to_string(),
            400,
            -32600,
        ),
        (
            "batch",
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string(),
            400,
            -32600,
        ),
        (
            "unknown method",
            json!({"jsonrpc": "2.0", "id": 9, "method": "no/such"}).to_string(),
            200,
            -32601,
        ),
    ];
    for (what, body, status, code) in cases {
        let (got_status, got) = client.raw_post(body, &[]).await;
        assert_eq!(got_status, status, "{what}: {got}");
        assert_eq!(error_code(&got), code, "{what}: {got}");
        assert_eq!(got["jsonrpc"], "2.0", "{what}: {got}");
        assert_ping(&client, what).await;
    }

    // An unknown tool: invalid params naming it.
    let response = client
        .request(
            "tools/call",
            json!({ "name": "nosuch_tool", "arguments": {} }),
        )
        .await;
    assert_eq!(error_code(&response), -32602, "{response}");
    assert_eq!(
        response["error"]["message"], "unknown tool: nosuch_tool",
        "{response}"
    );
    assert_ping(&client, "an unknown tool").await;

    // Over server.max_body_bytes: 413.
    let big = json!({
        "jsonrpc": "2.0", "id": 10, "method": "tools/call",
        "params": { "name": "t__echo", "arguments": { "pad": "x".repeat(32 * 1024) } }
    });
    let (status, body) = client.raw_post(big.to_string(), &[]).await;
    assert_eq!(status, 413, "body over max_body_bytes: {body}");
    assert_ping(&client, "an oversized body").await;

    // Transport headers.
    let ping = json!({"jsonrpc": "2.0", "id": 11, "method": "ping"}).to_string();
    let (status, body) = client
        .raw_post(ping.clone(), &[("accept", "application/json")])
        .await;
    assert_eq!(status, 406, "Accept without text/event-stream: {body}");
    let (status, body) = client
        .raw_post(ping.clone(), &[("content-type", "text/plain")])
        .await;
    assert_eq!(status, 415, "Content-Type text/plain: {body}");
    let (status, body) = client
        .raw_post(ping, &[("mcp-protocol-version", "1999-01-01")])
        .await;
    assert_eq!(status, 400, "unknown MCP-Protocol-Version: {body}");
    assert_ping(&client, "bad transport headers").await;

    // The tool itself still works.
    let result = client
        .result("tools/call", json!({ "name": "t__echo", "arguments": {} }))
        .await;
    assert_eq!(tool_text(&result)["tool"], "echo");
}

#[tokio::test]
async fn gateway_host_guard_refuses_foreign_hosts_with_a_valid_token() {
    let gw = Gw::start().await;
    let mut client = McpClient::new(&gw.server, &gw.admin);
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "x", "version": "0" } }
    })
    .to_string();
    let (status, body) = client
        .raw_post(init.clone(), &[("host", "evil.example.com")])
        .await;
    assert_eq!(status, 403, "Host evil.example.com: {body}");
    let (status, body) = client
        .raw_post(init, &[("origin", "http://evil.example.com")])
        .await;
    assert_eq!(status, 403, "Origin evil.example.com: {body}");
    // The same token with the real host works (the 403 above is the guard's doing).
    client.initialize().await;
    let (status, _) = client
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string(),
            &[("host", "evil.example.com")],
        )
        .await;
    assert_eq!(status, 403, "Host guard applies inside a session too");
    let _: Value = client.result("ping", json!({})).await;
}
