//! MCP 2026-07-28 streams on `/mcp`: `subscriptions/listen` (list changes by filter, resource
//! updates, the per-user stream cap), log messages on a request's stream, and cancellation by
//! closing the request's stream.

use std::time::Duration;

use serde_json::{Value, json};

use super::tool_names;
use crate::support::gw::{Gw, eventually};
use crate::support::mcp_client::ModernClient;
use crate::support::upstream::UpstreamConfig;

#[tokio::test]
async fn modern_listen_acknowledges_then_relays_list_changes_by_filter() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                change_tool: Some("change".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let (tools_id, mut tools_stream) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    assert_eq!(tools_stream.status, 200);
    assert!(tools_stream.content_type.starts_with("text/event-stream"));
    let ack = tools_stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("an acknowledgement");
    assert_eq!(
        ack.data["method"],
        "notifications/subscriptions/acknowledged"
    );
    assert_eq!(
        ack.data["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack.data["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        tools_id
    );
    let (_, mut prompts_stream) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"promptsListChanged": true}}),
        )
        .await;
    let ack = prompts_stream
        .next_within(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        ack.data["params"]["notifications"],
        json!({"promptsListChanged": true})
    );

    assert_eq!(
        tool_names(&c.result("tools/list", json!({})).await),
        ["up__change", "up__echo"]
    );
    c.result("tools/call", json!({"name": "up__change", "arguments": {}}))
        .await;
    let changed = tools_stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("a list_changed");
    assert_eq!(changed.data["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed.data["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        tools_id
    );
    assert!(
        prompts_stream
            .try_next(Duration::from_millis(300))
            .await
            .is_none(),
        "a prompts-only listener gets no tool changes"
    );
    // The change reached the list cache too.
    assert_eq!(
        tool_names(&c.result("tools/list", json!({})).await),
        ["up__added_tool", "up__change", "up__echo"]
    );
}

#[tokio::test]
async fn modern_closing_the_stream_cancels_the_upstream_request() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                progress_tool: Some("slow".into()),
                progress_steps: 50,
                progress_interval: Duration::from_millis(100),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let (_, mut stream) = c
        .stream(
            "tools/call",
            json!({"name": "up__slow", "arguments": {}, "_meta": {"progressToken": "p-1"}}),
        )
        .await;
    assert!(stream.content_type.starts_with("text/event-stream"));
    let progress = stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("progress first");
    assert_eq!(progress.data["method"], "notifications/progress");
    assert_eq!(progress.data["params"]["progressToken"], "p-1");
    drop(stream);
    let cancelled = eventually(Duration::from_secs(10), || async {
        let c = up.cancelled();
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(cancelled.is_some(), "the upstream saw no cancellation");
    assert_eq!(up.calls(), ["slow"]);
    // The gateway is fine afterwards.
    assert_eq!(
        tool_names(&c.result("tools/list", json!({})).await),
        ["up__echo", "up__slow"]
    );
}

#[tokio::test]
async fn modern_log_messages_reach_the_request_stream_only_at_the_requested_level() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                log_tool: Some("noisy".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    // No logLevel in _meta: no log messages at all, so a plain JSON answer.
    let quiet = c
        .exchange("tools/call", json!({"name": "up__noisy", "arguments": {}}))
        .await;
    assert_eq!((quiet.status, quiet.sse), (200, false), "{quiet:?}");
    assert_eq!(quiet.response["result"]["content"][0]["text"], "logged");
    // logLevel warning: the error line on the request's stream, not the info line.
    let loud = c
        .exchange(
            "tools/call",
            json!({"name": "up__noisy", "arguments": {},
                   "_meta": {"io.modelcontextprotocol/logLevel": "warning"}}),
        )
        .await;
    assert!(loud.sse, "{loud:?}");
    let logs: Vec<&Value> = loud
        .events
        .iter()
        .map(|e| &e.data)
        .filter(|d| d["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 1, "{:?}", loud.events);
    assert_eq!(logs[0]["params"]["level"], "error");
    assert_eq!(loud.response["result"]["resultType"], "complete");
}

#[tokio::test]
async fn modern_listen_relays_updates_of_subscribed_resources_only() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                resources: vec![("file:///watched.txt".into(), "v1".into())],
                touch_tool: Some("touch".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let listed = c.result("resources/list", json!({})).await;
    let uri = listed["resources"][0]["uri"].as_str().unwrap().to_string();
    let (id, mut stream) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [uri, "nope+file:///x"]}}),
        )
        .await;
    let ack = stream.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        ack.data["params"]["notifications"],
        json!({"resourceSubscriptions": [uri]}),
        "only what the caller may read is honoured"
    );
    assert_eq!(up.subscribed(), ["file:///watched.txt"]);
    c.result("tools/call", json!({"name": "up__touch", "arguments": {}}))
        .await;
    let updated = stream.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(updated.data["method"], "notifications/resources/updated");
    assert_eq!(updated.data["params"]["uri"], uri.as_str());
    assert_eq!(
        updated.data["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        id
    );
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_listen_streams() {
    let gw = Gw::start().await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let mut open = Vec::new();
    for _ in 0..32 {
        let (_, mut s) = c
            .stream(
                "subscriptions/listen",
                json!({"notifications": {"toolsListChanged": true}}),
            )
            .await;
        let ack = s.next_within(Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            ack.data["method"],
            "notifications/subscriptions/acknowledged"
        );
        open.push(s);
    }
    let refused = c
        .exchange(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    let text = refused.response.to_string();
    assert!(text.contains("session.max_streams_per_user"), "{text}");
    // Another user is not affected; closing one stream makes room again.
    let (bob, _) = gw
        .server
        .register("bob@example.com", crate::support::gw::PW)
        .await;
    let (_, mut theirs) = ModernClient::new(&gw.server, &bob)
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    assert!(theirs.next_within(Duration::from_secs(10)).await.is_some());
    drop(open.pop());
    let again = crate::support::gw::eventually(Duration::from_secs(5), || async {
        let (_, mut s) = c
            .stream(
                "subscriptions/listen",
                json!({"notifications": {"toolsListChanged": true}}),
            )
            .await;
        let first = s.next_within(Duration::from_secs(5)).await?;
        (first.data["method"] == "notifications/subscriptions/acknowledged").then_some(s)
    })
    .await;
    assert!(again.is_some(), "a closed stream's slot is free again");
}
