//! Two `reflow serve` processes on one database: tokens, targets and sessions made on one
//! replica work on the other (DESIGN §5). Postgres when `REFLOW_TEST_POSTGRES_URL` is set (CI),
//! else one SQLite file.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::Target as CliTarget;
use crate::support::db::{TestDb, postgres, sqlite};
use crate::support::gw::{PW, eventually, tool_text};
use crate::support::mcp_client::{McpClient, ModernClient};
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// A spawned `reflow serve --port 0`, killed when dropped.
struct Replica {
    base: String,
    _child: tokio::process::Child,
}

impl Replica {
    async fn start(db: &CliTarget) -> Self {
        let (child, base) = db.serve().await;
        Self {
            base,
            _child: child,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request to replica");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

async fn shared_db() -> TestDb {
    match postgres().await {
        Some(db) => db,
        None => {
            eprintln!("replicas: REFLOW_TEST_POSTGRES_URL unset, sharing one SQLite file instead");
            sqlite().await
        }
    }
}

#[tokio::test]
async fn two_replicas_share_tokens_targets_and_sessions_and_serve_any_modern_request() {
    let up = UpstreamServer::start(UpstreamConfig {
        elicit_tool: Some("ask".into()),
        ..UpstreamConfig::tools("one", ["echo"])
    })
    .await;
    let db = shared_db().await;
    let target = CliTarget::of(&db);
    // The first replica creates the data dir's JWT secret and key; the second reads them.
    let a = Replica::start(&target).await;
    let b = Replica::start(&target).await;

    let (status, registered) = a
        .post(
            "/api/auth/register",
            None,
            json!({"email": "admin@example.com", "password": PW}),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let (status, login) = b
        .post(
            "/api/auth/login",
            None,
            json!({"email": "admin@example.com", "password": PW}),
        )
        .await;
    assert_eq!(status, 200, "the user made on A logs in on B: {login}");
    let token = login["token"].as_str().expect("token").to_string();

    let (status, created) = a
        .post(
            "/api/targets",
            Some(&token),
            json!({"name": "one", "url": up.url, "statefulness": "stateful", "timeout": 10}),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    // A target added through A reaches B's snapshot within its revision poll.
    let mut on_b = McpClient::at(&b.base, &token);
    on_b.initialize().await;
    let seen = eventually(Duration::from_secs(10), || async {
        let tools = on_b.result("tools/list", json!({})).await;
        (tools["tools"][0]["name"] == "one__echo").then_some(tools)
    })
    .await;
    assert!(seen.is_some(), "B lists the target created on A");

    // A legacy session made on A continues on B, and back.
    let mut on_a = McpClient::at(&a.base, &token);
    let session = on_a.initialize().await;
    let first = on_a
        .result(
            "tools/call",
            json!({"name": "one__echo", "arguments": {"text": "from A"}}),
        )
        .await;
    assert!(tool_text(&first).to_string().contains("from A"), "{first}");
    let mut moved = McpClient::at(&b.base, &token);
    moved.session = Some(session.clone());
    let second = moved
        .result(
            "tools/call",
            json!({"name": "one__echo", "arguments": {"text": "on B"}}),
        )
        .await;
    assert!(
        tool_text(&second).to_string().contains("on B"),
        "session {session} made on A answers on B: {second}"
    );
    assert_eq!(moved.delete().await, 204, "B ends the session");
    let ended_on_a = eventually(Duration::from_secs(10), || async {
        let ping = json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}).to_string();
        let (status, _) = on_a.raw_post(ping, &[]).await;
        (status == 404).then_some(())
    })
    .await;
    assert!(
        ended_on_a.is_some(),
        "A answers 404 for the session B ended"
    );

    // A 2026-07-28 client needs no session: alternating between the replicas, every request is
    // answered, and both replicas give the same list.
    let modern = [&a, &b].map(|r| ModernClient {
        inner: McpClient::at(&r.base, &token),
        capabilities: json!({}),
    });
    let mut lists = Vec::new();
    for (turn, client) in modern.iter().cycle().take(6).enumerate() {
        let list = client.result("tools/list", json!({})).await;
        lists.push(list["tools"].clone());
        let text = format!("turn {turn}");
        let called = client
            .result(
                "tools/call",
                json!({"name": "one__echo", "arguments": {"text": text}}),
            )
            .await;
        assert!(
            tool_text(&called).to_string().contains(&text),
            "turn {turn} on {}: {called}",
            client.inner.base
        );
    }
    assert!(
        lists.windows(2).all(|w| w[0] == w[1]) && lists[0][0]["name"] == "one__echo",
        "both replicas list the same tools: {lists:?}"
    );

    // An input round started on A, answered on B (which re-issues the call), cannot be
    // replayed on A, where the first round is still parked.
    let [on_a, on_b] = [&a, &b].map(|r| ModernClient {
        inner: McpClient::at(&r.base, &token),
        capabilities: json!({"elicitation": {}}),
    });
    let ask = json!({"name": "one__ask", "arguments": {"topic": "replicas"}});
    let first = on_a.result("tools/call", ask.clone()).await;
    assert_eq!(first["resultType"], "input_required", "{first}");
    let key = first["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let mut retry = ask.clone();
    retry["inputResponses"] = json!({ key: {"action": "accept", "content": {"answer": "42"}} });
    retry["requestState"] = first["requestState"].clone();
    let done = on_b.result("tools/call", retry.clone()).await;
    assert!(
        tool_text(&done).to_string().contains("42"),
        "B completes the call with the answer: {done}"
    );
    let replayed = on_a.exchange("tools/call", retry).await;
    assert_eq!(
        replayed.response["error"]["code"], -32602,
        "a state used on B is a replay on A: {:?}",
        replayed.response
    );
}
