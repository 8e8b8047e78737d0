//! Requests refused or trimmed at the edge: a body over the limit on the MCP endpoints and an
//! opaque `Origin: null` (every refusal on /mcp and /message is a JSON-RPC error object), what a
//! non-admin is shown of a target, and a kubernetes target when pods are off.

use serde_json::{Value, json};

use crate::support::gw::Gw;
use crate::support::mcp_client::McpClient;
use crate::support::server::TestServerOptions;

/// The JSON-RPC error of a refusal: an object with a code and a message, id null.
fn rpc_error_of(body: &Value) -> (i64, String) {
    assert_eq!(body["jsonrpc"], "2.0", "a JSON-RPC error object: {body}");
    assert!(body["id"].is_null(), "{body}");
    (
        body["error"]["code"].as_i64().expect("an error code"),
        body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_string(),
    )
}

#[tokio::test]
async fn an_oversized_body_on_the_mcp_endpoints_is_a_json_rpc_error_naming_the_limit() {
    let gw = Gw::start_with(TestServerOptions {
        max_body_bytes: 4096,
        ..TestServerOptions::default()
    })
    .await;
    let c = McpClient::new(&gw.server, &gw.admin);
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(10_000)}});
    let (status, body) = c.raw_post_without_session(big.to_string()).await;
    assert_eq!(status, 413, "{body}");
    let (code, message) = rpc_error_of(&body);
    assert_eq!(code, -32600);
    assert!(
        message.contains("4096") && message.contains("server.max_body_bytes"),
        "{message}"
    );
    let res = gw
        .server
        .http
        .post(gw.server.url("/message?session_id=whatever"))
        .bearer_auth(&gw.admin)
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let body: Value = res.json().await.unwrap();
    assert!(
        rpc_error_of(&body).1.contains("server.max_body_bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn an_opaque_origin_may_not_speak_mcp_or_change_state() {
    let gw = Gw::start().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}});
    let res = gw
        .server
        .http
        .post(gw.server.url("/mcp"))
        .bearer_auth(&gw.admin)
        .header("origin", "null")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(rpc_error_of(&body).1.contains("null"), "{body}");
    // A state-changing admin call from an opaque origin: refused as well.
    let res = gw
        .server
        .http
        .post(gw.server.url("/api/auth/tokens"))
        .bearer_auth(&gw.admin)
        .header("origin", "null")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Reading is not state-changing.
    let res = gw
        .server
        .http
        .get(gw.server.url("/api/auth/me"))
        .bearer_auth(&gw.admin)
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn a_non_admin_sees_how_to_use_a_target_never_how_it_is_reached() {
    let gw = Gw::start().await;
    gw.target_for_everyone(json!({
        "name": "fx", "transport_type": "stdio", "command": "/usr/bin/secret-tool",
        "args": ["--password", "in-argv-by-mistake"], "cwd": "/srv/private",
        "env": {"REGION": "eu"}, "user_env": ["GITHUB_TOKEN"], "user_token": true,
    }))
    .await;
    let (_, token) = crate::support::stdio::user(&gw, "dev@example.com", "dev", &[]).await;
    let (status, list) = gw.server.get("/api/targets", Some(&token)).await;
    assert_eq!(status, 200, "{list}");
    let t = &list[0];
    assert_eq!(t["name"], "fx");
    assert_eq!(t["user_env"], json!(["GITHUB_TOKEN"]));
    assert_eq!(t["user_token"], true);
    for field in [
        "url",
        "command",
        "args",
        "cwd",
        "env",
        "image",
        "port",
        "health_path",
    ] {
        assert!(t.get(field).is_none(), "{field} shown to a non-admin: {t}");
    }
    assert!(!list.to_string().contains("/srv/private"), "{list}");
    // The admin still sees everything.
    let (_, all) = gw.server.get("/api/targets", Some(&gw.admin)).await;
    assert_eq!(all[0]["cwd"], "/srv/private");
}

#[tokio::test]
async fn a_kubernetes_target_says_what_it_needs_when_pods_are_off() {
    let gw = Gw::start().await;
    let (status, body) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "k", "transport_type": "kubernetes", "image": "mcp/server:1",
                   "url": "http://x.example.com/mcp"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("url"), "{body}");
    let (status, body) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "k", "transport_type": "kubernetes", "image": "mcp/server:1", "port": 8080}),
        )
        .await;
    // Without the feature the target is refused; with it, a gateway whose kubernetes section
    // is off answers calls to it with the key to set.
    if !cfg!(feature = "kubernetes") {
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("`kubernetes` feature"),
            "{body}"
        );
        return;
    }
    assert_eq!(status, 201, "{body}");
    let (status, p) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "all-k", "target": "k", "resource_type": "all", "effect": "allow",
                   "priority": 10, "subjects": [{"subject_type": "everyone"}]}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let client = gw.admin_client().await;
    let answer = client
        .request(
            "tools/call",
            json!({"name": "k__anything", "arguments": {}}),
        )
        .await;
    let text = answer.to_string();
    assert!(text.contains("kubernetes.enabled"), "{text}");
}
