//! MCP 2026-07-28 on `/mcp`, raw wire, in front of the legacy rmcp upstream: discover, lists and
//! calls with headers and `_meta`, and cache hints on policy-filtered lists. Every bad-input
//! code is in `bad_input`; `subscriptions/listen`, request streams and cancellation in `streams`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::gw::{Gw, PW, all_tool_names, tool_text};
use crate::support::mcp_client::{MODERN_VERSION, ModernClient};
use crate::support::upstream::UpstreamConfig;

mod bad_input;
mod streams;

fn code(ex: &crate::support::mcp_client::Exchange) -> i64 {
    ex.response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {}", ex.response))
}

/// The tool names of a list result, sorted.
/// A 2026-era client with the session token of a registered user (password `PW`).
async fn logged_in(gw: &Gw, email: &str) -> ModernClient {
    ModernClient::new(&gw.server, &gw.server.login(email, PW).await)
}

fn tool_names(result: &Value) -> Vec<String> {
    let mut names: Vec<String> = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn modern_clients_discover_list_and_call_while_legacy_ones_keep_working() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                resources: vec![("file:///notes.txt".into(), "hello notes".into())],
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let modern = ModernClient::new(&gw.server, &gw.admin);

    let discover = modern.exchange("server/discover", json!({})).await;
    assert_eq!(
        (discover.status, discover.sse),
        (200, false),
        "{discover:?}"
    );
    let d = &discover.response["result"];
    assert!(
        d["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!(MODERN_VERSION)),
        "{d}"
    );
    assert!(d["capabilities"]["tools"].is_object(), "{d}");
    assert!(d["capabilities"]["resources"].is_object(), "{d}");
    assert!(
        d["capabilities"].get("logging").is_none(),
        "no logging/setLevel in 2026: {d}"
    );
    assert_eq!(
        d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "reflow"
    );
    assert_eq!(d["resultType"], "complete");
    assert_eq!(d["cacheScope"], "private");
    assert!(d["ttlMs"].is_u64(), "{d}");

    let list = modern.result("tools/list", json!({})).await;
    assert_eq!(tool_names(&list), ["up__echo"]);
    assert_eq!(list["resultType"], "complete");
    assert_eq!(list["cacheScope"], "private");
    assert_eq!(list["ttlMs"], json!(300_000), "the list cache TTL: {list}");

    let call = modern
        .result(
            "tools/call",
            json!({"name": "up__echo", "arguments": {"x": 1}}),
        )
        .await;
    assert_eq!(call["resultType"], "complete");
    assert!(call.get("ttlMs").is_none(), "tools/call is not cacheable");
    assert_eq!(
        tool_text(&call),
        json!({"tool": "echo", "args": {"x": 1}, "server": "u1"})
    );
    assert_eq!(up.calls(), ["echo"]);

    let resources = modern.result("resources/list", json!({})).await;
    let uri = resources["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(resources["cacheScope"], "private");
    let read = modern.result("resources/read", json!({"uri": uri})).await;
    assert_eq!(read["contents"][0]["text"], "hello notes");
    assert_eq!(
        read["contents"][0]["uri"],
        uri.as_str(),
        "exposed URI: {read}"
    );
    assert_eq!(
        (read["ttlMs"].clone(), read["cacheScope"].clone()),
        (json!(0), json!("private"))
    );
    assert_eq!(read["resultType"], "complete");

    // No session was created (nor stored) for any of it.
    let (status, recycled) = gw
        .server
        .post("/api/sessions/recycle", Some(&gw.admin), json!({}))
        .await;
    assert_eq!(
        (status, recycled["recycled"].clone()),
        (200, json!(0)),
        "{recycled}"
    );
    // A legacy client still works as before.
    let legacy = gw.admin_client().await;
    assert_eq!(all_tool_names(&legacy).await, ["up__echo"]);
    let r = legacy
        .result("tools/call", json!({"name": "up__echo", "arguments": {}}))
        .await;
    assert!(
        r.get("resultType").is_none(),
        "legacy results untouched: {r}"
    );
}

#[tokio::test]
async fn modern_lists_are_policy_filtered_and_marked_private() {
    let gw = Gw::start().await;
    let _a = gw
        .upstream("alpha", None, UpstreamConfig::tools("a", ["one"]))
        .await;
    let _b = gw
        .upstream("beta", None, UpstreamConfig::tools("b", ["two"]))
        .await;
    let (_, user) = gw.server.register("dev@example.com", PW).await;
    let uid = user["id"].as_str().unwrap();
    let (status, _) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/users/{uid}"),
            Some(&gw.admin),
            Some(json!({"role": "dev"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, created) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "dev-alpha", "target": "alpha", "resource_type": "all",
                   "effect": "allow", "priority": 100,
                   "subjects": [{"subject_type": "role", "subject_value": "dev"}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let dev = logged_in(&gw, "dev@example.com").await;

    let list = dev.result("tools/list", json!({})).await;
    assert_eq!(tool_names(&list), ["alpha__one"]);
    assert_eq!(list["cacheScope"], "private");
    let admin = ModernClient::new(&gw.server, &gw.admin);
    let all = admin.result("tools/list", json!({})).await;
    assert_eq!(tool_names(&all), ["alpha__one", "beta__two"]);

    // A denied tool is refused like an unknown one.
    let ex = dev
        .exchange("tools/call", json!({"name": "beta__two", "arguments": {}}))
        .await;
    assert_eq!(code(&ex), -32602, "{}", ex.response);
    assert!(
        ex.response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tool")
    );

    // A caller who sees nothing is told of no tools at all.
    gw.server.register("nobody@example.com", PW).await;
    let nobody = logged_in(&gw, "nobody@example.com").await;
    let d = nobody.result("server/discover", json!({})).await;
    assert!(d["capabilities"].get("tools").is_none(), "{d}");
}
