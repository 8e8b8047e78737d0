//! The official SDK clients (Python `mcp`, TypeScript SDK v1) through reflow to real stdio
//! servers (server-everything, server-memory) that `reflow bridge` serves over Streamable HTTP.
//! Needs the interop environment (tests/interop/setup), hence #[ignore]; .ci/run runs them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::bridge::Bridge;
use crate::support::bridge_token::{bearer_target, guarded};
use crate::support::gw::Gw;
use crate::support::stdio::node;

const TOKEN_VAR: &str = "BRIDGE_SDK_TOKEN";
const TOKEN: &str = "bridge-sdk-secret-41c9";
const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/clients");

fn python() -> String {
    std::env::var("REFLOW_FIXTURE_PYTHON")
        .expect("set REFLOW_FIXTURE_PYTHON (the interop venv's python; run tests/interop/setup)")
}

/// A gateway with targets at the bridge (bearer token as the default credential), visible to
/// everyone; `targets` are (name, statefulness or None for the default).
async fn gateway_to(bridge: &Bridge, targets: &[(&str, Option<&str>)]) -> Gw {
    let gw = Gw::start().await;
    for (name, statefulness) in targets {
        let mut body = json!({"name": name, "url": bridge.url(), "transport_type": "streamable-http",
                              "auth_type": "bearer", "timeout": 30});
        if let Some(s) = statefulness {
            body["statefulness"] = json!(s);
        }
        bearer_target(&gw, body, TOKEN).await;
    }
    gw
}

/// server-memory behind a bridge, its graph in a file of its own (removed with the TempDir).
async fn memory_bridge(node: &str, modules: &Path) -> (Bridge, PathBuf, tempfile::TempDir) {
    let memory = modules.join("@modelcontextprotocol/server-memory/dist/index.js");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("memory.jsonl");
    let b = guarded(
        (TOKEN_VAR, TOKEN),
        &[],
        // The bridge's environment is how the server is configured (as in a container).
        &[("MEMORY_FILE_PATH", file.to_str().unwrap())],
        &[node, memory.to_str().unwrap()],
    )
    .await;
    (b, file, dir)
}

/// memory_client.py at `url` (`target` "": the bridge itself), writing `entity`; `mode` None:
/// the client's default.
async fn py_memory(
    url: &str,
    token: &str,
    target: &str,
    entity: &str,
    mode: Option<&str>,
) -> Value {
    let script = format!("{CLIENTS}/memory_client.py");
    let mut args = vec![
        script.as_str(),
        url,
        "--token",
        token,
        "--target",
        target,
        "--entity",
        entity,
    ];
    args.extend(mode.iter().flat_map(|m| ["--mode", m]));
    run_client(&python(), &args).await
}

/// memory_client.mjs (TypeScript SDK v1) at `url`, writing `entity`.
async fn ts_memory(node: &str, url: &str, token: &str, target: &str, entity: &str) -> Value {
    let script = format!("{CLIENTS}/memory_client.mjs");
    run_client(node, &[&script, url, token, target, entity]).await
}

/// A client's summary said nothing failed outright; else it and the bridge's log.
#[track_caller]
fn no_fatal(out: &Value, b: &Bridge) {
    assert!(out.get("fatal").is_none(), "{out}\n{}", tail(&b.log(), 40));
}

/// Runs a client script; its one JSON line on stdout.
async fn run_client(program: &str, args: &[&str]) -> Value {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} ran over 120 s"))
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{'));
    serde_json::from_str(line.unwrap_or("null")).unwrap_or_else(|e| {
        panic!(
            "{program} {args:?}: no JSON summary ({e}); stdout {stdout}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// judge.py's verdict on a py_client/ts_v1_client summary: enough checks pass (tools listed,
/// then echo, progress and sampling per target), and what failed goes to `failures`.
async fn judge(
    failures: &mut Vec<String>,
    label: &str,
    summary: &Value,
    targets: &str,
    canned: &str,
    prefix: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.json");
    std::fs::write(&file, summary.to_string()).unwrap();
    let out = tokio::process::Command::new("python3")
        .arg(format!("{CLIENTS}/judge.py"))
        .arg(label)
        .arg(&file)
        .args([
            "--targets",
            targets,
            "--canned",
            canned,
            "--echo-prefix",
            prefix,
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprint!("{text}");
    let passes = text.lines().filter(|l| l.starts_with("PASS ")).count();
    assert!(passes >= 7, "{label}: {summary}");
    failures.extend(
        text.lines()
            .filter(|l| l.starts_with("FAIL "))
            .map(|f| format!("{f}\n  summary: {summary}")),
    );
}

#[tokio::test]
#[ignore = "needs Node, the interop npm packages and the Python SDK (REFLOW_TEST_NODE, REFLOW_TEST_NPM_MODULES, REFLOW_FIXTURE_PYTHON): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn sdk_clients_use_server_everything_through_reflow_and_the_bridge() {
    let Some((node, modules)) = node("bridge_server_everything") else {
        return;
    };
    let everything = modules.join("@modelcontextprotocol/server-everything/dist/index.js");
    let b = guarded(
        (TOKEN_VAR, TOKEN),
        &[],
        &[],
        &[&node, everything.to_str().unwrap(), "stdio"],
    )
    .await;
    // A stateful target and one with default settings, both at the one bridge.
    let gw = gateway_to(&b, &[("evbr", Some("stateful")), ("evbrd", None)]).await;
    let url = gw.server.url("/mcp");
    let targets = "evbr,evbrd";
    let mut failures = Vec::new();
    for mode in ["legacy", "auto"] {
        let summary = run_client(
            &python(),
            &[
                &format!("{CLIENTS}/py_client.py"),
                &url,
                "--token",
                &gw.admin,
                "--mode",
                mode,
                "--targets",
                targets,
            ],
        )
        .await;
        judge(
            &mut failures,
            &format!("python mode={mode}"),
            &summary,
            targets,
            "canned-sampling-answer-from-py",
            "hi-from-py",
        )
        .await;
    }
    let summary = run_client(
        &node,
        &[
            &format!("{CLIENTS}/ts_v1_client.mjs"),
            &url,
            &gw.admin,
            targets,
        ],
    )
    .await;
    judge(
        &mut failures,
        "ts-sdk-v1",
        &summary,
        targets,
        "canned-sampling-answer-from-ts",
        "hi-from-ts",
    )
    .await;
    assert!(
        failures.is_empty(),
        "{}\n--- bridge log (tail) ---\n{}",
        failures.join("\n"),
        tail(&b.log(), 40)
    );
}

#[tokio::test]
#[ignore = "needs Node, the interop npm packages and the Python SDK (REFLOW_TEST_NODE, REFLOW_TEST_NPM_MODULES, REFLOW_FIXTURE_PYTHON): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn sdk_clients_use_server_memory_through_reflow_and_the_bridge() {
    let Some((node, modules)) = node("bridge_server_memory") else {
        return;
    };
    let (b, file, _dir) = memory_bridge(&node, &modules).await;
    let gw = gateway_to(&b, &[("mem", Some("stateful"))]).await;
    let url = gw.server.url("/mcp");
    let mut written = Vec::new();
    for mode in ["legacy", "auto"] {
        let entity = format!("py-{mode}-entity");
        let out = py_memory(&url, &gw.admin, "mem", &entity, Some(mode)).await;
        no_fatal(&out, &b);
        assert!(
            out["tools"].to_string().contains("mem__read_graph"),
            "{out}"
        );
        assert!(out["graph"].as_str().unwrap().contains(&entity), "{out}");
        written.push(entity);
    }
    let out = ts_memory(&node, &url, &gw.admin, "mem", "ts-entity").await;
    no_fatal(&out, &b);
    let graph = out["graph"].as_str().unwrap();
    written.push("ts-entity".into());
    // Each session had its own process, all on the one file: the TS client reads what the
    // Python sessions wrote before it.
    for entity in &written {
        assert!(
            graph.contains(entity.as_str()),
            "{entity} missing from {graph}"
        );
    }
    // A 2026-07-28 client reaches the same stdio server: reflow bridges the eras, the bridge
    // speaks the session era behind it.
    let out = run_client(
        &python(),
        &[
            &format!("{CLIENTS}/era_py.py"),
            &url,
            "--token",
            &gw.admin,
            "--mode",
            "2026-07-28",
            "--tool",
            "mem__read_graph",
            "--expect-tool",
            "mem__read_graph",
        ],
    )
    .await;
    assert_eq!(out["protocol_version"], "2026-07-28", "{out}");
    let text = out["call"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"));
    assert!(text.contains("ts-entity"), "{out}");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.iter().all(|e| stored.contains(e.as_str())),
        "MEMORY_FILE_PATH reached the server through the bridge's environment: {stored}"
    );
    assert!(!stored.contains(TOKEN));
}

/// The SDK clients straight at the bridge (no gateway): the Python client in auto mode probes
/// the 2026-07-28 era first and must fall back to a session-era `initialize`.
#[tokio::test]
#[ignore = "needs Node, the interop npm packages and the Python SDK (REFLOW_TEST_NODE, REFLOW_TEST_NPM_MODULES, REFLOW_FIXTURE_PYTHON): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn sdk_clients_connect_to_the_bridge_directly() {
    let Some((node, modules)) = node("bridge_direct") else {
        return;
    };
    let (b, _file, _dir) = memory_bridge(&node, &modules).await;
    for mode in ["legacy", "auto"] {
        let entity = format!("direct-py-{mode}");
        let out = py_memory(&b.url(), TOKEN, "", &entity, Some(mode)).await;
        no_fatal(&out, &b);
        assert!(
            crate::support::mcp_client::PROTOCOL_VERSION == out["protocol_version"]
                || out["protocol_version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("2025")),
            "a session-era version, also in auto mode: {out}"
        );
        assert!(out["graph"].as_str().unwrap().contains(&entity), "{out}");
    }
    let out = ts_memory(&node, &b.url(), TOKEN, "", "direct-ts").await;
    no_fatal(&out, &b);
    assert!(
        out["graph"].as_str().unwrap().contains("direct-ts"),
        "{out}"
    );
    assert!(
        out["graph"].as_str().unwrap().contains("direct-py-auto"),
        "{out}"
    );
    // The TypeScript client 2.x in auto mode probes too, and falls back the same way.
    let out = run_client(
        &node,
        &[
            &format!("{CLIENTS}/era_ts_v2.mjs"),
            &b.url(),
            TOKEN,
            "auto",
            "read_graph",
            "{}",
            "",
            "read_graph",
        ],
    )
    .await;
    assert_eq!(out["protocol_version"], "2025-11-25", "{out}");
    assert!(
        out["call"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("direct-ts")),
        "{out}"
    );
    // A client without the token is turned away before any process starts.
    let out = py_memory(&b.url(), "wrong", "", "x", None).await;
    assert!(out.get("fatal").is_some(), "{out}");
    assert!(
        !b.log().contains(TOKEN),
        "the token reached the bridge's log"
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
