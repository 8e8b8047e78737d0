//! MCP 2026-07-28 bad input on `/mcp`: every error code for headers that disagree with the body,
//! a missing or unknown version or `_meta`, removed methods, an undeclared capability, and
//! `Mcp-Param-*` headers against the arguments.

use serde_json::json;

use super::code;
use crate::support::gw::{Gw, PW, tool_text};
use crate::support::mcp_client::{MODERN_VERSION, ModernClient};
use crate::support::upstream::UpstreamConfig;

#[tokio::test]
async fn modern_bad_input_gets_the_exact_codes() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                elicit_tool: Some("ask".into()),
                param_tool: Some("routed".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    // Mcp-Method disagrees with the body.
    let (id, body) = c.body("tools/call", json!({"name": "up__echo"}));
    let ex = c
        .send(
            &id,
            body,
            &h(&[
                ("mcp-protocol-version", MODERN_VERSION),
                ("mcp-method", "tools/list"),
                ("mcp-name", "up__echo"),
            ]),
        )
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);
    assert!(
        ex.response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Mcp-Method")
    );

    // Mcp-Name missing, then wrong.
    let (id, body) = c.body("tools/call", json!({"name": "up__echo"}));
    let ex = c
        .send(
            &id,
            body.clone(),
            &h(&[
                ("mcp-protocol-version", MODERN_VERSION),
                ("mcp-method", "tools/call"),
            ]),
        )
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);
    assert!(
        ex.response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Mcp-Name")
    );
    let ex = c
        .send(
            &id,
            body,
            &h(&[
                ("mcp-protocol-version", MODERN_VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "up__other"),
            ]),
        )
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);

    // The version header disagrees with _meta; then both name a version nobody speaks.
    let (id, body) = c.body("tools/list", json!({}));
    let ex = c
        .send(
            &id,
            body,
            &h(&[
                ("mcp-protocol-version", "2099-01-01"),
                ("mcp-method", "tools/list"),
            ]),
        )
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);
    let (id, mut body) = c.body("tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let ex = c
        .send(
            &id,
            body,
            &h(&[
                ("mcp-protocol-version", "2099-01-01"),
                ("mcp-method", "tools/list"),
            ]),
        )
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32022), "{}", ex.response);
    assert_eq!(
        ex.response["error"]["data"]["supported"],
        json!([MODERN_VERSION])
    );
    assert_eq!(ex.response["id"], id);

    // _meta missing entirely, then without clientCapabilities.
    let id = json!(77);
    let bare = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}});
    let ex = c
        .send(
            &id,
            bare,
            &h(&[
                ("mcp-protocol-version", MODERN_VERSION),
                ("mcp-method", "tools/list"),
            ]),
        )
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32602), "{}", ex.response);
    let (id, mut body) = c.body("tools/list", json!({}));
    body["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let ex = c
        .send(&id, body.clone(), &ModernClient::headers_for(&body))
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32602), "{}", ex.response);
    assert!(
        ex.response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );

    // Unknown methods, and methods the era removed, are 404 / -32601.
    for method in [
        "foo/bar",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "tasks/list",
    ] {
        let ex = c.exchange(method, json!({})).await;
        assert_eq!(
            (ex.status, code(&ex)),
            (404, -32601),
            "{method}: {}",
            ex.response
        );
    }

    // The upstream asks for elicitation; the client did not declare it.
    let ex = c
        .exchange("tools/call", json!({"name": "up__ask", "arguments": {}}))
        .await;
    assert_eq!((ex.status, code(&ex)), (400, -32021), "{}", ex.response);
    assert!(
        ex.response["error"]["data"]["requiredCapabilities"]["elicitation"].is_object(),
        "{}",
        ex.response
    );
    assert_eq!(up.elicitation_declared(), [false], "nor declared upstream");

    // Mcp-Param-* against the arguments, as the tool's schema annotates them.
    let (id, body) = c.body(
        "tools/call",
        json!({"name": "up__routed", "arguments": {"region": "eu"}}),
    );
    let mut good = ModernClient::headers_for(&body);
    good.push(("mcp-param-region".into(), "eu".into()));
    let ex = c.send(&id, body.clone(), &good).await;
    assert_eq!(ex.status, 200, "{}", ex.response);
    assert_eq!(
        tool_text(&ex.response["result"])["args"],
        json!({"region": "eu"})
    );
    let mut wrong = ModernClient::headers_for(&body);
    wrong.push(("mcp-param-region".into(), "us".into()));
    let ex = c.send(&id, body.clone(), &wrong).await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);
    assert!(
        ex.response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Mcp-Param-Region")
    );
    let ex = c
        .send(&id, body.clone(), &ModernClient::headers_for(&body))
        .await;
    assert_eq!(
        (ex.status, code(&ex)),
        (400, -32020),
        "missing: {}",
        ex.response
    );

    // A client→server notification is acknowledged and dropped.
    let (status, _) = c
        .inner
        .raw_post(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 1}})
            .to_string(),
            &[("mcp-protocol-version", MODERN_VERSION)],
        )
        .await;
    assert_eq!(status, 202);
}

/// The schema that `Mcp-Param-*` headers are checked against is found in the caller's whole
/// tool list, not only its first page.
#[tokio::test]
async fn param_headers_are_checked_for_a_tool_past_the_first_page() {
    let gw = Gw::start_with(crate::support::server::TestServerOptions {
        page_size: 2,
        ..Default::default()
    })
    .await;
    // Tools sort by name: `up__routed` comes after the four `up__a*` tools, on page 3.
    let _up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                param_tool: Some("routed".into()),
                ..UpstreamConfig::tools("u1", ["a1", "a2", "a3", "a4"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let (id, body) = c.body(
        "tools/call",
        json!({"name": "up__routed", "arguments": {"region": "eu"}}),
    );
    let mut wrong = ModernClient::headers_for(&body);
    wrong.push(("mcp-param-region".into(), "us".into()));
    let ex = c.send(&id, body.clone(), &wrong).await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);
    let mut good = ModernClient::headers_for(&body);
    good.push(("mcp-param-region".into(), "eu".into()));
    let ex = c.send(&id, body, &good).await;
    assert_eq!(ex.status, 200, "{}", ex.response);

    // The refusal is the gateway's (deny), on the row of the located tool, with its reason;
    // the call that matched is allowed by the policy that decided it.
    let rows = gw.audit_rows("method=tools/call&limit=10", 2).await;
    let of = |decision: &str| {
        rows.iter()
            .find(|r| r["decision"] == decision)
            .unwrap_or_else(|| panic!("no {decision} row: {rows:#?}"))
    };
    let (deny, allow) = (of("deny"), of("allow"));
    assert_eq!(
        (deny["target_name"].as_str(), deny["name"].as_str()),
        (Some("up"), Some("up__routed")),
        "{deny}"
    );
    assert!(
        deny["error"]
            .as_str()
            .is_some_and(|e| e.contains("Mcp-Param-Region")),
        "{deny}"
    );
    assert_eq!(allow["policy_name"], "admin-all", "{allow}");
}

/// The `Mcp-Param-*` check reads the called tool's schema from its own target, and a tool the
/// caller's policies hide is refused by the policy decision (as an unknown tool), never by its
/// schema: a header error would tell the caller about a tool it cannot see.
#[tokio::test]
async fn a_hidden_tool_is_refused_by_policy_before_its_param_headers() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                param_tool: Some("routed".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let _other = gw
        .upstream("other", None, UpstreamConfig::tools("u2", ["two"]))
        .await;
    gw.server.register("dev@example.com", PW).await;
    for (name, pattern) in [("dev-echo", "echo"), ("dev-routed", "routed")] {
        let (status, created) = gw
            .server
            .post(
                "/api/policies",
                Some(&gw.admin),
                json!({"name": name, "target": "up", "resource_type": "tool",
                       "resource_pattern": pattern, "effect": "allow", "priority": 100,
                       "subjects": [{"subject_type": "user", "subject_value": "dev@example.com"}]}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
    }
    let dev = super::logged_in(&gw, "dev@example.com").await;
    let call = |headers: &[(&str, &str)], name: &str| {
        let (id, body) = dev.body(
            "tools/call",
            json!({"name": name, "arguments": {"region": "eu"}}),
        );
        let mut h = ModernClient::headers_for(&body);
        h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        (id, body, h)
    };
    // Allowed: the schema is checked (no list was fetched first).
    let (id, body, h) = call(&[("mcp-param-region", "us")], "up__routed");
    let ex = dev.send(&id, body, &h).await;
    assert_eq!((ex.status, code(&ex)), (400, -32020), "{}", ex.response);
    let (id, body, h) = call(&[("mcp-param-region", "eu")], "up__routed");
    let ex = dev.send(&id, body, &h).await;
    assert_eq!(ex.status, 200, "{}", ex.response);
    assert_eq!(
        tool_text(&ex.response["result"])["args"],
        json!({"region": "eu"})
    );

    // Hidden by a deny of higher priority: the wrong header does not matter, the policy does.
    let (status, created) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "no-routed", "target": "up", "resource_type": "tool",
                   "resource_pattern": "routed", "effect": "deny", "priority": 200,
                   "subjects": [{"subject_type": "user", "subject_value": "dev@example.com"}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    for headers in [&[("mcp-param-region", "us")][..], &[]] {
        let (id, body, h) = call(headers, "up__routed");
        let ex = dev.send(&id, body, &h).await;
        assert_eq!(code(&ex), -32602, "{headers:?}: {}", ex.response);
        assert!(
            ex.response["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown tool"),
            "{}",
            ex.response
        );
    }
}
