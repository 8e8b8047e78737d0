//! `reflow logs`: the audit log of real MCP calls read from the database, its filters, JSON
//! lines and table output, bad flags, and `--follow` printing new rows until Ctrl-C.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::cli::Target;
use crate::support::gw::{Gw, PW, eventually};
use crate::support::mcp_client::McpClient;
use crate::support::upstream::UpstreamConfig;

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

async fn call(client: &McpClient, tool: &str) -> Value {
    client
        .exchange("tools/call", json!({"name": tool, "arguments": {}}))
        .await
        .response
}

/// Waits until the API shows `n` tools/call rows (the audit writer is asynchronous).
async fn wait_for_calls(gw: &Gw, n: usize) {
    let last = std::sync::Mutex::new(Value::Null);
    eventually(Duration::from_secs(3), || async {
        let (_, rows) = gw
            .server
            .get("/api/logs?method=tools/call", Some(&gw.admin))
            .await;
        let enough = rows.as_array().map_or(0, Vec::len) >= n;
        *last.lock().unwrap() = rows;
        enough.then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "{n} tools/call rows were not written; GET /api/logs: {}",
            last.lock().unwrap()
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_show_mcp_calls_with_filters() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream("alpha", None, UpstreamConfig::tools("alpha", ["echo"]))
        .await;
    let (bob, bob_user) = gw.server.register("bob@example.com", PW).await;
    let admin = gw.admin_client().await;
    assert!(call(&admin, "alpha__echo").await.get("result").is_some());
    assert!(call(&admin, "alpha__echo").await.get("result").is_some());
    let mut bob_client = McpClient::new(&gw.server, &bob);
    bob_client.initialize().await;
    // No policy lets bob use anything: denied.
    assert!(
        call(&bob_client, "alpha__echo")
            .await
            .get("error")
            .is_some()
    );
    wait_for_calls(&gw, 3).await;
    let t = Target::of(&gw.server.db);

    let all = lines(&t.run(&["logs", "--json"]).await.ok().stdout);
    let calls: Vec<&Value> = all.iter().filter(|r| r["method"] == "tools/call").collect();
    assert_eq!(calls.len(), 3, "{all:?}");
    assert!(
        calls.iter().all(|r| r["name"] == "alpha__echo"),
        "{calls:?}"
    );
    let times: Vec<&str> = all
        .iter()
        .map(|r| r["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "printed oldest first");

    let denied = lines(
        &t.run(&[
            "logs",
            "--json",
            "--method",
            "tools/call",
            "--decision",
            "deny",
        ])
        .await
        .ok()
        .stdout,
    );
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["user_id"], bob_user["id"]);
    let bobs = lines(
        &t.run(&["logs", "--json", "--user", "bob@example.com"])
            .await
            .ok()
            .stdout,
    );
    assert!(!bobs.is_empty() && bobs.iter().all(|r| r["user_id"] == bob_user["id"]));
    let allowed = lines(
        &t.run(&[
            "logs",
            "--json",
            "--target",
            "alpha",
            "--method",
            "tools/call",
            "--decision",
            "allow",
        ])
        .await
        .ok()
        .stdout,
    );
    assert_eq!(allowed.len(), 2, "{allowed:?}");
    let one = lines(&t.run(&["logs", "--json", "--limit", "1"]).await.ok().stdout);
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0]["id"],
        all.last().unwrap()["id"],
        "--limit keeps the newest"
    );
    let recent = lines(
        &t.run(&["logs", "--json", "--since", "1h"])
            .await
            .ok()
            .stdout,
    );
    assert_eq!(recent.len(), all.len());
    let future = lines(
        &t.run(&["logs", "--json", "--since", "2999-01-01T00:00:00Z"])
            .await
            .ok()
            .stdout,
    );
    assert!(future.is_empty());

    let table = t
        .run(&["logs", "--method", "tools/call"])
        .await
        .ok()
        .stdout
        .clone();
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "TIME", "USER", "METHOD", "TARGET", "NAME", "DECISION", "POLICY", "STATUS", "MS",
            "TRACE"
        ]
    );
    let body: Vec<&str> = rows.collect();
    assert_eq!(body.len(), 3, "{table}");
    assert!(
        body.iter()
            .any(|l| l.contains("admin@example.com") && l.contains("allow")),
        "{table}"
    );
    assert!(
        body.iter()
            .any(|l| l.contains("bob@example.com") && l.contains("deny")),
        "{table}"
    );

    t.run(&["logs", "--since", "yesterday-ish"])
        .await
        .fails(1, "since");
    t.run(&["logs", "--decision", "maybe"])
        .await
        .fails(1, "decision");
    t.run(&["logs", "--user", "nobody@example.com"])
        .await
        .fails(1, "nobody@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_prints_new_rows_until_interrupted() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "alpha",
            None,
            UpstreamConfig::tools("alpha", ["echo", "other"]),
        )
        .await;
    let admin = gw.admin_client().await;
    call(&admin, "alpha__echo").await;
    wait_for_calls(&gw, 1).await;
    let t = Target::of(&gw.server.db);

    let mut child = t.spawn(&["logs", "--follow", "--json", "--method", "tools/call"]);
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), out.next_line())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .expect("stdout open");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(
        next().await["name"],
        "alpha__echo",
        "the existing row first"
    );
    call(&admin, "alpha__other").await;
    call(&admin, "alpha__echo").await;
    let (a, b) = (next().await, next().await);
    assert_eq!(
        (a["name"].clone(), b["name"].clone()),
        (json!("alpha__other"), json!("alpha__echo"))
    );
    assert!(a["created_at"].as_str() <= b["created_at"].as_str());

    // Ctrl-C ends it cleanly, with nothing printed twice by the polls meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits after SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let rest = tokio::time::timeout(Duration::from_secs(1), out.next_line()).await;
    assert!(
        matches!(rest, Ok(Ok(None))),
        "no duplicates after the new rows: {rest:?}"
    );
}
