//! The era bridge for input: a legacy upstream's elicitation during a 2026-07-28 client's call
//! becomes `input_required` with a sealed `requestState`; the retry with `inputResponses`
//! resumes the parked upstream request (or re-issues it where it is not parked). Tampered,
//! replayed and expired states are refused with -32602 naming the problem.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::gw::{Gw, eventually, tool_text};
use crate::support::mcp_client::{Exchange, ModernClient};
use crate::support::server::{TestServer, TestServerOptions};
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

async fn asking_upstream(gw: &Gw) -> UpstreamServer {
    gw.upstream(
        "up",
        None,
        UpstreamConfig {
            elicit_tool: Some("ask".into()),
            ..UpstreamConfig::tools("u1", ["echo"])
        },
    )
    .await
}

fn eliciting_client(server: &TestServer, token: &str) -> ModernClient {
    ModernClient::new(server, token).with_capabilities(json!({"elicitation": {}}))
}

const ASK: &str = "up__ask";

fn ask_params() -> Value {
    json!({"name": ASK, "arguments": {"topic": "life"}})
}

/// The first round: an `input_required` result; returns (key, requestState).
async fn first_round(c: &ModernClient) -> (String, String) {
    let r = c.result("tools/call", ask_params()).await;
    assert_eq!(r["resultType"], "input_required", "{r}");
    let requests = r["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{r}");
    let (key, request) = requests.iter().next().unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["message"], "What is the answer?");
    let state = r["requestState"]
        .as_str()
        .expect("requestState")
        .to_string();
    (key.clone(), state)
}

async fn retry(c: &ModernClient, key: &str, state: &str, answer: &str) -> Exchange {
    let mut params = ask_params();
    params["inputResponses"] = json!({ key: {"action": "accept", "content": {"answer": answer}} });
    params["requestState"] = json!(state);
    c.exchange("tools/call", params).await
}

fn refusal(ex: &Exchange) -> String {
    assert_eq!(ex.status, 400, "{}", ex.response);
    assert_eq!(ex.response["error"]["code"], -32602, "{}", ex.response);
    ex.response["error"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn modern_input_required_round_trip_resumes_the_parked_call_once() {
    let gw = Gw::start().await;
    let up = asking_upstream(&gw).await;
    let c = eliciting_client(&gw.server, &gw.admin);
    let (key, state) = first_round(&c).await;

    // Tampered: one character changed.
    let mut bad = state.clone().into_bytes();
    let at = bad.len() / 2;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    let message = refusal(&retry(&c, &key, &String::from_utf8(bad).unwrap(), "x").await);
    assert!(message.contains("tampered"), "{message}");
    // Bound to the request: other arguments do not resume it.
    let mut other = ask_params();
    other["arguments"] = json!({"topic": "else"});
    other["inputResponses"] = json!({ &key: {"action": "accept", "content": {"answer": "x"}} });
    other["requestState"] = json!(state);
    let message = refusal(&c.exchange("tools/call", other).await);
    assert!(message.contains("different request"), "{message}");

    let done = retry(&c, &key, &state, "forty-two").await;
    assert_eq!(done.status, 200, "{}", done.response);
    let result = &done.response["result"];
    assert_eq!(result["resultType"], "complete", "{result}");
    assert_eq!(
        tool_text(result),
        json!({"action": "accept", "content": {"answer": "forty-two"}})
    );
    assert_eq!(up.calls(), ["ask"], "resumed, not re-issued");
    assert_eq!(
        up.elicitation_declared(),
        [true],
        "the upstream connection declared the client's elicitation capability"
    );

    let message = refusal(&retry(&c, &key, &state, "again").await);
    assert!(message.contains("already used"), "{message}");
}

#[tokio::test]
async fn modern_expired_request_state_is_refused_and_the_upstream_call_cancelled() {
    let gw = Gw::start_with(TestServerOptions {
        request_state_ttl: Duration::from_millis(500),
        ..TestServerOptions::default()
    })
    .await;
    let up = asking_upstream(&gw).await;
    let c = eliciting_client(&gw.server, &gw.admin);
    let (key, state) = first_round(&c).await;
    // Waiting out the TTL is the point of the test, not a readiness wait.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let message = refusal(&retry(&c, &key, &state, "late").await);
    assert!(message.contains("expired"), "{message}");
    let cancelled = eventually(Duration::from_secs(10), || async {
        let c = up.cancelled();
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(
        cancelled.is_some(),
        "the parked upstream call was not cancelled"
    );
}

#[tokio::test]
async fn modern_retry_where_the_call_is_not_parked_reissues_it_with_the_answers() {
    let gw = Gw::start().await;
    let up = asking_upstream(&gw).await;
    let c = eliciting_client(&gw.server, &gw.admin);
    let (key, state) = first_round(&c).await;

    // Another process on the same database and key: nothing is parked there.
    let Gw { server, admin } = gw;
    let db = server.stop().await;
    let server = TestServer::start_on(db, TestServerOptions::default()).await;
    let c = eliciting_client(&server, &admin);
    let done = retry(&c, &key, &state, "from-elsewhere").await;
    assert_eq!(done.status, 200, "{}", done.response);
    assert_eq!(
        tool_text(&done.response["result"]),
        json!({"action": "accept", "content": {"answer": "from-elsewhere"}})
    );
    assert_eq!(up.calls(), ["ask", "ask"], "re-issued upstream");
}
