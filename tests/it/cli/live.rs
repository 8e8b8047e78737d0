//! CLI writes reaching a running server: users, roles and tokens changed by `reflow` take effect
//! over HTTP within the revision poll, and a fresh login is accepted at once.

use std::time::{Duration, Instant};

use crate::support::cli::Target;
use crate::support::{self, TestServer, TestServerOptions};

/// Polls `GET path` with `token` until it answers `want`, or panics after `within`.
async fn poll_status(
    server: &TestServer,
    path: &str,
    token: &str,
    want: u16,
    within: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = server.get(path, Some(token)).await;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: GET {path} still answers {status} ({body}) after {:?}; expected {want} within {within:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_reach_a_running_server() {
    let server = TestServer::start_on(support::test_db().await, TestServerOptions::default()).await;
    let t = Target {
        url: server.db.url.clone(),
        data_dir: server.settings.data_dir.clone(),
    };
    let (admin_token, admin) = server
        .register("admin@example.com", "admin password 1")
        .await;
    assert_eq!(admin["role"], "admin", "{admin}");

    t.run_stdin(
        &[
            "user",
            "add",
            "carol@example.com",
            "--role",
            "user",
            "--password-stdin",
        ],
        "carol password 1\n",
    )
    .await
    .ok();
    // The new account is usable over HTTP (the login path reloads on a miss or the poll).
    let start = Instant::now();
    let carol_token = loop {
        let (status, body) = server
            .post(
                "/api/auth/login",
                None,
                serde_json::json!({"email": "carol@example.com", "password": "carol password 1"}),
            )
            .await;
        if status == 200 {
            assert_eq!(body["user"]["role"], "user", "{body}");
            break body["token"].as_str().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "login as the CLI-created user: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    // Creation by the CLI propagates too: within 2 s the token is accepted, as a plain user
    // (immediate acceptance is checked, and currently fails, in
    // `login_session_is_accepted_right_after_cli_user_add`).
    poll_status(
        &server,
        "/api/users",
        &carol_token,
        403,
        Duration::from_secs(2),
        "a plain user may not list users",
    )
    .await;

    t.run(&["user", "set-role", "carol@example.com", "admin"])
        .await
        .ok();
    let took = poll_status(
        &server,
        "/api/users",
        &carol_token,
        200,
        Duration::from_secs(2),
        "promotion by the CLI",
    )
    .await;
    eprintln!("promotion visible after {took:?}");
    let (status, users) = server.get("/api/users", Some(&carol_token)).await;
    assert_eq!(status, 200);
    assert!(users.to_string().contains("carol@example.com"), "{users}");

    // An API token created by the CLI (signed with the data dir's JWT secret) works on the
    // server, and revoking it by the CLI takes effect within 2 s.
    let created = t
        .run(&[
            "token",
            "create",
            "--user",
            "carol@example.com",
            "--name",
            "cli",
            "--json",
        ])
        .await
        .ok()
        .json();
    let api_token = created["token"].as_str().unwrap().to_string();
    let token_id = created["api_token"]["id"].as_str().unwrap().to_string();
    poll_status(
        &server,
        "/api/auth/me",
        &api_token,
        200,
        Duration::from_secs(2),
        "CLI-created token",
    )
    .await;
    let (_, me) = server.get("/api/auth/me", Some(&api_token)).await;
    assert_eq!(me["email"], "carol@example.com", "{me}");

    t.run(&["token", "revoke", &token_id]).await.ok();
    let took = poll_status(
        &server,
        "/api/auth/me",
        &api_token,
        401,
        Duration::from_secs(2),
        "revocation by the CLI",
    )
    .await;
    eprintln!("revocation visible after {took:?}");
    // The session token is unaffected by the token revocation; the admin still works.
    let (status, _) = server.get("/api/auth/me", Some(&carol_token)).await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/api/users", Some(&admin_token)).await;
    assert_eq!(status, 200);

    // Demotion by the CLI also reaches the server.
    t.run(&["user", "set-role", "carol@example.com", "user"])
        .await
        .ok();
    poll_status(
        &server,
        "/api/users",
        &carol_token,
        403,
        Duration::from_secs(2),
        "demotion by the CLI",
    )
    .await;
    server.stop().await;
}

/// A session token returned by `/api/auth/login` must be accepted by the very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_session_is_accepted_right_after_cli_user_add() {
    let server = TestServer::start_on(support::test_db().await, TestServerOptions::default()).await;
    let t = Target {
        url: server.db.url.clone(),
        data_dir: server.settings.data_dir.clone(),
    };
    server
        .register("admin@example.com", "admin password 1")
        .await;
    t.run_stdin(
        &["user", "add", "carol@example.com", "--password-stdin"],
        "carol password 1\n",
    )
    .await
    .ok();
    let (status, body) = server
        .post(
            "/api/auth/login",
            None,
            serde_json::json!({"email": "carol@example.com", "password": "carol password 1"}),
        )
        .await;
    assert_eq!(
        status, 200,
        "login reads the database, so the CLI-created user can log in: {body}"
    );
    let token = body["token"].as_str().unwrap();
    let (status, body) = server.get("/api/users", Some(token)).await;
    assert_eq!(
        status, 403,
        "BUG (src/http/auth_api.rs `login` + src/auth/authenticator.rs `reload_after_miss`): login \
         issued a session token for a user the auth snapshot does not know yet, and the next \
         request is rejected with 401 {body} instead of 403. The miss-reload is skipped when the \
         snapshot was reloaded < 250 ms ago (here: by the admin's registration), so until the \
         500 ms revision poll the fresh token is refused. Fix: refresh the snapshot in `login` \
         when the user is missing from it (or let a miss on a token issued after the last \
         reload bypass the 250 ms limit)."
    );
    server.stop().await;
}
