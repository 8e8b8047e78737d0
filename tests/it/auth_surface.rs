//! The MCP authorization surface (RFC 9728): the protected-resource metadata documents and the
//! `WWW-Authenticate` challenge on every 401, from the admin API and from the MCP endpoint.

use serde_json::{Value, json};

use crate::support::{TestServer, TestServerOptions};

async fn get_doc(server: &TestServer, path: &str) -> Value {
    let res = server.http.get(server.url(path)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "GET {path}");
    res.json().await.unwrap()
}

/// The challenge of a 401 answer, asserting that it is one.
async fn challenge(res: reqwest::Response) -> String {
    assert_eq!(res.status().as_u16(), 401, "expected 401");
    res.headers()
        .get("www-authenticate")
        .expect("a 401 carries WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn metadata_documents_derive_the_resource_from_the_host() {
    let server = TestServer::start().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let doc = get_doc(&server, path).await;
        assert_eq!(
            doc,
            json!({
                "resource": format!("{}/mcp", server.base),
                "authorization_servers": [],
                "bearer_methods_supported": ["header"],
                "resource_name": "reflow",
            }),
            "{path}"
        );
    }
    // The Host decides the base when no public_url is set (localhost is allowed by default).
    let res = server
        .http
        .get(server.url("/.well-known/oauth-protected-resource"))
        .header("host", format!("localhost:{}", server.addr.port()))
        .send()
        .await
        .unwrap();
    let doc: Value = res.json().await.unwrap();
    assert_eq!(
        doc["resource"],
        format!("http://localhost:{}/mcp", server.addr.port())
    );
}

#[tokio::test]
async fn metadata_uses_public_url_and_names_the_oidc_issuer() {
    let server = TestServer::start_with(TestServerOptions {
        public_url: Some("https://mcp.example.com/".into()),
        oidc: Some(reflow::config::OidcSettings {
            issuer: "https://idp.example.com".into(),
            audience: "reflow".into(),
            jwks_url: None,
            role_claim: "role".into(),
            groups_claim: "groups".into(),
        }),
        ..Default::default()
    })
    .await;
    let doc = get_doc(&server, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp", "{doc}");
    assert_eq!(
        doc["authorization_servers"],
        json!(["https://idp.example.com"])
    );
    let res = server
        .http
        .get(server.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        challenge(res).await,
        r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
    );
}

#[tokio::test]
async fn every_401_challenges_with_the_resource_metadata() {
    let server = TestServer::start().await;
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
    let plain = format!(r#"Bearer resource_metadata="{metadata}""#);
    let invalid = format!(r#"{plain}, error="invalid_token""#);

    // Admin API: no token, then a bad one.
    let res = server
        .http
        .get(server.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge(res).await, plain);
    let res = server
        .http
        .get(server.url("/api/auth/me"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(challenge(res).await, invalid);

    // The MCP endpoint, the same way.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    let post_mcp = |token: Option<&str>| {
        let mut req = server
            .http
            .post(server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(init.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(challenge(post_mcp(None).await.unwrap()).await, plain);
    assert_eq!(
        challenge(post_mcp(Some("garbage")).await.unwrap()).await,
        invalid
    );

    // A valid token gets through, and its response has no challenge.
    let (token, _) = server
        .register("admin@example.com", "admin password 1")
        .await;
    let res = post_mcp(Some(&token)).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers().get("www-authenticate").is_none());

    // Wrong credentials on login are a 401 too, and challenge like the rest.
    let res = server
        .http
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": "admin@example.com", "password": "wrong password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge(res).await, plain);
}
