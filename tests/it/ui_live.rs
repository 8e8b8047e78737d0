//! The API behind the UI's live and explorer pages, end to end with a real upstream: the SSE
//! stream shows a new `tools/call` within 2 s (admins see everyone, users only themselves), the
//! snapshot counts it, the explorer (API and CLI) agrees with a real MCP client, `target test`
//! lists items, and the audit export returns the filtered rows as CSV and JSON.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::gw::{Gw, PW, all_tool_names};
use crate::support::mcp_client::McpClient;
use crate::support::upstream::UpstreamConfig;

/// Reads SSE `activity` events from `res` until one mentions `needle` or `limit` passes.
async fn activity_within(res: reqwest::Response, needle: &str, limit: Duration) -> Option<Value> {
    let mut stream = eventsource_stream::Eventsource::eventsource(res.bytes_stream());
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()??;
        let ev = next.ok()?;
        if ev.event == "activity" && ev.data.contains(needle) {
            return serde_json::from_str(&ev.data).ok();
        }
    }
}

async fn user_token(gw: &Gw, email: &str, role: &str) -> (String, String) {
    let (status, created) = gw
        .server
        .post(
            "/api/users",
            Some(&gw.admin),
            json!({"email": email, "password": PW, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (_, login) = gw
        .server
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW}),
        )
        .await;
    (
        login["token"].as_str().unwrap().to_string(),
        created["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn stream_shows_a_call_within_two_seconds_scoped_to_the_caller() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "gh",
            None,
            UpstreamConfig::tools("gh", ["echo", "delete_repo"]),
        )
        .await;
    let (dev, dev_id) = user_token(&gw, "dev@example.com", "dev").await;
    let (status, _) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "dev-gh", "target": "gh", "resource_type": "tool", "resource_pattern": "echo",
                   "effect": "allow", "priority": 100, "subjects": [{"subject_type": "role", "subject_value": "dev"}]}),
        )
        .await;
    assert_eq!(status, 201);
    let open = |token: &str| {
        gw.server
            .http
            .get(gw.server.url("/api/observability/stream"))
            .bearer_auth(token)
            .send()
    };
    let admin_stream = open(&gw.admin).await.unwrap();
    assert_eq!(admin_stream.status(), 200);
    assert!(
        admin_stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let dev_stream = open(&dev).await.unwrap();

    let admin_client = gw.admin_client().await;
    let started = tokio::time::Instant::now();
    admin_client
        .result(
            "tools/call",
            json!({"name": "gh__echo", "arguments": {"x": 1}}),
        )
        .await;
    let seen = activity_within(admin_stream, "gh__echo", Duration::from_secs(2))
        .await
        .expect("the admin's stream shows the call within 2 s");
    assert!(started.elapsed() < Duration::from_secs(2));
    let row = seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gh__echo")
        .unwrap()
        .clone();
    assert_eq!(row["method"], "tools/call");
    assert_eq!(row["target"], "gh");
    assert_eq!(row["decision"], "allow");
    assert!(row.get("request_body").is_none());

    // The dev's stream never shows the admin's call, only the dev's own.
    let mut dev_client = McpClient::new(&gw.server, &dev);
    dev_client.initialize().await;
    dev_client
        .result(
            "tools/call",
            json!({"name": "gh__echo", "arguments": {"mine": true}}),
        )
        .await;
    let mine = activity_within(dev_stream, "gh__echo", Duration::from_secs(2))
        .await
        .expect("the dev's stream shows their own call");
    for r in mine["rows"].as_array().unwrap() {
        assert_eq!(
            r["user_id"],
            json!(dev_id),
            "a user saw someone else's row: {r}"
        );
    }

    let (_, snap) = gw
        .server
        .get("/api/observability/snapshot", Some(&gw.admin))
        .await;
    assert_eq!(snap["scope"], "everyone");
    assert_eq!(snap["per_replica"], true);
    assert!(
        snap["totals"]["requests_1m"].as_u64().unwrap() >= 2,
        "{snap}"
    );
    assert!(
        snap["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "gh")
    );
    // The upstream speaks only the legacy era (probed on first use); no listen stream is open.
    assert_eq!(snap["eras"]["gh"], "legacy", "{snap}");
    assert_eq!(snap["listen_streams"], 0, "{snap}");
    let (_, own) = gw
        .server
        .get("/api/observability/snapshot", Some(&dev))
        .await;
    assert_eq!(own["scope"], "self");
    assert!(own["targets"].as_array().unwrap().is_empty());
    assert!(own["sessions"].is_null());
    assert!(
        own["eras"].is_null() && own["listen_streams"].is_null(),
        "{own}"
    );
}

#[tokio::test]
async fn explorer_agrees_with_a_real_client_and_target_test_lists_items() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "gh",
            None,
            UpstreamConfig::tools("gh", ["list_repos", "delete_repo", "create_issue"]),
        )
        .await;
    let (dev, _) = user_token(&gw, "dev@example.com", "dev").await;
    for body in [
        json!({"name": "dev-gh", "target": "gh", "resource_type": "all", "effect": "allow", "priority": 100,
               "subjects": [{"subject_type": "role", "subject_value": "dev"}]}),
        json!({"name": "no-delete", "resource_type": "tool", "resource_pattern": "delete_.*", "effect": "deny",
               "priority": 500, "subjects": [{"subject_type": "everyone"}]}),
    ] {
        let (status, p) = gw.server.post("/api/policies", Some(&gw.admin), body).await;
        assert_eq!(status, 201, "{p}");
    }
    let mut client = McpClient::new(&gw.server, &dev);
    client.initialize().await;
    let mut listed = all_tool_names(&client).await;
    listed.sort();

    let (status, access) = gw
        .server
        .post(
            "/api/policies/explain",
            Some(&gw.admin),
            json!({"email": "dev@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{access}");
    let gh = access["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "gh")
        .unwrap();
    assert_eq!(gh["visible"], true);
    assert_eq!(gh["policy"], "dev-gh");
    let mut allowed: Vec<String> = gh["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "tool" && i["allowed"] == true)
        .map(|i| i["exposed"].as_str().unwrap().to_string())
        .collect();
    allowed.sort();
    assert_eq!(allowed, listed, "the explorer and the client disagree");
    let delete = gh["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "delete_repo")
        .unwrap();
    assert_eq!(
        (delete["allowed"].clone(), delete["policy"].clone()),
        (json!(false), json!("no-delete"))
    );

    // The CLI's explorer gives the same answer.
    let cli = crate::support::cli::Target::of(&gw.server.db)
        .run(&["policy", "explain", "--user", "dev@example.com", "--json"])
        .await;
    let from_cli = cli.ok().json();
    let mut cli_allowed: Vec<String> = from_cli["targets"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["allowed"] == true && i["kind"] == "tool")
        .map(|i| i["exposed"].as_str().unwrap().to_string())
        .collect();
    cli_allowed.sort();
    assert_eq!(cli_allowed, listed);

    // A role with no policy sees nothing.
    let (_, nobody) = gw
        .server
        .post(
            "/api/policies/explain",
            Some(&gw.admin),
            json!({"role": "guest", "groups": ["x"]}),
        )
        .await;
    assert!(
        nobody["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["visible"] == false)
    );

    let (status, report) = gw
        .server
        .post("/api/targets/gh/test", Some(&gw.admin), json!({}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["counts"]["tools"], 3);
    assert_eq!(report["items"]["tools"].as_array().unwrap().len(), 3);
    assert!(report["era"].is_string());
    let (status, _) = gw
        .server
        .post("/api/targets/gh/test", Some(&dev), json!({}))
        .await;
    assert_eq!(status, 403);
}

/// GET /api/logs/export?{q} as the admin: status, Content-Disposition, body.
async fn export(gw: &Gw, q: &str) -> (u16, Option<String>, String) {
    let res = gw
        .server
        .http
        .get(gw.server.url(&format!("/api/logs/export?{q}")))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.headers()
            .get("content-disposition")
            .map(|v| v.to_str().unwrap().to_string()),
        res.text().await.unwrap(),
    )
}

#[tokio::test]
async fn audit_export_returns_the_filtered_rows() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream("gh", None, UpstreamConfig::tools("gh", ["echo"]))
        .await;
    let client = gw.admin_client().await;
    client
        .result("tools/call", json!({"name": "gh__echo", "arguments": {}}))
        .await;
    client.result("tools/list", json!({})).await;
    // Rows reach the store through the batched writer: wait for them.
    let mut csv = String::new();
    for _ in 0..100 {
        let (status, disposition, body) = export(&gw, "format=csv&method=tools/call").await;
        assert_eq!(status, 200);
        assert!(disposition.unwrap().contains("reflow-audit.csv"));
        csv = body;
        if csv.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert!(lines[0].starts_with("id,created_at,user_id"), "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains("tools/call") && lines[1].contains("gh__echo"));
    let (_, _, json_rows) = export(&gw, "format=json&method=tools/list").await;
    let rows: Vec<Value> = serde_json::from_str(&json_rows).unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["method"] == "tools/list"));
    let (_, _, none) = export(&gw, "format=json&until=2000-01-01T00:00:00Z").await;
    assert_eq!(none.trim(), "[]");
    let (status, _, _) = export(&gw, "format=xml").await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .server
        .send(Method::GET, "/api/logs?until=soon", Some(&gw.admin), None)
        .await;
    assert_eq!(status, 422);
}
