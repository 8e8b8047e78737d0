//! Upstream credentials on the data path: each caller's resolved token (user > group > role >
//! default) and env headers reach the upstream, the client's own bearer never does, a missing
//! credential hides the target and a direct call names what is missing.

use reqwest::Method;
use serde_json::json;

use crate::support::gw::{Gw, PW, all_tool_names, error_code};
use crate::support::mcp_client::McpClient;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

async fn user(gw: &Gw, email: &str, role: &str, groups: &[&str]) -> (String, String) {
    let (_, u) = gw.server.register(email, PW).await;
    let id = u["id"].as_str().unwrap().to_string();
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/users/{id}"),
            Some(&gw.admin),
            Some(json!({"role": role, "groups": groups})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, login) = gw
        .server
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW}),
        )
        .await;
    (id, login["token"].as_str().unwrap().to_string())
}

async fn put(gw: &Gw, path: &str, body: serde_json::Value) {
    let (status, res) = gw
        .server
        .send(Method::PUT, path, Some(&gw.admin), Some(body))
        .await;
    assert!(status == 200 || status == 204, "PUT {path}: {status} {res}");
}

#[tokio::test]
async fn resolved_credentials_reach_the_upstream_and_client_tokens_never_do() {
    let gw = Gw::start().await;
    let up = UpstreamServer::start(UpstreamConfig::tools("gh", ["whoami"])).await;
    let tid = gw
        .target_for_everyone(
            json!({"name": "github", "url": up.url, "auth_type": "bearer",
                                    "statefulness": "stateless", "user_token": true}),
        )
        .await;
    let (alice_id, alice) = user(&gw, "alice@example.com", "dev", &["eng"]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &["eng"]).await;
    let (_, carol) = user(&gw, "carol@example.com", "ops", &[]).await;
    let (_, dave) = user(&gw, "dave@example.com", "intern", &[]).await;

    put(
        &gw,
        &format!("/api/targets/{tid}/tokens/default"),
        json!({"token": "tok-default"}),
    )
    .await;
    put(
        &gw,
        &format!("/api/targets/{tid}/tokens/role/ops"),
        json!({"token": "tok-role-ops"}),
    )
    .await;
    put(
        &gw,
        &format!("/api/targets/{tid}/tokens/group/eng"),
        json!({"token": "tok-group-eng"}),
    )
    .await;
    put(
        &gw,
        &format!("/api/targets/{tid}/env/default"),
        json!({"REGION": "eu"}),
    )
    .await;
    // Alice sets her own token (self-service, user scope).
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}/token"),
            Some(&alice),
            Some(json!({"token": "tok-alice"})),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let _ = alice_id;

    for (token, expected) in [
        (&alice, "Bearer tok-alice"),
        (&bob, "Bearer tok-group-eng"),
        (&carol, "Bearer tok-role-ops"),
        (&dave, "Bearer tok-default"),
    ] {
        let mut c = McpClient::new(&gw.server, token);
        c.initialize().await;
        up.log.lock().unwrap().headers.clear();
        c.result(
            "tools/call",
            json!({"name": "github__whoami", "arguments": {}}),
        )
        .await;
        let seen = up.log.lock().unwrap().headers.clone();
        let auth: Vec<_> = seen
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(
            !auth.is_empty() && auth.iter().all(|v| *v == expected),
            "expected {expected}, upstream saw {auth:?}"
        );
        assert!(
            seen.iter().any(|(n, v)| n == "x-env-region" && v == "eu"),
            "{seen:?}"
        );
        assert!(
            seen.iter().all(|(_, v)| !v.contains(token.as_str())),
            "the client's own token never reaches the upstream"
        );
    }

    // Without a default token, a caller with no credential does not see the target, and a
    // direct call says which credential is missing.
    let (status, _) = gw
        .server
        .send(
            Method::DELETE,
            &format!("/api/targets/{tid}/tokens/default"),
            Some(&gw.admin),
            None,
        )
        .await;
    assert!(status == 200 || status == 204);
    let mut d = McpClient::new(&gw.server, &dave);
    d.initialize().await;
    assert!(
        all_tool_names(&d).await.is_empty(),
        "a target needing a missing credential is hidden"
    );
    let refused = d
        .exchange(
            "tools/call",
            json!({"name": "github__whoami", "arguments": {}}),
        )
        .await
        .response;
    assert_eq!(error_code(&refused), -32602, "{refused}");
    let msg = refused["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("token") && msg.contains("github"),
        "names the missing credential: {msg}"
    );
    assert!(!msg.contains("tok-"), "never a value: {msg}");
    let mut a = McpClient::new(&gw.server, &alice);
    a.initialize().await;
    assert_eq!(
        all_tool_names(&a).await,
        ["github__whoami"],
        "alice still has her own token"
    );
}
