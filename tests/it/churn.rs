//! Nothing grows without bound or outlives its owner: 1,000 changes of a user's upstream token
//! (each opening a shared connection for its new credential fingerprint) and 10,000 legacy
//! sessions, then one sweep after the session timeout: the gateway's footprint is back where it
//! started. Deleting a user takes their credentials, tokens and sessions with them.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;

use crate::support::gw::{Gw, tool_text};
use crate::support::mcp_client::McpClient;
use crate::support::server::TestServerOptions;
use crate::support::stdio::user;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

const SECRET_CHANGES: usize = 1_000;
const SESSIONS: usize = 10_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (1,000 secret changes, 10,000 sessions, ~1 min in debug): .ci/run runs it; cargo test --test it churn -- --ignored"]
async fn secret_changes_and_sessions_leave_nothing_behind() {
    let timeout = Duration::from_secs(3);
    let gw = Gw::start_with(TestServerOptions {
        session_timeout: Some(timeout),
        // Only the test's own sweep ends sessions: on a loaded machine opening 10,000 takes
        // longer than the timeout, and a periodic sweep would end some before the peak.
        session_cleanup_interval: Some(Duration::from_secs(3600)),
        // One user opens them all: what is measured is the footprint, not the per-user cap.
        sessions_per_user: Some(SESSIONS),
        ..TestServerOptions::default()
    })
    .await;
    let up = UpstreamServer::start(UpstreamConfig::tools("gh", ["whoami"])).await;
    let tid = gw
        .target_for_everyone(
            json!({"name": "github", "url": up.url, "auth_type": "bearer", "user_token": true}),
        )
        .await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let state = gw.server.state.clone();
    let start = state.gateway.footprint();
    let rss_start = rss_kib();
    let clock = std::time::Instant::now();

    // Every token change is a new fingerprint: a new shared upstream connection.
    let mut c = McpClient::new(&gw.server, &alice);
    c.initialize().await;
    for i in 0..SECRET_CHANGES {
        let (status, body) = gw
            .server
            .send(
                Method::PUT,
                &format!("/api/targets/{tid}/token"),
                Some(&alice),
                Some(json!({"token": format!("tok-{i}")})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let r = c
            .result(
                "tools/call",
                json!({"name": "github__whoami", "arguments": {}}),
            )
            .await;
        assert!(tool_text(&r).is_object(), "{r}");
    }
    let after_secrets = state.gateway.footprint();
    let secrets_took = clock.elapsed();
    assert!(
        after_secrets.shared_connections >= SECRET_CHANGES / 2,
        "the churn really opened connections: {after_secrets:?}"
    );

    // Sessions: open 10,000 (32 at a time); end half of them, leave the rest to time out.
    let server = &gw.server;
    let admin = &gw.admin;
    futures_util::stream::iter(0..SESSIONS)
        .for_each_concurrent(32, |i| async move {
            let mut s = McpClient::new(server, admin);
            s.initialize().await;
            if i % 2 == 0 {
                assert_eq!(s.delete().await, 204);
            }
        })
        .await;
    let peak = state.gateway.footprint();
    let sessions_took = clock.elapsed() - secrets_took;
    let rss_peak = rss_kib();
    assert!(peak.sessions >= SESSIONS / 2, "{peak:?}");

    tokio::time::sleep(timeout + Duration::from_secs(1)).await;
    state.gateway.sweep_sessions(Duration::from_secs(1)).await;
    let end = state.gateway.footprint();
    // The in-process upstream (not reflow) lets go of the sessions reflow ended as their
    // DELETEs arrive; a second sweep then hands what they held back to the OS as well.
    let upstream_left = crate::support::gw::eventually(Duration::from_secs(10), || async {
        (up.session_count().await <= 1).then_some(())
    })
    .await;
    assert!(
        upstream_left.is_some(),
        "reflow ended its upstream sessions: {} remain",
        up.session_count().await
    );
    state.gateway.sweep_sessions(Duration::from_secs(1)).await;
    let rss_end = rss_kib();
    eprintln!(
        "footprint: start {start:?}; after {SECRET_CHANGES} secret changes {after_secrets:?}; \
         peak {peak:?}; after the sweep {end:?}. RSS of the test process (KiB): start \
         {rss_start}, peak {rss_peak}, end {rss_end}; {secrets_took:?} for the secret changes, \
         {sessions_took:?} for the sessions"
    );
    assert!(
        end.sessions <= start.sessions,
        "sessions: {start:?} -> {end:?}"
    );
    assert!(
        end.shared_connections <= start.shared_connections + 1,
        "shared connections: {start:?} -> {end:?}"
    );
    assert!(end.learned_names <= after_secrets.learned_names.max(1));
    // Most of what the churn took comes back (the sweep hands freed memory to the OS); run
    // alone, as .ci/run does, so no other test's memory is counted. The bound leaves room for
    // the allocator and the test harness; runs here end at or below the start.
    assert!(
        rss_end <= rss_start + (rss_peak.saturating_sub(rss_start)) / 2,
        "RSS start {rss_start} KiB, peak {rss_peak} KiB, end {rss_end} KiB"
    );
}

#[tokio::test]
async fn deleting_a_user_takes_their_credentials_tokens_and_sessions() {
    let gw = Gw::start().await;
    let tid = gw
        .target_for_everyone(json!({"name": "github", "url": "https://api.example.com/mcp",
                                    "auth_type": "bearer", "user_token": true, "user_env": ["REGION"]}))
        .await;
    let (uid, token) = user(&gw, "leaver@example.com", "dev", &[]).await;
    let (_, keeper) = user(&gw, "keeper@example.com", "dev", &[]).await;
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}/env/user/{uid}"),
            Some(&token),
            Some(json!({"REGION": "eu"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}/token"),
            Some(&token),
            Some(json!({"token": "mine"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gw
        .server
        .post("/api/auth/tokens", Some(&token), json!({"name": "laptop"}))
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let mut s = McpClient::new(&gw.server, &token);
    s.initialize().await;
    let mut other = McpClient::new(&gw.server, &keeper);
    other.initialize().await;

    let (status, removed) = gw
        .server
        .send(
            Method::DELETE,
            &format!("/api/users/{uid}"),
            Some(&gw.admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        (
            &removed["credentials"],
            &removed["tokens"],
            &removed["sessions"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{removed}"
    );
    let (_, view) = gw
        .server
        .get(&format!("/api/targets/{tid}/env"), Some(&gw.admin))
        .await;
    assert!(view["user"].as_object().unwrap().is_empty(), "{view}");
    let (_, tokens) = gw
        .server
        .get(&format!("/api/targets/{tid}/tokens"), Some(&gw.admin))
        .await;
    assert_eq!(tokens, json!([]), "the user's own token went too");
    // The other user's session is untouched.
    let r = other.request("ping", json!({})).await;
    assert!(r.get("result").is_some(), "{r}");
}
