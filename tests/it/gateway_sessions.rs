//! Session persistence and recycling: a session survives a gateway restart (any replica can
//! resume it), and a change of the user's role or groups recycles it with 404.

use reqwest::Method;
use serde_json::json;

use crate::support::TestServerOptions;
use crate::support::gw::{Gw, PW};
use crate::support::mcp_client::McpClient;
use crate::support::server::TestServer;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

async fn ping_status(client: &McpClient) -> u16 {
    client
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}).to_string(),
            &[],
        )
        .await
        .0
}

#[tokio::test]
async fn a_session_resumes_after_a_gateway_restart() {
    let up = UpstreamServer::start(UpstreamConfig::tools("one", ["echo"])).await;
    let gw = Gw::start().await;
    gw.add_target("one", &up.url, None, 10).await;
    let admin = gw.admin.clone();
    let mut client = McpClient::new(&gw.server, &admin);
    let session = client.initialize().await;
    let before = client.result("tools/list", json!({})).await;
    assert_eq!(before["tools"][0]["name"], "one__echo", "{before}");

    let db = gw.server.stop().await;
    let server = TestServer::start_on(db, TestServerOptions::default()).await;
    let resumed = McpClient::with_session(&server, &admin, &session);
    assert_eq!(
        ping_status(&resumed).await,
        200,
        "the new process resumes the stored session"
    );
    let called = resumed
        .result(
            "tools/call",
            json!({"name": "one__echo", "arguments": {"text": "hi"}}),
        )
        .await;
    assert!(
        called.to_string().contains("hi"),
        "calls work on the resumed session: {called}"
    );

    assert_eq!(resumed.delete().await, 204);
    assert_eq!(
        ping_status(&resumed).await,
        404,
        "an ended session stays ended"
    );
    let unknown = McpClient::with_session(&server, &admin, "0123456789abcdef0123456789abcdef");
    assert_eq!(ping_status(&unknown).await, 404);
}

#[tokio::test]
async fn a_role_or_group_change_recycles_the_session() {
    let gw = Gw::start().await;
    let (_, second) = gw.server.register("second@example.com", PW).await;
    let second_id = second["id"].as_str().unwrap().to_string();
    // Make the second user an admin so its token is accepted everywhere, then use it.
    let (status, _) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/users/{second_id}"),
            Some(&gw.admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, login) = gw
        .server
        .post(
            "/api/auth/login",
            None,
            json!({"email": "second@example.com", "password": PW}),
        )
        .await;
    let token = login["token"].as_str().unwrap().to_string();
    let mut client = McpClient::new(&gw.server, &token);
    client.initialize().await;
    assert_eq!(ping_status(&client).await, 200);

    let (status, _) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/users/{second_id}"),
            Some(&gw.admin),
            Some(json!({"groups": ["ops"]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ping_status(&client).await,
        404,
        "groups changed: the client must re-initialize"
    );
    client.initialize().await;
    assert_eq!(
        ping_status(&client).await,
        200,
        "a new session carries the new identity"
    );
}
