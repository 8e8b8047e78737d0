//! The life of stdio processes: a killed child fails its in-flight call fast and restarts on
//! the next use, idle processes are reaped, the process limit is a clear error, shutdown leaves
//! no child behind, and instances are listed and restarted through the API and the CLI.

use std::time::{Duration, Instant};

use reflow::config::StdioSettings;
use reflow::domain::{InstanceId, InstanceStatus};
use serde_json::json;

use crate::support::TestServerOptions;
use crate::support::cli::Target as Cli;
use crate::support::gw::{Gw, eventually};
use crate::support::stdio::{
    FIXTURE, add_stdio_target, alive, client, exists, instances, pid_of, running_pids, until_gone,
    user,
};

fn stdio_opts(f: impl FnOnce(&mut StdioSettings)) -> TestServerOptions {
    let mut s = StdioSettings::default();
    f(&mut s);
    TestServerOptions {
        stdio: Some(s),
        ..TestServerOptions::default()
    }
}

#[tokio::test]
async fn stdio_killed_child_fails_in_flight_calls_fast_and_restarts_on_next_use() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &token).await;
    let first = pid_of(&c, "fx").await;

    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("sleeping");
    let slow = {
        let c2 = client(&gw, &token).await;
        let marker = marker.to_str().unwrap().to_string();
        tokio::spawn(async move {
            let started = Instant::now();
            let res = c2
                .request(
                    "tools/call",
                    json!({"name": "fx__sleep", "arguments": {"ms": 15000, "marker": marker}}),
                )
                .await;
            (started.elapsed(), res)
        })
    };
    // Kill only once the slow call is in the child.
    let in_child = eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(&marker).ok()
    })
    .await;
    assert_eq!(
        in_child,
        Some(first.to_string()),
        "the slow call reached the child"
    );
    let killed = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (took, res) = slow.await.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the in-flight call failed fast, not at its timeout: {took:?}"
    );
    let message = res["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("fx") && message.contains("exited") && message.contains("signal 9"),
        "a clear error naming the target and how it ended: {res}"
    );
    assert!(
        until_gone(first, Duration::from_secs(5)).await,
        "the killed child was reaped"
    );

    let second = pid_of(&c, "fx").await;
    assert_ne!(first, second, "the next call started a new process");
    let rows = instances(&gw, "fx").await;
    let status_of = |pid: u32| {
        rows.iter()
            .find(|r| r["pid"] == pid)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(first).as_deref(), Some("crashed"), "{rows:?}");
    assert_eq!(status_of(second).as_deref(), Some("running"), "{rows:?}");
}

#[tokio::test]
async fn stdio_idle_processes_are_reaped_and_restart_on_next_use() {
    let gw = Gw::start_with(stdio_opts(|s| {
        s.idle_ttl = Duration::from_millis(600);
        s.gc_interval = Duration::from_millis(100);
    }))
    .await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &token).await;
    let pid = pid_of(&c, "fx").await;
    assert!(alive(pid));
    assert!(
        until_gone(pid, Duration::from_secs(10)).await,
        "an idle process is stopped and reaped"
    );
    let stopped = eventually(Duration::from_secs(5), || async {
        let rows = instances(&gw, "fx").await;
        rows.iter()
            .any(|r| r["pid"] == pid && r["status"] == "stopped" && !r["stopped_at"].is_null())
            .then_some(())
    })
    .await;
    assert!(stopped.is_some(), "its instance row says stopped");
    let again = pid_of(&c, "fx").await;
    assert_ne!(again, pid);
}

#[tokio::test]
async fn stdio_process_limit_is_a_clear_error_and_the_gateway_carries_on() {
    let gw = Gw::start_with(stdio_opts(|s| s.max_processes = 1)).await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "per_user", json!({})).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &[]).await;
    let a = client(&gw, &alice).await;
    let pa = pid_of(&a, "fx").await;
    let b = client(&gw, &bob).await;
    let res = b
        .request("tools/call", json!({"name": "fx__pid", "arguments": {}}))
        .await;
    let message = res["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("stdio.max_processes") && message.contains('1') && message.contains("fx"),
        "names the limit and the target: {res}"
    );
    assert_eq!(
        res["error"]["data"]["limit"], "stdio.max_processes",
        "{res}"
    );
    // Nothing crashed: alice is still served by the same process, and the server answers.
    assert_eq!(pid_of(&a, "fx").await, pa);
    let (status, _) = gw.server.get("/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn stdio_gateway_shutdown_leaves_no_child_alive() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "per_user", json!({})).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &[]).await;
    let a = client(&gw, &alice).await;
    let b = client(&gw, &bob).await;
    let pids = [pid_of(&a, "fx").await, pid_of(&b, "fx").await];
    assert!(pids.iter().all(|p| alive(*p)));
    let Gw { server, .. } = gw;
    let db = server.stop().await;
    for pid in pids {
        // Shutdown returns only after reaping: no process, not even a zombie.
        assert!(!exists(pid), "child {pid} outlived the gateway");
    }
    let store = reflow::store::Store::open(&db.url, 1).await.unwrap();
    let target = store
        .list_targets()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name.as_str() == "fx")
        .unwrap();
    let rows = store.list_instances(target.id).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.status == InstanceStatus::Stopped && r.stopped_at.is_some()),
        "shutdown recorded the stops: {rows:?}"
    );

    // Rows a crashed gateway left open: one of this host whose gateway process is gone, one
    // of another host (which only that host can judge).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let open_row = |replica: String| reflow::store::InstanceRecord {
        id: InstanceId::new(),
        target_id: target.id,
        isolation_key: "shared:fx".into(),
        replica,
        pid: Some(4_000_000),
        pod: None,
        status: InstanceStatus::Running,
        started_at: chrono::Utc::now(),
        last_used_at: chrono::Utc::now(),
        stopped_at: None,
    };
    let (mine, other) = (
        open_row(format!("{}:4000001:abcd", host.trim())),
        open_row("some-other-host:1:abcd".into()),
    );
    store.insert_instance(&mine).await.unwrap();
    store.insert_instance(&other).await.unwrap();
    store.close().await;
    let server = crate::support::TestServer::start_on(db, TestServerOptions::default()).await;
    let store = reflow::store::Store::open(&server.db.url, 1).await.unwrap();
    let rows = store.list_instances(target.id).await.unwrap();
    let status = |id| rows.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(
        status(mine.id),
        InstanceStatus::Stopped,
        "the stale row of this host"
    );
    assert_eq!(
        status(other.id),
        InstanceStatus::Running,
        "another host's row is left alone"
    );
}

#[tokio::test]
async fn stdio_instances_and_restart_through_the_api_and_the_cli() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &["--quiet"], "shared", json!({})).await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &token).await;
    let first = pid_of(&c, "fx").await;

    // Only admins see or restart instances.
    let (status, _) = gw
        .server
        .get("/api/targets/fx/instances", Some(&token))
        .await;
    assert_eq!(status, 403);
    let (status, _) = gw
        .server
        .post("/api/targets/fx/restart-instances", Some(&token), json!({}))
        .await;
    assert_eq!(status, 403);

    // API: the running process, then a restart that stops it; the next use starts another.
    let rows = instances(&gw, "fx").await;
    assert_eq!(running_pids(&rows), vec![first]);
    assert_eq!(rows[0]["isolation_key"], "shared:fx");
    let (status, res) = gw
        .server
        .post(
            "/api/targets/fx/restart-instances",
            Some(&gw.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res, json!({"target": "fx", "stopped": 1}));
    assert!(!exists(first), "restart returns once the process is gone");
    let second = pid_of(&c, "fx").await;
    assert_ne!(second, first);

    // CLI, on the database directly: the serving process notices and stops its process.
    let cli = Cli::of(&gw.server.db);
    let listed = cli.run(&["--json", "target", "instances", "fx"]).await;
    listed.ok();
    let listed = listed.json();
    let live: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "running")
        .collect();
    assert_eq!(live.len(), 1, "{listed}");
    assert_eq!(live[0]["pid"], second);
    let table = cli.run(&["target", "instances", "fx"]).await;
    table.ok();
    assert!(table.stdout.contains("shared:fx") && table.stdout.contains(&second.to_string()));

    let restart = cli.run(&["--json", "target", "restart", "fx"]).await;
    restart.ok();
    assert_eq!(restart.json(), json!({"target": "fx", "stopped": 1}));
    assert!(
        until_gone(second, Duration::from_secs(10)).await,
        "the server stopped the process the CLI asked to stop"
    );
    let third = pid_of(&c, "fx").await;
    assert!(third != second && third != first);
    let rows = instances(&gw, "fx").await;
    assert_eq!(running_pids(&rows), vec![third], "{rows:?}");

    // An HTTP target has no instances to list (a clear error); restarting it drops its
    // upstream sessions instead (resilience/upstreams.rs).
    cli.run(&["target", "add", "web", "--url", "http://127.0.0.1:9/mcp"])
        .await
        .ok();
    cli.run(&["target", "instances", "web"])
        .await
        .fails(1, "only stdio and kubernetes targets have instances");
    cli.run(&["target", "restart", "web"]).await.ok();
}

#[tokio::test]
async fn stdio_credential_change_starts_a_new_process_and_retires_the_old_one() {
    let gw = Gw::start_with(stdio_opts(|s| s.gc_interval = Duration::from_millis(100))).await;
    let tid = add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let token_path = format!("/api/targets/{tid}/tokens/default");
    crate::support::stdio::put(&gw, &token_path, json!({"token": "first-token"})).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &alice).await;
    assert_eq!(auth_token(&c).await, "first-token");
    let old = pid_of(&c, "fx").await;

    crate::support::stdio::put(&gw, &token_path, json!({"token": "second-token"})).await;
    assert_eq!(
        auth_token(&c).await,
        "second-token",
        "the next call uses the new credentials"
    );
    let new = pid_of(&c, "fx").await;
    assert_ne!(old, new, "in a new process");
    // The old process is not used any more: retired at the next collection, idle TTL or not.
    assert!(
        until_gone(old, Duration::from_secs(10)).await,
        "the old process was retired"
    );
    assert!(alive(new));
}

async fn auth_token(c: &crate::support::mcp_client::McpClient) -> serde_json::Value {
    let text = crate::support::stdio::call_text(c, "fx__env", json!({})).await;
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["AUTH_TOKEN"].clone()
}

#[tokio::test]
async fn stdio_a_process_that_cannot_start_is_a_clear_error_and_backs_off() {
    let gw = Gw::start().await;
    // `false` is found on the child's PATH and exits 1 at once: it never answers initialize.
    add_stdio_target(&gw, "broken", "false", &[], "shared", json!({})).await;
    add_stdio_target(
        &gw,
        "missing",
        "/nonexistent/mcp-server",
        &[],
        "shared",
        json!({}),
    )
    .await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    // Initialize works: the broken targets are left out, the good one is there.
    let c = client(&gw, &token).await;
    assert!(pid_of(&c, "fx").await > 0);

    let call = |name: &str| {
        let body = json!({"name": format!("{name}__anything"), "arguments": {}});
        let c = &c;
        async move { c.request("tools/call", body).await }
    };
    let res = call("missing").await;
    let msg = res["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("missing")
            && msg.contains("cannot start")
            && msg.contains("/nonexistent/mcp-server"),
        "{res}"
    );
    // Right after failures the next start waits: a clear error, not a spawn per call.
    let res = call("broken").await;
    let msg = res["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("broken") && (msg.contains("next start is in") || msg.contains("exit code 1")),
        "{res}"
    );
    let res = call("broken").await;
    let msg = res["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("keeps exiting") && msg.contains("next start is in"),
        "{res}"
    );
    assert!(
        instances(&gw, "broken").await.is_empty(),
        "no instance ever ran"
    );
}

#[tokio::test]
async fn stdio_processes_past_their_max_lifetime_are_replaced_even_when_busy_all_along() {
    let gw = Gw::start_with(stdio_opts(|s| {
        s.max_lifetime = Duration::from_millis(800);
        s.gc_interval = Duration::from_millis(100);
    }))
    .await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &token).await;
    let first = pid_of(&c, "fx").await;
    // Used steadily (never idle for the default 10 minutes), yet replaced once too old.
    let replaced = eventually(Duration::from_secs(10), || async {
        let now = pid_of(&c, "fx").await;
        (now != first).then_some(now)
    })
    .await;
    assert!(
        replaced.is_some(),
        "a process past stdio.max_lifetime was not replaced"
    );
    assert!(until_gone(first, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn stdio_a_child_that_ignores_stdin_and_sigterm_is_killed_and_reaped() {
    let gw = Gw::start().await;
    add_stdio_target(
        &gw,
        "fx",
        &FIXTURE,
        &[],
        "shared",
        json!({"FIXTURE_STUBBORN": "1"}),
    )
    .await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &token).await;
    let pid = pid_of(&c, "fx").await;
    let started = Instant::now();
    let (status, res) = gw
        .server
        .post(
            "/api/targets/fx/restart-instances",
            Some(&gw.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    let took = started.elapsed();
    // Stdin closed, then SIGTERM (ignored), then SIGKILL: each step waits its grace.
    assert!(
        !exists(pid),
        "restart returns once the stubborn child is reaped"
    );
    assert!(
        took >= Duration::from_secs(2),
        "it took the SIGKILL step, after both graces: {took:?}"
    );
    let rows = instances(&gw, "fx").await;
    assert_eq!(rows[0]["status"], "stopped", "{rows:?}");
}
