//! Stdio target fixtures: the dependency-free fixture server, targets and users through the
//! API, and process checks by pid.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::gw::{Gw, PW, eventually};
use super::mcp_client::McpClient;

/// `tests/fixtures/stdio_fixture.rs`: an example, which `cargo test` builds beside the tests.
pub static FIXTURE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/it-HASH → target/<profile>/examples/stdio_fixture
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = dir.join("examples").join("stdio_fixture");
    let how = "`cargo test` builds it; a narrower `cargo test --test it` does not, so run \
               `cargo build --example stdio_fixture` first";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {how}", path.display()));
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stdio_fixture.rs"
    );
    let changed = std::fs::metadata(source).and_then(|m| m.modified());
    // Never test against an old build of the fixture.
    assert!(
        changed.is_ok_and(|c| c <= built),
        "{} is older than {source}: {how}",
        path.display()
    );
    path.display().to_string()
});

/// Node and the interop `node_modules` (REFLOW_TEST_NODE, REFLOW_TEST_NPM_MODULES). Tests that
/// need them are #[ignore]d; run explicitly without them, they fail saying what is missing.
pub fn node(test: &str) -> Option<(String, std::path::PathBuf)> {
    match (
        std::env::var("REFLOW_TEST_NODE"),
        std::env::var("REFLOW_TEST_NPM_MODULES"),
    ) {
        (Ok(node), Ok(modules)) => Some((node, modules.into())),
        _ => panic!(
            "{test}: set REFLOW_TEST_NODE and REFLOW_TEST_NPM_MODULES (run tests/interop/setup; see .ci/run)"
        ),
    }
}

/// Creates a stdio target visible to everyone; returns its id.
pub async fn add_stdio_target(
    gw: &Gw,
    name: &str,
    command: &str,
    args: &[&str],
    isolation: &str,
    env: Value,
) -> String {
    let (status, t) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": name, "transport_type": "stdio", "command": command, "args": args,
                   "isolation_boundary": isolation, "env": env, "timeout": 20}),
        )
        .await;
    assert_eq!(status, 201, "create stdio target {name}: {t}");
    let (status, p) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": format!("everyone-{name}"), "target": name, "resource_type": "all",
                   "effect": "allow", "priority": 10, "subjects": [{"subject_type": "everyone"}]}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    t["id"].as_str().unwrap().to_string()
}

/// Registers a user with `role` and `groups`; returns (user id, fresh token).
pub async fn user(gw: &Gw, email: &str, role: &str, groups: &[&str]) -> (String, String) {
    let (_, u) = gw.server.register(email, PW).await;
    let id = u["id"].as_str().unwrap().to_string();
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/users/{id}"),
            Some(&gw.admin),
            Some(json!({"role": role, "groups": groups})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (id, gw.server.login(email, PW).await)
}

pub async fn put(gw: &Gw, path: &str, body: Value) {
    let (status, res) = gw
        .server
        .send(Method::PUT, path, Some(&gw.admin), Some(body))
        .await;
    assert!(status == 200 || status == 204, "PUT {path}: {status} {res}");
}

pub async fn client(gw: &Gw, token: &str) -> McpClient {
    let mut c = McpClient::new(&gw.server, token);
    c.initialize().await;
    c
}

/// The text of a tool call's first content item.
pub fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {result}"))
        .to_string()
}

/// Calls a tool and returns the text of its result (panics on an error).
pub async fn call_text(c: &McpClient, tool: &str, args: Value) -> String {
    text(
        &c.result("tools/call", json!({"name": tool, "arguments": args}))
            .await,
    )
}

pub async fn pid_of(c: &McpClient, target: &str) -> u32 {
    call_text(c, &format!("{target}__pid"), json!({}))
        .await
        .parse()
        .unwrap()
}

/// The instances API for a target.
pub async fn instances(gw: &Gw, target: &str) -> Vec<Value> {
    let (status, body) = gw
        .server
        .get(&format!("/api/targets/{target}/instances"), Some(&gw.admin))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

pub fn running_pids(rows: &[Value]) -> Vec<u32> {
    let mut pids: Vec<u32> = rows
        .iter()
        .filter(|r| r["status"] == "running")
        .map(|r| r["pid"].as_u64().unwrap() as u32)
        .collect();
    pids.sort_unstable();
    pids
}

/// True while the process exists and is not a zombie (a zombie is dead but unreaped).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// True if the process exists in any state, zombies included.
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub async fn until_gone(pid: u32, within: Duration) -> bool {
    eventually(within, || async move { (!exists(pid)).then_some(()) })
        .await
        .is_some()
}
