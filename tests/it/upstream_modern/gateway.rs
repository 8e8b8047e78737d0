//! Clients through the in-process gateway to the modern fixture: lists, calls with `Mcp-Name` /
//! `Mcp-Param-*` headers, the `input_required` bridge (legacy elicitation, or the modern client
//! answering itself), sampling, progress and logs on the request stream, and list changes from
//! `subscriptions/listen`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::fixture::PyFixture;
use crate::support::gw::{Gw, all_tool_names, tool_text};
use crate::support::mcp_client::{EventStream, McpClient};

/// A gateway with the modern fixture as target `fx` (empty prefix: names pass unchanged).
async fn gateway_with_fixture() -> Option<(Gw, PyFixture)> {
    let fx = PyFixture::start("streamable-http").await?;
    let gw = Gw::start().await;
    gw.add_target("fx", fx.url.as_str(), Some(""), 20).await;
    Some((gw, fx))
}

async fn client(gw: &Gw, capabilities: Value) -> McpClient {
    let mut c = McpClient::new(&gw.server, &gw.admin);
    c.initialize_with(capabilities).await;
    c
}

/// Reads a request stream to its response; answers server→client requests with `answer`.
async fn drive(
    c: &McpClient,
    stream: &mut EventStream,
    id: &Value,
    mut answer: impl FnMut(&Value) -> Value,
) -> (Vec<Value>, Value) {
    let mut seen = Vec::new();
    loop {
        let ev = stream
            .next_within(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("the stream ended before the response; saw {seen:?}"));
        let msg = ev.data;
        if msg.is_null() {
            continue;
        }
        if msg.get("method").is_none() && msg.get("id") == Some(id) {
            return (seen, msg);
        }
        if let (Some(rid), Some(_)) = (msg.get("id"), msg.get("method")) {
            let reply = json!({"jsonrpc": "2.0", "id": rid, "result": answer(&msg)});
            let (status, body) = c.raw_post(reply.to_string(), &[]).await;
            assert!(
                status == 202 || status == 200,
                "answer refused: {status} {body}"
            );
        }
        seen.push(msg);
    }
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn legacy_client_lists_calls_reads_and_gets_prompts_on_a_modern_upstream() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = client(&gw, json!({})).await;
    let tools = all_tool_names(&c).await;
    for t in [
        "test_simple_text",
        "test_header_param",
        "test_input_required_result_elicitation",
    ] {
        assert!(tools.contains(&t.to_string()), "{t} missing from {tools:?}");
    }
    let r = c
        .result(
            "tools/call",
            json!({"name": "test_simple_text", "arguments": {}}),
        )
        .await;
    assert_eq!(
        tool_text(&r),
        json!("This is a simple text response for testing.")
    );
    assert!(
        r.get("resultType").is_none(),
        "no 2026-07-28 member in a legacy result: {r}"
    );
    // The fixture rejects a call whose Mcp-Param-Region header is missing or differs (-32020):
    // success proves reflow mirrored the x-mcp-header argument.
    let r = c
        .result(
            "tools/call",
            json!({"name": "test_header_param", "arguments": {"region": "eu-west"}}),
        )
        .await;
    assert_eq!(tool_text(&r), json!("region=eu-west"));
    let r = c
        .result(
            "tools/call",
            json!({"name": "test_header_param", "arguments": {"region": " ünïcode "}}),
        )
        .await;
    assert_eq!(tool_text(&r), json!("region= ünïcode "));
    let r = c
        .result("resources/read", json!({"uri": "test://static-text"}))
        .await;
    assert_eq!(
        r["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let r = c
        .result(
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
        )
        .await;
    assert_eq!(
        r["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='a', arg2='b'"
    );
    // logging/setLevel is gone in 2026-07-28: reflow keeps the level and answers for it.
    let r = c
        .request("logging/setLevel", json!({"level": "info"}))
        .await;
    assert!(r.get("result").is_some(), "{r}");
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn input_required_becomes_an_elicitation_on_the_legacy_stream() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = client(&gw, json!({"elicitation": {}})).await;
    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "test_input_required_result_elicitation", "arguments": {}}}))
        .await;
    let (seen, response) = drive(&c, &mut stream, &id, |req| {
        assert_eq!(req["method"], "elicitation/create");
        assert_eq!(req["params"]["message"], "What is your name?");
        json!({"action": "accept", "content": {"name": "Alice"}})
    })
    .await;
    assert_eq!(
        seen.iter()
            .filter(|m| m["method"] == "elicitation/create")
            .count(),
        1,
        "{seen:?}"
    );
    assert_eq!(
        response["result"]["content"][0]["text"], "Hello, Alice! (action=accept)",
        "{response}"
    );

    // Two rounds with evolving requestState, and several inputs in one round.
    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "test_input_required_result_multi_round", "arguments": {}}}))
        .await;
    let (seen, response) = drive(&c, &mut stream, &id, |req| {
        let msg = req["params"]["message"].as_str().unwrap();
        if msg.starts_with("Step 1") {
            json!({"action": "accept", "content": {"name": "Bob"}})
        } else {
            json!({"action": "accept", "content": {"color": "green"}})
        }
    })
    .await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        response["result"]["content"][0]["text"],
        "Multi-round complete: color=green"
    );
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn input_required_without_the_client_capability_fails_clearly() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = client(&gw, json!({})).await;
    let started = Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({"name": "test_input_required_result_elicitation", "arguments": {}}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("elicitation"),
        "the error names the missing capability: {r}"
    );
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn progress_and_logs_reach_the_legacy_request_stream() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = client(&gw, json!({})).await;
    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "test_tool_with_progress", "arguments": {},
                       "_meta": {"progressToken": "p-1"}}}))
        .await;
    let (seen, response) = drive(&c, &mut stream, &id, |_| json!({})).await;
    let progress: Vec<&Value> = seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{seen:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-1")
    );
    assert_eq!(progress[2]["params"]["progress"], 100);
    assert_eq!(
        response["result"]["content"][0]["text"],
        "Tool with progress executed successfully"
    );

    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "test_tool_with_logging", "arguments": {}}}))
        .await;
    let (seen, _) = drive(&c, &mut stream, &id, |_| json!({})).await;
    let logs: Vec<&Value> = seen
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 3, "{seen:?}");
    assert_eq!(logs[0]["params"]["data"], "Tool execution started");
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn list_changes_from_subscriptions_listen_reach_the_legacy_client() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = client(&gw, json!({})).await;
    let before = all_tool_names(&c).await;
    assert!(!before.iter().any(|t| t.starts_with("test_dynamic_tool")));
    let mut standalone = c.get_stream(None).await;
    assert_eq!(standalone.status, 200);
    // The listen stream opens in the background: trigger until a change is announced.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut announced = None;
    'trigger: while Instant::now() < deadline {
        let r = c
            .result(
                "tools/call",
                json!({"name": "test_trigger_tool_change", "arguments": {}}),
            )
            .await;
        assert!(tool_text(&r).to_string().contains("Added tool"), "{r}");
        while let Some(ev) = standalone.try_next(Duration::from_millis(500)).await {
            if ev.data["method"] == "notifications/tools/list_changed" {
                announced = Some(ev.data);
                break 'trigger;
            }
        }
    }
    let announced = announced.expect("notifications/tools/list_changed on the standalone stream");
    assert!(
        announced["params"]["_meta"]
            .get("io.modelcontextprotocol/subscriptionId")
            .is_none(),
        "the listen tag is not passed on: {announced}"
    );
    let after = all_tool_names(&c).await;
    assert!(
        after.iter().any(|t| t.starts_with("test_dynamic_tool_")),
        "the new list: {after:?}"
    );
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn sampling_and_subscriptions_cross_the_era_bridge() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = client(&gw, json!({"sampling": {}})).await;
    let id = c.next_id();
    let mut stream = c
        .post_stream(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "test_sampling", "arguments": {"prompt": "Capital of France?"}}}))
        .await;
    let (seen, response) = drive(&c, &mut stream, &id, |req| {
        assert_eq!(req["method"], "sampling/createMessage");
        assert_eq!(
            req["params"]["messages"][0]["content"]["text"],
            "Capital of France?"
        );
        json!({"role": "assistant", "content": {"type": "text", "text": "Paris"},
               "model": "test-model", "stopReason": "endTurn"})
    })
    .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        response["result"]["content"][0]["text"], "LLM response: Paris",
        "{response}"
    );
    // resources/subscribe is gone in 2026-07-28: reflow serves it with the listen stream.
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        let r = c
            .request(method, json!({"uri": "test://watched-resource"}))
            .await;
        assert_eq!(r["result"], json!({}), "{method}: {r}");
    }
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn a_modern_client_answers_a_modern_upstreams_input_required_itself() {
    use crate::support::mcp_client::ModernClient;
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let modern =
        ModernClient::new(&gw.server, &gw.admin).with_capabilities(json!({"elicitation": {}}));
    let call = json!({"name": "test_input_required_result_elicitation", "arguments": {}});
    let first = modern.result("tools/call", call.clone()).await;
    assert_eq!(first["resultType"], "input_required", "{first}");
    assert_eq!(
        first["inputRequests"]["user_name"]["method"], "elicitation/create",
        "the upstream's own keys reach the client: {first}"
    );
    let state = first["requestState"]
        .as_str()
        .expect("a requestState")
        .to_string();

    let mut retry = call.clone();
    retry["inputResponses"] =
        json!({"user_name": {"action": "accept", "content": {"name": "Alice"}}});
    let mut tampered = retry.clone();
    tampered["requestState"] = json!(format!("{state}x"));
    let refused = modern.exchange("tools/call", tampered).await;
    assert_eq!(
        refused.response["error"]["code"], -32602,
        "a tampered state is refused: {:?}",
        refused.response
    );

    retry["requestState"] = json!(state);
    let done = modern.result("tools/call", retry.clone()).await;
    assert_eq!(done["resultType"], "complete", "{done}");
    assert!(
        tool_text(&done).to_string().contains("Hello, Alice!"),
        "the upstream used the client's answer: {done}"
    );
    let replayed = modern.exchange("tools/call", retry).await;
    assert_eq!(
        replayed.response["error"]["code"], -32602,
        "a used state is refused: {:?}",
        replayed.response
    );
}
