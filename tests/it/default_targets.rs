//! What a user gets from a target added with no options (stateless, shared upstream
//! connections): the client's declared capabilities reach the upstream, a server→client request
//! on a call's stream goes to that call's client and its answer goes back, clients that declared
//! different capabilities get different connections, and every notification sent before a
//! response reaches the client before that response.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::gw::{Gw, tool_text};
use crate::support::mcp_client::{EventStream, McpClient, is_response_to};
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// Registers `up` as target `name` exactly as `reflow target add NAME --url URL` would.
async fn add_default_target(gw: &Gw, name: &str, up: &UpstreamServer) {
    let (status, t) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": name, "url": up.url}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["statefulness"], "stateless", "the default: {t}");
}

#[tokio::test]
async fn a_default_target_relays_elicitation_for_a_legacy_client_that_declared_it() {
    let gw = Gw::start().await;
    let up = UpstreamServer::start(UpstreamConfig {
        elicit_tool: Some("ask".into()),
        ..UpstreamConfig::tools("u1", ["echo"])
    })
    .await;
    add_default_target(&gw, "up", &up).await;

    let mut c = McpClient::new(&gw.server, &gw.admin);
    c.initialize_with(json!({"elicitation": {}})).await;
    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                            "params": {"name": "up__ask", "arguments": {}}}))
        .await;
    // The upstream's question arrives on this call's stream.
    let question = loop {
        let ev = stream
            .next_within(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no elicitation/create; saw {}", stream.raw()));
        if ev.data["method"] == "elicitation/create" {
            break ev.data;
        }
        assert!(
            !is_response_to(&ev.data, &id),
            "answered without asking: {}",
            ev.data
        );
    };
    assert_eq!(question["params"]["message"], "What is the answer?");
    let answer = json!({"jsonrpc": "2.0", "id": question["id"],
                        "result": {"action": "accept", "content": {"answer": "42"}}});
    let (status, _) = c.raw_post(answer.to_string(), &[]).await;
    assert_eq!(status, 202);
    let (_, response) = stream.until_response(&id, Duration::from_secs(10)).await;
    assert_eq!(
        tool_text(&response.data["result"]),
        json!({"action": "accept", "content": {"answer": "42"}}),
        "{}",
        response.data
    );

    // A client that declared nothing reaches the upstream through another connection, one
    // that declares nothing: the upstream knows not to count on elicitation there.
    let mut plain = McpClient::new(&gw.server, &gw.admin);
    plain.initialize().await;
    let r = plain
        .request("tools/call", json!({"name": "up__ask", "arguments": {}}))
        .await;
    assert!(
        r.get("error").is_some() || r["result"]["isError"] == true,
        "without the capability the upstream cannot ask: {r}"
    );
    assert_eq!(
        up.elicitation_declared(),
        [true, false],
        "each connection declared what its client declared"
    );
}

// Several workers, as `reflow serve` runs: the upstream reader and the relay race for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_progress_notification_reaches_the_client_before_the_response() {
    let gw = Gw::start().await;
    let mut cfg = UpstreamConfig::tools("prog", ["echo"]);
    // The last progress is sent right before the response, as real servers do.
    cfg.progress_tool = Some("work".into());
    cfg.progress_steps = 3;
    cfg.progress_interval = Duration::ZERO;
    let up = UpstreamServer::start(cfg).await;
    add_default_target(&gw, "prog", &up).await;
    let mut c = McpClient::new(&gw.server, &gw.admin);
    c.initialize().await;
    for i in 0..100 {
        let ex = c
            .exchange(
                "tools/call",
                json!({"name": "prog__work", "arguments": {}, "_meta": {"progressToken": i}}),
            )
            .await;
        let progress: Vec<&Value> = ex
            .events
            .iter()
            .map(|e| &e.data)
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(
            progress.len(),
            3,
            "call {i}: all three progress notifications before the response: {:?}",
            ex.events
        );
        assert_eq!(progress[2]["params"]["progress"], json!(3.0), "call {i}");
    }
}

/// Calls the log tool as `caller`, then returns the `data` of every log message that reached
/// each listener's standalone stream (the upstream sends them unrelated to the request).
async fn log_round(caller: &McpClient, listeners: &mut [&mut EventStream]) -> Vec<Vec<String>> {
    let r = caller
        .request("tools/call", json!({"name": "up__noisy", "arguments": {}}))
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let mut out = Vec::new();
    for stream in listeners.iter_mut() {
        let mut got = Vec::new();
        // Relayed before the response returned; anything later is not this round's.
        while let Some(ev) = stream.try_next(Duration::from_millis(300)).await {
            if ev.data["method"] == "notifications/message" {
                got.push(
                    ev.data["params"]["data"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
        out.push(got);
    }
    out
}

#[tokio::test]
async fn one_clients_log_level_never_changes_what_another_receives_on_a_shared_connection() {
    let gw = Gw::start().await;
    let up = UpstreamServer::start(UpstreamConfig {
        log_tool: Some("noisy".into()),
        ..UpstreamConfig::tools("u1", ["echo"])
    })
    .await;
    add_default_target(&gw, "up", &up).await;
    let mut quiet = McpClient::new(&gw.server, &gw.admin);
    quiet.initialize().await;
    let mut chatty = McpClient::new(&gw.server, &gw.admin);
    chatty.initialize().await;
    let mut quiet_stream = quiet.get_stream(None).await;
    let mut chatty_stream = chatty.get_stream(None).await;
    let both = ["an info line", "an error line"];
    assert_eq!(
        log_round(&chatty, &mut [&mut quiet_stream, &mut chatty_stream]).await,
        [both, both]
    );

    let r = quiet
        .request("logging/setLevel", json!({"level": "error"}))
        .await;
    assert!(r.get("result").is_some(), "{r}");
    // The client that asked gets errors only; the other, on the same upstream connection,
    // still gets everything.
    assert_eq!(
        log_round(&chatty, &mut [&mut quiet_stream, &mut chatty_stream]).await,
        [vec!["an error line"], both.to_vec()]
    );
    // The shared connection was asked for everything, once, never for the caller's level.
    quiet
        .request("logging/setLevel", json!({"level": "warning"}))
        .await;
    assert_eq!(up.levels_set(), ["debug"]);

    let bad = quiet
        .request("logging/setLevel", json!({"level": "loud"}))
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
}
