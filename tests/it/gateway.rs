//! The gateway's merged view over real rmcp upstreams: pagination, naming, collisions,
//! partial lists, resources, list changes and upstream session recovery.
//! Wire-level behaviour (sessions, SSE, bad input) is in `gateway_wire.rs`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::TestServerOptions;
use crate::support::gw::{Gw, PW, all_tool_names, error_code, eventually, names, tool_text};
use crate::support::mcp_client::McpClient;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn gateway_paginates_the_merged_list_across_three_upstreams() {
    let gw = Gw::start_with(TestServerOptions {
        page_size: 5,
        ..Default::default()
    })
    .await;
    // Created out of name order: the merged list is in target-name order regardless.
    let mut ups = Vec::new();
    for (name, n) in [("charlie", 3), ("alpha", 4), ("bravo", 7)] {
        let mut cfg = UpstreamConfig::tools(name, numbered("t", n));
        cfg.page_size = Some(2);
        ups.push(gw.upstream(name, None, cfg).await);
    }
    let client = gw.admin_client().await;

    let pages = crate::support::gw::all_pages(&client, "tools/list").await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["tools"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [5, 5, 4], "gateway pages of page_size 5: {pages:?}");
    let got: Vec<String> = pages
        .iter()
        .flat_map(|p| names(p, "tools", "name"))
        .collect();
    let expected: Vec<String> = [("alpha", 4), ("bravo", 7), ("charlie", 3)]
        .iter()
        .flat_map(|(t, n)| {
            numbered("t", *n)
                .into_iter()
                .map(move |x| format!("{t}__{x}"))
        })
        .collect();
    assert_eq!(
        got, expected,
        "all 14 names exactly once, in target-name order, following upstream pages of 2"
    );
    // Every upstream was asked for more than one page (the gateway followed nextCursor).
    for up in &ups {
        assert!(
            up.log.lock().unwrap().lists >= 2,
            "upstream pagination was not followed"
        );
    }

    // A tampered cursor is refused with invalid params.
    let cursor = pages[0]["nextCursor"].as_str().unwrap().to_string();
    let mut bytes = cursor.into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let response = client
        .request("tools/list", json!({ "cursor": tampered }))
        .await;
    assert_eq!(error_code(&response), -32602, "tampered cursor: {response}");
    let response = client
        .request("tools/list", json!({ "cursor": "not-a-cursor" }))
        .await;
    assert_eq!(error_code(&response), -32602, "garbage cursor: {response}");
    // A cursor of one list is no good for another.
    let response = client
        .request(
            "prompts/list",
            json!({ "cursor": pages[0]["nextCursor"].clone() }),
        )
        .await;
    assert_eq!(
        error_code(&response),
        -32602,
        "tools cursor on prompts/list: {response}"
    );
}

#[tokio::test]
async fn gateway_collision_first_target_by_name_wins() {
    let gw = Gw::start().await;
    // "two" is created first; "one" sorts first and must win.
    let two = gw
        .upstream(
            "two",
            Some(""),
            UpstreamConfig::tools("two", ["echo", "only_two"]),
        )
        .await;
    let one = gw
        .upstream(
            "one",
            Some(""),
            UpstreamConfig::tools("one", ["echo", "only_one"]),
        )
        .await;
    let client = gw.admin_client().await;

    let mut got = all_tool_names(&client).await;
    assert_eq!(
        got.iter().filter(|n| *n == "echo").count(),
        1,
        "echo exposed once: {got:?}"
    );
    got.sort();
    assert_eq!(got, ["echo", "only_one", "only_two"]);

    let result = client
        .result(
            "tools/call",
            json!({ "name": "echo", "arguments": { "x": 1 } }),
        )
        .await;
    assert_eq!(
        tool_text(&result)["server"],
        "one",
        "the listed `echo` is target one's (first by name), so the call must reach target one; got {result}"
    );
    assert_eq!(one.calls(), ["echo"]);
    assert!(two.calls().is_empty(), "target two got {:?}", two.calls());

    for (name, server) in [("only_one", "one"), ("only_two", "two")] {
        let result = client
            .result("tools/call", json!({ "name": name, "arguments": {} }))
            .await;
        assert_eq!(tool_text(&result)["server"], server, "{name}: {result}");
    }
}

#[tokio::test]
async fn gateway_long_names_are_shortened_and_map_back() {
    let gw = Gw::start().await;
    let long: String = "a_very_long_tool_name_".chars().cycle().take(70).collect();
    assert_eq!(long.len(), 70);
    let dotted = "read.file".to_string();
    let up = gw
        .upstream(
            "longname",
            None,
            UpstreamConfig::tools("longname", [long.clone(), dotted.clone(), "ok".into()]),
        )
        .await;
    let client = gw.admin_client().await;

    let first = all_tool_names(&client).await;
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first[2], "longname__ok", "conforming names are untouched");
    for name in &first {
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "exposed name {name:?} must match ^[A-Za-z0-9_-]{{1,64}}$"
        );
    }
    assert_ne!(first[0], first[1]);
    assert!(first[0].starts_with("longname__a_very"), "{}", first[0]);

    // Stable: the same in a second list and in another session.
    assert_eq!(all_tool_names(&client).await, first);
    let other = gw.admin_client().await;
    assert_eq!(all_tool_names(&other).await, first);

    for (exposed, original) in [(&first[0], &long), (&first[1], &dotted)] {
        let result = client
            .result(
                "tools/call",
                json!({ "name": exposed, "arguments": { "k": "v" } }),
            )
            .await;
        assert_eq!(
            tool_text(&result),
            json!({ "tool": original, "args": { "k": "v" }, "server": "longname" }),
            "{exposed} must reach the upstream as {original}"
        );
    }
    assert_eq!(up.calls(), [long, dotted]);
}

#[tokio::test]
async fn gateway_slow_target_is_left_out_while_others_answer() {
    let gw = Gw::start().await;
    let _fast1 = gw
        .upstream("fast1", None, UpstreamConfig::tools("fast1", ["a"]))
        .await;
    let mut slow_cfg = UpstreamConfig::tools("slow", ["never"]);
    slow_cfg.list_delay = Duration::from_secs(5);
    let slow = UpstreamServer::start(slow_cfg).await;
    gw.add_target("middle-slow", &slow.url, None, 1).await;
    let _fast2 = gw
        .upstream("zfast2", None, UpstreamConfig::tools("fast2", ["b"]))
        .await;
    let client = gw.admin_client().await;

    let started = Instant::now();
    let page = client.result("tools/list", json!({})).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "tools/list took {elapsed:?}: a slow target (timeout 1s) must not hold the list"
    );
    assert_eq!(
        names(&page, "tools", "name"),
        ["fast1__a", "zfast2__b"],
        "the slow target is left out, the others answer"
    );
    assert!(
        slow.log.lock().unwrap().lists >= 1,
        "the slow target was asked"
    );
    // The session is fine afterwards.
    let result = client
        .result("tools/call", json!({ "name": "fast1__a", "arguments": {} }))
        .await;
    assert_eq!(tool_text(&result)["tool"], "a");
}

#[tokio::test]
async fn gateway_recovers_an_expired_upstream_session_transparently() {
    let gw = Gw::start().await;
    let up = gw
        .upstream("stateful", None, UpstreamConfig::tools("s", ["echo"]))
        .await;
    let client = gw.admin_client().await;
    let session = client.session.clone().unwrap();

    let call = json!({ "name": "stateful__echo", "arguments": { "n": 1 } });
    let result = client.result("tools/call", call.clone()).await;
    assert_eq!(tool_text(&result)["args"]["n"], 1);

    assert!(
        up.expire_sessions().await >= 1,
        "the gateway had an upstream session"
    );
    assert_eq!(up.session_count().await, 0);

    let call = json!({ "name": "stateful__echo", "arguments": { "n": 2 } });
    let response = client.request("tools/call", call).await;
    assert!(
        response.get("result").is_some(),
        "a call after the upstream session expired must succeed transparently: {response}"
    );
    assert_eq!(tool_text(&response["result"])["args"]["n"], 2);
    assert_eq!(client.session.as_deref(), Some(session.as_str()));
    // Same downstream session still works for anything else too.
    assert_eq!(client.result("ping", json!({})).await, json!({}));
    assert!(up.session_count().await >= 1, "a new upstream session");
}

#[tokio::test]
async fn gateway_resources_carry_the_target_prefix() {
    let gw = Gw::start().await;
    let mut cfg = UpstreamConfig::tools("docs", Vec::<String>::new());
    cfg.resources = vec![
        ("file:///notes.txt".into(), "hello notes".into()),
        ("test://b".into(), "bee".into()),
    ];
    cfg.link_tool = Some("link".into());
    let _up = gw.upstream("docs", None, cfg).await;
    let client = gw.admin_client().await;

    let list = client.result("resources/list", json!({})).await;
    assert_eq!(
        names(&list, "resources", "uri"),
        ["docs+file:///notes.txt", "docs+test://b"]
    );

    let read = client
        .result("resources/read", json!({ "uri": "docs+file:///notes.txt" }))
        .await;
    assert_eq!(
        read["contents"][0]["uri"], "docs+file:///notes.txt",
        "read contents carry the exposed URI: {read}"
    );
    assert_eq!(read["contents"][0]["text"], "hello notes");

    let linked = client
        .result(
            "tools/call",
            json!({ "name": "docs__link", "arguments": {} }),
        )
        .await;
    assert_eq!(linked["content"][0]["type"], "resource_link", "{linked}");
    assert_eq!(
        linked["content"][0]["uri"], "docs+file:///notes.txt",
        "resource links in tool results carry the exposed URI"
    );

    let missing = client
        .request("resources/read", json!({ "uri": "elsewhere+file:///x" }))
        .await;
    assert!(missing.get("error").is_some(), "{missing}");
}

#[tokio::test]
async fn gateway_adding_a_target_sends_list_changed_on_the_get_stream() {
    let gw = Gw::start().await;
    let _first = gw
        .upstream("first", None, UpstreamConfig::tools("first", ["a"]))
        .await;
    let client = gw.admin_client().await;
    assert_eq!(all_tool_names(&client).await, ["first__a"]);

    let mut stream = client.get_stream(None).await;
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("text/event-stream"),
        "{}",
        stream.content_type
    );

    let second = UpstreamServer::start(UpstreamConfig::tools("second", ["b"])).await;
    gw.add_target("second", &second.url, None, 10).await;
    let started = Instant::now();
    let mut seen = Vec::new();
    let found = loop {
        let left = Duration::from_secs(2).saturating_sub(started.elapsed());
        match stream.try_next(left).await {
            Some(e) if e.data["method"] == "notifications/tools/list_changed" => break true,
            Some(e) => seen.push(e),
            None => break false,
        }
    };
    assert!(
        found,
        "no notifications/tools/list_changed within 2s; saw {seen:?}"
    );

    let names = eventually(Duration::from_secs(2), || async {
        let names = all_tool_names(&client).await;
        (names.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(
        names.as_deref(),
        Some(&["first__a".to_string(), "second__b".to_string()][..]),
        "the new target's tools are listed"
    );
}

#[tokio::test]
async fn gateway_non_admins_see_no_targets() {
    let gw = Gw::start().await;
    let _up = gw
        .upstream("hidden", None, UpstreamConfig::tools("h", ["secret"]))
        .await;
    let (user, _) = gw.server.register("user@example.com", PW).await;
    let mut client = McpClient::new(&gw.server, &user);
    client.initialize().await;
    let page = client.result("tools/list", json!({})).await;
    assert_eq!(page["tools"], json!([]), "default deny: {page}");
    let response = client
        .request(
            "tools/call",
            json!({ "name": "hidden__secret", "arguments": {} }),
        )
        .await;
    assert_eq!(error_code(&response), -32602, "{response}");
    // The admin does see it (so the empty list above means something).
    let admin = gw.admin_client().await;
    assert_eq!(all_tool_names(&admin).await, ["hidden__secret"]);
}

#[tokio::test]
async fn gateway_a_shared_upstream_subscription_ends_only_with_its_last_subscriber() {
    let gw = Gw::start().await;
    let up = UpstreamServer::start(UpstreamConfig {
        resources: vec![("file:///a.txt".into(), "A".into())],
        touch_tool: Some("touch".into()),
        ..UpstreamConfig::tools("docs", ["echo"])
    })
    .await;
    // Stateless: both sessions share one upstream connection, hence one upstream subscription.
    let (status, created) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "docs", "url": up.url, "statefulness": "stateless", "timeout": 10}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let a = gw.admin_client().await;
    let b = gw.admin_client().await;
    let uri = json!({ "uri": "docs+file:///a.txt" });
    a.result("resources/subscribe", uri.clone()).await;
    b.result("resources/subscribe", uri.clone()).await;

    a.result("resources/unsubscribe", uri.clone()).await;
    assert!(
        up.unsubscribed().is_empty(),
        "B still subscribes: the upstream subscription stays ({:?})",
        up.unsubscribed()
    );
    let mut b_stream = b.get_stream(None).await;
    b.result(
        "tools/call",
        json!({"name": "docs__touch", "arguments": {}}),
    )
    .await;
    let mut seen = Vec::new();
    let updated = loop {
        match b_stream.try_next(Duration::from_secs(5)).await {
            Some(e) if e.data["method"] == "notifications/resources/updated" => break Some(e),
            Some(e) => seen.push(e),
            None => break None,
        }
    };
    let updated = updated.unwrap_or_else(|| panic!("B got no resources/updated; saw {seen:?}"));
    assert_eq!(updated.data["params"]["uri"], "docs+file:///a.txt");

    b.result("resources/unsubscribe", uri).await;
    assert_eq!(
        up.unsubscribed(),
        ["file:///a.txt"],
        "the last subscriber's unsubscribe reaches the upstream"
    );
}
