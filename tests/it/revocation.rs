//! The CLI's writes reach running servers at once (a watch on the SQLite files, LISTEN/NOTIFY
//! on Postgres), not at the next revision poll (500 ms): a token revoked or a password changed
//! from the shell stops working on a running server within milliseconds of the command.

use std::time::{Duration, Instant};

use crate::support::cli::Target;
use crate::support::gw::Gw;

/// How long after now `token` is first refused by `/api/auth/me`.
async fn refused_within(gw: &Gw, token: &str) -> Duration {
    let clock = Instant::now();
    loop {
        let (status, _) = gw.server.get("/api/auth/me", Some(token)).await;
        if status == 401 {
            return clock.elapsed();
        }
        assert_eq!(status, 200);
        assert!(
            clock.elapsed() < Duration::from_secs(5),
            "still accepted 5 s after the command"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Four tries, each within this bound: a server that only polls every 500 ms would pass all
/// four with a chance of about 2%.
const AT_ONCE: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_token_revoked_or_a_password_changed_by_the_cli_is_refused_at_once() {
    let gw = Gw::start().await;
    let t = Target::of(&gw.server.db);
    for i in 0..4 {
        let created = t
            .run(&[
                "token",
                "create",
                "--user",
                "admin@example.com",
                "--name",
                &format!("laptop-{i}"),
                "--json",
            ])
            .await
            .ok()
            .json();
        let token = created["token"].as_str().unwrap().to_string();
        let id = created["api_token"]["id"].as_str().unwrap().to_string();
        assert_eq!(gw.server.get("/api/auth/me", Some(&token)).await.0, 200);
        t.run(&["token", "revoke", &id]).await.ok();
        let took = refused_within(&gw, &token).await;
        assert!(
            took < AT_ONCE,
            "try {i}: the revoked token was accepted for {took:?} after `reflow token revoke` returned"
        );
    }
    // A password change ends earlier login sessions, from the shell too.
    for i in 0..4 {
        let (status, login) = gw
            .server
            .post(
                "/api/auth/login",
                None,
                serde_json::json!({"email": "admin@example.com",
                    "password": if i == 0 { crate::support::gw::PW.to_string() } else { format!("new password {}", i - 1) }}),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        let session = login["token"].as_str().unwrap().to_string();
        t.run_stdin(
            &["user", "passwd", "admin@example.com", "--password-stdin"],
            &format!("new password {i}\n"),
        )
        .await
        .ok();
        let took = refused_within(&gw, &session).await;
        assert!(
            took < AT_ONCE,
            "try {i}: the old login was accepted for {took:?} after `reflow user passwd` returned"
        );
    }
}
