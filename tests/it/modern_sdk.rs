//! Real SDK clients of both eras through reflow to the legacy rmcp upstream: the Python `mcp`
//! 2.3.0 client in `mode="2026-07-28"`, `"auto"` (probes with server/discover) and `"legacy"`
//! lists tools and calls one; the modern ones also complete an elicitation across the era
//! bridge. Ignored unless asked for (it needs `REFLOW_FIXTURE_PYTHON`).

use serde_json::{Value, json};

use crate::support::gw::Gw;
use crate::support::upstream::UpstreamConfig;

async fn py_client(gw: &Gw, mode: &str, elicit: bool) -> Option<Value> {
    let Ok(python) = std::env::var("REFLOW_FIXTURE_PYTHON") else {
        panic!(
            "REFLOW_FIXTURE_PYTHON is not set (the Python mcp SDK client): run tests/interop/setup"
        );
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/clients/py_modern_client.py"
    );
    let url = gw.server.url("/mcp");
    let mut args = vec![
        script.to_string(),
        url,
        "--token".into(),
        gw.admin.clone(),
        "--mode".into(),
        mode.into(),
        "--call".into(),
        "up__echo".into(),
    ];
    if elicit {
        args.extend([
            "--elicit".into(),
            "up__ask".into(),
            "--answer".into(),
            "py-42".into(),
        ]);
    }
    let out = tokio::process::Command::new(python)
        .args(&args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the client printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["errors"], json!([]), "{mode}: {report}");
    Some(report)
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn modern_python_sdk_clients_of_both_eras_list_and_call() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                elicit_tool: Some("ask".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    for (mode, version, elicit) in [
        ("2026-07-28", "2026-07-28", true),
        ("auto", "2026-07-28", true),
        ("legacy", "2025-11-25", false),
    ] {
        let Some(r) = py_client(&gw, mode, elicit).await else {
            return;
        };
        assert_eq!(r["protocol_version"], version, "{mode}: {r}");
        assert_eq!(r["tools"], json!(["up__ask", "up__echo"]), "{mode}: {r}");
        let echoed: Value = serde_json::from_str(r["call"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            echoed,
            json!({"tool": "echo", "args": {"message": "hi"}, "server": "u1"}),
            "{mode}"
        );
        if elicit {
            assert_eq!(
                r["elicitations"],
                json!(["What is the answer?"]),
                "{mode}: {r}"
            );
            let asked: Value = serde_json::from_str(r["elicit"]["text"].as_str().unwrap()).unwrap();
            assert_eq!(
                asked,
                json!({"action": "accept", "content": {"answer": "py-42"}}),
                "{mode}"
            );
        }
    }
    assert_eq!(up.calls(), ["echo", "ask", "echo", "ask", "echo"]);
}
