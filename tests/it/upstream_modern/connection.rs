//! One upstream connection to a 2026-07-28 server, without the gateway: `Mcp-Param-*` headers
//! learned on a first call, cancellation closing the request's stream, and `input_required`
//! handed back in passthrough.

use std::time::{Duration, Instant};

use reflow::upstream::{Era, HttpTransport, UpstreamConnection};
use serde_json::{Value, json};

use super::{handshake, spec};
use crate::support::fixture::PyFixture;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

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
