//! Policies on the data path, end to end: a `dev` role sees only what it is allowed, denied
//! tools are hidden and refused like unknown ones, a policy change applies to a live session,
//! and every decision lands in the audit log with the policy that made it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::gw::{Gw, PW, all_tool_names, error_code, eventually, tool_text};
use crate::support::mcp_client::McpClient;
use crate::support::upstream::UpstreamConfig;

async fn dev_user(gw: &Gw) -> String {
    let (_, user) = gw.server.register("dev@example.com", PW).await;
    let id = user["id"].as_str().unwrap();
    let (status, _) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/users/{id}"),
            Some(&gw.admin),
            Some(json!({"role": "dev"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, login) = gw
        .server
        .post(
            "/api/auth/login",
            None,
            json!({"email": "dev@example.com", "password": PW}),
        )
        .await;
    login["token"].as_str().unwrap().to_string()
}

async fn add_policy(gw: &Gw, body: Value) -> Value {
    let (status, created) = gw.server.post("/api/policies", Some(&gw.admin), body).await;
    assert_eq!(status, 201, "{created}");
    created
}

#[tokio::test]
async fn policies_filter_lists_refuse_calls_and_apply_to_live_sessions() {
    let gw = Gw::start().await;
    let _gh = gw
        .upstream(
            "github",
            None,
            UpstreamConfig::tools("gh", ["list_repos", "delete_repo", "undelete_x"]),
        )
        .await;
    let _jira = gw
        .upstream(
            "jira",
            None,
            UpstreamConfig::tools("jira", ["create_issue"]),
        )
        .await;
    let token = dev_user(&gw).await;

    // Default deny: the dev role sees nothing yet.
    let mut dev = McpClient::new(&gw.server, &token);
    dev.initialize().await;
    assert!(
        all_tool_names(&dev).await.is_empty(),
        "no policy names dev: nothing visible"
    );
    let (status, targets) = gw.server.get("/api/targets", Some(&token)).await;
    assert_eq!((status, targets.as_array().map(Vec::len)), (200, Some(0)));

    add_policy(
        &gw,
        json!({"name": "dev-github", "target": "github", "resource_type": "all", "effect": "allow",
               "priority": 100, "subjects": [{"subject_type": "role", "subject_value": "dev"}]}),
    )
    .await;
    // The open session sees the change without reconnecting.
    let names = eventually(Duration::from_secs(2), || async {
        let n = all_tool_names(&dev).await;
        (!n.is_empty()).then_some(n)
    })
    .await
    .expect("the allow policy applies to the live session");
    assert_eq!(
        names,
        [
            "github__list_repos",
            "github__delete_repo",
            "github__undelete_x"
        ]
    );
    let (_, targets) = gw.server.get("/api/targets", Some(&token)).await;
    assert_eq!(targets.as_array().unwrap().len(), 1, "{targets}");
    assert_eq!(targets[0]["name"], "github");

    add_policy(
        &gw,
        json!({"name": "no-delete", "target": null, "resource_type": "tool", "resource_pattern": "delete_.*",
               "effect": "deny", "priority": 500, "subjects": [{"subject_type": "everyone"}]}),
    )
    .await;
    let names = all_tool_names(&dev).await;
    assert_eq!(
        names,
        ["github__list_repos", "github__undelete_x"],
        "anchored: undelete_x stays"
    );

    let denied = dev
        .exchange(
            "tools/call",
            json!({"name": "github__delete_repo", "arguments": {}}),
        )
        .await
        .response;
    let unknown = dev
        .exchange(
            "tools/call",
            json!({"name": "github__no_such_tool", "arguments": {}}),
        )
        .await
        .response;
    assert_eq!(
        error_code(&denied),
        error_code(&unknown),
        "denied answers like unknown: {denied} / {unknown}"
    );
    assert_eq!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .replace("delete_repo", "X"),
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no_such_tool", "X")
    );
    let jira = dev
        .exchange(
            "tools/call",
            json!({"name": "jira__create_issue", "arguments": {}}),
        )
        .await
        .response;
    assert!(
        jira.get("error").is_some(),
        "another target stays denied: {jira}"
    );
    let ok = dev
        .result(
            "tools/call",
            json!({"name": "github__list_repos", "arguments": {"q": 1}}),
        )
        .await;
    assert_eq!(tool_text(&ok)["tool"], "list_repos");

    // The admin still sees everything (the installed admin-all policy has priority 1000).
    let admin = gw.admin_client().await;
    assert_eq!(all_tool_names(&admin).await.len(), 4);

    // Audit rows: allowed and denied calls with the policy that decided.
    let rows = gw.audit_rows("method=tools/call&limit=50", 4).await;
    let find = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {name}: {rows:?}"))
    };
    let d = find("github__delete_repo");
    assert_eq!(
        (d["decision"].as_str(), d["policy_name"].as_str()),
        (Some("deny"), Some("no-delete")),
        "{d}"
    );
    let a = find("github__list_repos");
    assert_eq!(
        (a["decision"].as_str(), a["policy_name"].as_str()),
        (Some("allow"), Some("dev-github")),
        "{a}"
    );
    assert_eq!(a["target_name"], "github");
    assert_eq!(a["response_status"], 0);
    let j = find("jira__create_issue");
    assert_eq!(j["decision"], "deny", "{j}");
    // A user sees only their own rows.
    let (_, own) = gw.server.get("/api/logs?limit=200", Some(&token)).await;
    let dev_id = d["user_id"].clone();
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|r| r["user_id"] == dev_id),
        "{own}"
    );
    let (_, denied_only) = gw
        .server
        .get("/api/logs?decision=deny", Some(&gw.admin))
        .await;
    assert!(
        denied_only
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["decision"] == "deny")
    );
    let (status, body) = gw
        .server
        .get("/api/logs?decision=maybe", Some(&gw.admin))
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn audit_loses_no_row_under_load() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream("fast", None, UpstreamConfig::tools("fast", ["echo"]))
        .await;
    let client = std::sync::Arc::new(gw.admin_client().await);
    const CALLS: usize = 10_000;
    const WORKERS: usize = 16;
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..CALLS).step_by(WORKERS) {
                let r = client
                    .result(
                        "tools/call",
                        json!({"name": "fast__echo", "arguments": {"i": i}}),
                    )
                    .await;
                assert_eq!(tool_text(&r)["args"]["i"], i);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counted = eventually(Duration::from_secs(10), || async {
        let mut n = 0;
        let mut offset = 0;
        loop {
            let (_, page) = gw
                .server
                .get(
                    &format!("/api/logs?method=tools/call&limit=1000&offset={offset}"),
                    Some(&gw.admin),
                )
                .await;
            let len = page.as_array().map_or(0, Vec::len);
            n += len;
            offset += len;
            if len < 1000 {
                break;
            }
        }
        (n >= CALLS).then_some(n)
    })
    .await;
    assert_eq!(counted, Some(CALLS), "every call has exactly one audit row");
}

/// The audit decision comes from what happened, not from the error's wording: an upstream
/// error that reads like the gateway's own refusal ("unknown tool: …") is an allowed call that
/// failed upstream, and a call refused by policy is a deny naming the policy.
#[tokio::test]
async fn audit_tells_a_policy_refusal_from_an_upstream_error() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "svc",
            None,
            UpstreamConfig {
                failing_tool: Some(("explode".into(), "unknown tool: explode is resting".into())),
                ..UpstreamConfig::tools("svc", ["secret_op", "echo"])
            },
        )
        .await;
    let token = dev_user(&gw).await;
    add_policy(
        &gw,
        json!({"name": "dev-svc", "target": "svc", "resource_type": "all", "effect": "allow",
               "priority": 100, "subjects": [{"subject_type": "role", "subject_value": "dev"}]}),
    )
    .await;
    add_policy(
        &gw,
        json!({"name": "no-secret", "target": "svc", "resource_type": "tool", "resource_pattern": "secret_.*",
               "effect": "deny", "priority": 200, "subjects": [{"subject_type": "role", "subject_value": "dev"}]}),
    )
    .await;
    let mut dev = McpClient::new(&gw.server, &token);
    dev.initialize().await;
    let failed = dev
        .exchange(
            "tools/call",
            json!({"name": "svc__explode", "arguments": {}}),
        )
        .await
        .response;
    assert_eq!(
        failed["error"]["message"], "unknown tool: explode is resting",
        "the upstream's own error reaches the client: {failed}"
    );
    let denied = dev
        .exchange(
            "tools/call",
            json!({"name": "svc__secret_op", "arguments": {}}),
        )
        .await
        .response;
    assert_eq!(
        denied["error"]["message"], "unknown tool: svc__secret_op",
        "{denied}"
    );
    let rows = gw.audit_rows("method=tools/call&limit=50", 2).await;
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).cloned().unwrap();
    let up = row("svc__explode");
    assert_eq!(
        (
            up["decision"].as_str(),
            up["policy_name"].as_str(),
            up["target_name"].as_str(),
            up["response_status"].as_i64()
        ),
        (Some("allow"), Some("dev-svc"), Some("svc"), Some(-32602)),
        "{up}"
    );
    assert_eq!(up["error"], "unknown tool: explode is resting", "{up}");
    let refused = row("svc__secret_op");
    assert_eq!(
        (
            refused["decision"].as_str(),
            refused["policy_name"].as_str(),
            refused["target_name"].as_str()
        ),
        (Some("deny"), Some("no-secret"), Some("svc")),
        "{refused}"
    );
}
