//! reflow's upstream client against 2026-07-28 servers: the era probe and its cache (the rmcp
//! upstream is legacy-only, the Python fixture speaks both eras over Streamable HTTP and only the
//! legacy era over SSE), and legacy clients through the in-process gateway to the modern fixture:
//! lists, calls with `Mcp-Name` / `Mcp-Param-*` headers, the `input_required` bridge, progress
//! and logs on the request stream, and list changes from `subscriptions/listen`.
//! Fixture tests skip, saying so, without REFLOW_FIXTURE_PYTHON / REFLOW_FIXTURE_SERVER.

use std::time::{Duration, Instant};

use reflow::upstream::{
    Era, EraCache, Handshake, HttpTransport, UpstreamConnection, UpstreamError, UpstreamSpec,
};
use serde_json::{Value, json};

use crate::support::fixture::PyFixture;
use crate::support::gw::{Gw, all_tool_names, tool_text};
use crate::support::mcp_client::{EventStream, McpClient};
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

fn spec(url: &str, transport: HttpTransport) -> UpstreamSpec {
    UpstreamSpec {
        name: "t".into(),
        url: url.parse().unwrap(),
        transport,
        headers: Default::default(),
        timeout: Duration::from_secs(10),
        max_message: reflow::upstream::limits::MAX_MESSAGE,
    }
}

fn handshake(capabilities: Value) -> Handshake {
    Handshake {
        protocol_version: reflow::mcp::LATEST_LEGACY_VERSION.into(),
        capabilities,
        client_info: json!({ "name": "reflow-test", "version": "0" }),
    }
}

async fn connect(
    url: &str,
    transport: HttpTransport,
    eras: &EraCache,
) -> std::sync::Arc<UpstreamConnection> {
    let (conn, _rx) = UpstreamConnection::connect_cached(
        spec(url, transport),
        handshake(json!({})),
        reqwest::Client::new(),
        eras,
    )
    .await
    .expect("connect");
    conn
}

// ---------------------------------------------------------------- the probe

#[tokio::test]
async fn probe_finds_legacy_rmcp_fast_and_caches_the_verdict() {
    for json_response in [false, true] {
        let up = UpstreamServer::start(UpstreamConfig {
            json_response,
            ..UpstreamConfig::tools("r", ["echo"])
        })
        .await;
        let eras = EraCache::default();
        let started = Instant::now();
        let conn = connect(&up.url, HttpTransport::Auto, &eras).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the legacy fallback took {:?}",
            started.elapsed()
        );
        assert_eq!(conn.server().era(), Era::Legacy);
        assert_eq!(conn.server().protocol_version, "2025-11-25");
        assert_eq!(conn.server().transport, HttpTransport::StreamableHttp);
        let r = conn
            .request("tools/call", Some(json!({"name": "echo", "arguments": {}})))
            .await
            .expect("a call on the legacy session");
        assert!(r["content"][0]["text"].as_str().unwrap().contains("echo"));
        assert_eq!(eras.probes(), 1);
        assert_eq!(eras.era(&up.url.parse().unwrap()), Some(Era::Legacy));
        let again = connect(&up.url, HttpTransport::Auto, &eras).await;
        assert_eq!(again.server().era(), Era::Legacy);
        assert_eq!(
            eras.probes(),
            1,
            "the second connection used the cached verdict"
        );
        conn.close().await;
        again.close().await;
    }
}

#[tokio::test]
async fn probe_finds_a_modern_rmcp_upstream() {
    // rmcp 3.11 serves 2026-07-28 too: a second, independent modern implementation.
    let up = UpstreamServer::start(UpstreamConfig {
        modern: true,
        json_response: true,
        ..UpstreamConfig::tools("m", ["echo"])
    })
    .await;
    let eras = EraCache::default();
    let conn = connect(&up.url, HttpTransport::Auto, &eras).await;
    assert_eq!(conn.server().era(), Era::Modern);
    let r = conn
        .request(
            "tools/call",
            Some(json!({"name": "echo", "arguments": {"x": 1}})),
        )
        .await
        .expect("a stateless call to rmcp");
    let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["args"], json!({"x": 1}));
    assert_eq!(up.session_count().await, 0, "no session was created");
    assert_eq!(up.calls(), vec!["echo".to_string()]);
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn probe_finds_the_modern_fixture_and_caches_it() {
    let Some(fx) = PyFixture::start("streamable-http").await else {
        return;
    };
    let eras = EraCache::default();
    let conn = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    let server = conn.server();
    assert_eq!(server.era(), Era::Modern);
    assert_eq!(server.protocol_version, "2026-07-28");
    assert_eq!(server.server_info["name"], "reflow-conformance-fixture");
    assert_eq!(server.capabilities["tools"]["listChanged"], true);
    assert!(
        server
            .instructions
            .as_deref()
            .unwrap_or_default()
            .contains("conformance"),
        "instructions from server/discover: {:?}",
        server.instructions
    );
    let r = conn
        .request(
            "tools/call",
            Some(json!({"name": "test_simple_text", "arguments": {}})),
        )
        .await
        .expect("a stateless call");
    assert_eq!(
        r["content"][0]["text"],
        "This is a simple text response for testing."
    );
    assert_eq!(r["resultType"], "complete");
    assert_eq!(eras.probes(), 1);
    let again = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    assert_eq!(again.server().era(), Era::Modern);
    assert_eq!(eras.probes(), 1, "the verdict was cached");
    // Without `sampling` in the handshake the fixture refuses this tool (-32021): the
    // handshake's capabilities are what each request declares.
    let err = again
        .request(
            "tools/call",
            Some(json!({"name": "test_missing_capability", "arguments": {}})),
        )
        .await
        .expect_err("sampling was not declared");
    assert!(
        matches!(&err, UpstreamError::Rpc(e) if e.code == -32021),
        "{err:?}"
    );
    let (with_sampling, _rx) = UpstreamConnection::connect_cached(
        spec(fx.url.as_str(), HttpTransport::Auto),
        handshake(json!({"sampling": {}})),
        reqwest::Client::new(),
        &eras,
    )
    .await
    .unwrap();
    let ok = with_sampling
        .request(
            "tools/call",
            Some(json!({"name": "test_missing_capability", "arguments": {}})),
        )
        .await
        .expect("sampling declared");
    assert_eq!(ok["content"][0]["text"], "The client declared sampling");

    // A dead upstream: the failure closes the connection and forgets the verdict.
    let url = fx.url.clone();
    fx.stop().await;
    let err = conn
        .request("tools/list", None)
        .await
        .expect_err("the fixture is gone");
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    assert!(conn.is_closed(), "a failed modern connection closes itself");
    assert_eq!(eras.era(&url), None, "the verdict is forgotten");
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn probe_falls_back_to_legacy_sse_for_the_fixture_over_sse() {
    let Some(fx) = PyFixture::start("sse").await else {
        return;
    };
    let eras = EraCache::default();
    let started = Instant::now();
    let conn = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(conn.server().era(), Era::Legacy);
    assert_eq!(conn.server().transport, HttpTransport::Sse);
    let again = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    assert_eq!(again.server().transport, HttpTransport::Sse);
    assert_eq!(eras.probes(), 1);
    let r = again
        .request(
            "tools/call",
            Some(json!({"name": "test_simple_text", "arguments": {}})),
        )
        .await
        .unwrap();
    assert_eq!(
        r["content"][0]["text"],
        "This is a simple text response for testing."
    );
}

// ---------------------------------------------------------------- through the gateway

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
async fn header_params_are_learned_when_the_first_call_precedes_any_list() {
    let Some(fx) = PyFixture::start("streamable-http").await else {
        return;
    };
    let (conn, _rx) = UpstreamConnection::connect(
        spec(fx.url.as_str(), HttpTransport::Auto),
        handshake(json!({})),
        reqwest::Client::new(),
    )
    .await
    .unwrap();
    let r = conn
        .request(
            "tools/call",
            Some(json!({"name": "test_header_param", "arguments": {"region": "ap"}})),
        )
        .await
        .expect("the call is retried with the learned header");
    assert_eq!(r["content"][0]["text"], "region=ap");
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

// ---------------------------------------------------------------- the CLI says which era

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn target_test_and_probe_print_the_era() {
    let legacy = UpstreamServer::start(UpstreamConfig::tools("r", ["echo"])).await;
    let db = crate::support::test_db().await;
    let cli = crate::support::cli::Target::of(&db);
    cli.run(&["target", "add", "old", "--url", &legacy.url])
        .await
        .ok();
    let r = cli.run(&["--json", "target", "test", "old"]).await.json();
    assert_eq!(r["era"], "legacy", "{r}");
    assert_eq!(r["protocol_version"], "2025-11-25");
    let Some(fx) = PyFixture::start("streamable-http").await else {
        return;
    };
    cli.run(&["target", "add", "new", "--url", fx.url.as_str()])
        .await
        .ok();
    let r = cli.run(&["--json", "target", "test", "new"]).await.json();
    assert_eq!(r["era"], "modern", "{r}");
    assert_eq!(r["protocol_version"], "2026-07-28");
    assert!(r["counts"]["tools"].as_u64().unwrap() > 20, "{r}");
    let out = cli.run(&["target", "test", "new"]).await;
    out.ok();
    assert!(
        out.stdout.contains("modern, protocol 2026-07-28"),
        "{}",
        out.describe()
    );
    let r = cli
        .run(&[
            "--json",
            "probe",
            fx.url.as_str(),
            "--call",
            "test_simple_text",
        ])
        .await
        .json();
    assert_eq!(r["era"], "modern", "{r}");
    assert_eq!(r["calls"][0]["ok"], true, "{r}");
}

// ---------------------------------------------------------------- cancellation

#[tokio::test]
async fn cancelling_a_modern_request_closes_its_stream() {
    let up = UpstreamServer::start(UpstreamConfig {
        modern: true,
        json_response: true,
        progress_tool: Some("slow".into()),
        progress_steps: 200,
        progress_interval: Duration::from_millis(25),
        ..UpstreamConfig::tools("m", ["echo"])
    })
    .await;
    let (conn, mut rx) = UpstreamConnection::connect(
        spec(&up.url, HttpTransport::Auto),
        handshake(json!({})),
        reqwest::Client::new(),
    )
    .await
    .unwrap();
    assert_eq!(conn.server().era(), Era::Modern);
    let id = conn.next_id();
    let call = {
        let (conn, id) = (conn.clone(), id.clone());
        tokio::spawn(async move {
            conn.request_with_id(
                id,
                "tools/call",
                Some(json!({"name": "slow", "arguments": {}, "_meta": {"progressToken": "tok"}})),
                Duration::from_secs(30),
            )
            .await
        })
    };
    // Running: its progress arrives, tagged with the request.
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let inbound = rx.recv().await.expect("inbound open");
            if inbound.message["method"] == "notifications/progress" {
                return inbound;
            }
        }
    })
    .await
    .expect("progress within 10s");
    assert_eq!(first.related.as_ref(), Some(&id));
    let started = Instant::now();
    conn.notify(
        "notifications/cancelled",
        Some(json!({"requestId": id, "reason": "test"})),
    )
    .await
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("the cancelled call returns at once")
        .unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The stream is closed: at most what was already in flight arrives afterwards.
    while rx.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut late = 0;
    while let Ok(m) = rx.try_recv() {
        if m.message["method"] == "notifications/progress" {
            late += 1;
        }
    }
    assert!(late <= 1, "{late} progress notifications after the cancel");
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
async fn passthrough_hands_input_required_back_for_a_modern_client() {
    let Some(fx) = PyFixture::start("streamable-http").await else {
        return;
    };
    let (conn, _rx) = UpstreamConnection::connect(
        spec(fx.url.as_str(), HttpTransport::Auto),
        handshake(json!({"elicitation": {}})),
        reqwest::Client::new(),
    )
    .await
    .unwrap();
    let call = |params: Value| {
        let conn = conn.clone();
        async move {
            conn.request_passthrough(
                conn.next_id(),
                "tools/call",
                Some(params),
                Duration::from_secs(10),
            )
            .await
        }
    };
    let name = "test_input_required_result_request_state";
    let first = call(json!({"name": name, "arguments": {}})).await.unwrap();
    assert_eq!(first["resultType"], "input_required", "{first}");
    assert_eq!(
        first["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let state = first["requestState"].clone();
    assert!(state.is_string(), "{first}");
    let done = call(json!({"name": name, "arguments": {},
        "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}},
        "requestState": state}))
    .await
    .unwrap();
    assert_eq!(done["resultType"], "complete", "{done}");
    assert!(
        done["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("state-ok"),
        "{done}"
    );
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
