//! `/metrics` read by a real Prometheus text parser after calls of both eras, a denied call and
//! an upstream error; and who may read it.

use std::time::Duration;

use prometheus_parse::{Scrape, Value as PromValue};
use serde_json::json;

use crate::support::gw::{Gw, eventually};
use crate::support::mcp_client::{McpClient, ModernClient, PROTOCOL_VERSION};
use crate::support::server::TestServerOptions;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

const SCRAPE_TOKEN: &str = "scrape-token-0123456789";

async fn scrape(gw: &Gw, token: Option<&str>) -> (u16, String) {
    let mut req = gw.server.http.get(gw.server.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = res.text().await.unwrap();
    if status == 200 {
        assert_eq!(
            ct.as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
    }
    (status, body)
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text")
}

/// The value of `metric` at exactly these labels (a histogram's count: its +Inf bucket).
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => *v,
            PromValue::Histogram(b) => b
                .iter()
                .find(|c| c.less_than.is_infinite())
                .map_or(0.0, |c| c.count),
            PromValue::Summary(_) => f64::NAN,
        })
}

#[tokio::test]
async fn metrics_count_both_eras_denials_and_upstream_errors() {
    let gw = Gw::start_with(TestServerOptions {
        metrics: Some(reflow::config::MetricsSettings {
            token: Some(reflow::config::Secret::new(SCRAPE_TOKEN.into())),
            ..Default::default()
        }),
        ..TestServerOptions::default()
    })
    .await;
    let up = UpstreamServer::start(UpstreamConfig {
        failing_tool: Some(("explode".into(), "the fuse is lit".into())),
        ..UpstreamConfig::tools("svc", ["echo", "secret_key"])
    })
    .await;
    // A target with no options: what a user gets by default.
    gw.target_for_everyone(json!({"name": "svc", "url": up.url}))
        .await;
    let (status, p) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "no-secret", "target": "svc", "resource_type": "tool",
                   "resource_pattern": "secret_.*", "effect": "deny", "priority": 200,
                   "subjects": [{"subject_type": "everyone"}]}),
        )
        .await;
    assert_eq!(status, 201, "{p}");

    // A non-admin caller: admins are allowed everything, whatever the policies say.
    let (user, _) = gw
        .server
        .register("user@example.com", crate::support::gw::PW)
        .await;
    let mut legacy = McpClient::new(&gw.server, &user);
    legacy.initialize().await;
    let version = PROTOCOL_VERSION.to_string();
    legacy
        .result(
            "tools/call",
            json!({"name": "svc__echo", "arguments": {"text": "a"}}),
        )
        .await;
    let denied = legacy
        .request(
            "tools/call",
            json!({"name": "svc__secret_key", "arguments": {}}),
        )
        .await;
    assert_eq!(denied["error"]["code"], -32602, "{denied}");
    let failed = legacy
        .request(
            "tools/call",
            json!({"name": "svc__explode", "arguments": {}}),
        )
        .await;
    assert_eq!(failed["error"]["code"], -32602, "{failed}");
    let modern = ModernClient::new(&gw.server, &user);
    modern
        .result(
            "tools/call",
            json!({"name": "svc__echo", "arguments": {"text": "b"}}),
        )
        .await;

    // Who may read: nobody without a token, not a non-admin, yes the admin and the scrape token.
    assert_eq!(scrape(&gw, None).await.0, 401);
    assert_eq!(scrape(&gw, Some(&user)).await.0, 403);
    assert_eq!(scrape(&gw, Some("scrape-token-wrong-0000")).await.0, 401);
    let (status, _) = scrape(&gw, Some(&gw.admin)).await;
    assert_eq!(status, 200);

    let text = eventually(Duration::from_secs(5), || async {
        let (_, text) = scrape(&gw, Some(SCRAPE_TOKEN)).await;
        let s = parse(&text);
        (value(&s, "reflow_audit_rows_written_total", &[]) >= Some(4.0)).then_some(text)
    })
    .await
    .expect("the audit writer reports the rows it wrote");
    let s = parse(&text);
    let server = "mcp_server_operation_duration_seconds";
    let call = |target: &'static str, version: &str, error: &'static str| {
        value(
            &s,
            server,
            &[
                ("mcp_method_name", "tools/call"),
                ("target", target),
                ("mcp_protocol_version", version),
                ("error_type", error),
            ],
        )
    };
    assert_eq!(call("svc", &version, ""), Some(1.0), "legacy call\n{text}");
    assert_eq!(
        call("svc", "2026-07-28", ""),
        Some(1.0),
        "2026 call\n{text}"
    );
    assert_eq!(
        call("svc", &version, "-32602"),
        Some(2.0),
        "a policy refusal and an upstream error\n{text}"
    );
    assert!(
        !text.contains("gen_ai_tool_name=\"svc__echo\""),
        "tool names stay out of labels unless metrics.tool_label"
    );
    let upstream = |error: &'static str| {
        value(
            &s,
            "mcp_client_operation_duration_seconds",
            &[
                ("target", "svc"),
                ("mcp_method_name", "tools/call"),
                ("error_type", error),
            ],
        )
    };
    assert_eq!(upstream(""), Some(2.0), "{text}");
    assert_eq!(upstream("-32602"), Some(1.0), "{text}");
    assert_eq!(
        value(&s, "reflow_upstream_up", &[("target", "svc")]),
        Some(1.0)
    );
    let decisions = |d: &'static str| {
        value(
            &s,
            "reflow_policy_decisions_total",
            &[("decision", d), ("resource_type", "tool")],
        )
    };
    assert_eq!(decisions("allow"), Some(3.0), "{text}");
    assert_eq!(decisions("deny"), Some(1.0), "{text}");
    assert_eq!(value(&s, "reflow_sessions_active", &[]), Some(1.0));
    assert_eq!(value(&s, "reflow_audit_rows_dropped_total", &[]), Some(0.0));
    assert_eq!(
        value(
            &s,
            "reflow_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // Bucket bounds are the MCP conventions'.
    let bounds: Vec<f64> = s
        .samples
        .iter()
        .find(|x| x.metric == server)
        .and_then(|x| match &x.value {
            PromValue::Histogram(b) => Some(b.iter().map(|c| c.less_than).collect()),
            _ => None,
        })
        .unwrap();
    assert_eq!(&bounds[..4], &[0.01, 0.02, 0.05, 0.1]);
    assert_eq!(bounds.len(), 15, "14 bounds and +Inf");
    drop(up);
}

#[tokio::test]
async fn public_metrics_need_no_token_and_the_tool_label_is_opt_in() {
    let gw = Gw::start_with(TestServerOptions {
        metrics: Some(reflow::config::MetricsSettings {
            public: true,
            tool_label: true,
            ..Default::default()
        }),
        ..TestServerOptions::default()
    })
    .await;
    let up = UpstreamServer::start(UpstreamConfig::tools("svc", ["echo"])).await;
    gw.target_for_everyone(json!({"name": "svc", "url": up.url}))
        .await;
    let mut c = McpClient::new(&gw.server, &gw.admin);
    c.initialize().await;
    c.result("tools/call", json!({"name": "svc__echo", "arguments": {}}))
        .await;
    // An unknown method is labelled "other": a client cannot mint label values.
    c.request("no/such-method", json!({})).await;
    let (status, text) = scrape(&gw, None).await;
    assert_eq!(status, 200);
    let s = parse(&text);
    assert_eq!(
        value(
            &s,
            "mcp_server_operation_duration_seconds",
            &[("gen_ai_tool_name", "svc__echo"), ("error_type", "")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("mcp_method_name=\"other\""), "{text}");
    assert!(!text.contains("no/such-method"), "{text}");
}

/// Every `mcp_*` / `reflow_*` metric a dashboard panel or alert rule names.
fn referenced_metrics(text: &str) -> std::collections::BTreeSet<String> {
    let re = regex::Regex::new(r"\b((?:mcp|reflow)_[a-z_]+)").unwrap();
    re.captures_iter(text)
        .map(|c| c[1].to_string())
        // Label values and the dashboard's uid are not metrics.
        .filter(|m| {
            m != "reflow_gateway"
                && !m.starts_with("mcp_method_name")
                && !m.starts_with("mcp_protocol_version")
        })
        .map(|m| {
            for suffix in ["_bucket", "_count", "_sum"] {
                if let Some(base) = m.strip_suffix(suffix) {
                    return base.to_string();
                }
            }
            m
        })
        .collect()
}

#[tokio::test]
async fn dashboards_and_alert_rules_reference_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let dashboard = std::fs::read_to_string(root.join("grafana/reflow-dashboard.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let exprs: Vec<&str> = doc["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let alerts = std::fs::read_to_string(root.join("prometheus/reflow-alerts.yaml")).unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&alerts).expect("the rules are YAML");
    let rules = rules["groups"][0]["rules"].as_array().unwrap().clone();
    for wanted in [
        "ReflowHighErrorRate",
        "ReflowSlowRequests",
        "ReflowTargetFailing",
        "ReflowDenialSpike",
        "ReflowAuditRowsDropped",
    ] {
        assert!(rules.iter().any(|r| r["alert"] == wanted), "{wanted}");
    }
    let mut referenced = referenced_metrics(&exprs.join("\n"));
    for r in &rules {
        referenced.extend(referenced_metrics(r["expr"].as_str().unwrap()));
    }

    // What /metrics exports after one call (families with labels appear with their first
    // sample; closed label sets such as decisions start at zero).
    let gw = Gw::start().await;
    let up = UpstreamServer::start(UpstreamConfig::tools("svc", ["echo"])).await;
    gw.target_for_everyone(json!({"name": "svc", "url": up.url}))
        .await;
    let mut c = McpClient::new(&gw.server, &gw.admin);
    c.initialize().await;
    c.result("tools/call", json!({"name": "svc__echo", "arguments": {}}))
        .await;
    let (status, text) = scrape(&gw, Some(&gw.admin)).await;
    assert_eq!(status, 200);
    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = referenced
        .iter()
        .filter(|m| !exported.contains(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "referenced but not exported: {missing:?}\nexported: {exported:?}"
    );
    assert!(referenced.len() >= 10, "{referenced:?}");
}
