//! Stdio upstreams with real reference servers: `@modelcontextprotocol/server-everything` (its
//! `get-env` tool shows each child's environment), `server-memory`, and the project's Python
//! conformance fixture (progress over stdio). They need REFLOW_TEST_NODE +
//! REFLOW_TEST_NPM_MODULES, or REFLOW_FIXTURE_PYTHON + REFLOW_FIXTURE_SERVER, so they are
//! ignored unless asked for (`cargo test -- --ignored`, as .ci/run does).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::gw::Gw;
use crate::support::mcp_client::SseEvent;
use crate::support::stdio::{
    add_stdio_target, call_text, client, instances, node, put, running_pids, user,
};

#[tokio::test]
#[ignore = "needs Node and the interop npm packages (REFLOW_TEST_NODE, REFLOW_TEST_NPM_MODULES): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn stdio_server_everything_per_user_processes_get_their_own_env() {
    let Some((node, modules)) = node("stdio_server_everything_per_user") else {
        return;
    };
    let entry = modules.join("@modelcontextprotocol/server-everything/dist/index.js");
    let gw = Gw::start().await;
    let tid = add_stdio_target(
        &gw,
        "ev",
        &node,
        &[entry.to_str().unwrap(), "stdio"],
        "per_user",
        json!({"REGION": "eu"}),
    )
    .await;
    let (alice_id, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (bob_id, bob) = user(&gw, "bob@example.com", "dev", &[]).await;
    for (id, key) in [(&alice_id, "alice-key"), (&bob_id, "bob-key")] {
        put(
            &gw,
            &format!("/api/targets/{tid}/env/user/{id}"),
            json!({"API_KEY": key}),
        )
        .await;
    }
    let data = gw.server.settings.data_dir.clone();
    let jwt = std::fs::read_to_string(data.join("jwt_secret")).unwrap();
    let enc = std::fs::read_to_string(data.join("encryption.key")).unwrap();
    let mut seen = Vec::new();
    for (token, key) in [(&alice, "alice-key"), (&bob, "bob-key")] {
        let c = client(&gw, token).await;
        let text = call_text(&c, "ev__get-env", json!({})).await;
        let env: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(env["API_KEY"], key, "{env}");
        assert_eq!(env["REGION"], "eu");
        let keys: HashSet<&str> = env
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["PATH", "HOME", "LANG", "TMPDIR", "REGION", "API_KEY"].into(),
            "only the base, the target's env and the caller's credentials: {env}"
        );
        assert!(!text.contains(jwt.trim()), "JWT secret leaked");
        assert!(!text.contains(enc.trim()), "encryption key leaked");
        assert!(
            !text.contains("REFLOW_"),
            "a REFLOW_* variable leaked: {text}"
        );
        seen.push(env);
    }
    let rows = instances(&gw, "ev").await;
    let pids = running_pids(&rows);
    assert_eq!(pids.len(), 2, "two users, two processes: {rows:?}");
    assert_ne!(pids[0], pids[1]);
}

#[tokio::test]
#[ignore = "needs Node and the interop npm packages (REFLOW_TEST_NODE, REFLOW_TEST_NPM_MODULES): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn stdio_server_memory_is_shared_by_the_sessions_of_a_shared_target() {
    let Some((node, modules)) = node("stdio_server_memory_shared") else {
        return;
    };
    let entry = modules.join("@modelcontextprotocol/server-memory/dist/index.js");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("memory.jsonl");
    let gw = Gw::start().await;
    add_stdio_target(
        &gw,
        "mem",
        &node,
        &[entry.to_str().unwrap()],
        "shared",
        json!({"MEMORY_FILE_PATH": file.to_str().unwrap()}),
    )
    .await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "ops", &[]).await;
    let a = client(&gw, &alice).await;
    let b = client(&gw, &bob).await;
    a.result(
        "tools/call",
        json!({"name": "mem__create_entities", "arguments": {"entities": [
            {"name": "reflow", "entityType": "project", "observations": ["an MCP gateway"]}
        ]}}),
    )
    .await;
    let graph = call_text(&b, "mem__read_graph", json!({})).await;
    assert!(
        graph.contains("reflow") && graph.contains("an MCP gateway"),
        "bob reads what alice wrote through the one shared process: {graph}"
    );
    assert!(
        std::fs::read_to_string(&file).unwrap().contains("reflow"),
        "the target's env (MEMORY_FILE_PATH) reached the process"
    );
    assert_eq!(running_pids(&instances(&gw, "mem").await).len(), 1);
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn stdio_python_fixture_relays_progress_to_the_calling_request() {
    let (Ok(python), Ok(server)) = (
        std::env::var("REFLOW_FIXTURE_PYTHON"),
        std::env::var("REFLOW_FIXTURE_SERVER"),
    ) else {
        panic!("set REFLOW_FIXTURE_PYTHON and REFLOW_FIXTURE_SERVER (run tests/interop/setup)");
    };
    let gw = Gw::start().await;
    add_stdio_target(
        &gw,
        "py",
        &python,
        &[&server, "--transport", "stdio"],
        "shared",
        json!({}),
    )
    .await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let c = client(&gw, &alice).await;
    assert_eq!(
        call_text(&c, "py__test_simple_text", json!({})).await,
        "This is a simple text response for testing."
    );
    let ex = c
        .exchange(
            "tools/call",
            json!({"name": "py__test_tool_with_progress", "arguments": {},
                   "_meta": {"progressToken": "mine"}}),
        )
        .await;
    assert_eq!(ex.status, 200);
    assert!(ex.response.get("result").is_some(), "{}", ex.response);
    let progress: Vec<&SseEvent> = ex
        .events
        .iter()
        .filter(|e| e.data["method"] == "notifications/progress")
        .collect();
    assert_eq!(
        progress.len(),
        3,
        "progress before the response: {:?}",
        ex.events
    );
    for e in progress {
        assert_eq!(e.data["params"]["progressToken"], "mine", "{e:?}");
    }
    // A second call on the same process works too (the process is shared and stays up).
    tokio::time::timeout(
        Duration::from_secs(20),
        call_text(&c, "py__test_simple_text", json!({})),
    )
    .await
    .unwrap();
}
