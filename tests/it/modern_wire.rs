//! MCP 2026-07-28 on `/mcp`, raw wire, in front of the legacy rmcp upstream: discover, lists and
//! calls with headers and `_meta`, every bad-input code, cache hints on policy-filtered lists,
//! `subscriptions/listen`, and cancellation by closing the request's stream.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::gw::{Gw, PW, all_tool_names, eventually, tool_text};
use crate::support::mcp_client::{MODERN_VERSION, ModernClient};
use crate::support::upstream::UpstreamConfig;

fn code(ex: &crate::support::mcp_client::Exchange) -> i64 {
    ex.response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {}", ex.response))
}

/// The tool names of a list result, sorted.
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
    let (_, login) = gw
        .server
        .post(
            "/api/auth/login",
            None,
            json!({"email": "dev@example.com", "password": PW}),
        )
        .await;
    let dev = ModernClient::new(&gw.server, login["token"].as_str().unwrap());

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
    let (_, login) = gw
        .server
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": PW}),
        )
        .await;
    let nobody = ModernClient::new(&gw.server, login["token"].as_str().unwrap());
    let d = nobody.result("server/discover", json!({})).await;
    assert!(d["capabilities"].get("tools").is_none(), "{d}");
}

#[tokio::test]
async fn modern_listen_acknowledges_then_relays_list_changes_by_filter() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                change_tool: Some("change".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let (tools_id, mut tools_stream) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    assert_eq!(tools_stream.status, 200);
    assert!(tools_stream.content_type.starts_with("text/event-stream"));
    let ack = tools_stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("an acknowledgement");
    assert_eq!(
        ack.data["method"],
        "notifications/subscriptions/acknowledged"
    );
    assert_eq!(
        ack.data["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack.data["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        tools_id
    );
    let (_, mut prompts_stream) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"promptsListChanged": true}}),
        )
        .await;
    let ack = prompts_stream
        .next_within(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        ack.data["params"]["notifications"],
        json!({"promptsListChanged": true})
    );

    assert_eq!(
        tool_names(&c.result("tools/list", json!({})).await),
        ["up__change", "up__echo"]
    );
    c.result("tools/call", json!({"name": "up__change", "arguments": {}}))
        .await;
    let changed = tools_stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("a list_changed");
    assert_eq!(changed.data["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed.data["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        tools_id
    );
    assert!(
        prompts_stream
            .try_next(Duration::from_millis(300))
            .await
            .is_none(),
        "a prompts-only listener gets no tool changes"
    );
    // The change reached the list cache too.
    assert_eq!(
        tool_names(&c.result("tools/list", json!({})).await),
        ["up__added_tool", "up__change", "up__echo"]
    );
}

#[tokio::test]
async fn modern_closing_the_stream_cancels_the_upstream_request() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                progress_tool: Some("slow".into()),
                progress_steps: 50,
                progress_interval: Duration::from_millis(100),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let (_, mut stream) = c
        .stream(
            "tools/call",
            json!({"name": "up__slow", "arguments": {}, "_meta": {"progressToken": "p-1"}}),
        )
        .await;
    assert!(stream.content_type.starts_with("text/event-stream"));
    let progress = stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("progress first");
    assert_eq!(progress.data["method"], "notifications/progress");
    assert_eq!(progress.data["params"]["progressToken"], "p-1");
    drop(stream);
    let cancelled = eventually(Duration::from_secs(10), || async {
        let c = up.cancelled();
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(cancelled.is_some(), "the upstream saw no cancellation");
    assert_eq!(up.calls(), ["slow"]);
    // The gateway is fine afterwards.
    assert_eq!(
        tool_names(&c.result("tools/list", json!({})).await),
        ["up__echo", "up__slow"]
    );
}

#[tokio::test]
async fn modern_log_messages_reach_the_request_stream_only_at_the_requested_level() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                log_tool: Some("noisy".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    // No logLevel in _meta: no log messages at all, so a plain JSON answer.
    let quiet = c
        .exchange("tools/call", json!({"name": "up__noisy", "arguments": {}}))
        .await;
    assert_eq!((quiet.status, quiet.sse), (200, false), "{quiet:?}");
    assert_eq!(quiet.response["result"]["content"][0]["text"], "logged");
    // logLevel warning: the error line on the request's stream, not the info line.
    let loud = c
        .exchange(
            "tools/call",
            json!({"name": "up__noisy", "arguments": {},
                   "_meta": {"io.modelcontextprotocol/logLevel": "warning"}}),
        )
        .await;
    assert!(loud.sse, "{loud:?}");
    let logs: Vec<&Value> = loud
        .events
        .iter()
        .map(|e| &e.data)
        .filter(|d| d["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 1, "{:?}", loud.events);
    assert_eq!(logs[0]["params"]["level"], "error");
    assert_eq!(loud.response["result"]["resultType"], "complete");
}

#[tokio::test]
async fn modern_listen_relays_updates_of_subscribed_resources_only() {
    let gw = Gw::start().await;
    let up = gw
        .upstream(
            "up",
            None,
            UpstreamConfig {
                resources: vec![("file:///watched.txt".into(), "v1".into())],
                touch_tool: Some("touch".into()),
                ..UpstreamConfig::tools("u1", ["echo"])
            },
        )
        .await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let listed = c.result("resources/list", json!({})).await;
    let uri = listed["resources"][0]["uri"].as_str().unwrap().to_string();
    let (id, mut stream) = c
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [uri, "nope+file:///x"]}}),
        )
        .await;
    let ack = stream.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        ack.data["params"]["notifications"],
        json!({"resourceSubscriptions": [uri]}),
        "only what the caller may read is honoured"
    );
    assert_eq!(up.subscribed(), ["file:///watched.txt"]);
    c.result("tools/call", json!({"name": "up__touch", "arguments": {}}))
        .await;
    let updated = stream.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(updated.data["method"], "notifications/resources/updated");
    assert_eq!(updated.data["params"]["uri"], uri.as_str());
    assert_eq!(
        updated.data["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        id
    );
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_listen_streams() {
    let gw = Gw::start().await;
    let c = ModernClient::new(&gw.server, &gw.admin);
    let mut open = Vec::new();
    for _ in 0..32 {
        let (_, mut s) = c
            .stream(
                "subscriptions/listen",
                json!({"notifications": {"toolsListChanged": true}}),
            )
            .await;
        let ack = s.next_within(Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            ack.data["method"],
            "notifications/subscriptions/acknowledged"
        );
        open.push(s);
    }
    let refused = c
        .exchange(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    let text = refused.response.to_string();
    assert!(text.contains("session.max_streams_per_user"), "{text}");
    // Another user is not affected; closing one stream makes room again.
    let (bob, _) = gw
        .server
        .register("bob@example.com", crate::support::gw::PW)
        .await;
    let (_, mut theirs) = ModernClient::new(&gw.server, &bob)
        .stream(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    assert!(theirs.next_within(Duration::from_secs(10)).await.is_some());
    drop(open.pop());
    let again = crate::support::gw::eventually(Duration::from_secs(5), || async {
        let (_, mut s) = c
            .stream(
                "subscriptions/listen",
                json!({"notifications": {"toolsListChanged": true}}),
            )
            .await;
        let first = s.next_within(Duration::from_secs(5)).await?;
        (first.data["method"] == "notifications/subscriptions/acknowledged").then_some(s)
    })
    .await;
    assert!(again.is_some(), "a closed stream's slot is free again");
}
