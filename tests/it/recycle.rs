//! Session recycling: through the API (self and admin) and through `reflow user recycle`
//! against a running server, whose in-memory sessions must end too.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::Target;
use crate::support::gw::{Gw, PW, eventually};
use crate::support::mcp_client::McpClient;

/// The HTTP status of a `ping` on the client's session.
async fn ping(client: &McpClient) -> u16 {
    client
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}).to_string(),
            &[],
        )
        .await
        .0
}

async fn client(gw: &Gw, token: &str) -> McpClient {
    let mut c = McpClient::new(&gw.server, token);
    c.initialize().await;
    assert_eq!(ping(&c).await, 200);
    c
}

#[tokio::test]
async fn api_recycles_own_and_other_users_sessions() {
    let gw = Gw::start().await;
    let (bob, bob_user) = gw.server.register("bob@example.com", PW).await;
    let bob_id = bob_user["id"].as_str().unwrap().to_string();
    let admin_a = client(&gw, &gw.admin).await;
    let admin_b = client(&gw, &gw.admin).await;
    let bob_a = client(&gw, &bob).await;

    // Admin recycles bob: only bob's session ends.
    let (status, body) = gw
        .server
        .post(
            &format!("/api/users/{bob_id}/recycle"),
            Some(&gw.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"recycled": 1, "user_id": bob_id}));
    assert_eq!(ping(&bob_a).await, 404, "bob's session is gone");
    assert_eq!(ping(&admin_a).await, 200, "the admin's sessions are not");

    // Bob may not recycle others, but may recycle himself (nothing left: 0).
    let admin_id = {
        let (_, me) = gw.server.get("/api/auth/me", Some(&gw.admin)).await;
        me["id"].as_str().unwrap().to_string()
    };
    let (status, _) = gw
        .server
        .post(
            &format!("/api/users/{admin_id}/recycle"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = gw
        .server
        .post("/api/sessions/recycle", Some(&bob), json!({}))
        .await;
    assert_eq!(
        (status, body["recycled"].clone()),
        (200, json!(0)),
        "{body}"
    );

    // The admin recycles their own two sessions.
    let (status, body) = gw
        .server
        .post("/api/sessions/recycle", Some(&gw.admin), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"recycled": 2, "user_id": admin_id}));
    assert_eq!(ping(&admin_a).await, 404);
    assert_eq!(ping(&admin_b).await, 404);
    // A fresh session works at once.
    client(&gw, &gw.admin).await;

    let (status, _) = gw
        .server
        .post("/api/users/not-a-uuid/recycle", Some(&gw.admin), json!({}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .server
        .post("/api/sessions/recycle", None, json!({}))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_recycle_ends_sessions_held_by_a_running_server() {
    let gw = Gw::start().await;
    let (bob, _) = gw.server.register("bob@example.com", PW).await;
    let t = Target::of(&gw.server.db);
    let admin = client(&gw, &gw.admin).await;
    let bob_a = client(&gw, &bob).await;
    let bob_b = client(&gw, &bob).await;

    let out: Value = t
        .run(&["user", "recycle", "bob@example.com", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(out["recycled"], 2, "{out}");
    // The server holds both in memory; it notices through the revision within the poll.
    for c in [&bob_a, &bob_b] {
        let gone = eventually(Duration::from_secs(3), || async {
            (ping(c).await == 404).then_some(())
        })
        .await;
        assert!(
            gone.is_some(),
            "a CLI-recycled session still answers after 3 s"
        );
    }
    assert_eq!(ping(&admin).await, 200, "other users' sessions live on");

    let run = t.run(&["user", "recycle", "bob@example.com"]).await;
    run.ok();
    assert!(
        run.stdout
            .contains("recycled 0 session(s) of bob@example.com"),
        "{}",
        run.describe()
    );
    t.run(&["user", "recycle", "nobody@example.com"])
        .await
        .fails(1, "nobody@example.com");
}
