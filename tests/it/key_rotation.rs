//! `reflow secret rotate-key` beside a running server: no restart. The server notices values
//! sealed with a key it does not hold, reads its key file again, and from then on seals with the
//! new key while everything opens; a tool call uses a credential written before the rotation
//! and one written after, and a restart with only the new key opens every stored value.

use std::time::Duration;

use reflow::store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::cli::Target as Cli;
use crate::support::gw::{Gw, eventually};
use crate::support::mcp_client::McpClient;
use crate::support::server::{TestServer, TestServerOptions};
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// Calls the tool as the admin; returns the Authorization and X-Env-REGION headers it carried.
async fn call_headers(server: &TestServer, admin: &str, up: &UpstreamServer) -> (String, String) {
    let mut c = McpClient::new(server, admin);
    c.initialize().await;
    up.log.lock().unwrap().headers.clear();
    c.result(
        "tools/call",
        json!({"name": "github__whoami", "arguments": {}}),
    )
    .await;
    let seen = up.log.lock().unwrap().headers.clone();
    let get = |name: &str| {
        seen.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    (get("authorization"), get("x-env-region"))
}

async fn key_ids(url: &str) -> Vec<String> {
    let store = Store::open(url, 1).await.unwrap();
    let ids = store
        .all_credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key_id)
        .collect();
    store.close().await;
    ids
}

#[tokio::test]
async fn a_running_server_follows_a_key_rotation_without_restart() {
    let gw = Gw::start().await;
    let up = UpstreamServer::start(UpstreamConfig::tools("gh", ["whoami"])).await;
    let (status, t) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "github", "url": up.url, "auth_type": "bearer"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let tid = t["id"].as_str().unwrap().to_string();
    let put = |path: String, body: Value| {
        let server = &gw.server;
        let admin = gw.admin.clone();
        async move {
            let (status, res) = server
                .send(Method::PUT, &path, Some(&admin), Some(body))
                .await;
            assert!(status == 200 || status == 204, "PUT {path}: {status} {res}");
        }
    };
    // Written before the rotation.
    put(
        format!("/api/targets/{tid}/tokens/default"),
        json!({"token": "tok-before"}),
    )
    .await;
    assert_eq!(
        call_headers(&gw.server, &gw.admin, &up).await,
        ("Bearer tok-before".into(), String::new())
    );
    let old_ids = key_ids(&gw.server.db.url).await;

    let dir = tempfile::tempdir().unwrap();
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, "cd".repeat(32)).unwrap();
    let cli = Cli::of(&gw.server.db);
    let run = cli
        .run(&[
            "--json",
            "secret",
            "rotate-key",
            "--new-key-file",
            new_key.to_str().unwrap(),
        ])
        .await;
    let out = run.ok().json();
    let new_id = out["key_id"].as_str().unwrap().to_string();
    assert!(!old_ids.contains(&new_id), "a new key");
    assert!(out["replaced_key_file"].is_string(), "{out}");

    // Written after: the server seals it with the new key once it has noticed the rotation.
    let seen_new_key = eventually(Duration::from_secs(10), || {
        let url = gw.server.db.url.clone();
        let put = &put;
        let tid = tid.clone();
        let new_id = new_id.clone();
        async move {
            put(
                format!("/api/targets/{tid}/env/default"),
                json!({"REGION": "eu-after"}),
            )
            .await;
            key_ids(&url)
                .await
                .iter()
                .all(|id| *id == new_id)
                .then_some(())
        }
    })
    .await;
    assert!(
        seen_new_key.is_some(),
        "the running server never sealed with the new key: {:?}",
        key_ids(&gw.server.db.url).await
    );
    // One call: the token from before, the env entry from after.
    assert_eq!(
        call_headers(&gw.server, &gw.admin, &up).await,
        ("Bearer tok-before".into(), "eu-after".into())
    );

    // A restart knows only the new key (the key file): every stored value opens.
    let admin = gw.admin.clone();
    let db = gw.server.stop().await;
    let server = TestServer::start_on(db, TestServerOptions::default()).await;
    assert_eq!(
        call_headers(&server, &admin, &up).await,
        ("Bearer tok-before".into(), "eu-after".into())
    );
}
