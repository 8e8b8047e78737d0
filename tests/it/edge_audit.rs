//! Every MCP message that reaches `/mcp` leaves an audit row, also those the endpoint answers
//! itself: `initialize`, notifications, and requests refused for bad input, an unsupported
//! version or an unknown session, each with its reason.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::gw::{Gw, eventually};
use crate::support::mcp_client::{McpClient, ModernClient};

async fn rows(gw: &Gw, want: usize) -> Vec<Value> {
    gw.audit_rows("limit=100", want).await
}

fn find<'a>(rows: &'a [Value], method: &str, error_has: &str) -> &'a Value {
    rows.iter()
        .find(|r| {
            r["method"] == method && r["error"].as_str().unwrap_or_default().contains(error_has)
        })
        .unwrap_or_else(|| panic!("no {method} row with {error_has:?}: {rows:#?}"))
}

#[tokio::test]
async fn initialize_notifications_and_refusals_are_audited_with_their_reason() {
    let gw = Gw::start().await;
    let mut c = McpClient::new(&gw.server, &gw.admin);
    let session = c.initialize().await; // initialize + notifications/initialized

    // Refused: no session, an unknown session, malformed JSON, an unsupported version.
    let list = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).to_string();
    let (status, _) = c.raw_post_without_session(list.clone()).await;
    assert_eq!(status, 400);
    let mut stranger = McpClient::new(&gw.server, &gw.admin);
    stranger.session = Some("0".repeat(32));
    let (status, _) = stranger.raw_post(list.clone(), &[]).await;
    assert_eq!(status, 404);
    let (status, _) = c.raw_post("{not json", &[]).await;
    assert_eq!(status, 400);
    let (status, _) = c
        .raw_post(list.clone(), &[("mcp-protocol-version", "1999-01-01")])
        .await;
    assert_eq!(status, 400);
    // The 2026 era: a notification is acknowledged, a request without its envelope refused.
    let modern = ModernClient::new(&gw.server, &gw.admin);
    let (status, _) = modern
        .inner
        .raw_post_without_session(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 1, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 202);

    let rows = rows(&gw, 7).await;
    let init = rows
        .iter()
        .find(|r| r["method"] == "initialize")
        .expect("an initialize row");
    assert_eq!(init["decision"], "allow");
    assert_eq!(init["response_status"], 0);
    assert_eq!(init["session_id"], session);
    assert!(
        init["trace_id"].as_str().is_some_and(|t| t.len() == 32),
        "{init}"
    );
    let initialized = rows
        .iter()
        .find(|r| r["method"] == "notifications/initialized")
        .expect("a notifications/initialized row");
    assert_eq!(initialized["decision"], "allow");
    assert_eq!(initialized["session_id"], session);
    let missing = find(&rows, "tools/list", "HTTP 400: missing Mcp-Session-Id");
    assert_eq!(missing["decision"], "deny");
    assert_eq!(missing["response_status"], -32600);
    let gone = find(&rows, "tools/list", "HTTP 404");
    assert_eq!(gone["decision"], "deny");
    let parse = find(&rows, "(none)", "parse error");
    assert_eq!(parse["response_status"], -32700);
    find(&rows, "tools/list", "unsupported MCP-Protocol-Version");
    let cancelled = rows
        .iter()
        .find(|r| r["method"] == "notifications/cancelled")
        .expect("the 2026 notification's row");
    assert_eq!(cancelled["decision"], "allow");
    assert!(
        rows.iter().all(|r| r["user_id"].is_string()),
        "every row names the caller"
    );
}

#[tokio::test]
async fn the_2026_requests_the_endpoint_answers_itself_are_audited() {
    let gw = Gw::start().await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let discovered = c.result("server/discover", json!({})).await;
    assert!(discovered["supportedVersions"].is_array(), "{discovered}");
    let (_, mut listen) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    assert_eq!(listen.status, 200);
    listen
        .next_within(Duration::from_secs(10))
        .await
        .expect("the acknowledgement");
    // A malformed subscription is refused, with the reason on its row.
    let refused = c
        .exchange("subscriptions/listen", json!({"notifications": "all"}))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.response);

    let rows = rows(&gw, 3).await;
    let discover = rows
        .iter()
        .find(|r| r["method"] == "server/discover")
        .unwrap_or_else(|| panic!("no server/discover row: {rows:#?}"));
    assert_eq!(discover["decision"], "allow");
    assert!(discover["user_id"].is_string(), "{discover}");
    let listened = rows
        .iter()
        .find(|r| r["method"] == "subscriptions/listen" && r["decision"] == "allow")
        .unwrap_or_else(|| panic!("no subscriptions/listen row: {rows:#?}"));
    assert_eq!(listened["response_status"], 0);
    let bad = find(&rows, "subscriptions/listen", "must be an object");
    assert_eq!(
        (&bad["decision"], &bad["response_status"]),
        (&json!("deny"), &json!(-32602))
    );
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_one_row_a_second_with_its_count_and_a_json_rpc_error() {
    let gw = Gw::start().await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let mut seen = 0;
    for token in [Some("not-a-jwt"), None] {
        for _ in 0..25 {
            let mut req = gw.server.http.post(gw.server.url("/mcp")).json(&list);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401);
            let challenge = res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(challenge.contains("resource_metadata="), "{challenge}");
            assert_eq!(
                challenge.contains(r#"error="invalid_token""#),
                token.is_some(),
                "{challenge}"
            );
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["jsonrpc"], "2.0", "{body}");
            assert_eq!(body["error"]["code"], -32600, "{body}");
            seen += 1;
        }
    }
    assert_eq!(seen, 50);
    // Two reasons (a bad token, none at all): a row each per second they span, with counts
    // adding up to what was refused.
    let counted = eventually(Duration::from_secs(5), || async {
        let (_, rows) = gw
            .server
            .get(
                "/api/logs?method=(unauthenticated)&limit=100",
                Some(&gw.admin),
            )
            .await;
        let rows = rows.as_array().cloned().unwrap_or_default();
        let total: u64 = rows
            .iter()
            .map(|r| {
                let e = r["error"].as_str().unwrap_or_default();
                let n = e.split("; ").nth(1).and_then(|t| t.split(' ').next());
                n.and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
            })
            .sum();
        (total == 50).then_some(rows)
    })
    .await
    .expect("the 50 refusals are counted in the audit log");
    assert!(
        counted.len() <= 4,
        "one row per reason per second: {counted:#?}"
    );
    for r in &counted {
        assert_eq!(r["decision"], "deny");
        assert!(r["user_id"].is_null(), "{r}");
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains("from 127.0.0.1 to /mcp"),
            "{r}"
        );
    }
}

#[tokio::test]
async fn refusals_on_the_legacy_message_endpoint_are_audited_with_their_reason() {
    let gw = Gw::start().await;
    let post = |query: &str, body: String| {
        gw.server
            .http
            .post(gw.server.url(&format!("/message{query}")))
            .bearer_auth(&gw.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    assert_eq!(post("", ping.clone()).await.unwrap().status(), 400);
    assert_eq!(post("?session_id=nope", ping).await.unwrap().status(), 404);
    let rows = rows(&gw, 2).await;
    let missing = find(&rows, "(none)", "HTTP 400: missing session_id");
    assert_eq!(missing["decision"], "deny");
    let gone = find(&rows, "ping", "HTTP 404");
    assert_eq!(gone["decision"], "deny");
}

/// Reads one HTTP/1.1 response head (lower-cased) from `tcp`.
async fn response_head(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

/// Found by the soak: a 401 answered before the body arrived closed the keep-alive connection
/// without saying so, and the client's next request on it failed. Now the refusal says
/// `Connection: close`; an answer that read its body keeps the connection.
#[tokio::test]
async fn a_refusal_before_the_body_is_read_says_connection_close() {
    use tokio::io::AsyncWriteExt;
    let gw = Gw::start().await;
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}}).to_string();
    let head = |token: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
    };
    // The head alone: the gateway refuses the token before any byte of the body.
    let mut tcp = tokio::net::TcpStream::connect(gw.server.addr)
        .await
        .unwrap();
    tcp.write_all(head("not-a-token").as_bytes()).await.unwrap();
    let refused = response_head(&mut tcp).await;
    assert!(refused.starts_with("http/1.1 401"), "{refused}");
    assert!(refused.contains("connection: close"), "{refused}");
    // A request whose body was read keeps the connection.
    let mut tcp = tokio::net::TcpStream::connect(gw.server.addr)
        .await
        .unwrap();
    let admin = head(&gw.admin);
    tcp.write_all(format!("{admin}{body}").as_bytes())
        .await
        .unwrap();
    let answered = response_head(&mut tcp).await;
    assert!(!answered.contains("connection: close"), "{answered}");
}

/// `GET /mcp` (a stream), `DELETE /mcp` (a session's end) and `GET /sse` are requests too: each
/// leaves a row, served or refused, its method naming the HTTP request.
#[tokio::test]
async fn streams_opened_and_sessions_ended_are_audited() {
    let gw = Gw::start().await;
    let mut c = McpClient::new(&gw.server, &gw.admin);
    let session = c.initialize().await;
    let http = reqwest::Client::new();
    let url = format!("{}/mcp", gw.server.base);
    let get = |session: &str, accept: &str| {
        http.get(&url)
            .bearer_auth(&gw.admin)
            .header("mcp-session-id", session)
            .header("accept", accept)
            .send()
    };

    let opened = get(&session, "text/event-stream").await.unwrap();
    assert_eq!(opened.status(), 200);
    drop(opened);
    let not_sse = get(&session, "application/json").await.unwrap();
    assert_eq!(not_sse.status(), 406);
    let unknown = get(&"0".repeat(32), "text/event-stream").await.unwrap();
    assert_eq!(unknown.status(), 404);
    let no_session = http
        .delete(&url)
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(no_session.status(), 400);
    assert_eq!(c.delete().await, 204);
    assert_eq!(c.delete().await, 404, "the session has ended");
    let sse = http
        .get(format!("{}/sse", gw.server.base))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);

    // initialize, notifications/initialized, and the seven above.
    let rows = rows(&gw, 9).await;
    let of =
        |method: &str| -> Vec<&Value> { rows.iter().filter(|r| r["method"] == method).collect() };
    let gets = of("GET /mcp");
    assert_eq!(gets.len(), 3, "{rows:#?}");
    let served = gets
        .iter()
        .find(|r| r["decision"] == "allow")
        .expect("the stream opened");
    assert_eq!(served["session_id"], session);
    assert_eq!(served["response_status"], 0);
    for (method, http_status) in [
        ("GET /mcp", 406),
        ("GET /mcp", 404),
        ("DELETE /mcp", 400),
        ("DELETE /mcp", 404),
    ] {
        let row = find(&rows, method, &format!("HTTP {http_status}: "));
        assert_eq!(row["decision"], "deny", "{row}");
    }
    let deletes = of("DELETE /mcp");
    assert_eq!(deletes.len(), 3, "{rows:#?}");
    let ended = deletes
        .iter()
        .find(|r| r["decision"] == "allow")
        .expect("the session ended");
    assert_eq!(ended["session_id"], session);
    let legacy = of("GET /sse");
    assert_eq!(legacy.len(), 1, "{rows:#?}");
    assert_eq!(legacy[0]["decision"], "allow");
    assert!(
        legacy[0]["session_id"]
            .as_str()
            .is_some_and(|s| s.len() == 32 && s != session),
        "the legacy stream's own new session: {}",
        legacy[0]
    );
    assert!(rows.iter().all(|r| r["user_id"].is_string()), "{rows:#?}");
}
